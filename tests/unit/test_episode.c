/* test_episode.c — the episode invariants: opened_at once, strictly rising updated_at, closed_at once and
 * final, staged changes committed or rolled back whole, exact int64 ids in the JSON record, and a version that
 * cannot be rendered (out of memory) counted, not emitted, its record carried by the next version. */
#include <stdlib.h>

#include "check.h"
#include "vg_episode.h"

#define MAX_VERSIONS 64

typedef struct collected {
    int count;
    char *bodies[MAX_VERSIONS];
    vg_version meta[MAX_VERSIONS];
} collected;

static void collect(void *ctx, const vg_version *v) {
    collected *c = ctx;
    if (c->count >= MAX_VERSIONS) return;
    c->meta[c->count] = *v;
    c->bodies[c->count] = strdup(v->body);
    c->count++;
}

static void collected_free(collected *c) {
    for (int i = 0; i < c->count; i++) free(c->bodies[i]);
    c->count = 0;
}

static int64_t json_int(const char *body, const char *field) {
    cJSON *obj = cJSON_Parse(body);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field);
    int64_t v = cJSON_IsNumber(item) ? (int64_t)item->valuedouble : -1;
    cJSON_Delete(obj);
    return v;
}

static int64_t fixed_clock(void *ctx) { return *(int64_t *)ctx; }

static void test_lifecycle(vg_snowflake *ids) {
    collected got = {0};
    char err[256];
    vg_episode_book *book = vg_book_new("cam1", ids, collect, &got);
    vg_episode *ep = vg_episode_open(book, 1000, "motion", cJSON_Parse("{\"area\":5}"), err, sizeof err);
    CHECK(ep != NULL);
    CHECK_INT(vg_book_commit(book), 1);
    CHECK_INT(got.count, 1);
    CHECK(got.meta[0].is_first);
    CHECK_INT(json_int(got.bodies[0], "opened_at"), 1000);
    CHECK_INT(json_int(got.bodies[0], "updated_at"), 1000);
    CHECK(strstr(got.bodies[0], "\"closed_at\"") == NULL);

    /* same frame time again: updated_at still rises, by 1 ms */
    CHECK_INT(vg_episode_extend(ep, 1000, err, sizeof err), 0);
    vg_book_commit(book);
    CHECK_INT(json_int(got.bodies[1], "updated_at"), 1001);
    /* an earlier time cannot pull it back */
    CHECK_INT(vg_episode_extend(ep, 900, err, sizeof err), 0);
    vg_book_commit(book);
    CHECK_INT(json_int(got.bodies[2], "updated_at"), 1002);
    CHECK_INT(json_int(got.bodies[2], "opened_at"), 1000);
    /* several changes in one callback make one version */
    vg_episode_extend(ep, 1040, err, sizeof err);
    vg_episode_set_payload(ep, cJSON_Parse("{\"area\":9}"), err, sizeof err);
    vg_episode_extend(ep, 1080, err, sizeof err);
    CHECK_INT(vg_book_commit(book), 1);
    CHECK_INT(json_int(got.bodies[3], "updated_at"), 1080);
    CHECK(strstr(got.bodies[3], "\"area\":9") != NULL);
    /* nothing staged, nothing sent */
    CHECK_INT(vg_book_commit(book), 0);

    vg_episode_retain(ep); /* as a script's handle would */
    CHECK_INT(vg_episode_close(ep, 1080, NULL, err, sizeof err), 0);
    CHECK_INT(vg_book_commit(book), 1);
    CHECK(got.meta[4].is_closing);
    CHECK_INT(json_int(got.bodies[4], "closed_at"), 1081);
    CHECK_INT(json_int(got.bodies[4], "updated_at"), 1081);
    CHECK_INT(vg_book_open_count(book), 0);
    /* after close: every change is refused, with a reason */
    CHECK_INT(vg_episode_extend(ep, 2000, err, sizeof err), -1);
    CHECK(strstr(err, "is closed") != NULL);
    CHECK_INT(vg_episode_close(ep, 2000, NULL, err, sizeof err), -1);
    CHECK_INT(vg_episode_set_payload(ep, cJSON_CreateObject(), err, sizeof err), -1);
    CHECK_INT(vg_episode_closed_at(ep), 1081);
    CHECK_INT(vg_book_commit(book), 0);
    vg_episode_release(ep);

    for (int i = 1; i < got.count; i++) /* strictly rising across all versions */
        CHECK(json_int(got.bodies[i], "updated_at") > json_int(got.bodies[i - 1], "updated_at"));
    collected_free(&got);
    vg_book_free(book);
}

