/* vg_http.c — the HTTP server: address parsing, libmicrohttpd in thread-per-connection mode, the
 * translation between MHD's callback and vg_http_handler, and a stop that lets answers being made (a long
 * poll told to end) reach their clients before the sockets close. */
#include "vg_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

struct vg_http_server {
    struct MHD_Daemon *daemon;
    vg_http_handler handler;
    void *ctx;
    int port;
    pthread_mutex_t lock;
    pthread_cond_t idle;       /* active dropped to 0 */
    int active;                /* requests between their headers and their answer's end */
};

#define STOP_GRACE_MS 1000     /* how long a stop waits for answers being made */

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

static enum MHD_Result respond(struct MHD_Connection *c, vg_http_response *res) {
    size_t len = res->body ? (res->body_len ? res->body_len : strlen(res->body)) : 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, res->body ? res->body : (void *)"",
                                                             res->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", res->content_type ? res->content_type : "text/plain; charset=utf-8");
    if (res->header_name && res->header_value) MHD_add_response_header(r, res->header_name, res->header_value);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)res->status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **state) {
    (void)version;
    (void)upload_data;
    vg_http_server *server = cls;
    if (!*state) { /* first call for this request: headers only */
        *state = (void *)1;
        pthread_mutex_lock(&server->lock);
        server->active++;
        pthread_mutex_unlock(&server->lock);
        return MHD_YES;
    }
    if (*upload_size) { /* bodies are not used: drop them */
        *upload_size = 0;
        return MHD_YES;
    }
    vg_http_request req = {
        .method = method, .path = url, .connection = c,
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
    };
    vg_http_response res = {.status = 200};
    if (server->handler(server->ctx, &req, &res) < 0) {
        free(res.body);
        res = (vg_http_response){.status = 404, .body = strdup("not found\n")};
    }
    return respond(c, &res);
}

/* MHD: the answer went out (or the connection failed). */
static void on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    vg_http_server *server = cls;
    if (!*state) return;
    *state = NULL;
    pthread_mutex_lock(&server->lock);
    if (--server->active == 0) pthread_cond_broadcast(&server->idle);
    pthread_mutex_unlock(&server->lock);
}

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

vg_http_server *vg_http_start(const char *listen, vg_http_handler handler, void *ctx, char *err, size_t errlen) {
    struct sockaddr_in addr;
    if (parse_listen(listen, &addr, err, errlen) < 0) return NULL;
    vg_http_server *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->handler = handler;
    s->ctx = ctx;
    s->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                 on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_NOTIFY_COMPLETED,
                                 on_completed, s, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on %s (in use, or not an address of this host)", listen);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->idle);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : ntohs(addr.sin_port);
    return s;
}

void vg_http_stop(vg_http_server *s) {
    if (!s) return;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += STOP_GRACE_MS / 1000;
    pthread_mutex_lock(&s->lock);
    while (s->active > 0 && pthread_cond_timedwait(&s->idle, &s->lock, &deadline) == 0) {}
    pthread_mutex_unlock(&s->lock);
    MHD_stop_daemon(s->daemon);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->idle);
    free(s);
}

int vg_http_port(const vg_http_server *s) { return s->port; }
