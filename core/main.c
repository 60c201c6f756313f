/* main.c — the vigil command line: replay a file through a rule, run a config's cameras, check a rule,
 * print the version. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "vg_camera.h"
#include "vg_check.h"
#include "vg_config.h"
#include "vg_log.h"
#include "vg_report.h"
#include "vg_run.h"
#include "vg_snowflake.h"
#include "vg_time.h"
#include "vg_transport.h"

static const char *USAGE =
    "usage: vigil replay FILE --script PATH [options]   a recorded file through a rule (develop rules offline)\n"
    "       vigil run CONFIG.json [options]             every camera of a config until SIGTERM\n"
    "       vigil check SCRIPT [options]                compile a rule and run it on synthetic frames\n"
    "       vigil flush --central URL --spool DIR ...   deliver what a spool holds to Central\n"
    "       vigil version\n"
    "`vigil COMMAND --help` explains a command's options; docs/ has the rest (getting-started.md first).\n";

/* Each command's help: every option explained (`vigil COMMAND --help`, `-h`). */
static const char *HELP_REPLAY =
    "usage: vigil replay FILE --script PATH [options]\n"
    "Plays FILE (any container FFmpeg reads) through the rule and writes each episode version as one JSON line.\n"
    "  --script PATH           the rule (.lua)\n"
    "  --params JSON           the rule's vigil.params, a JSON object\n"
    "  --media NAME            the episodes' media (default: FILE's name without directory and extension)\n"
    "  --start UNIX_MS         the first frame's time (default: the file's creation_time, else now)\n"
    "  --out PATH              where versions go, one JSON line each; - is stdout (the default without\n"
    "                          --central or --report)\n"
    "  --versions all|final    --out gets every version (default) or each episode's last one only\n"
    "  --previews DIR          --out's previews as JPEG files in DIR, the lines naming them (preview_file,\n"
    "                          frame_preview_file) instead of carrying base64\n"
    "  --report DIR            also write DIR/index.html: a timeline and every episode with its previews\n"
    "  --overlay OUT.mp4|DIR   the video with what the rule drew (zones, lines, boxes), or a JPEG per frame\n"
    "  --central URL           also send versions to Flussonic Central (PUT /central/api/v3/episodes/ID)\n"
    "  --api-key KEY           Central's key (Bearer)\n"
    "  --api-key-file FILE     read the key from FILE (central.conf's API_KEY= line, or the key alone)\n"
    "  --spool DIR             where versions wait for Central (default ~/.local/state/vigil/spool)\n"
    "  --min-update-interval-ms N  versions of one episode at most this often to Central (0 = no limit;\n"
    "                          default " VG_STR(VG_CENTRAL_MIN_UPDATE_INTERVAL_MS) ")\n"
    "  --machine-id N          the episode ids' machine id, 0..1023 (default 0)\n"
    "  --analysis-width N      width of the picture the rule analyses, "
    VG_STR(VG_ANALYSIS_WIDTH_MIN) ".." VG_STR(VG_ANALYSIS_WIDTH_MAX) " (default " VG_STR(VG_ANALYSIS_WIDTH_DEFAULT) ")\n"
    "  --budget-ms N           CPU time one callback may take, "
    VG_STR(VG_BUDGET_MS_MIN) ".." VG_STR(VG_BUDGET_MS_MAX) " (default " VG_STR(VG_BUDGET_MS_DEFAULT) ")\n"
    "  --decode all|nonref|keyframes  which frames are decoded (default all)\n"
    "  --realtime              pace frames as a camera would (with --watch: edit the rule while it plays)\n"
    "  --watch                 reload the rule when it or a module it requires is saved\n"
    "  --jit                   compile the rule's Lua (its budget can then not cut a loop)\n"
    "  --unsafe                no sandbox: the rule gets ffi, io and os\n"
    "  --log-level L           error, warn, info (default) or debug\n";

static const char *HELP_RUN =
    "usage: vigil run CONFIG.json [options]\n"
    "Runs every camera of CONFIG.json (docs/config.md) until SIGTERM or SIGINT; SIGHUP reads it again.\n"
    "  --log-level L           error, warn, info or debug (overrides node.log_level)\n"
    "  --duration SECONDS      stop after this long (tests, trials)\n";

