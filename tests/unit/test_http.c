/* test_http.c — the HTTP server over a real loopback socket: routing, query arguments, the
 * Authorization header, 404, bad listen addresses, and a buffer that grows. */
#include <curl/curl.h>
#include <stdlib.h>

#include "check.h"
#include "vg_http.h"

static int handler(void *ctx, const vg_http_request *req, vg_http_response *res) {
    (void)ctx;
    if (strcmp(req->path, "/echo") != 0) return -1;
    vg_buf b = {0};
    const char *name = vg_http_query(req, "name");
    vg_buf_printf(&b, "%s %s name=%s auth=%s", req->method, req->path, name ? name : "-",
                  req->authorization ? req->authorization : "-");
    res->status = name ? 200 : 400;
    res->body = b.data;
    return 0;
}

typedef struct fetched {
    long status;
    vg_buf body;
} fetched;

static size_t collect(char *data, size_t size, size_t n, void *ctx) {
    vg_buf_append(&((fetched *)ctx)->body, data, size * n);
    return size * n;
}

static fetched fetch(int port, const char *path, const char *auth) {
    fetched f = {0};
    char url[256], header[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *headers = NULL;
    if (auth) {
        snprintf(header, sizeof header, "Authorization: %s", auth);
        headers = curl_slist_append(headers, header);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return f;
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char err[256];
    vg_http_server *s = vg_http_start("127.0.0.1:0", handler, NULL, err, sizeof err);
    CHECK(s != NULL);
    if (!s) return CHECK_DONE();
    int port = vg_http_port(s);
    CHECK(port > 0);

    fetched f = fetch(port, "/echo?name=cam%201", "Bearer k");
    CHECK_INT(f.status, 200);
    CHECK_STR(f.body.data, "GET /echo name=cam 1 auth=Bearer k");
    free(f.body.data);
    f = fetch(port, "/echo", NULL);
    CHECK_INT(f.status, 400);
    CHECK_STR(f.body.data, "GET /echo name=- auth=-");
    free(f.body.data);
    f = fetch(port, "/nowhere", NULL);
    CHECK_INT(f.status, 404);
    free(f.body.data);
    vg_http_stop(s);

    CHECK(vg_http_start("nonsense", handler, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "HOST:PORT") != NULL);
    CHECK(vg_http_start("10.0.0.300:80", handler, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "not an IPv4 address") != NULL);

    vg_buf b = {0};
    for (int i = 0; i < 1000; i++) vg_buf_printf(&b, "line %d\n", i);
    CHECK(b.len > 7000 && strstr(b.data, "line 999\n") != NULL);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    vg_buf_printf(&b, "%s", big);
    CHECK(b.len > 9000 && b.data[b.len - 1] == 'x');
    free(b.data);
    curl_global_cleanup();
    return CHECK_DONE();
}
