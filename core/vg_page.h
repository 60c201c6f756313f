/* vg_page.h — the node's live page: GET / on node.listen answers one static HTML page, compiled into the
 * binary from web/node.html, whose script reads the node API from the browser (the Bearer key typed in once,
 * kept in the tab's sessionStorage). The page itself holds no data, so it is served to anyone when a key is
 * configured; without a key only loopback clients get it. It goes out with a Content-Security-Policy that
 * lets only its own script and style run (their SHA-256 hashes) and only the node itself be fetched. */
#ifndef VG_PAGE_H
#define VG_PAGE_H
#include <stddef.h>
#include <sys/socket.h>

#include "vg_http.h"

#define VG_PAGE_PATH "/"

/* The request is for the page (its path, whatever the method). */
int vg_page_wanted(const vg_http_request *req);
/* Answers a request vg_page_wanted accepted: the page; 405 for a method other than GET; 403 (said in the log
 * the first time) when key_required is 0 and the client is not on loopback. Runs on an HTTP thread. */
void vg_page_answer(const vg_http_request *req, int key_required, vg_http_response *res);

/* 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8; 0 for NULL and anything else. */
int vg_page_loopback(const struct sockaddr *addr);
/* data's hash as a Content-Security-Policy source, "'sha256-BASE64'" (VG_PAGE_CSP_HASH_SIZE bytes hold it):
 * 0, or -1 (no memory) with out "'none'". The node's page and the --report page hash their inline script so. */
#define VG_PAGE_CSP_HASH_SIZE 64
int vg_page_csp_hash(const void *data, size_t len, char *out, size_t outlen);
/* The page's Content-Security-Policy (a static string, built once). */
const char *vg_page_policy(void);

#endif
