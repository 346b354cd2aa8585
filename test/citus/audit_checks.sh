# test/citus/audit_checks.sh: sourced by run_citus.sh (its q, check, as_app,
# claims, soft, fail, PORT, ORG_A, ORG_B). Audit of a distributed table
# (docs/citus.md, "Audit"): the triggers on every shard, records in each
# worker's own log under the distributed table's name, read by the tenant's
# admin through audit_trail on the coordinator, checked by verify_audit();
# router and multi-shard (two-phase commit) updates, a rollback, a prepared
# transaction rolled back, a shard move, and a hostile application role.

admin() {  # admin ORG [ROLE]: the claims of that tenant's user with an in-tenant role (default admin)
	echo "SELECT set_config('request.jwt.claims', '{\"org_id\": \"$1\", \"sub\": \"alice\", \"org_role\": \"${2:-admin}\"}', true) IS NULL"
}
trail() {  # trail ORG SQL-ON-audit_trail [ROLE]: as ct_app with that tenant's admin context
	as_app ct_app "BEGIN" "$(admin "$1" "${3:-admin}")" "$2" "COMMIT" | sed 1d
}
says() {  # says PATTERN PSQL-ARGS...: "refused" when psql's output (errors included) matches PATTERN
	local pat=$1 out; shift
	out=$(q "$@" 2>&1) || true
	grep -e "$pat" >/dev/null <<<"$out" && echo refused || echo "accepted: $out"
}
nrec() {  # nrec PORT: rows of the audit log on that node
	q -p "$1" -c "SELECT count(*) FROM tenant_guard.audit_log"
}
shard_port() {  # shard_port ORG: the node of the shard of t_aud holding that tenant
	q -c "SELECT p.nodeport FROM pg_dist_shard_placement p
	      WHERE p.shardid = get_shard_id_for_distribution_column('t_aud', '$1')"
}

q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE t_aud (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (org_id, id));
SELECT create_distributed_table('t_aud', 'org_id');
SELECT tenant_guard.protect('t_aud');
INSERT INTO t_aud VALUES (1, '$ORG_A', 'a1'), (2, '$ORG_A', 'a2'), (3, '$ORG_A', 'a3'), (4, '$ORG_B', 'b4'), (5, '$ORG_B', 'b5');
GRANT SELECT, INSERT, UPDATE, DELETE ON t_aud TO ct_app;
SQL
# A's shard on w1 and B's on w2, so that a write to both is a two-phase commit
for o in A B; do
	org=$ORG_A want=${PORT[w1]} other=${PORT[w2]}
	[ $o = A ] || { org=$ORG_B want=${PORT[w2]} other=${PORT[w1]}; }
	if [ "$(shard_port "$org")" != "$want" ]; then
		soft -c "SELECT citus_move_shard_placement(get_shard_id_for_distribution_column('t_aud', '$org'),
		         '127.0.0.1', $other, '127.0.0.1', $want, shard_transfer_mode => 'block_writes')" >/dev/null
	fi
done
check "audit: tenants A and B on different workers" "${PORT[w1]} ${PORT[w2]}" "$(shard_port "$ORG_A") $(shard_port "$ORG_B")"

check "audit: enable_audit() on a reference table is refused" "refused" \
	"$(says 'shards have several placements' -c "SELECT tenant_guard.enable_audit('t_ref1')")"
step "enable_audit() on a distributed table" "SELECT tenant_guard.enable_audit('t_aud', redact_columns => '{body}')"
check "audit: TRUNCATE of the audited distributed table is refused" "refused" \
	"$(says 'cannot truncate audited table' -c "TRUNCATE t_aud")"
