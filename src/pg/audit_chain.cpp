/*
 * pg/audit_chain.cpp
 *
 * The chains of a transaction's records (one per tenant, per subtransaction
 * level), their seals at COMMIT, linked into the one global chain of seals,
 * and that chain's head in shared memory (with shared_preload_libraries).
 * The transaction callbacks that flush, seal and forget live here.
 */
#include <cstdio>
#include <cstring>
#include <string>

#include "core/encoding.hpp"
#include "pg/audit.hpp"

extern "C" {
#include "postgres.h"
#include "common/hashfn.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/toast_compression.h"
#include "access/toast_internals.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

#include "pg/audit_log.hpp"

namespace tg = tenant_guard;

namespace tenant_guard::audit_log {

XactState xs;
bool fail_after_seal = false;

namespace {

bool callbacks_registered = false;

// Seals this transaction chained through shared memory (see the shared
// memory section): if it fails after that, their numbers become orphans.
struct SealedNote {
	int64 seq;
	uint8 prev[32];
	uint8 hash[32];
};
SealedNote* sealed_notes = nullptr;  // TopTransactionContext
int nsealed_notes = 0;

SPIPlanPtr last_seal_plan = nullptr;
SPIPlanPtr prepared_writers_plan = nullptr;

// Advisory lock field4 for the seal lock (distinct from the 1 and 2 used by
// the SQL advisory lock functions, so no user lock can collide with it).
constexpr uint16 k_lock_field4 = 0x7467;

}  // namespace

void reset_xact_state()
{
	forget_packs();
	hash_states_reset();
	xs = XactState();
	sealed_notes = nullptr;
	nsealed_notes = 0;
}

namespace {

uint32 org_hash(const char* org)
{
	return org ? hash_bytes(reinterpret_cast<const unsigned char*>(org), static_cast<int>(strlen(org))) : 0;
}

// Rebuilds the hash buckets of the groups with at least twice as many buckets as groups.
void rehash_groups(int nbuckets)
{
	int* b = static_cast<int*>(MemoryContextAlloc(TopTransactionContext, sizeof(int) * nbuckets));
	for (int i = 0; i < nbuckets; ++i)
		b[i] = -1;
	if (xs.group_buckets)
		pfree(xs.group_buckets);
	xs.group_buckets = b;
	xs.ngroup_buckets = nbuckets;
	for (int i = 0; i < xs.ngroups; ++i) {
		int* head = &b[xs.groups[i].hash & static_cast<uint32>(nbuckets - 1)];
		xs.groups[i].hnext = *head;
		*head = i;
	}
}

}  // namespace

// The chain of a tenant in this transaction (a hash lookup: a statement can
// write records of a thousand tenants).
Group* find_group(const char* org, bool create)
{
	const uint32 hash = org_hash(org);
	if (xs.ngroup_buckets > 0)
		for (int i = xs.group_buckets[hash & static_cast<uint32>(xs.ngroup_buckets - 1)]; i >= 0;
		     i = xs.groups[i].hnext) {
			Group* g = &xs.groups[i];
			if (g->hash == hash &&
			    ((g->org == nullptr && org == nullptr) || (g->org && org && strcmp(g->org, org) == 0)))
				return g;
		}
	if (!create)
		return nullptr;
	if (xs.ngroups == xs.maxgroups) {
		int n = xs.maxgroups ? xs.maxgroups * 2 : 8;
		xs.groups = static_cast<Group*>(xs.groups ? repalloc(xs.groups, sizeof(Group) * n)
		                                          : MemoryContextAlloc(TopTransactionContext, sizeof(Group) * n));
		xs.maxgroups = n;
	}
	if (2 * (xs.ngroups + 1) > xs.ngroup_buckets)
		rehash_groups(xs.ngroup_buckets ? xs.ngroup_buckets * 2 : 16);
	const int gi = xs.ngroups++;
	Group* g = &xs.groups[gi];
	g->org = org ? MemoryContextStrdup(TopTransactionContext, org) : nullptr;
	g->levels = nullptr;
	g->nlevels = g->maxlevels = 0;
	g->hash = hash;
	int* head = &xs.group_buckets[hash & static_cast<uint32>(xs.ngroup_buckets - 1)];
	g->hnext = *head;
	*head = gi;
	return g;
}

// The level of the current subtransaction, created from the one below.
Level* writable_level(Group* g)
{
	SubTransactionId cur = GetCurrentSubTransactionId();
	if (g->nlevels > 0 && g->levels[g->nlevels - 1].subid == cur)
		return &g->levels[g->nlevels - 1];
	if (g->nlevels == g->maxlevels) {
		int n = g->maxlevels ? g->maxlevels * 2 : 2;
		g->levels = static_cast<Level*>(g->levels ? repalloc(g->levels, sizeof(Level) * n)
		                                          : MemoryContextAlloc(TopTransactionContext, sizeof(Level) * n));
		g->maxlevels = n;
	}
	Level* l = &g->levels[g->nlevels];
	if (g->nlevels > 0)
		*l = g->levels[g->nlevels - 1];
	else {
		l->count = 0;
		memset(l->last, 0, sizeof l->last);
		l->pending_v = nullptr;
		l->pending_n = nullptr;
		l->pending_hash = 0;
	}
	l->subid = cur;
	++g->nlevels;
	return l;
}

namespace {

void subxact_callback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void*)
{
	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	packs_at_subxact_end(event == SUBXACT_EVENT_ABORT_SUB, mySubid, parentSubid);
	for (int i = 0; i < xs.ngroups; ++i) {
		Group* g = &xs.groups[i];
		if (g->nlevels == 0 || g->levels[g->nlevels - 1].subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB) {
			forget_pending(g, g->nlevels - 1);
			--g->nlevels;  // its records are gone with it
		} else if (g->nlevels >= 2 && g->levels[g->nlevels - 2].subid == parentSubid) {
			// The parent's pending record, if this level replaced it, was
			// written (and kept for a rollback of this level): forgotten now.
			if (g->levels[g->nlevels - 2].pending_v != g->levels[g->nlevels - 1].pending_v)
				forget_pending(g, g->nlevels - 2);
			g->levels[g->nlevels - 2] = g->levels[g->nlevels - 1];
			g->levels[g->nlevels - 2].subid = parentSubid;
			--g->nlevels;
		} else {
			g->levels[g->nlevels - 1].subid = parentSubid;
		}
	}
}

// ---------------------------------------------------------------------------
// The head of the seal chain in shared memory (with shared_preload_libraries):
// the serialized step at COMMIT is then a few microseconds under an LWLock,
// not held while the commit is written. A transaction that fails after its
// seals were chained (rare: an error in the last steps of COMMIT) leaves its
// seal numbers as orphans here; the next transaction that seals writes them
// as VOID seals (same number, same hashes), so the chain has no hole.
// Without preloading, the chain head is read from the table under a
// transaction-scoped lock held until the commit is done (correct, slower).
// ---------------------------------------------------------------------------

// One head per database that writes audit records (about 4.7 kB each).
// DROP DATABASE leaves its slot behind; reclaim_dropped_heads() frees it
// when a database needs one and none is free.
constexpr int k_max_heads = 128;
constexpr int k_max_orphans = 64;

struct Orphan {
	int64 seq;
	uint8 prev[32];
	uint8 hash[32];
	bool crashed;  // numbered by a transaction that a crash ended (read_seal_holes)
	// Numbered by a transaction that was then prepared (two-phase commit):
	// its xid. Such a number is no orphan unless that transaction is rolled
	// back; while it is prepared it stays in the list, once committed it goes.
	TransactionId prepared_xid;
};

struct Head {
	Oid db;
	Oid log;
	bool valid;
	int64 seq;
	uint8 hash[32];
	int norphans;
	Orphan orphans[k_max_orphans];
};

struct AuditShared {
	LWLock* lock;
	Head heads[k_max_heads];
};

AuditShared* shared = nullptr;
shmem_request_hook_type prev_shmem_request = nullptr;
shmem_startup_hook_type prev_shmem_startup = nullptr;

void shmem_request()
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(sizeof(AuditShared));
	RequestNamedLWLockTranche("tenant_guard_audit", 1);
}

void shmem_startup()
{
	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	bool found;
	shared = static_cast<AuditShared*>(ShmemInitStruct("tenant_guard audit", sizeof(AuditShared), &found));
	if (!found) {
		memset(shared, 0, sizeof(AuditShared));
		shared->lock = &(GetNamedLWLockTranche("tenant_guard_audit"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

// This database's head slot (caller holds the lock exclusively); nullptr when full.
Head* head_slot()
{
	Head* free_slot = nullptr;
	for (int i = 0; i < k_max_heads; ++i) {
		Head* h = &shared->heads[i];
		if (h->db == MyDatabaseId && h->log == xs.log_oid)
			return h;
		if (h->db == MyDatabaseId && h->log != xs.log_oid) {
			// the extension was dropped and created again: a new log
			memset(h, 0, sizeof(Head));
			h->db = MyDatabaseId;
			h->log = xs.log_oid;
			return h;
		}
		if (free_slot == nullptr && !OidIsValid(h->db))
			free_slot = h;
	}
	if (free_slot != nullptr) {
		memset(free_slot, 0, sizeof(Head));
		free_slot->db = MyDatabaseId;
		free_slot->log = xs.log_oid;
	}
	return free_slot;
}

// Frees the head slots of databases that no longer exist. The catalog is
// read without the lock held; a slot is freed only if it still names the
// dropped database.
void reclaim_dropped_heads()
{
	Oid dbs[k_max_heads];
	int n = 0;
	LWLockAcquire(shared->lock, LW_SHARED);
	bool full = true;
	for (int i = 0; i < k_max_heads; ++i) {
		const Oid db = shared->heads[i].db;
		if (!OidIsValid(db) || db == MyDatabaseId)
			full = false;
		else
			dbs[n++] = db;
	}
	LWLockRelease(shared->lock);
	if (!full)
		return;
	int ngone = 0;
	for (int j = 0; j < n; ++j)
		if (!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dbs[j])))
			dbs[ngone++] = dbs[j];
	if (ngone == 0)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < k_max_heads; ++i)
		for (int j = 0; j < ngone; ++j)
			if (shared->heads[i].db == dbs[j])
				memset(&shared->heads[i], 0, sizeof(Head));
	LWLockRelease(shared->lock);
}

// This transaction's seal numbers onto the head's list of orphans: after a
// failed COMMIT (no xid: the next sealer writes them as VOID seals), or after
// PREPARE TRANSACTION (its xid: VOID only once it was rolled back).
void remember_sealed(TransactionId prepared_xid)
{
	if (shared == nullptr || nsealed_notes == 0 || !OidIsValid(xs.log_oid))
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	Head* h = head_slot();
	for (int i = 0; h != nullptr && i < nsealed_notes && h->norphans < k_max_orphans; ++i) {
		Orphan* o = &h->orphans[h->norphans++];
		o->seq = sealed_notes[i].seq;
		memcpy(o->prev, sealed_notes[i].prev, 32);
		memcpy(o->hash, sealed_notes[i].hash, 32);
		o->crashed = false;
		o->prepared_xid = prepared_xid;
	}
	LWLockRelease(shared->lock);
}

void remember_orphans()
{
	remember_sealed(InvalidTransactionId);
}

// The transaction being prepared (its xid, taken at PRE_PREPARE).
TransactionId preparing_xid = InvalidTransactionId;

// After PREPARE TRANSACTION (Citus commits writes to several workers so).
void remember_prepared()
{
	const TransactionId xid = preparing_xid;
	preparing_xid = InvalidTransactionId;
	if (TransactionIdIsValid(xid))
		remember_sealed(xid);
}

// What became of a prepared transaction: 'p' still prepared, 'c' committed,
// 'a' rolled back (or gone with a crash).
char prepared_outcome(TransactionId xid)
{
	if (TransactionIdIsInProgress(xid))
		return 'p';
	return TransactionIdDidCommit(xid) ? 'c' : 'a';
}

// The last seal in the table (latest snapshot), or the last purged one.
void read_last_seal(int64* seq, uint8* hash)
{
	*seq = 0;
	memset(hash, 0, 32);
	if (last_seal_plan == nullptr)
		last_seal_plan = prepare("SELECT seal_seq, hash FROM tenant_guard.audit_log WHERE seal_seq IS NOT NULL "
		                         "ORDER BY seal_seq DESC LIMIT 1",
		                         0, nullptr);
	if (SPI_execute_snapshot(last_seal_plan, nullptr, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 1) !=
	    SPI_OK_SELECT)
		elog(ERROR, "tenant_guard: could not read the last audit seal");
	if (SPI_processed != 1) {
		// No seal in the log: continue after the last purged seal, if any.
		if (SPI_execute_snapshot(
		        SPI_prepare("SELECT (detail->>'last_seal_seq')::bigint, "
		                    "pg_catalog.decode(detail->>'last_seal_hash', 'hex') FROM tenant_guard.audit_log "
		                    "WHERE kind = 'event' AND action = 'tenant_guard.audit_purge' "
		                    "AND detail ? 'last_seal_seq' ORDER BY (detail->>'last_seal_seq')::bigint DESC LIMIT 1",
		                    0, nullptr),
		        nullptr, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 1) != SPI_OK_SELECT ||
		    SPI_processed != 1)
			return;
	}
	bool n1, n2;
	Datum sd = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &n1);
	Datum hd = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &n2);
	if (n1 || n2)
		return;
	bytea* ph = DatumGetByteaPCopy(hd);
	if (VARSIZE_ANY_EXHDR(ph) != 32)
		return;
	*seq = DatumGetInt64(sd);
	memcpy(hash, VARDATA_ANY(ph), 32);
}

