/*
 * pg/audit_writer.cpp
 *
 * The record writer: a record's column values, its place in its tenant's
 * chain of this transaction (the newest record held back to carry the seal),
 * and the heap and index inserts into the transaction's partition, opened
 * once, as the log's owner.
 */
#include <cstring>

#include "core/claims.hpp"
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

#include "pg/audit_log.hpp"

namespace tg = tenant_guard;

namespace tenant_guard::audit_log {

namespace {

SPIPlanPtr partition_plan = nullptr;

// The partition known to exist (per backend), for the safety net.
Oid covered_log = InvalidOid;
TimestampTz covered_lo = 0;
TimestampTz covered_hi = 0;
Oid covered_part = InvalidOid;

}  // namespace

SPIPlanPtr prepare(const char* sql, int nargs, Oid* types)
{
	return tg::pg::spi_keep_plan(sql, nargs, types, "an audit query");
}

void resolve_log()
{
	if (OidIsValid(xs.log_oid))
		return;
	Oid nsp = get_namespace_oid("tenant_guard", true);
	Oid log = OidIsValid(nsp) ? get_relname_relid("audit_log", nsp) : InvalidOid;
	Oid seq = OidIsValid(nsp) ? get_relname_relid("audit_log_id_seq", nsp) : InvalidOid;
	if (!OidIsValid(log) || !OidIsValid(seq))
		ereport(ERROR,
		        (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("the tenant_guard audit log does not exist"),
		         errhint("Update the extension: ALTER EXTENSION tenant_guard UPDATE.")));
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(log));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "tenant_guard: cache lookup failed for relation %u", log);
	xs.log_owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	xs.log_oid = log;
	xs.seq_oid = seq;
}

namespace {

const char* const k_colnames[k_ncols] = {
    "id",        "xact_at",      "statement_at",     "xid",       "org",          "kind",
    "seq",       "action",       "table_name",       "actor",     "impersonator", "tenant_role",
    "db_role",   "session_role", "application_name", "row_count", "rows",         "detail",
    "prev_hash", "seal_seq",     "seal_prev",        "hash",      "images"};

// The partition holding this transaction's start time, created if missing
// (the safety net: enable_audit() and purge_audit() create them ahead).
Oid partition_for(TimestampTz at)
{
	if (covered_log == xs.log_oid && at >= covered_lo && at < covered_hi &&
	    get_rel_relkind(covered_part) == RELKIND_RELATION)
		return covered_part;
	// As the log owner, with a pinned search_path: creating a partition is
	// the owner's business.
	Oid save_user;
	int save_sec;
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(xs.log_owner, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	const int guc_level = tg::pg::pin_search_path();
	tg::pg::spi_connect();
	if (partition_plan == nullptr) {
		Oid t[1] = {TIMESTAMPTZOID};
		partition_plan =
		    prepare("SELECT lo, hi, part::pg_catalog.oid FROM tenant_guard._audit_partition_for($1)", 1, t);
	}
	Datum v[1] = {TimestampTzGetDatum(at)};
	if (SPI_execute_plan(partition_plan, v, nullptr, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "tenant_guard: could not find or create the audit log partition");
	bool n1, n2, n3;
	Datum lo = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &n1);
	Datum hi = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &n2);
	Datum part = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &n3);
	if (n1 || n2 || n3)
		elog(ERROR, "tenant_guard: could not find or create the audit log partition");
	covered_lo = DatumGetTimestampTz(lo);
	covered_hi = DatumGetTimestampTz(hi);
	covered_part = DatumGetObjectId(part);
	covered_log = xs.log_oid;
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	SetUserIdAndSecContext(save_user, save_sec);
	return covered_part;
}

// The partition's attribute number of each log column (colmap), kept for the
// partition last opened and checked by name each time it is used again.
Oid mapped_part = InvalidOid;
int mapped_natts = 0;
AttrNumber mapped[k_ncols];

bool mapping_holds(Relation rel)
{
	TupleDesc desc = RelationGetDescr(rel);
	if (RelationGetRelid(rel) != mapped_part || desc->natts != mapped_natts)
		return false;
	for (int i = 0; i < k_ncols; ++i) {
		Form_pg_attribute a = TupleDescAttr(desc, mapped[i] - 1);
		if (a->attisdropped || strcmp(NameStr(a->attname), k_colnames[i]) != 0)
			return false;
	}
	return true;
}

}  // namespace

