-----------------------------------------------------------------------------
-- Citus (docs/citus.md)
--
-- On a Citus cluster, protected distributed and reference tables keep their
-- tenant wall on every shard of every node: the wall is added by the
-- extension itself (src/pg/citus.cpp, row_security_policy_hook_restrictive)
-- to every shard of a table listed in tenant_guard.citus_walls, which
-- protect() keeps on every node. Policies are generated without sub-selects
-- on a Citus database (Citus refuses those on distributed tables).
-- Nothing here needs Citus: without it, the functions do nothing or say so.
-----------------------------------------------------------------------------

-- Is Citus installed in this database?
CREATE FUNCTION tenant_guard._citus_present()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') $$;
COMMENT ON FUNCTION tenant_guard._citus_present() IS
    'Internal: whether the citus extension is installed in this database.';

-- The distribution column of a Citus distributed table; NULL otherwise.
CREATE FUNCTION tenant_guard._citus_distribution_column(tbl regclass)
RETURNS name
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col name;
BEGIN
    IF tbl IS NULL OR pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) FROM pg_catalog.pg_dist_partition p '
            'WHERE p.logicalrelid = $1 AND p.partkey IS NOT NULL' INTO col USING tbl;
    RETURN col;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_distribution_column(regclass) IS
    'Internal: the distribution column of a Citus distributed table, NULL for any other table.';

-- Is tbl a Citus distributed or reference table?
CREATE FUNCTION tenant_guard._citus_table(tbl regclass)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found boolean;
BEGIN
    IF tbl IS NULL OR pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = $1)' INTO found USING tbl;
    RETURN found;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_table(regclass) IS
    'Internal: whether a table is a Citus distributed or reference table (false without Citus).';
REVOKE ALL ON FUNCTION tenant_guard._citus_table(regclass) FROM PUBLIC;

