#!/bin/bash
# test/pooler/run_pgbouncer.sh: the tenant context must never cross from one
# client to another through a pooler in transaction mode.
#
# A real pgbouncer runs in front of the test cluster with pool_mode =
# transaction and ONE server connection per pool, and no reset query, so two
# clients have to take turns on the same server backend, transaction by
# transaction. Client 1 works for ORG_A, client 2 for ORG_B. Every transaction
#   1. first reads the context and expects none (a context left behind by the
#      previous transaction on that backend, usually the other client's,
#      would show up here: that is the leak this test looks for),
#   2. establishes its own context (request.jwt.claims via set_config(...,
#      true) or SET LOCAL, or tenant_guard.set_context(token)),
#   3. reads it back, expecting its own tenant, and records pg_backend_pid(),
#   4. COMMITs, or every fifth time ROLLBACKs.
# Phase "claims" runs in database tg_pooler (context_source = claims, the
# default, with a secret file so that set_context works as well); phase
# "signed" in tg_pooler_signed (context_source = signed, set per database
# because the setting is superuser-only), where only set_context counts.
# The checks then prove: no leak, every read-back is the client's own tenant,
# every transaction ran, all of a phase ran on ONE backend (the connection
# really was shared) and the backend really switched between the clients.
#
# Runs under ctest (test/CMakeLists.txt) from scripts/test.sh, which provides
# PGHOST PGPORT PGUSER PGDATABASE (a running cluster, superuser) and
# TG_TEST_DIR (fixtures from test/fixtures/make_fixtures.py).
# KEEP_TEST_DIR=1 keeps the scratch directory (it never holds a token).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib.sh
. "$HERE/../../scripts/lib.sh"      # tg_log, tg_as_server, tg_free_port, tg_install_deps

: "${PGHOST:?PGHOST must name the running cluster (see scripts/test.sh)}"
: "${PGPORT:?}" "${PGUSER:?}" "${TG_TEST_DIR:?TG_TEST_DIR must name the fixtures directory}"
unset PGOPTIONS   # pgbouncer refuses the "options" startup parameter

# Tokens and tenants, never printed. Only the variables we use are read.
# shellcheck disable=SC1091
. "$TG_TEST_DIR/tokens.env"
: "${TOK_HS_A:?}" "${TOK_HS_B:?}" "${ORG_A:?}" "${ORG_B:?}" "${HS_SECRET_FILE:?}"

DB_CLAIMS=tg_pooler
DB_SIGNED=tg_pooler_signed
APP=regress_pooler_app
TX=160                                # transactions per client per phase
CLIENT_TIMEOUT=40                     # seconds; the whole test takes a few

