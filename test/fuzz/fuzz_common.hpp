// Shared by the libFuzzer targets in test/fuzz/.
#pragma once

#include <cstdlib>
#include <string>

#include <sodium.h>

#include "core/claims.hpp"

namespace tenant_guard::fuzz {

// libsodium must be initialised before SecureBuffer allocates (the extension
// does it in _PG_init).
inline const int sodium_ready = [] {
	if (sodium_init() < 0)
		std::abort();
	return 1;
}();

inline void require(bool ok)
{
	if (!ok)
		std::abort();
}

// The hardening rules of core/claims.hpp, on any context produced from input.
inline void check_context(const claims::Context& c)
{
	// role and scopes exist only inside a valid organization
	if (c.role || !c.scopes.empty())
		require(c.org.has_value() || c.org_key.has_value());
	if (c.org) {
		bool nonzero = false;
		for (auto b : *c.org)
			nonzero = nonzero || b != 0;
		require(nonzero);  // the nil uuid is absent
	}
	for (const std::string* s : {c.user_id ? &*c.user_id : nullptr, c.role ? &*c.role : nullptr,
	                             c.impersonator ? &*c.impersonator : nullptr, c.org_key ? &*c.org_key : nullptr}) {
		if (s == nullptr)
			continue;
		require(!s->empty());
		require(s->find('\0') == std::string::npos);
	}
	if (c.org_bigint)
		require(c.org_key && *c.org_key == std::to_string(*c.org_bigint));
	if (c.org_key)
		require(c.org_key->size() <= claims::k_max_org_key);
}

}  // namespace tenant_guard::fuzz
