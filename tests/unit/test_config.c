/* test_config.c — `vigil run`'s config: a valid file with defaults and per-camera overrides, relative paths
 * resolved against the file's directory, zones, and bad files refused with EVERY problem named by its JSON
 * path; what a reload compares (camera settings, the settings read only at start). */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "vg_config.h"

static char dir[64];

static void write_file(const char *name, const char *text) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static int has_line(const vg_config_errors *e, const char *line) {
    for (int i = 0; i < e->count; i++)
        if (strcmp(e->lines[i], line) == 0) return 1;
    fprintf(stderr, "missing error line: %s\n", line);
    return 0;
}

static void dump(const vg_config_errors *e) {
    for (int i = 0; i < e->count; i++) fprintf(stderr, "  got: %s\n", e->lines[i]);
}

static const char *VALID =
    "{\"node\": {\"machine_id\": 7, \"spool_dir\": \"spool\", \"log_level\": \"debug\", \"metrics\": \"127.0.0.1:9100\"},\n"
    " \"central\": {\"url\": \"http://central.local:9019\", \"api_key_file\": \"/etc/central/central.conf\",\n"
    "             \"min_update_interval_ms\": 0, \"flush_timeout_ms\": 8000},\n"
    " \"output\": {\"file\": \"episodes.jsonl\"},\n"
    " \"defaults\": {\"analysis_width\": 240, \"budget_ms\": 20, \"stall_timeout_ms\": 4000, \"rtcp_wait_ms\": 3000,\n"
    "              \"fps\": 10, \"decode\": \"nonref\", \"decoder_threads\": 2, \"skip_loop_filter\": true,\n"
    "              \"transport\": \"udp\", \"watch\": false},\n"
    " \"cameras\": [\n"
    "   {\"media\": \"cam0\", \"url\": \"rtsp://user:pass@10.0.0.5/stream1\", \"script\": \"rule.lua\",\n"
    "    \"jit\": true, \"unsafe\": true,\n"
    "    \"params\": {\"threshold\": 25, \"zones\": [1, 2]},\n"
    "    \"zones\": {\"door\": [[0.1, 0.2], [0.5, 0.2], [0.5, 1]], \"yard\": [[0, 0], [1, 0], [1, 1], [0, 1]]}},\n"
    "   {\"media\": \"cam1\", \"url\": \"rtsps://10.0.0.6/s\", \"script\": \"RULES\", \"rtcp_wait_ms\": 0,\n"
    "    \"analysis_width\": 640, \"fps\": 0, \"decode\": \"keyframes\", \"decoder_threads\": 1,\n"
    "    \"skip_loop_filter\": false, \"transport\": \"tcp\", \"budget_ms\": 12.5, \"watch\": true}\n"
    " ]}\n";

static void test_valid(void) {
    char path[128], rules[128];
    snprintf(rules, sizeof rules, "%s/rule.lua", dir);
    char *text = strdup(VALID);
    char *mark = strstr(text, "RULES"); /* the second camera names the same rule by its absolute path */
    char *full = malloc(strlen(text) + sizeof rules);
    sprintf(full, "%.*s%s%s", (int)(mark - text), text, rules, mark + 5);
    snprintf(path, sizeof path, "%s/vigil.json", dir);
    write_file("vigil.json", full);

    vg_config_errors e = {0};
    vg_config *c = vg_config_load(path, &e);
    CHECK(c != NULL);
    CHECK_INT(e.count, 0);
    dump(&e);
    if (!c) return;
    CHECK_INT(c->machine_id, 7);
    CHECK(c->has_log_level && c->log_level == VG_LOG_DEBUG);
    CHECK(strstr(c->spool_dir, "/spool") && c->spool_dir[0] == '/');
    CHECK_STR(c->metrics_listen, "127.0.0.1:9100");
    CHECK_STR(c->central_url, "http://central.local:9019");
    CHECK_STR(c->central_api_key_file, "/etc/central/central.conf");
    CHECK(c->central_api_key == NULL);
    CHECK_INT(c->central_min_update_interval_ms, 0);
    CHECK_INT(c->central_flush_timeout_ms, 8000);
    CHECK(strstr(c->output_file, "/episodes.jsonl") != NULL && c->output_file[0] == '/');
    CHECK_INT(c->ncameras, 2);
    vg_config_camera *a = &c->cameras[0], *b = &c->cameras[1];
    CHECK_STR(a->media, "cam0");
    CHECK_STR(a->url, "rtsp://user:pass@10.0.0.5/stream1");
    CHECK_STR(a->script, rules);
    CHECK_STR(a->params_json, "{\"threshold\":25,\"zones\":[1,2]}");
    CHECK_STR(a->zones_json, "{\"door\":[[0.1,0.2],[0.5,0.2],[0.5,1]],\"yard\":[[0,0],[1,0],[1,1],[0,1]]}");
    CHECK_STR(a->settings.transport, "udp"); /* from defaults */
    CHECK_INT(a->settings.analysis_width, 240);
    CHECK_NEAR(a->settings.fps, 10, 0);
    CHECK_INT(a->settings.decode, VG_DECODE_NONREF);
    CHECK_INT(a->settings.decoder_threads, 2);
    CHECK_INT(a->settings.skip_loop_filter, 1);
    CHECK_NEAR(a->settings.budget_ms, 20, 0);
    CHECK_INT(a->settings.stall_timeout_ms, 4000);
    CHECK_INT(a->settings.rtcp_wait_ms, 3000);
    CHECK_INT(a->settings.watch, 0); /* from defaults */
    CHECK(a->jit && a->unsafe);
    CHECK(!b->jit && !b->unsafe);
    CHECK_INT(b->settings.watch, 1);
    CHECK_STR(b->script, rules); /* every default overridden */
    CHECK_STR(b->params_json, "{}");
    CHECK_STR(b->zones_json, "{}");
    CHECK_STR(b->settings.transport, "tcp");
    CHECK_INT(b->settings.rtcp_wait_ms, 0);
    CHECK_INT(b->settings.analysis_width, 640);
    CHECK_NEAR(b->settings.fps, 0, 0);
    CHECK_INT(b->settings.decode, VG_DECODE_KEYFRAMES);
    CHECK_INT(b->settings.decoder_threads, 1);
    CHECK_INT(b->settings.skip_loop_filter, 0);
    CHECK_NEAR(b->settings.budget_ms, 12.5, 0);
    vg_config_free(c);
    free(text);
    free(full);
}

