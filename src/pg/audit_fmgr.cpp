/*
 * pg/audit_fmgr.cpp
 *
 * The audit log (docs/audit.md):
 *
 *   tenant_guard._audit_trigger() returns trigger
 *       AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW on an audited table
 *       (enable_audit() creates it); trigger arguments "x:<column>" exclude a
 *       column, "r:<column>" redact it
 *   tenant_guard._audit_flush() returns trigger
 *       AFTER INSERT OR UPDATE OR DELETE FOR EACH STATEMENT on an audited
 *       table and each of its partitions: writes the statement's records
 *   tenant_guard.audit_event(action text, detail jsonb) returns bigint
 *   tenant_guard._audit_write_event(org text, action text, detail jsonb) returns bigint
 *   tenant_guard._audit_registry_event() returns trigger
 *       AFTER ROW on tenant_guard's registries: tenant_guard.<verb> events
 *   tenant_guard._audit_hash(<the 21 hashed columns>) returns bytea
 *   tenant_guard._audit_is_reader() returns boolean
 *   tenant_guard._csv_line(fields text[]) returns text
 *   tenant_guard._audit_selftest_fail_commit() returns void (test hook)
 *
 * Statement records. The row trigger adds each row change (primary key,
 * old and new row as jsonb, changed columns) to the open record of its
 * (table, action, tenant, subtransaction) in backend memory; the statement
 * trigger writes the statement's open records when its row events are done
 * (see "Statement records" below). One statement that changes a thousand
 * rows of a tenant thus writes one log row, not a thousand: the row images
 * go into one jsonb array, compressed and stored out of line, and the
 * per-record work (hash, heap and index inserts, WAL) is paid once.
 *
 * Chain design. Every record carries SHA-256(canonical content || prev_hash).
 * Records are chained per (transaction, tenant): the first record of a
 * tenant in a transaction has 32 zero bytes as prev_hash, each next one the
 * hash of the one before, and `seq` counts them. No lock is taken while the
 * transaction runs, so writers of one tenant never wait for each other. The
 * newest record of each chain is held back in memory until the next one
 * arrives or COMMIT (unless it is large: then it is written at once and
 * COMMIT adds a small seal row). At COMMIT (XACT_EVENT_PRE_COMMIT,
 * registered on the first audited write of a backend; no preloading needed)
 * each chain's held-back last record gets the next seal number (seal_seq)
 * and the hash of the row with the previous seal number (seal_prev), then
 * its own hash, and is written: one global chain of seals, no extra row.
 * Only that numbering is serialized: with shared_preload_libraries under an
 * LWLock on a head in shared memory (see below), else under a
 * transaction-scoped advisory lock held until the commit is done, the
 * previous seal read with the latest snapshot so every isolation level works.
 * Savepoints: the chain state of every tenant is kept per subtransaction
 * level and restored when a subtransaction rolls back, so the records of a
 * rolled-back savepoint (gone from the table) are not sealed; its open
 * statement records are dropped.
 *
 * Records are inserted directly into the transaction's partition (all of a
 * transaction's rows share xact_at, hence one partition), opened once per
 * transaction with its indexes: heap and index inserts as COPY does, no
 * executor start-up per record. No privilege check applies to that path, so
 * application roles need, and have, no write privilege on the log; the few
 * SPI queries (partition creation, last seal) run as the log's owner with
 * SECURITY_RESTRICTED_OPERATION.
 *
 * C-style glue: except _csv_line, nothing here owns a C++ object while
 * PostgreSQL is called, so PostgreSQL is called directly (a longjmp skips no
 * destructor). The C++ calls are core::audit::hash_fields (noexcept),
 * context::current(), claims::format_uuid and encoding::hex_encode (their
 * strings live in blocks that end before the next PostgreSQL call), whose
 * exceptions the boundary handles.
 */
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "core/audit.hpp"
#include "core/claims.hpp"
#include "core/encoding.hpp"
#include "pg/as_owner.hpp"
#include "pg/audit_guc.hpp"
#include "pg/boundary.hpp"
#include "pg/compat.hpp"
#include "pg/context.hpp"

