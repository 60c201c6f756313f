/* vg_store.h — the episode store of analytics-node mode: the newest version of every episode of the last
 * keep_for ms, on disk so a restart loses nothing, queryable by updated_at for Central's long polls. */
#ifndef VG_STORE_H
#define VG_STORE_H
#include <stddef.h>
#include <stdint.h>

#include "vg_http.h"
#include "vg_sink.h"

typedef struct vg_store vg_store;

/* Opens (creating) dir and loads what it holds: every <episode_id>.json that is a regular file holding that
 * episode's record (anything else is said once and skipped); keep_for_ms 0 = 24 h. NULL with err on failure. */
vg_store *vg_store_open(const char *dir, int64_t keep_for_ms, char *err, size_t errlen);
void vg_store_close(vg_store *store);
/* The store as a sink: every version put replaces its episode's entry and wakes waiting queries. */
vg_sink *vg_store_sink(vg_store *store);

/* Appends to out a JSON object {"episodes":[...],"estimated_count":N}: the episodes whose newest version
 * has updated_at > after, oldest first, at most limit (0 = 1000; versions with the same updated_at are
 * never split across two answers). When there are none, waits up to timeout_ms for one to arrive. */
void vg_store_query(vg_store *store, int64_t after, int limit, int timeout_ms, vg_buf *out);
long vg_store_count(vg_store *store);
/* For a shutdown: every waiting query answers now and later ones do not wait (puts still work). Call it
 * before stopping the HTTP server whose threads may be waiting, and close the store after that. */
void vg_store_end_queries(vg_store *store);

/* The check of one entry file as vg_store_open loads it (and the fuzz harness): name is
 * "<episode_id>.json", text its len bytes, the record of that episode (vg_version_body_check). 0 with *id
 * and *updated_at, or -1 with why. */
int vg_store_parse_entry(const char *name, const char *text, size_t len, uint64_t *id, int64_t *updated_at,
                         char *why, size_t whylen);

#endif
