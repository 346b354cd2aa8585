/*
 * core/jwt.cpp: compact JWS verification with OpenSSL.
 */
#include "core/jwt.hpp"

#include <cstring>
#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/jwks.hpp"
#include "core/no_postgres.hpp"

namespace tenant_guard::jwt {

namespace {

[[noreturn]] void refuse(std::string detail)
{
	throw Error(sqlstate::k_invalid_authorization, "invalid tenant token", std::move(detail));
}

[[noreturn]] void bad_key(std::string message, std::string detail)
{
	throw Error(sqlstate::k_config_file_error, std::move(message), std::move(detail));
}

struct MdCtxFree {
	void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
struct BioFree {
	void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct EcdsaSigFree {
	void operator()(ECDSA_SIG* s) const noexcept { ECDSA_SIG_free(s); }
};

nlohmann::json parse_part(std::string_view b64, const char* what)
{
	auto raw = encoding::base64url_decode(b64);
	if (!raw)
		refuse(std::string("The token ") + what + " is not valid base64url.");
	nlohmann::json j = nlohmann::json::parse(raw->begin(), raw->end(), nullptr, false);
	if (j.is_discarded() || !j.is_object())
		refuse(std::string("The token ") + what + " is not a JSON object.");
	return j;
}

// JWS ES256 signatures are r||s (32 bytes each); OpenSSL wants DER.
std::vector<unsigned char> ecdsa_raw_to_der(const encoding::Bytes& sig)
{
	if (sig.size() != 64)
		refuse("The token signature does not match.");
	std::unique_ptr<ECDSA_SIG, EcdsaSigFree> s(ECDSA_SIG_new());
	BIGNUM* r = BN_bin2bn(sig.data(), 32, nullptr);
	BIGNUM* ss = BN_bin2bn(sig.data() + 32, 32, nullptr);
	if (!s || !r || !ss || ECDSA_SIG_set0(s.get(), r, ss) != 1) {
		BN_free(r);
		BN_free(ss);
		throw std::bad_alloc();
	}
	int len = i2d_ECDSA_SIG(s.get(), nullptr);
	if (len <= 0)
		throw std::bad_alloc();
	std::vector<unsigned char> der(static_cast<std::size_t>(len));
	unsigned char* p = der.data();
	i2d_ECDSA_SIG(s.get(), &p);
	return der;
}

bool audience_matches(const nlohmann::json& payload, const std::string& audience)
{
	auto it = payload.find("aud");
	if (it == payload.end())
		return false;
	if (it->is_string())
		return it->get_ref<const std::string&>() == audience;
	if (it->is_array())
		for (const auto& a : *it)
			if (a.is_string() && a.get_ref<const std::string&>() == audience)
				return true;
	return false;
}

}  // namespace

void PkeyFree::operator()(EVP_PKEY* p) const noexcept
{
	EVP_PKEY_free(p);
}

const char* alg_name(Alg alg)
{
	switch (alg) {
	case Alg::HS256:
		return "HS256";
	case Alg::RS256:
		return "RS256";
	case Alg::ES256:
		return "ES256";
	case Alg::EdDSA:
		return "EdDSA";
	}
	return "?";
}

Key Key::hmac_secret(const std::uint8_t* data, std::size_t len)
{
	if (len > 0 && data[len - 1] == '\n')
		--len;
	if (len > 0 && data[len - 1] == '\r')
		--len;
	return hmac_bytes(data, len);
}

Key Key::hmac_bytes(const std::uint8_t* data, std::size_t len)
{
	if (len < k_min_hmac_secret)
		bad_key("JWT secret is too short",
		        "HS256 needs a secret of at least " + std::to_string(k_min_hmac_secret) + " bytes.");
	Key k;
	k.alg_ = Alg::HS256;
	k.secret_ = SecureBuffer(len);
	std::memcpy(k.secret_.data(), data, len);
	return k;
}

std::optional<std::string> Key::misfit(EVP_PKEY* pkey, Alg alg)
{
	int type = EVP_PKEY_get_base_id(pkey);
	switch (alg) {
	case Alg::RS256:
		if (type == EVP_PKEY_RSA && EVP_PKEY_get_bits(pkey) >= 2048)
			return std::nullopt;
		return "RS256 needs an RSA key of at least 2048 bits.";
	case Alg::ES256: {
		char group[64] = {0};
		size_t glen = 0;
		if (type == EVP_PKEY_EC && EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen) == 1 &&
		    (std::strcmp(group, "prime256v1") == 0 || std::strcmp(group, "P-256") == 0))
			return std::nullopt;
		return "ES256 needs an EC key on curve P-256.";
	}
	case Alg::EdDSA:
		if (type == EVP_PKEY_ED25519)
			return std::nullopt;
		return "EdDSA needs an Ed25519 key.";
	case Alg::HS256:
		break;
	}
	return "HS256 uses a secret, not a public key.";
}

Key Key::adopt(std::unique_ptr<EVP_PKEY, PkeyFree> pkey, Alg alg)
{
	if (!pkey)
		throw std::bad_alloc();
	if (auto why = misfit(pkey.get(), alg))
		bad_key("JWT public key does not fit the configured algorithm", *why);
	Key k;
	k.alg_ = alg;
	k.pkey_ = std::move(pkey);
	return k;
}

Key Key::public_key(const std::uint8_t* pem, std::size_t len, Alg alg)
{
	if (alg == Alg::HS256)
		bad_key("JWT public key does not fit the configured algorithm", "HS256 uses tenant_guard.jwt_secret_file.");
	std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem, static_cast<int>(len)));
	if (!bio)
		throw std::bad_alloc();
	std::unique_ptr<EVP_PKEY, PkeyFree> pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
	if (!pkey)
		bad_key("JWT public key file does not hold a PEM public key",
		        "The file must contain a \"BEGIN PUBLIC KEY\" block.");
	return adopt(std::move(pkey), alg);
}

