// libFuzzer target for the key parsers: the contents of the JWT secret file
// and public-key file (jwt::Key::hmac_secret, jwt::Key::public_key for each
// algorithm, a PEM document parsed by OpenSSL) and the key-file mode rule
// (keyfile::check_mode). The master key parser is covered by fuzz_envelope.
//
// Checks, for every input: every refusal is a tenant_guard::Error, nothing
// else is thrown; a secret shorter than the minimum is refused; a key accepted
// for an algorithm reports that algorithm; check_mode accepts only the modes
// PostgreSQL accepts for ssl_key_file.
// Run with test/fuzz/fuzz.sh keyfile.
//
// Speed: almost all the time goes to OpenSSL 3.0's PEM_read_bio_PUBKEY, which
// builds a decoder context for every call (about 2,400 allocations, even for
// an input without any PEM block); our own code is a few comparisons. Two
// things keep that from costing more than it must: the OpenSSL error queue is
// emptied after every input (a refusal leaves entries there, so the unit ends
// with more allocations than frees and libFuzzer would run a full leak scan
// after nearly every input; a real leak still unbalances the count and is
// still scanned for), and fuzz.sh runs with a small ASan quarantine.
#include <cstdint>
#include <cstring>

#include <openssl/err.h>

#include "core/error.hpp"
#include "core/jwt.hpp"
#include "core/keyfile.hpp"
#include "fuzz_common.hpp"

using namespace tenant_guard;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
	if (size == 0)
		return 0;
	// The first byte chooses the parser; the rest is the file's contents.
	const std::uint8_t mode = data[0] % 6;
	const std::uint8_t* in = data + 1;
	const std::size_t n = size - 1;
	if (mode == 0) {
		try {
			jwt::Key k = jwt::Key::hmac_secret(in, n);
			fuzz::require(k.alg() == jwt::Alg::HS256);
			fuzz::require(n >= jwt::k_min_hmac_secret);
		} catch (const Error&) {
		}
	} else if (mode <= 4) {
		const jwt::Alg alg = mode == 1   ? jwt::Alg::RS256
		                     : mode == 2 ? jwt::Alg::ES256
		                     : mode == 3 ? jwt::Alg::EdDSA
		                                 : jwt::Alg::HS256;
		try {
			jwt::Key k = jwt::Key::public_key(in, n, alg);
			fuzz::require(k.alg() == alg);
			fuzz::require(alg != jwt::Alg::HS256);  // HS256 has no public key
		} catch (const Error&) {
		}
	} else if (n >= 12) {
		uid_t owner, server;
		mode_t fmode;
		std::memcpy(&owner, in, 4);
		std::memcpy(&server, in + 4, 4);
		std::memcpy(&fmode, in + 8, 4);
		owner %= 3;  // 0 = root, 1 = the server, 2 = someone else
		server = 1;
		if (!keyfile::check_mode(owner, fmode, server).has_value()) {
			fuzz::require(owner == 0 || owner == server);
			fuzz::require((fmode & (owner == 0 ? 037 : 077)) == 0);
		}
	}
	ERR_clear_error();
	return 0;
}
