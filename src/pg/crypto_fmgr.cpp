/*
 * pg/crypto_fmgr.cpp
 *
 * Column encryption with per-tenant keys (docs/encryption.md,
 * docs/key-management.md):
 *
 *   tenant_guard.encrypt(data bytea, aad text) returns bytea         (also encrypt_text)
 *   tenant_guard.decrypt(data bytea, aad text) returns bytea
 *   tenant_guard.decrypt_text(data bytea, aad text) returns text
 *   tenant_guard.reencrypt(data bytea, aad text) returns bytea
 *   tenant_guard.key_version(data bytea) returns integer
 *   tenant_guard.blind_index(data text, context text) returns bytea
 *   tenant_guard.rotate_key(org uuid) returns integer
 *   tenant_guard.shred_keys(org uuid) returns integer
 *   tenant_guard.rewrap_keys() returns integer
 *   tenant_guard.hmac_sha256, verify_hmac_sha256, random_token, hash_token
 *
 * The keys (master key, tenant key table, key cache) are crypto_keys.cpp's.
 *
 * Boundary rules (boundary.hpp): PostgreSQL calls that can raise go through
 * pg_call once C++ objects exist; the SPI sections are plain C lambdas that
 * copy their results into fixed-size fields. No reference into the cache is
 * held across a PostgreSQL call (an invalidation may clear the cache there).
 */
#include <cstring>
#include <string>
#include <vector>

#include <openssl/rand.h>

#include "core/aead.hpp"
#include "core/encoding.hpp"
#include "core/envelope.hpp"
#include "core/error.hpp"
#include "pg/boundary.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/fd.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"
#include "utils/memutils.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/uuid.h"
}

#include "pg/crypto_keys.hpp"

namespace tg = tenant_guard;
using tg::Error;
using tg::SecureBuffer;
using tg::pg::pg_call;
using namespace tenant_guard::crypto::keys;

