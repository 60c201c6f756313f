/* vg_node.h — the analytics-node API that Flussonic Central pulls from (on vg_http): episodes from the store
 * with long polls (set aside while they wait: no thread each), the streams this node analyses with their
 * state, and a liveness probe; every path behind a Bearer key when one is configured. GET / is the live page
 * that reads this API from a browser (vg_page.h): it holds no data and is not behind the key. */
#ifndef VG_NODE_H
#define VG_NODE_H
#include <stddef.h>
#include <stdint.h>

#include "vg_store.h"

#define VG_NODE_API "/vision/api/v3"
#define VG_NODE_MAX_POLL_S 60     /* poll_timeout above this is refused (400) */
#define VG_NODE_MAX_LIMIT 10000
/* The node API's HTTP limits (docs/operations.md, "HTTP limits"): connections open at once in all and from
 * one client address, and the threads serving them (a waiting long poll holds none). */
#define VG_NODE_MAX_CONNECTIONS 256
#define VG_NODE_MAX_PER_CLIENT 32
#define VG_NODE_THREADS 4

/* One stream as GET /streams shows it. Strings are read during the emit call only. */
typedef struct vg_node_stream {
    const char *name;
    const char *url;          /* as configured: the node masks its password */
    const char *source;       /* where it came from: "config" or "central" */
    const char *script;       /* the rule's path */
    const char *state;        /* "connecting" (no session yet), "up", "down" (lost or failing) */
    const char *clock;        /* "rtcp", "local" */
    long frames;              /* analysed */
    long connects, disconnects;
    int episodes_open;
    int64_t last_frame_at;    /* unix ms of the last frame analysed (stream time), 0 before any */
} vg_node_stream;

typedef void (*vg_node_emit)(void *emit_ctx, const vg_node_stream *stream);
/* Supplied by the runner: calls emit once per stream, holding whatever keeps its camera list steady. Runs
 * on an HTTP thread. */
typedef void (*vg_node_list_streams)(void *ctx, vg_node_emit emit, void *emit_ctx);

typedef struct vg_node_options {
    const char *listen;       /* "HOST:PORT" as vg_http_start takes it */
    const char *api_key;      /* NULL or "" = no key checked; copied, never logged */
    vg_store *store;          /* outlives the node */
    vg_node_list_streams list_streams;
    void *streams_ctx;
} vg_node_options;

typedef struct vg_node vg_node;

/* Starts serving; NULL with a one-line reason. */
vg_node *vg_node_start(const vg_node_options *o, char *err, size_t errlen);
int vg_node_port(const vg_node *node);

/* Answers every waiting long poll at once (and later ones do not wait: vg_store_end_queries), stops the
 * server and waits for its threads. */
void vg_node_stop(vg_node *node);

#endif
