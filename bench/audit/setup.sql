-- bench/audit_bench.sh: three tables with the same columns, indexes and
-- 100,000 rows of one tenant (:org): no trigger, the classic PL/pgSQL audit
-- trigger, and tenant_guard.enable_audit().
CREATE EXTENSION tenant_guard;
CREATE SCHEMA bench;
CREATE TABLE bench.plain (
    id         bigint PRIMARY KEY,
    org_id     uuid NOT NULL,
    name       text,
    email      text,
    status     text,
    amount     numeric(12, 2),
    updated_at timestamptz
);
CREATE INDEX ON bench.plain (org_id);
CREATE TABLE bench.classic (LIKE bench.plain INCLUDING ALL);
CREATE TABLE bench.audited (LIKE bench.plain INCLUDING ALL);

-- The audit trigger users write by hand.
CREATE TABLE bench.classic_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    table_name text NOT NULL,
    op         text NOT NULL,
    actor      text,
    old_row    jsonb,
    new_row    jsonb
);
CREATE FUNCTION bench.classic_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.classic_log (table_name, op, actor, old_row, new_row)
    VALUES (TG_TABLE_NAME, TG_OP, current_setting('tenant_guard.user_id', true),
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END
$$;

INSERT INTO bench.plain SELECT g, :'org', 'name ' || g, 'user' || g || '@example.com', 'active', g % 1000, now()
FROM generate_series(1, 100000) g;
INSERT INTO bench.classic SELECT * FROM bench.plain;
INSERT INTO bench.audited SELECT * FROM bench.plain;
CREATE TRIGGER classic_audit AFTER INSERT OR UPDATE OR DELETE ON bench.classic
    FOR EACH ROW EXECUTE FUNCTION bench.classic_audit();
SELECT tenant_guard.enable_audit('bench.audited');
VACUUM ANALYZE bench.plain, bench.classic, bench.audited;
