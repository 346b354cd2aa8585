/*
 * pg/audit_fmgr.cpp
 *
 * The audit log (docs/audit.md):
 *
 *   tenant_guard._audit_trigger() returns trigger
 *       AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW on an audited table
 *       (enable_audit() creates it); trigger arguments "x:<column>" exclude a
 *       column, "r:<column>" redact it
 *   tenant_guard.audit_event(action text, detail jsonb) returns bigint
 *   tenant_guard._audit_write_event(org text, action text, detail jsonb) returns bigint
 *   tenant_guard._audit_registry_event() returns trigger
 *       AFTER ROW on tenant_guard's registries: tenant_guard.<verb> events
 *   tenant_guard._audit_hash(<the 23 hashed columns>) returns bytea
 *   tenant_guard._audit_is_reader() returns boolean
 *   tenant_guard._csv_line(fields text[]) returns text
 *   tenant_guard._audit_selftest_fail_commit() returns void (test hook)
 *
 * Chain design. Every record carries SHA-256(canonical content || prev_hash).
 * Records are chained per (transaction, tenant): the first record of a
 * tenant in a transaction has 32 zero bytes as prev_hash, each next one the
 * hash of the one before, and `seq` counts them. No lock is taken while the
 * transaction runs, so writers of one tenant never wait for each other. The
 * newest record of each chain is held back in memory until the next one
 * arrives or COMMIT. At COMMIT (XACT_EVENT_PRE_COMMIT, registered on the first
 * audited write of a backend; no preloading needed) each chain's held-back
 * last record gets the next seal number (seal_seq) and the hash of the row
 * with the previous seal number (seal_prev), then its own hash, and is
 * written: one global chain of seals, no extra row. Only that numbering is
 * serialized: with shared_preload_libraries under an LWLock on a head in
 * shared memory (see below), else under a transaction-scoped advisory lock
 * held until the commit is done, the previous seal read with the latest
 * snapshot so every isolation level works.
 * Savepoints: the chain state of every tenant is kept per subtransaction
 * level and restored when a subtransaction rolls back, so the records of a
 * rolled-back savepoint (gone from the table) are not sealed.
 *
 * Records are inserted directly into the transaction's partition (all of a
 * transaction's rows share xact_at, hence one partition), opened once per
 * transaction with its indexes: heap and index inserts as COPY does, no
 * executor start-up per record. No privilege check applies to that path, so
 * application roles need, and have, no write privilege on the log; the few
 * SPI queries (partition creation, last seal) run as the log's owner with
 * SECURITY_RESTRICTED_OPERATION.
 *
 * C-style glue: except _csv_line, nothing here owns a C++ object, so
 * PostgreSQL is called directly (a longjmp skips no destructor). The C++
 * calls are core::audit::hash_fields (noexcept) and context::current(),
 * whose exceptions the boundary handles.
 */
#include <cstdio>
#include <cstring>

#include "core/audit.hpp"
#include "core/claims.hpp"
#include "pg/as_owner.hpp"
#include "pg/audit_guc.hpp"
#include "pg/boundary.hpp"
#include "pg/context.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

namespace tg = tenant_guard;
namespace audit = tenant_guard::audit;

namespace {

constexpr int k_ncols = 24;     // columns written per record
constexpr int k_nhashed = 23;   // all but `hash`
constexpr const char* k_redacted = "[redacted]";
// Advisory lock field4 for the seal lock (distinct from the 1 and 2 used by
// the SQL advisory lock functions, so no user lock can collide with it).
constexpr uint16 k_lock_field4 = 0x7467;

const Oid k_types[k_ncols] = {INT8OID,  TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID,  TEXTOID,  TEXTOID,
                              INT8OID,  TEXTOID,        TEXTOID,        TEXTOID,  TEXTOID,  TEXTOID,
                              TEXTOID,  TEXTOID,        TEXTOID,        JSONBOID, JSONBOID, JSONBOID,
                              TEXTARRAYOID, JSONBOID,   BYTEAOID,       INT8OID,  BYTEAOID, BYTEAOID};

enum Col {
	c_id, c_xact_at, c_statement_at, c_xid, c_org, c_kind, c_seq, c_action, c_table_name, c_actor,
	c_impersonator, c_tenant_role, c_db_role, c_session_role, c_application_name, c_row_pk, c_old_row,
	c_new_row, c_changed_columns, c_detail, c_prev_hash, c_seal_seq, c_seal_prev, c_hash
};

// ---------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------

// Text form of one hashed column, palloc'd; len -1 for NULL.
void field_bytes(Datum v, bool isnull, Oid type, const char** data, std::size_t* len)
{
	if (isnull) {
		*data = nullptr;
		return;
	}
	switch (type) {
	case INT8OID:
	case TIMESTAMPTZOID: {
		char* buf = static_cast<char*>(palloc(32));
		snprintf(buf, 32, INT64_FORMAT, DatumGetInt64(v));
		*data = buf;
		*len = strlen(buf);
		return;
	}
	case JSONBOID: {
		Jsonb* jb = DatumGetJsonbP(v);
		char* s = JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
		*data = s;
		*len = strlen(s);
		return;
	}
	default: {  // text, bytea
		struct varlena* p = pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(v)));
		*data = VARDATA_ANY(p);
		*len = VARSIZE_ANY_EXHDR(p);
		return;
	}
	}
}

