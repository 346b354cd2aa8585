/*
 * pg/audit_fmgr.cpp
 *
 * The audit log (docs/audit.md):
 *
 *   tenant_guard._audit_capture() returns trigger
 *       AFTER INSERT / UPDATE / DELETE ... REFERENCING OLD/NEW TABLE FOR EACH
 *       STATEMENT (one trigger per event) on an audited table and each of
 *       its partitions: reads the transition tables and writes the
 *       statement's records; trigger arguments "x:<column>" exclude a column,
 *       "r:<column>" redact it
 *   tenant_guard._audit_trigger() returns trigger
 *       AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW, for a table audited in
 *       row mode (a partition or inheritance child audited on its own); same
 *       arguments
 *   tenant_guard._audit_flush() returns trigger
 *       AFTER INSERT OR UPDATE OR DELETE FOR EACH STATEMENT on a table
 *       audited in row mode and each of its partitions: writes the
 *       statement's records
 *   tenant_guard.audit_event(action text, detail jsonb) returns bigint
 *   tenant_guard._audit_write_event(org text, action text, detail jsonb) returns bigint
 *   tenant_guard._audit_registry_event() returns trigger
 *       AFTER ROW on tenant_guard's registries: tenant_guard.<verb> events
 *   tenant_guard._audit_hash(<the 21 hashed columns>) returns bytea
 *   tenant_guard._audit_is_reader() returns boolean
 *   tenant_guard._csv_line(fields text[]) returns text
 *   tenant_guard._audit_selftest_fail_commit() returns void (test hook)
 *   tenant_guard._audit_selftest_hash_states() returns integer (test hook)
 *
 * The design (statement records, the chains and their seals, the direct
 * inserts) is described in audit_log.hpp, with the map of the audit files.
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
#include <vector>

#include "core/audit.hpp"
#include "core/claims.hpp"
#include "pg/audit.hpp"
#include "pg/boundary.hpp"
#include "pg/context.hpp"

extern "C" {
#include "postgres.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/toast_compression.h"
#include "access/toast_internals.h"
#include "access/xact.h"
#include "common/hashfn.h"
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
#include "utils/tuplestore.h"
#include "utils/uuid.h"
}

#include "pg/audit_log.hpp"

namespace tg = tenant_guard;
namespace audit = tenant_guard::audit;
using namespace tenant_guard::audit_log;

namespace {

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

namespace tenant_guard::audit_log {

bool capture_row(RelInfo* info, TupleDesc desc, const char* action, const RowImage* oimg, const RowImage* nimg,
                 int* changed)
{
	int nchanged = 0;
	if (oimg && nimg) {
		nchanged = changed_columns(info, desc, oimg, nimg, changed);
		if (nchanged == 0 && tg::audit_guc::skip_noop_updates)
			return false;
	}
	const RowImage* key = nimg ? nimg : oimg;
	const int k = info->tenant_attnum - 1;
	const char* org = k >= 0 ? row_org(info, key->values[k], key->nulls[k]) : context_org();
	Pack* p = find_pack(info->root, action, org);
	add_row(p, info, desc, oimg, nimg, oimg && nimg ? changed : nullptr, nchanged);
	after_row(p);
	return true;
}

int changed_columns(const RelInfo* info, TupleDesc desc, const RowImage* oimg, const RowImage* nimg, int* changed)
{
	int nchanged = 0;
	for (int i = 0; i < info->natts; ++i) {
		Form_pg_attribute a = TupleDescAttr(desc, i);
		if (a->attisdropped || info->excluded[i])
			continue;
		if (!same_value(a, oimg->nulls[i], oimg->values[i], nimg->nulls[i], nimg->values[i]))
			changed[nchanged++] = i;
	}
	return nchanged;
}

const char* row_org(const RelInfo* info, Datum v, bool isnull)
{
	return isnull ? nullptr : info->tenant_uuid ? uuid_text(v) : OidOutputFunctionCall(info->tenant_out, v);
}

void after_row(Pack* p)
{
	if (p->busy == 0 && (p->nrows >= tg::audit_guc::rows_per_record || p->mem >= k_max_pack_bytes))
		flush_pack(p);
	enforce_budget();
}

struct PackCache {
	static constexpr int k_first = 64;      // entries at first (a power of 2)
	static constexpr int k_most = 1 << 16;  // and at most
	struct Entry {
		pg_uuid_t org;
		Pack* p;
		uint64 epoch;  // the entry holds its tenant in this epoch only
	};
	uint64 epoch;
	int size;  // a power of 2
	int used;  // entries of this epoch
	Entry* e;
	MemoryContext cxt;  // where it lives (the statement trigger call's), not the row's
	// A table with no tenant column: every row goes to the context's tenant,
	// which no row of one trigger call can change (no user code runs between
	// them), so its record is looked up once per epoch, not once per row.
	Pack* context_pack;
	uint64 context_epoch;
};

PackCache* pack_cache_create()
{
	PackCache* c = static_cast<PackCache*>(palloc(sizeof(PackCache)));
	c->epoch = pack_epoch;
	c->size = PackCache::k_first;
	c->used = 0;
	c->cxt = CurrentMemoryContext;
	c->e = static_cast<PackCache::Entry*>(palloc0(sizeof(PackCache::Entry) * c->size));
	c->context_pack = nullptr;
	c->context_epoch = 0;
	return c;
}

namespace {

// Once a record was written or dropped, every entry is stale (free).
void cache_sync(PackCache* c)
{
	if (c->epoch != pack_epoch) {
		c->epoch = pack_epoch;
		c->used = 0;
	}
}

bool entry_free(const PackCache* c, const PackCache::Entry* e)
{
	return e->epoch != c->epoch || e->p == nullptr;
}

// Tenant u's entry or the free one where it would go (open addressing,
// linear probing; at most 3/4 of the entries are taken, so one is free).
PackCache::Entry* cache_slot(PackCache* c, const pg_uuid_t* u)
{
	for (uint32 i = hash_bytes(u->data, UUID_LEN);; ++i) {
		PackCache::Entry* e = &c->e[i & static_cast<uint32>(c->size - 1)];
		if (entry_free(c, e) || memcmp(e->org.data, u->data, UUID_LEN) == 0)
			return e;
	}
}

// The open record of tenant u, if the cache has it.
Pack* cache_get(PackCache* c, const pg_uuid_t* u)
{
	cache_sync(c);
	PackCache::Entry* e = cache_slot(c, u);
	return entry_free(c, e) ? nullptr : e->p;
}

// Remembers tenant u's open record; the table doubles when 3/4 full (past
// k_most entries, further tenants find their record the slower way).
void cache_put(PackCache* c, const pg_uuid_t* u, Pack* p)
{
	cache_sync(c);
	if ((c->used + 1) * 4 > c->size * 3) {
		if (c->size >= PackCache::k_most)
			return;
		PackCache::Entry* old = c->e;
		const int n = c->size;
		c->size *= 2;
		c->e = static_cast<PackCache::Entry*>(MemoryContextAllocZero(c->cxt, sizeof(PackCache::Entry) * c->size));
		for (int i = 0; i < n; ++i)
			if (!entry_free(c, &old[i]))
				*cache_slot(c, &old[i].org) = old[i];
		pfree(old);
	}
	PackCache::Entry* e = cache_slot(c, u);
	if (entry_free(c, e))
		++c->used;
	*e = PackCache::Entry{*u, p, c->epoch};
}

// The open record of a row's tenant (the slot deformed up to its tenant
// column at least), through the statement's cache where the tenant is a uuid.
Pack* tenant_pack(RelInfo* info, const char* action, TupleTableSlot* slot, PackCache* cache)
{
	const int k = info->tenant_attnum - 1;
	if (k < 0) {
		if (cache == nullptr)
			return find_pack(info->root, action, context_org());
		if (cache->context_pack == nullptr || cache->context_epoch != pack_epoch) {
			char* org = context_org();
			cache->context_pack = find_pack(info->root, action, org);
			cache->context_epoch = pack_epoch;
			if (org != nullptr)
				pfree(org);
		}
		return cache->context_pack;
	}
	const bool cached = cache != nullptr && info->tenant_uuid && !slot->tts_isnull[k];
	if (cached) {
		Pack* p = cache_get(cache, DatumGetUUIDP(slot->tts_values[k]));
		if (p != nullptr)
			return p;
	}
	Pack* p = find_pack(info->root, action, row_org(info, slot->tts_values[k], slot->tts_isnull[k]));
	if (cached)
		cache_put(cache, DatumGetUUIDP(slot->tts_values[k]), p);
	return p;
}

// The slot's minimal tuple when it can be its row's image as it is.
MinimalTuple raw_tuple(const RelInfo* info, TupleTableSlot* slot)
{
	if (!TTS_IS_MINIMALTUPLE(slot))
		return nullptr;
	MinimalTuple mt = reinterpret_cast<MinimalTupleTableSlot*>(slot)->mintuple;
	return mt != nullptr && raw_tuple_fits(info, mt) ? mt : nullptr;
}

}  // namespace

bool capture_raw(RelInfo* info, const char* action, TupleTableSlot* slot, PackCache* cache)
{
	MinimalTuple mt = raw_tuple(info, slot);
	if (mt == nullptr)
		return false;
	if (info->tenant_attnum > 0)
		slot_getsomeattrs(slot, info->tenant_attnum);
	Pack* p = tenant_pack(info, action, slot, cache);
	if (!add_row_raw(p, info, mt, nullptr))
		return false;
	pack_grew(p);
	after_row(p);
	return true;
}

bool capture_raw_update(RelInfo* info, TupleDesc desc, TupleTableSlot* oslot, TupleTableSlot* nslot, int* changed,
                        PackCache* cache)
{
	MinimalTuple omt = raw_tuple(info, oslot);
	MinimalTuple nmt = omt ? raw_tuple(info, nslot) : nullptr;
	if (nmt == nullptr)
		return false;
	slot_getallattrs(oslot);
	slot_getallattrs(nslot);
	const RowImage oimg{oslot->tts_values, oslot->tts_isnull};
	const RowImage nimg{nslot->tts_values, nslot->tts_isnull};
	if (changed_columns(info, desc, &oimg, &nimg, changed) == 0 && tg::audit_guc::skip_noop_updates)
		return true;  // (nothing audited changed: no row change, as capture_row decides)
	Pack* p = tenant_pack(info, "UPDATE", nslot, cache);
	if (!add_row_raw(p, info, omt, nmt))
		return false;
	pack_grew(p);
	after_row(p);
	return true;
}

}  // namespace tenant_guard::audit_log

// tenant_guard._audit_trigger() returns trigger: AFTER ... FOR EACH ROW
// (tables audited in row mode: a partition or inheritance child audited on
// its own, whose rows its parent's statements change too)
TG_FUNCTION(tg__audit_trigger)
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
		elog(ERROR, "tenant_guard: stale column information for %s", RelationGetRelationName(rel));

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
	const int natts = desc->natts;
	RowImage oimg{nullptr, nullptr}, nimg{nullptr, nullptr};
	HeapTuple tuples[2] = {oldt, newt};
	RowImage* images[2] = {&oimg, &nimg};
	for (int k = 0; k < 2; ++k) {
		if (tuples[k] == nullptr)
			continue;
		images[k]->values = static_cast<Datum*>(palloc(sizeof(Datum) * (natts + 1)));
		images[k]->nulls = static_cast<bool*>(palloc(sizeof(bool) * (natts + 1)));
		heap_deform_tuple(tuples[k], desc, images[k]->values, images[k]->nulls);
	}
	int* changed = static_cast<int*>(palloc(sizeof(int) * (natts + 1)));
	(void) capture_row(info, desc, action, oldt ? &oimg : nullptr, newt ? &nimg : nullptr, changed);
	return PointerGetDatum(nullptr);
}

namespace {

// A read pointer of its own on a transition table, at its start: other
// statement triggers of the table read the same tuplestore.
void rewind_transition(Tuplestorestate* ts)
{
	const int ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(ts, ptr);
	tuplestore_rescan(ts);
}

}  // namespace

// tenant_guard._audit_capture() returns trigger
//     AFTER INSERT (or UPDATE, or DELETE) ... REFERENCING NEW TABLE (OLD
//     TABLE, both) FOR EACH STATEMENT on an audited table and each of its
//     partitions: every row change of the statement from the transition
//     tables, then the statement's records written
TG_FUNCTION(tg__audit_capture)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("tenant_guard._audit_capture() must be called as a trigger")));
	TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("tenant_guard._audit_capture() must run AFTER ... FOR EACH STATEMENT"),
		                errhint("Use tenant_guard.enable_audit() to set up auditing.")));
	const char* action;
	bool want_old = false, want_new = false;
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event)) {
		action = "INSERT";
		want_new = true;
	} else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event)) {
		action = "UPDATE";
		want_old = want_new = true;
	} else if (TRIGGER_FIRED_BY_DELETE(td->tg_event)) {
		action = "DELETE";
		want_old = true;
	} else {
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("tenant_guard._audit_capture() handles INSERT, UPDATE and DELETE only")));
	}
	Tuplestorestate* olds = td->tg_oldtable;
	Tuplestorestate* news = td->tg_newtable;
	if ((want_old && olds == nullptr) || (want_new && news == nullptr) || (!want_old && olds != nullptr) ||
	    (!want_new && news != nullptr))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("tenant_guard._audit_capture() needs the transition tables of its event"),
		                errhint("Use tenant_guard.enable_audit() to set up auditing.")));
	Relation rel = td->tg_relation;
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		refuse_unaudited(rel, true);
	const int64 n = tuplestore_tuple_count(want_new ? news : olds);
	if (want_old && want_new && tuplestore_tuple_count(olds) != n)
		elog(ERROR, "tenant_guard: transition tables of %s differ in length", RelationGetRelationName(rel));
	TupleDesc desc = RelationGetDescr(rel);
	RelInfo* info = rel_info(rel, td->tg_trigger);
	if (info->natts != desc->natts)
		elog(ERROR, "tenant_guard: stale column information for %s", RelationGetRelationName(rel));
	const Oid root = info->root;
	if (n > 0) {
		// Each row in memory reset per row (its tenant's text, the actor
		// fields of a new record are copied where they stay).
		MemoryContext row_cxt =
		    AllocSetContextCreate(CurrentMemoryContext, "tenant_guard audit capture", ALLOCSET_DEFAULT_SIZES);
		TupleTableSlot* oslot = want_old ? MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple) : nullptr;
		TupleTableSlot* nslot = want_new ? MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple) : nullptr;
		if (olds)
			rewind_transition(olds);
		if (news)
			rewind_transition(news);
		int* changed = static_cast<int*>(palloc(sizeof(int) * (desc->natts + 1)));
		// Rows taken as their stored tuples where the table allows it; the
		// tenant cache from the second row on (a single-row statement does
		// not pay for it).
		const bool raw = raw_capture_possible(info);
		PackCache* cache = nullptr;
		int64 nrow = 0;
		RowImage oimg{nullptr, nullptr}, nimg{nullptr, nullptr};
		// An UPDATE's old and new rows are appended to the two tables
		// together, row by row (a row moved to another partition too): the
		// i-th of each are one row change.
		for (;;) {
			const bool got_old = oslot && tuplestore_gettupleslot(olds, true, false, oslot);
			const bool got_new = nslot && tuplestore_gettupleslot(news, true, false, nslot);
			if (!got_old && !got_new)
				break;
			if ((oslot && !got_old) || (nslot && !got_new))
				elog(ERROR, "tenant_guard: transition tables of %s differ in length", RelationGetRelationName(rel));
			if (raw) {
				if (++nrow == 2 && (info->tenant_uuid || info->tenant_attnum == 0))
					cache = pack_cache_create();
				MemoryContext old = MemoryContextSwitchTo(row_cxt);
				const bool done = got_old && got_new ? capture_raw_update(info, desc, oslot, nslot, changed, cache)
				                                     : capture_raw(info, action, got_old ? oslot : nslot, cache);
				MemoryContextSwitchTo(old);
				MemoryContextReset(row_cxt);
				if (done)
					continue;
			}
			if (got_old) {
				slot_getallattrs(oslot);
				oimg = RowImage{oslot->tts_values, oslot->tts_isnull};
			}
			if (got_new) {
				slot_getallattrs(nslot);
				nimg = RowImage{nslot->tts_values, nslot->tts_isnull};
			}
			MemoryContext old = MemoryContextSwitchTo(row_cxt);
			(void) capture_row(info, desc, action, got_old ? &oimg : nullptr, got_new ? &nimg : nullptr, changed);
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
		}
		if (oslot)
			ExecDropSingleTupleTableSlot(oslot);
		if (nslot)
			ExecDropSingleTupleTableSlot(nslot);
		MemoryContextDelete(row_cxt);
	}
	if (xs.packs != nullptr)
		flush_packs(root);
	return PointerGetDatum(nullptr);
}

// tenant_guard._audit_flush() returns trigger
//     AFTER INSERT OR UPDATE OR DELETE FOR EACH STATEMENT on an audited table
//     and each of its partitions: writes the statement's open records
TG_FUNCTION(tg__audit_flush)
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
TG_FUNCTION(tg_audit_event)
{
	char* action = text_arg(fcinfo, 0);
	check_action(action, false);
	Jsonb* detail = PG_ARGISNULL(1) ? nullptr : PG_GETARG_JSONB_P(1);
	PG_RETURN_INT64(write_event(context_org(), action, detail));
}

// tenant_guard._audit_write_event(org text, action text, detail jsonb DEFAULT '{}') returns bigint
TG_FUNCTION(tg__audit_write_event)
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
    {"protected_tables", "protect", "unprotect"},
    {"access_rules", "allow", "disallow"},
    {"exemptions", "exempt", "unexempt"},
    {"guarded_schemas", "guard_schema", "unguard_schema"},
    {"unsafe_ddl_log", "unsafe_ddl", "unsafe_ddl"},
    {"audited_tables", "enable_audit", "disable_audit"},
    {"app_roles", "register_app_role", "unregister_app_role"},
    // key_events: the verb is key_<event> and the record goes to the key's tenant (below)
    {"key_events", "key_", "key_"},
};
const char* const k_time_columns[] = {"protected_at", "created_at", "guarded_at",   "exempted_at",
                                      "at",           "enabled_at", "registered_at"};

TG_FUNCTION(tg__audit_registry_event)
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
	fl.fn_expr = reinterpret_cast<Node*>(makeFuncExpr(F_TO_JSONB, JSONBOID,
	                                                  list_make1(makeNullConst(rel->rd_rel->reltype, -1, InvalidOid)),
	                                                  InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL));
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
TG_FUNCTION(tg__audit_selftest_fail_commit)
{
	register_callbacks();
	fail_after_seal = true;
	PG_RETURN_VOID();
}

// tenant_guard._audit_selftest_hash_states() returns integer: how many
// held-back records of the current transaction have their hash begun (tests
// that they are released with their records)
TG_FUNCTION(tg__audit_selftest_hash_states)
{
	PG_RETURN_INT32(hash_states_live());
}

// tenant_guard._audit_hash(<the 21 hashed columns of audit_log>, images bytea DEFAULT NULL) returns bytea
TG_FUNCTION(tg__audit_hash)
{
	Datum v[k_ncols] = {};
	bool n[k_ncols];
	if (PG_NARGS() != k_nhashed + 1)
		elog(ERROR, "tenant_guard._audit_hash() takes %d arguments", k_nhashed + 1);
	for (int i = 0; i < k_ncols; ++i)
		n[i] = true;
	for (int i = 0; i < k_nhashed; ++i) {
		n[i] = PG_ARGISNULL(i);
		v[i] = n[i] ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	n[c_images] = PG_ARGISNULL(k_nhashed);
	v[c_images] = n[c_images] ? (Datum) 0 : PG_GETARG_DATUM(k_nhashed);
	PG_RETURN_BYTEA_P(hash_record(v, n));
}

// tenant_guard._audit_is_reader() returns boolean: the in-tenant role of the
// context is tenant_guard.audit_reader_role
TG_FUNCTION(tg__audit_is_reader)
{
	const tg::claims::Context& c = tg::context::current();
	const char* want = tg::audit_guc::reader_role;
	PG_RETURN_BOOL(c.org_key && c.role && want && *c.role == want);
}

// tenant_guard._csv_line(fields text[]) returns text: one RFC 4180 line
// (the quoting is core::audit::csv_line's, unit-tested there)
TG_FUNCTION(tg__csv_line)
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
