/* vg_report.h — replay's --report DIR: a sink that keeps each episode's last version (and its previews) and,
 * when it closes, writes DIR/index.html, a page that opens from disk with nothing fetched (stylesheet and
 * script inline): a timeline of the clip with each episode as a bar, then each episode with its times, close
 * reasons, number of versions, preview, frame preview with the detection boxes drawn over it, and payload.
 * The previews are written beside it as DIR/<episode_id>-preview.jpg and DIR/<episode_id>-frame-preview.jpg.
 * Everything that came from the rule is HTML-escaped. */
#ifndef VG_REPORT_H
#define VG_REPORT_H
#include <stddef.h>
#include <stdint.h>

#include "vg_sink.h"

typedef struct vg_report_options {
    const char *dir;   /* created (with its parents) when missing */
    const char *clip;  /* the replayed file, named in the page's title */
    const char *media;
    int *failed;       /* set to 1 when the page could not be written (may be NULL) */
} vg_report_options;

/* NULL with a one-line reason naming the directory when it cannot be created or written. */
vg_sink *vg_report_open(const vg_report_options *options, char *err, size_t errlen);

/* The replay is over: the first and last frame the rule saw (unix ms; 0, 0 when none), the span of the
 * timeline and the origin of clip times. The page is written when the sink closes, and only after this call
 * (a replay that never started writes none). */
void vg_report_finish(vg_sink *report, int64_t first_ts, int64_t last_ts);

#endif
