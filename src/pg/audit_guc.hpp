/*
 * pg/audit_guc.hpp: the settings of the audit log (defined in audit_guc.cpp)
 * and of the impersonation claim. Reference: docs/audit.md, docs/settings.md.
 */
#pragma once

namespace tenant_guard::audit_guc {

extern char* impersonator_claim;    // tenant_guard.impersonator_claim
extern char* setting_impersonator;  // tenant_guard.impersonator (context_source = setting)
extern char* retention;             // tenant_guard.audit_retention
extern char* reader_role;           // tenant_guard.audit_reader_role
extern bool skip_noop_updates;      // tenant_guard.audit_skip_noop_updates
extern int rows_per_record;         // tenant_guard.audit_rows_per_record

// Defines the settings and, while shared_preload_libraries loads the library,
// requests the shared memory of the seal chain head (init_shared_memory).
void init();

// Defined in audit_fmgr.cpp.
void init_shared_memory();

}  // namespace tenant_guard::audit_guc
