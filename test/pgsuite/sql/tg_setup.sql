-- Pass b of test/pgsuite/run_pg_regress_suite.sh, first, before the suite:
-- a tenant schema the suite does not touch (a protected, audited table and a
-- protected, audited partitioned table, with rows of two tenants written by
-- a registered application role), and the suite's own schema public guarded
-- by guard_schema(): every table the suite creates or alters there is noted
-- by the DDL event trigger and checked at COMMIT (none has the tenant column).
\set SHOW_CONTEXT never
\set VERBOSITY terse
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
SELECT count(*) AS tenant_guard_installed FROM pg_extension WHERE extname = 'tenant_guard';
SELECT tenant_guard._runtime_guards() AS runtime_guards;

CREATE ROLE regress_tg_app LOGIN;
SELECT tenant_guard.register_app_role('regress_tg_app');
CREATE SCHEMA tg_app;
GRANT USAGE ON SCHEMA tg_app TO regress_tg_app;
CREATE TABLE tg_app.accounts (id int PRIMARY KEY, org_id uuid NOT NULL, name text NOT NULL,
                              balance numeric NOT NULL DEFAULT 0);
CREATE TABLE tg_app.events (org_id uuid NOT NULL, kind text NOT NULL, n int NOT NULL, what text,
                            PRIMARY KEY (org_id, kind, n)) PARTITION BY LIST (kind);
CREATE TABLE tg_app.events_login PARTITION OF tg_app.events FOR VALUES IN ('login');
CREATE TABLE tg_app.events_other PARTITION OF tg_app.events DEFAULT;
SELECT tenant_guard.protect('tg_app.accounts');
SELECT tenant_guard.protect('tg_app.events');
SELECT tenant_guard.enable_audit('tg_app.accounts');
SELECT tenant_guard.enable_audit('tg_app.events');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA tg_app TO regress_tg_app;
SELECT tenant_guard.guard_schema('public');

-- rows of two tenants, written by the application role
SET tenant_guard.context_source = 'setting';
SET SESSION AUTHORIZATION regress_tg_app;
SET tenant_guard.org_id = :'org_a';
INSERT INTO tg_app.accounts (id, name) SELECT g, 'a' || g FROM generate_series(1, 50) g;
INSERT INTO tg_app.events (kind, n, what) SELECT k, g, 'a' FROM generate_series(1, 20) g, unnest('{login,other}'::text[]) k;
SET tenant_guard.org_id = :'org_b';
INSERT INTO tg_app.accounts (id, name) SELECT g, 'b' || g FROM generate_series(51, 80) g;
INSERT INTO tg_app.events (kind, n, what) SELECT k, g, 'b' FROM generate_series(1, 10) g, unnest('{login,other}'::text[]) k;
SELECT count(*) AS b_accounts FROM tg_app.accounts;
RESET tenant_guard.org_id;
RESET SESSION AUTHORIZATION;
RESET tenant_guard.context_source;

SELECT org_id, count(*) FROM tg_app.accounts GROUP BY 1 ORDER BY 1;
SELECT * FROM tenant_guard.verify();
SELECT ok, records > 0 AS recorded FROM tenant_guard.verify_audit();
