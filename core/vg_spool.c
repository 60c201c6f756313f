/* vg_spool.c — the durable spool of episode versions waiting for Central (interface in vg_spool.h).
 *
 * Layout of the spool directory:
 *   <episode_id>-<updated_at>.ver  one file per version (first, intermediate or closing). A file is never
 *                                  rewritten: a newer version of the same episode is a new file, so a pending
 *                                  open or close can never be overwritten by a later extend. The transport
 *                                  removes a file once Central accepted (or rejected) that version, or once
 *                                  a newer intermediate version superseded it.
 *   .<name>.tmp                    a write in progress. Only a crash leaves one behind, and its writer was
 *                                  never told it was safe, so vg_spool_open deletes it.
 *   lock                           flock'd while a vigil process owns the spool (the kernel drops it on kill).
 *   corrupt/                       files that failed their check, moved aside with one log line.
 *
 * File format: a header line, the media name, the body (the complete JSON record):
 *   "VGSPOOL1 <episode_id> <opened_at> <updated_at> <is_first> <is_closing> <media_len> <body_len> <fnv>\n"
 *   <media> "\n" <body> "\n"
 * where fnv is the FNV-1a 64-bit hash of media and body in hex. A truncated file fails the length check,
 * a damaged one the hash, and a body that is not the JSON record of the header's episode (its episode_id
 * and updated_at) the body check: such a file is moved aside, never sent.
 *
 * Only regular files are read (vg_file_read_at: a symlink is never followed, a FIFO never waits), each at
 * most VG_FILE_SPOOL_VERSION_MAX; anything else named *.ver is left where it is, said once per load. */
#include "vg_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <math.h>
#include <unistd.h>

#include "vg_config.h" /* vg_json_parse */
#include "vg_file.h"
#include "vg_log.h"
#include "vg_snowflake.h"

#define SPOOL_MAGIC "VGSPOOL1"
#define SPOOL_DEFAULT_MAX (1LL << 30)
#define SPOOL_NAME_LEN 64

struct vg_spool {
    char *dir;
    int dirfd, lockfd;
    long long max_bytes, bytes;
    long files;
    pthread_mutex_t lock;
};

static void name_of(uint64_t id, int64_t updated_at, char name[SPOOL_NAME_LEN]) {
    snprintf(name, SPOOL_NAME_LEN, "%" PRIu64 "-%" PRId64 ".ver", id, updated_at);
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static uint64_t fnv1a(uint64_t h, const char *data, size_t len) {
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)data[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t version_hash(const char *media, size_t media_len, const char *body, size_t body_len) {
    return fnv1a(fnv1a(0xcbf29ce484222325ULL, media, media_len), body, body_len);
}

static void account(vg_spool *sp, long files, long long bytes) {
    pthread_mutex_lock(&sp->lock);
    sp->files += files;
    sp->bytes += bytes;
    pthread_mutex_unlock(&sp->lock);
}

/* Counts what the spool holds and deletes writes a crash interrupted. */
static int scan_existing(vg_spool *sp) {
    DIR *d = fdopendir(dup(sp->dirfd));
    if (!d) return -1;
    rewinddir(d); /* the dup shares dirfd's offset */
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (e->d_name[0] == '.' && has_suffix(e->d_name, ".tmp")) unlinkat(sp->dirfd, e->d_name, 0);
        else if (has_suffix(e->d_name, ".ver") && fstatat(sp->dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                 S_ISREG(st.st_mode)) {
            sp->files++;
            sp->bytes += st.st_size;
        }
    }
    closedir(d);
    return 0;
}

int vg_spool_lock_dir(const char *dir, const char *name, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: %s", path, fd < 0 && errno == ELOOP ? "is a symlink (not followed)"
                                              : fd < 0 ? strerror(errno) : "is not a regular file");
        if (fd >= 0) close(fd);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "%s is in use by another vigil process", dir);
        close(fd);
        return -1;
    }
    return fd;
}

