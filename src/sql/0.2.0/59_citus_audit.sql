-----------------------------------------------------------------------------
-- Audit of Citus distributed tables (docs/citus.md, "Audit")
--
-- enable_audit() on a distributed table creates its audit triggers on the
-- coordinator's table, and Citus puts them on every shard (at once, and
-- again at every shard move, copy and split: Citus re-creates a table's
-- triggers with its shards). On a worker the triggers record a shard's
-- changes under the distributed table's name into the worker's own
-- tenant_guard.audit_log, with the worker's own seal chain (src/pg/
-- audit_relinfo.cpp maps the shard to its table; audit_chain.cpp seals at
-- PREPARE TRANSACTION too, which Citus uses for writes to several workers).
-- The workers' tenant_guard.audited_tables get the table's row, so the
-- triggers there accept its shards. On the coordinator, audit_trail reads
-- the caller's tenant's records from every worker (_audit_remote_trail(),
-- 30_audit.sql) and verify_audit() checks every node's chain.
-----------------------------------------------------------------------------

-- Citus refuses triggers on distributed tables unless
-- citus.enable_unsafe_triggers is on: turned on for the functions that
-- create and drop the audit triggers (a placeholder setting without Citus).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'tenant_guard'::regnamespace
               AND p.proname IN ('enable_audit', 'disable_audit', '_audit_statement_triggers')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET citus.enable_unsafe_triggers = on', f);
    END LOOP;
END
$$;

-- Is tbl a Citus table whose shards have more than one placement (a
-- reference table, or statement replication)? Each placement runs the
-- triggers, so enable_audit() refuses it. Executable by PUBLIC:
-- enable_audit() runs with its caller's rights (pg_dist_partition is
-- readable by everyone).
CREATE FUNCTION tenant_guard._citus_replicated(tbl regclass)
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
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = $1 '
            'AND p.repmodel <> ''s'')' INTO found USING tbl;
    RETURN found;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_replicated(regclass) IS
    'Internal: whether a table is a Citus table whose shards have several placements (false without Citus).';

