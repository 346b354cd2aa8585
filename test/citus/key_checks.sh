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

# A key made in a transaction is usable on the workers inside it: the
# coordinator forwards it to the worker backends of that distributed
# transaction (docs/citus.md, "Keys on the workers"), bound to it by a MAC.
KC_G=77777777-7777-4777-8777-777777777777
KC_H=88888888-8888-4888-8888-888888888888
KC_I=99999999-9999-4999-8999-999999999999
g_ins="INSERT INTO t_enc_id VALUES (201, '$KC_G', tenant_guard.encrypt_text('G-1', 't_enc.secret')),
	 (202, '$KC_G', tenant_guard.encrypt_text('G-2', 't_enc.secret'))"
g_sel="SELECT string_agg(tenant_guard.decrypt_text(secret, 't_enc.secret'), ',' ORDER BY id) FROM t_enc_id WHERE org_id = '$KC_G'"
check "first key, multi-shard INSERT then a multi-shard read in its transaction, rolled back" "f
G-1,G-2" "$(as_app ct_app "BEGIN" "$(claims "$KC_G")" "$g_ins" "$g_sel" "ROLLBACK")"
for n in coord w1 w2; do
	check "first key in a rolled-back transaction used on the workers: no key of G on $n" "0 0 -" "$(keys_on "$n" "$KC_G")"
done
check "first key, multi-shard INSERT then the read, committed" "f
G-1,G-2" "$(as_app ct_app "BEGIN" "$(claims "$KC_G")" "$g_ins" "$g_sel" "COMMIT")"
for n in coord w1 w2; do
	check "first key used on the workers, committed: key of G on $n" "1 1 active" "$(keys_on "$n" "$KC_G")"
done
check "decrypt() as G after COMMIT, multi-shard query" "f
G-1,G-2" "$(as_app ct_app "BEGIN" "$(claims "$KC_G")" "$g_sel" "COMMIT")"
# router INSERT and router read on t_enc (distributed by org_id). Citus
# itself refuses RETURNING decrypt() on a distributed table (no function that
# is not IMMUTABLE in RETURNING); a CTE returns the value to the coordinator.
check "first key, router INSERT and a router read" "f
H-one" "$(as_app ct_app "BEGIN" "$(claims "$KC_H")" \
	"INSERT INTO t_enc VALUES (1, '$KC_H', tenant_guard.encrypt_text('H-one', 't_enc.secret'))" \
	"SELECT tenant_guard.decrypt_text(secret, 't_enc.secret') FROM t_enc WHERE org_id = '$KC_H' AND id = 1" "ROLLBACK")"
check "INSERT ... RETURNING decrypt() is refused by Citus (not IMMUTABLE)" "refused" \
	"$(as_app ct_app "BEGIN" "$(claims "$KC_H")" \
		"INSERT INTO t_enc VALUES (1, '$KC_H', tenant_guard.encrypt_text('H-one', 't_enc.secret')) RETURNING tenant_guard.decrypt_text(secret, 't_enc.secret')" \
		"ROLLBACK" | grep -q 'non-IMMUTABLE functions are not allowed in the RETURNING clause' && echo refused)"
