// Unit tests for core/keyfile (the ssl_key_file permission rule) and
// core/encoding (libsodium codecs, strictness).
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/keyfile.hpp"

using namespace tenant_guard;

TEST_CASE("key file modes follow PostgreSQL's ssl_key_file rule", "[keyfile]")
{
	const uid_t me = 1000;
	CHECK_FALSE(keyfile::check_mode(me, 0600, me));
	CHECK_FALSE(keyfile::check_mode(me, 0400, me));
	CHECK(keyfile::check_mode(me, 0640, me));
	CHECK(keyfile::check_mode(me, 0604, me));
	CHECK(keyfile::check_mode(me, 0660, me));
	CHECK_FALSE(keyfile::check_mode(0, 0640, me));
	CHECK(keyfile::check_mode(0, 0644, me));
	CHECK(keyfile::check_mode(0, 0660, me));
	CHECK(keyfile::check_mode(4242, 0600, me));
}

TEST_CASE("key files are read only when private", "[keyfile]")
{
	char dir_template[] = "/tmp/tg_unit_XXXXXX";
	REQUIRE(mkdtemp(dir_template) != nullptr);
	std::string dir = dir_template;
	std::string path = dir + "/k";
	{
		std::ofstream f(path);
		f << "secret-bytes";
	}
	chmod(path.c_str(), 0600);
	auto c = keyfile::read(path, "test key file", geteuid());
	CHECK(std::string(reinterpret_cast<const char*>(c.bytes.data()), c.bytes.size()) == "secret-bytes");
	CHECK(keyfile::stat_file(path, "test key file") == c.identity);

	chmod(path.c_str(), 0644);
	try {
		keyfile::read(path, "test key file", geteuid());
		FAIL("a world-readable key file was accepted");
	} catch (const Error& e) {
		CHECK(std::string(e.sqlstate()) == "F0000");
		CHECK(std::string(e.what()) == "test key file has group or world access");
		CHECK(e.detail().find(path) == std::string::npos);      // not shown to clients
		CHECK(e.detail_log().find(path) != std::string::npos);  // but logged
	}
	// chmod changes the identity, so a cached key is re-checked.
	CHECK(keyfile::stat_file(path, "test key file") != c.identity);

	try {
		keyfile::read(dir + "/missing", "test key file", geteuid());
		FAIL("a missing key file was accepted");
	} catch (const Error& e) {
		CHECK(std::string(e.sqlstate()) == "58P01");
	}
	CHECK_THROWS_AS(keyfile::read(dir, "test key file", geteuid()), Error);  // a directory
	std::remove(path.c_str());
	rmdir(dir.c_str());
}

TEST_CASE("base64url is strict", "[encoding]")
{
	const std::string text = "hello?>";
	std::string enc = encoding::base64url_encode(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
	CHECK(enc == "aGVsbG8_Pg");
	auto dec = encoding::base64url_decode(enc);
	REQUIRE(dec);
	CHECK(std::string(dec->begin(), dec->end()) == text);
	CHECK(encoding::base64url_decode("")->empty());
	CHECK_FALSE(encoding::base64url_decode("aGVsbG8/Pg"));    // standard alphabet
	CHECK_FALSE(encoding::base64url_decode("aGVsbG8_Pg=="));  // padding
	CHECK_FALSE(encoding::base64url_decode("aGVs bG8"));      // space
	CHECK_FALSE(encoding::base64url_decode("a"));             // impossible length
}

TEST_CASE("hex round trip", "[encoding]")
{
	const std::uint8_t bytes[] = {0x00, 0xff, 0x10};
	CHECK(encoding::hex_encode(bytes, 3) == "00ff10");
	CHECK(encoding::hex_decode("00ff10") == std::optional<encoding::Bytes>({0x00, 0xff, 0x10}));
	CHECK_FALSE(encoding::hex_decode("0"));
	CHECK_FALSE(encoding::hex_decode("zz"));
}
