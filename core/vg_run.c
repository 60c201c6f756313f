/* vg_run.c — `vigil run`: loads and validates the config, opens the sinks, runs the config's cameras (one
 * thread each), and then serves signals until SIGTERM/SIGINT (or --duration): SIGHUP re-reads the config and
 * reconciles the running cameras with it (added ones start, removed ones stop, changed ones restart, the rest
 * keep running). At the end every camera stops (on_stop runs, open episodes close with payload.close_reason
 * "shutdown"), Central gets a bounded time to take what is queued, the rest stays in the spool.
 *
 * The running cameras are one list whatever their source: the config file, or (analytics-node mode) the
 * streams Central hands out; reconcile() is the one way to change it. */
#include "vg_run.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libavutil/log.h>

#include "vg_camera.h"
#include "vg_config.h"
#include "vg_ingest.h"
#include "vg_log.h"
#include "vg_external.h"
#include "vg_file.h" /* vg_key_file_read */
#include "vg_metrics.h"
#include "vg_node.h"
#include "vg_sink.h"
#include "vg_snowflake.h"
#include "vg_store.h"
#include "vg_time.h"
#include "vg_transport.h"

#define TICK_MS 1000 /* the main thread wakes at least this often (signals wake it at once) */
#define EXTERNAL_RETRY_MS 30000 /* Central's cameras that could not start are tried again this often */

/* Where a running camera's settings came from. */
typedef enum { FROM_CONFIG, FROM_EXTERNAL } camera_source;

static const char *source_name(camera_source source) {
    return source == FROM_CONFIG ? "the config file" : "Central's config_external";
}

typedef struct live_camera {
    vg_config_camera config; /* its own copy: what it runs with, compared at every reconcile */
    camera_source source;
    vg_camera *camera;
} live_camera;

typedef struct run {
    const vg_run_options *options;
    vg_config *config;             /* as loaded at start: node.*, central.* and output.* are read only then */
    vg_snowflake ids;
    vg_sink *sink;
    vg_sink *central;              /* the Central sink inside sink, or NULL */
    pthread_mutex_t cameras_lock;  /* the list: changed by the main thread only, read by other threads */
    live_camera *cameras;
    int ncameras;
    vg_metrics *metrics;           /* node.metrics, or NULL */
    double start_time_s;
    /* analytics-node mode */
    vg_config *cameras_config;     /* what the cameras run by: config at start, the last good reload after */
    vg_store *store;               /* the episodes Central pulls (node.listen), or NULL */
    vg_node *node;                 /* the node API on node.listen, or NULL */
    vg_external *external;         /* node.config_external, or NULL */
    int64_t external_retry_ms;     /* when to try Central's cameras that could not start again (0: none) */
} run;

/* ---------- sinks ---------- */

/* The config's central section, opened by vg_central_open (errors named "central..."). */
static vg_sink *open_central_from_config(const vg_config *c, char *err, size_t errlen) {
    vg_central_options o = {
        .url = c->central_url, .api_key = c->central_api_key, .api_key_file = c->central_api_key_file,
        .named = "central", .spool_dir = c->spool_dir, .min_update_interval_ms = c->central_min_update_interval_ms,
        .drain_timeout_ms = c->central_flush_timeout_ms,
    };
    return vg_central_open(&o, err, errlen);
}

/* output.file (appended to), Central and (analytics-node mode) the episode store, those configured, and always
 * the log (a line per episode opened and closed). *central: the Central sink inside (for its counters), or NULL. */
static vg_sink *open_sinks(const vg_config *c, vg_sink *store, vg_sink **central_out, char *err, size_t errlen) {
    char reason[400];
    vg_sink *file = NULL, *central = NULL;
    if (c->output_file && !(file = vg_sink_file_open(c->output_file, 1, reason, sizeof reason))) {
        snprintf(err, errlen, "output.file: %s", reason);
        return NULL;
    }
    vg_file_shape shape = {.final_only = c->output_final_only, .previews_dir = c->output_previews_dir};
    if (file && (shape.final_only || shape.previews_dir) && !(file = vg_sink_shape(file, &shape, reason, sizeof reason))) {
        snprintf(err, errlen, "output.previews_dir: %s", reason);
        return NULL;
    }
    if (c->central_url && !(central = open_central_from_config(c, err, errlen))) {
        vg_sink_close(file);
        return NULL;
    }
    *central_out = central;
    vg_sink *sink = vg_sink_log_open();
    if (!file && !central && !store) vg_info(NULL, "no central and no output.file: episodes are only logged");
    if (file) sink = vg_sink_tee(sink, file);
    if (central) sink = vg_sink_tee(sink, central);
    return store ? vg_sink_tee(sink, store) : sink;
}

