// Unit tests for core/claims: NULL-hardening, claim paths, scopes, cache.
#include <catch2/catch.hpp>
#include <string>

#include "core/claims.hpp"

using namespace tenant_guard::claims;

namespace {
const ClaimPaths k_paths;
const char* k_org = "11111111-1111-4111-8111-111111111111";
}  // namespace

TEST_CASE("parse_uuid accepts only canonical uuids", "[claims]")
{
	REQUIRE(parse_uuid(k_org));
	CHECK(format_uuid(*parse_uuid(k_org)) == k_org);
	CHECK(format_uuid(*parse_uuid("ABCDEFAB-1111-4111-8111-111111111111")) == "abcdefab-1111-4111-8111-111111111111");
	CHECK_FALSE(parse_uuid(""));
	CHECK_FALSE(parse_uuid("null"));
	CHECK_FALSE(parse_uuid(" 11111111-1111-4111-8111-111111111111"));
	CHECK_FALSE(parse_uuid("11111111-1111-4111-8111-111111111111 "));
	CHECK_FALSE(parse_uuid("11111111111141118111111111111111"));
	CHECK_FALSE(parse_uuid("{11111111-1111-4111-8111-111111111111}"));
	CHECK_FALSE(parse_uuid("11111111-1111-4111-8111-11111111111g"));
	CHECK_FALSE(parse_uuid("11111111-1111-4111-8111_111111111111"));
	CHECK_FALSE(parse_uuid("00000000-0000-0000-0000-000000000000"));
	CHECK_FALSE(parse_uuid(std::string("11111111-1111-4111-8111-11111111111\0", 36)));
}

TEST_CASE("normalize_text drops blank and null", "[claims]")
{
	CHECK(normalize_text("  alice ") == std::optional<std::string>("alice"));
	CHECK_FALSE(normalize_text(""));
	CHECK_FALSE(normalize_text(" \t\n "));
	CHECK_FALSE(normalize_text("null"));
	CHECK_FALSE(normalize_text(" NuLl "));
	CHECK(normalize_text("nullify") == std::optional<std::string>("nullify"));
	// a NUL byte would cut the value short in PostgreSQL text: absent
	CHECK_FALSE(normalize_text(std::string_view("alice\0admin", 11)));
	CHECK_FALSE(normalize_text(std::string_view("\0", 1)));
}

TEST_CASE("claims holding a NUL byte are absent, not cut short", "[claims]")
{
	Context c = from_claims_text(std::string(R"({"org_id":")") + k_org +
	                                 R"(","sub":"alice\u0000admin","org_role":"member\u0000","act":{"sub":"x\u0000y"},)"
	                                 R"("scopes":{"venue":["v1","v2\u0000v3"]}})",
	                             k_paths);
	REQUIRE(c.org);
	CHECK_FALSE(c.user_id);
	CHECK_FALSE(c.role);
	CHECK_FALSE(c.impersonator);
	REQUIRE(c.scope("venue"));
	CHECK(*c.scope("venue") == std::vector<std::string>{"v1"});
	Context k = from_claims_text(R"({"org_id":"acme\u0000other"})", k_paths);
	CHECK_FALSE(k.org_key);
}

TEST_CASE("valid_path rejects empty segments", "[claims]")
{
	std::string why;
	CHECK(valid_path("org_id", &why));
	CHECK(valid_path("app_metadata.org_id", &why));
	CHECK_FALSE(valid_path("", &why));
	CHECK_FALSE(valid_path(".org", &why));
	CHECK_FALSE(valid_path("org.", &why));
	CHECK_FALSE(valid_path("a..b", &why));
	CHECK(why == "Path segments must be non-empty.");
	CHECK_FALSE(valid_path(std::string(256, 'a'), &why));
}

