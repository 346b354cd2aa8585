/*
 * core/encoding.hpp
 *
 * Thin wrappers over libsodium's base64url and hex codecs (no hand-written
 * decoder), used by the JWT verifier and the tests.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/no_postgres.hpp"

namespace tenant_guard::encoding {

using Bytes = std::vector<std::uint8_t>;

// base64url without padding (RFC 7515 section 2). nullopt on any invalid
// character, on padding, or on trailing bits that are not zero.
std::optional<Bytes> base64url_decode(std::string_view in);
std::string base64url_encode(const std::uint8_t* data, std::size_t len);

std::string hex_encode(const std::uint8_t* data, std::size_t len);
std::optional<Bytes> hex_decode(std::string_view in);

}  // namespace tenant_guard::encoding
