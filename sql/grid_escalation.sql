-- The attack grid runs in a superuser's session and executes its attempts as
-- the application role. Code the application role wrote, reached by an
-- attempt (here through a view it owns over a protected table), must not get
-- the superuser back: RESET ROLE and SET ROLE are refused inside the attempt
-- (a security-restricted operation). A sequence is not transactional, so the
-- canary shows what ran even though every attempt is rolled back.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE ROLE regress_ge_app LOGIN;
SELECT tenant_guard.register_app_role('regress_ge_app') IS NOT NULL AS registered;
CREATE SCHEMA ge;
GRANT USAGE, CREATE ON SCHEMA ge TO regress_ge_app;   -- the mistake the attack needs
CREATE TABLE ge.orders (org_id uuid NOT NULL, id int PRIMARY KEY, note text);
SELECT tenant_guard.protect('ge.orders') IS NOT NULL AS protected;
GRANT SELECT, INSERT, UPDATE, DELETE ON ge.orders TO regress_ge_app;
INSERT INTO ge.orders VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 1, 'a'),
                             ('bbbbbbbb-0000-4000-8000-000000000002', 2, 'b');
CREATE SEQUENCE ge.canary;   -- the superuser's: the application role has no right on it

SET ROLE regress_ge_app;
CREATE SEQUENCE ge.calls;    -- the application role's own: counts the calls of its function
CREATE FUNCTION ge.p() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('ge.calls');
    BEGIN
        RESET ROLE;
        PERFORM nextval('ge.canary');
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    BEGIN
        SET ROLE postgres;
        PERFORM nextval('ge.canary');
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN true;
END
$$;
-- p() runs once per read of the view, whatever rows the reader sees
CREATE VIEW ge.v AS SELECT * FROM ge.orders UNION ALL SELECT NULL::uuid, NULL::int, NULL::text WHERE NOT ge.p();
RESET ROLE;

-- the grid reads the view (definer_view), so the function runs as the application role
SELECT count(*) > 0 AS ran FROM tenant_guard.attack_grid('regress_ge_app', 'aaaaaaaa-0000-4000-8000-000000000001',
                                                         'bbbbbbbb-0000-4000-8000-000000000002');
SELECT vector, outcome FROM tenant_guard.attack_grid('regress_ge_app', 'aaaaaaaa-0000-4000-8000-000000000001',
                                                     'bbbbbbbb-0000-4000-8000-000000000002')
WHERE tbl = 'ge.orders'::regclass AND vector IN ('definer_view', 'read_other_tenant') ORDER BY 1;
SELECT is_called AS function_ran FROM ge.calls;
SELECT is_called AS superuser_regained FROM ge.canary;
-- the attempts changed nothing else either
SELECT current_user = session_user AS back_to_self, current_setting('role') AS role;

-- the attempt's role switch is the grid's own: not for the application role, not outside a subtransaction
SET ROLE regress_ge_app;
SELECT tenant_guard._grid_become('regress_ge_app');
RESET ROLE;
SELECT tenant_guard._grid_become('regress_ge_app');
SELECT tenant_guard._grid_become(NULL);
SELECT current_user = session_user AS still_self;

DROP SCHEMA ge CASCADE;
SELECT tenant_guard.unregister_app_role('regress_ge_app') IS NOT NULL AS unregistered;
DROP ROLE regress_ge_app;
