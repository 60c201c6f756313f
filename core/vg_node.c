/* vg_node.c — the analytics-node API (interface in vg_node.h): routing, the Bearer check (constant time),
 * query parameters checked with a one-line JSON error naming the one at fault, and the three answers.
 * Errors follow Central's own shape: {"errors":[{"status":"400","title":"...","source":{"parameter":"..."}}]}.
 * The key lives only in this object's memory; no log line carries it or the Authorization header. */
#include "vg_node.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "vg_http.h"
#include "vg_log.h"
#include "vg_snowflake.h"

#define WHO "node"
#define AUTH_WARN_EVERY_MS 60000

struct vg_node {
    vg_http_server *http;
    vg_store *store;
    char *api_key;                /* NULL: no key checked */
    size_t key_len;
    vg_node_list_streams list_streams;
    void *streams_ctx;
    int64_t started_ms;
    pthread_mutex_t lock;         /* the refusal counter below */
    long refused;
    int64_t last_refusal_warn_ms;
};

/* ---------- answers ---------- */

static void answer_json(vg_http_response *res, int status, cJSON *doc) {
    res->status = status;
    res->content_type = "application/json";
    res->body = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
}

static void answer_error(vg_http_response *res, int status, const char *parameter, const char *title) {
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    cJSON *doc = cJSON_CreateObject(), *error = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "errors"), error);
    cJSON_AddStringToObject(error, "status", code);
    cJSON_AddStringToObject(error, "title", title);
    if (parameter) cJSON_AddStringToObject(cJSON_AddObjectToObject(error, "source"), "parameter", parameter);
    answer_json(res, status, doc);
}

/* ---------- the key ---------- */

/* Every byte of the key is looked at whatever the given token is, so the time taken does not tell how much
 * of a guess was right. */
static int same_secret(const char *given, size_t given_len, const char *key, size_t key_len) {
    volatile unsigned char diff = given_len != key_len;
    for (size_t i = 0; i < key_len; i++) diff |= (unsigned char)(key[i] ^ (i < given_len ? given[i] : 0));
    return diff == 0;
}

static int authorized(const vg_node *node, const char *authorization) {
    if (!node->api_key) return 1;
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) return 0;
    const char *token = authorization + 7;
    while (*token == ' ') token++;
    size_t len = strlen(token);
    while (len && token[len - 1] == ' ') len--;
    return same_secret(token, len, node->api_key, node->key_len);
}

/* One warn line for the first refusal and then at most one a minute, with the count: a client with a wrong
 * key must not flood the log. */
static void note_refusal(vg_node *node, const vg_http_request *req) {
    pthread_mutex_lock(&node->lock);
    long n = ++node->refused;
    int64_t now = vg_monotonic_ms();
    int say = n == 1 || now - node->last_refusal_warn_ms >= AUTH_WARN_EVERY_MS;
    if (say) node->last_refusal_warn_ms = now;
    pthread_mutex_unlock(&node->lock);
    if (say)
        vg_warn(WHO, "%s %s refused: %s Bearer key (%ld refused so far)", req->method, req->path,
                req->authorization ? "wrong" : "no", n);
}

/* ---------- query parameters ---------- */

/* 0 when absent (*out untouched) or valid; -1 with the 400 answer filled. */
static int integer_parameter(const vg_http_request *req, vg_http_response *res, const char *name, long long min,
                             long long max, long long *out) {
    const char *text = vg_http_query(req, name);
    if (!text) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || errno || v < min || v > max) {
        char title[200];
        snprintf(title, sizeof title, "%s: '%.60s' is not an integer %lld..%lld", name, text, min, max);
        answer_error(res, 400, name, title);
        return -1;
    }
    *out = v;
    return 0;
}

static int seconds_parameter(const vg_http_request *req, vg_http_response *res, const char *name, double max,
                             double *out) {
    const char *text = vg_http_query(req, name);
    if (!text) return 0;
    char *end;
    double v = strtod(text, &end);
    if (!*text || *end || !isfinite(v) || v < 0 || v > max) {
        char title[200];
        snprintf(title, sizeof title, "%s: '%.60s' is not a number of seconds 0..%g", name, text, max);
        answer_error(res, 400, name, title);
        return -1;
    }
    *out = v;
    return 0;
}

/* ---------- the three answers ---------- */

static void get_episodes(vg_node *node, const vg_http_request *req, vg_http_response *res) {
    long long after = 0, limit = 0;
    double poll_s = 0;
    if (integer_parameter(req, res, "updated_at_gt", 0, INT64_MAX, &after) < 0 ||
        seconds_parameter(req, res, "poll_timeout", VG_NODE_MAX_POLL_S, &poll_s) < 0 ||
        integer_parameter(req, res, "limit", 1, VG_NODE_MAX_LIMIT, &limit) < 0)
        return;
    vg_buf out = {0};
    vg_store_query(node->store, (int64_t)after, (int)limit, (int)lround(poll_s * 1000), &out);
    res->status = 200;
    res->content_type = "application/json";
    res->body = out.data;
    res->body_len = out.len;
}

