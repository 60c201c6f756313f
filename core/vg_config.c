/* vg_config.c — reading `vigil run`'s JSON config: every key checked for type, range and spelling, every
 * problem collected with its JSON path, defaults applied, relative paths resolved against the file's
 * directory. */
#include "vg_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "vg_file.h"
#include "vg_settings.h"
#include "vg_snowflake.h"
#include "vg_transport.h"

#define PATH_LEN 256

static const char *const TOP_KEYS[] = {"node", "central", "output", "defaults", "cameras", NULL};
static const char *const STREAM_SCRIPT_KEYS[] = {"match", "script", "params", NULL};
/* The settings "defaults" gives every camera and a camera may override: the rows of VG_CAMERA_SETTINGS. */
/* Per camera only: "jit" and "unsafe" lift the rule's budget or sandbox, a choice made for one rule at a time. */
static const char *const CAMERA_KEYS[] = {"media", "url", "script", "params", "zones", "jit", "unsafe", "overlay",
                                          "preview_url",
                                          NULL};

/* ---------- node, central and output: the rows of VG_CONFIG_HOST_SETTINGS as data ---------- */

typedef enum { HOST_INT, HOST_DURATION, HOST_TEXT, HOST_CHOICE, HOST_LEVEL, HOST_SCRIPTS } host_kind;
enum { APPLY_RELOAD, APPLY_RESTART };

typedef struct host_setting {
    const char *section, *key;
    host_kind kind;
    size_t offset;             /* of the member in vg_config */
    long long min, max, def;   /* INT and DURATION */
    int apply;
    const char *table, *type, *default_text, *doc; /* docs/config.md */
} host_setting;

#define HOST_ROW(section, key, kind, member, min, max, def, apply, table, type, default_text, doc)                 \
    {section, key, HOST_##kind, offsetof(vg_config, member), min, max, def, APPLY_##apply, table, type,             \
     default_text, doc},

static const host_setting HOST_SETTINGS[] = {VG_CONFIG_HOST_SETTINGS(HOST_ROW)};

/* The rows whose member the table writes through its offset hold the type it writes. */
#define MEMBER_IS(member, type) _Generic(((vg_config *)0)->member, type: 1, default: 0)
#define HOST_MEMBER_CHECK_INT(member) _Static_assert(MEMBER_IS(member, int), #member " is an int");
#define HOST_MEMBER_CHECK_CHOICE HOST_MEMBER_CHECK_INT
#define HOST_MEMBER_CHECK_DURATION(member) _Static_assert(MEMBER_IS(member, long long), #member " is a long long");
#define HOST_MEMBER_CHECK_TEXT(member)
#define HOST_MEMBER_CHECK_LEVEL(member)
#define HOST_MEMBER_CHECK_SCRIPTS(member)
#define HOST_MEMBER_CHECK(section, key, kind, member, ...) HOST_MEMBER_CHECK_##kind(member)
VG_CONFIG_HOST_SETTINGS(HOST_MEMBER_CHECK)
#define HOST_SETTINGS_END (HOST_SETTINGS + sizeof HOST_SETTINGS / sizeof *HOST_SETTINGS)

static const host_setting *host_setting_find(const char *section, const char *key) {
    for (const host_setting *row = HOST_SETTINGS; row < HOST_SETTINGS_END; row++)
        if (strcmp(row->section, section) == 0 && strcmp(row->key, key) == 0) return row;
    return NULL;
}

static int *host_int(vg_config *c, const host_setting *row) { return (int *)((char *)c + row->offset); }

/* The table's defaults: INT rows that have one, DURATION and CHOICE rows. */
static void apply_host_defaults(vg_config *c) {
    for (const host_setting *row = HOST_SETTINGS; row < HOST_SETTINGS_END; row++) {
        if ((row->kind == HOST_INT && row->def != VG_CONFIG_REQUIRED) || row->kind == HOST_CHOICE)
            *host_int(c, row) = (int)row->def;
        else if (row->kind == HOST_DURATION) *(long long *)((char *)c + row->offset) = row->def;
    }
}

/* ---------- problems ---------- */

