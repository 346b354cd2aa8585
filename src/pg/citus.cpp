/*
 * pg/citus.cpp
 *
 * tenant_guard on a Citus cluster (docs/citus.md). Citus is never linked nor
 * required: everything here keys on Citus's catalog tables by name and does
 * nothing in a database without them. Installed only with
 * shared_preload_libraries (after citus).
 *
 *  1. The shard wall. Citus copies a table's policies onto its shards, but as
 *     PERMISSIVE ones (its CREATE POLICY never says AS RESTRICTIVE), at
 *     distribution and again at every shard move, copy or split; a later
 *     USING (true) policy then opens every tenant. The wall is therefore not a
 *     policy: row_security_policy_hook_restrictive adds it to every shard of a
 *     walled table on every node, whatever policies the shard has. A shard is
 *     recognised the way Citus itself does (RelationIsAKnownShard): its name
 *     is <parent>_<shardid>, and pg_dist_shard (synced to every node with the
 *     metadata) maps that shard id to the parent, in the same schema. Which
 *     parents are walled, and by which tenant column, is the registry
 *     tenant_guard.citus_walls, kept on every node by protect() (and by
 *     tenant_guard.citus_sync() for a node added later).
 *
 *     The wall is `tenant_column = tenant_guard.current_user_org_*()`, for
 *     every command, as USING and WITH CHECK. PostgreSQL calls the hook only
 *     for relations with row-level security enabled: the shard checks of
 *     tenant_guard.citus_shard_findings() report a shard without it.
 *
 *  2. Forwarding the tenant context. Citus sends a SET LOCAL to every worker
 *     backend of the transaction (and to those opened later in it) only when
 *     the statement is a SET LOCAL and citus.propagate_set_commands = local;
 *     set_config(..., true), a plain SET and set_context() never reach the
 *     workers. At the start of every statement in a transaction block on a
 *     Citus coordinator, the executor hook compares the context inputs with
 *     what was last forwarded in this transaction and, when they differ, runs
 *     SET LOCAL statements for them through ProcessUtility, where Citus
 *     forwards them (propagate_set_commands is local only around that call).
 *     claims: request.jwt.claims; setting: tenant_guard.org_id, user_id,
 *     role, scopes; signed: tenant_guard.forwarded_token, the token
 *     set_context() verified, which each worker verifies again with its own
 *     key file (a forwarded org id or payload is never trusted). Outside a
 *     transaction block (autocommit statements, and the functions they call)
 *     Citus opens no remote transaction for reads and forwards no SET LOCAL:
 *     when the context carries a value, the statement is made a Citus
 *     coordinated transaction (every worker connection then starts with
 *     BEGIN and the transaction's SET LOCALs) and the SET LOCALs are handed to
 *     Citus, through Citus's own functions looked up by name in the loaded
 *     library (load_external_function: UseCoordinatedTransaction,
 *     InCoordinatedTransaction, IsMultiStatementTransaction,
 *     PostprocessVariableSetStmt). Without them nothing is forwarded there.
 *     COPY ... FROM runs no executor: a utility hook forwards the context
 *     before Citus's own utility hook opens the COPY's connections.
 *
 *  3. The tenant registry on the workers (lifecycle): _citus_send_command()
 *     sends a command to every worker with metadata inside the current
 *     transaction (Citus's SendCommandToWorkersWithMetadata, looked up by
 *     name), for the registry copy of src/sql/0.2.0/60_lifecycle.sql.
 *
 * C-style glue: no C++ objects, so PostgreSQL is called directly.
 */
#include "pg/citus.hpp"

#include <cstring>

