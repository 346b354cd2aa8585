-- Audit records: what enable_audit() records for every action (before/after
-- snapshots, excluded and redacted columns, primary key, changed columns,
-- tenant from the row, actor and impersonator), audit_event(), tenant_guard's
-- own events, rollback and savepoints, TRUNCATE refusal, the append-only log,
-- tenant-isolated reads, CSV export.
\set SHOW_CONTEXT never
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set org_a '11111111-1111-4111-8111-111111111111'
\set org_b '22222222-2222-4222-8222-222222222222'
CREATE ROLE regress_audit_owner;
CREATE ROLE regress_audit_app;
CREATE ROLE regress_audit_auditor BYPASSRLS;
CREATE SCHEMA au AUTHORIZATION regress_audit_owner;
GRANT USAGE ON SCHEMA au TO regress_audit_app;
CREATE VIEW au.log AS
    SELECT kind, org, action, table_name, actor, impersonator, tenant_role, db_role, row_pk, old_row, new_row,
           changed_columns, detail
    FROM tenant_guard.audit_trail;
CREATE FUNCTION pg_temp.last_id() RETURNS bigint LANGUAGE sql AS $$ SELECT coalesce(max(id), 0) FROM tenant_guard.audit_log $$;

SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = :'org_a';
SET tenant_guard.user_id = 'alice';
SET tenant_guard.role = 'admin';

-- a protected table with an excluded and a redacted column
SET ROLE regress_audit_owner;
CREATE TABLE au.members (id int PRIMARY KEY, org_id uuid NOT NULL, email text, password_hash text,
                         updated_at timestamptz, note text);
SELECT tenant_guard.protect('au.members');
SELECT tenant_guard.enable_audit('au.members', exclude_columns => '{updated_at}', redact_columns => '{password_hash}');
GRANT SELECT, INSERT, UPDATE, DELETE ON au.members TO regress_audit_app;
SELECT tbl, exclude_columns, redact_columns FROM tenant_guard.audited_tables;
RESET ROLE;
SELECT count(*) > 0 AS partitions_created_ahead FROM pg_inherits WHERE inhparent = 'tenant_guard.audit_log'::regclass;
-- tenant_guard's own events: protect and enable_audit
SELECT org, action, actor, detail->>'tbl' AS tbl FROM au.log ORDER BY 1, 2;
SELECT pg_temp.last_id() AS mark \gset

-- every action, as the application role in tenant A
SET ROLE regress_audit_app;
INSERT INTO au.members VALUES (1, :'org_a', 'a@example.com', 'h1', now(), 'first');
UPDATE au.members SET email = 'a2@example.com', password_hash = 'h2' WHERE id = 1;
DELETE FROM au.members WHERE id = 1;
RESET ROLE;
SELECT action, org, table_name, actor, tenant_role, db_role, row_pk, old_row, new_row, changed_columns
FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row' ORDER BY id, item;
-- one seal per (transaction, tenant), linked into one chain
SELECT count(*) AS seals, count(DISTINCT xid) AS transactions, max(seal_seq) - min(seal_seq) + 1 AS consecutive,
       count(*) FILTER (WHERE kind = 'seal') AS seal_rows
FROM tenant_guard.audit_log WHERE id > :mark AND seal_seq IS NOT NULL;

-- an UPDATE that changes nothing, or only an excluded column, writes nothing
INSERT INTO au.members VALUES (2, :'org_a', 'b@example.com', 'h', now(), 'x');
SELECT pg_temp.last_id() AS mark \gset
UPDATE au.members SET note = note WHERE id = 2;
UPDATE au.members SET updated_at = now() WHERE id = 2;
SELECT count(*) AS noop_records FROM tenant_guard.audit_log WHERE id > :mark;
SET tenant_guard.audit_skip_noop_updates = off;
UPDATE au.members SET note = note WHERE id = 2;
RESET tenant_guard.audit_skip_noop_updates;
SELECT action, changed_columns FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row';
SET ROLE regress_audit_app;
SET tenant_guard.audit_skip_noop_updates = off;
RESET ROLE;

-- the tenant comes from the row of a protected table, not from the context
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO au.members VALUES (3, :'org_b', 'c@b.example', 'h', now(), 'tenant b row');
SELECT org, actor FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row';
-- an unprotected table takes the tenant from the context (NULL without one)
SET ROLE regress_audit_owner;
CREATE TABLE au.settings (key text PRIMARY KEY, value text);
SELECT tenant_guard.enable_audit('au.settings');
RESET ROLE;
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO au.settings VALUES ('theme', 'dark');
SET tenant_guard.org_id = '';
INSERT INTO au.settings VALUES ('lang', 'en');
SET tenant_guard.org_id = :'org_a';
SELECT org, row_pk FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row' ORDER BY id, item;
-- a text tenant column
SET ROLE regress_audit_owner;
CREATE TABLE au.notes (id int PRIMARY KEY, tenant text NOT NULL, body text);
SELECT tenant_guard.protect('au.notes', 'tenant');
SELECT tenant_guard.enable_audit('au.notes');
RESET ROLE;
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO au.notes VALUES (1, 'acme', 'hello');
SELECT org FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row';

