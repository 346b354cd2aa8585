// Unit tests for core/aead (known-answer tests through our own wrappers),
// core/envelope (codec, every malformed input, DEK wrapping, blind-index
// keys) and core/masterkey (accepted and refused key encodings).
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "core/aead.hpp"
#include "core/encoding.hpp"
#include "core/envelope.hpp"
#include "core/error.hpp"
#include "core/masterkey.hpp"

using namespace tenant_guard;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes hex(const std::string& s)
{
	auto b = encoding::hex_decode(s);
	REQUIRE(b);
	return *b;
}

Bytes str(const std::string& s)
{
	return Bytes(s.begin(), s.end());
}

std::string to_hex(const std::uint8_t* p, std::size_t n)
{
	return encoding::hex_encode(p, n);
}

template <typename C>
std::string to_hex(const C& c)
{
	return encoding::hex_encode(c.data(), c.size());
}

// Runs one GCM vector through Gcm::seal and Gcm::open.
void gcm_vector(const std::string& k, const std::string& iv, const std::string& p, const std::string& a,
                const std::string& c, const std::string& t)
{
	const Bytes key = hex(k), nonce = hex(iv), pt = hex(p), ad = hex(a), ct = hex(c), tag = hex(t);
	aead::Gcm gcm(key.data());
	Bytes out(pt.size());
	std::uint8_t got_tag[aead::k_tag_len];
	gcm.seal(nonce.data(), ad.data(), ad.size(), pt.data(), pt.size(), out.data(), got_tag);
	CHECK(to_hex(out) == c);
	CHECK(to_hex(got_tag, sizeof got_tag) == t);
	Bytes back(ct.size());
	CHECK(gcm.open(nonce.data(), ad.data(), ad.size(), ct.data(), ct.size(), tag.data(), back.data()));
	CHECK(back == pt);
	// one flipped tag bit: refused and the output is zeroed
	Bytes bad_tag = tag;
	bad_tag[0] ^= 1;
	Bytes zeroed(ct.size(), 0xff);
	CHECK_FALSE(gcm.open(nonce.data(), ad.data(), ad.size(), ct.data(), ct.size(), bad_tag.data(), zeroed.data()));
	CHECK(zeroed == Bytes(ct.size(), 0));
}

envelope::OrgId org(std::uint8_t fill)
{
	envelope::OrgId o;
	o.fill(fill);
	return o;
}

}  // namespace

TEST_CASE("AES-256-GCM known answers (McGrew-Viega test cases 13-16)", "[crypto][kat]")
{
	const std::string zero_key(64, '0');
	const std::string key15 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
	const std::string p15 = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	                        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
	const std::string c15 = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	                        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
	SECTION("13: empty plaintext")
	{
		gcm_vector(zero_key, "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b");
	}
	SECTION("14: one zero block")
	{
		gcm_vector(zero_key, "000000000000000000000000", "00000000000000000000000000000000", "",
		           "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919");
	}
	SECTION("15: four blocks")
	{
		gcm_vector(key15, "cafebabefacedbaddecaf888", p15, "", c15, "b094dac5d93471bdec1a502270e3cc6c");
	}
	SECTION("16: partial block and associated data")
	{
		gcm_vector(key15, "cafebabefacedbaddecaf888", p15.substr(0, 120), "feedfacedeadbeeffeedfacedeadbeefabaddad2",
		           c15.substr(0, 120), "76fc6ece0f4e1768cddf8853bb2d551b");
	}
}

TEST_CASE("GCM context reuse: many nonces with one key schedule", "[crypto]")
{
	const Bytes key(32, 7);
	aead::Gcm gcm(key.data());
	for (int i = 0; i < 50; ++i) {
		std::uint8_t nonce[12] = {};
		nonce[11] = static_cast<std::uint8_t>(i);
		Bytes pt(static_cast<std::size_t>(i * 7), static_cast<std::uint8_t>(i));
		Bytes ct(pt.size()), back(pt.size());
		std::uint8_t tag[16];
		gcm.seal(nonce, nullptr, 0, pt.data(), pt.size(), ct.data(), tag);
		REQUIRE(gcm.open(nonce, nullptr, 0, ct.data(), ct.size(), tag, back.data()));
		CHECK(back == pt);
		if (!pt.empty()) {
			ct[0] ^= 0x80;
			CHECK_FALSE(gcm.open(nonce, nullptr, 0, ct.data(), ct.size(), tag, back.data()));
		}
	}
}

