-- Column encryption, the rest: the tenant-bound secrets store (isolation
-- across tenants as attacks that must fail), encrypted_view(), HMAC
-- signatures, random and hashed tokens.
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
\set SHOW_CONTEXT never
SET tenant_guard.context_source = 'setting';
SET tenant_guard.master_key_file = :'master_key_file';
CREATE ROLE regress_cs_app;

-- secrets, as an application role
SET ROLE regress_cs_app;
SET tenant_guard.org_id = :'org_a';
SELECT tenant_guard.put_secret('stripe_webhook', 'whsec_A');
SELECT tenant_guard.put_secret('oauth_refresh', 'refresh-A');
SELECT tenant_guard.get_secret('stripe_webhook') AS a_webhook, tenant_guard.get_secret('missing') IS NULL AS missing;
SELECT tenant_guard.put_secret('stripe_webhook', 'whsec_A2');
SELECT tenant_guard.get_secret('stripe_webhook') AS replaced;
SELECT name, length(secret) > 33 AS encrypted, updated_at >= created_at AS times FROM tenant_guard.secrets ORDER BY name;
SELECT tenant_guard.put_secret(NULL, 'x');
SELECT tenant_guard.put_secret('x', NULL);
SELECT tenant_guard.put_secret('', 'x');

SET tenant_guard.org_id = :'org_b';
SELECT tenant_guard.put_secret('stripe_webhook', 'whsec_B');
-- attack 1: B reads A's secret by name: gets its own
SELECT tenant_guard.get_secret('stripe_webhook') AS b_sees;
SELECT tenant_guard.get_secret('oauth_refresh') IS NULL AS b_cannot_see_a;
-- attack 2: B reads the table directly: only its own rows
SELECT count(*) AS visible, bool_and(org_id = :'org_b') AS only_b FROM tenant_guard.secrets;
-- attack 3: B writes a row claiming A's tenant, or moves its row to A
INSERT INTO tenant_guard.secrets (org_id, name, secret) VALUES (:'org_a', 'planted', '\x00');
UPDATE tenant_guard.secrets SET org_id = :'org_a' WHERE name = 'stripe_webhook';
-- attack 4: B deletes or overwrites A's secret: nothing happens to A
SELECT tenant_guard.delete_secret('oauth_refresh') AS deleted_nothing;
DELETE FROM tenant_guard.secrets WHERE org_id = :'org_a';
-- no tenant: refused
SET tenant_guard.org_id = '';
SELECT tenant_guard.get_secret('stripe_webhook');
SELECT tenant_guard.put_secret('stripe_webhook', 'x');
SELECT tenant_guard.delete_secret('stripe_webhook');
SELECT count(*) AS visible_without_tenant FROM tenant_guard.secrets;
RESET ROLE;

-- attack 5: even a superuser copying A's ciphertext into B's row (or under
-- another name of A) gets no plaintext: the tenant and the name are bound
INSERT INTO tenant_guard.secrets (org_id, name, secret)
SELECT :'org_b', 'stolen', secret FROM tenant_guard.secrets WHERE org_id = :'org_a' AND name = 'oauth_refresh';
INSERT INTO tenant_guard.secrets (org_id, name, secret)
SELECT :'org_a', 'renamed', secret FROM tenant_guard.secrets WHERE org_id = :'org_a' AND name = 'oauth_refresh';
SET ROLE regress_cs_app;
SET tenant_guard.org_id = :'org_b';
SELECT tenant_guard.get_secret('stripe_webhook') AS b_own;
SELECT tenant_guard.get_secret('stolen');
SET tenant_guard.org_id = :'org_a';
SELECT tenant_guard.get_secret('renamed');
SELECT tenant_guard.get_secret('oauth_refresh') AS a_intact, tenant_guard.get_secret('stripe_webhook') AS a_webhook;
SELECT tenant_guard.delete_secret('oauth_refresh') AS deleted;
SELECT tenant_guard.get_secret('oauth_refresh') IS NULL AS gone;
RESET ROLE;

-- encrypted_view(): a security_invoker view decrypting with aad 'schema.table.column'
CREATE SCHEMA app;
CREATE TABLE app.accounts (id int PRIMARY KEY, org_id uuid NOT NULL, name text, api_key bytea, iban bytea);
GRANT USAGE ON SCHEMA app TO regress_cs_app;
GRANT SELECT, INSERT ON app.accounts TO regress_cs_app;
SET ROLE regress_cs_app;
SET tenant_guard.org_id = :'org_a';
INSERT INTO app.accounts VALUES (1, :'org_a', 'acme', tenant_guard.encrypt_text('key-1', 'app.accounts.api_key'),
                                 tenant_guard.encrypt_text('DE00 1234', 'app.accounts.iban'));
