/* vg_camera.c — the per-camera pipeline. Owns the camera's ingest, decoder, clock, frame scaler, episode
 * book and script, and moves every decoded picture through them in order. */
#include "vg_camera.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/frame.h>

#include "vg_clock.h"
#include "vg_episode.h"
#include "vg_frame.h"
#include "vg_ingest.h"
#include "vg_log.h"
#include "vg_script.h"

struct vg_camera {
    vg_camera_config config;
    char *media;
    vg_sink *sink;
    vg_episode_book *book;
    vg_script *script;
    vg_frame_scaler *scaler;
    vg_clock clock;
    vg_camera_stats stats;
    int64_t last_ts;
    int64_t pace_wall_ms, pace_ts; /* realtime replay: the wall time of the first frame, and its ts */
};

static void emit_to_sink(void *ctx, const vg_version *version) {
    vg_camera *cam = ctx;
    cam->stats.versions_emitted++;
    if (version->is_first) cam->stats.episodes_opened++;
    if (cam->sink && vg_sink_put(cam->sink, version) < 0) {
        cam->stats.sink_errors++;
        vg_error(cam->media, "episode version could not be written to the %s sink", cam->sink->name);
    }
}

vg_camera *vg_camera_new(const vg_camera_config *config, vg_snowflake *ids, vg_sink *sink, char *err,
                         size_t errlen) {
    vg_camera *cam = calloc(1, sizeof *cam);
    cam->config = *config;
    cam->media = strdup(config->media);
    cam->config.media = cam->media;
    cam->sink = sink;
    cam->book = vg_book_new(cam->media, ids, emit_to_sink, cam);
    cam->scaler = vg_frame_scaler_new(config->analysis_width);
    vg_script_config sc = {
        .camera = cam->media, .path = config->script, .params_json = config->params_json,
        .budget_ms = config->budget_ms, .unsafe = config->unsafe, .jit = config->jit, .watch = config->watch,
    };
    cam->script = vg_script_load(&sc, cam->book, err, errlen);
    if (!cam->script) {
        vg_camera_free(cam);
        return NULL;
    }
    return cam;
}

void vg_camera_free(vg_camera *cam) {
    if (!cam) return;
    vg_script_free(cam->script);
    vg_book_free(cam->book);
    vg_frame_scaler_free(cam->scaler);
    free(cam->media);
    free(cam);
}

void vg_camera_get_stats(const vg_camera *cam, vg_camera_stats *out) { *out = cam->stats; }

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

/* One decoded picture: stamp it, scale its luma, hand it to the script. */
static int analyse(vg_camera *cam, AVFrame *picture) {
    cam->stats.frames_decoded++;
    vg_frame frame = {0};
    frame.ts = vg_clock_stamp(&cam->clock, picture->best_effort_timestamp);
    frame.clock = cam->clock.source;
    frame.keyframe = picture->key_frame;
    frame.index = cam->stats.frames_analysed;
    if (vg_frame_scaler_run(cam->scaler, picture, &frame) < 0) {
        vg_error(cam->media, "cannot convert pixel format %d to luma", picture->format);
        return -1;
    }
    cam->last_ts = frame.ts;
    cam->stats.frames_analysed++;
    if (cam->config.realtime) pace(cam, frame.ts);
    vg_script_poll_reload(cam->script); /* between two frames, never inside one */
    vg_script_on_frame(cam->script, &frame);
    return 0;
}

static int drain(vg_camera *cam, vg_decoder *dec, AVFrame *picture) {
    for (;;) {
        int rc = vg_decoder_receive(dec, picture);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
        if (rc < 0) return rc;
        analyse(cam, picture);
        av_frame_unref(picture);
    }
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
        rc = vg_decoder_send(dec, pkt);
        av_packet_unref(pkt);
        if (rc < 0 && rc != AVERROR_INVALIDDATA) break;
        if ((rc = drain(cam, dec, picture)) < 0 && rc != AVERROR_INVALIDDATA) break;
        rc = 0;
    }
    if (rc == AVERROR_EOF || rc == 0) {
        vg_decoder_send(dec, NULL);
        rc = drain(cam, dec, picture);
    }
    if (rc < 0) {
        char text[AV_ERROR_MAX_STRING_SIZE];
        av_strerror(rc, text, sizeof text);
        snprintf(err, errlen, "%s: %s", cam->config.url, text);
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
    vg_decoder *dec = vg_decoder_new(vg_ingest_codecpar(in), vg_ingest_time_base(in), &cam->config.decode,
                                     reason, sizeof reason);
    if (!dec) {
        snprintf(err, errlen, "%s: %s", cam->config.url, reason);
        vg_ingest_close(in);
        return -1;
    }
    vg_clock_init_file(&cam->clock, replay_start(cam, in), vg_ingest_time_base(in), vg_ingest_start_pts(in));
    int rc = decode_all(cam, in, dec, err, errlen);
    if (rc == 0 && cam->stats.frames_analysed == 0) {
        snprintf(err, errlen, "%s: no picture could be decoded", cam->config.url);
        rc = -1;
    }
    vg_script_on_stop(cam->script);
    vg_book_close_all(cam->book, cam->last_ts, "end_of_stream");
    vg_decoder_free(dec);
    vg_ingest_close(in);
    cam->stats.seconds = (double)(vg_monotonic_ms() - t0) / 1000.0;
    return rc;
}
