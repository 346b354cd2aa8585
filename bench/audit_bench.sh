#!/bin/bash
# bench/audit_bench.sh: what a full row audit costs, side by side in one run,
# on the tables users audit. bench/audit/setup.sql builds ten tables of the
# same shape (primary key, tenant column indexed): no trigger, the PL/pgSQL
# row trigger, a statement trigger with transition tables, pgaudit object
# audit (statement text only: the cheap anchor) and tenant_guard's
# enable_audit(), each unprotected and protected (tenant_guard.protect()).
# The single-row workloads add the floor of any audit written in the audited
# transaction: a row trigger inserting one integer into an unindexed table.
#
# Workloads, each figure a ratio to "no trigger" on the same protection in
# the same round (throughput of the variant / throughput of no trigger), the
# median over rounds reported:
#
#   batch   INSERT ... SELECT of $TG_BENCH_ROWS rows from a prepared source
#           table, then UPDATE of all of them, then DELETE of all of them,
#           with the rows spread over 1, 10 and 1000 tenants; one autocommit
#           statement each, timed by psql (commit included)
#   single  single-row INSERT, UPDATE by key and DELETE by key under pgbench,
#           $TG_BENCH_CLIENTS clients, $TG_BENCH_SECONDS s each, rows of 1000
#           tenants
#
# The session is a superuser with a tenant context (setting mode), so RLS
# itself costs nothing and every variant writes every tenant's rows; what
# differs is the trigger (and, protected, tenant_guard's guards). Variants run
# in an order rotated every round. Afterwards verify_audit() is timed over
# everything the run wrote. Prints Markdown; asserts nothing about timings.
#
# Usage: bash bench/audit_bench.sh
# Knobs: TG_BENCH_ROUNDS (3), TG_BENCH_ROWS (100000), TG_BENCH_CLIENTS (2),
# TG_BENCH_SECONDS (4); KEEP_BENCH_DIR=1 keeps the work directory. Needs
# pgaudit for the running major (Debian: postgresql-15-pgaudit; installed
# when missing on 15).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/lib.sh
trap 'echo "bench/audit_bench.sh: failed at line $LINENO" >&2' ERR

export LANG=C.UTF-8
ROUNDS=${TG_BENCH_ROUNDS:-3}
ROWS=${TG_BENCH_ROWS:-100000}
CLIENTS=${TG_BENCH_CLIENTS:-2}
SECONDS_EACH=${TG_BENCH_SECONDS:-4}
VARIANTS=(none plpgsql transition pgaudit tg)
SINGLE_VARIANTS=(none plpgsql transition pgaudit floor tg)
T0=$(date +%s)

tg_select_pg
if [ ! -f "$("$PG_CONFIG" --pkglibdir)/pgaudit.so" ]; then
	[ "$TG_PG_MAJOR" = 15 ] || { echo "bench/audit_bench.sh: pgaudit is not installed for PostgreSQL $TG_PG_MAJOR" >&2; exit 1; }
	tg_log "installing postgresql-15-pgaudit"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15-pgaudit >/dev/null
fi
TG_BENCH_PRELOAD="tenant_guard,pgaudit" TG_BENCH_EXTRA=("pgaudit.role = 'bench_auditor'" "pgaudit.log_parameter = off")
tg_bench_start tg_auditbench

tg_log "building the tables and the sources ($ROWS rows each)"
"$PSQL" -X -q -v ON_ERROR_STOP=1 -c "ALTER DATABASE postgres SET bench.rows = '$ROWS'" >/dev/null
"$PSQL" -X -q -v ON_ERROR_STOP=1 -f bench/audit/setup.sql >"$WORK/setup.out" 2>&1 \
	|| { cat "$WORK/setup.out" >&2; exit 1; }
ORG=0a0a0a0a-0000-4000-8000-000000000001
export PGOPTIONS="-c tenant_guard.context_source=setting -c tenant_guard.org_id=$ORG -c tenant_guard.user_id=bench-user -c tenant_guard.role=member"
RESULTS=$WORK/results
: >"$RESULTS"

