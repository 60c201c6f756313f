/* test_http.c — the HTTP server over a real loopback socket: routing, query arguments, the
 * Authorization header, 404, bad listen addresses, and a buffer that grows; its limits against hostile
 * clients (raw sockets from several 127.0.0.x addresses): the per-client limit (refused at once), the total
 * limit (the next one waits for a free slot), the header deadline (a client sending a header line more often
 * than the idle timeout is dropped at VG_HTTP_HEADER_TIMEOUT_S, not before), requests answered later (many
 * waiting on a pool of 2 threads while other requests are served, one outliving the idle timeout, one
 * answered inside its handler), and a stop that answers a forgotten one 503. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "http_client.h"
#include "vg_http.h"
#include "vg_snowflake.h"
#include "vg_time.h"

#define TAKEN_MAX 64
#define LINE_EVERY_MS 2000 /* a slow client's header line this often: well inside the idle timeout */

/* Requests the handler took for a later answer (path /later), in arrival order. */
static struct {
    pthread_mutex_t lock;
    vg_http_later *items[TAKEN_MAX];
    int n;
} taken = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int taken_count(void) {
    pthread_mutex_lock(&taken.lock);
    int n = taken.n;
    pthread_mutex_unlock(&taken.lock);
    return n;
}

static int take_later(const vg_http_request *req) {
    pthread_mutex_lock(&taken.lock);
    int full = taken.n == TAKEN_MAX;
    if (!full) taken.items[taken.n++] = vg_http_take(req);
    pthread_mutex_unlock(&taken.lock);
    return full ? -1 : VG_HTTP_LATER;
}

static int handler(void *ctx, const vg_http_request *req, vg_http_response *res) {
    (void)ctx;
    if (strcmp(req->path, "/later") == 0) return take_later(req);
    if (strcmp(req->path, "/at-once") == 0) { /* taken and answered before the handler returns */
        vg_http_answer(vg_http_take(req), &(vg_http_response){.status = 201, .body = strdup("at once")});
        return VG_HTTP_LATER;
    }
    if (strcmp(req->path, "/echo") != 0) return -1;
    vg_buf b = {0};
    const char *name = vg_http_query(req, "name");
    vg_buf_printf(&b, "%s %s name=%s auth=%s", req->method, req->path, name ? name : "-",
                  req->authorization ? req->authorization : "-");
    res->status = name ? 200 : 400;
    res->body = b.data;
    return 0;
}

/* ---------- raw clients ---------- */

/* A TCP connection to 127.0.0.1:port from the source address (127.0.0.x), or -1. */
static int raw_connect(const char *source, int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &a.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) goto fail;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) goto fail;
    return fd;
fail:
    if (fd >= 0) close(fd);
    return -1;
}

static void raw_send(int fd, const char *text) {
    if (send(fd, text, strlen(text), MSG_NOSIGNAL) < 0) { /* the server closed it: the reads below say so */ }
}

/* Reads until the server closes the connection or ms pass; what came is in buf. 1 when it was closed. */
static int raw_read_to_close(int fd, char *buf, size_t cap, int ms) {
    size_t len = 0;
    int64_t end = vg_monotonic_ms() + ms;
    buf[0] = 0;
    for (int64_t now; (now = vg_monotonic_ms()) < end;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now)) <= 0) continue;
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0) return 1;
        len += (size_t)n;
        buf[len] = 0;
        if (len == cap - 1) len = 0; /* only the start and the close matter here */
    }
    return 0;
}

/* A whole GET with Connection: close from the source address; the answer's status, 0 if none. */
static int raw_get(const char *source, int port, const char *path, char *buf, size_t cap) {
    int fd = raw_connect(source, port);
    if (fd < 0) return 0;
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    raw_send(fd, req);
    raw_read_to_close(fd, buf, cap, CHECK_HANG_MS);
    close(fd);
    int status = 0;
    return sscanf(buf, "HTTP/1.1 %d", &status) == 1 ? status : 0;
}

typedef struct pending_get {
    const char *source, *path;
    char own_source[16];
    int port, status;
    char buf[512];
    int64_t answered_ms;
    pthread_t thread;
} pending_get;

static void *get_in_thread(void *arg) {
    pending_get *g = arg;
    g->status = raw_get(g->source, g->port, g->path, g->buf, sizeof g->buf);
    g->answered_ms = vg_monotonic_ms();
    return NULL;
}

