#!/bin/bash
# test/report/run_report.sh: tenant_guard.report() read by the tools its
# formats are for, written with the psql one-liners of docs/lint.md.
#
#  1. SARIF 2.1.0: Microsoft's SARIF Multitool (npm @microsoft/sarif-multitool,
#     installed once into a cache) validates it (its rules and a schema
#     check): no error; python3-jsonschema validates it against the SARIF
#     2.1.0 schema the Multitool package ships. Broken copies must fail both.
#  2. JUnit XML: parsed by Python's XML parser; the structure CI readers expect
#     (testsuites > testsuite > testcase > failure|skipped|system-out), counts
#     that add up, failures exactly the lint errors and the leaks.
#  3. Markdown: every table row has the cells of its header (no name breaks a
#     row), no raw HTML but the <details> blocks.
#  4. HTML: rendered by headless Chromium (Debian's chromium) to a PNG: no
#     console message at all (a control page that logs and one that breaks the
#     Content-Security-Policy prove the check sees them), the rendered DOM has
#     no script, the table named <script>...</script> is text, every section is
#     there.
#  5. The CI gate of the docs (fail when the JUnit file has a failure) passes
#     on a clean schema and fails after a planted mistake.
#
# With --update-example it writes docs/report-example.html and .png (the
# example kept in the docs) instead of only checking.
# Runs under ctest from scripts/test.sh, which provides PGHOST, PGPORT, PGUSER
# and TG_TEST_DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
: "${PGHOST:?}" "${TG_TEST_DIR:?}"
. "$TG_TEST_DIR/tokens.env"
: "${ORG_A:?}" "${ORG_B:?}" "${HS_SECRET_FILE:?}" "${MASTER_KEY_FILE:?}"
UPDATE_EXAMPLE=${1:-}