static void problem(vg_config_errors *e, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void problem(vg_config_errors *e, const char *path, const char *fmt, ...) {
    char text[512];
    int n = *path ? snprintf(text, sizeof text, "%s: ", path) : 0; /* "" = the document as a whole */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
    va_end(ap);
    e->lines = realloc(e->lines, sizeof *e->lines * (size_t)(e->count + 1));
    e->lines[e->count++] = strdup(text);
}

void vg_config_errors_free(vg_config_errors *e) {
    for (int i = 0; i < e->count; i++) free(e->lines[i]);
    free(e->lines);
    e->lines = NULL;
    e->count = 0;
}

static const char *join(char *out, const char *path, const char *key) {
    if (snprintf(out, PATH_LEN, "%s%s%s", path, *path ? "." : "", key) >= PATH_LEN) strcpy(out + PATH_LEN - 4, "...");
    return out;
}

static const char *type_name(const cJSON *v) {
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    return "null";
}

/* ---------- typed fields: absent leaves *out alone; a wrong one is a problem ---------- */

static int allowed(const char *key, const char *const *keys) {
    for (; *keys; keys++)
        if (strcmp(key, *keys) == 0) return 1;
    return 0;
}

/* Unknown keys are problems too: a typo must not silently fall back to a default. The keys allowed are those
 * of keys (NULL: none) and, with settings, the camera settings' (vg_settings.h). A key given twice is found in
 * the whole document (check_unique_keys). */
static void check_keys(vg_config_errors *e, const cJSON *obj, const char *path, const char *const *keys,
                       int settings) {
    char at[PATH_LEN];
    for (const cJSON *item = obj->child; item; item = item->next)
        if (!(keys && allowed(item->string, keys)) && !(settings && vg_setting_find(item->string)))
            problem(e, join(at, path, item->string), "unknown key");
}

/* The keys of a section (node, central, output) are its rows of VG_CONFIG_HOST_SETTINGS. */
static void check_section_keys(vg_config_errors *e, const cJSON *obj, const char *section) {
    char at[PATH_LEN];
    for (const cJSON *item = obj->child; item; item = item->next)
        if (!host_setting_find(section, item->string)) problem(e, join(at, section, item->string), "unknown key");
}

static int compare_keys(const void *a, const void *b) {
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* Every object at any depth gives each key once (the config, and params wherever they come from): a
 * repeated key is one problem, "path.key: given twice". Sorted, so a hostile object of many keys costs
 * n log n, not n^2. The depth is bounded by vg_json_check_text. */
static void check_unique_keys(vg_config_errors *e, const cJSON *node, const char *path) {
    char at[PATH_LEN];
    int n = 0;
    for (const cJSON *item = node->child; item; item = item->next) {
        if (cJSON_IsObject(node)) join(at, path, item->string);
        else snprintf(at, sizeof at, "%s[%d]", path, n);
        n++;
        if (item->child) check_unique_keys(e, item, at);
    }
    if (!cJSON_IsObject(node) || n < 2) return;
    const cJSON **keys = malloc(sizeof *keys * (size_t)n);
    n = 0;
    for (const cJSON *item = node->child; item; item = item->next) keys[n++] = item;
    qsort(keys, (size_t)n, sizeof *keys, compare_keys);
    for (int i = 1; i < n; i++) /* one problem per repeated key, however many times it comes */
        if (!strcmp(keys[i]->string, keys[i - 1]->string) && (i < 2 || strcmp(keys[i]->string, keys[i - 2]->string)))
            problem(e, join(at, path, keys[i]->string), "given twice");
    free(keys);
}

static const cJSON *object_at(vg_config_errors *e, const cJSON *parent, const char *path, const char *key,
                              int required) {
    char at[PATH_LEN];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (!v) {
        if (required) problem(e, join(at, path, key), "missing");
        return NULL;
    }
    if (!cJSON_IsObject(v)) {
        problem(e, join(at, path, key), "must be an object, not %s", type_name(v));
        return NULL;
    }
    return v;
}

static void get_int(vg_config_errors *e, const cJSON *obj, const char *path, const char *key, long min, long max,
                    int required, int *out) {
    char at[PATH_LEN];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (required) problem(e, join(at, path, key), "missing");
        return;
    }
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v)) problem(e, join(at, path, key), "must be an integer, not %s", type_name(v));
    else if (d != floor(d)) problem(e, join(at, path, key), "%g is not an integer", d);
    else if (d < (double)min || d > (double)max) problem(e, join(at, path, key), "%.0f is not %ld..%ld", d, min, max);
    else *out = (int)d;
}

static void get_number(vg_config_errors *e, const cJSON *obj, const char *path, const char *key, double min,
                       double max, double *out) {
    char at[PATH_LEN];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return;
    if (!cJSON_IsNumber(v)) problem(e, join(at, path, key), "must be a number, not %s", type_name(v));
    else if (v->valuedouble < min || v->valuedouble > max)
        problem(e, join(at, path, key), "%g is not %g..%g", v->valuedouble, min, max);
    else *out = v->valuedouble;
}

static void get_bool(vg_config_errors *e, const cJSON *obj, const char *path, const char *key, int *out) {
    char at[PATH_LEN];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return;
    if (!cJSON_IsBool(v)) problem(e, join(at, path, key), "must be true or false, not %s", type_name(v));
    else *out = cJSON_IsTrue(v);
}

static const char *get_string(vg_config_errors *e, const cJSON *obj, const char *path, const char *key,
                              int required) {
    char at[PATH_LEN];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (required) problem(e, join(at, path, key), "missing");
        return NULL;
    }
    if (!cJSON_IsString(v)) {
        problem(e, join(at, path, key), "must be a string, not %s", type_name(v));
        return NULL;
    }
    if (!v->valuestring[0]) {
        problem(e, join(at, path, key), "empty");
        return NULL;
    }
    return v->valuestring;
}

static char *resolve(const char *dir, const char *path) {
    if (!path) return NULL;
    if (path[0] == '/' || !dir || !dir[0]) return strdup(path);
    size_t n = strlen(dir) + strlen(path) + 2;
    char *out = malloc(n);
    snprintf(out, n, "%s/%s", dir, path);
    return out;
}

static int has_scheme(const char *url, const char *const *schemes) {
    for (; *schemes; schemes++)
        if (strncmp(url, *schemes, strlen(*schemes)) == 0 && url[strlen(*schemes)]) return 1;
    return 0;
}

