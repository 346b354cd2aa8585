// Unit tests for core/jwks (the JWKS parser) and key-set verification in
// core/jwt: rotation with two keys, selection by kid, alg confusion across
// keys, a removed key, string and bigint org ids, and service tokens. Keys are
// generated and tokens signed here with OpenSSL directly; the JWK documents
// are written from OpenSSL's own view of each key.
#include <catch2/catch.hpp>
#include <memory>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <string>
#include <vector>

#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/jwks.hpp"
#include "core/jwt.hpp"

using namespace tenant_guard;
using tenant_guard::jwt::Alg;

namespace {

const std::int64_t k_now = 1800000000;
const char* k_org = "11111111-1111-4111-8111-111111111111";
const std::string k_secret = "0123456789abcdef0123456789abcdef-jwks-secret";

std::string b64(const std::string& s)
{
	return encoding::base64url_encode(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}
std::string b64(const std::vector<unsigned char>& v)
{
	return encoding::base64url_encode(v.data(), v.size());
}

struct PkeyDel {
	void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDel>;

Pkey generate(Alg alg, int rsa_bits = 2048)
{
	EVP_PKEY* k = nullptr;
	if (alg == Alg::RS256)
		k = EVP_RSA_gen(rsa_bits);
	else if (alg == Alg::ES256)
		k = EVP_EC_gen("P-256");
	else
		k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
	REQUIRE(k != nullptr);
	return Pkey(k);
}

std::vector<unsigned char> bn_param(EVP_PKEY* k, const char* name, int pad = 0)
{
	BIGNUM* bn = nullptr;
	REQUIRE(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
	std::vector<unsigned char> out(pad ? static_cast<std::size_t>(pad) : static_cast<std::size_t>(BN_num_bytes(bn)));
	REQUIRE(BN_bn2binpad(bn, out.data(), static_cast<int>(out.size())) > 0);
	BN_free(bn);
	return out;
}

// The public JWK of k, with kid and (optionally) alg.
std::string jwk(EVP_PKEY* k, Alg alg, const std::string& kid, bool with_alg = true, const std::string& extra = "")
{
	std::string j = "{\"kid\":\"" + kid + "\"";
	if (with_alg)
		j += std::string(",\"alg\":\"") + jwt::alg_name(alg) + "\"";
	if (alg == Alg::RS256)
		j += ",\"kty\":\"RSA\",\"n\":\"" + b64(bn_param(k, OSSL_PKEY_PARAM_RSA_N)) + "\",\"e\":\"" +
		     b64(bn_param(k, OSSL_PKEY_PARAM_RSA_E)) + "\"";
	else if (alg == Alg::ES256)
		j += ",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" + b64(bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, 32)) +
		     "\",\"y\":\"" + b64(bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32)) + "\"";
	else {
		std::vector<unsigned char> raw(32);
		std::size_t len = raw.size();
		REQUIRE(EVP_PKEY_get_raw_public_key(k, raw.data(), &len) == 1);
		j += ",\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" + b64(raw) + "\"";
	}
	return j + extra + "}";
}

std::string oct_jwk(const std::string& kid, const std::string& secret = k_secret, const char* alg = "HS256")
{
	std::string j = "{\"kid\":\"" + kid + "\",\"kty\":\"oct\",\"k\":\"" + b64(secret) + "\"";
	if (alg)
		j += std::string(",\"alg\":\"") + alg + "\"";
	return j + "}";
}

std::string set_of(std::initializer_list<std::string> keys)
{
	std::string s = "{\"keys\":[";
	bool first = true;
	for (const auto& k : keys) {
		s += (first ? "" : ",") + k;
		first = false;
	}
	return s + "]}";
}

std::string header(const char* alg, const std::string& kid)
{
	std::string h = std::string("{\"alg\":\"") + alg + "\",\"typ\":\"JWT\"";
	if (!kid.empty())
		h += ",\"kid\":\"" + kid + "\"";
	return h + "}";
}

std::string body(const std::string& org_json = std::string("\"") + k_org + "\"", const std::string& extra = "",
                 const std::string& sub = "alice")
{
	return "{\"org_id\":" + org_json + ",\"sub\":\"" + sub +
	       "\",\"org_role\":\"admin\",\"exp\":" + std::to_string(k_now + 60) + extra + "}";
}

std::string hs256(const std::string& hdr, const std::string& payload, const std::string& secret = k_secret)
{
	std::string input = b64(hdr) + "." + b64(payload);
	unsigned char mac[32];
	unsigned int len = 0;
	HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
	     reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
	return input + "." + encoding::base64url_encode(mac, len);
}

std::string sign(EVP_PKEY* k, Alg alg, const std::string& hdr, const std::string& payload)
{
	std::string input = b64(hdr) + "." + b64(payload);
	EVP_MD_CTX* ctx = EVP_MD_CTX_new();
	REQUIRE(EVP_DigestSignInit(ctx, nullptr, alg == Alg::EdDSA ? nullptr : EVP_sha256(), nullptr, k) == 1);
	std::size_t len = 0;
	EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
	std::vector<unsigned char> sig(len);
	REQUIRE(EVP_DigestSign(ctx, sig.data(), &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) ==
	        1);
	sig.resize(len);
	EVP_MD_CTX_free(ctx);
	if (alg == Alg::ES256) {
		const unsigned char* p = sig.data();
		ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
		std::vector<unsigned char> raw(64);
		BN_bn2binpad(ECDSA_SIG_get0_r(es), raw.data(), 32);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), raw.data() + 32, 32);
		ECDSA_SIG_free(es);
		sig = raw;
	}
	return input + "." + b64(sig);
}

