#!/bin/bash
# bench/context_bench.sh: what the tenant predicate costs.
#
# Compares, in one run, tenant_guard.current_user_org_id() (claims and
# setting sources) with the plain-SQL forms applications write today, each
# unwrapped and wrapped as (SELECT ...), against an explicit filter
# `org_id = $1`, on a 1,000,000-row table over 1000 tenants:
#
#   point    point select by primary key plus the tenant predicate
#            (pgbench, 2 clients, -M prepared, fixed duration; tps)
#   count    one-tenant count through the org_id index (median latency)
#   scan     the same count with index scans disabled: a sequential scan that
#            evaluates the predicate on every row (median latency)
#   percall  count(<form>) over generate_series(1, 1000000): the cost of one
#            evaluation of each unwrapped form, without a table (plus
#            tenant_guard with a 1 KB claims object)
#
# Variants run back to back in rounds, each run between two runs of the
# explicit baseline, in an order rotated every round; figures are medians (the
# host is shared and noisy). Prints Markdown (docs/performance.md quotes a
# run). Reports only: nothing is asserted about timings. About 5 minutes on
# 2 cores.
#
# Usage: bash bench/context_bench.sh
# Knobs (environment): TG_BENCH_POINT_ROUNDS (7), TG_BENCH_POINT_SECONDS (1),
# TG_BENCH_CLIENTS (2), TG_BENCH_COUNT_ROUNDS (5), TG_BENCH_COUNT_TX (100),
# TG_BENCH_SCAN_ROUNDS (10), TG_BENCH_SCAN_TX (1), TG_BENCH_PERCALL_ROUNDS (8),
# TG_BENCH_PERCALL_TX (1); KEEP_BENCH_DIR=1 keeps the work directory (raw
# results, pgbench scripts, every plan).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/lib.sh

export LANG=C.UTF-8
POINT_ROUNDS=${TG_BENCH_POINT_ROUNDS:-7}
POINT_SECONDS=${TG_BENCH_POINT_SECONDS:-1}
COUNT_ROUNDS=${TG_BENCH_COUNT_ROUNDS:-5}
COUNT_TX=${TG_BENCH_COUNT_TX:-100}
SCAN_ROUNDS=${TG_BENCH_SCAN_ROUNDS:-10}
SCAN_TX=${TG_BENCH_SCAN_TX:-1}
PERCALL_ROUNDS=${TG_BENCH_PERCALL_ROUNDS:-8}
PERCALL_TX=${TG_BENCH_PERCALL_TX:-1}
CLIENTS=${TG_BENCH_CLIENTS:-2}
TENANT_K=42 # the benchmark tenant: rows 42, 1042, ..., 999042
T0=$(date +%s)

tg_bench_start tg_bench

