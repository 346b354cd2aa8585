/*
 * pg/hooks.cpp
 *
 * Runtime guards for application roles (tenant_guard.app_roles_in_effect()),
 * installed as a ProcessUtility hook when tenant_guard is in
 * shared_preload_libraries, and only then: a guard that depended on whether
 * some earlier statement of the session happened to load the library would be
 * no guard at all.
 *
 *   TRUNCATE of a table with row-level security (every protected table) by an
 *   application role is refused even when TRUNCATE is granted: TRUNCATE
 *   ignores row-level security and empties every tenant's rows. TRUNCATE ...
 *   CASCADE by an application role is refused outright. Setting:
 *   tenant_guard.block_app_truncate (default on, superuser-only).
 *
 *   EXPLAIN ANALYZE by an application role is refused, whatever it explains:
 *   its actual row counts ("Rows Removed by Filter", per-node counts) reveal
 *   how many rows of other tenants the policies filtered out, and a protected
 *   table can hide behind an inlined function, a view or a prepared
 *   statement. Setting: tenant_guard.block_explain_analyze (default on,
 *   superuser-only).
 *
 *   DECLARE ... WITH HOLD and LISTEN by an application role are refused:
 *   a held cursor and a LISTEN outlive the transaction, so behind a
 *   transaction pooler the next client of the connection, whatever its
 *   tenant, lists the cursor in pg_cursors and fetches it, or receives the
 *   notifications; and LISTEN receives the NOTIFY payloads of every session
 *   of the database. Settings: tenant_guard.block_app_hold_cursors and
 *   tenant_guard.block_app_listen (default on, superuser-only).
 *
 *   tenant_guard._runtime_guards() returns boolean tells whether this
 *   backend has the hook (lint() reports when it does not).
 *
 * C-style glue: no C++ objects, so PostgreSQL is called directly.
 */
#include "pg/hooks.hpp"

#include "pg/as_owner.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

namespace {

bool block_explain_analyze = true;
bool block_app_truncate = true;
bool block_app_hold_cursors = true;
bool block_app_listen = true;
bool installed = false;
ProcessUtility_hook_type prev_utility = nullptr;

bool rel_has_rls(Oid relid)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return false;
	bool rls = ((Form_pg_class) GETSTRUCT(tup))->relrowsecurity;
	ReleaseSysCache(tup);
	return rls;
}

// Is the current user an application role of this database? False when
// tenant_guard is not installed here, and for superusers. The same rule as
// tenant_guard.app_roles_in_effect() (src/sql/0.2.0/10_app_roles.sql): the
// registered roles or, with none registered, every login role that is not
// predefined. Written out here, with a plan kept for the backend's life and
// search_path pinned while it runs, because calling the SQL function (which
// cannot be inlined: it pins search_path itself) costs about a millisecond.
const char* const k_app_role_query =
    "SELECT NOT r.rolsuper AND CASE WHEN EXISTS (SELECT 1 FROM tenant_guard.app_roles) "
    "THEN EXISTS (SELECT 1 FROM tenant_guard.app_roles a WHERE a.role = r.oid) "
    "ELSE r.rolcanlogin AND r.rolname !~~ 'pg\\_%' END "
    "FROM pg_catalog.pg_roles r WHERE r.oid = $1";
SPIPlanPtr app_role_plan = nullptr;

bool current_user_is_app_role()
{
	if (superuser() || !OidIsValid(get_extension_oid("tenant_guard", true)))
		return false;
	// A database still at extension version 0.1.0 has no registry yet: no
	// application roles there until ALTER EXTENSION tenant_guard UPDATE.
	if (!OidIsValid(RangeVarGetRelid(makeRangeVar(pstrdup("tenant_guard"), pstrdup("app_roles"), -1), NoLock, true)))
		return false;
	// On error the transaction's abort pops the GUC nest level and SPI.
	const tenant_guard::pg::SpiScope spi = tenant_guard::pg::spi_begin(tenant_guard::pg::k_snapshot_if_missing);
	if (app_role_plan == nullptr) {
		Oid argtypes[1] = {OIDOID};
		app_role_plan = tenant_guard::pg::spi_keep_plan(k_app_role_query, 1, argtypes, "the application role look-up");
	}
	Datum args[1] = {ObjectIdGetDatum(GetUserId())};
	int rc = SPI_execute_plan(app_role_plan, args, nullptr, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "tenant_guard: application role look-up failed: %s", SPI_result_code_string(rc));
	bool result = false;
	if (SPI_processed == 1) {
		bool isnull;
		Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		result = !isnull && DatumGetBool(d);
	}
	tenant_guard::pg::spi_end(spi);
	return result;
}

void refuse_truncate(const char* what, Oid relid)
{
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
	                errmsg("%s of table %s is not allowed for application role %s", what,
	                       quote_identifier(get_rel_name(relid)), GetUserNameFromId(GetUserId(), false)),
	                errdetail("TRUNCATE ignores row-level security and would remove the rows of every tenant."),
	                errhint("Delete the tenant's rows with DELETE; tenant_guard.block_app_truncate controls "
	                        "this guard.")));
}

