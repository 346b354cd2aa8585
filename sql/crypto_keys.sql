-- Column encryption, key lifecycle: rotation (old and new versions decrypt),
-- reencrypt, shredding (tombstones, "shredded" errors, recorded), master key
-- rotation with rewrap_keys(), the key cache of another backend following
-- every change, and blind indexes.
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
\set SHOW_CONTEXT never
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = :'org_a';
SET tenant_guard.master_key_file = :'master_key_file';

CREATE TABLE notes (id int PRIMARY KEY, body bytea);
INSERT INTO notes SELECT i, tenant_guard.encrypt_text('note ' || i, 'public.notes.body.' || i) FROM generate_series(1, 10) i;

-- rotation: a new active version; old values still decrypt, new ones use v2
SELECT tenant_guard.rotate_key() AS new_version;
INSERT INTO notes SELECT i, tenant_guard.encrypt_text('note ' || i, 'public.notes.body.' || i) FROM generate_series(11, 12) i;
SELECT tenant_guard.key_version(body) AS version, count(*),
       bool_and(tenant_guard.decrypt_text(body, 'public.notes.body.' || id) = 'note ' || id) AS all_decrypt
FROM notes GROUP BY 1 ORDER BY 1;
SELECT version, state, retired_at IS NOT NULL AS retired_at_set FROM tenant_guard.tenant_keys
WHERE org_id = :'org_a' ORDER BY version;
-- rotating another tenant by id, and a tenant without any key yet (creates v1)
SELECT tenant_guard.rotate_key(:'org_b') AS b_version;
SELECT tenant_guard.rotate_key(:'org_b') AS b_version_again;

-- re-encrypt in batches after a rotation (the runbook in docs/key-management.md)
SELECT tenant_guard.rotate_key() AS v3;
UPDATE notes SET body = tenant_guard.reencrypt(body, 'public.notes.body.' || id)
WHERE id IN (SELECT id FROM notes WHERE tenant_guard.key_version(body) < 3 ORDER BY id LIMIT 5);
SELECT tenant_guard.key_version(body) AS version, count(*) FROM notes GROUP BY 1 ORDER BY 1;
UPDATE notes SET body = tenant_guard.reencrypt(body, 'public.notes.body.' || id)
WHERE tenant_guard.key_version(body) < 3;
SELECT tenant_guard.key_version(body) AS version, count(*),
       bool_and(tenant_guard.decrypt_text(body, 'public.notes.body.' || id) = 'note ' || id) AS all_decrypt
FROM notes GROUP BY 1 ORDER BY 1;
-- reencrypt checks like decrypt: wrong aad or a tampered value are refused
SELECT tenant_guard.reencrypt(body, 'public.notes.body.2') FROM notes WHERE id = 1;
SELECT tenant_guard.reencrypt(set_byte(body, 20, get_byte(body, 20) # 1), 'public.notes.body.1') FROM notes WHERE id = 1;

-- another backend keeps its key cache only until the keys change
CREATE EXTENSION dblink;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=postgres',
       split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database()));
SELECT dblink_exec('other', format($$SET tenant_guard.context_source = 'setting'; SET tenant_guard.org_id = %L;
                                    SET tenant_guard.master_key_file = %L$$, :'org_a', :'master_key_file'));
CREATE TEMP TABLE sample AS SELECT body FROM notes WHERE id = 1;
SELECT * FROM dblink('other', format('SELECT tenant_guard.decrypt_text(%L::bytea, %L)', (SELECT body FROM sample),
                     'public.notes.body.1')) AS t(plain text);
SELECT * FROM dblink('other', 'SELECT tenant_guard.key_version(tenant_guard.encrypt(''x''::bytea))') AS t(v int);
SELECT tenant_guard.rotate_key() AS v4;
SELECT * FROM dblink('other', 'SELECT tenant_guard.key_version(tenant_guard.encrypt(''x''::bytea))') AS t(v int);