static void add_stream(void *ctx, const vg_node_stream *s) {
    char masked[2048];
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "name", s->name ? s->name : "");
    cJSON_AddStringToObject(item, "url", vg_mask_url(s->url, masked, sizeof masked));
    cJSON_AddStringToObject(item, "source", s->source ? s->source : "config");
    cJSON_AddStringToObject(item, "script", s->script ? s->script : "");
    cJSON_AddStringToObject(item, "state", s->state ? s->state : "connecting");
    cJSON_AddStringToObject(item, "clock", s->clock ? s->clock : "local");
    cJSON_AddNumberToObject(item, "frames", (double)s->frames);
    cJSON_AddNumberToObject(item, "connects", (double)s->connects);
    cJSON_AddNumberToObject(item, "disconnects", (double)s->disconnects);
    cJSON_AddNumberToObject(item, "episodes_open", s->episodes_open);
    cJSON_AddItemToArray(ctx, item);
}

static void get_streams(vg_node *node, vg_http_response *res) {
    cJSON *doc = cJSON_CreateObject();
    cJSON *streams = cJSON_AddArrayToObject(doc, "streams");
    if (node->list_streams) node->list_streams(node->streams_ctx, add_stream, streams);
    answer_json(res, 200, doc);
}

/* now in unix ms, started_at in unix seconds: the units of Flussonic's own liveness probe. */
static void get_liveness(vg_node *node, vg_http_response *res) {
    char body[160];
    snprintf(body, sizeof body, "{\"server_version\":\"%s\",\"now\":%lld,\"started_at\":%lld}", VIGIL_VERSION,
             (long long)vg_realtime_ms(), (long long)(node->started_ms / 1000));
    res->status = 200;
    res->content_type = "application/json";
    res->body = strdup(body);
}

/* ---------- routing ---------- */

static int handle(void *ctx, const vg_http_request *req, vg_http_response *res) {
    vg_node *node = ctx;
    int64_t t0 = vg_monotonic_ms();
    if (!authorized(node, req->authorization)) {
        note_refusal(node, req);
        answer_error(res, 401, NULL, "a valid Bearer key is required");
        res->header_name = "WWW-Authenticate";
        res->header_value = "Bearer realm=\"vigil\"";
        return 0;
    }
    int known = 1;
    if (strcmp(req->method, "GET") != 0) {
        answer_error(res, 405, NULL, "only GET is served here");
        res->header_name = "Allow";
        res->header_value = "GET";
    } else if (strcmp(req->path, VG_NODE_API "/episodes") == 0) {
        get_episodes(node, req, res);
    } else if (strcmp(req->path, VG_NODE_API "/streams") == 0) {
        get_streams(node, res);
    } else if (strcmp(req->path, VG_NODE_API "/monitoring/liveness") == 0) {
        get_liveness(node, res);
    } else {
        known = 0;
        answer_error(res, 404, NULL, "no such path");
    }
    vg_debug(WHO, "%s %s: %d in %lld ms%s", req->method, req->path, res->status, (long long)(vg_monotonic_ms() - t0),
             known ? "" : " (unknown path)");
    return 0;
}

/* ---------- start and stop ---------- */

int vg_node_read_key_file(const char *path, char *key, size_t keylen, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *start = line + strspn(line, " \t\r\n");
        size_t n = strlen(start);
        while (n && strchr(" \t\r\n", start[n - 1])) n--;
        if (n && n < keylen) {
            memcpy(key, start, n);
            key[n] = 0;
            found = 1;
        } else if (n) {
            snprintf(err, errlen, "%s: the key is longer than %zu bytes", path, keylen - 1);
            found = -1;
        }
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    if (!found) snprintf(err, errlen, "%s: no key in it (the first non-empty line is the key)", path);
    return found == 1 ? 0 : -1;
}

vg_node *vg_node_start(const vg_node_options *o, char *err, size_t errlen) {
    vg_node *node = calloc(1, sizeof *node);
    node->store = o->store;
    node->list_streams = o->list_streams;
    node->streams_ctx = o->streams_ctx;
    node->started_ms = vg_realtime_ms();
    if (o->api_key && *o->api_key) {
        node->api_key = strdup(o->api_key);
        node->key_len = strlen(node->api_key);
    }
    pthread_mutex_init(&node->lock, NULL);
    char reason[300];
    node->http = vg_http_start(o->listen, handle, node, reason, sizeof reason);
    if (!node->http) {
        snprintf(err, errlen, "node.listen: %s", reason);
        node->store = NULL; /* not ours to end */
        vg_node_stop(node);
        return NULL;
    }
    const char *colon = strrchr(o->listen, ':');
    vg_info(WHO, "serving %s on %.*s:%d, %s", VG_NODE_API, (int)(colon - o->listen), o->listen,
            vg_http_port(node->http), node->api_key ? "Bearer key required" : "no key required");
    return node;
}

int vg_node_port(const vg_node *node) { return vg_http_port(node->http); }

void vg_node_stop(vg_node *node) {
    if (!node) return;
    if (node->store) vg_store_end_queries(node->store);
    vg_http_stop(node->http);
    if (node->api_key) explicit_bzero(node->api_key, node->key_len);
    free(node->api_key);
    pthread_mutex_destroy(&node->lock);
    free(node);
}