// Opens this transaction's partition with its indexes, once. Records are
// inserted into it directly (heap and index inserts, as COPY does): no
// executor start-up, partition routing or constraint re-evaluation per
// record; the values are built here and satisfy the table's constraints.
void open_partition()
{
	if (xs.part != nullptr)
		return;
	resolve_log();
	const Oid part = partition_for(GetCurrentTransactionStartTimestamp());
	ResourceOwner save_owner = CurrentResourceOwner;
	MemoryContext save_cxt = MemoryContextSwitchTo(TopTransactionContext);
	CurrentResourceOwner = TopTransactionResourceOwner;
	LockRelationOid(xs.log_oid, RowExclusiveLock);
	Relation rel = table_open(part, RowExclusiveLock);
	TupleDesc desc = RelationGetDescr(rel);
	if (!mapping_holds(rel)) {
		mapped_part = InvalidOid;
		for (int i = 0; i < k_ncols; ++i) {
			mapped[i] = InvalidAttrNumber;
			for (int a = 0; a < desc->natts; ++a)
				if (!TupleDescAttr(desc, a)->attisdropped &&
				    strcmp(NameStr(TupleDescAttr(desc, a)->attname), k_colnames[i]) == 0)
					mapped[i] = static_cast<AttrNumber>(a + 1);
			if (mapped[i] == InvalidAttrNumber)
				elog(ERROR, "tenant_guard: audit log partition %s has no column %s", RelationGetRelationName(rel),
				     k_colnames[i]);
		}
		mapped_part = RelationGetRelid(rel);
		mapped_natts = desc->natts;
	}
	memcpy(xs.colmap, mapped, sizeof mapped);
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

namespace {

Datum text_or_null(const char* s, bool* isnull)
{
	*isnull = s == nullptr;
	return s ? PointerGetDatum(cstring_to_text(s)) : (Datum) 0;
}

}  // namespace

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
	v[c_images] = PointerGetDatum(r.images);
	n[c_images] = r.images == nullptr;
}

// A large `rows` or `images` value compressed (with the partition's
// method), so the tuple is not formed with it uncompressed first (the
// toaster then at most moves it out of line), and a held-back record keeps
// it small.
Datum compress_rows(Datum rows, int col)
{
	if (VARSIZE_ANY(DatumGetPointer(rows)) <= TOAST_TUPLE_THRESHOLD || VARATT_IS_EXTENDED(DatumGetPointer(rows)))
		return rows;
	char m = TupleDescAttr(RelationGetDescr(xs.part), xs.colmap[col] - 1)->attcompression;
	if (!CompressionMethodIsValid(m))
		m = static_cast<char>(default_toast_compression);
	Datum c = toast_compress_datum(rows, m);
	return DatumGetPointer(c) != nullptr ? c : rows;
}

namespace {

// A complete row as the partition's tuple, in the current memory context:
// its values in the partition's column order, `rows` and `images`
// compressed when large.
HeapTuple form_row(const Datum* v, const bool* n)
{
	Datum* tv = static_cast<Datum*>(palloc0(sizeof(Datum) * xs.part_natts));
	bool* tn = static_cast<bool*>(palloc(sizeof(bool) * xs.part_natts));
	for (int i = 0; i < xs.part_natts; ++i)
		tn[i] = true;
	for (int i = 0; i < k_ncols; ++i) {
		tv[xs.colmap[i] - 1] = v[i];
		tn[xs.colmap[i] - 1] = n[i];
	}
	for (int col : {c_rows, c_images})
		if (!n[col])
			tv[xs.colmap[col] - 1] = compress_rows(v[col], col);
	return heap_form_tuple(RelationGetDescr(xs.part), tv, tn);
}

}  // namespace

