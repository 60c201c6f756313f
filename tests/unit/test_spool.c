/* test_spool.c — vg_spool: write, read back, load, remove; the lock against a second owner; leftovers of an
 * interrupted write; corrupt, truncated and misnamed files reported in one line and moved aside; the size
 * bound. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "vg_spool.h"

static char root[256];

typedef struct seen {
    int count;
    uint64_t ids[16];
    int64_t updated[16];
    int first[16], closing[16];
    char bodies[16][128];
} seen;

static void visit(void *ctx, const vg_version *v) {
    seen *s = ctx;
    if (s->count >= 16) return;
    s->ids[s->count] = v->episode_id;
    s->updated[s->count] = v->updated_at;
    s->first[s->count] = v->is_first;
    s->closing[s->count] = v->is_closing;
    snprintf(s->bodies[s->count], sizeof s->bodies[0], "%s", v->body);
    s->count++;
}

static vg_version version(uint64_t id, int64_t updated_at, int first, int closing, const char *body) {
    return (vg_version){.episode_id = id, .media = "cam1", .opened_at = 1000, .updated_at = updated_at,
                        .is_first = first, .is_closing = closing, .body = body, .body_len = strlen(body)};
}

static void path_of(const char *dir, const char *name, char *out, size_t outlen) {
    snprintf(out, outlen, "%s/%s", dir, name);
}

static int exists(const char *dir, const char *name) {
    char p[512];
    path_of(dir, name, p, sizeof p);
    return access(p, F_OK) == 0;
}

static long file_size(const char *dir, const char *name) {
    char p[512];
    struct stat st;
    path_of(dir, name, p, sizeof p);
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static void write_raw(const char *dir, const char *name, const char *data, size_t len) {
    char p[512];
    path_of(dir, name, p, sizeof p);
    FILE *f = fopen(p, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

static size_t read_raw(const char *dir, const char *name, char *buf, size_t cap) {
    char p[512];
    path_of(dir, name, p, sizeof p);
    FILE *f = fopen(p, "rb");
    size_t n = f ? fread(buf, 1, cap, f) : 0;
    if (f) fclose(f);
    return n;
}

/* Runs vg_spool_load with stderr captured; returns the captured text (static buffer). */
static const char *load_capturing(vg_spool *sp, seen *s, long *loaded) {
    static char text[4096];
    char logpath[300];
    snprintf(logpath, sizeof logpath, "%s/stderr.txt", root);
    fflush(stderr);
    int saved = dup(2), fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    *loaded = vg_spool_load(sp, visit, s);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(logpath, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    return text;
}

static int count_lines(const char *text) {
    int n = 0;
    for (; *text; text++) n += *text == '\n';
    return n;
}

static void test_write_read_load_remove(void) {
    char dir[300], err[256];
    snprintf(dir, sizeof dir, "%s/a/b/spool", root); /* parents are created */
    vg_spool *sp = vg_spool_open(dir, 0, err, sizeof err);
    CHECK(sp != NULL);
    if (!sp) return;
    vg_version open_v = version(9007199254740993ULL, 1000, 1, 0, "{\"v\":1}");
    vg_version mid_v = version(9007199254740993ULL, 2000, 0, 0, "{\"v\":2}");
    vg_version close_v = version(9007199254740993ULL, 3000, 0, 1, "{\"v\":3}");
    CHECK_INT(vg_spool_write(sp, &open_v, err, sizeof err), 0);
    CHECK_INT(vg_spool_write(sp, &mid_v, err, sizeof err), 0);
    CHECK_INT(vg_spool_write(sp, &close_v, err, sizeof err), 0);
    CHECK(exists(dir, "9007199254740993-1000.ver"));
    CHECK(exists(dir, "9007199254740993-3000.ver"));
    long files;
    long long bytes;
    vg_spool_usage(sp, &files, &bytes);
    CHECK_INT(files, 3);
    CHECK_INT(bytes, file_size(dir, "9007199254740993-1000.ver") + file_size(dir, "9007199254740993-2000.ver") +
                         file_size(dir, "9007199254740993-3000.ver"));

    char *media, *body;
    size_t len;
    CHECK_INT(vg_spool_read(sp, 9007199254740993ULL, 2000, &media, &body, &len, err, sizeof err), 0);
    CHECK_STR(media, "cam1");
    CHECK_STR(body, "{\"v\":2}");
    CHECK_INT(len, 7);
    free(media);
    free(body);
    CHECK_INT(vg_spool_read(sp, 1, 1, &media, &body, &len, err, sizeof err), -1);

    seen s = {0};
    CHECK_INT(vg_spool_load(sp, visit, &s), 3);
    CHECK_U64(s.ids[0], 9007199254740993ULL);
    CHECK_INT(s.updated[0], 1000);
    CHECK_INT(s.first[0], 1);
    CHECK_INT(s.closing[2], 1);
    CHECK_STR(s.bodies[2], "{\"v\":3}");

    CHECK_INT(vg_spool_remove(sp, 9007199254740993ULL, 2000), 0);
    CHECK_INT(vg_spool_remove(sp, 9007199254740993ULL, 2000), -1);
    vg_spool_sync(sp);
    vg_spool_usage(sp, &files, NULL);
    CHECK_INT(files, 2);

    /* a second owner is refused while the first holds the lock */
    vg_spool *other = vg_spool_open(dir, 0, err, sizeof err);
    CHECK(other == NULL);
    CHECK(strstr(err, "in use") != NULL && strstr(err, dir) != NULL);
    vg_spool_close(sp);

    /* after a crash: a half-written temp file is deleted, the versions are counted again */
    write_raw(dir, ".9007199254740993-4000.ver.tmp", "VGSPOOL1 half", 13);
    sp = vg_spool_open(dir, 0, err, sizeof err);
    CHECK(sp != NULL);
    CHECK(!exists(dir, ".9007199254740993-4000.ver.tmp"));
    vg_spool_usage(sp, &files, NULL);
    CHECK_INT(files, 2);
    vg_spool_close(sp);
}

static void test_corrupt_files(void) {
    char dir[300], err[256];
    snprintf(dir, sizeof dir, "%s/corrupt-test", root);
    vg_spool *sp = vg_spool_open(dir, 0, err, sizeof err);
    CHECK(sp != NULL);
    if (!sp) return;
    for (int i = 1; i <= 6; i++) {
        vg_version v = version((uint64_t)i, 5000, 1, 0, "{\"episode_id\":1,\"payload\":{\"text\":\"hello\"}}");
        CHECK_INT(vg_spool_write(sp, &v, err, sizeof err), 0);
    }
    char buf[512];
    size_t n = read_raw(dir, "2-5000.ver", buf, sizeof buf);
    write_raw(dir, "2-5000.ver", buf, n / 2); /* truncated */
    n = read_raw(dir, "3-5000.ver", buf, sizeof buf);
    buf[n - 5] ^= 0x20; /* a flipped bit in the body */
    write_raw(dir, "3-5000.ver", buf, n);
    write_raw(dir, "4-5000.ver", "", 0); /* empty */
    n = read_raw(dir, "5-5000.ver", buf, sizeof buf);
    write_raw(dir, "7-5000.ver", buf, n); /* content of another version */
    write_raw(dir, "junk.ver", "not a spool file at all\n", 24);
    vg_spool_close(sp); /* as at a restart: the damage happened while no one owned the spool */
    sp = vg_spool_open(dir, 0, err, sizeof err);

    seen s = {0};
    long loaded;
    const char *log = load_capturing(sp, &s, &loaded);
    CHECK_INT(loaded, 3);
    CHECK_INT(s.count, 3);
    CHECK_U64(s.ids[0], 1);
    CHECK_U64(s.ids[1], 5);
    CHECK_U64(s.ids[2], 6);
    CHECK_INT(count_lines(log), 5);
    CHECK(strstr(log, "2-5000.ver is unreadable (truncated)") != NULL);
    CHECK(strstr(log, "3-5000.ver is unreadable (checksum mismatch)") != NULL);
    CHECK(strstr(log, "4-5000.ver is unreadable (empty)") != NULL);
    CHECK(strstr(log, "7-5000.ver is unreadable (name does not match") != NULL);
    CHECK(strstr(log, "junk.ver is unreadable (bad header)") != NULL);
    CHECK(!exists(dir, "2-5000.ver") && exists(dir, "corrupt/2-5000.ver"));
    CHECK(exists(dir, "corrupt/junk.ver"));
    long files;
    vg_spool_usage(sp, &files, NULL);
    CHECK_INT(files, 3);

    /* a file damaged after loading is caught when read for sending */
    n = read_raw(dir, "6-5000.ver", buf, sizeof buf);
    write_raw(dir, "6-5000.ver", buf, n - 3);
    char *media = NULL, *body = NULL;
    size_t len;
    fflush(stderr);
    CHECK_INT(vg_spool_read(sp, 6, 5000, &media, &body, &len, err, sizeof err), -1);
    CHECK(strstr(err, "6-5000.ver") != NULL);
    CHECK(exists(dir, "corrupt/6-5000.ver"));
    CHECK(media == NULL && body == NULL);

    /* a second load finds nothing new to complain about */
    seen again = {0};
    log = load_capturing(sp, &again, &loaded);
    CHECK_INT(loaded, 2);
    CHECK_INT(count_lines(log), 0);
    vg_spool_close(sp);
}

static void test_size_bound(void) {
    char dir[300], err[256];
    snprintf(dir, sizeof dir, "%s/bound", root);
    vg_version v = version(42, 10, 1, 0, "{\"some\":\"body of a version\"}");
    vg_spool *probe = vg_spool_open(dir, 0, err, sizeof err);
    CHECK_INT(vg_spool_write(probe, &v, err, sizeof err), 0);
    long long one;
    vg_spool_usage(probe, NULL, &one);
    vg_spool_remove(probe, 42, 10);
    vg_spool_close(probe);

    vg_spool *sp = vg_spool_open(dir, one * 3, err, sizeof err);
    for (int i = 1; i <= 3; i++) {
        v.updated_at = 10 + i; /* same length names and headers */
        CHECK_INT(vg_spool_write(sp, &v, err, sizeof err), 0);
    }
    v.updated_at = 14;
    CHECK_INT(vg_spool_write(sp, &v, err, sizeof err), VG_SPOOL_FULL);
    CHECK(!exists(dir, "42-14.ver"));
    long long bytes;
    vg_spool_usage(sp, NULL, &bytes);
    CHECK_INT(bytes, one * 3);
    vg_spool_remove(sp, 42, 11);
    CHECK_INT(vg_spool_write(sp, &v, err, sizeof err), 0);
    vg_spool_close(sp);

    /* an unwritable directory: an error naming it */
    CHECK(vg_spool_open("/proc/vigil-spool", 0, err, sizeof err) == NULL);
    CHECK(strstr(err, "/proc/vigil-spool") != NULL);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/vigil-test-spool-XXXXXX");
    if (!mkdtemp(root)) return 2;
    test_write_read_load_remove();
    test_corrupt_files();
    test_size_bound();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (check_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return CHECK_DONE();
}