static const char *HELP_CHECK =
    "usage: vigil check SCRIPT [options]\n"
    "Compiles the rule and runs it on synthetic frames: failures, episodes and on_frame's time. Exit 1 on any failure.\n"
    "  --params JSON           the rule's vigil.params, a JSON object\n"
    "  --frames N              how many frames, 1..100000 (default 100)\n"
    "  --analysis-width N      width of the analysed picture, " VG_STR(VG_ANALYSIS_WIDTH_MIN) ".."
    VG_STR(VG_ANALYSIS_WIDTH_MAX) " (default " VG_STR(VG_ANALYSIS_WIDTH_DEFAULT) "; the frames are 640 wide)\n"
    "  --budget-ms N           CPU time one callback may take, "
    VG_STR(VG_BUDGET_MS_MIN) ".." VG_STR(VG_BUDGET_MS_MAX) " (default " VG_STR(VG_BUDGET_MS_DEFAULT) ")\n";

static const char *HELP_FLUSH =
    "usage: vigil flush --central URL --spool DIR (--api-key KEY | --api-key-file central.conf) [options]\n"
    "Delivers the versions a spool holds (left by a crash, or Central down at exit) and exits: 0 when the spool\n"
    "is empty, 1 when some are left (Central down or refusing the key: the reason is logged).\n"
    "  --timeout-ms N          how long to keep trying, 0..3600000 (default 10000)\n"
    "  --log-level L           error, warn, info (default) or debug\n";

/* --help or -h anywhere among a command's arguments (not as an option's value). */
static int wants_help(int argc, char **argv) {
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

/* Where episodes go to Central: replay's and flush's options. */
typedef struct central_args {
    const char *url, *api_key, *api_key_file, *spool;
    long min_update_interval_ms; /* 0 = no rate limit */
} central_args;

typedef struct replay_args {
    central_args central;
    const char *file, *script, *media, *params, *out, *overlay, *report, *versions, *previews;
    int64_t start_ms;
    int realtime, jit, unsafe;
    long machine_id;
    vg_camera_settings settings; /* the config's defaults; replay watches the rule only with --watch */
} replay_args;

/* replay's flags that set a camera setting: the config's range and choices (vg_settings.h). */
static const struct { const char *flag, *key; } SETTING_FLAGS[] = {
    {"--analysis-width", "analysis_width"}, {"--budget-ms", "budget_ms"}, {"--decode", "decode"}};

/* 1 when opt is one of SETTING_FLAGS (a bad value is then said in *rc, 2). */
static int parse_setting_flag(vg_camera_settings *s, const char *opt, const char *val, int *rc) {
    char err[200];
    for (size_t i = 0; i < sizeof SETTING_FLAGS / sizeof *SETTING_FLAGS; i++) {
        if (strcmp(opt, SETTING_FLAGS[i].flag) != 0) continue;
        *rc = vg_setting_parse_text(s, vg_setting_find(SETTING_FLAGS[i].key), val, err, sizeof err) < 0 ? 2 : 0;
        if (*rc) fprintf(stderr, "vigil: %s: %s\n%s", opt, err, USAGE);
        return 1;
    }
    return 0;
}

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "vigil: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", USAGE);
    return 2;
}

static int parse_long(const char *text, long min, long max, long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) return -1;
    *out = (long)v;
    return 0;
}

/* The file name without directory and extension, as a default media name. */
static void media_from_path(const char *path, char *out, size_t outlen) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, outlen, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

static int is_central_option(const char *opt) {
    return strcmp(opt, "--central") == 0 || strcmp(opt, "--api-key") == 0 || strcmp(opt, "--api-key-file") == 0 ||
           strcmp(opt, "--spool") == 0 || strcmp(opt, "--min-update-interval-ms") == 0;
}

static int parse_central_option(central_args *c, const char *opt, const char *val) {
    long n;
    if (strcmp(opt, "--central") == 0) c->url = val;
    else if (strcmp(opt, "--api-key") == 0) c->api_key = val;
    else if (strcmp(opt, "--api-key-file") == 0) c->api_key_file = val;
    else if (strcmp(opt, "--spool") == 0) c->spool = val;
    else if (parse_long(val, 0, 3600000, &n) == 0) c->min_update_interval_ms = n;
    else {
        usage_error("--min-update-interval-ms: '%s' is not 0..3600000", val);
        return -1;
    }
    if (c->api_key && c->api_key_file) {
        usage_error("%s", "--api-key and --api-key-file exclude each other");
        return -1;
    }
    return 0;
}

