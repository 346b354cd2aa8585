-- bench/context/setup.sql: the data set of bench/context_bench.sh.
--
-- bench.items: 1,000,000 rows over 1000 tenants, 1000 rows each. Row id
-- belongs to tenant k = id % 1000, so a tenant's rows are spread over the
-- whole heap (as in a table every tenant writes to over time), and the ids
-- of tenant k are k, 1000 + k, ..., 999000 + k.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
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

CREATE TABLE bench.items (
    id         bigint PRIMARY KEY,
    org_id     uuid NOT NULL,
    created_at timestamptz NOT NULL,
    status     text NOT NULL,
    payload    text NOT NULL
);
INSERT INTO bench.items
SELECT g, o.org_id,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
       (ARRAY['open', 'paid', 'void'])[g % 3 + 1],
       md5(g::text) || md5((g + 1)::text)
FROM generate_series(1, 1000000) AS g
JOIN bench.orgs AS o ON o.k = g % 1000;
CREATE INDEX items_org_id_idx ON bench.items (org_id);
VACUUM (ANALYZE) bench.orgs, bench.items;
CHECKPOINT;
-- Everything in shared_buffers before the first measurement.
SELECT pg_prewarm('bench.items') > 0 AS heap_prewarmed,
       pg_prewarm('bench.items_pkey') > 0 AS pkey_prewarmed,
       pg_prewarm('bench.items_org_id_idx') > 0 AS org_idx_prewarmed;