// SHA-256 over the 21 hashed columns, as a bytea.
bytea* hash_record(const Datum* values, const bool* nulls)
{
	audit::FieldView f[k_nhashed];
	for (int i = 0; i < k_nhashed; ++i) {
		if (nulls[i]) {
			f[i].kind = audit::FieldView::k_null;
			continue;
		}
		if (k_types[i] == TEXTARRAYOID) {
			Datum* elems;
			bool* enulls;
			int n;
			deconstruct_array(DatumGetArrayTypeP(values[i]), TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
			auto* ev = static_cast<audit::FieldView*>(palloc0(sizeof(audit::FieldView) * (n > 0 ? n : 1)));
			for (int j = 0; j < n; ++j) {
				if (enulls[j])
					continue;
				ev[j].kind = audit::FieldView::k_bytes;
				field_bytes(elems[j], false, TEXTOID, &ev[j].data, &ev[j].len);
			}
			f[i].kind = audit::FieldView::k_array;
			f[i].elems = ev;
			f[i].nelems = static_cast<std::size_t>(n);
			continue;
		}
		f[i].kind = audit::FieldView::k_bytes;
		field_bytes(values[i], false, k_types[i], &f[i].data, &f[i].len);
	}
	audit::Hash h;
	if (!audit::hash_fields(f, k_nhashed, &h))
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not hash an audit record")));
	bytea* out = static_cast<bytea*>(palloc(VARHDRSZ + h.size()));
	SET_VARSIZE(out, VARHDRSZ + h.size());
	memcpy(VARDATA(out), h.data(), h.size());
	return out;
}

bytea* zero_hash()
{
	bytea* out = static_cast<bytea*>(palloc0(VARHDRSZ + 32));
	SET_VARSIZE(out, VARHDRSZ + 32);
	return out;
}

// ---------------------------------------------------------------------------
// Per-transaction chain state: one group per tenant (NULL org included),
// each with a stack of (subtransaction, count, last hash) levels.
// Everything lives in TopTransactionContext and is forgotten at the end.
// ---------------------------------------------------------------------------

struct Level {
	SubTransactionId subid;
	int64 count;     // records in the chain, the pending one included
	uint8 last[32];  // hash of the last record written to the table
	// The chain's newest record, held back (values in TopTransactionContext)
	// until the next record of the chain or COMMIT: at COMMIT it carries the
	// seal itself, so a transaction usually writes no separate seal row.
	Datum* pending_v;
	bool* pending_n;
};

struct Group {
	char* org;  // nullptr: records without a tenant
	Level* levels;
	int nlevels;
	int maxlevels;
};

struct XactState {
	Group* groups = nullptr;
	int ngroups = 0;
	int maxgroups = 0;
	Oid log_oid = InvalidOid;
	Oid log_owner = InvalidOid;
	Oid seq_oid = InvalidOid;
	bool sealing = false;
	// The partition this transaction writes to (all its records share
	// xact_at), opened once under the top transaction's resource owner.
	Relation part = nullptr;
	EState* estate = nullptr;
	ResultRelInfo* rri = nullptr;
	TupleTableSlot* slot = nullptr;
	int part_natts = 0;
	AttrNumber colmap[k_ncols];  // our column i -> attnum in the partition
};

XactState xs;
bool callbacks_registered = false;

// Seals this transaction chained through shared memory (see the shared
// memory section): if it fails after that, their numbers become orphans.
struct SealedNote {
	int64 seq;
	uint8 prev[32];
	uint8 hash[32];
};
SealedNote* sealed_notes = nullptr;  // TopTransactionContext
int nsealed_notes = 0;

void reset_xact_state()
{
	xs = XactState();
	sealed_notes = nullptr;
	nsealed_notes = 0;
}

Group* find_group(const char* org, bool create)
{
	for (int i = 0; i < xs.ngroups; ++i) {
		Group* g = &xs.groups[i];
		if ((g->org == nullptr && org == nullptr) || (g->org && org && strcmp(g->org, org) == 0))
			return g;
	}
	if (!create)
		return nullptr;
	if (xs.ngroups == xs.maxgroups) {
		int n = xs.maxgroups ? xs.maxgroups * 2 : 8;
		xs.groups = static_cast<Group*>(xs.groups ? repalloc(xs.groups, sizeof(Group) * n)
		                                          : MemoryContextAlloc(TopTransactionContext, sizeof(Group) * n));
		xs.maxgroups = n;
	}
	Group* g = &xs.groups[xs.ngroups++];
	g->org = org ? MemoryContextStrdup(TopTransactionContext, org) : nullptr;
	g->levels = nullptr;
	g->nlevels = g->maxlevels = 0;
	return g;
}

// The level of the current subtransaction, created from the one below.
Level* writable_level(Group* g)
{
	SubTransactionId cur = GetCurrentSubTransactionId();
	if (g->nlevels > 0 && g->levels[g->nlevels - 1].subid == cur)
		return &g->levels[g->nlevels - 1];
	if (g->nlevels == g->maxlevels) {
		int n = g->maxlevels ? g->maxlevels * 2 : 2;
		g->levels = static_cast<Level*>(g->levels ? repalloc(g->levels, sizeof(Level) * n)
		                                          : MemoryContextAlloc(TopTransactionContext, sizeof(Level) * n));
		g->maxlevels = n;
	}
	Level* l = &g->levels[g->nlevels];
	if (g->nlevels > 0)
		*l = g->levels[g->nlevels - 1];
	else {
		l->count = 0;
		memset(l->last, 0, sizeof l->last);
		l->pending_v = nullptr;
		l->pending_n = nullptr;
	}
	l->subid = cur;
	++g->nlevels;
	return l;
}

void subxact_callback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void*)
{
	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	for (int i = 0; i < xs.ngroups; ++i) {
		Group* g = &xs.groups[i];
		if (g->nlevels == 0 || g->levels[g->nlevels - 1].subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB) {
			--g->nlevels;  // its records are gone with it
		} else if (g->nlevels >= 2 && g->levels[g->nlevels - 2].subid == parentSubid) {
			g->levels[g->nlevels - 2] = g->levels[g->nlevels - 1];
			g->levels[g->nlevels - 2].subid = parentSubid;
			--g->nlevels;
		} else {
			g->levels[g->nlevels - 1].subid = parentSubid;
		}
	}
}

// ---------------------------------------------------------------------------
// Writing records
// ---------------------------------------------------------------------------

SPIPlanPtr last_seal_plan = nullptr;
SPIPlanPtr partition_plan = nullptr;
SPIPlanPtr tenant_column_plan = nullptr;

// The partition known to exist (per backend), for the safety net.
Oid covered_log = InvalidOid;
TimestampTz covered_lo = 0;
TimestampTz covered_hi = 0;
Oid covered_part = InvalidOid;

SPIPlanPtr prepare(const char* sql, int nargs, Oid* types)
{
	SPIPlanPtr p = SPI_prepare(sql, nargs, types);
	if (p == nullptr)
		elog(ERROR, "SPI_prepare failed for an audit query: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(p) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return p;
}

void resolve_log()
{
	if (OidIsValid(xs.log_oid))
		return;
	Oid nsp = get_namespace_oid("tenant_guard", true);
	Oid log = OidIsValid(nsp) ? get_relname_relid("audit_log", nsp) : InvalidOid;
	Oid seq = OidIsValid(nsp) ? get_relname_relid("audit_log_id_seq", nsp) : InvalidOid;
	if (!OidIsValid(log) || !OidIsValid(seq))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("the tenant_guard audit log does not exist"),
		                errhint("Update the extension: ALTER EXTENSION tenant_guard UPDATE.")));
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(log));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", log);
	xs.log_owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	xs.log_oid = log;
	xs.seq_oid = seq;
}

void register_callbacks();

// The partition holding this transaction's start time, created if missing
// (the safety net: enable_audit() and purge_audit() create them ahead).
Oid partition_for(TimestampTz at)
{
	if (covered_log == xs.log_oid && at >= covered_lo && at < covered_hi &&
	    get_rel_relkind(covered_part) == RELKIND_RELATION)
		return covered_part;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (partition_plan == nullptr) {
		Oid t[1] = {TIMESTAMPTZOID};
		partition_plan = prepare("SELECT lo, hi, part::pg_catalog.oid FROM tenant_guard._audit_partition_for($1)", 1, t);
	}
	Datum v[1] = {TimestampTzGetDatum(at)};
	if (SPI_execute_plan(partition_plan, v, nullptr, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not find or create the audit log partition");
	bool n1, n2, n3;
	Datum lo = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &n1);
	Datum hi = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &n2);
	Datum part = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &n3);
	if (n1 || n2 || n3)
		elog(ERROR, "could not find or create the audit log partition");
	covered_lo = DatumGetTimestampTz(lo);
	covered_hi = DatumGetTimestampTz(hi);
	covered_part = DatumGetObjectId(part);
	covered_log = xs.log_oid;
	SPI_finish();
	return covered_part;
}

const char* const k_colnames[k_ncols] = {
    "id", "xact_at", "statement_at", "xid", "org", "kind", "seq", "action", "table_name", "actor", "impersonator",
    "tenant_role", "db_role", "session_role", "application_name", "row_pk", "old_row", "new_row",
    "changed_columns", "detail", "prev_hash", "seal_seq", "seal_prev", "hash"};

