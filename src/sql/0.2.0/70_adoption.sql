-----------------------------------------------------------------------------
-- The way in and out (docs/protecting-a-schema.md):
--  - allow() says what it takes away: the first rule of a table replaces its
--    base policy, so every in-tenant role without a rule (the admin too) loses
--    the table; a NOTICE names them, and the commands no role has any more;
--  - uninstall() removes all protection, and DROP EXTENSION tenant_guard is
--    refused while tables are protected (it would leave them with row-level
--    security, FORCE and no policy: an outage);
--  - begin_maintenance(): a migration's audited context for one tenant at a
--    time, for the roles a superuser granted it to (FORCE binds the owner).
-----------------------------------------------------------------------------

-- allow() of 0.1.0, with the NOTICE and a hint for a scope column the table
-- does not have.
CREATE OR REPLACE FUNCTION tenant_guard.allow(tbl regclass, role text, commands text[] DEFAULT '{SELECT}',
                                              scope_column name DEFAULT NULL, scope_kind text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reg tenant_guard.protected_tables;
    cmd text;
    cmds text[];
    had_rules boolean;
    uncovered text;
    granted text;
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
        RAISE EXCEPTION 'table % has no column "%"', tbl, scope_column USING ERRCODE = 'undefined_column',
            DETAIL = 'scope_column names the column of the table that holds the scope of each row (a venue, a '
                     'team); a row is visible when its value is one of the context''s scopes of kind scope_kind.',
            HINT = 'Add the column first, or name another; without scope_column and scope_kind the rule covers '
                   'every row of the tenant.';
    END IF;
    had_rules := EXISTS (SELECT 1 FROM tenant_guard.access_rules r WHERE r.tbl = allow.tbl);
    INSERT INTO tenant_guard.access_rules AS r (tbl, role, command, scope_column, scope_kind)
    SELECT allow.tbl, allow.role, c, allow.scope_column, allow.scope_kind FROM unnest(cmds) c
    ON CONFLICT ON CONSTRAINT access_rules_pkey DO UPDATE
        SET scope_column = excluded.scope_column, scope_kind = excluded.scope_kind;
    -- regenerate every generated policy of the table and its partitions and children
    PERFORM tenant_guard.protect(tbl, reg.tenant_column);
    IF NOT had_rules THEN
        SELECT string_agg(x.command, ', ' ORDER BY x.o) INTO uncovered
        FROM (VALUES ('SELECT', 1), ('INSERT', 2), ('UPDATE', 3), ('DELETE', 4)) x(command, o)
        WHERE NOT EXISTS (SELECT 1 FROM tenant_guard.access_rules r WHERE r.tbl = allow.tbl AND r.command = x.command);
        SELECT string_agg(format('%s: %s', q.role, q.cmds), '; ' ORDER BY q.role) INTO granted
        FROM (SELECT r.role, string_agg(r.command, ', ' ORDER BY r.command) AS cmds
              FROM tenant_guard.access_rules r WHERE r.tbl = allow.tbl GROUP BY r.role) q;
        RAISE NOTICE 'table % now admits only the in-tenant roles given access by allow() (%); every other in-tenant role% can no longer read or change its rows%',
            tbl, granted,
            CASE WHEN NOT EXISTS (SELECT 1 FROM tenant_guard.access_rules r WHERE r.tbl = allow.tbl AND r.role = 'admin')
                 THEN ', admin included,' ELSE '' END,
            CASE WHEN uncovered IS NOT NULL THEN ', and no role can ' || uncovered ELSE '' END
            USING DETAIL = 'The first allow() rule of a table replaces its base policy, which let every in-tenant role '
                           'of the tenant do everything.',
                  HINT = format('Give each role that needs the table its own rule, e.g. SELECT tenant_guard.allow(%L, '
                                '''admin'', ''{ALL}''); tenant_guard.describe_access(%L) lists them.', tbl::text, tbl::text);
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard.allow(regclass, text, text[], name, text) IS
    'Lets an in-tenant role run commands on a protected table, optionally within its scopes; the wall stays. '
    'The first rule replaces the base policy (a NOTICE says so).';

-----------------------------------------------------------------------------
-- Uninstall
-----------------------------------------------------------------------------

-- Removes every protection tenant_guard added, so that DROP EXTENSION
-- tenant_guard leaves the tables as they were before protect(): unguards every
-- schema, stops auditing every audited table (its triggers would keep the
-- extension from being dropped), and unprotects every protected table
-- (unprotect() removes exactly what protect() added). Runs with the caller's
-- rights: the caller must own the tables (unprotect() checks each). The audit
-- log and the tenant keys go with DROP EXTENSION: export them first, and
-- decrypt encrypted columns before (docs/protecting-a-schema.md).
CREATE FUNCTION tenant_guard.uninstall()
RETURNS TABLE (action text, object text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s name;
    t regclass;
BEGIN
    FOR s IN SELECT g.schema_name FROM tenant_guard.guarded_schemas g ORDER BY g.schema_name LOOP
        PERFORM tenant_guard.unguard_schema(s);
        action := 'unguarded'; object := s::text;
        RETURN NEXT;
    END LOOP;
    FOR t IN SELECT a.tbl FROM tenant_guard.audited_tables a ORDER BY a.tbl::text LOOP
        PERFORM tenant_guard.disable_audit(t);
        action := 'audit disabled'; object := t::text;
        RETURN NEXT;
    END LOOP;
    FOR t IN SELECT p.tbl FROM tenant_guard.protected_tables p WHERE p.parent IS NULL ORDER BY p.tbl::text LOOP
        PERFORM tenant_guard.unprotect(t);
        action := 'unprotected'; object := t::text;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_guard.uninstall() IS
    'Unguards every schema, stops auditing and unprotects every table, so that DROP EXTENSION tenant_guard leaves no table locked.';
REVOKE ALL ON FUNCTION tenant_guard.uninstall() FROM PUBLIC;

CREATE FUNCTION tenant_guard._refuse_extension_drop()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'tg__refuse_extension_drop'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._refuse_extension_drop() IS
    'Internal event trigger: DROP EXTENSION tenant_guard is refused while tables are protected.';
REVOKE ALL ON FUNCTION tenant_guard._refuse_extension_drop() FROM PUBLIC;
CREATE EVENT TRIGGER tenant_guard_refuse_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION tenant_guard._refuse_extension_drop();

-----------------------------------------------------------------------------
-- Maintenance context
-----------------------------------------------------------------------------

-- The roles a superuser let have a maintenance context. Checked against
-- session_user, the role the session logged in as: SET ROLE, a SECURITY
-- DEFINER function or set_config() cannot change it. Registered application
-- roles are refused, at grant time and at use.
CREATE TABLE tenant_guard.maintenance_roles (
    role       regrole PRIMARY KEY,
    reason     text NOT NULL CHECK (reason <> ''),
    granted_by name NOT NULL DEFAULT session_user,
    granted_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant_guard.maintenance_roles IS
    'Login roles a superuser granted the maintenance context to (tenant_guard.grant_maintenance()).';
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.maintenance_roles', '');
REVOKE ALL ON tenant_guard.maintenance_roles FROM PUBLIC;
GRANT SELECT ON tenant_guard.maintenance_roles TO PUBLIC;

-- Internal: raises unless the session may have a maintenance context.
CREATE FUNCTION tenant_guard._maintenance_check()
RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user) THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tenant_guard.maintenance_roles m WHERE m.role::oid =
                   (SELECT r.oid FROM pg_roles r WHERE r.rolname = session_user))
       OR EXISTS (SELECT 1 FROM tenant_guard.app_roles a JOIN pg_roles r ON r.oid = a.role
                  WHERE r.rolname = session_user) THEN
        RAISE EXCEPTION 'permission denied for a maintenance context' USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'The session''s login role is neither a superuser nor granted maintenance by a superuser.',
            HINT = 'A superuser grants it with tenant_guard.grant_maintenance(role, reason); it follows the login '
                   'role, not SET ROLE.';
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard._maintenance_check() IS
    'Internal: raises unless session_user is a superuser or granted maintenance (and not an application role).';
REVOKE ALL ON FUNCTION tenant_guard._maintenance_check() FROM PUBLIC;

CREATE FUNCTION tenant_guard.grant_maintenance(role regrole, reason text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'permission denied to grant maintenance' USING ERRCODE = 'insufficient_privilege',
            HINT = 'Only a superuser grants the maintenance context.';
    END IF;
    IF role IS NULL OR coalesce(reason, '') = '' THEN
        RAISE EXCEPTION 'role and reason must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT 1 FROM tenant_guard.app_roles a WHERE a.role = grant_maintenance.role) THEN
        RAISE EXCEPTION 'role % is a registered application role', role USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'The application must never act across tenants.',
            HINT = 'Grant maintenance to the login role the migrations run as.';
    END IF;
    INSERT INTO tenant_guard.maintenance_roles AS m (role, reason) VALUES (role, reason)
    ON CONFLICT ON CONSTRAINT maintenance_roles_pkey DO UPDATE
        SET reason = excluded.reason, granted_by = session_user, granted_at = pg_catalog.now();
    PERFORM tenant_guard._audit_write_event(NULL, 'platform.maintenance_granted',
        jsonb_build_object('role', role::text, 'reason', reason));
END
$$;
COMMENT ON FUNCTION tenant_guard.grant_maintenance(regrole, text) IS
    'Superuser only: lets sessions that log in as role call tenant_guard.begin_maintenance() (recorded).';
REVOKE ALL ON FUNCTION tenant_guard.grant_maintenance(regrole, text) FROM PUBLIC;

CREATE FUNCTION tenant_guard.revoke_maintenance(role regrole)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'permission denied to revoke maintenance' USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM tenant_guard.maintenance_roles m WHERE m.role = revoke_maintenance.role;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role % has no maintenance grant', role USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM tenant_guard._audit_write_event(NULL, 'platform.maintenance_revoked', jsonb_build_object('role', role::text));
END
$$;
COMMENT ON FUNCTION tenant_guard.revoke_maintenance(regrole) IS 'Superuser only: removes a maintenance grant (recorded).';
REVOKE ALL ON FUNCTION tenant_guard.revoke_maintenance(regrole) FROM PUBLIC;

-- Internal, called by begin_maintenance() (C, with the caller's rights):
-- checks the session, records the context in the audit log (it commits with
-- the migration or not at all, like its changes) and returns the claims of the
-- context, built at the configured claim paths. The claims are returned, never
-- accepted: the caller cannot choose what they say beyond the arguments.
CREATE FUNCTION tenant_guard._maintenance_claims(org text, reason text, in_tenant_role text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    claims jsonb := '{}';
    path text[];
    v jsonb;
    p record;
BEGIN
    PERFORM tenant_guard._maintenance_check();
    IF org IS NULL OR org = '' THEN
        RAISE EXCEPTION 'org must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF coalesce(reason, '') = '' THEN
        RAISE EXCEPTION 'a maintenance context needs a reason' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Name the migration or ticket; the audit log records it.';
    END IF;
    IF in_tenant_role IS NOT NULL AND in_tenant_role !~ '^[a-z][a-z0-9_]{0,29}$' THEN
        RAISE EXCEPTION 'invalid in-tenant role name "%"', in_tenant_role USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR p IN SELECT * FROM (VALUES
                 (current_setting('tenant_guard.org_claim'), to_jsonb(org)),
                 (current_setting('tenant_guard.user_claim'), to_jsonb('maintenance:' || session_user)),
                 (current_setting('tenant_guard.role_claim'), to_jsonb(in_tenant_role))) x(claim, value)
             WHERE x.value <> 'null'::jsonb LOOP
        path := string_to_array(p.claim, '.');
        v := p.value;
        FOR i IN REVERSE cardinality(path)..2 LOOP
            v := jsonb_build_object(path[i], v);
        END LOOP;
        -- a shallow merge is enough unless two claims share a parent object
        IF claims ? path[1] AND jsonb_typeof(claims -> path[1]) = 'object' AND jsonb_typeof(v) = 'object' THEN
            v := (claims -> path[1]) || v;
        END IF;
        claims := claims || jsonb_build_object(path[1], v);
    END LOOP;
    PERFORM tenant_guard._audit_write_event(org, 'platform.maintenance_context',
        jsonb_build_object('session_user', session_user, 'role', current_setting('role'), 'reason', reason,
                           'in_tenant_role', in_tenant_role));
    RETURN claims::text;
END
$$;
COMMENT ON FUNCTION tenant_guard._maintenance_claims(text, text, text) IS
    'Internal: checks the session may have a maintenance context, records it, returns its claims.';
-- begin_maintenance() runs it with the caller's rights; it checks session_user itself.
GRANT EXECUTE ON FUNCTION tenant_guard._maintenance_claims(text, text, text) TO PUBLIC;

CREATE FUNCTION tenant_guard.begin_maintenance(org text, reason text, in_tenant_role text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'tg_begin_maintenance'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard.begin_maintenance(text, text, text) IS
    'For migrations: the context of tenant org (optionally as an in-tenant role) until the end of the transaction, '
    'recorded in the audit log; superusers and roles granted maintenance only.';
-- It checks the session itself (_maintenance_claims()).
GRANT EXECUTE ON FUNCTION tenant_guard.begin_maintenance(text, text, text) TO PUBLIC;

-- The tenants that have rows in a protected table, for a migration that works
-- through them with begin_maintenance(); the same check.
CREATE FUNCTION tenant_guard.maintenance_tenants(tbl regclass)
RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col name;
BEGIN
    PERFORM tenant_guard._maintenance_check();
    SELECT p.tenant_column INTO col FROM tenant_guard.protected_tables p WHERE p.tbl = maintenance_tenants.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not protected by tenant_guard', tbl USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN QUERY EXECUTE format('SELECT DISTINCT t.%I::text FROM %s t ORDER BY 1', col, tbl);
END
$$;
COMMENT ON FUNCTION tenant_guard.maintenance_tenants(regclass) IS
    'For migrations: the tenant ids that have rows in a protected table; superusers and roles granted maintenance only.';
GRANT EXECUTE ON FUNCTION tenant_guard.maintenance_tenants(regclass) TO PUBLIC;


-----------------------------------------------------------------------------
-- Composite keys: protect() says which keys and foreign keys of the table it
-- protected leave the tenant column out (lint's TG022 and TG023: another
-- tenant's key can be detected, or referenced) and gives the statements of
-- the composite (tenant column, id) forms. It never changes a constraint
-- itself; composite_key_statements() returns the same statements.
-----------------------------------------------------------------------------

-- The statements, in the order that works in one transaction: (1) drop the
-- foreign keys between protected tables, to or from tbl, without the tenant
-- column; (2) rebuild, with the tenant column first, every unique key of tbl
-- without it (but one whose key is a random uuid drawn by its default: lint
-- says info, the key cannot be guessed) and every key those foreign keys
-- reference; (3) add the foreign keys again from (tenant column, columns) to
-- (tenant column, key).
CREATE FUNCTION tenant_guard.composite_key_statements(tbl regclass)
RETURNS TABLE (step integer, code text, object text, statement text)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tc name;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'tbl must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT p.tenant_column INTO tc FROM tenant_guard.protected_tables p WHERE p.tbl = composite_key_statements.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not protected by tenant_guard', tbl USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Call tenant_guard.protect() first.';
    END IF;
    RETURN QUERY
    WITH prot AS (
        SELECT p.tbl, p.tenant_column, a.attnum
        FROM tenant_guard.protected_tables p
        JOIN pg_attribute a ON a.attrelid = p.tbl AND a.attname = p.tenant_column),
    fks AS (
        SELECT con.oid, con.conname, con.conrelid, con.confrelid, con.conindid, con.conkey, con.confkey,
               s.tenant_column AS stc, d.tenant_column AS dtc
        FROM pg_constraint con
        JOIN prot s ON s.tbl = con.conrelid
        JOIN prot d ON d.tbl = con.confrelid
        WHERE con.contype = 'f' AND con.conparentid = 0
          AND (con.conrelid = composite_key_statements.tbl OR con.confrelid = composite_key_statements.tbl)
          AND NOT EXISTS (SELECT 1 FROM generate_subscripts(con.conkey, 1) k
                          WHERE con.conkey[k] = s.attnum AND con.confkey[k] = d.attnum)),
    keys AS (
        SELECT i.indexrelid, i.indrelid, pr.tenant_column AS ktc, 'TG022'::text AS code
        FROM pg_index i JOIN prot pr ON pr.tbl = i.indrelid
        WHERE i.indrelid = composite_key_statements.tbl AND i.indisunique
          AND NOT (pr.attnum = ANY (i.indkey::int2[]))
          AND NOT coalesce(tenant_guard._random_key(i.indexrelid, pr.tenant_column), false)
        UNION
        SELECT f.conindid, f.confrelid, f.dtc, 'TG023' FROM fks f),
    key_stmt AS (
        SELECT DISTINCT ON (k.indexrelid) k.indexrelid, k.code,
               coalesce(c.conname::text, k.indexrelid::regclass::text) AS object,
               CASE WHEN c.oid IS NOT NULL
                    THEN format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I %s (%s);', k.indrelid::regclass,
                                c.conname, c.conname, CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END,
                                (SELECT string_agg(quote_ident(x), ', ' ORDER BY o)
                                 FROM (SELECT k.ktc::text, 0 UNION ALL
                                       SELECT a.attname::text, n FROM unnest(c.conkey) WITH ORDINALITY u(att, n)
                                       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = u.att) s(x, o)))
                    ELSE format('DROP INDEX %s; %s;', k.indexrelid::regclass,
                                regexp_replace(pg_get_indexdef(k.indexrelid), ' USING (\w+) \(',
                                               ' USING \1 (' || replace(quote_ident(k.ktc), '\', '\\') || ', '))
               END AS stmt
        FROM keys k
        LEFT JOIN pg_constraint c ON c.conindid = k.indexrelid AND c.conrelid = k.indrelid AND c.contype IN ('p', 'u')
        ORDER BY k.indexrelid, k.code)
    SELECT 1, 'TG023', format('%I ON %s', f.conname, f.conrelid::regclass),
           format('ALTER TABLE %s DROP CONSTRAINT %I;', f.conrelid::regclass, f.conname)
    FROM fks f
    UNION ALL
    SELECT 2, ks.code, ks.object, ks.stmt FROM key_stmt ks
    UNION ALL
    SELECT 3, 'TG023', format('%I ON %s', f.conname, f.conrelid::regclass),
           format('ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (%s) REFERENCES %s (%s)%s;', f.conrelid::regclass,
                  f.conname,
                  (SELECT string_agg(quote_ident(x), ', ' ORDER BY o)
                   FROM (SELECT f.stc::text, 0 UNION ALL
                         SELECT a.attname::text, n FROM unnest(f.conkey) WITH ORDINALITY u(att, n)
                         JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = u.att) s(x, o)),
                  f.confrelid::regclass,
                  (SELECT string_agg(quote_ident(x), ', ' ORDER BY o)
                   FROM (SELECT f.dtc::text, 0 UNION ALL
                         SELECT a.attname::text, n FROM unnest(f.confkey) WITH ORDINALITY u(att, n)
                         JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = u.att) s(x, o)),
                  regexp_replace(pg_get_constraintdef(f.oid), '^.*REFERENCES [^(]*\([^)]*\)', ''))
    FROM fks f
    ORDER BY 1, 4;
END
$$;
COMMENT ON FUNCTION tenant_guard.composite_key_statements(regclass) IS
    'The ALTER TABLE statements that give a protected table''s keys and foreign keys between protected tables the tenant column (lint TG022, TG023); changes nothing.';
-- protect() runs it for the caller (the table's owner). SECURITY DEFINER
-- to see every registered table and call lint's _random_key(); it reads only
-- the catalogs and the registry, and returns what pg_constraint and pg_index
-- show every role anyway.
GRANT EXECUTE ON FUNCTION tenant_guard.composite_key_statements(regclass) TO PUBLIC;

-- After protect() registers a root table: the NOTICE with those statements.
CREATE FUNCTION tenant_guard._composite_key_notice()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stmts text;
    codes text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = NEW.tbl) THEN
        RETURN NULL;
    END IF;
    SELECT string_agg(s.statement, E'\n' ORDER BY s.step, s.statement),
           string_agg(DISTINCT s.code, ', ' ORDER BY s.code)
    INTO stmts, codes FROM tenant_guard.composite_key_statements(NEW.tbl) s;
    IF stmts IS NOT NULL THEN
        RAISE NOTICE 'table % has keys or foreign keys without tenant column % (lint %): another tenant''s key can be detected or referenced',
            NEW.tbl, quote_ident(NEW.tenant_column), codes
            USING DETAIL = 'The composite forms, to run in one transaction:' || E'\n' || stmts,
                  HINT = 'tenant_guard does not change constraints itself; tenant_guard.composite_key_statements() '
                         'returns these statements.';
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenant_guard._composite_key_notice() IS
    'Internal: after protect() registers a root table, a NOTICE with the composite forms of its keys and foreign keys.';
REVOKE ALL ON FUNCTION tenant_guard._composite_key_notice() FROM PUBLIC;
CREATE TRIGGER tg_composite_key_notice AFTER INSERT ON tenant_guard.protected_tables
    FOR EACH ROW WHEN (NEW.parent IS NULL) EXECUTE FUNCTION tenant_guard._composite_key_notice();
