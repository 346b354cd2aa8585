/*
 * pg/crypto_keys.cpp
 *
 * The keys behind column encryption (docs/encryption.md,
 * docs/key-management.md).
 *
 * Key hierarchy: the master key (KEK) comes from outside the database
 * (crypto.cpp); each tenant has numbered data keys (DEKs), stored only
 * wrapped by the KEK in tenant_guard.tenant_keys, which no application role
 * can read. This file reads and writes that table with SPI after switching
 * to the table's owner (SetUserIdAndSecContext with
 * SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION, restored in
 * PG_FINALLY), so no SECURITY DEFINER helper exposes the wrapped keys.
 *
 * Per backend, unwrapped DEKs live in libsodium-locked memory with a
 * ready-keyed OpenSSL GCM context each, so the hot path of encrypt/decrypt
 * is: resolve the tenant, check the master key settings (a stat of the key
 * file at most once per statement), a map look-up, GCM. The cache is dropped
 * when the master key settings change and whenever tenant_guard.tenant_keys
 * changes in any backend (a statement trigger sends a relcache invalidation;
 * crypto.cpp's callback calls drop_key_cache()).
 *
 * A key row is read for the cache with a fresh snapshot, never with the
 * snapshot of the transaction that happens to need it: a REPEATABLE READ
 * transaction older than a shred_keys() (a purge) would otherwise cache the
 * shredded key, and keep it for the backend's life. Pending invalidations are
 * taken in once per statement and before each read (in parallel mode, where
 * GetLatestSnapshot() is refused, with a catalog snapshot of tenant_keys,
 * which is taken afresh for a table without a syscache); a row read while an
 * invalidation arrived makes the cache suspect, and it is dropped at the next
 * look-up outside parallel mode.
 *
 * Boundary rules (boundary.hpp): PostgreSQL calls that can raise go through
 * pg_call once C++ objects exist; the SPI sections are plain C lambdas that
 * copy their results into fixed-size fields. No reference into the cache is
 * held across a PostgreSQL call (an invalidation may clear the cache there).
 */
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include <openssl/rand.h>

#include "core/aead.hpp"
#include "core/encoding.hpp"
#include "core/envelope.hpp"
#include "core/error.hpp"
#include "core/forwarded_keys.hpp"
#include "core/keyfile.hpp"
#include "core/masterkey.hpp"
#include "pg/as_owner.hpp"
#include "pg/boundary.hpp"
#include "pg/compat.hpp"
#include "pg/crypto.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/fd.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"
#include "utils/memutils.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

Datum tg_current_user_org_id(PG_FUNCTION_ARGS);
}

#include "pg/citus_keys.hpp"
#include "pg/crypto_keys.hpp"

namespace tg = tenant_guard;
namespace fk = tenant_guard::forwarded_keys;
using tg::Error;
using tg::SecureBuffer;
using tg::pg::pg_call;

