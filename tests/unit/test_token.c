/*
 * test_token: the exp claim read from a JWT, whatever its padding and
 * alphabet, and what is not a JWT with an exp. No signature is checked.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/token.h"

#define HEADER "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" /* {"alg":"HS256","typ":"JWT"} */
#define SIG    "c2lnbmF0dXJl"

static int64_t exp_of(const char *token)
{
	int64_t exp = -1;

	return hs_jwt_exp(token, &exp) == 0 ? exp : -1;
}

static void test_exp(void **state)
{
	(void)state;
	/* {"exp":1765000000}: 24 characters, no padding needed */
	assert_int_equal(exp_of(HEADER ".eyJleHAiOjE3NjUwMDAwMDB9." SIG), 1765000000);
	/* one and two padding characters left out, non-ASCII in a claim */
	assert_int_equal(exp_of(HEADER ".eyJzdWIiOiJhIiwiZXhwIjoxNzY1MDAwMDAwLCJ4Ijoiw6kifQ." SIG),
			 1765000000);
	/* the URL alphabet: "-" and "_" where base64 has "+" and "/" */
	assert_int_equal(exp_of(HEADER ".eyJleHAiOjE3NjUwMDAwMDAsIm4iOiJ-fn4_In0." SIG),
			 1765000000);
	assert_int_equal(exp_of(HEADER ".eyJleHAiOjE3NjUwMDAwMDAsIm4iOiLDv8O-Pj8ifQ." SIG),
			 1765000000);
	/* a NumericDate may have a fraction */
	assert_int_equal(exp_of(HEADER ".eyJleHAiOjE3NjUwMDAwMDAuNX0." SIG), 1765000000);
	/* beyond 32 bits */
	assert_int_equal(exp_of(HEADER ".eyJleHAiOjE3NjUwMDAwMDAxfQ." SIG), 17650000001LL);
	/* an unsigned token (alg none) still has its exp */
	assert_int_equal(exp_of(HEADER ".eyJleHAiOjE3NjUwMDAwMDB9."), 1765000000);
}

static void test_not_exp(void **state)
{
	(void)state;
	assert_int_equal(exp_of(HEADER ".eyJzdWIiOiJhYiJ9." SIG), -1);		  /* no exp */
	assert_int_equal(exp_of(HEADER ".eyJleHAiOiIxNzY1MDAwMDAwIn0." SIG), -1); /* a string */
	assert_int_equal(exp_of(HEADER ".WzFd." SIG), -1);			  /* [1] */
	assert_int_equal(exp_of("opaque-token-without-dots"), -1);
	assert_int_equal(exp_of("one.dot"), -1);
	assert_int_equal(exp_of(HEADER ".." SIG), -1);
	/* the base64 alphabet and padding are not base64url */
	assert_int_equal(exp_of(HEADER ".eyJleHAiOjE3NjUwMDAwMDAsIm4iOiJ+fn4/In0." SIG), -1);
	assert_int_equal(exp_of(HEADER ".eyJleHAiOjE3NjUwMDAwMDB9==." SIG), -1);
	/* a length base64 cannot have */
	assert_int_equal(exp_of(HEADER ".eyJleHAiOjE3NjUwMDAwMDB9e." SIG), -1);
	assert_int_equal(exp_of(NULL), -1);
}

static void test_time(void **state)
{
	char buf[64];

	(void)state;
	setenv("TZ", "UTC", 1);
	assert_string_equal(hs_token_time(1765000000, buf, sizeof(buf)), "2025-12-06 05:46:40 UTC");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exp),
	    cmocka_unit_test(test_not_exp),
	    cmocka_unit_test(test_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
