/* test_external.c — node.config_external: rules matched by glob (first match wins, "*" as the default); the
 * stream list parsed (inputs[].url, a plain url, non-RTSP inputs passed over, skips with their reasons, a
 * document that is not a list refused); and the source against a real loopback server (vg_http): the key
 * from the URL's user part or the option sent as Bearer, never in the URL curl uses nor in a log line, a
 * failing fetch logged once until it recovers, a skipped stream logged once. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "vg_external.h"
#include "vg_http.h"
#include "vg_log.h"
#include "vg_snowflake.h"
#include "vg_time.h"

static vg_stream_script RULES[] = {
    {.match = "lobby-*", .script = "/r/zone.lua", .params_json = "{\"zone\":1}"},
    {.match = "cam[12]", .script = "/r/motion.lua", .params_json = "{}"},
    {.match = "*", .script = "/r/default.lua", .params_json = "{}"},
};

static void test_match(void) {
    CHECK(vg_external_match(RULES, 3, "lobby-east") == &RULES[0]);
    CHECK(vg_external_match(RULES, 3, "cam2") == &RULES[1]);
    CHECK(vg_external_match(RULES, 3, "cam3") == &RULES[2]);
    CHECK(vg_external_match(RULES, 3, "lobby") == &RULES[2]);
    CHECK(vg_external_match(RULES, 2, "cam3") == NULL); /* no default: no rule */
    CHECK(vg_external_match(RULES, 0, "cam1") == NULL);
}

static const char *skip_reason(const vg_external_list *l, const char *name) {
    for (int i = 0; i < l->nskipped; i++)
        if (strcmp(l->skipped[i].name, name) == 0) return l->skipped[i].reason;
    return NULL;
}

static void test_parse(void) {
    const char *json =
        "{\"streams\":["
        "{\"name\":\"cam1\",\"inputs\":[{\"url\":\"rtsp://u:p@10.0.0.1/a\"}]},"
        "{\"name\":\"lobby-east\",\"url\":\"rtsps://10.0.0.2/b\"},"
        "{\"name\":\"cam2\",\"inputs\":[{\"url\":\"fake://x\"},{\"url\":\"rtsp://10.0.0.3/c\"}],\"url\":\"rtsp://no\"},"
        "{\"name\":\"cam4\",\"inputs\":[{\"url\":\"publish://\"}]},"
        "{\"name\":\"cam1\",\"url\":\"rtsp://10.0.0.9/dup\"},"
        "{\"name\":\"bad name\",\"url\":\"rtsp://10.0.0.5/e\"},"
        "{\"url\":\"rtsp://10.0.0.6/f\"},"
        "42,"
        "{\"name\":\"other\",\"url\":\"rtsp://10.0.0.7/g\"}"
        "],\"extra\":true}";
    char err[200];
    vg_external_list l;
    CHECK_INT(vg_external_parse(json, strlen(json), RULES, 2, &l, err, sizeof err), 0);
    CHECK_INT(l.count, 3);
    if (l.count == 3) {
        CHECK_STR(l.streams[0].name, "cam1");
        CHECK_STR(l.streams[0].url, "rtsp://u:p@10.0.0.1/a");
        CHECK(l.streams[0].rule == &RULES[1]);
        CHECK_STR(l.streams[1].name, "lobby-east");
        CHECK_STR(l.streams[1].url, "rtsps://10.0.0.2/b"); /* a plain url field */
        CHECK(l.streams[1].rule == &RULES[0]);
        CHECK_STR(l.streams[2].name, "cam2");
        CHECK_STR(l.streams[2].url, "rtsp://10.0.0.3/c"); /* the first RTSP input, before the plain url */
    }
    CHECK_INT(l.nskipped, 6);
    CHECK_STR(skip_reason(&l, "cam4"), "no rtsp:// or rtsps:// input");
    CHECK_STR(skip_reason(&l, "cam1"), "given twice in the list: the first one is used");
    CHECK_STR(skip_reason(&l, "streams[5]"), "the name has a space or control character");
    CHECK_STR(skip_reason(&l, "streams[6]"), "no name");
    CHECK_STR(skip_reason(&l, "streams[7]"), "not an object");
    CHECK_STR(skip_reason(&l, "other"), "no node.stream_scripts entry matches the name");
    vg_external_list_free(&l);

    /* with the default rule, "other" is analysed too */
    CHECK_INT(vg_external_parse(json, strlen(json), RULES, 3, &l, err, sizeof err), 0);
    CHECK_INT(l.count, 4);
    CHECK(l.count == 4 && strcmp(l.streams[3].name, "other") == 0 && l.streams[3].rule == &RULES[2]);
    vg_external_list_free(&l);

    CHECK_INT(vg_external_parse("{\"streams\":[]}", 14, RULES, 3, &l, err, sizeof err), 0);
    CHECK_INT(l.count + l.nskipped, 0);
    CHECK_INT(vg_external_parse("<html>", 6, RULES, 3, &l, err, sizeof err), -1);
    CHECK_STR(err, "the answer is not JSON");
    CHECK_INT(vg_external_parse("{\"streams\":{}}", 14, RULES, 3, &l, err, sizeof err), -1);
    CHECK_STR(err, "the answer has no \"streams\" array");
    CHECK_INT(l.count, 0);
    CHECK_INT(vg_external_parse("{\"streams\":[1", 13, RULES, 3, &l, err, sizeof err), -1);

    /* preview_url: the stream's own key, rtsp only; a second input is a failover source, never the preview */
    const char *previews =
        "{\"streams\":["
        "{\"name\":\"cam1\",\"inputs\":[{\"url\":\"rtsp://h/sub\"},{\"url\":\"rtsp://backup/sub\"}],"
        "\"preview_url\":\"rtsp://h/main\"},"
        "{\"name\":\"cam2\",\"inputs\":[{\"url\":\"rtsp://h/a\"},{\"url\":\"rtsp://h/b\"}]},"
        "{\"name\":\"cam3\",\"url\":\"rtsp://h/c\",\"preview_url\":\"http://h/main\"}]}";
    CHECK_INT(vg_external_parse(previews, strlen(previews), RULES, 3, &l, err, sizeof err), 0);
    CHECK_INT(l.count, 2);
    if (l.count == 2) {
        CHECK_STR(l.streams[0].url, "rtsp://h/sub");
        CHECK_STR(l.streams[0].preview_url, "rtsp://h/main");
        CHECK_STR(l.streams[1].url, "rtsp://h/a");
        CHECK(l.streams[1].preview_url == NULL);
    }
    CHECK_STR(skip_reason(&l, "cam3"), "preview_url is not an rtsp:// or rtsps:// URL");
    vg_external_list_free(&l);
}