static void test_builtin_defaults(void) {
    vg_config_errors e = {0};
    vg_config *c = vg_config_parse("{\"node\": {\"machine_id\": 0}, \"cameras\": [{\"media\": \"m\", "
                                   "\"url\": \"rtsp://h/s\", \"script\": \"rule.lua\"}]}",
                                   dir, &e);
    CHECK(c != NULL);
    dump(&e);
    if (!c) return;
    CHECK(c->central_url == NULL && c->output_file == NULL && c->spool_dir == NULL && !c->has_log_level);
    CHECK(c->metrics_listen == NULL);
    CHECK_INT(c->central_min_update_interval_ms, 1000);
    CHECK_INT(c->central_flush_timeout_ms, 5000);
    vg_config_camera *m = &c->cameras[0];
    CHECK_STR(m->settings.transport, "tcp");
    CHECK_STR(m->zones_json, "{}");
    CHECK_INT(m->settings.analysis_width, 320);
    CHECK_NEAR(m->settings.fps, 0, 0);
    CHECK_INT(m->settings.decode, VG_DECODE_ALL);
    CHECK_INT(m->settings.decoder_threads, 1);
    CHECK_INT(m->settings.skip_loop_filter, 0);
    CHECK_NEAR(m->settings.budget_ms, 50, 0);
    CHECK_INT(m->settings.stall_timeout_ms, 10000);
    CHECK_INT(m->settings.rtcp_wait_ms, 5000);
    CHECK(m->settings.watch && !m->jit && !m->unsafe);
    CHECK(m->overlay == NULL);
    vg_config_free(c);
}

/* A camera's overlay path is resolved like every path, copied with the camera, and a change restarts it. */
static void test_overlay(void) {
    vg_config_errors e = {0};
    vg_config *c = vg_config_parse("{\"node\": {\"machine_id\": 0}, \"cameras\": [{\"media\": \"m\", "
                                   "\"url\": \"rtsp://h/s\", \"script\": \"rule.lua\", \"overlay\": \"why\"}]}",
                                   dir, &e);
    CHECK(c != NULL);
    dump(&e);
    if (!c) return;
    char want[600];
    snprintf(want, sizeof want, "%s/why", dir);
    CHECK_STR(c->cameras[0].overlay, want);
    vg_config_camera copy;
    vg_config_camera_copy(&copy, &c->cameras[0]);
    CHECK(copy.overlay != c->cameras[0].overlay && vg_config_camera_same(&copy, &c->cameras[0]));
    free(copy.overlay);
    copy.overlay = NULL;
    CHECK(!vg_config_camera_same(&copy, &c->cameras[0]));
    vg_config_camera_clear(&copy);
    vg_config_free(c);
    CHECK(vg_config_parse("{\"node\": {\"machine_id\": 0}, \"cameras\": [{\"media\": \"m\", "
                          "\"url\": \"rtsp://h/s\", \"script\": \"rule.lua\", \"overlay\": 5}]}", dir, &e) == NULL);
    CHECK(e.count >= 1 && strstr(e.lines[0], "cameras[0].overlay: must be a string") != NULL);
    vg_config_errors_free(&e);
}

