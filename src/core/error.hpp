/*
 * core/error.hpp
 *
 * tenant_guard::Error: the one exception type the core throws for errors a
 * user can cause. It carries a five-character SQLSTATE and the three parts of a
 * PostgreSQL error report. The fmgr boundary (src/pg/boundary.hpp) turns it
 * into ereport(ERROR) after all C++ destructors have run.
 *
 * Style: message lower-case without a period; detail and hint full sentences.
 * Never put a token, key or plaintext into any field.
 */
#pragma once

#include <stdexcept>
#include <string>

namespace tenant_guard {

// The SQLSTATEs tenant_guard's C++ code raises, by their PostgreSQL names
// (errcodes.h), spelled out so the core needs no PG header.
namespace sqlstate {
inline constexpr const char* k_null_value_not_allowed = "22004";
inline constexpr const char* k_character_not_in_repertoire = "22021";
inline constexpr const char* k_invalid_parameter_value = "22023";
inline constexpr const char* k_invalid_binary_representation = "22P03";
inline constexpr const char* k_invalid_transaction_state = "25000";
inline constexpr const char* k_active_sql_transaction = "25001";
inline constexpr const char* k_invalid_authorization = "28000";
inline constexpr const char* k_insufficient_privilege = "42501";
inline constexpr const char* k_program_limit_exceeded = "54000";
inline constexpr const char* k_object_not_in_prerequisite_state = "55000";
inline constexpr const char* k_io_error = "58030";
inline constexpr const char* k_undefined_file = "58P01";
inline constexpr const char* k_config_file_error = "F0000";
inline constexpr const char* k_internal_error = "XX000";
}  // namespace sqlstate

class Error : public std::runtime_error {
public:
	Error(const char* state, std::string message, std::string detail = {}, std::string hint = {},
	      std::string detail_log = {})
	    : std::runtime_error(message), state_(state), detail_(std::move(detail)), hint_(std::move(hint)),
	      detail_log_(std::move(detail_log))
	{
	}

	const char* sqlstate() const noexcept { return state_; }
	const std::string& detail() const noexcept { return detail_; }
	const std::string& hint() const noexcept { return hint_; }
	// Detail written only to the server log (file paths and the like).
	const std::string& detail_log() const noexcept { return detail_log_; }
	// Keep the statement text (STATEMENT:) and the CONTEXT lines out of the
	// server log for this error, because they may hold a secret the caller
	// sent (a token written into the statement, a bind parameter).
	bool hides_statement() const noexcept { return hide_statement_; }
	void hide_statement() noexcept { hide_statement_ = true; }

private:
	const char* state_;
	std::string detail_;
	std::string hint_;
	std::string detail_log_;
	bool hide_statement_ = false;
};

}  // namespace tenant_guard
