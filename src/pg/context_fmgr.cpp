/*
 * pg/context_fmgr.cpp
 *
 * The tenant context: which tenant, user, in-tenant role and scopes the
 * current statement runs for.
 *
 *   tenant_guard.current_user_org_id() returns uuid
 *   tenant_guard.current_user_org_text() returns text
 *   tenant_guard.current_user_org_bigint() returns bigint
 *   tenant_guard.current_user_id() returns text
 *   tenant_guard.current_user_role() returns text
 *   tenant_guard.current_impersonator() returns text
 *   tenant_guard.has_role(VARIADIC text[]) returns boolean
 *   tenant_guard.current_scopes(kind text) returns text[]
 *   tenant_guard.set_context(token text, session boolean) returns uuid (NULL
 *     for a text or bigint org id)
 *   tenant_guard.clear_context() returns void
 *
 * A token written into the statement text (debug_query_string: what the
 * client sent) can be read by every session of the same database role in
 * pg_stat_activity. set_context() removes it from the text pg_stat_activity
 * shows as soon as it sees it, and refuses a valid one
 * (tenant_guard.literal_token). Its errors keep the statement and context
 * out of the server log (errhidestmt, errhidecontext).
 *
 * Resolution order (docs/security-model.md):
 *  1. a context established by set_context() (tenant_guard.signed_context),
 *     unless its exp/nbf put the current statement outside its lifetime;
 *  2. with context_source = signed, nothing else;
 *  3. with claims, the JSON in request.jwt.claims;
 *  4. with setting, tenant_guard.org_id, user_id, role and scopes.
 *
 * Speed: each distinct claims text is parsed once per backend (ParseCache),
 * and the settings are re-derived only after one of them changed (assign
 * hooks bump a generation counter). A call costs a settings look-up and a
 * string comparison.
 *
 * All functions run inside the boundary (boundary.hpp): PostgreSQL calls that
 * can raise go through pg_call once C++ objects exist.
 */
#include <cstring>
#include <string>
#include <unistd.h>

#include "core/claims.hpp"
#include "core/error.hpp"
#include "core/jwks.hpp"
#include "core/jwt.hpp"
#include "core/keyfile.hpp"
#include "core/token_text.hpp"
#include "pg/boundary.hpp"
#include "pg/compat.hpp"
#include "pg/citus.hpp"
#include "pg/context.hpp"
#include "pg/guc.hpp"
#include "pg/keyset.hpp"
#include "pg/support.hpp"

extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

namespace tg = tenant_guard;
using tg::Error;
using tg::claims::Context;
using tg::pg::pg_call;

namespace {

// The claims setting PostgREST and Supabase write for every request.
constexpr const char* k_claims_setting = "request.jwt.claims";

// Caches the loaded JWT key; re-reads it when the file, its mode, the
// setting naming it, or the algorithm changes.
struct KeyCache {
	bool valid = false;
	int alg = -1;
	std::string path;
	tg::keyfile::Identity identity;
	tg::jwt::Key key;

