/* vg_http.h — vigil's small HTTP server (libmicrohttpd): the metrics endpoint and the analytics-node API.
 * One thread per connection, so a handler may block (long polls) without holding up other requests. */
#ifndef VG_HTTP_H
#define VG_HTTP_H
#include <stddef.h>

typedef struct vg_http_request {
    const char *method;        /* "GET", ... */
    const char *path;          /* without the query string */
    const char *authorization; /* the Authorization header, or NULL */
    void *connection;          /* for vg_http_query */
} vg_http_request;

typedef struct vg_http_response {
    int status;                /* 200 unless the handler says otherwise */
    const char *content_type;  /* "text/plain; charset=utf-8" unless set */
    char *body;                /* malloc'd; the server frees it */
    size_t body_len;           /* 0 = strlen(body) */
    const char *header_name;   /* one more header (e.g. "WWW-Authenticate"), or NULL; copied */
    const char *header_value;
} vg_http_response;

/* Returns 0 when it handled the request (res filled), -1 for 404. */
typedef int (*vg_http_handler)(void *ctx, const vg_http_request *req, vg_http_response *res);

typedef struct vg_http_server vg_http_server;

/* listen: "HOST:PORT" (HOST an IPv4 address, or "*" / "0.0.0.0" for all); NULL with err on failure. */
vg_http_server *vg_http_start(const char *listen, vg_http_handler handler, void *ctx, char *err, size_t errlen);
void vg_http_stop(vg_http_server *server);
/* The port it listens on (useful with port 0). */
int vg_http_port(const vg_http_server *server);
/* A query-string argument, or NULL. */
const char *vg_http_query(const vg_http_request *req, const char *name);

/* A growing text buffer for response bodies. */
typedef struct vg_buf {
    char *data;
    size_t len, cap;
} vg_buf;
void vg_buf_printf(vg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vg_buf_append(vg_buf *b, const char *data, size_t len);

#endif