check "first key, INSERT ... RETURNING through a CTE, then a multi-shard read" "f
H-one
H-one" "$(as_app ct_app "BEGIN" "$(claims "$KC_H")" \
	"WITH i AS (INSERT INTO t_enc VALUES (1, '$KC_H', tenant_guard.encrypt_text('H-one', 't_enc.secret')) RETURNING secret)
	 SELECT tenant_guard.decrypt_text(secret, 't_enc.secret') FROM i" \
	"SELECT string_agg(tenant_guard.decrypt_text(secret, 't_enc.secret'), ',') FROM t_enc" "ROLLBACK")"
# inside a savepoint released, and after one rolled back (Citus forgets the
# SET LOCAL of a subtransaction for the connections it opens later)
check "first key in a released savepoint, read afterwards" "f
I-1" "$(as_app ct_app "BEGIN" "$(claims "$KC_I")" "SAVEPOINT s1" \
	"INSERT INTO t_enc_id VALUES (211, '$KC_I', tenant_guard.encrypt_text('I-1', 't_enc.secret'))" "RELEASE s1" \
	"SELECT string_agg(tenant_guard.decrypt_text(secret, 't_enc.secret'), ',' ORDER BY id) FROM t_enc_id WHERE org_id = '$KC_I'" \
	"ROLLBACK")"
check "first key rolled back to a savepoint, made again: the new key is used" "f
I-2" "$(as_app ct_app "BEGIN" "$(claims "$KC_I")" "SAVEPOINT s1" \
	"INSERT INTO t_enc_id VALUES (211, '$KC_I', tenant_guard.encrypt_text('I-1', 't_enc.secret'))" "ROLLBACK TO s1" \
	"INSERT INTO t_enc_id VALUES (212, '$KC_I', tenant_guard.encrypt_text('I-2', 't_enc.secret'))" \
	"SELECT string_agg(tenant_guard.decrypt_text(secret, 't_enc.secret'), ',' ORDER BY id) FROM t_enc_id WHERE org_id = '$KC_I'" \
	"ROLLBACK")"
for n in coord w1 w2; do
	check "savepoint checks rolled back: no key of I on $n" "0 0 -" "$(keys_on "$n" "$KC_I")"
done
# a version made by rotate_key() earlier in the transaction
a_before=$(keys_on coord "$ORG_A")
check "rotate_key() then encrypt() and decrypt() on the workers in its transaction" "f
f
A-rot
A-one,A-rot,A-two" "$(psql -X -q -At -c "BEGIN" -c "SELECT tenant_guard.rotate_key('$ORG_A') IS NULL" -c "$(claims "$ORG_A")" \
	-c "INSERT INTO t_enc VALUES (3, '$ORG_A', tenant_guard.encrypt_text('A-rot', 't_enc.secret'))" \
	-c "SELECT tenant_guard.decrypt_text(secret, 't_enc.secret') FROM t_enc WHERE org_id = '$ORG_A' AND id = 3" \
	-c "SELECT string_agg(tenant_guard.decrypt_text(secret, 't_enc.secret'), ',' ORDER BY body) FROM (SELECT secret, tenant_guard.decrypt_text(secret, 't_enc.secret') body FROM t_enc WHERE org_id = '$ORG_A') s" \
	-c "ROLLBACK" 2>&1 | grep -v '^$')"
for n in coord w1 w2; do
	check "rotate_key() used on the workers, rolled back: A's keys as before on $n" "$a_before" "$(keys_on "$n" "$ORG_A")"
done
# a shred later in the same transaction wins over the forwarded key: the
# application role's worker backends (not the owner's, which wrote the copies)
# have no row of H, so only the forwarded key could serve them
h_ins=$(sed "s/$KC_G/$KC_H/g; s/(201,/(221,/; s/(202,/(222,/" <<<"$g_ins")
h_sel=$(sed "s/$KC_G/$KC_H/g" <<<"$g_sel")
check "first key, then shred_keys() in the same transaction: refused on the workers" "f
G-1,G-2
t
refused" "$(psql -X -q -At -c "BEGIN" -c "SET LOCAL ROLE ct_app" -c "$(claims "$KC_H")" -c "$h_ins" -c "$h_sel" \
	-c "RESET ROLE" -c "SELECT tenant_guard.shred_keys('$KC_H') > 0" -c "SET LOCAL ROLE ct_app" -c "$h_sel" \
	-c "ROLLBACK" 2>&1 | grep -v '^$' | grep -v '^\(DETAIL\|CONTEXT\):' \
	| sed 's/^ERROR: .*ciphertext authentication failed.*/refused/; s/^ERROR: .*was shredded.*/refused by a shredded row/')"
# Attacks on the forwarded value (test/citus/forwarded_keys.py)
KC_K=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
KC_N=bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb
KC_J=cccccccc-cccc-4ccc-8ccc-cccccccccccc
KC_P=dddddddd-dddd-4ddd-8ddd-dddddddddddd
KC_Q=eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee
fk_out=$(ORG_P=$KC_P ORG_Q=$KC_Q A_VERSION=$(q -c "SELECT version FROM tenant_guard.tenant_keys WHERE org_id = '$ORG_A' AND state = 'active'") \
	/usr/bin/python3 "$ROOT/test/citus/forwarded_keys.py" "$W/fixtures/master.key" "$KC_K" "$KC_N" "$ORG_A" "$KC_J" 2>&1) \
	|| fail "forwarded_keys.py failed: $fk_out"
fk() { sed -n "s/^$1: //p" <<<"$fk_out"; }
check "forwarded: first key, router read on the worker" "K-1" "$(fk 'first key, router read on the worker')"
check "forwarded: the worker holds the forwarded key" "True" "$(fk 'the worker holds a forwarded key')"
for n in coord w1 w2; do
	check "forwarded: K's key rolled back: none on $n" "0 0 -" "$(keys_on "$n" "$KC_K")"
done
refused_on_worker="refused: ciphertext authentication failed (reached the worker: True)"
check "forwarded: a captured value replayed in another transaction" "$refused_on_worker" "$(fk 'replayed in another transaction')"
check "forwarded: a random MAC" "$refused_on_worker" "$(fk 'random MAC')"
check "forwarded: relabelled to another tenant" "$refused_on_worker" "$(fk 'relabelled to another tenant')"
check "forwarded: random bytes" "$refused_on_worker" "$(fk 'random bytes')"
check "forwarded: a valid entry for its own transaction is used (the documented MAC)" "N-forwarded" \
	"$(fk 'valid entry for this transaction')"
check "forwarded: that valid entry replayed in another transaction" "$refused_on_worker" \
	"$(fk 'valid entry replayed in another transaction')"
check "forwarded: a worker with a local key uses it" "A-local" "$(fk 'local key, own value')"
check "forwarded: a worker with a local key ignores a forwarded one of that version" \
	"refused: ciphertext authentication failed" "$(fk 'local key, value under a forwarded key of the same version')"
check "forwarded: a value captured before shred_keys() replayed after it" \
	"refused: key version 1 was shredded (reached the worker: True)" "$(fk 'replayed after shred_keys()')"
check "forwarded: concurrent first keys, the first commits: the second uses its key" "one two" \
	"$(fk 'concurrent first keys, first commit: reads')"
check "forwarded: concurrent first keys, the first rolls back: the second makes its own" "one two" \
	"$(fk 'concurrent first keys, first rollback: reads')"
for n in coord w1 w2; do
	check "forwarded: concurrent first keys: one key of P on $n" "1 1 active" "$(keys_on "$n" "$KC_P")"
	check "forwarded: concurrent first keys: one key of Q on $n" "1 1 active" "$(keys_on "$n" "$KC_Q")"
done
for o in P Q; do
	org=$KC_P; id=312; [ $o = P ] || { org=$KC_Q; id=322; }
	check "forwarded: concurrent first keys: the second transaction's row of $o decrypts after COMMIT" "f
two" "$(as_app ct_app "BEGIN" "$(claims "$org")" \
		"SELECT tenant_guard.decrypt_text(secret, 't_enc.secret') FROM t_enc_id WHERE id = $id" "COMMIT")"
	check "forwarded: concurrent first keys ($o): the second transaction waited for the first" "True" \
		"$(fk "concurrent first keys, first $([ $o = P ] && echo commit || echo rollback): the second waited")"
done