-- blind indexes: equal within a tenant, per context, different across
-- tenants, and stable across rotation
CREATE TEMP TABLE bidx AS
SELECT tenant_guard.blind_index('alice@example.com', 'users.email') AS a1,
       tenant_guard.blind_index('alice@example.com', 'users.email') AS a2,
       tenant_guard.blind_index('Alice@example.com', 'users.email') AS a_case,
       tenant_guard.blind_index('alice@example.com', 'users.backup_email') AS a_ctx,
       tenant_guard.blind_index('', '') AS a_empty;
SELECT a1 = a2 AS equal, length(a1) AS len, a1 <> a_case AS case_sensitive, a1 <> a_ctx AS per_context,
       a_empty IS NOT NULL AS empty_ok FROM bidx;
SELECT tenant_guard.rotate_key() AS v5;
SELECT tenant_guard.blind_index('alice@example.com', 'users.email') = a1 AS stable_after_rotation FROM bidx;
SET tenant_guard.org_id = :'org_b';
SELECT tenant_guard.blind_index('alice@example.com', 'users.email') <> a1 AS differs_across_tenants FROM bidx;
SET tenant_guard.org_id = :'org_a';
-- the index key is not the HMAC under anything a tenant can compute from the context alone
SELECT tenant_guard.hmac_sha256(convert_to('alice@example.com', 'UTF8'), convert_to('users.email', 'UTF8')) <> a1
       AS not_plain_hmac FROM bidx;

-- master key rotation: configure the new key with the old one as previous,
-- everything keeps decrypting, rewrap_keys() moves every wrapped key, then
-- the old key is no longer needed
SELECT count(DISTINCT kek_id) AS keks_before FROM tenant_guard.tenant_keys;
SET tenant_guard.master_key_file = :'master_key2_file';
SELECT tenant_guard.decrypt_text(body, 'public.notes.body.1') FROM notes WHERE id = 1;
SELECT tenant_guard.rewrap_keys();
SET tenant_guard.previous_master_key_file = :'master_key_file';
SELECT tenant_guard.decrypt_text(body, 'public.notes.body.1') AS during_change FROM notes WHERE id = 1;
SELECT tenant_guard.rewrap_keys() AS rewrapped;
SELECT tenant_guard.rewrap_keys() AS nothing_left;
RESET tenant_guard.previous_master_key_file;
SELECT count(DISTINCT kek_id) AS keks_after FROM tenant_guard.tenant_keys;
SELECT count(*) AS all_decrypt_under_new_key FROM notes
WHERE tenant_guard.decrypt_text(body, 'public.notes.body.' || id) = 'note ' || id;
SELECT * FROM dblink('other', format('SELECT tenant_guard.decrypt_text(%L::bytea, %L)', (SELECT body FROM notes WHERE id = 1),
                     'public.notes.body.1')) AS t(plain text);
SELECT dblink_exec('other', format('SET tenant_guard.master_key_file = %L', :'master_key2_file'));
SELECT * FROM dblink('other', format('SELECT tenant_guard.decrypt_text(%L::bytea, %L)', (SELECT body FROM notes WHERE id = 1),
                     'public.notes.body.1')) AS t(plain text);
-- the old master key alone can no longer unwrap anything
SET tenant_guard.master_key_file = :'master_key_file';
SELECT tenant_guard.decrypt_text(body, 'public.notes.body.1') FROM notes WHERE id = 1;
SET tenant_guard.master_key_file = :'master_key2_file';

-- shredding: every version of A is destroyed, B is untouched, and it is recorded
SET tenant_guard.org_id = :'org_b';
CREATE TEMP TABLE b_value AS SELECT tenant_guard.encrypt_text('b data', 'x') AS c;
SET tenant_guard.org_id = :'org_a';
SELECT tenant_guard.shred_keys(:'org_a') AS shredded_versions;
SELECT tenant_guard.decrypt_text(body, 'public.notes.body.1') FROM notes WHERE id = 1;
SELECT * FROM dblink('other', format('SELECT tenant_guard.decrypt_text(%L::bytea, %L)', (SELECT body FROM notes WHERE id = 1),
                     'public.notes.body.1')) AS t(plain text);