-- The tables whose shards get the wall on this node, by name (a shard is
-- found through its parent's name on every node: pg_dist_shard).
CREATE TABLE tenant_guard.citus_walls (
    schema_name   name NOT NULL,
    table_name    name NOT NULL,
    tenant_column name NOT NULL,
    tenant_type   text NOT NULL CHECK (tenant_type IN ('uuid', 'text', 'bigint')),
    PRIMARY KEY (schema_name, table_name)
);
COMMENT ON TABLE tenant_guard.citus_walls IS
    'Tables whose Citus shards carry the tenant wall on this node (kept by protect() and citus_sync()).';
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.citus_walls', '');
-- Readable by everyone (like pg_policies); a role writes only rows of tables
-- it owns or, for a table that does not exist on this node yet (protect()
-- before create_distributed_table()), of a schema where it may create one.
-- A wall only restricts: the worst such a row does is hide rows of a table
-- created later under that name.
SELECT tenant_guard._registry_acl('tenant_guard.citus_walls',
    'coalesce(pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c '
    'JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace '
    'WHERE n.nspname = schema_name AND c.relname = table_name), ''USAGE''), '
    'pg_catalog.has_schema_privilege((SELECT n.oid FROM pg_catalog.pg_namespace n '
    'WHERE n.nspname = schema_name), ''CREATE''), false)');
-- every backend drops its cached walls when the registry changes
CREATE FUNCTION tenant_guard._citus_walls_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'tg__relcache_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._citus_walls_changed() IS
    'Internal: every backend drops its cached shard walls.';
REVOKE ALL ON FUNCTION tenant_guard._citus_walls_changed() FROM PUBLIC;
CREATE TRIGGER citus_walls_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_guard.citus_walls
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard._citus_walls_changed();

-- Adds or updates one wall on this node, with the caller's rights (the
-- registry's row-level security decides).
CREATE FUNCTION tenant_guard._citus_put_wall(schema_name name, table_name name, tenant_column name,
                                             tenant_type text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF schema_name IS NULL OR table_name IS NULL OR tenant_column IS NULL OR tenant_type IS NULL THEN
        RAISE EXCEPTION 'arguments must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO tenant_guard.citus_walls AS w VALUES (schema_name, table_name, tenant_column, tenant_type)
    ON CONFLICT ON CONSTRAINT citus_walls_pkey
    DO UPDATE SET tenant_column = excluded.tenant_column, tenant_type = excluded.tenant_type
    WHERE (w.tenant_column, w.tenant_type) IS DISTINCT FROM (excluded.tenant_column, excluded.tenant_type);
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_put_wall(name, name, name, text) IS
    'Internal: registers the shard wall of one table on this node (called on every node by protect()).';
-- protect() runs with its caller's rights and calls it on every node
GRANT EXECUTE ON FUNCTION tenant_guard._citus_put_wall(name, name, name, text) TO PUBLIC;

-- Writes the walls of tbl and its protected partitions and children on this
-- node and on every worker (run_command_on_workers); any node that fails is an error.
CREATE FUNCTION tenant_guard._citus_sync_walls(tbl regclass)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    cmd text;
    bad text;
    n integer := 0;
BEGIN
    FOR r IN SELECT ns.nspname, c.relname, p.tenant_column, p.tenant_type
             FROM tenant_guard.protected_tables p JOIN pg_catalog.pg_class c ON c.oid = p.tbl
             JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
             WHERE _citus_sync_walls.tbl IS NULL OR p.tbl = _citus_sync_walls.tbl OR p.parent = _citus_sync_walls.tbl
             ORDER BY 1, 2 LOOP
        PERFORM tenant_guard._citus_put_wall(r.nspname, r.relname, r.tenant_column, r.tenant_type);
        cmd := format('SELECT tenant_guard._citus_put_wall(%L, %L, %L, %L)', r.nspname, r.relname,
                      r.tenant_column, r.tenant_type);
        EXECUTE 'SELECT string_agg(format(''%s:%s: %s'', nodename, nodeport, result), ''; '') '
                'FROM pg_catalog.run_command_on_workers($1) WHERE NOT success'
            INTO bad USING cmd;
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'could not register the shard wall of %.% on every Citus worker',
                quote_ident(r.nspname), quote_ident(r.relname)
                USING ERRCODE = 'connection_failure', DETAIL = bad,
                HINT = 'Make sure tenant_guard is installed on every node, then call tenant_guard.citus_sync().';
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_sync_walls(regclass) IS
    'Internal: writes the shard walls of a protected table (NULL: of every one) on this node and every Citus worker.';
-- protect() runs with its caller's rights; _citus_put_wall() checks ownership
GRANT EXECUTE ON FUNCTION tenant_guard._citus_sync_walls(regclass) TO PUBLIC;

-- For operators: the walls of every protected table onto every node (after
-- citus_add_node(), or when citus_shard_findings() reports a missing wall).
CREATE FUNCTION tenant_guard.citus_sync()
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT tenant_guard._citus_present() THEN
        RAISE EXCEPTION 'citus is not installed in this database' USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- every tenant key row, exactly as on the coordinator
    PERFORM tenant_guard._citus_send_keys(
        (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(k)), '[]') FROM tenant_guard.tenant_keys k), '[]', true);
    -- lifecycle: every worker's tenant registry, exactly as on the coordinator (60_lifecycle.sql)
    PERFORM tenant_guard._citus_sync_tenants();
    -- the audit registry rows of audited distributed tables (59_citus_audit.sql)
    PERFORM tenant_guard._citus_sync_audited();
    RETURN tenant_guard._citus_sync_walls(NULL);
END
$$;
COMMENT ON FUNCTION tenant_guard.citus_sync() IS
    'Writes the shard wall of every protected table, a copy of every tenant key, of the tenant registry and of the '
    'audit registry of audited distributed tables onto every Citus node; returns how many protected tables.';
REVOKE ALL ON FUNCTION tenant_guard.citus_sync() FROM PUBLIC;

