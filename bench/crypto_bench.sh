#!/bin/bash
# bench/crypto_bench.sh: tenant_guard column encryption against pgcrypto and
# against OpenSSL's own AES-256-GCM speed on this machine, in one run.
#
# Per-row cost, 100-byte random values, encrypt then decrypt in one query:
#
#   scan        sum(length(b)) over the rows: the cost of the scan alone
#   tg          tenant_guard.decrypt(tenant_guard.encrypt(b, aad), aad):
#               AES-256-GCM, per-tenant key, tenant/version/aad bound
#   raw_aes     pgcrypto decrypt(encrypt(b, key, 'aes'), key, 'aes'):
#               AES-256-CBC, no authentication, no tenant binding
#   pgp_sym     pgcrypto pgp_sym_decrypt_bytea(pgp_sym_encrypt_bytea(b, pw), pw):
#               OpenPGP with its deliberately slow S2K key derivation; on
#               fewer rows (TG_BENCH_PGP_ROWS), figures scaled per row
#
# on TG_BENCH_ROWS rows (100,000), and throughput for 1 MiB values
# (TG_BENCH_BIG_ROWS of them, stored uncompressed), MB/s per direction =
# 2 x bytes / time: tenant_guard encrypt+decrypt, reading the values from the
# table and on values already in memory (a MATERIALIZED CTE), each next to the
# same query doing two plain 1 MiB copies instead (same reads, same result
# allocations); tenant_guard's GCM path outside PostgreSQL
# (bench/crypto_gcm_speed.cpp); and `openssl speed -evp aes-256-gcm` on 1 MiB
# and 16 KiB blocks (encryption only, no database: the physical limit).
#
# Every variant runs TG_BENCH_ROUNDS times (7) in an order rotated every
# round, inside one server session (plpgsql timing with clock_timestamp);
# figures are medians. Prints Markdown (docs/performance.md quotes a run).
# Reports only: nothing is asserted about timings. About 2 minutes on 2 cores.
#
# Usage: bash bench/crypto_bench.sh
# Knobs (environment): TG_BENCH_ROWS (100000), TG_BENCH_PGP_ROWS (1000),
# TG_BENCH_BIG_ROWS (64), TG_BENCH_ROUNDS (7), TG_BENCH_OPENSSL_SECONDS (3);
# KEEP_BENCH_DIR=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
. bench/lib.sh
trap 'echo "bench/crypto_bench.sh: failed at line $LINENO" >&2' ERR

export LANG=C.UTF-8
ROWS=${TG_BENCH_ROWS:-100000}
PGP_ROWS=${TG_BENCH_PGP_ROWS:-1000}
BIG_ROWS=${TG_BENCH_BIG_ROWS:-64}
ROUNDS=${TG_BENCH_ROUNDS:-7}
OSSL_SECONDS=${TG_BENCH_OPENSSL_SECONDS:-3}
T0=$(date +%s)

tg_bench_start tg_cbench

# A throw-away master key, private to the server user.
KEY_FILE=$WORK/master.key
openssl rand -hex 32 >"$KEY_FILE"
chmod 600 "$KEY_FILE"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$KEY_FILE"
ORG=7e57e57e-0000-4000-8000-000000000001

tg_log "building the tables ($ROWS rows of 100 bytes, $BIG_ROWS rows of 1 MiB)"
"$PSQL" -X -q -v ON_ERROR_STOP=1 >"$WORK/setup.out" 2>&1 <<SQL || { cat "$WORK/setup.out" >&2; exit 1; }
CREATE EXTENSION tenant_guard;
CREATE EXTENSION pgcrypto;
CREATE SCHEMA bench;
CREATE TABLE bench.small (i int PRIMARY KEY, b bytea NOT NULL);
INSERT INTO bench.small SELECT i, gen_random_bytes(100) FROM generate_series(1, $ROWS) i;
CREATE TABLE bench.big (i int PRIMARY KEY, b bytea NOT NULL);
ALTER TABLE bench.big ALTER COLUMN b SET STORAGE EXTERNAL;
INSERT INTO bench.big SELECT i, (SELECT string_agg(gen_random_bytes(1024), ''::bytea) FROM generate_series(1, 1024) j WHERE i > 0)
FROM generate_series(1, $BIG_ROWS) i;
VACUUM ANALYZE bench.small, bench.big;

