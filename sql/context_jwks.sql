-- Signed mode with a JSON Web Key Set (tenant_guard.jwt_jwks_file): a key
-- rotation with overlap, keys chosen by kid, each key verifying its own
-- algorithm only, a removed key, string and bigint org ids on protected
-- tables, and service tokens for background jobs (recorded as such in the
-- audit log). Keys and tokens are made per run by
-- test/fixtures/make_fixtures.py (PyJWT, independent of tenant_guard).
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
SET tenant_guard.context_source = 'signed';
SET tenant_guard.jwt_audience = :'audience';
SET tenant_guard.jwt_jwks_file = :'jwks_file';

-- during a rotation both the old (RS256) and the new (ES256) key verify
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_old_a')) = :'org_a' AS old_key_a;
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_new_a')) = :'org_a' AS new_key_a;
SELECT tenant_guard.current_user_id(), tenant_guard.current_user_role();
COMMIT;

-- refused: an unknown kid, no kid while the set holds several keys, the kid
-- of a key for encryption (skipped), the kid of a key with another algorithm,
-- an HS256 token signed with the RSA key's public PEM, alg none
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_unknown_kid'));
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_no_kid'));
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_enc_kid'));
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_kid_other_alg'));
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_confusion'));
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_none'));
-- while a key set is configured, the single key settings are not used
SET tenant_guard.jwt_algorithm = 'HS256';
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a'));
RESET tenant_guard.jwt_algorithm;
RESET tenant_guard.jwt_secret_file;

-- the rotation ends: the old key is removed from the file, in place. The next
-- set_context() reads the changed file (no reload needed) and refuses the old
-- key's tokens, however long they still live.
\! cp "$TG_TEST_DIR/jwks.json" "$TG_TEST_DIR/jwks_rotating.json" && chown --reference="$TG_TEST_DIR/jwks.json" "$TG_TEST_DIR/jwks_rotating.json" && chmod 600 "$TG_TEST_DIR/jwks_rotating.json"
\set jwks_rotating `echo "$TG_TEST_DIR/jwks_rotating.json"`
SET tenant_guard.jwt_jwks_file = :'jwks_rotating';
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_old_a')) = :'org_a' AS old_key_before;
COMMIT;
\! cp "$TG_TEST_DIR/jwks_after.json" "$TG_TEST_DIR/jwks_rotating.json"
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_old_a'));
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_new_a')) = :'org_a' AS new_key_after;
COMMIT;
-- a single-key set takes a token without kid, with that key's algorithm
\! cp "$TG_TEST_DIR/jwks_loose.json" "$TG_TEST_DIR/jwks_rotating.json"
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_no_kid')) = :'org_a' AS sole_key_no_kid;
COMMIT;
SET tenant_guard.jwt_jwks_file = :'jwks_file';

-- file problems refuse every token until fixed: loose mode, an invalid key,
-- private key material, a missing file
SET tenant_guard.jwt_jwks_file = :'jwks_loose_file';
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_new_a'));
SET tenant_guard.jwt_jwks_file = :'jwks_bad_file';
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_new_a'));
SET tenant_guard.jwt_jwks_file = :'jwks_private_file';
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_new_a'));
SET tenant_guard.jwt_jwks_file = :'missing_file';
SELECT tenant_guard.set_context(pg_temp.tok('tok_jwks_new_a'));
SET tenant_guard.jwt_jwks_file = :'jwks_file';

-- string and bigint org ids: protected text and bigint tenant columns
CREATE ROLE regress_jwks_app;
CREATE SCHEMA jw;
GRANT USAGE ON SCHEMA jw TO regress_jwks_app;
CREATE TABLE jw.notes (org_id text NOT NULL, body text NOT NULL);
CREATE TABLE jw.counters (org_id bigint NOT NULL, n int NOT NULL);
SELECT tenant_guard.protect('jw.notes'), tenant_guard.protect('jw.counters');
GRANT SELECT, INSERT, UPDATE, DELETE ON jw.notes, jw.counters TO regress_jwks_app;
INSERT INTO jw.notes VALUES ('org_2abcA', 'a1'), ('org_2abcA', 'a2'), ('org_2xyzB', 'b1');
INSERT INTO jw.counters VALUES (42, 1), (43, 2), (-9223372036854775808, 3);
SET ROLE regress_jwks_app;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_text_a')) IS NULL AS no_uuid_for_a_text_id;
SELECT tenant_guard.current_user_org_text(), tenant_guard.current_user_org_id(),
       tenant_guard.current_user_org_bigint(), tenant_guard.current_user_role();
