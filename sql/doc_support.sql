-- Generated from docs/support-access.md by test/docs/extract.py; do not edit: change the page, then run
-- python3 test/docs/extract.py --write. Each block runs as the role its marker names.
SELECT current_user AS doc_superuser \gset
-- setup the page does not show (test/docs/support.pre.sql)
-- the page's first block, for this test's own database
SELECT current_database() AS doc_db \gset
ALTER DATABASE :"doc_db" SET tenant_guard.context_source = 'signed';
-- docs/support-access.md, block 2
\c - :doc_superuser
CREATE SCHEMA app;
CREATE TABLE app.invoices (org_id uuid NOT NULL, id bigint, status text NOT NULL, PRIMARY KEY (org_id, id));
INSERT INTO app.invoices VALUES ('11111111-1111-4111-8111-111111111111', 42, 'draft'),
                                ('22222222-2222-4222-8222-222222222222', 42, 'draft');
SELECT tenant_guard.protect('app.invoices');
SELECT tenant_guard.enable_audit('app.invoices');
CREATE ROLE regress_support_app_user NOLOGIN;                 -- the application's table privileges
GRANT USAGE ON SCHEMA app TO regress_support_app_user;
GRANT SELECT, UPDATE ON app.invoices TO regress_support_app_user;
CREATE ROLE regress_support_dana LOGIN;                       -- a support agent
GRANT tenant_guard_support TO regress_support_dana;
GRANT regress_support_app_user TO regress_support_dana;
-- a ticket needs access to Acme: the grant's token is shown once (psql keeps it in a variable here;
-- your internal tool hands it to the agent)
SELECT tenant_guard.issue_support_grant('11111111-1111-4111-8111-111111111111', 'dana@platform.example',
                                        'ticket 4711: invoice stuck in draft') AS token \gset
-- docs/support-access.md, block 3
\c - regress_support_dana
SELECT count(*) AS visible FROM app.invoices;
SELECT set_config('request.jwt.claims', '{"org_id": "22222222-2222-4222-8222-222222222222"}', false) IS NOT NULL;
SELECT count(*) AS visible FROM app.invoices;
CALL tenant_guard.begin_support_session(:'token');
-- NOTICE:  support session started for tenant 11111111-1111-4111-8111-111111111111
SELECT tenant_guard.current_user_role(), tenant_guard.current_impersonator();
SELECT org_id, id, status FROM app.invoices;
UPDATE app.invoices SET status = 'sent' WHERE id = 42;
SELECT tenant_guard.end_support_session();
SELECT count(*) AS visible FROM app.invoices;
CALL tenant_guard.begin_support_session(:'token');
-- ERROR:  support token refused
-- docs/support-access.md, block 4
\c - :doc_superuser
SELECT action, actor, impersonator FROM tenant_guard.audit_trail
WHERE org = '11111111-1111-4111-8111-111111111111' ORDER BY id, item;
-- clean-up
\c - :doc_superuser
ALTER DATABASE :"doc_db" RESET tenant_guard.context_source;
SELECT tenant_guard.disable_audit('app.invoices');
DROP SCHEMA app CASCADE;
DROP OWNED BY regress_support_app_user, regress_support_dana;
DROP ROLE regress_support_app_user, regress_support_dana;
