/* fuzz_spool.c — libFuzzer harness of the spool's version file check (vg_spool_decode): the input is the
 * file's bytes, named 1000000000000000003-1700000000123.ver as the spool would name that version. Promises
 * checked: a file is taken only when its header, lengths, separators, checksum and name agree and its body is
 * one JSON object (Central gets it as it is), and then media and body are C strings inside the file's bytes. */
#include "fuzz.h"

#include <inttypes.h>

#include <cjson/cJSON.h>

#include "vg_spool.h"

#define FUZZ_SPOOL_NAME "1000000000000000003-1700000000123.ver"

static int inside(const char *p, const char *buf, size_t size) { return p >= buf && p < buf + size; }

static void check_taken(const vg_version *v, const char *buf, size_t size) {
    char name[64];
    snprintf(name, sizeof name, "%" PRIu64 "-%" PRId64 ".ver", v->episode_id, v->updated_at);
    FUZZ_CHECK(strcmp(name, FUZZ_SPOOL_NAME) == 0, "taken under another name: %s", name);
    FUZZ_CHECK(inside(v->media, buf, size) && inside(v->body, buf, size), "media or body outside the file");
    size_t media_len = strlen(v->media);
    FUZZ_CHECK(media_len > 0 && inside(v->media + media_len, buf, size), "media not a C string in the file");
    FUZZ_CHECK(v->body_len > 0 && inside(v->body + v->body_len, buf, size) && v->body[v->body_len] == 0,
               "body of %zu bytes not NUL-terminated in the file", v->body_len);
    FUZZ_CHECK(v->is_first == 0 || v->is_first == 1, "is_first %d", v->is_first);
    FUZZ_CHECK(v->is_closing == 0 || v->is_closing == 1, "is_closing %d", v->is_closing);
    FUZZ_CHECK(strlen(v->body) == v->body_len, "taken a body holding a NUL byte");
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(v->body, &end, 1);
    FUZZ_CHECK(cJSON_IsObject(doc), "taken a body that is not one JSON object: %.80s", v->body);
    cJSON_Delete(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1); /* exactly the file's bytes: a read past them is caught */
    if (size) memcpy(buf, data, size);
    vg_version v = {0};
    const char *why = vg_spool_decode(FUZZ_SPOOL_NAME, buf, size, &v);
    if (!why) check_taken(&v, buf, size);
    else FUZZ_CHECK(*why, "refused with an empty reason");
    free(buf);
    return 0;
}
