/*
 * core/jwks.hpp
 *
 * A JSON Web Key Set (RFC 7517 section 5) for tenant_guard.jwt_jwks_file: the
 * public keys (and HS256 secrets) that may sign tenant tokens, each with its
 * key id ("kid"), so a signing key can rotate with overlap: publish the new
 * key next to the old one, move the issuer to it, remove the old one.
 *
 * Every key has the algorithm it verifies, and a token is checked with that
 * algorithm only (jwt.hpp). The rules:
 *  - the document is an object whose "keys" member is an array of objects;
 *  - a key whose "use" is present and not "sig" is skipped, and so is a key
 *    whose "alg" names an algorithm other than RS256, ES256, EdDSA or HS256
 *    (RS384, PS256, RSA-OAEP, ...): a published set may hold keys for
 *    others;
 *  - every other key needs a "kid" (a non-empty string of at most 256
 *    bytes, unique in the set) and is one of
 *      kty "RSA", "n" and "e" (alg RS256 or absent; at least 2048 bits),
 *      kty "EC", crv "P-256", "x" and "y" (alg ES256 or absent),
 *      kty "OKP", crv "Ed25519", "x" (alg EdDSA or absent),
 *      kty "oct", "k" of at least 32 bytes, with alg "HS256" required;
 *    a public key carrying private parts ("d", "p", ...) is refused, so a
 *    private key file cannot be configured by mistake;
 *  - the set needs at least one usable key, and at most k_max_keys.
 * Anything else refuses the whole file (SQLSTATE F0000): a half-read set
 * never verifies tokens. Key material never appears in an error.
 *
 * JSON is parsed by nlohmann::json, keys are built by OpenSSL
 * (EVP_PKEY_fromdata from the JWK parameters), base64url by libsodium.
 */
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/jwt.hpp"
#include "core/no_postgres.hpp"

namespace tenant_guard::jwks {

inline constexpr std::size_t k_max_keys = 64;
inline constexpr std::size_t k_max_kid = 256;

struct Entry {
	std::string kid;
	jwt::Key key;
};

class KeySet {
public:
	// Throws tenant_guard::Error (F0000) when the document breaks a rule above.
	static KeySet parse(std::string_view json);

	// The key with this id, or nullptr.
	const Entry* find(std::string_view kid) const;
	// The only key of a single-key set, or nullptr.
	const Entry* sole() const { return entries_.size() == 1 ? &entries_.front() : nullptr; }
	const std::vector<Entry>& entries() const { return entries_; }
	// Keys skipped for another use or algorithm.
	std::size_t skipped() const { return skipped_; }

private:
	std::vector<Entry> entries_;
	std::size_t skipped_ = 0;
};

}  // namespace tenant_guard::jwks
