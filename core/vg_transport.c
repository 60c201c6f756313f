/* vg_transport.c — the Central sink (interface in vg_transport.h). Owns the sender thread, its one reused
 * curl handle (keep-alive), the mapping of HTTP answers onto vg_outbox results, and the log lines about
 * Central and the spool, each said once per change of state (the spool's at most every SPOOL_SAY_EVERY_MS).
 * The API key lives only in this sink's memory and the Authorization header; no log line carries it.
 *
 * put() writes the version to the spool (durable), hands its metadata to the outbox and wakes the sender;
 * the body is read back from the spool when it is sent, so memory holds no more than the episodes' state.
 * When the spool is full or failing, a version is kept in memory only (still delivered if vigil lives) and
 * put() returns -1. The sender removes the spool files of delivered, superseded and dropped versions and
 * fsyncs the directory before its next request, so a superseded version cannot come back after a crash
 * once a newer one was sent. */
#include "vg_transport.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "vg_curl.h"
#include "vg_file.h"
#include "vg_log.h"
#include "vg_outbox.h"
#include "vg_snowflake.h"
#include "vg_spool.h"
#include "vg_time.h"

#define WHO "central"
#define EPISODES_PATH "/central/api/v3/episodes/"
#define RESPONSE_KEEP 1024
#define SPOOL_SAY_EVERY_MS 10000 /* the spool's state is said when it changes, at most this often */

typedef enum { SPOOL_OK, SPOOL_FULL, SPOOL_FAILING } spool_state;

typedef struct central_sink {
    vg_sink base;
    char *url, *shown_url, *api_key;
    int connect_timeout_ms, request_timeout_ms, drain_timeout_ms;
    vg_spool *spool;
    vg_outbox *outbox;
    pthread_mutex_t lock;
    pthread_cond_t wake;     /* the sender: something was queued, or stop */
    pthread_cond_t progress; /* drain waiters: Central answered */
    pthread_t thread;
    int accepting, stopping, abort_transfer;
    vg_central_stats stats;
    spool_state spool_state, spool_said; /* now, and in the last line about it */
    int64_t spool_said_ms;               /* when that line was said (0: never) */
    long spool_changes;                  /* changes of state since that line */
    char spool_error[400];               /* why it fails, when it does */
    /* sender thread only */
    int unreachable, auth_refused;
    CURL *curl;
    struct curl_slist *headers;
    char response[RESPONSE_KEEP];
    size_t response_len;
    char curl_error[CURL_ERROR_SIZE];
} central_sink;

typedef struct attempt {
    vg_send_result result;
    long status;
    int64_t retry_after_ms;
    int unreadable; /* the spool file was gone or corrupt: dropped, not Central's doing */
    char why[320];
} attempt;

/* ---- the key ---------------------------------------------------------------------------------------- */

static int key_is_clean(const char *key, size_t len) {
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f) return 0;
    return len > 0;
}

/* The one key-file reader and format (vg_file.h, docs/config.md "Key files"). */
/* ---- HTTP ------------------------------------------------------------------------------------------- */

static size_t keep_response(char *data, size_t size, size_t n, void *ctx) {
    central_sink *cs = ctx;
    size_t len = size * n, room = sizeof cs->response - 1 - cs->response_len;
    size_t take = len < room ? len : room;
    memcpy(cs->response + cs->response_len, data, take);
    cs->response_len += take;
    cs->response[cs->response_len] = 0;
    return len;
}

static int abort_if_stopping(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    central_sink *cs = ctx;
    return __atomic_load_n(&cs->abort_transfer, __ATOMIC_RELAXED);
}

static int setup_curl(central_sink *cs, char *err, size_t errlen) {
    if (vg_curl_global_init(err, errlen) < 0) return -1;
    cs->curl = curl_easy_init();
    if (!cs->curl) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    size_t authlen = strlen(cs->api_key) + 32;
    char *auth = malloc(authlen);
    snprintf(auth, authlen, "Authorization: Bearer %s", cs->api_key);
    cs->headers = curl_slist_append(NULL, auth);
    explicit_bzero(auth, authlen);
    free(auth);
    cs->headers = curl_slist_append(cs->headers, "Content-Type: application/json");
    cs->headers = curl_slist_append(cs->headers, "Expect:");
    CURL *c = cs->curl;
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, cs->headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)cs->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cs->request_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_response);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, cs);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cs->curl_error);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_if_stopping);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, cs);
    return 0;
}

