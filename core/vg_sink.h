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

/* What a file of versions keeps: every version or each episode's closing one only, and the previews inline
 * (base64, as Central gets them) or as JPEG files in previews_dir, the record naming them instead
 * ("preview_file", "frame_preview_file": DIR/ID-preview-TS.jpg, each written once). */
typedef struct vg_file_shape {
    int final_only;
    const char *previews_dir; /* NULL: inline */
} vg_file_shape;
/* inner gets the versions shaped; NULL with err when previews_dir is not a writable directory. Takes inner. */
vg_sink *vg_sink_shape(vg_sink *inner, const vg_file_shape *shape, char *err, size_t errlen);

/* Fan-out: every version goes to a, then b; put fails if either failed. Takes both; close closes both. */
vg_sink *vg_sink_tee(vg_sink *a, vg_sink *b);

int vg_sink_put(vg_sink *sink, const vg_version *version);
void vg_sink_close(vg_sink *sink);

#endif
