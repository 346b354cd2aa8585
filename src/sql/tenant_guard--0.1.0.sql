/*
 * tenant_guard 0.1.0: the foundation and the tenant context.
 *
 * Adds the tenant_guard schema and the tenant context functions:
 * current_user_org_id, current_user_id, current_user_role, has_role,
 * current_scopes, set_context, clear_context. Later versions add their
 * capabilities through upgrade scripts (tenant_guard--0.1.0--0.2.0.sql, ...).
 *
 * Conventions (docs/development.md): everything schema-qualified, every
 * function declares volatility, strictness and parallel safety, internal
 * functions start with "_" and are revoked from PUBLIC.
 */

\echo Use "CREATE EXTENSION tenant_guard" to load this file. \quit

-- A plain CREATE SCHEMA (no IF NOT EXISTS): if someone pre-created the schema
-- the install fails, so the extension always owns it and nobody else can have
-- planted objects in it.
CREATE SCHEMA tenant_guard;
REVOKE ALL ON SCHEMA tenant_guard FROM PUBLIC;
GRANT USAGE ON SCHEMA tenant_guard TO PUBLIC;

-----------------------------------------------------------------------------
-- Server version check
-----------------------------------------------------------------------------

-- NULL when the server is recent enough, else the warning text. Separate from
-- the DO block below so the regression tests can exercise every branch.
CREATE FUNCTION tenant_guard._server_version_warning(version_num integer)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN version_num / 10000 = 15 AND version_num < 150019 THEN
            pg_catalog.format('PostgreSQL 15.%s is older than 15.19, the first 15.x minor release with the '
                              'row-level security fixes tenant_guard relies on; upgrade to 15.19 or later',
                              version_num % 100)
        WHEN version_num < 150000 THEN
            pg_catalog.format('PostgreSQL %s.%s is not supported by tenant_guard, which needs 15.19 or later',
                              version_num / 10000, version_num % 100)
    END
$$;
REVOKE ALL ON FUNCTION tenant_guard._server_version_warning(integer) FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard._server_version_warning(integer) IS
    'Internal: the warning CREATE EXTENSION raises on a server older than 15.19, or NULL.';

DO $$
DECLARE
    msg text := tenant_guard._server_version_warning(pg_catalog.current_setting('server_version_num')::integer);
BEGIN
    IF msg IS NOT NULL THEN
        RAISE WARNING '%', msg;
    END IF;
END
$$;

-----------------------------------------------------------------------------
-- Tenant context
--
-- The accessors are granted to PUBLIC on purpose: row-level security policies
-- call them with the privileges of whichever role runs the query, and they
-- reveal nothing but the caller's own context. set_context only accepts a
-- token signed with the configured key, and clear_context can only remove a
-- context, so both are safe for every role as well.
-----------------------------------------------------------------------------

-- STABLE, not IMMUTABLE: the answer changes between statements. PARALLEL
-- SAFE: every context source reaches parallel workers through PostgreSQL's
-- setting machinery (sql/context_parallel.sql proves it).
CREATE FUNCTION tenant_guard.current_user_org_id()
RETURNS uuid
AS 'MODULE_PATHNAME', 'tg_current_user_org_id'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.current_user_org_id() IS
    'Organization (tenant) id of the current context, or NULL when there is no valid one.';

-- The same organization id for tenant columns of type text and bigint, so a
-- policy compares the column with a value of its own type and its index stays
-- usable. Same NULL-hardening; bigint only for canonical 64-bit integers.
CREATE FUNCTION tenant_guard.current_user_org_text()
RETURNS text
AS 'MODULE_PATHNAME', 'tg_current_user_org_text'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.current_user_org_text() IS
    'Organization id of the current context as text (for text tenant columns), or NULL.';

CREATE FUNCTION tenant_guard.current_user_org_bigint()
RETURNS bigint
AS 'MODULE_PATHNAME', 'tg_current_user_org_bigint'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.current_user_org_bigint() IS
    'Organization id of the current context as bigint (for bigint tenant columns), or NULL.';

CREATE FUNCTION tenant_guard.current_user_id()
RETURNS text
AS 'MODULE_PATHNAME', 'tg_current_user_id'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.current_user_id() IS
    'User id of the current context, or NULL.';

CREATE FUNCTION tenant_guard.current_user_role()
RETURNS text
AS 'MODULE_PATHNAME', 'tg_current_user_role'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.current_user_role() IS
    'In-tenant role of the current context, or NULL (always NULL without an organization).';

-- STRICT: a NULL array gives NULL, which a policy treats as false.
CREATE FUNCTION tenant_guard.has_role(VARIADIC roles text[])
RETURNS boolean
AS 'MODULE_PATHNAME', 'tg_has_role'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.has_role(text[]) IS
    'True when the in-tenant role of the current context is one of the arguments.';

-- Not STRICT: returns an empty array, never NULL, so "x = ANY(...)" is plainly false.
CREATE FUNCTION tenant_guard.current_scopes(kind text)
RETURNS text[]
AS 'MODULE_PATHNAME', 'tg_current_scopes'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.current_scopes(text) IS
    'Sub-tenant scopes of one kind (e.g. venue ids) carried in the context; empty when absent.';