-- Does this backend add the wall to rel (a shard of a walled table)? NULL
-- without the hooks (tenant_guard not in shared_preload_libraries).
CREATE FUNCTION tenant_guard._citus_wall_active(rel regclass)
RETURNS boolean
AS 'MODULE_PATHNAME', 'tg__citus_wall_active'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard._citus_wall_active(regclass) IS
    'Internal: whether this backend adds the tenant wall to a relation (a shard of a walled Citus table).';
REVOKE ALL ON FUNCTION tenant_guard._citus_wall_active(regclass) FROM PUBLIC;

CREATE OR REPLACE FUNCTION tenant_guard.protect(tbl regclass, tenant_column name DEFAULT 'org_id')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- On a Citus coordinator protect() changes the shards too, whatever the
-- session's citus.enable_ddl_propagation (a placeholder elsewhere)
SET citus.enable_ddl_propagation = on
AS $$
DECLARE
    ttype text := tenant_guard._check_protectable(tbl, tenant_column);
    reg tenant_guard.protected_tables;
    att record;
    nulls bigint;
    idx regclass;
    ctx text := tenant_guard._context_expr(ttype);
    registered boolean;
    family tenant_guard.protected_tables[];
    child tenant_guard.protected_tables;
BEGIN
    SELECT * INTO reg FROM tenant_guard.protected_tables p WHERE p.tbl = protect.tbl;
    registered := FOUND;
    IF registered AND reg.parent IS NOT NULL THEN
        RAISE EXCEPTION 'table % is protected through %', tbl, reg.parent USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Call tenant_guard.protect() on ' || reg.parent::text || '.';
    END IF;
    IF registered AND reg.tenant_column <> tenant_column THEN
        RAISE EXCEPTION 'table % is already protected on column "%"', tbl, reg.tenant_column
            USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Call tenant_guard.unprotect() first to change the tenant column.';
    END IF;
    SELECT a.attnum, a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS dflt INTO att
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = tbl AND a.attname = tenant_column;

    -- existing NULLs are an error that changes nothing
    IF NOT att.attnotnull THEN
        EXECUTE format('SELECT count(*) FROM %s WHERE %I IS NULL', tbl, tenant_column) INTO nulls;
        IF nulls > 0 THEN
            RAISE EXCEPTION 'table % has % rows with no tenant in column "%"', tbl, nulls, tenant_column
                USING ERRCODE = 'not_null_violation',
                DETAIL = 'protect() makes the tenant column NOT NULL; nothing was changed.',
                HINT = 'Assign those rows to a tenant or delete them, then call tenant_guard.protect() again.';
        END IF;
    END IF;

    -- While protect() works, the table and its children are unregistered, so
    -- the guards on protected tables do not stop it repairing them.
    IF registered THEN
        family := ARRAY(SELECT p FROM tenant_guard.protected_tables p WHERE p.parent = protect.tbl ORDER BY p.tbl);
        DELETE FROM tenant_guard.protected_tables p WHERE p.tbl = protect.tbl OR p.parent = protect.tbl;
    ELSE
        reg.tbl := tbl;
        reg.added_not_null := NOT att.attnotnull;
        reg.prior_default := att.dflt;
        SELECT c.relrowsecurity, c.relforcerowsecurity INTO reg.prior_rls, reg.prior_force FROM pg_class c WHERE c.oid = tbl;
    END IF;

    -- NOT NULL, and a default that puts new rows in the current tenant
    IF NOT att.attnotnull THEN
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', tbl, tenant_column);
    END IF;
    -- (Citus refuses a default on the distribution column: none there, and
    -- every insert names its tenant, which the wall checks)
    IF tenant_guard._citus_distribution_column(tbl) IS DISTINCT FROM tenant_column THEN
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, tenant_column, ctx);
    END IF;

    -- an index led by the tenant column
    IF NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = tbl AND i.indkey[0] = att.attnum
                   AND i.indexprs IS NULL AND i.indpred IS NULL) THEN
        EXECUTE format('CREATE INDEX ON %s (%I)', tbl, tenant_column);
        SELECT i.indexrelid::regclass INTO idx FROM pg_index i
        WHERE i.indrelid = tbl AND i.indkey[0] = att.attnum ORDER BY i.indexrelid DESC LIMIT 1;
        reg.created_index := coalesce(reg.created_index, (SELECT c.relname FROM pg_class c WHERE c.oid = idx));
        RAISE NOTICE 'created index % on %', idx, tbl;
    END IF;

    PERFORM tenant_guard._apply_policies(tbl, tenant_column, ttype);

    -- children protected earlier converge too
    FOREACH child IN ARRAY coalesce(family, '{}') LOOP
        PERFORM tenant_guard._apply_policies(child.tbl, child.tenant_column, child.tenant_type, tbl);
    END LOOP;

    INSERT INTO tenant_guard.protected_tables AS p
        (tbl, tenant_column, tenant_type, created_index, added_not_null, prior_default, prior_rls, prior_force,
         protected_by, protected_at)
    VALUES (tbl, tenant_column, ttype, reg.created_index, reg.added_not_null, reg.prior_default,
            reg.prior_rls, reg.prior_force, coalesce(reg.protected_by, current_user),
            coalesce(reg.protected_at, pg_catalog.now()));
    INSERT INTO tenant_guard.protected_tables SELECT (f).* FROM unnest(family) f
    ON CONFLICT ON CONSTRAINT protected_tables_pkey DO NOTHING;

    -- children that appeared since are protected now
    PERFORM tenant_guard._protect_descendants(tbl);

    -- on Citus, the shard wall of the table and its children on every node
    IF tenant_guard._citus_present() THEN
        PERFORM tenant_guard._citus_sync_walls(tbl);
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard.protect(regclass, name) IS
    'Isolates a table by tenant: RLS + FORCE, a restrictive tenant wall, a base policy, NOT NULL tenant column '
    'defaulting to the current tenant, an index, and the same for its partitions and children. Idempotent.';

