/*
 * pg/spi.hpp: the SPI sequences the glue repeats (connect, snapshot, pinned
 * settings, finish), in one place. Plain C: every function may ereport (call
 * them through pg_call from C++). On an error the (sub)transaction's abort
 * unwinds SPI, the GUC nest level and the active snapshot.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
}

namespace tenant_guard::pg {

// Pins search_path to "pg_catalog, pg_temp", and row_security to on, in a new
// GUC nest level and returns it; undo with AtEOXact_GUC(true, level). An
// error unwinds it with the (sub)transaction. For SPI that runs with rights
// other than the caller's, or that must not follow the caller's settings.
// row_security: tenant_guard's registries have row-level security (everyone
// reads them, owners write their rows), and with row_security = off in the
// session (pg_dump's output sets it) PostgreSQL refuses every query of a
// non-owner that a policy would affect: unpinned, the runtime guards and the
// COMMIT check of a guarded schema failed with "query would be affected by
// row-level security policy for table app_roles" (or guarded_schemas).
int pin_search_path();

// SPI_connect_ext(options), or an error.
void spi_connect(int options = 0);

// What spi_begin() does about the active snapshot: nothing, push the
// transaction snapshot when none is active (a utility hook), or push it
// always (a transaction callback, where none is).
enum SpiSnapshot { k_snapshot_none, k_snapshot_if_missing, k_snapshot_push };

struct SpiScope {
	int guc_level;
	bool pushed_snapshot;
};

// Pushes the snapshot as `snapshot` says, connects SPI and pins search_path
// (pin_search_path()); spi_end() undoes it all in reverse order.
SpiScope spi_begin(SpiSnapshot snapshot = k_snapshot_none);
void spi_end(const SpiScope& scope);

// SPI_prepare and SPI_keepplan, or an error naming `what`.
SPIPlanPtr spi_keep_plan(const char* sql, int nargs, Oid* types, const char* what);

}  // namespace tenant_guard::pg
