#!/bin/bash
# PostgreSQL's own regression suite (src/test/regress, parallel_schedule)
# against tenant_guard's hooks: the ProcessUtility and ExecutorStart hooks,
# the DDL event triggers, the transaction callbacks and the audit triggers see
# every statement form the suite has. Three runs, each on a fresh throw-away
# cluster set up like the test cluster (scripts/lib.sh):
#
#   baseline  no tenant_guard at all: what this environment (server minor
#             release, locale, psql) makes of the suite
#   a         tenant_guard preloaded and installed in the suite's database
#   b         the same, plus a protected, audited tenant table with rows, a
#             registered application role working on it while the suite runs,
#             the suite's own schema public guarded by guard_schema(), and a
#             check at the end that tenant_guard's state survived the suite
#   c         the suite's files run by a registered application role that
#             owns the database (not a superuser), public guarded: the guards
#             see every statement form from an application role; and every
#             EXPLAIN and TRUNCATE of the suite replayed alone before and after
#             it (prepared statements, cursors, tables they name missing).
#             Much of the suite fails for lack of privileges, so only crashes
#             and tenant_guard's state afterwards are checked
#
# Passes a and b are compared with the baseline (the baseline's output is
# their expected output; the stock expected files stay as alternatives).
# The harness fails on a crash, an assertion failure, a PANIC or a lost
# connection in any run, and on any difference from the baseline that
# the major's test/pgsuite/accepted_differences_MAJOR.txt does not list (or
# one it lists that no longer occurs). docs/compatibility.md explains each accepted difference.
#
# The suite comes from Debian's source package of the selected server
# (TG_PG_MAJOR, scripts/lib.sh): for Debian 12's 15 the package of the
# installed version (its suite, -updates and -security), for a major that
# scripts/pg.sh built the package it was built from (the version in the
# prefix's .tg_built, from the suites in TG_PG_SUITES, default "trixie sid",
# as pg.sh). It is downloaded once with a private apt source list (the
# system's apt configuration is not touched) and cached in $TG_PGSUITE_CACHE,
# by default /var/cache/tenant_guard/pgsuite as root and
# ${XDG_CACHE_HOME:-~/.cache}/tenant_guard/pgsuite otherwise. The suite's C
# modules (regress, and autoinc and refint of contrib/spi) are built from it
# against the selected server.
#
# Each major has its own list of accepted differences,
# test/pgsuite/accepted_differences_MAJOR.txt: the suite differs between
# majors, and so do the lines tenant_guard changes in it.
#
# Needs the installed extension (bash scripts/test.sh installs it).
# TG_PGSUITE_KEEP=1 keeps the work directory (it is kept after a failure
# anyway); TG_PGSUITE_PASSES="a c" runs the baseline and passes a and c only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/lib.sh"
export LANG=C.UTF-8
unset PGDATABASE PGSERVICE PGOPTIONS
umask 022  # the server's user reads the suite and the C modules

PASSES=${TG_PGSUITE_PASSES:-a b c}
if [ -n "${TG_PGSUITE_CACHE:-}" ]; then
	CACHE=$TG_PGSUITE_CACHE
elif [ "$(id -u)" -eq 0 ]; then
	CACHE=/var/cache/tenant_guard/pgsuite
else
	CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/tenant_guard/pgsuite
fi

tg_select_pg
PG_VERSION_LINE=$(pg_config --version)                                     # PostgreSQL 15.20 (Debian 15.20-0+deb12u1)
PG_MAJOR=$(sed -nE 's/^PostgreSQL ([0-9]+)\..*/\1/p' <<<"$PG_VERSION_LINE")
PG_BUILT=$(pg_config --bindir)/../.tg_built                                # version=18.6-3 (scripts/pg.sh)
if [ -f "$PG_BUILT" ]; then
	PG_DEB_VERSION=$(sed -n 's/^version=//p' "$PG_BUILT")
	SOURCE_SUITES=${TG_PG_SUITES:-trixie sid}
else
	PG_DEB_VERSION=$(sed -nE 's/.*\(Debian ([^)]+)\).*/\1/p' <<<"$PG_VERSION_LINE")
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || { tg_log "cannot tell the Debian release from /etc/os-release"; exit 1; }
	SOURCE_SUITES="$codename $codename-updates $codename-security"
