/*
 * pg/audit_images.cpp
 *
 * Binary row images. An INSERT's or DELETE's row change is captured as a
 * heap tuple of the audited columns (PostgreSQL's own binary form: one
 * heap_form_tuple() per row) instead of a jsonb object, and converted to
 * the same jsonb object only when it is read: such a record, of one row or
 * a million, is written with `rows` NULL and `images` set, so the reader
 * pays for the conversion, once per record read, not every write. An
 * UPDATE's row change is its two tuples where no column is redacted and no
 * value is stored out of line: the reader finds the changed columns as
 * capture_row() does and makes the same {"pk", "old", "set", "changed"}
 * entry. Other UPDATEs stay jsonb (the changed columns' new values only,
 * docs/audit.md).
 *
 * Only tables whose every audited column has one of the types below get
 * binary images: built-in types whose stored form holds no object id (so a
 * dump restored into another database, or a newer major, reads the same
 * bytes the same way) and whose jsonb value tenant_guard makes itself
 * (audit_records.cpp column_value()). Masked columns are stored as NULL and
 * read as "[redacted]"; excluded columns are not in the image; values
 * stored out of line are detoasted into the image (the record must not
 * point at a deleted row's TOAST).
 *
 *   bool; int2, int4, int8; numeric; text, varchar, bpchar; date,
 *   timestamp, timestamptz; jsonb; uuid (and domains over them)
 *
 * The `images` value (native byte order of the server, like the heap):
 *
 *   "TGI1"  uint8 version (2)  uint8 image ('N' new, 'O' old, 'U' both)  uint32 rows
 *   uint8 zone name length, the writer's TimeZone name
 *   uint16 columns  uint16 key columns
 *   per column: uint32 type oid, uint8 kind (ColKind), uint8 0, uint16 name length, name
 *   per key column: uint16 column index (columns: an excluded key column)
 *   per row: uint32 length, the tuple from its header's t_infomask2 on (the
 *   header's first bytes, its datum fields, hold nothing of a row's image:
 *   the reader puts zeros there; version 1 stored them as zeros, and is
 *   still read) and its data; for 'U' the old tuple so, then the new one
 *
 * timestamptz values are shown with the offset of the writer's TimeZone (as
 * to_jsonb() in the writing session showed them), whatever the reader's.
 *
 * "TGI1" read as a jsonb header would be an object and a scalar at once,
 * which no jsonb value is. The record hash covers these bytes
 * (audit_hash.cpp), so a dump that restores them bytewise keeps verifying.
 *
 * Reading: tenant_guard._audit_images(id, xact_at, org, hash) returns the
 * jsonb array for a record the caller can read. It takes the record's key,
 * not its bytes, and reads them itself with the caller's rights (row-level
 * security applies): bytes a caller made up are never decoded. Only
 * tenant_guard writes the log.
 *
 * C-style: PostgreSQL is called directly; no C++ object that owns anything is
 * alive (the one template takes a lambda of references).
 */
#include <cstring>

extern "C" {
#include "postgres.h"
#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "pgtime.h"
}

#include "pg/boundary.hpp"
#include "pg/audit_log.hpp"

