/* vg_check.c — `vigil check`: a rule against synthetic frames. Owns the synthetic picture (grey, with a
 * white square crossing it) and the loop that feeds it to the rule through the same frame scaler, script
 * host and episode book a camera uses. */
#include <stddef.h>

#include "vg_check.h"

#include <string.h>
#include <time.h>

#include <libavutil/frame.h>

#include "vg_clock.h" /* vg_clock_source */
#include "vg_episode.h"
#include "vg_frame.h"
#include "vg_script.h"
#include "vg_snowflake.h"
#include "vg_time.h"

#define CHECK_W 640
#define CHECK_H 360

static void count_version(void *ctx, const vg_version *v) {
    vg_check_result *r = ctx;
    r->versions++;
    if (v->is_first) r->episodes++;
}

/* Grey picture; from frame 10 on, an 80 px white square moving 8 px per frame. */
static void paint(AVFrame *pic, int index) {
    for (int p = 0; p < 3; p++) {
        int h = p ? CHECK_H / 2 : CHECK_H;
        for (int y = 0; y < h; y++) memset(pic->data[p] + (size_t)y * pic->linesize[p], 128, p ? CHECK_W / 2 : CHECK_W);
    }
    if (index < 10) return;
    int x0 = ((index - 10) * 8) % (CHECK_W - 80);
    for (int y = 140; y < 220; y++) memset(pic->data[0] + (size_t)y * pic->linesize[0] + x0, 235, 80);
}

static void feed(vg_script *script, vg_frame_scaler *scaler, AVFrame *pic, int frames, vg_check_result *out) {
    int64_t start = vg_realtime_ms();
    for (int i = 0; i < frames; i++) {
        paint(pic, i);
        vg_frame frame = {.ts = start + i * 40, .index = i, .clock = VG_CLOCK_LOCAL, .keyframe = i == 0};
        if (vg_frame_scaler_describe(scaler, pic, &frame) < 0) break;
        struct timespec t0 = vg_now(CLOCK_MONOTONIC);
        vg_script_on_frame(script, &frame);
        double ms = (double)vg_elapsed_ns(CLOCK_MONOTONIC, &t0) / 1e6;
        out->mean_ms += ms / frames;
        if (ms > out->max_ms) out->max_ms = ms;
        out->frames++;
    }
}

int vg_check_rule(const char *path, const char *params_json, int frames, int analysis_width, double budget_ms,
                  vg_check_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    vg_snowflake ids;
    vg_snowflake_init(&ids, 0, NULL, NULL);
    vg_episode_book *book = vg_book_new("check", &ids, count_version, out);
    vg_script_config config = {.camera = "check", .path = path, .params_json = params_json, .budget_ms = budget_ms};
    vg_script *script = vg_script_load(&config, book, err, errlen);
    int rc = -1;
    if (script) {
        vg_frame_scaler *scaler = vg_frame_scaler_new(analysis_width);
        AVFrame *pic = av_frame_alloc();
        pic->format = AV_PIX_FMT_YUV420P;
        pic->width = CHECK_W;
        pic->height = CHECK_H;
        if (av_frame_get_buffer(pic, 0) == 0) {
            feed(script, scaler, pic, frames, out);
            vg_script_on_stop(script);
            vg_script_stats st;
            vg_script_get_stats(script, &st);
            out->errors = st.errors;
            out->budget_cuts = st.budget_cuts;
            rc = st.errors ? -1 : 0;
        }
        av_frame_free(&pic);
        vg_frame_scaler_free(scaler);
        vg_script_free(script);
    }
    vg_book_free(book);
    vg_snowflake_destroy(&ids);
    return rc;
}
