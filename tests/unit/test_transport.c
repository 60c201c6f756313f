/* test_transport.c — the Central transport without Central: the delivery policy of vg_outbox with injected
 * time (coalescing, first/closing never skipped, per-episode order, the stream-time rate limit and its
 * timer, backoff with jitter, 400 drops, 401 holds, recovery), a randomized check of the ordering
 * invariants, the central.conf key reader, the tee sink, and the Central sink's spool surviving a close
 * while Central is unreachable. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "vg_file.h"
#include "vg_outbox.h"
#include "vg_spool.h"
#include "vg_transport.h"

static vg_outbox_item *item(uint64_t id, int64_t updated_at, int first, int closing) {
    vg_outbox_item *it = calloc(1, sizeof *it);
    it->episode_id = id;
    it->media = strdup("cam");
    it->opened_at = 1000;
    it->updated_at = updated_at;
    it->is_first = first;
    it->is_closing = closing;
    it->spooled = 1;
    return it;
}

static int count_garbage(vg_outbox *ob) {
    int n = 0;
    for (vg_outbox_item *it = vg_outbox_take_garbage(ob), *next; it; it = next, n++) {
        next = it->next;
        vg_outbox_item_free(it);
    }
    return n;
}

/* Sends the next item and reports result; returns its updated_at, or -1 when nothing is due. */
static int64_t send_next(vg_outbox *ob, int64_t now, vg_send_result result) {
    vg_outbox_item *it = vg_outbox_next(ob, now);
    if (!it) return -1;
    int64_t updated = it->updated_at;
    vg_outbox_done(ob, it, result, now, 0);
    return updated;
}

static void test_coalescing_and_timer(void) {
    vg_outbox *ob = vg_outbox_new(&(vg_outbox_policy){.min_update_interval_ms = 1000}, 1);
    int64_t now = 5000;
    vg_outbox_add(ob, item(1, 1000, 1, 0), now);
    vg_outbox_add(ob, item(1, 1040, 0, 0), now);
    vg_outbox_add(ob, item(1, 1080, 0, 0), now);
    vg_outbox_add(ob, item(1, 1120, 0, 0), now);
    CHECK_INT(count_garbage(ob), 2); /* 1040 and 1080 superseded by 1120 */
    CHECK_INT(vg_outbox_pending(ob), 2);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 1000); /* the first version goes at once */
    CHECK_INT(send_next(ob, now, VG_SEND_OK), -1);   /* 1120 is held: only 120 ms after 1000 */
    CHECK_INT(vg_outbox_wait_ms(ob, now), 880);
    /* no further version comes: the held one goes once its interval passed (the timer) */
    CHECK_INT(send_next(ob, now + 879, VG_SEND_OK), -1);
    CHECK_INT(send_next(ob, now + 880, VG_SEND_OK), 1120);
    CHECK_INT(vg_outbox_wait_ms(ob, now + 880), -1);
    CHECK_INT(vg_outbox_pending(ob), 0);
    vg_outbox_free(ob);
}

static void test_first_and_closing_never_skipped(void) {
    vg_outbox *ob = vg_outbox_new(NULL, 1);
    int64_t now = 0;
    vg_outbox_add(ob, item(7, 100, 1, 0), now);
    vg_outbox_add(ob, item(7, 140, 0, 0), now);
    vg_outbox_add(ob, item(7, 180, 0, 1), now); /* the close supersedes the pending update, not the open */
    CHECK_INT(count_garbage(ob), 1);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 100);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 180); /* the close is not rate-limited */
    CHECK_INT(vg_outbox_pending(ob), 0);
    CHECK_INT(count_garbage(ob), 2);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), -1);
    CHECK_INT(vg_outbox_episodes(ob), 0); /* a finished episode is forgotten */
    /* an open-and-close in one version */
    vg_outbox_add(ob, item(8, 100, 1, 1), now);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 100);
    CHECK_INT(vg_outbox_pending(ob), 0);
    vg_outbox_free(ob);
}

