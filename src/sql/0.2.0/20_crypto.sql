-----------------------------------------------------------------------------
-- Column encryption (docs/encryption.md, docs/key-management.md)
--
-- Key hierarchy: a master key (KEK) held outside the database
-- (tenant_guard.master_key_file or tenant_guard.master_key_command, superuser
-- settings) wraps per-tenant data keys (DEKs) kept in tenant_guard.tenant_keys.
-- No application role can read that table: the C functions read and write it
-- after switching to its owner, and only the owner and superusers see it.
-- Values are sealed with AES-256-GCM under the current tenant's active DEK;
-- the associated data binds the tenant id, the key version and the caller's
-- aad. Every change of tenant_keys invalidates the key cache of every
-- backend (statement trigger below).
-----------------------------------------------------------------------------

-- Wrapped tenant data keys. One active version per tenant, retired versions
-- kept for decryption, shredded versions kept as tombstones (no key left) so
-- decrypt can say "shredded" and the erasure stays on record.
CREATE TABLE tenant_guard.tenant_keys (
    org_id       uuid NOT NULL,
    version      integer NOT NULL CHECK (version > 0),
    state        text NOT NULL CHECK (state IN ('active', 'retired', 'shredded')),
    wrapped_key  bytea CHECK (pg_catalog.octet_length(wrapped_key) = 60),
    kek_id       bytea CHECK (pg_catalog.octet_length(kek_id) = 16),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by   name NOT NULL,
    retired_at   timestamptz,
    shredded_at  timestamptz,
    shredded_by  name,
    PRIMARY KEY (org_id, version),
    CHECK ((state = 'shredded') = (wrapped_key IS NULL)),
    CHECK ((wrapped_key IS NULL) = (kek_id IS NULL)),
    CHECK ((state = 'shredded') = (shredded_at IS NOT NULL))
);
CREATE UNIQUE INDEX tenant_keys_one_active ON tenant_guard.tenant_keys (org_id) WHERE state = 'active';
COMMENT ON TABLE tenant_guard.tenant_keys IS
    'Tenant data keys, wrapped by the master key (never readable by application roles).';
REVOKE ALL ON tenant_guard.tenant_keys FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.tenant_keys', '');

-- Who created, rotated, shredded or re-wrapped which keys, and when. No key
-- material. Readable by superusers (and whoever they grant it to).
CREATE TABLE tenant_guard.key_events (
    at            timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    org_id        uuid NOT NULL,
    event         text NOT NULL CHECK (event IN ('created', 'rotated', 'shredded', 'rewrapped')),
    versions      integer[] NOT NULL,
    actor         name NOT NULL,
    session_actor name NOT NULL DEFAULT session_user
);
CREATE INDEX key_events_org ON tenant_guard.key_events (org_id, at);
COMMENT ON TABLE tenant_guard.key_events IS
    'Key lifecycle records: created, rotated, shredded, rewrapped; when and by whom.';
REVOKE ALL ON tenant_guard.key_events FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.key_events', '');

CREATE FUNCTION tenant_guard._tenant_keys_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'tg__relcache_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._tenant_keys_changed() IS
    'Internal: every backend drops its cached tenant keys when tenant_guard.tenant_keys changes.';
REVOKE ALL ON FUNCTION tenant_guard._tenant_keys_changed() FROM PUBLIC;
CREATE TRIGGER tenant_keys_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_guard.tenant_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard._tenant_keys_changed();

-- Encrypting and decrypting. Not STRICT: a NULL value gives NULL, but a NULL
-- aad is an error (a silently NULL ciphertext would lose the value).
-- PARALLEL RESTRICTED: they may read (encrypt: create) the tenant's key.
CREATE FUNCTION tenant_guard.encrypt(data bytea, aad text DEFAULT '')
RETURNS bytea
AS 'MODULE_PATHNAME', 'tg_encrypt'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_guard.encrypt(bytea, text) IS
    'AES-256-GCM under the current tenant''s active key; aad (e.g. ''schema.table.column'') must match on decrypt.';