ntrig=$(q -c "SELECT count(*) FROM pg_trigger g JOIN pg_proc f ON f.oid = g.tgfoid
              WHERE g.tgrelid = 't_aud'::regclass AND f.pronamespace = 'tenant_guard'::regnamespace AND f.proname LIKE '\\_audit%' AND f.proname <> '_audit_refuse_truncate'")
check "audit: the shell table has audit triggers" "t" "$([ "${ntrig:-0}" -gt 0 ] && echo t || echo f)"
check "audit: every shard placement has the same audit triggers" "$ntrig" \
	"$(q -c "SELECT string_agg(DISTINCT result, ',') FROM run_command_on_placements('t_aud',
	         \$\$SELECT count(*) FROM pg_trigger g JOIN pg_proc f ON f.oid = g.tgfoid WHERE g.tgrelid = '%s'::regclass
	           AND f.pronamespace = 'tenant_guard'::regnamespace AND f.proname LIKE '\\_audit%%'
	           AND f.proname <> '_audit_refuse_truncate'\$\$)")"
for n in w1 w2; do
	check "audit: registry of t_aud on $n" "1" \
		"$(q -p "${PORT[$n]}" -c "SELECT count(*) FROM tenant_guard.audited_tables WHERE tbl = 't_aud'::regclass")"
done

c0=$(nrec "${PORT[coord]}") w10=$(nrec "${PORT[w1]}") w20=$(nrec "${PORT[w2]}")
# a router UPDATE as A's admin
check "audit: router UPDATE as A" "UPDATE 1" "$(psql -X -At -U ct_app -c "BEGIN" -c "$(admin "$ORG_A")" \
	-c "UPDATE t_aud SET body = 'a1x' WHERE org_id = '$ORG_A' AND id = 1" -c "COMMIT" 2>&1 | grep '^UPDATE\|ERROR')"
check "audit: the router UPDATE is recorded on A's worker only" "0 more 0" \
	"$(($(nrec "${PORT[coord]}") - c0)) $([ "$(nrec "${PORT[w1]}")" -gt "$w10" ] && echo more || echo none) $(($(nrec "${PORT[w2]}") - w20))"
check "audit: A's admin reads the router UPDATE through audit_trail on the coordinator" \
	"UPDATE|public.t_aud|alice|127.0.0.1:${PORT[w1]}|{\"id\": 1, \"org_id\": \"$ORG_A\"}|[redacted]" \
	"$(trail "$ORG_A" "SELECT action || '|' || table_name || '|' || actor || '|' || node || '|' || row_pk::text || '|'
	                     || (new_row ->> 'body') FROM tenant_guard.audit_trail WHERE kind = 'row'")"

# a multi-shard UPDATE that writes on both workers: committed with PREPARE
# TRANSACTION on each (two-phase commit), sealed there
w11=$(nrec "${PORT[w1]}") w21=$(nrec "${PORT[w2]}")
check "audit: multi-shard UPDATE on both workers (two-phase commit)" "UPDATE 5" \
	"$(psql -X -At -c "UPDATE t_aud SET body = body || '!'" 2>&1 | grep '^UPDATE\|ERROR')"
check "audit: the multi-shard UPDATE is recorded on both workers" "more more" \
	"$([ "$(nrec "${PORT[w1]}")" -gt "$w11" ] && echo more || echo none) $([ "$(nrec "${PORT[w2]}")" -gt "$w21" ] && echo more || echo none)"
check "audit: multi-shard UPDATE as A's admin in a transaction" "UPDATE 3" "$(psql -X -At -U ct_app -c "BEGIN" -c "$(admin "$ORG_A")" \
	-c "UPDATE t_aud SET body = body || '?'" -c "COMMIT" 2>&1 | grep '^UPDATE\|ERROR')"
check "audit: A's admin reads A's three UPDATEs, each row once per UPDATE" "1:3 2:2 3:2" \
	"$(trail "$ORG_A" "SELECT string_agg(k || ':' || n, ' ' ORDER BY k) FROM (SELECT row_pk ->> 'id' AS k, count(*) AS n
	                     FROM tenant_guard.audit_trail WHERE kind = 'row' AND action = 'UPDATE' GROUP BY 1) s")"

# a rollback leaves nothing on any node
c1=$(nrec "${PORT[coord]}") w12=$(nrec "${PORT[w1]}") w22=$(nrec "${PORT[w2]}")
soft -c "BEGIN" -c "UPDATE t_aud SET body = 'gone'" -c "DELETE FROM t_aud WHERE id = 2" -c "ROLLBACK"
soft -U ct_app -c "BEGIN" -c "$(admin "$ORG_A")" -c "UPDATE t_aud SET body = 'gone' WHERE id = 1" -c "ROLLBACK"
check "audit: nothing recorded by rolled-back work, on any node" "$c1 $w12 $w22" \
	"$(nrec "${PORT[coord]}") $(nrec "${PORT[w1]}") $(nrec "${PORT[w2]}")"

# the tenant reads only its own records
check "audit: A's admin reads only A's records, the workers' included" "true 0" \
	"$(trail "$ORG_A" "SELECT (count(*) FILTER (WHERE node IS NOT NULL) >= 4) || ' ' || count(*) FILTER (WHERE org <> '$ORG_A')
	                     FROM tenant_guard.audit_trail")"
check "audit: B's admin reads only B's records" "true 0" \
	"$(trail "$ORG_B" "SELECT (count(*) FILTER (WHERE node = '127.0.0.1:${PORT[w2]}') >= 1) || ' ' || count(*) FILTER (WHERE org <> '$ORG_B')
	                     FROM tenant_guard.audit_trail")"
check "audit: A's member (not the reader role) reads nothing" "0" \
	"$(trail "$ORG_A" "SELECT count(*) FROM tenant_guard.audit_trail" member)"
check "audit: no context reads nothing" "0" "$(as_app ct_app "SELECT count(*) FROM tenant_guard.audit_trail")"
check "audit: audit_csv() as A's admin includes the workers' records" "t" \
	"$(trail "$ORG_A" "SELECT count(*) > 4 FROM tenant_guard.audit_csv(NULL, '-infinity', 'infinity')")"

# the application role cannot reach other tenants' worker records, nor forge one
check "audit: a quote in the claimed org id reads nothing of B" "0" \
	"$(as_app ct_app "BEGIN" "SELECT set_config('request.jwt.claims', '{\"org_id\": \"x'' OR true OR ''\", \"org_role\": \"admin\"}', true) IS NULL" \
		"SELECT count(*) FROM tenant_guard.audit_trail WHERE org = '$ORG_B'" "COMMIT" | sed 1d | grep -v '^ERROR' | sed 's/^$/0/' | tail -1)"
for n in w1 w2; do
	check "audit: the app role on $n directly, no context, reads no record" "0" \
		"$(q -U ct_app -p "${PORT[$n]}" -c "SELECT count(*) FROM tenant_guard.audit_log" 2>&1)"
	check "audit: the app role on $n directly, as A's admin, reads no record of B" "0" \
		"$(q -U ct_app -p "${PORT[$n]}" -c "BEGIN" -c "$(admin "$ORG_A")" -c "SELECT count(*) FROM tenant_guard.audit_log WHERE org <> '$ORG_A'" -c "COMMIT" 2>&1 | tail -1)"
	check "audit: the app role cannot insert a record on $n" "refused" \
		"$(says 'permission denied' -U ct_app -p "${PORT[$n]}" -c "INSERT INTO tenant_guard.audit_log (id) VALUES (1)")"
	check "audit: the app role cannot register a table for audit on $n" "refused" \
		"$(says 'permission denied' -U ct_app -p "${PORT[$n]}" -c "SELECT tenant_guard._citus_put_audited('public', 't_dp', '{}', '{}', false)")"
done
soft -p "${PORT[w1]}" -c "SET citus.enable_ddl_propagation = off" -c "CREATE SCHEMA forge AUTHORIZATION ct_app"
before_forge=$(nrec "${PORT[w1]}")
check "audit: the app role's own table on a worker with the audit trigger attached cannot write a record" "refused" \
	"$(says 'table t is not audited by tenant_guard' -U ct_app -p "${PORT[w1]}" -c "CREATE TABLE forge.t (org_id uuid)" \
	     -c "CREATE TRIGGER f AFTER INSERT ON forge.t FOR EACH ROW EXECUTE FUNCTION tenant_guard._audit_trigger()" \
	     -c "INSERT INTO forge.t VALUES ('$ORG_B')")"
check "audit: ... and no record was written on w1" "$before_forge" "$(nrec "${PORT[w1]}")"

# verify_audit() on the coordinator checks every node's chain
check "audit: verify_audit_nodes() has every node, each ok" "3 3" \
	"$(q -c "SELECT count(*) || ' ' || count(*) FILTER (WHERE ok) FROM tenant_guard.verify_audit_nodes()")"
check "audit: verify_audit() covers the workers' records" "true true" \
	"$(q -c "SELECT v.ok || ' ' || (v.records > (SELECT count(*) FROM tenant_guard.audit_log WHERE kind <> 'seal'))
	         FROM tenant_guard.verify_audit() v")"
check "audit: verify_audit(A) ok" "t" "$(q -c "SELECT ok FROM tenant_guard.verify_audit('$ORG_A')")"

# a prepared transaction on a worker rolled back after others sealed: its
# seal number becomes a VOID seal, the chain stays whole
ashard=$(q -c "SELECT 't_aud_' || get_shard_id_for_distribution_column('t_aud', '$ORG_A')")
soft -p "${PORT[w1]}" -c "BEGIN" -c "UPDATE $ashard SET body = body WHERE id = 3" -c "UPDATE $ashard SET body = 'p' WHERE id = 3" \
	-c "PREPARE TRANSACTION 'tg_audit_prepared'"
soft -p "${PORT[w1]}" -c "UPDATE $ashard SET body = 'q' WHERE id = 1"  # (row 3 is locked by the prepared one)
soft -p "${PORT[w1]}" -c "ROLLBACK PREPARED 'tg_audit_prepared'"
soft -p "${PORT[w1]}" -c "UPDATE $ashard SET body = 'r' WHERE id = 3"
check "audit: a prepared transaction rolled back leaves a VOID seal" "1" \
	"$(q -p "${PORT[w1]}" -c "SELECT count(*) FROM tenant_guard.audit_log WHERE action = 'VOID' AND detail ->> 'reason' LIKE '%prepared, then rolled back'")"
check "audit: the worker's chain verifies after the rolled-back prepared transaction" "t" \
	"$(q -c "SELECT ok FROM tenant_guard.verify_audit_nodes() WHERE node = '127.0.0.1:${PORT[w1]}'")"

# a shard move after records exist: the old records stay readable and
# verifiable where they were written, new writes are recorded on the new node
before=$(trail "$ORG_A" "SELECT count(*) FROM tenant_guard.audit_trail")
soft -c "SELECT citus_move_shard_placement(get_shard_id_for_distribution_column('t_aud', '$ORG_A'),
         '127.0.0.1', ${PORT[w1]}, '127.0.0.1', ${PORT[w2]}, shard_transfer_mode => 'block_writes')" >/dev/null
