# test/citus/lifecycle_checks.sh: sourced by test/citus/run_citus.sh (uses its
# q, check, soft, as_app, claims, PORT, ORG_A, ORG_B). The tenant lifecycle on
# distributed and reference tables (docs/lifecycle.md, docs/citus.md):
#   the registry reaches every worker in the changing transaction (and only
#   when it commits); an archived tenant's INSERT, UPDATE and DELETE are
#   refused through router and multi-shard queries, on the coordinator, on a
#   worker planning the query itself, and on its shard read directly; reading
#   still works; reactivate restores writes; export returns the distributed
#   rows under their tables' names; purge leaves no row on any shard
#   placement, its certificate verifies, the tenant's keys are shredded on
#   every node, and the other tenants are untouched; citus_sync() repairs a
#   worker's registry; a lifecycle function refuses to run on a worker.
# And COPY ... FROM with the context set outside a transaction block, or just
# before the COPY in one, reaches the workers.

ORG_C=33333333-3333-4333-8333-333333333333
LC_TABLES="t_dp t_other t_ref2 s1.d"
q >/dev/null <<SQL
SET client_min_messages = warning;
INSERT INTO t_dp VALUES (11, '$ORG_C', 'c11'), (12, '$ORG_C', 'c12'), (13, '$ORG_C', 'c13');
INSERT INTO t_other VALUES (11, '$ORG_C', 'c11'), (12, '$ORG_C', 'c12'), (13, '$ORG_C', 'c13');
INSERT INTO t_ref2 VALUES (11, '$ORG_C', 'c11'), (12, '$ORG_C', 'c12'), (13, '$ORG_C', 'c13');
INSERT INTO s1.d VALUES (11, '$ORG_C', 'c11'), (12, '$ORG_C', 'c12'), (13, '$ORG_C', 'c13');
SQL
# rows of A and B in every protected table, to compare after the purge of C
others_rows() {
	q -c "SELECT string_agg(tbl || '=' || n, ' ' ORDER BY tbl) FROM (
	        SELECT 't_dp' tbl, count(*) n FROM t_dp WHERE org_id <> '$ORG_C' UNION ALL
	        SELECT 't_other', count(*) FROM t_other WHERE org_id <> '$ORG_C' UNION ALL
	        SELECT 't_ref2', count(*) FROM t_ref2 WHERE org_id <> '$ORG_C' UNION ALL
	        SELECT 's1.d', count(*) FROM s1.d WHERE org_id <> '$ORG_C' UNION ALL
	        SELECT 't_enc', count(*) FROM t_enc WHERE org_id <> '$ORG_C') x"
}
others_before=$(others_rows)
# C's first key, made by encrypt() on the coordinator and copied to the workers
soft -U ct_app -c "BEGIN" -c "$(claims "$ORG_C")" \
	-c "INSERT INTO t_enc VALUES (1, '$ORG_C', tenant_guard.encrypt_text('C-one', 't_enc.secret'))" -c "COMMIT"

