/* test_node.c — the analytics-node API over a real loopback socket: the Bearer key (missing, wrong, a
 * prefix of the right one, the right one) with 401 + WWW-Authenticate; 400 naming the parameter at fault;
 * 404 and 405; episodes from a real store, a long poll woken by a put; streams with masked URLs; liveness;
 * the key file;
 * long polls set aside without a thread each (three times the pool's threads wait while other requests are
 * served, and one put wakes them all at once; one waits longer than the HTTP idle timeout and answers at its
 * own poll_timeout); and a stop that does not wait for a long poll to time out (the poll answers, empty). */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "http_client.h"
#include "vg_file.h"
#include "vg_log.h"
#include "vg_node.h"
#include "vg_snowflake.h"
#include "vg_time.h"

#define KEY "k3y-secret"

static void put(vg_store *st, uint64_t id, int64_t updated_at) {
    char body[256];
    snprintf(body, sizeof body, "{\"episode_id\":%llu,\"media\":\"cam\",\"opened_at\":1,\"updated_at\":%lld}",
             (unsigned long long)id, (long long)updated_at);
    vg_version v = {.episode_id = id, .media = "cam", .opened_at = 1, .updated_at = updated_at, .is_first = 1,
                    .body = body, .body_len = strlen(body)};
    vg_sink_put(vg_store_sink(st), &v);
}

static void list_two(void *ctx, vg_node_emit emit, void *emit_ctx) {
    (void)ctx;
    vg_node_stream a = {.name = "cam1", .url = "rtsp://viewer:pw0rd@10.0.0.1/a", .source = "config",
                        .script = "/s/motion.lua", .state = "up", .clock = "rtcp", .frames = 250, .connects = 1,
                        .episodes_open = 1};
    vg_node_stream b = {.name = "cam2", .url = "rtsp://10.0.0.2/b", .source = "central", .state = "connecting"};
    emit(emit_ctx, &a);
    emit(emit_ctx, &b);
}

static void test_auth(int port) {
    const char *wrong[] = {NULL, "Bearer nope", "Bearer k3y", "Bearer " KEY "x", "Basic " KEY, "Bearer"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        http_reply r = http_request(port, "GET", VG_NODE_API "/monitoring/liveness", wrong[i]);
        CHECK_INT(r.status, 401);
        CHECK(r.headers.data && strstr(r.headers.data, "WWW-Authenticate: Bearer"));
        CHECK(r.body.data && strstr(r.body.data, "\"status\":\"401\"") && !strstr(r.body.data, KEY));
        http_reply_free(&r);
    }
    http_reply r = http_request(port, "GET", VG_NODE_API "/monitoring/liveness", "bearer  " KEY " ");
    CHECK_INT(r.status, 200);
    http_reply_free(&r);
}

static void expect_400(int port, const char *query, const char *parameter) {
    char path[256], needle[128];
    snprintf(path, sizeof path, VG_NODE_API "/episodes?%s", query);
    http_reply r = http_request(port, "GET", path, "Bearer " KEY);
    CHECK_INT(r.status, 400);
    snprintf(needle, sizeof needle, "\"title\":\"%s: ", parameter);
    CHECK(r.body.data && strstr(r.body.data, needle));
    snprintf(needle, sizeof needle, "\"source\":{\"parameter\":\"%s\"}", parameter);
    CHECK(r.body.data && strstr(r.body.data, needle) && !strchr(r.body.data, '\n'));
    http_reply_free(&r);
}

static void test_errors(int port) {
    expect_400(port, "updated_at_gt=abc", "updated_at_gt");
    expect_400(port, "updated_at_gt=-5", "updated_at_gt");
    expect_400(port, "updated_at_gt=", "updated_at_gt");
    expect_400(port, "updated_at_gt=1&poll_timeout=61", "poll_timeout");
    expect_400(port, "poll_timeout=soon", "poll_timeout");
    expect_400(port, "limit=0", "limit");
    expect_400(port, "limit=10001", "limit");
    expect_400(port, "limit=%22%3E", "limit"); /* the value is quoted inside JSON safely */
    http_reply r = http_request(port, "GET", VG_NODE_API "/nothing", "Bearer " KEY);
    CHECK_INT(r.status, 404);
    CHECK(r.body.data && strstr(r.body.data, "\"status\":\"404\""));
    http_reply_free(&r);
    r = http_request(port, "POST", VG_NODE_API "/episodes", "Bearer " KEY);
    CHECK_INT(r.status, 405);
    CHECK(r.headers.data && strstr(r.headers.data, "Allow: GET"));
    http_reply_free(&r);
}

