/* vg_ingest.c — opening a source with libavformat, choosing its video stream and reading its packets.
 * Network sources get socket timeouts and an interrupt callback that turns a stall into an error; FFmpeg's
 * own log lines go through vg_log with URL passwords masked. */
#include "vg_ingest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/log.h>
#include <libavutil/parseutils.h>

#include "vg_log.h"
#include "vg_settings.h"
#include "vg_time.h"

#define VG_INGEST_OPEN_GRACE_MS 5000 /* opening may also read up to this long to learn the stream */

struct vg_ingest {
    AVFormatContext *fmt;
    int stream_index;
    int stall_timeout_ms;
    int64_t last_packet_ms; /* monotonic */
    int64_t deadline_ms;    /* monotonic: the interrupt fires after it */
    int stalled;            /* the interrupt fired for a stall */
    atomic_int *stop;
};

static int interrupt_cb(void *opaque) {
    vg_ingest *in = opaque;
    if (in->stop && atomic_load(in->stop)) return 1;
    if (vg_monotonic_ms() <= in->deadline_ms) return 0;
    in->stalled = 1;
    return 1;
}

/* FFmpeg's messages as debug lines of our own, passwords masked (they can quote the URL). */
static void ffmpeg_log(void *avcl, int level, const char *fmt, va_list ap) {
    if (level > av_log_get_level() || vg_log_get_level() < VG_LOG_DEBUG) return;
    char line[1024], masked[1200];
    int prefix = 1;
    av_log_format_line2(avcl, level, fmt, ap, line, sizeof line, &prefix);
    line[strcspn(line, "\r\n")] = 0;
    if (line[0]) vg_debug("ffmpeg", "%s", vg_mask_urls_in(line, masked, sizeof masked));
}

void vg_ingest_global_init(void) {
    avformat_network_init();
    av_log_set_callback(ffmpeg_log);
}

static int is_network(const char *url) { return strstr(url, "://") != NULL && strncmp(url, "file:", 5) != 0; }

static AVDictionary *open_options(const char *url, const vg_ingest_options *o, int stall_ms) {
    AVDictionary *opts = NULL;
    if (strncmp(url, "rtsp://", 7) == 0 || strncmp(url, "rtsps://", 8) == 0) {
        av_dict_set(&opts, "rtsp_transport", o && o->transport ? o->transport : "tcp", 0);
        av_dict_set_int(&opts, "timeout", (int64_t)stall_ms * 1000, 0); /* socket I/O timeout, µs */
    } else if (is_network(url)) {
        av_dict_set_int(&opts, "rw_timeout", (int64_t)stall_ms * 1000, 0);
    }
    return opts;
}