// Before the head is read from the table (after a restart): a transaction
// prepared before it that wrote into the log (its locks on a partition of
// the log are kept while it is prepared) may hold seal numbers this server
// cannot see until it is committed or rolled back; a head read now would
// hand them out again, or fill them with VOID seals. Sealing waits for it.
void refuse_while_prepared_writers()
{
	if (prepared_writers_plan == nullptr) {
		Oid types[1] = {REGCLASSOID};
		prepared_writers_plan =
		    prepare("SELECT count(*) FROM pg_catalog.pg_locks l "
		            "WHERE l.locktype = 'relation' AND l.pid IS NULL AND l.database = "
		            "(SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()) "
		            "AND l.relation IN (SELECT t.relid FROM pg_catalog.pg_partition_tree($1) t)",
		            1, types);
	}
	Datum arg[1] = {ObjectIdGetDatum(xs.log_oid)};
	bool isnull;
	if (SPI_execute_plan(prepared_writers_plan, arg, nullptr, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "tenant_guard: could not read the locks of prepared transactions");
	const int64 n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (!isnull && n > 0)
		ereport(
		    ERROR,
		    (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
		     errmsg("cannot seal tenant_guard audit records while a prepared transaction that wrote some is pending"),
		     errdetail("A transaction prepared before the server started may hold seal numbers of the audit chain, "
		               "which this server cannot read until it is committed or rolled back."),
		     errhint("Commit or roll back the transactions listed in pg_prepared_xacts (Citus recovers its own "
		             "within citus.recover_2pc_interval), then retry.")));
}

// Seal numbers that a crash left without their transaction: a backend that
// took numbers from the head in shared memory and died before its commit was
// written, while other backends went on sealing (linking to its hashes) until
// the postmaster reset them. After the restart the head is read again from
// the table, and these holes, all near its end, become VOID seals: the first
// links to the seal before the hole, the last carries the hash the seal after
// the hole links to, and the ones between (a transaction takes one number per
// tenant chain) link through fixed filler hashes. VOID hashes are taken as
// they are by verify_audit() (the sealed content is gone).
int read_seal_holes(int64 last, Orphan* out, int max)
{
	if (last <= 1)
		return 0;
	Oid types[1] = {INT8OID};
	SPIPlanPtr plan = SPI_prepare(
	    "WITH s AS (SELECT seal_seq, seal_prev, lag(seal_seq) OVER w AS pseq, lag(hash) OVER w AS phash "
	    "           FROM tenant_guard.audit_log WHERE seal_seq IS NOT NULL AND seal_seq > $1 "
	    "           WINDOW w AS (ORDER BY seal_seq, id)) "
	    "SELECT g, CASE WHEN g = s.pseq + 1 THEN s.phash "
	    "               ELSE pg_catalog.sha256(pg_catalog.convert_to('tenant_guard void ' || (g - 1), 'UTF8')) END, "
	    "          CASE WHEN g = s.seal_seq - 1 THEN s.seal_prev "
	    "               ELSE pg_catalog.sha256(pg_catalog.convert_to('tenant_guard void ' || g, 'UTF8')) END "
	    "FROM s, pg_catalog.generate_series(s.pseq + 1, s.seal_seq - 1) g "
	    "WHERE s.pseq IS NOT NULL AND s.seal_seq > s.pseq + 1 "
	    // a seal retention purged (its partition dropped) is no hole: the
	    // purge recorded the link
	    "  AND NOT EXISTS (SELECT 1 FROM tenant_guard.audit_log p, pg_catalog.jsonb_array_elements(p.detail->'links') "
	    "x "
	    "                  WHERE p.kind = 'event' AND p.action = 'tenant_guard.audit_purge' "
	    "                    AND (x->>'seq')::bigint = g) "
	    "ORDER BY g",
	    1, types);
	if (plan == nullptr)
		elog(ERROR, "tenant_guard: could not prepare the audit seal hole check");
	// The numbers in flight at a crash: at most one per tenant chain of each
	// backend; 4096 below the last seal is far more than that.
	Datum args[1] = {Int64GetDatum(last > 4096 ? last - 4096 : 0)};
	if (SPI_execute_snapshot(plan, args, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, max) !=
	    SPI_OK_SELECT)
		elog(ERROR, "tenant_guard: could not read the audit seal chain");
	int n = 0;
	for (uint64 i = 0; i < SPI_processed && n < max; ++i) {
		bool n1, n2, n3;
		Datum sd = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &n1);
		Datum pd = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &n2);
		Datum hd = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &n3);
		if (n1 || n2 || n3)
			continue;
		bytea* pb = DatumGetByteaPP(pd);
		bytea* hb = DatumGetByteaPP(hd);
		if (VARSIZE_ANY_EXHDR(pb) != 32 || VARSIZE_ANY_EXHDR(hb) != 32)
			continue;
		Orphan* o = &out[n++];
		o->seq = DatumGetInt64(sd);
		memcpy(o->prev, VARDATA_ANY(pb), 32);
		memcpy(o->hash, VARDATA_ANY(hb), 32);
		o->crashed = true;
		o->prepared_xid = InvalidTransactionId;
	}
	SPI_freeplan(plan);
	return n;
}

