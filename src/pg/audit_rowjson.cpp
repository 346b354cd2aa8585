/*
 * pg/audit_rowjson.cpp
 *
 * A row change written straight in jsonb's binary form: the object
 * {"pk": {...}, "new": {...}} (INSERT), {"pk": {...}, "old": {...}} (DELETE)
 * or {"pk": {...}, "old": {...}, "set": {...}, "changed": [...]} (UPDATE) of
 * one row, appended to an open record (audit_log.hpp, "Statement records").
 * An UPDATE's after image is stored as the new values of the changed
 * columns only ("set"): the other columns' values are bytewise equal to the
 * before image's (that is how "changed" is decided), so audit_trail's
 * new_row, `old || set`, is the whole after image, and the record carries
 * each unchanged value once instead of twice.
 *
 * The bytes are those JsonbValueToJsonb() makes of the same values (keys
 * in jsonb's order, every JB_OFFSET_STRIDE-th entry an end offset, numerics
 * and containers 4-byte aligned, the padding counted in the entry that
 * follows it), without the value tree and the sort of every object's keys
 * that the generic path costs per row. A record's hash is of these bytes,
 * and a dump restores the `rows` column through its text form, so a
 * difference would show as a broken chain after pg_restore
 * (test/dump) and in the regression tests that compare rows with to_jsonb().
 *
 * C-style: PostgreSQL is called directly (palloc, enlargeStringInfo); no
 * C++ object is alive meanwhile.
 */
#include <cstring>

extern "C" {
#include "postgres.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"
}

#include "pg/audit_log.hpp"

namespace tenant_guard::audit_log {

namespace {

void pad_to_int(StringInfo b)
{
	static const char zeros[4] = {0, 0, 0, 0};
	const int pad = INTALIGN(b->len) - b->len;
	if (pad > 0)
		appendBinaryStringInfo(b, zeros, pad);
}

// A container being written: its header and entries are reserved at the
// start, each entry filled in once its data has been appended.
struct Container {
	int base;      // where the container starts, before its padding
	int entries;   // offset of the first JEntry
	int k;         // entries filled so far
	uint32 total;  // data length so far
};

void begin(StringInfo b, Container* c, uint32 header, int nentries)
{
	c->base = b->len;
	pad_to_int(b);
	appendBinaryStringInfo(b, reinterpret_cast<const char*>(&header), sizeof header);
	c->entries = b->len;
	enlargeStringInfo(b, static_cast<int>(sizeof(JEntry)) * nentries);
	b->len += static_cast<int>(sizeof(JEntry)) * nentries;
	c->k = 0;
	c->total = 0;
}

void entry(StringInfo b, Container* c, JEntry meta)
{
	c->total += JBE_OFFLENFLD(meta);
	if (c->total > JENTRY_OFFLENMASK)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("audit row change too large")));
	if (c->k % JB_OFFSET_STRIDE == 0)
		meta = (meta & JENTRY_TYPEMASK) | c->total | JENTRY_HAS_OFF;
	memcpy(b->data + c->entries + sizeof(JEntry) * c->k, &meta, sizeof meta);
	++c->k;
}

// The entry of a finished container, in its parent.
JEntry end(StringInfo b, const Container* c)
{
	const uint32 len = static_cast<uint32>(b->len - c->base);
	if (len > JENTRY_OFFLENMASK)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("audit row change too large")));
	return JENTRY_ISCONTAINER | len;
}

JEntry put_string(StringInfo b, const char* s, int len)
{
	appendBinaryStringInfo(b, s, len);
	return JENTRY_ISSTRING | static_cast<uint32>(len);
}

JEntry put_scalar(StringInfo b, const JsonbValue* v)
{
	switch (v->type) {
	case jbvNull:
		return JENTRY_ISNULL;
	case jbvBool:
		return v->val.boolean ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE;
	case jbvString:
		return put_string(b, v->val.string.val, v->val.string.len);
	case jbvNumeric: {
		const int start = b->len;
		pad_to_int(b);
		appendBinaryStringInfo(b, reinterpret_cast<const char*>(v->val.numeric),
		                       static_cast<int>(VARSIZE_ANY(v->val.numeric)));
		return JENTRY_ISNUMERIC | static_cast<uint32>(b->len - start);
	}
	default:
		elog(ERROR, "tenant_guard: unexpected jsonb value type %d in an audit row", static_cast<int>(v->type));
	}
	return JENTRY_ISNULL;  // not reached
}

