#!/bin/bash
# bench/audit_bench.sh: what tenant_guard's audit trigger costs, side by side
# with no trigger and with the classic PL/pgSQL audit trigger
# (to_jsonb(OLD)/to_jsonb(NEW) inserted into a log table).
#
# Three tables with the same columns, indexes and rows (bench/audit/setup.sql),
# all rows of ONE tenant:
#
#   plain     no trigger (baseline)
#   classic   AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW PL/pgSQL trigger
#             writing table, operation, actor, to_jsonb(OLD), to_jsonb(NEW)
#             into bench.classic_log (bigserial primary key)
#   audited   tenant_guard.enable_audit(): the C++ trigger, hash chain, seals
#
# Shapes:
#
#   insert   100,000 rows in batches of 1,000 (one INSERT ... SELECT per
#            transaction, 100 transactions); rows/s
#   update   single-row UPDATE by primary key under pgbench, $TG_BENCH_CLIENTS
#            clients, fixed duration; tps
#   scaling  the same UPDATE on the plain and the audited table with 1 and
#            with 8 clients; the 8-client/1-client throughput ratio, audited
#            against unaudited (no global serialization: the issue asks for
#            at least 0.8x)
#
# Every round runs all variants in an order rotated per round; ratios are
# taken within a round and the median over rounds is reported. Prints
# Markdown (docs/performance.md quotes a run). Reports only: nothing is
# asserted about timings. About 4 minutes on 2 cores.
#
# Usage: bash bench/audit_bench.sh
# Knobs (environment): TG_BENCH_INSERT_ROUNDS (5), TG_BENCH_UPDATE_ROUNDS (5),
# TG_BENCH_UPDATE_SECONDS (5), TG_BENCH_CLIENTS (4), TG_BENCH_SCALE_ROUNDS (5),
# TG_BENCH_SCALE_SECONDS (5); KEEP_BENCH_DIR=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/lib.sh
trap 'echo "bench/audit_bench.sh: failed at line $LINENO" >&2' ERR

export LANG=C.UTF-8
INSERT_ROUNDS=${TG_BENCH_INSERT_ROUNDS:-5}
UPDATE_ROUNDS=${TG_BENCH_UPDATE_ROUNDS:-5}
UPDATE_SECONDS=${TG_BENCH_UPDATE_SECONDS:-5}
CLIENTS=${TG_BENCH_CLIENTS:-4}
SCALE_ROUNDS=${TG_BENCH_SCALE_ROUNDS:-5}
SCALE_SECONDS=${TG_BENCH_SCALE_SECONDS:-5}
ORG=0a0a0a0a-0000-4000-8000-00000000000a
BATCH=1000
BATCHES=100
T0=$(date +%s)

tg_bench_start tg_abench

tg_log "building bench.plain, bench.classic, bench.audited"
"$PSQL" -X -q -v ON_ERROR_STOP=1 -v org="$ORG" -f bench/audit/setup.sql >"$WORK/setup.out" 2>&1 \
	|| { cat "$WORK/setup.out" >&2; exit 1; }
export PGOPTIONS="-c tenant_guard.context_source=setting -c tenant_guard.org_id=$ORG -c tenant_guard.user_id=bench-user -c tenant_guard.role=member"
VARIANTS=(plain classic audited)
RESULTS=$WORK/results
: >"$RESULTS"
next_id=1000000

# insert: one SQL file of $BATCHES autocommit INSERT ... SELECT statements per run
measure_insert() { # table first_id -> rows/s
	local f=$WORK/insert.sql start=$2 b
	: >"$f"
	for ((b = 0; b < BATCHES; b++)); do
		echo "INSERT INTO bench.$1 (id, org_id, name, email, status, amount, updated_at)
SELECT g, '$ORG', 'name ' || g, 'user' || g || '@example.com', 'active', g % 1000, now()
FROM generate_series($((start + b * BATCH)), $((start + (b + 1) * BATCH - 1))) g;" >>"$f"
	done
	local t1 t2
	t1=$(date +%s%N)
	"$PSQL" -X -q -v ON_ERROR_STOP=1 -f "$f" >/dev/null
	t2=$(date +%s%N)
	awk -v n=$((BATCH * BATCHES)) -v ns=$((t2 - t1)) 'BEGIN { printf "%.0f\n", n / (ns / 1e9) }'
}

cat >"$WORK/update.pgbench.in" <<'EOF'
\set id random(1, 100000)
UPDATE bench.@T@ SET amount = amount + 1, updated_at = now() WHERE id = :id;
EOF
measure_update() { # table clients seconds -> tps
	sed "s/@T@/$1/" "$WORK/update.pgbench.in" >"$WORK/update.$1.pgbench"
	"$PGBENCH" -n -M prepared -c "$2" -j 2 -T "$3" -f "$WORK/update.$1.pgbench" 2>&1 \
		| sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}