static int lock_dir(vg_spool *sp, char *err, size_t errlen) {
    char reason[4200];
    sp->lockfd = vg_spool_lock_dir(sp->dir, "lock", reason, sizeof reason);
    if (sp->lockfd < 0) snprintf(err, errlen, "spool %s", reason);
    return sp->lockfd < 0 ? -1 : 0;
}

vg_spool *vg_spool_open(const char *dir, long long max_bytes, char *err, size_t errlen) {
    if (!dir || !*dir) {
        snprintf(err, errlen, "no spool directory given");
        return NULL;
    }
    char why[512];
    if (vg_file_make_dirs(dir, 0700, why, sizeof why) < 0) {
        snprintf(err, errlen, "spool %s", why);
        return NULL;
    }
    vg_spool *sp = calloc(1, sizeof *sp);
    sp->dir = strdup(dir);
    sp->lockfd = -1;
    sp->max_bytes = max_bytes > 0 ? max_bytes : SPOOL_DEFAULT_MAX;
    pthread_mutex_init(&sp->lock, NULL);
    sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dirfd < 0) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        vg_spool_close(sp);
        return NULL;
    }
    if (lock_dir(sp, err, errlen) < 0) {
        vg_spool_close(sp);
        return NULL;
    }
    if (scan_existing(sp) < 0) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        vg_spool_close(sp);
        return NULL;
    }
    return sp;
}

void vg_spool_close(vg_spool *sp) {
    if (!sp) return;
    if (sp->lockfd >= 0) close(sp->lockfd); /* releases the flock */
    if (sp->dirfd >= 0) close(sp->dirfd);
    pthread_mutex_destroy(&sp->lock);
    free(sp->dir);
    free(sp);
}

const char *vg_spool_dir(const vg_spool *sp) { return sp->dir; }

void vg_spool_usage(vg_spool *sp, long *files, long long *bytes) {
    pthread_mutex_lock(&sp->lock);
    if (files) *files = sp->files;
    if (bytes) *bytes = sp->bytes;
    pthread_mutex_unlock(&sp->lock);
}

/* Header, media and body in one buffer, as the file holds them. */
static char *encode(const vg_version *v, size_t *len) {
    size_t media_len = strlen(v->media);
    char header[200];
    int n = snprintf(header, sizeof header, SPOOL_MAGIC " %" PRIu64 " %" PRId64 " %" PRId64 " %d %d %zu %zu %016" PRIx64 "\n",
                     v->episode_id, v->opened_at, v->updated_at, v->is_first ? 1 : 0, v->is_closing ? 1 : 0,
                     media_len, v->body_len, version_hash(v->media, media_len, v->body, v->body_len));
    *len = (size_t)n + media_len + 1 + v->body_len + 1;
    char *buf = malloc(*len);
    char *p = buf;
    memcpy(p, header, (size_t)n), p += n;
    memcpy(p, v->media, media_len), p += media_len;
    *p++ = '\n';
    memcpy(p, v->body, v->body_len), p += v->body_len;
    *p = '\n';
    return buf;
}

/* temp file, fsync, rename over the final name, fsync the directory (vg_file_replace_at). */
static int write_durably(vg_spool *sp, const char *name, const char *buf, size_t len) {
    return vg_file_replace_at(sp->dirfd, name, buf, len, 0600, 1);
}

int vg_spool_write(vg_spool *sp, const vg_version *v, char *err, size_t errlen) {
    size_t len;
    char *buf = encode(v, &len), cap[32];
    if (len > VG_FILE_SPOOL_VERSION_MAX) { /* it could never be read back */
        snprintf(err, errlen, "spool: a version of episode %" PRIu64 " is larger than %s", v->episode_id,
                 vg_file_size_text(VG_FILE_SPOOL_VERSION_MAX, cap, sizeof cap));
        free(buf);
        return -1;
    }
    pthread_mutex_lock(&sp->lock);
    int full = sp->bytes + (long long)len > sp->max_bytes;
    if (!full) sp->bytes += (long long)len, sp->files++; /* reserved while writing */
    pthread_mutex_unlock(&sp->lock);
    if (full) {
        free(buf);
        return VG_SPOOL_FULL;
    }
    char name[SPOOL_NAME_LEN];
    name_of(v->episode_id, v->updated_at, name);
    int rc = write_durably(sp, name, buf, len);
    free(buf);
    if (rc < 0) {
        snprintf(err, errlen, "spool %s/%s: %s", sp->dir, name, strerror(errno));
        account(sp, -1, -(long long)len);
    }
    return rc;
}