SET tenant_guard.org_id = :'org_b';
INSERT INTO app.accounts VALUES (2, :'org_b', 'globex', tenant_guard.encrypt_text('key-2', 'app.accounts.api_key'), NULL);
RESET ROLE;
SELECT tenant_guard.encrypted_view('app.accounts', ARRAY['api_key', 'iban']::name[], 'accounts_plain');
SELECT pg_get_viewdef('app.accounts_plain'::regclass);
SELECT reloptions FROM pg_class WHERE oid = 'app.accounts_plain'::regclass;
GRANT SELECT ON app.accounts_plain TO regress_cs_app;
SET ROLE regress_cs_app;
SET tenant_guard.org_id = :'org_a';
SELECT * FROM app.accounts_plain WHERE org_id = :'org_a';
-- B's row does not decrypt under A's context
SELECT * FROM app.accounts_plain WHERE id = 2;
SET tenant_guard.org_id = :'org_b';
SELECT * FROM app.accounts_plain WHERE id = 2;
RESET ROLE;
SELECT tenant_guard.encrypted_view('app.accounts', ARRAY['name']::name[], 'v2');
SELECT tenant_guard.encrypted_view('app.accounts', ARRAY['nope']::name[], 'v2');
SELECT tenant_guard.encrypted_view('app.accounts', '{}'::name[], 'v2');
SELECT tenant_guard.encrypted_view('app.accounts', NULL, 'v2');
SELECT tenant_guard.encrypted_view('app.accounts', ARRAY['api_key']::name[], 'accounts_plain');

-- HMAC-SHA256 (RFC 4231 test case 2) and verification
SELECT encode(tenant_guard.hmac_sha256(convert_to('what do ya want for nothing?', 'UTF8'), convert_to('Jefe', 'UTF8')), 'hex') AS rfc4231_2;
CREATE TEMP TABLE hook AS
SELECT convert_to('{"event":"paid"}', 'UTF8') AS body, convert_to('whsec_A', 'UTF8') AS key,
       tenant_guard.hmac_sha256(convert_to('{"event":"paid"}', 'UTF8'), convert_to('whsec_A', 'UTF8')) AS sig;
SELECT tenant_guard.verify_hmac_sha256(body, sig, key) AS right_signature,
       tenant_guard.verify_hmac_sha256(body, set_byte(sig, 31, get_byte(sig, 31) # 1), key) AS flipped_bit,
       tenant_guard.verify_hmac_sha256(convert_to('{"event":"refund"}', 'UTF8'), sig, key) AS other_body,
       tenant_guard.verify_hmac_sha256(body, sig, convert_to('whsec_B', 'UTF8')) AS other_key,
       tenant_guard.verify_hmac_sha256(body, substr(sig, 1, 16), key) AS truncated_sig,
       tenant_guard.verify_hmac_sha256(body, sig || '\x00'::bytea, key) AS long_sig,
       tenant_guard.verify_hmac_sha256(body, '\x'::bytea, key) AS empty_sig,
       tenant_guard.verify_hmac_sha256(body, NULL, key) IS NULL AS null_sig
FROM hook;
SELECT tenant_guard.hmac_sha256('\x00'::bytea, '\x'::bytea);
SELECT tenant_guard.verify_hmac_sha256('\x00'::bytea, '\x00'::bytea, '\x'::bytea);
-- no master key or tenant needed for these
RESET tenant_guard.master_key_file;
SET tenant_guard.org_id = '';
SELECT length(tenant_guard.hmac_sha256('\x01'::bytea, '\x02'::bytea)) AS len;

-- tokens: URL-safe, unique, the requested entropy; hash_token is SHA-256
SELECT length(tenant_guard.random_token()) AS default_len, length(tenant_guard.random_token(16)) AS len16,
       length(tenant_guard.random_token(1024)) AS len1024,
       tenant_guard.random_token(64) ~ '^[A-Za-z0-9_-]+$' AS url_safe;
SELECT count(DISTINCT tenant_guard.random_token()) AS distinct_tokens FROM generate_series(1, 1000);
SELECT tenant_guard.random_token(15);
SELECT tenant_guard.random_token(1025);
SELECT tenant_guard.random_token(NULL) IS NULL AS null_in;
SELECT encode(tenant_guard.hash_token('abc'), 'hex') AS sha256_abc, encode(tenant_guard.hash_token(''), 'hex') AS sha256_empty;
SELECT tenant_guard.hash_token(t) = sha256(convert_to(t, 'UTF8')) AS matches_builtin
FROM (SELECT tenant_guard.random_token() AS t) s;

DROP SCHEMA app CASCADE;
DELETE FROM tenant_guard.secrets;
DROP ROLE regress_cs_app;
