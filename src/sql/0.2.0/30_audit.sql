
-----------------------------------------------------------------------------
-- Audit log (docs/audit.md)
--
-- enable_audit() puts a C++ row trigger and a statement trigger on a table;
-- the row changes of each INSERT, UPDATE and DELETE statement (per table
-- and tenant) are written as one record into tenant_guard.audit_log, in the
-- same transaction, with before/after snapshots and the actor;
-- tenant_guard.audit_trail shows them one line per change. The log is
-- range-partitioned by month on the transaction start time, append-only,
-- readable per tenant by the in-tenant reader role, and hash-chained:
-- records per (transaction, tenant), the last one of each sealed at COMMIT
-- into one global chain of seals (src/pg/audit_fmgr.cpp explains why this
-- never serializes writers). purge_audit() drops whole partitions past the
-- retention and records what it dropped so verify_audit() still works.
-----------------------------------------------------------------------------

-- The impersonating support agent of the current context: support sessions
-- set it; the claim path is tenant_guard.impersonator_claim, default act.sub.
CREATE FUNCTION tenant_guard.current_impersonator()
RETURNS text
AS 'MODULE_PATHNAME', 'tg_current_impersonator'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard.current_impersonator() IS
    'Support agent acting as the user in the current context (actor claim act.sub by default), or NULL.';

CREATE SEQUENCE tenant_guard.audit_log_id_seq;
REVOKE ALL ON SEQUENCE tenant_guard.audit_log_id_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.audit_log_id_seq', '');

-- Column order matters: the record hash covers every column but `hash`, in
-- this order (tenant_guard._audit_hash).
CREATE TABLE tenant_guard.audit_log (
    id               bigint NOT NULL,
    xact_at          timestamptz NOT NULL,   -- transaction start: the partition key
    statement_at     timestamptz NOT NULL,
    xid              bigint NOT NULL,        -- epoch-qualified transaction id (txid_current)
    org              text,                   -- tenant id as text; NULL for platform events
    kind             text NOT NULL CHECK (kind IN ('rows', 'event', 'seal')),
    seq              bigint NOT NULL,        -- position in its (xid, org) chain (0 for seal rows)
    action           text NOT NULL,
    table_name       text,
    actor            text,
    impersonator     text,
    tenant_role      text,
    db_role          text NOT NULL,
    session_role     text NOT NULL,
    application_name text,
    row_count        integer NOT NULL CHECK (row_count >= 0),  -- row changes in `rows`
    rows             jsonb,                  -- kind 'rows': [{"pk", "new"} | {"pk", "old"} | {"pk", "old", "set", "changed"}, ...]
    detail           jsonb,
    prev_hash        bytea NOT NULL,
    seal_seq         bigint,                 -- the seal number, on the row that seals its chain
    seal_prev        bytea,                  -- hash of the row with seal number seal_seq - 1
    hash             bytea NOT NULL,
    -- kind 'rows' (INSERT, DELETE, UPDATE), with `rows` NULL: the row changes as
    -- binary row images (src/pg/audit_images.cpp), hashed in place of `rows`
    images           bytea
) PARTITION BY RANGE (xact_at);
-- A statement's row images are one large value: lz4 compresses it several
-- times faster than the default pglz (where the server has lz4).
DO $$
BEGIN
    ALTER TABLE tenant_guard.audit_log ALTER COLUMN rows SET COMPRESSION lz4;
    ALTER TABLE tenant_guard.audit_log ALTER COLUMN images SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$;
-- Each partition gets two indexes (each costs every audited write): a
-- tenant's records in order, and the seals (the commit-time seal reads the
-- last one). `id` comes from a sequence and is unique without an index.
-- They are created per partition by _audit_partition_for(), not on the
-- parent: partitions are not extension members, so pg_dump dumps them with
-- their indexes, and a parent index would make the restore create them twice.
COMMENT ON TABLE tenant_guard.audit_log IS
    'Append-only, hash-chained audit records (tenant_guard.enable_audit, audit_event); monthly partitions.';

-- Readable through row-level security only: the tenant wall, and the
-- in-tenant reader role (tenant_guard.audit_reader_role). Nobody but the
-- owner can write; the trigger writes as the owner. A platform auditor is a
-- role with BYPASSRLS (docs/audit.md).
REVOKE ALL ON tenant_guard.audit_log FROM PUBLIC;
GRANT SELECT ON tenant_guard.audit_log TO PUBLIC;
ALTER TABLE tenant_guard.audit_log ENABLE ROW LEVEL SECURITY;

CREATE FUNCTION tenant_guard._audit_is_reader()
RETURNS boolean
AS 'MODULE_PATHNAME', 'tg__audit_is_reader'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard._audit_is_reader() IS
    'Internal: the in-tenant role of the context is tenant_guard.audit_reader_role.';

CREATE POLICY tg_wall ON tenant_guard.audit_log AS RESTRICTIVE FOR SELECT TO PUBLIC
    USING (org = (SELECT tenant_guard.current_user_org_text())
           OR org = (SELECT tenant_guard.current_user_org_id())::text);
CREATE POLICY tg_audit_reader ON tenant_guard.audit_log AS PERMISSIVE FOR SELECT TO PUBLIC
    USING ((org = (SELECT tenant_guard.current_user_org_text())
            OR org = (SELECT tenant_guard.current_user_org_id())::text)
           AND (SELECT tenant_guard._audit_is_reader()));

-- Append-only: UPDATE, DELETE and TRUNCATE are refused for every role,
-- owner and superusers included. Old records leave only with whole
-- partitions, through purge_audit().
CREATE FUNCTION tenant_guard._audit_log_refuse()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'tenant_guard.audit_log is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'Audit records cannot be changed or removed, by any role.',
              HINT = 'Records older than tenant_guard.audit_retention are removed by tenant_guard.purge_audit().';
