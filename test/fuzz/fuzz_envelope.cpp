// libFuzzer target for the envelope decoder and everything else in
// src/core that parses bytes from outside: envelope::decode /
// decode_or_throw / open, DEK unwrapping and master key parsing.
//
// Checks, for every input:
//  - decode() never reads outside the input (AddressSanitizer) and, when it
//    accepts, its fields tile the input exactly (header, ciphertext, tag);
//  - decode_or_throw() agrees with decode() and throws only tenant_guard::Error;
//  - open() of a random input never authenticates (it would need a forged
//    GCM tag) and never returns partial plaintext;
//  - a round trip seal/open of the input as plaintext gives it back, and the
//    same envelope with one byte changed (chosen by the input) is refused;
//  - unwrap_dek() and masterkey::parse() throw only tenant_guard::Error.
// Run with test/fuzz/fuzz.sh [seconds].
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <sodium.h>

#include "core/aead.hpp"
#include "core/envelope.hpp"
#include "core/error.hpp"
#include "core/masterkey.hpp"

using namespace tenant_guard;

namespace {

const int ready = [] {
	if (sodium_init() < 0)
		std::abort();
	return 1;
}();

void require(bool ok)
{
	if (!ok)
		std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	(void) ready;
	static const std::uint8_t key[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
	                                     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
	static aead::Gcm gcm(key);
	envelope::OrgId org;
	org.fill(0x5a);

	// Copy so reads past the end are caught exactly.
	std::vector<std::uint8_t> in(data, data + size);
	const std::uint8_t* p = in.empty() ? nullptr : in.data();

	envelope::View v;
	const envelope::Status st = envelope::decode(p, in.size(), &v);
	if (st == envelope::Status::ok) {
		require(v.format == envelope::k_format_v1);
		require(v.key_version >= 1 && v.key_version <= envelope::k_max_version);
		require(v.nonce == p + 5);
		require(v.ciphertext == p + envelope::k_header_len);
		require(v.ciphertext + v.ciphertext_len == v.tag);
		require(v.tag + aead::k_tag_len == p + in.size());
	}
	bool threw = false;
	try {
		(void) envelope::decode_or_throw(p, in.size());
	} catch (const Error&) {
		threw = true;
	}
	require(threw == (st != envelope::Status::ok));

	// A random input must never authenticate.
	try {
		std::vector<std::uint8_t> out = envelope::open(gcm, org, nullptr, 0, p, in.size());
		std::abort();
	} catch (const Error&) {
	}

	// Round trip of the input as plaintext, with the input as aad too.
	std::uint8_t nonce[12] = {};
	if (size >= 12)
		std::memcpy(nonce, data, 12);
	const std::uint32_t version = 1 + (size > 0 ? data[0] : 0);
	std::vector<std::uint8_t> env = envelope::seal(gcm, org, version, nonce, p, in.size(), p, in.size());
	std::vector<std::uint8_t> back = envelope::open(gcm, org, p, in.size(), env.data(), env.size());
	require(back == in);
	if (size > 0) {
		std::vector<std::uint8_t> bad = env;
		const std::size_t at = (size > 1 ? data[1] : 0) % bad.size();
		bad[at] ^= static_cast<std::uint8_t>(1 + (data[0] % 255));
		try {
			(void) envelope::open(gcm, org, p, in.size(), bad.data(), bad.size());
			std::abort();
		} catch (const Error&) {
		}
	}

	try {
		SecureBuffer dek = envelope::unwrap_dek(key, org, version, p, in.size());
		std::abort();  // a random blob never unwraps
	} catch (const Error&) {
	}
	try {
		SecureBuffer k = masterkey::parse(p, in.size(), "fuzz");
		require(k.size() == masterkey::k_len);
	} catch (const Error&) {
	}
	return 0;
}
