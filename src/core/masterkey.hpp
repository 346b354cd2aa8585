/*
 * core/masterkey.hpp
 *
 * Parsing the master key (KEK) read from tenant_guard.master_key_file or the
 * output of tenant_guard.master_key_command: either 64 hexadecimal
 * characters with at most one trailing newline ("\n" or "\r\n"), or exactly
 * 32 raw bytes. Anything else is refused. The key lands in a SecureBuffer;
 * no error ever contains any byte of the input.
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/secure_buffer.hpp"
#include "core/no_postgres.hpp"

namespace tenant_guard::masterkey {

inline constexpr std::size_t k_len = 32;

// Throws tenant_guard::Error (F0000) naming `what` ("master key file").
SecureBuffer parse(const std::uint8_t* data, std::size_t len, const char* what);

}  // namespace tenant_guard::masterkey
