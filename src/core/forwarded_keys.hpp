/*
 * core/forwarded_keys.hpp
 *
 * A tenant key made in an open transaction on a Citus coordinator, forwarded
 * to the worker backends of that same distributed transaction
 * (docs/citus.md, "Keys on the workers"). The workers' own copy of the key
 * arrives with the transaction's two-phase commit; until then the coordinator
 * sends, as a SET LOCAL of tenant_guard.forwarded_keys that Citus replays on
 * every worker connection of the transaction, the key rows it made:
 *
 *   "v1" then, for each key, ":" org (32 hex) "." version (decimal)
 *   "." kek id (32 hex) "." wrapped key (120 hex) "." mac (64 hex)
 *
 * Only the wrapped key travels (as in the transactional copy): the master
 * key never leaves a node. The MAC binds each key to the distributed
 * transaction Citus assigned (initiator node, transaction number, start
 * timestamp), so a value captured from a worker's pg_stat_activity or log
 * is refused in any other transaction:
 *
 *   mac key = HKDF-SHA256(ikm = master key, salt = "tenant_guard forwarded key v1", info = "")
 *   mac     = HMAC-SHA256(mac key, "tgfwd" || 1 || initiator (4) || number (8) || timestamp (8)
 *                                  || tenant id (16) || version (4) || kek id (16) || wrapped key (60))
 *
 * (integers big-endian, fixed sizes). Verification compares in constant time.
 */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/aead.hpp"
#include "core/envelope.hpp"
#include "core/secure_buffer.hpp"
#include "core/no_postgres.hpp"

namespace tenant_guard::forwarded_keys {

// Keys one transaction forwards at most (the value is sent again whole at
// each change; a transaction making more keys forwards the first ones only).
inline constexpr std::size_t k_max_entries = 32;

// Citus's distributed transaction id (get_current_transaction_id()).
struct TxnId {
	std::int32_t initiator = 0;
	std::uint64_t number = 0;
	std::int64_t timestamp = 0;
};

struct Entry {
	envelope::OrgId org{};
	std::uint32_t version = 0;
	envelope::KekId kek_id{};
	std::array<std::uint8_t, envelope::k_wrapped_len> wrapped{};
	aead::Digest mac{};
};

// The MAC key derived from a 32-byte master key.
SecureBuffer mac_key(const std::uint8_t* master_key);
// The MAC of an entry (its mac field is not read) in a transaction.
aead::Digest mac(const SecureBuffer& key, const TxnId& txn, const Entry& e);
// Does e.mac authenticate e in txn? Constant-time comparison.
bool verify(const SecureBuffer& key, const TxnId& txn, const Entry& e);

// The text of tenant_guard.forwarded_keys ("" for no entry).
std::string encode(const std::vector<Entry>& entries);
// Parses it; false for anything malformed, for more than k_max_entries, or
// for a version outside 1 .. 2^31-1. "" parses to no entry.
bool parse(const char* text, std::size_t len, std::vector<Entry>* out);

}  // namespace tenant_guard::forwarded_keys