	const tg::jwt::Key& get()
	{
		const int want = tg::guc::jwt_algorithm;
		const bool hmac = want == tg::guc::k_alg_hs256;
		const char* setting = hmac ? "tenant_guard.jwt_secret_file" : "tenant_guard.jwt_public_key_file";
		const char* file = hmac ? tg::guc::jwt_secret_file : tg::guc::jwt_public_key_file;
		const char* what = hmac ? "JWT secret file" : "JWT public key file";
		if (file == nullptr || *file == '\0')
			throw Error(tg::sqlstate::k_object_not_in_prerequisite_state, "tenant token verification is not configured",
			            std::string(setting) + " is not set.",
			            "A superuser must set tenant_guard.jwt_algorithm and " + std::string(setting) +
			                ", or tenant_guard.jwt_jwks_file.");
		tg::keyfile::Identity id = tg::keyfile::stat_file(file, what);
		if (valid && alg == want && path == file && id == identity)
			return key;
		valid = false;
		tg::keyfile::Contents c = tg::keyfile::read(file, what, geteuid());
		key = hmac ? tg::jwt::Key::hmac_secret(c.bytes.data(), c.bytes.size())
		           : tg::jwt::Key::public_key(c.bytes.data(), c.bytes.size(), static_cast<tg::jwt::Alg>(want));
		alg = want;
		path = file;
		identity = c.identity;
		valid = true;
		return key;
	}
};

struct State {
	tg::claims::ClaimPaths paths;
	std::uint64_t paths_generation = 0;
	tg::claims::ParseCache signed_cache;
	tg::claims::ParseCache claims_cache;
	Context settings_context;
	std::uint64_t settings_generation = 0;
	KeyCache key;
	// A token forwarded by a Citus coordinator, as verified here (citus.cpp).
	std::string forwarded_token;
	std::uint64_t forwarded_generation = 0;
	bool forwarded_valid = false;
	Context forwarded_context;
	const Context empty;
};

// Allocated once per backend and never freed: no static C++ object runs a
// destructor at backend exit.
State& state()
{
	static State* s = new State();
	return *s;
}

const tg::claims::ClaimPaths& paths()
{
	State& s = state();
	if (s.paths_generation != tg::guc::claim_paths_generation) {
		s.paths.org = tg::guc::org_claim;
		s.paths.user = tg::guc::user_claim;
		s.paths.role = tg::guc::role_claim;
		s.paths.scopes = tg::guc::scopes_claim;
		s.paths.impersonator = tg::guc::impersonator_claim ? tg::guc::impersonator_claim : "act.sub";
		s.paths_generation = tg::guc::claim_paths_generation;
	}
	return s.paths;
}

std::int64_t to_unix_seconds(TimestampTz ts)
{
	return ts / USECS_PER_SEC + static_cast<std::int64_t>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

std::int64_t statement_now()
{
	return to_unix_seconds(Max(GetCurrentStatementStartTimestamp(), GetCurrentTransactionStartTimestamp()));
}

// Verifies a token with this node's key settings: the key set
// (tenant_guard.jwt_jwks_file) when one is configured, else the single key
// file. set_context() and a token forwarded by a Citus coordinator both come
// through here, so a key removed from the set is refused by both.
tg::jwt::Verified verify_token(State& s, std::string_view token, std::int64_t now)
{
	tg::jwt::Options opt;
	opt.alg = static_cast<tg::jwt::Alg>(tg::guc::jwt_algorithm);
	opt.audience = tg::guc::jwt_audience ? tg::guc::jwt_audience : "";
	opt.issuer = tg::guc::jwt_issuer ? tg::guc::jwt_issuer : "";
	opt.now = now;
	opt.leeway = tg::guc::jwt_leeway;
	const tg::jwks::KeySet* keys = tg::keyset::current();
	if (keys != nullptr) {
		opt.service_kids = tg::keyset::service_kids();
		opt.service_max_lifetime = tg::keyset::service_max_lifetime;
		return tg::jwt::verify(token, *keys, opt, paths());
	}
	return tg::jwt::verify(token, s.key.get(), opt, paths());
}

// The context of a forwarded token: verified once per distinct token (and
// claim paths), then checked against exp and nbf at every statement. A token
// that does not verify gives the empty context.
const Context& forwarded(State& s, const char* token)
{
	if (!(s.forwarded_generation == tg::guc::claim_paths_generation && s.forwarded_token == token)) {
		s.forwarded_valid = false;
		s.forwarded_token = token;
		s.forwarded_generation = tg::guc::claim_paths_generation;
		try {
			tg::jwt::Verified v = verify_token(s, token, statement_now());
			s.forwarded_context = v.context;
			s.forwarded_valid = true;
		} catch (const Error&) {
			s.forwarded_valid = false;
		}
	}
	if (!s.forwarded_valid)
		return s.empty;
	const Context& c = s.forwarded_context;
	const std::int64_t now = statement_now();
	if ((c.exp && now - tg::guc::jwt_leeway >= *c.exp) || (c.nbf && now + tg::guc::jwt_leeway < *c.nbf))
		return s.empty;
	return c;
}

// The context for the current statement. Never throws for bad input: bad or
// missing values give the empty context.
const Context& resolve()
{
	State& s = state();
	const char* signed_text = tg::guc::signed_context;
	if (signed_text != nullptr && *signed_text != '\0') {
		// A support session's context counts only once its expiry and
		// revocation were checked in this transaction (support_fmgr.cpp).
		if (tg::support::blocks(signed_text))
			return s.empty;
		const Context& c = s.signed_cache.get(signed_text, tg::guc::claim_paths_generation, paths());
		// A verified context lives only between its nbf and exp. The statement
		// start is the clock, so one statement sees one answer; inside a
		// procedure that COMMITs, the start of the current transaction when it
		// is later, so a long procedure cannot outlive a token's exp.
		const std::int64_t now =
		    to_unix_seconds(Max(GetCurrentStatementStartTimestamp(), GetCurrentTransactionStartTimestamp()));
		if ((c.exp && now - tg::guc::jwt_leeway >= *c.exp) || (c.nbf && now + tg::guc::jwt_leeway < *c.nbf))
			return s.empty;
		return c;
	}
	// A token forwarded by a Citus coordinator counts only as verified here,
	// with this node's key settings, exactly as set_context() verifies it.
	// Only where Citus is loaded: elsewhere the setting means nothing.
	const char* fwd = tg::citus::forwarded_token;
	if (fwd != nullptr && *fwd != '\0' && tg::citus::present())
		return forwarded(s, fwd);
	switch (tg::guc::context_source) {
	case tg::guc::k_source_claims: {
		// GetConfigOption cannot raise with missing_ok and without the
		// privilege check, so it is called directly.
		const char* raw = GetConfigOption(k_claims_setting, true, false);
		if (raw == nullptr || *raw == '\0')
			return s.empty;
		return s.claims_cache.get(raw, tg::guc::claim_paths_generation, paths());
	}
	case tg::guc::k_source_setting:
		if (s.settings_generation != tg::guc::settings_generation) {
			s.settings_generation = 0;
			s.settings_context =
			    tg::claims::from_settings(tg::guc::setting_org_id, tg::guc::setting_user_id, tg::guc::setting_role,
			                              tg::guc::setting_scopes, tg::guc::setting_impersonator);
			s.settings_generation = tg::guc::settings_generation;
		}
		return s.settings_context;
	default:
		return s.empty;
	}
}

const char* missing_context_hint()
{
	switch (tg::guc::context_source) {
	case tg::guc::k_source_setting:
		return "Set tenant_guard.org_id (or call tenant_guard.set_context()); the context source is \"setting\".";
	case tg::guc::k_source_signed:
		return "Call tenant_guard.set_context() with a signed token; the context source is \"signed\".";
	default:
		return "Set request.jwt.claims with an organization claim (or call tenant_guard.set_context()); the "
		       "context source is \"claims\".";
	}
}

// Replaces the text pg_stat_activity shows for this backend's statement with
// one that has the token removed. Other sessions of the role could read it
// from the start of the statement until now; from now on they cannot, and an
// idle session keeps showing this text until its next statement.
void redact_activity(std::string_view statement, const tg::token_text::Parts& p)
{
	if (!pgstat_track_activities)
		return;  // nothing is shown
	const std::string text = tg::token_text::redacted(statement, p);
	pg_call([&] {
		const uint64 query_id = pgstat_get_my_query_id();
		pgstat_report_activity(STATE_RUNNING, text.c_str());
		if (query_id != 0)
			pgstat_report_query_id(query_id, true);
	});
}

Datum text_datum(const std::string& s)
{
	return pg_call([&] { return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size()))); });
}