CREATE FUNCTION tenant_guard.encrypt_text(data text, aad text DEFAULT '')
RETURNS bytea
AS 'MODULE_PATHNAME', 'tg_encrypt'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_guard.encrypt_text(text, text) IS
    'encrypt() of a text value (its bytes in the database encoding).';

CREATE FUNCTION tenant_guard.decrypt(data bytea, aad text DEFAULT '')
RETURNS bytea
AS 'MODULE_PATHNAME', 'tg_decrypt'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_guard.decrypt(bytea, text) IS
    'Decrypts a value of encrypt() for the current tenant and the same aad; any mismatch is an error.';

CREATE FUNCTION tenant_guard.decrypt_text(data bytea, aad text DEFAULT '')
RETURNS text
AS 'MODULE_PATHNAME', 'tg_decrypt_text'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_guard.decrypt_text(bytea, text) IS
    'decrypt() returning text; the plaintext must be valid in the database encoding.';

CREATE FUNCTION tenant_guard.reencrypt(data bytea, aad text DEFAULT '')
RETURNS bytea
AS 'MODULE_PATHNAME', 'tg_reencrypt'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_guard.reencrypt(bytea, text) IS
    'Decrypts and encrypts again under the tenant''s active key version (after rotate_key()).';

CREATE FUNCTION tenant_guard.key_version(data bytea)
RETURNS integer
AS 'MODULE_PATHNAME', 'tg_key_version'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.key_version(bytea) IS
    'Key version named in a ciphertext''s envelope (no key needed); finds rows to re-encrypt.';

-- STABLE so that WHERE col = blind_index(...) is computed once and can use an
-- index on col; the first call for a tenant may create its key.
CREATE FUNCTION tenant_guard.blind_index(data text, context text)
RETURNS bytea
AS 'MODULE_PATHNAME', 'tg_blind_index'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_guard.blind_index(text, text) IS
    'HMAC-SHA256 of data under a per-tenant key derived from the tenant''s key, for equality search.';