tg_log "insert: $INSERT_ROUNDS rounds of $((BATCH * BATCHES)) rows per variant"
for ((r = 0; r < INSERT_ROUNDS; r++)); do
	for v in $(rotated "$r" "${VARIANTS[@]}"); do
		echo "insert $r $v $(measure_insert "$v" "$next_id")" >>"$RESULTS"
		next_id=$((next_id + BATCH * BATCHES))
	done
done
"$PSQL" -X -q -c "VACUUM ANALYZE bench.plain, bench.classic, bench.audited" 2>/dev/null

tg_log "update: $UPDATE_ROUNDS rounds of ${UPDATE_SECONDS}s per variant, $CLIENTS clients"
for ((r = 0; r < UPDATE_ROUNDS; r++)); do
	for v in $(rotated "$r" "${VARIANTS[@]}"); do
		echo "update $r $v $(measure_update "$v" "$CLIENTS" "$UPDATE_SECONDS")" >>"$RESULTS"
	done
done

tg_log "scaling: $SCALE_ROUNDS rounds, 1 and 8 clients, plain and audited"
for ((r = 0; r < SCALE_ROUNDS; r++)); do
	for v in $(rotated "$r" plain audited); do
		echo "scale1 $r $v $(measure_update "$v" 1 "$SCALE_SECONDS")" >>"$RESULTS"
		echo "scale8 $r $v $(measure_update "$v" 8 "$SCALE_SECONDS")" >>"$RESULTS"
	done
done

verified=$("$PSQL" -X -At -c "SELECT ok FROM tenant_guard.verify_audit()")
records=$("$PSQL" -X -At -c "SELECT sum(row_count) FROM tenant_guard.audit_log")

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
value() { awk -v s="$1" -v r="$2" -v v="$3" '$1 == s && $2 == r && $3 == v { print $4 }' "$RESULTS"; }
ratio_median() { # shape variant base rounds: median over rounds of variant/base
	local r
	for ((r = 0; r < $4; r++)); do
		awk -v a="$(value "$1" "$r" "$2")" -v b="$(value "$1" "$r" "$3")" 'BEGIN { printf "%.4f\n", a / b }'
	done | median
}
med() { local r; for ((r = 0; r < $3; r++)); do value "$1" "$r" "$2"; done | median; }

echo
echo "### Audit: $(date -u +%Y-%m-%d), PostgreSQL $("$PSQL" -X -At -c 'SHOW server_version'), $(nproc) cores"
echo
echo "Settings: $(IFS=', '; echo "${SETTINGS[*]}")"
echo
echo "| shape | variant | median | vs no trigger | vs PL/pgSQL trigger |"
echo "|---|---|---|---|---|"
for s in insert update; do
	rounds=$INSERT_ROUNDS; unit="rows/s"
	[ "$s" = update ] && { rounds=$UPDATE_ROUNDS; unit="tps ($CLIENTS clients)"; }
	for v in "${VARIANTS[@]}"; do
		printf '| %s | %s | %.0f %s | %.2fx | %s |\n' "$s" "$v" "$(med "$s" "$v" "$rounds")" "$unit" \
			"$(ratio_median "$s" "$v" plain "$rounds")" \
			"$([ "$v" = plain ] && echo - || printf '%.2fx' "$(ratio_median "$s" "$v" classic "$rounds")")"
	done
done
echo
scale_of() { # variant: median over rounds of tps8/tps1
	local r
	for ((r = 0; r < SCALE_ROUNDS; r++)); do
		awk -v a="$(value scale8 "$r" "$1")" -v b="$(value scale1 "$r" "$1")" 'BEGIN { printf "%.4f\n", a / b }'
	done | median
}
sp=$(scale_of plain)
sa=$(scale_of audited)
echo "| one tenant, single-row UPDATE | 1 client (tps) | 8 clients (tps) | 8/1 ratio |"
echo "|---|---|---|---|"
printf '| unaudited | %.0f | %.0f | %.2f |\n' "$(med scale1 plain "$SCALE_ROUNDS")" "$(med scale8 plain "$SCALE_ROUNDS")" "$sp"
printf '| audited | %.0f | %.0f | %.2f |\n' "$(med scale1 audited "$SCALE_ROUNDS")" "$(med scale8 audited "$SCALE_ROUNDS")" "$sa"
echo
awk -v a="$sa" -v p="$sp" 'BEGIN { printf "Scaling of the audited table relative to the unaudited one: %.2fx\n", a / p }'
echo
echo "After the run: verify_audit() ok = $verified; the log holds $records row changes."
echo "Medians over rounds of per-round ratios; $(($(date +%s) - T0)) s in all."
