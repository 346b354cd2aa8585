// libFuzzer target for the JWKS parser (core/jwks: tenant_guard.jwt_jwks_file,
// admin-supplied) and key-set verification (core/jwt: the token is
// attacker-supplied). The input is a JWKS document, optionally followed by a
// NUL byte and a token checked against the parsed set.
//
// Checks, for every input: every refusal is a tenant_guard::Error, nothing
// else is thrown; a parsed set holds 1 to k_max_keys keys with unique,
// non-empty key ids of at most k_max_kid bytes; a token accepted by the set
// was verified by one of its keys, carries a valid org id, and is a service
// token exactly when its key is listed as a service key and its user id is
// service:NAME.
// Run with test/fuzz/fuzz.sh jwks.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/jwks.hpp"
#include "core/jwt.hpp"
#include "fuzz_common.hpp"

using namespace tenant_guard;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	std::string_view in(reinterpret_cast<const char*>(data), size);
	std::size_t nul = in.find('\0');
	std::string_view doc = in.substr(0, nul);
	std::string_view token = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
	jwks::KeySet set;
	try {
		set = jwks::KeySet::parse(doc);
	} catch (const Error&) {
		return 0;
	}
	fuzz::require(!set.entries().empty() && set.entries().size() <= jwks::k_max_keys);
	std::set<std::string> kids;
	for (const jwks::Entry& e : set.entries()) {
		fuzz::require(!e.kid.empty() && e.kid.size() <= jwks::k_max_kid);
		fuzz::require(kids.insert(e.kid).second);
	}
	if (token.empty())
		return 0;
	jwt::Options opt;
	opt.now = 1800000000;
	opt.service_kids = {set.entries().front().kid};
	try {
		jwt::Verified v = jwt::verify(token, set, opt, claims::ClaimPaths{});
		const jwks::Entry* e = set.find(v.kid);
		fuzz::require(e != nullptr);
		fuzz::require(v.context.org_key.has_value());
		fuzz::check_context(v.context);
		const bool svc_user = v.context.user_id && v.context.user_id->rfind("service:", 0) == 0;
		fuzz::require(v.service == (v.kid == opt.service_kids.front()));
		fuzz::require(v.service == svc_user);
	} catch (const Error&) {
	}
	return 0;
}