std::string public_pem(EVP_PKEY* k)
{
	BIO* bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(bio, k);
	char* data = nullptr;
	long n = BIO_get_mem_data(bio, &data);
	std::string pem(data, static_cast<std::size_t>(n));
	BIO_free(bio);
	return pem;
}

jwt::Options opts()
{
	jwt::Options o;
	o.now = k_now;
	return o;
}

std::string outcome(const std::string& token, const jwks::KeySet& set, const jwt::Options& o = opts())
{
	try {
		jwt::verify(token, set, o, claims::ClaimPaths{});
		return "accepted";
	} catch (const Error& e) {
		CHECK(std::string(e.sqlstate()) == "28000");
		return e.detail();
	}
}

// The detail of the parser's refusal, or "parsed".
std::string parse_outcome(const std::string& doc)
{
	try {
		jwks::KeySet::parse(doc);
		return "parsed";
	} catch (const Error& e) {
		CHECK(std::string(e.sqlstate()) == "F0000");
		CHECK(std::string(e.what()) == "JWKS file is not a valid key set");
		return e.detail();
	}
}

}  // namespace

TEST_CASE("a key set with two keys accepts both during a rotation", "[jwks]")
{
	Pkey old_key = generate(Alg::RS256);
	Pkey new_key = generate(Alg::ES256);
	jwks::KeySet both = jwks::KeySet::parse(
	    set_of({jwk(old_key.get(), Alg::RS256, "2026-old"), jwk(new_key.get(), Alg::ES256, "2026-new")}));
	REQUIRE(both.entries().size() == 2);
	std::string by_old = sign(old_key.get(), Alg::RS256, header("RS256", "2026-old"), body());
	std::string by_new = sign(new_key.get(), Alg::ES256, header("ES256", "2026-new"), body());
	CHECK(outcome(by_old, both) == "accepted");
	CHECK(outcome(by_new, both) == "accepted");
	auto v = jwt::verify(by_new, both, opts(), claims::ClaimPaths{});
	CHECK(v.kid == "2026-new");
	CHECK_FALSE(v.service);

	// the wrong key for a kid: the signature does not match
	CHECK(outcome(sign(old_key.get(), Alg::RS256, header("RS256", "2026-new"), body()), both) ==
	      "The token algorithm is not the algorithm of its key.");
	Pkey stranger = generate(Alg::ES256);
	CHECK(outcome(sign(stranger.get(), Alg::ES256, header("ES256", "2026-new"), body()), both) ==
	      "The token signature does not match.");
	CHECK(outcome(sign(old_key.get(), Alg::RS256, header("RS256", "unknown"), body()), both) ==
	      "The token key id (\"kid\") is not in the key set.");
	CHECK(outcome(sign(old_key.get(), Alg::RS256, header("RS256", ""), body()), both) ==
	      "The token has no key id (\"kid\") and the key set holds more than one key.");

	// after the old key is removed (the file read again), its tokens fail
	jwks::KeySet after = jwks::KeySet::parse(set_of({jwk(new_key.get(), Alg::ES256, "2026-new")}));
	CHECK(outcome(by_old, after) == "The token key id (\"kid\") is not in the key set.");
	CHECK(outcome(by_new, after) == "accepted");
	// a single-key set also takes a token without kid, with that key's algorithm only
	CHECK(outcome(sign(new_key.get(), Alg::ES256, header("ES256", ""), body()), after) == "accepted");
	CHECK(outcome(sign(old_key.get(), Alg::RS256, header("RS256", ""), body()), after) ==
	      "The token algorithm is not the algorithm of its key.");
}

