-----------------------------------------------------------------------------
-- The attack grid: attack_grid() runs cross-tenant attacks as an application
-- role against every protected table and reports, per table and vector,
-- whether the attack was blocked, leaked, is a residual channel PostgreSQL
-- itself cannot close, or was skipped (and why). assert_isolated() raises
-- when any vector leaks. docs/attack-grid.md documents every vector.
--
-- Every attempt runs in its own subtransaction that is always rolled back
-- (it ends by raising a private sentinel, SQLSTATE TGZ99); the results live
-- in PL/pgSQL variables, which survive the rollback. The whole run, seeding
-- included, is wrapped in one more block that is rolled back too, so the grid
-- leaves no row, setting or lock of its own behind, even on error. A cancel
-- (57014) is not caught and aborts the caller's transaction.
--
-- Internal helpers start with _grid_ and are revoked from PUBLIC; everything
-- is SECURITY INVOKER: only a superuser can run the grid (it must bypass
-- row-level security to know the truth, and set the superuser-only
-- tenant_guard.context_source).
-----------------------------------------------------------------------------

-- One attempt, always rolled back. As the superuser: set the tenant context
-- (source, tenant_guard.org_id, request.jwt.claims; a verified context is
-- cleared), lock_timeout, then SET ROLE app_role; as app_role: run the setup
-- statements, then stmt. mode: 'value' (stmt returns one bigint), 'rows'
-- (GET DIAGNOSTICS ROW_COUNT), 'json' (stmt returns one json value).
CREATE FUNCTION tenant_guard._grid_attempt(app_role regrole, source text, org text, in_role text, scopes text,
                                           claims text, setup text[],
                                           stmt text, mode text, lock_ms integer,
                                           OUT n bigint, OUT err_state text, OUT err_message text,
                                           OUT err_constraint text, OUT result jsonb)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text;
BEGIN
    BEGIN
        PERFORM set_config('tenant_guard.signed_context', '', true);
        PERFORM set_config('tenant_guard.context_source', source, true);
        PERFORM set_config('tenant_guard.org_id', coalesce(org, ''), true);
        PERFORM set_config('tenant_guard.user_id', '', true);
        PERFORM set_config('tenant_guard.role', coalesce(in_role, ''), true);
        PERFORM set_config('tenant_guard.scopes', coalesce(scopes, ''), true);
        PERFORM set_config('request.jwt.claims', coalesce(claims, ''), true);
        PERFORM set_config('row_security', 'on', true);
        PERFORM set_config('lock_timeout', lock_ms::text, true);
        PERFORM set_config('role', (SELECT r.rolname FROM pg_roles r WHERE r.oid = app_role), true);
        FOREACH s IN ARRAY coalesce(setup, '{}') LOOP
            EXECUTE s;
        END LOOP;
        IF mode = 'value' THEN
            EXECUTE stmt INTO n;
        ELSIF mode = 'json' THEN
            EXECUTE stmt INTO result;
        ELSE
            EXECUTE stmt;
            GET DIAGNOSTICS n = ROW_COUNT;
        END IF;
        RAISE EXCEPTION 'attack grid sentinel' USING ERRCODE = 'TGZ99';
    EXCEPTION
        WHEN SQLSTATE 'TGZ99' THEN
            NULL;
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT,
                                    err_constraint = CONSTRAINT_NAME;
    END;
END
$$;

-- The outcome of an attempt: {outcome, detail}. kind 'read': rows seen are a
-- leak; 'write': rows written are a leak, and so is a constraint error (23xxx),
-- because PostgreSQL checks row-level security (WITH CHECK) before NOT NULL,
-- CHECK, unique and foreign key constraints: the row got past the policies.
CREATE FUNCTION tenant_guard._grid_judge(kind text, n bigint, err_state text, err_message text,
                                         leak_text text, blocked_text text)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN err_state IS NULL AND coalesce(n, 0) > 0 THEN ARRAY['leak', replace(leak_text, '%n', n::text)]
        WHEN err_state IS NULL THEN ARRAY['blocked', blocked_text]
        WHEN err_state = '42501' THEN ARRAY['blocked', 'refused: ' || err_message]
        WHEN kind = 'write' AND err_state LIKE '23%' THEN
            ARRAY['leak', 'row-level security let the row of tenant B through; only a constraint stopped it: '
                          || err_message]
        ELSE ARRAY['skipped', format('could not decide: %s (SQLSTATE %s)', err_message, err_state)]
    END
$$;

-- The worse of two outcomes (leak > residual > blocked > skipped).
CREATE FUNCTION tenant_guard._grid_worse(a text[], b text[])
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a
                WHEN array_position(ARRAY['skipped', 'blocked', 'residual', 'leak'], b[1])
                     > array_position(ARRAY['skipped', 'blocked', 'residual', 'leak'], a[1]) THEN b
                ELSE a END
$$;

-- Columns of rel an INSERT may name (not generated; identity ALWAYS only
-- when with_identity), restricted to the keys of template when given.
CREATE FUNCTION tenant_guard._grid_columns(rel regclass, template jsonb, with_identity boolean)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
    FROM pg_attribute a
    WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      AND (with_identity OR a.attidentity <> 'a')
      AND (template IS NULL OR template ? a.attname)
$$;

