/*
 * pg/hooks.hpp: runtime guards for application roles (hooks.cpp).
 */
#pragma once

namespace tenant_guard::hooks {

// Defines the guards' settings; installs the ProcessUtility hook only while
// shared_preload_libraries is being processed. Called once from _PG_init.
void init();

}  // namespace tenant_guard::hooks
