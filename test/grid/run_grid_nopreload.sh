#!/bin/bash
# The attack grid on a cluster WITHOUT tenant_guard in shared_preload_libraries,
# called in a fresh session (the library not loaded yet), the way a CI job
# calls it with plain psql. Proves:
#  1. the grid runs, and the TRUNCATE, EXPLAIN ANALYZE, WITH HOLD and LISTEN
#     attacks leak, with a detail saying the runtime guards are not active
#     without preloading;
#  2. the CI recipe `psql -v ON_ERROR_STOP=1 -c "SELECT assert_isolated(...)"`
#     exits non-zero with SQLSTATE TGA01, and the run left no row behind.
# Needs TG_TEST_DIR (fixtures) from scripts/test.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
. "$TG_TEST_DIR/tokens.env"

W=$(mktemp -d /tmp/tg_grid.XXXXXX)
chmod 755 "$W"
trap 'tg_stop_cluster "$W/pg"; rm -rf "$W"' EXIT
# the production setting: only verified tokens count (so the forging vectors are blocked)
tg_start_cluster "$W/pg" "tenant_guard.context_source = 'signed'" >/dev/null

fail() { echo "FAIL: $*"; tail -20 "$W/pg/server.log"; exit 1; }
q() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }

preloaded=$(q -c "SHOW shared_preload_libraries")
[ -z "$preloaded" ] || fail "the cluster preloads '$preloaded'"
q -q <<SQL
SET client_min_messages = warning;
CREATE EXTENSION tenant_guard;
CREATE ROLE regress_grid_app LOGIN;
SELECT tenant_guard.register_app_role('regress_grid_app');
CREATE TABLE public.docs (org_id uuid NOT NULL, id int NOT NULL, PRIMARY KEY (org_id, id));
INSERT INTO public.docs VALUES ('$ORG_A', 1), ('$ORG_B', 2);
SELECT tenant_guard.protect('public.docs');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON public.docs TO regress_grid_app;
-- what harden_app_role() does about the other sessions and the next client,
-- which needs no preloading
ALTER ROLE regress_grid_app SET track_activities = off;
REVOKE TEMPORARY ON DATABASE postgres FROM PUBLIC;
SQL

# 1. a fresh session: the library is loaded by the grid itself
out=$(q -F '|' -c "SELECT vector, outcome, detail FROM tenant_guard.attack_grid('regress_grid_app', '$ORG_A', '$ORG_B')
                   WHERE vector IN ('truncate', 'explain_analyze', 'hold_cursor', 'listen', 'read_other_tenant',
                                    'query_text', 'temp_object') ORDER BY 1")
for v in explain_analyze hold_cursor listen truncate; do
	grep -q "^$v|leak|.*not in shared_preload_libraries" <<<"$out" || fail "$v: $out"
done
for v in read_other_tenant query_text temp_object; do
	grep -q "^$v|blocked|" <<<"$out" || fail "$v: $out"
done
echo "ok: without preloading, TRUNCATE, EXPLAIN ANALYZE, WITH HOLD and LISTEN leak and the grid says why"

# 2. the CI recipe fails the job
set +e
err=$(psql -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
      -c "SELECT tenant_guard.assert_isolated('regress_grid_app', '$ORG_A', '$ORG_B')" 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "assert_isolated did not fail the psql call"
grep -q 'ERROR:  TGA01: tenant isolation is broken: 4 attack(s) by role regress_grid_app leaked' <<<"$err" \
    || fail "assert_isolated error: $err"
grep -q '^public.docs: explain_analyze, hold_cursor, listen, truncate$' <<<"$err" || fail "assert_isolated detail: $err"
echo "ok: psql -v ON_ERROR_STOP=1 exits $rc with TGA01 and the leaking vectors"
n=$(q -c "SELECT count(*) FROM public.docs")
[ "$n" = 2 ] || fail "the grid left $n rows in public.docs"
echo "ok: no row left behind"
echo "grid_nopreload: 3 checks passed"
