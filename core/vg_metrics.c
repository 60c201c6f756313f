/* vg_metrics.c — the metrics endpoint: the table of per-camera metrics (name, type, help, which counter),
 * the Prometheus text format with label escaping, /healthz, and the vg_http handler that serves them. */
#include "vg_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vg_metrics {
    vg_http_server *http;
    vg_metrics_collect collect;
    void *ctx;
};

/* ---------- the metrics ---------- */

typedef enum {
    LONG_FIELD, INT_FIELD, DOUBLE_FIELD,
    MS_FIELD,  /* a double in ms, shown in seconds */
    SET_FIELD  /* a string: 1 when not empty */
} field_kind;

typedef struct camera_metric {
    const char *name, *type, *help;
    size_t offset; /* of the value in vg_camera_stats */
    field_kind kind;
} camera_metric;

#define LONG(field) offsetof(vg_camera_stats, field), LONG_FIELD
#define INT(field) offsetof(vg_camera_stats, field), INT_FIELD
#define DOUBLE(field) offsetof(vg_camera_stats, field), DOUBLE_FIELD
#define MS(field) offsetof(vg_camera_stats, field), MS_FIELD
#define SET(field) offsetof(vg_camera_stats, field), SET_FIELD

static const camera_metric CAMERA_METRICS[] = {
    {"vigil_camera_frames_received_total", "counter", "Video frames (packets) read from the camera.", LONG(packets)},
    {"vigil_camera_frames_decoded_total", "counter", "Pictures the decoder gave back (all, or what the decode mode keeps).",
     LONG(frames_decoded)},
    {"vigil_camera_frames_analysed_total", "counter", "Frames given to the rule's on_frame.", LONG(frames_analysed)},
    {"vigil_camera_frames_skipped_total", "counter", "Decoded frames not given to the rule (over the fps limit).",
     LONG(frames_skipped)},
    {"vigil_camera_frames_damaged_total", "counter",
     "Decoded frames kept from the rule: decoded with errors, or referring to such a frame, until a clean key frame.",
     LONG(frames_damaged)},
    {"vigil_camera_frames_untimed_total", "counter",
     "Decoded frames kept from the rule because the stream gave no time for them (an RTSP session's first).",
     LONG(frames_untimed)},
    {"vigil_camera_decode_seconds_total", "counter", "Time spent in the decoder.", DOUBLE(decode_seconds)},
    {"vigil_camera_script_seconds_total", "counter", "Time spent in the rule's callbacks.", MS(script.total_ms)},
    {"vigil_camera_connected", "gauge", "1 while a session with the camera is up.", INT(connected)},
    {"vigil_camera_connects_total", "counter", "Sessions that came up.", LONG(connects)},
    {"vigil_camera_reconnects_total", "counter", "Times the camera had to reconnect (stream lost or attempt failed).",
     LONG(reconnects)},
    {"vigil_camera_streams_lost_total", "counter", "Sessions that were up and then lost.", LONG(disconnects)},
    {"vigil_camera_script_calls_total", "counter", "Rule callbacks run.", LONG(script.calls)},
    {"vigil_camera_script_errors_total", "counter", "Rule callbacks that failed or were cut (changes rolled back).",
     LONG(script.errors)},
    {"vigil_camera_budget_cuts_total", "counter", "Rule callbacks cut at their time budget.", LONG(script.budget_cuts)},
    {"vigil_camera_memory_cuts_total", "counter", "Rule callbacks cut at the rule's memory cap.",
     LONG(script.memory_cuts)},
    {"vigil_camera_rule_retired", "gauge",
     "1 while the rule is retired (it held more than its memory cap): the camera runs on without it until the file changes.",
     SET(script.retired)},
    {"vigil_camera_episodes_opened_total", "counter", "Episodes the rule opened.", LONG(episodes_opened)},
    {"vigil_camera_episodes_open", "gauge", "Episodes open now.", INT(episodes_open)},
    {"vigil_camera_versions_emitted_total", "counter", "Episode versions handed to the sinks.", LONG(versions_emitted)},
    {"vigil_camera_sink_errors_total", "counter", "Versions a sink could not take.", LONG(sink_errors)},
    {"vigil_camera_versions_unrendered_total", "counter",
     "Versions a rule committed that could not be rendered as JSON (out of memory), not emitted.",
     LONG(versions_unrendered)},
    {"vigil_camera_previews_main_total", "counter",
     "Preview crops cut from preview_url's picture at the frame's time.", LONG(previews_main)},
    {"vigil_camera_previews_fallback_total", "counter",
     "Preview crops cut from the analysed frame although preview_url is set (the log says why).",
     LONG(previews_fallback)},
    {"vigil_camera_preview_stream_connected", "gauge", "1 while a session with preview_url is up.",
     INT(preview.connected)},
    {"vigil_camera_preview_kept_packets", "gauge", "Packets of preview_url kept for previews (since the previous key frame).",
     LONG(preview.kept_packets)},
    {"vigil_camera_preview_kept_bytes", "gauge", "Bytes of preview_url kept for previews.", LONG(preview.kept_bytes)},
    {"vigil_camera_preview_dropped_packets_total", "counter",
     "Packets of preview_url not kept: a GOP over the bounds, or before a session's first key frame.",
     LONG(preview.dropped_packets)},
    {"vigil_camera_preview_decoded_total", "counter", "Pictures of preview_url decoded for previews.",
     LONG(preview.decoded)},
    {"vigil_camera_preview_decode_seconds_total", "counter", "Time spent decoding preview_url for previews.",
     DOUBLE(preview.decode_seconds)},
};

