/* vg_camera.c — the per-camera pipeline. Owns the camera's ingest, decoder, clock, frame scaler, episode
 * book and script, and moves every decoded picture through them in order, at most config.fps of them per
 * second of stream time to the script, and none that is damaged. A live camera also owns its thread, its connection sessions (packets
 * held until their sender time is known), the reconnect backoff, the copy of its counters that other
 * threads read (published under its mutex after every packet), and, with preview_url, the preview source its
 * rule's crops are cut from (the wait per frame, the fallback to the analysed picture and saying why). */
#include "vg_camera.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/mathematics.h>
#include <libavutil/pixdesc.h>

#include "vg_clock.h"
#include "vg_episode.h"
#include "vg_frame.h"
#include "vg_ingest.h"
#include "vg_log.h"
#include "vg_overlay.h"
#include "vg_script.h"
#include "vg_time.h"

#define VG_DAMAGE_LOG_INTERVAL_MS 60000 /* damaged pictures are said at most this often */
#define VG_SINK_ERROR_LOG_MS 10000   /* a sink that cannot take versions is said at most this often */

struct vg_camera {
    vg_camera_config config;
    char *media;
    vg_sink *sink;
    vg_episode_book *book;
    vg_script *script;
    vg_frame_scaler *scaler;
    vg_overlay *overlay;            /* NULL unless config.overlay */
    int64_t overlay_first_ts;
    vg_clock clock;
    vg_camera_stats stats;          /* the camera's thread's own; others read the published copy */
    double next_due_ts;             /* fps limit: the stream time the next frame for the script is due at */
    int have_due;
    int damaged;                    /* the last picture was decoded with errors, or refers to one */
    int64_t damage_logged_ms;       /* monotonic: when damage was last said (at most once a minute) */
    int warned_loop_filter;
    int warned_untimed;
    int no_luma_format;             /* the AVPixelFormat of VG_ERROR_NO_LUMA, for its text */
    int64_t pace_wall_ms, pace_ts; /* realtime replay: the wall time of the first frame, and its ts */
    /* preview_url */
    vg_preview_source *preview;     /* live, while the camera runs */
    int preview_state;              /* the last answer (vg_preview_result), -1 before the first */
    int64_t preview_frame_ts;       /* the frame whose previews share preview_deadline_ms */
    int64_t preview_deadline_ms;    /* monotonic */
    /* live */
    char url_masked[1024];          /* the URL as log lines may show it */
    pthread_t thread;
    int started;
    atomic_int stop;
    vg_log_limit sink_errors_said;  /* the camera thread's "could not be written" lines */
    pthread_mutex_t lock;           /* with wake: the backoff wait that vg_camera_stop interrupts; guards the
                                       two fields below */
    pthread_cond_t wake;
    vg_camera_stats published;
    const char *close_reason;
    uint64_t rng;                   /* backoff jitter */
};

/* The backoff wait sleeps on a monotonic condition variable so a stop wakes it at once. */
static void init_wait(vg_camera *cam) {
    vg_cond_init_monotonic(&cam->wake);
    pthread_mutex_init(&cam->lock, NULL);
    atomic_init(&cam->stop, 0);
    cam->rng = vg_random_seed((uint64_t)vg_monotonic_ms() ^ (uint64_t)(uintptr_t)cam);
}

static void emit_to_sink(void *ctx, const vg_version *version) {
    vg_camera *cam = ctx;
    cam->stats.versions_emitted++;
    if (version->is_first) cam->stats.episodes_opened++;
    long held = 0;
    if (cam->sink && vg_sink_put(cam->sink, version) < 0) {
        cam->stats.sink_errors++; /* said at most once per VG_SINK_ERROR_LOG_MS, with the count held back */
        if (vg_log_limit_pass(&cam->sink_errors_said, vg_monotonic_ms(), VG_SINK_ERROR_LOG_MS, &held))
            vg_error(cam->media, "episode version could not be written to the %s sink (%ld more since the last line)",
                     cam->sink->name, held);
    }
}

/* ---------- previews from preview_url ---------- */

