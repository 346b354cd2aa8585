/*
 * pg/audit_log.hpp
 *
 * The audit log's write path (docs/audit.md), shared by its files:
 *
 *   audit.cpp          the settings, and init() (the shared memory of the seal chain's head)
 *   audit_hash.cpp     the hash of a record's 21 hashed columns
 *   audit_chain.cpp    the per-transaction chains, their seals at COMMIT, and the seal chain's head in
 *                      shared memory (the transaction callbacks)
 *   audit_writer.cpp   the record writer: the transaction's partition, a record's values, held-back records
 *   audit_relinfo.cpp  what the triggers know of an audited table (columns, key, tenant column)
 *   audit_records.cpp  statement records: a statement's row changes gathered into open records
 *   audit_rowjson.cpp  a row change written straight in jsonb's binary form
 *   audit_images.cpp   binary row images (INSERT, DELETE and UPDATE records of many
 *                      rows), and their conversion to jsonb when audit_trail reads them
 *   audit_fmgr.cpp     the SQL entry points (the triggers, audit_event, helpers)
 *
 * Statement capture. One AFTER ... FOR EACH STATEMENT trigger per event,
 * with the statement's transition tables, reads every row change when the
 * statement ends (an UPDATE's old and new rows pairwise) and adds it
 * (primary key, old and new row as jsonb, changed columns) to the open
 * record of its (table, action, tenant, subtransaction) in backend memory,
 * then writes the statement's open records (audit_records.cpp). A table in
 * row mode (a partition or inheritance child audited on its own, whose
 * parent's statements fire none of its statement triggers) has the row
 * trigger instead, which adds each change as it fires, and a statement
 * trigger that writes the records. One statement that changes a thousand
 * rows of a tenant thus writes one log row, not a thousand: the row images
 * go into one jsonb array, compressed and stored out of line, and the
 * per-record work (hash, heap and index inserts, WAL) is paid once.
 *
 * Chain design. Every record carries SHA-256(canonical content || prev_hash).
 * Records are chained per (transaction, tenant): the first record of a
 * tenant in a transaction has 32 zero bytes as prev_hash, each next one the
 * hash of the one before, and `seq` counts them. No lock is taken while the
 * transaction runs, so writers of one tenant never wait for each other. The
 * newest record of each chain is held back in memory until the next one
 * arrives or COMMIT (unless it is large: then it is written at once and
 * COMMIT adds a small seal row). At COMMIT (XACT_EVENT_PRE_COMMIT,
 * registered on the first audited write of a backend; no preloading needed)
 * each chain's held-back last record gets the next seal number (seal_seq)
 * and the hash of the row with the previous seal number (seal_prev), then
 * its own hash, and is written: one global chain of seals, no extra row.
 * Only that numbering is serialized: with shared_preload_libraries under an
 * LWLock on a head in shared memory (audit_chain.cpp), else under a
 * transaction-scoped advisory lock held until the commit is done, the
 * previous seal read with the latest snapshot so every isolation level works.
 * Savepoints: the chain state of every tenant is kept per subtransaction
 * level and restored when a subtransaction rolls back, so the records of a
 * rolled-back savepoint (gone from the table) are not sealed; its open
 * statement records are dropped.
 *
 * Records are inserted directly into the transaction's partition (all of a
 * transaction's rows share xact_at, hence one partition), opened once per
 * transaction with its indexes: heap and index inserts as COPY does, no
 * executor start-up per record. No privilege check applies to that path, so
 * application roles need, and have, no write privilege on the log; the few
 * SPI queries (partition creation, last seal) run as the log's owner with
 * SECURITY_RESTRICTED_OPERATION.
 *
 * Include after the src/core headers (they must come before PostgreSQL's).
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "pgtime.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include "pg/spi.hpp"

namespace tenant_guard::audit_log {

constexpr int k_ncols = 23;    // columns written per record
constexpr int k_nhashed = 21;  // all before `hash` (`images` is hashed in the place of `rows`)
// A statement's open record is written once its memory reaches this size
// (memory per backend stays bounded; a jsonb value is limited to 256 MB).
constexpr Size k_max_pack_bytes = 8 * 1024 * 1024;

inline constexpr Oid k_types[k_ncols] = {INT8OID,  TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID,  TEXTOID,  TEXTOID,
                                         INT8OID,  TEXTOID,        TEXTOID,        TEXTOID,  TEXTOID,  TEXTOID,
                                         TEXTOID,  TEXTOID,        TEXTOID,        INT4OID,  JSONBOID, JSONBOID,
                                         BYTEAOID, INT8OID,        BYTEAOID,       BYTEAOID, BYTEAOID};

enum Col {
	c_id,
	c_xact_at,
	c_statement_at,
	c_xid,
	c_org,
	c_kind,
	c_seq,
	c_action,
	c_table_name,
	c_actor,
	c_impersonator,
	c_tenant_role,
	c_db_role,
	c_session_role,
	c_application_name,
	c_row_count,
	c_rows,
	c_detail,
	c_prev_hash,
	c_seal_seq,
	c_seal_prev,
	c_hash,
	c_images
};

inline bool col_byval(int i)
{
	return k_types[i] == INT8OID || k_types[i] == TIMESTAMPTZOID || k_types[i] == INT4OID;
}

// ---------------------------------------------------------------------------
// Hashing (audit_hash.cpp)
// ---------------------------------------------------------------------------

// SHA-256 over the hashed columns, as a bytea (values and nulls: k_ncols
// entries). The place of `rows` hashes `rows` alone when `images` is NULL;
// else an array of `images` (and `rows` before it when both are set, which
// tenant_guard never writes), so neither column can be added, removed or
// swapped without changing the hash.
bytea* hash_record(const Datum* values, const bool* nulls);
// A held-back record's hash in two steps: begun when it is written, over
// every hashed column but the seal's two (its body then uncompressed, and
// the work done outside the seal's lock), finished when its seal fields are
// known. A handle of 0 (none: too many at once, or the digest failed) makes
// hash_finish hash the record whole. Handles end with the transaction
// (hash_states_reset) or when released.
int hash_begin(const Datum* values, const bool* nulls);
bytea* hash_finish(int handle, const Datum* values, const bool* nulls);
void hash_release(int handle);
void hash_states_reset();
int hash_states_live();  // (for the test suite)
bytea* zero_hash();
bytea* hash_bytea(const uint8* h);

// ---------------------------------------------------------------------------
// Per-transaction chain state: one group per tenant (NULL org included),
// each with a stack of (subtransaction, count, last hash) levels.
// Everything lives in TopTransactionContext and is forgotten at the end.
// ---------------------------------------------------------------------------

struct Level {
	SubTransactionId subid;
	int64 count;     // records in the chain, the pending one included
	uint8 last[32];  // hash of the last record written to the table
	// The chain's newest record, held back (values in TopTransactionContext)
	// until the next record of the chain or COMMIT: at COMMIT it carries the
	// seal itself, so a transaction usually writes no separate seal row.
	Datum* pending_v;
	bool* pending_n;
	int pending_hash;  // its hash begun (hash_begin), 0 if not
};

struct Group {
	char* org;  // nullptr: records without a tenant
	Level* levels;
	int nlevels;
	int maxlevels;
	uint32 hash;  // of org
	int hnext;    // next group of its hash bucket, -1 at the end
};

struct Pack;  // a statement's open record (see "Statement records")

struct XactState {
	Pack* packs = nullptr;        // newest first, each in its own context
	Pack* oldest_pack = nullptr;  // the other end of that list
	Pack* last_pack = nullptr;
	// The open records by (table, action, tenant): a statement that changes
	// the rows of a thousand tenants finds each row's record without a scan.
	Pack** pack_buckets = nullptr;  // TopTransactionContext
	int npack_buckets = 0;          // a power of 2
	int npacks = 0;
	Size open_mem = 0;  // memory of the open records
	Group* groups = nullptr;
	int ngroups = 0;
	int maxgroups = 0;
	int* group_buckets = nullptr;  // index of the first group of each hash bucket, -1: none
	int ngroup_buckets = 0;        // a power of 2
	Oid log_oid = InvalidOid;
	Oid log_owner = InvalidOid;
	Oid seq_oid = InvalidOid;
	bool sealing = false;
	// The partition this transaction writes to (all its records share
	// xact_at), opened once under the top transaction's resource owner.
	Relation part = nullptr;
	EState* estate = nullptr;
	ResultRelInfo* rri = nullptr;
	TupleTableSlot* slot = nullptr;
	int part_natts = 0;
	AttrNumber colmap[k_ncols];  // our column i -> attnum in the partition
};

extern XactState xs;

// audit_chain.cpp
void reset_xact_state();
Group* find_group(const char* org, bool create);
// The level of the current subtransaction, created from the one below.
Level* writable_level(Group* g);
// Registers the transaction callbacks (on the first audited write).
void register_callbacks();
// Test hook (_audit_selftest_fail_commit): fail this transaction's COMMIT
// right after its seals were chained, as a late error in COMMIT would.
extern bool fail_after_seal;

// ---------------------------------------------------------------------------
// Writing records (audit_writer.cpp)
// ---------------------------------------------------------------------------

struct Record {
	const char* kind;
	const char* action;
	const char* org;         // nullptr: no tenant
	const char* table_name;  // nullptr for events and seals
	int32 row_count = 0;
	Jsonb* rows = nullptr;    // kind 'rows': the row changes as jsonb
	bytea* images = nullptr;  // or as binary row images (audit_images.cpp)
	// `images` was allocated in TopTransactionContext for the writer to keep
	// as it is, should it hold the record back (no copy)
	bool images_given = false;
	Jsonb* detail = nullptr;
	TimestampTz statement_at = 0;  // 0: the current statement's start
	// actor fields, nullptr when absent
	const char* actor = nullptr;
	const char* impersonator = nullptr;
	const char* tenant_role = nullptr;
	const char* db_role = nullptr;
	const char* session_role = nullptr;
	const char* application_name = nullptr;
};

// Records whose `rows` or `images` take up to this much (compressed) are held
// back to carry their chain's seal.
constexpr Size k_hold_back_max = 8192;
// Frees level i of g's pending record and its begun hash unless the level
// below holds the same record; the level then has none.
void forget_pending(Group* g, int i);

SPIPlanPtr prepare(const char* sql, int nargs, Oid* types);
void resolve_log();
void open_partition();
void close_partition();
// The PostgreSQL roles of the caller (before switching to the log owner).
void set_db_roles(Record& r);
// The actor fields of a record from the current context and session,
// palloc'd in the current memory context.
void set_actor(Record& r);
// The column values of a record (hash left unset).
// `seq` and `prev` are the chain position and previous hash.
void fill_values(const Record& r, int64 id, int64 seq, bytea* prev, Datum* v, bool* n);
// Inserts a complete row into this transaction's partition (heap and indexes).
void insert_values(const Datum* v, const bool* n);
// Inserts `count` complete rows so, the heap tuples in batches (table_multi_insert).
void insert_many(Datum* const* v, bool* const* n, int count);

// Connects SPI and becomes the log owner; undo with leave_writer().
struct WriterState {
	Oid save_user;
	int save_sec;
	bool spi_open = false;
	tenant_guard::pg::SpiScope spi{};
};

WriterState enter_writer();
void writer_spi(WriterState& w);
void leave_writer(const WriterState& w);
// Appends a record to its tenant's chain in this transaction.
int64 write_record(Record& r);

// ---------------------------------------------------------------------------
// Per-relation trigger information (cached per backend, dropped on relcache
// invalidation of the relation: protect(), unprotect() and enable_audit()
// all alter the table).
// ---------------------------------------------------------------------------

// How one column of an audited table becomes a jsonb value: the same values
// as to_jsonb() of the row (docs/audit.md; sql/audit_types.sql compares
// them type by type), converted directly for the common built-in types and
// through to_jsonb() of the single value for all others.
enum ColKind : unsigned char {
	k_skip,    // dropped or excluded
	k_masked,  // redacted: "[redacted]"
	k_bool,
	k_int,       // int2, int4, int8: a JSON number
	k_numeric,   // a JSON number; NaN and infinities as strings
	k_text,      // text, varchar, bpchar: a JSON string of the value
	k_datetime,  // date, timestamp, timestamptz: ISO 8601 strings
	k_jsonb,     // embedded as is
	k_uuid,      // uuid: a JSON string of its text form
	k_output,    // other built-in scalars: a JSON string of the output function
	k_generic,   // anything else: to_jsonb() of the value
};

struct ColPlan {
	ColKind kind;
	Oid base;     // base type (domains looked through)
	FmgrInfo fn;  // output function (k_output) or to_jsonb (k_generic)
};

struct ImageLayout;  // audit_images.cpp

struct RelInfo {
	Oid relid;  // hash key
	bool valid;
	uint64 gen;                // changes whenever the entry is rebuilt
	Oid root;                  // the audited (root) table
	char* table_name;          // the audited (root) table, quoted
	AttrNumber tenant_attnum;  // 0: not protected
	Oid tenant_out;            // output function of the tenant column
	bool tenant_uuid;          // the tenant column is a uuid (formatted directly)
	int natts;
	bool* excluded;  // by attnum - 1
	ColPlan* cols;   // by attnum - 1
	int npk;
	AttrNumber* pk;
	// The binary image layout of the audited columns, nullptr when a
	// column's type has no binary image (audit_images.cpp).
	ImageLayout* img;
};

extern HTAB* rel_cache;

// audit_relinfo.cpp
// The audit triggers write records, as the log's owner, only for tables that
// enable_audit() set up (see refuse_unaudited in audit_relinfo.cpp).
void refuse_unaudited(Relation rel, bool temporary);
// The topmost partitioned table above a partition (the table itself otherwise).
Oid partition_root(Relation rel);
RelInfo* rel_info(Relation rel, Trigger* trig);

// ---------------------------------------------------------------------------
// Statement records. A row change is not written as a record of its own:
// the capture (or row) trigger adds it to the open record of its (table,
// action, tenant, subtransaction, statement, actor), and the statement's
// open records of its table are written when its row changes are in. One
// audited statement thus costs one log row per tenant, however many rows it
// changes (a record is also written once it holds
// tenant_guard.audit_rows_per_record rows or uses k_max_pack_bytes of
// memory, and the largest open record once all of them use k_open_budget).
// Anything still open at COMMIT (rows of a partition audited on its own,
// changed through its parent) is written then. A rolled-back subtransaction
// drops its open records with its rows. A record being added to is busy:
// SQL run meanwhile (a user type's cast to json) may add to it but never
// writes or frees it.
// ---------------------------------------------------------------------------

struct Pack {
	Pack* next;   // towards the older
	Pack* prev;   // towards the newer
	Pack* hnext;  // next of its hash bucket (xs.pack_buckets)
	uint32 hash;  // of (root, action, org)
	Oid root;
	const char* action;  // static string
	char* org;           // nullptr: no tenant
	SubTransactionId subid;
	TimestampTz stmt;   // start of the statement that opened it
	Oid user;           // current_user then
	Oid session_user;   // session_user then
	MemoryContext cxt;  // the Pack itself and everything below
	Size base_mem;      // memory of cxt when opened
	Size mem;           // memory of cxt after the last row (counted in xs.open_mem)
	int busy;           // trigger calls adding to it right now
	// The row changes so far, each already in jsonb's binary form: their
	// containers one after the other, each padded to 4 bytes as jsonb pads
	// the elements of an array, and the length of each (padding included).
	// flush_pack() puts the array's header in front: no row is converted twice.
	StringInfoData data;
	uint32* lens;
	int32 maxlens;
	int32 nrows;
	Record proto;  // actor fields, table, statement time
	// Column names of the last relation seen, copied here (jsonb keys point at them)
	Oid names_rel;
	uint64 names_gen;
	char** names;
	int* namelens;
	// The audited columns in jsonb's key order (shorter names first, then
	// bytewise): pushed in that order, a row's keys need no sorting.
	int* order;
	int norder;
	// Binary images (audit_images.cpp): `data` holds each row as its
	// length and heap tuple, in the layout of `bin_rel` (generation
	// `bin_gen`), whose descriptor is copied in `bin_header`.
	bool bin;
	Oid bin_rel;
	uint64 bin_gen;
	char* bin_header;
	int bin_header_len;
	char* bin_zone;  // the session's TimeZone when the record was opened
	pg_tz* bin_tz;   // and that zone
};

// Row trigger calls in progress (a to_jsonb cast of a user type can run SQL
// that writes audited rows): nothing they may still use is freed meanwhile.
extern int adding_depth;

// audit_rowjson.cpp
// Appends one row change, in jsonb's binary form, to an open record's data
// (4-byte aligned from the data's start, the padding in front included).
void append_row_change(StringInfo b, const Pack* p, const RelInfo* info, const JsonbValue* ov, const JsonbValue* nv,
                       const int* changed, int nchanged);

// audit_records.cpp
// The text form of a uuid, as uuid_out() writes it (palloc'd).
char* uuid_text(Datum d);
// The jsonb value of one column of a row, as to_jsonb() makes it.
void column_value(const ColPlan* c, Datum d, bool isnull, JsonbValue* v);
// At the end of the transaction: the open records' memory.
void forget_packs();
Pack* find_pack(Oid root, const char* action, const char* org);
// A row's columns, deformed (values and nulls by attnum - 1).
struct RowImage {
	Datum* values;
	bool* nulls;
};
// Adds one row change to its open record (oimg, nimg: the old and new row,
// nullptr where the action has none).
void add_row(Pack* p, RelInfo* info, TupleDesc desc, const RowImage* oimg, const RowImage* nimg, const int* changed,
             int nchanged);
// The tenant of a row of a protected table: the text of its tenant column
// (palloc'd; nullptr for NULL).
const char* row_org(const RelInfo* info, Datum v, bool isnull);
// After a row was added to an open record: its memory counted, and the
// record written once it is full (unless a nested call is adding to it),
// the largest open records once all of them are over their budget.
void pack_grew(Pack* p);
void after_row(Pack* p);
// One row change of an audited table: its changed columns (UPDATE), its
// tenant, added to its open record (written early past the size limits).
// Returns false for an UPDATE that changed nothing audited, skipped by
// tenant_guard.audit_skip_noop_updates. `changed` has room for natts ints.
bool capture_row(RelInfo* info, TupleDesc desc, const char* action, const RowImage* oimg, const RowImage* nimg,
                 int* changed);
// An INSERT's or DELETE's row change from its transition table's slot as
// the tuple it holds (add_row_raw), its row deformed only up to the tenant
// column; false when the row must go through capture_row.
struct PackCache;
bool capture_raw(RelInfo* info, const char* action, TupleTableSlot* slot, PackCache* cache);
// An UPDATE's row change from its transition tables' slots the same way
// (both rows deformed: its changed columns decide whether it is a no-op);
// false when the row must go through capture_row. `changed` as there.
bool capture_raw_update(RelInfo* info, TupleDesc desc, TupleTableSlot* oslot, TupleTableSlot* nslot, int* changed,
                        PackCache* cache);
// The columns whose values differ between an UPDATE's two rows
// (attnum - 1, ascending, in `changed`), excluded and dropped ones left out.
int changed_columns(const RelInfo* info, TupleDesc desc, const RowImage* oimg, const RowImage* nimg, int* changed);
// Whether a column's value is the same before and after an UPDATE: both
// NULL, or bytewise equal (datum_image_eq). What counts as changed, for the
// writer (changed_columns) and the reader of binary UPDATE images alike.
inline bool same_value(Form_pg_attribute a, bool null1, Datum v1, bool null2, Datum v2)
{
	return (null1 && null2) || (!null1 && !null2 && datum_image_eq(v1, v2, a->attbyval, a->attlen));
}
// A statement's open records by tenant uuid, for capture_raw: within one
// statement trigger call the other parts of a record's identity (statement,
// actor, subtransaction) do not change. Forgotten whenever an open record
// is written or dropped (pack_epoch).
PackCache* pack_cache_create();
extern uint64 pack_epoch;
// Writes an open record into the log and forgets it.
void flush_pack(Pack* p);
// The jsonb array of a record's row changes from their binary forms
// (data: `lens` lengths one after the other, each 4-byte aligned).
Jsonb* rows_array_of(const char* data, int len, const uint32* lens, int n);

// audit_images.cpp
// The layout of a relation's binary images (in CacheMemoryContext), or
// nullptr when one of its audited columns has none; freed with free_layout.
ImageLayout* build_layout(RelInfo* info, TupleDesc desc);
void free_layout(ImageLayout* l);
// Whether a row change goes into its record as a binary image (an INSERT's
// or DELETE's of a table with a layout, an UPDATE's where no column is
// redacted and no value stored out of line, into a record that is binary in
// that layout or empty), and if so adds it; false leaves the record as it
// was, or converted to jsonb.
bool add_row_binary(Pack* p, RelInfo* info, const RowImage* oimg, const RowImage* nimg);
// The same from a transition table's minimal tuple as it is: possible when
// the relation's stored row is its image (no column excluded, redacted or
// dropped), for a tuple with nothing stored out of line and every attribute
// present; add_row_raw's false leaves the record as it was (a record of
// jsonb or of another relation). `mt2`: an UPDATE's new row (else nullptr).
bool raw_capture_possible(const RelInfo* info);
bool raw_tuple_fits(const RelInfo* info, MinimalTuple mt);
bool add_row_raw(Pack* p, RelInfo* info, MinimalTuple mt, MinimalTuple mt2);
// Converts a binary record to jsonb row changes in place (a record of
// another layout joins it, or it is written with few rows).
void pack_to_json(Pack* p);
// The bytes of the `images` column of a binary record (nullptr: write it as
// jsonb); `given`: made in TopTransactionContext for write_record() to keep.
bytea* pack_images(Pack* p, bool* given);
// Writes the open records of the current subtransaction (of one audited table, or all with InvalidOid).
void flush_packs(Oid root);
// Past the memory budget of the open records: writes the largest one that can be written now.
void enforce_budget();
// Every open record, oldest first (at COMMIT).
void flush_all_packs();
bool have_packs();
// At the end of a subtransaction: its open records are dropped with its
// rows (abort) or become its parent's (commit).
void packs_at_subxact_end(bool abort, SubTransactionId sub, SubTransactionId parent);

}  // namespace tenant_guard::audit_log
