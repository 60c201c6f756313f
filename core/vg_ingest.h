/* vg_ingest.h — compressed video packets from a file or a network source (libavformat). */
#ifndef VG_INGEST_H
#define VG_INGEST_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>

typedef struct vg_ingest vg_ingest;

typedef struct vg_ingest_options {
    const char *transport;    /* RTSP: "tcp" (default) or "udp" */
    int stall_timeout_ms;     /* network: no packet for this long is an error (0 = VG_STALL_TIMEOUT_MS_DEFAULT) */
    atomic_int *stop;         /* when non-zero, blocking reads return AVERROR_EXIT */
} vg_ingest_options;

/* Once per process, before any thread opens a source: network init, FFmpeg's log lines into vg_log. */
void vg_ingest_global_init(void);

/* Opens url and picks its best video stream. On failure returns NULL with a one-line reason in err. */
vg_ingest *vg_ingest_open(const char *url, const vg_ingest_options *options, char *err, size_t errlen);
void vg_ingest_close(vg_ingest *in);

/* Reads the next packet of the video stream: 0, AVERROR_EOF at the end, another AVERROR on failure. */
int vg_ingest_read(vg_ingest *in, AVPacket *pkt);

const AVCodecParameters *vg_ingest_codecpar(const vg_ingest *in);
AVRational vg_ingest_time_base(const vg_ingest *in);
/* The stream's first timestamp in its time base (0 when unknown). */
int64_t vg_ingest_start_pts(const vg_ingest *in);
/* A file's duration in ms as its container says, or -1 (live sources, or unknown). */
int64_t vg_ingest_duration_ms(const vg_ingest *in);
/* The container's creation_time in unix ms, or -1. */
int64_t vg_ingest_creation_time_ms(const vg_ingest *in);
double vg_ingest_frame_rate(const vg_ingest *in);
/* The last open or read failed because no packet came for the stall timeout. */
int vg_ingest_stalled(const vg_ingest *in);
/* Why a source's reads ended, rc being vg_ingest_read's failure: "stalled: no packet for S s", "end of stream",
 * or FFmpeg's text for rc. */
void vg_ingest_describe_loss(const vg_ingest *in, int rc, char *reason, size_t len);
/* A stream come up, for the "stream up: ..." line: "URL (CODEC WxH, F fps, TRANSPORT)", url as it may be shown
 * (masked), transport NULL = "tcp". */
void vg_ingest_describe_stream(const vg_ingest *in, const char *url, const char *transport, char *out, size_t len);
/* The warn line of a source that failed and is retried after delay_ms: "URL: why; retrying in S s" when it
 * never connected, else "stream lost (URL): why; reconnecting in S s" (url and why as they may be shown). */
void vg_ingest_say_retry(const char *who, const char *url, int connected, const char *why, int64_t delay_ms);
/* Packets go through a parser (H.264, HEVC, ...): a packet carries the PRFT of the packet after it. */
int vg_ingest_is_parsed(const vg_ingest *in);

#endif
