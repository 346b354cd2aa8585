#!/bin/bash
# Builds the libFuzzer targets of test/fuzz/ with clang (AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs them:
#   envelope  the ciphertext envelope decoder, DEK unwrapping, master key parsing
#   jwt       the JWT parser and verifier (signed mode)
#   claims    the claims parser (claims mode) and the plain settings
#   keyfile   the JWT secret and public-key parsers, the key-file mode rule
#   jwks      the JWKS parser (tenant_guard.jwt_jwks_file) and key-set verification
#
# Usage: bash test/fuzz/fuzz.sh [TARGET|all] [--seconds N | --runs N]
#   default: all targets, 180 seconds each. The figures in docs/reliability.md
#   come from: bash test/fuzz/fuzz.sh all --runs 10000000
#   (test/fuzz/run_fuzz_short.sh, part of the test command, runs each target
#   for a fixed number of executions.)
#
# Needs clang and libFuzzer (Debian: clang, libclang-rt-14-dev; installed when
# missing and run as root). Output and corpora go to build/fuzz/ (or
# $TG_FUZZ_OUT, to keep a long run apart from the short one of the test command).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh
TARGETS=all
LIMIT=(-max_total_time=180)
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) LIMIT=(-max_total_time="$2"); shift 2 ;;
	--runs) LIMIT=(-runs="$2"); shift 2 ;;
	[0-9]*) LIMIT=(-max_total_time="$1"); shift ;;
	*) TARGETS=$1; shift ;;
	esac
done
[ "$TARGETS" != all ] || TARGETS="envelope jwt claims keyfile jwks"
CXX=${CXX_FUZZ:-clang++}
if ! command -v "$CXX" >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
	TG_PACKAGES="clang libclang-rt-14-dev" tg_install_deps
fi
OUT=${TG_FUZZ_OUT:-build/fuzz}
mkdir -p "$OUT"
# A 16 MB quarantine instead of 256 MB, and no allocation stacks in reports:
# every check stays (a use after free is still caught within the last 16 MB
# freed, far more than one input allocates), but the key parsers, which
# allocate thousands of times per input inside OpenSSL, run about twice as
# fast. Rerun a crash file with ASAN_OPTIONS= for the allocation stacks.
ASAN_DEFAULTS=quarantine_size_mb=16:malloc_context_size=0

sources_envelope="src/core/aead.cpp src/core/envelope.cpp src/core/masterkey.cpp src/core/encoding.cpp"
sources_jwt="src/core/jwt.cpp src/core/jwks.cpp src/core/claims.cpp src/core/encoding.cpp"
sources_claims="src/core/claims.cpp"
sources_keyfile="src/core/jwt.cpp src/core/jwks.cpp src/core/claims.cpp src/core/encoding.cpp src/core/keyfile.cpp"
sources_jwks="src/core/jwks.cpp src/core/jwt.cpp src/core/claims.cpp src/core/encoding.cpp"

seed() {  # seed TARGET: a small corpus of real shapes
	local dir=$OUT/corpus_$1
	mkdir -p "$dir"
	case $1 in
	envelope)
		printf '' >"$dir/empty"
		printf '\001\000\000\000\001' >"$dir/header"
		printf '%064x\n' 1 >"$dir/hexkey" ;;
	jwt)
		/usr/bin/python3 - "$dir" <<'PY'
import base64, json, sys, os
d = sys.argv[1]
b = lambda s: base64.urlsafe_b64encode(s.encode()).rstrip(b"=").decode()
claims = [
    {"org_id": "11111111-1111-4111-8111-111111111111", "sub": "alice", "org_role": "admin", "exp": 1800000000,
     "aud": "tenant-app", "scopes": {"venue": ["v1", 2]}},
    {"app_metadata": {"org_id": "acme", "roles": ["a"]}, "sub": "b\u00e9\u4e2d\ud83d\ude00", "nbf": 1, "exp": 2e9},
    {"org_id": 9223372036854775807, "sub": "x" * 300, "act": {"sub": "agent", "act": {"sub": "nested"}}},
    {"org_id": "00000000-0000-0000-0000-000000000000", "exp": 1e308, "iat": -1, "crit": ["exp"]},
]
for i, c in enumerate(claims):
    p = json.dumps(c)
    open(os.path.join(d, f"payload{i}"), "wb").write(b"\x01" + p.encode())
    for alg in ("HS256", "RS256", "ES256", "EdDSA", "none"):
        h = json.dumps({"alg": alg, "typ": "JWT", "kid": "k1"})
        open(os.path.join(d, f"hp{i}_{alg}"), "wb").write(b"\x02" + h.encode() + b"\x00" + p.encode())
        open(os.path.join(d, f"tok{i}_{alg}"), "wb").write(b"\x00" + (b(h) + "." + b(p) + "." + "A" * 43).encode())