-- VOLATILE and PARALLEL UNSAFE: it changes session state. Not STRICT: a NULL
-- token is an error, never a silent no-op that would leave an older context
-- in place.
CREATE FUNCTION tenant_guard.set_context(token text, session boolean DEFAULT false)
RETURNS uuid
AS 'MODULE_PATHNAME', 'tg_set_context'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard.set_context(text, boolean) IS
    'Verifies a signed JWT and makes its claims the tenant context for the transaction (or the session).';

CREATE FUNCTION tenant_guard.clear_context()
RETURNS void
AS 'MODULE_PATHNAME', 'tg_clear_context'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard.clear_context() IS
    'Removes the tenant context of every source for the rest of the session.';

-----------------------------------------------------------------------------
-- Internal self-tests of the C++/PostgreSQL error boundary
-----------------------------------------------------------------------------

CREATE FUNCTION tenant_guard._selftest_boundary(kind text)
RETURNS text
AS 'MODULE_PATHNAME', 'tg__selftest_boundary'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_guard._selftest_boundary(text) FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard._selftest_boundary(text) IS
    'Internal: raises C++ and PostgreSQL errors through the error boundary, for the test suite.';

CREATE FUNCTION tenant_guard._selftest_live_objects()
RETURNS integer
AS 'MODULE_PATHNAME', 'tg__selftest_live_objects'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_guard._selftest_live_objects() FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard._selftest_live_objects() IS
    'Internal: number of self-test C++ objects still alive (0 unless a destructor was skipped).';

-----------------------------------------------------------------------------
-- Policy generators: protect(), unprotect(), protect_schema()
--
-- protect() runs with the caller's rights (SECURITY INVOKER), so PostgreSQL's
-- own ownership checks apply to every ALTER it runs; it checks ownership
-- first anyway, to fail with one clear message before changing anything.
-- Everything it does happens in the caller's transaction: an error leaves
-- nothing behind.
-----------------------------------------------------------------------------

-- The registries below are readable by everyone (like pg_policies) and
-- written by tenant_guard's functions with the caller's rights; a row-level
-- security policy lets a role write only rows about objects it owns. This
-- helper sets that up for each registry.
CREATE FUNCTION tenant_guard._registry_acl(registry regclass, owns text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', registry);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO PUBLIC', registry);
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', registry);
    EXECUTE format('CREATE POLICY read_all ON %s FOR SELECT USING (true)', registry);
    EXECUTE format('CREATE POLICY owner_writes ON %s FOR ALL USING (%s) WITH CHECK (%s)', registry, owns, owns);
END
$$;
REVOKE ALL ON FUNCTION tenant_guard._registry_acl(regclass, text) FROM PUBLIC;

