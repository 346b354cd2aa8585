/*
 * pg/lifecycle_fmgr.cpp
 *
 * The write check of the tenant lifecycle (src/sql/0.2.0/60_lifecycle.sql):
 *
 *   tenant_guard._tenant_writable() returns boolean
 *       called once per statement by the restrictive tg_lifecycle_* policies
 *       of every protected table, as (SELECT tenant_guard._tenant_writable());
 *       true when the context's tenant may write, an error (42501) when it is
 *       archived or purged
 *   tenant_guard._tenants_changed() trigger (tg__relcache_changed, in
 *       crypto_fmgr.cpp) on tenant_guard.tenants: every backend drops its list
 *
 * Every write statement on a protected table pays for this check, so it does
 * not query: each backend keeps the (short) list of tenants that are not
 * active, loaded as the registry's owner and dropped by a relcache
 * invalidation that the trigger sends whenever the registry changes (also
 * seen by the changing transaction itself, and undone on rollback).
 */
#include <cstring>
#include <string>

#include "core/claims.hpp"
#include "core/error.hpp"
#include "pg/as_owner.hpp"
#include "pg/boundary.hpp"
#include "pg/context.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/uuid.h"
}

namespace tg = tenant_guard;
using tg::pg::pg_call;

namespace {

// Tenants that are archived or purged, in TopMemoryContext.
struct Blocked {
	pg_uuid_t org;
	bool purged;
};
Blocked* blocked = nullptr;
int nblocked = 0;
bool valid = false;
bool callback_registered = false;
Oid tenants_relid = InvalidOid;

void relcache_callback(Datum, Oid relid)
{
	if (relid == InvalidOid || relid == tenants_relid)
		valid = false;
}

// Plain C: runs inside pg_call, no C++ object alive in this frame.
void load_blocked()
{
	Oid relid = RangeVarGetRelid(makeRangeVar(pstrdup("tenant_guard"), pstrdup("tenants"), -1), NoLock, true);
	if (!OidIsValid(relid)) {  // not installed in this database (yet): nothing is blocked
		nblocked = 0;
		return;
	}
	tenants_relid = relid;
	if (!callback_registered) {
		CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	tg::pg::run_as_owner(relid, [](void*) {
		int rc = SPI_execute("SELECT org_id, status OPERATOR(pg_catalog.=) 'purged' FROM tenant_guard.tenants "
		                     "WHERE status OPERATOR(pg_catalog.<>) 'active'",
		                     true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "tenant_guard: tenant registry query failed: %s", SPI_result_code_string(rc));
		Blocked* list = static_cast<Blocked*>(
		    MemoryContextAlloc(TopMemoryContext, sizeof(Blocked) * (SPI_processed > 0 ? SPI_processed : 1)));
		for (uint64 i = 0; i < SPI_processed; ++i) {
			bool isnull;
			Datum org = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			Datum purged = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
			std::memcpy(&list[i].org, DatumGetUUIDP(org), sizeof(pg_uuid_t));
			list[i].purged = DatumGetBool(purged);
		}
		if (blocked != nullptr)
			pfree(blocked);
		blocked = list;
		nblocked = static_cast<int>(SPI_processed);
	}, nullptr);
	valid = true;
}

}  // namespace

// tenant_guard._tenant_writable() returns boolean
TG_FUNCTION(_tenant_writable)
{
	const tg::claims::Context& ctx = tg::context::current();
	if (!ctx.org)
		PG_RETURN_BOOL(true);
	const tg::claims::Uuid org = *ctx.org;
	if (!valid)
		pg_call([] { load_blocked(); });
	for (int i = 0; i < nblocked; ++i) {
		if (std::memcmp(blocked[i].org.data, org.data(), org.size()) != 0)
			continue;
		const bool purged = blocked[i].purged;
		throw tg::Error(tg::sqlstate::k_insufficient_privilege,
		                "tenant " + tg::claims::format_uuid(org) + (purged ? " is purged" : " is archived") +
		                    ": its data is read-only",
		                "Writes of an archived or purged tenant are refused for every role in its context; reads "
		                "and export still work.",
		                purged ? "A purged tenant cannot be written to again; use a new org id."
		                       : "A platform administrator can make it writable again with "
		                         "tenant_guard.reactivate_tenant().");
	}
	PG_RETURN_BOOL(true);
}