MULTITOOL_VERSION=5.7.0
MULTITOOL_DIR=${TG_SARIF_CACHE:-${XDG_CACHE_HOME:-/var/cache}/tenant_guard/sarif-multitool}/$MULTITOOL_VERSION
DB=tg_report
APP=regress_report_app
OWNER=regress_report_owner
W=$(mktemp -d /tmp/tg_report.XXXXXX)
chmod 755 "$W"
cleanup() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "DROP ROLE IF EXISTS $APP" \
		-c "DROP ROLE IF EXISTS $OWNER" >/dev/null 2>&1 || true
	[ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

# ---- the schema: built as docs/protecting-a-schema.md recommends, with a
# table named like a script, an encrypted column, an audited table and a
# support grant
psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" \
	-c "DROP ROLE IF EXISTS $APP" -c "DROP ROLE IF EXISTS $OWNER" >/dev/null 2>&1
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION tenant_guard;
ALTER DATABASE $DB SET tenant_guard.context_source = 'signed';
SET tenant_guard.context_source = 'signed';
SET tenant_guard.master_key_file = '$MASTER_KEY_FILE';
CREATE ROLE $OWNER;
CREATE ROLE $APP LOGIN;
CREATE SCHEMA app AUTHORIZATION $OWNER;
GRANT USAGE ON SCHEMA app TO $APP;
SET ROLE $OWNER;
CREATE TABLE app.projects (org_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, name text NOT NULL,
                           venue text NOT NULL DEFAULT 'main', PRIMARY KEY (org_id, id));
CREATE TABLE app.invoices (org_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, project_id bigint NOT NULL,
                           amount numeric NOT NULL DEFAULT 0, card bytea,
                           PRIMARY KEY (org_id, id), FOREIGN KEY (org_id, project_id) REFERENCES app.projects (org_id, id));
CREATE TABLE app."<script>document.title='pwned';console.error('pwned')</script>"
    (org_id uuid NOT NULL, k text NOT NULL, PRIMARY KEY (org_id, k));
INSERT INTO app.projects (org_id, name) VALUES ('$ORG_A', 'a'), ('$ORG_B', 'b');
INSERT INTO app.invoices (org_id, project_id) VALUES ('$ORG_A', 1), ('$ORG_B', 2);
INSERT INTO app."<script>document.title='pwned';console.error('pwned')</script>" VALUES ('$ORG_A', 'a'), ('$ORG_B', 'b');
SELECT tenant_guard.protect_schema('app');
SELECT tenant_guard.allow('app.projects', 'member', '{SELECT,INSERT,UPDATE}', 'venue', 'venue');
SELECT tenant_guard.allow('app.projects', 'admin', '{ALL}');
SELECT tenant_guard.allow('app.invoices', 'admin', '{ALL}');
SELECT tenant_guard.allow('app.invoices', 'viewer');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO $APP;
RESET ROLE;
SELECT tenant_guard.guard_schema('app');
SELECT tenant_guard.register_app_role('$APP');
SELECT count(*) FROM tenant_guard.harden_app_role('$APP');
SELECT tenant_guard.enable_audit('app.invoices', redact_columns => '{card}');
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_id = '$ORG_A';
UPDATE app.invoices SET card = tenant_guard.encrypt_text('4111-REPORT-CARD', 'app.invoices.card');
RESET tenant_guard.org_id;
SET tenant_guard.context_source = 'signed';
SELECT tenant_guard.rotate_key('$ORG_A');
SELECT length(tenant_guard.issue_support_grant('$ORG_B', 'agent@platform', 'ticket 4711: <b>export</b> fails',
                                               redeem_within => '1 hour')) > 0;
SQL

# ---- the one-liners of docs/lint.md, with the grid run on the two tenants
write_reports() {
	local grid="org_a => '$ORG_A', org_b => '$ORG_B'"
	q -c "SELECT tenant_guard.report('sarif', $grid)" >"$W/tenant_guard.sarif"
	q -c "SELECT tenant_guard.report('junit', $grid)" >"$W/tenant_guard-junit.xml"
	q -c "SELECT tenant_guard.report('markdown', $grid)" >"$W/tenant_guard.md"
	q -c "SELECT tenant_guard.report('html', $grid)" >"$W/tenant_guard.html"
}
start=$(date +%s%N)
write_reports
elapsed=$((($(date +%s%N) - start) / 1000000))
echo "ok: four reports written in ${elapsed} ms ($(wc -c <"$W/tenant_guard.sarif") bytes SARIF," \
     "$(wc -c <"$W/tenant_guard-junit.xml") JUnit, $(wc -c <"$W/tenant_guard.md") Markdown," \
     "$(wc -c <"$W/tenant_guard.html") HTML)"

# what the database says the reports must show
q -c "SELECT count(*) FROM tenant_guard.lint() WHERE severity = 'error'" >"$W/lint_errors"
q -c "SELECT count(*) FROM tenant_guard.attack_grid('$APP', '$ORG_A', '$ORG_B', true) WHERE outcome = 'leak'" >"$W/leaks"
q -c "SELECT count(*) FROM tenant_guard.lint()" >"$W/lint_all"
echo "ok: the schema has $(cat "$W/lint_errors") lint error(s), $(cat "$W/lint_all") finding(s), $(cat "$W/leaks") leak(s)"

# ---- 1. SARIF
if [ ! -x "$MULTITOOL_DIR/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool" ]; then
	mkdir -p "$MULTITOOL_DIR"
	(cd "$MULTITOOL_DIR" && npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
		"@microsoft/sarif-multitool@$MULTITOOL_VERSION" "@microsoft/sarif-multitool-linux@$MULTITOOL_VERSION" >/dev/null) \
		|| fail "could not install @microsoft/sarif-multitool $MULTITOOL_VERSION with npm"
	chmod u+x "$MULTITOOL_DIR/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"
fi
multitool() {
	DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 \
		"$MULTITOOL_DIR/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool" "$@"
}
# validate FILE OUT: the Multitool's own SARIF log of its findings; prints
# "errors warnings" (a result without level is a warning, SARIF 3.27.10)
validate() {
	rm -f "$2"
	multitool validate "$1" --output "$2" --quiet >"$2.log" 2>&1 || true
	[ -s "$2" ] || { cat "$2.log"; fail "the SARIF Multitool wrote no result for $1"; }
	/usr/bin/python3 - "$2" <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))
res = [r for run in log["runs"] for r in run.get("results", [])]
err = [r for r in res if r.get("level", "warning") == "error"]
for r in err[:10]:
    m = r["message"]
    print("  ", r["ruleId"], m.get("text") or m.get("arguments"), file=sys.stderr)