TEST_CASE("each key verifies its own algorithm only", "[jwks]")
{
	Pkey rsa = generate(Alg::RS256);
	Pkey ed = generate(Alg::EdDSA);
	jwks::KeySet set = jwks::KeySet::parse(
	    set_of({jwk(rsa.get(), Alg::RS256, "rsa", false), jwk(ed.get(), Alg::EdDSA, "ed"), oct_jwk("hs")}));
	CHECK(outcome(sign(rsa.get(), Alg::RS256, header("RS256", "rsa"), body()), set) == "accepted");
	CHECK(outcome(sign(ed.get(), Alg::EdDSA, header("EdDSA", "ed"), body()), set) == "accepted");
	CHECK(outcome(hs256(header("HS256", "hs"), body()), set) == "accepted");
	// alg confusion: an HS256 token whose secret is the RSA key's public bytes, naming the RSA key
	const std::string pem = public_pem(rsa.get());
	CHECK(outcome(hs256(header("HS256", "rsa"), body(), pem), set) ==
	      "The token algorithm is not the algorithm of its key.");
	std::string der_n = b64(bn_param(rsa.get(), OSSL_PKEY_PARAM_RSA_N));
	CHECK(outcome(hs256(header("HS256", "rsa"), body(), der_n), set) ==
	      "The token algorithm is not the algorithm of its key.");
	// the kid of a key with another algorithm
	CHECK(outcome(sign(rsa.get(), Alg::RS256, header("RS256", "ed"), body()), set) ==
	      "The token algorithm is not the algorithm of its key.");
	CHECK(outcome(sign(rsa.get(), Alg::RS256, header("RS256", "hs"), body()), set) ==
	      "The token algorithm is not the algorithm of its key.");
	// alg none, any spelling, with a valid kid
	for (const char* none : {"none", "NONE", "nOnE"})
		CHECK(outcome(b64(header(none, "hs")) + "." + b64(body()) + ".", set) ==
		      "Unsigned tokens (algorithm \"none\") are never accepted.");
	// a kid that is not a string
	CHECK(outcome(b64(R"({"alg":"HS256","kid":7})") + "." + b64(body()) + ".AAAA", set) ==
	      "The token key id (\"kid\") is not a string.");
	// crit still refused
	CHECK(outcome(hs256(R"({"alg":"HS256","kid":"hs","crit":["exp"]})", body()), set) ==
	      "The token header has critical extensions, which are not supported.");
}

TEST_CASE("string and bigint organization ids in signed tokens", "[jwks]")
{
	jwks::KeySet set = jwks::KeySet::parse(set_of({oct_jwk("hs")}));
	auto verify = [&](const std::string& org_json) {
		return jwt::verify(hs256(header("HS256", "hs"), body(org_json)), set, opts(), claims::ClaimPaths{});
	};
	auto v = verify("\"org_2abcXYZ\"");
	CHECK(v.context.org_key == std::optional<std::string>("org_2abcXYZ"));
	CHECK_FALSE(v.context.org);
	CHECK(v.context.role == std::optional<std::string>("admin"));
	v = verify("42");
	CHECK(v.context.org_bigint == std::optional<std::int64_t>(42));
	v = verify("\"-9223372036854775808\"");
	CHECK(v.context.org_bigint == std::optional<std::int64_t>(INT64_MIN));
	// bigint overflow: a text key, never a bigint
	v = verify("9223372036854775808");
	CHECK(v.context.org_key == std::optional<std::string>("9223372036854775808"));
	CHECK_FALSE(v.context.org_bigint);
	v = verify("\"99999999999999999999999\"");
	CHECK_FALSE(v.context.org_bigint);
	// at most 255 bytes
	CHECK(verify("\"" + std::string(255, 'o') + "\"").context.org_key->size() == 255);
	for (const std::string& bad :
	     {std::string("\"") + std::string(256, 'o') + "\"", std::string(R"("org_2\u0000x")"),
	      std::string(R"(" org_2")"), std::string(R"("")"), std::string(R"("null")"), std::string("null"),
	      std::string("1.5"), std::string(R"(["org_2"])"), std::string(R"("00000000-0000-0000-0000-000000000000")")}) {
		INFO(bad);
		CHECK(outcome(hs256(header("HS256", "hs"), body(bad)), set) == "The token has no valid organization claim.");
	}
}

