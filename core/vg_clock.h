/* vg_clock.h — absolute frame time in unix ms. A file is stamped start + pts; a live stream from the
 * sender's clock (RTCP sender reports), else the local clock. Frame time never goes backwards. */
#ifndef VG_CLOCK_H
#define VG_CLOCK_H
#include <stdint.h>

#include <libavutil/rational.h>

#include "vg_frame.h"

typedef struct vg_clock {
    vg_clock_source source;
    AVRational time_base;
    int64_t start_ms;    /* file: the time of zero_pts */
    int64_t zero_pts;
    int64_t last_ts;     /* the last stamp handed out (INT64_MIN before the first) */
} vg_clock;

void vg_clock_init_file(vg_clock *clock, int64_t start_ms, AVRational time_base, int64_t zero_pts);
/* The frame time of pts; never less than the previous stamp. */
int64_t vg_clock_stamp(vg_clock *clock, int64_t pts);

#endif
