/* vg_http.c — the HTTP server: address parsing, libmicrohttpd as an event loop (epoll where the library has
 * it, else poll) run by a pool of threads with its connection limits and idle timeout, the header deadline
 * (a thread of ours that closes the connections whose request did not arrive whole in time, with a log line
 * a minute at most), requests answered later (suspended connections), the translation between MHD's
 * callbacks and vg_http_handler, and a stop that lets answers being made reach their clients first. */
#include "vg_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "vg_log.h"
#include "vg_snowflake.h"
#include "vg_time.h"

#define STOP_GRACE_MS 1000     /* how long a stop waits for answers being made */
#define SLOW_WARN_EVERY_MS 60000

/* vg_http_start's limits. */
#define SMALL_CONNECTIONS 64
#define SMALL_PER_CLIENT 16
#define SMALL_THREADS 2

/* One TCP connection (MHD's socket context), from MHD's "started" to its "closed" notification. */
typedef struct http_conn {
    int fd;
    int64_t since_ms;          /* when it began waiting for a request */
    int waiting;               /* in the waiting list: no request of it is being answered */
    int request_line;          /* a request line came since then (a slow client, not just an idle one) */
    struct http_conn *prev, *next;
} http_conn;

/* One request (MHD's con_cls), from its headers to MHD's "completed" notification. */
struct vg_http_later {
    vg_http_server *server;
    struct MHD_Connection *c;
    http_conn *conn;
    int handled;               /* the handler was called: counted in active */
    int suspended;             /* set aside by MHD, in the server's suspended list: vg_http_answer resumes it */
    int answered;              /* vg_http_answer was called */
    struct MHD_Response *answer; /* given, not yet queued (NULL if it could not be made: the connection closes) */
    unsigned status;
    vg_http_later *prev, *next; /* in the server's list of suspended requests */
};

struct vg_http_server {
    struct MHD_Daemon *daemon;
    char name[32];
    vg_http_handler handler;
    void *ctx;
    int port;
    pthread_mutex_t lock;      /* everything below */
    pthread_cond_t idle;       /* active dropped to 0 */
    int active;                /* requests between their handler and their answer's end */
    http_conn *wait_head, *wait_tail; /* connections waiting for a request, oldest first */
    vg_http_later *suspended;
    pthread_t reaper;
    pthread_cond_t reaper_wake; /* CLOCK_MONOTONIC */
    int stopping;
    long slow_closed;          /* connections closed at the header deadline after a request line */
    vg_log_limit slow_said;
};

/* ---------- buffers ---------- */

void vg_buf_append(vg_buf *b, const char *data, size_t len) {
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + len + 1) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) return;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = 0;
}

void vg_buf_printf(vg_buf *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        vg_buf_append(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) return;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    vg_buf_append(b, big, (size_t)n);
    free(big);
}

const char *vg_http_query(const vg_http_request *req, const char *name) {
    return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, name);
}

/* ---------- the waiting list and the header deadline ---------- */

static void wait_list_remove(vg_http_server *s, http_conn *conn) {
    if (!conn->waiting) return;
    if (conn->prev) conn->prev->next = conn->next;
    else s->wait_head = conn->next;
    if (conn->next) conn->next->prev = conn->prev;
    else s->wait_tail = conn->prev;
    conn->prev = conn->next = NULL;
    conn->waiting = 0;
}

/* From now on the connection has VG_HTTP_HEADER_TIMEOUT_S to bring a whole request. */
static void wait_list_append(vg_http_server *s, http_conn *conn) {
    wait_list_remove(s, conn);
    conn->since_ms = vg_monotonic_ms();
    conn->request_line = 0;
    conn->waiting = 1;
    conn->prev = s->wait_tail;
    if (s->wait_tail) s->wait_tail->next = conn;
    else s->wait_head = conn;
    s->wait_tail = conn;
    if (s->wait_head == conn) pthread_cond_signal(&s->reaper_wake); /* the reaper slept with nothing to watch */
}

static void note_slow_closed(vg_http_server *s, long n, int64_t now) {
    if (!n) return;
    s->slow_closed += n;
    long held;
    if (!vg_log_limit_pass(&s->slow_said, now, SLOW_WARN_EVERY_MS, &held)) return;
    vg_warn(s->name, "closed %ld connection%s whose request did not arrive whole within the header timeout "
            "(%d s): slow clients (%ld so far; said once a minute at most)", n, n == 1 ? "" : "s",
            VG_HTTP_HEADER_TIMEOUT_S, s->slow_closed);
}

/* Shuts down (MHD then closes) every connection past its header deadline; the fd is still the connection's:
 * MHD closes it only after its "closed" notification, which takes the lock first. */
static void close_late(vg_http_server *s, int64_t now) {
    long slow = 0;
    while (s->wait_head && now - s->wait_head->since_ms >= VG_HTTP_HEADER_TIMEOUT_S * 1000L) {
        http_conn *late = s->wait_head;
        slow += late->request_line;
        shutdown(late->fd, SHUT_RDWR);
        wait_list_remove(s, late);
    }
    note_slow_closed(s, slow, now);
}