tg_log "building bench.items (1,000,000 rows, 1000 tenants)"
"$PSQL" -X -q -v ON_ERROR_STOP=1 -f bench/context/setup.sql >"$WORK/setup.out"
ORG=$("$PSQL" -X -At -c "SELECT org_id FROM bench.orgs WHERE k = $TENANT_K")
CLAIMS="{\"org_id\":\"$ORG\",\"sub\":\"bench-user\"}"
# A PostgREST/Supabase-style claims object of about 1 KB, org_id last (no
# whitespace anywhere: PGOPTIONS is split on it).
CLAIMS_1K=$(ORG=$ORG python3 -c '
import json, os
c = {"aud": "authenticated", "exp": 4102444800, "iat": 1700000000, "iss": "https://auth.example.com/auth/v1",
     "sub": "6f1c2b9e-5d7a-4e0b-9a43-1c2d3e4f5a6b", "email": "bench.user@example.com", "phone": "",
     "app_metadata": {"provider": "email", "providers": ["email"]}, "role": "authenticated", "aal": "aal1",
     "amr": [{"method": "password", "timestamp": 1700000000}], "session_id": "0b4c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d",
     "user_metadata": {"name": "Bench_User", "locale": "en", "notes": ""}}
c["user_metadata"]["notes"] = "x" * (1000 - len(json.dumps(c, separators=(",", ":"))) - 50)
c["org_id"] = os.environ["ORG"]
print(json.dumps(c, separators=(",", ":")))')

# Every connection carries every context; a variant only picks the source.
# PGOPTIONS is split on whitespace by the server: the values contain none.
BASE_OPTS="-c app.org_id=$ORG -c tenant_guard.org_id=$ORG"
SEQ_OPTS="-c enable_indexscan=off -c enable_bitmapscan=off -c enable_indexonlyscan=off"

# name|label|expression|context_source
VARIANTS=(
	"explicit|explicit \`org_id = \$1\` (baseline)|:org|claims"
	"tg_claims|\`tenant_guard.current_user_org_id()\`, claims source|tenant_guard.current_user_org_id()|claims"
	"tg_claims_w|\`(SELECT tenant_guard.current_user_org_id())\`, claims source|(SELECT tenant_guard.current_user_org_id())|claims"
	"tg_setting|\`tenant_guard.current_user_org_id()\`, setting source|tenant_guard.current_user_org_id()|setting"
	"tg_setting_w|\`(SELECT tenant_guard.current_user_org_id())\`, setting source|(SELECT tenant_guard.current_user_org_id())|setting"
	"cs|\`current_setting('app.org_id')::uuid\`|current_setting('app.org_id')::uuid|claims"
	"cs_w|\`(SELECT current_setting('app.org_id')::uuid)\`|(SELECT current_setting('app.org_id')::uuid)|claims"
	"nullif|\`NULLIF(current_setting('app.org_id', true), '')::uuid\`|NULLIF(current_setting('app.org_id', true), '')::uuid|claims"
	"nullif_w|\`(SELECT NULLIF(current_setting('app.org_id', true), '')::uuid)\`|(SELECT NULLIF(current_setting('app.org_id', true), '')::uuid)|claims"
	"jsonb|\`(current_setting('request.jwt.claims', true)::jsonb ->> 'org_id')::uuid\`|(current_setting('request.jwt.claims', true)::jsonb ->> 'org_id')::uuid|claims"
	"jsonb_w|\`(SELECT (current_setting('request.jwt.claims', true)::jsonb ->> 'org_id')::uuid)\`|(SELECT (current_setting('request.jwt.claims', true)::jsonb ->> 'org_id')::uuid)|claims"
)
declare -A LABEL FORM SOURCE CLAIMS_OF
NAMES=()
for v in "${VARIANTS[@]}"; do
	IFS='|' read -r name label form source <<<"$v"
	NAMES+=("$name"); LABEL[$name]=$label; FORM[$name]=$form; SOURCE[$name]=$source; CLAIMS_OF[$name]=$CLAIMS
done
# Per-call only: tenant_guard with the 1 KB claims object.
LABEL[tg_claims_1k]="\`tenant_guard.current_user_org_id()\`, claims source, 1 KB claims"
FORM[tg_claims_1k]=${FORM[tg_claims]}; SOURCE[tg_claims_1k]=claims; CLAIMS_OF[tg_claims_1k]=$CLAIMS_1K
# percall: the unwrapped forms only (a wrapped form is evaluated once).
PERCALL_NAMES=(explicit tg_claims tg_claims_1k tg_setting cs nullif jsonb)

opts_for() { # variant [extra options]
	echo "$BASE_OPTS -c request.jwt.claims=${CLAIMS_OF[$1]} -c tenant_guard.context_source=${SOURCE[$1]}${2:+ $2}"
}

# The pgbench script of one shape and variant; for psql, :org as a literal.
mkdir -p "$WORK/scripts" "$WORK/log"
script_for() { # shape variant
	local f=$WORK/scripts/$1.$2.pgbench
	if [ ! -f "$f" ]; then
		local form=${FORM[$2]}
		[ "$1" = percall ] && [ "$2" = explicit ] && form=':org::uuid' # a constant
		FORM_TEXT=$form python3 -c 'import os,sys; sys.stdout.write(sys.stdin.read().replace("@FORM@", os.environ["FORM_TEXT"]))' \
			<"bench/context/$1.pgbench" >"$f"
	fi
	echo "$f"
}
sql_for() { # shape variant: the script's statement with :org and :id as literals
	grep -v -e '^--' -e '^\\' "$(script_for "$1" "$2")" | sed -e "s/:org/'$ORG'/g" -e "s/:id/$((1000 * 500 + TENANT_K))/g"
}

run_pgbench() { # variant extra-options pgbench-args...
	local v=$1 extra=$2; shift 2
	PGOPTIONS=$(opts_for "$v" "$extra") "$PGBENCH" -n -M prepared -D org="$ORG" -D tenant_k=$TENANT_K "$@"
}

# --- correctness and plans: every variant must see exactly the tenant's rows
tg_log "checking every variant"
for v in "${NAMES[@]}"; do
	n=$(PGOPTIONS=$(opts_for "$v") "$PSQL" -X -At -c "$(sql_for count "$v")")
	ns=$(PGOPTIONS=$(opts_for "$v" "$SEQ_OPTS") "$PSQL" -X -At -c "$(sql_for scan "$v")")
	p=$(PGOPTIONS=$(opts_for "$v") "$PSQL" -X -At -c "$(sql_for point "$v")" | wc -l)
	if [ "$n" != 1000 ] || [ "$ns" != 1000 ] || [ "$p" != 1 ]; then
		echo "variant $v: count $n, scan $ns, point rows $p (want 1000, 1000, 1)" >&2
		exit 1
	fi
	for shape in point count scan; do
		extra=; [ "$shape" = scan ] && extra=$SEQ_OPTS
		{
			echo "### $shape / $v"
			PGOPTIONS=$(opts_for "$v" "$extra") "$PSQL" -X -At -c "EXPLAIN (COSTS OFF) $(sql_for "$shape" "$v")"
		} >>"$WORK/plans.txt"
	done
done
got=$(PGOPTIONS=$(opts_for tg_claims_1k) "$PSQL" -X -At -c "SELECT tenant_guard.current_user_org_id()")
[ "$got" = "$ORG" ] || { echo "1 KB claims: got '$got', want $ORG" >&2; exit 1; }
if awk '/^### / { shape = $2; next } shape == "scan" && /Index/ { bad = 1 } END { exit !bad }' "$WORK/plans.txt"; then
	echo "a scan plan uses an index:" >&2; cat "$WORK/plans.txt" >&2; exit 1
fi

# --- measurements. The host is shared and noisy, so every variant run sits
# between two runs of the explicit baseline (E V1 E V2 ... E), and a
# variant's ratio is taken against the mean of its two neighbours, then the
# median over rounds. The variant order rotates by one every round. A warm-up
# pass (not recorded) comes first.
RESULTS=$WORK/results.tsv # shape round seq variant value
: >"$RESULTS"

measure() { # shape variant: prints tps (point) or the median latency in µs
	local shape=$1 v=$2 out tps
	case $shape in
	point)
		out=$(run_pgbench "$v" "" -c "$CLIENTS" -j "$CLIENTS" -T "$POINT_SECONDS" -f "$(script_for point "$v")")
		tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
		[ -n "$tps" ] || { echo "$out" >&2; return 1; }
		echo "$tps" ;;
	count)
		run_pgbench "$v" "" -c 1 -t "$COUNT_TX" -f "$(script_for count "$v")" -l --log-prefix="$WORK/log/m" >/dev/null
		median_latency "$WORK/log/m" ;;
	scan)
		run_pgbench "$v" "$SEQ_OPTS" -c 1 -t "$SCAN_TX" -f "$(script_for scan "$v")" -l --log-prefix="$WORK/log/m" >/dev/null
		median_latency "$WORK/log/m" ;;
	percall)
		run_pgbench "$v" "" -c 1 -t "$PERCALL_TX" -f "$(script_for percall "$v")" -l --log-prefix="$WORK/log/m" >/dev/null
		median_latency "$WORK/log/m" ;;
	esac
}