# Hides anything that could be (part of) a token in text we print: JWTs,
# long base64url runs, and psql's "LINE n:" query excerpts with their caret.
redact() {
	sed -E -e '/^LINE [0-9]+:/d' -e '/^ *\^ *$/d' \
		-e 's/eyJ[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){0,2}/<token>/g' -e 's/[A-Za-z0-9_-]{40,}/<redacted>/g'
}
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
su_psql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }   # superuser, over $PGHOST
# True while process $1 runs (a zombie waiting to be reaped does not count).
alive() {
	local st
	st=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

#-----------------------------------------------------------------------------
# Scratch directory and cleanup (runs on success, failure and interrupt)
#-----------------------------------------------------------------------------
WORK=$(mktemp -d -t tg_pooler.XXXXXX)
chmod 755 "$WORK"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$WORK"
CLIENT_PIDS=()
PB_PID=
cleanup() {
	local rc=$? p
	set +e
	trap - EXIT INT TERM
	for p in "${CLIENT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ -z "$PB_PID" ] && [ -s "$WORK/pgbouncer.pid" ]; then PB_PID=$(cat "$WORK/pgbouncer.pid"); fi
	if [ -n "$PB_PID" ]; then
		kill -TERM "$PB_PID" 2>/dev/null
		for _ in $(seq 50); do alive "$PB_PID" || break; sleep 0.1; done
		alive "$PB_PID" && kill -KILL "$PB_PID" 2>/dev/null
	fi
	if [ "$rc" -ne 0 ]; then
		local f
		for f in "$WORK"/client*.err; do
			[ -s "$f" ] && { echo "---- $(basename "$f") ----"; tail -20 "$f" | redact; }
		done
		if [ -f "$WORK/pgbouncer.log" ]; then
			echo "---- pgbouncer log (tail) ----"; tail -30 "$WORK/pgbouncer.log" | redact
		fi
	fi
	su_psql -d postgres -c "DROP DATABASE IF EXISTS $DB_CLAIMS WITH (FORCE)" \
		-c "DROP DATABASE IF EXISTS $DB_SIGNED WITH (FORCE)" -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1 || true
	if [ -n "${KEEP_TEST_DIR:-}" ]; then echo "scratch kept in $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

#-----------------------------------------------------------------------------
# pgbouncer (Debian package) and the expected subject of each token
#-----------------------------------------------------------------------------
if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
	TG_PACKAGES=pgbouncer tg_install_deps || fail "pgbouncer is not installed"
fi
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)

# The "sub" of each token, decoded locally (the token goes in through the
# environment, only the subject comes out): what current_user_id() must say
# after set_context().
token_sub() { TOK=$1 python3 -c 'import base64,json,os
p = os.environ["TOK"].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["sub"])'; }
SUB_1=$(token_sub "$TOK_HS_A")
SUB_2=$(token_sub "$TOK_HS_B")
if [ -z "$SUB_1" ] || [ -z "$SUB_2" ] || [ "$SUB_1" = "$SUB_2" ]; then
	fail "fixture tokens must name two different subjects"
fi

#-----------------------------------------------------------------------------
# Databases and the application role (as superuser, directly on the cluster)
#-----------------------------------------------------------------------------
tg_log "pooler: creating $DB_CLAIMS, $DB_SIGNED and role $APP"
su_psql -d postgres <<SQL
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $DB_CLAIMS WITH (FORCE);
DROP DATABASE IF EXISTS $DB_SIGNED WITH (FORCE);
SELECT format('CREATE ROLE %I LOGIN', '$APP') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP')
\gexec
-- Whatever existed before: the app role must be an ordinary role, or the
-- superuser-only settings would not be out of its reach.
ALTER ROLE $APP LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE DATABASE $DB_CLAIMS;
CREATE DATABASE $DB_SIGNED;
ALTER DATABASE $DB_CLAIMS SET tenant_guard.jwt_secret_file = '$HS_SECRET_FILE';
ALTER DATABASE $DB_SIGNED SET tenant_guard.jwt_secret_file = '$HS_SECRET_FILE';
ALTER DATABASE $DB_SIGNED SET tenant_guard.context_source = 'signed';
-- A failing statement must not put a token into the server log.
ALTER DATABASE $DB_CLAIMS SET log_min_error_statement = panic;
ALTER DATABASE $DB_SIGNED SET log_min_error_statement = panic;
GRANT CONNECT ON DATABASE $DB_CLAIMS, $DB_SIGNED TO $APP;
SQL
for db in "$DB_CLAIMS" "$DB_SIGNED"; do
	# tick: a global order of the transactions on the server (nextval is not
	# rolled back), used to count how often the backend switched clients.
	su_psql -d "$db" <<SQL
CREATE EXTENSION tenant_guard;
CREATE SEQUENCE tg_pooler_tick;
GRANT USAGE ON SEQUENCE tg_pooler_tick TO $APP;
SQL
done

#-----------------------------------------------------------------------------
# pgbouncer: transaction mode, one server connection per pool, no reset query
#-----------------------------------------------------------------------------
PB_PORT=$(tg_free_port 56432) || fail "no free port for pgbouncer"
printf '"%s" ""\n' "$APP" >"$WORK/userlist.txt"
cat >"$WORK/pgbouncer.ini" <<INI
[databases]
$DB_CLAIMS = host=$PGHOST port=$PGPORT dbname=$DB_CLAIMS
$DB_SIGNED = host=$PGHOST port=$PGPORT dbname=$DB_SIGNED

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/userlist.txt
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
pool_mode = transaction
; one backend per (database, user): the two clients must share it
default_pool_size = 1
min_pool_size = 0
reserve_pool_size = 0
max_db_connections = 1
max_client_conn = 8
; no DISCARD ALL between clients: the extension alone must scope the context
; (pgbouncer never runs it in transaction mode anyway)
server_reset_query =
server_reset_query_always = 0
query_wait_timeout = 20
ignore_startup_parameters = extra_float_digits
INI
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$WORK"

tg_log "pooler: starting pgbouncer on 127.0.0.1:$PB_PORT"
tg_as_server "$PGBOUNCER" -d -q "$WORK/pgbouncer.ini" || fail "pgbouncer did not start"
# Wait until it accepts connections and routes them to the cluster.
app_psql() { local db=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PB_PORT" -U "$APP" -d "$db" "$@"; }
for i in $(seq 100); do
	[ -z "$PB_PID" ] && [ -s "$WORK/pgbouncer.pid" ] && PB_PID=$(cat "$WORK/pgbouncer.pid")
	app_psql "$DB_CLAIMS" -c 'SELECT 1' >/dev/null 2>&1 && break
	[ "$i" -eq 100 ] && fail "pgbouncer does not accept connections"
	sleep 0.1
done

# Through the pooler, as the app role: it is not a superuser and each
# database has the context source this phase is about.
[ "$(app_psql "$DB_CLAIMS" -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user')" = f ] \
	|| fail "$APP must not be a superuser"
[ "$(app_psql "$DB_CLAIMS" -c "SELECT current_setting('tenant_guard.context_source')")" = claims ] \
	|| fail "$DB_CLAIMS: context_source is not claims"
[ "$(app_psql "$DB_SIGNED" -c "SELECT current_setting('tenant_guard.context_source')")" = signed ] \
	|| fail "$DB_SIGNED: context_source is not signed"

#-----------------------------------------------------------------------------
# Client scripts. Output rows (psql -At), one B and one A per transaction:
#   B|client|phase|tx|tick|pid|org|uid          read before establishing
#   A|client|phase|tx|pid|org|uid|end|method    read back after establishing
#   S|...                                       establishing (ignored)
# The token is read from the environment by \copy ... FROM PROGRAM: it is
# never on a command line, in a file of ours or in a statement's text.
#-----------------------------------------------------------------------------
# set_context_sql MS: set_context() with the client's token. The token goes in
# as COPY data (tenant_guard.context_input), read from the environment by
# psql's \copy: set_context() refuses a token written into the statement
# text, and psql 15 cannot send a bind parameter.
set_context_sql() {
	echo "\\copy tenant_guard.context_input (token) FROM PROGRAM 'printenv TG_POOLER_TOKEN'"
	echo "SELECT 'S' FROM pg_sleep(0.00$1);"
}

gen_sql() {   # gen_sql CLIENT PHASE ORG
	local c=$1 phase=$2 org=$3 tx method end ms
	for tx in $(seq "$TX"); do
		ms=$((tx % 3 + 1))                               # 1-3 ms inside the transaction
		end=COMMIT; [ $((tx % 5)) -eq 0 ] && end=ROLLBACK
		echo "BEGIN;"
		echo "SELECT 'B', $c, '$phase', $tx, nextval('tg_pooler_tick'), pg_backend_pid()," \
			"coalesce(tenant_guard.current_user_org_id()::text, 'NULL'), coalesce(tenant_guard.current_user_id(), 'NULL');"
		if [ "$phase" = claims ]; then
			case $((tx % 3)) in
			0) method=set_config
			   echo "SELECT 'S', set_config('request.jwt.claims', '{\"org_id\":\"$org\",\"sub\":\"c$c-tx$tx\"}', true) IS NOT NULL FROM pg_sleep(0.00$ms);" ;;
			1) method=set_local
			   echo "SET LOCAL request.jwt.claims = '{\"org_id\":\"$org\",\"sub\":\"c$c-tx$tx\"}';"
			   echo "SELECT 'S' FROM pg_sleep(0.00$ms);" ;;
			2) method=set_context
			   set_context_sql "$ms" ;;
			esac
		else
			method=set_context
			set_context_sql "$ms"
		fi
		echo "SELECT 'A', $c, '$phase', $tx, pg_backend_pid()," \
			"coalesce(tenant_guard.current_user_org_id()::text, 'NULL'), coalesce(tenant_guard.current_user_id(), 'NULL')," \
			"'${end,,}', '$method';"
		echo "$end;"
	done
}