int vg_spool_remove(vg_spool *sp, uint64_t episode_id, int64_t updated_at) {
    char name[SPOOL_NAME_LEN];
    name_of(episode_id, updated_at, name);
    struct stat st;
    if (fstatat(sp->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || unlinkat(sp->dirfd, name, 0) < 0) return -1;
    account(sp, -1, -(long long)st.st_size);
    return 0;
}

void vg_spool_sync(vg_spool *sp) { fsync(sp->dirfd); }

/* ---------- reading a version back ---------- */

/* The next header field: one space, a '-' when signed allows it, then decimal digits (hex ones when hex)
 * worth at most max: never more digits than fit. -1 when it is not that. */
static int header_field(const char **p, int hex, int signed_ok, uint64_t max, uint64_t *out, int *negative) {
    const char *s = *p;
    if (*s++ != ' ') return -1;
    *negative = signed_ok && *s == '-';
    s += *negative;
    uint64_t v = 0, base = hex ? 16 : 10;
    const char *first = s;
    for (;; s++) {
        unsigned d = *s >= '0' && *s <= '9' ? (unsigned)(*s - '0')
                   : hex && *s >= 'a' && *s <= 'f' ? (unsigned)(*s - 'a' + 10) : 99;
        if (d == 99) break;
        if (d > max || v > (max - d) / base) return -1;
        v = v * base + d;
    }
    if (s == first) return -1;
    *p = s;
    *out = v;
    return 0;
}

/* The header line (NUL-terminated at its end) into v and the lengths and hash; -1 when it is not one. */
static int parse_header(const char *line, vg_version *v, size_t *media_len, size_t *body_len, uint64_t *hash) {
    if (strncmp(line, SPOOL_MAGIC, strlen(SPOOL_MAGIC)) != 0) return -1;
    const char *p = line + strlen(SPOOL_MAGIC);
    uint64_t f[8];
    int neg[8];
    const uint64_t max[8] = {UINT64_MAX, INT64_MAX, INT64_MAX, 1, 1, SIZE_MAX, SIZE_MAX, UINT64_MAX};
    for (int i = 0; i < 8; i++)
        if (header_field(&p, i == 7, i == 1 || i == 2, max[i], &f[i], &neg[i]) < 0) return -1;
    if (*p) return -1;
    v->episode_id = f[0];
    v->opened_at = neg[1] ? -(int64_t)f[1] : (int64_t)f[1];
    v->updated_at = neg[2] ? -(int64_t)f[2] : (int64_t)f[2];
    v->is_first = (int)f[3];
    v->is_closing = (int)f[4];
    *media_len = (size_t)f[5];
    *body_len = (size_t)f[6];
    *hash = f[7];
    return 0;
}

/* The raw text of the number that key holds in the top-level object of json (which cJSON took: well formed),
 * and how many times key is there. The id is compared as written: as a double it would lose digits. */
static int top_level_number(const char *json, size_t len, const char *key, const char **value, size_t *value_len) {
    size_t keylen = strlen(key);
    int depth = 0, expect_key = 0, count = 0;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (c == '"') {
            size_t start = i + 1, j = start;
            while (j < len && json[j] != '"') j += json[j] == '\\' ? 2 : 1;
            if (depth == 1 && expect_key && j - start == keylen && memcmp(json + start, key, keylen) == 0 &&
                ++count == 1) {
                size_t k = j + 1;
                while (k < len && strchr(" \t\r\n:", json[k]) && json[k]) k++;
                *value = json + k;
                while (k < len && json[k] && strchr("-+.0123456789eE", json[k])) k++;
                *value_len = (size_t)(json + k - *value);
            }
            expect_key = 0;
            i = j;
        } else if (c == '{' || c == '[') {
            expect_key = ++depth == 1 && c == '{';
        } else if (c == '}' || c == ']') {
            depth--, expect_key = 0;
        } else if (c == ',') {
            expect_key = depth == 1;
        }
    }
    return count;
}

