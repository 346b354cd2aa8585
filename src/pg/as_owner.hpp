/*
 * pg/as_owner.hpp: run SPI work with the rights of a table's owner, for the
 * internal tables no application role may read (tenant keys, the tenant
 * registry). The user is switched with SECURITY_LOCAL_USERID_CHANGE |
 * SECURITY_RESTRICTED_OPERATION and restored on every exit (PG_FINALLY), so
 * no SECURITY DEFINER helper has to expose the table. While it runs,
 * search_path is pinned to "pg_catalog, pg_temp": a caller could otherwise put
 * a schema of its own before pg_catalog and have its operators or functions
 * run with the owner's rights. row_security is pinned on as well (see
 * pin_search_path() in spi.hpp).
 */
#pragma once

extern "C" {
#include "postgres.h"
}

namespace tenant_guard::pg {

// Connects SPI, becomes the owner of `relid`, pins search_path, runs
// fn(arg), finishes SPI and switches back. Plain C: may ereport (call it
// through pg_call from C++).
void run_as_owner(Oid relid, void (*fn)(void*), void* arg);

}  // namespace tenant_guard::pg
