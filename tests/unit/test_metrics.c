/* test_metrics.c — the metrics endpoint: every sample line of the Prometheus text parses (name, labels,
 * value) and has its HELP and TYPE, values come from the right counters (seconds from ms too), label values
 * are escaped, /healthz names the cameras that are down; and both are served over a real loopback socket,
 * with 404 for other paths and 405 for other methods. */
#include <curl/curl.h>
#include <regex.h>
#include <stdlib.h>

#include "check.h"
#include "http_client.h"
#include "vg_metrics.h"

static vg_metrics_camera cams[2];
static int collected;

static void fill(vg_metrics_snapshot *s) {
    memset(cams, 0, sizeof cams);
    snprintf(cams[0].media, sizeof cams[0].media, "gate");
    cams[0].stats = (vg_camera_stats){.packets = 250, .frames_decoded = 250, .frames_analysed = 50,
                                      .frames_skipped = 200, .frames_damaged = 50, .connected = 1, .connects = 2,
                                      .reconnects = 3,
                                      .disconnects = 1, .clock = VG_CLOCK_RTCP, .decode_seconds = 0.25,
                                      .episodes_opened = 4, .episodes_open = 1, .versions_emitted = 17, .versions_unrendered = 2,
                                      .script = {.calls = 52, .errors = 2, .budget_cuts = 1, .total_ms = 1500}};
    snprintf(cams[1].media, sizeof cams[1].media, "od\"d\\one");
    cams[1].stats = (vg_camera_stats){.clock = VG_CLOCK_LOCAL, .reconnects = 9,
                                      .script = {.calls = 3, .total_ms = 0.25}}; /* callbacks far under 1 ms */
    *s = (vg_metrics_snapshot){.cameras = cams, .ncameras = 2, .has_central = 1, .start_time_s = 1700000000.5,
                               .central = {.sent = 40, .failed = 3, .rejected = 1, .retries = 2, .queued = 5,
                                           .spool_files = 6, .spool_bytes = 7000}};
}

static int has(const char *text, const char *line) {
    char with_newline[256];
    snprintf(with_newline, sizeof with_newline, "%s\n", line);
    if (strstr(text, with_newline)) return 1;
    fprintf(stderr, "missing line: %s\n", line);
    return 0;
}

