/*
 * core/audit.hpp
 *
 * Pure pieces of the audit log (docs/audit.md):
 *
 *  - hash_fields: the canonical hashing input of one audit record and its
 *    SHA-256 (OpenSSL EVP). Every field is framed as one tag byte (0 = NULL,
 *    1 = value) followed, for values, by a 4-byte big-endian length and the
 *    bytes, so no two different field sequences give the same input. Arrays
 *    are framed the same way inside their own frame. The glue feeds the
 *    fields in the column order of tenant_guard.audit_log (hash excluded),
 *    using forms that do not depend on session settings (timestamps as
 *    microseconds, `detail` as its canonical jsonb text, the row images in
 *    `rows` as their jsonb binary form). The framing is streamed into the
 *    digest without copying the record; test/unit/record_hasher.hpp builds
 *    the same input byte by byte, and the unit tests compare the two.
 *  - csv_field / csv_line: RFC 4180 quoting. A field is quoted when it holds
 *    a comma, a double quote, CR or LF, or is empty (so an empty string and a
 *    NULL differ); quotes are doubled; NULL is an empty unquoted field.
 */
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/no_postgres.hpp"

namespace tenant_guard::audit {

using Hash = std::array<std::uint8_t, 32>;

std::string csv_field(const std::optional<std::string_view>& v);
std::string csv_line(const std::vector<std::optional<std::string>>& fields);

}  // namespace tenant_guard::audit

namespace tenant_guard::audit {

// A field for hash_fields(): NULL, bytes, or an array of NULL/bytes fields.
struct FieldView {
	enum Kind : unsigned char { k_null, k_bytes, k_array };
	Kind kind = k_null;
	const char* data = nullptr;
	std::size_t len = 0;
	const FieldView* elems = nullptr;
	std::size_t nelems = 0;
};

// SHA-256 of the canonical input of `n` fields (the framing above).
// Never throws: false on any failure.
bool hash_fields(const FieldView* fields, std::size_t n, Hash* out) noexcept;

// The same digest in two steps: begun over the first fields, finished later
// with the rest (an audit record's seal fields are known only when its
// transaction commits). hash_fields_finish(hash_fields_begin(a), b) equals
// hash_fields(a followed by b); a state may be finished any number of times.
// The state owns OpenSSL memory: hash_state_free() releases it. Never throw:
// nullptr or false on any failure.
struct HashState;
HashState* hash_fields_begin(const FieldView* fields, std::size_t n) noexcept;
bool hash_fields_finish(const HashState* state, const FieldView* fields, std::size_t n, Hash* out) noexcept;
void hash_state_free(HashState* state) noexcept;

}  // namespace tenant_guard::audit
