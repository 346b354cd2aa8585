/*
 * pg/support_fmgr.cpp
 *
 * Support sessions (docs/support-access.md): the part of a redemption that
 * must live in backend memory, and the per-statement check of a live support
 * context.
 *
 *   CALL tenant_guard.begin_support_session(token text)
 *       A C procedure (caller's rights, nonatomic CALL only): redeems the
 *       token with tenant_guard._support_redeem(), run as that function's
 *       owner, COMMITs, and only then establishes the support context or
 *       raises the one refusal error. Nothing the caller controls runs between
 *       the redemption and its commit, and the internal functions are not
 *       executable by the caller, so whether a token is valid shows only after
 *       the redemption or the refusal is committed to the audit log.
 *   tenant_guard._support_stage(grant uuid, org uuid, agent text, expires_at timestamptz) returns void
 *       Internal (owner only; called by tenant_guard._support_redeem, a
 *       SECURITY DEFINER function, in the transaction that marks the grant
 *       redeemed). Remembers the redemption in this backend; it becomes
 *       usable only once that transaction has committed.
 *   tenant_guard._support_end() returns uuid
 *       Clears the support context of this backend; returns its grant id,
 *       or NULL when no support session is active.
 *   tenant_guard._support_active_grant() returns uuid
 *       The grant id of the live support session of this backend, or NULL.
 *
 * The setting (tenant_guard.support_role), the backend state and the
 * per-statement and per-transaction check of a live support context are
 * support.cpp's.
 */
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "core/claims.hpp"
#include "core/error.hpp"
#include "pg/boundary.hpp"
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
using tg::Error;
using tg::pg::pg_call;
using namespace tenant_guard::support;

namespace {

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
			            "The claim path \"" + path +
			                "\" passes through another claim, so a support context cannot "
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
	put_claim(doc, or_default(tg::guc::impersonator_claim, "act.sub"), agent);
	if (doc.contains("exp") || doc.contains("nbf") || doc.contains("tg_support_grant"))
		throw Error(tg::sqlstate::k_object_not_in_prerequisite_state, "claim paths overlap",
		            "A claim setting names exp, nbf or tg_support_grant, which a support context uses itself.",
		            "Give tenant_guard.org_claim, user_claim, role_claim and impersonator_claim other paths.");
	doc["exp"] = exp;
	doc["tg_support_grant"] = grant;
	return doc.dump();
}

const char* const k_not_toplevel = "a support session must be started outside a transaction block";
const char* const k_not_toplevel_detail =
    "The redemption is committed before the session starts, so that it is recorded even if later work rolls back.";
const char* const k_not_toplevel_hint =
    "Run CALL tenant_guard.begin_support_session(...) on its own: not after BEGIN, not in a function or an "
    "exception block.";

pg_uuid_t* uuid_copy(const pg_uuid_t& u)
{
	auto* r = static_cast<pg_uuid_t*>(pg_call([] { return palloc(sizeof(pg_uuid_t)); }));
	std::memcpy(r->data, u.data, UUID_LEN);
	return r;
}

}  // namespace

// tenant_guard._support_stage(grant uuid, org uuid, agent text, expires_at timestamptz) returns void
TG_FUNCTION(tg__support_stage)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		throw Error(tg::sqlstate::k_invalid_parameter_value, "invalid support grant");
	if (IsTransactionBlock())
		throw Error(tg::sqlstate::k_active_sql_transaction, k_not_toplevel, k_not_toplevel_detail, k_not_toplevel_hint);
	pg_call([] { tg::support::register_callbacks(); });
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

