/*
 * core/claims.cpp: claims documents and settings to a tenant context.
 * JSON comes from nlohmann::json (Debian's nlohmann-json3-dev); this file only
 * walks the parsed value.
 */
#include "core/claims.hpp"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/no_postgres.hpp"

namespace tenant_guard::claims {

namespace {

int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Follows a dotted path through nested objects; nullptr when any step is missing.
const nlohmann::json* lookup(const nlohmann::json& doc, std::string_view path)
{
	const nlohmann::json* cur = &doc;
	std::size_t start = 0;
	while (true) {
		if (!cur->is_object())
			return nullptr;
		std::size_t dot = path.find('.', start);
		std::string key(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
		auto it = cur->find(key);
		if (it == cur->end())
			return nullptr;
		cur = &*it;
		if (dot == std::string_view::npos)
			return cur;
		start = dot + 1;
	}
}

std::optional<std::string> string_claim(const nlohmann::json& doc, std::string_view path)
{
	const nlohmann::json* v = lookup(doc, path);
	if (v == nullptr || !v->is_string())
		return std::nullopt;
	return normalize_text(v->get_ref<const std::string&>());
}

std::optional<std::int64_t> numeric_date(const nlohmann::json& doc, const char* name)
{
	auto it = doc.find(name);
	if (it == doc.end())
		return std::nullopt;
	// nlohmann's is_number_integer() is true for unsigned values too, so the
	// unsigned case comes first: read as int64, 2^63 and above would wrap.
	if (it->is_number_unsigned()) {
		auto u = it->get<std::uint64_t>();
		return u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
		           ? std::numeric_limits<std::int64_t>::max()
		           : static_cast<std::int64_t>(u);
	}
	if (it->is_number_integer())
		return it->get<std::int64_t>();
	if (it->is_number_float()) {
		double d = std::floor(it->get<double>());
		if (!std::isfinite(d) || d > 9.0e18 || d < -9.0e18)
			return std::nullopt;
		return static_cast<std::int64_t>(d);
	}
	return std::nullopt;
}

void read_scopes(const nlohmann::json& doc, std::string_view path, Context& ctx)
{
	const nlohmann::json* obj = lookup(doc, path);
	if (obj == nullptr || !obj->is_object())
		return;
	for (auto it = obj->begin(); it != obj->end(); ++it) {
		if (!it.value().is_array())
			continue;
		std::vector<std::string> values;
		for (const auto& e : it.value()) {
			if (e.is_string()) {
				if (e.get_ref<const std::string&>().find('\0') == std::string::npos)
					values.push_back(e.get<std::string>());
			} else if (e.is_number_unsigned())  // before is_number_integer(), which is true for it too
				values.push_back(std::to_string(e.get<std::uint64_t>()));
			else if (e.is_number_integer())
				values.push_back(std::to_string(e.get<std::int64_t>()));
		}
		ctx.scopes.emplace(it.key(), std::move(values));
	}
}

// The org id as a key: exact non-blank text, never padded.
void set_org_key(Context& ctx, std::string_view text)
{
	if (text.size() > k_max_org_key)
		return;
	auto normalized = normalize_text(text);
	if (!normalized || normalized->size() != text.size())
		return;
	ctx.org_key = std::move(normalized);
	ctx.org_bigint = parse_bigint(*ctx.org_key);
	ctx.org = parse_uuid(*ctx.org_key);
}

// Role and scopes mean nothing outside a tenant.
void drop_tenant_parts_without_org(Context& ctx)
{
	if (!ctx.org_key) {
		ctx.role.reset();
		ctx.scopes.clear();
	}
}

}  // namespace

std::optional<Uuid> parse_uuid(std::string_view text)
{
	if (text.size() != 36)
		return std::nullopt;
	Uuid out{};
	std::size_t byte = 0;
	bool any_nonzero = false;
	for (std::size_t i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (text[i] != '-')
				return std::nullopt;
			++i;
			continue;
		}
		int hi = hex_value(text[i]);
		int lo = hex_value(text[i + 1]);
		if (hi < 0 || lo < 0)
			return std::nullopt;
		out[byte] = static_cast<std::uint8_t>(hi * 16 + lo);
		any_nonzero = any_nonzero || out[byte] != 0;
		++byte;
		i += 2;
	}
	if (!any_nonzero)
		return std::nullopt;
	return out;
}

std::optional<std::int64_t> parse_bigint(std::string_view text)
{
	std::size_t i = 0;
	bool negative = false;
	if (!text.empty() && text[0] == '-') {
		negative = true;
		i = 1;
	}
	if (i >= text.size() || text.size() - i > 19)
		return std::nullopt;
	if (text[i] == '0' && (text.size() - i > 1 || negative))
		return std::nullopt;  // leading zeros and "-0" are not canonical
	std::uint64_t v = 0;
	for (; i < text.size(); ++i) {
		if (text[i] < '0' || text[i] > '9')
			return std::nullopt;
		v = v * 10 + static_cast<std::uint64_t>(text[i] - '0');
	}
	const std::uint64_t limit = negative ? 9223372036854775808ULL : 9223372036854775807ULL;
	if (v > limit)
		return std::nullopt;
	return negative ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
}

std::string format_uuid(const Uuid& u)
{
	static const char digits[] = "0123456789abcdef";
	std::string s;
	s.reserve(36);
	for (std::size_t i = 0; i < 16; ++i) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			s.push_back('-');
		s.push_back(digits[u[i] >> 4]);
		s.push_back(digits[u[i] & 0xf]);
	}
	return s;
}

