/*
 * pg/guc.hpp: every tenant_guard.* setting (defined in context.cpp) and the
 * values the rest of the glue reads. Reference: docs/settings.md.
 */
#pragma once

#include <cstdint>

namespace tenant_guard::guc {

enum ContextSource { k_source_claims = 0, k_source_setting = 1, k_source_signed = 2 };
enum JwtAlg { k_alg_hs256 = 0, k_alg_rs256 = 1, k_alg_es256 = 2, k_alg_eddsa = 3 };
enum LiteralToken { k_literal_refuse = 0, k_literal_warn = 1 };

extern int context_source;
extern bool require_context;
extern char* org_claim;
extern char* user_claim;
extern char* role_claim;
extern char* scopes_claim;
extern char* impersonator_claim;  // tenant_guard.impersonator_claim

extern char* setting_org_id;
extern char* setting_user_id;
extern char* setting_role;
extern char* setting_scopes;
extern char* setting_impersonator;  // tenant_guard.impersonator

extern int jwt_algorithm;
extern char* jwt_secret_file;
extern char* jwt_public_key_file;
extern char* jwt_audience;
extern char* jwt_issuer;
extern int jwt_leeway;
// What set_context() does with a token written literally into the statement.
extern int literal_token;

extern bool allow_unsafe_ddl;
// True when allow_unsafe_ddl is on and was turned on in the current transaction.
bool unsafe_ddl_allowed();

// The verified claims of tenant_guard.set_context(); see context.cpp.
extern char* signed_context;

// Bumped by the assign hooks, so caches know when to re-derive.
extern std::uint64_t claim_paths_generation;
extern std::uint64_t settings_generation;

const char* context_source_name();

// Sets tenant_guard.signed_context (the only way it can be set). `local`
// follows SET LOCAL semantics. Plain C frame: may ereport.
void set_signed_context(const char* value, bool local);

void init();

}  // namespace tenant_guard::guc