static void *reaper_main(void *arg) {
    vg_http_server *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        close_late(s, vg_monotonic_ms());
        if (!s->wait_head) {
            pthread_cond_wait(&s->reaper_wake, &s->lock);
            continue;
        }
        struct timespec ts = vg_deadline_at_monotonic_ms(s->wait_head->since_ms + VG_HTTP_HEADER_TIMEOUT_S * 1000L);
        pthread_cond_timedwait(&s->reaper_wake, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* MHD: a connection was accepted, or closed (before its socket is). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    vg_http_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        http_conn *conn = calloc(1, sizeof *conn);
        if (!conn) return;
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn->fd = info ? info->connect_fd : -1;
        *socket_context = conn;
        pthread_mutex_lock(&s->lock);
        if (conn->fd >= 0) wait_list_append(s, conn);
        pthread_mutex_unlock(&s->lock);
    } else if (*socket_context) {
        http_conn *conn = *socket_context;
        pthread_mutex_lock(&s->lock);
        wait_list_remove(s, conn);
        pthread_mutex_unlock(&s->lock);
        free(conn);
        *socket_context = NULL;
    }
}

static http_conn *conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* MHD: a request line came. Only marks the connection (a slow client rather than an idle one). */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c) {
    (void)uri;
    vg_http_server *s = cls;
    http_conn *conn = conn_of(c);
    pthread_mutex_lock(&s->lock);
    if (conn) conn->request_line = 1;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---------- answers ---------- */

static struct MHD_Response *make_response(vg_http_response *res) {
    size_t len = res->body ? (res->body_len ? res->body_len : strlen(res->body)) : 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, res->body ? res->body : (void *)"",
                                                             res->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(res->body);
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type", res->content_type ? res->content_type : "text/plain; charset=utf-8");
    if (res->header_name && res->header_value) MHD_add_response_header(r, res->header_name, res->header_value);
    return r;
}

/* Queues the given answer (NULL: the connection is closed instead). */
static enum MHD_Result send_answer(struct MHD_Connection *c, struct MHD_Response *r, unsigned status) {
    if (!r) return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

vg_http_later *vg_http_take(const vg_http_request *req) { return req->call; }

void vg_http_answer(vg_http_later *call, vg_http_response *res) {
    struct MHD_Response *r = make_response(res);
    vg_http_server *s = call->server;
    pthread_mutex_lock(&s->lock);
    call->answered = 1;
    call->answer = r;
    call->status = (unsigned)res->status;
    int resume = call->suspended;
    if (resume) {
        call->suspended = 0;
        if (call->prev) call->prev->next = call->next;
        else s->suspended = call->next;
        if (call->next) call->next->prev = call->prev;
        call->answer = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    /* otherwise its handler is still between returning VG_HTTP_LATER and the suspension: it sends it */
    if (resume) {
        send_answer(call->c, r, call->status); /* when this fails, the handler is not called again: closed */
        MHD_resume_connection(call->c);
    }
}

static struct MHD_Response *take_answer(vg_http_later *call) {
    struct MHD_Response *r = call->answer;
    call->answer = NULL;
    return r;
}

/* The handler returned VG_HTTP_LATER: set the connection aside unless the answer came meanwhile. */
static enum MHD_Result suspend(vg_http_later *call) {
    vg_http_server *s = call->server;
    pthread_mutex_lock(&s->lock);
    int early = call->answered;
    struct MHD_Response *r = take_answer(call);
    pthread_mutex_unlock(&s->lock);
    if (early) return send_answer(call->c, r, call->status);
    MHD_suspend_connection(call->c);
    pthread_mutex_lock(&s->lock);
    int meanwhile = call->answered;
    r = take_answer(call);
    call->suspended = !meanwhile;
    if (!meanwhile) {
        call->prev = NULL;
        call->next = s->suspended;
        if (s->suspended) s->suspended->prev = call;
        s->suspended = call;
    }
    pthread_mutex_unlock(&s->lock);
    if (meanwhile) {
        send_answer(call->c, r, call->status);
        MHD_resume_connection(call->c);
    }
    return MHD_YES;
}

/* ---------- requests ---------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **state) {
    (void)version;
    (void)upload_data;
    vg_http_server *s = cls;
    if (!*state) { /* first call for this request: headers only */
        vg_http_later *call = calloc(1, sizeof *call);
        if (!call) return MHD_NO;
        *call = (vg_http_later){.server = s, .c = c, .conn = conn_of(c)};
        *state = call;
        return MHD_YES;
    }
    if (*upload_size) { /* bodies are not used: drop them (the header deadline runs until the last byte) */
        *upload_size = 0;
        return MHD_YES;
    }
    vg_http_later *call = *state;
    if (call->handled) return MHD_NO; /* resumed without an answer (none could be made): close */
    pthread_mutex_lock(&s->lock);
    if (call->conn) wait_list_remove(s, call->conn);
    call->handled = 1;
    s->active++;
    pthread_mutex_unlock(&s->lock);
    vg_http_request req = {
        .method = method, .path = url, .connection = c, .call = call,
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
        .host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
    };
    vg_http_response res = {.status = 200};
    int rc = s->handler(s->ctx, &req, &res);
    if (rc == VG_HTTP_LATER) return suspend(call);
    if (rc < 0) {
        free(res.body);
        res = (vg_http_response){.status = 404, .body = strdup("not found\n")};
    }
    return send_answer(c, make_response(&res), (unsigned)res.status);
}

/* MHD: the answer went out (or the connection failed). A kept-alive connection waits for its next request. */
static void on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode toe) {
    (void)toe;
    vg_http_server *s = cls;
    vg_http_later *call = *state;
    http_conn *conn = call ? call->conn : conn_of(c);
    pthread_mutex_lock(&s->lock);
    if (conn) wait_list_append(s, conn);
    if (call && call->handled && --s->active == 0) pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
    if (call && call->answer) MHD_destroy_response(call->answer);
    free(call);
    *state = NULL;
}

