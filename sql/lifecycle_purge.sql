-- Tenant lifecycle: purge_tenant() (a foreign-key chain of 3 tables whose
-- name order is the wrong delete order, a partitioned table, an encrypted
-- column, an audited table; exactly that tenant's rows go, keys shredded,
-- other tenants untouched, the certificate matches the counts and its hash
-- verifies, a second purge refused; a wrong confirm changes nothing; a
-- foreign-key cycle is reported) and purge_due_tenants() (only due tenants;
-- a concurrent run does nothing).
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
\set SHOW_CONTEXT never
SET tenant_guard.context_source = 'setting';
SET tenant_guard.master_key_file = :'master_key_file';
\set org_c '33333333-3333-4333-8333-333333333333'
\set org_d '44444444-4444-4444-8444-444444444444'

CREATE ROLE regress_lcp_app;
CREATE SCHEMA lp;
GRANT USAGE ON SCHEMA lp TO regress_lcp_app;
CREATE TABLE lp.accounts (org_id uuid NOT NULL, id int NOT NULL, name text, PRIMARY KEY (org_id, id));
CREATE TABLE lp.projects (org_id uuid NOT NULL, id int NOT NULL, account_id int NOT NULL, PRIMARY KEY (org_id, id),
                          FOREIGN KEY (org_id, account_id) REFERENCES lp.accounts (org_id, id));
CREATE TABLE lp.tasks (org_id uuid NOT NULL, id int NOT NULL, project_id int NOT NULL, secret bytea, PRIMARY KEY (org_id, id),
                       FOREIGN KEY (org_id, project_id) REFERENCES lp.projects (org_id, id));