extern "C" {
#include "postgres.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/toast_compression.h"
#include "access/toast_internals.h"
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
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
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

constexpr int k_ncols = 22;     // columns written per record
constexpr int k_nhashed = 21;   // all but `hash`
constexpr const char* k_redacted = "[redacted]";
// Advisory lock field4 for the seal lock (distinct from the 1 and 2 used by
// the SQL advisory lock functions, so no user lock can collide with it).
constexpr uint16 k_lock_field4 = 0x7467;
// A statement's open record is written once its memory reaches this size
// (memory per backend stays bounded; a jsonb value is limited to 256 MB).
constexpr Size k_max_pack_bytes = 8 * 1024 * 1024;
// Records up to this size are held back to carry their chain's seal.
constexpr Size k_hold_back_max = 8192;

const Oid k_types[k_ncols] = {INT8OID,  TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, TEXTOID,  TEXTOID,
                              INT8OID,  TEXTOID,        TEXTOID,        TEXTOID, TEXTOID,  TEXTOID,
                              TEXTOID,  TEXTOID,        TEXTOID,        INT4OID, JSONBOID, JSONBOID,
                              BYTEAOID, INT8OID,        BYTEAOID,       BYTEAOID};

enum Col {
	c_id, c_xact_at, c_statement_at, c_xid, c_org, c_kind, c_seq, c_action, c_table_name, c_actor,
	c_impersonator, c_tenant_role, c_db_role, c_session_role, c_application_name, c_row_count, c_rows,
	c_detail, c_prev_hash, c_seal_seq, c_seal_prev, c_hash
};

bool col_byval(int i)
{
	return k_types[i] == INT8OID || k_types[i] == TIMESTAMPTZOID || k_types[i] == INT4OID;
}

// ---------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------

// The bytes hashed for one column, palloc'd or pointing into the value:
// integers and times as decimal text, text and bytea as they are, `detail`
// as jsonb text, and `rows` as its jsonb binary form (the value as stored;
// its text form would cost more than writing the record).
void field_bytes(int col, Datum v, const char** data, std::size_t* len)
{
	switch (k_types[col]) {
	case INT4OID: {
		char* buf = static_cast<char*>(palloc(16));
		snprintf(buf, 16, "%d", DatumGetInt32(v));
		*data = buf;
		*len = strlen(buf);
		return;
	}
	case INT8OID:
	case TIMESTAMPTZOID: {
		char* buf = static_cast<char*>(palloc(32));
		snprintf(buf, 32, INT64_FORMAT, DatumGetInt64(v));
		*data = buf;
		*len = strlen(buf);
		return;
	}
	case JSONBOID:
		if (col != c_rows) {
			Jsonb* jb = DatumGetJsonbP(v);
			char* s = JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
			*data = s;
			*len = strlen(s);
			return;
		}
		[[fallthrough]];
	default: {  // text, bytea, rows
		struct varlena* p = pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(v)));
		*data = VARDATA_ANY(p);
		*len = VARSIZE_ANY_EXHDR(p);
		return;
	}
	}
}