// Opens this transaction's partition with its indexes, once. Records are
// inserted into it directly (heap and index inserts, as COPY does): no
// executor start-up, partition routing or constraint re-evaluation per
// record; the values are built here and satisfy the table's constraints.
void open_partition()
{
	if (xs.part != nullptr)
		return;
	resolve_log();
	// As the log owner: creating a partition is the owner's business.
	Oid save_user;
	int save_sec;
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(xs.log_owner, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	const int guc_level = tg::pg::pin_search_path();
	const Oid part = partition_for(GetCurrentTransactionStartTimestamp());
	AtEOXact_GUC(true, guc_level);
	SetUserIdAndSecContext(save_user, save_sec);
	ResourceOwner save_owner = CurrentResourceOwner;
	MemoryContext save_cxt = MemoryContextSwitchTo(TopTransactionContext);
	CurrentResourceOwner = TopTransactionResourceOwner;
	LockRelationOid(xs.log_oid, RowExclusiveLock);
	Relation rel = table_open(part, RowExclusiveLock);
	TupleDesc desc = RelationGetDescr(rel);
	for (int i = 0; i < k_ncols; ++i) {
		xs.colmap[i] = InvalidAttrNumber;
		for (int a = 0; a < desc->natts; ++a)
			if (!TupleDescAttr(desc, a)->attisdropped && strcmp(NameStr(TupleDescAttr(desc, a)->attname), k_colnames[i]) == 0)
				xs.colmap[i] = static_cast<AttrNumber>(a + 1);
		if (xs.colmap[i] == InvalidAttrNumber)
			elog(ERROR, "audit log partition %s has no column %s", RelationGetRelationName(rel), k_colnames[i]);
	}
	xs.part_natts = desc->natts;
	xs.estate = CreateExecutorState();
	xs.rri = makeNode(ResultRelInfo);
	InitResultRelInfo(xs.rri, rel, 1, nullptr, 0);
	ExecOpenIndices(xs.rri, false);
	xs.slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
	xs.part = rel;
	CurrentResourceOwner = save_owner;
	MemoryContextSwitchTo(save_cxt);
}

void close_partition()
{
	if (xs.part == nullptr)
		return;
	ResourceOwner save_owner = CurrentResourceOwner;
	CurrentResourceOwner = TopTransactionResourceOwner;
	ExecDropSingleTupleTableSlot(xs.slot);
	ExecCloseIndices(xs.rri);
	table_close(xs.part, NoLock);
	FreeExecutorState(xs.estate);
	xs.part = nullptr;
	CurrentResourceOwner = save_owner;
}

Datum text_or_null(const char* s, bool* isnull)
{
	*isnull = s == nullptr;
	return s ? PointerGetDatum(cstring_to_text(s)) : (Datum) 0;
}

struct Record {
	const char* kind;
	const char* action;
	const char* org;         // nullptr: no tenant
	const char* table_name;  // nullptr for events and seals
	Jsonb* pk = nullptr;
	Jsonb* old_row = nullptr;
	Jsonb* new_row = nullptr;
	ArrayType* changed = nullptr;
	Jsonb* detail = nullptr;
	// actor fields, nullptr when absent
	const char* actor = nullptr;
	const char* impersonator = nullptr;
	const char* tenant_role = nullptr;
	const char* db_role = nullptr;
	const char* session_role = nullptr;
};

// The PostgreSQL roles of the caller (before switching to the log owner).
void set_db_roles(Record& r)
{
	r.db_role = GetUserNameFromId(GetUserId(), false);
	r.session_role = GetUserNameFromId(GetSessionUserId(), false);
}

// Inserts one record into this transaction's partition.
// `seq` and `prev` are the chain position and previous hash. Returns the id.
// The 22 column values of a record (hash left unset).
void fill_values(const Record& r, int64 id, int64 seq, bytea* prev, Datum* v, bool* n)
{
	v[c_id] = Int64GetDatum(id);
	n[c_id] = false;
	v[c_xact_at] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	n[c_xact_at] = false;
	v[c_statement_at] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
	n[c_statement_at] = false;
	v[c_xid] = Int64GetDatum(static_cast<int64>(U64FromFullTransactionId(GetTopFullTransactionId())));
	n[c_xid] = false;
	v[c_org] = text_or_null(r.org, &n[c_org]);
	v[c_kind] = text_or_null(r.kind, &n[c_kind]);
	v[c_seq] = Int64GetDatum(seq);
	n[c_seq] = false;
	v[c_action] = text_or_null(r.action, &n[c_action]);
	v[c_table_name] = text_or_null(r.table_name, &n[c_table_name]);
	v[c_actor] = text_or_null(r.actor, &n[c_actor]);
	v[c_impersonator] = text_or_null(r.impersonator, &n[c_impersonator]);
	v[c_tenant_role] = text_or_null(r.tenant_role, &n[c_tenant_role]);
	v[c_db_role] = text_or_null(r.db_role, &n[c_db_role]);
	v[c_session_role] = text_or_null(r.session_role, &n[c_session_role]);
	const char* app = GetConfigOption("application_name", true, false);
	v[c_application_name] = text_or_null(app && *app ? app : nullptr, &n[c_application_name]);
	v[c_row_pk] = JsonbPGetDatum(r.pk);
	n[c_row_pk] = r.pk == nullptr;
	v[c_old_row] = JsonbPGetDatum(r.old_row);
	n[c_old_row] = r.old_row == nullptr;
	v[c_new_row] = JsonbPGetDatum(r.new_row);
	n[c_new_row] = r.new_row == nullptr;
	v[c_changed_columns] = PointerGetDatum(r.changed);
	n[c_changed_columns] = r.changed == nullptr;
	v[c_detail] = JsonbPGetDatum(r.detail);
	n[c_detail] = r.detail == nullptr;
	v[c_prev_hash] = PointerGetDatum(prev);
	n[c_prev_hash] = false;
	v[c_seal_seq] = (Datum) 0;
	n[c_seal_seq] = true;
	v[c_seal_prev] = (Datum) 0;
	n[c_seal_prev] = true;
	v[c_hash] = (Datum) 0;
	n[c_hash] = true;
}

// Inserts a complete row into this transaction's partition (heap and indexes).
void insert_values(const Datum* v, const bool* n)
{
	Datum* tv = static_cast<Datum*>(palloc0(sizeof(Datum) * xs.part_natts));
	bool* tn = static_cast<bool*>(palloc(sizeof(bool) * xs.part_natts));
	for (int i = 0; i < xs.part_natts; ++i)
		tn[i] = true;
	for (int i = 0; i < k_ncols; ++i) {
		tv[xs.colmap[i] - 1] = v[i];
		tn[xs.colmap[i] - 1] = n[i];
	}
	HeapTuple tup = heap_form_tuple(RelationGetDescr(xs.part), tv, tn);
	ExecStoreHeapTuple(tup, xs.slot, true);
	table_tuple_insert(xs.part, xs.slot, GetCurrentCommandId(true), 0, nullptr);
	(void) ExecInsertIndexTuples(xs.rri, xs.slot, xs.estate, false, false, nullptr, NIL);
	ExecClearTuple(xs.slot);
	ResetPerTupleExprContext(xs.estate);
}


// Connects SPI and becomes the log owner; undo with leave_writer().
struct WriterState {
	Oid save_user;
	int save_sec;
	int guc_level;
};

WriterState enter_writer()
{
	WriterState w;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	resolve_log();
	GetUserIdAndSecContext(&w.save_user, &w.save_sec);
	SetUserIdAndSecContext(xs.log_owner,
	                       w.save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	// The seal queries run as the log owner: not with the caller's search_path.
	w.guc_level = tg::pg::pin_search_path();
	return w;
}

void leave_writer(const WriterState& w)
{
	AtEOXact_GUC(true, w.guc_level);
	SetUserIdAndSecContext(w.save_user, w.save_sec);
	SPI_finish();
}

// Keeps a copy of a record's values as the chain's pending record.
void hold_back(Level* l, const Datum* v, const bool* n)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	Datum* pv = static_cast<Datum*>(palloc(sizeof(Datum) * k_ncols));
	bool* pn = static_cast<bool*>(palloc(sizeof(bool) * k_ncols));
	for (int i = 0; i < k_ncols; ++i) {
		pn[i] = n[i];
		const bool byval = k_types[i] == INT8OID || k_types[i] == TIMESTAMPTZOID;
		pv[i] = n[i] ? (Datum) 0 : datumCopy(v[i], byval, byval ? 8 : -1);
	}
	MemoryContextSwitchTo(old);
	l->pending_v = pv;
	l->pending_n = pn;
}

// Writes the chain's pending record as an ordinary (unsealed) record. Its
// copy is freed unless the level below (an outer subtransaction) still holds
// it: that one needs it again if this subtransaction rolls back.
void flush_pending(Group* g, Level* l)
{
	Datum v[k_ncols];
	bool n[k_ncols];
	memcpy(v, l->pending_v, sizeof v);
	memcpy(n, l->pending_n, sizeof n);
	bytea* h = hash_record(v, n);
	v[c_hash] = PointerGetDatum(h);
	n[c_hash] = false;
	insert_values(v, n);
	memcpy(l->last, VARDATA(h), 32);
	const bool shared = g->nlevels >= 2 && g->levels[g->nlevels - 2].pending_v == l->pending_v;
	if (!shared) {
		for (int i = 0; i < k_ncols; ++i) {
			const bool byval = k_types[i] == INT8OID || k_types[i] == TIMESTAMPTZOID;
			if (i != c_hash && !l->pending_n[i] && !byval)
				pfree(DatumGetPointer(l->pending_v[i]));
		}
		pfree(l->pending_v);
		pfree(l->pending_n);
	}
	l->pending_v = nullptr;
	l->pending_n = nullptr;
}

// Appends a record to its tenant's chain in this transaction.
int64 write_record(Record& r)
{
	register_callbacks();
	if (xs.sealing)
		elog(ERROR, "cannot write audit records while the transaction is being sealed");
	// Actor fields come from the context of the caller (before switching user).
	const tg::claims::Context& ctx = tg::context::current();
	char* actor = ctx.user_id ? pstrdup(ctx.user_id->c_str()) : nullptr;
	char* imp = ctx.impersonator ? pstrdup(ctx.impersonator->c_str()) : nullptr;
	char* role = ctx.role ? pstrdup(ctx.role->c_str()) : nullptr;
	r.actor = actor;
	r.impersonator = imp;
	r.tenant_role = role;
	set_db_roles(r);

	// Before anything is written: the group's position (memory allocated now
	// cannot fail later in a way that leaves the state ahead of the table).
	Group* g = find_group(r.org, true);
	Level* l = writable_level(g);
	open_partition();
	if (l->pending_v != nullptr)
		flush_pending(g, l);
	bytea* prev = zero_hash();
	if (l->count > 0)
		memcpy(VARDATA(prev), l->last, 32);
	Datum v[k_ncols];
	bool n[k_ncols];
	const int64 id = nextval_internal(xs.seq_oid, false);
	fill_values(r, id, l->count + 1, prev, v, n);
	hold_back(l, v, n);
	l->count += 1;
	return id;
}

// ---------------------------------------------------------------------------
// The head of the seal chain in shared memory (with shared_preload_libraries):
// the serialized step at COMMIT is then a few microseconds under an LWLock,
// not held while the commit is written. A transaction that fails after its
// seals were chained (rare: an error in the last steps of COMMIT) leaves its
// seal numbers as orphans here; the next transaction that seals writes them
// as VOID seals (same number, same hashes), so the chain has no hole.
// Without preloading, the chain head is read from the table under a
// transaction-scoped lock held until the commit is done (correct, slower).
// ---------------------------------------------------------------------------

constexpr int k_max_heads = 32;
constexpr int k_max_orphans = 64;

struct Orphan {
	int64 seq;
	uint8 prev[32];
	uint8 hash[32];
};

struct Head {
	Oid db;
	Oid log;
	bool valid;
	int64 seq;
	uint8 hash[32];
	int norphans;
	Orphan orphans[k_max_orphans];
};

struct AuditShared {
	LWLock* lock;
	Head heads[k_max_heads];
};

AuditShared* shared = nullptr;
shmem_request_hook_type prev_shmem_request = nullptr;
shmem_startup_hook_type prev_shmem_startup = nullptr;

void shmem_request()
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(sizeof(AuditShared));
	RequestNamedLWLockTranche("tenant_guard_audit", 1);
}

