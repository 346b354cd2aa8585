
-----------------------------------------------------------------------------
-- Registries of tables (docs/security-model.md, "Registries")
--
-- protected_tables, access_rules, exemptions and audited_tables are written
-- by tenant_guard's functions with the caller's rights; row-level security
-- lets a role write only rows about tables it owns. Those functions accept
-- only permanent tables, and so do the registries themselves, for every role
-- (superusers included): a row written directly about a temporary table
-- would let its owner have tenant_guard trust it (the audit trigger took a
-- record's tenant from such a table's rows), and it dangles once the session
-- ends, since no event trigger sees temporary tables go.
-----------------------------------------------------------------------------

CREATE FUNCTION tenant_guard._registry_check_relation()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    SELECT c.relkind, c.relpersistence, n.nspname INTO r
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = NEW.tbl;
    IF NOT FOUND OR r.relkind NOT IN ('r', 'p') OR r.relpersistence = 't'
       OR r.nspname IN ('pg_catalog', 'information_schema') OR r.nspname LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'relation % cannot be registered in tenant_guard.%', NEW.tbl, TG_TABLE_NAME
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'tenant_guard''s registries name permanent tables only: not temporary or foreign tables, views, or system catalogs.',
                  HINT = 'Use tenant_guard.protect(), allow(), exempt() and enable_audit(); they register what they set up.';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION tenant_guard._registry_check_relation() FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard._registry_check_relation() IS
    'Internal: refuses registry rows about temporary or foreign tables, views, system catalogs and missing relations.';

CREATE TRIGGER tg_registry_check BEFORE INSERT OR UPDATE OF tbl ON tenant_guard.protected_tables
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._registry_check_relation();
CREATE TRIGGER tg_registry_check BEFORE INSERT OR UPDATE OF tbl ON tenant_guard.access_rules
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._registry_check_relation();
CREATE TRIGGER tg_registry_check BEFORE INSERT OR UPDATE OF tbl ON tenant_guard.exemptions
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._registry_check_relation();
CREATE TRIGGER tg_registry_check BEFORE INSERT OR UPDATE OF tbl ON tenant_guard.audited_tables
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._registry_check_relation();
