-----------------------------------------------------------------------------
-- Supported PostgreSQL versions (README, "Supported PostgreSQL versions")
--
-- The minor release of each major from which on tenant_guard is supported:
-- the first with the row-level security fixes it relies on. 15.19 and 18.6
-- were released together with the same fixes (18.5 was never released). 16
-- and 17 are not tested, and no minimum minor is known for them here.
-----------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION tenant_guard._server_version_warning(version_num integer)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN version_num / 10000 = 15 AND version_num < 150019 THEN
            pg_catalog.format('PostgreSQL 15.%s is older than 15.19, the first 15.x minor release with the '
                              'row-level security fixes tenant_guard relies on; upgrade to 15.19 or later',
                              version_num % 100)
        WHEN version_num / 10000 = 18 AND version_num < 180006 THEN
            pg_catalog.format('PostgreSQL 18.%s is older than 18.6, the first 18.x minor release with the '
                              'row-level security fixes tenant_guard relies on; upgrade to 18.6 or later',
                              version_num % 100)
        WHEN version_num < 150000 THEN
            pg_catalog.format('PostgreSQL %s.%s is not supported by tenant_guard, which needs 15.19 or later',
                              version_num / 10000, version_num % 100)
    END
$$;
COMMENT ON FUNCTION tenant_guard._server_version_warning(integer) IS
    'Internal: the warning CREATE EXTENSION raises on a server older than 15.19 or 18.6, or NULL.';

-- The 0.1.0 script warned already for 15 and older.
DO $$
DECLARE
    v integer := pg_catalog.current_setting('server_version_num')::integer;
    msg text := tenant_guard._server_version_warning(v);
BEGIN
    IF msg IS NOT NULL AND v >= 160000 THEN
        RAISE WARNING '%', msg;
    END IF;
END
$$;
