-- The claims source (the default): request.jwt.claims, as PostgREST and
-- Supabase set it. Every hostile or malformed value yields NULL, never an
-- error and never a value that could match a row.
SHOW tenant_guard.context_source;
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'

-- unset
SELECT tenant_guard.current_user_org_id() IS NULL AS unset,
       tenant_guard.current_user_id() IS NULL AS no_user,
       tenant_guard.current_user_role() IS NULL AS no_role,
       tenant_guard.current_scopes('venue') AS scopes,
       tenant_guard.has_role('admin') AS has_admin;

-- a complete, valid document
SELECT set_config('request.jwt.claims',
    '{"org_id":"11111111-1111-4111-8111-111111111111","sub":"alice","org_role":"admin",'
    '"scopes":{"venue":["v1","v2",7],"region":"eu"}}', false) IS NOT NULL AS set;
SELECT tenant_guard.current_user_org_id(),
       tenant_guard.current_user_id(),
       tenant_guard.current_user_role();
SELECT tenant_guard.has_role('admin') AS admin,
       tenant_guard.has_role('viewer', 'admin') AS viewer_or_admin,
       tenant_guard.has_role('viewer') AS viewer,
       tenant_guard.has_role(VARIADIC ARRAY[NULL, 'admin']) AS null_elem,
       tenant_guard.has_role(VARIADIC NULL::text[]) AS null_array,
       tenant_guard.has_role('ADMIN') AS case_sensitive;
SELECT tenant_guard.current_scopes('venue') AS venue,
       tenant_guard.current_scopes('region') AS not_an_array,
       tenant_guard.current_scopes('missing') AS missing,
       tenant_guard.current_scopes(NULL) AS null_kind;
SELECT 'v2' = ANY (tenant_guard.current_scopes('venue')) AS in_scope,
       'v3' = ANY (tenant_guard.current_scopes('venue')) AS out_of_scope;

-- NULL-hardening: each of these yields NULL and no error
CREATE TEMP TABLE hostile(label text, doc text);
INSERT INTO hostile VALUES
    ('empty', ''),
    ('blank', '   '),
    ('the word null', 'null'),
    ('JSON null org', '{"org_id":null}'),
    ('empty org', '{"org_id":""}'),
    ('blank org', '{"org_id":"   "}'),
    ('string null org', '{"org_id":"null"}'),
    ('number org', '{"org_id":12345}'),
    ('object org', '{"org_id":{"id":"11111111-1111-4111-8111-111111111111"}}'),
    ('array org', '{"org_id":["11111111-1111-4111-8111-111111111111"]}'),
    ('boolean org', '{"org_id":true}'),
    ('malformed uuid', '{"org_id":"11111111-1111-4111-8111-11111111111"}'),
    ('uuid with spaces', '{"org_id":" 11111111-1111-4111-8111-111111111111 "}'),
    ('uuid without dashes', '{"org_id":"11111111111141118111111111111111"}'),
    ('braced uuid', '{"org_id":"{11111111-1111-4111-8111-111111111111}"}'),
    ('nil uuid', '{"org_id":"00000000-0000-0000-0000-000000000000"}'),
    ('injection text', '{"org_id":"11111111-1111-4111-8111-111111111111'' OR true --"}'),
    ('truncated JSON', '{"org_id":"11111111-1111-4111-8111-111111111111"'),
    ('not JSON', 'org_id=11111111-1111-4111-8111-111111111111'),
    ('JSON string', '"11111111-1111-4111-8111-111111111111"'),
    ('JSON number', '42'),
    ('JSON array', '[{"org_id":"11111111-1111-4111-8111-111111111111"}]'),
    ('missing org', '{"sub":"alice","org_role":"admin","scopes":{"venue":["v1"]}}');
CREATE TEMP TABLE hostile_result(label text, org uuid, usr text, role text, scopes text[], admin boolean);
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM hostile LOOP
        PERFORM set_config('request.jwt.claims', r.doc, false);
        INSERT INTO hostile_result VALUES (r.label, tenant_guard.current_user_org_id(),
            tenant_guard.current_user_id(), tenant_guard.current_user_role(),
            tenant_guard.current_scopes('venue'), tenant_guard.has_role('admin'));
    END LOOP;
END
$$;
SELECT * FROM hostile_result ORDER BY label;

-- a NULL context matches no row, whatever the rows hold
CREATE TEMP TABLE t(org_id uuid, v text);
INSERT INTO t VALUES (:'org_a', 'a'), (:'org_b', 'b'), (NULL, 'null row'),
                     ('00000000-0000-0000-0000-000000000000', 'nil row');
SELECT set_config('request.jwt.claims', '{"org_id":null}', false) IS NOT NULL AS set;
SELECT count(*) AS rows_matching_null_context FROM t WHERE org_id = tenant_guard.current_user_org_id();
SELECT set_config('request.jwt.claims', '{"org_id":"00000000-0000-0000-0000-000000000000"}', false) IS NOT NULL AS set;
SELECT count(*) AS rows_matching_nil_context FROM t WHERE org_id = (SELECT tenant_guard.current_user_org_id());

-- uppercase hex is a valid uuid
SELECT set_config('request.jwt.claims', '{"org_id":"ABCDEF01-1111-4111-8111-111111111111"}', false) IS NOT NULL AS set;
SELECT tenant_guard.current_user_org_id();

-- user id and role: strings only, trimmed, blank and "null" are absent
SELECT set_config('request.jwt.claims',
    '{"org_id":"11111111-1111-4111-8111-111111111111","sub":"  bob  ","org_role":"NULL"}', false) IS NOT NULL AS set;
