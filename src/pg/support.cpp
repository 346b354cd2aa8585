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
 */
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

void xact_callback(XactEvent event, void*)
{
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

// Plain C frame: may ereport.
void check_support_context()
{
	Active& a = active();
	const char* cur = tg::guc::signed_context;
	if (cur == nullptr || std::strcmp(cur, a.claims.c_str()) != 0)
		return;  // another context (or none) is in force
	if (!a.dead) {
		const TimestampTz stmt = GetCurrentStatementStartTimestamp();
		const LocalTransactionId lxid = current_lxid();
		if (context_clock() >= a.expires_at) {
			a.dead = true;
		} else if (stmt != a.checked_statement || lxid != a.checked_lxid) {
			// The grant is read with a fresh snapshot, which parallel mode
			// forbids; until a check ran in this transaction, blocks() keeps
			// the context unusable.
			if (IsInParallelMode())
				return;
			in_check = true;
			bool live = grant_live(a);  // resets in_check
			a.checked_statement = stmt;
			a.checked_lxid = lxid;
			if (!live)
				a.dead = true;
		}
	}
	if (a.dead)
		tg::guc::set_signed_context("", false);
}

void support_executor_start(QueryDesc* queryDesc, int eflags)
{
	if (active().on && !in_check)
		check_support_context();
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
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
}

}  // namespace tenant_guard::support
