/* replay.c — the main() that `make test` links with each harness instead of libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file of the directories (or files) given, in name order, so a
 * corpus is replayed under the unit tests' sanitizers. A crash or a sanitizer report ends the process
 * non-zero right after the "replay: FILE" line of the input that caused it. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* The file's bytes in a buffer of exactly their size (so a read past the end is caught); -1 on error. */
static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "replay: %s: not a regular file\n", path);
        fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    size_t got = fread(data, 1, size, f);
    fclose(f);
    if (got != size) {
        fprintf(stderr, "replay: %s: short read\n", path);
        free(data);
        return -1;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }
static int not_hidden(const struct dirent *e) { return e->d_name[0] != '.'; }

/* How many files of dir were replayed, or -1. */
static int replay_dir(const char *dir) {
    struct dirent **names;
    int n = scandir(dir, &names, not_hidden, by_name);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int done = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (done >= 0 && replay_file(path) == 0) done++;
        else done = -1;
        free(names[i]);
    }
    free(names);
    return done;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int is_dir = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode);
        int n = is_dir ? replay_dir(argv[i]) : replay_file(argv[i]) == 0 ? 1 : -1;
        if (n < 0) return 1;
        if (n == 0) {
            fprintf(stderr, "replay: %s: no input in it\n", argv[i]);
            return 1;
        }
        total += n;
    }
    printf("replay: %d inputs, no crash\n", total);
    return 0;
}
