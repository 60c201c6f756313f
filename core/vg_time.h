/* vg_time.h — vigil's clocks and the two things every waiting thread builds on them: an absolute
 * struct timespec deadline for pthread_cond_timedwait (on the clock its condition variable uses), and the
 * one retry schedule (backoff) of reconnecting cameras, preview streams and Central deliveries. */
#ifndef VG_TIME_H
#define VG_TIME_H
#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* A source of unix ms that tests can replace (vg_snowflake, vg_episode). */
typedef int64_t (*vg_clock_fn)(void *ctx);

int64_t vg_realtime_ms(void);  /* unix ms */
int64_t vg_monotonic_ms(void); /* ms since an arbitrary start; never steps */

/* ---------- deadlines ---------- */

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines (vg_deadline_in_ms(CLOCK_MONOTONIC,
 * ...), vg_deadline_at_monotonic_ms): a step of the wall clock neither cuts nor stretches a wait. */
void vg_cond_init_monotonic(pthread_cond_t *cond);
/* The time now on clock (a start for vg_elapsed_ns). */
struct timespec vg_now(clockid_t clock);
/* The instant ns (ms) from now on clock: what pthread_cond_timedwait takes (CLOCK_MONOTONIC for a condition
 * variable with that clock attribute, CLOCK_REALTIME for a default one). A negative span is now. */
struct timespec vg_deadline_in_ns(clockid_t clock, int64_t ns);
struct timespec vg_deadline_in_ms(clockid_t clock, int64_t ms);
/* The deadline for at_ms in vg_monotonic_ms time, on CLOCK_MONOTONIC (now when at_ms has passed). */
struct timespec vg_deadline_at_monotonic_ms(int64_t at_ms);
/* deadline - now on clock, in ns (negative once it has passed). */
int64_t vg_deadline_left_ns(clockid_t clock, const struct timespec *deadline);
/* now - start on clock, in ns: exact for spans far below a millisecond. */
int64_t vg_elapsed_ns(clockid_t clock, const struct timespec *start);

/* ---------- backoff ---------- */

#define VG_BACKOFF_FIRST_MS 500   /* the pause after the first failure */
#define VG_BACKOFF_MAX_MS 30000   /* the longest pause */
#define VG_BACKOFF_JITTER_PERCENT 20

/* The pause after the n-th consecutive failure (n <= 1: the first): first_ms doubling to max_ms, then up to
 * VG_BACKOFF_JITTER_PERCENT % shorter as random (any 64-bit value, e.g. vg_random_next) says, so clients
 * behind one failed server do not retry in step, and never longer than the schedule. */
int64_t vg_backoff_ms(int64_t first_ms, int64_t max_ms, int failures, uint64_t random);
/* A small fast generator (xorshift64*) for jitter; *state must not be 0 (vg_random_seed gives one). */
uint64_t vg_random_next(uint64_t *state);
uint64_t vg_random_seed(uint64_t seed);
/* One step of the reconnect schedule of cameras and preview streams: vg_backoff_ms(VG_BACKOFF_FIRST_MS,
 * VG_BACKOFF_MAX_MS, failures, vg_random_next(rng)). */
int64_t vg_backoff_next(uint64_t *rng, int failures);

#endif