-- On this node (a worker): the audited_tables row of a distributed table,
-- found by name (its shell table); drop removes it. Called by the
-- coordinator only (run_command_on_workers as the extension owner).
CREATE FUNCTION tenant_guard._citus_put_audited(schema_name name, table_name name, exclude_columns name[],
                                                redact_columns name[], drop boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass;
BEGIN
    IF schema_name IS NULL OR table_name IS NULL OR drop IS NULL THEN
        RAISE EXCEPTION 'arguments must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    rel := pg_catalog.to_regclass(format('%I.%I', schema_name, table_name));
    IF drop THEN
        DELETE FROM tenant_guard.audited_tables a WHERE a.tbl = rel;
        RETURN;
    END IF;
    IF rel IS NULL THEN
        RAISE EXCEPTION 'table %.% does not exist on this node', quote_ident(schema_name), quote_ident(table_name)
            USING ERRCODE = 'undefined_table';
    END IF;
    INSERT INTO tenant_guard.audited_tables AS t (tbl, exclude_columns, redact_columns)
    VALUES (rel, coalesce(exclude_columns, '{}'), coalesce(redact_columns, '{}'))
    ON CONFLICT ON CONSTRAINT audited_tables_pkey DO UPDATE
        SET exclude_columns = excluded.exclude_columns, redact_columns = excluded.redact_columns
        WHERE (t.exclude_columns, t.redact_columns) IS DISTINCT FROM (excluded.exclude_columns, excluded.redact_columns);
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_put_audited(name, name, name[], name[], boolean) IS
    'Internal: writes or removes the audited_tables row of a Citus table on this node (called on every worker).';
REVOKE ALL ON FUNCTION tenant_guard._citus_put_audited(name, name, name[], name[], boolean) FROM PUBLIC;

-- Sends the registry row of tbl (drop: its removal) to every worker; a
-- worker that fails is an error (the shards' triggers there would refuse
-- every write of the table).
CREATE FUNCTION tenant_guard._citus_send_audited(tbl regclass, exclude_columns name[], redact_columns name[],
                                                 drop boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    bad text;
BEGIN
    SELECT n.nspname, c.relname INTO r
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    IF r.relname IS NULL THEN
        RETURN;  -- being dropped: Citus drops it on the workers, whose own event trigger cleans up
    END IF;
    EXECUTE 'SELECT string_agg(format(''%s:%s: %s'', nodename, nodeport, result), ''; '') '
            'FROM pg_catalog.run_command_on_workers($1) WHERE NOT success'
        INTO bad
        USING format('SELECT tenant_guard._citus_put_audited(%L, %L, %L::name[], %L::name[], %L)', r.nspname,
                     r.relname, exclude_columns, redact_columns, drop);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'could not register the audit of % on every Citus worker', tbl
            USING ERRCODE = 'connection_failure', DETAIL = bad,
            HINT = 'Make sure tenant_guard is installed on every node, then call tenant_guard.citus_sync().';
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_send_audited(regclass, name[], name[], boolean) IS
    'Internal: writes or removes the audited_tables row of a Citus table on every worker.';
REVOKE ALL ON FUNCTION tenant_guard._citus_send_audited(regclass, name[], name[], boolean) FROM PUBLIC;

-- Each change of audited_tables on a coordinator, for a distributed table,
-- reaches the workers before the statement ends. SECURITY DEFINER: the row
-- was admitted by the registry's row-level security (the table's owner),
-- and the workers are written as the extension owner.
CREATE FUNCTION tenant_guard._citus_audited_copy()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tenant_guard._citus_coordinator() THEN
        IF TG_OP = 'DELETE' THEN
            IF tenant_guard._citus_table(OLD.tbl) THEN
                PERFORM tenant_guard._citus_send_audited(OLD.tbl, OLD.exclude_columns, OLD.redact_columns, true);
            END IF;
        ELSIF tenant_guard._citus_table(NEW.tbl) THEN
            PERFORM tenant_guard._citus_send_audited(NEW.tbl, NEW.exclude_columns, NEW.redact_columns, false);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_audited_copy() IS
    'Internal: copies a changed tenant_guard.audited_tables row of a Citus table to every Citus worker.';
REVOKE ALL ON FUNCTION tenant_guard._citus_audited_copy() FROM PUBLIC;
CREATE TRIGGER citus_audited_copy AFTER INSERT OR UPDATE OR DELETE ON tenant_guard.audited_tables
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._citus_audited_copy();

-- The registry rows of every audited Citus table onto every worker
-- (citus_sync(): after citus_add_node(), or for a table audited before
-- create_distributed_table()); returns how many.
CREATE FUNCTION tenant_guard._citus_sync_audited()
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a record;
    n integer := 0;
BEGIN
    FOR a IN SELECT t.tbl, t.exclude_columns, t.redact_columns FROM tenant_guard.audited_tables t ORDER BY t.tbl LOOP
        CONTINUE WHEN NOT tenant_guard._citus_table(a.tbl);
        PERFORM tenant_guard._citus_send_audited(a.tbl, a.exclude_columns, a.redact_columns, false);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION tenant_guard._citus_sync_audited() IS
    'Internal: writes the audited_tables row of every audited Citus table on every worker.';
REVOKE ALL ON FUNCTION tenant_guard._citus_sync_audited() FROM PUBLIC;

-- verify_audit() per node: this node's chain, and on a Citus coordinator
-- every worker's (each worker checks its own with _verify_audit_local(),
-- called as the extension owner). A worker that cannot be reached is a row
-- with ok = false. SECURITY DEFINER like verify_audit(); not for PUBLIC.
CREATE FUNCTION tenant_guard.verify_audit_nodes(org text DEFAULT NULL, since timestamptz DEFAULT NULL)
RETURNS TABLE (node text, ok boolean, records bigint, seals bigint, broken_id bigint, broken_at timestamptz,
               problem text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me text := 'local';
    w record;
    v record;
BEGIN
    IF tenant_guard._citus_coordinator() THEN
        EXECUTE 'SELECT nodename || '':'' || nodeport FROM pg_catalog.pg_dist_node WHERE groupid = 0 LIMIT 1' INTO me;
        me := coalesce(me, 'coordinator');
    END IF;
    -- this node first (checked here, so a bad argument is refused here)
    RETURN QUERY SELECT me, l.* FROM tenant_guard._verify_audit_local(org, since) l;
    IF NOT tenant_guard._citus_coordinator() THEN
        RETURN;
    END IF;
    FOR w IN EXECUTE 'SELECT nodename, nodeport, success, result FROM pg_catalog.run_command_on_workers($1) '
                     'ORDER BY nodename, nodeport'
        USING format('SELECT pg_catalog.to_jsonb(v)::text FROM tenant_guard._verify_audit_local(%L, %L) v', org, since)
    LOOP
        node := w.nodename || ':' || w.nodeport;
        IF w.success AND w.result IS NOT NULL THEN
            SELECT * INTO v FROM pg_catalog.jsonb_to_record(w.result::jsonb) AS x(ok boolean, records bigint,
                seals bigint, broken_id bigint, broken_at timestamptz, problem text);
            ok := v.ok; records := v.records; seals := v.seals;
            broken_id := v.broken_id; broken_at := v.broken_at; problem := v.problem;
        ELSE
            ok := false; records := NULL; seals := NULL; broken_id := NULL; broken_at := NULL;
            problem := 'could not be checked: ' || coalesce(w.result, 'no result');
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION tenant_guard.verify_audit_nodes(text, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard.verify_audit_nodes(text, timestamptz) IS
    'Checks the audit hash chains of this node and, on a Citus coordinator, of every worker: one row per node.';
