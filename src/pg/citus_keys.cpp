/*
 * pg/citus_keys.cpp
 *
 * A tenant key made in an open transaction on a Citus coordinator (the first
 * encrypt() of a tenant, rotate_key()), usable by the worker backends of the
 * same distributed transaction before it commits (docs/citus.md, "Keys on the
 * workers"; core/forwarded_keys.hpp for the value and its MAC).
 *
 * The transactional copy (58_citus.sql, _citus_key_copy) writes the key row on
 * every worker with two-phase commit; until the commit, only the worker
 * transaction that wrote it sees it, not the ones that run the transaction's
 * queries. So the coordinator also forwards the key: the row trigger
 * tenant_guard._citus_key_forward() (SQL: a C trigger function, callable only
 * as a trigger) keeps the transaction's new key rows, each with a MAC bound to
 * Citus's distributed transaction id and keyed by a key derived from the
 * master key, and sends them as SET LOCAL tenant_guard.forwarded_keys through
 * Citus (PostprocessVariableSetStmt: to every worker connection of the
 * transaction, and replayed on those it opens later). A shredded or deleted
 * row leaves the list, and the value is sent again at once, so a shred later
 * in the transaction wins. On a worker, decrypt() uses a forwarded key
 * (crypto_keys.cpp) only when the node has no row at all for that tenant and
 * version, the MAC verifies for the backend's own distributed transaction id
 * under the node's master key, and only for that transaction: the unwrapped
 * keys are dropped at its end, never cached for the backend.
 *
 * Sub-transactions: a key made in a rolled-back savepoint leaves the list with
 * it (Citus rolls the workers back to the savepoint too); after any
 * sub-transaction ends, Citus forgets its SET LOCAL statements for later
 * connections, so the value is sent again at the next statement start.
 *
 * C++ objects: the coordinator's list (a vector allocated once per backend)
 * and the Entry values of the trigger; PostgreSQL is called through pg_call
 * once they exist.
 */
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/aead.hpp"
#include "core/envelope.hpp"
#include "core/error.hpp"
#include "core/forwarded_keys.hpp"
#include "core/keyfile.hpp"
#include "core/secure_buffer.hpp"
#include "pg/boundary.hpp"
#include "pg/citus.hpp"
#include "pg/citus_keys.hpp"
#include "pg/compat.hpp"
#include "pg/crypto_keys.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

namespace fk = tenant_guard::forwarded_keys;
namespace env = tenant_guard::envelope;
using tenant_guard::pg::pg_call;