// Without a usable organization id: NULL, or with require_context an error.
Datum no_org(FunctionCallInfo fcinfo)
{
	if (tg::guc::require_context)
		throw Error(tg::sqlstate::k_insufficient_privilege, "no tenant context",
		            "tenant_guard.require_context is on and this statement has no valid organization id.",
		            missing_context_hint());
	PG_RETURN_NULL();
}

}  // namespace

const Context& tg::context::current()
{
	return resolve();
}

const tg::claims::ClaimPaths& tg::context::claim_paths()
{
	return paths();
}

const tg::jwt::Key* tg::context::signing_key(std::string* kid, std::string* why)
{
	kid->clear();
	if (const tg::jwks::KeySet* keys = tg::keyset::current()) {
		const std::vector<std::string> service = tg::keyset::service_kids();
		for (const tg::jwks::Entry& e : keys->entries()) {
			if (e.key.alg() != tg::jwt::Alg::HS256)
				continue;
			bool is_service = false;
			for (const std::string& s : service)
				is_service = is_service || s == e.kid;
			if (is_service)
				continue;
			*kid = e.kid;
			return &e.key;
		}
		*why = "tenant_guard.jwt_jwks_file holds no HS256 (\"oct\") key other than a service key";
		return nullptr;
	}
	if (tg::guc::jwt_algorithm != tg::guc::k_alg_hs256) {
		*why = std::string("tenant_guard.jwt_algorithm is ") +
		       tg::jwt::alg_name(static_cast<tg::jwt::Alg>(tg::guc::jwt_algorithm)) +
		       ", whose public key cannot sign a token";
		return nullptr;
	}
	if (tg::guc::jwt_secret_file == nullptr || *tg::guc::jwt_secret_file == '\0') {
		*why = "tenant_guard.jwt_secret_file is not set";
		return nullptr;
	}
	return &state().key.get();
}