void shmem_startup()
{
	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	bool found;
	shared = static_cast<AuditShared*>(ShmemInitStruct("tenant_guard audit", sizeof(AuditShared), &found));
	if (!found) {
		memset(shared, 0, sizeof(AuditShared));
		shared->lock = &(GetNamedLWLockTranche("tenant_guard_audit"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

// This database's head slot (caller holds the lock exclusively); nullptr when full.
Head* head_slot()
{
	Head* free_slot = nullptr;
	for (int i = 0; i < k_max_heads; ++i) {
		Head* h = &shared->heads[i];
		if (h->db == MyDatabaseId && h->log == xs.log_oid)
			return h;
		if (h->db == MyDatabaseId && h->log != xs.log_oid) {
			// the extension was dropped and created again: a new log
			memset(h, 0, sizeof(Head));
			h->db = MyDatabaseId;
			h->log = xs.log_oid;
			return h;
		}
		if (free_slot == nullptr && !OidIsValid(h->db))
			free_slot = h;
	}
	if (free_slot != nullptr) {
		memset(free_slot, 0, sizeof(Head));
		free_slot->db = MyDatabaseId;
		free_slot->log = xs.log_oid;
	}
	return free_slot;
}

void remember_orphans()
{
	if (shared == nullptr || nsealed_notes == 0 || !OidIsValid(xs.log_oid))
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	Head* h = head_slot();
	for (int i = 0; h != nullptr && i < nsealed_notes && h->norphans < k_max_orphans; ++i) {
		Orphan* o = &h->orphans[h->norphans++];
		o->seq = sealed_notes[i].seq;
		memcpy(o->prev, sealed_notes[i].prev, 32);
		memcpy(o->hash, sealed_notes[i].hash, 32);
	}
	LWLockRelease(shared->lock);
}

// The last seal in the table (latest snapshot), or the last purged one.
void read_last_seal(int64* seq, uint8* hash)
{
	*seq = 0;
	memset(hash, 0, 32);
	if (last_seal_plan == nullptr)
		last_seal_plan = prepare("SELECT seal_seq, hash FROM tenant_guard.audit_log WHERE seal_seq IS NOT NULL "
		                         "ORDER BY seal_seq DESC LIMIT 1",
		                         0, nullptr);
	if (SPI_execute_snapshot(last_seal_plan, nullptr, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false,
	                         1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the last audit seal");
	if (SPI_processed != 1) {
		// No seal in the log: continue after the last purged seal, if any.
		if (SPI_execute_snapshot(
		        SPI_prepare("SELECT (detail->>'last_seal_seq')::bigint, "
		                    "pg_catalog.decode(detail->>'last_seal_hash', 'hex') FROM tenant_guard.audit_log "
		                    "WHERE kind = 'event' AND action = 'tenant_guard.audit_purge' "
		                    "AND detail ? 'last_seal_seq' ORDER BY (detail->>'last_seal_seq')::bigint DESC LIMIT 1",
		                    0, nullptr),
		        nullptr, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 1) != SPI_OK_SELECT ||
		    SPI_processed != 1)
			return;
	}
	bool n1, n2;
	Datum sd = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &n1);
	Datum hd = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &n2);
	if (n1 || n2)
		return;
	bytea* ph = DatumGetByteaPCopy(hd);
	if (VARSIZE_ANY_EXHDR(ph) != 32)
		return;
	*seq = DatumGetInt64(sd);
	memcpy(hash, VARDATA_ANY(ph), 32);
}

bytea* hash_bytea(const uint8* h)
{
	bytea* out = static_cast<bytea*>(palloc(VARHDRSZ + 32));
	SET_VARSIZE(out, VARHDRSZ + 32);
	memcpy(VARDATA(out), h, 32);
	return out;
}

Jsonb* seal_detail(const Level* l)
{
	char buf[160];
	char hex[65];
	static const char digits[] = "0123456789abcdef";
	for (int k = 0; k < 32; ++k) {
		hex[2 * k] = digits[l->last[k] >> 4];
		hex[2 * k + 1] = digits[l->last[k] & 0xf];
	}
	hex[64] = '\0';
	snprintf(buf, sizeof buf, "{\"records\": " INT64_FORMAT ", \"last_hash\": \"%s\"}", l->count, hex);
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf)));
}

// The seals: one per tenant chain of this transaction, linked into the
// global chain.
void seal_transaction()
{
	int live = 0;
	for (int i = 0; i < xs.ngroups; ++i)
		if (xs.groups[i].nlevels > 0 && xs.groups[i].levels[xs.groups[i].nlevels - 1].count > 0)
			++live;
	if (live == 0)
		return;
	open_partition();
	xs.sealing = true;
	Record proto;
	set_db_roles(proto);
	// At COMMIT the statement's snapshot is gone; SPI needs an active one.
	PushActiveSnapshot(GetTransactionSnapshot());
	WriterState w = enter_writer();

	// Each chain's seal carrier, prepared before the serialized step: its
	// pending record, or (when the last record is already in the table,
	// after a savepoint rolled back) a seal row naming the count and last hash.
	Datum** vals = static_cast<Datum**>(palloc(sizeof(Datum*) * live));
	bool** nulls = static_cast<bool**>(palloc(sizeof(bool*) * live));
	int k = 0;
	for (int i = 0; i < xs.ngroups; ++i) {
		Group* g = &xs.groups[i];
		if (g->nlevels == 0 || g->levels[g->nlevels - 1].count == 0)
			continue;
		Level* l = &g->levels[g->nlevels - 1];
		if (l->pending_v != nullptr) {
			vals[k] = l->pending_v;
			nulls[k] = l->pending_n;
		} else {
			Record r = proto;
			r.kind = "seal";
			r.action = "SEAL";
			r.org = g->org;
			r.table_name = nullptr;
			r.detail = seal_detail(l);
			vals[k] = static_cast<Datum*>(palloc(sizeof(Datum) * k_ncols));
			nulls[k] = static_cast<bool*>(palloc(sizeof(bool) * k_ncols));
			fill_values(r, nextval_internal(xs.seq_oid, false), 0, zero_hash(), vals[k], nulls[k]);
		}
		++k;
	}

	Orphan* voids = nullptr;
	int nvoids = 0;
	if (shared != nullptr) {
		// Load this database's head once (after a restart) from the table.
		LWLockAcquire(shared->lock, LW_SHARED);
		bool loaded = false;
		for (int i = 0; i < k_max_heads; ++i)
			if (shared->heads[i].db == MyDatabaseId && shared->heads[i].log == xs.log_oid && shared->heads[i].valid)
				loaded = true;
		LWLockRelease(shared->lock);
		int64 tseq = 0;
		uint8 thash[32];
		memset(thash, 0, sizeof thash);
		if (!loaded)
			read_last_seal(&tseq, thash);
		sealed_notes = static_cast<SealedNote*>(
		    MemoryContextAlloc(TopTransactionContext, sizeof(SealedNote) * (live + k_max_orphans)));
		nsealed_notes = 0;
		voids = static_cast<Orphan*>(palloc(sizeof(Orphan) * k_max_orphans));
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		Head* h = head_slot();
		if (h != nullptr) {
			if (!h->valid) {
				h->seq = tseq;
				memcpy(h->hash, thash, 32);
				h->valid = true;
			}
			nvoids = h->norphans;
			memcpy(voids, h->orphans, sizeof(Orphan) * nvoids);
			h->norphans = 0;
			for (int j = 0; j < live; ++j) {
				vals[j][c_seal_seq] = Int64GetDatum(++h->seq);
				nulls[j][c_seal_seq] = false;
				vals[j][c_seal_prev] = PointerGetDatum(hash_bytea(h->hash));
				nulls[j][c_seal_prev] = false;
				bytea* hh = hash_record(vals[j], nulls[j]);
				vals[j][c_hash] = PointerGetDatum(hh);
				nulls[j][c_hash] = false;
				SealedNote* sn = &sealed_notes[nsealed_notes++];
				sn->seq = h->seq;
				memcpy(sn->prev, h->hash, 32);
				memcpy(sn->hash, VARDATA(hh), 32);
				memcpy(h->hash, VARDATA(hh), 32);
			}
			// Orphans this transaction writes become its own if it fails too.
			for (int j = 0; j < nvoids; ++j) {
				SealedNote* sn = &sealed_notes[nsealed_notes++];
				sn->seq = voids[j].seq;
				memcpy(sn->prev, voids[j].prev, 32);
				memcpy(sn->hash, voids[j].hash, 32);
			}
		}
		LWLockRelease(shared->lock);
		if (h == nullptr)
			ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			                errmsg("too many databases use the tenant_guard audit log"),
			                errdetail("At most %d databases of one server can use it.", k_max_heads)));
	} else {
		// Without preloading: the head from the table, under a lock held
		// until this transaction's commit is done.
		LOCKTAG tag;
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(xs.log_oid), 0, k_lock_field4);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
		int64 seq;
		uint8 prev[32];
		read_last_seal(&seq, prev);
		for (int j = 0; j < live; ++j) {
			vals[j][c_seal_seq] = Int64GetDatum(++seq);
			nulls[j][c_seal_seq] = false;
			vals[j][c_seal_prev] = PointerGetDatum(hash_bytea(prev));
			nulls[j][c_seal_prev] = false;
			bytea* hh = hash_record(vals[j], nulls[j]);
			vals[j][c_hash] = PointerGetDatum(hh);
			nulls[j][c_hash] = false;
			memcpy(prev, VARDATA(hh), 32);
		}
	}
	for (int j = 0; j < live; ++j)
		insert_values(vals[j], nulls[j]);
	for (int j = 0; j < nvoids; ++j) {
		Record r = proto;
		r.kind = "seal";
		r.action = "VOID";
		r.org = nullptr;
		r.table_name = nullptr;
		r.detail = DatumGetJsonbP(DirectFunctionCall1(
		    jsonb_in, CStringGetDatum("{\"reason\": \"the transaction sealed with this number failed at COMMIT\"}")));
		Datum v[k_ncols];
		bool n[k_ncols];
		fill_values(r, nextval_internal(xs.seq_oid, false), 0, zero_hash(), v, n);
		v[c_seal_seq] = Int64GetDatum(voids[j].seq);
		n[c_seal_seq] = false;
		v[c_seal_prev] = PointerGetDatum(hash_bytea(voids[j].prev));
		n[c_seal_prev] = false;
		v[c_hash] = PointerGetDatum(hash_bytea(voids[j].hash));
		n[c_hash] = false;
		insert_values(v, n);
	}
	leave_writer(w);
	PopActiveSnapshot();
	close_partition();
}