// SHA-256 over the hashed columns, as a bytea.
bytea* hash_record(const Datum* values, const bool* nulls)
{
	audit::FieldView f[k_nhashed];
	for (int i = 0; i < k_nhashed; ++i) {
		if (nulls[i]) {
			f[i].kind = audit::FieldView::k_null;
			continue;
		}
		f[i].kind = audit::FieldView::k_bytes;
		field_bytes(i, values[i], &f[i].data, &f[i].len);
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

struct Pack;  // a statement's open record (see "Statement records")

// Each open record (Pack) has a memory context of its own, freed when the
// record is written or dropped. One of them is kept between statements with
// its first 4 MB block (spare_cxt): a fresh block per statement costs more
// in page faults than the rest of the record's work. The others are
// ordinary contexts under TopTransactionContext.
MemoryContext spare_cxt = nullptr;   // not in use: no open record has it
MemoryContext keeper_cxt = nullptr;  // the kept context, in use or not
constexpr Size k_keeper_block = 4 * 1024 * 1024;
// Open records together may use this much memory; past it the largest one
// that can be written is written early.
constexpr Size k_open_budget = 32 * 1024 * 1024;
// Row trigger calls in progress (a to_jsonb cast of a user type can run SQL
// that writes audited rows): nothing they may still use is freed meanwhile.
int adding_depth = 0;

struct XactState {
	Pack* packs = nullptr;  // newest first, each in its own context
	Pack* last_pack = nullptr;
	Size open_mem = 0;      // memory of the open records
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

void forget_packs();

void reset_xact_state()
{
	forget_packs();
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

void packs_at_subxact_end(bool abort, SubTransactionId sub, SubTransactionId parent);
void flush_all_packs();
bool have_packs();

void subxact_callback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void*)
{
	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	packs_at_subxact_end(event == SUBXACT_EVENT_ABORT_SUB, mySubid, parentSubid);
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
    "tenant_role", "db_role", "session_role", "application_name", "row_count", "rows", "detail", "prev_hash",
    "seal_seq", "seal_prev", "hash"};

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
	int32 row_count = 0;
	Jsonb* rows = nullptr;   // kind 'rows': the row changes
	Jsonb* detail = nullptr;
	TimestampTz statement_at = 0;  // 0: the current statement's start
	// actor fields, nullptr when absent
	const char* actor = nullptr;
	const char* impersonator = nullptr;
	const char* tenant_role = nullptr;
	const char* db_role = nullptr;
	const char* session_role = nullptr;
	const char* application_name = nullptr;
};

// The PostgreSQL roles of the caller (before switching to the log owner).
void set_db_roles(Record& r)
{
	r.db_role = GetUserNameFromId(GetUserId(), false);
	r.session_role = GetUserNameFromId(GetSessionUserId(), false);
}

// The actor fields of a record from the current context and session,
// palloc'd in the current memory context.
void set_actor(Record& r)
{
	const tg::claims::Context& ctx = tg::context::current();
	r.actor = ctx.user_id ? pstrdup(ctx.user_id->c_str()) : nullptr;
	r.impersonator = ctx.impersonator ? pstrdup(ctx.impersonator->c_str()) : nullptr;
	r.tenant_role = ctx.role ? pstrdup(ctx.role->c_str()) : nullptr;
	set_db_roles(r);
	const char* app = GetConfigOption("application_name", true, false);
	r.application_name = app && *app ? pstrdup(app) : nullptr;
	r.statement_at = GetCurrentStatementStartTimestamp();
}

// The column values of a record (hash left unset).
// `seq` and `prev` are the chain position and previous hash.
void fill_values(const Record& r, int64 id, int64 seq, bytea* prev, Datum* v, bool* n)
{
	v[c_id] = Int64GetDatum(id);
	n[c_id] = false;
	v[c_xact_at] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	n[c_xact_at] = false;
	v[c_statement_at] = TimestampTzGetDatum(r.statement_at ? r.statement_at : GetCurrentStatementStartTimestamp());
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
	v[c_application_name] = text_or_null(r.application_name, &n[c_application_name]);
	v[c_row_count] = Int32GetDatum(r.row_count);
	n[c_row_count] = false;
	v[c_rows] = JsonbPGetDatum(r.rows);
	n[c_rows] = r.rows == nullptr;
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
	// A large `rows` value is compressed here, before the tuple is formed,
	// so it is not copied uncompressed into the tuple first (the toaster
	// then only moves it out of line).
	const int ra = xs.colmap[c_rows] - 1;
	if (!tn[ra] && VARSIZE_ANY(DatumGetPointer(tv[ra])) > TOAST_TUPLE_THRESHOLD &&
	    !VARATT_IS_EXTENDED(DatumGetPointer(tv[ra]))) {
		char m = TupleDescAttr(RelationGetDescr(xs.part), ra)->attcompression;
		if (!CompressionMethodIsValid(m))
			m = static_cast<char>(default_toast_compression);
		Datum c = toast_compress_datum(tv[ra], m);
		if (DatumGetPointer(c) != nullptr)
			tv[ra] = c;
	}
	HeapTuple tup = heap_form_tuple(RelationGetDescr(xs.part), tv, tn);
	ExecStoreHeapTuple(tup, xs.slot, true);
	table_tuple_insert(xs.part, xs.slot, GetCurrentCommandId(true), 0, nullptr);
	(void) tenant_guard::pg::compat::insert_index_tuples(xs.rri, xs.slot, xs.estate);
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
		pv[i] = n[i] ? (Datum) 0 : datumCopy(v[i], col_byval(i), col_byval(i) ? 8 : -1);
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
			if (i != c_hash && !l->pending_n[i] && !col_byval(i))
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
	// The actor fields were set by the caller (set_actor), from the context
	// of the caller, before anything switched user.

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
	if (r.rows != nullptr && VARSIZE(r.rows) > k_hold_back_max) {
		// A large record is written now rather than copied to be held
		// back; COMMIT then writes a small seal row for its chain.
		bytea* h = hash_record(v, n);
		v[c_hash] = PointerGetDatum(h);
		n[c_hash] = false;
		insert_values(v, n);
		memcpy(l->last, VARDATA(h), 32);
	} else {
		hold_back(l, v, n);
	}
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

// One head per database that writes audit records (about 4.7 kB each).
// DROP DATABASE leaves its slot behind; reclaim_dropped_heads() frees it
// when a database needs one and none is free.
constexpr int k_max_heads = 128;
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

// Frees the head slots of databases that no longer exist. The catalog is
// read without the lock held; a slot is freed only if it still names the
// dropped database.
void reclaim_dropped_heads()
{
	Oid dbs[k_max_heads];
	int n = 0;
	LWLockAcquire(shared->lock, LW_SHARED);
	bool full = true;
	for (int i = 0; i < k_max_heads; ++i) {
		const Oid db = shared->heads[i].db;
		if (!OidIsValid(db) || db == MyDatabaseId)
			full = false;
		else
			dbs[n++] = db;
	}
	LWLockRelease(shared->lock);
	if (!full)
		return;
	int ngone = 0;
	for (int j = 0; j < n; ++j)
		if (!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dbs[j])))
			dbs[ngone++] = dbs[j];
	if (ngone == 0)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < k_max_heads; ++i)
		for (int j = 0; j < ngone; ++j)
			if (shared->heads[i].db == dbs[j])
				memset(&shared->heads[i], 0, sizeof(Head));
	LWLockRelease(shared->lock);
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
	{  // the std::string is gone before PostgreSQL is called
		const std::string s = tg::encoding::hex_encode(l->last, sizeof l->last);
		snprintf(hex, sizeof hex, "%s", s.c_str());
	}
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
	const char* app = GetConfigOption("application_name", true, false);
	proto.application_name = app && *app ? app : nullptr;
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
		if (!loaded) {
			reclaim_dropped_heads();
			read_last_seal(&tseq, thash);
		}
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
			                errdetail("At most %d databases of one server can use it at once.", k_max_heads)));
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
		for (int i = 0; i <= xs.ngroups; ++i)
			if (i == xs.ngroups ? have_packs()
			                    : xs.groups[i].nlevels > 0 && xs.groups[i].levels[xs.groups[i].nlevels - 1].count > 0)
				ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				                errmsg("cannot PREPARE a transaction that wrote tenant_guard audit records"),
				                errdetail("Audit records are sealed at COMMIT; two-phase commit is not supported.")));
		break;
	case XACT_EVENT_PRE_COMMIT:
		if (have_packs()) {
			// Open records of statements no statement trigger closed.
			PushActiveSnapshot(GetTransactionSnapshot());
			flush_all_packs();
			PopActiveSnapshot();
		}
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

// How one column of an audited table becomes a jsonb value: the same values
// as to_jsonb() of the row (docs/audit.md; sql/audit_types.sql compares
// them type by type), converted directly for the common built-in types and
// through to_jsonb() of the single value for all others.
enum ColKind : unsigned char {
	k_skip,      // dropped or excluded
	k_masked,    // redacted: "[redacted]"
	k_bool,
	k_int,       // int2, int4, int8: a JSON number
	k_numeric,   // a JSON number; NaN and infinities as strings
	k_text,      // text, varchar, bpchar: a JSON string of the value
	k_datetime,  // date, timestamp, timestamptz: ISO 8601 strings
	k_jsonb,     // embedded as is
	k_output,    // other built-in scalars: a JSON string of the output function
	k_generic,   // anything else: to_jsonb() of the value
};