extern "C" {
#include "postgres.h"
#include "access/genam.h"
#include "access/parallel.h"
#include "access/relation.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pg_list.h"
#include "parser/parse_func.h"
#include "parser/parse_oper.h"
#include "parser/parser.h"
#include "rewrite/rowsecurity.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

#include "pg/boundary.hpp"
#include "pg/citus_keys.hpp"
#include "pg/compat.hpp"
#include "pg/guc.hpp"

namespace tenant_guard::citus {

char* forwarded_token = nullptr;
char* forward_token = nullptr;

namespace {

row_security_policy_hook_type prev_restrictive = nullptr;
ExecutorStart_hook_type prev_executor_start = nullptr;

// One cached answer per relation: walled or not, and how.
struct WallEntry {
	Oid relid;  // hash key
	char status;
	bool walled;
	AttrNumber attnum;
	Oid typid;
	Oid collid;
	Oid eqop;
	Oid funcoid;
	Oid writable;  // tenant_guard._tenant_writable(), or InvalidOid
};

HTAB* wall_cache = nullptr;
bool invalidation_registered = false;

void drop_cache(Datum, Oid)
{
	if (wall_cache != nullptr) {
		hash_destroy(wall_cache);
		wall_cache = nullptr;
	}
}

HTAB* cache()
{
	if (!invalidation_registered) {
		CacheRegisterRelcacheCallback(drop_cache, (Datum) 0);
		CacheRegisterSyscacheCallback(
		    PROCOID, [](Datum, int, uint32) { drop_cache(0, InvalidOid); }, (Datum) 0);
		invalidation_registered = true;
	}
	if (wall_cache == nullptr) {
		HASHCTL ctl;
		std::memset(&ctl, 0, sizeof ctl);
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(WallEntry);
		ctl.hcxt = CacheMemoryContext;
		wall_cache = hash_create("tenant_guard citus walls", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return wall_cache;
}

// Splits "<parent>_<digits>" into the parent's name and the shard id.
bool shard_name_parts(const char* relname, char* parent, size_t parent_len, int64* shardid)
{
	const char* us = strrchr(relname, '_');
	if (us == nullptr || us == relname || us[1] == '\0')
		return false;
	int64 id = 0;
	for (const char* p = us + 1; *p; ++p) {
		if (*p < '0' || *p > '9')
			return false;
		if (id > (PG_INT64_MAX - 9) / 10)
			return false;
		id = id * 10 + (*p - '0');
	}
	const size_t n = static_cast<size_t>(us - relname);
	if (n + 1 > parent_len)
		return false;
	std::memcpy(parent, relname, n);
	parent[n] = '\0';
	*shardid = id;
	return true;
}

// The parent of a Citus shard, or InvalidOid: pg_dist_shard(logicalrelid, shardid, ...).
Oid shard_parent(Relation rel)
{
	const Oid dist_shard = get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE);
	if (!OidIsValid(dist_shard))
		return InvalidOid;
	char parent[NAMEDATALEN];
	int64 shardid;
	if (!shard_name_parts(RelationGetRelationName(rel), parent, sizeof parent, &shardid))
		return InvalidOid;
	Oid found = InvalidOid;
	Relation r = table_open(dist_shard, AccessShareLock);
	const AttrNumber att_logicalrelid = 1;
	const AttrNumber att_shardid = 2;
	ScanKeyData key;
	ScanKeyInit(&key, att_shardid, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(shardid));
	const Oid idx = get_relname_relid("pg_dist_shard_shardid_index", PG_CATALOG_NAMESPACE);
	SysScanDesc scan = systable_beginscan(r, idx, OidIsValid(idx), nullptr, 1, &key);
	HeapTuple tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup)) {
		bool isnull = false;
		const Datum d = heap_getattr(tup, att_logicalrelid, RelationGetDescr(r), &isnull);
		if (!isnull)
			found = DatumGetObjectId(d);
	}
	systable_endscan(scan);
	table_close(r, AccessShareLock);
	// Same schema, and the name is exactly <parent name>_<shard id>.
	if (!OidIsValid(found) || found == RelationGetRelid(rel))
		return InvalidOid;
	const char* pname = get_rel_name(found);
	if (pname == nullptr || strcmp(pname, parent) != 0 || get_rel_namespace(found) != RelationGetNamespace(rel))
		return InvalidOid;
	return found;
}

// The registry row of a parent table: tenant_guard.citus_walls(schema_name, table_name, tenant_column, tenant_type).
bool registry_lookup(Oid parent, char* column, size_t column_len, char* type, size_t type_len)
{
	const Oid nsp = get_namespace_oid("tenant_guard", true);
	if (!OidIsValid(nsp))
		return false;
	const Oid reg = get_relname_relid("citus_walls", nsp);
	if (!OidIsValid(reg))
		return false;
	const char* schema = get_namespace_name(get_rel_namespace(parent));
	const char* name = get_rel_name(parent);
	if (schema == nullptr || name == nullptr)
		return false;
	bool found = false;
	Relation r = table_open(reg, AccessShareLock);
	TupleDesc desc = RelationGetDescr(r);
	SysScanDesc scan = systable_beginscan(r, InvalidOid, false, GetCatalogSnapshot(reg), 0, nullptr);
	HeapTuple tup;
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan))) {
		bool n1, n2, n3, n4;
		const Datum s = heap_getattr(tup, 1, desc, &n1);
		const Datum t = heap_getattr(tup, 2, desc, &n2);
		const Datum c = heap_getattr(tup, 3, desc, &n3);
		const Datum y = heap_getattr(tup, 4, desc, &n4);
		if (n1 || n2 || n3 || n4)
			continue;
		if (strcmp(NameStr(*DatumGetName(s)), schema) == 0 && strcmp(NameStr(*DatumGetName(t)), name) == 0) {
			strlcpy(column, NameStr(*DatumGetName(c)), column_len);
			text_to_cstring_buffer(DatumGetTextPP(y), type, type_len);
			found = true;
		}
	}
	systable_endscan(scan);
	table_close(r, AccessShareLock);
	return found;
}

