/* vg_clock.c — stamping frames with absolute time: start + pts for files; for live streams the sender's
 * wall clock learnt from PRFT side data (the local clock when the sender gives none), never backwards. */
#include "vg_clock.h"

#include <stdlib.h>

#include <time.h>

#include <libavcodec/defs.h>
#include <libavutil/mathematics.h>

#include "vg_log.h"

const char *vg_clock_source_name(vg_clock_source source) {
    switch (source) {
    case VG_CLOCK_FILE: return "file";
    case VG_CLOCK_RTCP: return "rtcp";
    case VG_CLOCK_LOCAL: return "local";
    }
    return "unknown";
}

int64_t vg_clock_realtime_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

void vg_clock_init_file(vg_clock *clock, int64_t start_ms, AVRational time_base, int64_t zero_pts) {
    *clock = (vg_clock){.source = VG_CLOCK_FILE, .time_base = time_base, .start_ms = start_ms,
                        .zero_pts = zero_pts, .last_ts = INT64_MIN, .offset_us = INT64_MIN};
}

void vg_clock_init_live(vg_clock *clock, const char *who) {
    *clock = (vg_clock){.source = VG_CLOCK_LOCAL, .time_base = {1, 1000}, .last_ts = INT64_MIN, .who = who};
    vg_clock_new_session(clock, clock->time_base, 0);
}

void vg_clock_new_session(vg_clock *clock, AVRational time_base, int prft_lags) {
    clock->time_base = time_base;
    clock->prft_lags = prft_lags;
    clock->offset_us = INT64_MIN;
    clock->pending_prft_us = INT64_MIN;
    clock->local_offset_us = INT64_MIN;
    clock->pending_read_us = 0;
    clock->session_stamped = 0;
    clock->skew_since_us = 0;
    clock->skew_checked = 0;
}

int64_t vg_packet_wallclock_us(const AVPacket *pkt) {
    size_t size = 0;
    const uint8_t *data = av_packet_get_side_data(pkt, AV_PKT_DATA_PRFT, &size);
    if (!data || size < sizeof(AVProducerReferenceTime)) return INT64_MIN;
    const AVProducerReferenceTime *prft = (const AVProducerReferenceTime *)data;
    return prft->wallclock > 0 ? prft->wallclock : INT64_MIN;
}

