/*
 * core/aead.hpp
 *
 * Thin wrappers over OpenSSL EVP (no hand-written primitive): AES-256-GCM with
 * a reusable per-key context, HMAC-SHA256, SHA-256 and HKDF-SHA256.
 *
 * Gcm keeps one encryption and one decryption EVP_CIPHER_CTX with the key
 * schedule already set, so a call only sets the nonce: the per-row cost of
 * tenant_guard.encrypt/decrypt is the GCM work itself. The expanded key
 * schedule lives in OpenSSL's memory and is cleansed by EVP_CIPHER_CTX_free.
 * A Gcm object is used by one thread at a time (a backend is one thread).
 */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/secure_buffer.hpp"
#include "core/no_postgres.hpp"

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace tenant_guard::aead {

inline constexpr std::size_t k_key_len = 32;
inline constexpr std::size_t k_nonce_len = 12;
inline constexpr std::size_t k_tag_len = 16;
inline constexpr std::size_t k_hash_len = 32;

using Digest = std::array<std::uint8_t, k_hash_len>;

class Gcm {
public:
	// key: k_key_len bytes. Throws std::bad_alloc or tenant_guard::Error.
	explicit Gcm(const std::uint8_t* key);
	~Gcm();
	Gcm(const Gcm&) = delete;
	Gcm& operator=(const Gcm&) = delete;

	// Encrypts len bytes of `in` into `out` (same length; may alias) and
	// writes the k_tag_len-byte tag.
	void seal(const std::uint8_t* nonce, const std::uint8_t* ad, std::size_t ad_len, const std::uint8_t* in,
	          std::size_t len, std::uint8_t* out, std::uint8_t* tag);

	// Decrypts and verifies. Returns false when the tag does not match; then
	// `out` is zeroed, so no unauthenticated plaintext ever leaves.
	bool open(const std::uint8_t* nonce, const std::uint8_t* ad, std::size_t ad_len, const std::uint8_t* in,
	          std::size_t len, const std::uint8_t* tag, std::uint8_t* out);

private:
	EVP_CIPHER_CTX* enc_ = nullptr;
	EVP_CIPHER_CTX* dec_ = nullptr;
};

Digest sha256(const std::uint8_t* data, std::size_t len);
Digest hmac_sha256(const std::uint8_t* key, std::size_t key_len, const std::uint8_t* data, std::size_t len);

// HKDF-SHA256 (RFC 5869) into a new SecureBuffer of out_len bytes.
SecureBuffer hkdf_sha256(const std::uint8_t* ikm, std::size_t ikm_len, const std::uint8_t* salt, std::size_t salt_len,
                         const std::uint8_t* info, std::size_t info_len, std::size_t out_len);

// Constant-time equality of two buffers of the same length (sodium_memcmp).
bool equal_ct(const std::uint8_t* a, const std::uint8_t* b, std::size_t len);

}  // namespace tenant_guard::aead