fi
[ -n "$PG_MAJOR" ] && [ -n "$PG_DEB_VERSION" ] || { tg_log "cannot read the server version from: $PG_VERSION_LINE"; exit 1; }
[ "$PG_MAJOR" = "$TG_PG_MAJOR" ] || { tg_log "pg_config is PostgreSQL $PG_MAJOR, not the selected $TG_PG_MAJOR"; exit 1; }
ACCEPTED=$HERE/accepted_differences_$PG_MAJOR.txt
SRC_PACKAGE=postgresql-$PG_MAJOR
SUITE_CACHE=$CACHE/$PG_DEB_VERSION

# ---------------------------------------------------------------------------
# The suite: downloaded, unpacked and its C module built once per installed
# server version.
# ---------------------------------------------------------------------------

apt_private() {
	local tool=$1; shift
	"$tool" -o Dir::Etc::sourcelist="$CACHE/apt/sources.list" -o Dir::Etc::sourceparts=- \
		-o Dir::State::Lists="$CACHE/apt/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
		-o Debug::NoLocking=1 "$@"
}
# (No apt locks: the private lists are guarded by the cache's own lock, and a
# system apt-get running meanwhile must not make the download fail.)

fetch_suite() {
	[ -f "$SUITE_CACHE/ready" ] && return 0
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	if [ -f "$SUITE_CACHE/ready" ]; then exec 9>&-; return 0; fi
	tg_log "fetching the regression suite of $SRC_PACKAGE $PG_DEB_VERSION (Debian source package; $SOURCE_SUITES)"
	mkdir -p "$CACHE/apt/lists/partial"
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg s
	for s in $SOURCE_SUITES; do
		case $s in
		*-security) echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian-security $s main" ;;
		*) echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian $s main" ;;
		esac
	done >"$CACHE/apt/sources.list"
	apt_private apt-get update -qq >/dev/null
	local tmp; tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
	# The installed version first; when the archive no longer (or does not
	# yet) has its source, the newest source of the same major version. The
	# passes are compared with a baseline run of the same suite on the same
	# server, so what changed between the two minor releases cancels out.
	local v got=""
	for v in "$PG_DEB_VERSION" $(apt_private apt-cache showsrc "$SRC_PACKAGE" 2>/dev/null \
			| sed -n 's/^Version: //p' | sort -uVr); do
		rm -rf "${tmp:?}"/*
		if (cd "$tmp" && apt_private apt-get source -qq --download-only "$SRC_PACKAGE=$v" >/dev/null 2>&1); then
			got=$v
			break
		fi
	done
	[ -n "$got" ] || { tg_log "no source of $SRC_PACKAGE could be downloaded"; rm -rf "$tmp"; return 1; }
	(cd "$tmp" && dpkg-source -x --no-check ./*.dsc src >/dev/null)
	rm -rf "$SUITE_CACHE"
	mkdir -p "$SUITE_CACHE/lib"
	local r=$tmp/src/src/test/regress
	cp -r "$r/sql" "$r/expected" "$r/data" "$r/parallel_schedule" "$SUITE_CACHE/"
	cp "$r/regress.c" "$tmp/src/contrib/spi/autoinc.c" "$tmp/src/contrib/spi/refint.c" "$SUITE_CACHE/lib/"
	echo "$got" >"$SUITE_CACHE/source-version"
	rm -rf "$tmp"
	# The suite's C modules (regress.c, and the two contrib/spi modules the
	# suite loads, which a server built by scripts/pg.sh does not install),
	# built against the selected server's headers.
	cat >"$SUITE_CACHE/lib/Makefile" <<-'EOF'
		MODULES = regress autoinc refint
		override with_llvm = no
		PG_CONFIG = pg_config
		PGXS := $(shell $(PG_CONFIG) --pgxs)
		include $(PGXS)
	EOF
	make -s -C "$SUITE_CACHE/lib" >/dev/null
	chmod -R a+rX "$SUITE_CACHE"
	touch "$SUITE_CACHE/ready"
	exec 9>&-
}

fetch_suite
SRC_VERSION=$(cat "$SUITE_CACHE/source-version")
tg_log "suite: $SRC_PACKAGE $SRC_VERSION; server: $PG_DEB_VERSION"
[ "$SRC_VERSION" = "$PG_DEB_VERSION" ] ||
	tg_log "the archive has no source of $PG_DEB_VERSION: running the $SRC_VERSION suite (compared with its own baseline run)"

FAILED=0
WORK=$(mktemp -d /tmp/tg_pgsuite.XXXXXX)
chmod 755 "$WORK"
cleanup() {
	local d; for d in "$WORK"/*/pg; do [ -d "$d" ] && tg_stop_cluster "$d"; done
	if [ -n "${TG_PGSUITE_KEEP:-}" ] || [ "$FAILED" -ne 0 ]; then tg_log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
