#!/bin/bash
# The test command (README): installs what is missing, builds, starts a
# throw-away cluster (server running as the postgres user, tenant_guard in
# shared_preload_libraries), runs every Catch2 test, every pg_regress file
# and the pgbouncer pooler test under ctest, stops the cluster, and ends with
# one line "tests: N passed, N failed". Exits non-zero on any failure.
#
# Usage: bash scripts/test.sh [--pg MAJOR] [ctest -R regex]
#   MAJOR (or TG_PG_MAJOR): the PostgreSQL major to build against and run,
#   default 15 (Debian 12's server); another major is built once by
#   scripts/pg.sh into its cache, and tenant_guard is installed into it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ "${1:-}" = --pg ]; then export TG_PG_MAJOR=${2:?--pg needs a major}; shift 2; fi
. scripts/lib.sh

export LANG=C.UTF-8
tg_install_deps
tg_select_pg
tg_log "building against PostgreSQL $("$PG_CONFIG" --version | awk '{ print $2 }') ($PG_CONFIG)"
tg_build_install
cmake -S test -B build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPG_CONFIG="$PG_CONFIG" >/dev/null
cmake --build build/test -j2 >/dev/null

WORK=$(mktemp -d /tmp/tg_test.XXXXXX)
chmod 755 "$WORK"
cleanup() { tg_stop_cluster "$WORK/pg"; [ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT

tg_log "making key and token fixtures"
export TG_TEST_DIR=$WORK/fixtures TG_TOKENS_SQL=$WORK/fixtures/tokens.sql
mkdir -p "$TG_TEST_DIR"
/usr/bin/python3 test/fixtures/make_fixtures.py "$TG_TEST_DIR"
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$TG_TEST_DIR"

tg_log "starting a throw-away PostgreSQL cluster"
# %d in the log prefix: after a failure, the log lines of the failed test's
# own database are shown, not the tail of whatever ran last.
tg_start_cluster "$WORK/pg" "shared_preload_libraries = 'tenant_guard'" "log_line_prefix = '%m [%p] %q%u@%d '"

# The Citus harness (test/citus) needs Citus: installed in this PostgreSQL, or
# built once (into a cache outside the repository) from the source archive
# TG_CITUS_SOURCE names. Without either it is skipped, and said so here.
if [ -z "${1:-}" ] || grep -qE "$1" <<<"citus.citus"; then
	set +e
	citus_status=$(bash test/citus/citus_build.sh 2>&1)
	citus_rc=$?
	set -e
	case $citus_rc in
	0) tg_log "Citus harness: Citus is installed; test/citus runs" ;;
	3) tg_log "Citus harness SKIPPED: ${citus_status#skip: } (set TG_CITUS_SOURCE to a citus-X.Y.Z.tar.xz or its directory)" ;;
	*) tg_log "Citus harness: building Citus failed: $(tail -5 <<<"$citus_status")" ;;
	esac
fi

tg_log "running ctest"
set +e
ctest --test-dir build/test --output-on-failure -j2 ${1:+-R "$1"} 2>&1 | tee "$WORK/ctest.log"
rc=${PIPESTATUS[0]}
set -e
summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$WORK/ctest.log" | tail -1)
failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$summary")
if [ -z "$summary" ]; then failed=1; total=1; rc=1; fi
if [ "$rc" -ne 0 ] && [ -f "$WORK/pg/server.log" ]; then
	# pg_regress file X runs in database regress_X; harnesses log to their own clusters
	for t in $(sed -n 's/^[[:space:]]*[0-9]* - regress\.\([A-Za-z0-9_]*\) (.*/\1/p' "$WORK/ctest.log"); do
		echo "---- server log of regress.$t (database regress_$t, last 30 lines) ----"
		grep -F "@regress_$t " "$WORK/pg/server.log" | tail -30
	done
	echo "---- server log: crashes and fatal errors ----"
	grep -E 'PANIC|TRAP:|terminated by signal|was terminated|FATAL' "$WORK/pg/server.log" | tail -20 || true
fi
echo "tests: $((total - failed)) passed, $failed failed"
exit "$rc"
