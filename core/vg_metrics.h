/* vg_metrics.h — what `vigil run` tells a monitoring system: Prometheus text on GET /metrics (per camera,
 * Central, the process) and GET /healthz, served on node.metrics through vg_http. It knows nothing of how
 * cameras are kept: at each request it asks its owner for a snapshot (the collect callback, which reads the
 * counters thread-safely) and formats that. Every metric is listed in docs/operations.md. */
#ifndef VG_METRICS_H
#define VG_METRICS_H
#include <stddef.h>

#include "vg_camera.h"
#include "vg_http.h"
#include "vg_transport.h"

/* The metrics port's HTTP limits, its own (docs/operations.md, "HTTP limits"): a flood of the node API
 * cannot take /healthz down. Connections open at once in all and from one client address; its threads. */
#define VG_METRICS_MAX_CONNECTIONS 32
#define VG_METRICS_MAX_PER_CLIENT 8
#define VG_METRICS_THREADS 2

typedef struct vg_metrics_camera {
    char media[128];
    vg_camera_stats stats;
} vg_metrics_camera;

typedef struct vg_metrics_snapshot {
    vg_metrics_camera *cameras; /* malloc'd by the collector, freed by vg_metrics */
    int ncameras;
    int has_central;            /* central holds Central's counters */
    vg_central_stats central;
    double start_time_s;        /* when the process started, unix seconds */
} vg_metrics_snapshot;

/* Fills out (zeroed before the call) from the caller's state; called on an HTTP thread. */
typedef void (*vg_metrics_collect)(void *ctx, vg_metrics_snapshot *out);

typedef struct vg_metrics vg_metrics;

/* Serves /metrics and /healthz on listen ("HOST:PORT", port 0 = any free one). NULL with err. */
vg_metrics *vg_metrics_start(const char *listen, vg_metrics_collect collect, void *ctx, char *err, size_t errlen);
/* Waits for requests in progress to finish; after it returns collect is not called again. */
void vg_metrics_stop(vg_metrics *metrics);
int vg_metrics_port(const vg_metrics *metrics);

/* The Prometheus text exposition (format 0.0.4) of a snapshot. */
void vg_metrics_format(const vg_metrics_snapshot *s, vg_buf *out);
/* The /healthz body: "ok", then how many cameras are connected and which are not. */
void vg_metrics_health(const vg_metrics_snapshot *s, vg_buf *out);

#endif