TEST_CASE("service tokens", "[jwks]")
{
	Pkey job_key = generate(Alg::EdDSA);
	jwks::KeySet set = jwks::KeySet::parse(set_of({oct_jwk("users"), jwk(job_key.get(), Alg::EdDSA, "jobs-1")}));
	jwt::Options o = opts();
	o.service_kids = {"jobs-1"};
	o.service_max_lifetime = 900;
	auto job = [&](const std::string& sub, const std::string& extra = "") {
		return sign(job_key.get(), Alg::EdDSA, header("EdDSA", "jobs-1"),
		            body(std::string("\"org_2abc\""), extra, sub));
	};
	// exp is now + 60 in body()
	auto v = jwt::verify(job("service:nightly-billing"), set, o, claims::ClaimPaths{});
	CHECK(v.service);
	CHECK(v.context.user_id == std::optional<std::string>("service:nightly-billing"));
	CHECK(v.context.org_key == std::optional<std::string>("org_2abc"));

	const std::string only_service =
	    "A service key signs only service tokens, whose user id is \"service:\" and a service name.";
	CHECK(outcome(job("alice"), set, o) == only_service);
	CHECK(outcome(job("service:"), set, o) == only_service);
	CHECK(outcome(job("service:a b"), set, o) == only_service);
	CHECK(outcome(job("service:" + std::string(65, 'x')), set, o) == only_service);
	CHECK(outcome(job("service:ok", ",\"act\":{\"sub\":\"agent-7\"}"), set, o) ==
	      "A service token acts for no one: it cannot carry an impersonator.");
	jwt::Options strict = o;
	strict.service_max_lifetime = 30;
	CHECK(outcome(job("service:nightly"), set, strict) ==
	      "The service token lives longer than tenant_guard.jwt_service_max_lifetime allows.");

	// a user key cannot make a service token, whatever the user id says
	const std::string reserved = "The user id prefix \"service:\" is reserved for tokens signed by a service key.";
	CHECK(outcome(hs256(header("HS256", "users"), body("\"org_2abc\"", "", "service:nightly")), set, o) == reserved);
	// nor can a key that is not listed, even the same key under no listing
	CHECK(outcome(job("service:nightly"), set, opts()) == reserved);
	// nor the single-key (file) mode
	jwt::Key single = jwt::Key::hmac_secret(reinterpret_cast<const std::uint8_t*>(k_secret.data()), k_secret.size());
	jwt::Options so = opts();
	try {
		jwt::verify(hs256(header("HS256", ""), body("\"org_2abc\"", "", "service:x")), single, so,
		            claims::ClaimPaths{});
		FAIL("accepted");
	} catch (const Error& e) {
		CHECK(e.detail() == reserved);
	}
	// a service kid with no kid in the token still counts as the service key (single-key set)
	jwks::KeySet only_jobs = jwks::KeySet::parse(set_of({jwk(job_key.get(), Alg::EdDSA, "jobs-1")}));
	CHECK(outcome(sign(job_key.get(), Alg::EdDSA, header("EdDSA", ""), body("\"org_2abc\"", "", "alice")), only_jobs,
	              o) == only_service);
}

