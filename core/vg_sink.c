/* vg_sink.c — the sink interface, the JSON-lines file sink (replay's --out) and the tee that feeds two sinks. */
#include "vg_sink.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

vg_sink *vg_sink_file_open(const char *path, int append, char *err, size_t errlen) {
    int to_stdout = strcmp(path, "-") == 0;
    FILE *out = to_stdout ? stdout : fopen(path, append ? "a" : "w");
    if (!out) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    file_sink *fs = calloc(1, sizeof *fs);
    fs->base = (vg_sink){.name = "file", .put = file_put, .close = file_close};
    fs->out = out;
    fs->owns = !to_stdout;
    pthread_mutex_init(&fs->lock, NULL);
    return &fs->base;
}

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