static void test_rollback(vg_snowflake *ids) {
    collected got = {0};
    char err[256];
    vg_episode_book *book = vg_book_new("cam2", ids, collect, &got);
    vg_episode *kept = vg_episode_open(book, 500, NULL, NULL, err, sizeof err);
    vg_book_commit(book);
    /* a failing callback: opens one, extends and closes another; none of it may leave */
    vg_episode *half = vg_episode_open(book, 600, "x", NULL, err, sizeof err);
    vg_episode_retain(half);
    vg_episode_extend(kept, 600, err, sizeof err);
    vg_episode_close(kept, 600, NULL, err, sizeof err);
    vg_book_rollback(book);
    CHECK_INT(vg_book_commit(book), 0);
    CHECK_INT(got.count, 1);
    CHECK_INT(vg_book_open_count(book), 1);
    CHECK_INT(vg_episode_closed_at(kept), 0);
    CHECK_INT(vg_episode_updated_at(kept), 500);
    CHECK_INT(vg_episode_extend(half, 700, err, sizeof err), -1);
    CHECK(strstr(err, "discarded") != NULL);
    vg_episode_release(half);
    /* the book closes what is left */
    CHECK_INT(vg_book_close_all(book, 800, "end_of_stream"), 1);
    CHECK(strstr(got.bodies[1], "\"close_reason\":\"end_of_stream\"") != NULL);
    CHECK_INT(json_int(got.bodies[1], "closed_at"), 800);
    collected_free(&got);
    vg_book_free(book);
}

static void test_exact_ids(void) {
    /* ids above 2^53 survive to the JSON text digit for digit */
    int64_t t = 1699458327387LL;
    vg_snowflake ids;
    vg_snowflake_init(&ids, 1, fixed_clock, &t);
    collected got = {0};
    char err[256];
    vg_episode_book *book = vg_book_new("cam3", &ids, collect, &got);
    vg_episode_open(book, 1, NULL, NULL, err, sizeof err);
    vg_episode_open(book, 1, NULL, NULL, err, sizeof err);
    vg_book_commit(book);
    CHECK_INT(got.count, 2);
    CHECK(strstr(got.bodies[0], "\"episode_id\":1722279170848854016,") != NULL);
    CHECK(strstr(got.bodies[1], "\"episode_id\":1722279170848854017,") != NULL);
    CHECK_U64(got.meta[1].episode_id, 1722279170848854017ULL);
    vg_book_close_all(book, 2, NULL);
    collected_free(&got);
    vg_book_free(book);
    vg_snowflake_destroy(&ids);
}

static void test_bad_input(vg_snowflake *ids) {
    char err[256];
    vg_episode_book *book = vg_book_new("cam4", ids, NULL, NULL);
    CHECK(vg_episode_open(book, -5, NULL, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "negative") != NULL);
    CHECK(vg_episode_open(book, 5, NULL, cJSON_CreateArray(), err, sizeof err) == NULL);
    CHECK(strstr(err, "payload must be an object") != NULL);
    vg_episode *ep = vg_episode_open(book, 5, NULL, NULL, err, sizeof err);
    CHECK_INT(vg_episode_set_detections(ep, cJSON_CreateObject(), err, sizeof err), -1);
    CHECK_INT(vg_book_open_count(book), 1);
    vg_book_free(book); /* frees what is still open */
}

