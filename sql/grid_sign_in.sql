-- tenant_guard._grid_sign_in(): on a Citus table whose application role
-- takes its context from a verified token on the workers, the attack grid
-- signs a short-lived token of tenant A itself (docs/citus.md; run on a real
-- cluster by test/citus/lifecycle_checks.sh). Here, without Citus: it signs
-- only with an HS256 key this node verifies tokens with (the secret file, or
-- an "oct" key of the key set that is not a service key), only for a
-- superuser and only inside a subtransaction, whose end removes the context
-- (without such a key: the token of the caller's own set_context(), for its
-- tenant only);
-- it returns nothing, and neither its errors nor the context it sets hold the
-- token or the secret. The grid's attempts on tables that are not Citus
-- tables keep the setting form, for signed roles too.
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE ROLE regress_gsi_app;

-- in a subtransaction that is rolled back, as the grid's attempts do: the
-- context the sign-in set, its claims (without iat and exp) and whether its
-- lifetime is the grid's five minutes; or the error
CREATE FUNCTION pg_temp.signed_in(org text, in_role text, scopes text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r text;
    claims jsonb;
BEGIN
    BEGIN
        PERFORM tenant_guard._grid_sign_in(org, in_role, scopes);
        claims := current_setting('tenant_guard.signed_context')::jsonb;
        r := format('org %s, role %s, venues %s, claims %s, lives 300 s from now %s, forwarded %s',
                    tenant_guard.current_user_org_text(), tenant_guard.current_user_role(),
                    tenant_guard.current_scopes('venue'), claims - 'iat' - 'exp',
                    (claims ->> 'exp')::bigint - (claims ->> 'iat')::bigint = 300
                    AND (claims ->> 'exp')::bigint > extract(epoch FROM now())
                    AND (claims ->> 'exp')::bigint <= extract(epoch FROM clock_timestamp()) + 300,
                    current_setting('tenant_guard.forward_token') <> '');
        RAISE EXCEPTION 'rolled back' USING ERRCODE = 'TGZ99';
    EXCEPTION
        WHEN SQLSTATE 'TGZ99' THEN NULL;
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS r = MESSAGE_TEXT;
            r := format('%s (SQLSTATE %s)', r, SQLSTATE);
    END;
    RETURN r;
END
$$;
-- the context after the subtransaction: none
CREATE FUNCTION pg_temp.after() RETURNS text LANGUAGE sql AS $$
    SELECT format('org %s, signed_context %L, forward_token %L', tenant_guard.current_user_org_text(),
                  current_setting('tenant_guard.signed_context'), current_setting('tenant_guard.forward_token'))
$$;

-- without a key: refused, naming what is missing (no key was ever read)
SELECT pg_temp.signed_in(:'org_a', NULL, NULL);
SET tenant_guard.jwt_algorithm = 'RS256';
SET tenant_guard.jwt_public_key_file = :'rs_public_file';
SELECT pg_temp.signed_in(:'org_a', NULL, NULL);
-- with a key it cannot sign with, the token of the caller's own set_context()
-- (a token of tenant A from the issuer), verified again, for its tenant only:
-- its own claims (role, scopes), not the ones asked for
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_rs_a')) = :'org_a' AS caller_in_a;
SELECT pg_temp.signed_in(:'org_a', 'viewer', NULL);
SELECT pg_temp.signed_in(:'org_b', NULL, NULL);
SELECT tenant_guard.current_user_org_id() = :'org_a' AS caller_still_in_a;
ROLLBACK;
RESET tenant_guard.jwt_algorithm;
RESET tenant_guard.jwt_public_key_file;
-- (a token this node no longer verifies is not used)
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
SET tenant_guard.jwt_audience = :'audience';
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) = :'org_a' AS caller_in_a;
SET LOCAL tenant_guard.jwt_algorithm = 'ES256';
SET LOCAL tenant_guard.jwt_public_key_file = :'es_public_file';
SELECT pg_temp.signed_in(:'org_a', NULL, NULL);
ROLLBACK;
RESET tenant_guard.jwt_secret_file;
RESET tenant_guard.jwt_audience;
SET tenant_guard.jwt_jwks_file = :'jwks_file';
SELECT pg_temp.signed_in(:'org_a', NULL, NULL);
RESET tenant_guard.jwt_jwks_file;