namespace tenant_guard::audit_log {

struct ImageLayout {
	int ncols;
	TupleDesc desc;  // the image's columns (base types; a masked column as bool, always NULL)
	int* map;        // image column -> attnum - 1 in the relation (writer side)
	ColPlan* cols;   // kind and base type by image column, one more entry: k_skip
	char** names;
	int* namelens;
	int* order;  // all image columns in jsonb key order
	int npk;
	AttrNumber* pk;  // image column + 1; ncols + 1 for an excluded key column
	char* header;    // the serialized columns and key columns
	int header_len;
	// Every column of the relation is in the image, in its place, with the
	// same storage: a row's stored tuple is its image as it is.
	bool identity;
};

namespace {

constexpr char k_magic[4] = {'T', 'G', 'I', '1'};
constexpr char k_version = 2;
// The bytes of a tuple's header before t_infomask2, not stored from version 2.
constexpr Size k_tuple_skip = offsetof(HeapTupleHeaderData, t_infomask2);
constexpr int k_prefix = 4 + 1 + 1 + 4 + 1;  // magic, version, image, rows, zone name length

// The type a column of this kind may have in an image.
bool type_fits(ColKind kind, Oid t)
{
	switch (kind) {
	case k_masked:
	case k_bool:
		return t == BOOLOID;
	case k_int:
		return t == INT2OID || t == INT4OID || t == INT8OID;
	case k_numeric:
		return t == NUMERICOID;
	case k_text:
		return t == TEXTOID || t == VARCHAROID || t == BPCHAROID;
	case k_datetime:
		return t == DATEOID || t == TIMESTAMPOID || t == TIMESTAMPTZOID;
	case k_jsonb:
		return t == JSONBOID;
	case k_uuid:
		return t == UUIDOID;
	default:
		return false;
	}
}

void put16(StringInfo b, uint16 v)
{
	appendBinaryStringInfo(b, reinterpret_cast<const char*>(&v), sizeof v);
}

void put32(StringInfo b, uint32 v)
{
	appendBinaryStringInfo(b, reinterpret_cast<const char*>(&v), sizeof v);
}

bool key_less(const ImageLayout* l, int a, int b)
{
	if (l->namelens[a] != l->namelens[b])
		return l->namelens[a] < l->namelens[b];
	return memcmp(l->names[a], l->names[b], l->namelens[a]) < 0;
}

// The derived parts of a layout: the tuple descriptor, the key order.
void finish_layout(ImageLayout* l)
{
	l->desc = CreateTemplateTupleDesc(l->ncols);
	for (int j = 0; j < l->ncols; ++j)
		TupleDescInitEntry(l->desc, static_cast<AttrNumber>(j + 1), l->names[j], l->cols[j].base, -1, 0);
	l->order = static_cast<int*>(palloc(sizeof(int) * (l->ncols + 1)));
	for (int j = 0; j < l->ncols; ++j) {
		int k = j;  // insertion sort: (length, bytes), as jsonb orders keys
		while (k > 0 && key_less(l, j, l->order[k - 1])) {
			l->order[k] = l->order[k - 1];
			--k;
		}
		l->order[k] = j;
	}
	l->cols[l->ncols].kind = k_skip;
}

// A record's image kind: the new rows (INSERT), the old rows (DELETE), or
// both (UPDATE).
char image_kind(const char* action)
{
	return strcmp(action, "INSERT") == 0 ? 'N' : strcmp(action, "UPDATE") == 0 ? 'U' : 'O';
}

void malformed()
{
	ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("malformed binary row images in the audit log")));
}

struct Reader {
	const char* p;
	const char* end;
};

const char* take(Reader* r, Size n)
{
	if (static_cast<Size>(r->end - r->p) < n)
		malformed();
	const char* at = r->p;
	r->p += n;
	return at;
}

uint16 get16(Reader* r)
{
	uint16 v;
	memcpy(&v, take(r, sizeof v), sizeof v);
	return v;
}

uint32 get32(Reader* r)
{
	uint32 v;
	memcpy(&v, take(r, sizeof v), sizeof v);
	return v;
}

// A layout read back from its serialized form (current memory context).
ImageLayout* parse_layout(Reader* r)
{
	const char* start = r->p;
	ImageLayout* l = static_cast<ImageLayout*>(palloc0(sizeof(ImageLayout)));
	l->ncols = get16(r);
	l->npk = get16(r);
	if (l->ncols < 1 || l->ncols > MaxTupleAttributeNumber || l->npk > INDEX_MAX_KEYS)
		malformed();
	l->cols = static_cast<ColPlan*>(palloc0(sizeof(ColPlan) * (l->ncols + 1)));
	l->names = static_cast<char**>(palloc(sizeof(char*) * (l->ncols + 1)));
	l->namelens = static_cast<int*>(palloc(sizeof(int) * (l->ncols + 1)));
	for (int j = 0; j < l->ncols; ++j) {
		const Oid t = get32(r);
		const uint8 kind = static_cast<uint8>(*take(r, 1));
		(void) take(r, 1);
		const uint16 len = get16(r);
		if (!type_fits(static_cast<ColKind>(kind), t) || len == 0 || len >= NAMEDATALEN)
			malformed();
		l->cols[j].kind = static_cast<ColKind>(kind);
		l->cols[j].base = t;
		l->names[j] = pnstrdup(take(r, len), len);
		l->namelens[j] = len;
		if (static_cast<int>(strlen(l->names[j])) != len)
			malformed();
	}
	l->pk = static_cast<AttrNumber*>(palloc(sizeof(AttrNumber) * (l->npk + 1)));
	for (int k = 0; k < l->npk; ++k) {
		const uint16 c = get16(r);
		if (c > l->ncols)
			malformed();
		l->pk[k] = static_cast<AttrNumber>(c + 1);
	}
	l->header_len = static_cast<int>(r->p - start);
	l->header = const_cast<char*>(start);
	finish_layout(l);
	return l;
}

