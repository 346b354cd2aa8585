/*
 * pg/selftest_fmgr.cpp
 *
 * Internal functions that prove the C++/PostgreSQL boundary works
 * (sql/boundary.sql). Not granted to PUBLIC.
 *
 *   tenant_guard._selftest_boundary(kind text) returns text
 *   tenant_guard._selftest_live_objects() returns integer
 *
 * Every C++ object created here registers itself in a counter; after any
 * error the count must be back to zero, which shows that destructors ran for
 * C++ exceptions and for PostgreSQL errors raised inside C++ code alike.
 */
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "pg/boundary.hpp"
#include "pg/compat.hpp"

extern "C" {
#include "postgres.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
}

namespace {

int live_objects = 0;

struct Tracked {
	std::string payload;
	explicit Tracked(const char* s) : payload(s) { ++live_objects; }
	~Tracked() { --live_objects; }
};

}  // namespace

using tenant_guard::pg::pg_call;

// tenant_guard._selftest_boundary(kind text) returns text
TG_FUNCTION(tg__selftest_boundary)
{
	text* arg = PG_GETARG_TEXT_PP(0);
	std::string kind(VARDATA_ANY(arg), VARSIZE_ANY_EXHDR(arg));
	Tracked outer("outer");
	std::vector<Tracked> more;
	more.emplace_back("inner");

	if (kind == "ok")
		return pg_call([] { return PointerGetDatum(cstring_to_text("ok")); });
	if (kind == "cpp")
		throw tenant_guard::Error(tenant_guard::sqlstate::k_invalid_parameter_value, "selftest: a C++ error",
		                          "This error was thrown as a C++ exception.", "Nothing to fix; this is a test.");
	if (kind == "std")
		throw std::runtime_error("selftest runtime_error");
	if (kind == "bad_alloc")
		throw std::bad_alloc();
	if (kind == "pg")
		// int4in raises 22P02; the error must reach the client unchanged.
		return pg_call([] { return DirectFunctionCall1(int4in, CStringGetDatum("not a number")); });
	if (kind == "pg_nested") {
		Tracked deeper("deeper");
		pg_call([] {
			ereport(ERROR, (errcode(ERRCODE_CHECK_VIOLATION), errmsg("selftest: a PostgreSQL error"),
			                errdetail("Raised by ereport inside C++ code."), errhint("Nothing to fix.")));
		});
	}
	throw tenant_guard::Error(tenant_guard::sqlstate::k_invalid_parameter_value, "unknown selftest kind",
	                          "Known kinds are ok, cpp, std, bad_alloc, pg and pg_nested.");
}

// tenant_guard._selftest_live_objects() returns integer
TG_FUNCTION(tg__selftest_live_objects)
{
	PG_RETURN_INT32(live_objects);
}