namespace tenant_guard::crypto::keys {

namespace {

constexpr std::size_t k_max_key_source = 4096;
// Tenants whose keys one backend keeps; beyond that the cache starts over
// (bounds the locked memory of a pooled backend serving many tenants).
constexpr std::size_t k_max_cached_tenants = 256;

// Allocated once per backend and never freed (no static destructor at exit).
State* g_state = nullptr;

}  // namespace

State& state()
{
	if (g_state == nullptr)
		g_state = new State();
	return *g_state;
}

namespace {

// ------------------------------------------------------------ master key --

Error not_configured()
{
	return Error(tg::sqlstate::k_object_not_in_prerequisite_state, "master key is not configured",
	             "Neither tenant_guard.master_key_file nor tenant_guard.master_key_command is set.",
	             "A superuser must set tenant_guard.master_key_file (64 hexadecimal characters, mode 0600) or "
	             "tenant_guard.master_key_command; see docs/key-management.md.");
}

bool set(const char* s)
{
	return s != nullptr && *s != '\0';
}

// Runs the key command and parses its standard output.
SecureBuffer run_command(const char* command, const char* what)
{
	SecureBuffer buf(k_max_key_source + 1);
	struct Run {
		const char* command;
		std::uint8_t* buf;
		std::size_t cap;
		std::size_t got;
		int rc;
		bool open_failed;
		char status[256];
	} r{command, buf.data(), buf.size(), 0, 0, false, {0}};
	pg_call([&] {
		fflush(nullptr);
		FILE* f = OpenPipeStream(r.command, "r");
		if (f == nullptr) {
			r.open_failed = true;
			strlcpy(r.status, strerror(errno), sizeof r.status);
			return;
		}
		r.got = fread(r.buf, 1, r.cap, f);
		r.rc = ClosePipeStream(f);
		if (r.rc != 0)
			strlcpy(r.status, wait_result_to_str(r.rc), sizeof r.status);
	});
	if (r.open_failed)
		throw Error(tg::sqlstate::k_io_error, std::string("could not run the ") + what,
		            "See the server log for the reason.", {},
		            std::string("could not execute the command: ") + r.status);
	if (r.rc != 0)
		throw Error(tg::sqlstate::k_config_file_error, std::string(what) + " failed",
		            "See the server log for its exit status.", {}, std::string("The command ") + r.status + ".");
	if (r.got > k_max_key_source)
		throw Error(tg::sqlstate::k_config_file_error, std::string(what) + " printed too much",
		            "The output is longer than " + std::to_string(k_max_key_source) + " bytes.");
	return tg::masterkey::parse(buf.data(), r.got, (std::string(what) + " output").c_str());
}

void load(Kek& k, const char* file, const char* command, bool previous)
{
	k.reset();
	const char* file_what = previous ? "previous master key file" : "master key file";
	const char* cmd_what = previous ? "previous master key command" : "master key command";
	if (set(file) && set(command))
		throw Error(tg::sqlstate::k_config_file_error,
		            previous ? "previous master key is configured twice" : "master key is configured twice",
		            previous ? "Set only one of tenant_guard.previous_master_key_file and "
		                       "tenant_guard.previous_master_key_command."
		                     : "Set only one of tenant_guard.master_key_file and tenant_guard.master_key_command.");
	if (set(file)) {
		tg::keyfile::Contents c = tg::keyfile::read(file, file_what, geteuid(), k_max_key_source);
		k.key = tg::masterkey::parse(c.bytes.data(), c.bytes.size(), file_what);
		k.from_file = true;
		k.file = file;
		k.identity = c.identity;
	} else {
		k.key = run_command(command, cmd_what);
	}
	k.id = env::kek_id(k.key.data());
	k.loaded = true;
}

}  // namespace

// The current master key, (re)loaded when its settings or its file changed.
const Kek& master()
{
	State& s = state();
	const char* file = tg::crypto::master_key_file;
	const char* command = tg::crypto::master_key_command;
	if (!set(file) && !set(command))
		throw not_configured();
	const LocalTransactionId lxid = tg::pg::compat::my_lxid();
	const TimestampTz stmt = GetCurrentStatementStartTimestamp();
	bool reload = s.generation != tg::crypto::settings_generation || !s.current.loaded;
	if (!reload && s.current.from_file && (s.checked_lxid != lxid || s.checked_stmt != stmt)) {
		// At most one stat per statement: notices a replaced, edited or chmod'ed file.
		if (tg::keyfile::stat_file(s.current.file, "master key file") != s.current.identity)
			reload = true;
	}
	if (reload) {
		s.generation = 0;
		s.current.reset();
		s.previous.reset();
		tg::crypto::drop_key_cache();
		load(s.current, file, command, false);
		s.generation = tg::crypto::settings_generation;
	}
	s.checked_lxid = lxid;
	s.checked_stmt = stmt;
	return s.current;
}

// The previous master key (only during a master key change), or nullptr.
const Kek* previous_master()
{
	State& s = state();
	const char* file = tg::crypto::previous_master_key_file;
	const char* command = tg::crypto::previous_master_key_command;
	if (!set(file) && !set(command))
		return nullptr;
	if (!s.previous.loaded)
		load(s.previous, file, command, true);
	return &s.previous;
}

// -------------------------------------------------------------- context --

env::OrgId current_org()
{
	struct R {
		bool isnull;
		std::uint8_t org[UUID_LEN];
	} r{true, {0}};
	pg_call([&] {
		LOCAL_FCINFO(fc, 0);
		InitFunctionCallInfoData(*fc, nullptr, 0, InvalidOid, nullptr, nullptr);
		Datum d = tg_current_user_org_id(fc);
		r.isnull = fc->isnull;
		if (!fc->isnull)
			std::memcpy(r.org, DatumGetUUIDP(d)->data, UUID_LEN);
	});
	if (r.isnull)
		throw Error(tg::sqlstate::k_insufficient_privilege, "no tenant context",
		            "Encryption keys belong to a tenant, and this statement has no tenant context.",
		            "Establish the tenant context first (see tenant_guard.current_user_org_id()).");
	env::OrgId org;
	std::memcpy(org.data(), r.org, org.size());
	return org;
}

std::string org_text(const env::OrgId& org)
{
	const std::string h = tg::encoding::hex_encode(org.data(), org.size());
	return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

namespace {

// Everything below is plain C, run only inside pg_call.

Oid keys_relid()
{
	Oid relid = RangeVarGetRelid(makeRangeVar(const_cast<char*>("tenant_guard"), const_cast<char*>("tenant_keys"), -1),
	                             NoLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		                errmsg("column encryption is not installed in this database"),
		                errhint("Run ALTER EXTENSION tenant_guard UPDATE.")));
	tg::crypto::tenant_keys_relid = relid;
	return relid;
}
}  // namespace

// Runs fn with SPI connected, as the owner of tenant_guard.tenant_keys.
void with_key_owner(void (*fn)(void*), void* arg)
{
	tg::pg::run_as_owner(keys_relid(), fn, arg);
}
namespace {

// See the file comment: set when a cached key row may predate a change.
bool cache_suspect = false;
// Counts drop_key_cache() calls, to notice an invalidation during a read.
std::uint64_t cache_drops = 0;
}  // namespace

Datum uuid_datum(const env::OrgId& org)
{
	auto* u = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
	std::memcpy(u->data, org.data(), UUID_LEN);
	return UUIDPGetDatum(u);
}

void exec(const char* sql, int nargs, Oid* types, Datum* values, int expect)
{
	const int rc = SPI_execute_with_args(sql, nargs, types, values, nullptr, false, 0);
	if (rc != expect)
		elog(ERROR, "tenant_guard: key table query failed: %s", SPI_result_code_string(rc));
}

namespace {

// A SELECT of key rows for the cache: with a fresh snapshot (the latest
// committed state and this transaction's own changes), after the pending
// invalidations. In parallel mode (the leader of a parallel query, which the
// caller can force with its own settings) GetLatestSnapshot() is not
// allowed; a catalog snapshot for tenant_keys, a table without a syscache,
// is taken afresh on every call and serves the same purpose. Plain C;
// returns whether the read can be trusted for the cache (no invalidation
// arrived meanwhile).
bool select_fresh(const char* sql, int nargs, Oid* types, Datum* values)
{
	AcceptInvalidationMessages();
	const std::uint64_t drops = cache_drops;
	SPIPlanPtr plan = SPI_prepare(sql, nargs, types);
	if (plan == nullptr)
		elog(ERROR, "tenant_guard: key table query failed: %s", SPI_result_code_string(SPI_result));
	Snapshot snap = IsInParallelMode() ? GetCatalogSnapshot(keys_relid()) : GetLatestSnapshot();
	const int rc = SPI_execute_snapshot(plan, values, nullptr, snap, InvalidSnapshot, true, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "tenant_guard: key table query failed: %s", SPI_result_code_string(rc));
	return cache_drops == drops;
}

}  // namespace

void copy_bytes(HeapTuple row, TupleDesc desc, int col, std::uint8_t* out, std::size_t len)
{
	bool isnull = false;
	Datum d = SPI_getbinval(row, desc, col, &isnull);
	if (isnull)
		return;
	bytea* b = DatumGetByteaPP(d);
	if (VARSIZE_ANY_EXHDR(b) != len)
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("tenant_guard.tenant_keys holds a malformed key")));
	std::memcpy(out, VARDATA_ANY(b), len);
}

