-- bench/protect/setup.sql: the data set of bench/protect_bench.sh.
--
-- The rows of bench/context/setup.sql (1,000,000 rows over 1000 tenants,
-- 1000 rows each, row id belonging to tenant id % 1000, so a tenant's rows
-- are spread over the whole heap), in four tables with the same rows in the
-- same physical order and the same indexes, differing only in row-level
-- security:
--
--   bench.plain    no RLS (the baseline, queried with an explicit filter)
--   bench.guarded  tenant_guard.protect('bench.guarded'): RLS + FORCE, the
--                  RESTRICTIVE tg_wall and PERMISSIVE tg_base policies, and
--                  the index on org_id (created by protect() itself)
--   bench.handrls  a hand-written permissive policy, unwrapped, as commonly
--                  written: org_id = current_setting('app.org_id')::uuid
--   bench.handjwt  the same with the PostgREST/Supabase claims form:
--                  org_id = (current_setting('request.jwt.claims', true)::jsonb ->> 'org_id')::uuid
--
-- Queries run as bench_app, a LOGIN role that is neither superuser nor owner
-- nor BYPASSRLS (row-level security does not apply to superusers), with
-- SELECT on the four tables only.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
-- The cluster runs with synchronous_commit = off, and VACUUM marks a page
-- all-visible only once it could set the hint bits of its rows, which it may
-- not do before the inserting commit is flushed: without this, a VACUUM right
-- after the INSERTs leaves some tables not all-visible (and their one-tenant
-- count off index-only scans).
SET synchronous_commit = on;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
CREATE EXTENSION IF NOT EXISTS tenant_guard;
CREATE EXTENSION IF NOT EXISTS pg_prewarm;

CREATE TABLE bench.orgs (
    k      integer PRIMARY KEY,
    org_id uuid NOT NULL UNIQUE
);
INSERT INTO bench.orgs
SELECT k, md5('tenant_guard bench org ' || k)::uuid FROM generate_series(0, 999) AS k;

CREATE TABLE bench.plain (
    id         bigint PRIMARY KEY,
    org_id     uuid NOT NULL,
    created_at timestamptz NOT NULL,
    status     text NOT NULL,
    payload    text NOT NULL
);
INSERT INTO bench.plain
SELECT g, o.org_id,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
       (ARRAY['open', 'paid', 'void'])[g % 3 + 1],
       md5(g::text) || md5((g + 1)::text)
FROM generate_series(1, 1000000) AS g
JOIN bench.orgs AS o ON o.k = g % 1000
ORDER BY g;
CREATE INDEX plain_org_id_idx ON bench.plain (org_id);

-- The same rows, in the same order, in the three RLS tables.
CREATE TABLE bench.guarded (LIKE bench.plain INCLUDING ALL EXCLUDING INDEXES, PRIMARY KEY (id));
CREATE TABLE bench.handrls (LIKE bench.plain INCLUDING ALL EXCLUDING INDEXES, PRIMARY KEY (id));
CREATE TABLE bench.handjwt (LIKE bench.plain INCLUDING ALL EXCLUDING INDEXES, PRIMARY KEY (id));
INSERT INTO bench.guarded SELECT * FROM bench.plain ORDER BY id;
INSERT INTO bench.handrls SELECT * FROM bench.plain ORDER BY id;
INSERT INTO bench.handjwt SELECT * FROM bench.plain ORDER BY id;

-- protect() creates guarded's index on org_id (it finds none) and its policies.
SET client_min_messages = notice;
SELECT tenant_guard.protect('bench.guarded');
SET client_min_messages = warning;

CREATE INDEX handrls_org_id_idx ON bench.handrls (org_id);
ALTER TABLE bench.handrls ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON bench.handrls
    USING (org_id = current_setting('app.org_id')::uuid);

CREATE INDEX handjwt_org_id_idx ON bench.handjwt (org_id);
ALTER TABLE bench.handjwt ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON bench.handjwt
    USING (org_id = (current_setting('request.jwt.claims', true)::jsonb ->> 'org_id')::uuid);

DROP ROLE IF EXISTS bench_app;
CREATE ROLE bench_app LOGIN NOSUPERUSER NOBYPASSRLS;
GRANT USAGE ON SCHEMA bench TO bench_app;
GRANT SELECT ON bench.plain, bench.guarded, bench.handrls, bench.handjwt TO bench_app;

VACUUM (ANALYZE) bench.orgs, bench.plain, bench.guarded, bench.handrls, bench.handjwt;
CHECKPOINT;

-- The four tables must hold the same rows, have the same sizes, and be all-visible.
SELECT c.relname, pg_table_size(c.oid) AS heap_bytes, pg_indexes_size(c.oid) AS index_bytes,
       c.relallvisible = c.relpages AS all_visible, c.relrowsecurity AS rls, c.relforcerowsecurity AS force_rls,
       (SELECT string_agg(p.polname || CASE WHEN p.polpermissive THEN ' (permissive)' ELSE ' (restrictive)' END, ', '
                          ORDER BY p.polname)
        FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
FROM pg_class c WHERE c.oid IN ('bench.plain'::regclass, 'bench.guarded'::regclass,
                                'bench.handrls'::regclass, 'bench.handjwt'::regclass)
ORDER BY c.oid;
SELECT count(DISTINCT (n, h)) = 1 AND min(n) = 1000000 AS same_rows
FROM (SELECT count(*) AS n, sum(hashtext(t::text)) AS h FROM bench.plain t
      UNION ALL SELECT count(*), sum(hashtext(t::text)) FROM bench.guarded t
      UNION ALL SELECT count(*), sum(hashtext(t::text)) FROM bench.handrls t
      UNION ALL SELECT count(*), sum(hashtext(t::text)) FROM bench.handjwt t) AS s;

-- Everything in shared_buffers before the first measurement.
SELECT sum(pg_prewarm(c.oid)) > 0 AS prewarmed
FROM pg_class c
WHERE c.relnamespace = 'bench'::regnamespace AND c.relkind IN ('r', 'i');