static void describe_error(const vg_ingest *in, int code, char *err, size_t errlen, const char *what) {
    char text[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(code, text, sizeof text);
    if (in->stalled)
        snprintf(err, errlen, "%s: no answer for %.1f s", what, (double)(vg_monotonic_ms() - in->last_packet_ms) / 1000.0);
    else snprintf(err, errlen, "%s: %s", what, text);
}

vg_ingest *vg_ingest_open(const char *url, const vg_ingest_options *options, char *err, size_t errlen) {
    vg_ingest *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->stall_timeout_ms = options && options->stall_timeout_ms > 0 ? options->stall_timeout_ms : VG_STALL_TIMEOUT_MS_DEFAULT;
    in->stop = options ? options->stop : NULL;
    in->last_packet_ms = vg_monotonic_ms();
    in->deadline_ms = in->last_packet_ms + in->stall_timeout_ms + VG_INGEST_OPEN_GRACE_MS;
    in->fmt = avformat_alloc_context();
    in->fmt->interrupt_callback = (AVIOInterruptCB){interrupt_cb, in};
    AVDictionary *opts = open_options(url, options, in->stall_timeout_ms);
    int rc = avformat_open_input(&in->fmt, url, NULL, &opts);
    av_dict_free(&opts);
    if (rc < 0) {
        describe_error(in, rc, err, errlen, "cannot open");
        free(in); /* avformat_open_input frees the context on failure */
        return NULL;
    }
    if ((rc = avformat_find_stream_info(in->fmt, NULL)) < 0) {
        describe_error(in, rc, err, errlen, "cannot read stream info");
        vg_ingest_close(in);
        return NULL;
    }
    in->stream_index = av_find_best_stream(in->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (in->stream_index < 0) {
        snprintf(err, errlen, "no video stream");
        vg_ingest_close(in);
        return NULL;
    }
    for (unsigned i = 0; i < in->fmt->nb_streams; i++)
        if ((int)i != in->stream_index) in->fmt->streams[i]->discard = AVDISCARD_ALL;
    return in;
}

void vg_ingest_close(vg_ingest *in) {
    if (!in) return;
    avformat_close_input(&in->fmt);
    free(in);
}

int vg_ingest_read(vg_ingest *in, AVPacket *pkt) {
    for (;;) {
        in->last_packet_ms = vg_monotonic_ms();
        in->deadline_ms = in->last_packet_ms + in->stall_timeout_ms;
        int rc = av_read_frame(in->fmt, pkt);
        if (rc < 0) return rc;
        if (pkt->stream_index == in->stream_index) return 0;
        av_packet_unref(pkt);
    }
}

static const AVStream *video(const vg_ingest *in) { return in->fmt->streams[in->stream_index]; }

int vg_ingest_stalled(const vg_ingest *in) { return in->stalled; }

void vg_ingest_describe_loss(const vg_ingest *in, int rc, char *reason, size_t len) {
    if (in->stalled) {
        snprintf(reason, len, "stalled: no packet for %.1f s", in->stall_timeout_ms / 1000.0);
        return;
    }
    char text[128];
    if (rc == AVERROR_EOF) snprintf(text, sizeof text, "end of stream");
    else av_strerror(rc, text, sizeof text);
    snprintf(reason, len, "%s", text);
}

void vg_ingest_describe_stream(const vg_ingest *in, const char *url, const char *transport, char *out, size_t len) {
    const AVCodecParameters *par = video(in)->codecpar;
    snprintf(out, len, "%s (%s %dx%d, %.4g fps, %s)", url, avcodec_get_name(par->codec_id), par->width, par->height,
             vg_ingest_frame_rate(in), transport ? transport : "tcp");
}
int vg_ingest_is_parsed(const vg_ingest *in) { return av_stream_get_parser(video(in)) != NULL; }

const AVCodecParameters *vg_ingest_codecpar(const vg_ingest *in) { return video(in)->codecpar; }
AVRational vg_ingest_time_base(const vg_ingest *in) { return video(in)->time_base; }

int64_t vg_ingest_start_pts(const vg_ingest *in) {
    int64_t start = video(in)->start_time;
    return start == AV_NOPTS_VALUE ? 0 : start;
}

double vg_ingest_frame_rate(const vg_ingest *in) {
    AVRational r = video(in)->avg_frame_rate;
    if (r.num <= 0 || r.den <= 0) r = video(in)->r_frame_rate;
    return r.num > 0 && r.den > 0 ? av_q2d(r) : 0;
}

int64_t vg_ingest_duration_ms(const vg_ingest *in) {
    return in->fmt->duration > 0 ? in->fmt->duration / (AV_TIME_BASE / 1000) : -1;
}

int64_t vg_ingest_creation_time_ms(const vg_ingest *in) {
    const AVDictionaryEntry *e = av_dict_get(in->fmt->metadata, "creation_time", NULL, 0);
    if (!e) e = av_dict_get(video(in)->metadata, "creation_time", NULL, 0);
    int64_t us;
    if (!e || av_parse_time(&us, e->value, 0) < 0 || us <= 0) return -1;
    return us / 1000;
}

void vg_ingest_say_retry(const char *who, const char *url, int connected, const char *why, int64_t delay_ms) {
    if (!connected) vg_warn(who, "%s: %s; retrying in %.1f s", url, why, (double)delay_ms / 1000.0);
    else vg_warn(who, "stream lost (%s): %s; reconnecting in %.1f s", url, why, (double)delay_ms / 1000.0);
}