// The next tuple of a record's rows, copied to `buf` (grown as needed) after
// `skip` zero bytes (the header bytes not stored) and deformed into v/n (in
// the current memory context).
void next_tuple(const ImageLayout* l, Reader* r, Size skip, char** buf, uint32* cap, Datum* v, bool* n)
{
	const uint32 stored = get32(r);
	const char* t = take(r, stored);
	if (stored > MaxAllocSize - skip || stored + skip < SizeofHeapTupleHeader)
		malformed();
	const uint32 len = static_cast<uint32>(stored + skip);
	if (len > *cap) {
		*cap = len;
		*buf = static_cast<char*>(*buf ? repalloc(*buf, len) : palloc(len));
	}
	memset(*buf, 0, skip);
	memcpy(*buf + skip, t, stored);  // (the tuple MAXALIGNed)
	HeapTupleHeader h = reinterpret_cast<HeapTupleHeader>(*buf);
	const int natts = HeapTupleHeaderGetNatts(h);
	const Size head = (h->t_infomask & HEAP_HASNULL) != 0 ? offsetof(HeapTupleHeaderData, t_bits) + BITMAPLEN(natts)
	                                                      : SizeofHeapTupleHeader;
	if (h->t_hoff < head || h->t_hoff > len || natts > l->ncols)
		malformed();
	HeapTupleData tup;
	tup.t_len = len;
	ItemPointerSetInvalid(&tup.t_self);
	tup.t_tableOid = InvalidOid;
	tup.t_data = h;
	heap_deform_tuple(&tup, l->desc, v, n);
}

// The jsonb value of image column j (timestamptz with the writer's offset).
void image_value(const ImageLayout* l, pg_tz* zone, int j, Datum v, bool isnull, JsonbValue* out)
{
	int tz;
	struct pg_tm tm;
	fsec_t fsec;
	if (zone != nullptr && !isnull && l->cols[j].kind == k_datetime && l->cols[j].base == TIMESTAMPTZOID &&
	    !TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(v)) &&
	    timestamp2tm(DatumGetTimestampTz(v), &tz, &tm, &fsec, nullptr, zone) == 0) {
		// the offset of the writer's zone at that instant
		char* s = JsonEncodeDateTime(nullptr, v, TIMESTAMPTZOID, &tz);
		out->type = jbvString;
		out->val.string.val = s;
		out->val.string.len = static_cast<int>(strlen(s));
	} else {
		column_value(&l->cols[j], v, isnull, out);
	}
}

