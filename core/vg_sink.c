/* vg_sink.c — the sink interface, the JSON-lines file sink (replay's --out) and the tee that feeds two sinks. */
#include "vg_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "vg_file.h"
#include "vg_jpeg.h"
#include "vg_log.h"
#include "vg_snowflake.h"

typedef struct file_sink {
    vg_sink base;
    FILE *out;
    int owns;
    pthread_mutex_t lock;
} file_sink;

static int file_put(vg_sink *sink, const vg_version *v) {
    file_sink *fs = (file_sink *)sink;
    pthread_mutex_lock(&fs->lock);
    int ok = fwrite(v->body, 1, v->body_len, fs->out) == v->body_len && fputc('\n', fs->out) != EOF &&
             fflush(fs->out) == 0;
    pthread_mutex_unlock(&fs->lock);
    return ok ? 0 : -1;
}

static void file_close(vg_sink *sink) {
    file_sink *fs = (file_sink *)sink;
    if (fs->owns) fclose(fs->out);
    else fflush(fs->out);
    pthread_mutex_destroy(&fs->lock);
    free(fs);
}

/* path for writing, without waiting: a FIFO (which would block the open until a reader came, with signals
 * already blocked) or a directory is refused with a line saying so; a regular file or a device is taken. */
static FILE *open_output(const char *path, int append, char *err, size_t errlen) {
    int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, errno == ENXIO ? "is a FIFO, not a regular file" : strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
        snprintf(err, errlen, "%s: is a %s, not a regular file", path, S_ISFIFO(st.st_mode) ? "FIFO" : "socket");
        close(fd);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *out = fdopen(fd, append ? "a" : "w");
    if (!out) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
    }
    return out;
}

vg_sink *vg_sink_file_open(const char *path, int append, char *err, size_t errlen) {
    int to_stdout = strcmp(path, "-") == 0;
    FILE *out = to_stdout ? stdout : open_output(path, append, err, errlen);
    if (!out) return NULL;
    file_sink *fs = calloc(1, sizeof *fs);
    fs->base = (vg_sink){.name = "file", .put = file_put, .close = file_close};
    fs->out = out;
    fs->owns = !to_stdout;
    pthread_mutex_init(&fs->lock, NULL);
    return &fs->base;
}

/* ---------- the log ---------- */

static const char *string_field(const cJSON *object, const char *name) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* One line for the version that opened an episode and one for the one that closed it (one version may do both). */
static void say_episode(const vg_version *v) {
    cJSON *record = cJSON_ParseWithLength(v->body, v->body_len);
    const char *type = string_field(record, "episode_type"), *reason = string_field(record, "close_reason");
    const char *why = string_field(cJSON_GetObjectItemCaseSensitive(record, "payload"), "close_reason");
    char id[VG_ID_STRLEN], at[64];
    vg_id_format(v->episode_id, id);
    vg_log_utc_text(v->opened_at, at, sizeof at);
    if (!type) type = "(no type)";
    if (v->is_first) vg_info(v->media, "episode %s opened: %s at %s", id, type, at);
    if (v->is_closing)
        vg_info(v->media, "episode %s closed: %s after %.1f s (%s%s%s), opened at %s", id, type,
                (double)(v->updated_at - v->opened_at) / 1000.0, reason ? reason : "", reason && why ? ", " : "",
                why ? why : reason ? "" : "no reason given", at);
    cJSON_Delete(record);
}

static int log_put(vg_sink *sink, const vg_version *v) {
    (void)sink;
    char id[VG_ID_STRLEN];
    if (v->is_first || v->is_closing) say_episode(v);
    else vg_debug(v->media, "episode %s updated at %lld", vg_id_format(v->episode_id, id), (long long)v->updated_at);
    return 0;
}

static void log_close(vg_sink *sink) { free(sink); }

vg_sink *vg_sink_log_open(void) {
    vg_sink *sink = calloc(1, sizeof *sink);
    *sink = (vg_sink){.name = "log", .put = log_put, .close = log_close};
    return sink;
}

/* ---------- shaping a file's versions ---------- */

typedef struct shape_sink {
    vg_sink base;
    vg_sink *inner;
    vg_file_shape shape;
    char *dir;
    int dirfd; /* dir's, or -1 */
    char name[80];
} shape_sink;

/* The base64 JPEG at key (a top-level string) written to DIR/ID-what-TS.jpg once; the record's text then says
 * "key_file":"path" where it said "key":"base64". 0, or -1 when the text stays as it was. */
