#!/bin/bash
# bench/lifecycle_bench.sh: export throughput of tenant_guard.export_tenant()
# against the plain-SQL way (docs/performance.md, "Tenant lifecycle").
#
# One protected table bench.items with 200,000 rows: 100,000 of the exported
# tenant, 100,000 of 99 others. As a superuser (both filter by org_id
# explicitly), side by side in rounds (order rotated every round), median
# latency per variant over rounds:
#
#   plain    SELECT sum(length(to_jsonb(t)::text)) FROM bench.items t
#            WHERE org_id = X  (every row serialized, nothing else)
#   export   SELECT sum(length(d::text)) FROM tenant_guard.export_tenant(X) d
#            (the same rows as tagged documents, the chained SHA-256 per row,
#            the manifest, the tuplestore)
#
# and what the archive check costs every write: single-row INSERT transactions
# (pgbench -M prepared, one client, as a non-superuser application role in a
# tenant context) into two protected tables, side by side in rounds:
#
#   nocheck  bench.w_off: protected, the three tg_lifecycle_* policies dropped
#   check    bench.w_on: protected, with the policies (one registry look-up
#            per statement through _tenant_writable())
#
# Prints Markdown: latency, rows/s, ratio export/plain; write tps and ratio.
# Reports only; nothing is asserted about timings. About 2 minutes on 2 cores.
# Usage: bash bench/lifecycle_bench.sh
# Knobs: TG_BENCH_ROUNDS (5), TG_BENCH_TX (3) export runs per variant per
# round, TG_BENCH_WRITE_SECONDS (3) per write run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/lib.sh

export LANG=C.UTF-8
ROUNDS=${TG_BENCH_ROUNDS:-5}
TX=${TG_BENCH_TX:-3}
ORG=11111111-1111-4111-8111-111111111111
ROWS=100000

tg_bench_start tg_lifecycle_bench
"$PSQL" -X -q -v ON_ERROR_STOP=1 <<SQL >"$WORK/setup.out" 2>&1 || { cat "$WORK/setup.out" >&2; exit 1; }
CREATE EXTENSION tenant_guard;
CREATE SCHEMA bench;
CREATE TABLE bench.items (org_id uuid NOT NULL, id bigint NOT NULL, name text, payload text,
                          created_at timestamptz NOT NULL, PRIMARY KEY (org_id, id));
INSERT INTO bench.items
SELECT CASE WHEN i <= $ROWS THEN '$ORG'::uuid
            ELSE ('00000000-0000-4000-8000-' || lpad((i % 99)::text, 12, '0'))::uuid END,
       i, 'item ' || i, repeat(md5(i::text), 3), timestamptz '2026-01-01' + i * interval '1 second'
FROM generate_series(1, 2 * $ROWS) i;
SELECT tenant_guard.protect('bench.items');
VACUUM ANALYZE bench.items;
CREATE ROLE bench_app LOGIN;
GRANT USAGE ON SCHEMA bench TO bench_app;
CREATE TABLE bench.w_on (org_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, v text);
CREATE TABLE bench.w_off (org_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, v text);
SELECT tenant_guard.protect('bench.w_on'), tenant_guard.protect('bench.w_off');
BEGIN;
SET LOCAL tenant_guard.allow_unsafe_ddl = on;
DROP POLICY tg_lifecycle_insert ON bench.w_off;
DROP POLICY tg_lifecycle_update ON bench.w_off;
DROP POLICY tg_lifecycle_delete ON bench.w_off;
COMMIT;
GRANT SELECT, INSERT ON bench.w_on, bench.w_off TO bench_app;
ALTER ROLE bench_app SET tenant_guard.context_source = 'setting';
ALTER ROLE bench_app SET tenant_guard.org_id = '$ORG';
SELECT tenant_guard.register_tenant('$ORG', 'bench');
SQL

mkdir -p "$WORK/scripts" "$WORK/log"
echo "SELECT sum(length(to_jsonb(t)::text)) FROM bench.items t WHERE org_id = '$ORG';" >"$WORK/scripts/plain.sql"
echo "SELECT sum(length(d::text)) FROM tenant_guard.export_tenant('$ORG') d;" >"$WORK/scripts/export.sql"
# the two produce the same number of documents (+1 manifest)
"$PSQL" -X -At -c "SELECT (SELECT count(*) FROM tenant_guard.export_tenant('$ORG')) - 1 = $ROWS" | grep -qx t \
	|| { echo "export count mismatch" >&2; exit 1; }

RESULTS=$WORK/results
: >"$RESULTS"
for ((r = 0; r < ROUNDS; r++)); do
	for v in $(rotated "$r" plain export); do
		(cd "$WORK/log" && "$PGBENCH" -n -M simple -c 1 -t "$TX" -f "$WORK/scripts/$v.sql" -l --log-prefix="$v" >/dev/null 2>&1)
		echo "$v $r $(median_latency "$WORK/log/$v")" >>"$RESULTS"
	done
done

WRITE_SECONDS=${TG_BENCH_WRITE_SECONDS:-3}
echo "INSERT INTO bench.w_off (org_id, v) VALUES ('$ORG', 'x');" >"$WORK/scripts/nocheck.sql"
echo "INSERT INTO bench.w_on (org_id, v) VALUES ('$ORG', 'x');" >"$WORK/scripts/check.sql"
for ((r = 0; r < ROUNDS; r++)); do
	for v in $(rotated "$r" nocheck check); do
		tps=$("$PGBENCH" -n -M prepared -c 1 -T "$WRITE_SECONDS" -U bench_app -f "$WORK/scripts/$v.sql" 2>&1 |
			awk '/^tps/ { print $3 }')
		[ -n "$tps" ] || { echo "pgbench failed for $v" >&2; exit 1; }
		echo "$v $r $tps" >>"$RESULTS"
	done
done

med() { awk -v v="$1" '$1 == v { print $3 }' "$RESULTS" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
P=$(med plain)
E=$(med export)
echo
echo "Export of one tenant, $ROWS rows (of $((2 * ROWS))), median of $ROUNDS rounds x $TX runs; $(nproc) cores; PostgreSQL $(pg_config --version | awk '{print $2}')"
echo
echo "| variant | latency (ms) | rows/s | ratio to plain |"
echo "|---|---:|---:|---:|"
awk -v p="$P" -v e="$E" -v n="$ROWS" 'BEGIN {
	printf "| plain `SELECT to_jsonb(t) ... WHERE org_id = X` | %.0f | %.0f | 1.00 |\n", p / 1000, n / (p / 1e6)
	printf "| `tenant_guard.export_tenant(X)` | %.0f | %.0f | %.2f |\n", e / 1000, n / (e / 1e6), e / p }'
NC=$(med nocheck)
CK=$(med check)
echo
echo "Single-row INSERT as an application role in a tenant context, pgbench -M prepared, 1 client, median tps of $ROUNDS rounds x ${WRITE_SECONDS}s"
echo
echo "| variant | tps | ratio to nocheck |"
echo "|---|---:|---:|"
awk -v a="$NC" -v b="$CK" 'BEGIN {
	printf "| protected, no lifecycle policies | %.0f | 1.00 |\n", a
	printf "| protected, with tg_lifecycle_* policies | %.0f | %.2f |\n", b, b / a }'
echo
echo "Settings: ${SETTINGS[*]}"
