/* vg_transport.h — the Central sink: episode versions go to Flussonic Central over HTTP
 * (PUT {url}/central/api/v3/episodes/{episode_id}, Bearer key), from one sender thread per sink, through a
 * durable spool (vg_spool) and the delivery policy of vg_outbox (coalescing, rate limit, retries). put()
 * returns once the version is on disk and never waits for the network. */
#ifndef VG_TRANSPORT_H
#define VG_TRANSPORT_H
#include <stddef.h>

#include "vg_outbox.h"
#include "vg_sink.h"

/* How long `vigil run` gives Central to take what is queued when it stops (central.flush_timeout_ms). */
#define VG_CENTRAL_FLUSH_TIMEOUT_MS 5000

typedef struct vg_central_options {
    const char *url;            /* base URL, e.g. "http://127.0.0.1:9019" */
    const char *api_key;        /* the secret; never logged */
    const char *api_key_file;   /* when api_key is NULL: the key file it is read from (vg_key_file_read) */
    const char *named;          /* how err names these options: "central" gives "central: why" and
                                   "central.api_key_file: path: why"; NULL gives the reason alone */
    const char *spool_dir;      /* required; created if missing */
    long long spool_max_bytes;  /* 0 = 1 GiB */
    int min_update_interval_ms; /* 0 = no rate limit (give VG_CENTRAL_MIN_UPDATE_INTERVAL_MS for the default) */
    int connect_timeout_ms, request_timeout_ms; /* 0 = 5000 / 15000 */
    int drain_timeout_ms;       /* how long close() tries to deliver what is due; 0 = not at all (vigil run's
                                   default: VG_CENTRAL_FLUSH_TIMEOUT_MS) */
} vg_central_options;

/* The one way vigil opens Central (vigil run's config, vigil replay --central, vigil flush): reads the key
 * file when the key is not given inline (wiping the key from memory after), opens the spool, queues what it
 * holds, and starts the sender thread. NULL with a one-line reason (never quoting the key). */
vg_sink *vg_central_open(const vg_central_options *o, char *err, size_t errlen);

typedef struct vg_central_stats {
    long queued;      /* versions waiting or in flight */
    long sent;        /* accepted by Central (2xx) */
    long failed;      /* attempts that failed and will be retried */
    long retries;     /* attempts of versions that had failed before */
    long rejected;    /* versions Central refused for good (400, 409, 413, 415, 422), dropped */
    long spool_files;
    long long spool_bytes;
} vg_central_stats;

/* central must come from vg_central_open; anything else reads as zeros. Thread-safe. */
void vg_central_get_stats(vg_sink *central, vg_central_stats *out);

/* Waits up to timeout_ms for every queued version to be delivered, the rate limit no longer holding any
 * back; stops early when nothing can be attempted before the deadline (Central down with a long backoff,
 * or refusing the key). Returns how many versions are still undelivered. */
long vg_central_drain(vg_sink *central, int timeout_ms);

#endif
