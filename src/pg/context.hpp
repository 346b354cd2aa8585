/*
 * pg/context.hpp: the tenant context of the current statement, for glue that
 * needs it from C++ (the audit trigger). Defined in context_fmgr.cpp; same
 * resolution as the SQL accessors. May throw (std::bad_alloc); never ereports.
 */
#pragma once

#include "core/claims.hpp"

namespace tenant_guard::context {

const claims::Context& current();

}  // namespace tenant_guard::context
