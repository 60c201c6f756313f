/* vg_config.h — the configuration file of `vigil run`: parsed and validated as a whole, every problem
 * reported with its JSON path ("cameras[3].url: missing"), so a bad config is refused before any camera
 * starts. The shape and every field are described in docs/config.md. */
#ifndef VG_CONFIG_H
#define VG_CONFIG_H
#include <stddef.h>

#include <cjson/cJSON.h>

#include "vg_log.h"
#include "vg_settings.h"

typedef struct vg_config_camera {
    char *media;
    char *url;                /* rtsp:// or rtsps:// (may hold a password: log only through vg_mask_url) */
    char *script;             /* resolved against the config file's directory */
    char *params_json;        /* vigil.params as JSON text ("{}" when absent) */
    char *zones_json;         /* vigil.zones: {"name": [[x, y], ...]} in frame fractions ("{}" when absent) */
    int jit;                  /* compile the rule's Lua: faster loops, but the time budget cannot cut them */
    int unsafe;               /* no sandbox: ffi, io, os and the real require */
    char *overlay;            /* draw what the rule saw into this directory of JPEGs or video (vg_overlay.h),
                                 resolved against the config file's directory; NULL = none */
    char *preview_url;        /* rtsp:// or rtsps:// stream previews are cut from (the camera's main stream; url is
                                 then its sub-stream); NULL = previews from url (may hold a password, like url) */
    /* every row of VG_CAMERA_SETTINGS (vg_settings.h): the camera's value, else defaults.*, else the table's
     * default */
    vg_camera_settings settings;
} vg_config_camera;

/* One node.stream_scripts entry: the rule a stream handed out by Central runs. */
typedef struct vg_stream_script {
    char *match;              /* fnmatch(3) glob on the stream name; "*" (also when absent) = every stream */
    char *script;             /* the rule's path, resolved */
    char *params_json;        /* vigil.params ("{}" when absent) */
} vg_stream_script;

typedef struct vg_config {
    char *dir;                /* the config file's directory */
    int machine_id;
    char *spool_dir;          /* NULL when not given; resolved like every path */
    int has_log_level;
    vg_log_level log_level;
    char *metrics_listen;     /* node.metrics "HOST:PORT", NULL when not given */
    char *central_url;        /* NULL without a "central" block */
    char *central_api_key;    /* inline key; exactly one of it and central_api_key_file is set with central */
    char *central_api_key_file;
    int central_min_update_interval_ms; /* 0 = no rate limit (vg_central_options: the same) */
    int central_flush_timeout_ms;       /* how long a stop waits for Central to take what is queued */
    char *output_file;        /* NULL when not given */
    int output_final_only;    /* output.versions "final": each episode's closing version only */
    char *output_previews_dir; /* output.previews_dir: previews as JPEG files there (NULL: inline) */
    /* analytics-node mode (docs/config.md, "Analytics node") */
    char *node_listen;        /* node.listen "HOST:PORT": the node API is served; NULL when not given */
    char *node_api_key;       /* inline; at most one of it and node_api_key_file */
    char *node_api_key_file;
    long long node_keep_episodes_ms;  /* node.keep_episodes_for, 24 h when not given */
    char *config_external;    /* node.config_external URL (its user part may be the key: never logged as is) */
    char *config_external_key;
    int config_external_interval_ms;
    int nstream_scripts;
    vg_stream_script *stream_scripts;
    vg_config_camera defaults; /* what "defaults" gives every camera, Central's too (media, url, script unset) */
    int ncameras;             /* 0 only with config_external */
    vg_config_camera *cameras;
} vg_config;

typedef struct vg_config_errors {
    int count;
    char **lines;             /* "<json path>: <problem>", in document order */
} vg_config_errors;

/* Reads (vg_file_read: a regular file of at most VG_FILE_CONFIG_MAX) and validates the file. NULL when it has
 * any problem, with every one of them in errors. */
vg_config *vg_config_load(const char *path, vg_config_errors *errors);
/* The same for JSON text of len bytes (NULs in it are refused, none is needed after it); relative paths
 * resolve against dir. */