SELECT body FROM jw.notes ORDER BY body;
INSERT INTO jw.notes VALUES ('org_2xyzB', 'planted in B');
ROLLBACK;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_text_b')) IS NULL AS text_b;
SELECT body FROM jw.notes ORDER BY body;
INSERT INTO jw.notes VALUES ('org_2xyzB', 'b2');
SELECT count(*) AS counters_seen FROM jw.counters;
COMMIT;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_bigint_a')) IS NULL AS bigint_42;
SELECT tenant_guard.current_user_org_bigint(), tenant_guard.current_user_org_text();
SELECT n FROM jw.counters;
SELECT count(*) AS notes_seen FROM jw.notes;
COMMIT;
-- bigint overflow: 2^63 is a text id, never a bigint (it would have wrapped to -2^63)
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_bigint_overflow')) IS NULL AS overflow;
SELECT tenant_guard.current_user_org_text(), tenant_guard.current_user_org_bigint() IS NULL AS no_bigint;
SELECT count(*) AS counters_seen FROM jw.counters;
COMMIT;
-- a text id with a NUL byte, or longer than 255 bytes, is no tenant
SELECT tenant_guard.set_context(pg_temp.tok('tok_text_nul'));
SELECT tenant_guard.set_context(pg_temp.tok('tok_text_long'));
RESET ROLE;

-- service tokens: a background job for one tenant, no user. Only the keys
-- listed in jwt_service_key_ids sign them, and those keys sign nothing else.
SET tenant_guard.jwt_service_key_ids = ' jobs-1 , spare-2';
-- (a day, not the default 15 minutes: the fixture tokens are minted when the suite starts)
SET tenant_guard.jwt_service_max_lifetime = '1d';
CREATE TABLE jw.invoices (org_id text NOT NULL, amount int NOT NULL);
SELECT tenant_guard.protect('jw.invoices');
SELECT tenant_guard.enable_audit('jw.invoices');
GRANT SELECT, INSERT ON jw.invoices TO regress_jwks_app;
SET ROLE regress_jwks_app;
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_svc_a')) IS NULL AS service_a;
SELECT tenant_guard.current_user_org_text(), tenant_guard.current_user_id(), tenant_guard.current_user_role(),
       tenant_guard.current_impersonator();
INSERT INTO jw.invoices VALUES ('org_2abcA', 100);
SELECT body FROM jw.notes ORDER BY body;
COMMIT;
-- a service key cannot sign a user token; a user key cannot sign a service
-- token; a service token acts for no one and lives at most jwt_service_max_lifetime
SELECT tenant_guard.set_context(pg_temp.tok('tok_svc_user_sub'));
SELECT tenant_guard.set_context(pg_temp.tok('tok_svc_by_user_key'));
SELECT tenant_guard.set_context(pg_temp.tok('tok_svc_act'));
SELECT tenant_guard.set_context(pg_temp.tok('tok_svc_too_long'));
-- the service settings are superuser-only
SET tenant_guard.jwt_service_key_ids = '2026-new';
SET tenant_guard.jwt_service_max_lifetime = 86400;
SET tenant_guard.jwt_jwks_file = '/tmp/attacker.json';
\set VERBOSITY sqlstate
SHOW tenant_guard.jwt_jwks_file;   -- 42501 (PostgreSQL's wording differs between majors)
\set VERBOSITY default
RESET ROLE;
-- the audit log records the job as the actor, under its own name
SELECT org, action, table_name, actor, impersonator, tenant_role FROM tenant_guard.audit_trail
WHERE table_name = 'jw.invoices' ORDER BY id;
-- a string tenant's chain verifies and exports by its id; another tenant's id
-- finds none of its records; a padded id is refused
SELECT ok, records > 0 AS has_records FROM tenant_guard.verify_audit('org_2abcA');
SELECT ok, records FROM tenant_guard.verify_audit('org_2xyzB');
SELECT count(*) FILTER (WHERE line LIKE '%jw.invoices%') AS invoice_lines
FROM tenant_guard.audit_csv('org_2abcA', '-infinity', 'infinity') AS line;
SELECT count(*) FROM tenant_guard.audit_csv('org_2xyzB', '-infinity', 'infinity') AS line;
SELECT ok FROM tenant_guard.verify_audit(' org_2abcA');
SELECT count(*) FROM tenant_guard.audit_csv('org_2abcA ', '-infinity', 'infinity');
-- without the listing, the job's key is an ordinary key and its token is refused
RESET tenant_guard.jwt_service_key_ids;
SELECT tenant_guard.set_context(pg_temp.tok('tok_svc_a'));
SELECT name, setting <> '' AS set, context FROM pg_settings
WHERE name LIKE 'tenant_guard.jwt_service%' OR name = 'tenant_guard.jwt_jwks_file' ORDER BY name;