struct ColPlan {
	ColKind kind;
	Oid base;        // base type (domains looked through)
	FmgrInfo fn;     // output function (k_output) or to_jsonb (k_generic)
};

struct RelInfo {
	Oid relid;  // hash key
	bool valid;
	uint64 gen;               // changes whenever the entry is rebuilt
	Oid root;                 // the audited (root) table
	char* table_name;         // the audited (root) table, quoted
	AttrNumber tenant_attnum; // 0: not protected
	Oid tenant_out;           // output function of the tenant column
	int natts;
	bool* excluded;           // by attnum - 1
	ColPlan* cols;            // by attnum - 1
	int npk;
	AttrNumber* pk;
};

HTAB* rel_cache = nullptr;
uint64 rel_gen = 0;

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

SPIPlanPtr audited_plan = nullptr;

// Is the table registered by tenant_guard.enable_audit()? (Inside SPI.)
bool is_audited(Oid relid)
{
	if (audited_plan == nullptr) {
		Oid t[1] = {OIDOID};
		audited_plan = prepare("SELECT 1 FROM tenant_guard.audited_tables WHERE tbl = $1", 1, t);
	}
	Datum v[1] = {ObjectIdGetDatum(relid)};
	if (SPI_execute_plan(audited_plan, v, nullptr, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read tenant_guard.audited_tables");
	return SPI_processed == 1;
}

// The audit triggers write records, as the log's owner, only for tables that
// enable_audit() set up: attached by hand to any other table (a temporary
// one included), they would let its owner write records into any tenant's
// trail or the platform chain.
void refuse_unaudited(Relation rel, bool temporary)
{
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
	                errmsg("table %s is not audited by tenant_guard", RelationGetRelationName(rel)),
	                temporary ? errdetail("Temporary tables cannot be audited.")
	                          : errdetail("tenant_guard's audit triggers write records only for tables that "
	                                      "tenant_guard.enable_audit() set up."),
	                errhint("Use tenant_guard.enable_audit() to audit a table.")));
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

// The topmost partitioned table above a partition (the table itself otherwise).
Oid partition_root(Relation rel)
{
	if (rel->rd_rel->relispartition) {
		List* anc = get_partition_ancestors(RelationGetRelid(rel));
		if (anc != NIL)
			return llast_oid(anc);
	}
	return RelationGetRelid(rel);
}

// The plan of one column (in CacheMemoryContext).
void plan_column(ColPlan* c, Form_pg_attribute a)
{
	c->base = getBaseType(a->atttypid);
	switch (c->base) {
	case BOOLOID:
		c->kind = k_bool;
		return;
	case INT2OID:
	case INT4OID:
	case INT8OID:
		c->kind = k_int;
		return;
	case NUMERICOID:
		c->kind = k_numeric;
		return;
	case TEXTOID:
	case VARCHAROID:
	case BPCHAROID:
		c->kind = k_text;
		return;
	case DATEOID:
	case TIMESTAMPOID:
	case TIMESTAMPTZOID:
		c->kind = k_datetime;
		return;
	case JSONBOID:
		c->kind = k_jsonb;
		return;
	default:
		break;
	}
	// Built-in scalars that to_jsonb() writes as their text output (not
	// arrays, composites, json, floats, or types that may have a cast to json).
	if (c->base < FirstNormalObjectId && c->base != JSONOID && c->base != FLOAT4OID && c->base != FLOAT8OID &&
	    !OidIsValid(get_element_type(c->base)) && !type_is_rowtype(c->base)) {
		Oid out;
		bool varlena;
		getTypeOutputInfo(c->base, &out, &varlena);
		fmgr_info_cxt(out, &c->fn, CacheMemoryContext);
		c->kind = k_output;
		return;
	}
	fmgr_info_cxt(F_TO_JSONB, &c->fn, CacheMemoryContext);
	c->fn.fn_expr = reinterpret_cast<Node*>(makeFuncExpr(
	    F_TO_JSONB, JSONBOID, list_make1(makeNullConst(a->atttypid, a->atttypmod, a->attcollation)), InvalidOid,
	    InvalidOid, COERCE_EXPLICIT_CALL));
	c->kind = k_generic;
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
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		refuse_unaudited(rel, true);
	bool found;
	RelInfo* e = static_cast<RelInfo*>(hash_search(rel_cache, &relid, HASH_ENTER, &found));
	if (found && e->valid)
		return e;
	// Open records copy the column names and table name they use; a stale
	// entry's memory goes unless a row trigger call in progress (outside
	// this one, through SQL it ran) may still be reading it.
	if (found && adding_depth == 0) {
		if (e->table_name) pfree(e->table_name);
		if (e->excluded) pfree(e->excluded);
		if (e->cols) pfree(e->cols);
		if (e->pk) pfree(e->pk);
	}
	e->valid = false;
	e->table_name = nullptr;
	e->excluded = nullptr;
	e->cols = nullptr;
	e->pk = nullptr;

	TupleDesc desc = RelationGetDescr(rel);
	MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);
	const Oid root = partition_root(rel);
	e->root = root;
	e->table_name = pstrdup(quote_qualified_identifier(get_namespace_name(get_rel_namespace(root)),
	                                                   get_rel_name(root)));
	e->natts = desc->natts;
	e->excluded = static_cast<bool*>(palloc0(sizeof(bool) * (desc->natts + 1)));
	bool* redacted = static_cast<bool*>(palloc0(sizeof(bool) * (desc->natts + 1)));
	for (int i = 0; trig != nullptr && i < trig->tgnargs; ++i) {
		const char* arg = trig->tgargs[i];
		if (strlen(arg) < 3 || arg[1] != ':' || (arg[0] != 'x' && arg[0] != 'r'))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			                errmsg("invalid tenant_guard audit trigger argument \"%s\"", arg),
			                errhint("Use tenant_guard.enable_audit() to set up auditing.")));
		AttrNumber att = get_attnum(relid, arg + 2);
		if (att <= 0)
			continue;  // a column dropped since: nothing to hide
		if (arg[0] == 'x')
			e->excluded[att - 1] = true;
		else
			redacted[att - 1] = true;
	}
	e->cols = static_cast<ColPlan*>(palloc0(sizeof(ColPlan) * (desc->natts + 1)));
	for (int i = 0; i < desc->natts; ++i) {
		Form_pg_attribute a = TupleDescAttr(desc, i);
		if (a->attisdropped || e->excluded[i])
			e->cols[i].kind = k_skip;
		else if (redacted[i])
			e->cols[i].kind = k_masked;
		else
			plan_column(&e->cols[i], a);
	}
	pfree(redacted);
	Bitmapset* pk = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);
	e->npk = bms_num_members(pk);
	e->pk = static_cast<AttrNumber*>(palloc(sizeof(AttrNumber) * (e->npk + 1)));
	int k = 0, m = -1;
	while ((m = bms_next_member(pk, m)) >= 0)
		e->pk[k++] = static_cast<AttrNumber>(m + FirstLowInvalidHeapAttributeNumber);
	MemoryContextSwitchTo(old);

	// The tenant column, from the registry: the partition's own row, else the
	// root's. search_path pinned: an operator of the caller's own schema must
	// not decide which column a record takes its tenant from.
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	const int guc_level = tg::pg::pin_search_path();
	const bool audited = is_audited(relid) || (root != relid && is_audited(root));
	e->tenant_attnum = tenant_column_of(relid, desc);
	if (e->tenant_attnum == 0 && root != relid)
		e->tenant_attnum = tenant_column_of(root, desc);
	AtEOXact_GUC(true, guc_level);
	SPI_finish();
	if (!audited)
		refuse_unaudited(rel, false);
	// A registry row alone does not make a table protected: a record takes
	// its tenant from the row only where row-level security (forced, so the
	// owner too) let only that tenant write it; elsewhere from the context.
	if (!rel->rd_rel->relrowsecurity || !rel->rd_rel->relforcerowsecurity)
		e->tenant_attnum = 0;
	e->tenant_out = InvalidOid;
	if (e->tenant_attnum > 0) {
		bool varlena;
		getTypeOutputInfo(TupleDescAttr(desc, e->tenant_attnum - 1)->atttypid, &e->tenant_out, &varlena);
	}
	e->gen = ++rel_gen;
	e->valid = true;
	return e;
}

