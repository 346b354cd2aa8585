-- Attacks on the audit log through the registries and the audit triggers, as
-- the application role and as a table owner: a record may never carry a
-- tenant that did not write the row, and nothing but enable_audit() makes a
-- table audited. Each attack must fail.
\set SHOW_CONTEXT never
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
CREATE ROLE regress_forge_owner;
CREATE ROLE regress_forge_app LOGIN;
SELECT tenant_guard.register_app_role('regress_forge_app');
CREATE SCHEMA fg AUTHORIZATION regress_forge_owner;
GRANT USAGE ON SCHEMA fg TO regress_forge_app;
SET tenant_guard.context_source = 'setting';
SET ROLE regress_forge_owner;
CREATE TABLE fg.docs (id int PRIMARY KEY, org_id uuid NOT NULL, body text);
SELECT tenant_guard.protect('fg.docs');
SELECT tenant_guard.enable_audit('fg.docs');
GRANT SELECT, INSERT ON fg.docs TO regress_forge_app;
RESET ROLE;
CREATE FUNCTION pg_temp.b_records() RETURNS bigint LANGUAGE sql AS
    $$ SELECT count(*) FROM tenant_guard.audit_log WHERE org = '22222222-2222-4222-8222-222222222222' $$;
CREATE FUNCTION pg_temp.platform_records() RETURNS bigint LANGUAGE sql AS
    $$ SELECT count(*) FROM tenant_guard.audit_log WHERE org IS NULL $$;
SELECT pg_temp.b_records() AS b_before \gset
SELECT pg_temp.platform_records() AS platform_before \gset

-- 1. The application role, with no context, registers its own temporary table
--    as protected and audited, attaches the audit triggers by hand and writes
--    a row carrying B's org id: every step that would make a record is refused.
SET ROLE regress_forge_app;
CREATE TEMP TABLE docs (id int PRIMARY KEY, org_id uuid NOT NULL, body text);
INSERT INTO tenant_guard.protected_tables (tbl, tenant_column, tenant_type) VALUES ('pg_temp.docs', 'org_id', 'uuid');
INSERT INTO tenant_guard.audited_tables (tbl) VALUES ('pg_temp.docs');
CREATE TRIGGER tg_audit AFTER INSERT OR UPDATE OR DELETE ON pg_temp.docs
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_trigger();
CREATE TRIGGER tg_audit_flush AFTER INSERT OR UPDATE OR DELETE ON pg_temp.docs
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard._audit_flush();
INSERT INTO pg_temp.docs VALUES (1, :'org_b', 'forged');
-- the unqualified name is the temporary table (pg_temp comes first); writes
-- through it are refused too, and the real table is not touched
INSERT INTO docs VALUES (2, :'org_b', 'forged again');
UPDATE pg_temp.docs SET body = 'x';
-- an unregistered temporary table would have appended to the platform chain
DROP TRIGGER tg_audit ON pg_temp.docs;
CREATE TRIGGER tg_audit AFTER INSERT ON pg_temp.docs FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_trigger();
INSERT INTO pg_temp.docs VALUES (3, :'org_a', 'platform chain');
DROP TABLE pg_temp.docs;
RESET ROLE;
SELECT pg_temp.b_records() - :b_before AS forged_b_records, pg_temp.platform_records() - :platform_before AS forged_platform_records;