tg_log "warm-up"
for v in "${NAMES[@]}"; do
	run_pgbench "$v" "" -c 1 -t 20 -f "$(script_for point "$v")" >/dev/null
	run_pgbench "$v" "" -c 1 -t 5 -f "$(script_for count "$v")" >/dev/null
	run_pgbench "$v" "$SEQ_OPTS" -c 1 -t 1 -f "$(script_for scan "$v")" >/dev/null
done

OTHERS=("${NAMES[@]:1}")
tg_log "point selects: $POINT_ROUNDS rounds of ${#NAMES[@]} variants + baselines, ${POINT_SECONDS}s each, $CLIENTS clients"
phase point "$POINT_ROUNDS" "${OTHERS[@]}"
tg_log "one-tenant counts: $COUNT_ROUNDS rounds x $COUNT_TX transactions"
phase count "$COUNT_ROUNDS" "${OTHERS[@]}"
tg_log "full scans: $SCAN_ROUNDS rounds x $SCAN_TX transactions"
phase scan "$SCAN_ROUNDS" "${OTHERS[@]}"
tg_log "per-call: $PERCALL_ROUNDS rounds x $PERCALL_TX transactions"
phase percall "$PERCALL_ROUNDS" "${PERCALL_NAMES[@]:1}"

# --- report
{
	for v in "${NAMES[@]}" tg_claims_1k; do printf 'label\t%s\t%s\n' "$v" "${LABEL[$v]}"; done
} >"$WORK/labels.tsv"

