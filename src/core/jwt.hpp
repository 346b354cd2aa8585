/*
 * core/jwt.hpp
 *
 * Verification of compact JWS tokens (RFC 7515/7519) for
 * tenant_guard.set_context(). Signatures use OpenSSL (HMAC-SHA256, RSA
 * PKCS#1 v1.5 with SHA-256, ECDSA P-256 with SHA-256, Ed25519); JSON uses
 * nlohmann::json; base64url uses libsodium. Nothing here is hand-rolled crypto.
 *
 * The algorithm is pinned by configuration: the token's "alg" header must
 * equal it exactly, so "none" and HS/RS confusion are refused before any key
 * is touched. Every refusal is a tenant_guard::Error with SQLSTATE 28000,
 * message "invalid tenant token" and a detail that names the failed check
 * and never repeats any part of the token.
 *
 * With a key set (core/jwks.hpp) the key is chosen by the token's "kid" and
 * the algorithm is the chosen key's own: a token whose "alg" is not its key's
 * is refused the same way. Service tokens (docs/signed-mode.md) are tokens signed
 * by a key whose id is listed in Options::service_kids: their user id must be
 * "service:<name>", and no other token may carry such a user id.
 *
 * Signing: sign_hs256() makes a token with an HS256 key, for the attack grid
 * only (src/pg/grid_fmgr.cpp), which signs short-lived tokens of its own test
 * tenant so that Citus workers verify a real context. Nothing signs with a
 * public key: the grid cannot sign for RS256, ES256 or EdDSA.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <string_view>

#include "core/claims.hpp"
#include "core/secure_buffer.hpp"
#include "core/no_postgres.hpp"

typedef struct evp_pkey_st EVP_PKEY;

namespace tenant_guard::jwks {
class KeySet;
}

namespace tenant_guard::jwt {

enum class Alg { HS256, RS256, ES256, EdDSA };
const char* alg_name(Alg alg);

// Largest token accepted, in bytes.
inline constexpr std::size_t k_max_token_size = 64 * 1024;
// Shortest HS256 secret accepted (RFC 7518 section 3.2: at least the hash size).
inline constexpr std::size_t k_min_hmac_secret = 32;
// The user id prefix reserved for service tokens.
inline constexpr std::string_view k_service_prefix = "service:";
// The user id of a maintenance context (begin_maintenance()): no token may claim it.
inline constexpr std::string_view k_maintenance_prefix = "maintenance:";
// Longest service name (after the prefix).
inline constexpr std::size_t k_max_service_name = 64;

struct PkeyFree {
	void operator()(EVP_PKEY* p) const noexcept;
};

class Key {
public:
	// HS256: the secret file's bytes, one trailing "\n" or "\r\n" ignored.
	static Key hmac_secret(const std::uint8_t* data, std::size_t len);
	// RS256/ES256/EdDSA: a PEM "PUBLIC KEY" whose type matches alg.
	static Key public_key(const std::uint8_t* pem, std::size_t len, Alg alg);
	// HS256 from raw secret bytes, nothing trimmed (a JWK "oct" key).
	static Key hmac_bytes(const std::uint8_t* data, std::size_t len);
	// RS256/ES256/EdDSA from a public key built elsewhere (a JWK); takes
	// ownership. Refused like public_key() when the key does not fit alg.
	static Key adopt(std::unique_ptr<EVP_PKEY, PkeyFree> pkey, Alg alg);
	// nullopt when pkey fits alg (type, size, curve), else the sentence why not.
	static std::optional<std::string> misfit(EVP_PKEY* pkey, Alg alg);

	Alg alg() const noexcept { return alg_; }

private:
	friend struct Verifier;
	friend std::string sign_hs256(const Key& key, std::string_view kid, std::string_view payload);
	Alg alg_ = Alg::HS256;
	SecureBuffer secret_;
	std::unique_ptr<EVP_PKEY, PkeyFree> pkey_;
};

struct Options {
	Alg alg = Alg::HS256;
	std::string audience;  // empty: not checked
	std::string issuer;    // empty: not checked
	std::int64_t now = 0;  // seconds since the epoch
	std::int64_t leeway = 0;
	// Key set only: ids of the keys that sign service tokens, and the longest
	// time a service token may have left before its exp, in seconds.
	std::vector<std::string> service_kids;
	std::int64_t service_max_lifetime = 900;
};

struct Verified {
	std::string payload;  // the verified claims document, as signed
	claims::Context context;
	std::string kid;       // the key id that verified the token (key set only)
	bool service = false;  // a service token
};

// Throws tenant_guard::Error on any failure.
Verified verify(std::string_view token, const Key& key, const Options& opt, const claims::ClaimPaths& paths);
// The same with a key set: the key is the one the token's "kid" names (a
// token without "kid" only when the set holds a single key), and opt.alg is
// not used: the token's "alg" must be that key's algorithm.
Verified verify(std::string_view token, const jwks::KeySet& keys, const Options& opt, const claims::ClaimPaths& paths);

// The compact JWS of payload (a JSON object, as text) signed with key, an
// HS256 key: header {"alg":"HS256","typ":"JWT"} and "kid" when kid is not
// empty. Throws tenant_guard::Error (22023) for any other key. The result is
// a credential: callers clear it (sodium_memzero) when done.
std::string sign_hs256(const Key& key, std::string_view kid, std::string_view payload);

// True when `name` is a valid service name (1 to 64 of A-Z a-z 0-9 . _ -).
bool valid_service_name(std::string_view name);

}  // namespace tenant_guard::jwt