/* ---------- the source against a real server ---------- */

typedef struct fake_central {
    int status;
    const char *body;
    char authorization[128];
    char path[128];
    int requests;
} fake_central;

static int serve(void *ctx, const vg_http_request *req, vg_http_response *res) {
    fake_central *c = ctx;
    c->requests++;
    snprintf(c->authorization, sizeof c->authorization, "%s", req->authorization ? req->authorization : "-");
    snprintf(c->path, sizeof c->path, "%s", req->path);
    res->status = c->status;
    res->content_type = "application/json";
    res->body = strdup(c->body);
    return 0;
}

/* stderr into a file while f runs; returns what was logged (malloc'd). */
static char *captured(void (*f)(void *), void *arg) {
    char path[] = "/tmp/vigil-test-external-log-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    fflush(stderr);
    dup2(fd, 2);
    f(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)n + 1);
    if (pread(fd, text, (size_t)n, 0) < 0) text[0] = 0;
    close(fd);
    unlink(path);
    return text;
}

static int count_of(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++) n++;
    return n;
}

typedef struct session {
    fake_central *central;
    int port;
    int results[6];
    int counts[6];
    int wanted[6];
    char first_wanted[6][16];
    char transport[6][8];
} session;

/* ok, ok (the same list), 500, 500, bad JSON, ok with a new list; after each, the wanted cameras for a
 * config whose own camera "cam1" wins over Central's. */
static void fetch_sequence(void *arg) {
    session *s = arg;
    char url[200];
    snprintf(url, sizeof url, "http://tok%%40en@127.0.0.1:%d/central/api/v3/", s->port);
    char err[200];
    vg_external *x = vg_external_new(&(vg_external_options){.url = url, .rules = RULES, .nrules = 2}, err, sizeof err);
    CHECK(x != NULL);
    if (!x) return;
    const struct { int status; const char *body; } steps[6] = {
        {200, "{\"streams\":[{\"name\":\"cam1\",\"url\":\"rtsp://h/a\"},{\"name\":\"zzz\",\"url\":\"rtsp://h/z\"}]}"},
        {200, "{\"streams\":[{\"name\":\"cam1\",\"url\":\"rtsp://h/a\"},{\"name\":\"zzz\",\"url\":\"rtsp://h/z\"}]}"},
        {500, "oops"},
        {500, "oops"},
        {200, "not json"},
        {200, "{\"streams\":[{\"name\":\"cam2\",\"url\":\"rtsp://h/b\"},{\"name\":\"cam1\",\"url\":\"rtsp://h/a\"}]}"},
    };
    for (int i = 0; i < 6; i++) {
        s->central->status = steps[i].status;
        s->central->body = steps[i].body;
        s->results[i] = vg_external_fetch(x);
        s->counts[i] = vg_external_last(x)->count;
        vg_config_camera file_cam = {.media = "cam1"};
        vg_config config = {.ncameras = 1, .cameras = &file_cam,
                            .defaults = {.settings = {.transport = "udp", .analysis_width = 240, .stall_timeout_ms = 4000}}};
        int n;
        vg_config_camera *cams = vg_external_cameras(x, &config, &n);
        s->wanted[i] = n;
        snprintf(s->first_wanted[i], sizeof s->first_wanted[i], "%s", n ? cams[0].media : "-");
        snprintf(s->transport[i], sizeof s->transport[i], "%s", n ? cams[0].settings.transport : "-");
        if (n) {
            CHECK_STR(cams[0].script, "/r/motion.lua");
            CHECK_STR(cams[0].zones_json, "{}");
            CHECK_INT(cams[0].settings.analysis_width, 240);
        }
        vg_external_cameras_free(cams, n);
    }
    CHECK(strstr(vg_external_url(x), "tok") == NULL);
    CHECK(vg_external_due_ms(x) > 0);
    vg_external_free(x);
}

