/* fuzz_store.c — libFuzzer harness of the episode store's entry parser (vg_store_parse_entry, what
 * vg_store_open keeps of each <episode_id>.json): the input is the file's bytes, named
 * 1000000000000000003.json. Promises checked: an entry is kept only when it is that episode's record, one
 * JSON object and nothing after it (the store serves the bytes as they are inside its answers), with an
 * updated_at a query can compare (|updated_at| <= 2^53); a refusal says why. */
#include "fuzz.h"

#include <inttypes.h>

#include <cjson/cJSON.h>

#include "vg_store.h"

#define FUZZ_STORE_ID 1000000000000000003ULL
#define FUZZ_STORE_ENTRY "1000000000000000003.json"

/* The bytes a query would serve: exactly one JSON object, its episode_id the entry's. */
static void check_kept(const uint8_t *data, size_t size, uint64_t id, int64_t updated_at) {
    FUZZ_CHECK(id == FUZZ_STORE_ID, "kept as episode %" PRIu64, id);
    FUZZ_CHECK(updated_at >= -(1LL << 53) && updated_at <= (1LL << 53), "updated_at %" PRId64, updated_at);
    FUZZ_CHECK(!memchr(data, 0, size), "kept an entry holding a NUL byte");
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts((const char *)data, size, &end, 0);
    FUZZ_CHECK(cJSON_IsObject(doc), "kept an entry that is not a JSON object");
    while (end && end < (const char *)data + size && strchr(" \t\r\n", *end)) end++;
    FUZZ_CHECK(end == (const char *)data + size, "kept an entry with bytes after its JSON: %.80s", end);
    const cJSON *episode_id = cJSON_GetObjectItemCaseSensitive(doc, "episode_id");
    FUZZ_CHECK(cJSON_IsNumber(episode_id) || cJSON_IsString(episode_id), "kept an entry without its episode_id");
    cJSON_Delete(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t id = 0;
    int64_t updated_at = 0;
    char why[300] = ""; /* data holds exactly the file's bytes: a read past them is caught */
    if (vg_store_parse_entry(FUZZ_STORE_ENTRY, (const char *)data, size, &id, &updated_at, why, sizeof why) == 0)
        check_kept(data, size, id, updated_at);
    else
        FUZZ_CHECK(*why, "entry refused without a reason");
    return 0;
}
