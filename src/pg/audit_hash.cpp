/*
 * pg/audit_hash.cpp
 *
 * The hash of an audit record: SHA-256 over the canonical bytes of its 21
 * hashed columns (core::audit::hash_fields), chained through prev_hash and,
 * for seals, seal_prev (audit_log.hpp).
 */
#include <cstdio>
#include <cstring>

#include "core/audit.hpp"

extern "C" {
#include "postgres.h"
#include "utils/builtins.h"
}

#include "pg/audit_log.hpp"

namespace tg = tenant_guard;
namespace audit = tenant_guard::audit;

namespace tenant_guard::audit_log {

namespace {

// The bytes hashed for one column, palloc'd or pointing into the value:
// integers and times as decimal text, text and bytea as they are, `detail`
// as jsonb text, and `rows` as its jsonb binary form (the value as stored;
// its text form would cost more than writing the record); `images` as it is.
void field_bytes(int col, Datum v, const char** data, std::size_t* len)
{
	switch (k_types[col]) {
	case INT4OID: {
		char* buf = static_cast<char*>(palloc(12));
		*len = static_cast<std::size_t>(pg_ltoa(DatumGetInt32(v), buf));
		*data = buf;
		return;
	}
	case INT8OID:
	case TIMESTAMPTZOID: {
		char* buf = static_cast<char*>(palloc(MAXINT8LEN + 1));
		*len = static_cast<std::size_t>(pg_lltoa(DatumGetInt64(v), buf));
		*data = buf;
		return;
	}
	case JSONBOID:
		if (col != c_rows) {
			Jsonb* jb = DatumGetJsonbP(v);
			char* s = JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
			*data = s;
			*len = strlen(s);
			return;
		}
		[[fallthrough]];
	default: {  // text, bytea, rows
		struct varlena* p = pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(v)));
		*data = VARDATA_ANY(p);
		*len = VARSIZE_ANY_EXHDR(p);
		return;
	}
	}
}

}  // namespace

namespace {

static_assert(c_seal_prev == c_seal_seq + 1 && k_nhashed == c_seal_prev + 1,
              "the seal fields are the last hashed ones");

// Column i of a record as a hashed field.
void one_field(int i, const Datum* values, const bool* nulls, audit::FieldView* f)
{
	if (nulls[i]) {
		f->kind = audit::FieldView::k_null;
		return;
	}
	f->kind = audit::FieldView::k_bytes;
	field_bytes(i, values[i], &f->data, &f->len);
}

// The hashed fields of a record, the first `upto` of them: binary row
// images in the place of `rows`, an array of `images` (after `rows` if that
// is set too), framed unlike any `rows` value alone. `body` holds that array.
void record_fields(const Datum* values, const bool* nulls, int upto, audit::FieldView* f, audit::FieldView* body)
{
	for (int i = 0; i < upto; ++i)
		one_field(i, values, nulls, &f[i]);
	if (upto > c_rows && !nulls[c_images]) {
		std::size_t nbody = 0;
		if (!nulls[c_rows])
			body[nbody++] = f[c_rows];
		body[nbody].kind = audit::FieldView::k_bytes;
		field_bytes(c_images, values[c_images], &body[nbody].data, &body[nbody].len);
		++nbody;
		f[c_rows].kind = audit::FieldView::k_array;
		f[c_rows].elems = body;
		f[c_rows].nelems = nbody;
	}
}

bytea* hash_out(const audit::Hash& h)
{
	bytea* out = static_cast<bytea*>(palloc(VARHDRSZ + h.size()));
	SET_VARSIZE(out, VARHDRSZ + h.size());
	memcpy(VARDATA(out), h.data(), h.size());
	return out;
}

// The begun digests of held-back records (hash_begin), by handle - 1. The
// arrays live in TopMemoryContext; the states (OpenSSL memory) are freed
// when released or at the end of the transaction (hash_states_reset).
constexpr int k_max_live_states = 4096;  // past that, records are hashed whole when written or sealed
audit::HashState** states = nullptr;
int* free_slots = nullptr;
int nslots = 0;  // slots handed out at least once
int maxslots = 0;
int nfree = 0;
int nlive = 0;

}  // namespace

// SHA-256 over the hashed columns, as a bytea.
bytea* hash_record(const Datum* values, const bool* nulls)
{
	audit::FieldView f[k_nhashed];
	audit::FieldView body[2];
	record_fields(values, nulls, k_nhashed, f, body);
	audit::Hash h;
	if (!audit::hash_fields(f, k_nhashed, &h))
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not hash an audit record")));
	return hash_out(h);
}

int hash_begin(const Datum* values, const bool* nulls)
{
	if (nlive >= k_max_live_states)
		return 0;
	if (nfree == 0 && nslots == maxslots) {
		const int n = maxslots ? maxslots * 2 : 64;
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		states = static_cast<audit::HashState**>(states ? repalloc(states, sizeof(*states) * n)
		                                                : palloc(sizeof(*states) * n));
		free_slots = static_cast<int*>(free_slots ? repalloc(free_slots, sizeof(int) * n) : palloc(sizeof(int) * n));
		MemoryContextSwitchTo(old);
		maxslots = n;
	}
	audit::FieldView f[c_seal_seq];
	audit::FieldView body[2];
	record_fields(values, nulls, c_seal_seq, f, body);
	audit::HashState* st = audit::hash_fields_begin(f, c_seal_seq);
	if (st == nullptr)
		return 0;  // hashed whole when it is written
	const int slot = nfree > 0 ? free_slots[--nfree] : nslots++;
	states[slot] = st;
	++nlive;
	return slot + 1;
}

bytea* hash_finish(int handle, const Datum* values, const bool* nulls)
{
	if (handle <= 0 || handle > nslots || states[handle - 1] == nullptr)
		return hash_record(values, nulls);
	audit::FieldView f[k_nhashed - c_seal_seq];
	for (int i = c_seal_seq; i < k_nhashed; ++i)
		one_field(i, values, nulls, &f[i - c_seal_seq]);
	audit::Hash h;
	if (!audit::hash_fields_finish(states[handle - 1], f, k_nhashed - c_seal_seq, &h))
		return hash_record(values, nulls);
	return hash_out(h);
}

void hash_release(int handle)
{
	if (handle <= 0 || handle > nslots || states[handle - 1] == nullptr)
		return;
	audit::hash_state_free(states[handle - 1]);
	states[handle - 1] = nullptr;
	free_slots[nfree++] = handle - 1;
	--nlive;
}

int hash_states_live()
{
	return nlive;
}

void hash_states_reset()
{
	for (int i = 0; i < nslots; ++i)
		audit::hash_state_free(states[i]);
	nslots = nfree = nlive = 0;
	if (maxslots > 256) {  // a large transaction's arrays are not kept
		pfree(states);
		pfree(free_slots);
		states = nullptr;
		free_slots = nullptr;
		maxslots = 0;
	}
}

bytea* zero_hash()
{
	bytea* out = static_cast<bytea*>(palloc0(VARHDRSZ + 32));
	SET_VARSIZE(out, VARHDRSZ + 32);
	return out;
}

bytea* hash_bytea(const uint8* h)
{
	bytea* out = static_cast<bytea*>(palloc(VARHDRSZ + 32));
	SET_VARSIZE(out, VARHDRSZ + 32);
	memcpy(VARDATA(out), h, 32);
	return out;
}

}  // namespace tenant_guard::audit_log