static void test_source(void) {
    fake_central central = {.status = 200, .body = "{\"streams\":[]}"};
    char err[200];
    vg_http_server *http = vg_http_start("127.0.0.1:0", serve, &central, err, sizeof err);
    CHECK(http != NULL);
    if (!http) return;
    session s = {.central = &central, .port = vg_http_port(http)};
    char *log = captured(fetch_sequence, &s);
    CHECK_STR(central.path, "/central/api/v3/streams");
    CHECK_STR(central.authorization, "Bearer tok@en"); /* the user part, decoded */
    CHECK_INT(central.requests, 6);
    int expect_rc[6] = {1, 0, -1, -1, -1, 1}, expect_n[6] = {1, 1, 1, 1, 1, 2};
    for (int i = 0; i < 6; i++) {
        CHECK_INT(s.results[i], expect_rc[i]);
        CHECK_INT(s.counts[i], expect_n[i]); /* a failed fetch keeps the last list */
    }
    for (int i = 0; i < 5; i++) CHECK_INT(s.wanted[i], 0); /* cam1 is the file's */
    CHECK_INT(s.wanted[5], 1);
    CHECK_STR(s.first_wanted[5], "cam2");
    CHECK_STR(s.transport[5], "udp"); /* the config's defaults */
    CHECK(strstr(log, "tok") == NULL); /* the key never reaches a log line */
    CHECK_INT(count_of(log, "zzz: no node.stream_scripts entry matches the name: skipped"), 1);
    CHECK_INT(count_of(log, "HTTP 500; keeping the 1 stream it gave last"), 1); /* once for three failures */
    CHECK_INT(count_of(log, "cam1: also a camera of the config file, which wins"), 1); /* said once, 6 times true */
    CHECK_INT(count_of(log, "config_external warn:"), 3); /* the skip, the failure and the clash */
    CHECK_INT(count_of(log, "recovered, 2 streams to analyse"), 1);
    free(log);

    /* the option's key wins over the URL's */
    char url[200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/c", s.port);
    vg_external *x = vg_external_new(&(vg_external_options){.url = url, .key = "other key", .rules = RULES,
                                                           .nrules = 3}, err, sizeof err);
    central.status = 200;
    central.body = "{\"streams\":[]}";
    CHECK_INT(vg_external_fetch(x), 1);
    CHECK_STR(central.authorization, "Bearer other key");
    CHECK_STR(central.path, "/c/streams");
    vg_external_free(x);
    vg_http_stop(http);

    /* nothing listening: fails within the timeout */
    int64_t t0 = vg_monotonic_ms();
    x = vg_external_new(&(vg_external_options){.url = url, .rules = RULES, .nrules = 3}, err, sizeof err);
    vg_log_set_level(VG_LOG_ERROR);
    CHECK_INT(vg_external_fetch(x), -1);
    vg_log_set_level(VG_LOG_INFO);
    CHECK(vg_monotonic_ms() - t0 <= VG_EXTERNAL_TIMEOUT_MS + CHECK_SLACK_MS);
    vg_external_free(x);
}

static void test_bad_urls(void) {
    char err[200];
    CHECK(vg_external_new(&(vg_external_options){.url = "ftp://key@h/x"}, err, sizeof err) == NULL);
    CHECK_STR(err, "node.config_external: not an http:// or https:// URL");
    CHECK(vg_external_new(&(vg_external_options){.url = "http://sec ret@/x y"}, err, sizeof err) == NULL);
    CHECK(strstr(err, "node.config_external:") == err && strstr(err, "sec") == NULL);
}

int main(void) {
    test_match();
    test_parse();
    test_source();
    test_bad_urls();
    return CHECK_DONE();
}
