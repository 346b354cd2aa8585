// libsodium must be initialised before any SecureBuffer exists; static
// initialisers all run before Catch2's main starts the tests.
#include <cstdlib>
#include <sodium.h>

namespace {
const int sodium_ready = [] {
	if (sodium_init() < 0)
		std::abort();
	return 1;
}();
}  // namespace
