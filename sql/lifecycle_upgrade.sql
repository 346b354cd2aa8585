-- Tenant lifecycle and the 0.1.0 -> 0.2.0 update: tables protected under
-- 0.1.0 get the tg_lifecycle_* write policies from the update script, and
-- archiving then refuses their writes.
\set VERBOSITY default
\set SHOW_CONTEXT never
DROP EXTENSION tenant_guard;
CREATE EXTENSION tenant_guard VERSION '0.1.0';
CREATE ROLE regress_lcu_app;
CREATE TABLE lcu_items (org_id uuid NOT NULL, v int) PARTITION BY LIST (v);
CREATE TABLE lcu_items_1 PARTITION OF lcu_items FOR VALUES IN (1);
SELECT tenant_guard.protect('lcu_items');
GRANT SELECT, INSERT ON lcu_items TO regress_lcu_app;
SELECT count(*) AS lifecycle_policies_before FROM pg_policy WHERE polname LIKE 'tg\_lifecycle\_%';
ALTER EXTENSION tenant_guard UPDATE;
SELECT polrelid::regclass AS tbl, string_agg(polname, ', ' ORDER BY polname) AS lifecycle_policies
FROM pg_policy WHERE polname LIKE 'tg\_lifecycle\_%' GROUP BY 1 ORDER BY 1;
SELECT tenant_guard.register_tenant('11111111-1111-4111-8111-111111111111', 'old');
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = '11111111-1111-4111-8111-111111111111';
SET ROLE regress_lcu_app;
INSERT INTO lcu_items VALUES ('11111111-1111-4111-8111-111111111111', 1);
RESET ROLE;
SELECT tenant_guard.archive_tenant('11111111-1111-4111-8111-111111111111') > now() AS archived;
SET ROLE regress_lcu_app;
INSERT INTO lcu_items VALUES ('11111111-1111-4111-8111-111111111111', 1);
SELECT count(*) FROM lcu_items;
RESET ROLE;
RESET tenant_guard.org_id;
DROP TABLE lcu_items;
DROP ROLE regress_lcu_app;
