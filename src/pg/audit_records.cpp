/*
 * pg/audit_records.cpp
 *
 * Statement records: the capture trigger (or, in row mode, the row trigger)
 * adds each row change to the open record of its (table, action, tenant,
 * subtransaction, statement, actor); the statement's end, a budget, or COMMIT
 * writes them (audit_log.hpp).
 */
#include <cstring>
#include <optional>
#include <string>

#include "core/claims.hpp"
#include "pg/context.hpp"

extern "C" {
#include "postgres.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/toast_compression.h"
#include "access/toast_internals.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "common/hashfn.h"
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
#include "utils/uuid.h"
}

#include "pg/audit_log.hpp"

namespace tg = tenant_guard;

namespace tenant_guard::audit_log {

int adding_depth = 0;
uint64 pack_epoch = 0;

namespace {

constexpr const char* k_redacted = "[redacted]";

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

void free_pack_memory(MemoryContext cxt)
{
	if (cxt == keeper_cxt) {
		MemoryContextReset(cxt);  // keeps its first block for the next statement
		spare_cxt = cxt;
	} else {
		MemoryContextDelete(cxt);
	}
}

uint32 pack_hash(Oid root, const char* action, const char* org)
{
	uint32 h = hash_combine(hash_bytes_uint32(root), hash_bytes(reinterpret_cast<const unsigned char*>(action),
	                                                            static_cast<int>(strlen(action))));
	return org ? hash_combine(h, hash_bytes(reinterpret_cast<const unsigned char*>(org), static_cast<int>(strlen(org))))
	           : h;
}

Pack** bucket_of(uint32 hash)
{
	return &xs.pack_buckets[hash & static_cast<uint32>(xs.npack_buckets - 1)];
}

// Room for one more open record: at least as many buckets as records.
void grow_buckets()
{
	if (xs.npacks < xs.npack_buckets)
		return;
	const int n = xs.npack_buckets ? xs.npack_buckets * 2 : 64;
	Pack** b = static_cast<Pack**>(MemoryContextAllocZero(TopTransactionContext, sizeof(Pack*) * n));
	if (xs.pack_buckets)
		pfree(xs.pack_buckets);
	xs.pack_buckets = b;
	xs.npack_buckets = n;
	for (Pack* p = xs.packs; p; p = p->next) {
		Pack** head = bucket_of(p->hash);
		p->hnext = *head;
		*head = p;
	}
}

void drop_pack(Pack* p)
{
	for (Pack** pp = bucket_of(p->hash); *pp; pp = &(*pp)->hnext)
		if (*pp == p) {
			*pp = p->hnext;
			break;
		}
	if (p->prev)
		p->prev->next = p->next;
	else
		xs.packs = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		xs.oldest_pack = p->prev;
	--xs.npacks;
	++pack_epoch;
	if (xs.last_pack == p)
		xs.last_pack = nullptr;
	xs.open_mem -= p->mem;
	free_pack_memory(p->cxt);  // p with it
}

}  // namespace

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

namespace {

bool same_str(const char* a, const char* b)
{
	return (a == nullptr && b == nullptr) || (a && b && strcmp(a, b) == 0);
}

bool same_str(const char* a, const std::optional<std::string>& b)
{
	return b ? a != nullptr && *b == a : a == nullptr;
}

}  // namespace

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
	const uint32 hash = pack_hash(root, action, org);
	if (xs.npacks > 0)
		for (Pack* p = *bucket_of(hash); p; p = p->hnext)
			if (p->hash == hash && match(p))
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
		// small blocks: a statement over a thousand tenants opens a thousand
		// records of a few kilobytes each
		cxt = AllocSetContextCreate(TopTransactionContext, "tenant_guard audit record", ALLOCSET_SMALL_SIZES);
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
	initStringInfo(&p->data);
	p->maxlens = 64;
	p->lens = static_cast<uint32*>(palloc(sizeof(uint32) * p->maxlens));
	MemoryContextSwitchTo(old);
	p->base_mem = MemoryContextMemAllocated(cxt, false);
	grow_buckets();
	p->hash = hash;
	Pack** head = bucket_of(hash);
	p->hnext = *head;
	*head = p;
	p->prev = nullptr;
	p->next = xs.packs;
	if (xs.packs)
		xs.packs->prev = p;
	else
		xs.oldest_pack = p;
	xs.packs = p;
	++xs.npacks;
	return xs.last_pack = p;
}

