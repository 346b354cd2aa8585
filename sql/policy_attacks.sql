-- Cross-tenant attacks on a table isolated with tenant_guard.protect(), run
-- as an application role (not superuser, not owner) and as the owner (bound
-- by FORCE). Tenant A must reach only A's rows, every write into or moving a
-- row to B is refused, and a NULL or missing context sees and changes nothing.
\set SHOW_CONTEXT never
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
\set claims_a '{"org_id":"11111111-1111-4111-8111-111111111111","sub":"alice"}'
CREATE ROLE regress_pa_owner;
CREATE ROLE regress_pa_app;
CREATE SCHEMA pa AUTHORIZATION regress_pa_owner;
GRANT USAGE ON SCHEMA pa TO regress_pa_app;
SET ROLE regress_pa_owner;
CREATE TABLE pa.projects (id bigint PRIMARY KEY, org_id uuid NOT NULL, name text, is_public boolean DEFAULT false);
CREATE TABLE pa.tasks (id bigint PRIMARY KEY, org_id uuid NOT NULL, project_id bigint, title text);
INSERT INTO pa.projects VALUES (1, :'org_a', 'a-one', false), (2, :'org_a', 'a-two', false),
                               (3, :'org_b', 'b-one', true), (4, :'org_b', 'b-secret', false);
INSERT INTO pa.tasks VALUES (10, :'org_a', 1, 'a-task'), (30, :'org_b', 3, 'b-task');
SELECT tenant_guard.protect('pa.projects');
SELECT tenant_guard.protect('pa.tasks');
CREATE VIEW pa.projects_v WITH (security_invoker = true) AS SELECT id, org_id, name FROM pa.projects;
GRANT SELECT, INSERT, UPDATE, DELETE ON pa.projects, pa.tasks, pa.projects_v TO regress_pa_app;
RESET ROLE;

SET ROLE regress_pa_app;
BEGIN;
SELECT set_config('request.jwt.claims', :'claims_a', true) IS NOT NULL AS as_tenant_a;
-- reads
SELECT id, name FROM pa.projects ORDER BY id;
SELECT count(*) AS b_by_tenant FROM pa.projects WHERE org_id = :'org_b';
SELECT count(*) AS b_by_id FROM pa.projects WHERE id IN (3, 4);
SELECT id, name FROM pa.projects_v ORDER BY id;
SELECT p.name, t.title FROM pa.projects p JOIN pa.tasks t ON t.project_id = p.id ORDER BY 1;
SELECT t.title FROM pa.tasks t WHERE t.project_id = 3;
WITH x AS (SELECT * FROM pa.projects) SELECT count(*) AS via_cte FROM x;
DECLARE c CURSOR FOR SELECT id FROM pa.projects ORDER BY id;
FETCH ALL FROM c;
CLOSE c;
-- writes into B: refused or no rows
SAVEPOINT s;
INSERT INTO pa.projects (id, org_id, name) VALUES (5, :'org_b', 'planted');
ROLLBACK TO s;
UPDATE pa.projects SET name = 'x' WHERE org_id = :'org_b' RETURNING id;
DELETE FROM pa.projects WHERE id IN (3, 4) RETURNING id;
-- moving an A row to B
UPDATE pa.projects SET org_id = :'org_b' WHERE id = 1;
ROLLBACK TO s;
-- RETURNING on own rows works and shows only A
UPDATE pa.projects SET name = name || '!' RETURNING id, name;
ROLLBACK TO s;
-- an insert without the tenant column lands in A
INSERT INTO pa.projects (id, name) VALUES (6, 'a-new') RETURNING id, org_id = :'org_a' AS in_a;
-- upsert: an A conflict updates A; a B row is never updated or revealed
INSERT INTO pa.projects (id, name) VALUES (1, 'a-upsert') ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING id, name;
SAVEPOINT u;
INSERT INTO pa.projects (id, name) VALUES (3, 'b-upsert') ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING id;
ROLLBACK TO u;
INSERT INTO pa.projects (id, name) VALUES (4, 'b-nothing') ON CONFLICT (id) DO NOTHING RETURNING id;
-- MERGE sees only A rows
MERGE INTO pa.projects p USING (VALUES (2, 'a-merged'), (3, 'b-merged')) v(id, name) ON p.id = v.id
    WHEN MATCHED THEN UPDATE SET name = v.name;
SELECT id, name FROM pa.projects ORDER BY id;
-- COPY TO sees only A; COPY FROM is refused outright by PostgreSQL on a table
-- with row-level security (applications use INSERT)
COPY pa.projects (id, name) TO STDOUT;
SAVEPOINT cp;
COPY pa.projects (id, org_id, name) FROM STDIN;
7	22222222-2222-4222-8222-222222222222	copied into b
\.
ROLLBACK TO cp;
COPY (SELECT count(*) FROM pa.projects) TO STDOUT;
-- the view writes through the same policies
SAVEPOINT v;
INSERT INTO pa.projects_v (id, org_id, name) VALUES (8, :'org_b', 'via view');
ROLLBACK TO v;
COMMIT;

-- a prepared statement executed before and after a context change
PREPARE names AS SELECT string_agg(name, ',' ORDER BY id) FROM pa.projects;
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL AS a;
EXECUTE names;
SELECT set_config('request.jwt.claims', '{"org_id":"22222222-2222-4222-8222-222222222222"}', true) IS NOT NULL AS b;
EXECUTE names;
COMMIT;
EXECUTE names;
DEALLOCATE names;

