/*
 * pg/guard.cpp
 *
 * The commit-time migration guardrail of tenant_guard.guard_schema(): in a
 * guarded schema, a transaction that creates a table with the tenant column,
 * or adds the tenant column to a table, must leave that table protected (or
 * exempted) by COMMIT; otherwise the COMMIT fails and nothing of the
 * migration is committed. The tables come from guard_fmgr.cpp's entry points
 * (the ddl_command_end event trigger notes them).
 *
 * The xact callback runs the check at XACT_EVENT_PRE_COMMIT (and
 * PRE_PREPARE), where an error still aborts the transaction. The callback is
 * registered when the library loads, which the event trigger's first call
 * guarantees: no shared_preload_libraries needed.
 *
 * C-style glue: no C++ objects here, so PostgreSQL is called directly.
 */
extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

#include "pg/guard.hpp"
#include "pg/spi.hpp"

namespace {

// Tables noted in this transaction; the array lives in TopTransactionContext
// and is forgotten at commit or abort.
Oid* pending = nullptr;
int npending = 0;
int maxpending = 0;
// The noted tables that count whether or not they are new (a subset).
Oid* required = nullptr;
int nrequired = 0;
int maxrequired = 0;
bool checking = false;

void forget_pending()
{
	pending = nullptr;
	npending = maxpending = 0;
	required = nullptr;
	nrequired = maxrequired = 0;
	checking = false;
}

// Adds rel to a list in TopTransactionContext unless it is there already.
void remember(Oid rel, Oid** list, int* n, int* max)
{
	for (int i = 0; i < *n; ++i)
		if ((*list)[i] == rel)
			return;
	if (*n == *max) {
		int grow = *max == 0 ? 16 : *max * 2;
		*list = *list == nullptr ? static_cast<Oid*>(MemoryContextAlloc(TopTransactionContext, sizeof(Oid) * grow))
		                         : static_cast<Oid*>(repalloc(*list, sizeof(Oid) * grow));
		*max = grow;
	}
	(*list)[(*n)++] = rel;
}

ArrayType* oid_array(const Oid* oids, int n)
{
	Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * (n > 0 ? n : 1)));
	for (int i = 0; i < n; ++i)
		elems[i] = ObjectIdGetDatum(oids[i]);
	return construct_array(elems, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT);
}

void check_pending()
{
	if (npending == 0 || checking)
		return;
	checking = true;
	ArrayType* oids = oid_array(pending, npending);
	ArrayType* must = oid_array(required, nrequired);

	// Offenders: noted tables that still exist, sit in a guarded schema, have
	// the tenant column, got it in this transaction (or were required: moved
	// into the schema, or their exemption lapsed), and are neither protected
	// nor exempted. If the extension was dropped meanwhile, there is nothing
	// to check.
	static const char* query = "SELECT pg_catalog.string_agg(c.oid::pg_catalog.regclass::pg_catalog.text, ', ' "
	                           "                             ORDER BY c.oid::pg_catalog.regclass::pg_catalog.text) "
	                           "FROM pg_catalog.pg_class c "
	                           "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	                           "JOIN tenant_guard.guarded_schemas g ON g.schema_name = n.nspname "
	                           "WHERE c.oid = ANY ($1) AND c.relkind IN ('r', 'p') "
	                           "  AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid "
	                           "              AND a.attname = g.tenant_column AND a.attnum > 0 AND NOT a.attisdropped) "
	                           "  AND (tenant_guard._new_in_xact(c.oid, g.tenant_column) OR c.oid = ANY ($2)) "
	                           "  AND NOT EXISTS (SELECT 1 FROM tenant_guard.protected_tables p WHERE p.tbl = c.oid) "
	                           "  AND NOT EXISTS (SELECT 1 FROM tenant_guard.exemptions e WHERE e.tbl = c.oid)";

	// At PRE_COMMIT no snapshot is active; queries need one. search_path
	// pinned: an operator of the migration's own schema must not decide
	// whether a table counts as protected.
	const tenant_guard::pg::SpiScope spi = tenant_guard::pg::spi_begin(tenant_guard::pg::k_snapshot_push);
	char* offenders = nullptr;
	if (SPI_execute("SELECT pg_catalog.to_regclass('tenant_guard.guarded_schemas') IS NOT NULL", true, 1) ==
	        SPI_OK_SELECT &&
	    SPI_processed == 1) {
		bool isnull = false;
		Datum present = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull && DatumGetBool(present)) {
			Oid argtypes[2] = {OIDARRAYOID, OIDARRAYOID};
			Datum args[2] = {PointerGetDatum(oids), PointerGetDatum(must)};
			if (SPI_execute_with_args(query, 2, argtypes, args, nullptr, true, 1) != SPI_OK_SELECT)
				elog(ERROR, "tenant_guard: guardrail query failed");
			char* v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			if (v != nullptr)
				offenders = MemoryContextStrdup(TopTransactionContext, v);
		}
	}
	tenant_guard::pg::spi_end(spi);
	checking = false;

	if (offenders != nullptr)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("tenant tables in a guarded schema are not protected: %s", offenders),
		                errdetail("This transaction created these tables, added the tenant column to them, or moved "
		                          "them into a schema guarded by tenant_guard.guard_schema(); nothing of it was "
		                          "committed."),
		                errhint("Call tenant_guard.protect() on each table in the same transaction, or "
		                        "tenant_guard.exempt(table, reason) for a table that holds no tenant data.")));
}

void guard_xact_callback(XactEvent event, void*)
{
	switch (event) {
	case XACT_EVENT_PRE_COMMIT:
	case XACT_EVENT_PRE_PREPARE:
		check_pending();
		break;
	case XACT_EVENT_COMMIT:
	case XACT_EVENT_ABORT:
	case XACT_EVENT_PREPARE:
	case XACT_EVENT_PARALLEL_COMMIT:
	case XACT_EVENT_PARALLEL_ABORT:
		forget_pending();
		break;
	default:
		break;
	}
}

}  // namespace

namespace tenant_guard::guard {

void init()
{
	RegisterXactCallback(guard_xact_callback, nullptr);
}

void note(Oid rel, bool required_anyway)
{
	remember(rel, &pending, &npending, &maxpending);
	if (required_anyway)
		remember(rel, &required, &nrequired, &maxrequired);
}

}  // namespace tenant_guard::guard
