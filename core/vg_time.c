/* vg_time.c — the clocks, deadlines and backoff of vg_time.h. */
#include "vg_time.h"

#define NS_PER_S 1000000000LL

int64_t vg_realtime_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vg_monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- deadlines ---------- */

static int64_t timespec_ns(const struct timespec *t) { return (int64_t)t->tv_sec * NS_PER_S + t->tv_nsec; }

void vg_cond_init_monotonic(pthread_cond_t *cond) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

struct timespec vg_now(clockid_t clock) {
    struct timespec now;
    clock_gettime(clock, &now);
    return now;
}

struct timespec vg_deadline_in_ns(clockid_t clock, int64_t ns) {
    struct timespec now;
    clock_gettime(clock, &now);
    int64_t sum = (int64_t)now.tv_nsec + (ns > 0 ? ns % NS_PER_S : 0);
    now.tv_sec += (time_t)(ns > 0 ? ns / NS_PER_S : 0) + (time_t)(sum / NS_PER_S);
    now.tv_nsec = (long)(sum % NS_PER_S);
    return now;
}

struct timespec vg_deadline_in_ms(clockid_t clock, int64_t ms) {
    if (ms > INT64_MAX / 1000000) ms = INT64_MAX / 1000000;
    return vg_deadline_in_ns(clock, ms * 1000000);
}

struct timespec vg_deadline_at_monotonic_ms(int64_t at_ms) {
    return vg_deadline_in_ms(CLOCK_MONOTONIC, at_ms - vg_monotonic_ms());
}

int64_t vg_deadline_left_ns(clockid_t clock, const struct timespec *deadline) {
    struct timespec now;
    clock_gettime(clock, &now);
    return timespec_ns(deadline) - timespec_ns(&now);
}

int64_t vg_elapsed_ns(clockid_t clock, const struct timespec *start) { return -vg_deadline_left_ns(clock, start); }

/* ---------- backoff ---------- */

int64_t vg_backoff_ms(int64_t first_ms, int64_t max_ms, int failures, uint64_t random) {
    int64_t base = first_ms > 0 ? first_ms : 1;
    for (int n = 1; n < failures && base < max_ms; n++) base *= 2;
    if (base > max_ms) base = max_ms;
    int64_t spread = base * VG_BACKOFF_JITTER_PERCENT / 100;
    return base - (int64_t)(random % (uint64_t)(spread + 1));
}

uint64_t vg_random_next(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int64_t vg_backoff_next(uint64_t *rng, int failures) {
    return vg_backoff_ms(VG_BACKOFF_FIRST_MS, VG_BACKOFF_MAX_MS, failures, vg_random_next(rng));
}

uint64_t vg_random_seed(uint64_t seed) {
    uint64_t s = 0x9E3779B97F4A7C15ULL ^ seed;
    return s ? s : 0x9E3779B97F4A7C15ULL;
}