// Appends the jsonb row changes of `nrows` binary rows to `out`, their
// lengths to `lens`. `image` is the record's: 'N' (each row a length and
// the new tuple), 'O' (the old tuple) or 'U' (the old tuple, then the new
// one: the row change the writer's UPDATE path stores, with the columns
// whose values differ as `changed`, as capture_row() found them).
void decode_rows(const ImageLayout* l, char image, Size skip, pg_tz* zone, Reader* r, uint32 nrows, StringInfo out,
                 uint32* lens)
{
	// What append_row_change() reads of a record and a relation.
	Pack fp{};
	fp.names = l->names;
	fp.namelens = l->namelens;
	fp.order = l->order;
	fp.norder = l->ncols;
	RelInfo fi;
	memset(&fi, 0, sizeof fi);
	fi.natts = l->ncols;
	fi.cols = l->cols;
	fi.npk = l->npk;
	fi.pk = l->pk;
	const bool update = image == 'U';
	if (update)
		for (int j = 0; j < l->ncols; ++j)
			if (l->cols[j].kind == k_masked)
				malformed();  // (never written: a masked column's change cannot be told from its image)
	const Size nv = sizeof(Datum) * (l->ncols + 1);
	const Size nn = sizeof(bool) * (l->ncols + 1);
	Datum* v = static_cast<Datum*>(palloc(nv));
	bool* n = static_cast<bool*>(palloc(nn));
	Datum* v2 = static_cast<Datum*>(palloc(nv));
	bool* n2 = static_cast<bool*>(palloc(nn));
	int* changed = static_cast<int*>(palloc(sizeof(int) * (l->ncols + 1)));
	JsonbValue* jv = static_cast<JsonbValue*>(palloc0(sizeof(JsonbValue) * (l->ncols + 1)));
	JsonbValue* jv2 = static_cast<JsonbValue*>(palloc0(sizeof(JsonbValue) * (l->ncols + 1)));
	uint32 cap = 0, cap2 = 0;
	char* buf = nullptr;
	char* buf2 = nullptr;
	// (one per backend, reset per row: no SQL runs while rows are decoded)
	static MemoryContext row_cxt = nullptr;
	if (row_cxt == nullptr)
		row_cxt = AllocSetContextCreate(TopMemoryContext, "tenant_guard audit images", ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(row_cxt);  // (what a failed call left)
	for (uint32 i = 0; i < nrows; ++i) {
		// the tuples in this context's buffers, their values in row_cxt
		next_tuple(l, r, skip, &buf, &cap, v, n);
		if (update)
			next_tuple(l, r, skip, &buf2, &cap2, v2, n2);
		MemoryContext old = MemoryContextSwitchTo(row_cxt);
		for (int j = 0; j < l->ncols; ++j)
			image_value(l, zone, j, v[j], n[j], &jv[j]);
		int nchanged = 0;
		if (update) {
			for (int j = 0; j < l->ncols; ++j) {
				if (!same_value(TupleDescAttr(l->desc, j), n[j], v[j], n2[j], v2[j])) {
					changed[nchanged++] = j;
					image_value(l, zone, j, v2[j], n2[j], &jv2[j]);
				}
			}
			// the key's new values, changed or not, as the writer stores them
			for (int k = 0; k < l->npk; ++k) {
				const int j = l->pk[k] - 1;
				if (j < l->ncols)
					image_value(l, zone, j, v2[j], n2[j], &jv2[j]);
			}
		}
		MemoryContextSwitchTo(old);
		const int start = out->len;
		if (update)
			append_row_change(out, &fp, &fi, jv, jv2, changed, nchanged);
		else if (image == 'N')
			append_row_change(out, &fp, &fi, nullptr, jv, nullptr, 0);
		else
			append_row_change(out, &fp, &fi, jv, nullptr, nullptr, 0);
		lens[i] = static_cast<uint32>(out->len - start);
		MemoryContextReset(row_cxt);
	}
	if (buf)
		pfree(buf);
	if (buf2)
		pfree(buf2);
	pfree(v);
	pfree(n);
	pfree(v2);
	pfree(n2);
	pfree(changed);
	pfree(jv);
	pfree(jv2);
}

// The layout of a binary record: the relation's, while it is the one the
// record was started with, else read back from the record's copy.
const ImageLayout* pack_layout(const Pack* p)
{
	if (rel_cache != nullptr) {
		Oid rel = p->bin_rel;
		RelInfo* e = static_cast<RelInfo*>(hash_search(rel_cache, &rel, HASH_FIND, nullptr));
		if (e != nullptr && e->valid && e->gen == p->bin_gen && e->img != nullptr)
			return e->img;
	}
	Reader r{p->bin_header, p->bin_header + p->bin_header_len};
	return parse_layout(&r);
}

// Makes a record binary, in the layout of `info`, before its first row.
void start_images(Pack* p, RelInfo* info)
{
	const ImageLayout* l = info->img;
	p->bin = true;
	p->bin_rel = info->relid;
	p->bin_gen = info->gen;
	p->bin_header = static_cast<char*>(palloc(l->header_len));
	memcpy(p->bin_header, l->header, l->header_len);
	p->bin_header_len = l->header_len;
	const char* zone = session_timezone ? pg_get_timezone_name(session_timezone) : nullptr;
	p->bin_zone = zone && strlen(zone) < 256 ? pstrdup(zone) : nullptr;
	p->bin_tz = p->bin_zone ? session_timezone : nullptr;  // (pg_tz values live as long as the backend)
	if (p->proto.table_name == nullptr)
		p->proto.table_name = pstrdup(info->table_name);
}

// Appends one tuple to a record's rows: its length, then `a` and `b` (the
// tuple from its header's t_infomask2 on).
void put_tuple(Pack* p, const char* a, Size alen, const char* b, Size blen)
{
	const uint32 len = static_cast<uint32>(alen + blen);
	enlargeStringInfo(&p->data, static_cast<int>(sizeof len + len));
	put32(&p->data, len);
	appendBinaryStringInfo(&p->data, a, static_cast<int>(alen));
	if (blen > 0)
		appendBinaryStringInfo(&p->data, b, static_cast<int>(blen));
}

// The row change whose tuples start at `start` is complete.
void end_row(Pack* p, int start)
{
	if (p->nrows == p->maxlens) {
		p->maxlens *= 2;
		p->lens = static_cast<uint32*>(repalloc(p->lens, sizeof(uint32) * p->maxlens));
	}
	p->lens[p->nrows] = static_cast<uint32>(p->data.len - start);
	++p->nrows;
}

// Appends one row change to record p (made binary in the layout of `info`
// first if it has no row yet): its tuples, as `put` appends them (it owns
// nothing: an error may leave it), in the record's memory.
template <typename Put>
void append_row(Pack* p, RelInfo* info, Put put)
{
	MemoryContext old = MemoryContextSwitchTo(p->cxt);
	if (!p->bin)
		start_images(p, info);
	const int start = p->data.len;
	put();
	end_row(p, start);
	MemoryContextSwitchTo(old);
}

// A heap tuple's image: its bytes from t_infomask2 on.
void put_heap_tuple(Pack* p, HeapTuple t)
{
	put_tuple(p, reinterpret_cast<const char*>(t->t_data) + k_tuple_skip, t->t_len - k_tuple_skip, nullptr, 0);
}

// A minimal tuple's image: from t_infomask2 on it is the heap tuple's,
// with only the flags that describe the data kept.
void put_minimal_tuple(Pack* p, MinimalTuple mt)
{
	const uint16 infomask2 = static_cast<uint16>(mt->t_infomask2 & HEAP_NATTS_MASK);
	const uint16 infomask = static_cast<uint16>(mt->t_infomask & (HEAP_HASNULL | HEAP_HASVARWIDTH));
	char flags[sizeof infomask2 + sizeof infomask];
	memcpy(flags, &infomask2, sizeof infomask2);
	memcpy(flags + sizeof infomask2, &infomask, sizeof infomask);
	const char* rest = reinterpret_cast<const char*>(mt) + MINIMAL_TUPLE_DATA_OFFSET + sizeof flags;
	put_tuple(p, flags, sizeof flags, rest, mt->t_len - MINIMAL_TUPLE_DATA_OFFSET - sizeof flags);
}

// Whether a row change of `info` may join record p as a binary image (the
// record is binary in this layout, or has no row yet).
bool joins_binary(const Pack* p, const RelInfo* info)
{
	if (p->bin)
		return p->bin_rel == info->relid && p->bin_gen == info->gen;
	return p->nrows == 0;
}

// A heap tuple of an image's columns from a row's values, values stored
// out of line detoasted (a masked column NULL).
HeapTuple form_image(const ImageLayout* l, const RowImage* img)
{
	Datum* v = static_cast<Datum*>(palloc(sizeof(Datum) * (l->ncols + 1)));
	bool* n = static_cast<bool*>(palloc(sizeof(bool) * (l->ncols + 1)));
	for (int j = 0; j < l->ncols; ++j) {
		const int a = l->map[j];
		n[j] = l->cols[j].kind == k_masked || img->nulls[a];
		v[j] = n[j] ? (Datum) 0 : img->values[a];
		if (!n[j] && TupleDescAttr(l->desc, j)->attlen == -1 && VARATT_IS_EXTERNAL(DatumGetPointer(v[j])))
			v[j] = PointerGetDatum(detoast_external_attr(reinterpret_cast<struct varlena*>(DatumGetPointer(v[j]))));
	}
	return heap_form_tuple(l->desc, v, n);
}

}  // namespace

