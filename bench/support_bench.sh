#!/bin/bash
# bench/support_bench.sh: what support sessions cost (docs/performance.md,
# "Support sessions").
#
# Three contexts, one client each, pgbench -M simple, side by side in rounds
# (order rotated every round), medians over rounds:
#
#   setting   tenant_guard.org_id with context_source = setting, in a backend
#             that never had a support session (pays the hook's boolean test)
#   ended     the setting source in a backend whose support session ended
#             (its first transaction redeems a grant and ends it): the hook
#             compares the context text with the ended session's, nothing more
#   support   a live support session (first transaction redeems a grant):
#             every statement pays the expiry/revocation check
#
# Shapes:
#   stmt      one statement per transaction: SELECT current_user_org_id()
#             (median per-transaction latency, µs)
#   percall   SELECT count(current_user_org_id()) FROM generate_series(1, 1e6):
#             one statement, a million context reads (median latency, ms;
#             divide by 10^6 for the per-call cost)
#   fetch     BEGIN; DECLARE a cursor; 10 x FETCH 1; COMMIT: a cursor's runs
#             after its start, each a statement (median per-transaction
#             latency, µs; in a live session each FETCH is checked)
#
# Reports only; nothing is asserted about timings. About 1 minute.
# Usage: bash bench/support_bench.sh
# Knobs: TG_BENCH_ROUNDS (5), TG_BENCH_STMT_TX (3000), TG_BENCH_PERCALL_TX (3),
# TG_BENCH_FETCH_TX (1000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/lib.sh

export LANG=C.UTF-8
ROUNDS=${TG_BENCH_ROUNDS:-5}
STMT_TX=${TG_BENCH_STMT_TX:-3000}
PERCALL_TX=${TG_BENCH_PERCALL_TX:-3}
FETCH_TX=${TG_BENCH_FETCH_TX:-1000}
ORG=11111111-1111-4111-8111-111111111111

tg_bench_start tg_support_bench
"$PSQL" -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION tenant_guard"

mkdir -p "$WORK/scripts" "$WORK/log"
START_SUPPORT="\\if :started = 0
SELECT quote_literal(tenant_guard.issue_support_grant('$ORG', 'bench-agent', 'benchmark')) AS tok \\gset
CALL tenant_guard.begin_support_session(:tok);
\\set started 1
\\endif"
END_SUPPORT="\\if :started = 0
SELECT quote_literal(tenant_guard.issue_support_grant('$ORG', 'bench-agent', 'benchmark')) AS tok \\gset
CALL tenant_guard.begin_support_session(:tok);
SELECT tenant_guard.end_support_session();
\\set started 1
\\endif"
STMT="SELECT tenant_guard.current_user_org_id();"
PERCALL="SELECT count(tenant_guard.current_user_org_id()) FROM generate_series(1, 1000000);"
printf '%s\n' "$STMT" >"$WORK/scripts/stmt.setting"
printf '%s\n%s\n' "$END_SUPPORT" "$STMT" >"$WORK/scripts/stmt.ended"
printf '%s\n%s\n' "$START_SUPPORT" "$STMT" >"$WORK/scripts/stmt.support"
FETCH="BEGIN;
DECLARE c CURSOR FOR SELECT tenant_guard.current_user_org_id() FROM generate_series(1, 100);
$(for _ in 1 2 3 4 5 6 7 8 9 10; do echo 'FETCH 1 FROM c;'; done)
COMMIT;"
printf '%s\n' "$FETCH" >"$WORK/scripts/fetch.setting"
printf '%s\n%s\n' "$END_SUPPORT" "$FETCH" >"$WORK/scripts/fetch.ended"
printf '%s\n%s\n' "$START_SUPPORT" "$FETCH" >"$WORK/scripts/fetch.support"
printf '%s\n' "$PERCALL" >"$WORK/scripts/percall.setting"
printf '%s\n%s\n' "$END_SUPPORT" "$PERCALL" >"$WORK/scripts/percall.ended"
printf '%s\n%s\n' "$START_SUPPORT" "$PERCALL" >"$WORK/scripts/percall.support"

OPTS="-c tenant_guard.context_source=setting -c tenant_guard.org_id=$ORG"
measure() { # shape variant: median per-transaction latency in µs (first transaction excluded)
	local tx=$STMT_TX
	[ "$1" = percall ] && tx=$PERCALL_TX
	[ "$1" = fetch ] && tx=$FETCH_TX
	PGOPTIONS=$OPTS "$PGBENCH" -n -M simple -c 1 -t $((tx + 1)) -D started=0 -l --log-prefix="$WORK/log/m" \
		-f "$WORK/scripts/$1.$2" >/dev/null
	# drop the first transaction (the redemption) of the log
	for f in "$WORK"/log/m.*; do tail -n +2 "$f" >"$f.tmp" && mv "$f.tmp" "$f"; done
	median_latency "$WORK/log/m"
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
VARIANTS=(setting ended support)
for shape in stmt percall fetch; do
	tg_log "measuring $shape"
	for ((r = 0; r < ROUNDS; r++)); do
		for v in $(rotated "$r" "${VARIANTS[@]}"); do
			echo "$shape $r $v $(measure "$shape" "$v")" >>"$RESULTS"
		done
	done
done
# Every support session was audited and is still checked.
GRANTS=$("$PSQL" -X -At -c "SELECT count(*) FROM tenant_guard.support_grants WHERE redeemed_at IS NOT NULL")

echo
echo "Support sessions: median over $ROUNDS rounds, 1 client, pgbench -M simple ($GRANTS grants redeemed)"
echo
echo "| shape | setting source, never a support session | after a support session ended | live support session | live / setting |"
echo "| --- | --- | --- | --- | --- |"
RESULTS=$RESULTS python3 - <<'PY'
import os, statistics
rows = [l.split() for l in open(os.environ["RESULTS"])]
for shape, unit in (("stmt", " µs/statement"), ("percall", " µs/10^6 reads"), ("fetch", " µs/10 FETCHes")):
    m = {v: statistics.median(float(r[3]) for r in rows if r[0] == shape and r[2] == v)
         for v in ("setting", "ended", "support")}
    print(f"| {shape} | {m['setting']:.1f}{unit} | {m['ended']:.1f}{unit} | {m['support']:.1f}{unit} | "
          f"{m['support'] / m['setting']:.2f} |")
PY
echo
echo "Settings: ${SETTINGS[*]}"