Jsonb* seal_detail(const Level* l)
{
	char buf[160];
	char hex[65];
	{  // the std::string is gone before PostgreSQL is called
		const std::string s = tg::encoding::hex_encode(l->last, sizeof l->last);
		snprintf(hex, sizeof hex, "%s", s.c_str());
	}
	snprintf(buf, sizeof buf, "{\"records\": " INT64_FORMAT ", \"last_hash\": \"%s\"}", l->count, hex);
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf)));
}

// The seals: one per tenant chain of this transaction, linked into the
// global chain.
void seal_transaction()
{
	int live = 0;
	for (int i = 0; i < xs.ngroups; ++i)
		if (xs.groups[i].nlevels > 0 && xs.groups[i].levels[xs.groups[i].nlevels - 1].count > 0)
			++live;
	if (live == 0)
		return;
	open_partition();
	xs.sealing = true;
	// What sealing allocates goes with the transaction (at COMMIT of a
	// procedure, the current context may outlive it).
	MemoryContext seal_old = MemoryContextSwitchTo(TopTransactionContext);
	Record proto;
	set_db_roles(proto);
	const char* app = GetConfigOption("application_name", true, false);
	proto.application_name = app && *app ? app : nullptr;
	// At COMMIT the statement's snapshot is gone; the seal queries (SPI,
	// when the head is read from the table) and the log's TOAST need one.
	PushActiveSnapshot(GetTransactionSnapshot());
	WriterState w = enter_writer();

	// Each chain's seal carrier, prepared before the serialized step: its
	// pending record, or (when the last record is already in the table,
	// after a savepoint rolled back) a seal row naming the count and last hash.
	Datum** vals = static_cast<Datum**>(palloc(sizeof(Datum*) * live));
	bool** nulls = static_cast<bool**>(palloc(sizeof(bool*) * live));
	int* begun = static_cast<int*>(palloc0(sizeof(int) * live));
	int k = 0;
	for (int i = 0; i < xs.ngroups; ++i) {
		Group* g = &xs.groups[i];
		if (g->nlevels == 0 || g->levels[g->nlevels - 1].count == 0)
			continue;
		Level* l = &g->levels[g->nlevels - 1];
		if (l->pending_v != nullptr) {
			vals[k] = l->pending_v;
			nulls[k] = l->pending_n;
			begun[k] = l->pending_hash;
		} else {
			Record r = proto;
			r.kind = "seal";
			r.action = "SEAL";
			r.org = g->org;
			r.table_name = nullptr;
			r.detail = seal_detail(l);
			vals[k] = static_cast<Datum*>(palloc(sizeof(Datum) * k_ncols));
			nulls[k] = static_cast<bool*>(palloc(sizeof(bool) * k_ncols));
			fill_values(r, nextval_internal(xs.seq_oid, false), 0, zero_hash(), vals[k], nulls[k]);
		}
		++k;
	}

	Orphan* voids = nullptr;
	int nvoids = 0;
	if (shared != nullptr) {
		// Load this database's head once (after a restart) from the table.
		LWLockAcquire(shared->lock, LW_SHARED);
		bool loaded = false;
		TransactionId pxids[k_max_orphans];
		int npxids = 0;
		for (int i = 0; i < k_max_heads; ++i)
			if (shared->heads[i].db == MyDatabaseId && shared->heads[i].log == xs.log_oid && shared->heads[i].valid) {
				loaded = true;
				for (int j = 0; j < shared->heads[i].norphans; ++j)
					if (TransactionIdIsValid(shared->heads[i].orphans[j].prepared_xid))
						pxids[npxids++] = shared->heads[i].orphans[j].prepared_xid;
			}
		LWLockRelease(shared->lock);
		// The outcome of each prepared transaction that holds seal numbers,
		// looked up without the lock (an outcome, once known, never changes).
		char pout[k_max_orphans];
		for (int j = 0; j < npxids; ++j)
			pout[j] = prepared_outcome(pxids[j]);
		int64 tseq = 0;
		uint8 thash[32];
		memset(thash, 0, sizeof thash);
		Orphan* holes = nullptr;
		int nholes = 0;
		if (!loaded) {
			writer_spi(w);
			refuse_while_prepared_writers();
			reclaim_dropped_heads();
			read_last_seal(&tseq, thash);
			holes = static_cast<Orphan*>(palloc(sizeof(Orphan) * k_max_orphans));
			nholes = read_seal_holes(tseq, holes, k_max_orphans);
		}
		sealed_notes = static_cast<SealedNote*>(
		    MemoryContextAlloc(TopTransactionContext, sizeof(SealedNote) * (live + k_max_orphans)));
		nsealed_notes = 0;
		voids = static_cast<Orphan*>(palloc(sizeof(Orphan) * k_max_orphans));
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		Head* h = head_slot();
		if (h != nullptr) {
			if (!h->valid) {
				// Loaded from the table: no transaction holds a number of
				// this head yet, so every hole is one a crash left.
				h->seq = tseq;
				memcpy(h->hash, thash, 32);
				h->valid = true;
				for (int j = 0; j < nholes && h->norphans < k_max_orphans; ++j)
					h->orphans[h->norphans++] = holes[j];
			}
			// Orphans become VOID seals now; the numbers of a prepared
			// transaction only once it was rolled back (kept while it is
			// prepared, or when its outcome was not looked up above;
			// forgotten once it committed: its seals are in the table).
			int keep = 0;
			for (int j = 0; j < h->norphans; ++j) {
				const Orphan& o = h->orphans[j];
				char outcome = 'a';
				if (TransactionIdIsValid(o.prepared_xid)) {
					outcome = 'p';
					for (int m = 0; m < npxids; ++m)
						if (pxids[m] == o.prepared_xid)
							outcome = pout[m];
				}
				if (outcome == 'a')
					voids[nvoids++] = o;
				else if (outcome == 'p')
					h->orphans[keep++] = o;
			}
			h->norphans = keep;
			for (int j = 0; j < live; ++j) {
				vals[j][c_seal_seq] = Int64GetDatum(++h->seq);
				nulls[j][c_seal_seq] = false;
				vals[j][c_seal_prev] = PointerGetDatum(hash_bytea(h->hash));
				nulls[j][c_seal_prev] = false;
				bytea* hh = hash_finish(begun[j], vals[j], nulls[j]);
				vals[j][c_hash] = PointerGetDatum(hh);
				nulls[j][c_hash] = false;
				SealedNote* sn = &sealed_notes[nsealed_notes++];
				sn->seq = h->seq;
				memcpy(sn->prev, h->hash, 32);
				memcpy(sn->hash, VARDATA(hh), 32);
				memcpy(h->hash, VARDATA(hh), 32);
			}
			// Orphans this transaction writes become its own if it fails too.
			for (int j = 0; j < nvoids; ++j) {
				SealedNote* sn = &sealed_notes[nsealed_notes++];
				sn->seq = voids[j].seq;
				memcpy(sn->prev, voids[j].prev, 32);
				memcpy(sn->hash, voids[j].hash, 32);
			}
		}
		LWLockRelease(shared->lock);
		if (h == nullptr)
			ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			                errmsg("too many databases use the tenant_guard audit log"),
			                errdetail("At most %d databases of one server can use it at once.", k_max_heads)));
	} else {
		// Without preloading: the head from the table, under a lock held
		// until this transaction's commit is done.
		LOCKTAG tag;
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(xs.log_oid), 0, k_lock_field4);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
		int64 seq;
		uint8 prev[32];
		writer_spi(w);
		read_last_seal(&seq, prev);
		for (int j = 0; j < live; ++j) {
			vals[j][c_seal_seq] = Int64GetDatum(++seq);
			nulls[j][c_seal_seq] = false;
			vals[j][c_seal_prev] = PointerGetDatum(hash_bytea(prev));
			nulls[j][c_seal_prev] = false;
			bytea* hh = hash_finish(begun[j], vals[j], nulls[j]);
			vals[j][c_hash] = PointerGetDatum(hh);
			nulls[j][c_hash] = false;
			memcpy(prev, VARDATA(hh), 32);
		}
	}
	insert_many(vals, nulls, live);
	for (int j = 0; j < nvoids; ++j) {
		Record r = proto;
		r.kind = "seal";
		r.action = "VOID";
		r.org = nullptr;
		r.table_name = nullptr;
		r.detail = DatumGetJsonbP(DirectFunctionCall1(
		    jsonb_in,
		    CStringGetDatum(
		        voids[j].crashed ? "{\"reason\": \"the transaction sealed with this number ended in a crash\"}"
		        : TransactionIdIsValid(voids[j].prepared_xid)
		            ? "{\"reason\": \"the transaction sealed with this number was prepared, then rolled back\"}"
		            : "{\"reason\": \"the transaction sealed with this number failed at COMMIT\"}")));
		Datum v[k_ncols];
		bool n[k_ncols];
		fill_values(r, nextval_internal(xs.seq_oid, false), 0, zero_hash(), v, n);
		v[c_seal_seq] = Int64GetDatum(voids[j].seq);
		n[c_seal_seq] = false;
		v[c_seal_prev] = PointerGetDatum(hash_bytea(voids[j].prev));
		n[c_seal_prev] = false;
		v[c_hash] = PointerGetDatum(hash_bytea(voids[j].hash));
		n[c_hash] = false;
		insert_values(v, n);
	}
	leave_writer(w);
	PopActiveSnapshot();
	MemoryContextSwitchTo(seal_old);
	close_partition();
}

