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
 *       shared_fmgr.cpp) on tenant_guard.tenants: every backend drops its list
 *
 * Every write statement on a protected table pays for this check, so it does
 * not query: each backend keeps the (short) list of tenants that are not
 * active, loaded as the registry's owner and dropped by a relcache
 * invalidation that the trigger sends whenever the registry changes (also
 * seen by the changing transaction itself, and undone on rollback).
 *
 * The list must never be built from a stale snapshot: a REPEATABLE READ
 * transaction whose snapshot predates an archive or a purge would otherwise
 * load the tenant as active, and the list would then stay valid for the
 * backend's life (no later invalidation comes). So the registry is read with
 * a fresh snapshot (GetLatestSnapshot, which also sees the current
 * transaction's own changes), taken after the pending invalidations are
 * processed; a commit not in that snapshot sends its invalidation after it
 * became visible, so it arrives later and drops the list again. An
 * invalidation that arrives while the list loads leaves it unmarked (used for
 * this call, reloaded at the next). Each call also processes pending
 * invalidations first, so an archive committed by another backend counts from
 * the next write statement even inside a transaction that already holds its
 * locks. In parallel mode (a direct call from a parallel query; writes never
 * run in parallel mode) GetLatestSnapshot() is refused; a catalog snapshot of
 * the registry, taken afresh for a table without a syscache, serves instead.
 */
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
#include "access/xact.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/builtins.h"
}

namespace tg = tenant_guard;
using tg::pg::pg_call;

namespace {

// Tenants that are archived or purged (their registry keys: the canonical
// text form of the tenant id), in blocked_context.
struct Blocked {
	const char* org;
	bool purged;
};
MemoryContext blocked_context = nullptr;
Blocked* blocked = nullptr;
int nblocked = 0;
bool valid = false;
bool callback_registered = false;
Oid tenants_relid = InvalidOid;
// Counts the invalidations of the registry, to notice one during a load.
uint64 invalidations = 0;

void relcache_callback(Datum, Oid relid)
{
	if (relid == InvalidOid || relid == tenants_relid) {
		valid = false;
		++invalidations;
	}
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
	// Invalidations sent before the snapshot below are processed now; any
	// later one is counted and keeps the list from being marked valid.
	AcceptInvalidationMessages();
	const uint64 seen = invalidations;
	tg::pg::run_as_owner(
	    relid,
	    [](void* arg) {
		    const Oid registry = *static_cast<const Oid*>(arg);
		    SPIPlanPtr plan =
		        SPI_prepare("SELECT org_id, status OPERATOR(pg_catalog.=) 'purged' FROM tenant_guard.tenants "
		                    "WHERE status OPERATOR(pg_catalog.<>) 'active'",
		                    0, nullptr);
		    if (plan == nullptr)
			    elog(ERROR, "tenant_guard: tenant registry query failed: %s", SPI_result_code_string(SPI_result));
		    Snapshot snap = IsInParallelMode() ? GetCatalogSnapshot(registry) : GetLatestSnapshot();
		    int rc = SPI_execute_snapshot(plan, nullptr, nullptr, snap, InvalidSnapshot, true, false, 0);
		    if (rc != SPI_OK_SELECT)
			    elog(ERROR, "tenant_guard: tenant registry query failed: %s", SPI_result_code_string(rc));
		    // A fresh context per load, under the current (SPI) one until the
		    // list is complete (an error frees it), then kept; the old list
		    // goes with the old context.
		    MemoryContext cxt =
		        AllocSetContextCreate(CurrentMemoryContext, "tenant_guard blocked tenants", ALLOCSET_SMALL_SIZES);
		    Blocked* list = static_cast<Blocked*>(
		        MemoryContextAlloc(cxt, sizeof(Blocked) * (SPI_processed > 0 ? SPI_processed : 1)));
		    for (uint64 i = 0; i < SPI_processed; ++i) {
			    bool isnull;
			    Datum org = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			    Datum purged = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
			    list[i].org = MemoryContextStrdup(cxt, TextDatumGetCString(org));
			    list[i].purged = DatumGetBool(purged);
		    }
		    MemoryContextSetParent(cxt, TopMemoryContext);
		    if (blocked_context != nullptr)
			    MemoryContextDelete(blocked_context);
		    blocked_context = cxt;
		    blocked = list;
		    nblocked = static_cast<int>(SPI_processed);
	    },
	    &relid);
	valid = invalidations == seen;
}

}  // namespace

// tenant_guard._tenant_writable() returns boolean
TG_FUNCTION(tg__tenant_writable)
{
	const tg::claims::Context& ctx = tg::context::current();
	if (!ctx.org_key)
		PG_RETURN_BOOL(true);
	// The registry keys a tenant by the canonical text form of its id: the
	// claim as it is, or (a uuid claim in upper case) its lower-case form.
	const std::string key = *ctx.org_key;
	const std::string uuid_key = ctx.org ? tg::claims::format_uuid(*ctx.org) : std::string();
	// A registry change committed by another backend since this backend last
	// looked drops the list (cheap when nothing is pending).
	pg_call([] {
		AcceptInvalidationMessages();
		if (!valid)
			load_blocked();
	});
	for (int i = 0; i < nblocked; ++i) {
		if (key != blocked[i].org && (uuid_key.empty() || uuid_key != blocked[i].org))
			continue;
		const bool purged = blocked[i].purged;
		const std::string name = blocked[i].org;
		throw tg::Error(tg::sqlstate::k_insufficient_privilege,
		                "tenant " + name + (purged ? " is purged" : " is archived") + ": its data is read-only",
		                "Writes of an archived or purged tenant are refused for every role in its context; reads "
		                "and export still work.",
		                purged ? "A purged tenant cannot be written to again; use a new org id."
		                       : "A platform administrator can make it writable again with "
		                         "tenant_guard.reactivate_tenant().");
	}
	PG_RETURN_BOOL(true);
}
