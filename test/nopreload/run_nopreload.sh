#!/bin/bash
# The tenant context needs no shared_preload_libraries. This harness starts a
# second throw-away cluster WITHOUT preloading tenant_guard and proves:
#  1. CREATE EXTENSION, the claims source and set_context() work;
#  2. the placeholder attack fails: an application role that SETs
#     tenant_guard.* values in a fresh session BEFORE the library is loaded
#     (when they are still unchecked placeholders) cannot change the context
#     source, forge a signed context, or otherwise pick its tenant.
# Needs TG_TEST_DIR (fixtures) from scripts/test.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
. "$TG_TEST_DIR/tokens.env"

W=$(mktemp -d /tmp/tg_nopreload.XXXXXX)
chmod 755 "$W"
trap 'tg_stop_cluster "$W/pg"; rm -rf "$W"' EXIT
tg_start_cluster "$W/pg" "tenant_guard.jwt_secret_file = '$HS_SECRET_FILE'" "tenant_guard.jwt_audience = 'tenant-app'" \
	"tenant_guard.block_explain_analyze = off" >/dev/null

fail() { echo "FAIL: $*"; tail -20 "$W/pg/server.log"; exit 1; }
q() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }

preloaded=$(q -c "SHOW shared_preload_libraries")
[ -z "$preloaded" ] || fail "the cluster preloads '$preloaded'"
q -q -c "CREATE EXTENSION tenant_guard" -c "CREATE ROLE regress_nopreload_app LOGIN"

# 1. everything in the context works without preloading
got=$(q -c "SELECT set_config('request.jwt.claims', '{\"org_id\":\"$ORG_A\"}', false) IS NOT NULL" \
        -c "SELECT tenant_guard.current_user_org_id()" | tail -1)
[ "$got" = "$ORG_A" ] || fail "claims source without preload gave '$got'"
# (the token goes in as COPY data: set_context() refuses one written into the statement)
got=$(printf '%s\n' "$TOK_HS_B" | q -U regress_nopreload_app -c "BEGIN" \
        -c "COPY tenant_guard.context_input (token) FROM STDIN" \
        -c "SELECT tenant_guard.current_user_org_id()" -c "COMMIT" | sed -n 3p)
[ "$got" = "$ORG_B" ] || fail "set_context without preload gave '$got'"
echo "ok: claims and signed contexts work without shared_preload_libraries"

# 2. placeholders set before the library loads are not trusted
out=$(q -U regress_nopreload_app 2>&1 <<SQL
SET tenant_guard.context_source = 'setting';
SET tenant_guard.org_claim = 'user_metadata.org_id';
SET tenant_guard.signed_context = '{"org_id":"$ORG_B","exp":9999999999}';
SET tenant_guard.org_id = '$ORG_B';
SELECT set_config('request.jwt.claims', '{"user_metadata":{"org_id":"$ORG_B"}}', false) IS NOT NULL;
SELECT 'org=' || coalesce(tenant_guard.current_user_org_id()::text, 'NULL');
SELECT 'source=' || current_setting('tenant_guard.context_source');
SQL
)
grep -q '^org=NULL$' <<<"$out" || fail "placeholder attack changed the context: $out"
grep -q '^source=claims$' <<<"$out" || fail "placeholder attack changed the source: $out"
echo "ok: placeholders set by an application role before the library loaded were ignored"
# the server said why (one WARNING per refused placeholder)
n=$(grep -c 'permission denied to set parameter "tenant_guard' <<<"$out" || true)
[ "$n" -ge 3 ] || fail "expected permission warnings for the refused placeholders, got: $out"
echo "ok: $n refused placeholders reported"

# 3. the runtime guards need preloading, and lint() says so; nothing else breaks
q -q -c "CREATE TABLE t3 (org_id uuid NOT NULL, id int)" -c "SELECT tenant_guard.protect('t3')" \
      -c "GRANT SELECT, TRUNCATE ON t3 TO regress_nopreload_app" \
      -c "SELECT tenant_guard.register_app_role('regress_nopreload_app')"
[ "$(q -c "SELECT tenant_guard._runtime_guards()")" = "f" ] || fail "runtime guards claim to be installed"
lint=$(q -c "SELECT code || ' ' || object FROM tenant_guard.lint() WHERE code IN ('TG029', 'TG040')")
grep -qx 'TG040 shared_preload_libraries' <<<"$lint" || fail "lint did not report the missing preload: $lint"
grep -qx 'TG029 regress_nopreload_app' <<<"$lint" || fail "lint did not report the TRUNCATE grant: $lint"
out=$(q -U regress_nopreload_app -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM t3" 2>&1)
grep -q 'actual rows=' <<<"$out" || fail "EXPLAIN ANALYZE without preload: $out"
echo "ok: without preload the runtime guards are off and lint() reports TG040"
# a value from postgresql.conf survives the library reserving the tenant_guard prefix
got=$(q -c "SELECT tenant_guard._runtime_guards()" -c "SHOW tenant_guard.block_explain_analyze" | tail -1)
[ "$got" = "off" ] || fail "postgresql.conf's tenant_guard.block_explain_analyze = off was lost: '$got'"
echo "ok: settings from postgresql.conf are kept when the library loads"
echo "nopreload: 5 checks passed"