// A column's value: a scalar, or a jsonb container embedded as it is (a
// jsonb scalar, stored as a one-element array, contributes its scalar).
JEntry put_value(StringInfo b, const JsonbValue* v)
{
	if (v->type != jbvBinary)
		return put_scalar(b, v);
	JsonbContainer* jc = v->val.binary.data;
	if (JsonContainerIsScalar(jc)) {
		JsonbValue s;
		if (!JsonbExtractScalar(jc, &s))
			elog(ERROR, "tenant_guard: could not read a jsonb scalar");
		return put_scalar(b, &s);
	}
	const int start = b->len;
	pad_to_int(b);
	appendBinaryStringInfo(b, reinterpret_cast<const char*>(jc), v->val.binary.len);
	return JENTRY_ISCONTAINER | static_cast<uint32>(b->len - start);
}

// An object of columns (attnum - 1 indexes, already in jsonb key order).
JEntry put_columns(StringInfo b, const Pack* p, const int* cols, int n, const JsonbValue* vals)
{
	Container c;
	begin(b, &c, static_cast<uint32>(n) | JB_FOBJECT, 2 * n);
	for (int i = 0; i < n; ++i)
		entry(b, &c, put_string(b, p->names[cols[i]], p->namelens[cols[i]]));
	for (int i = 0; i < n; ++i)
		entry(b, &c, put_value(b, &vals[cols[i]]));
	return end(b, &c);
}

}  // namespace

void append_row_change(StringInfo b, const Pack* p, const RelInfo* info, const JsonbValue* ov, const JsonbValue* nv,
                       const int* changed, int nchanged)
{
	// The key columns that are audited, in jsonb key order.
	int pk[INDEX_MAX_KEYS];
	int npk = 0;
	for (int i = 0; i < info->npk && npk < INDEX_MAX_KEYS; ++i) {
		const int a = info->pk[i] - 1;
		// A key column excluded since enable_audit() (by a later ADD
		// PRIMARY KEY) stays out, as everywhere else.
		if (info->cols[a].kind == k_skip)
			continue;
		int k = npk++;
		while (k > 0 && (p->namelens[a] < p->namelens[pk[k - 1]] ||
		                 (p->namelens[a] == p->namelens[pk[k - 1]] &&
		                  memcmp(p->names[a], p->names[pk[k - 1]], p->namelens[a]) < 0))) {
			pk[k] = pk[k - 1];
			--k;
		}
		pk[k] = a;
	}
	// Top-level keys in jsonb order: "pk", "new", "old", "changed" for an
	// INSERT or a DELETE; "pk", "old", "set", "changed" for an UPDATE.
	const bool has_pk = info->npk > 0;
	const bool delta = ov != nullptr && nv != nullptr && changed != nullptr;
	const uint32 nkeys = (has_pk ? 1 : 0) + (nv ? 1 : 0) + (ov ? 1 : 0) + (changed ? 1 : 0);
	Container top;
	begin(b, &top, nkeys | JB_FOBJECT, static_cast<int>(2 * nkeys));
	if (has_pk)
		entry(b, &top, put_string(b, "pk", 2));
	if (nv && !delta)
		entry(b, &top, put_string(b, "new", 3));
	if (ov)
		entry(b, &top, put_string(b, "old", 3));
	if (delta)
		entry(b, &top, put_string(b, "set", 3));
	if (changed)
		entry(b, &top, put_string(b, "changed", 7));
	if (has_pk)
		entry(b, &top, put_columns(b, p, pk, npk, nv ? nv : ov));
	if (nv && !delta)
		entry(b, &top, put_columns(b, p, p->order, p->norder, nv));
	if (ov)
		entry(b, &top, put_columns(b, p, p->order, p->norder, ov));
	if (delta) {
		// The changed columns in jsonb key order: p->order filtered by
		// `changed` (ascending attnum - 1 indexes, searched by halves).
		int* set = static_cast<int*>(palloc(sizeof(int) * (nchanged + 1)));
		int nset = 0;
		for (int i = 0; i < p->norder && nset < nchanged; ++i) {
			const int a = p->order[i];
			int lo = 0, hi = nchanged;
			while (lo < hi) {
				const int mid = (lo + hi) / 2;
				if (changed[mid] < a)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < nchanged && changed[lo] == a)
				set[nset++] = a;
		}
		entry(b, &top, put_columns(b, p, set, nset, nv));
		pfree(set);
	}
	if (changed) {
		Container arr;
		begin(b, &arr, static_cast<uint32>(nchanged) | JB_FARRAY, nchanged);
		for (int i = 0; i < nchanged; ++i)
			entry(b, &arr, put_string(b, p->names[changed[i]], p->namelens[changed[i]]));
		entry(b, &top, end(b, &arr));
	}
	(void) end(b, &top);
}

}  // namespace tenant_guard::audit_log