static const char *fallback_cause(vg_preview_result r) {
    switch (r) {
    case VG_PREVIEW_OK: return "";
    case VG_PREVIEW_DOWN: return "the preview stream is not connected";
    case VG_PREVIEW_NO_SENDER_TIME: return "the preview stream has no RTCP sender time yet";
    case VG_PREVIEW_LAGGING: return "the preview stream lags the analysed one by more than preview_wait_ms";
    case VG_PREVIEW_TIMED_OUT: return "the preview stream did not reach the frame's time within preview_wait_ms";
    case VG_PREVIEW_NOT_KEPT: return "the preview stream has no picture of the frame's time among the packets kept "
                                     "(the frame is older than they are, or they have a gap there)";
    case VG_PREVIEW_FRAME_UNTIMED: return "the analysed frame has no RTCP sender time to match (frame.clock local)";
    case VG_PREVIEW_STOPPING: return "the camera is stopping";
    case VG_PREVIEW_FRAME_LATE: return "the analysed stream is behind (its frame came more than preview_wait_ms later "
                                       "than frames come): no time left to wait";
    }
    return "?";
}

/* Each change of where previews come from is said once: the cause of a fallback, and the return. */
static void note_preview_state(vg_camera *cam, vg_preview_result r, int64_t behind_ms) {
    if ((int)r == cam->preview_state || r == VG_PREVIEW_STOPPING) return;
    char masked[1024];
    vg_mask_url(cam->config.preview_url, masked, sizeof masked);
    if (r == VG_PREVIEW_OK)
        vg_info(cam->media, "previews come from the preview stream %s%s", masked,
                cam->stats.previews_main ? " again" : "");
    else if (r == VG_PREVIEW_LAGGING)
        vg_warn(cam->media, "previews come from the analysed stream: %s (%d ms; its newest frame is %.1f s behind)",
                fallback_cause(r), cam->config.settings.preview_wait_ms, (double)behind_ms / 1000.0);
    else
        vg_warn(cam->media, "previews come from the analysed stream: %s", fallback_cause(r));
    cam->preview_state = (int)r;
}

/* How long a frame's previews may wait: preview_wait_ms, less how much later the frame is than its stream brings
 * frames. A camera behind does not wait: the waits would add up, holding every later frame back as well. When its
 * stream brings frames is the least (read time - capture time) of the session's packets, which the clock keeps:
 * the packets read while the first sender report was awaited count too, read as they came, so a camera thread
 * behind from its start (held frames, then waits) does not take its own lateness for the stream's. */
static int64_t preview_wait_left(const vg_camera *cam, const vg_frame *frame) {
    int64_t left = cam->config.settings.preview_wait_ms;
    const vg_clock *c = &cam->clock;
    if (c->source != VG_CLOCK_RTCP || c->offset_us == INT64_MIN || c->local_offset_us == INT64_MIN) return left;
    int64_t late = vg_realtime_ms() - (frame->ts + (c->local_offset_us - c->offset_us) / 1000);
    return late > 0 ? left - late : left;
}

/* vg_preview_picture_fn, on the camera thread inside the rule's callback: the preview stream's picture at the
 * frame's time. The previews of one frame wait preview_wait_ms at most in all (preview_wait_left): once the
 * frame's deadline is spent (one of them timed out, or took the time), the others fall back at once. What the
 * log says is each frame's first preview's answer. */
static int preview_picture(void *ctx, const vg_frame *frame, AVFrame *picture, int64_t *shown_ts) {
    vg_camera *cam = ctx;
    int first = frame->ts != cam->preview_frame_ts || !cam->preview_deadline_ms;
    if (first) {
        cam->preview_frame_ts = frame->ts;
        cam->preview_deadline_ms = vg_monotonic_ms() + preview_wait_left(cam, frame);
    }
    int64_t behind = 0;
    vg_preview_result r = !cam->preview ? VG_PREVIEW_DOWN
                          : frame->clock != VG_CLOCK_RTCP ? VG_PREVIEW_FRAME_UNTIMED
                          : vg_preview_source_picture(cam->preview, frame->ts, cam->preview_deadline_ms, picture,
                                                      shown_ts, &behind);
    if (first) note_preview_state(cam, r, behind); /* a frame's state is its first preview's: a later one finding
                                                      the frame's wait spent is no change of the streams */
    if (r == VG_PREVIEW_OK) cam->stats.previews_main++;
    else cam->stats.previews_fallback++;
    return r == VG_PREVIEW_OK ? 0 : -1;
}

