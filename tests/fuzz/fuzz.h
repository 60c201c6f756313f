/* fuzz.h — what the libFuzzer harnesses of tests/fuzz share: the entry point each defines, a NUL-terminated
 * copy of the input, the check that turns a broken promise into a crash the fuzzer (or the replay) reports,
 * and a scratch directory removed at exit. */
#ifndef VG_FUZZ_H
#define VG_FUZZ_H
#include <ftw.h>
#include <sys/stat.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data as a C string (cut at its first NUL, as a C caller would see it); free it. */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (size) memcpy(text, data, size);
    text[size] = 0;
    return text;
}

/* A promise of the code under test that the input broke: said on stderr, then abort() (a fuzzer crash). */
#define FUZZ_CHECK(cond, ...)                                                                  \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: broken promise: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static char fuzz_scratch[4096];

static inline int fuzz_remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

static inline void fuzz_remove_scratch(void) { nftw(fuzz_scratch, fuzz_remove_one, 16, FTW_DEPTH | FTW_PHYS); }

/* A new empty directory under $TMPDIR (or /tmp), the same one on every call, removed with what it holds
 * when the process exits. */
static inline const char *fuzz_scratch_dir(void) {
    if (fuzz_scratch[0]) return fuzz_scratch;
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_scratch, sizeof fuzz_scratch, "%s/vigil-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(fuzz_scratch) != NULL, "cannot make a scratch directory %s", fuzz_scratch);
    atexit(fuzz_remove_scratch);
    return fuzz_scratch;
}

#endif