/* ---------- cameras ---------- */

static vg_camera *make_camera(run *r, const vg_config_camera *cc, char *err, size_t errlen) {
    vg_camera_config config = {
        .media = cc->media, .url = cc->url, .script = cc->script, .params_json = cc->params_json,
        .zones_json = cc->zones_json, .jit = cc->jit, .unsafe = cc->unsafe, .start_ms = INT64_MIN,
        .overlay = cc->overlay, .preview_url = cc->preview_url, .settings = cc->settings,
    };
    return vg_camera_new(&config, &r->ids, r->sink, err, errlen);
}

static live_camera *find_camera(run *r, const char *media) {
    for (int i = 0; i < r->ncameras; i++)
        if (strcmp(r->cameras[i].config.media, media) == 0) return &r->cameras[i];
    return NULL;
}

static const vg_config_camera *find_wanted(const vg_config_camera *wanted, int nwanted, const char *media) {
    for (int i = 0; i < nwanted; i++)
        if (strcmp(wanted[i].media, media) == 0) return &wanted[i];
    return NULL;
}

static void report(const char *media, const vg_camera_stats *st) {
    char previews[160] = "";
    if (st->previews_main || st->previews_fallback || st->preview.connects) /* a camera with preview_url */
        snprintf(previews, sizeof previews, "; previews: %ld from preview_url (%ld pictures decoded for them), %ld "
                 "from the analysed stream", st->previews_main, st->preview.decoded, st->previews_fallback);
    vg_info(media, "%ld frames, %ld connections, %ld lost; %ld episodes, %ld versions%s%s", st->frames_analysed,
            st->connects, st->disconnects, st->episodes_opened, st->versions_emitted,
            st->sink_errors ? " (some could not be written)" : "", previews);
}

/* What a reconcile does, worked out before anything stops: new cameras are loaded first, so a rule that
 * does not load leaves a changed camera running as it was. */
typedef struct change_plan {
    live_camera *stopping;  /* taken out of the list; each with its close reason */
    const char **reasons;
    int nstopping;
    live_camera *starting;  /* loaded, not started */
    int nstarting;
    int failed, added, restarted;
} change_plan;

/* Loads a camera for settings cc into the plan's starting list; -1 (logged) when its rule does not load.
 * The camera borrows the strings of its own copy of the settings, never the caller's. */
static int plan_start(run *r, change_plan *p, const vg_config_camera *cc, camera_source source) {
    char err[1024];
    live_camera *lc = &p->starting[p->nstarting];
    vg_config_camera_copy(&lc->config, cc);
    lc->source = source;
    if (!(lc->camera = make_camera(r, &lc->config, err, sizeof err))) {
        vg_error(cc->media, "cannot start: %s", err);
        vg_config_camera_clear(&lc->config);
        p->failed++;
        return -1;
    }
    p->nstarting++;
    return 0;
}

static void plan_stop(change_plan *p, const live_camera *lc, const char *reason) {
    p->reasons[p->nstopping] = reason;
    p->stopping[p->nstopping++] = *lc;
}

static void plan_changes(run *r, change_plan *p, camera_source source, const vg_config_camera *wanted,
                         int nwanted) {
    for (int i = 0; i < r->ncameras; i++) {
        live_camera *lc = &r->cameras[i];
        if (lc->source != source) continue;
        const vg_config_camera *w = find_wanted(wanted, nwanted, lc->config.media);
        if (!w) {
            vg_info(lc->config.media, "no longer in %s: stopping", source_name(source));
            plan_stop(p, lc, "removed");
        } else if (!vg_config_camera_same(&lc->config, w)) {
            vg_info(lc->config.media, "settings changed: restarting");
            if (plan_start(r, p, w, source) == 0) {
                plan_stop(p, lc, "restart");
                p->restarted++;
            } else {
                vg_warn(lc->config.media, "keeps running with its previous settings");
            }
        }
    }
    for (int i = 0; i < nwanted; i++) {
        const live_camera *running = find_camera(r, wanted[i].media);
        if (running && running->source != source) {
            vg_error(wanted[i].media, "also comes from %s: ignored there, the camera from %s keeps running",
                     source_name(source), source_name(running->source));
        } else if (!running && plan_start(r, p, &wanted[i], source) == 0) {
            p->added++;
            if (r->ncameras > 0) vg_info(wanted[i].media, "new in %s: starting", source_name(source));
        }
    }
}