/* Central's error body as one printable line. */
static void one_line(const char *text, char *out, size_t outlen) {
    size_t n = 0;
    for (const char *p = text; *p && n + 1 < outlen; p++) out[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    out[n] = 0;
}

static void classify_status(central_sink *cs, attempt *a) {
    long s = a->status;
    if (s >= 200 && s < 300) {
        a->result = VG_SEND_OK;
    } else if (s == 401 || s == 403) {
        a->result = VG_SEND_UNAUTHORIZED;
        snprintf(a->why, sizeof a->why, "HTTP %ld", s);
    } else if (s == 400 || s == 409 || s == 413 || s == 415 || s == 422) {
        a->result = VG_SEND_REJECTED;
        one_line(cs->response_len ? cs->response : "(no body)", a->why, sizeof a->why);
    } else {
        a->result = VG_SEND_RETRY; /* 408, 429, 5xx, and anything unexpected (a wrong URL): keep it */
        snprintf(a->why, sizeof a->why, "HTTP %ld", s);
        curl_off_t seconds = 0;
        if (curl_easy_getinfo(cs->curl, CURLINFO_RETRY_AFTER, &seconds) == CURLE_OK && seconds > 0)
            a->retry_after_ms = (int64_t)(seconds > 3600 ? 3600 : seconds) * 1000;
    }
}

static void http_put(central_sink *cs, const vg_outbox_item *it, const char *body, size_t len, attempt *a) {
    char url[2048], id[VG_ID_STRLEN];
    snprintf(url, sizeof url, "%s" EPISODES_PATH "%s", cs->url, vg_id_format(it->episode_id, id));
    curl_easy_setopt(cs->curl, CURLOPT_URL, url);
    curl_easy_setopt(cs->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(cs->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    cs->response_len = 0;
    cs->response[0] = 0;
    cs->curl_error[0] = 0;
    CURLcode rc = curl_easy_perform(cs->curl);
    if (rc != CURLE_OK) {
        a->result = VG_SEND_RETRY;
        snprintf(a->why, sizeof a->why, "%s", cs->curl_error[0] ? cs->curl_error : curl_easy_strerror(rc));
        return;
    }
    curl_easy_getinfo(cs->curl, CURLINFO_RESPONSE_CODE, &a->status);
    classify_status(cs, a);
}

/* Sends one version; its body comes from the spool unless it is kept in memory. */
static void deliver(central_sink *cs, const vg_outbox_item *it, attempt *a) {
    *a = (attempt){0};
    if (it->body) {
        http_put(cs, it, it->body, it->body_len, a);
        return;
    }
    char *media = NULL, *body = NULL;
    size_t len = 0;
    if (vg_spool_read(cs->spool, it->episode_id, it->updated_at, &media, &body, &len, a->why, sizeof a->why) < 0) {
        a->result = VG_SEND_REJECTED;
        a->unreadable = 1;
    } else {
        http_put(cs, it, body, len, a);
    }
    free(media);
    free(body);
}

/* ---- the sender thread ------------------------------------------------------------------------------ */

static const char *kind_of(const vg_outbox_item *it) {
    return it->is_first && it->is_closing ? "first+closing" : it->is_first ? "first" : it->is_closing ? "closing" : "update";
}

static void log_rejected(central_sink *cs, const vg_outbox_item *it, const attempt *a) {
    char id[VG_ID_STRLEN];
    vg_id_format(it->episode_id, id);
    if (a->unreadable) {
        vg_error(WHO, "episode %s version updated_at %" PRId64 " dropped: %s", id, it->updated_at, a->why);
        return;
    }
    vg_error(WHO, "%s rejected %s version of episode %s (media %s, updated_at %" PRId64 ", HTTP %ld): %s; dropped",
             cs->shown_url, kind_of(it), id, it->media, it->updated_at, a->status, a->why);
}

/* Log lines on changes of Central's state only: down, refusing the key, back. */
static void log_outcome(central_sink *cs, const vg_outbox_item *it, const attempt *a) {
    if (a->result == VG_SEND_OK) {
        if (cs->unreachable || cs->auth_refused)
            vg_info(WHO, "%s accepts episodes again; %ld versions queued", cs->shown_url, vg_outbox_pending(cs->outbox));
        cs->unreachable = cs->auth_refused = 0;
    } else if (a->result == VG_SEND_REJECTED) {
        log_rejected(cs, it, a);
    } else if (a->result == VG_SEND_UNAUTHORIZED) {
        if (!cs->auth_refused)
            vg_error(WHO, "%s refused the API key (%s): check api_key / api_key_file; episodes stay queued in %s "
                     "(a running vigil tries the key again every %d s)", cs->shown_url, a->why, vg_spool_dir(cs->spool),
                     vg_outbox_auth_retry_ms(cs->outbox) / 1000);
        cs->auth_refused = 1;
    } else if (!cs->unreachable) {
        vg_warn(WHO, "%s: %s; episodes stay queued in %s and are retried with backoff", cs->shown_url, a->why,
                vg_spool_dir(cs->spool));
        cs->unreachable = 1;
    }
}

static void record(central_sink *cs, vg_outbox_item *it, const attempt *a, int64_t started) {
    int64_t now = vg_monotonic_ms();
    char id[VG_ID_STRLEN];
    vg_debug(WHO, "sent episode %s updated_at %" PRId64 " (%s): %s in %" PRId64 " ms", vg_id_format(it->episode_id, id),
             it->updated_at, kind_of(it), a->result == VG_SEND_OK ? "accepted" : a->why, now - started);
    if (it->attempts > 0) cs->stats.retries++;
    if (a->result == VG_SEND_OK) cs->stats.sent++;
    else if (a->result == VG_SEND_REJECTED && !a->unreadable) cs->stats.rejected++;
    else if (a->result != VG_SEND_REJECTED) cs->stats.failed++;
    log_outcome(cs, it, a);
    vg_outbox_done(cs->outbox, it, a->result, now, a->retry_after_ms);
}

/* Removes the spool files of versions no longer needed, outside the lock; 1 if there were any. */
static int collect_garbage(central_sink *cs) {
    vg_outbox_item *list = vg_outbox_take_garbage(cs->outbox);
    if (!list) return 0;
    pthread_mutex_unlock(&cs->lock);
    int removed = 0;
    for (vg_outbox_item *it = list, *next; it; it = next) {
        next = it->next;
        if (it->spooled) removed += vg_spool_remove(cs->spool, it->episode_id, it->updated_at) == 0;
        vg_outbox_item_free(it);
    }
    if (removed) vg_spool_sync(cs->spool);
    pthread_mutex_lock(&cs->lock);
    return 1;
}

static void wait_for_work(central_sink *cs, int64_t wait_ms) {
    if (wait_ms < 0) {
        pthread_cond_wait(&cs->wake, &cs->lock);
        return;
    }
    struct timespec ts = vg_deadline_in_ms(CLOCK_MONOTONIC, wait_ms);
    pthread_cond_timedwait(&cs->wake, &cs->lock, &ts);
}

static void spool_when_due(central_sink *cs, vg_outbox_item *it);

static void *sender_main(void *arg) {
    central_sink *cs = arg;
    pthread_mutex_lock(&cs->lock);
    for (;;) {
        if (collect_garbage(cs)) continue;
        if (cs->stopping) break;
        int64_t now = vg_monotonic_ms();
        vg_outbox_item *it = vg_outbox_next(cs->outbox, now);
        if (!it) {
            wait_for_work(cs, vg_outbox_wait_ms(cs->outbox, now));
            continue;
        }
        pthread_mutex_unlock(&cs->lock);
        spool_when_due(cs, it);
        attempt a;
        deliver(cs, it, &a);
        pthread_mutex_lock(&cs->lock);
        record(cs, it, &a, now);
        pthread_cond_broadcast(&cs->progress);
    }
    pthread_mutex_unlock(&cs->lock);
    return NULL;
}

/* ---- the sink --------------------------------------------------------------------------------------- */

static vg_outbox_item *item_of(const vg_version *v, int spooled) {
    vg_outbox_item *it = calloc(1, sizeof *it);
    it->episode_id = v->episode_id;
    it->media = strdup(v->media ? v->media : "");
    it->opened_at = v->opened_at;
    it->updated_at = v->updated_at;
    it->is_first = v->is_first;
    it->is_closing = v->is_closing;
    it->spooled = spooled;
    if (!spooled) {
        it->body = malloc(v->body_len + 1);
        memcpy(it->body, v->body, v->body_len);
        it->body[v->body_len] = 0;
        it->body_len = v->body_len;
    }
    return it;
}

/* The spool's state in one line, when it differs from the one last said, at most once per SPOOL_SAY_EVERY_MS:
 * a spool that flips between full and not (Central freeing room one version at a time) gives one line per
 * interval with the number of changes. final (at close): the state it ends in, with the changes no line told
 * yet. Under the lock. */
static void say_spool_state(central_sink *cs, int final) {
    int64_t now = vg_monotonic_ms();
    if (final ? !cs->spool_changes : cs->spool_state == cs->spool_said ||
                                     (cs->spool_said_ms && now - cs->spool_said_ms < SPOOL_SAY_EVERY_MS))
        return;
    char changes[120] = "";
    if (cs->spool_changes > 1)
        snprintf(changes, sizeof changes, " (%ld changes of state since the last line; said at most every %d s)",
                 cs->spool_changes, SPOOL_SAY_EVERY_MS / 1000);
    const char *dir = vg_spool_dir(cs->spool);
    if (cs->spool_state == SPOOL_OK) {
        vg_info(WHO, "spool %s stores versions again%s", dir, changes);
    } else if (cs->spool_state == SPOOL_FULL) {
        long long bytes;
        vg_spool_usage(cs->spool, NULL, &bytes);
        vg_error(WHO, "spool %s is full (%lld bytes): new versions are kept in memory only, not on disk, until "
                 "Central takes some%s", dir, bytes, changes);
    } else {
        vg_error(WHO, "%s: new versions are kept in memory only, not on disk%s", cs->spool_error, changes);
    }
    cs->spool_said = cs->spool_state;
    cs->spool_said_ms = now;
    cs->spool_changes = 0;
}

/* After every write to the spool: its state now (full, failing, fine). Under the lock. */
static void note_spool_state(central_sink *cs, int rc, const char *err) {
    spool_state state = rc == 0 ? SPOOL_OK : rc == VG_SPOOL_FULL ? SPOOL_FULL : SPOOL_FAILING;
    if (state == SPOOL_FAILING) snprintf(cs->spool_error, sizeof cs->spool_error, "%s", err);
    if (state != cs->spool_state) cs->spool_changes++;
    cs->spool_state = state;
    say_spool_state(cs, 0);
}

/* First and closing versions are on disk before put returns. An intermediate update is kept in memory
 * and spooled by the sender when it is due: most updates are superseded within the rate-limit interval
 * and never cost an fsync (a camera extends its episode on every frame). A crash loses at most the
 * newest update not yet due; the open and the close are never lost. */
static int central_put(vg_sink *sink, const vg_version *v) {
    central_sink *cs = (central_sink *)sink;
    int64_t called_at = vg_realtime_ms(); /* the debug line below feeds tests/bench/central_latency.py */
    char err[512] = "", id[VG_ID_STRLEN];
    int durable_now = v->is_first || v->is_closing;
    int rc = durable_now ? vg_spool_write(cs->spool, v, err, sizeof err) : 1;
    vg_outbox_item *it = item_of(v, rc == 0);
    vg_debug(WHO, "put episode %s updated_at %" PRId64 " (%s) at %" PRId64, vg_id_format(v->episode_id, id),
             v->updated_at, kind_of(it), called_at);
    pthread_mutex_lock(&cs->lock);
    int accepting = cs->accepting;
    if (accepting) {
        if (durable_now) note_spool_state(cs, rc, err);
        vg_outbox_add(cs->outbox, it, vg_monotonic_ms());
        pthread_cond_signal(&cs->wake);
    }
    pthread_mutex_unlock(&cs->lock);
    if (!accepting) vg_outbox_item_free(it); /* a spooled copy goes out at the next start */
    return accepting && rc >= 0 ? 0 : -1;
}

static void spool_waiting(void *ctx, vg_outbox_item *it) { spool_when_due(ctx, it); }

/* An update goes to the spool when it is due, before its first attempt (see central_put). */
static void spool_when_due(central_sink *cs, vg_outbox_item *it) {
    if (it->spooled || !it->body) return;
    vg_version v = {.episode_id = it->episode_id, .media = it->media, .opened_at = it->opened_at,
                    .updated_at = it->updated_at, .body = it->body, .body_len = it->body_len};
    char err[512] = "";
    int rc = vg_spool_write(cs->spool, &v, err, sizeof err);
    if (rc == 0) it->spooled = 1;
    pthread_mutex_lock(&cs->lock);
    note_spool_state(cs, rc, err);
    pthread_mutex_unlock(&cs->lock);
}

static int compare_items(const void *a, const void *b) {
    const vg_outbox_item *x = *(vg_outbox_item *const *)a, *y = *(vg_outbox_item *const *)b;
    if (x->episode_id != y->episode_id) return x->episode_id < y->episode_id ? -1 : 1;
    return (x->updated_at > y->updated_at) - (x->updated_at < y->updated_at);
}

typedef struct loaded {
    vg_outbox_item **items;
    size_t count, cap;
} loaded;

static void collect_loaded(void *ctx, const vg_version *v) {
    loaded *l = ctx;
    if (l->count == l->cap) l->items = realloc(l->items, (l->cap = l->cap ? l->cap * 2 : 64) * sizeof *l->items);
    l->items[l->count++] = item_of(v, 1);
}

/* What a previous run left in the spool is queued first, each episode's versions in updated_at order. */
static void load_spool(central_sink *cs) {
    loaded l = {0};
    vg_spool_load(cs->spool, collect_loaded, &l);
    if (l.count) qsort(l.items, l.count, sizeof *l.items, compare_items);
    int64_t now = vg_monotonic_ms();
    for (size_t i = 0; i < l.count; i++) vg_outbox_add(cs->outbox, l.items[i], now);
    if (l.count)
        vg_info(WHO, "%zu versions from the spool %s are queued for %s", l.count, vg_spool_dir(cs->spool), cs->shown_url);
    free(l.items);
}

long vg_central_drain(vg_sink *sink, int timeout_ms) {
    central_sink *cs = (central_sink *)sink;
    pthread_mutex_lock(&cs->lock);
    vg_outbox_set_flush(cs->outbox, 1);
    pthread_cond_signal(&cs->wake);
    int64_t deadline = vg_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int64_t now = vg_monotonic_ms();
        if (vg_outbox_pending(cs->outbox) == 0 || now >= deadline) break;
        if (vg_outbox_in_flight(cs->outbox) == 0) {
            int64_t wait = vg_outbox_wait_ms(cs->outbox, now);
            if (wait < 0 || now + wait > deadline) break; /* nothing can be attempted in time */
        }
        struct timespec ts = vg_deadline_in_ms(CLOCK_MONOTONIC, deadline - now < 100 ? deadline - now : 100);
        pthread_cond_timedwait(&cs->progress, &cs->lock, &ts);
    }
    vg_outbox_set_flush(cs->outbox, 0);
    long left = vg_outbox_pending(cs->outbox);
    pthread_mutex_unlock(&cs->lock);
    return left;
}

static void free_sink(central_sink *cs) {
    vg_outbox_free(cs->outbox);
    vg_spool_close(cs->spool);
    if (cs->curl) curl_easy_cleanup(cs->curl);
    curl_slist_free_all(cs->headers);
    pthread_mutex_destroy(&cs->lock);
    pthread_cond_destroy(&cs->wake);
    pthread_cond_destroy(&cs->progress);
    if (cs->api_key) explicit_bzero(cs->api_key, strlen(cs->api_key));
    free(cs->api_key);
    free(cs->url);
    free(cs->shown_url);
    free(cs);
}

static void spool_waiting(void *ctx, vg_outbox_item *it);

static void central_close(vg_sink *sink) {
    central_sink *cs = (central_sink *)sink;
    pthread_mutex_lock(&cs->lock);
    cs->accepting = 0;
    pthread_mutex_unlock(&cs->lock);
    if (cs->drain_timeout_ms > 0) vg_central_drain(sink, cs->drain_timeout_ms);
    pthread_mutex_lock(&cs->lock);
    cs->stopping = 1;
    __atomic_store_n(&cs->abort_transfer, 1, __ATOMIC_RELAXED);
    pthread_cond_signal(&cs->wake);
    pthread_mutex_unlock(&cs->lock);
    pthread_join(cs->thread, NULL);
    vg_outbox_each_waiting(cs->outbox, spool_waiting, cs); /* updates held in memory go to disk now */
    pthread_mutex_lock(&cs->lock);
    say_spool_state(cs, 1); /* the state it ends in, if a line held it back */
    pthread_mutex_unlock(&cs->lock);
    long left = vg_outbox_pending(cs->outbox);
    if (left > 0)
        vg_warn(WHO, "%ld episode versions not delivered to %s yet; they stay in the spool %s for the next start",
                left, cs->shown_url, vg_spool_dir(cs->spool));
    free_sink(cs);
}

static int check_options(const vg_central_options *o, char *err, size_t errlen) {
    if (!o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)) {
        snprintf(err, errlen, "Central URL must start with http:// or https://");
        return -1;
    }
    if (!o->api_key || !key_is_clean(o->api_key, strlen(o->api_key))) {
        snprintf(err, errlen, "Central API key is missing, empty or has control characters");
        return -1;
    }
    if (!o->spool_dir || !*o->spool_dir) {
        snprintf(err, errlen, "Central needs a spool directory");
        return -1;
    }
    return 0;
}

static int or_default(int value, int fallback) { return value ? value : fallback; }

static central_sink *new_sink(const vg_central_options *o) {
    central_sink *cs = calloc(1, sizeof *cs);
    cs->base = (vg_sink){.name = "central", .put = central_put, .close = central_close};
    cs->url = strdup(o->url);
    size_t n = strlen(cs->url);
    while (n > 0 && cs->url[n - 1] == '/') cs->url[--n] = 0;
    char shown[2048];
    cs->shown_url = strdup(vg_mask_url(cs->url, shown, sizeof shown));
    cs->api_key = strdup(o->api_key);
    cs->connect_timeout_ms = or_default(o->connect_timeout_ms, 5000);
    cs->request_timeout_ms = or_default(o->request_timeout_ms, 15000);
    cs->drain_timeout_ms = o->drain_timeout_ms;
    cs->accepting = 1;
    pthread_mutex_init(&cs->lock, NULL);
    vg_cond_init_monotonic(&cs->wake);
    vg_cond_init_monotonic(&cs->progress);
    vg_outbox_policy policy = {.min_update_interval_ms = o->min_update_interval_ms};
    cs->outbox = vg_outbox_new(&policy, (unsigned)vg_realtime_ms());
    return cs;
}

static vg_sink *open_with_key(const vg_central_options *o, char *err, size_t errlen) {
    if (check_options(o, err, errlen) < 0) return NULL;
    central_sink *cs = new_sink(o);
    cs->spool = vg_spool_open(o->spool_dir, o->spool_max_bytes, err, errlen);
    if (!cs->spool || setup_curl(cs, err, errlen) < 0) {
        free_sink(cs);
        return NULL;
    }
    load_spool(cs);
    if (pthread_create(&cs->thread, NULL, sender_main, cs) != 0) {
        snprintf(err, errlen, "cannot start the Central sender thread");
        free_sink(cs);
        return NULL;
    }
    return &cs->base;
}

/* err: "<named><suffix>: why", or why alone without a name. */
static void say_named(char *err, size_t errlen, const char *named, const char *suffix, const char *why) {
    if (named) snprintf(err, errlen, "%s%s: %s", named, suffix, why);
    else snprintf(err, errlen, "%s", why);
}

vg_sink *vg_central_open(const vg_central_options *o, char *err, size_t errlen) {
    char key[1024] = "", reason[512];
    vg_central_options keyed = *o;
    if (!o->api_key && o->api_key_file) {
        if (vg_key_file_read(o->api_key_file, key, sizeof key, reason, sizeof reason) < 0) {
            say_named(err, errlen, o->named, ".api_key_file", reason);
            return NULL;
        }
        keyed.api_key = key;
    }
    vg_sink *sink = open_with_key(&keyed, reason, sizeof reason);
    explicit_bzero(key, sizeof key);
    if (!sink) say_named(err, errlen, o->named, "", reason);
    return sink;
}

void vg_central_get_stats(vg_sink *sink, vg_central_stats *out) {
    *out = (vg_central_stats){0};
    if (!sink || strcmp(sink->name, "central") != 0) return;
    central_sink *cs = (central_sink *)sink;
    pthread_mutex_lock(&cs->lock);
    *out = cs->stats;
    out->queued = vg_outbox_pending(cs->outbox);
    pthread_mutex_unlock(&cs->lock);
    vg_spool_usage(cs->spool, &out->spool_files, &out->spool_bytes);
}
