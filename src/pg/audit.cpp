/*
 * pg/audit.cpp
 *
 * The audit log's settings, in the layout of context.cpp (the
 * administrator's reason above each one), and its init(). Everything that
 * decides what the log records or who reads it is superuser-only.
 *
 * C-style glue: no C++ objects.
 */
#include "pg/audit.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

namespace tenant_guard::audit_guc {

char* retention = nullptr;
char* reader_role = nullptr;
bool skip_noop_updates = true;
int rows_per_record = 10000;

namespace {

// The retention must be a positive interval of at least one month, so a
// typo cannot make purge_audit() drop this month's records.
bool check_retention(char** newval, void**, GucSource)
{
	if (*newval == nullptr)
		return false;
	MemoryContext cxt = CurrentMemoryContext;
	bool ok = false;
	bool parsed = false;
	PG_TRY();
	{
		Interval* iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(*newval),
		                                                     ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
		parsed = true;
		ok = iv->month >= 1 && iv->day >= 0 && iv->time >= 0;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
	}
	PG_END_TRY();
	if (!parsed) {
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errdetail("The retention must be an interval such as '24 months'.");
		return false;
	}
	if (!ok) {
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errdetail("The retention must be at least one month (whole partitions are dropped).");
		return false;
	}
	return true;
}

bool check_reader_role(char** newval, void**, GucSource)
{
	if (*newval != nullptr && **newval != '\0')
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errdetail("Name the in-tenant role that may read its tenant's audit log.");
	return false;
}

}  // namespace

void init()
{
	init_shared_memory();

	/*
	 * How long audit records are kept; purge_audit() drops whole monthly
	 * partitions older than this. Superuser-only: shortening it destroys
	 * evidence.
	 */
	DefineCustomStringVariable("tenant_guard.audit_retention", "How long audit records are kept.",
	                           "An interval of at least one month; purge_audit() drops older partitions.", &retention,
	                           "24 months", PGC_SUSET, GUC_NOT_IN_SAMPLE, check_retention, nullptr, nullptr);

	/*
	 * The in-tenant role that reads its own tenant's audit log. Superuser-only:
	 * it decides who inside a tenant sees every change of that tenant.
	 */
	DefineCustomStringVariable("tenant_guard.audit_reader_role",
	                           "In-tenant role that may read its own tenant's audit log.", nullptr, &reader_role,
	                           "admin", PGC_SUSET, GUC_NOT_IN_SAMPLE, check_reader_role, nullptr, nullptr);

	/*
	 * An UPDATE that changes no audited column writes no record. Off records
	 * every UPDATE statement's rows even when nothing changed.
	 */
	DefineCustomBoolVariable("tenant_guard.audit_skip_noop_updates",
	                         "Write no audit record for an UPDATE that changes no audited column.", nullptr,
	                         &skip_noop_updates, true, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);

	/*
	 * A statement's row changes of one table and tenant go into one record;
	 * a record is written once it holds this many rows (or uses 8 MB of
	 * memory), and the statement goes on in a next record. Bounds the size
	 * of one record.
	 */
	DefineCustomIntVariable("tenant_guard.audit_rows_per_record", "Most row changes one audit record holds.", nullptr,
	                        &rows_per_record, 10000, 1, 1000000, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr,
	                        nullptr);
}

}  // namespace tenant_guard::audit_guc
