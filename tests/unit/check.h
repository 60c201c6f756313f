/* check.h — the tiny assertion kit every unit test in tests/unit uses.
 * A test file defines main(), calls the CHECK macros, and ends with
 * CHECK_DONE(), which prints "N passed, M failed" and returns non-zero on failure. */
#ifndef VG_TEST_CHECK_H
#define VG_TEST_CHECK_H
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

/* Timing (tests/README.md): a time limit is a promise plus CHECK_SLACK_MS, what a loaded 2-core machine may add
 * to something done at once; waiting for an event is bounded by CHECK_HANG_MS, which only ends a hang (and stays
 * under ctest's 60 s per unit test). */
#define CHECK_SLACK_MS 5000
#define CHECK_HANG_MS 30000

#define CHECK(cond) do { \
    if (cond) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_INT(a, b) do { \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
    if (check_a_ == check_b_) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", \
                                   __FILE__, __LINE__, #a, check_a_, #b, check_b_); } \
} while (0)

#define CHECK_U64(a, b) do { \
    uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b); \
    if (check_a_ == check_b_) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: %s == %" PRIu64 ", expected %" PRIu64 "\n", \
                                   __FILE__, __LINE__, #a, check_a_, check_b_); } \
} while (0)

#define CHECK_NEAR(a, b, eps) do { \
    double check_a_ = (double)(a), check_b_ = (double)(b); \
    if (fabs(check_a_ - check_b_) <= (eps)) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: %s == %g, expected %g (+-%g)\n", \
                                   __FILE__, __LINE__, #a, check_a_, check_b_, (double)(eps)); } \
} while (0)

#define CHECK_STR(a, b) do { \
    const char *check_a_ = (a), *check_b_ = (b); \
    if (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", \
                                   __FILE__, __LINE__, #a, check_a_ ? check_a_ : "(null)", \
                                   check_b_ ? check_b_ : "(null)"); } \
} while (0)

static inline int check_done(void) {
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}
#define CHECK_DONE() check_done()

#endif
