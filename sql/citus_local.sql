-- The Citus objects on a database without Citus (the cluster harness
-- test/citus runs them on a real Citus cluster): they do nothing or refuse
-- clearly, the registry is the owner's, and a forwarded token counts only
-- where Citus is loaded (the harness shows it verified there): here not even
-- a valid one.
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
SET client_min_messages = warning;

SELECT tenant_guard._citus_present() AS citus_present;
SELECT tenant_guard._citus_distribution_column('pg_catalog.pg_class') IS NULL AS not_distributed;
SELECT tenant_guard._citus_distribution_column(NULL) IS NULL AS null_is_null;
SELECT count(*) AS findings FROM tenant_guard.citus_shard_findings();
SELECT tenant_guard.citus_sync();

-- without Citus the policies keep their sub-select form
CREATE TABLE cl_docs (id int PRIMARY KEY, org_id uuid NOT NULL, body text);
SELECT tenant_guard.protect('cl_docs');
SELECT polname, pg_get_expr(polqual, polrelid) FROM pg_policy
WHERE polrelid = 'cl_docs'::regclass AND polname IN ('tg_wall', 'tg_base') ORDER BY 1;
SELECT count(*) AS walls_registered FROM tenant_guard.citus_walls;

-- the registry: the superuser (or a table's owner) registers walls
SELECT tenant_guard._citus_put_wall('public', 'cl_docs', 'org_id', 'uuid');
SELECT tenant_guard._citus_put_wall('public', 'cl_docs', 'org_id', 'uuid');  -- idempotent
SELECT schema_name, table_name, tenant_column, tenant_type FROM tenant_guard.citus_walls;
SELECT tenant_guard._citus_put_wall('public', 'cl_docs', 'org_id', 'json');
SELECT tenant_guard._citus_put_wall(NULL, 'cl_docs', 'org_id', 'uuid');
-- a table that is no shard gets no wall from the hook
SELECT tenant_guard._citus_wall_active('cl_docs') AS wall_on_plain_table;
SELECT tenant_guard._citus_wall_active(NULL) IS NULL AS null_is_null;

-- nobody else may touch the registry or call the internals
CREATE ROLE regress_cl_app LOGIN;
GRANT SELECT ON cl_docs TO regress_cl_app;
CREATE SCHEMA regress_cl_own AUTHORIZATION regress_cl_app;
SET ROLE regress_cl_app;
SELECT table_name FROM tenant_guard.citus_walls;  -- readable, like pg_policies
DELETE FROM tenant_guard.citus_walls;              -- not its table: nothing
UPDATE tenant_guard.citus_walls SET tenant_column = 'id';
SELECT tenant_guard._citus_put_wall('public', 'cl_docs', 'id', 'uuid');
INSERT INTO tenant_guard.citus_walls VALUES ('pg_catalog', 'pg_class', 'oid', 'bigint');
-- a table that does not exist, in a schema where the role may create one: allowed
SELECT tenant_guard._citus_put_wall('regress_cl_own', 'later', 'org_id', 'uuid');
SELECT tenant_guard._citus_put_wall('public', 'later', 'org_id', 'uuid');
SELECT tenant_guard.citus_sync();
SELECT count(*) FROM tenant_guard.citus_shard_findings();
SELECT tenant_guard._citus_wall_active('cl_docs');
-- the token of set_context() can only be kept by tenant_guard itself
SET tenant_guard.forward_token = 'x';
SELECT set_config('tenant_guard.forward_token', 'x', true);
RESET ROLE;
SELECT schema_name, table_name, tenant_column FROM tenant_guard.citus_walls ORDER BY 1, 2;
SET tenant_guard.forward_token = 'x';

-- without Citus a forwarded token counts for nothing, valid or not
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
SET tenant_guard.jwt_audience = :'audience';
INSERT INTO cl_docs VALUES (1, :'org_a', 'a'), (2, :'org_b', 'b');
SET ROLE regress_cl_app;
BEGIN;
SELECT set_config('tenant_guard.forwarded_token', pg_temp.tok('tok_hs_wrong_key'), true) IS NULL;
SELECT tenant_guard.current_user_org_id() IS NULL AS wrong_key_no_context, count(*) AS rows FROM cl_docs;
SELECT set_config('tenant_guard.forwarded_token', pg_temp.tok('tok_hs_expired'), true) IS NULL;
SELECT tenant_guard.current_user_org_id() IS NULL AS expired_no_context, count(*) AS rows FROM cl_docs;
SELECT set_config('tenant_guard.forwarded_token', 'not a token', true) IS NULL;
SELECT tenant_guard.current_user_org_id() IS NULL AS garbage_no_context, count(*) AS rows FROM cl_docs;
SELECT set_config('tenant_guard.forwarded_token', pg_temp.tok('tok_hs_b'), true) IS NULL;
SELECT tenant_guard.current_user_org_id() IS NULL AS valid_no_context, count(*) AS rows FROM cl_docs;
COMMIT;
SELECT tenant_guard.current_user_org_id() IS NULL AS gone_after_commit;

-- the per-statement cache: a new statement sees a new context, and a
-- set_context() inside a statement is seen at once
BEGIN;
SELECT set_config('request.jwt.claims', json_build_object('org_id', :'org_a')::text, true) IS NULL;
SELECT tenant_guard.current_user_org_id() = :'org_a' AS org_a;
SELECT set_config('request.jwt.claims', json_build_object('org_id', :'org_b')::text, true) IS NULL;
SELECT tenant_guard.current_user_org_id() = :'org_b' AS org_b;
SELECT tenant_guard.current_user_org_id() = :'org_b' AS before_clear, tenant_guard.clear_context() IS NULL,
       tenant_guard.current_user_org_id() IS NULL AS cleared_in_same_statement;
COMMIT;
RESET ROLE;

-- lint(), verify() and the attack grid without Citus: the shard rules are
-- silent, verify() is the catalog's, shard_direct is not run
SELECT count(*) AS citus_rules FROM tenant_guard.lint_rules() WHERE area = 'citus';
SELECT count(*) AS shard_findings FROM tenant_guard._lint_citus_findings();
SELECT count(*) AS citus_lint FROM tenant_guard.lint() WHERE code IN ('TG070', 'TG071', 'TG072');
SELECT (SELECT count(*) FROM tenant_guard.verify()) = (SELECT count(*) FROM tenant_guard._verify_catalog())
       AS verify_is_the_catalogs;
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
ALTER TABLE cl_docs NO FORCE ROW LEVEL SECURITY;
SELECT tbl, item, actual FROM tenant_guard.verify();
ROLLBACK;
SELECT tenant_guard._citus_table('cl_docs') AS citus_table, tenant_guard._citus_table(NULL) AS null_table;
SELECT count(*) AS shard_direct_rows FROM tenant_guard.attack_grid('regress_cl_app', :'org_a', :'org_b')
WHERE vector = 'shard_direct';
SELECT tenant_guard._citus_coordinator() AS coordinator;

-- tenant keys: copies are written only by the owner; without Citus nothing
-- is sent anywhere
SELECT tenant_guard._citus_put_keys(NULL, '[]', false);
SELECT tenant_guard._citus_put_keys('[]', '[]', false) AS nothing_put;
-- the send to the workers: NULL refused; without Citus loaded, an error (nothing sent half-way)
SELECT tenant_guard._citus_send_keys(NULL, '[]', false);
SELECT tenant_guard._citus_send_keys('[]', '[]', false);
SET tenant_guard.master_key_file = :'master_key_file';
BEGIN;
SELECT set_config('request.jwt.claims', json_build_object('org_id', :'org_a')::text, true) IS NULL;
SELECT octet_length(tenant_guard.encrypt_text('x', 'cl')) > 0 AS encrypted;
COMMIT;
SELECT count(*) AS keys FROM tenant_guard.tenant_keys WHERE org_id = :'org_a';
-- the forwarding of a key made in the transaction (docs/citus.md): a trigger
-- function only; without Citus a key change forwards nothing, and a
-- forwarded value (any role may set it) gives no key here, where there is no
-- distributed transaction, nor replaces a key this node has
SELECT tenant_guard._citus_key_forward();
SELECT tgname FROM pg_trigger WHERE tgrelid = 'tenant_guard.tenant_keys'::regclass AND tgname LIKE 'citus_key_%'
ORDER BY 1;
SELECT format('v1:%s.1.%s.%s.%s', replace(:'org_a', '-', ''), repeat('ab', 16), repeat('cd', 60), repeat('ef', 32))
    AS fwd_a, format('v1:%s.1.%s.%s.%s', replace(:'org_b', '-', ''), repeat('ab', 16), repeat('cd', 60),
    repeat('ef', 32)) AS fwd_b \gset
BEGIN;
SELECT set_config('request.jwt.claims', json_build_object('org_id', :'org_a')::text, true) IS NULL;
SELECT tenant_guard.encrypt_text('y', 'cl') AS ct_a \gset
SELECT current_setting('tenant_guard.forwarded_keys') = '' AS nothing_forwarded_here;
SELECT set_config('tenant_guard.forwarded_keys', :'fwd_a', true) IS NULL;
SELECT tenant_guard.decrypt_text(:'ct_a', 'cl') AS local_key_used;
COMMIT;
BEGIN;
SELECT set_config('request.jwt.claims', json_build_object('org_id', :'org_b')::text, true) IS NULL;
SELECT set_config('tenant_guard.forwarded_keys', :'fwd_b', true) IS NULL;
SAVEPOINT s;
SELECT tenant_guard.decrypt_text(('\x0100000001' || repeat('00', 28))::bytea, 'cl');
ROLLBACK TO s;
SELECT set_config('tenant_guard.forwarded_keys', 'not a forwarded value', true) IS NULL;
SELECT tenant_guard.decrypt_text(('\x0100000001' || repeat('00', 28))::bytea, 'cl');
ROLLBACK;
SELECT count(*) AS keys_of_b FROM tenant_guard.tenant_keys WHERE org_id = :'org_b';
SET ROLE regress_cl_app;
SELECT set_config('tenant_guard.forwarded_keys', :'fwd_b', false) IS NULL AS any_role_may_set_it;
RESET tenant_guard.forwarded_keys;
RESET ROLE;
-- a copy replaces the row of the same primary key, and an exact copy drops the rest
SELECT tenant_guard._citus_put_keys(
    (SELECT jsonb_agg(to_jsonb(k) || jsonb_build_object('state', 'retired', 'retired_at', now()))
     FROM tenant_guard.tenant_keys k WHERE org_id = :'org_a'), '[]', false) AS replaced;
SELECT state FROM tenant_guard.tenant_keys WHERE org_id = :'org_a';
SELECT tenant_guard._citus_put_keys('[]', '[]', true) AS exact_empty;
SELECT count(*) AS keys_left FROM tenant_guard.tenant_keys;
SET ROLE regress_cl_app;
SELECT tenant_guard._citus_put_keys('[]', '[]', true);
SELECT tenant_guard._citus_send_keys('[]', '[]', true);
SELECT tenant_guard._lint_citus_findings();
SELECT tenant_guard._citus_table('cl_docs');
RESET ROLE;

-- audit of distributed tables, without Citus: audit_trail has no worker
-- lines, verify_audit_nodes() checks this node only, a plain table is not
-- replicated, enable_audit() works (its Citus setting is a placeholder)
SELECT count(*) AS remote_lines FROM tenant_guard._audit_remote_trail();
SELECT count(*) AS worker_lines FROM tenant_guard.audit_trail WHERE node IS NOT NULL;
SELECT tenant_guard._citus_replicated('cl_docs') AS replicated, tenant_guard._citus_replicated(NULL) AS null_arg;
SELECT node, ok, broken_id FROM tenant_guard.verify_audit_nodes();
SELECT ok FROM tenant_guard.verify_audit();
SELECT node FROM tenant_guard.verify_audit_nodes(' padded ');
SELECT tenant_guard._citus_sync_audited() AS synced;
SELECT tenant_guard.enable_audit('cl_docs', redact_columns => '{body}');
SELECT proconfig FROM pg_proc WHERE oid = 'tenant_guard.enable_audit(regclass, name[], name[])'::regprocedure;
UPDATE cl_docs SET body = 'a2' WHERE id = 1;
SELECT action, table_name, node FROM tenant_guard.audit_trail WHERE table_name = 'public.cl_docs';
SELECT tenant_guard.disable_audit('cl_docs');
-- the registry writer of the workers, here: by name, idempotent, removable
SELECT tenant_guard._citus_put_audited('public', 'cl_docs', '{}', '{body}', false);
SELECT tenant_guard._citus_put_audited('public', 'cl_docs', '{}', '{body}', false);
SELECT tbl, redact_columns FROM tenant_guard.audited_tables WHERE tbl = 'cl_docs'::regclass;
SELECT tenant_guard._citus_put_audited('public', 'cl_docs', NULL, NULL, true);
SELECT count(*) AS still_registered FROM tenant_guard.audited_tables WHERE tbl = 'cl_docs'::regclass;
SELECT tenant_guard._citus_put_audited('public', 'no_such_table', '{}', '{}', false);
SELECT tenant_guard._citus_put_audited(NULL, 'cl_docs', '{}', '{}', false);
-- the application role: the worker part of audit_trail gives it nothing
-- here, and it may not check chains or write any node's registry
SET ROLE regress_cl_app;
SELECT count(*) AS remote_lines FROM tenant_guard._audit_remote_trail();
SELECT * FROM tenant_guard.verify_audit_nodes();
SELECT tenant_guard._verify_audit_local();
SELECT tenant_guard._citus_put_audited('public', 'cl_docs', '{}', '{}', false);
SELECT tenant_guard._citus_send_audited('cl_docs', '{}', '{}', false);
SELECT tenant_guard._citus_sync_audited();
RESET ROLE;

DROP TABLE cl_docs;
DELETE FROM tenant_guard.citus_walls;
DROP SCHEMA regress_cl_own;
DROP ROLE regress_cl_app;