-- INSERT INTO rel (cols) SELECT cols FROM jsonb_populate_record(NULL::rel, row) [suffix].
CREATE FUNCTION tenant_guard._grid_insert(rel regclass, row_value jsonb, with_identity boolean, suffix text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text := tenant_guard._grid_columns(rel, row_value, with_identity);
    overriding text := CASE WHEN with_identity AND EXISTS (
                                SELECT 1 FROM pg_attribute a WHERE a.attrelid = rel AND a.attidentity = 'a'
                                  AND NOT a.attisdropped AND row_value ? a.attname)
                            THEN ' OVERRIDING SYSTEM VALUE' ELSE '' END;
BEGIN
    RETURN format('INSERT INTO %s (%s)%s SELECT %s FROM pg_catalog.jsonb_populate_record(NULL::%s, %L::jsonb) '
                  'WHERE true %s', rel, cols, overriding, cols, rel, row_value, coalesce(suffix, ''));
END
$$;

-- A row of rel (read as the superuser) whose column col equals val, or any
-- row when val is NULL; NULL when there is none.
CREATE FUNCTION tenant_guard._grid_row(rel regclass, col name, val text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r jsonb;
BEGIN
    IF val IS NULL THEN
        EXECUTE format('SELECT pg_catalog.to_jsonb(x) FROM %s x LIMIT 1', rel) INTO r;
    ELSE
        EXECUTE format('SELECT pg_catalog.to_jsonb(x) FROM %s x WHERE x.%I = %L LIMIT 1', rel, col, val) INTO r;
    END IF;
    RETURN r;
END
$$;

-- template without the columns that have a default and belong to a unique
-- index (serial keys, uuid keys): a copy of an existing row then gets fresh
-- values for them instead of a unique violation.
CREATE FUNCTION tenant_guard._grid_fresh(rel regclass, template jsonb)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT template - coalesce(ARRAY(
        SELECT a.attname::text FROM pg_attribute a
        WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
          AND (a.atthasdef OR a.attidentity <> '')
          AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = rel AND i.indisunique AND a.attnum = ANY (i.indkey))),
        '{}')
$$;

-- Relations (views, materialized views) whose rewrite rules read rel,
-- directly or through other views.
CREATE FUNCTION tenant_guard._grid_dependent_views(rel regclass)
RETURNS TABLE (view regclass, relkind "char")
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE v(oid) AS (
        SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = rel
          AND r.ev_class <> rel
        UNION
        SELECT r.ev_class FROM v JOIN pg_depend d ON d.refobjid = v.oid AND d.refclassid = 'pg_class'::regclass
        JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
        WHERE r.ev_class <> v.oid)
    SELECT c.oid::regclass, c.relkind FROM v JOIN pg_class c ON c.oid = v.oid
    WHERE c.relkind IN ('v', 'm')
    ORDER BY c.oid::regclass::text
$$;

-- The in-tenant part of tenant A's context for attacks on rel: the strongest
-- in-tenant user. With allow() rules, the in-tenant role allowed the most
-- commands, with every scope value of the table (an attacker signs in with
-- the best account it can get); without rules, none is needed.
CREATE FUNCTION tenant_guard._grid_context(rel regclass, OUT in_role text, OUT scopes text)
RETURNS record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    root regclass := coalesce((SELECT p.parent FROM tenant_guard.protected_tables p WHERE p.tbl = rel), rel);
    x record;
    scope_values jsonb;
BEGIN
    SELECT r.role INTO in_role FROM tenant_guard.access_rules r WHERE r.tbl = root
    GROUP BY r.role ORDER BY count(*) DESC, count(r.scope_column), r.role LIMIT 1;
    FOR x IN SELECT DISTINCT r.scope_column, r.scope_kind FROM tenant_guard.access_rules r
             WHERE r.tbl = root AND r.role = in_role AND r.scope_column IS NOT NULL
             ORDER BY r.scope_kind LOOP
        EXECUTE format('SELECT pg_catalog.to_jsonb(ARRAY(SELECT DISTINCT %I::text FROM %s WHERE %I IS NOT NULL '
                       'ORDER BY 1 LIMIT 1000))', x.scope_column, rel, x.scope_column) INTO scope_values;
        scopes := (coalesce(scopes::jsonb, '{}'::jsonb) || jsonb_build_object(x.scope_kind, scope_values))::text;
    END LOOP;
END
$$;

-- Every vector against one table. a, b: the two tenants as text; src: the
-- configured context source (for the context vectors).
CREATE FUNCTION tenant_guard._grid_table(app_role regrole, t regclass, tc name, a text, b text, src text,
                                         lock_ms integer)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ghost constant text := 'ffffffff-ffff-4fff-bfff-ffffffffffff';
    no_b constant text := 'tenant B has no rows in this table; pass seed => true';
    q text := t::text;
    c text := quote_ident(tc);
    la text := quote_literal(a);
    lb text := quote_literal(b);
    rel record;
    has_a boolean;
    has_b boolean;
    has_other boolean;
    has_any boolean;
    row_b jsonb;
    row_a jsonb;
    row_any jsonb;
    plant jsonb;
    uc text;
    res record;
    j text[];
    j2 text[];
    stmt text;
    x record;
    y record;
    found_any boolean;
    count_b text;
    claim_path text[];
    claims_b jsonb;
    token text;
    arbiter record;
    r_tmpl jsonb;
    r_tc name;
    ctx_role text;
    ctx_scopes text;
    rls_applies boolean;
    baseline bigint;
    tbl_name name;
    not_preloaded constant text := ' (tenant_guard is not in shared_preload_libraries, so its guard is not active)';
BEGIN
    SELECT c.in_role, c.scopes INTO ctx_role, ctx_scopes FROM tenant_guard._grid_context(t) c;
    SELECT cl.relowner::regrole AS owner, (SELECT o.rolname FROM pg_roles o WHERE o.oid = cl.relowner) AS owner_name,
           cl.relforcerowsecurity AS force, cl.relrowsecurity AS rls, cl.relkind
    INTO rel FROM pg_class cl WHERE cl.oid = t;
    EXECUTE format('SELECT EXISTS (SELECT FROM %s WHERE %s = %s), EXISTS (SELECT FROM %s WHERE %s = %s), '
                   'EXISTS (SELECT FROM %s WHERE %s IS DISTINCT FROM %s), EXISTS (SELECT FROM %s)',
                   q, c, la, q, c, lb, q, c, la, q)
        INTO has_a, has_b, has_other, has_any;
    row_b := tenant_guard._grid_row(t, tc, b);
    row_a := tenant_guard._grid_row(t, tc, a);
    row_any := tenant_guard._grid_row(t, tc, NULL);
    plant := coalesce(row_b, row_a, row_any, '{}'::jsonb) || jsonb_build_object(tc, b);
    -- the column an UPDATE sets to itself: one app_role may update, not the tenant column
    SELECT quote_ident(at.attname) INTO uc FROM pg_attribute at
    WHERE at.attrelid = t AND at.attnum > 0 AND NOT at.attisdropped AND at.attgenerated = ''
      AND at.attidentity <> 'a' AND at.attname <> tc
    ORDER BY has_column_privilege(app_role, t, at.attnum, 'UPDATE') DESC, at.attnum LIMIT 1;
    uc := coalesce(uc, c);
    count_b := format('SELECT count(*) FROM (SELECT FROM %s WHERE %s = %s LIMIT 100) s', q, c, lb);

    ---------------------------------------------------------------- reads
    vector := 'read_other_tenant';
    IF NOT has_b THEN
        outcome := 'skipped'; detail := no_b;
    ELSE
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL, count_b, 'value', lock_ms);
        j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
                                      'tenant A read %n row(s) of tenant B', 'no row of tenant B was visible');
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;

    vector := 'read_unfiltered';
    IF NOT has_other THEN
        outcome := 'skipped'; detail := 'no rows of another tenant than A in this table; pass seed => true';
    ELSE
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
            format('SELECT count(*) FROM (SELECT FROM %s WHERE %s IS DISTINCT FROM %s LIMIT 100) s', q, c, la),
            'value', lock_ms);
        j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
                                      'an unfiltered read as tenant A returned %n row(s) of other tenants',
                                      'an unfiltered read returned only rows of tenant A');
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;

    vector := 'read_for_update';
    IF NOT has_b THEN
        outcome := 'skipped'; detail := no_b;
    ELSE
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
            format('SELECT count(*) FROM (SELECT FROM %s WHERE %s = %s LIMIT 100 FOR UPDATE) s', q, c, lb),
            'value', lock_ms);
        j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
                                      'SELECT ... FOR UPDATE locked %n row(s) of tenant B',
                                      'SELECT ... FOR UPDATE reached no row of tenant B');
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;

    ---------------------------------------------------------------- writes to B's rows
    FOR x IN SELECT * FROM (VALUES
        ('update_other_tenant', format('UPDATE %s SET %s = %s WHERE %s = %s', q, uc, uc, c, lb), 'rows',
         'UPDATE changed %n row(s) of tenant B', 'UPDATE reached no row of tenant B'),
        ('update_returning', format('UPDATE %s SET %s = %s WHERE %s = %s RETURNING %s', q, uc, uc, c, lb, c), 'rows',
         'UPDATE ... RETURNING returned %n row(s) of tenant B', 'UPDATE ... RETURNING reached no row of tenant B'),
        ('delete_other_tenant', format('DELETE FROM %s WHERE %s = %s', q, c, lb), 'rows',
         'DELETE removed %n row(s) of tenant B', 'DELETE reached no row of tenant B'),
        ('delete_returning', format('DELETE FROM %s WHERE %s = %s RETURNING %s', q, c, lb, c), 'rows',
         'DELETE ... RETURNING returned %n row(s) of tenant B', 'DELETE ... RETURNING reached no row of tenant B'),
        ('cte_write', format('WITH x AS (DELETE FROM %s WHERE %s = %s RETURNING 1) SELECT count(*) FROM x', q, c, lb),
         'value', 'a data-modifying WITH deleted %n row(s) of tenant B',
         'a data-modifying WITH reached no row of tenant B'),
        ('merge_update_other_tenant',
         format('MERGE INTO %s x USING (SELECT 1) s ON x.%s = %s WHEN MATCHED THEN UPDATE SET %s = x.%s', q, c, lb,
                uc, uc), 'rows', 'MERGE ... UPDATE changed %n row(s) of tenant B',
         'MERGE ... UPDATE matched no row of tenant B'),
        ('merge_delete_other_tenant',
         format('MERGE INTO %s x USING (SELECT 1) s ON x.%s = %s WHEN MATCHED THEN DELETE', q, c, lb), 'rows',
         'MERGE ... DELETE removed %n row(s) of tenant B', 'MERGE ... DELETE matched no row of tenant B'),
        ('copy_out', format('COPY (SELECT * FROM %s WHERE %s = %s) TO %L', q, c, lb, '/dev/null'), 'rows',
         'COPY ... TO copied %n row(s) of tenant B', 'COPY ... TO copied no row of tenant B')
        ) v(name, sql, mode, leak_text, blocked_text)
    LOOP
        vector := x.name;
        IF NOT has_b THEN
            outcome := 'skipped'; detail := no_b;
        ELSE
            res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL, x.sql, x.mode, lock_ms);
            j := tenant_guard._grid_judge(CASE WHEN x.name = 'copy_out' THEN 'read' ELSE 'write' END,
                                          res.n, res.err_state, res.err_message, x.leak_text, x.blocked_text);
            outcome := j[1]; detail := j[2];
        END IF;
        RETURN NEXT;
    END LOOP;

    ---------------------------------------------------------------- rows planted in B, rows moved to B
    vector := 'insert_into_other_tenant';
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
                                      tenant_guard._grid_insert(t, plant, false, NULL), 'rows', lock_ms);
    j := tenant_guard._grid_judge('write', res.n, res.err_state, res.err_message,
                                  'tenant A inserted a row of tenant B', 'the row of tenant B was not inserted');
    outcome := j[1]; detail := j[2];
    RETURN NEXT;

    vector := 'upsert_into_other_tenant';
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
                                      tenant_guard._grid_insert(t, plant, false, 'ON CONFLICT DO NOTHING'), 'rows',
                                      lock_ms);
    IF res.err_state IS NULL THEN
        outcome := 'leak';
        detail := CASE WHEN res.n > 0 THEN 'INSERT ... ON CONFLICT DO NOTHING planted a row of tenant B'
                       ELSE 'row-level security accepted a row of tenant B; it only conflicted with an existing row' END;
    ELSE
        j := tenant_guard._grid_judge('write', res.n, res.err_state, res.err_message, '', '');
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;

    vector := 'upsert_update_other_tenant';
    -- B's key inserted as tenant A with ON CONFLICT ... DO UPDATE: does the
    -- update reach B's row? (conflict target: a unique index on plain
    -- columns, one without the tenant column first)
    SELECT ic.relname, string_agg(quote_ident(at.attname), ', ' ORDER BY k.ord) AS cols,
           bool_or(at.attname = tc) AS has_tc INTO arbiter
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
    JOIN pg_attribute at ON at.attrelid = t AND at.attnum = k.attnum
    WHERE i.indrelid = t AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
    GROUP BY ic.relname ORDER BY bool_or(at.attname = tc), ic.relname LIMIT 1;
    IF NOT has_b THEN
        outcome := 'skipped'; detail := no_b;
    ELSIF arbiter.relname IS NULL THEN
        outcome := 'skipped'; detail := 'no unique index on plain columns to conflict on';
    ELSE
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
            'WITH u AS (' || tenant_guard._grid_insert(t, CASE WHEN arbiter.has_tc THEN row_b
                                                               ELSE row_b || jsonb_build_object(tc, a) END, true,
                format('ON CONFLICT (%s) DO UPDATE SET %s = EXCLUDED.%s RETURNING %s', arbiter.cols, uc, uc, c))
            || format(') SELECT count(*) FROM u WHERE %s = %s', c, lb), 'value', lock_ms);
        j := tenant_guard._grid_judge('write', res.n, res.err_state, res.err_message,
            format('INSERT ... ON CONFLICT (%s) DO UPDATE changed a row of tenant B', arbiter.cols),
            format('INSERT ... ON CONFLICT (%s) DO UPDATE did not reach a row of tenant B', arbiter.cols));
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;

    vector := 'merge_insert_other_tenant';
    stmt := tenant_guard._grid_columns(t, plant, false);
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
        format('MERGE INTO %s x USING (SELECT * FROM pg_catalog.jsonb_populate_record(NULL::%s, %L::jsonb)) s ON false '
               'WHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)', q, q, plant, stmt,
               (SELECT string_agg('s.' || col, ', ') FROM regexp_split_to_table(stmt, ', ') col)),
        'rows', lock_ms);
    j := tenant_guard._grid_judge('write', res.n, res.err_state, res.err_message,
                                  'MERGE ... INSERT planted a row of tenant B', 'MERGE ... INSERT planted no row of tenant B');
    outcome := j[1]; detail := j[2];
    RETURN NEXT;

    vector := 'insert_select_other_tenant';
    IF NOT has_b THEN
        outcome := 'skipped'; detail := no_b;
    ELSE
        stmt := tenant_guard._grid_columns(t, NULL, false);
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
            format('INSERT INTO %s (%s) SELECT %s FROM %s WHERE %s = %s', q, stmt, stmt, q, c, lb), 'rows', lock_ms);
        j := tenant_guard._grid_judge('write', res.n, res.err_state, res.err_message,
                                      'INSERT ... SELECT copied %n row(s) of tenant B',
                                      'INSERT ... SELECT read no row of tenant B');
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;

    vector := 'update_move_to_other_tenant';
    IF NOT has_a THEN
        outcome := 'skipped'; detail := 'tenant A has no rows in this table; pass seed => true';
    ELSE
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
            format('UPDATE %s SET %s = %s WHERE %s = %s', q, c, lb, c, la), 'rows', lock_ms);
        j := tenant_guard._grid_judge('write', res.n, res.err_state, res.err_message,
                                      'UPDATE moved %n row(s) of tenant A into tenant B',
                                      'no row of tenant A could be updated (so none was moved)');
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;

    vector := 'copy_in';
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL, format('COPY %s FROM %L', q, '/dev/null'),
                                      'rows', lock_ms);
    IF res.err_state IS NULL THEN
        outcome := 'leak';
        detail := 'COPY ... FROM ran: row-level security does not apply to the role here, so COPY can load rows of '
                  'any tenant';
    ELSIF res.err_state IN ('42501', '0A000') THEN
        outcome := 'blocked'; detail := 'refused: ' || res.err_message;
    ELSE
        outcome := 'skipped'; detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
    END IF;
    RETURN NEXT;

    ---------------------------------------------------------------- existence oracles
    vector := 'unique_oracle';
    IF NOT has_b THEN
        outcome := 'skipped'; detail := no_b;
    ELSE
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
            tenant_guard._grid_insert(t, row_b || jsonb_build_object(tc, a), true, NULL), 'rows', lock_ms);
        -- the violated index may belong to a partition: look in the whole tree
        IF res.err_state = '23505' AND NOT EXISTS (
                WITH RECURSIVE tree(rel) AS (
                    SELECT t::oid UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.rel)
                SELECT 1 FROM tree JOIN pg_index i ON i.indrelid = tree.rel
                JOIN pg_class ic ON ic.oid = i.indexrelid
                JOIN pg_attribute at ON at.attrelid = tree.rel AND at.attname = tc
                WHERE ic.relname = res.err_constraint AND at.attnum = ANY (i.indkey)) THEN
            outcome := 'leak';
            detail := format('unique index %s does not include the tenant column: inserting tenant B''s key as '
                             'tenant A fails, which tells A the key exists', quote_ident(res.err_constraint));
        ELSIF res.err_state IS NULL OR res.err_state IN ('23505', '23503', '42501') THEN
            outcome := 'blocked';
            detail := 'no unique index revealed tenant B''s key'
                      || CASE WHEN res.err_state IS NOT NULL THEN ' (' || res.err_message || ')' ELSE '' END;
        ELSE
            outcome := 'skipped';
            detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
        END IF;
    END IF;
    RETURN NEXT;

    vector := 'on_conflict_oracle';
    -- a unique index without the tenant column, on plain columns, not partial
    SELECT ic.relname, string_agg(quote_ident(at.attname), ', ' ORDER BY k.ord) AS cols INTO arbiter
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
    JOIN pg_attribute at ON at.attrelid = t AND at.attnum = k.attnum
    WHERE i.indrelid = t AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
      AND NOT EXISTS (SELECT 1 FROM pg_attribute tca WHERE tca.attrelid = t AND tca.attname = tc
                      AND tca.attnum = ANY (i.indkey))
    GROUP BY ic.relname ORDER BY ic.relname LIMIT 1;
    IF NOT has_b THEN
        outcome := 'skipped'; detail := no_b;
    ELSIF arbiter.relname IS NULL THEN
        outcome := 'blocked'; detail := 'every unique index on plain columns includes the tenant column';
    ELSE
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
            tenant_guard._grid_insert(t, row_b || jsonb_build_object(tc, a), true,
                                      format('ON CONFLICT (%s) DO NOTHING', arbiter.cols)), 'rows', lock_ms);
        IF res.err_state IS NULL AND res.n = 0 THEN
            outcome := 'leak';
            detail := format('INSERT ... ON CONFLICT (%s) DO NOTHING as tenant A inserted nothing: tenant B''s key '
                             'exists (unique index %s does not include the tenant column)', arbiter.cols,
                             quote_ident(arbiter.relname));
        ELSIF res.err_state IS NULL THEN
            outcome := 'blocked'; detail := 'the insert with tenant B''s key went through as a row of tenant A';
        ELSIF res.err_state IN ('42501', '23503') THEN
            outcome := 'blocked'; detail := 'refused: ' || res.err_message;
        ELSE
            outcome := 'skipped';
            detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
        END IF;
    END IF;
    RETURN NEXT;

    vector := 'foreign_key_oracle';
    found_any := false;
    FOR x IN
        SELECT con.conname, con.conrelid::regclass AS r, con.conkey, con.confkey
        FROM pg_constraint con WHERE con.contype = 'f' AND con.confrelid = t
        ORDER BY con.conrelid::regclass::text, con.conname
    LOOP
        found_any := true;
        IF NOT has_b THEN
            outcome := 'skipped'; detail := format('%s on %s: %s', quote_ident(x.conname), x.r, no_b);
            RETURN NEXT;
            CONTINUE;
        END IF;
        r_tmpl := tenant_guard._grid_fresh(x.r, coalesce(tenant_guard._grid_row(x.r, NULL, NULL), '{}'::jsonb));
        FOR y IN SELECT ra.attname AS rcol, ta.attname AS tcol
                 FROM unnest(x.conkey, x.confkey) k(rk, tk)
                 JOIN pg_attribute ra ON ra.attrelid = x.r AND ra.attnum = k.rk
                 JOIN pg_attribute ta ON ta.attrelid = t AND ta.attnum = k.tk
        LOOP
            r_tmpl := r_tmpl || jsonb_build_object(y.rcol, row_b -> y.tcol::text);
        END LOOP;
        SELECT p.tenant_column INTO r_tc FROM tenant_guard.protected_tables p WHERE p.tbl = x.r;
        IF FOUND THEN
            r_tmpl := r_tmpl || jsonb_build_object(r_tc, a);
        END IF;
        res := tenant_guard._grid_attempt(app_role, 'setting', a, (tenant_guard._grid_context(x.r)).in_role,
                                          (tenant_guard._grid_context(x.r)).scopes, NULL, NULL,
                                          tenant_guard._grid_insert(x.r, r_tmpl, false, NULL), 'rows', lock_ms);
        IF res.err_state IS NULL THEN
            outcome := 'leak';
            detail := format('%s on %s accepted a reference from tenant A to a row of tenant B: A learns the key '
                             'exists and links to it', quote_ident(x.conname), x.r);
        ELSIF res.err_state = '23503' THEN
            outcome := 'blocked';
            detail := format('%s on %s refused a reference from tenant A to tenant B''s key', quote_ident(x.conname),
                             x.r);
        ELSIF res.err_state = '42501' THEN
            outcome := 'blocked'; detail := format('%s on %s: refused: %s', quote_ident(x.conname), x.r, res.err_message);
        ELSE
            outcome := 'skipped';
            detail := format('%s on %s: could not decide: %s (SQLSTATE %s)', quote_ident(x.conname), x.r,
                             res.err_message, res.err_state);
        END IF;
        RETURN NEXT;
    END LOOP;
    IF NOT found_any THEN
        outcome := 'skipped'; detail := 'no foreign key references this table';
        RETURN NEXT;
    END IF;

    vector := 'error_side_channel';
    IF NOT has_b THEN
        outcome := 'skipped'; detail := no_b;
    ELSE
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
            format('SELECT count(*) FROM %s WHERE CASE WHEN %s = %s THEN (%s::text || %L)::integer ELSE 0 END = 0',
                   q, c, lb, c, '!'), 'value', lock_ms);
        IF res.err_state = '22P02' THEN
            outcome := 'leak';
            detail := 'an error raised only for rows of tenant B reached tenant A: the rows were not filtered '
                      'before the probe ran';
        ELSIF res.err_state IS NULL OR res.err_state = '42501' THEN
            outcome := 'blocked';
            detail := coalesce('refused: ' || res.err_message,
                               'row-level security filtered the rows of tenant B before the probe ran');
        ELSE
            outcome := 'skipped';
            detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
        END IF;
    END IF;
    RETURN NEXT;

    ---------------------------------------------------------------- missing and malformed context
    FOR x IN SELECT * FROM (VALUES
        ('no_context', ARRAY[''], ARRAY['']),
        ('null_context', ARRAY['null'], ARRAY['{"org_id":null}', 'null']),
        ('empty_context', ARRAY[' '], ARRAY['{"org_id":""}', '{}']),
        ('malformed_context', ARRAY['not-a-uuid', '00000000-0000-0000-0000-000000000000', b || 'x'],
         ARRAY['{"org_id":"not-a-uuid"}', '{"org_id":"00000000-0000-0000-0000-000000000000"}',
               jsonb_build_object('org_id', b || 'x')::text, '{"org_id":'])
        ) v(name, orgs, claim_values)
    LOOP
        vector := x.name;
        IF NOT has_any THEN
            outcome := 'skipped'; detail := 'the table has no rows; pass seed => true';
            RETURN NEXT;
            CONTINUE;
        END IF;
        j := NULL;
        FOR i IN 1 .. greatest(cardinality(x.orgs), cardinality(x.claim_values)) LOOP
            res := tenant_guard._grid_attempt(app_role, src, x.orgs[least(i, cardinality(x.orgs))], NULL, NULL,
                x.claim_values[least(i, cardinality(x.claim_values))], NULL,
                format('SELECT count(*) FROM (SELECT FROM %s LIMIT 100) s', q), 'value', lock_ms);
            j := tenant_guard._grid_worse(j, tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
                'a read without a valid tenant context returned %n row(s)',
                'without a valid tenant context nothing was visible or changed'));
            res := tenant_guard._grid_attempt(app_role, src, x.orgs[least(i, cardinality(x.orgs))], NULL, NULL,
                x.claim_values[least(i, cardinality(x.claim_values))], NULL,
                format('UPDATE %s SET %s = %s', q, uc, uc), 'rows', lock_ms);
            j := tenant_guard._grid_worse(j, tenant_guard._grid_judge('write', res.n, res.err_state, res.err_message,
                'an UPDATE without a valid tenant context changed %n row(s)',
                'without a valid tenant context nothing was visible or changed'));
        END LOOP;
        outcome := j[1]; detail := j[2];
        RETURN NEXT;
    END LOOP;

    ---------------------------------------------------------------- forged context
    -- request.jwt.claims naming tenant B (with the in-tenant role and scopes
    -- of A's context) at the configured claim paths
    claims_b := jsonb_build_object('exp', extract(epoch FROM now())::bigint + 3600);
    FOR y IN SELECT * FROM (VALUES ('tenant_guard.org_claim', to_jsonb(b)),
                                   ('tenant_guard.role_claim', to_jsonb(ctx_role)),
                                   ('tenant_guard.scopes_claim', ctx_scopes::jsonb)) v(setting, value)
             WHERE v.value IS NOT NULL LOOP
        claim_path := string_to_array(current_setting(y.setting), '.');
        FOR i IN 1 .. cardinality(claim_path) - 1 LOOP
            IF jsonb_typeof(claims_b #> claim_path[1:i]) IS DISTINCT FROM 'object' THEN
                claims_b := jsonb_set(claims_b, claim_path[1:i], '{}');
            END IF;
        END LOOP;
        claims_b := jsonb_set(claims_b, claim_path, y.value);
    END LOOP;
    -- tenant B's rows visible with no context at all: forging adds nothing
    IF has_b THEN
        baseline := (tenant_guard._grid_attempt(app_role, src, NULL, NULL, NULL, NULL, NULL, count_b, 'value', lock_ms)).n;
    END IF;
    token := translate(encode(convert_to('{"alg":"none","typ":"JWT"}', 'UTF8'), 'base64'), E'+/=\n', '-_')
             || '.' || translate(encode(convert_to(claims_b::text, 'UTF8'), 'base64'), E'+/=\n', '-_') || '.';
    FOR x IN SELECT * FROM (VALUES
        ('forged_setting', ARRAY[format('SELECT pg_catalog.set_config(%L, %L, true)', 'tenant_guard.org_id', b),
                                 format('SELECT pg_catalog.set_config(%L, %L, true)', 'tenant_guard.role',
                                        coalesce(ctx_role, '')),
                                 format('SELECT pg_catalog.set_config(%L, %L, true)', 'tenant_guard.scopes',
                                        coalesce(ctx_scopes, ''))],
         'the application role chose tenant B by setting tenant_guard.org_id (context_source = %s)'),
        ('forged_claims', ARRAY[format('SELECT pg_catalog.set_config(%L, %L, true)', 'request.jwt.claims', claims_b)],
         'the application role chose tenant B by setting request.jwt.claims (context_source = %s)'),
        ('forged_signed_context',
         ARRAY[format('SELECT pg_catalog.set_config(%L, %L, true)', 'tenant_guard.signed_context', claims_b)],
         'the application role wrote tenant_guard.signed_context itself (context_source = %s)'),
        ('forged_token', ARRAY[format('SELECT tenant_guard.set_context(%L)', 'not.a.token')],
         'tenant_guard.set_context() accepted a malformed token (context_source = %s)'),
        ('forged_token', ARRAY[format('SELECT tenant_guard.set_context(%L)', token)],
         'tenant_guard.set_context() accepted an unsigned (alg none) token for tenant B (context_source = %s)')
        ) v(name, setup, leak_text)
    LOOP
        IF x.name = 'forged_token' AND vector = 'forged_token' THEN
            j2 := j;    -- the second token: judged together with the first
        ELSE
            j2 := NULL;
        END IF;
        vector := x.name;
        IF NOT has_b THEN
            j := ARRAY['skipped', no_b];
        ELSIF baseline > 0 THEN
            j := ARRAY['skipped', 'rows of tenant B are visible without any context (see no_context), so this vector '
                                  'cannot tell whether forging works'];
        ELSE
            res := tenant_guard._grid_attempt(app_role, src, NULL, NULL, NULL, NULL, x.setup, count_b, 'value', lock_ms);
            IF res.err_state IS NOT NULL AND x.name IN ('forged_token', 'forged_signed_context') THEN
                j := ARRAY['blocked', 'refused: ' || res.err_message];   -- every error here is a refusal
            ELSE
                j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message, format(x.leak_text, src),
                                              format('no row of tenant B was visible (context_source = %s)', src));
            END IF;
        END IF;
        j := tenant_guard._grid_worse(j2, j);
        IF x.name <> 'forged_token' OR j2 IS NOT NULL THEN
            outcome := j[1]; detail := j[2];
            RETURN NEXT;
        END IF;
    END LOOP;

    ---------------------------------------------------------------- privileges and ownership
    vector := 'row_security_off';
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL,
        ARRAY['SELECT pg_catalog.set_config(''row_security'', ''off'', true)'],
        format('SELECT count(*) FROM (SELECT FROM %s LIMIT 1) s', q), 'value', lock_ms);
    rls_applies := res.err_state IS NOT NULL;
    IF res.err_state IS NULL THEN
        outcome := 'leak';
        detail := 'with row_security = off the query ran: row-level security does not apply to the role on this table';
    ELSIF res.err_state = '42501' THEN
        outcome := 'blocked'; detail := 'refused: ' || res.err_message;
    ELSE
        outcome := 'skipped'; detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
    END IF;
    RETURN NEXT;

    vector := 'set_role_owner';
    -- SET ROLE checks the session user's memberships, and the grid's session
    -- user is a superuser: membership of app_role decides, not the attempt.
    IF pg_has_role(app_role, rel.owner, 'MEMBER') THEN
        outcome := 'leak';
        detail := format('the role %s the owner %s, who can unprotect() or alter the table',
                         CASE WHEN rel.owner = app_role THEN 'is' ELSE 'can SET ROLE to' END, rel.owner);
    ELSE
        outcome := 'blocked';
        detail := format('the role is not a member of the owner %s, so SET ROLE to it is refused', rel.owner);
    END IF;
    RETURN NEXT;

    vector := 'role_attributes';
    SELECT r.oid::regrole AS r, r.rolname, r.rolsuper INTO x FROM pg_roles r
    WHERE (r.rolsuper OR r.rolbypassrls)
      AND (r.oid = app_role OR pg_has_role(app_role, r.oid, 'MEMBER'))
    ORDER BY r.oid <> app_role, r.rolname LIMIT 1;
    IF NOT FOUND THEN
        outcome := 'blocked';
        detail := 'the role is neither superuser nor BYPASSRLS and cannot SET ROLE to such a role';
    ELSE
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL,
            ARRAY[format('SELECT pg_catalog.set_config(''role'', %L, true)', x.rolname),
                  'SELECT pg_catalog.set_config(''row_security'', ''off'', true)'],
            format('SELECT count(*) FROM (SELECT FROM %s LIMIT 1) s', q), 'value', lock_ms);
        IF res.err_state IS NULL THEN
            outcome := 'leak';
            detail := format('the role %s %s, which row-level security does not apply to',
                             CASE WHEN x.r = app_role THEN 'is' ELSE 'can SET ROLE to' END,
                             CASE WHEN x.r = app_role THEN CASE WHEN x.rolsuper THEN 'a superuser' ELSE 'BYPASSRLS' END
                                  ELSE x.r::text || CASE WHEN x.rolsuper THEN ' (superuser)' ELSE ' (BYPASSRLS)' END END);
        ELSE
            outcome := 'blocked'; detail := 'refused: ' || res.err_message;
        END IF;
    END IF;
    RETURN NEXT;

    vector := 'owner_without_force';
    IF NOT pg_has_role(app_role, rel.owner, 'USAGE') THEN
        outcome := 'blocked';
        detail := format('the role does not have the privileges of the owner %s', rel.owner);
    ELSE
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL,
            ARRAY['SELECT pg_catalog.set_config(''row_security'', ''off'', true)'],
            format('SELECT count(*) FROM (SELECT FROM %s LIMIT 1) s', q), 'value', lock_ms);
        IF res.err_state IS NULL THEN
            outcome := 'leak';
            detail := format('the role has the privileges of the owner %s and FORCE ROW LEVEL SECURITY is %s: '
                             'row-level security does not apply to it', rel.owner,
                             CASE WHEN rel.force THEN 'on, yet' ELSE 'off' END);
        ELSIF res.err_state = '42501' THEN
            outcome := 'blocked';
            detail := format('the role has the privileges of the owner %s, but FORCE ROW LEVEL SECURITY binds it',
                             rel.owner);
        ELSE
            outcome := 'skipped';
            detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
        END IF;
    END IF;
    RETURN NEXT;

    vector := 'truncate';
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL, format('TRUNCATE %s', q), 'rows', lock_ms);
    IF res.err_state IS NULL THEN
        outcome := 'leak'; detail := 'TRUNCATE emptied the table for every tenant';
    ELSIF res.err_state IN ('55P03', '0A000') THEN
        outcome := 'leak';
        detail := 'TRUNCATE passed the privilege checks; only this stopped it: ' || res.err_message;
    ELSIF res.err_state = '42501' THEN
        outcome := 'blocked'; detail := 'refused: ' || res.err_message;
    ELSE
        outcome := 'skipped'; detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
    END IF;
    IF outcome = 'leak' AND NOT tenant_guard._runtime_guards() THEN
        detail := detail || ' (tenant_guard is not in shared_preload_libraries, so its TRUNCATE guard is not active)';
    END IF;
    RETURN NEXT;

    vector := 'explain_analyze';
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL,
        ARRAY['SELECT pg_catalog.set_config(''enable_indexscan'', ''off'', true)',
              'SELECT pg_catalog.set_config(''enable_bitmapscan'', ''off'', true)',
              'SELECT pg_catalog.set_config(''enable_indexonlyscan'', ''off'', true)'],
        format('EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) SELECT * FROM %s', q),
        'json', lock_ms);
    IF res.err_state IS NULL AND NOT rls_applies THEN
        outcome := 'skipped';
        detail := 'row-level security does not apply to the role here (see row_security_off): EXPLAIN ANALYZE shows '
                  'nothing the read vectors do not';
    ELSIF res.err_state IS NULL THEN
        outcome := 'leak';
        detail := format('EXPLAIN ANALYZE ran: its actual row counts reveal rows that row-level security filtered '
                         'out (Rows Removed by Filter: %s)',
                         (SELECT coalesce(sum(v::text::bigint), 0)
                          FROM jsonb_path_query(res.result, 'strict $.**."Rows Removed by Filter"') v));
        IF NOT tenant_guard._runtime_guards() THEN
            detail := detail || ' (tenant_guard is not in shared_preload_libraries, so its EXPLAIN ANALYZE guard is '
                                'not active)';
        END IF;
    ELSIF res.err_state = '42501' THEN
        outcome := 'blocked'; detail := 'refused: ' || res.err_message;
    ELSE
        outcome := 'skipped'; detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
    END IF;
    RETURN NEXT;

    vector := 'alter_policy';
    j := NULL;
    stmt := NULL;
    FOR x IN
        SELECT format('DROP POLICY %I ON %s', p.polname, q) AS sql FROM pg_policy p WHERE p.polrelid = t
        ORDER BY p.polname <> 'tg_wall', p.polpermissive, p.polname LIMIT 1
    LOOP
        stmt := x.sql;
    END LOOP;
    FOREACH stmt IN ARRAY array_remove(ARRAY[stmt, format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', q)], NULL) LOOP
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL, stmt, 'rows', lock_ms);
        j := tenant_guard._grid_worse(j, CASE
            WHEN res.err_state IS NULL THEN ARRAY['leak', stmt || ' succeeded']
            WHEN res.err_state = '55P03' THEN ARRAY['leak', stmt || ' passed the privilege checks (it then waited '
                                                          || 'for the table lock)']
            WHEN res.err_state IN ('42501', '55000') THEN ARRAY['blocked', 'refused: ' || res.err_message]
            ELSE ARRAY['skipped', format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state)] END);
    END LOOP;
    outcome := j[1]; detail := j[2];
    RETURN NEXT;

    ---------------------------------------------------------------- objects that run with other rights
    vector := 'definer_view';
    found_any := false;
    FOR x IN
        SELECT v.view, EXISTS (SELECT 1 FROM pg_attribute va WHERE va.attrelid = v.view AND va.attname = tc
                               AND NOT va.attisdropped) AS has_tc
        FROM tenant_guard._grid_dependent_views(t) v JOIN pg_class vc ON vc.oid = v.view
        WHERE v.relkind = 'v'
          AND NOT coalesce((SELECT option_value::boolean FROM pg_options_to_table(vc.reloptions)
                            WHERE option_name = 'security_invoker'), false)
          AND has_table_privilege(app_role, v.view, 'SELECT')
    LOOP
        found_any := true;
        res := tenant_guard._grid_attempt(app_role, 'setting', ghost, ctx_role, ctx_scopes, NULL, NULL,
            format('SELECT count(*) FROM (SELECT FROM %s LIMIT 100) s', x.view), 'value', lock_ms);
        j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
            x.view::text || ' showed %n row(s) to a tenant that owns no rows',
            x.view::text || ' showed no row to a tenant that owns none');
        IF x.has_tc AND has_b THEN
            res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
                format('SELECT count(*) FROM (SELECT FROM %s WHERE %s = %s LIMIT 100) s', x.view, c, lb), 'value',
                lock_ms);
            j := tenant_guard._grid_worse(j, tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
                x.view::text || ' showed %n row(s) of tenant B to tenant A',
                x.view::text || ' showed no row to a tenant that owns none'));
        END IF;
        outcome := j[1];
        detail := CASE WHEN j[2] LIKE 'refused: %' OR j[2] LIKE 'could not%' THEN x.view::text || ': ' || j[2]
                       ELSE j[2] END;
        RETURN NEXT;
    END LOOP;
    IF NOT found_any THEN
        outcome := 'skipped';
        detail := 'no view over this table without security_invoker that the role can read';
        RETURN NEXT;
    END IF;

    vector := 'definer_function';
    found_any := false;
    FOR x IN
        SELECT p.oid::regprocedure AS f, p.oid, p.pronargs, p.proretset
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_class tcl ON tcl.oid = t
        WHERE p.prosecdef AND p.prokind = 'f'
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_guard')
          AND has_function_privilege(app_role, p.oid, 'EXECUTE')
          AND (p.prosrc ~* ('\m' || regexp_replace(tcl.relname, '([^a-zA-Z0-9_])', '\\\1', 'g') || '\M')
               OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.refclassid = 'pg_class'::regclass AND d.refobjid = t))
        ORDER BY p.oid::regprocedure::text
    LOOP
        found_any := true;
        IF x.pronargs > 0 OR NOT x.proretset THEN
            outcome := 'skipped';
            detail := format('%s %s: the grid calls only set-returning functions without arguments; review it by '
                             'hand', x.f, CASE WHEN x.pronargs > 0 THEN 'takes arguments' ELSE 'returns no set' END);
            RETURN NEXT;
            CONTINUE;
        END IF;
        res := tenant_guard._grid_attempt(app_role, 'setting', ghost, ctx_role, ctx_scopes, NULL, NULL,
            format('SELECT count(*) FROM (SELECT FROM %s LIMIT 100) s', x.f), 'value',
            lock_ms);
        j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
            x.f::text || ' returned %n row(s) to a tenant that owns no rows',
            x.f::text || ' returned no row to a tenant that owns none');
        IF has_b THEN
            res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
                format('SELECT count(*) FROM (SELECT FROM %s x WHERE x.%s = %s LIMIT 100) s', x.f, c, lb), 'value',
                lock_ms);
            IF res.err_state IS DISTINCT FROM '42703' THEN
                j := tenant_guard._grid_worse(j, tenant_guard._grid_judge('read', res.n, res.err_state,
                    res.err_message, x.f::text || ' returned %n row(s) of tenant B to tenant A',
                    x.f::text || ' returned no row to a tenant that owns none'));
            END IF;
        END IF;
        outcome := j[1];
        detail := CASE WHEN j[2] LIKE 'refused: %' OR j[2] LIKE 'could not%' THEN x.f::text || ': ' || j[2]
                       ELSE j[2] END;
        RETURN NEXT;
    END LOOP;
    IF NOT found_any THEN
        outcome := 'skipped';
        detail := 'no SECURITY DEFINER function referring to this table that the role can execute';
        RETURN NEXT;
    END IF;

    vector := 'materialized_view';
    found_any := false;
    FOR x IN
        SELECT v.view, has_table_privilege(app_role, v.view, 'SELECT') AS readable
        FROM tenant_guard._grid_dependent_views(t) v WHERE v.relkind = 'm'
    LOOP
        found_any := true;
        IF NOT x.readable THEN
            outcome := 'blocked'; detail := format('%s: the role cannot read it', x.view);
        ELSE
            res := tenant_guard._grid_attempt(app_role, 'setting', ghost, ctx_role, ctx_scopes, NULL, NULL,
                format('SELECT count(*) FROM (SELECT FROM %s LIMIT 100) s', x.view), 'value', lock_ms);
            IF res.err_state = '55000' THEN
                outcome := 'blocked'; detail := format('%s: %s', x.view, res.err_message);
            ELSE
                j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
                    x.view::text || ' (no row-level security) showed %n row(s) to a tenant that owns no rows',
                    x.view::text || ' showed no row to a tenant that owns none');
                outcome := j[1];
                detail := CASE WHEN j[2] LIKE 'refused: %' OR j[2] LIKE 'could not%' THEN x.view::text || ': ' || j[2]
                               ELSE j[2] END;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF NOT found_any THEN
        outcome := 'skipped'; detail := 'no materialized view over this table';
        RETURN NEXT;
    END IF;

    -- partitions and inheritance children, read and written directly
    found_any := false;
    FOR x IN
        WITH RECURSIVE d(rel) AS (
            SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = t
            UNION SELECT i.inhrelid FROM pg_inherits i JOIN d ON i.inhparent = d.rel)
        SELECT d.rel::regclass AS child FROM d ORDER BY d.rel::regclass::text
    LOOP
        found_any := true;
        vector := 'partition_direct';
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
            format('SELECT count(*) FROM (SELECT FROM ONLY %s WHERE %s = %s LIMIT 100) s', x.child, c, lb), 'value',
            lock_ms);
        j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
            x.child::text || ': tenant A read %n row(s) of tenant B directly', NULL);
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL,
            ARRAY['SELECT pg_catalog.set_config(''row_security'', ''off'', true)'],
            format('SELECT count(*) FROM (SELECT FROM ONLY %s LIMIT 1) s', x.child), 'value', lock_ms);
        IF res.err_state IS NULL THEN
            j := tenant_guard._grid_worse(j, ARRAY['leak', x.child::text
                || ': row-level security does not apply to the role on it (row_security = off was not refused)']);
        END IF;
        IF j[1] = 'blocked' THEN
            j[2] := x.child::text || ': ' || coalesce(j[2], 'no row of tenant B was visible and row-level security applies');
        END IF;
        outcome := j[1]; detail := j[2];
        RETURN NEXT;

        vector := 'child_insert';
        plant := coalesce(tenant_guard._grid_row(x.child, tc, b), tenant_guard._grid_row(x.child, tc, a),
                          tenant_guard._grid_row(x.child, NULL, NULL), row_b, '{}'::jsonb)
                 || jsonb_build_object(tc, b);
        plant := (SELECT jsonb_object_agg(k, v) FROM jsonb_each(plant) e(k, v)
                  WHERE EXISTS (SELECT 1 FROM pg_attribute ca WHERE ca.attrelid = x.child AND ca.attname = k
                                AND NOT ca.attisdropped));
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
            tenant_guard._grid_insert(x.child, plant, false, NULL), 'rows', lock_ms);
        j := tenant_guard._grid_judge('write', res.n, res.err_state, res.err_message,
            x.child::text || ': tenant A inserted a row of tenant B directly',
            x.child::text || ': the row of tenant B was not inserted');
        outcome := j[1];
        detail := CASE WHEN j[2] LIKE 'refused: %' OR j[2] LIKE 'could not%' OR j[2] LIKE 'row-level%'
                       THEN x.child::text || ': ' || j[2] ELSE j[2] END;
        RETURN NEXT;
    END LOOP;
    IF NOT found_any THEN
        outcome := 'skipped'; detail := 'no partitions or inheritance children';
        vector := 'partition_direct';
        RETURN NEXT;
        vector := 'child_insert';
        RETURN NEXT;
    END IF;

    ---------------------------------------------------------------- other sessions and the next client
    -- Every tenant shares the application role, and behind a transaction
    -- pooler the next client of a connection inherits its session state.
    vector := 'query_text';
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
        'SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE false', 'value', lock_ms);
    IF res.err_state IS NOT NULL THEN
        j := tenant_guard._grid_judge('read', NULL, res.err_state, res.err_message, '', '');
    ELSIF pg_has_role(app_role, 'pg_read_all_stats', 'USAGE') THEN
        j := ARRAY['leak', 'the role has the privileges of pg_read_all_stats: it reads the statement text of every '
                           'session in pg_stat_activity'];
    ELSIF coalesce(tenant_guard._lint_role_setting(app_role, 'track_activities')::boolean, true) THEN
        j := ARRAY['leak', format('the sessions of %s record their statement text (track_activities is on for them), '
                                  'and every session of the role reads it in pg_stat_activity: each tenant sees the '
                                  'statements of the others, literals included', app_role)];
    ELSE
        j := ARRAY['blocked', format('the sessions of %s do not record their statement text (track_activities is off '
                                     'for the role)', app_role)];
    END IF;
    FOR x IN
        SELECT c.oid::regclass AS v FROM pg_extension e JOIN pg_class c ON c.relnamespace = e.extnamespace
        WHERE e.extname = 'pg_stat_statements' AND c.relname = 'pg_stat_statements'
    LOOP
        res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
            format('SELECT count(*) FROM %s WHERE false', x.v), 'value', lock_ms);
        IF res.err_state IS NULL THEN
            j := tenant_guard._grid_worse(j, ARRAY['leak', format('the role can read %s, the statements of every '
                                                                   'tenant', x.v)]);
        END IF;
    END LOOP;
    outcome := j[1]; detail := j[2];
    RETURN NEXT;

    vector := 'temp_object';
    SELECT cl.relname INTO tbl_name FROM pg_class cl WHERE cl.oid = t;
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
        format('CREATE TEMP VIEW %I AS SELECT 1 AS planted', tbl_name), 'rows', lock_ms);
    IF res.err_state IS NULL THEN
        outcome := 'leak';
        detail := format('the role created a temporary view named %I: behind a transaction pooler it stays on the '
                         'connection, and the next client''s unqualified %I, whatever its tenant, reads through it '
                         '(pg_temp comes first in search_path)', tbl_name, tbl_name);
    ELSIF res.err_state = '42501' THEN
        outcome := 'blocked'; detail := 'refused: the role cannot create temporary objects in this database';
    ELSE
        outcome := 'skipped'; detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
    END IF;
    RETURN NEXT;

    vector := 'hold_cursor';
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
        format('DECLARE tg_grid_held CURSOR WITH HOLD FOR %s',
               CASE WHEN has_table_privilege(app_role, t, 'SELECT') THEN 'SELECT * FROM ' || q ELSE 'SELECT 1' END),
        'rows', lock_ms);
    IF res.err_state IS NULL THEN
        outcome := 'leak';
        detail := 'the role opened a cursor WITH HOLD: it outlives the transaction, and behind a transaction pooler the '
                  'next client of the connection, whatever its tenant, finds it in pg_cursors and fetches its rows'
                  || CASE WHEN NOT tenant_guard._runtime_guards() THEN not_preloaded ELSE '' END;
    ELSE
        j := tenant_guard._grid_judge('read', NULL, res.err_state, res.err_message, '', '');
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;

    vector := 'listen';
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
        'LISTEN tg_attack_grid', 'rows', lock_ms);
    IF res.err_state IS NULL THEN
        outcome := 'leak';
        detail := 'the role can LISTEN: it receives the NOTIFY payloads of every session of the database, whatever its '
                  'tenant, and behind a transaction pooler its LISTEN stays with the connection'
                  || CASE WHEN NOT tenant_guard._runtime_guards() THEN not_preloaded ELSE '' END;
    ELSE
        j := tenant_guard._grid_judge('read', NULL, res.err_state, res.err_message, '', '');
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;

    ---------------------------------------------------------------- residual channels
    vector := 'table_statistics';
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
        format('SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid '
               'WHERE c.oid = %s AND c.reltuples IS NOT NULL AND s.n_live_tup IS NOT NULL', t::oid), 'value', lock_ms);
    IF res.err_state IS NULL AND res.n > 0 THEN
        outcome := 'residual';
        detail := 'pg_class.reltuples and pg_stat_user_tables (n_live_tup, n_tup_ins, ...) count the rows of every '
                  'tenant and are readable by every role';
    ELSE
        j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message, '',
                                      'the table statistics were not readable');
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;

    vector := 'shared_sequence';
    SELECT string_agg(s.seq, ', ' ORDER BY s.seq) INTO stmt
    FROM (SELECT pg_get_serial_sequence(q, at.attname) AS seq FROM pg_attribute at
          WHERE at.attrelid = t AND at.attnum > 0 AND NOT at.attisdropped) s WHERE s.seq IS NOT NULL;
    IF stmt IS NULL THEN
        outcome := 'skipped'; detail := 'no serial or identity column';
    ELSE
        outcome := 'residual';
        detail := format('%s: one counter shared by every tenant; the gaps between a tenant''s own keys reveal how '
                         'many rows other tenants inserted', stmt);
    END IF;
    RETURN NEXT;

    vector := 'explain_estimate';
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
        format('EXPLAIN (FORMAT JSON) SELECT * FROM %s WHERE %s = %s', q, c, lb), 'json', lock_ms);
    IF res.err_state IS NULL THEN
        outcome := 'residual';
        detail := 'EXPLAIN row estimates come from statistics over the rows of every tenant';
    ELSE
        j := tenant_guard._grid_judge('read', NULL, res.err_state, res.err_message, '', '');
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;

    vector := 'column_statistics';
    res := tenant_guard._grid_attempt(app_role, 'setting', a, ctx_role, ctx_scopes, NULL, NULL,
        format('SELECT count(*) FROM pg_catalog.pg_attribute at JOIN pg_catalog.pg_class c ON c.oid = at.attrelid '
               'WHERE c.oid = %s AND at.attnum > 0 AND NOT at.attisdropped '
               'AND pg_catalog.has_column_privilege(c.oid, at.attnum, ''select'') '
               'AND (NOT c.relrowsecurity OR NOT pg_catalog.row_security_active(c.oid))', t::oid), 'value', lock_ms);
    j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
        'pg_stats shows the role the statistics of %n column(s) (most common values, histograms) over every tenant''s rows',
        'pg_stats hides this table''s column statistics from the role (row-level security is active for it)');
    outcome := j[1]; detail := j[2];
    RETURN NEXT;
