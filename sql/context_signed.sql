-- Signed tokens: tenant_guard.set_context(token) verifies a compact JWT with
-- the configured algorithm and key. Tokens and keys are made per run by
-- test/fixtures/make_fixtures.py (PyJWT, an independent implementation).
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default

-- not configured: one clear error
SET tenant_guard.context_source = 'signed';
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a'));

-- HS256 with the secret file
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
SET tenant_guard.jwt_audience = :'audience';
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) = :'org_a' AS set_returns_org;
SELECT tenant_guard.current_user_org_id() = :'org_a' AS org_a, tenant_guard.current_user_id(),
       tenant_guard.current_user_role(), tenant_guard.current_scopes('venue');
COMMIT;
SELECT tenant_guard.current_user_org_id() IS NULL AS gone_after_commit;

-- an aud list containing the configured audience is accepted
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_aud_list')) = :'org_b' AS aud_list_ok;
COMMIT;

-- every refusal leaves the current context unchanged and never echoes the token
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_b')) = :'org_b' AS have_b;
SAVEPOINT attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_expired'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_not_yet'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_none'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_none_upper'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_confusion'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_rs_a'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_wrong_key'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_tampered'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_truncated'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_two_parts'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_bad_b64'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_wrong_aud'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_no_aud'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_no_org'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_bad_org'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_nil_org'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_no_exp'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_crit'));
ROLLBACK TO attempt;
SELECT tenant_guard.set_context('');
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(NULL);
ROLLBACK TO attempt;
SELECT tenant_guard.set_context('not a token at all');
ROLLBACK TO attempt;
SELECT tenant_guard.set_context(repeat('a', 70000));
ROLLBACK TO attempt;
SELECT tenant_guard.current_user_org_id() = :'org_b' AS still_b;
COMMIT;

-- a refused token in autocommit keeps an existing session context
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a'), session => true) = :'org_a' AS session_a;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_wrong_key'), session => true);
SELECT tenant_guard.current_user_org_id() = :'org_a' AS still_a;
SELECT tenant_guard.clear_context();
SELECT tenant_guard.current_user_org_id() IS NULL AS cleared;

-- the error never contains the token: check the message texts themselves
CREATE FUNCTION pg_temp.refusal(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE msg text; det text; st text;
BEGIN
    PERFORM tenant_guard.set_context(tok);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, st = RETURNED_SQLSTATE;
    IF position(split_part(tok, '.', 2) IN msg || det) > 0 AND split_part(tok, '.', 2) <> '' THEN
        RETURN 'LEAKED TOKEN';
    END IF;
    RETURN st || ': ' || det;
END $$;
SELECT pg_temp.refusal(:'tok_hs_tampered') AS tampered, pg_temp.refusal(:'tok_hs_expired') AS expired;

-- signed mode: set_config cannot forge or switch the tenant
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) = :'org_a' AS a;
SELECT set_config('request.jwt.claims', '{"org_id":"22222222-2222-4222-8222-222222222222"}', true) IS NOT NULL AS forged_claims;
SELECT set_config('tenant_guard.org_id', '22222222-2222-4222-8222-222222222222', true) IS NOT NULL AS forged_setting;
SELECT tenant_guard.current_user_org_id() = :'org_a' AS still_a;
COMMIT;
SELECT set_config('request.jwt.claims', '{"org_id":"22222222-2222-4222-8222-222222222222"}', false) IS NOT NULL AS forged_claims;
SELECT tenant_guard.current_user_org_id() IS NULL AS claims_ignored_in_signed_mode;
-- the internal setting that carries a verified context cannot be set, even by a superuser
SET tenant_guard.signed_context = '{"org_id":"22222222-2222-4222-8222-222222222222","exp":9999999999}';
SELECT set_config('tenant_guard.signed_context', '{"org_id":"22222222-2222-4222-8222-222222222222","exp":9999999999}', false);
ALTER ROLE CURRENT_USER SET tenant_guard.signed_context = '{"org_id":"22222222-2222-4222-8222-222222222222"}';
SELECT tenant_guard.current_user_org_id() IS NULL AS not_forged;
RESET tenant_guard.signed_context;