// ---------------------------------------------------------------------------
// Statement records. The row trigger does not write a record per row: it
// adds the row change to the open record of its (table, action, tenant,
// subtransaction, statement, actor), and the statement trigger writes the
// open records of its table when the statement's row events are done. One
// audited statement thus costs one log row per tenant, however many rows it
// changes (a record is also written once it holds
// tenant_guard.audit_rows_per_record rows or uses k_max_pack_bytes of
// memory, and the largest open record once all of them use k_open_budget).
// Anything still open at COMMIT (rows of a partition audited on its own,
// changed through its parent) is written then. A rolled-back subtransaction
// drops its open records with its rows. A record being added to is busy:
// SQL run meanwhile (a user type's cast to json) may add to it but never
// writes or frees it.
// ---------------------------------------------------------------------------

struct Pack {
	Pack* next;
	Oid root;
	const char* action;   // static string
	char* org;            // nullptr: no tenant
	SubTransactionId subid;
	TimestampTz stmt;     // start of the statement that opened it
	Oid user;             // current_user then
	Oid session_user;     // session_user then
	MemoryContext cxt;    // the Pack itself and everything below
	Size base_mem;        // memory of cxt when opened
	Size mem;             // memory of cxt after the last row (counted in xs.open_mem)
	int busy;             // row trigger calls adding to it right now
	JsonbParseState* st;  // the open array of row changes
	int32 nrows;
	Record proto;         // actor fields, table, statement time
	// Column names of the last relation seen, copied here (jsonb keys point at them)
	Oid names_rel;
	uint64 names_gen;
	char** names;
	int* namelens;
};

void free_pack_memory(MemoryContext cxt)
{
	if (cxt == keeper_cxt) {
		MemoryContextReset(cxt);  // keeps its first block for the next statement
		spare_cxt = cxt;
	} else {
		MemoryContextDelete(cxt);
	}
}

