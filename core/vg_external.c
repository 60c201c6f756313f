/* vg_external.c — node.config_external (interface in vg_external.h): the pure list parser and rule matcher,
 * and the source that fetches {url}/streams with libcurl and logs what changed.
 *
 * Where the fetch runs: on the caller's thread, the runner's main thread, between signals. That is where
 * the runner reconciles its cameras for a SIGHUP reload too, so the camera set keeps a single writer and
 * needs no lock between the two. The price is that a signal arriving during a fetch waits for it: every
 * fetch is bounded by VG_EXTERNAL_TIMEOUT_MS (2 s), which bounds that delay. A thread of its own would only
 * move the wait into a hand-off to the main thread, which still has to do the reconciling.
 *
 * The key is the URL's user part or node.config_external_key; it is sent as "Authorization: Bearer" (the
 * user part is removed from the URL curl sees, so curl never turns it into Basic auth), lives only in this
 * object's header list, and no log line carries it: lines show the URL without its user part. */
#include "vg_external.h"

#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "vg_curl.h"
#include "vg_http.h"
#include "vg_log.h"
#include "vg_snowflake.h"
#include "vg_time.h"

#define WHO "config_external"
#define DEFAULT_INTERVAL_MS 5000
#define CONNECT_TIMEOUT_MS 1000
#define MAX_BODY (8 << 20)

/* ---------- matching ---------- */

const vg_stream_script *vg_external_match(const vg_stream_script *rules, int nrules, const char *name) {
    for (int i = 0; i < nrules; i++)
        if (fnmatch(rules[i].match, name, 0) == 0) return &rules[i];
    return NULL;
}

/* ---------- parsing ---------- */

static void add_skip(vg_external_list *out, const char *name, const char *reason) {
    out->skipped = realloc(out->skipped, sizeof *out->skipped * (size_t)(out->nskipped + 1));
    out->skipped[out->nskipped++] = (vg_external_skip){strdup(name), strdup(reason)};
}

static void add_stream(vg_external_list *out, const char *name, const char *url, const char *preview_url,
                       const vg_stream_script *rule) {
    out->streams = realloc(out->streams, sizeof *out->streams * (size_t)(out->count + 1));
    out->streams[out->count++] =
        (vg_external_stream){strdup(name), strdup(url), preview_url ? strdup(preview_url) : NULL, rule};
}

static int is_rtsp(const char *url) {
    return (strncmp(url, "rtsp://", 7) == 0 && url[7]) || (strncmp(url, "rtsps://", 8) == 0 && url[8]);
}

static const char *string_of(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The first rtsp(s) URL among inputs[].url, else the stream's own url; NULL when there is none. */
static const char *input_of(const cJSON *stream) {
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(stream, "inputs");
    if (!cJSON_IsArray(inputs)) inputs = NULL;
    const cJSON *input;
    cJSON_ArrayForEach(input, inputs) {
        const char *url = string_of(input, "url");
        if (url && is_rtsp(url)) return url;
    }
    const char *url = string_of(stream, "url");
    return url && is_rtsp(url) ? url : NULL;
}

/* A name is a media name in episodes and log lines: no spaces, no control characters. */
static int usable_name(const char *name) {
    if (!name || !*name) return 0;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) return 0;
    return 1;
}

static int seen_before(const vg_external_list *out, const char *name) {
    for (int i = 0; i < out->count; i++)
        if (strcmp(out->streams[i].name, name) == 0) return 1;
    return 0;
}

/* Why a stream of the list cannot be analysed, or NULL when it can (*url and *rule then set). */
static const char *refusal(const cJSON *item, const char *name, const vg_stream_script *rules, int nrules,
                           const vg_external_list *out, const char **url, const vg_stream_script **rule) {
    if (!cJSON_IsObject(item)) return "not an object";
    if (!name || !*name) return "no name";
    if (!usable_name(name)) return "the name has a space or control character";
    if (seen_before(out, name)) return "given twice in the list: the first one is used";
    if (!(*url = input_of(item))) return "no rtsp:// or rtsps:// input";
    const cJSON *preview = cJSON_GetObjectItemCaseSensitive(item, "preview_url");
    if (preview && !(cJSON_IsString(preview) && is_rtsp(preview->valuestring)))
        return "preview_url is not an rtsp:// or rtsps:// URL";
    if (!(*rule = vg_external_match(rules, nrules, name))) return "no node.stream_scripts entry matches the name";
    return NULL;
}

