-- tenant_guard.report(): every format carries what verify(), lint(), the
-- attack grid and verify_audit() found, and nothing else: no secret, key
-- material, token or its hash, no row of a tenant table; a table named like a
-- script stays text; who may call it; bad arguments. Nothing printed depends
-- on the date (the reports carry timestamps: they are only compared).
-- The formats are validated by real tools in test/report/run_report.sh
-- (SARIF Multitool, an XML parser, headless Chromium).
\set SHOW_CONTEXT never
\getenv tokens_file TG_TOKENS_SQL
\i :tokens_file
SET client_min_messages = warning;
SET tenant_guard.context_source = 'signed';
SET tenant_guard.jwt_secret_file = :'hs_secret_file';
SET tenant_guard.jwt_audience = :'audience';
SET tenant_guard.master_key_file = :'master_key_file';
CREATE ROLE regress_rep_owner;
CREATE ROLE regress_rep_app LOGIN;
CREATE ROLE regress_rep_dba LOGIN;
SELECT tenant_guard.register_app_role('regress_rep_app');
CREATE SCHEMA rep AUTHORIZATION regress_rep_owner;
GRANT USAGE ON SCHEMA rep TO regress_rep_app;
SET ROLE regress_rep_owner;
CREATE TABLE rep.projects (org_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, name text NOT NULL,
                           venue text NOT NULL DEFAULT 'v1', PRIMARY KEY (org_id, id));
-- an attacker-influenced name, and a planted mistake: a key unique across tenants
CREATE TABLE rep."<script>alert('x')</script>" (org_id uuid NOT NULL, email text NOT NULL UNIQUE);
CREATE TABLE rep.accounts (org_id uuid NOT NULL, id int NOT NULL, api_key bytea, PRIMARY KEY (org_id, id));
INSERT INTO rep.projects (org_id, name) VALUES (:'org_a', 'ROW-DATA-SENTINEL-A'), (:'org_b', 'ROW-DATA-SENTINEL-B');
INSERT INTO rep."<script>alert('x')</script>" VALUES (:'org_a', 'sentinel-a@example.com'), (:'org_b', 'sentinel-b@example.com');
SELECT tenant_guard.protect('rep.projects');
SELECT tenant_guard.protect('rep."<script>alert(''x'')</script>"');
SELECT tenant_guard.protect('rep.accounts');
SELECT tenant_guard.allow('rep.projects', 'member', '{SELECT,INSERT,UPDATE}', 'venue', 'venue');
SELECT tenant_guard.allow('rep.projects', 'viewer');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA rep TO regress_rep_app;
RESET ROLE;
SELECT tenant_guard.enable_audit('rep.projects');
-- an encrypted column, a tenant secret, a rotated key, a support grant
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = :'org_a';
INSERT INTO rep.accounts VALUES (:'org_a', 1, tenant_guard.encrypt_text('SECRET-API-KEY', 'rep.accounts.api_key'));
SELECT tenant_guard.put_secret('webhook', 'SECRET-WEBHOOK-VALUE');
RESET tenant_guard.org_id;
SET tenant_guard.context_source = 'signed';
SELECT tenant_guard.rotate_key(:'org_a');
SELECT tenant_guard.issue_support_grant(:'org_b', 'agent@platform', 'ticket <b>42</b>', redeem_within => '1 hour')
       AS support_token \gset
SET client_min_messages = notice;
SELECT count(*) > 0 AS hardened FROM tenant_guard.harden_app_role('regress_rep_app') \gset
SET client_min_messages = warning;

-- every format, once, with the grid (both tenants have rows)
CREATE TEMP TABLE rep_out AS
SELECT f, tenant_guard.report(f, org_a => :'org_a', org_b => :'org_b') AS t
FROM unnest(ARRAY['sarif', 'junit', 'markdown', 'html']) f;
CREATE TEMP TABLE rep_grid AS SELECT * FROM tenant_guard.attack_grid('regress_rep_app', :'org_a', :'org_b', true);
SELECT f, length(t) > 1000 AS long_enough FROM rep_out ORDER BY f;