END
$$;
REVOKE ALL ON FUNCTION tenant_guard._audit_log_refuse() FROM PUBLIC;
CREATE TRIGGER tg_append_only BEFORE UPDATE OR DELETE ON tenant_guard.audit_log
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_log_refuse();
CREATE TRIGGER tg_append_only_truncate BEFORE TRUNCATE ON tenant_guard.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard._audit_log_refuse();

-- Creates the monthly partition holding `at` if it is missing (with its own
-- TRUNCATE guard: statement triggers are not inherited) and returns its
-- bounds. Months are UTC months. Called by enable_audit(), purge_audit() and
-- _audit_partitions_ahead() (which keep the next months ready), and by the
-- trigger as a safety net when a write lands in a month with no partition
-- (nobody ran the maintenance for months, the clock jumped): the record is
-- still written, in the writer's own transaction.
--
-- The partition is built as a table of its own and then attached: ATTACH
-- PARTITION takes only a SHARE UPDATE EXCLUSIVE lock on the log, which
-- readers and writers of the log do not wait for, whereas CREATE TABLE ...
-- PARTITION OF would take an ACCESS EXCLUSIVE lock and make every audited
-- write and every audit read of the database wait for the (application's)
-- creating transaction to end. Two transactions creating the same month
-- still wait for each other; the second finds the partition made.
CREATE FUNCTION tenant_guard._audit_partition_for(at timestamptz, OUT lo timestamptz, OUT hi timestamptz,
                                                  OUT part regclass)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name text;
BEGIN
    lo := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi := (date_trunc('month', at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name := 'audit_log_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMM');
    part := to_regclass(format('tenant_guard.%I', name));
    IF part IS NOT NULL THEN
        RETURN;
    END IF;
    BEGIN
        -- toast_tuple_target: a record whose compressed row images fit in a
        -- page stays in its row (one heap tuple, read with the record) instead
        -- of being moved out of line from about 2 kB on (a TOAST tuple and a
        -- TOAST index entry per record besides).
        -- (the largest value allowed: 8160 with 8 kB pages)
        EXECUTE format('CREATE TABLE tenant_guard.%I (LIKE tenant_guard.audit_log INCLUDING DEFAULTS '
                       'INCLUDING CONSTRAINTS INCLUDING COMPRESSION) WITH (toast_tuple_target = %s)', name,
                       pg_catalog.current_setting('block_size')::integer - 32);
        EXECUTE format('REVOKE ALL ON tenant_guard.%I FROM PUBLIC', name);
        EXECUTE format('CREATE INDEX %I ON tenant_guard.%I (org, id)', name || '_org_idx', name);
        EXECUTE format('CREATE INDEX %I ON tenant_guard.%I (seal_seq) WHERE seal_seq IS NOT NULL', name || '_seal_idx', name);
        EXECUTE format('CREATE TRIGGER tg_append_only_truncate BEFORE TRUNCATE ON tenant_guard.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION tenant_guard._audit_log_refuse()', name);
        EXECUTE format('ALTER TABLE tenant_guard.audit_log ATTACH PARTITION tenant_guard.%I FOR VALUES FROM (%L) TO (%L)',
                       name, lo, hi);
    EXCEPTION WHEN duplicate_table THEN
        NULL;  -- created meanwhile by another session
    END;
    part := format('tenant_guard.%I', name)::regclass;
END
$$;
REVOKE ALL ON FUNCTION tenant_guard._audit_partition_for(timestamptz) FROM PUBLIC;

-- Partitions for this month and the next three. Harmless for anyone to call
-- (enable_audit() runs with the caller's rights and calls it).
CREATE FUNCTION tenant_guard._audit_partitions_ahead()
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count((tenant_guard._audit_partition_for(pg_catalog.now() + pg_catalog.make_interval(months => m))).part)
    FROM pg_catalog.generate_series(0, 3) AS m;
$$;
COMMENT ON FUNCTION tenant_guard._audit_partitions_ahead() IS
    'Internal: creates the audit log partitions of this month and the next three.';

CREATE FUNCTION tenant_guard._audit_selftest_fail_commit()
RETURNS void
AS 'MODULE_PATHNAME', 'tg__audit_selftest_fail_commit'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_guard._audit_selftest_fail_commit() FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard._audit_selftest_fail_commit() IS
    'Internal, for the test suite: the current transaction''s COMMIT fails after its audit seals were chained.';

CREATE FUNCTION tenant_guard._audit_selftest_hash_states()
RETURNS integer
AS 'MODULE_PATHNAME', 'tg__audit_selftest_hash_states'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_guard._audit_selftest_hash_states() FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard._audit_selftest_hash_states() IS
    'Internal, for the test suite: how many held-back audit records of the current transaction have their hash begun.';

-- The record hash over the 21 hashed columns, `images` hashed in the place
-- of `rows` (verify_audit recomputes it).
CREATE FUNCTION tenant_guard._audit_hash(id bigint, xact_at timestamptz, statement_at timestamptz, xid bigint,
    org text, kind text, seq bigint, action text, table_name text, actor text, impersonator text,
    tenant_role text, db_role text, session_role text, application_name text, row_count integer, rows jsonb,
    detail jsonb, prev_hash bytea, seal_seq bigint, seal_prev bytea, images bytea DEFAULT NULL)
RETURNS bytea
AS 'MODULE_PATHNAME', 'tg__audit_hash'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard._audit_hash(bigint, timestamptz, timestamptz, bigint, text, text, bigint, text,
    text, text, text, text, text, text, text, integer, jsonb, jsonb, bytea, bigint, bytea, bytea) IS
    'Internal: SHA-256 of the canonical form of an audit record (every column but hash).';
-- Not for PUBLIC: verify_audit() (SECURITY DEFINER) is its caller. A tenant
-- reader sees seal_prev, the hash of a record of another tenant; with this
-- function it could confirm a guess of that whole record.
REVOKE ALL ON FUNCTION tenant_guard._audit_hash(bigint, timestamptz, timestamptz, bigint, text, text, bigint, text,
    text, text, text, text, text, text, text, integer, jsonb, jsonb, bytea, bigint, bytea, bytea) FROM PUBLIC;

-- The audit trail's lines that other nodes hold: on a Citus coordinator,
-- the records of the caller's tenant in each worker's own log (the audit
-- triggers of a distributed table's shards write there, docs/citus.md).
-- Empty everywhere else, after one catalog look-up. SECURITY DEFINER: it
-- reads the workers as the log's owner, but only for the tenant of the
-- caller's own context and only when that context is the tenant's reader
-- role (what the policies of audit_log let it read locally); the tenant id
-- is sent as a quoted literal. A worker that cannot be read is an error,
-- never a silently shorter trail.
CREATE FUNCTION tenant_guard._audit_remote_trail()
RETURNS TABLE (id bigint, item integer, xact_at timestamptz, statement_at timestamptz, xid bigint, org text,
               kind text, action text, table_name text, actor text, impersonator text, tenant_role text,
               db_role text, session_role text, application_name text, row_pk jsonb, old_row jsonb, new_row jsonb,
               changed_columns text[], detail jsonb, record_hash bytea, node text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 10
AS $$
DECLARE
    orgs text[];
    w record;
BEGIN
    IF NOT tenant_guard._citus_coordinator() THEN
        RETURN;
    END IF;
    orgs := array_remove(ARRAY[tenant_guard.current_user_org_text(), tenant_guard.current_user_org_id()::text], NULL);
    IF cardinality(orgs) = 0 OR NOT coalesce(tenant_guard._audit_is_reader(), false) THEN
        RETURN;
    END IF;
    FOR w IN EXECUTE 'SELECT nodename, nodeport, success, result FROM pg_catalog.run_command_on_workers($1) '
                     'ORDER BY nodename, nodeport'
        USING format('SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t) ORDER BY t.id, t.item), ''[]'')::text '
                     'FROM tenant_guard.audit_trail t WHERE t.node IS NULL AND t.org = ANY (%L::text[])', orgs)
    LOOP
        IF NOT w.success THEN
            RAISE EXCEPTION 'could not read the audit log of Citus worker %:%', w.nodename, w.nodeport
                USING ERRCODE = 'connection_failure', DETAIL = w.result,
                      HINT = 'Make sure tenant_guard is installed on every node.';
        END IF;
        RETURN QUERY
            SELECT r.id, r.item, r.xact_at, r.statement_at, r.xid, r.org, r.kind, r.action, r.table_name, r.actor,
                   r.impersonator, r.tenant_role, r.db_role, r.session_role, r.application_name, r.row_pk,
                   r.old_row, r.new_row, r.changed_columns, r.detail, r.record_hash, w.nodename || ':' || w.nodeport
            FROM pg_catalog.jsonb_to_recordset(w.result::jsonb) AS r(id bigint, item integer, xact_at timestamptz,
                statement_at timestamptz, xid bigint, org text, kind text, action text, table_name text,
                actor text, impersonator text, tenant_role text, db_role text, session_role text,
                application_name text, row_pk jsonb, old_row jsonb, new_row jsonb, changed_columns text[],
                detail jsonb, record_hash bytea)
            WHERE r.org = ANY (orgs);
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_guard._audit_remote_trail() IS
    'Internal: the audit trail lines of the caller''s tenant held by Citus workers (reader role only; empty elsewhere).';

-- The row changes of a record written as binary row images, as the jsonb
-- array `rows` would hold: read by key with the caller's rights (row-level
-- security applies; NULL for a record the caller cannot read), never from
-- bytes the caller passes.
CREATE FUNCTION tenant_guard._audit_images(id bigint, xact_at timestamptz, org text, hash bytea)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'tg__audit_images'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tenant_guard._audit_images(bigint, timestamptz, text, bytea) IS
    'Internal: the row changes of an audit record stored as binary row images, as jsonb (the caller''s rights).';
REVOKE ALL ON FUNCTION tenant_guard._audit_images(bigint, timestamptz, text, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_guard._audit_images(bigint, timestamptz, text, bytea) TO PUBLIC;

-- One line per row change or event, for people and exports: the row
-- changes of a statement record unnested. security_invoker: the reader sees
-- what row-level security on audit_log lets it see. `node` is NULL for this
-- node's records; on a Citus coordinator, the worker (host:port) of the
-- records its shards wrote (_audit_remote_trail()).
CREATE VIEW tenant_guard.audit_trail WITH (security_invoker = true) AS
SELECT l.id,
       coalesce(r.item, 1)::integer AS item,
       l.xact_at, l.statement_at, l.xid, l.org,
       CASE l.kind WHEN 'rows' THEN 'row' ELSE l.kind END AS kind,
       l.action, l.table_name, l.actor, l.impersonator, l.tenant_role, l.db_role, l.session_role,
       l.application_name,
       r.change -> 'pk' AS row_pk,
       r.change -> 'old' AS old_row,
       -- an UPDATE's record holds the changed columns' new values ("set");
       -- every other value of the after image equals the before image's
       CASE WHEN r.change ? 'set' THEN (r.change -> 'old') || (r.change -> 'set')
            ELSE r.change -> 'new' END AS new_row,
       CASE WHEN r.change ? 'changed'
            THEN ARRAY(SELECT pg_catalog.jsonb_array_elements_text(r.change -> 'changed')) END AS changed_columns,
       l.detail,
       l.hash AS record_hash,
       NULL::text AS node
FROM tenant_guard.audit_log l
LEFT JOIN LATERAL pg_catalog.jsonb_array_elements(
        CASE WHEN l.images IS NULL THEN l.rows
             ELSE tenant_guard._audit_images(l.id, l.xact_at, l.org, l.hash) END) WITH ORDINALITY AS r(change, item) ON true
WHERE l.kind <> 'seal'
UNION ALL
SELECT * FROM tenant_guard._audit_remote_trail();
COMMENT ON VIEW tenant_guard.audit_trail IS
    'The audit log one line per row change or event (a statement''s record unnested); row-level security applies.';
REVOKE ALL ON tenant_guard.audit_trail FROM PUBLIC;
GRANT SELECT ON tenant_guard.audit_trail TO PUBLIC;

-----------------------------------------------------------------------------
-- Turning audit on and off
-----------------------------------------------------------------------------

CREATE TABLE tenant_guard.audited_tables (
    tbl             regclass PRIMARY KEY,
    exclude_columns name[] NOT NULL DEFAULT '{}',
    redact_columns  name[] NOT NULL DEFAULT '{}',
    enabled_by      name NOT NULL DEFAULT current_user,
    enabled_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant_guard.audited_tables IS
    'Tables audited by tenant_guard.enable_audit(), with their excluded and redacted columns.';
SELECT pg_catalog.pg_extension_config_dump('tenant_guard.audited_tables', '');
SELECT tenant_guard._registry_acl('tenant_guard.audited_tables',
    'pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = tbl), ''USAGE'')');

CREATE FUNCTION tenant_guard._audit_capture()
RETURNS trigger
AS 'MODULE_PATHNAME', 'tg__audit_capture'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._audit_capture() IS
    'Internal: the statement triggers of audited tables and their partitions; read the transition tables and write the statement''s records (arguments x:<column> exclude, r:<column> redact).';

CREATE FUNCTION tenant_guard._audit_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'tg__audit_trigger'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._audit_trigger() IS
    'Internal: the row trigger of a table audited in row mode (arguments x:<column> exclude, r:<column> redact).';

CREATE FUNCTION tenant_guard._audit_flush()
RETURNS trigger
AS 'MODULE_PATHNAME', 'tg__audit_flush'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._audit_flush() IS
    'Internal: the statement trigger of a table audited in row mode and its partitions; writes the statement''s records.';

CREATE FUNCTION tenant_guard._audit_refuse_truncate()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'cannot truncate audited table %', TG_RELID::regclass
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = 'TRUNCATE removes rows without row triggers or row-level security, so no audit record could say which rows of which tenant were removed.',
              HINT = 'Use DELETE (every row is recorded), or call tenant_guard.disable_audit() first (that is recorded).';
END
$$;
COMMENT ON FUNCTION tenant_guard._audit_refuse_truncate() IS
    'Internal: refuses TRUNCATE of an audited table.';

-- The statement triggers of an audited table or partition (idempotent).
-- Statement capture (the usual mode): one trigger per event with its
-- transition tables (PostgreSQL allows them on single-event triggers only),
-- tg_audit_insert, tg_audit_update and tg_audit_delete, whose arguments are
-- the audited table's excluded (x:) and redacted (r:) columns. Row mode (the
-- table has the row trigger tg_audit, its own or its audited parent's): the
-- statement trigger tg_audit_flush writes what the row trigger gathered.
-- Either way the TRUNCATE guard tg_audit_truncate.
CREATE FUNCTION tenant_guard._audit_statement_triggers(rel regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    row_mode boolean := EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = 'tg_audit');
    args text;
    ev text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = 'tg_audit_truncate') THEN
        EXECUTE format('CREATE TRIGGER tg_audit_truncate BEFORE TRUNCATE ON %s FOR EACH STATEMENT '
                       'EXECUTE FUNCTION tenant_guard._audit_refuse_truncate()', rel);
    END IF;
    IF row_mode THEN
        FOR ev IN SELECT t.tgname FROM pg_trigger t
                  WHERE t.tgrelid = rel AND t.tgname IN ('tg_audit_insert', 'tg_audit_update', 'tg_audit_delete') LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', ev, rel);
        END LOOP;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = 'tg_audit_flush') THEN
            EXECUTE format('CREATE TRIGGER tg_audit_flush AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH STATEMENT '
                           'EXECUTE FUNCTION tenant_guard._audit_flush()', rel);
        END IF;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = 'tg_audit_flush') THEN
        EXECUTE format('DROP TRIGGER tg_audit_flush ON %s', rel);
    END IF;
    -- the arguments of the nearest audited table at or above rel
    SELECT (SELECT string_agg(quote_literal(a), ', ')
            FROM (SELECT 'x:' || x AS a FROM unnest(t.exclude_columns) x
                  UNION ALL SELECT 'r:' || x FROM unnest(t.redact_columns) x) s) INTO args
    FROM (SELECT rel AS relid, 0::bigint AS depth
          UNION ALL SELECT a.relid, a.depth FROM pg_partition_ancestors(rel) WITH ORDINALITY AS a(relid, depth)) p
    JOIN tenant_guard.audited_tables t ON t.tbl = p.relid
    ORDER BY p.depth LIMIT 1;
    FOREACH ev IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = 'tg_audit_' || ev) THEN
            EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT '
                           'EXECUTE FUNCTION tenant_guard._audit_capture(%s)',
                           'tg_audit_' || ev, upper(ev), rel,
                           CASE ev WHEN 'insert' THEN 'NEW TABLE AS tg_new'
                                   WHEN 'update' THEN 'OLD TABLE AS tg_old NEW TABLE AS tg_new'
                                   ELSE 'OLD TABLE AS tg_old' END,
                           coalesce(args, ''));
        END IF;
    END LOOP;
END
$$;
-- Executable by PUBLIC like enable_audit(), and for the event trigger below,
-- which runs as the role doing the DDL: CREATE TRIGGER checks that the
-- caller may put triggers on the table.
COMMENT ON FUNCTION tenant_guard._audit_statement_triggers(regclass) IS
    'Internal: creates the TRUNCATE guard and the record-writing statement triggers of an audited table or partition.';

CREATE FUNCTION tenant_guard.enable_audit(tbl regclass, exclude_columns name[] DEFAULT '{}',
                                          redact_columns name[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    col name;
    args text := '';
    part regclass;
    tg name;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    exclude_columns := coalesce(exclude_columns, '{}');
    redact_columns := coalesce(redact_columns, '{}');
    SELECT c.relkind, c.relpersistence, c.relowner, n.nspname INTO r
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    IF r.relpersistence = 't' THEN
        RAISE EXCEPTION 'cannot audit temporary table %', tbl USING ERRCODE = 'feature_not_supported';
    END IF;
    IF r.nspname IN ('pg_catalog', 'information_schema', 'tenant_guard') OR r.nspname LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'cannot audit %', tbl USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'System catalogs and tenant_guard''s own tables cannot be audited.';
    END IF;
    IF r.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT pg_has_role(r.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Citus: each placement of a shard runs the triggers, so a table whose
    -- shards have several (reference tables, statement replication) would
    -- record every change once per placement (docs/citus.md).
    IF tenant_guard._citus_replicated(tbl) THEN
        RAISE EXCEPTION 'cannot audit Citus table % whose shards have several placements', tbl
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Each placement would record every change of the table once.',
                  HINT = 'Audit distributed tables with one placement per shard; reference tables cannot be audited.';
    END IF;
    FOREACH col IN ARRAY exclude_columns || redact_columns LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = col
                       AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'table % has no column "%"', tbl, col USING ERRCODE = 'undefined_column';
        END IF;
        IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                   WHERE i.indrelid = tbl AND i.indisprimary AND a.attname = col) THEN
            RAISE EXCEPTION 'cannot exclude or redact primary key column "%" of %', col, tbl
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Every record names its row by the primary key.';
        END IF;
    END LOOP;
    IF exclude_columns && redact_columns THEN
        RAISE EXCEPTION 'a column cannot be both excluded and redacted' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(quote_literal(a), ', ') INTO args
    FROM (SELECT 'x:' || x AS a FROM unnest(exclude_columns) x
          UNION ALL SELECT 'r:' || x FROM unnest(redact_columns) x) s;
    PERFORM tenant_guard._audit_partitions_ahead();
    -- (first: the statement triggers take their arguments from it)
    INSERT INTO tenant_guard.audited_tables AS t (tbl, exclude_columns, redact_columns)
    VALUES (tbl, exclude_columns, redact_columns)
    ON CONFLICT ON CONSTRAINT audited_tables_pkey DO UPDATE
        SET exclude_columns = excluded.exclude_columns, redact_columns = excluded.redact_columns,
            enabled_by = current_user, enabled_at = pg_catalog.now();
    IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = tbl AND t.tgname = 'tg_audit') THEN
        EXECUTE format('DROP TRIGGER tg_audit ON %s', tbl);
    END IF;
    -- Row mode for a partition or inheritance child audited on its own: a
    -- statement on its parent fires no statement trigger of it, but its row
    -- triggers.
    IF EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = tbl) THEN
        EXECUTE format('CREATE TRIGGER tg_audit AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW '
                       'EXECUTE FUNCTION tenant_guard._audit_trigger(%s)', tbl, coalesce(args, ''));
    END IF;
    -- Statement triggers, on the table and on each partition (statement
    -- triggers are not inherited; partitions added later are covered by the
    -- event trigger below): TRUNCATE is refused, and each statement's rows
    -- are read from its transition tables when it ends (a statement that
    -- names a partition fires that partition's statement triggers only, a
    -- statement on the table only the table's, with the rows of every
    -- partition and inheritance child it changed).
    FOR part IN SELECT tbl UNION SELECT relid FROM pg_partition_tree(tbl) LOOP
        -- recreated, not kept: a trigger of that name may have been disabled
        FOR tg IN SELECT g.tgname FROM pg_trigger g
                  WHERE g.tgrelid = part AND g.tgname IN ('tg_audit_truncate', 'tg_audit_flush', 'tg_audit_insert',
                                                          'tg_audit_update', 'tg_audit_delete') LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', tg, part);
        END LOOP;
        PERFORM tenant_guard._audit_statement_triggers(part);
    END LOOP;
END
$$;
COMMENT ON FUNCTION tenant_guard.enable_audit(regclass, name[], name[]) IS
    'Records every INSERT, UPDATE and DELETE of the table in tenant_guard.audit_log (excluded columns left out, redacted ones masked).';

CREATE FUNCTION tenant_guard.disable_audit(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part regclass;
    tg name;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenant_guard.audited_tables a WHERE a.tbl = disable_audit.tbl) THEN
        RAISE EXCEPTION 'table % is not audited by tenant_guard', tbl USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = tbl), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', tbl USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = tbl AND t.tgname = 'tg_audit') THEN
        EXECUTE format('DROP TRIGGER tg_audit ON %s', tbl);
    END IF;
    FOR part, tg IN SELECT t.tgrelid::regclass, t.tgname
                    FROM (SELECT tbl AS relid UNION SELECT relid FROM pg_partition_tree(tbl)) p
                    JOIN pg_trigger t ON t.tgrelid = p.relid
                     AND t.tgname IN ('tg_audit_truncate', 'tg_audit_flush', 'tg_audit_insert', 'tg_audit_update',
                                      'tg_audit_delete') LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', tg, part);
    END LOOP;
    DELETE FROM tenant_guard.audited_tables a WHERE a.tbl = disable_audit.tbl;