// Test hook (_audit_selftest_fail_commit): fail this transaction's COMMIT
// right after its seals were chained, as a late error in COMMIT would.
bool fail_after_seal = false;

void xact_callback(XactEvent event, void*)
{
	switch (event) {
	case XACT_EVENT_PRE_PREPARE:
		// A prepared transaction can still be rolled back after its seals
		// were numbered, which would leave a hole in the seal chain.
		for (int i = 0; i < xs.ngroups; ++i)
			if (xs.groups[i].nlevels > 0 && xs.groups[i].levels[xs.groups[i].nlevels - 1].count > 0)
				ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				                errmsg("cannot PREPARE a transaction that wrote tenant_guard audit records"),
				                errdetail("Audit records are sealed at COMMIT; two-phase commit is not supported.")));
		break;
	case XACT_EVENT_PRE_COMMIT:
		seal_transaction();
		close_partition();
		if (fail_after_seal) {
			fail_after_seal = false;
			ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			                errmsg("simulated failure at COMMIT after the audit seals were chained")));
		}
		break;
	case XACT_EVENT_ABORT:
	case XACT_EVENT_PARALLEL_ABORT:
		fail_after_seal = false;
		// Failed after its seals were chained: leave their numbers to the next sealer.
		remember_orphans();
		reset_xact_state();
		break;
	case XACT_EVENT_COMMIT:
	case XACT_EVENT_PREPARE:
	case XACT_EVENT_PARALLEL_COMMIT:
		reset_xact_state();
		break;
	default:
		break;
	}
}