-- a NULL, missing or malformed context sees and changes nothing
SELECT count(*) AS no_context FROM pa.projects;
SELECT set_config('request.jwt.claims', '{"org_id":null}', false) IS NOT NULL AS null_org;
SELECT count(*) AS null_context FROM pa.projects;
UPDATE pa.projects SET name = 'x';
DELETE FROM pa.projects;
INSERT INTO pa.projects (id, name) VALUES (9, 'orphan');
SELECT set_config('request.jwt.claims', '{"org_id":"not-a-uuid"}', false) IS NOT NULL AS malformed;
SELECT count(*) AS malformed_context FROM pa.projects;
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS cleared;
RESET ROLE;

-- the owner is bound by FORCE too
SET ROLE regress_pa_owner;
SELECT count(*) AS owner_without_context FROM pa.projects;
BEGIN;
SELECT set_config('request.jwt.claims', :'claims_a', true) IS NOT NULL AS as_tenant_a;
SELECT count(*) AS owner_as_a FROM pa.projects;
COMMIT;
-- a permissive policy written later cannot OR its way across tenants
CREATE POLICY public_rows ON pa.projects FOR SELECT USING (is_public);
CREATE POLICY everything ON pa.projects USING (true) WITH CHECK (true);
RESET ROLE;
SET ROLE regress_pa_app;
BEGIN;
SELECT set_config('request.jwt.claims', :'claims_a', true) IS NOT NULL AS as_tenant_a;
SELECT id, name FROM pa.projects ORDER BY id;
SAVEPOINT s;
INSERT INTO pa.projects (id, org_id, name) VALUES (10, :'org_b', 'still refused');
ROLLBACK TO s;
COMMIT;
SELECT count(*) AS still_nothing_without_context FROM pa.projects;
RESET ROLE;

-- partitions queried directly and inheritance children are isolated too
SET ROLE regress_pa_owner;
CREATE TABLE pa.events (org_id uuid NOT NULL, at date NOT NULL, what text) PARTITION BY LIST (at);
CREATE TABLE pa.events_d1 PARTITION OF pa.events FOR VALUES IN ('2026-01-01');
CREATE TABLE pa.events_d2 PARTITION OF pa.events FOR VALUES IN ('2026-01-02');
INSERT INTO pa.events VALUES (:'org_a', '2026-01-01', 'a1'), (:'org_b', '2026-01-01', 'b1'),
                             (:'org_a', '2026-01-02', 'a2'), (:'org_b', '2026-01-02', 'b2');
SELECT tenant_guard.protect('pa.events');
CREATE TABLE pa.notes (org_id uuid NOT NULL, body text);
CREATE TABLE pa.notes_old () INHERITS (pa.notes);
INSERT INTO pa.notes_old VALUES (:'org_a', 'a-old'), (:'org_b', 'b-old');
SELECT tenant_guard.protect('pa.notes');
-- the owner, bound by FORCE, can only write rows of its current tenant
INSERT INTO pa.notes VALUES (:'org_a', 'no context: refused');
GRANT SELECT ON pa.events, pa.events_d1, pa.events_d2, pa.notes, pa.notes_old TO regress_pa_app;
RESET ROLE;
SET ROLE regress_pa_app;
BEGIN;
SELECT set_config('request.jwt.claims', :'claims_a', true) IS NOT NULL AS as_tenant_a;
SELECT what FROM pa.events ORDER BY what;
SELECT what FROM pa.events_d1 ORDER BY what;
SELECT what FROM pa.events_d2 ORDER BY what;
SELECT body FROM pa.notes ORDER BY body;
SELECT body FROM pa.notes_old ORDER BY body;
COMMIT;
RESET ROLE;

-- text and bigint tenant columns: the same isolation
SET ROLE regress_pa_owner;
CREATE TABLE pa.accounts (id int, tenant_id bigint NOT NULL, name text);
CREATE TABLE pa.spaces (id int, tenant text NOT NULL, name text);
INSERT INTO pa.accounts VALUES (1, 42, 'mine'), (2, 43, 'theirs');
INSERT INTO pa.spaces VALUES (1, 'acme', 'mine'), (2, 'globex', 'theirs');
SELECT tenant_guard.protect('pa.accounts', 'tenant_id');
SELECT tenant_guard.protect('pa.spaces', 'tenant');
GRANT SELECT, INSERT ON pa.accounts, pa.spaces TO regress_pa_app;
RESET ROLE;
SET ROLE regress_pa_app;
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":42}', true) IS NOT NULL AS tenant_42;
SELECT name FROM pa.accounts;
INSERT INTO pa.accounts (id, name) VALUES (3, 'new') RETURNING tenant_id;
SAVEPOINT s;
INSERT INTO pa.accounts VALUES (4, 43, 'planted');
ROLLBACK TO s;
SELECT count(*) AS spaces_for_42 FROM pa.spaces;
SELECT set_config('request.jwt.claims', '{"org_id":"acme"}', true) IS NOT NULL AS tenant_acme;
SELECT name FROM pa.spaces;
SELECT count(*) AS accounts_for_acme FROM pa.accounts;
SELECT set_config('request.jwt.claims', '{"org_id":"042"}', true) IS NOT NULL AS not_canonical;
SELECT count(*) AS accounts_for_042 FROM pa.accounts;
COMMIT;
RESET ROLE;

-- EXPLAIN: an index scan on the tenant column, the context evaluated once (InitPlan)
SET ROLE regress_pa_app;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM pa.tasks;
RESET enable_seqscan;
RESET ROLE;

DROP SCHEMA pa CASCADE;
DROP ROLE regress_pa_owner;
DROP ROLE regress_pa_app;