static const char *json_str(const cJSON *obj, const char *path) {
    char key[64];
    snprintf(key, sizeof key, "%s", path);
    char *dot = strchr(key, '.');
    if (dot) {
        *dot = 0;
        return json_str(cJSON_GetObjectItemCaseSensitive(obj, key), dot + 1);
    }
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* The close reason of a body: "top|payload" (top-level close_reason, payload.close_reason; "-" when absent). */
static const char *reasons(const char *body, char *out, size_t len) {
    cJSON *obj = cJSON_Parse(body);
    const char *top = json_str(obj, "close_reason"), *fine = json_str(obj, "payload.close_reason");
    snprintf(out, len, "%s|%s", top ? top : "-", fine ? fine : "-");
    cJSON_Delete(obj);
    return out;
}

static void test_close_reasons(vg_snowflake *ids) {
    /* Central's close_reason is "timeout" for a close for inactivity only; the finer reason is the payload's */
    collected got = {0};
    char err[256], r[64];
    vg_episode_book *book = vg_book_new("cam5", ids, collect, &got);
    vg_episode *quiet = vg_episode_open(book, 10, NULL, cJSON_Parse("{\"n\":1}"), err, sizeof err);
    vg_episode *bare = vg_episode_open(book, 10, NULL, NULL, err, sizeof err);
    vg_episode *central = vg_episode_open(book, 10, NULL, NULL, err, sizeof err);
    vg_episode *relearned = vg_episode_open(book, 10, NULL, NULL, err, sizeof err);
    vg_episode *plain = vg_episode_open(book, 10, NULL, NULL, err, sizeof err);
    vg_episode_retain(quiet); /* as a script's handle does: readable after close */
    vg_book_commit(book);
    CHECK_INT(vg_episode_time_out(quiet, 20, "quiet", err, sizeof err), 0);
    CHECK_INT(vg_episode_time_out(bare, 20, NULL, err, sizeof err), 0);
    CHECK_INT(vg_episode_close(central, 20, "timeout", err, sizeof err), 0);
    CHECK_INT(vg_episode_close(relearned, 20, "relearned", err, sizeof err), 0);
    CHECK_INT(vg_episode_close(plain, 20, NULL, err, sizeof err), 0);
    CHECK_INT(vg_book_commit(book), 5);
    CHECK_STR(reasons(got.bodies[0], r, sizeof r), "-|-"); /* open: no reason at all */
    CHECK_STR(reasons(got.bodies[5], r, sizeof r), "timeout|quiet");
    CHECK(strstr(got.bodies[5], "\"n\":1") != NULL);      /* the rule's payload stays */
    CHECK_STR(reasons(got.bodies[6], r, sizeof r), "timeout|timeout");
    CHECK_STR(reasons(got.bodies[7], r, sizeof r), "timeout|timeout");
    CHECK_STR(reasons(got.bodies[8], r, sizeof r), "-|relearned");
    CHECK_STR(reasons(got.bodies[9], r, sizeof r), "-|-");
    CHECK_INT(vg_episode_time_out(quiet, 30, "again", err, sizeof err), -1); /* closed once */
    vg_episode_release(quiet);
    collected_free(&got);
    vg_book_free(book);
}

static void test_preview_offset(vg_snowflake *ids) {
    /* payload.preview_offset_ms is the host's: in the versions while the preview's picture is not of its own
     * time, over a rule key of that name, never in the payload the rule reads */
    collected got = {0};
    char err[256];
    vg_episode_book *book = vg_book_new("cam7", ids, collect, &got);
    vg_episode *ep = vg_episode_open(book, 10, NULL, cJSON_Parse("{\"n\":1,\"preview_offset_ms\":5}"), err, sizeof err);
    CHECK_INT(vg_episode_set_preview(ep, strdup("/9j/"), 10, -12, 1, err, sizeof err), 0);
    vg_book_commit(book);
    CHECK(strstr(got.bodies[0], "\"payload\":{\"n\":1,\"preview_offset_ms\":-12}") != NULL);
    CHECK(cJSON_GetObjectItemCaseSensitive(vg_episode_payload(ep), "preview_offset_ms")->valuedouble == 5);
    CHECK_INT(vg_episode_set_preview(ep, strdup("/9j/"), 20, 0, 1, err, sizeof err), 0);
    CHECK_INT(vg_episode_extend(ep, 20, err, sizeof err), 0);
    vg_book_commit(book);
    CHECK(strstr(got.bodies[1], "\"payload\":{\"n\":1,\"preview_offset_ms\":5}") != NULL); /* the rule's own */
    CHECK_INT(vg_book_close_all(book, 30, "end_of_stream"), 1);
    collected_free(&got);
    vg_book_free(book);
}

static void test_stop_reasons(vg_snowflake *ids) {
    /* at a stop, what on_stop closes without a reason is closed at the rule's time with the stop's reason */
    collected got = {0};
    char err[256], r[64];
    vg_episode_book *book = vg_book_new("cam6", ids, collect, &got);
    vg_episode *ruled = vg_episode_open(book, 100, NULL, NULL, err, sizeof err);
    vg_episode *own = vg_episode_open(book, 100, NULL, NULL, err, sizeof err);
    vg_episode *left = vg_episode_open(book, 100, NULL, NULL, err, sizeof err);
    uint64_t ruled_id = vg_episode_id(ruled), left_id = vg_episode_id(left);
    vg_book_commit(book);
    vg_book_begin_stop(book);
    CHECK_INT(vg_episode_close(ruled, 150, NULL, err, sizeof err), 0);
    CHECK_INT(vg_episode_close(own, 160, "mine", err, sizeof err), 0);
    CHECK_INT(vg_book_commit(book), 1); /* "mine" goes at once; ruled waits for the stop's reason */
    CHECK_STR(reasons(got.bodies[3], r, sizeof r), "-|mine");
    CHECK_INT(vg_book_close_all(book, 900, "shutdown"), 2);
    CHECK_INT(got.count, 6);
    CHECK_U64(got.meta[4].episode_id, ruled_id);
    CHECK_STR(reasons(got.bodies[4], r, sizeof r), "-|shutdown");
    CHECK_INT(json_int(got.bodies[4], "closed_at"), 150); /* the rule's time, not the last frame */
    CHECK_U64(got.meta[5].episode_id, left_id);
    CHECK_STR(reasons(got.bodies[5], r, sizeof r), "-|shutdown");
    CHECK_INT(json_int(got.bodies[5], "closed_at"), 900); /* left open by the rule: the last frame */
    CHECK_INT(vg_book_open_count(book), 0);
    /* a stop after which a callback fails drops the held close with the rest: the host closes it at the end */
    vg_episode *again = vg_episode_open(book, 1000, NULL, NULL, err, sizeof err);
    vg_book_commit(book);
    vg_book_begin_stop(book);
    vg_episode_close(again, 1100, NULL, err, sizeof err);
    vg_book_rollback(book);
    CHECK_INT(vg_book_close_all(book, 1200, "timeout"), 1);
    CHECK_INT(json_int(got.bodies[got.count - 1], "closed_at"), 1200);
    CHECK_STR(reasons(got.bodies[got.count - 1], r, sizeof r), "timeout|timeout"); /* a removed camera */
    collected_free(&got);
    vg_book_free(book);
}

static void test_inference_timestamp(void) {
    /* every version says when vigil made it (wall clock, the ids' clock), however old its frames are */
    int64_t now = 1700000000123LL;
    vg_snowflake ids;
    vg_snowflake_init(&ids, 2, fixed_clock, &now);
    collected got = {0};
    char err[256];
    vg_episode_book *book = vg_book_new("cam7", &ids, collect, &got);
    vg_episode *ep = vg_episode_open(book, 5, NULL, NULL, err, sizeof err);
    vg_book_commit(book);
    now += 40;
    vg_episode_extend(ep, 6, err, sizeof err);
    vg_book_commit(book);
    cJSON *first = cJSON_Parse(got.bodies[0]), *second = cJSON_Parse(got.bodies[1]);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(first, "episode_appearance_timestamps"),
                                                      "inference_timestamp");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(second, "episode_appearance_timestamps"),
                                                      "inference_timestamp");
    CHECK(cJSON_IsNumber(a) && cJSON_IsNumber(b));
    CHECK_INT((int64_t)a->valuedouble, 1700000000123LL);
    CHECK_INT((int64_t)b->valuedouble, 1700000000163LL);
    cJSON_Delete(first);
    cJSON_Delete(second);
    vg_book_close_all(book, 7, NULL);
    collected_free(&got);
    vg_book_free(book);
    vg_snowflake_destroy(&ids);
}

