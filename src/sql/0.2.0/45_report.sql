-----------------------------------------------------------------------------
-- tenant_guard.report(format): the results of verify(), lint(), attack_grid()
-- (for every registered application role) and verify_audit(), with the
-- registries, as SARIF 2.1.0, JUnit XML, Markdown, or one self-contained HTML
-- page for auditors. docs/reference.md#report.
--
-- _report_data() collects everything once, as jsonb; one renderer per format
-- turns it into text. JSON is built with the jsonb functions, XML and HTML
-- with the xml functions (xmlelement escapes every text and attribute), so no
-- name, message or detail can break out of its place. What is collected is
-- catalog metadata, findings and registry rows: never a secret, key material,
-- a token or its hash, or a row of a tenant table.
-- The rule and vector help text comes from the docs: _report_help(), written
-- by src/sql/report_help.awk at the end of the upgrade script.
-----------------------------------------------------------------------------

-- Text that XML 1.0 can carry: control characters other than tab, newline and
-- carriage return (a table name may hold them) become U+FFFD.
CREATE FUNCTION tenant_guard._report_xml_text(s text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.regexp_replace(coalesce(s, ''), E'[\\x01-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F\\uFFFE\\uFFFF]',
                                     E'\uFFFD', 'g')
$$;

-- Markdown-safe inline text: &, < and > as entities (no HTML reaches the
-- renderer), the characters Markdown gives a meaning to backslash-escaped,
-- line breaks as blanks (a table row is one line).
CREATE FUNCTION tenant_guard._report_md(s text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.regexp_replace(
               pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                   pg_catalog.regexp_replace(coalesce(s, ''), E'[\\r\\n\\t]+', ' ', 'g'),
                   '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
               E'([\\\\`*_{}\\[\\]()#|~!])', E'\\\\\\1', 'g')
$$;

-- A URI path segment: every byte but the unreserved characters of RFC 3986
-- percent-encoded (UTF-8).
CREATE FUNCTION tenant_guard._report_uri_segment(s text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(pg_catalog.string_agg(
               CASE WHEN b BETWEEN 48 AND 57 OR b BETWEEN 65 AND 90 OR b BETWEEN 97 AND 122 OR b IN (45, 46, 95, 126)
                    THEN pg_catalog.chr(b)
                    ELSE '%' || pg_catalog.upper(pg_catalog.lpad(pg_catalog.to_hex(b), 2, '0')) END, '' ORDER BY i), '')
    FROM (SELECT i, pg_catalog.get_byte(pg_catalog.convert_to(s, 'UTF8'), i) AS b
          FROM pg_catalog.generate_series(0, pg_catalog.octet_length(pg_catalog.convert_to(s, 'UTF8')) - 1) i) x
$$;

-----------------------------------------------------------------------------
-- Everything a report shows, as one jsonb document.
-----------------------------------------------------------------------------
CREATE FUNCTION tenant_guard._report_data(since timestamptz, org_a uuid, org_b uuid, run_grid boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d jsonb;
    grid jsonb := '[]';
    grid_state text;
    roles jsonb;
    r record;
    c record;
    enc jsonb := '[]';
    ver integer;
BEGIN
    -- the attack grid, for every registered application role, with the
    -- caller's tenants or two tenants of its own; seeded rows and every
    -- attack are rolled back by attack_grid() itself
    IF NOT run_grid THEN
        grid_state := 'not run: report() was called with run_grid => false';
    ELSIF NOT EXISTS (SELECT 1 FROM tenant_guard.app_roles) THEN
        grid_state := 'not run: no application role is registered (tenant_guard.register_app_role())';
    ELSE
        grid_state := 'run';
        FOR r IN SELECT ar.role FROM tenant_guard.app_roles ar ORDER BY ar.role::text LOOP
            grid := grid || coalesce((
                -- a configuration finding (tbl NULL) is reported on its setting
                SELECT jsonb_agg(jsonb_build_object('role', r.role::text,
                                                    'tbl', coalesce(g.tbl::text, substring(g.detail FROM '^configuration: ([a-z_.]+) ='),
                                                                    'configuration'),
                                                    'kind', CASE WHEN g.tbl IS NULL THEN 'setting' ELSE 'table' END,
                                                    'vector', g.vector, 'outcome', g.outcome, 'detail', g.detail)
                                 ORDER BY g.tbl::text, g.vector, g.detail)
                FROM tenant_guard.attack_grid(r.role, org_a, org_b, true) g), '[]');
        END LOOP;
    END IF;

    -- encrypted columns: bytea columns of protected tables whose first
    -- non-NULL value is a tenant_guard ciphertext (only its envelope header is
    -- read: key_version() needs no key and returns the version number)
    FOR c IN SELECT pt.tbl, a.attname
             FROM tenant_guard.protected_tables pt
             JOIN pg_attribute a ON a.attrelid = pt.tbl AND a.attnum > 0 AND NOT a.attisdropped
                                AND a.atttypid = 'bytea'::regtype
             WHERE pt.parent IS NULL
             ORDER BY pt.tbl::text, a.attnum LOOP
        BEGIN
            EXECUTE format('SELECT tenant_guard.key_version(%1$I) FROM %2$s WHERE %1$I IS NOT NULL LIMIT 1',
                           c.attname, c.tbl) INTO ver;
        EXCEPTION WHEN OTHERS THEN
            ver := NULL;    -- not a ciphertext (or not readable): not an encrypted column
        END;
        IF ver IS NOT NULL THEN
            enc := enc || jsonb_build_object('tbl', c.tbl::text, 'column', c.attname);
        END IF;
    END LOOP;

    SELECT coalesce(jsonb_agg(jsonb_build_object('role', ar.role::text, 'anonymous', ar.anonymous)
                              ORDER BY ar.role::text), '[]')
    INTO roles FROM tenant_guard.app_roles ar;

    d := jsonb_build_object(
        'database', current_database(),
        'generated_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'period_start', to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'server_version', current_setting('server_version'),
        'extension_version', (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'tenant_guard'),
        'settings', jsonb_build_object(
            'context_source', coalesce(current_setting('tenant_guard.context_source', true), 'claims'),
            'require_context', coalesce(current_setting('tenant_guard.require_context', true), 'off'),
            'runtime_guards', tenant_guard._runtime_guards(),
            'audit_retention', current_setting('tenant_guard.audit_retention', true)),
        'app_roles', roles,
        'tables', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'tbl', pt.tbl::text, 'tenant_column', pt.tenant_column, 'tenant_type', pt.tenant_type,
                'parent', pt.parent::text, 'rls', cl.relrowsecurity, 'force', cl.relforcerowsecurity,
                'policies', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                    'name', p.polname,
                                    'command', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                                                   WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                                    'permissive', p.polpermissive) ORDER BY p.polname), '[]')
                             FROM pg_policy p WHERE p.polrelid = pt.tbl),
                'guardrail', EXISTS (SELECT 1 FROM tenant_guard.guarded_schemas gs
                                     WHERE gs.schema_name = (SELECT n.nspname FROM pg_namespace n
                                                             WHERE n.oid = cl.relnamespace)),
                'audited', EXISTS (SELECT 1 FROM tenant_guard.audited_tables au WHERE au.tbl = pt.tbl))
                ORDER BY pt.tbl::text), '[]')
            FROM tenant_guard.protected_tables pt JOIN pg_class cl ON cl.oid = pt.tbl),
        -- in-tenant roles x commands of each protected table, as the catalog
        -- has them (describe_access()), with the scope of allow()'s rules
        'access', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'tbl', pt.tbl::text, 'role', da.role, 'command', da.command, 'policy', da.policy,
                'scope', CASE WHEN ru.scope_kind IS NOT NULL
                              THEN format('%s (column %s)', ru.scope_kind, ru.scope_column) END,
                'rls_off', da.condition = 'row level security is off')
                ORDER BY pt.tbl::text, da.role, da.command), '[]')
            FROM tenant_guard.protected_tables pt
            CROSS JOIN LATERAL tenant_guard.describe_access(pt.tbl) da
            LEFT JOIN tenant_guard.access_rules ru ON ru.tbl = pt.tbl AND ru.role = da.role AND ru.command = da.command
            WHERE pt.parent IS NULL),
        'lint', (SELECT coalesce(jsonb_agg(jsonb_build_object('severity', l.severity, 'code', l.code,
                                                               'object', l.object, 'message', l.message,
                                                               'hint', l.hint) ORDER BY l.n), '[]')
                 FROM tenant_guard.lint() WITH ORDINALITY AS l(severity, code, object, message, hint, n)),
        'rules', (SELECT coalesce(jsonb_agg(jsonb_build_object('code', lr.code, 'severity', lr.severity,
                                                                'area', lr.area, 'summary', lr.summary,
                                                                'help', h.help) ORDER BY lr.code), '[]')
                  FROM tenant_guard.lint_rules() lr
                  LEFT JOIN tenant_guard._report_help() h ON h.kind = 'rule' AND h.id = lr.code),
        'verify', (SELECT coalesce(jsonb_agg(jsonb_build_object('tbl', v.tbl::text, 'item', v.item,
                                                                 'expected', v.expected, 'actual', v.actual)
                                             ORDER BY v.tbl::text, v.item), '[]')
                   FROM tenant_guard.verify() v),
        'grid', jsonb_build_object(
            'state', grid_state,
            'tenants', CASE WHEN grid_state = 'run' THEN jsonb_build_object('a', org_a, 'b', org_b) END,
            'rows', grid,
            'vectors', (SELECT coalesce(jsonb_object_agg(h.id, h.help), '{}')
                        FROM tenant_guard._report_help() h WHERE h.kind = 'vector')),
        'encrypted_columns', enc,
        -- key versions per tenant: numbers, states and dates; never the
        -- wrapped key or the master key's id
        'keys', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'org_id', k.org_id, 'version', k.version, 'state', k.state,
                    'created_at', to_char(k.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                    'retired_at', to_char(k.retired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                    'shredded_at', to_char(k.shredded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                    ORDER BY k.org_id, k.version), '[]')
                 FROM tenant_guard.tenant_keys k),
        'audit', jsonb_build_object(
            'tables', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                           'tbl', au.tbl::text, 'exclude_columns', to_jsonb(au.exclude_columns),
                           'redact_columns', to_jsonb(au.redact_columns),
                           'enabled_at', to_char(au.enabled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                           ORDER BY au.tbl::text), '[]')
                       FROM tenant_guard.audited_tables au),
            'last_purge', (SELECT to_char(max(l.statement_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                           FROM tenant_guard.audit_log l WHERE l.action = 'tenant_guard.audit_purge'),
            'verify', (SELECT jsonb_build_object('ok', va.ok, 'records', va.records, 'seals', va.seals,
                                                 'broken_id', va.broken_id,
                                                 'broken_at', to_char(va.broken_at AT TIME ZONE 'UTC',
                                                                      'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                                 'problem', va.problem,
                                                 'verified_at', to_char(now() AT TIME ZONE 'UTC',
                                                                        'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                       FROM tenant_guard.verify_audit() va LIMIT 1)),
        -- support grants issued, or alive, in the period (no token hash)
        'support', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'org_id', g.org_id, 'agent', g.agent, 'reason', g.reason, 'issued_by', g.issued_by,
                        'issued_at', to_char(g.issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                        'redeemed_at', to_char(g.redeemed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                        'redeemed_by', g.redeemed_by,
                        'ended_at', to_char(coalesce(g.revoked_at, g.ended_at, g.expires_at) AT TIME ZONE 'UTC',
                                            'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                        'status', CASE WHEN g.revoked_at IS NOT NULL THEN 'revoked'
                                       WHEN g.ended_at IS NOT NULL THEN 'ended'
                                       WHEN g.redeemed_at IS NULL AND g.redeem_by <= statement_timestamp() THEN 'lapsed'
                                       WHEN g.redeemed_at IS NULL THEN 'issued'
                                       WHEN g.expires_at <= statement_timestamp() THEN 'expired'
                                       ELSE 'active' END)
                        ORDER BY g.issued_at, g.id), '[]')
                    FROM tenant_guard.support_grants g
                    WHERE g.issued_at >= since
                       OR coalesce(g.revoked_at, g.ended_at, g.expires_at, g.redeem_by) >= since));
    RETURN d;
END
$$;
COMMENT ON FUNCTION tenant_guard._report_data(timestamptz, uuid, uuid, boolean) IS
    'Internal: everything tenant_guard.report() shows, as one jsonb document.';

-----------------------------------------------------------------------------
-- SARIF 2.1.0 (OASIS): one run; rules carry the documented help; every
-- result has a logical location (the database object) and, for viewers that
-- need a file (GitHub code scanning), a path database/<db>/<object>.
-----------------------------------------------------------------------------
CREATE FUNCTION tenant_guard._report_sarif_level(severity text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE severity WHEN 'error' THEN 'error' WHEN 'leak' THEN 'error' WHEN 'warning' THEN 'warning'
                         ELSE 'note' END
$$;

CREATE FUNCTION tenant_guard._report_sarif_location(db text, kind text, object text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_build_object(
        'physicalLocation', pg_catalog.jsonb_build_object('artifactLocation', pg_catalog.jsonb_build_object(
            'uri', 'database/' || tenant_guard._report_uri_segment(db) || '/'
                   || tenant_guard._report_uri_segment(coalesce(object, db)))),
        'logicalLocations', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'fullyQualifiedName', coalesce(object, db), 'kind', kind)))
$$;

CREATE FUNCTION tenant_guard._report_sarif(d jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
WITH rule_list AS (
    SELECT 1 AS grp, r ->> 'code' AS id, r ->> 'summary' AS summary, coalesce(r ->> 'help', r ->> 'summary') AS help,
           r ->> 'severity' AS severity, r ->> 'area' AS area
    FROM pg_catalog.jsonb_array_elements(d -> 'rules') r
    UNION ALL
    SELECT 2, 'verify', 'a protected table differs from what protect() and allow() generated',
           'tenant_guard.verify() lists every difference between the policies, RLS, FORCE and tenant column '
           'protect() and allow() generated and the catalog now. Fix: call tenant_guard.protect() on the table '
           'again, which repairs every difference.', 'error', 'tenant table'
    UNION ALL
    SELECT 3, 'verify_audit', 'the audit hash chain is broken',
           'tenant_guard.verify_audit() recomputes every audit record and seal; a broken link means a record was '
           'edited, deleted or inserted outside tenant_guard. Investigate the record it names (docs/audit.md).',
           'error', 'audit'
    UNION ALL
    SELECT 4, 'attack_grid/' || v.vector, 'attack-grid vector ' || v.vector,
           coalesce(d -> 'grid' -> 'vectors' ->> v.vector, 'attack-grid vector ' || v.vector || ' (docs/attack-grid.md)'),
           'leak', 'attack grid'
    FROM (SELECT DISTINCT g ->> 'vector' AS vector FROM pg_catalog.jsonb_array_elements(d -> 'grid' -> 'rows') g
          WHERE g ->> 'outcome' <> 'blocked') v
),
rules AS (
    SELECT (pg_catalog.row_number() OVER (ORDER BY grp, id) - 1)::integer AS idx, * FROM rule_list
),
results AS (
    SELECT 1 AS grp, l.n AS ord, ru.idx, pg_catalog.jsonb_build_object(
        'ruleId', ru.id, 'ruleIndex', ru.idx, 'level', tenant_guard._report_sarif_level(l.f ->> 'severity'),
        'message', pg_catalog.jsonb_build_object('text',
            (l.f ->> 'message') || coalesce(E'\nFix: ' || (l.f ->> 'hint'), '')),
        'locations', pg_catalog.jsonb_build_array(
            tenant_guard._report_sarif_location(d ->> 'database', 'object', l.f ->> 'object')),
        'partialFingerprints', pg_catalog.jsonb_build_object('tenantGuardFinding/v1',
            pg_catalog.md5(ru.id || '|' || coalesce(l.f ->> 'object', ''))),
        'properties', pg_catalog.jsonb_build_object('severity', l.f ->> 'severity', 'object', l.f ->> 'object',
                                                    'fix', l.f ->> 'hint')) AS result
    FROM pg_catalog.jsonb_array_elements(d -> 'lint') WITH ORDINALITY AS l(f, n)
    JOIN rules ru ON ru.grp = 1 AND ru.id = l.f ->> 'code'
    UNION ALL
    SELECT 2, v.n, ru.idx, pg_catalog.jsonb_build_object(
        'ruleId', 'verify', 'ruleIndex', ru.idx, 'level', 'error',
        'message', pg_catalog.jsonb_build_object('text', pg_catalog.format('%s: %s differs: expected %s, actual %s',
            v.f ->> 'tbl', v.f ->> 'item', coalesce(v.f ->> 'expected', '(none)'), coalesce(v.f ->> 'actual', '(none)'))
            || E'\nFix: ' || pg_catalog.format('SELECT tenant_guard.protect(%L);', v.f ->> 'tbl')),
        'locations', pg_catalog.jsonb_build_array(
            tenant_guard._report_sarif_location(d ->> 'database', 'table', v.f ->> 'tbl')),
        'partialFingerprints', pg_catalog.jsonb_build_object('tenantGuardFinding/v1',
            pg_catalog.md5('verify|' || (v.f ->> 'tbl') || '|' || (v.f ->> 'item'))))
    FROM pg_catalog.jsonb_array_elements(d -> 'verify') WITH ORDINALITY AS v(f, n)
    JOIN rules ru ON ru.id = 'verify'
    UNION ALL
    SELECT 3, 1, ru.idx, pg_catalog.jsonb_build_object(
        'ruleId', 'verify_audit', 'ruleIndex', ru.idx, 'level', 'error',
        'message', pg_catalog.jsonb_build_object('text', pg_catalog.format(
            'the audit hash chain is broken at record %s: %s', d -> 'audit' -> 'verify' ->> 'broken_id',
            d -> 'audit' -> 'verify' ->> 'problem')),
        'locations', pg_catalog.jsonb_build_array(
            tenant_guard._report_sarif_location(d ->> 'database', 'table', 'tenant_guard.audit_log')),
        'partialFingerprints', pg_catalog.jsonb_build_object('tenantGuardFinding/v1', pg_catalog.md5('verify_audit')))
    FROM rules ru WHERE ru.id = 'verify_audit' AND (d -> 'audit' -> 'verify' ->> 'ok')::boolean IS FALSE
    UNION ALL
    SELECT 4, g.n, ru.idx, pg_catalog.jsonb_build_object(
        'ruleId', ru.id, 'ruleIndex', ru.idx,
        'level', tenant_guard._report_sarif_level(g.f ->> 'outcome'),
        'message', pg_catalog.jsonb_build_object('text', pg_catalog.format('%s: attack %s as role %s: %s',
            g.f ->> 'tbl', g.f ->> 'vector', g.f ->> 'role', g.f ->> 'outcome') || coalesce(': ' || (g.f ->> 'detail'), '')),
        'locations', pg_catalog.jsonb_build_array(
            tenant_guard._report_sarif_location(d ->> 'database', coalesce(g.f ->> 'kind', 'table'), g.f ->> 'tbl')),
        'partialFingerprints', pg_catalog.jsonb_build_object('tenantGuardFinding/v1',
            pg_catalog.md5(ru.id || '|' || (g.f ->> 'role') || '|' || (g.f ->> 'tbl') || '|' || coalesce(g.f ->> 'detail', ''))),
        'properties', pg_catalog.jsonb_build_object('outcome', g.f ->> 'outcome', 'role', g.f ->> 'role'))
    FROM pg_catalog.jsonb_array_elements(d -> 'grid' -> 'rows') WITH ORDINALITY AS g(f, n)
    JOIN rules ru ON ru.grp = 4 AND ru.id = 'attack_grid/' || (g.f ->> 'vector')
    WHERE g.f ->> 'outcome' <> 'blocked'
)
SELECT pg_catalog.jsonb_build_object(
    '$schema', 'https://json.schemastore.org/sarif-2.1.0.json',
    'version', '2.1.0',
    'runs', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
        'tool', pg_catalog.jsonb_build_object('driver', pg_catalog.jsonb_build_object(
            'name', 'tenant_guard',
            'version', d ->> 'extension_version',
            'semanticVersion', d ->> 'extension_version',
            'rules', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                'id', ru.id,
                'name', pg_catalog.replace(pg_catalog.initcap(pg_catalog.regexp_replace(
                            CASE WHEN ru.grp = 4 THEN pg_catalog.substr(ru.id, 13) ELSE ru.summary END,
                            '[^A-Za-z0-9]+', ' ', 'g')), ' ', ''),
                'shortDescription', pg_catalog.jsonb_build_object('text', ru.summary),
                'fullDescription', pg_catalog.jsonb_build_object('text', ru.help),
                'help', pg_catalog.jsonb_build_object('text', ru.help, 'markdown', ru.help),
                'defaultConfiguration', pg_catalog.jsonb_build_object('level',
                    tenant_guard._report_sarif_level(ru.severity)),
                'properties', pg_catalog.jsonb_build_object(
                    'tags', pg_catalog.jsonb_build_array('security', 'tenant-isolation', ru.area),
                    'security-severity', CASE ru.severity WHEN 'leak' THEN '9.0' WHEN 'error' THEN '8.0'
                                                          WHEN 'warning' THEN '5.0' ELSE '2.0' END))
                ORDER BY ru.idx), '[]') FROM rules ru))),
        'automationDetails', pg_catalog.jsonb_build_object('id', 'tenant_guard/' || (d ->> 'database') || '/'),
        'invocations', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
            'executionSuccessful', true,
            'endTimeUtc', d ->> 'generated_at',
            'properties', pg_catalog.jsonb_build_object('attackGrid', d -> 'grid' ->> 'state'))),
        'properties', pg_catalog.jsonb_build_object(
            'database', d ->> 'database', 'serverVersion', d ->> 'server_version',
            'gridBlocked', (SELECT pg_catalog.count(*) FROM pg_catalog.jsonb_array_elements(d -> 'grid' -> 'rows') g
                            WHERE g ->> 'outcome' = 'blocked')),
        'results', (SELECT coalesce(pg_catalog.jsonb_agg(rs.result ORDER BY rs.grp, rs.ord), '[]') FROM results rs))))
