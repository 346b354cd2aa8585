-- bench/audit_bench.sh: the tables it compares. Every table has the same
-- columns and indexes (primary key, and the tenant column indexed in every
-- variant); they differ only in what audits them and in whether tenant_guard
-- protects them:
--
--   none        no trigger (the baseline of its row)
--   plpgsql     the row trigger users write by hand: to_jsonb(OLD)/to_jsonb(NEW)
--               into a log table
--   transition  one statement trigger per operation reading the transition
--               tables into the same log table
--   pgaudit     pgaudit object audit (statement text in the server log, no row
--               images): the cheap anchor
--   tg          tenant_guard.enable_audit()
--
-- each once unprotected (suffix _u) and once protected (suffix _p:
-- tenant_guard.protect(), RLS + FORCE, tenant default and guards).
--
-- Source tables bench.src_<k> hold :rows rows spread over k tenants (1, 10,
-- 1000), so INSERT ... SELECT measures the insert path, not value generation.
CREATE EXTENSION tenant_guard;
CREATE EXTENSION pgaudit;
CREATE ROLE bench_auditor NOLOGIN;
CREATE SCHEMA bench;

CREATE TABLE bench.shape (
    id         bigint PRIMARY KEY,
    org_id     uuid NOT NULL,
    name       text,
    email      text,
    status     text,
    amount     numeric(12, 2),
    updated_at timestamptz
);

CREATE FUNCTION bench.org(i int) RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ('0a0a0a0a-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid;

CREATE TABLE bench.log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    table_name text NOT NULL,
    op         text NOT NULL,
    actor      text,
    org_id     uuid,
    old_row    jsonb,
    new_row    jsonb
);

CREATE FUNCTION bench.row_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.log (table_name, op, actor, org_id, old_row, new_row)
    VALUES (TG_TABLE_NAME, TG_OP, current_setting('tenant_guard.user_id', true),
            CASE WHEN TG_OP = 'DELETE' THEN OLD.org_id ELSE NEW.org_id END,
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END
$$;

CREATE FUNCTION bench.ins_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.log (table_name, op, actor, org_id, new_row)
    SELECT TG_TABLE_NAME, TG_OP, current_setting('tenant_guard.user_id', true), n.org_id, to_jsonb(n)
    FROM new_rows n;
    RETURN NULL;
END
$$;
CREATE FUNCTION bench.upd_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.log (table_name, op, actor, org_id, old_row, new_row)
    SELECT TG_TABLE_NAME, TG_OP, current_setting('tenant_guard.user_id', true), n.org_id, to_jsonb(o), to_jsonb(n)
    FROM old_rows o JOIN new_rows n USING (id);
    RETURN NULL;
END
$$;
CREATE FUNCTION bench.del_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.log (table_name, op, actor, org_id, old_row)
    SELECT TG_TABLE_NAME, TG_OP, current_setting('tenant_guard.user_id', true), o.org_id, to_jsonb(o)
    FROM old_rows o;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    v text;
    p text;
    t text;
BEGIN
    FOREACH v IN ARRAY ARRAY['none', 'plpgsql', 'transition', 'pgaudit', 'tg'] LOOP
        FOREACH p IN ARRAY ARRAY['u', 'p'] LOOP
            t := format('bench.%I', v || '_' || p);
            EXECUTE format('CREATE TABLE %s (LIKE bench.shape INCLUDING ALL)', t);
            EXECUTE format('CREATE INDEX ON %s (org_id)', t);
            IF v = 'plpgsql' THEN
                EXECUTE format('CREATE TRIGGER a AFTER INSERT OR UPDATE OR DELETE ON %s
                                FOR EACH ROW EXECUTE FUNCTION bench.row_audit()', t);
            ELSIF v = 'transition' THEN
                EXECUTE format('CREATE TRIGGER ai AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                                FOR EACH STATEMENT EXECUTE FUNCTION bench.ins_audit()', t);
                EXECUTE format('CREATE TRIGGER au AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows
                                NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bench.upd_audit()', t);
                EXECUTE format('CREATE TRIGGER ad AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows
                                FOR EACH STATEMENT EXECUTE FUNCTION bench.del_audit()', t);
            ELSIF v = 'pgaudit' THEN
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO bench_auditor', t);
            END IF;
            IF p = 'p' THEN
                PERFORM tenant_guard.protect(t::regclass);
            END IF;
            IF v = 'tg' THEN
                PERFORM tenant_guard.enable_audit(t::regclass);
            END IF;
        END LOOP;
    END LOOP;
END
$$;

-- The floor of any audit that writes its record in the audited transaction,
-- for the single-row workloads: a row trigger that inserts one integer into
-- a table with no index (no image, no tenant, no hash; PL/pgSQL, as users
-- write triggers).
CREATE TABLE bench.floor_log (x integer);
CREATE FUNCTION bench.floor_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.floor_log VALUES (1);
    RETURN NULL;
END
$$;
DO $$
DECLARE
    p text;
    t text;
BEGIN
    FOREACH p IN ARRAY ARRAY['u', 'p'] LOOP
        t := format('bench.%I', 'floor_' || p);
        EXECUTE format('CREATE TABLE %s (LIKE bench.shape INCLUDING ALL)', t);
        EXECUTE format('CREATE INDEX ON %s (org_id)', t);
        EXECUTE format('CREATE TRIGGER a AFTER INSERT OR UPDATE OR DELETE ON %s
                        FOR EACH ROW EXECUTE FUNCTION bench.floor_write()', t);
        IF p = 'p' THEN
            PERFORM tenant_guard.protect(t::regclass);
        END IF;
    END LOOP;
END
$$;

-- The sources: :rows rows over 1, 10 and 1000 tenants (row i belongs to tenant i % k).
DO $$
DECLARE
    k int;
BEGIN
    FOREACH k IN ARRAY ARRAY[1, 10, 1000] LOOP
        EXECUTE format('CREATE TABLE bench.src_%s (LIKE bench.shape INCLUDING ALL)', k);
        EXECUTE format($q$INSERT INTO bench.src_%s
            SELECT g, bench.org(g %% %s), 'name ' || g, 'user' || g || '@example.com', 'active', g %% 1000, now()
            FROM generate_series(1, %s) g$q$, k, k, current_setting('bench.rows'));
    END LOOP;
END
$$;
VACUUM ANALYZE;
