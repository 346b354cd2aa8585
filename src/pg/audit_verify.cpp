/*
 * pg/audit_verify.cpp
 *
 * tenant_guard._verify_audit_local(org, since): the check of this node's
 * audit log behind verify_audit() (docs/audit.md, "The hash chain"). Two
 * streaming passes, each one ordered query whose rows the executor hands to
 * a receiver here as it makes them, so the work is linear in the log and
 * its memory bounded (the sort spills as any query's does). Pass 2 may run
 * with parallel workers, which then hash and sort the records (the
 * receiver, in this process, gets them merged in order):
 *
 *   1. the global seal chain, in seal number order (only the rows that
 *      carry a seal number): every row with a seal number links to the one
 *      before it (or, across a purge, to the hash the purge event kept),
 *      and a separate seal row's own hash is checked;
 *   2. the tenant chains, records ordered by (xid, org, seq, id): each
 *      record's hash recomputed, its link to the record before it in its
 *      transaction, and each chain's end: sealed by its last record, or by a
 *      seal row whose count and last hash match: pass 1 hands the separate
 *      seal rows to a sort (spilling past work_mem) in chain order, and
 *      pass 2 merges them with the chains.
 *
 * Memory: a row's detoasted values live in a context reset per row; what
 * outlives a row (the previous hash, the chain's tenant, the purge links) is
 * copied into buffers of the procedure's context, reused.
 *
 * Reported: the problem of the lowest record id (the first broken link),
 * with the number of records and seals checked. The messages are part of
 * the interface (tests and runbooks match them).
 *
 * C-style: only PostgreSQL is called (SPI, palloc); no C++ object is alive,
 * so errors leave by longjmp as in C (TG_C_FUNCTION).
 */
#include <cstdlib>
#include <cstring>

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "catalog/pg_collation_d.h"
#include "catalog/pg_operator_d.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "executor/spi.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplesort.h"
#include "utils/tuplestore.h"
}

#include "pg/boundary.hpp"
#include "pg/spi.hpp"

namespace {

constexpr int k_hash_len = 32;  // SHA-256

// The org of a chain: NULL (platform events) or its bytes.
struct Org {
	bool null;
	const char* data;
	int len;
};

// PostgreSQL's ORDER BY xid, org COLLATE "C" (NULLs last).
int compare_key(int64 xa, const Org& a, int64 xb, const Org& b)
{
	if (xa != xb)
		return xa < xb ? -1 : 1;
	if (a.null || b.null)
		return a.null == b.null ? 0 : (a.null ? 1 : -1);
	const int c = memcmp(a.data, b.data, static_cast<size_t>(Min(a.len, b.len)));
	if (c != 0)
		return c;
	return a.len == b.len ? 0 : (a.len < b.len ? -1 : 1);
}

Org org_of(Datum d, bool isnull)
{
	if (isnull)
		return Org{true, nullptr, 0};
	text* t = reinterpret_cast<text*>(pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(d))));
	return Org{false, VARDATA_ANY(t), static_cast<int>(VARSIZE_ANY_EXHDR(t))};
}

// A bytea value: NULL, or its bytes (valid while its tuple is).
struct Bytes {
	bool null;
	const char* data;
	int len;
};

Bytes bytes_of(Datum d, bool isnull)
{
	if (isnull)
		return Bytes{true, nullptr, 0};
	bytea* b = reinterpret_cast<bytea*>(pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(d))));
	return Bytes{false, VARDATA_ANY(b), static_cast<int>(VARSIZE_ANY_EXHDR(b))};
}

bool same_bytes(const Bytes& a, const Bytes& b)
{
	return !a.null && !b.null && a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
}

// A bytea value kept across rows (a hash), compared exactly, whatever its
// length: its buffer is reused and grows in `cxt` when needed.
struct Kept {
	bool null;
	int len;
	int cap;
	char* data;
};

void keep(Kept* k, const Bytes& b, MemoryContext cxt)
{
	k->null = b.null;
	k->len = b.null ? 0 : b.len;
	if (k->len > k->cap) {
		if (k->data != nullptr)
			pfree(k->data);
		k->cap = Max(k->len, 64);
		k->data = static_cast<char*>(MemoryContextAlloc(cxt, k->cap));
	}
	if (k->len > 0)
		memcpy(k->data, b.data, k->len);
}

