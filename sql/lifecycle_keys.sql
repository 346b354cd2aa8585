-- Tenant lifecycle with text and bigint tenant ids: the registry keys every
-- tenant by the canonical text form of its id (a lower-case uuid, a canonical
-- integer, or the string); register, export, archive, reactivate and purge
-- take it as text (uuid overloads kept). Refused: NULL, blank or padded ids,
-- the nil uuid, an id no protected table can hold, another tenant's export,
-- an export without context, and every platform function for the
-- application role. Cross-tenant writes and reads stay blocked.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET tenant_guard.context_source = 'setting';

CREATE ROLE regress_lk_app;
CREATE SCHEMA lk;
GRANT USAGE ON SCHEMA lk TO regress_lk_app;
CREATE TABLE lk.counters (org_id bigint NOT NULL, name text NOT NULL, n int NOT NULL DEFAULT 0,
                          PRIMARY KEY (org_id, name));
CREATE TABLE lk.docs (org_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (org_id, id));
SELECT count(tenant_guard.protect(t)) FROM unnest('{lk.counters,lk.docs}'::regclass[]) t;

-- only uuid and bigint tenant columns so far: a string id fits no table
SELECT tenant_guard.register_tenant('org_2abc', 'Acme');
SELECT tenant_guard.register_tenant('042', 'not canonical');
SELECT tenant_guard.register_tenant('9223372036854775808', 'beyond bigint');
SELECT tenant_guard.register_tenant('42', 'Numbers');

-- a text tenant column: any string id fits it
CREATE TABLE lk.notes (org_id text NOT NULL, id int NOT NULL, body text, PRIMARY KEY (org_id, id));
CREATE TABLE lk.comments (org_id text NOT NULL, id int NOT NULL, note_id int NOT NULL, PRIMARY KEY (org_id, id),
                          FOREIGN KEY (org_id, note_id) REFERENCES lk.notes (org_id, id));
SELECT count(tenant_guard.protect(t)) FROM unnest('{lk.notes,lk.comments}'::regclass[]) t;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA lk TO regress_lk_app;
SELECT tenant_guard.register_tenant('org_2abc', 'Acme');
SELECT tenant_guard.register_tenant('org_other', 'Other');
SELECT tenant_guard.register_tenant('43', 'More numbers');
-- a uuid in upper case is registered in its canonical form; the uuid overload still works
SELECT tenant_guard.register_tenant('AAAAAAAA-0000-4000-8000-00000000000A', 'Upper');
SELECT tenant_guard.register_tenant('bbbbbbbb-0000-4000-8000-00000000000b'::uuid, 'Typed');
-- refused
SELECT tenant_guard.register_tenant(NULL::text, 'x');
SELECT tenant_guard.register_tenant('', 'x');
SELECT tenant_guard.register_tenant(' org_2abc', 'x');
SELECT tenant_guard.register_tenant('00000000-0000-0000-0000-000000000000', 'x');
SELECT tenant_guard.register_tenant(repeat('x', 256), 'x');
SELECT org_id, display_name, status FROM tenant_guard.tenants ORDER BY org_id;

-- each tenant writes in its own context
SET ROLE regress_lk_app;
SET tenant_guard.org_id = 'org_2abc';
INSERT INTO lk.notes VALUES ('org_2abc', 1, 'acme one'), ('org_2abc', 2, 'acme two');
INSERT INTO lk.comments VALUES ('org_2abc', 1, 1);
SET tenant_guard.org_id = 'org_other';
INSERT INTO lk.notes VALUES ('org_other', 1, 'other one');
SET tenant_guard.org_id = '42';
INSERT INTO lk.notes VALUES ('42', 1, 'numbers one');
INSERT INTO lk.counters VALUES (42, 'visits', 7), (42, 'logins', 3);
SET tenant_guard.org_id = '43';
INSERT INTO lk.counters VALUES (43, 'visits', 1);
RESET tenant_guard.org_id;
RESET ROLE;

-- export as a superuser: exactly the tenant's rows, the uuid table counted 0 (it cannot hold a string id)
SELECT count(*) FILTER (WHERE d ? 'row') AS rows, string_agg(d ->> 'table', ',' ORDER BY d ->> 'table') AS tables
FROM tenant_guard.export_tenant('org_2abc') d;
SELECT d -> 'manifest' -> 'org_id' AS org_id, d -> 'manifest' -> 'tables' AS tables,
       d -> 'manifest' -> 'not_covered' AS not_covered, d -> 'manifest' -> 'complete' AS complete
FROM tenant_guard.export_tenant('org_2abc') d WHERE d ? 'manifest';
SELECT d -> 'row' AS row FROM tenant_guard.export_tenant('42') d WHERE d ? 'row' ORDER BY d::text;
SELECT d -> 'manifest' -> 'tables' AS tables FROM tenant_guard.export_tenant('42') d WHERE d ? 'manifest';
-- refused: NULL and the nil uuid (with a text tenant column, any other string is a tenant, maybe an empty one)
SELECT count(*) FROM tenant_guard.export_tenant(NULL::text);
SELECT count(*) FROM tenant_guard.export_tenant('00000000-0000-0000-0000-000000000000');

