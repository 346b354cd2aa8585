#!/bin/bash
# bench/protect_bench.sh: what a table protected by tenant_guard.protect()
# costs against an unprotected table queried with an explicit filter.
#
# On 1,000,000 rows over 1000 tenants (bench/protect/setup.sql: the same rows
# in four tables), as a non-superuser application role (row-level security
# does not apply to superusers), compares in one run:
#
#   explicit     bench.plain (no RLS) + explicit `org_id = $1` (baseline)
#   generic      the same with plan_cache_mode = force_generic_plan
#                (count and scan only: the baseline's plan-cache choice, see the report)
#   guarded      bench.guarded (protect()'d), no filter: the policy alone
#   guarded_f    bench.guarded + the explicit filter as well
#   handrls      hand-written policy org_id = current_setting('app.org_id')::uuid
#   handjwt      hand-written policy on the jsonb claims:
#                org_id = (current_setting('request.jwt.claims', true)::jsonb ->> 'org_id')::uuid
#
# in four query shapes:
#
#   point    point select by primary key within the tenant (pgbench -M
#            prepared, $TG_BENCH_CLIENTS clients, fixed duration; tps)
#   point4   the same with 4 clients on the 2 cores (oversubscribed)
#   count    one-tenant count(*) through the org_id index (median latency)
#   scan     one-tenant sum(length(payload)): the tenant's 1000 rows read
#            from the heap through the org_id index (median latency)
#
# The method is bench/context_bench.sh's: every variant run sits between two
# runs of the baseline, in an order rotated every round; figures are medians
# of the paired ratios. Prints Markdown (docs/performance.md quotes a run).
# Reports only: nothing is asserted about timings. About 5 minutes on 2 cores.
#
# Usage: bash bench/protect_bench.sh
# Knobs (environment): TG_BENCH_POINT_ROUNDS (13), TG_BENCH_POINT_SECONDS (1),
# TG_BENCH_CLIENTS (2), TG_BENCH_POINT4_ROUNDS (7), TG_BENCH_COUNT_ROUNDS (9),
# TG_BENCH_COUNT_TX (500), TG_BENCH_SCAN_ROUNDS (9), TG_BENCH_SCAN_TX (200);
# KEEP_BENCH_DIR=1 keeps the work directory (raw results, pgbench scripts,
# every plan).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/lib.sh
trap 'echo "bench/protect_bench.sh: failed at line $LINENO" >&2' ERR

export LANG=C.UTF-8
POINT_ROUNDS=${TG_BENCH_POINT_ROUNDS:-13}
POINT_SECONDS=${TG_BENCH_POINT_SECONDS:-1}
POINT4_ROUNDS=${TG_BENCH_POINT4_ROUNDS:-7}
CLIENTS=${TG_BENCH_CLIENTS:-2}
COUNT_ROUNDS=${TG_BENCH_COUNT_ROUNDS:-9}
COUNT_TX=${TG_BENCH_COUNT_TX:-500}
SCAN_ROUNDS=${TG_BENCH_SCAN_ROUNDS:-9}
SCAN_TX=${TG_BENCH_SCAN_TX:-200}
TENANT_K=42 # the benchmark tenant: rows 42, 1042, ..., 999042
APP_ROLE=bench_app
T0=$(date +%s)

tg_bench_start tg_pbench

tg_log "building bench.plain, bench.guarded (protect()), bench.handrls, bench.handjwt (1,000,000 rows each)"
"$PSQL" -X -q -v ON_ERROR_STOP=1 -f bench/protect/setup.sql >"$WORK/setup.out" 2>&1 || { cat "$WORK/setup.out" >&2; exit 1; }
if ! awk '/same_rows/ { getline; getline; exit !($1 == "t") }' "$WORK/setup.out"; then
	echo "the four tables do not hold the same rows:" >&2; cat "$WORK/setup.out" >&2; exit 1
fi
if [ "$("$PSQL" -X -At -c "SELECT count(*) FROM pg_class WHERE relnamespace = 'bench'::regnamespace
                              AND relname IN ('plain', 'guarded', 'handrls', 'handjwt') AND relallvisible = relpages")" != 4 ]; then
	echo "the four tables are not all all-visible:" >&2; cat "$WORK/setup.out" >&2; exit 1
