/* test_store.c — the analytics-node store: newest version per episode, queries by updated_at (oldest
 * first, limits that never split equal updated_at), long polls woken by a put and ended by a shutdown,
 * persistence across a reopen, retention, and exact ids. */
#include <pthread.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "vg_snowflake.h"
#include "vg_store.h"
#include "vg_time.h"

static void put(vg_store *st, uint64_t id, int64_t updated_at, int first, int closing) {
    char body[256];
    snprintf(body, sizeof body, "{\"episode_id\":%llu,\"media\":\"cam\",\"opened_at\":1,\"updated_at\":%lld}",
             (unsigned long long)id, (long long)updated_at);
    vg_version v = {.episode_id = id, .media = "cam", .opened_at = 1, .updated_at = updated_at, .is_first = first,
                    .is_closing = closing, .body = body, .body_len = strlen(body)};
    vg_sink_put(vg_store_sink(st), &v);
}

static char *query(vg_store *st, int64_t after, int limit, int timeout_ms) {
    vg_buf b = {0};
    vg_store_query(st, after, limit, timeout_ms, &b);
    return b.data;
}

static int count_of(const char *json, const char *needle) {
    int n = 0;
    for (const char *p = json; (p = strstr(p, needle)); p++) n++;
    return n;
}

/* A query waiting up to CHECK_HANG_MS: answered long before, it was woken, not timed out. */
typedef struct poller {
    vg_store *st;
    int64_t after;
    char *answer;
    int64_t answered_ms;
} poller;

static void *poll_thread(void *arg) {
    poller *p = arg;
    p->answer = query(p->st, p->after, 0, CHECK_HANG_MS);
    p->answered_ms = vg_monotonic_ms();
    return NULL;
}

static void test_queries(vg_store *st) {
    put(st, 1722279170848854017ULL, 300, 1, 0);
    put(st, 2, 100, 1, 0);
    put(st, 3, 200, 1, 0);
    char *all = query(st, 0, 0, 0);
    CHECK(strstr(all, "\"episode_id\":2,") < strstr(all, "\"episode_id\":3,"));
    CHECK(strstr(all, "\"episode_id\":3,") < strstr(all, "\"episode_id\":1722279170848854017,"));
    CHECK(strstr(all, "\"estimated_count\":3}") != NULL);
    free(all);
    char *some = query(st, 200, 0, 0);
    CHECK_INT(count_of(some, "episode_id"), 1);
    CHECK(strstr(some, "1722279170848854017") != NULL);
    free(some);
    put(st, 2, 400, 0, 0); /* a newer version replaces the entry */
    put(st, 3, 150, 0, 0); /* an older one arriving late does not */
    char *newer = query(st, 300, 0, 0);
    CHECK_INT(count_of(newer, "episode_id"), 1);
    CHECK(strstr(newer, "\"episode_id\":2,") && strstr(newer, "\"updated_at\":400"));
    free(newer);
    CHECK_INT(vg_store_count(st), 3);
    put(st, 4, 400, 1, 0); /* same updated_at as episode 2: a limit of 1 must not split them */
    char *limited = query(st, 300, 1, 0);
    CHECK_INT(count_of(limited, "episode_id"), 2);
    free(limited);
    char *none = query(st, 400, 0, 0);
    CHECK_STR(none, "{\"episodes\":[],\"estimated_count\":0}");
    free(none);
}

static void test_long_poll(vg_store *st) {
    poller p = {.st = st, .after = 400};
    pthread_t t;
    pthread_create(&t, NULL, poll_thread, &p);
    usleep(300 * 1000); /* waiting by now, most likely; if not, it finds the version at once */
    int64_t put_at = vg_monotonic_ms();
    put(st, 5, 500, 1, 0);
    pthread_join(t, NULL);
    CHECK(strstr(p.answer, "\"episode_id\":5,") != NULL);
    /* woke at the put (promise: at once), not at its timeout */
    CHECK(p.answered_ms >= put_at && p.answered_ms - put_at < CHECK_SLACK_MS);
    free(p.answer);
    int64_t t0 = vg_monotonic_ms();
    char *empty = query(st, 500, 0, 400);
    int64_t waited = vg_monotonic_ms() - t0;
    CHECK(waited >= 390 && waited < 400 + CHECK_SLACK_MS); /* its timeout, then the answer */
    CHECK(strstr(empty, "\"episodes\":[]") != NULL);
    free(empty);
}

/* A shutdown ends a waiting query at once, and later queries do not wait; puts still work. */
static void test_end_queries(vg_store *st) {
    poller p = {.st = st, .after = 500};
    pthread_t t;
    pthread_create(&t, NULL, poll_thread, &p);
    usleep(200 * 1000);
    int64_t ended_at = vg_monotonic_ms();
    vg_store_end_queries(st);
    pthread_join(t, NULL);
    CHECK(strstr(p.answer, "\"episodes\":[]") != NULL);
    /* it answered only when the queries ended (it was waiting), and then at once, not at its timeout */
    CHECK(p.answered_ms >= ended_at && p.answered_ms - ended_at < CHECK_SLACK_MS);
    free(p.answer);
    int64_t t0 = vg_monotonic_ms();
    char *none = query(st, 500, 0, CHECK_HANG_MS);
    CHECK(vg_monotonic_ms() - t0 < CHECK_SLACK_MS); /* later queries do not wait */
    free(none);
}

