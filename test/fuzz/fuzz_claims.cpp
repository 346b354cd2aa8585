// libFuzzer target for the claims parser: in claims mode request.jwt.claims
// is settable by a SQL injection, so every byte of it is attacker-controlled.
// Covers claims::from_claims_text (default and nested claim paths),
// from_settings, parse_uuid, parse_bigint, normalize_text and valid_path.
//
// Checks, for every input: nothing throws; every context obeys the hardening
// rules of core/claims.hpp (no role or scopes without an organization, no nil
// uuid, no empty value, no NUL byte, bigint keys canonical); parse_uuid and
// format_uuid round-trip; parse_bigint accepts only canonical decimal text.
// Run with test/fuzz/fuzz.sh claims.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/claims.hpp"
#include "fuzz_common.hpp"

using namespace tenant_guard;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	const std::string in(reinterpret_cast<const char*>(data), size);
	static const claims::ClaimPaths defaults;
	static const claims::ClaimPaths nested = [] {
		claims::ClaimPaths p;
		p.org = "app_metadata.org_id";
		p.user = "user_metadata.sub";
		p.role = "app_metadata.roles.org";
		p.scopes = "app_metadata.scopes";
		p.impersonator = "act.act.sub";
		return p;
	}();
	fuzz::check_context(claims::from_claims_text(in, defaults));
	fuzz::check_context(claims::from_claims_text(in, nested));

	// The same bytes as the five plain settings (NUL-separated).
	std::vector<std::string> parts;
	std::size_t start = 0;
	for (int i = 0; i < 4; ++i) {
		const std::size_t nul = in.find('\0', start);
		if (nul == std::string::npos)
			break;
		parts.push_back(in.substr(start, nul - start));
		start = nul + 1;
	}
	parts.push_back(in.substr(start));
	parts.resize(5);
	fuzz::check_context(claims::from_settings(parts[0].c_str(), parts[1].c_str(), parts[2].c_str(), parts[3].c_str(),
	                                          parts[4].c_str()));

	if (auto u = claims::parse_uuid(in)) {
		const std::string back = claims::format_uuid(*u);
		fuzz::require(back.size() == 36);
		fuzz::require(claims::parse_uuid(back) == u);
	}
	if (auto v = claims::parse_bigint(in))
		fuzz::require(std::to_string(*v) == in);
	if (auto t = claims::normalize_text(in)) {
		fuzz::require(!t->empty() && t->size() <= in.size());
		fuzz::require(t->find('\0') == std::string::npos);
	}
	std::string why;
	if (!claims::valid_path(in, &why))
		fuzz::require(!why.empty());
	return 0;
}