static void test_stream_time_rate_limit(void) {
    /* a replay: versions 40 ms apart in stream time arrive at the same wall instant */
    vg_outbox *ob = vg_outbox_new(&(vg_outbox_policy){.min_update_interval_ms = 1000}, 1);
    int64_t now = 77;
    int64_t sent[64];
    int n = 0;
    vg_outbox_add(ob, item(3, 0, 1, 0), now);
    for (int64_t t = 40; t <= 3000; t += 40) {
        int64_t got;
        while ((got = send_next(ob, now, VG_SEND_OK)) >= 0) sent[n++] = got;
        vg_outbox_add(ob, item(3, t, 0, t == 3000), now);
    }
    int64_t got;
    while ((got = send_next(ob, now, VG_SEND_OK)) >= 0) sent[n++] = got;
    CHECK_INT(n, 4);
    CHECK_INT(sent[0], 0);
    CHECK_INT(sent[1], 1000);
    CHECK_INT(sent[2], 2000);
    CHECK_INT(sent[3], 3000);
    vg_outbox_free(ob);

    /* -1: no rate limit */
    ob = vg_outbox_new(&(vg_outbox_policy){.min_update_interval_ms = -1}, 1);
    vg_outbox_add(ob, item(3, 0, 1, 0), now);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 0);
    vg_outbox_add(ob, item(3, 40, 0, 0), now);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 40);
    vg_outbox_free(ob);

    /* flush (draining before exit) lets a held update go at once */
    ob = vg_outbox_new(NULL, 1);
    vg_outbox_add(ob, item(3, 0, 1, 0), now);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 0);
    vg_outbox_add(ob, item(3, 40, 0, 0), now);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), -1);
    vg_outbox_set_flush(ob, 1);
    CHECK_INT(vg_outbox_wait_ms(ob, now), 0);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 40);
    vg_outbox_free(ob);
}