/* "HOST:PORT" as vg_http_start takes it: an IPv4 address, "*", "localhost" or nothing, and a port. */
static int is_listen_address(const char *text) {
    const char *colon = strrchr(text, ':');
    if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5 ||
        atol(colon + 1) > 65535)
        return 0;
    char host[64];
    if (colon - text >= (long)sizeof host) return 0;
    snprintf(host, sizeof host, "%.*s", (int)(colon - text), text);
    struct in_addr addr;
    return !host[0] || strcmp(host, "*") == 0 || strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, &addr) == 1;
}

/* An inline secret: printable, so it fits an HTTP header. Never echoed in a problem line. */
static int is_clean_secret(const char *text) {
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

/* ---------- sections ---------- */

/* The INT rows of a section, each checked for its range (and given, when it has no default). */
static void parse_int_settings(vg_config_errors *e, const cJSON *obj, const char *section, vg_config *c) {
    for (const host_setting *row = HOST_SETTINGS; row < HOST_SETTINGS_END; row++)
        if (row->kind == HOST_INT && strcmp(row->section, section) == 0)
            get_int(e, obj, section, row->key, (long)row->min, (long)row->max, row->def == VG_CONFIG_REQUIRED,
                    host_int(c, row));
}

static void parse_node_mode(vg_config_errors *e, const cJSON *node, vg_config *c);

static void parse_node(vg_config_errors *e, const cJSON *root, vg_config *c) {
    const cJSON *node = object_at(e, root, "", "node", 1);
    if (!node) return;
    check_section_keys(e, node, "node");
    parse_int_settings(e, node, "node", c);
    c->spool_dir = resolve(c->dir, get_string(e, node, "node", "spool_dir", 0));
    const char *level = get_string(e, node, "node", "log_level", 0);
    if (level && vg_log_parse_level(level, &c->log_level) < 0)
        problem(e, "node.log_level", "\"%s\" is not error, warn, info or debug", level);
    else if (level) c->has_log_level = 1;
    const char *metrics = get_string(e, node, "node", "metrics", 0);
    if (metrics && !is_listen_address(metrics))
        problem(e, "node.metrics", "\"%s\" is not HOST:PORT (an IPv4 address, * or localhost, and a port 0..65535)",
                metrics);
    else if (metrics) c->metrics_listen = strdup(metrics);
    parse_node_mode(e, node, c);
}

/* Exactly one of api_key (inline) and api_key_file. */
static void parse_central_key(vg_config_errors *e, const cJSON *central, vg_config *c) {
    int inline_given = cJSON_GetObjectItemCaseSensitive(central, "api_key") != NULL;
    int file_given = cJSON_GetObjectItemCaseSensitive(central, "api_key_file") != NULL;
    if (inline_given && file_given) {
        problem(e, "central.api_key", "give either api_key or api_key_file, not both");
        return;
    }
    if (!inline_given) {
        if (!file_given) problem(e, "central.api_key_file", "missing (or an inline central.api_key)");
        else c->central_api_key_file = resolve(c->dir, get_string(e, central, "central", "api_key_file", 1));
        return;
    }
    const char *key = get_string(e, central, "central", "api_key", 1);
    if (key && !is_clean_secret(key)) problem(e, "central.api_key", "has control characters");
    else if (key) c->central_api_key = strdup(key);
}

static void parse_central(vg_config_errors *e, const cJSON *root, vg_config *c) {
    static const char *const http[] = {"http://", "https://", NULL};
    const cJSON *central = object_at(e, root, "", "central", 0);
    if (!central) return;
    check_section_keys(e, central, "central");
    const char *url = get_string(e, central, "central", "url", 1);
    if (url && !has_scheme(url, http)) problem(e, "central.url", "\"%s\" is not an http:// or https:// URL", url);
    else if (url) c->central_url = strdup(url);
    parse_central_key(e, central, c);
    parse_int_settings(e, central, "central", c);
    if (!c->spool_dir && cJSON_GetObjectItemCaseSensitive(root, "node"))
        problem(e, "node.spool_dir", "missing (Central needs a spool for versions not yet delivered)");
}

static void parse_output(vg_config_errors *e, const cJSON *root, vg_config *c) {
    const cJSON *output = object_at(e, root, "", "output", 0);
    if (!output) return;
    check_section_keys(e, output, "output");
    const char *file = get_string(e, output, "output", "file", 0);
    c->output_file = file && strcmp(file, "-") == 0 ? strdup(file) : resolve(c->dir, file);
    const char *versions = get_string(e, output, "output", "versions", 0);
    if (versions && strcmp(versions, "all") != 0 && strcmp(versions, "final") != 0)
        problem(e, "output.versions", "'%s' is not all or final", versions);
    c->output_final_only = versions && strcmp(versions, "final") == 0;
    c->output_previews_dir = resolve(c->dir, get_string(e, output, "output", "previews_dir", 0));
    if ((c->output_final_only || c->output_previews_dir) && !c->output_file)
        problem(e, "output", "versions and previews_dir shape output.file's lines: give file too");
}

/* One setting of a camera (a row of VG_CAMERA_SETTINGS) when obj gives it: checked for its kind and range. */
static void parse_setting(vg_config_errors *e, const cJSON *obj, const char *path, const vg_setting *row,
                          vg_camera_settings *s) {
    char at[PATH_LEN], choices[128];
    double d = vg_setting_get(s, row);
    int n = (int)d;
    if (row->choices) {
        const char *text = get_string(e, obj, path, row->key, 0);
        int i = text ? vg_setting_choice_index(row, text) : -1;
        if (text && i < 0)
            problem(e, join(at, path, row->key), "\"%s\" is not %s", text,
                    vg_setting_choices_text(row, choices, sizeof choices));
        if (i >= 0) vg_setting_put(s, row, i);
        return;
    }
    if (row->kind == VG_SETTING_NUMBER) get_number(e, obj, path, row->key, row->min, row->max, &d);
    else if (row->kind == VG_SETTING_BOOL) get_bool(e, obj, path, row->key, &n);
    else get_int(e, obj, path, row->key, (long)row->min, (long)row->max, 0, &n);
    vg_setting_put(s, row, row->kind == VG_SETTING_NUMBER ? d : n);
}

/* The settings a camera may override; the same checks in "defaults" and in each camera. */
static void parse_settings(vg_config_errors *e, const cJSON *obj, const char *path, vg_camera_settings *s) {
    for (int i = 0; i < vg_settings_count; i++) parse_setting(e, obj, path, &vg_settings[i], s);
}

/* ---------- zones: {"name": [[x, y], [x, y], [x, y], ...]} in frame fractions ---------- */

static int parse_point(vg_config_errors *e, const cJSON *point, const char *at) {
    if (!cJSON_IsArray(point)) {
        problem(e, at, "must be a point [x, y], not %s", type_name(point));
        return -1;
    }
    const cJSON *x = cJSON_GetArrayItem(point, 0), *y = cJSON_GetArrayItem(point, 1);
    if (cJSON_GetArraySize(point) != 2 || !cJSON_IsNumber(x) || !cJSON_IsNumber(y)) {
        problem(e, at, "must be a point [x, y] of two numbers");
        return -1;
    }
    if (x->valuedouble < 0 || x->valuedouble > 1 || y->valuedouble < 0 || y->valuedouble > 1) {
        problem(e, at, "[%g, %g] is outside the frame (x and y are fractions 0..1)", x->valuedouble, y->valuedouble);
        return -1;
    }
    return 0;
}

static void parse_zone(vg_config_errors *e, const cJSON *zone, const char *at) {
    char point_at[PATH_LEN + 16];
    if (!cJSON_IsArray(zone)) {
        problem(e, at, "must be an array of points [[x, y], ...], not %s", type_name(zone));
        return;
    }
    int n = 0;
    for (const cJSON *point = zone->child; point; point = point->next, n++) {
        snprintf(point_at, sizeof point_at, "%s[%d]", at, n);
        parse_point(e, point, point_at);
    }
    if (n < 3) problem(e, at, "has %d point%s; a zone needs at least 3", n, n == 1 ? "" : "s");
}

/* The zones as JSON text for the script ("{}" when none); every problem gets its own path. */
static char *parse_zones(vg_config_errors *e, const cJSON *item, const char *path) {
    char at[PATH_LEN], zone_at[PATH_LEN];
    const cJSON *zones = cJSON_GetObjectItemCaseSensitive(item, "zones");
    if (!zones) return strdup("{}");
    join(at, path, "zones");
    if (!cJSON_IsObject(zones)) {
        problem(e, at, "must be an object {\"name\": [[x, y], ...]}, not %s", type_name(zones));
        return strdup("{}");
    }
    for (const cJSON *zone = zones->child; zone; zone = zone->next) {
        if (!zone->string[0]) problem(e, at, "a zone has an empty name");
        else parse_zone(e, zone, join(zone_at, at, zone->string));
    }
    return cJSON_PrintUnformatted(zones);
}


static void check_media(vg_config_errors *e, const char *path, const char *media, const vg_config *c, int index) {
    char at[PATH_LEN];
    join(at, path, "media");
    for (const char *p = media; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            problem(e, at, "\"%s\" has a space or control character", media);
            return;
        }
    for (int i = 0; i < index; i++)
        if (c->cameras[i].media && strcmp(c->cameras[i].media, media) == 0) {
            problem(e, at, "\"%s\" is already the media of cameras[%d]", media, i);
            return;
        }
}

static void check_script(vg_config_errors *e, const char *path, const char *script) {
    char at[PATH_LEN];
    if (access(script, R_OK) < 0) problem(e, join(at, path, "script"), "%s: %s", script, strerror(errno));
}

static void parse_camera(vg_config_errors *e, const cJSON *item, const char *path, vg_config *c, int index) {
    static const char *const rtsp[] = {"rtsp://", "rtsps://", NULL};
    char at[PATH_LEN];
    vg_config_camera *cam = &c->cameras[index];
    if (!cJSON_IsObject(item)) {
        problem(e, path, "must be an object, not %s", type_name(item));
        return;
    }
    check_keys(e, item, path, CAMERA_KEYS, 1);
    const char *media = get_string(e, item, path, "media", 1);
    if (media) check_media(e, path, media, c, index);
    cam->media = media ? strdup(media) : NULL;
    const char *url = get_string(e, item, path, "url", 1);
    if (url && !has_scheme(url, rtsp)) problem(e, join(at, path, "url"), "not an rtsp:// or rtsps:// URL");
    cam->url = url ? strdup(url) : NULL;
    cam->script = resolve(c->dir, get_string(e, item, path, "script", 1));
    if (cam->script) check_script(e, path, cam->script);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(item, "params");
    if (params && !cJSON_IsObject(params))
        problem(e, join(at, path, "params"), "must be an object, not %s", type_name(params));
    cam->params_json = params && cJSON_IsObject(params) ? cJSON_PrintUnformatted(params) : strdup("{}");
    cam->zones_json = parse_zones(e, item, path);
    get_bool(e, item, path, "jit", &cam->jit);
    get_bool(e, item, path, "unsafe", &cam->unsafe);
    cam->overlay = resolve(c->dir, get_string(e, item, path, "overlay", 0));
    const char *preview_url = get_string(e, item, path, "preview_url", 0);
    if (preview_url && !has_scheme(preview_url, rtsp))
        problem(e, join(at, path, "preview_url"), "not an rtsp:// or rtsps:// URL");
    cam->preview_url = preview_url ? strdup(preview_url) : NULL;
    parse_settings(e, item, path, &cam->settings);
}

static void parse_cameras(vg_config_errors *e, const cJSON *root, vg_config *c, const vg_camera_settings *defaults) {
    const cJSON *cameras = cJSON_GetObjectItemCaseSensitive(root, "cameras");
    int optional = c->config_external != NULL; /* Central hands out the streams */
    if (!cameras) {
        if (!optional) problem(e, "cameras", "missing");
        return;
    }
    if (!cJSON_IsArray(cameras) || (!optional && !cJSON_GetArraySize(cameras))) {
        problem(e, "cameras", optional ? "must be an array of cameras" : "must be a non-empty array of cameras");
        return;
    }
    c->ncameras = cJSON_GetArraySize(cameras);
    c->cameras = calloc((size_t)c->ncameras, sizeof *c->cameras);
    int i = 0;
    for (const cJSON *item = cameras->child; item; item = item->next, i++) {
        char path[PATH_LEN];
        snprintf(path, sizeof path, "cameras[%d]", i);
        c->cameras[i].settings = *defaults;
        parse_camera(e, item, path, c, i);
    }
}

/* ---------- analytics-node mode: node.listen, keys, retention, config_external, stream_scripts ---------- */

/* "24h", "90m", "30s", "7d", "500ms", or a whole number of ms, as a double (compared with the range before
 * any conversion to an integer); -1 when it is none of them. */
static double parse_duration_ms(const cJSON *v) {
    if (cJSON_IsNumber(v)) {
        double ms = v->valuedouble;
        return ms >= 0 && ms == floor(ms) ? ms : -1;
    }
    if (!cJSON_IsString(v)) return -1;
    static const struct { const char *unit; double ms; } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    const char *text = v->valuestring;
    if (!(*text >= '0' && *text <= '9') && *text != '.') return -1; /* no sign, space, "inf", "nan" or hex */
    char *end;
    double n = strtod(text, &end);
    if (end == text || !(n >= 0) || (text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))) return -1;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (strcmp(end, units[i].unit) == 0) return n * units[i].ms;
    return -1;
}