echo
echo "# tenant context benchmark"
echo
echo "PostgreSQL $("$PSQL" -X -At -c 'SHOW server_version'), $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(date -u '+%Y-%m-%d %H:%M UTC')."
echo "bench.items: 1,000,000 rows, 1000 tenants of 1000 rows; $("$PSQL" -X -At -F ' heap, ' -c "SELECT pg_size_pretty(pg_table_size('bench.items')), pg_size_pretty(pg_indexes_size('bench.items'))") indexes."
printf 'Settings: %s' "${SETTINGS[0]}"; printf ', %s' "${SETTINGS[@]:1}"; echo "; pgbench -M prepared."
echo "Point select: $POINT_ROUNDS rounds, ${POINT_SECONDS}s runs, $CLIENTS clients (-j $CLIENTS). One-tenant count: $COUNT_ROUNDS rounds of $COUNT_TX"
echo "transactions per run; full scan: $SCAN_ROUNDS rounds of $SCAN_TX; per-call: $PERCALL_ROUNDS rounds of $PERCALL_TX (1 client). Every"
echo "variant run is flanked by two explicit-baseline runs."
echo
python3 - "$RESULTS" "$WORK/labels.tsv" <<'PY'
import statistics, sys
from collections import defaultdict

runs = defaultdict(list)  # (shape, round) -> [(seq, variant, value)]
for line in open(sys.argv[1]):
    shape, r, seq, v, val = line.split()
    runs[(shape, int(r))].append((int(seq), v, float(val)))
labels, order = {}, []
for line in open(sys.argv[2]):
    _, v, label = line.rstrip("\n").split("\t")
    labels[v] = label
    order.append(v)