CREATE TABLE lp.log (org_id uuid NOT NULL, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE lp.log_2025 PARTITION OF lp.log FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE lp.log_2026 PARTITION OF lp.log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT count(tenant_guard.protect(t)) FROM unnest('{lp.accounts,lp.projects,lp.tasks,lp.log}'::regclass[]) t;
SELECT tenant_guard.enable_audit('lp.accounts');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA lp TO regress_lcp_app;

-- the delete order: referencing tables first
SELECT tbl FROM tenant_guard._lifecycle_delete_order();

CREATE FUNCTION pg_temp.fill(org uuid, n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('tenant_guard.org_id', org::text, false);
    INSERT INTO lp.accounts SELECT org, i, 'acct ' || i FROM generate_series(1, n) i;
    INSERT INTO lp.projects SELECT org, i, 1 + i % n FROM generate_series(1, 2 * n) i;
    INSERT INTO lp.tasks SELECT org, i, 1 + i % (2 * n), tenant_guard.encrypt_text('task secret ' || i, 'lp.tasks.secret')
    FROM generate_series(1, 3 * n) i;
    INSERT INTO lp.log SELECT org, date '2025-12-30' + i, 'log ' || i FROM generate_series(1, 4) i;
    PERFORM set_config('tenant_guard.org_id', '', false);
END $$;
SELECT pg_temp.fill(:'org_a', 2), pg_temp.fill(:'org_b', 3), pg_temp.fill(:'org_c', 1), pg_temp.fill(:'org_d', 1);
SET tenant_guard.org_id = :'org_a';
SELECT tenant_guard.rotate_key() AS a_key_version;
INSERT INTO lp.tasks VALUES (:'org_a', 100, 1, tenant_guard.encrypt_text('under v2', 'lp.tasks.secret'));
CREATE TEMP TABLE a_cipher AS SELECT id, secret FROM lp.tasks WHERE org_id = :'org_a' AND id IN (1, 100);
RESET tenant_guard.org_id;
CREATE VIEW pg_temp.counts AS
    SELECT org_id, count(*) FILTER (WHERE tableoid = 'lp.accounts'::regclass) AS accounts,
           count(*) FILTER (WHERE tableoid = 'lp.projects'::regclass) AS projects,
           count(*) FILTER (WHERE tableoid = 'lp.tasks'::regclass) AS tasks,
           count(*) FILTER (WHERE tableoid::regclass::text LIKE 'lp.log%') AS log
    FROM (SELECT org_id, tableoid FROM lp.accounts UNION ALL SELECT org_id, tableoid FROM lp.projects
          UNION ALL SELECT org_id, tableoid FROM lp.tasks UNION ALL SELECT org_id, tableoid FROM lp.log) x
    GROUP BY org_id;
SELECT org_id = :'org_a' AS is_a, org_id = :'org_b' AS is_b, accounts, projects, tasks, log FROM pg_temp.counts ORDER BY org_id;
SELECT count(tenant_guard.register_tenant(o, 'tenant ' || o)) FROM unnest(ARRAY[:'org_a', :'org_b', :'org_c', :'org_d']::uuid[]) o;

-- refused: wrong or missing confirm, unregistered tenant, NULL, and non-platform roles; nothing changes
SELECT tenant_guard.purge_tenant(:'org_a', 'yes');
SELECT tenant_guard.purge_tenant(:'org_a', :'org_b');
SELECT tenant_guard.purge_tenant(:'org_a', NULL);
SELECT tenant_guard.purge_tenant(:'org_a', :'org_a' || ' ');
SELECT tenant_guard.purge_tenant(NULL, NULL);
SELECT tenant_guard.purge_tenant('00000000-0000-4000-8000-000000000000', '00000000-0000-4000-8000-000000000000');
SET ROLE regress_lcp_app;
SET tenant_guard.org_id = :'org_a';
SELECT tenant_guard.purge_tenant(:'org_a', :'org_a');
SELECT tenant_guard.purge_due_tenants();
RESET tenant_guard.org_id;
RESET ROLE;
SELECT org_id = :'org_a' AS is_a, accounts, projects, tasks, log FROM pg_temp.counts ORDER BY org_id;
SELECT count(*) AS shredded_keys FROM tenant_guard.tenant_keys WHERE state = 'shredded';
SELECT count(*) AS certificates FROM tenant_guard.purge_certificates;

-- the purge
SELECT tenant_guard.purge_tenant(:'org_a', :'org_a') AS cert \gset
SELECT :'cert'::jsonb -> 'tables' AS tables;
SELECT :'cert'::jsonb -> 'key_versions_shredded' AS key_versions_shredded,
       :'cert'::jsonb -> 'not_covered' AS not_covered,
       :'cert'::jsonb ->> 'previous_status' AS previous_status,
       :'cert'::jsonb ->> 'org_id' = :'org_a' AS org_ok,
       :'cert'::jsonb -> 'actor' ->> 'session_user' = session_user AS actor_ok,
       :'cert'::jsonb ->> 'database' = current_database() AS database_ok,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(:'cert'::jsonb) k) AS fields;
-- the certificate matches the counts taken before
SELECT bool_and((t ->> 'rows_before')::int = (t ->> 'rows_deleted')::int AND (t ->> 'rows_after')::int = 0) AS consistent,
       sum((t ->> 'rows_deleted')::int) AS deleted
FROM jsonb_array_elements(:'cert'::jsonb -> 'tables') t;
-- its hash verifies as the docs describe; it is kept, identical
SELECT encode(sha256(convert_to((:'cert'::jsonb - 'sha256')::text, 'UTF8')), 'hex') = :'cert'::jsonb ->> 'sha256' AS hash_verifies;
SELECT certificate = :'cert'::jsonb AS kept, sha256 = :'cert'::jsonb ->> 'sha256' AS sha_column, purged_at = (certificate ->> 'purged_at')::timestamptz AS at_ok
FROM tenant_guard.purge_certificates WHERE org_id = :'org_a';
SELECT encode(sha256(convert_to(((:'cert'::jsonb - 'sha256') || '{"tables": []}')::text, 'UTF8')), 'hex') = :'cert'::jsonb ->> 'sha256' AS altered_verifies;
-- exactly that tenant's rows are gone; the others are untouched
SELECT org_id = :'org_b' AS is_b, accounts, projects, tasks, log FROM pg_temp.counts ORDER BY org_id;
-- keys shredded: A's ciphertext no longer decrypts, B's still does
SELECT version, state, wrapped_key IS NULL AS no_key FROM tenant_guard.tenant_keys WHERE org_id = :'org_a' ORDER BY version;
SET tenant_guard.org_id = :'org_a';
SELECT tenant_guard.decrypt_text(secret, 'lp.tasks.secret') FROM a_cipher WHERE id = 1;
SELECT tenant_guard.decrypt_text(secret, 'lp.tasks.secret') FROM a_cipher WHERE id = 100;
SET tenant_guard.org_id = :'org_b';
SELECT tenant_guard.decrypt_text(secret, 'lp.tasks.secret') FROM lp.tasks WHERE org_id = :'org_b' AND id = 1;
RESET tenant_guard.org_id;
-- the registry: purged, display name erased; writes in its context refused
SELECT status, display_name, purged_at = (:'cert'::jsonb ->> 'purged_at')::timestamptz AS at_ok FROM tenant_guard.tenants WHERE org_id = :'org_a';
SET ROLE regress_lcp_app;
SET tenant_guard.org_id = :'org_a';
INSERT INTO lp.accounts VALUES (:'org_a', 1, 'back again');
RESET tenant_guard.org_id;
RESET ROLE;
-- a second purge is refused, and so are archive and reactivation
SELECT tenant_guard.purge_tenant(:'org_a', :'org_a');
SELECT tenant_guard.archive_tenant(:'org_a');
SELECT tenant_guard.reactivate_tenant(:'org_a');
SELECT tenant_guard.register_tenant(:'org_a', 'again');
-- the certificate cannot be changed or deleted
UPDATE tenant_guard.purge_certificates SET sha256 = repeat('0', 64);
DELETE FROM tenant_guard.purge_certificates;
TRUNCATE tenant_guard.purge_certificates;
-- audit: the purge event carries the certificate hash; the audited table recorded each deleted row
SELECT action, detail ->> 'certificate_sha256' = :'cert'::jsonb ->> 'sha256' AS hash_in_audit
FROM tenant_guard.audit_log WHERE org = :'org_a' AND action LIKE 'platform.%' ORDER BY id;
SELECT count(*) AS deleted_row_records FROM tenant_guard.audit_trail
WHERE org = :'org_a' AND kind = 'row' AND table_name = 'lp.accounts' AND action = 'DELETE';

-- a foreign-key cycle among protected tables is reported; nothing is deleted
CREATE TABLE lp.cyc1 (org_id uuid NOT NULL, id int NOT NULL, other int, PRIMARY KEY (org_id, id));
CREATE TABLE lp.cyc2 (org_id uuid NOT NULL, id int NOT NULL, other int, PRIMARY KEY (org_id, id),
                      FOREIGN KEY (org_id, other) REFERENCES lp.cyc1 (org_id, id));
ALTER TABLE lp.cyc1 ADD FOREIGN KEY (org_id, other) REFERENCES lp.cyc2 (org_id, id);
SELECT tenant_guard.protect('lp.cyc1'), tenant_guard.protect('lp.cyc2');
SELECT tenant_guard.purge_tenant(:'org_b', :'org_b');
SELECT org_id = :'org_b' AS is_b, accounts, projects, tasks, log FROM pg_temp.counts WHERE org_id = :'org_b';
SELECT status FROM tenant_guard.tenants WHERE org_id = :'org_b';
DROP TABLE lp.cyc1, lp.cyc2 CASCADE;

-- purge_due_tenants(): only archived tenants past purge_after
SELECT tenant_guard.archive_tenant(:'org_c', '1 day') IS NOT NULL AS c_archived;
SELECT tenant_guard.archive_tenant(:'org_d', '1 day') IS NOT NULL AS d_archived;
SELECT * FROM tenant_guard.purge_due_tenants();
UPDATE tenant_guard.tenants SET purge_after = now() - interval '1 minute' WHERE org_id = :'org_c';
-- another scheduler holding the lock: this run does nothing
CREATE EXTENSION dblink;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=postgres',
       split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database()));