namespace tenant_guard::citus::keys {

namespace {

char* forwarded_keys = nullptr;
std::uint64_t generation = 0;

// The coordinator's keys of the current transaction.
struct Pending {
	fk::Entry entry;
	SubTransactionId subid;
};
std::vector<Pending>* pending = nullptr;
LocalTransactionId pending_lxid = InvalidLocalTransactionId;
bool sent = false;
bool resend = false;

void assign_forwarded(const char*, void*)
{
	++generation;
}

void reset_transaction() noexcept
{
	if (pending != nullptr)
		pending->clear();
	pending_lxid = InvalidLocalTransactionId;
	sent = false;
	resend = false;
}

void on_xact(XactEvent event, void*)
{
	switch (event) {
	case XACT_EVENT_COMMIT:
	case XACT_EVENT_PARALLEL_COMMIT:
	case XACT_EVENT_ABORT:
	case XACT_EVENT_PARALLEL_ABORT:
	case XACT_EVENT_PREPARE:
		reset_transaction();
		tenant_guard::crypto::keys::drop_forwarded();
		break;
	default:
		break;
	}
}

void on_subxact(SubXactEvent event, SubTransactionId my_subid, SubTransactionId, void*)
{
	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB && pending != nullptr) {
		// every sub-transaction started after this one is inside it
		pending->erase(
		    std::remove_if(pending->begin(), pending->end(), [&](const Pending& p) { return p.subid >= my_subid; }),
		    pending->end());
	}
	if (sent)
		resend = true;
}

// Sends the current list (plain C: may ereport). False when this Citus
// cannot take a SET LOCAL from here.
bool send(const char* value)
{
	StringInfoData buf;
	initStringInfo(&buf);
	appendStringInfo(&buf, "SET LOCAL tenant_guard.forwarded_keys = %s;", quote_literal_cstr(value));
	return send_set_local(buf.data);
}

void send_pending()
{
	std::vector<fk::Entry> entries;
	entries.reserve(pending->size());
	for (const Pending& p : *pending)
		entries.push_back(p.entry);
	const std::string value = fk::encode(entries);
	bool ok = false;
	pg_call([&] { ok = send(value.c_str()); });
	sent = sent || ok;
	resend = false;
}

// Is this node a Citus coordinator with workers? (SQL: _citus_coordinator())
bool coordinator()
{
	bool yes = false;
	pg_call([&] {
		const tenant_guard::pg::SpiScope scope = tenant_guard::pg::spi_begin();
		const int rc = SPI_execute("SELECT tenant_guard._citus_coordinator()", true, 1);
		if (rc == SPI_OK_SELECT && SPI_processed == 1) {
			bool isnull = true;
			const Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			yes = !isnull && DatumGetBool(d);
		}
		tenant_guard::pg::spi_end(scope);
	});
	return yes;
}

// A changed key row on a coordinator: a new key joins the list, a shredded
// or deleted one leaves it (a shred later in the transaction wins), and the
// list is sent when it changed.
Datum forward_row(bool is_insert, bool shredded, bool has_key, const std::uint8_t* org, std::int32_t version,
                  const std::uint8_t* kek_id, const std::uint8_t* wrapped)
{
	const LocalTransactionId lxid = tenant_guard::pg::compat::my_lxid();
	if (pending == nullptr)
		pending = new std::vector<Pending>();
	if (pending_lxid != lxid) {
		reset_transaction();
		pending_lxid = lxid;
	}
	env::OrgId o;
	std::memcpy(o.data(), org, o.size());
	const auto v = static_cast<std::uint32_t>(version);
	auto it = std::find_if(pending->begin(), pending->end(),
	                       [&](const Pending& p) { return p.entry.org == o && p.entry.version == v; });
	if (shredded || !has_key) {
		if (it == pending->end())
			return PointerGetDatum(nullptr);
		pending->erase(it);
	} else {
		// a new key, or a key of this transaction changed again (rewrapped)
		if (!is_insert && it == pending->end())
			return PointerGetDatum(nullptr);
		if (it == pending->end() && (pending->size() >= fk::k_max_entries || !coordinator()))
			return PointerGetDatum(nullptr);
		fk::TxnId txn;
		bool have = false;
		pg_call([&] { have = ensure_coordinated() && current_txn(&txn); });
		if (!have)
			return PointerGetDatum(nullptr);
		fk::Entry e;
		e.org = o;
		e.version = v;
		std::memcpy(e.kek_id.data(), kek_id, e.kek_id.size());
		std::memcpy(e.wrapped.data(), wrapped, e.wrapped.size());
		const tenant_guard::crypto::keys::Kek& kek = tenant_guard::crypto::keys::master();
		e.mac = fk::mac(fk::mac_key(kek.key.data()), txn, e);
		if (it == pending->end())
			pending->push_back(Pending{e, GetCurrentSubTransactionId()});
		else
			it->entry = e;
	}
	send_pending();
	return PointerGetDatum(nullptr);
}

}  // namespace

const char* forwarded_value()
{
	return forwarded_keys != nullptr ? forwarded_keys : "";
}

std::uint64_t forwarded_generation()
{
	return generation;
}

bool current_txn(fk::TxnId* out)
{
	List* name = list_make2(makeString(pstrdup("pg_catalog")), makeString(pstrdup("get_current_transaction_id")));
	const Oid fn = LookupFuncName(name, 0, nullptr, true);
	if (!OidIsValid(fn))
		return false;
	HeapTupleHeader t = DatumGetHeapTupleHeader(OidFunctionCall0(fn));
	bool n_init = true, n_num = true, n_stamp = true;
	const Datum init = GetAttributeByNum(t, 3, &n_init);
	const Datum num = GetAttributeByNum(t, 4, &n_num);
	const Datum stamp = GetAttributeByNum(t, 5, &n_stamp);
	if (n_init || n_num || n_stamp || DatumGetInt64(num) == 0)
		return false;
	out->initiator = DatumGetInt32(init);
	out->number = static_cast<std::uint64_t>(DatumGetInt64(num));
	out->timestamp = DatumGetTimestampTz(stamp);
	return true;
}