SELECT tenant_guard.decrypt_text(body, 'public.notes.body.1') FROM notes WHERE id = 1;
SELECT tenant_guard.reencrypt(body, 'public.notes.body.1') FROM notes WHERE id = 1;
SELECT version, state, wrapped_key IS NULL AS no_key, kek_id IS NULL AS no_kek, shredded_at IS NOT NULL AS at_set,
       shredded_by FROM tenant_guard.tenant_keys WHERE org_id = :'org_a' ORDER BY version;
SELECT tenant_guard.shred_keys(:'org_a') AS again;
SET tenant_guard.org_id = :'org_b';
SELECT tenant_guard.decrypt_text(c, 'x') AS b_unaffected FROM b_value;
SET tenant_guard.org_id = :'org_a';
-- a tenant used again after its shred gets a new key version; old data stays unreadable
SELECT tenant_guard.key_version(tenant_guard.encrypt('new life'::bytea)) AS new_version;
SELECT tenant_guard.decrypt_text(body, 'public.notes.body.1') FROM notes WHERE id = 1;
SELECT tenant_guard.shred_keys(NULL);
SELECT org_id = :'org_a' AS org_a, event, versions, actor, session_actor FROM tenant_guard.key_events ORDER BY at, org_id, versions;

-- constraints keep the key table honest even for its owner
\set VERBOSITY terse
INSERT INTO tenant_guard.tenant_keys (org_id, version, state, wrapped_key, kek_id, created_by)
VALUES (:'org_b', 99, 'active', '\x00', '\x00', 'x');
INSERT INTO tenant_guard.tenant_keys (org_id, version, state, wrapped_key, kek_id, created_by)
SELECT org_id, 98, 'active', wrapped_key, kek_id, created_by FROM tenant_guard.tenant_keys
WHERE org_id = :'org_b' AND state = 'active';
\set VERBOSITY default

-- shredding needs no master key (erasure must not depend on it)
RESET tenant_guard.master_key_file;
SELECT tenant_guard.shred_keys(:'org_b') AS b_shredded_without_master_key;
SET tenant_guard.master_key_file = :'master_key2_file';
SET tenant_guard.org_id = :'org_b';
SELECT tenant_guard.decrypt_text(c, 'x') FROM b_value;
SET tenant_guard.org_id = :'org_a';

-- concurrent first use of a new tenant creates one key: a second session
-- waits for the first one's transaction and then uses its key
SELECT dblink_connect('third', format('host=%s port=%s dbname=%s user=postgres',
       split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database()));
SELECT dblink_exec(c, format($$SET tenant_guard.context_source = 'setting';
                               SET tenant_guard.org_id = '33333333-3333-4333-8333-333333333333';
                               SET tenant_guard.master_key_file = %L$$, :'master_key2_file'))
FROM (VALUES ('other'), ('third')) v(c);
SELECT dblink_exec('other', 'BEGIN');
SELECT * FROM dblink('other', 'SELECT tenant_guard.key_version(tenant_guard.encrypt(''first''::bytea))') AS t(v int);
SELECT dblink_send_query('third', 'SELECT tenant_guard.key_version(tenant_guard.encrypt(''second''::bytea))');
SELECT pg_sleep(0.2);
SELECT dblink_is_busy('third') AS second_session_waits;
SELECT dblink_exec('other', 'COMMIT');
SELECT * FROM dblink_get_result('third') AS t(v int);
SELECT * FROM dblink_get_result('third') AS t(v int);
SELECT version, state FROM tenant_guard.tenant_keys WHERE org_id = '33333333-3333-4333-8333-333333333333';
SELECT dblink_disconnect('third');

SELECT dblink_disconnect('other');
DROP EXTENSION dblink;
DROP TABLE notes;
