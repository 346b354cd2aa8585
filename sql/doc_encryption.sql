-- Generated from docs/encryption.md by test/docs/extract.py; do not edit: change the page, then run
-- python3 test/docs/extract.py --write. Each block runs as the role its marker names.
SELECT current_user AS doc_superuser \gset
-- setup the page does not show (test/docs/encryption.pre.sql)
-- the page's first block, for this test's own database, with the run's master key
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
SELECT current_database() AS doc_db \gset
ALTER DATABASE :"doc_db" SET tenant_guard.master_key_file = :'master_key_file';
-- docs/encryption.md, block 2
\c - :doc_superuser
CREATE SCHEMA app;
CREATE TABLE app.accounts (org_id uuid NOT NULL, id bigint, api_key bytea, api_key_idx bytea,
                           PRIMARY KEY (org_id, id));
SELECT tenant_guard.protect('app.accounts');
CREATE ROLE regress_encryption_app_user LOGIN;
GRANT USAGE ON SCHEMA app TO regress_encryption_app_user;
GRANT SELECT, INSERT, UPDATE ON app.accounts TO regress_encryption_app_user;
-- docs/encryption.md, block 3
\c - regress_encryption_app_user
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id": "11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL;
INSERT INTO app.accounts (id, api_key, api_key_idx)
VALUES (7, tenant_guard.encrypt_text('sk_live_acme', 'app.accounts.api_key'),
        tenant_guard.blind_index('sk_live_acme', 'app.accounts.api_key'));
SELECT tenant_guard.decrypt_text(api_key, 'app.accounts.api_key') FROM app.accounts WHERE id = 7;
SELECT id FROM app.accounts WHERE api_key_idx = tenant_guard.blind_index('sk_live_acme', 'app.accounts.api_key');
SELECT tenant_guard.key_version(api_key), octet_length(api_key) > 12 AS ciphertext FROM app.accounts;
COMMIT;
-- docs/encryption.md, block 4
\c - regress_encryption_app_user
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id": "11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL;
CREATE TEMP TABLE stolen ON COMMIT DROP AS SELECT api_key FROM app.accounts;
SELECT set_config('request.jwt.claims', '{"org_id": "22222222-2222-4222-8222-222222222222"}', true) IS NOT NULL;
SELECT tenant_guard.decrypt_text(api_key, 'app.accounts.api_key') FROM stolen;
ROLLBACK;
-- clean-up
\c - :doc_superuser
ALTER DATABASE :"doc_db" RESET tenant_guard.master_key_file;
DROP SCHEMA app CASCADE;
DROP OWNED BY regress_encryption_app_user;
DROP ROLE regress_encryption_app_user;
