#!/bin/bash
# Builds the libFuzzer target test/fuzz/fuzz_envelope.cpp with clang
# (AddressSanitizer + UndefinedBehaviorSanitizer) and runs it.
#
# Usage: bash test/fuzz/fuzz.sh [seconds, default 180]
#
# Needs clang and libFuzzer (Debian: apt-get install clang libclang-rt-14-dev).
# Not named run_*.sh on purpose: it is not part of the ctest suite (it needs
# clang and minutes of CPU). Output and corpus go to build/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-180}
OUT=build/fuzz
mkdir -p "$OUT/corpus"
CXX=${CXX_FUZZ:-clang++}
command -v "$CXX" >/dev/null || { echo "clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }

"$CXX" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc \
	test/fuzz/fuzz_envelope.cpp src/core/aead.cpp src/core/envelope.cpp src/core/masterkey.cpp src/core/encoding.cpp \
	-lcrypto -lsodium -o "$OUT/fuzz_envelope"

# Seeds: an empty value, a bare header, a well-formed envelope shape, hex keys.
printf '' >"$OUT/corpus/empty"
printf '\001\000\000\000\001' >"$OUT/corpus/header"
head -c 60 /dev/zero | sed 's/^\x00/\x01/' >"$OUT/corpus/shape" 2>/dev/null || true
printf '%064x\n' 1 >"$OUT/corpus/hexkey"

"$OUT/fuzz_envelope" -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 -max_len=4096 "$OUT/corpus" 2>&1 |
	tee "$OUT/fuzz.log" | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY)' || true
if grep -qE '==[0-9]+==ERROR|deadly signal|Test unit written' "$OUT/fuzz.log"; then
	echo "fuzz: FAILED (see $OUT/fuzz.log)"
	exit 1
fi
echo "fuzz: no failure in ${SECONDS_TO_RUN}s, $(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/fuzz.log") executions"
