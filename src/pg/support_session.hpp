/*
 * pg/support_session.hpp: the backend state of support sessions, shared by
 * support.cpp (the setting, the check, the callbacks) and support_fmgr.cpp
 * (the SQL entry points). Include after the src/core headers.
 */
#pragma once

#include <cstdint>
#include <string>

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

namespace tenant_guard::support {

extern char* support_role;  // tenant_guard.support_role

// A redemption staged by _support_stage() in this backend, usable once its
// transaction has committed.
struct Staged {
	bool valid = false;
	bool committed = false;
	SubTransactionId subxact = InvalidSubTransactionId;
	pg_uuid_t grant{};
	pg_uuid_t org{};
	std::string agent;
	TimestampTz expires_at = 0;
	Oid owner = InvalidOid;
};

struct Active {
	bool on = false;
	bool dead = false;
	std::uint64_t serial = 0;  // counts the activations of this backend: which session a query started in
	pg_uuid_t grant{};
	std::string claims;  // the exact signed_context text this library set
	TimestampTz expires_at = 0;
	Oid owner = InvalidOid;
	TimestampTz checked_statement = 0;                            // start of the last statement checked
	LocalTransactionId checked_lxid = InvalidLocalTransactionId;  // the last transaction checked
	SPIPlanPtr plan = nullptr;
};

// Allocated once per backend and never freed.
Staged& staged();
Active& active();

// Registers the transaction callbacks that follow a staged redemption (once
// per backend). Plain C: may ereport.
void register_callbacks();

LocalTransactionId current_lxid();

}  // namespace tenant_guard::support
