/* test_time.c — vg_time: deadlines on each clock (normalised, in the future by the span asked, a past one
 * is now), elapsed time exact below a millisecond, and the one backoff schedule (doubling, cap, jitter only
 * ever shortening, by at most 20 %, deterministic for a given random value). */
#include <pthread.h>

#include "check.h"
#include "vg_time.h"

static int normalised(struct timespec t) { return t.tv_nsec >= 0 && t.tv_nsec < 1000000000L; }

static void test_deadline_spans(void) {
    clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME};
    for (int c = 0; c < 2; c++) {
        for (int64_t ms = 0; ms <= 2500; ms += 250) {
            struct timespec d = vg_deadline_in_ms(clocks[c], ms);
            int64_t left = vg_deadline_left_ns(clocks[c], &d);
            CHECK(normalised(d));
            CHECK(left <= ms * 1000000 && left > ms * 1000000 - (int64_t)CHECK_SLACK_MS * 1000000);
        }
        struct timespec past = vg_deadline_in_ms(clocks[c], -5000);
        CHECK(normalised(past) && vg_deadline_left_ns(clocks[c], &past) <= 0); /* a negative span is now */
        struct timespec odd = vg_deadline_in_ns(clocks[c], 999999999LL);
        CHECK(normalised(odd));
    }
    struct timespec far = vg_deadline_in_ms(CLOCK_MONOTONIC, INT64_MAX);
    CHECK(normalised(far) && far.tv_sec > 0); /* no overflow into the past */
}

static void test_deadline_at(void) {
    int64_t at = vg_monotonic_ms() + 1500;
    struct timespec d = vg_deadline_at_monotonic_ms(at);
    int64_t left = vg_deadline_left_ns(CLOCK_MONOTONIC, &d);
    CHECK(left <= 1500 * 1000000LL && left > 1500 * 1000000LL - (int64_t)CHECK_SLACK_MS * 1000000);
    struct timespec gone = vg_deadline_at_monotonic_ms(at - 10000);
    CHECK(vg_deadline_left_ns(CLOCK_MONOTONIC, &gone) <= 0);
}

/* A timed wait on a monotonic condition variable ends at the deadline, not before. */
/* A condition variable from vg_cond_init_monotonic waits until a CLOCK_MONOTONIC deadline. */
static void test_timed_wait(void) {
    pthread_cond_t cond;
    vg_cond_init_monotonic(&cond);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    int64_t t0 = vg_monotonic_ms();
    struct timespec d = vg_deadline_in_ms(CLOCK_MONOTONIC, 120);
    pthread_mutex_lock(&lock);
    while (pthread_cond_timedwait(&cond, &lock, &d) == 0) {
    }
    pthread_mutex_unlock(&lock);
    int64_t waited = vg_monotonic_ms() - t0;
    CHECK(waited >= 119 && waited < 120 + CHECK_SLACK_MS);
    pthread_cond_destroy(&cond);
}

/* Sub-millisecond spans are not lost (script time in vigil_camera_script_seconds_total). */
static void test_elapsed_below_a_ms(void) {
    struct timespec start = vg_now(CLOCK_MONOTONIC), before;
    clock_gettime(CLOCK_MONOTONIC, &before); /* vg_now is the clock's now: no later than a reading after it */
    CHECK(start.tv_sec < before.tv_sec || (start.tv_sec == before.tv_sec && start.tv_nsec <= before.tv_nsec));
    int64_t ns = vg_elapsed_ns(CLOCK_MONOTONIC, &start);
    CHECK(ns >= 0 && ns < 1000000LL * CHECK_SLACK_MS);
    start.tv_nsec -= 300000; /* 0.3 ms ago */
    if (start.tv_nsec < 0) start.tv_sec--, start.tv_nsec += 1000000000L;
    ns = vg_elapsed_ns(CLOCK_MONOTONIC, &start);
    CHECK(ns >= 300000 && ns < 300000 + 1000000LL * CHECK_SLACK_MS);
}

static void test_backoff_schedule(void) {
    int64_t expect[] = {500, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    for (int n = 0; n <= 9; n++) /* random 0: the schedule itself */
        CHECK_INT(vg_backoff_ms(VG_BACKOFF_FIRST_MS, VG_BACKOFF_MAX_MS, n, 0), expect[n]);
    CHECK_INT(vg_backoff_ms(500, 30000, 1000, 0), 30000); /* many failures: no overflow */
    CHECK_INT(vg_backoff_ms(500, 30000, 1, 100), 400);    /* random 100 of 0..100: the most jitter, -20 % */
    CHECK_INT(vg_backoff_ms(500, 30000, 1, 101), 500);    /* wraps */
    CHECK_INT(vg_backoff_ms(500, 30000, 8, 6000), 24000);
}

static void test_backoff_jitter(void) {
    uint64_t rng = vg_random_seed(12345), again = vg_random_seed(12345);
    int in_range = 1, varied = 0, same = 1;
    for (int n = 1; n <= 9; n++) {
        int64_t base = vg_backoff_ms(500, 30000, n, 0), first = -1;
        for (int k = 0; k < 100; k++) {
            int64_t b = vg_backoff_ms(500, 30000, n, vg_random_next(&rng));
            same &= b == vg_backoff_ms(500, 30000, n, vg_random_next(&again));
            in_range &= b <= base && b >= base - base / 5;
            if (first < 0) first = b;
            varied |= b != first;
        }
    }
    CHECK(in_range);
    CHECK(varied);
    CHECK(same); /* one seed, one sequence */
    uint64_t step = vg_random_seed(7), by_hand = vg_random_seed(7);
    for (int n = 1; n <= 9; n++) /* the reconnect step: the schedule with the generator's next jitter */
        CHECK_INT(vg_backoff_next(&step, n),
                  vg_backoff_ms(VG_BACKOFF_FIRST_MS, VG_BACKOFF_MAX_MS, n, vg_random_next(&by_hand)));
    uint64_t zero = vg_random_seed(0x9E3779B97F4A7C15ULL);
    CHECK(zero != 0 && vg_random_next(&zero) != 0); /* never stuck at 0 */
}

int main(void) {
    test_deadline_spans();
    test_deadline_at();
    test_timed_wait();
    test_elapsed_below_a_ms();
    test_backoff_schedule();
    test_backoff_jitter();
    return CHECK_DONE();
}
