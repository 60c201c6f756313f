/* vg_log.c — the process-wide logger: level filter, one write per line so threads never interleave,
 * vg_log_limit for lines that could repeat on every attempt, and vg_mask_url so RTSP passwords never reach a
 * log line. */
#include "vg_log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Atomic: SIGHUP may change them on the main thread while camera threads log (relaxed: a line or two at
 * the old level is fine, a torn or undefined read is not). */
static atomic_int log_level = VG_LOG_INFO;
static atomic_int log_timestamps;
static atomic_int status_line; /* a progress line is on the terminal: each log line first wipes it */
static const char *level_names[] = {"error", "warn", "info", "debug"};

void vg_log_set_level(vg_log_level level) { atomic_store_explicit(&log_level, (int)level, memory_order_relaxed); }
vg_log_level vg_log_get_level(void) {
    return (vg_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}
void vg_log_set_timestamps(int on) { atomic_store_explicit(&log_timestamps, on, memory_order_relaxed); }
void vg_log_set_status_line(int on) { atomic_store_explicit(&status_line, on, memory_order_relaxed); }

int vg_log_parse_level(const char *name, vg_log_level *out) {
    for (int i = 0; i <= VG_LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (vg_log_level)i;
            return 0;
        }
    }
    return -1;
}

static size_t format_time(char *buf, size_t len) {
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    return n + (size_t)snprintf(buf + n, len - n, ".%03ldZ ", now.tv_nsec / 1000000);
}

const char *vg_log_utc_text(int64_t ms, char *out, size_t len) {
    int64_t secs = ms / 1000, rem = ms % 1000;
    if (rem < 0) secs--, rem += 1000; /* floor: -1 ms is 23:59:59.999 of the day before */
    time_t t = (time_t)secs;
    struct tm tm;
    char text[64];
    if (!gmtime_r(&t, &tm) || !strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(out, len, "%" PRId64 " ms", ms);
    else
        snprintf(out, len, "%s.%03d UTC", text, (int)rem);
    return out;
}

void vg_log(vg_log_level level, const char *who, const char *fmt, ...) {
    if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed)) return;
    char line[2048];
    size_t n = atomic_load_explicit(&status_line, memory_order_relaxed) ? (size_t)snprintf(line, sizeof line, "\r\033[K") : 0;
    if (atomic_load_explicit(&log_timestamps, memory_order_relaxed)) n += format_time(line + n, sizeof line - n);
    n += (size_t)snprintf(line + n, sizeof line - n, "%s %s: ", who ? who : "vigil", level_names[level]);
    if (n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        n += (size_t)vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
    }
    if (n >= sizeof line - 1) n = sizeof line - 2;
    line[n++] = '\n';
    fwrite(line, 1, n, stderr); /* one call: stdio locks the stream, so lines never interleave */
}

int vg_log_limit_pass(vg_log_limit *limit, long long now_ms, long long every_ms, long *held) {
    if (limit->said_once && now_ms - limit->said_ms < every_ms) {
        limit->held++;
        return 0;
    }
    *held = limit->held;
    limit->held = 0;
    limit->said_ms = now_ms;
    limit->said_once = 1;
    return 1;
}

const char *vg_mask_url(const char *url, char *out, size_t outlen) {
    if (!url) url = "";
    const char *scheme = strstr(url, "://");
    const char *auth = scheme ? scheme + 3 : url;
    const char *host_end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < host_end; p++)
        if (*p == '@') at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) {
        snprintf(out, outlen, "%s", url);
        return out;
    }
    snprintf(out, outlen, "%.*s:***%s", (int)(colon - url), url, at);
    return out;
}

/* Copies text with the password of every URL in it replaced by "***". */
const char *vg_mask_urls_in(const char *text, char *out, size_t outlen) {
    size_t n = 0;
    if (!outlen) return out;
    for (const char *p = text ? text : ""; *p && n + 1 < outlen;) {
        const char *auth = strncmp(p, "://", 3) == 0 ? p + 3 : NULL;
        const char *end = auth ? auth + strcspn(auth, "/?# \t\"'<>") : NULL;
        const char *at = NULL;
        for (const char *q = auth; q && q < end; q++)
            if (*q == '@') at = q;
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (!colon) {
            out[n++] = *p++;
            continue;
        }
        n += (size_t)snprintf(out + n, outlen - n, "%.*s:***", (int)(colon - p), p);
        if (n >= outlen) n = outlen - 1;
        p = at;
    }
    out[n] = 0;
    return out;
}
