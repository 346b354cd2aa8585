#!/bin/bash
# Column encryption configured the way a DBA does it: in the server's
# configuration, on a cluster WITHOUT shared_preload_libraries. Starts its own
# throw-away cluster and proves:
#  1. the master key command from postgresql.conf is used once the library is
#     loaded lazily by the first call;
#  2. a reload re-runs the command in a long-lived session and drops its
#     cached tenant keys: after the command's output changes, the same session
#     can no longer unwrap the keys, and can again once it is restored;
#  3. with master_key_file, loosening the file's mode is noticed at the next
#     statement of a session that already holds the key, and refused;
#  4. an application role can neither see the settings nor override them with
#     a placeholder set before the library loads;
#  5. no byte of either master key appears in the server log.
# Needs TG_TEST_DIR (fixtures) from scripts/test.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
. "$TG_TEST_DIR/tokens.env"

W=$(mktemp -d /tmp/tg_keyconf.XXXXXX)
chmod 755 "$W"
trap 'tg_stop_cluster "$W/pg"; rm -rf "$W"' EXIT
# keys private to the server user; "current" is what the command prints
cp "$MASTER_KEY_FILE" "$W/one.key"
cp "$MASTER_KEY2_FILE" "$W/two.key"
cp "$W/one.key" "$W/current.key"
chmod 600 "$W"/*.key
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$W"/*.key
# listen_addresses = '' (overriding tg_start_cluster's line): only the socket in
# $W, so clusters started by parallel harnesses can never race for a TCP port.
tg_start_cluster "$W/pg" "listen_addresses = ''" "tenant_guard.master_key_command = 'cat $W/current.key'" >/dev/null

fail() { echo "FAIL: $*"; tail -20 "$W/pg/server.log"; exit 1; }
q() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }
CTX="SET tenant_guard.context_source = 'setting'; SET tenant_guard.org_id = '$ORG_A';"
checks=0

[ -z "$(q -c "SHOW shared_preload_libraries")" ] || fail "the cluster preloads tenant_guard"
q -q -c "CREATE EXTENSION tenant_guard" -c "CREATE ROLE regress_keyconf_app LOGIN"

# 1. configured in postgresql.conf, library loaded lazily
got=$(q -c "$CTX" -c "SELECT tenant_guard.decrypt_text(tenant_guard.encrypt_text('hello', 'a'), 'a')" | tail -1)
[ "$got" = "hello" ] || fail "master_key_command from postgresql.conf gave '$got'"
echo "ok: master_key_command from postgresql.conf works without preloading"; checks=$((checks + 1))

# 2. a reload re-runs the command and drops the session's key cache
out=$(q 2>&1 <<SQL || true
$CTX
SELECT 'before=' || tenant_guard.decrypt_text(tenant_guard.encrypt_text('x', 'a'), 'a');
\! cp $W/two.key $W/current.key
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
\set ON_ERROR_STOP 0
SELECT 'after=' || tenant_guard.decrypt_text(tenant_guard.encrypt_text('x', 'a'), 'a');
\! cp $W/one.key $W/current.key
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT 'restored=' || tenant_guard.decrypt_text(tenant_guard.encrypt_text('x', 'a'), 'a');
SQL
)
grep -q '^before=x$' <<<"$out" || fail "no round trip before the reload: $out"
grep -q 'tenant key is wrapped by a master key that is not configured' <<<"$out" ||
	fail "the session kept using its cached key after a reload changed the master key: $out"
grep -q '^restored=x$' <<<"$out" || fail "no round trip after restoring the key: $out"
echo "ok: a reload re-ran the key command and dropped the cached tenant keys"; checks=$((checks + 1))

# 3. master_key_file: a mode loosened under a running session is refused
# (ALTER SYSTEM needs the library loaded in the session: LOAD it first.)
q -q -c "LOAD 'tenant_guard'" -c "ALTER SYSTEM SET tenant_guard.master_key_command = ''" \
     -c "ALTER SYSTEM SET tenant_guard.master_key_file = '$W/one.key'" -c "SELECT pg_reload_conf()"
sleep 0.5
out=$(q 2>&1 <<SQL || true
$CTX
SELECT 'file=' || tenant_guard.decrypt_text(tenant_guard.encrypt_text('y', 'a'), 'a');
\! chmod 644 $W/one.key
\set ON_ERROR_STOP 0
SELECT 'loose=' || tenant_guard.decrypt_text(tenant_guard.encrypt_text('y', 'a'), 'a');
\! chmod 600 $W/one.key
SELECT 'private=' || tenant_guard.decrypt_text(tenant_guard.encrypt_text('y', 'a'), 'a');
SQL
)
grep -q '^file=y$' <<<"$out" || fail "master_key_file from the configuration did not work: $out"
grep -q 'master key file has group or world access' <<<"$out" || fail "a loosened key file was still used: $out"
grep -q '^loose=' <<<"$out" && fail "a loosened key file produced a result: $out"
grep -q '^private=y$' <<<"$out" || fail "no round trip after restoring the mode: $out"
echo "ok: a key file whose mode was loosened was refused at the next statement"; checks=$((checks + 1))

# 4. an application role cannot see or override the settings
out=$(q -U regress_keyconf_app 2>&1 <<SQL || true
SET tenant_guard.master_key_file = '/tmp/attacker.key';
\set ON_ERROR_STOP 0
SELECT set_config('request.jwt.claims', '{"org_id":"$ORG_A"}', false) IS NOT NULL;
SELECT 'round=' || tenant_guard.decrypt_text(tenant_guard.encrypt_text('z', 'a'), 'a');
SHOW tenant_guard.master_key_file;
SELECT 'visible=' || count(*) FROM pg_settings WHERE name LIKE 'tenant_guard.%master_key%';
SQL
)
grep -q 'permission denied to set parameter "tenant_guard.master_key_file"' <<<"$out" ||
	fail "the placeholder set by an application role was not refused: $out"
grep -q '^round=z$' <<<"$out" || fail "the configured key was not used for the application role: $out"
# the wording of the refusal differs between majors
grep -Eq 'must be superuser or have privileges of pg_read_all_settings|permission denied to examine "tenant_guard.master_key_file"' <<<"$out" ||
	fail "an application role could SHOW the key file setting: $out"
grep -q '^visible=0$' <<<"$out" || fail "pg_settings showed the key settings to an application role: $out"
echo "ok: the application role could neither override nor see the master key settings"; checks=$((checks + 1))

# 5. no key bytes in the server log
for k in "$W/one.key" "$W/two.key"; do
	if grep -q -i -F "$(head -c 64 "$k")" "$W/pg/server.log"; then fail "a master key appears in the server log"; fi
done
echo "ok: no master key in the server log"; checks=$((checks + 1))

q -q -c "DROP ROLE regress_keyconf_app"
echo "key_config: $checks checks passed"