-- the impersonating support agent: setting, claims and signed sources
SELECT pg_temp.last_id() AS mark \gset
SET tenant_guard.impersonator = 'agent-7';
SELECT tenant_guard.current_impersonator();
UPDATE au.members SET note = 'fixed by support' WHERE id = 2;
RESET tenant_guard.impersonator;
SELECT tenant_guard.current_impersonator() IS NULL AS none;
SET tenant_guard.context_source = 'claims';
SELECT set_config('request.jwt.claims', json_build_object('org_id', :'org_a', 'sub', 'bob', 'org_role', 'member',
                  'act', json_build_object('sub', 'agent-9'))::text, false) IS NOT NULL AS claims_set;
SELECT tenant_guard.current_impersonator();
UPDATE au.members SET note = 'fixed again' WHERE id = 2;
SET tenant_guard.impersonator_claim = 'support.agent';
SELECT tenant_guard.current_impersonator() IS NULL AS other_claim_path;
SET tenant_guard.impersonator_claim = 'a..b';
RESET tenant_guard.impersonator_claim;
SET tenant_guard.context_source = 'signed';
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
SET tenant_guard.jwt_audience = :'audience';
BEGIN;
SELECT tenant_guard.set_context(pg_temp.tok('tok_hs_impersonated_a')) = :'org_a' AS signed;
SELECT tenant_guard.current_user_id(), tenant_guard.current_impersonator();
UPDATE au.members SET note = 'signed fix' WHERE id = 2;
COMMIT;
SELECT actor, impersonator, tenant_role, new_row->>'note' AS note
FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row' ORDER BY id, item;
-- an application role cannot pick the claim path
SET ROLE regress_audit_app;
SET tenant_guard.impersonator_claim = 'user_metadata.agent';
RESET ROLE;
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS cleared;
SET tenant_guard.context_source = 'setting';

-- application events: same actor fields; reserved prefix and bad actions refused
SELECT pg_temp.last_id() AS mark \gset
SET ROLE regress_audit_app;
SELECT tenant_guard.audit_event('member.role_changed', '{"member": 2, "from": "member", "to": "admin"}') > 0 AS written;
SELECT tenant_guard.audit_event('export.requested');
SELECT tenant_guard.audit_event('tenant_guard.protect', '{}');
SELECT tenant_guard.audit_event('', '{}');
SELECT tenant_guard.audit_event(NULL, '{}');
-- the internal writer is not for applications
SELECT tenant_guard._audit_write_event(:'org_b', 'tenant_guard.key_rotated', '{}');
RESET ROLE;
SELECT tenant_guard._audit_write_event(:'org_b', 'tenant_guard.key_rotated', '{"key": 3}') > 0 AS internal_written;
SELECT kind, org, action, actor, tenant_role, db_role, detail FROM tenant_guard.audit_log
WHERE id > :mark AND kind <> 'seal' ORDER BY id;

-- rolled-back work leaves nothing; a rolled-back savepoint leaves nothing of its own
SELECT pg_temp.last_id() AS mark \gset
BEGIN;
INSERT INTO au.members VALUES (10, :'org_a', 'r@example.com', 'h', now(), 'rolled back');
SELECT tenant_guard.audit_event('rolled.back');
ROLLBACK;
SELECT count(*) AS after_rollback FROM tenant_guard.audit_log WHERE id > :mark;
BEGIN;
INSERT INTO au.members VALUES (11, :'org_a', 's1@example.com', 'h', now(), 'kept 1');
SAVEPOINT s;
INSERT INTO au.members VALUES (12, :'org_a', 's2@example.com', 'h', now(), 'undone');
INSERT INTO au.members VALUES (13, :'org_b', 's3@example.com', 'h', now(), 'undone, other tenant');
ROLLBACK TO SAVEPOINT s;
SAVEPOINT t;
INSERT INTO au.members VALUES (14, :'org_a', 's4@example.com', 'h', now(), 'kept 2');
RELEASE SAVEPOINT t;
COMMIT;
SELECT kind, org, seq, jsonb_path_query_array(coalesce(rows, tenant_guard._audit_images(id, xact_at, org, hash)), '$[*].pk') AS pks, seal_seq IS NOT NULL AS seals,
       detail->'records' AS sealed_records