-- the application role exports its own tenant only, in its own context
GRANT EXECUTE ON FUNCTION tenant_guard.export_tenant(text, text[]) TO regress_lk_app;
SET ROLE regress_lk_app;
SELECT count(*) FROM tenant_guard.export_tenant('org_2abc');
SET tenant_guard.org_id = 'org_2abc';
SELECT count(*) FILTER (WHERE d ? 'row') AS own_rows FROM tenant_guard.export_tenant('org_2abc') d;
SELECT count(*) FROM tenant_guard.export_tenant('org_other');
SELECT count(*) FROM tenant_guard.export_tenant('42');
-- cross-tenant reads and writes stay blocked
SELECT count(*) AS other_rows_visible FROM lk.notes WHERE org_id <> 'org_2abc';
UPDATE lk.notes SET body = 'stolen' WHERE org_id = 'org_other';
INSERT INTO lk.notes VALUES ('org_other', 9, 'planted');
SELECT count(*) AS counters_visible FROM lk.counters;
-- the row count helper is for the caller's own tenant only
SELECT tenant_guard._lifecycle_tenant_rows('lk.notes', 'org_other');
-- platform functions are not the application's
SELECT tenant_guard.archive_tenant('org_other', '1 day');
SELECT tenant_guard.purge_tenant('org_other', 'org_other');
SELECT tenant_guard.register_tenant('org_evil', 'x');
RESET tenant_guard.org_id;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION tenant_guard.export_tenant(text, text[]) FROM regress_lk_app;

-- archive: the text tenant becomes read-only; the others still write
SELECT tenant_guard.archive_tenant('org_2abc', '30 days') > now() AS archived;
SELECT tenant_guard.archive_tenant('org_2abc', '30 days');
SELECT tenant_guard.archive_tenant('org_unknown', '30 days');
SELECT tenant_guard.archive_tenant(NULL::text, '30 days');
SELECT tenant_guard.archive_tenant('42', '30 days') > now() AS archived;
SET ROLE regress_lk_app;
SET tenant_guard.org_id = 'org_2abc';
SELECT count(*) AS still_readable FROM lk.notes;
INSERT INTO lk.notes VALUES ('org_2abc', 3, 'after the archive');
SET tenant_guard.org_id = '42';
UPDATE lk.counters SET n = n + 1 WHERE name = 'visits';
INSERT INTO lk.notes VALUES ('42', 2, 'after the archive');
SET tenant_guard.org_id = 'org_other';
INSERT INTO lk.notes VALUES ('org_other', 2, 'other two');
SET tenant_guard.org_id = '43';
UPDATE lk.counters SET n = n + 1 WHERE name = 'visits';
RESET tenant_guard.org_id;
RESET ROLE;
SELECT tenant_guard.reactivate_tenant('42');
SELECT tenant_guard.reactivate_tenant('org_other');
SET ROLE regress_lk_app;
SET tenant_guard.org_id = '42';
UPDATE lk.counters SET n = n + 1 WHERE name = 'visits';
RESET tenant_guard.org_id;
RESET ROLE;

-- a uuid tenant is matched by the uuid of its claim, in whatever case the claim writes it (uuid overloads)
SELECT tenant_guard.archive_tenant('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, '1 day') > now() AS archived;
SET ROLE regress_lk_app;
SET tenant_guard.org_id = 'AAAAAAAA-0000-4000-8000-00000000000A';
INSERT INTO lk.docs VALUES ('aaaaaaaa-0000-4000-8000-00000000000a', 1);
SET tenant_guard.org_id = 'bbbbbbbb-0000-4000-8000-00000000000b';
INSERT INTO lk.docs VALUES ('bbbbbbbb-0000-4000-8000-00000000000b', 1);
RESET tenant_guard.org_id;
RESET ROLE;
SELECT tenant_guard.reactivate_tenant('aaaaaaaa-0000-4000-8000-00000000000a'::uuid);
-- confirm is the id as given or its canonical form
SELECT tenant_guard.purge_tenant('bbbbbbbb-0000-4000-8000-00000000000b'::uuid, 'BBBBBBBB-0000-4000-8000-00000000000B');
SELECT c -> 'org_id' AS org_id, c -> 'tables' -> 1 AS docs
FROM tenant_guard.purge_tenant('BBBBBBBB-0000-4000-8000-00000000000B', 'BBBBBBBB-0000-4000-8000-00000000000B') c;

-- purge: a wrong confirm changes nothing; then exactly the tenant's rows go
SELECT tenant_guard.purge_tenant('org_2abc', 'org_other');
SELECT tenant_guard.purge_tenant(NULL::text, NULL);
SELECT c -> 'org_id' AS org_id, c -> 'tables' AS tables, c -> 'not_covered' AS not_covered,
       c -> 'key_versions_shredded' AS keys
FROM tenant_guard.purge_tenant('org_2abc', 'org_2abc') c;
SELECT tenant_guard.purge_tenant('org_2abc', 'org_2abc');
SELECT c -> 'tables' AS tables FROM tenant_guard.purge_tenant('42', '42') c;
SELECT org_id, count(*) FROM lk.notes GROUP BY 1 ORDER BY 1;
SELECT org_id, count(*) FROM lk.counters GROUP BY 1 ORDER BY 1;
SELECT org_id, sha256 ~ '^[0-9a-f]{64}$' AS signed FROM tenant_guard.purge_certificates ORDER BY 1;
-- a purged string tenant stays read-only
SET ROLE regress_lk_app;
SET tenant_guard.org_id = 'org_2abc';
INSERT INTO lk.notes VALUES ('org_2abc', 5, 'back again');
RESET tenant_guard.org_id;
RESET ROLE;

-- the scheduler purges due string tenants too
SELECT tenant_guard.archive_tenant('org_other', '0 days') IS NOT NULL AS archived;
SELECT org_id, outcome, certificate_sha256 ~ '^[0-9a-f]{64}$' AS signed FROM tenant_guard.purge_due_tenants();
SELECT org_id, status FROM tenant_guard.tenants ORDER BY org_id;
-- the audit log names each tenant by its key
SELECT org, action FROM tenant_guard.audit_trail WHERE action LIKE 'platform.tenant_%' AND org IN ('org_2abc', '42')
ORDER BY id;

DROP SCHEMA lk CASCADE;
DROP ROLE regress_lk_app;