vg_camera *vg_camera_new(const vg_camera_config *config, vg_snowflake *ids, vg_sink *sink, char *err,
                         size_t errlen) {
    vg_camera *cam = calloc(1, sizeof *cam);
    cam->config = *config;
    cam->media = strdup(config->media);
    cam->config.media = cam->media;
    cam->sink = sink;
    cam->damage_logged_ms = -VG_DAMAGE_LOG_INTERVAL_MS; /* the first damage is always said */
    vg_mask_url(config->url, cam->url_masked, sizeof cam->url_masked);
    init_wait(cam);
    cam->book = vg_book_new(cam->media, ids, emit_to_sink, cam);
    cam->scaler = vg_frame_scaler_new(config->settings.analysis_width);
    cam->preview_state = -1;
    vg_script_config sc = {
        .camera = cam->media, .path = config->script, .params_json = config->params_json,
        .zones_json = config->zones_json, .budget_ms = config->settings.budget_ms, .unsafe = config->unsafe,
        .jit = config->jit, .watch = config->settings.watch,
        .preview_picture = config->preview_url ? preview_picture : NULL, .preview_ctx = cam,
    };
    cam->script = vg_script_load(&sc, cam->book, err, errlen);
    if (!cam->script || (config->overlay && !(cam->overlay = vg_overlay_open(config->overlay, err, errlen)))) {
        vg_camera_free(cam);
        return NULL;
    }
    return cam;
}

void vg_camera_free(vg_camera *cam) {
    if (!cam) return;
    if (cam->started) {
        vg_camera_stop(cam, "shutdown");
        vg_camera_join(cam);
    }
    vg_preview_source_stop(cam->preview);
    pthread_cond_destroy(&cam->wake);
    pthread_mutex_destroy(&cam->lock);
    vg_camera_close_overlay(cam);
    vg_script_free(cam->script);
    vg_book_free(cam->book);
    vg_frame_scaler_free(cam->scaler);
    free(cam->media);
    free(cam);
}

/* Makes the counters visible to other threads (metrics, the final report). The camera's thread only. */
static void publish(vg_camera *cam) {
    vg_camera_stats st = cam->stats;
    st.clock = cam->clock.source;
    st.episodes_open = vg_book_open_count(cam->book);
    st.versions_unrendered = vg_book_unrendered(cam->book);
    vg_script_get_stats(cam->script, &st.script);
    if (cam->preview) vg_preview_source_get_stats(cam->preview, &st.preview);
    pthread_mutex_lock(&cam->lock);
    cam->published = st;
    pthread_mutex_unlock(&cam->lock);
}

void vg_camera_get_stats(vg_camera *cam, vg_camera_stats *out) {
    pthread_mutex_lock(&cam->lock);
    *out = cam->published;
    pthread_mutex_unlock(&cam->lock);
}

/* Wall time spent in the decoder since start (vg_elapsed_ns), added to the camera's decode_seconds. */
static void count_decode_time(vg_camera *cam, const struct timespec *start) {
    cam->stats.decode_seconds += (double)vg_elapsed_ns(CLOCK_MONOTONIC, start) / 1e9;
}

/* The fps limit on stream time: a frame is due once its ts reaches next_due_ts, which then advances by one
 * interval (so the mean rate is exact even when frames do not fall on the interval); after a gap longer than
 * an interval it restarts from the frame. */
static int due_for_script(vg_camera *cam, int64_t ts) {
    if (cam->config.settings.fps <= 0) return 1;
    double interval = 1000.0 / cam->config.settings.fps;
    if (!cam->have_due || (double)ts >= cam->next_due_ts + interval) {
        cam->have_due = 1;
        cam->next_due_ts = (double)ts + interval;
        return 1;
    }
    if ((double)ts + 0.5 < cam->next_due_ts) return 0;
    cam->next_due_ts += interval;
    return 1;
}

/* Replay at the speed of the recording: wait until the frame's time has come on the wall clock. */
static void pace(vg_camera *cam, int64_t ts) {
    int64_t now = vg_monotonic_ms();
    if (!cam->pace_wall_ms) {
        cam->pace_wall_ms = now;
        cam->pace_ts = ts;
        return;
    }
    int64_t wait = (ts - cam->pace_ts) - (now - cam->pace_wall_ms);
    if (wait > 0) {
        struct timespec pause = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        nanosleep(&pause, NULL);
    }
}