FROM tenant_guard.audit_log WHERE id > :mark ORDER BY id;
-- an error inside a PL/pgSQL exception block is a rolled-back subtransaction too
SELECT pg_temp.last_id() AS mark \gset
DO $$
BEGIN
    INSERT INTO au.members VALUES (15, '11111111-1111-4111-8111-111111111111', 'e@example.com', 'h', now(), 'kept');
    BEGIN
        INSERT INTO au.members VALUES (16, '11111111-1111-4111-8111-111111111111', 'f@example.com', 'h', now(), 'gone');
        INSERT INTO au.members VALUES (15, '11111111-1111-4111-8111-111111111111', 'dup', 'h', now(), 'dup');
    EXCEPTION WHEN unique_violation THEN NULL;
    END;
END
$$;
SELECT kind, seq, jsonb_path_query_array(coalesce(rows, tenant_guard._audit_images(id, xact_at, org, hash)), '$[*].pk') AS pks, seal_seq IS NOT NULL AS seals
FROM tenant_guard.audit_log WHERE id > :mark ORDER BY id;
SELECT ok, problem FROM tenant_guard.verify_audit();

-- TRUNCATE of an audited table is refused (also of a partition)
TRUNCATE au.members;
SET ROLE regress_audit_owner;
CREATE TABLE au.events (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (id, org_id)) PARTITION BY HASH (org_id);
CREATE TABLE au.events_0 PARTITION OF au.events FOR VALUES WITH (MODULUS 2, REMAINDER 0);
SELECT tenant_guard.protect('au.events');
SELECT tenant_guard.enable_audit('au.events');
CREATE TABLE au.events_1 PARTITION OF au.events FOR VALUES WITH (MODULUS 2, REMAINDER 1);
TRUNCATE au.events_0;
TRUNCATE au.events_1;
RESET ROLE;
SELECT pg_temp.last_id() AS mark \gset
INSERT INTO au.events VALUES (1, :'org_a', 'partitioned');
SELECT table_name, org, row_pk FROM tenant_guard.audit_trail WHERE id > :mark AND kind = 'row';

-- enable_audit() refuses what it cannot do
SELECT tenant_guard.enable_audit('au.members', '{nope}');
SELECT tenant_guard.enable_audit('au.members', '{id}');
SELECT tenant_guard.enable_audit('au.members', '{note}', '{note}');
SELECT tenant_guard.enable_audit('tenant_guard.audit_log');
SELECT tenant_guard.enable_audit('au.log');
SELECT tenant_guard.enable_audit(NULL);
SET ROLE regress_audit_app;
SELECT tenant_guard.enable_audit('au.members');
SELECT tenant_guard.disable_audit('au.members');
RESET ROLE;
SELECT tenant_guard.disable_audit('au.log');

-- append-only: no write privilege for applications, and even the owner
-- (a superuser here) cannot UPDATE, DELETE or TRUNCATE
SET ROLE regress_audit_app;
INSERT INTO tenant_guard.audit_log (id, xact_at, statement_at, xid, kind, seq, action, db_role, session_role,
                                    row_count, prev_hash, hash)
VALUES (0, now(), now(), 0, 'event', 1, 'forged', 'x', 'x', 0, '', '');
UPDATE tenant_guard.audit_log SET actor = 'mallory';
DELETE FROM tenant_guard.audit_log;
TRUNCATE tenant_guard.audit_log;
RESET ROLE;
UPDATE tenant_guard.audit_log SET actor = 'mallory' WHERE id = :mark;
DELETE FROM tenant_guard.audit_log WHERE id = :mark;
TRUNCATE tenant_guard.audit_log;
SELECT format('TRUNCATE %s', inhrelid::regclass) AS truncate_partition
FROM pg_inherits WHERE inhparent = 'tenant_guard.audit_log'::regclass ORDER BY 1 LIMIT 1 \gset
:truncate_partition;
SELECT count(*) > 0 AS records_still_there FROM tenant_guard.audit_log WHERE id <= :mark;

-- tenant-isolated reads: the in-tenant admin of A reads A's records only;
-- another in-tenant role reads nothing; B's admin reads B's only
SET ROLE regress_audit_app;
SELECT count(*) FILTER (WHERE org = :'org_a') > 0 AS reads_a, count(*) FILTER (WHERE org IS DISTINCT FROM :'org_a') AS other
FROM tenant_guard.audit_log;
-- the same through the trail view (security_invoker: the policies apply)
SELECT count(*) FILTER (WHERE org = :'org_a') > 0 AS trail_reads_a,
       count(*) FILTER (WHERE org IS DISTINCT FROM :'org_a') AS trail_other
