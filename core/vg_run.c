/* vg_run.c — `vigil run`: loads and validates the config, opens the sinks, starts one camera thread per
 * camera, waits for SIGTERM/SIGINT (or --duration), then stops every camera (on_stop runs, open episodes
 * close with payload.close_reason "shutdown"), flushes the sinks and reports. */
#include "vg_run.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/log.h>

#include "vg_camera.h"
#include "vg_config.h"
#include "vg_ingest.h"
#include "vg_log.h"
#include "vg_sink.h"
#include "vg_snowflake.h"
#include "vg_transport.h"

typedef struct run {
    vg_config *config;
    vg_snowflake ids;
    vg_sink *sink;
    vg_camera **cameras;
    int ncameras;
} run;

/* ---------- sinks ---------- */

/* Without Central and without output.file, versions are only logged. */
static int log_put(vg_sink *sink, const vg_version *v) {
    char id[VG_ID_STRLEN];
    vg_log(v->is_first || v->is_closing ? VG_LOG_INFO : VG_LOG_DEBUG, v->media, "episode %s %s at %lld",
           vg_id_format(v->episode_id, id), v->is_first ? "opened" : v->is_closing ? "closed" : "updated",
           (long long)v->updated_at);
    return 0;
}

static void log_close(vg_sink *sink) { free(sink); }

static vg_sink *log_sink_open(void) {
    vg_sink *sink = calloc(1, sizeof *sink);
    *sink = (vg_sink){.name = "log", .put = log_put, .close = log_close};
    return sink;
}

static vg_sink *open_central(const vg_config *c, char *err, size_t errlen) {
    char key[1024] = "", reason[400];
    if (c->central_api_key) {
        snprintf(key, sizeof key, "%s", c->central_api_key);
    } else if (vg_central_read_key_file(c->central_api_key_file, key, sizeof key, reason, sizeof reason) < 0) {
        snprintf(err, errlen, "central.api_key_file: %s", reason);
        return NULL;
    }
    vg_central_options o = {
        .url = c->central_url, .api_key = key, .spool_dir = c->spool_dir,
        .min_update_interval_ms = c->central_min_update_interval_ms ? c->central_min_update_interval_ms : -1,
        .drain_timeout_ms = c->central_flush_timeout_ms ? c->central_flush_timeout_ms : -1,
    };
    vg_sink *sink = vg_central_open(&o, reason, sizeof reason);
    explicit_bzero(key, sizeof key);
    if (!sink) snprintf(err, errlen, "central: %s", reason);
    return sink;
}

/* output.file (appended to) and/or Central; neither: the log. */
static vg_sink *open_sinks(const vg_config *c, char *err, size_t errlen) {
    char reason[400];
    vg_sink *file = NULL, *central = NULL;
    if (c->output_file && !(file = vg_sink_file_open(c->output_file, 1, reason, sizeof reason))) {
        snprintf(err, errlen, "output.file: %s", reason);
        return NULL;
    }
    if (c->central_url && !(central = open_central(c, err, errlen))) {
        vg_sink_close(file);
        return NULL;
    }
    if (file && central) return vg_sink_tee(file, central);
    if (file || central) return file ? file : central;
    vg_info(NULL, "no central and no output.file: episodes are only logged");
    return log_sink_open();
}

/* ---------- cameras ---------- */

static vg_camera *make_camera(run *r, const vg_config_camera *cc, char *err, size_t errlen) {
    vg_camera_config config = {
        .media = cc->media, .url = cc->url, .script = cc->script, .params_json = cc->params_json,
        .zones_json = cc->zones_json, .analysis_width = cc->analysis_width, .fps = cc->fps,
        .budget_ms = cc->budget_ms, .start_ms = INT64_MIN, .transport = cc->transport,
        .stall_timeout_ms = cc->stall_timeout_ms, .rtcp_wait_ms = cc->rtcp_wait_ms,
        .decode = {.mode = cc->decode, .threads = cc->decoder_threads, .skip_loop_filter = cc->skip_loop_filter},
    };
    return vg_camera_new(&config, &r->ids, r->sink, err, errlen);
}