/* A picture decoded with errors (data lost, or a stream joined in the middle of a frame: seen on the first
 * picture of an RTSP session) is concealed, and so is every frame that refers to it, without a flag of their
 * own; a rule would see motion that is not there. None reaches the rule until a key frame decodes clean. */
static int damaged(vg_camera *cam, const AVFrame *picture) {
    int broken = picture->decode_error_flags || (picture->flags & AV_FRAME_FLAG_CORRUPT);
    if (broken && !cam->damaged && vg_monotonic_ms() - cam->damage_logged_ms >= VG_DAMAGE_LOG_INTERVAL_MS) {
        vg_warn(cam->media, "damaged picture (lost or partial data): frames wait for the next clean key frame");
        cam->damage_logged_ms = vg_monotonic_ms();
    }
    if (broken) cam->damaged = 1;
    else if (picture->key_frame) cam->damaged = 0;
    return cam->damaged;
}

/* The picture's own time in the stream. Live: the pts of its packet, which the decoder carries through
 * reordering (best_effort_timestamp would put a later packet's dts on a pts-less picture). A file may
 * carry only dts, which is the container's fact for the frame; libavcodec's best effort picks it. */
static int64_t picture_pts(const vg_camera *cam, const AVFrame *picture) {
    return cam->clock.source == VG_CLOCK_FILE ? picture->best_effort_timestamp : picture->pts;
}

/* A picture whose time the stream does not give (FFmpeg's parser gives an RTSP session's first packet no
 * pts) is decoded, since later frames refer to it, but never stamped with a guess: it is kept from the rule,
 * counted, and said once per camera. */
static void untimed(vg_camera *cam) {
    cam->stats.frames_untimed++;
    if (cam->warned_untimed) return;
    cam->warned_untimed = 1;
    vg_info(cam->media, "a picture came without a timestamp from the stream (the first of an RTSP session has "
            "none): decoded, not given to the rule (vigil_camera_frames_untimed_total)");
}

/* ---------- the overlay ---------- */

void vg_camera_close_overlay(vg_camera *cam) {
    if (!cam->overlay) return;
    char err[512];
    long frames = vg_overlay_frames(cam->overlay);
    if (vg_overlay_close(cam->overlay, err, sizeof err) < 0) vg_error(cam->media, "%s", err);
    else vg_info(cam->media, "overlay: %ld frames written to %s", frames, cam->config.overlay);
    cam->overlay = NULL;
}

/* The analysis picture goes on the canvas; the rule's primitives draw on it through frame->overlay. */
static void begin_overlay(vg_camera *cam, vg_frame *frame) {
    const uint8_t *luma = vg_frame_luma(frame);
    if (!cam->overlay || !luma) return;
    vg_overlay_begin(cam->overlay, luma, frame->width, frame->height, frame->stride);
    frame->overlay = cam->overlay;
}

/* The open episodes (a red border, their types and ages) and the frame's time; then the picture is written.
 * A write that fails ends the overlay, said once. */
static void end_overlay(vg_camera *cam, const vg_frame *frame) {
    if (!frame->overlay) return;
    if (!vg_overlay_frames(cam->overlay)) cam->overlay_first_ts = frame->ts;
    char text[96];
    int open = vg_book_open_count(cam->book);
    if (open) vg_overlay_box(cam->overlay, 0, 0, 1, 1, VG_INK_EPISODE);
    for (int i = 0; i < open && i < 8; i++) {
        vg_episode *ep = vg_book_open_at(cam->book, i);
        snprintf(text, sizeof text, "%s %.1fS", vg_episode_type(ep) ? vg_episode_type(ep) : "EPISODE",
                 (double)(frame->ts - vg_episode_opened_at(ep)) / 1000.0);
        vg_overlay_text(cam->overlay, 0.02, 0.03 + 0.06 * i, text, VG_INK_EPISODE);
    }
    snprintf(text, sizeof text, "%.2f", (double)(frame->ts - cam->overlay_first_ts) / 1000.0);
    vg_overlay_text(cam->overlay, 0.02, 0.93, text, VG_INK_TEXT);
    char err[512];
    if (vg_overlay_end(cam->overlay, frame->ts, err, sizeof err) < 0) {
        vg_error(cam->media, "%s; no more overlay frames", err);
        vg_camera_close_overlay(cam);
    }
}