bool same_kept(const Kept& k, const Bytes& b)
{
	return !k.null && !b.null && b.len == k.len && memcmp(k.data, b.data, k.len) == 0;
}

bool same_kept2(const Kept& a, const Kept& b)
{
	return !a.null && !b.null && a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
}

// IS NOT DISTINCT FROM
bool same_or_both_null(const Kept& k, const Bytes& b)
{
	return (k.null && b.null) || same_kept(k, b);
}

const Bytes k_zero_bytes = {false, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", k_hash_len};

// The first problem found: the lowest id; on equal ids the check listed
// first (record links, chain ends, deleted records of a seal, edited seals,
// seal links).
struct Problem {
	bool set;
	int64 id;
	int rank;
	TimestampTz at;
	char* what;
};

void note(Problem* p, MemoryContext outer, int64 id, int rank, TimestampTz at, const char* fmt, int64 arg)
{
	if (p->set && (p->id < id || (p->id == id && p->rank <= rank)))
		return;
	MemoryContext old = MemoryContextSwitchTo(outer);
	if (p->what != nullptr)
		pfree(p->what);
	p->what = psprintf(fmt, static_cast<long long>(arg));
	MemoryContextSwitchTo(old);
	p->set = true;
	p->id = id;
	p->rank = rank;
	p->at = at;
}

enum Rank { k_rank_record = 0, k_rank_chain_end = 1, k_rank_seal_deleted = 2, k_rank_seal_edited = 3, k_rank_link = 4 };

// The purge events' links: the hash of each purged seal number that a
// remaining seal links to. Read once, when the first seal needs it.
struct Purged {
	int64 seq;
	Kept hash;
};

int compare_purged(const void* a, const void* b)
{
	const Purged* x = static_cast<const Purged*>(a);
	const Purged* y = static_cast<const Purged*>(b);
	return x->seq == y->seq ? 0 : (x->seq < y->seq ? -1 : 1);
}

struct PurgedSet {
	bool loaded;
	Purged* items;
	int n;
};

// A query of the check planned for one run, with `options` (CURSOR_OPT_*).
SPIPlanPtr plan_query(const char* what, const char* sql, int nargs, Oid* types, int options)
{
	SPIPlanPtr plan = SPI_prepare_cursor(sql, nargs, types, options);
	if (plan == nullptr)
		elog(ERROR, "tenant_guard: could not plan %s: %s", what, SPI_result_code_string(SPI_result));
	return plan;
}

// A small query of the check's own, run to its end in this process only
// (planned without CURSOR_OPT_PARALLEL_OK, unlike SPI_execute): only the
// records' pass uses parallel workers. Returns SPI_execute_plan's code.
int run_serial(const char* sql, int nargs, Oid* types, Datum* values, long tcount)
{
	SPIPlanPtr plan = plan_query("a query of the audit check", sql, nargs, types, 0);
	const int rc = SPI_execute_plan(plan, values, nullptr, true, tcount);
	SPI_freeplan(plan);
	return rc;
}

void load_purged(PurgedSet* ps, MemoryContext cxt)
{
	if (ps->loaded)
		return;
	// Called while pass 1's query is running (from its row receiver): a
	// nested SPI connection, so that query's SPI state is left alone.
	tenant_guard::pg::spi_connect();
	if (run_serial("SELECT (x->>'seq')::bigint, pg_catalog.decode(x->>'hash', 'hex') "
	               "FROM tenant_guard.audit_log p, pg_catalog.jsonb_array_elements(p.detail->'links') x "
	               "WHERE p.kind = 'event' AND p.action = 'tenant_guard.audit_purge'",
	               0, nullptr, nullptr, 0) != SPI_OK_SELECT)
		elog(ERROR, "tenant_guard: could not read the audit purge events");
	const uint64 rows = SPI_processed;
	SPITupleTable* tt = SPI_tuptable;
	ps->items = static_cast<Purged*>(MemoryContextAllocZero(cxt, sizeof(Purged) * (rows + 1)));
	int k = 0;
	for (uint64 i = 0; i < rows; ++i) {
		bool n1, n2;
		Datum sq = SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &n1);
		Datum h = SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &n2);
		if (n1)
			continue;  // (a NULL seq matches no seal number)
		ps->items[k].seq = DatumGetInt64(sq);
		keep(&ps->items[k].hash, bytes_of(h, n2), cxt);
		++k;
	}
	ps->n = k;
	qsort(ps->items, static_cast<size_t>(k), sizeof(Purged), compare_purged);
	SPI_freetuptable(tt);
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "tenant_guard: could not finish reading the audit purge events");
	ps->loaded = true;
}