Oid context_function(const char* tenant_type)
{
	const char* fname = strcmp(tenant_type, "uuid") == 0     ? "current_user_org_id"
	                    : strcmp(tenant_type, "text") == 0   ? "current_user_org_text"
	                    : strcmp(tenant_type, "bigint") == 0 ? "current_user_org_bigint"
	                                                         : nullptr;
	if (fname == nullptr)
		return InvalidOid;
	List* name = list_make2(makeString(pstrdup("tenant_guard")), makeString(pstrdup(fname)));
	return LookupFuncName(name, 0, nullptr, true);
}

const WallEntry* lookup(Relation rel)
{
	bool found = false;
	const Oid relid = RelationGetRelid(rel);
	WallEntry* e = static_cast<WallEntry*>(hash_search(cache(), &relid, HASH_FIND, &found));
	if (found)
		return e;
	WallEntry w;
	std::memset(&w, 0, sizeof w);
	w.relid = relid;
	const Oid parent = shard_parent(rel);
	char column[NAMEDATALEN];
	char type[32];
	if (OidIsValid(parent) && registry_lookup(parent, column, sizeof column, type, sizeof type)) {
		// The column of the shard itself (its attribute numbers may differ).
		// A walled shard without the column, or a function that cannot be
		// found, gets a wall that admits nothing.
		w.walled = true;
		w.attnum = get_attnum(relid, column);
		w.funcoid = context_function(type);
		if (w.attnum != InvalidAttrNumber) {
			Oid typid;
			int32 typmod;
			get_atttypetypmodcoll(relid, w.attnum, &typid, &typmod, &w.collid);
			w.typid = typid;
			w.eqop = OpernameGetOprid(list_make1(makeString(pstrdup("="))), typid, typid);
		}
		List* wname = list_make2(makeString(pstrdup("tenant_guard")), makeString(pstrdup("_tenant_writable")));
		w.writable = LookupFuncName(wname, 0, nullptr, true);
		if (w.attnum == InvalidAttrNumber || !OidIsValid(w.funcoid) || !OidIsValid(w.eqop) ||
		    get_func_rettype(w.funcoid) != w.typid)
			w.attnum = InvalidAttrNumber;
	}
	// The cache may have been dropped by an invalidation during the look-ups.
	e = static_cast<WallEntry*>(hash_search(cache(), &relid, HASH_ENTER, &found));
	*e = w;
	return e;
}