TEST_CASE("claims text to context", "[claims]")
{
	SECTION("full document")
	{
		Context c = from_claims_text(
		    std::string(R"({"org_id":")") + k_org +
		        R"(","sub":"alice","org_role":"admin","scopes":{"venue":["v1",2,null,{"x":1}],"bad":"str"}})",
		    k_paths);
		REQUIRE(c.org);
		CHECK(format_uuid(*c.org) == k_org);
		CHECK(c.user_id == std::optional<std::string>("alice"));
		CHECK(c.role == std::optional<std::string>("admin"));
		REQUIRE(c.scope("venue"));
		CHECK(*c.scope("venue") == std::vector<std::string>{"v1", "2"});
		CHECK(c.scope("bad") == nullptr);
		CHECK(c.scope("none") == nullptr);
	}
	SECTION("hostile or malformed org values give no org")
	{
		for (const char* doc : {R"({})", R"({"org_id":null})", R"({"org_id":""})", R"({"org_id":"   "})",
		                        R"({"org_id":"null"})", R"({"org_id":12345})", R"({"org_id":{"id":"x"}})",
		                        R"({"org_id":["11111111-1111-4111-8111-111111111111"]})", R"({"org_id":true})",
		                        R"({"org_id":"11111111-1111-4111-8111-11111111111"})", R"("just a string")",
		                        R"({"org_id":" 11111111-1111-4111-8111-111111111111"})", "[]", "null", "42",
		                        "{not json", "", R"({"org_id":"11111111-1111-4111-8111-111111111111")"}) {
			INFO(doc);
			CHECK_FALSE(from_claims_text(doc, k_paths).org);
		}
	}
	SECTION("role and scopes need an org")
	{
		Context c = from_claims_text(R"({"sub":"bob","org_role":"admin","scopes":{"venue":["v1"]}})", k_paths);
		CHECK_FALSE(c.org);
		CHECK(c.user_id == std::optional<std::string>("bob"));
		CHECK_FALSE(c.role);
		CHECK(c.scopes.empty());
	}
	SECTION("nested claim paths")
	{
		ClaimPaths p;
		p.org = "app_metadata.org_id";
		p.role = "app_metadata.role";
		Context c = from_claims_text(
		    std::string(R"({"app_metadata":{"org_id":")") + k_org + R"(","role":"viewer"},"org_id":"x"})", p);
		REQUIRE(c.org);
		CHECK(c.role == std::optional<std::string>("viewer"));
		CHECK_FALSE(from_claims_text(R"({"app_metadata":"11111111-1111-4111-8111-111111111111"})", p).org);
	}
	SECTION("duplicate keys do not confuse the lookup")
	{
		// nlohmann keeps the last duplicate, as PostgreSQL's jsonb does.
		Context c = from_claims_text(std::string(R"({"org_id":"bad","org_id":")") + k_org + "\"}", k_paths);
		CHECK(c.org);
	}
	SECTION("exp and nbf")
	{
		Context c = from_claims_text(R"({"exp":1700000000,"nbf":1600000000.7})", k_paths);
		CHECK(c.exp == std::optional<std::int64_t>(1700000000));
		CHECK(c.nbf == std::optional<std::int64_t>(1600000000));
		CHECK_FALSE(from_claims_text(R"({"exp":"soon"})", k_paths).exp);
	}
}

TEST_CASE("very large and very deep documents", "[claims]")
{
	std::string big = std::string(R"({"org_id":")") + k_org + R"(","pad":")" + std::string(4 << 20, 'x') + "\"}";
	CHECK(from_claims_text(big, k_paths).org);
	// 200k levels of nesting: the parser is iterative, so this must neither crash nor match.
	std::string deep = std::string(200000, '[') + std::string(200000, ']');
	CHECK_FALSE(from_claims_text(deep, k_paths).org);
	std::string deep_obj =
	    R"({"org_id":")" + std::string(k_org) + R"(","x":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
	CHECK(from_claims_text(deep_obj, k_paths).org);
}

TEST_CASE("settings to context", "[claims]")
{
	Context c = from_settings(k_org, " carol ", "member", R"({"venue":["a","b"]})");
	REQUIRE(c.org);
	CHECK(c.user_id == std::optional<std::string>("carol"));
	CHECK(c.role == std::optional<std::string>("member"));
	CHECK(*c.scope("venue") == std::vector<std::string>{"a", "b"});
	Context key_only = from_settings("not-a-uuid", nullptr, nullptr, nullptr);
	CHECK_FALSE(key_only.org);
	CHECK(key_only.org_key == std::optional<std::string>("not-a-uuid"));
	Context none = from_settings(" ", "", "admin", "{bad json");
	CHECK_FALSE(none.org);
	CHECK_FALSE(none.org_key);
	CHECK_FALSE(none.user_id);
	CHECK_FALSE(none.role);
	CHECK(none.scopes.empty());
	CHECK_FALSE(from_settings(nullptr, nullptr, nullptr, nullptr).org);
}

TEST_CASE("ParseCache parses each distinct text once", "[claims]")
{
	ParseCache cache;
	std::string a = std::string(R"({"org_id":")") + k_org + "\"}";
	std::string b = R"({"org_id":"22222222-2222-4222-8222-222222222222"})";
	CHECK(cache.get(a, 1, k_paths).org);
	CHECK(cache.get(a, 1, k_paths).org);
	CHECK(cache.parses() == 1);
	CHECK(format_uuid(*cache.get(b, 1, k_paths).org) == "22222222-2222-4222-8222-222222222222");
	CHECK(cache.parses() == 2);
	ClaimPaths other;
	other.org = "tenant";
	CHECK_FALSE(cache.get(b, 2, other).org);  // new generation: re-derived with the new paths
	CHECK(cache.parses() == 3);
}

