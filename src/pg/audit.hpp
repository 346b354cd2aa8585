/*
 * pg/audit.hpp: the audit log's settings and set-up (audit.cpp). Reference:
 * docs/audit.md, docs/settings.md. The write path's own interfaces are in
 * audit_log.hpp.
 */
#pragma once

namespace tenant_guard::audit_guc {

extern char* retention;         // tenant_guard.audit_retention
extern char* reader_role;       // tenant_guard.audit_reader_role
extern bool skip_noop_updates;  // tenant_guard.audit_skip_noop_updates
extern int rows_per_record;     // tenant_guard.audit_rows_per_record

// Defines the settings and, while shared_preload_libraries loads the library,
// requests the shared memory of the seal chain head (init_shared_memory).
// Called once from _PG_init.
void init();

// Installs the shared-memory hooks of the seal chain head (audit_chain.cpp).
void init_shared_memory();

}  // namespace tenant_guard::audit_guc
