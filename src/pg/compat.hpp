/*
 * pg/compat.hpp
 *
 * Differences between the PostgreSQL majors tenant_guard supports (15 to 18;
 * docs/development.md, "PostgreSQL versions"). Every API difference the glue
 * meets is one include or one small inline function here, keyed on
 * PG_VERSION_NUM, so no feature file carries a version conditional: a feature
 * calls compat::name() instead of the PostgreSQL API that changed.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
/* 16 moved the varlena macros (VARDATA_ANY, VARSIZE_ANY_EXHDR, ...) out of postgres.h. */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif
}

// An ExecutorRun hook's parameters, and the same names passed on to the next
// hook or standard_ExecutorRun(): 18 dropped the execute_once argument.
#if PG_VERSION_NUM >= 180000
#define TG_EXECUTOR_RUN_PARAMS QueryDesc *queryDesc, ScanDirection direction, uint64 count
#define TG_EXECUTOR_RUN_ARGS queryDesc, direction, count
#else
#define TG_EXECUTOR_RUN_PARAMS QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once
#define TG_EXECUTOR_RUN_ARGS queryDesc, direction, count, execute_once
#endif

namespace tenant_guard::pg::compat {

// This backend's local transaction id, or InvalidLocalTransactionId outside a
// backend (17 moved PGPROC.lxid into PGPROC.vxid).
inline LocalTransactionId my_lxid()
{
	if (MyProc == nullptr)
		return InvalidLocalTransactionId;
#if PG_VERSION_NUM >= 170000
	return MyProc->vxid.lxid;
#else
	return MyProc->lxid;
#endif
}

// Inserts the index entries of a newly inserted tuple (no ON CONFLICT, not an
// UPDATE); 16 added the onlySummarizing argument.
inline List* insert_index_tuples(ResultRelInfo* rri, TupleTableSlot* slot, EState* estate)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, false, false, nullptr, NIL, false);
#else
	return ExecInsertIndexTuples(rri, slot, estate, false, false, nullptr, NIL);
#endif
}

// Does this ALTER TABLE subcommand add a column? Before 16 a recursing
// ADD COLUMN had a subtype of its own (AT_AddColumnRecurse).
inline bool is_add_column(AlterTableType t)
{
#if PG_VERSION_NUM >= 160000
	return t == AT_AddColumn;
#else
	return t == AT_AddColumn || t == AT_AddColumnRecurse;
#endif
}

// Node tree walkers and mutators with typed callbacks: before 16 the
// callbacks were declared without a prototype (cast through void (*)(),
// the type GCC's -Wcast-function-type allows).
using Walker = bool (*)(Node*, void*);
using Mutator = Node* (*) (Node*, void*);

inline bool expression_walker(Node* node, Walker walker, void* context)
{
#if PG_VERSION_NUM >= 160000
	return expression_tree_walker(node, walker, context);
#else
	return expression_tree_walker(node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(walker)), context);
#endif
}

inline Node* expression_mutator(Node* node, Mutator mutator, void* context)
{
#if PG_VERSION_NUM >= 160000
	return expression_tree_mutator(node, mutator, context);
#else
	return expression_tree_mutator(node, reinterpret_cast<Node* (*) ()>(reinterpret_cast<void (*)()>(mutator)),
	                               context);
#endif
}

inline bool query_walker(Query* query, Walker walker, void* context, int flags)
{
#if PG_VERSION_NUM >= 160000
	return query_tree_walker(query, walker, context, flags);
#else
	return query_tree_walker(query, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(walker)), context, flags);
#endif
}

}  // namespace tenant_guard::pg::compat