check "audit: A's shard moved to w2" "${PORT[w2]}" "$(shard_port "$ORG_A")"
check "audit: after the move A's admin still reads every record" "$before" "$(trail "$ORG_A" "SELECT count(*) FROM tenant_guard.audit_trail")"
check "audit: after the move verify_audit() ok" "t" "$(q -c "SELECT ok FROM tenant_guard.verify_audit()")"
soft -U ct_app -c "BEGIN" -c "$(admin "$ORG_A")" -c "UPDATE t_aud SET body = 'moved' WHERE org_id = '$ORG_A' AND id = 2" -c "COMMIT"
check "audit: a write after the move is recorded on the new node" "1" \
	"$(trail "$ORG_A" "SELECT count(*) FROM tenant_guard.audit_trail WHERE node = '127.0.0.1:${PORT[w2]}' AND table_name = 'public.t_aud'
	                     AND new_row ->> 'body' = '[redacted]' AND row_pk ->> 'id' = '2' AND action = 'UPDATE'
	                     AND statement_at > (SELECT max(statement_at) FROM tenant_guard.audit_trail WHERE node = '127.0.0.1:${PORT[w1]}')")"

# an edited record on a worker is found by verify_audit() on the coordinator, naming the node
soft -p "${PORT[w1]}" -c "SET session_replication_role = replica" \
	-c "UPDATE tenant_guard.audit_log SET actor = 'mallory' WHERE id = (SELECT min(id) FROM tenant_guard.audit_log WHERE kind = 'rows')"
