/*
 * pg/support.hpp: support sessions (support_fmgr.cpp, docs/support-access.md).
 */
#pragma once

namespace tenant_guard::support {

// Defines tenant_guard.support_role and installs the ExecutorStart check of
// live support contexts. Called from _PG_init before guc::init().
void init();

}  // namespace tenant_guard::support
