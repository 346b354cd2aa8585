#!/bin/bash
# A short run of every libFuzzer target (test/fuzz/fuzz.sh), part of the test
# command: a fixed number of executions each, so the result does not depend on
# the machine's speed. The long runs are one command: bash test/fuzz/fuzz.sh all --runs 10000000
set -euo pipefail
exec bash "$(dirname "$0")/fuzz.sh" all --runs "${TG_FUZZ_RUNS:-10000}"
