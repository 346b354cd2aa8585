// Unit tests for core/token_text: finding a token in a statement's text and
// removing it (set_context() refuses a token written into the statement).
#include <catch2/catch.hpp>
#include <string>

#include "core/token_text.hpp"

using namespace tenant_guard;

namespace {
const std::string header = "eyJhbGciOiJIUzI1NiJ9";
const std::string payload = "eyJvcmdfaWQiOiIxMTExMTExMS0xMTExIn0";
const std::string signature = "c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";
const std::string token = header + "." + payload + "." + signature;
}  // namespace

TEST_CASE("the whole token and its signature are searched for", "[token_text]")
{
	const token_text::Parts p = token_text::parts(token);
	CHECK(p.whole == token);
	CHECK(p.signature == signature);
	CHECK(token_text::written_into("SELECT tenant_guard.set_context('" + token + "')", p));
	// built from pieces: the signature is still there whole
	CHECK(token_text::written_into(
	    "SELECT set_context('" + header + "' || '.' || '" + payload + "' || '.' || '" + signature + "')", p));
	CHECK(token_text::written_into("EXECUTE login($q$" + token + "$q$)", p));
	// a bind parameter, or another token
	CHECK_FALSE(token_text::written_into("SELECT tenant_guard.set_context($1)", p));
	CHECK_FALSE(token_text::written_into("SELECT set_context('" + header + "." + payload + ".other-signature')", p));
	// the signature cut in two is not found (documented: a statement that hides the token from itself)
	CHECK_FALSE(
	    token_text::written_into("SELECT '" + signature.substr(0, 10) + "' || '" + signature.substr(10) + "'", p));
}

TEST_CASE("short strings and short signatures are not searched for", "[token_text]")
{
	CHECK(token_text::parts("").whole.empty());
	CHECK_FALSE(token_text::written_into("SELECT set_context('')", token_text::parts("")));
	const token_text::Parts short_sig = token_text::parts("not.a.token-of-some-length");
	CHECK(short_sig.whole == "not.a.token-of-some-length");
	CHECK(short_sig.signature == "token-of-some-length");
	const token_text::Parts no_sig = token_text::parts("abcdefghijklmnop.short");
	CHECK(no_sig.signature.empty());
	CHECK(token_text::parts("abcdefghijklmno").whole.empty());  // 15 characters
	CHECK(token_text::parts("abcdefghijklmnop").whole == "abcdefghijklmnop");
	CHECK(token_text::parts("abcdefghijklmnop").signature.empty());  // no dot
	CHECK(token_text::parts("x.").signature.empty());
}

TEST_CASE("every occurrence is replaced, the rest of the statement kept", "[token_text]")
{
	const token_text::Parts p = token_text::parts(token);
	CHECK(token_text::redacted("SELECT tenant_guard.set_context('" + token + "')", p) ==
	      "SELECT tenant_guard.set_context('<redacted>')");
	CHECK(token_text::redacted("SELECT a('" + token + "'), b('" + token + "')", p) ==
	      "SELECT a('<redacted>'), b('<redacted>')");
	CHECK(token_text::redacted("SELECT '" + header + "' || '.' || '" + payload + "' || '.' || '" + signature + "'",
	                           p) == "SELECT '" + header + "' || '.' || '" + payload + "' || '.' || '<redacted>'");
	CHECK(token_text::redacted("SELECT 1", p) == "SELECT 1");
	const token_text::Parts none = token_text::parts("");
	CHECK(token_text::redacted("SELECT 1", none) == "SELECT 1");
}
