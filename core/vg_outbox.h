/* vg_outbox.h — the delivery policy for episode versions on their way to Central, with no I/O and no clock
 * of its own (every call is given "now", a monotonic ms), so it is tested with injected time.
 *
 * Per episode at most three versions wait: the first (open), the newest intermediate, and the closing one;
 * an intermediate version supersedes an older pending one, and a closing version supersedes a pending
 * intermediate. The first and closing versions are never superseded. Versions of an episode go out one at a
 * time, in updated_at order. Intermediate versions are rate-limited per episode on stream time: one is due
 * once the episode's stream clock (its newest updated_at, advanced by wall time since it arrived) is
 * min_update_interval_ms past the updated_at of the version last delivered; the first and closing versions
 * are due at once. A transient failure backs off the episode and, globally, the whole outbox (exponential
 * with jitter); an authorization failure pauses everything for auth_retry_ms; a rejected version is dropped.
 * Items no longer needed (delivered, superseded, dropped) are handed back as garbage so the caller can remove
 * their spool files. */
#ifndef VG_OUTBOX_H
#define VG_OUTBOX_H
#include <stddef.h>
#include <stdint.h>

typedef struct vg_outbox_item {
    uint64_t episode_id;
    char *media;
    int64_t opened_at, updated_at;
    int is_first, is_closing;
    char *body;       /* NULL when only the spool holds it */
    size_t body_len;
    int spooled;      /* a spool file exists for it */
    int attempts;     /* failed sends so far */
    long long seq;    /* arrival order (set by vg_outbox_add) */
    struct vg_outbox_item *next; /* garbage list */
} vg_outbox_item;

typedef enum {
    VG_SEND_OK,           /* 2xx */
    VG_SEND_RETRY,        /* 5xx, 429, timeout, connection error */
    VG_SEND_REJECTED,     /* 400: this version will never be accepted */
    VG_SEND_UNAUTHORIZED, /* 401/403: keep everything, retry slowly */
} vg_send_result;

/* central.min_update_interval_ms and --min-update-interval-ms when not given (and a NULL policy's): at most
 * one intermediate update per episode this often, on stream time. */
#define VG_CENTRAL_MIN_UPDATE_INTERVAL_MS 1000

typedef struct vg_outbox_policy {
    int min_update_interval_ms; /* 0 (or less) = no rate limit; vigil's default: VG_CENTRAL_MIN_UPDATE_INTERVAL_MS */
    int backoff_min_ms;         /* 0 = 500 */
    int backoff_max_ms;         /* 0 = 30000 */
    int auth_retry_ms;          /* 0 = 30000 */
    int forget_idle_ms;         /* 0 = 600000: an open episode's state is dropped after this long idle */
} vg_outbox_policy;

typedef struct vg_outbox vg_outbox;

/* policy NULL: every default (the rate limit VG_CENTRAL_MIN_UPDATE_INTERVAL_MS). */
vg_outbox *vg_outbox_new(const vg_outbox_policy *policy, unsigned seed);
/* Frees every item still queued or in flight, and the garbage. */
void vg_outbox_free(vg_outbox *ob);

/* Takes ownership of item (malloc'd, media and body too). Versions of an episode may be added out of order
 * (as loaded from a spool): stale intermediate ones become garbage at once. */
void vg_outbox_add(vg_outbox *ob, vg_outbox_item *item, int64_t now);
/* The next version to send at now, marked in flight; or NULL. */
vg_outbox_item *vg_outbox_next(vg_outbox *ob, int64_t now);
/* How long until vg_outbox_next may return something: 0 now, -1 when nothing waits (all delivered, or all
 * that remains is in flight). */
int64_t vg_outbox_wait_ms(vg_outbox *ob, int64_t now);
/* Reports the outcome for an item vg_outbox_next returned. retry_after_ms > 0: the server asked for a pause. */
void vg_outbox_done(vg_outbox *ob, vg_outbox_item *item, vg_send_result result, int64_t now,
                    int64_t retry_after_ms);
/* Items to forget, linked by next; the caller removes their spool files and frees them. */
vg_outbox_item *vg_outbox_take_garbage(vg_outbox *ob);
void vg_outbox_item_free(vg_outbox_item *item);

/* On: the rate limit no longer holds anything back (used when draining before exit). */
void vg_outbox_set_flush(vg_outbox *ob, int on);
/* Calls fn for every version still waiting (not delivered, not superseded). */
void vg_outbox_each_waiting(vg_outbox *ob, void (*fn)(void *ctx, vg_outbox_item *item), void *ctx);
long vg_outbox_pending(const vg_outbox *ob);   /* waiting or in flight */
int vg_outbox_auth_retry_ms(const vg_outbox *ob); /* the pause after Central refused the key */
long vg_outbox_in_flight(const vg_outbox *ob);
long vg_outbox_episodes(const vg_outbox *ob);  /* episodes the outbox keeps state for */

/* The pause after the n-th consecutive failure: vg_backoff_ms (vg_time.h) from backoff_min_ms to
 * backoff_max_ms, jittered by the outbox's seeded generator. Exposed for tests. */
int64_t vg_outbox_backoff_ms(vg_outbox *ob, int failures);

#endif