check "audit: a record edited on w1 is reported by verify_audit() on the coordinator" "false true" \
	"$(q -c "SELECT ok || ' ' || (problem LIKE 'on 127.0.0.1:${PORT[w1]}: record % was edited%') FROM tenant_guard.verify_audit()")"

# disable_audit() drops the shards' triggers and the workers' registry rows
step "disable_audit() on a distributed table" "SELECT tenant_guard.disable_audit('t_aud')"
check "audit: no audit trigger left on any shard placement" "0" \
	"$(q -c "SELECT string_agg(DISTINCT result, ',') FROM run_command_on_placements('t_aud',
	         \$\$SELECT count(*) FROM pg_trigger g JOIN pg_proc f ON f.oid = g.tgfoid WHERE g.tgrelid = '%s'::regclass
	           AND f.pronamespace = 'tenant_guard'::regnamespace AND f.proname LIKE '\\_audit%%'
	           AND f.proname <> '_audit_refuse_truncate'\$\$)")"
check "audit: no registry row left on the workers" "0 0" \
	"$(q -p "${PORT[w1]}" -c "SELECT count(*) FROM tenant_guard.audited_tables WHERE tbl = 't_aud'::regclass") $(q -p "${PORT[w2]}" -c "SELECT count(*) FROM tenant_guard.audited_tables WHERE tbl = 't_aud'::regclass")"
