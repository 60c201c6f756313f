/* vg_config.h — the configuration file of `vigil run`: parsed and validated as a whole, every problem
 * reported with its JSON path ("cameras[3].url: missing"), so a bad config is refused before any camera
 * starts. The shape and every field are described in docs/config.md. */
#ifndef VG_CONFIG_H
#define VG_CONFIG_H
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "vg_log.h"
#include "vg_settings.h"
#include "vg_snowflake.h"
#include "vg_transport.h"

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

/* The settings of node, central and output, each declared once: X(section, key, KIND, vg_config member, min,
 * max, default, APPLY, "docs table", "type", "default text", "doc"). From the table follow each section's
 * allowed keys, the built-in defaults, the range checks of INT rows, what a reload reports (vg_config_fixed_changes)
 * and the tables of docs/config.md (vg_config_print_table; checked by tests/unit/test_settings.c, rewritten by
 * `build/tests/test_settings --update-docs`).
 * KIND: INT (an int member, min..max, checked by the table; default VG_CONFIG_REQUIRED: the key must be given),
 * DURATION (ms in a long long, min..max), TEXT (a string or NULL), CHOICE (output.versions, held as an int),
 * LEVEL (node.log_level), SCRIPTS (node.stream_scripts as a whole). "type" and "default text" are generated
 * for INT and DURATION rows (give ""). APPLY: RESTART (read only at start: a reload that changes it says it
 * needs a restart) or RELOAD (a reload applies it).
 * Special checks, in vg_config.c beside the table: node.log_level (a level name), node.metrics and node.listen
 * (HOST:PORT, not the same port), the api_key/api_key_file pairs of central and node (exclusive; an inline key
 * has no control characters), central.url and node.config_external (http:// or https://; the key once),
 * node.keep_episodes_for (a duration in the row's range), output.file ("-" or a path), output.versions (all or
 * final), node.stream_scripts; spool_dir, previews_dir and api_key_file paths are resolved against the config
 * file's directory. */
