-- Generates the bad-input sweep (run by test/sweep/run_bad_input.sh): one
-- psql block per call of every function and procedure of the tenant_guard
-- schema, taken from the catalog, so a new function is swept without editing
-- anything. Each argument in turn gets each bad value of its type while the
-- others keep a plain value; each call is its own transaction. After a
-- refused call, tg_sweep.check() records a failure when the SQLSTATE is
-- XX000 (an internal error) or when the catalog or a registry changed.
WITH vals(typ, val) AS (VALUES
    ('text', 'NULL'), ('text', $$''$$), ('text', $$repeat('x', 1048576)$$),
    ('text', $$E'\x01\x02\x1b[0m\t\n\r'$$), ('text', $$'{"org_id": "\u0000", "sub": "a\u0000b"}'$$),
    ('text', $$'🙂 ünïcode ''quote'' "dq" \\ backslash'$$), ('text', $$'tenant_guard.audit_log'$$),
    ('uuid', 'NULL'), ('uuid', $$'00000000-0000-0000-0000-000000000000'$$),
    ('uuid', $$'22222222-2222-4222-8222-222222222222'$$), ('uuid', $$'ffffffff-ffff-ffff-ffff-ffffffffffff'$$),
    ('interval', 'NULL'), ('interval', $$'-1000 years'$$), ('interval', $$'178000000 years'$$),
    ('interval', $$'0'$$), ('interval', $$'-1 microsecond'$$),
    ('timestamp with time zone', 'NULL'), ('timestamp with time zone', $$'-infinity'$$),
    ('timestamp with time zone', $$'infinity'$$), ('timestamp with time zone', $$'4713-01-01 BC'$$),
    ('regclass', 'NULL'), ('regclass', $$'pg_catalog.pg_class'$$), ('regclass', $$'tenant_guard.audit_log'$$),
    ('regclass', $$4000000000::oid$$), ('regclass', $$'sweep.plain'$$),
    ('regrole', 'NULL'), ('regrole', $$'postgres'$$), ('regrole', $$'pg_read_all_data'$$),
    ('regrole', $$4000000000::oid$$),
    ('name', 'NULL'), ('name', $$''$$), ('name', $$'org_id'$$), ('name', $$repeat('n', 200)$$),
    ('jsonb', 'NULL'), ('jsonb', $$'{}'$$), ('jsonb', $$'[]'$$), ('jsonb', $$'"\u0000x"'$$),
    ('jsonb', $$repeat('[', 5000)::text || repeat(']', 5000)$$), ('jsonb', $$'{"a": 1e1000}'$$),
    ('json', 'NULL'), ('json', $$'{"a": "\u0000"}'$$),
    ('bytea', 'NULL'), ('bytea', $$''$$), ('bytea', $$'\x00'$$), ('bytea', $$decode(repeat('ab', 1048576), 'hex')$$),
    ('bytea', $$'\x01000000010000000000000000000000000000000000'$$),
    ('integer', 'NULL'), ('integer', '-1'), ('integer', '0'), ('integer', '2147483647'),
    ('bigint', 'NULL'), ('bigint', '-1'), ('bigint', '9223372036854775807'),
    ('boolean', 'NULL'), ('boolean', 'true'), ('boolean', 'false'),
    ('text[]', 'NULL'), ('text[]', $$'{}'$$), ('text[]', $$'{NULL}'$$), ('text[]', $$'{"",x}'$$),
    ('name[]', 'NULL'), ('name[]', $$'{}'$$), ('name[]', $$'{NULL}'$$), ('name[]', $$'{org_id,nope}'$$),
    ('oid', 'NULL'), ('oid', '0'), ('oid', '4000000000'),
    ('pg_ddl_command', 'NULL')
), plain(typ, val) AS (VALUES
    ('text', $$'x'$$), ('uuid', $$'11111111-1111-4111-8111-111111111111'$$), ('interval', $$'1 day'$$),
    ('timestamp with time zone', 'now()'), ('regclass', $$'sweep.docs'$$), ('regrole', $$'regress_sweep_app'$$),
    ('name', $$'org_id'$$), ('jsonb', $$'{}'$$), ('json', $$'{}'$$), ('bytea', $$'\x00'$$), ('integer', '1'),
    ('bigint', '1'), ('boolean', 'false'), ('text[]', $$'{}'$$), ('name[]', $$'{}'$$), ('oid', '1')
), fns AS (
    SELECT p.oid, p.prokind, p.proname,
           coalesce(array_agg(format_type(t.typ, NULL) ORDER BY t.ord) FILTER (WHERE t.typ IS NOT NULL), '{}') AS args
    FROM pg_proc p
    LEFT JOIN LATERAL unnest(p.proargtypes::oid[]) WITH ORDINALITY AS t(typ, ord) ON true
    WHERE p.pronamespace = 'tenant_guard'::regnamespace
      AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
      -- internal self-tests that exist to fail
      AND p.proname NOT LIKE '\_selftest%' AND p.proname NOT LIKE '\_audit\_selftest%'
    GROUP BY p.oid, p.prokind, p.proname
), calls AS (
    -- every argument in turn takes every bad value of its type; the others a plain one
    SELECT f.oid, f.prokind, f.proname, i, v.val,
           (SELECT string_agg(CASE WHEN j = i THEN v.val
                                   ELSE coalesce((SELECT pl.val FROM plain pl WHERE pl.typ = a.t), 'NULL')
                              END || '::' || a.t, ', ' ORDER BY j)
            FROM unnest(f.args) WITH ORDINALITY AS a(t, j)) AS arglist
    FROM fns f, generate_series(1, greatest(cardinality(f.args), 1)) AS i
    LEFT JOIN LATERAL (SELECT vv.val FROM vals vv WHERE vv.typ = f.args[i]
                       UNION ALL SELECT 'NULL' WHERE f.args[i] IS NOT NULL
                                               AND NOT EXISTS (SELECT 1 FROM vals x WHERE x.typ = f.args[i])) v ON true
    WHERE cardinality(f.args) > 0 OR i = 1
)
SELECT format($f$SELECT tg_sweep.snapshot() AS before \gset
%s;
\if :ERROR
SELECT tg_sweep.check(%L, :'SQLSTATE', :'before');
\endif
$f$, CASE WHEN c.prokind = 'p' THEN format('CALL %s(%s)', c.oid::regproc, coalesce(c.arglist, ''))
            ELSE format('SELECT count(*) AS swept FROM (SELECT %s(%s)) s', c.oid::regproc, coalesce(c.arglist, '')) END,
       c.oid::regprocedure::text || ' arg ' || c.i || ' = ' || left(coalesce(c.val, '-'), 60))
FROM calls c
ORDER BY c.oid::regprocedure::text, c.i, c.val;
