-- The C++/PostgreSQL error boundary: a C++ exception and a PostgreSQL error
-- raised inside C++ code both reach the client as clean errors with the right
-- SQLSTATE, destructors run, and the session keeps working.
\set VERBOSITY default
SELECT tenant_guard._selftest_boundary('ok');
SELECT tenant_guard._selftest_live_objects();

-- A tenant_guard::Error keeps its SQLSTATE, detail and hint.
\set VERBOSITY sqlstate
SELECT tenant_guard._selftest_boundary('cpp');
\set VERBOSITY default
SELECT tenant_guard._selftest_boundary('cpp');
SELECT tenant_guard._selftest_live_objects();

-- Any other C++ exception becomes an internal error naming the function.
\set VERBOSITY sqlstate
SELECT tenant_guard._selftest_boundary('std');
\set VERBOSITY default
SELECT tenant_guard._selftest_boundary('std');
SELECT tenant_guard._selftest_boundary('bad_alloc');
SELECT tenant_guard._selftest_live_objects();

-- PostgreSQL's own error (22P02 from int4in) comes through unchanged.
\set VERBOSITY sqlstate
SELECT tenant_guard._selftest_boundary('pg');
\set VERBOSITY default
SELECT tenant_guard._selftest_boundary('pg');
-- ereport inside nested C++ scopes: all destructors ran.
SELECT tenant_guard._selftest_boundary('pg_nested');
SELECT tenant_guard._selftest_live_objects();

-- Errors inside a transaction and a savepoint leave the session usable.
BEGIN;
SAVEPOINT s1;
SELECT tenant_guard._selftest_boundary('cpp');
ROLLBACK TO SAVEPOINT s1;
SELECT tenant_guard._selftest_boundary('ok');
COMMIT;

-- Many errors in a row: no leaked objects, no stale error stack.
DO $$
DECLARE
    k text;
    n int := 0;
BEGIN
    FOR i IN 1..200 LOOP
        FOREACH k IN ARRAY ARRAY['cpp', 'std', 'bad_alloc', 'pg', 'pg_nested'] LOOP
            BEGIN
                PERFORM tenant_guard._selftest_boundary(k);
            EXCEPTION WHEN OTHERS THEN
                n := n + 1;
            END;
        END LOOP;
    END LOOP;
    RAISE NOTICE 'caught % errors', n;
END
$$;
SELECT tenant_guard._selftest_live_objects();
SELECT 1 AS still_working;

-- Unknown kinds are a clean user error; the self-tests are not for PUBLIC.
SELECT tenant_guard._selftest_boundary('nope');
CREATE ROLE regress_boundary_user;
SET ROLE regress_boundary_user;
SELECT tenant_guard._selftest_boundary('ok');
RESET ROLE;
DROP ROLE regress_boundary_user;
