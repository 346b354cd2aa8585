/*
 * pg/guard.hpp: the commit-time migration guardrail (guard_fmgr.cpp).
 */
#pragma once

namespace tenant_guard::guard {

// Registers the transaction callback; called once from _PG_init.
void init();

}  // namespace tenant_guard::guard