void drop_pack(Pack* p)
{
	for (Pack** pp = &xs.packs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (xs.last_pack == p)
		xs.last_pack = nullptr;
	xs.open_mem -= p->mem;
	free_pack_memory(p->cxt);  // p with it
}

// At the end of the transaction: the open records' memory. The contexts
// under TopTransactionContext go with it anyway.
void forget_packs()
{
	if (keeper_cxt != nullptr && spare_cxt != keeper_cxt) {
		MemoryContextReset(keeper_cxt);
		spare_cxt = keeper_cxt;
	}
	adding_depth = 0;
}

bool same_str(const char* a, const char* b)
{
	return (a == nullptr && b == nullptr) || (a && b && strcmp(a, b) == 0);
}

bool same_str(const char* a, const std::optional<std::string>& b)
{
	return b ? a != nullptr && *b == a : a == nullptr;
}

// The open record for a row change: same table, action, tenant and
// subtransaction, and the same statement and actor (a record has one set
// of actor fields; a context changed between or within statements starts a
// new record).
Pack* find_pack(Oid root, const char* action, const char* org)
{
	const SubTransactionId sub = GetCurrentSubTransactionId();
	const TimestampTz stmt = GetCurrentStatementStartTimestamp();
	const Oid user = GetUserId();
	const Oid session_user = GetSessionUserId();
	const char* app = application_name && *application_name ? application_name : nullptr;
	const tg::claims::Context& ctx = tg::context::current();
	auto match = [&](Pack* p) {
		return p->root == root && p->subid == sub && p->stmt == stmt && p->user == user &&
		       p->session_user == session_user && strcmp(p->action, action) == 0 && same_str(p->org, org) &&
		       same_str(p->proto.actor, ctx.user_id) && same_str(p->proto.impersonator, ctx.impersonator) &&
		       same_str(p->proto.tenant_role, ctx.role) && same_str(p->proto.application_name, app);
	};
	if (xs.last_pack && match(xs.last_pack))
		return xs.last_pack;
	for (Pack* p = xs.packs; p; p = p->next)
		if (match(p))
			return xs.last_pack = p;
	register_callbacks();
	MemoryContext cxt;
	if (keeper_cxt == nullptr) {
		keeper_cxt = AllocSetContextCreate(TopMemoryContext, "tenant_guard audit record", k_keeper_block,
		                                   k_keeper_block, k_max_pack_bytes);
		spare_cxt = keeper_cxt;
	}
	if (spare_cxt != nullptr) {
		cxt = spare_cxt;
		spare_cxt = nullptr;
	} else {
		cxt = AllocSetContextCreate(TopTransactionContext, "tenant_guard audit record", ALLOCSET_DEFAULT_SIZES);
	}
	Pack* p = static_cast<Pack*>(MemoryContextAllocZero(cxt, sizeof(Pack)));
	p->cxt = cxt;
	MemoryContext old = MemoryContextSwitchTo(p->cxt);
	p->root = root;
	p->action = action;
	p->org = org ? pstrdup(org) : nullptr;
	p->subid = sub;
	p->stmt = stmt;
	p->user = user;
	p->session_user = session_user;
	p->proto.kind = "rows";
	p->proto.action = action;
	p->proto.org = p->org;
	set_actor(p->proto);
	pushJsonbValue(&p->st, WJB_BEGIN_ARRAY, nullptr);
	MemoryContextSwitchTo(old);
	p->base_mem = MemoryContextMemAllocated(cxt, false);
	p->next = xs.packs;
	xs.packs = p;
	return xs.last_pack = p;
}

void jstring(JsonbValue* v, const char* s, int len)
{
	v->type = jbvString;
	v->val.string.val = const_cast<char*>(s);
	v->val.string.len = len;
}

// The jsonb value of one column of a row (memory in the pack's context).
void column_value(const ColPlan* c, Datum d, bool isnull, JsonbValue* v)
{
	if (c->kind == k_masked) {
		jstring(v, k_redacted, static_cast<int>(strlen(k_redacted)));
		return;
	}
	if (isnull) {
		v->type = jbvNull;
		return;
	}
	switch (c->kind) {
	case k_bool:
		v->type = jbvBool;
		v->val.boolean = DatumGetBool(d);
		return;
	case k_int: {
		const int64 i = c->base == INT2OID ? DatumGetInt16(d) : c->base == INT4OID ? DatumGetInt32(d) : DatumGetInt64(d);
		v->type = jbvNumeric;
		v->val.numeric = int64_to_numeric(i);
		return;
	}
	case k_numeric: {
		Numeric num = reinterpret_cast<Numeric>(PG_DETOAST_DATUM_COPY(d));
		if (numeric_is_nan(num) || numeric_is_inf(num)) {
			char* s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(num)));
			jstring(v, s, static_cast<int>(strlen(s)));
			return;
		}
		v->type = jbvNumeric;
		v->val.numeric = num;
		return;
	}
	case k_text: {
		text* t = reinterpret_cast<text*>(PG_DETOAST_DATUM_COPY(d));
		jstring(v, VARDATA(t), static_cast<int>(VARSIZE(t) - VARHDRSZ));
		return;
	}
	case k_datetime: {
		char* s = JsonEncodeDateTime(nullptr, d, c->base, nullptr);
		jstring(v, s, static_cast<int>(strlen(s)));
		return;
	}
	case k_jsonb: {
		Jsonb* jb = reinterpret_cast<Jsonb*>(PG_DETOAST_DATUM_COPY(d));
		v->type = jbvBinary;
		v->val.binary.data = &jb->root;
		v->val.binary.len = static_cast<int>(VARSIZE(jb) - VARHDRSZ);
		return;
	}
	case k_output: {
		char* s = OutputFunctionCall(const_cast<FmgrInfo*>(&c->fn), d);
		const int len = static_cast<int>(strlen(s));
		jstring(v, s, len);
		return;
	}
	default: {  // k_generic
		Jsonb* jb = DatumGetJsonbP(FunctionCall1(const_cast<FmgrInfo*>(&c->fn), d));
		v->type = jbvBinary;
		v->val.binary.data = &jb->root;
		v->val.binary.len = static_cast<int>(VARSIZE(jb) - VARHDRSZ);
		return;
	}
	}
}