static void test_backoff(void) {
    vg_outbox *ob = vg_outbox_new(NULL, 12345);
    int64_t lo[] = {0, 250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000};
    int64_t hi[] = {0, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    int in_range = 1, varied = 0;
    for (int n = 1; n <= 9; n++) {
        int64_t first = vg_outbox_backoff_ms(ob, n);
        for (int k = 0; k < 50; k++) {
            int64_t b = vg_outbox_backoff_ms(ob, n);
            in_range &= b >= lo[n] && b <= hi[n];
            varied |= b != first;
        }
    }
    CHECK(in_range);
    CHECK(varied); /* jitter */
    vg_outbox_free(ob);
}

static void test_retry_then_recover(void) {
    /* Seeded so that after the second failure episode 1's own pause (a jittered draw of the same schedule as
     * the global pause) outlasts the global one: the case below where episode 2 goes first. */
    vg_outbox *ob = vg_outbox_new(NULL, 3);
    int64_t now = 1000;
    vg_outbox_add(ob, item(1, 100, 1, 0), now);
    vg_outbox_item *it = vg_outbox_next(ob, now);
    vg_outbox_done(ob, it, VG_SEND_RETRY, now, 0);
    CHECK_INT(vg_outbox_pending(ob), 1);
    int64_t wait = vg_outbox_wait_ms(ob, now);
    CHECK(wait >= 250 && wait <= 500);
    CHECK(vg_outbox_next(ob, now + wait - 1) == NULL);
    /* another episode's open waits for the global pause too */
    vg_outbox_add(ob, item(2, 100, 1, 0), now);
    CHECK(vg_outbox_next(ob, now + 1) == NULL);
    now += wait;
    it = vg_outbox_next(ob, now);
    CHECK(it != NULL && it->episode_id == 1 && it->attempts == 1);
    vg_outbox_done(ob, it, VG_SEND_RETRY, now, 0);
    /* failures in a row grow the pause */
    wait = vg_outbox_wait_ms(ob, now);
    CHECK(wait >= 500 && wait <= 1000);
    now += wait;
    it = vg_outbox_next(ob, now);
    CHECK(it != NULL && it->episode_id == 2); /* episode 1 is in its own backoff; 2 goes */
    vg_outbox_done(ob, it, VG_SEND_RETRY, now, 5000); /* Retry-After: 5 s */
    CHECK(vg_outbox_wait_ms(ob, now) >= 5000);
    now += vg_outbox_wait_ms(ob, now);
    it = vg_outbox_next(ob, now);
    CHECK(it != NULL);
    vg_outbox_done(ob, it, VG_SEND_OK, now, 0);
    /* Central is back: the other episode does not wait out its own backoff */
    CHECK_INT(vg_outbox_wait_ms(ob, now), 0);
    it = vg_outbox_next(ob, now);
    CHECK(it != NULL);
    vg_outbox_done(ob, it, VG_SEND_OK, now, 0);
    CHECK_INT(vg_outbox_pending(ob), 0);
    vg_outbox_free(ob);
}

static void test_failed_update_superseded_while_in_flight(void) {
    vg_outbox *ob = vg_outbox_new(&(vg_outbox_policy){.min_update_interval_ms = -1}, 1);
    int64_t now = 0;
    vg_outbox_add(ob, item(1, 100, 1, 0), now);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 100);
    count_garbage(ob);
    vg_outbox_add(ob, item(1, 200, 0, 0), now);
    vg_outbox_item *it = vg_outbox_next(ob, now);
    vg_outbox_add(ob, item(1, 300, 0, 0), now); /* arrives while 200 is on the wire */
    vg_outbox_done(ob, it, VG_SEND_RETRY, now, 0);
    CHECK_INT(count_garbage(ob), 1); /* 200 is not retried: 300 replaces it */
    now += vg_outbox_wait_ms(ob, now);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 300);
    /* a failed open or close is always retried, even when newer versions wait */
    vg_outbox_add(ob, item(2, 100, 1, 0), now);
    it = vg_outbox_next(ob, now);
    vg_outbox_add(ob, item(2, 200, 0, 1), now);
    vg_outbox_done(ob, it, VG_SEND_RETRY, now, 0);
    CHECK_INT(count_garbage(ob), 1); /* only the delivered 300 of episode 1 */
    now += vg_outbox_wait_ms(ob, now);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 100);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 200);
    vg_outbox_free(ob);
}

static void test_rejected_and_unauthorized(void) {
    vg_outbox *ob = vg_outbox_new(NULL, 1);
    int64_t now = 0;
    vg_outbox_add(ob, item(1, 100, 1, 0), now);
    vg_outbox_add(ob, item(2, 100, 1, 0), now);
    vg_outbox_add(ob, item(1, 200, 0, 1), now);
    /* 400 for episode 1's open: dropped, and nothing else waits */
    CHECK_INT(send_next(ob, now, VG_SEND_REJECTED), 100);
    CHECK_INT(count_garbage(ob), 1);
    CHECK_INT(vg_outbox_wait_ms(ob, now), 0);
    vg_outbox_item *it = vg_outbox_next(ob, now);
    CHECK(it && it->episode_id == 2);
    vg_outbox_done(ob, it, VG_SEND_OK, now, 0);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 200); /* episode 1 goes on with its close */

    /* 401: everything stays, paused 30 s */
    vg_outbox_add(ob, item(3, 100, 1, 0), now);
    vg_outbox_add(ob, item(4, 100, 1, 0), now);
    count_garbage(ob);
    CHECK_INT(send_next(ob, now, VG_SEND_UNAUTHORIZED), 100);
    CHECK_INT(vg_outbox_pending(ob), 2);
    CHECK_INT(count_garbage(ob), 0);
    CHECK_INT(vg_outbox_wait_ms(ob, now), 30000);
    CHECK(vg_outbox_next(ob, now + 29999) == NULL);
    CHECK_INT(send_next(ob, now + 30000, VG_SEND_OK), 100);
    CHECK_INT(send_next(ob, now + 30000, VG_SEND_OK), 100);
    CHECK_INT(vg_outbox_pending(ob), 0);
    vg_outbox_free(ob);
}

