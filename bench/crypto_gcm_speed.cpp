// bench/crypto_gcm_speed.cpp: tenant_guard's own AES-256-GCM path
// (core/aead Gcm with its reused, ready-keyed EVP contexts and the format-1
// associated data of core/envelope) on 1 MiB values, without PostgreSQL
// around it, in MB/s (10^6 bytes/s) per direction. Built and run by
// bench/crypto_bench.sh next to `openssl speed -evp aes-256-gcm`.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <sodium.h>

#include "core/aead.hpp"
#include "core/envelope.hpp"

using namespace tenant_guard;

int main(int argc, char** argv)
{
	if (sodium_init() < 0)
		return 1;
	const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
	const std::size_t len = 1 << 20;
	std::vector<std::uint8_t> key(32, 7), in(len, 1), out(len), back(len), ad;
	std::uint8_t nonce[12] = {}, tag[16];
	envelope::OrgId org;
	org.fill(3);
	const char aad[] = "bench.big.b";
	aead::Gcm gcm(key.data());
	using clock = std::chrono::steady_clock;
	std::size_t n = 0;
	const auto t0 = clock::now();
	double elapsed = 0;
	while (elapsed < seconds) {
		randombytes_buf(nonce, sizeof nonce);
		envelope::associated_data(ad, org, 1, reinterpret_cast<const std::uint8_t*>(aad), sizeof aad - 1);
		gcm.seal(nonce, ad.data(), ad.size(), in.data(), len, out.data(), tag);
		if (!gcm.open(nonce, ad.data(), ad.size(), out.data(), len, tag, back.data()))
			return 2;
		++n;
		elapsed = std::chrono::duration<double>(clock::now() - t0).count();
	}
	std::printf("%.0f\n", 2.0 * n * len / 1e6 / elapsed);
	return back == in ? 0 : 3;
}
