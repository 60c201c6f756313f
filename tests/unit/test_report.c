/* test_report.c — core/vg_report.c without a browser: the page it writes for hand-made versions (exact ids
 * beyond 2^53, the last version kept and the previews with it, hostile text escaped, a bad preview said and
 * not written, clip times and UTC), no page for a replay that never finished, and the refusal of a bad DIR.
 * tests/integration/test_report.py opens the page of a real replay in Chromium. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/base64.h>

#include "check.h"
#include "vg_report.h"

#define ID_A 9007199254740993ULL /* 2^53 + 1: a double would print ...992 */
#define ID_B 18446744073709551615ULL
#define ID_C 4611686018427387905ULL

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 20];
    *len = fread(buf, 1, sizeof buf - 1, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++) n++;
    return n;
}

static int put(vg_sink *s, uint64_t id, const char *body) {
    vg_version v = {.episode_id = id, .media = "cam", .body = body, .body_len = strlen(body)};
    return vg_sink_put(s, &v);
}

int main(void) {
    char root[] = "/tmp/vigil-test-report-XXXXXX", dir[256], path[512], err[256];
    CHECK(mkdtemp(root) != NULL);
    snprintf(dir, sizeof dir, "%s/deep/report", root);
    int failed = 0;
    vg_report_options o = {.dir = dir, .clip = "cam<1>.mp4", .media = "cam", .failed = &failed};
    vg_sink *s = vg_report_open(&o, err, sizeof err);
    CHECK(s != NULL);
    if (!s) return CHECK_DONE();

    const uint8_t jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9};
    char b64[64], body[1024];
    av_base64_encode(b64, sizeof b64, jpeg, sizeof jpeg);
    snprintf(body, sizeof body, "{\"episode_id\":%llu,\"opened_at\":3000,\"updated_at\":3000,\"episode_type\":"
             "\"a<script>alert(1)</script>\",\"payload\":{\"note\":\"</pre>&amp;\"},\"preview\":\"%s\","
             "\"preview_timestamp\":3000}", ID_A, b64);
    CHECK_INT(put(s, ID_A, body), 0);
    snprintf(body, sizeof body, "{\"episode_id\":%llu,\"opened_at\":3000,\"updated_at\":4500,\"closed_at\":4500,"
             "\"close_reason\":\"timeout\",\"episode_type\":\"a<script>alert(1)</script>\",\"payload\":"
             "{\"note\":\"</pre>&amp;\",\"close_reason\":\"cl'ear\"},\"preview\":\"%s\",\"preview_timestamp\":3000}",
             ID_A, b64);
    CHECK_INT(put(s, ID_A, body), 0);
    CHECK_INT(put(s, ID_B, "{\"opened_at\":5000,\"updated_at\":5000,\"episode_type\":\"b\",\"preview\":\"!!!\"}"), 0);
    CHECK_INT(put(s, ID_B, "not json"), -1);
    vg_report_finish(s, 1000, 9000);
    vg_sink_close(s);
    CHECK_INT(failed, 0);

    size_t len;
    snprintf(path, sizeof path, "%s/index.html", dir);
    const char *page = slurp(path, &len);
    CHECK(page != NULL);
    if (!page) return CHECK_DONE();
    CHECK_INT(count(page, "<article class=\"episode\""), 2);
    CHECK(strstr(page, "data-episode-id=\"9007199254740993\"") && strstr(page, "data-episode-id=\"18446744073709551615\""));
    CHECK(!strstr(page, "<script>alert") && strstr(page, "a&lt;script&gt;alert(1)&lt;/script&gt;"));
    CHECK(strstr(page, "&lt;/pre&gt;&amp;amp;") && strstr(page, "cl&apos;ear") && strstr(page, "cam&lt;1&gt;.mp4"));
    CHECK(strstr(page, "<dd class=\"versions\">2</dd>") && strstr(page, "<dd class=\"versions\">1</dd>"));
    CHECK(strstr(page, "+2.00 s <span class=\"utc\">1970-01-01 00:00:03.000 UTC</span>")); /* opened, from 1000 */
    CHECK(strstr(page, "<span class=\"close-reason-top\">timeout</span>"));
    CHECK(strstr(page, "preview: not valid base64"));
    CHECK_INT(count(page, "<script>"), 1); /* its own, and nothing else */

    snprintf(path, sizeof path, "%s/%llu-preview.jpg", dir, ID_A); /* kept from the first version's record */
    const char *file = slurp(path, &len);
    CHECK(file && len == sizeof jpeg && memcmp(file, jpeg, len) == 0);
    snprintf(path, sizeof path, "%s/%llu-preview.jpg", dir, ID_B);
    CHECK(access(path, F_OK) != 0);

    /* a second report into the same directory: the first one's pictures of episodes it does not have are removed,
     * its own are written, anything else there stays */
    char other[512], stale_frame[512];
    snprintf(other, sizeof other, "%s/notes-123-preview.jpg", dir);
    snprintf(stale_frame, sizeof stale_frame, "%s/%llu-frame-preview.jpg", dir, ID_A);
    FILE *f = fopen(other, "w");
    if (f) fclose(f);
    f = fopen(stale_frame, "w");
    if (f) fclose(f);
    s = vg_report_open(&o, err, sizeof err);
    CHECK(s != NULL);
    if (!s) return CHECK_DONE();
    snprintf(body, sizeof body, "{\"opened_at\":3000,\"updated_at\":3000,\"episode_type\":\"c\",\"preview\":\"%s\"}", b64);
    CHECK_INT(put(s, ID_C, body), 0);
    vg_report_finish(s, 1000, 9000);
    vg_sink_close(s);
    snprintf(path, sizeof path, "%s/%llu-preview.jpg", dir, ID_A);
    CHECK(access(path, F_OK) != 0);        /* the first report's */
    CHECK(access(stale_frame, F_OK) != 0); /* the first report's */
    CHECK(access(other, F_OK) == 0);       /* not a name the report writes */
    snprintf(path, sizeof path, "%s/%llu-preview.jpg", dir, ID_C);
    CHECK(access(path, F_OK) == 0);
    snprintf(path, sizeof path, "%s/index.html", dir);
    page = slurp(path, &len);
    CHECK(page && count(page, "<article class=\"episode\"") == 1);

    /* a picture that cannot be written: the page says so, the path in it escaped, and the report fails */
    snprintf(dir, sizeof dir, "%s/<b>x", root);
    s = vg_report_open(&o, err, sizeof err);
    CHECK(s != NULL);
    if (!s) return CHECK_DONE();
    snprintf(path, sizeof path, "%s/%llu-preview.jpg", dir, ID_C);
    CHECK(mkdir(path, 0755) == 0); /* a directory where the picture goes: the rename over it fails */
    CHECK_INT(put(s, ID_C, body), 0);
    vg_report_finish(s, 1000, 9000);
    vg_sink_close(s);
    CHECK_INT(failed, 1);
    failed = 0;
    snprintf(path, sizeof path, "%s/index.html", dir);
    page = slurp(path, &len);
    CHECK(page && strstr(page, "<p class=\"none\">preview: ") && strstr(page, "/&lt;b&gt;x/4611686018427387905-preview.jpg: "));
    CHECK(page && !strstr(page, "<b>x"));

    /* a replay that never finished writes no page */
    snprintf(dir, sizeof dir, "%s/unfinished", root);
    s = vg_report_open(&o, err, sizeof err);
    CHECK(s != NULL);
    if (s) vg_sink_close(s);
    snprintf(path, sizeof path, "%s/index.html", dir);
    CHECK(access(path, F_OK) != 0);

    /* DIR that is a file */
    snprintf(dir, sizeof dir, "%s/deep/report/index.html", root);
    CHECK(vg_report_open(&o, err, sizeof err) == NULL && strstr(err, "index.html: not a directory"));

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    return CHECK_DONE();
}