// The role check runs a catalog query, so it comes last: only a statement
// that would touch a table with row-level security pays for it.
void check_truncate(TruncateStmt* stmt)
{
	if (superuser())
		return;
	Oid first_rls = InvalidOid;
	ListCell* lc;
	foreach (lc, stmt->relations) {
		RangeVar* rv = lfirst_node(RangeVar, lc);
		Oid relid = RangeVarGetRelid(rv, NoLock, true);
		if (!OidIsValid(relid))
			continue;  // PostgreSQL reports the missing table itself
		if (stmt->behavior == DROP_CASCADE) {
			if (current_user_is_app_role())
				refuse_truncate("TRUNCATE ... CASCADE", relid);
			return;
		}
		List* rels = rv->inh ? find_all_inheritors(relid, NoLock, nullptr) : list_make1_oid(relid);
		ListCell* rc;
		foreach (rc, rels)
			if (!OidIsValid(first_rls) && rel_has_rls(lfirst_oid(rc)))
				first_rls = lfirst_oid(rc);
	}
	if (OidIsValid(first_rls) && current_user_is_app_role())
		refuse_truncate("TRUNCATE", first_rls);
}

// EXPLAIN ANALYZE by an application role is refused whatever it explains.
// Judging what the statement reads is not enough: an inlined SQL function,
// a prepared statement, a view or a CTE can all hide a protected table from a
// look before planning, and every plan node's actual row count ("Rows Removed
// by Filter") is an oracle on other tenants' rows.
void check_explain(ExplainStmt* stmt)
{
	bool analyze = false;
	ListCell* lc;
	foreach (lc, stmt->options) {
		DefElem* opt = lfirst_node(DefElem, lc);
		if (strcmp(opt->defname, "analyze") == 0)
			analyze = defGetBoolean(opt);
	}
	if (!analyze || superuser() || !current_user_is_app_role())
		return;
	ereport(ERROR,
	        (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
	         errmsg("EXPLAIN ANALYZE is not allowed for application role %s", GetUserNameFromId(GetUserId(), false)),
	         errdetail("The actual row counts of EXPLAIN ANALYZE reveal rows of other tenants that "
	                   "row-level security filtered out, whatever the statement reads it through."),
	         errhint("Use EXPLAIN without ANALYZE, or run it as a role that is not an application "
	                 "role; tenant_guard.block_explain_analyze controls this guard.")));
}

// Session state that outlives the transaction, which a transaction pooler
// hands to the next client: cursors WITH HOLD and LISTEN.
void check_session_state(Node* parsetree)
{
	const char* what = nullptr;
	const char* detail = nullptr;
	const char* hint = nullptr;
	if (block_app_hold_cursors && IsA(parsetree, DeclareCursorStmt) &&
	    (((DeclareCursorStmt*) parsetree)->options & CURSOR_OPT_HOLD) != 0) {
		what = "DECLARE ... WITH HOLD";
		detail = "A cursor WITH HOLD outlives its transaction: behind a transaction pooler the next client of the "
		         "connection, whatever its tenant, lists it in pg_cursors and fetches its rows.";
		hint = "Declare the cursor without HOLD inside the transaction; tenant_guard.block_app_hold_cursors "
		       "controls this guard.";
	} else if (block_app_listen && IsA(parsetree, ListenStmt)) {
		what = "LISTEN";
		detail = "A listening session receives the notifications of every session of the database, whatever its "
		         "tenant, and behind a transaction pooler its LISTEN stays with the connection for the next client.";
		hint = "Listen from a role that is not an application role; tenant_guard.block_app_listen controls this "
		       "guard.";
	}
	if (what == nullptr || superuser() || !current_user_is_app_role())
		return;
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
	                errmsg("%s is not allowed for application role %s", what, GetUserNameFromId(GetUserId(), false)),
	                errdetail("%s", detail), errhint("%s", hint)));
}

void utility_hook(PlannedStmt* pstmt, const char* queryString, bool readOnlyTree, ProcessUtilityContext context,
                  ParamListInfo params, QueryEnvironment* queryEnv, DestReceiver* dest, QueryCompletion* qc)
{
	Node* parsetree = pstmt->utilityStmt;
	if (block_app_truncate && IsA(parsetree, TruncateStmt))
		check_truncate((TruncateStmt*) parsetree);
	else if (block_explain_analyze && IsA(parsetree, ExplainStmt))
		check_explain((ExplainStmt*) parsetree);
	else if (IsA(parsetree, DeclareCursorStmt) || IsA(parsetree, ListenStmt))
		check_session_state(parsetree);
	if (prev_utility != nullptr)
		prev_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

}  // namespace

namespace tenant_guard::hooks {

void init()
{
	DefineCustomBoolVariable("tenant_guard.block_explain_analyze", "Refuses EXPLAIN ANALYZE to application roles.",
	                         "Its row counts reveal other tenants' rows. Needs shared_preload_libraries.",
	                         &block_explain_analyze, true, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("tenant_guard.block_app_truncate",
	                         "Refuses TRUNCATE of tables with row-level security to application roles.",
	                         "TRUNCATE ignores row-level security. Needs shared_preload_libraries.",
	                         &block_app_truncate, true, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("tenant_guard.block_app_hold_cursors",
	                         "Refuses DECLARE ... WITH HOLD to application roles.",
	                         "A held cursor outlives the transaction: a pooler hands it to the next client. Needs "
	                         "shared_preload_libraries.",
	                         &block_app_hold_cursors, true, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("tenant_guard.block_app_listen", "Refuses LISTEN to application roles.",
	                         "Notifications reach every listening session whatever its tenant. Needs "
	                         "shared_preload_libraries.",
	                         &block_app_listen, true, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
	if (process_shared_preload_libraries_in_progress) {
		prev_utility = ProcessUtility_hook;
		ProcessUtility_hook = utility_hook;
		installed = true;
	}
}

}  // namespace tenant_guard::hooks

// tenant_guard._runtime_guards() returns boolean
TG_C_FUNCTION(tg__runtime_guards)
{
	PG_RETURN_BOOL(installed);
}