/* cJSON's allocator failing every block of its print buffer's size (256) or more: items still get made,
 * rendering fails. */
static void *small_malloc_only(size_t size) { return size >= 256 ? NULL : malloc(size); }

static void test_unrendered(vg_snowflake *ids) {
    collected got = {0};
    char err[256];
    vg_episode_book *book = vg_book_new("cam1", ids, collect, &got);
    vg_episode *ep = vg_episode_open(book, 1000, "motion", NULL, err, sizeof err);
    CHECK(ep != NULL);
    cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = small_malloc_only, .free_fn = free});
    CHECK_INT(vg_book_commit(book), 0); /* committed, not emitted */
    cJSON_InitHooks(NULL);
    CHECK_INT(got.count, 0);
    CHECK_INT(vg_book_unrendered(book), 1);
    CHECK_INT(vg_episode_extend(ep, 1040, err, sizeof err), 0);
    CHECK_INT(vg_book_commit(book), 1); /* the next version carries the record */
    CHECK_INT(got.count, 1);
    CHECK(got.meta[0].is_first); /* it opens the episode wherever it goes */
    CHECK_INT(json_int(got.bodies[0], "opened_at"), 1000);
    CHECK_INT(json_int(got.bodies[0], "updated_at"), 1040);
    CHECK_INT(vg_book_unrendered(book), 1);
    collected_free(&got);
    vg_book_free(book);
}

int main(void) {
    vg_snowflake ids;
    vg_snowflake_init(&ids, 0, NULL, NULL);
    test_lifecycle(&ids);
    test_rollback(&ids);
    test_exact_ids();
    test_bad_input(&ids);
    test_close_reasons(&ids);
    test_preview_offset(&ids);
    test_stop_reasons(&ids);
    test_inference_timestamp();
    test_unrendered(&ids);
    vg_snowflake_destroy(&ids);
    return CHECK_DONE();
}
