/*
 * pg/audit_relinfo.cpp
 *
 * Per-relation trigger information: how each column of an audited table
 * becomes a jsonb value, its primary key, its tenant column, cached per
 * backend and dropped on a relcache invalidation of the relation
 * (protect(), unprotect() and enable_audit() all alter the table).
 */
#include <cstring>

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
#include "pg/citus.hpp"

namespace tg = tenant_guard;

namespace tenant_guard::audit_log {

HTAB* rel_cache = nullptr;

namespace {

uint64 rel_gen = 0;
SPIPlanPtr tenant_column_plan = nullptr;

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
		elog(ERROR, "tenant_guard: could not read tenant_guard.audited_tables");
	return SPI_processed == 1;
}

}  // namespace

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

namespace {

AttrNumber attnum_by_name(TupleDesc desc, const char* col)
{
	for (int i = 0; i < desc->natts; ++i) {
		Form_pg_attribute a = TupleDescAttr(desc, i);
		if (!a->attisdropped && strcmp(NameStr(a->attname), col) == 0)
			return a->attnum;
	}
	return 0;
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
		elog(ERROR, "tenant_guard: could not read tenant_guard.protected_tables");
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

}  // namespace

namespace {

// The topmost partitioned table above a relation (the relation itself otherwise).
Oid partition_root_of(Oid relid)
{
	if (get_rel_relispartition(relid)) {
		List* anc = get_partition_ancestors(relid);
		if (anc != NIL)
			return llast_oid(anc);
	}
	return relid;
}

}  // namespace

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

namespace {

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
	case UUIDOID:
		c->kind = k_uuid;
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
	c->fn.fn_expr = reinterpret_cast<Node*>(
	    makeFuncExpr(F_TO_JSONB, JSONBOID, list_make1(makeNullConst(a->atttypid, a->atttypmod, a->attcollation)),
	                 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL));
	c->kind = k_generic;
}

}  // namespace

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
		if (e->table_name)
			pfree(e->table_name);
		if (e->excluded)
			pfree(e->excluded);
		if (e->cols)
			pfree(e->cols);
		if (e->pk)
			pfree(e->pk);
		free_layout(e->img);
	}
	e->valid = false;
	e->table_name = nullptr;
	e->excluded = nullptr;
	e->cols = nullptr;
	e->pk = nullptr;
	e->img = nullptr;

	TupleDesc desc = RelationGetDescr(rel);
	MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);
	const Oid root = partition_root(rel);
	e->root = root;
	// A Citus shard (on a worker) is recorded, registered and walled as its
	// distributed or reference table (its partitioned root, for a shard of
	// a partition): the name a tenant admin reads on the coordinator.
	const Oid dist = tg::citus::shard_table(rel);
	const Oid dist_root = OidIsValid(dist) ? partition_root_of(dist) : InvalidOid;
	const Oid named = OidIsValid(dist_root) ? dist_root : root;
	e->table_name =
	    pstrdup(quote_qualified_identifier(get_namespace_name(get_rel_namespace(named)), get_rel_name(named)));
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
	const tg::pg::SpiScope spi = tg::pg::spi_begin();
	const bool audited = is_audited(relid) || (root != relid && is_audited(root)) ||
	                     (OidIsValid(dist) && (is_audited(dist) || (dist_root != dist && is_audited(dist_root))));
	e->tenant_attnum = tenant_column_of(relid, desc);
	if (e->tenant_attnum == 0 && root != relid)
		e->tenant_attnum = tenant_column_of(root, desc);
	tg::pg::spi_end(spi);
	// A shard's tenant column: its table's shard wall on this node (workers
	// have no tenant_guard.protected_tables rows).
	char wall_col[NAMEDATALEN];
	if (e->tenant_attnum == 0 && OidIsValid(dist) &&
	    (tg::citus::wall_column(dist, wall_col, sizeof wall_col) ||
	     (dist_root != dist && tg::citus::wall_column(dist_root, wall_col, sizeof wall_col))))
		e->tenant_attnum = attnum_by_name(desc, wall_col);
	if (!audited)
		refuse_unaudited(rel, false);
	// A registry row alone does not make a table protected: a record takes
	// its tenant from the row only where row-level security (forced, so the
	// owner too) let only that tenant write it; elsewhere from the context.
	if (!rel->rd_rel->relrowsecurity || !rel->rd_rel->relforcerowsecurity)
		e->tenant_attnum = 0;
	e->tenant_out = InvalidOid;
	e->tenant_uuid = false;
	if (e->tenant_attnum > 0) {
		bool varlena;
		const Oid t = TupleDescAttr(desc, e->tenant_attnum - 1)->atttypid;
		getTypeOutputInfo(t, &e->tenant_out, &varlena);
		// (a domain over uuid has uuid's output function too)
		e->tenant_uuid = getBaseType(t) == UUIDOID;
	}
	e->img = build_layout(e, desc);
	e->gen = ++rel_gen;
	e->valid = true;
	return e;
}

}  // namespace tenant_guard::audit_log
