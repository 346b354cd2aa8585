/*
 * pg/crypto_keys.hpp
 *
 * The master key, the tenant key table and the per-backend key cache
 * (crypto_keys.cpp), for the SQL functions of crypto_fmgr.cpp. Include after
 * the src/core headers. Everything here may throw and calls PostgreSQL only
 * through pg_call (boundary.hpp), except the functions marked plain C.
 */
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/aead.hpp"
#include "core/envelope.hpp"
#include "core/error.hpp"
#include "core/keyfile.hpp"
#include "core/secure_buffer.hpp"
#include "pg/boundary.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup.h"
#include "access/tupdesc.h"
#include "storage/lock.h"
#include "utils/timestamp.h"
}

namespace tenant_guard::crypto::keys {

namespace env = tenant_guard::envelope;

struct Kek {
	bool loaded = false;
	SecureBuffer key;
	env::KekId id{};
	bool from_file = false;
	std::string file;
	tenant_guard::keyfile::Identity identity;

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
	std::unique_ptr<tenant_guard::aead::Gcm> gcm;
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
	// Keys a Citus coordinator forwarded for the current transaction only
	// (citus_keys.cpp), by tenant and version; dropped at its end and when
	// tenant_guard.forwarded_keys changes.
	std::map<std::pair<env::OrgId, std::uint32_t>, Dek> forwarded;
	LocalTransactionId forwarded_lxid = InvalidLocalTransactionId;
	std::uint64_t forwarded_generation = 0;
};

// The backend's key state, allocated on first use.
State& state();

// The current master key, (re)loaded when its settings or its file changed.
const Kek& master();
// The previous master key (only during a master key change), or nullptr.
const Kek* previous_master();

// The tenant of the current context; throws without one.
env::OrgId current_org();
std::string org_text(const env::OrgId& org);

// One row of tenant_guard.tenant_keys, copied out of SPI.
struct KeyRow {
	bool found = false;
	std::int32_t version = 0;
	char state = 0;  // 'a'ctive, 'r'etired, 's'hredded
	std::uint8_t wrapped[env::k_wrapped_len] = {};
	std::uint8_t kek_id[env::k_kek_id_len] = {};
};

// Runs fn with SPI connected, as the owner of tenant_guard.tenant_keys.
void with_key_owner(void (*fn)(void*), void* arg);

template <typename Fn>
void as_key_owner(Fn&& fn)
{
	tenant_guard::pg::pg_call(
	    [&] { with_key_owner([](void* p) { (*static_cast<std::remove_reference_t<Fn>*>(p))(); }, &fn); });
}

// Plain C, inside as_key_owner.
Datum uuid_datum(const env::OrgId& org);
void exec(const char* sql, int nargs, Oid* types, Datum* values, int expect);
void copy_bytes(HeapTuple row, TupleDesc desc, int col, std::uint8_t* out, std::size_t len);
Datum bytea_datum(const std::uint8_t* p, std::size_t n);

inline constexpr const char* k_root_version =
    "SELECT pg_catalog.min(version) FROM tenant_guard.tenant_keys "
    "WHERE org_id OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.<>) 'shredded'";
inline constexpr const char* k_event = "INSERT INTO tenant_guard.key_events (org_id, event, versions, actor) "
                                       "VALUES ($1, $2, $3::pg_catalog.int4[], $4::pg_catalog.name)";
inline constexpr const char* k_shred =
    "WITH s AS (UPDATE tenant_guard.tenant_keys SET state = 'shredded', wrapped_key = NULL, kek_id = NULL, "
    "shredded_at = pg_catalog.now(), shredded_by = $2::pg_catalog.name "
    "WHERE org_id OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.<>) 'shredded' RETURNING version) "
    "SELECT COALESCE(pg_catalog.array_agg(version ORDER BY version)::pg_catalog.text, '{}'), pg_catalog.count(*) FROM "
    "s";

// The name of the role calling us (before any user switch).
std::string actor();

// Locks the tenant's keys for this transaction; returns the active row (if
// any) and the highest version ever used.
KeyRow lock_tenant(const env::OrgId& org, std::int32_t* max_version);
// Creates a new active DEK (retiring the current one). The tenant must be
// locked by lock_tenant() in this transaction.
std::uint32_t new_active_key(const env::OrgId& org, std::int32_t max_version, bool had_active);
// The DEK of `version` for decryption.
Dek& dek_for(const env::OrgId& org, std::uint32_t version);
// The active DEK for encryption, created on first use.
Dek& active_dek(const env::OrgId& org, std::uint32_t* version);
// Drops the keys forwarded for the transaction (at its end).
void drop_forwarded() noexcept;

}  // namespace tenant_guard::crypto::keys
