/*
 * pg/grid_fmgr.cpp
 *
 * The attack grid's C entry points:
 *
 *   tenant_guard._grid_become(app_role regrole) returns void
 *       for the rest of the current subtransaction, run as app_role inside a
 *       security-restricted operation
 *   tenant_guard._grid_sign_in(org text, in_role text, scopes text) returns void
 *       for the rest of the current subtransaction, the signed context of a
 *       token of org the grid signs itself (below)
 *
 * The grid runs in a superuser's session and executes each attempt as the
 * application role. SET ROLE alone would let any code the attempt reaches (a
 * view's function, a trigger, an operator that the application role created)
 * run RESET ROLE or SET ROLE back to the superuser, whose session it is.
 * Inside a security-restricted operation PostgreSQL refuses SET ROLE, SET
 * SESSION AUTHORIZATION, temporary objects, LISTEN and cursors WITH HOLD, as
 * it does for the code VACUUM and REFRESH MATERIALIZED VIEW run as a table's
 * owner. Every attempt ends in a rolled-back subtransaction, whose abort
 * restores the user id and security context of the superuser.
 *
 * Signed attempts. On a Citus table, an application role whose workers take
 * the context only from a verified token (context_source = signed) sees
 * nothing there unless the coordinator forwards a token the workers verify
 * themselves (docs/citus.md). _grid_sign_in() signs one, in C, with the
 * HS256 key this node verifies tokens with (context::signing_key(): an "oct"
 * key of the key set, with its kid, or the secret file), carrying the claims
 * the configured claim paths read (org, in-tenant role, scopes), the
 * configured audience and issuer, and an exp k_token_lifetime seconds ahead;
 * verifies it like set_context() and makes it the signed context of the
 * attempt's subtransaction (its rollback removes it). The token never leaves
 * C: it is not returned, and no error or message carries it; it travels only
 * in tenant_guard.forward_token (superuser-only) and the SET LOCAL of
 * tenant_guard.forwarded_token that Citus sends to the workers. Without an
 * HS256 key (RS256, ES256, EdDSA: the grid holds no private key) it takes the
 * token of the caller's own set_context() (tenant_guard.forward_token), a
 * token of tenant A the DBA obtained from the issuer, verified again and
 * used only for attempts as its tenant; without either the call fails with
 * 55000 and says what is missing.
 *
 * _grid_become is C-style glue (no C++ objects); _grid_sign_in's C++ objects
 * live inside the boundary (pg_call around PostgreSQL calls).
 */
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include "core/claims.hpp"
#include "core/error.hpp"
#include "core/jwt.hpp"
#include "pg/boundary.hpp"
#include "pg/citus.hpp"
#include "pg/compat.hpp"
#include "pg/context.hpp"
#include "pg/guc.hpp"

extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

namespace tg = tenant_guard;
using tg::Error;
using tg::pg::pg_call;

TG_C_FUNCTION(tg__grid_become)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("the application role must not be null")));
	const Oid role = PG_GETARG_OID(0);
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("only a superuser can run the attack grid's attempts")));
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("role with OID %u does not exist", role)));
	// Only inside a subtransaction (the attempt's BEGIN ... EXCEPTION block),
	// whose end gives the superuser back.
	if (GetCurrentTransactionNestLevel() < 2)
		ereport(ERROR, (errcode(ERRCODE_INVALID_TRANSACTION_STATE),
		                errmsg("tenant_guard._grid_become() must run inside a subtransaction")));
	Oid user;
	int sec;
	GetUserIdAndSecContext(&user, &sec);
	SetUserIdAndSecContext(role, sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_RETURN_VOID();
}