static void test_streams_and_liveness(int port) {
    http_reply r = http_request(port, "GET", VG_NODE_API "/streams", "Bearer " KEY);
    CHECK_INT(r.status, 200);
    CHECK(r.headers.data && strstr(r.headers.data, "Content-Type: application/json"));
    cJSON *doc = cJSON_Parse(r.body.data);
    cJSON *streams = cJSON_GetObjectItem(doc, "streams");
    CHECK_INT(cJSON_GetArraySize(streams), 2);
    cJSON *a = cJSON_GetArrayItem(streams, 0), *b = cJSON_GetArrayItem(streams, 1);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "url")), "rtsp://viewer:***@10.0.0.1/a");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "state")), "up");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "clock")), "rtcp");
    CHECK_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(a, "frames")), 250);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(b, "source")), "central");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(b, "state")), "connecting");
    CHECK(!strstr(r.body.data, "pw0rd"));
    cJSON_Delete(doc);
    http_reply_free(&r);

    int64_t before = vg_realtime_ms();
    r = http_request(port, "GET", VG_NODE_API "/monitoring/liveness", "Bearer " KEY);
    doc = cJSON_Parse(r.body.data);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "server_version")), VIGIL_VERSION);
    double now = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "now"));
    double started = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "started_at"));
    CHECK(now >= (double)before && now <= (double)vg_realtime_ms());
    CHECK(started <= now / 1000 && started > now / 1000 - 60);
    cJSON_Delete(doc);
    http_reply_free(&r);
}

typedef struct later_put {
    vg_store *st;
    int delay_ms;
    int64_t put_at; /* just before the put */
} later_put;

static void *put_later(void *arg) {
    later_put *p = arg;
    usleep((useconds_t)p->delay_ms * 1000);
    p->put_at = vg_monotonic_ms();
    put(p->st, 7, 700);
    return NULL;
}

static void test_episodes(int port, vg_store *st) {
    put(st, 5, 500);
    put(st, 6, 600);
    http_reply r = http_request(port, "GET", VG_NODE_API "/episodes?updated_at_gt=500", "Bearer " KEY);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body.data, "{\"episodes\":[{\"episode_id\":6,\"media\":\"cam\",\"opened_at\":1,\"updated_at\":600}],"
                           "\"estimated_count\":1}");
    http_reply_free(&r);
    r = http_request(port, "GET", VG_NODE_API "/episodes?limit=1", "Bearer " KEY); /* no updated_at_gt: from the start */
    CHECK(r.body.data && strstr(r.body.data, "\"episode_id\":5,") && !strstr(r.body.data, "\"episode_id\":6,"));
    CHECK(r.body.data && strstr(r.body.data, "\"estimated_count\":2}"));
    http_reply_free(&r);

    later_put p = {.st = st, .delay_ms = 300};
    pthread_t t;
    pthread_create(&t, NULL, put_later, &p);
    r = http_request(port, "GET", VG_NODE_API "/episodes?updated_at_gt=600&poll_timeout=30", "Bearer " KEY);
    int64_t answered = vg_monotonic_ms();
    pthread_join(t, NULL);
    CHECK(r.body.data && strstr(r.body.data, "\"episode_id\":7,"));
    /* woken by the put (promise: at once), not by its 30 s timeout */
    CHECK(answered >= p.put_at && answered - p.put_at < CHECK_SLACK_MS);
    http_reply_free(&r);

    r = http_request(port, "GET", VG_NODE_API "/episodes?updated_at_gt=9223372036854775807", "Bearer " KEY);
    CHECK_STR(r.body.data, "{\"episodes\":[],\"estimated_count\":0}"); /* the largest value: nothing after it */
    http_reply_free(&r);

    r = http_request(port, "GET", VG_NODE_API "/episodes?updated_at_gt=700&poll_timeout=0.4", "Bearer " KEY);
    CHECK_STR(r.body.data, "{\"episodes\":[],\"estimated_count\":0}");
    CHECK(r.took_ms >= 390 && r.took_ms < 400 + CHECK_SLACK_MS); /* its poll_timeout, then the answer */
    http_reply_free(&r);
}

typedef struct waiting {
    int port;
    http_reply r;
    int64_t answered_ms;
    const char *path;         /* with the key; NULL: poll_long's own, without */
    pthread_t thread;
} waiting;

