/*
 * pg/adoption_fmgr.cpp
 *
 * The way in and out of tenant_guard (src/sql/0.2.0/70_adoption.sql):
 *
 *   tenant_guard._refuse_extension_drop() returns event_trigger
 *       ddl_command_start of DROP EXTENSION: refuses to drop tenant_guard while
 *       tables are protected (the drop, with CASCADE, would take their policies
 *       and leave row-level security + FORCE with no policy: the application
 *       would see nothing). tenant_guard.uninstall() removes the protection
 *       first; allow_unsafe_ddl, turned on in the transaction, lets it through.
 *   tenant_guard.begin_maintenance(org text, reason text, in_tenant_role text)
 *       returns void
 *       the maintenance context of a migration: tenant_guard._maintenance_claims()
 *       (SECURITY DEFINER) decides whether the session may have it (superusers
 *       and roles a superuser granted it to) and records it in the audit log;
 *       the claims it returns become the context of the rest of the
 *       transaction (SET LOCAL semantics). Nothing here takes claims from the
 *       caller.
 */
#include <cstring>

#include "core/error.hpp"
#include "pg/as_owner.hpp"
#include "pg/boundary.hpp"
#include "pg/spi.hpp"
#include "pg/guc.hpp"

extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/value.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
}

namespace tg = tenant_guard;
using tg::Error;
using tg::pg::pg_call;

namespace {

bool names_tenant_guard(List* objects)
{
	ListCell* lc;
	foreach (lc, objects) {
		Node* n = static_cast<Node*>(lfirst(lc));
		if (IsA(n, String) && std::strcmp(strVal(n), "tenant_guard") == 0)
			return true;
	}
	return false;
}

// Plain C frame (through pg_call): the protected root tables, or refuse.
void check_drop(void*)
{
	const tg::pg::SpiScope spi = tg::pg::spi_begin();
	char* tables = nullptr;
	int rc = SPI_execute("SELECT pg_catalog.string_agg(p.tbl::pg_catalog.text, ', ' ORDER BY p.tbl::pg_catalog.text) "
	                     "FROM tenant_guard.protected_tables p WHERE p.parent IS NULL",
	                     true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "tenant_guard: protected table query failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
		tables = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (tables != nullptr)
		tables = MemoryContextStrdup(CurTransactionContext, tables);
	tg::pg::spi_end(spi);
	if (tables == nullptr)
		return;
	if (tg::guc::unsafe_ddl_allowed()) {
		ereport(WARNING, (errmsg("dropping tenant_guard leaves these tables with row-level security, FORCE and no "
		                         "policy: %s",
		                         tables),
		                  errdetail("tenant_guard.allow_unsafe_ddl is on in this transaction."),
		                  errhint("Non-owners and the owners see no row of them until they get policies or row-level "
		                          "security is turned off.")));
		return;
	}
	ereport(ERROR, (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
	                errmsg("cannot drop extension tenant_guard while tables are protected: %s", tables),
	                errdetail("The drop would remove their policies and leave row-level security and FORCE on: the "
	                          "application would see no row."),
	                errhint("Call tenant_guard.uninstall() first (it unguards every schema and unprotects every "
	                        "table), then DROP EXTENSION tenant_guard.")));
}

struct Maintenance {
	Datum args[3];
	char nulls[4];
};

// Plain C frame (through pg_call): asks _maintenance_claims() and sets the
// context for the rest of the transaction.
void begin_maintenance(void* arg)
{
	Maintenance* m = static_cast<Maintenance*>(arg);
	const tg::pg::SpiScope spi = tg::pg::spi_begin();
	Oid argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	int rc = SPI_execute_with_args("SELECT tenant_guard._maintenance_claims($1, $2, $3)", 3, argtypes, m->args,
	                               m->nulls, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "tenant_guard: maintenance authorization failed: %s", SPI_result_code_string(rc));
	char* claims = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (claims == nullptr)
		elog(ERROR, "tenant_guard: maintenance authorization returned no claims");
	claims = MemoryContextStrdup(CurTransactionContext, claims);
	tg::pg::spi_end(spi);
	tg::guc::set_signed_context(claims, true);
	// Row-level security does not hold a superuser (or BYPASSRLS) to the
	// tenant: its statements see every tenant's rows whatever the context.
	if (superuser() || has_bypassrls_privilege(GetUserId()))
		ereport(NOTICE, (errmsg("row-level security does not apply to role \"%s\": its statements reach every "
		                        "tenant's rows in this maintenance context",
		                        GetUserNameFromId(GetUserId(), false)),
		                 errhint("Filter by tenant in each statement (WHERE org_id = "
		                         "tenant_guard.current_user_org_id()), or run the migration as a role granted "
		                         "maintenance that does not bypass row-level security.")));
}

}  // namespace

// tenant_guard._refuse_extension_drop() returns event_trigger
TG_FUNCTION(tg__refuse_extension_drop)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		throw Error(tg::sqlstate::k_invalid_parameter_value, "not called as an event trigger");
	auto* data = reinterpret_cast<EventTriggerData*>(fcinfo->context);
	Node* tree = data->parsetree;
	if (tree == nullptr || !IsA(tree, DropStmt))
		PG_RETURN_VOID();
	auto* drop = reinterpret_cast<DropStmt*>(tree);
	if (drop->removeType != OBJECT_EXTENSION || !names_tenant_guard(drop->objects))
		PG_RETURN_VOID();
	pg_call([] { check_drop(nullptr); });
	PG_RETURN_VOID();
}

// tenant_guard.begin_maintenance(org text, reason text, in_tenant_role text) returns void
TG_FUNCTION(tg_begin_maintenance)
{
	Maintenance m{};
	for (int i = 0; i < 3; ++i) {
		m.args[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		m.nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	m.nulls[3] = '\0';
	pg_call([&] { begin_maintenance(&m); });
	PG_RETURN_VOID();
}