vg_config *vg_config_parse_text(const char *text, size_t len, const char *dir, vg_config_errors *errors);
/* vg_config_parse_text of a NUL-terminated text. */
vg_config *vg_config_parse(const char *text, const char *dir, vg_config_errors *errors);

/* A rule's params (--params, and what the config gives): a JSON object whose objects, at any depth, give each
 * key once, checked like the config file (vg_json_parse). 0, or -1 with a one-line reason in err. */
int vg_config_check_params(const char *text, size_t len, char *err, size_t errlen);

/* ---------- JSON text from outside (the config, params, spool and store bodies, Central's stream list) ---------- */

/* What cJSON would take wrongly or refuse without saying why: a NUL byte, bytes that are not UTF-8, a \u0000
 * escape (cJSON cuts the string there), a \uD800..\uDFFF escape without its other half, and nesting deeper
 * than CJSON_NESTING_LIMIT (1000). 0, or -1 with err ("nested deeper than 1000 levels near line 1, column
 * 1001"). */
int vg_json_check_text(const char *text, size_t len, char *err, size_t errlen);
/* vg_json_check_text, then cJSON (the whole text is one value, nothing after it). NULL with err: the check's
 * reason, or "not valid JSON near line L, column C". */
cJSON *vg_json_parse(const char *text, size_t len, char *err, size_t errlen);
void vg_config_free(vg_config *config);
void vg_config_errors_free(vg_config_errors *errors);

/* A camera's settings owned separately from its config (deep copy), freed with vg_config_camera_clear. */
void vg_config_camera_copy(vg_config_camera *dst, const vg_config_camera *src);
void vg_config_camera_clear(vg_config_camera *cam);
/* 1 when every setting of the two is the same (url, script, params, zones, modes, ...). */
int vg_config_camera_same(const vg_config_camera *a, const vg_config_camera *b);

/* The settings read only at start (node.*, central.*, output.*; node.log_level is not one: a reload applies
 * it): X(JSON path, KIND, vg_config member). KIND: TEXT (a string or NULL), INT (a number), SCRIPTS
 * (node.stream_scripts as a whole). A setting added there is one that a reload reports, and test_config
 * checks it. */
#define VG_CONFIG_FIXED_SETTINGS(X)                                                                                \
    X("node.machine_id", INT, machine_id)                                                                          \
    X("node.spool_dir", TEXT, spool_dir)                                                                           \
    X("node.metrics", TEXT, metrics_listen)                                                                        \
    X("central.url", TEXT, central_url)                                                                            \
    X("central.api_key", TEXT, central_api_key)                                                                    \
    X("central.api_key_file", TEXT, central_api_key_file)                                                          \
    X("central.min_update_interval_ms", INT, central_min_update_interval_ms)                                       \
    X("central.flush_timeout_ms", INT, central_flush_timeout_ms)                                                   \
    X("output.file", TEXT, output_file)                                                                            \
    X("output.versions", INT, output_final_only)                                                                   \
    X("output.previews_dir", TEXT, output_previews_dir)                                                            \
    X("node.listen", TEXT, node_listen)                                                                            \
    X("node.api_key", TEXT, node_api_key)                                                                          \
    X("node.api_key_file", TEXT, node_api_key_file)                                                                \
    X("node.keep_episodes_for", INT, node_keep_episodes_ms)                                                        \
    X("node.config_external", TEXT, config_external)                                                               \
    X("node.config_external_key", TEXT, config_external_key)                                                       \
    X("node.config_external_interval_ms", INT, config_external_interval_ms)                                        \
    X("node.stream_scripts", SCRIPTS, stream_scripts)

/* The VG_CONFIG_FIXED_SETTINGS that differ between the running config and a newly loaded one: one line per
 * JSON path into changed ("central.url: changed"), in the table's order. Returns how many. */
int vg_config_fixed_changes(const vg_config *running, const vg_config *loaded, vg_config_errors *changed);

#endif