static int preview_to_file(shape_sink *sh, const vg_version *v, cJSON *record, const char *key, const char *what,
                           char **text) {
    const char *b64 = string_field(record, key);
    char ts_key[48];
    snprintf(ts_key, sizeof ts_key, "%s_timestamp", key);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(record, ts_key);
    if (!b64) return -1;
    char id[VG_ID_STRLEN], name[128], path[4096], why[256];
    snprintf(name, sizeof name, "%s-%s-%.0f.jpg", vg_id_format(v->episode_id, id), what,
             cJSON_IsNumber(ts) ? ts->valuedouble : 0.0);
    snprintf(path, sizeof path, "%s/%s", sh->dir, name);
    if (faccessat(sh->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) != 0) {
        int rc = vg_jpeg_save_base64(sh->dirfd, name, b64, why, sizeof why);
        if (rc == -1) vg_warn(v->media, "cannot write the preview %s: %s; it stays in the record", path, why);
        if (rc == -2) vg_warn(v->media, "cannot write the preview %s/%s; it stays in the record", sh->dir, why);
        if (rc < 0) return -1;
    }
    /* the whole "key":"base64" item: a payload written before it may hold a "key" of its own, never with this
     * value unless it is a copy (replacing that one instead still leaves valid JSON) */
    size_t b64len = strlen(b64), keylen = strlen(key);
    char *from = malloc(keylen + b64len + 7);
    if (!from) return -1;
    sprintf(from, "\"%s\":\"%s\"", key, b64);
    char *at = strstr(*text, from);
    size_t skip = strlen(from);
    free(from);
    if (!at) return -1;
    cJSON *path_item = cJSON_CreateString(path); /* the path as a JSON string: a directory name may hold " or \\ */
    char *quoted = path_item ? cJSON_PrintUnformatted(path_item) : NULL;
    cJSON_Delete(path_item);
    if (!quoted) return -1;
    size_t head = (size_t)(at - *text), tail = strlen(at + skip);
    char *out = malloc(head + keylen + strlen(quoted) + tail + 12);
    if (out) sprintf(out, "%.*s\"%s_file\":%s%s", (int)head, *text, key, quoted, at + skip);
    free(quoted);
    if (!out) return -1;
    free(*text);
    *text = out;
    return 0;
}

static int shape_put(vg_sink *sink, const vg_version *v) {
    shape_sink *sh = (shape_sink *)sink;
    if (sh->shape.final_only && !v->is_closing) return 0;
    if (!sh->dir) return vg_sink_put(sh->inner, v);
    cJSON *record = cJSON_ParseWithLength(v->body, v->body_len);
    char *text = strndup(v->body, v->body_len);
    preview_to_file(sh, v, record, "preview", "preview", &text);
    preview_to_file(sh, v, record, "frame_preview", "frame", &text);
    cJSON_Delete(record);
    vg_version shaped = *v;
    shaped.body = text;
    shaped.body_len = strlen(text);
    int rc = vg_sink_put(sh->inner, &shaped);
    free(text);
    return rc;
}

static void shape_close(vg_sink *sink) {
    shape_sink *sh = (shape_sink *)sink;
    vg_sink_close(sh->inner);
    if (sh->dirfd >= 0) close(sh->dirfd);
    free(sh->dir);
    free(sh);
}

vg_sink *vg_sink_shape(vg_sink *inner, const vg_file_shape *shape, char *err, size_t errlen) {
    if (shape->previews_dir && vg_file_make_dirs(shape->previews_dir, 0755, err, errlen) < 0) {
        vg_sink_close(inner);
        return NULL;
    }
    shape_sink *sh = calloc(1, sizeof *sh);
    if (!sh) {
        snprintf(err, errlen, "out of memory");
        vg_sink_close(inner);
        return NULL;
    }
    snprintf(sh->name, sizeof sh->name, "%s", inner->name);
    sh->base = (vg_sink){.name = sh->name, .put = shape_put, .close = shape_close};
    sh->inner = inner;
    sh->shape = *shape;
    sh->dir = shape->previews_dir ? strdup(shape->previews_dir) : NULL;
    sh->dirfd = shape->previews_dir ? open(shape->previews_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (shape->previews_dir && (!sh->dir || sh->dirfd < 0)) {
        snprintf(err, errlen, "%s: %s", shape->previews_dir, strerror(sh->dirfd < 0 ? errno : ENOMEM));
        shape_close(&sh->base);
        return NULL;
    }
    return &sh->base;
}

/* ---------- fan-out ---------- */

typedef struct tee_sink {
    vg_sink base;
    vg_sink *a, *b;
    char name[64];
} tee_sink;

static int tee_put(vg_sink *sink, const vg_version *v) {
    tee_sink *t = (tee_sink *)sink;
    int ra = vg_sink_put(t->a, v), rb = vg_sink_put(t->b, v);
    return ra < 0 || rb < 0 ? -1 : 0;
}

static void tee_close(vg_sink *sink) {
    tee_sink *t = (tee_sink *)sink;
    vg_sink_close(t->a);
    vg_sink_close(t->b);
    free(t);
}

vg_sink *vg_sink_tee(vg_sink *a, vg_sink *b) {
    tee_sink *t = calloc(1, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s+%s", a->name, b->name);
    t->base = (vg_sink){.name = t->name, .put = tee_put, .close = tee_close};
    t->a = a;
    t->b = b;
    return &t->base;
}

int vg_sink_put(vg_sink *sink, const vg_version *version) { return sink->put(sink, version); }

void vg_sink_close(vg_sink *sink) {
    if (sink) sink->close(sink);
}
