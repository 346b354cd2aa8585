/*
 * pg/guc_hooks.hpp: setting hooks defined in context.cpp, for every feature
 * that defines a claim path or a context setting. Include after the
 * PostgreSQL headers (and after any src/core header, which must come before
 * them).
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/guc.h"
}

namespace tenant_guard::guc {

// Validates a dotted claim path such as app_metadata.org_id.
bool check_claim_path(char** newval, void** extra, GucSource source);
// Bump claim_paths_generation / settings_generation (guc.hpp), so the
// context caches re-derive.
void bump_claim_paths(const char* newval, void* extra);
void bump_settings(const char* newval, void* extra);

}  // namespace tenant_guard::guc