ImageLayout* build_layout(RelInfo* info, TupleDesc desc)
{
	int ncols = 0;
	for (int i = 0; i < info->natts; ++i) {
		const ColKind k = info->cols[i].kind;
		if (k == k_skip)
			continue;
		if (k != k_masked && !type_fits(k, info->cols[i].base))
			return nullptr;
		++ncols;
	}
	if (ncols == 0)
		return nullptr;
	MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);
	ImageLayout* l = static_cast<ImageLayout*>(palloc0(sizeof(ImageLayout)));
	l->ncols = ncols;
	l->map = static_cast<int*>(palloc(sizeof(int) * (ncols + 1)));
	l->cols = static_cast<ColPlan*>(palloc0(sizeof(ColPlan) * (ncols + 1)));
	l->names = static_cast<char**>(palloc(sizeof(char*) * (ncols + 1)));
	l->namelens = static_cast<int*>(palloc(sizeof(int) * (ncols + 1)));
	int* image_of = static_cast<int*>(palloc(sizeof(int) * (info->natts + 1)));
	int j = 0;
	for (int i = 0; i < info->natts; ++i) {
		image_of[i] = -1;
		if (info->cols[i].kind == k_skip)
			continue;
		image_of[i] = j;
		l->map[j] = i;
		l->cols[j].kind = info->cols[i].kind;
		l->cols[j].base = info->cols[i].kind == k_masked ? BOOLOID : info->cols[i].base;
		l->names[j] = pstrdup(NameStr(TupleDescAttr(desc, i)->attname));
		l->namelens[j] = static_cast<int>(strlen(l->names[j]));
		++j;
	}
	l->npk = info->npk;
	l->pk = static_cast<AttrNumber*>(palloc(sizeof(AttrNumber) * (info->npk + 1)));
	for (int k = 0; k < info->npk; ++k) {
		const int a = info->pk[k] - 1;
		l->pk[k] = static_cast<AttrNumber>((a >= 0 && a < info->natts && image_of[a] >= 0 ? image_of[a] : ncols) + 1);
	}
	pfree(image_of);
	finish_layout(l);
	l->identity = ncols == info->natts && desc->natts == info->natts;
	for (int c = 0; l->identity && c < ncols; ++c) {
		Form_pg_attribute ra = TupleDescAttr(desc, c);
		Form_pg_attribute ia = TupleDescAttr(l->desc, c);
		l->identity = l->map[c] == c && l->cols[c].kind != k_masked && !ra->attisdropped && ra->attlen == ia->attlen &&
		              ra->attbyval == ia->attbyval && ra->attalign == ia->attalign;
	}
	StringInfoData h;
	initStringInfo(&h);
	put16(&h, static_cast<uint16>(ncols));
	put16(&h, static_cast<uint16>(l->npk));
	for (int c = 0; c < ncols; ++c) {
		put32(&h, l->cols[c].base);
		appendStringInfoChar(&h, static_cast<char>(l->cols[c].kind));
		appendStringInfoChar(&h, 0);
		put16(&h, static_cast<uint16>(l->namelens[c]));
		appendBinaryStringInfo(&h, l->names[c], l->namelens[c]);
	}
	for (int k = 0; k < l->npk; ++k)
		put16(&h, static_cast<uint16>(l->pk[k] - 1));
	l->header = h.data;
	l->header_len = h.len;
	MemoryContextSwitchTo(old);
	return l;
}