-- median milliseconds of one query over the runs recorded in bench.runs
CREATE TABLE bench.runs (variant text, round int, ms float8);
CREATE FUNCTION bench.run(variant text, round int, q text) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; dummy bigint;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q INTO dummy;
    INSERT INTO bench.runs VALUES (variant, round, extract(epoch FROM clock_timestamp() - t0) * 1000);
END
\$\$;
SQL

# variant|rows|query (must return one bigint and evaluate every row)
AAD="'bench.small.b'"
RAWKEY="'\\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'::bytea"
VARIANTS=(
	"scan|$ROWS|SELECT sum(length(b)) FROM bench.small"
	"tg|$ROWS|SELECT sum(length(tenant_guard.decrypt(tenant_guard.encrypt(b, $AAD), $AAD))) FROM bench.small"
	"raw_aes|$ROWS|SELECT sum(length(decrypt(encrypt(b, $RAWKEY, 'aes'), $RAWKEY, 'aes'))) FROM bench.small"
	"pgp_sym|$PGP_ROWS|SELECT sum(length(pgp_sym_decrypt_bytea(pgp_sym_encrypt_bytea(b, 'bench-password'), 'bench-password'))) FROM bench.small WHERE i <= $PGP_ROWS"
	"big_tg|$BIG_ROWS|SELECT sum(length(tenant_guard.decrypt(tenant_guard.encrypt(b, 'bench.big.b'), 'bench.big.b'))) FROM bench.big"
	"big_copy|$BIG_ROWS|SELECT sum(length((b || '\\x00'::bytea) || '\\x00'::bytea)) FROM bench.big"
	"mem_copy|$BIG_ROWS|WITH v AS MATERIALIZED (SELECT b || ''::bytea AS b FROM bench.big) SELECT sum(length((b || '\\x00'::bytea) || '\\x00'::bytea)) FROM v"
	"mem_tg|$BIG_ROWS|WITH v AS MATERIALIZED (SELECT b || ''::bytea AS b FROM bench.big) SELECT sum(length(tenant_guard.decrypt(tenant_guard.encrypt(b, 'bench.big.b'), 'bench.big.b'))) FROM v"
)
NAMES=()
for v in "${VARIANTS[@]}"; do NAMES+=("${v%%|*}"); done
declare -A QUERY NROWS
for v in "${VARIANTS[@]}"; do
	IFS='|' read -r name n q <<<"$v"
	QUERY[$name]=$q
	NROWS[$name]=$n
done

tg_log "measuring ($ROUNDS rounds, rotated order)"
{
	echo "SET tenant_guard.context_source = 'setting';"
	echo "SET tenant_guard.org_id = '$ORG';"
	echo "SET tenant_guard.master_key_file = '$KEY_FILE';"
	# warm-up: creates the tenant key, loads caches and pages
	for name in "${NAMES[@]}"; do echo "SELECT bench.run('warmup', 0, \$q\$${QUERY[$name]}\$q\$);"; done
	for ((r = 1; r <= ROUNDS; r++)); do
		for name in $(rotated "$r" "${NAMES[@]}"); do
			echo "SELECT bench.run('$name', $r, \$q\$${QUERY[$name]}\$q\$);"
		done
	done
} | "$PSQL" -X -q -v ON_ERROR_STOP=1 >"$WORK/measure.out" 2>&1 || { cat "$WORK/measure.out" >&2; exit 1; }

median_ms() {
	"$PSQL" -X -At -c "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM bench.runs WHERE variant = '$1'"
}
declare -A MS
for name in "${NAMES[@]}"; do MS[$name]=$(median_ms "$name"); done

tg_log "openssl speed -evp aes-256-gcm and tenant_guard's GCM path outside PostgreSQL (${OSSL_SECONDS}s each, 3 times)"
ossl() { # bytes -> MB/s (10^6 bytes per second)
	openssl speed -evp aes-256-gcm -bytes "$1" -seconds "$OSSL_SECONDS" 2>/dev/null |
		awk '/^(AES-256-GCM|aes-256-gcm)/ { v = $NF; sub(/k$/, "", v); printf "%.0f", v / 1000 }'
}
g++ -std=c++17 -O2 -Isrc bench/crypto_gcm_speed.cpp src/core/aead.cpp src/core/envelope.cpp src/core/encoding.cpp \
	-lcrypto -lsodium -o "$WORK/crypto_gcm_speed"
# Alternated three times (the machine is shared; medians of each).
O16=() O1M=() CORE=()
for r in 1 2 3; do
	O16+=("$(ossl 16384)")
	O1M+=("$(ossl 1048576)")
	CORE+=("$("$WORK/crypto_gcm_speed" "$OSSL_SECONDS")")
