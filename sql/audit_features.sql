-- tenant_guard's own events from the features built alongside audit: key
-- lifecycle events of column encryption go to the key's tenant (so its admins
-- see them), application-role registrations are platform events; both join
-- the hash chain, and a rolled-back rotation leaves no record.
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set SHOW_CONTEXT never
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = :'org_a';
SET tenant_guard.master_key_file = :'master_key_file';
SELECT coalesce(max(id), 0) AS mark FROM tenant_guard.audit_log \gset

SELECT length(tenant_guard.encrypt_text('x')) > 0 AS first_use_creates_a_key;
SELECT tenant_guard.rotate_key() AS v2;
BEGIN;
SELECT tenant_guard.rotate_key() AS rolled_back;
ROLLBACK;
SELECT tenant_guard.shred_keys(:'org_b') AS b_shredded;
SELECT tenant_guard.rotate_key(:'org_b') AS b_v1;
SELECT tenant_guard.shred_keys(:'org_b') AS b_shredded_again;
CREATE ROLE regress_audit_features_app LOGIN;
SELECT tenant_guard.register_app_role('regress_audit_features_app');
SELECT tenant_guard.unregister_app_role('regress_audit_features_app');
DROP ROLE regress_audit_features_app;

SELECT org = :'org_a' AS org_a, org = :'org_b' AS org_b, org IS NULL AS platform, action,
       detail->>'versions' AS versions, detail->>'role' AS role,
       actor IS NOT DISTINCT FROM tenant_guard.current_user_id() AS actor_recorded, db_role
FROM tenant_guard.audit_log WHERE id > :mark ORDER BY id;
-- no key material in the log
SELECT count(*) AS records_mentioning_wrapped_keys FROM tenant_guard.audit_log
WHERE id > :mark AND (detail ? 'wrapped_key' OR detail::text ~* 'wrapped');
SELECT ok, problem FROM tenant_guard.verify_audit();
