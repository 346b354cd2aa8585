/*
 * clockshift: an LD_PRELOAD library for the clock harness (run_clock.sh).
 * It moves the wall clock (CLOCK_REALTIME, gettimeofday, time) of the
 * processes it is preloaded into by an offset in seconds, read from the file
 * named by CLOCKSHIFT_FILE on every call, so a harness can move the clock of
 * a running server (all its backends at once) by rewriting that file.
 * Monotonic clocks are not moved.
 *
 * Why not libfaketime: it answers with the real time inside a signal handler
 * that interrupts one of the waits it intercepts (epoll_wait, poll, ...).
 * PostgreSQL's timeouts (lock_timeout, statement_timeout) set their deadline
 * from the moved clock and check it, in the SIGALRM handler, against the real
 * one: with the clock moved forward they never fire, and a test that relies
 * on lock_timeout waits forever. Here every call, in a handler or not, uses
 * only open/read/close and the clock_gettime system call, which are
 * async-signal-safe, so the deadline and the check see the same clock.
 *
 * Test tooling only; not part of the extension.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile long long last_offset_ns;

/* The offset in nanoseconds: "[+-]seconds[.fraction]"; a file being
 * rewritten (empty, or cut short) keeps the last offset read. */
static long long offset_ns(void)
{
	const char *path = getenv("CLOCKSHIFT_FILE");
	char buf[64];
	int saved = errno;
	if (path == NULL)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errno = saved;
		return last_offset_ns;
	}
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	errno = saved;
	if (n <= 0)
		return last_offset_ns;
	buf[n] = '\0';
	int i = 0, neg = 0, digits = 0;
	long long sec = 0, frac = 0, scale = 1000000000LL;
	while (buf[i] == ' ')
		i++;
	if (buf[i] == '+' || buf[i] == '-')
		neg = buf[i++] == '-';
	for (; buf[i] >= '0' && buf[i] <= '9'; i++, digits++)
		sec = sec * 10 + (buf[i] - '0');
	if (buf[i] == '.')
		for (i++; buf[i] >= '0' && buf[i] <= '9'; i++)
			if (scale > 1) {
				scale /= 10;
				frac += (buf[i] - '0') * scale;
			}
	if (digits == 0 || (buf[i] != '\n' && buf[i] != '\0'))
		return last_offset_ns;
	long long ns = sec * 1000000000LL + frac;
	last_offset_ns = neg ? -ns : ns;
	return last_offset_ns;
}

static int real_clock_gettime(clockid_t clk, struct timespec *ts)
{
	return (int) syscall(SYS_clock_gettime, clk, ts);
}

static int shifted(clockid_t clk)
{
	return clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE;
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	int rc = real_clock_gettime(clk, ts);
	if (rc == 0 && shifted(clk)) {
		long long t = (long long) ts->tv_sec * 1000000000LL + ts->tv_nsec + offset_ns();
		ts->tv_sec = (time_t) (t / 1000000000LL);
		ts->tv_nsec = (long) (t % 1000000000LL);
		if (ts->tv_nsec < 0) {
			ts->tv_nsec += 1000000000L;
			ts->tv_sec -= 1;
		}
	}
	return rc;
}

int gettimeofday(struct timeval *tv, void *tz)
{
	struct timespec ts;
	(void) tz;
	int rc = clock_gettime(CLOCK_REALTIME, &ts);
	if (rc == 0) {
		tv->tv_sec = ts.tv_sec;
		tv->tv_usec = ts.tv_nsec / 1000;
	}
	return rc;
}

time_t time(time_t *out)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return (time_t) -1;
	if (out != NULL)
		*out = ts.tv_sec;
	return ts.tv_sec;
}
