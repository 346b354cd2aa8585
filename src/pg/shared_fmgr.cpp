/*
 * pg/shared_fmgr.cpp
 *
 * SQL entry points several features share:
 *
 *   tenant_guard._ddl_command_kinds(cmd pg_ddl_command) returns text[]
 *       what a collected DDL command does (the guards on protected tables,
 *       the audit's partitions, the migration guardrail)
 *   C symbol tg__relcache_changed: the statement trigger behind
 *       tenant_guard._tenant_keys_changed() (column encryption) and
 *       tenant_guard._tenants_changed() (lifecycle)
 *
 * C-style glue: no C++ objects here, so PostgreSQL is called directly.
 */
#include "pg/boundary.hpp"
#include "pg/compat.hpp"

extern "C" {
#include "postgres.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "tcop/deparse_utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

/*
 * tenant_guard._ddl_command_kinds(cmd pg_ddl_command) returns text[]
 *
 * What one collected DDL command does that the guards on protected tables
 * care about: 'disable row level security', 'no force row level security',
 * 'owner', 'rename column <name>'; and for the audit's partitions 'attach
 * partition', 'detach partition'; and for the migration guardrail (0.2.0)
 * 'add column <name>', 'rename column to <new name>', 'set schema'. The guards
 * judge the command, not the table's state, so restoring a dump (where RLS is
 * switched on last) passes.
 */
TG_C_FUNCTION(tg__ddl_command_kinds)
{
	CollectedCommand* cmd = reinterpret_cast<CollectedCommand*>(PG_GETARG_POINTER(0));
	Datum kinds[64];
	int n = 0;
	if (cmd->type == SCT_AlterTable) {
		ListCell* lc;
		foreach (lc, cmd->d.alterTable.subcmds) {
			CollectedATSubcmd* sub = static_cast<CollectedATSubcmd*>(lfirst(lc));
			if (sub->parsetree == nullptr || !IsA(sub->parsetree, AlterTableCmd) || n >= 64)
				continue;
			AlterTableCmd* at = reinterpret_cast<AlterTableCmd*>(sub->parsetree);
			const char* kind = nullptr;
			switch (at->subtype) {
			case AT_DisableRowSecurity:
				kind = "disable row level security";
				break;
			case AT_NoForceRowSecurity:
				kind = "no force row level security";
				break;
			case AT_ChangeOwner:
				kind = "owner";
				break;
			case AT_AttachPartition:
				kind = "attach partition";
				break;
			case AT_DetachPartition:
			case AT_DetachPartitionFinalize:
				kind = "detach partition";
				break;
			default:
				if (tenant_guard::pg::compat::is_add_column(at->subtype) && at->def != nullptr &&
				    IsA(at->def, ColumnDef) && reinterpret_cast<ColumnDef*>(at->def)->colname != nullptr)
					kind = psprintf("add column %s", reinterpret_cast<ColumnDef*>(at->def)->colname);
				break;
			}
			if (kind != nullptr)
				kinds[n++] = CStringGetTextDatum(kind);
		}
	} else if (cmd->type == SCT_Simple && cmd->parsetree != nullptr && IsA(cmd->parsetree, RenameStmt)) {
		RenameStmt* r = reinterpret_cast<RenameStmt*>(cmd->parsetree);
		if (r->renameType == OBJECT_COLUMN && r->subname != nullptr)
			kinds[n++] = CStringGetTextDatum(psprintf("rename column %s", r->subname));
		if (r->renameType == OBJECT_COLUMN && r->newname != nullptr)
			kinds[n++] = CStringGetTextDatum(psprintf("rename column to %s", r->newname));
	} else if (cmd->type == SCT_Simple && cmd->parsetree != nullptr && IsA(cmd->parsetree, AlterObjectSchemaStmt)) {
		kinds[n++] = CStringGetTextDatum("set schema");
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(kinds, n, TEXTOID, -1, false, TYPALIGN_INT));
}

// Statement trigger behind tenant_guard._tenant_keys_changed() and
// tenant_guard._tenants_changed() (lifecycle): sends a relcache invalidation
// for the trigger's own table, so every backend drops what it cached from it
// (crypto_keys.cpp the tenant keys, lifecycle_fmgr.cpp the non-active tenants).
TG_C_FUNCTION(tg__relcache_changed)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("%s must be called as a trigger", get_func_name(fcinfo->flinfo->fn_oid))));
	auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
	CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
	return PointerGetDatum(nullptr);
}
