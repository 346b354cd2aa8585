-----------------------------------------------------------------------------
-- Migration guardrail (guard_schema(), 0.1.0) against two ways around it:
--  - an exempted table that gains the tenant column (ALTER TABLE ... ADD
--    COLUMN, or RENAME COLUMN to it): its exemption was given for a table
--    without tenant data, so it lapses, and the COMMIT fails unless the same
--    transaction protects or exempts the table again;
--  - ALTER TABLE ... SET SCHEMA of a tenant table into a guarded schema: the
--    COMMIT fails unless the table is protected or exempted by then.
-- lint() reports exempted tables that have a tenant column (TG060).
-----------------------------------------------------------------------------

-- Internal, called by the event trigger below: remembers a table for the
-- COMMIT check, which then counts it even though neither the table nor its
-- tenant column is new in this transaction. Harmless for anyone to call (it
-- can only add checks to the caller's own commit), like _guard_note().
CREATE FUNCTION tenant_guard._guard_require(rel regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'tg__guard_require'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._guard_require(regclass) IS
    'Internal: the table must be protected or exempted when this transaction commits (guarded schemas).';

-- Runs with the caller's rights: the caller of ALTER TABLE owns the table, so
-- the registry's row-level security lets it delete the table's exemption.
-- row_security is pinned on: the registries have row-level security, and
-- with row_security = off (pg_dump's output sets it) reading them would fail.
CREATE FUNCTION tenant_guard._guard_on_alter()
RETURNS event_trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET row_security = on
AS $$
DECLARE
    x record;
BEGIN
    FOR x IN
        SELECT DISTINCT d.objid::regclass AS rel, g.tenant_column, tenant_guard._ddl_command_kinds(d.command) AS kinds
        FROM pg_event_trigger_ddl_commands() d
        JOIN pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'p')
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN tenant_guard.guarded_schemas g ON g.schema_name = n.nspname
        WHERE d.classid = 'pg_class'::regclass
    LOOP
        IF 'set schema' = ANY (x.kinds) THEN
            PERFORM tenant_guard._guard_require(x.rel);
        END IF;
        IF ('add column ' || x.tenant_column) = ANY (x.kinds) OR ('rename column to ' || x.tenant_column) = ANY (x.kinds) THEN
            DELETE FROM tenant_guard.exemptions e WHERE e.tbl = x.rel;
            IF FOUND THEN
                RAISE NOTICE 'the exemption of table % lapsed: it gained the tenant column "%"', x.rel, x.tenant_column
                    USING HINT = 'Protect the table with tenant_guard.protect(), or, if it still holds no tenant data, '
                                 'exempt it again with tenant_guard.exempt() in this transaction.';
            END IF;
            PERFORM tenant_guard._guard_require(x.rel);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_guard._guard_on_alter() IS
    'Internal event trigger: tables moved into a guarded schema, and exempted tables that gain the tenant column, must be protected or exempted by COMMIT.';
REVOKE ALL ON FUNCTION tenant_guard._guard_on_alter() FROM PUBLIC;
CREATE EVENT TRIGGER tenant_guard_migration_guard ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION tenant_guard._guard_on_alter();
