/*
 * test/unit/record_hasher.cpp: see record_hasher.hpp.
 */
#include "record_hasher.hpp"

#include <new>
#include <openssl/evp.h>

#include "core/error.hpp"

namespace tenant_guard::audit {

RecordHasher::RecordHasher() = default;
RecordHasher::~RecordHasher() = default;

void RecordHasher::frame(std::string& out, std::string_view v)
{
	const auto n = static_cast<std::uint32_t>(v.size());
	out.push_back('\x01');
	out.push_back(static_cast<char>((n >> 24) & 0xff));
	out.push_back(static_cast<char>((n >> 16) & 0xff));
	out.push_back(static_cast<char>((n >> 8) & 0xff));
	out.push_back(static_cast<char>(n & 0xff));
	out.append(v.data(), v.size());
}

void RecordHasher::null()
{
	input_.push_back('\x00');
}

void RecordHasher::bytes(std::string_view v)
{
	if (v.size() > 0xffffffffu)
		throw Error(sqlstate::k_invalid_parameter_value, "audit field too large to hash");
	frame(input_, v);
}

void RecordHasher::integer(std::int64_t v)
{
	bytes(std::to_string(v));
}

void RecordHasher::array(const std::vector<std::optional<std::string>>& v)
{
	std::string inner;
	std::string count = std::to_string(v.size());
	frame(inner, count);
	for (const auto& e : v) {
		if (e)
			frame(inner, *e);
		else
			inner.push_back('\x00');
	}
	bytes(inner);
}

Hash RecordHasher::finish()
{
	Hash out{};
	unsigned int len = 0;
	EVP_MD_CTX* ctx = EVP_MD_CTX_new();
	if (ctx == nullptr)
		throw std::bad_alloc();
	const bool ok = EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
	                EVP_DigestUpdate(ctx, input_.data(), input_.size()) == 1 &&
	                EVP_DigestFinal_ex(ctx, out.data(), &len) == 1 && len == out.size();
	EVP_MD_CTX_free(ctx);
	input_.clear();
	if (!ok)
		throw Error(sqlstate::k_internal_error, "SHA-256 of an audit record failed");
	return out;
}

}  // namespace tenant_guard::audit
