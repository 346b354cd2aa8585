/*
 * pg/guard_fmgr.cpp
 *
 * The commit-time migration guardrail of tenant_guard.guard_schema(): in a
 * guarded schema, a transaction that creates a table with the tenant column,
 * or adds the tenant column to a table, must leave that table protected (or
 * exempted) by COMMIT; otherwise the COMMIT fails and nothing of the
 * migration is committed.
 *
 *   tenant_guard._guard_note(rel regclass) returns void
 *       called by the ddl_command_end event trigger for every table a DDL
 *       command created or altered in a guarded schema; remembers it for the
 *       end of the transaction
 *   tenant_guard._guard_require(rel regclass) returns void
 *       (0.2.0) like _guard_note, and the table counts even though neither it
 *       nor its tenant column is new in this transaction: a table moved into
 *       a guarded schema (ALTER TABLE ... SET SCHEMA), or an exempted table
 *       that gained the tenant column (its exemption lapsed)
 *   tenant_guard._new_in_xact(rel regclass, col name) returns boolean
 *       true when the table, or its column `col`, was created by the current
 *       transaction (the xmin of its catalog rows)
 *   tenant_guard._unsafe_ddl_allowed() returns boolean
 *       tenant_guard.allow_unsafe_ddl is on, turned on in this transaction
 *
 * The check at COMMIT is guard.cpp's.
 *
 * C-style glue: no C++ objects here, so PostgreSQL is called directly.
 */
#include "pg/boundary.hpp"
#include "pg/guard.hpp"
#include "pg/guc.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "fmgr.h"
#include "utils/syscache.h"
}

// tenant_guard._guard_note(rel regclass) returns void
TG_C_FUNCTION(tg__guard_note)
{
	tenant_guard::guard::note(PG_GETARG_OID(0), false);
	PG_RETURN_VOID();
}

// tenant_guard._guard_require(rel regclass) returns void
TG_C_FUNCTION(tg__guard_require)
{
	tenant_guard::guard::note(PG_GETARG_OID(0), true);
	PG_RETURN_VOID();
}

// tenant_guard._new_in_xact(rel regclass, col name) returns boolean
TG_C_FUNCTION(tg__new_in_xact)
{
	Oid rel = PG_GETARG_OID(0);
	Name col = PG_GETARG_NAME(1);
	bool is_new = false;
	// The pg_attribute row of a system column is written once, by CREATE TABLE.
	HeapTuple t = SearchSysCache2(ATTNUM, ObjectIdGetDatum(rel), Int16GetDatum(SelfItemPointerAttributeNumber));
	if (HeapTupleIsValid(t)) {
		is_new = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(t->t_data));
		ReleaseSysCache(t);
	}
	if (!is_new) {
		t = SearchSysCacheAttName(rel, NameStr(*col));
		if (HeapTupleIsValid(t)) {
			is_new = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(t->t_data));
			ReleaseSysCache(t);
		}
	}
	PG_RETURN_BOOL(is_new);
}

// tenant_guard._unsafe_ddl_allowed() returns boolean
TG_C_FUNCTION(tg__unsafe_ddl_allowed)
{
	PG_RETURN_BOOL(tenant_guard::guc::unsafe_ddl_allowed());
}
