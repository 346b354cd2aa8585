/*
 * pg/support_fmgr.cpp
 *
 * Support sessions (docs/support-access.md): the part of a redemption that
 * must live in backend memory, and the per-statement check of a live support
 * context.
 *
 *   tenant_guard._support_stage(grant uuid, org uuid, agent text, expires_at timestamptz) returns void
 *       Internal (not for PUBLIC; called by tenant_guard._support_redeem, a
 *       SECURITY DEFINER function, in the transaction that marks the grant
 *       redeemed). Remembers the redemption in this backend; it becomes
 *       usable only once that transaction has committed.
 *   tenant_guard._support_activate() returns uuid
 *       Establishes the support context of the redemption this backend
 *       staged and committed (session scope); NULL when there is none. Takes
 *       no claims from SQL: they are built here from the staged grant.
 *   tenant_guard._support_end() returns uuid
 *       Clears the support context of this backend; returns its grant id,
 *       or NULL when no support session is active.
 *   tenant_guard._support_active_grant() returns uuid
 *       The grant id of the live support session of this backend, or NULL.
 *
 * Setting: tenant_guard.support_role (superuser-only, default 'support'),
 * the in-tenant role of a support context.
 *
 * The check: an ExecutorStart hook, installed whenever the library is loaded
 * (no shared_preload_libraries needed: a support context can only be made by
 * this library, so it is loaded before one exists). Backends that never
 * activated a support session pay one boolean test per executor start. In a
 * backend with a support session, once per top-level statement, while the
 * signed context is still the one this library set: if the statement starts
 * at or after expires_at, or the grant was ended or revoked (read with the
 * latest snapshot, as the extension owner), the context is cleared; it stays
 * dead even if a rolled-back transaction restores the setting.
 */
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "core/claims.hpp"
#include "core/error.hpp"
#include "pg/as_owner.hpp"
#include "pg/audit_guc.hpp"
#include "pg/boundary.hpp"
#include "pg/guc.hpp"
#include "pg/support.hpp"

extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
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

namespace tg = tenant_guard;
using tg::Error;
using tg::pg::pg_call;