/* analyse's failure: a picture whose pixel format has no luma conversion. Every picture of the stream has that
 * format, so the replay fails, and a live session ends (logged, retried with backoff) instead of dropping
 * every frame in silence. Said once, by whoever reports the failure (error_text names the format). */
#define VG_ERROR_NO_LUMA FFERRTAG('V', 'G', 'N', 'L')

/* An FFmpeg error code, or ours, as text. */
static const char *error_text(const vg_camera *cam, int rc, char *text, size_t len) {
    if (rc == VG_ERROR_NO_LUMA) {
        const char *name = av_get_pix_fmt_name((enum AVPixelFormat)cam->no_luma_format);
        snprintf(text, len, "pictures in a pixel format that cannot be converted to luma (%s, %d)",
                 name ? name : "unknown", cam->no_luma_format);
    } else {
        av_strerror(rc, text, len);
    }
    return text;
}

/* One decoded picture: stamp it, scale its luma, hand it to the script. 0, or VG_ERROR_NO_LUMA. */
static int analyse(vg_camera *cam, AVFrame *picture) {
    cam->stats.frames_decoded++;
    if (damaged(cam, picture)) {
        cam->stats.frames_damaged++;
        return 0;
    }
    int64_t pts = picture_pts(cam, picture);
    if (!vg_clock_can_stamp(&cam->clock, pts)) {
        untimed(cam);
        return 0;
    }
    vg_frame frame = {0};
    if (cam->config.settings.decode == VG_DECODE_KEYFRAMES) cam->clock.session_stamped = 0; /* key frames are a GOP
                                                                  apart: the step between two is no jump */
    frame.ts = vg_clock_stamp(&cam->clock, pts);
    if (!due_for_script(cam, frame.ts)) { /* not converted, not copied: the script never sees it */
        cam->stats.frames_skipped++;
        return 0;
    }
    frame.clock = cam->clock.source;
    frame.keyframe = picture->key_frame;
    frame.index = cam->stats.frames_analysed;
    if (vg_frame_scaler_describe(cam->scaler, picture, &frame) < 0) {
        cam->no_luma_format = picture->format;
        return VG_ERROR_NO_LUMA;
    }
    if (!cam->stats.frames_analysed) cam->stats.first_ts = frame.ts;
    cam->stats.last_ts = frame.ts;
    cam->stats.frames_analysed++;
    if (cam->config.realtime) pace(cam, frame.ts);
    vg_script_poll_reload(cam->script); /* between two frames, never inside one */
    begin_overlay(cam, &frame);
    vg_script_on_frame(cam->script, &frame);
    end_overlay(cam, &frame);
    return 0;
}

static int drain(vg_camera *cam, vg_decoder *dec, AVFrame *picture) {
    for (;;) {
        struct timespec t0 = vg_now(CLOCK_MONOTONIC);
        int rc = vg_decoder_receive(dec, picture);
        count_decode_time(cam, &t0);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
        if (rc < 0) return rc;
        rc = analyse(cam, picture);
        av_frame_unref(picture);
        if (rc < 0) return rc;
    }
}

/* Feeds one packet (NULL drains the decoder) and analyses every picture it gives back. Damaged data is
 * not an error: the decoder resynchronises at the next key frame. */
static int decode_packet(vg_camera *cam, vg_decoder *dec, AVFrame *picture, const AVPacket *pkt) {
    struct timespec t0 = vg_now(CLOCK_MONOTONIC);
    int rc = vg_decoder_send(dec, pkt);
    count_decode_time(cam, &t0);
    if (rc < 0 && rc != AVERROR_INVALIDDATA) return rc;
    rc = drain(cam, dec, picture);
    return rc == AVERROR_INVALIDDATA ? 0 : rc;
}

/* The camera's decoder options for this source: skipping the loop filter blurs the picture a little, which
 * only a downscaled analysis plane hides, so it is applied only when the stream is wider than that. */
static vg_decoder_options decoder_options(vg_camera *cam, const vg_ingest *in) {
    const vg_camera_settings *s = &cam->config.settings;
    vg_decoder_options o = {.mode = s->decode, .threads = s->decoder_threads, .skip_loop_filter = s->skip_loop_filter};
    int analysis_width = s->analysis_width;
    int width = vg_ingest_codecpar(in)->width;
    if (o.skip_loop_filter && width <= analysis_width) {
        o.skip_loop_filter = 0;
        if (!cam->warned_loop_filter)
            vg_info(cam->media, "skip_loop_filter not applied: the stream (%d px wide) is not downscaled for "
                    "analysis (analysis_width %d)", width, analysis_width);
        cam->warned_loop_filter = 1;
    }
    return o;
}