tg::claims::Context tg::context::verified(const std::string& token)
{
	return verify_token(state(), token, to_unix_seconds(GetCurrentTimestamp())).context;
}

void tg::context::set_local_context(const std::string& token)
{
	tg::jwt::Verified v = verify_token(state(), token, to_unix_seconds(GetCurrentTimestamp()));
	pg_call([&] { tg::guc::set_signed_context(v.payload.c_str(), true); });
	pg_call([&] { tg::citus::remember_token(token.c_str(), true); });
}

namespace {

// The accessors' resolution: first the support-session check, which a plain
// expression can reach without the executor. Called before any C++ object
// exists in the accessor (the check may ereport).
//
// Per statement, the resolved context is reused: policies call the accessors
// once per row, and resolving (a settings look-up by name, a comparison of
// the claims text) costs more than the comparison it feeds. The cache is
// keyed by the executor start (tenant_guard::citus::statement_generation(),
// bumped by the ExecutorStart hook of a preloaded tenant_guard; without it
// nothing is cached) and by every input tenant_guard itself changes. A change
// of request.jwt.claims by set_config() inside the same statement is seen
// from the next statement on (the next executor start).
struct ResolvedCache {
	std::uint64_t statement = 0;
	const char* signed_text = nullptr;
	const char* forwarded = nullptr;
	std::uint64_t settings_generation = 0;
	std::uint64_t paths_generation = 0;
	int source = -1;
	const Context* context = nullptr;
};
ResolvedCache resolved_cache;

const Context& resolve_checked()
{
	tg::support::check();
	ResolvedCache& rc = resolved_cache;
	const std::uint64_t statement = tg::citus::statement_generation();
	if (statement != 0 && rc.context != nullptr && rc.statement == statement &&
	    rc.signed_text == tg::guc::signed_context && rc.forwarded == tg::citus::forwarded_token &&
	    rc.settings_generation == tg::guc::settings_generation &&
	    rc.paths_generation == tg::guc::claim_paths_generation && rc.source == tg::guc::context_source)
		return *rc.context;
	const Context& c = resolve();
	rc.statement = statement;
	rc.signed_text = tg::guc::signed_context;
	rc.forwarded = tg::citus::forwarded_token;
	rc.settings_generation = tg::guc::settings_generation;
	rc.paths_generation = tg::guc::claim_paths_generation;
	rc.source = tg::guc::context_source;
	rc.context = &c;
	return c;
}

}  // namespace

// tenant_guard.current_user_org_id() returns uuid
//
// Policies call it once per row. One copy of the org id per transaction and
// organization is returned, not a palloc per call (which also costs the
// per-tuple memory reset): callers never modify a returned value, and the
// copy lives in TopTransactionContext, so it outlives every use in the
// transaction. Within one executor start, with the same inputs (the key of
// resolve_checked()), the last answer is returned before entering the
// boundary at all: plain C, no C++ object, nothing that can raise.
namespace {

struct OrgFastPath {
	bool valid = false;
	std::uint64_t statement = 0;
	const char* signed_text = nullptr;
	const char* forwarded = nullptr;
	std::uint64_t settings_generation = 0;
	std::uint64_t paths_generation = 0;
	int source = -1;
	LocalTransactionId lxid = InvalidLocalTransactionId;
	pg_uuid_t* value = nullptr;
};
OrgFastPath org_fast;

Datum current_user_org_id_impl(FunctionCallInfo fcinfo)
{
	org_fast.valid = false;
	const Context& c = resolve_checked();
	if (!c.org)
		return no_org(fcinfo);
	static pg_uuid_t* shared = nullptr;
	static LocalTransactionId shared_lxid = InvalidLocalTransactionId;
	const LocalTransactionId lxid = tg::pg::compat::my_lxid();
	pg_uuid_t* u = shared;
	if (!(u != nullptr && shared_lxid == lxid && lxid != InvalidLocalTransactionId &&
	      std::memcmp(u->data, c.org->data(), UUID_LEN) == 0)) {
		u = static_cast<pg_uuid_t*>(pg_call(
		    [] { return MemoryContextAllocExtended(TopTransactionContext, sizeof(pg_uuid_t), MCXT_ALLOC_NO_OOM); }));
		if (u == nullptr)
			throw std::bad_alloc();
		std::memcpy(u->data, c.org->data(), UUID_LEN);
		shared = u;
		shared_lxid = lxid;
	}
	const ResolvedCache& rc = resolved_cache;
	if (rc.statement != 0 && rc.context == &c && lxid != InvalidLocalTransactionId) {
		org_fast.statement = rc.statement;
		org_fast.signed_text = rc.signed_text;
		org_fast.forwarded = rc.forwarded;
		org_fast.settings_generation = rc.settings_generation;
		org_fast.paths_generation = rc.paths_generation;
		org_fast.source = rc.source;
		org_fast.lxid = lxid;
		org_fast.value = u;
		org_fast.valid = true;
	}
	PG_RETURN_UUID_P(u);
}

}  // namespace