fi
# The plans below are also captured with EXPLAIN ANALYZE as the application
# role, which the runtime guard refuses by default: the role's sessions turn
# it off (a role setting made by a superuser; the measured statements are
# not EXPLAIN, so the guard costs them nothing either way).
"$PSQL" -X -q -c "ALTER ROLE $APP_ROLE SET tenant_guard.block_explain_analyze = off"
ORG=$("$PSQL" -X -At -c "SELECT org_id FROM bench.orgs WHERE k = $TENANT_K")
OTHER_ORG=$("$PSQL" -X -At -c "SELECT org_id FROM bench.orgs WHERE k = $((TENANT_K + 1))")
CLAIMS="{\"org_id\":\"$ORG\",\"sub\":\"bench-user\"}"

# Every connection is the application role and carries every context (the
# claims for tenant_guard's default claims source and for handjwt, app.org_id
# for handrls). PGOPTIONS is split on whitespace by the server: none in them.
export PGUSER=$APP_ROLE
opts_for() { # variant
	echo "-c request.jwt.claims=$CLAIMS -c app.org_id=$ORG${EXTRA[$1]:+ ${EXTRA[$1]}}"
}

# name|label|table|explicit filter (1) or not (0)|extra options
VARIANTS=(
	"explicit|\`bench.plain\` + explicit \`org_id = \$1\` (baseline)|bench.plain|1|"
	"generic|\`bench.plain\` + explicit \`org_id = \$1\`, \`plan_cache_mode = force_generic_plan\`|bench.plain|1|-c plan_cache_mode=force_generic_plan"
	"guarded|\`bench.guarded\` (protect()), no filter: the policy alone|bench.guarded|0|"
	"guarded_f|\`bench.guarded\` (protect()) + explicit \`org_id = \$1\`|bench.guarded|1|"
	"handrls|\`bench.handrls\`, hand-written \`org_id = current_setting('app.org_id')::uuid\`|bench.handrls|0|"
	"handjwt|\`bench.handjwt\`, hand-written \`org_id = (current_setting('request.jwt.claims', true)::jsonb ->> 'org_id')::uuid\`|bench.handjwt|0|"
)
declare -A LABEL TABLE FILTER EXTRA
NAMES=()
for v in "${VARIANTS[@]}"; do
	IFS='|' read -r name label table filter extra <<<"$v"
	NAMES+=("$name"); LABEL[$name]=$label; TABLE[$name]=$table; FILTER[$name]=$filter; EXTRA[$name]=$extra
done
# The variants measured per shape besides the baseline. force_generic_plan
# changes nothing on the point select (its plan goes generic by itself).
POINT_VARIANTS=(guarded guarded_f handrls handjwt)
SCAN_VARIANTS=(generic guarded guarded_f handrls handjwt)

template_of() { # shape: the pgbench template file
	case $1 in point | point4) echo bench/protect/point.pgbench ;; *) echo "bench/protect/$1.pgbench" ;; esac
}