namespace {

// ------------------------------------------------------------ functions --

Error null_arg(const char* what)
{
	return Error(tg::sqlstate::k_null_value_not_allowed, std::string(what) + " must not be NULL");
}

const std::uint8_t* bytes(const varlena* v)
{
	return reinterpret_cast<const std::uint8_t*>(VARDATA_ANY(v));
}

bytea* alloc_bytea(std::size_t n)
{
	if (n > MaxAllocSize - VARHDRSZ)
		throw Error(tg::sqlstate::k_program_limit_exceeded, "value is too large", "The result would exceed 1 GB.");
	auto* b = static_cast<bytea*>(palloc_extended(VARHDRSZ + n, MCXT_ALLOC_NO_OOM));
	if (b == nullptr)
		throw std::bad_alloc();
	SET_VARSIZE(b, VARHDRSZ + n);
	return b;
}

bytea* seal(Dek& d, const env::OrgId& org, std::uint32_t version, const varlena* aad, const std::uint8_t* in,
            std::size_t len)
{
	if (len > MaxAllocSize - VARHDRSZ - env::k_overhead)
		throw Error(tg::sqlstate::k_program_limit_exceeded, "value is too large to encrypt",
		            "The ciphertext would exceed 1 GB.");
	bytea* out = alloc_bytea(len + env::k_overhead);
	auto* p = reinterpret_cast<std::uint8_t*>(VARDATA(out));
	State& s = state();
	if (s.nonce_used + tg::aead::k_nonce_len > sizeof s.nonce_pool || s.nonce_pid != MyProcPid) {
		if (RAND_bytes(s.nonce_pool, sizeof s.nonce_pool) != 1)
			throw Error(tg::sqlstate::k_internal_error, "could not generate a nonce");
		s.nonce_used = 0;
		s.nonce_pid = MyProcPid;
	}
	const std::uint8_t* nonce = s.nonce_pool + s.nonce_used;
	s.nonce_used += tg::aead::k_nonce_len;
	env::write_header(p, version, nonce);
	std::vector<std::uint8_t>& ad = s.ad;
	env::associated_data(ad, org, version, bytes(aad), VARSIZE_ANY_EXHDR(aad));
	d.gcm->seal(nonce, ad.data(), ad.size(), in, len, p + env::k_header_len, p + env::k_header_len + len);
	return out;
}

// Decrypts into `out` (ciphertext_len bytes); throws on any failure.
void open_into(const env::View& v, const env::OrgId& org, const varlena* aad, std::uint8_t* out)
{
	Dek& d = dek_for(org, v.key_version);
	std::vector<std::uint8_t>& ad = state().ad;
	env::associated_data(ad, org, v.key_version, bytes(aad), VARSIZE_ANY_EXHDR(aad));
	if (!d.gcm->open(v.nonce, ad.data(), ad.size(), v.ciphertext, v.ciphertext_len, v.tag, out))
		throw Error(tg::sqlstate::k_invalid_parameter_value, "ciphertext authentication failed",
		            "The value was altered, or it was encrypted for another tenant, key version or aad.");
}

Datum decrypt_common(FunctionCallInfo fcinfo, bool as_text)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		throw null_arg("aad");
	bytea* data = PG_GETARG_BYTEA_PP(0);
	text* aad = PG_GETARG_TEXT_PP(1);
	const env::View v = env::decode_or_throw(bytes(data), VARSIZE_ANY_EXHDR(data));
	const env::OrgId org = current_org();
	bytea* out = alloc_bytea(v.ciphertext_len);
	auto* p = reinterpret_cast<std::uint8_t*>(VARDATA(out));
	open_into(v, org, aad, p);
	if (as_text) {
		const int len = static_cast<int>(v.ciphertext_len);
		const bool ok =
		    pg_call([&] { return pg_verify_mbstr(GetDatabaseEncoding(), reinterpret_cast<char*>(p), len, true); });
		if (!ok) {
			sodium_memzero(p, v.ciphertext_len);
			throw Error(tg::sqlstate::k_character_not_in_repertoire,
			            "decrypted value is not valid text in the database encoding",
			            "The plaintext is binary data or contains a NUL byte.",
			            "Use tenant_guard.decrypt() for binary values.");
		}
	}
	PG_RETURN_POINTER(out);
}

}  // namespace

// tenant_guard.encrypt(data bytea, aad text DEFAULT '') returns bytea; also encrypt_text(text, text)
TG_FUNCTION(tg_encrypt)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		throw null_arg("aad");
	bytea* data = PG_GETARG_BYTEA_PP(0);
	text* aad = PG_GETARG_TEXT_PP(1);
	const env::OrgId org = current_org();
	std::uint32_t version = 0;
	Dek& d = active_dek(org, &version);
	PG_RETURN_BYTEA_P(seal(d, org, version, aad, bytes(data), VARSIZE_ANY_EXHDR(data)));
}

// tenant_guard.decrypt(data bytea, aad text DEFAULT '') returns bytea
TG_FUNCTION(tg_decrypt)
{
	return decrypt_common(fcinfo, false);
}

// tenant_guard.decrypt_text(data bytea, aad text DEFAULT '') returns text
TG_FUNCTION(tg_decrypt_text)
{
	return decrypt_common(fcinfo, true);
}

// tenant_guard.reencrypt(data bytea, aad text DEFAULT '') returns bytea
TG_FUNCTION(tg_reencrypt)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		throw null_arg("aad");
	bytea* data = PG_GETARG_BYTEA_PP(0);
	text* aad = PG_GETARG_TEXT_PP(1);
	const env::View v = env::decode_or_throw(bytes(data), VARSIZE_ANY_EXHDR(data));
	const env::OrgId org = current_org();
	SecureBuffer plain(v.ciphertext_len);
	open_into(v, org, aad, plain.data());
	std::uint32_t version = 0;
	Dek& d = active_dek(org, &version);
	PG_RETURN_BYTEA_P(seal(d, org, version, aad, plain.data(), plain.size()));
}