/* Takes the stopping cameras out of the list (under the lock, so readers never see a camera being freed). */
static void remove_stopping(run *r, const change_plan *p) {
    pthread_mutex_lock(&r->cameras_lock);
    int kept = 0;
    for (int i = 0; i < r->ncameras; i++) {
        int stops = 0;
        for (int j = 0; j < p->nstopping && !stops; j++) stops = p->stopping[j].camera == r->cameras[i].camera;
        if (!stops) r->cameras[kept++] = r->cameras[i];
    }
    r->ncameras = kept;
    pthread_mutex_unlock(&r->cameras_lock);
}

/* Stops them all at once, then waits for each: shutdowns run side by side. */
static void stop_and_free(live_camera *cams, const char **reasons, int n) {
    for (int i = 0; i < n; i++) vg_camera_stop(cams[i].camera, reasons[i]);
    for (int i = 0; i < n; i++) {
        vg_camera_stats st;
        vg_camera_join(cams[i].camera);
        vg_camera_get_stats(cams[i].camera, &st);
        report(cams[i].config.media, &st);
        vg_camera_free(cams[i].camera);
        vg_config_camera_clear(&cams[i].config);
    }
}

static void start_planned(run *r, change_plan *p) {
    char err[512];
    for (int i = 0; i < p->nstarting; i++) {
        live_camera *lc = &p->starting[i];
        if (vg_camera_start(lc->camera, err, sizeof err) < 0) {
            vg_error(lc->config.media, "%s", err);
            vg_camera_free(lc->camera);
            vg_config_camera_clear(&lc->config);
            p->failed++;
            continue;
        }
        pthread_mutex_lock(&r->cameras_lock);
        r->cameras = realloc(r->cameras, sizeof *r->cameras * (size_t)(r->ncameras + 1));
        r->cameras[r->ncameras++] = *lc;
        pthread_mutex_unlock(&r->cameras_lock);
    }
}

/* Makes the running cameras of `source` what `wanted` says, matched by media name: a new name starts, a
 * missing one stops (its open episodes close with payload.close_reason "removed"), a changed one (any setting:
 * url, script, params, zones, modes, ...) restarts (its episodes close with "restart"), the others are not
 * touched. A name already running from the other source is refused. The one way the camera list changes:
 * at start, on SIGHUP, and for the streams Central hands out. Returns how many cameras could not start. */
static int reconcile(run *r, camera_source source, const vg_config_camera *wanted, int nwanted) {
    change_plan p = {0};
    int was_running = r->ncameras > 0;
    size_t most = (size_t)(r->ncameras + nwanted) + 1;
    p.stopping = calloc(most, sizeof *p.stopping);
    p.reasons = calloc(most, sizeof *p.reasons);
    p.starting = calloc(most, sizeof *p.starting);
    plan_changes(r, &p, source, wanted, nwanted);
    remove_stopping(r, &p);
    stop_and_free(p.stopping, p.reasons, p.nstopping);
    start_planned(r, &p);
    if (was_running && (p.nstarting || p.nstopping || p.failed))
        vg_info(NULL, "cameras from %s: %d added, %d removed, %d restarted, %d failed; %d running in all",
                source_name(source), p.added, p.nstopping - p.restarted, p.restarted, p.failed, r->ncameras);
    free(p.stopping);
    free(p.reasons);
    free(p.starting);
    return p.failed;
}

static void stop_all_cameras(run *r) {
    pthread_mutex_lock(&r->cameras_lock);
    live_camera *cams = r->cameras;
    int n = r->ncameras;
    r->cameras = NULL;
    r->ncameras = 0;
    pthread_mutex_unlock(&r->cameras_lock);
    const char **reasons = calloc((size_t)n + 1, sizeof *reasons);
    for (int i = 0; i < n; i++) reasons[i] = "shutdown";
    stop_and_free(cams, reasons, n);
    free(reasons);
    free(cams);
}

/* ---------- metrics ---------- */