static void test_order_across_episodes_and_loading(void) {
    vg_outbox *ob = vg_outbox_new(NULL, 1);
    int64_t now = 0;
    vg_outbox_add(ob, item(5, 100, 1, 0), now);
    vg_outbox_add(ob, item(6, 90, 1, 0), now);
    vg_outbox_item *it = vg_outbox_next(ob, now);
    CHECK(it && it->episode_id == 5); /* arrival order across episodes */
    vg_outbox_done(ob, it, VG_SEND_OK, now, 0);
    vg_outbox_free(ob);

    /* as loaded from a spool after a crash: whatever order, stale updates are dropped at once */
    ob = vg_outbox_new(NULL, 1);
    vg_outbox_add(ob, item(9, 500, 0, 1), now);
    vg_outbox_add(ob, item(9, 300, 0, 0), now);
    vg_outbox_add(ob, item(9, 100, 1, 0), now);
    CHECK_INT(count_garbage(ob), 1);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 100);
    CHECK_INT(send_next(ob, now, VG_SEND_OK), 500);
    vg_outbox_free(ob);
}

/* Random versions, random answers: per episode, what Central accepts rises strictly, the first and closing
 * versions all arrive, nothing follows a close, and everything queued ends up delivered or garbage. */
static void test_random_invariants(void) {
    enum { EPISODES = 12 };
    srand(4242);
    vg_outbox *ob = vg_outbox_new(&(vg_outbox_policy){.min_update_interval_ms = 200}, 7);
    int64_t now = 0, next_ts[EPISODES], last_ok[EPISODES];
    int opened[EPISODES] = {0}, closed[EPISODES] = {0}, got_first[EPISODES] = {0}, got_close[EPISODES] = {0};
    int order_ok = 1, after_close = 0;
    long added = 0, freed = 0;
    for (int e = 0; e < EPISODES; e++) next_ts[e] = 1000 + e, last_ok[e] = -1;
    for (int step = 0; step < 20000; step++) {
        int action = rand() % 4;
        int e = rand() % EPISODES;
        if (action == 0 && !closed[e]) {
            int first = !opened[e], closing = opened[e] && rand() % 30 == 0;
            vg_outbox_add(ob, item((uint64_t)e + 1, next_ts[e], first, closing), now);
            added++;
            opened[e] = 1;
            closed[e] = closing;
            next_ts[e] += 1 + rand() % 80;
        } else if (action == 1) {
            vg_outbox_item *it = vg_outbox_next(ob, now);
            if (it) {
                int r = rand() % 10;
                vg_send_result res = r < 7 ? VG_SEND_OK : r < 9 ? VG_SEND_RETRY : VG_SEND_UNAUTHORIZED;
                int k = (int)it->episode_id - 1;
                if (res == VG_SEND_OK) {
                    if (it->updated_at <= last_ok[k]) order_ok = 0;
                    if (got_close[k]) after_close = 1;
                    last_ok[k] = it->updated_at;
                    got_first[k] |= it->is_first;
                    got_close[k] |= it->is_closing;
                }
                vg_outbox_done(ob, it, res, now, 0);
            }
        } else {
            now += rand() % 50;
        }
        freed += count_garbage(ob);
    }
    /* close everything, then let it all go with Central healthy */
    for (int e = 0; e < EPISODES; e++) {
        if (opened[e] && !closed[e]) vg_outbox_add(ob, item((uint64_t)e + 1, next_ts[e], 0, 1), now), added++;
    }
    for (int guard = 0; vg_outbox_pending(ob) > 0 && guard < 100000; guard++) {
        vg_outbox_item *it = vg_outbox_next(ob, now);
        if (!it) {
            now += vg_outbox_wait_ms(ob, now);
            continue;
        }
        int k = (int)it->episode_id - 1;
        if (it->updated_at <= last_ok[k]) order_ok = 0;
        if (got_close[k]) after_close = 1;
        last_ok[k] = it->updated_at;
        got_first[k] |= it->is_first;
        got_close[k] |= it->is_closing;
        vg_outbox_done(ob, it, VG_SEND_OK, now, 0);
        freed += count_garbage(ob);
    }
    CHECK(order_ok);
    CHECK(!after_close);
    int all_complete = 1;
    for (int e = 0; e < EPISODES; e++) all_complete &= !opened[e] || (got_first[e] && got_close[e]);
    CHECK(all_complete);
    CHECK_INT(vg_outbox_pending(ob), 0);
    CHECK_INT(freed, added);
    vg_outbox_free(ob);
}

