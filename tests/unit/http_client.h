/* http_client.h — the HTTP client the unit tests of vigil's servers share: one libcurl request to
 * 127.0.0.1:PORT, its status, body and headers, and how long it took. The caller has called
 * curl_global_init and frees each reply with http_reply_free. */
#ifndef VG_TEST_HTTP_CLIENT_H
#define VG_TEST_HTTP_CLIENT_H
#include <curl/curl.h>
#include <stdlib.h>

#include "vg_http.h"
#include "vg_time.h" /* vg_monotonic_ms */

typedef struct http_reply {
    long status;              /* 0 when the request failed */
    vg_buf body;
    vg_buf headers;
    int64_t took_ms;
} http_reply;

static size_t http_collect(char *data, size_t size, size_t n, void *buf) {
    vg_buf_append(buf, data, size * n);
    return size * n;
}

/* method NULL = GET; header: one "Name: value" line to send, or NULL. */
static http_reply http_request_header(int port, const char *method, const char *path, const char *header) {
    http_reply r = {0};
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *headers = header ? curl_slist_append(NULL, header) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (method) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    int64_t t0 = vg_monotonic_ms();
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    r.took_ms = vg_monotonic_ms() - t0;
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return r;
}

/* method NULL = GET; auth NULL = no Authorization header. */
static http_reply http_request(int port, const char *method, const char *path, const char *auth) {
    char header[256];
    if (auth) snprintf(header, sizeof header, "Authorization: %s", auth);
    return http_request_header(port, method, path, auth ? header : NULL);
}

static void http_reply_free(http_reply *r) {
    free(r->body.data);
    free(r->headers.data);
}

#endif