/* ---------- start and stop ---------- */

static int parse_listen(const char *listen, struct sockaddr_in *addr, char *err, size_t errlen) {
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    char host[64];
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon - listen >= (long)sizeof host || *end || port < 0 || port > 65535) {
        snprintf(err, errlen, "listen address '%s': HOST:PORT expected", listen ? listen : "");
        return -1;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (strcmp(host, "*") == 0 || strcmp(host, "") == 0) addr->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0) addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &addr->sin_addr) != 1) {
        snprintf(err, errlen, "listen address '%s': '%s' is not an IPv4 address", listen, host);
        return -1;
    }
    return 0;
}

static void server_free(vg_http_server *s) {
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->idle);
    pthread_cond_destroy(&s->reaper_wake);
    free(s);
}

static struct MHD_Daemon *start_daemon(vg_http_server *s, const vg_http_options *o, struct sockaddr_in *addr) {
    unsigned loop = MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
    return MHD_start_daemon(loop | MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
                            on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)addr,
                            MHD_OPTION_THREAD_POOL_SIZE, o->threads ? o->threads : 1u,
                            MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->max_per_client,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)VG_HTTP_IDLE_TIMEOUT_S,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_URI_LOG_CALLBACK, on_request_line, s,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
}

vg_http_server *vg_http_serve(const vg_http_options *o, char *err, size_t errlen) {
    struct sockaddr_in addr;
    if (parse_listen(o->listen, &addr, err, errlen) < 0) return NULL;
    vg_http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "%s: out of memory", o->listen);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    vg_cond_init_monotonic(&s->reaper_wake);
    snprintf(s->name, sizeof s->name, "%s", o->name ? o->name : "http");
    s->handler = o->handler;
    s->ctx = o->ctx;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        snprintf(err, errlen, "%s: cannot start a thread", o->listen);
        server_free(s);
        return NULL;
    }
    s->daemon = start_daemon(s, o, &addr);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on %s (in use, or not an address of this host)", o->listen);
        vg_http_stop(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : ntohs(addr.sin_port);
    return s;
}

vg_http_server *vg_http_start(const char *listen, vg_http_handler handler, void *ctx, char *err, size_t errlen) {
    vg_http_options o = {.listen = listen, .handler = handler, .ctx = ctx, .max_connections = SMALL_CONNECTIONS,
                         .max_per_client = SMALL_PER_CLIENT, .threads = SMALL_THREADS};
    return vg_http_serve(&o, err, errlen);
}

/* A request still set aside at the stop is its taker's bug; it gets 503 so MHD can close it. */
static void answer_leftovers(vg_http_server *s) {
    for (;;) {
        pthread_mutex_lock(&s->lock);
        vg_http_later *call = s->suspended;
        pthread_mutex_unlock(&s->lock);
        if (!call) return;
        vg_error(s->name, "a request taken for a later answer was not answered before the stop: 503");
        vg_http_answer(call, &(vg_http_response){.status = 503, .body = strdup("stopping\n")});
    }
}

void vg_http_stop(vg_http_server *s) {
    if (!s) return;
    if (s->daemon) {
        answer_leftovers(s);
        struct timespec deadline = vg_deadline_in_ms(CLOCK_REALTIME, STOP_GRACE_MS);
        pthread_mutex_lock(&s->lock);
        while (s->active > 0 && pthread_cond_timedwait(&s->idle, &s->lock, &deadline) == 0) {}
        pthread_mutex_unlock(&s->lock);
        MHD_stop_daemon(s->daemon);
    }
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->reaper_wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->reaper, NULL);
    server_free(s);
}

int vg_http_port(const vg_http_server *s) { return s->port; }