static void parse_keep_for(vg_config_errors *e, const cJSON *node, vg_config *c) {
    const host_setting *row = host_setting_find("node", "keep_episodes_for");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(node, row->key);
    if (!v) return;
    double ms = parse_duration_ms(v);
    if (ms < 0 && cJSON_IsString(v)) {
        problem(e, "node.keep_episodes_for",
                "\"%s\" is not a duration (ms, or a string like \"90s\", \"30m\", \"24h\", \"7d\")", v->valuestring);
    } else if (ms < 0) {
        problem(e, "node.keep_episodes_for", "must be a whole number of ms or a string like \"24h\", not %s",
                cJSON_IsNumber(v) ? "a negative or fractional number" : type_name(v));
    } else if (!(ms <= (double)row->max)) {
        problem(e, "node.keep_episodes_for", "out of range (max 366 days)");
    } else if (ms < (double)row->min) {
        problem(e, "node.keep_episodes_for", "%.0f ms is not 1 minute..366 days", ms);
    } else {
        c->node_keep_episodes_ms = (long long)ms; /* in range: exact */
    }
}

/* An inline key or a file, not both. */
static void parse_node_key(vg_config_errors *e, const cJSON *node, vg_config *c) {
    const char *key = get_string(e, node, "node", "api_key", 0);
    const char *file = get_string(e, node, "node", "api_key_file", 0);
    if (key && file) problem(e, "node.api_key", "give either api_key or api_key_file, not both");
    else if (key && !is_clean_secret(key)) problem(e, "node.api_key", "has control characters");
    else if (key) c->node_api_key = strdup(key);
    else if (file) c->node_api_key_file = resolve(c->dir, file);
    if ((key || file) && !cJSON_GetObjectItemCaseSensitive(node, "listen"))
        problem(e, key ? "node.api_key" : "node.api_key_file", "needs node.listen");
}

