-- A schema of :n tenant tables built with tenant_guard's generators, a tenth
-- of them with in-tenant role rules, plus one partitioned table with 12
-- partitions, a security_invoker view per ten tables, and an application role.
SET client_min_messages = warning;
CREATE ROLE bench_app LOGIN;
CREATE SCHEMA app;
SELECT format('CREATE TABLE app.t%s (org_id uuid NOT NULL, id bigint NOT NULL, v text, PRIMARY KEY (org_id, id))', i)
FROM generate_series(1, :n) i \gexec
CREATE TABLE app.events (org_id uuid NOT NULL, m int NOT NULL, v text) PARTITION BY LIST (m);
SELECT tenant_guard.protect_schema('app');
SELECT format('CREATE TABLE app.events_%s PARTITION OF app.events FOR VALUES IN (%s)', m, m)
FROM generate_series(1, 12) m \gexec
SELECT tenant_guard.allow(format('app.t%s', i)::regclass, 'member', '{SELECT,INSERT}')
FROM generate_series(1, :n, 10) i;
SELECT format('CREATE VIEW app.v%s WITH (security_invoker = true) AS SELECT org_id, v FROM app.t%s', i, i)
FROM generate_series(1, :n, 10) i \gexec
GRANT USAGE ON SCHEMA app TO bench_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO bench_app;
SELECT tenant_guard.register_app_role('bench_app');
SELECT count(*) FROM tenant_guard.harden_app_role('bench_app');
SELECT tenant_guard.guard_schema('app');
