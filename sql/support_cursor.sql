-- Support sessions and open queries. The attacker is the support agent: a
-- cursor (FETCH, MOVE) runs again in later statements without a new executor
-- start, and a policy that reads the context once per query (the sub-select
-- of protect(), or any policy through tenant_guard.context_once_per_query)
-- keeps the value of its first evaluation. Once the session is revoked, ended
-- or expired, a query that started in it must not return one more row, at the
-- next statement and whatever ran in between; a query started after the end
-- runs normally, in the context then in force. (Expiry between two FETCHes is
-- not shown: it needs the clock to pass the session's end between two
-- statements; it marks the session dead exactly as a revocation does.)
\set SHOW_CONTEXT never
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
CREATE ROLE regress_supc_owner;
CREATE ROLE regress_supc_app;
CREATE ROLE regress_supc_agent;
GRANT tenant_guard_support TO regress_supc_agent;
GRANT regress_supc_app TO regress_supc_agent;
CREATE SCHEMA supc AUTHORIZATION regress_supc_owner;
GRANT USAGE ON SCHEMA supc TO regress_supc_app;
SET tenant_guard.context_source = 'setting';
SET ROLE regress_supc_owner;
-- protect()'s policies: the accessor in a sub-select, evaluated once per query
CREATE TABLE supc.tickets (org_id uuid NOT NULL, id int, PRIMARY KEY (org_id, id));
SELECT tenant_guard.protect('supc.tickets');
-- a plain policy: once per query through the planner hook, or per row with
-- tenant_guard.context_once_per_query off
CREATE TABLE supc.notes (org_id uuid NOT NULL, id int);
ALTER TABLE supc.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON supc.notes USING (org_id = tenant_guard.current_user_org_id());
GRANT SELECT ON supc.tickets, supc.notes TO regress_supc_app;
RESET ROLE;
INSERT INTO supc.tickets SELECT :'org_a', g FROM generate_series(1, 5) g;
INSERT INTO supc.tickets SELECT :'org_b', g FROM generate_series(6, 8) g;
INSERT INTO supc.notes SELECT org_id, id FROM supc.tickets;
CREATE EXTENSION dblink;
SELECT format('host=%s port=%s dbname=%s user=postgres', split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port'), current_database()) AS connstr \gset
SELECT :'org_a' = '11111111-1111-4111-8111-111111111111' AS issue_targets_org_a;
CREATE FUNCTION pg_temp.issue(reason text) RETURNS text
LANGUAGE sql SECURITY DEFINER AS $$
    SELECT tenant_guard.issue_support_grant('11111111-1111-4111-8111-111111111111', 'agent@platform', reason)
$$;
-- tenant A's admin revokes every session of tenant A from another connection
CREATE FUNCTION pg_temp.admin_revokes(connstr text, org text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    n integer;
BEGIN
    PERFORM public.dblink_connect_u('admin', connstr);
    PERFORM public.dblink_exec('admin', 'SET tenant_guard.context_source = ''setting''');
    PERFORM public.dblink_exec('admin', format('SET tenant_guard.org_id = %L', org));
    PERFORM public.dblink_exec('admin', 'SET tenant_guard.role = ''admin''');
    SELECT r INTO n FROM public.dblink('admin', 'SELECT tenant_guard.revoke_support_sessions()') AS t(r integer);
    PERFORM public.dblink_disconnect('admin');
    RETURN n;
END
$$;

-- 1. The red team's sequence: revoked between two FETCHes, with a statement
-- in between (which kills the context): the open cursor is refused
SELECT pg_temp.issue('revoked, a statement, then FETCH') AS tok \gset
SET SESSION AUTHORIZATION regress_supc_agent;
CALL tenant_guard.begin_support_session(:'tok');
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM supc.tickets ORDER BY id;
FETCH 1 FROM c;
SELECT pg_temp.admin_revokes(:'connstr', :'org_a') AS revoked;
SELECT 1;
FETCH 2 FROM c;
ROLLBACK;
SELECT tenant_guard.current_user_org_id() IS NULL AS no_context, count(*) AS rows_visible FROM supc.tickets;
RESET SESSION AUTHORIZATION;

-- 2. Revoked between two FETCHes with nothing in between, the plain policy
-- and a MOVE: refused as well
SELECT pg_temp.issue('revoked, then FETCH') AS tok \gset
SET SESSION AUTHORIZATION regress_supc_agent;
CALL tenant_guard.begin_support_session(:'tok');
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM supc.notes ORDER BY id;
FETCH 1 FROM c;
SELECT pg_temp.admin_revokes(:'connstr', :'org_a') AS revoked;
FETCH 2 FROM c;
ROLLBACK;
SELECT pg_temp.issue('revoked, then MOVE') AS tok \gset
CALL tenant_guard.begin_support_session(:'tok');
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM supc.tickets ORDER BY id;
FETCH 1 FROM c;
SELECT pg_temp.admin_revokes(:'connstr', :'org_a') AS revoked;
MOVE 1 IN c;
ROLLBACK;
RESET SESSION AUTHORIZATION;

-- 3. A live session keeps its cursors: fetched across statements, and until
-- end_support_session() in the same transaction; after it the cursor is
-- refused, and a cursor opened after the end (in the same transaction, after
-- a rolled-back savepoint) runs in the context then in force (none, then
-- tenant B's setting)
SELECT pg_temp.issue('ended between FETCHes') AS tok \gset
SET SESSION AUTHORIZATION regress_supc_agent;
CALL tenant_guard.begin_support_session(:'tok');
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM supc.tickets ORDER BY id;
FETCH 1 FROM c;
SELECT 1;
FETCH 1 FROM c;
MOVE 1 IN c;
FETCH 1 FROM c;
SELECT tenant_guard.end_support_session() AS ended;
SAVEPOINT s;
FETCH 1 FROM c;
ROLLBACK TO SAVEPOINT s;
DECLARE after_end CURSOR FOR SELECT id FROM supc.tickets ORDER BY id;
FETCH 1 FROM after_end;
SET LOCAL tenant_guard.org_id = :'org_b';
DECLARE in_b CURSOR FOR SELECT id FROM supc.notes ORDER BY id;
FETCH 1 FROM in_b;
MOVE 1 IN in_b;
FETCH 1 FROM in_b;
COMMIT;
RESET SESSION AUTHORIZATION;

-- 4. A transaction-local context hides the session's while it is revoked:
-- the cursor opened in the session is refused all the same
SELECT pg_temp.issue('hidden, revoked') AS tok \gset
SET SESSION AUTHORIZATION regress_supc_agent;
CALL tenant_guard.begin_support_session(:'tok');
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM supc.tickets ORDER BY id;
FETCH 1 FROM c;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b')) = :'org_b' AS hidden_by_b;
SELECT pg_temp.admin_revokes(:'connstr', :'org_a') AS revoked;
FETCH 1 FROM c;
ROLLBACK;
RESET SESSION AUTHORIZATION;

-- 5. The same with tenant_guard.context_once_per_query off (the plain
-- policy reads the context per row)
SET tenant_guard.context_once_per_query = off;
SELECT pg_temp.issue('per row, revoked') AS tok \gset
SET SESSION AUTHORIZATION regress_supc_agent;
CALL tenant_guard.begin_support_session(:'tok');
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM supc.notes ORDER BY id;
FETCH 1 FROM c;
SELECT pg_temp.admin_revokes(:'connstr', :'org_a') AS revoked;
FETCH 2 FROM c;
ROLLBACK;
BEGIN;
SET LOCAL tenant_guard.org_id = :'org_b';
DECLARE in_b CURSOR FOR SELECT id FROM supc.notes ORDER BY id;
FETCH 1 FROM in_b;
MOVE 1 IN in_b;
FETCH 1 FROM in_b;
COMMIT;
RESET SESSION AUTHORIZATION;
RESET tenant_guard.context_once_per_query;

-- 6. A backend that never had a support session: cursors unaffected
\c
SET tenant_guard.context_source = 'setting';
SET SESSION AUTHORIZATION regress_supc_agent;
BEGIN;
SET LOCAL tenant_guard.org_id = :'org_a';
DECLARE c CURSOR FOR SELECT id FROM supc.tickets ORDER BY id;
FETCH 1 FROM c;
SELECT 1;
MOVE 1 IN c;
FETCH 2 FROM c;
COMMIT;
RESET SESSION AUTHORIZATION;

DROP EXTENSION dblink;
DROP SCHEMA supc CASCADE;
DROP ROLE regress_supc_owner, regress_supc_app, regress_supc_agent;
