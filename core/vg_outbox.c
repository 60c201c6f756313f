/* vg_outbox.c — the per-episode queues, coalescing, stream-time rate limit and backoff of the Central
 * transport (policy in vg_outbox.h). Episodes live in a plain array scanned linearly: an outbox holds the
 * episodes with something in flight plus the open ones, a few hundred at most. */
#include "vg_outbox.h"

#include <stdlib.h>

#include "vg_time.h"

typedef struct episode_state {
    uint64_t id;
    vg_outbox_item *open, *mid, *close, *in_flight;
    int delivered_any;            /* Central answered for a version of this episode */
    int64_t last_sent_updated_at; /* updated_at of the last version Central answered for */
    int64_t stream_ms, stream_wall; /* the newest updated_at seen, and when it arrived */
    int failures;
    int64_t retry_at;
    int finished;                 /* the closing version was delivered or dropped */
    int64_t last_activity;
} episode_state;

struct vg_outbox {
    vg_outbox_policy policy;
    episode_state **eps;
    size_t count, cap;
    vg_outbox_item *garbage;
    long long seq;
    long pending, in_flight;
    int flush;
    int global_failures;
    int64_t paused_until;
    uint64_t rng;
};

static int or_default(int value, int fallback) { return value ? value : fallback; }

vg_outbox *vg_outbox_new(const vg_outbox_policy *policy, unsigned seed) {
    vg_outbox *ob = calloc(1, sizeof *ob);
    vg_outbox_policy p = policy ? *policy : (vg_outbox_policy){.min_update_interval_ms = VG_CENTRAL_MIN_UPDATE_INTERVAL_MS};
    p.backoff_min_ms = or_default(p.backoff_min_ms, VG_BACKOFF_FIRST_MS);
    p.backoff_max_ms = or_default(p.backoff_max_ms, VG_BACKOFF_MAX_MS);
    p.auth_retry_ms = or_default(p.auth_retry_ms, 30000);
    p.forget_idle_ms = or_default(p.forget_idle_ms, 600000);
    ob->policy = p;
    ob->rng = vg_random_seed(seed);
    return ob;
}

void vg_outbox_item_free(vg_outbox_item *item) {
    if (!item) return;
    free(item->media);
    free(item->body);
    free(item);
}

static void free_episode(episode_state *ep) {
    vg_outbox_item_free(ep->open);
    vg_outbox_item_free(ep->mid);
    vg_outbox_item_free(ep->close);
    vg_outbox_item_free(ep->in_flight);
    free(ep);
}

void vg_outbox_free(vg_outbox *ob) {
    if (!ob) return;
    for (size_t i = 0; i < ob->count; i++) free_episode(ob->eps[i]);
    free(ob->eps);
    for (vg_outbox_item *it = vg_outbox_take_garbage(ob), *next; it; it = next) {
        next = it->next;
        vg_outbox_item_free(it);
    }
    free(ob);
}

int64_t vg_outbox_backoff_ms(vg_outbox *ob, int failures) {
    return vg_backoff_ms(ob->policy.backoff_min_ms, ob->policy.backoff_max_ms, failures, vg_random_next(&ob->rng));
}

static episode_state *find_episode(vg_outbox *ob, uint64_t id) {
    for (size_t i = 0; i < ob->count; i++)
        if (ob->eps[i]->id == id) return ob->eps[i];
    return NULL;
}

static episode_state *find_or_add_episode(vg_outbox *ob, uint64_t id, int64_t now) {
    episode_state *ep = find_episode(ob, id);
    if (ep) return ep;
    if (ob->count == ob->cap) ob->eps = realloc(ob->eps, (ob->cap = ob->cap ? ob->cap * 2 : 16) * sizeof *ob->eps);
    ep = calloc(1, sizeof *ep);
    ep->id = id;
    ep->stream_ms = INT64_MIN;
    ep->last_activity = now;
    ob->eps[ob->count++] = ep;
    return ep;
}

static void discard(vg_outbox *ob, vg_outbox_item *item) {
    item->next = ob->garbage;
    ob->garbage = item;
}