/* The URL's user part is a key: never echoed. */
static int url_has_user(const char *url) {
    const char *auth = strstr(url, "://");
    if (!auth) return 0;
    auth += 3;
    const char *at = memchr(auth, '@', strcspn(auth, "/?#"));
    return at != NULL;
}

static void parse_config_external(vg_config_errors *e, const cJSON *node, vg_config *c) {
    static const char *const http[] = {"http://", "https://", NULL};
    const char *url = get_string(e, node, "node", "config_external", 0);
    if (url && !has_scheme(url, http)) problem(e, "node.config_external", "not an http:// or https:// URL");
    else if (url) c->config_external = strdup(url);
    const char *key = get_string(e, node, "node", "config_external_key", 0);
    if (key && !url) problem(e, "node.config_external_key", "needs node.config_external");
    else if (key && url_has_user(url))
        problem(e, "node.config_external_key", "node.config_external has a key too (its user part): give it once");
    else if (key && !is_clean_secret(key)) problem(e, "node.config_external_key", "has control characters");
    else if (key) c->config_external_key = strdup(key);
}

static void parse_stream_script(vg_config_errors *e, const cJSON *item, const char *path, const char *dir,
                                vg_stream_script *s) {
    char at[PATH_LEN];
    const char *match = get_string(e, item, path, "match", 0);
    s->match = strdup(match ? match : "*");
    s->script = resolve(dir, get_string(e, item, path, "script", 1));
    if (s->script) check_script(e, path, s->script);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(item, "params");
    if (params && !cJSON_IsObject(params))
        problem(e, join(at, path, "params"), "must be an object, not %s", type_name(params));
    s->params_json = params && cJSON_IsObject(params) ? cJSON_PrintUnformatted(params) : strdup("{}");
}

