/*
 * core/keyfile.cpp: permission-checked reading of key files.
 */
#include "core/keyfile.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/no_postgres.hpp"

namespace tenant_guard::keyfile {

namespace {

// Closes the descriptor on every path out of read().
struct Fd {
	int fd;
	~Fd()
	{
		if (fd >= 0)
			close(fd);
	}
};

[[noreturn]] void throw_errno(int err, const char* what, const std::string& path, const char* verb)
{
	const char* state = err == ENOENT                     ? sqlstate::k_undefined_file
	                    : (err == EACCES || err == EPERM) ? sqlstate::k_insufficient_privilege
	                                                      : sqlstate::k_io_error;
	throw Error(state, std::string("could not ") + verb + " the " + what,
	            "See the server log for the file name and the reason.", {},
	            std::string("could not ") + verb + " file \"" + path + "\": " + std::strerror(err));
}

Identity identity_of(const struct stat& st)
{
	Identity id;
	id.dev = st.st_dev;
	id.ino = st.st_ino;
	id.size = st.st_size;
	id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
	id.ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
	return id;
}

}  // namespace

std::optional<std::string> check_mode(uid_t owner, mode_t mode, uid_t server_uid)
{
	if (owner != server_uid && owner != 0)
		return std::string("File must be owned by the database user or root.");
	if ((owner == server_uid && (mode & (S_IRWXG | S_IRWXO)) != 0) ||
	    (owner == 0 && (mode & (S_IWGRP | S_IXGRP | S_IRWXO)) != 0))
		return std::string("File must have permissions u=rw (0600) or less if owned by the database user, "
		                   "or permissions u=rw,g=r (0640) or less if owned by root.");
	return std::nullopt;
}

Identity stat_file(const std::string& path, const char* what)
{
	struct stat st;
	if (stat(path.c_str(), &st) != 0)
		throw_errno(errno, what, path, "stat");
	return identity_of(st);
}

Contents read(const std::string& path, const char* what, uid_t server_uid, std::size_t max_size)
{
	Fd f{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
	if (f.fd < 0)
		throw_errno(errno, what, path, "open");
	struct stat st;
	if (fstat(f.fd, &st) != 0)
		throw_errno(errno, what, path, "stat");
	if (!S_ISREG(st.st_mode))
		throw Error(sqlstate::k_config_file_error, std::string(what) + " is not a regular file", {}, {},
		            "File \"" + path + "\" is not a regular file.");
	if (auto why = check_mode(st.st_uid, st.st_mode, server_uid))
		throw Error(sqlstate::k_config_file_error, std::string(what) + " has group or world access", *why, {},
		            *why + " File: \"" + path + "\".");
	if (st.st_size <= 0 || static_cast<std::size_t>(st.st_size) > max_size)
		throw Error(sqlstate::k_config_file_error, std::string(what) + " has an unusable size",
		            "The file is empty or larger than " + std::to_string(max_size) + " bytes.", {},
		            "File \"" + path + "\" is empty or too large.");
	Contents c;
	c.identity = identity_of(st);
	c.bytes = SecureBuffer(static_cast<std::size_t>(st.st_size));
	std::size_t got = 0;
	while (got < c.bytes.size()) {
		ssize_t n = ::read(f.fd, c.bytes.data() + got, c.bytes.size() - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			throw_errno(errno, what, path, "read");
		if (n == 0)
			throw Error(sqlstate::k_config_file_error, std::string("could not read the ") + what,
			            "The file changed while it was being read.", {},
			            "File \"" + path + "\" shrank while being read.");
		got += static_cast<std::size_t>(n);
	}
	return c;
}

}  // namespace tenant_guard::keyfile
