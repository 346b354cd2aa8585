-----------------------------------------------------------------------------
-- verify() sees the shards of protected Citus tables (docs/citus.md).
--
-- tenant_guard._verify_catalog() (60_lifecycle.sql) checks this node's
-- catalog; verify() returns its rows followed, on a Citus coordinator, by one
-- row per finding of citus_shard_findings() (58_citus.sql) on every shard
-- placement of every node. Without Citus in the database verify() returns exactly the catalog's
-- rows, after one catalog look-up.
-----------------------------------------------------------------------------

-- CREATE OR REPLACE: 0.1.0's verify() keeps its identity and the grants a
-- DBA gave or revoked.
CREATE OR REPLACE FUNCTION tenant_guard.verify()
RETURNS TABLE (tbl regclass, item text, expected text, actual text)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT * FROM tenant_guard._verify_catalog();
    IF NOT tenant_guard._citus_present() THEN
        RETURN;
    END IF;
    -- the shards: as a role that may run the shard checks (they connect to
    -- every node); any other caller learns that they were not run
    IF has_function_privilege('tenant_guard.citus_shard_findings()', 'EXECUTE') THEN
        RETURN QUERY
        SELECT f.tbl, format('shard %s on %s: %s', f.shardid, f.node, f.item), f.expected, f.actual
        FROM tenant_guard.citus_shard_findings() f;
    ELSE
        RETURN QUERY EXECUTE
            'SELECT p.tbl, ''shards''::text, ''checked''::text, '
            '''not checked: this role may not execute tenant_guard.citus_shard_findings()''::text '
            'FROM tenant_guard.protected_tables p JOIN pg_catalog.pg_dist_partition d ON d.logicalrelid = p.tbl '
            'ORDER BY p.tbl::text';
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard.verify() IS
    'Every difference between what protect() generated and the actual state of protected tables, on a Citus '
    'coordinator on every shard too; empty when none.';
