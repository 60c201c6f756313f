/* vg_node.c — the analytics-node API (interface in vg_node.h): routing, the Bearer check (constant time),
 * query parameters checked with a one-line JSON error naming the one at fault, the three answers, and the
 * waker: one thread that answers every waiting long poll when a newer version is stored or its time is up.
 * Errors follow Central's own shape: {"errors":[{"status":"400","title":"...","source":{"parameter":"..."}}]}.
 * The key lives only in this object's memory; no log line carries it or the Authorization header. */
#include "vg_node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "vg_file.h"
#include "vg_http.h"
#include "vg_log.h"
#include "vg_page.h"
#include "vg_snowflake.h"
#include "vg_time.h"

#define WHO "node"
#define AUTH_WARN_EVERY_MS 60000
#define RECHECK_MS 100 /* how soon the waker looks at a long poll its current wait on the store does not cover */

/* A long poll set aside until a version newer than after is stored or its poll_timeout is up. */
typedef struct long_poll {
    vg_http_later *later;
    int64_t after;
    int limit;
    int64_t deadline_ms;          /* monotonic */
    struct long_poll *next;
} long_poll;

struct vg_node {
    vg_http_server *http;
    vg_store *store;
    char *api_key;                /* NULL: no key checked */
    size_t key_len;
    vg_node_list_streams list_streams;
    void *streams_ctx;
    int64_t started_ms;
    pthread_mutex_t lock;         /* the refusal counter and the long polls below */
    long refused;
    vg_log_limit refusal_said;
    long_poll *polls;             /* waiting */
    int stopping;                 /* vg_node_stop: every poll answers now */
    int store_ended;              /* the store's queries were ended: no poll waits any more */
    pthread_cond_t polls_added;
    pthread_t waker;
    int waker_started;
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

/* Without a key, only requests addressed to an IP address or localhost are answered: a web page elsewhere that
 * points a name of its own at 127.0.0.1 (DNS rebinding) sends its name as Host, and a browser then lets it read
 * the answers. No Host (HTTP/1.0) is addressed to whatever the client connected to. */
static int addressed_by_address(const char *host) {
    if (!host) return 1;
    char name[256];
    size_t len = strcspn(host, host[0] == '[' ? "]" : ":");
    if (host[0] == '[') return host[len] == ']'; /* an IPv6 literal */
    if (len == 0 || len >= sizeof name) return 0;
    memcpy(name, host, len);
    name[len] = 0;
    struct in_addr addr;
    return strcasecmp(name, "localhost") == 0 || inet_pton(AF_INET, name, &addr) == 1;
}

static int host_allowed(const vg_node *node, const vg_http_request *req) {
    return node->api_key || addressed_by_address(req->host);
}

/* One warn line for the first refusal and then at most one a minute, with the count: a client with a wrong
 * key must not flood the log. */
static void note_refusal(vg_node *node, const vg_http_request *req, const char *why) {
    pthread_mutex_lock(&node->lock);
    long n = ++node->refused;
    int64_t now = vg_monotonic_ms();
    long held;
    int say = vg_log_limit_pass(&node->refusal_said, now, AUTH_WARN_EVERY_MS, &held);
    pthread_mutex_unlock(&node->lock);
    if (say)
        vg_warn(WHO, "%s %s refused: %s (%ld refused so far)", req->method, req->path, why, n);
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

/* ---------- long polls ---------- */

/* vg_store_query's answer lists at least one episode. */
static int has_episodes(const vg_buf *out) {
    static const char none[] = "{\"episodes\":[]";
    return out->data && strncmp(out->data, none, sizeof none - 1) != 0;
}

static void episodes_answer(vg_http_response *res, vg_buf *out) {
    res->status = 200;
    res->content_type = "application/json";
    res->body = out->data;
    res->body_len = out->len;
}

/* Sets the request aside for the waker; 0 when no poll may wait any more (the caller answers now). */
static int wait_for_newer(vg_node *node, const vg_http_request *req, int64_t after, int limit, double poll_s) {
    long_poll *p = malloc(sizeof *p);
    if (!p) return 0;
    pthread_mutex_lock(&node->lock);
    int answer_now = node->stopping || node->store_ended;
    if (!answer_now) {
        *p = (long_poll){.later = vg_http_take(req), .after = after, .limit = limit,
                         .deadline_ms = vg_monotonic_ms() + lround(poll_s * 1000), .next = node->polls};
        node->polls = p;
        pthread_cond_signal(&node->polls_added);
    }
    pthread_mutex_unlock(&node->lock);
    if (answer_now) free(p);
    return !answer_now;
}

/* Answers (and drops from the list) every poll that has something newer, is out of time, or meets a stop. */
static void answer_ready(vg_node *node, int64_t now) {
    long_poll **at = &node->polls;
    while (*at) {
        long_poll *p = *at;
        vg_buf out = {0};
        vg_store_query(node->store, p->after, p->limit, 0, &out);
        if (!has_episodes(&out) && now < p->deadline_ms && !node->stopping && !node->store_ended) {
            free(out.data);
            at = &p->next;
            continue;
        }
        *at = p->next;
        vg_http_response res = {0};
        episodes_answer(&res, &out);
        vg_http_answer(p->later, &res);
        free(p);
    }
}

/* The store wait that covers the polls: newer than the oldest updated_at_gt, until the first deadline, and
 * never longer than RECHECK_MS (a poll added meanwhile may need an earlier wake). */
static void watch_window(const vg_node *node, int64_t now, int64_t *after, int *wait_ms) {
    *after = INT64_MAX;
    int64_t first = now + RECHECK_MS;
    for (const long_poll *p = node->polls; p; p = p->next) {
        if (p->after < *after) *after = p->after;
        if (p->deadline_ms < first) first = p->deadline_ms;
    }
    *wait_ms = first > now ? (int)(first - now) : 1;
}

/* Waits on the store for a version newer than after, wait_ms at most. 1 when it answered early with nothing:
 * it does that only when its queries were ended (vg_store_end_queries) or it is closing. */
static int store_wait(vg_store *store, int64_t after, int wait_ms) {
    vg_buf out = {0};
    int64_t t0 = vg_monotonic_ms();
    vg_store_query(store, after, 1, wait_ms, &out);
    int ended = !has_episodes(&out) && vg_monotonic_ms() - t0 < wait_ms - 1; /* - 1: whole ms on both clocks */
    free(out.data);
    return ended;
}

/* The waker: sleeps while no poll waits; else waits on the store (whose every put wakes it) and answers. */
static void *wake_polls(void *arg) {
    vg_node *node = arg;
    pthread_mutex_lock(&node->lock);
    while (!node->stopping || node->polls) {
        if (!node->polls) {
            pthread_cond_wait(&node->polls_added, &node->lock);
            continue;
        }
        answer_ready(node, vg_monotonic_ms());
        if (!node->polls) continue;
        int64_t after;
        int wait_ms;
        watch_window(node, vg_monotonic_ms(), &after, &wait_ms);
        pthread_mutex_unlock(&node->lock);
        int ended = store_wait(node->store, after, wait_ms);
        pthread_mutex_lock(&node->lock);
        if (ended) node->store_ended = 1;
    }
    pthread_mutex_unlock(&node->lock);
    return NULL;
}

/* ---------- the three answers ---------- */

static int get_episodes(vg_node *node, const vg_http_request *req, vg_http_response *res) {
    long long after = 0, limit = 0;
    double poll_s = 0;
    if (integer_parameter(req, res, "updated_at_gt", 0, INT64_MAX, &after) < 0 ||
        seconds_parameter(req, res, "poll_timeout", VG_NODE_MAX_POLL_S, &poll_s) < 0 ||
        integer_parameter(req, res, "limit", 1, VG_NODE_MAX_LIMIT, &limit) < 0)
        return 0;
    vg_buf out = {0};
    vg_store_query(node->store, (int64_t)after, (int)limit, 0, &out);
    if (poll_s > 0 && !has_episodes(&out) && wait_for_newer(node, req, (int64_t)after, (int)limit, poll_s)) {
        free(out.data);
        return VG_HTTP_LATER;
    }
    episodes_answer(res, &out);
    return 0;
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
    if (s->last_frame_at > 0) cJSON_AddNumberToObject(item, "last_frame_at", (double)s->last_frame_at);
    else cJSON_AddNullToObject(item, "last_frame_at");
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
    if (!host_allowed(node, req)) {
        note_refusal(node, req, "addressed to a name (Host header), not an IP address, on a node without a key");
        answer_error(res, 403, NULL, "without node.api_key this node answers requests addressed to an IP address or "
                                     "localhost only (Host header)");
        return 0;
    }
    if (vg_page_wanted(req)) { /* the page holds no data: the key guards the API it reads */
        vg_page_answer(req, node->api_key != NULL, res);
        vg_debug(WHO, "%s %s: %d", req->method, req->path, res->status);
        return 0;
    }
    if (!authorized(node, req->authorization)) {
        note_refusal(node, req, req->authorization ? "wrong Bearer key" : "no Bearer key");
        answer_error(res, 401, NULL, "a valid Bearer key is required");
        res->header_name = "WWW-Authenticate";
        res->header_value = "Bearer realm=\"vigil\"";
        return 0;
    }
    int known = 1, rc = 0;
    if (strcmp(req->method, "GET") != 0) {
        answer_error(res, 405, NULL, "only GET is served here");
        res->header_name = "Allow";
        res->header_value = "GET";
    } else if (strcmp(req->path, VG_NODE_API "/episodes") == 0) {
        rc = get_episodes(node, req, res);
    } else if (strcmp(req->path, VG_NODE_API "/streams") == 0) {
        get_streams(node, res);
    } else if (strcmp(req->path, VG_NODE_API "/monitoring/liveness") == 0) {
        get_liveness(node, res);
    } else {
        known = 0;
        answer_error(res, 404, NULL, "no such path");
    }
    if (rc == VG_HTTP_LATER) vg_debug(WHO, "%s %s: waits for a newer version", req->method, req->path);
    else
        vg_debug(WHO, "%s %s: %d in %lld ms%s", req->method, req->path, res->status,
                 (long long)(vg_monotonic_ms() - t0), known ? "" : " (unknown path)");
    return rc;
}

/* ---------- start and stop ---------- */

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
    pthread_cond_init(&node->polls_added, NULL);
    char reason[300];
    node->waker_started = pthread_create(&node->waker, NULL, wake_polls, node) == 0;
    vg_http_options http = {.listen = o->listen, .name = WHO, .handler = handle, .ctx = node,
                            .max_connections = VG_NODE_MAX_CONNECTIONS, .max_per_client = VG_NODE_MAX_PER_CLIENT,
                            .threads = VG_NODE_THREADS};
    node->http = node->waker_started ? vg_http_serve(&http, reason, sizeof reason) : NULL;
    if (!node->waker_started) snprintf(reason, sizeof reason, "cannot start a thread");
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
    pthread_mutex_lock(&node->lock);
    node->stopping = 1;
    pthread_cond_broadcast(&node->polls_added);
    pthread_mutex_unlock(&node->lock);
    if (node->store) vg_store_end_queries(node->store);
    if (node->waker_started) pthread_join(node->waker, NULL); /* it answers every waiting poll first */
    vg_http_stop(node->http);
    if (node->api_key) explicit_bzero(node->api_key, node->key_len);
    free(node->api_key);
    pthread_mutex_destroy(&node->lock);
    pthread_cond_destroy(&node->polls_added);
    free(node);
}