SELECT tenant_guard.current_user_id(), tenant_guard.current_user_role() IS NULL AS role_absent;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111","sub":42}', false) IS NOT NULL AS set;
SELECT tenant_guard.current_user_id() IS NULL AS numeric_sub_absent;

-- duplicate keys: the last one wins, as in jsonb
SELECT set_config('request.jwt.claims',
    '{"org_id":"11111111-1111-4111-8111-111111111111","org_id":"22222222-2222-4222-8222-222222222222"}', false) IS NOT NULL AS set;
SELECT tenant_guard.current_user_org_id() = (current_setting('request.jwt.claims')::jsonb ->> 'org_id')::uuid AS same_as_jsonb;

-- a very large claims document (about 2 MB) still resolves
SELECT set_config('request.jwt.claims',
    json_build_object('org_id', '22222222-2222-4222-8222-222222222222',
                      'padding', repeat('x', 2000000),
                      'groups', (SELECT json_agg(g) FROM generate_series(1, 20000) g))::text, false) IS NOT NULL AS set;
SELECT tenant_guard.current_user_org_id();
-- deeply nested junk neither crashes nor matches
SELECT set_config('request.jwt.claims', '{"org_id":' || repeat('[', 100000) || repeat(']', 100000) || '}', false) IS NOT NULL AS set;
SELECT tenant_guard.current_user_org_id() IS NULL AS deep_is_null;

-- a claims value changed mid-transaction takes effect at once
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"11111111-1111-4111-8111-111111111111"}', true) IS NOT NULL AS set;
SELECT tenant_guard.current_user_org_id();
SELECT set_config('request.jwt.claims', '{"org_id":"22222222-2222-4222-8222-222222222222"}', true) IS NOT NULL AS set;
SELECT tenant_guard.current_user_org_id();
COMMIT;
-- the transaction-local value is gone after COMMIT; the session value (the nested junk) is back
SELECT tenant_guard.current_user_org_id() IS NULL AS back_to_session_value;

-- nested claims: a superuser points the claim names at app_metadata
SET tenant_guard.org_claim = 'app_metadata.org_id';
SET tenant_guard.role_claim = 'app_metadata.role';
SET tenant_guard.scopes_claim = 'app_metadata.scopes';
SELECT set_config('request.jwt.claims',
    '{"org_id":"11111111-1111-4111-8111-111111111111","sub":"carol",'
    '"app_metadata":{"org_id":"22222222-2222-4222-8222-222222222222","role":"viewer","scopes":{"venue":["v9"]}},'
    '"user_metadata":{"org_id":"11111111-1111-4111-8111-111111111111"}}', false) IS NOT NULL AS set;
SELECT tenant_guard.current_user_org_id(), tenant_guard.current_user_id(),
       tenant_guard.current_user_role(), tenant_guard.current_scopes('venue');
-- the cached parse follows a change of claim path at once
SET tenant_guard.org_claim = 'user_metadata.org_id';
SELECT tenant_guard.current_user_org_id();
SET tenant_guard.org_claim = 'app_metadata.missing';
SELECT tenant_guard.current_user_org_id() IS NULL AS missing_path;
SET tenant_guard.org_claim = 'app_metadata';
SELECT tenant_guard.current_user_org_id() IS NULL AS object_is_not_an_id;
-- invalid claim paths are refused
SET tenant_guard.org_claim = '';
SET tenant_guard.org_claim = 'app_metadata..org_id';
SET tenant_guard.user_claim = '.sub';
RESET tenant_guard.org_claim;
RESET tenant_guard.role_claim;
RESET tenant_guard.scopes_claim;

-- the settings of other sources are ignored by the claims source
SET tenant_guard.org_id = '22222222-2222-4222-8222-222222222222';
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS set;
SELECT tenant_guard.current_user_org_id() IS NULL AS setting_ignored;
RESET tenant_guard.org_id;

-- text and bigint tenant columns read the same claim as a key
CREATE TEMP TABLE keys(label text, doc text);
INSERT INTO keys VALUES
    ('uuid string', '{"org_id":"11111111-1111-4111-8111-111111111111"}'),
    ('text id', '{"org_id":"acme-corp"}'),
    ('numeric string', '{"org_id":"42"}'),
    ('JSON integer', '{"org_id":42}'),
    ('negative', '{"org_id":-7}'),
    ('leading zero', '{"org_id":"042"}'),
    ('plus sign', '{"org_id":"+42"}'),
    ('too big', '{"org_id":"9223372036854775808"}'),
    ('fraction', '{"org_id":4.2}'),
    ('padded', '{"org_id":" acme"}'),
    ('empty', '{"org_id":""}'),
    ('null word', '{"org_id":"null"}'),
    ('JSON null', '{"org_id":null}'),
    ('boolean', '{"org_id":true}'),
    ('object', '{"org_id":{"id":42}}');
CREATE TEMP TABLE key_result(label text, as_uuid uuid, as_text text, as_bigint bigint, role text);
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM keys LOOP
        PERFORM set_config('request.jwt.claims', jsonb_set(r.doc::jsonb, '{org_role}', '"member"')::text, false);
        INSERT INTO key_result VALUES (r.label, tenant_guard.current_user_org_id(), tenant_guard.current_user_org_text(),
            tenant_guard.current_user_org_bigint(), tenant_guard.current_user_role());
    END LOOP;
END
$$;
SELECT * FROM key_result ORDER BY label;
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS cleared;