/* $XDG_STATE_HOME/vigil/spool, else ~/.local/state/vigil/spool. */
static const char *default_spool(char *buf, size_t len) {
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (state && *state) snprintf(buf, len, "%s/vigil/spool", state);
    else snprintf(buf, len, "%s/.local/state/vigil/spool", home && *home ? home : "/tmp");
    return buf;
}

/* The --central options, opened by vg_central_open (errors unnamed: they name the file or say the reason). */
static vg_sink *open_central_from_args(const central_args *c, int drain_ms, char *err, size_t errlen) {
    char spool[4096];
    if (!c->api_key && !c->api_key_file) {
        snprintf(err, errlen, "--central needs --api-key KEY or --api-key-file central.conf");
        return NULL;
    }
    vg_central_options o = {
        .url = c->url, .api_key = c->api_key, .api_key_file = c->api_key_file,
        .spool_dir = c->spool ? c->spool : default_spool(spool, sizeof spool),
        .min_update_interval_ms = (int)c->min_update_interval_ms, .drain_timeout_ms = drain_ms,
    };
    return vg_central_open(&o, err, errlen);
}

/* --out, --report, --central, or several; *report is the report's sink (to tell it the clip's span). */
static vg_sink *open_replay_sink(const replay_args *a, const vg_report_options *ro, vg_sink **report, char *err,
                                 size_t errlen) {
    char reason[400];
    vg_sink *file = NULL, *central = NULL;
    if (a->out && !(file = vg_sink_file_open(a->out, 0, reason, sizeof reason))) {
        snprintf(err, errlen, "--out %s", reason);
        return NULL;
    }
    vg_file_shape shape = {.final_only = strcmp(a->versions, "final") == 0, .previews_dir = a->previews};
    if (file && (shape.final_only || shape.previews_dir) && !(file = vg_sink_shape(file, &shape, reason, sizeof reason))) {
        snprintf(err, errlen, "--previews %s", reason);
        return NULL;
    }
    if (ro->dir && !(*report = vg_report_open(ro, reason, sizeof reason))) {
        snprintf(err, errlen, "--report %s", reason);
        vg_sink_close(file);
        return NULL;
    }
    if (*report) file = file ? vg_sink_tee(file, *report) : *report;
    if (!a->central.url) return file;
    if (!(central = open_central_from_args(&a->central, 10000, err, errlen))) { /* replay waits up to 10 s at exit */
        vg_sink_close(file);
        return NULL;
    }
    return file ? vg_sink_tee(file, central) : central;
}

static int parse_replay(int argc, char **argv, replay_args *a) {
    *a = (replay_args){.start_ms = INT64_MIN, .versions = "all", .settings = vg_camera_settings_default(),
                       .central = {.min_update_interval_ms = VG_CENTRAL_MIN_UPDATE_INTERVAL_MS}};
    a->settings.watch = 0;
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i];
        if (opt[0] != '-') {
            if (a->file) return usage_error("unexpected argument '%s'", opt);
            a->file = opt;
            continue;
        }
        int *flag = strcmp(opt, "--realtime") == 0 ? &a->realtime : strcmp(opt, "--watch") == 0 ? &a->settings.watch
                  : strcmp(opt, "--jit") == 0 ? &a->jit : strcmp(opt, "--unsafe") == 0 ? &a->unsafe : NULL;
        if (flag) {
            *flag = 1;
            continue;
        }
        if (i + 1 >= argc) return usage_error("%s needs a value", opt);
        const char *val = argv[++i];
        long n;
        int rc;
        if (parse_setting_flag(&a->settings, opt, val, &rc)) {
            if (rc) return rc;
        } else if (strcmp(opt, "--script") == 0) a->script = val;
        else if (strcmp(opt, "--media") == 0) a->media = val;
        else if (strcmp(opt, "--params") == 0) a->params = val;
        else if (strcmp(opt, "--out") == 0) a->out = val;
        else if (strcmp(opt, "--overlay") == 0) a->overlay = val;
        else if (strcmp(opt, "--report") == 0) a->report = val;
        else if (strcmp(opt, "--previews") == 0) a->previews = val;
        else if (strcmp(opt, "--versions") == 0) {
            if (strcmp(val, "all") != 0 && strcmp(val, "final") != 0)
                return usage_error("--versions: '%s' is not all or final", val);
            a->versions = val;
        }
        else if (strcmp(opt, "--start") == 0) {
            if (parse_long(val, 0, LONG_MAX, &n) < 0) return usage_error("--start: '%s' is not unix ms", val);
            a->start_ms = n;
        } else if (strcmp(opt, "--machine-id") == 0) {
            if (parse_long(val, 0, VG_SNOWFLAKE_MAX_MACHINE, &n) < 0)
                return usage_error("--machine-id: '%s' is not 0..1023", val);
            a->machine_id = n;
        } else if (strcmp(opt, "--log-level") == 0) {
            vg_log_level level;
            if (vg_log_parse_level(val, &level) < 0) return usage_error("--log-level: unknown level '%s'", val);
            vg_log_set_level(level);
        } else if (is_central_option(opt)) {
            if (parse_central_option(&a->central, opt, val) < 0) return 2;
        } else {
            return usage_error("unknown option '%s'", opt);
        }
    }
    av_log_set_level(vg_log_get_level() >= VG_LOG_DEBUG ? AV_LOG_WARNING : AV_LOG_QUIET);
    if (!a->file) return usage_error("%s", "replay needs a FILE");
    if (!a->script) return usage_error("%s", "replay needs --script PATH");
    if (!a->central.url && (a->central.api_key || a->central.api_key_file || a->central.spool))
        return usage_error("%s", "--api-key, --api-key-file and --spool go with --central URL");
    if (!a->out && !a->central.url && !a->report) a->out = "-";
    if (!a->out && (a->previews || strcmp(a->versions, "all") != 0))
        return usage_error("%s", "--versions and --previews shape --out's lines: give --out too");
    return 0;
}