# A major without its list yet (docs/development.md, "Adding a major") runs
# against an empty one, so that the work directory holds every difference to
# review, and fails.
ACCEPTED_MISSING=
if [ ! -f "$ACCEPTED" ]; then
	ACCEPTED_MISSING=$ACCEPTED
	ACCEPTED=$WORK/$(basename "$ACCEPTED")
	: >"$ACCEPTED"
fi

# The stock input: the suite's files, with the end-of-data markers the
# installed psql needs after failing in-line COPY commands
# (copy_terminators.py says why).
mkdir -p "$WORK/stock"
cp -r "$SUITE_CACHE/sql" "$SUITE_CACHE/expected" "$SUITE_CACHE/data" "$SUITE_CACHE/parallel_schedule" "$WORK/stock/"
/usr/bin/python3 "$HERE/copy_terminators.py" "$WORK/stock" >"$WORK/stock/copy_terminators.log"
tg_log "end-of-data markers added after $(grep -c . "$WORK/stock/copy_terminators.log" || true) failing COPY commands"

PG_REGRESS=$(dirname "$(pg_config --pgxs)")/../test/regress/pg_regress
fail() { echo "FAIL: $*"; FAILED=1; }

# regress_results DIR: one line "TEST ok|failed" per test pg_regress ran in
# the run in DIR. From 16 on pg_regress prints TAP ("ok 12 + name 80 ms",
# "not ok 13 - name 90 ms"); up to 15 it prints, and writes into
# out/regression.out, "test name ... ok", "     name ... FAILED" or
# "... failed (ignored)".
regress_results() {
	if grep -qE '^(not )?ok +[0-9]+ ' "$1/pg_regress.log"; then
		sed -nE 's/^(not )?ok +[0-9]+ +[-+] +([a-z0-9_.]+) .*/\2 \1/p' "$1/pg_regress.log" |
			sed -E 's/ not $/ failed/; s/ $/ ok/'
	else
		sed -nE 's/^ *(test +)?([a-z0-9_.]+) +\.\.\. (ok|FAILED|failed \(ignored\)).*/\2 \3/p' "$1/out/regression.out" |
			sed -E 's/ (FAILED|failed \(ignored\))$/ failed/'
	fi
}

