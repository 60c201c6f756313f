/* vg_sink.h — where episode versions go: a JSON-lines file, the log, Central over HTTP, or several at once. */
#ifndef VG_SINK_H
#define VG_SINK_H
#include <stddef.h>

#include "vg_episode.h"

typedef struct vg_sink vg_sink;
struct vg_sink {
    const char *name;
    /* Takes a copy of what it needs; returns 0, or -1 when the version could not be queued or written. */
    int (*put)(vg_sink *sink, const vg_version *version);
    void (*close)(vg_sink *sink);
};

/* path "-" is stdout; append 0 truncates. Lines are flushed as written so a reader sees each version at once. */
vg_sink *vg_sink_file_open(const char *path, int append, char *err, size_t errlen);

/* The log: one info line per episode opened and per episode closed (id, media, type, times, close reasons),
 * updates at debug. Never fails. */
vg_sink *vg_sink_log_open(void);

/* Fan-out: every version goes to a, then b; put fails if either failed. Takes both; close closes both. */
vg_sink *vg_sink_tee(vg_sink *a, vg_sink *b);

int vg_sink_put(vg_sink *sink, const vg_version *version);
void vg_sink_close(vg_sink *sink);

#endif