/* --params gets the config's checks (vg_config_check_params): a JSON object, each key once, no NUL, lone
 * surrogate or too deep nesting; the one line says which. */
static int check_params(const char *params) {
    char err[300];
    if (!params || vg_config_check_params(params, strlen(params), err, sizeof err) == 0) return 0;
    fprintf(stderr, "vigil: --params: %s\n", err);
    return -1;
}

static void print_summary(const replay_args *a, const vg_camera_stats *st) {
    double fps = st->seconds > 0 ? st->frames_analysed / st->seconds : 0;
    const char *out = !a->out ? (a->report ? a->report : "") : strcmp(a->out, "-") == 0 ? "stdout" : a->out;
    vg_info("replay", "%ld frames in %.2f s (%.0f fps); %ld episodes, %ld versions%s written to %s%s%s",
            st->frames_analysed, st->seconds, fps, st->episodes_opened, st->versions_emitted,
            strcmp(a->versions, "final") == 0 ? " (the last of each episode)" : "", out,
            *out && a->central.url ? " and " : "", a->central.url ? "Central" : "");
}

/* ---------- replay's progress on a terminal ---------- */

#define VG_PROGRESS_EVERY_MS 500

typedef struct progress {
    vg_camera *cam;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    int done;
} progress;

/* "clip 63.2 of 1380.0 s, 5.1x, 3 episodes, 4 min 18 s left" */
static void show_progress(const vg_camera_stats *st, double wall_s) {
    double at = st->first_ts ? (double)(st->last_ts - st->first_ts) / 1000.0 : 0;
    double speed = wall_s > 0 ? at / wall_s : 0;
    char left[64] = "";
    if (st->duration_ms > 0 && speed > 0) {
        double rest = ((double)st->duration_ms / 1000.0 - at) / speed;
        snprintf(left, sizeof left, ", %d min %02d s left", (int)(rest / 60), (int)rest % 60);
    }
    char total[32] = "";
    if (st->duration_ms > 0) snprintf(total, sizeof total, " of %.1f", (double)st->duration_ms / 1000.0);
    fprintf(stderr, "\r\033[Kclip %.1f%s s, %.1fx, %ld episodes%s", at, total, speed, st->episodes_opened, left);
    fflush(stderr);
}

static void *progress_main(void *arg) {
    progress *p = arg;
    int64_t t0 = vg_monotonic_ms();
    pthread_mutex_lock(&p->lock);
    while (!p->done) {
        struct timespec until = vg_deadline_in_ms(CLOCK_REALTIME, VG_PROGRESS_EVERY_MS);
        pthread_cond_timedwait(&p->done_cond, &p->lock, &until);
        if (p->done) break;
        vg_camera_stats st;
        vg_camera_get_stats(p->cam, &st);
        show_progress(&st, (double)(vg_monotonic_ms() - t0) / 1000.0);
    }
    pthread_mutex_unlock(&p->lock);
    fputs("\r\033[K", stderr);
    return NULL;
}