// Inserts a complete row into this transaction's partition (heap and indexes).
void insert_values(const Datum* v, const bool* n)
{
	// Everything a record's insert allocates (its tuple, compressed values,
	// index keys) is gone when it is in.
	MemoryContext old = MemoryContextSwitchTo(GetPerTupleMemoryContext(xs.estate));
	HeapTuple tup = form_row(v, n);
	ExecStoreHeapTuple(tup, xs.slot, true);
	table_tuple_insert(xs.part, xs.slot, GetCurrentCommandId(true), 0, nullptr);
	(void) tenant_guard::pg::compat::insert_index_tuples(xs.rri, xs.slot, xs.estate);
	MemoryContextSwitchTo(old);
	ExecClearTuple(xs.slot);
	ResetPerTupleExprContext(xs.estate);
}

// Inserts `count` complete rows (the records a COMMIT seals: one per tenant
// chain of the transaction, a thousand for a statement over a thousand
// tenants) as COPY does: the heap tuples a batch at a time with
// table_multi_insert() (one WAL record and one buffer lock per page filled,
// not per row), then each row's index entries. A batch's tuples and index
// keys are freed when it is in.
void insert_many(Datum* const* v, bool* const* n, int count)
{
	if (count == 1) {
		insert_values(v[0], n[0]);
		return;
	}
	constexpr int k_batch_rows = 256;
	constexpr Size k_batch_bytes = 1024 * 1024;
	const int nslots = Min(count, k_batch_rows);
	TupleTableSlot** slots = static_cast<TupleTableSlot**>(palloc(sizeof(TupleTableSlot*) * nslots));
	for (int i = 0; i < nslots; ++i)
		slots[i] = MakeSingleTupleTableSlot(RelationGetDescr(xs.part), &TTSOpsHeapTuple);
	const CommandId cid = GetCurrentCommandId(true);
	for (int done = 0; done < count;) {
		MemoryContext old = MemoryContextSwitchTo(GetPerTupleMemoryContext(xs.estate));
		int m = 0;
		Size bytes = 0;
		while (done + m < count && m < nslots && bytes < k_batch_bytes) {
			HeapTuple tup = form_row(v[done + m], n[done + m]);
			bytes += tup->t_len;
			// (the slot owns it: heap_multi_insert() then takes it as it is,
			// and clearing the slot frees it before the context is reset)
			ExecStoreHeapTuple(tup, slots[m], true);
			++m;
		}
		table_multi_insert(xs.part, slots, m, cid, 0, nullptr);
		for (int i = 0; i < m; ++i)
			(void) tenant_guard::pg::compat::insert_index_tuples(xs.rri, slots[i], xs.estate);
		MemoryContextSwitchTo(old);
		for (int i = 0; i < m; ++i)
			ExecClearTuple(slots[i]);
		ResetPerTupleExprContext(xs.estate);
		done += m;
	}
	for (int i = 0; i < nslots; ++i)
		ExecDropSingleTupleTableSlot(slots[i]);
	pfree(slots);
	GetPerTupleExprContext(xs.estate)->ecxt_scantuple = nullptr;  // (it named a dropped slot)
}

WriterState enter_writer()
{
	WriterState w;
	resolve_log();
	GetUserIdAndSecContext(&w.save_user, &w.save_sec);
	SetUserIdAndSecContext(xs.log_owner, w.save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	return w;
}

// SPI for the seal queries, connected on first use (most COMMITs run none):
// as the log owner, not with the caller's search_path.
void writer_spi(WriterState& w)
{
	if (w.spi_open)
		return;
	w.spi = tg::pg::spi_begin();
	w.spi_open = true;
}

void leave_writer(const WriterState& w)
{
	if (w.spi_open)
		tg::pg::spi_end(w.spi);
	SetUserIdAndSecContext(w.save_user, w.save_sec);
}

namespace {

// Keeps a copy of a record's values as the chain's pending record; column
// `given` (-1: none) is kept as it is, already in TopTransactionContext.
void hold_back(Level* l, const Datum* v, const bool* n, int given)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	Datum* pv = static_cast<Datum*>(palloc(sizeof(Datum) * k_ncols));
	bool* pn = static_cast<bool*>(palloc(sizeof(bool) * k_ncols));
	for (int i = 0; i < k_ncols; ++i) {
		pn[i] = n[i];
		pv[i] = n[i] ? (Datum) 0 : i == given ? v[i] : datumCopy(v[i], col_byval(i), col_byval(i) ? 8 : -1);
	}
	MemoryContextSwitchTo(old);
	l->pending_v = pv;
	l->pending_n = pn;
}

}  // namespace