void xact_callback(XactEvent event, void*)
{
	switch (event) {
	case XACT_EVENT_PRE_PREPARE:
		// Two-phase commit (Citus commits a write to several workers so):
		// sealed as at COMMIT, in the prepared transaction. Should it be
		// rolled back, its seal numbers become VOID seals (remember_prepared).
		if (have_packs()) {
			PushActiveSnapshot(GetTransactionSnapshot());
			flush_all_packs();
			PopActiveSnapshot();
		}
		seal_transaction();
		close_partition();
		preparing_xid = GetTopTransactionIdIfAny();
		break;
	case XACT_EVENT_PRE_COMMIT:
		if (have_packs()) {
			// Open records of statements no statement trigger closed.
			PushActiveSnapshot(GetTransactionSnapshot());
			flush_all_packs();
			PopActiveSnapshot();
		}
		seal_transaction();
		close_partition();
		if (fail_after_seal) {
			fail_after_seal = false;
			ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			                errmsg("simulated failure at COMMIT after the audit seals were chained")));
		}
		break;
	case XACT_EVENT_ABORT:
	case XACT_EVENT_PARALLEL_ABORT:
		fail_after_seal = false;
		// Failed after its seals were chained: leave their numbers to the next sealer.
		remember_orphans();
		reset_xact_state();
		break;
	case XACT_EVENT_PREPARE:
		remember_prepared();
		reset_xact_state();
		break;
	case XACT_EVENT_COMMIT:
	case XACT_EVENT_PARALLEL_COMMIT:
		reset_xact_state();
		break;
	default:
		break;
	}
}

}  // namespace

void register_callbacks()
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(xact_callback, nullptr);
	RegisterSubXactCallback(subxact_callback, nullptr);
	callbacks_registered = true;
}

}  // namespace tenant_guard::audit_log

// With shared_preload_libraries: the seal chain head lives in shared memory.
void tg::audit_guc::init_shared_memory()
{
	using namespace tenant_guard::audit_log;
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;
}