-- 2. The registries refuse, for every role (superusers included), what
--    tenant_guard cannot protect: temporary tables, views, missing relations.
CREATE TEMP TABLE su_temp (id int, org_id uuid);
CREATE VIEW fg.v AS SELECT * FROM fg.docs;
INSERT INTO tenant_guard.protected_tables (tbl, tenant_column, tenant_type) VALUES ('pg_temp.su_temp', 'org_id', 'uuid');
INSERT INTO tenant_guard.audited_tables (tbl) VALUES ('fg.v');
INSERT INTO tenant_guard.exemptions (tbl, reason) VALUES ('pg_temp.su_temp', 'x');
INSERT INTO tenant_guard.access_rules (tbl, role, command) VALUES ('pg_temp.su_temp', 'admin', 'SELECT');
INSERT INTO tenant_guard.audited_tables (tbl) VALUES (4000000000::oid::regclass);
UPDATE tenant_guard.audited_tables SET tbl = 'pg_temp.su_temp' WHERE tbl = 'fg.docs'::regclass;
-- the functions say it in their own words
SELECT tenant_guard.protect('pg_temp.su_temp');
SELECT tenant_guard.enable_audit('pg_temp.su_temp');
DROP VIEW fg.v;
DROP TABLE pg_temp.su_temp;

-- 3. A table owner registers its own permanent table as protected without
--    protecting it (row-level security off), audits it, and writes a row
--    carrying B's org id under A's context: the registry row alone does not
--    make the table protected, so the record takes the context's tenant (A).
SET ROLE regress_forge_owner;
CREATE TABLE fg.fake (id int PRIMARY KEY, org_id uuid NOT NULL, body text);
INSERT INTO tenant_guard.protected_tables (tbl, tenant_column, tenant_type) VALUES ('fg.fake', 'org_id', 'uuid');
SELECT tenant_guard.enable_audit('fg.fake');
SET tenant_guard.org_id = :'org_a';
INSERT INTO fg.fake VALUES (1, :'org_b', 'row says B');
RESET tenant_guard.org_id;
-- hand-made audit triggers on an owned, unaudited permanent table are refused
CREATE TABLE fg.unaudited (id int PRIMARY KEY, org_id uuid NOT NULL);
CREATE TRIGGER tg_audit AFTER INSERT ON fg.unaudited FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_trigger();
INSERT INTO fg.unaudited VALUES (1, :'org_b');
RESET ROLE;
SELECT org = :'org_a' AS recorded_as_context_tenant, org = :'org_b' AS recorded_as_b, row_count
FROM tenant_guard.audit_log WHERE table_name = 'fg.fake' AND kind = 'rows';
SELECT pg_temp.b_records() - :b_before AS forged_b_records;

-- 4. The real, protected and audited table still records the row's tenant,
--    and a tenant cannot write another tenant's row into it.
SET tenant_guard.org_id = :'org_b';
SET ROLE regress_forge_app;
INSERT INTO fg.docs VALUES (1, :'org_b', 'b writes b');
INSERT INTO fg.docs VALUES (2, :'org_a', 'b writes a');
RESET ROLE;
RESET tenant_guard.org_id;
SELECT org = :'org_b' AS recorded_as_b, row_count FROM tenant_guard.audit_log WHERE table_name = 'fg.docs' AND kind = 'rows';
SELECT ok FROM tenant_guard.verify_audit();

-- 5. A user id holding a NUL byte ("\u0000") is absent, never cut short: it
--    was recorded as the truncated actor "alice".
SET tenant_guard.context_source = 'claims';
SET ROLE regress_forge_app;
BEGIN;
SELECT set_config('request.jwt.claims',
                  format('{"org_id": "%s", "sub": "alice\u0000admin", "org_role": "admin\u0000x"}', :'org_b'), true)
       IS NOT NULL AS claims_set;
SELECT tenant_guard.current_user_org_id() = :'org_b' AS org_kept, tenant_guard.current_user_id() IS NULL AS user_absent,
       tenant_guard.current_user_role() IS NULL AS role_absent;
INSERT INTO fg.docs VALUES (3, :'org_b', 'nul actor');
COMMIT;
RESET ROLE;
SELECT actor IS NULL AS actor_absent, tenant_role IS NULL AS role_absent FROM tenant_guard.audit_log
WHERE table_name = 'fg.docs' AND kind = 'rows' ORDER BY id DESC LIMIT 1;

SELECT tenant_guard.unregister_app_role('regress_forge_app');
DROP SCHEMA fg CASCADE;
DROP ROLE regress_forge_app, regress_forge_owner;
