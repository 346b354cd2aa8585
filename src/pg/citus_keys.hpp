/*
 * pg/citus_keys.hpp: a tenant key made in an open transaction on a Citus
 * coordinator, usable by the worker backends of that transaction
 * (citus_keys.cpp, docs/citus.md "Keys on the workers").
 */
#pragma once

#include <cstdint>

namespace tenant_guard::forwarded_keys {
struct TxnId;
}

namespace tenant_guard::citus::keys {

// Defines tenant_guard.forwarded_keys (before guc::init()).
void define_settings();
// Registers the transaction callbacks.
void init();
// The value forwarded to this backend ("" when none) and a counter that
// changes whenever it is set or reset.
const char* forwarded_value();
std::uint64_t forwarded_generation();
// Plain C (may ereport): the distributed transaction id Citus assigned to
// this backend's transaction; false when it has none.
bool current_txn(tenant_guard::forwarded_keys::TxnId* out);
// On a coordinator, at a statement start: sends the transaction's forwarded
// keys again after a subtransaction ended (Citus forgets the SET LOCAL
// statements of a subtransaction for the connections it opens later).
void resend_if_needed();

}  // namespace tenant_guard::citus::keys