static int start_cameras(run *r) {
    char err[1024];
    r->cameras = calloc((size_t)r->config->ncameras, sizeof *r->cameras);
    for (int i = 0; i < r->config->ncameras; i++) {
        const vg_config_camera *cc = &r->config->cameras[i];
        if (!(r->cameras[i] = make_camera(r, cc, err, sizeof err))) {
            fprintf(stderr, "vigil: cameras[%d] (%s): %s\n", i, cc->media, err);
            return -1;
        }
        r->ncameras++;
    }
    for (int i = 0; i < r->ncameras; i++) {
        if (vg_camera_start(r->cameras[i], err, sizeof err) < 0) {
            fprintf(stderr, "vigil: %s\n", err);
            return -1;
        }
    }
    return 0;
}

static void report(const char *media, const vg_camera_stats *st) {
    vg_info(media, "%ld frames, %ld connections, %ld lost; %ld episodes, %ld versions%s", st->frames_analysed,
            st->connects, st->disconnects, st->episodes_opened, st->versions_emitted,
            st->sink_errors ? " (some could not be written)" : "");
}

/* Stops every camera at once, then waits for each: shutdowns run side by side. */
static void stop_cameras(run *r) {
    for (int i = 0; i < r->ncameras; i++) vg_camera_stop(r->cameras[i], "shutdown");
    for (int i = 0; i < r->ncameras; i++) {
        vg_camera_stats st;
        vg_camera_join(r->cameras[i]);
        vg_camera_get_stats(r->cameras[i], &st);
        report(r->config->cameras[i].media, &st);
        vg_camera_free(r->cameras[i]);
    }
    free(r->cameras);
    r->cameras = NULL;
    r->ncameras = 0;
}

/* ---------- signals ---------- */

/* Blocked in every thread (they inherit the mask); the main thread takes them with sigtimedwait. */
static void block_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void wait_for_stop(const sigset_t *set, double duration_s) {
    int64_t deadline = duration_s > 0 ? vg_monotonic_ms() + (int64_t)(duration_s * 1000) : INT64_MAX;
    for (;;) {
        int64_t left = deadline - vg_monotonic_ms();
        if (left <= 0) {
            vg_info(NULL, "--duration %.1f s over: stopping", duration_s);
            return;
        }
        if (left > 3600000) left = 3600000;
        struct timespec timeout = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
        int sig = sigtimedwait(set, NULL, &timeout);
        if (sig == SIGINT || sig == SIGTERM) {
            vg_info(NULL, "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            return;
        }
        if (sig == SIGHUP) vg_info(NULL, "SIGHUP: config reload is not implemented yet; ignored");
    }
}

/* ---------- the command ---------- */

static int load_config(const vg_run_options *o, run *r) {
    vg_config_errors errors = {0};
    r->config = vg_config_load(o->config_path, &errors);
    for (int i = 0; i < errors.count; i++) fprintf(stderr, "vigil: %s: %s\n", o->config_path, errors.lines[i]);
    vg_config_errors_free(&errors);
    if (!r->config) return -1;
    if (r->config->has_log_level && !o->log_level_given) vg_log_set_level(r->config->log_level);
    av_log_set_level(vg_log_get_level() >= VG_LOG_DEBUG ? AV_LOG_WARNING : AV_LOG_QUIET);
    return 0;
}

int vg_run(const vg_run_options *o) {
    run r = {0};
    char err[512];
    sigset_t signals;
    block_signals(&signals);
    if (load_config(o, &r) < 0) return 2;
    vg_ingest_global_init();
    vg_snowflake_init(&r.ids, (unsigned)r.config->machine_id, NULL, NULL);
    int status = 1;
    if (!(r.sink = open_sinks(r.config, err, sizeof err))) {
        fprintf(stderr, "vigil: %s: %s\n", o->config_path, err);
    } else if (start_cameras(&r) == 0) {
        vg_info(NULL, "running %d camera%s (machine id %d)", r.ncameras, r.ncameras == 1 ? "" : "s",
                r.config->machine_id);
        wait_for_stop(&signals, o->duration_s);
        status = 0;
    }
    stop_cameras(&r);
    vg_sink_close(r.sink);
    vg_snowflake_destroy(&r.ids);
    vg_config_free(r.config);
    return status;
}
