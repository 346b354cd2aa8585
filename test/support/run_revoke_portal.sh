#!/bin/bash
# A support session revoked while an extended-protocol portal of it is
# suspended (Execute with a row limit, as a JDBC fetchSize does): the next
# Execute of that portal is refused (docs/support-access.md, "Open cursors and
# portals"), with protect()'s policy, whose context is read once per query. On
# a cluster of its own without shared_preload_libraries (the check needs none).
# The client is node-postgres (npm pg, as test/recipes), driving the portal
# with its protocol messages: test/support/portal_fetch.js.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"

fail() { echo "FAIL: $*"; [ -f "${W:-}/pg/server.log" ] && tail -20 "$W/pg/server.log"; exit 1; }
NODE_CACHE=${TG_NODE_CACHE:-${XDG_CACHE_HOME:-/var/cache}/tenant_guard/node}
if ! command -v node >/dev/null; then
	TG_PACKAGES="nodejs npm" tg_install_deps || fail "node is missing"
fi
if [ ! -f "$NODE_CACHE/node_modules/pg/package.json" ]; then
	tg_log "installing npm pg into $NODE_CACHE"
	mkdir -p "$NODE_CACHE"
	npm install --prefix "$NODE_CACHE" --no-audit --no-fund --loglevel=error pg@8 >/dev/null || fail "npm install pg failed"
fi

W=$(mktemp -d /tmp/tg_support_portal.XXXXXX)
chmod 755 "$W"
trap 'tg_stop_cluster "$W/pg"; rm -rf "$W"' EXIT
tg_start_cluster "$W/pg" "shared_preload_libraries = ''" >/dev/null
ORG=0a0a0a0a-0000-4000-8000-00000000000a
OTHER=0b0b0b0b-0000-4000-8000-00000000000b
q() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }

q -q >/dev/null <<SQL
CREATE EXTENSION tenant_guard;
CREATE ROLE agent LOGIN;
CREATE ROLE app;
GRANT tenant_guard_support, app TO agent;
CREATE TABLE tickets (org_id uuid NOT NULL, id int, PRIMARY KEY (org_id, id));
SELECT tenant_guard.protect('tickets');
GRANT SELECT ON tickets TO app;
INSERT INTO tickets SELECT '$ORG', g FROM generate_series(1, 5) g;
INSERT INTO tickets VALUES ('$OTHER', 6);
SQL
TG_SUPPORT_TOKEN=$(q -c "SELECT tenant_guard.issue_support_grant('$ORG', 'agent@platform', 'portal test')")
export TG_SUPPORT_TOKEN TG_ORG=$ORG

got=$(NODE_PATH="$NODE_CACHE/node_modules" node "$ROOT/test/support/portal_fetch.js") ||
	{ echo "$got"; fail "the client failed"; }
want="first execute: rows 1 (suspended)
second execute: rows 2 (suspended)
admin revoked: 1
execute after the revocation: ERROR 42501 support session ended while this query was open
later: 0 rows"
[ "$got" = "$want" ] || { echo "--- got:"; echo "$got"; echo "--- want:"; echo "$want"; fail "the suspended portal outlived its support session"; }
echo "ok: a suspended portal of a revoked support session is refused at its next Execute"