done
med3() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
OSSL_16K=$(med3 "${O16[@]}")
OSSL_1M=$(med3 "${O1M[@]}")
CORE_MB=$(med3 "${CORE[@]}")

rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n / (ms / 1000) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
R_TG=$(rate "$ROWS" "${MS[tg]}")
R_RAW=$(rate "$ROWS" "${MS[raw_aes]}")
R_PGP=$(rate "$PGP_ROWS" "${MS[pgp_sym]}")
R_SCAN=$(rate "$ROWS" "${MS[scan]}")
mb() { awk -v n="$BIG_ROWS" -v ms="$1" 'BEGIN { printf "%.0f", 2 * n * 1048576 / 1e6 / (ms / 1000) }'; }
BIG_MB=$(mb "${MS[big_tg]}")
BIG_COPY_MB=$(mb "${MS[big_copy]}")
MEM_MB=$(mb "${MS[mem_tg]}")
MEM_COPY_MB=$(mb "${MS[mem_copy]}")

cat <<EOF2

### Column encryption: $(date -u +%Y-%m-%d), $(nproc) cores, $(openssl version | cut -d' ' -f1-2), PostgreSQL $(pg_config --version | awk '{print $2}')

Encrypt then decrypt 100-byte values in one query (median of $ROUNDS rounds; rows/s include the scan):

| variant | what | rows | median ms | rows/s | vs pgcrypto raw AES |
|---|---|---:|---:|---:|---:|
| scan | \`sum(length(b))\`, no crypto | $ROWS | ${MS[scan]%.*} | $R_SCAN | |
| **tenant_guard** | AES-256-GCM, per-tenant key, tenant+version+aad bound | $ROWS | ${MS[tg]%.*} | **$R_TG** | **$(ratio "$R_TG" "$R_RAW")x** |
| pgcrypto \`encrypt/decrypt(..., 'aes')\` | AES-256-CBC, unauthenticated, one key | $ROWS | ${MS[raw_aes]%.*} | $R_RAW | 1.00x |
| pgcrypto \`pgp_sym_encrypt/decrypt\` | OpenPGP, S2K password derivation | $PGP_ROWS | ${MS[pgp_sym]%.*} | $R_PGP | $(ratio "$R_PGP" "$R_RAW")x |

tenant_guard vs pgp_sym: $(ratio "$R_TG" "$R_PGP")x the rows per second.

1 MiB values ($BIG_ROWS rows, stored uncompressed), encrypt then decrypt; MB/s per direction = 2 x bytes / time
(10^6 bytes/s). "Two copies" is the same query with \`(b || '\\x00') || '\\x00'\` instead of the crypto: the same
reads and the same two 1 MiB result allocations, with a memcpy where tenant_guard runs GCM.

| measure | median ms | MB/s | vs openssl 1 MiB | time vs two copies |
|---|---:|---:|---:|---:|
| tenant_guard, values read from the table | ${MS[big_tg]%.*} | $BIG_MB | $(ratio "$BIG_MB" "$OSSL_1M")x | $(ratio "${MS[big_tg]}" "${MS[big_copy]}")x |
| two copies, values read from the table | ${MS[big_copy]%.*} | $BIG_COPY_MB | $(ratio "$BIG_COPY_MB" "$OSSL_1M")x | 1.00x |
| tenant_guard, values already in memory (MATERIALIZED CTE) | ${MS[mem_tg]%.*} | $MEM_MB | $(ratio "$MEM_MB" "$OSSL_1M")x | $(ratio "${MS[mem_tg]}" "${MS[mem_copy]}")x |
| two copies, values already in memory | ${MS[mem_copy]%.*} | $MEM_COPY_MB | $(ratio "$MEM_COPY_MB" "$OSSL_1M")x | 1.00x |
| tenant_guard's GCM path outside PostgreSQL (\`bench/crypto_gcm_speed.cpp\`) | | $CORE_MB | **$(ratio "$CORE_MB" "$OSSL_1M")x** | |
| \`openssl speed -evp aes-256-gcm -bytes 1048576\` | | $OSSL_1M | 1.00x | |
| \`openssl speed -evp aes-256-gcm -bytes 16384\` | | $OSSL_16K | $(ratio "$OSSL_16K" "$OSSL_1M")x | |

Settings: ${SETTINGS[*]}. Total time: $(( $(date +%s) - T0 )) s.
EOF2