// The column values of a tuple (nullptr entries for skipped columns).
JsonbValue* row_values(RelInfo* info, HeapTuple tuple, TupleDesc desc)
{
	JsonbValue* vals = static_cast<JsonbValue*>(palloc0(sizeof(JsonbValue) * (info->natts + 1)));
	Datum* d = static_cast<Datum*>(palloc(sizeof(Datum) * (desc->natts + 1)));
	bool* n = static_cast<bool*>(palloc(sizeof(bool) * (desc->natts + 1)));
	heap_deform_tuple(tuple, desc, d, n);
	for (int i = 0; i < info->natts; ++i)
		if (info->cols[i].kind != k_skip)
			column_value(&info->cols[i], d[i], n[i], &vals[i]);
	pfree(d);
	pfree(n);
	return vals;
}

void push_key(JsonbParseState** st, const char* name, int len)
{
	JsonbValue k;
	jstring(&k, name, len);
	pushJsonbValue(st, WJB_KEY, &k);
}

void push_row(Pack* p, RelInfo* info, const JsonbValue* vals)
{
	pushJsonbValue(&p->st, WJB_BEGIN_OBJECT, nullptr);
	for (int i = 0; i < info->natts; ++i) {
		if (info->cols[i].kind == k_skip)
			continue;
		push_key(&p->st, p->names[i], p->namelens[i]);
		pushJsonbValue(&p->st, WJB_VALUE, const_cast<JsonbValue*>(&vals[i]));
	}
	pushJsonbValue(&p->st, WJB_END_OBJECT, nullptr);
}

// Adds one row change to its open record: {"pk": ..., "old": ..., "new":
// ..., "changed": [...]} (keys as they apply). The pack is busy meanwhile:
// building the column values can run SQL (a user type's cast to json) that
// writes audited rows, and their statement must not write or free this
// record half-built; nested changes of the same record just join it.
void add_row_inner(Pack* p, RelInfo* info, TupleDesc desc, HeapTuple oldt, HeapTuple newt, const int* changed,
                   int nchanged)
{
	MemoryContext old = MemoryContextSwitchTo(p->cxt);
	// The column values first (may run SQL), then the pushes (run none).
	JsonbValue* ov = oldt ? row_values(info, oldt, desc) : nullptr;
	JsonbValue* nv = newt ? row_values(info, newt, desc) : nullptr;
	if (p->names_rel != info->relid || p->names_gen != info->gen) {
		p->names = static_cast<char**>(palloc(sizeof(char*) * (desc->natts + 1)));
		p->namelens = static_cast<int*>(palloc(sizeof(int) * (desc->natts + 1)));
		for (int i = 0; i < desc->natts; ++i) {
			p->names[i] = pstrdup(NameStr(TupleDescAttr(desc, i)->attname));
			p->namelens[i] = static_cast<int>(strlen(p->names[i]));
		}
		p->names_rel = info->relid;
		p->names_gen = info->gen;
		if (p->proto.table_name == nullptr)
			p->proto.table_name = pstrdup(info->table_name);
	}
	pushJsonbValue(&p->st, WJB_BEGIN_OBJECT, nullptr);
	if (info->npk > 0) {
		const JsonbValue* kv = nv ? nv : ov;
		push_key(&p->st, "pk", 2);
		pushJsonbValue(&p->st, WJB_BEGIN_OBJECT, nullptr);
		for (int i = 0; i < info->npk; ++i) {
			const int a = info->pk[i] - 1;
			// A key column excluded since enable_audit() (by a later ADD
			// PRIMARY KEY) stays out, as everywhere else.
			if (info->cols[a].kind == k_skip)
				continue;
			push_key(&p->st, p->names[a], p->namelens[a]);
			pushJsonbValue(&p->st, WJB_VALUE, const_cast<JsonbValue*>(&kv[a]));
		}
		pushJsonbValue(&p->st, WJB_END_OBJECT, nullptr);
	}
	if (ov) {
		push_key(&p->st, "old", 3);
		push_row(p, info, ov);
	}
	if (nv) {
		push_key(&p->st, "new", 3);
		push_row(p, info, nv);
	}
	if (changed) {
		push_key(&p->st, "changed", 7);
		pushJsonbValue(&p->st, WJB_BEGIN_ARRAY, nullptr);
		for (int i = 0; i < nchanged; ++i) {
			JsonbValue c;
			jstring(&c, p->names[changed[i]], p->namelens[changed[i]]);
			pushJsonbValue(&p->st, WJB_ELEM, &c);
		}
		pushJsonbValue(&p->st, WJB_END_ARRAY, nullptr);
	}
	pushJsonbValue(&p->st, WJB_END_OBJECT, nullptr);
	++p->nrows;
	// The pushes copied the values (not what they point to): the arrays can
	// go, and the next row reuses their memory.
	if (ov)
		pfree(ov);
	if (nv)
		pfree(nv);
	MemoryContextSwitchTo(old);
}

void add_row(Pack* p, RelInfo* info, TupleDesc desc, HeapTuple oldt, HeapTuple newt, const int* changed,
             int nchanged)
{
	++p->busy;
	++adding_depth;
	PG_TRY();
	{
		add_row_inner(p, info, desc, oldt, newt, changed, nchanged);
	}
	PG_FINALLY();
	{
		// (runs before any subtransaction abort could drop p)
		--p->busy;
		--adding_depth;
	}
	PG_END_TRY();
	const Size mem = MemoryContextMemAllocated(p->cxt, false) - p->base_mem;
	xs.open_mem += mem - p->mem;
	p->mem = mem;
}