void register_callbacks()
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(xact_callback, nullptr);
	RegisterSubXactCallback(subxact_callback, nullptr);
	callbacks_registered = true;
}

// ---------------------------------------------------------------------------
// Per-relation trigger information (cached per backend, dropped on relcache
// invalidation of the relation: protect(), unprotect() and enable_audit()
// all alter the table).
// ---------------------------------------------------------------------------

struct RelInfo {
	Oid relid;  // hash key
	bool valid;
	char* table_name;         // the audited (root) table, quoted
	AttrNumber tenant_attnum; // 0: not protected
	Oid tenant_out;           // output function of the tenant column
	int natts;
	bool* excluded;           // by attnum - 1
	bool* redacted;
	int nexcluded;
	int nredacted;
	int npk;
	AttrNumber* pk;
	FmgrInfo to_jsonb;
};

HTAB* rel_cache = nullptr;

void invalidate_rel(Datum, Oid relid)
{
	if (rel_cache == nullptr)
		return;
	HASH_SEQ_STATUS st;
	hash_seq_init(&st, rel_cache);
	RelInfo* e;
	while ((e = static_cast<RelInfo*>(hash_seq_search(&st))) != nullptr)
		if (relid == InvalidOid || e->relid == relid)
			e->valid = false;
}

AttrNumber tenant_column_of(Oid relid, TupleDesc desc)
{
	if (tenant_column_plan == nullptr) {
		Oid t[1] = {OIDOID};
		tenant_column_plan =
		    prepare("SELECT tenant_column::pg_catalog.text FROM tenant_guard.protected_tables WHERE tbl = $1", 1, t);
	}
	Datum v[1] = {ObjectIdGetDatum(relid)};
	if (SPI_execute_plan(tenant_column_plan, v, nullptr, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read tenant_guard.protected_tables");
	if (SPI_processed != 1)
		return 0;
	char* col = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	for (int i = 0; i < desc->natts; ++i) {
		Form_pg_attribute a = TupleDescAttr(desc, i);
		if (!a->attisdropped && strcmp(NameStr(a->attname), col) == 0)
			return a->attnum;
	}
	return 0;
}

RelInfo* rel_info(Relation rel, Trigger* trig)
{
	if (rel_cache == nullptr) {
		HASHCTL ctl;
		memset(&ctl, 0, sizeof ctl);
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RelInfo);
		ctl.hcxt = CacheMemoryContext;
		rel_cache = hash_create("tenant_guard audit relations", 32, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(invalidate_rel, (Datum) 0);
	}
	const Oid relid = RelationGetRelid(rel);
	bool found;
	RelInfo* e = static_cast<RelInfo*>(hash_search(rel_cache, &relid, HASH_ENTER, &found));
	if (found && e->valid)
		return e;
	if (found) {
		if (e->table_name) pfree(e->table_name);
		if (e->excluded) pfree(e->excluded);
		if (e->redacted) pfree(e->redacted);
		if (e->pk) pfree(e->pk);
	}
	e->valid = false;
	e->table_name = nullptr;
	e->excluded = e->redacted = nullptr;
	e->pk = nullptr;

	TupleDesc desc = RelationGetDescr(rel);
	MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);
	Oid root = relid;
	if (rel->rd_rel->relispartition) {
		List* anc = get_partition_ancestors(relid);
		if (anc != NIL)
			root = llast_oid(anc);
	}
	e->table_name = pstrdup(quote_qualified_identifier(get_namespace_name(get_rel_namespace(root)),
	                                                   get_rel_name(root)));
	e->natts = desc->natts;
	e->excluded = static_cast<bool*>(palloc0(sizeof(bool) * (desc->natts + 1)));
	e->redacted = static_cast<bool*>(palloc0(sizeof(bool) * (desc->natts + 1)));
	e->nexcluded = e->nredacted = 0;
	for (int i = 0; i < trig->tgnargs; ++i) {
		const char* arg = trig->tgargs[i];
		if (strlen(arg) < 3 || arg[1] != ':' || (arg[0] != 'x' && arg[0] != 'r'))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			                errmsg("invalid tenant_guard audit trigger argument \"%s\"", arg),
			                errhint("Use tenant_guard.enable_audit() to set up auditing.")));
		AttrNumber att = get_attnum(relid, arg + 2);
		if (att <= 0)
			continue;  // a column dropped since: nothing to hide
		if (arg[0] == 'x') {
			e->excluded[att - 1] = true;
			++e->nexcluded;
		} else {
			e->redacted[att - 1] = true;
			++e->nredacted;
		}
	}
	Bitmapset* pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	e->npk = bms_num_members(pk);
	e->pk = static_cast<AttrNumber*>(palloc(sizeof(AttrNumber) * (e->npk + 1)));
	int k = 0, m = -1;
	while ((m = bms_next_member(pk, m)) >= 0)
		e->pk[k++] = static_cast<AttrNumber>(m + FirstLowInvalidHeapAttributeNumber);
	fmgr_info_cxt(F_TO_JSONB, &e->to_jsonb, CacheMemoryContext);
	e->to_jsonb.fn_expr = reinterpret_cast<Node*>(
	    makeFuncExpr(F_TO_JSONB, JSONBOID, list_make1(makeNullConst(rel->rd_rel->reltype, -1, InvalidOid)),
	                 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL));
	MemoryContextSwitchTo(old);

	// The tenant column, from the registry: the partition's own row, else the root's.
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	e->tenant_attnum = tenant_column_of(relid, desc);
	if (e->tenant_attnum == 0 && root != relid)
		e->tenant_attnum = tenant_column_of(root, desc);
	SPI_finish();
	e->tenant_out = InvalidOid;
	if (e->tenant_attnum > 0) {
		bool varlena;
		getTypeOutputInfo(TupleDescAttr(desc, e->tenant_attnum - 1)->atttypid, &e->tenant_out, &varlena);
	}
	e->valid = true;
	return e;
}

