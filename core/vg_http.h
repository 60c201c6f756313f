/* vg_http.h — vigil's small HTTP server (libmicrohttpd): the metrics endpoint and the analytics-node API.
 * An event loop (epoll) served by a small pool of threads, with limits a hostile client cannot get around:
 * connections in all and per client address, a deadline for each request to arrive whole, an idle timeout.
 * Handlers must not block; a request answered later (a long poll) is taken with vg_http_take and holds no
 * thread while it waits. */
#ifndef VG_HTTP_H
#define VG_HTTP_H
#include <stddef.h>

/* A request (its line, headers and any body) must have arrived whole this long after its connection opened,
 * or after the previous answer on a kept-alive connection; else the connection is closed. */
#define VG_HTTP_HEADER_TIMEOUT_S 10
/* A connection on which nothing moves either way for this long is closed (not while an answer is being made
 * later: a taken request waits as long as its taker wants). */
#define VG_HTTP_IDLE_TIMEOUT_S 10

typedef struct vg_http_request {
    const char *method;        /* "GET", ... */
    const char *path;          /* without the query string */
    const char *authorization; /* the Authorization header, or NULL */
    const char *host;          /* the Host header, or NULL */
    void *connection;          /* for vg_http_query */
    void *call;                /* for vg_http_take */
} vg_http_request;

typedef struct vg_http_response {
    int status;                /* 200 unless the handler says otherwise */
    const char *content_type;  /* "text/plain; charset=utf-8" unless set */
    char *body;                /* malloc'd; the server frees it */
    size_t body_len;           /* 0 = strlen(body) */
    const char *header_name;   /* one more header (e.g. "WWW-Authenticate"), or NULL; copied */
    const char *header_value;
} vg_http_response;

/* A handler returns 0 when it answered (res filled), -1 for 404, VG_HTTP_LATER after vg_http_take. Runs on
 * one of the server's threads: it must not wait for anything slow. */
#define VG_HTTP_LATER 1
typedef int (*vg_http_handler)(void *ctx, const vg_http_request *req, vg_http_response *res);

typedef struct vg_http_server vg_http_server;

typedef struct vg_http_options {
    const char *listen;        /* "HOST:PORT" (HOST an IPv4 address, or "*" / "0.0.0.0" for all) */
    const char *name;          /* the log lines' prefix, e.g. "node" */
    vg_http_handler handler;
    void *ctx;
    unsigned max_connections;  /* open at once in all; more wait in the kernel's listen queue */
    unsigned max_per_client;   /* open at once from one IP address; more are closed at once */
    unsigned threads;          /* the pool that reads, parses and answers */
} vg_http_options;

/* NULL with err on failure. */
vg_http_server *vg_http_serve(const vg_http_options *o, char *err, size_t errlen);
/* vg_http_serve with name "http" and small limits (in vg_http.c): for tests and stand-ins. */
vg_http_server *vg_http_start(const char *listen, vg_http_handler handler, void *ctx, char *err, size_t errlen);
/* Waits (up to a second) for answers being made to reach their clients, then closes everything. */
void vg_http_stop(vg_http_server *server);
/* The port it listens on (useful with port 0). */
int vg_http_port(const vg_http_server *server);
/* A query-string argument, or NULL. */
const char *vg_http_query(const vg_http_request *req, const char *name);

/* A request to be answered later, from any thread. Taken in its handler (which then returns VG_HTTP_LATER),
 * it is answered exactly once with vg_http_answer, before vg_http_stop; the handle is gone after that. The
 * connection is set aside meanwhile: no thread, no timeout (a client that leaves is noticed at the answer). */
typedef struct vg_http_later vg_http_later;
vg_http_later *vg_http_take(const vg_http_request *req);
void vg_http_answer(vg_http_later *later, vg_http_response *res);

/* A growing text buffer for response bodies. */
typedef struct vg_buf {
    char *data;
    size_t len, cap;
} vg_buf;
void vg_buf_printf(vg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vg_buf_append(vg_buf *b, const char *data, size_t len);

#endif
