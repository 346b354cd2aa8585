#!/bin/bash
# test/tokens/run_token_log.sh: set_context() never lets a token reach the
# server log through its own errors and warnings.
#
# PostgreSQL writes the statement text of a failing statement to the log
# (log_min_error_statement, default error) and a COPY error's CONTEXT line
# with the data it was reading. set_context() marks every error and warning it
# raises with errhidestmt and errhidecontext, so neither a token written into
# the statement nor one sent as COPY data (tenant_guard.context_input) is
# logged. The harness mints its own tokens (so no other test can put them in
# the log), makes set_context() fail and warn in every way, and then searches
# the server log for each token and its signature. Two control statements
# prove the search would find them: a failing statement and a failing COPY
# with a marker of their own, which the log must show.
#
# Runs under ctest from scripts/test.sh, which provides PGHOST (the cluster
# directory, which holds server.log), PGPORT, PGUSER and TG_TEST_DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
: "${PGHOST:?}" "${TG_TEST_DIR:?}"
. "$TG_TEST_DIR/tokens.env"
: "${HS_SECRET_FILE:?}" "${ORG_A:?}"

LOG=$PGHOST/server.log
DB=tg_token_log
APP=regress_toklog_app
fail() { echo "FAIL: $*"; exit 1; }
su_psql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
app_psql() { psql -X -q -At -U "$APP" -d "$DB" "$@"; }   # errors expected: no ON_ERROR_STOP
[ -f "$LOG" ] || fail "no server log at $LOG"
cleanup() {
	su_psql -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Tokens of this run only: valid, expired, for another audience.
RUN=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
mint() { /usr/bin/python3 - "$HS_SECRET_FILE" "$ORG_A" "$RUN" "$1" "$2" <<'PY'
import sys, time, jwt
secret = open(sys.argv[1], "rb").read().rstrip(b"\n")
org, run, exp_delta, aud = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
print(jwt.encode({"org_id": org, "sub": "token-log-" + run, "aud": aud,
                  "exp": int(time.time()) + exp_delta}, secret, "HS256"))
PY
}
T_VALID=$(mint 600 tenant-app)
T_EXPIRED=$(mint -600 tenant-app)
T_AUD=$(mint 600 another-service)
MARK_STMT="marker-statement-$RUN"
MARK_COPY="marker-copy-$RUN"

su_psql -d postgres <<SQL
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $DB WITH (FORCE);
CREATE DATABASE $DB;
DROP ROLE IF EXISTS $APP;
CREATE ROLE $APP LOGIN;
ALTER DATABASE $DB SET tenant_guard.jwt_secret_file = '$HS_SECRET_FILE';
ALTER DATABASE $DB SET tenant_guard.jwt_audience = 'tenant-app';
ALTER DATABASE $DB SET tenant_guard.context_source = 'signed';
-- PostgreSQL's default, stated: the text of every failing statement is logged
ALTER DATABASE $DB SET log_min_error_statement = error;
SQL
su_psql -d "$DB" -c "CREATE EXTENSION tenant_guard" -c "CREATE TABLE copy_control (n int)"

# 1. errors: a token written into the statement (valid, expired, for another
#    audience), inside and outside a transaction, and tokens sent as COPY data
app_psql -c "BEGIN" -c "SELECT tenant_guard.set_context('$T_VALID')" -c "ROLLBACK" >/dev/null 2>&1 || true
app_psql -c "SELECT tenant_guard.set_context('$T_EXPIRED')" >/dev/null 2>&1 || true
app_psql -c "SELECT tenant_guard.set_context('$T_AUD', session => true)" >/dev/null 2>&1 || true
app_psql -c "DO \$\$ BEGIN PERFORM tenant_guard.set_context('$T_VALID'); END \$\$" >/dev/null 2>&1 || true
for t in "$T_EXPIRED" "$T_AUD"; do
	printf '%s\n' "$t" | app_psql -c "COPY tenant_guard.context_input (token) FROM STDIN" >/dev/null 2>&1 || true
done
# 2. warnings: tenant_guard.literal_token = warn, with warnings' statements logged
su_psql -d postgres -c "ALTER DATABASE $DB SET tenant_guard.literal_token = warn" \
	-c "ALTER DATABASE $DB SET log_min_error_statement = warning"
got=$(app_psql -c "BEGIN" -c "SELECT tenant_guard.set_context('$T_VALID')" -c "COMMIT" 2>&1)
grep -q "WARNING:  tenant token written into the statement text" <<<"$got" || fail "no warning in warn mode"
grep -q "$ORG_A" <<<"$got" || fail "the token was not accepted in warn mode"
app_psql -c "SELECT tenant_guard.set_context('$T_VALID')" >/dev/null 2>&1   # outside a transaction block
# 3. the controls: what PostgreSQL logs for a failing statement and COPY
app_psql -c "SELECT 1 / 0 AS \"$MARK_STMT\"" >/dev/null 2>&1 || true
printf '%s\n' "$MARK_COPY" | su_psql -d "$DB" -c "COPY copy_control FROM STDIN" >/dev/null 2>&1 || true

grep -q -- "STATEMENT:  SELECT 1 / 0 AS \"$MARK_STMT\"" "$LOG" \
	|| fail "the control statement is not in the server log, so this test proves nothing"
grep -q -- "CONTEXT:  COPY copy_control, line 1, column n: \"$MARK_COPY\"" "$LOG" \
	|| fail "the control COPY line is not in the server log, so this test proves nothing"
grep -q "tenant token written into the statement text" "$LOG" || fail "the refusals are not in the server log"
leaks=0
for t in "$T_VALID" "$T_EXPIRED" "$T_AUD"; do
	for part in "$t" "${t##*.}"; do
		if grep -qF -- "$part" "$LOG"; then leaks=$((leaks + 1)); fi
	done
done
[ "$leaks" -eq 0 ] || fail "$leaks token or signature occurrence(s) in the server log"
echo "token_log: ok, 3 tokens x (statement, DO block, COPY data, warning) never reached the server log; the controls did"