static const char *write_conf(const char *text) {
    static char path[] = "/tmp/vigil-test-central-XXXXXX";
    int fd = mkstemp(path);
    if (write(fd, text, strlen(text)) < 0) fprintf(stderr, "write failed\n");
    close(fd);
    return path;
}

static void test_key_file(void) {
    char key[128], err[256];
    struct { const char *text, *key; } good[] = {
        {"API_KEY=abc123\n", "abc123"},
        {"# Central\nCENTRAL_URL=http://x\n  API_KEY = \"s3cr et\"  # quoted\n", "s3cr et"},
        {"export API_KEY='single'\n", "single"},
        {"API_KEY=bare # comment\n", "bare"},
        {"API_KEY=a#b\r\n", "a#b"},
        {"API_KEY=old\nAPI_KEY=new\n", "new"},
        {"API_KEY=nonewline", "nonewline"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *path = write_conf(good[i].text);
        int rc = vg_key_file_read(path, key, sizeof key, err, sizeof err);
        CHECK_INT(rc, 0);
        if (rc == 0) CHECK_STR(key, good[i].key);
        unlink(path);
        strcpy((char *)path + strlen(path) - 6, "XXXXXX");
    }
    const char *bad[] = {"# API_KEY=commented\nOTHER=1\n", "API_KEY=\n", "API_KEY=\"\"\n", "API_KEYS=x\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = write_conf(bad[i]);
        CHECK_INT(vg_key_file_read(path, key, sizeof key, err, sizeof err), -1);
        CHECK(strstr(err, path) != NULL);
        unlink(path);
        strcpy((char *)path + strlen(path) - 6, "XXXXXX");
    }
    const char *path = write_conf("API_KEY=0123456789abcdef0123456789abcdef\n");
    CHECK_INT(vg_key_file_read(path, key, 8, err, sizeof err), -1);
    CHECK(strstr(err, "0123456789") == NULL); /* the key never reaches a message */
    unlink(path);
    CHECK_INT(vg_key_file_read("/nonexistent/central.conf", key, sizeof key, err, sizeof err), -1);
    CHECK(strstr(err, "/nonexistent/central.conf") != NULL);
}

/* vg_central_open reads the key file itself and names it as the caller's options say (vigil run: "central"). */
static void test_open_with_key_file(void) {
    char err[512];
    vg_central_options o = {.url = "http://127.0.0.1:1", .api_key_file = "/nonexistent/central.conf",
                            .named = "central", .spool_dir = "/nonexistent/spool"};
    CHECK(vg_central_open(&o, err, sizeof err) == NULL);
    CHECK_STR(err, "central.api_key_file: /nonexistent/central.conf: No such file or directory");
    o.named = NULL; /* vigil replay, vigil flush: the reason alone */
    CHECK(vg_central_open(&o, err, sizeof err) == NULL);
    CHECK_STR(err, "/nonexistent/central.conf: No such file or directory");
    o.api_key_file = NULL;
    o.named = "central";
    CHECK(vg_central_open(&o, err, sizeof err) == NULL);
    CHECK_STR(err, "central: Central API key is missing, empty or has control characters");
}

typedef struct counting_sink {
    vg_sink base;
    int puts, closed, fail;
} counting_sink;

static int counting_put(vg_sink *s, const vg_version *v) {
    counting_sink *c = (counting_sink *)s;
    c->puts++;
    return c->fail ? -1 : 0;
}

static void counting_close(vg_sink *s) { ((counting_sink *)s)->closed++; }

static void test_tee(void) {
    counting_sink a = {.base = {.name = "a", .put = counting_put, .close = counting_close}};
    counting_sink b = a;
    b.base.name = "b";
    b.fail = 1;
    vg_sink *tee = vg_sink_tee(&a.base, &b.base);
    vg_version v = {.episode_id = 1, .media = "m", .body = "{}", .body_len = 2};
    CHECK_INT(vg_sink_put(tee, &v), -1); /* b failed */
    CHECK_INT(a.puts, 1);
    CHECK_INT(b.puts, 1);
    b.fail = 0;
    CHECK_INT(vg_sink_put(tee, &v), 0);
    CHECK_STR(tee->name, "a+b");
    vg_sink_close(tee);
    CHECK_INT(a.closed, 1);
    CHECK_INT(b.closed, 1);
}

/* Central unreachable (nothing listens on the port): put() still succeeds at once, and what was not
 * delivered stays in the spool for the next start. */
static void test_sink_keeps_spool(void) {
    char dir[] = "/tmp/vigil-test-central-spool-XXXXXX", err[256];
    if (!mkdtemp(dir)) return;
    vg_central_options o = {.url = "http://127.0.0.1:1/", .api_key = "k", .spool_dir = dir, .drain_timeout_ms = 0,
                            .connect_timeout_ms = 200};
    CHECK(vg_central_open(&(vg_central_options){.url = "ftp://x", .api_key = "k", .spool_dir = dir}, err, sizeof err) == NULL);
    CHECK(strstr(err, "http://") != NULL);
    CHECK(vg_central_open(&(vg_central_options){.url = "http://x", .api_key = "a\nb", .spool_dir = dir}, err, sizeof err) == NULL);
    vg_sink *sink = vg_central_open(&o, err, sizeof err);
    CHECK(sink != NULL);
    if (!sink) return;
    const char *body = "{\"episode_id\":5,\"media\":\"cam\",\"opened_at\":1000,\"updated_at\":1000}";
    vg_version v = {.episode_id = 5, .media = "cam", .opened_at = 1000, .updated_at = 1000, .is_first = 1,
                    .body = body, .body_len = strlen(body)};
    CHECK_INT(vg_sink_put(sink, &v), 0);
    v.is_first = 0, v.updated_at = 1040;
    CHECK_INT(vg_sink_put(sink, &v), 0);
    vg_central_stats st;
    vg_central_get_stats(sink, &st);
    CHECK_INT(st.queued, 2);
    CHECK_INT(st.spool_files, 1); /* the open is on disk at once; the update when due (or at close) */
    CHECK_INT(vg_central_drain(sink, 300), 2);
    vg_sink_close(sink);

    vg_spool *sp = vg_spool_open(dir, 0, err, sizeof err);
    long files;
    vg_spool_usage(sp, &files, NULL);
    CHECK_INT(files, 2);
    vg_spool_close(sp);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    test_coalescing_and_timer();
    test_first_and_closing_never_skipped();
    test_stream_time_rate_limit();
    test_backoff();
    test_open_with_key_file();
    test_retry_then_recover();
    test_failed_update_superseded_while_in_flight();
    test_rejected_and_unauthorized();
    test_order_across_episodes_and_loading();
    test_random_invariants();
    test_key_file();
    test_tee();
    test_sink_keeps_spool();
    return CHECK_DONE();
}