void free_layout(ImageLayout* l)
{
	if (l == nullptr)
		return;
	for (int j = 0; j < l->ncols; ++j)
		pfree(l->names[j]);
	pfree(l->names);
	pfree(l->namelens);
	pfree(l->map);
	pfree(l->cols);
	pfree(l->pk);
	pfree(l->order);
	pfree(l->header);
	FreeTupleDesc(l->desc);
	pfree(l);
}

// Whether an UPDATE's row change may be stored as its two rows' images.
bool update_images_possible(const ImageLayout* l, const RowImage* oimg, const RowImage* nimg)
{
	for (int j = 0; j < l->ncols; ++j) {
		if (l->cols[j].kind == k_masked)
			return false;
		if (TupleDescAttr(l->desc, j)->attlen != -1)
			continue;
		const int a = l->map[j];
		if ((!oimg->nulls[a] && VARATT_IS_EXTERNAL(DatumGetPointer(oimg->values[a]))) ||
		    (!nimg->nulls[a] && VARATT_IS_EXTERNAL(DatumGetPointer(nimg->values[a]))))
			return false;
	}
	return true;
}

// (in the row's scratch memory context)
bool add_row_binary(Pack* p, RelInfo* info, const RowImage* oimg, const RowImage* nimg)
{
	const ImageLayout* l = info->img;
	if (l == nullptr || (oimg == nullptr && nimg == nullptr))
		return false;
	// An UPDATE's row change as its two rows when the reader can tell the
	// changed columns from them (no column redacted: its image is NULL on
	// both sides) and no value is stored out of line (an unchanged one would
	// be read and stored twice, where jsonb stores the before image only).
	if (oimg && nimg && !update_images_possible(l, oimg, nimg))
		return false;
	if (!joins_binary(p, info)) {
		pack_to_json(p);
		return false;
	}
	HeapTuple t = form_image(l, oimg ? oimg : nimg);
	HeapTuple t2 = oimg && nimg ? form_image(l, nimg) : nullptr;
	append_row(p, info, [&] {
		put_heap_tuple(p, t);
		if (t2 != nullptr)
			put_heap_tuple(p, t2);
	});
	return true;
}