namespace {

// Establishes the support context of the redemption this backend staged and
// committed; false when there is none. Takes no claims from SQL.
bool activate(pg_uuid_t* org_out)
{
	Staged& s = staged();
	if (!s.valid || !s.committed)
		return false;
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
	++a.serial;
	// just redeemed and committed: live in this statement and transaction
	a.checked_statement = GetCurrentStatementStartTimestamp();
	a.checked_lxid = current_lxid();
	a.on = true;
	std::memcpy(org_out->data, s.org.data, UUID_LEN);
	return true;
}

struct Redemption {
	Datum token;
	bool token_null;
	bool redeemed;
};

// Plain C frame (through pg_call): runs tenant_guard._support_redeem(token) as
// the owner of that function (the caller has no EXECUTE on it) and commits.
// The procedure's own nonatomic SPI connection is what makes COMMIT possible.
void redeem_and_commit(void* arg)
{
	Redemption* r = static_cast<Redemption*>(arg);
	Oid argtypes[1] = {TEXTOID};
	Oid fn = LookupFuncName(list_make2(makeString(pstrdup("tenant_guard")), makeString(pstrdup("_support_redeem"))), 1,
	                        argtypes, false);
	HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "tenant_guard: cache lookup failed for function %u", fn);
	const Oid owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	ReleaseSysCache(tup);

	tg::pg::spi_connect(SPI_OPT_NONATOMIC);
	Oid save_uid;
	int save_sec;
	GetUserIdAndSecContext(&save_uid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		const int guc_level = tg::pg::pin_search_path();
		Datum values[1] = {r->token};
		const char nulls[2] = {r->token_null ? 'n' : ' ', '\0'};
		int rc = SPI_execute_with_args("SELECT tenant_guard._support_redeem($1)", 1, argtypes, values, nulls, false, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "tenant_guard: support redemption failed: %s", SPI_result_code_string(rc));
		bool isnull = true;
		Datum ok = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		r->redeemed = !isnull && DatumGetBool(ok);
		AtEOXact_GUC(true, guc_level);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_uid, save_sec);
	}
	PG_END_TRY();
	// The redemption, or the audited refusal, is committed before the caller
	// can learn anything from it.
	SPI_commit();
	SPI_finish();
}

}  // namespace

// CALL tenant_guard.begin_support_session(token text): a procedure
TG_FUNCTION(tg_begin_support_session)
{
	const bool nonatomic = fcinfo->context != nullptr && IsA(fcinfo->context, CallContext) &&
	                       !reinterpret_cast<CallContext*>(fcinfo->context)->atomic;
	Redemption r{PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0), PG_ARGISNULL(0), false};
	// refused before anything is redeemed: claim paths that cannot hold a
	// support context, and any context that cannot commit
	(void) build_claims("00000000-0000-0000-0000-000000000000", "agent", 0, "grant");
	if (!nonatomic || IsTransactionBlock() || IsSubTransaction())
		throw Error(tg::sqlstate::k_active_sql_transaction, k_not_toplevel, k_not_toplevel_detail, k_not_toplevel_hint);
	pg_call([&] { redeem_and_commit(&r); });
	pg_uuid_t org{};
	if (!r.redeemed || !activate(&org))
		throw Error(tg::sqlstate::k_invalid_authorization, "support token refused",
		            "The token is unknown, already used, expired or revoked.",
		            "Ask the platform team for a new support grant.");
	const std::string org_text = uuid_text(org);
	pg_call([&] { ereport(NOTICE, (errmsg("support session started for tenant %s", org_text.c_str()))); });
	PG_RETURN_VOID();
}

// tenant_guard._support_active_grant() returns uuid
TG_FUNCTION(tg__support_active_grant)
{
	Active& a = active();
	const char* cur = tg::guc::signed_context;
	if (!a.on || a.dead || cur == nullptr || a.claims != cur)
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(uuid_copy(a.grant));
}

// tenant_guard._support_end() returns uuid
TG_FUNCTION(tg__support_end)
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
TG_FUNCTION(tg__support_check_toplevel)
{
	(void) build_claims("00000000-0000-0000-0000-000000000000", "agent", 0, "grant");
	if (IsTransactionBlock())
		throw Error(tg::sqlstate::k_active_sql_transaction, k_not_toplevel, k_not_toplevel_detail, k_not_toplevel_hint);
	PG_RETURN_VOID();
}
