-- tenant_guard.require_context: off (default) returns NULL without a context,
-- on raises "no tenant context" (42501) with a hint naming the source. The
-- settings that decide where the tenant comes from are superuser-only.
SHOW tenant_guard.require_context;
SELECT tenant_guard.current_user_org_id() IS NULL AS null_without_context;
SET tenant_guard.require_context = on;
\set VERBOSITY sqlstate
SELECT tenant_guard.current_user_org_id();
\set VERBOSITY default
SELECT tenant_guard.current_user_org_id();
SELECT set_config('request.jwt.claims', '{"org_id":"not-a-uuid"}', false) IS NOT NULL AS malformed;
SELECT tenant_guard.current_user_org_id();
SET tenant_guard.context_source = 'setting';
SELECT tenant_guard.current_user_org_id();
SET tenant_guard.context_source = 'signed';
SELECT tenant_guard.current_user_org_id();
-- a valid context passes
SET tenant_guard.context_source = 'claims';
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', false) IS NOT NULL AS valid;
SELECT tenant_guard.current_user_org_id();
-- the other accessors keep returning NULL / false / {} rather than raising
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS cleared;
SELECT tenant_guard.current_user_id() IS NULL AS no_user, tenant_guard.has_role('admin') AS admin,
       tenant_guard.current_scopes('venue') AS scopes;
-- in a policy, the error surfaces instead of an empty result
CREATE TABLE req_t(org_id uuid NOT NULL, v text);
INSERT INTO req_t VALUES ('11111111-1111-4111-8111-111111111111', 'a');
ALTER TABLE req_t ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON req_t USING (org_id = (SELECT tenant_guard.current_user_org_id()));
CREATE ROLE regress_require_app;
GRANT SELECT ON req_t TO regress_require_app;
SET ROLE regress_require_app;
SELECT * FROM req_t;
RESET ROLE;
RESET tenant_guard.require_context;
SET ROLE regress_require_app;
SELECT * FROM req_t;

-- an application role cannot change any setting that decides the tenant
SET tenant_guard.require_context = off;
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_claim = 'user_metadata.org_id';
SET tenant_guard.user_claim = 'email';
SET tenant_guard.role_claim = 'user_metadata.role';
SET tenant_guard.scopes_claim = 'user_metadata.scopes';
SET tenant_guard.jwt_audience = '';
SET tenant_guard.jwt_issuer = '';
SET tenant_guard.jwt_leeway = 300;
SELECT set_config('tenant_guard.context_source', 'setting', false);
-- unknown names under the reserved prefix are refused too
SET tenant_guard.no_such_setting = 'x';
RESET ROLE;
DROP TABLE req_t;
DROP ROLE regress_require_app;

-- require_context covers the text and bigint forms as well
SET tenant_guard.require_context = on;
SELECT set_config('request.jwt.claims', '{"org_id":"acme"}', false) IS NOT NULL AS text_org;
SELECT tenant_guard.current_user_org_text();
SELECT tenant_guard.current_user_org_bigint();
SELECT set_config('request.jwt.claims', '{}', false) IS NOT NULL AS no_org;
SELECT tenant_guard.current_user_org_text();
RESET tenant_guard.require_context;
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS cleared;