static void *poll_with_key(void *arg) {
    waiting *w = arg;
    w->r = http_request(w->port, "GET", w->path, "Bearer " KEY);
    w->answered_ms = vg_monotonic_ms();
    return NULL;
}

/* stderr into a file while the node logs at debug level: its "waits for a newer version" lines are counted. */
typedef struct log_capture {
    char path[64];
    int fd, saved;
    vg_log_level level;
} log_capture;

static void capture_start(log_capture *c) {
    snprintf(c->path, sizeof c->path, "/tmp/vigil-test-node-log-XXXXXX");
    c->fd = mkstemp(c->path);
    fflush(stderr);
    c->saved = dup(2);
    dup2(c->fd, 2);
    c->level = vg_log_get_level();
    vg_log_set_level(VG_LOG_DEBUG);
}

static int capture_count(log_capture *c, const char *needle) {
    char text[65536];
    ssize_t n = pread(c->fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = 0;
    int count = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++) count++;
    return count;
}

static void capture_stop(log_capture *c) {
    vg_log_set_level(c->level);
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    close(c->fd);
    unlink(c->path);
}

/* Three times the pool's threads wait at once; a request is served meanwhile; one put answers them all. */
static void test_many_polls(int port, vg_store *st) {
    enum { POLLS = 3 * VG_NODE_THREADS };
    waiting polls[POLLS];
    log_capture log;
    capture_start(&log);
    for (int i = 0; i < POLLS; i++) {
        polls[i] = (waiting){.port = port, .path = VG_NODE_API "/episodes?updated_at_gt=700&poll_timeout=30"};
        pthread_create(&polls[i].thread, NULL, poll_with_key, &polls[i]);
    }
    int64_t end = vg_monotonic_ms() + CHECK_HANG_MS;
    while (capture_count(&log, "waits for a newer version") < POLLS && vg_monotonic_ms() < end) usleep(10 * 1000);
    CHECK_INT(capture_count(&log, "waits for a newer version"), POLLS);
    http_reply r = http_request(port, "GET", VG_NODE_API "/monitoring/liveness", "Bearer " KEY);
    CHECK_INT(r.status, 200);
    CHECK(r.took_ms < CHECK_SLACK_MS); /* at once: no thread is held by the waiting polls */
    http_reply_free(&r);
    int64_t put_at = vg_monotonic_ms();
    put(st, 8, 800);
    int woken = 0;
    for (int i = 0; i < POLLS; i++) {
        pthread_join(polls[i].thread, NULL);
        woken += polls[i].r.status == 200 && polls[i].r.body.data && strstr(polls[i].r.body.data, "\"episode_id\":8,") &&
                 polls[i].answered_ms >= put_at && polls[i].answered_ms - put_at < CHECK_SLACK_MS;
        http_reply_free(&polls[i].r);
    }
    CHECK_INT(woken, POLLS); /* each woken by the put (promise: at once), none by its 30 s timeout */
    capture_stop(&log);
}

static void *poll_long(void *arg) {
    waiting *w = arg;
    w->r = http_request(w->port, "GET", VG_NODE_API "/episodes?updated_at_gt=99999&poll_timeout=30", NULL);
    w->answered_ms = vg_monotonic_ms();
    return NULL;
}

/* Without a key, a request addressed to a name (DNS rebinding: a page elsewhere pointing its own name at this
 * node) is refused; addressed to an IP address or localhost, or with no Host, it is answered. With a key, the key
 * is what guards, whatever the name. */