/* central.api_key inline instead of a file; it is never part of a problem line. */
static void test_inline_key(void) {
    vg_config_errors e = {0};
    vg_config *c = vg_config_parse("{\"node\": {\"machine_id\": 1, \"spool_dir\": \"/var/spool/vigil\"},"
                                   " \"central\": {\"url\": \"https://c\", \"api_key\": \"k3y\"},"
                                   " \"cameras\": [{\"media\": \"m\", \"url\": \"rtsp://h/s\", \"script\": \"rule.lua\"}]}",
                                   dir, &e);
    CHECK(c != NULL);
    dump(&e);
    if (c) {
        CHECK_STR(c->central_api_key, "k3y");
        CHECK(c->central_api_key_file == NULL);
    }
    vg_config_free(c);
    CHECK(vg_config_parse("{\"node\": {\"machine_id\": 1, \"spool_dir\": \"/s\"},"
                          " \"central\": {\"url\": \"https://c\", \"api_key\": \"se\\ncret\"},"
                          " \"cameras\": [{\"media\": \"m\", \"url\": \"rtsp://h/s\", \"script\": \"rule.lua\"}]}",
                          dir, &e) == NULL);
    CHECK(has_line(&e, "central.api_key: has control characters"));
    CHECK_INT(e.count, 1);
    for (int i = 0; i < e.count; i++) CHECK(strstr(e.lines[i], "cret") == NULL);
    vg_config_errors_free(&e);
}

/* Every problem of the settings added for many cameras per host, each with its path. */
static void test_tunables_and_zones_problems(void) {
    const char *bad =
        "{\"node\": {\"machine_id\": 1, \"spool_dir\": \"s\", \"metrics\": \"9100\"},\n"
        " \"central\": {\"url\": \"http://c\", \"api_key\": \"k\", \"api_key_file\": \"f\",\n"
        "             \"min_update_interval_ms\": -5, \"flush_timeout_ms\": 1.5},\n"
        " \"defaults\": {\"fps\": 2000, \"decode\": \"some\", \"decoder_threads\": 0, \"skip_loop_filter\": 1,\n"
        "              \"transport\": \"http\", \"zones\": {}, \"jit\": true},\n"
        " \"cameras\": [\n"
        "   {\"media\": \"a\", \"url\": \"rtsp://h/a\", \"script\": \"rule.lua\", \"fps\": \"5\", \"zones\": [1]},\n"
        "   {\"media\": \"b\", \"url\": \"rtsp://h/b\", \"script\": \"rule.lua\", \"zones\": {\n"
        "     \"door\": [[0.1, 0.1], \"x\", [0.5, 0.5, 0.5], [1.5, 0.2], [0.2, -0.1], [0.3, 0.3]],\n"
        "     \"gate\": [[0, 0], [1, 1]], \"lane\": 3, \"\": [[0, 0], [1, 0], [1, 1]],\n"
        "     \"gate\": [[0, 0], [1, 0], [1, 1]]}},\n"
        "   {\"media\": \"a\", \"url\": \"rtsp://h/c\", \"script\": \"rule.lua\", \"unsafe\": \"yes\"}\n"
        " ]}\n";
    vg_config_errors e = {0};
    CHECK(vg_config_parse(bad, dir, &e) == NULL);
    CHECK(has_line(&e, "node.metrics: \"9100\" is not HOST:PORT (an IPv4 address, * or localhost, and a port 0..65535)"));
    CHECK(has_line(&e, "central.api_key: give either api_key or api_key_file, not both"));
    CHECK(has_line(&e, "central.min_update_interval_ms: -5 is not 0..3600000"));
    CHECK(has_line(&e, "central.flush_timeout_ms: 1.5 is not an integer"));
    CHECK(has_line(&e, "defaults.zones: unknown key"));
    CHECK(has_line(&e, "defaults.fps: 2000 is not 0..1000"));
    CHECK(has_line(&e, "defaults.decode: \"some\" is not all, nonref or keyframes"));
    CHECK(has_line(&e, "defaults.decoder_threads: 0 is not 1..64"));
    CHECK(has_line(&e, "defaults.skip_loop_filter: must be true or false, not a number"));
    CHECK(has_line(&e, "defaults.transport: \"http\" is not tcp or udp"));
    CHECK(has_line(&e, "cameras[0].fps: must be a number, not a string"));
    CHECK(has_line(&e, "cameras[0].zones: must be an object {\"name\": [[x, y], ...]}, not an array"));
    CHECK(has_line(&e, "cameras[1].zones.door[1]: must be a point [x, y], not a string"));
    CHECK(has_line(&e, "cameras[1].zones.door[2]: must be a point [x, y] of two numbers"));
    CHECK(has_line(&e, "cameras[1].zones.door[3]: [1.5, 0.2] is outside the frame (x and y are fractions 0..1)"));
    CHECK(has_line(&e, "cameras[1].zones.door[4]: [0.2, -0.1] is outside the frame (x and y are fractions 0..1)"));
    CHECK(has_line(&e, "cameras[1].zones.gate: has 2 points; a zone needs at least 3"));
    CHECK(has_line(&e, "cameras[1].zones.lane: must be an array of points [[x, y], ...], not a number"));
    CHECK(has_line(&e, "cameras[1].zones: a zone has an empty name"));
    CHECK(has_line(&e, "cameras[1].zones.gate: given twice"));
    CHECK(has_line(&e, "cameras[2].media: \"a\" is already the media of cameras[0]"));
    CHECK(has_line(&e, "defaults.jit: unknown key"));
    CHECK(has_line(&e, "cameras[2].unsafe: must be true or false, not a string"));
    CHECK_INT(e.count, 23);
    if (e.count != 23) dump(&e);
    vg_config_errors_free(&e);

    CHECK(vg_config_parse("{\"node\": {\"machine_id\": 1, \"spool_dir\": \"s\", \"metrics\": \"10.0.0.300:80\"},"
                          " \"central\": {\"url\": \"http://c\"},"
                          " \"cameras\": [{\"media\": \"m\", \"url\": \"rtsp://h/s\", \"script\": \"rule.lua\"}]}",
                          dir, &e) == NULL);
    CHECK(has_line(&e, "node.metrics: \"10.0.0.300:80\" is not HOST:PORT (an IPv4 address, * or localhost, and a port 0..65535)"));
    CHECK(has_line(&e, "central.api_key_file: missing (or an inline central.api_key)"));
    CHECK_INT(e.count, 2);
    vg_config_errors_free(&e);
}