bool raw_capture_possible(const RelInfo* info)
{
	return info->img != nullptr && info->img->identity;
}

bool raw_tuple_fits(const RelInfo* info, MinimalTuple mt)
{
	// (a row stored before a column was added with a default has fewer
	// attributes: its defaults come from the relation, so it takes the
	// general path)
	return (mt->t_infomask & HEAP_HASEXTERNAL) == 0 && HeapTupleHeaderGetNatts(mt) == info->img->ncols;
}

bool add_row_raw(Pack* p, RelInfo* info, MinimalTuple mt, MinimalTuple mt2)
{
	if (!joins_binary(p, info))
		return false;
	append_row(p, info, [&] {
		put_minimal_tuple(p, mt);
		if (mt2 != nullptr)
			put_minimal_tuple(p, mt2);
	});
	return true;
}

void pack_to_json(Pack* p)
{
	if (!p->bin)
		return;
	MemoryContext old = MemoryContextSwitchTo(p->cxt);
	const ImageLayout* l = pack_layout(p);
	StringInfoData out;
	initStringInfo(&out);
	uint32* lens = static_cast<uint32*>(palloc(sizeof(uint32) * p->maxlens));
	Reader r{p->data.data, p->data.data + p->data.len};
	decode_rows(l, image_kind(p->action), k_tuple_skip, p->bin_tz, &r, static_cast<uint32>(p->nrows), &out, lens);
	pfree(p->data.data);
	pfree(p->lens);
	p->data = out;
	p->lens = lens;
	p->bin = false;
	p->names_rel = InvalidOid;  // the next jsonb row sets up its names
	MemoryContextSwitchTo(old);
}

bytea* pack_images(Pack* p, bool* given)
{
	*given = false;
	if (!p->bin)
		return nullptr;
	const int zlen = p->bin_zone ? static_cast<int>(strlen(p->bin_zone)) : 0;
	const Size total = VARHDRSZ + k_prefix + zlen + p->bin_header_len + p->data.len;
	if (total > MaxAllocSize)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("audit record too large")));
	// A value small enough to be held back is made where the writer keeps it
	// (and given to it: write_record() keeps it without a copy).
	*given = total <= k_hold_back_max;
	bytea* b = static_cast<bytea*>(MemoryContextAlloc(*given ? TopTransactionContext : p->cxt, total));
	SET_VARSIZE(b, total);
	char* o = VARDATA(b);
	memcpy(o, k_magic, 4);
	o[4] = k_version;
	o[5] = image_kind(p->action);
	const uint32 n = static_cast<uint32>(p->nrows);
	memcpy(o + 6, &n, sizeof n);
	o[10] = static_cast<char>(zlen);
	memcpy(o + k_prefix, p->bin_zone, zlen);
	memcpy(o + k_prefix + zlen, p->bin_header, p->bin_header_len);
	memcpy(o + k_prefix + zlen + p->bin_header_len, p->data.data, p->data.len);
	return b;
}

