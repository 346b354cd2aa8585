/*
 * pg/grid_fmgr.cpp
 *
 * The attack grid's one C entry point:
 *
 *   tenant_guard._grid_become(app_role regrole) returns void
 *       for the rest of the current subtransaction, run as app_role inside a
 *       security-restricted operation
 *
 * The grid runs in a superuser's session and executes each attempt as the
 * application role. SET ROLE alone would let any code the attempt reaches (a
 * view's function, a trigger, an operator that the application role created)
 * run RESET ROLE or SET ROLE back to the superuser, whose session it is.
 * Inside a security-restricted operation PostgreSQL refuses SET ROLE, SET
 * SESSION AUTHORIZATION, temporary objects, LISTEN and cursors WITH HOLD, as
 * it does for the code VACUUM and REFRESH MATERIALIZED VIEW run as a table's
 * owner. Every attempt ends in a rolled-back subtransaction, whose abort
 * restores the user id and security context of the superuser.
 *
 * C-style glue: no C++ objects here, so PostgreSQL is called directly.
 */
#include "pg/boundary.hpp"

extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/syscache.h"
}

TG_C_FUNCTION(tg__grid_become)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("the application role must not be null")));
	const Oid role = PG_GETARG_OID(0);
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("only a superuser can run the attack grid's attempts")));
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("role with OID %u does not exist", role)));
	// Only inside a subtransaction (the attempt's BEGIN ... EXCEPTION block),
	// whose end gives the superuser back.
	if (GetCurrentTransactionNestLevel() < 2)
		ereport(ERROR, (errcode(ERRCODE_INVALID_TRANSACTION_STATE),
		                errmsg("tenant_guard._grid_become() must run inside a subtransaction")));
	Oid user;
	int sec;
	GetUserIdAndSecContext(&user, &sec);
	SetUserIdAndSecContext(role, sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_RETURN_VOID();
}
