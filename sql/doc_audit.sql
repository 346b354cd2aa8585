-- Generated from docs/audit.md by test/docs/extract.py; do not edit: change the page, then run
-- python3 test/docs/extract.py --write. Each block runs as the role its marker names.
SELECT current_user AS doc_superuser \gset
-- docs/audit.md, block 1
\c - :doc_superuser
CREATE SCHEMA app;
CREATE TABLE app.members (
    org_id        uuid NOT NULL,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    email         text NOT NULL,
    password_hash text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id));
SELECT tenant_guard.protect('app.members');                       -- the tenant comes from the row
SELECT tenant_guard.enable_audit('app.members',
         exclude_columns => '{updated_at}',                         -- left out of the snapshots
         redact_columns  => '{password_hash}');                     -- replaced by "[redacted]"
CREATE ROLE regress_audit_app_user LOGIN;
GRANT USAGE ON SCHEMA app TO regress_audit_app_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.members TO regress_audit_app_user;
-- docs/audit.md, block 2
\c - regress_audit_app_user
BEGIN;
SELECT set_config('request.jwt.claims',
  '{"org_id": "11111111-1111-4111-8111-111111111111", "sub": "alice", "org_role": "admin"}', true) IS NOT NULL;
INSERT INTO app.members (email, password_hash) VALUES ('bob@acme.example', 'argon2:1');
UPDATE app.members SET password_hash = 'argon2:2', updated_at = now();
SELECT tenant_guard.audit_event('member.role_changed', '{"member": 1, "to": "admin"}') > 0 AS recorded;
COMMIT;
BEGIN;
SELECT set_config('request.jwt.claims',
  '{"org_id": "11111111-1111-4111-8111-111111111111", "sub": "alice", "org_role": "admin"}', true) IS NOT NULL;
SELECT action, actor, changed_columns, new_row ->> 'password_hash' AS password_hash, new_row ? 'updated_at' AS has_ts
FROM tenant_guard.audit_trail ORDER BY id, item;
--        action        | actor | changed_columns | password_hash | has_ts
-- ---------------------+-------+-----------------+---------------+--------
--  INSERT              | alice |                 | [redacted]    | f
--  UPDATE              | alice | {password_hash} | [redacted]    | f
--  member.role_changed | alice |                 |               |
COMMIT;
-- docs/audit.md, block 3
\c - :doc_superuser
SELECT ok, records FROM tenant_guard.verify_audit();               -- ok, or the first broken link
-- clean-up
\c - :doc_superuser
SELECT tenant_guard.disable_audit('app.members');
DROP SCHEMA app CASCADE;
DROP OWNED BY regress_audit_app_user;
DROP ROLE regress_audit_app_user;
