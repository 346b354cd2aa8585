/*
 * core/token_text.hpp
 *
 * Finding a token in the text of a statement, and removing it. Every tenant
 * shares the application's database role, and a session sees the statement
 * text of the role's other sessions (pg_stat_activity): set_context() uses
 * these to refuse a token written into the statement and to remove it from
 * the text shown (src/pg/context_fmgr.cpp).
 *
 * Searched for: the whole token, and its signature (after the last dot),
 * which an application that builds the token from pieces (header || '.' ||
 * payload || '.' || signature) still writes out whole. Parts shorter than
 * k_min_length are not searched for: they are no token worth protecting and
 * would match by chance ('' is in every statement).
 *
 * Not a secret comparison: the statement and the token both come from the
 * caller, so there is no need for constant time.
 */
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/no_postgres.hpp"

namespace tenant_guard::token_text {

inline constexpr std::size_t k_min_length = 16;
inline constexpr std::string_view k_mark = "<redacted>";

// The parts of a token searched for; empty views are not searched.
struct Parts {
	std::string_view whole;
	std::string_view signature;
};

Parts parts(std::string_view token);

// Does the statement hold the whole token or its signature?
bool written_into(std::string_view statement, const Parts& p);

// The statement with every occurrence of the token, then of its signature,
// replaced by k_mark.
std::string redacted(std::string_view statement, const Parts& p);

}  // namespace tenant_guard::token_text