values = defaultdict(list)  # (shape, v) -> absolute values of every run
ratios = defaultdict(list)  # (shape, v) -> value / mean of the neighbouring baselines
diffs = defaultdict(list)   # (shape, v) -> value - mean of the neighbouring baselines
for (shape, _), rs in runs.items():
    rs.sort()
    for i, (_, v, val) in enumerate(rs):
        values[(shape, v)].append(val)
        if v == "explicit":
            continue
        base = (rs[i - 1][2] + rs[i + 1][2]) / 2
        ratios[(shape, v)].append(val / base)
        diffs[(shape, v)].append(val - base)

med = lambda x: statistics.median(x)

def ratio(shape, v):
    if v == "explicit":
        return "1.00x"
    x = ratios[(shape, v)]
    return f"{med(x):.2f}x ({min(x):.2f}-{max(x):.2f})"

print("| form | point select tps | vs explicit | one-tenant count ms | vs explicit | full scan ms | vs explicit |")
print("|---|--:|--:|--:|--:|--:|--:|")
for v in order:
    if ("point", v) not in values:
        continue
    p, c, s = med(values[("point", v)]), med(values[("count", v)]) / 1000, med(values[("scan", v)]) / 1000
    print(f"| {labels[v]} | {p:,.0f} | {ratio('point', v)} | {c:.3f} | {ratio('count', v)} | {s:.1f} | {ratio('scan', v)} |")
print()
print("Absolute figures: median of all runs. Ratios: median over rounds of the run against the mean of the two")
print("explicit runs next to it (min-max over rounds in brackets). Point select: tps, higher is better, the ratio is")
print("tps / explicit tps. One-tenant count and full scan: median latency, lower is better, the ratio is time /")
print("explicit time.")
print()

def ns(shape, v):  # µs per query over 1,000,000 evaluations -> ns per evaluation
    return med(diffs[(shape, v)]) / 1000 if (shape, v) in diffs else None

print("Per-row cost of the unwrapped forms, in ns per evaluation: from the full scan (form - explicit filter, over")
print("1,000,000 rows) and from `count(form)` over `generate_series(1, 1000000)` (form - a constant). Median over")
print("rounds of the difference against the neighbouring baseline runs.")
print()
print("| form | full scan, ns/row | jsonb form / this | per-call, ns | jsonb form / this | per-call query ms |")
print("|---|--:|--:|--:|--:|--:|")
js, jc = ns("scan", "jsonb"), ns("percall", "jsonb")
for v in ("tg_claims", "tg_claims_1k", "tg_setting", "cs", "nullif", "jsonb"):
    s, c = ns("scan", v), ns("percall", v)
    fs = "-" if s is None else f"{s:.0f}"
    rs = "-" if s is None or v == "jsonb" or s <= 0 else f"{js / s:.1f}x"
    rc = "-" if v == "jsonb" or c <= 0 else f"{jc / c:.1f}x"
    print(f"| {labels[v]} | {fs} | {rs} | {c:.0f} | {rc} | {med(values[('percall', v)]) / 1000:.1f} |")
print(f"| constant `$1::uuid` (per-call baseline) | - | - | 0 | - | {med(values[('percall', 'explicit')]) / 1000:.1f} |")
PY
echo
echo "EXPLAIN (COSTS OFF) of the wrapped tenant_guard form on the one-tenant count:"
echo
echo '```'
echo "$(sql_for count tg_claims_w)" | sed 's/^/-- /'
PGOPTIONS=$(opts_for tg_claims_w) "$PSQL" -X -At -c "EXPLAIN (COSTS OFF) $(sql_for count tg_claims_w)"
echo '```'
echo
echo "Full-scan plan of the unwrapped tenant_guard form (function evaluated per row):"
echo
echo '```'
PGOPTIONS=$(opts_for tg_claims "$SEQ_OPTS") "$PSQL" -X -At -c "EXPLAIN (COSTS OFF) $(sql_for scan tg_claims)"
echo '```'
echo
echo "Total run time: $(($(date +%s) - T0)) s."
if [ -n "${KEEP_BENCH_DIR:-}" ]; then echo "Raw results, scripts and plans: $WORK"; fi
