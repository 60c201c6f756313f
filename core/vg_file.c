/* vg_file.c — the one way vigil reads a file whole (interface in vg_file.h): look before opening, open
 * without blocking (a FIFO opened non-blocking for reading never waits for a writer), check again on the
 * open descriptor, then read to EOF into a buffer that never grows past the cap. The one atomic writer
 * (temp file, fsync, rename, fsync of the directory). And the key-file format. */
#include "vg_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static vg_file_status fail(vg_file_status status, char *err, size_t errlen, const char *what) {
    snprintf(err, errlen, "%s", what);
    return status;
}

static const char *irregular_kind(mode_t mode) {
    if (S_ISFIFO(mode)) return "is a FIFO, not a regular file";
    if (S_ISCHR(mode)) return "is a character device, not a regular file";
    if (S_ISBLK(mode)) return "is a block device, not a regular file";
    if (S_ISSOCK(mode)) return "is a socket, not a regular file";
    if (S_ISDIR(mode)) return "is a directory, not a regular file";
    if (S_ISLNK(mode)) return "is a symlink (not followed)";
    return "is not a regular file";
}

const char *vg_file_size_text(size_t bytes, char *out, size_t outlen) {
    if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) snprintf(out, outlen, "%zu MiB", bytes >> 20);
    else if (bytes >= 1024 && bytes % 1024 == 0) snprintf(out, outlen, "%zu KiB", bytes >> 10);
    else snprintf(out, outlen, "%zu bytes", bytes);
    return out;
}

static vg_file_status too_large(size_t max, char *err, size_t errlen) {
    char cap[32];
    snprintf(err, errlen, "is larger than %s", vg_file_size_text(max, cap, sizeof cap));
    return VG_FILE_TOO_LARGE;
}

static vg_file_status stat_failed(char *err, size_t errlen) {
    return fail(errno == ENOENT ? VG_FILE_MISSING : VG_FILE_FAILED, err, errlen, strerror(errno));
}

/* Reads fd (closed here) to EOF. The buffer starts one byte larger than fstat says, so a file that grew
 * since is noticed, and grows (checked) only up to max + 1 bytes: one more than that is "too large". */
static vg_file_status read_open(int fd, size_t max, char **text, size_t *len, char *err, size_t errlen) {
    struct stat st;
    vg_file_status refused = VG_FILE_OK;
    if (fstat(fd, &st) < 0) refused = fail(VG_FILE_FAILED, err, errlen, strerror(errno));
    else if (!S_ISREG(st.st_mode)) refused = fail(VG_FILE_NOT_REGULAR, err, errlen, irregular_kind(st.st_mode));
    if (refused != VG_FILE_OK) {
        close(fd);
        return refused;
    }
    if (st.st_size < 0 || (unsigned long long)st.st_size > max) {
        close(fd);
        return too_large(max, err, errlen);
    }
    size_t room = (size_t)st.st_size + 1 > max + 1 ? max + 1 : (size_t)st.st_size + 1, got = 0;
    char *buf = malloc(room + 1);
    vg_file_status rc = buf ? VG_FILE_OK : fail(VG_FILE_FAILED, err, errlen, "out of memory");
    while (rc == VG_FILE_OK) {
        if (got == room && room > max) break;
        if (got == room) {
            size_t more = room > max / 2 ? max + 1 : room * 2;
            char *bigger = realloc(buf, more + 1);
            if (!bigger) {
                rc = fail(VG_FILE_FAILED, err, errlen, "out of memory");
                break;
            }
            buf = bigger, room = more;
        }
        ssize_t n = read(fd, buf + got, room - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = fail(VG_FILE_FAILED, err, errlen, strerror(errno));
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    if (rc == VG_FILE_OK && got > max) rc = too_large(max, err, errlen);
    if (rc != VG_FILE_OK) {
        free(buf);
        return rc;
    }
    buf[got] = 0;
    *text = buf;
    *len = got;
    return VG_FILE_OK;
}

vg_file_status vg_file_read(const char *path, size_t max, char **text, size_t *len, char *err, size_t errlen) {
    struct stat st;
    *text = NULL;
    *len = 0;
    if (stat(path, &st) < 0) return stat_failed(err, errlen);
    if (!S_ISREG(st.st_mode)) return fail(VG_FILE_NOT_REGULAR, err, errlen, irregular_kind(st.st_mode));
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return stat_failed(err, errlen);
    return read_open(fd, max, text, len, err, errlen);
}

vg_file_status vg_file_read_at(int dirfd, const char *name, size_t max, char **text, size_t *len, char *err,
                               size_t errlen) {
    struct stat st;
    *text = NULL;
    *len = 0;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return stat_failed(err, errlen);
    if (!S_ISREG(st.st_mode)) return fail(VG_FILE_NOT_REGULAR, err, errlen, irregular_kind(st.st_mode));
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == ELOOP) return fail(VG_FILE_NOT_REGULAR, err, errlen, irregular_kind(S_IFLNK));
    if (fd < 0) return stat_failed(err, errlen);
    return read_open(fd, max, text, len, err, errlen);
}

const char *vg_file_irregular_at(int dirfd, const char *name, char *why, size_t whylen) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) snprintf(why, whylen, "%s", strerror(errno));
    else if (!S_ISREG(st.st_mode)) snprintf(why, whylen, "%s", irregular_kind(st.st_mode));
    else return NULL;
    return why;
}