print(len(err), len(res) - len(err))
PY
}
read -r errs warns < <(validate "$W/tenant_guard.sarif" "$W/validation.sarif")
[ "$errs" = 0 ] || fail "SARIF Multitool: $errs error(s) in the report"
echo "ok: SARIF Multitool $MULTITOOL_VERSION validates the report: 0 errors ($warns warnings: no 'region' in a database location, no informationUri)"
# a configuration finding (context_source = claims: the application role can
# forge its context) is one result located on the setting, and validates too
PGOPTIONS='-c tenant_guard.context_source=claims' \
	q -c "SELECT tenant_guard.report('sarif', org_a => '$ORG_A', org_b => '$ORG_B')" >"$W/config.sarif"
read -r errs _ < <(validate "$W/config.sarif" "$W/validation_config.sarif")
[ "$errs" = 0 ] || fail "SARIF Multitool: $errs error(s) in the report with a configuration finding"
got=$(/usr/bin/python3 - "$W/config.sarif" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["runs"][0]["results"]
forged = [r for r in res if r["ruleId"] == "attack_grid/forged_claims"]
print(len(forged), " ".join(sorted({l["kind"] + ":" + l["fullyQualifiedName"]
                                    for r in forged for l in r["locations"][0]["logicalLocations"]})))
PY
)
[ "$got" = "1 setting:tenant_guard.context_source" ] || fail "configuration finding in SARIF: $got"
echo "ok: context_source = claims gives one forged_claims result, on the setting (validates: 0 errors)"
# the control: the same validation rejects a report that breaks the schema
/usr/bin/python3 - "$W/tenant_guard.sarif" "$W/broken.sarif" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
del d["version"]
d["runs"][0]["results"][0]["unknownProperty"] = 1
open(sys.argv[2], "w").write(json.dumps(d))
PY
read -r errs _ < <(validate "$W/broken.sarif" "$W/validation_broken.sarif")
[ "$errs" -gt 0 ] || fail "SARIF Multitool accepted a report that breaks the schema"
echo "ok: the control: a report without version and with an unknown property fails the Multitool ($errs errors)"
# the SARIF 2.1.0 JSON schema the Multitool package ships, applied by
# python3-jsonschema, which also checks enumerations and types (the
# Multitool's own schema check leaves a bad level or a numeric rule id alone)
/usr/bin/python3 - "$MULTITOOL_DIR/node_modules/@microsoft/sarif-multitool-linux/sarif-2.1.0.json" \
	"$W/tenant_guard.sarif" <<'PY' || fail "SARIF schema"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
assert "SARIF" in schema["title"] and "2.1.0" in schema["title"], schema["title"]
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
v = cls(schema)
report = json.load(open(sys.argv[2]))
errs = list(v.iter_errors(report))
for e in errs[:10]:
    print("  ", list(e.absolute_path), e.message[:200], file=sys.stderr)
assert not errs, "%d schema errors" % len(errs)
bad = json.loads(json.dumps(report))
bad["runs"][0]["results"][0]["level"] = "fatal"
bad["runs"][0]["tool"]["driver"]["rules"][0]["id"] = 42
assert len(list(v.iter_errors(bad))) == 2, "the schema check missed a bad level or rule id"
print("ok: the SARIF 2.1.0 schema (%s) validates the report; the control with a bad level and rule id fails"
      % cls.__name__)
PY
# what CI reads from it: the error-level results are the lint errors and leaks
/usr/bin/python3 - "$W/tenant_guard.sarif" "$(cat "$W/lint_errors")" "$(cat "$W/leaks")" "$(cat "$W/lint_all")" <<'PY' || fail "SARIF content"
import json, sys
d = json.load(open(sys.argv[1]))
run = d["runs"][0]
rules = run["tool"]["driver"]["rules"]
res = run["results"]
errors = [r for r in res if r["level"] == "error"]
lint = [r for r in res if not r["ruleId"].startswith("attack_grid/")]
assert len(errors) == int(sys.argv[2]) + int(sys.argv[3]), (len(errors), sys.argv[2:])
assert len(lint) == int(sys.argv[4]), (len(lint), sys.argv[4])
for r in res:
    assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
    assert r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
    assert "/" not in r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].split("/", 2)[2]
for rule in rules:
    assert rule["help"]["text"] and rule["shortDescription"]["text"] and rule["defaultConfiguration"]["level"]
print("ok: SARIF: %d rules with documented help, %d results, %d at level error" % (len(rules), len(res), len(errors)))
PY

