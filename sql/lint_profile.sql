-- The recommended profile (docs): every tenant table protect()ed, with a
-- random uuid primary key and an index led by the tenant column, signed
-- context, require_context on, the application role registered and
-- hardened. lint() reports nothing above info and attack_grid() no leak; the
-- unique-key existence oracle of a random uuid key is a residual (it needs
-- the key already), while the same oracle on guessable keys stays a leak.
\set SHOW_CONTEXT never
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
SET tenant_guard.context_source = 'signed';
SET tenant_guard.require_context = on;

CREATE ROLE regress_lp_owner;
CREATE ROLE regress_lp_app LOGIN;
CREATE SCHEMA app AUTHORIZATION regress_lp_owner;
SET ROLE regress_lp_owner;
CREATE TABLE app.projects (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), org_id uuid NOT NULL, name text NOT NULL,
                           UNIQUE (org_id, id));
CREATE INDEX ON app.projects (org_id);
CREATE TABLE app.tasks (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), org_id uuid NOT NULL, project_id uuid NOT NULL,
                        title text,
                        FOREIGN KEY (org_id, project_id) REFERENCES app.projects (org_id, id));
CREATE INDEX ON app.tasks (org_id, project_id);
INSERT INTO app.projects (org_id, name) VALUES (:'org_a', 'a-one'), (:'org_b', 'b-one');
INSERT INTO app.tasks (org_id, project_id, title) SELECT org_id, id, 'task of ' || name FROM app.projects;
SELECT tenant_guard.protect('app.projects'), tenant_guard.protect('app.tasks');
GRANT USAGE ON SCHEMA app TO regress_lp_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO regress_lp_app;
RESET ROLE;
SELECT tenant_guard.guard_schema('app');
SET client_min_messages = warning;
SELECT count(*) > 0 AS hardened FROM tenant_guard.harden_app_role('regress_lp_app');
RESET client_min_messages;

-- lint: nothing above info (TG039 depends on the server's minor version);
-- the random uuid keys without the tenant column are info
SELECT severity, code, object FROM tenant_guard.lint() WHERE code <> 'TG039' AND severity <> 'info';
SELECT severity, code, object, message FROM tenant_guard.lint() WHERE code = 'TG022' ORDER BY object;

-- the grid: no leak; the unique-key oracles are residuals that say why
CREATE TEMP TABLE grid AS SELECT * FROM tenant_guard.attack_grid('regress_lp_app', :'org_a', :'org_b');
SELECT tbl, vector, outcome, detail FROM grid WHERE outcome = 'leak';
SELECT tbl, vector, outcome, detail FROM grid WHERE vector IN ('unique_oracle', 'on_conflict_oracle')
ORDER BY tbl::text, vector;
SELECT tenant_guard.assert_isolated('regress_lp_app', :'org_a', :'org_b');

-- guessable keys without the tenant column stay leaks and warnings: an
-- integer, a text key, a uuid the application supplies (it may be a
-- time-ordered v7), a time-based uuid default (v1). Created and protected in
-- one transaction, as the guarded schema requires.
BEGIN;
SET ROLE regress_lp_owner;
CREATE TABLE app.by_int (id int PRIMARY KEY, org_id uuid NOT NULL);
CREATE TABLE app.by_text (slug text PRIMARY KEY, org_id uuid NOT NULL);
CREATE TABLE app.by_app_uuid (id uuid PRIMARY KEY, org_id uuid NOT NULL);
CREATE SEQUENCE app.v1_seq;
CREATE FUNCTION app.uuid_v1() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL UNSAFE
    RETURN ('00000000-0000-1000-8000-' || lpad(to_hex(nextval('app.v1_seq')), 12, '0'))::uuid;
CREATE TABLE app.by_v1 (id uuid PRIMARY KEY DEFAULT app.uuid_v1(), org_id uuid NOT NULL);
INSERT INTO app.by_int VALUES (1, :'org_a'), (2, :'org_b');
INSERT INTO app.by_text VALUES ('a-slug', :'org_a'), ('b-slug', :'org_b');
INSERT INTO app.by_app_uuid VALUES (gen_random_uuid(), :'org_a'), (gen_random_uuid(), :'org_b');
INSERT INTO app.by_v1 (org_id) VALUES (:'org_a'), (:'org_b');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.by_int, app.by_text, app.by_app_uuid, app.by_v1 TO regress_lp_app;
RESET ROLE;
SELECT tenant_guard.protect(t) FROM unnest(ARRAY['app.by_int', 'app.by_text', 'app.by_app_uuid', 'app.by_v1']::regclass[]) t;
COMMIT;
SELECT severity, code, object FROM tenant_guard.lint() WHERE code = 'TG022' ORDER BY object;
SELECT tbl, vector, outcome FROM tenant_guard.attack_grid('regress_lp_app', :'org_a', :'org_b')
WHERE vector IN ('unique_oracle', 'on_conflict_oracle') ORDER BY tbl::text, vector;

SELECT tenant_guard.unguard_schema('app');
DROP SCHEMA app CASCADE;
DROP OWNED BY regress_lp_app, regress_lp_owner;
DROP ROLE regress_lp_app, regress_lp_owner;