TG_C_FUNCTION(tg_current_user_org_id)
{
	const OrgFastPath& f = org_fast;
	if (f.valid && f.statement == tg::citus::statement_generation() && f.signed_text == tg::guc::signed_context &&
	    f.forwarded == tg::citus::forwarded_token && f.settings_generation == tg::guc::settings_generation &&
	    f.paths_generation == tg::guc::claim_paths_generation && f.source == tg::guc::context_source &&
	    f.lxid == tg::pg::compat::my_lxid())
		PG_RETURN_UUID_P(f.value);
	return ::tenant_guard::pg::guard("current_user_org_id", current_user_org_id_impl, fcinfo);
}

// tenant_guard.current_user_org_text() returns text: the org id for text tenant columns
TG_FUNCTION(tg_current_user_org_text)
{
	const Context& c = resolve_checked();
	if (!c.org_key)
		return no_org(fcinfo);
	return text_datum(*c.org_key);
}

// tenant_guard.current_user_org_bigint() returns bigint: the org id for bigint tenant columns
TG_FUNCTION(tg_current_user_org_bigint)
{
	const Context& c = resolve_checked();
	if (!c.org_bigint)
		return no_org(fcinfo);
	PG_RETURN_INT64(*c.org_bigint);
}

// tenant_guard.current_user_id() returns text
TG_FUNCTION(tg_current_user_id)
{
	const Context& c = resolve_checked();
	if (!c.user_id)
		PG_RETURN_NULL();
	return text_datum(*c.user_id);
}

// tenant_guard.current_user_role() returns text
TG_FUNCTION(tg_current_user_role)
{
	const Context& c = resolve_checked();
	if (!c.role)
		PG_RETURN_NULL();
	return text_datum(*c.role);
}

// tenant_guard.current_impersonator() returns text: the support agent acting
// as the user (tenant_guard.impersonator_claim), or NULL
TG_FUNCTION(tg_current_impersonator)
{
	const Context& c = resolve_checked();
	if (!c.impersonator)
		PG_RETURN_NULL();
	return text_datum(*c.impersonator);
}

// tenant_guard.has_role(VARIADIC roles text[]) returns boolean (STRICT)
TG_FUNCTION(tg_has_role)
{
	ArrayType* roles = PG_GETARG_ARRAYTYPE_P(0);
	const Context& c = resolve_checked();
	if (!c.role)
		PG_RETURN_BOOL(false);
	Datum* elems = nullptr;
	bool* nulls = nullptr;
	int n = 0;
	pg_call([&] { deconstruct_array(roles, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n); });
	const std::string& role = *c.role;
	for (int i = 0; i < n; ++i) {
		if (nulls[i])
			continue;
		const text* t = reinterpret_cast<const text*>(DatumGetPointer(elems[i]));
		std::size_t len = VARSIZE_ANY_EXHDR(t);
		if (len == role.size() && std::memcmp(VARDATA_ANY(t), role.data(), len) == 0)
			PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}

// tenant_guard.current_scopes(kind text) returns text[]; never NULL
TG_FUNCTION(tg_current_scopes)
{
	text* kind_arg = PG_ARGISNULL(0) ? nullptr : PG_GETARG_TEXT_PP(0);
	const Context& c = resolve_checked();
	const std::vector<std::string>* values = nullptr;
	if (kind_arg != nullptr)
		values = c.scope(std::string_view(VARDATA_ANY(kind_arg), VARSIZE_ANY_EXHDR(kind_arg)));
	if (values == nullptr || values->empty())
		PG_RETURN_ARRAYTYPE_P(pg_call([] { return construct_empty_array(TEXTOID); }));
	const int n = static_cast<int>(values->size());
	return pg_call([&] {
		Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * n));
		for (int i = 0; i < n; ++i)
			elems[i] =
			    PointerGetDatum(cstring_to_text_with_len((*values)[i].data(), static_cast<int>((*values)[i].size())));
		return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
	});
}

