/*
 * pg/planner.cpp
 *
 * The tenant context evaluated once per query in row-level security
 * policies (tenant_guard.context_once_per_query, default on; needs
 * shared_preload_libraries).
 *
 * A policy written `org_id = tenant_guard.current_user_org_id()` (the form
 * Citus accepts, and the one most users write) calls the accessor once per
 * row the scan reads: on a full scan that call is most of the policy's cost.
 * Written `org_id = (SELECT tenant_guard.current_user_org_id())`, PostgreSQL
 * evaluates it once per execution (an InitPlan) and compares each row with
 * its value. The accessors are STABLE, so the two forms mean the same within
 * a statement; this planner hook gives every policy the second form: before
 * planning, each zero-argument call of a tenant_guard context accessor in the
 * security quals of a relation (row-level security policies, USING part,
 * including the Citus shard wall) becomes that sub-select. Nothing else of
 * the query is touched: WITH CHECK expressions, the query's own quals and
 * targets, the accessors anywhere else (inside a policy's own sub-select, or
 * reached through a SQL function the planner inlines later) keep their form,
 * and so do partitioned tables (see rewrite()).
 *
 * Skipped when the query reads a Citus table (distributed, reference or
 * Citus-managed local table): Citus plans those itself and pushes the
 * policies to the shards, where the workers' own planner hooks rewrite them.
 * Citus's IsCitusTable() is looked up by name in the loaded citus library,
 * never linked; without it, queries are left as they are whenever Citus is
 * loaded.
 *
 * C-style glue: no C++ objects, so PostgreSQL is called directly.
 */
#include "pg/planner.hpp"

#include "pg/citus.hpp"
#include "pg/compat.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "optimizer/planner.h"
#include "utils/guc.h"
#include "utils/syscache.h"
}

#include <cstring>

namespace {

bool context_once_per_query = true;
planner_hook_type prev_planner = nullptr;

// The STABLE zero-argument functions whose value is the same for every row of
// a statement: the context accessors and the lifecycle write check.
constexpr const char* k_accessors[] = {
    "current_user_org_id", "current_user_org_text", "current_user_org_bigint", "current_user_id",
    "current_user_role",   "current_impersonator",  "_tenant_writable",
};

using IsCitusTableFn = bool (*)(Oid);
IsCitusTableFn is_citus_table = nullptr;
bool citus_looked_up = false;

struct Walk {
	Oid schema;        // tenant_guard's schema
	bool quals;        // some relation has security quals
	bool citus;        // some relation is a Citus table (or Citus cannot tell)
	bool check_citus;  // Citus is loaded
	int hoisted;       // calls rewritten so far
};

bool is_accessor(Oid funcid, Oid schema)
{
	HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
		return false;
	const Form_pg_proc p = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tup));
	bool match = p->pronamespace == schema && p->pronargs == 0 && !p->proretset && p->provolatile == PROVOLATILE_STABLE;
	if (match) {
		match = false;
		for (const char* name : k_accessors)
			if (std::strcmp(NameStr(p->proname), name) == 0)
				match = true;
	}
	ReleaseSysCache(tup);
	return match;
}

// (SELECT fn()): planned as an InitPlan whose value the quals compare with.
Node* once(const FuncExpr* fn)
{
	Query* sub = makeNode(Query);
	sub->commandType = CMD_SELECT;
	sub->querySource = QSRC_ORIGINAL;
	sub->canSetTag = true;
	sub->jointree = makeFromExpr(NIL, nullptr);
	sub->targetList =
	    list_make1(makeTargetEntry(static_cast<Expr*>(copyObjectImpl(fn)), 1, pstrdup("tenant_guard_context"), false));
	SubLink* link = makeNode(SubLink);
	link->subLinkType = EXPR_SUBLINK;
	link->subLinkId = 0;
	link->testexpr = nullptr;
	link->operName = NIL;
	link->subselect = reinterpret_cast<Node*>(sub);
	link->location = fn->location;
	return reinterpret_cast<Node*>(link);
}