namespace {

char* support_role = nullptr;

struct Staged {
	bool valid = false;
	bool committed = false;
	SubTransactionId subxact = InvalidSubTransactionId;
	pg_uuid_t grant{};
	pg_uuid_t org{};
	std::string agent;
	TimestampTz expires_at = 0;
	Oid owner = InvalidOid;
};

struct Active {
	bool on = false;
	bool dead = false;
	pg_uuid_t grant{};
	std::string claims;  // the exact signed_context text this library set
	TimestampTz expires_at = 0;
	Oid owner = InvalidOid;
	TimestampTz checked_statement = 0;  // start of the last statement checked
	SPIPlanPtr plan = nullptr;
};

// Allocated once per backend and never freed.
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

bool in_check = false;
bool callbacks_registered = false;
ExecutorStart_hook_type prev_executor_start = nullptr;

std::string uuid_text(const pg_uuid_t& u)
{
	tg::claims::Uuid id;
	std::memcpy(id.data(), u.data, UUID_LEN);
	return tg::claims::format_uuid(id);
}

std::int64_t to_unix_seconds(TimestampTz ts)
{
	return ts / USECS_PER_SEC + static_cast<std::int64_t>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

// Puts `value` at the dotted claim path `path` of `doc`, creating objects.
void put_claim(nlohmann::json& doc, const std::string& path, nlohmann::json value)
{
	nlohmann::json* at = &doc;
	std::size_t start = 0;
	while (true) {
		std::size_t dot = path.find('.', start);
		std::string seg = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
		if (!at->is_object())
			throw Error(tg::sqlstate::k_object_not_in_prerequisite_state, "claim paths overlap",
			            "The claim path \"" + path + "\" passes through another claim, so a support context cannot "
			            "be built.",
			            "Give tenant_guard.org_claim, user_claim, role_claim and impersonator_claim distinct paths.");
		if (dot == std::string::npos) {
			if (at->contains(seg))
				throw Error(tg::sqlstate::k_object_not_in_prerequisite_state, "claim paths overlap",
				            "Two claim settings name the path \"" + path + "\".",
				            "Give tenant_guard.org_claim, user_claim, role_claim and impersonator_claim distinct "
				            "paths.");
			(*at)[seg] = std::move(value);
			return;
		}
		nlohmann::json& next = (*at)[seg];
		if (next.is_null())
			next = nlohmann::json::object();
		at = &next;
		start = dot + 1;
	}
}

const char* or_default(const char* v, const char* d)
{
	return v != nullptr && *v != '\0' ? v : d;
}

// The claims of a support context at the configured claim paths. exp is in
// whole seconds, rounded down: the context never outlives expires_at.
std::string build_claims(const std::string& org, const std::string& agent, std::int64_t exp, const std::string& grant)
{
	nlohmann::json doc = nlohmann::json::object();
	put_claim(doc, or_default(tg::guc::org_claim, "org_id"), org);
	put_claim(doc, or_default(tg::guc::role_claim, "org_role"), or_default(support_role, "support"));
	put_claim(doc, or_default(tg::guc::user_claim, "sub"), agent);
	put_claim(doc, or_default(tg::audit_guc::impersonator_claim, "act.sub"), agent);
	if (doc.contains("exp") || doc.contains("nbf") || doc.contains("tg_support_grant"))
		throw Error(tg::sqlstate::k_object_not_in_prerequisite_state, "claim paths overlap",
		            "A claim setting names exp, nbf or tg_support_grant, which a support context uses itself.",
		            "Give tenant_guard.org_claim, user_claim, role_claim and impersonator_claim other paths.");
	doc["exp"] = exp;
	doc["tg_support_grant"] = grant;
	return doc.dump();
}

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
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		// As the owner: never with the caller's search_path (as_owner.hpp).
		const int guc_level = tg::pg::pin_search_path();
		if (a.plan == nullptr) {
			Oid argtypes[1] = {UUIDOID};
			SPIPlanPtr p = SPI_prepare("SELECT 1 FROM tenant_guard.support_grants WHERE id = $1 AND "
			                           "ended_at IS NULL AND revoked_at IS NULL",
			                           1, argtypes);
			if (p == nullptr)
				elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
			if (SPI_keepplan(p) != 0)
				elog(ERROR, "SPI_keepplan failed");
			a.plan = p;
		}
		Datum values[1] = {UUIDPGetDatum(&a.grant)};
		int rc = SPI_execute_snapshot(a.plan, values, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "support grant check failed: %s", SPI_result_code_string(rc));
		live = SPI_processed == 1;
		AtEOXact_GUC(true, guc_level);
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_uid, save_sec);
		in_check = false;
	}
	PG_END_TRY();
	return live;
}

