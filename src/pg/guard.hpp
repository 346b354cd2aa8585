/*
 * pg/guard.hpp: the commit-time migration guardrail (guard.cpp, guard_fmgr.cpp).
 */
#pragma once

extern "C" {
#include "postgres.h"
}

namespace tenant_guard::guard {

// Registers the transaction callback; called once from _PG_init.
void init();

// Remembers a table the check at COMMIT looks at; `required_anyway`: it
// counts even if neither it nor its tenant column is new in the transaction.
void note(Oid rel, bool required_anyway);

}  // namespace tenant_guard::guard