END
$$;

-- seed => true: one row of tenant org in rel when it has none, built from
-- an existing row (fresh values for keys with a default) or from the column
-- defaults. Inserted as the table's owner with org's context, not as the
-- superuser: triggers, defaults and constraints a table owner wrote never run
-- with superuser rights. Returns NULL, or {"error": message} (nothing
-- inserted, the role and context unchanged).
CREATE FUNCTION tenant_guard._grid_seed(rel regclass, col name, org text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    saved_role text := current_setting('role');
    found_row boolean;
    tmpl jsonb;
    ctx record;
    stmt text;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT FROM %s WHERE %I = %L)', rel, col, org) INTO found_row;
    IF found_row THEN
        RETURN NULL;
    END IF;
    tmpl := tenant_guard._grid_fresh(rel, coalesce(tenant_guard._grid_row(rel, NULL, NULL), '{}'))
            || jsonb_build_object(col, org);
    SELECT * INTO ctx FROM tenant_guard._grid_context(rel);
    stmt := tenant_guard._grid_insert(rel, tmpl, false, NULL);   -- built before the owner's rights apply
    BEGIN
        PERFORM set_config('tenant_guard.signed_context', '', true);
        PERFORM set_config('tenant_guard.context_source', 'setting', true);
        PERFORM set_config('tenant_guard.org_id', org, true);
        PERFORM set_config('tenant_guard.role', coalesce(ctx.in_role, ''), true);
        PERFORM set_config('tenant_guard.scopes', coalesce(ctx.scopes, ''), true);
        PERFORM set_config('role', (SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
                                    WHERE c.oid = rel), true);
        EXECUTE stmt;
        PERFORM set_config('role', saved_role, true);
    EXCEPTION WHEN OTHERS THEN
        RETURN jsonb_build_object('error', SQLERRM);
    END;
    RETURN NULL;