TEST_CASE("HMAC-SHA256 known answers (RFC 4231)", "[crypto][kat]")
{
	auto h = [](const Bytes& key, const Bytes& data) {
		const aead::Digest d = aead::hmac_sha256(key.data(), key.size(), data.data(), data.size());
		return to_hex(d);
	};
	CHECK(h(Bytes(20, 0x0b), str("Hi There")) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	CHECK(h(str("Jefe"), str("what do ya want for nothing?")) ==
	      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	CHECK(h(Bytes(20, 0xaa), Bytes(50, 0xdd)) == "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	CHECK(h(hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), Bytes(50, 0xcd)) ==
	      "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
	CHECK(h(Bytes(20, 0x0c), str("Test With Truncation")).substr(0, 32) == "a3b6167473100ee06e0c796c2955552b");
	CHECK(h(Bytes(131, 0xaa), str("Test Using Larger Than Block-Size Key - Hash Key First")) ==
	      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	CHECK(h(Bytes(131, 0xaa),
	        str("This is a test using a larger than block-size key and a larger than block-size data. The key needs "
	            "to be hashed before being used by the HMAC algorithm.")) ==
	      "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST_CASE("SHA-256 and HKDF-SHA256 known answers", "[crypto][kat]")
{
	CHECK(to_hex(aead::sha256(nullptr, 0)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	const Bytes abc = str("abc");
	CHECK(to_hex(aead::sha256(abc.data(), abc.size())) ==
	      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	// RFC 5869 test case 1
	const Bytes ikm(22, 0x0b), salt = hex("000102030405060708090a0b0c"), info = hex("f0f1f2f3f4f5f6f7f8f9");
	SecureBuffer okm =
	    aead::hkdf_sha256(ikm.data(), ikm.size(), salt.data(), salt.size(), info.data(), info.size(), 42);
	CHECK(to_hex(okm.data(), okm.size()) ==
	      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST_CASE("constant-time compare", "[crypto]")
{
	const Bytes a = str("abcdef"), b = str("abcdeg");
	CHECK(aead::equal_ct(a.data(), a.data(), a.size()));
	CHECK_FALSE(aead::equal_ct(a.data(), b.data(), a.size()));
	CHECK(aead::equal_ct(nullptr, nullptr, 0));
}

TEST_CASE("envelope round trip and layout", "[crypto][envelope]")
{
	const Bytes key(32, 0x42);
	aead::Gcm gcm(key.data());
	const std::uint8_t nonce[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	const Bytes aad = str("public.t.c");
	for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 1000u}) {
		Bytes pt(n);
		for (std::size_t i = 0; i < n; ++i)
			pt[i] = static_cast<std::uint8_t>(i * 31);
		const Bytes env = envelope::seal(gcm, org(1), 7, nonce, aad.data(), aad.size(), pt.data(), pt.size());
		REQUIRE(env.size() == n + envelope::k_overhead);
		CHECK(env[0] == 0x01);
		CHECK(env[1] == 0);
		CHECK(env[4] == 7);
		CHECK(std::memcmp(env.data() + 5, nonce, 12) == 0);
		envelope::View v;
		REQUIRE(envelope::decode(env.data(), env.size(), &v) == envelope::Status::ok);
		CHECK(v.key_version == 7);
		CHECK(v.ciphertext_len == n);
		CHECK(envelope::open(gcm, org(1), aad.data(), aad.size(), env.data(), env.size()) == pt);
	}
}

TEST_CASE("envelope refuses every malformed or altered input", "[crypto][envelope]")
{
	const Bytes key(32, 0x42);
	aead::Gcm gcm(key.data());
	const std::uint8_t nonce[12] = {};
	const Bytes aad = str("a"), pt = str("secret value");
	const Bytes env = envelope::seal(gcm, org(1), 3, nonce, aad.data(), aad.size(), pt.data(), pt.size());
	envelope::View v;

	auto message = [&](const Bytes& b, const Bytes& a = str("a"), envelope::OrgId o = org(1)) {
		try {
			envelope::open(gcm, o, a.data(), a.size(), b.data(), b.size());
		} catch (const Error& e) {
			return std::string(e.what());
		}
		return std::string("decrypted");
	};

	SECTION("empty, foreign format, truncated, bad version")
	{
		CHECK(envelope::decode(nullptr, 0, &v) == envelope::Status::empty);
		CHECK(message(Bytes{}) == "ciphertext is truncated");
		for (int f : {0x00, 0x02, 0x7f, 0xff, 0x5c}) {
			Bytes b = env;
			b[0] = static_cast<std::uint8_t>(f);
			CHECK(envelope::decode(b.data(), b.size(), &v) == envelope::Status::foreign_format);
			CHECK(message(b) == "unsupported ciphertext format");
		}
		for (std::size_t n = 1; n < envelope::k_overhead; ++n) {
			CHECK(envelope::decode(env.data(), n, &v) == envelope::Status::truncated);
			CHECK(message(Bytes(env.begin(), env.begin() + static_cast<long>(n))) == "ciphertext is truncated");
		}
		Bytes zero_version = env;
		std::memset(zero_version.data() + 1, 0, 4);
		CHECK(envelope::decode(zero_version.data(), zero_version.size(), &v) == envelope::Status::bad_version);
		Bytes high_version = env;
		high_version[1] = 0x80;
		CHECK(envelope::decode(high_version.data(), high_version.size(), &v) == envelope::Status::bad_version);
		CHECK(message(high_version) == "invalid key version in ciphertext");
	}
	SECTION("every single-bit flip in every field fails authentication or decoding")
	{
		for (std::size_t i = 1; i < env.size(); ++i) {
			for (int bit = 0; bit < 8; ++bit) {
				Bytes b = env;
				b[i] ^= static_cast<std::uint8_t>(1 << bit);
				const std::string m = message(b);
				CHECK((m == "ciphertext authentication failed" || m == "invalid key version in ciphertext"));
			}
		}
	}
	SECTION("cut at any length or extended by a byte")
	{
		for (std::size_t n = envelope::k_overhead; n < env.size(); ++n)
			CHECK(message(Bytes(env.begin(), env.begin() + static_cast<long>(n))) ==
			      "ciphertext authentication failed");
		Bytes longer = env;
		longer.push_back(0);
		CHECK(message(longer) == "ciphertext authentication failed");
	}
	SECTION("another tenant, another aad, an aad that only differs in its split")
	{
		CHECK(message(env, str("a")) == "decrypted");
		CHECK(message(env, str("a"), org(2)) == "ciphertext authentication failed");
		CHECK(message(env, str("b")) == "ciphertext authentication failed");
		CHECK(message(env, str("")) == "ciphertext authentication failed");
	}
}

TEST_CASE("associated data binds tenant, version and aad without ambiguity", "[crypto][envelope]")
{
	std::vector<std::uint8_t> a, b;
	const Bytes x = str("xy");
	envelope::associated_data(a, org(1), 1, x.data(), 2);
	envelope::associated_data(b, org(1), 2, x.data(), 2);
	CHECK(a != b);
	envelope::associated_data(b, org(2), 1, x.data(), 2);
	CHECK(a != b);
	envelope::associated_data(b, org(1), 1, x.data(), 1);
	CHECK(a != b);
	CHECK(a.size() == 5 + 1 + 4 + 16 + 4 + 2);
}

TEST_CASE("DEK wrap and unwrap", "[crypto][keywrap]")
{
	const Bytes kek(32, 0x11), other_kek(32, 0x12), dek(32, 0x99);
	const Bytes w = envelope::wrap_dek(kek.data(), org(1), 1, dek.data());
	REQUIRE(w.size() == envelope::k_wrapped_len);
	SecureBuffer back = envelope::unwrap_dek(kek.data(), org(1), 1, w.data(), w.size());
	CHECK(Bytes(back.data(), back.data() + back.size()) == dek);
	// fresh nonce each time
	CHECK(envelope::wrap_dek(kek.data(), org(1), 1, dek.data()) != w);
	CHECK_THROWS_WITH(envelope::unwrap_dek(other_kek.data(), org(1), 1, w.data(), w.size()),
	                  "could not unwrap a tenant key");
	CHECK_THROWS_WITH(envelope::unwrap_dek(kek.data(), org(2), 1, w.data(), w.size()), "could not unwrap a tenant key");
	CHECK_THROWS_WITH(envelope::unwrap_dek(kek.data(), org(1), 2, w.data(), w.size()), "could not unwrap a tenant key");
	CHECK_THROWS_WITH(envelope::unwrap_dek(kek.data(), org(1), 1, w.data(), w.size() - 1),
	                  "wrapped tenant key has an invalid length");
	for (std::size_t i = 0; i < w.size(); ++i) {
		Bytes bad = w;
		bad[i] ^= 0x01;
		CHECK_THROWS_WITH(envelope::unwrap_dek(kek.data(), org(1), 1, bad.data(), bad.size()),
		                  "could not unwrap a tenant key");
	}
	// kek ids: stable per key, different across keys, not the key's SHA-256
	CHECK(envelope::kek_id(kek.data()) == envelope::kek_id(kek.data()));
	CHECK(envelope::kek_id(kek.data()) != envelope::kek_id(other_kek.data()));
	const aead::Digest plain = aead::sha256(kek.data(), kek.size());
	CHECK(std::memcmp(plain.data(), envelope::kek_id(kek.data()).data(), envelope::k_kek_id_len) != 0);
}

TEST_CASE("blind index keys are per tenant and contexts cannot be confused", "[crypto][blind]")
{
	const Bytes dek(32, 0x33);
	SecureBuffer k1 = envelope::blind_index_key(dek.data(), org(1));
	SecureBuffer k1b = envelope::blind_index_key(dek.data(), org(1));
	SecureBuffer k2 = envelope::blind_index_key(dek.data(), org(2));
	const Bytes ab = str("ab"), c = str("c"), a = str("a"), bc = str("bc");
	CHECK(envelope::blind_index(k1, ab.data(), 2, c.data(), 1) ==
	      envelope::blind_index(k1b, ab.data(), 2, c.data(), 1));
	CHECK(envelope::blind_index(k1, ab.data(), 2, c.data(), 1) != envelope::blind_index(k2, ab.data(), 2, c.data(), 1));
	CHECK(envelope::blind_index(k1, ab.data(), 2, c.data(), 1) != envelope::blind_index(k1, a.data(), 1, bc.data(), 2));
}

TEST_CASE("master key encodings", "[crypto][masterkey]")
{
	const std::string h = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	const Bytes expect = hex(h);
	auto parse = [](const std::string& s) {
		SecureBuffer k = masterkey::parse(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), "master key file");
		return Bytes(k.data(), k.data() + k.size());
	};
	CHECK(parse(h) == expect);
	CHECK(parse(h + "\n") == expect);
	CHECK(parse(h + "\r\n") == expect);
	std::string upper = h;
	for (auto& ch : upper)
		ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
	CHECK(parse(upper) == expect);
	const std::string raw(expect.begin(), expect.end());
	CHECK(parse(raw) == expect);
	for (const std::string& bad :
	     {std::string(), h.substr(0, 62), h.substr(0, 63) + "\n", h + "00", h + "\n\n", h.substr(0, 63) + "g", " " + h,
	      h + " ", std::string(31, 'a'), std::string(33, 'a'), h + "\r", std::string(64, 'z')}) {
		CAPTURE(bad.size());
		CHECK_THROWS_WITH(parse(bad), "master key file does not hold a 256-bit key");
	}
	// the error never quotes the key
	try {
		parse(h.substr(0, 63) + "X");
	} catch (const Error& e) {
		CHECK(std::string(e.what()).find("0001") == std::string::npos);
		CHECK(e.detail().find("0001") == std::string::npos);
	}
}