SELECT * FROM dblink('other', $$SELECT pg_advisory_lock(hashtext('tenant_guard.purge_due_tenants')::bigint)$$) AS t(x text);
SELECT * FROM tenant_guard.purge_due_tenants();
SELECT * FROM dblink('other', $$SELECT pg_advisory_unlock(hashtext('tenant_guard.purge_due_tenants')::bigint)$$) AS t(x boolean);
SELECT dblink_disconnect('other');
CREATE TEMP TABLE due AS SELECT * FROM tenant_guard.purge_due_tenants();
SELECT org_id = :'org_c' AS is_c, outcome, certificate_sha256 = (SELECT sha256 FROM tenant_guard.purge_certificates WHERE org_id = :'org_c') AS cert_ok
FROM due;
SELECT * FROM tenant_guard.purge_due_tenants();
SELECT org_id = :'org_b' AS is_b, org_id = :'org_d' AS is_d, accounts, projects, tasks, log FROM pg_temp.counts ORDER BY org_id;
SELECT org_id = :'org_a' AS a, org_id = :'org_c' AS c, status FROM tenant_guard.tenants ORDER BY org_id;
-- a failing purge is reported and the others go on: D's rows are referenced by an unprotected table
UPDATE tenant_guard.tenants SET purge_after = now() - interval '1 minute' WHERE org_id = :'org_d';
CREATE TABLE lp.outside (org_id uuid, account_id int, FOREIGN KEY (org_id, account_id) REFERENCES lp.accounts (org_id, id));
INSERT INTO lp.outside VALUES (:'org_d', 1);
SELECT org_id = :'org_d' AS is_d, outcome FROM tenant_guard.purge_due_tenants();
SELECT status FROM tenant_guard.tenants WHERE org_id = :'org_d';
SELECT accounts FROM pg_temp.counts WHERE org_id = :'org_d';

-- the purge waits for in-flight writes of the tables (and then deletes what they wrote)
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=postgres',
       split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database()));
SELECT dblink_exec('other', 'BEGIN');
SELECT dblink_exec('other', format('INSERT INTO lp.log VALUES (%L, %L, %L)', :'org_b', '2026-03-01', 'in flight'));
SET lock_timeout = '200ms';
SELECT tenant_guard.purge_tenant(:'org_b', :'org_b');
RESET lock_timeout;
SELECT status FROM tenant_guard.tenants WHERE org_id = :'org_b';
SELECT dblink_exec('other', 'COMMIT');
SELECT dblink_disconnect('other');
SELECT t FROM jsonb_array_elements(tenant_guard.purge_tenant(:'org_b', :'org_b') -> 'tables') t WHERE t ->> 'table' = 'lp.log';
SELECT count(*) AS b_rows_left FROM pg_temp.counts WHERE org_id = :'org_b';

DROP EXTENSION dblink;
DROP SCHEMA lp CASCADE;
DROP ROLE regress_lcp_app;