namespace {

void jstring(JsonbValue* v, const char* s, int len)
{
	v->type = jbvString;
	v->val.string.val = const_cast<char*>(s);
	v->val.string.len = len;
}

}  // namespace

// The text form of a uuid, as uuid_out() writes it (palloc'd): called for
// every audited row of a table with a uuid column or tenant column.
char* uuid_text(Datum d)
{
	static const char hex[] = "0123456789abcdef";
	const pg_uuid_t* u = DatumGetUUIDP(d);
	char* s = static_cast<char*>(palloc(37));
	char* o = s;
	for (int i = 0; i < UUID_LEN; ++i) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[u->data[i] >> 4];
		*o++ = hex[u->data[i] & 0x0f];
	}
	*o = '\0';
	return s;
}

// The jsonb value of one column of a row (memory in the current context: the row's scratch).
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
		const int64 i = c->base == INT2OID   ? DatumGetInt16(d)
		                : c->base == INT4OID ? DatumGetInt32(d)
		                                     : DatumGetInt64(d);
		v->type = jbvNumeric;
		v->val.numeric = int64_to_numeric(i);
		return;
	}
	case k_numeric: {
		Numeric num = DatumGetNumeric(d);  // (a 4-byte header, as to_jsonb() stores it)
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
		// (points into the tuple unless it had to be detoasted: the row is
		// serialized before the tuple goes)
		struct varlena* t = pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(d)));
		jstring(v, VARDATA_ANY(t), static_cast<int>(VARSIZE_ANY_EXHDR(t)));
		return;
	}
	case k_datetime: {
		char* s = JsonEncodeDateTime(nullptr, d, c->base, nullptr);
		jstring(v, s, static_cast<int>(strlen(s)));
		return;
	}
	case k_jsonb: {
		Jsonb* jb = DatumGetJsonbP(d);
		v->type = jbvBinary;
		v->val.binary.data = &jb->root;
		v->val.binary.len = static_cast<int>(VARSIZE(jb) - VARHDRSZ);
		return;
	}
	case k_uuid: {
		char* s = uuid_text(d);
		jstring(v, s, 36);
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

namespace {

// The column values of a row image (nullptr entries for skipped columns).
JsonbValue* row_values(RelInfo* info, const RowImage* img)
{
	JsonbValue* vals = static_cast<JsonbValue*>(palloc0(sizeof(JsonbValue) * (info->natts + 1)));
	for (int i = 0; i < info->natts; ++i)
		if (info->cols[i].kind != k_skip)
			column_value(&info->cols[i], img->values[i], img->nulls[i], &vals[i]);
	return vals;
}

// An UPDATE's after image as the record stores it: the values of the
// changed columns (attnum - 1 indexes, ascending) and of the key columns
// only (audit_rowjson.cpp); the other entries stay unset.
JsonbValue* changed_values(RelInfo* info, const RowImage* img, const int* changed, int nchanged)
{
	JsonbValue* vals = static_cast<JsonbValue*>(palloc0(sizeof(JsonbValue) * (info->natts + 1)));
	for (int k = 0; k < nchanged; ++k) {
		const int i = changed[k];
		if (info->cols[i].kind != k_skip)
			column_value(&info->cols[i], img->values[i], img->nulls[i], &vals[i]);
	}
	for (int k = 0; k < info->npk; ++k) {
		const int i = info->pk[k] - 1;
		bool done = false;  // (a changed key column is already there)
		for (int j = 0; j < nchanged && !done; ++j)
			done = changed[j] == i;
		if (!done && info->cols[i].kind != k_skip)
			column_value(&info->cols[i], img->values[i], img->nulls[i], &vals[i]);
	}
	return vals;
}

bool key_before(const Pack* p, int a, int b)
{
	if (p->namelens[a] != p->namelens[b])
		return p->namelens[a] < p->namelens[b];
	return memcmp(p->names[a], p->names[b], p->namelens[a]) < 0;
}

// Scratch memory of the row being added, one context per nesting depth of
// add_row (a user type's cast can add rows while its row is half-built),
// reset for every row: only the row's binary form stays, in the pack.
constexpr int k_scratch_depths = 4;
MemoryContext scratch[k_scratch_depths] = {};

MemoryContext scratch_context(int depth)
{
	if (depth > k_scratch_depths)
		return AllocSetContextCreate(CurrentMemoryContext, "tenant_guard audit row", ALLOCSET_DEFAULT_SIZES);
	MemoryContext& c = scratch[depth - 1];
	if (c == nullptr)
		c = AllocSetContextCreate(TopMemoryContext, "tenant_guard audit row", ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(c);
	return c;
}

void release_scratch(MemoryContext c, int depth)
{
	if (depth > k_scratch_depths)
		MemoryContextDelete(c);
	else
		MemoryContextReset(c);
}

// Adds one row change to its open record: {"pk": ..., "new": ...} (INSERT),
// {"pk": ..., "old": ...} (DELETE) or {"pk": ..., "old": ..., "set": ...,
// "changed": [...]} (UPDATE: the new values of the changed columns), written in jsonb's binary
// form at once (audit_rowjson.cpp); the column values are built in scratch
// memory. The pack is busy meanwhile: building the
// column values can run SQL (a user type's cast to json) that writes
// audited rows, and their statement must not write or free this record
// half-built; nested changes of the same record just join it.
void add_row_inner(Pack* p, RelInfo* info, TupleDesc desc, const RowImage* oimg, const RowImage* nimg,
                   const int* changed, int nchanged, MemoryContext scratch_cxt)
{
	MemoryContext old = MemoryContextSwitchTo(scratch_cxt);
	// A row of a table with binary images: its tuple (an UPDATE's: both).
	if (add_row_binary(p, info, oimg, nimg)) {
		MemoryContextSwitchTo(old);
		return;
	}
	// The column values first (may run SQL), then the pushes (run none).
	JsonbValue* ov = oimg ? row_values(info, oimg) : nullptr;
	JsonbValue* nv = !nimg             ? nullptr
	                 : oimg && changed ? changed_values(info, nimg, changed, nchanged)
	                                   : row_values(info, nimg);
	if (p->names_rel != info->relid || p->names_gen != info->gen) {
		MemoryContextSwitchTo(p->cxt);
		p->names = static_cast<char**>(palloc(sizeof(char*) * (desc->natts + 1)));
		p->namelens = static_cast<int*>(palloc(sizeof(int) * (desc->natts + 1)));
		for (int i = 0; i < desc->natts; ++i) {
			p->names[i] = pstrdup(NameStr(TupleDescAttr(desc, i)->attname));
			p->namelens[i] = static_cast<int>(strlen(p->names[i]));
		}
		p->order = static_cast<int*>(palloc(sizeof(int) * (desc->natts + 1)));
		p->norder = 0;
		for (int i = 0; i < info->natts; ++i) {
			if (info->cols[i].kind == k_skip)
				continue;
			int k = p->norder++;  // insertion sort: (length, bytes), as jsonb orders keys
			while (k > 0 && key_before(p, i, p->order[k - 1])) {
				p->order[k] = p->order[k - 1];
				--k;
			}
			p->order[k] = i;
		}
		p->names_rel = info->relid;
		p->names_gen = info->gen;
		if (p->proto.table_name == nullptr)
			p->proto.table_name = pstrdup(info->table_name);
		MemoryContextSwitchTo(scratch_cxt);
	}
	// Serialized into the pack (no SQL runs from here on), made jsonb first
	// if it holds binary images (rows its values' SQL added, or a row of
	// another layout).
	if (p->bin)
		pack_to_json(p);
	MemoryContextSwitchTo(p->cxt);
	const int start = p->data.len;
	append_row_change(&p->data, p, info, ov, nv, changed, nchanged);
	if (p->nrows == p->maxlens) {
		p->maxlens *= 2;
		p->lens = static_cast<uint32*>(repalloc(p->lens, sizeof(uint32) * p->maxlens));
	}
	p->lens[p->nrows] = static_cast<uint32>(p->data.len - start);
	++p->nrows;
	MemoryContextSwitchTo(old);
}

}  // namespace

void add_row(Pack* p, RelInfo* info, TupleDesc desc, const RowImage* oimg, const RowImage* nimg, const int* changed,
             int nchanged)
{
	++p->busy;
	++adding_depth;
	const int depth = adding_depth;
	MemoryContext scratch_cxt = scratch_context(depth);
	PG_TRY();
	{
		add_row_inner(p, info, desc, oimg, nimg, changed, nchanged, scratch_cxt);
	}
	PG_FINALLY();
	{
		// (runs before any subtransaction abort could drop p)
		--p->busy;
		--adding_depth;
		release_scratch(scratch_cxt, depth);
	}
	PG_END_TRY();
	pack_grew(p);
}

void pack_grew(Pack* p)
{
	const Size mem = MemoryContextMemAllocated(p->cxt, false) - p->base_mem;
	xs.open_mem += mem - p->mem;
	p->mem = mem;
}

// The jsonb array of a record's row changes, as JsonbValueToJsonb() would
// build it from the same rows: the array's header and one JEntry per row
// (every JB_OFFSET_STRIDE-th an end offset, the others lengths) in front of
// the containers. The containers start 4-byte aligned (varlena header,
// array header and JEntries are 4-byte words), so their padding is where
// jsonb puts it.
Jsonb* rows_array_of(const char* data, int len, const uint32* lens, int n)
{
	const Size total = VARHDRSZ + sizeof(uint32) + sizeof(JEntry) * n + len;
	if (len > static_cast<int>(JENTRY_OFFLENMASK))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("audit record too large")));
	Jsonb* jb = static_cast<Jsonb*>(palloc(total));
	SET_VARSIZE(jb, total);
	jb->root.header = static_cast<uint32>(n) | JB_FARRAY;
	uint32 end = 0;
	for (int i = 0; i < n; ++i) {
		end += lens[i];
		jb->root.children[i] =
		    (i % JB_OFFSET_STRIDE) == 0 ? (JENTRY_ISCONTAINER | JENTRY_HAS_OFF | end) : (JENTRY_ISCONTAINER | lens[i]);
	}
	memcpy(reinterpret_cast<char*>(&jb->root.children[n]), data, len);
	return jb;
}

// Writes an open record into the log and forgets it.
void flush_pack(Pack* p)
{
	MemoryContext old = MemoryContextSwitchTo(p->cxt);
	Record r = p->proto;
	// binary images (of enough rows), else jsonb
	r.images = pack_images(p, &r.images_given);
	if (r.images == nullptr)
		r.rows = rows_array_of(p->data.data, p->data.len, p->lens, p->nrows);
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
	// Writing a record opens no new one (and if it did, at the newer end).
	Pack* p = xs.oldest_pack;
	while (p != nullptr) {
		Pack* newer = p->prev;
		if (p->subid == sub && p->busy == 0 && (root == InvalidOid || p->root == root))
			flush_pack(p);
		p = newer;
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
	while (xs.oldest_pack != nullptr)
		flush_pack(xs.oldest_pack);
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

}  // namespace tenant_guard::audit_log