# check_phase PHASE: verifies both clients' output of one phase.
check_phase() {
	local phase=$1
	cat "$WORK/client1.$phase.out" "$WORK/client2.$phase.out" | awk -F'|' \
		-v phase="$phase" -v n="$TX" -v org1="$ORG_A" -v org2="$ORG_B" -v sub1="$SUB_1" -v sub2="$SUB_2" '
	function who(org) { return org == org1 ? "ORG_A (client 1)" : org == org2 ? "ORG_B (client 2)" : org }
	$1 == "S" { next }
	$1 == "B" && NF == 8 && $3 == phase {
		nb[$2]++; pids[$6] = 1
		if (($5 in tick)) { printf "FAIL: tick %s seen twice\n", $5; bad++ }
		tick[$5] = $2
		if ($7 != "NULL" || $8 != "NULL") {
			leaks++
			if ($7 == ($2 == 1 ? org2 : org1)) cross++
			if (leaks <= 10) printf "LEAK: %s client %s tx %s saw a context before setting one: org %s, user %s\n", phase, $2, $4, who($7), $8
		}
		next
	}
	$1 == "A" && NF == 9 && $3 == phase {
		na[$2]++; pids[$5] = 1
		if ($8 == "rollback") rb[$2]++
		want_org = $2 == 1 ? org1 : org2
		want_uid = $9 == "set_context" ? ($2 == 1 ? sub1 : sub2) : "c" $2 "-tx" $4
		if ($6 != want_org || $7 != want_uid) {
			wrong++
			if (wrong <= 10) printf "WRONG: %s client %s tx %s (%s) read back org %s user %s, expected org %s user %s\n", phase, $2, $4, $9, who($6), $7, who(want_org), want_uid
		}
		next
	}
	{ printf "FAIL: unexpected output line: %s\n", $0; bad++ }
	END {
		for (c = 1; c <= 2; c++)
			if (nb[c] != n || na[c] != n) { printf "FAIL: %s client %d ran %d transactions (%d read-backs), expected %d\n", phase, c, nb[c], na[c], n; bad++; short++ }
		np = 0; plist = ""
		for (p in pids) { np++; plist = plist " " p }
		# A client that died mid-transaction made pgbouncer drop the backend,
		# so the sharing checks below only mean something for a complete run.
		if (short) {}
		else if (np != 1) { printf "FAIL: %s: transactions ran on %d server backends (pids%s); pgbouncer did not make the clients share one connection, so this test proves nothing\n", phase, np, plist; bad++ }
		# walk the ticks in server order, counting client switches
		inter = 0; prev = ""
		for (t = 1; t <= 2 * n; t++) {
			if (!(t in tick)) continue
			if (prev != "" && tick[t] != prev) inter++
			prev = tick[t]
		}
		if (!short && inter == 0) { printf "FAIL: %s: the clients never interleaved on the backend; this test proves nothing\n", phase; bad++ }
		printf "pooler[%s]: client1 %d tx (%d rolled back), client2 %d tx (%d rolled back); distinct server pids: %d (%s); interleavings: %d; leaks: %d (from the other client: %d); wrong read-backs: %d\n", phase, na[1], rb[1], na[2], rb[2], np, substr(plist, 2), inter, leaks + 0, cross + 0, wrong + 0
		exit (leaks + wrong + bad > 0)
	}'
}