// The row as jsonb: excluded columns left out, redacted ones replaced.
Jsonb* full_jsonb(RelInfo* info, HeapTuple tuple, TupleDesc desc)
{
	return DatumGetJsonbP(FunctionCall1(&info->to_jsonb, heap_copy_tuple_as_datum(tuple, desc)));
}

Jsonb* row_jsonb(RelInfo* info, Jsonb* full, TupleDesc desc)
{
	if (info->nexcluded == 0 && info->nredacted == 0)
		return full;
	JsonbParseState* st = nullptr;
	JsonbIterator* it = JsonbIteratorInit(&full->root);
	JsonbValue v;
	JsonbValue* res = nullptr;
	JsonbIteratorToken tok;
	bool skip = false, redact = false;
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
		if (tok == WJB_KEY) {
			skip = redact = false;
			for (int i = 0; i < desc->natts; ++i) {
				Form_pg_attribute a = TupleDescAttr(desc, i);
				if (a->attisdropped || (!info->excluded[i] && !info->redacted[i]))
					continue;
				const char* name = NameStr(a->attname);
				if (strlen(name) == static_cast<size_t>(v.val.string.len) &&
				    memcmp(name, v.val.string.val, v.val.string.len) == 0) {
					skip = info->excluded[i];
					redact = info->redacted[i];
					break;
				}
			}
			if (!skip)
				res = pushJsonbValue(&st, tok, &v);
		} else if (tok == WJB_VALUE) {
			if (skip)
				continue;
			if (redact) {
				JsonbValue m;
				m.type = jbvString;
				m.val.string.val = const_cast<char*>(k_redacted);
				m.val.string.len = static_cast<int>(strlen(k_redacted));
				res = pushJsonbValue(&st, tok, &m);
			} else {
				res = pushJsonbValue(&st, tok, &v);
			}
		} else {
			res = pushJsonbValue(&st, tok, tok < WJB_BEGIN_ARRAY ? &v : nullptr);
		}
	}
	return JsonbValueToJsonb(res);
}

// The primary key of the row as a jsonb object (NULL without a primary key).
Jsonb* pk_jsonb(RelInfo* info, Jsonb* full, TupleDesc desc)
{
	if (info->npk == 0)
		return nullptr;
	JsonbParseState* st = nullptr;
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, nullptr);
	for (int i = 0; i < info->npk; ++i) {
		const char* name = NameStr(TupleDescAttr(desc, info->pk[i] - 1)->attname);
		JsonbValue k;
		k.type = jbvString;
		k.val.string.val = const_cast<char*>(name);
		k.val.string.len = static_cast<int>(strlen(name));
		JsonbValue* val = getKeyJsonValueFromContainer(&full->root, name, k.val.string.len, nullptr);
		if (val == nullptr)
			continue;
		pushJsonbValue(&st, WJB_KEY, &k);
		pushJsonbValue(&st, WJB_VALUE, val);
	}
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, nullptr));
}

// The org of the current context as text (canonical uuid when it is one).
char* context_org()
{
	const tg::claims::Context& c = tg::context::current();
	if (c.org) {
		char buf[40];
		static const char digits[] = "0123456789abcdef";
		int p = 0;
		for (int i = 0; i < 16; ++i) {
			if (i == 4 || i == 6 || i == 8 || i == 10)
				buf[p++] = '-';
			buf[p++] = digits[(*c.org)[i] >> 4];
			buf[p++] = digits[(*c.org)[i] & 0xf];
		}
		buf[p] = '\0';
		return pstrdup(buf);
	}
	if (c.org_key)
		return pstrdup(c.org_key->c_str());
	return nullptr;
}

char* text_arg(FunctionCallInfo fcinfo, int i)
{
	return PG_ARGISNULL(i) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(i));
}

int64 write_event(const char* org, const char* action, Jsonb* detail)
{
	Record r;
	r.kind = "event";
	r.action = action;
	r.org = org;
	r.table_name = nullptr;
	r.detail = detail ? detail : DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	return write_record(r);
}

void check_action(const char* action, bool internal)
{
	if (action == nullptr || *action == '\0' || strlen(action) > 200)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid audit action"),
		                errdetail("An action is a name of 1 to 200 bytes, such as member.role_changed.")));
	if (!internal && strncmp(action, "tenant_guard.", 13) == 0)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("audit actions starting with \"tenant_guard.\" are reserved"),
		                errdetail("tenant_guard writes its own events under that prefix.")));
	// Support sessions (docs/support-access.md) write platform.* events.
	if (!internal && strncmp(action, "platform.", 9) == 0)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("audit actions starting with \"platform.\" are reserved"),
		                errdetail("tenant_guard writes support-session events under that prefix.")));
}

}  // namespace

// With shared_preload_libraries: the seal chain head lives in shared memory.
void tg::audit_guc::init_shared_memory()
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;
}

// tenant_guard._audit_trigger() returns trigger
TG_FUNCTION(_audit_trigger)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("tenant_guard._audit_trigger() must be called as a trigger")));
	TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("tenant_guard._audit_trigger() must run AFTER ... FOR EACH ROW"),
		                errhint("Use tenant_guard.enable_audit() to set up auditing.")));
	Relation rel = td->tg_relation;
	TupleDesc desc = RelationGetDescr(rel);
	RelInfo* info = rel_info(rel, td->tg_trigger);

	HeapTuple oldt = nullptr, newt = nullptr;
	const char* action;
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event)) {
		action = "INSERT";
		newt = td->tg_trigtuple;
	} else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
		action = "UPDATE";
		oldt = td->tg_trigtuple;
		newt = td->tg_newtuple;
	} else if (TRIGGER_FIRED_BY_DELETE(td->tg_event)) {
		action = "DELETE";
		oldt = td->tg_trigtuple;
	} else {
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("tenant_guard._audit_trigger() handles INSERT, UPDATE and DELETE only")));
	}

	ArrayType* changed = nullptr;
	if (oldt && newt) {
		Datum* names = static_cast<Datum*>(palloc(sizeof(Datum) * (desc->natts + 1)));
		int n = 0;
		for (int i = 0; i < desc->natts; ++i) {
			Form_pg_attribute a = TupleDescAttr(desc, i);
			if (a->attisdropped || info->excluded[i])
				continue;
			bool n1, n2;
			Datum d1 = heap_getattr(oldt, i + 1, desc, &n1);
			Datum d2 = heap_getattr(newt, i + 1, desc, &n2);
			bool same = (n1 && n2) || (!n1 && !n2 && datum_image_eq(d1, d2, a->attbyval, a->attlen));
			if (!same)
				names[n++] = PointerGetDatum(cstring_to_text(NameStr(a->attname)));
		}
		if (n == 0 && tg::audit_guc::skip_noop_updates)
			return PointerGetDatum(nullptr);
		changed = construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT);
	}

	Record r;
	r.kind = "row";
	r.action = action;
	r.table_name = info->table_name;
	HeapTuple key_tuple = newt ? newt : oldt;
	if (info->tenant_attnum > 0) {
		bool isnull;
		Datum t = heap_getattr(key_tuple, info->tenant_attnum, desc, &isnull);
		r.org = isnull ? nullptr : OidOutputFunctionCall(info->tenant_out, t);
	} else {
		r.org = context_org();
	}
	Jsonb* full_old = oldt ? full_jsonb(info, oldt, desc) : nullptr;
	Jsonb* full_new = newt ? full_jsonb(info, newt, desc) : nullptr;
	r.old_row = full_old ? row_jsonb(info, full_old, desc) : nullptr;
	r.new_row = full_new ? row_jsonb(info, full_new, desc) : nullptr;
	r.pk = pk_jsonb(info, full_new ? full_new : full_old, desc);
	r.changed = changed;
	(void) write_record(r);
	return PointerGetDatum(nullptr);
}

