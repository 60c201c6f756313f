/* vg_log.h — one-line log records on stderr: "<who> <level>: <message>", and secret masking. */
#ifndef VG_LOG_H
#define VG_LOG_H
#include <stddef.h>
#include <stdint.h>

typedef enum { VG_LOG_ERROR, VG_LOG_WARN, VG_LOG_INFO, VG_LOG_DEBUG } vg_log_level;

void vg_log_set_level(vg_log_level level);
vg_log_level vg_log_get_level(void);
int vg_log_parse_level(const char *name, vg_log_level *out);
/* A progress line (vigil replay on a terminal) is shown: each log line wipes it first ("\r", erase line). */
void vg_log_set_status_line(int on);
void vg_log_set_timestamps(int on);
void vg_log(vg_log_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define vg_error(who, ...) vg_log(VG_LOG_ERROR, who, __VA_ARGS__)
#define vg_warn(who, ...)  vg_log(VG_LOG_WARN, who, __VA_ARGS__)
#define vg_info(who, ...)  vg_log(VG_LOG_INFO, who, __VA_ARGS__)
#define vg_debug(who, ...) vg_log(VG_LOG_DEBUG, who, __VA_ARGS__)

/* A line that could come on every attempt (a full disk, a failing write) said at most once per every_ms: the
 * first at once, those in between held back and counted, the count given with the next one said. Zero-
 * initialised; not locked: use it under the caller's lock or from one thread. */
typedef struct vg_log_limit {
    long long said_ms; /* when the last line was said (the caller's clock) */
    long held;         /* lines held back since */
    int said_once;
} vg_log_limit;

/* 1 when the line is to be said now (*held = how many were held back since the last one said), else 0 and
 * the line counted. */
int vg_log_limit_pass(vg_log_limit *limit, long long now_ms, long long every_ms, long *held);

/* ms since the epoch (negative ones too) as "2026-11-29 18:43:09.120 UTC"; a time gmtime cannot give as
 * "<ms> ms". Returns out (40 bytes hold any). */
const char *vg_log_utc_text(int64_t ms, char *out, size_t len);

/* Copies url into out with any "user:password@" replaced by "user:***@". */
const char *vg_mask_url(const char *url, char *out, size_t outlen);
/* The same for every URL inside a free text (an FFmpeg message, an error string). */
const char *vg_mask_urls_in(const char *text, char *out, size_t outlen);

#endif
