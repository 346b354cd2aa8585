/*
 * pg/crypto_fmgr.cpp
 *
 * Column encryption with per-tenant keys (docs/encryption.md,
 * docs/key-management.md):
 *
 *   tenant_guard.encrypt(data bytea, aad text) returns bytea         (also encrypt_text)
 *   tenant_guard.decrypt(data bytea, aad text) returns bytea
 *   tenant_guard.decrypt_text(data bytea, aad text) returns text
 *   tenant_guard.reencrypt(data bytea, aad text) returns bytea
 *   tenant_guard.key_version(data bytea) returns integer
 *   tenant_guard.blind_index(data text, context text) returns bytea
 *   tenant_guard.rotate_key(org uuid) returns integer
 *   tenant_guard.shred_keys(org uuid) returns integer
 *   tenant_guard.rewrap_keys() returns integer
 *   tenant_guard.hmac_sha256, verify_hmac_sha256, random_token, hash_token
 *   tenant_guard._tenant_keys_changed() trigger (C symbol tg__relcache_changed)
 *
 * Key hierarchy: the master key (KEK) comes from outside the database
 * (crypto_guc.cpp); each tenant has numbered data keys (DEKs), stored only
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
 * crypto_guc.cpp's callback calls drop_key_cache()).
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

namespace tg = tenant_guard;
namespace env = tenant_guard::envelope;
using tg::Error;
using tg::SecureBuffer;
using tg::pg::pg_call;

namespace {

constexpr std::size_t k_max_key_source = 4096;
// Tenants whose keys one backend keeps; beyond that the cache starts over
// (bounds the locked memory of a pooled backend serving many tenants).
constexpr std::size_t k_max_cached_tenants = 256;
constexpr const char* k_invalid_param = "22023";

// ---------------------------------------------------------------- state --

struct Kek {
	bool loaded = false;
	SecureBuffer key;
	env::KekId id{};
	bool from_file = false;
	std::string file;
	tg::keyfile::Identity identity;

	void reset()
	{
		loaded = false;
		key.reset();
		from_file = false;
		file.clear();
	}
};

struct Dek {
	bool shredded = false;
	SecureBuffer key;
	std::unique_ptr<tg::aead::Gcm> gcm;
};

struct Tenant {
	std::uint32_t active = 0;
	std::map<std::uint32_t, Dek> deks;
	SecureBuffer index_key;
};

struct State {
	std::uint64_t generation = 0;
	Kek current;
	Kek previous;
	LocalTransactionId checked_lxid = InvalidLocalTransactionId;
	TimestampTz checked_stmt = 0;
	std::map<env::OrgId, Tenant> tenants;
	std::vector<std::uint8_t> ad;  // reused associated-data buffer
	// Nonces come from a pool refilled by RAND_bytes: one call per 340
	// nonces instead of one per encryption (RAND_bytes checks the pid with a
	// getpid() system call each time). Refilled after a fork (MyProcPid).
	std::uint8_t nonce_pool[4080];
	std::size_t nonce_used = sizeof nonce_pool;
	int nonce_pid = 0;
};

// Allocated once per backend and never freed (no static destructor at exit).
State* g_state = nullptr;

State& state()
{
	if (g_state == nullptr)
		g_state = new State();
	return *g_state;
}

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
		throw Error("58030", std::string("could not run the ") + what, "See the server log for the reason.", {},
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

// ------------------------------------------------------------ key table --

// One row of tenant_guard.tenant_keys, copied out of SPI.
struct KeyRow {
	bool found = false;
	std::int32_t version = 0;
	char state = 0;  // 'a'ctive, 'r'etired, 's'hredded
	std::uint8_t wrapped[env::k_wrapped_len] = {};
	std::uint8_t kek_id[env::k_kek_id_len] = {};
};

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

// Runs fn with SPI connected, as the owner of tenant_guard.tenant_keys.
void with_key_owner(void (*fn)(void*), void* arg)
{
	tg::pg::run_as_owner(keys_relid(), fn, arg);
}

template <typename Fn>
void as_key_owner(Fn&& fn)
{
	pg_call([&] { with_key_owner([](void* p) { (*static_cast<std::remove_reference_t<Fn>*>(p))(); }, &fn); });
}

// See the file comment: set when a cached key row may predate a change.
bool cache_suspect = false;
// Counts drop_key_cache() calls, to notice an invalidation during a read.
std::uint64_t cache_drops = 0;

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

constexpr const char* k_select_version =
    "SELECT version, state, wrapped_key, kek_id FROM tenant_guard.tenant_keys "
    "WHERE org_id OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2";
constexpr const char* k_select_active =
    "SELECT version, state, wrapped_key, kek_id FROM tenant_guard.tenant_keys "
    "WHERE org_id OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.=) 'active'";
constexpr const char* k_lock_tenant =
    "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('tenant_guard.tenant_keys'), "
    "pg_catalog.hashtext($1::pg_catalog.text))";
constexpr const char* k_max_version =
    "SELECT COALESCE(pg_catalog.max(version), 0) FROM tenant_guard.tenant_keys WHERE org_id OPERATOR(pg_catalog.=) $1";
constexpr const char* k_root_version =
    "SELECT pg_catalog.min(version) FROM tenant_guard.tenant_keys "
    "WHERE org_id OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.<>) 'shredded'";
constexpr const char* k_retire =
    "UPDATE tenant_guard.tenant_keys SET state = 'retired', retired_at = pg_catalog.now() "
    "WHERE org_id OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.=) 'active'";
constexpr const char* k_insert =
    "INSERT INTO tenant_guard.tenant_keys (org_id, version, state, wrapped_key, kek_id, created_by) "
    "VALUES ($1, $2, 'active', $3, $4, $5::pg_catalog.name)";
constexpr const char* k_event =
    "INSERT INTO tenant_guard.key_events (org_id, event, versions, actor) "
    "VALUES ($1, $2, $3::pg_catalog.int4[], $4::pg_catalog.name)";
constexpr const char* k_shred =
    "WITH s AS (UPDATE tenant_guard.tenant_keys SET state = 'shredded', wrapped_key = NULL, kek_id = NULL, "
    "shredded_at = pg_catalog.now(), shredded_by = $2::pg_catalog.name "
    "WHERE org_id OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.<>) 'shredded' RETURNING version) "
    "SELECT COALESCE(pg_catalog.array_agg(version ORDER BY version)::pg_catalog.text, '{}'), pg_catalog.count(*) FROM s";

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
		throw Error("54000", "tenant has used every key version");
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

// ------------------------------------------------------------ key cache --

const Kek& kek_for(const KeyRow& r, const env::OrgId& org)
{
	const Kek& current = master();
	if (tg::aead::equal_ct(r.kek_id, current.id.data(), env::k_kek_id_len))
		return current;
	if (const Kek* prev = previous_master(); prev != nullptr &&
	                                         tg::aead::equal_ct(r.kek_id, prev->id.data(), env::k_kek_id_len))
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
		d.key = env::unwrap_dek(kek.key.data(), org, static_cast<std::uint32_t>(r.version), r.wrapped,
		                        sizeof r.wrapped);
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
	const KeyRow r = fetch_version(org, version);
	if (!r.found)
		throw Error(k_invalid_param, "ciphertext authentication failed",
		            "This tenant has no key version " + std::to_string(version) + ".");
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

// ------------------------------------------------------------ functions --

Error null_arg(const char* what)
{
	return Error("22004", std::string(what) + " must not be NULL");
}

const std::uint8_t* bytes(const varlena* v)
{
	return reinterpret_cast<const std::uint8_t*>(VARDATA_ANY(v));
}

bytea* alloc_bytea(std::size_t n)
{
	if (n > MaxAllocSize - VARHDRSZ)
		throw Error("54000", "value is too large", "The result would exceed 1 GB.");
	auto* b = static_cast<bytea*>(palloc_extended(VARHDRSZ + n, MCXT_ALLOC_NO_OOM));
	if (b == nullptr)
		throw std::bad_alloc();
	SET_VARSIZE(b, VARHDRSZ + n);
	return b;
}

bytea* seal(Dek& d, const env::OrgId& org, std::uint32_t version, const varlena* aad, const std::uint8_t* in,
            std::size_t len)
{
	if (len > MaxAllocSize - VARHDRSZ - env::k_overhead)
		throw Error("54000", "value is too large to encrypt", "The ciphertext would exceed 1 GB.");
	bytea* out = alloc_bytea(len + env::k_overhead);
	auto* p = reinterpret_cast<std::uint8_t*>(VARDATA(out));
	State& s = state();
	if (s.nonce_used + tg::aead::k_nonce_len > sizeof s.nonce_pool || s.nonce_pid != MyProcPid) {
		if (RAND_bytes(s.nonce_pool, sizeof s.nonce_pool) != 1)
			throw Error(tg::sqlstate::k_internal_error, "could not generate a nonce");
		s.nonce_used = 0;
		s.nonce_pid = MyProcPid;
	}
	const std::uint8_t* nonce = s.nonce_pool + s.nonce_used;
	s.nonce_used += tg::aead::k_nonce_len;
	env::write_header(p, version, nonce);
	std::vector<std::uint8_t>& ad = s.ad;
	env::associated_data(ad, org, version, bytes(aad), VARSIZE_ANY_EXHDR(aad));
	d.gcm->seal(nonce, ad.data(), ad.size(), in, len, p + env::k_header_len, p + env::k_header_len + len);
	return out;
}

// Decrypts into `out` (ciphertext_len bytes); throws on any failure.
void open_into(const env::View& v, const env::OrgId& org, const varlena* aad, std::uint8_t* out)
{
	Dek& d = dek_for(org, v.key_version);
	std::vector<std::uint8_t>& ad = state().ad;
	env::associated_data(ad, org, v.key_version, bytes(aad), VARSIZE_ANY_EXHDR(aad));
	if (!d.gcm->open(v.nonce, ad.data(), ad.size(), v.ciphertext, v.ciphertext_len, v.tag, out))
		throw Error(k_invalid_param, "ciphertext authentication failed",
		            "The value was altered, or it was encrypted for another tenant, key version or aad.");
}

Datum decrypt_common(FunctionCallInfo fcinfo, bool as_text)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		throw null_arg("aad");
	bytea* data = PG_GETARG_BYTEA_PP(0);
	text* aad = PG_GETARG_TEXT_PP(1);
	const env::View v = env::decode_or_throw(bytes(data), VARSIZE_ANY_EXHDR(data));
	const env::OrgId org = current_org();
	bytea* out = alloc_bytea(v.ciphertext_len);
	auto* p = reinterpret_cast<std::uint8_t*>(VARDATA(out));
	open_into(v, org, aad, p);
	if (as_text) {
		const int len = static_cast<int>(v.ciphertext_len);
		const bool ok = pg_call([&] { return pg_verify_mbstr(GetDatabaseEncoding(), reinterpret_cast<char*>(p), len, true); });
		if (!ok) {
			sodium_memzero(p, v.ciphertext_len);
			throw Error("22021", "decrypted value is not valid text in the database encoding",
			            "The plaintext is binary data or contains a NUL byte.",
			            "Use tenant_guard.decrypt() for binary values.");
		}
	}
	PG_RETURN_POINTER(out);
}

}  // namespace

void tenant_guard::crypto::drop_key_cache() noexcept
{
	++cache_drops;
	if (g_state != nullptr)
		g_state->tenants.clear();
}

// tenant_guard.encrypt(data bytea, aad text DEFAULT '') returns bytea; also encrypt_text(text, text)
TG_FUNCTION(encrypt)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		throw null_arg("aad");
	bytea* data = PG_GETARG_BYTEA_PP(0);
	text* aad = PG_GETARG_TEXT_PP(1);
	const env::OrgId org = current_org();
	std::uint32_t version = 0;
	Dek& d = active_dek(org, &version);
	PG_RETURN_BYTEA_P(seal(d, org, version, aad, bytes(data), VARSIZE_ANY_EXHDR(data)));
}

// tenant_guard.decrypt(data bytea, aad text DEFAULT '') returns bytea
TG_FUNCTION(decrypt)
{
	return decrypt_common(fcinfo, false);
}

// tenant_guard.decrypt_text(data bytea, aad text DEFAULT '') returns text
TG_FUNCTION(decrypt_text)
{
	return decrypt_common(fcinfo, true);
}

// tenant_guard.reencrypt(data bytea, aad text DEFAULT '') returns bytea
TG_FUNCTION(reencrypt)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		throw null_arg("aad");
	bytea* data = PG_GETARG_BYTEA_PP(0);
	text* aad = PG_GETARG_TEXT_PP(1);
	const env::View v = env::decode_or_throw(bytes(data), VARSIZE_ANY_EXHDR(data));
	const env::OrgId org = current_org();
	SecureBuffer plain(v.ciphertext_len);
	open_into(v, org, aad, plain.data());
	std::uint32_t version = 0;
	Dek& d = active_dek(org, &version);
	PG_RETURN_BYTEA_P(seal(d, org, version, aad, plain.data(), plain.size()));
}

// tenant_guard.key_version(data bytea) returns integer (STRICT): no key needed
TG_FUNCTION(key_version)
{
	bytea* data = PG_GETARG_BYTEA_PP(0);
	const env::View v = env::decode_or_throw(bytes(data), VARSIZE_ANY_EXHDR(data));
	PG_RETURN_INT32(static_cast<std::int32_t>(v.key_version));
}

// tenant_guard.blind_index(data text, context text) returns bytea
TG_FUNCTION(blind_index)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		throw null_arg("context");
	text* data = PG_GETARG_TEXT_PP(0);
	text* context = PG_GETARG_TEXT_PP(1);
	const env::OrgId org = current_org();
	State& s = state();
	master();
	auto t = s.tenants.find(org);
	if (t == s.tenants.end() || t->second.index_key.empty()) {
		// The index key derives from the tenant's oldest live DEK, so it does
		// not change when the key is rotated (docs/encryption.md).
		std::uint32_t active = 0;
		(void) active_dek(org, &active);
		std::int32_t root = 0;
		bool found = false;
		as_key_owner([&] {
			Oid types[1] = {UUIDOID};
			Datum values[1] = {uuid_datum(org)};
			exec(k_root_version, 1, types, values, SPI_OK_SELECT);
			bool isnull = true;
			Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			found = !isnull;
			root = isnull ? 0 : DatumGetInt32(d);
		});
		if (!found)
			throw Error(tg::sqlstate::k_internal_error, "tenant has no live key");
		Dek& d = dek_for(org, static_cast<std::uint32_t>(root));
		SecureBuffer k = env::blind_index_key(d.key.data(), org);
		s.tenants[org].index_key = std::move(k);
		t = s.tenants.find(org);
	}
	const tg::aead::Digest h = env::blind_index(t->second.index_key, bytes(context), VARSIZE_ANY_EXHDR(context),
	                                            bytes(data), VARSIZE_ANY_EXHDR(data));
	bytea* out = alloc_bytea(h.size());
	std::memcpy(VARDATA(out), h.data(), h.size());
	PG_RETURN_BYTEA_P(out);
}

// tenant_guard.rotate_key(org uuid DEFAULT NULL) returns integer
TG_FUNCTION(rotate_key)
{
	env::OrgId org;
	if (PG_ARGISNULL(0))
		org = current_org();
	else
		std::memcpy(org.data(), PG_GETARG_UUID_P(0)->data, UUID_LEN);
	master();
	std::int32_t max_version = 0;
	const KeyRow active = lock_tenant(org, &max_version);
	PG_RETURN_INT32(static_cast<std::int32_t>(new_active_key(org, max_version, active.found)));
}

// tenant_guard.shred_keys(org uuid) returns integer: how many key versions were destroyed
TG_FUNCTION(shred_keys)
{
	if (PG_ARGISNULL(0))
		throw null_arg("org");
	env::OrgId org;
	std::memcpy(org.data(), PG_GETARG_UUID_P(0)->data, UUID_LEN);
	// No master key needed: erasure must not depend on being able to decrypt.
	const std::string who = actor();
	std::int32_t max_version = 0;
	(void) lock_tenant(org, &max_version);
	std::int64_t n = 0;
	as_key_owner([&] {
		Oid t2[2] = {UUIDOID, TEXTOID};
		Datum v2[2] = {uuid_datum(org), CStringGetTextDatum(who.c_str())};
		exec(k_shred, 2, t2, v2, SPI_OK_SELECT);
		bool isnull = false;
		Datum list = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		Oid t4[4] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID};
		Datum v4[4] = {v2[0], CStringGetTextDatum("shredded"), list, v2[1]};
		exec(k_event, 4, t4, v4, SPI_OK_INSERT);
	});
	PG_RETURN_INT32(static_cast<std::int32_t>(n));
}

// tenant_guard.rewrap_keys() returns integer: how many tenant keys were re-wrapped
TG_FUNCTION(rewrap_keys)
{
	const Kek& current = master();
	struct Row {
		std::uint8_t org[UUID_LEN];
		std::int32_t version;
		std::uint8_t wrapped[env::k_wrapped_len];
		std::uint8_t kek_id[env::k_kek_id_len];
	};
	Row* rows = nullptr;
	std::uint64_t n = 0;
	const env::KekId cur_id = current.id;
	as_key_owner([&] {
		Oid types[1] = {BYTEAOID};
		Datum values[1] = {bytea_datum(cur_id.data(), cur_id.size())};
		exec("SELECT org_id, version, wrapped_key, kek_id FROM tenant_guard.tenant_keys "
		     "WHERE state OPERATOR(pg_catalog.<>) 'shredded' AND kek_id OPERATOR(pg_catalog.<>) $1 "
		     "ORDER BY org_id, version FOR UPDATE",
		     1, types, values, SPI_OK_SELECT);
		n = SPI_processed;
		rows = static_cast<Row*>(MemoryContextAllocZero(TopTransactionContext, sizeof(Row) * (n ? n : 1)));
		for (std::uint64_t i = 0; i < n; ++i) {
			HeapTuple row = SPI_tuptable->vals[i];
			TupleDesc desc = SPI_tuptable->tupdesc;
			bool isnull = false;
			std::memcpy(rows[i].org, DatumGetUUIDP(SPI_getbinval(row, desc, 1, &isnull))->data, UUID_LEN);
			rows[i].version = DatumGetInt32(SPI_getbinval(row, desc, 2, &isnull));
			copy_bytes(row, desc, 3, rows[i].wrapped, sizeof rows[i].wrapped);
			copy_bytes(row, desc, 4, rows[i].kek_id, sizeof rows[i].kek_id);
		}
	});
	if (n == 0)
		PG_RETURN_INT32(0);
	const Kek* prev = previous_master();
	std::vector<std::vector<std::uint8_t>> rewrapped;
	rewrapped.reserve(n);
	for (std::uint64_t i = 0; i < n; ++i) {
		env::OrgId org;
		std::memcpy(org.data(), rows[i].org, org.size());
		if (prev == nullptr || !tg::aead::equal_ct(rows[i].kek_id, prev->id.data(), env::k_kek_id_len))
			throw Error(tg::sqlstate::k_object_not_in_prerequisite_state,
			            "tenant key is wrapped by a master key that is not configured",
			            "Key version " + std::to_string(rows[i].version) + " of tenant " + org_text(org) +
			                " was wrapped neither by the master key nor by the previous master key.",
			            "Set tenant_guard.previous_master_key_file (or _command) to the old master key.");
		SecureBuffer dek = env::unwrap_dek(prev->key.data(), org, static_cast<std::uint32_t>(rows[i].version),
		                                   rows[i].wrapped, sizeof rows[i].wrapped);
		rewrapped.push_back(env::wrap_dek(current.key.data(), org, static_cast<std::uint32_t>(rows[i].version),
		                                  dek.data()));
	}
	const std::string who = actor();
	as_key_owner([&] {
		for (std::uint64_t i = 0; i < n; ++i) {
			env::OrgId org;
			std::memcpy(org.data(), rows[i].org, org.size());
			Oid types[4] = {UUIDOID, INT4OID, BYTEAOID, BYTEAOID};
			Datum values[4] = {uuid_datum(org), Int32GetDatum(rows[i].version),
			                   bytea_datum(rewrapped[i].data(), rewrapped[i].size()),
			                   bytea_datum(cur_id.data(), cur_id.size())};
			exec("UPDATE tenant_guard.tenant_keys SET wrapped_key = $3, kek_id = $4 "
			     "WHERE org_id OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2",
			     4, types, values, SPI_OK_UPDATE);
			char versions[32];
			snprintf(versions, sizeof versions, "{%d}", rows[i].version);
			Oid t4[4] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID};
			Datum v4[4] = {values[0], CStringGetTextDatum("rewrapped"), CStringGetTextDatum(versions),
			               CStringGetTextDatum(who.c_str())};
			exec(k_event, 4, t4, v4, SPI_OK_INSERT);
		}
	});
	PG_RETURN_INT32(static_cast<std::int32_t>(n));
}

// tenant_guard.hmac_sha256(data bytea, key bytea) returns bytea (STRICT)
TG_FUNCTION(hmac_sha256)
{
	bytea* data = PG_GETARG_BYTEA_PP(0);
	bytea* key = PG_GETARG_BYTEA_PP(1);
	if (VARSIZE_ANY_EXHDR(key) == 0)
		throw Error(k_invalid_param, "HMAC key must not be empty");
	const tg::aead::Digest h =
	    tg::aead::hmac_sha256(bytes(key), VARSIZE_ANY_EXHDR(key), bytes(data), VARSIZE_ANY_EXHDR(data));
	bytea* out = alloc_bytea(h.size());
	std::memcpy(VARDATA(out), h.data(), h.size());
	PG_RETURN_BYTEA_P(out);
}

// tenant_guard.verify_hmac_sha256(data bytea, signature bytea, key bytea) returns boolean (STRICT)
TG_FUNCTION(verify_hmac_sha256)
{
	bytea* data = PG_GETARG_BYTEA_PP(0);
	bytea* sig = PG_GETARG_BYTEA_PP(1);
	bytea* key = PG_GETARG_BYTEA_PP(2);
	if (VARSIZE_ANY_EXHDR(key) == 0)
		throw Error(k_invalid_param, "HMAC key must not be empty");
	const tg::aead::Digest h =
	    tg::aead::hmac_sha256(bytes(key), VARSIZE_ANY_EXHDR(key), bytes(data), VARSIZE_ANY_EXHDR(data));
	// The length of a signature is public; only its bytes are compared in constant time.
	if (VARSIZE_ANY_EXHDR(sig) != h.size())
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(tg::aead::equal_ct(bytes(sig), h.data(), h.size()));
}

// tenant_guard.random_token(bytes integer DEFAULT 32) returns text (STRICT): URL-safe base64, no padding
TG_FUNCTION(random_token)
{
	const std::int32_t n = PG_GETARG_INT32(0);
	if (n < 16 || n > 1024)
		throw Error(k_invalid_param, "random_token() takes 16 to 1024 bytes",
		            "Fewer than 16 random bytes (128 bits) could be guessed; more than 1024 is not a token.");
	SecureBuffer raw(static_cast<std::size_t>(n));
	randombytes_buf(raw.data(), raw.size());
	const std::string token = tg::encoding::base64url_encode(raw.data(), raw.size());
	text* out = static_cast<text*>(palloc_extended(VARHDRSZ + token.size(), MCXT_ALLOC_NO_OOM));
	if (out == nullptr)
		throw std::bad_alloc();
	SET_VARSIZE(out, VARHDRSZ + token.size());
	std::memcpy(VARDATA(out), token.data(), token.size());
	PG_RETURN_TEXT_P(out);
}

// tenant_guard.hash_token(token text) returns bytea (STRICT): SHA-256 of the token's bytes
TG_FUNCTION(hash_token)
{
	text* token = PG_GETARG_TEXT_PP(0);
	const tg::aead::Digest h = tg::aead::sha256(bytes(token), VARSIZE_ANY_EXHDR(token));
	bytea* out = alloc_bytea(h.size());
	std::memcpy(VARDATA(out), h.data(), h.size());
	PG_RETURN_BYTEA_P(out);
}

// Statement trigger behind tenant_guard._tenant_keys_changed() and
// tenant_guard._tenants_changed() (lifecycle): sends a relcache invalidation
// for the trigger's own table, so every backend drops what it cached from it
// (here the tenant keys; lifecycle_fmgr.cpp the non-active tenants).
extern "C" {
PG_FUNCTION_INFO_V1(tg__relcache_changed);
Datum tg__relcache_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("%s must be called as a trigger", get_func_name(fcinfo->flinfo->fn_oid))));
	auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
	CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
	return PointerGetDatum(nullptr);
}
}