// Writes an open record into the log and forgets it.
void flush_pack(Pack* p)
{
	MemoryContext old = MemoryContextSwitchTo(p->cxt);
	Record r = p->proto;
	r.rows = JsonbValueToJsonb(pushJsonbValue(&p->st, WJB_END_ARRAY, nullptr));
	r.row_count = p->nrows;
	MemoryContextSwitchTo(old);
	(void) write_record(r);
	drop_pack(p);
}

// Writes the open records of the current subtransaction (of one audited
// table, or all with InvalidOid), oldest first, so the records of a tenant
// follow the order of the statements.
void flush_packs(Oid root)
{
	const SubTransactionId sub = GetCurrentSubTransactionId();
	for (;;) {
		Pack* oldest = nullptr;
		for (Pack* p = xs.packs; p; p = p->next)
			if (p->subid == sub && p->busy == 0 && (root == InvalidOid || p->root == root))
				oldest = p;
		if (oldest == nullptr)
			return;
		flush_pack(oldest);
	}
}

// Past the memory budget of the open records: writes the largest one that
// can be written now (of the current subtransaction, not being added to).
void enforce_budget()
{
	const SubTransactionId sub = GetCurrentSubTransactionId();
	while (xs.open_mem > k_open_budget) {
		Pack* largest = nullptr;
		for (Pack* p = xs.packs; p; p = p->next)
			if (p->subid == sub && p->busy == 0 && (largest == nullptr || p->mem > largest->mem))
				largest = p;
		if (largest == nullptr)
			return;
		flush_pack(largest);
	}
}

// Every open record, oldest first (at COMMIT).
void flush_all_packs()
{
	while (xs.packs != nullptr) {
		Pack* oldest = xs.packs;
		while (oldest->next != nullptr)
			oldest = oldest->next;
		flush_pack(oldest);
	}
}

bool have_packs()
{
	return xs.packs != nullptr;
}

// At the end of a subtransaction: its open records are dropped with its
// rows (abort) or become its parent's (commit).
void packs_at_subxact_end(bool abort, SubTransactionId sub, SubTransactionId parent)
{
	Pack* p = xs.packs;
	while (p != nullptr) {
		Pack* next = p->next;
		if (p->subid == sub) {
			if (abort)
				drop_pack(p);
			else
				p->subid = parent;
		}
		p = next;
	}
}

// The org of the current context as text (canonical uuid when it is one).
char* context_org()
{
	const tg::claims::Context& c = tg::context::current();
	if (c.org) {
		char buf[40];
		{  // the std::string is gone before PostgreSQL is called
			const std::string s = tg::claims::format_uuid(*c.org);
			snprintf(buf, sizeof buf, "%s", s.c_str());
		}
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
	set_actor(r);
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
	if (info->natts != desc->natts)
		elog(ERROR, "tenant_guard audit: stale column information for %s", RelationGetRelationName(rel));

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

	int* changed = nullptr;
	int nchanged = 0;
	if (oldt && newt) {
		changed = static_cast<int*>(palloc(sizeof(int) * (desc->natts + 1)));
		for (int i = 0; i < desc->natts; ++i) {
			Form_pg_attribute a = TupleDescAttr(desc, i);
			if (a->attisdropped || info->excluded[i])
				continue;
			bool n1, n2;
			Datum d1 = heap_getattr(oldt, i + 1, desc, &n1);
			Datum d2 = heap_getattr(newt, i + 1, desc, &n2);
			bool same = (n1 && n2) || (!n1 && !n2 && datum_image_eq(d1, d2, a->attbyval, a->attlen));
			if (!same)
				changed[nchanged++] = i;
		}
		if (nchanged == 0 && tg::audit_guc::skip_noop_updates)
			return PointerGetDatum(nullptr);
	}

	const char* org;
	HeapTuple key_tuple = newt ? newt : oldt;
	if (info->tenant_attnum > 0) {
		bool isnull;
		Datum t = heap_getattr(key_tuple, info->tenant_attnum, desc, &isnull);
		org = isnull ? nullptr : OidOutputFunctionCall(info->tenant_out, t);
	} else {
		org = context_org();
	}
	Pack* p = find_pack(info->root, action, org);
	add_row(p, info, desc, oldt, newt, changed, nchanged);
	if (p->busy == 0 && (p->nrows >= tg::audit_guc::rows_per_record || p->mem >= k_max_pack_bytes))
		flush_pack(p);
	enforce_budget();
	return PointerGetDatum(nullptr);
}

// tenant_guard._audit_flush() returns trigger
//     AFTER INSERT OR UPDATE OR DELETE FOR EACH STATEMENT on an audited table
//     and each of its partitions: writes the statement's open records
TG_FUNCTION(_audit_flush)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("tenant_guard._audit_flush() must be called as a trigger")));
	TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("tenant_guard._audit_flush() must run AFTER ... FOR EACH STATEMENT"),
		                errhint("Use tenant_guard.enable_audit() to set up auditing.")));
	Relation rel = td->tg_relation;
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		refuse_unaudited(rel, true);
	if (xs.packs == nullptr)
		return PointerGetDatum(nullptr);
	Oid root = RelationGetRelid(rel);
	if (rel->rd_rel->relispartition) {
		// The row trigger of this partition cached its root; the catalog
		// scan of get_partition_ancestors() only when it did not run.
		RelInfo* e = rel_cache ? static_cast<RelInfo*>(hash_search(rel_cache, &root, HASH_FIND, nullptr)) : nullptr;
		if (e != nullptr && e->valid) {
			root = e->root;
		} else {
			root = partition_root(rel);
		}
	}
	flush_packs(root);
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