/* On an HTTP thread: the counters of every running camera (each read under its own lock) and Central's. */
static void collect_metrics(void *ctx, vg_metrics_snapshot *out) {
    run *r = ctx;
    pthread_mutex_lock(&r->cameras_lock);
    out->cameras = calloc((size_t)r->ncameras + 1, sizeof *out->cameras);
    for (int i = 0; i < r->ncameras; i++) {
        snprintf(out->cameras[i].media, sizeof out->cameras[i].media, "%s", r->cameras[i].config.media);
        vg_camera_get_stats(r->cameras[i].camera, &out->cameras[i].stats);
    }
    out->ncameras = r->ncameras;
    pthread_mutex_unlock(&r->cameras_lock);
    out->has_central = r->central != NULL;
    if (r->central) vg_central_get_stats(r->central, &out->central);
    out->start_time_s = r->start_time_s;
}

/* The address as a URL: the port it really got (node.metrics may say 0), "*" and "" as 0.0.0.0. */
static void log_metrics_address(const char *listen, int port) {
    const char *colon = strrchr(listen, ':');
    int hostlen = (int)(colon - listen);
    const char *host = listen;
    if (hostlen == 0 || (hostlen == 1 && *listen == '*')) host = "0.0.0.0", hostlen = 7;
    vg_info(NULL, "metrics on http://%.*s:%d/metrics (health: /healthz)", hostlen, host, port);
}

static int start_metrics(run *r) {
    char err[512];
    if (!r->config->metrics_listen) return 0;
    if (!(r->metrics = vg_metrics_start(r->config->metrics_listen, collect_metrics, r, err, sizeof err))) {
        fprintf(stderr, "vigil: %s: node.metrics: %s\n", r->options->config_path, err);
        return -1;
    }
    log_metrics_address(r->config->metrics_listen, vg_metrics_port(r->metrics));
    return 0;
}

/* ---------- analytics-node mode ---------- */

/* "connecting" until the first session came up (or the first attempt failed), then "up" or "down". */
static const char *stream_state(const vg_camera_stats *st) {
    if (st->connected) return "up";
    return st->connects == 0 && st->attempts <= 1 ? "connecting" : "down";
}

/* On an HTTP thread: GET /streams. */
static void list_streams(void *ctx, vg_node_emit emit, void *emit_ctx) {
    run *r = ctx;
    pthread_mutex_lock(&r->cameras_lock);
    for (int i = 0; i < r->ncameras; i++) {
        const live_camera *lc = &r->cameras[i];
        vg_camera_stats st;
        vg_camera_get_stats(lc->camera, &st);
        vg_node_stream s = {
            .name = lc->config.media, .url = lc->config.url, .script = lc->config.script,
            .source = lc->source == FROM_CONFIG ? "config" : "central", .state = stream_state(&st),
            .clock = vg_clock_source_name(st.clock), .frames = st.frames_analysed, .connects = st.connects,
            .disconnects = st.disconnects, .episodes_open = st.episodes_open, .last_frame_at = st.last_ts,
        };
        emit(emit_ctx, &s);
    }
    pthread_mutex_unlock(&r->cameras_lock);
}

static int running_from_config(run *r, const char *media) {
    const live_camera *lc = find_camera(r, media);
    return lc && lc->source == FROM_CONFIG;
}

/* Central's cameras (the last list it gave) made the running ones; a name the config file has is the
 * file's. A camera that could not start is tried again after EXTERNAL_RETRY_MS. */
static void apply_external(run *r, const vg_config *config) {
    int n, kept = 0;
    vg_config_camera *wanted = vg_external_cameras(r->external, config, &n);
    for (int i = 0; i < n; i++) { /* a reload in progress: the file's camera still runs until it is stopped */
        if (running_from_config(r, wanted[i].media)) vg_config_camera_clear(&wanted[i]);
        else wanted[kept++] = wanted[i];
    }
    int failed = reconcile(r, FROM_EXTERNAL, wanted, kept);
    r->external_retry_ms = failed ? vg_monotonic_ms() + EXTERNAL_RETRY_MS : 0;
    vg_external_cameras_free(wanted, kept);
}

/* On the main thread's tick: the stream list when it is due (see vg_external.c on why here). */
static void poll_external(run *r) {
    if (!r->external || vg_monotonic_ms() < vg_external_due_ms(r->external)) return;
    int changed = vg_external_fetch(r->external);
    int retry = r->external_retry_ms && vg_monotonic_ms() >= r->external_retry_ms;
    if (changed == 1 || (changed == 0 && retry)) apply_external(r, r->cameras_config);
}