// tenant_guard.set_context(token text, session boolean DEFAULT false) returns uuid
static Datum set_context_checked(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		throw Error(tg::sqlstate::k_invalid_authorization, "invalid tenant token", "The token is NULL.");
	text* token_arg = PG_GETARG_TEXT_PP(0);
	const bool session = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	const TimestampTz now = GetCurrentTimestamp();
	const std::string_view token(VARDATA_ANY(token_arg), VARSIZE_ANY_EXHDR(token_arg));

	// First, before anything can fail: a token in the statement text leaves
	// pg_stat_activity, valid or not (a token refused here may be valid
	// elsewhere, for another audience).
	const tg::token_text::Parts parts = tg::token_text::parts(token);
	const bool literal = debug_query_string != nullptr && tg::token_text::written_into(debug_query_string, parts);
	if (literal)
		redact_activity(debug_query_string, parts);

	tg::jwt::Verified v = verify_token(state(), token, to_unix_seconds(now));

	// A valid token written into the statement: refused (or, knowingly, let
	// through with a warning). Invalid ones got their own error above.
	static constexpr const char* k_literal_msg = "tenant token written into the statement text";
	static constexpr const char* k_literal_detail =
	    "Every session of the same database role can read a statement's text in pg_stat_activity, and the server "
	    "log may keep it, so a token written into the statement can be replayed by another tenant.";
	if (literal && tg::guc::literal_token != tg::guc::k_literal_warn)
		throw Error(tg::sqlstate::k_invalid_authorization, k_literal_msg,
		            std::string(k_literal_detail) + " No context was set.",
		            "Pass the token as a bind parameter, as in SELECT tenant_guard.set_context($1), or through COPY "
		            "tenant_guard.context_input FROM STDIN; treat this token as exposed.");
	if (literal)
		pg_call([] {
			ereport(WARNING, (errcode(ERRCODE_WARNING), errmsg("%s", k_literal_msg), errdetail("%s", k_literal_detail),
			                  errhint("Pass the token as a bind parameter; tenant_guard.literal_token = warn lets "
			                          "it through."),
			                  errhidestmt(true), errhidecontext(true)));
		});

	// Every check passed: only now does the context change.
	pg_call([&] { tg::guc::set_signed_context(v.payload.c_str(), !session); });
	{
		const std::string tok(token);
		pg_call([&] { tg::citus::remember_token(tok.c_str(), !session); });
	}
	if (!session && !IsTransactionBlock())
		pg_call([] {
			ereport(WARNING, (errcode(ERRCODE_NO_ACTIVE_SQL_TRANSACTION),
			                  errmsg("tenant context set outside a transaction block lasts only for this statement"),
			                  errhint("Call tenant_guard.set_context() after BEGIN, or pass session => true."),
			                  errhidestmt(true), errhidecontext(true)));
		});

	// The org id as a uuid; NULL when it is a text or bigint key
	// (current_user_org_text() and current_user_org_bigint() return it).
	if (!v.context.org)
		PG_RETURN_NULL();
	auto* u = static_cast<pg_uuid_t*>(palloc_extended(sizeof(pg_uuid_t), MCXT_ALLOC_NO_OOM));
	if (u == nullptr)
		throw std::bad_alloc();
	std::memcpy(u->data, v.context.org->data(), UUID_LEN);
	PG_RETURN_UUID_P(u);
}

// Every error of set_context() keeps the statement text (which may hold the
// token) and the context lines (which may hold it as a bind parameter or a
// COPY line) out of the server log.
TG_FUNCTION(tg_set_context)
{
	try {
		return set_context_checked(fcinfo);
	} catch (Error& e) {
		e.hide_statement();
		throw;
	} catch (tg::pg::PgError& e) {
		e.edata->hide_stmt = true;
		e.edata->hide_ctx = true;
		throw;
	}
}

// tenant_guard.clear_context() returns void
TG_FUNCTION(tg_clear_context)
{
	// No C++ objects here: plain PostgreSQL calls.
	tg::guc::set_signed_context("", false);
	(void) set_config_option("tenant_guard.org_id", "", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
	(void) set_config_option("tenant_guard.user_id", "", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
	(void) set_config_option("tenant_guard.role", "", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
	(void) set_config_option("tenant_guard.scopes", "", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
	if (GetConfigOption(k_claims_setting, true, false) != nullptr)
		(void) set_config_option(k_claims_setting, "", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
	PG_RETURN_VOID();
}
