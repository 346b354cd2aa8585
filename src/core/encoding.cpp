/*
 * core/encoding.cpp: base64url and hex via libsodium.
 */
#include "core/encoding.hpp"

#include <sodium.h>

#include "core/no_postgres.hpp"

namespace tenant_guard::encoding {

std::optional<Bytes> base64url_decode(std::string_view in)
{
	Bytes out(in.size() * 3 / 4 + 3);
	std::size_t out_len = 0;
	const char* end = nullptr;
	if (sodium_base642bin(out.data(), out.size(), in.data(), in.size(), nullptr, &out_len, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return std::nullopt;
	// libsodium stops at the first character it cannot decode; insist that it consumed everything.
	if (end != in.data() + in.size())
		return std::nullopt;
	out.resize(out_len);
	return out;
}

std::string base64url_encode(const std::uint8_t* data, std::size_t len)
{
	const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
	std::string out(sodium_base64_encoded_len(len, variant), '\0');
	sodium_bin2base64(out.data(), out.size(), data, len, variant);
	out.resize(out.size() - 1);  // drop the terminating NUL written by libsodium
	return out;
}

std::string hex_encode(const std::uint8_t* data, std::size_t len)
{
	std::string out(len * 2 + 1, '\0');
	sodium_bin2hex(out.data(), out.size(), data, len);
	out.resize(len * 2);
	return out;
}

std::optional<Bytes> hex_decode(std::string_view in)
{
	Bytes out(in.size() / 2 + 1);
	std::size_t out_len = 0;
	const char* end = nullptr;
	if (sodium_hex2bin(out.data(), out.size(), in.data(), in.size(), nullptr, &out_len, &end) != 0)
		return std::nullopt;
	if (end != in.data() + in.size() || in.size() % 2 != 0)
		return std::nullopt;
	out.resize(out_len);
	return out;
}

}  // namespace tenant_guard::encoding
