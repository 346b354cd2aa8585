/*
 * pg/support.cpp
 *
 * Support sessions (docs/support-access.md): the setting, the backend state
 * of a redemption and of a live support context, and its check. The SQL
 * entry points are support_fmgr.cpp's.
 *
 *
 * Setting: tenant_guard.support_role (superuser-only, default 'support'),
 * the in-tenant role of a support context.
 *
 * The check: an ExecutorStart hook, installed whenever the library is loaded
 * (no shared_preload_libraries needed: a support context can only be made by
 * this library, so it is loaded before one exists), and the context accessors
 * (support::check()). Backends that never activated a support session pay one
 * boolean test. In a backend with a support session, once per top-level
 * statement AND once per transaction (a DO block or a procedure that COMMITs
 * starts new transactions inside one statement), while the signed context is
 * still the one this library set: if the statement or the transaction starts
 * at or after expires_at, or the grant was ended or revoked (read with the
 * latest snapshot, as the extension owner), the context is cleared; it stays
 * dead even if a rolled-back transaction restores the setting. Until the check
 * has run in the current transaction the context reads as absent
 * (support::blocks(), used by the context resolution): a path that reaches
 * the context without the executor or an accessor fails closed.
 *
 * Open queries: a cursor (FETCH, MOVE) or a suspended portal (the extended
 * protocol's Execute) runs again in a later statement without ExecutorStart,
 * and a policy that reads the context once per query (a sub-select) keeps the
 * value of its first evaluation. So an ExecutorRun hook runs the check at
 * every run too, and refuses to run a query that started while the support
 * context was in force once that session is dead (or replaced). The queries
 * are tracked from ExecutorStart, each in its own executor memory: it leaves
 * the list when that memory is freed (ExecutorEnd, or a portal dropped
 * unfinished), and the list starts over at transaction end, when portals die.
 *
 * C-style glue: the hooks and callbacks create no C++ object (Active and
 * Staged live for the backend, allocated once).
 */
#include <cstdint>
#include <cstring>
#include <string>

#include "pg/compat.hpp"
#include "pg/guc.hpp"
#include "pg/spi.hpp"
#include "pg/support.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "utils/memutils.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "storage/proc.h"
#include "utils/syscache.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

#include "pg/support_session.hpp"

namespace tg = tenant_guard;

namespace tenant_guard::support {

char* support_role = nullptr;

Staged& staged()
{
	static Staged* s = new Staged();
	return *s;
}
Active& active()
{
	static Active* a = new Active();
	return *a;
}

}  // namespace tenant_guard::support

using namespace tenant_guard::support;

namespace {

bool in_check = false;
bool callbacks_registered = false;
ExecutorStart_hook_type prev_executor_start = nullptr;
ExecutorRun_hook_type prev_executor_run = nullptr;

// A query started while the support context of session `serial` was in force
// and live. Allocated in the query's es_query_cxt, whose deletion unlinks it.
struct Tracked {
	MemoryContextCallback cb;
	Tracked* prev;
	Tracked* next;
	const QueryDesc* query;
	std::uint64_t serial;
	std::uint64_t generation;  // of the list: nodes of an ended transaction are left alone
};
Tracked* tracked = nullptr;  // the list's head
std::uint64_t tracked_generation = 0;

// Memory context callback: never raises.
void untrack(void* arg)
{
	Tracked* t = static_cast<Tracked*>(arg);
	if (t->generation != tracked_generation)
		return;
	if (t->prev != nullptr)
		t->prev->next = t->next;
	else
		tracked = t->next;
	if (t->next != nullptr)
		t->next->prev = t->prev;
}

// At transaction end: the portals and queries of the transaction are gone (a
// held cursor is materialized at COMMIT and runs no executor afterwards).
void forget_tracked()
{
	if (tracked == nullptr)
		return;
	++tracked_generation;
	tracked = nullptr;
}

// Plain C frame: may ereport (out of memory).
void track(QueryDesc* queryDesc, std::uint64_t serial)
{
	if (queryDesc->estate == nullptr)
		return;
	MemoryContext cxt = queryDesc->estate->es_query_cxt;
	Tracked* t = static_cast<Tracked*>(MemoryContextAllocZero(cxt, sizeof(Tracked)));
	t->query = queryDesc;
	t->serial = serial;
	t->generation = tracked_generation;
	t->cb.func = untrack;
	t->cb.arg = t;
	t->next = tracked;
	if (tracked != nullptr)
		tracked->prev = t;
	tracked = t;
	MemoryContextRegisterResetCallback(cxt, &t->cb);
}

const Tracked* find_tracked(const QueryDesc* queryDesc)
{
	for (const Tracked* t = tracked; t != nullptr; t = t->next)
		if (t->query == queryDesc)
			return t;
	return nullptr;
}

void xact_callback(XactEvent event, void*)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
	    event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		forget_tracked();
	Staged& s = staged();
	if (!s.valid)
		return;
	if (event == XACT_EVENT_COMMIT)
		s.committed = true;
	else if (event == XACT_EVENT_ABORT && !s.committed)
		s.valid = false;
}

void subxact_callback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId, void*)
{
	Staged& s = staged();
	// The subtransaction that staged the grant, or one around it, rolled back:
	// so did the redemption.
	if (event == SUBXACT_EVENT_ABORT_SUB && s.valid && !s.committed && mySubid <= s.subxact)
		s.valid = false;
}

