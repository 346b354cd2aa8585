/*
 * pg/context.cpp
 *
 * Defines every tenant_guard.* setting, in the pgaudit layout: a comment with
 * the administrator's reason above each one. Settings that decide which
 * tenant a statement runs for are PGC_SUSET: an application role must not be
 * able to change where its own tenant comes from. Ends with
 * MarkGUCPrefixReserved("tenant_guard").
 *
 * This file is C-style glue: PostgreSQL is called directly, and the one
 * place that uses C++ objects (check_claim_path) confines them to a scope
 * that ends before any PostgreSQL call.
 */
#include "pg/guc.hpp"

#include <string>

#include "core/claims.hpp"

extern "C" {
#include "postgres.h"
#include "access/parallel.h"
#include "fmgr.h"
#include "storage/proc.h"
#include "utils/guc.h"
}

#include "pg/citus.hpp"
#include "pg/compat.hpp"
#include "pg/guc_hooks.hpp"

namespace tenant_guard::guc {

int context_source = k_source_claims;
bool require_context = false;
char* org_claim = nullptr;
char* user_claim = nullptr;
char* role_claim = nullptr;
char* scopes_claim = nullptr;
char* impersonator_claim = nullptr;
char* setting_org_id = nullptr;
char* setting_user_id = nullptr;
char* setting_role = nullptr;
char* setting_scopes = nullptr;
char* setting_impersonator = nullptr;
int jwt_algorithm = k_alg_hs256;
char* jwt_secret_file = nullptr;
char* jwt_public_key_file = nullptr;
char* jwt_audience = nullptr;
char* jwt_issuer = nullptr;
int jwt_leeway = 0;
int literal_token = k_literal_refuse;
char* signed_context = nullptr;
bool allow_unsafe_ddl = false;
std::uint64_t claim_paths_generation = 1;
std::uint64_t settings_generation = 1;

namespace {

const struct config_enum_entry source_options[] = {
    {"claims", k_source_claims, false},
    {"setting", k_source_setting, false},
    {"signed", k_source_signed, false},
    {nullptr, 0, false},
};

const struct config_enum_entry alg_options[] = {
    {"HS256", k_alg_hs256, false}, {"RS256", k_alg_rs256, false}, {"ES256", k_alg_es256, false},
    {"EdDSA", k_alg_eddsa, false}, {nullptr, 0, false},
};

const struct config_enum_entry literal_token_options[] = {
    {"refuse", k_literal_refuse, false},
    {"warn", k_literal_warn, false},
    {nullptr, 0, false},
};

// The local transaction in which allow_unsafe_ddl was last turned on.
LocalTransactionId unsafe_ddl_lxid = InvalidLocalTransactionId;

void assign_allow_unsafe_ddl(bool newval, void*)
{
	if (newval && MyProc != nullptr)
		unsafe_ddl_lxid = tenant_guard::pg::compat::my_lxid();
}

// True only while set_signed_context() is running.
bool setting_signed_context = false;

}  // namespace

bool check_claim_path(char** newval, void** extra, GucSource source)
{
	// The validation uses std::string; keep it in its own scope so no C++
	// object is alive when GUC_check_errdetail (which may ereport) runs.
	char why[256];
	why[0] = '\0';
	try {
		std::string reason;
		if (*newval == nullptr || claims::valid_path(*newval, &reason))
			return true;
		strlcpy(why, reason.c_str(), sizeof why);
	} catch (...) {
		strlcpy(why, "Out of memory.", sizeof why);
	}
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errdetail("%s", why);
	return false;
}

void bump_claim_paths(const char*, void*)
{
	++claim_paths_generation;
}

void bump_settings(const char*, void*)
{
	++settings_generation;
}

namespace {

/*
 * tenant_guard.signed_context can be set only by tenant_guard itself (from
 * set_context and clear_context) and by PostgreSQL when it copies the leader's
 * settings into a parallel worker. Anyone else, superusers included, is
 * refused: this is what makes the `signed` context source survive an
 * attacker who can run SET or set_config.
 */
bool check_signed_context(char** newval, void** extra, GucSource source)
{
	if (setting_signed_context || InitializingParallelWorker || source == PGC_S_DEFAULT)
		return true;
	if (*newval == nullptr || **newval == '\0')
		return true;  // clearing is always safe
	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("tenant_guard.signed_context can only be set by tenant_guard.set_context()");
	return false;
}

}  // namespace

bool unsafe_ddl_allowed()
{
	return allow_unsafe_ddl && MyProc != nullptr && unsafe_ddl_lxid == tenant_guard::pg::compat::my_lxid() &&
	       unsafe_ddl_lxid != InvalidLocalTransactionId;
}

const char* context_source_name()
{
	switch (context_source) {
	case k_source_setting:
		return "setting";
	case k_source_signed:
		return "signed";
	default:
		return "claims";
	}
}

void set_signed_context(const char* value, bool local)
{
	// a new context: no cached resolution of the old one survives
	++settings_generation;
	// and no token of an earlier set_context() is forwarded for it (set_context()
	// remembers its own token right after this)
	tenant_guard::citus::remember_token("", local);
	setting_signed_context = true;
	PG_TRY();
	{
		(void) set_config_option("tenant_guard.signed_context", value, PGC_SUSET, PGC_S_SESSION,
		                         local ? GUC_ACTION_LOCAL : GUC_ACTION_SET, true, 0, false);
	}
	PG_FINALLY();
	{
		setting_signed_context = false;
	}
	PG_END_TRY();
}

void init()
{
	/*
	 * Where the tenant context comes from. Superuser-only: letting the
	 * application choose would let a SQL injection switch to a source it can
	 * forge (the plain settings).
	 */
	DefineCustomEnumVariable("tenant_guard.context_source", "Where the tenant context comes from.",
	                         "claims: the JSON in request.jwt.claims (PostgREST, Supabase); setting: the plain "
	                         "settings tenant_guard.org_id, user_id, role; signed: only a context established by "
	                         "tenant_guard.set_context() with a verified token.",
	                         &context_source, k_source_claims, source_options, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr,
	                         nullptr, nullptr);

	/*
	 * Fail loudly instead of returning NULL when there is no tenant context,
	 * so a code path that forgot to set one shows up in testing.
	 */
	DefineCustomBoolVariable("tenant_guard.require_context",
	                         "Raise an error instead of returning NULL when there is no tenant context.", nullptr,
	                         &require_context, false, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);

	/*
	 * Claim names (dotted paths for nested claims) used by the claims and
	 * signed sources. Superuser-only: pointing the org claim at a claim the
	 * user controls (user_metadata, say) would hand them any tenant.
	 */
	DefineCustomStringVariable("tenant_guard.org_claim", "Claim path of the organization id.",
	                           "A dotted path such as app_metadata.org_id.", &org_claim, "org_id", PGC_SUSET,
	                           GUC_NOT_IN_SAMPLE, check_claim_path, bump_claim_paths, nullptr);
	DefineCustomStringVariable("tenant_guard.user_claim", "Claim path of the user id.", nullptr, &user_claim, "sub",
	                           PGC_SUSET, GUC_NOT_IN_SAMPLE, check_claim_path, bump_claim_paths, nullptr);
	DefineCustomStringVariable("tenant_guard.role_claim", "Claim path of the in-tenant role.", nullptr, &role_claim,
	                           "org_role", PGC_SUSET, GUC_NOT_IN_SAMPLE, check_claim_path, bump_claim_paths, nullptr);
	DefineCustomStringVariable("tenant_guard.scopes_claim",
	                           "Claim path of the sub-tenant scopes (an object of arrays).", nullptr, &scopes_claim,
	                           "scopes", PGC_SUSET, GUC_NOT_IN_SAMPLE, check_claim_path, bump_claim_paths, nullptr);

	/*
	 * Claim path of the support agent acting as the user (RFC 8693 actor
	 * claim by default). Superuser-only like the other claim paths: pointing
	 * it at a claim the user controls would let them blame someone else.
	 */
	DefineCustomStringVariable("tenant_guard.impersonator_claim", "Claim path of the impersonating support agent.",
	                           "A dotted path such as act.sub (RFC 8693).", &impersonator_claim, "act.sub", PGC_SUSET,
	                           GUC_NOT_IN_SAMPLE, check_claim_path, bump_claim_paths, nullptr);

	/*
	 * The plain settings of the `setting` source. Any role can set them,
	 * which is the point of that source and its weakness: see
	 * docs/security-model.md. They are ignored by the other sources.
	 */
	DefineCustomStringVariable("tenant_guard.org_id", "Organization id for context_source = setting.", nullptr,
	                           &setting_org_id, "", PGC_USERSET, GUC_NOT_IN_SAMPLE, nullptr, bump_settings, nullptr);
	DefineCustomStringVariable("tenant_guard.user_id", "User id for context_source = setting.", nullptr,
	                           &setting_user_id, "", PGC_USERSET, GUC_NOT_IN_SAMPLE, nullptr, bump_settings, nullptr);
	DefineCustomStringVariable("tenant_guard.role", "In-tenant role for context_source = setting.", nullptr,
	                           &setting_role, "", PGC_USERSET, GUC_NOT_IN_SAMPLE, nullptr, bump_settings, nullptr);
	DefineCustomStringVariable("tenant_guard.scopes",
	                           "Sub-tenant scopes (JSON object of arrays) for context_source = setting.", nullptr,
	                           &setting_scopes, "", PGC_USERSET, GUC_NOT_IN_SAMPLE, nullptr, bump_settings, nullptr);

	/*
	 * The impersonator for context_source = setting, next to org_id, user_id
	 * and role; as forgeable as they are (docs/security-model.md).
	 */
	DefineCustomStringVariable("tenant_guard.impersonator", "Impersonating agent for context_source = setting.",
	                           nullptr, &setting_impersonator, "", PGC_USERSET, GUC_NOT_IN_SAMPLE, nullptr,
	                           bump_settings, nullptr);

	/*
	 * Signed tokens. The algorithm is pinned here, never taken from the
	 * token, which closes "none" and HS/RS confusion. Key file names are
	 * hidden from non-superusers and read by the backend itself.
	 */
	DefineCustomEnumVariable("tenant_guard.jwt_algorithm", "The only JWT algorithm set_context() accepts.", nullptr,
	                         &jwt_algorithm, k_alg_hs256, alg_options, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr,
	                         nullptr);
	DefineCustomStringVariable("tenant_guard.jwt_secret_file", "File holding the HS256 secret.",
	                           "The file's bytes are the secret; one trailing newline is ignored. The file must not "
	                           "be readable by group or others.",
	                           &jwt_secret_file, "", PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE, nullptr,
	                           nullptr, nullptr);
	DefineCustomStringVariable("tenant_guard.jwt_public_key_file",
	                           "PEM public key file for RS256, ES256 or EdDSA tokens.", nullptr, &jwt_public_key_file,
	                           "", PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("tenant_guard.jwt_audience",
	                           "Audience a token must name in its aud claim; empty: not checked.", nullptr,
	                           &jwt_audience, "", PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("tenant_guard.jwt_issuer",
	                           "Issuer a token must name in its iss claim; empty: not checked.", nullptr, &jwt_issuer,
	                           "", PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("tenant_guard.jwt_leeway", "Clock skew allowed when checking exp and nbf.", nullptr,
	                        &jwt_leeway, 0, 0, 300, PGC_SUSET, GUC_UNIT_S | GUC_NOT_IN_SAMPLE, nullptr, nullptr,
	                        nullptr);

	/*
	 * A token written into the statement text can be read by every session
	 * of the same database role in pg_stat_activity (every tenant shares the
	 * application role) and may reach the server log: set_context() refuses
	 * it. `warn` only warns, for an application that cannot be changed yet.
	 * Superuser-only: the application must not be able to relax it.
	 */
	DefineCustomEnumVariable("tenant_guard.literal_token",
	                         "What set_context() does with a token written into the statement text.",
	                         "refuse: an error, no context is set; warn: a WARNING, the context is set. In both "
	                         "cases the statement text shown in pg_stat_activity has the token removed.",
	                         &literal_token, k_literal_refuse, literal_token_options, PGC_SUSET, GUC_NOT_IN_SAMPLE,
	                         nullptr, nullptr, nullptr);

	/*
	 * The knowing escape from the guards on protected tables (refused ALTER
	 * and DROP of what protect() generated). Superuser-only, honoured only in
	 * the transaction that turned it on (SET LOCAL inside the migration), and
	 * every use is recorded in tenant_guard.unsafe_ddl_log.
	 */
	DefineCustomBoolVariable(
	    "tenant_guard.allow_unsafe_ddl", "Allow DDL that weakens a protected table, for this transaction.", nullptr,
	    &allow_unsafe_ddl, false, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, assign_allow_unsafe_ddl, nullptr);

	/*
	 * Internal: the verified claims of the current set_context(). Kept in a
	 * setting, not in backend memory, so that PostgreSQL itself scopes it to
	 * the transaction (SET LOCAL semantics, savepoints included), clears it on
	 * RESET ALL / DISCARD ALL, and copies it into parallel workers. Only
	 * tenant_guard can set it (see check_signed_context).
	 */
	DefineCustomStringVariable(
	    "tenant_guard.signed_context", "Internal: verified tenant context.", nullptr, &signed_context, "", PGC_SUSET,
	    GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_SUPERUSER_ONLY | GUC_DISALLOW_IN_FILE | GUC_DISALLOW_IN_AUTO_FILE,
	    check_signed_context, nullptr, nullptr);

	MarkGUCPrefixReserved("tenant_guard");
}

}  // namespace tenant_guard::guc
