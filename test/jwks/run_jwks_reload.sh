#!/bin/bash
# test/jwks/run_jwks_reload.sh: a changed tenant_guard.jwt_jwks_file setting
# takes effect in sessions that already exist at the reload (SIGHUP), as
# docs/signed-mode.md says.
#
# On a throw-away cluster of its own (ALTER SYSTEM changes the whole cluster,
# which the other tests share), with signed mode and a key set holding only
# the old key (RS256, kid 2026-old): one session, opened before anything
# changes, verifies a token of the old key and refuses one of the new key
# (ES256, kid 2026-new). ALTER SYSTEM points jwt_jwks_file at the key set of
# after the rotation (the new key only) and pg_reload_conf() signals the
# server. The same session verifies the new key's token once the reload
# reached it (tried statement by statement, as a backend applies a SIGHUP
# between statements; bounded, no fixed sleep) and then refuses the old
# key's; so does a new session. Then pg_ctl reload back to
# the old key set: the same session follows again. Tokens go in as bind
# parameters (set_context() refuses one written into the statement).
# Needs TG_TEST_DIR (fixtures) from scripts/test.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
: "${TG_TEST_DIR:?}"
. "$TG_TEST_DIR/tokens.env"
: "${JWKS_FILE:?}" "${JWKS_AFTER_FILE:?}" "${TOK_JWKS_OLD_A:?}" "${TOK_JWKS_NEW_A:?}" "${AUDIENCE:?}"

W=$(mktemp -d /tmp/tg_jwks_reload.XXXXXX)
chmod 755 "$W"
trap 'tg_stop_cluster "$W/pg"; rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; tail -20 "$W/pg/server.log" 2>/dev/null; exit 1; }

# The key set before the rotation: the old key only, taken from the fixture's
# set (owned by the server, mode 0600 like every key file).
OLD_ONLY=$W/jwks_old_only.json
/usr/bin/python3 - "$JWKS_FILE" "$OLD_ONLY" <<'PY'
import json, os, sys
keys = [k for k in json.load(open(sys.argv[1]))["keys"] if k.get("kid") == "2026-old"]
assert len(keys) == 1, keys
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, json.dumps({"keys": keys}).encode())
os.close(fd)
PY
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$OLD_ONLY"

tg_start_cluster "$W/pg" "shared_preload_libraries = 'tenant_guard'" \
	"tenant_guard.context_source = 'signed'" "tenant_guard.jwt_audience = '$AUDIENCE'" \
	"tenant_guard.jwt_jwks_file = '$OLD_ONLY'" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION tenant_guard" -c "CREATE ROLE regress_jwks_app LOGIN" \
	|| fail "setup"

TOK_OLD=$TOK_JWKS_OLD_A TOK_NEW=$TOK_JWKS_NEW_A \
	/usr/bin/python3 - "$OLD_ONLY" "$JWKS_AFTER_FILE" "$ORG_A" "$W/pg/data" "$PG_BINDIR" <<'PY' || fail "see above"
import os, subprocess, sys, time
import psycopg

old_set, new_set, org_a, datadir, bindir = sys.argv[1:6]
old_tok, new_tok = os.environ["TOK_OLD"], os.environ["TOK_NEW"]
conninfo = f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} dbname=postgres"
failed = []


def check(what, ok):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failed.append(what)


def verify(conn, token):
    """The org of a token in a transaction of conn, or the error's SQLSTATE."""
    try:
        with conn.transaction():
            with conn.cursor() as cur:
                cur.execute("SELECT tenant_guard.set_context(%s)::text", (token,))
                return cur.fetchone()[0]
    except psycopg.Error as e:
        return "error " + (e.sqlstate or "?")


def wait_for(conn, token):
    """Statement by statement until the session's reload took effect, i.e. until token verifies in it: a backend
    applies a SIGHUP between statements, when the postmaster's signal has reached it. Bounded (30 s), never a
    fixed sleep; the application role cannot SHOW the superuser-only setting itself."""
    for _ in range(600):
        if verify(conn, token) == org_a:
            return True
        time.sleep(0.05)
    return False


su = psycopg.connect(conninfo + " user=postgres", autocommit=True)
app = psycopg.connect(conninfo + " user=regress_jwks_app", autocommit=True)
check("before: the old key's token verifies in the existing session", verify(app, old_tok) == org_a)
check("before: the new key's token is refused (kid not in the set)", verify(app, new_tok) == "error 28000")

su.execute(f"ALTER SYSTEM SET tenant_guard.jwt_jwks_file = '{new_set}'")
su.execute("SELECT pg_reload_conf()")
check("after pg_reload_conf(): the new key's token verifies in the existing session", wait_for(app, new_tok))
check("after pg_reload_conf(): the old key's token is refused in the existing session",
      verify(app, old_tok) == "error 28000")
fresh = psycopg.connect(conninfo + " user=regress_jwks_app", autocommit=True)
check("a new session has the new key set too", verify(fresh, old_tok) == "error 28000" and verify(fresh, new_tok) == org_a)
fresh.close()

# back with pg_ctl reload (SIGHUP to the postmaster) after ALTER SYSTEM
su.execute(f"ALTER SYSTEM SET tenant_guard.jwt_jwks_file = '{old_set}'")
subprocess.run((["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else [])
               + [f"{bindir}/pg_ctl", "-D", datadir, "reload", "-s"], check=True)
check("after pg_ctl reload: the old key's token verifies again in the existing session", wait_for(app, old_tok))
check("after pg_ctl reload: the new key's token is refused in the existing session",
      verify(app, new_tok) == "error 28000")
# an application role cannot choose its own key set
try:
    app.execute(f"SET tenant_guard.jwt_jwks_file = '{new_set}'")
    check("the application role cannot SET jwt_jwks_file", False)
except psycopg.Error as e:
    check("the application role cannot SET jwt_jwks_file", e.sqlstate == "42501")
app.close()
su.close()
sys.exit(1 if failed else 0)
PY
echo "ok: jwt_jwks_file follows SIGHUP in existing sessions"