// The purge links of seal number seq: [first, first + count).
int purged_links(const PurgedSet* ps, int64 seq, int* first)
{
	int lo = 0, hi = ps->n;
	while (lo < hi) {
		const int mid = (lo + hi) / 2;
		if (ps->items[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	int n = 0;
	while (lo + n < ps->n && ps->items[lo + n].seq == seq)
		++n;
	return n;
}

// The hashed columns of a row, for tenant_guard._audit_hash().
#define TG_HASHED_COLUMNS                                                                                 \
	"l.id, l.xact_at, l.statement_at, l.xid, l.org, l.kind, l.seq, l.action, l.table_name, l.actor, "     \
	"l.impersonator, l.tenant_role, l.db_role, l.session_role, l.application_name, l.row_count, l.rows, " \
	"l.detail, l.prev_hash, l.seal_seq, l.seal_prev, l.images"

struct State {
	MemoryContext outer;     // the caller's: the result
	MemoryContext persist;   // the procedure's (SPI): buffers kept across rows
	MemoryContext row;       // reset after every row of a pass
	MemoryContext seal_cxt;  // reset after every seal row read back from the sort
	bool has_org;
	Org org;  // the tenant checked (has_org)
	bool has_since;
	TimestampTz since;
	bool has_cutoff;
	int64 cutoff;  // the first seal number checked when `since` is given
	int64 nseal;
	int64 nrec;
	// the separate seal rows of the chain checked (pass 1), sorted by
	// (xid, org COLLATE "C", id) for pass 2: (xid, org, id, at, records,
	// last_hash)
	Tuplesortstate* seal_rows;
	TupleTableSlot* seal_slot;  // (virtual: into the sort)
	TupleTableSlot* seal_out;   // (minimal tuples: out of it)
	Problem problem;
	PurgedSet purged;
};

// An ordered query's rows handed to each(st, values, nulls, arg) as the
// executor makes them, in st->row (reset after each row): no batch of rows
// copied into SPI's tuple table, and the query runs to its end in one go,
// so PostgreSQL may plan it with parallel workers (`parallel`; the DBA's
// max_parallel_workers_per_gather decides).
struct RowSink {
	DestReceiver pub;  // (first: the executor sees a DestReceiver)
	State* st;
	void (*each)(State*, const Datum*, const bool*, void*);
	void* arg;
};

bool sink_row(TupleTableSlot* slot, DestReceiver* self)
{
	RowSink* sink = reinterpret_cast<RowSink*>(self);
	slot_getallattrs(slot);
	MemoryContext old = MemoryContextSwitchTo(sink->st->row);
	sink->each(sink->st, slot->tts_values, slot->tts_isnull, sink->arg);
	MemoryContextSwitchTo(old);
	MemoryContextReset(sink->st->row);
	return true;
}

void sink_startup(DestReceiver*, int, TupleDesc)
{
}
void sink_nothing(DestReceiver*)
{
}

void scan_query(State* st, const char* name, const char* sql, bool parallel, int nargs, Oid* types, const Datum* values,
                const char* nulls, void (*each)(State*, const Datum*, const bool*, void*), void* arg)
{
	SPIPlanPtr plan = plan_query(name, sql, nargs, types, parallel ? CURSOR_OPT_PARALLEL_OK : 0);
	ParamListInfo params = makeParamList(nargs);
	for (int i = 0; i < nargs; ++i) {
		params->params[i].value = values[i];
		params->params[i].isnull = nulls != nullptr && nulls[i] == 'n';
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	RowSink sink;
	memset(&sink, 0, sizeof sink);
	sink.pub.receiveSlot = sink_row;
	sink.pub.rStartup = sink_startup;
	sink.pub.rShutdown = sink_nothing;
	sink.pub.rDestroy = sink_nothing;
	sink.pub.mydest = DestNone;
	sink.st = st;
	sink.each = each;
	sink.arg = arg;
	SPIExecuteOptions opts;
	memset(&opts, 0, sizeof opts);
	opts.params = params;
	opts.read_only = true;
	opts.dest = &sink.pub;
	const int rc = SPI_execute_plan_extended(plan, &opts);
	if (rc < 0)
		elog(ERROR, "tenant_guard: could not read %s: %s", name, SPI_result_code_string(rc));
	SPI_freeplan(plan);
}

// The seal chain as pass 1 reads it: the row before.
struct SealChain {
	bool have_prev;
	int64 prev_seq;
	Kept prev_hash;
};

// One row with a seal number (pass 1): (id, xact_at, seal_seq, seal_prev,
// hash, intact of a seal row, xid, org, a seal row's records and last_hash).
void seal_chain_row(State* st, const Datum* v, const bool* n, void* arg)
{
	SealChain* sc = static_cast<SealChain*>(arg);
	const int64 id = DatumGetInt64(v[0]);
	const TimestampTz at = DatumGetTimestampTz(v[1]);
	const int64 seq = DatumGetInt64(v[2]);
	const Bytes seal_prev = bytes_of(v[3], n[3]);
	const Bytes hash = bytes_of(v[4], n[4]);
	const bool seal_row = !n[5];
	if (!st->has_since || at >= st->since)
		++st->nseal;
	const bool in_range = !st->has_since || seq >= st->cutoff;
	if (in_range && !(st->has_since && seq == st->cutoff)) {
		// (seq - 1 and prev_seq + 1 wrap at the ends of bigint and then
		// link to nothing: reported)
		bool bad;
		if (sc->have_prev && sc->prev_seq == seq - 1)
			bad = !same_or_both_null(sc->prev_hash, seal_prev);
		else if (seq == 1 && !sc->have_prev)
			bad = !same_bytes(seal_prev, k_zero_bytes);
		else {
			// The seal before it was purged: the purge event holds its hash.
			load_purged(&st->purged, st->persist);
			int first;
			const int links = purged_links(&st->purged, seq - 1, &first);
			bad = !seal_prev.null && links == 0;
			for (int k = 0; k < links && !bad; ++k)
				if (!same_or_both_null(st->purged.items[first + k].hash, seal_prev))
					bad = true;
		}
		if (bad) {
			if (sc->have_prev && sc->prev_seq == seq)
				note(&st->problem, st->outer, id, k_rank_link, at, "seal %lld was inserted: its seal number is taken",
				     id);
			else
				note(&st->problem, st->outer, id, k_rank_link, at,
				     "seal %lld does not link to the seal before it (a sealed transaction was deleted or inserted)",
				     id);
		}
	}
	if (seal_row && in_range) {
		if (!DatumGetBool(v[5]))
			note(&st->problem, st->outer, id, k_rank_seal_edited, at,
			     "seal %lld was edited: its hash does not match its content", id);
		// kept for pass 2 if its transaction's records are read there
		// (`since`): (xid, org, id, at, records, last_hash)
		if (!st->has_since || at >= st->since) {
			TupleTableSlot* sl = st->seal_slot;
			static const int from[6] = {6, 7, 0, 1, 8, 9};
			ExecClearTuple(sl);
			for (int k = 0; k < 6; ++k) {
				sl->tts_values[k] = v[from[k]];
				sl->tts_isnull[k] = n[from[k]];
			}
			ExecStoreVirtualTuple(sl);
			tuplesort_puttupleslot(st->seal_rows, sl);  // (copies the tuple)
		}
	}
	sc->have_prev = true;
	sc->prev_seq = seq;
	keep(&sc->prev_hash, hash, st->persist);
}

// Pass 1: the global seal chain.
void check_seals(State* st)
{
	if (st->has_since) {
		Oid t[1] = {TIMESTAMPTZOID};
		Datum v[1] = {TimestampTzGetDatum(st->since)};
		if (run_serial("SELECT min(seal_seq) FROM tenant_guard.audit_log "
		               "WHERE seal_seq IS NOT NULL AND xact_at >= $1",
		               1, t, v, 1) != SPI_OK_SELECT ||
		    SPI_processed != 1)
			elog(ERROR, "tenant_guard: could not read the first seal since the given time");
		bool isnull;
		Datum c = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		st->has_cutoff = !isnull;
		st->cutoff = isnull ? 0 : DatumGetInt64(c);
		SPI_freetuptable(SPI_tuptable);
	}
	// With `since`, the chain is read from the first seal of a transaction
	// since then (every such seal has a number from there on); no such
	// seal, nothing to read.
	if (st->has_since && !st->has_cutoff)
		return;
	Oid ct[1] = {INT8OID};
	Datum cv[1] = {Int64GetDatum(st->cutoff)};
	SealChain sc;
	memset(&sc, 0, sizeof sc);
	// (serial: a row may read the purge events, and the seal number index
	// gives the order)
	scan_query(
	    st, "the seal chain",
	    "SELECT l.id, l.xact_at, l.seal_seq, l.seal_prev, l.hash, "
	    "CASE WHEN l.kind = 'seal' AND l.action = 'SEAL' THEN tenant_guard._audit_hash(" TG_HASHED_COLUMNS
	    ") = l.hash END, l.xid, l.org, "
	    // what a seal row says of its chain; a value not written as
	    // tenant_guard writes it (digits; hex) differs from every chain
	    "CASE WHEN l.kind = 'seal' AND l.action = 'SEAL' AND l.detail->>'records' IS NOT NULL THEN "
	    "CASE WHEN l.detail->>'records' ~ '^[0-9]{1,18}$' THEN (l.detail->>'records')::bigint ELSE -1 END END, "
	    "CASE WHEN l.kind = 'seal' AND l.action = 'SEAL' AND l.detail->>'last_hash' IS NOT NULL THEN "
	    "CASE WHEN l.detail->>'last_hash' ~ '^([0-9a-fA-F]{2})*$' THEN pg_catalog.decode(l.detail->>'last_hash', "
	    "'hex') ELSE ''::bytea END END "
	    "FROM tenant_guard.audit_log l WHERE l.seal_seq IS NOT NULL AND l.seal_seq >= $1 ORDER BY l.seal_seq, l.id",
	    false, 1, ct, cv, nullptr, seal_chain_row, &sc);
}

// The separate seal rows (a transaction whose last record was written
// before COMMIT), read back from pass 1's sort in chain order, each matched
// with its chain's end.
struct SealRows {
	bool current;  // a row is at hand (else: no more)
	// the row at hand
	int64 id;
	TimestampTz at;
	int64 xid;
	Org org;  // in org_buf
	char* org_buf;
	int org_cap;
	bool records_null;
	int64 records;
	Kept last_hash;
};

void set_org(Org* o, char** buf, int* cap, const Org& from, MemoryContext cxt)
{
	o->null = from.null;
	o->len = from.len;
	o->data = nullptr;
	if (from.null)
		return;
	if (*cap < from.len + 1) {
		if (*buf != nullptr)
			pfree(*buf);
		*cap = Max(from.len + 1, 64);
		*buf = static_cast<char*>(MemoryContextAlloc(cxt, *cap));
	}
	memcpy(*buf, from.data, from.len);
	o->data = *buf;
}

// Moves to the next seal row (or to none).
void next_seal_row(State* st, SealRows* sr)
{
	TupleTableSlot* sl = st->seal_out;
	sr->current = tuplesort_gettupleslot(st->seal_rows, true, false, sl, nullptr);
	if (!sr->current)
		return;
	slot_getallattrs(sl);
	MemoryContext old = MemoryContextSwitchTo(st->seal_cxt);
	sr->xid = DatumGetInt64(sl->tts_values[0]);
	set_org(&sr->org, &sr->org_buf, &sr->org_cap, org_of(sl->tts_values[1], sl->tts_isnull[1]), st->persist);
	sr->id = DatumGetInt64(sl->tts_values[2]);
	sr->at = DatumGetTimestampTz(sl->tts_values[3]);
	sr->records_null = sl->tts_isnull[4];
	sr->records = sr->records_null ? 0 : DatumGetInt64(sl->tts_values[4]);
	keep(&sr->last_hash, bytes_of(sl->tts_values[5], sl->tts_isnull[5]), st->persist);
	MemoryContextSwitchTo(old);
	MemoryContextReset(st->seal_cxt);
}

// A seal row whose chain has no record left (of the tenant checked).
void seal_row_unmatched(State* st, const SealRows* sr)
{
	if (st->has_org && (sr->org.null || compare_key(0, sr->org, 0, st->org) != 0))
		return;
	note(&st->problem, st->outer, sr->id, k_rank_seal_deleted, sr->at, "every record sealed by seal %lld was deleted",
	     sr->id);
}

// A tenant chain being read in pass 2.
struct Chain {
	bool open;
	int64 xid;
	Org org;  // in org_buf
	char* org_buf;
	int org_cap;
	int64 n;
	int64 last_id;
	TimestampTz at;
	Kept last_hash;
	bool last_sealed;
	// the previous record of the chain
	int64 prev_seq;
	Kept prev_hash;
	bool prev_sealed;
};

// The end of a chain: sealed by its last record, or by seal rows of its
// transaction and tenant that count its records and hold its last hash.
// The seal rows before it in chain order have no chain.
void end_chain(State* st, Chain* c, SealRows* sr)
{
	while (sr->current && compare_key(sr->xid, sr->org, c->xid, c->org) < 0) {
		seal_row_unmatched(st, sr);
		next_seal_row(st, sr);
	}
	bool found = false;
	while (sr->current && compare_key(sr->xid, sr->org, c->xid, c->org) == 0) {
		found = true;
		if (!c->last_sealed) {
			// (a NULL count or hash, as in SQL, differs from nothing)
			const bool count_differs = !sr->records_null && sr->records != c->n;
			const bool hash_differs =
			    !sr->last_hash.null && !c->last_hash.null && !same_kept2(sr->last_hash, c->last_hash);
			if (count_differs || hash_differs)
				note(&st->problem, st->outer, c->last_id, k_rank_chain_end, c->at,
				     "the sealed chain of the transaction of record %lld does not end where its seal says (a record "
				     "was deleted or inserted at its end)",
				     c->last_id);
		}
		next_seal_row(st, sr);
	}
	if (!c->last_sealed && !found)
		note(&st->problem, st->outer, c->last_id, k_rank_chain_end, c->at,
		     "records up to %lld are not sealed (inserted after their transaction committed, or the sealing record "
		     "was deleted)",
		     c->last_id);
	c->open = false;
}

// Pass 2's state: the chain being read and the seal rows merged with it.
struct Chains {
	Chain c;
	SealRows sr;
};

// One record (pass 2): (id, xact_at, xid, org, seq, prev_hash, seal_seq,
// hash, intact).
void chain_row(State* st, const Datum* v, const bool* n, void* arg)
{
	Chains* ch = static_cast<Chains*>(arg);
	Chain& c = ch->c;
	const int64 id = DatumGetInt64(v[0]);
	const TimestampTz at = DatumGetTimestampTz(v[1]);
	const int64 xid = DatumGetInt64(v[2]);
	const Org org = org_of(v[3], n[3]);
	const int64 seq = DatumGetInt64(v[4]);
	const Bytes prev_hash = bytes_of(v[5], n[5]);
	const bool sealed = !n[6];
	const Bytes hash = bytes_of(v[7], n[7]);
	const bool intact = n[8] || DatumGetBool(v[8]);
	const bool same_chain = c.open && compare_key(c.xid, c.org, xid, org) == 0;
	if (c.open && !same_chain)
		end_chain(st, &c, &ch->sr);
	if (!c.open) {
		c.open = true;
		c.xid = xid;
		set_org(&c.org, &c.org_buf, &c.org_cap, org, st->persist);
		c.n = 0;
		c.last_id = id;
		c.at = at;
	}
	++st->nrec;
	// the link to the record before it in its chain (prev_seq + 1 wraps at
	// the end of bigint: reported)
	const int64 want = (same_chain ? c.prev_seq : 0) + 1;
	const bool links = same_chain ? same_kept(c.prev_hash, prev_hash) : same_bytes(prev_hash, k_zero_bytes);
	if (!intact)
		note(&st->problem, st->outer, id, k_rank_record, at,
		     "record %lld was edited: its hash does not match its content", id);
	else if (seq == want - 1)
		note(&st->problem, st->outer, id, k_rank_record, at, "record %lld was inserted: its chain position is taken",
		     id);
	else if (seq > want)
		note(&st->problem, st->outer, id, k_rank_record, at, "a record before %lld in its transaction was deleted", id);
	else if (seq != want || !links)
		note(&st->problem, st->outer, id, k_rank_record, at,
		     "record %lld does not link to the record before it (inserted or deleted record)", id);
	else if (same_chain && c.prev_sealed)
		note(&st->problem, st->outer, id, k_rank_record, at,
		     "record %lld was inserted after the record that sealed its transaction", id);
	++c.n;
	c.last_id = Max(c.last_id, id);
	c.at = Max(c.at, at);
	keep(&c.last_hash, hash, st->persist);
	c.last_sealed = sealed;
	c.prev_seq = seq;
	keep(&c.prev_hash, hash, st->persist);
	c.prev_sealed = sealed;
}

// Pass 2: the tenant chains of the records checked.
void check_records(State* st, Datum org_key, Datum since)
{
	Oid t[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum a[2] = {org_key, since};
	char nulls[2] = {st->has_org ? ' ' : 'n', st->has_since ? ' ' : 'n'};
	Chains ch;
	memset(&ch, 0, sizeof ch);
	tuplesort_performsort(st->seal_rows);
	next_seal_row(st, &ch.sr);
	// (parallel: the records are hashed and sorted by the workers, the rows
	// merged in order into this one)
	scan_query(st, "the tenant chains",
	           "SELECT l.id, l.xact_at, l.xid, l.org, l.seq, l.prev_hash, l.seal_seq, l.hash, "
	           "tenant_guard._audit_hash(" TG_HASHED_COLUMNS ") = l.hash "
	           "FROM tenant_guard.audit_log l "
	           "WHERE l.kind <> 'seal' AND ($1::text IS NULL OR l.org = $1) "
	           "AND ($2::timestamptz IS NULL OR l.xact_at >= $2) "
	           "ORDER BY l.xid, l.org COLLATE \"C\", l.seq, l.id",
	           true, 2, t, a, nulls, chain_row, &ch);
	if (ch.c.open)
		end_chain(st, &ch.c, &ch.sr);
	// Seal rows after the last chain have no chain.
	while (ch.sr.current) {
		seal_row_unmatched(st, &ch.sr);
		next_seal_row(st, &ch.sr);
	}
}

}  // namespace

// tenant_guard._verify_audit_local(org text, since timestamptz) returns
// TABLE (ok, records, seals, broken_id, broken_at, problem): one row.
// SECURITY DEFINER (the log's owner reads it whole); see the file comment.
TG_C_FUNCTION(tg__verify_audit_local)
{
	ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
	TupleDesc desc;
	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "tenant_guard._verify_audit_local: the result type is not a row type");
	if (rsinfo == nullptr || !IsA(rsinfo, ReturnSetInfo) || !(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
		                errmsg("tenant_guard._verify_audit_local() must be called in a FROM clause")));
	State st;
	memset(&st, 0, sizeof st);
	st.outer = CurrentMemoryContext;
	st.has_since = !PG_ARGISNULL(1);
	st.since = st.has_since ? PG_GETARG_TIMESTAMPTZ(1) : 0;
	st.cutoff = PG_INT64_MIN;  // without `since`: the whole chain
	Datum org_key = (Datum) 0;
	const tenant_guard::pg::SpiScope scope = tenant_guard::pg::spi_begin();
	if (!PG_ARGISNULL(0)) {
		// the tenant's key as the log holds it (a uuid in lower case, a
		// canonical integer, or the string)
		Oid t[1] = {TEXTOID};
		Datum v[1] = {PG_GETARG_DATUM(0)};
		if (SPI_execute_with_args("SELECT tenant_guard._tenant_key($1, false)", 1, t, v, nullptr, true, 1) !=
		        SPI_OK_SELECT ||
		    SPI_processed != 1)
			elog(ERROR, "tenant_guard: could not read the tenant key");
		bool isnull;
		Datum k = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull) {
			st.has_org = true;
			org_key = PointerGetDatum(PG_DETOAST_DATUM_COPY(k));  // (in the procedure's context)
			st.org = org_of(org_key, false);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	st.persist = CurrentMemoryContext;  // the procedure's, freed by SPI_finish
	st.row = AllocSetContextCreate(st.persist, "tenant_guard verify_audit row", ALLOCSET_SMALL_SIZES);
	st.seal_cxt = AllocSetContextCreate(st.persist, "tenant_guard verify_audit seal row", ALLOCSET_SMALL_SIZES);
	TupleDesc sd = CreateTemplateTupleDesc(6);
	TupleDescInitEntry(sd, 1, "xid", INT8OID, -1, 0);
	TupleDescInitEntry(sd, 2, "org", TEXTOID, -1, 0);
	TupleDescInitEntry(sd, 3, "id", INT8OID, -1, 0);
	TupleDescInitEntry(sd, 4, "at", TIMESTAMPTZOID, -1, 0);
	TupleDescInitEntry(sd, 5, "records", INT8OID, -1, 0);
	TupleDescInitEntry(sd, 6, "last_hash", BYTEAOID, -1, 0);
	// the chains' order: ORDER BY xid, org COLLATE "C", id (NULLs last)
	AttrNumber keys[3] = {1, 2, 3};
	Oid ops[3] = {Int8LessOperator, TextLessOperator, Int8LessOperator};
	Oid colls[3] = {InvalidOid, C_COLLATION_OID, InvalidOid};
	bool nulls_first[3] = {false, false, false};
	st.seal_rows = tuplesort_begin_heap(sd, 3, keys, ops, colls, nulls_first, work_mem, nullptr, TUPLESORT_NONE);
	st.seal_slot = MakeSingleTupleTableSlot(sd, &TTSOpsVirtual);
	st.seal_out = MakeSingleTupleTableSlot(sd, &TTSOpsMinimalTuple);
	check_seals(&st);
	check_records(&st, org_key, st.has_since ? TimestampTzGetDatum(st.since) : (Datum) 0);
	tuplesort_end(st.seal_rows);
	ExecDropSingleTupleTableSlot(st.seal_slot);
	ExecDropSingleTupleTableSlot(st.seal_out);
	tenant_guard::pg::spi_end(scope);

	Datum out[6];
	bool outnull[6] = {false, false, false, !st.problem.set, !st.problem.set, !st.problem.set};
	out[0] = BoolGetDatum(!st.problem.set);
	out[1] = Int64GetDatum(st.nrec);
	out[2] = Int64GetDatum(st.nseal);
	out[3] = st.problem.set ? Int64GetDatum(st.problem.id) : (Datum) 0;
	out[4] = st.problem.set ? TimestampTzGetDatum(st.problem.at) : (Datum) 0;
	out[5] = st.problem.set ? CStringGetTextDatum(st.problem.what) : (Datum) 0;
	MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	Tuplestorestate* ts = tuplestore_begin_heap(true, false, work_mem);
	desc = CreateTupleDescCopy(desc);
	tuplestore_putvalues(ts, desc, out, outnull);
	MemoryContextSwitchTo(old);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = ts;
	rsinfo->setDesc = desc;
	return (Datum) 0;
}