static int64_t replay_start(const vg_camera *cam, const vg_ingest *in) {
    if (cam->config.start_ms != INT64_MIN) return cam->config.start_ms;
    int64_t created = vg_ingest_creation_time_ms(in);
    return created >= 0 ? created : vg_realtime_ms();
}

static int decode_all(vg_camera *cam, vg_ingest *in, vg_decoder *dec, char *err, size_t errlen) {
    AVPacket *pkt = av_packet_alloc();
    AVFrame *picture = av_frame_alloc();
    int rc = 0;
    while ((rc = vg_ingest_read(in, pkt)) >= 0) {
        cam->stats.packets++;
        rc = decode_packet(cam, dec, picture, pkt);
        av_packet_unref(pkt);
        if (rc < 0) break;
        publish(cam); /* for replay's progress line */
    }
    if (rc == AVERROR_EOF || rc == 0) rc = decode_packet(cam, dec, picture, NULL);
    if (rc < 0) {
        char text[128];
        snprintf(err, errlen, "%s: %s", cam->config.url, error_text(cam, rc, text, sizeof text));
    }
    av_frame_free(&picture);
    av_packet_free(&pkt);
    return rc < 0 ? -1 : 0;
}

int vg_camera_replay(vg_camera *cam, char *err, size_t errlen) {
    int64_t t0 = vg_monotonic_ms();
    char reason[256];
    vg_ingest *in = vg_ingest_open(cam->config.url, NULL, reason, sizeof reason);
    if (!in) {
        snprintf(err, errlen, "%s: %s", cam->config.url, reason);
        return -1;
    }
    vg_decoder_options options = decoder_options(cam, in);
    vg_decoder *dec = vg_decoder_new(vg_ingest_codecpar(in), vg_ingest_time_base(in), &options, reason, sizeof reason);
    if (!dec) {
        snprintf(err, errlen, "%s: %s", cam->config.url, reason);
        vg_ingest_close(in);
        return -1;
    }
    vg_clock_init_file(&cam->clock, replay_start(cam, in), vg_ingest_time_base(in), vg_ingest_start_pts(in));
    cam->stats.duration_ms = vg_ingest_duration_ms(in);
    int rc = decode_all(cam, in, dec, err, errlen);
    if (rc == 0 && cam->stats.frames_analysed == 0) {
        snprintf(err, errlen, "%s: no picture could be decoded", cam->config.url);
        rc = -1;
    }
    vg_script_on_stop(cam->script);
    vg_book_close_all(cam->book, cam->stats.last_ts, "end_of_stream");
    vg_camera_close_overlay(cam);
    vg_decoder_free(dec);
    vg_ingest_close(in);
    cam->stats.seconds = (double)(vg_monotonic_ms() - t0) / 1000.0;
    publish(cam);
    return rc;
}

/* ---------- live: sessions, reconnects, the camera thread ---------- */

#define VG_HOLD_MAX_PACKETS 2048  /* besides rtcp_wait: a bound on what waits for the first sender report */

/* One connection: its source and decoder, and the packets held until their sender time is known. */
typedef struct session {
    vg_ingest *in;
    vg_decoder *dec;
    AVFrame *picture;
    AVPacket *held[VG_HOLD_MAX_PACKETS];
    int nheld;
    int64_t hold_since_ms;  /* monotonic */
    int64_t opened_ms;      /* monotonic: when connecting began */
    int timed;              /* the clock of this session is known */
} session;

typedef enum { SESSION_NOT_CONNECTED, SESSION_NO_FRAMES, SESSION_DELIVERED } session_result;

static int stopping(vg_camera *cam) { return atomic_load(&cam->stop); }

static int decode_live(vg_camera *cam, session *s, AVPacket *pkt) {
    return decode_packet(cam, s->dec, s->picture, pkt);
}

static void hold(session *s, AVPacket *pkt) {
    if (!s->nheld) s->hold_since_ms = vg_monotonic_ms();
    s->held[s->nheld] = av_packet_alloc();
    av_packet_move_ref(s->held[s->nheld++], pkt);
}