# batch: one psql session per round; "\echo @ round k prot variant op"
# before each timed statement, psql's \timing after it.
tg_log "batch: $ROUNDS rounds x 3 spreads x 2 protections x ${#VARIANTS[@]} variants x INSERT/UPDATE/DELETE"
for ((r = 0; r < ROUNDS; r++)); do
	f=$WORK/batch.$r.sql
	{
		echo '\timing on'
		for k in 1 10 1000; do
			for p in u p; do
				for v in $(rotated "$r" "${VARIANTS[@]}"); do
					t="bench.${v}_$p"
					echo "\\echo @ $r $k $p $v insert"
					echo "INSERT INTO $t SELECT * FROM bench.src_$k;"
					echo "\\echo @ $r $k $p $v update"
					echo "UPDATE $t SET amount = amount + 1, updated_at = now();"
					echo "\\echo @ $r $k $p $v delete"
					echo "DELETE FROM $t;"
					echo '\echo @ end'
					echo "VACUUM $t; TRUNCATE bench.log;"
				done
			done
		done
	} >"$f"
	"$PSQL" -X -v ON_ERROR_STOP=1 -f "$f" >"$WORK/batch.$r.out" 2>&1 \
		|| { tail -20 "$WORK/batch.$r.out" >&2; exit 1; }
	# rows/s of each timed statement
	awk -v n="$ROWS" '/^@ end/ { cur = ""; next }
		/^@ / { cur = $2 " " $3 " " $4 " " $5 " " $6; next }
		/^Time: / && cur != "" { split(cur, a, " "); printf "batch %s %s-%s-%s %s %.1f\n", a[1], a[5], a[2], a[3], a[4], n / ($2 / 1000); cur = "" }' \
		"$WORK/batch.$r.out" >>"$RESULTS"
done