/* Only when stderr is a terminal: a pipe or a file gets no progress. */
static int start_progress(progress *p, vg_camera *cam) {
    if (!isatty(STDERR_FILENO)) return 0;
    *p = (progress){.cam = cam};
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->done_cond, NULL);
    vg_log_set_status_line(1);
    if (pthread_create(&p->thread, NULL, progress_main, p) == 0) return 1;
    vg_log_set_status_line(0);
    return 0;
}

static void stop_progress(progress *p) {
    pthread_mutex_lock(&p->lock);
    p->done = 1;
    pthread_cond_signal(&p->done_cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    vg_log_set_status_line(0);
    pthread_cond_destroy(&p->done_cond);
    pthread_mutex_destroy(&p->lock);
}

static int cmd_replay(int argc, char **argv) {
    replay_args a;
    int rc = parse_replay(argc, argv, &a);
    if (rc) return rc;
    if (check_params(a.params) < 0) return 2;
    vg_camera_config config = {
        .url = a.file, .script = a.script, .params_json = a.params, .start_ms = a.start_ms, .realtime = a.realtime,
        .jit = a.jit, .unsafe = a.unsafe, .overlay = a.overlay, .settings = a.settings,
    };
    char media[256];
    media_from_path(a.file, media, sizeof media);
    config.media = a.media ? a.media : media;

    char err[512];
    vg_snowflake ids;
    vg_snowflake_init(&ids, (unsigned)a.machine_id, NULL, NULL);
    int report_failed = 0;
    vg_sink *report = NULL;
    vg_report_options ro = {.dir = a.report, .clip = a.file, .media = config.media, .failed = &report_failed};
    vg_sink *sink = open_replay_sink(&a, &ro, &report, err, sizeof err);
    if (!sink) {
        fprintf(stderr, "vigil: %s\n", err);
        vg_snowflake_destroy(&ids);
        return 1;
    }
    vg_camera *cam = vg_camera_new(&config, &ids, sink, err, sizeof err);
    if (!cam) {
        fprintf(stderr, "vigil: %s\n", err);
        vg_sink_close(sink);
        return 1;
    }
    progress shown;
    int showing = start_progress(&shown, cam);
    rc = vg_camera_replay(cam, err, sizeof err);
    if (showing) stop_progress(&shown);
    vg_camera_stats stats;
    vg_camera_get_stats(cam, &stats);
    vg_report_finish(report, stats.first_ts, stats.last_ts);
    vg_camera_free(cam);
    vg_sink_close(sink);
    vg_snowflake_destroy(&ids);
    if (rc < 0) {
        fprintf(stderr, "vigil: %s\n", err);
        return 1;
    }
    print_summary(&a, &stats);
    return stats.sink_errors || report_failed ? 1 : 0;
}

/* vigil flush: deliver what earlier runs left in a spool (after a crash, or Central being down at exit);
 * exit 1 if some of it is still there after --timeout-ms (default 10000). */
static int cmd_flush(int argc, char **argv) {
    central_args c = {.min_update_interval_ms = VG_CENTRAL_MIN_UPDATE_INTERVAL_MS};
    long timeout_ms = 10000;
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i];
        if (i + 1 >= argc) return usage_error("%s needs a value", opt);
        const char *val = argv[++i];
        vg_log_level level;
        if (is_central_option(opt)) {
            if (parse_central_option(&c, opt, val) < 0) return 2;
        } else if (strcmp(opt, "--timeout-ms") == 0) {
            if (parse_long(val, 0, 3600000, &timeout_ms) < 0) return usage_error("--timeout-ms: '%s' is not 0..3600000", val);
        } else if (strcmp(opt, "--log-level") == 0) {
            if (vg_log_parse_level(val, &level) < 0) return usage_error("--log-level: unknown level '%s'", val);
            vg_log_set_level(level);
        } else {
            return usage_error("flush: unknown option '%s'", opt);
        }
    }
    if (!c.url || !c.spool) return usage_error("%s", "flush needs --central URL and --spool DIR");
    char err[512];
    vg_sink *sink = open_central_from_args(&c, 0, err, sizeof err); /* flush drains itself */
    if (!sink) {
        fprintf(stderr, "vigil: %s\n", err);
        return 1;
    }
    long left = vg_central_drain(sink, (int)timeout_ms);
    vg_central_stats st;
    vg_central_get_stats(sink, &st);
    vg_sink_close(sink);
    vg_info("flush", "%ld versions delivered, %ld rejected by Central, %ld left in the spool", st.sent, st.rejected, left);
    return left ? 1 : 0;
}

