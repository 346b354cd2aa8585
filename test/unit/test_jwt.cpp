// Unit tests for core/jwt: every refusal path, each algorithm, and the
// RFC 7515 A.1 known-answer token. Test tokens are signed here with OpenSSL
// directly (a test helper), independently of the verifier's code path.
#include <catch2/catch.hpp>
#include <memory>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <string>

#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/jwt.hpp"

using namespace tenant_guard;
using tenant_guard::jwt::Alg;

namespace {

const char* k_org = "11111111-1111-4111-8111-111111111111";
const std::int64_t k_now = 1800000000;
const std::string k_secret = "0123456789abcdef0123456789abcdef-test-secret";

std::string b64(const std::string& s)
{
	return encoding::base64url_encode(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

std::string payload(const std::string& extra = "")
{
	return std::string(R"({"org_id":")") + k_org + R"(","sub":"alice","org_role":"admin","exp":)" +
	       std::to_string(k_now + 60) + extra + "}";
}

std::string hs256(const std::string& header, const std::string& body, const std::string& secret = k_secret)
{
	std::string input = b64(header) + "." + b64(body);
	unsigned char mac[32];
	unsigned int len = 0;
	HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
	     reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
	return input + "." + encoding::base64url_encode(mac, len);
}

struct PkeyDel {
	void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDel>;

Pkey generate(Alg alg)
{
	EVP_PKEY* k = nullptr;
	if (alg == Alg::RS256)
		k = EVP_RSA_gen(2048);
	else if (alg == Alg::ES256)
		k = EVP_EC_gen("P-256");
	else
		k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
	REQUIRE(k != nullptr);
	return Pkey(k);
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

std::string sign(EVP_PKEY* k, Alg alg, const std::string& body)
{
	std::string header = std::string(R"({"alg":")") + jwt::alg_name(alg) + R"(","typ":"JWT"})";
	std::string input = b64(header) + "." + b64(body);
	EVP_MD_CTX* ctx = EVP_MD_CTX_new();
	REQUIRE(EVP_DigestSignInit(ctx, nullptr, alg == Alg::EdDSA ? nullptr : EVP_sha256(), nullptr, k) == 1);
	std::size_t len = 0;
	EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
	std::vector<unsigned char> sig(len);
	REQUIRE(EVP_DigestSign(ctx, sig.data(), &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) ==
	        1);
	sig.resize(len);
	EVP_MD_CTX_free(ctx);
	if (alg == Alg::ES256) {  // DER to JWS r||s
		const unsigned char* p = sig.data();
		ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
		std::vector<unsigned char> raw(64);
		BN_bn2binpad(ECDSA_SIG_get0_r(es), raw.data(), 32);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), raw.data() + 32, 32);
		ECDSA_SIG_free(es);
		sig = raw;
	}
	return input + "." + encoding::base64url_encode(sig.data(), sig.size());
}

jwt::Key hs_key(const std::string& s = k_secret)
{
	return jwt::Key::hmac_secret(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

jwt::Options opts(Alg alg = Alg::HS256)
{
	jwt::Options o;
	o.alg = alg;
	o.now = k_now;
	return o;
}

// The detail of the refusal, or "accepted".
std::string outcome(const std::string& token, const jwt::Key& key, const jwt::Options& o)
{
	try {
		jwt::verify(token, key, o, claims::ClaimPaths{});
		return "accepted";
	} catch (const Error& e) {
		CHECK(std::string(e.sqlstate()) == "28000");
		CHECK(std::string(e.what()) == "invalid tenant token");
		// No part of the token may ever appear in the error.
		if (token.size() > 16) {
			CHECK(e.detail().find(token.substr(0, 16)) == std::string::npos);
			CHECK(e.detail().find(token.substr(token.size() - 16)) == std::string::npos);
		}
		return e.detail();
	}
}

const std::string k_hs_header = R"({"alg":"HS256","typ":"JWT"})";

}  // namespace

TEST_CASE("HS256 valid token yields the context", "[jwt]")
{
	auto v = jwt::verify(hs256(k_hs_header, payload()), hs_key(), opts(), claims::ClaimPaths{});
	REQUIRE(v.context.org);
	CHECK(claims::format_uuid(*v.context.org) == k_org);
	CHECK(v.context.user_id == std::optional<std::string>("alice"));
	CHECK(v.payload == payload());
}

TEST_CASE("RFC 7515 appendix A.1 HS256 example verifies", "[jwt][kat]")
{
	const std::string token =
	    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
	    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
	    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	auto k = encoding::base64url_decode(
	    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
	REQUIRE(k);
	jwt::Key key = jwt::Key::hmac_secret(k->data(), k->size());
	jwt::Options o = opts();
	o.now = 1300819370;
	// The signature checks out; the example simply has no organization claim.
	CHECK(outcome(token, key, o) == "The token has no valid organization claim.");
	o.now = 1300819380;
	CHECK(outcome(token, key, o) == "The token has expired.");
	std::string bad = token;
	bad[bad.size() - 2] = bad[bad.size() - 2] == 'X' ? 'Y' : 'X';
	o.now = 1300819370;
	CHECK(outcome(bad, key, o) == "The token signature does not match.");
}

TEST_CASE("HS256 refusals", "[jwt]")
{
	jwt::Key key = hs_key();
	jwt::Options o = opts();
	std::string good = hs256(k_hs_header, payload());
	CHECK(outcome(good, key, o) == "accepted");
	CHECK(outcome("", key, o) == "The token is empty.");
	CHECK(outcome(std::string(70000, 'a'), key, o) == "The token is longer than 65536 bytes.");
	CHECK(outcome("abc", key, o) == "The token is not a compact JWS of three dot-separated parts.");
	CHECK(outcome("a.b", key, o) == "The token is not a compact JWS of three dot-separated parts.");
	CHECK(outcome(good + ".x", key, o) == "The token is not a compact JWS of three dot-separated parts.");
	CHECK(outcome("!!." + good.substr(good.find('.') + 1), key, o) == "The token header is not valid base64url.");
	CHECK(outcome(b64("[1]") + ".e30.c2ln", key, o) == "The token header is not a JSON object.");
	CHECK(outcome(b64("{\"typ\":\"JWT\"}") + ".e30.c2ln", key, o) == "The token header has no algorithm.");
	CHECK(outcome(good.substr(0, good.size() - 11), key, o) == "The token signature does not match.");
	CHECK(outcome(good.substr(0, good.size() - 10), key, o) == "The token signature is not valid base64url.");
	CHECK(outcome(good.substr(0, good.rfind('.') + 1), key, o) == "The token signature is not valid base64url.");
	CHECK(outcome(hs256(k_hs_header, payload(), k_secret + "x"), key, o) == "The token signature does not match.");

	SECTION("alg none in any spelling")
	{
		for (const char* alg : {"none", "None", "NONE"}) {
			std::string t = b64(std::string(R"({"alg":")") + alg + "\"}") + "." + b64(payload()) + ".";
			CHECK(outcome(t, key, o) == "Unsigned tokens (algorithm \"none\") are never accepted.");
		}
	}
	SECTION("tampered payload keeps the old signature")
	{
		std::string forged = good.substr(0, good.find('.') + 1) +
		                     b64(R"({"org_id":"22222222-2222-4222-8222-222222222222","exp":1900000000})") +
		                     good.substr(good.rfind('.'));
		CHECK(outcome(forged, key, o) == "The token signature does not match.");
	}
	SECTION("time checks")
	{
		CHECK(outcome(hs256(k_hs_header, payload().substr(0, payload().find(",\"exp\"")) + "}"), key, o) ==
		      "The token has no expiry (\"exp\") claim.");
		CHECK(outcome(hs256(k_hs_header, R"({"org_id":")" + std::string(k_org) + R"(","exp":"tomorrow"})"), key, o) ==
		      "The token expiry (\"exp\") claim is not a number.");
		jwt::Options late = o;
		late.now = k_now + 60;
		CHECK(outcome(good, key, late) == "The token has expired.");
		late.leeway = 30;
		CHECK(outcome(good, key, late) == "accepted");
		std::string nbf = hs256(k_hs_header, payload(",\"nbf\":" + std::to_string(k_now + 10)));
		CHECK(outcome(nbf, key, o) == "The token is not valid yet.");
		CHECK(outcome(hs256(k_hs_header, payload(",\"nbf\":\"x\"")), key, o) ==
		      "The token not-before (\"nbf\") claim is not a number.");
	}
	SECTION("audience and issuer")
	{
		jwt::Options a = o;
		a.audience = "app";
		CHECK(outcome(good, key, a) == "The token audience does not include the configured audience.");
		CHECK(outcome(hs256(k_hs_header, payload(",\"aud\":\"app\"")), key, a) == "accepted");
		CHECK(outcome(hs256(k_hs_header, payload(",\"aud\":[\"x\",\"app\"]")), key, a) == "accepted");
		CHECK(outcome(hs256(k_hs_header, payload(",\"aud\":[\"x\"]")), key, a) ==
		      "The token audience does not include the configured audience.");
		jwt::Options i = o;
		i.issuer = "https://auth.example";
		CHECK(outcome(good, key, i) == "The token issuer is not the configured issuer.");
		CHECK(outcome(hs256(k_hs_header, payload(",\"iss\":\"https://auth.example\"")), key, i) == "accepted");
	}
	SECTION("organization claim must be a usable id: uuid, text or bigint key")
	{
		for (const char* org :
		     {R"("")", R"("null")", "null", R"(" padded")", "1.5", "{}", R"("00000000-0000-0000-0000-000000000000")"}) {
			std::string body = std::string(R"({"org_id":)") + org + R"(,"exp":)" + std::to_string(k_now + 60) + "}";
			CHECK(outcome(hs256(k_hs_header, body), key, o) == "The token has no valid organization claim.");
		}
		for (const char* org : {"7", R"("org_2abc")"}) {
			std::string body = std::string(R"({"org_id":)") + org + R"(,"exp":)" + std::to_string(k_now + 60) + "}";
			CHECK(outcome(hs256(k_hs_header, body), key, o) == "accepted");
		}
	}
	SECTION("critical header extensions")
	{
		CHECK(outcome(hs256(R"({"alg":"HS256","crit":["exp"]})", payload()), key, o) ==
		      "The token header has critical extensions, which are not supported.");
	}
}

TEST_CASE("HS256 secrets", "[jwt]")
{
	CHECK_THROWS_AS(hs_key("short"), Error);
	std::string with_newline = k_secret + "\n";
	jwt::Key k = jwt::Key::hmac_secret(reinterpret_cast<const std::uint8_t*>(with_newline.data()), with_newline.size());
	CHECK(outcome(hs256(k_hs_header, payload()), k, opts()) == "accepted");
	std::string with_crlf = k_secret + "\r\n";
	jwt::Key k2 = jwt::Key::hmac_secret(reinterpret_cast<const std::uint8_t*>(with_crlf.data()), with_crlf.size());
	CHECK(outcome(hs256(k_hs_header, payload()), k2, opts()) == "accepted");
}

TEST_CASE("asymmetric algorithms", "[jwt]")
{
	for (Alg alg : {Alg::RS256, Alg::ES256, Alg::EdDSA}) {
		INFO(jwt::alg_name(alg));
		Pkey priv = generate(alg);
		Pkey other = generate(alg);
		std::string pem = public_pem(priv.get());
		jwt::Key key = jwt::Key::public_key(reinterpret_cast<const std::uint8_t*>(pem.data()), pem.size(), alg);
		jwt::Options o = opts(alg);
		std::string good = sign(priv.get(), alg, payload());
		CHECK(outcome(good, key, o) == "accepted");
		CHECK(outcome(sign(other.get(), alg, payload()), key, o) == "The token signature does not match.");
		std::string flipped = good;
		char& c = flipped[flipped.size() - 3];
		c = c == 'A' ? 'B' : 'A';
		CHECK(outcome(flipped, key, o) == "The token signature does not match.");
		// Algorithm confusion: an HS256 token whose HMAC key is the public key PEM.
		CHECK(outcome(hs256(k_hs_header, payload(), pem), key, o) ==
		      std::string("The token algorithm is not the configured algorithm ") + jwt::alg_name(alg) + ".");
		// A public key configured for a different algorithm is refused at load time.
		Alg wrong = alg == Alg::RS256 ? Alg::ES256 : Alg::RS256;
		CHECK_THROWS_AS(jwt::Key::public_key(reinterpret_cast<const std::uint8_t*>(pem.data()), pem.size(), wrong),
		                Error);
	}
	CHECK_THROWS_AS(jwt::Key::public_key(reinterpret_cast<const std::uint8_t*>("junk"), 4, Alg::RS256), Error);
}

TEST_CASE("an HS256 token is refused when RS256 is pinned and vice versa", "[jwt]")
{
	Pkey rsa = generate(Alg::RS256);
	std::string rs_token = sign(rsa.get(), Alg::RS256, payload());
	CHECK(outcome(rs_token, hs_key(), opts(Alg::HS256)) ==
	      "The token algorithm is not the configured algorithm HS256.");
}

TEST_CASE("the largest expiry with a leeway is not an overflow, and maintenance user ids are reserved", "[jwt]")
{
	jwt::Key key = hs_key();
	jwt::Options o = opts();
	o.leeway = 300;
	const std::string far = R"({"org_id":")" + std::string(k_org) + R"(","sub":"alice","exp":9223372036854775807})";
	CHECK(outcome(hs256(k_hs_header, far), key, o) == "accepted");
	o.now = k_now + 60 + 299;
	CHECK(outcome(hs256(k_hs_header, payload()), key, o) == "accepted");
	o.now = k_now + 60 + 300;
	CHECK(outcome(hs256(k_hs_header, payload()), key, o) == "The token has expired.");
	o.now = k_now;
	const std::string maint = R"({"org_id":")" + std::string(k_org) + R"(","sub":"maintenance:postgres","exp":)" +
	                          std::to_string(k_now + 60) + "}";
	CHECK(outcome(hs256(k_hs_header, maint), key, o) ==
	      "The user id prefix \"maintenance:\" is reserved for maintenance contexts.");
}

TEST_CASE("sign_hs256: a token the verifier accepts, and no other key signs", "[jwt]")
{
	jwt::Key key = hs_key();
	const std::string token = jwt::sign_hs256(key, "", payload());
	// the same bytes as an independent HMAC of the same header and payload
	CHECK(token == hs256(k_hs_header, payload()));
	auto v = jwt::verify(token, key, opts(), claims::ClaimPaths{});
	REQUIRE(v.context.org);
	CHECK(claims::format_uuid(*v.context.org) == k_org);
	CHECK(v.payload == payload());
	// a kid goes into the header
	const std::string with_kid = jwt::sign_hs256(key, "grid-1", payload());
	auto dot = with_kid.find('.');
	auto header = encoding::base64url_decode(std::string_view(with_kid).substr(0, dot));
	REQUIRE(header);
	CHECK(std::string(header->begin(), header->end()) == R"({"alg":"HS256","kid":"grid-1","typ":"JWT"})");
	// another secret does not verify it
	const std::string other = "another-secret-of-at-least-32-bytes-long";
	jwt::Key other_key = jwt::Key::hmac_bytes(reinterpret_cast<const std::uint8_t*>(other.data()), other.size());
	CHECK(outcome(token, other_key, opts()) == "The token signature does not match.");
	// a public key cannot sign
	Pkey rsa = generate(Alg::RS256);
	jwt::Key rs_key = jwt::Key::adopt(std::unique_ptr<EVP_PKEY, jwt::PkeyFree>(EVP_PKEY_dup(rsa.get())), Alg::RS256);
	CHECK_THROWS_AS(jwt::sign_hs256(rs_key, "", payload()), Error);
}
