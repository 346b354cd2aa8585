/*
 * core/no_postgres.hpp
 *
 * Include this LAST in every src/core file. It proves at compile time that
 * the file never includes a PostgreSQL header, so the Catch2 unit tests can
 * link the core without a server.
 */
#pragma once

#ifdef POSTGRES_H
static_assert(false, "src/core must not include PostgreSQL headers");
#endif