-- What the coordinator's catalog does not show: every placement of every
-- shard of every protected Citus table, on every node
-- (run_command_on_placements); lint() (TG070-TG072) and verify() read it.
-- One row per finding:
--   row level security / force row level security off on a shard,
--   shard wall not active (the node has no registry row, or no preload),
--   a policy missing on a shard, or a shard policy the coordinator does not have,
--   a policy whose kind or expressions differ (restrictive turned permissive),
--   a placement that is not reachable.
CREATE FUNCTION tenant_guard.citus_shard_findings()
RETURNS TABLE (tbl regclass, node text, shardid bigint, item text, expected text, actual text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    pl record;
    want jsonb;
    got jsonb;
    k text;
    probe constant text :=
        'SELECT pg_catalog.jsonb_build_object(''rls'', c.relrowsecurity, ''force'', c.relforcerowsecurity, '
        '''wall'', tenant_guard._citus_wall_active(c.oid), ''policies'', coalesce((SELECT pg_catalog.jsonb_object_agg('
        'p.polname, pg_catalog.concat_ws('' '', CASE WHEN p.polpermissive THEN ''PERMISSIVE'' ELSE ''RESTRICTIVE'' END, '
        'p.polcmd, pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))) '
        'FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid), ''{}''))::text '
        'FROM pg_catalog.pg_class c WHERE c.oid = ''%s''::regclass';
BEGIN
    IF NOT tenant_guard._citus_present() THEN
        RETURN;
    END IF;
    FOR r IN EXECUTE 'SELECT p.tbl FROM tenant_guard.protected_tables p '
                     'JOIN pg_catalog.pg_dist_partition d ON d.logicalrelid = p.tbl ORDER BY p.tbl::text' LOOP
        tbl := r.tbl;
        SELECT coalesce(jsonb_object_agg(p.polname, concat_ws(' ', CASE WHEN p.polpermissive THEN 'PERMISSIVE'
                                                                          ELSE 'RESTRICTIVE' END,
                                                              p.polcmd, pg_get_expr(p.polqual, p.polrelid),
                                                              pg_get_expr(p.polwithcheck, p.polrelid))), '{}')
        INTO want FROM pg_policy p WHERE p.polrelid = r.tbl;
        FOR pl IN EXECUTE 'SELECT nodename, nodeport, shardid, success, result '
                          'FROM pg_catalog.run_command_on_placements($1, $2) ORDER BY shardid, nodename, nodeport'
                  USING r.tbl, probe LOOP
            node := pl.nodename || ':' || pl.nodeport;
            shardid := pl.shardid;
            IF NOT pl.success OR pl.result IS NULL OR pl.result = '' THEN
                item := 'placement'; expected := 'reachable'; actual := coalesce(pl.result, 'no answer'); RETURN NEXT;
                CONTINUE;
            END IF;
            got := pl.result::jsonb;
            IF NOT (got->>'rls')::boolean THEN
                item := 'row level security'; expected := 'enabled'; actual := 'disabled'; RETURN NEXT;
            END IF;
            IF NOT (got->>'force')::boolean THEN
                item := 'force row level security'; expected := 'on'; actual := 'off'; RETURN NEXT;
            END IF;
            IF (got->>'wall') IS DISTINCT FROM 'true' THEN
                item := 'shard wall'; expected := 'active';
                actual := CASE WHEN got->>'wall' IS NULL THEN 'tenant_guard not preloaded' ELSE 'not registered' END;
                RETURN NEXT;
            END IF;
            -- the shard's policies against the coordinator's, expressions with the shard's name as the table's
            FOR k IN SELECT jsonb_object_keys(want) UNION SELECT jsonb_object_keys(got->'policies') ORDER BY 1 LOOP
                item := format('policy %I', k);
                expected := coalesce(want->>k, 'absent');
                actual := coalesce(got->'policies'->>k, 'missing');
                -- Citus copies every policy as PERMISSIVE. The shard wall adds
                -- tg_wall and the tg_lifecycle_* write walls itself, so theirs
                -- do not count while it is active; any other restrictive
                -- policy turned permissive does.
                IF want->>k IS NULL OR got->'policies'->>k IS NULL
                   OR replace(got->'policies'->>k, 'PERMISSIVE', 'RESTRICTIVE')
                      IS DISTINCT FROM replace(want->>k, 'PERMISSIVE', 'RESTRICTIVE') THEN
                    RETURN NEXT;
                ELSIF want->>k LIKE 'RESTRICTIVE%' AND got->'policies'->>k LIKE 'PERMISSIVE%'
                      AND NOT ((got->>'wall') = 'true' AND (k = 'tg_wall' OR k LIKE 'tg\_lifecycle\_%')) THEN
                    item := item || ' (restrictive turned permissive)';
                    RETURN NEXT;
                END IF;
            END LOOP;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_guard.citus_shard_findings() IS
    'Checks every shard placement of every protected Citus table on every node: RLS, FORCE, the shard wall, '
    'and the policies against the coordinator''s.';
REVOKE ALL ON FUNCTION tenant_guard.citus_shard_findings() FROM PUBLIC;

-- Tenant keys on the workers. decrypt() runs where the rows are, on the
-- workers; there it unwraps the tenant's key with the node's own master key
-- file (docs/key-management.md: the same file on every node). The wrapped
-- keys (tenant_guard.tenant_keys, useless without the master key) are copied
-- to every worker: row by row by a trigger on the coordinator, in full by
-- citus_sync(). The master key is never in a table. Rows are copied by the
-- table's own columns and primary key, whatever they are.

-- Is this node a Citus coordinator with workers?
CREATE FUNCTION tenant_guard._citus_coordinator()
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    yes boolean;
BEGIN
    IF NOT tenant_guard._citus_present() OR pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT (SELECT groupid = 0 FROM pg_catalog.pg_dist_local_group) '
            'AND EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node WHERE groupid <> 0 AND isactive AND noderole = ''primary'')'
        INTO yes;
    RETURN coalesce(yes, false);
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_coordinator() IS
    'Internal: whether this node is a Citus coordinator with active workers.';
REVOKE ALL ON FUNCTION tenant_guard._citus_coordinator() FROM PUBLIC;

-- On this node: the rows of put (a json array of tenant_keys rows) inserted
-- or updated by primary key, the rows whose primary key is in drop deleted,
-- and, with exact, every other row deleted too (a full copy).
CREATE FUNCTION tenant_guard._citus_put_keys(put jsonb, drop jsonb, exact boolean)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text;
    keycols text;
    sets text;
    n integer;
BEGIN
    IF put IS NULL OR drop IS NULL OR exact IS NULL THEN
        RAISE EXCEPTION 'arguments must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
           string_agg(format('%1$I = EXCLUDED.%1$I', a.attname), ', ' ORDER BY a.attnum)
               FILTER (WHERE NOT a.attnum = ANY (i.indkey))
    INTO cols, sets
    FROM pg_attribute a, pg_index i
    WHERE a.attrelid = 'tenant_guard.tenant_keys'::regclass AND a.attnum > 0 AND NOT a.attisdropped
      AND i.indrelid = a.attrelid AND i.indisprimary;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) INTO keycols
    FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, ord), pg_attribute a
    WHERE i.indrelid = 'tenant_guard.tenant_keys'::regclass AND i.indisprimary
      AND a.attrelid = i.indrelid AND a.attnum = k.attnum;
    IF exact THEN
        EXECUTE format('DELETE FROM tenant_guard.tenant_keys WHERE (%1$s) NOT IN (SELECT %1$s FROM '
                       'pg_catalog.jsonb_populate_recordset(NULL::tenant_guard.tenant_keys, $1))', keycols)
            USING put;
    END IF;
    EXECUTE format('DELETE FROM tenant_guard.tenant_keys WHERE (%1$s) IN (SELECT %1$s FROM '
                   'pg_catalog.jsonb_populate_recordset(NULL::tenant_guard.tenant_keys, $1))', keycols)
        USING drop;
    EXECUTE format('INSERT INTO tenant_guard.tenant_keys AS k (%s) SELECT %s FROM '
                   'pg_catalog.jsonb_populate_recordset(NULL::tenant_guard.tenant_keys, $1) '
                   'ON CONFLICT (%s) DO UPDATE SET %s', cols, cols, keycols, sets)
        USING put;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_put_keys(jsonb, jsonb, boolean) IS
    'Internal: writes copies of tenant_guard.tenant_keys rows on this node (called on every Citus worker).';
REVOKE ALL ON FUNCTION tenant_guard._citus_put_keys(jsonb, jsonb, boolean) FROM PUBLIC;

-- Sends put/drop/exact to every worker with metadata inside this
-- transaction (_citus_send_command, 60_lifecycle.sql: Citus's two-phase
-- commit): the workers' copies commit and roll back with the change on the
-- coordinator, and any node that fails is an error (a key shredded on the
-- coordinator is shredded everywhere, or nowhere).
CREATE FUNCTION tenant_guard._citus_send_keys(put jsonb, drop jsonb, exact boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF put IS NULL OR drop IS NULL OR exact IS NULL THEN
        RAISE EXCEPTION 'arguments must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM tenant_guard._citus_send_command(
        format('SELECT tenant_guard._citus_put_keys(%L::jsonb, %L::jsonb, %L)', put, drop, exact));
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_send_keys(jsonb, jsonb, boolean) IS
    'Internal: copies tenant_guard.tenant_keys rows to every Citus worker, in the same transaction.';
REVOKE ALL ON FUNCTION tenant_guard._citus_send_keys(jsonb, jsonb, boolean) FROM PUBLIC;

-- Each change of a key row on a coordinator reaches the workers in the same
-- transaction: a new key, a retired one, a shredded one.
CREATE FUNCTION tenant_guard._citus_key_copy()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tenant_guard._citus_coordinator() THEN
        PERFORM tenant_guard._citus_send_keys(
            CASE WHEN TG_OP = 'DELETE' THEN '[]'::jsonb ELSE pg_catalog.jsonb_build_array(pg_catalog.to_jsonb(NEW)) END,
            CASE WHEN TG_OP = 'DELETE' THEN pg_catalog.jsonb_build_array(pg_catalog.to_jsonb(OLD)) ELSE '[]'::jsonb END,
            false);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_key_copy() IS
    'Internal: copies a changed tenant_guard.tenant_keys row to every Citus worker, in the same transaction.';
REVOKE ALL ON FUNCTION tenant_guard._citus_key_copy() FROM PUBLIC;
CREATE TRIGGER citus_key_copy AFTER INSERT OR UPDATE OR DELETE ON tenant_guard.tenant_keys
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._citus_key_copy();

-- Until that copy commits, the worker backends that run the transaction's
-- queries do not see it (they run in other worker transactions). So a key row
-- made in this transaction (a tenant's first key, rotate_key()) is also
-- forwarded to them, as SET LOCAL tenant_guard.forwarded_keys through Citus,
-- with a MAC bound to this distributed transaction and keyed from the master
-- key (src/pg/citus_keys.cpp); a worker uses it only when it has no row for
-- that tenant and version, and only in this transaction. A key shredded or
-- deleted later in the transaction leaves the forwarded keys at once. A C
-- trigger function: it cannot be called as a function.
CREATE FUNCTION tenant_guard._citus_key_forward()
RETURNS trigger
AS 'MODULE_PATHNAME', 'tg__citus_key_forward'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._citus_key_forward() IS
    'Internal: forwards a tenant key made in this transaction to the Citus worker backends of the transaction.';
REVOKE ALL ON FUNCTION tenant_guard._citus_key_forward() FROM PUBLIC;
CREATE TRIGGER citus_key_forward AFTER INSERT OR UPDATE OR DELETE ON tenant_guard.tenant_keys
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._citus_key_forward();

-----------------------------------------------------------------------------
-- Shard walls that follow DDL: a new partition (or inheritance child) of a
-- protected table, and a protected table renamed. The registry is by name,
-- so without this a new partition's shards, or a renamed table's shards,
-- would carry only the policies Citus copies (all permissive) until
-- citus_sync(). After tenant_guard_ddl_command_end has protected the new
-- children (event triggers run in name order), every protected table the
-- command created or altered whose wall is not registered under its current
-- name is registered on this node and every worker. A registry row under an
-- old name stays (a wall only restricts); citus_sync() leaves it too.
-----------------------------------------------------------------------------
CREATE FUNCTION tenant_guard._citus_walls_on_ddl()
RETURNS event_trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    coordinator boolean;
BEGIN
    -- (as the role running the DDL: only what every role may read)
    IF NOT tenant_guard._citus_present() OR pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
        RETURN;
    END IF;
    EXECUTE 'SELECT coalesce((SELECT groupid = 0 FROM pg_catalog.pg_dist_local_group), false)' INTO coordinator;
    IF NOT coordinator THEN
        RETURN;
    END IF;
    FOR r IN SELECT DISTINCT p.tbl FROM pg_catalog.pg_event_trigger_ddl_commands() d
             JOIN tenant_guard.protected_tables p ON p.tbl = d.objid
             JOIN pg_catalog.pg_class c ON c.oid = p.tbl
             JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
             WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
               AND d.command_tag IN ('CREATE TABLE', 'ALTER TABLE')
               AND NOT EXISTS (SELECT 1 FROM tenant_guard.citus_walls w
                               WHERE w.schema_name = ns.nspname AND w.table_name = c.relname
                                 AND w.tenant_column = p.tenant_column AND w.tenant_type = p.tenant_type)
             ORDER BY p.tbl LOOP
        PERFORM tenant_guard._citus_sync_walls(r.tbl);
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_walls_on_ddl() IS
    'Internal (event trigger): registers the shard walls of new partitions and renamed protected tables on every '
    'Citus node.';
REVOKE ALL ON FUNCTION tenant_guard._citus_walls_on_ddl() FROM PUBLIC;
CREATE EVENT TRIGGER tenant_guard_walls_sync ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION tenant_guard._citus_walls_on_ddl();
