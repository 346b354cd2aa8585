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
# Then the session state a server connection keeps for its next client:
# temporary objects, cursors WITH HOLD, LISTEN and advisory locks, each as an
# attack by tenant A on tenant B, in three settings (see "Session state"
# below): unhardened (each attack must work, or the test proves nothing),
# hardened (harden_app_role() and the runtime guards: each must fail, but the
# advisory lock, a documented residual channel), and behind a pgbouncer that
# runs DISCARD ALL after every transaction.
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
DB_OPEN=tg_pooler_open                # not hardened: the control of the session-state attacks
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
LISTENER_PID=
cleanup() {
	local rc=$? p f
	set +e
	trap - EXIT INT TERM
	for p in "${CLIENT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -n "$LISTENER_PID" ] && kill "$LISTENER_PID" 2>/dev/null
	for f in "$WORK"/pgbouncer*.pid; do
		[ -s "$f" ] || continue
		p=$(cat "$f")
		kill -TERM "$p" 2>/dev/null
		for _ in $(seq 50); do alive "$p" || break; sleep 0.1; done
		alive "$p" && kill -KILL "$p" 2>/dev/null
	done
	if [ "$rc" -ne 0 ]; then
		local f
		for f in "$WORK"/client*.err; do
			[ -s "$f" ] && { echo "---- $(basename "$f") ----"; tail -20 "$f" | redact; }
		done
		for f in "$WORK"/pgbouncer*.log; do
			[ -f "$f" ] && { echo "---- $(basename "$f") (tail) ----"; tail -30 "$f" | redact; }
		done
	fi
	su_psql -d postgres -c "DROP DATABASE IF EXISTS $DB_CLAIMS WITH (FORCE)" \
		-c "DROP DATABASE IF EXISTS $DB_SIGNED WITH (FORCE)" -c "DROP DATABASE IF EXISTS $DB_OPEN WITH (FORCE)" \
		-c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1 || true
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
tg_log "pooler: creating $DB_CLAIMS, $DB_SIGNED, $DB_OPEN and role $APP"
su_psql -d postgres <<SQL
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $DB_CLAIMS WITH (FORCE);
DROP DATABASE IF EXISTS $DB_SIGNED WITH (FORCE);
DROP DATABASE IF EXISTS $DB_OPEN WITH (FORCE);
SELECT format('CREATE ROLE %I LOGIN', '$APP') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP')
\gexec
-- Whatever existed before: the app role must be an ordinary role, or the
-- superuser-only settings would not be out of its reach.
ALTER ROLE $APP LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE DATABASE $DB_CLAIMS;
CREATE DATABASE $DB_SIGNED;
CREATE DATABASE $DB_OPEN;
ALTER DATABASE $DB_CLAIMS SET tenant_guard.jwt_secret_file = '$HS_SECRET_FILE';
ALTER DATABASE $DB_SIGNED SET tenant_guard.jwt_secret_file = '$HS_SECRET_FILE';
ALTER DATABASE $DB_OPEN SET tenant_guard.jwt_secret_file = '$HS_SECRET_FILE';
ALTER DATABASE $DB_SIGNED SET tenant_guard.context_source = 'signed';
ALTER DATABASE $DB_OPEN SET tenant_guard.context_source = 'signed';
-- the control: the guards on held cursors and LISTEN off
ALTER DATABASE $DB_OPEN SET tenant_guard.block_app_hold_cursors = off;
ALTER DATABASE $DB_OPEN SET tenant_guard.block_app_listen = off;
-- Belt and braces: a failing statement puts nothing into the server log.
ALTER DATABASE $DB_CLAIMS SET log_min_error_statement = panic;
ALTER DATABASE $DB_SIGNED SET log_min_error_statement = panic;
ALTER DATABASE $DB_OPEN SET log_min_error_statement = panic;
GRANT CONNECT ON DATABASE $DB_CLAIMS, $DB_SIGNED, $DB_OPEN TO $APP;
SQL
for db in "$DB_SIGNED" "$DB_OPEN"; do
	# a protected table for the session-state attacks, one row per tenant
	su_psql -d "$db" <<SQL
SET client_min_messages = warning;
CREATE EXTENSION tenant_guard;
CREATE SCHEMA app;
CREATE TABLE app.projects (org_id uuid NOT NULL, name text NOT NULL);
INSERT INTO app.projects VALUES ('$ORG_A', 'secret of A'), ('$ORG_B', 'secret of B');
SELECT tenant_guard.protect('app.projects');
GRANT USAGE ON SCHEMA app TO $APP;
GRANT SELECT ON app.projects TO $APP;
SELECT tenant_guard.register_app_role('$APP');
SQL
done
# DB_SIGNED is hardened: TEMPORARY revoked, track_activities off for the role
su_psql -d "$DB_SIGNED" -c "SET client_min_messages = warning" \
	-c "SELECT count(*) FROM tenant_guard.harden_app_role('$APP')" >/dev/null
su_psql -d "$DB_SIGNED" -c "SELECT has_database_privilege('$APP', current_database(), 'TEMPORARY')" | grep -qx f \
	|| fail "harden_app_role() left TEMPORARY to $APP"
su_psql -d "$DB_CLAIMS" -c "CREATE EXTENSION tenant_guard"
for db in "$DB_CLAIMS" "$DB_SIGNED"; do
	# tick: a global order of the transactions on the server (nextval is not
	# rolled back), used to count how often the backend switched clients.
	su_psql -d "$db" <<SQL
CREATE SEQUENCE tg_pooler_tick;
GRANT USAGE ON SEQUENCE tg_pooler_tick TO $APP;
SQL
done

#-----------------------------------------------------------------------------
# pgbouncer: transaction mode, one server connection per pool, no reset query
#-----------------------------------------------------------------------------
# write_ini NAME PORT RESET_QUERY ALWAYS DATABASES...: $WORK/NAME.ini
write_ini() {
	local name=$1 port=$2 reset=$3 always=$4 db
	shift 4
	{
		echo "[databases]"
		for db in "$@"; do echo "$db = host=$PGHOST port=$PGPORT dbname=$db"; done
		cat <<INI

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $WORK/userlist.txt
logfile = $WORK/$name.log
pidfile = $WORK/$name.pid
pool_mode = transaction
; one backend per (database, user): the clients must share it
default_pool_size = 1
min_pool_size = 0
reserve_pool_size = 0
max_db_connections = 1
max_client_conn = 8
server_reset_query = $reset
server_reset_query_always = $always
query_wait_timeout = 20
ignore_startup_parameters = extra_float_digits
INI
	} >"$WORK/$name.ini"
}
# start_pgbouncer NAME PORT DB: starts it and waits until it routes DB
start_pgbouncer() {
	local name=$1 port=$2 db=$3 i
	[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$WORK"
	tg_log "pooler: starting $name on 127.0.0.1:$port"
	tg_as_server "$PGBOUNCER" -d -q "$WORK/$name.ini" || fail "$name did not start"
	for i in $(seq 100); do
		psql -X -q -At -h 127.0.0.1 -p "$port" -U "$APP" -d "$db" -c 'SELECT 1' >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	fail "$name does not accept connections"
}
printf '"%s" ""\n' "$APP" >"$WORK/userlist.txt"
# The main pgbouncer: no DISCARD ALL between clients, so the extension alone
# must scope the context (pgbouncer never runs it in transaction mode unless
# server_reset_query_always is set).
PB_PORT=$(tg_free_port 56432) || fail "no free port for pgbouncer"
write_ini pgbouncer "$PB_PORT" "" 0 "$DB_CLAIMS" "$DB_SIGNED" "$DB_OPEN"
start_pgbouncer pgbouncer "$PB_PORT" "$DB_CLAIMS"
# A second one that runs DISCARD ALL after every transaction, for what the
# reset closes of the session state.
PB_RESET_PORT=$(tg_free_port $((PB_PORT + 1))) || fail "no free port for the second pgbouncer"
write_ini pgbouncer_reset "$PB_RESET_PORT" "DISCARD ALL" 1 "$DB_OPEN"
start_pgbouncer pgbouncer_reset "$PB_RESET_PORT" "$DB_OPEN"
app_psql() { local db=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PB_PORT" -U "$APP" -d "$db" "$@"; }

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

#-----------------------------------------------------------------------------
# Session state: what a server connection keeps for its next client
#-----------------------------------------------------------------------------
# Tenant A (the attacker) and tenant B take turns on the one server
# connection of a pool, one psql (and so one or more transactions) each, in
#   open      DB_OPEN through the main pgbouncer: TEMPORARY is PUBLIC's and
#             the WITH HOLD and LISTEN guards are off; every attack must work,
#             or this test proves nothing;
#   hardened  DB_SIGNED, hardened by harden_app_role(), the guards on: every
#             attack must fail, except the advisory lock (a residual channel,
#             docs/security-model.md, which must behave as documented);
#   reset     DB_OPEN through the second pgbouncer, which runs DISCARD ALL
#             after every transaction: what the reset closes.
# client PORT DB TOKEN SQL...: one psql, each SQL its own -c; attacks fail on
# purpose, so no ON_ERROR_STOP; stdout and stderr together. The token goes in
# as COPY data ($CTX), never as statement text.
client() {
	local port=$1 db=$2 tok=$3 s args=()
	shift 3
	for s in "$@"; do args+=(-c "$s"); done
	TG_POOLER_TOKEN=$tok timeout "$CLIENT_TIMEOUT" psql -X -q -At -h 127.0.0.1 -p "$port" -U "$APP" -d "$db" \
		"${args[@]}" 2>&1 || true
}
CTX="\\copy tenant_guard.context_input (token) FROM PROGRAM 'printenv TG_POOLER_TOKEN'"
PID="SELECT 'pid=' || pg_backend_pid()"
pids_of() { grep -h '^pid=' "$@" | sort -u | wc -l; }
session_fail=0
check() {   # check SETTING ATTACK CONDITION-DESCRIPTION (reads $ok)
	if [ "$ok" = 1 ]; then echo "pooler[session] $1: $2: $3"
	else echo "FAIL: pooler[session] $1: $2: expected $3" >&2; session_fail=1; fi
}

for setting in open hardened reset; do
	case $setting in
	open) port=$PB_PORT; db=$DB_OPEN ;;
	hardened) port=$PB_PORT; db=$DB_SIGNED ;;
	reset) port=$PB_RESET_PORT; db=$DB_OPEN ;;
	esac
	d=$WORK/session.$setting
	mkdir -p "$d"

	# 1. temporary objects: A plants a view named like the table and a function
	#    that keeps every row the view shows; B's unqualified name reads
	#    through it; A reads B's rows back
	client "$port" "$db" "$TOK_HS_A" "BEGIN" "$PID" "$CTX" \
		"CREATE TEMP TABLE loot (name text)" \
		"CREATE FUNCTION pg_temp.keep(n text) RETURNS boolean LANGUAGE sql VOLATILE AS 'INSERT INTO pg_temp.loot VALUES (n); SELECT true'" \
		"CREATE TEMP VIEW projects AS SELECT p.* FROM app.projects p WHERE pg_temp.keep(p.name)" "COMMIT" >"$d/temp.a1"
	client "$port" "$db" "$TOK_HS_B" "BEGIN" "$PID" "$CTX" "SET LOCAL search_path = app, public" \
		"SELECT 'row=' || name FROM projects" "COMMIT" >"$d/temp.b"
	client "$port" "$db" "$TOK_HS_A" "BEGIN" "$PID" "$CTX" "SELECT 'loot=' || name FROM pg_temp.loot" "COMMIT" >"$d/temp.a2"
	grep -qx 'row=secret of B' "$d/temp.b" || { echo "FAIL: $setting: B could not read its own row" >&2; session_fail=1; }
	stolen=0; grep -qx 'loot=secret of B' "$d/temp.a2" && stolen=1
	case $setting in
	open) ok=$stolen; check "$setting" temp_object "A planted objects and read B's row back (the control)" ;;
	hardened) ok=0; [ "$stolen" = 0 ] && grep -q 'permission denied' "$d/temp.a1" && ok=1
	          check "$setting" temp_object "refused (no TEMPORARY), B read the table itself" ;;
	reset) ok=0; [ "$stolen" = 0 ] && ! grep -q ERROR "$d/temp.a1" && ok=1
	       check "$setting" temp_object "planted, then dropped by DISCARD ALL before B came" ;;
	esac

	# 2. a cursor WITH HOLD: B's outlives B's transaction; A lists and fetches it
	client "$port" "$db" "$TOK_HS_B" "BEGIN" "$PID" "$CTX" \
		"DECLARE held CURSOR WITH HOLD FOR SELECT 'fetched=' || name FROM app.projects" "COMMIT" >"$d/cursor.b"
	client "$port" "$db" "$TOK_HS_A" "$PID" "SELECT 'cursor=' || name FROM pg_cursors" "FETCH ALL FROM held" \
		"CLOSE held" >"$d/cursor.a"
	fetched=0; grep -qx 'fetched=secret of B' "$d/cursor.a" && fetched=1
	case $setting in
	open) ok=$fetched; check "$setting" hold_cursor "A fetched B's rows from B's held cursor (the control)" ;;
	hardened) ok=0; [ "$fetched" = 0 ] && grep -q 'WITH HOLD is not allowed for application role' "$d/cursor.b" \
	              && ! grep -q '^cursor=' "$d/cursor.a" && ok=1
	          check "$setting" hold_cursor "refused to B, nothing for A to fetch" ;;
	reset) ok=0; [ "$fetched" = 0 ] && ! grep -q ERROR "$d/cursor.b" && ! grep -q '^cursor=' "$d/cursor.a" && ok=1
	       check "$setting" hold_cursor "declared, then closed by DISCARD ALL before A came" ;;
	esac

	# 3. advisory locks: A's session lock is held in B's transaction, and B's
	#    pg_try_advisory_lock() on it succeeds (the residual channel)
	client "$port" "$db" "$TOK_HS_A" "$PID" "SELECT pg_advisory_lock(4711)" >"$d/lock.a1"
	client "$port" "$db" "$TOK_HS_B" "BEGIN" "$PID" "$CTX" \
		"SELECT 'held=' || objid FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()" \
		"SELECT 'try=' || pg_try_advisory_lock(4711)" "COMMIT" >"$d/lock.b"
	client "$port" "$db" "$TOK_HS_A" "$PID" "SELECT pg_advisory_unlock_all()" >"$d/lock.a2"
	carried=0; grep -qx 'held=4711' "$d/lock.b" && carried=1
	case $setting in
	open|hardened) ok=$carried; check "$setting" advisory_lock "A's session lock carried into B's transaction (residual, documented)" ;;
	reset) ok=0; [ "$carried" = 0 ] && ok=1
	       check "$setting" advisory_lock "released by DISCARD ALL before B came" ;;
	esac

	# every client of a setting ran on one server connection
	n=$(pids_of "$d"/*)
	if [ "$n" -ne 1 ]; then
		echo "FAIL: pooler[session] $setting: the clients ran on $n server connections, so this proves nothing" >&2
		session_fail=1
	fi

	# 4. LISTEN (open and hardened): A listens on a connection of its own; B's
	#    transaction sends a notification with its data
	[ "$setting" = reset ] && continue
	rm -f "$d/listen.in"; mkfifo "$d/listen.in"
	psql -X -q -At -U "$APP" -d "$db" <"$d/listen.in" >"$d/listen.a" 2>&1 &
	LISTENER_PID=$!
	exec 7>"$d/listen.in"
	echo "LISTEN tenant_events; SELECT 'listening';" >&7
	for i in $(seq 100); do grep -q '^listening$' "$d/listen.a" && break; sleep 0.1; done
	client "$port" "$db" "$TOK_HS_B" "BEGIN" "$CTX" \
		"SELECT pg_notify('tenant_events', name) FROM app.projects" "COMMIT" >"$d/listen.b"
	echo "SELECT 'after-1'; SELECT 'after-2';" >&7
	for i in $(seq 100); do grep -q '^after-2$' "$d/listen.a" && break; sleep 0.1; done
	exec 7>&-
	wait "$LISTENER_PID" || true
	LISTENER_PID=
	heard=0; grep -q 'Asynchronous notification "tenant_events" with payload "secret of B"' "$d/listen.a" && heard=1
	case $setting in
	open) ok=$heard; check "$setting" listen "A received B's notification payload (the control)" ;;
	hardened) ok=0; [ "$heard" = 0 ] && grep -q 'LISTEN is not allowed for application role' "$d/listen.a" && ok=1
	          check "$setting" listen "LISTEN refused to A, nothing received" ;;
	esac
done
[ "$session_fail" -eq 0 ] || fail "session state crossed tenants through pgbouncer; see above"
echo "pooler: OK, session state: every attack works unhardened, fails hardened (advisory locks: residual), and DISCARD ALL closes each"
