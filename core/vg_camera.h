/* vg_camera.h — one camera's data path: ingest -> decode -> clock -> analysis frame -> script -> episodes
 * -> sink. Replay runs it over a file as fast as it decodes; a live camera runs it on its own thread,
 * reconnecting with backoff whenever the stream fails, with its Lua state and open episodes kept. */
#ifndef VG_CAMERA_H
#define VG_CAMERA_H
#include <stddef.h>
#include <stdint.h>

#include "vg_clock.h" /* vg_clock_source */
#include "vg_decode.h"
#include "vg_frame.h"
#include "vg_preview_source.h"
#include "vg_script.h"
#include "vg_settings.h"
#include "vg_sink.h"
#include "vg_snowflake.h"

/* The strings are borrowed (media excepted): they must outlive the camera. */
typedef struct vg_camera_config {
    const char *media;        /* stream name in episodes and log lines */
    const char *url;          /* file path or rtsp:// URL */
    const char *script;       /* path of the rule */
    const char *params_json;  /* vigil.params */
    const char *zones_json;   /* vigil.zones (NULL = none) */
    int unsafe, jit;
    int realtime;             /* replay: pace frames to their timestamps, as a live camera would */
    int64_t start_ms;         /* replay: time of the first frame; INT64_MIN = creation_time, else now */
    const char *overlay;      /* draw what the rule saw on every analysed frame into this video or directory
                                 (vg_overlay.h); NULL = none */
    const char *preview_url;  /* live: the stream previews are cut from (vg_preview_source.h), matched to the
                                 analysed frame by RTCP time; NULL = previews from url's own pictures */
    vg_camera_settings settings; /* analysis_width, fps, decode, budget_ms, transport, ... (vg_settings.h: what
                                 each means); start from vg_camera_settings_default() */
} vg_camera_config;

typedef struct vg_camera_stats {
    long packets;             /* frames received (video packets read) */
    long frames_decoded, frames_analysed, frames_skipped; /* skipped: decoded, but over the fps limit */
    long frames_damaged;      /* decoded with errors, or referring to such a frame: kept from the rule */
    long frames_untimed;      /* decoded, but the stream gave no time for them (no pts): kept from the rule */
    long episodes_opened, versions_emitted, sink_errors;
    long versions_unrendered; /* committed, but could not be rendered as JSON (out of memory): not emitted */
    int64_t first_ts, last_ts; /* unix ms of the first and last frame the rule saw (0 before any) */
    int64_t duration_ms;       /* replay: the file's duration (-1 unknown); live: 0 */
    int episodes_open;        /* open now */
    long attempts;            /* live: connection attempts */
    long reconnects;          /* live: times it had to reconnect (a stream lost or an attempt failed) */
    long connects, disconnects; /* live: sessions that came up, and that were lost */
    int connected;            /* live: a session is up now */
    vg_clock_source clock;    /* where frame times come from now */
    double decode_seconds;    /* time spent in the decoder */
    long previews_main;       /* previews cut from preview_url's picture at the frame's time */
    long previews_fallback;   /* previews cut from the analysed frame although preview_url is set */
    vg_preview_source_stats preview; /* preview_url's reader and decoder (zero without one) */
    vg_script_stats script;   /* callbacks, errors, budget cuts, time in the rule */
    double seconds;
} vg_camera_stats;

typedef struct vg_camera vg_camera;

vg_camera *vg_camera_new(const vg_camera_config *config, vg_snowflake *ids, vg_sink *sink, char *err,
                         size_t errlen);
void vg_camera_free(vg_camera *cam);

/* Replays the file in config->url through the script; open episodes are closed at the last frame's time
 * (payload.close_reason "end_of_stream"). Returns 0, or -1 with err. */
int vg_camera_replay(vg_camera *cam, char *err, size_t errlen);
/* Thread-safe: a copy of the counters as the camera's thread last published them (after every packet). */
void vg_camera_get_stats(vg_camera *cam, vg_camera_stats *out);

/* Live: runs the camera on its own thread until vg_camera_stop. The script hears on_stream("up") when a
 * connection is made and on_stream("down") when it is lost; on stop, on_stop runs and open episodes are
 * closed at the last frame's time with the stop's close reason. -1 with err if no thread. */
int vg_camera_start(vg_camera *cam, char *err, size_t errlen);
/* Asks the thread to stop (interrupting a read or a backoff wait) and returns at once. Open episodes close
 * with payload.close_reason = close_reason (a string that outlives the camera, e.g. "shutdown" for a
 * stopping process, "timeout" for a camera removed from the config). */
void vg_camera_stop(vg_camera *cam, const char *close_reason);
/* Waits for a stopped camera's thread to finish. */
void vg_camera_join(vg_camera *cam);
/* Finishes the overlay file, if any (said in the log with its frame count); also done by vg_camera_free. */
void vg_camera_close_overlay(vg_camera *cam);

#endif