std::optional<std::string> normalize_text(std::string_view text)
{
	std::size_t b = 0, e = text.size();
	while (b < e && is_blank(text[b]))
		++b;
	while (e > b && is_blank(text[e - 1]))
		--e;
	std::string_view t = text.substr(b, e - b);
	if (t.empty())
		return std::nullopt;
	// A NUL byte (JSON "\u0000") cannot be stored in PostgreSQL text: the
	// value would be cut short there, so an id "alice\u0000admin" would be
	// recorded and compared as "alice". Such a value is absent.
	if (t.find('\0') != std::string_view::npos)
		return std::nullopt;
	if (t.size() == 4 && (t[0] | 0x20) == 'n' && (t[1] | 0x20) == 'u' && (t[2] | 0x20) == 'l' && (t[3] | 0x20) == 'l')
		return std::nullopt;
	return std::string(t);
}

bool valid_path(std::string_view path, std::string* why)
{
	if (path.empty() || path.size() > 255) {
		if (why)
			*why = "A claim path must be between 1 and 255 bytes long.";
		return false;
	}
	if (path.front() == '.' || path.back() == '.' || path.find("..") != std::string_view::npos) {
		if (why)
			*why = "Path segments must be non-empty.";
		return false;
	}
	return true;
}

const std::vector<std::string>* Context::scope(std::string_view kind) const
{
	auto it = scopes.find(std::string(kind));
	return it == scopes.end() ? nullptr : &it->second;
}

Context from_json(const nlohmann::json& doc, const ClaimPaths& paths)
{
	Context ctx;
	if (!doc.is_object())
		return ctx;
	// The org id is not trimmed: anything but an exact value is absent.
	const nlohmann::json* org = lookup(doc, paths.org);
	if (org != nullptr && org->is_string())
		set_org_key(ctx, org->get_ref<const std::string&>());
	// Unsigned first: is_number_integer() is true for unsigned values too, and
	// 2^63 read as int64 would wrap to the most negative tenant id.
	else if (org != nullptr && org->is_number_unsigned())
		set_org_key(ctx, std::to_string(org->get<std::uint64_t>()));
	else if (org != nullptr && org->is_number_integer())
		set_org_key(ctx, std::to_string(org->get<std::int64_t>()));
	ctx.user_id = string_claim(doc, paths.user);
	ctx.role = string_claim(doc, paths.role);
	ctx.impersonator = string_claim(doc, paths.impersonator);
	read_scopes(doc, paths.scopes, ctx);
	ctx.exp = numeric_date(doc, "exp");
	ctx.nbf = numeric_date(doc, "nbf");
	drop_tenant_parts_without_org(ctx);
	return ctx;
}

Context from_claims_text(std::string_view text, const ClaimPaths& paths)
{
	// allow_exceptions=false: malformed input yields a discarded value. The
	// parser is iterative, so deep nesting cannot exhaust the stack.
	nlohmann::json doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
	if (doc.is_discarded())
		return Context{};
	return from_json(doc, paths);
}

Context from_settings(const char* org, const char* user, const char* role, const char* scopes_json,
                      const char* impersonator)
{
	Context ctx;
	if (org != nullptr)
		set_org_key(ctx, org);
	if (user != nullptr)
		ctx.user_id = normalize_text(user);
	if (role != nullptr)
		ctx.role = normalize_text(role);
	if (impersonator != nullptr)
		ctx.impersonator = normalize_text(impersonator);
	if (scopes_json != nullptr && *scopes_json != '\0') {
		nlohmann::json doc = nlohmann::json::parse(scopes_json, nullptr, false);
		if (!doc.is_discarded()) {
			nlohmann::json wrapper = nlohmann::json::object();
			wrapper["s"] = std::move(doc);
			read_scopes(wrapper, "s", ctx);
		}
	}
	drop_tenant_parts_without_org(ctx);
	return ctx;
}

const Context& ParseCache::get(std::string_view text, std::uint64_t generation, const ClaimPaths& paths)
{
	if (valid_ && generation == generation_ && text == text_)
		return context_;
	// Invalidate first: if parsing throws (out of memory), no stale entry survives.
	valid_ = false;
	context_ = from_claims_text(text, paths);
	text_.assign(text.data(), text.size());
	generation_ = generation;
	valid_ = true;
	++parses_;
	return context_;
}

}  // namespace tenant_guard::claims