static vg_config *parse_ok(const char *text) {
    vg_config_errors e = {0};
    vg_config *c = vg_config_parse(text, dir, &e);
    CHECK(c != NULL);
    dump(&e);
    vg_config_errors_free(&e);
    return c;
}

/* output.versions and output.previews_dir: parsed, resolved, checked, and a change needs a restart. */
static void test_output_shape(void) {
    const char *camera = "\"node\": {\"machine_id\": 1}, \"cameras\": [{\"media\": \"m\", \"url\": \"rtsp://h/s\", "
                         "\"script\": \"rule.lua\"}]}";
    char text[512];
    snprintf(text, sizeof text, "{\"output\": {\"file\": \"o.jsonl\", \"versions\": \"final\", \"previews_dir\": \"jpg\"}, %s",
             camera);
    vg_config *c = parse_ok(text);
    if (c) {
        CHECK(c->output_final_only == 1);
        CHECK(c->output_previews_dir && c->output_previews_dir[0] == '/' && strstr(c->output_previews_dir, "/jpg"));
        snprintf(text, sizeof text, "{\"output\": {\"file\": \"o.jsonl\"}, %s", camera);
        vg_config *d = parse_ok(text);
        vg_config_errors changed = {0};
        if (d) vg_config_fixed_changes(c, d, &changed);
        CHECK(has_line(&changed, "output.versions: changed") && has_line(&changed, "output.previews_dir: changed"));
        vg_config_errors_free(&changed);
        vg_config_free(d);
        vg_config_free(c);
    }
    vg_config_errors e = {0};
    snprintf(text, sizeof text, "{\"output\": {\"versions\": \"last\"}, %s", camera);
    CHECK(vg_config_parse(text, dir, &e) == NULL);
    CHECK(has_line(&e, "output.versions: 'last' is not all or final"));
    vg_config_errors_free(&e);
    snprintf(text, sizeof text, "{\"output\": {\"versions\": \"final\"}, %s", camera);
    CHECK(vg_config_parse(text, dir, &e) == NULL);
    CHECK(has_line(&e, "output: versions and previews_dir shape output.file's lines: give file too"));
    vg_config_errors_free(&e);
}

