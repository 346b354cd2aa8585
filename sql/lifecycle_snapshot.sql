-- Tenant lifecycle: the per-backend list of archived and purged tenants is
-- never built from a stale snapshot. The attacker is the application role in
-- another session (dblink) whose REPEATABLE READ snapshot predates the archive
-- or the purge: its writes must be refused at once, and stay refused in its
-- later transactions. Also: an archive committed while a transaction of the
-- application already holds its write locks counts from its next statement;
-- and the per-backend cache of tenant keys: a purge shreds the tenant's keys,
-- and no session decrypts the tenant's ciphertexts after it, whatever its
-- snapshot, nor in a transaction that had the key loaded before.
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
\set SHOW_CONTEXT never
\set org_c '33333333-3333-4333-8333-333333333333'
\set org_d '44444444-4444-4444-8444-444444444444'
\set org_e '55555555-5555-4555-8555-555555555555'
SET tenant_guard.context_source = 'setting';
SET tenant_guard.master_key_file = :'master_key_file';

CREATE ROLE regress_lcs_app;
CREATE SCHEMA lcs;
GRANT USAGE ON SCHEMA lcs TO regress_lcs_app;
CREATE TABLE lcs.items (org_id uuid NOT NULL, v text);
CREATE TABLE lcs.other (org_id uuid NOT NULL, v text);
SELECT tenant_guard.protect('lcs.items'), tenant_guard.protect('lcs.other');
GRANT SELECT, INSERT, UPDATE, DELETE ON lcs.items, lcs.other TO regress_lcs_app;
SELECT tenant_guard.register_tenant(:'org_a', 'Acme'), tenant_guard.register_tenant(:'org_b', 'Beta'),
       tenant_guard.register_tenant(:'org_c', 'Charlie');
INSERT INTO lcs.items VALUES (:'org_a', 'a'), (:'org_b', 'b'), (:'org_c', 'c');

CREATE EXTENSION dblink;
CREATE FUNCTION pg_temp.connect(name text, org text) RETURNS text LANGUAGE sql AS $$
    SELECT dblink_connect(name, format('host=%s port=%s dbname=%s user=postgres',
        split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database()))
        || dblink_exec(name, 'SET tenant_guard.context_source = ''setting''')
        || dblink_exec(name, format('SET tenant_guard.master_key_file = %L', current_setting('tenant_guard.master_key_file')))
        || dblink_exec(name, format('SET tenant_guard.org_id = %L', org))
        || dblink_exec(name, 'SET ROLE regress_lcs_app')
$$;

