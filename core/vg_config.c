/* vg_config.c — reading `vigil run`'s JSON config: every key checked for type, range and spelling, every
 * problem collected with its JSON path, defaults applied, relative paths resolved against the file's
 * directory. */
#include "vg_config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "vg_snowflake.h"

#define PATH_LEN 256

static const char *const TOP_KEYS[] = {"node", "central", "output", "defaults", "cameras", NULL};
static const char *const NODE_KEYS[] = {"machine_id", "spool_dir", "log_level", NULL};
static const char *const CENTRAL_KEYS[] = {"url", "api_key_file", NULL};
static const char *const OUTPUT_KEYS[] = {"file", NULL};
static const char *const DEFAULTS_KEYS[] = {"analysis_width", "budget_ms", "stall_timeout_ms", "rtcp_wait_ms", NULL};
static const char *const CAMERA_KEYS[] = {"media", "url", "script", "params", "transport", "analysis_width",
                                          "budget_ms", "stall_timeout_ms", "rtcp_wait_ms", NULL};

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

/* Unknown and repeated keys are problems too: a typo must not silently fall back to a default. */
static void check_keys(vg_config_errors *e, const cJSON *obj, const char *path, const char *const *keys) {
    char at[PATH_LEN];
    for (const cJSON *item = obj->child; item; item = item->next) {
        if (!allowed(item->string, keys)) problem(e, join(at, path, item->string), "unknown key");
        for (const cJSON *before = obj->child; before != item; before = before->next)
            if (strcmp(before->string, item->string) == 0) {
                problem(e, join(at, path, item->string), "given twice");
                break;
            }
    }
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

/* ---------- sections ---------- */

static void parse_node(vg_config_errors *e, const cJSON *root, vg_config *c) {
    const cJSON *node = object_at(e, root, "", "node", 1);
    if (!node) return;
    check_keys(e, node, "node", NODE_KEYS);
    get_int(e, node, "node", "machine_id", 0, VG_SNOWFLAKE_MAX_MACHINE, 1, &c->machine_id);
    c->spool_dir = resolve(c->dir, get_string(e, node, "node", "spool_dir", 0));
    const char *level = get_string(e, node, "node", "log_level", 0);
    if (level && vg_log_parse_level(level, &c->log_level) < 0)
        problem(e, "node.log_level", "\"%s\" is not error, warn, info or debug", level);
    else if (level) c->has_log_level = 1;
}

static void parse_central(vg_config_errors *e, const cJSON *root, vg_config *c) {
    static const char *const http[] = {"http://", "https://", NULL};
    const cJSON *central = object_at(e, root, "", "central", 0);
    if (!central) return;
    check_keys(e, central, "central", CENTRAL_KEYS);
    const char *url = get_string(e, central, "central", "url", 1);
    if (url && !has_scheme(url, http)) problem(e, "central.url", "\"%s\" is not an http:// or https:// URL", url);
    else if (url) c->central_url = strdup(url);
    c->central_api_key_file = resolve(c->dir, get_string(e, central, "central", "api_key_file", 1));
    if (!c->spool_dir && cJSON_GetObjectItemCaseSensitive(root, "node"))
        problem(e, "node.spool_dir", "missing (Central needs a spool for versions not yet delivered)");
}

static void parse_output(vg_config_errors *e, const cJSON *root, vg_config *c) {
    const cJSON *output = object_at(e, root, "", "output", 0);
    if (!output) return;
    check_keys(e, output, "output", OUTPUT_KEYS);
    const char *file = get_string(e, output, "output", "file", 0);
    c->output_file = file && strcmp(file, "-") == 0 ? strdup(file) : resolve(c->dir, file);
}

/* The settings a camera may override; the same checks in "defaults" and in each camera. */
static void parse_tunables(vg_config_errors *e, const cJSON *obj, const char *path, vg_config_camera *t) {
    get_int(e, obj, path, "analysis_width", 16, 7680, 0, &t->analysis_width);
    get_number(e, obj, path, "budget_ms", 1, 60000, &t->budget_ms);
    get_int(e, obj, path, "stall_timeout_ms", 1000, 600000, 0, &t->stall_timeout_ms);
    get_int(e, obj, path, "rtcp_wait_ms", 0, 60000, 0, &t->rtcp_wait_ms);
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
    check_keys(e, item, path, CAMERA_KEYS);
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
    const char *transport = get_string(e, item, path, "transport", 0);
    if (transport && strcmp(transport, "tcp") != 0 && strcmp(transport, "udp") != 0)
        problem(e, join(at, path, "transport"), "\"%s\" is not tcp or udp", transport);
    cam->transport = strdup(transport ? transport : "tcp");
    parse_tunables(e, item, path, cam);
}

static void parse_cameras(vg_config_errors *e, const cJSON *root, vg_config *c, const vg_config_camera *defaults) {
    const cJSON *cameras = cJSON_GetObjectItemCaseSensitive(root, "cameras");
    if (!cameras) {
        problem(e, "cameras", "missing");
        return;
    }
    if (!cJSON_IsArray(cameras) || !cJSON_GetArraySize(cameras)) {
        problem(e, "cameras", "must be a non-empty array of cameras");
        return;
    }
    c->ncameras = cJSON_GetArraySize(cameras);
    c->cameras = calloc((size_t)c->ncameras, sizeof *c->cameras);
    int i = 0;
    for (const cJSON *item = cameras->child; item; item = item->next, i++) {
        char path[PATH_LEN];
        snprintf(path, sizeof path, "cameras[%d]", i);
        c->cameras[i] = *defaults;
        parse_camera(e, item, path, c, i);
    }
}

/* ---------- entry points ---------- */

static void locate_parse_error(vg_config_errors *e, const char *text, const char *at) {
    int line = 1, column = 1;
    for (const char *p = text; at && p < at && *p; p++) {
        if (*p == '\n') {
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    problem(e, "", "not valid JSON near line %d, column %d", line, column);
}

vg_config *vg_config_parse(const char *text, const char *dir, vg_config_errors *errors) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        locate_parse_error(errors, text, end);
        return NULL;
    }
    int before = errors->count;
    vg_config *c = calloc(1, sizeof *c);
    c->dir = strdup(dir ? dir : ".");
    if (!cJSON_IsObject(root)) {
        problem(errors, "", "must be a JSON object, not %s", type_name(root));
    } else {
        vg_config_camera defaults = {.analysis_width = 320, .budget_ms = 50, .stall_timeout_ms = 10000,
                                     .rtcp_wait_ms = 5000};
        check_keys(errors, root, "", TOP_KEYS);
        parse_node(errors, root, c);
        parse_central(errors, root, c);
        parse_output(errors, root, c);
        const cJSON *d = object_at(errors, root, "", "defaults", 0);
        if (d) {
            check_keys(errors, d, "defaults", DEFAULTS_KEYS);
            parse_tunables(errors, d, "defaults", &defaults);
        }
        parse_cameras(errors, root, c, &defaults);
    }
    cJSON_Delete(root);
    if (errors->count > before) {
        vg_config_free(c);
        return NULL;
    }
    return c;
}

static char *read_file(const char *path, vg_config_errors *e) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        problem(e, path, "%s", strerror(errno));
        return NULL;
    }
    size_t len = 0, cap = 4096;
    char *text = malloc(cap);
    for (size_t n; (n = fread(text + len, 1, cap - len - 1, f)) > 0;) {
        len += n;
        if (cap - len - 1 == 0) text = realloc(text, cap *= 2);
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        problem(e, path, "cannot read");
        free(text);
        return NULL;
    }
    text[len] = 0;
    return text;
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
    char *text = read_file(path, errors);
    if (!text) return NULL;
    char *dir = directory_of(path);
    vg_config *c = vg_config_parse(text, dir, errors);
    free(dir);
    free(text);
    return c;
}

void vg_config_free(vg_config *c) {
    if (!c) return;
    for (int i = 0; i < c->ncameras; i++) {
        vg_config_camera *cam = &c->cameras[i];
        free(cam->media);
        free(cam->url);
        free(cam->script);
        free(cam->params_json);
        free(cam->transport);
    }
    free(c->cameras);
    free(c->dir);
    free(c->spool_dir);
    free(c->central_url);
    free(c->central_api_key_file);
    free(c->output_file);
    free(c);
}
