-- Audit across a month change, under a moved clock. Run by
-- test/clock/run_clock.sh in a fresh database of a server whose clock it
-- moves (clockshift.c), with -v clock_file=<offset file> -v boundary=<a month change,
-- UTC>. The output names no date: it is the same for every boundary.
\set SHOW_CONTEXT never
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
SELECT set_config('clock.file', :'clock_file', false) IS NOT NULL AS clock_file_set;
SELECT set_config('clock.boundary', :'boundary', false) IS NOT NULL AS boundary_set;
CREATE EXTENSION tenant_guard;
CREATE EXTENSION dblink;
-- Moves the server's clock to `target` (every backend re-reads the offset file
-- on each call, so the move applies to all sessions at once).
CREATE FUNCTION pg_temp.set_clock(target timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    f text := current_setting('clock.file');
    off numeric := btrim(pg_read_file(f), E' \n')::numeric + extract(epoch FROM target - clock_timestamp());
BEGIN
    EXECUTE format('COPY (SELECT %L) TO %L', CASE WHEN off >= 0 THEN '+' ELSE '' END || round(off, 3), f);
END
$$;
CREATE FUNCTION pg_temp.b() RETURNS timestamptz LANGUAGE sql AS $$ SELECT current_setting('clock.boundary')::timestamptz $$;
CREATE FUNCTION pg_temp.month_part(at timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT 'tenant_guard.audit_log_p' || to_char(at AT TIME ZONE 'UTC', 'YYYYMM') $$;

CREATE ROLE regress_clock_app;
CREATE TABLE public.notes (id int PRIMARY KEY, org_id uuid NOT NULL, body text);
SELECT tenant_guard.protect('public.notes');
SELECT tenant_guard.enable_audit('public.notes');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.notes TO regress_clock_app;
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = :'org_a';
SET tenant_guard.user_id = 'alice';

-- 1. One transaction spans the month change: it writes in the last seconds of
--    the month and again after midnight.
SELECT pg_temp.set_clock(pg_temp.b() - interval '3 seconds');
BEGIN;
SET LOCAL ROLE regress_clock_app;
SELECT clock_timestamp() < pg_temp.b() AS before_the_change;
INSERT INTO public.notes VALUES (1, :'org_a', 'written before midnight');
RESET ROLE;
SELECT pg_temp.set_clock(pg_temp.b() + interval '3 seconds');
SET LOCAL ROLE regress_clock_app;
SELECT clock_timestamp() >= pg_temp.b() AS after_the_change;
INSERT INTO public.notes VALUES (2, :'org_a', 'written after midnight');
UPDATE public.notes SET body = 'changed after midnight' WHERE id = 1;
COMMIT;
-- Both sides are recorded, in the month the transaction started in (the
-- partition key is the transaction start), with their own statement times.
SELECT count(*) AS records,
       count(*) FILTER (WHERE statement_at < pg_temp.b()) AS before,
       count(*) FILTER (WHERE statement_at >= pg_temp.b()) AS after,
       bool_and(tableoid::regclass::text = pg_temp.month_part(pg_temp.b() - interval '1 day')) AS in_the_old_month
FROM tenant_guard.audit_log WHERE table_name = 'public.notes' AND kind = 'rows';
SELECT row_pk, action, new_row->>'body' AS body FROM tenant_guard.audit_trail
WHERE table_name = 'public.notes' AND kind = 'row' ORDER BY id, item;

-- 2. The next transaction is recorded in the new month.
SET ROLE regress_clock_app;
INSERT INTO public.notes VALUES (3, :'org_a', 'new month');
RESET ROLE;
SELECT tableoid::regclass::text = pg_temp.month_part(pg_temp.b()) AS in_the_new_month
FROM tenant_guard.audit_log WHERE table_name = 'public.notes' AND kind = 'rows' ORDER BY id DESC LIMIT 1;
SELECT ok, problem FROM tenant_guard.verify_audit();

-- 3. A write in a month with no partition (nobody ran the maintenance for
--    months, or the clock jumped): recorded, no error for the application,
--    and audit readers elsewhere do not wait for the writer's transaction.
SELECT pg_temp.set_clock(pg_temp.b() + interval '7 months 1 day');
SELECT to_regclass(pg_temp.month_part(clock_timestamp())) IS NULL AS no_partition_yet;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=postgres',
       split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database()));
BEGIN;
SET LOCAL ROLE regress_clock_app;
INSERT INTO public.notes VALUES (4, :'org_a', 'a month nobody prepared');
RESET ROLE;
SELECT * FROM dblink('other', $$SET lock_timeout = '5s'; SELECT count(*) > 0 FROM tenant_guard.audit_log$$)
    AS t(reader_not_blocked boolean);
COMMIT;
SELECT tableoid::regclass::text = pg_temp.month_part(clock_timestamp()) AS recorded_in_a_new_partition
FROM tenant_guard.audit_log WHERE table_name = 'public.notes' AND kind = 'rows' ORDER BY id DESC LIMIT 1;
-- a creating transaction that rolls back takes its partition with it; the next write makes it again
SELECT pg_temp.set_clock(pg_temp.b() + interval '9 months 1 day');
BEGIN;
SET LOCAL ROLE regress_clock_app;
INSERT INTO public.notes VALUES (5, :'org_a', 'rolled back');
ROLLBACK;
SELECT to_regclass(pg_temp.month_part(clock_timestamp())) IS NULL AS gone_with_the_rollback;
SET ROLE regress_clock_app;
INSERT INTO public.notes VALUES (6, :'org_a', 'kept');
RESET ROLE;
SELECT count(*) AS records_of_the_month FROM tenant_guard.audit_log
WHERE tableoid::regclass::text = pg_temp.month_part(clock_timestamp()) AND kind = 'rows';
-- the partition made by the safety net is locked down like the others
SELECT relrowsecurity, relacl IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM aclexplode(relacl) a WHERE a.grantee = 0) AS no_public_grant,
       (SELECT count(*) FROM pg_index WHERE indrelid = c.oid) AS indexes,
       (SELECT array_agg(tgname ORDER BY tgname) FROM pg_trigger WHERE tgrelid = c.oid) AS triggers
FROM pg_class c WHERE c.oid = to_regclass(pg_temp.month_part(clock_timestamp()));
SELECT ok, problem FROM tenant_guard.verify_audit();

-- 4. 25 months after the change: purge_audit() drops the months past the
--    24-month retention, keeps the rest, and the chain still verifies.
SELECT pg_temp.set_clock(pg_temp.b() + interval '25 months 1 day');
SELECT count(*) FILTER (WHERE p.partition_name = substr(pg_temp.month_part(pg_temp.b() - interval '1 day'), 14))
           AS old_month_purged,
       count(*) FILTER (WHERE p.partition_name = substr(pg_temp.month_part(pg_temp.b() + interval '7 months'), 14))
           AS kept_month_purged
FROM tenant_guard.purge_audit() p;
SELECT count(*) FILTER (WHERE statement_at < pg_temp.b() + interval '1 month') AS old_records_left,
       count(*) AS records_left
FROM tenant_guard.audit_log WHERE table_name = 'public.notes' AND kind = 'rows';
SELECT ok, problem FROM tenant_guard.verify_audit();

SELECT dblink_disconnect('other');
DROP TABLE public.notes;
DROP ROLE regress_clock_app;
