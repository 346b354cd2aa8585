// Unit tests for core/audit: the canonical hashing input of audit records
// and RFC 4180 CSV quoting. Expected digests come from Python's hashlib.
#include <catch2/catch.hpp>
#include <string>

#include "core/audit.hpp"
#include "core/encoding.hpp"
#include "record_hasher.hpp"

using namespace tenant_guard::audit;
using namespace std::string_literals;
using tenant_guard::encoding::hex_encode;

TEST_CASE("record hashing frames every field", "[audit]")
{
	RecordHasher h;
	h.bytes("abc");
	h.null();
	h.integer(-7);
	CHECK(h.input() == "\x01\x00\x00\x00\x03"
	                   "abc\x00\x01\x00\x00\x00\x02-7"s);
	Hash d = h.finish();
	CHECK(hex_encode(d.data(), d.size()) == "f69bdf53f70bad860e6dba997af9ff37700c0a2c17e3654637f251dbe33b6065");
	// the hasher starts over after finish()
	CHECK(h.input().empty());
	Hash empty = h.finish();
	CHECK(hex_encode(empty.data(), empty.size()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("record hashing tells field boundaries, NULL and empty apart", "[audit]")
{
	auto digest = [](auto feed) {
		RecordHasher h;
		feed(h);
		return h.finish();
	};
	Hash ab_c = digest([](RecordHasher& h) {
		h.bytes("ab");
		h.bytes("c");
	});
	Hash a_bc = digest([](RecordHasher& h) {
		h.bytes("a");
		h.bytes("bc");
	});
	Hash null_ = digest([](RecordHasher& h) { h.null(); });
	Hash empty = digest([](RecordHasher& h) { h.bytes(""); });
	CHECK(ab_c != a_bc);
	CHECK(null_ != empty);
	// arrays: element boundaries and NULL elements count
	Hash arr1 = digest([](RecordHasher& h) { h.array({"ab"s, "c"s}); });
	Hash arr2 = digest([](RecordHasher& h) { h.array({"a"s, "bc"s}); });
	Hash arr3 = digest([](RecordHasher& h) { h.array({"a"s, std::nullopt}); });
	Hash arr4 = digest([](RecordHasher& h) { h.array({"a"s, ""s}); });
	Hash arr5 = digest([](RecordHasher& h) { h.array({}); });
	CHECK(arr1 != arr2);
	CHECK(arr3 != arr4);
	CHECK(arr5 != null_);
	CHECK(arr5 != empty);
	// same input, same digest
	CHECK(digest([](RecordHasher& h) { h.array({"ab"s, "c"s}); }) == arr1);
}

TEST_CASE("CSV quoting follows RFC 4180", "[audit]")
{
	CHECK(csv_field(std::string_view("plain")) == "plain");
	CHECK(csv_field(std::nullopt) == "");
	CHECK(csv_field(std::string_view("")) == "\"\"");
	CHECK(csv_field(std::string_view("a,b")) == "\"a,b\"");
	CHECK(csv_field(std::string_view("say \"hi\"")) == "\"say \"\"hi\"\"\"");
	CHECK(csv_field(std::string_view("line1\nline2")) == "\"line1\nline2\"");
	CHECK(csv_field(std::string_view("cr\rlf")) == "\"cr\rlf\"");
	CHECK(csv_field(std::string_view(" spaced ")) == " spaced ");
	CHECK(csv_line({"a"s, std::nullopt, ""s, "x,y"s, "\""s}) == "a,,\"\",\"x,y\",\"\"\"\"");
	CHECK(csv_line({}) == "");
	CHECK(csv_line({std::nullopt}) == "");
}

TEST_CASE("hash_fields hashes the same input as RecordHasher", "[audit]")
{
	RecordHasher h;
	h.bytes("42");
	h.null();
	h.array({"a"s, std::nullopt});
	Hash want = h.finish();

	FieldView elems[2];
	elems[0].kind = FieldView::k_bytes;
	elems[0].data = "a";
	elems[0].len = 1;
	FieldView f[3];
	f[0].kind = FieldView::k_bytes;
	f[0].data = "42";
	f[0].len = 2;
	f[2].kind = FieldView::k_array;
	f[2].elems = elems;
	f[2].nelems = 2;
	Hash got{};
	REQUIRE(hash_fields(f, 3, &got));
	CHECK(got == want);
	f[0].data = "43";
	REQUIRE(hash_fields(f, 3, &got));
	CHECK(got != want);
}

TEST_CASE("hash_fields streams large and empty fields with RecordHasher's framing", "[audit]")
{
	const std::string big(3 * 1024 * 1024 + 7, 'x');
	RecordHasher h;
	h.bytes(big);
	h.bytes("");
	h.array({});
	h.null();
	Hash want = h.finish();

	FieldView f[4];
	f[0].kind = FieldView::k_bytes;
	f[0].data = big.data();
	f[0].len = big.size();
	f[1].kind = FieldView::k_bytes;
	f[1].data = "";
	f[1].len = 0;
	f[2].kind = FieldView::k_array;
	f[2].nelems = 0;
	Hash got{};
	REQUIRE(hash_fields(f, 4, &got));
	CHECK(got == want);
}

TEST_CASE("a digest begun over the first fields and finished with the rest equals the digest of all", "[audit]")
{
	const std::string big(20000, 'y');
	FieldView elems[2];
	elems[0].kind = FieldView::k_bytes;
	elems[0].data = big.data();
	elems[0].len = big.size();
	FieldView f[5];
	f[0].kind = FieldView::k_bytes;
	f[0].data = "7";
	f[0].len = 1;
	f[1].kind = FieldView::k_array;
	f[1].elems = elems;
	f[1].nelems = 2;
	f[3].kind = FieldView::k_bytes;
	f[3].data = "seal";
	f[3].len = 4;
	f[4].kind = FieldView::k_bytes;
	f[4].data = big.data();
	f[4].len = 33;
	Hash all{};
	REQUIRE(hash_fields(f, 5, &all));
	// every split point, the state finished twice (it is not consumed)
	for (std::size_t k = 0; k <= 5; ++k) {
		HashState* st = hash_fields_begin(f, k);
		REQUIRE(st != nullptr);
		Hash got{};
		REQUIRE(hash_fields_finish(st, f + k, 5 - k, &got));
		CHECK(got == all);
		Hash again{};
		REQUIRE(hash_fields_finish(st, f + k, 5 - k, &again));
		CHECK(again == all);
		// other trailing fields give another digest
		FieldView other[5];
		for (int i = 0; i < 5; ++i)
			other[i] = f[i];
		other[4].len = 32;
		Hash differ{};
		if (k < 5) {
			REQUIRE(hash_fields_finish(st, other + k, 5 - k, &differ));
			CHECK(differ != all);
		}
		hash_state_free(st);
	}
	// a plain hash_fields() between begin and finish leaves the state alone
	HashState* st = hash_fields_begin(f, 3);
	REQUIRE(st != nullptr);
	Hash between{};
	REQUIRE(hash_fields(f, 2, &between));
	Hash got{};
	REQUIRE(hash_fields_finish(st, f + 3, 2, &got));
	CHECK(got == all);
	hash_state_free(st);
	hash_state_free(nullptr);
	CHECK_FALSE(hash_fields_finish(nullptr, f, 1, &got));
}
