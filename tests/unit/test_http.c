/* test_http.c — the HTTP server over a real loopback socket: routing, query arguments, the
 * Authorization header, 404, bad listen addresses, and a buffer that grows. */
#include <curl/curl.h>
#include <stdlib.h>

#include "check.h"
#include "http_client.h"
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

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char err[256];
    vg_http_server *s = vg_http_start("127.0.0.1:0", handler, NULL, err, sizeof err);
    CHECK(s != NULL);
    if (!s) return CHECK_DONE();
    int port = vg_http_port(s);
    CHECK(port > 0);

    http_reply f = http_request(port, NULL, "/echo?name=cam%201", "Bearer k");
    CHECK_INT(f.status, 200);
    CHECK_STR(f.body.data, "GET /echo name=cam 1 auth=Bearer k");
    http_reply_free(&f);
    f = http_request(port, NULL, "/echo", NULL);
    CHECK_INT(f.status, 400);
    CHECK_STR(f.body.data, "GET /echo name=- auth=-");
    http_reply_free(&f);
    f = http_request(port, NULL, "/nowhere", NULL);
    CHECK_INT(f.status, 404);
    http_reply_free(&f);
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
