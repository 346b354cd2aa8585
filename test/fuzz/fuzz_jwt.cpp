// libFuzzer target for the JWT parser and verifier (signed mode: every byte
// of a token is attacker-controlled), jwt::verify.
//
// The first input byte chooses how the rest is used:
//  - as a whole token (any bytes), verified with an HS256, RS256, ES256 and
//    EdDSA key: it must be refused with tenant_guard::Error (a random token
//    never carries a valid signature) and nothing else may be thrown;
//  - as a claims document, or as a header and a claims document (split at the
//    first NUL), put into a token signed with the HS256 key: verify() either
//    accepts it, and then returns exactly the signed payload and a context
//    whose organization rules hold, or refuses it with tenant_guard::Error;
//    the same token with one byte changed (chosen by the input) is refused.
// Run with test/fuzz/fuzz.sh jwt.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/claims.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/jwt.hpp"
#include "fuzz_common.hpp"

using namespace tenant_guard;

namespace {

const std::string k_secret = "fuzz-secret-0123456789-0123456789-0123456789";

std::string pem_of(int type, int bits)
{
	EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(type, nullptr);
	EVP_PKEY* k = nullptr;
	fuzz::require(ctx && EVP_PKEY_keygen_init(ctx) == 1);
	if (type == EVP_PKEY_RSA)
		fuzz::require(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) == 1);
	if (type == EVP_PKEY_EC)
		fuzz::require(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) == 1);
	fuzz::require(EVP_PKEY_keygen(ctx, &k) == 1);
	BIO* bio = BIO_new(BIO_s_mem());
	fuzz::require(PEM_write_bio_PUBKEY(bio, k) == 1);
	char* p = nullptr;
	long n = BIO_get_mem_data(bio, &p);
	std::string pem(p, static_cast<std::size_t>(n));
	BIO_free(bio);
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(ctx);
	return pem;
}

struct Keys {
	jwt::Key hs = jwt::Key::hmac_secret(reinterpret_cast<const std::uint8_t*>(k_secret.data()), k_secret.size());
	std::string rs_pem = pem_of(EVP_PKEY_RSA, 2048);
	std::string es_pem = pem_of(EVP_PKEY_EC, 0);
	std::string ed_pem = pem_of(EVP_PKEY_ED25519, 0);
	jwt::Key rs =
	    jwt::Key::public_key(reinterpret_cast<const std::uint8_t*>(rs_pem.data()), rs_pem.size(), jwt::Alg::RS256);
	jwt::Key es =
	    jwt::Key::public_key(reinterpret_cast<const std::uint8_t*>(es_pem.data()), es_pem.size(), jwt::Alg::ES256);
	jwt::Key ed =
	    jwt::Key::public_key(reinterpret_cast<const std::uint8_t*>(ed_pem.data()), ed_pem.size(), jwt::Alg::EdDSA);
};

std::string b64(const std::string& s)
{
	return encoding::base64url_encode(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

std::string hs256_token(const std::string& header, const std::string& payload)
{
	const std::string signing_input = b64(header) + "." + b64(payload);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	fuzz::require(HMAC(EVP_sha256(), k_secret.data(), static_cast<int>(k_secret.size()),
	                   reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
	                   &len) != nullptr);
	return signing_input + "." + encoding::base64url_encode(mac, len);
}

// Refused with tenant_guard::Error, nothing else.
void must_refuse(const std::string& token, const jwt::Key& key, jwt::Alg alg)
{
	jwt::Options opt;
	opt.alg = alg;
	opt.now = 1700000000;
	try {
		(void) jwt::verify(token, key, opt, claims::ClaimPaths{});
		std::abort();  // a token nobody signed was accepted
	} catch (const Error&) {
	}
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	static Keys keys;
	if (size == 0)
		return 0;
	const std::uint8_t mode = data[0] % 3;
	const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
	if (mode == 0) {
		must_refuse(rest, keys.hs, jwt::Alg::HS256);
		must_refuse(rest, keys.rs, jwt::Alg::RS256);
		must_refuse(rest, keys.es, jwt::Alg::ES256);
		must_refuse(rest, keys.ed, jwt::Alg::EdDSA);
		return 0;
	}
	std::string header = R"({"alg":"HS256","typ":"JWT"})";
	std::string payload = rest;
	if (mode == 2) {
		const std::size_t nul = rest.find('\0');
		header = rest.substr(0, nul);
		payload = nul == std::string::npos ? std::string() : rest.substr(nul + 1);
	}
	const std::string token = hs256_token(header, payload);
	jwt::Options opt;
	opt.alg = jwt::Alg::HS256;
	opt.now = 1700000000;
	bool accepted = false;
	try {
		jwt::Verified v = jwt::verify(token, keys.hs, opt, claims::ClaimPaths{});
		accepted = true;
		fuzz::require(v.payload == payload);
		fuzz::check_context(v.context);
	} catch (const Error&) {
	}
	// One changed byte (outside the signature's last character, whose low
	// bits base64url may ignore) is never accepted.
	if (accepted && token.size() > 2) {
		std::string bad = token;
		const std::size_t at = (size > 1 ? data[1] : 0) % (bad.size() - 1);
		bad[at] = bad[at] == 'A' ? 'B' : 'A';
		jwt::Options o2 = opt;
		try {
			jwt::Verified v = jwt::verify(bad, keys.hs, o2, claims::ClaimPaths{});
			// base64url of the header or payload may decode to the same
			// bytes only if the change did not change the text: it did.
			std::abort();
		} catch (const Error&) {
		}
	}
	return 0;
}
