/* test_config.c — `vigil run`'s config: a valid file with defaults and per-camera overrides, relative paths
 * resolved against the file's directory, and bad files refused with EVERY problem named by its JSON path. */
#include <stdlib.h>
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
    "{\"node\": {\"machine_id\": 7, \"spool_dir\": \"spool\", \"log_level\": \"debug\"},\n"
    " \"central\": {\"url\": \"http://central.local:9019\", \"api_key_file\": \"/etc/central/central.conf\"},\n"
    " \"output\": {\"file\": \"episodes.jsonl\"},\n"
    " \"defaults\": {\"analysis_width\": 240, \"budget_ms\": 20, \"stall_timeout_ms\": 4000, \"rtcp_wait_ms\": 3000},\n"
    " \"cameras\": [\n"
    "   {\"media\": \"cam0\", \"url\": \"rtsp://user:pass@10.0.0.5/stream1\", \"script\": \"rule.lua\",\n"
    "    \"params\": {\"threshold\": 25, \"zones\": [1, 2]}, \"transport\": \"udp\"},\n"
    "   {\"media\": \"cam1\", \"url\": \"rtsps://10.0.0.6/s\", \"script\": \"RULES\", \"rtcp_wait_ms\": 0,\n"
    "    \"analysis_width\": 640}\n"
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
    CHECK_STR(c->central_url, "http://central.local:9019");
    CHECK_STR(c->central_api_key_file, "/etc/central/central.conf");
    CHECK(strstr(c->output_file, "/episodes.jsonl") != NULL && c->output_file[0] == '/');
    CHECK_INT(c->ncameras, 2);
    vg_config_camera *a = &c->cameras[0], *b = &c->cameras[1];
    CHECK_STR(a->media, "cam0");
    CHECK_STR(a->url, "rtsp://user:pass@10.0.0.5/stream1");
    CHECK_STR(a->script, rules);
    CHECK_STR(a->params_json, "{\"threshold\":25,\"zones\":[1,2]}");
    CHECK_STR(a->transport, "udp");
    CHECK_INT(a->analysis_width, 240);
    CHECK_NEAR(a->budget_ms, 20, 0);
    CHECK_INT(a->stall_timeout_ms, 4000);
    CHECK_INT(a->rtcp_wait_ms, 3000);
    CHECK_STR(b->script, rules);
    CHECK_STR(b->params_json, "{}");
    CHECK_STR(b->transport, "tcp");
    CHECK_INT(b->rtcp_wait_ms, 0);
    CHECK_INT(b->analysis_width, 640);
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
    CHECK_INT(c->cameras[0].analysis_width, 320);
    CHECK_NEAR(c->cameras[0].budget_ms, 50, 0);
    CHECK_INT(c->cameras[0].stall_timeout_ms, 10000);
    CHECK_INT(c->cameras[0].rtcp_wait_ms, 5000);
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
    CHECK(has_line(&e, "central.api_key_file: missing"));
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
    CHECK(has_line(&e, "/nonexistent/vigil.json: No such file or directory"));
    vg_config_errors_free(&e);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/vigil-config-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    write_file("rule.lua", "function on_frame(frame) end\n");
    test_valid();
    test_builtin_defaults();
    test_every_problem();
    test_whole_document();
    char path[128];
    snprintf(path, sizeof path, "%s/rule.lua", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/vigil.json", dir);
    unlink(path);
    rmdir(dir);
    return CHECK_DONE();
}