-- with the HS256 secret file: the claims at the configured paths, the audience
-- and issuer, five minutes of life; the context is gone with the subtransaction
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
SET tenant_guard.jwt_audience = :'audience';
SELECT pg_temp.signed_in(:'org_a', NULL, NULL);
SELECT pg_temp.signed_in(:'org_b', 'admin', '{"venue": ["v1", "v2"]}');
SELECT pg_temp.after();
SET tenant_guard.jwt_issuer = 'https://issuer.example';
SET tenant_guard.org_claim = 'app_metadata.org_id';
SET tenant_guard.role_claim = 'app_metadata.role';
SELECT pg_temp.signed_in('org_2abcXYZ', 'viewer', NULL);
RESET tenant_guard.org_claim;
RESET tenant_guard.role_claim;
RESET tenant_guard.jwt_issuer;
-- a token that would not verify is not set: the claims hold no valid org
SELECT pg_temp.signed_in('', NULL, NULL);
SELECT pg_temp.signed_in(:'org_a', NULL, '["not", "an", "object"]');
SELECT pg_temp.after();

-- with a key set: an "oct" key that is not a service key (svc-1 is listed as
-- one, and a token it signed would be refused); without one, refused
SET tenant_guard.jwt_jwks_file = :'jwks_hs_file';
SET tenant_guard.jwt_service_key_ids = 'svc-1';
SELECT pg_temp.signed_in(:'org_a', NULL, NULL);
SET tenant_guard.jwt_service_key_ids = 'svc-1, grid-1';
SELECT pg_temp.signed_in(:'org_a', NULL, NULL);
RESET tenant_guard.jwt_service_key_ids;
RESET tenant_guard.jwt_jwks_file;

-- NULL org, outside a subtransaction: refused
SELECT pg_temp.signed_in(NULL, NULL, NULL);
SELECT tenant_guard._grid_sign_in(:'org_a', NULL, NULL);
SELECT pg_temp.after();

-- no role but a superuser: not executable by PUBLIC, and refused inside even
-- when granted
SELECT has_function_privilege('regress_gsi_app', 'tenant_guard._grid_sign_in(text, text, text)', 'EXECUTE')
    AS app_may_execute;
SET ROLE regress_gsi_app;
SELECT tenant_guard._grid_sign_in(:'org_a', NULL, NULL);
RESET ROLE;
GRANT EXECUTE ON FUNCTION tenant_guard._grid_sign_in(text, text, text) TO regress_gsi_app;
SET ROLE regress_gsi_app;
SELECT pg_temp.signed_in(:'org_a', NULL, NULL);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION tenant_guard._grid_sign_in(text, text, text) FROM regress_gsi_app;

-- no error of the sign-in holds the secret (the refusals above, collected
-- again and compared with the file's contents)
SELECT count(*) AS errors_with_the_secret
FROM (VALUES (pg_temp.signed_in('', NULL, NULL)), (pg_temp.signed_in(:'org_a', NULL, '[1]')),
             (pg_temp.signed_in(NULL, NULL, NULL))) e(message)
WHERE strpos(e.message, btrim(pg_read_file(:'hs_secret_file'), E'\n')) > 0 OR e.message LIKE '%eyJ%';

-- the grid on a table that is not a Citus table: a signed role is attacked
-- with the setting form, as before (tenant A's rows seen, B's blocked)
CREATE TABLE gsi_docs (id int PRIMARY KEY, org_id uuid NOT NULL, body text);
SELECT tenant_guard.protect('gsi_docs');
INSERT INTO gsi_docs VALUES (1, :'org_a', 'a1'), (2, :'org_b', 'b2');
GRANT SELECT, INSERT, UPDATE, DELETE ON gsi_docs TO regress_gsi_app;
ALTER ROLE regress_gsi_app SET tenant_guard.context_source = 'signed';
SET tenant_guard.context_source = 'signed';
SELECT vector, outcome, detail FROM tenant_guard.attack_grid('regress_gsi_app', :'org_a', :'org_b')
WHERE vector IN ('read_other_tenant', 'update_other_tenant', 'delete_other_tenant', 'insert_select_other_tenant',
                 'forged_token', 'forged_signed_context')
ORDER BY vector;
SELECT count(*) AS details_with_a_token FROM tenant_guard.attack_grid('regress_gsi_app', :'org_a', :'org_b')
WHERE detail LIKE '%eyJ%';
RESET tenant_guard.context_source;

DROP TABLE gsi_docs;
DROP ROLE regress_gsi_app;
