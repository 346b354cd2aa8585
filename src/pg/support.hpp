/*
 * pg/support.hpp: support sessions (support_fmgr.cpp, docs/support-access.md).
 */
#pragma once

namespace tenant_guard::support {

// Defines tenant_guard.support_role and installs the ExecutorStart and
// ExecutorRun checks of live support contexts (and of the queries started in
// one). Called from _PG_init before guc::init().
void init();

// Runs the check of a live support context (expiry, end, revocation) unless it
// already ran in this statement and this transaction. For the context
// accessors, which a plain expression reaches without the executor (a
// procedure's expressions after a COMMIT). Plain C: may ereport; call it
// before any C++ object exists in the calling frame.
void check();

// True when `signed_text` is this backend's support context and it is dead or
// not yet checked in the current transaction: the context must be treated as
// absent. Never raises.
bool blocks(const char* signed_text);

}  // namespace tenant_guard::support
