/*
 * pg/as_owner.hpp: run SPI work with the rights of a table's owner, for the
 * internal tables no application role may read (tenant keys, the tenant
 * registry). The user is switched with SECURITY_LOCAL_USERID_CHANGE |
 * SECURITY_RESTRICTED_OPERATION and restored on every exit (PG_FINALLY), so
 * no SECURITY DEFINER helper has to expose the table.
 */
#pragma once

extern "C" {
#include "postgres.h"
}

namespace tenant_guard::pg {

// Connects SPI, becomes the owner of `relid`, runs fn(arg), finishes SPI and
// switches back. Plain C: may ereport (call it through pg_call from C++).
void run_as_owner(Oid relid, void (*fn)(void*), void* arg);

}  // namespace tenant_guard::pg