#define VG_CONFIG_REQUIRED (-1LL)
#define VG_CONFIG_HOST_SETTINGS(X)                                                                                \
    X("node", "machine_id", INT, machine_id, 0, VG_SNOWFLAKE_MAX_MACHINE, VG_CONFIG_REQUIRED, RESTART, "node",    \
      "", "", "the 10 machine bits of every episode id. **Unique per host** writing to the same Central (see "    \
      "[operations](operations.md#many-hosts))")                                                                 \
    X("node", "spool_dir", TEXT, spool_dir, 0, 0, 0, RESTART, "node", "path", "none",                            \
      "where versions wait for Central (one fsync'd file each) and, with `listen`, the episodes Central pulls. "  \
      "Required with `central` or `listen`; created if missing. One vigil process at a time: a second one on "    \
      "the same directory is refused (`... is in use by another vigil process`)")                                \
    X("node", "log_level", LEVEL, log_level, 0, 0, 0, RELOAD, "node",                                           \
      "`\"error\"`, `\"warn\"`, `\"info\"`, `\"debug\"`", "`\"info\"`",                                          \
      "`--log-level` on the command line wins over it; `debug` adds FFmpeg's own lines")                         \
    X("node", "metrics", TEXT, metrics_listen, 0, 0, 0, RESTART, "node", "`\"HOST:PORT\"`", "none (no endpoint)", \
      "Prometheus text on `GET /metrics` and `GET /healthz` ([the metrics](operations.md#metrics)). HOST is an "  \
      "IPv4 address, `*` (all) or `localhost`; port 0 takes any free port, logged at start; its own [HTTP "       \
      "limits](operations.md#http-limits)")                                                                      \
    X("central", "url", TEXT, central_url, 0, 0, 0, RESTART, "central", "`http://` or `https://` URL", "required", \
      "Central's base URL")                                                                                      \
    X("central", "api_key", TEXT, central_api_key, 0, 0, 0, RESTART, "central", "string", "—",                   \
      "the key itself. Give **exactly one** of `api_key` and `api_key_file`")                                    \
    X("central", "api_key_file", TEXT, central_api_key_file, 0, 0, 0, RESTART, "central", "path", "—",          \
      "a [key file](#key-files), such as Central's own `central.conf` (the key is its `API_KEY=` line)")         \
    X("central", "min_update_interval_ms", INT, central_min_update_interval_ms, 0, 3600000,                      \
      VG_CENTRAL_MIN_UPDATE_INTERVAL_MS, RESTART, "central", "", "",                                             \
      "at most one intermediate update per episode this often, on stream time (opens and closes go at once); 0 " \
      "sends every update")                                                                                      \
    X("central", "flush_timeout_ms", INT, central_flush_timeout_ms, 0, 600000, VG_CENTRAL_FLUSH_TIMEOUT_MS,      \
      RESTART, "central", "", "",                                                                                \
      "at SIGTERM/SIGINT, how long vigil waits for Central to take what is queued before it exits; the rest "     \
      "stays in the spool. 0 does not wait")                                                                     \
    X("output", "file", TEXT, output_file, 0, 0, 0, RESTART, "output", "path, or `\"-\"` for stdout", "none",    \
      "every version vigil emits, one JSON body per line (the body Central would get), appended to")             \
    X("output", "versions", CHOICE, output_final_only, 0, 1, 0, RESTART, "output", "`\"all\"` or `\"final\"`",   \
      "`\"all\"`",                                                                                               \
      "`\"final\"`: only each episode's closing version (its whole record) goes to the file; a 23-minute "        \
      "clip's 158 MB of versions becomes a line per episode. `vigil replay --versions`")                         \
    X("output", "previews_dir", TEXT, output_previews_dir, 0, 0, 0, RESTART, "output",                           \
      "path (a writable directory, made if missing)", "none",                                                    \
      "previews as JPEG files there (`ID-preview-TS.jpg`, `ID-frame-TS.jpg`, each written once), the line "       \
      "naming them (`preview_file`, `frame_preview_file`) instead of carrying base64. `vigil replay --previews`") \
    X("node", "listen", TEXT, node_listen, 0, 0, 0, RESTART, "analytics-node", "`\"HOST:PORT\"`", "none",        \
      "serves the node API (`/vision/api/v3/episodes` with long polls, `/streams`, `/monitoring/liveness`) and "  \
      "its [live page](operations.md#the-nodes-live-page) at `/`. Needs `spool_dir`: every version is also kept " \
      "in `{spool_dir}/episodes`. Not the same port as `metrics`. Connection limits and timeouts: [HTTP "        \
      "limits](operations.md#http-limits)")                                                                      \
    X("node", "api_key", TEXT, node_api_key, 0, 0, 0, RESTART, "analytics-node", "string",                       \
      "none (no key checked)",                                                                                   \
      "the Bearer key Central must send. At most one of `api_key` and `api_key_file`; needs `listen`")           \
    X("node", "api_key_file", TEXT, node_api_key_file, 0, 0, 0, RESTART, "analytics-node", "path", "none",       \
      "a [key file](#key-files): the key alone on its first line, or an `API_KEY=` line")                        \
    X("node", "keep_episodes_for", DURATION, node_keep_episodes_ms, 60000, 366LL * 86400000, 24LL * 3600000,    \
      RESTART, "analytics-node", "", "",                                                                         \
      "how long episodes stay pullable (1 minute..366 days; more is `out of range (max 366 days)`)")             \
    X("node", "config_external", TEXT, config_external, 0, 0, 0, RESTART, "analytics-node",                     \
      "`http://` or `https://` URL", "none",                                                                     \
      "Central's stream list: `GET {url}/streams` gives "                                                        \
      "`{\"streams\":[{\"name\":\"cam2\",\"inputs\":[{\"url\":\"rtsp://...\"}]}]}` (a plain `url` field also "     \
      "works). New names start a camera, missing ones stop (`payload.close_reason` `\"removed\"`), a changed "    \
      "input restarts that camera. The URL's user part may carry Central's key")                                 \
    X("node", "config_external_key", TEXT, config_external_key, 0, 0, 0, RESTART, "analytics-node", "string",    \
      "none", "Central's key, when the URL does not carry it (not both)")                                        \
    X("node", "config_external_interval_ms", INT, config_external_interval_ms, 500, 3600000, 5000, RESTART,      \
      "analytics-node", "", "", "how often the list is fetched; a failed fetch keeps the current cameras")        \
    X("node", "stream_scripts", SCRIPTS, stream_scripts, 0, 0, 0, RESTART, "analytics-node",                     \
      "array of `{\"match\", \"script\", \"params\"}`", "required with `config_external`",                       \
      "the rule of a handed-out stream: the first entry whose `match` (a shell glob on the name, `\"*\"` when "   \
      "absent) fits wins; an entry after a catch-all is refused as never used")

/* The docs/config.md table of one "docs table" of VG_CONFIG_HOST_SETTINGS ("node", "analytics-node", "central",
 * "output"): its header and one row per setting, in the table's order. */
void vg_config_print_table(FILE *out, const char *table);

/* The RESTART rows of VG_CONFIG_HOST_SETTINGS that differ between the running config and a newly loaded one:
 * one line per JSON path into changed ("central.url: changed"), in the table's order. Returns how many. */
int vg_config_fixed_changes(const vg_config *running, const vg_config *loaded, vg_config_errors *changed);

#endif