// tenant_guard.key_version(data bytea) returns integer (STRICT): no key needed
TG_FUNCTION(tg_key_version)
{
	bytea* data = PG_GETARG_BYTEA_PP(0);
	const env::View v = env::decode_or_throw(bytes(data), VARSIZE_ANY_EXHDR(data));
	PG_RETURN_INT32(static_cast<std::int32_t>(v.key_version));
}

// tenant_guard.blind_index(data text, context text) returns bytea
TG_FUNCTION(tg_blind_index)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		throw null_arg("context");
	text* data = PG_GETARG_TEXT_PP(0);
	text* context = PG_GETARG_TEXT_PP(1);
	const env::OrgId org = current_org();
	State& s = state();
	master();
	auto t = s.tenants.find(org);
	if (t == s.tenants.end() || t->second.index_key.empty()) {
		// The index key derives from the tenant's oldest live DEK, so it does
		// not change when the key is rotated (docs/encryption.md).
		std::uint32_t active = 0;
		(void) active_dek(org, &active);
		std::int32_t root = 0;
		bool found = false;
		as_key_owner([&] {
			Oid types[1] = {UUIDOID};
			Datum values[1] = {uuid_datum(org)};
			exec(k_root_version, 1, types, values, SPI_OK_SELECT);
			bool isnull = true;
			Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			found = !isnull;
			root = isnull ? 0 : DatumGetInt32(d);
		});
		if (!found)
			throw Error(tg::sqlstate::k_internal_error, "tenant has no live key");
		Dek& d = dek_for(org, static_cast<std::uint32_t>(root));
		SecureBuffer k = env::blind_index_key(d.key.data(), org);
		s.tenants[org].index_key = std::move(k);
		t = s.tenants.find(org);
	}
	const tg::aead::Digest h = env::blind_index(t->second.index_key, bytes(context), VARSIZE_ANY_EXHDR(context),
	                                            bytes(data), VARSIZE_ANY_EXHDR(data));
	bytea* out = alloc_bytea(h.size());
	std::memcpy(VARDATA(out), h.data(), h.size());
	PG_RETURN_BYTEA_P(out);
}

// tenant_guard.rotate_key(org uuid DEFAULT NULL) returns integer
TG_FUNCTION(tg_rotate_key)
{
	env::OrgId org;
	if (PG_ARGISNULL(0))
		org = current_org();
	else
		std::memcpy(org.data(), PG_GETARG_UUID_P(0)->data, UUID_LEN);
	master();
	std::int32_t max_version = 0;
	const KeyRow active = lock_tenant(org, &max_version);
	PG_RETURN_INT32(static_cast<std::int32_t>(new_active_key(org, max_version, active.found)));
}

// tenant_guard.shred_keys(org uuid) returns integer: how many key versions were destroyed
TG_FUNCTION(tg_shred_keys)
{
	if (PG_ARGISNULL(0))
		throw null_arg("org");
	env::OrgId org;
	std::memcpy(org.data(), PG_GETARG_UUID_P(0)->data, UUID_LEN);
	// No master key needed: erasure must not depend on being able to decrypt.
	const std::string who = actor();
	std::int32_t max_version = 0;
	(void) lock_tenant(org, &max_version);
	std::int64_t n = 0;
	as_key_owner([&] {
		Oid t2[2] = {UUIDOID, TEXTOID};
		Datum v2[2] = {uuid_datum(org), CStringGetTextDatum(who.c_str())};
		exec(k_shred, 2, t2, v2, SPI_OK_SELECT);
		bool isnull = false;
		Datum list = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		Oid t4[4] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID};
		Datum v4[4] = {v2[0], CStringGetTextDatum("shredded"), list, v2[1]};
		exec(k_event, 4, t4, v4, SPI_OK_INSERT);
	});
	PG_RETURN_INT32(static_cast<std::int32_t>(n));
}

