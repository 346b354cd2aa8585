/*
 * core/jwks.cpp: a JSON Web Key Set to verification keys. nlohmann::json
 * parses, OpenSSL builds the keys from their JWK parameters (OSSL_PARAM,
 * EVP_PKEY_fromdata) and checks them (EVP_PKEY_public_check), libsodium
 * decodes base64url. The rules are in jwks.hpp.
 */
#include "core/jwks.hpp"

#include <memory>
#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <sodium.h>

#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/no_postgres.hpp"

namespace tenant_guard::jwks {

namespace {

[[noreturn]] void bad_set(std::string detail)
{
	throw Error(sqlstate::k_config_file_error, "JWKS file is not a valid key set", std::move(detail),
	            "The file must be a JSON Web Key Set: {\"keys\": [{\"kid\": ..., \"kty\": ..., ...}]} "
	            "(docs/signed-mode.md).");
}

struct BnFree {
	void operator()(BIGNUM* b) const noexcept { BN_free(b); }
};
struct BldFree {
	void operator()(OSSL_PARAM_BLD* b) const noexcept { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
	void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
};
struct CtxFree {
	void operator()(EVP_PKEY_CTX* c) const noexcept { EVP_PKEY_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, jwt::PkeyFree>;

void sodium_memzero_bytes(encoding::Bytes& b)
{
	if (!b.empty())
		sodium_memzero(b.data(), b.size());
}

// Wipes every key's "k" (an HS256 secret) in the parsed document when the
// parse ends, refused or not: the document's strings are freed unzeroed.
struct WipeSecrets {
	nlohmann::json& doc;
	~WipeSecrets()
	{
		auto keys = doc.find("keys");
		if (keys == doc.end() || !keys->is_array())
			return;
		for (nlohmann::json& k : *keys) {
			if (!k.is_object())
				continue;
			auto it = k.find("k");
			if (it != k.end() && it->is_string()) {
				std::string& s = it->get_ref<std::string&>();
				if (!s.empty())
					sodium_memzero(s.data(), s.size());
			}
		}
	}
};

// One key's JSON object, with its position for error details.
struct Jwk {
	const nlohmann::json& obj;
	std::string where;

	// A member that must be a string, or nullptr when absent.
	const std::string* text(const char* name) const
	{
		auto it = obj.find(name);
		if (it == obj.end())
			return nullptr;
		if (!it->is_string())
			bad_set(where + ": \"" + name + "\" is not a string.");
		return &it->get_ref<const std::string&>();
	}
	// A required base64url member, decoded.
	encoding::Bytes bytes(const char* name) const
	{
		const std::string* s = text(name);
		if (s == nullptr)
			bad_set(where + ": \"" + name + "\" is missing.");
		auto b = encoding::base64url_decode(*s);
		if (!b || b->empty())
			bad_set(where + ": \"" + name + "\" is not unpadded base64url.");
		return std::move(*b);
	}
	void no_private(std::initializer_list<const char*> names) const
	{
		for (const char* n : names)
			if (obj.contains(n))
				bad_set(where + " holds private key material (\"" + n + "\"); the file takes public keys only.");
	}
};

Pkey from_params(const char* type, OSSL_PARAM_BLD* bld, const std::string& where)
{
	std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
	std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
	if (!params || !ctx)
		throw std::bad_alloc();
	EVP_PKEY* raw = nullptr;
	if (EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
	    EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 || raw == nullptr)
		bad_set(where + ": OpenSSL cannot build a public key from its parameters.");
	Pkey pkey(raw);
	std::unique_ptr<EVP_PKEY_CTX, CtxFree> check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
	if (!check)
		throw std::bad_alloc();
	if (EVP_PKEY_public_check(check.get()) != 1)
		bad_set(where + ": the public key is not valid.");
	return pkey;
}

Pkey rsa_key(const Jwk& j)
{
	j.no_private({"d", "p", "q", "dp", "dq", "qi", "oth"});
	encoding::Bytes n = j.bytes("n");
	encoding::Bytes e = j.bytes("e");
	std::unique_ptr<BIGNUM, BnFree> bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
	std::unique_ptr<BIGNUM, BnFree> bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
	std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
	if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
		throw std::bad_alloc();
	return from_params("RSA", bld.get(), j.where);
}

Pkey ec_key(const Jwk& j)
{
	j.no_private({"d"});
	const std::string* crv = j.text("crv");
	if (crv == nullptr || *crv != "P-256")
		bad_set(j.where + ": an EC key must be on curve \"P-256\".");
	encoding::Bytes x = j.bytes("x");
	encoding::Bytes y = j.bytes("y");
	if (x.size() != 32 || y.size() != 32)
		bad_set(j.where + ": \"x\" and \"y\" of a P-256 key are 32 bytes each.");
	unsigned char point[65];
	point[0] = 0x04;  // uncompressed
	std::copy(x.begin(), x.end(), point + 1);
	std::copy(y.begin(), y.end(), point + 33);
	std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
	if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point) != 1)
		throw std::bad_alloc();
	return from_params("EC", bld.get(), j.where);
}

Pkey okp_key(const Jwk& j)
{
	j.no_private({"d"});
	const std::string* crv = j.text("crv");
	if (crv == nullptr || *crv != "Ed25519")
		bad_set(j.where + ": an OKP key must be on curve \"Ed25519\".");
	encoding::Bytes x = j.bytes("x");
	if (x.size() != 32)
		bad_set(j.where + ": \"x\" of an Ed25519 key is 32 bytes.");
	std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
	if (!bld || OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, x.data(), x.size()) != 1)
		throw std::bad_alloc();
	return from_params("ED25519", bld.get(), j.where);
}

// The algorithm a key verifies: its "alg" when one of ours, else by type.
// nullopt: skip the key (another algorithm).
std::optional<jwt::Alg> key_alg(const Jwk& j, const std::string& kty)
{
	const std::string* alg = j.text("alg");
	struct Pair {
		const char* kty;
		jwt::Alg alg;
	};
	static constexpr Pair pairs[] = {
	    {"RSA", jwt::Alg::RS256}, {"EC", jwt::Alg::ES256}, {"OKP", jwt::Alg::EdDSA}, {"oct", jwt::Alg::HS256}};
	if (alg != nullptr) {
		for (const Pair& p : pairs)
			if (*alg == jwt::alg_name(p.alg)) {
				if (kty != p.kty)
					bad_set(j.where + ": algorithm " + *alg + " does not fit key type \"" + kty + "\".");
				return p.alg;
			}
		return std::nullopt;  // an algorithm tenant_guard does not verify
	}
	if (kty == "oct")
		bad_set(j.where + ": an \"oct\" (HS256 secret) key must say \"alg\": \"HS256\".");
	for (const Pair& p : pairs)
		if (kty == p.kty)
			return p.alg;
	bad_set(j.where + ": key type \"" + kty + "\" is not RSA, EC, OKP or oct.");
}

}  // namespace

KeySet KeySet::parse(std::string_view json)
{
	nlohmann::json doc = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
	if (doc.is_discarded() || !doc.is_object())
		bad_set("The file is not a JSON object.");
	WipeSecrets wipe{doc};
	auto keys = doc.find("keys");
	if (keys == doc.end() || !keys->is_array())
		bad_set("The \"keys\" member is missing or not an array.");
	if (keys->size() > k_max_keys)
		bad_set("The set holds more than " + std::to_string(k_max_keys) + " keys.");
	KeySet set;
	std::size_t index = 0;
	for (const nlohmann::json& k : *keys) {
		Jwk j{k, "keys[" + std::to_string(index++) + "]"};
		if (!k.is_object())
			bad_set(j.where + " is not an object.");
		const std::string* use = j.text("use");
		if (use != nullptr && *use != "sig") {
			++set.skipped_;
			continue;
		}
		const std::string* kty = j.text("kty");
		if (kty == nullptr)
			bad_set(j.where + ": \"kty\" is missing.");
		std::optional<jwt::Alg> alg = key_alg(j, *kty);
		if (!alg) {
			++set.skipped_;
			continue;
		}
		const std::string* kid = j.text("kid");
		if (kid == nullptr || kid->empty() || kid->size() > k_max_kid || kid->find('\0') != std::string::npos)
			bad_set(j.where + ": \"kid\" must be a non-empty string of at most " + std::to_string(k_max_kid) +
			        " bytes.");
		if (set.find(*kid) != nullptr)
			bad_set(j.where + ": key id \"" + *kid + "\" appears twice.");
		Entry e{*kid, jwt::Key{}};
		if (*alg == jwt::Alg::HS256) {
			encoding::Bytes secret = j.bytes("k");
			if (secret.size() < jwt::k_min_hmac_secret) {
				sodium_memzero_bytes(secret);
				bad_set(j.where + ": an HS256 secret needs at least " + std::to_string(jwt::k_min_hmac_secret) +
				        " bytes.");
			}
			e.key = jwt::Key::hmac_bytes(secret.data(), secret.size());
			sodium_memzero_bytes(secret);
		} else {
			Pkey pkey = *alg == jwt::Alg::RS256 ? rsa_key(j) : *alg == jwt::Alg::ES256 ? ec_key(j) : okp_key(j);
			if (auto why = jwt::Key::misfit(pkey.get(), *alg))
				bad_set(j.where + ": " + *why);
			e.key = jwt::Key::adopt(std::move(pkey), *alg);
		}
		set.entries_.push_back(std::move(e));
	}
	if (set.entries_.empty())
		bad_set("The set holds no key for RS256, ES256, EdDSA or HS256 signatures.");
	return set;
}

const Entry* KeySet::find(std::string_view kid) const
{
	for (const Entry& e : entries_)
		if (e.kid == kid)
			return &e;
	return nullptr;
}

}  // namespace tenant_guard::jwks
