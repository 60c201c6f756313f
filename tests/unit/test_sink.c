/* test_sink.c — core/vg_sink.c's shaping of a file of versions (vigil replay --previews DIR): the preview written
 * as a JPEG beside the file and the record naming it, spliced into the record's text (ids beyond 2^53 kept
 * exact), even when the rule's payload holds a "preview" key of its own before the real one, and the file's
 * path a JSON string however its directory is named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libavutil/base64.h>

#include "check.h"
#include "vg_sink.h"

#define ID_A 9007199254740993ULL /* 2^53 + 1 */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

int main(void) {
    char root[] = "/tmp/vigil-test-sink-XXXXXX", out[256], dir[256], err[256], body[1024], b64[64], jpg[512];
    CHECK(mkdtemp(root) != NULL);
    snprintf(out, sizeof out, "%s/versions.jsonl", root);
    snprintf(dir, sizeof dir, "%s/pre\"views\\", root); /* a " and a \\ in the name: escaped in the line */

    vg_sink *file = vg_sink_file_open(out, 0, err, sizeof err);
    CHECK(file != NULL);
    vg_file_shape shape = {.previews_dir = dir};
    vg_sink *s = file ? vg_sink_shape(file, &shape, err, sizeof err) : NULL;
    CHECK(s != NULL);
    if (!s) return CHECK_DONE();

    /* a payload with "preview":"x" written before the real preview (render_record's order) */
    const uint8_t jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9};
    av_base64_encode(b64, sizeof b64, jpeg, sizeof jpeg);
    snprintf(body, sizeof body, "{\"episode_id\":%llu,\"opened_at\":3000,\"payload\":{\"preview\":\"x\"},"
             "\"preview\":\"%s\",\"preview_timestamp\":3000}", ID_A, b64);
    vg_version v = {.episode_id = ID_A, .media = "cam", .is_first = 1, .body = body, .body_len = strlen(body)};
    CHECK_INT(vg_sink_put(s, &v), 0);
    vg_sink_close(s);

    const char *line = slurp(out);
    CHECK(line != NULL);
    if (!line) return CHECK_DONE();
    cJSON *rec = cJSON_Parse(line);
    CHECK(cJSON_IsObject(rec)); /* the shaped line is valid JSON */
    CHECK(strstr(line, "\"episode_id\":9007199254740993,") != NULL);
    snprintf(jpg, sizeof jpg, "%s/9007199254740993-preview-3000.jpg", dir);
    const cJSON *file_item = cJSON_GetObjectItemCaseSensitive(rec, "preview_file");
    CHECK_STR(cJSON_IsString(file_item) ? file_item->valuestring : NULL, jpg);
    CHECK(cJSON_GetObjectItemCaseSensitive(rec, "preview") == NULL);
    const cJSON *inner = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rec, "payload"), "preview");
    CHECK_STR(cJSON_IsString(inner) ? inner->valuestring : NULL, "x");
    cJSON_Delete(rec);

    FILE *f = fopen(jpg, "rb");
    uint8_t got[64];
    size_t n = f ? fread(got, 1, sizeof got, f) : 0;
    if (f) fclose(f);
    CHECK(n == sizeof jpeg && memcmp(got, jpeg, n) == 0);

    unlink(jpg);
    rmdir(dir);
    unlink(out);
    rmdir(root);
    return CHECK_DONE();
}