void resend_if_needed()
{
	if (!resend || pending == nullptr || pending_lxid != tenant_guard::pg::compat::my_lxid())
		return;
	tenant_guard::pg::guard(
	    "tenant_guard forwarded keys",
	    [](FunctionCallInfo) -> Datum {
		    send_pending();
		    return (Datum) 0;
	    },
	    nullptr);
}

void define_settings()
{
	/*
	 * Tenant keys a Citus coordinator made in the current distributed
	 * transaction (SET LOCAL by tenant_guard, through Citus). Anyone can set
	 * it: a key counts only when its MAC, keyed from this node's master key,
	 * verifies for this backend's own distributed transaction, and only when
	 * this node has no row for that tenant and version.
	 */
	DefineCustomStringVariable(
	    "tenant_guard.forwarded_keys", "Tenant keys a Citus coordinator made in the current distributed transaction.",
	    "Set by tenant_guard through Citus; each key counts only in the transaction it was "
	    "made in.",
	    &forwarded_keys, "", PGC_USERSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE, nullptr, assign_forwarded, nullptr);
}

void init()
{
	RegisterXactCallback(on_xact, nullptr);
	RegisterSubXactCallback(on_subxact, nullptr);
}

}  // namespace tenant_guard::citus::keys

// tenant_guard._citus_key_forward() returns trigger: AFTER INSERT OR UPDATE
// OR DELETE FOR EACH ROW on tenant_guard.tenant_keys. On a Citus coordinator
// with workers, a new key row (with its key) joins the transaction's
// forwarded keys, a shredded or deleted one leaves them, and the list is sent
// to the workers of the transaction.
TG_FUNCTION(tg__citus_key_forward)
{
	using namespace tenant_guard::citus::keys;
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("tenant_guard._citus_key_forward() must be called as a trigger")));
	TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
		                errmsg("tenant_guard._citus_key_forward() must be an AFTER ... FOR EACH ROW trigger")));
	const bool is_insert = TRIGGER_FIRED_BY_INSERT(td->tg_event);
	const bool is_delete = TRIGGER_FIRED_BY_DELETE(td->tg_event);
	if (!tenant_guard::citus::present())
		return PointerGetDatum(nullptr);

	// The row, copied out (plain C).
	struct Row {
		bool has_key;
		bool shredded;
		std::uint8_t org[UUID_LEN];
		std::int32_t version;
		std::uint8_t kek_id[tenant_guard::envelope::k_kek_id_len];
		std::uint8_t wrapped[tenant_guard::envelope::k_wrapped_len];
	} row;
	std::memset(&row, 0, sizeof row);
	{
		HeapTuple tup = is_insert || is_delete ? td->tg_trigtuple : td->tg_newtuple;
		TupleDesc desc = RelationGetDescr(td->tg_relation);
		bool isnull = true;
		Datum d = heap_getattr(tup, SPI_fnumber(desc, "org_id"), desc, &isnull);
		if (isnull)
			return PointerGetDatum(nullptr);
		std::memcpy(row.org, DatumGetUUIDP(d)->data, UUID_LEN);
		d = heap_getattr(tup, SPI_fnumber(desc, "version"), desc, &isnull);
		if (isnull)
			return PointerGetDatum(nullptr);
		row.version = DatumGetInt32(d);
		d = heap_getattr(tup, SPI_fnumber(desc, "state"), desc, &isnull);
		row.shredded = is_delete || isnull || strcmp(TextDatumGetCString(d), "shredded") == 0;
		bool null_key = true, null_kek = true;
		const Datum wk = heap_getattr(tup, SPI_fnumber(desc, "wrapped_key"), desc, &null_key);
		const Datum ki = heap_getattr(tup, SPI_fnumber(desc, "kek_id"), desc, &null_kek);
		if (!row.shredded && !null_key && !null_kek) {
			bytea* w = DatumGetByteaPP(wk);
			bytea* k = DatumGetByteaPP(ki);
			if (VARSIZE_ANY_EXHDR(w) == sizeof row.wrapped && VARSIZE_ANY_EXHDR(k) == sizeof row.kek_id) {
				std::memcpy(row.wrapped, VARDATA_ANY(w), sizeof row.wrapped);
				std::memcpy(row.kek_id, VARDATA_ANY(k), sizeof row.kek_id);
				row.has_key = true;
			}
		}
	}
	return tenant_guard::citus::keys::forward_row(is_insert, row.shredded, row.has_key, row.org, row.version,
	                                              row.kek_id, row.wrapped);
}