# ---- 2. JUnit
/usr/bin/python3 - "$W/tenant_guard-junit.xml" "$(cat "$W/lint_errors")" "$(cat "$W/leaks")" <<'PY' || fail "JUnit"
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
total = fails = skips = 0
names = []
for s in root:
    assert s.tag == "testsuite", s.tag
    cases = list(s)
    assert all(c.tag == "testcase" for c in cases)
    f = sum(1 for c in cases for x in c if x.tag == "failure")
    k = sum(1 for c in cases for x in c if x.tag == "skipped")
    assert int(s.get("tests")) == len(cases) and int(s.get("failures")) == f and int(s.get("skipped")) == k, s.attrib
    assert s.get("errors") == "0"
    for c in cases:
        assert c.get("classname") and c.get("name")
        assert all(x.tag in ("failure", "skipped", "system-out") for x in c)
        assert len(c) <= 1
        for x in c:
            if x.tag == "failure":
                assert x.get("message") and x.text
    names.append(s.get("name"))
    total += len(cases); fails += f; skips += k
assert int(root.get("tests")) == total and int(root.get("failures")) == fails and int(root.get("skipped")) == skips
assert fails == int(sys.argv[2]) + int(sys.argv[3]), (fails, sys.argv[2:])
assert names[:3] == ["lint", "verify", "verify_audit"] and names[3].startswith("attack_grid."), names
print("ok: JUnit: %d suites, %d test cases, %d failures, %d skipped" % (len(names), total, fails, skips))
PY

# ---- 3. Markdown
/usr/bin/python3 - "$W/tenant_guard.md" <<'PY' || fail "Markdown"
import re, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
assert lines[0].startswith("## ") and "tenant isolation" in lines[0], lines[0]
def cells(l):
    return len(re.findall(r"(?<!\\)\|", l))
width = None
rows = 0
for l in lines:
    if l.startswith("|"):
        if width is None:
            width = cells(l)
        assert cells(l) == width, (width, l)
        rows += 1
    else:
        width = None
    if "<" in l or ">" in l:
        assert l == "</details>" or re.fullmatch(r"<details><summary>[^<>]*</summary>", l), l
print("ok: Markdown: %d table rows, each with its header's cells; no raw HTML" % rows)
PY

# ---- 4. HTML in headless Chromium
CHROMIUM=$(command -v chromium || true)
[ -n "$CHROMIUM" ] || fail "chromium is not installed (scripts/lib.sh installs Debian's chromium)"
# render FILE PNG: prints the rendered DOM; the console goes to FILE.console
render() {
	local home=$W/chromium-home
	mkdir -p "$home"
	HOME=$home timeout 120 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --no-first-run \
		--disable-background-networking --disable-extensions --user-data-dir="$home/profile" \
		--enable-logging=stderr --v=0 --window-size="${RENDER_SIZE:-1280,2400}" --hide-scrollbars \
		${2:+--screenshot="$2"} --dump-dom "file://$1" 2>"$1.stderr"
	# Chromium logs every console message of the page as "...:CONSOLE(...)"
	grep -E ':CONSOLE[:(0-9)]*\]|Content Security Policy|Uncaught' "$1.stderr" >"$1.console" || true
}
# the controls: a page that logs an error, and one whose inline script the
# report's own Content-Security-Policy refuses
printf '<!DOCTYPE html><html><head><title>c</title></head><body><script>console.error("control-one")</script></body></html>\n' \
	>"$W/control1.html"
sed 's|<body>|<body><script>console.log("control-two")</script>|' "$W/tenant_guard.html" >"$W/control2.html"
render "$W/control1.html" "" >/dev/null
grep -q 'control-one' "$W/control1.html.console" || { cat "$W/control1.html.stderr"; fail "the console check does not see console.error()"; }
render "$W/control2.html" "" >"$W/control2.dom"
grep -q 'Content Security Policy' "$W/control2.html.console" || { cat "$W/control2.html.stderr"; fail "a script in the report was not refused by its Content-Security-Policy"; }
echo "ok: the controls: console.error() and a script refused by the report's Content-Security-Policy are both seen"
render "$W/tenant_guard.html" "$W/tenant_guard.png" >"$W/tenant_guard.dom"
[ ! -s "$W/tenant_guard.html.console" ] || { cat "$W/tenant_guard.html.console"; fail "the report logged to the console"; }
/usr/bin/python3 - "$W/tenant_guard.dom" "$W/tenant_guard.png" <<'PY' || fail "HTML content"
import struct, sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.stack, self.text, self.title = [], [], {}, ""
        self.attrs = []
    def handle_starttag(self, tag, attrs):
        self.tags.append(tag); self.attrs.extend(attrs)
        if tag not in ("meta", "br", "img", "link", "input"):
            self.stack.append(tag)
    def handle_endtag(self, tag):
        while self.stack and self.stack.pop() != tag:
            pass
    def handle_data(self, data):
        cur = self.stack[-1] if self.stack else ""
        self.text.setdefault(cur, []).append(data)
        if cur == "title":
            self.title += data