TEST_CASE("JWKS parser refusals", "[jwks]")
{
	Pkey rsa = generate(Alg::RS256);
	Pkey ec = generate(Alg::ES256);
	Pkey ed = generate(Alg::EdDSA);
	const std::string r = jwk(rsa.get(), Alg::RS256, "r");
	CHECK(parse_outcome(set_of({r})) == "parsed");
	CHECK(parse_outcome("") == "The file is not a JSON object.");
	CHECK(parse_outcome("[]") == "The file is not a JSON object.");
	CHECK(parse_outcome("{\"keys\":{}}") == "The \"keys\" member is missing or not an array.");
	CHECK(parse_outcome("{\"keys\":[]}") == "The set holds no key for RS256, ES256, EdDSA or HS256 signatures.");
	CHECK(parse_outcome("{\"keys\":[7]}") == "keys[0] is not an object.");
	CHECK(parse_outcome(set_of({r, r})) == "keys[1]: key id \"r\" appears twice.");
	CHECK(parse_outcome(set_of({jwk(rsa.get(), Alg::RS256, "")})) ==
	      "keys[0]: \"kid\" must be a non-empty string of at most 256 bytes.");
	CHECK(parse_outcome(set_of({jwk(rsa.get(), Alg::RS256, std::string(257, 'k'))})) ==
	      "keys[0]: \"kid\" must be a non-empty string of at most 256 bytes.");
	CHECK(parse_outcome(set_of({oct_jwk("h", k_secret, nullptr)})) ==
	      "keys[0]: an \"oct\" (HS256 secret) key must say \"alg\": \"HS256\".");
	CHECK(parse_outcome(set_of({oct_jwk("h", "short")})) == "keys[0]: an HS256 secret needs at least 32 bytes.");
	CHECK(parse_outcome(set_of({oct_jwk("h", k_secret, "RS256")})) ==
	      "keys[0]: algorithm RS256 does not fit key type \"oct\".");
	CHECK(parse_outcome(set_of({jwk(rsa.get(), Alg::RS256, "r", true, ",\"d\":\"AAAA\"")})) ==
	      "keys[0] holds private key material (\"d\"); the file takes public keys only.");
	CHECK(parse_outcome(set_of({jwk(ec.get(), Alg::ES256, "e", true, ",\"d\":\"AAAA\"")})) ==
	      "keys[0] holds private key material (\"d\"); the file takes public keys only.");
	Pkey small = generate(Alg::RS256, 1024);
	CHECK(parse_outcome(set_of({jwk(small.get(), Alg::RS256, "s")})) ==
	      "keys[0]: RS256 needs an RSA key of at least 2048 bits.");
	// an EC point that is not on the curve
	std::string ec_j = jwk(ec.get(), Alg::ES256, "e");
	std::string y = b64(bn_param(ec.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32));
	std::string bad_y = y;
	bad_y[5] = bad_y[5] == 'A' ? 'B' : 'A';
	std::string off_curve = ec_j;
	off_curve.replace(off_curve.find(y), y.size(), bad_y);
	CHECK(parse_outcome(set_of({off_curve})) != "parsed");
	CHECK(parse_outcome(set_of({std::string(R"({"kid":"e","kty":"EC","crv":"P-384","x":"AA","y":"AA"})")})) ==
	      "keys[0]: an EC key must be on curve \"P-256\".");
	CHECK(parse_outcome(set_of({std::string(R"({"kid":"o","kty":"OKP","crv":"X25519","x":"AA"})")})) ==
	      "keys[0]: an OKP key must be on curve \"Ed25519\".");
	CHECK(parse_outcome(set_of({std::string(R"({"kid":"o","kty":"OKP","crv":"Ed25519","x":"AAAA"})")})) ==
	      "keys[0]: \"x\" of an Ed25519 key is 32 bytes.");
	CHECK(parse_outcome(set_of({std::string(R"({"kid":"r","kty":"RSA","n":"!!","e":"AQAB"})")})) ==
	      "keys[0]: \"n\" is not unpadded base64url.");
	CHECK(parse_outcome(set_of({std::string(R"({"kid":"r","kty":"RSA","e":"AQAB"})")})) ==
	      "keys[0]: \"n\" is missing.");
	CHECK(parse_outcome(set_of({std::string(R"({"kid":"r","kty":"RSA","n":7,"e":"AQAB"})")})) ==
	      "keys[0]: \"n\" is not a string.");
	CHECK(parse_outcome(set_of({std::string(R"({"kid":"x","kty":"XYZ"})")})) ==
	      "keys[0]: key type \"XYZ\" is not RSA, EC, OKP or oct.");
	CHECK(parse_outcome(set_of({std::string(R"({"kid":"x"})")})) == "keys[0]: \"kty\" is missing.");
	CHECK(parse_outcome(set_of({jwk(ed.get(), Alg::EdDSA, "e", true, ",\"alg\":\"RS256\"")})) != "parsed");
	std::string many = "{\"keys\":[";
	for (int i = 0; i < 65; ++i)
		many += (i ? "," : "") + oct_jwk("k" + std::to_string(i));
	CHECK(parse_outcome(many + "]}") == "The set holds more than 64 keys.");

	// keys for another use or algorithm are skipped, not refused
	jwks::KeySet mixed =
	    jwks::KeySet::parse(set_of({r, jwk(rsa.get(), Alg::RS256, "enc", false, ",\"use\":\"enc\""),
	                                std::string(R"({"kid":"ps","kty":"RSA","alg":"PS256","n":"AQAB","e":"AQAB"})")}));
	CHECK(mixed.entries().size() == 1);
	CHECK(mixed.skipped() == 2);
	CHECK(parse_outcome(set_of({std::string(R"({"kid":"ps","kty":"RSA","alg":"RS512"})")})) ==
	      "The set holds no key for RS256, ES256, EdDSA or HS256 signatures.");
	// errors never carry key material
	try {
		jwks::KeySet::parse(set_of({oct_jwk("h", "short-secret-material")}));
		FAIL("parsed");
	} catch (const Error& e) {
		CHECK(e.detail().find(b64(std::string("short-secret-material"))) == std::string::npos);
	}
}