PY
		;;
	claims)
		printf '%s' '{"org_id":"11111111-1111-4111-8111-111111111111","sub":"alice","org_role":"admin","scopes":{"venue":["v1",2,null]}}' >"$dir/full"
		printf '%s' '{"app_metadata":{"org_id":"acme","roles":{"org":"member"},"scopes":{"s":["\u0000",1e3]}},"user_metadata":{"sub":" bob "},"act":{"act":{"sub":"agent"}}}' >"$dir/nested"
		printf '%s' '{"org_id":-9223372036854775808,"sub":"null","org_role":"\ud800"}' >"$dir/edge"
		printf '11111111-1111-4111-8111-111111111111\000alice\000admin\000{"venue":["v1"]}\000agent' >"$dir/settings"
		printf '%s' '9223372036854775807' >"$dir/bigint" ;;
	keyfile)  # the first byte chooses the parser (fuzz_keyfile.cpp)
		{ printf '\000'; printf '%s\n' 'an hs256 secret that is long enough for the rule'; } >"$dir/secret"
		{ printf '\001'; openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null | openssl pkey -pubout; } >"$dir/rsa.pem"
		{ printf '\002'; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null | openssl pkey -pubout; } >"$dir/p256.pem"
		{ printf '\003'; openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout; } >"$dir/ed25519.pem"
		printf '\005\001\000\000\000\001\000\000\000\200\201\000\000' >"$dir/mode" ;;
	jwks)  # real key sets (PyJWT's JWK export), some followed by NUL and a token signed by one of their keys
		/usr/bin/python3 - "$dir" <<'PY'
import json, os, sys, jwt
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
d = sys.argv[1]
r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
e = ec.generate_private_key(ec.SECP256R1())
o = ed25519.Ed25519PrivateKey.generate()
def jwk(f, k, kid, alg): return dict(json.loads(f(k.public_key())), kid=kid, alg=alg)
keys = [jwk(RSAAlgorithm.to_jwk, r, "svc", "RS256"), jwk(ECAlgorithm.to_jwk, e, "new", "ES256"),
        jwk(OKPAlgorithm.to_jwk, o, "ed", "EdDSA"),
        {"kty": "oct", "kid": "hs", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0"},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}]
doc = json.dumps({"keys": keys}).encode()
open(os.path.join(d, "set"), "wb").write(doc)
c = {"org_id": "org_2abc", "sub": "service:job", "exp": 1800000600}
for name, key, alg, kid in (("rs", r, "RS256", "svc"), ("es", e, "ES256", "new"), ("ed", o, "EdDSA", "ed")):
    tok = jwt.encode(c, key, alg, headers={"kid": kid})
    open(os.path.join(d, "tok_" + name), "wb").write(doc + b"\0" + tok.encode())
open(os.path.join(d, "empty"), "wb").write(b'{"keys":[]}')
PY
		;;
	esac
}

failed=0
for t in $TARGETS; do
	src_var=sources_$t
	[ -n "${!src_var:-}" ] || { echo "unknown fuzz target $t" >&2; exit 2; }
	# shellcheck disable=SC2086
	"$CXX" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc -Itest/fuzz \
		"test/fuzz/fuzz_$t.cpp" ${!src_var} -lcrypto -lsodium -o "$OUT/fuzz_$t"
	seed "$t"
	log=$OUT/fuzz_$t.log
	ASAN_OPTIONS=${ASAN_OPTIONS-$ASAN_DEFAULTS} \
		"$OUT/fuzz_$t" "${LIMIT[@]}" -print_final_stats=1 -max_len=8192 -timeout=20 -artifact_prefix="$OUT/crash_$t-" "$OUT/corpus_$t" >"$log" 2>&1 || true
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	if grep -qE '==[0-9]+==ERROR|deadly signal|Test unit written|runtime error:|SUMMARY: ' "$log" || [ -z "$execs" ]; then
		echo "fuzz $t: FAILED (see $log)"
		grep -E '==[0-9]+==ERROR|runtime error:|SUMMARY:|Test unit written' "$log" | head -5
		failed=$((failed + 1))
	else
		echo "fuzz $t: $execs executions, no crash, leak or undefined behaviour"
	fi
done
[ "$failed" -eq 0 ]