Node* hoist(Node* node, void* context)
{
	if (node == nullptr)
		return nullptr;
	// A sub-select of a policy is a query of its own: left as it is (its
	// relations' security quals are reached by the walk).
	if (IsA(node, Query))
		return node;
	if (IsA(node, FuncExpr)) {
		const FuncExpr* fn = reinterpret_cast<FuncExpr*>(node);
		Walk* w = static_cast<Walk*>(context);
		if (fn->args == NIL && !fn->funcretset && is_accessor(fn->funcid, w->schema)) {
			w->hoisted++;
			return once(fn);
		}
	}
	return tenant_guard::pg::compat::expression_mutator(node, hoist, context);
}

// Pass 1: are there security quals, and Citus tables?
bool survey(Node* node, void* context)
{
	if (node == nullptr)
		return false;
	Walk* w = static_cast<Walk*>(context);
	if (IsA(node, Query)) {
		Query* q = reinterpret_cast<Query*>(node);
		ListCell* lc;
		foreach (lc, q->rtable) {
			const RangeTblEntry* rte = static_cast<RangeTblEntry*>(lfirst(lc));
			if (rte->rtekind != RTE_RELATION)
				continue;
			if (rte->securityQuals != NIL)
				w->quals = true;
			if (w->check_citus && (is_citus_table == nullptr || is_citus_table(rte->relid)))
				w->citus = true;
		}
		if (w->citus)
			return true;
		return tenant_guard::pg::compat::query_walker(q, survey, context, 0);
	}
	return tenant_guard::pg::compat::expression_walker(node, survey, context);
}

// Pass 2: rewrite every relation's security quals.
bool rewrite(Node* node, void* context)
{
	if (node == nullptr)
		return false;
	if (IsA(node, Query)) {
		Query* q = reinterpret_cast<Query*>(node);
		ListCell* lc;
		foreach (lc, q->rtable) {
			RangeTblEntry* rte = static_cast<RangeTblEntry*>(lfirst(lc));
			// A partitioned table keeps the per-row form: with a STABLE call
			// the executor prunes its partitions before starting them, with
			// an InitPlan's value only after starting every one (measured:
			// 500 partitions, a cached point query 5 to 6 times slower).
			if (rte->rtekind != RTE_RELATION || rte->securityQuals == NIL || rte->relkind == RELKIND_PARTITIONED_TABLE)
				continue;
			Walk* w = static_cast<Walk*>(context);
			const int before = w->hoisted;
			rte->securityQuals = reinterpret_cast<List*>(tenant_guard::pg::compat::expression_mutator(
			    reinterpret_cast<Node*>(rte->securityQuals), hoist, context));
			if (w->hoisted != before)
				q->hasSubLinks = true;
		}
		return tenant_guard::pg::compat::query_walker(q, rewrite, context, 0);
	}
	return tenant_guard::pg::compat::expression_walker(node, rewrite, context);
}

PlannedStmt* plan_query(Query* parse, const char* query_string, int cursor_options, ParamListInfo bound_params)
{
	if (context_once_per_query && parse->commandType != CMD_UTILITY && IsTransactionState()) {
		Walk w{InvalidOid, false, false, tenant_guard::citus::present(), 0};
		if (w.check_citus && !citus_looked_up) {
			is_citus_table = reinterpret_cast<IsCitusTableFn>(
			    load_external_function("$libdir/citus", "IsCitusTable", false, nullptr));
			citus_looked_up = true;
		}
		// The walk first: a query without security quals (most of them) costs
		// no catalog look-up.
		(void) survey(reinterpret_cast<Node*>(parse), &w);
		if (w.quals && !w.citus) {
			w.schema = get_namespace_oid("tenant_guard", true);
			if (OidIsValid(w.schema))
				(void) rewrite(reinterpret_cast<Node*>(parse), &w);
		}
	}
	if (prev_planner != nullptr)
		return prev_planner(parse, query_string, cursor_options, bound_params);
	return standard_planner(parse, query_string, cursor_options, bound_params);
}

}  // namespace

namespace tenant_guard::planner {

void init()
{
	DefineCustomBoolVariable("tenant_guard.context_once_per_query",
	                         "Evaluates the tenant context once per query in row-level security policies.",
	                         "A policy's tenant_guard.current_user_org_id() (and the other context accessors) is "
	                         "planned as a sub-select, evaluated once per execution instead of once per row. Needs "
	                         "shared_preload_libraries.",
	                         &context_once_per_query, true, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
	if (process_shared_preload_libraries_in_progress) {
		prev_planner = planner_hook;
		planner_hook = plan_query;
	}
}

}  // namespace tenant_guard::planner