vg_outbox_item *vg_outbox_take_garbage(vg_outbox *ob) {
    vg_outbox_item *list = ob->garbage;
    ob->garbage = NULL;
    return list;
}

/* The episode's stream time now: its newest updated_at plus the wall time since that version arrived. */
static int64_t stream_now(const episode_state *ep, int64_t now) { return ep->stream_ms + (now - ep->stream_wall); }

static void advance_stream_clock(episode_state *ep, int64_t updated_at, int64_t now) {
    int64_t current = ep->stream_ms == INT64_MIN ? updated_at : stream_now(ep, now);
    ep->stream_ms = updated_at > current ? updated_at : current;
    ep->stream_wall = now;
}

/* Drops a pending item that a newer version made pointless. */
static void supersede(vg_outbox *ob, vg_outbox_item **slot) {
    if (!*slot) return;
    discard(ob, *slot);
    *slot = NULL;
    ob->pending--;
}

static int is_stale(const episode_state *ep, const vg_outbox_item *item) {
    if (ep->finished) return 1;
    if (ep->delivered_any && item->updated_at <= ep->last_sent_updated_at) return 1;
    return ep->in_flight && ep->in_flight->updated_at >= item->updated_at;
}

/* Puts item into its slot; 0 when it is not needed (stale, or a duplicate of a first/closing version). */
static int place(vg_outbox *ob, episode_state *ep, vg_outbox_item *item) {
    if (item->is_first) {
        if (ep->open || is_stale(ep, item)) return 0;
        ep->open = item;
        return 1;
    }
    if (is_stale(ep, item)) return 0;
    if (item->is_closing) {
        if (ep->close) return 0;
        ep->close = item;
        supersede(ob, &ep->mid);
        return 1;
    }
    if (ep->close || (ep->mid && ep->mid->updated_at >= item->updated_at)) return 0;
    supersede(ob, &ep->mid);
    ep->mid = item;
    return 1;
}

void vg_outbox_add(vg_outbox *ob, vg_outbox_item *item, int64_t now) {
    item->seq = ++ob->seq;
    item->next = NULL;
    episode_state *ep = find_or_add_episode(ob, item->episode_id, now);
    advance_stream_clock(ep, item->updated_at, now);
    ep->last_activity = now;
    if (place(ob, ep, item)) ob->pending++;
    else discard(ob, item);
}

/* The episode's next version in updated_at order. */
static vg_outbox_item **next_slot(episode_state *ep) {
    if (ep->open) return &ep->open;
    if (ep->mid) return &ep->mid;
    if (ep->close) return &ep->close;
    return NULL;
}

/* When the episode's next version may go (ignoring the global pause); INT64_MAX when it has none. */
static int64_t due_at(const vg_outbox *ob, episode_state *ep, int64_t now) {
    vg_outbox_item **slot = ep->in_flight ? NULL : next_slot(ep);
    if (!slot) return INT64_MAX;
    int64_t at = ep->retry_at;
    int limited = slot == &ep->mid && ep->delivered_any && !ob->flush && ob->policy.min_update_interval_ms > 0;
    if (limited) {
        int64_t wait = ep->last_sent_updated_at + ob->policy.min_update_interval_ms - stream_now(ep, now);
        if (now + wait > at) at = now + wait;
    }
    return at;
}

/* Episodes with nothing left to send and nothing to remember are dropped. */
static void forget_finished(vg_outbox *ob, int64_t now) {
    for (size_t i = 0; i < ob->count;) {
        episode_state *ep = ob->eps[i];
        int idle = !ep->in_flight && !next_slot(ep);
        if (idle && (ep->finished || now - ep->last_activity > ob->policy.forget_idle_ms)) {
            free_episode(ep);
            ob->eps[i] = ob->eps[--ob->count];
        } else {
            i++;
        }
    }
}

vg_outbox_item *vg_outbox_next(vg_outbox *ob, int64_t now) {
    forget_finished(ob, now);
    if (now < ob->paused_until) return NULL;
    episode_state *best = NULL;
    for (size_t i = 0; i < ob->count; i++) {
        episode_state *ep = ob->eps[i];
        if (due_at(ob, ep, now) > now) continue;
        if (!best || (*next_slot(ep))->seq < (*next_slot(best))->seq) best = ep;
    }
    if (!best) return NULL;
    vg_outbox_item **slot = next_slot(best);
    best->in_flight = *slot;
    *slot = NULL;
    ob->in_flight++;
    return best->in_flight;
}