static void parse_stream(const cJSON *item, int index, const vg_stream_script *rules, int nrules,
                         vg_external_list *out) {
    char at[32];
    const char *name = cJSON_IsObject(item) ? string_of(item, "name") : NULL, *url = NULL;
    const vg_stream_script *rule = NULL;
    const char *why = refusal(item, name, rules, nrules, out, &url, &rule);
    snprintf(at, sizeof at, "streams[%d]", index);
    if (!why) add_stream(out, name, url, string_of(item, "preview_url"), rule);
    else add_skip(out, usable_name(name) ? name : at, why);
}

int vg_external_parse(const char *json, size_t len, const vg_stream_script *rules, int nrules,
                      vg_external_list *out, char *err, size_t errlen) {
    *out = (vg_external_list){0};
    char why[200];
    cJSON *root = vg_json_parse(json, len, why, sizeof why); /* a name with \u0000 is refused, not cut */
    const cJSON *streams = cJSON_GetObjectItemCaseSensitive(root, "streams");
    if (!root || !cJSON_IsArray(streams)) {
        if (!root && strncmp(why, "not valid JSON", 14) == 0) snprintf(err, errlen, "the answer is not JSON");
        else if (!root) snprintf(err, errlen, "the answer is refused: %s", why); /* too deep, a NUL, ... */
        else snprintf(err, errlen, "the answer has no \"streams\" array");
        cJSON_Delete(root);
        return -1;
    }
    int index = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, streams) parse_stream(item, index++, rules, nrules, out);
    cJSON_Delete(root);
    return 0;
}

void vg_external_list_free(vg_external_list *list) {
    for (int i = 0; i < list->count; i++) {
        free(list->streams[i].name);
        free(list->streams[i].url);
        free(list->streams[i].preview_url);
    }
    for (int i = 0; i < list->nskipped; i++) {
        free(list->skipped[i].name);
        free(list->skipped[i].reason);
    }
    free(list->streams);
    free(list->skipped);
    *list = (vg_external_list){0};
}

/* ---------- said once ---------- */

/* Lines logged while their condition lasts: a line is logged when it appears, not again while it stays,
 * and again if it goes away and comes back. */
typedef struct said {
    char **lines;
    int count;
} said;

static int said_has(const said *s, const char *line) {
    for (int i = 0; i < s->count; i++)
        if (strcmp(s->lines[i], line) == 0) return 1;
    return 0;
}

static void said_clear(said *s) {
    for (int i = 0; i < s->count; i++) free(s->lines[i]);
    free(s->lines);
    *s = (said){0};
}

/* now (taken) becomes what was said; warns each line of it that was not said before. */
static void said_update(said *s, said *now) {
    for (int i = 0; i < now->count; i++)
        if (!said_has(s, now->lines[i])) vg_warn(WHO, "%s", now->lines[i]);
    said_clear(s);
    *s = *now;
    *now = (said){0};
}

static void said_add(said *s, const char *line) {
    s->lines = realloc(s->lines, sizeof *s->lines * (size_t)(s->count + 1));
    s->lines[s->count++] = strdup(line);
}

/* ---------- the source ---------- */

struct vg_external {
    char *url;                /* {url}/streams without the user part */
    const vg_stream_script *rules;
    int nrules;
    int interval_ms;
    int64_t due_ms;
    CURL *curl;               /* reused: keep-alive */
    struct curl_slist *headers;
    vg_buf body;
    char curl_error[CURL_ERROR_SIZE];
    int fetched, failing;     /* a fetch succeeded once; fetching fails now */
    vg_external_list last;    /* the list of the last fetch that succeeded */
    said skips_said;          /* "name: reason" of the skips logged */
    said clashes_said;        /* names refused because the config file has them */
};

/* The key from the URL's user part ("user" or "user:password", decoded), and the URL of the stream list
 * without it. -1 with a reason that never quotes the URL (it may hold the key). */