-- nothing secret in any format: not the secret, the plaintext behind the
-- ciphertext, a row value, the support token or its hash, a wrapped key or
-- the master key's id
CREATE TEMP TABLE rep_secret AS
SELECT 'secret' AS what, 'SECRET-WEBHOOK-VALUE' AS s
UNION ALL SELECT 'plaintext', 'SECRET-API-KEY'
UNION ALL SELECT 'row value', 'ROW-DATA-SENTINEL'
UNION ALL SELECT 'row value', 'sentinel-b@example.com'
UNION ALL SELECT 'support token', :'support_token'
UNION ALL SELECT 'token hash', encode(token_hash, 'hex') FROM tenant_guard.support_grants
UNION ALL SELECT 'wrapped key', encode(wrapped_key, 'hex') FROM tenant_guard.tenant_keys WHERE wrapped_key IS NOT NULL
UNION ALL SELECT 'kek id', encode(kek_id, 'hex') FROM tenant_guard.tenant_keys WHERE kek_id IS NOT NULL
UNION ALL SELECT 'kek id', encode(kek_id, 'base64') FROM tenant_guard.tenant_keys WHERE kek_id IS NOT NULL
UNION ALL SELECT 'ciphertext', encode(api_key, 'hex') FROM rep.accounts
UNION ALL SELECT 'ciphertext', encode(api_key, 'base64') FROM rep.accounts;
SELECT what, count(*) AS values_checked FROM rep_secret GROUP BY what ORDER BY what;
SELECT o.f, s.what FROM rep_out o JOIN rep_secret s ON strpos(lower(o.t), lower(s.s)) > 0;

-- SARIF: every lint() finding and every non-blocked attack is a result with
-- its rule; every rule has the documented help and ruleIndex points at it
CREATE TEMP TABLE sarif AS SELECT t::jsonb AS j FROM rep_out WHERE f = 'sarif';
SELECT j ->> 'version' AS version, j ->> '$schema' AS schema,
       j #>> '{runs,0,tool,driver,name}' AS tool FROM sarif;
