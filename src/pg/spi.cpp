/*
 * pg/spi.cpp: see spi.hpp. C-style glue: no C++ objects.
 */
#include "pg/spi.hpp"

extern "C" {
#include "utils/guc.h"
#include "utils/snapmgr.h"
}

namespace tenant_guard::pg {

int pin_search_path()
{
	const int level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
	                         false);
	(void) set_config_option("row_security", "on", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void spi_connect(int options)
{
	if (SPI_connect_ext(options) != SPI_OK_CONNECT)
		elog(ERROR, "tenant_guard: SPI_connect failed");
}

SpiScope spi_begin(SpiSnapshot snapshot)
{
	SpiScope s{0, false};
	if (snapshot == k_snapshot_push || (snapshot == k_snapshot_if_missing && !ActiveSnapshotSet())) {
		PushActiveSnapshot(GetTransactionSnapshot());
		s.pushed_snapshot = true;
	}
	spi_connect();
	s.guc_level = pin_search_path();
	return s;
}

void spi_end(const SpiScope& scope)
{
	AtEOXact_GUC(true, scope.guc_level);
	SPI_finish();
	if (scope.pushed_snapshot)
		PopActiveSnapshot();
}

SPIPlanPtr spi_keep_plan(const char* sql, int nargs, Oid* types, const char* what)
{
	SPIPlanPtr p = SPI_prepare(sql, nargs, types);
	if (p == nullptr)
		elog(ERROR, "tenant_guard: SPI_prepare failed for %s: %s", what, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(p) != 0)
		elog(ERROR, "tenant_guard: SPI_keepplan failed for %s", what);
	return p;
}

}  // namespace tenant_guard::pg
