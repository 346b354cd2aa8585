/*
 * module.cpp
 *
 * PG_MODULE_MAGIC and _PG_init, nothing else: _PG_init is the table of
 * contents of what tenant_guard sets up in a backend.
 *
 * Nothing in the tenant context needs shared_preload_libraries: the library
 * is loaded by the first call to one of its functions, and everything the
 * context relies on (settings, their transaction scoping, parallel workers)
 * comes from PostgreSQL's own setting machinery. Features that need preloading
 * check process_shared_preload_libraries_done themselves and say so.
 */
#include <sodium.h>

#include "core/jwks.hpp"  // before any PostgreSQL header (pg/keyset.hpp needs it)

#include "pg/audit.hpp"
#include "pg/citus.hpp"
#include "pg/citus_keys.hpp"
#include "pg/crypto.hpp"
#include "pg/guard.hpp"
#include "pg/guc.hpp"
#include "pg/hooks.hpp"
#include "pg/keyset.hpp"
#include "pg/planner.hpp"
#include "pg/support.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"

PG_MODULE_MAGIC;

void _PG_init(void);
}

// Plain C frame: no C++ objects.
void _PG_init(void)
{
	if (sodium_init() < 0)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not initialise libsodium")));
	// Every feature defines its settings before guc::init(), which reserves the
	// tenant_guard prefix: reserving first would discard values set in
	// postgresql.conf for settings defined afterwards.
	tenant_guard::crypto::init();
	tenant_guard::hooks::init();
	tenant_guard::audit_guc::init();
	tenant_guard::support::init();
	tenant_guard::keyset::init();
	tenant_guard::citus::define_settings();
	tenant_guard::citus::keys::define_settings();
	tenant_guard::citus::init();
	tenant_guard::citus::keys::init();
	tenant_guard::planner::init();
	tenant_guard::guc::init();
	tenant_guard::guard::init();
}