END
$$;

CREATE FUNCTION tenant_guard.attack_grid(app_role regrole, org_a uuid, org_b uuid, seed boolean DEFAULT false)
RETURNS TABLE (tbl regclass, vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    results jsonb := '[]';
    src text;
    lock_ms integer;
    p record;
    org text;
    tmpl jsonb;
    seed_notes jsonb := '{}';
BEGIN
    IF app_role IS NULL OR org_a IS NULL OR org_b IS NULL OR seed IS NULL THEN
        RAISE EXCEPTION 'app_role, org_a, org_b and seed must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF org_a = org_b THEN
        RAISE EXCEPTION 'org_a and org_b must be two different tenants' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- (is_superuser, not pg_roles: the checks read no catalog, so every
    -- lock the grid takes belongs to the rolled-back block below)
    IF current_setting('is_superuser') <> 'on' THEN
        IF NOT pg_has_role(current_user, app_role, 'MEMBER') THEN
            RAISE EXCEPTION 'permission denied to set role %', app_role USING ERRCODE = 'insufficient_privilege',
                DETAIL = 'The attack grid runs its attacks as the application role.',
                HINT = 'Run tenant_guard.attack_grid() as a superuser.';
        END IF;
        RAISE EXCEPTION 'tenant_guard.attack_grid() must be run by a superuser' USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'It reads every tenant''s rows to judge the attacks and sets tenant_guard.context_source, which '
                     'only a superuser can do.';
    END IF;
    BEGIN
        PERFORM tenant_guard._runtime_guards();    -- loads the library, which defines the settings
        src := coalesce(current_setting('tenant_guard.context_source', true), 'claims');
        -- lock waits end after 1 s (or the caller's shorter lock_timeout)
        lock_ms := (SELECT CASE WHEN s.setting::integer BETWEEN 1 AND 1000 THEN s.setting::integer ELSE 1000 END
                    FROM pg_settings s WHERE s.name = 'lock_timeout');
        IF seed THEN
            -- one row per tenant that has none, rolled back with everything else
            FOR p IN SELECT pt.tbl, pt.tenant_column FROM tenant_guard.protected_tables pt
                     WHERE pt.tenant_type IN ('uuid', 'text')
                     ORDER BY pt.parent IS NOT NULL, pt.tbl::text LOOP
                FOREACH org IN ARRAY ARRAY[org_a::text, org_b::text] LOOP
                    tmpl := tenant_guard._grid_seed(p.tbl, p.tenant_column, org);
                    IF tmpl IS NOT NULL THEN
                        seed_notes := seed_notes || jsonb_build_object(p.tbl::oid::text, concat_ws('; ',
                            seed_notes ->> p.tbl::oid::text,
                            format('seeding a row of tenant %s failed: %s',
                                   CASE org WHEN org_a::text THEN 'A' ELSE 'B' END, tmpl ->> 'error')));
                    END IF;
                END LOOP;
            END LOOP;
        END IF;

        FOR p IN SELECT pt.tbl, pt.tenant_column, pt.tenant_type FROM tenant_guard.protected_tables pt
                 ORDER BY pt.tbl::text LOOP
            IF p.tenant_type = 'bigint' THEN
                results := results || jsonb_build_object('tbl', p.tbl::oid, 'vector', 'all', 'outcome', 'skipped',
                    'detail', 'bigint tenant column: attack_grid() takes uuid tenants; attack it with text or uuid '
                              'tenant ids');
                CONTINUE;
            END IF;
            results := results || coalesce((
                SELECT jsonb_agg(jsonb_build_object('tbl', p.tbl::oid, 'vector', g.vector, 'outcome', g.outcome,
                                                    'detail', CASE WHEN g.outcome = 'skipped' AND seed_notes ? p.tbl::oid::text
                                                                   THEN g.detail || ' (' || (seed_notes ->> p.tbl::oid::text) || ')'
                                                                   ELSE g.detail END))
                FROM tenant_guard._grid_table(app_role, p.tbl, p.tenant_column, org_a::text, org_b::text, src, lock_ms) g),
                '[]');
        END LOOP;
        RAISE EXCEPTION 'attack grid sentinel' USING ERRCODE = 'TGZ99';
    EXCEPTION WHEN SQLSTATE 'TGZ99' THEN
        NULL;
    END;

    RETURN QUERY
        SELECT (e ->> 'tbl')::oid::regclass, e ->> 'vector', e ->> 'outcome', e ->> 'detail'
        FROM jsonb_array_elements(results) e
        ORDER BY (e ->> 'tbl')::oid::regclass::text, e ->> 'vector', e ->> 'detail';
END
$$;
COMMENT ON FUNCTION tenant_guard.attack_grid(regrole, uuid, uuid, boolean) IS
    'Runs cross-tenant attacks as an application role in tenant A against tenant B on every protected table, '
    'each rolled back; reports blocked, leak, residual or skipped per table and vector.';

CREATE FUNCTION tenant_guard.assert_isolated(app_role regrole, org_a uuid, org_b uuid, seed boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    leaks text[];
BEGIN
    -- one line per table: its leaking vectors
    SELECT coalesce(sum(l.n), 0), array_agg(l.line ORDER BY l.tbl) INTO n, leaks
    FROM (SELECT g.tbl::text AS tbl, count(*) AS n,
                 g.tbl::text || ': ' || string_agg(DISTINCT g.vector, ', ' ORDER BY g.vector) AS line
          FROM tenant_guard.attack_grid(app_role, org_a, org_b, seed) g WHERE g.outcome = 'leak' GROUP BY g.tbl) l;
    IF n > 0 THEN
        RAISE EXCEPTION 'tenant isolation is broken: % attack(s) by role % leaked', n, app_role
            USING ERRCODE = 'TGA01',
                  DETAIL = 'Leaking vectors per table:' || E'\n' || array_to_string(leaks, E'\n'),
                  HINT = 'SELECT * FROM tenant_guard.attack_grid(...) WHERE outcome = ''leak'' says why; '
                         'docs/attack-grid.md explains each vector and its fix.';
    END IF;
END
$$;
COMMENT ON FUNCTION tenant_guard.assert_isolated(regrole, uuid, uuid, boolean) IS
    'Raises (SQLSTATE TGA01) listing every leaking vector of tenant_guard.attack_grid(); returns nothing when none leaks.';

REVOKE ALL ON FUNCTION tenant_guard._grid_attempt(regrole, text, text, text, text, text, text[], text, text, integer)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_judge(text, bigint, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_worse(text[], text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_columns(regclass, jsonb, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_insert(regclass, jsonb, boolean, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_row(regclass, name, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_fresh(regclass, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_context(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_seed(regclass, name, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_dependent_views(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_table(regrole, regclass, name, text, text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.attack_grid(regrole, uuid, uuid, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.assert_isolated(regrole, uuid, uuid, boolean) FROM PUBLIC;