// Friend of Key: checks a signature over the signing input.
struct Verifier {
	static bool check(const Key& key, std::string_view input, const encoding::Bytes& sig)
	{
		if (key.alg_ == Alg::HS256) {
			unsigned char mac[EVP_MAX_MD_SIZE];
			unsigned int mac_len = 0;
			if (HMAC(EVP_sha256(), key.secret_.data(), static_cast<int>(key.secret_.size()),
			         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len) == nullptr)
				throw Error(sqlstate::k_internal_error, "could not compute HMAC-SHA256");
			bool same = sig.size() == mac_len && sodium_memcmp(mac, sig.data(), mac_len) == 0;
			sodium_memzero(mac, sizeof mac);
			return same;
		}
		std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
		if (!ctx)
			throw std::bad_alloc();
		const EVP_MD* md = key.alg_ == Alg::EdDSA ? nullptr : EVP_sha256();
		if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.pkey_.get()) != 1)
			throw Error(sqlstate::k_internal_error, "could not initialise signature verification");
		std::vector<unsigned char> der;
		const unsigned char* s = sig.data();
		std::size_t slen = sig.size();
		if (key.alg_ == Alg::ES256) {
			der = ecdsa_raw_to_der(sig);
			s = der.data();
			slen = der.size();
		}
		if (key.alg_ == Alg::EdDSA && slen != 64)
			return false;
		return EVP_DigestVerify(ctx.get(), s, slen, reinterpret_cast<const unsigned char*>(input.data()),
		                        input.size()) == 1;
	}
};

namespace {

// The parts of a compact JWS and its parsed header.
struct Parsed {
	std::size_t d1 = 0, d2 = 0;
	nlohmann::json header;
	std::string alg;
	std::optional<std::string> kid;
};

Parsed parse_token(std::string_view token)
{
	if (token.empty())
		refuse("The token is empty.");
	if (token.size() > k_max_token_size)
		refuse("The token is longer than " + std::to_string(k_max_token_size) + " bytes.");
	Parsed p;
	p.d1 = token.find('.');
	p.d2 = p.d1 == std::string_view::npos ? p.d1 : token.find('.', p.d1 + 1);
	if (p.d1 == std::string_view::npos || p.d2 == std::string_view::npos ||
	    token.find('.', p.d2 + 1) != std::string_view::npos)
		refuse("The token is not a compact JWS of three dot-separated parts.");

	p.header = parse_part(token.substr(0, p.d1), "header");
	auto alg = p.header.find("alg");
	if (alg == p.header.end() || !alg->is_string())
		refuse("The token header has no algorithm.");
	p.alg = alg->get<std::string>();
	std::string lowered;
	for (char c : p.alg)
		lowered.push_back(static_cast<char>(c | 0x20));
	if (lowered == "none")
		refuse("Unsigned tokens (algorithm \"none\") are never accepted.");
	auto kid = p.header.find("kid");
	if (kid != p.header.end()) {
		if (!kid->is_string())
			refuse("The token key id (\"kid\") is not a string.");
		p.kid = kid->get<std::string>();
	}
	return p;
}

Verified finish(std::string_view token, const Parsed& p, const Key& key, const Options& opt,
                const claims::ClaimPaths& paths, bool service)
{
	if (p.header.contains("crit"))
		refuse("The token header has critical extensions, which are not supported.");

	auto sig = encoding::base64url_decode(token.substr(p.d2 + 1));
	if (!sig || sig->empty())
		refuse("The token signature is not valid base64url.");
	if (!Verifier::check(key, token.substr(0, p.d2), *sig))
		refuse("The token signature does not match.");

	// Only signed content is parsed past this point.
	auto payload_raw = encoding::base64url_decode(token.substr(p.d1 + 1, p.d2 - p.d1 - 1));
	if (!payload_raw)
		refuse("The token payload is not valid base64url.");
	Verified v;
	v.payload.assign(payload_raw->begin(), payload_raw->end());
	nlohmann::json payload = nlohmann::json::parse(v.payload, nullptr, false);
	if (payload.is_discarded() || !payload.is_object())
		refuse("The token payload is not a JSON object.");

	v.context = claims::from_json(payload, paths);
	auto exp_it = payload.find("exp");
	if (exp_it == payload.end())
		refuse("The token has no expiry (\"exp\") claim.");
	if (!v.context.exp)
		refuse("The token expiry (\"exp\") claim is not a number.");
	// now - leeway, not exp + leeway: exp may be as large as an int64 holds.
	if (opt.now - opt.leeway >= *v.context.exp)
		refuse("The token has expired.");
	if (payload.contains("nbf") && !v.context.nbf)
		refuse("The token not-before (\"nbf\") claim is not a number.");
	if (v.context.nbf && opt.now + opt.leeway < *v.context.nbf)
		refuse("The token is not valid yet.");
	if (!opt.audience.empty() && !audience_matches(payload, opt.audience))
		refuse("The token audience does not include the configured audience.");
	if (!opt.issuer.empty()) {
		auto iss = payload.find("iss");
		if (iss == payload.end() || !iss->is_string() || iss->get_ref<const std::string&>() != opt.issuer)
			refuse("The token issuer is not the configured issuer.");
	}
	// The org id: a uuid, or a text or bigint key; the nil uuid is no tenant.
	if (!v.context.org_key || *v.context.org_key == "00000000-0000-0000-0000-000000000000")
		refuse("The token has no valid organization claim.");

	// Service tokens: only a service key makes one, and a service key makes
	// nothing else. The user id is what the audit log records as the actor.
	const bool claims_service =
	    v.context.user_id && v.context.user_id->compare(0, k_service_prefix.size(), k_service_prefix) == 0;
	if (service) {
		if (!claims_service ||
		    !valid_service_name(std::string_view(*v.context.user_id).substr(k_service_prefix.size())))
			refuse("A service key signs only service tokens, whose user id is \"service:\" and a service name.");
		if (v.context.impersonator)
			refuse("A service token acts for no one: it cannot carry an impersonator.");
		if (*v.context.exp > opt.now + opt.service_max_lifetime)
			refuse("The service token lives longer than tenant_guard.jwt_service_max_lifetime allows.");
	} else if (claims_service) {
		refuse("The user id prefix \"service:\" is reserved for tokens signed by a service key.");
	}
	if (v.context.user_id && v.context.user_id->compare(0, k_maintenance_prefix.size(), k_maintenance_prefix) == 0)
		refuse("The user id prefix \"maintenance:\" is reserved for maintenance contexts.");
	v.service = service;
	return v;
}

}  // namespace

