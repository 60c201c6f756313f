/* test_page.c — core/vg_page.c: the loopback check on every kind of address, the page's Content-Security-Policy
 * (the hashes of the page's one script and one style, recomputed here), and GET / on a real node: served without
 * the key when a key is configured (the API still wants it), to loopback only when none is (a request from
 * this machine's non-loopback address, when it has one, is refused and the API still answers it), 405 for
 * another method, and the stream field the page reads (last_frame_at). */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/base64.h>
#include <libavutil/mem.h>
#include <libavutil/sha.h>

#include "check.h"
#include "http_client.h"
#include "vg_node.h"
#include "vg_page.h"

#define KEY "page-Key-1"

extern const unsigned char vg_page_html[];
extern const size_t vg_page_html_len;

static struct sockaddr_in v4(const char *text) {
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, text, &a.sin_addr);
    return a;
}

static struct sockaddr_in6 v6(const char *text) {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, text, &a.sin6_addr);
    return a;
}

static int loopback4(const char *text) {
    struct sockaddr_in a = v4(text);
    return vg_page_loopback((struct sockaddr *)&a);
}

static int loopback6(const char *text) {
    struct sockaddr_in6 a = v6(text);
    return vg_page_loopback((struct sockaddr *)&a);
}

static void test_loopback(void) {
    CHECK(loopback4("127.0.0.1"));
    CHECK(loopback4("127.255.0.9"));
    CHECK(!loopback4("128.0.0.1"));
    CHECK(!loopback4("10.0.0.127"));
    CHECK(!loopback4("192.0.2.2"));
    CHECK(!loopback4("0.0.0.0"));
    CHECK(loopback6("::1"));
    CHECK(loopback6("::ffff:127.0.0.1"));
    CHECK(!loopback6("::ffff:10.0.0.1"));
    CHECK(!loopback6("::"));
    CHECK(!loopback6("fe80::1"));
    CHECK(!loopback6("::2"));
    struct sockaddr unix_like = {.sa_family = AF_UNIX};
    CHECK(!vg_page_loopback(&unix_like));
    CHECK(!vg_page_loopback(NULL));
}

/* "'sha256-...'" of the text between <tag> and </tag>, computed here with libavutil as a browser would. */
static void expected_hash(const char *tag, char *out, size_t outlen) {
    char open[16], close[16];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *page = (const char *)vg_page_html;
    const char *a = strstr(page, open), *b = a ? strstr(a, close) : NULL;
    CHECK(a && b);
    if (!a || !b) return;
    a += strlen(open);
    CHECK(!strstr(b + 1, open)); /* one element of each: the hash covers the only one */
    uint8_t digest[32];
    char b64[AV_BASE64_SIZE(32)];
    struct AVSHA *sha = av_sha_alloc();
    av_sha_init(sha, 256);
    av_sha_update(sha, (const uint8_t *)a, (size_t)(b - a));
    av_sha_final(sha, digest);
    av_free(sha);
    av_base64_encode(b64, sizeof b64, digest, sizeof digest);
    snprintf(out, outlen, "'sha256-%s'", b64);
}

static void test_policy(void) {
    CHECK_INT(strlen((const char *)vg_page_html), vg_page_html_len); /* the whole page, NUL-terminated */
    CHECK(vg_page_html_len > 1000 && strncmp((const char *)vg_page_html, "<!doctype html>", 15) == 0);
    const char *policy = vg_page_policy();
    char script[80] = "", style[80] = "", want[200];
    expected_hash("script", script, sizeof script);
    expected_hash("style", style, sizeof style);
    snprintf(want, sizeof want, "script-src %s;", script);
    CHECK(strstr(policy, want) != NULL);
    snprintf(want, sizeof want, "style-src %s;", style);
    CHECK(strstr(policy, want) != NULL);
    CHECK(strstr(policy, "default-src 'none'") && strstr(policy, "connect-src 'self'") &&
          strstr(policy, "img-src data:"));
    CHECK(!strstr(policy, "unsafe"));
    CHECK(vg_page_policy() == policy); /* built once */
    char hash[VG_PAGE_CSP_HASH_SIZE];
    CHECK_INT(vg_page_csp_hash("", 0, hash, sizeof hash), 0); /* SHA-256 of nothing, a known value */
    CHECK_STR(hash, "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='");
    /* nothing from elsewhere: no URL in the page */
    CHECK(!strstr((const char *)vg_page_html, "http:") && !strstr((const char *)vg_page_html, "https:"));
}

static int has_header(const http_reply *r, const char *line) {
    return r->headers.data && strcasestr(r->headers.data, line) != NULL;
}

