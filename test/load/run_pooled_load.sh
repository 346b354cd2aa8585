#!/bin/bash
# Sustained load through a transaction-mode pooler, with verification.
# 16 application clients share a psycopg_pool pool to pgbouncer (transaction
# mode, 8 server connections) and run test/load/pooled_load.py against 50
# tenants: every transaction sets its tenant with a bind parameter, reads the
# tenant's rows of a protected, audited table and checks each belongs to it,
# inserts a row (half encrypted), and every fourth decrypts recent values.
# Phases: claims mode, signed mode (HS256 tokens), and a baseline on an
# unprotected, unaudited table of the same shape (reads filtered by the tenant
# column, as an application without row-level security would).
# At the end: 0 rows seen across tenants; the table and the audit trail hold
# exactly the ledger's writes per tenant; verify_audit() passes; every
# decryption returned its own plaintext; backend memory (private RSS of the
# long-lived server connections) at start and end stays flat (it fails above
# +25% and 4 MB); throughput and latency per phase.
#
# Usage: bash test/load/run_pooled_load.sh [seconds per phase, default 8]
#   (TG_LOAD_SECONDS too). The test command runs the short configuration.
# Needs the extension installed (scripts/test.sh), pgbouncer, python3-psycopg,
# python3-psycopg-pool and python3-jwt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/lib.sh"
SECONDS_PER_PHASE=${1:-${TG_LOAD_SECONDS:-8}}
CLIENTS=16
/usr/bin/python3 -c 'import psycopg, psycopg_pool, jwt' 2>/dev/null \
	|| TG_PACKAGES="python3-psycopg python3-psycopg-pool python3-jwt pgbouncer" tg_install_deps
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)