static int split_url(const char *url, char **key, char **list_url, char *err, size_t errlen) {
    CURLU *u = curl_url();
    char *scheme = NULL, *user = NULL, *password = NULL, *path = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(err, errlen, "node.config_external: not an http:// or https:// URL");
        goto out;
    }
    curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE);
    curl_url_get(u, CURLUPART_PASSWORD, &password, CURLU_URLDECODE);
    if (user && *user) {
        size_t n = strlen(user) + (password ? strlen(password) + 1 : 0) + 1;
        *key = malloc(n);
        snprintf(*key, n, "%s%s%s", user, password ? ":" : "", password ? password : "");
    }
    curl_url_set(u, CURLUPART_USER, NULL, 0);
    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    size_t n = path ? strlen(path) : 0;
    while (n && path[n - 1] == '/') n--;
    char joined[4096];
    snprintf(joined, sizeof joined, "%.*s/streams", (int)n, path ? path : "");
    curl_url_set(u, CURLUPART_PATH, joined, 0);
    rc = curl_url_get(u, CURLUPART_URL, list_url, 0) == CURLUE_OK ? 0 : -1;
    if (rc < 0) snprintf(err, errlen, "node.config_external: not a usable URL");
out:
    curl_free(scheme);
    if (user) explicit_bzero(user, strlen(user));
    if (password) explicit_bzero(password, strlen(password));
    curl_free(user);
    curl_free(password);
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

static size_t keep_body(char *data, size_t size, size_t n, void *ctx) {
    vg_external *x = ctx;
    if (x->body.len + size * n > MAX_BODY) return 0; /* fails the transfer */
    vg_buf_append(&x->body, data, size * n);
    return size * n;
}

