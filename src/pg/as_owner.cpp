/*
 * pg/as_owner.cpp: see as_owner.hpp. C-style glue: no C++ objects.
 */
#include "pg/as_owner.hpp"

#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/syscache.h"
}

namespace tenant_guard::pg {

void run_as_owner(Oid relid, void (*fn)(void*), void* arg)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "tenant_guard: cache lookup failed for relation %u", relid);
	const Oid owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	Oid save_user;
	int save_sec;
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		const SpiScope spi = spi_begin();
		fn(arg);
		spi_end(spi);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
}

}  // namespace tenant_guard::pg