/* What a reload compares: any camera setting makes a camera "changed"; node/central/output are fixed. */
static void test_reload_comparisons(void) {
    vg_config *c = parse_ok("{\"node\": {\"machine_id\": 1},"
                            " \"cameras\": [{\"media\": \"m\", \"url\": \"rtsp://h/s\", \"script\": \"rule.lua\","
                            " \"zones\": {\"z\": [[0, 0], [1, 0], [1, 1]]}, \"fps\": 5}]}");
    if (!c) return;
    vg_config_camera copy;
    vg_config_camera_copy(&copy, &c->cameras[0]);
    CHECK(copy.url != c->cameras[0].url && copy.zones_json != c->cameras[0].zones_json); /* its own strings */
    CHECK(vg_config_camera_same(&copy, &c->cameras[0]));
    free(copy.zones_json);
    copy.zones_json = strdup("{\"z\":[[0,0],[1,0],[0.5,1]]}");
    CHECK(!vg_config_camera_same(&copy, &c->cameras[0]));
    vg_config_camera_clear(&copy);
    CHECK(copy.media == NULL);
    vg_config_camera_copy(&copy, &c->cameras[0]);
    copy.settings.fps = 6;
    CHECK(!vg_config_camera_same(&copy, &c->cameras[0]));
    copy.settings.fps = 5;
    copy.settings.decode = VG_DECODE_KEYFRAMES;
    CHECK(!vg_config_camera_same(&copy, &c->cameras[0]));
    copy.settings.decode = VG_DECODE_ALL;
    free(copy.params_json);
    copy.params_json = strdup("{\"a\":1}");
    CHECK(!vg_config_camera_same(&copy, &c->cameras[0]));
    vg_config_camera_clear(&copy);

    vg_config *d = parse_ok("{\"node\": {\"machine_id\": 2, \"metrics\": \"*:9100\", \"spool_dir\": \"sp\","
                            " \"log_level\": \"debug\"},"
                            " \"central\": {\"url\": \"http://c\", \"api_key\": \"new-secret\"},"
                            " \"cameras\": [{\"media\": \"m\", \"url\": \"rtsp://h/s\", \"script\": \"rule.lua\"}]}");
    if (d) {
        vg_config_errors changed = {0};
        CHECK_INT(vg_config_fixed_changes(c, d, &changed), 5);
        CHECK(has_line(&changed, "node.machine_id: changed"));
        CHECK(has_line(&changed, "node.spool_dir: changed"));
        CHECK(has_line(&changed, "node.metrics: changed"));
        CHECK(has_line(&changed, "central.url: changed"));
        CHECK(has_line(&changed, "central.api_key: changed"));
        for (int i = 0; i < changed.count; i++) CHECK(strstr(changed.lines[i], "new-secret") == NULL);
        vg_config_errors_free(&changed);
        CHECK_INT(vg_config_fixed_changes(d, d, &changed), 0); /* log_level and cameras are not fixed */
        CHECK_INT(vg_config_fixed_changes(c, c, &changed), 0);
        vg_config_errors_free(&changed);
    }
    vg_config_free(d);
    vg_config_free(c);
}

/* Every RESTART row of VG_CONFIG_HOST_SETTINGS, whatever it is: a reload that changes it (alone) is one line
 * naming its path; a RELOAD row's change is none. A new row needs no edit here. */