// Forgets level i's pending record: its copy and its begun hash are freed
// unless the level below (an outer subtransaction) still holds the same
// record, which it needs again if this subtransaction rolls back.
void forget_pending(Group* g, int i)
{
	Level* l = &g->levels[i];
	if (l->pending_v == nullptr)
		return;
	const bool shared = i >= 1 && g->levels[i - 1].pending_v == l->pending_v;
	if (!shared) {
		for (int c = 0; c < k_ncols; ++c) {
			if (c != c_hash && !l->pending_n[c] && !col_byval(c))
				pfree(DatumGetPointer(l->pending_v[c]));
		}
		pfree(l->pending_v);
		pfree(l->pending_n);
		hash_release(l->pending_hash);
	}
	l->pending_v = nullptr;
	l->pending_n = nullptr;
	l->pending_hash = 0;
}

namespace {

// Writes the chain's pending record as an ordinary (unsealed) record. Its
// copy is freed unless the level below (an outer subtransaction) still holds
// it: that one needs it again if this subtransaction rolls back.
void flush_pending(Group* g, Level* l)
{
	Datum v[k_ncols];
	bool n[k_ncols];
	memcpy(v, l->pending_v, sizeof v);
	memcpy(n, l->pending_n, sizeof n);
	bytea* h = hash_finish(l->pending_hash, v, n);
	v[c_hash] = PointerGetDatum(h);
	n[c_hash] = false;
	insert_values(v, n);
	memcpy(l->last, VARDATA(h), 32);
	forget_pending(g, static_cast<int>(l - g->levels));
}

}  // namespace

// Appends a record to its tenant's chain in this transaction.
int64 write_record(Record& r)
{
	register_callbacks();
	if (xs.sealing)
		elog(ERROR, "tenant_guard: cannot write audit records while the transaction is being sealed");
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
	// The hash is of the uncompressed value: a held-back record's is begun
	// here (hash_begin), so it is never decompressed to be hashed. What is
	// held back is compressed unless it is small enough to be held back as
	// it is: then it is compressed only when it is inserted (insert_values).
	const int body = r.rows != nullptr ? c_rows : r.images != nullptr ? c_images : -1;
	const bool small = body >= 0 && VARSIZE_ANY(DatumGetPointer(v[body])) <= k_hold_back_max;
	// A compressed copy is made where a held-back record lives, so holding
	// it back copies nothing.
	Datum packed = body >= 0 ? v[body] : (Datum) 0;
	if (body >= 0 && !small) {
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
		packed = compress_rows(v[body], body);
		MemoryContextSwitchTo(old);
	}
	const bool copy = body >= 0 && packed != v[body];  // (compressed)
	if (body >= 0 && VARSIZE_ANY(DatumGetPointer(packed)) > k_hold_back_max) {
		// A large record is written now rather than copied to be held
		// back; COMMIT then writes a small seal row for its chain.
		bytea* h = hash_record(v, n);
		v[c_hash] = PointerGetDatum(h);
		n[c_hash] = false;
		v[body] = packed;
		insert_values(v, n);
		memcpy(l->last, VARDATA(h), 32);
		if (copy)
			pfree(DatumGetPointer(packed));
	} else {
		// Hashed now, all but the seal fields, while the body is at hand
		// uncompressed (finished when the record is written or sealed).
		const int begun = hash_begin(v, n);
		if (copy)  // (made for the worst case: the held-back copy takes its size only)
			packed = PointerGetDatum(repalloc(DatumGetPointer(packed), VARSIZE_ANY(DatumGetPointer(packed))));
		if (body >= 0)
			v[body] = packed;
		// The body is kept as it is when it is the compressed copy, or a
		// small binary record made in TopTransactionContext.
		hold_back(l, v, n, copy || (body == c_images && small && r.images_given) ? body : -1);
		l->pending_hash = begun;
	}
	l->count += 1;
	return id;
}

}  // namespace tenant_guard::audit_log