static int64_t pts_to_us(const vg_clock *clock, int64_t pts) {
    return av_rescale_q_rnd(pts, clock->time_base, (AVRational){1, 1000000}, AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
}

/* The sender's clock is the truth; a badly set camera clock is worth one line per camera. Packets read
 * late (FFmpeg buffers what it reads while probing the stream) look older than they are, so the skew is
 * the largest sender-minus-local difference seen over VG_CLOCK_SKEW_WINDOW_MS. */
static void check_skew(vg_clock *clock, int64_t sender_us, int64_t now_us) {
    if (clock->warned_skew || clock->skew_checked) return;
    if (!clock->skew_since_us || sender_us - now_us > clock->skew_max_us) clock->skew_max_us = sender_us - now_us;
    if (!clock->skew_since_us) clock->skew_since_us = now_us;
    if (now_us - clock->skew_since_us < VG_CLOCK_SKEW_WINDOW_MS * 1000LL) return;
    clock->skew_checked = 1;
    if (llabs(clock->skew_max_us) <= VG_CLOCK_SKEW_MS * 1000LL) return;
    clock->warned_skew = 1;
    vg_warn(clock->who, "the camera's clock is %+.1f s off this host's clock; frames keep the camera's time",
            (double)clock->skew_max_us / 1e6);
}

/* Debian 12's FFmpeg (5.1) computes a packet's PRFT as the last sender report's wall time plus (the packet's RTP
 * timestamp - the report's) taken as 64-bit differences of 32-bit values: from a wrap of the RTP timestamp to the
 * next report it is 2^32 ticks off (13.3 h at 90 kHz; later FFmpeg casts the difference to int32_t). */
static int rtp_wrap_step(const vg_clock *clock, int64_t step_us) {
    int64_t wrap_us = av_rescale_q(1LL << 32, clock->time_base, (AVRational){1, 1000000});
    return llabs(llabs(step_us) - wrap_us) <= VG_CLOCK_JUMP_MS * 1000LL;
}

/* offset_us is what the packet with pts_us, read at now_us, says. A step of one RTP wrap is no step of the sender's
 * clock: of the two offsets, the one that puts the packet nearer this host's clock stays (the earlier one, unless
 * the session's first report came in such a window). */
static void learn_sender_offset(vg_clock *clock, int64_t offset_us, int64_t pts_us, int64_t now_us) {
    int known = clock->offset_us != INT64_MIN && clock->source == VG_CLOCK_RTCP;
    if (known && rtp_wrap_step(clock, offset_us - clock->offset_us)) {
        if (llabs(offset_us + pts_us - now_us) < llabs(clock->offset_us + pts_us - now_us))
            clock->offset_us = offset_us;
        return;
    }
    if (known && llabs(offset_us - clock->offset_us) > VG_CLOCK_JUMP_MS * 1000LL)
        vg_warn(clock->who, "sender clock stepped by %+.3f s", (double)(offset_us - clock->offset_us) / 1e6);
    else if (clock->offset_us != INT64_MIN && clock->source == VG_CLOCK_LOCAL)
        vg_info(clock->who, "RTCP sender reports arrived: frames are stamped with the sender's clock again");
    clock->offset_us = offset_us;
    clock->source = VG_CLOCK_RTCP;
}

/* Local fallback: follow the local clock when the stream's pts drift more than a jump away from it. */
static void follow_local(vg_clock *clock, int64_t pts_us, int64_t read_us) {
    int64_t drift_us = read_us - (clock->offset_us + pts_us);
    if (llabs(drift_us) <= VG_CLOCK_JUMP_MS * 1000LL) return;
    vg_warn(clock->who, "stream time drifted %+.3f s from the local clock; re-anchored", (double)drift_us / 1e6);
    clock->offset_us = read_us - pts_us;
    clock->local_offset_us = clock->offset_us;
}

int vg_clock_observe(vg_clock *clock, const AVPacket *pkt, int64_t now_us) {
    int64_t prft_us = vg_packet_wallclock_us(pkt);
    if (pkt->pts != AV_NOPTS_VALUE) {
        int64_t pts_us = pts_to_us(clock, pkt->pts);
        int64_t wall_us = clock->prft_lags ? clock->pending_prft_us : prft_us;
        int64_t read_us = clock->prft_lags ? clock->pending_read_us : now_us; /* the same lag */
        if (read_us && (clock->local_offset_us == INT64_MIN || read_us - pts_us < clock->local_offset_us))
            clock->local_offset_us = read_us - pts_us;
        if (wall_us != INT64_MIN) learn_sender_offset(clock, wall_us - pts_us, pts_us, read_us ? read_us : now_us);
        else if (clock->source == VG_CLOCK_LOCAL && clock->offset_us != INT64_MIN)
            follow_local(clock, pts_us, read_us ? read_us : now_us);
    }
    if (prft_us != INT64_MIN) check_skew(clock, prft_us, now_us);
    clock->pending_prft_us = prft_us;
    clock->pending_read_us = now_us;
    return vg_clock_known(clock);
}

int vg_clock_known(const vg_clock *clock) { return clock->offset_us != INT64_MIN; }

void vg_clock_use_local(vg_clock *clock, int64_t wait_ms) {
    if (!clock->warned_local)
        vg_warn(clock->who, "no RTCP sender report within rtcp_wait_ms (%.1f s): frames are stamped with the "
                "local clock (frame.clock = \"local\")", (double)wait_ms / 1000.0);
    else
        vg_debug(clock->who, "no RTCP sender report within rtcp_wait_ms (%.1f s): local clock",
                 (double)wait_ms / 1000.0);
    clock->warned_local = 1;
    clock->source = VG_CLOCK_LOCAL;
    clock->offset_us = clock->local_offset_us != INT64_MIN ? clock->local_offset_us : vg_clock_realtime_us();
}

int vg_clock_can_stamp(const vg_clock *clock, int64_t pts) {
    return pts != AV_NOPTS_VALUE && (clock->source == VG_CLOCK_FILE || clock->offset_us != INT64_MIN);
}

static int64_t file_ms(const vg_clock *clock, int64_t pts) {
    return clock->start_ms + av_rescale_q_rnd(pts - clock->zero_pts, clock->time_base, (AVRational){1, 1000},
                                              AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
}

static int64_t live_ms(const vg_clock *clock, int64_t pts) {
    int64_t us = clock->offset_us + pts_to_us(clock, pts);
    return us >= 0 ? (us + 500) / 1000 : -((-us + 500) / 1000);
}

static void log_jump(vg_clock *clock, int64_t ts) {
    if (!clock->who || clock->last_ts == INT64_MIN || !clock->session_stamped) return;
    int64_t step = ts - clock->last_ts;
    if (step > VG_CLOCK_JUMP_MS || step < -VG_CLOCK_JUMP_MS)
        vg_warn(clock->who, "frame time jumped %+.3f s%s", (double)step / 1000.0,
                step < 0 ? " (held at the last frame's time: frame time never goes backwards)" : "");
}

int64_t vg_clock_wall_ms(const vg_clock *clock, int64_t pts) {
    return clock->source == VG_CLOCK_FILE ? file_ms(clock, pts) : live_ms(clock, pts);
}

int64_t vg_clock_stamp(vg_clock *clock, int64_t pts) {
    int64_t ts = vg_clock_wall_ms(clock, pts);
    log_jump(clock, ts);
    if (clock->last_ts != INT64_MIN && ts < clock->last_ts) ts = clock->last_ts;
    clock->last_ts = ts;
    clock->session_stamped = 1;
    return ts;
}
