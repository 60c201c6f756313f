/* vg_page.c — the node's live page (interface in vg_page.h): who may have it, the answer, and the
 * Content-Security-Policy made from the hashes of the page's inline script and style. The page's text is
 * web/node.html, turned into the byte array vg_page_html by CMakeLists.txt at configure time (which runs
 * again whenever the file changes). */
#include "vg_page.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/base64.h>
#include <libavutil/mem.h>
#include <libavutil/sha.h>
#include <microhttpd.h>

#include "vg_log.h"

#define WHO "node"

extern const unsigned char vg_page_html[]; /* generated from web/node.html */
extern const size_t vg_page_html_len;

/* ---------- who may have it ---------- */

int vg_page_loopback(const struct sockaddr *addr) {
    if (!addr) return 0;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

/* The connection's peer (vg_http hands the request's MHD connection to its handlers). */
static const struct sockaddr *client_address(const vg_http_request *req) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info ? info->client_addr : NULL;
}

static void address_text(const struct sockaddr *addr, char *out, size_t outlen) {
    snprintf(out, outlen, "an unknown address");
    if (addr && addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, out, (socklen_t)outlen);
    else if (addr && addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, out, (socklen_t)outlen);
}

/* The first refusal is a warn line saying why (a user opening the page from another machine); later ones are
 * debug lines: a scanner must not flood the log. */
static void note_refusal(const struct sockaddr *addr) {
    static atomic_int said;
    char who[INET6_ADDRSTRLEN + 32];
    address_text(addr, who, sizeof who);
    if (atomic_exchange(&said, 1) == 0)
        vg_warn(WHO, "GET %s from %s refused: without node.api_key the page is served to loopback clients only",
                VG_PAGE_PATH, who);
    else
        vg_debug(WHO, "GET %s from %s refused (no node key: loopback only)", VG_PAGE_PATH, who);
}

/* ---------- the policy ---------- */

static char policy[512];
static pthread_once_t policy_once = PTHREAD_ONCE_INIT;

int vg_page_csp_hash(const void *data, size_t len, char *out, size_t outlen) {
    struct AVSHA *sha = av_sha_alloc();
    if (!sha || av_sha_init(sha, 256) < 0) {
        snprintf(out, outlen, "'none'");
        av_free(sha);
        return -1;
    }
    uint8_t digest[32];
    char b64[AV_BASE64_SIZE(sizeof digest)];
    av_sha_update(sha, data, len);
    av_sha_final(sha, digest);
    av_free(sha);
    av_base64_encode(b64, sizeof b64, digest, sizeof digest);
    snprintf(out, outlen, "'sha256-%s'", b64);
    return 0;
}

/* The hash of the text between <tag> and </tag> (the page's only such element), or "'none'". */
static void element_hash(const char *page, const char *tag, char *out, size_t outlen) {
    char open[16], close[16];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *start = strstr(page, open), *end = start ? strstr(start, close) : NULL;
    if (!start || !end) {
        snprintf(out, outlen, "'none'");
        return;
    }
    start += strlen(open);
    vg_page_csp_hash(start, (size_t)(end - start), out, outlen);
}

static void make_policy(void) {
    char script[VG_PAGE_CSP_HASH_SIZE], style[VG_PAGE_CSP_HASH_SIZE];
    element_hash((const char *)vg_page_html, "script", script, sizeof script);
    element_hash((const char *)vg_page_html, "style", style, sizeof style);
    snprintf(policy, sizeof policy,
             "default-src 'none'; script-src %s; style-src %s; img-src data:; connect-src 'self'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
             script, style);
}

const char *vg_page_policy(void) {
    pthread_once(&policy_once, make_policy);
    return policy;
}

/* ---------- the answer ---------- */

int vg_page_wanted(const vg_http_request *req) { return strcmp(req->path, VG_PAGE_PATH) == 0; }

static void answer_text(vg_http_response *res, int status, const char *text) {
    res->status = status;
    res->content_type = "text/plain; charset=utf-8";
    res->body = strdup(text);
}

void vg_page_answer(const vg_http_request *req, int key_required, vg_http_response *res) {
    if (strcmp(req->method, "GET") != 0) {
        answer_text(res, 405, "only GET is served here\n");
        res->header_name = "Allow";
        res->header_value = "GET";
        return;
    }
    const struct sockaddr *client = client_address(req);
    if (!key_required && !vg_page_loopback(client)) {
        note_refusal(client);
        answer_text(res, 403, "this node has no API key (node.api_key): its page is served to loopback clients "
                              "only\n");
        return;
    }
    res->status = 200;
    res->content_type = "text/html; charset=utf-8";
    res->body = malloc(vg_page_html_len);
    if (!res->body) {
        res->status = 503; /* an empty answer: no memory for the page now */
        return;
    }
    memcpy(res->body, vg_page_html, vg_page_html_len);
    res->body_len = vg_page_html_len;
    res->header_name = "Content-Security-Policy";
    res->header_value = vg_page_policy();
}