/* {spool_dir}/episodes: the newest version of every episode, for Central to pull. */
static int open_store(run *r, char *err, size_t errlen) {
    char dir[4096], reason[400];
    if (!r->config->node_listen) return 0;
    if (mkdir(r->config->spool_dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "node.spool_dir: %s: %s", r->config->spool_dir, strerror(errno));
        return -1;
    }
    snprintf(dir, sizeof dir, "%s/episodes", r->config->spool_dir);
    if (!(r->store = vg_store_open(dir, r->config->node_keep_episodes_ms, reason, sizeof reason))) {
        snprintf(err, errlen, "node.spool_dir: episode store %s", reason);
        return -1;
    }
    vg_info(NULL, "episode store %s: %ld episodes kept for %.1f h", dir, vg_store_count(r->store),
            (double)r->config->node_keep_episodes_ms / 3600000.0);
    return 0;
}

/* The node API on node.listen (its key from node.api_key or node.api_key_file), and the config_external
 * source; -1 with err when one cannot start. */
static int start_node(run *r, char *err, size_t errlen) {
    const vg_config *c = r->config;
    char key[1024] = "", reason[400];
    if (c->node_api_key) snprintf(key, sizeof key, "%s", c->node_api_key);
    else if (c->node_api_key_file && vg_key_file_read(c->node_api_key_file, key, sizeof key, reason,
                                                       sizeof reason) < 0) {
        snprintf(err, errlen, "node.api_key_file: %s", reason);
        return -1;
    }
    if (c->node_listen) {
        vg_node_options o = {.listen = c->node_listen, .api_key = key, .store = r->store,
                             .list_streams = list_streams, .streams_ctx = r};
        r->node = vg_node_start(&o, err, errlen);
        if (r->node) vg_info(NULL, "node API on %s (port %d)", c->node_listen, vg_node_port(r->node));
    }
    explicit_bzero(key, sizeof key);
    if (c->node_listen && !r->node) return -1;
    if (!c->config_external) return 0;
    vg_external_options o = {.url = c->config_external, .key = c->config_external_key, .rules = c->stream_scripts,
                             .nrules = c->nstream_scripts, .interval_ms = c->config_external_interval_ms};
    if (!(r->external = vg_external_new(&o, err, errlen))) return -1;
    vg_info(NULL, "streams from %s every %.1f s", vg_external_url(r->external), o.interval_ms / 1000.0);
    return 0;
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

static void apply_log_level(const vg_run_options *o, const vg_config *c) {
    if (!o->log_level_given) vg_log_set_level(c->has_log_level ? c->log_level : VG_LOG_INFO);
    av_log_set_level(vg_log_get_level() >= VG_LOG_DEBUG ? AV_LOG_WARNING : AV_LOG_QUIET);
}

/* SIGHUP: the config file again. An invalid one changes nothing; settings read only at start are kept (and
 * said so); node.log_level and the cameras take effect. */
static void reload(run *r) {
    const char *path = r->options->config_path;
    vg_config_errors errors = {0};
    vg_config *next = vg_config_load(path, &errors);
    if (!next) {
        vg_error(NULL, "SIGHUP: %s is not valid (%d problem%s); the running cameras stay as they are", path,
                 errors.count, errors.count == 1 ? "" : "s");
        for (int i = 0; i < errors.count; i++) vg_error(NULL, "SIGHUP: %s: %s", path, errors.lines[i]);
        vg_config_errors_free(&errors);
        return;
    }
    vg_info(NULL, "SIGHUP: reloading %s", path);
    vg_config_errors fixed = {0};
    vg_config_fixed_changes(r->config, next, &fixed);
    for (int i = 0; i < fixed.count; i++)
        vg_warn(NULL, "SIGHUP: %s; it needs a restart: ignored, the running value stays", fixed.lines[i]);
    vg_config_errors_free(&fixed);
    apply_log_level(r->options, next);
    if (r->external) apply_external(r, next); /* names the file takes now stop being Central's first */
    reconcile(r, FROM_CONFIG, next->cameras, next->ncameras);
    if (r->external) apply_external(r, next); /* names it gave up go to Central's, with the new defaults */
    if (r->cameras_config != r->config) vg_config_free(r->cameras_config);
    r->cameras_config = next;
}

/* The main thread's loop: signals, and a tick at least every TICK_MS for work done regularly (analytics-node
 * mode polls Central's config_external from here). Returns on SIGTERM/SIGINT or at the end of --duration. */
static void serve(run *r, const sigset_t *set) {
    double duration_s = r->options->duration_s;
    int64_t deadline = duration_s > 0 ? vg_monotonic_ms() + (int64_t)(duration_s * 1000) : INT64_MAX;
    for (;;) {
        int64_t left = deadline - vg_monotonic_ms();
        if (left <= 0) {
            vg_info(NULL, "--duration %.1f s over: stopping", duration_s);
            return;
        }
        int64_t wait = left < TICK_MS ? left : TICK_MS;
        if (r->external) {
            int64_t due = vg_external_due_ms(r->external) - vg_monotonic_ms();
            wait = due < 0 ? 0 : due < wait ? due : wait;
        }
        struct timespec timeout = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        int sig = sigtimedwait(set, NULL, &timeout);
        if (sig == SIGINT || sig == SIGTERM) {
            vg_info(NULL, "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            return;
        }
        if (sig == SIGHUP) reload(r);
        poll_external(r);
    }
}

/* ---------- the command ---------- */

static int load_config(const vg_run_options *o, run *r) {
    vg_config_errors errors = {0};
    r->config = vg_config_load(o->config_path, &errors);
    for (int i = 0; i < errors.count; i++) fprintf(stderr, "vigil: %s: %s\n", o->config_path, errors.lines[i]);
    vg_config_errors_free(&errors);
    if (!r->config) return -1;
    apply_log_level(o, r->config);
    return 0;
}

/* Stops ingest first (every camera, episodes closed), then gives Central flush_timeout_ms to take what is
 * queued (in vg_sink_close); what it did not take stays in the spool for the next start or `vigil flush`. */
static void shut_down(run *r) {
    int64_t t0 = vg_monotonic_ms();
    stop_all_cameras(r);
    vg_node_stop(r->node); /* ends long polls; the closing versions are in the store for the next start */
    r->node = NULL;
    vg_external_free(r->external);
    r->external = NULL;
    vg_metrics_stop(r->metrics); /* before the sink: it reads Central's counters */
    r->metrics = NULL;
    vg_sink_close(r->sink);
    r->sink = r->central = NULL;
    vg_store_close(r->store); /* not closed by the sink: the node reads it to the end */
    r->store = NULL;
    vg_info(NULL, "stopped in %.1f s", (double)(vg_monotonic_ms() - t0) / 1000.0);
}

/* The sinks, the node API, then the metrics endpoint; -1 when one could not start (said on stderr). */
static int start_outputs(run *r) {
    char err[512];
    if (open_store(r, err, sizeof err) < 0 ||
        !(r->sink = open_sinks(r->config, r->store ? vg_store_sink(r->store) : NULL, &r->central, err, sizeof err)) ||
        start_node(r, err, sizeof err) < 0) {
        fprintf(stderr, "vigil: %s: %s\n", r->options->config_path, err);
        return -1;
    }
    return start_metrics(r);
}

/* The config's cameras; -1 when one of them could not start: vigil refuses to run a partial config. */
static int start_cameras(run *r) {
    if (reconcile(r, FROM_CONFIG, r->config->cameras, r->config->ncameras) > 0) {
        fprintf(stderr, "vigil: %s: not every camera could start (see above)\n", r->options->config_path);
        return -1;
    }
    vg_info(NULL, "running %d camera%s (machine id %d)", r->ncameras, r->ncameras == 1 ? "" : "s",
            r->config->machine_id);
    return 0;
}

int vg_run(const vg_run_options *o) {
    run r = {.options = o};
    if (load_config(o, &r) < 0) return 2; /* before blocking signals: SIGTERM ends a start that waits */
    sigset_t signals;
    block_signals(&signals); /* before the first thread: they all inherit the mask */
    vg_ingest_global_init();
    vg_snowflake_init(&r.ids, (unsigned)r.config->machine_id, NULL, NULL);
    pthread_mutex_init(&r.cameras_lock, NULL);
    r.start_time_s = (double)vg_realtime_ms() / 1000.0;
    r.cameras_config = r.config;
    int status = 1;
    if (start_outputs(&r) == 0 && start_cameras(&r) == 0) {
        serve(&r, &signals);
        status = 0;
    }
    shut_down(&r);
    pthread_mutex_destroy(&r.cameras_lock);
    vg_snowflake_destroy(&r.ids);
    if (r.cameras_config != r.config) vg_config_free(r.cameras_config);
    vg_config_free(r.config);
    return status;
}
