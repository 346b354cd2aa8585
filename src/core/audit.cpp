/*
 * core/audit.cpp: canonical hashing input and RFC 4180 CSV (see audit.hpp).
 */
#include "core/audit.hpp"

#include <cstring>
#include <new>
#include <openssl/evp.h>

#include "core/error.hpp"

namespace tenant_guard::audit {

std::string csv_field(const std::optional<std::string_view>& v)
{
	if (!v)
		return std::string();
	const std::string_view s = *v;
	if (!s.empty() && s.find_first_of(",\"\r\n") == std::string_view::npos)
		return std::string(s);
	std::string out;
	out.reserve(s.size() + 2);
	out.push_back('"');
	for (char c : s) {
		if (c == '"')
			out.push_back('"');
		out.push_back(c);
	}
	out.push_back('"');
	return out;
}

std::string csv_line(const std::vector<std::optional<std::string>>& fields)
{
	std::string out;
	for (std::size_t i = 0; i < fields.size(); ++i) {
		if (i > 0)
			out.push_back(',');
		if (fields[i])
			out += csv_field(std::string_view(*fields[i]));
	}
	return out;
}

}  // namespace tenant_guard::audit

namespace tenant_guard::audit {

namespace {

// Feeds the framing of fields into a digest through a small buffer (the
// frames of a record's short fields go to the digest in one update; long
// values, such as a statement record's row images of megabytes, are passed
// through without a copy).
class Stream {
public:
	explicit Stream(EVP_MD_CTX* ctx) : ctx_(ctx) {}
	bool raw(const void* p, std::size_t n)
	{
		if (n <= sizeof buf_ - used_) {
			std::memcpy(buf_ + used_, p, n);
			used_ += n;
			return true;
		}
		if (!flush())
			return false;
		if (n >= sizeof buf_)
			return EVP_DigestUpdate(ctx_, p, n) == 1;
		std::memcpy(buf_, p, n);
		used_ = n;
		return true;
	}
	bool flush()
	{
		const bool ok = used_ == 0 || EVP_DigestUpdate(ctx_, buf_, used_) == 1;
		used_ = 0;
		return ok;
	}
	bool null() { return raw("\x00", 1); }
	bool header(std::size_t len)
	{
		if (len > 0xffffffffu)
			return false;
		const auto v = static_cast<std::uint32_t>(len);
		const unsigned char h[5] = {1, static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
		                            static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
		return raw(h, sizeof h);
	}
	bool bytes(const char* p, std::size_t n) { return header(n) && raw(p, n); }

private:
	EVP_MD_CTX* ctx_;
	unsigned char buf_[1024];
	std::size_t used_ = 0;
};

// SHA-256's implementation, fetched once, and a digest context kept per
// thread: fetching and allocating them for every record cost more than
// hashing a small record. Never freed (no destructor may run after
// OpenSSL's own clean-up at exit).
thread_local EVP_MD* t_sha256 = nullptr;
thread_local EVP_MD_CTX* t_ctx = nullptr;

EVP_MD_CTX* digest_context()
{
	if (t_sha256 == nullptr)
		t_sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
	if (t_ctx == nullptr)
		t_ctx = EVP_MD_CTX_new();
	if (t_sha256 == nullptr || t_ctx == nullptr || EVP_DigestInit_ex(t_ctx, t_sha256, nullptr) != 1)
		return nullptr;
	return t_ctx;
}

// Length of an array field's inner frame.
std::size_t array_inner_size(const FieldView& f)
{
	std::size_t n = 5 + std::to_string(f.nelems).size();
	for (std::size_t j = 0; j < f.nelems; ++j)
		n += f.elems[j].kind == FieldView::k_bytes ? 5 + f.elems[j].len : 1;
	return n;
}

}  // namespace

namespace {

// The framed fields into the stream.
bool feed(Stream& s, const FieldView* fields, std::size_t n)
{
	bool ok = true;
	for (std::size_t i = 0; ok && i < n; ++i) {
		const FieldView& f = fields[i];
		if (f.kind == FieldView::k_null) {
			ok = s.null();
		} else if (f.kind == FieldView::k_bytes) {
			ok = s.bytes(f.data, f.len);
		} else {
			const std::string count = std::to_string(f.nelems);
			ok = s.header(array_inner_size(f)) && s.bytes(count.data(), count.size());
			for (std::size_t j = 0; ok && j < f.nelems; ++j)
				ok = f.elems[j].kind == FieldView::k_bytes ? s.bytes(f.elems[j].data, f.elems[j].len) : s.null();
		}
	}
	return ok;
}

bool finish(EVP_MD_CTX* ctx, Stream& s, Hash* out)
{
	unsigned int len = 0;
	return s.flush() && EVP_DigestFinal_ex(ctx, out->data(), &len) == 1 && len == out->size();
}

}  // namespace

bool hash_fields(const FieldView* fields, std::size_t n, Hash* out) noexcept
{
	try {
		EVP_MD_CTX* ctx = digest_context();
		if (ctx == nullptr)
			return false;
		Stream s(ctx);
		return feed(s, fields, n) && finish(ctx, s, out);
	} catch (...) {
		return false;
	}
}

struct HashState {
	EVP_MD_CTX* ctx;
};

HashState* hash_fields_begin(const FieldView* fields, std::size_t n) noexcept
{
	try {
		EVP_MD_CTX* t = digest_context();
		if (t == nullptr)
			return nullptr;
		Stream s(t);
		if (!feed(s, fields, n) || !s.flush())
			return nullptr;
		HashState* st = new (std::nothrow) HashState{EVP_MD_CTX_new()};
		if (st == nullptr)
			return nullptr;
		if (st->ctx == nullptr || EVP_MD_CTX_copy_ex(st->ctx, t) != 1) {
			hash_state_free(st);
			return nullptr;
		}
		return st;
	} catch (...) {
		return nullptr;
	}
}

bool hash_fields_finish(const HashState* state, const FieldView* fields, std::size_t n, Hash* out) noexcept
{
	try {
		EVP_MD_CTX* t = digest_context();
		if (t == nullptr || state == nullptr || EVP_MD_CTX_copy_ex(t, state->ctx) != 1)
			return false;
		Stream s(t);
		return feed(s, fields, n) && finish(t, s, out);
	} catch (...) {
		return false;
	}
}

void hash_state_free(HashState* state) noexcept
{
	if (state == nullptr)
		return;
	EVP_MD_CTX_free(state->ctx);
	delete state;
}

}  // namespace tenant_guard::audit