$$;
COMMENT ON FUNCTION tenant_guard._report_sarif(jsonb) IS 'Internal: report() as SARIF 2.1.0.';

-----------------------------------------------------------------------------
-- JUnit XML: a test suite each for lint(), verify(), verify_audit() and the
-- attack grid of each application role. One test case per lint rule and
-- object (a rule without finding passes once), per verify() difference, and
-- per grid vector and table. Errors and leaks fail; warnings and info pass
-- with their finding in system-out; skipped attacks are skipped.
-----------------------------------------------------------------------------
CREATE FUNCTION tenant_guard._report_junit_case(classname text, name text, outcome text, message text, body text)
RETURNS xml
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT XMLELEMENT(NAME testcase,
        XMLATTRIBUTES(tenant_guard._report_xml_text(classname) AS classname,
                      tenant_guard._report_xml_text(name) AS name),
        CASE WHEN outcome = 'failure' THEN
                 XMLELEMENT(NAME failure, XMLATTRIBUTES(tenant_guard._report_xml_text(message) AS message,
                                                       'error' AS type), tenant_guard._report_xml_text(body))
             WHEN outcome = 'skipped' THEN
                 XMLELEMENT(NAME skipped, XMLATTRIBUTES(tenant_guard._report_xml_text(message) AS message))
             WHEN body IS NOT NULL THEN
                 XMLELEMENT(NAME "system-out", tenant_guard._report_xml_text(body)) END)