#-----------------------------------------------------------------------------
# The two phases: both clients at once, through pgbouncer, as the app role
#-----------------------------------------------------------------------------
START=$SECONDS
status=0
for phase in claims signed; do
	db=$DB_CLAIMS; [ "$phase" = signed ] && db=$DB_SIGNED
	gen_sql 1 "$phase" "$ORG_A" >"$WORK/client1.$phase.sql"
	gen_sql 2 "$phase" "$ORG_B" >"$WORK/client2.$phase.sql"
	tg_log "pooler: phase $phase ($db): 2 clients x $TX transactions"
	CLIENT_PIDS=()
	TG_POOLER_TOKEN=$TOK_HS_A timeout "$CLIENT_TIMEOUT" psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PB_PORT" \
		-U "$APP" -d "$db" -f "$WORK/client1.$phase.sql" >"$WORK/client1.$phase.out" 2>"$WORK/client1.$phase.err" &
	CLIENT_PIDS+=($!)
	TG_POOLER_TOKEN=$TOK_HS_B timeout "$CLIENT_TIMEOUT" psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PB_PORT" \
		-U "$APP" -d "$db" -f "$WORK/client2.$phase.sql" >"$WORK/client2.$phase.out" 2>"$WORK/client2.$phase.err" &
	CLIENT_PIDS+=($!)
	for c in 1 2; do
		rc=0; wait "${CLIENT_PIDS[$((c - 1))]}" || rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "FAIL: $phase client $c: psql exited with status $rc$([ "$rc" -eq 124 ] && echo ' (timeout)')" >&2
			redact <"$WORK/client$c.$phase.err" | tail -5 >&2
			status=1
		fi
	done
	CLIENT_PIDS=()
	check_phase "$phase" || status=1
done

if [ "$status" -ne 0 ]; then
	fail "tenant context isolation through pgbouncer (transaction mode) is broken; see above"
fi
echo "pooler: OK, 2 clients x $((2 * TX)) transactions through pgbouncer (transaction mode, 1 server connection per pool), leaks=0, $((SECONDS - START)) s"