# single: pgbench on tables holding the 1000-tenant rows.
tg_log "single: $ROUNDS rounds x 2 protections x ${#SINGLE_VARIANTS[@]} variants x INSERT/UPDATE/DELETE, $CLIENTS clients, ${SECONDS_EACH}s each"
# Every UPDATE and DELETE must find its row: the tables are filled again
# before each round's UPDATE and DELETE runs (untimed; DELETE, as an audited
# table refuses TRUNCATE), an UPDATE picks a
# random existing key, and each DELETE run deletes distinct rows (the next
# number of a sequence reset per run, read once per statement by an InitPlan
# so the primary key index is used), ROWS of them in all, so no run times
# statements that find nothing.
refill() {
	{
		for p in u p; do
			for v in "${SINGLE_VARIANTS[@]}"; do
				echo "DELETE FROM bench.${v}_$p; INSERT INTO bench.${v}_$p SELECT * FROM bench.src_1000;"
			done
		done
		echo "TRUNCATE bench.log, bench.floor_log; VACUUM ANALYZE;"
	} | "$PSQL" -X -q -v ON_ERROR_STOP=1 >/dev/null
}
"$PSQL" -X -q -v ON_ERROR_STOP=1 -c "CREATE SEQUENCE bench.ins START $((ROWS + 1)); CREATE SEQUENCE bench.del" >/dev/null
cat >"$WORK/insert.in" <<'SQL'
\set k random(0, 999)
INSERT INTO bench.@T@ VALUES (nextval('bench.ins'), bench.org(:k), 'name', 'user@example.com', 'active', 1, now());
SQL
cat >"$WORK/update.in" <<SQL
\\set id random(1, $ROWS)
UPDATE bench.@T@ SET amount = amount + 1, updated_at = now() WHERE id = :id;
SQL
cat >"$WORK/delete.in" <<'SQL'
DELETE FROM bench.@T@ WHERE id = (SELECT nextval('bench.del'));
SQL
for ((r = 0; r < ROUNDS; r++)); do
	for op in insert update delete; do
		[ "$op" = insert ] || refill
		for p in u p; do
			for v in $(rotated "$r" "${SINGLE_VARIANTS[@]}"); do
				sed "s/@T@/${v}_$p/" "$WORK/$op.in" >"$WORK/run.pgbench"
				# DELETE: exactly ROWS statements, each deleting one row
				span=(-T "$SECONDS_EACH")
				if [ "$op" = delete ]; then
					"$PSQL" -X -q -c "SELECT setval('bench.del', 1, false)" >/dev/null
					span=(-t $((ROWS / CLIENTS)))
				fi
				tps=$("$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" "${span[@]}" -f "$WORK/run.pgbench" 2>&1 \
					| sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
				echo "single $r $op-1000-$p $v $tps" >>"$RESULTS"
			done
		done
	done
	"$PSQL" -X -q -c "TRUNCATE bench.log, bench.floor_log" -c VACUUM >/dev/null
done

# verify_audit(), first with PostgreSQL's default max_parallel_workers_per_gather
# (2: its records' pass may use workers; the benchmark's server turns
# parallel query off for the write-path scans), then in this process alone.
tg_log "timing verify_audit() over the run's records"
records=$("$PSQL" -X -At -c "SELECT count(*) FROM tenant_guard.audit_log")
verify_ms=()
for workers in 2 0; do
	vt0=$(date +%s%N)
	verified=$("$PSQL" -X -q -At -c "SET max_parallel_workers_per_gather = $workers" \
		-c "SELECT bool_and(ok) FROM tenant_guard.verify_audit()")
	vt1=$(date +%s%N)
	[ "$verified" = t ] || { echo "bench/audit_bench.sh: verify_audit() found a problem" >&2; exit 1; }
	verify_ms+=($(((vt1 - vt0) / 1000000)))
done

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# ratio WORKLOAD CASE VARIANT BASE: median over rounds of variant/base
ratio() {
	awk -v w="$1" -v c="$2" -v v="$3" -v b="$4" '$1 == w && $3 == c && $4 == v { x[$2] = $5 } $1 == w && $3 == c && $4 == b { y[$2] = $5 }
		END { for (r in x) if (y[r] > 0) printf "%.4f\n", x[r] / y[r] }' "$RESULTS" | median
}
abs() { awk -v w="$1" -v c="$2" -v v="$3" '$1 == w && $3 == c && $4 == v { print $5 }' "$RESULTS" | median; }

echo
echo "### Audit write path: PostgreSQL $("$PSQL" -X -At -c 'SHOW server_version'), $(nproc) cores, $ROUNDS rounds"
echo
echo "Settings: $(IFS=', '; echo "${SETTINGS[*]}")"
echo
echo "Ratios to no trigger on the same table shape and protection, same round (median over rounds); higher is better."
echo "Last column: tenant_guard's throughput over the better of the PL/pgSQL and transition-table triggers."
echo "Floor (single-row only): a row trigger inserting one integer into an unindexed table, the least any audit"
echo "written in the audited transaction costs."
echo
echo "| workload | tenants | table | no trigger | PL/pgSQL row trigger | transition tables | pgaudit | floor | tenant_guard | tenant_guard vs best trigger |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for w in batch single; do
	for op in insert update delete; do
		for k in 1 10 1000; do
			[ "$w" = single ] && [ "$k" != 1000 ] && continue
			for p in u p; do
				c="$op-$k-$p"
				unit="rows/s"; [ "$w" = single ] && unit="tps"
				label="$op (batch of $ROWS)"; [ "$w" = single ] && label="single-row $op, $CLIENTS clients"
				pl=$(ratio "$w" "$c" plpgsql none); tr=$(ratio "$w" "$c" transition none); tg=$(ratio "$w" "$c" tg none)
				best=$(awk -v a="$pl" -v b="$tr" 'BEGIN { print (a > b) ? a : b }')
				floor=—; [ "$w" = single ] && floor=$(printf '%.2fx' "$(ratio "$w" "$c" floor none)")
				printf '| %s | %s | %s | %.0f %s | %.2fx | %.2fx | %.2fx | %s | %.2fx | %.2fx |\n' "$label" \
					"$([ "$w" = single ] && echo "1 per statement" || echo "$k")" \
					"$([ "$p" = p ] && echo protected || echo unprotected)" "$(abs "$w" "$c" none)" "$unit" \
					"$pl" "$tr" "$(ratio "$w" "$c" pgaudit none)" "$floor" "$tg" "$(awk -v a="$tg" -v b="$best" 'BEGIN { print a / b }')"
			done
		done
	done
done
echo
awk -v n="$records" -v par="${verify_ms[0]}" -v one="${verify_ms[1]}" 'BEGIN {
	printf "verify_audit(), over everything the run wrote (%d records; ok = t): %.0f records/s with up to 2 parallel workers (%.2f s), %.0f records/s in one process (%.2f s).\n",
		n, n / (par / 1e3), par / 1e3, n / (one / 1e3), one / 1e3 }'
echo "$(($(date +%s) - T0)) s in all."
