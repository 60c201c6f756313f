/* fuzz_external.c — libFuzzer harness of the analytics node's stream-list parser (vg_external_parse): the
 * input is the body of Central's {url}/streams answer, given by length (not NUL-terminated), matched against
 * three node.stream_scripts globs. Promises checked: a usable list puts every entry either among the streams
 * (a clean unique name, an rtsp(s):// input, the first rule matching the name) or among the skips with a
 * reason; an unusable one says why and leaves the list empty. */
#include "fuzz.h"

#include <cjson/cJSON.h>

#include "vg_external.h"

static const vg_stream_script rules[] = {
    {.match = "door-[0-9]*", .script = "door.lua", .params_json = "{}"},
    {.match = "cam*", .script = "cam.lua", .params_json = "{\"quiet_ms\":3000}"},
    {.match = "*-lpr", .script = "lpr.lua", .params_json = "{}"},
};
#define NRULES ((int)(sizeof rules / sizeof *rules))

static int clean_name(const char *name) {
    if (!*name) return 0;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) return 0;
    return 1;
}

static int is_rtsp(const char *url) { return strncmp(url, "rtsp://", 7) == 0 || strncmp(url, "rtsps://", 8) == 0; }

/* How many entries the "streams" array of the document holds, as cJSON reads it. */
static int entries_in(const uint8_t *data, size_t size) {
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "streams"));
    cJSON_Delete(doc);
    return n;
}

static void check_list(const vg_external_list *list, int entries) {
    FUZZ_CHECK(list->count + list->nskipped == entries, "%d streams + %d skips for %d entries", list->count,
               list->nskipped, entries);
    for (int i = 0; i < list->count; i++) {
        const vg_external_stream *s = &list->streams[i];
        FUZZ_CHECK(clean_name(s->name), "stream %d has the name '%s'", i, s->name);
        FUZZ_CHECK(is_rtsp(s->url), "stream %s has the input '%s'", s->name, s->url);
        FUZZ_CHECK(s->rule && s->rule == vg_external_match(rules, NRULES, s->name), "stream %s: wrong rule", s->name);
        for (int j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(list->streams[j].name, s->name) != 0, "stream %s given twice", s->name);
    }
    for (int i = 0; i < list->nskipped; i++)
        FUZZ_CHECK(list->skipped[i].name[0] && list->skipped[i].reason[0], "skip %d without a name or reason", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vg_external_list list; /* data holds exactly the answer's bytes (libFuzzer and replay.c): a read past is caught */
    char err[256] = "";
    int rc = vg_external_parse((const char *)data, size, rules, NRULES, &list, err, sizeof err);
    if (rc == 0) check_list(&list, entries_in(data, size));
    else FUZZ_CHECK(rc == -1 && *err && !list.count && !list.nskipped, "rc %d, err '%s'", rc, err);
    vg_external_list_free(&list);
    return 0;
}