TEST_CASE("org id as a key for text and bigint tenant columns", "[claims]")
{
	CHECK(parse_bigint("0") == std::optional<std::int64_t>(0));
	CHECK(parse_bigint("42") == std::optional<std::int64_t>(42));
	CHECK(parse_bigint("-7") == std::optional<std::int64_t>(-7));
	CHECK(parse_bigint("9223372036854775807") == std::optional<std::int64_t>(INT64_MAX));
	CHECK(parse_bigint("-9223372036854775808") == std::optional<std::int64_t>(INT64_MIN));
	for (const char* bad : {"", "-", "+1", "01", "-0", "1.0", "1e3", " 1", "1 ", "9223372036854775808",
	                        "-9223372036854775809", "99999999999999999999", "abc", "0x10"}) {
		INFO(bad);
		CHECK_FALSE(parse_bigint(bad));
	}
	Context n = from_claims_text(R"({"org_id":42,"org_role":"admin"})", k_paths);
	CHECK(n.org_key == std::optional<std::string>("42"));
	CHECK(n.org_bigint == std::optional<std::int64_t>(42));
	CHECK_FALSE(n.org);
	CHECK(n.role == std::optional<std::string>("admin"));  // a valid org key keeps the role
	Context t = from_claims_text(R"({"org_id":"acme-corp"})", k_paths);
	CHECK(t.org_key == std::optional<std::string>("acme-corp"));
	CHECK_FALSE(t.org_bigint);
	Context u = from_claims_text(std::string(R"({"org_id":")") + k_org + "\"}", k_paths);
	CHECK(u.org_key == std::optional<std::string>(k_org));
	CHECK(u.org);
	for (const char* doc : {R"({"org_id":" acme"})", R"({"org_id":"acme "})", R"({"org_id":""})",
	                        R"({"org_id":"NULL"})", R"({"org_id":1.5})", R"({"org_id":true})", R"({"org_id":[1]})"}) {
		INFO(doc);
		Context c = from_claims_text(doc, k_paths);
		CHECK_FALSE(c.org_key);
		CHECK_FALSE(c.org_bigint);
	}
	Context s = from_settings("17", nullptr, "member", nullptr);
	CHECK(s.org_bigint == std::optional<std::int64_t>(17));
	CHECK(s.role == std::optional<std::string>("member"));
}

TEST_CASE("a JSON integer beyond bigint is a text key, never a wrapped bigint", "[claims]")
{
	// nlohmann keeps non-negative integers unsigned: 2^63 must not become -2^63.
	Context big = from_claims_text(R"({"org_id":9223372036854775808,"scopes":{"s":[9223372036854775808]}})", k_paths);
	CHECK(big.org_key == std::optional<std::string>("9223372036854775808"));
	CHECK_FALSE(big.org_bigint);
	REQUIRE(big.scope("s"));
	CHECK(big.scope("s")->at(0) == "9223372036854775808");
	Context max = from_claims_text(R"({"org_id":18446744073709551615})", k_paths);
	CHECK(max.org_key == std::optional<std::string>("18446744073709551615"));
	CHECK_FALSE(max.org_bigint);
	Context min = from_claims_text(R"({"org_id":-9223372036854775808})", k_paths);
	CHECK(min.org_bigint == std::optional<std::int64_t>(INT64_MIN));
	Context exp = from_claims_text(R"({"org_id":"a","exp":9223372036854775808})", k_paths);
	CHECK(exp.exp == std::optional<std::int64_t>(INT64_MAX));
}

TEST_CASE("text org ids hold at most 255 bytes", "[claims]")
{
	Context ok = from_claims_text("{\"org_id\":\"" + std::string(255, 'o') + "\"}", k_paths);
	CHECK(ok.org_key);
	Context longer = from_claims_text("{\"org_id\":\"" + std::string(256, 'o') + "\",\"org_role\":\"admin\"}", k_paths);
	CHECK_FALSE(longer.org_key);
	CHECK_FALSE(longer.role);
	CHECK_FALSE(from_settings(std::string(256, '7').c_str(), nullptr, nullptr, nullptr).org_key);
}

TEST_CASE("the impersonating actor comes from act.sub by default, with the user id rules", "[claims]")
{
	const std::string org = "11111111-1111-4111-8111-111111111111";
	Context c = from_claims_text(R"({"org_id":")" + org + R"(","sub":"u1","act":{"sub":" agent-7 "}})", k_paths);
	REQUIRE(c.impersonator);
	CHECK(*c.impersonator == "agent-7");
	CHECK(*c.user_id == "u1");
	CHECK_FALSE(from_claims_text(R"({"sub":"u1","act":{"sub":"null"}})", k_paths).impersonator);
	CHECK_FALSE(from_claims_text(R"({"sub":"u1","act":{"sub":7}})", k_paths).impersonator);
	CHECK_FALSE(from_claims_text(R"({"sub":"u1","act":"agent"})", k_paths).impersonator);
	CHECK_FALSE(from_claims_text(R"({"sub":"u1"})", k_paths).impersonator);
	ClaimPaths other;
	other.impersonator = "support_agent";
	CHECK(*from_claims_text(R"({"support_agent":"a2","act":{"sub":"a1"}})", other).impersonator == "a2");
	CHECK(*from_settings(org.c_str(), "u1", nullptr, nullptr, " agent-9 ").impersonator == "agent-9");
	CHECK_FALSE(from_settings(org.c_str(), "u1", nullptr, nullptr, "").impersonator);
	CHECK_FALSE(from_settings(org.c_str(), "u1", nullptr, nullptr).impersonator);
}