namespace {

// Fills r from the first row of a SELECT version, state, wrapped_key, kek_id.
void read_key_row(KeyRow* r)
{
	if (SPI_processed == 0)
		return;
	HeapTuple row = SPI_tuptable->vals[0];
	TupleDesc desc = SPI_tuptable->tupdesc;
	bool isnull = false;
	r->found = true;
	r->version = DatumGetInt32(SPI_getbinval(row, desc, 1, &isnull));
	char* st = SPI_getvalue(row, desc, 2);
	r->state = st != nullptr ? st[0] : 0;
	copy_bytes(row, desc, 3, r->wrapped, sizeof r->wrapped);
	copy_bytes(row, desc, 4, r->kek_id, sizeof r->kek_id);
}

constexpr const char* k_select_version = "SELECT version, state, wrapped_key, kek_id FROM tenant_guard.tenant_keys "
                                         "WHERE org_id OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2";
constexpr const char* k_select_active =
    "SELECT version, state, wrapped_key, kek_id FROM tenant_guard.tenant_keys "
    "WHERE org_id OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.=) 'active'";
constexpr const char* k_lock_tenant =
    "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('tenant_guard.tenant_keys'), "
    "pg_catalog.hashtext($1::pg_catalog.text))";
constexpr const char* k_max_version =
    "SELECT COALESCE(pg_catalog.max(version), 0) FROM tenant_guard.tenant_keys WHERE org_id OPERATOR(pg_catalog.=) $1";
constexpr const char* k_retire = "UPDATE tenant_guard.tenant_keys SET state = 'retired', retired_at = pg_catalog.now() "
                                 "WHERE org_id OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.=) 'active'";
constexpr const char* k_insert =
    "INSERT INTO tenant_guard.tenant_keys (org_id, version, state, wrapped_key, kek_id, created_by) "
    "VALUES ($1, $2, 'active', $3, $4, $5::pg_catalog.name)";
}  // namespace