FROM tenant_guard.audit_trail;
SET tenant_guard.role = 'member';
SELECT count(*) AS member_reads FROM tenant_guard.audit_log;
SET tenant_guard.role = 'admin';
SET tenant_guard.org_id = :'org_b';
SELECT count(*) FILTER (WHERE org = :'org_b') > 0 AS reads_b, count(*) FILTER (WHERE org IS DISTINCT FROM :'org_b') AS other
FROM tenant_guard.audit_log;
SET tenant_guard.org_id = '';
SELECT count(*) AS no_tenant_reads FROM tenant_guard.audit_log;
-- partitions cannot be read around the policies
-- (only the SQLSTATE is shown: the partition's name is this month's)
\set VERBOSITY sqlstate
:truncate_partition;
\set VERBOSITY default
SET tenant_guard.org_id = :'org_a';
-- the reader role is configurable, by superusers only
SET tenant_guard.audit_reader_role = 'member';
RESET ROLE;
SET tenant_guard.audit_reader_role = 'auditor';
SET ROLE regress_audit_app;
SELECT count(*) AS admin_reads_with_other_reader_role FROM tenant_guard.audit_log;
SET tenant_guard.role = 'auditor';
SELECT count(*) > 0 AS auditor_role_reads FROM tenant_guard.audit_log;
SET tenant_guard.role = 'admin';
RESET ROLE;
RESET tenant_guard.audit_reader_role;
SET tenant_guard.audit_reader_role = '';
-- verify_audit is not for applications; the platform auditor reads everything
SET ROLE regress_audit_app;
SELECT * FROM tenant_guard.verify_audit();
RESET ROLE;
GRANT EXECUTE ON FUNCTION tenant_guard.verify_audit(text, timestamptz) TO regress_audit_auditor;
SET ROLE regress_audit_auditor;
SELECT count(DISTINCT org) AS orgs_seen, bool_or(org IS NULL) AS platform_events_seen FROM tenant_guard.audit_log;
SELECT ok, records > 0 AS checked FROM tenant_guard.verify_audit();
RESET ROLE;

-- CSV export: header first, RFC 4180 quoting of commas, quotes, newlines; NULL empty
SET tenant_guard.user_id = E'o''brien, "the"\nboss';
INSERT INTO au.members VALUES (20, :'org_a', NULL, 'h', now(), 'comma, "quote"');
SET tenant_guard.user_id = 'alice';
SELECT max(id) AS csv_id FROM tenant_guard.audit_log WHERE kind = 'rows' \gset
SET ROLE regress_audit_app;
SELECT regexp_replace(regexp_replace(line, '^[0-9]+,1,[^,]+,', 'ID,1,TIME,'), ',[0-9]+,[0-9a-f]{64}$', ',XID,HASH') AS line
FROM tenant_guard.audit_csv(:'org_a', now() - interval '1 hour', now() + interval '1 hour') WITH ORDINALITY AS c(line, n)
WHERE n = 1 OR line LIKE :'csv_id' || ',%' ORDER BY n;
-- the tenant admin's export holds its own tenant only
SELECT count(*) AS b_lines FROM tenant_guard.audit_csv(:'org_b', now() - interval '1 hour', now() + interval '1 hour');
RESET ROLE;
SELECT tenant_guard._csv_line(ARRAY['plain', NULL, '', 'a,b', 'say "hi"', E'cr\rlf\n']);
-- the COPY recipe (docs/audit.md)
COPY (SELECT action, actor, impersonator, new_row->>'note' AS note, new_row->>'email' AS email
      FROM tenant_guard.audit_trail WHERE id = :csv_id) TO STDOUT WITH CSV HEADER;

-- settings are validated
SET tenant_guard.audit_retention = 'soon';
SET tenant_guard.audit_retention = '2 weeks';
SET tenant_guard.audit_retention = '36 months';
RESET tenant_guard.audit_retention;
SET ROLE regress_audit_app;
SET tenant_guard.audit_retention = '1 month';
RESET ROLE;

-- disable_audit: no more records, and the change is itself recorded
SELECT pg_temp.last_id() AS mark \gset
SELECT tenant_guard.disable_audit('au.settings');
INSERT INTO au.settings VALUES ('tz', 'UTC');
SELECT kind, action, detail->>'tbl' AS tbl FROM tenant_guard.audit_log WHERE id > :mark AND kind <> 'seal';
SELECT tenant_guard.disable_audit('au.settings');
TRUNCATE au.settings;

SELECT ok, problem FROM tenant_guard.verify_audit();

DROP SCHEMA au CASCADE;
REVOKE EXECUTE ON FUNCTION tenant_guard.verify_audit(text, timestamptz) FROM regress_audit_auditor;
DROP ROLE regress_audit_owner;
DROP ROLE regress_audit_app;
DROP ROLE regress_audit_auditor;