# The pgbench script of one shape and variant; for psql, :org and :id as literals.
mkdir -p "$WORK/scripts" "$WORK/log"
script_for() { # shape variant
	local f=$WORK/scripts/$1.$2.pgbench
	if [ ! -f "$f" ]; then
		local and= where=
		[ "${FILTER[$2]}" = 1 ] && { and=" AND org_id = :org"; where=" WHERE org_id = :org"; }
		sed -e "s/@TABLE@/${TABLE[$2]}/g" -e "s/@AND_FILTER@/$and/g" -e "s/@WHERE_FILTER@/$where/g" \
			"$(template_of "$1")" >"$f"
	fi
	echo "$f"
}
sql_for() { # shape variant [id]: the script's statement with :org and :id as literals
	grep -v -e '^--' -e '^\\' "$(script_for "$1" "$2")" | sed -e "s/:org/'$ORG'/g" -e "s/:id/${3:-$((1000 * 500 + TENANT_K))}/g"
}
# The statement as pgbench -M prepared runs it: :id and :org become $1, $2 in
# that order.
prepared_for() { # shape variant
	local org='$1'
	case $1 in point | point4) org='$2' ;; esac
	grep -v -e '^--' -e '^\\' "$(script_for "$1" "$2")" | sed -e 's/:id/$1/g' -e "s/:org/$org/g" -e 's/;$//'
}
params_for() { # shape variant: the parameters of prepared_for's statement
	local p=()
	case $1 in point | point4) p+=("$((1000 * 500 + TENANT_K))") ;; esac
	[ "${FILTER[$2]}" = 1 ] && p+=("'$ORG'")
	[ ${#p[@]} -gt 0 ] && (IFS=,; echo "(${p[*]})") || true
}
param_types_for() {
	local p=()
	case $1 in point | point4) p+=(bigint) ;; esac
	[ "${FILTER[$2]}" = 1 ] && p+=(uuid)
	if [ ${#p[@]} -gt 0 ]; then (IFS=,; echo "(${p[*]})"); fi
}
psql_as_app() { # variant psql-args...: psql as the application role with the variant's options
	local v=$1; shift
	PGOPTIONS=$(opts_for "$v") "$PSQL" -X -At -v ON_ERROR_STOP=1 "$@"
}

run_pgbench() { # variant pgbench-args...
	local v=$1; shift
	PGOPTIONS=$(opts_for "$v") "$PGBENCH" -n -M prepared -D org="$ORG" -D tenant_k=$TENANT_K "$@"
}

# --- correctness: every variant sees exactly the tenant's rows, and the
# protected tables none of another tenant's
tg_log "checking every variant"
[ "$(psql_as_app explicit -c 'SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user')" = f ] \
	|| { echo "$APP_ROLE must be neither superuser nor BYPASSRLS" >&2; exit 1; }
WANT_SUM=$(psql_as_app explicit -c "$(sql_for scan explicit)")
[ -n "$WANT_SUM" ] || { echo "no sum for the baseline" >&2; exit 1; }
for v in "${NAMES[@]}"; do
	n=$(psql_as_app "$v" -c "$(sql_for count "$v")")
	s=$(psql_as_app "$v" -c "$(sql_for scan "$v")")
	p=$(psql_as_app "$v" -c "$(sql_for point "$v")" | wc -l)
	if [ "$n" != 1000 ] || [ "$s" != "$WANT_SUM" ] || [ "$p" != 1 ]; then
		echo "variant $v: count $n, sum $s, point rows $p (want 1000, $WANT_SUM, 1)" >&2
		exit 1
	fi
	if [ "${TABLE[$v]}" != bench.plain ]; then
		other=$(psql_as_app "$v" -c "SELECT count(*) FROM ${TABLE[$v]} WHERE id = $((1000 * 500 + TENANT_K + 1)) OR org_id = '$OTHER_ORG'")
		[ "$other" = 0 ] || { echo "variant $v sees $other rows of another tenant" >&2; exit 1; }
	fi
done

# --- plans, as the application role: each statement prepared as pgbench -M
# prepared prepares it and executed 12 times (plan cache statistics); its
# plan with literals (EXPLAIN); and, in another session with plan_cache_mode =
# force_generic_plan, the generic plan pgbench ends up running (EXPLAIN ANALYZE).
tg_log "capturing plans"
: >"$WORK/plans.txt"
: >"$WORK/plancache.tsv"
for v in "${NAMES[@]}"; do
	for shape in point count scan; do
		stmt=$(prepared_for "$shape" "$v")
		params=$(params_for "$shape" "$v")
		{
			echo "PREPARE q$(param_types_for "$shape" "$v") AS $stmt;"
			echo '\o /dev/null'
			for i in $(seq 12); do echo "EXECUTE q$params;"; done
			echo '\o'
			echo "SELECT '$shape', '$v', generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'q';"
		} | psql_as_app "$v" -q -F $'\t' >>"$WORK/plancache.tsv"
		{
			echo "### $shape / $v: $stmt"
			echo "-- EXPLAIN (COSTS OFF)"
			psql_as_app "$v" -c "EXPLAIN (COSTS OFF) $(sql_for "$shape" "$v")"
			echo "-- generic plan of the prepared statement, EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)"
			printf '%s\n' "SET plan_cache_mode = force_generic_plan;" \
				"PREPARE q$(param_types_for "$shape" "$v") AS $stmt;" \
				"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE q$params;" | psql_as_app "$v" -q
		} >>"$WORK/plans.txt"
	done
done
# The protected table's plans must read the tenant through its org_id index
# (count, scan) and evaluate the context in an InitPlan.
for shape in count scan; do
	plan=$(awk -v h="### $shape / guarded:" 'index($0, h) == 1 { on = 1; next } /^### / { on = 0 } on' "$WORK/plans.txt")
	if ! grep -q 'guarded_org_id_idx' <<<"$plan" || ! grep -q 'InitPlan' <<<"$plan"; then
		echo "unexpected plan for $shape / guarded:" >&2; echo "$plan" >&2; exit 1
	fi
done

# --- measurements: every variant run between two runs of the baseline
# (E V1 E V2 ... E); a variant's ratio is taken against the mean of its two
# neighbours, then the median over rounds. The order rotates every round. A
# warm-up pass (not recorded) comes first.
RESULTS=$WORK/results.tsv # shape round seq variant value
: >"$RESULTS"

measure() { # shape variant: prints tps (point, point4) or the median latency in µs
	local shape=$1 v=$2 out tps c
	case $shape in
	point | point4)
		c=$CLIENTS; [ "$shape" = point4 ] && c=4
		out=$(run_pgbench "$v" -c "$c" -j "$c" -T "$POINT_SECONDS" -f "$(script_for "$shape" "$v")")
		tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
		[ -n "$tps" ] || { echo "$out" >&2; return 1; }
		echo "$tps" ;;
	count)
		run_pgbench "$v" -c 1 -t "$COUNT_TX" -f "$(script_for count "$v")" -l --log-prefix="$WORK/log/m" >/dev/null
		median_latency "$WORK/log/m" ;;
	scan)
		run_pgbench "$v" -c 1 -t "$SCAN_TX" -f "$(script_for scan "$v")" -l --log-prefix="$WORK/log/m" >/dev/null
		median_latency "$WORK/log/m" ;;
	esac
}

