/*
 * pg/context.hpp: the tenant context of the current statement, for glue that
 * needs it from C++ (the audit trigger). Defined in context_fmgr.cpp; same
 * resolution as the SQL accessors. May throw (std::bad_alloc); never ereports.
 *
 * And, for the attack grid's signed attempts (grid_fmgr.cpp), the key this
 * node could sign a token with and the way set_context() establishes one.
 */
#pragma once

#include <string>

#include "core/claims.hpp"

namespace tenant_guard::jwt {
class Key;
}

namespace tenant_guard::context {

const claims::Context& current();

// The claim paths of the tenant_guard.*_claim settings.
const claims::ClaimPaths& claim_paths();

// The HS256 key this node verifies tokens with, by the rules set_context()
// follows: with tenant_guard.jwt_jwks_file, the first "oct" key of the set
// that is not a service key (*kid: its key id); otherwise the secret file
// when tenant_guard.jwt_algorithm is HS256 (*kid empty). nullptr when there
// is none, with *why saying so (a clause naming the settings, never a key).
// Throws tenant_guard::Error when a configured file cannot be read.
const jwt::Key* signing_key(std::string* kid, std::string* why);

// What set_context(token) does in a transaction, without its check of the
// statement text (the token was never in one): verifies token with this
// node's key settings, then makes its claims the signed context until the end
// of the current (sub)transaction and keeps the token for forwarding to Citus
// workers. Throws tenant_guard::Error (28000) when it does not verify, or a
// PgError. Superuser callers only (the attack grid).
void set_local_context(const std::string& token);
// The context of token as set_context() would verify it now, nothing set.
// Throws tenant_guard::Error (28000) when it does not verify.
claims::Context verified(const std::string& token);

}  // namespace tenant_guard::context
