-- Column encryption, basics: the master key settings and their refusals,
-- round trips, NULLs, the tenant binding, aad binding, tampering with every
-- envelope field, truncation and foreign formats. Keys are made per run by
-- test/fixtures/make_fixtures.py.
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
\set SHOW_CONTEXT never
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = :'org_a';

-- no master key: every key-using function fails with one clear error
SELECT tenant_guard.encrypt('x'::bytea);
SELECT tenant_guard.encrypt_text('x');
SELECT tenant_guard.decrypt('\x0100000001000000000000000000000000000000000000000000000000000000000000'::bytea);
SELECT tenant_guard.blind_index('x', 'email');
SELECT tenant_guard.rotate_key();
SELECT tenant_guard.rewrap_keys();
-- ...but NULL in is NULL out, and nothing was created
SELECT tenant_guard.encrypt(NULL) IS NULL AS null_out;
SELECT count(*) AS keys FROM tenant_guard.tenant_keys;

-- refused key sources: loose permissions, wrong format, missing file, both set
SET tenant_guard.master_key_file = :'master_key_loose_file';
SELECT tenant_guard.encrypt('x'::bytea);
SET tenant_guard.master_key_file = :'master_key_bad_file';
SELECT tenant_guard.encrypt('x'::bytea);
SET tenant_guard.master_key_file = :'missing_file';
SELECT tenant_guard.encrypt('x'::bytea);
SET tenant_guard.master_key_file = :'master_key_file';
SELECT set_config('tenant_guard.master_key_command', 'cat ' || :'master_key_file', false) IS NOT NULL AS set;
SELECT tenant_guard.encrypt('x'::bytea);
RESET tenant_guard.master_key_command;
SELECT count(*) AS keys_still_none FROM tenant_guard.tenant_keys;

-- the settings are superuser-only and hidden from others
CREATE ROLE regress_cb_app;
SET ROLE regress_cb_app;
-- 42501 (insufficient_privilege); the message's wording differs between majors
\set VERBOSITY sqlstate
SHOW tenant_guard.master_key_file;
\set VERBOSITY default
SET tenant_guard.master_key_file = '/tmp/evil.key';
SELECT count(*) FROM pg_settings WHERE name = 'tenant_guard.master_key_file';
RESET ROLE;

-- round trips
SELECT tenant_guard.decrypt(tenant_guard.encrypt(v, 'public.t.c'), 'public.t.c') = v AS same, length(v) AS len
FROM (VALUES (''::bytea), ('\x00'::bytea), ('\x41'::bytea), ('\x00ff0001feff00'::bytea),
             (decode(repeat('00ff', 40000), 'hex')), (convert_to(repeat('x', 1000000), 'UTF8'))) t(v);
SELECT tenant_guard.decrypt_text(tenant_guard.encrypt_text(v, 'a'), 'a') = v AS same, octet_length(v) AS bytes
FROM (VALUES (''), ('a'), ('Grüße, 世界 👋'), (repeat('ü', 100000))) t(v);
-- envelope: format byte, key version, 33 bytes of overhead, a fresh nonce every time
SELECT get_byte(c, 0) AS format, tenant_guard.key_version(c) AS version, length(c) AS len
FROM (SELECT tenant_guard.encrypt('hello'::bytea) AS c) s;
SELECT count(DISTINCT tenant_guard.encrypt('same'::bytea)) AS distinct_ciphertexts FROM generate_series(1, 100);
-- default aad is ''
SELECT tenant_guard.decrypt_text(tenant_guard.encrypt_text('x'), '') AS default_aad;
-- the first use created exactly one active key for tenant A, wrapped, never in clear
SELECT org_id = :'org_a' AS org_a, version, state, length(wrapped_key) AS wrapped_len, length(kek_id) AS kek_id_len,
       created_by FROM tenant_guard.tenant_keys;
SELECT org_id = :'org_a' AS org_a, event, versions, actor FROM tenant_guard.key_events;

-- NULLs: value NULL gives NULL; aad NULL is an error (it would lose the value)
SELECT tenant_guard.encrypt(NULL, 'a') IS NULL AS enc, tenant_guard.decrypt(NULL, 'a') IS NULL AS dec,
       tenant_guard.decrypt_text(NULL) IS NULL AS dec_text, tenant_guard.reencrypt(NULL) IS NULL AS reenc,
       tenant_guard.key_version(NULL) IS NULL AS ver, tenant_guard.blind_index(NULL, 'c') IS NULL AS bidx;
SELECT tenant_guard.encrypt('x'::bytea, NULL);
SELECT tenant_guard.decrypt(tenant_guard.encrypt('x'::bytea), NULL);
SELECT tenant_guard.blind_index('x', NULL);

CREATE TEMP TABLE ct AS SELECT tenant_guard.encrypt_text('the secret', 'public.t.c') AS c;

-- wrong aad: another column, another row id, a different split
SELECT tenant_guard.decrypt_text(c, 'public.t.d') FROM ct;
SELECT tenant_guard.decrypt_text(c, 'public.t.c ') FROM ct;
SELECT tenant_guard.decrypt_text(c, '') FROM ct;

