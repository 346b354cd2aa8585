-- pg_regress created the extension; the walkthrough's step 1 creates it again
DROP EXTENSION tenant_guard;