W=$(mktemp -d /tmp/tg_load.XXXXXX)
chmod 755 "$W"
cleanup() {
	[ -s "$W/pgbouncer.pid" ] && kill "$(cat "$W/pgbouncer.pid")" 2>/dev/null || true
	tg_stop_cluster "$W/pg"
	[ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$W/fixtures"
/usr/bin/python3 "$ROOT/test/fixtures/make_fixtures.py" "$W/fixtures" >/dev/null
[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$W/fixtures"
. "$W/fixtures/tokens.env"
export HS_SECRET_FILE
tg_start_cluster "$W/pg" "shared_preload_libraries = 'tenant_guard'" \
	"tenant_guard.master_key_file = '$MASTER_KEY_FILE'" "tenant_guard.jwt_secret_file = '$HS_SECRET_FILE'" \
	"tenant_guard.jwt_audience = 'tenant-app'" "log_min_error_statement = panic" >/dev/null
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE DATABASE load_claims" -c "CREATE DATABASE load_signed"
for db in load_claims load_signed; do
	q -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION tenant_guard;
SELECT format('CREATE ROLE regress_load_app LOGIN') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'regress_load_app')
\gexec
SELECT tenant_guard.register_app_role('regress_load_app');
CREATE SCHEMA load;
GRANT USAGE ON SCHEMA load TO regress_load_app;
CREATE TABLE load.docs (id bigserial PRIMARY KEY, org_id uuid NOT NULL, client int, seq int, body text, secret bytea);
SELECT tenant_guard.protect('load.docs');
SELECT tenant_guard.enable_audit('load.docs');
CREATE TABLE load.plain (id bigserial PRIMARY KEY, org_id uuid NOT NULL, client int, seq int, body text, secret bytea);
CREATE INDEX ON load.plain (org_id);
GRANT SELECT, INSERT ON load.docs, load.plain TO regress_load_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA load TO regress_load_app;
SQL
done
q -c "ALTER DATABASE load_signed SET tenant_guard.context_source = 'signed'"

# (a random start: tests running at the same time must not pick the same port;
# above Linux's ephemeral range, 32768-60999, where a client connection of
# another test can hold a port that no connect test shows as taken)
PB_PORT=$(tg_free_port $((61000 + RANDOM % 3000))) || fail "no free port for pgbouncer"
printf '"regress_load_app" ""\n' >"$W/userlist.txt"
cat >"$W/pgbouncer.ini" <<INI
[databases]
load_claims = host=$PGHOST port=$PGPORT dbname=load_claims
load_signed = host=$PGHOST port=$PGPORT dbname=load_signed
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $W/userlist.txt
logfile = $W/pgbouncer.log
pidfile = $W/pgbouncer.pid
pool_mode = transaction
default_pool_size = 8
min_pool_size = 8
max_client_conn = 64
server_reset_query =
ignore_startup_parameters = extra_float_digits
INI
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$W"/pgbouncer.ini "$W"/userlist.txt "$W"
tg_as_server "$PGBOUNCER" -d -q "$W/pgbouncer.ini" || fail "pgbouncer did not start"
ready=
for _ in $(seq 100); do
	psql -X -q -h 127.0.0.1 -p "$PB_PORT" -U regress_load_app -d load_claims -c 'SELECT 1' >/dev/null 2>&1 && { ready=1; break; }
	sleep 0.1
done
[ -n "$ready" ] || fail "pgbouncer does not accept connections on port $PB_PORT: $(tail -3 "$W/pgbouncer.log" 2>/dev/null)"

rss() {  # "pid:RssAnon" (kB, private memory) of the server connections pgbouncer holds for the app role
	local pid
	for pid in $(q -c "SELECT pid FROM pg_stat_activity WHERE usename = 'regress_load_app'"); do
		echo "$pid:$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
	done | tr '\n' ' '
}
phase() {  # phase NAME DATABASE TABLE MODE
	LOAD_DSN="host=127.0.0.1 port=$PB_PORT dbname=$2 user=regress_load_app" \
		/usr/bin/python3 "$HERE/pooled_load.py" "$W/$1.json" "$SECONDS_PER_PHASE" "$CLIENTS" "$3" "$4" \
		2>"$W/$1.err" || { cat "$W/$1.err"; fail "phase $1 failed"; }
}
# a short warm-up fills the pool and the backends' caches before RSS is read
SECONDS_SAVED=$SECONDS_PER_PHASE; SECONDS_PER_PHASE=2
phase warmup load_claims load.docs claims
SECONDS_PER_PHASE=$SECONDS_SAVED
rss_start=$(rss)
phase claims load_claims load.docs claims
phase signed load_signed load.docs signed
rss_end=$(rss)
# the baseline: plain table, reads filtered by the tenant column (pooled_load.py)
phase baseline load_claims load.plain claims

/usr/bin/python3 - "$W" "$CLIENTS" "$rss_start" "$rss_end" <<'PY' >"$W/report.txt" || { cat "$W/report.txt"; fail "verification failed"; }
import json, subprocess, sys
w, clients = sys.argv[1], sys.argv[2]
parse = lambda s: dict((int(a), int(b)) for a, b in (x.split(":") for x in s.split()))
rss0, rss1 = parse(sys.argv[3]), parse(sys.argv[4])
both = sorted(set(rss0) & set(rss1))
ok = True
def q(db, sql):
    return subprocess.run(["psql", "-X", "-At", "-F", " ", "-d", db, "-c", sql], check=True,
                          capture_output=True, text=True).stdout.split("\n")
res = {p: json.load(open("%s/%s.json" % (w, p))) for p in ("warmup", "claims", "signed", "baseline")}
for db, phases in (("load_claims", ("warmup", "claims")), ("load_signed", ("signed",))):
    ledger = {}
    for p in phases:
        for t, n in res[p]["ledger"].items():
            ledger[t] = ledger.get(t, 0) + n
    rows = dict(l.split() for l in q(db, "SELECT org_id, count(*) FROM load.docs GROUP BY 1") if l)
    recs = dict(l.split() for l in q(db, "SELECT org, count(*) FROM tenant_guard.audit_trail WHERE "
                                     "table_name = 'load.docs' AND kind = 'row' AND action = 'INSERT' GROUP BY 1") if l)
    for t, n in ledger.items():
        if int(rows.get(t, 0)) != n or int(recs.get(t, 0)) != n:
            print("MISMATCH %s tenant %s: ledger %d, rows %s, audit records %s" % (db, t, n, rows.get(t), recs.get(t)))
            ok = False
    if set(rows) - set(ledger) or set(recs) - set(ledger):
        print("MISMATCH %s: rows or records of tenants no client wrote" % db)
        ok = False
    v = q(db, "SELECT ok FROM tenant_guard.verify_audit()")[0]
    if v != "t":
        print("verify_audit() failed in %s" % db)
        ok = False
    print("%s: %d tenants, %d writes in the ledger = rows = audit records; verify_audit ok"
          % (db, len(ledger), sum(ledger.values())))
for p in ("claims", "signed", "baseline"):
    r = res[p]
    print("%-8s %6d transactions %7.1f tps  p50 %6.2f ms  p99 %6.2f ms  rows read %8d  crossed %d  decrypted %d "
          "(bad %d)  errors %d" % (p, r["transactions"], r["tps"], r["p50_ms"], r["p99_ms"], r["rows_read"],
                                   r["crossed_rows"] if p != "baseline" else 0, r["decrypted"], r["bad_decrypt"],
                                   r["errors"]))
    if p != "baseline" and r["crossed_rows"]:
        print("CROSSED: %d rows of other tenants seen in phase %s" % (r["crossed_rows"], p)); ok = False
    if r["bad_decrypt"] or r["errors"] or r["transactions"] == 0:
        print("phase %s had errors or bad decryptions" % p); ok = False
b = res["baseline"]
for p in ("claims", "signed"):
    print("%s vs baseline: throughput %.2fx, p99 latency %.2fx" % (p, res[p]["tps"] / b["tps"], res[p]["p99_ms"] / b["p99_ms"]))
a0, a1 = sum(rss0[p] for p in both), sum(rss1[p] for p in both)
print("private memory (RssAnon) of the %d server connections alive from warm-up to the end: %d kB -> %d kB (%+.1f%%)"
      % (len(both), a0, a1, 100.0 * (a1 - a0) / max(a0, 1)))
# Flat: after the short warm-up a connection has not yet served every
# tenant, so its caches (tenant keys in locked pages, parsed claims) still
# fill during the run: +2% to +8% measured. A leak of a few kB per
# transaction grows far past the bound.
if not both:
    print("no server connection lived from the warm-up to the end: memory not measured"); ok = False
elif a1 - a0 > max(0.25 * a0, 4096):
    print("MEMORY: the server connections grew by %d kB (more than 25%% and 4 MB)" % (a1 - a0)); ok = False
sys.exit(0 if ok else 1)
PY
cat "$W/report.txt"
echo "ok: $CLIENTS clients, 50 tenants, ${SECONDS_PER_PHASE}s per phase through pgbouncer: no row crossed tenants, audit = ledger"