-- a verified context expires with its token, even mid-session. The token is
-- minted here (pgcrypto's HMAC, independent of tenant_guard) so that its
-- three-second lifetime starts now.
CREATE EXTENSION pgcrypto;
CREATE FUNCTION pg_temp.b64url(b bytea) RETURNS text LANGUAGE sql AS
$$ SELECT rtrim(translate(replace(encode(b, 'base64'), E'\n', ''), '+/', '-_'), '=') $$;
CREATE FUNCTION pg_temp.mint_hs256(claims jsonb, secret_file text) RETURNS text LANGUAGE sql AS $$
    SELECT s || '.' || pg_temp.b64url(hmac(s, rtrim(pg_read_file(secret_file), E'\n'), 'sha256'))
    FROM (SELECT pg_temp.b64url(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8')) || '.' ||
                 pg_temp.b64url(convert_to(claims::text, 'UTF8')) AS s) x
$$;
INSERT INTO pg_temp.tg_fixture_tokens
SELECT 'tok_short_ttl', pg_temp.mint_hs256(jsonb_build_object('org_id', :'org_a', 'aud', :'audience',
                        'exp', floor(extract(epoch FROM clock_timestamp()))::bigint + 3), :'hs_secret_file');
SELECT tenant_guard.set_context(pg_temp.tok('tok_short_ttl'), session => true) = :'org_a' AS short_lived;
SELECT tenant_guard.current_user_org_id() = :'org_a' AS valid_now;
SELECT pg_sleep(4);
SELECT tenant_guard.current_user_org_id() IS NULL AS expired_fails_closed;
SELECT tenant_guard.clear_context();

-- set_context wins over claims in the claims source, too
SET tenant_guard.context_source = 'claims';
BEGIN;
SELECT set_config('request.jwt.claims', '{"org_id":"22222222-2222-4222-8222-222222222222"}', true) IS NOT NULL AS claims_b;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) = :'org_a' AS signed_a;
SELECT tenant_guard.current_user_org_id() = :'org_a' AS signed_wins;
COMMIT;
SET tenant_guard.context_source = 'signed';

-- outside a transaction block a transaction-scoped context lasts one statement
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a')) = :'org_a' AS one_statement;
SELECT tenant_guard.current_user_org_id() IS NULL AS gone;

-- nested org claim with a signed token
SET tenant_guard.org_claim = 'app_metadata.org_id';
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_nested')) = :'org_b' AS nested_b;
COMMIT;
RESET tenant_guard.org_claim;

-- key file problems: loose permissions, too short, missing
SET tenant_guard.jwt_secret_file = :'hs_secret_loose_file';
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a'));
SET tenant_guard.jwt_secret_file = :'hs_secret_short_file';
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a'));
SET tenant_guard.jwt_secret_file = :'missing_file';
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a'));

-- RS256, ES256 and EdDSA with public key files
SET tenant_guard.jwt_algorithm = 'RS256';
SET tenant_guard.jwt_public_key_file = :'rs_public_file';
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_rs_a')) = :'org_a' AS rs256_ok;
COMMIT;
SELECT tenant_guard.set_context(pg_temp.tok('tok_rs_wrong_key'));
-- algorithm confusion: HS256 token signed with the RSA public key as secret
SELECT tenant_guard.set_context(pg_temp.tok('tok_confusion'));
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_a'));
SET tenant_guard.jwt_algorithm = 'ES256';
SELECT tenant_guard.set_context(pg_temp.tok('tok_es_a'));
SET tenant_guard.jwt_public_key_file = :'es_public_file';
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_es_a')) = :'org_a' AS es256_ok;
COMMIT;
SET tenant_guard.jwt_algorithm = 'EdDSA';
SET tenant_guard.jwt_public_key_file = :'ed_public_file';
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_ed_a')) = :'org_a' AS eddsa_ok;
COMMIT;
SELECT tenant_guard.set_context(pg_temp.tok('tok_es_a'));
SET tenant_guard.jwt_algorithm = 'none';

-- key settings are superuser-only and hidden from everyone else
CREATE ROLE regress_signed_app LOGIN;
SET ROLE regress_signed_app;
-- 42501 (insufficient_privilege); the message's wording differs between majors
\set VERBOSITY sqlstate
SHOW tenant_guard.jwt_secret_file;
SELECT current_setting('tenant_guard.jwt_public_key_file');
\set VERBOSITY default
SELECT count(*) AS visible_key_settings FROM pg_settings WHERE name LIKE 'tenant_guard.jwt%file';
SET tenant_guard.jwt_secret_file = '/tmp/attacker';
SET tenant_guard.jwt_algorithm = 'HS256';
SET tenant_guard.context_source = 'setting';
SET tenant_guard.signed_context = '{"org_id":"22222222-2222-4222-8222-222222222222"}';
-- the application role can still verify tokens with the configured key
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_ed_a')) = :'org_a' AS app_role_can_set_context;
SELECT tenant_guard.current_user_org_id() = :'org_a' AS app_sees_a;
COMMIT;
RESET ROLE;
DROP ROLE regress_signed_app;