tg_log "[$(($(date +%s) - T0)) s] warm-up"
for v in "${NAMES[@]}"; do
	run_pgbench "$v" -c 1 -t 200 -f "$(script_for point "$v")" >/dev/null
	run_pgbench "$v" -c 1 -t 20 -f "$(script_for count "$v")" >/dev/null
	run_pgbench "$v" -c 1 -t 20 -f "$(script_for scan "$v")" >/dev/null
done

tg_log "[$(($(date +%s) - T0)) s] point selects: $POINT_ROUNDS rounds of ${#POINT_VARIANTS[@]} variants + baselines, ${POINT_SECONDS}s each, $CLIENTS clients"
phase point "$POINT_ROUNDS" "${POINT_VARIANTS[@]}"
tg_log "[$(($(date +%s) - T0)) s] point selects: $POINT4_ROUNDS rounds, ${POINT_SECONDS}s each, 4 clients"
phase point4 "$POINT4_ROUNDS" "${POINT_VARIANTS[@]}"
tg_log "[$(($(date +%s) - T0)) s] one-tenant counts: $COUNT_ROUNDS rounds x $COUNT_TX transactions"
phase count "$COUNT_ROUNDS" "${SCAN_VARIANTS[@]}"
tg_log "[$(($(date +%s) - T0)) s] one-tenant scans: $SCAN_ROUNDS rounds x $SCAN_TX transactions"
phase scan "$SCAN_ROUNDS" "${SCAN_VARIANTS[@]}"

# --- report
for v in "${NAMES[@]}"; do printf 'label\t%s\t%s\n' "$v" "${LABEL[$v]}"; done >"$WORK/labels.tsv"

