/* vg_spool.h — the durable store of episode versions not yet accepted by Central: one file per version in
 * a directory, written atomically and fsync'd before the writer is told it is safe, size-bounded, and
 * loadable after a crash. Policy (which versions matter) lives in vg_outbox; the spool only stores. */
#ifndef VG_SPOOL_H
#define VG_SPOOL_H
#include <stddef.h>
#include <stdint.h>

#include "vg_episode.h"

#define VG_SPOOL_FULL (-2) /* vg_spool_write: the size bound would be exceeded */

typedef struct vg_spool vg_spool;

/* Creates dir (and its parents) if missing and locks it against a second vigil process.
 * max_bytes 0 = 1 GiB. NULL with a one-line reason in err. */
vg_spool *vg_spool_open(const char *dir, long long max_bytes, char *err, size_t errlen);
/* Claims dir for this process: an exclusive flock on dir/name, which the kernel drops when the process
 * dies, so a vigil killed mid-run never leaves it stale. The lock's fd (close it to release), or -1 with
 * err ("DIR is in use by another vigil process" when another process holds it). */
int vg_spool_lock_dir(const char *dir, const char *name, char *err, size_t errlen);
void vg_spool_close(vg_spool *sp);
const char *vg_spool_dir(const vg_spool *sp);

/* Stores one version durably (temp file, fsync, rename, fsync of the directory). Thread-safe.
 * Returns 0, VG_SPOOL_FULL, or -1 with err on an I/O error. */
int vg_spool_write(vg_spool *sp, const vg_version *v, char *err, size_t errlen);
/* Forgets a version. The removal becomes durable at the next vg_spool_sync or write. Thread-safe. */
int vg_spool_remove(vg_spool *sp, uint64_t episode_id, int64_t updated_at);
void vg_spool_sync(vg_spool *sp);

/* Reads one stored version back and checks it (vg_spool_decode); the caller frees *body and *media. -1 with
 * err when the file is gone, not a regular file, or corrupt (a corrupt one is then moved aside). */
int vg_spool_read(vg_spool *sp, uint64_t episode_id, int64_t updated_at, char **media, char **body,
                  size_t *body_len, char *err, size_t errlen);

/* Calls visit for every intact version in the spool (in file-name order). A corrupt or truncated file
 * is reported in one log line and moved to DIR/corrupt/; a *.ver that is not a regular file (FIFO, symlink,
 * device) is said in one line and left alone. Returns how many versions were visited. */
typedef void (*vg_spool_visit_fn)(void *ctx, const vg_version *v);
long vg_spool_load(vg_spool *sp, vg_spool_visit_fn visit, void *ctx);

void vg_spool_usage(vg_spool *sp, long *files, long long *bytes);

/* The check of one version file's len bytes (name: its file name), used by the reads above and the fuzz
 * harness: header, lengths, hash, name, and the body against the header (vg_version_body_check, and its
 * updated_at is the header's). Points v into buf, NUL-terminating media and body in place. NULL, or what is
 * wrong (a thread's own text, good until its next call). */
const char *vg_spool_decode(const char *name, char *buf, size_t len, vg_version *v);

/* The body of a version as the spool and the episode store keep it: JSON (vg_json_parse's checks) holding
 * one object whose episode_id is episode_id, compared digit for digit as written, and whose updated_at is an
 * integer within +-2^53, put in *updated_at. NULL, or what is wrong (in why when it is built there). */
const char *vg_version_body_check(const char *body, size_t len, uint64_t episode_id, int64_t *updated_at,
                                  char *why, size_t whylen);

#endif
