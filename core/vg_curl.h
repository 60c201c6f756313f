/* vg_curl.h — libcurl's process-wide setup, done once for every part of vigil that makes HTTP requests (the
 * Central sink, node.config_external), whichever thread gets there first. */
#ifndef VG_CURL_H
#define VG_CURL_H
#include <stddef.h>

/* curl_global_init, the first time only (thread-safe). 0, or -1 with err (every later call says the same). */
int vg_curl_global_init(char *err, size_t errlen);

#endif