RowSecurityPolicy* make_policy(const char* name, Expr* qual)
{
	RowSecurityPolicy* p = static_cast<RowSecurityPolicy*>(palloc0(sizeof(RowSecurityPolicy)));
	p->policy_name = pstrdup(name);
	p->polcmd = '*';
	Datum pub = ObjectIdGetDatum(ACL_ID_PUBLIC);
	p->roles = construct_array(&pub, 1, OIDOID, sizeof(Oid), true, TYPALIGN_INT);
	p->qual = qual;
	p->with_check_qual = static_cast<Expr*>(copyObjectImpl(qual));
	p->hassublinks = false;
	p->permissive = false;
	return p;
}

RowSecurityPolicy* make_wall(const WallEntry* w)
{
	Expr* qual;
	if (w->attnum == InvalidAttrNumber) {
		qual = reinterpret_cast<Expr*>(makeBoolConst(false, false));
	} else {
		Var* var = makeVar(1, w->attnum, w->typid, -1, w->collid, 0);
		FuncExpr* fn = makeFuncExpr(w->funcoid, w->typid, NIL, InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		qual = make_opclause(w->eqop, BOOLOID, false, reinterpret_cast<Expr*>(var), reinterpret_cast<Expr*>(fn),
		                     InvalidOid, w->collid);
		set_opfuncid(reinterpret_cast<OpExpr*>(qual));
	}
	return make_policy("tg_citus_wall", qual);
}

// The lifecycle write wall (archived and purged tenants are read-only).
RowSecurityPolicy* make_writable(const WallEntry* w)
{
	return make_policy("tg_citus_lifecycle", reinterpret_cast<Expr*>(makeFuncExpr(w->writable, BOOLOID, NIL, InvalidOid,
	                                                                              InvalidOid, COERCE_EXPLICIT_CALL)));
}

List* restrictive_hook(CmdType cmdtype, Relation relation)
{
	List* out = prev_restrictive != nullptr ? prev_restrictive(cmdtype, relation) : NIL;
	if (!IsTransactionState())
		return out;
	const WallEntry* w = lookup(relation);
	if (w->walled) {
		out = lappend(out, make_wall(w));
		if (cmdtype != CMD_SELECT && OidIsValid(w->writable))
			out = lappend(out, make_writable(w));
	}
	return out;
}

// ---- forwarding the context ----------------------------------------------

// What this transaction last forwarded (TopTransactionContext), and in which.
LocalTransactionId forwarded_lxid = InvalidLocalTransactionId;
char* forwarded_text = nullptr;

void on_subxact(SubXactEvent event, SubTransactionId, SubTransactionId, void*)
{
	// A rolled-back savepoint also rolls back what was forwarded after it.
	if (event == SUBXACT_EVENT_ABORT_SUB)
		forwarded_lxid = InvalidLocalTransactionId;
}

// A backend that may open Citus connections for its client: Citus is loaded
// and installed, and this is not a connection Citus itself opened from
// another node (those are served, not initiators; their application_name is
// Citus's). A client that names itself so only loses the forwarding.
bool citus_initiator()
{
	if (GetConfigOption("citus.propagate_set_commands", true, false) == nullptr)
		return false;
	const char* app = GetConfigOption("application_name", true, false);
	if (app != nullptr && strncmp(app, "citus_internal", strlen("citus_internal")) == 0)
		return false;
	return OidIsValid(get_relname_relid("pg_dist_node", PG_CATALOG_NAMESPACE));
}

void append_set(StringInfo buf, const char* name, const char* value, bool* any)
{
	if (value != nullptr && *value != '\0')
		*any = true;
	appendStringInfo(buf, "SET LOCAL %s = %s;", name, quote_literal_cstr(value != nullptr ? value : ""));
}

// The SET LOCAL statements that give a worker backend this backend's context inputs.
char* forward_statements(bool* any)
{
	*any = false;
	StringInfoData buf;
	initStringInfo(&buf);
	// the token set_context() verified here, or one forwarded to this backend
	if (forward_token != nullptr && *forward_token != '\0' && guc::signed_context != nullptr &&
	    *guc::signed_context != '\0')
		append_set(&buf, "tenant_guard.forwarded_token", forward_token, any);
	else
		append_set(&buf, "tenant_guard.forwarded_token", forwarded_token, any);
	switch (guc::context_source) {
	case guc::k_source_claims: {
		const char* raw = GetConfigOption("request.jwt.claims", true, false);
		append_set(&buf, "request.jwt.claims", raw, any);
		break;
	}
	case guc::k_source_setting:
		append_set(&buf, "tenant_guard.org_id", guc::setting_org_id, any);
		append_set(&buf, "tenant_guard.user_id", guc::setting_user_id, any);
		append_set(&buf, "tenant_guard.role", guc::setting_role, any);
		append_set(&buf, "tenant_guard.scopes", guc::setting_scopes, any);
		break;
	default:
		break;
	}
	return buf.data;
}

// Citus's own functions for a statement outside a transaction block, looked
// up by name in the loaded citus library (never linked): nullptr when absent.
struct CitusCalls {
	bool looked_up = false;
	bool (*in_coordinated)() = nullptr;
	void (*use_coordinated)() = nullptr;
	bool (*multi_statement)() = nullptr;
	void (*propagate_set)(VariableSetStmt*, const char*) = nullptr;
};
CitusCalls citus_calls;

const CitusCalls& calls()
{
	if (!citus_calls.looked_up) {
		citus_calls.looked_up = true;
		auto find = [](const char* name) {
			return reinterpret_cast<void*>(load_external_function("$libdir/citus", name, false, nullptr));
		};
		citus_calls.in_coordinated = reinterpret_cast<bool (*)()>(find("InCoordinatedTransaction"));
		citus_calls.use_coordinated = reinterpret_cast<void (*)()>(find("UseCoordinatedTransaction"));
		citus_calls.multi_statement = reinterpret_cast<bool (*)()>(find("IsMultiStatementTransaction"));
		citus_calls.propagate_set =
		    reinterpret_cast<void (*)(VariableSetStmt*, const char*)>(find("PostprocessVariableSetStmt"));
	}
	return citus_calls;
}

// Runs one SET LOCAL here, where Citus's utility hook forwards it
// (citus_forwards), or hands it to Citus directly (nothing changes here).
void run_set(const char* stmt, bool citus_forwards)
{
	List* raw = raw_parser(stmt, RAW_PARSE_DEFAULT);
	ListCell* lc;
	foreach (lc, raw) {
		RawStmt* rs = lfirst_node(RawStmt, lc);
		PlannedStmt* ps = makeNode(PlannedStmt);
		ps->commandType = CMD_UTILITY;
		ps->canSetTag = false;
		ps->utilityStmt = rs->stmt;
		ps->stmt_location = rs->stmt_location;
		ps->stmt_len = rs->stmt_len;
		if (!citus_forwards) {
			calls().propagate_set(castNode(VariableSetStmt, rs->stmt), stmt);
			continue;
		}
		ProcessUtility(ps, stmt, false, PROCESS_UTILITY_QUERY, nullptr, nullptr, None_Receiver, nullptr);
	}
}

// Outside a transaction block (an autocommit statement, or a function it
// calls) Citus opens no remote transaction for reads and forwards no SET
// LOCAL. Make the statement a coordinated transaction, so every worker
// connection it uses starts with BEGIN and the transaction's SET LOCAL
// statements, and hand those to Citus: through its utility hook where it
// forwards them itself (in a function), directly otherwise.
bool prepare_autocommit(bool* citus_forwards)
{
	const CitusCalls& c = calls();
	if (c.in_coordinated == nullptr || c.use_coordinated == nullptr || c.multi_statement == nullptr ||
	    c.propagate_set == nullptr)
		return false;
	if (!c.in_coordinated())
		c.use_coordinated();
	*citus_forwards = c.multi_statement();
	return true;
}

void forward_context()
{
	if (!citus_initiator())
		return;
	keys::resend_if_needed();
	bool any = false;
	char* want = forward_statements(&any);
	const LocalTransactionId lxid = pg::compat::my_lxid();
	if (forwarded_lxid == lxid && forwarded_text != nullptr && strcmp(forwarded_text, want) == 0)
		return;
	bool citus_forwards = true;
	if (!IsTransactionBlock()) {
		if (!any || !prepare_autocommit(&citus_forwards))
			return;
	}
	// Each statement on its own: Citus forwards the text of the statement it sees.
	const int nest = NewGUCNestLevel();
	(void) set_config_option("citus.propagate_set_commands", "local", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
	                         0, false);
	char* p = want;
	while (*p != '\0') {
		// quote_literal_cstr doubles quotes, so a ';' inside a value is within
		// quotes; find the statement end by scanning quotes.
		bool inq = false;
		char* end = p;
		for (; *end != '\0'; ++end) {
			if (*end == '\'')
				inq = !inq;
			else if (*end == ';' && !inq)
				break;
		}
		char* one = pnstrdup(p, end - p + (*end == ';' ? 1 : 0));
		run_set(one, citus_forwards);
		p = *end == ';' ? end + 1 : end;
	}
	// Undo every setting of that nest level here (abort semantics: the SET
	// LOCALs were for the workers; this backend keeps its own values).
	AtEOXact_GUC(false, nest);
	forwarded_text = MemoryContextStrdup(TopTransactionContext, want);
	forwarded_lxid = lxid;
}

// ---- COPY ... FROM ----------------------------------------------------------
// COPY runs no executor, so the executor hook never forwards its context: a
// COPY right after set_config(), or outside a transaction block, would reach
// the workers without it. The context is forwarded here first, before
// Citus's utility hook opens the connections of the COPY (outside a
// transaction block the COPY is made a coordinated transaction, so each
// connection starts with BEGIN and the SET LOCALs).
ProcessUtility_hook_type prev_utility = nullptr;

void utility_hook(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
                  ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc)
{
	Node* stmt = pstmt->utilityStmt;
	if (stmt != nullptr && IsA(stmt, CopyStmt) && castNode(CopyStmt, stmt)->is_from && !IsParallelWorker())
		forward_context();
	if (prev_utility != nullptr)
		prev_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
	else
		standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
}

std::uint64_t executor_starts = 0;

void executor_start(QueryDesc* qd, int eflags)
{
	++executor_starts;
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && !IsParallelWorker())
		forward_context();
	if (prev_executor_start != nullptr)
		prev_executor_start(qd, eflags);
	else
		standard_ExecutorStart(qd, eflags);
}

