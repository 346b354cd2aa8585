/*
 * core/claims.hpp
 *
 * The tenant context as tenant_guard understands it, and the NULL-hardening
 * rules that turn an untrusted claims document or plain settings into one.
 *
 * Hardening rules (docs/security-model.md repeats them for users):
 *  - the organization id is valid only as a JSON string holding a canonical
 *    uuid (8-4-4-4-12 hex digits, either case, nothing around it); the nil uuid
 *    counts as absent; anything else (missing, null, number, object, array,
 *    empty, blank, "null", malformed) is absent, never an error;
 *  - user id and role are JSON strings, trimmed; empty, blank and "null"
 *    (any case) are absent, and so is a value holding a NUL byte;
 *  - for text and bigint tenant columns the same claim is read as a key: a
 *    JSON string taken exactly (no surrounding blanks, not empty, not "null")
 *    or a JSON integer as decimal text, at most k_max_org_key bytes (a
 *    longer one is absent); as bigint only when that key is a canonical
 *    decimal integer that fits in 64 bits;
 *  - role and scopes exist only inside a valid organization (a valid key):
 *    without one they are absent, so a policy can never grant by role or
 *    scope alone;
 *  - scopes is an object whose members are arrays; string elements are kept
 *    as they are, integer elements as their decimal text, all others dropped.
 */
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/no_postgres.hpp"

namespace tenant_guard::claims {

using Uuid = std::array<std::uint8_t, 16>;

// Longest organization id accepted as a text key, in bytes.
inline constexpr std::size_t k_max_org_key = 255;

// Canonical uuid text to bytes; nullopt for anything else and for the nil uuid.
std::optional<Uuid> parse_uuid(std::string_view text);
std::string format_uuid(const Uuid& u);

// Trimmed text; nullopt when empty, blank, or "null" in any case.
std::optional<std::string> normalize_text(std::string_view text);

// A dotted claim path such as "app_metadata.org_id": non-empty segments,
// at most 255 bytes. On failure, *why receives a full sentence.
bool valid_path(std::string_view path, std::string* why);

struct ClaimPaths {
	std::string org = "org_id";
	std::string user = "sub";
	std::string role = "org_role";
	std::string scopes = "scopes";
	// The impersonating actor (RFC 8693 "act" claim): see docs/audit.md.
	std::string impersonator = "act.sub";
};

// Canonical decimal int64 ("0", "42", "-7"; no sign "+", no leading zeros).
std::optional<std::int64_t> parse_bigint(std::string_view text);

struct Context {
	std::optional<Uuid> org;
	std::optional<std::string> org_key;      // the org id for text tenant columns
	std::optional<std::int64_t> org_bigint;  // the org id for bigint tenant columns
	std::optional<std::string> user_id;
	std::optional<std::string> role;
	// The support agent acting as user_id, if any; same rules as user_id.
	std::optional<std::string> impersonator;
	std::map<std::string, std::vector<std::string>> scopes;
	// Registered JWT claims, kept for signed contexts (seconds since the epoch).
	std::optional<std::int64_t> exp;
	std::optional<std::int64_t> nbf;

	const std::vector<std::string>* scope(std::string_view kind) const;
};

// Context from a parsed JSON value (anything that is not an object gives an
// empty context).
Context from_json(const nlohmann::json& doc, const ClaimPaths& paths);

// Context from a claims document as text. Malformed JSON gives an empty context.
Context from_claims_text(std::string_view text, const ClaimPaths& paths);

// Context from the plain settings of the `setting` source. Any argument may be
// null. scopes_json is a JSON object of arrays, as in claims.
Context from_settings(const char* org, const char* user, const char* role, const char* scopes_json,
                      const char* impersonator = nullptr);

// Remembers the context parsed from the last distinct claims text, so a
// backend parses each claims value once, not once per call.
class ParseCache {
public:
	// The context for `text` under `paths`; `generation` changes whenever the
	// claim path settings change.
	const Context& get(std::string_view text, std::uint64_t generation, const ClaimPaths& paths);
	std::uint64_t parses() const noexcept { return parses_; }

private:
	bool valid_ = false;
	std::string text_;
	std::uint64_t generation_ = 0;
	Context context_;
	std::uint64_t parses_ = 0;
};

}  // namespace tenant_guard::claims
