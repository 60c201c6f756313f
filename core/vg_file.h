/* vg_file.h — reading a small file whole, safely: the config, key files, spool versions and episode-store
 * entries. Only a regular file is read (a FIFO, a device, a socket or a directory is refused without
 * reading a byte, so nothing here can wait), never more than the caller's cap, and every problem is one
 * line. Also the one atomic file writer (the spool's versions, the store's episodes), and the one key-file
 * format (docs/config.md, "Key files") and its reader. */
#ifndef VG_FILE_H
#define VG_FILE_H
#include <stddef.h>
#include <sys/types.h>

/* The caps, each stated here once (docs/config.md, "Files vigil reads"). */
#define VG_FILE_CONFIG_MAX ((size_t)4 << 20)          /* vigil run's config file */
#define VG_FILE_KEY_MAX ((size_t)64 << 10)            /* central.api_key_file, node.api_key_file */
#define VG_FILE_SPOOL_VERSION_MAX ((size_t)256 << 20) /* one spool file (an episode version with its previews) */
#define VG_FILE_STORE_ENTRY_MAX ((size_t)256 << 20)   /* one episode-store entry (the same record) */

typedef enum {
    VG_FILE_OK = 0,
    VG_FILE_MISSING,      /* no such file */
    VG_FILE_NOT_REGULAR,  /* a FIFO, device, socket, directory, or (never followed) a symlink */
    VG_FILE_TOO_LARGE,    /* over the cap */
    VG_FILE_FAILED,       /* anything else: permissions, I/O, memory */
} vg_file_status;

/* The file at path (a symlink given by the operator is followed; what it names must be a regular file).
 * VG_FILE_OK with *text malloc'd, *len bytes plus a NUL after them (the text may hold NULs of its own);
 * else err says what is wrong without the path ("is a FIFO, not a regular file", "is larger than 4 MiB"):
 * the caller names the file. */
vg_file_status vg_file_read(const char *path, size_t max, char **text, size_t *len, char *err, size_t errlen);

/* The same for name inside the directory dirfd (the spool, the store): a symlink is never followed
 * ("is a symlink"). */
vg_file_status vg_file_read_at(int dirfd, const char *name, size_t max, char **text, size_t *len, char *err,
                               size_t errlen);

/* For directory listings: NULL when name in dirfd is a regular file (not following a symlink), else what it
 * is ("is a FIFO, not a regular file", "is a symlink", or the reason it cannot be looked at). */
const char *vg_file_irregular_at(int dirfd, const char *name, char *why, size_t whylen);

/* "4 MiB", "64 KiB", "100 bytes": a size for a message. */
const char *vg_file_size_text(size_t bytes, char *out, size_t outlen);

/* ---------- writing ---------- */

/* Replaces name in the directory dirfd with len bytes of buf, atomically: they are written to
 * ".<name>.tmp" in the same directory (created with mode; a symlink there is never followed) and renamed
 * over name, so a reader sees the old content or the new, never a part. durable: the file is fsync'd before
 * the rename and the directory after it, so once this returns 0 the new content survives a crash; without,
 * a crash may leave the old content (never a torn file). 0, or -1 with errno set and the temp file gone. */
int vg_file_replace_at(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, int durable);

/* mkdir -p: dir and each missing parent made with mode (before the umask), then dir checked to be a directory
 * this process can write in. 0, or -1 with err one line naming the path ("DIR: not a directory",
 * "DIR/a: Permission denied"). */
int vg_file_make_dirs(const char *dir, mode_t mode, char *err, size_t errlen);

/* ---------- key files ---------- */

/* The key in a key file's text (len bytes, NULs allowed): its API_KEY= line (a shell-style assignment as in
 * Central's central.conf: "export ", spaces, quotes and a trailing " # comment" allowed; the last one wins),
 * or, in a file with no API_KEY= line, its first line that is neither empty, a "#" comment, nor another
 * NAME=value assignment, trimmed. The key must be 1..keylen-1 printable bytes. -1 with err (never quoting
 * the key). */
int vg_key_parse(const char *text, size_t len, char *key, size_t keylen, char *err, size_t errlen);

/* The key file at path, read (VG_FILE_KEY_MAX) and parsed; err names the file, never the key. */
int vg_key_file_read(const char *path, char *key, size_t keylen, char *err, size_t errlen);

#endif
