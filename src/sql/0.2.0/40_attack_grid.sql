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

-- Run as app_role inside a security-restricted operation until the current
-- subtransaction ends (src/pg/grid_fmgr.cpp).
CREATE FUNCTION tenant_guard._grid_become(app_role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'tg__grid_become'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_guard._grid_become(regrole) FROM PUBLIC;

-- Until the current subtransaction ends, the signed context of a token of
-- org (with in_role and scopes at the configured claim paths, exp five
-- minutes ahead) that the grid signs with this node's HS256 key and verifies
-- like set_context(); forwarded to Citus workers, which verify it again.
-- Without an HS256 key: the token of the caller's own set_context(), when it
-- is of org; otherwise it raises 55000 naming what is missing. Superuser
-- only, inside a subtransaction. The token is never returned or shown
-- (src/pg/grid_fmgr.cpp).
CREATE FUNCTION tenant_guard._grid_sign_in(org text, in_role text, scopes text)
RETURNS void
AS 'MODULE_PATHNAME', 'tg__grid_sign_in'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION tenant_guard._grid_sign_in(text, text, text) FROM PUBLIC;

-- One attempt, always rolled back. As the superuser: set the tenant context
-- (source, tenant_guard.org_id, request.jwt.claims; a verified context is
-- cleared; source 'grid-signed': context_source = signed and the verified
-- context of a token of org the grid signs, _grid_sign_in), lock_timeout,
-- then become app_role in a security-restricted
-- operation (_grid_become: code the attempt reaches cannot SET ROLE back to
-- the superuser whose session it is); as app_role: run the setup
-- statements, then stmt. mode: 'value' (stmt returns one bigint), 'rows'
-- (GET DIAGNOSTICS ROW_COUNT), 'json' (stmt returns one json value).
CREATE FUNCTION tenant_guard._grid_attempt(app_role regrole, source text, org text, in_role text, scopes text,
                                           claims text, setup text[],
                                           stmt text, mode text, lock_ms integer,
                                           OUT n bigint, OUT err_state text, OUT err_message text,
                                           OUT err_constraint text, OUT result jsonb)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text;
BEGIN
    BEGIN
        PERFORM set_config('tenant_guard.signed_context', '', true);
        IF source = 'grid-signed' THEN
            -- only the token gives the context
            PERFORM set_config('tenant_guard.context_source', 'signed', true);
            PERFORM tenant_guard._grid_sign_in(org, in_role, scopes);
        ELSE
            PERFORM set_config('tenant_guard.context_source', source, true);
            PERFORM set_config('tenant_guard.org_id', coalesce(org, ''), true);
            PERFORM set_config('tenant_guard.role', coalesce(in_role, ''), true);
            PERFORM set_config('tenant_guard.scopes', coalesce(scopes, ''), true);
        END IF;
        PERFORM set_config('tenant_guard.user_id', '', true);
        PERFORM set_config('request.jwt.claims', coalesce(claims, ''), true);
        PERFORM set_config('row_security', 'on', true);
        PERFORM set_config('lock_timeout', lock_ms::text, true);
        -- Three session vectors do what a security-restricted operation
        -- refuses whatever the role may do (a temporary object, a cursor WITH
        -- HOLD, LISTEN) and reach no code but the grid's own statement: they
        -- run under SET ROLE. Everything else runs restricted.
        IF stmt ~ '^(CREATE TEMP VIEW |DECLARE tg_grid_held CURSOR WITH HOLD FOR |LISTEN tg_attack_grid$)'
           AND coalesce(cardinality(setup), 0) = 0 THEN
            PERFORM set_config('role', (SELECT r.rolname FROM pg_roles r WHERE r.oid = app_role), true);
        ELSE
            PERFORM tenant_guard._grid_become(app_role);
        END IF;
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
LANGUAGE sql STABLE PARALLEL SAFE
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
LANGUAGE plpgsql STABLE PARALLEL SAFE
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
LANGUAGE plpgsql STABLE PARALLEL SAFE
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
LANGUAGE sql STABLE PARALLEL SAFE
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
LANGUAGE sql STABLE PARALLEL SAFE
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
LANGUAGE plpgsql STABLE PARALLEL SAFE
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

-- The vectors, as data: one row per vector. run names the function that runs
-- it (tenant_guard._grid_run_*, with the signature of _grid_run_statement);
-- _grid_run_statement runs the rows that are one statement as tenant A
-- (stmt, mode, setup), judged by judge:
--   read, write  _grid_judge(): rows seen or written are a leak
--   runs         the statement running at all is a leak; an error whose
--                SQLSTATE is in refusals blocks it (detail: blocked_text, or
--                the refusal); guard names the runtime guard a leak's detail
--                says is inactive without preloading ('' for "its guard")
--   residual     the statement running (with rows, in mode value) is a
--                residual channel
--   probe        SQLSTATE 22P02 (the probe's cast error) is a leak
-- needs: the rows the vector needs (a: tenant A's, b: tenant B's, other:
-- another tenant's than A, any: any row); without them it is skipped.
-- Placeholders in stmt and setup ({t}, {c}, {a}, {b}, ...): _grid_vars().
-- This is code, not configuration: the install script creates it, pg_dump
-- leaves it out, and only a superuser reads it (docs/attack-grid.md).
CREATE TABLE tenant_guard.grid_vectors (
    id           text PRIMARY KEY,
    class        text NOT NULL CHECK (class IN ('read', 'write', 'plant', 'oracle', 'context', 'privilege',
                                                'other rights', 'session', 'residual')),
    tries        text NOT NULL,
    matters      text NOT NULL,
    -- citus: run only against Citus distributed and reference tables
    needs        text CHECK (needs IN ('a', 'b', 'other', 'any', 'citus')),
    run          text NOT NULL DEFAULT '_grid_run_statement' CHECK (run ~ '^_grid_run_[a-z_]+$'),
    stmt         text,
    mode         text CHECK (mode IN ('value', 'rows', 'json')),
    judge        text CHECK (judge IN ('read', 'write', 'runs', 'residual', 'probe')),
    setup        text[],
    refusals     text[] NOT NULL DEFAULT '{42501}',
    guard        text,
    leak_text    text,
    blocked_text text,
    params       jsonb,
    CHECK (run <> '_grid_run_statement' OR (stmt IS NOT NULL AND mode IS NOT NULL AND judge IS NOT NULL))
);
REVOKE ALL ON TABLE tenant_guard.grid_vectors FROM PUBLIC;
COMMENT ON TABLE tenant_guard.grid_vectors IS
    'Internal: the attack grid''s vectors (id, class, what it tries, why it matters, how it is run); part of the extension''s code, not dumped.';

-- What every vector needs to know about one table, computed once per table.
CREATE TYPE tenant_guard._grid_target AS (
    app_role   regrole,
    t          regclass,
    tc         name,
    a          text,       -- tenant A
    b          text,       -- tenant B
    src        text,       -- the configured context source
    lock_ms    integer,
    ctx_role   text,       -- tenant A's in-tenant role and scopes (_grid_context)
    ctx_scopes text,
    owner      regrole,
    force      boolean,
    has_a      boolean,    -- rows of A, of B, of another tenant than A, any row
    has_b      boolean,
    has_other  boolean,
    has_any    boolean,
    row_b      jsonb,      -- a row of B (NULL when none)
    plant      jsonb,      -- a row to plant in B: a copy of an existing row with B's id
    vars       jsonb,      -- the placeholders of stmt and setup
    -- on a Citus table whose application role takes its context from claims
    -- or a verified token on the workers: the source of the attempts' context
    -- ('claims', or 'grid-signed': a token the grid signs); NULL: setting
    citus_source text
);
REVOKE ALL ON TYPE tenant_guard._grid_target FROM PUBLIC;

-- The placeholders of a vector's statements, as SQL text:
--   {t} the table, {c} the tenant column, {a} and {b} the tenants as
--   literals, {uc} a column an UPDATE sets to itself, {cols} the columns an
--   INSERT may name, {plant_insert} an INSERT of the planted row,
--   {plant} the planted row as a literal, {plant_cols} and {plant_vals} its
--   columns (for MERGE ... INSERT (cols) VALUES (s.cols)), {oid} the table's
--   oid, {relname} its name (unqualified), {select_all} a SELECT of every row
--   when the role may read the table (else SELECT 1).
CREATE FUNCTION tenant_guard._grid_vars(t regclass, tc name, a text, b text, app_role regrole, plant jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    uc text;
    plant_cols text := tenant_guard._grid_columns(t, plant, false);
BEGIN
    -- the column an UPDATE sets to itself: one app_role may update, not the tenant column
    SELECT quote_ident(at.attname) INTO uc FROM pg_attribute at
    WHERE at.attrelid = t AND at.attnum > 0 AND NOT at.attisdropped AND at.attgenerated = ''
      AND at.attidentity <> 'a' AND at.attname <> tc
    ORDER BY has_column_privilege(app_role, t, at.attnum, 'UPDATE') DESC, at.attnum LIMIT 1;
    RETURN jsonb_build_object(
        't', t::text, 'c', quote_ident(tc), 'a', quote_literal(a), 'b', quote_literal(b),
        'uc', coalesce(uc, quote_ident(tc)), 'cols', tenant_guard._grid_columns(t, NULL, false),
        'plant_insert', tenant_guard._grid_insert(t, plant, false, NULL), 'plant', quote_literal(plant),
        'plant_cols', plant_cols, 'oid', t::oid::text,
        'relname', (SELECT quote_ident(c.relname) FROM pg_class c WHERE c.oid = t),
        'select_all', CASE WHEN has_table_privilege(app_role, t, 'SELECT') THEN 'SELECT * FROM ' || t::text
                           ELSE 'SELECT 1' END,
        'plant_vals', (SELECT string_agg('s.' || col, ', ') FROM regexp_split_to_table(plant_cols, ', ') col));
END
$$;

-- template with each {name} replaced by vars ->> name, in one pass (a
-- replaced value is never scanned again).
CREATE FUNCTION tenant_guard._grid_expand(template text, vars jsonb)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    done text := '';
    rest text := template;
    m text[];
BEGIN
    LOOP
        m := regexp_match(rest, '^(.*?)\{([a-z_]+)\}(.*)$', 's');
        EXIT WHEN m IS NULL;
        IF NOT vars ? m[2] THEN
            RAISE EXCEPTION 'unknown placeholder {%} in an attack grid vector', m[2]
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        done := done || m[1] || coalesce(vars ->> m[2], '');
        rest := m[3];
    END LOOP;
    RETURN done || rest;
END
$$;

-- Everything the vectors need to know about table t.
CREATE FUNCTION tenant_guard._grid_prepare(app_role regrole, t regclass, tc name, a text, b text, src text,
                                           lock_ms integer)
RETURNS tenant_guard._grid_target
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g tenant_guard._grid_target;
BEGIN
    g.app_role := app_role; g.t := t; g.tc := tc; g.a := a; g.b := b; g.src := src; g.lock_ms := lock_ms;
    SELECT c.in_role, c.scopes INTO g.ctx_role, g.ctx_scopes FROM tenant_guard._grid_context(t) c;
    SELECT cl.relowner::regrole, cl.relforcerowsecurity INTO g.owner, g.force FROM pg_class cl WHERE cl.oid = t;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %1$s WHERE %2$I = %3$L), EXISTS (SELECT 1 FROM %1$s WHERE %2$I = %4$L), '
                   'EXISTS (SELECT 1 FROM %1$s WHERE %2$I IS DISTINCT FROM %3$L), EXISTS (SELECT 1 FROM %1$s)',
                   t, tc, a, b)
        INTO g.has_a, g.has_b, g.has_other, g.has_any;
    g.row_b := tenant_guard._grid_row(t, tc, b);
    g.plant := coalesce(g.row_b, tenant_guard._grid_row(t, tc, a), tenant_guard._grid_row(t, tc, NULL), '{}'::jsonb)
               || jsonb_build_object(tc, b);
    g.vars := tenant_guard._grid_vars(t, tc, a, b, app_role, g.plant);
    RETURN g;
END
$$;

-- The claims of a tenant context (org, in-tenant role, scopes as a json
-- array), at the configured claim paths, valid for an hour: on a Citus table
-- whose application role takes its context from claims on the workers, the
-- grid's attempts set these (the coordinator forwards request.jwt.claims).
CREATE FUNCTION tenant_guard._grid_claims(org text, in_role text, scopes text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    claims jsonb := jsonb_build_object('exp', extract(epoch FROM now())::bigint + 3600);
    claim_path text[];
    y record;
BEGIN
    FOR y IN SELECT * FROM (VALUES ('tenant_guard.org_claim', to_jsonb(org)),
                                   ('tenant_guard.role_claim', to_jsonb(nullif(in_role, ''))),
                                   ('tenant_guard.scopes_claim', nullif(scopes, '')::jsonb)) x(setting, value)
             WHERE x.value IS NOT NULL LOOP
        claim_path := string_to_array(current_setting(y.setting), '.');
        FOR i IN 1 .. cardinality(claim_path) - 1 LOOP
            IF jsonb_typeof(claims #> claim_path[1:i]) IS DISTINCT FROM 'object' THEN
                claims := jsonb_set(claims, claim_path[1:i], '{}');
            END IF;
        END LOOP;
        claims := jsonb_set(claims, claim_path, y.value);
    END LOOP;
    RETURN claims::text;
END
$$;

-- One attempt as the application role in tenant A's context (or org's), as
-- _grid_attempt.
CREATE FUNCTION tenant_guard._grid_try(g tenant_guard._grid_target, stmt text, mode text, setup text[] DEFAULT NULL,
                                       org text DEFAULT NULL,
                                       OUT n bigint, OUT err_state text, OUT err_message text,
                                       OUT err_constraint text, OUT result jsonb)
RETURNS record
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM tenant_guard._grid_attempt(g.app_role, coalesce(g.citus_source, 'setting'),
                                             coalesce(org, g.a), g.ctx_role, g.ctx_scopes,
                                             CASE WHEN g.citus_source = 'claims'
                                                  THEN tenant_guard._grid_claims(coalesce(org, g.a), g.ctx_role, g.ctx_scopes)
                                             END,
                                             setup, stmt, mode, g.lock_ms)
$$;

-- ' (tenant_guard is not in shared_preload_libraries, ...)' when the runtime
-- guard named guard ('' for "its guard") is not active; '' otherwise.
CREATE FUNCTION tenant_guard._grid_guard_note(guard text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN guard IS NULL OR tenant_guard._runtime_guards() THEN ''
                ELSE format(' (tenant_guard is not in shared_preload_libraries, so its %sguard is not active)',
                            nullif(guard || ' ', ' ')) END
$$;

-- The verdict on one attempt of a statement vector: {outcome, detail}.
CREATE FUNCTION tenant_guard._grid_verdict(v tenant_guard.grid_vectors, n bigint, err_state text, err_message text)
RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN v.judge IN ('read', 'write') THEN
            tenant_guard._grid_judge(v.judge, n, err_state, err_message, v.leak_text, v.blocked_text)
        WHEN v.judge = 'runs' AND err_state IS NULL THEN
            ARRAY['leak', v.leak_text || tenant_guard._grid_guard_note(v.guard)]
        WHEN v.judge = 'runs' AND err_state = ANY (v.refusals) THEN
            ARRAY['blocked', coalesce(v.blocked_text, 'refused: ' || err_message)]
        WHEN v.judge = 'residual' AND err_state IS NULL AND coalesce(n, 1) > 0 THEN ARRAY['residual', v.leak_text]
        WHEN v.judge = 'residual' THEN tenant_guard._grid_judge('read', n, err_state, err_message, '', v.blocked_text)
        WHEN v.judge = 'probe' AND err_state = '22P02' THEN ARRAY['leak', v.leak_text]
        WHEN v.judge = 'probe' AND (err_state IS NULL OR err_state = ANY (v.refusals)) THEN
            ARRAY['blocked', coalesce('refused: ' || err_message, v.blocked_text)]
        ELSE ARRAY['skipped', format('could not decide: %s (SQLSTATE %s)', err_message, err_state)]
    END
$$;

-- The vectors that are one statement run as tenant A.
CREATE FUNCTION tenant_guard._grid_run_statement(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    res record;
    j text[];
BEGIN
    res := tenant_guard._grid_try(g, tenant_guard._grid_expand(v.stmt, g.vars), v.mode,
                                  ARRAY(SELECT tenant_guard._grid_expand(s, g.vars) FROM unnest(v.setup) s));
    v.leak_text := tenant_guard._grid_expand(v.leak_text, g.vars);
    j := tenant_guard._grid_verdict(v, res.n, res.err_state, res.err_message);
    vector := v.id; outcome := j[1]; detail := j[2];
    RETURN NEXT;
END
$$;

-- Every vector against one table. a, b: the two tenants as text; src: the
-- configured context source (for the context vectors).
-- prepared: _grid_prepare()'s result when the caller computed it earlier
-- (on Citus, before any attempt: a transaction that changed shards as one
-- role cannot read them as another, so the superuser's reads come first).
CREATE FUNCTION tenant_guard._grid_table(app_role regrole, t regclass, tc name, a text, b text, src text,
                                         lock_ms integer, prepared jsonb DEFAULT NULL)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g tenant_guard._grid_target := CASE WHEN prepared IS NULL
                                        THEN tenant_guard._grid_prepare(app_role, t, tc, a, b, src, lock_ms)
                                        ELSE pg_catalog.jsonb_populate_record(NULL::tenant_guard._grid_target, prepared) END;
    v tenant_guard.grid_vectors;
    citus boolean := tenant_guard._citus_present()
                     AND tenant_guard._citus_table(t);
    control record;
    first_error text;
    unreached text;
BEGIN
    -- On a Citus table the attempts run on the workers' shards: as tenant A
    -- the role must see A's rows there, or no outcome tells anything (the
    -- context did not reach the workers, e.g. their context_source for the
    -- role is not 'setting', which the grid's attempts use).
    -- A role that takes its context from claims on the workers is attacked
    -- with claims (the coordinator forwards request.jwt.claims to them), a
    -- signed role with tokens the grid signs (forwarded as
    -- tenant_guard.forwarded_token; each worker verifies them itself).
    IF citus AND g.has_a THEN
        control := tenant_guard._grid_try(g, format('SELECT count(*) FROM %s WHERE %I = %L', t, tc, a), 'value');
        first_error := control.err_message;
        IF control.err_state IS NOT NULL OR coalesce(control.n, 0) = 0 THEN
            g.citus_source := 'claims';
            control := tenant_guard._grid_try(g, format('SELECT count(*) FROM %s WHERE %I = %L', t, tc, a), 'value');
        END IF;
        IF control.err_state IS NOT NULL OR coalesce(control.n, 0) = 0 THEN
            g.citus_source := 'grid-signed';
            control := tenant_guard._grid_try(g, format('SELECT count(*) FROM %s WHERE %I = %L', t, tc, a), 'value');
        END IF;
        IF control.err_state IS NOT NULL OR coalesce(control.n, 0) = 0 THEN
            g.citus_source := NULL;
            unreached := format('could not decide: as tenant A the role saw none of tenant A''s rows on the Citus '
                                'workers (%s); the grid''s context (context_source = setting, or claims) did not reach '
                                'them, ', coalesce(first_error, 'no error'))
                || CASE WHEN control.err_state = '55000' THEN
                       format('and a signed role needs a token of tenant A, but %s. Configure an HS256 key on every '
                              'node (tenant_guard.jwt_algorithm = HS256 with tenant_guard.jwt_secret_file, or an "oct" '
                              'key in tenant_guard.jwt_jwks_file), or call tenant_guard.set_context() with a token of '
                              'tenant A before the grid', control.err_message)
                   ELSE format('nor did a token of tenant A signed by the grid (%s)',
                               coalesce(control.err_message, 'no error')) END;
        END IF;
    END IF;
    FOR v IN SELECT * FROM tenant_guard.grid_vectors x ORDER BY x.id LOOP
        IF v.needs = 'citus' AND NOT citus THEN
            CONTINUE;
        ELSIF unreached IS NOT NULL AND v.class IN ('read', 'write', 'plant', 'oracle', 'context')
              AND v.needs IS DISTINCT FROM 'citus' THEN
            vector := v.id; outcome := 'skipped'; detail := unreached;
            RETURN NEXT;
        ELSIF (v.needs = 'a' AND NOT g.has_a) OR (v.needs = 'b' AND NOT g.has_b)
           OR (v.needs = 'other' AND NOT g.has_other) OR (v.needs = 'any' AND NOT g.has_any) THEN
            vector := v.id; outcome := 'skipped';
            detail := CASE v.needs WHEN 'a' THEN 'tenant A has no rows in this table; pass seed => true'
                                   WHEN 'b' THEN 'tenant B has no rows in this table; pass seed => true'
                                   WHEN 'other' THEN 'no rows of another tenant than A in this table; pass seed => true'
                                   ELSE 'the table has no rows; pass seed => true' END;
            RETURN NEXT;
        ELSE
            RETURN QUERY EXECUTE format('SELECT * FROM tenant_guard.%I($1, $2)', v.run) USING g, v;
        END IF;
    END LOOP;
END
$$;

-- upsert_into_other_tenant: a row of B inserted ON CONFLICT DO NOTHING; a
-- silent conflict means the policies accepted the row.
CREATE FUNCTION tenant_guard._grid_run_upsert_into(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    res record := tenant_guard._grid_try(g, tenant_guard._grid_insert(g.t, g.plant, false, 'ON CONFLICT DO NOTHING'),
                                         'rows');
    j text[];
BEGIN
    vector := v.id;
    IF res.err_state IS NULL THEN
        outcome := 'leak';
        detail := CASE WHEN res.n > 0 THEN 'INSERT ... ON CONFLICT DO NOTHING planted a row of tenant B'
                       ELSE 'row-level security accepted a row of tenant B; it only conflicted with an existing row' END;
    ELSE
        j := tenant_guard._grid_judge('write', res.n, res.err_state, res.err_message, '', '');
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;
END
$$;

-- The unique index on plain columns (not partial) an oracle conflicts on:
-- with without_tenant, only one without the tenant column; otherwise one
-- without the tenant column first. relname NULL when there is none.
CREATE FUNCTION tenant_guard._grid_arbiter(t regclass, tc name, without_tenant boolean,
                                           OUT relname name, OUT cols text, OUT has_tc boolean, OUT idx oid)
RETURNS record
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ic.relname, string_agg(quote_ident(at.attname), ', ' ORDER BY k.ord), bool_or(at.attname = tc), i.indexrelid
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
    JOIN pg_attribute at ON at.attrelid = t AND at.attnum = k.attnum
    WHERE i.indrelid = t AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
      AND NOT (without_tenant AND EXISTS (SELECT 1 FROM pg_attribute tca WHERE tca.attrelid = t AND tca.attname = tc
                                          AND tca.attnum = ANY (i.indkey)))
    GROUP BY ic.relname, i.indexrelid ORDER BY bool_or(at.attname = tc), ic.relname LIMIT 1
$$;

-- upsert_update_other_tenant: B's key inserted as tenant A with ON CONFLICT
-- ... DO UPDATE: does the update reach B's row?
CREATE FUNCTION tenant_guard._grid_run_upsert_update(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    arbiter record;
    res record;
    j text[];
BEGIN
    SELECT * INTO arbiter FROM tenant_guard._grid_arbiter(g.t, g.tc, false);
    vector := v.id;
    IF arbiter.relname IS NULL THEN
        outcome := 'skipped'; detail := 'no unique index on plain columns to conflict on';
    ELSE
        res := tenant_guard._grid_try(g,
            'WITH u AS (' || tenant_guard._grid_insert(g.t, CASE WHEN arbiter.has_tc THEN g.row_b
                                                                 ELSE g.row_b || jsonb_build_object(g.tc, g.a) END, true,
                format('ON CONFLICT (%s) DO UPDATE SET %s = EXCLUDED.%s RETURNING %I', arbiter.cols, g.vars ->> 'uc',
                       g.vars ->> 'uc', g.tc))
            || format(') SELECT count(*) FROM u WHERE %I = %L', g.tc, g.b), 'value');
        j := tenant_guard._grid_judge('write', res.n, res.err_state, res.err_message,
            format('INSERT ... ON CONFLICT (%s) DO UPDATE changed a row of tenant B', arbiter.cols),
            format('INSERT ... ON CONFLICT (%s) DO UPDATE did not reach a row of tenant B', arbiter.cols));
        outcome := j[1]; detail := j[2];
    END IF;
    RETURN NEXT;
END
$$;

-- unique_oracle: B's row inserted as a row of A; a unique violation on an
-- index without the tenant column (anywhere in the partition tree) tells A
-- the key exists.
CREATE FUNCTION tenant_guard._grid_run_unique_oracle(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    res record := tenant_guard._grid_try(g, tenant_guard._grid_insert(g.t, g.row_b || jsonb_build_object(g.tc, g.a),
                                                                      true, NULL), 'rows');
    idx oid;
BEGIN
    vector := v.id;
    -- the violated index may belong to a partition: look in the whole tree
    IF res.err_state = '23505' AND NOT EXISTS (
            WITH RECURSIVE tree(rel) AS (
                SELECT g.t::oid UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.rel)
            SELECT 1 FROM tree JOIN pg_index i ON i.indrelid = tree.rel
            JOIN pg_class ic ON ic.oid = i.indexrelid
            JOIN pg_attribute at ON at.attrelid = tree.rel AND at.attname = g.tc
            WHERE ic.relname = res.err_constraint AND at.attnum = ANY (i.indkey)) THEN
        WITH RECURSIVE tree(rel) AS (
            SELECT g.t::oid UNION SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.rel)
        SELECT i.indexrelid INTO idx FROM tree JOIN pg_index i ON i.indrelid = tree.rel
        JOIN pg_class ic ON ic.oid = i.indexrelid WHERE ic.relname = res.err_constraint LIMIT 1;
        IF coalesce(tenant_guard._random_key(idx, g.tc), false) THEN
            outcome := 'residual';
            detail := format('unique index %s does not include the tenant column, but its key is a random uuid drawn '
                             'by its default: inserting tenant B''s key as tenant A fails only for a caller who '
                             'already has the key, which cannot be guessed', quote_ident(res.err_constraint));
        ELSE
            outcome := 'leak';
            detail := format('unique index %s does not include the tenant column: inserting tenant B''s key as '
                             'tenant A fails, which tells A the key exists', quote_ident(res.err_constraint));
        END IF;
    ELSIF res.err_state IS NULL OR res.err_state IN ('23505', '23503', '42501') THEN
        outcome := 'blocked';
        detail := 'no unique index revealed tenant B''s key'
                  || CASE WHEN res.err_state IS NOT NULL THEN ' (' || res.err_message || ')' ELSE '' END;
    ELSE
        outcome := 'skipped';
        detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
    END IF;
    RETURN NEXT;
END
$$;

-- on_conflict_oracle: the same ON CONFLICT (key) DO NOTHING on a unique
-- index without the tenant column: nothing inserted means B's key exists.
CREATE FUNCTION tenant_guard._grid_run_on_conflict_oracle(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    arbiter record;
    res record;
BEGIN
    SELECT * INTO arbiter FROM tenant_guard._grid_arbiter(g.t, g.tc, true);
    vector := v.id;
    IF arbiter.relname IS NULL THEN
        outcome := 'blocked'; detail := 'every unique index on plain columns includes the tenant column';
        RETURN NEXT;
        RETURN;
    END IF;
    res := tenant_guard._grid_try(g, tenant_guard._grid_insert(g.t, g.row_b || jsonb_build_object(g.tc, g.a), true,
                                      format('ON CONFLICT (%s) DO NOTHING', arbiter.cols)), 'rows');
    IF res.err_state IS NULL AND res.n = 0 AND tenant_guard._random_key(arbiter.idx, g.tc) THEN
        outcome := 'residual';
        detail := format('INSERT ... ON CONFLICT (%s) DO NOTHING as tenant A inserted nothing: unique index %s does '
                         'not include the tenant column, but its key is a random uuid drawn by its default, so only a '
                         'caller who already has tenant B''s key learns that it exists', arbiter.cols,
                         quote_ident(arbiter.relname));
    ELSIF res.err_state IS NULL AND res.n = 0 THEN
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
    RETURN NEXT;
END
$$;

-- foreign_key_oracle: for each foreign key referencing the table, a row of
-- A in the referencing table that references B's row.
CREATE FUNCTION tenant_guard._grid_run_foreign_key_oracle(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    x record;
    y record;
    r_tmpl jsonb;
    r_tc name;
    res record;
    found_any boolean := false;
BEGIN
    vector := v.id;
    FOR x IN
        SELECT con.conname, con.conrelid::regclass AS r, con.conkey, con.confkey
        FROM pg_constraint con WHERE con.contype = 'f' AND con.confrelid = g.t
        ORDER BY con.conrelid::regclass::text, con.conname
    LOOP
        found_any := true;
        IF NOT g.has_b THEN
            outcome := 'skipped';
            detail := format('%s on %s: tenant B has no rows in this table; pass seed => true', quote_ident(x.conname),
                             x.r);
            RETURN NEXT;
            CONTINUE;
        END IF;
        r_tmpl := tenant_guard._grid_fresh(x.r, coalesce(tenant_guard._grid_row(x.r, NULL, NULL), '{}'::jsonb));
        FOR y IN SELECT ra.attname AS rcol, ta.attname AS tcol
                 FROM unnest(x.conkey, x.confkey) k(rk, tk)
                 JOIN pg_attribute ra ON ra.attrelid = x.r AND ra.attnum = k.rk
                 JOIN pg_attribute ta ON ta.attrelid = g.t AND ta.attnum = k.tk
        LOOP
            r_tmpl := r_tmpl || jsonb_build_object(y.rcol, g.row_b -> y.tcol::text);
        END LOOP;
        SELECT p.tenant_column INTO r_tc FROM tenant_guard.protected_tables p WHERE p.tbl = x.r;
        IF FOUND THEN
            r_tmpl := r_tmpl || jsonb_build_object(r_tc, g.a);
        END IF;
        res := tenant_guard._grid_attempt(g.app_role, coalesce(g.citus_source, 'setting'), g.a,
                                          (tenant_guard._grid_context(x.r)).in_role,
                                          (tenant_guard._grid_context(x.r)).scopes,
                                          CASE WHEN g.citus_source = 'claims'
                                               THEN tenant_guard._grid_claims(g.a, (tenant_guard._grid_context(x.r)).in_role,
                                                                              (tenant_guard._grid_context(x.r)).scopes)
                                          END, NULL,
                                          tenant_guard._grid_insert(x.r, r_tmpl, false, NULL), 'rows', g.lock_ms);
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
END
$$;

-- Missing and malformed context, under the configured source: for each
-- org id and claims value of params (orgs, claims; {b} is tenant B's id as
-- text), a read and an UPDATE of every row; the worst result counts.
CREATE FUNCTION tenant_guard._grid_run_context(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vars jsonb := g.vars || jsonb_build_object('b', g.b);
    orgs text[] := ARRAY(SELECT tenant_guard._grid_expand(e, vars) FROM jsonb_array_elements_text(v.params -> 'orgs') e);
    claims text[] := ARRAY(SELECT tenant_guard._grid_expand(e, vars)
                           FROM jsonb_array_elements_text(v.params -> 'claims') e);
    res record;
    j text[];
BEGIN
    FOR i IN 1 .. greatest(cardinality(orgs), cardinality(claims)) LOOP
        res := tenant_guard._grid_attempt(g.app_role, g.src, orgs[least(i, cardinality(orgs))], NULL, NULL,
            claims[least(i, cardinality(claims))], NULL,
            format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 100) s', g.t), 'value', g.lock_ms);
        j := tenant_guard._grid_worse(j, tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
            'a read without a valid tenant context returned %n row(s)',
            'without a valid tenant context nothing was visible or changed'));
        res := tenant_guard._grid_attempt(g.app_role, g.src, orgs[least(i, cardinality(orgs))], NULL, NULL,
            claims[least(i, cardinality(claims))], NULL,
            tenant_guard._grid_expand('UPDATE {t} SET {uc} = {uc}', g.vars), 'rows', g.lock_ms);
        j := tenant_guard._grid_worse(j, tenant_guard._grid_judge('write', res.n, res.err_state, res.err_message,
            'an UPDATE without a valid tenant context changed %n row(s)',
            'without a valid tenant context nothing was visible or changed'));
    END LOOP;
    vector := v.id; outcome := j[1]; detail := j[2];
    RETURN NEXT;
END
$$;

-- Forged context: the application role sets its own context for tenant B
-- (params.attempts: the setup statements of each attempt, with {org},
-- {role}, {scopes}, {claims} (request.jwt.claims naming B at the configured
-- claim paths) and {token} (an unsigned token of those claims); leak: the
-- detail of a leak, %s the context source). The worst attempt counts.
CREATE FUNCTION tenant_guard._grid_run_forged(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    count_b text := tenant_guard._grid_expand('SELECT count(*) FROM (SELECT 1 FROM {t} WHERE {c} = {b} LIMIT 100) s',
                                              g.vars);
    claims_b jsonb := jsonb_build_object('exp', extract(epoch FROM now())::bigint + 3600);
    claim_path text[];
    vars jsonb;
    y record;
    setup jsonb;
    res record;
    j text[];
BEGIN
    vector := v.id;
    -- tenant B's rows visible with no context at all: forging adds nothing
    IF (tenant_guard._grid_attempt(g.app_role, g.src, NULL, NULL, NULL, NULL, NULL, count_b, 'value', g.lock_ms)).n > 0 THEN
        outcome := 'skipped';
        detail := 'rows of tenant B are visible without any context (see no_context), so this vector cannot tell '
                  'whether forging works';
        RETURN NEXT;
        RETURN;
    END IF;
    FOR y IN SELECT * FROM (VALUES ('tenant_guard.org_claim', to_jsonb(g.b)),
                                   ('tenant_guard.role_claim', to_jsonb(g.ctx_role)),
                                   ('tenant_guard.scopes_claim', g.ctx_scopes::jsonb)) s(setting, value)
             WHERE s.value IS NOT NULL LOOP
        claim_path := string_to_array(current_setting(y.setting), '.');
        FOR i IN 1 .. cardinality(claim_path) - 1 LOOP
            IF jsonb_typeof(claims_b #> claim_path[1:i]) IS DISTINCT FROM 'object' THEN
                claims_b := jsonb_set(claims_b, claim_path[1:i], '{}');
            END IF;
        END LOOP;
        claims_b := jsonb_set(claims_b, claim_path, y.value);
    END LOOP;
    vars := jsonb_build_object(
        'org', quote_literal(g.b), 'role', quote_literal(coalesce(g.ctx_role, '')),
        'scopes', quote_literal(coalesce(g.ctx_scopes, '')), 'claims', quote_literal(claims_b),
        'token', quote_literal(translate(encode(convert_to('{"alg":"none","typ":"JWT"}', 'UTF8'), 'base64'), E'+/=\n', '-_')
                               || '.' || translate(encode(convert_to(claims_b::text, 'UTF8'), 'base64'), E'+/=\n', '-_')
                               || '.'));
    FOR i IN 0 .. jsonb_array_length(v.params -> 'attempts') - 1 LOOP
        setup := v.params -> 'attempts' -> i;
        res := tenant_guard._grid_attempt(g.app_role, g.src, NULL, NULL, NULL, NULL,
            ARRAY(SELECT tenant_guard._grid_expand(s, vars) FROM jsonb_array_elements_text(setup -> 'setup') s),
            count_b, 'value', g.lock_ms);
        IF res.err_state IS NOT NULL AND (setup ->> 'any_error_refuses')::boolean THEN
            j := tenant_guard._grid_worse(j, ARRAY['blocked', 'refused: ' || res.err_message]);
        ELSE
            j := tenant_guard._grid_worse(j, tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
                format(setup ->> 'leak', g.src), format('no row of tenant B was visible (context_source = %s)', g.src)));
        END IF;
    END LOOP;
    outcome := j[1]; detail := j[2];
    RETURN NEXT;
END
$$;
-- set_role_owner and owner_without_force: the role and the table's owner.
-- SET ROLE checks the session user's memberships, and the grid's session
-- user is a superuser: membership of app_role decides, not an attempt.
CREATE FUNCTION tenant_guard._grid_run_owner(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    res record;
BEGIN
    vector := v.id;
    IF v.id = 'set_role_owner' THEN
        IF pg_has_role(g.app_role, g.owner, 'MEMBER') THEN
            outcome := 'leak';
            detail := format('the role %s the owner %s, who can unprotect() or alter the table',
                             CASE WHEN g.owner = g.app_role THEN 'is' ELSE 'can SET ROLE to' END, g.owner);
        ELSE
            outcome := 'blocked';
            detail := format('the role is not a member of the owner %s, so SET ROLE to it is refused', g.owner);
        END IF;
    ELSIF NOT pg_has_role(g.app_role, g.owner, 'USAGE') THEN
        outcome := 'blocked';
        detail := format('the role does not have the privileges of the owner %s', g.owner);
    ELSE
        res := tenant_guard._grid_try(g, format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1) s', g.t), 'value',
                                      ARRAY['SELECT pg_catalog.set_config(''row_security'', ''off'', true)']);
        IF res.err_state IS NULL THEN
            outcome := 'leak';
            detail := format('the role has the privileges of the owner %s and FORCE ROW LEVEL SECURITY is %s: '
                             'row-level security does not apply to it', g.owner,
                             CASE WHEN g.force THEN 'on, yet' ELSE 'off' END);
        ELSIF res.err_state = '42501' THEN
            outcome := 'blocked';
            detail := format('the role has the privileges of the owner %s, but FORCE ROW LEVEL SECURITY binds it',
                             g.owner);
        ELSE
            outcome := 'skipped';
            detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
        END IF;
    END IF;
    RETURN NEXT;
END
$$;

-- role_attributes: a superuser or BYPASSRLS role the role is or can SET
-- ROLE to, reading with row_security = off.
CREATE FUNCTION tenant_guard._grid_run_role_attributes(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    x record;
    res record;
    gx tenant_guard._grid_target;
BEGIN
    vector := v.id;
    SELECT r.oid::regrole AS r, r.rolname, r.rolsuper INTO x FROM pg_roles r
    WHERE (r.rolsuper OR r.rolbypassrls)
      AND (r.oid = g.app_role OR pg_has_role(g.app_role, r.oid, 'MEMBER'))
    ORDER BY r.oid <> g.app_role, r.rolname LIMIT 1;
    IF NOT FOUND THEN
        outcome := 'blocked';
        detail := 'the role is neither superuser nor BYPASSRLS and cannot SET ROLE to such a role';
    ELSE
        -- the attempt runs as that role, as SET ROLE to it would make it
        gx := g;
        gx.app_role := x.r;
        res := tenant_guard._grid_try(gx, format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1) s', g.t), 'value',
            ARRAY['SELECT pg_catalog.set_config(''row_security'', ''off'', true)']);
        IF res.err_state IS NULL THEN
            outcome := 'leak';
            detail := format('the role %s %s, which row-level security does not apply to',
                             CASE WHEN x.r = g.app_role THEN 'is' ELSE 'can SET ROLE to' END,
                             CASE WHEN x.r = g.app_role THEN CASE WHEN x.rolsuper THEN 'a superuser' ELSE 'BYPASSRLS' END
                                  ELSE x.r::text || CASE WHEN x.rolsuper THEN ' (superuser)' ELSE ' (BYPASSRLS)' END END);
        ELSE
            outcome := 'blocked'; detail := 'refused: ' || res.err_message;
        END IF;
    END IF;
    RETURN NEXT;
END
$$;

-- truncate: TRUNCATE runs, or passes the privilege checks and is stopped
-- only by the lock timeout or a foreign key.
CREATE FUNCTION tenant_guard._grid_run_truncate(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    res record := tenant_guard._grid_try(g, format('TRUNCATE %s', g.t), 'rows');
BEGIN
    vector := v.id;
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
    IF outcome = 'leak' THEN
        detail := detail || tenant_guard._grid_guard_note(v.guard);
    END IF;
    RETURN NEXT;
END
$$;

-- explain_analyze: EXPLAIN ANALYZE with index scans off, while row-level
-- security applies (a read with row_security = off is refused).
CREATE FUNCTION tenant_guard._grid_run_explain_analyze(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rls_applies boolean := (tenant_guard._grid_try(g, format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1) s', g.t),
        'value', ARRAY['SELECT pg_catalog.set_config(''row_security'', ''off'', true)'])).err_state IS NOT NULL;
    res record := tenant_guard._grid_try(g,
        format('EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) SELECT * FROM %s', g.t), 'json',
        ARRAY['SELECT pg_catalog.set_config(''enable_indexscan'', ''off'', true)',
              'SELECT pg_catalog.set_config(''enable_bitmapscan'', ''off'', true)',
              'SELECT pg_catalog.set_config(''enable_indexonlyscan'', ''off'', true)']);
BEGIN
    vector := v.id;
    IF res.err_state IS NULL AND NOT rls_applies THEN
        outcome := 'skipped';
        detail := 'row-level security does not apply to the role here (see row_security_off): EXPLAIN ANALYZE shows '
                  'nothing the read vectors do not';
    ELSIF res.err_state IS NULL THEN
        outcome := 'leak';
        detail := format('EXPLAIN ANALYZE ran: its actual row counts reveal rows that row-level security filtered '
                         'out (Rows Removed by Filter: %s)',
                         (SELECT coalesce(sum(x::text::bigint), 0)
                          FROM jsonb_path_query(res.result, 'strict $.**."Rows Removed by Filter"') x))
                  || tenant_guard._grid_guard_note(v.guard);
    ELSIF res.err_state = '42501' THEN
        outcome := 'blocked'; detail := 'refused: ' || res.err_message;
    ELSE
        outcome := 'skipped'; detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
    END IF;
    RETURN NEXT;
END
$$;

-- alter_policy: DROP POLICY (the wall first), then DISABLE ROW LEVEL SECURITY.
CREATE FUNCTION tenant_guard._grid_run_alter_policy(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stmt text;
    res record;
    j text[];
BEGIN
    FOR stmt IN
        SELECT x.s FROM ((SELECT 1 AS o, format('DROP POLICY %I ON %s', p.polname, g.t) AS s
                          FROM pg_policy p WHERE p.polrelid = g.t
                          ORDER BY p.polname <> 'tg_wall', p.polpermissive, p.polname LIMIT 1)
                         UNION ALL SELECT 2, format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', g.t)) x
        ORDER BY x.o
    LOOP
        res := tenant_guard._grid_try(g, stmt, 'rows');
        j := tenant_guard._grid_worse(j, CASE
            WHEN res.err_state IS NULL THEN ARRAY['leak', stmt || ' succeeded']
            WHEN res.err_state = '55P03' THEN ARRAY['leak', stmt || ' passed the privilege checks (it then waited '
                                                          || 'for the table lock)']
            WHEN res.err_state IN ('42501', '55000') THEN ARRAY['blocked', 'refused: ' || res.err_message]
            ELSE ARRAY['skipped', format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state)] END);
    END LOOP;
    vector := v.id; outcome := j[1]; detail := j[2];
    RETURN NEXT;
END
$$;

-- definer_view: every view over the table without security_invoker that
-- the role can read, read as a tenant that owns no rows and filtered on B.
CREATE FUNCTION tenant_guard._grid_run_definer_view(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ghost constant text := 'ffffffff-ffff-4fff-bfff-ffffffffffff';
    x record;
    res record;
    j text[];
    found_any boolean := false;
BEGIN
    vector := v.id;
    FOR x IN
        SELECT dv.view, EXISTS (SELECT 1 FROM pg_attribute va WHERE va.attrelid = dv.view AND va.attname = g.tc
                                AND NOT va.attisdropped) AS has_tc
        FROM tenant_guard._grid_dependent_views(g.t) dv JOIN pg_class vc ON vc.oid = dv.view
        WHERE dv.relkind = 'v'
          AND NOT coalesce((SELECT option_value::boolean FROM pg_options_to_table(vc.reloptions)
                            WHERE option_name = 'security_invoker'), false)
          AND has_table_privilege(g.app_role, dv.view, 'SELECT')
    LOOP
        found_any := true;
        res := tenant_guard._grid_try(g, format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 100) s', x.view), 'value',
                                      NULL, ghost);
        j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
            x.view::text || ' showed %n row(s) to a tenant that owns no rows',
            x.view::text || ' showed no row to a tenant that owns none');
        IF x.has_tc AND g.has_b THEN
            res := tenant_guard._grid_try(g, format('SELECT count(*) FROM (SELECT 1 FROM %s WHERE %I = %L LIMIT 100) s',
                                                    x.view, g.tc, g.b), 'value');
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
END
$$;

-- definer_function: every SECURITY DEFINER function that mentions the table
-- and that the role can execute (set-returning ones without arguments are
-- called, the others reported for review).
CREATE FUNCTION tenant_guard._grid_run_definer_function(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ghost constant text := 'ffffffff-ffff-4fff-bfff-ffffffffffff';
    x record;
    res record;
    j text[];
    found_any boolean := false;
BEGIN
    vector := v.id;
    FOR x IN
        SELECT p.oid::regprocedure AS f, p.oid, p.pronargs, p.proretset
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_class tcl ON tcl.oid = g.t
        WHERE p.prosecdef AND p.prokind = 'f'
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenant_guard')
          AND has_function_privilege(g.app_role, p.oid, 'EXECUTE')
          AND (p.prosrc ~* ('\m' || regexp_replace(tcl.relname, '([^a-zA-Z0-9_])', '\\\1', 'g') || '\M')
               OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.refclassid = 'pg_class'::regclass AND d.refobjid = g.t))
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
        res := tenant_guard._grid_try(g, format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 100) s', x.f), 'value',
                                      NULL, ghost);
        j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
            x.f::text || ' returned %n row(s) to a tenant that owns no rows',
            x.f::text || ' returned no row to a tenant that owns none');
        IF g.has_b THEN
            res := tenant_guard._grid_try(g, format('SELECT count(*) FROM (SELECT 1 FROM %s x WHERE x.%I = %L LIMIT 100) s',
                                                    x.f, g.tc, g.b), 'value');
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
END
$$;

-- materialized_view: every materialized view over the table, read as a
-- tenant that owns no rows.
CREATE FUNCTION tenant_guard._grid_run_materialized_view(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    x record;
    res record;
    j text[];
    found_any boolean := false;
BEGIN
    vector := v.id;
    FOR x IN
        SELECT dv.view, has_table_privilege(g.app_role, dv.view, 'SELECT') AS readable
        FROM tenant_guard._grid_dependent_views(g.t) dv WHERE dv.relkind = 'm'
    LOOP
        found_any := true;
        IF NOT x.readable THEN
            outcome := 'blocked'; detail := format('%s: the role cannot read it', x.view);
        ELSE
            res := tenant_guard._grid_try(g, format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 100) s', x.view),
                                          'value', NULL, 'ffffffff-ffff-4fff-bfff-ffffffffffff');
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
END
$$;

-- partition_direct and child_insert: each partition and inheritance child,
-- read and written directly.
CREATE FUNCTION tenant_guard._grid_run_children(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    x record;
    res record;
    j text[];
    plant jsonb;
    found_any boolean := false;
BEGIN
    vector := v.id;
    FOR x IN
        WITH RECURSIVE d(rel) AS (
            SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = g.t
            UNION SELECT i.inhrelid FROM pg_inherits i JOIN d ON i.inhparent = d.rel)
        SELECT d.rel::regclass AS child FROM d ORDER BY d.rel::regclass::text
    LOOP
        found_any := true;
        IF v.id = 'partition_direct' THEN
            res := tenant_guard._grid_try(g, format('SELECT count(*) FROM (SELECT 1 FROM ONLY %s WHERE %I = %L LIMIT 100) s',
                                                    x.child, g.tc, g.b), 'value');
            j := tenant_guard._grid_judge('read', res.n, res.err_state, res.err_message,
                x.child::text || ': tenant A read %n row(s) of tenant B directly', NULL);
            res := tenant_guard._grid_try(g, format('SELECT count(*) FROM (SELECT 1 FROM ONLY %s LIMIT 1) s', x.child),
                                          'value', ARRAY['SELECT pg_catalog.set_config(''row_security'', ''off'', true)']);
            IF res.err_state IS NULL THEN
                j := tenant_guard._grid_worse(j, ARRAY['leak', x.child::text
                    || ': row-level security does not apply to the role on it (row_security = off was not refused)']);
            END IF;
            IF j[1] = 'blocked' THEN
                j[2] := x.child::text || ': '
                        || coalesce(j[2], 'no row of tenant B was visible and row-level security applies');
            END IF;
        ELSE
            plant := coalesce(tenant_guard._grid_row(x.child, g.tc, g.b), tenant_guard._grid_row(x.child, g.tc, g.a),
                              tenant_guard._grid_row(x.child, NULL, NULL), g.row_b, '{}'::jsonb)
                     || jsonb_build_object(g.tc, g.b);
            plant := (SELECT jsonb_object_agg(k, val) FROM jsonb_each(plant) e(k, val)
                      WHERE EXISTS (SELECT 1 FROM pg_attribute ca WHERE ca.attrelid = x.child AND ca.attname = k
                                    AND NOT ca.attisdropped));
            res := tenant_guard._grid_try(g, tenant_guard._grid_insert(x.child, plant, false, NULL), 'rows');
            j := tenant_guard._grid_judge('write', res.n, res.err_state, res.err_message,
                x.child::text || ': tenant A inserted a row of tenant B directly',
                x.child::text || ': the row of tenant B was not inserted');
            j[2] := CASE WHEN j[2] LIKE 'refused: %' OR j[2] LIKE 'could not%' OR j[2] LIKE 'row-level%'
                         THEN x.child::text || ': ' || j[2] ELSE j[2] END;
        END IF;
        outcome := j[1]; detail := j[2];
        RETURN NEXT;
    END LOOP;
    IF NOT found_any THEN
        outcome := 'skipped'; detail := 'no partitions or inheritance children';
        RETURN NEXT;
    END IF;
END
$$;

-- query_text: the statement text of the role's other sessions, in
-- pg_stat_activity and pg_stat_statements.
CREATE FUNCTION tenant_guard._grid_run_query_text(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    res record := tenant_guard._grid_try(g, 'SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE false', 'value');
    j text[];
    x record;
BEGIN
    IF res.err_state IS NOT NULL THEN
        j := tenant_guard._grid_judge('read', NULL, res.err_state, res.err_message, '', '');
    ELSIF pg_has_role(g.app_role, 'pg_read_all_stats', 'USAGE') THEN
        j := ARRAY['leak', 'the role has the privileges of pg_read_all_stats: it reads the statement text of every '
                           'session in pg_stat_activity'];
    ELSIF coalesce(tenant_guard._lint_role_setting(g.app_role, 'track_activities')::boolean, true) THEN
        j := ARRAY['leak', format('the sessions of %s record their statement text (track_activities is on for them), '
                                  'and every session of the role reads it in pg_stat_activity: each tenant sees the '
                                  'statements of the others, literals included', g.app_role)];
    ELSE
        j := ARRAY['blocked', format('the sessions of %s do not record their statement text (track_activities is off '
                                     'for the role)', g.app_role)];
    END IF;
    FOR x IN
        SELECT c.oid::regclass AS r FROM pg_extension e JOIN pg_class c ON c.relnamespace = e.extnamespace
        WHERE e.extname = 'pg_stat_statements' AND c.relname = 'pg_stat_statements'
    LOOP
        res := tenant_guard._grid_try(g, format('SELECT count(*) FROM %s WHERE false', x.r), 'value');
        IF res.err_state IS NULL THEN
            j := tenant_guard._grid_worse(j, ARRAY['leak', format('the role can read %s, the statements of every '
                                                                   'tenant', x.r)]);
        END IF;
    END LOOP;
    vector := v.id; outcome := j[1]; detail := j[2];
    RETURN NEXT;
END
$$;

-- shared_sequence: serial and identity columns (no attempt: the catalog says it).
CREATE FUNCTION tenant_guard._grid_run_shared_sequence(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    seqs text;
BEGIN
    SELECT string_agg(s.seq, ', ' ORDER BY s.seq) INTO seqs
    FROM (SELECT pg_get_serial_sequence(g.t::text, at.attname) AS seq FROM pg_attribute at
          WHERE at.attrelid = g.t AND at.attnum > 0 AND NOT at.attisdropped) s WHERE s.seq IS NOT NULL;
    vector := v.id;
    IF seqs IS NULL THEN
        outcome := 'skipped'; detail := 'no serial or identity column';
    ELSE
        outcome := 'residual';
        detail := format('%s: one counter shared by every tenant; the gaps between a tenant''s own keys reveal how '
                         'many rows other tenants inserted', seqs);
    END IF;
    RETURN NEXT;
END
$$;

-- shard_direct (Citus tables only): as the application role, every shard
-- placement on every node read directly (run_command_on_placements(), the
-- way a role that can connect to a worker reads the shards), for rows of
-- tenant B and rows of any tenant. No context reaches those connections, so
-- only the shard's own wall stands between the role and the rows: any row is
-- a leak, reported with its node. Per node: placements read, rows seen.
CREATE FUNCTION tenant_guard._grid_run_shard_direct(g tenant_guard._grid_target, v tenant_guard.grid_vectors)
RETURNS TABLE (vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    res record;
    per_node jsonb;
    leaks text;
    nodes text;
    failed text;
BEGIN
    vector := v.id;
    res := tenant_guard._grid_try(g, format(
        'SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(''node'', r.nodename || '':'' || r.nodeport, '
        '''shard'', r.shardid, ''ok'', r.success, ''result'', r.result)) '
        'FROM pg_catalog.run_command_on_placements(%L::regclass, %L) r',
        g.t::text, format('SELECT count(*) FILTER (WHERE %I = %L) || ''/'' || count(*) FROM %%s', g.tc, g.b)),
        'json');
    IF res.err_state IS NOT NULL THEN
        IF res.err_state = '42501' THEN
            outcome := 'blocked'; detail := 'refused: ' || res.err_message;
        ELSE
            outcome := 'skipped';
            detail := format('could not decide: %s (SQLSTATE %s)', res.err_message, res.err_state);
        END IF;
        RETURN NEXT;
        RETURN;
    END IF;
    per_node := res.result;
    SELECT string_agg(format('%s: %s placement(s), %s row(s) of tenant B, %s row(s) in all', x.node, x.n, x.b, x.total),
                      '; ' ORDER BY x.node),
           string_agg(CASE WHEN x.total > 0 THEN format('%s (%s row(s) of tenant B, %s in all)', x.node, x.b, x.total) END,
                      '; ' ORDER BY x.node),
           string_agg(CASE WHEN x.failed > 0 THEN format('%s: %s', x.node, x.why) END, '; ' ORDER BY x.node)
    INTO nodes, leaks, failed
    FROM (SELECT e ->> 'node' AS node, count(*) AS n,
                 sum(split_part(e ->> 'result', '/', 1)::bigint) FILTER (WHERE (e ->> 'ok')::boolean) AS b,
                 coalesce(sum(split_part(e ->> 'result', '/', 2)::bigint) FILTER (WHERE (e ->> 'ok')::boolean), 0) AS total,
                 count(*) FILTER (WHERE NOT (e ->> 'ok')::boolean) AS failed,
                 min(e ->> 'result') FILTER (WHERE NOT (e ->> 'ok')::boolean) AS why
          FROM jsonb_array_elements(coalesce(per_node, '[]')) e GROUP BY 1) x;
    IF leaks IS NOT NULL THEN
        outcome := 'leak';
        detail := 'reading the shards directly as the role returned rows on ' || leaks;
    ELSIF failed IS NOT NULL AND failed LIKE '%permission denied%' THEN
        outcome := 'blocked'; detail := 'refused on ' || failed;
    ELSIF failed IS NOT NULL THEN
        outcome := 'skipped'; detail := 'could not decide: ' || failed;
    ELSE
        outcome := 'blocked';
        detail := 'the shard wall hid every row on every node: ' || coalesce(nodes, 'no placement');
    END IF;
    RETURN NEXT;
END
$$;

-- The vectors. docs/attack-grid.md explains each one and its fix.
INSERT INTO tenant_guard.grid_vectors (id, class, tries, matters, needs, run, stmt, mode, judge, setup, refusals, guard,
                                       leak_text, blocked_text, params) VALUES
-- reads
('read_other_tenant', 'read', 'SELECT ... WHERE tenant = B', 'the policies must hide every row of another tenant',
 'b', '_grid_run_statement', $v$SELECT count(*) FROM (SELECT 1 FROM {t} WHERE {c} = {b} LIMIT 100) s$v$, 'value', 'read',
 NULL, DEFAULT, NULL, 'tenant A read %n row(s) of tenant B', 'no row of tenant B was visible', NULL),
('read_unfiltered', 'read', 'SELECT ... WHERE tenant IS DISTINCT FROM A',
 'a query that forgets its tenant filter must still see only its tenant', 'other', '_grid_run_statement',
 $v$SELECT count(*) FROM (SELECT 1 FROM {t} WHERE {c} IS DISTINCT FROM {a} LIMIT 100) s$v$, 'value', 'read', NULL, DEFAULT,
 NULL, 'an unfiltered read as tenant A returned %n row(s) of other tenants',
 'an unfiltered read returned only rows of tenant A', NULL),
('shard_direct', 'read', 'every shard placement of a Citus table read directly on its node, as the role',
 'on Citus only the shard''s own wall protects the rows of a shard read on its node', 'citus', '_grid_run_shard_direct',
 NULL, NULL, NULL, NULL, DEFAULT, NULL, NULL, NULL, NULL),
('read_for_update', 'read', 'SELECT ... WHERE tenant = B FOR UPDATE',
 'locking another tenant''s rows reads them and blocks its writes', 'b', '_grid_run_statement',
 $v$SELECT count(*) FROM (SELECT 1 FROM {t} WHERE {c} = {b} LIMIT 100 FOR UPDATE) s$v$, 'value', 'read', NULL, DEFAULT,
 NULL, 'SELECT ... FOR UPDATE locked %n row(s) of tenant B', 'SELECT ... FOR UPDATE reached no row of tenant B', NULL),
-- writes to B's rows
('update_other_tenant', 'write', 'UPDATE ... WHERE tenant = B', 'another tenant''s rows must not be changed', 'b',
 '_grid_run_statement', $v$UPDATE {t} SET {uc} = {uc} WHERE {c} = {b}$v$, 'rows', 'write', NULL, DEFAULT, NULL,
 'UPDATE changed %n row(s) of tenant B', 'UPDATE reached no row of tenant B', NULL),
('update_returning', 'write', 'UPDATE ... WHERE tenant = B RETURNING', 'RETURNING reads the rows it writes', 'b',
 '_grid_run_statement', $v$UPDATE {t} SET {uc} = {uc} WHERE {c} = {b} RETURNING {c}$v$, 'rows', 'write', NULL,
 DEFAULT, NULL, 'UPDATE ... RETURNING returned %n row(s) of tenant B', 'UPDATE ... RETURNING reached no row of tenant B',
 NULL),
('delete_other_tenant', 'write', 'DELETE ... WHERE tenant = B', 'another tenant''s rows must not be removed', 'b',
 '_grid_run_statement', $v$DELETE FROM {t} WHERE {c} = {b}$v$, 'rows', 'write', NULL, DEFAULT, NULL,
 'DELETE removed %n row(s) of tenant B', 'DELETE reached no row of tenant B', NULL),
('delete_returning', 'write', 'DELETE ... WHERE tenant = B RETURNING', 'RETURNING reads the rows it removes', 'b',
 '_grid_run_statement', $v$DELETE FROM {t} WHERE {c} = {b} RETURNING {c}$v$, 'rows', 'write', NULL, DEFAULT, NULL,
 'DELETE ... RETURNING returned %n row(s) of tenant B', 'DELETE ... RETURNING reached no row of tenant B', NULL),
('cte_write', 'write', 'a data-modifying WITH that deletes rows of B', 'writes inside a query are checked like others',
 'b', '_grid_run_statement',
 $v$WITH x AS (DELETE FROM {t} WHERE {c} = {b} RETURNING 1) SELECT count(*) FROM x$v$, 'value', 'write', NULL, DEFAULT,
 NULL, 'a data-modifying WITH deleted %n row(s) of tenant B', 'a data-modifying WITH reached no row of tenant B', NULL),
('merge_update_other_tenant', 'write', 'MERGE ... WHEN MATCHED THEN UPDATE on rows of B',
 'MERGE has its own policy checks', 'b', '_grid_run_statement',
 $v$MERGE INTO {t} x USING (SELECT 1) s ON x.{c} = {b} WHEN MATCHED THEN UPDATE SET {uc} = x.{uc}$v$, 'rows', 'write',
 NULL, DEFAULT, NULL, 'MERGE ... UPDATE changed %n row(s) of tenant B', 'MERGE ... UPDATE matched no row of tenant B',
 NULL),
('merge_delete_other_tenant', 'write', 'MERGE ... WHEN MATCHED THEN DELETE on rows of B',
 'MERGE has its own policy checks', 'b', '_grid_run_statement',
 $v$MERGE INTO {t} x USING (SELECT 1) s ON x.{c} = {b} WHEN MATCHED THEN DELETE$v$, 'rows', 'write', NULL, DEFAULT,
 NULL, 'MERGE ... DELETE removed %n row(s) of tenant B', 'MERGE ... DELETE matched no row of tenant B', NULL),
('copy_out', 'read', 'COPY (SELECT ... WHERE tenant = B) TO a file', 'COPY is how dumps and exports read', 'b',
 '_grid_run_statement', $v$COPY (SELECT * FROM {t} WHERE {c} = {b}) TO '/dev/null'$v$, 'rows', 'read', NULL, DEFAULT,
 NULL, 'COPY ... TO copied %n row(s) of tenant B', 'COPY ... TO copied no row of tenant B', NULL),
('copy_in', 'write', 'COPY t FROM a file',
 'COPY FROM refuses to run where row-level security applies, so running proves it does not', NULL,
 '_grid_run_statement', $v$COPY {t} FROM '/dev/null'$v$, 'rows', 'runs', NULL, '{42501,0A000}', NULL,
 'COPY ... FROM ran: row-level security does not apply to the role here, so COPY can load rows of any tenant', NULL,
 NULL),
-- rows planted in B, rows moved to B
('insert_into_other_tenant', 'plant', 'INSERT a row of B', 'a tenant must not write rows into another tenant', NULL,
 '_grid_run_statement', $v${plant_insert}$v$, 'rows', 'write', NULL, DEFAULT, NULL,
 'tenant A inserted a row of tenant B', 'the row of tenant B was not inserted', NULL),
('upsert_into_other_tenant', 'plant', 'INSERT a row of B ON CONFLICT DO NOTHING',
 'a conflict skipped silently means the policies accepted the row', NULL, '_grid_run_upsert_into', NULL, NULL, NULL,
 NULL, DEFAULT, NULL, NULL, NULL, NULL),
('upsert_update_other_tenant', 'plant', 'INSERT B''s key as A ON CONFLICT (key) DO UPDATE',
 'the update of a conflicting row must not reach another tenant''s row', 'b', '_grid_run_upsert_update', NULL, NULL,
 NULL, NULL, DEFAULT, NULL, NULL, NULL, NULL),
('merge_insert_other_tenant', 'plant', 'MERGE ... WHEN NOT MATCHED THEN INSERT a row of B',
 'MERGE has its own policy checks', NULL, '_grid_run_statement',
 $v$MERGE INTO {t} x USING (SELECT * FROM pg_catalog.jsonb_populate_record(NULL::{t}, {plant}::jsonb)) s ON false WHEN NOT MATCHED THEN INSERT ({plant_cols}) VALUES ({plant_vals})$v$,
 'rows', 'write', NULL, DEFAULT, NULL, 'MERGE ... INSERT planted a row of tenant B',
 'MERGE ... INSERT planted no row of tenant B', NULL),
('insert_select_other_tenant', 'plant', 'INSERT INTO t SELECT ... FROM t WHERE tenant = B',
 'copying another tenant''s rows reads them', 'b', '_grid_run_statement',
 $v$INSERT INTO {t} ({cols}) SELECT {cols} FROM {t} WHERE {c} = {b}$v$, 'rows', 'write', NULL, DEFAULT, NULL,
 'INSERT ... SELECT copied %n row(s) of tenant B', 'INSERT ... SELECT read no row of tenant B', NULL),
('update_move_to_other_tenant', 'plant', 'UPDATE ... SET tenant = B WHERE tenant = A',
 'a tenant must not hand its rows to another tenant', 'a', '_grid_run_statement',
 $v$UPDATE {t} SET {c} = {b} WHERE {c} = {a}$v$, 'rows', 'write', NULL, DEFAULT, NULL,
 'UPDATE moved %n row(s) of tenant A into tenant B', 'no row of tenant A could be updated (so none was moved)', NULL),
-- existence oracles
('unique_oracle', 'oracle', 'INSERT B''s key values as a row of A',
 'a unique violation on an index without the tenant column tells A that B''s key exists', 'b',
 '_grid_run_unique_oracle', NULL, NULL, NULL, NULL, DEFAULT, NULL, NULL, NULL, NULL),
('on_conflict_oracle', 'oracle', 'INSERT B''s key as A ON CONFLICT (key) DO NOTHING',
 'nothing inserted tells A that B''s key exists', 'b', '_grid_run_on_conflict_oracle', NULL, NULL, NULL, NULL, DEFAULT,
 NULL, NULL, NULL, NULL),
('foreign_key_oracle', 'oracle', 'reference B''s row from a row of A, through each foreign key to the table',
 'an accepted reference tells A the key exists and links to it', NULL, '_grid_run_foreign_key_oracle', NULL, NULL,
 NULL, NULL, DEFAULT, NULL, NULL, NULL, NULL),
('error_side_channel', 'oracle', 'a predicate that raises an error only on rows of B',
 'an error reaching A shows B''s rows were not filtered first', 'b', '_grid_run_statement',
 $v$SELECT count(*) FROM {t} WHERE CASE WHEN {c} = {b} THEN ({c}::text || '!')::integer ELSE 0 END = 0$v$, 'value',
 'probe', NULL, DEFAULT, NULL,
 'an error raised only for rows of tenant B reached tenant A: the rows were not filtered before the probe ran',
 'row-level security filtered the rows of tenant B before the probe ran', NULL),
-- missing and malformed context
('no_context', 'context', 'read and UPDATE every row without a context', 'no context must mean no rows', 'any',
 '_grid_run_context', NULL, NULL, NULL, NULL, DEFAULT, NULL, NULL, NULL, '{"orgs": [""], "claims": [""]}'),
('null_context', 'context', 'read and UPDATE with a null org id and null claims', 'null must not match rows', 'any',
 '_grid_run_context', NULL, NULL, NULL, NULL, DEFAULT, NULL, NULL, NULL,
 '{"orgs": ["null"], "claims": ["{\"org_id\":null}", "null"]}'),
('empty_context', 'context', 'read and UPDATE with a blank org id and empty claims',
 'an empty context must not match rows', 'any', '_grid_run_context', NULL, NULL, NULL, NULL, DEFAULT, NULL, NULL, NULL,
 '{"orgs": [" "], "claims": ["{\"org_id\":\"\"}", "{}"]}'),
('malformed_context', 'context', 'read and UPDATE with malformed org ids and claims',
 'a malformed context must not match rows or fall back to a default', 'any', '_grid_run_context', NULL, NULL, NULL,
 NULL, DEFAULT, NULL, NULL, NULL,
 '{"orgs": ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "{b}x"], "claims": ["{\"org_id\":\"not-a-uuid\"}", "{\"org_id\":\"00000000-0000-0000-0000-000000000000\"}", "{\"org_id\": \"{b}x\"}", "{\"org_id\":"]}'),
-- forged context
('forged_setting', 'context', 'the application role sets tenant_guard.org_id (and role, scopes) to B',
 'only the configured context source may choose the tenant', 'b', '_grid_run_forged', NULL, NULL, NULL, NULL, DEFAULT,
 NULL, NULL, NULL,
 $j${"attempts": [{"setup": ["SELECT pg_catalog.set_config('tenant_guard.org_id', {org}, true)", "SELECT pg_catalog.set_config('tenant_guard.role', {role}, true)", "SELECT pg_catalog.set_config('tenant_guard.scopes', {scopes}, true)"], "leak": "the application role chose tenant B by setting tenant_guard.org_id (context_source = %s)"}]}$j$),
('forged_claims', 'context', 'the application role sets request.jwt.claims to claims of B',
 'only the configured context source may choose the tenant', 'b', '_grid_run_forged', NULL, NULL, NULL, NULL, DEFAULT,
 NULL, NULL, NULL,
 $j${"attempts": [{"setup": ["SELECT pg_catalog.set_config('request.jwt.claims', {claims}, true)"], "leak": "the application role chose tenant B by setting request.jwt.claims (context_source = %s)"}]}$j$),
('forged_signed_context', 'context', 'the application role writes tenant_guard.signed_context itself',
 'a verified context must come from a verified token', 'b', '_grid_run_forged', NULL, NULL, NULL, NULL, DEFAULT,
 NULL, NULL, NULL,
 $j${"attempts": [{"setup": ["SELECT pg_catalog.set_config('tenant_guard.signed_context', {claims}, true)"], "leak": "the application role wrote tenant_guard.signed_context itself (context_source = %s)", "any_error_refuses": true}]}$j$),
('forged_token', 'context', 'set_context() with a malformed token and with an unsigned (alg none) token for B, and that token as a forwarded one',
 'only a token signed by a trusted key may choose the tenant', 'b', '_grid_run_forged', NULL, NULL, NULL, NULL, DEFAULT,
 NULL, NULL, NULL,
 $j${"attempts": [{"setup": ["SELECT tenant_guard.set_context('not.a.token')"], "leak": "tenant_guard.set_context() accepted a malformed token (context_source = %s)", "any_error_refuses": true}, {"setup": ["SELECT tenant_guard.set_context({token})"], "leak": "tenant_guard.set_context() accepted an unsigned (alg none) token for tenant B (context_source = %s)", "any_error_refuses": true}, {"setup": ["SELECT pg_catalog.set_config('tenant_guard.forwarded_token', {token}, true)"], "leak": "an unsigned (alg none) token for tenant B counted as a token forwarded by a Citus coordinator (tenant_guard.forwarded_token, context_source = %s)"}]}$j$),
-- privileges and ownership
('row_security_off', 'privilege', 'SET row_security = off, then read',
 'PostgreSQL refuses the read where row-level security applies, so a read that runs proves it does not', NULL,
 '_grid_run_statement', $v$SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT 1) s$v$, 'value', 'runs',
 ARRAY[$v$SELECT pg_catalog.set_config('row_security', 'off', true)$v$], DEFAULT, NULL,
 'with row_security = off the query ran: row-level security does not apply to the role on this table', NULL, NULL),
('set_role_owner', 'privilege', 'become the table''s owner', 'the owner can unprotect() or alter the table', NULL,
 '_grid_run_owner', NULL, NULL, NULL, NULL, DEFAULT, NULL, NULL, NULL, NULL),
('role_attributes', 'privilege', 'act as a superuser or BYPASSRLS role and read with row_security = off',
 'row-level security never applies to such roles', NULL, '_grid_run_role_attributes', NULL, NULL, NULL, NULL, DEFAULT,
 NULL, NULL, NULL, NULL),
('owner_without_force', 'privilege', 'read with the owner''s privileges',
 'without FORCE ROW LEVEL SECURITY the owner bypasses the policies', NULL, '_grid_run_owner', NULL, NULL, NULL, NULL,
 DEFAULT, NULL, NULL, NULL, NULL),
('truncate', 'privilege', 'TRUNCATE t', 'TRUNCATE ignores row-level security and empties every tenant', NULL,
 '_grid_run_truncate', NULL, NULL, NULL, NULL, DEFAULT, 'TRUNCATE', NULL, NULL, NULL),
('explain_analyze', 'privilege', 'EXPLAIN (ANALYZE) SELECT * FROM t with index scans off',
 'its actual row counts show how many rows of other tenants the policies removed', NULL, '_grid_run_explain_analyze',
 NULL, NULL, NULL, NULL, DEFAULT, 'EXPLAIN ANALYZE', NULL, NULL, NULL),
('alter_policy', 'privilege', 'DROP POLICY (the wall first), ALTER TABLE ... DISABLE ROW LEVEL SECURITY',
 'whoever can change the policies can open the table', NULL, '_grid_run_alter_policy', NULL, NULL, NULL, NULL, DEFAULT,
 NULL, NULL, NULL, NULL),
-- objects that run with other rights
('definer_view', 'other rights', 'read each view over the table without security_invoker',
 'such a view reads with its owner''s rights', NULL, '_grid_run_definer_view', NULL, NULL, NULL, NULL, DEFAULT, NULL,
 NULL, NULL, NULL),
('definer_function', 'other rights', 'call each SECURITY DEFINER function that mentions the table',
 'such a function reads with its owner''s rights', NULL, '_grid_run_definer_function', NULL, NULL, NULL, NULL, DEFAULT,
 NULL, NULL, NULL, NULL),
('materialized_view', 'other rights', 'read each materialized view over the table',
 'a materialized view stores every tenant''s rows without row-level security', NULL, '_grid_run_materialized_view',
 NULL, NULL, NULL, NULL, DEFAULT, NULL, NULL, NULL, NULL),
('partition_direct', 'other rights', 'read each partition and child directly, and with row_security = off',
 'reading a partition applies its own policies, not the parent''s', NULL, '_grid_run_children', NULL, NULL, NULL,
 NULL, DEFAULT, NULL, NULL, NULL, NULL),
('child_insert', 'other rights', 'insert a row of B directly into each partition and child',
 'writing a partition applies its own policies, not the parent''s', NULL, '_grid_run_children', NULL, NULL, NULL,
 NULL, DEFAULT, NULL, NULL, NULL, NULL),
-- other sessions and the next client
('query_text', 'session', 'read pg_stat_activity and pg_stat_statements',
 'every tenant shares the role, and the statement text carries literals and tokens', NULL, '_grid_run_query_text',
 NULL, NULL, NULL, NULL, DEFAULT, NULL, NULL, NULL, NULL),
('temp_object', 'session', 'CREATE TEMP VIEW named like the table',
 'behind a transaction pooler the next client resolves the table''s name through it', NULL, '_grid_run_statement',
 $v$CREATE TEMP VIEW {relname} AS SELECT 1 AS planted$v$, 'rows', 'runs', NULL, DEFAULT, NULL,
 'the role created a temporary view named {relname}: behind a transaction pooler it stays on the connection, and the next client''s unqualified {relname}, whatever its tenant, reads through it (pg_temp comes first in search_path)',
 'refused: the role cannot create temporary objects in this database', NULL),
('hold_cursor', 'session', 'DECLARE ... CURSOR WITH HOLD FOR SELECT * FROM t',
 'the cursor outlives the transaction, and the next client of a pooled connection can fetch it', NULL,
 '_grid_run_statement', $v$DECLARE tg_grid_held CURSOR WITH HOLD FOR {select_all}$v$, 'rows', 'runs', NULL, DEFAULT,
 '', 'the role opened a cursor WITH HOLD: it outlives the transaction, and behind a transaction pooler the next client of the connection, whatever its tenant, finds it in pg_cursors and fetches its rows',
 NULL, NULL),
('listen', 'session', 'LISTEN on a channel', 'LISTEN receives the notifications of every tenant', NULL,
 '_grid_run_statement', $v$LISTEN tg_attack_grid$v$, 'rows', 'runs', NULL, DEFAULT, '',
 'the role can LISTEN: it receives the NOTIFY payloads of every session of the database, whatever its tenant, and behind a transaction pooler its LISTEN stays with the connection',
 NULL, NULL),
-- residual channels
('table_statistics', 'residual', 'read pg_class.reltuples and pg_stat_all_tables',
 'they count the rows of every tenant', NULL, '_grid_run_statement',
 $v$SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = {oid} AND c.reltuples IS NOT NULL AND s.n_live_tup IS NOT NULL$v$,
 'value', 'residual', NULL, DEFAULT, NULL,
 'pg_class.reltuples and pg_stat_user_tables (n_live_tup, n_tup_ins, ...) count the rows of every tenant and are readable by every role',
 'the table statistics were not readable', NULL),
('shared_sequence', 'residual', 'find serial and identity columns',
 'the gaps between a tenant''s own keys count the other tenants'' inserts', NULL, '_grid_run_shared_sequence', NULL,
 NULL, NULL, NULL, DEFAULT, NULL, NULL, NULL, NULL),
('explain_estimate', 'residual', 'EXPLAIN SELECT ... WHERE tenant = B',
 'row estimates come from statistics over every tenant''s rows', NULL, '_grid_run_statement',
 $v$EXPLAIN (FORMAT JSON) SELECT * FROM {t} WHERE {c} = {b}$v$, 'json', 'residual', NULL, DEFAULT, NULL,
 'EXPLAIN row estimates come from statistics over the rows of every tenant', NULL, NULL),
('column_statistics', 'residual', 'read pg_stats for the table''s columns',
 'most common values and histograms are computed over every tenant''s rows', NULL, '_grid_run_statement',
 $v$SELECT count(*) FROM pg_catalog.pg_attribute at JOIN pg_catalog.pg_class c ON c.oid = at.attrelid WHERE c.oid = {oid} AND at.attnum > 0 AND NOT at.attisdropped AND pg_catalog.has_column_privilege(c.oid, at.attnum, 'select') AND (NOT c.relrowsecurity OR NOT pg_catalog.row_security_active(c.oid))$v$,
 'value', 'read', NULL, DEFAULT, NULL,
 'pg_stats shows the role the statistics of %n column(s) (most common values, histograms) over every tenant''s rows',
 'pg_stats hides this table''s column statistics from the role (row-level security is active for it)', NULL);

-- seed => true: one row of tenant org in rel when it has none, built from
-- an existing row (fresh values for keys with a default) or from the column
-- defaults. Inserted as the table's owner with org's context, not as the
-- superuser: triggers, defaults and constraints a table owner wrote never run
-- with superuser rights. Returns NULL, or {"error": message} (nothing
-- inserted, the role and context unchanged).
CREATE FUNCTION tenant_guard._grid_seed(rel regclass, col name, org text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    saved_role text := current_setting('role');
    found_row boolean;
    tmpl jsonb;
    ctx record;
    stmt text;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I = %L)', rel, col, org) INTO found_row;
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

-- Configuration findings: the forged-context vectors (run _grid_run_forged)
-- depend on the context source, not on the table. Their leaks with the same
-- detail on several tables are one finding of the setting: one row with tbl
-- NULL whose detail starts with "configuration: tenant_guard.context_source
-- = <source> (<where it is set>)" and names the tables it was seen on. A
-- table where the vector was blocked, skipped or leaked differently keeps its
-- own row.
CREATE FUNCTION tenant_guard._grid_configuration(results jsonb, src text)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH e AS (
        SELECT r, (r ->> 'vector') IN (SELECT v.id FROM tenant_guard.grid_vectors v WHERE v.run = '_grid_run_forged')
                  AND r ->> 'outcome' = 'leak' AND r ->> 'tbl' IS NOT NULL AS cfg
        FROM jsonb_array_elements(results) r),
    origin AS (
        SELECT CASE s.source WHEN 'default' THEN 'the default'
                             WHEN 'configuration file' THEN 'set in the server configuration'
                             WHEN 'database' THEN 'set for the database'
                             WHEN 'user' THEN 'set for the role'
                             WHEN 'database user' THEN 'set for the role in the database'
                             WHEN 'session' THEN 'set in this session'
                             ELSE 'set by ' || s.source END AS how
        FROM pg_settings s WHERE s.name = 'tenant_guard.context_source'),
    grouped AS (
        SELECT e.r ->> 'vector' AS vector, e.r ->> 'detail' AS detail, count(*) AS n,
               array_agg((e.r ->> 'tbl')::oid::regclass::text ORDER BY (e.r ->> 'tbl')::oid::regclass::text) AS tables
        FROM e WHERE e.cfg GROUP BY 1, 2)
    SELECT coalesce(jsonb_agg(x.r), '[]') FROM (
        SELECT e.r FROM e WHERE NOT e.cfg
        UNION ALL
        SELECT jsonb_build_object('tbl', NULL, 'vector', g.vector, 'outcome', 'leak',
                   'detail', format('configuration: tenant_guard.context_source = %s (%s): %s; seen on %s protected '
                                    'table(s): %s%s', src, coalesce((SELECT o.how FROM origin o), 'unknown'), g.detail,
                                    g.n, array_to_string(g.tables[1:5], ', '), CASE WHEN g.n > 5 THEN ', ...' ELSE '' END))
        FROM grouped g) x(r)
$$;
REVOKE ALL ON FUNCTION tenant_guard._grid_configuration(jsonb, text) FROM PUBLIC;

CREATE FUNCTION tenant_guard.attack_grid(app_role regrole, org_a uuid, org_b uuid, seed boolean DEFAULT false)
RETURNS TABLE (tbl regclass, vector text, outcome text, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
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
    targets jsonb := '{}';
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
                -- the application role reaches a Citus table's shards through
                -- its own connections, which do not see uncommitted rows
                IF tenant_guard._citus_table(p.tbl) THEN
                    seed_notes := seed_notes || jsonb_build_object(p.tbl::oid::text,
                        'a Citus table is not seeded: the application role''s connections to the workers would not '
                        'see the grid''s uncommitted rows; give both tenants rows');
                    CONTINUE;
                END IF;
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

        -- on Citus, what the vectors need to know of every table, read
        -- before any attempt changes a shard as the application role
        IF tenant_guard._citus_present() THEN
            FOR p IN SELECT pt.tbl, pt.tenant_column FROM tenant_guard.protected_tables pt
                     WHERE pt.tenant_type <> 'bigint' ORDER BY pt.tbl::text LOOP
                targets := targets || jsonb_build_object(p.tbl::oid::text, to_jsonb(tenant_guard._grid_prepare(
                    app_role, p.tbl, p.tenant_column, org_a::text, org_b::text, src, lock_ms)));
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
                FROM tenant_guard._grid_table(app_role, p.tbl, p.tenant_column, org_a::text, org_b::text, src, lock_ms,
                                              targets -> p.tbl::oid::text) g),
                '[]');
        END LOOP;
        RAISE EXCEPTION 'attack grid sentinel' USING ERRCODE = 'TGZ99';
    EXCEPTION WHEN SQLSTATE 'TGZ99' THEN
        NULL;
    END;

    results := tenant_guard._grid_configuration(results, src);
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
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    leaks text[];
BEGIN
    -- one line per table: its leaking vectors
    SELECT coalesce(sum(l.n), 0), array_agg(l.line ORDER BY l.tbl) INTO n, leaks
    FROM (SELECT coalesce(g.tbl::text, 'configuration') AS tbl, count(*) AS n,
                 coalesce(g.tbl::text, 'configuration') || ': ' || string_agg(DISTINCT g.vector, ', ' ORDER BY g.vector) AS line
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
REVOKE ALL ON FUNCTION tenant_guard._grid_table(regrole, regclass, name, text, text, text, integer, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_vars(regclass, name, text, text, regrole, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_expand(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_prepare(regrole, regclass, name, text, text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_try(tenant_guard._grid_target, text, text, text[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_claims(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_guard_note(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_verdict(tenant_guard.grid_vectors, bigint, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_arbiter(regclass, name, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_statement(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_upsert_into(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_upsert_update(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_unique_oracle(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_on_conflict_oracle(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_foreign_key_oracle(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_context(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_forged(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_owner(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_role_attributes(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_truncate(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_explain_analyze(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_alter_policy(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_definer_view(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_definer_function(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_materialized_view(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_children(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_query_text(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_shared_sequence(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._grid_run_shard_direct(tenant_guard._grid_target, tenant_guard.grid_vectors) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.attack_grid(regrole, uuid, uuid, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.assert_isolated(regrole, uuid, uuid, boolean) FROM PUBLIC;
