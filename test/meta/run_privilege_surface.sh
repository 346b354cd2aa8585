#!/bin/bash
# The privilege surface is a reviewed file: docs/privilege-surface.tsv lists
# every object tenant_guard creates (functions, procedures, tables, views,
# sequences, types, the schema, event triggers) with its owner, SECURITY
# DEFINER or not, volatility and parallel safety, what PUBLIC may do with it
# and what other roles were granted. This harness generates the same list
# from the catalog after CREATE EXTENSION and after CREATE EXTENSION VERSION
# '0.1.0' + ALTER EXTENSION UPDATE, and fails on any difference, so a new
# PUBLIC grant (or a new SECURITY DEFINER function) is a reviewed change of
# that file. docs/security-model.md justifies every internal function PUBLIC
# may execute.
#
# Usage: bash test/meta/run_privilege_surface.sh [--update]
#   --update rewrites docs/privilege-surface.tsv from a fresh install.
# Runs against the cluster of scripts/test.sh (PGHOST/PGPORT), or starts one.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/lib.sh"
FILE=$ROOT/docs/privilege-surface.tsv

W=$(mktemp -d /tmp/tg_privs.XXXXXX)
chmod 755 "$W"
started=
if [ -z "${PGHOST:-}" ] || ! psql -X -q -c 'SELECT 1' >/dev/null 2>&1; then
	tg_start_cluster "$W/pg" "shared_preload_libraries = 'tenant_guard'" >/dev/null
	started=1
fi
db1=tg_privs_fresh_$$
db2=tg_privs_upgraded_$$
cleanup() {
	psql -X -q -c "DROP DATABASE IF EXISTS $db1" -c "DROP DATABASE IF EXISTS $db2" >/dev/null 2>&1 || true
	[ -z "$started" ] || tg_stop_cluster "$W/pg"
	rm -rf "$W"
}
trap cleanup EXIT

surface() { psql -X -q -At -F $'\t' -v ON_ERROR_STOP=1 -d "$1" -f "$HERE/privilege_surface.sql"; }
header=$'# kind\tobject\towner\tsecurity\tvolatility/parallel\tPUBLIC\tother grantees'

psql -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db1" -c "CREATE DATABASE $db2"
psql -X -q -v ON_ERROR_STOP=1 -d "$db1" -c "SET client_min_messages = warning" -c "CREATE EXTENSION tenant_guard"
psql -X -q -v ON_ERROR_STOP=1 -d "$db2" -c "SET client_min_messages = warning" \
	-c "CREATE EXTENSION tenant_guard VERSION '0.1.0'" -c "ALTER EXTENSION tenant_guard UPDATE"
{ echo "$header"; surface "$db1"; } >"$W/fresh.tsv"
{ echo "$header"; surface "$db2"; } >"$W/upgraded.tsv"

if [ "${1:-}" = --update ]; then
	cp "$W/fresh.tsv" "$FILE"
	echo "wrote $FILE ($(($(wc -l <"$FILE") - 1)) objects)"
fi
fail=0
if ! diff -u "$FILE" "$W/fresh.tsv"; then
	echo "FAIL: the privilege surface after CREATE EXTENSION differs from docs/privilege-surface.tsv"
	fail=1
fi
if ! diff -u "$FILE" "$W/upgraded.tsv"; then
	echo "FAIL: the privilege surface after the upgrade from 0.1.0 differs from docs/privilege-surface.tsv"
	fail=1
fi
[ "$fail" -eq 0 ] || { echo "Review the change; if it is intended: bash test/meta/run_privilege_surface.sh --update"; exit 1; }
n=$(($(wc -l <"$FILE") - 1))
echo "ok: $n objects, the same after CREATE EXTENSION and after the upgrade from 0.1.0, as reviewed"
# every internal function PUBLIC may execute is justified in the security model
missing=$(awk -F'\t' '$1 ~ /^(function|procedure)$/ && $2 ~ /^tenant_guard\._/ && $6 ~ /EXECUTE/ {
	sub(/\(.*/, "", $2); print $2 }' "$FILE" | sort -u | while read -r f; do
	grep -q "\`${f#tenant_guard.}\`" "$ROOT/docs/security-model.md" || echo "$f"; done)
if [ -n "$missing" ]; then
	echo "FAIL: internal functions executable by PUBLIC without a justification in docs/security-model.md:"
	echo "$missing"
	exit 1
fi
echo "ok: every internal function PUBLIC may execute is justified in docs/security-model.md"