static void write_entry_file(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* Issue 17 items 12 and 15: a FIFO named *.json hung the load (SIGTERM blocked), a symlink was followed, and
 * updated_at 1e300 was cast to an integer (undefined). Each is said once and skipped; a body that is another
 * episode's record is not served under this one's id. */
static void test_hostile_entries(void) {
    char dir[] = "/tmp/vigil-test-store-hostile-XXXXXX", err[256], path[512];
    if (!mkdtemp(dir)) return;
    write_entry_file(dir, "5.json", "{\"episode_id\":5,\"media\":\"cam\",\"opened_at\":1,\"updated_at\":7}");
    write_entry_file(dir, "6.json", "{\"episode_id\":6,\"updated_at\":1e300}");
    write_entry_file(dir, "7.json", "{\"episode_id\":999,\"updated_at\":7}");
    write_entry_file(dir, "8.json", "{\"episode_id\":8,\"updated_at\":7.5}");
    write_entry_file(dir, "9.json", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
    snprintf(path, sizeof path, "%s/10.json", dir);
    CHECK_INT(mkfifo(path, 0600), 0);
    snprintf(path, sizeof path, "%s/11.json", dir);
    char target[512];
    snprintf(target, sizeof target, "%s/5.json", dir);
    CHECK_INT(symlink(target, path), 0);
    vg_store *st = vg_store_open(dir, 0, err, sizeof err); /* returns: nothing waits on the FIFO */
    CHECK(st != NULL);
    if (!st) return;
    CHECK_INT(vg_store_count(st), 1);
    char *all = query(st, INT64_MIN, 0, 0);
    CHECK(strstr(all, "\"episode_id\":5,") && !strstr(all, "999"));
    free(all);
    vg_store_close(st);
    snprintf(path, sizeof path, "%s/10.json", dir);
    CHECK(access(path, F_OK) == 0); /* left where it was */

    uint64_t id;
    int64_t updated_at;
    char why[300];
    CHECK_INT(vg_store_parse_entry("6.json", "{\"episode_id\":6,\"updated_at\":1e300}", 35, &id, &updated_at, why,
                                   sizeof why), -1);
    CHECK_STR(why, "the body's updated_at 1e+300 is out of range (max 2^53)");
    const char *other = "{\"episode_id\":999,\"updated_at\":7}";
    CHECK_INT(vg_store_parse_entry("7.json", other, strlen(other), &id, &updated_at, why, sizeof why), -1);
    CHECK_STR(why, "the body names episode 999, not 7");
    const char *good = "{\"episode_id\":1722279170848854017,\"updated_at\":-3}";
    CHECK_INT(vg_store_parse_entry("1722279170848854017.json", good, strlen(good), &id, &updated_at, why,
                                   sizeof why), 0);
    CHECK(id == 1722279170848854017ULL && updated_at == -3);
    CHECK_INT(vg_store_parse_entry("x.json", good, strlen(good), &id, &updated_at, why, sizeof why), -1);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    char dir[] = "/tmp/vigil-test-store-XXXXXX", err[256];
    if (!mkdtemp(dir)) return 1;
    vg_store *st = vg_store_open(dir, 0, err, sizeof err);
    CHECK(st != NULL);
    CHECK(vg_store_open(dir, 0, err, sizeof err) == NULL); /* one owner: a second vigil is refused */
    CHECK(strstr(err, "in use by another vigil process") != NULL && strstr(err, dir) != NULL);
    test_queries(st);
    test_long_poll(st);
    test_end_queries(st);
    vg_store_close(st); /* intermediate updates are written on the way out */

    st = vg_store_open(dir, 0, err, sizeof err);
    CHECK_INT(vg_store_count(st), 5);
    char *after = query(st, 300, 0, 0);
    CHECK(strstr(after, "\"episode_id\":2,") && strstr(after, "\"updated_at\":400"));
    free(after);
    vg_store_close(st);

    st = vg_store_open(dir, 50, err, sizeof err); /* keep for 50 ms: the flusher (every second) expires everything */
    for (int64_t t0 = vg_monotonic_ms(); vg_store_count(st) > 0 && vg_monotonic_ms() - t0 < CHECK_HANG_MS;)
        usleep(50 * 1000);
    CHECK_INT(vg_store_count(st), 0);
    vg_store_close(st);
    st = vg_store_open(dir, 0, err, sizeof err);
    CHECK_INT(vg_store_count(st), 0); /* the files went too */
    vg_store_close(st);

    test_hostile_entries();
    CHECK(vg_store_open("/proc/none/x", 0, err, sizeof err) == NULL);
    CHECK(strstr(err, "/proc/none/x") != NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    return CHECK_DONE();
}
