-- Tenant lifecycle against a polluted registry: a row of
-- tenant_guard.protected_tables that names a relation that no longer exists
-- (a table dropped without the event triggers; or the temporary table of an
-- application session, gone with the session), or a temporary table of a live
-- session. purge_tenant(), purge_due_tenants() and export_tenant() skip such
-- rows and report them (not_covered, a WARNING) instead of failing for every
-- tenant; lint() lists them (TG062).
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY terse
\set SHOW_CONTEXT never
\set org_c '33333333-3333-4333-8333-333333333333'
SET tenant_guard.context_source = 'setting';

CREATE ROLE regress_lcd_app;
CREATE SCHEMA lcd;
GRANT USAGE ON SCHEMA lcd TO regress_lcd_app;
CREATE TABLE lcd.items (org_id uuid NOT NULL, v text);
CREATE TABLE lcd.gone (org_id uuid NOT NULL, v text);
SELECT tenant_guard.protect('lcd.items'), tenant_guard.protect('lcd.gone');
GRANT SELECT, INSERT ON lcd.items TO regress_lcd_app;
SELECT tenant_guard.register_tenant(:'org_a', 'Acme'), tenant_guard.register_tenant(:'org_b', 'Beta'),
       tenant_guard.register_tenant(:'org_c', 'Charlie');
INSERT INTO lcd.items VALUES (:'org_a', 'a'), (:'org_b', 'b'), (:'org_c', 'c');

-- a registry row whose relation is gone: dropped with the event triggers off
SET session_replication_role = replica;
DROP TABLE lcd.gone;
RESET session_replication_role;
SELECT count(*) AS dangling_rows FROM tenant_guard.protected_tables p
WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.tbl);
-- a registry row naming the temporary table of another, live, session (the
-- registry's own triggers are bypassed here: this test is about the lifecycle
-- functions' robustness, not about how the row got in)
CREATE EXTENSION dblink;
SELECT dblink_connect('app', format('host=%s port=%s dbname=%s user=postgres',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database()));
SELECT dblink_exec('app', 'CREATE TEMP TABLE mine (org_id uuid NOT NULL)');
SELECT dblink_exec('app', 'SET session_replication_role = replica');
SELECT dblink_exec('app', $$INSERT INTO tenant_guard.protected_tables (tbl, tenant_column, tenant_type)
                             VALUES ('pg_temp.mine'::regclass, 'org_id', 'uuid')$$);
SELECT count(*) AS temporary_rows FROM tenant_guard.protected_tables p JOIN pg_class c ON c.oid = p.tbl
WHERE c.relpersistence = 't';

-- export: every row of the tenant, the unusable rows listed in not_covered
CREATE TEMP TABLE ex AS SELECT n, d FROM tenant_guard.export_tenant(:'org_a') WITH ORDINALITY AS e(d, n);
SELECT d ->> 'table' AS tbl, d -> 'row' ->> 'v' AS v FROM ex WHERE d ? 'row';
SELECT d -> 'manifest' -> 'tables' AS counts, d -> 'manifest' -> 'documents' AS documents FROM ex WHERE d ? 'manifest';
SELECT x ->> 'reason' AS not_covered_reason FROM ex, jsonb_array_elements(d -> 'manifest' -> 'not_covered') x
WHERE d ? 'manifest' ORDER BY 1;
-- the application role exports its own tenant the same way
GRANT EXECUTE ON FUNCTION tenant_guard.export_tenant(text, text[]) TO regress_lcd_app;
SET ROLE regress_lcd_app;
SET tenant_guard.org_id = :'org_a';
SELECT count(*) FILTER (WHERE d ? 'row') AS rows_exported,
       max(jsonb_array_length(d -> 'manifest' -> 'not_covered')) AS not_covered
FROM tenant_guard.export_tenant(:'org_a') d;
RESET tenant_guard.org_id;
RESET ROLE;

-- purge: the tenant's rows go, the certificate lists what it could not cover
SELECT t ->> 'table' AS tbl, t -> 'rows_deleted' AS deleted, t -> 'rows_after' AS after
FROM jsonb_array_elements(tenant_guard.purge_tenant(:'org_c', :'org_c') -> 'tables') t;
SELECT x ->> 'reason' AS not_covered_reason
FROM tenant_guard.purge_certificates c, jsonb_array_elements(c.certificate -> 'not_covered') x
WHERE c.org_id = :'org_c' ORDER BY 1;
SELECT count(*) AS c_rows_left FROM lcd.items WHERE org_id = :'org_c';
-- the scheduler purges due tenants too
SELECT tenant_guard.archive_tenant(:'org_b', '0') IS NOT NULL AS b_archived;
SELECT org_id = :'org_b' AS is_b, outcome FROM tenant_guard.purge_due_tenants();
SELECT status FROM tenant_guard.tenants WHERE org_id = :'org_b';
SELECT count(*) AS b_rows_left FROM lcd.items WHERE org_id = :'org_b';

-- lint names every unusable registry row (TG062)
SELECT severity, code, regexp_replace(message, '[0-9]+', 'N', 'g') AS message
FROM tenant_guard.lint() WHERE code = 'TG062' ORDER BY 3;
SELECT code, severity, area, summary FROM tenant_guard.lint_rules() WHERE code = 'TG062';

SELECT dblink_disconnect('app');
DROP EXTENSION dblink;
DELETE FROM tenant_guard.protected_tables p WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.tbl AND c.relpersistence <> 't');
REVOKE ALL ON FUNCTION tenant_guard.export_tenant(text, text[]) FROM regress_lcd_app;
DROP SCHEMA lcd CASCADE;
DROP ROLE regress_lcd_app;
