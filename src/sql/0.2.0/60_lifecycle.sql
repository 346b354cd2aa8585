-----------------------------------------------------------------------------
-- Tenant lifecycle (docs/lifecycle.md)
--
-- A registry of tenants (active -> archived -> purged), export of every row
-- of a tenant as JSON documents with a manifest (counts, chained SHA-256),
-- archive (the tenant becomes read-only: restrictive write policies on every
-- protected table), purge (delete every row in foreign-key-safe order, shred
-- the keys, keep a certificate) and a scheduler entry point.
--
-- Platform functions: revoked from PUBLIC, for superusers or the roles they
-- grant them to (docs/lifecycle.md, "Who may call what").
-----------------------------------------------------------------------------

-- A tenant is keyed by the canonical text form of its id (docs/lifecycle.md,
-- "Tenant ids"): a uuid in lower case (uuid::text), a bigint in decimal
-- without leading zeros, any other string as it is. _tenant_key() makes it.
CREATE TABLE tenant_guard.tenants (
    org_id        text PRIMARY KEY CHECK (org_id <> '' AND pg_catalog.octet_length(org_id) <= 255),
    display_name  text,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived', 'purged')),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    archived_at   timestamptz,
    purge_after   timestamptz,
    purged_at     timestamptz,
    CHECK ((status = 'active') = (archived_at IS NULL) OR status = 'purged'),
    CHECK ((status = 'purged') = (purged_at IS NOT NULL))
);
CREATE INDEX tenants_due_idx ON tenant_guard.tenants (purge_after) WHERE status = 'archived';
COMMENT ON TABLE tenant_guard.tenants IS
    'Tenant registry: status active -> archived -> purged, with the archive and purge dates.';
REVOKE ALL ON tenant_guard.tenants FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.tenants', '');
-- Every backend caches which tenants are not active (for _tenant_writable());
-- any change of the registry drops those caches.
CREATE FUNCTION tenant_guard._tenants_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'tg__relcache_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._tenants_changed() IS
    'Internal: every backend drops its cached list of archived and purged tenants.';
REVOKE ALL ON FUNCTION tenant_guard._tenants_changed() FROM PUBLIC;
CREATE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_guard.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard._tenants_changed();

-- Purge certificates: kept for good (no UPDATE, no DELETE).
CREATE TABLE tenant_guard.purge_certificates (
    org_id       text PRIMARY KEY,
    purged_at    timestamptz NOT NULL,
    certificate  jsonb NOT NULL,
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$')
);
COMMENT ON TABLE tenant_guard.purge_certificates IS
    'Purge certificates of tenant_guard.purge_tenant(); retained, never updated or deleted.';
REVOKE ALL ON tenant_guard.purge_certificates FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.purge_certificates', '');

CREATE FUNCTION tenant_guard._purge_certificates_refuse()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'purge certificates cannot be changed or deleted'
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'tenant_guard.purge_certificates is the retained record of every purge.';
END
$$;
COMMENT ON FUNCTION tenant_guard._purge_certificates_refuse() IS
    'Internal: refuses UPDATE, DELETE and TRUNCATE of tenant_guard.purge_certificates.';
REVOKE ALL ON FUNCTION tenant_guard._purge_certificates_refuse() FROM PUBLIC;
CREATE TRIGGER purge_certificates_refuse BEFORE UPDATE OR DELETE ON tenant_guard.purge_certificates
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._purge_certificates_refuse();
CREATE TRIGGER purge_certificates_refuse_truncate BEFORE TRUNCATE ON tenant_guard.purge_certificates
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard._purge_certificates_refuse();

-----------------------------------------------------------------------------
-- Registry
-----------------------------------------------------------------------------

-- The canonical text form of a tenant id, as the registry keys it: the same
-- rules as the organization claim of a context (docs/signed-mode.md): not
-- blank, not padded, at most 255 bytes, not the nil uuid; a uuid in any case
-- becomes its lower-case form. NULL stays NULL (the callers refuse it). With
-- must_match, a value that no protected table's tenant column can hold is
-- refused: a uuid fits uuid and text columns, a canonical integer (no leading
-- zero, within bigint) bigint and text columns, anything else text columns.
-- While no table is protected, only a uuid is accepted (as before text and
-- bigint tenants existed).
CREATE FUNCTION tenant_guard._tenant_key(org text, must_match boolean)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    is_uuid boolean;
    is_bigint boolean;
    types text[];
BEGIN
    IF org IS NULL THEN
        RETURN NULL;
    END IF;
    IF org = '' OR pg_catalog.btrim(org) = '' OR org <> pg_catalog.btrim(org, E' \t\r\n')
       OR pg_catalog.octet_length(org) > 255 THEN
        RAISE EXCEPTION 'tenant id must be non-blank text of at most 255 bytes without surrounding blanks'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    is_uuid := org ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
    IF is_uuid AND org::uuid = '00000000-0000-0000-0000-000000000000' THEN
        RAISE EXCEPTION 'the nil uuid is not a tenant id' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF is_uuid THEN
        org := org::uuid::text;
    END IF;
    is_bigint := CASE WHEN org ~ '^(0|-?[1-9][0-9]{0,18})$'
                      THEN org::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 ELSE false END;
    IF must_match THEN
        SELECT pg_catalog.array_agg(DISTINCT r.tenant_type) INTO types FROM tenant_guard._lifecycle_roots() r;
        IF NOT (coalesce('text' = ANY (types), false)
                OR (is_uuid AND (types IS NULL OR 'uuid' = ANY (types)))
                OR (is_bigint AND coalesce('bigint' = ANY (types), false))) THEN
            RAISE EXCEPTION 'tenant id % matches no protected table', org USING ERRCODE = 'invalid_parameter_value',
                DETAIL = pg_catalog.format('The protected tables have tenant columns of type %s; this id is %s.',
                    coalesce(pg_catalog.array_to_string(types, ', '), '(none)'),
                    CASE WHEN is_uuid THEN 'a uuid' WHEN is_bigint THEN 'an integer' ELSE 'neither a uuid nor an integer' END),
                HINT = 'Use the id the tenant has in its tables (a uuid, an integer, or a string for text tenant columns).';
        END IF;
    END IF;
    RETURN org;
END
$$;
COMMENT ON FUNCTION tenant_guard._tenant_key(text, boolean) IS
    'Internal: the canonical text form of a tenant id (lower-case uuid, canonical integer, or the string); refuses one no protected table can hold.';
-- export_tenant() runs with the caller's rights and needs it; it reveals only
-- the tenant column types, which pg_policy shows too.
GRANT EXECUTE ON FUNCTION tenant_guard._tenant_key(text, boolean) TO PUBLIC;