static double camera_value(const vg_camera_stats *st, const camera_metric *m) {
    const char *at = (const char *)st + m->offset;
    switch (m->kind) {
    case LONG_FIELD: return (double)*(const long *)at;
    case INT_FIELD: return (double)*(const int *)at;
    case DOUBLE_FIELD: return *(const double *)at;
    case MS_FIELD: return *(const double *)at / 1000.0;
    case SET_FIELD: return *at != 0;
    }
    return 0;
}

/* ---------- the text format ---------- */

/* A label value with \, " and newline escaped. */
static void append_label(vg_buf *out, const char *value) {
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"') vg_buf_printf(out, "\\%c", *p);
        else if (*p == '\n') vg_buf_append(out, "\\n", 2);
        else vg_buf_append(out, p, 1);
    }
}

static void family(vg_buf *out, const char *name, const char *type, const char *help) {
    vg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void camera_sample(vg_buf *out, const char *name, const char *media, const char *clock, double value) {
    vg_buf_printf(out, "%s{media=\"", name);
    append_label(out, media);
    if (clock) vg_buf_printf(out, "\",clock=\"%s", clock);
    vg_buf_printf(out, "\"} %.15g\n", value); /* integers exact up to 10^15 */
}

static void format_cameras(const vg_metrics_snapshot *s, vg_buf *out) {
    for (size_t i = 0; i < sizeof CAMERA_METRICS / sizeof *CAMERA_METRICS; i++) {
        const camera_metric *m = &CAMERA_METRICS[i];
        family(out, m->name, m->type, m->help);
        for (int c = 0; c < s->ncameras; c++)
            camera_sample(out, m->name, s->cameras[c].media, NULL, camera_value(&s->cameras[c].stats, m));
    }
    family(out, "vigil_camera_clock", "gauge", "Where frame times come from: 1 for the camera's current source.");
    static const vg_clock_source sources[] = {VG_CLOCK_RTCP, VG_CLOCK_LOCAL, VG_CLOCK_FILE};
    for (int c = 0; c < s->ncameras; c++)
        for (size_t k = 0; k < sizeof sources / sizeof *sources; k++)
            camera_sample(out, "vigil_camera_clock", s->cameras[c].media, vg_clock_source_name(sources[k]),
                          s->cameras[c].stats.clock == sources[k]);
}

static void gauge_or_counter(vg_buf *out, const char *name, const char *type, const char *help, double value) {
    family(out, name, type, help);
    vg_buf_printf(out, "%s %.15g\n", name, value);
}

static void format_central(const vg_central_stats *c, vg_buf *out) {
    gauge_or_counter(out, "vigil_central_versions_sent_total", "counter", "Versions Central accepted (2xx).",
                     (double)c->sent);
    gauge_or_counter(out, "vigil_central_versions_failed_total", "counter",
                     "Attempts that failed and will be retried (5xx, 429, timeouts, connection errors, 401/403).",
                     (double)c->failed);
    gauge_or_counter(out, "vigil_central_versions_rejected_total", "counter",
                     "Versions Central refused for good (400, 409, 413, 415, 422), dropped.", (double)c->rejected);
    gauge_or_counter(out, "vigil_central_retries_total", "counter", "Attempts of versions that had failed before.",
                     (double)c->retries);
    gauge_or_counter(out, "vigil_central_queued", "gauge", "Versions waiting for Central or in flight.",
                     (double)c->queued);
    gauge_or_counter(out, "vigil_central_spool_files", "gauge", "Versions on disk in the spool (its depth).",
                     (double)c->spool_files);
    gauge_or_counter(out, "vigil_central_spool_bytes", "gauge", "Bytes in the spool.", (double)c->spool_bytes);
}

void vg_metrics_format(const vg_metrics_snapshot *s, vg_buf *out) {
    family(out, "vigil_process_start_time_seconds", "gauge", "When vigil started, unix seconds.");
    vg_buf_printf(out, "vigil_process_start_time_seconds %.3f\n", s->start_time_s);
    family(out, "vigil_build_info", "gauge", "vigil's version.");
    vg_buf_printf(out, "vigil_build_info{version=\"%s\"} 1\n", VIGIL_VERSION);
    gauge_or_counter(out, "vigil_cameras", "gauge", "Cameras running.", s->ncameras);
    format_cameras(s, out);
    if (s->has_central) format_central(&s->central, out);
}

void vg_metrics_health(const vg_metrics_snapshot *s, vg_buf *out) {
    int up = 0;
    for (int c = 0; c < s->ncameras; c++) up += s->cameras[c].stats.connected != 0;
    vg_buf_printf(out, "ok\ncameras: %d running, %d connected\n", s->ncameras, up);
    for (int c = 0; c < s->ncameras; c++)
        if (s->cameras[c].stats.script.retired[0])
            vg_buf_printf(out, "rule retired: %s: %s\n", s->cameras[c].media, s->cameras[c].stats.script.retired);
    if (up == s->ncameras) return;
    vg_buf_append(out, "down:", 5);
    for (int c = 0; c < s->ncameras; c++)
        if (!s->cameras[c].stats.connected) vg_buf_printf(out, " %s", s->cameras[c].media);
    vg_buf_append(out, "\n", 1);
}

/* ---------- serving ---------- */

static int handle(void *ctx, const vg_http_request *req, vg_http_response *res) {
    vg_metrics *m = ctx;
    int metrics = strcmp(req->path, "/metrics") == 0, health = strcmp(req->path, "/healthz") == 0;
    if (!metrics && !health) return -1;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        res->status = 405;
        res->body = strdup("GET only\n");
        return 0;
    }
    vg_metrics_snapshot s = {0};
    m->collect(m->ctx, &s);
    vg_buf out = {0};
    if (metrics) {
        vg_metrics_format(&s, &out);
        res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    } else {
        vg_metrics_health(&s, &out);
    }
    free(s.cameras);
    res->body = out.data ? out.data : strdup("");
    res->body_len = out.len;
    return 0;
}

vg_metrics *vg_metrics_start(const char *listen, vg_metrics_collect collect, void *ctx, char *err, size_t errlen) {
    vg_metrics *m = calloc(1, sizeof *m);
    m->collect = collect;
    m->ctx = ctx;
    vg_http_options http = {.listen = listen, .name = "metrics", .handler = handle, .ctx = m,
                            .max_connections = VG_METRICS_MAX_CONNECTIONS,
                            .max_per_client = VG_METRICS_MAX_PER_CLIENT, .threads = VG_METRICS_THREADS};
    if (!(m->http = vg_http_serve(&http, err, errlen))) {
        free(m);
        return NULL;
    }
    return m;
}

void vg_metrics_stop(vg_metrics *m) {
    if (!m) return;
    vg_http_stop(m->http);
    free(m);
}

int vg_metrics_port(const vg_metrics *m) { return vg_http_port(m->http); }
