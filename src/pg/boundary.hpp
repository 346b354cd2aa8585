/*
 * pg/boundary.hpp
 *
 * The one C++/PostgreSQL error boundary. Read this before writing glue.
 *
 * Two directions:
 *
 *  1. C++ errors going out to PostgreSQL. Every SQL-callable function is
 *     written as
 *
 *         TG_FUNCTION(tg_name) { ... C++ body ... }
 *
 *     which defines the extern "C" symbol tg_name and runs the body inside
 *     guard(). guard() catches every C++ exception (tenant_guard::Error keeps
 *     its SQLSTATE, detail and hint; std::bad_alloc becomes 53200; anything
 *     else XX000), copies the text into plain stack buffers, LEAVES the catch
 *     block so the exception object and every destructor are gone, and only
 *     then calls ereport(ERROR). No C++ exception ever leaves an extern "C"
 *     function.
 *
 *  2. PostgreSQL errors raised while C++ objects are alive. Inside a body,
 *     never call a PostgreSQL function that can ereport (palloc, catalog
 *     look-ups, SPI, text_to_cstring, set_config_option, ...) directly once
 *     a C++ object with a destructor exists in any frame between here and
 *     guard(). Wrap the call: pg_call([&] { return palloc(n); }). pg_call runs
 *     it under PG_TRY; on error it copies the ErrorData, flushes the error
 *     state, restores PG_exception_stack, error_context_stack and the memory
 *     context, and throws PgError. C++ unwinding then runs the destructors,
 *     and guard() re-raises the original error with ReThrowError, so the
 *     client sees PostgreSQL's own SQLSTATE, message, detail and hint.
 *     The lambda given to pg_call must not itself own objects with
 *     destructors: a longjmp out of it would skip them.
 *
 *  A body may call PostgreSQL directly only before it creates its first C++
 *  object (typically to fetch and detoast its arguments).
 *
 *  The few entry points that create no C++ object at all and only call
 *  PostgreSQL are written TG_C_FUNCTION(tg_name) { ... plain C body ... }.
 */
#pragma once

#include <new>
#include <type_traits>

extern "C" {
#include "postgres.h"
#include "fmgr.h"
}

namespace tenant_guard::pg {

// A PostgreSQL error caught by pg_call, carried through C++ frames.
struct PgError {
	ErrorData* edata;
};

using Body = Datum (*)(FunctionCallInfo);

// Runs body(fcinfo); turns any C++ exception into ereport(ERROR) after
// unwinding. `fname` names the SQL function in internal-error messages.
Datum guard(const char* fname, Body body, FunctionCallInfo fcinfo);

// Runs fn(arg) under PG_TRY; throws PgError if PostgreSQL raised an error.
void run_pg(void (*fn)(void*), void* arg);

// Calls a PostgreSQL function from C++ code; see the file comment.
template <typename Fn>
auto pg_call(Fn&& fn) -> decltype(fn())
{
	using R = decltype(fn());
	if constexpr (std::is_void_v<R>) {
		run_pg([](void* p) { (*static_cast<std::remove_reference_t<Fn>*>(p))(); }, &fn);
	} else {
		static_assert(std::is_trivially_copyable_v<R>, "pg_call returns plain values only");
		struct Thunk {
			std::remove_reference_t<Fn>* fn;
			R out;
		} t{&fn, R{}};
		run_pg(
		    [](void* p) {
			    auto* th = static_cast<Thunk*>(p);
			    th->out = (*th->fn)();
		    },
		    &t);
		return t.out;
	}
}

}  // namespace tenant_guard::pg

// Defines the SQL-callable C symbol `symbol` (always tg_<SQL name>, spelled
// out so that a grep for the symbol of a SQL declaration finds its body) and
// opens the C++ body, which runs inside guard(). guard() names the SQL
// function in its messages: the symbol without "tg_".
#define TG_FUNCTION(symbol)                                                                           \
	static_assert(sizeof(#symbol) > 4 && #symbol[0] == 't' && #symbol[1] == 'g' && #symbol[2] == '_', \
	              "TG_FUNCTION takes the whole C symbol, tg_<name>");                                 \
	static Datum symbol##_impl(FunctionCallInfo fcinfo);                                              \
	extern "C" {                                                                                      \
	PG_FUNCTION_INFO_V1(symbol);                                                                      \
	Datum symbol(PG_FUNCTION_ARGS)                                                                    \
	{                                                                                                 \
		return ::tenant_guard::pg::guard(#symbol + 3, symbol##_impl, fcinfo);                         \
	}                                                                                                 \
	}                                                                                                 \
	static Datum symbol##_impl(FunctionCallInfo fcinfo)

// Defines a plain-C SQL-callable function `symbol` (tg_<SQL name>) without
// guard(): for the few entry points that only call PostgreSQL and create no
// C++ object, so PostgreSQL errors may leave them by longjmp as in C.
#define TG_C_FUNCTION(symbol)    \
	extern "C" {                 \
	PG_FUNCTION_INFO_V1(symbol); \
	}                            \
	extern "C" Datum symbol(PG_FUNCTION_ARGS)