namespace {

// The jsonb array of an `images` value.
Jsonb* images_to_jsonb(bytea* images)
{
	Reader r{VARDATA_ANY(images), VARDATA_ANY(images) + VARSIZE_ANY_EXHDR(images)};
	const char* pre = take(&r, k_prefix);
	if (memcmp(pre, k_magic, 4) != 0 || (pre[4] != 1 && pre[4] != k_version) ||
	    (pre[5] != 'N' && pre[5] != 'O' && pre[5] != 'U'))
		malformed();
	const Size skip = pre[4] == 1 ? 0 : k_tuple_skip;
	uint32 nrows;
	memcpy(&nrows, pre + 6, sizeof nrows);
	const uint8 zlen = static_cast<uint8>(pre[10]);
	const char* zname = take(&r, zlen);
	pg_tz* zone = nullptr;
	if (zlen > 0) {
		char* z = pnstrdup(zname, zlen);
		zone = pg_tzset(z);  // (NULL for a zone this server does not know: the session's then)
	}
	const ImageLayout* l = parse_layout(&r);
	// each row takes at least its length and the stored part of a tuple header
	if (nrows > static_cast<Size>(r.end - r.p) / (sizeof(uint32) + SizeofHeapTupleHeader - skip))
		malformed();
	StringInfoData out;
	initStringInfo(&out);
	uint32* lens = static_cast<uint32*>(palloc(sizeof(uint32) * (nrows + 1)));
	decode_rows(l, pre[5], skip, zone, &r, nrows, &out, lens);
	if (r.p != r.end)
		malformed();
	return rows_array_of(out.data, out.len, lens, static_cast<int>(nrows));
}

SPIPlanPtr read_plans[2];

}  // namespace

}  // namespace tenant_guard::audit_log

namespace al = tenant_guard::audit_log;

// tenant_guard._audit_images(id bigint, xact_at timestamptz, org text, hash bytea) returns jsonb:
// the row changes of a binary record the caller can read (NULL otherwise)
TG_C_FUNCTION(tg__audit_images)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
		PG_RETURN_NULL();
	const bool no_org = PG_ARGISNULL(2);
	// The caller's rights and row-level security: the same rows the view shows.
	static const char* const sql[2] = {
	    "SELECT images FROM tenant_guard.audit_log WHERE org OPERATOR(pg_catalog.=) $3 "
	    "AND id OPERATOR(pg_catalog.=) $1 AND xact_at OPERATOR(pg_catalog.=) $2 "
	    "AND hash OPERATOR(pg_catalog.=) $4 AND images IS NOT NULL LIMIT 1",
	    "SELECT images FROM tenant_guard.audit_log WHERE org IS NULL "
	    "AND id OPERATOR(pg_catalog.=) $1 AND xact_at OPERATOR(pg_catalog.=) $2 "
	    "AND hash OPERATOR(pg_catalog.=) $4 AND images IS NOT NULL AND $3::pg_catalog.text IS NULL LIMIT 1"};
	Datum args[4] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), no_org ? (Datum) 0 : PG_GETARG_DATUM(2),
	                 PG_GETARG_DATUM(3)};
	char nulls[4] = {' ', ' ', no_org ? 'n' : ' ', ' '};
	MemoryContext caller = CurrentMemoryContext;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "tenant_guard: SPI_connect failed");
	SPIPlanPtr& plan = al::read_plans[no_org ? 1 : 0];
	if (plan == nullptr) {
		Oid types[4] = {INT8OID, TIMESTAMPTZOID, TEXTOID, BYTEAOID};
		SPIPlanPtr pl = SPI_prepare(sql[no_org ? 1 : 0], 4, types);
		if (pl == nullptr || SPI_keepplan(pl) != 0)
			elog(ERROR, "tenant_guard: could not prepare the audit image query");
		plan = pl;
	}
	if (SPI_execute_plan(plan, args, nulls, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "tenant_guard: could not read an audit record");
	Jsonb* result = nullptr;
	if (SPI_processed == 1) {
		bool isnull;
		Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull) {
			MemoryContext old = MemoryContextSwitchTo(caller);
			result = al::images_to_jsonb(DatumGetByteaPP(d));
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	if (result == nullptr)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}