// True while the grant is neither ended nor revoked. Plain C frame.
bool grant_live(Active& a)
{
	Oid nsp = get_namespace_oid("tenant_guard", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("support_grants", nsp)))
		return false;
	bool live = false;
	Oid save_uid;
	int save_sec;
	GetUserIdAndSecContext(&save_uid, &save_sec);
	SetUserIdAndSecContext(a.owner, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		// As the owner: never with the caller's search_path (as_owner.hpp).
		const tg::pg::SpiScope spi = tg::pg::spi_begin();
		if (a.plan == nullptr) {
			Oid argtypes[1] = {UUIDOID};
			a.plan = tg::pg::spi_keep_plan("SELECT 1 FROM tenant_guard.support_grants WHERE id = $1 AND "
			                               "ended_at IS NULL AND revoked_at IS NULL",
			                               1, argtypes, "the support grant check");
		}
		Datum values[1] = {UUIDPGetDatum(&a.grant)};
		int rc = SPI_execute_snapshot(a.plan, values, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "tenant_guard: support grant check failed: %s", SPI_result_code_string(rc));
		live = SPI_processed == 1;
		tg::pg::spi_end(spi);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_uid, save_sec);
		in_check = false;
	}
	PG_END_TRY();
	return live;
}

// The clock of a support context: the start of the statement, or of the
// transaction when that is later (a procedure that COMMITs starts new
// transactions inside one statement).
TimestampTz context_clock()
{
	return Max(GetCurrentStatementStartTimestamp(), GetCurrentTransactionStartTimestamp());
}

// Marks the session dead when the statement or the transaction starts at or
// after its expiry, or when its grant was ended or revoked (read once per
// statement and transaction). Plain C frame: may ereport.
void refresh(Active& a)
{
	if (a.dead)
		return;
	const TimestampTz stmt = GetCurrentStatementStartTimestamp();
	const LocalTransactionId lxid = current_lxid();
	if (context_clock() >= a.expires_at) {
		a.dead = true;
		return;
	}
	if (stmt == a.checked_statement && lxid == a.checked_lxid)
		return;
	// The grant is read with a fresh snapshot, which parallel mode forbids;
	// until a check ran in this transaction, blocks() keeps the context
	// unusable.
	if (IsInParallelMode())
		return;
	in_check = true;
	bool live = grant_live(a);  // resets in_check
	a.checked_statement = stmt;
	a.checked_lxid = lxid;
	if (!live)
		a.dead = true;
}

bool in_force(const Active& a)
{
	const char* cur = tg::guc::signed_context;
	return cur != nullptr && std::strcmp(cur, a.claims.c_str()) == 0;
}

// Plain C frame: may ereport.
void check_support_context()
{
	Active& a = active();
	if (!in_force(a))
		return;  // another context (or none) is in force
	refresh(a);
	if (a.dead)
		tg::guc::set_signed_context("", false);
}

void support_executor_start(QueryDesc* queryDesc, int eflags)
{
	bool started_in_session = false;
	if (active().on && !in_check) {
		check_support_context();
		const Active& a = active();
		started_in_session = !a.dead && in_force(a);
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
	if (started_in_session)
		track(queryDesc, active().serial);
}

// A run of a query that started in a support session (a FETCH, a MOVE, an
// Execute of a suspended portal): refused once that session is dead or
// replaced, whatever context is in force now. Plain C frame: may ereport.
void check_run(const QueryDesc* queryDesc)
{
	check_support_context();
	if (tracked == nullptr)
		return;
	const Tracked* t = find_tracked(queryDesc);
	if (t == nullptr)
		return;
	Active& a = active();
	if (t->serial == a.serial) {
		refresh(a);  // also when another context hides the session's
		if (!a.dead)
			return;
	}
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("support session ended while this query was open"),
	                errdetail("The cursor or portal was opened in a support session that has since been ended, "
	                          "revoked or has expired."),
	                errhint("Close it; a query started after the session ended runs in the context then in force.")));
}

void support_executor_run(TG_EXECUTOR_RUN_PARAMS)
{
	if (active().on && !in_check)
		check_run(queryDesc);
	if (prev_executor_run)
		prev_executor_run(TG_EXECUTOR_RUN_ARGS);
	else
		standard_ExecutorRun(TG_EXECUTOR_RUN_ARGS);
}

}  // namespace

namespace tenant_guard::support {

LocalTransactionId current_lxid()
{
	return tg::pg::compat::my_lxid();
}

void register_callbacks()
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(xact_callback, nullptr);
	RegisterSubXactCallback(subxact_callback, nullptr);
	callbacks_registered = true;
}

void check()
{
	const Active& a = active();
	if (!a.on || in_check)
		return;
	// Fast path of every context read: already checked in this statement and
	// transaction (the clock is the same, so is the answer).
	if (!a.dead && a.checked_statement == GetCurrentStatementStartTimestamp() && a.checked_lxid == current_lxid())
		return;
	if (IsTransactionState())
		check_support_context();
}

bool blocks(const char* signed_text)
{
	const Active& a = active();
	if (!a.on)
		return false;
	if (!a.dead && a.checked_lxid == current_lxid() && a.checked_lxid != InvalidLocalTransactionId)
		return false;  // checked in this transaction: nothing to block, whatever the context
	if (signed_text == nullptr || std::strcmp(signed_text, a.claims.c_str()) != 0)
		return false;
	return true;
}

void init()
{
	DefineCustomStringVariable("tenant_guard.support_role", "In-tenant role of a support session's context.",
	                           "tenant_guard.begin_support_session() puts it at tenant_guard.role_claim.",
	                           &support_role, "support", PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = support_executor_start;
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = support_executor_run;
}

}  // namespace tenant_guard::support
