// Unit tests for core/forwarded_keys: the value of tenant_guard.forwarded_keys
// (round trip, every malformed form refused) and its MAC (a known answer
// computed independently with Python's hmac/hashlib per RFC 5869, and every
// changed input refused: another transaction, tenant, version, key, master key).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/encoding.hpp"
#include "core/forwarded_keys.hpp"

using namespace tenant_guard;
namespace fk = tenant_guard::forwarded_keys;

namespace {

std::array<std::uint8_t, 32> master(std::uint8_t start)
{
	std::array<std::uint8_t, 32> k;
	for (std::size_t i = 0; i < k.size(); ++i)
		k[i] = static_cast<std::uint8_t>(start + i);
	return k;
}

fk::Entry sample()
{
	fk::Entry e;
	e.org.fill(0x11);
	e.version = 7;
	e.kek_id.fill(0x22);
	e.wrapped.fill(0x33);
	return e;
}

const fk::TxnId k_txn{0, 42, 818000000123456};

bool parses(const std::string& s)
{
	std::vector<fk::Entry> out;
	return fk::parse(s.data(), s.size(), &out);
}

}  // namespace

TEST_CASE("forwarded key MAC: known answer", "[forwarded_keys]")
{
	const auto mk = master(0);
	const SecureBuffer key = fk::mac_key(mk.data());
	CHECK(encoding::hex_encode(key.data(), key.size()) ==
	      "0b28640416db0ff5e9f1763730d8beedabfd5e0c1b4e2fd87b285288fef33480");
	const aead::Digest d = fk::mac(key, k_txn, sample());
	CHECK(encoding::hex_encode(d.data(), d.size()) ==
	      "4709ff1c58c6c9e163fca170b16aaec96e5e2a9c2d2655506ef13b487e920db7");
}

TEST_CASE("forwarded key MAC: bound to the transaction, the key row and the master key", "[forwarded_keys]")
{
	const auto mk = master(0);
	const SecureBuffer key = fk::mac_key(mk.data());
	fk::Entry e = sample();
	e.mac = fk::mac(key, k_txn, e);
	CHECK(fk::verify(key, k_txn, e));

	fk::TxnId t = k_txn;
	t.initiator = 1;
	CHECK_FALSE(fk::verify(key, t, e));
	t = k_txn;
	t.number = 43;
	CHECK_FALSE(fk::verify(key, t, e));
	t = k_txn;
	t.timestamp += 1;
	CHECK_FALSE(fk::verify(key, t, e));
	CHECK_FALSE(fk::verify(key, fk::TxnId{}, e));

	fk::Entry x = e;
	x.org[15] ^= 1;  // another tenant
	CHECK_FALSE(fk::verify(key, k_txn, x));
	x = e;
	x.version = 8;
	CHECK_FALSE(fk::verify(key, k_txn, x));
	x = e;
	x.kek_id[0] ^= 1;
	CHECK_FALSE(fk::verify(key, k_txn, x));
	x = e;
	x.wrapped[59] ^= 1;
	CHECK_FALSE(fk::verify(key, k_txn, x));
	x = e;
	x.mac[31] ^= 1;
	CHECK_FALSE(fk::verify(key, k_txn, x));
	x = e;
	x.mac.fill(0);
	CHECK_FALSE(fk::verify(key, k_txn, x));

	const auto other = master(1);
	CHECK_FALSE(fk::verify(fk::mac_key(other.data()), k_txn, e));
}

TEST_CASE("forwarded keys: encode and parse round trip", "[forwarded_keys]")
{
	std::vector<fk::Entry> in;
	CHECK(fk::encode(in).empty());
	std::vector<fk::Entry> out{sample()};
	CHECK(fk::parse("", 0, &out));
	CHECK(out.empty());

	for (std::uint32_t v : {1u, 7u, 2147483647u}) {
		fk::Entry e = sample();
		e.version = v;
		e.org[0] = static_cast<std::uint8_t>(v);
		e.mac.fill(static_cast<std::uint8_t>(v + 1));
		in.push_back(e);
	}
	const std::string text = fk::encode(in);
	CHECK(text.rfind("v1:", 0) == 0);
	REQUIRE(fk::parse(text.data(), text.size(), &out));
	REQUIRE(out.size() == in.size());
	for (std::size_t i = 0; i < in.size(); ++i) {
		CHECK(out[i].org == in[i].org);
		CHECK(out[i].version == in[i].version);
		CHECK(out[i].kek_id == in[i].kek_id);
		CHECK(out[i].wrapped == in[i].wrapped);
		CHECK(out[i].mac == in[i].mac);
	}

	std::vector<fk::Entry> full(fk::k_max_entries, sample());
	const std::string max = fk::encode(full);
	CHECK(parses(max));
	full.push_back(sample());
	CHECK_FALSE(parses(fk::encode(full)));
}

TEST_CASE("forwarded keys: malformed values are refused", "[forwarded_keys]")
{
	const std::string good = fk::encode({sample()});
	REQUIRE(parses(good));
	const std::string org(32, '1'), kek(32, '2'), wrapped(120, '3'), mac(64, '4');
	auto entry = [&](const std::string& o, const std::string& v, const std::string& k, const std::string& w,
	                 const std::string& m) { return "v1:" + o + "." + v + "." + k + "." + w + "." + m; };
	CHECK(parses(entry(org, "7", kek, wrapped, mac)));
	CHECK_FALSE(parses("v1"));
	CHECK_FALSE(parses("v1:"));
	CHECK_FALSE(parses("v2" + good.substr(2)));
	CHECK_FALSE(parses(good + ":"));
	CHECK_FALSE(parses(good + "." + mac));
	CHECK_FALSE(parses(" " + good));
	CHECK_FALSE(parses(entry(org.substr(1), "7", kek, wrapped, mac)));
	CHECK_FALSE(parses(entry(org + "11", "7", kek, wrapped, mac)));
	CHECK_FALSE(parses(entry(org, "0", kek, wrapped, mac)));
	CHECK_FALSE(parses(entry(org, "07", kek, wrapped, mac)));
	CHECK_FALSE(parses(entry(org, "-7", kek, wrapped, mac)));
	CHECK_FALSE(parses(entry(org, "2147483648", kek, wrapped, mac)));
	CHECK_FALSE(parses(entry(org, "99999999999", kek, wrapped, mac)));
	CHECK_FALSE(parses(entry(org, "", kek, wrapped, mac)));
	CHECK_FALSE(parses(entry(org, "7", kek.substr(2), wrapped, mac)));
	CHECK_FALSE(parses(entry(org, "7", kek, wrapped.substr(2), mac)));
	CHECK_FALSE(parses(entry(org, "7", kek, wrapped, mac.substr(2))));
	CHECK_FALSE(parses(entry(org, "7", kek, wrapped, "zz" + mac.substr(2))));
	CHECK_FALSE(parses(entry(org, "7", kek, wrapped, mac) + ".x"));
	std::string nul = good;
	nul[10] = '\0';
	CHECK_FALSE(parses(nul));
}
