-- The setting source: plain settings tenant_guard.org_id, user_id, role,
-- scopes. Same NULL-hardening as claims.
SET tenant_guard.context_source = 'setting';
SELECT tenant_guard.current_user_org_id() IS NULL AS unset;

SET tenant_guard.org_id = '11111111-1111-4111-8111-111111111111';
SET tenant_guard.user_id = 'dave';
SET tenant_guard.role = 'member';
SET tenant_guard.scopes = '{"venue":["v1","v3"],"team":[5]}';
SELECT tenant_guard.current_user_org_id(), tenant_guard.current_user_id(), tenant_guard.current_user_role(),
       tenant_guard.has_role('member', 'admin') AS member_or_admin,
       tenant_guard.current_scopes('venue') AS venue, tenant_guard.current_scopes('team') AS team;

-- each hostile value yields NULL
CREATE TEMP TABLE hostile(label text, val text);
INSERT INTO hostile VALUES ('empty', ''), ('blank', '   '), ('null', 'null'), ('NULL', 'NULL'),
    ('malformed', '1111-2222'), ('padded', ' 11111111-1111-4111-8111-111111111111'),
    ('nil', '00000000-0000-0000-0000-000000000000'), ('json', '{"org_id":"11111111-1111-4111-8111-111111111111"}'),
    ('injection', '11111111-1111-4111-8111-111111111111'' OR ''1''=''1');
CREATE TEMP TABLE hostile_result(label text, org uuid);
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM hostile LOOP
        PERFORM set_config('tenant_guard.org_id', r.val, false);
        INSERT INTO hostile_result VALUES (r.label, tenant_guard.current_user_org_id());
    END LOOP;
END
$$;
SELECT * FROM hostile_result ORDER BY label;
SET tenant_guard.org_id = '11111111-1111-4111-8111-111111111111';

-- role and scopes need an org; user id does not
SET tenant_guard.org_id = '';
SELECT tenant_guard.current_user_id(), tenant_guard.current_user_role() IS NULL AS no_role,
       tenant_guard.current_scopes('venue') AS no_scopes, tenant_guard.has_role('member') AS no_member;
-- blank user and role are absent; malformed scopes are empty
SET tenant_guard.org_id = '11111111-1111-4111-8111-111111111111';
SET tenant_guard.user_id = '  ';
SET tenant_guard.role = 'null';
SET tenant_guard.scopes = '{broken';
SELECT tenant_guard.current_user_id() IS NULL AS no_user, tenant_guard.current_user_role() IS NULL AS no_role,
       tenant_guard.current_scopes('venue') AS venue;
SET tenant_guard.scopes = '["v1"]';
SELECT tenant_guard.current_scopes('venue') AS not_an_object;

-- SET LOCAL is transaction-scoped, as any setting
BEGIN;
SET LOCAL tenant_guard.org_id = '22222222-2222-4222-8222-222222222222';
SELECT tenant_guard.current_user_org_id();
ROLLBACK;
SELECT tenant_guard.current_user_org_id();

-- request.jwt.claims is ignored by the setting source
SELECT set_config('request.jwt.claims', '{"org_id":"22222222-2222-4222-8222-222222222222"}', false) IS NOT NULL AS set;
SELECT tenant_guard.current_user_org_id();

-- clear_context clears the settings too
SELECT tenant_guard.clear_context();
SELECT tenant_guard.current_user_org_id() IS NULL AS cleared, current_setting('tenant_guard.org_id') AS org_setting;
RESET tenant_guard.context_source;