END
$$;
COMMENT ON FUNCTION tenant_guard.disable_audit(regclass) IS 'Stops auditing a table (recorded in the log).';

-- New partitions of an audited table get its statement triggers too; dropped
-- audited tables leave the registry. row_security is pinned on: the event
-- trigger reads audited_tables, which has row-level security, with the
-- caller's rights (05_event_triggers.sql says why).
CREATE FUNCTION tenant_guard._audit_on_ddl()
RETURNS event_trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET row_security = on
AS $$
DECLARE
    rel regclass;
    tg name;
    part regclass;
BEGIN
    -- Only commands that add partitions: CREATE TABLE ... PARTITION OF
    -- (names the new partition) and ALTER TABLE ... ATTACH PARTITION (names
    -- the parent: the tree below it). Other commands are left alone, so the
    -- post-data commands of a restore do not create triggers the dump
    -- creates itself.
    FOR rel IN
        SELECT DISTINCT t.relid::regclass FROM pg_event_trigger_ddl_commands() d
        JOIN pg_class c ON c.oid = d.objid AND d.classid = 'pg_class'::regclass AND c.relkind IN ('r', 'p')
        CROSS JOIN LATERAL pg_partition_tree(d.objid) t
        WHERE ((d.command_tag = 'CREATE TABLE' AND c.relispartition)
               OR (d.command_tag = 'ALTER TABLE'
                   AND 'attach partition' = ANY (tenant_guard._ddl_command_kinds(d.command))))
          AND EXISTS (SELECT 1 FROM tenant_guard.audited_tables a, pg_partition_ancestors(t.relid) p
                      WHERE p.relid = a.tbl)
          AND (NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = t.relid AND g.tgname = 'tg_audit_truncate')
               OR NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = t.relid
                              AND g.tgname IN ('tg_audit_flush', 'tg_audit_insert')))
    LOOP
        PERFORM tenant_guard._audit_statement_triggers(rel);
    END LOOP;
    -- An audited table that became a partition (ATTACH PARTITION) or an
    -- inheritance child (INHERIT) of a table not audited with it: a
    -- statement on that parent fires none of its statement triggers, so it
    -- goes to row mode (the row trigger, and tg_audit_flush instead of the
    -- capture triggers on it and its partitions).
    FOR rel IN
        SELECT DISTINCT a.tbl::regclass FROM pg_event_trigger_ddl_commands() d
        CROSS JOIN LATERAL (SELECT d.objid::regclass AS relid UNION SELECT relid FROM pg_partition_tree(d.objid)) t
        JOIN tenant_guard.audited_tables a ON a.tbl = t.relid
        WHERE d.command_tag = 'ALTER TABLE' AND d.classid = 'pg_class'::regclass
          AND EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = a.tbl)
          AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = a.tbl AND g.tgname = 'tg_audit')
          AND NOT EXISTS (SELECT 1 FROM pg_partition_ancestors(a.tbl) p JOIN tenant_guard.audited_tables b
                          ON b.tbl = p.relid AND p.relid <> a.tbl)
    LOOP
        EXECUTE format('CREATE TRIGGER tg_audit AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW '
                       'EXECUTE FUNCTION tenant_guard._audit_trigger(%s)', rel,
                       coalesce((SELECT string_agg(quote_literal(x), ', ')
                                 FROM (SELECT 'x:' || c AS x FROM tenant_guard.audited_tables a, unnest(a.exclude_columns) c
                                       WHERE a.tbl = rel
                                       UNION ALL SELECT 'r:' || c FROM tenant_guard.audited_tables a, unnest(a.redact_columns) c
                                       WHERE a.tbl = rel) s), ''));
        FOR part IN SELECT rel UNION SELECT relid FROM pg_partition_tree(rel) LOOP
            PERFORM tenant_guard._audit_statement_triggers(part);
        END LOOP;
    END LOOP;
    -- DETACH PARTITION: a table of the caller's that is no longer in an
    -- audited tree loses the statement triggers (PostgreSQL drops the cloned
    -- row trigger itself).
    IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() d
               WHERE d.command_tag = 'ALTER TABLE' AND d.classid = 'pg_class'::regclass
                 AND 'detach partition' = ANY (tenant_guard._ddl_command_kinds(d.command))) THEN
        FOR rel, tg IN
            SELECT g.tgrelid::regclass, g.tgname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
            WHERE g.tgname IN ('tg_audit_truncate', 'tg_audit_flush', 'tg_audit_insert', 'tg_audit_update',
                               'tg_audit_delete') AND NOT c.relispartition
              AND pg_has_role(c.relowner, 'USAGE')
              AND NOT EXISTS (SELECT 1 FROM tenant_guard.audited_tables a WHERE a.tbl = g.tgrelid)
        LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', tg, rel);
        END LOOP;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION tenant_guard._audit_on_ddl() FROM PUBLIC;