std::string sign_hs256(const Key& key, std::string_view kid, std::string_view payload)
{
	if (key.alg_ != Alg::HS256 || key.secret_.size() == 0)
		throw Error(sqlstate::k_invalid_parameter_value, "only an HS256 key can sign a token");
	nlohmann::json header = {{"alg", "HS256"}, {"typ", "JWT"}};
	if (!kid.empty())
		header["kid"] = std::string(kid);
	const std::string h = header.dump();
	std::string token =
	    encoding::base64url_encode(reinterpret_cast<const std::uint8_t*>(h.data()), h.size()) + "." +
	    encoding::base64url_encode(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size());
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	if (HMAC(EVP_sha256(), key.secret_.data(), static_cast<int>(key.secret_.size()),
	         reinterpret_cast<const unsigned char*>(token.data()), token.size(), mac, &mac_len) == nullptr)
		throw Error(sqlstate::k_internal_error, "could not compute HMAC-SHA256");
	std::string sig = encoding::base64url_encode(mac, mac_len);
	sodium_memzero(mac, sizeof mac);
	token.reserve(token.size() + 1 + sig.size());
	token += '.';
	token += sig;
	sodium_memzero(sig.data(), sig.size());
	return token;
}

bool valid_service_name(std::string_view name)
{
	if (name.empty() || name.size() > k_max_service_name)
		return false;
	for (char c : name)
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	return true;
}

Verified verify(std::string_view token, const Key& key, const Options& opt, const claims::ClaimPaths& paths)
{
	Parsed p = parse_token(token);
	if (p.alg != alg_name(opt.alg) || key.alg() != opt.alg)
		refuse(std::string("The token algorithm is not the configured algorithm ") + alg_name(opt.alg) + ".");
	return finish(token, p, key, opt, paths, false);
}

Verified verify(std::string_view token, const jwks::KeySet& keys, const Options& opt, const claims::ClaimPaths& paths)
{
	Parsed p = parse_token(token);
	const jwks::Entry* entry = nullptr;
	if (p.kid) {
		entry = keys.find(*p.kid);
		if (entry == nullptr)
			refuse("The token key id (\"kid\") is not in the key set.");
	} else {
		entry = keys.sole();
		if (entry == nullptr)
			refuse("The token has no key id (\"kid\") and the key set holds more than one key.");
	}
	const Key* key = &entry->key;
	if (p.alg != alg_name(key->alg()))
		refuse("The token algorithm is not the algorithm of its key.");
	bool service = false;
	for (const std::string& s : opt.service_kids)
		service = service || s == entry->kid;
	Verified v = finish(token, p, *key, opt, paths, service);
	v.kid = entry->kid;
	return v;
}

}  // namespace tenant_guard::jwt