SELECT (SELECT count(*) FROM tenant_guard.lint_rules()) + 2
       + (SELECT count(DISTINCT vector) FROM rep_grid WHERE outcome <> 'blocked')
       = jsonb_array_length(j #> '{runs,0,tool,driver,rules}') AS every_rule FROM sarif;
SELECT r ->> 'id' AS rule_without_documented_help FROM sarif, jsonb_array_elements(j #> '{runs,0,tool,driver,rules}') r
WHERE r -> 'help' ->> 'text' IS NULL OR r -> 'help' ->> 'text' = r -> 'shortDescription' ->> 'text';
SELECT count(*) AS bad_rule_index FROM sarif, jsonb_array_elements(j #> '{runs,0,results}') x
WHERE j #>> ARRAY['runs', '0', 'tool', 'driver', 'rules', x ->> 'ruleIndex', 'id'] IS DISTINCT FROM x ->> 'ruleId';
(SELECT code, object, CASE severity WHEN 'info' THEN 'note' ELSE severity END FROM tenant_guard.lint()
 UNION ALL SELECT 'attack_grid/' || vector, tbl::text, CASE outcome WHEN 'leak' THEN 'error' ELSE 'note' END
 FROM rep_grid WHERE outcome <> 'blocked')
EXCEPT ALL
SELECT x ->> 'ruleId', coalesce(x #>> '{properties,object}', x #>> '{locations,0,logicalLocations,0,fullyQualifiedName}'),
       x ->> 'level'
FROM sarif, jsonb_array_elements(j #> '{runs,0,results}') x;
SELECT count(*) AS results FROM sarif, jsonb_array_elements(j #> '{runs,0,results}') x;
-- the planted mistakes, as a code scanner shows them
SELECT x ->> 'ruleId' AS rule, x ->> 'level' AS level, x #>> '{locations,0,physicalLocation,artifactLocation,uri}' AS uri
FROM sarif, jsonb_array_elements(j #> '{runs,0,results}') x
WHERE x #>> '{locations,0,logicalLocations,0,fullyQualifiedName}' LIKE '%script%' ORDER BY 1, 3;

-- JUnit: well-formed XML; one test case per lint rule and object and per
-- vector and table; failures are exactly the errors and leaks
CREATE TEMP TABLE junit AS SELECT t::xml AS x FROM rep_out WHERE f = 'junit';
SELECT (xpath('count(//testcase)', x))[1]::text::int = (xpath('/testsuites/@tests', x))[1]::text::int AS tests_add_up,
       (xpath('count(//failure)', x))[1]::text::int = (xpath('/testsuites/@failures', x))[1]::text::int AS failures_add_up,
       (xpath('count(//skipped)', x))[1]::text::int = (xpath('/testsuites/@skipped', x))[1]::text::int AS skipped_add_up,
       (xpath('count(//failure)', x))[1]::text::int
         = (SELECT count(*) FROM tenant_guard.lint() WHERE severity = 'error')
           + (SELECT count(*) FROM rep_grid WHERE outcome = 'leak') AS failures_are_errors_and_leaks,
       (xpath('count(//testsuite[@name="attack_grid.regress_rep_app"]/testcase)', x))[1]::text::int
         = (SELECT count(*) FROM rep_grid) AS one_case_per_attack
FROM junit;
SELECT unnest(xpath('//testsuite/@name', x))::text AS suite FROM junit;
CREATE TEMP TABLE junit_case AS
SELECT c.* FROM junit, XMLTABLE('//testcase' PASSING x COLUMNS name text PATH '@name', classname text PATH '@classname',
                                failures int PATH 'count(failure)') c;
SELECT l.code || ' ' || l.object AS lint_finding_without_case FROM tenant_guard.lint() l
EXCEPT ALL SELECT name FROM junit_case WHERE classname LIKE 'lint.%';
SELECT name, failures FROM junit_case WHERE classname LIKE 'attack\_grid.%' AND name LIKE '%oracle%script%' ORDER BY 1;

-- Markdown: the heading and the summary; every special character escaped
CREATE TEMP TABLE md AS SELECT t FROM rep_out WHERE f = 'markdown';
SELECT split_part(t, E'\n', 1) AS heading FROM md;
SELECT l AS line FROM md, regexp_split_to_table(t, E'\n') l WHERE l LIKE '| verify() %' OR l LIKE '| check%';
SELECT count(*) AS audit_line_as_verified FROM md, regexp_split_to_table(t, E'\n') l, tenant_guard.verify_audit() v
WHERE l = format('| verify_audit() | ok (%s records, %s seals) |', v.records, v.seals) AND v.ok;
SELECT strpos(l, 'rep."&lt;script&gt;alert\(''x''\)&lt;/script&gt;"') > 0 AS escaped, strpos(l, '<script') > 0 AS raw_script
FROM md, regexp_split_to_table(t, E'\n') l WHERE strpos(l, 'unique\_oracle') > 0 AND strpos(l, 'script') > 0;
SELECT count(*) AS raw_angle_brackets FROM md, regexp_split_to_table(t, E'\n') l
WHERE l ~ '[<>]' AND l <> '</details>' AND l !~ '^<details><summary>[^<>]*</summary>$';

-- a comment has a size limit: the folded rows stop at 40 of each kind
SELECT count(*) FILTER (WHERE l LIKE '| warning | TG005 |%') AS warning_rows,
       string_agg(l, '') FILTER (WHERE l LIKE '%more: see%') AS cut
FROM regexp_split_to_table(tenant_guard._report_markdown(jsonb_build_object(
         'lint', (SELECT jsonb_agg(jsonb_build_object('severity', 'warning', 'code', 'TG005', 'object', 't' || i,
                                                      'message', 'm', 'hint', 'h') ORDER BY i)
                  FROM generate_series(1, 45) i),
         'grid', jsonb_build_object('state', 'run', 'rows', '[]'::jsonb), 'verify', '[]'::jsonb,
         'audit', '{"verify": {"ok": true, "records": 0, "seals": 0}}'::jsonb)), E'\n') l;

-- HTML: a document (the doctype, then XML-serialized HTML), no script and no
-- external reference anywhere, a Content-Security-Policy; the hostile table
-- name is text in each section
CREATE TEMP TABLE html AS SELECT t, substr(t, length(E'<!DOCTYPE html>\n') + 1)::xml AS x FROM rep_out WHERE f = 'html';
SELECT left(t, 15) AS doctype, (xpath('count(//script)', x))[1]::text AS scripts,
       (xpath('count(//*[@src or @href or @action])', x))[1]::text AS references,
       (xpath('count(//@*[starts-with(name(), "on")])', x))[1]::text AS handlers,
       (xpath('//meta[@http-equiv="Content-Security-Policy"]/@content', x))[1]::text AS csp,
       (xpath('/html/head/title/text()', x))[1]::text AS title
FROM html;
SELECT (xpath('//h2/text()', x))::text[] AS sections FROM html;
SELECT count(*) AS hostile_name_cells
FROM html, unnest(xpath('//td[contains(text(), "<script>alert(''x'')</script>")]', x)) c;
SELECT (xpath('//div[@id="sum-errors"]/b/text()', x))[1]::text::int
         = (SELECT count(*) FROM tenant_guard.lint() WHERE severity = 'error') AS error_card,
       (xpath('//div[@id="sum-leaks"]/b/text()', x))[1]::text::int
         = (SELECT count(*) FROM rep_grid WHERE outcome = 'leak') AS leak_card,
       (xpath('//p[@id="audit-verify"]/@class', x))[1]::text AS audit_chain
FROM html;
-- the access matrix: member is scoped on three commands, viewer reads
SELECT string_agg(coalesce((xpath('string(.)', c))[1]::text, ''), ' | ' ORDER BY n) AS matrix_row
FROM html, unnest(xpath('//h2[@id="access"]/following-sibling::table[1]/tbody/tr[td[1]="rep.projects"]', x)) WITH ORDINALITY AS r(tr, rn),
     unnest(xpath('/tr/td', r.tr)) WITH ORDINALITY AS cc(c, n)
GROUP BY rn ORDER BY rn;
-- encryption: the column, and the key versions of tenant A (no key material)
SELECT array_to_string(xpath('//h2[@id="encryption"]/following-sibling::table[1]/tbody/tr[1]/td/text()', x)::text[], ' ')
         AS encrypted_column,
       (xpath('count(//h2[@id="encryption"]/following-sibling::table[2]/tbody/tr)', x))[1]::text AS tenants_with_keys
FROM html;
-- the support grant is listed with its (escaped) reason, never its token
SELECT (xpath('//h2[@id="support"]/following-sibling::table[1]/tbody/tr/td[3]/text()', x))[1]::text AS reason,
       (xpath('//h2[@id="support"]/following-sibling::table[1]/tbody/tr/td[8]/text()', x))[1]::text AS status
FROM html;

-- the grid can be left out; the report then says so
SELECT tenant_guard.report('sarif', run_grid => false)::jsonb #>> '{runs,0,invocations,0,properties,attackGrid}'
       AS attack_grid;
-- a configuration finding (claims mode: the application role can forge its
-- context) is one result on the setting, not one per table
SET tenant_guard.context_source = 'claims';
SELECT x ->> 'ruleId' AS rule, x -> 'locations' -> 0 -> 'logicalLocations' -> 0 ->> 'kind' AS kind,
       x -> 'locations' -> 0 -> 'logicalLocations' -> 0 ->> 'fullyQualifiedName' AS object,
       x -> 'locations' -> 0 -> 'physicalLocation' -> 'artifactLocation' ->> 'uri' ~ '/tenant_guard\.context_source$' AS uri
FROM jsonb_array_elements(tenant_guard.report('sarif', org_a => :'org_a', org_b => :'org_b')::jsonb #> '{runs,0,results}') x
WHERE x ->> 'ruleId' LIKE 'attack\_grid/forged%' ORDER BY 1;
SET tenant_guard.context_source = 'signed';
-- formats are case-insensitive
SELECT tenant_guard.report(' SARIF ', run_grid => false)::jsonb ->> 'version' AS version;
-- the report changed nothing
SELECT count(*) AS projects FROM rep.projects;
SELECT count(*) AS support_grants FROM tenant_guard.support_grants;

-- bad calls
\set VERBOSITY sqlstate
SELECT tenant_guard.report(NULL);
SELECT tenant_guard.report('sarif', run_grid => NULL);
\set VERBOSITY default
SELECT tenant_guard.report('pdf');
SELECT tenant_guard.report('sarif', org_a => :'org_a');
SELECT tenant_guard.report('sarif', org_a => :'org_a', org_b => :'org_a');

-- who may call it: not PUBLIC, not the application role; a role granted
-- EXECUTE is still refused unless it is a superuser
SELECT p.oid::regprocedure AS executable_by_app_role FROM pg_proc p
WHERE p.pronamespace = 'tenant_guard'::regnamespace AND (p.proname = 'report' OR p.proname LIKE '\_report%')
  AND has_function_privilege('regress_rep_app', p.oid, 'EXECUTE');
SELECT p.proname, p.prosecdef AS security_definer, p.provolatile, p.proparallel FROM pg_proc p
WHERE p.pronamespace = 'tenant_guard'::regnamespace AND p.proname = 'report';
SET SESSION AUTHORIZATION regress_rep_app;
SELECT tenant_guard.report('sarif');
RESET SESSION AUTHORIZATION;
GRANT EXECUTE ON FUNCTION tenant_guard.report(text, timestamptz, uuid, uuid, boolean) TO regress_rep_dba;
SET SESSION AUTHORIZATION regress_rep_dba;
SELECT tenant_guard.report('html', run_grid => false);
RESET SESSION AUTHORIZATION;
REVOKE EXECUTE ON FUNCTION tenant_guard.report(text, timestamptz, uuid, uuid, boolean) FROM regress_rep_dba;

SET client_min_messages = warning;
SELECT tenant_guard.unregister_app_role('regress_rep_app');
DROP SCHEMA rep CASCADE;
DELETE FROM tenant_guard.support_grants;
DROP ROLE regress_rep_app;
DROP ROLE regress_rep_dba;
DROP ROLE regress_rep_owner;