-- no tenant context
SET tenant_guard.org_id = '';
SELECT tenant_guard.decrypt_text(c, 'public.t.c') FROM ct;
SELECT tenant_guard.encrypt('x'::bytea);

-- wrong tenant, as an attack: B copies A's ciphertext into its own row
SET tenant_guard.org_id = :'org_b';
SELECT tenant_guard.decrypt_text(c, 'public.t.c') FROM ct;
SELECT tenant_guard.encrypt_text('b''s own') IS NOT NULL AS b_has_a_key_now;
SELECT tenant_guard.decrypt_text(c, 'public.t.c') FROM ct;
SET tenant_guard.org_id = :'org_a';
SELECT tenant_guard.decrypt_text(c, 'public.t.c') AS a_still_reads FROM ct;

-- one flipped bit in every byte of every envelope field: nothing decrypts
CREATE TEMP TABLE tampered AS
SELECT i, CASE WHEN i = 0 THEN 'format' WHEN i < 5 THEN 'version' WHEN i < 17 THEN 'nonce'
               WHEN i < length(c) - 16 THEN 'ciphertext' ELSE 'tag' END AS field,
       set_byte(c, i, get_byte(c, i) # 1) AS t
FROM ct, generate_series(0, length(c) - 1) i;
CREATE TEMP TABLE outcome(i int, field text, result text);
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM tampered ORDER BY i LOOP
        BEGIN
            INSERT INTO outcome VALUES (r.i, r.field, 'DECRYPTED: ' || tenant_guard.decrypt_text(r.t, 'public.t.c'));
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO outcome VALUES (r.i, r.field, SQLERRM);
        END;
    END LOOP;
END
$$;
SELECT field, result, count(*) FROM outcome GROUP BY field, result ORDER BY min(i);

-- truncated at every length, extended, foreign formats, pgcrypto-style input
CREATE TEMP TABLE cut_outcome(n int, result text);
DO $$
DECLARE c bytea := (SELECT ct.c FROM ct); n int;
BEGIN
    FOR n IN 0 .. length(c) - 1 LOOP
        BEGIN
            PERFORM tenant_guard.decrypt(substr(c, 1, n), 'public.t.c');
            INSERT INTO cut_outcome VALUES (n, 'DECRYPTED');
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO cut_outcome VALUES (n, SQLERRM);
        END;
    END LOOP;
END
$$;
SELECT result, min(n), max(n), count(*) FROM cut_outcome GROUP BY result ORDER BY min(n);
SELECT tenant_guard.decrypt(c || '\x00'::bytea, 'public.t.c') FROM ct;
SELECT tenant_guard.decrypt('\x02'::bytea || substr(c, 2), 'public.t.c') FROM ct;
SELECT tenant_guard.decrypt(convert_to('plain text, never encrypted', 'UTF8'));
SELECT tenant_guard.decrypt('\x0100000000'::bytea || substr(c, 6), 'public.t.c') FROM ct;
SELECT tenant_guard.decrypt('\x01000000630000000000000000000000000000000000000000000000000000000000'::bytea);
SELECT tenant_guard.key_version('\x'::bytea);
SELECT tenant_guard.key_version('\x01000000'::bytea);
-- decrypt_text of binary plaintext is refused without echoing its bytes
SELECT tenant_guard.decrypt_text(tenant_guard.encrypt('\x41ff42'::bytea));
SELECT tenant_guard.decrypt_text(tenant_guard.encrypt('\x410042'::bytea));

-- an application role: can encrypt for its own context, cannot read the key table
SET ROLE regress_cb_app;
SELECT tenant_guard.decrypt_text(tenant_guard.encrypt_text('as app', 'x'), 'x') AS app_round_trip;
SELECT * FROM tenant_guard.tenant_keys;
SELECT * FROM tenant_guard.key_events;
UPDATE tenant_guard.tenant_keys SET state = 'retired';
SELECT tenant_guard.rotate_key();
SELECT tenant_guard.shred_keys(:'org_b');
SELECT tenant_guard.rewrap_keys();
RESET ROLE;

-- the raw 32-byte key format and the command work; a different master key
-- cannot unwrap the tenant keys made under the first
SET tenant_guard.master_key_file = :'master_key_raw_file';
SELECT tenant_guard.decrypt_text(c, 'public.t.c') FROM ct;
RESET tenant_guard.master_key_file;
SELECT set_config('tenant_guard.master_key_command', 'cat ' || :'master_key_file', false) IS NOT NULL AS set;
SELECT tenant_guard.decrypt_text(c, 'public.t.c') AS via_command FROM ct;
SET tenant_guard.master_key_command = 'exit 3';
SELECT tenant_guard.decrypt_text(c, 'public.t.c') FROM ct;
SET tenant_guard.master_key_command = 'echo short';
SELECT tenant_guard.decrypt_text(c, 'public.t.c') FROM ct;
RESET tenant_guard.master_key_command;
SELECT tenant_guard.decrypt_text(c, 'public.t.c') FROM ct;

DROP ROLE regress_cb_app;