# run_pass NAME INPUTDIR SCHEDULE PRELOAD(yes|no) SETUP CHECK [pg_regress options...]
# SETUP and CHECK: commands run before and after the suite while the cluster
# is up ("" for none).
run_pass() {
	local name=$1 input=$2 schedule=$3 preload=$4 setup=$5 check=$6; shift 6
	local dir=$WORK/$name
	mkdir -p "$dir/out"
	[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$dir/out"
	# The server inherits the environment: no connection settings of another
	# cluster (the subscription test's workers connect with the defaults).
	unset PGHOST PGPORT PGUSER
	if [ "$preload" = yes ]; then
		tg_start_cluster "$dir/pg" "shared_preload_libraries = 'tenant_guard'" "max_prepared_transactions = 10"
	else
		tg_start_cluster "$dir/pg" "max_prepared_transactions = 10"
	fi
	[ -z "$setup" ] || $setup
	local start=$SECONDS
	# As the server's user: COPY TO/FROM files and lo_import/lo_export run in
	# the server and use the output directory.
	set +e
	tg_as_server "$PG_REGRESS" --inputdir="$input" --outputdir="$dir/out" --bindir="$(pg_config --bindir)" \
		--dlpath="$SUITE_CACHE/lib" --max-concurrent-tests=20 --schedule="$schedule" "$@" >"$dir/pg_regress.log" 2>&1
	set -e
	local took=$((SECONDS - start))
	[ -z "$check" ] || $check
	tg_stop_cluster "$dir/pg"
	eval "TOOK_$name=$took"
	local ran; ran=$(regress_results "$dir" | grep -c . || true)
	local listed; listed=$(sed -nE 's/^(test|ignore): *//p' "$schedule" | tr ' ' '\n' | grep -c . || true)
	local ignored; ignored=$(sed -nE 's/^ignore: *//p' "$schedule" | tr ' ' '\n' | grep -c . || true)
	listed=$((listed - ignored))
	tg_log "$name: $ran tests in ${took}s"
	[ "$ran" -eq "$listed" ] || { fail "$name: pg_regress ran $ran of $listed tests"; tail -20 "$dir/pg_regress.log"; }
	# Crashes: in the server log, and as lost connections in the results.
	local crash
	crash=$(grep -E 'terminated by signal|terminated by exception|exited with exit code ([2-9]|[1-9][0-9])|PANIC:|TRAP:|terminating any other active server processes|all server processes terminated|database system was interrupted|in recovery mode' \
		"$dir/pg/server.log" | head -20 || true)
	[ -z "$crash" ] || { fail "$name: the server log reports a crash:"; echo "$crash"; }
	crash=$(grep -rlE 'server closed the connection unexpectedly|connection to server was lost|no connection to the server' \
		"$dir/out/results" "$dir"/replay_*.log 2>/dev/null | head -20 || true)
	[ -z "$crash" ] || { fail "$name: lost connections in:"; echo "$crash"; }
}

# Pass c: the suite's database belongs to a registered application role
# that is not a superuser, with tenant_guard installed (by a superuser: the
# extension is not trusted) and the schema public guarded; pg_regress runs
# every file as that role, so the runtime guards, the event triggers and the
# COMMIT check see the suite's statement forms from an application role.
setup_c() {
	psql -X -q -v ON_ERROR_STOP=1 -d postgres <<-'EOF'
		CREATE ROLE regress_tg_suite_app LOGIN;
		CREATE DATABASE regression OWNER regress_tg_suite_app TEMPLATE template0;
		ALTER DATABASE regression SET lc_messages TO 'C';
		ALTER DATABASE regression SET lc_monetary TO 'C';
		ALTER DATABASE regression SET lc_numeric TO 'C';
		ALTER DATABASE regression SET lc_time TO 'C';
		ALTER DATABASE regression SET bytea_output TO 'hex';
		ALTER DATABASE regression SET timezone_abbreviations TO 'Default';
	EOF
	psql -X -q -v ON_ERROR_STOP=1 -d regression >/dev/null <<-'EOF'
		CREATE EXTENSION tenant_guard;
		SELECT tenant_guard.register_app_role('regress_tg_suite_app');
		SELECT tenant_guard.guard_schema('public');
	EOF
	replay_c before
}
# Every EXPLAIN and TRUNCATE statement of the suite, alone, in one session of
# the application role, before the suite (nothing they name exists) and
# after it (utility_statements.py says why).
replay_c() {
	psql -X -q -d regression -U regress_tg_suite_app -f "$WORK/utility_statements.sql" \
		>/dev/null 2>"$WORK/c/replay_$1.log" || true
	tg_log "c: $(grep -c . "$WORK/utility_statements.sql") lines of EXPLAIN and TRUNCATE statements replayed $1 the suite" \
		"as the application role ($(grep -c 'ERROR:' "$WORK/c/replay_$1.log" || true) refused or failed)"
}
check_c() {
	replay_c after
	local out
	out=$(psql -X -q -A -t -d regression 2>&1 <<-'EOF'
		SELECT 'app role registered: ' || EXISTS (SELECT 1 FROM tenant_guard.app_roles
		                                           WHERE role = 'regress_tg_suite_app'::regrole);
		SELECT 'public guarded: ' || EXISTS (SELECT 1 FROM tenant_guard.guarded_schemas WHERE schema_name = 'public');
		SELECT 'event triggers enabled: ' || (count(*) > 0 AND bool_and(evtenabled = 'O')) FROM pg_event_trigger
		WHERE evtname LIKE 'tenant\_guard%';
		SELECT 'policies as generated: ' || NOT EXISTS (SELECT 1 FROM tenant_guard.verify());
		SET ROLE regress_tg_suite_app;
		DO $$ BEGIN EXECUTE 'EXPLAIN ANALYZE SELECT 1'; RAISE EXCEPTION 'not refused';
		EXCEPTION WHEN insufficient_privilege THEN RAISE NOTICE 'EXPLAIN ANALYZE refused: true'; END $$;
		RESET ROLE;
		BEGIN;
		CREATE TABLE public.tg_unprotected (id int, org_id uuid);
		COMMIT;
		SELECT 'COMMIT check: ' || (to_regclass('public.tg_unprotected') IS NULL);
	EOF
	) || true
	local want="app role registered: true|public guarded: true|event triggers enabled: true|policies as generated: true"
	want+="|NOTICE:  EXPLAIN ANALYZE refused: true|COMMIT check: true"
	local line missing=0
	while IFS= read -r line; do grep -qxF "$line" <<<"$out" || missing=1; done < <(tr '|' '\n' <<<"$want")
	[ "$missing" -eq 0 ] || { fail "c: tenant_guard's state or guards after the suite:"; echo "$out"; }
}

tg_log "baseline: the suite without tenant_guard"
run_pass baseline "$WORK/stock" "$WORK/stock/parallel_schedule" no "" ""
[ "$FAILED" -eq 0 ] || { echo "pgsuite: the baseline run failed; tenant_guard was not tested"; exit 1; }
tg_log "baseline: $(regress_results "$WORK/baseline" | grep -c ' failed$' || true) tests differ from the stock expected output in this environment"

# The input of the passes: the baseline's output is each test's expected
# output; the stock expected files stay as alternatives (a test whose output
# legitimately varies from run to run matches one of them).
mkdir -p "$WORK/in/expected"
cp -r "$WORK/stock/sql" "$WORK/in/"
ln -s "$WORK/stock/data" "$WORK/in/data"
for f in "$WORK/stock/expected"/*.out; do
	b=$(basename "$f" .out)
	case $b in
	*_[0-9]) cp "$f" "$WORK/in/expected/" ;;
	*) cp "$f" "$WORK/in/expected/${b}_0.out" ;;
	esac
done
for f in "$WORK/baseline/out/results"/*.out; do cp "$f" "$WORK/in/expected/"; done
cp "$HERE"/sql/*.sql "$WORK/in/sql/"
cp "$HERE"/expected/*.out "$WORK/in/expected/"

# Pass b's schedule: the setup first, the application role's workload in
# the group that also runs truncate, alter_table and prepare, the check last.
awk '/^test: / && / truncate( |$)/ { print $0 " tg_workload"; next } { print }
     END { print "test: tg_check" }' "$WORK/stock/parallel_schedule" |
	sed '0,/^test: /s//test: tg_setup\ntest: /' >"$WORK/in/schedule_b"
grep -q ' tg_workload$' "$WORK/in/schedule_b" || { echo "pgsuite: no group for tg_workload"; exit 1; }
/usr/bin/python3 "$HERE/utility_statements.py" "$WORK/stock/sql" >"$WORK/utility_statements.sql" 2>/dev/null

for p in $PASSES; do
	case $p in
	a)
		tg_log "pass a: tenant_guard preloaded and installed in the regression database"
		run_pass a "$WORK/in" "$WORK/stock/parallel_schedule" yes "" "" --load-extension=tenant_guard
		;;
	b)
		tg_log "pass b: pass a plus a protected, audited, guarded schema and an application role at work"
		run_pass b "$WORK/in" "$WORK/in/schedule_b" yes "" "" --load-extension=tenant_guard
		;;
	c)
		tg_log "pass c: the suite's files run by a registered application role (crashes only)"
		# As a role that is not a superuser much of the suite fails its own
		# way, so its output is not compared: what counts is that nothing
		# crashed (run_pass) and that tenant_guard's state and guards are
		# intact afterwards (check_c).
		run_pass c "$WORK/in" "$WORK/stock/parallel_schedule" yes setup_c check_c \
			--use-existing --user=regress_tg_suite_app
		continue
		;;
	*) echo "pgsuite: unknown pass $p"; exit 1 ;;
	esac
	/usr/bin/python3 "$HERE/compare.py" "$ACCEPTED" "$p" "$WORK/$p/out/regression.diffs" \
		"$WORK/observed_$p.txt" || FAILED=1
done

[ -z "$ACCEPTED_MISSING" ] || fail "no list of accepted differences for PostgreSQL $PG_MAJOR: $ACCEPTED_MISSING"
summary="baseline ${TOOK_baseline}s"
for p in $PASSES; do summary+=", pass $p $(eval echo "\$TOOK_$p")s"; done
summary+="; ${SECONDS}s in all"
tg_log "run time: $summary (suite $SRC_VERSION on server $PG_DEB_VERSION)"
if [ "$FAILED" -ne 0 ]; then
	echo "pgsuite: FAILED ($summary); outputs and the observed differences, in the format of"
	echo "         $(basename "$ACCEPTED"), are in $WORK/observed_*.txt"
	exit 1
fi
echo "pgsuite: no crash; every difference from the baseline is accepted ($summary)"
