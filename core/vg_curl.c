/* vg_curl.c — the one once-guard around curl_global_init (vg_curl.h). */
#include "vg_curl.h"

#include <pthread.h>
#include <stdio.h>

#include <curl/curl.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CURLcode init_result;

static void init_once(void) { init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

int vg_curl_global_init(char *err, size_t errlen) {
    pthread_once(&once, init_once);
    if (init_result == CURLE_OK) return 0;
    snprintf(err, errlen, "cannot initialise libcurl: %s", curl_easy_strerror(init_result));
    return -1;
}
