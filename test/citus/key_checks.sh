# Sourced by run_citus.sh after its column encryption checks (t_enc holds A's
# and B's values, B's key is shredded): the copy of the tenant keys to the
# workers is part of the transaction that changes them (docs/citus.md, "Keys
# on the workers"). A key made by the first encrypt() of a tenant inside an
# application-role transaction writing a distributed table (router and
# multi-shard INSERT) reaches every worker at COMMIT and no worker at
# ROLLBACK; a rolled-back shred_keys() or rotate_key() leaves every worker's
# copy as it was.
KC_E=55555555-5555-4555-8555-555555555555
KC_F=66666666-6666-4666-8666-666666666666
keys_on() {  # keys_on NODE ORG: "count max(version) states" of ORG's key rows on NODE
	q -p "${PORT[$1]}" -c "SELECT count(*) || ' ' || coalesce(max(version), 0) || ' '
		|| coalesce(string_agg(state, ',' ORDER BY version), '-') FROM tenant_guard.tenant_keys WHERE org_id = '$2'"
}
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE t_enc_id (id int PRIMARY KEY, org_id uuid NOT NULL, secret bytea);
SELECT create_distributed_table('t_enc_id', 'id');
SELECT tenant_guard.protect('t_enc_id');
GRANT SELECT, INSERT, UPDATE, DELETE ON t_enc_id TO ct_app;
SQL
# a first encrypt() rolled back: no key anywhere (router INSERT)
soft -U ct_app -c "BEGIN" -c "$(claims "$KC_E")" \
	-c "INSERT INTO t_enc VALUES (1, '$KC_E', tenant_guard.encrypt_text('E-one', 't_enc.secret'))" -c "ROLLBACK"
for n in coord w1 w2; do
	check "first encrypt() rolled back: no key of E on $n" "0 0 -" "$(keys_on "$n" "$KC_E")"
done
# a first encrypt() in a multi-shard INSERT (t_enc_id is distributed by id),
# then a router INSERT in the same transaction, committed
e_rows=""
for ki in 1 2 3 4 5 6 7 8; do
	e_rows+="${e_rows:+, }($ki, '$KC_E', tenant_guard.encrypt_text('E-$ki', 't_enc.secret'))"
done
soft -U ct_app -c "BEGIN" -c "$(claims "$KC_E")" -c "INSERT INTO t_enc_id VALUES $e_rows" \
	-c "INSERT INTO t_enc VALUES (1, '$KC_E', tenant_guard.encrypt_text('E-one', 't_enc.secret'))" -c "COMMIT"
check "multi-shard INSERT of E reached more than one shard" "t" \
	"$(q -c "SELECT count(DISTINCT get_shard_id_for_distribution_column('t_enc_id', i)) > 1 FROM generate_series(1, 8) i")"
for n in coord w1 w2; do
	check "first encrypt() in a multi-shard INSERT: key of E on $n" "1 1 active" "$(keys_on "$n" "$KC_E")"
done
check "decrypt() as E, multi-shard query" "f
E-1,E-2,E-3,E-4,E-5,E-6,E-7,E-8" "$(as_app ct_app "BEGIN" "$(claims "$KC_E")" \
	"SELECT string_agg(tenant_guard.decrypt_text(secret, 't_enc.secret'), ',' ORDER BY id) FROM t_enc_id" "COMMIT")"
# a first encrypt() in a router INSERT after a multi-shard INSERT (no
# encryption) in the same transaction, committed
soft -U ct_app -c "BEGIN" -c "$(claims "$KC_F")" \
	-c "INSERT INTO t_enc_id VALUES (101, '$KC_F', NULL), (102, '$KC_F', NULL), (103, '$KC_F', NULL)" \
	-c "INSERT INTO t_enc VALUES (1, '$KC_F', tenant_guard.encrypt_text('F-one', 't_enc.secret'))" -c "COMMIT"
for n in coord w1 w2; do
	check "first encrypt() in a router INSERT after a multi-shard one: key of F on $n" "1 1 active" \
		"$(keys_on "$n" "$KC_F")"
done
check "decrypt() as F, router query" "f
F-one" "$(as_app ct_app "BEGIN" "$(claims "$KC_F")" \
	"SELECT tenant_guard.decrypt_text(secret, 't_enc.secret') FROM t_enc WHERE org_id = '$KC_F' AND id = 1" "COMMIT")"

# shred_keys() rolled back: A's key still usable on every worker
soft -c "BEGIN" -c "SELECT tenant_guard.shred_keys('$ORG_A')" -c "ROLLBACK"
for n in coord w1 w2; do
	check "shred_keys() rolled back: key of A on $n" "1 1 active" "$(keys_on "$n" "$ORG_A")"
done
check "decrypt() as A after a rolled-back shred_keys(), multi-shard query" "f
A-one,A-two" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" \
	"SELECT string_agg(tenant_guard.decrypt_text(secret, 't_enc.secret'), ',' ORDER BY id) FROM t_enc" "COMMIT")"
# rotate_key() rolled back: no new key version on any worker; committed: on every one
soft -c "BEGIN" -c "SELECT tenant_guard.rotate_key('$ORG_A')" -c "ROLLBACK"
for n in coord w1 w2; do
	check "rotate_key() rolled back: no new key version of A on $n" "1 1 active" "$(keys_on "$n" "$ORG_A")"
done
soft -c "BEGIN" -c "SELECT tenant_guard.rotate_key('$ORG_A')" -c "COMMIT"
for n in coord w1 w2; do
	check "rotate_key() committed: new key version of A on $n" "2 2 retired,active" "$(keys_on "$n" "$ORG_A")"
done
check "decrypt() as A after rotate_key(), multi-shard query" "f
A-one,A-two" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" \
	"SELECT string_agg(tenant_guard.decrypt_text(secret, 't_enc.secret'), ',' ORDER BY id) FROM t_enc" "COMMIT")"
# citus_sync() still makes every worker's copy exact (and in its transaction)
soft -c "SELECT run_command_on_workers('DELETE FROM tenant_guard.tenant_keys WHERE org_id = ''$KC_E''')"
soft -c "BEGIN" -c "SELECT tenant_guard.citus_sync()" -c "ROLLBACK"
check "citus_sync() rolled back: w1 still lacks E's key" "0 0 -" "$(keys_on w1 "$KC_E")"
soft -c "SELECT tenant_guard.citus_sync()"
for n in w1 w2; do
	check "citus_sync(): key of E on $n again" "1 1 active" "$(keys_on "$n" "$KC_E")"
done
