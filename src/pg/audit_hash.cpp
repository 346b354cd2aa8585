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

// SHA-256 over the hashed columns, as a bytea.
bytea* hash_record(const Datum* values, const bool* nulls)
{
	audit::FieldView f[k_nhashed];
	for (int i = 0; i < k_nhashed; ++i) {
		if (nulls[i]) {
			f[i].kind = audit::FieldView::k_null;
			continue;
		}
		f[i].kind = audit::FieldView::k_bytes;
		field_bytes(i, values[i], &f[i].data, &f[i].len);
	}
	// Binary row images: in the place of `rows`, an array of `images` (after
	// `rows` if that is set too), framed unlike any `rows` value alone.
	audit::FieldView body[2];
	if (!nulls[c_images]) {
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
	audit::Hash h;
	if (!audit::hash_fields(f, k_nhashed, &h))
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not hash an audit record")));
	bytea* out = static_cast<bytea*>(palloc(VARHDRSZ + h.size()));
	SET_VARSIZE(out, VARHDRSZ + h.size());
	memcpy(VARDATA(out), h.data(), h.size());
	return out;
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