static void check_page(http_reply *r) {
    CHECK_INT(r->status, 200);
    CHECK(has_header(r, "Content-Type: text/html; charset=utf-8"));
    CHECK(has_header(r, "Content-Security-Policy: default-src 'none'"));
    CHECK_INT(r->body.len, vg_page_html_len);
    CHECK(r->body.data && memcmp(r->body.data, vg_page_html, vg_page_html_len) == 0);
}

static void one_stream(void *ctx, vg_node_emit emit, void *emit_ctx) {
    vg_node_stream s = {.name = "door", .url = "rtsp://cam/1", .state = "up", .clock = "rtcp", .frames = 10,
                        .last_frame_at = *(int64_t *)ctx};
    emit(emit_ctx, &s);
}

static void test_keyed_node(vg_store *st) {
    char err[256];
    int64_t last = 1795981085358;
    vg_node *node = vg_node_start(&(vg_node_options){.listen = "127.0.0.1:0", .api_key = KEY, .store = st,
                                                     .list_streams = one_stream, .streams_ctx = &last},
                                  err, sizeof err);
    CHECK(node != NULL);
    if (!node) return;
    int port = vg_node_port(node);
    http_reply r = http_request(port, "GET", "/", NULL); /* the page: no key needed, it holds no data */
    check_page(&r);
    http_reply_free(&r);
    r = http_request(port, "GET", "/?anything=1", "Bearer wrong");
    check_page(&r);
    http_reply_free(&r);
    r = http_request(port, "POST", "/", NULL);
    CHECK_INT(r.status, 405);
    CHECK(has_header(&r, "Allow: GET"));
    http_reply_free(&r);
    r = http_request(port, "GET", VG_NODE_API "/streams", NULL); /* the API as before */
    CHECK_INT(r.status, 401);
    http_reply_free(&r);
    r = http_request(port, "GET", "/index.html", "Bearer " KEY);
    CHECK_INT(r.status, 404);
    http_reply_free(&r);
    r = http_request(port, "GET", VG_NODE_API "/streams", "Bearer " KEY);
    CHECK(r.body.data && strstr(r.body.data, "\"last_frame_at\":1795981085358"));
    http_reply_free(&r);
    last = 0; /* before the first frame */
    r = http_request(port, "GET", VG_NODE_API "/streams", "Bearer " KEY);
    CHECK(r.body.data && strstr(r.body.data, "\"last_frame_at\":null"));
    http_reply_free(&r);
    vg_node_stop(node);
}

/* This machine's first IPv4 address that is not loopback, or 0. */
static int outside_address(char *out, size_t outlen) {
    struct ifaddrs *list, *i;
    int found = 0;
    if (getifaddrs(&list) != 0) return 0;
    for (i = list; i && !found; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && !vg_page_loopback(i->ifa_addr))
            found = inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out, (socklen_t)outlen) != NULL;
    freeifaddrs(list);
    return found;
}

static long status_via(const char *host, int port, const char *path) {
    char url[256];
    long status = 0;
    snprintf(url, sizeof url, "http://%s:%d%s", host, port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_collect);
    vg_buf body = {0};
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    free(body.data);
    return status;
}

static void test_open_node(vg_store *st) {
    char err[256], outside[INET_ADDRSTRLEN];
    vg_node *node = vg_node_start(&(vg_node_options){.listen = "0.0.0.0:0", .store = st}, err, sizeof err);
    CHECK(node != NULL);
    if (!node) return;
    int port = vg_node_port(node);
    http_reply r = http_request(port, "GET", "/", NULL);
    check_page(&r);
    http_reply_free(&r);
    CHECK_INT(status_via("127.0.0.2", port, "/"), 200); /* all of 127/8 is loopback */
    if (outside_address(outside, sizeof outside)) {
        CHECK_INT(status_via(outside, port, "/"), 403);
        CHECK_INT(status_via(outside, port, "/"), 403);                       /* said once, refused always */
        CHECK_INT(status_via(outside, port, VG_NODE_API "/monitoring/liveness"), 200); /* Central's API: as before */
    } else {
        printf("no non-loopback IPv4 address: the refusal is checked on vg_page_loopback only\n");
    }
    vg_node_stop(node);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_loopback();
    test_policy();
    char dir[] = "/tmp/vigil-test-page-XXXXXX", err[256];
    if (!mkdtemp(dir)) return 1;
    vg_store *st = vg_store_open(dir, 0, err, sizeof err);
    CHECK(st != NULL);
    if (st) {
        test_keyed_node(st);
        test_open_node(st);
        vg_store_close(st);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    curl_global_cleanup();
    return CHECK_DONE();
}
