/*
 * pg/boundary.cpp: guard() and run_pg(); see boundary.hpp for the rules.
 *
 * Both functions keep only plain data (char arrays, pointers) in their own
 * frames, so the longjmp that ereport/ReThrowError performs skips no
 * destructor.
 */
#include "pg/boundary.hpp"

#include <cstring>
#include <exception>
#include <new>

#include "core/error.hpp"

extern "C" {
#include "utils/memutils.h"
}

namespace tenant_guard::pg {

namespace {

// Restores PostgreSQL's error-handling globals when a frame that installed
// PG_TRY is left by any route, including a C++ exception that skipped
// PG_END_TRY (leaving PG_exception_stack pointing at a dead frame would make
// the next ereport jump into garbage).
struct PgStackRestore {
	sigjmp_buf* jmp = PG_exception_stack;
	ErrorContextCallback* ctx = error_context_stack;
	~PgStackRestore()
	{
		PG_exception_stack = jmp;
		error_context_stack = ctx;
	}
};

void copy_text(char* dst, std::size_t cap, const char* src)
{
	if (src == nullptr) {
		dst[0] = '\0';
		return;
	}
	strlcpy(dst, src, cap);
}

}  // namespace

void run_pg(void (*fn)(void*), void* arg)
{
	PgStackRestore restore;
	MemoryContext mcx = CurrentMemoryContext;
	ErrorData* volatile edata = nullptr;

	PG_TRY();
	{
		fn(arg);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(mcx);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();

	if (edata != nullptr)
		throw PgError{edata};
}

Datum guard(const char* fname, Body body, FunctionCallInfo fcinfo)
{
	sigjmp_buf* const entry_stack = PG_exception_stack;
	ErrorData* pg_error = nullptr;
	int code = ERRCODE_INTERNAL_ERROR;
	bool internal = false;
	bool hide_statement = false;
	char message[1024];
	char detail[2048];
	char hint[1024];
	char detail_log[2048];
	message[0] = detail[0] = hint[0] = detail_log[0] = '\0';

	try {
		return body(fcinfo);
	} catch (const PgError& e) {
		pg_error = e.edata;
	} catch (const Error& e) {
		const char* s = e.sqlstate();
		code = MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
		copy_text(message, sizeof message, e.what());
		copy_text(detail, sizeof detail, e.detail().c_str());
		copy_text(hint, sizeof hint, e.hint().c_str());
		copy_text(detail_log, sizeof detail_log, e.detail_log().c_str());
		hide_statement = e.hides_statement();
	} catch (const std::bad_alloc&) {
		code = ERRCODE_OUT_OF_MEMORY;
		copy_text(message, sizeof message, "out of memory");
	} catch (const std::exception& e) {
		internal = true;
		copy_text(detail, sizeof detail, e.what());
	} catch (...) {
		internal = true;
		copy_text(detail, sizeof detail, "The exception is not derived from std::exception.");
	}

	// Every C++ object is gone now. If a C++ exception skipped a PG_TRY
	// without going through run_pg, PostgreSQL's jump target is stale.
	if (PG_exception_stack != entry_stack) {
		PG_exception_stack = entry_stack;
		elog(WARNING, "tenant_guard: restored PG_exception_stack in %s", fname);
	}

	if (pg_error != nullptr)
		ReThrowError(pg_error);

	if (internal)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("unexpected C++ exception in %s", fname),
		                errdetail_internal("%s", detail)));

	ereport(ERROR, (errcode(code), errmsg_internal("%s", message), detail[0] ? errdetail_internal("%s", detail) : 0,
	                detail_log[0] ? errdetail_log("%s", detail_log) : 0, hint[0] ? errhint("%s", hint) : 0,
	                hide_statement ? errhidestmt(true) : 0, hide_statement ? errhidecontext(true) : 0));
	pg_unreachable();
}

}  // namespace tenant_guard::pg