int64_t vg_outbox_wait_ms(vg_outbox *ob, int64_t now) {
    int64_t earliest = INT64_MAX;
    for (size_t i = 0; i < ob->count; i++) {
        int64_t at = due_at(ob, ob->eps[i], now);
        if (at < earliest) earliest = at;
    }
    if (earliest == INT64_MAX) return -1;
    if (ob->paused_until > earliest) earliest = ob->paused_until;
    return earliest <= now ? 0 : earliest - now;
}

/* A version that failed goes back to its slot, unless a newer one superseded it meanwhile. */
static void requeue(vg_outbox *ob, episode_state *ep, vg_outbox_item *item) {
    vg_outbox_item **slot = item->is_first ? &ep->open : item->is_closing ? &ep->close : &ep->mid;
    int superseded = *slot || (!item->is_first && !item->is_closing && ep->close);
    if (superseded) {
        discard(ob, item);
        ob->pending--;
    } else {
        *slot = item;
    }
}

/* Central answered. After an outage (several failures in a row, not one episode's own trouble), episodes
 * stop waiting for their own backoff. */
static void on_answer(vg_outbox *ob) {
    if (ob->global_failures >= 2) {
        for (size_t i = 0; i < ob->count; i++) ob->eps[i]->retry_at = 0;
    }
    ob->global_failures = 0;
    ob->paused_until = 0;
}

static void on_failure(vg_outbox *ob, episode_state *ep, int64_t now, int64_t retry_after_ms) {
    ep->failures++;
    ep->retry_at = now + vg_outbox_backoff_ms(ob, ep->failures);
    ob->global_failures++;
    int64_t pause = now + vg_outbox_backoff_ms(ob, ob->global_failures);
    if (retry_after_ms > 0 && now + retry_after_ms > pause) pause = now + retry_after_ms;
    if (pause > ob->paused_until) ob->paused_until = pause;
}

void vg_outbox_done(vg_outbox *ob, vg_outbox_item *item, vg_send_result result, int64_t now,
                    int64_t retry_after_ms) {
    episode_state *ep = find_episode(ob, item->episode_id);
    ep->in_flight = NULL;
    ob->in_flight--;
    ep->last_activity = now;
    if (result == VG_SEND_OK || result == VG_SEND_REJECTED) {
        on_answer(ob);
        ep->failures = 0;
        ep->retry_at = 0;
        if (!ep->delivered_any || item->updated_at > ep->last_sent_updated_at) ep->last_sent_updated_at = item->updated_at;
        ep->delivered_any = 1;
        if (item->is_closing) ep->finished = 1;
        discard(ob, item);
        ob->pending--;
        return;
    }
    item->attempts++;
    if (result == VG_SEND_UNAUTHORIZED) {
        ob->paused_until = now + ob->policy.auth_retry_ms;
    } else {
        on_failure(ob, ep, now, retry_after_ms);
    }
    requeue(ob, ep, item);
}

void vg_outbox_set_flush(vg_outbox *ob, int on) { ob->flush = on; }

void vg_outbox_each_waiting(vg_outbox *ob, void (*fn)(void *ctx, vg_outbox_item *item), void *ctx) {
    for (size_t i = 0; i < ob->count; i++) {
        episode_state *ep = ob->eps[i];
        vg_outbox_item *items[] = {ep->open, ep->mid, ep->close, ep->in_flight};
        for (size_t k = 0; k < sizeof items / sizeof *items; k++)
            if (items[k]) fn(ctx, items[k]);
    }
}
long vg_outbox_pending(const vg_outbox *ob) { return ob->pending; }
int vg_outbox_auth_retry_ms(const vg_outbox *ob) { return ob->policy.auth_retry_ms; }
long vg_outbox_in_flight(const vg_outbox *ob) { return ob->in_flight; }
long vg_outbox_episodes(const vg_outbox *ob) { return (long)ob->count; }