-- The registry of protected tables (pg_dump keeps it: extension configuration
-- table). One row per table, partitions and inheritance children included
-- (they name the table they were protected through in `parent`).
CREATE TABLE tenant_guard.protected_tables (
    tbl            regclass PRIMARY KEY,
    tenant_column  name NOT NULL,
    tenant_type    text NOT NULL CHECK (tenant_type IN ('uuid', 'text', 'bigint')),
    parent         regclass,
    created_index  name,           -- a name, not regclass: pg_dump restores this table before indexes
    added_not_null boolean NOT NULL DEFAULT false,
    prior_default  text,
    prior_rls      boolean NOT NULL DEFAULT false,
    prior_force    boolean NOT NULL DEFAULT false,
    protected_by   name NOT NULL DEFAULT current_user,
    protected_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant_guard.protected_tables IS
    'Tables protected by tenant_guard.protect(): tenant column, what protect() changed, who and when.';
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.protected_tables', '');
SELECT tenant_guard._registry_acl('tenant_guard.protected_tables',
    'pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = tbl), ''USAGE'')');

-- The context expression a policy compares a tenant column of this type with.
CREATE FUNCTION tenant_guard._context_expr(tenant_type text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE tenant_type
        WHEN 'uuid' THEN 'tenant_guard.current_user_org_id()'
        WHEN 'text' THEN 'tenant_guard.current_user_org_text()'
        WHEN 'bigint' THEN 'tenant_guard.current_user_org_bigint()'
    END
$$;

-- Checks that tbl can be protected by the caller; returns its tenant column type.
CREATE FUNCTION tenant_guard._check_protectable(tbl regclass, tenant_column name)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    col_type regtype;
BEGIN
    IF tbl IS NULL OR tenant_column IS NULL THEN
        RAISE EXCEPTION 'table and tenant column must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relkind, c.relpersistence, c.relowner, n.nspname INTO r
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    IF r.nspname IN ('pg_catalog', 'information_schema') OR r.nspname LIKE 'pg\_toast%' THEN
        RAISE EXCEPTION 'cannot protect system catalog %', tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF r.relkind = 'v' THEN
        RAISE EXCEPTION 'cannot protect view %', tbl USING ERRCODE = 'wrong_object_type',
            HINT = 'Protect the tables the view reads, and create the view WITH (security_invoker = true).';
    ELSIF r.relkind = 'm' THEN
        RAISE EXCEPTION 'cannot protect materialized view %', tbl USING ERRCODE = 'wrong_object_type',
            DETAIL = 'A materialized view stores rows of every tenant and has no row-level security.',
            HINT = 'Replace it with a view WITH (security_invoker = true), or a protected table kept up to date.';
    ELSIF r.relkind = 'f' THEN
        RAISE EXCEPTION 'cannot protect foreign table %', tbl USING ERRCODE = 'wrong_object_type',
            DETAIL = 'Row-level security is not supported on foreign tables.',
            HINT = 'Protect the table on the remote server.';
    ELSIF r.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = 'wrong_object_type';
    END IF;
    IF r.relpersistence = 't' THEN
        RAISE EXCEPTION 'cannot protect temporary table %', tbl USING ERRCODE = 'feature_not_supported',
            DETAIL = 'A temporary table is private to one session.';
    END IF;
    IF NOT pg_has_role(r.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT a.atttypid::regtype INTO col_type
    FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = tenant_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no column "%"', tbl, tenant_column USING ERRCODE = 'undefined_column',
            HINT = 'Pass the tenant column: tenant_guard.protect(''' || tbl::text || ''', tenant_column => ''...'').';
    END IF;
    IF col_type NOT IN ('uuid'::regtype, 'text'::regtype, 'bigint'::regtype) THEN
        RAISE EXCEPTION 'tenant column "%" of table % has unsupported type %', tenant_column, tbl, col_type
            USING ERRCODE = 'datatype_mismatch',
            HINT = 'Tenant columns must be uuid, text or bigint.';
    END IF;
    RETURN col_type::text;
END
$$;

-- In-tenant access rules of allow(): which in-tenant role may run which
-- command on a protected table (and its partitions and children), optionally
-- limited to rows whose scope column is in the context's scopes of a kind.
CREATE TABLE tenant_guard.access_rules (
    tbl          regclass NOT NULL,
    role         text NOT NULL CHECK (role ~ '^[a-z][a-z0-9_]{0,29}$'),
    command      text NOT NULL CHECK (command IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')),
    scope_column name,
    scope_kind   text,
    created_by   name NOT NULL DEFAULT current_user,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tbl, role, command),
    CHECK ((scope_column IS NULL) = (scope_kind IS NULL))
);
COMMENT ON TABLE tenant_guard.access_rules IS
    'In-tenant role rules of tenant_guard.allow(), from which the tg_allow_* policies are generated.';
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.access_rules', '');
SELECT tenant_guard._registry_acl('tenant_guard.access_rules',
    'pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = tbl), ''USAGE'')');

-- Creates or replaces one generated policy (ALTER when it exists in the
-- right kind, so a protected table is never without it).
CREATE FUNCTION tenant_guard._put_policy(rel regclass, name name, permissive boolean, command text,
                                         using_expr text, check_expr text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    code "char" := CASE command WHEN 'ALL' THEN '*' WHEN 'SELECT' THEN 'r' WHEN 'INSERT' THEN 'a'
                                WHEN 'UPDATE' THEN 'w' WHEN 'DELETE' THEN 'd' END;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = rel AND p.polname = name
               AND p.polpermissive = permissive AND p.polcmd = code) THEN
        EXECUTE format('ALTER POLICY %I ON %s TO PUBLIC', name, rel)
             || CASE WHEN using_expr IS NOT NULL THEN format(' USING (%s)', using_expr) ELSE '' END
             || CASE WHEN check_expr IS NOT NULL THEN format(' WITH CHECK (%s)', check_expr) ELSE '' END;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = rel AND p.polname = name) THEN
        EXECUTE format('DROP POLICY %I ON %s', name, rel);
    END IF;
    EXECUTE format('CREATE POLICY %I ON %s AS %s FOR %s TO PUBLIC', name, rel,
                   CASE WHEN permissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, command)
         || CASE WHEN using_expr IS NOT NULL THEN format(' USING (%s)', using_expr) ELSE '' END
         || CASE WHEN check_expr IS NOT NULL THEN format(' WITH CHECK (%s)', check_expr) ELSE '' END;
END
$$;

-- The generated policies of one relation: the wall, and either the base
-- policy or one tg_allow_<role>_<command> policy per access rule of root.
CREATE FUNCTION tenant_guard._generated_policies(rel regclass, tenant_column name, tenant_type text, root regclass)
RETURNS TABLE (name name, permissive boolean, command text, using_expr text, check_expr text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH pred AS (
        SELECT format('%I = (SELECT %s)', tenant_column, tenant_guard._context_expr(tenant_type)) AS p)
    SELECT 'tg_wall'::name, false, 'ALL', p, p FROM pred
    UNION ALL
    SELECT 'tg_base'::name, true, 'ALL', p, p FROM pred
    WHERE NOT EXISTS (SELECT 1 FROM tenant_guard.access_rules r WHERE r.tbl = root)
    UNION ALL
    SELECT format('tg_allow_%s_%s', r.role, lower(r.command))::name, true, r.command,
           CASE WHEN r.command <> 'INSERT' THEN x.cond END,
           CASE WHEN r.command IN ('INSERT', 'UPDATE') THEN x.cond END
    FROM pred, tenant_guard.access_rules r,
         LATERAL (SELECT pred.p || format(' AND (SELECT tenant_guard.has_role(%L))', r.role)
                  || CASE WHEN r.scope_column IS NULL THEN ''
                          ELSE format(' AND %s = ANY ((SELECT tenant_guard.current_scopes(%L))::text[])',
                                      CASE WHEN (SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = rel
                                                 AND a.attname = r.scope_column) = 'text'::regtype
                                           THEN quote_ident(r.scope_column)
                                           ELSE quote_ident(r.scope_column) || '::text' END,
                                      r.scope_kind) END AS cond) x
    WHERE r.tbl = root
$$;

-- Applies row-level security and the generated policies to one relation;
-- root is the table whose access rules apply (the relation itself, or the
-- table its partitions and children were protected through).
CREATE FUNCTION tenant_guard._apply_policies(rel regclass, tenant_column name, tenant_type text,
                                             root regclass DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
    stale name;
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', rel);
    -- The tenant wall is RESTRICTIVE, for every command and role. The base
    -- policy, or the role policies that replace it, are PERMISSIVE and carry
    -- the tenant predicate themselves, so isolation never rests on the
    -- RESTRICTIVE attribute alone.
    FOR g IN SELECT * FROM tenant_guard._generated_policies(rel, tenant_column, tenant_type, coalesce(root, rel)) LOOP
        PERFORM tenant_guard._put_policy(rel, g.name, g.permissive, g.command, g.using_expr, g.check_expr);
    END LOOP;
    FOR stale IN
        SELECT p.polname FROM pg_policy p WHERE p.polrelid = rel
          AND (p.polname = 'tg_base' OR p.polname LIKE 'tg\_allow\_%')
          AND p.polname NOT IN (SELECT name FROM tenant_guard._generated_policies(rel, tenant_column, tenant_type,
                                                                                  coalesce(root, rel)))
    LOOP
        EXECUTE format('DROP POLICY %I ON %s', stale, rel);
    END LOOP;
END
$$;

-- Protects every partition and inheritance child of tbl that is not yet
-- registered; called by protect() and by the event trigger below.
CREATE FUNCTION tenant_guard._protect_descendants(tbl regclass)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg tenant_guard.protected_tables;
    child regclass;
    n integer := 0;
    inserted bigint;
BEGIN
    SELECT * INTO reg FROM tenant_guard.protected_tables WHERE protected_tables.tbl = _protect_descendants.tbl;
    FOR child IN
        WITH RECURSIVE d(rel) AS (
            SELECT inhrelid FROM pg_inherits WHERE inhparent = reg.tbl
            UNION SELECT i.inhrelid FROM pg_inherits i JOIN d ON i.inhparent = d.rel)
        SELECT rel::regclass FROM d
        WHERE NOT EXISTS (SELECT 1 FROM tenant_guard.protected_tables p WHERE p.tbl = d.rel)
        ORDER BY rel
    LOOP
        PERFORM tenant_guard._check_protectable(child, reg.tenant_column);
        -- The ALTER TABLEs below fire the event trigger, which may protect
        -- other children first (nested); a child registered meanwhile is skipped.
        INSERT INTO tenant_guard.protected_tables (tbl, tenant_column, tenant_type, parent, prior_rls, prior_force)
        SELECT child, reg.tenant_column, reg.tenant_type, reg.tbl, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c WHERE c.oid = child
        ON CONFLICT ON CONSTRAINT protected_tables_pkey DO NOTHING;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        IF inserted > 0 THEN
            PERFORM tenant_guard._apply_policies(child, reg.tenant_column, reg.tenant_type, reg.tbl);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

CREATE FUNCTION tenant_guard.protect(tbl regclass, tenant_column name DEFAULT 'org_id')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, tenant_column, ctx);

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
END
$$;
COMMENT ON FUNCTION tenant_guard.protect(regclass, name) IS
    'Isolates a table by tenant: RLS + FORCE, a restrictive tenant wall, a base policy, NOT NULL tenant column '
    'defaulting to the current tenant, an index, and the same for its partitions and children. Idempotent.';

CREATE FUNCTION tenant_guard.unprotect(tbl regclass)
RETURNS void
LANGUAGE plpgsql
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
    -- Unregister the whole family first, so the event trigger does not
    -- re-protect a child while its parent is being unprotected. Then remove,
    -- children first, only what protect() added.
    family := ARRAY(SELECT p FROM tenant_guard.protected_tables p
                    WHERE p.tbl = unprotect.tbl OR p.parent = unprotect.tbl ORDER BY p.parent NULLS LAST, p.tbl);
    DELETE FROM tenant_guard.protected_tables p WHERE p.tbl = unprotect.tbl OR p.parent = unprotect.tbl;
    FOREACH r IN ARRAY family LOOP
        FOR pol IN SELECT polname FROM pg_policy WHERE polrelid = r.tbl
                   AND (polname IN ('tg_wall', 'tg_base') OR polname LIKE 'tg\_allow\_%') LOOP
            EXECUTE format('DROP POLICY %I ON %s', pol, r.tbl);
        END LOOP;
        IF NOT r.prior_force THEN
            EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', r.tbl);
        END IF;
        IF NOT r.prior_rls THEN
            EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', r.tbl);
        END IF;
    END LOOP;
    IF reg.prior_default IS NULL THEN
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

CREATE FUNCTION tenant_guard.protect_schema(schema name, tenant_column name DEFAULT 'org_id')
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
    n integer := 0;
    skipped text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = schema) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema USING ERRCODE = 'invalid_schema_name';
    END IF;
    -- top-level tables only: partitions and children are protected through their parent
    FOR t IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
             WHERE ns.nspname = schema AND c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
               AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = tenant_column
                           AND a.attnum > 0 AND NOT a.attisdropped)
             ORDER BY c.relname LOOP
        PERFORM tenant_guard.protect(t, tenant_column);
        n := n + 1;
    END LOOP;
    SELECT string_agg(c.oid::regclass::text, ', ' ORDER BY c.relname) INTO skipped
    FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
    WHERE ns.nspname = schema AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = tenant_column
                      AND a.attnum > 0 AND NOT a.attisdropped);
    IF skipped IS NOT NULL THEN
        RAISE NOTICE 'tables without column "%" were not protected: %', tenant_column, skipped;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION tenant_guard.protect_schema(name, name) IS
    'Protects every table of a schema that has the tenant column; returns how many.';

-----------------------------------------------------------------------------
-- Migration guardrail: guard_schema(), unguard_schema(), exempt()
--
-- In a guarded schema, a transaction that creates a table with the tenant
-- column, or adds the tenant column to a table, must leave it protected or
-- exempted by COMMIT; otherwise the COMMIT fails (a C++ pre-commit callback,
-- src/pg/guard_fmgr.cpp) and nothing of the migration is committed.
-----------------------------------------------------------------------------

CREATE TABLE tenant_guard.guarded_schemas (
    schema_name   name PRIMARY KEY,
    tenant_column name NOT NULL,
    guarded_by    name NOT NULL DEFAULT current_user,
    guarded_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant_guard.guarded_schemas IS
    'Schemas whose new tenant tables must be protected or exempted in the transaction that creates them.';
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.guarded_schemas', '');

CREATE TABLE tenant_guard.exemptions (
    tbl         regclass PRIMARY KEY,
    reason      text NOT NULL CHECK (pg_catalog.btrim(reason) <> ''),
    exempted_by name NOT NULL DEFAULT current_user,
    exempted_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant_guard.exemptions IS
    'Tables in guarded schemas that are deliberately not tenant-protected, and why.';
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.exemptions', '');

SELECT tenant_guard._registry_acl('tenant_guard.guarded_schemas',
    'pg_catalog.pg_has_role((SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = schema_name), ''USAGE'')');
SELECT tenant_guard._registry_acl('tenant_guard.exemptions',
    'pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = tbl), ''USAGE'')');

-- Internal, called by the event trigger: remembers a table for the COMMIT check.
-- Harmless for anyone to call (it can only add checks to the caller's own commit).
CREATE FUNCTION tenant_guard._guard_note(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'tg__guard_note'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

-- Internal: was the table, or its column col, created by this transaction?
CREATE FUNCTION tenant_guard._new_in_xact(rel regclass, col name)
RETURNS boolean
AS 'MODULE_PATHNAME', 'tg__new_in_xact'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

CREATE FUNCTION tenant_guard.guard_schema(schema name, tenant_column name DEFAULT 'org_id')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner oid;
BEGIN
    SELECT nspowner INTO owner FROM pg_namespace WHERE nspname = schema;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema USING ERRCODE = 'invalid_schema_name';
    END IF;
    IF schema IN ('pg_catalog', 'information_schema', 'tenant_guard') OR schema LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'cannot guard schema "%"', schema USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT pg_has_role(owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of schema %', schema USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF tenant_column IS NULL THEN
        RAISE EXCEPTION 'tenant column must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO tenant_guard.guarded_schemas (schema_name, tenant_column) VALUES (schema, tenant_column)
    ON CONFLICT (schema_name) DO UPDATE SET tenant_column = excluded.tenant_column;
END
$$;
COMMENT ON FUNCTION tenant_guard.guard_schema(name, name) IS
    'New tenant tables in this schema must be protected or exempted in the transaction that creates them.';

CREATE FUNCTION tenant_guard.unguard_schema(schema name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenant_guard.guarded_schemas WHERE schema_name = schema) THEN
        RAISE EXCEPTION 'schema "%" is not guarded by tenant_guard', schema USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    DELETE FROM tenant_guard.guarded_schemas WHERE schema_name = schema;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'must be owner of schema %', schema USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard.unguard_schema(name) IS 'Stops guarding a schema.';

CREATE FUNCTION tenant_guard.exempt(tbl regclass, reason text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'an exemption needs a table and a reason' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Say why the table holds no tenant data, e.g. tenant_guard.exempt(''app.countries'', ''shared reference data'').';
    END IF;
    IF NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = tbl), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM tenant_guard.protected_tables p WHERE p.tbl = exempt.tbl) THEN
        RAISE EXCEPTION 'table % is protected by tenant_guard', tbl USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Call tenant_guard.unprotect() first if the table really holds no tenant data.';
    END IF;
    INSERT INTO tenant_guard.exemptions (tbl, reason) VALUES (tbl, reason)
    ON CONFLICT ON CONSTRAINT exemptions_pkey DO UPDATE
        SET reason = excluded.reason, exempted_by = current_user, exempted_at = pg_catalog.now();
END
$$;
COMMENT ON FUNCTION tenant_guard.exempt(regclass, text) IS
    'Records that a table in a guarded schema deliberately has no tenant protection, and why.';

-----------------------------------------------------------------------------
-- Guards on protected tables: DDL that would weaken what protect() set up is
-- refused for every role, superusers included, unless a superuser turned on
-- tenant_guard.allow_unsafe_ddl in the same transaction (then it is recorded).
-----------------------------------------------------------------------------

CREATE TABLE tenant_guard.unsafe_ddl_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    role_name   name NOT NULL DEFAULT current_user,
    session_role name NOT NULL DEFAULT session_user,
    tbl         text NOT NULL,
    what        text NOT NULL
);
COMMENT ON TABLE tenant_guard.unsafe_ddl_log IS
    'Every weakening DDL on a protected table let through by tenant_guard.allow_unsafe_ddl.';
REVOKE ALL ON tenant_guard.unsafe_ddl_log FROM PUBLIC;
GRANT SELECT ON tenant_guard.unsafe_ddl_log TO PUBLIC;

-- Internal: what a collected DDL command does that the guards care about.
CREATE FUNCTION tenant_guard._ddl_command_kinds(cmd pg_ddl_command)
RETURNS text[]
AS 'MODULE_PATHNAME', 'tg__ddl_command_kinds'
LANGUAGE C STABLE STRICT PARALLEL UNSAFE;

CREATE FUNCTION tenant_guard._unsafe_ddl_allowed()
RETURNS boolean
AS 'MODULE_PATHNAME', 'tg__unsafe_ddl_allowed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Refuses a weakening change to a protected table, or, when allow_unsafe_ddl
-- is on for this transaction, records it and lets it pass with a WARNING.
-- SECURITY DEFINER to write the log; it writes only when the escape is on.
CREATE FUNCTION tenant_guard._refuse_unsafe_ddl(tbl regclass, what text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tenant_guard._unsafe_ddl_allowed() THEN
        INSERT INTO tenant_guard.unsafe_ddl_log (role_name, tbl, what) VALUES (current_user, tbl::text, what);
        RAISE WARNING 'tenant_guard.allow_unsafe_ddl let this through on protected table %: %', tbl, what;
        RETURN;
    END IF;
    RAISE EXCEPTION 'cannot %: table % is protected by tenant_guard', what, tbl
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = 'It would weaken the tenant isolation that tenant_guard.protect() set up.',
              HINT = 'Call tenant_guard.unprotect() first, or, as a superuser, SET LOCAL tenant_guard.allow_unsafe_ddl = on in this transaction (it is recorded).';
END
$$;

-- Partitions and inheritance children created or attached later are
-- protected like their parent; registry rows of dropped tables go away.
CREATE FUNCTION tenant_guard._on_ddl_command_end()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent regclass;
    rel regclass;
    x record;
    st record;
BEGIN
    FOR parent IN
        WITH RECURSIVE touched AS (
            SELECT DISTINCT objid FROM pg_event_trigger_ddl_commands()
            WHERE classid = 'pg_class'::regclass AND command_tag IN ('CREATE TABLE', 'ALTER TABLE')),
        ancestors(rel) AS (
            SELECT objid FROM touched
            UNION SELECT i.inhparent FROM pg_inherits i JOIN ancestors a ON i.inhrelid = a.rel)
        SELECT p.tbl FROM tenant_guard.protected_tables p JOIN ancestors a ON a.rel = p.tbl
        WHERE p.parent IS NULL
    LOOP
        PERFORM tenant_guard._protect_descendants(parent);
    END LOOP;
    -- guarded schemas: remember tables this transaction created or gave the
    -- tenant column; the check runs at COMMIT (see guard_schema())
    FOR rel IN
        SELECT DISTINCT d.objid::regclass FROM pg_event_trigger_ddl_commands() d
        JOIN pg_class c ON c.oid = d.objid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN tenant_guard.guarded_schemas g ON g.schema_name = n.nspname
        WHERE d.classid = 'pg_class'::regclass AND c.relkind IN ('r', 'p')
    LOOP
        PERFORM tenant_guard._guard_note(rel);
    END LOOP;
    -- protected tables: the command must not weaken what protect() set up.
    -- Judged by what the command does (not the table's state), so restoring
    -- a dump, where row-level security is switched on last, passes.
    FOR x IN
        SELECT p.tbl, p.tenant_column, d.classid = 'pg_policy'::regclass AS is_policy,
               CASE WHEN d.classid = 'pg_class'::regclass THEN tenant_guard._ddl_command_kinds(d.command) END AS kinds
        FROM pg_event_trigger_ddl_commands() d
        JOIN tenant_guard.protected_tables p
          ON p.tbl = CASE WHEN d.classid = 'pg_class'::regclass THEN d.objid
                          WHEN d.classid = 'pg_policy'::regclass
                          THEN (SELECT pol.polrelid FROM pg_policy pol WHERE pol.oid = d.objid) END
    LOOP
        SELECT c.relrowsecurity, c.relforcerowsecurity, o.rolname, o.rolsuper OR o.rolbypassrls AS bypass INTO st
        FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner WHERE c.oid = x.tbl;
        IF 'disable row level security' = ANY (x.kinds) AND NOT st.relrowsecurity THEN
            PERFORM tenant_guard._refuse_unsafe_ddl(x.tbl, 'disable row level security');
        END IF;
        IF 'no force row level security' = ANY (x.kinds) AND NOT st.relforcerowsecurity THEN
            PERFORM tenant_guard._refuse_unsafe_ddl(x.tbl, 'turn off FORCE row level security');
        END IF;
        IF 'owner' = ANY (x.kinds) AND st.bypass THEN
            PERFORM tenant_guard._refuse_unsafe_ddl(x.tbl,
                format('give the table to role %I, which bypasses row-level security', st.rolname));
        END IF;
        IF ('rename column ' || x.tenant_column) = ANY (x.kinds) THEN
            PERFORM tenant_guard._refuse_unsafe_ddl(x.tbl, format('rename the tenant column %I', x.tenant_column));
        END IF;
        IF x.is_policy THEN
            PERFORM tenant_guard._refuse_unsafe_ddl(x.tbl, 'alter generated ' || v.item)
            FROM tenant_guard.verify() v WHERE v.tbl = x.tbl AND v.item LIKE 'policy %';
        END IF;
    END LOOP;
END
$$;
CREATE EVENT TRIGGER tenant_guard_ddl_command_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER POLICY')
    EXECUTE FUNCTION tenant_guard._on_ddl_command_end();

CREATE FUNCTION tenant_guard._on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
    rel regclass;
BEGIN
    FOR o IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE original LOOP
        IF o.classid = 'pg_policy'::regclass AND o.address_names[3] LIKE 'tg\_%' THEN
            rel := to_regclass(format('%I.%I', o.address_names[1], o.address_names[2]));
            IF EXISTS (SELECT 1 FROM tenant_guard.protected_tables p WHERE p.tbl = rel) THEN
                PERFORM tenant_guard._refuse_unsafe_ddl(rel, format('drop generated policy %I', o.address_names[3]));
            END IF;
        ELSIF o.classid = 'pg_class'::regclass AND o.objsubid > 0
              AND EXISTS (SELECT 1 FROM tenant_guard.protected_tables p
                          WHERE p.tbl = o.objid AND p.tenant_column = o.address_names[3]) THEN
            PERFORM tenant_guard._refuse_unsafe_ddl(o.objid::regclass, format('drop the tenant column %I', o.address_names[3]));
        END IF;
    END LOOP;
    DELETE FROM tenant_guard.protected_tables p
    USING pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.objid = p.tbl::oid;
    DELETE FROM tenant_guard.access_rules r
    USING pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.objid = r.tbl::oid;
    DELETE FROM tenant_guard.exemptions e
    USING pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.objid = e.tbl::oid;
    DELETE FROM tenant_guard.guarded_schemas g
    USING pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_namespace'::regclass AND d.object_name = g.schema_name;
END
$$;
CREATE EVENT TRIGGER tenant_guard_sql_drop ON sql_drop EXECUTE FUNCTION tenant_guard._on_sql_drop();

-- _check_protectable, _apply_policies, _protect_descendants and _context_expr
-- stay executable by PUBLIC: protect() runs with the caller's rights and
-- calls them, and they too run with the caller's rights.
REVOKE ALL ON FUNCTION tenant_guard._on_ddl_command_end() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._on_sql_drop() FROM PUBLIC;
-- Called by the ddl_command_end trigger with the caller's rights; it only
-- refuses, or logs when allow_unsafe_ddl is on for the transaction.
GRANT EXECUTE ON FUNCTION tenant_guard._refuse_unsafe_ddl(regclass, text) TO PUBLIC;

-- Role-based access inside a tenant: replaces the base policy by permissive
-- tg_allow_<role>_<command> policies, each carrying the tenant predicate,
-- the in-tenant role, and optionally a scope. The wall stays.
CREATE FUNCTION tenant_guard.allow(tbl regclass, role text, commands text[] DEFAULT '{SELECT}',
                                   scope_column name DEFAULT NULL, scope_kind text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg tenant_guard.protected_tables;
    cmd text;
    cmds text[];
BEGIN
    SELECT * INTO reg FROM tenant_guard.protected_tables p WHERE p.tbl = allow.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not protected by tenant_guard', tbl USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Call tenant_guard.protect() first.';
    ELSIF reg.parent IS NOT NULL THEN
        RAISE EXCEPTION 'table % is protected through %', tbl, reg.parent USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Call tenant_guard.allow() on ' || reg.parent::text || '.';
    END IF;
    PERFORM tenant_guard._check_protectable(tbl, reg.tenant_column);
    IF role IS NULL OR role !~ '^[a-z][a-z0-9_]{0,29}$' THEN
        RAISE EXCEPTION 'invalid in-tenant role name "%"', role USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'In-tenant role names are 1 to 30 lower-case letters, digits and underscores, starting with a letter.';
    END IF;
    IF commands IS NULL OR cardinality(commands) = 0 THEN
        RAISE EXCEPTION 'no commands given' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass commands => ''{SELECT,INSERT,UPDATE,DELETE}'' or a subset, or ''{ALL}''.';
    END IF;
    SELECT array_agg(DISTINCT c) INTO cmds
    FROM unnest(commands) u,
         LATERAL unnest(CASE WHEN upper(u) = 'ALL' THEN ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']
                             ELSE ARRAY[upper(u)] END) c;
    FOREACH cmd IN ARRAY cmds LOOP
        IF cmd IS NULL OR cmd NOT IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE') THEN
            RAISE EXCEPTION 'invalid command "%"', cmd USING ERRCODE = 'invalid_parameter_value',
                HINT = 'Commands are SELECT, INSERT, UPDATE, DELETE or ALL.';
        END IF;
    END LOOP;
    IF (scope_column IS NULL) <> (scope_kind IS NULL) THEN
        RAISE EXCEPTION 'scope_column and scope_kind go together' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF scope_column IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl
                                                AND a.attname = scope_column AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'table % has no column "%"', tbl, scope_column USING ERRCODE = 'undefined_column';
    END IF;
    INSERT INTO tenant_guard.access_rules AS r (tbl, role, command, scope_column, scope_kind)
    SELECT allow.tbl, allow.role, c, allow.scope_column, allow.scope_kind FROM unnest(cmds) c
    ON CONFLICT ON CONSTRAINT access_rules_pkey DO UPDATE
        SET scope_column = excluded.scope_column, scope_kind = excluded.scope_kind;
    -- regenerate every generated policy of the table and its partitions and children
    PERFORM tenant_guard.protect(tbl, reg.tenant_column);
END
$$;
COMMENT ON FUNCTION tenant_guard.allow(regclass, text, text[], name, text) IS
    'Lets an in-tenant role run commands on a protected table, optionally within its scopes; the wall stays.';

CREATE FUNCTION tenant_guard.disallow(tbl regclass, role text, commands text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg tenant_guard.protected_tables;
    n bigint;
    wanted text[] := ARRAY(SELECT upper(c) FROM unnest(commands) c);
BEGIN
    SELECT * INTO reg FROM tenant_guard.protected_tables p WHERE p.tbl = disallow.tbl AND p.parent IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not protected by tenant_guard', tbl USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM tenant_guard._check_protectable(tbl, reg.tenant_column);
    DELETE FROM tenant_guard.access_rules r
    WHERE r.tbl = disallow.tbl AND r.role = disallow.role
      AND (commands IS NULL OR r.command = ANY (wanted) OR 'ALL' = ANY (wanted));
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'in-tenant role "%" has no such access to table %', role, tbl
            USING ERRCODE = 'undefined_object';
    END IF;
    -- with the last rule gone, the base policy comes back
    PERFORM tenant_guard.protect(tbl, reg.tenant_column);
END
$$;
COMMENT ON FUNCTION tenant_guard.disallow(regclass, text, text[]) IS
    'Removes access given by tenant_guard.allow(); without any rule left, the base policy returns.';

-- For DBAs: what each in-tenant role can do on a table, read from the
-- catalog (the policies as they are, whoever wrote them), not the registry.
-- Role '*' means any in-tenant role (the policy does not test the role).
CREATE FUNCTION tenant_guard.describe_access(tbl regclass)
RETURNS TABLE (role text, command text, policy name, condition text, restricted_by text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH rel AS (
        SELECT c.oid, c.relrowsecurity FROM pg_class c WHERE c.oid = tbl),
    pol AS (
        SELECT p.polname, p.polpermissive, p.polcmd,
               pg_get_expr(p.polqual, p.polrelid) AS using_expr,
               pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
        FROM pg_policy p JOIN rel ON p.polrelid = rel.oid),
    restrictive AS (
        SELECT string_agg(polname, ', ' ORDER BY polname) AS names FROM pol WHERE NOT polpermissive),
    cmds(command, code) AS (VALUES ('SELECT', 'r'), ('INSERT', 'a'), ('UPDATE', 'w'), ('DELETE', 'd')),
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
           (SELECT names FROM restrictive)
    FROM rel, perm, LATERAL unnest(CASE WHEN cardinality(perm.roles) = 0 THEN ARRAY['*'] ELSE perm.roles END) r
    WHERE rel.relrowsecurity
    ORDER BY 1, 2, 3
$$;
COMMENT ON FUNCTION tenant_guard.describe_access(regclass) IS
    'One row per in-tenant role and command: what the policies on the table allow, and under which condition.';

-- What protect() generated versus what the catalog says now. One row per
-- difference; no rows when every protected table is as generated.
CREATE FUNCTION tenant_guard.verify()
RETURNS TABLE (tbl regclass, item text, expected text, actual text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r tenant_guard.protected_tables;
    c record;
    col record;
    fn text;
    pred text;
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
            IF r.parent IS NULL AND col.dflt IS DISTINCT FROM fn THEN
                item := format('default of tenant column %I', r.tenant_column); expected := fn;
                actual := coalesce(col.dflt, 'none'); RETURN NEXT;
            END IF;
        END IF;
        -- the wall and base predicate exactly as PostgreSQL deparses the generated one
        pred := format('(%s = ( SELECT %s AS %s))', quote_ident(r.tenant_column), fn,
                       split_part(split_part(fn, '.', 2), '(', 1));
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
COMMENT ON FUNCTION tenant_guard.verify() IS
    'Every difference between what protect() generated and the actual state of protected tables; empty when none.';