-- Key lifecycle: for administrators only (granted to nobody by default).
CREATE FUNCTION tenant_guard.rotate_key(org uuid DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'tg_rotate_key'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard.rotate_key(uuid) IS
    'New active key version for the tenant (NULL: the current tenant); older versions still decrypt.';

CREATE FUNCTION tenant_guard.shred_keys(org uuid)
RETURNS integer
AS 'MODULE_PATHNAME', 'tg_shred_keys'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard.shred_keys(uuid) IS
    'Destroys every key of the tenant: all its ciphertext becomes unreadable (crypto-shredding).';

CREATE FUNCTION tenant_guard.rewrap_keys()
RETURNS integer
AS 'MODULE_PATHNAME', 'tg_rewrap_keys'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard.rewrap_keys() IS
    'Re-wraps every tenant key wrapped by the previous master key under the current one.';

-- Tokens and signatures: no tenant key involved.
CREATE FUNCTION tenant_guard.hmac_sha256(data bytea, key bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'tg_hmac_sha256'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.hmac_sha256(bytea, bytea) IS 'HMAC-SHA256 (e.g. signing webhooks).';

CREATE FUNCTION tenant_guard.verify_hmac_sha256(data bytea, signature bytea, key bytea)
RETURNS boolean
AS 'MODULE_PATHNAME', 'tg_verify_hmac_sha256'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.verify_hmac_sha256(bytea, bytea, bytea) IS
    'Constant-time check of an HMAC-SHA256 signature; false for a wrong signature or length.';

CREATE FUNCTION tenant_guard.random_token(bytes integer DEFAULT 32)
RETURNS text
AS 'MODULE_PATHNAME', 'tg_random_token'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.random_token(integer) IS
    'URL-safe base64 (no padding) of 16 to 1024 random bytes.';

CREATE FUNCTION tenant_guard.hash_token(token text)
RETURNS bytea
AS 'MODULE_PATHNAME', 'tg_hash_token'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.hash_token(text) IS 'SHA-256 of a token, to store tokens only as hashes.';

REVOKE ALL ON FUNCTION tenant_guard.encrypt(bytea, text), tenant_guard.encrypt_text(text, text),
    tenant_guard.decrypt(bytea, text), tenant_guard.decrypt_text(bytea, text), tenant_guard.reencrypt(bytea, text),
    tenant_guard.key_version(bytea), tenant_guard.blind_index(text, text), tenant_guard.rotate_key(uuid),
    tenant_guard.shred_keys(uuid), tenant_guard.rewrap_keys(), tenant_guard.hmac_sha256(bytea, bytea),
    tenant_guard.verify_hmac_sha256(bytea, bytea, bytea), tenant_guard.random_token(integer),
    tenant_guard.hash_token(text) FROM PUBLIC;
-- Granted to PUBLIC on purpose: they act only for the caller's own tenant
-- context (or use no key at all).
GRANT EXECUTE ON FUNCTION tenant_guard.encrypt(bytea, text), tenant_guard.encrypt_text(text, text),
    tenant_guard.decrypt(bytea, text), tenant_guard.decrypt_text(bytea, text), tenant_guard.reencrypt(bytea, text),
    tenant_guard.key_version(bytea), tenant_guard.blind_index(text, text), tenant_guard.hmac_sha256(bytea, bytea),
    tenant_guard.verify_hmac_sha256(bytea, bytea, bytea), tenant_guard.random_token(integer),
    tenant_guard.hash_token(text) TO PUBLIC;

-----------------------------------------------------------------------------
-- Secrets store: per-tenant named secrets (OAuth refresh tokens, webhook
-- signing secrets), encrypted with the tenant's key, aad
-- 'tenant_guard.secrets:' || name, behind a row-level security wall.
-----------------------------------------------------------------------------
CREATE TABLE tenant_guard.secrets (
    org_id     uuid NOT NULL DEFAULT tenant_guard.current_user_org_id(),
    name       text NOT NULL CHECK (name <> '' AND pg_catalog.octet_length(name) <= 256),
    secret     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (org_id, name)
);
COMMENT ON TABLE tenant_guard.secrets IS
    'Per-tenant encrypted secrets (put_secret, get_secret, delete_secret); each tenant sees only its own.';
ALTER TABLE tenant_guard.secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_guard.secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON tenant_guard.secrets AS PERMISSIVE FOR ALL TO PUBLIC
    USING (org_id = tenant_guard.current_user_org_id())
    WITH CHECK (org_id = tenant_guard.current_user_org_id());
REVOKE ALL ON tenant_guard.secrets FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_guard.secrets TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.secrets', '');

CREATE FUNCTION tenant_guard._require_tenant()
RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    org uuid := tenant_guard.current_user_org_id();
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'no tenant context' USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Secrets belong to a tenant, and this statement has no tenant context.',
            HINT = 'Establish the tenant context first (see tenant_guard.current_user_org_id()).';
    END IF;
    RETURN org;
END
$$;
COMMENT ON FUNCTION tenant_guard._require_tenant() IS 'Internal: the current tenant, or an error.';

CREATE FUNCTION tenant_guard.put_secret(name text, value text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    org uuid := tenant_guard._require_tenant();
BEGIN
    IF put_secret.name IS NULL OR put_secret.value IS NULL THEN
        RAISE EXCEPTION 'secret name and value must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO tenant_guard.secrets AS s (org_id, name, secret)
    VALUES (org, put_secret.name, tenant_guard.encrypt_text(put_secret.value, 'tenant_guard.secrets:' || put_secret.name))
    ON CONFLICT ON CONSTRAINT secrets_pkey DO UPDATE SET secret = EXCLUDED.secret, updated_at = now();
END
$$;
COMMENT ON FUNCTION tenant_guard.put_secret(text, text) IS 'Stores (or replaces) a named secret of the current tenant.';

CREATE FUNCTION tenant_guard.get_secret(name text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    org uuid := tenant_guard._require_tenant();
    result text;
BEGIN
    SELECT tenant_guard.decrypt_text(s.secret, 'tenant_guard.secrets:' || s.name) INTO result
    FROM tenant_guard.secrets s WHERE s.org_id = org AND s.name = get_secret.name;
    RETURN result;
END
$$;
COMMENT ON FUNCTION tenant_guard.get_secret(text) IS 'A named secret of the current tenant, or NULL.';

CREATE FUNCTION tenant_guard.delete_secret(name text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    org uuid := tenant_guard._require_tenant();
BEGIN
    DELETE FROM tenant_guard.secrets s WHERE s.org_id = org AND s.name = delete_secret.name;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION tenant_guard.delete_secret(text) IS 'Deletes a named secret of the current tenant; true if it existed.';

-----------------------------------------------------------------------------
-- encrypted_view(): a security_invoker view decrypting the listed bytea
-- columns with decrypt_text(col, 'schema.table.column'), the aad convention
-- of docs/encryption.md. Runs with the caller's rights.
-----------------------------------------------------------------------------
CREATE FUNCTION tenant_guard.encrypted_view(tbl regclass, columns name[], view_name name)
RETURNS regclass
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
    bad name;
    a record;
    cols text[] := '{}';
BEGIN
    IF tbl IS NULL OR columns IS NULL OR view_name IS NULL THEN
        RAISE EXCEPTION 'table, columns and view name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF cardinality(columns) = 0 THEN
        RAISE EXCEPTION 'no columns to decrypt' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT n.nspname, c.relname INTO nsp, rel
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    SELECT x INTO bad FROM unnest(columns) x
    WHERE x IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute
                                   WHERE attrelid = tbl AND attname = x AND attnum > 0 AND NOT attisdropped);
    IF FOUND THEN
        RAISE EXCEPTION 'table % has no column "%"', tbl, bad USING ERRCODE = 'undefined_column';
    END IF;
    SELECT x INTO bad FROM unnest(columns) x JOIN pg_attribute ON attrelid = tbl AND attname = x
    WHERE atttypid <> 'bytea'::regtype;
    IF FOUND THEN
        RAISE EXCEPTION 'column "%" of table % is not of type bytea', bad, tbl USING ERRCODE = 'datatype_mismatch',
            HINT = 'Encrypted columns hold the bytea values of tenant_guard.encrypt().';
    END IF;
    FOR a IN SELECT attname FROM pg_attribute WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped ORDER BY attnum
    LOOP
        IF a.attname = ANY (columns) THEN
            cols := cols || format('tenant_guard.decrypt_text(%I, %L) AS %I', a.attname,
                                   nsp || '.' || rel || '.' || a.attname, a.attname);
        ELSE
            cols := cols || format('%I', a.attname);
        END IF;
    END LOOP;
    EXECUTE format('CREATE VIEW %I.%I WITH (security_invoker = true) AS SELECT %s FROM %s',
                   nsp, view_name, array_to_string(cols, ', '), tbl);
    RETURN format('%I.%I', nsp, view_name)::regclass;
END
$$;
COMMENT ON FUNCTION tenant_guard.encrypted_view(regclass, name[], name) IS
    'Creates a security_invoker view that decrypts the listed columns (aad ''schema.table.column'').';

REVOKE ALL ON FUNCTION tenant_guard._require_tenant(), tenant_guard.put_secret(text, text),
    tenant_guard.get_secret(text), tenant_guard.delete_secret(text),
    tenant_guard.encrypted_view(regclass, name[], name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard._require_tenant(), tenant_guard.put_secret(text, text),
    tenant_guard.get_secret(text), tenant_guard.delete_secret(text),
    tenant_guard.encrypted_view(regclass, name[], name) TO PUBLIC;