dom = open(sys.argv[1], encoding="utf-8").read()
p = P(); p.feed(dom)
assert "script" not in p.tags, "a script element in the rendered DOM"
assert not [a for a, _ in p.attrs if a.startswith("on")], "an event handler attribute"
assert not [v for a, v in p.attrs if a in ("src", "href", "action")], "an external reference"
assert p.title.startswith("Tenant isolation report: tg_report"), p.title
h2 = [t.strip() for t in p.text.get("h2", [])]
assert h2 == ["Protected tables", "Access matrix", "Lint findings", "Attack grid", "Column encryption", "Audit log",
              "Support sessions in the period"], h2
td = "".join(p.text.get("td", [])) + "".join(p.text.get("th", []))
hostile = "<script>document.title='pwned';console.error('pwned')</script>"
assert hostile in td, "the table named like a script is not shown as text"
assert "app.invoices" in td and "card" in td and "ticket 4711: <b>export</b> fails" in td
assert "4111-REPORT-CARD" not in dom
png = open(sys.argv[2], "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n"
w, h = struct.unpack(">II", png[16:24])
assert (w, h) == (1280, 2400), (w, h)
assert len(png) > 50000, len(png)
print("ok: Chromium rendered the report (%dx%d PNG, %d bytes): no console message, no script, the hostile name is text"
      % (w, h, len(png)))
PY

# ---- 5. the CI gate of the docs
gate() { ! grep -q '<failure' "$W/tenant_guard-junit.xml"; }
if [ "$(cat "$W/lint_errors")" = 0 ] && [ "$(cat "$W/leaks")" = 0 ]; then
	gate || fail "the CI gate fails on a schema without error or leak"
	echo "ok: the CI gate passes on the clean schema"
fi
q >/dev/null <<SQL
SET client_min_messages = warning;
-- planted: a key unique across tenants, and a SECURITY DEFINER function with no pinned search_path
SET ROLE $OWNER;
CREATE UNIQUE INDEX projects_name_key ON app.projects (name);
CREATE FUNCTION app.project_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM app.projects';
RESET ROLE;
SQL
write_reports
gate && fail "the CI gate passes after planted mistakes"
grep -q 'classname="lint.TG019" name="TG019 app.project_count()"><failure' "$W/tenant_guard-junit.xml" \
	|| fail "TG019 is not a failure in the JUnit report"
grep -q 'name="unique_oracle app.projects"><failure' "$W/tenant_guard-junit.xml" \
	|| fail "the unique_oracle leak is not a failure in the JUnit report"
echo "ok: the CI gate fails after planted mistakes (TG019, unique_oracle)"

if [ "$UPDATE_EXAMPLE" = --update-example ]; then
	# the example kept in the docs: the page after the planted mistakes, with
	# the times of this run replaced by fixed ones
	/usr/bin/python3 - "$W/tenant_guard.html" "$ROOT/docs/report-example.html" <<'PY'
import datetime, re, sys
page = open(sys.argv[1], encoding="utf-8").read()
stamp = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"
fmt = "%Y-%m-%dT%H:%M:%SZ"
generated = datetime.datetime.strptime(re.search("Generated</td><td[^>]*>(" + stamp + ")", page).group(1), fmt)
shift = datetime.datetime(2026, 1, 15, 9, 30) - generated
page = re.sub(stamp, lambda m: (datetime.datetime.strptime(m.group(0), fmt) + shift).strftime(fmt), page)
open(sys.argv[2], "w", encoding="utf-8").write(page)
PY
	cp "$ROOT/docs/report-example.html" "$W/example.html"
	RENDER_SIZE=1200,1900 render "$W/example.html" "$W/example.png" >/dev/null
	cp "$W/example.png" "$ROOT/docs/report-example.png"
	echo "ok: wrote docs/report-example.html and docs/report-example.png"
fi
