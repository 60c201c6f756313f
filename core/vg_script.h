/* vg_script.h — a camera's Lua rule: one LuaJIT state running a user script in a sandbox, its callbacks
 * under a time budget, and the episode operations it asks for applied as one transaction per callback.
 * The rest of core/ sees only this interface; Lua internals stay in vg_script.c and lua/. */
#ifndef VG_SCRIPT_H
#define VG_SCRIPT_H
#include <stddef.h>

#include "vg_episode.h"
#include "vg_frame.h"

typedef struct vg_script vg_script;

/* Where a preview crop (ep:preview, offer_preview) is cut from when the camera has a better picture of the
 * frame's instant than the analysed one (its preview_url): fills picture with a new reference (the caller
 * unrefs it) and *shown_ts with that picture's time (unix ms), and returns 0; -1 to cut from frame->full. It may
 * wait (the camera bounds it) without spending the calling thread's CPU time, so the rule's budget is not spent. */
typedef int (*vg_preview_picture_fn)(void *ctx, const vg_frame *frame, AVFrame *picture, int64_t *shown_ts);

typedef struct vg_script_config {
    const char *camera;      /* name in log lines */
    const char *path;        /* the rule's .lua file */
    const char *params_json; /* vigil.params, a JSON object (NULL = {}) */
    const char *zones_json;  /* vigil.zones: {"name": [[x, y], ...]} (NULL = {}); seen as name -> {{x=, y=}, ...} */
    double budget_ms;        /* per callback; 0 = VG_BUDGET_MS_DEFAULT */
    int unsafe;              /* give the script ffi, io, os and the real require */
    int jit;                 /* let the JIT compile user code (a runaway loop can then not be cut) */
    int watch;               /* hot reload: watch the rule's directory for changed .lua files */
    vg_preview_picture_fn preview_picture; /* NULL: crops come from frame->full */
    void *preview_ctx;
} vg_script_config;

/* Compiles and starts the script (runs its main chunk and on_start). NULL with err on failure; err names
 * the file and line for syntax errors. */
vg_script *vg_script_load(const vg_script_config *config, vg_episode_book *book, char *err, size_t errlen);
void vg_script_free(vg_script *script);

/* Each returns 0 when the callback ran to the end (or the rule is retired: nothing runs), -1 when it failed or
 * was cut (already logged). */
int vg_script_on_frame(vg_script *script, vg_frame *frame);
int vg_script_on_stream(vg_script *script, const char *event);
int vg_script_on_stop(vg_script *script);

/* Between frames: when a .lua file beside the rule changed, compiles and starts the new version in a new
 * state; on success swaps it in (open episodes and vigil.keep carry over; the new version's
 * on_reload(keep) runs, else its on_start) and returns 1; on failure logs file:line, keeps the running
 * version and returns -1; 0 when nothing changed. */
int vg_script_poll_reload(vg_script *script);

typedef struct vg_script_stats {
    long calls, errors, budget_cuts, reloads, reload_failures;
    long memory_cuts;   /* callbacks that ran into the rule's memory cap */
    double total_ms;    /* CPU time in the rule's callbacks */
    char retired[192];  /* why the rule was retired ("" while it runs): the camera goes on without a rule
                           until its file changes */
} vg_script_stats;
void vg_script_get_stats(const vg_script *script, vg_script_stats *out);

/* Where the bundled lua/ directory is (VIGIL_LUA_DIR, next to the binary, the source tree, the install). */
const char *vg_script_lua_dir(void);

#endif
