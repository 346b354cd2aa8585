/*
 * pg/crypto.hpp: the column-encryption settings (crypto.cpp) and the key
 * cache hooks (crypto_keys.cpp). Reference: docs/encryption.md,
 * docs/key-management.md.
 */
#pragma once

#include <cstdint>

namespace tenant_guard::crypto {

extern char* master_key_file;
extern char* master_key_command;
extern char* previous_master_key_file;
extern char* previous_master_key_command;

// Bumped whenever one of the four settings above is assigned (SET, RESET,
// reload); the key cache drops everything when it changes.
extern std::uint64_t settings_generation;

// Defines the settings and registers the relcache callback that drops the
// per-backend key cache; called once from _PG_init.
void init();

// Drops every cached key (crypto_keys.cpp). Never throws, calls nothing in
// PostgreSQL.
void drop_key_cache() noexcept;

// The relation the key cache depends on (InvalidOid until first loaded).
extern unsigned int tenant_keys_relid;

}  // namespace tenant_guard::crypto
