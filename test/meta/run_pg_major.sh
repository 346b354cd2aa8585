#!/bin/bash
# The suite runs on the PostgreSQL major scripts/test.sh selected
# (TG_PG_MAJOR, default 15), and only on it: the client programs the harnesses
# run come first in PATH from that major's bindir, the test cluster's server is
# that major, and the tenant_guard library and control file it loads are the
# ones installed into that major's own tree.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
fail() { echo "FAIL: $*"; exit 1; }
tg_select_pg
major=${TG_PG_MAJOR:-15}

for prog in pg_config psql pg_dump pg_restore pgbench; do
	[ "$(command -v "$prog")" = "$PG_BINDIR/$prog" ] || fail "$prog runs $(command -v "$prog"), not $PG_BINDIR/$prog"
	v=$("$prog" --version | awk '{ print $NF }' | sed -E 's/^([0-9]+).*/\1/')
	[ "$v" = "$major" ] || fail "$prog is version $v, not $major"
done
echo "ok: pg_config, psql, pg_dump, pg_restore and pgbench are $major's, from $PG_BINDIR"

q() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }
server=$(q -c "SELECT current_setting('server_version_num')::int / 10000")
[ "$server" = "$major" ] || fail "the test cluster runs $server, not $major"
lib=$("$PG_CONFIG" --pkglibdir)/tenant_guard.so
[ -f "$lib" ] || fail "tenant_guard is not installed in $("$PG_CONFIG" --pkglibdir)"
[ -f "$("$PG_CONFIG" --sharedir)/extension/tenant_guard.control" ] || fail "no tenant_guard.control in $("$PG_CONFIG" --sharedir)"
loaded=$(q -c "SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'")
[ "$loaded" = tenant_guard ] || fail "the test cluster does not preload tenant_guard ('$loaded')"
# the server's own postmaster maps the library from its pkglibdir
pid=$(head -1 "$TG_CLUSTER_DIR/data/postmaster.pid")
grep -q " $lib\$" "/proc/$pid/maps" || fail "the server did not load $lib"
echo "ok: the test cluster is PostgreSQL $(q -c 'SHOW server_version') and loaded $lib"
