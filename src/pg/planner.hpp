/*
 * pg/planner.hpp: the tenant context evaluated once per query in row-level
 * security policies (planner.cpp, docs/settings.md,
 * tenant_guard.context_once_per_query).
 */
#pragma once

namespace tenant_guard::planner {

// Defines tenant_guard.context_once_per_query; installs the planner hook only
// while shared_preload_libraries is being processed. Called once from _PG_init.
void init();

}  // namespace tenant_guard::planner