// Plain C frame: may ereport.
void check_support_context()
{
	Active& a = active();
	const char* cur = tg::guc::signed_context;
	if (cur == nullptr || std::strcmp(cur, a.claims.c_str()) != 0)
		return;  // another context (or none) is in force
	if (!a.dead) {
		TimestampTz stmt = GetCurrentStatementStartTimestamp();
		if (stmt >= a.expires_at) {
			a.dead = true;
		} else if (stmt != a.checked_statement) {
			in_check = true;
			bool live = grant_live(a);  // resets in_check
			a.checked_statement = stmt;
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

pg_uuid_t* uuid_copy(const pg_uuid_t& u)
{
	auto* r = static_cast<pg_uuid_t*>(pg_call([] { return palloc(sizeof(pg_uuid_t)); }));
	std::memcpy(r->data, u.data, UUID_LEN);
	return r;
}

}  // namespace

namespace tenant_guard::support {

void init()
{
	DefineCustomStringVariable("tenant_guard.support_role", "In-tenant role of a support session's context.",
	                           "tenant_guard.begin_support_session() puts it at tenant_guard.role_claim.",
	                           &support_role, "support", PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = support_executor_start;
}

}  // namespace tenant_guard::support

// tenant_guard._support_stage(grant uuid, org uuid, agent text, expires_at timestamptz) returns void
TG_FUNCTION(_support_stage)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		throw Error(tg::sqlstate::k_invalid_parameter_value, "invalid support grant");
	if (IsTransactionBlock())
		throw Error("25001", "a support session must be started outside a transaction block",
		            "The redemption is committed before the session starts, so that it is recorded even if later "
		            "work rolls back.",
		            "Run CALL tenant_guard.begin_support_session(...) on its own, not after BEGIN.");
	if (!callbacks_registered) {
		pg_call([] {
			RegisterXactCallback(xact_callback, nullptr);
			RegisterSubXactCallback(subxact_callback, nullptr);
		});
		callbacks_registered = true;
	}
	text* agent = PG_GETARG_TEXT_PP(2);
	Staged& s = staged();
	s.valid = false;
	s.committed = false;
	std::memcpy(s.grant.data, PG_GETARG_UUID_P(0)->data, UUID_LEN);
	std::memcpy(s.org.data, PG_GETARG_UUID_P(1)->data, UUID_LEN);
	s.agent.assign(VARDATA_ANY(agent), VARSIZE_ANY_EXHDR(agent));
	s.expires_at = PG_GETARG_TIMESTAMPTZ(3);
	s.owner = GetUserId();  // the owner of the SECURITY DEFINER caller
	s.subxact = GetCurrentSubTransactionId();
	s.valid = true;
	PG_RETURN_VOID();
}

// tenant_guard._support_activate() returns uuid (the org), NULL without a committed redemption
TG_FUNCTION(_support_activate)
{
	Staged& s = staged();
	if (!s.valid || !s.committed)
		PG_RETURN_NULL();
	s.valid = false;  // one redemption, one activation

	std::string claims = build_claims(uuid_text(s.org), s.agent, to_unix_seconds(s.expires_at), uuid_text(s.grant));

	Active& a = active();
	a.on = false;
	pg_call([&] { tg::guc::set_signed_context(claims.c_str(), false); });
	a.claims = claims;
	a.grant = s.grant;
	a.expires_at = s.expires_at;
	a.owner = s.owner;
	a.dead = false;
	a.checked_statement = 0;
	a.on = true;
	PG_RETURN_UUID_P(uuid_copy(s.org));
}

// tenant_guard._support_active_grant() returns uuid
TG_FUNCTION(_support_active_grant)
{
	Active& a = active();
	const char* cur = tg::guc::signed_context;
	if (!a.on || a.dead || cur == nullptr || a.claims != cur)
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(uuid_copy(a.grant));
}

// tenant_guard._support_end() returns uuid
TG_FUNCTION(_support_end)
{
	Active& a = active();
	const char* cur = tg::guc::signed_context;
	if (!a.on || cur == nullptr || a.claims != cur)
		PG_RETURN_NULL();
	const bool was_live = !a.dead;
	a.dead = true;
	pg_call([] { tg::guc::set_signed_context("", false); });
	if (!was_live)
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(uuid_copy(a.grant));
}

// tenant_guard._support_check_toplevel() returns void: refuses a transaction
// block, and claim paths a support context cannot be built with, before
// anything is redeemed
TG_FUNCTION(_support_check_toplevel)
{
	(void) build_claims("00000000-0000-0000-0000-000000000000", "agent", 0, "grant");
	if (IsTransactionBlock())
		throw Error("25001", "a support session must be started outside a transaction block",
		            "The redemption is committed before the session starts, so that it is recorded even if later "
		            "work rolls back.",
		            "Run CALL tenant_guard.begin_support_session(...) on its own, not after BEGIN.");
	PG_RETURN_VOID();
}