$$;

CREATE FUNCTION tenant_guard._report_junit(d jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
WITH cases AS (
    -- lint: one case per finding, one passing case per rule without finding
    SELECT 'lint' AS suite, 1 AS grp, r.code AS k1, coalesce(f.n, 0) AS k2,
           'lint.' || r.code AS classname,
           r.code || ' ' || coalesce(f.f ->> 'object', '(no finding)') AS name,
           CASE WHEN f.f IS NULL THEN 'pass' WHEN f.f ->> 'severity' = 'error' THEN 'failure' ELSE 'pass' END AS outcome,
           (f.f ->> 'severity') || ': ' || (f.f ->> 'message') AS message,
           CASE WHEN f.f IS NOT NULL THEN pg_catalog.format(E'%s %s %s: %s\nFix: %s', f.f ->> 'severity', r.code,
               f.f ->> 'object', f.f ->> 'message', coalesce(f.f ->> 'hint', '')) END AS body
    FROM (SELECT x ->> 'code' AS code FROM pg_catalog.jsonb_array_elements(d -> 'rules') x) r
    LEFT JOIN pg_catalog.jsonb_array_elements(d -> 'lint') WITH ORDINALITY AS f(f, n) ON f.f ->> 'code' = r.code
    UNION ALL
    SELECT 'verify', 2, v.f ->> 'tbl', v.n, 'verify.' || (v.f ->> 'tbl'), (v.f ->> 'tbl') || ' ' || (v.f ->> 'item'),
           'failure', pg_catalog.format('%s differs from what protect() generated', v.f ->> 'item'),
           pg_catalog.format(E'expected: %s\nactual: %s\nFix: SELECT tenant_guard.protect(%L);',
                             v.f ->> 'expected', v.f ->> 'actual', v.f ->> 'tbl')
    FROM pg_catalog.jsonb_array_elements(d -> 'verify') WITH ORDINALITY AS v(f, n)
    UNION ALL
    SELECT 'verify', 2, '', 0, 'verify', 'every protected table is as generated', 'pass', NULL, NULL
    WHERE pg_catalog.jsonb_array_length(d -> 'verify') = 0
    UNION ALL
    SELECT 'verify_audit', 3, '', 0, 'verify_audit', 'the audit hash chain',
           CASE WHEN (d -> 'audit' -> 'verify' ->> 'ok')::boolean THEN 'pass' ELSE 'failure' END,
           pg_catalog.format('the audit hash chain is broken at record %s', d -> 'audit' -> 'verify' ->> 'broken_id'),
           pg_catalog.format('%s records, %s seals verified%s', d -> 'audit' -> 'verify' ->> 'records',
                             d -> 'audit' -> 'verify' ->> 'seals',
                             coalesce(': ' || (d -> 'audit' -> 'verify' ->> 'problem'), ''))
    UNION ALL
    SELECT 'attack_grid.' || (g.f ->> 'role'), 4, g.f ->> 'role', g.n,
           'attack_grid.' || (g.f ->> 'role') || '.' || (g.f ->> 'tbl'),
           (g.f ->> 'vector') || ' ' || (g.f ->> 'tbl'),
           CASE g.f ->> 'outcome' WHEN 'leak' THEN 'failure' WHEN 'skipped' THEN 'skipped' ELSE 'pass' END,
           (g.f ->> 'outcome') || ': ' || coalesce(g.f ->> 'detail', ''),
           (g.f ->> 'outcome') || ': ' || coalesce(g.f ->> 'detail', '')
    FROM pg_catalog.jsonb_array_elements(d -> 'grid' -> 'rows') WITH ORDINALITY AS g(f, n)
),
suites AS (
    SELECT c.suite, pg_catalog.min(c.grp) AS grp, pg_catalog.min(c.k1) AS k1, pg_catalog.count(*) AS tests,
           pg_catalog.count(*) FILTER (WHERE c.outcome = 'failure') AS failures,
           pg_catalog.count(*) FILTER (WHERE c.outcome = 'skipped') AS skipped,
           pg_catalog.xmlagg(tenant_guard._report_junit_case(c.classname, c.name, c.outcome, c.message, c.body)
                             ORDER BY c.k1, c.k2) AS body
    FROM cases c GROUP BY c.suite
)
SELECT '<?xml version="1.0" encoding="UTF-8"?>' || E'\n' || XMLELEMENT(NAME testsuites,
    XMLATTRIBUTES('tenant_guard ' || tenant_guard._report_xml_text(d ->> 'database') AS name,
                  (SELECT pg_catalog.sum(s.tests) FROM suites s) AS tests,
                  (SELECT pg_catalog.sum(s.failures) FROM suites s) AS failures,
                  0 AS errors,
                  (SELECT pg_catalog.sum(s.skipped) FROM suites s) AS skipped),
    (SELECT pg_catalog.xmlagg(XMLELEMENT(NAME testsuite,
                XMLATTRIBUTES(tenant_guard._report_xml_text(s.suite) AS name, s.tests AS tests,
                              s.failures AS failures, 0 AS errors, s.skipped AS skipped),
                s.body) ORDER BY s.grp, s.k1)
     FROM suites s))::text || E'\n'
$$;
COMMENT ON FUNCTION tenant_guard._report_junit(jsonb) IS 'Internal: report() as JUnit XML.';

-----------------------------------------------------------------------------
-- Markdown: a summary a pull-request comment can carry: every error and
-- leak; the warnings, info, residual and skipped rows folded, at most 40 of
-- each kind (a comment has a size limit; SARIF and HTML have them all).
-----------------------------------------------------------------------------
CREATE FUNCTION tenant_guard._report_markdown(d jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
WITH lint AS (
    SELECT f, n FROM pg_catalog.jsonb_array_elements(d -> 'lint') WITH ORDINALITY AS l(f, n)
), grid AS (
    SELECT f, n FROM pg_catalog.jsonb_array_elements(d -> 'grid' -> 'rows') WITH ORDINALITY AS g(f, n)
), counts AS (
    SELECT (SELECT pg_catalog.count(*) FROM lint WHERE f ->> 'severity' = 'error') AS errors,
           (SELECT pg_catalog.count(*) FROM lint WHERE f ->> 'severity' = 'warning') AS warnings,
           (SELECT pg_catalog.count(*) FROM lint WHERE f ->> 'severity' = 'info') AS infos,
           (SELECT pg_catalog.count(*) FROM grid WHERE f ->> 'outcome' = 'leak') AS leaks,
           (SELECT pg_catalog.count(*) FROM grid WHERE f ->> 'outcome' = 'residual') AS residual,
           (SELECT pg_catalog.count(*) FROM grid WHERE f ->> 'outcome' = 'skipped') AS skipped,
           (SELECT pg_catalog.count(*) FROM grid WHERE f ->> 'outcome' = 'blocked') AS blocked,
           pg_catalog.jsonb_array_length(d -> 'verify') AS drift,
           (d -> 'audit' -> 'verify' ->> 'ok')::boolean AS audit_ok
), lines AS (
    SELECT 1 AS part, 0::bigint AS n, pg_catalog.format(E'## %s tenant isolation: database %s\n',
        CASE WHEN c.errors + c.leaks + c.drift > 0 OR NOT c.audit_ok THEN '❌' ELSE '✅' END,
        tenant_guard._report_md(d ->> 'database')) AS line FROM counts c
    UNION ALL
    SELECT 2, 0, pg_catalog.format(E'tenant_guard %s on PostgreSQL %s, %s; context source `%s`, require_context %s\n',
        tenant_guard._report_md(d ->> 'extension_version'), tenant_guard._report_md(d ->> 'server_version'),
        tenant_guard._report_md(d ->> 'generated_at'), tenant_guard._report_md(d -> 'settings' ->> 'context_source'),
        tenant_guard._report_md(d -> 'settings' ->> 'require_context'))
    UNION ALL
    SELECT 3, 0, pg_catalog.concat_ws(E'\n',
        '| check | result |', '| --- | --- |',
        pg_catalog.format('| lint() | %s error(s), %s warning(s), %s info |', c.errors, c.warnings, c.infos),
        CASE WHEN d -> 'grid' ->> 'state' = 'run'
             THEN pg_catalog.format('| attack_grid() | %s leak(s), %s residual, %s skipped, %s blocked |',
                                    c.leaks, c.residual, c.skipped, c.blocked)
             ELSE '| attack_grid() | ' || tenant_guard._report_md(d -> 'grid' ->> 'state') || ' |' END,
        pg_catalog.format('| verify() | %s difference(s) |', c.drift),
        pg_catalog.format('| verify_audit() | %s (%s records, %s seals) |',
                          CASE WHEN c.audit_ok THEN 'ok' ELSE 'broken at record '
                               || (d -> 'audit' -> 'verify' ->> 'broken_id') END,
                          d -> 'audit' -> 'verify' ->> 'records', d -> 'audit' -> 'verify' ->> 'seals'),
        '') FROM counts c
    UNION ALL
    SELECT 4, 0, E'### Errors and leaks\n\n| | rule | object | finding | fix |\n| --- | --- | --- | --- | --- |'
    WHERE EXISTS (SELECT 1 FROM lint WHERE f ->> 'severity' = 'error') OR EXISTS (SELECT 1 FROM grid WHERE f ->> 'outcome' = 'leak')
       OR pg_catalog.jsonb_array_length(d -> 'verify') > 0
    UNION ALL
    SELECT 5, n, pg_catalog.format('| ❌ | %s | %s | %s | %s |', tenant_guard._report_md(f ->> 'code'),
        tenant_guard._report_md(f ->> 'object'), tenant_guard._report_md(f ->> 'message'),
        tenant_guard._report_md(f ->> 'hint'))
    FROM lint WHERE f ->> 'severity' = 'error'
    UNION ALL
    SELECT 6, v.n, pg_catalog.format('| ❌ | verify | %s | %s: expected %s, actual %s | %s |',
        tenant_guard._report_md(v.f ->> 'tbl'), tenant_guard._report_md(v.f ->> 'item'),
        tenant_guard._report_md(v.f ->> 'expected'), tenant_guard._report_md(v.f ->> 'actual'),
        tenant_guard._report_md(pg_catalog.format('SELECT tenant_guard.protect(%L);', v.f ->> 'tbl')))
    FROM pg_catalog.jsonb_array_elements(d -> 'verify') WITH ORDINALITY AS v(f, n)
    UNION ALL
    SELECT 7, n, pg_catalog.format('| 💥 | attack grid: %s | %s | leaks as role %s: %s | see docs/attack\-grid.md |',
        tenant_guard._report_md(f ->> 'vector'), tenant_guard._report_md(f ->> 'tbl'),
        tenant_guard._report_md(f ->> 'role'), tenant_guard._report_md(f ->> 'detail'))
    FROM grid WHERE f ->> 'outcome' = 'leak'
    UNION ALL
    SELECT 8, 0, E'\n<details><summary>Warnings and info ('
        || (SELECT pg_catalog.count(*) FROM lint WHERE f ->> 'severity' <> 'error')
        || E')</summary>\n\n| severity | rule | object | finding | fix |\n| --- | --- | --- | --- | --- |'
    WHERE EXISTS (SELECT 1 FROM lint WHERE f ->> 'severity' <> 'error')
    UNION ALL
    SELECT 9, n, pg_catalog.format('| %s | %s | %s | %s | %s |', tenant_guard._report_md(f ->> 'severity'),
        tenant_guard._report_md(f ->> 'code'), tenant_guard._report_md(f ->> 'object'),
        tenant_guard._report_md(f ->> 'message'), tenant_guard._report_md(f ->> 'hint'))
    FROM (SELECT f, n, pg_catalog.row_number() OVER (ORDER BY n) AS k FROM lint WHERE f ->> 'severity' <> 'error') w
    WHERE w.k <= 40
    UNION ALL
    SELECT 9, 1000000, pg_catalog.format('| | | | … and %s more: see the SARIF or HTML report | |', c - 40)
    FROM (SELECT pg_catalog.count(*) AS c FROM lint WHERE f ->> 'severity' <> 'error') x WHERE c > 40
    UNION ALL
    SELECT 10, 0, E'\n</details>' WHERE EXISTS (SELECT 1 FROM lint WHERE f ->> 'severity' <> 'error')
    UNION ALL
    SELECT 11, 0, E'\n<details><summary>Attack grid: residual and skipped ('
        || (SELECT pg_catalog.count(*) FROM grid WHERE f ->> 'outcome' IN ('residual', 'skipped'))
        || E')</summary>\n\n| outcome | vector | table | role | detail |\n| --- | --- | --- | --- | --- |'
    WHERE EXISTS (SELECT 1 FROM grid WHERE f ->> 'outcome' IN ('residual', 'skipped'))
    UNION ALL
    SELECT 12, n, pg_catalog.format('| %s | %s | %s | %s | %s |', tenant_guard._report_md(f ->> 'outcome'),
        tenant_guard._report_md(f ->> 'vector'), tenant_guard._report_md(f ->> 'tbl'),
        tenant_guard._report_md(f ->> 'role'), tenant_guard._report_md(f ->> 'detail'))
    FROM (SELECT f, n, pg_catalog.row_number() OVER (ORDER BY n) AS k FROM grid
          WHERE f ->> 'outcome' IN ('residual', 'skipped')) w
    WHERE w.k <= 40
    UNION ALL
    SELECT 12, 1000000, pg_catalog.format('| | | | | … and %s more: see the SARIF or HTML report |', c - 40)
    FROM (SELECT pg_catalog.count(*) AS c FROM grid WHERE f ->> 'outcome' IN ('residual', 'skipped')) x WHERE c > 40
    UNION ALL
    SELECT 13, 0, E'\n</details>' WHERE EXISTS (SELECT 1 FROM grid WHERE f ->> 'outcome' IN ('residual', 'skipped'))
)
SELECT pg_catalog.string_agg(line, E'\n' ORDER BY part, n) || E'\n' FROM lines
$$;
COMMENT ON FUNCTION tenant_guard._report_markdown(jsonb) IS 'Internal: report() as a Markdown summary.';

-----------------------------------------------------------------------------
-- HTML: one self-contained page for auditors. Built with xmlelement, so
-- every name, message and detail is escaped text; the page has no script, no
-- external asset, and a Content-Security-Policy that would refuse both.
-----------------------------------------------------------------------------
CREATE FUNCTION tenant_guard._report_cell(tag text, content text, cls text DEFAULT NULL, title text DEFAULT NULL)
RETURNS xml
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN tag = 'th'
                THEN XMLELEMENT(NAME th, XMLATTRIBUTES(cls AS class, tenant_guard._report_xml_text(title) AS title),
                                tenant_guard._report_xml_text(content))
                ELSE XMLELEMENT(NAME td, XMLATTRIBUTES(cls AS class, tenant_guard._report_xml_text(title) AS title),
                                tenant_guard._report_xml_text(content)) END
$$;

-- A table: header cells, then rows (each an xml fragment of cells), or a
-- paragraph saying there is nothing.
CREATE FUNCTION tenant_guard._report_table(headers text[], body xml, empty text)
RETURNS xml
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN body IS NULL THEN XMLELEMENT(NAME p, XMLATTRIBUTES('none' AS class), empty)
                ELSE XMLELEMENT(NAME "table",
                         XMLELEMENT(NAME thead, XMLELEMENT(NAME tr,
                             (SELECT pg_catalog.xmlagg(tenant_guard._report_cell('th', h) ORDER BY i)
                              FROM pg_catalog.unnest(headers) WITH ORDINALITY AS x(h, i)))),
                         XMLELEMENT(NAME tbody, body)) END
$$;

CREATE FUNCTION tenant_guard._report_html(d jsonb)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    css constant text :=
        'body{font-family:"DejaVu Sans",system-ui,sans-serif;margin:24px;color:#1b1f24;max-width:1280px}'
        'h1{font-size:26px;margin:0 0 4px 0}h2{font-size:20px;border-bottom:1px solid #d0d7de;padding-bottom:4px;'
        'margin-top:28px}h3{font-size:16px;margin:14px 0 4px 0}'
        'table{border-collapse:collapse;margin:6px 0 10px 0;font-size:13px}'
        'th,td{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top}'
        'th{background:#f3f4f6}.ok{background:#dafbe1}.bad{background:#ffd7d5;font-weight:bold}'
        '.warn{background:#fff1c2}.info{background:#ddf4ff}.none{color:#6e7781}.skip{background:#eaeef2;color:#57606a}'
        '.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}'
        '.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:130px}'
        '.card b{display:block;font-size:22px}.mono{font-family:"DejaVu Sans Mono",monospace}'
        'td.c{text-align:center;min-width:26px}th.v{writing-mode:vertical-rl;white-space:nowrap;font-weight:normal}'
        '.meta td{border:none;padding:1px 10px 1px 0}.legend span{padding:1px 6px;margin-right:6px;border:1px solid #d0d7de}';
    lint jsonb := d -> 'lint';
    rows jsonb := d -> 'grid' -> 'rows';
    n_err bigint; n_warn bigint; n_info bigint; n_leak bigint; n_res bigint; n_skip bigint; n_block bigint;
    audit_ok boolean := (d -> 'audit' -> 'verify' ->> 'ok')::boolean;
    body xml;
    sec xml;
    role_name text;
BEGIN
    SELECT count(*) FILTER (WHERE f ->> 'severity' = 'error'), count(*) FILTER (WHERE f ->> 'severity' = 'warning'),
           count(*) FILTER (WHERE f ->> 'severity' = 'info')
    INTO n_err, n_warn, n_info FROM jsonb_array_elements(lint) f;
    SELECT count(*) FILTER (WHERE f ->> 'outcome' = 'leak'), count(*) FILTER (WHERE f ->> 'outcome' = 'residual'),
           count(*) FILTER (WHERE f ->> 'outcome' = 'skipped'), count(*) FILTER (WHERE f ->> 'outcome' = 'blocked')
    INTO n_leak, n_res, n_skip, n_block FROM jsonb_array_elements(rows) f;

    -- heading, what was checked, and the summary cards
    body := XMLCONCAT(
        XMLELEMENT(NAME h1, 'Tenant isolation report'),
        XMLELEMENT(NAME "table", XMLATTRIBUTES('meta' AS class), XMLELEMENT(NAME tbody,
            (SELECT xmlagg(XMLELEMENT(NAME tr, tenant_guard._report_cell('td', k), tenant_guard._report_cell('td', v, 'mono'))
                           ORDER BY i)
             FROM (VALUES (1, 'Database', d ->> 'database'),
                          (2, 'Generated', d ->> 'generated_at'),
                          (3, 'PostgreSQL', d ->> 'server_version'),
                          (4, 'tenant_guard', d ->> 'extension_version'),
                          (5, 'Context source', d -> 'settings' ->> 'context_source'),
                          (6, 'require_context', d -> 'settings' ->> 'require_context'),
                          (7, 'Runtime guards', CASE WHEN (d -> 'settings' ->> 'runtime_guards')::boolean
                                                     THEN 'on (preloaded)' ELSE 'off (not preloaded)' END),
                          (8, 'Application roles', coalesce((SELECT string_agg((r ->> 'role')
                                   || CASE WHEN (r ->> 'anonymous')::boolean THEN ' (anonymous)' ELSE '' END, ', ')
                                   FROM jsonb_array_elements(d -> 'app_roles') r), 'none registered')),
                          (9, 'Period', coalesce(d ->> 'period_start', '') || ' to ' || (d ->> 'generated_at')))
                  AS m(i, k, v)))),
        XMLELEMENT(NAME div, XMLATTRIBUTES('cards' AS class),
            (SELECT xmlagg(XMLELEMENT(NAME div, XMLATTRIBUTES('card ' || cls AS class, id AS id),
                                      XMLELEMENT(NAME b, val), label) ORDER BY i)
             FROM (VALUES
                 (1, 'sum-tables', (SELECT count(*) FROM jsonb_array_elements(d -> 'tables'))::text, 'protected tables', 'info'),
                 (2, 'sum-errors', n_err::text, 'lint errors', CASE WHEN n_err > 0 THEN 'bad' ELSE 'ok' END),
                 (3, 'sum-warnings', n_warn::text, 'lint warnings', CASE WHEN n_warn > 0 THEN 'warn' ELSE 'ok' END),
                 (4, 'sum-leaks', CASE WHEN d -> 'grid' ->> 'state' = 'run' THEN n_leak::text ELSE 'not run' END,
                     'attack-grid leaks', CASE WHEN n_leak > 0 THEN 'bad' WHEN d -> 'grid' ->> 'state' = 'run' THEN 'ok'
                                               ELSE 'skip' END),
                 (5, 'sum-blocked', n_block::text, 'attacks blocked', 'info'),
                 (6, 'sum-drift', jsonb_array_length(d -> 'verify')::text, 'verify() differences',
                     CASE WHEN jsonb_array_length(d -> 'verify') > 0 THEN 'bad' ELSE 'ok' END),
                 (7, 'sum-audit', CASE WHEN audit_ok THEN 'intact' ELSE 'broken' END, 'audit hash chain',
                     CASE WHEN audit_ok THEN 'ok' ELSE 'bad' END))
                 AS c(i, id, val, label, cls))));

    -- protected tables
    sec := tenant_guard._report_table(
        ARRAY['table', 'tenant column', 'row-level security', 'policies', 'guards'],
        (SELECT xmlagg(XMLELEMENT(NAME tr,
            tenant_guard._report_cell('td', t ->> 'tbl', 'mono'),
            tenant_guard._report_cell('td', format('%s (%s)', t ->> 'tenant_column', t ->> 'tenant_type'), 'mono'),
            tenant_guard._report_cell('td', CASE WHEN (t ->> 'rls')::boolean AND (t ->> 'force')::boolean THEN 'enabled, forced'
                                                 WHEN (t ->> 'rls')::boolean THEN 'enabled, NOT forced'
                                                 ELSE 'OFF' END,
                                      CASE WHEN (t ->> 'rls')::boolean AND (t ->> 'force')::boolean THEN 'ok' ELSE 'bad' END),
            tenant_guard._report_cell('td', (SELECT string_agg(format('%s (%s, %s)', p ->> 'name', p ->> 'command',
                                                                      CASE WHEN (p ->> 'permissive')::boolean
                                                                           THEN 'permissive' ELSE 'restrictive' END),
                                                               '; ')
                                             FROM jsonb_array_elements(t -> 'policies') p), 'mono'),
            tenant_guard._report_cell('td', concat_ws(', ', 'DDL guards',
                                                      CASE WHEN t ->> 'parent' IS NOT NULL THEN 'protected through ' || (t ->> 'parent') END,
                                                      CASE WHEN (t ->> 'guardrail')::boolean THEN 'migration guardrail' END,
                                                      CASE WHEN (t ->> 'audited')::boolean THEN 'audited' END)))
            ORDER BY t ->> 'tbl')
         FROM jsonb_array_elements(d -> 'tables') t),
        'No table is protected by tenant_guard.protect().');
    body := XMLCONCAT(body, XMLELEMENT(NAME h2, XMLATTRIBUTES('tables' AS id), 'Protected tables'), sec);

    -- access matrix: (table, in-tenant role) x command
    sec := tenant_guard._report_table(
        ARRAY['table', 'in-tenant role', 'SELECT', 'INSERT', 'UPDATE', 'DELETE'],
        (SELECT xmlagg(XMLELEMENT(NAME tr,
                tenant_guard._report_cell('td', m.tbl, 'mono'),
                tenant_guard._report_cell('td', CASE WHEN m.role = '*' THEN 'any role (*)' ELSE m.role END, 'mono'),
                (SELECT xmlagg(
                     (SELECT CASE WHEN a IS NULL THEN tenant_guard._report_cell('td', '—', 'c none')
                                  WHEN (a ->> 'rls_off')::boolean
                                  THEN tenant_guard._report_cell('td', 'every row', 'c bad', 'row level security is off')
                                  WHEN a ->> 'scope' IS NOT NULL
                                  THEN tenant_guard._report_cell('td', '✓ scoped: ' || (a ->> 'scope'), 'c warn', a ->> 'policy')
                                  ELSE tenant_guard._report_cell('td', '✓', 'c ok', a ->> 'policy') END
                      FROM (SELECT (SELECT a FROM jsonb_array_elements(d -> 'access') a
                                    WHERE a ->> 'tbl' = m.tbl AND a ->> 'role' = m.role
                                      AND a ->> 'command' IN (cmd, 'ALL') LIMIT 1) AS a) x)
                     ORDER BY ci)
                 FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) WITH ORDINALITY AS cm(cmd, ci)))
            ORDER BY m.tbl, m.role)
         FROM (SELECT DISTINCT a ->> 'tbl' AS tbl, a ->> 'role' AS role FROM jsonb_array_elements(d -> 'access') a) m),
        'No access rule: no table is protected.');
    body := XMLCONCAT(body, XMLELEMENT(NAME h2, XMLATTRIBUTES('access' AS id), 'Access matrix'),
        XMLELEMENT(NAME p, 'What each in-tenant role (the role claim of the tenant context) may do on each protected '
                           'table, always inside its own tenant; "any role" means the policy does not test the role. '
                           'Hover a cell for the policy.'),
        sec);

    -- lint findings by severity
    body := XMLCONCAT(body, XMLELEMENT(NAME h2, XMLATTRIBUTES('lint' AS id), 'Lint findings'));
    FOR role_name IN SELECT unnest(ARRAY['error', 'warning', 'info']) LOOP
        sec := tenant_guard._report_table(ARRAY['rule', 'object', 'finding', 'fix'],
            (SELECT xmlagg(XMLELEMENT(NAME tr,
                        tenant_guard._report_cell('td', f ->> 'code', CASE role_name WHEN 'error' THEN 'bad'
                                                                      WHEN 'warning' THEN 'warn' ELSE 'info' END),
                        tenant_guard._report_cell('td', f ->> 'object', 'mono'),
                        tenant_guard._report_cell('td', f ->> 'message'),
                        tenant_guard._report_cell('td', f ->> 'hint', 'mono')) ORDER BY n)
             FROM jsonb_array_elements(lint) WITH ORDINALITY AS l(f, n) WHERE f ->> 'severity' = role_name),
            'None.');
        body := XMLCONCAT(body, XMLELEMENT(NAME h3, XMLATTRIBUTES('lint-' || role_name AS id),
            initcap(role_name) || CASE role_name WHEN 'info' THEN '' ELSE 's' END || ' ('
            || (SELECT count(*) FROM jsonb_array_elements(lint) f WHERE f ->> 'severity' = role_name) || ')'), sec);
    END LOOP;
    IF jsonb_array_length(d -> 'verify') > 0 THEN
        body := XMLCONCAT(body, XMLELEMENT(NAME h3, XMLATTRIBUTES('verify' AS id), 'Differences from what protect() generated'),
            tenant_guard._report_table(ARRAY['table', 'item', 'expected', 'actual'],
                (SELECT xmlagg(XMLELEMENT(NAME tr, tenant_guard._report_cell('td', v ->> 'tbl', 'mono bad'),
                                          tenant_guard._report_cell('td', v ->> 'item'),
                                          tenant_guard._report_cell('td', v ->> 'expected', 'mono'),
                                          tenant_guard._report_cell('td', v ->> 'actual', 'mono')))
                 FROM jsonb_array_elements(d -> 'verify') v), 'None.'));
    END IF;

    -- attack grid: per role, vectors x tables, the worst outcome of each
    -- cell (its details as the cell's title), then every leak, residual
    -- and skipped attack with its detail
    body := XMLCONCAT(body, XMLELEMENT(NAME h2, XMLATTRIBUTES('grid' AS id), 'Attack grid'));
    IF d -> 'grid' ->> 'state' <> 'run' THEN
        body := XMLCONCAT(body, XMLELEMENT(NAME p, XMLATTRIBUTES('none' AS class), tenant_guard._report_xml_text(d -> 'grid' ->> 'state')));
    ELSE
        body := XMLCONCAT(body,
            XMLELEMENT(NAME p, format('Cross-tenant attacks run as each application role in tenant A (%s) against '
                                      'tenant B (%s), every one rolled back.',
                                      d -> 'grid' -> 'tenants' ->> 'a', d -> 'grid' -> 'tenants' ->> 'b')),
            XMLELEMENT(NAME p, XMLATTRIBUTES('legend' AS class),
                XMLELEMENT(NAME span, XMLATTRIBUTES('ok' AS class), '✓ blocked'),
                XMLELEMENT(NAME span, XMLATTRIBUTES('bad' AS class), '✗ leak'),
                XMLELEMENT(NAME span, XMLATTRIBUTES('warn' AS class), '~ residual'),
                XMLELEMENT(NAME span, XMLATTRIBUTES('skip' AS class), '– skipped')));
        FOR role_name IN SELECT DISTINCT f ->> 'role' FROM jsonb_array_elements(rows) f ORDER BY 1 LOOP
            sec := (WITH cells AS (
                        SELECT f ->> 'vector' AS vector, f ->> 'tbl' AS tbl,
                               (array_agg(f ->> 'outcome' ORDER BY array_position(ARRAY['leak', 'residual', 'blocked', 'skipped'],
                                                                               f ->> 'outcome')))[1] AS outcome,
                               string_agg(f ->> 'outcome' || ': ' || coalesce(f ->> 'detail', ''), E'\n'
                                          ORDER BY f ->> 'detail') AS detail
                        FROM jsonb_array_elements(rows) f WHERE f ->> 'role' = role_name GROUP BY 1, 2),
                    tbls AS (SELECT DISTINCT tbl FROM cells),
                    vecs AS (SELECT DISTINCT vector FROM cells)
                    SELECT XMLELEMENT(NAME "table", XMLATTRIBUTES('grid-' || tenant_guard._report_xml_text(role_name) AS id),
                        XMLELEMENT(NAME thead, XMLELEMENT(NAME tr, tenant_guard._report_cell('th', 'vector'),
                            (SELECT xmlagg(tenant_guard._report_cell('th', CASE WHEN length(tbl) > 40 THEN left(tbl, 39) || '…'
                                                                      ELSE tbl END, 'v mono', tbl) ORDER BY tbl)
                             FROM tbls))),
                        XMLELEMENT(NAME tbody, (SELECT xmlagg(XMLELEMENT(NAME tr,
                            tenant_guard._report_cell('td', v.vector, 'mono', d -> 'grid' -> 'vectors' ->> v.vector),
                            (SELECT xmlagg(CASE c.outcome
                                     WHEN 'blocked' THEN tenant_guard._report_cell('td', '✓', 'c ok', c.detail)
                                     WHEN 'leak' THEN tenant_guard._report_cell('td', '✗', 'c bad', c.detail)
                                     WHEN 'residual' THEN tenant_guard._report_cell('td', '~', 'c warn', c.detail)
                                     WHEN 'skipped' THEN tenant_guard._report_cell('td', '–', 'c skip', c.detail)
                                     ELSE tenant_guard._report_cell('td', '', 'c none') END ORDER BY t.tbl)
                             FROM tbls t LEFT JOIN cells c ON c.tbl = t.tbl AND c.vector = v.vector))
                            ORDER BY v.vector) FROM vecs v))));
            body := XMLCONCAT(body, XMLELEMENT(NAME h3, 'Application role ' || tenant_guard._report_xml_text(role_name)), sec);
        END LOOP;
        body := XMLCONCAT(body, XMLELEMENT(NAME h3, 'Leaks, residual channels and skipped attacks'),
            tenant_guard._report_table(ARRAY['outcome', 'role', 'table', 'vector', 'detail'],
                (SELECT xmlagg(XMLELEMENT(NAME tr,
                     tenant_guard._report_cell('td', f ->> 'outcome', CASE f ->> 'outcome' WHEN 'leak' THEN 'bad'
                                                                      WHEN 'residual' THEN 'warn' ELSE 'skip' END),
                     tenant_guard._report_cell('td', f ->> 'role', 'mono'),
                     tenant_guard._report_cell('td', f ->> 'tbl', 'mono'),
                     tenant_guard._report_cell('td', f ->> 'vector', 'mono'),
                     tenant_guard._report_cell('td', f ->> 'detail'))
                     ORDER BY array_position(ARRAY['leak', 'residual', 'skipped'], f ->> 'outcome'), n)
                 FROM jsonb_array_elements(rows) WITH ORDINALITY AS g(f, n) WHERE f ->> 'outcome' <> 'blocked'),
                'Every attack was blocked.'));
    END IF;

    -- column encryption: columns and key versions per tenant (no key material)
    body := XMLCONCAT(body, XMLELEMENT(NAME h2, XMLATTRIBUTES('encryption' AS id), 'Column encryption'),
        XMLELEMENT(NAME h3, 'Encrypted columns'),
        tenant_guard._report_table(ARRAY['table', 'column'],
            (SELECT xmlagg(XMLELEMENT(NAME tr, tenant_guard._report_cell('td', e ->> 'tbl', 'mono'),
                                      tenant_guard._report_cell('td', e ->> 'column', 'mono')))
             FROM jsonb_array_elements(d -> 'encrypted_columns') e),
            'No column of a protected table holds tenant_guard ciphertexts.'),
        XMLELEMENT(NAME h3, 'Tenant key versions'),
        tenant_guard._report_table(ARRAY['tenant', 'active version', 'retired versions', 'shredded versions', 'first key', 'last rotation'],
            (SELECT xmlagg(XMLELEMENT(NAME tr,
                 tenant_guard._report_cell('td', k.org, 'mono'),
                 tenant_guard._report_cell('td', coalesce(k.active, 'none'), CASE WHEN k.active IS NULL THEN 'warn' END),
                 tenant_guard._report_cell('td', k.retired),
                 tenant_guard._report_cell('td', k.shredded),
                 tenant_guard._report_cell('td', k.first_at, 'mono'),
                 tenant_guard._report_cell('td', k.last_at, 'mono')) ORDER BY k.org)
             FROM (SELECT x ->> 'org_id' AS org,
                          string_agg(x ->> 'version', ', ' ORDER BY (x ->> 'version')::integer) FILTER (WHERE x ->> 'state' = 'active') AS active,
                          string_agg(x ->> 'version', ', ' ORDER BY (x ->> 'version')::integer) FILTER (WHERE x ->> 'state' = 'retired') AS retired,
                          string_agg(x ->> 'version', ', ' ORDER BY (x ->> 'version')::integer) FILTER (WHERE x ->> 'state' = 'shredded') AS shredded,
                          min(x ->> 'created_at') AS first_at, max(x ->> 'created_at') AS last_at
                   FROM jsonb_array_elements(d -> 'keys') x GROUP BY 1) k),
            'No tenant key exists.'));

    -- audit
    body := XMLCONCAT(body, XMLELEMENT(NAME h2, XMLATTRIBUTES('audit' AS id), 'Audit log'),
        XMLELEMENT(NAME p, XMLATTRIBUTES(CASE WHEN audit_ok THEN 'ok' ELSE 'bad' END AS class, 'audit-verify' AS id),
            tenant_guard._report_xml_text(format('verify_audit() at %s: %s; %s records and %s seals verified.%s',
                   d -> 'audit' -> 'verify' ->> 'verified_at',
                   CASE WHEN audit_ok THEN 'the hash chain is intact' ELSE 'the hash chain is BROKEN' END,
                   d -> 'audit' -> 'verify' ->> 'records', d -> 'audit' -> 'verify' ->> 'seals',
                   coalesce(format(' First break: record %s (%s): %s', d -> 'audit' -> 'verify' ->> 'broken_id',
                                   d -> 'audit' -> 'verify' ->> 'broken_at', d -> 'audit' -> 'verify' ->> 'problem'), '')))),
        XMLELEMENT(NAME p, format('Retention: %s. Last purge: %s.',
                                  coalesce(d -> 'settings' ->> 'audit_retention', 'default'),
                                  coalesce(d -> 'audit' ->> 'last_purge', 'never'))),
        tenant_guard._report_table(ARRAY['audited table', 'excluded columns', 'redacted columns', 'audited since'],
            (SELECT xmlagg(XMLELEMENT(NAME tr, tenant_guard._report_cell('td', a ->> 'tbl', 'mono'),
                 tenant_guard._report_cell('td', (SELECT string_agg(c, ', ') FROM jsonb_array_elements_text(a -> 'exclude_columns') c), 'mono'),
                 tenant_guard._report_cell('td', (SELECT string_agg(c, ', ') FROM jsonb_array_elements_text(a -> 'redact_columns') c), 'mono'),
                 tenant_guard._report_cell('td', a ->> 'enabled_at', 'mono')))
             FROM jsonb_array_elements(d -> 'audit' -> 'tables') a),
            'No table is audited (tenant_guard.enable_audit()).'));

    -- support sessions
    body := XMLCONCAT(body, XMLELEMENT(NAME h2, XMLATTRIBUTES('support' AS id), 'Support sessions in the period'),
        tenant_guard._report_table(ARRAY['tenant', 'agent', 'reason', 'issued by', 'issued', 'redeemed', 'ended', 'status'],
            (SELECT xmlagg(XMLELEMENT(NAME tr,
                 tenant_guard._report_cell('td', s ->> 'org_id', 'mono'), tenant_guard._report_cell('td', s ->> 'agent'),
                 tenant_guard._report_cell('td', s ->> 'reason'), tenant_guard._report_cell('td', s ->> 'issued_by'),
                 tenant_guard._report_cell('td', s ->> 'issued_at', 'mono'),
                 tenant_guard._report_cell('td', coalesce(s ->> 'redeemed_at', 'not redeemed'), 'mono'),
                 tenant_guard._report_cell('td', s ->> 'ended_at', 'mono'),
                 tenant_guard._report_cell('td', s ->> 'status', CASE s ->> 'status' WHEN 'active' THEN 'warn' END)))
             FROM jsonb_array_elements(d -> 'support') s),
            'No support grant was issued or used in the period.'));

    RETURN '<!DOCTYPE html>' || E'\n' || XMLELEMENT(NAME html, XMLATTRIBUTES('en' AS lang),
        XMLELEMENT(NAME head,
            XMLELEMENT(NAME meta, XMLATTRIBUTES('utf-8' AS charset)),
            XMLELEMENT(NAME meta, XMLATTRIBUTES('Content-Security-Policy' AS "http-equiv",
                       'default-src ''none''; style-src ''unsafe-inline''; base-uri ''none''; form-action ''none''' AS content)),
            XMLELEMENT(NAME title, 'Tenant isolation report: ' || tenant_guard._report_xml_text(d ->> 'database')),
            XMLELEMENT(NAME style, css)),
        XMLELEMENT(NAME body, body))::text || E'\n';
END
$$;
COMMENT ON FUNCTION tenant_guard._report_html(jsonb) IS 'Internal: report() as one self-contained HTML page for auditors.';

-----------------------------------------------------------------------------
-- report(): the public entry point.
-----------------------------------------------------------------------------
CREATE FUNCTION tenant_guard.report(format text, since timestamptz DEFAULT NULL, org_a uuid DEFAULT NULL,
                                    org_b uuid DEFAULT NULL, run_grid boolean DEFAULT true)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fmt text := lower(btrim(format));
    d jsonb;
BEGIN
    IF format IS NULL OR run_grid IS NULL THEN
        RAISE EXCEPTION 'format and run_grid must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Formats: sarif, junit, markdown, html.';
    END IF;
    IF fmt NOT IN ('sarif', 'junit', 'markdown', 'html') THEN
        RAISE EXCEPTION 'unknown report format "%"', format USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Formats: sarif, junit, markdown, html.';
    END IF;
    IF (org_a IS NULL) <> (org_b IS NULL) THEN
        RAISE EXCEPTION 'org_a and org_b go together' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass two tenants for the attack grid, or neither: the grid then uses two tenants of its own.';
    END IF;
    -- (is_superuser, as attack_grid() reads it)
    IF current_setting('is_superuser') <> 'on' THEN
        RAISE EXCEPTION 'tenant_guard.report() must be run by a superuser' USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'The report reads the catalog, the findings and the registries of every tenant, runs the attack '
                     'grid as the application roles, and verifies the audit log.';
    END IF;
    d := tenant_guard._report_data(
        coalesce(since, now() - interval '30 days'),
        coalesce(org_a, 'a0000000-0000-4000-8000-00000000000a'),
        coalesce(org_b, 'b0000000-0000-4000-8000-00000000000b'),
        run_grid);
    RETURN CASE fmt
        WHEN 'sarif' THEN jsonb_pretty(tenant_guard._report_sarif(d)) || E'\n'
        WHEN 'junit' THEN tenant_guard._report_junit(d)
        WHEN 'markdown' THEN tenant_guard._report_markdown(d)
        ELSE tenant_guard._report_html(d) END;
END
$$;
COMMENT ON FUNCTION tenant_guard.report(text, timestamptz, uuid, uuid, boolean) IS
    'The results of verify(), lint(), attack_grid() for every registered application role and verify_audit(), '
    'with the registries, as sarif, junit, markdown or html (a self-contained page for auditors).';

COMMENT ON FUNCTION tenant_guard._report_xml_text(text) IS 'Internal: text XML 1.0 can carry (report()).';
COMMENT ON FUNCTION tenant_guard._report_md(text) IS 'Internal: Markdown-escaped inline text (report()).';
COMMENT ON FUNCTION tenant_guard._report_uri_segment(text) IS 'Internal: a percent-encoded URI path segment (report()).';
COMMENT ON FUNCTION tenant_guard._report_sarif_level(text) IS 'Internal: the SARIF level of a severity or outcome.';
COMMENT ON FUNCTION tenant_guard._report_sarif_location(text, text, text) IS 'Internal: a SARIF location of a database object.';
COMMENT ON FUNCTION tenant_guard._report_junit_case(text, text, text, text, text) IS 'Internal: one JUnit test case.';
COMMENT ON FUNCTION tenant_guard._report_cell(text, text, text, text) IS 'Internal: one HTML table cell (report()).';
COMMENT ON FUNCTION tenant_guard._report_table(text[], xml, text) IS 'Internal: one HTML table (report()).';

REVOKE ALL ON FUNCTION tenant_guard.report(text, timestamptz, uuid, uuid, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_data(timestamptz, uuid, uuid, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_sarif(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_sarif_level(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_sarif_location(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_junit(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_junit_case(text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_markdown(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_html(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_cell(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_table(text[], xml, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_xml_text(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_md(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard._report_uri_segment(text) FROM PUBLIC;
