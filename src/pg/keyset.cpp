/*
 * pg/keyset.cpp
 *
 * Signed mode with a JSON Web Key Set: tenant_guard.jwt_jwks_file names the
 * file (core/jwks.hpp says what it may hold), tenant_guard.jwt_service_key_ids
 * the key ids that sign service tokens, tenant_guard.jwt_service_max_lifetime
 * how long a service token may still have to live.
 *
 * The file is read the way the other key files are (core/keyfile.hpp: owner
 * and mode checked), parsed once per backend, and read again at the first
 * set_context() after it changed (a new inode, size, mtime or ctime) or after
 * the setting changed (a reload with SIGHUP or pg_reload_conf(), or SET by a
 * superuser). A file that fails to parse is never half-used: set_context()
 * fails until it is fixed.
 *
 * Settings are C-style glue, as in guc.cpp; current() and service_kids() are
 * C++ and called inside the boundary.
 */
#include "pg/keyset.hpp"

#include <unistd.h>

#include "core/error.hpp"
#include "core/keyfile.hpp"

extern "C" {
#include "postgres.h"
#include "utils/guc.h"
}

namespace tenant_guard::keyset {

char* jwks_file = nullptr;
char* service_key_ids = nullptr;
int service_max_lifetime = 900;

namespace {

struct Cache {
	bool valid = false;
	std::string path;
	keyfile::Identity identity;
	jwks::KeySet set;
};

// Allocated once per backend and never freed (no destructor at backend exit).
Cache& cache()
{
	static Cache* c = new Cache();
	return *c;
}

}  // namespace

const jwks::KeySet* current()
{
	if (jwks_file == nullptr || *jwks_file == '\0')
		return nullptr;
	static constexpr const char* what = "JWKS file";
	Cache& c = cache();
	keyfile::Identity id = keyfile::stat_file(jwks_file, what);
	if (c.valid && c.path == jwks_file && id == c.identity)
		return &c.set;
	c.valid = false;
	keyfile::Contents contents = keyfile::read(jwks_file, what, geteuid());
	c.set = jwks::KeySet::parse(
	    std::string_view(reinterpret_cast<const char*>(contents.bytes.data()), contents.bytes.size()));
	c.path = jwks_file;
	c.identity = contents.identity;
	c.valid = true;
	return &c.set;
}

std::vector<std::string> service_kids()
{
	std::vector<std::string> out;
	if (service_key_ids == nullptr)
		return out;
	std::string_view all(service_key_ids);
	while (!all.empty()) {
		std::size_t comma = all.find(',');
		std::string_view item = all.substr(0, comma);
		while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
			item.remove_prefix(1);
		while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
			item.remove_suffix(1);
		if (!item.empty())
			out.emplace_back(item);
		if (comma == std::string_view::npos)
			break;
		all.remove_prefix(comma + 1);
	}
	return out;
}

void init()
{
	/*
	 * The key set signed mode verifies tokens with, so a signing key can
	 * rotate with overlap (docs/signed-mode.md). When set, it replaces
	 * jwt_algorithm, jwt_secret_file and jwt_public_key_file: every key
	 * carries its own algorithm. Superuser-only and hidden, like the other
	 * key files.
	 */
	DefineCustomStringVariable(
	    "tenant_guard.jwt_jwks_file", "JSON Web Key Set file for set_context(); replaces the single key file when set.",
	    "Keys are chosen by the token's kid; each verifies its own algorithm (RS256, ES256, "
	    "EdDSA, HS256). The file is read again when it changes.",
	    &jwks_file, "", PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
	/*
	 * Which keys of the set sign service tokens (background jobs). Such a
	 * key signs nothing else, and no other key can sign a service token:
	 * a user whose identity provider lets them shape their own claims
	 * still cannot become a service. Superuser-only.
	 */
	DefineCustomStringVariable("tenant_guard.jwt_service_key_ids",
	                           "Key ids (kid) of the JWKS keys that sign service tokens, comma-separated.", nullptr,
	                           &service_key_ids, "", PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
	/*
	 * A service token leaked from a job's logs is a tenant's context until
	 * it expires: its exp may be at most this far ahead.
	 */
	DefineCustomIntVariable(
	    "tenant_guard.jwt_service_max_lifetime", "Longest time a service token may have left before its exp.", nullptr,
	    &service_max_lifetime, 900, 1, 86400, PGC_SUSET, GUC_UNIT_S | GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
}

}  // namespace tenant_guard::keyset