/* ---------- writing ---------- */

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        buf += n, len -= (size_t)n;
    }
    return 0;
}

int vg_file_replace_at(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, int durable) {
    char tmp[512];
    if ((size_t)snprintf(tmp, sizeof tmp, ".%s.tmp", name) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, mode);
    if (fd < 0) return -1;
    int rc = write_all(fd, buf, len) == 0 && (!durable || fsync(fd) == 0) ? 0 : -1;
    int saved = errno;
    if (close(fd) < 0 && rc == 0) rc = -1, saved = errno;
    if (rc == 0 && renameat(dirfd, tmp, dirfd, name) == 0 && (!durable || fsync(dirfd) == 0)) return 0;
    saved = rc < 0 ? saved : errno;
    unlinkat(dirfd, tmp, 0);
    errno = saved;
    return -1;
}

int vg_file_make_dirs(const char *dir, mode_t mode, char *err, size_t errlen) {
    char path[PATH_MAX];
    if (!*dir) {
        snprintf(err, errlen, "'': an empty directory name");
        return -1;
    }
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        snprintf(err, errlen, "%.64s...: path too long", dir);
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        if (mkdir(path, mode) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
        *p = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a directory", dir);
        return -1;
    }
    if (access(dir, W_OK) < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---------- key files ---------- */

typedef struct span {
    const char *p;
    size_t n;
} span;

static span skip_blanks(span s) {
    while (s.n && (*s.p == ' ' || *s.p == '\t')) s.p++, s.n--;
    return s;
}

static span trim_end(span s) {
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t' || s.p[s.n - 1] == '\r')) s.n--;
    return s;
}

static int is_name_char(char c, int first) {
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (!first && c >= '0' && c <= '9');
}

/* A shell assignment "NAME=value" (after "export "): *name and *value set, 1. A key that merely holds "="
 * ("abc==", base64 padding) is not one: what follows its "=" is "=" only. */
static int assignment(span line, span *name, span *value) {
    span s = skip_blanks(line);
    if (s.n > 7 && memcmp(s.p, "export", 6) == 0 && (s.p[6] == ' ' || s.p[6] == '\t')) {
        s.p += 7, s.n -= 7;
        s = skip_blanks(s);
    }
    size_t i = 0;
    while (i < s.n && is_name_char(s.p[i], i == 0)) i++;
    if (i == 0) return 0;
    *name = (span){s.p, i};
    span rest = skip_blanks((span){s.p + i, s.n - i});
    if (!rest.n || *rest.p != '=') return 0;
    *value = skip_blanks((span){rest.p + 1, rest.n - 1});
    size_t equals = 0;
    while (equals < value->n && value->p[equals] == '=') equals++;
    int is_key_itself = equals == trim_end(*value).n && (name->n != 7 || memcmp(name->p, "API_KEY", 7) != 0);
    return !is_key_itself;
}

/* The value of API_KEY=: quoted ('...' or "..."), or bare up to a " # comment" or the end of the line. */
static span assigned_value(span v) {
    if (v.n && (*v.p == '"' || *v.p == '\'')) {
        const char *end = memchr(v.p + 1, *v.p, v.n - 1);
        return end ? (span){v.p + 1, (size_t)(end - v.p - 1)} : trim_end((span){v.p + 1, v.n - 1});
    }
    size_t n = 0;
    while (n < v.n && !(v.p[n] == '#' && (n == 0 || v.p[n - 1] == ' ' || v.p[n - 1] == '\t'))) n++;
    return trim_end((span){v.p, n});
}

static int key_is_clean(span key) {
    for (size_t i = 0; i < key.n; i++)
        if ((unsigned char)key.p[i] < 0x20 || key.p[i] == 0x7f) return 0;
    return key.n > 0;
}

int vg_key_parse(const char *text, size_t len, char *key, size_t keylen, char *err, size_t errlen) {
    span found = {NULL, 0}, alone = {NULL, 0};
    int have_assigned = 0, have_alone = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        span line = {text + at, nl ? (size_t)(nl - text - at) : len - at}, name, value;
        at += line.n + 1;
        span body = trim_end(skip_blanks(line));
        if (!body.n || *body.p == '#') continue;
        if (assignment(line, &name, &value)) {
            if (name.n == 7 && memcmp(name.p, "API_KEY", 7) == 0) found = assigned_value(value), have_assigned = 1;
        } else if (!have_alone) {
            alone = body, have_alone = 1;
        }
    }
    span k = have_assigned ? found : alone;
    if (!have_assigned && !have_alone)
        snprintf(err, errlen, "no key in it (no API_KEY= line, and no line with the key alone)");
    else if (!key_is_clean(k)) snprintf(err, errlen, "the key is empty or has control characters");
    else if (k.n >= keylen) snprintf(err, errlen, "the key is longer than %zu bytes", keylen - 1);
    else {
        memcpy(key, k.p, k.n);
        key[k.n] = 0;
        return 0;
    }
    return -1;
}

int vg_key_file_read(const char *path, char *key, size_t keylen, char *err, size_t errlen) {
    char *text, why[200];
    size_t len;
    if (vg_file_read(path, VG_FILE_KEY_MAX, &text, &len, why, sizeof why) != VG_FILE_OK) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    int rc = vg_key_parse(text, len, key, keylen, why, sizeof why);
    if (rc < 0) snprintf(err, errlen, "%s: %s", path, why);
    explicit_bzero(text, len);
    free(text);
    return rc;
}