/* Every line is a comment or "name{labels} value"; every sample's family has HELP and TYPE before it. */
static void check_syntax(const char *text) {
    regex_t sample;
    regcomp(&sample, "^([a-z_]+)(\\{([a-z_]+=\"([^\"\\\\]|\\\\.)*\",?)+\\})? [-0-9.e+]+$", REG_EXTENDED);
    char *copy = strdup(text), *save = NULL;
    int lines = 0, bad = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
        if (line[0] == '#') continue;
        regmatch_t m[2];
        if (regexec(&sample, line, 2, m, 0) != 0) {
            fprintf(stderr, "not a sample line: %s\n", line);
            bad++;
            continue;
        }
        char type[160];
        snprintf(type, sizeof type, "# TYPE %.*s ", (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
        char *at = strstr(text, type);
        if (!at || at > strstr(text, line)) {
            fprintf(stderr, "no TYPE before: %s\n", line);
            bad++;
        }
    }
    CHECK(lines > 60);
    CHECK_INT(bad, 0);
    free(copy);
    regfree(&sample);
}

static void test_format(void) {
    vg_metrics_snapshot s;
    fill(&s);
    vg_buf out = {0};
    vg_metrics_format(&s, &out);
    const char *t = out.data;
    check_syntax(t);
    CHECK(has(t, "vigil_process_start_time_seconds 1700000000.500"));
    CHECK(has(t, "vigil_cameras 2"));
    CHECK(has(t, "vigil_camera_frames_received_total{media=\"gate\"} 250"));
    CHECK(has(t, "vigil_camera_frames_analysed_total{media=\"gate\"} 50"));
    CHECK(has(t, "vigil_camera_frames_skipped_total{media=\"gate\"} 200"));
    CHECK(has(t, "vigil_camera_frames_damaged_total{media=\"gate\"} 50"));
    CHECK(has(t, "vigil_camera_decode_seconds_total{media=\"gate\"} 0.25"));
    CHECK(has(t, "vigil_camera_script_seconds_total{media=\"gate\"} 1.5"));
    CHECK(has(t, "vigil_camera_reconnects_total{media=\"gate\"} 3"));
    CHECK(has(t, "vigil_camera_script_errors_total{media=\"gate\"} 2"));
    CHECK(has(t, "vigil_camera_budget_cuts_total{media=\"gate\"} 1"));
    CHECK(has(t, "vigil_camera_episodes_open{media=\"gate\"} 1"));
    CHECK(has(t, "vigil_camera_versions_emitted_total{media=\"gate\"} 17"));
    CHECK(has(t, "vigil_camera_versions_unrendered_total{media=\"gate\"} 2"));
    CHECK(has(t, "vigil_camera_connected{media=\"gate\"} 1"));
    CHECK(has(t, "vigil_camera_clock{media=\"gate\",clock=\"rtcp\"} 1"));
    CHECK(has(t, "vigil_camera_clock{media=\"gate\",clock=\"local\"} 0"));
    CHECK(has(t, "vigil_camera_clock{media=\"od\\\"d\\\\one\",clock=\"local\"} 1"));
    CHECK(has(t, "vigil_camera_reconnects_total{media=\"od\\\"d\\\\one\"} 9"));
    CHECK(has(t, "vigil_camera_script_seconds_total{media=\"od\\\"d\\\\one\"} 0.00025")); /* not 0 */
    CHECK(has(t, "vigil_central_versions_sent_total 40"));
    CHECK(has(t, "vigil_central_versions_failed_total 3"));
    CHECK(has(t, "vigil_central_versions_rejected_total 1"));
    CHECK(has(t, "vigil_central_spool_files 6"));
    CHECK(has(t, "vigil_central_queued 5"));
    CHECK(has(t, "# TYPE vigil_camera_frames_received_total counter"));
    CHECK(has(t, "# TYPE vigil_camera_connected gauge"));
    free(out.data);

    s.has_central = 0; /* without Central: no central_* family at all */
    out = (vg_buf){0};
    vg_metrics_format(&s, &out);
    CHECK(strstr(out.data, "vigil_central_") == NULL);
    free(out.data);
}

static void test_health(void) {
    vg_metrics_snapshot s;
    fill(&s);
    vg_buf out = {0};
    vg_metrics_health(&s, &out);
    CHECK_STR(out.data, "ok\ncameras: 2 running, 1 connected\ndown: od\"d\\one\n");
    free(out.data);
    cams[1].stats.connected = 1;
    out = (vg_buf){0};
    vg_metrics_health(&s, &out);
    CHECK_STR(out.data, "ok\ncameras: 2 running, 2 connected\n");
    free(out.data);
    snprintf(cams[0].stats.script.retired, sizeof cams[0].stats.script.retired, "over its memory cap");
    out = (vg_buf){0};
    vg_metrics_health(&s, &out);
    CHECK(strstr(out.data, "\nrule retired: ") && strstr(out.data, ": over its memory cap\n"));
    free(out.data);
    out = (vg_buf){0};
    vg_metrics_format(&s, &out);
    const char *sample = strstr(out.data, "\nvigil_camera_rule_retired{media=");
    CHECK(sample && strstr(sample, "} 1\n") && strstr(sample, "} 1\n") < strstr(sample + 1, "\n") + 1);
    free(out.data);
    cams[0].stats.script.retired[0] = 0;
}

static void collect(void *ctx, vg_metrics_snapshot *out) {
    CHECK(ctx == &collected);
    collected++;
    vg_metrics_snapshot s;
    fill(&s);
    *out = s;
    out->cameras = malloc(sizeof cams); /* vg_metrics frees it */
    memcpy(out->cameras, cams, sizeof cams);
}

static void test_served(void) {
    char err[256];
    vg_metrics *m = vg_metrics_start("127.0.0.1:0", collect, &collected, err, sizeof err);
    CHECK(m != NULL);
    if (!m) return;
    int port = vg_metrics_port(m);
    http_reply f = http_request(port, NULL, "/metrics", NULL);
    CHECK_INT(f.status, 200);
    CHECK(f.body.data && has(f.body.data, "vigil_central_versions_sent_total 40"));
    http_reply_free(&f);
    f = http_request(port, NULL, "/healthz", NULL);
    CHECK_INT(f.status, 200);
    CHECK(f.body.data && strncmp(f.body.data, "ok\n", 3) == 0);
    http_reply_free(&f);
    f = http_request(port, NULL, "/other", NULL);
    CHECK_INT(f.status, 404);
    http_reply_free(&f);
    f = http_request(port, "DELETE", "/metrics", NULL);
    CHECK_INT(f.status, 405);
    http_reply_free(&f);
    CHECK_INT(collected, 2);
    vg_metrics_stop(m);
    CHECK(vg_metrics_start("127.0.0.1:99999", collect, NULL, err, sizeof err) == NULL);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_format();
    test_health();
    test_served();
    curl_global_cleanup();
    return CHECK_DONE();
}