Datum bytea_datum(const std::uint8_t* p, std::size_t n)
{
	bytea* b = static_cast<bytea*>(palloc(VARHDRSZ + n));
	SET_VARSIZE(b, VARHDRSZ + n);
	std::memcpy(VARDATA(b), p, n);
	return PointerGetDatum(b);
}

// The name of the role calling us (before any user switch).
std::string actor()
{
	char buf[NAMEDATALEN];
	pg_call([&] { strlcpy(buf, GetUserNameFromId(GetUserId(), false), sizeof buf); });
	return buf;
}

namespace {

KeyRow fetch_version(const env::OrgId& org, std::uint32_t version)
{
	KeyRow r;
	bool trusted = false;
	as_key_owner([&] {
		Oid types[2] = {UUIDOID, INT4OID};
		Datum values[2] = {uuid_datum(org), Int32GetDatum(static_cast<std::int32_t>(version))};
		trusted = select_fresh(k_select_version, 2, types, values);
		read_key_row(&r);
	});
	if (!trusted)
		cache_suspect = true;
	return r;
}

KeyRow fetch_active(const env::OrgId& org)
{
	KeyRow r;
	bool trusted = false;
	as_key_owner([&] {
		Oid types[1] = {UUIDOID};
		Datum values[1] = {uuid_datum(org)};
		trusted = select_fresh(k_select_active, 1, types, values);
		read_key_row(&r);
	});
	if (!trusted)
		cache_suspect = true;
	return r;
}

// Before a look-up in the key cache: takes in the invalidations other
// backends sent (once per statement and transaction), and drops a suspect
// cache. Call before any reference into the cache is taken.
void refresh_key_cache()
{
	static LocalTransactionId seen_lxid = InvalidLocalTransactionId;
	static TimestampTz seen_stmt = 0;
	const LocalTransactionId lxid = tg::pg::compat::my_lxid();
	const TimestampTz stmt = GetCurrentStatementStartTimestamp();
	if (lxid != seen_lxid || stmt != seen_stmt) {
		pg_call([] { AcceptInvalidationMessages(); });
		seen_lxid = lxid;
		seen_stmt = stmt;
	}
	if (cache_suspect && !IsInParallelMode()) {
		tg::crypto::drop_key_cache();
		cache_suspect = false;
	}
}

}  // namespace

// Locks the tenant's keys for this transaction; returns the active row (if
// any) and the highest version ever used.
KeyRow lock_tenant(const env::OrgId& org, std::int32_t* max_version)
{
	KeyRow r;
	as_key_owner([&] {
		Oid types[1] = {UUIDOID};
		Datum values[1] = {uuid_datum(org)};
		exec(k_lock_tenant, 1, types, values, SPI_OK_SELECT);
		exec(k_select_active, 1, types, values, SPI_OK_SELECT);
		read_key_row(&r);
		exec(k_max_version, 1, types, values, SPI_OK_SELECT);
		bool isnull = false;
		*max_version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	});
	return r;
}