# app_on PORT SQL...: as ct_app on the node of PORT, in C's claims, in a
# transaction that is rolled back; prints the statements' output and errors
app_on() {
	local port=$1; shift
	local args=(-c "BEGIN" -c "$(claims "$ORG_C")") s
	for s in "$@"; do args+=(-c "$s"); done
	psql -X -q -At -p "$port" -U ct_app "${args[@]}" -c "ROLLBACK" 2>&1 | grep -v '^\(f\|\)$' || true
}
# refused OUTPUT: "archived" / "purged" when the lifecycle wall refused, the output otherwise
refused() {
	local w
	w=$(grep -o 'is archived: its data is read-only\|is purged: its data is read-only' <<<"$1" | head -1 || true)
	if [ -n "$w" ]; then w=${w#is }; echo "${w%%:*}"; else head -2 <<<"$1"; fi
}
# says PATTERN YES NO COMMAND...: YES when the command's output (errors
# included) matches PATTERN, NO otherwise (whatever its exit status)
says() {
	local pat=$1 yes=$2 no=$3 out
	shift 3
	out=$("$@" 2>&1 || true)
	if grep -q -- "$pat" <<<"$out"; then echo "$yes"; else echo "$no"; fi
}
registry_on() {  # registry_on NODE: C's status there
	q -p "${PORT[$1]}" -c "SELECT coalesce((SELECT status FROM tenant_guard.tenants WHERE org_id = '$ORG_C'), 'none')"
}

soft -c "SELECT tenant_guard.register_tenant('$ORG_A'::uuid, 'A')" -c "SELECT tenant_guard.register_tenant('$ORG_B'::uuid, 'B')" \
	-c "SELECT tenant_guard.register_tenant('$ORG_C'::uuid, 'C')"
for n in w1 w2; do check "lifecycle: registered tenant C on $n" "active" "$(registry_on $n)"; done
check "lifecycle: the registry is not the application role's to change on a worker" "denied" \
	"$(says 'permission denied' denied changed psql -X -q -At -p "${PORT[w1]}" -U ct_app \
		-c "UPDATE tenant_guard.tenants SET status = 'active'")"
check "lifecycle: register_tenant() refuses to run on a worker" "refused" \
	"$(says 'runs on the Citus coordinator only' refused ran \
		q -p "${PORT[w1]}" -c "SELECT tenant_guard.register_tenant('$ORG_C'::uuid, 'C2')")"

soft -c "SELECT tenant_guard.archive_tenant('$ORG_C'::uuid)"
for n in w1 w2; do check "lifecycle: archived tenant C on $n" "archived" "$(registry_on $n)"; done
# a rolled-back reactivation changes no worker
soft -c "BEGIN" -c "SELECT tenant_guard.reactivate_tenant('$ORG_C'::uuid)" -c "ROLLBACK"
for n in w1 w2; do check "lifecycle: rolled-back reactivation of C on $n" "archived" "$(registry_on $n)"; done

# writes of the archived tenant: on the coordinator (router and multi-shard), on
# a worker that plans the query itself, and on C's shard on its own node
shard=$(q -c "SELECT get_shard_id_for_distribution_column('t_dp', '$ORG_C')")
shard_port=$(q -c "SELECT nodeport FROM pg_dist_shard_placement WHERE shardid = $shard LIMIT 1")
archived_writes() {  # archived_writes WHAT EXPECTED
	local n
	for n in coord w1; do
		check "lifecycle: $1 C: router INSERT into t_dp on $n" "$2" \
			"$(refused "$(app_on "${PORT[$n]}" "INSERT INTO t_dp VALUES (14, '$ORG_C', 'c14')")")"
		check "lifecycle: $1 C: router UPDATE of t_dp on $n" "$2" \
			"$(refused "$(app_on "${PORT[$n]}" "UPDATE t_dp SET body = 'x' WHERE org_id = '$ORG_C' AND id = 11")")"
		check "lifecycle: $1 C: multi-shard UPDATE of t_dp on $n" "$2" \
			"$(refused "$(app_on "${PORT[$n]}" "UPDATE t_dp SET body = 'x'")")"
		check "lifecycle: $1 C: multi-shard DELETE from t_other on $n" "$2" \
			"$(refused "$(app_on "${PORT[$n]}" "DELETE FROM t_other")")"
		check "lifecycle: $1 C: UPDATE of reference table t_ref2 on $n" "$2" \
			"$(refused "$(app_on "${PORT[$n]}" "UPDATE t_ref2 SET body = 'x'")")"
		check "lifecycle: $1 C: INSERT ... SELECT into s1.d on $n" "$2" \
			"$(refused "$(app_on "${PORT[$n]}" "INSERT INTO s1.d SELECT id + 100, org_id, body FROM t_other")")"
	done
	check "lifecycle: $1 C: UPDATE of C's shard on its node" "$2" \
		"$(refused "$(app_on "$shard_port" "UPDATE t_dp_$shard SET body = 'x'")")"
	check "lifecycle: $1 C: DELETE from C's shard on its node" "$2" \
		"$(refused "$(app_on "$shard_port" "DELETE FROM t_dp_$shard")")"
}
archived_writes archived archived
for n in coord w1; do
	check "lifecycle: archived C still reads, multi-shard and reference, on $n" "3
3
3" "$(app_on "${PORT[$n]}" "SELECT count(*) FROM t_other" "SELECT count(*) FROM t_dp WHERE org_id = '$ORG_C'" \
		"SELECT count(*) FROM t_ref2")"
done
check "lifecycle: tenant A still writes while C is archived" "UPDATE 3" \
	"$(psql -X -q -At -p "${PORT[w1]}" -U ct_app -c "BEGIN" -c "$(claims "$ORG_A")" \
		-c "WITH u AS (UPDATE t_dp SET body = body RETURNING 1) SELECT 'UPDATE ' || count(*) FROM u" -c "ROLLBACK" 2>&1 \
		| grep -v '^f$')"

soft -c "SELECT tenant_guard.reactivate_tenant('$ORG_C'::uuid)"
for n in w1 w2; do check "lifecycle: reactivated C on $n" "active" "$(registry_on $n)"; done
for n in coord w1; do
	check "lifecycle: reactivated C writes again, router and multi-shard, on $n" "1
3
3" "$(app_on "${PORT[$n]}" "WITH u AS (INSERT INTO t_dp VALUES (14, '$ORG_C', 'c14') RETURNING 1) SELECT count(*) FROM u" \
		"WITH u AS (DELETE FROM t_other RETURNING 1) SELECT count(*) FROM u" \
		"WITH u AS (UPDATE t_ref2 SET body = body RETURNING 1) SELECT count(*) FROM u")"
done
check "lifecycle: reactivated C: UPDATE of C's shard on its node" "3" \
	"$(app_on "$shard_port" "WITH u AS (UPDATE t_dp_$shard SET body = body RETURNING 1) SELECT count(*) FROM u")"

# export: the distributed and reference rows, under their tables' names
q -c "CREATE TABLE lc_export AS SELECT d FROM tenant_guard.export_tenant('$ORG_C'::uuid) d" >/dev/null
check "lifecycle: export of C (superuser): rows per table" "public.t_dp=3 public.t_enc=1 public.t_other=3 public.t_ref2=3 s1.d=3" \
	"$(q -c "SELECT string_agg(k || '=' || v, ' ' ORDER BY k) FROM lc_export, jsonb_each_text(d->'manifest'->'tables') e(k, v)
	         WHERE d ? 'manifest' AND v <> '0'")"
check "lifecycle: export of C: documents, manifest count, complete, no shard name" "13 13 true 0" \
	"$(q -c "SELECT count(*) FILTER (WHERE d ? 'row') || ' ' || max(d->'manifest'->>'documents') || ' '
	                || max(d->'manifest'->>'complete') || ' '
	                || count(*) FILTER (WHERE d->>'table' ~ '_[0-9]+$' OR d->>'table' NOT LIKE '%.%') FROM lc_export")"
check "lifecycle: export of C: only C's rows" "0" \
	"$(q -c "SELECT count(*) FROM lc_export WHERE d ? 'row' AND d->'row'->>'org_id' <> '$ORG_C'")"
check "lifecycle: export of C: the manifest's chained hash" "t" \
	"$(q -c "WITH RECURSIVE docs AS (SELECT row_number() OVER () i, d FROM lc_export WHERE d ? 'row'),
	         h(i, v) AS (SELECT 0::bigint, sha256(''::bytea) UNION ALL
	                     SELECT h.i + 1, sha256(h.v || convert_to(docs.d::text, 'UTF8')) FROM h JOIN docs ON docs.i = h.i + 1)
	         SELECT encode(v, 'hex') = (SELECT d->'manifest'->>'sha256' FROM lc_export WHERE d ? 'manifest')
	         FROM h ORDER BY i DESC LIMIT 1")"
soft -c "GRANT EXECUTE ON FUNCTION tenant_guard.export_tenant(text, text[]) TO ct_app"
check "lifecycle: export of C in C's own context (claims forwarded): every row, complete" "13 true" \
	"$(app_on "${PORT[coord]}" "SELECT count(*) FILTER (WHERE d ? 'row') || ' ' || max(d->'manifest'->>'complete')
	                             FROM tenant_guard.export_tenant('$ORG_C') d")"
check "lifecycle: export of C in A's context is refused" "refused" \
	"$(says "needs that tenant's context" refused exported psql -X -q -At -U ct_app -c "BEGIN" -c "$(claims "$ORG_A")" \
		-c "SELECT count(*) FROM tenant_guard.export_tenant('$ORG_C') d" -c "ROLLBACK")"
soft -c "REVOKE EXECUTE ON FUNCTION tenant_guard.export_tenant(text, text[]) FROM ct_app"

# purge: archive, then purge; no row of C on any placement, certificate, keys
soft -c "SELECT tenant_guard.archive_tenant('$ORG_C'::uuid)"
cert=$(q -c "SELECT tenant_guard.purge_tenant('$ORG_C'::uuid, '$ORG_C')" 2>&1) || fail "purge_tenant() of C failed: $cert"
check "lifecycle: purge certificate of C: rows before/deleted/after per table" \
	"public.t_dp 3/3/0 public.t_enc 1/1/0 public.t_other 3/3/0 public.t_ref2 3/3/0 s1.d 3/3/0" \
	"$(q -c "SELECT string_agg(e->>'table' || ' ' || (e->>'rows_before') || '/' || (e->>'rows_deleted') || '/' || (e->>'rows_after'),
	                ' ' ORDER BY e->>'table') FROM jsonb_array_elements(('$cert'::jsonb)->'tables') e
	         WHERE (e->>'rows_before')::int > 0")"
check "lifecycle: purge certificate of C verifies and is kept" "true true" \
	"$(q -c "SELECT (c.sha256 = encode(sha256(convert_to((c.certificate - 'sha256')::text, 'UTF8')), 'hex')) || ' '
	                || (c.sha256 = ('$cert'::jsonb)->>'sha256')
	         FROM tenant_guard.purge_certificates c WHERE c.org_id = '$ORG_C'")"
check "lifecycle: purge of C shredded its key version" "[1]" "$(q -c "SELECT ('$cert'::jsonb)->>'key_versions_shredded'")"
for t in $LC_TABLES t_enc; do
	check "lifecycle: no row of C on any placement of $t" "0" \
		"$(q -c "SELECT sum(result::bigint) FROM run_command_on_placements('$t',
		         \$\$SELECT count(*) FROM %s WHERE org_id = '$ORG_C'\$\$)")"
done
for n in w1 w2; do
	check "lifecycle: purged C on $n" "purged" "$(registry_on $n)"
	check "lifecycle: C's key shredded on $n" "shredded" \
		"$(q -p "${PORT[$n]}" -c "SELECT string_agg(DISTINCT state, ',') FROM tenant_guard.tenant_keys WHERE org_id = '$ORG_C'")"
done
check "lifecycle: purge left A's and B's rows" "$others_before" "$(others_rows)"
for n in coord w1; do
	check "lifecycle: purged C: router INSERT into t_dp on $n" "purged" \
		"$(refused "$(app_on "${PORT[$n]}" "INSERT INTO t_dp VALUES (14, '$ORG_C', 'c14')")")"
done

# citus_sync() repairs a worker's registry
soft -c "SELECT run_command_on_workers('DELETE FROM tenant_guard.tenants')" >/dev/null
check "lifecycle: a worker that lost its registry" "none" "$(registry_on w2)"
soft -c "SELECT tenant_guard.citus_sync()" >/dev/null
for n in w1 w2; do
	check "lifecycle: citus_sync() copies the registry to $n" "3 purged" \
		"$(q -p "${PORT[$n]}" -c "SELECT count(*) || ' ' || (SELECT status FROM tenant_guard.tenants WHERE org_id = '$ORG_C')
		                          FROM tenant_guard.tenants")"
done

# COPY ... FROM: the context reaches the workers (a CHECK on the shards reads it)
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE t_copy (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (org_id, id),
                     CHECK (coalesce(org_id = tenant_guard.current_user_org_id(), false)));
SELECT create_distributed_table('t_copy', 'org_id');
SQL
check "COPY ... FROM in autocommit, context set by an earlier statement" "COPY 2" \
	"$(printf '1\t%s\tx\n2\t%s\ty\n' "$ORG_A" "$ORG_A" | psql -X -q -At \
		-c "SELECT set_config('request.jwt.claims', '{\"org_id\": \"$ORG_A\"}', false) IS NULL" \
		-c "COPY t_copy (id, org_id, body) FROM STDIN" 2>&1 | grep -v '^f$'; q -c "SELECT 'COPY ' || count(*) FROM t_copy")"
check "COPY ... FROM in a transaction, right after set_config(..., true)" "COPY 3" \
	"$(printf '3\t%s\tx\n' "$ORG_A" | psql -X -q -At -c "BEGIN" \
		-c "SELECT set_config('request.jwt.claims', '{\"org_id\": \"$ORG_A\"}', true) IS NULL" \
		-c "COPY t_copy (id, org_id, body) FROM STDIN" -c "COMMIT" 2>&1 | grep -v '^f$'; q -c "SELECT 'COPY ' || count(*) FROM t_copy")"
check "COPY ... FROM in autocommit: the workers see the context's tenant, not another" "refused" \
	"$(printf '4\t%s\tx\n' "$ORG_B" | says 'violates check constraint' refused copied psql -X -q -At \
		-c "SELECT set_config('request.jwt.claims', '{\"org_id\": \"$ORG_A\"}', false) IS NULL" \
		-c "COPY t_copy (id, org_id, body) FROM STDIN")"
# (its CHECK needs a context: a later shard move of a co-located table would copy
# its rows without one)
q -c "DROP TABLE t_copy" >/dev/null

# The attack grid as a role that takes its context from claims on the workers
# (ct_app): its attempts set claims, which reach the workers. As a signed role
# (ct_app_signed: context_source = signed on every node, and on the
# coordinator for the grid's session, as a signed deployment has it): its
# attempts forward tokens of tenant A that the grid signs with the HS256 key,
# which each worker verifies itself; no token reaches the grid's output, its
# messages or any node's log. Without an HS256 key the grid uses the caller's
# own token of tenant A, and without that it says what to configure.
soft -c "CREATE ROLE ct_app_signed LOGIN" -c "ALTER ROLE ct_app_signed SET tenant_guard.context_source = 'signed'" \
	-c "GRANT SELECT, INSERT, UPDATE, DELETE ON t_dp, t_ref2, s1.d TO ct_app_signed" \
	-c "GRANT USAGE ON SCHEMA s1 TO ct_app_signed"
for n in w1 w2; do
	soft -p "${PORT[$n]}" -c "ALTER ROLE ct_app_signed SET tenant_guard.context_source = 'signed'"
done
out=$(q -c "CREATE TABLE grid_claims AS SELECT * FROM tenant_guard.attack_grid('ct_app', '$ORG_A', '$ORG_B')" 2>&1) \
	|| fail "attack_grid() as ct_app failed: $(grep -v 'pg_temp\|created only locally' <<<"$out" | head -5)"
for t in t_dp t_other t_ref2 s1.d s1.r; do
	for v in read_other_tenant read_unfiltered update_other_tenant delete_other_tenant insert_select_other_tenant; do
		check "attack_grid as a claims role, $t: $v" "blocked" \
			"$(q -c "SELECT string_agg(outcome, ',') FROM grid_claims WHERE tbl = '$t'::regclass AND vector = '$v'")"
	done
	check "attack_grid as a claims role, $t: nothing skipped for want of context" "0" \
		"$(q -c "SELECT count(*) FROM grid_claims WHERE tbl = '$t'::regclass AND detail LIKE '%did not reach them%'")"
	check "attack_grid as a claims role, $t: no leak but the claims source itself" "" \
		"$(q -c "SELECT string_agg(vector, ',') FROM grid_claims WHERE tbl = '$t'::regclass AND outcome = 'leak'
		         AND vector NOT IN ('query_text', 'forged_claims', 'temp_object')")"
done
declare -A logsize
for n in coord w1 w2; do logsize[$n]=$(stat -c %s "$W/$n/server.log"); done
out=$(q -c "SET tenant_guard.context_source = 'signed'" \
	-c "CREATE TABLE grid_signed AS SELECT * FROM tenant_guard.attack_grid('ct_app_signed', '$ORG_A', '$ORG_B')" 2>&1) \
	|| fail "attack_grid() as ct_app_signed failed: $(grep -v 'pg_temp\|created only locally' <<<"$out" | head -5)"
for t in t_dp t_ref2 s1.d; do
	for v in read_other_tenant read_unfiltered update_other_tenant delete_other_tenant insert_select_other_tenant \
		forged_token forged_signed_context forged_claims forged_setting no_context; do
		check "attack_grid as a signed role, $t: $v" "blocked" \
			"$(q -c "SELECT string_agg(outcome, ',') FROM grid_signed WHERE tbl = '$t'::regclass AND vector = '$v'")"
	done
	check "attack_grid as a signed role, $t: nothing skipped for want of context" "0" \
		"$(q -c "SELECT count(*) FROM grid_signed WHERE tbl = '$t'::regclass AND detail LIKE '%did not reach them%'")"
	check "attack_grid as a signed role, $t: no leak but the unhardened role's own" "" \
		"$(q -c "SELECT string_agg(vector, ',') FROM grid_signed WHERE tbl = '$t'::regclass AND outcome = 'leak'
		         AND vector NOT IN ('query_text', 'temp_object')")"
done
# A's rows of the reference table were reached on every placement: moving them
# to B is refused by the wall's WITH CHECK, not left untouched for want of a
# context (on tables distributed by the tenant column Citus refuses the move)
check "attack_grid as a signed role, t_ref2: A's rows reached, their move to B refused" "blocked refused" \
	"$(q -c "SELECT outcome || ' ' || split_part(detail, ':', 1) FROM grid_signed
	         WHERE tbl = 't_ref2'::regclass AND vector = 'update_move_to_other_tenant'")"
check "attack_grid as a signed role: no token in its output or messages" "0 0" \
	"$(q -c "SELECT count(*) FROM grid_signed WHERE detail LIKE '%eyJ%'") $(grep -c 'eyJ' <<<"$out" || true)"
for n in coord w1 w2; do
	check "attack_grid as a signed role: no token in the server log of $n" "0" \
		"$(tail -c +$((logsize[$n] + 1)) "$W/$n/server.log" | grep -c 'eyJ' || true)"
done
check "attack_grid: a signed role whose tokens the grid cannot sign is told what to configure" "skipped true" \
	"$(q -c "SET tenant_guard.context_source = 'signed'" -c "SET tenant_guard.jwt_jwks_file = '$JWKS_FILE'" \
		-c "SELECT outcome || ' ' || (detail LIKE '%did not reach them%' AND detail LIKE '%no HS256 key to sign a token with%'
		                              AND detail LIKE '%jwt_jwks_file holds no HS256%'
		                              AND detail LIKE '%Configure an HS256 key on every node%set_context()%')
		    FROM tenant_guard.attack_grid('ct_app_signed', '$ORG_A', '$ORG_B')
		    WHERE tbl = 't_dp'::regclass AND vector = 'read_other_tenant'" 2>/dev/null)"
# With keys it cannot sign with (a key set of public keys on every node), the
# grid uses the caller's own token of tenant A (set_context() before it, here
# through COPY): the workers verify it with their key set.
jwks_on_workers() {  # jwks_on_workers FILE|'': set or reset the workers' key set, and wait for it
	local n
	for n in w1 w2; do
		if [ -n "$1" ]; then
			soft -p "${PORT[$n]}" -c "ALTER SYSTEM SET tenant_guard.jwt_jwks_file = '$1'" -c "SELECT pg_reload_conf()"
		else
			soft -p "${PORT[$n]}" -c "ALTER SYSTEM RESET tenant_guard.jwt_jwks_file" -c "SELECT pg_reload_conf()"
		fi
		for _ in $(seq 50); do
			[ "$(q -p "${PORT[$n]}" -c "SHOW tenant_guard.jwt_jwks_file")" = "$1" ] && break
			sleep 0.1
		done
	done
}
export TOK_JWKS_NEW_A
jwks_on_workers "$JWKS_FILE"
q -c "SET tenant_guard.context_source = 'signed'" -c "SET tenant_guard.jwt_jwks_file = '$JWKS_FILE'" -c "BEGIN" \
	-c "\\copy tenant_guard.context_input (token) FROM PROGRAM 'printenv TOK_JWKS_NEW_A'" \
	-c "CREATE TABLE grid_supplied AS SELECT * FROM tenant_guard.attack_grid('ct_app_signed', '$ORG_A', '$ORG_B')
	    WHERE tbl IN ('t_dp'::regclass, 's1.d'::regclass)" -c "COMMIT" >/dev/null 2>&1 \
	|| fail "attack_grid() with the caller's token failed"
jwks_on_workers ""
for t in t_dp s1.d; do
	check "attack_grid with the caller's token of A, $t: read, update, delete and insert-select of B blocked" \
		"blocked,blocked,blocked,blocked" \
		"$(q -c "SELECT string_agg(outcome, ',' ORDER BY vector) FROM grid_supplied WHERE tbl = '$t'::regclass
		         AND vector IN ('read_other_tenant', 'update_other_tenant', 'delete_other_tenant', 'insert_select_other_tenant')")"
	check "attack_grid with the caller's token of A, $t: nothing skipped for want of context" "0" \
		"$(q -c "SELECT count(*) FROM grid_supplied WHERE tbl = '$t'::regclass AND detail LIKE '%did not reach them%'")"
done
check "attack_grid with the caller's token of A: no token in its output" "0" \
	"$(q -c "SELECT count(*) FROM grid_supplied WHERE detail LIKE '%eyJ%'")"

# The shard wall follows a new partition of a protected distributed table and
# a renamed protected table, without citus_sync(): a later USING (true) policy
# (which Citus copies to the shards, as it copies the generated ones: all
# permissive) opens nothing there.
q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE t_part (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (org_id, id)) PARTITION BY LIST (id);
CREATE TABLE t_part_1 PARTITION OF t_part FOR VALUES IN (1, 2, 3);
SELECT create_distributed_table('t_part', 'org_id');
SELECT tenant_guard.protect('t_part');
CREATE TABLE t_part_2 PARTITION OF t_part FOR VALUES IN (4, 5, 6);
INSERT INTO t_part VALUES (1, '$ORG_A', 'a1'), (4, '$ORG_A', 'a4'), (5, '$ORG_B', 'b5');
GRANT SELECT ON t_part, t_part_2 TO ct_app;
CREATE TABLE t_ren (id int, org_id uuid NOT NULL, body text, PRIMARY KEY (org_id, id));
SELECT create_distributed_table('t_ren', 'org_id');
SELECT tenant_guard.protect('t_ren');
INSERT INTO t_ren VALUES (1, '$ORG_A', 'a1'), (2, '$ORG_A', 'a2'), (3, '$ORG_A', 'a3'), (4, '$ORG_B', 'b4'), (5, '$ORG_B', 'b5');
GRANT SELECT ON t_ren TO ct_app;
ALTER TABLE t_ren RENAME TO t_renamed;
CREATE POLICY open_all ON t_part_2 USING (true);
CREATE POLICY open_all ON t_renamed USING (true);
SQL
for n in w1 w2; do
	check "shard wall of a new partition (t_part_2) and a renamed table (t_renamed) registered on $n" "t_part_2 t_renamed" \
		"$(q -p "${PORT[$n]}" -c "SELECT string_agg(table_name, ' ' ORDER BY table_name) FROM tenant_guard.citus_walls
		                          WHERE table_name IN ('t_part_2', 't_renamed')")"
done
check "citus_shard_findings(): the new partition's and the renamed table's shards walled" "" \
	"$(q -c "SELECT tbl || ' ' || node || ' ' || item || ': ' || actual FROM tenant_guard.citus_shard_findings()
	         WHERE tbl IN ('t_part_2'::regclass, 't_renamed'::regclass) AND item NOT LIKE 'policy open_all'")"
check "a new partition read directly, with a USING (true) policy: claims A" "f
1/0" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" "$(seen t_part_2 "$ORG_A")" "COMMIT")"
check "a new partition read through its parent: claims A" "f
2/0" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" "$(seen t_part "$ORG_A")" "COMMIT")"
check "a renamed table with a USING (true) policy: claims A" "f
3/0" "$(as_app ct_app "BEGIN" "$(claims "$ORG_A")" "$(seen t_renamed "$ORG_A")" "COMMIT")"
check "a renamed table with a USING (true) policy: no context" "0" "$(as_app ct_app "SELECT count(*) FROM t_renamed")"
soft -c "DROP POLICY open_all ON t_part_2" -c "DROP POLICY open_all ON t_renamed"
