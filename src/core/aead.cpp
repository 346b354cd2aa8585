/*
 * core/aead.cpp: OpenSSL EVP wrappers; see aead.hpp.
 */
#include "core/aead.hpp"

#include <climits>
#include <new>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <sodium.h>

#include "core/error.hpp"
#include "core/no_postgres.hpp"

namespace tenant_guard::aead {

namespace {

[[noreturn]] void fail(const char* what)
{
	throw Error(sqlstate::k_internal_error, std::string("OpenSSL call failed: ") + what);
}

// EVP takes int lengths; feed larger inputs in pieces.
constexpr std::size_t k_chunk = 1u << 30;

void update_ad(EVP_CIPHER_CTX* ctx, bool enc, const std::uint8_t* ad, std::size_t ad_len)
{
	int outl = 0;
	while (ad_len > 0) {
		const int n = static_cast<int>(ad_len < k_chunk ? ad_len : k_chunk);
		if ((enc ? EVP_EncryptUpdate(ctx, nullptr, &outl, ad, n) : EVP_DecryptUpdate(ctx, nullptr, &outl, ad, n)) != 1)
			fail("GCM associated data");
		ad += n;
		ad_len -= static_cast<std::size_t>(n);
	}
}

}  // namespace

Gcm::Gcm(const std::uint8_t* key)
{
	enc_ = EVP_CIPHER_CTX_new();
	dec_ = EVP_CIPHER_CTX_new();
	if (enc_ == nullptr || dec_ == nullptr) {
		EVP_CIPHER_CTX_free(enc_);
		EVP_CIPHER_CTX_free(dec_);
		throw std::bad_alloc();
	}
	if (EVP_EncryptInit_ex(enc_, EVP_aes_256_gcm(), nullptr, key, nullptr) != 1 ||
	    EVP_DecryptInit_ex(dec_, EVP_aes_256_gcm(), nullptr, key, nullptr) != 1) {
		EVP_CIPHER_CTX_free(enc_);
		EVP_CIPHER_CTX_free(dec_);
		fail("AES-256-GCM key setup");
	}
}

Gcm::~Gcm()
{
	EVP_CIPHER_CTX_free(enc_);  // cleanses the key schedule
	EVP_CIPHER_CTX_free(dec_);
}

void Gcm::seal(const std::uint8_t* nonce, const std::uint8_t* ad, std::size_t ad_len, const std::uint8_t* in,
               std::size_t len, std::uint8_t* out, std::uint8_t* tag)
{
	// A nonce alone re-initialises GCM; the key schedule stays.
	if (EVP_EncryptInit_ex(enc_, nullptr, nullptr, nullptr, nonce) != 1)
		fail("GCM nonce");
	update_ad(enc_, true, ad, ad_len);
	int outl = 0;
	std::size_t done = 0;
	while (done < len) {
		const int n = static_cast<int>(len - done < k_chunk ? len - done : k_chunk);
		if (EVP_EncryptUpdate(enc_, out + done, &outl, in + done, n) != 1 || outl != n)
			fail("GCM encrypt");
		done += static_cast<std::size_t>(n);
	}
	if (EVP_EncryptFinal_ex(enc_, out + done, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_GCM_GET_TAG, static_cast<int>(k_tag_len), tag) != 1)
		fail("GCM tag");
}

bool Gcm::open(const std::uint8_t* nonce, const std::uint8_t* ad, std::size_t ad_len, const std::uint8_t* in,
               std::size_t len, const std::uint8_t* tag, std::uint8_t* out)
{
	if (EVP_DecryptInit_ex(dec_, nullptr, nullptr, nullptr, nonce) != 1)
		fail("GCM nonce");
	update_ad(dec_, false, ad, ad_len);
	int outl = 0;
	std::size_t done = 0;
	while (done < len) {
		const int n = static_cast<int>(len - done < k_chunk ? len - done : k_chunk);
		if (EVP_DecryptUpdate(dec_, out + done, &outl, in + done, n) != 1 || outl != n)
			fail("GCM decrypt");
		done += static_cast<std::size_t>(n);
	}
	if (EVP_CIPHER_CTX_ctrl(dec_, EVP_CTRL_GCM_SET_TAG, static_cast<int>(k_tag_len), const_cast<std::uint8_t*>(tag)) !=
	    1)
		fail("GCM tag");
	if (EVP_DecryptFinal_ex(dec_, out + done, &outl) != 1) {
		if (len > 0)
			sodium_memzero(out, len);
		return false;
	}
	return true;
}

Digest sha256(const std::uint8_t* data, std::size_t len)
{
	Digest d;
	unsigned int n = 0;
	static const std::uint8_t empty = 0;
	if (EVP_Digest(len ? data : &empty, len, d.data(), &n, EVP_sha256(), nullptr) != 1 || n != d.size())
		fail("SHA-256");
	return d;
}

Digest hmac_sha256(const std::uint8_t* key, std::size_t key_len, const std::uint8_t* data, std::size_t len)
{
	Digest d;
	unsigned int n = 0;
	static const std::uint8_t empty = 0;
	if (key_len > INT_MAX)
		fail("HMAC key length");
	if (HMAC(EVP_sha256(), key_len ? key : &empty, static_cast<int>(key_len), len ? data : &empty, len, d.data(), &n) ==
	        nullptr ||
	    n != d.size())
		fail("HMAC-SHA256");
	return d;
}

SecureBuffer hkdf_sha256(const std::uint8_t* ikm, std::size_t ikm_len, const std::uint8_t* salt, std::size_t salt_len,
                         const std::uint8_t* info, std::size_t info_len, std::size_t out_len)
{
	SecureBuffer out(out_len);
	EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
	if (ctx == nullptr)
		throw std::bad_alloc();
	std::size_t n = out_len;
	const bool ok = EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1 &&
	                EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, static_cast<int>(salt_len)) == 1 &&
	                EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, static_cast<int>(ikm_len)) == 1 &&
	                EVP_PKEY_CTX_add1_hkdf_info(ctx, info, static_cast<int>(info_len)) == 1 &&
	                EVP_PKEY_derive(ctx, out.data(), &n) == 1 && n == out_len;
	EVP_PKEY_CTX_free(ctx);
	if (!ok)
		fail("HKDF-SHA256");
	return out;
}

bool equal_ct(const std::uint8_t* a, const std::uint8_t* b, std::size_t len)
{
	return len == 0 || sodium_memcmp(a, b, len) == 0;
}

}  // namespace tenant_guard::aead
