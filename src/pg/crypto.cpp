/*
 * pg/crypto.cpp
 *
 * The master key settings of column encryption, and the relcache callback
 * that keeps every backend's key cache honest.
 *
 * Why PGC_SUSET and not PGC_SIGHUP: both are superuser-only, which is what
 * matters (an application role must never choose or see the key source).
 * SUSET additionally lets a superuser configure the key for one session or
 * one role/database (ALTER ROLE ... SET is superuser-only for SUSET settings),
 * which the master-key rotation runbook uses (previous_* set in the session
 * that runs rewrap_keys()) and the regression tests use. It grants nothing a
 * superuser does not already have: a superuser can read any file the server
 * can (pg_read_binary_file) and run any program (COPY ... FROM PROGRAM). The
 * values are GUC_SUPERUSER_ONLY, so SHOW and pg_settings hide them from
 * everyone else.
 *
 * Any change of these settings (SET, RESET, a reload that assigns them) bumps
 * settings_generation; the next crypto call re-reads the keys and drops every
 * cached tenant key. Changes to tenant_guard.tenant_keys reach every backend
 * through a relcache invalidation sent by a trigger on that table
 * (tenant_guard._tenant_keys_changed) and received by on_relcache() below.
 *
 * C-style glue: no C++ object lives in these frames.
 */
#include "pg/crypto.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/guc.h"
#include "utils/inval.h"
}

namespace tenant_guard::crypto {

char* master_key_file = nullptr;
char* master_key_command = nullptr;
char* previous_master_key_file = nullptr;
char* previous_master_key_command = nullptr;
std::uint64_t settings_generation = 1;
unsigned int tenant_keys_relid = InvalidOid;

namespace {

void bump(const char*, void*)
{
	++settings_generation;
}

void on_relcache(Datum, Oid relid)
{
	if (relid == InvalidOid || (tenant_keys_relid != InvalidOid && relid == tenant_keys_relid))
		drop_key_cache();
}

void define(const char* name, const char* short_desc, const char* long_desc, char** var)
{
	DefineCustomStringVariable(name, short_desc, long_desc, var, "", PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE,
	                           nullptr, bump, nullptr);
}

}  // namespace

void init()
{
	/*
	 * Where the master key (the key-encryption key that wraps every tenant
	 * key) comes from: a file read by the server (64 hexadecimal characters
	 * and an optional newline, or 32 raw bytes; refused when group or others
	 * can access it), or a command whose standard output has the same form,
	 * run by the server like ssl_passphrase_command. Set one of the two.
	 */
	define("tenant_guard.master_key_file", "File holding the master key of column encryption.",
	       "64 hexadecimal characters (optionally followed by a newline) or exactly 32 bytes. The file must not "
	       "be readable by group or others.",
	       &master_key_file);
	define("tenant_guard.master_key_command", "Command printing the master key of column encryption.",
	       "Run by the server with /bin/sh; its standard output has the form of tenant_guard.master_key_file.",
	       &master_key_command);

	/*
	 * During a master key change only: the old master key, so tenant keys
	 * still wrapped by it can be read, and tenant_guard.rewrap_keys() can
	 * re-wrap them under the new one. Unset it once rewrap_keys() has run.
	 */
	define("tenant_guard.previous_master_key_file", "File holding the previous master key (during a key change).",
	       nullptr, &previous_master_key_file);
	define("tenant_guard.previous_master_key_command",
	       "Command printing the previous master key (during a key change).", nullptr, &previous_master_key_command);

	CacheRegisterRelcacheCallback(on_relcache, (Datum) 0);
}

}  // namespace tenant_guard::crypto