// tenant_guard.forward_token may be set only by tenant_guard itself.
bool setting_forward_token = false;

bool check_forward_token(char** newval, void**, GucSource source)
{
	if (setting_forward_token || InitializingParallelWorker || source == PGC_S_DEFAULT)
		return true;
	if (*newval == nullptr || **newval == '\0')
		return true;
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("tenant_guard.forward_token can only be set by tenant_guard.set_context()");
	return false;
}

}  // namespace

bool hooks_installed = false;

std::uint64_t statement_generation()
{
	return hooks_installed ? executor_starts : 0;
}

bool walled(Relation rel)
{
	return lookup(rel)->walled;
}

Oid shard_table(Relation rel)
{
	return shard_parent(rel);
}

bool wall_column(Oid table, char* column, size_t column_len)
{
	char type[16];
	return registry_lookup(table, column, column_len, type, sizeof type);
}

bool ensure_coordinated()
{
	const CitusCalls& c = calls();
	if (c.in_coordinated == nullptr || c.use_coordinated == nullptr)
		return false;
	if (!c.in_coordinated())
		c.use_coordinated();
	return true;
}

bool send_set_local(const char* stmt)
{
	if (!ensure_coordinated() || calls().propagate_set == nullptr)
		return false;
	run_set(stmt, false);
	return true;
}