-- The WHERE predicate of a tenant's rows in a table whose tenant column has
-- type tenant_type ($1 = the tenant's key), or NULL when the key cannot be a
-- value of that type (such a table holds no row of the tenant).
CREATE FUNCTION tenant_guard._lifecycle_pred(tenant_column name, tenant_type text, org text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN tenant_type = 'uuid' AND org ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
            THEN pg_catalog.format('t.%I = $1::uuid', tenant_column)
        WHEN tenant_type = 'text' THEN pg_catalog.format('t.%I = $1', tenant_column)
        WHEN tenant_type = 'bigint' AND CASE WHEN org ~ '^(0|-?[1-9][0-9]{0,18})$'
                                             THEN org::numeric BETWEEN -9223372036854775808 AND 9223372036854775807
                                             ELSE false END
            THEN pg_catalog.format('t.%I = $1::bigint', tenant_column)
    END
$$;
COMMENT ON FUNCTION tenant_guard._lifecycle_pred(name, text, text) IS
    'Internal: WHERE predicate of a tenant''s rows ($1 = its canonical key); NULL when the key cannot be a value of the column''s type.';
GRANT EXECUTE ON FUNCTION tenant_guard._lifecycle_pred(name, text, text) TO PUBLIC;

-- Is the current context the tenant of this key? (The claim as text, or the
-- claim's uuid in canonical form.)
CREATE FUNCTION tenant_guard._lifecycle_in_context(org text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(tenant_guard.current_user_org_text() = org
                    OR tenant_guard.current_user_org_id()::text = org, false)
$$;
COMMENT ON FUNCTION tenant_guard._lifecycle_in_context(text) IS
    'Internal: true when the current tenant context is the tenant of this canonical key.';
-- export_tenant() runs with the caller's rights; it compares the caller's own context.
GRANT EXECUTE ON FUNCTION tenant_guard._lifecycle_in_context(text) TO PUBLIC;

CREATE FUNCTION tenant_guard.register_tenant(org text, display_name text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    known boolean;
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'org must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM tenant_guard._citus_refuse_worker('register_tenant()');
    org := tenant_guard._tenant_key(org, true);
    SELECT t.status INTO st FROM tenant_guard.tenants t WHERE t.org_id = org FOR UPDATE;
    known := FOUND;
    IF known AND st <> 'active' THEN
        RAISE EXCEPTION 'tenant % is %', org, st USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'Only an active tenant can be registered again (its display name changes).';
    END IF;
    IF known THEN
        UPDATE tenant_guard.tenants t SET display_name = register_tenant.display_name WHERE t.org_id = org;
    ELSE
        INSERT INTO tenant_guard.tenants (org_id, display_name) VALUES (org, register_tenant.display_name);
    END IF;
    PERFORM tenant_guard._audit_write_event(org, 'platform.tenant_registered',
        pg_catalog.jsonb_build_object('display_name', register_tenant.display_name, 'renamed', known));
END
$$;
COMMENT ON FUNCTION tenant_guard.register_tenant(text, text) IS
    'Registers a tenant (uuid, integer or string id) as active, or renames an active one; platform function.';
REVOKE ALL ON FUNCTION tenant_guard.register_tenant(text, text) FROM PUBLIC;
CREATE FUNCTION tenant_guard.register_tenant(org uuid, display_name text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN PERFORM tenant_guard.register_tenant(org::text, display_name); END $$;
COMMENT ON FUNCTION tenant_guard.register_tenant(uuid, text) IS
    'register_tenant() of a uuid tenant (its canonical text form); needs EXECUTE on register_tenant(text, text) too.';
REVOKE ALL ON FUNCTION tenant_guard.register_tenant(uuid, text) FROM PUBLIC;

-- Registry rows the lifecycle functions cannot use, and why: the relation no
-- longer exists (dropped without the event triggers, or a temporary table
-- gone with its session), is a temporary table (private to another session;
-- protect() never registers one), or is not a table. Export and purge skip
-- them and report them instead of failing for every tenant; lint reports them
-- too (TG062). The registry is readable by everyone, and pg_class names the
-- same relations, so this reveals nothing.
CREATE FUNCTION tenant_guard._lifecycle_unusable()
RETURNS TABLE (tbl regclass, reason text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.tbl,
           CASE WHEN c.oid IS NULL THEN 'the relation no longer exists'
                WHEN c.relpersistence = 't' THEN 'a temporary table (of a session; protect() never registers one)'
                ELSE 'not a table' END
    FROM tenant_guard.protected_tables p LEFT JOIN pg_catalog.pg_class c ON c.oid = p.tbl
    WHERE c.oid IS NULL OR c.relpersistence = 't' OR c.relkind NOT IN ('r', 'p')
    ORDER BY p.tbl::oid
$$;
COMMENT ON FUNCTION tenant_guard._lifecycle_unusable() IS
    'Internal: registry rows of protected_tables that export and purge skip (relation gone, temporary, not a table), and why.';
GRANT EXECUTE ON FUNCTION tenant_guard._lifecycle_unusable() TO PUBLIC;

-- The registered tables of a tenant, root tables (parent IS NULL) first
-- level only; partitions and inheritance children are read through them.
-- Unusable registry rows are left out (see _lifecycle_unusable()).
CREATE FUNCTION tenant_guard._lifecycle_roots()
RETURNS TABLE (tbl regclass, tenant_column name, tenant_type text)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.tbl, p.tenant_column, p.tenant_type FROM tenant_guard.protected_tables p
    JOIN pg_catalog.pg_class c ON c.oid = p.tbl AND c.relpersistence <> 't' AND c.relkind IN ('r', 'p')
    WHERE p.parent IS NULL ORDER BY p.tbl::text
$$;
COMMENT ON FUNCTION tenant_guard._lifecycle_roots() IS
    'Internal: protected root tables (parent IS NULL) with their tenant column, in name order.';
-- export_tenant() runs with the caller's rights and needs the list; the names
-- of tenant tables and their tenant columns are public in pg_policy anyway.
GRANT EXECUTE ON FUNCTION tenant_guard._lifecycle_roots() TO PUBLIC;

-- Every protected table (roots and descendants) in name order.
CREATE FUNCTION tenant_guard._lifecycle_all_tables()
RETURNS SETOF regclass
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.tbl FROM tenant_guard.protected_tables p
    JOIN pg_catalog.pg_class c ON c.oid = p.tbl AND c.relpersistence <> 't' AND c.relkind IN ('r', 'p')
    ORDER BY p.tbl::text
$$;
COMMENT ON FUNCTION tenant_guard._lifecycle_all_tables() IS
    'Internal: every protected table, partitions and children included, in name order.';
GRANT EXECUTE ON FUNCTION tenant_guard._lifecycle_all_tables() TO PUBLIC;


-- Unprotected tables that hold a row of every tenant: the tables a protected
-- table's tenant column references (an organizations table keyed by the org
-- id). Neither export nor purge reads them; both list them in not_covered.
CREATE FUNCTION tenant_guard._lifecycle_uncovered()
RETURNS TABLE (tbl regclass, reason text)
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.confrelid::regclass,
           'not protected; referenced by the tenant column of ' || pg_catalog.string_agg(DISTINCT p.tbl::text, ', ')
    FROM tenant_guard.protected_tables p
    JOIN pg_catalog.pg_attribute a ON a.attrelid = p.tbl AND a.attname = p.tenant_column
    JOIN pg_catalog.pg_constraint c ON c.conrelid = p.tbl AND c.contype = 'f' AND a.attnum = ANY (c.conkey)
    WHERE NOT EXISTS (SELECT 1 FROM tenant_guard.protected_tables q WHERE q.tbl = c.confrelid)
    GROUP BY c.confrelid ORDER BY c.confrelid::regclass::text
$$;
COMMENT ON FUNCTION tenant_guard._lifecycle_uncovered() IS
    'Internal: unprotected tables referenced by a protected table''s tenant column (export and purge leave them).';
-- export_tenant() runs with the caller's rights; foreign keys are public in pg_constraint.
GRANT EXECUTE ON FUNCTION tenant_guard._lifecycle_uncovered() TO PUBLIC;

-- How many rows of a protected root table (partitions and children with it)
-- belong to a tenant, whatever row-level security shows the caller. Only in
-- that tenant's own context: export_tenant() compares it with what the caller
-- read, so an export by an in-tenant role that reads less is not complete.
CREATE FUNCTION tenant_guard._lifecycle_tenant_rows(tbl regclass, org text)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pred text;
    n bigint;
BEGIN
    IF org IS NULL OR NOT tenant_guard._lifecycle_in_context(org) THEN
        RAISE EXCEPTION 'row count of tenant % needs that tenant''s context', org USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT tenant_guard._lifecycle_pred(p.tenant_column, p.tenant_type, org) INTO pred
    FROM tenant_guard.protected_tables p WHERE p.tbl = _lifecycle_tenant_rows.tbl AND p.parent IS NULL;
    IF pred IS NULL THEN
        RAISE EXCEPTION 'table % is not a protected root table whose tenant column can hold tenant %', tbl, org
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s t WHERE %s', tbl, pred) INTO n USING org;
    RETURN n;
END
$$;
COMMENT ON FUNCTION tenant_guard._lifecycle_tenant_rows(regclass, text) IS
    'Internal: the number of rows of the current tenant in a protected root table, whatever its in-tenant role reads.';
-- export_tenant() runs with the caller's rights; only the caller's own
-- tenant is counted (a tenant's row counts are its own).
GRANT EXECUTE ON FUNCTION tenant_guard._lifecycle_tenant_rows(regclass, text) TO PUBLIC;

-----------------------------------------------------------------------------
-- Export
-----------------------------------------------------------------------------

-- One document {"table": ..., "row": ...} per row, then one manifest
-- {"manifest": {...}}. SECURITY INVOKER: the caller reads with its own
-- privileges and row-level security; every query also filters by the tenant
-- column. FOR ... IN EXECUTE reads through a cursor and RETURN NEXT spills to
-- a tuplestore on disk beyond work_mem: memory stays bounded.
CREATE FUNCTION tenant_guard.export_tenant(org text, decrypt_columns text[] DEFAULT '{}')
RETURNS SETOF jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    doc jsonb;
    h bytea := pg_catalog.sha256(''::bytea);
    n bigint := 0;
    counts jsonb := '{}';
    skipped jsonb := '[]';
    decrypted text[] := '{}';
    sel text;
    pred text;
    a record;
    col text;
    tag text;
    run_tag text;
    run_n bigint := 0;
    bypass boolean;
    seen bigint;
    hidden bigint; citus boolean; shard_tag text; shard_table text;  -- (Citus: the last row's shard, its table)
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'org must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    org := tenant_guard._tenant_key(org, true);
    -- Row-level security decides what the caller reads: a role that does not
    -- bypass it reads nothing outside its own tenant's context, and inside it
    -- only what its in-tenant role may read. Either would make an export look
    -- complete that is not: refused, or reported in not_covered below.
    SELECT ro.rolsuper OR ro.rolbypassrls INTO bypass FROM pg_catalog.pg_roles ro WHERE ro.rolname = current_user;
    IF NOT bypass AND NOT tenant_guard._lifecycle_in_context(org) THEN
        RAISE EXCEPTION 'export of tenant % needs that tenant''s context', org USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Row-level security shows this role no row of another tenant: the export would be empty.',
            HINT = 'Export in the tenant''s own context, or as a role that bypasses row-level security.';
    END IF;
    decrypt_columns := coalesce(decrypt_columns, '{}');
    IF pg_catalog.cardinality(decrypt_columns) > 0 THEN
        IF NOT tenant_guard._lifecycle_in_context(org) THEN
            RAISE EXCEPTION 'decrypted export only in the tenant''s own context'
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'The current tenant context is not the exported tenant.',
                      HINT = 'Establish the tenant''s context, or export without decrypt_columns (ciphertext).';
        END IF;
    END IF;
    FOR r IN SELECT * FROM tenant_guard._lifecycle_all_tables() x(tbl) LOOP
        counts := counts || pg_catalog.jsonb_build_object(r.tbl::text, 0);
    END LOOP;
    -- registry rows naming no usable table: listed, never read
    FOR r IN SELECT * FROM tenant_guard._lifecycle_unusable() LOOP
        skipped := skipped || pg_catalog.jsonb_build_object('table', r.tbl::text, 'reason',
            'registry row skipped: ' || r.reason);
    END LOOP;
    -- every decrypt_columns entry must name a bytea column of a protected root table
    FOREACH col IN ARRAY decrypt_columns LOOP
        IF NOT EXISTS (SELECT 1 FROM tenant_guard._lifecycle_roots() x
                       JOIN pg_catalog.pg_class c ON c.oid = x.tbl
                       JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
                       JOIN pg_catalog.pg_attribute t ON t.attrelid = x.tbl AND t.attnum > 0 AND NOT t.attisdropped
                       WHERE t.atttypid = 'bytea'::regtype AND s.nspname || '.' || c.relname || '.' || t.attname = col) THEN
            RAISE EXCEPTION 'decrypt_columns entry "%" is not a bytea column of a protected root table', col
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name columns as schema.table.column (the aad convention of encrypted_view()).';
        END IF;
    END LOOP;
    FOR r IN SELECT * FROM tenant_guard._lifecycle_roots() LOOP
        -- a tenant column that cannot hold this id (a uuid column and a
        -- string id, ...) holds no row of the tenant: counted 0
        pred := tenant_guard._lifecycle_pred(r.tenant_column, r.tenant_type, org);
        IF pred IS NULL THEN
            CONTINUE;
        END IF;
        sel := 'pg_catalog.to_jsonb(t)';
        FOR a IN SELECT s.nspname || '.' || c.relname || '.' || t.attname AS qual, t.attname
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
                 JOIN pg_catalog.pg_attribute t ON t.attrelid = c.oid AND t.attnum > 0 AND NOT t.attisdropped
                 WHERE c.oid = r.tbl AND s.nspname || '.' || c.relname || '.' || t.attname = ANY (decrypt_columns)
                 ORDER BY t.attnum LOOP
            sel := sel || pg_catalog.format(' || pg_catalog.jsonb_build_object(%L, tenant_guard.decrypt_text(t.%I, %L))',
                                            a.attname, a.attname, a.qual);
            decrypted := decrypted || a.qual;
        END LOOP;
        seen := n;
        -- (a Citus distributed or reference table; Citus's catalog is readable by every role)
        citus := false;
        IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
            EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = $1)'
                INTO citus USING r.tbl;
        END IF;
        FOR doc, tag IN EXECUTE pg_catalog.format(
                'SELECT pg_catalog.jsonb_build_object(''table'', t.tableoid::pg_catalog.regclass::text, ''row'', %s), '
                '       t.tableoid::pg_catalog.regclass::text FROM %s t WHERE %s', sel, r.tbl, pred)
            USING org LOOP
            -- On a Citus table the row comes from a shard on its node:
            -- tableoid names the shard (<table>_<shard id>); the document
            -- names its table, through the coordinator's pg_dist_shard.
            IF citus THEN
                IF tag IS DISTINCT FROM shard_tag THEN
                    shard_tag := tag;
                    shard_table := NULL;
                    IF tag ~ '_[0-9]+$' THEN
                        EXECUTE 'SELECT s.logicalrelid::pg_catalog.regclass::pg_catalog.text '
                                'FROM pg_catalog.pg_dist_shard s WHERE s.shardid = $1'
                            INTO shard_table USING pg_catalog.substring(tag, '_([0-9]+)$')::bigint;
                    END IF;
                    shard_table := coalesce(shard_table, tag);
                END IF;
                tag := shard_table;
                doc := pg_catalog.jsonb_set(doc, '{table}', pg_catalog.to_jsonb(tag));
            END IF;
            h := pg_catalog.sha256(h || pg_catalog.convert_to(doc::text, 'UTF8'));
            n := n + 1;
            -- rows of one table come in runs (an Append reads partition by
            -- partition): count the run, add it to the manifest when it ends
            IF tag IS DISTINCT FROM run_tag THEN
                IF run_tag IS NOT NULL THEN
                    counts := pg_catalog.jsonb_set(counts, ARRAY[run_tag],
                        pg_catalog.to_jsonb(coalesce((counts ->> run_tag)::bigint, 0) + run_n));
                END IF;
                run_tag := tag;
                run_n := 0;
            END IF;
            run_n := run_n + 1;
            RETURN NEXT doc;
        END LOOP;
        IF NOT bypass THEN
            hidden := tenant_guard._lifecycle_tenant_rows(r.tbl, org) - (n - seen);
            IF hidden > 0 THEN
                skipped := skipped || pg_catalog.jsonb_build_object('table', r.tbl::text, 'reason',
                    pg_catalog.format('%s rows of the tenant not visible to the exporting role', hidden));
                RAISE WARNING 'export of tenant % is incomplete: % rows of % are not visible to role %', org, hidden,
                    r.tbl, current_user
                    USING HINT = 'Export as an in-tenant role allowed to read every row (tenant_guard.allow()), or as a '
                                 'role that bypasses row-level security.';
            END IF;
        END IF;
    END LOOP;
    FOR r IN SELECT * FROM tenant_guard._lifecycle_uncovered() LOOP
        skipped := skipped || pg_catalog.jsonb_build_object('table', r.tbl::text, 'reason', r.reason);
    END LOOP;
    IF run_tag IS NOT NULL THEN
        counts := pg_catalog.jsonb_set(counts, ARRAY[run_tag],
            pg_catalog.to_jsonb(coalesce((counts ->> run_tag)::bigint, 0) + run_n));
    END IF;
    RETURN NEXT pg_catalog.jsonb_build_object('manifest', pg_catalog.jsonb_build_object(
        'org_id', org,
        'exported_at', pg_catalog.clock_timestamp(),
        'exported_by', session_user,
        'format', 'tenant_guard.export/1',
        'documents', n,
        'tables', counts,
        'not_covered', skipped,
        'complete', skipped = '[]'::jsonb,
        'decrypted_columns', pg_catalog.to_jsonb(decrypted),
        'sha256', pg_catalog.encode(h, 'hex'),
        'algorithm', 'H0 = sha256(empty); Hi = sha256(H(i-1) || utf8(document i as jsonb text)); sha256 = hex(Hn)'));
END
$$;
COMMENT ON FUNCTION tenant_guard.export_tenant(text, text[]) IS
    'Every row of the tenant (uuid, integer or string id) in every protected table as JSON documents, then a manifest with counts and a chained SHA-256.';
REVOKE ALL ON FUNCTION tenant_guard.export_tenant(text, text[]) FROM PUBLIC;
CREATE FUNCTION tenant_guard.export_tenant(org uuid, decrypt_columns text[] DEFAULT '{}')
RETURNS SETOF jsonb
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT d FROM tenant_guard.export_tenant(org::text, decrypt_columns) d $$;
COMMENT ON FUNCTION tenant_guard.export_tenant(uuid, text[]) IS
    'export_tenant() of a uuid tenant (its canonical text form); needs EXECUTE on export_tenant(text, text[]) too.';
REVOKE ALL ON FUNCTION tenant_guard.export_tenant(uuid, text[]) FROM PUBLIC;

-----------------------------------------------------------------------------
-- Archive: restrictive write policies on every protected table
-----------------------------------------------------------------------------

-- True when the context's tenant may write; raises when it is archived or
-- purged. No context: true (the tenant wall decides). Called once per
-- statement as an InitPlan: (SELECT tenant_guard._tenant_writable()).
CREATE FUNCTION tenant_guard._tenant_writable()
RETURNS boolean
AS 'MODULE_PATHNAME', 'tg__tenant_writable'
LANGUAGE C STABLE PARALLEL SAFE;
-- (C, src/pg/lifecycle_fmgr.cpp: every write statement on a protected table
-- calls it, so each backend caches the short list of tenants that are not
-- active; the trigger on tenant_guard.tenants drops that cache in every
-- backend.)
COMMENT ON FUNCTION tenant_guard._tenant_writable() IS
    'Internal: true when the current tenant may write; raises when it is archived or purged.';
-- Policies call it with the querying role's rights: every role may execute it.
GRANT EXECUTE ON FUNCTION tenant_guard._tenant_writable() TO PUBLIC;

-- The write walls are generated policies, like the tenant wall: protect()
-- (and allow(), disallow(), protect_schema(), new partitions and children,
-- which all go through _apply_policies()) creates them, verify() compares
-- them, the DDL guards refuse dropping or altering them, unprotect() removes
-- them. This replaces the 0.1.0 generator with one that adds the three
-- restrictive tg_lifecycle_* policies to the tenant wall, the base policy and
-- the role policies; they cannot be lost by regenerating the others.
CREATE OR REPLACE FUNCTION tenant_guard._generated_policies(rel regclass, tenant_column name, tenant_type text,
                                                           root regclass)
RETURNS TABLE (name name, permissive boolean, command text, using_expr text, check_expr text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- On a Citus database, no sub-select (Citus refuses policies with one on
    -- distributed and reference tables); tenant_guard._citus_present().
    WITH citus AS (SELECT tenant_guard._citus_present() AS on),
    pred AS (
        SELECT pg_catalog.format(CASE WHEN citus.on THEN '%I = %s' ELSE '%I = (SELECT %s)' END,
                                 tenant_column, tenant_guard._context_expr(tenant_type)) AS p FROM citus)
    SELECT 'tg_wall'::name, false, 'ALL', p, p FROM pred
    UNION ALL
    SELECT 'tg_base'::name, true, 'ALL', p, p FROM pred
    WHERE NOT EXISTS (SELECT 1 FROM tenant_guard.access_rules r WHERE r.tbl = root)
    UNION ALL
    SELECT pg_catalog.format('tg_allow_%s_%s', r.role, pg_catalog.lower(r.command))::name, true, r.command,
           CASE WHEN r.command <> 'INSERT' THEN x.cond END,
           CASE WHEN r.command IN ('INSERT', 'UPDATE') THEN x.cond END
    FROM citus, pred, tenant_guard.access_rules r,
         LATERAL (SELECT pred.p || pg_catalog.format(CASE WHEN citus.on THEN ' AND tenant_guard.has_role(%L)'
                                                             ELSE ' AND (SELECT tenant_guard.has_role(%L))' END, r.role)
                  || CASE WHEN r.scope_column IS NULL THEN ''
                          ELSE pg_catalog.format(CASE WHEN citus.on
                                                      THEN ' AND %s = ANY (tenant_guard.current_scopes(%L)::text[])'
                                                      ELSE ' AND %s = ANY ((SELECT tenant_guard.current_scopes(%L))::text[])' END,
                                      CASE WHEN (SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE a.attrelid = rel
                                                 AND a.attname = r.scope_column) = 'pg_catalog.text'::pg_catalog.regtype
                                           THEN pg_catalog.quote_ident(r.scope_column)
                                           ELSE pg_catalog.quote_ident(r.scope_column) || '::text' END,
                                      r.scope_kind) END AS cond) x
    WHERE r.tbl = root
    UNION ALL
    -- the lifecycle write walls (archived and purged tenants are read-only)
    SELECT ('tg_lifecycle_' || pg_catalog.lower(c.command))::name, false, c.command,
           CASE WHEN c.command <> 'INSERT' THEN w.expr END,
           CASE WHEN c.command <> 'DELETE' THEN w.expr END
    FROM (VALUES ('INSERT'), ('UPDATE'), ('DELETE')) c(command),
         (SELECT CASE WHEN citus.on THEN 'tenant_guard._tenant_writable()'
                      ELSE '(SELECT tenant_guard._tenant_writable())' END AS expr FROM citus) w
$$;
COMMENT ON FUNCTION tenant_guard._generated_policies(regclass, name, text, regclass) IS
    'Internal: the policies protect() generates on a table: the tenant wall, the base or role policies, the lifecycle write walls.';

-- verify() with the lifecycle write walls: each must exist exactly as
-- generated (restrictive, for its command, TO PUBLIC, the writable check), so
-- a protected table without one is reported (and lint() reports it as TG013).
-- This is the check of this node's catalog; verify() (61_citus_verify.sql)
-- returns its rows and, on a Citus coordinator, those of every shard.
CREATE FUNCTION tenant_guard._verify_catalog()
RETURNS TABLE (tbl regclass, item text, expected text, actual text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r tenant_guard.protected_tables;
    c record;
    col record;
    fn text;
    pred text;
    citus boolean := tenant_guard._citus_present();
    writable text := CASE WHEN citus THEN 'tenant_guard._tenant_writable()'
                          ELSE '( SELECT tenant_guard._tenant_writable() AS _tenant_writable)' END;
    g record;
    stale name;
BEGIN
    FOR r IN SELECT * FROM tenant_guard.protected_tables ORDER BY protected_tables.tbl::text LOOP
        SELECT cl.relrowsecurity, cl.relforcerowsecurity INTO c FROM pg_class cl WHERE cl.oid = r.tbl;
        tbl := r.tbl;
        IF NOT c.relrowsecurity THEN
            item := 'row level security'; expected := 'enabled'; actual := 'disabled'; RETURN NEXT;
        END IF;
        IF NOT c.relforcerowsecurity THEN
            item := 'force row level security'; expected := 'on'; actual := 'off'; RETURN NEXT;
        END IF;
        SELECT a.atttypid::regtype::text AS typ, a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS dflt INTO col
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = r.tbl AND a.attname = r.tenant_column AND a.attnum > 0 AND NOT a.attisdropped;
        fn := tenant_guard._context_expr(r.tenant_type);
        IF NOT FOUND THEN
            item := format('tenant column %I', r.tenant_column); expected := r.tenant_type; actual := 'missing';
            RETURN NEXT;
        ELSE
            IF col.typ <> r.tenant_type THEN
                item := format('type of tenant column %I', r.tenant_column); expected := r.tenant_type;
                actual := col.typ; RETURN NEXT;
            END IF;
            IF NOT col.attnotnull THEN
                item := format('tenant column %I', r.tenant_column); expected := 'NOT NULL'; actual := 'nullable';
                RETURN NEXT;
            END IF;
            -- partitions and children are written through their parent's default
            -- (Citus refuses a default on a distribution column: none there)
            IF r.parent IS NULL AND col.dflt IS DISTINCT FROM fn
               AND tenant_guard._citus_distribution_column(r.tbl) IS DISTINCT FROM r.tenant_column THEN
                item := format('default of tenant column %I', r.tenant_column); expected := fn;
                actual := coalesce(col.dflt, 'none'); RETURN NEXT;
            END IF;
        END IF;
        -- the wall and base predicate exactly as PostgreSQL deparses the generated one
        pred := CASE WHEN citus THEN format('(%s = %s)', quote_ident(r.tenant_column), fn)
                     ELSE format('(%s = ( SELECT %s AS %s))', quote_ident(r.tenant_column), fn,
                                 split_part(split_part(fn, '.', 2), '(', 1)) END;
        FOR g IN SELECT * FROM tenant_guard._generated_policies(r.tbl, r.tenant_column, r.tenant_type,
                                                               coalesce(r.parent, r.tbl)) LOOP
            item := format('policy %I', g.name);
            SELECT format('%s FOR %s TO %s USING %s WITH CHECK %s',
                          CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                          CASE p.polcmd WHEN '*' THEN 'ALL' WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                                        WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' END,
                          CASE WHEN p.polroles = '{0}' THEN 'PUBLIC'
                               ELSE array_to_string(ARRAY(SELECT quote_ident(rolname) FROM pg_roles
                                                          WHERE oid = ANY (p.polroles) ORDER BY 1), ', ') END,
                          coalesce(pg_get_expr(p.polqual, p.polrelid), 'none'),
                          coalesce(pg_get_expr(p.polwithcheck, p.polrelid), 'none'))
            INTO actual FROM pg_policy p WHERE p.polrelid = r.tbl AND p.polname = g.name;
            IF NOT FOUND THEN
                actual := 'missing';
            END IF;
            IF g.name IN ('tg_wall', 'tg_base') THEN
                expected := format('%s FOR ALL TO PUBLIC USING %s WITH CHECK %s',
                                   CASE WHEN g.permissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, pred, pred);
                IF actual IS DISTINCT FROM expected THEN
                    RETURN NEXT;
                END IF;
            ELSIF g.name LIKE 'tg\_lifecycle\_%' THEN
                expected := format('RESTRICTIVE FOR %s TO PUBLIC USING %s WITH CHECK %s', g.command,
                                   CASE WHEN g.using_expr IS NULL THEN 'none' ELSE writable END,
                                   CASE WHEN g.check_expr IS NULL THEN 'none' ELSE writable END);
                IF actual IS DISTINCT FROM expected THEN
                    RETURN NEXT;
                END IF;
            ELSE
                -- role policies: kind, command, roles, and both predicates present
                expected := format('PERMISSIVE FOR %s TO PUBLIC, with the tenant predicate and has_role(%L)',
                                   g.command, split_part(split_part(g.name, 'tg_allow_', 2), '_' || lower(g.command), 1));
                IF actual = 'missing' OR actual NOT LIKE format('PERMISSIVE FOR %s TO PUBLIC %%', g.command)
                   OR position(pred IN actual) = 0
                   OR position('tenant_guard.has_role(' IN actual) = 0
                   OR position(format('%L::text', split_part(split_part(g.name, 'tg_allow_', 2),
                                                            '_' || lower(g.command), 1)) IN actual) = 0 THEN
                    RETURN NEXT;
                END IF;
            END IF;
        END LOOP;
        -- generated-looking policies that should not be there
        FOR stale IN SELECT p.polname FROM pg_policy p WHERE p.polrelid = r.tbl
                       AND (p.polname = 'tg_base' OR p.polname LIKE 'tg\_allow\_%')
                       AND p.polname NOT IN (SELECT x.name FROM tenant_guard._generated_policies(
                                                 r.tbl, r.tenant_column, r.tenant_type, coalesce(r.parent, r.tbl)) x)
        LOOP
            item := format('policy %I', stale); expected := 'absent'; actual := 'present'; RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_guard._verify_catalog() IS
    'Internal: verify() on this node''s catalog (verify() adds the shards of protected Citus tables).';

-- unprotect() removes the lifecycle write walls too (0.1.0 knew only the
-- tenant wall, the base and the role policies).
CREATE OR REPLACE FUNCTION tenant_guard.unprotect(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg tenant_guard.protected_tables;
    family tenant_guard.protected_tables[];
    r tenant_guard.protected_tables;
    pol name;
    idx regclass;
BEGIN
    SELECT * INTO reg FROM tenant_guard.protected_tables p WHERE p.tbl = unprotect.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not protected by tenant_guard', tbl USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF reg.parent IS NOT NULL THEN
        RAISE EXCEPTION 'table % is protected through %', tbl, reg.parent USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Call tenant_guard.unprotect() on ' || reg.parent::text || '.';
    END IF;
    PERFORM tenant_guard._check_protectable(tbl, reg.tenant_column);
    -- In a guarded schema an unprotected tenant table could not be committed
    -- (the COMMIT check would name it): say so now, and what to do.
    IF EXISTS (SELECT 1 FROM tenant_guard.guarded_schemas g JOIN pg_namespace n ON n.nspname = g.schema_name
               JOIN pg_class c ON c.relnamespace = n.oid WHERE c.oid = unprotect.tbl)
       AND NOT EXISTS (SELECT 1 FROM tenant_guard.exemptions e WHERE e.tbl = unprotect.tbl) THEN
        RAISE EXCEPTION 'table % is in a guarded schema', tbl USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'A guarded schema commits no unprotected tenant table; nothing was changed.',
            HINT = 'Call tenant_guard.unguard_schema() on its schema first (and guard_schema() again after, with '
                   'tenant_guard.exempt() for the table if it stays); tenant_guard.uninstall() undoes everything.';
    END IF;
    -- Unregister the whole family first, so the event trigger does not
    -- re-protect a child while its parent is being unprotected. Then remove,
    -- children first, only what protect() added.
    family := ARRAY(SELECT p FROM tenant_guard.protected_tables p
                    WHERE p.tbl = unprotect.tbl OR p.parent = unprotect.tbl ORDER BY p.parent NULLS LAST, p.tbl);
    DELETE FROM tenant_guard.protected_tables p WHERE p.tbl = unprotect.tbl OR p.parent = unprotect.tbl;
    FOREACH r IN ARRAY family LOOP
        FOR pol IN SELECT polname FROM pg_policy WHERE polrelid = r.tbl
                   AND (polname IN ('tg_wall', 'tg_base') OR polname LIKE 'tg\_allow\_%'
                        OR polname IN ('tg_lifecycle_insert', 'tg_lifecycle_update', 'tg_lifecycle_delete')) LOOP
            EXECUTE format('DROP POLICY %I ON %s', pol, r.tbl);
        END LOOP;
        IF NOT r.prior_force THEN
            EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', r.tbl);
        END IF;
        IF NOT r.prior_rls THEN
            EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', r.tbl);
        END IF;
    END LOOP;
    -- (protect() set no default on a Citus distribution column)
    IF tenant_guard._citus_distribution_column(tbl) IS NOT DISTINCT FROM reg.tenant_column THEN
        NULL;
    ELSIF reg.prior_default IS NULL THEN
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', tbl, reg.tenant_column);
    ELSE
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, reg.tenant_column, reg.prior_default);
    END IF;
    IF reg.added_not_null THEN
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP NOT NULL', tbl, reg.tenant_column);
    END IF;
    IF reg.created_index IS NOT NULL THEN
        SELECT i.indexrelid::regclass INTO idx FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = tbl AND ic.relname = reg.created_index;
        IF FOUND THEN
            EXECUTE format('DROP INDEX %s', idx);
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard.unprotect(regclass) IS
    'Removes exactly what tenant_guard.protect() added to a table and its partitions and children.';

-- describe_access() names, per command, the restrictive policies that apply
-- to that command (0.1.0 listed every restrictive policy of the table, which
-- with the write walls would say that SELECT is restricted by
-- tg_lifecycle_insert).
CREATE OR REPLACE FUNCTION tenant_guard.describe_access(tbl regclass)
RETURNS TABLE (role text, command text, policy name, condition text, restricted_by text)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH rel AS (
        SELECT c.oid, c.relrowsecurity FROM pg_class c WHERE c.oid = tbl),
    pol AS (
        SELECT p.polname, p.polpermissive, p.polcmd,
               pg_get_expr(p.polqual, p.polrelid) AS using_expr,
               pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
        FROM pg_policy p JOIN rel ON p.polrelid = rel.oid),
    cmds(command, code) AS (VALUES ('SELECT', 'r'), ('INSERT', 'a'), ('UPDATE', 'w'), ('DELETE', 'd')),
    restrictive AS (
        SELECT cmds.command, string_agg(pol.polname, ', ' ORDER BY pol.polname) AS names
        FROM pol JOIN cmds ON pol.polcmd = '*' OR pol.polcmd = cmds.code
        WHERE NOT pol.polpermissive GROUP BY cmds.command),
    perm AS (
        SELECT pol.*, cmds.command,
               ARRAY(SELECT DISTINCT m[1]
                     FROM regexp_matches(coalesce(pol.using_expr, '') || ' ' || coalesce(pol.check_expr, ''),
                                         'has_role\(([^)]*)\)', 'g') h,
                          regexp_matches(h[1], '''([^'']*)''', 'g') m) AS roles
        FROM pol JOIN cmds ON pol.polcmd = '*' OR pol.polcmd = cmds.code
        WHERE pol.polpermissive)
    SELECT '*'::text, 'ALL'::text, NULL::name, 'row level security is off: every row, every command'::text, NULL::text
    FROM rel WHERE NOT rel.relrowsecurity
    UNION ALL
    SELECT r, perm.command, perm.polname,
           concat_ws(' / ', 'USING ' || perm.using_expr, 'WITH CHECK ' || perm.check_expr),
           (SELECT x.names FROM restrictive x WHERE x.command = perm.command)
    FROM rel, perm, LATERAL unnest(CASE WHEN cardinality(perm.roles) = 0 THEN ARRAY['*'] ELSE perm.roles END) r
    WHERE rel.relrowsecurity
    ORDER BY 1, 2, 3
$$;
COMMENT ON FUNCTION tenant_guard.describe_access(regclass) IS
    'One row per in-tenant role and command: what the policies on the table allow, and under which condition.';

-- Tables protected before the update get the write walls now (as the
-- extension's owner, a superuser). pg_dump dumps the policies with their
-- tables, so a restored database has them without this.
SELECT tenant_guard._put_policy(p.tbl, g.name, g.permissive, g.command, g.using_expr, g.check_expr)
FROM tenant_guard.protected_tables p
CROSS JOIN LATERAL tenant_guard._generated_policies(p.tbl, p.tenant_column, p.tenant_type, coalesce(p.parent, p.tbl)) g
WHERE g.name LIKE 'tg\_lifecycle\_%' AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = p.tbl);

CREATE FUNCTION tenant_guard.archive_tenant(org text, purge_after interval DEFAULT '90 days')
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    due timestamptz;
BEGIN
    IF org IS NULL OR purge_after IS NULL THEN
        RAISE EXCEPTION 'org and purge_after must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF purge_after < interval '0' THEN
        RAISE EXCEPTION 'purge_after must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM tenant_guard._citus_refuse_worker('archive_tenant()');
    org := tenant_guard._tenant_key(org, false);
    SELECT t.status INTO st FROM tenant_guard.tenants t WHERE t.org_id = org FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant % is not registered', org USING ERRCODE = 'undefined_object',
            HINT = 'Register it first with tenant_guard.register_tenant().';
    ELSIF st <> 'active' THEN
        RAISE EXCEPTION 'tenant % is already %', org, st USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    due := pg_catalog.now() + archive_tenant.purge_after;
    UPDATE tenant_guard.tenants t SET status = 'archived', archived_at = pg_catalog.now(), purge_after = due
    WHERE t.org_id = org;
    PERFORM tenant_guard._audit_write_event(org, 'platform.tenant_archived',
        pg_catalog.jsonb_build_object('purge_after', due));
    RETURN due;
END
$$;
COMMENT ON FUNCTION tenant_guard.archive_tenant(text, interval) IS
    'Makes an active tenant read-only and schedules its purge; returns the purge date. Platform function.';
REVOKE ALL ON FUNCTION tenant_guard.archive_tenant(text, interval) FROM PUBLIC;
CREATE FUNCTION tenant_guard.archive_tenant(org uuid, purge_after interval DEFAULT '90 days')
RETURNS timestamptz
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT tenant_guard.archive_tenant(org::text, purge_after) $$;
COMMENT ON FUNCTION tenant_guard.archive_tenant(uuid, interval) IS
    'archive_tenant() of a uuid tenant (its canonical text form); needs EXECUTE on archive_tenant(text, interval) too.';
REVOKE ALL ON FUNCTION tenant_guard.archive_tenant(uuid, interval) FROM PUBLIC;

CREATE FUNCTION tenant_guard.reactivate_tenant(org text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'org must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM tenant_guard._citus_refuse_worker('reactivate_tenant()');
    org := tenant_guard._tenant_key(org, false);
    SELECT t.status INTO st FROM tenant_guard.tenants t WHERE t.org_id = org FOR UPDATE;
    IF NOT FOUND OR st <> 'archived' THEN
        RAISE EXCEPTION 'tenant % is not archived', org USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = pg_catalog.format('Its status is %s.', coalesce(st, 'unregistered'));
    END IF;
    UPDATE tenant_guard.tenants t SET status = 'active', archived_at = NULL, purge_after = NULL WHERE t.org_id = org;
    PERFORM tenant_guard._audit_write_event(org, 'platform.tenant_reactivated', '{}');
END
$$;
COMMENT ON FUNCTION tenant_guard.reactivate_tenant(text) IS
    'Makes an archived tenant active (writable) again and cancels its scheduled purge. Platform function.';
REVOKE ALL ON FUNCTION tenant_guard.reactivate_tenant(text) FROM PUBLIC;
CREATE FUNCTION tenant_guard.reactivate_tenant(org uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$ BEGIN PERFORM tenant_guard.reactivate_tenant(org::text); END $$;
COMMENT ON FUNCTION tenant_guard.reactivate_tenant(uuid) IS
    'reactivate_tenant() of a uuid tenant (its canonical text form); needs EXECUTE on reactivate_tenant(text) too.';
REVOKE ALL ON FUNCTION tenant_guard.reactivate_tenant(uuid) FROM PUBLIC;

-----------------------------------------------------------------------------
-- Purge
-----------------------------------------------------------------------------

-- Protected root tables in foreign-key-safe delete order: a table comes
-- after every table whose foreign keys reference it. A cycle is an error.
CREATE FUNCTION tenant_guard._lifecycle_delete_order()
RETURNS TABLE (tbl regclass, tenant_column name, tenant_type text)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    remaining regclass[];
    ready regclass[];
    refg regclass[];   -- referencing root table of each foreign key ...
    refd regclass[];   -- ... and the root table it references
BEGIN
    -- foreign keys between tables of the registry, each end mapped to its root
    WITH RECURSIVE usable AS (
        SELECT p.* FROM tenant_guard.protected_tables p
        JOIN pg_catalog.pg_class c ON c.oid = p.tbl AND c.relpersistence <> 't' AND c.relkind IN ('r', 'p')),
    root(rel, top) AS (
        SELECT p.tbl, p.tbl FROM usable p WHERE p.parent IS NULL
        UNION
        SELECT p.tbl, root.top FROM usable p JOIN root ON p.parent = root.rel),
    e AS (SELECT DISTINCT a.top AS g, b.top AS d FROM pg_catalog.pg_constraint c
          JOIN root a ON a.rel = c.conrelid JOIN root b ON b.rel = c.confrelid
          WHERE c.contype = 'f' AND a.top <> b.top)
    SELECT array_agg(e.g), array_agg(e.d) INTO refg, refd FROM e;
    SELECT array_agg(p.tbl ORDER BY p.tbl::text) INTO remaining FROM tenant_guard._lifecycle_roots() p;
    remaining := coalesce(remaining, '{}');
    WHILE cardinality(remaining) > 0 LOOP
        -- the tables that no remaining table references
        SELECT array_agg(x ORDER BY x::text) INTO ready FROM unnest(remaining) x
        WHERE NOT EXISTS (SELECT 1 FROM unnest(refg, refd) f(g, d) WHERE f.d = x AND f.g = ANY (remaining));
        IF ready IS NULL THEN
            RAISE EXCEPTION 'foreign keys among protected tables form a cycle: %',
                (SELECT string_agg(x::text, ', ' ORDER BY x::text) FROM unnest(remaining) x)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'purge_tenant() deletes referencing tables before the tables they reference; these tables (or some of them) reference each other.',
                      HINT = 'Break the cycle (e.g. drop or move one foreign key), or delete the tenant''s rows of these tables by hand first.';
        END IF;
        RETURN QUERY SELECT p.tbl, p.tenant_column, p.tenant_type FROM unnest(ready) WITH ORDINALITY u(x, i)
                     JOIN tenant_guard.protected_tables p ON p.tbl = u.x ORDER BY u.i;
        remaining := ARRAY(SELECT x FROM unnest(remaining) x WHERE x <> ALL (ready));
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_guard._lifecycle_delete_order() IS
    'Internal: protected root tables, referencing tables before referenced ones; raises on a foreign-key cycle. Unusable registry rows are left out.';
REVOKE ALL ON FUNCTION tenant_guard._lifecycle_delete_order() FROM PUBLIC;

CREATE FUNCTION tenant_guard.purge_tenant(org text, confirm text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    at timestamptz;
    r record;
    pred text;
    before bigint;
    deleted bigint;
    after bigint;
    tables jsonb := '[]';
    skipped jsonb := '[]';
    versions integer[];
    body jsonb;
    digest text;
    locks text;
    unusable text;
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'org must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF confirm IS DISTINCT FROM org AND confirm IS DISTINCT FROM tenant_guard._tenant_key(org, false) THEN
        RAISE EXCEPTION 'purge of tenant % not confirmed', org USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'confirm must be the tenant''s org id as text; nothing was changed.';
    END IF;
    PERFORM tenant_guard._citus_refuse_worker('purge_tenant()');
    org := tenant_guard._tenant_key(org, false);
    SELECT t.status, t.purged_at INTO st, at FROM tenant_guard.tenants t WHERE t.org_id = org FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant % is not registered', org USING ERRCODE = 'undefined_object',
            HINT = 'Register it first with tenant_guard.register_tenant(); purge works on registered tenants.';
    ELSIF st = 'purged' THEN
        RAISE EXCEPTION 'tenant % is already purged', org USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Its certificate is in tenant_guard.purge_certificates.';
    END IF;
    -- Lock every protected root table (partitions and children with it)
    -- against writes until commit: in-flight writers finish first and are
    -- seen by the counts and deletes below; later writers wait, then see the
    -- tenant purged (their statement snapshot is taken after the lock) and
    -- are refused by the tg_lifecycle_* policies. Self-conflicting mode, so
    -- two purges run one after the other.
    SELECT pg_catalog.string_agg(o.tbl::text, ', ' ORDER BY o.tbl::text) INTO locks
    FROM tenant_guard._lifecycle_delete_order() o;
    IF locks IS NOT NULL THEN
        EXECUTE 'LOCK TABLE ' || locks || ' IN SHARE ROW EXCLUSIVE MODE';
    END IF;
    at := pg_catalog.clock_timestamp();
    -- registry rows naming no usable table: reported, not a reason to fail
    -- the purge of every tenant
    FOR r IN SELECT * FROM tenant_guard._lifecycle_unusable() LOOP
        skipped := skipped || pg_catalog.jsonb_build_object('table', r.tbl::text, 'reason',
            'registry row skipped: ' || r.reason);
        unusable := pg_catalog.concat_ws('; ', unusable, r.tbl::text || ': ' || r.reason);
    END LOOP;
    IF unusable IS NOT NULL THEN
        RAISE WARNING 'purge of tenant % skipped registry rows of tenant_guard.protected_tables that name no usable table', org
            USING DETAIL = unusable || '.',
                  HINT = 'The certificate lists them in not_covered; lint() reports them (TG062). A superuser can delete '
                         'those rows from tenant_guard.protected_tables.';
    END IF;
    FOR r IN SELECT * FROM tenant_guard._lifecycle_delete_order() LOOP
        -- a tenant column that cannot hold this id holds no row of the tenant
        pred := tenant_guard._lifecycle_pred(r.tenant_column, r.tenant_type, org);
        IF pred IS NULL THEN
            CONTINUE;
        END IF;
        EXECUTE pg_catalog.format('SELECT count(*) FROM %s t WHERE %s', r.tbl, pred) INTO before USING org;
        EXECUTE pg_catalog.format('DELETE FROM %s t WHERE %s', r.tbl, pred) USING org;
        GET DIAGNOSTICS deleted = ROW_COUNT;
        EXECUTE pg_catalog.format('SELECT count(*) FROM %s t WHERE %s', r.tbl, pred) INTO after USING org;
        tables := tables || pg_catalog.jsonb_build_object('table', r.tbl::text, 'rows_before', before,
                                                          'rows_deleted', deleted, 'rows_after', after);
    END LOOP;
    FOR r IN SELECT * FROM tenant_guard._lifecycle_uncovered() LOOP
        skipped := skipped || pg_catalog.jsonb_build_object('table', r.tbl::text, 'reason', r.reason);
    END LOOP;
    -- column encryption keys exist for uuid tenants only (docs/encryption.md)
    IF org ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        SELECT array_agg(k.version ORDER BY k.version) INTO versions FROM tenant_guard.tenant_keys k
        WHERE k.org_id = org::uuid AND k.state <> 'shredded';
        PERFORM tenant_guard.shred_keys(org::uuid);
    END IF;
    UPDATE tenant_guard.tenants t SET status = 'purged', purged_at = at, display_name = NULL WHERE t.org_id = org;
    body := pg_catalog.jsonb_build_object(
        'format', 'tenant_guard.purge_certificate/1',
        'org_id', org,
        'purged_at', at,
        'actor', pg_catalog.jsonb_build_object('session_user', session_user,
                                               'role', pg_catalog.current_setting('role')),
        'database', pg_catalog.current_database(),
        'previous_status', st,
        'tables', tables,
        'not_covered', skipped,
        'key_versions_shredded', pg_catalog.to_jsonb(coalesce(versions, '{}')),
        'audit_records', 'retained until tenant_guard.purge_audit() removes them by retention');
    digest := pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(body::text, 'UTF8')), 'hex');
    body := body || pg_catalog.jsonb_build_object('sha256', digest);
    INSERT INTO tenant_guard.purge_certificates (org_id, purged_at, certificate, sha256) VALUES (org, at, body, digest);
    PERFORM tenant_guard._audit_write_event(org, 'platform.tenant_purged',
        pg_catalog.jsonb_build_object('certificate_sha256', digest, 'tables', pg_catalog.jsonb_array_length(tables),
                                      'key_versions_shredded', pg_catalog.to_jsonb(coalesce(versions, '{}'))));
    RETURN body;
END
$$;
COMMENT ON FUNCTION tenant_guard.purge_tenant(text, text) IS
    'Deletes every row of the tenant (foreign-key-safe order), shreds its keys, returns and keeps a purge certificate. Platform function.';
REVOKE ALL ON FUNCTION tenant_guard.purge_tenant(text, text) FROM PUBLIC;
CREATE FUNCTION tenant_guard.purge_tenant(org uuid, confirm text)
RETURNS jsonb
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT tenant_guard.purge_tenant(org::text, confirm) $$;
COMMENT ON FUNCTION tenant_guard.purge_tenant(uuid, text) IS
    'purge_tenant() of a uuid tenant (its canonical text form); needs EXECUTE on purge_tenant(text, text) too.';
REVOKE ALL ON FUNCTION tenant_guard.purge_tenant(uuid, text) FROM PUBLIC;

-- For a scheduler: purges archived tenants past purge_after, each in its own
-- subtransaction (a failure is reported and the others go on). A second
-- concurrent run returns at once (advisory lock); rows are taken with SKIP
-- LOCKED as well.
CREATE FUNCTION tenant_guard.purge_due_tenants()
RETURNS TABLE (org_id text, outcome text, certificate_sha256 text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    cert jsonb;
BEGIN
    IF NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('tenant_guard.purge_due_tenants')::bigint) THEN
        RAISE NOTICE 'another purge_due_tenants() is running; nothing done';
        RETURN;
    END IF;
    FOR t IN SELECT x.org_id FROM tenant_guard.tenants x
             WHERE x.status = 'archived' AND x.purge_after <= pg_catalog.now()
             ORDER BY x.purge_after, x.org_id FOR UPDATE SKIP LOCKED LOOP
        BEGIN
            cert := tenant_guard.purge_tenant(t.org_id, t.org_id);
            org_id := t.org_id; outcome := 'purged'; certificate_sha256 := cert ->> 'sha256';
        EXCEPTION WHEN OTHERS THEN
            org_id := t.org_id; outcome := 'failed: ' || SQLERRM; certificate_sha256 := NULL;
            RAISE WARNING 'purge of tenant % failed: %', t.org_id, SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_guard.purge_due_tenants() IS
    'Purges every archived tenant past its purge_after (for a scheduler such as pg_cron); one row per tenant.';
REVOKE ALL ON FUNCTION tenant_guard.purge_due_tenants() FROM PUBLIC;

-----------------------------------------------------------------------------
-- Citus: the tenant registry on every node (docs/citus.md, "Lifecycle")
--
-- On a Citus cluster a write reaches a shard on a worker, where the shard
-- wall (src/pg/citus.cpp) adds the lifecycle write wall, _tenant_writable(),
-- which reads that node's own tenant_guard.tenants; a distributed query can
-- also be planned on a worker. So the registry is copied to every worker
-- with metadata: each change of a row on the coordinator is sent to the
-- workers inside the changing transaction (Citus's own transactional send:
-- two-phase commit, rolled back with it), and citus_sync() makes each
-- worker's registry an exact copy. Only the coordinator's registry is
-- written by the lifecycle functions; the application role can write
-- neither (no privilege on any node).
-----------------------------------------------------------------------------

-- Sends one command to every Citus worker with metadata, in this transaction.
CREATE FUNCTION tenant_guard._citus_send_command(command text)
RETURNS void
AS 'MODULE_PATHNAME', 'tg__citus_send_command'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._citus_send_command(text) IS
    'Internal: sends a command to every Citus worker with metadata inside the current transaction (two-phase commit).';
REVOKE ALL ON FUNCTION tenant_guard._citus_send_command(text) FROM PUBLIC;

-- On this node: the rows of put (a json array of tenants rows) inserted or
-- replaced by org_id, the rows whose org_id is in drop deleted, and, with
-- exact, every other row deleted too (a full copy).
CREATE FUNCTION tenant_guard._citus_put_tenants(put jsonb, drop jsonb, exact boolean)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    IF put IS NULL OR drop IS NULL OR exact IS NULL THEN
        RAISE EXCEPTION 'arguments must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF exact THEN
        DELETE FROM tenant_guard.tenants t WHERE t.org_id NOT IN
            (SELECT x.org_id FROM pg_catalog.jsonb_populate_recordset(NULL::tenant_guard.tenants, put) x);
    END IF;
    DELETE FROM tenant_guard.tenants t WHERE t.org_id IN
        (SELECT x.org_id FROM pg_catalog.jsonb_populate_recordset(NULL::tenant_guard.tenants, drop) x);
    INSERT INTO tenant_guard.tenants AS t
    SELECT * FROM pg_catalog.jsonb_populate_recordset(NULL::tenant_guard.tenants, put)
    ON CONFLICT (org_id) DO UPDATE
    SET (display_name, status, created_at, archived_at, purge_after, purged_at)
      = (excluded.display_name, excluded.status, excluded.created_at, excluded.archived_at, excluded.purge_after,
         excluded.purged_at);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_put_tenants(jsonb, jsonb, boolean) IS
    'Internal: writes copies of tenant_guard.tenants rows on this node (sent to every Citus worker by the coordinator).';
REVOKE ALL ON FUNCTION tenant_guard._citus_put_tenants(jsonb, jsonb, boolean) FROM PUBLIC;

-- Each change of a registry row on a coordinator reaches the workers in the
-- same transaction: a registered, archived, reactivated or purged tenant.
CREATE FUNCTION tenant_guard._citus_tenant_copy()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tenant_guard._citus_coordinator() THEN
        PERFORM tenant_guard._citus_send_command(pg_catalog.format(
            'SELECT tenant_guard._citus_put_tenants(%L::jsonb, %L::jsonb, %L)',
            CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN pg_catalog.jsonb_build_array(pg_catalog.to_jsonb(NEW))
                 ELSE '[]'::jsonb END,
            CASE WHEN TG_OP = 'DELETE' THEN pg_catalog.jsonb_build_array(pg_catalog.to_jsonb(OLD)) ELSE '[]'::jsonb END,
            TG_OP = 'TRUNCATE'));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_tenant_copy() IS
    'Internal: copies a changed tenant_guard.tenants row to every Citus worker, in the same transaction.';
REVOKE ALL ON FUNCTION tenant_guard._citus_tenant_copy() FROM PUBLIC;
CREATE TRIGGER citus_tenant_copy AFTER INSERT OR UPDATE OR DELETE ON tenant_guard.tenants
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._citus_tenant_copy();
CREATE TRIGGER citus_tenant_copy_truncate AFTER TRUNCATE ON tenant_guard.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard._citus_tenant_copy();

-- For citus_sync(): every worker's registry an exact copy of this node's.
CREATE FUNCTION tenant_guard._citus_sync_tenants()
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tenant_guard._citus_coordinator() THEN
        PERFORM tenant_guard._citus_send_command(pg_catalog.format(
            'SELECT tenant_guard._citus_put_tenants(%L::jsonb, ''[]''::jsonb, true)',
            (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t)), '[]') FROM tenant_guard.tenants t)));
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_sync_tenants() IS
    'Internal: makes the tenant registry of every Citus worker an exact copy of the coordinator''s.';
REVOKE ALL ON FUNCTION tenant_guard._citus_sync_tenants() FROM PUBLIC;

-- The lifecycle functions run on the coordinator: a worker's registry is a
-- copy, which the next change on the coordinator or citus_sync() overwrites.
CREATE FUNCTION tenant_guard._citus_refuse_worker(what text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    worker boolean;
BEGIN
    IF NOT tenant_guard._citus_present() OR pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
        RETURN;
    END IF;
    EXECUTE 'SELECT groupid <> 0 FROM pg_catalog.pg_dist_local_group' INTO worker;
    IF worker THEN
        RAISE EXCEPTION '% runs on the Citus coordinator only', what USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'The tenant registry of a worker is a copy of the coordinator''s.',
            HINT = 'Connect to the coordinator.';
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_refuse_worker(text) IS
    'Internal: raises on a Citus worker (lifecycle functions run on the coordinator).';
REVOKE ALL ON FUNCTION tenant_guard._citus_refuse_worker(text) FROM PUBLIC;