// Creates a new active DEK (retiring the current one). The tenant must be
// locked by lock_tenant() in this transaction.
std::uint32_t new_active_key(const env::OrgId& org, std::int32_t max_version, bool had_active)
{
	if (max_version >= static_cast<std::int32_t>(env::k_max_version))
		throw Error(tg::sqlstate::k_program_limit_exceeded, "tenant has used every key version");
	const std::uint32_t version = static_cast<std::uint32_t>(max_version) + 1;
	const Kek& kek = master();
	SecureBuffer dek(tg::aead::k_key_len);
	randombytes_buf(dek.data(), dek.size());
	const std::vector<std::uint8_t> wrapped = env::wrap_dek(kek.key.data(), org, version, dek.data());
	const std::string who = actor();
	const char* event = had_active ? "rotated" : "created";
	const std::string versions = "{" + std::to_string(version) + "}";
	as_key_owner([&] {
		Oid t1[1] = {UUIDOID};
		Datum v1[1] = {uuid_datum(org)};
		exec(k_retire, 1, t1, v1, SPI_OK_UPDATE);
		Oid t5[5] = {UUIDOID, INT4OID, BYTEAOID, BYTEAOID, TEXTOID};
		Datum v5[5] = {v1[0], Int32GetDatum(static_cast<std::int32_t>(version)),
		               bytea_datum(wrapped.data(), wrapped.size()), bytea_datum(kek.id.data(), kek.id.size()),
		               CStringGetTextDatum(who.c_str())};
		exec(k_insert, 5, t5, v5, SPI_OK_INSERT);
		Oid t4[4] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID};
		Datum v4[4] = {v1[0], CStringGetTextDatum(event), CStringGetTextDatum(versions.c_str()),
		               CStringGetTextDatum(who.c_str())};
		exec(k_event, 4, t4, v4, SPI_OK_INSERT);
	});
	return version;
}

namespace {

// ------------------------------------------------------------ key cache --

const Kek& kek_for(const KeyRow& r, const env::OrgId& org)
{
	const Kek& current = master();
	if (tg::aead::equal_ct(r.kek_id, current.id.data(), env::k_kek_id_len))
		return current;
	if (const Kek* prev = previous_master();
	    prev != nullptr && tg::aead::equal_ct(r.kek_id, prev->id.data(), env::k_kek_id_len))
		return *prev;
	throw Error(tg::sqlstate::k_object_not_in_prerequisite_state,
	            "tenant key is wrapped by a master key that is not configured",
	            "Key version " + std::to_string(r.version) + " of this tenant was wrapped by another master key.",
	            "Configure the master key that wrapped it, or during a master key change set "
	            "tenant_guard.previous_master_key_file and run tenant_guard.rewrap_keys().");
}

// Unwraps a fetched row into the cache; returns the cache entry. Call with
// no PostgreSQL call between this and the use of the result.
Dek& cache_row(const env::OrgId& org, const KeyRow& r)
{
	Dek d;
	if (r.state == 's') {
		d.shredded = true;
	} else {
		const Kek& kek = kek_for(r, org);
		d.key =
		    env::unwrap_dek(kek.key.data(), org, static_cast<std::uint32_t>(r.version), r.wrapped, sizeof r.wrapped);
		d.gcm = std::make_unique<tg::aead::Gcm>(d.key.data());
	}
	auto& tenants = state().tenants;
	if (tenants.size() >= k_max_cached_tenants && tenants.find(org) == tenants.end())
		tenants.clear();
	Tenant& t = tenants[org];
	if (r.state == 'a')
		t.active = static_cast<std::uint32_t>(r.version);
	return t.deks.insert_or_assign(static_cast<std::uint32_t>(r.version), std::move(d)).first->second;
}

Error shredded_error(std::uint32_t version)
{
	return Error(tg::sqlstate::k_object_not_in_prerequisite_state,
	             "key version " + std::to_string(version) + " was shredded",
	             "tenant_guard.shred_keys() destroyed this tenant's key; data encrypted under it cannot be "
	             "decrypted any more.");
}

// A key a Citus coordinator forwarded to this backend for its current
// distributed transaction (citus_keys.cpp, docs/citus.md): the caller found
// no row for (org, version) on this node. Already unwrapped in this
// transaction, or, with parse, read from tenant_guard.forwarded_keys: only
// when its MAC verifies for this backend's own distributed transaction id
// under the current master key. nullptr otherwise.
Dek* forwarded_dek(const env::OrgId& org, std::uint32_t version, bool parse)
{
	const char* value = tg::citus::keys::forwarded_value();
	if (value == nullptr || *value == '\0')
		return nullptr;
	State& s = state();
	const LocalTransactionId lxid = tg::pg::compat::my_lxid();
	const std::uint64_t generation = tg::citus::keys::forwarded_generation();
	if (s.forwarded_lxid != lxid || s.forwarded_generation != generation) {
		s.forwarded.clear();
		s.forwarded_lxid = lxid;
		s.forwarded_generation = generation;
	}
	const std::pair<env::OrgId, std::uint32_t> key{org, version};
	if (auto f = s.forwarded.find(key); f != s.forwarded.end())
		return &f->second;
	if (!parse)
		return nullptr;
	const std::string text(value);
	std::vector<fk::Entry> entries;
	if (!fk::parse(text.data(), text.size(), &entries))
		return nullptr;
	auto e = std::find_if(entries.begin(), entries.end(),
	                      [&](const fk::Entry& x) { return x.org == org && x.version == version; });
	if (e == entries.end())
		return nullptr;
	fk::TxnId txn;
	bool have = false;
	pg_call([&] { have = tg::citus::keys::current_txn(&txn); });
	if (!have)
		return nullptr;
	const Kek& kek = master();
	if (!tg::aead::equal_ct(e->kek_id.data(), kek.id.data(), env::k_kek_id_len) ||
	    !fk::verify(fk::mac_key(kek.key.data()), txn, *e))
		return nullptr;
	Dek d;
	d.key = env::unwrap_dek(kek.key.data(), org, version, e->wrapped.data(), e->wrapped.size());
	d.gcm = std::make_unique<tg::aead::Gcm>(d.key.data());
	return &s.forwarded.insert_or_assign(key, std::move(d)).first->second;
}

}  // namespace

