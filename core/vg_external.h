/* vg_external.h — node.config_external: the streams Flussonic Central hands this node. The list is fetched
 * from {url}/streams ({"streams":[{"name":"cam2","inputs":[{"url":"rtsp://..."}]}]}), and each stream is
 * given a rule by node.stream_scripts (the first entry whose glob matches its name). The result is the
 * wanted set of Central's cameras; the runner reconciles its running cameras with it. */
#ifndef VG_EXTERNAL_H
#define VG_EXTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include "vg_config.h"

/* A stream to analyse: Central's name and input, the stream previews are cut from (or NULL), and the entry that
 * matched it (points into the rules). */
typedef struct vg_external_stream {
    char *name;
    char *url;
    char *preview_url;
    const vg_stream_script *rule;
} vg_external_stream;

/* A stream of the list that is not analysed, and why ("no node.stream_scripts entry matches", ...). */
typedef struct vg_external_skip {
    char *name;               /* "streams[3]" when the entry has no usable name */
    char *reason;
} vg_external_skip;

typedef struct vg_external_list {
    int count;
    vg_external_stream *streams;
    int nskipped;
    vg_external_skip *skipped;
} vg_external_list;

/* The first rule whose glob matches name, or NULL. */
const vg_stream_script *vg_external_match(const vg_stream_script *rules, int nrules, const char *name);

/* Pure: the list in json (the body of {url}/streams) turned into streams and skips. A stream's input is the
 * first rtsp:// or rtsps:// URL of "inputs", else its own "url" (the other inputs are Flussonic's failover
 * sources: never read); its "preview_url", when rtsp:// or rtsps://, is the camera's preview_url (a stream whose
 * preview_url is something else is skipped with that reason). Returns 0, or -1 with a one-line reason
 * when the document as a whole is unusable (not JSON, no "streams" array); out is then empty. */
int vg_external_parse(const char *json, size_t len, const vg_stream_script *rules, int nrules,
                      vg_external_list *out, char *err, size_t errlen);
void vg_external_list_free(vg_external_list *list);

/* ---------- the source: fetches on the caller's thread ---------- */

#define VG_EXTERNAL_TIMEOUT_MS 2000   /* a whole fetch, connect included */

typedef struct vg_external_options {
    const char *url;          /* http(s)://[KEY@]host[:port]/path; the user part is the key */
    const char *key;          /* node.config_external_key, or NULL (the URL's user part then, if any) */
    const vg_stream_script *rules; /* outlive the source */
    int nrules;
    int interval_ms;          /* between fetches; 0 = 5000 */
} vg_external_options;

typedef struct vg_external vg_external;

/* NULL with a one-line reason (a bad URL); the key is never part of it. */
vg_external *vg_external_new(const vg_external_options *o, char *err, size_t errlen);
void vg_external_free(vg_external *x);
/* The URL fetched, without the key: for log lines. */
const char *vg_external_url(const vg_external *x);
/* When the next fetch is due, in vg_monotonic_ms time (now at first). */
int64_t vg_external_due_ms(const vg_external *x);
/* Fetches and parses (at most VG_EXTERNAL_TIMEOUT_MS) and schedules the next fetch. Returns 1 when the list
 * differs from the one before (or is the first), 0 when it is the same, -1 when the fetch failed: the last
 * list is kept. A failure is logged when fetching starts to fail and again when it recovers, not on every
 * attempt; a skipped stream once, until its reason changes. */
int vg_external_fetch(vg_external *x);
/* The list of the last fetch that succeeded (empty before the first). */
const vg_external_list *vg_external_last(const vg_external *x);

/* The cameras for the runner's reconcile, from the last list: each stream with the rule that matched it and
 * config's "defaults" (no zones). A stream named like a camera of config is left out, the file wins; said
 * once while it lasts. *count of them; free with vg_external_cameras_free. */
vg_config_camera *vg_external_cameras(vg_external *x, const vg_config *config, int *count);
void vg_external_cameras_free(vg_config_camera *cams, int count);

#endif