#define CHANGE_TEXT(c, member) (c)->member = (c)->member ? NULL : (char *)"changed"
#define CHANGE_INT(c, member) (c)->member += 1
#define CHANGE_DURATION CHANGE_INT
#define CHANGE_CHOICE CHANGE_INT
#define CHANGE_LEVEL(c, member) (c)->member = (c)->member == VG_LOG_DEBUG ? VG_LOG_ERROR : VG_LOG_DEBUG
#define CHANGE_SCRIPTS(c, member) (c)->n##member += 1
#define RESTART_LINES 1
#define RELOAD_LINES 0
#define CHECK_FIXED_CHANGE(section, key, kind, member, min, max, def, apply, ...)                                \
    do {                                                                                                          \
        vg_config changed_config = *c;                                                                            \
        CHANGE_##kind(&changed_config, member);                                                                   \
        vg_config_errors changed = {0};                                                                           \
        CHECK_INT(vg_config_fixed_changes(c, &changed_config, &changed), apply##_LINES);                          \
        CHECK(!apply##_LINES || has_line(&changed, section "." key ": changed"));                                 \
        vg_config_errors_free(&changed);                                                                          \
    } while (0);

static void test_every_fixed_setting(void) {
    vg_config *c = parse_ok("{\"node\": {\"machine_id\": 1},"
                            " \"cameras\": [{\"media\": \"m\", \"url\": \"rtsp://h/s\", \"script\": \"rule.lua\"}]}");
    if (!c) return;
    VG_CONFIG_HOST_SETTINGS(CHECK_FIXED_CHANGE)
    vg_config_free(c);
}

/* One bad file, every problem reported. */
static void test_every_problem(void) {
    const char *bad =
        "{\"node\": {\"machine_id\": 1200, \"log_level\": \"loud\", \"colour\": 1},\n"
        " \"central\": {\"url\": \"ftp://x\"},\n"
        " \"defaults\": {\"budget_ms\": \"fast\", \"stall_timeout_ms\": 2.5},\n"
        " \"extra\": true,\n"
        " \"cameras\": [\n"
        "   {\"media\": \"cam0\", \"url\": \"http://x/y\", \"script\": \"nope.lua\", \"transport\": \"sctp\",\n"
        "    \"bogus\": 1, \"params\": [1]},\n"
        "   {\"media\": \"cam 1\", \"script\": \"rule.lua\"},\n"
        "   {\"media\": \"cam0\", \"url\": \"rtsp://h/s\", \"script\": \"rule.lua\", \"url\": \"rtsp://h/t\",\n"
        "    \"rtcp_wait_ms\": -1},\n"
        "   7\n"
        " ]}\n";
    vg_config_errors e = {0};
    CHECK(vg_config_parse(bad, dir, &e) == NULL);
    char nope[160];
    snprintf(nope, sizeof nope, "cameras[0].script: %s/nope.lua: No such file or directory", dir);
    CHECK(has_line(&e, "node.colour: unknown key"));
    CHECK(has_line(&e, "node.machine_id: 1200 is not 0..1023"));
    CHECK(has_line(&e, "node.log_level: \"loud\" is not error, warn, info or debug"));
    CHECK(has_line(&e, "central.url: \"ftp://x\" is not an http:// or https:// URL"));
    CHECK(has_line(&e, "central.api_key_file: missing (or an inline central.api_key)"));
    CHECK(has_line(&e, "node.spool_dir: missing (Central needs a spool for versions not yet delivered)"));
    CHECK(has_line(&e, "defaults.budget_ms: must be a number, not a string"));
    CHECK(has_line(&e, "defaults.stall_timeout_ms: 2.5 is not an integer"));
    CHECK(has_line(&e, "extra: unknown key"));
    CHECK(has_line(&e, "cameras[0].bogus: unknown key"));
    CHECK(has_line(&e, "cameras[0].url: not an rtsp:// or rtsps:// URL"));
    CHECK(has_line(&e, nope));
    CHECK(has_line(&e, "cameras[0].params: must be an object, not an array"));
    CHECK(has_line(&e, "cameras[0].transport: \"sctp\" is not tcp or udp"));
    CHECK(has_line(&e, "cameras[1].media: \"cam 1\" has a space or control character"));
    CHECK(has_line(&e, "cameras[1].url: missing"));
    CHECK(has_line(&e, "cameras[2].media: \"cam0\" is already the media of cameras[0]"));
    CHECK(has_line(&e, "cameras[2].url: given twice"));
    CHECK(has_line(&e, "cameras[2].rtcp_wait_ms: -1 is not 0..60000"));
    CHECK(has_line(&e, "cameras[3]: must be an object, not a number"));
    CHECK_INT(e.count, 20);
    if (e.count != 20) dump(&e);
    vg_config_errors_free(&e);
}

static void test_whole_document(void) {
    vg_config_errors e = {0};
    CHECK(vg_config_parse("{\"node\": {\"machine_id\": 1},\n \"cameras\": [,]}", dir, &e) == NULL);
    CHECK(has_line(&e, "not valid JSON near line 2, column 14"));
    vg_config_errors_free(&e);
    CHECK(vg_config_parse("[1]", dir, &e) == NULL);
    CHECK(has_line(&e, "must be a JSON object, not an array"));
    vg_config_errors_free(&e);
    CHECK(vg_config_parse("{}", dir, &e) == NULL);
    CHECK(has_line(&e, "node: missing"));
    CHECK(has_line(&e, "cameras: missing"));
    CHECK_INT(e.count, 2);
    vg_config_errors_free(&e);
    CHECK(vg_config_parse("{\"node\": {}, \"cameras\": []}", dir, &e) == NULL);
    CHECK(has_line(&e, "node.machine_id: missing"));
    CHECK(has_line(&e, "cameras: must be a non-empty array of cameras"));
    vg_config_errors_free(&e);
    CHECK(vg_config_load("/nonexistent/vigil.json", &e) == NULL);
    CHECK(has_line(&e, "No such file or directory"));
    vg_config_errors_free(&e);
}

/* Analytics-node mode: node.listen, the keys, retention as ms or a duration string, config_external with
 * stream_scripts (match defaults to "*"), no cameras needed then; and each key's problems. */
static void test_node_mode(void) {
    vg_config *c = parse_ok(
        "{\"node\": {\"machine_id\": 2, \"spool_dir\": \"spool\", \"listen\": \"0.0.0.0:8020\", \"api_key\": \"nk\",\n"
        "  \"keep_episodes_for\": \"36h\", \"config_external\": \"http://ck@central:9019/api\",\n"
        "  \"config_external_interval_ms\": 2000,\n"
        "  \"stream_scripts\": [{\"match\": \"door-*\", \"script\": \"rule.lua\", \"params\": {\"a\": 1}},\n"
        "                     {\"script\": \"rule.lua\"}]},\n"
        " \"defaults\": {\"transport\": \"udp\"}}");
    if (!c) return;
    CHECK_STR(c->node_listen, "0.0.0.0:8020");
    CHECK_STR(c->node_api_key, "nk");
    CHECK_INT(c->node_keep_episodes_ms, 36LL * 3600 * 1000);
    CHECK_STR(c->config_external, "http://ck@central:9019/api");
    CHECK_INT(c->config_external_interval_ms, 2000);
    CHECK_INT(c->ncameras, 0);
    CHECK_INT(c->nstream_scripts, 2);
    if (c->nstream_scripts == 2) {
        CHECK_STR(c->stream_scripts[0].match, "door-*");
        CHECK_STR(c->stream_scripts[0].params_json, "{\"a\":1}");
        CHECK_STR(c->stream_scripts[1].match, "*");
        CHECK_STR(c->stream_scripts[1].params_json, "{}");
        CHECK(strstr(c->stream_scripts[1].script, dir) == c->stream_scripts[1].script); /* resolved */
    }
    CHECK_STR(c->defaults.settings.transport, "udp"); /* kept for Central's cameras */

    vg_config *same = parse_ok("{\"node\": {\"machine_id\": 2, \"spool_dir\": \"spool\", \"listen\": \"0.0.0.0:8021\",\n"
                               "  \"keep_episodes_for\": 3600000, \"config_external\": \"http://central:9019/api\",\n"
                               "  \"config_external_key\": \"k2\", \"stream_scripts\": [{\"script\": \"rule.lua\"}]},\n"
                               " \"cameras\": []}");
    if (same) {
        CHECK_INT(same->node_keep_episodes_ms, 3600000);
        CHECK_STR(same->config_external_key, "k2");
        vg_config_errors changed = {0};
        CHECK_INT(vg_config_fixed_changes(c, same, &changed), 7);
        CHECK(has_line(&changed, "node.listen: changed") && has_line(&changed, "node.stream_scripts: changed") &&
              has_line(&changed, "node.config_external_key: changed") && has_line(&changed, "node.api_key: changed"));
        vg_config_errors_free(&changed);
        vg_config_free(same);
    }
    vg_config_free(c);

    vg_config_errors e = {0};
    c = vg_config_parse(
        "{\"node\": {\"machine_id\": 2, \"listen\": \"8020\", \"api_key\": \"a\", \"api_key_file\": \"f\",\n"
        "  \"keep_episodes_for\": \"2 weeks\", \"config_external\": \"ftp://sec@h/x\",\n"
        "  \"stream_scripts\": [{\"match\": \"*\", \"script\": \"rule.lua\"}, {\"match\": \"x*\", \"script\": \"none.lua\","
        " \"zones\": {}}, 5]}}",
        dir, &e);
    CHECK(c == NULL);
    CHECK(has_line(&e, "node.listen: \"8020\" is not HOST:PORT (an IPv4 address, * or localhost, and a port 0..65535)"));
    CHECK(has_line(&e, "node.api_key: give either api_key or api_key_file, not both"));
    CHECK(has_line(&e, "node.keep_episodes_for: \"2 weeks\" is not a duration (ms, or a string like \"90s\", "
                       "\"30m\", \"24h\", \"7d\")"));
    CHECK(has_line(&e, "node.config_external: not an http:// or https:// URL"));
    CHECK(has_line(&e, "node.stream_scripts[1].zones: unknown key"));
    CHECK(has_line(&e, "node.stream_scripts[1]: never used: stream_scripts[0] before it matches every name"));
    CHECK(has_line(&e, "node.stream_scripts[2]: must be an object, not a number"));
    CHECK(has_line(&e, "cameras: missing")); /* without a usable config_external the file needs cameras */
    for (int i = 0; i < e.count; i++) CHECK(strstr(e.lines[i], "sec@") == NULL);
    vg_config_errors_free(&e);

    c = vg_config_parse("{\"node\": {\"machine_id\": 2, \"listen\": \"*:8020\", \"keep_episodes_for\": \"10s\",\n"
                        "  \"config_external\": \"http://key@h/x\", \"config_external_key\": \"other\"}}",
                        dir, &e);
    CHECK(c == NULL);
    CHECK(has_line(&e, "node.spool_dir: missing (node.listen keeps the episodes Central pulls in {spool_dir}/episodes)"));
    CHECK(has_line(&e, "node.keep_episodes_for: 10000 ms is not 1 minute..366 days"));
    CHECK(has_line(&e, "node.config_external_key: node.config_external has a key too (its user part): give it once"));
    CHECK(has_line(&e, "node.stream_scripts: missing (node.config_external needs the rule each stream runs; "
                       "{\"script\": \"rule.lua\"} gives every stream one)"));
    for (int i = 0; i < e.count; i++) CHECK(strstr(e.lines[i], "other") == NULL && strstr(e.lines[i], "key@") == NULL);
    vg_config_errors_free(&e);
}

/* Issue 17 items 10, 11, 15 and 18: a config that is /dev/zero or a FIFO is refused at once; a duration past
 * what a long long holds is a range problem, not undefined behaviour; text cJSON would cut or refuse without
 * saying why is named; params give each key once, at any depth, as the rest of the file does. */
static void test_hostile_input(void) {
    vg_config_errors e = {0};
    CHECK(vg_config_load("/dev/zero", &e) == NULL);
    CHECK(has_line(&e, "is a character device, not a regular file"));
    vg_config_errors_free(&e);
    char fifo[128];
    snprintf(fifo, sizeof fifo, "%s/fifo.json", dir);
    CHECK_INT(mkfifo(fifo, 0600), 0);
    CHECK(vg_config_load(fifo, &e) == NULL); /* returns: nothing waits for a writer */
    CHECK(has_line(&e, "is a FIFO, not a regular file"));
    vg_config_errors_free(&e);
    unlink(fifo);

    const char *keep[][2] = {
        {"1e300", "node.keep_episodes_for: out of range (max 366 days)"},
        {"\"1e300d\"", "node.keep_episodes_for: out of range (max 366 days)"},
        {"9.3e18", "node.keep_episodes_for: out of range (max 366 days)"},
        {"\"367d\"", "node.keep_episodes_for: out of range (max 366 days)"},
        {"\"inf\"", "node.keep_episodes_for: \"inf\" is not a duration (ms, or a string like \"90s\", \"30m\", "
                   "\"24h\", \"7d\")"},
        {"\"0x10h\"", "node.keep_episodes_for: \"0x10h\" is not a duration (ms, or a string like \"90s\", \"30m\", "
                     "\"24h\", \"7d\")"},
        {"-5", "node.keep_episodes_for: must be a whole number of ms or a string like \"24h\", not a negative or "
               "fractional number"},
        {"\"59.9s\"", "node.keep_episodes_for: 59900 ms is not 1 minute..366 days"},
    };
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
        char text[300];
        snprintf(text, sizeof text, "{\"node\": {\"machine_id\": 1, \"spool_dir\": \"s\", \"listen\": \"*:0\", "
                 "\"keep_episodes_for\": %s}, \"cameras\": [{\"media\": \"m\", \"url\": \"rtsp://h/\", "
                 "\"script\": \"rule.lua\"}]}", keep[i][0]);
        CHECK(vg_config_parse(text, dir, &e) == NULL);
        CHECK(has_line(&e, keep[i][1]));
        CHECK_INT(e.count, 1);
        vg_config_errors_free(&e);
    }
    vg_config *c = vg_config_parse("{\"node\": {\"machine_id\": 1, \"spool_dir\": \"s\", \"listen\": \"*:0\", "
                                   "\"keep_episodes_for\": \"366d\"}, \"cameras\": [{\"media\": \"m\", "
                                   "\"url\": \"rtsp://h/\", \"script\": \"rule.lua\"}]}", dir, &e);
    CHECK(c && c->node_keep_episodes_ms == 366LL * 86400000);
    vg_config_free(c);

    CHECK(vg_config_parse("{\"node\": {\"machine_id\": 1},\n \"cameras\": [{\"media\": \"cam\\u0000evil\"}]}", dir,
                          &e) == NULL);
    CHECK(has_line(&e, "\\u0000 in a string (a string cannot hold a NUL) near line 2, column 28"));
    CHECK_INT(e.count, 1);
    vg_config_errors_free(&e);
    char deep[2200];
    int n = snprintf(deep, sizeof deep, "{\"node\": ");
    for (int i = 0; i < 1001; i++) deep[n++] = '[';
    deep[n] = 0;
    CHECK(vg_config_parse(deep, dir, &e) == NULL);
    CHECK(has_line(&e, "nested deeper than 1000 levels near line 1, column 1009")); /* the object is a level */
    vg_config_errors_free(&e);

    CHECK(vg_config_parse("{\"node\": {\"machine_id\": 1}, \"cameras\": [{\"media\": \"m\", \"url\": \"rtsp://h/\", "
                          "\"script\": \"rule.lua\", \"params\": {\"a\": 1, \"x\": {\"y\": 1, \"y\": 2}, \"a\": 3}}]}",
                          dir, &e) == NULL);
    CHECK(has_line(&e, "cameras[0].params.a: given twice"));
    CHECK(has_line(&e, "cameras[0].params.x.y: given twice"));
    CHECK_INT(e.count, 2);
    vg_config_errors_free(&e);

    const char *params[][2] = {
        {"{\"a\": 1, \"b\": {\"c\": [1, {\"d\": 2}]}}", NULL},
        {"{\"a\": 1, \"a\": 2}", "a: given twice"},
        {"{\"a\": [{\"b\": 1, \"b\": 1}]}", "a[0].b: given twice"},
        {"{\"a\": \"\\udfff\"}", "\\udfff is the second half of a UTF-16 surrogate pair without its first half near "
                                  "line 1, column 8"},
        {"{\"a\": \"x\\u0000\"}", "\\u0000 in a string (a string cannot hold a NUL) near line 1, column 9"},
        {"[1]", "must be a JSON object, not an array"},
        {"{\"a\": 1", "not valid JSON near line 1, column 7"},
    };
    for (size_t i = 0; i < sizeof params / sizeof *params; i++) {
        char err[200] = "";
        int rc = vg_config_check_params(params[i][0], strlen(params[i][0]), err, sizeof err);
        CHECK_INT(rc, params[i][1] ? -1 : 0);
        if (params[i][1]) CHECK_STR(err, params[i][1]);
    }
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/vigil-config-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    write_file("rule.lua", "function on_frame(frame) end\n");
    test_valid();
    test_builtin_defaults();
    test_overlay();
    test_inline_key();
    test_tunables_and_zones_problems();
    test_reload_comparisons();
    test_every_fixed_setting();
    test_every_problem();
    test_whole_document();
    test_node_mode();
    test_hostile_input();
    test_output_shape();
    char path[128];
    snprintf(path, sizeof path, "%s/rule.lua", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/vigil.json", dir);
    unlink(path);
    rmdir(dir);
    return CHECK_DONE();
}