// The DEK of `version` for decryption.
Dek& dek_for(const env::OrgId& org, std::uint32_t version)
{
	refresh_key_cache();
	State& s = state();
	master();
	if (auto t = s.tenants.find(org); t != s.tenants.end()) {
		if (auto d = t->second.deks.find(version); d != t->second.deks.end()) {
			if (d->second.shredded)
				throw shredded_error(version);
			return d->second;
		}
	}
	// (a key forwarded in this transaction was used only because this node
	// has no row for it; none can appear before the transaction ends)
	if (Dek* f = forwarded_dek(org, version, false))
		return *f;
	const KeyRow r = fetch_version(org, version);
	if (!r.found) {
		if (Dek* f = forwarded_dek(org, version, true))
			return *f;
		throw Error(tg::sqlstate::k_invalid_parameter_value, "ciphertext authentication failed",
		            "This tenant has no key version " + std::to_string(version) + ".");
	}
	Dek& d = cache_row(org, r);
	if (d.shredded)
		throw shredded_error(version);
	return d;
}

// The active DEK for encryption, created on first use.
Dek& active_dek(const env::OrgId& org, std::uint32_t* version)
{
	refresh_key_cache();
	State& s = state();
	master();
	if (auto t = s.tenants.find(org); t != s.tenants.end() && t->second.active != 0) {
		if (auto d = t->second.deks.find(t->second.active); d != t->second.deks.end() && !d->second.shredded) {
			*version = t->second.active;
			return d->second;
		}
	}
	KeyRow r = fetch_active(org);
	if (!r.found) {
		// First use: lock the tenant so concurrent first uses create one key.
		std::int32_t max_version = 0;
		r = lock_tenant(org, &max_version);
		if (!r.found) {
			new_active_key(org, max_version, false);
			r = fetch_active(org);
			if (!r.found)
				throw Error(tg::sqlstate::k_internal_error, "could not create a tenant key");
		}
	}
	Dek& d = cache_row(org, r);
	*version = static_cast<std::uint32_t>(r.version);
	return d;
}

}  // namespace tenant_guard::crypto::keys

void tenant_guard::crypto::drop_key_cache() noexcept
{
	using namespace tenant_guard::crypto::keys;
	++cache_drops;
	if (g_state != nullptr)
		g_state->tenants.clear();
}

void tenant_guard::crypto::keys::drop_forwarded() noexcept
{
	if (g_state != nullptr)
		g_state->forwarded.clear();
}