echo
echo "# protect() benchmark"
echo
echo "PostgreSQL $("$PSQL" -X -At -c 'SHOW server_version'), $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(date -u '+%Y-%m-%d %H:%M UTC')."
echo "Four tables of the same 1,000,000 rows (1000 tenants of 1000 rows), each $("$PSQL" -X -At -F ' heap, ' -c "SELECT pg_size_pretty(pg_table_size('bench.guarded')), pg_size_pretty(pg_indexes_size('bench.guarded'))") indexes;"
echo "queries as \`$APP_ROLE\` (not superuser, not owner, no BYPASSRLS), tenant_guard's default claims source."
printf 'Settings: %s' "${SETTINGS[0]}"; printf ', %s' "${SETTINGS[@]:1}"; echo "; pgbench -M prepared."
echo "Point select: $POINT_ROUNDS rounds with $CLIENTS clients (-j $CLIENTS) and $POINT4_ROUNDS rounds with 4 clients (-j 4), ${POINT_SECONDS}s runs."
echo "One-tenant count and scan: $COUNT_ROUNDS and $SCAN_ROUNDS rounds of $COUNT_TX and $SCAN_TX transactions per run (1 client)."
echo "Every variant run is flanked by two baseline runs."
echo
python3 - "$RESULTS" "$WORK/labels.tsv" "$CLIENTS" <<'PY'
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
clients = sys.argv[3]

values = defaultdict(list)  # (shape, v) -> absolute values of every run
ratios = defaultdict(list)  # (shape, v) -> value / mean of the neighbouring baselines
for (shape, _), rs in runs.items():
    rs.sort()
    for i, (_, v, val) in enumerate(rs):
        values[(shape, v)].append(val)
        if v == "explicit":
            continue
        ratios[(shape, v)].append(val / ((rs[i - 1][2] + rs[i + 1][2]) / 2))

med = statistics.median

def cell(shape, v, scale, fmt):
    if (shape, v) not in values:
        return "-", "-"
    a = fmt.format(med(values[(shape, v)]) / scale)
    if v == "explicit":
        return a, "1.00x"
    x = ratios[(shape, v)]
    return a, f"{med(x):.2f}x ({min(x):.2f}-{max(x):.2f})"

print(f"| variant | point select tps, {clients} clients | vs baseline | point select tps, 4 clients | vs baseline "
      "| one-tenant count ms | vs baseline | one-tenant scan ms | vs baseline |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
for v in order:
    cells = []
    for shape, scale, fmt in (("point", 1, "{:,.0f}"), ("point4", 1, "{:,.0f}"),
                              ("count", 1000, "{:.3f}"), ("scan", 1000, "{:.3f}")):
        cells += cell(shape, v, scale, fmt)
    print(f"| {labels[v]} | " + " | ".join(cells) + " |")
print()
print("Absolute figures: median of all runs. Ratios: median over rounds of the run against the mean of the two")
print("baseline runs next to it (min-max over rounds in brackets). Point select: tps, higher is better, the ratio")
print("is tps / baseline tps. One-tenant count and scan: median latency, lower is better, the ratio is time /")
print("baseline time.")
PY
echo
echo "Plan cache, after 12 executions of each statement prepared as pgbench -M prepared prepares it (generic / custom plans):"
echo
echo "| variant | point select | one-tenant count | one-tenant scan |"
echo "|---|--:|--:|--:|"
for v in "${NAMES[@]}"; do
	printf '| %s |' "$v"
	for shape in point count scan; do
		awk -F '\t' -v s="$shape" -v v="$v" '$1 == s && $2 == v { printf " %s / %s |", $3, $4 }' "$WORK/plancache.tsv"
	done
	echo
done
for shape in point count scan; do
	echo
	echo "Protected table, policy alone ($shape), as \`$APP_ROLE\`:"
	echo
	echo '```'
	awk -v h="### $shape / guarded:" 'index($0, h) == 1 { on = 1; sub(/^### [^:]*: /, "-- "); print; next } /^### / { on = 0 } on' "$WORK/plans.txt"
	echo '```'
done
echo
echo "Protected table with the explicit filter as well (scan), as \`$APP_ROLE\`: the planner derives a one-time"
echo "filter comparing the context with the parameter, in a Result node above the scan:"
echo
echo '```'
awk -v h="### scan / guarded_f:" 'index($0, h) == 1 { on = 1; sub(/^### [^:]*: /, "-- "); print; next } /^### / { on = 0 } on' "$WORK/plans.txt" \
	| awk '/^-- generic plan/ { on = 1 } on || /^-- SELECT/'
echo '```'
echo
echo "Total run time: $(($(date +%s) - T0)) s."
if [ -n "${KEEP_BENCH_DIR:-}" ]; then echo "Raw results, scripts and plans: $WORK"; fi