/* A list of {match, script, params}; the first entry whose glob matches a stream's name gives its rule. An
 * entry after one matching every name could never be used: refused. */
static void parse_stream_scripts(vg_config_errors *e, const cJSON *node, vg_config *c) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(node, "stream_scripts");
    if (!list) {
        if (c->config_external)
            problem(e, "node.stream_scripts", "missing (node.config_external needs the rule each stream runs; "
                                              "{\"script\": \"rule.lua\"} gives every stream one)");
        return;
    }
    if (!cJSON_IsArray(list) || !cJSON_GetArraySize(list)) {
        problem(e, "node.stream_scripts", "must be a non-empty array of {\"match\", \"script\", \"params\"}");
        return;
    }
    c->nstream_scripts = cJSON_GetArraySize(list);
    c->stream_scripts = calloc((size_t)c->nstream_scripts, sizeof *c->stream_scripts);
    int i = 0, catch_all = -1;
    for (const cJSON *item = list->child; item; item = item->next, i++) {
        char path[PATH_LEN];
        snprintf(path, sizeof path, "node.stream_scripts[%d]", i);
        if (!cJSON_IsObject(item)) {
            problem(e, path, "must be an object, not %s", type_name(item));
            continue;
        }
        check_keys(e, item, path, STREAM_SCRIPT_KEYS, 0);
        parse_stream_script(e, item, path, c->dir, &c->stream_scripts[i]);
        if (catch_all >= 0) problem(e, path, "never used: stream_scripts[%d] before it matches every name", catch_all);
        else if (strcmp(c->stream_scripts[i].match, "*") == 0) catch_all = i;
    }
}

static void parse_node_mode(vg_config_errors *e, const cJSON *node, vg_config *c) {
    const char *listen = get_string(e, node, "node", "listen", 0);
    if (listen && !is_listen_address(listen))
        problem(e, "node.listen", "\"%s\" is not HOST:PORT (an IPv4 address, * or localhost, and a port 0..65535)",
                listen);
    else if (listen && c->metrics_listen && strcmp(listen, c->metrics_listen) == 0 && !strstr(listen, ":0"))
        problem(e, "node.listen", "\"%s\" is node.metrics too: give each its own port", listen);
    else if (listen) c->node_listen = strdup(listen);
    if (listen && !c->spool_dir)
        problem(e, "node.spool_dir", "missing (node.listen keeps the episodes Central pulls in {spool_dir}/episodes)");
    parse_node_key(e, node, c);
    parse_keep_for(e, node, c);
    parse_config_external(e, node, c);
    parse_stream_scripts(e, node, c);
}

/* ---------- JSON text from outside ---------- */

/* "near line L, column C" of the byte at offset (columns count bytes, from 1). */
static void where(const char *text, size_t offset, char *out, size_t outlen) {
    int line = 1, column = 1;
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') line++, column = 1;
        else column++;
    }
    snprintf(out, outlen, "near line %d, column %d", line, column);
}

/* The length of the UTF-8 sequence at s (n bytes left), 0 when it is not one (overlong forms, surrogates
 * and code points past U+10FFFF included). */
static size_t utf8_length(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!len || len > n) return 0;
    unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;
    else if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;
    for (size_t i = 1; i < len; i++)
        if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF)) return 0;
    return len;
}

/* The \uXXXX escape at s (n bytes left, starting at the backslash), or -1 when it is not four hex digits
 * (cJSON then says "not valid JSON"). */
static long unicode_escape(const char *s, size_t n) {
    if (n < 6 || s[1] != 'u') return -1;
    long code = 0;
    for (int i = 2; i < 6; i++) {
        int c = s[i], digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                            : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (digit < 0) return -1;
        code = code * 16 + digit;
    }
    return code;
}

/* An escape inside a string: what is wrong with it, or NULL; *skip = its length. */
static const char *bad_escape(const char *s, size_t n, size_t *skip, char *why, size_t whylen) {
    long code = unicode_escape(s, n);
    *skip = n >= 2 ? 2 : 1;
    if (code < 0) return NULL;
    *skip = 6;
    if (code == 0) return "\\u0000 in a string (a string cannot hold a NUL)";
    if (code >= 0xDC00 && code <= 0xDFFF) {
        snprintf(why, whylen, "\\%.5s is the second half of a UTF-16 surrogate pair without its first half", s + 1);
        return why;
    }
    if (code < 0xD800 || code > 0xDBFF) return NULL;
    long low = unicode_escape(s + 6, n - 6);
    if (low < 0xDC00 || low > 0xDFFF) {
        snprintf(why, whylen, "\\%.5s is the first half of a UTF-16 surrogate pair without its second half", s + 1);
        return why;
    }
    *skip = 12;
    return NULL;
}

