/*
 * pg/keyset.hpp: the JWKS settings of signed mode (defined in keyset.cpp) and
 * the key set they name. Reference: docs/settings.md, docs/signed-mode.md.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/jwks.hpp"

namespace tenant_guard::keyset {

extern char* jwks_file;           // tenant_guard.jwt_jwks_file
extern char* service_key_ids;     // tenant_guard.jwt_service_key_ids
extern int service_max_lifetime;  // tenant_guard.jwt_service_max_lifetime (seconds)

// Defines the settings; called from _PG_init before guc::init().
void init();

// The key set of tenant_guard.jwt_jwks_file, read again whenever the file
// (or the setting) changes; nullptr when the setting is empty. Throws
// tenant_guard::Error when the file cannot be read or is not a valid set.
const jwks::KeySet* current();

// tenant_guard.jwt_service_key_ids as a list (comma-separated, blanks trimmed).
std::vector<std::string> service_kids();

}  // namespace tenant_guard::keyset
