/* vg_clock.h — absolute frame time in unix ms. A file is stamped start + pts; a live stream from the
 * sender's clock (RTCP sender reports), else the local clock. Frame time never goes backwards.
 *
 * Live streams: libavformat attaches the wall clock of the latest sender report to packets as
 * AV_PKT_DATA_PRFT. When the stream goes through a parser (H.264, HEVC, ...) a packet carries the PRFT of
 * the packet that completed it, i.e. the wall time of the NEXT packet's pts; so the wall time of pts(k) is
 * the PRFT of packet k-1. The clock keeps offset = wall(pts) - pts and stamps offset + pts: exact to the
 * frame, and for packets held before the first sender report too. */
#ifndef VG_CLOCK_H
#define VG_CLOCK_H
#include <stdint.h>

#include <libavcodec/packet.h>
#include <libavutil/avutil.h> /* AV_NOPTS_VALUE: a packet without pts */
#include <libavutil/rational.h>

#define VG_CLOCK_JUMP_MS 1000   /* consecutive frames further apart than this are logged */
#define VG_CLOCK_SKEW_MS 2000   /* sender vs local clock difference worth a warning */
#define VG_CLOCK_SKEW_WINDOW_MS 2000 /* ... measured over this long */

/* Where a frame's time comes from (vg_frame.clock, the camera's stats, the metrics' vigil_camera_clock). */
typedef enum { VG_CLOCK_FILE, VG_CLOCK_RTCP, VG_CLOCK_LOCAL } vg_clock_source;

const char *vg_clock_source_name(vg_clock_source source); /* "file", "rtcp", "local" */

typedef struct vg_clock {
    vg_clock_source source;
    AVRational time_base;
    int64_t start_ms;    /* file: the time of zero_pts */
    int64_t zero_pts;
    int64_t last_ts;     /* the last stamp handed out (INT64_MIN before the first) */
    /* live */
    const char *who;          /* camera name in log lines */
    int prft_lags;            /* a packet's PRFT is the wall time of the next packet's pts */
    int64_t offset_us;        /* wall time of pts 0 in unix µs; INT64_MIN while unknown */
    int64_t pending_prft_us;  /* PRFT of the previous packet (INT64_MIN: none) */
    int64_t local_offset_us;  /* local fallback: least (read time - pts) seen; packets read late (FFmpeg
                                 buffers what it probes) only make it larger */
    int64_t pending_read_us;  /* read time of the previous packet (0: none): parsed, it is when the next
                                 packet's frame began to arrive */
    int session_stamped;      /* a frame of this session was stamped (jumps to it are not logged) */
    int64_t skew_since_us, skew_max_us; /* the session's skew measurement */
    int skew_checked;
    int warned_skew, warned_local;
} vg_clock;

void vg_clock_init_file(vg_clock *clock, int64_t start_ms, AVRational time_base, int64_t zero_pts);
/* A live camera's clock; who names it in log lines. Source is "local" until a session learns better. */
void vg_clock_init_live(vg_clock *clock, const char *who);
/* A new connection: pts restart and the sender's time is learnt again; last_ts and warnings survive.
 * prft_lags: the stream is parsed (see above). */
void vg_clock_new_session(vg_clock *clock, AVRational time_base, int prft_lags);
/* Learns from each packet in read order; now_us is its local arrival time (unix µs). Returns 1 once
 * the wall time of pts is known (from the sender, or the local fallback). */
int vg_clock_observe(vg_clock *clock, const AVPacket *pkt, int64_t now_us);
int vg_clock_known(const vg_clock *clock);
/* No sender report within wait_ms (the camera's rtcp_wait_ms, named in the once-per-camera log line): stamp
 * with the local clock from now on, pts anchored at the packet that was read least late. */
void vg_clock_use_local(vg_clock *clock, int64_t wait_ms);
/* Whether a picture with this pts can be stamped: pts is the stream's own (AV_NOPTS_VALUE is not: FFmpeg's
 * parser gives an RTSP session's first packet none) and, live, the sender's time (or the local fallback)
 * is known. A frame that cannot be stamped is never given a guessed time. */
int vg_clock_can_stamp(const vg_clock *clock, int64_t pts);
/* The frame time of pts (vg_clock_can_stamp must hold); never less than the previous stamp. */
int64_t vg_clock_stamp(vg_clock *clock, int64_t pts);
/* The wall time of pts in unix ms as the clock knows it now (vg_clock_can_stamp must hold), with no clamp, no
 * log and no state changed: for looking up a picture by time among packets in decode order, where B-frames
 * come after later frames (vg_clock_stamp would hold them at the later frame's time). */
int64_t vg_clock_wall_ms(const vg_clock *clock, int64_t pts);
/* This host's wall clock in unix µs. */
int64_t vg_clock_realtime_us(void);
/* The PRFT side data of a packet in unix µs, or INT64_MIN. */
int64_t vg_packet_wallclock_us(const AVPacket *pkt);

#endif