int vg_json_check_text(const char *text, size_t len, char *err, size_t errlen) {
    char why[160], at[64];
    const char *wrong = NULL;
    int depth = 0, in_string = 0;
    size_t i = 0, step = 1;
    for (; i < len && !wrong; i += step) {
        unsigned char c = (unsigned char)text[i];
        step = 1;
        if (c == 0) wrong = "a NUL byte";
        else if (c >= 0x80 && !(step = utf8_length((const unsigned char *)text + i, len - i))) wrong = "not UTF-8";
        else if (in_string && c == '\\') wrong = bad_escape(text + i, len - i, &step, why, sizeof why);
        else if (c == '"') in_string = !in_string;
        else if (!in_string && (c == '[' || c == '{') && ++depth > CJSON_NESTING_LIMIT) {
            snprintf(why, sizeof why, "nested deeper than %d levels", CJSON_NESTING_LIMIT);
            wrong = why;
        } else if (!in_string && (c == ']' || c == '}') && depth > 0) depth--;
        if (!wrong) continue;
        where(text, i, at, sizeof at);
        snprintf(err, errlen, "%s %s", wrong, at);
        return -1;
    }
    return 0;
}

cJSON *vg_json_parse(const char *text, size_t len, char *err, size_t errlen) {
    if (vg_json_check_text(text, len, err, errlen) < 0) return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root) { /* one value and nothing after it but white space */
        while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
        if (end == text + len) return root;
        cJSON_Delete(root);
    }
    char at[64];
    where(text, end && end >= text && end <= text + len ? (size_t)(end - text) : 0, at, sizeof at);
    snprintf(err, errlen, "not valid JSON %s", at);
    return NULL;
}

int vg_config_check_params(const char *text, size_t len, char *err, size_t errlen) {
    cJSON *params = vg_json_parse(text, len, err, errlen);
    if (!params) return -1;
    vg_config_errors e = {0};
    if (!cJSON_IsObject(params)) problem(&e, "", "must be a JSON object, not %s", type_name(params));
    else check_unique_keys(&e, params, "");
    cJSON_Delete(params);
    if (e.count) snprintf(err, errlen, "%s", e.lines[0]);
    int rc = e.count ? -1 : 0;
    vg_config_errors_free(&e);
    return rc;
}

/* ---------- entry points ---------- */

static void parse_document(vg_config_errors *errors, const cJSON *root, vg_config *c) {
    vg_camera_settings defaults = vg_camera_settings_default();
    apply_host_defaults(c);
    check_unique_keys(errors, root, "");
    check_keys(errors, root, "", TOP_KEYS, 0);
    parse_node(errors, root, c);
    parse_central(errors, root, c);
    parse_output(errors, root, c);
    const cJSON *d = object_at(errors, root, "", "defaults", 0);
    if (d) {
        check_keys(errors, d, "defaults", NULL, 1);
        parse_settings(errors, d, "defaults", &defaults);
    }
    parse_cameras(errors, root, c, &defaults);
    c->defaults.settings = defaults;
}

vg_config *vg_config_parse_text(const char *text, size_t len, const char *dir, vg_config_errors *errors) {
    char why[256];
    cJSON *root = vg_json_parse(text, len, why, sizeof why);
    if (!root) {
        problem(errors, "", "%s", why);
        return NULL;
    }
    int before = errors->count;
    vg_config *c = calloc(1, sizeof *c);
    c->dir = strdup(dir ? dir : ".");
    if (!cJSON_IsObject(root)) problem(errors, "", "must be a JSON object, not %s", type_name(root));
    else parse_document(errors, root, c);
    cJSON_Delete(root);
    if (errors->count > before) {
        vg_config_free(c);
        return NULL;
    }
    return c;
}

vg_config *vg_config_parse(const char *text, const char *dir, vg_config_errors *errors) {
    return vg_config_parse_text(text, strlen(text), dir, errors);
}

static char *directory_of(const char *path) {
    char *real = realpath(path, NULL);
    char *dir = strdup(real ? real : path);
    free(real);
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    return dir;
}

vg_config *vg_config_load(const char *path, vg_config_errors *errors) {
    char *text, why[200];
    size_t len;
    if (vg_file_read(path, VG_FILE_CONFIG_MAX, &text, &len, why, sizeof why) != VG_FILE_OK) {
        problem(errors, "", "%s", why); /* the runner's line names the file */
        return NULL;
    }
    char *dir = directory_of(path);
    vg_config *c = vg_config_parse_text(text, len, dir, errors);
    free(dir);
    free(text);
    return c;
}