static int hold_expired(const vg_camera *cam, const session *s) {
    return s->nheld >= VG_HOLD_MAX_PACKETS || vg_monotonic_ms() - s->hold_since_ms >= cam->config.settings.rtcp_wait_ms;
}

static void drop_held(session *s) {
    for (int i = 0; i < s->nheld; i++) av_packet_free(&s->held[i]);
    s->nheld = 0;
}

/* The clock is known now: decode what was held, each stamped exactly by its own pts. */
static int release_held(vg_camera *cam, session *s) {
    int rc = 0;
    for (int i = 0; i < s->nheld && rc >= 0; i++) rc = decode_live(cam, s, s->held[i]);
    drop_held(s);
    return rc;
}

/* Frames wait for the first sender report (at most rtcp_wait_ms), then go out stamped by it; if none
 * comes, by the local clock. */
static void report_timed(vg_camera *cam, session *s) {
    s->timed = 1;
    if (cam->clock.source == VG_CLOCK_RTCP)
        vg_info(cam->media, "frame time from RTCP sender reports, %.2f s after connecting (%d packets held)",
                (double)(vg_monotonic_ms() - s->opened_ms) / 1000.0, s->nheld);
}

static int on_packet(vg_camera *cam, session *s, AVPacket *pkt) {
    int known = vg_clock_observe(&cam->clock, pkt, vg_clock_realtime_us());
    if (known && !s->timed) report_timed(cam, s);
    if (known && !s->nheld) return decode_live(cam, s, pkt);
    hold(s, pkt);
    if (!vg_clock_known(&cam->clock)) {
        if (!hold_expired(cam, s)) return 0;
        vg_clock_use_local(&cam->clock, cam->config.settings.rtcp_wait_ms);
        s->timed = 1;
    }
    return release_held(cam, s);
}

static int pump(vg_camera *cam, session *s) {
    AVPacket *pkt = av_packet_alloc();
    int rc;
    while ((rc = vg_ingest_read(s->in, pkt)) >= 0) {
        cam->stats.packets++;
        rc = on_packet(cam, s, pkt);
        av_packet_unref(pkt);
        publish(cam);
        if (rc < 0) break;
    }
    av_packet_free(&pkt);
    return rc;
}

/* Why the session ended: vg_ingest_describe_loss, or ours (VG_ERROR_NO_LUMA). */
static void describe_loss(const vg_camera *cam, const session *s, int rc, char *reason, size_t len) {
    char text[160];
    if (rc == VG_ERROR_NO_LUMA && !vg_ingest_stalled(s->in))
        snprintf(reason, len, "%s", error_text(cam, rc, text, sizeof text));
    else vg_ingest_describe_loss(s->in, rc, reason, len);
}

static void log_up(vg_camera *cam, const vg_ingest *in) {
    char up[1200];
    vg_ingest_describe_stream(in, cam->url_masked, cam->config.settings.transport, up, sizeof up);
    vg_info(cam->media, "stream up: %s", up);
}

/* Connects, runs the stream until it fails or the camera stops; reason says why it ended. */
static session_result run_session(vg_camera *cam, char *reason, size_t len) {
    const vg_camera_settings *set = &cam->config.settings;
    vg_ingest_options o = {.transport = set->transport, .stall_timeout_ms = set->stall_timeout_ms, .stop = &cam->stop};
    session *s = calloc(1, sizeof *s);
    s->opened_ms = vg_monotonic_ms();
    cam->stats.attempts++;
    if (!(s->in = vg_ingest_open(cam->config.url, &o, reason, len))) {
        free(s);
        publish(cam);
        return SESSION_NOT_CONNECTED;
    }
    vg_decoder_options options = decoder_options(cam, s->in);
    s->dec = vg_decoder_new(vg_ingest_codecpar(s->in), vg_ingest_time_base(s->in), &options, reason, len);
    if (!s->dec) {
        vg_ingest_close(s->in);
        free(s);
        return SESSION_NOT_CONNECTED;
    }
    s->picture = av_frame_alloc();
    vg_clock_new_session(&cam->clock, vg_ingest_time_base(s->in), vg_ingest_is_parsed(s->in));
    cam->damaged = 0; /* a new decoder starts at a key frame */
    cam->stats.connects++;
    cam->stats.connected = 1;
    log_up(cam, s->in);
    vg_script_on_stream(cam->script, "up");
    publish(cam);
    long frames_before = cam->stats.frames_decoded;
    describe_loss(cam, s, pump(cam, s), reason, len);
    cam->stats.connected = 0;
    drop_held(s);
    av_frame_free(&s->picture);
    vg_decoder_free(s->dec);
    vg_ingest_close(s->in);
    free(s);
    return cam->stats.frames_decoded > frames_before ? SESSION_DELIVERED : SESSION_NO_FRAMES;
}

