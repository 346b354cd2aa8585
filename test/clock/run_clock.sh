#!/bin/bash
# The suite must not depend on the date it runs at. This harness starts a
# throw-away cluster whose wall clock is moved by test/clock/clockshift.c (an
# LD_PRELOAD library in the server's environment only; the clients keep the
# real clock; clockshift.c says why not libfaketime) and, for each instant:
#  1. makes the token fixtures under the moved clock (their iat/exp follow it),
#  2. runs the audit, retention, lifecycle and support pg_regress files,
#     starting a few seconds before the instant's month change,
#  3. runs test/clock/month_change.sql, which moves the clock itself: a
#     transaction that spans the month change writes before and after it, a
#     write lands in a month that has no partition (and must be recorded, as
#     the application role, without blocking audit readers), and 25 months
#     later purge_audit() drops the old months while the chain still verifies.
#
# Instants (computed from today, so they are always ahead of the real clock):
#   month_end   the last seconds of this month (of next month if this one is December)
#   year_end    31 December 23:59:58 -> 1 January
#   leap_day    the next 29 February (files at noon; the script crosses into 1 March)
#   retention   a day 25 months from today (past the default 24-month retention)
#
# Usage: bash test/clock/run_clock.sh [all | INSTANT ...]
#   default: $TG_CLOCK_INSTANTS, or all (what the test command runs: about 30 s)
# Needs the extension installed (scripts/test.sh does it) and a C compiler.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/lib.sh"


instants=("$@")
[ ${#instants[@]} -gt 0 ] || read -r -a instants <<<"${TG_CLOCK_INSTANTS:-all}"
[ "${instants[0]}" != all ] || instants=(month_end year_end leap_day retention)

# "<files at> | <month change>" for an instant, both UTC, from the real today.
instant_times() {
	/usr/bin/python3 - "$1" <<'PY'
import calendar, datetime as dt, sys
name = sys.argv[1]
today = dt.datetime.now(dt.timezone.utc).date()
def first_of_next_month(d):
    return dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
def add_months(d, n):
    y, m = divmod(d.month - 1 + n, 12)
    y += d.year
    return dt.date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))
sec = dt.timedelta(seconds=1)
if name == "month_end":
    b = first_of_next_month(today)
    if b.month == 1:
        b = first_of_next_month(b)
    b = dt.datetime.combine(b, dt.time())
    at = b - 2 * sec
elif name == "year_end":
    b = dt.datetime(today.year + 1, 1, 1)
    at = b - 2 * sec
elif name == "leap_day":
    y = today.year + (today >= dt.date(today.year, 2, 28))
    while not calendar.isleap(y):
        y += 1
    at = dt.datetime(y, 2, 29, 12)
    b = dt.datetime(y, 3, 1)
elif name == "retention":
    d = add_months(today, 25)
    at = dt.datetime.combine(d, dt.time(12))
    b = dt.datetime.combine(first_of_next_month(d), dt.time())
else:
    sys.exit("unknown instant " + name)
print(at.strftime("%Y-%m-%d %H:%M:%S"), "|", b.strftime("%Y-%m-%d %H:%M:%S"))
PY
}

W=$(mktemp -d /tmp/tg_clock.XXXXXX)
chmod 755 "$W"
trap 'tg_stop_cluster "$W/pg"; [ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$W"' EXIT
cc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$W/clockshift.so" "$HERE/clockshift.c"
CLOCK=$W/clock
# The offset (seconds) is added to the real clock, so the moved clock keeps
# ticking; the file is re-read on every call, so a move applies to every
# process at once.
set_clock() {  # set_clock 'YYYY-MM-DD HH:MM:SS' (UTC)
	echo "+$(( $(date -u -d "$1" +%s) - $(date -u +%s) ))" >"$CLOCK"
}
echo "+0" >"$CLOCK"
[ "$(id -u)" -ne 0 ] || chown postgres "$CLOCK"
FAKE_ENV=(LD_PRELOAD="$W/clockshift.so" CLOCKSHIFT_FILE="$CLOCK")

mkdir -p "$W/fixtures"
export TG_TEST_DIR=$W/fixtures TG_TOKENS_SQL=$W/fixtures/tokens.sql
TG_SERVER_ENV="${FAKE_ENV[*]}" tg_start_cluster "$W/pg" "shared_preload_libraries = 'tenant_guard'" \
	"timezone = 'UTC'" >/dev/null

FILES="audit_record audit_statements audit_verify audit_features support_sessions support_txn lifecycle_export lifecycle_purge
lifecycle_upgrade"
PGXS_DIR=$(dirname "$(pg_config --pgxs)")
failed=0
# Earliest first: the server's clock only moves forward from one to the next.
plan=$(for inst in "${instants[@]}"; do echo "$(instant_times "$inst") | $inst"; done | sort)
while IFS= read -r line; do
	at=${line%% | *}
	rest=${line#* | }
	boundary=${rest%% | *}
	inst=${rest##* | }
	tg_log "clock: $inst (files from $at UTC; month change $boundary UTC)"
	# Tokens are made under the moved clock, like the server's own time.
	set_clock "$at"
	env "${FAKE_ENV[@]}" /usr/bin/python3 "$ROOT/test/fixtures/make_fixtures.py" "$TG_TEST_DIR" >/dev/null
	[ "$(id -u)" -ne 0 ] || chown -R postgres:postgres "$TG_TEST_DIR"
	set_clock "$at"
	server_now=$(psql -X -At -c "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')")
	[ "$server_now" = "$(date -u -d "$at" '+%Y-%m-%d %H:%M')" ] \
		|| [ "$server_now" = "$(date -u -d "$at 1 minute" '+%Y-%m-%d %H:%M')" ] \
		|| { echo "FAIL: the server's clock says $server_now, not $at"; exit 1; }
	nfiles=0
	for f in $FILES; do
		mkdir -p "$W/regress/$inst/$f"
		if "$PGXS_DIR/../test/regress/pg_regress" --inputdir="$ROOT" --outputdir="$W/regress/$inst/$f" \
			--bindir="$(pg_config --bindir)" --dbname="regress_clock_$f" --load-extension=tenant_guard \
			"$f" >"$W/regress/$inst/$f/pg_regress.log" 2>&1; then
			nfiles=$((nfiles + 1))
			psql -X -q -c "DROP DATABASE regress_clock_$f"
		else
			head -150 "$W/regress/$inst/$f/regression.diffs" 2>/dev/null || cat "$W/regress/$inst/$f/pg_regress.log"
			failed=$((failed + 1))
			echo "FAIL: $inst: regress.$f differs under the moved clock"
		fi
	done
	echo "ok: $inst: $nfiles regress files pass from $at UTC"
	db=clock_$inst
	psql -X -q -c "CREATE DATABASE $db"
	out=$W/month_change_$inst.out
	psql -X -q -d "$db" -v clock_file="$CLOCK" -v boundary="$boundary UTC" \
		<"$HERE/month_change.sql" >"$out" 2>&1 || true
	if diff -u "$HERE/month_change.out" "$out" >"$out.diff"; then
		echo "ok: $inst: month change at $boundary UTC, missing partition, 25-month retention"
	else
		cat "$out.diff"
		failed=$((failed + 1))
		echo "FAIL: $inst: month_change.sql differs"
	fi
	psql -X -q -c "DROP DATABASE $db"
done <<<"$plan"
set_clock "$(date -u '+%Y-%m-%d %H:%M:%S')"
[ "$failed" -eq 0 ] || { tail -30 "$W/pg/server.log"; exit 1; }
echo "ok: clock harness passed at ${instants[*]}"