-- 1. Archive: the application's REPEATABLE READ snapshot predates it
SELECT pg_temp.connect('app_a', :'org_a');
SELECT dblink_exec('app_a', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('app_a', 'SELECT count(*) FROM lcs.items') AS t(rows_seen bigint);
SELECT tenant_guard.archive_tenant(:'org_a') > now() AS archived;
-- the attack: write in the archived tenant from the old snapshot
SELECT dblink_exec('app_a', 'INSERT INTO lcs.items VALUES (tenant_guard.current_user_org_id(), ''from an old snapshot'')');
SELECT dblink_exec('app_a', 'ROLLBACK');
-- ... and again in a fresh transaction of the same backend
SELECT dblink_exec('app_a', 'INSERT INTO lcs.items VALUES (tenant_guard.current_user_org_id(), ''next transaction'')');
SELECT dblink_exec('app_a', 'UPDATE lcs.items SET v = ''changed''');
SELECT count(*) AS a_rows, count(*) FILTER (WHERE v <> 'a') AS a_rows_written FROM lcs.items WHERE org_id = :'org_a';
SELECT dblink_disconnect('app_a');

-- 2. Purge: the certificate says 0 rows left, and 0 it stays
SELECT pg_temp.connect('app_c', :'org_c');
SELECT dblink_exec('app_c', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('app_c', 'SELECT count(*) FROM lcs.items') AS t(rows_seen bigint);
SELECT t ->> 'table' AS tbl, t -> 'rows_after' AS rows_after
FROM jsonb_array_elements(tenant_guard.purge_tenant(:'org_c', :'org_c') -> 'tables') t ORDER BY 1;
SELECT dblink_exec('app_c', 'INSERT INTO lcs.items VALUES (tenant_guard.current_user_org_id(), ''after the purge 1'')');
SELECT dblink_exec('app_c', 'ROLLBACK');
SELECT dblink_exec('app_c', 'INSERT INTO lcs.items VALUES (tenant_guard.current_user_org_id(), ''after the purge 2'')');
SELECT dblink_exec('app_c', 'INSERT INTO lcs.other VALUES (tenant_guard.current_user_org_id(), ''after the purge 3'')');
SELECT (SELECT count(*) FROM lcs.items WHERE org_id = :'org_c') + (SELECT count(*) FROM lcs.other WHERE org_id = :'org_c')
       AS c_rows_after_purge;
SELECT dblink_disconnect('app_c');

-- 3. A transaction that already wrote (and holds its locks, so taking them
-- again processes no invalidation) sees an archive committed meanwhile at its
-- next statement
SELECT pg_temp.connect('app_b', :'org_b');
SELECT dblink_exec('app_b', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT dblink_exec('app_b', 'INSERT INTO lcs.items VALUES (tenant_guard.current_user_org_id(), ''before the archive'')');
SELECT tenant_guard.archive_tenant(:'org_b') > now() AS archived;
SELECT dblink_exec('app_b', 'INSERT INTO lcs.items VALUES (tenant_guard.current_user_org_id(), ''after the archive'')');
SELECT dblink_exec('app_b', 'ROLLBACK');
-- reactivated by another session: writable again from the next statement
SELECT dblink_exec('app_b', 'BEGIN');
SELECT dblink_exec('app_b', 'INSERT INTO lcs.other VALUES (tenant_guard.current_user_org_id(), ''still archived'')');
SELECT dblink_exec('app_b', 'ROLLBACK');
SELECT tenant_guard.reactivate_tenant(:'org_b');
SELECT dblink_exec('app_b', 'INSERT INTO lcs.other VALUES (tenant_guard.current_user_org_id(), ''reactivated'')');
SELECT v FROM lcs.other WHERE org_id = :'org_b';
SELECT dblink_disconnect('app_b');

-- 4. The archiving transaction sees its own change, and a rolled-back
-- archive leaves the tenant writable
BEGIN;
SELECT tenant_guard.archive_tenant(:'org_b') > now() AS archived;
SET LOCAL ROLE regress_lcs_app;
SET LOCAL tenant_guard.org_id = :'org_b';
INSERT INTO lcs.other VALUES (:'org_b', 'inside the archiving transaction');
ROLLBACK;
SET ROLE regress_lcs_app;
SET tenant_guard.org_id = :'org_b';
INSERT INTO lcs.other VALUES (:'org_b', 'after the rollback');
RESET tenant_guard.org_id;
RESET ROLE;
SELECT v FROM lcs.other WHERE org_id = :'org_b' ORDER BY v;

-- 5. Crypto-shredding: a purge shreds the tenant's keys; the application role
-- of a session whose REPEATABLE READ snapshot predates it cannot decrypt the
-- tenant's ciphertexts (saved before) then, nor in its next transactions
SELECT tenant_guard.register_tenant(:'org_d', 'Delta'), tenant_guard.register_tenant(:'org_e', 'Echo');
SET tenant_guard.org_id = :'org_d';
SELECT tenant_guard.encrypt_text('secret of D', 'lcs') AS ct_d \gset
SET tenant_guard.org_id = :'org_e';
SELECT tenant_guard.encrypt_text('secret of E', 'lcs') AS ct_e \gset
RESET tenant_guard.org_id;
SELECT pg_temp.connect('app_d', :'org_d');
SELECT dblink_exec('app_d', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('app_d', 'SELECT count(*) FROM lcs.items') AS t(rows_seen bigint);
SELECT jsonb_array_length(tenant_guard.purge_tenant(:'org_d', :'org_d') -> 'key_versions_shredded') AS d_keys_shredded;
SELECT * FROM dblink('app_d', format('SELECT tenant_guard.decrypt_text(%L::bytea, %L)', :'ct_d', 'lcs')) AS t(plaintext text);
SELECT dblink_exec('app_d', 'ROLLBACK');
SELECT * FROM dblink('app_d', format('SELECT tenant_guard.decrypt_text(%L::bytea, %L)', :'ct_d', 'lcs')) AS t(plaintext text);
SELECT dblink_disconnect('app_d');
-- ... nor in a parallel query, where the key is read in parallel mode (the
-- application role can make any query parallel with its own settings)
\set org_f '66666666-6666-4666-8666-666666666666'
SELECT tenant_guard.register_tenant(:'org_f', 'Foxtrot');
SET tenant_guard.org_id = :'org_f';
SELECT tenant_guard.encrypt_text('secret of F', 'lcs') AS ct_f \gset
INSERT INTO lcs.items VALUES (:'org_f', 'f');
RESET tenant_guard.org_id;
SELECT pg_temp.connect('app_f', :'org_f');
CREATE FUNCTION pg_temp.parallel(name text) RETURNS text LANGUAGE sql AS $$
    SELECT dblink_exec(name, 'SET parallel_setup_cost = 0')
        || dblink_exec(name, 'SET parallel_tuple_cost = 0')
        || dblink_exec(name, 'SET min_parallel_table_scan_size = 0')
        || dblink_exec(name, 'SET max_parallel_workers_per_gather = 2')
        || dblink_exec(name, 'SET enable_bitmapscan = off')
        || dblink_exec(name, 'SET enable_indexscan = off')
$$;
SELECT pg_temp.parallel('app_f');
SELECT dblink_exec('app_f', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('app_f', 'SELECT count(*) FROM lcs.items') AS t(rows_seen bigint);
SELECT jsonb_array_length(tenant_guard.purge_tenant(:'org_f', :'org_f') -> 'key_versions_shredded') AS f_keys_shredded;
-- (the plan: decrypt_text() above a Gather, so the leader runs it in parallel mode)
SELECT * FROM dblink('app_f', format(
    'EXPLAIN (COSTS OFF) SELECT max(tenant_guard.decrypt_text(%L::bytea, %L)) FROM lcs.items', :'ct_f', 'lcs')) AS t(line text);
SELECT * FROM dblink('app_f', format('SELECT max(tenant_guard.decrypt_text(%L::bytea, %L)) FROM lcs.items', :'ct_f', 'lcs'))
    AS t(plaintext text);
SELECT dblink_exec('app_f', 'ROLLBACK');
SELECT dblink_disconnect('app_f');
-- (a tenant that is not purged decrypts in the same parallel query as usual)
SET tenant_guard.org_id = :'org_b';
SELECT tenant_guard.encrypt_text('secret of B', 'lcs') AS ct_b \gset
RESET tenant_guard.org_id;
SELECT pg_temp.connect('app_b2', :'org_b');
SELECT pg_temp.parallel('app_b2');
SELECT * FROM dblink('app_b2', format('SELECT max(tenant_guard.decrypt_text(%L::bytea, %L)) FROM lcs.items', :'ct_b', 'lcs'))
    AS t(plaintext text);
SELECT dblink_disconnect('app_b2');
-- a transaction that decrypted before the purge cannot after it
SELECT pg_temp.connect('app_e', :'org_e');
SELECT dblink_exec('app_e', 'BEGIN');
SELECT * FROM dblink('app_e', format('SELECT tenant_guard.decrypt_text(%L::bytea, %L)', :'ct_e', 'lcs')) AS t(plaintext text);
SELECT jsonb_array_length(tenant_guard.purge_tenant(:'org_e', :'org_e') -> 'key_versions_shredded') AS e_keys_shredded;
SELECT * FROM dblink('app_e', format('SELECT tenant_guard.decrypt_text(%L::bytea, %L)', :'ct_e', 'lcs')) AS t(plaintext text);
SELECT dblink_exec('app_e', 'ROLLBACK');
SELECT dblink_disconnect('app_e');

DROP EXTENSION dblink;
DROP SCHEMA lcs CASCADE;
DROP ROLE regress_lcs_app;