static void start_get(pending_get *g) { pthread_create(&g->thread, NULL, get_in_thread, g); }

static int wait_taken(int n) {
    int64_t end = vg_monotonic_ms() + CHECK_HANG_MS;
    while (taken_count() < n && vg_monotonic_ms() < end) usleep(10 * 1000);
    return taken_count() >= n;
}

/* ---------- limits ---------- */

static vg_http_server *serve(unsigned total, unsigned per_client) {
    char err[256];
    vg_http_options o = {.listen = "127.0.0.1:0", .name = "test", .handler = handler, .max_connections = total,
                         .max_per_client = per_client, .threads = 2};
    vg_http_server *s = vg_http_serve(&o, err, sizeof err);
    CHECK(s != NULL);
    return s;
}

/* A third connection from one address is closed at once; another address is served meanwhile. */
static void test_per_client_limit(int port, int slow[2]) {
    char buf[512];
    for (int i = 0; i < 2; i++) {
        slow[i] = raw_connect("127.0.0.1", port);
        raw_send(slow[i], "GET /echo?name=slow HTTP/1.1\r\nHost: t\r\n"); /* never the blank line */
    }
    int64_t t0 = vg_monotonic_ms();
    int third = raw_connect("127.0.0.1", port);
    raw_send(third, "GET /echo?name=third HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(raw_read_to_close(third, buf, sizeof buf, CHECK_HANG_MS));
    CHECK(vg_monotonic_ms() - t0 < CHECK_SLACK_MS); /* promise: at once */
    CHECK(strstr(buf, "200") == NULL);
    close(third);
    CHECK_INT(raw_get("127.0.0.2", port, "/echo?name=other", buf, sizeof buf), 200);
}

/* The slow ones, sending a header line every LINE_EVERY_MS, are dropped at the header deadline; meanwhile
 * a taken request (from before) outlives the idle timeout and is answered after it. */
static void test_header_deadline(int slow[2], int64_t opened_ms, vg_http_later *outliving) {
    int closed[2] = {0, 0};
    int64_t closed_ms[2] = {0, 0}, end = vg_monotonic_ms() + VG_HTTP_HEADER_TIMEOUT_S * 1000 + CHECK_HANG_MS;
    char buf[512];
    for (int line = 0; (!closed[0] || !closed[1]) && vg_monotonic_ms() < end; line++) {
        for (int i = 0; i < 2; i++) {
            if (closed[i]) continue;
            char header[64];
            snprintf(header, sizeof header, "X-Slow-%d: x\r\n", line);
            raw_send(slow[i], header);
            if ((closed[i] = raw_read_to_close(slow[i], buf, sizeof buf, LINE_EVERY_MS / 2)))
                closed_ms[i] = vg_monotonic_ms();
        }
    }
    for (int i = 0; i < 2; i++) {
        CHECK(closed[i]);
        /* never before the deadline (counted from before connect(): the server's clock starts later) */
        CHECK(closed_ms[i] - opened_ms >= VG_HTTP_HEADER_TIMEOUT_S * 1000);
        CHECK(closed_ms[i] - opened_ms < VG_HTTP_HEADER_TIMEOUT_S * 1000 + CHECK_SLACK_MS);
        close(slow[i]);
    }
    while (vg_monotonic_ms() - opened_ms < (VG_HTTP_IDLE_TIMEOUT_S + 1) * 1000) usleep(50 * 1000);
    vg_http_answer(outliving, &(vg_http_response){.status = 200, .body = strdup("late but there")});
}

/* With 2 connections in all, a third waits (in the kernel's queue) until one of them closes. */
static void test_total_limit(void) {
    vg_http_server *s = serve(2, 8);
    if (!s) return;
    int port = vg_http_port(s);
    int held[2];
    for (int i = 0; i < 2; i++) {
        held[i] = raw_connect("127.0.0.3", port);
        raw_send(held[i], "GET /echo?name=held HTTP/1.1\r\nHost: t\r\n");
    }
    pending_get g = {.source = "127.0.0.4", .port = port, .path = "/echo?name=queued"};
    start_get(&g);
    usleep(500 * 1000); /* time to answer it, if the limit failed */
    int64_t freed_ms = vg_monotonic_ms();
    CHECK_INT(g.answered_ms, 0); /* still waiting for a slot (the kernel accepts in order: the held ones first) */
    close(held[0]);
    pthread_join(g.thread, NULL);
    CHECK_INT(g.status, 200);
    CHECK(g.answered_ms >= freed_ms);
    close(held[1]);
    vg_http_stop(s);
}

/* 40 requests wait for a later answer on a pool of 2 threads, and other requests are still served. */
static void test_later(int port) {
    enum { WAITING = 40 };
    pending_get gets[WAITING];
    for (int i = 0; i < WAITING; i++) { /* each from its own address: 2 per client is the limit */
        gets[i] = (pending_get){.port = port, .path = "/later"};
        snprintf(gets[i].own_source, sizeof gets[i].own_source, "127.0.1.%d", i + 1);
        gets[i].source = gets[i].own_source;
        start_get(&gets[i]);
    }
    CHECK(wait_taken(1 + WAITING)); /* the one taken before, then these */
    char buf[512];
    CHECK_INT(raw_get("127.0.0.6", port, "/echo?name=meanwhile", buf, sizeof buf), 200);
    CHECK_INT(raw_get("127.0.0.6", port, "/at-once", buf, sizeof buf), 201);
    CHECK(strstr(buf, "\r\n\r\nat once") != NULL);
    for (int i = 1; i <= WAITING; i++) {
        char body[32];
        snprintf(body, sizeof body, "answer %d", i);
        vg_http_answer(taken.items[i], &(vg_http_response){.status = 200, .body = strdup(body)});
    }
    int all = 1;
    for (int i = 0; i < WAITING; i++) {
        pthread_join(gets[i].thread, NULL);
        all &= gets[i].status == 200 && strstr(gets[i].buf, "\r\n\r\nanswer ") != NULL;
    }
    CHECK(all);
}

static void test_limits(void) {
    vg_http_server *s = serve(64, 2);
    if (!s) return;
    int port = vg_http_port(s), slow[2];
    pending_get outliving = {.source = "127.0.0.7", .port = port, .path = "/later"};
    int64_t opened_ms = vg_monotonic_ms();
    start_get(&outliving);
    CHECK(wait_taken(1));
    test_per_client_limit(port, slow);
    test_later(port);
    test_header_deadline(slow, opened_ms, taken.items[0]);
    pthread_join(outliving.thread, NULL);
    CHECK_INT(outliving.status, 200); /* set aside longer than the idle timeout: not cut */
    CHECK(strstr(outliving.buf, "late but there") != NULL);

    /* a taken request nobody answers: the stop answers 503 (and says so) instead of hanging */
    pending_get forgotten = {.source = "127.0.0.8", .port = port, .path = "/later"};
    int before = taken_count();
    start_get(&forgotten);
    CHECK(wait_taken(before + 1));
    vg_http_stop(s);
    pthread_join(forgotten.thread, NULL);
    CHECK_INT(forgotten.status, 503);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char err[256];
    vg_http_server *s = vg_http_start("127.0.0.1:0", handler, NULL, err, sizeof err);
    CHECK(s != NULL);
    if (!s) return CHECK_DONE();
    int port = vg_http_port(s);
    CHECK(port > 0);

    http_reply f = http_request(port, NULL, "/echo?name=cam%201", "Bearer k");
    CHECK_INT(f.status, 200);
    CHECK_STR(f.body.data, "GET /echo name=cam 1 auth=Bearer k");
    http_reply_free(&f);
    f = http_request(port, NULL, "/echo", NULL);
    CHECK_INT(f.status, 400);
    CHECK_STR(f.body.data, "GET /echo name=- auth=-");
    http_reply_free(&f);
    f = http_request(port, NULL, "/nowhere", NULL);
    CHECK_INT(f.status, 404);
    http_reply_free(&f);
    vg_http_stop(s);

    CHECK(vg_http_start("nonsense", handler, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "HOST:PORT") != NULL);
    CHECK(vg_http_start("10.0.0.300:80", handler, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "not an IPv4 address") != NULL);

    vg_buf b = {0};
    for (int i = 0; i < 1000; i++) vg_buf_printf(&b, "line %d\n", i);
    CHECK(b.len > 7000 && strstr(b.data, "line 999\n") != NULL);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    vg_buf_printf(&b, "%s", big);
    CHECK(b.len > 9000 && b.data[b.len - 1] == 'x');
    free(b.data);

    test_total_limit();
    test_limits();
    curl_global_cleanup();
    return CHECK_DONE();
}
