/* clock: the two clocks the agent reads. Pure modules never read them: they
 * take the time as an argument, from here. */
#ifndef HS_AGENT_CLOCK_H
#define HS_AGENT_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Unix time in milliseconds: what is stored and what servers speak. */
static inline int64_t hs_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic microseconds: for measuring and pacing within the process. */
static inline int64_t hs_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