/* vigil check SCRIPT: compile a rule and run it on synthetic frames; exit 1 if anything failed. */
static int cmd_check(int argc, char **argv) {
    const char *script = NULL, *params = NULL;
    long frames = 100;
    vg_camera_settings settings = vg_camera_settings_default();
    for (int i = 2; i < argc; i++) {
        int rc, setting = !strcmp(argv[i], "--analysis-width") || !strcmp(argv[i], "--budget-ms");
        if (strcmp(argv[i], "--params") == 0 && i + 1 < argc) params = argv[++i];
        else if (setting && i + 1 < argc && parse_setting_flag(&settings, argv[i], argv[i + 1], &rc)) {
            if (rc) return rc;
            i++;
        } else if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc) {
            if (parse_long(argv[++i], 1, 100000, &frames) < 0) return usage_error("--frames: '%s' is not 1..100000", argv[i]);
        } else if (argv[i][0] != '-' && !script) script = argv[i];
        else return usage_error("check: unexpected argument '%s'", argv[i]);
    }
    if (!script) return usage_error("%s", "check needs a SCRIPT");
    if (check_params(params) < 0) return 2;
    vg_check_result r;
    char err[512] = "";
    int rc = vg_check_rule(script, params, (int)frames, settings.analysis_width, settings.budget_ms, &r, err,
                           sizeof err);
    if (*err) {
        fprintf(stderr, "vigil: %s\n", err);
        return 1;
    }
    printf("%s: %d frames, %ld episodes, %ld versions, %ld failed callbacks (%ld over budget); "
           "on_frame %.3f ms mean, %.3f ms max\n",
           script, r.frames, r.episodes, r.versions, r.errors, r.budget_cuts, r.mean_ms, r.max_ms);
    return rc < 0 ? 1 : 0;
}

/* vigil run: the cameras of a config until SIGTERM/SIGINT; --duration stops it earlier (tests). */
static int cmd_run(int argc, char **argv) {
    vg_run_options o = {0};
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i];
        if (opt[0] != '-') {
            if (o.config_path) return usage_error("run: unexpected argument '%s'", opt);
            o.config_path = opt;
            continue;
        }
        if (i + 1 >= argc) return usage_error("%s needs a value", opt);
        const char *val = argv[++i];
        char *end;
        if (strcmp(opt, "--duration") == 0) {
            o.duration_s = strtod(val, &end);
            if (end == val || *end || !(o.duration_s > 0 && o.duration_s < 1e9))
                return usage_error("--duration: '%s' is not a number of seconds", val);
        } else if (strcmp(opt, "--log-level") == 0) {
            vg_log_level level;
            if (vg_log_parse_level(val, &level) < 0) return usage_error("--log-level: unknown level '%s'", val);
            vg_log_set_level(level);
            o.log_level_given = 1;
        } else {
            return usage_error("unknown option '%s'", opt);
        }
    }
    if (!o.config_path) return usage_error("%s", "run needs a CONFIG.json");
    return vg_run(&o);
}

/* Log lines carry the time on a terminal (a person running vigil in the foreground); the journal, Docker and
 * Kubernetes stamp lines themselves. VIGIL_LOG_TIMESTAMPS=1 or 0 decides instead (e.g. stderr to a file). */
static void choose_log_timestamps(void) {
    const char *forced = getenv("VIGIL_LOG_TIMESTAMPS");
    vg_log_set_timestamps(forced && *forced ? strcmp(forced, "0") != 0 : isatty(STDERR_FILENO));
}

int main(int argc, char **argv) {
    av_log_set_level(AV_LOG_QUIET); /* our own lines say what failed; FFmpeg's chatter only at debug */
    choose_log_timestamps();
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    static const struct {
        const char *name, **help;
        int (*run)(int, char **);
    } commands[] = {{"replay", &HELP_REPLAY, cmd_replay}, {"check", &HELP_CHECK, cmd_check},
                    {"run", &HELP_RUN, cmd_run}, {"flush", &HELP_FLUSH, cmd_flush}};
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        if (!wants_help(argc, argv)) return commands[i].run(argc, argv);
        fputs(*commands[i].help, stdout);
        return 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("vigil %s\n", VIGIL_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(USAGE, stdout);
        return 0;
    }
    return usage_error("unknown command '%s'", argv[1]);
}