CREATE EVENT TRIGGER tenant_guard_audit_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION tenant_guard._audit_on_ddl();

CREATE FUNCTION tenant_guard._audit_on_drop()
RETURNS event_trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tenant_guard.audited_tables a
    USING pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.objid = a.tbl::oid;
END
$$;
REVOKE ALL ON FUNCTION tenant_guard._audit_on_drop() FROM PUBLIC;
CREATE EVENT TRIGGER tenant_guard_audit_drop ON sql_drop EXECUTE FUNCTION tenant_guard._audit_on_drop();

-----------------------------------------------------------------------------
-- Events
-----------------------------------------------------------------------------

-- Application events, attributed like row changes. Granted to PUBLIC: a
-- caller can only write records attributed to its own context.
CREATE FUNCTION tenant_guard.audit_event(action text, detail jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'tg_audit_event'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard.audit_event(text, jsonb) IS
    'Writes an application event (e.g. member.role_changed) into the audit log for the current tenant; returns its id.';

-- For tenant_guard's own features (key rotation, shredding, ...): any org,
-- actions under the reserved "tenant_guard." prefix. Not for PUBLIC.
CREATE FUNCTION tenant_guard._audit_write_event(org text, action text, detail jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'tg__audit_write_event'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_guard._audit_write_event(text, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard._audit_write_event(text, text, jsonb) IS
    'Internal: writes an event of tenant_guard itself for any org (NULL: platform event); returns its id.';

-- tenant_guard's own events, from its registries (a C trigger: it writes as
-- the log owner but keeps the caller's roles in the record). Rows restored
-- by pg_restore carry their original timestamps and write no event.
CREATE FUNCTION tenant_guard._audit_registry_event()
RETURNS trigger
AS 'MODULE_PATHNAME', 'tg__audit_registry_event'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tenant_guard._audit_registry_event() IS
    'Internal: writes tenant_guard.<verb> events for changes of tenant_guard''s registries.';
REVOKE ALL ON FUNCTION tenant_guard._audit_registry_event() FROM PUBLIC;
CREATE TRIGGER tg_audit_event AFTER INSERT OR UPDATE OR DELETE ON tenant_guard.protected_tables
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_registry_event();
CREATE TRIGGER tg_audit_event AFTER INSERT OR UPDATE OR DELETE ON tenant_guard.access_rules
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_registry_event();
CREATE TRIGGER tg_audit_event AFTER INSERT OR UPDATE OR DELETE ON tenant_guard.exemptions
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_registry_event();
CREATE TRIGGER tg_audit_event AFTER INSERT OR UPDATE OR DELETE ON tenant_guard.guarded_schemas
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_registry_event();
CREATE TRIGGER tg_audit_event AFTER INSERT ON tenant_guard.unsafe_ddl_log
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_registry_event();
CREATE TRIGGER tg_audit_event AFTER INSERT OR UPDATE OR DELETE ON tenant_guard.audited_tables
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_registry_event();

-----------------------------------------------------------------------------
-- Verification, retention, export
-----------------------------------------------------------------------------

-- Reports the first broken link of this node's log (one row): ok, how many
-- records and seals were checked, and for a break the record id, its time
-- and what is wrong. SECURITY DEFINER: it reads every seal (they hold hashes
-- and counts, no tenant data); granted to nobody by default (docs/audit.md:
-- auditor role). verify_audit() calls it for this node and, on a Citus
-- coordinator, on every worker (verify_audit_nodes(), 59_citus_audit.sql).
-- This node's check (src/pg/audit_verify.cpp): two ordered passes over the
-- log, the global seal chain in seal number order and the tenant chains in
-- (xid, org, seq, id) order, each record's hash recomputed once; the first
-- broken link is the problem of the lowest id. org: only that tenant's
-- records (and the seal rows of its transactions); since: only records of
-- transactions from then on, and the seal chain from the first seal of
-- such a transaction on.
CREATE FUNCTION tenant_guard._verify_audit_local(org text DEFAULT NULL, since timestamptz DEFAULT NULL)
RETURNS TABLE (ok boolean, records bigint, seals bigint, broken_id bigint, broken_at timestamptz, problem text)
AS 'MODULE_PATHNAME', 'tg__verify_audit_local'
LANGUAGE C STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 1;
REVOKE ALL ON FUNCTION tenant_guard._verify_audit_local(text, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard._verify_audit_local(text, timestamptz) IS
    'Internal: checks this node''s audit hash chains (of one org, from a time on); the first broken link.';

-- The first broken link of every node's log: this node's, and on a Citus
-- coordinator every worker's too (each keeps its own chain), summed up in
-- one row; a break names its node. verify_audit_nodes() has a row per node.
CREATE FUNCTION tenant_guard.verify_audit(org text DEFAULT NULL, since timestamptz DEFAULT NULL)
RETURNS TABLE (ok boolean, records bigint, seals bigint, broken_id bigint, broken_at timestamptz, problem text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT tenant_guard._citus_coordinator() THEN
        RETURN QUERY SELECT * FROM tenant_guard._verify_audit_local(org, since);
        RETURN;
    END IF;
    RETURN QUERY
        SELECT bool_and(n.ok), sum(n.records)::bigint, sum(n.seals)::bigint,
               (array_agg(n.broken_id ORDER BY n.pos) FILTER (WHERE NOT n.ok))[1],
               (array_agg(n.broken_at ORDER BY n.pos) FILTER (WHERE NOT n.ok))[1],
               (array_agg('on ' || n.node || ': ' || n.problem ORDER BY n.pos) FILTER (WHERE NOT n.ok))[1]
        FROM tenant_guard.verify_audit_nodes(org, since) WITH ORDINALITY AS n(node, ok, records, seals, broken_id,
                                                                             broken_at, problem, pos);
END
$$;
REVOKE ALL ON FUNCTION tenant_guard.verify_audit(text, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard.verify_audit(text, timestamptz) IS
    'Checks the audit hash chains (of one org, from a time on; on a Citus coordinator of every node) and reports the first broken link.';

-- Drops whole monthly partitions older than tenant_guard.audit_retention and
-- records the purge (range, row count, final seal) as an event, so
-- verify_audit() can link the first remaining seal to the purged ones.
CREATE FUNCTION tenant_guard.purge_audit()
RETURNS TABLE (partition_name text, from_ts timestamptz, to_ts timestamptz, row_count bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    horizon timestamptz;
    p record;
    n bigint;
    total bigint := 0;
    lo timestamptz;
    hi timestamptz;
    names text[] := '{}';
    purged regclass[] := '{}';
    links jsonb;
    last record;
BEGIN
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE EXCEPTION 'cannot purge the audit log on a standby' USING ERRCODE = 'read_only_sql_transaction',
            HINT = 'Run tenant_guard.purge_audit() on the primary; the standby replays what it drops.';
    END IF;
    horizon := pg_catalog.now() - pg_catalog.current_setting('tenant_guard.audit_retention')::interval;
    PERFORM tenant_guard._audit_partitions_ahead();
    FOR p IN
        SELECT c.oid::regclass AS rel, c.relname::text AS name,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)')) AS b
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'tenant_guard.audit_log'::regclass
        ORDER BY 2
    LOOP
        CONTINUE WHEN p.b IS NULL OR p.b[2]::timestamptz > horizon;
        purged := purged || p.rel;
        names := names || p.name;
        lo := least(lo, p.b[1]::timestamptz);
        hi := greatest(hi, p.b[2]::timestamptz);
    END LOOP;
    IF cardinality(purged) = 0 THEN
        RETURN;
    END IF;
    -- The purged seals that a remaining seal links to, and the last purged seal.
    SELECT jsonb_agg(jsonb_build_object('seq', s.seal_seq, 'hash', encode(s.hash, 'hex')) ORDER BY s.seal_seq) INTO links
    FROM tenant_guard.audit_log s
    WHERE s.seal_seq IS NOT NULL AND s.tableoid = ANY (purged)
      AND EXISTS (SELECT 1 FROM tenant_guard.audit_log x WHERE x.seal_seq = s.seal_seq + 1
                  AND x.tableoid <> ALL (purged));
    SELECT s.seal_seq AS seq, encode(s.hash, 'hex') AS hash INTO last
    FROM tenant_guard.audit_log s WHERE s.seal_seq IS NOT NULL AND s.tableoid = ANY (purged)
    ORDER BY s.seal_seq DESC LIMIT 1;
    FOR i IN 1 .. cardinality(purged) LOOP
        EXECUTE format('SELECT count(*) FROM %s', purged[i]) INTO n;
        total := total + n;
        partition_name := names[i];
        from_ts := (regexp_match(pg_get_expr((SELECT relpartbound FROM pg_class WHERE oid = purged[i]), purged[i]),
                                 'FROM \(''([^'']+)''\)'))[1]::timestamptz;
        to_ts := (regexp_match(pg_get_expr((SELECT relpartbound FROM pg_class WHERE oid = purged[i]), purged[i]),
                               'TO \(''([^'']+)''\)'))[1]::timestamptz;
        row_count := n;
        RETURN NEXT;
    END LOOP;
    FOR i IN 1 .. cardinality(purged) LOOP
        EXECUTE format('ALTER TABLE tenant_guard.audit_log DETACH PARTITION %s', purged[i]);
        EXECUTE format('DROP TABLE %s', purged[i]);
    END LOOP;
    PERFORM tenant_guard._audit_write_event(NULL, 'tenant_guard.audit_purge', jsonb_build_object(
        'from', lo, 'to', hi, 'partitions', to_jsonb(names), 'rows', total,
        'retention', pg_catalog.current_setting('tenant_guard.audit_retention'),
        'last_seal_seq', last.seq, 'last_seal_hash', last.hash, 'links', coalesce(links, '[]')));
END
$$;
REVOKE ALL ON FUNCTION tenant_guard.purge_audit() FROM PUBLIC;
COMMENT ON FUNCTION tenant_guard.purge_audit() IS
    'Drops audit log partitions older than tenant_guard.audit_retention, creates the coming ones, records the purge.';

CREATE FUNCTION tenant_guard._csv_line(fields text[])
RETURNS text
AS 'MODULE_PATHNAME', 'tg__csv_line'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tenant_guard._csv_line(text[]) IS
    'Internal: one RFC 4180 CSV line (NULL elements as empty unquoted fields).';

-- The records of one org (NULL: every org the caller may read) between two
-- statement times, as CSV lines, header first. SECURITY INVOKER: the caller
-- sees what row-level security lets it see (its own tenant as reader role,
-- everything as platform auditor).
CREATE FUNCTION tenant_guard.audit_csv(org text, from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o text := tenant_guard._tenant_key(org, false);
BEGIN
    RETURN NEXT tenant_guard._csv_line(ARRAY['id', 'item', 'statement_at', 'org', 'kind', 'action', 'table_name',
        'actor', 'impersonator', 'tenant_role', 'db_role', 'session_role', 'application_name', 'row_pk', 'old_row',
        'new_row', 'changed_columns', 'detail', 'xid', 'record_hash']);
    RETURN QUERY
        SELECT tenant_guard._csv_line(ARRAY[l.id::text, l.item::text,
                   to_char(l.statement_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), l.org, l.kind,
                   l.action, l.table_name, l.actor, l.impersonator, l.tenant_role, l.db_role, l.session_role,
                   l.application_name, l.row_pk::text, l.old_row::text, l.new_row::text,
                   array_to_string(l.changed_columns, ' '), l.detail::text, l.xid::text, encode(l.record_hash, 'hex')])
        FROM tenant_guard.audit_trail l
        WHERE (o IS NULL OR l.org = o)
          AND l.statement_at >= from_ts AND l.statement_at < to_ts AND l.xact_at < to_ts
        ORDER BY l.id, l.item;
END
$$;
COMMENT ON FUNCTION tenant_guard.audit_csv(text, timestamptz, timestamptz) IS
    'The audit trail of one org in [from_ts, to_ts) as RFC 4180 CSV lines (one per row change or event), header first.';

-- Events of the features built alongside audit: application-role
-- registrations (lint, src/sql/0.2.0/10_app_roles.sql) and key lifecycle
-- events of column encryption (tenant_guard.key_events, written to the key's
-- tenant as tenant_guard.key_created / key_rotated / key_shredded /
-- key_rewrapped).
CREATE TRIGGER tg_audit_event AFTER INSERT OR UPDATE OR DELETE ON tenant_guard.app_roles
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_registry_event();
CREATE TRIGGER tg_audit_event AFTER INSERT ON tenant_guard.key_events
    FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_registry_event();
