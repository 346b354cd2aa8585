/*
 * pg/citus.hpp: tenant_guard on a Citus cluster (citus.cpp, docs/citus.md):
 * the shard wall and the forwarding of the tenant context to worker backends.
 */
#pragma once

#include <cstdint>

extern "C" {
#include "postgres.h"
#include "utils/relcache.h"
}

namespace tenant_guard::citus {

// The token of the current set_context() (forwarded to workers), and a token
// forwarded by a coordinator (verified here before it counts).
extern char* forward_token;
extern char* forwarded_token;
extern bool hooks_installed;

// Defines tenant_guard.forward_token and tenant_guard.forwarded_token (before guc::init()).
void define_settings();
// Installs the hooks (preload only).
void init();
// Keeps the token set_context() just verified, with the same scope. Every
// other change of the signed context first sets it to '' (set_signed_context()),
// so a maintenance or support context never forwards an earlier token.
void remember_token(const char* token, bool local);
// Is Citus loaded in this preloaded backend? Only then does a forwarded token count.
bool present();
// Changes at every executor start (0: the hook is not installed, so callers
// must not cache per statement).
std::uint64_t statement_generation();
// Does this backend add the wall to rel?
bool walled(Relation rel);
// The distributed or reference table of which rel is a Citus shard (a shard
// of one of its partitions: that partition), or InvalidOid for any other
// relation. The audit triggers record a shard's changes under this name.
Oid shard_table(Relation rel);
// The tenant column a walled Citus table has in this node's
// tenant_guard.citus_walls (false when it has no row there).
bool wall_column(Oid table, char* column, size_t column_len);
// Plain C (may ereport). Makes this transaction a Citus coordinated one (Citus
// then assigns its distributed transaction id); false when this Citus lacks
// the functions (looked up by name).
bool ensure_coordinated();
// Plain C (may ereport). Sends one SET LOCAL statement to every worker
// connection of this coordinated transaction, and has Citus replay it on the
// connections it opens later (PostprocessVariableSetStmt); nothing changes
// here. False when this Citus lacks the functions.
bool send_set_local(const char* stmt);

}  // namespace tenant_guard::citus