bool present()
{
	return hooks_installed && GetConfigOption("citus.propagate_set_commands", true, false) != nullptr;
}

void remember_token(const char* token, bool local)
{
	setting_forward_token = true;
	PG_TRY();
	{
		(void) set_config_option("tenant_guard.forward_token", token, PGC_SUSET, PGC_S_SESSION,
		                         local ? GUC_ACTION_LOCAL : GUC_ACTION_SET, true, 0, false);
	}
	PG_FINALLY();
	{
		setting_forward_token = false;
	}
	PG_END_TRY();
}

void define_settings()
{
	/*
	 * Internal: the token of the current set_context(), kept so the context
	 * can be forwarded to Citus workers, which verify it again. Scoped like
	 * tenant_guard.signed_context; only tenant_guard can set it.
	 */
	DefineCustomStringVariable("tenant_guard.forward_token", "Internal: the token set_context() verified.", nullptr,
	                           &forward_token, "", PGC_SUSET,
	                           GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_SUPERUSER_ONLY | GUC_DISALLOW_IN_FILE |
	                               GUC_DISALLOW_IN_AUTO_FILE,
	                           check_forward_token, nullptr, nullptr);
	/*
	 * A token forwarded by a Citus coordinator. Anyone can set it: it counts
	 * only once this node verified it with its own key settings, exactly as
	 * set_context() would, so it gives nothing a caller could not get by
	 * calling set_context() with the same token.
	 */
	DefineCustomStringVariable("tenant_guard.forwarded_token", "A signed token forwarded by a Citus coordinator.",
	                           "Verified on this node like set_context(); used only when no context was set here.",
	                           &forwarded_token, "", PGC_USERSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE, nullptr, nullptr,
	                           nullptr);
}