// tenant_guard.rewrap_keys() returns integer: how many tenant keys were re-wrapped
TG_FUNCTION(tg_rewrap_keys)
{
	const Kek& current = master();
	struct Row {
		std::uint8_t org[UUID_LEN];
		std::int32_t version;
		std::uint8_t wrapped[env::k_wrapped_len];
		std::uint8_t kek_id[env::k_kek_id_len];
	};
	Row* rows = nullptr;
	std::uint64_t n = 0;
	const env::KekId cur_id = current.id;
	as_key_owner([&] {
		Oid types[1] = {BYTEAOID};
		Datum values[1] = {bytea_datum(cur_id.data(), cur_id.size())};
		exec("SELECT org_id, version, wrapped_key, kek_id FROM tenant_guard.tenant_keys "
		     "WHERE state OPERATOR(pg_catalog.<>) 'shredded' AND kek_id OPERATOR(pg_catalog.<>) $1 "
		     "ORDER BY org_id, version FOR UPDATE",
		     1, types, values, SPI_OK_SELECT);
		n = SPI_processed;
		rows = static_cast<Row*>(MemoryContextAllocZero(TopTransactionContext, sizeof(Row) * (n ? n : 1)));
		for (std::uint64_t i = 0; i < n; ++i) {
			HeapTuple row = SPI_tuptable->vals[i];
			TupleDesc desc = SPI_tuptable->tupdesc;
			bool isnull = false;
			std::memcpy(rows[i].org, DatumGetUUIDP(SPI_getbinval(row, desc, 1, &isnull))->data, UUID_LEN);
			rows[i].version = DatumGetInt32(SPI_getbinval(row, desc, 2, &isnull));
			copy_bytes(row, desc, 3, rows[i].wrapped, sizeof rows[i].wrapped);
			copy_bytes(row, desc, 4, rows[i].kek_id, sizeof rows[i].kek_id);
		}
	});
	if (n == 0)
		PG_RETURN_INT32(0);
	const Kek* prev = previous_master();
	std::vector<std::vector<std::uint8_t>> rewrapped;
	rewrapped.reserve(n);
	for (std::uint64_t i = 0; i < n; ++i) {
		env::OrgId org;
		std::memcpy(org.data(), rows[i].org, org.size());
		if (prev == nullptr || !tg::aead::equal_ct(rows[i].kek_id, prev->id.data(), env::k_kek_id_len))
			throw Error(tg::sqlstate::k_object_not_in_prerequisite_state,
			            "tenant key is wrapped by a master key that is not configured",
			            "Key version " + std::to_string(rows[i].version) + " of tenant " + org_text(org) +
			                " was wrapped neither by the master key nor by the previous master key.",
			            "Set tenant_guard.previous_master_key_file (or _command) to the old master key.");
		SecureBuffer dek = env::unwrap_dek(prev->key.data(), org, static_cast<std::uint32_t>(rows[i].version),
		                                   rows[i].wrapped, sizeof rows[i].wrapped);
		rewrapped.push_back(
		    env::wrap_dek(current.key.data(), org, static_cast<std::uint32_t>(rows[i].version), dek.data()));
	}
	const std::string who = actor();
	as_key_owner([&] {
		for (std::uint64_t i = 0; i < n; ++i) {
			env::OrgId org;
			std::memcpy(org.data(), rows[i].org, org.size());
			Oid types[4] = {UUIDOID, INT4OID, BYTEAOID, BYTEAOID};
			Datum values[4] = {uuid_datum(org), Int32GetDatum(rows[i].version),
			                   bytea_datum(rewrapped[i].data(), rewrapped[i].size()),
			                   bytea_datum(cur_id.data(), cur_id.size())};
			exec("UPDATE tenant_guard.tenant_keys SET wrapped_key = $3, kek_id = $4 "
			     "WHERE org_id OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2",
			     4, types, values, SPI_OK_UPDATE);
			char versions[32];
			snprintf(versions, sizeof versions, "{%d}", rows[i].version);
			Oid t4[4] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID};
			Datum v4[4] = {values[0], CStringGetTextDatum("rewrapped"), CStringGetTextDatum(versions),
			               CStringGetTextDatum(who.c_str())};
			exec(k_event, 4, t4, v4, SPI_OK_INSERT);
		}
	});
	PG_RETURN_INT32(static_cast<std::int32_t>(n));
}

