-- Tenant lifecycle: the registry, export (partitions, an inheritance child,
-- a text tenant column, an encrypted column; counts, no other tenant's row,
-- the manifest hash recomputed in SQL; decryption only in the tenant's own
-- context) and archive (writes refused by the policies for everyone in the
-- tenant, reads and export still work, tables protected later included).
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
\set VERBOSITY default
\set SHOW_CONTEXT never
SET tenant_guard.context_source = 'setting';
SET tenant_guard.master_key_file = :'master_key_file';

CREATE ROLE regress_lce_app;
CREATE ROLE regress_lce_platform;
CREATE SCHEMA lc;
GRANT USAGE ON SCHEMA lc TO regress_lce_app;
CREATE TABLE lc.projects (org_id uuid NOT NULL, id int NOT NULL, name text, secret bytea, PRIMARY KEY (org_id, id));
CREATE TABLE lc.events (org_id uuid NOT NULL, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE lc.events_2025 PARTITION OF lc.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE lc.events_2026 PARTITION OF lc.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE lc.notes (org_id uuid NOT NULL, body text);
CREATE TABLE lc.notes_old (kept boolean) INHERITS (lc.notes);
CREATE TABLE lc.labels (tenant text NOT NULL, label text);
SELECT count(tenant_guard.protect(t)) FROM unnest('{lc.projects,lc.events,lc.notes}'::regclass[]) t;
SELECT tenant_guard.protect('lc.labels', 'tenant');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA lc TO regress_lce_app;

SET tenant_guard.org_id = :'org_a';
INSERT INTO lc.projects VALUES (:'org_a', 1, 'alpha', tenant_guard.encrypt_text('a secret 1', 'lc.projects.secret')),
                               (:'org_a', 2, 'beta', tenant_guard.encrypt_text('a secret 2', 'lc.projects.secret')),
                               (:'org_a', 3, 'gamma', NULL);
INSERT INTO lc.events VALUES (:'org_a', '2025-05-01', 'a1'), (:'org_a', '2026-05-01', 'a2'), (:'org_a', '2026-06-01', 'a3');
INSERT INTO lc.notes VALUES (:'org_a', 'a note');
INSERT INTO lc.notes_old VALUES (:'org_a', 'an old note', true);
INSERT INTO lc.labels VALUES (:'org_a', 'a label "quoted" \ backslash, ünïcode');
SET tenant_guard.org_id = :'org_b';
INSERT INTO lc.projects VALUES (:'org_b', 1, 'b-alpha', tenant_guard.encrypt_text('b secret', 'lc.projects.secret'));
INSERT INTO lc.events VALUES (:'org_b', '2025-05-01', 'b1'), (:'org_b', '2026-05-01', 'b2');
INSERT INTO lc.notes_old VALUES (:'org_b', 'b old note', false);
INSERT INTO lc.labels VALUES (:'org_b', 'b label');
RESET tenant_guard.org_id;

-- registry
SELECT tenant_guard.register_tenant(:'org_a', 'Acme');
SELECT tenant_guard.register_tenant(:'org_b', 'Beta Corp');
SELECT tenant_guard.register_tenant(:'org_b', 'Beta Corporation');   -- renames
SELECT tenant_guard.register_tenant(NULL, 'x');
SELECT org_id = :'org_a' AS is_a, display_name, status, archived_at, purge_after, purged_at
FROM tenant_guard.tenants ORDER BY display_name;
SELECT action, detail FROM tenant_guard.audit_log WHERE action LIKE 'platform.tenant%' ORDER BY id;

-- export as superuser (bypasses row-level security; the explicit tenant filter still applies)
CREATE TEMP TABLE ex AS SELECT n, d FROM tenant_guard.export_tenant(:'org_a') WITH ORDINALITY AS e(d, n);
SELECT d ->> 'table' AS tbl, count(*) FROM ex WHERE d ? 'row' GROUP BY 1 ORDER BY 1;
SELECT d -> 'manifest' -> 'tables' AS manifest_counts, d -> 'manifest' -> 'documents' AS documents,
       d -> 'manifest' -> 'not_covered' AS not_covered, d -> 'manifest' -> 'decrypted_columns' AS decrypted,
       (d -> 'manifest' ->> 'org_id') = :'org_a' AS org_ok
FROM ex WHERE n = (SELECT max(n) FROM ex);
-- the manifest is the last document and the only one without "row"
SELECT count(*) FILTER (WHERE d ? 'manifest') AS manifests, max(n) FILTER (WHERE d ? 'manifest') = max(n) AS last FROM ex;
-- counts of the manifest equal the documents
SELECT bool_and((m.d -> 'manifest' -> 'tables' ->> t.tbl)::bigint = t.c) AS counts_match
FROM (SELECT d ->> 'table' AS tbl, count(*) AS c FROM ex WHERE d ? 'row' GROUP BY 1) t,
     (SELECT d FROM ex WHERE d ? 'manifest') m;
-- no other tenant's row
SELECT count(*) AS foreign_rows FROM ex
WHERE d ? 'row' AND coalesce(d -> 'row' ->> 'org_id', d -> 'row' ->> 'tenant') <> :'org_a';
SELECT count(*) AS b_text_anywhere FROM ex WHERE d::text LIKE '%b-alpha%' OR d::text LIKE '%b old%' OR d::text LIKE '%b label%';
-- rows of partitions and of the inheritance child are tagged with their own table, once each
SELECT d ->> 'table' AS tbl, d -> 'row' ->> 'what' AS what FROM ex WHERE d ->> 'table' LIKE 'lc.events%' ORDER BY 2;
SELECT d -> 'row' AS note FROM ex WHERE d ->> 'table' LIKE 'lc.notes%' ORDER BY 1::text;
-- the encrypted column is ciphertext (key version 1 in its envelope), not plaintext
SELECT d -> 'row' ->> 'id' AS id, tenant_guard.key_version(decode(substr(d -> 'row' ->> 'secret', 3), 'hex')) AS key_version
FROM ex WHERE d ->> 'table' = 'lc.projects' ORDER BY 1;
SELECT count(*) AS plaintext_leaks FROM ex WHERE d::text LIKE '%a secret%';
-- the manifest hash, recomputed from the documents as the docs describe
WITH RECURSIVE h(i, digest) AS (
    SELECT 0::bigint, sha256(''::bytea)
    UNION ALL
    SELECT h.i + 1, sha256(h.digest || convert_to(ex.d::text, 'UTF8')) FROM h JOIN ex ON ex.n = h.i + 1 AND ex.d ? 'row')
SELECT encode(digest, 'hex') = (SELECT d -> 'manifest' ->> 'sha256' FROM ex WHERE d ? 'manifest') AS hash_verifies
FROM h ORDER BY i DESC LIMIT 1;
-- ... and a changed document does not verify
WITH RECURSIVE h(i, digest) AS (
    SELECT 0::bigint, sha256(''::bytea)
    UNION ALL
    SELECT h.i + 1, sha256(h.digest || convert_to(CASE WHEN ex.n = 2 THEN ex.d || '{"x": 1}' ELSE ex.d END::text, 'UTF8'))
    FROM h JOIN ex ON ex.n = h.i + 1 AND ex.d ? 'row')
SELECT encode(digest, 'hex') = (SELECT d -> 'manifest' ->> 'sha256' FROM ex WHERE d ? 'manifest') AS tampered_verifies
FROM h ORDER BY i DESC LIMIT 1;
-- the text form of a document survives a round trip through text (a file)
SELECT bool_and(d::text::jsonb::text = d::text) AS round_trip FROM ex;

-- decryption: only in the tenant's own context, only of named bytea columns of protected root tables
SELECT tenant_guard.export_tenant(:'org_a', '{lc.projects.secret}');
SET tenant_guard.org_id = :'org_b';
SELECT tenant_guard.export_tenant(:'org_a', '{lc.projects.secret}');
SET tenant_guard.org_id = :'org_a';
SELECT tenant_guard.export_tenant(:'org_a', '{lc.projects.name}');
SELECT tenant_guard.export_tenant(:'org_a', '{lc.nothing.secret}');
SELECT d -> 'row' ->> 'id' AS id, d -> 'row' ->> 'secret' AS secret
FROM tenant_guard.export_tenant(:'org_a', '{lc.projects.secret}') d WHERE d ->> 'table' = 'lc.projects' ORDER BY 1;
SELECT d -> 'manifest' -> 'decrypted_columns' AS decrypted
FROM tenant_guard.export_tenant(:'org_a', '{lc.projects.secret}') d WHERE d ? 'manifest';
RESET tenant_guard.org_id;
SELECT tenant_guard.export_tenant(NULL);

-- privileges: not for PUBLIC; a granted application role exports in its own context,
-- and the tenant wall keeps another tenant's rows out even when it asks for them
SET ROLE regress_lce_app;
SELECT tenant_guard.export_tenant(:'org_a');
SELECT tenant_guard.register_tenant(:'org_a', 'mine');
SELECT tenant_guard.archive_tenant(:'org_a');
SELECT count(*) FROM tenant_guard.tenants;
RESET ROLE;
GRANT EXECUTE ON FUNCTION tenant_guard.export_tenant(text, text[]) TO regress_lce_app;
SELECT md5(string_agg(d::text, ',' ORDER BY d::text)) AS superuser_docs FROM ex WHERE d ? 'row' \gset
SET ROLE regress_lce_app;
SET tenant_guard.org_id = :'org_a';
SELECT count(*) AS docs, md5(string_agg(d::text, ',' ORDER BY d::text)) = :'superuser_docs' AS same_docs_as_superuser
FROM tenant_guard.export_tenant(:'org_a') d WHERE d ? 'row';
SELECT d FROM tenant_guard.export_tenant(:'org_b') d WHERE d ? 'row';
SELECT d -> 'manifest' -> 'tables' AS b_counts_seen_from_a FROM tenant_guard.export_tenant(:'org_b') d WHERE d ? 'manifest';
RESET tenant_guard.org_id;
RESET ROLE;

-- archive: the tenant becomes read-only
SELECT tenant_guard.archive_tenant(:'org_a', '30 days') = now() + interval '30 days' AS due_in_30_days;
-- (compared as calendar days: a daylight-saving change in the grace period makes it 23 or 25 hours shorter or longer)
SELECT status, archived_at <= now() AS archived, purge_after = archived_at + interval '30 days' AS grace_30_days FROM tenant_guard.tenants WHERE org_id = :'org_a';
SELECT tenant_guard.archive_tenant(:'org_a');
SELECT tenant_guard.archive_tenant('00000000-0000-4000-8000-000000000000');
SELECT tenant_guard.archive_tenant(:'org_b', '-1 day');
SET ROLE regress_lce_app;
SET tenant_guard.org_id = :'org_a';
INSERT INTO lc.projects VALUES (:'org_a', 9, 'new', NULL);
UPDATE lc.projects SET name = 'changed' WHERE id = 1;
DELETE FROM lc.projects WHERE id = 3;
INSERT INTO lc.events VALUES (:'org_a', '2026-07-01', 'a4');
UPDATE lc.events_2026 SET what = 'x';
DELETE FROM lc.notes_old;
UPDATE lc.labels SET label = 'x';
-- reads still work, and so does export
SELECT count(*) AS projects, (SELECT count(*) FROM lc.events) AS events, (SELECT count(*) FROM lc.notes) AS notes FROM lc.projects;
SELECT count(*) AS exported FROM tenant_guard.export_tenant(:'org_a') d WHERE d ? 'row';
-- another tenant still writes
SET tenant_guard.org_id = :'org_b';
UPDATE lc.projects SET name = 'b-renamed' WHERE id = 1;
INSERT INTO lc.events VALUES (:'org_b', '2026-07-01', 'b3');
RESET tenant_guard.org_id;
RESET ROLE;
-- a table protected after the archive (and a new partition) gets the write policies too
CREATE TABLE lc.late (org_id uuid NOT NULL, v int);
SELECT tenant_guard.protect('lc.late');
CREATE TABLE lc.events_2027 PARTITION OF lc.events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
GRANT SELECT, INSERT, UPDATE, DELETE ON lc.late, lc.events_2027 TO regress_lce_app;
SET ROLE regress_lce_app;
SET tenant_guard.org_id = :'org_a';
INSERT INTO lc.late VALUES (:'org_a', 1);
INSERT INTO lc.events_2027 VALUES (:'org_a', '2027-02-01', 'a5');
SET tenant_guard.org_id = :'org_b';
INSERT INTO lc.late VALUES (:'org_b', 1);
RESET tenant_guard.org_id;
RESET ROLE;
-- the policies: restrictive, one per write command, on every protected table; unprotect removes them
SELECT c.relname, string_agg(p.polname || ':' || p.polcmd::text || ':' || p.polpermissive::text, ' ' ORDER BY p.polname) AS lifecycle_policies
FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid AND p.polname LIKE 'tg\_lifecycle\_%'
WHERE c.relnamespace = 'lc'::regnamespace GROUP BY 1 ORDER BY 1;
SELECT tenant_guard.unprotect('lc.late');
SELECT count(*) AS late_policies FROM pg_policy WHERE polrelid = 'lc.late'::regclass;
-- verify() and lint() have nothing to say about them
SELECT * FROM tenant_guard.verify() WHERE tbl::text LIKE 'lc.%';
SELECT code, object FROM tenant_guard.lint() WHERE object LIKE '%lc.%' AND code IN ('TG003', 'TG006', 'TG012', 'TG013') ORDER BY 1, 2;
-- reactivation: writable again
SELECT tenant_guard.reactivate_tenant(:'org_a');
SELECT tenant_guard.reactivate_tenant(:'org_a');
SET ROLE regress_lce_app;
SET tenant_guard.org_id = :'org_a';
UPDATE lc.projects SET name = 'alpha2' WHERE id = 1;
RESET tenant_guard.org_id;
RESET ROLE;
SELECT status, archived_at, purge_after FROM tenant_guard.tenants WHERE org_id = :'org_a';
SELECT action FROM tenant_guard.audit_log WHERE action LIKE 'platform.tenant%' ORDER BY id;

-- each backend caches which tenants are not active: an archive made by another
-- connection reaches this one at its next statement, and so does the reactivation
CREATE EXTENSION dblink;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=postgres',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database()));
SET ROLE regress_lce_app;
SET tenant_guard.org_id = :'org_b';
UPDATE lc.projects SET name = 'b-cached' WHERE id = 1;
RESET ROLE;
SELECT * FROM dblink('other', format('SELECT tenant_guard.archive_tenant(%L) IS NOT NULL', :'org_b')) AS t(archived boolean);
SET ROLE regress_lce_app;
UPDATE lc.projects SET name = 'b-after-archive' WHERE id = 1;
RESET ROLE;
SELECT * FROM dblink('other', format('SELECT tenant_guard.reactivate_tenant(%L) IS NOT NULL', :'org_b')) AS t(reactivated boolean);
SET ROLE regress_lce_app;
UPDATE lc.projects SET name = 'b-after-reactivation' WHERE id = 1;
RESET tenant_guard.org_id;
RESET ROLE;
SELECT dblink_disconnect('other');
DROP EXTENSION dblink;

-- a platform role the superuser grants the functions to
GRANT EXECUTE ON FUNCTION tenant_guard.register_tenant(text, text), tenant_guard.archive_tenant(text, interval)
    TO regress_lce_platform;
SET ROLE regress_lce_platform;
SELECT tenant_guard.register_tenant('00000000-0000-4000-8000-00000000000c', 'Charlie');
SELECT tenant_guard.archive_tenant('00000000-0000-4000-8000-00000000000c', '1 day') > now() AS archived;
SELECT tenant_guard.purge_tenant('00000000-0000-4000-8000-00000000000c', '00000000-0000-4000-8000-00000000000c');
RESET ROLE;

DROP SCHEMA lc CASCADE;
REVOKE ALL ON FUNCTION tenant_guard.export_tenant(text, text[]) FROM regress_lce_app;
REVOKE ALL ON FUNCTION tenant_guard.register_tenant(text, text), tenant_guard.archive_tenant(text, interval)
    FROM regress_lce_platform;
DROP ROLE regress_lce_app;
DROP ROLE regress_lce_platform;