static void test_host_names(int port, int keyed) {
    static const char *const names[] = {"Host: rebind.example", "Host: rebind.example:8080", "Host: 127.0.0.1.nip.io",
                                        "Host: localhost.example:1"};
    static const char *const addresses[] = {"Host: 127.0.0.1:9", "Host: localhost", "Host: LOCALHOST:80",
                                            "Host: [::1]:80", "Host: 10.0.0.5"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        http_reply r = http_request_header(port, "GET", VG_NODE_API "/monitoring/liveness", names[i]);
        CHECK_INT(r.status, keyed ? 401 : 403);
        if (!keyed) CHECK(r.body.data && strstr(r.body.data, "IP address or localhost"));
        http_reply_free(&r);
        r = http_request_header(port, "GET", "/", names[i]);
        CHECK_INT(r.status, keyed ? 200 : 403);
        http_reply_free(&r);
    }
    for (size_t i = 0; i < sizeof addresses / sizeof *addresses; i++) {
        http_reply r = http_request_header(port, "GET", VG_NODE_API "/monitoring/liveness", addresses[i]);
        CHECK_INT(r.status, keyed ? 401 : 200);
        http_reply_free(&r);
    }
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char dir[] = "/tmp/vigil-test-node-XXXXXX", err[256];
    if (!mkdtemp(dir)) return 1;
    vg_store *st = vg_store_open(dir, 0, err, sizeof err);
    vg_node *node = vg_node_start(&(vg_node_options){.listen = "127.0.0.1:0", .api_key = KEY, .store = st,
                                                     .list_streams = list_two}, err, sizeof err);
    CHECK(node != NULL);
    if (!node) return CHECK_DONE();
    int port = vg_node_port(node);
    /* waits longer than the HTTP idle timeout: answered by its own poll_timeout, not cut */
    char outliving_path[128];
    snprintf(outliving_path, sizeof outliving_path, VG_NODE_API "/episodes?updated_at_gt=99999&poll_timeout=%d",
             VG_HTTP_IDLE_TIMEOUT_S + 2);
    waiting outliving = {.port = port, .path = outliving_path};
    int64_t outliving_from = vg_monotonic_ms();
    pthread_create(&outliving.thread, NULL, poll_with_key, &outliving);
    test_auth(port);
    test_host_names(port, 1);
    test_errors(port);
    test_streams_and_liveness(port);
    test_episodes(port, st);
    test_many_polls(port, st);
    pthread_join(outliving.thread, NULL);
    CHECK_INT(outliving.r.status, 200);
    CHECK_STR(outliving.r.body.data, "{\"episodes\":[],\"estimated_count\":0}");
    CHECK(outliving.answered_ms - outliving_from >= (VG_HTTP_IDLE_TIMEOUT_S + 2) * 1000);
    CHECK(outliving.answered_ms - outliving_from < (VG_HTTP_IDLE_TIMEOUT_S + 2) * 1000 + CHECK_SLACK_MS);
    http_reply_free(&outliving.r);
    vg_node_stop(node);
    vg_store_close(st);

    /* no key configured: open; a stop ends a waiting long poll at once */
    st = vg_store_open(dir, 0, err, sizeof err);
    CHECK_INT(vg_store_count(st), 4);
    node = vg_node_start(&(vg_node_options){.listen = "127.0.0.1:0", .store = st}, err, sizeof err);
    test_host_names(vg_node_port(node), 0);
    waiting w = {.port = vg_node_port(node)};
    pthread_t t;
    pthread_create(&t, NULL, poll_long, &w);
    usleep(300 * 1000);
    int64_t t0 = vg_monotonic_ms();
    vg_node_stop(node);
    int64_t stop_ms = vg_monotonic_ms() - t0;
    pthread_join(t, NULL);
    CHECK_INT(w.r.status, 200);
    CHECK(w.r.body.data && strstr(w.r.body.data, "\"episodes\":[]"));
    CHECK(stop_ms < CHECK_SLACK_MS);                                      /* promise: at once */
    CHECK(w.answered_ms >= t0 && w.answered_ms - t0 < CHECK_SLACK_MS); /* it was waiting when the stop came */
    http_reply_free(&w.r);
    vg_store_close(st);

    char key[64], keyfile[128];
    snprintf(keyfile, sizeof keyfile, "%s/node.key", dir);
    FILE *f = fopen(keyfile, "w");
    fputs("\n  s3cret-key \r\nsecond line\n", f);
    fclose(f);
    CHECK_INT(vg_key_file_read(keyfile, key, sizeof key, err, sizeof err), 0);
    CHECK_STR(key, "s3cret-key");
    CHECK_INT(vg_key_file_read(keyfile, key, 8, err, sizeof err), -1);
    CHECK(strstr(err, "node.key: the key is longer than 7 bytes") && !strstr(err, "s3cret"));
    f = fopen(keyfile, "w");
    fputs(" \n\n", f);
    fclose(f);
    CHECK_INT(vg_key_file_read(keyfile, key, sizeof key, err, sizeof err), -1);
    CHECK(strstr(err, "no key in it") != NULL);
    CHECK_INT(vg_key_file_read("/nonexistent/k", key, sizeof key, err, sizeof err), -1);
    CHECK_STR(err, "/nonexistent/k: No such file or directory");

    CHECK(vg_node_start(&(vg_node_options){.listen = "127.0.0.1:99999"}, err, sizeof err) == NULL);
    CHECK(strstr(err, "node.listen: ") == err);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    curl_global_cleanup();
    return CHECK_DONE();
}
