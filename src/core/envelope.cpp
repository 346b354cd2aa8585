/*
 * core/envelope.cpp: envelope codec, DEK wrapping, blind-index keys; see
 * envelope.hpp for the byte layouts.
 */
#include "core/envelope.hpp"

#include <cstring>
#include <sodium.h>

#include "core/error.hpp"
#include "core/no_postgres.hpp"

namespace tenant_guard::envelope {

namespace {

constexpr char k_enc_label[] = "tgenc";
constexpr char k_dek_label[] = "tgdek";
constexpr char k_kek_id_label[] = "tenant_guard kek id v1";
constexpr char k_index_salt[] = "tenant_guard blind index v1";
constexpr const char* k_invalid = sqlstate::k_invalid_binary_representation;

void put_u32(std::uint8_t* p, std::uint32_t v)
{
	p[0] = static_cast<std::uint8_t>(v >> 24);
	p[1] = static_cast<std::uint8_t>(v >> 16);
	p[2] = static_cast<std::uint8_t>(v >> 8);
	p[3] = static_cast<std::uint8_t>(v);
}

std::uint32_t get_u32(const std::uint8_t* p)
{
	return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

void append(std::vector<std::uint8_t>& v, const void* p, std::size_t n)
{
	const auto* b = static_cast<const std::uint8_t*>(p);
	v.insert(v.end(), b, b + n);
}

void append_u32(std::vector<std::uint8_t>& v, std::uint32_t x)
{
	std::uint8_t b[4];
	put_u32(b, x);
	append(v, b, 4);
}

void dek_ad(std::uint8_t* ad, const OrgId& org, std::uint32_t version)
{
	std::memcpy(ad, k_dek_label, 5);
	ad[5] = k_format_v1;
	std::memcpy(ad + 6, org.data(), k_org_len);
	put_u32(ad + 6 + k_org_len, version);
}
constexpr std::size_t k_dek_ad_len = 5 + 1 + k_org_len + 4;

}  // namespace

Status decode(const std::uint8_t* data, std::size_t len, View* out)
{
	if (len == 0)
		return Status::empty;
	if (data[0] != k_format_v1)
		return Status::foreign_format;
	if (len < k_overhead)
		return Status::truncated;
	const std::uint32_t version = get_u32(data + 1);
	if (version == 0 || version > k_max_version)
		return Status::bad_version;
	out->format = data[0];
	out->key_version = version;
	out->nonce = data + 5;
	out->ciphertext = data + k_header_len;
	out->ciphertext_len = len - k_overhead;
	out->tag = data + len - aead::k_tag_len;
	return Status::ok;
}

View decode_or_throw(const std::uint8_t* data, std::size_t len)
{
	View v;
	switch (decode(data, len, &v)) {
	case Status::ok:
		return v;
	case Status::empty:
		throw Error(k_invalid, "ciphertext is truncated", "The value is empty.",
		            "Pass a value produced by tenant_guard.encrypt().");
	case Status::foreign_format: {
		char hex[3];
		sodium_bin2hex(hex, sizeof hex, data, 1);
		throw Error(k_invalid, "unsupported ciphertext format",
		            std::string("The format byte is 0x") + hex + "; this version of tenant_guard reads format 0x01.",
		            "Pass a value produced by tenant_guard.encrypt().");
	}
	case Status::truncated:
		throw Error(k_invalid, "ciphertext is truncated",
		            "A tenant_guard ciphertext has at least " + std::to_string(k_overhead) + " bytes; this one has " +
		                std::to_string(len) + ".");
	case Status::bad_version:
		throw Error(k_invalid, "invalid key version in ciphertext", "Key versions run from 1 to 2147483647.");
	}
	throw Error(sqlstate::k_internal_error, "unexpected envelope status");
}

void write_header(std::uint8_t* out, std::uint32_t key_version, const std::uint8_t* nonce)
{
	out[0] = k_format_v1;
	put_u32(out + 1, key_version);
	std::memcpy(out + 5, nonce, aead::k_nonce_len);
}

void associated_data(std::vector<std::uint8_t>& out, const OrgId& org, std::uint32_t key_version,
                     const std::uint8_t* aad, std::size_t aad_len)
{
	if (aad_len > 0xffffffffu)
		throw Error(sqlstate::k_invalid_parameter_value, "aad is too long");
	out.clear();
	out.reserve(5 + 1 + 4 + k_org_len + 4 + aad_len);
	append(out, k_enc_label, 5);
	out.push_back(k_format_v1);
	append_u32(out, key_version);
	append(out, org.data(), k_org_len);
	append_u32(out, static_cast<std::uint32_t>(aad_len));
	if (aad_len)
		append(out, aad, aad_len);
}

std::vector<std::uint8_t> seal(aead::Gcm& gcm, const OrgId& org, std::uint32_t key_version, const std::uint8_t* nonce,
                               const std::uint8_t* aad, std::size_t aad_len, const std::uint8_t* data, std::size_t len)
{
	std::vector<std::uint8_t> ad;
	associated_data(ad, org, key_version, aad, aad_len);
	std::vector<std::uint8_t> out(len + k_overhead);
	write_header(out.data(), key_version, nonce);
	gcm.seal(nonce, ad.data(), ad.size(), data, len, out.data() + k_header_len, out.data() + k_header_len + len);
	return out;
}

std::vector<std::uint8_t> open(aead::Gcm& gcm, const OrgId& org, const std::uint8_t* aad, std::size_t aad_len,
                               const std::uint8_t* data, std::size_t len)
{
	const View v = decode_or_throw(data, len);
	std::vector<std::uint8_t> ad;
	associated_data(ad, org, v.key_version, aad, aad_len);
	std::vector<std::uint8_t> out(v.ciphertext_len);
	if (!gcm.open(v.nonce, ad.data(), ad.size(), v.ciphertext, v.ciphertext_len, v.tag, out.data()))
		throw Error(sqlstate::k_invalid_parameter_value, "ciphertext authentication failed",
		            "The value was altered, or it was encrypted for another tenant, key or aad.");
	return out;
}

KekId kek_id(const std::uint8_t* kek)
{
	const aead::Digest d = aead::hmac_sha256(
	    kek, aead::k_key_len, reinterpret_cast<const std::uint8_t*>(k_kek_id_label), sizeof k_kek_id_label - 1);
	KekId id;
	std::memcpy(id.data(), d.data(), id.size());
	return id;
}

std::vector<std::uint8_t> wrap_dek(const std::uint8_t* kek, const OrgId& org, std::uint32_t key_version,
                                   const std::uint8_t* dek)
{
	std::uint8_t ad[k_dek_ad_len];
	dek_ad(ad, org, key_version);
	std::vector<std::uint8_t> out(k_wrapped_len);
	randombytes_buf(out.data(), aead::k_nonce_len);
	aead::Gcm gcm(kek);
	gcm.seal(out.data(), ad, sizeof ad, dek, aead::k_key_len, out.data() + aead::k_nonce_len,
	         out.data() + aead::k_nonce_len + aead::k_key_len);
	return out;
}

SecureBuffer unwrap_dek(const std::uint8_t* kek, const OrgId& org, std::uint32_t key_version,
                        const std::uint8_t* wrapped, std::size_t len)
{
	if (len != k_wrapped_len)
		throw Error(sqlstate::k_internal_error, "wrapped tenant key has an invalid length",
		            "tenant_guard.tenant_keys holds a value that tenant_guard did not write.");
	std::uint8_t ad[k_dek_ad_len];
	dek_ad(ad, org, key_version);
	SecureBuffer dek(aead::k_key_len);
	aead::Gcm gcm(kek);
	if (!gcm.open(wrapped, ad, sizeof ad, wrapped + aead::k_nonce_len, aead::k_key_len,
	              wrapped + aead::k_nonce_len + aead::k_key_len, dek.data()))
		throw Error(sqlstate::k_internal_error, "could not unwrap a tenant key",
		            "The wrapped key does not authenticate under the configured master key for this tenant and "
		            "key version.");
	return dek;
}

SecureBuffer blind_index_key(const std::uint8_t* dek, const OrgId& org)
{
	return aead::hkdf_sha256(dek, aead::k_key_len, reinterpret_cast<const std::uint8_t*>(k_index_salt),
	                         sizeof k_index_salt - 1, org.data(), org.size(), aead::k_key_len);
}

aead::Digest blind_index(const SecureBuffer& index_key, const std::uint8_t* context, std::size_t context_len,
                         const std::uint8_t* data, std::size_t len)
{
	if (context_len > 0xffffffffu)
		throw Error(sqlstate::k_invalid_parameter_value, "blind index context is too long");
	std::vector<std::uint8_t> msg;
	msg.reserve(4 + context_len + len);
	append_u32(msg, static_cast<std::uint32_t>(context_len));
	if (context_len)
		append(msg, context, context_len);
	if (len)
		append(msg, data, len);
	aead::Digest d = aead::hmac_sha256(index_key.data(), index_key.size(), msg.data(), msg.size());
	sodium_memzero(msg.data(), msg.size());
	return d;
}

}  // namespace tenant_guard::envelope