void vg_config_free(vg_config *c) {
    if (!c) return;
    for (int i = 0; i < c->ncameras; i++) vg_config_camera_clear(&c->cameras[i]);
    free(c->cameras);
    free(c->dir);
    free(c->spool_dir);
    free(c->metrics_listen);
    free(c->central_url);
    if (c->central_api_key) explicit_bzero(c->central_api_key, strlen(c->central_api_key));
    free(c->central_api_key);
    free(c->central_api_key_file);
    free(c->output_file);
    free(c->output_previews_dir);
    free(c->node_listen);
    if (c->node_api_key) explicit_bzero(c->node_api_key, strlen(c->node_api_key));
    free(c->node_api_key);
    free(c->node_api_key_file);
    if (c->config_external) explicit_bzero(c->config_external, strlen(c->config_external));
    free(c->config_external);
    if (c->config_external_key) explicit_bzero(c->config_external_key, strlen(c->config_external_key));
    free(c->config_external_key);
    for (int i = 0; i < c->nstream_scripts; i++) {
        free(c->stream_scripts[i].match);
        free(c->stream_scripts[i].script);
        free(c->stream_scripts[i].params_json);
    }
    free(c->stream_scripts);
    vg_config_camera_clear(&c->defaults);
    free(c);
}

/* ---------- cameras apart from their config; what a reload may change ---------- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void vg_config_camera_copy(vg_config_camera *dst, const vg_config_camera *src) {
    *dst = *src;
    dst->media = dup_or_null(src->media);
    dst->url = dup_or_null(src->url);
    dst->script = dup_or_null(src->script);
    dst->params_json = dup_or_null(src->params_json);
    dst->zones_json = dup_or_null(src->zones_json);
    dst->overlay = dup_or_null(src->overlay);
    dst->preview_url = dup_or_null(src->preview_url);
}

void vg_config_camera_clear(vg_config_camera *cam) {
    free(cam->media);
    free(cam->url);
    free(cam->script);
    free(cam->params_json);
    free(cam->zones_json);
    free(cam->overlay);
    free(cam->preview_url);
    *cam = (vg_config_camera){0};
}

static int same_text(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

int vg_config_camera_same(const vg_config_camera *a, const vg_config_camera *b) {
    return same_text(a->media, b->media) && same_text(a->url, b->url) && same_text(a->script, b->script) &&
           same_text(a->params_json, b->params_json) && same_text(a->zones_json, b->zones_json) &&
           a->jit == b->jit && a->unsafe == b->unsafe && same_text(a->overlay, b->overlay) &&
           same_text(a->preview_url, b->preview_url) && vg_camera_settings_same(&a->settings, &b->settings);
}

static int same_stream_scripts(const vg_config *a, const vg_config *b) {
    if (a->nstream_scripts != b->nstream_scripts) return 0;
    for (int i = 0; i < a->nstream_scripts; i++) {
        const vg_stream_script *x = &a->stream_scripts[i], *y = &b->stream_scripts[i];
        if (!same_text(x->match, y->match) || !same_text(x->script, y->script) ||
            !same_text(x->params_json, y->params_json))
            return 0;
    }
    return 1;
}

#define SAME_TEXT(a, b, member) same_text((a)->member, (b)->member)
#define SAME_INT(a, b, member) ((a)->member == (b)->member)
#define SAME_DURATION SAME_INT
#define SAME_CHOICE SAME_INT
#define SAME_SCRIPTS(a, b, member) same_stream_scripts(a, b)
#define REPORT_IF_RESTART(path, kind, member) \
    if (!SAME_##kind(old, new, member)) problem(changed, path, "changed");
#define REPORT_IF_RELOAD(path, kind, member)
#define REPORT_FIXED_CHANGE(section, key, kind, member, min, max, def, apply, ...) \
    REPORT_IF_##apply(section "." key, kind, member)

int vg_config_fixed_changes(const vg_config *old, const vg_config *new, vg_config_errors *changed) {
    int before = changed->count;
    VG_CONFIG_HOST_SETTINGS(REPORT_FIXED_CHANGE)
    return changed->count - before;
}

/* ---------- the docs tables of node, central and output ---------- */

static void print_host_type(FILE *out, const host_setting *row) {
    if (row->kind == HOST_INT) fprintf(out, "integer %lld..%lld", row->min, row->max);
    else if (row->kind == HOST_DURATION) fputs("integer ms, or `\"90s\"`, `\"30m\"`, `\"24h\"`, `\"7d\"`", out);
    else fputs(row->type, out);
}

static void print_host_default(FILE *out, const host_setting *row) {
    if (row->kind == HOST_INT && row->def == VG_CONFIG_REQUIRED) fputs("required", out);
    else if (row->kind == HOST_INT) fprintf(out, "%lld", row->def);
    else if (row->kind == HOST_DURATION && row->def % 3600000 == 0) fprintf(out, "`\"%lldh\"`", row->def / 3600000);
    else if (row->kind == HOST_DURATION) fprintf(out, "%lld ms", row->def);
    else fputs(row->default_text, out);
}

void vg_config_print_table(FILE *out, const char *table) {
    fprintf(out, "| key%s | type | default | |\n|---|---|---|---|\n",
            strcmp(table, "analytics-node") == 0 ? " (in `node`)" : "");
    for (const host_setting *row = HOST_SETTINGS; row < HOST_SETTINGS_END; row++) {
        if (strcmp(row->table, table) != 0) continue;
        fprintf(out, "| `%s` | ", row->key);
        print_host_type(out, row);
        fputs(" | ", out);
        print_host_default(out, row);
        fprintf(out, " | %s |\n", row->doc);
    }
}
