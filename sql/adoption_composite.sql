-- protect() and keys without the tenant column: a NOTICE with the composite
-- (tenant column, id) forms of the unique keys (lint TG022) and of the
-- foreign keys between protected tables (TG023), which
-- composite_key_statements() returns too; no constraint is changed until the
-- statements are run, and then lint has nothing left to say and a tenant can
-- no longer reference another tenant's row.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET tenant_guard.context_source = 'setting';
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'

CREATE ROLE regress_ac_app;
CREATE SCHEMA ac;
GRANT USAGE ON SCHEMA ac TO regress_ac_app;
CREATE TABLE ac.projects (org_id uuid NOT NULL, id bigint PRIMARY KEY, name text);
CREATE TABLE ac.tasks (org_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                       project_id bigint NOT NULL REFERENCES ac.projects (id) ON DELETE CASCADE,
                       email text);
CREATE UNIQUE INDEX tasks_email_idx ON ac.tasks (lower(email)) WHERE email IS NOT NULL;
-- a random uuid key cannot be guessed (lint: info): no composite form asked for
CREATE TABLE ac.files (org_id uuid NOT NULL, id uuid PRIMARY KEY DEFAULT gen_random_uuid());

-- the referencing table first: its own keys only (the other end is not protected yet)
SELECT tenant_guard.protect('ac.tasks');
-- the referenced table: its key, and the foreign key between the two
SELECT tenant_guard.protect('ac.projects');
SELECT tenant_guard.protect('ac.files');
SELECT * FROM tenant_guard.composite_key_statements('ac.projects');
SELECT * FROM tenant_guard.composite_key_statements('ac.files');
-- nothing was changed
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'ac'::regnamespace AND contype <> 'n' ORDER BY 1;
SELECT code, object FROM tenant_guard.lint() WHERE code IN ('TG022', 'TG023') AND object LIKE '%ac.%' ORDER BY 1, 2;

-- before: tenant A references tenant B's project
GRANT SELECT, INSERT ON ac.projects, ac.tasks TO regress_ac_app;
SET tenant_guard.org_id = :'org_b';
INSERT INTO ac.projects VALUES (:'org_b', 7, 'b-secret');
SET ROLE regress_ac_app;
SET tenant_guard.org_id = :'org_a';
BEGIN;
INSERT INTO ac.tasks (org_id, project_id) VALUES (:'org_a', 7) RETURNING project_id AS referenced_b_project;
ROLLBACK;
RESET ROLE;

-- the statements, run in one transaction as printed
DO $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT x.statement FROM tenant_guard.composite_key_statements('ac.tasks') x ORDER BY x.step, x.statement
    LOOP
        EXECUTE s;
    END LOOP;
    FOR s IN SELECT x.statement FROM tenant_guard.composite_key_statements('ac.projects') x ORDER BY x.step, x.statement
    LOOP
        EXECUTE s;
    END LOOP;
END
$$;
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'ac'::regnamespace AND contype <> 'n' ORDER BY 1;
SELECT pg_get_indexdef('ac.tasks_email_idx'::regclass);
SELECT count(*) AS statements_left FROM tenant_guard.composite_key_statements('ac.tasks');
SELECT code, object FROM tenant_guard.lint() WHERE code IN ('TG022', 'TG023') AND object LIKE '%ac.%' ORDER BY 1, 2;
SELECT count(*) AS verify_differences FROM tenant_guard.verify() WHERE tbl::text LIKE 'ac.%';

-- after: the reference to tenant B's project is refused; A's own works
SET ROLE regress_ac_app;
SET tenant_guard.org_id = :'org_a';
INSERT INTO ac.tasks (org_id, project_id) VALUES (:'org_a', 7);
INSERT INTO ac.projects VALUES (:'org_a', 7, 'a-own');
INSERT INTO ac.tasks (org_id, project_id) VALUES (:'org_a', 7);
SELECT count(*) AS a_tasks FROM ac.tasks;
RESET ROLE;
RESET tenant_guard.org_id;

-- refused: NULL and a table that is not protected; any role may ask (catalog facts only)
SELECT * FROM tenant_guard.composite_key_statements(NULL);
CREATE TABLE ac.plain (id int PRIMARY KEY);
SELECT * FROM tenant_guard.composite_key_statements('ac.plain');
SET ROLE regress_ac_app;
SELECT count(*) FROM tenant_guard.composite_key_statements('ac.files');
RESET ROLE;

DROP SCHEMA ac CASCADE;
DROP ROLE regress_ac_app;
