/* vg_store.c — the analytics-node episode store.
 *
 * Memory: one entry per episode (id, updated_at, body), kept sorted by updated_at so a query is a binary
 * search and a slice. Disk: dir/<episode_id>.json holds the newest body, replaced atomically
 * (vg_file_replace_at). First and closing versions are written at once and durably (the file and then the
 * directory fsync'd); intermediate updates are written, without fsync, by a flusher at most every FLUSH_MS,
 * since a camera extends its episodes on every frame. Entries older
 * than keep_for (by the wall time they last changed) are dropped, files too. dir/.lock is flock'd while a
 * process owns the store (the kernel drops it on kill), so two vigils never serve one directory.
 *
 * Loading at start reads only regular files (vg_file_read_at: a symlink is never followed, a FIFO never
 * waits), each at most VG_FILE_STORE_ENTRY_MAX, and keeps an entry only when its body is the record of the
 * episode its name gives (vg_version_body_check); anything else is said once and left where it is. */
#include "vg_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vg_file.h"
#include "vg_log.h"
#include "vg_snowflake.h"
#include "vg_spool.h" /* vg_spool_lock_dir: the store lives in the spool directory */
#include "vg_time.h"

#define WHO "store"
#define FLUSH_MS 1000
#define DEFAULT_KEEP_MS (24LL * 3600 * 1000)
#define DEFAULT_LIMIT 1000
#define WRITE_ERROR_EVERY_MS 10000 /* a failing write (a full disk) is said at most this often, with a count */

typedef struct entry {
    uint64_t id;
    int64_t updated_at;
    int64_t changed_ms;   /* wall clock of the last put, for retention */
    char *body;
    size_t len;
    int dirty;            /* newer than its file */
} entry;

struct vg_store {
    vg_sink sink;
    char *dir;
    int dirfd;               /* dir, for the entries' files */
    int lockfd;              /* dir/.lock, flock'd */
    int64_t keep_for_ms;
    pthread_mutex_t lock;
    pthread_cond_t changed;  /* CLOCK_MONOTONIC; broadcast on every put, for long polls */
    pthread_cond_t wake_flusher; /* CLOCK_MONOTONIC; only at stop */
    entry **entries;         /* sorted by updated_at, then id */
    size_t count, cap;
    pthread_t flusher;
    int flusher_started;
    int stopping;
    int queries_ended;       /* vg_store_end_queries: no more waiting */
    vg_log_limit write_errors;
};

/* ---------- files ---------- */

#define ENTRY_NAME_LEN (VG_ID_STRLEN + 8)

static char *entry_name(uint64_t id, char out[ENTRY_NAME_LEN]) {
    char idtext[VG_ID_STRLEN];
    snprintf(out, ENTRY_NAME_LEN, "%s.json", vg_id_format(id, idtext));
    return out;
}

/* durable: the first and closing versions (file and directory fsync'd before put returns). */
static int write_entry(const vg_store *st, const entry *e, int durable) {
    char name[ENTRY_NAME_LEN];
    return vg_file_replace_at(st->dirfd, entry_name(e->id, name), e->body, e->len, 0644, durable);
}

static void remove_entry_file(const vg_store *st, uint64_t id) {
    char name[ENTRY_NAME_LEN];
    unlinkat(st->dirfd, entry_name(id, name), 0);
}

/* ---------- the sorted array ---------- */

static int before(const entry *a, int64_t updated_at, uint64_t id) {
    return a->updated_at < updated_at || (a->updated_at == updated_at && a->id < id);
}

