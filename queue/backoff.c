#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "queue/backoff.h"

uint64_t hs_backoff_ceiling(const struct hs_backoff *b, unsigned attempt)
{
	uint64_t c = b->base_ms;

	if (c == 0 || b->cap_ms == 0)
		return 0;
	if (c >= b->cap_ms)
		return b->cap_ms;
	/* c >= 1 doubles each round, so this ends within 64 rounds. */
	for (unsigned n = 1; n < attempt; n++) {
		if (c > b->cap_ms / 2)
			return b->cap_ms;
		c *= 2;
	}
	return c;
}

uint64_t hs_backoff_delay(const struct hs_backoff *b, unsigned attempt, uint64_t rnd)
{
	uint64_t ceiling = hs_backoff_ceiling(b, attempt);

	if (ceiling == UINT64_MAX)
		return rnd;
	/* ceiling + 1 values; the modulo bias is below 2^-40 for any ceiling
	 * under 2^24 ms (4.6 h), and never leaves the interval. */
	return rnd % (ceiling + 1);
}

/* Not cryptographic, only the last resort when the kernel cannot answer. */
static uint64_t weak_random64(void)
{
	struct timespec ts;
	uint64_t x;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	x ^= (uint64_t)getpid() << 32;
	/* splitmix64 finaliser */
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

uint64_t hs_random64(void)
{
	uint64_t v = 0;
	unsigned char *p = (unsigned char *)&v;
	size_t got = 0;

	while (got < sizeof(v)) {
		ssize_t n = getrandom(p + got, sizeof(v) - got, 0);
		if (n > 0)
			got += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else
			break;
	}
	if (got == sizeof(v))
		return v;

	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		got = 0;
		while (got < sizeof(v)) {
			ssize_t n = read(fd, p + got, sizeof(v) - got);
			if (n > 0)
				got += (size_t)n;
			else if (n < 0 && errno == EINTR)
				continue;
			else
				break;
		}
		close(fd);
		if (got == sizeof(v))
			return v;
	}
	return weak_random64();
}
