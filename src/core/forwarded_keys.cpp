/*
 * core/forwarded_keys.cpp: the forwarded key value and its MAC; see
 * forwarded_keys.hpp for the format.
 */
#include "core/forwarded_keys.hpp"

#include <cstring>

#include "core/encoding.hpp"
#include "core/no_postgres.hpp"

namespace tenant_guard::forwarded_keys {

namespace {

constexpr char k_salt[] = "tenant_guard forwarded key v1";
constexpr char k_label[] = "tgfwd";
constexpr char k_prefix[] = "v1";
constexpr std::uint8_t k_format = 1;

void put_be(std::vector<std::uint8_t>& v, std::uint64_t x, int bytes)
{
	for (int i = bytes - 1; i >= 0; --i)
		v.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
}

template <std::size_t N>
bool hex_field(const char* p, std::size_t len, std::array<std::uint8_t, N>* out)
{
	if (len != 2 * N)
		return false;
	const auto b = encoding::hex_decode(std::string_view(p, len));
	if (!b || b->size() != N)
		return false;
	std::memcpy(out->data(), b->data(), N);
	return true;
}

bool version_field(const char* p, std::size_t len, std::uint32_t* out)
{
	if (len == 0 || len > 10 || p[0] == '0')
		return false;
	std::uint64_t v = 0;
	for (std::size_t i = 0; i < len; ++i) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + static_cast<std::uint64_t>(p[i] - '0');
	}
	if (v > envelope::k_max_version)
		return false;
	*out = static_cast<std::uint32_t>(v);
	return true;
}

// One entry: five '.'-separated fields.
bool parse_entry(const char* p, std::size_t len, Entry* e)
{
	const char* field[5];
	std::size_t flen[5];
	std::size_t n = 0;
	std::size_t start = 0;
	for (std::size_t i = 0; i <= len; ++i) {
		if (i == len || p[i] == '.') {
			if (n == 5)
				return false;
			field[n] = p + start;
			flen[n] = i - start;
			++n;
			start = i + 1;
		}
	}
	return n == 5 && hex_field(field[0], flen[0], &e->org) && version_field(field[1], flen[1], &e->version) &&
	       hex_field(field[2], flen[2], &e->kek_id) && hex_field(field[3], flen[3], &e->wrapped) &&
	       hex_field(field[4], flen[4], &e->mac);
}

}  // namespace

SecureBuffer mac_key(const std::uint8_t* master_key)
{
	return aead::hkdf_sha256(master_key, aead::k_key_len, reinterpret_cast<const std::uint8_t*>(k_salt),
	                         sizeof k_salt - 1, nullptr, 0, aead::k_key_len);
}

aead::Digest mac(const SecureBuffer& key, const TxnId& txn, const Entry& e)
{
	std::vector<std::uint8_t> m;
	m.reserve(5 + 1 + 4 + 8 + 8 + e.org.size() + 4 + e.kek_id.size() + e.wrapped.size());
	m.insert(m.end(), k_label, k_label + sizeof k_label - 1);
	m.push_back(k_format);
	put_be(m, static_cast<std::uint32_t>(txn.initiator), 4);
	put_be(m, txn.number, 8);
	put_be(m, static_cast<std::uint64_t>(txn.timestamp), 8);
	m.insert(m.end(), e.org.begin(), e.org.end());
	put_be(m, e.version, 4);
	m.insert(m.end(), e.kek_id.begin(), e.kek_id.end());
	m.insert(m.end(), e.wrapped.begin(), e.wrapped.end());
	return aead::hmac_sha256(key.data(), key.size(), m.data(), m.size());
}

bool verify(const SecureBuffer& key, const TxnId& txn, const Entry& e)
{
	const aead::Digest want = mac(key, txn, e);
	return aead::equal_ct(want.data(), e.mac.data(), want.size());
}

std::string encode(const std::vector<Entry>& entries)
{
	if (entries.empty())
		return {};
	std::string out = k_prefix;
	for (const Entry& e : entries) {
		out += ':';
		out += encoding::hex_encode(e.org.data(), e.org.size());
		out += '.';
		out += std::to_string(e.version);
		out += '.';
		out += encoding::hex_encode(e.kek_id.data(), e.kek_id.size());
		out += '.';
		out += encoding::hex_encode(e.wrapped.data(), e.wrapped.size());
		out += '.';
		out += encoding::hex_encode(e.mac.data(), e.mac.size());
	}
	return out;
}

bool parse(const char* text, std::size_t len, std::vector<Entry>* out)
{
	out->clear();
	if (len == 0)
		return true;
	const std::size_t plen = sizeof k_prefix - 1;
	if (len <= plen || std::memcmp(text, k_prefix, plen) != 0 || text[plen] != ':')
		return false;
	std::size_t start = plen + 1;
	for (std::size_t i = start; i <= len; ++i) {
		if (i == len || text[i] == ':') {
			if (out->size() == k_max_entries)
				return false;
			Entry e;
			if (!parse_entry(text + start, i - start, &e))
				return false;
			out->push_back(e);
			start = i + 1;
		}
	}
	return true;
}

}  // namespace tenant_guard::forwarded_keys
