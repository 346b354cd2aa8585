/*
 * test/unit/record_hasher.hpp
 *
 * RecordHasher: the canonical hashing input of an audit record built byte by
 * byte (core/audit.hpp describes the framing), and its SHA-256. The
 * extension hashes with core::audit::hash_fields, which streams the same
 * framing into the digest; the unit tests check the framing here and that
 * both give the same hash.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/audit.hpp"

namespace tenant_guard::audit {

class RecordHasher {
public:
	RecordHasher();
	~RecordHasher();
	RecordHasher(const RecordHasher&) = delete;
	RecordHasher& operator=(const RecordHasher&) = delete;

	void null();
	void bytes(std::string_view v);
	void integer(std::int64_t v);  // as its decimal text
	// A text array; nullopt elements are NULL.
	void array(const std::vector<std::optional<std::string>>& v);
	// Finishes the hash; the hasher can be used again afterwards.
	Hash finish();

	// The exact bytes fed so far (for tests).
	const std::string& input() const noexcept { return input_; }

private:
	void frame(std::string& out, std::string_view v);
	std::string input_;
};

}  // namespace tenant_guard::audit