/* First index whose entry is not before (updated_at, id). */
static size_t lower_bound(const vg_store *st, int64_t updated_at, uint64_t id) {
    size_t lo = 0, hi = st->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (before(st->entries[mid], updated_at, id)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void insert_sorted(vg_store *st, entry *e) {
    if (st->count == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 64;
        st->entries = realloc(st->entries, st->cap * sizeof *st->entries);
    }
    size_t at = lower_bound(st, e->updated_at, e->id);
    memmove(st->entries + at + 1, st->entries + at, (st->count - at) * sizeof *st->entries);
    st->entries[at] = e;
    st->count++;
}

static entry *take(vg_store *st, uint64_t id) {
    for (size_t i = 0; i < st->count; i++) { /* by id: linear, the store holds thousands at most */
        if (st->entries[i]->id != id) continue;
        entry *e = st->entries[i];
        memmove(st->entries + i, st->entries + i + 1, (st->count - i - 1) * sizeof *st->entries);
        st->count--;
        return e;
    }
    return NULL;
}

static void entry_free(entry *e) {
    if (!e) return;
    free(e->body);
    free(e);
}

/* ---------- put ---------- */

static int store_put(vg_sink *sink, const vg_version *v) {
    vg_store *st = (vg_store *)sink;
    pthread_mutex_lock(&st->lock);
    entry *e = take(st, v->episode_id);
    if (e && e->updated_at >= v->updated_at) { /* an older version arriving late: keep the newer */
        insert_sorted(st, e);
        pthread_mutex_unlock(&st->lock);
        return 0;
    }
    if (!e) e = calloc(1, sizeof *e);
    free(e->body);
    e->id = v->episode_id;
    e->updated_at = v->updated_at;
    e->changed_ms = vg_realtime_ms();
    e->body = malloc(v->body_len + 1);
    memcpy(e->body, v->body, v->body_len);
    e->body[v->body_len] = 0;
    e->len = v->body_len;
    int now = v->is_first || v->is_closing;
    int rc = now ? write_entry(st, e, 1) : 0, saved = errno;
    e->dirty = !now;
    insert_sorted(st, e);
    pthread_cond_broadcast(&st->changed);
    long held = 0;
    int say = rc < 0 && vg_log_limit_pass(&st->write_errors, vg_monotonic_ms(), WRITE_ERROR_EVERY_MS, &held);
    pthread_mutex_unlock(&st->lock);
    if (say)
        vg_error(WHO, "%s: cannot write episode: %s (said at most every %d s; %ld more since the last line)",
                 st->dir, strerror(saved), WRITE_ERROR_EVERY_MS / 1000, held);
    return rc;
}

/* ---------- query ---------- */

/* The first entry with updated_at > after. */
static size_t first_after(const vg_store *st, int64_t after) {
    return after == INT64_MAX ? st->count : lower_bound(st, after + 1, 0);
}

void vg_store_query(vg_store *st, int64_t after, int limit, int timeout_ms, vg_buf *out) {
    if (limit <= 0) limit = DEFAULT_LIMIT;
    struct timespec deadline = vg_deadline_in_ms(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&st->lock);
    size_t from = first_after(st, after);
    while (from == st->count && timeout_ms > 0 && !st->stopping && !st->queries_ended) {
        if (pthread_cond_timedwait(&st->changed, &st->lock, &deadline) == ETIMEDOUT) break;
        from = first_after(st, after);
    }
    size_t to = from + (size_t)limit < st->count ? from + (size_t)limit : st->count;
    while (to < st->count && to > from && st->entries[to]->updated_at == st->entries[to - 1]->updated_at) to++;
    vg_buf_printf(out, "{\"episodes\":[");
    for (size_t i = from; i < to; i++) {
        if (i > from) vg_buf_append(out, ",", 1);
        vg_buf_append(out, st->entries[i]->body, st->entries[i]->len);
    }
    vg_buf_printf(out, "],\"estimated_count\":%zu}", st->count - from);
    pthread_mutex_unlock(&st->lock);
}

long vg_store_count(vg_store *st) {
    pthread_mutex_lock(&st->lock);
    long n = (long)st->count;
    pthread_mutex_unlock(&st->lock);
    return n;
}

void vg_store_end_queries(vg_store *st) {
    pthread_mutex_lock(&st->lock);
    st->queries_ended = 1;
    pthread_cond_broadcast(&st->changed);
    pthread_mutex_unlock(&st->lock);
}

/* ---------- flusher and retention ---------- */

static void flush_and_expire(vg_store *st) {
    int64_t now = vg_realtime_ms();
    for (size_t i = 0; i < st->count; i++) {
        entry *e = st->entries[i];
        if (now - e->changed_ms > st->keep_for_ms) {
            remove_entry_file(st, e->id);
            memmove(st->entries + i, st->entries + i + 1, (st->count - i - 1) * sizeof *st->entries);
            st->count--;
            entry_free(e);
            i--;
        } else if (e->dirty && write_entry(st, e, 0) == 0) {
            e->dirty = 0;
        }
    }
}

static void *flusher_main(void *arg) {
    vg_store *st = arg;
    pthread_mutex_lock(&st->lock);
    while (!st->stopping) {
        struct timespec deadline = vg_deadline_in_ms(CLOCK_MONOTONIC, FLUSH_MS);
        pthread_cond_timedwait(&st->wake_flusher, &st->lock, &deadline);
        flush_and_expire(st);
    }
    flush_and_expire(st);
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

/* ---------- open and close ---------- */

/* The episode id a file name "<episode_id>.json" gives; -1 when it is not such a name. */
static int entry_id(const char *name, uint64_t *id) {
    char idtext[32];
    size_t n = strlen(name);
    if (n < 6 || n - 5 >= sizeof idtext || strcmp(name + n - 5, ".json") != 0) return -1;
    snprintf(idtext, sizeof idtext, "%.*s", (int)(n - 5), name);
    return vg_id_parse(idtext, id);
}

int vg_store_parse_entry(const char *name, const char *text, size_t len, uint64_t *id, int64_t *updated_at,
                         char *why, size_t whylen) {
    if (entry_id(name, id) < 0) {
        snprintf(why, whylen, "not named <episode_id>.json");
        return -1;
    }
    const char *wrong = vg_version_body_check(text, len, *id, updated_at, why, whylen);
    if (wrong && wrong != why) snprintf(why, whylen, "%s", wrong);
    return wrong ? -1 : 0;
}

/* One entry file; NULL (said) when it is not one. */
static entry *load_file(vg_store *st, int dirfd, const char *name) {
    char why[300], *text;
    size_t len;
    uint64_t id;
    int64_t updated_at;
    struct stat sb;
    if (vg_file_read_at(dirfd, name, VG_FILE_STORE_ENTRY_MAX, &text, &len, why, sizeof why) != VG_FILE_OK) {
        vg_warn(WHO, "%s/%s: %s; skipped, left where it is", st->dir, name, why);
        return NULL;
    }
    if (vg_store_parse_entry(name, text, len, &id, &updated_at, why, sizeof why) < 0 ||
        fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        vg_warn(WHO, "%s/%s: not an episode record (%s); skipped", st->dir, name, why);
        free(text);
        return NULL;
    }
    entry *e = calloc(1, sizeof *e);
    e->id = id;
    e->updated_at = updated_at;
    e->body = text;
    e->len = len;
    e->changed_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
    return e;
}

static int load_dir(vg_store *st, char *err, size_t errlen) {
    int dirfd = dup(st->dirfd); /* the store's own directory, as it was opened: not looked up again by name */
    DIR *d = dirfd < 0 ? NULL : fdopendir(dirfd);
    if (!d) {
        snprintf(err, errlen, "%s: %s", st->dir, strerror(errno));
        if (dirfd >= 0) close(dirfd);
        return -1;
    }
    rewinddir(d); /* the dup shares st->dirfd's offset */
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') {
            if (strstr(de->d_name, ".tmp")) unlinkat(dirfd, de->d_name, 0); /* a write a crash interrupted */
            continue;
        }
        uint64_t id;
        if (entry_id(de->d_name, &id) < 0) continue; /* not an entry: not ours to judge */
        entry *e = load_file(st, dirfd, de->d_name);
        if (e) insert_sorted(st, e);
    }
    closedir(d); /* closes dirfd */
    return 0;
}

static void store_sink_close(vg_sink *sink) { (void)sink; /* the store outlives its sink role */ }

vg_store *vg_store_open(const char *dir, int64_t keep_for_ms, char *err, size_t errlen) {
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    vg_store *st = calloc(1, sizeof *st);
    st->sink = (vg_sink){.name = "store", .put = store_put, .close = store_sink_close};
    st->dir = strdup(dir);
    st->lockfd = -1;
    st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    st->keep_for_ms = keep_for_ms > 0 ? keep_for_ms : DEFAULT_KEEP_MS;
    pthread_mutex_init(&st->lock, NULL);
    vg_cond_init_monotonic(&st->changed);
    vg_cond_init_monotonic(&st->wake_flusher);
    if (st->dirfd < 0) snprintf(err, errlen, "%s: %s", dir, strerror(errno));
    else st->lockfd = vg_spool_lock_dir(dir, ".lock", err, errlen);
    if (st->lockfd < 0 || load_dir(st, err, errlen) < 0) {
        vg_store_close(st);
        return NULL;
    }
    st->flusher_started = pthread_create(&st->flusher, NULL, flusher_main, st) == 0;
    return st;
}

vg_sink *vg_store_sink(vg_store *st) { return &st->sink; }

void vg_store_close(vg_store *st) {
    if (!st) return;
    pthread_mutex_lock(&st->lock);
    st->stopping = 1;
    pthread_cond_broadcast(&st->changed);
    pthread_cond_signal(&st->wake_flusher);
    pthread_mutex_unlock(&st->lock);
    if (st->flusher_started) pthread_join(st->flusher, NULL); /* it writes what is dirty on the way out */
    for (size_t i = 0; i < st->count; i++) entry_free(st->entries[i]);
    free(st->entries);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->changed);
    pthread_cond_destroy(&st->wake_flusher);
    if (st->lockfd >= 0) close(st->lockfd); /* releases the flock */
    if (st->dirfd >= 0) close(st->dirfd);
    free(st->dir);
    free(st);
}
