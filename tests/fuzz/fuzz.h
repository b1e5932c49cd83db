/*
 * fuzz: what the libFuzzer targets of tests/fuzz share.
 *
 * Each target is one LLVMFuzzerTestOneInput over one parser. A broken
 * invariant is reported on one line naming the target's assertion and ends
 * the run with abort(), which libFuzzer records as a crash with the input
 * that caused it.
 */
#ifndef HS_TESTS_FUZZ_FUZZ_H
#define HS_TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* For targets whose parsers read local time: a zone with daylight-saving
 * changes, so that the searches cross them. Defines LLVMFuzzerInitialize. */
#define FUZZ_IN_A_DST_ZONE()                                                                       \
	int LLVMFuzzerInitialize(int *argc, char ***argv)                                          \
	{                                                                                          \
		(void)argc;                                                                        \
		(void)argv;                                                                        \
		setenv("TZ", "Europe/Berlin", 1);                                                  \
		tzset();                                                                           \
		return 0;                                                                          \
	}

#define FUZZ_ASSERT(cond, ...)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: assertion failed: %s: ", __FILE__, __LINE__,       \
				#cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The input as a C string (cut at its first NUL); abort when out of memory,
 * which a fuzzer's inputs are far too small to cause. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Takes n bytes (at most 8) off the front of the input as an integer;
 * missing bytes read as zero. */
static inline uint64_t fuzz_take(const uint8_t **data, size_t *size, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		v <<= 8;
		if (*size) {
			v |= **data;
			(*data)++;
			(*size)--;
		}
	}
	return v;
}

#endif
