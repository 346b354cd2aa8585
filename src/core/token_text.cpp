/*
 * core/token_text.cpp: see token_text.hpp.
 */
#include "core/token_text.hpp"

namespace tenant_guard::token_text {

Parts parts(std::string_view token)
{
	Parts p;
	if (token.size() >= k_min_length)
		p.whole = token;
	const std::size_t dot = token.rfind('.');
	if (dot != std::string_view::npos && token.size() - dot - 1 >= k_min_length)
		p.signature = token.substr(dot + 1);
	return p;
}

bool written_into(std::string_view statement, const Parts& p)
{
	return (!p.whole.empty() && statement.find(p.whole) != std::string_view::npos) ||
	       (!p.signature.empty() && statement.find(p.signature) != std::string_view::npos);
}

std::string redacted(std::string_view statement, const Parts& p)
{
	std::string out(statement);
	for (std::string_view part : {p.whole, p.signature}) {
		if (part.empty())
			continue;
		for (std::size_t at = out.find(part); at != std::string::npos; at = out.find(part, at + k_mark.size()))
			out.replace(at, part.size(), k_mark);
	}
	return out;
}

}  // namespace tenant_guard::token_text