static void make_handle(vg_external *x, const char *key) {
    if (key && *key) {
        size_t n = strlen(key) + 32;
        char *header = malloc(n);
        snprintf(header, n, "Authorization: Bearer %s", key);
        x->headers = curl_slist_append(x->headers, header);
        explicit_bzero(header, n);
        free(header);
    }
    x->headers = curl_slist_append(x->headers, "Accept: application/json");
    x->curl = curl_easy_init();
    curl_easy_setopt(x->curl, CURLOPT_URL, x->url);
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(x->curl, CURLOPT_TIMEOUT_MS, (long)VG_EXTERNAL_TIMEOUT_MS);
    curl_easy_setopt(x->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(x->curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(x->curl, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(x->curl, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->curl, CURLOPT_ERRORBUFFER, x->curl_error);
}

vg_external *vg_external_new(const vg_external_options *o, char *err, size_t errlen) {
    if (vg_curl_global_init(err, errlen) < 0) return NULL;
    char *url_key = NULL, *list_url = NULL;
    if (!o->url || split_url(o->url, &url_key, &list_url, err, errlen) < 0) {
        if (!o->url) snprintf(err, errlen, "node.config_external: missing");
        free(url_key);
        return NULL;
    }
    vg_external *x = calloc(1, sizeof *x);
    x->url = strdup(list_url);
    curl_free(list_url);
    x->rules = o->rules;
    x->nrules = o->nrules;
    x->interval_ms = o->interval_ms > 0 ? o->interval_ms : DEFAULT_INTERVAL_MS;
    x->due_ms = vg_monotonic_ms();
    make_handle(x, o->key && *o->key ? o->key : url_key);
    if (url_key) explicit_bzero(url_key, strlen(url_key));
    free(url_key);
    return x;
}

void vg_external_free(vg_external *x) {
    if (!x) return;
    curl_easy_cleanup(x->curl);
    curl_slist_free_all(x->headers); /* the header with the key: freed, its memory not kept around */
    free(x->body.data);
    vg_external_list_free(&x->last);
    said_clear(&x->skips_said);
    said_clear(&x->clashes_said);
    free(x->url);
    free(x);
}

const char *vg_external_url(const vg_external *x) { return x->url; }
int64_t vg_external_due_ms(const vg_external *x) { return x->due_ms; }

/* ---------- one fetch ---------- */

static void note_failure(vg_external *x, const char *reason) {
    if (x->failing) {
        vg_debug(WHO, "%s: %s", x->url, reason);
        return;
    }
    x->failing = 1;
    if (x->fetched)
        vg_warn(WHO, "%s: %s; keeping the %d stream%s it gave last, retrying every %.1f s", x->url, reason,
                x->last.count, x->last.count == 1 ? "" : "s", x->interval_ms / 1000.0);
    else
        vg_warn(WHO, "%s: %s; retrying every %.1f s", x->url, reason, x->interval_ms / 1000.0);
}

static int same_or_both_null(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static int same_list(const vg_external_list *a, const vg_external_list *b) {
    if (a->count != b->count) return 0;
    for (int i = 0; i < a->count; i++)
        if (strcmp(a->streams[i].name, b->streams[i].name) != 0 || strcmp(a->streams[i].url, b->streams[i].url) != 0 ||
            !same_or_both_null(a->streams[i].preview_url, b->streams[i].preview_url) ||
            a->streams[i].rule != b->streams[i].rule)
            return 0;
    return 1;
}

/* Keeps list as the last one; 1 when it differs from the one before (or is the first). */
static int note_success(vg_external *x, vg_external_list *list) {
    if (x->failing || !x->fetched)
        vg_info(WHO, "%s: %s%d stream%s to analyse (%d skipped)", x->url, x->failing ? "recovered, " : "",
                list->count, list->count == 1 ? "" : "s", list->nskipped);
    said now = {0};
    for (int i = 0; i < list->nskipped; i++) {
        char line[600];
        snprintf(line, sizeof line, "%s: %s: skipped", list->skipped[i].name, list->skipped[i].reason);
        said_add(&now, line);
    }
    said_update(&x->skips_said, &now);
    int changed = !x->fetched || !same_list(&x->last, list);
    x->failing = 0;
    x->fetched = 1;
    vg_external_list_free(&x->last);
    x->last = *list;
    *list = (vg_external_list){0};
    return changed;
}

/* The body of {url}/streams into body; -1 with a reason. */
static int download(vg_external *x, char *why, size_t whylen) {
    x->body.len = 0;
    x->curl_error[0] = 0;
    CURLcode rc = curl_easy_perform(x->curl);
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        char masked[CURL_ERROR_SIZE + 64];
        vg_mask_urls_in(x->curl_error[0] ? x->curl_error : curl_easy_strerror(rc), masked, sizeof masked);
        snprintf(why, whylen, "%s", rc == CURLE_WRITE_ERROR ? "the answer is larger than 8 MiB" : masked);
        return -1;
    }
    if (status != 200) {
        snprintf(why, whylen, "HTTP %ld%s", status,
                 status == 401 || status == 403 ? " (is node.config_external's key right?)" : "");
        return -1;
    }
    return 0;
}

int vg_external_fetch(vg_external *x) {
    char why[400];
    vg_external_list list = {0};
    int rc = download(x, why, sizeof why);
    x->due_ms = vg_monotonic_ms() + x->interval_ms;
    if (rc == 0 && vg_external_parse(x->body.data ? x->body.data : "", x->body.len, x->rules, x->nrules, &list, why,
                                     sizeof why) < 0)
        rc = -1;
    if (rc < 0) {
        note_failure(x, why);
        return -1;
    }
    return note_success(x, &list);
}

const vg_external_list *vg_external_last(const vg_external *x) { return &x->last; }

/* ---------- the wanted cameras ---------- */

static int in_config(const vg_config *config, const char *name) {
    for (int i = 0; i < config->ncameras; i++)
        if (strcmp(config->cameras[i].media, name) == 0) return 1;
    return 0;
}

vg_config_camera *vg_external_cameras(vg_external *x, const vg_config *config, int *count) {
    vg_config_camera *cams = calloc((size_t)x->last.count + 1, sizeof *cams);
    said clashes = {0};
    *count = 0;
    for (int i = 0; i < x->last.count; i++) {
        const vg_external_stream *s = &x->last.streams[i];
        if (in_config(config, s->name)) {
            char line[400];
            snprintf(line, sizeof line, "%s: also a camera of the config file, which wins: not analysed from here",
                     s->name);
            said_add(&clashes, line);
            continue;
        }
        vg_config_camera *cam = &cams[(*count)++];
        vg_config_camera_copy(cam, &config->defaults);
        cam->media = strdup(s->name);
        cam->url = strdup(s->url);
        free(cam->preview_url);
        cam->preview_url = s->preview_url ? strdup(s->preview_url) : NULL;
        cam->script = strdup(s->rule->script);
        cam->params_json = strdup(s->rule->params_json);
        cam->zones_json = strdup("{}");
    }
    said_update(&x->clashes_said, &clashes);
    return cams;
}

void vg_external_cameras_free(vg_config_camera *cams, int count) {
    for (int i = 0; i < count; i++) vg_config_camera_clear(&cams[i]);
    free(cams);
}
