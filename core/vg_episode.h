/* vg_episode.h — the episode model and its invariants, and the per-camera book of episodes.
 *
 * Changes are staged: a script callback opens, extends, closes and decorates episodes; when the callback
 * returns, vg_book_commit turns every changed episode into one complete version (the whole record, as
 * Central wants it) and hands it to the emit function. When a callback fails, vg_book_rollback drops
 * everything it staged, so a half-made episode never leaves the host.
 *
 * Invariants enforced here: opened_at is set once; every version's updated_at is strictly greater than the
 * previous version's (bumped by 1 ms when the frame time did not advance); closed_at is set once, and an
 * episode accepts no change after close.
 *
 * Close reasons. Central's record has one top-level close_reason value, "timeout" (closed because no activity
 * was detected in it): it is sent for a close for inactivity (vg_episode_time_out, or a close whose reason is
 * "timeout"), never otherwise. The finer reason (quiet, left, shutdown, end_of_stream, reload, ...) goes in
 * payload.close_reason; a time-out without one says "timeout" there too. Every version also carries
 * episode_appearance_timestamps.inference_timestamp: the wall-clock unix ms at which it was made (the ids'
 * clock). */
#ifndef VG_EPISODE_H
#define VG_EPISODE_H
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "vg_snowflake.h"

typedef struct vg_version {
    uint64_t episode_id;
    const char *media;
    int64_t opened_at;
    int64_t updated_at;
    int is_first;   /* the version that opened the episode */
    int is_closing; /* the version that closed it */
    const char *body; /* the complete JSON record */
    size_t body_len;
} vg_version;

typedef void (*vg_emit_fn)(void *ctx, const vg_version *version);

typedef struct vg_episode vg_episode;
typedef struct vg_episode_book vg_episode_book;

vg_episode_book *vg_book_new(const char *media, vg_snowflake *ids, vg_emit_fn emit, void *emit_ctx);
void vg_book_free(vg_episode_book *book);
const char *vg_book_media(const vg_episode_book *book);

/* Staged operations. Each returns the episode / 0 on success, NULL / -1 with a one-line reason in err.
 * Ownership of cJSON arguments passes to the episode, also on failure. */
vg_episode *vg_episode_open(vg_episode_book *book, int64_t ts, const char *episode_type, cJSON *payload,
                            char *err, size_t errlen);
/* 0 when the episode still accepts changes, else -1 with the reason (closed, discarded). */
int vg_episode_check_mutable(const vg_episode *ep, char *err, size_t errlen);
int vg_episode_extend(vg_episode *ep, int64_t ts, char *err, size_t errlen);
/* close_reason (may be NULL) goes to payload.close_reason; "timeout" makes it a time-out. */
int vg_episode_close(vg_episode *ep, int64_t ts, const char *close_reason, char *err, size_t errlen);
/* A close for inactivity: top-level close_reason "timeout", the finer reason (may be NULL) in the payload. */
int vg_episode_time_out(vg_episode *ep, int64_t ts, const char *close_reason, char *err, size_t errlen);
int vg_episode_set_type(vg_episode *ep, const char *episode_type, char *err, size_t errlen);
int vg_episode_set_payload(vg_episode *ep, cJSON *payload, char *err, size_t errlen);
int vg_episode_set_detections(vg_episode *ep, cJSON *detections, char *err, size_t errlen);
/* base64 JPEG (taken), the frame time it shows, how much later (negative: earlier) its picture was taken when
 * that is another stream's nearest picture (0: the same instant; sent as payload.preview_offset_ms), and the
 * rule's score for it (to keep the best one). */
int vg_episode_set_preview(vg_episode *ep, char *preview_b64, int64_t shown_at, int64_t offset_ms, double score,
                           char *err, size_t errlen);
int vg_episode_set_frame_preview(vg_episode *ep, char *preview_b64, int64_t shown_at, char *err,
                                 size_t errlen);

/* The staged view: what the script sees, including its own uncommitted changes. */
uint64_t vg_episode_id(const vg_episode *ep);
int64_t vg_episode_opened_at(const vg_episode *ep);
int64_t vg_episode_updated_at(const vg_episode *ep); /* as requested; the bump happens at commit */
int64_t vg_episode_closed_at(const vg_episode *ep);  /* 0 while open */
const char *vg_episode_type(const vg_episode *ep);
const cJSON *vg_episode_payload(const vg_episode *ep);
int vg_episode_has_preview(const vg_episode *ep);
double vg_episode_preview_score(const vg_episode *ep);
int vg_episode_is_live(const vg_episode *ep);        /* open, or closing in the current transaction */

/* A script's handle keeps an episode readable after it closed; the book frees it once released. */
void vg_episode_retain(vg_episode *ep);
void vg_episode_release(vg_episode *ep);

/* Emits one version per changed episode; returns how many. A version that cannot be rendered (out of memory)
 * is committed but not emitted: logged and counted in vg_book_unrendered. */
int vg_book_commit(vg_episode_book *book);
long vg_book_unrendered(const vg_episode_book *book);
void vg_book_rollback(vg_episode_book *book);
/* Open episodes (committed or staged), oldest first. */
int vg_book_open_count(const vg_episode_book *book);
vg_episode *vg_book_open_at(vg_episode_book *book, int index);
/* The camera is stopping (its rule's on_stop runs next): from now on a close without a reason is held back
 * until vg_book_close_all, which gives it that call's reason, so an episode a rule closes in on_stop (at its
 * own time) says why the camera stopped, as the ones the host closes do. */
void vg_book_begin_stop(vg_episode_book *book);
/* Closes every open episode at ts with the given reason (those held by vg_book_begin_stop at their own time)
 * and commits. */
int vg_book_close_all(vg_episode_book *book, int64_t ts, const char *close_reason);
/* Builds the JSON record of an episode's committed state (malloc'd; for tests and the pull API). */
char *vg_episode_render(const vg_episode *ep);

#endif