static void wait_ms(vg_camera *cam, int64_t ms) {
    struct timespec until = vg_deadline_in_ms(CLOCK_MONOTONIC, ms);
    pthread_mutex_lock(&cam->lock);
    while (!stopping(cam) && pthread_cond_timedwait(&cam->wake, &cam->lock, &until) == 0) {
    }
    pthread_mutex_unlock(&cam->lock);
}

static void *camera_thread(void *arg) {
    vg_camera *cam = arg;
    int64_t t0 = vg_monotonic_ms();
    int failures = 0; /* sessions in a row that delivered no frame */
    char reason[512], masked[600];
    while (!stopping(cam)) {
        session_result r = run_session(cam, reason, sizeof reason);
        if (stopping(cam)) break;
        failures = r == SESSION_DELIVERED ? 0 : failures + 1;
        int64_t delay = vg_backoff_next(&cam->rng, failures); /* jittered: cameras behind one failed server do
                                                                  not retry in step */
        vg_ingest_say_retry(cam->media, cam->url_masked, r != SESSION_NOT_CONNECTED,
                            vg_mask_urls_in(reason, masked, sizeof masked), delay);
        if (r != SESSION_NOT_CONNECTED) {
            cam->stats.disconnects++;
            vg_script_on_stream(cam->script, "down");
        }
        cam->stats.reconnects++;
        publish(cam);
        wait_ms(cam, delay);
    }
    pthread_mutex_lock(&cam->lock);
    const char *close_reason = cam->close_reason ? cam->close_reason : "shutdown";
    pthread_mutex_unlock(&cam->lock);
    vg_script_on_stop(cam->script);
    vg_book_close_all(cam->book, cam->stats.frames_analysed ? cam->stats.last_ts : vg_realtime_ms(), close_reason);
    cam->stats.seconds = (double)(vg_monotonic_ms() - t0) / 1000.0;
    publish(cam);
    return NULL;
}

/* preview_url: its reader and decoder run beside the camera's thread, from its start to its end. */
static int start_preview(vg_camera *cam, char *err, size_t errlen) {
    if (!cam->config.preview_url) return 0;
    const vg_camera_settings *set = &cam->config.settings;
    vg_preview_source_config pc = {.media = cam->media, .url = cam->config.preview_url, .transport = set->transport,
                                   .stall_timeout_ms = set->stall_timeout_ms, .rtcp_wait_ms = set->rtcp_wait_ms};
    cam->preview = vg_preview_source_start(&pc, err, errlen);
    return cam->preview ? 0 : -1;
}

int vg_camera_start(vg_camera *cam, char *err, size_t errlen) {
    vg_clock_init_live(&cam->clock, cam->media);
    if (start_preview(cam, err, errlen) < 0) return -1;
    publish(cam); /* the thread does not run yet */
    int rc = pthread_create(&cam->thread, NULL, camera_thread, cam);
    if (rc) {
        snprintf(err, errlen, "%s: cannot start a thread: %s", cam->media, strerror(rc));
        vg_preview_source_stop(cam->preview);
        cam->preview = NULL;
        return -1;
    }
    cam->started = 1;
    return 0;
}

void vg_camera_stop(vg_camera *cam, const char *close_reason) {
    pthread_mutex_lock(&cam->lock);
    if (!cam->close_reason) cam->close_reason = close_reason; /* the first stop's reason holds */
    atomic_store(&cam->stop, 1);
    pthread_cond_broadcast(&cam->wake);
    pthread_mutex_unlock(&cam->lock);
    vg_preview_source_refuse(cam->preview); /* a preview waiting in the rule's callback ends now */
}

void vg_camera_join(vg_camera *cam) {
    if (!cam->started) return;
    pthread_join(cam->thread, NULL);
    cam->started = 0;
    vg_preview_source_stop(cam->preview); /* nothing asks it any more */
    cam->preview = NULL;
}