#define MAX_EXACT_MS 9007199254740992.0 /* 2^53: every integer up to it is exact as a double */

static const char *check_record(const char *body, size_t len, const cJSON *doc, uint64_t episode_id,
                                int64_t *updated_at, char *why, size_t whylen) {
    const char *id = body;
    size_t idlen = 0;
    char expected[VG_ID_STRLEN];
    vg_id_format(episode_id, expected);
    int n = top_level_number(body, len, "episode_id", &id, &idlen);
    if (!cJSON_IsObject(doc)) return "the body is not a JSON object";
    if (n == 0) return "the body has no episode_id";
    if (n > 1) return "the body gives episode_id twice";
    if (idlen == 0) return "the body's episode_id is not a number";
    if (idlen != strlen(expected) || memcmp(id, expected, idlen) != 0) {
        snprintf(why, whylen, "the body names episode %.*s, not %s", (int)(idlen < 40 ? idlen : 40), id, expected);
        return why;
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(doc, "updated_at");
    double ms = cJSON_IsNumber(u) ? u->valuedouble : 0.5;
    if (ms != floor(ms)) return "the body's updated_at is missing or not an integer";
    if (!(fabs(ms) <= MAX_EXACT_MS)) {
        snprintf(why, whylen, "the body's updated_at %g is out of range (max 2^53)", ms);
        return why;
    }
    *updated_at = (int64_t)ms;
    return NULL;
}

const char *vg_version_body_check(const char *body, size_t len, uint64_t episode_id, int64_t *updated_at,
                                  char *why, size_t whylen) {
    char reason[200];
    cJSON *doc = vg_json_parse(body, len, reason, sizeof reason);
    if (!doc) {
        snprintf(why, whylen, "the body is %s%s", strncmp(reason, "not valid JSON", 14) ? "refused: " : "", reason);
        return why;
    }
    const char *wrong = check_record(body, len, doc, episode_id, updated_at, why, whylen);
    cJSON_Delete(doc);
    return wrong;
}

/* Checks one file's bytes and points v into them (NUL-terminating media and body in place).
 * Returns NULL, or what is wrong (why holds it when it is built). */
static const char *decode_into(const char *name, char *buf, size_t len, vg_version *v, char *why, size_t whylen) {
    char *eol = memchr(buf, '\n', len < 200 ? len : 200);
    if (!eol) return len == 0 ? "empty" : "no header line";
    *eol = 0;
    size_t media_len, body_len;
    uint64_t hash;
    if (parse_header(buf, v, &media_len, &body_len, &hash) < 0 || media_len == 0 || body_len == 0) return "bad header";
    size_t head = (size_t)(eol - buf) + 1;
    if (media_len > len || body_len > len || head + media_len + 1 + body_len + 1 != len)
        return head + media_len + body_len + 2 > len ? "truncated" : "wrong length";
    char *media = buf + head, *body = media + media_len + 1;
    if (media[media_len] != '\n' || body[body_len] != '\n') return "bad separators";
    if (version_hash(media, media_len, body, body_len) != hash) return "checksum mismatch";
    char expected[SPOOL_NAME_LEN];
    name_of(v->episode_id, v->updated_at, expected);
    if (strcmp(expected, name) != 0) return "name does not match its content";
    int64_t updated_at = 0;
    const char *wrong = vg_version_body_check(body, body_len, v->episode_id, &updated_at, why, whylen);
    if (wrong) return wrong;
    if (updated_at != v->updated_at) {
        snprintf(why, whylen, "the body's updated_at %" PRId64 " is not the header's %" PRId64, updated_at,
                 v->updated_at);
        return why;
    }
    media[media_len] = 0;
    body[body_len] = 0;
    v->media = media;
    v->body = body;
    v->body_len = body_len;
    return NULL;
}

const char *vg_spool_decode(const char *name, char *buf, size_t len, vg_version *v) {
    static _Thread_local char why[300]; /* for the harness; the reads above keep their own */
    return decode_into(name, buf, len, v, why, sizeof why);
}

static void move_aside(vg_spool *sp, const char *name, const char *why) {
    struct stat st;
    int have_size = fstatat(sp->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    char dest[SPOOL_NAME_LEN + 16];
    snprintf(dest, sizeof dest, "corrupt/%s", name);
    mkdirat(sp->dirfd, "corrupt", 0700);
    if (renameat(sp->dirfd, name, sp->dirfd, dest) < 0) {
        vg_error("spool", "%s/%s is unreadable (%s) and could not be moved aside: %s; skipped", sp->dir, name, why,
                 strerror(errno));
        return;
    }
    if (have_size) account(sp, -1, -(long long)st.st_size);
    vg_error("spool", "%s/%s is unreadable (%s); moved to %s/corrupt/", sp->dir, name, why, sp->dir);
}

/* Reads and checks a file; on success *buf holds it and v points into it. Returns 0; -1 when the file is
 * corrupt or too large ever to be read (reported and moved aside); -2 when it cannot be read (err says why:
 * gone, not a regular file, no permission). */
static int read_version(vg_spool *sp, const char *name, char **buf, vg_version *v, char *err, size_t errlen) {
    size_t len;
    char why[300];
    vg_file_status rc = vg_file_read_at(sp->dirfd, name, VG_FILE_SPOOL_VERSION_MAX, buf, &len, why, sizeof why);
    if (rc != VG_FILE_OK && rc != VG_FILE_TOO_LARGE) {
        snprintf(err, errlen, "spool %s/%s: %s", sp->dir, name, why);
        return -2;
    }
    const char *wrong = rc == VG_FILE_TOO_LARGE ? why : decode_into(name, *buf, len, v, why, sizeof why);
    if (!wrong) return 0;
    move_aside(sp, name, wrong);
    snprintf(err, errlen, "spool %s/%s is unreadable (%s)", sp->dir, name, wrong);
    free(*buf);
    *buf = NULL;
    return -1;
}

int vg_spool_read(vg_spool *sp, uint64_t episode_id, int64_t updated_at, char **media, char **body,
                  size_t *body_len, char *err, size_t errlen) {
    char name[SPOOL_NAME_LEN], *buf;
    name_of(episode_id, updated_at, name);
    vg_version v;
    if (read_version(sp, name, &buf, &v, err, errlen) != 0) return -1;
    *media = strdup(v.media);
    *body = malloc(v.body_len + 1);
    memcpy(*body, v.body, v.body_len + 1);
    *body_len = v.body_len;
    free(buf);
    return 0;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the version files, sorted. A *.ver that is not a regular file (a FIFO, a symlink, a device)
 * is left where it is and said, once per load. */
static char **list_versions(vg_spool *sp, size_t *count) {
    *count = 0;
    DIR *d = fdopendir(dup(sp->dirfd));
    if (!d) return NULL;
    rewinddir(d);
    size_t cap = 0;
    char **names = NULL, why[200];
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".ver")) continue;
        if (vg_file_irregular_at(sp->dirfd, e->d_name, why, sizeof why)) {
            vg_error("spool", "%s/%s: %s; skipped, left where it is", sp->dir, e->d_name, why);
            continue;
        }
        if (*count == cap) {
            char **more = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
            if (!more) break;
            names = more;
        }
        names[(*count)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*count) qsort(names, *count, sizeof *names, compare_names);
    return names;
}

long vg_spool_load(vg_spool *sp, vg_spool_visit_fn visit, void *ctx) {
    size_t count;
    char **names = list_versions(sp, &count);
    long loaded = 0;
    for (size_t i = 0; i < count; i++) {
        char *buf, err[512];
        vg_version v;
        int rc = read_version(sp, names[i], &buf, &v, err, sizeof err);
        if (rc == 0) {
            visit(ctx, &v);
            loaded++;
        } else if (rc == -2) {
            vg_error("spool", "%s; skipped", err);
        }
        free(buf);
        free(names[i]);
    }
    free(names);
    return loaded;
}
