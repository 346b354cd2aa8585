/*
 * core/envelope.hpp
 *
 * The versioned ciphertext envelope of tenant_guard.encrypt() and the
 * wrapping of tenant data keys (DEKs) under the master key (KEK).
 *
 * Envelope, format 1 (all integers big-endian; docs/encryption.md):
 *
 *   offset  size  field
 *   0       1     format byte, 0x01
 *   1       4     key version (1 .. 2^31-1): which DEK of the tenant
 *   5       12    nonce (random per encryption)
 *   17      n     ciphertext (AES-256-GCM, same length as the plaintext)
 *   17+n    16    GCM tag
 *
 * 33 bytes of overhead. The GCM associated data is not stored; it is rebuilt
 * on decryption from the context and binds, with fixed sizes and a length
 * prefix so no two inputs give the same bytes:
 *
 *   "tgenc" || format (1) || key version (4) || tenant id (16) || len(aad) (4) || aad
 *
 * so the format byte and the key version in the header are authenticated,
 * and a value decrypts only for the tenant, key version and aad it was
 * sealed for.
 *
 * Wrapped DEK (tenant_guard.tenant_keys.wrapped_key): nonce (12) || the
 * 32-byte DEK encrypted with AES-256-GCM under the KEK (32) || tag (16),
 * associated data "tgdek" || format 1 || tenant id (16) || key version (4).
 * The KEK is identified by kek_id = first 16 bytes of
 * HMAC-SHA256(KEK, "tenant_guard kek id v1"): it names the key without
 * revealing it (a plain hash would allow an offline check of a guessed key
 * without the domain separation of the HMAC).
 */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/aead.hpp"
#include "core/secure_buffer.hpp"
#include "core/no_postgres.hpp"

namespace tenant_guard::envelope {

inline constexpr std::uint8_t k_format_v1 = 0x01;
inline constexpr std::size_t k_header_len = 1 + 4 + aead::k_nonce_len;     // 17
inline constexpr std::size_t k_overhead = k_header_len + aead::k_tag_len;  // 33
inline constexpr std::uint32_t k_max_version = 0x7fffffff;
inline constexpr std::size_t k_org_len = 16;
inline constexpr std::size_t k_wrapped_len = aead::k_nonce_len + aead::k_key_len + aead::k_tag_len;  // 60
inline constexpr std::size_t k_kek_id_len = 16;

using OrgId = std::array<std::uint8_t, k_org_len>;
using KekId = std::array<std::uint8_t, k_kek_id_len>;

enum class Status { ok, empty, foreign_format, truncated, bad_version };

struct View {
	std::uint8_t format = 0;
	std::uint32_t key_version = 0;
	const std::uint8_t* nonce = nullptr;
	const std::uint8_t* ciphertext = nullptr;
	std::size_t ciphertext_len = 0;
	const std::uint8_t* tag = nullptr;
};

// Parses without any key. Never reads outside [data, data+len).
Status decode(const std::uint8_t* data, std::size_t len, View* out);

// As decode, but throws tenant_guard::Error (22P03) with a clear message.
View decode_or_throw(const std::uint8_t* data, std::size_t len);

// Writes the 17-byte header; the caller writes ciphertext and tag after it.
void write_header(std::uint8_t* out, std::uint32_t key_version, const std::uint8_t* nonce);

// The associated data of format 1 (see the file comment), into `out`.
void associated_data(std::vector<std::uint8_t>& out, const OrgId& org, std::uint32_t key_version,
                     const std::uint8_t* aad, std::size_t aad_len);

// Encrypts a whole value into a new envelope (tests and tools; the server
// path writes straight into its result buffer with the same functions).
std::vector<std::uint8_t> seal(aead::Gcm& gcm, const OrgId& org, std::uint32_t key_version, const std::uint8_t* nonce,
                               const std::uint8_t* aad, std::size_t aad_len, const std::uint8_t* data, std::size_t len);
// Decrypts; throws tenant_guard::Error "ciphertext authentication failed".
std::vector<std::uint8_t> open(aead::Gcm& gcm, const OrgId& org, const std::uint8_t* aad, std::size_t aad_len,
                               const std::uint8_t* data, std::size_t len);

KekId kek_id(const std::uint8_t* kek);

// Wraps a DEK under the KEK with a fresh random nonce.
std::vector<std::uint8_t> wrap_dek(const std::uint8_t* kek, const OrgId& org, std::uint32_t key_version,
                                   const std::uint8_t* dek);
// Unwraps; throws tenant_guard::Error when the blob is malformed or does not
// authenticate under this KEK for this tenant and version.
SecureBuffer unwrap_dek(const std::uint8_t* kek, const OrgId& org, std::uint32_t key_version,
                        const std::uint8_t* wrapped, std::size_t len);

// The per-tenant blind-index key: HKDF-SHA256(ikm = DEK, salt =
// "tenant_guard blind index v1", info = tenant id).
SecureBuffer blind_index_key(const std::uint8_t* dek, const OrgId& org);
// HMAC-SHA256(index key, len(context) (4) || context || data).
aead::Digest blind_index(const SecureBuffer& index_key, const std::uint8_t* context, std::size_t context_len,
                         const std::uint8_t* data, std::size_t len);

}  // namespace tenant_guard::envelope
