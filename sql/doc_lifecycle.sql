-- Generated from docs/lifecycle.md by test/docs/extract.py; do not edit: change the page, then run
-- python3 test/docs/extract.py --write. Each block runs as the role its marker names.
SELECT current_user AS doc_superuser \gset
-- docs/lifecycle.md, block 1
\c - :doc_superuser
CREATE SCHEMA app;
CREATE TABLE app.notes (org_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, body text NOT NULL,
                        PRIMARY KEY (org_id, id));
SELECT tenant_guard.protect('app.notes');
CREATE ROLE regress_lifecycle_app_user LOGIN;
GRANT USAGE ON SCHEMA app TO regress_lifecycle_app_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.notes TO regress_lifecycle_app_user;
GRANT EXECUTE ON FUNCTION tenant_guard.export_tenant(text, text[]) TO regress_lifecycle_app_user;
SELECT tenant_guard.register_tenant('11111111-1111-4111-8111-111111111111', 'Acme');
SELECT tenant_guard.register_tenant('22222222-2222-4222-8222-222222222222', 'Globex');
-- docs/lifecycle.md, block 2
\c - regress_lifecycle_app_user
BEGIN;
SELECT set_config('request.jwt.claims',
  '{"org_id": "11111111-1111-4111-8111-111111111111", "sub": "alice", "org_role": "admin"}', true) IS NOT NULL;
INSERT INTO app.notes (body) VALUES ('kick-off'), ('retro');
SELECT d -> 'manifest' -> 'documents' AS documents, d -> 'manifest' -> 'complete' AS complete
FROM tenant_guard.export_tenant('11111111-1111-4111-8111-111111111111') d WHERE d ? 'manifest';
--  documents | complete
-- -----------+----------
--  2         | true
SELECT count(*) FROM tenant_guard.export_tenant('22222222-2222-4222-8222-222222222222');
-- ERROR:  export of tenant 22222222-2222-4222-8222-222222222222 needs that tenant's context
ROLLBACK;
BEGIN;
SELECT set_config('request.jwt.claims',
  '{"org_id": "11111111-1111-4111-8111-111111111111", "sub": "alice", "org_role": "admin"}', true) IS NOT NULL;
INSERT INTO app.notes (body) VALUES ('kick-off'), ('retro');
COMMIT;
-- docs/lifecycle.md, block 3
\c - :doc_superuser
SELECT tenant_guard.archive_tenant('11111111-1111-4111-8111-111111111111', '30 days') > now() AS purge_due_later;
-- docs/lifecycle.md, block 4
\c - regress_lifecycle_app_user
BEGIN;
SELECT set_config('request.jwt.claims',
  '{"org_id": "11111111-1111-4111-8111-111111111111", "sub": "alice", "org_role": "admin"}', true) IS NOT NULL;
SELECT count(*) AS readable FROM app.notes;
INSERT INTO app.notes (body) VALUES ('after the archive');
-- ERROR:  tenant 11111111-1111-4111-8111-111111111111 is archived: its data is read-only
ROLLBACK;
-- docs/lifecycle.md, block 5
\c - :doc_superuser
SELECT c -> 'tables' AS tables, c -> 'not_covered' AS not_covered, c ? 'sha256' AS signed_digest
FROM tenant_guard.purge_tenant('11111111-1111-4111-8111-111111111111', '11111111-1111-4111-8111-111111111111') c;
SELECT status FROM tenant_guard.tenants ORDER BY org_id;
-- clean-up
\c - :doc_superuser
DROP SCHEMA app CASCADE;
DROP OWNED BY regress_lifecycle_app_user;
DROP ROLE regress_lifecycle_app_user;
