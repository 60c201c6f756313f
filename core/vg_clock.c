/* vg_clock.c — stamping frames with absolute time. */
#include "vg_clock.h"

#include <libavutil/mathematics.h>

void vg_clock_init_file(vg_clock *clock, int64_t start_ms, AVRational time_base, int64_t zero_pts) {
    clock->source = VG_CLOCK_FILE;
    clock->time_base = time_base;
    clock->start_ms = start_ms;
    clock->zero_pts = zero_pts;
    clock->last_ts = INT64_MIN;
}

static int64_t pts_to_ms(const vg_clock *clock, int64_t pts) {
    return av_rescale_q_rnd(pts - clock->zero_pts, clock->time_base, (AVRational){1, 1000},
                            AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
}

int64_t vg_clock_stamp(vg_clock *clock, int64_t pts) {
    int64_t ts = clock->start_ms + (pts == AV_NOPTS_VALUE ? 0 : pts_to_ms(clock, pts));
    if (pts == AV_NOPTS_VALUE && clock->last_ts != INT64_MIN) ts = clock->last_ts;
    if (ts < clock->last_ts) ts = clock->last_ts;
    clock->last_ts = ts;
    return ts;
}