// tenant_guard.hmac_sha256(data bytea, key bytea) returns bytea (STRICT)
TG_FUNCTION(tg_hmac_sha256)
{
	bytea* data = PG_GETARG_BYTEA_PP(0);
	bytea* key = PG_GETARG_BYTEA_PP(1);
	if (VARSIZE_ANY_EXHDR(key) == 0)
		throw Error(tg::sqlstate::k_invalid_parameter_value, "HMAC key must not be empty");
	const tg::aead::Digest h =
	    tg::aead::hmac_sha256(bytes(key), VARSIZE_ANY_EXHDR(key), bytes(data), VARSIZE_ANY_EXHDR(data));
	bytea* out = alloc_bytea(h.size());
	std::memcpy(VARDATA(out), h.data(), h.size());
	PG_RETURN_BYTEA_P(out);
}

// tenant_guard.verify_hmac_sha256(data bytea, signature bytea, key bytea) returns boolean (STRICT)
TG_FUNCTION(tg_verify_hmac_sha256)
{
	bytea* data = PG_GETARG_BYTEA_PP(0);
	bytea* sig = PG_GETARG_BYTEA_PP(1);
	bytea* key = PG_GETARG_BYTEA_PP(2);
	if (VARSIZE_ANY_EXHDR(key) == 0)
		throw Error(tg::sqlstate::k_invalid_parameter_value, "HMAC key must not be empty");
	const tg::aead::Digest h =
	    tg::aead::hmac_sha256(bytes(key), VARSIZE_ANY_EXHDR(key), bytes(data), VARSIZE_ANY_EXHDR(data));
	// The length of a signature is public; only its bytes are compared in constant time.
	if (VARSIZE_ANY_EXHDR(sig) != h.size())
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(tg::aead::equal_ct(bytes(sig), h.data(), h.size()));
}

// tenant_guard.random_token(bytes integer DEFAULT 32) returns text (STRICT): URL-safe base64, no padding
TG_FUNCTION(tg_random_token)
{
	const std::int32_t n = PG_GETARG_INT32(0);
	if (n < 16 || n > 1024)
		throw Error(tg::sqlstate::k_invalid_parameter_value, "random_token() takes 16 to 1024 bytes",
		            "Fewer than 16 random bytes (128 bits) could be guessed; more than 1024 is not a token.");
	SecureBuffer raw(static_cast<std::size_t>(n));
	randombytes_buf(raw.data(), raw.size());
	const std::string token = tg::encoding::base64url_encode(raw.data(), raw.size());
	text* out = static_cast<text*>(palloc_extended(VARHDRSZ + token.size(), MCXT_ALLOC_NO_OOM));
	if (out == nullptr)
		throw std::bad_alloc();
	SET_VARSIZE(out, VARHDRSZ + token.size());
	std::memcpy(VARDATA(out), token.data(), token.size());
	PG_RETURN_TEXT_P(out);
}

// tenant_guard.hash_token(token text) returns bytea (STRICT): SHA-256 of the token's bytes
TG_FUNCTION(tg_hash_token)
{
	text* token = PG_GETARG_TEXT_PP(0);
	const tg::aead::Digest h = tg::aead::sha256(bytes(token), VARSIZE_ANY_EXHDR(token));
	bytea* out = alloc_bytea(h.size());
	std::memcpy(VARDATA(out), h.data(), h.size());
	PG_RETURN_BYTEA_P(out);
}
