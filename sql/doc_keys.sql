-- Generated from docs/key-management.md by test/docs/extract.py; do not edit: change the page, then run
-- python3 test/docs/extract.py --write. Each block runs as the role its marker names.
SELECT current_user AS doc_superuser \gset
-- setup the page does not show (test/docs/keys.pre.sql)
-- the master key of "Creating the master key", for this test's own database, with the run's key
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
SELECT current_database() AS doc_db \gset
ALTER DATABASE :"doc_db" SET tenant_guard.master_key_file = :'master_key_file';
-- docs/key-management.md, block 1
\c - :doc_superuser
CREATE SCHEMA app;
CREATE TABLE app.accounts (org_id uuid NOT NULL, id bigint, api_key text, PRIMARY KEY (org_id, id));
INSERT INTO app.accounts VALUES ('11111111-1111-4111-8111-111111111111', 1, 'sk_live_a1'),
                                ('11111111-1111-4111-8111-111111111111', 2, 'sk_live_a2'),
                                ('22222222-2222-4222-8222-222222222222', 1, 'sk_live_b1');
SELECT tenant_guard.protect('app.accounts');
ALTER TABLE app.accounts ADD COLUMN api_key_enc bytea;
DO $$
DECLARE org text;
BEGIN
    FOR org IN SELECT t FROM tenant_guard.maintenance_tenants('app.accounts') t LOOP
        PERFORM tenant_guard.begin_maintenance(org, 'encrypt app.accounts.api_key');
        UPDATE app.accounts SET api_key_enc = tenant_guard.encrypt_text(api_key, 'app.accounts.api_key')
        WHERE org_id = tenant_guard.current_user_org_id()   -- a superuser is not held to the tenant
          AND api_key IS NOT NULL AND api_key_enc IS NULL;
    END LOOP;
END $$;
SELECT count(*) FILTER (WHERE api_key_enc IS NULL) AS left_to_do, count(*) AS rows FROM app.accounts;
ALTER TABLE app.accounts DROP COLUMN api_key;
ALTER TABLE app.accounts RENAME COLUMN api_key_enc TO api_key;
-- docs/key-management.md, block 2
\c - :doc_superuser
SELECT tenant_guard.rotate_key('11111111-1111-4111-8111-111111111111');
BEGIN;
SELECT tenant_guard.begin_maintenance('11111111-1111-4111-8111-111111111111', 're-encrypt after rotation');
-- NOTICE:  row-level security does not apply to role "postgres": its statements reach every tenant's rows in this maintenance context
UPDATE app.accounts SET api_key = tenant_guard.reencrypt(api_key, 'app.accounts.api_key')
WHERE org_id = tenant_guard.current_user_org_id() AND tenant_guard.key_version(api_key) < 2;
SELECT org_id, id, tenant_guard.key_version(api_key) FROM app.accounts ORDER BY 1, 2;
COMMIT;
-- clean-up
\c - :doc_superuser
ALTER DATABASE :"doc_db" RESET tenant_guard.master_key_file;
DROP SCHEMA app CASCADE;
