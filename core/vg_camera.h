/* vg_camera.h — one camera's data path: ingest -> decode -> clock -> analysis frame -> script -> episodes
 * -> sink. Replay runs it over a file as fast as it decodes. */
#ifndef VG_CAMERA_H
#define VG_CAMERA_H
#include <stddef.h>
#include <stdint.h>

#include "vg_decode.h"
#include "vg_sink.h"
#include "vg_snowflake.h"

typedef struct vg_camera_config {
    const char *media;        /* stream name in episodes and log lines */
    const char *url;          /* file path or rtsp:// URL */
    const char *script;       /* path of the rule */
    const char *params_json;  /* vigil.params */
    int analysis_width;       /* 0 = 320 */
    double budget_ms;         /* per callback, 0 = 50 */
    int unsafe, jit;
    int watch;                /* hot-reload the rule when a .lua file beside it changes */
    int realtime;             /* replay: pace frames to their timestamps, as a live camera would */
    vg_decoder_options decode;
    int64_t start_ms;         /* replay: time of the first frame; INT64_MIN = creation_time, else now */
} vg_camera_config;

typedef struct vg_camera_stats {
    long packets, frames_decoded, frames_analysed, episodes_opened, versions_emitted, sink_errors;
    double seconds;
} vg_camera_stats;

typedef struct vg_camera vg_camera;

vg_camera *vg_camera_new(const vg_camera_config *config, vg_snowflake *ids, vg_sink *sink, char *err,
                         size_t errlen);
void vg_camera_free(vg_camera *cam);

/* Replays the file in config->url through the script; open episodes are closed at the last frame's time
 * (payload.close_reason "end_of_stream"). Returns 0, or -1 with err. */
int vg_camera_replay(vg_camera *cam, char *err, size_t errlen);
void vg_camera_get_stats(const vg_camera *cam, vg_camera_stats *out);

#endif
