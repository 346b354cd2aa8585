/*
 * core/masterkey.cpp: see masterkey.hpp.
 */
#include "core/masterkey.hpp"

#include <cstring>
#include <sodium.h>
#include <string>

#include "core/error.hpp"
#include "core/no_postgres.hpp"

namespace tenant_guard::masterkey {

SecureBuffer parse(const std::uint8_t* data, std::size_t len, const char* what)
{
	SecureBuffer key(k_len);
	if (len == k_len) {
		std::memcpy(key.data(), data, k_len);
		return key;
	}
	std::size_t hex_len = len;
	if (hex_len > 0 && data[hex_len - 1] == '\n')
		--hex_len;
	if (hex_len > 0 && data[hex_len - 1] == '\r' && hex_len != len)
		--hex_len;
	std::size_t out_len = 0;
	const char* end = nullptr;
	if (hex_len == 2 * k_len &&
	    sodium_hex2bin(key.data(), k_len, reinterpret_cast<const char*>(data), hex_len, nullptr, &out_len, &end) == 0 &&
	    out_len == k_len && end == reinterpret_cast<const char*>(data) + hex_len)
		return key;
	throw Error(sqlstate::k_config_file_error, std::string(what) + " does not hold a 256-bit key",
	            "Expected 64 hexadecimal characters (optionally followed by a newline) or exactly 32 bytes; got " +
	                std::to_string(len) + " bytes.",
	            "Create one with: openssl rand -hex 32");
}

}  // namespace tenant_guard::masterkey