namespace {

// How long a token the grid signs stays valid, in seconds: each attempt (one
// statement) signs its own, so this bounds how long a copy of it (read on a
// worker while the attempt ran) could be used.
constexpr std::int64_t k_token_lifetime = 300;

std::string as_string(const text* t)
{
	return t == nullptr ? std::string() : std::string(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

// claims with value at the dotted path (objects made on the way).
void put(nlohmann::json& claims, const std::string& path, nlohmann::json value)
{
	nlohmann::json* at = &claims;
	std::size_t start = 0;
	for (;;) {
		const std::size_t dot = path.find('.', start);
		const std::string segment = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
		if (!at->is_object())
			*at = nlohmann::json::object();
		if (dot == std::string::npos) {
			(*at)[segment] = std::move(value);
			return;
		}
		at = &(*at)[segment];
		start = dot + 1;
	}
}

// Zeroes a token's bytes when it goes out of scope, whatever happens.
struct Wiped {
	std::string value;
	~Wiped() { sodium_memzero(value.data(), value.size()); }
};

}  // namespace

TG_FUNCTION(tg__grid_sign_in)
{
	if (!superuser())
		throw Error(tg::sqlstate::k_insufficient_privilege, "only a superuser can sign the attack grid's tokens");
	if (PG_ARGISNULL(0))
		throw Error(tg::sqlstate::k_null_value_not_allowed, "the tenant must not be null");
	// the arguments (detoasting can raise) before any C++ object exists
	text* org_arg = PG_GETARG_TEXT_PP(0);
	text* role_arg = PG_ARGISNULL(1) ? nullptr : PG_GETARG_TEXT_PP(1);
	text* scopes_arg = PG_ARGISNULL(2) ? nullptr : PG_GETARG_TEXT_PP(2);
	// Only inside a subtransaction (the attempt's BEGIN ... EXCEPTION block),
	// whose end removes the context again.
	if (GetCurrentTransactionNestLevel() < 2)
		throw Error(tg::sqlstate::k_invalid_transaction_state,
		            "tenant_guard._grid_sign_in() must run inside a subtransaction");
	const std::string org = as_string(org_arg);
	const std::string in_role = as_string(role_arg);
	const std::string scopes = as_string(scopes_arg);

	std::string kid, why;
	const tg::jwt::Key* key = tg::context::signing_key(&kid, &why);
	if (key == nullptr) {
		// The caller's own token, when it called set_context() before the
		// grid (a token of tenant A from the issuer, for keys the grid cannot
		// sign with): used as it is, for its tenant only.
		const char* own = tg::citus::forward_token;
		if (own == nullptr || *own == '\0')
			throw Error(tg::sqlstate::k_object_not_in_prerequisite_state,
			            "the attack grid has no HS256 key to sign a token with, and no token of the tenant: " + why,
			            "The grid signs tokens only with an HS256 key that this node verifies tokens with; otherwise "
			            "it uses the token of the caller's own tenant_guard.set_context().",
			            "Configure an HS256 key (tenant_guard.jwt_algorithm = HS256 with tenant_guard.jwt_secret_file, "
			            "or an \"oct\" key in tenant_guard.jwt_jwks_file) on every node, or call "
			            "tenant_guard.set_context() with a token of tenant A (session => true) before the grid.");
		Wiped token{own};
		const tg::claims::Context c = tg::context::verified(token.value);
		const auto want = tg::claims::parse_uuid(org);
		if (!(want ? c.org == want : c.org_key == org))
			throw Error(
			    tg::sqlstate::k_object_not_in_prerequisite_state,
			    "the token of the caller's set_context() is of another tenant than the attempt needs",
			    "Without an HS256 key the grid signs no token: it uses the caller's token, for its tenant only.");
		tg::context::set_local_context(token.value);
		PG_RETURN_VOID();
	}

	const tg::claims::ClaimPaths& paths = tg::context::claim_paths();
	const std::int64_t now = static_cast<std::int64_t>(time(nullptr));
	nlohmann::json claims = nlohmann::json::object();
	put(claims, paths.org, org);
	if (!in_role.empty())
		put(claims, paths.role, in_role);
	if (!scopes.empty()) {
		nlohmann::json s = nlohmann::json::parse(scopes, nullptr, false);
		if (s.is_discarded() || !s.is_object())
			throw Error(tg::sqlstate::k_invalid_parameter_value, "scopes must be a JSON object of arrays");
		put(claims, paths.scopes, std::move(s));
	}
	claims["iat"] = now;
	claims["exp"] = now + k_token_lifetime;
	if (tg::guc::jwt_audience != nullptr && *tg::guc::jwt_audience != '\0')
		claims["aud"] = std::string(tg::guc::jwt_audience);
	if (tg::guc::jwt_issuer != nullptr && *tg::guc::jwt_issuer != '\0')
		claims["iss"] = std::string(tg::guc::jwt_issuer);

	Wiped token{tg::jwt::sign_hs256(*key, kid, claims.dump())};
	tg::context::set_local_context(token.value);
	PG_RETURN_VOID();
}