void init()
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_restrictive = row_security_policy_hook_restrictive;
	row_security_policy_hook_restrictive = restrictive_hook;
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = executor_start;
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = utility_hook;
	RegisterSubXactCallback(on_subxact, nullptr);
	hooks_installed = true;
}

}  // namespace tenant_guard::citus

// tenant_guard._citus_wall_active(rel regclass) returns boolean: does this
// backend add the wall to rel (a shard of a walled table)?
TG_C_FUNCTION(tg__citus_wall_active)
{
	const Oid relid = PG_GETARG_OID(0);
	if (!tenant_guard::citus::hooks_installed)
		PG_RETURN_NULL();
	Relation rel = try_relation_open(relid, AccessShareLock);
	if (rel == nullptr)
		PG_RETURN_NULL();
	const bool walled = tenant_guard::citus::walled(rel);
	relation_close(rel, AccessShareLock);
	PG_RETURN_BOOL(walled);
}

// ---- lifecycle: the tenant registry on the workers ------------------------
// tenant_guard._citus_send_command(command text) returns void: sends one
// command to every Citus worker with metadata as the current user, inside
// this transaction (Citus's SendCommandToWorkersWithMetadata: the workers
// commit it with two-phase commit when this transaction commits, and roll it
// back with it). Looked up by name in the loaded citus library, never
// linked; without it the call is an error (nothing is copied half-way).
TG_C_FUNCTION(tg__citus_send_command)
{
	using Send = void (*)(const char*);
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("command must not be NULL")));
	if (GetConfigOption("citus.propagate_set_commands", true, false) == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("citus is not loaded")));
	Send send = reinterpret_cast<Send>(
	    load_external_function("$libdir/citus", "SendCommandToWorkersWithMetadata", false, nullptr));
	if (send == nullptr)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("this citus version cannot send a command to the workers in a transaction")));
	send(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}