// tenant_guard.audit_event(action text, detail jsonb DEFAULT '{}') returns bigint
TG_FUNCTION(audit_event)
{
	char* action = text_arg(fcinfo, 0);
	check_action(action, false);
	Jsonb* detail = PG_ARGISNULL(1) ? nullptr : PG_GETARG_JSONB_P(1);
	PG_RETURN_INT64(write_event(context_org(), action, detail));
}

// tenant_guard._audit_write_event(org text, action text, detail jsonb DEFAULT '{}') returns bigint
TG_FUNCTION(_audit_write_event)
{
	char* org = text_arg(fcinfo, 0);
	char* action = text_arg(fcinfo, 1);
	check_action(action, true);
	Jsonb* detail = PG_ARGISNULL(2) ? nullptr : PG_GETARG_JSONB_P(2);
	PG_RETURN_INT64(write_event(org, action, detail));
}

// tenant_guard._audit_registry_event() returns trigger: AFTER ROW on
// tenant_guard's registries; writes "tenant_guard.<verb>" with the row
struct RegistryVerb {
	const char* table;
	const char* on_write;
	const char* on_delete;
};
const RegistryVerb k_verbs[] = {
    {"protected_tables", "protect", "unprotect"},   {"access_rules", "allow", "disallow"},
    {"exemptions", "exempt", "unexempt"},           {"guarded_schemas", "guard_schema", "unguard_schema"},
    {"unsafe_ddl_log", "unsafe_ddl", "unsafe_ddl"}, {"audited_tables", "enable_audit", "disable_audit"},
    {"app_roles", "register_app_role", "unregister_app_role"},
    // key_events: the verb is key_<event> and the record goes to the key's tenant (below)
    {"key_events", "key_", "key_"},
};
const char* const k_time_columns[] = {"protected_at", "created_at",    "guarded_at", "exempted_at",
                                      "at",           "enabled_at",    "registered_at"};

TG_FUNCTION(_audit_registry_event)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("tenant_guard._audit_registry_event() must be called as a trigger")));
	TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
	Relation rel = td->tg_relation;
	TupleDesc desc = RelationGetDescr(rel);
	const bool del = TRIGGER_FIRED_BY_DELETE(td->tg_event);
	HeapTuple row = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	if (!del) {
		// A row whose own timestamp predates this transaction was not made by
		// it: pg_restore reloading the registry. No event.
		for (int i = 0; i < desc->natts; ++i) {
			Form_pg_attribute a = TupleDescAttr(desc, i);
			if (a->attisdropped || a->atttypid != TIMESTAMPTZOID)
				continue;
			for (const char* name : k_time_columns) {
				if (strcmp(NameStr(a->attname), name) != 0)
					continue;
				bool isnull;
				Datum d = heap_getattr(row, i + 1, desc, &isnull);
				if (!isnull && DatumGetTimestampTz(d) < GetCurrentTransactionStartTimestamp())
					return PointerGetDatum(nullptr);
			}
		}
	}
	const char* verb = nullptr;
	for (const RegistryVerb& v : k_verbs)
		if (strcmp(RelationGetRelationName(rel), v.table) == 0)
			verb = del ? v.on_delete : v.on_write;
	if (verb == nullptr)
		elog(ERROR, "tenant_guard._audit_registry_event() fired on unexpected table %s", RelationGetRelationName(rel));
	FmgrInfo fl;
	fmgr_info(F_TO_JSONB, &fl);
	fl.fn_expr = reinterpret_cast<Node*>(makeFuncExpr(
	    F_TO_JSONB, JSONBOID, list_make1(makeNullConst(rel->rd_rel->reltype, -1, InvalidOid)), InvalidOid,
	    InvalidOid, COERCE_EXPLICIT_CALL));
	Jsonb* detail = DatumGetJsonbP(FunctionCall1(&fl, heap_copy_tuple_as_datum(row, desc)));
	const char* org = nullptr;
	if (strcmp(RelationGetRelationName(rel), "key_events") == 0) {
		// key created/rotated/shredded/rewrapped: an event of that tenant, so
		// its admins see it in their own log
		const char* event = SPI_getvalue(row, desc, SPI_fnumber(desc, "event"));
		org = SPI_getvalue(row, desc, SPI_fnumber(desc, "org_id"));
		verb = psprintf("key_%s", event != nullptr ? event : "unknown");
	}
	(void) write_event(org, psprintf("tenant_guard.%s", verb), detail);
	return PointerGetDatum(nullptr);
}

// tenant_guard._audit_selftest_fail_commit() returns void: the current
// transaction's COMMIT fails after its audit seals were chained (tests of
// the VOID seal path)
TG_FUNCTION(_audit_selftest_fail_commit)
{
	register_callbacks();
	fail_after_seal = true;
	PG_RETURN_VOID();
}

// tenant_guard._audit_hash(<the 21 hashed columns of audit_log>) returns bytea
TG_FUNCTION(_audit_hash)
{
	Datum v[k_nhashed];
	bool n[k_nhashed];
	if (PG_NARGS() != k_nhashed)
		elog(ERROR, "tenant_guard._audit_hash() takes %d arguments", k_nhashed);
	for (int i = 0; i < k_nhashed; ++i) {
		n[i] = PG_ARGISNULL(i);
		v[i] = n[i] ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	PG_RETURN_BYTEA_P(hash_record(v, n));
}

// tenant_guard._audit_is_reader() returns boolean: the in-tenant role of the
// context is tenant_guard.audit_reader_role
TG_FUNCTION(_audit_is_reader)
{
	const tg::claims::Context& c = tg::context::current();
	const char* want = tg::audit_guc::reader_role;
	PG_RETURN_BOOL(c.org_key && c.role && want && *c.role == want);
}

// tenant_guard._csv_line(fields text[]) returns text: one RFC 4180 line
// (the quoting is core::audit::csv_line's, unit-tested there)
TG_FUNCTION(_csv_line)
{
	ArrayType* arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum* elems;
	bool* nulls;
	int n;
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	const char** data = static_cast<const char**>(palloc(sizeof(char*) * (n + 1)));
	int* lens = static_cast<int*>(palloc(sizeof(int) * (n + 1)));
	for (int i = 0; i < n; ++i) {
		if (nulls[i])
			continue;
		text* t = DatumGetTextPP(elems[i]);
		data[i] = VARDATA_ANY(t);
		lens[i] = VARSIZE_ANY_EXHDR(t);
	}
	// C++ objects from here on: PostgreSQL only through pg_call.
	std::vector<std::optional<std::string>> fields;
	fields.reserve(static_cast<std::size_t>(n));
	for (int i = 0; i < n; ++i) {
		if (nulls[i])
			fields.emplace_back(std::nullopt);
		else
			fields.emplace_back(std::string(data[i], static_cast<std::size_t>(lens[i])));
	}
	const std::string line = audit::csv_line(fields);
	return tg::pg::pg_call(
	    [&] { return PointerGetDatum(cstring_to_text_with_len(line.data(), static_cast<int>(line.size()))); });
}
