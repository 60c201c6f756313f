/* vg_preview_source.h — the stream a camera's previews are cut from (its preview_url: the main stream, while
 * url is the small one the rule analyses). It is read continuously on a thread of its own (its own connection,
 * reconnect backoff and RTCP clock) and decoded only when a preview asks for a picture: the packets since the
 * previous key frame are kept (two GOPs at most, bounded by VG_PREVIEW_KEEP_BYTES and VG_PREVIEW_KEEP_MS), and
 * a request "the picture with capture time TS" is decoded on the source's decode thread, from the key frame of
 * TS's GOP forward, the decoder staying where it is for a later request of the same GOP.
 *
 * Both streams carry RTCP sender reports, so a frame of the analysed stream and a picture of this one with
 * the same capture time show the same instant. The picture taken is the one within VG_PREVIEW_MATCH_MS of TS,
 * else the nearer of the two around TS (at most VG_PREVIEW_NEAREST_MAX_MS away; a TS before the first picture
 * kept has none). Nothing waits past the caller's deadline, and
 * a stream that cannot answer in time (down, no sender report yet, behind TS by more than the time left)
 * says so at once. */
#ifndef VG_PREVIEW_SOURCE_H
#define VG_PREVIEW_SOURCE_H
#include <stddef.h>
#include <stdint.h>

#include <libavutil/frame.h>

#define VG_PREVIEW_KEEP_BYTES (32LL << 20) /* packets kept at most, bytes: two GOPs of a 4K stream at 16 Mbit/s */
#define VG_PREVIEW_KEEP_MS 20000           /* ... and stream time: the oldest GOP goes first; a GOP longer than
                                              either bound is dropped whole until the next key frame */
#define VG_PREVIEW_MATCH_MS 1              /* a picture this close to TS is TS's picture */
#define VG_PREVIEW_NEAREST_MAX_MS 1000     /* the nearer picture further from TS than this is no picture of TS */

typedef enum {
    VG_PREVIEW_OK,             /* a picture */
    VG_PREVIEW_DOWN,           /* no connection, or still taking what FFmpeg read while connecting */
    VG_PREVIEW_NO_SENDER_TIME, /* connected, no RTCP sender report yet */
    VG_PREVIEW_LAGGING,        /* its newest packet is further behind TS than the time left */
    VG_PREVIEW_TIMED_OUT,      /* it did not reach TS (or decode to it) by the deadline */
    VG_PREVIEW_NOT_KEPT,       /* no picture of TS among the packets kept: TS is before the first, or the two
                                  around it are more than VG_PREVIEW_NEAREST_MAX_MS away */
    VG_PREVIEW_FRAME_UNTIMED,  /* (the camera's) the analysed frame has no sender time to match */
    VG_PREVIEW_STOPPING,       /* vg_preview_source_refuse was called */
    VG_PREVIEW_FRAME_LATE,     /* the deadline had passed when it was asked (the analysed frame is late) */
} vg_preview_result;

typedef struct vg_preview_source_config {
    const char *media;        /* the camera: log lines are "<media>/preview ..." */
    const char *url;          /* rtsp:// (may hold a password: logged masked) */
    const char *transport;    /* "tcp" (NULL) or "udp" */
    int stall_timeout_ms;     /* no packet for this long is a lost stream (0 = 10000) */
    int rtcp_wait_ms;         /* no sender report this long after connecting is said once */
} vg_preview_source_config;

typedef struct vg_preview_source_stats {
    int connected;            /* a session is up now */
    long connects, disconnects;
    long packets;             /* read */
    long kept_packets;        /* held now (gauge) */
    long kept_bytes;          /* held now (gauge) */
    long dropped_packets;     /* read but not kept: over the bounds (a GOP longer than them), or before the first
                                 key frame of a session */
    long decoded;             /* pictures decoded for previews */
    double decode_seconds;    /* time in the decoder (on the decode thread) */
} vg_preview_source_stats;

typedef struct vg_preview_source vg_preview_source;

/* Starts the reader and decode threads (connecting, with backoff, in the background). NULL with err when a
 * thread cannot be made. The strings are copied. */
vg_preview_source *vg_preview_source_start(const vg_preview_source_config *config, char *err, size_t errlen);
/* Stops both threads, waits for them and frees everything. NULL is fine. */
void vg_preview_source_stop(vg_preview_source *ps);

/* The picture with capture time ts (unix ms, RTCP): waits at most until deadline_ms (vg_monotonic_ms time) on a
 * condition variable, costing the calling thread no CPU. VG_PREVIEW_OK: picture holds a new reference (unref it)
 * and *shown_ts its capture time. Otherwise picture is untouched and the result says why; *behind_ms is how far
 * the newest packet trails ts (VG_PREVIEW_LAGGING). One caller at a time (the camera thread). */
vg_preview_result vg_preview_source_picture(vg_preview_source *ps, int64_t ts, int64_t deadline_ms, AVFrame *picture,
                                            int64_t *shown_ts, int64_t *behind_ms);
/* Thread-safe: a request waiting returns now, and every later one at once (VG_PREVIEW_STOPPING): the camera is
 * stopping. NULL is fine. */
void vg_preview_source_refuse(vg_preview_source *ps);
void vg_preview_source_get_stats(vg_preview_source *ps, vg_preview_source_stats *out);

#endif
