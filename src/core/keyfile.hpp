/*
 * core/keyfile.hpp
 *
 * Reading key files the way PostgreSQL reads ssl_key_file: the file must be a
 * regular file owned by the server's user or by root, and must not be open
 * to group or others (u=rw, 0600, when owned by the server user; u=rw,g=r,
 * 0640, when owned by root). Contents land in a SecureBuffer.
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>

#include "core/secure_buffer.hpp"
#include "core/no_postgres.hpp"

namespace tenant_guard::keyfile {

// nullopt when owner and mode are acceptable, else the errdetail sentence.
std::optional<std::string> check_mode(uid_t owner, mode_t mode, uid_t server_uid);

// Identity of a file version, to notice a replaced or edited key file.
struct Identity {
	dev_t dev = 0;
	ino_t ino = 0;
	off_t size = 0;
	std::int64_t mtime_ns = 0;
	std::int64_t ctime_ns = 0;  // changes on chmod/chown too, so loosened modes are re-checked
	bool operator==(const Identity& o) const
	{
		return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns;
	}
	bool operator!=(const Identity& o) const { return !(*this == o); }
};

struct Contents {
	Identity identity;
	SecureBuffer bytes;
};

// Stats `path` (following links, as the server does) without reading it.
// Throws tenant_guard::Error when it cannot.
Identity stat_file(const std::string& path, const char* what);

// Opens, checks and reads `path`. `what` names the file in errors
// ("JWT secret file"). Throws tenant_guard::Error (F0000 for a loose or
// oversized file, 58P01/42501/58030 when it cannot be read). The path appears
// only in the server-log detail, never in what the client sees.
Contents read(const std::string& path, const char* what, uid_t server_uid, std::size_t max_size = 1 << 20);

}  // namespace tenant_guard::keyfile
