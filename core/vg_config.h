/* vg_config.h — the configuration file of `vigil run`: parsed and validated as a whole, every problem
 * reported with its JSON path ("cameras[3].url: missing"), so a bad config is refused before any camera
 * starts. The shape and every field are described in docs/config.md. */
#ifndef VG_CONFIG_H
#define VG_CONFIG_H
#include "vg_log.h"

typedef struct vg_config_camera {
    char *media;
    char *url;                /* rtsp:// or rtsps:// (may hold a password: log only through vg_mask_url) */
    char *script;             /* resolved against the config file's directory */
    char *params_json;        /* vigil.params as JSON text ("{}" when absent) */
    char *transport;          /* "tcp" or "udp" */
    int analysis_width;       /* the rest: the camera's value, else defaults.*, else the built-in default */
    double budget_ms;
    int stall_timeout_ms;
    int rtcp_wait_ms;
} vg_config_camera;

typedef struct vg_config {
    char *dir;                /* the config file's directory */
    int machine_id;
    char *spool_dir;          /* NULL when not given; resolved like every path */
    int has_log_level;
    vg_log_level log_level;
    char *central_url;        /* NULL without a "central" block */
    char *central_api_key_file;
    char *output_file;        /* NULL when not given */
    int ncameras;
    vg_config_camera *cameras;
} vg_config;

typedef struct vg_config_errors {
    int count;
    char **lines;             /* "<json path>: <problem>", in document order */
} vg_config_errors;

/* Reads and validates the file. NULL when it has any problem, with every one of them in errors. */
vg_config *vg_config_load(const char *path, vg_config_errors *errors);
/* The same for JSON text; relative paths resolve against dir. */
vg_config *vg_config_parse(const char *text, const char *dir, vg_config_errors *errors);
void vg_config_free(vg_config *config);
void vg_config_errors_free(vg_config_errors *errors);

#endif
