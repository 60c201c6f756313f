/* vg_script.c — the Lua host. Owns the LuaJIT state of one camera's rule: loading it through
 * lua/vigil/host.lua (sandbox, no JIT for user code), the "vigil.core" functions the vigil module is built
 * on, episode handles, frame tables, and calling callbacks under a time budget with one episode
 * transaction per callback.
 *
 * Why user code runs with the JIT off: Debian's LuaJIT is built without LUAJIT_ENABLE_CHECKHOOK, so a count
 * hook never fires inside a compiled trace and `while true do end` could not be stopped. Interpreted, the
 * hook fires every VG_HOOK_INSTRUCTIONS instructions and raises an error once the budget is spent; the
 * pixel work is done by C primitives and by the JIT-compiled lua/ module, so little is lost. */
#include "vg_script.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "vg_clock.h" /* vg_clock_source_name */
#include "vg_file.h"
#include "vg_jpeg.h"
#include "vg_log.h"
#include "vg_settings.h"
#include "vg_time.h"

#define VG_HOOK_INSTRUCTIONS 10000
#define VG_LOAD_BUDGET_MS 1000 /* CPU time the rule's top level may take (loading, on every start and reload) */
#define VG_JSON_MAX_DEPTH 32
#define VG_ERROR_LOG_INTERVAL_MS 10000
#define VG_RELOAD_SETTLE_MS 150 /* editors write in bursts: reload once the directory is quiet */
#define VG_RELOAD_TAKEOVER_MS 5000 /* stream time a new version has to take over an episode the old one left
                                      open (extend, change or close it); after it the host closes it */
#define VG_MAX_ORPHANS 64
#define VG_MAX_RULE_FILES 64 /* the rule and the modules it requires that a change of reloads it */
#define VG_RULE_MEMORY_MB 256 /* the Lua heap one rule's state may hold (its tables and strings; frames and
                                 vision models live on the host's side and are not counted) */

static const char *EPISODE_MT = "vigil.episode";

/* Registry keys of what each Lua state holds for the host. Keeping them in the state (not in vg_script)
 * lets a reload build a second state beside the running one. */
#define REG_ENV "vigil.env"             /* the rule's environment table */
#define REG_PAYLOAD_VIEW "vigil.payload_view" /* lua/vigil.lua's ep.payload (a live view) */
#define REG_FRAME_MT "vigil.frame_mt"   /* metatable of frame tables, set by lua/vigil/frame.lua */
#define REG_HANDLES "vigil.handles"     /* weak table: episode pointer -> its userdata */

/* The allocator's account of one Lua state: what it holds, and whether a callback ran into the cap. The cap
 * holds while a callback or the rule's top level runs (an allocation refused there is a Lua error); the host's
 * own pushes between callbacks are never refused, since a refusal outside a protected call would abort. */
typedef struct lua_memory {
    size_t used, cap;
    int enforced, refused;
} lua_memory;

/* An episode open at a reload, and its updated_at then: if that has not moved by the takeover time, the new
 * version did not take it over. */
typedef struct orphan {
    uint64_t id;
    int64_t updated_at;
} orphan;

struct vg_script {
    lua_State *L;        /* the running state */
    orphan orphans[VG_MAX_ORPHANS];
    int norphans;
    int64_t takeover_until; /* stream ms: episodes in orphans not taken over by then are closed */
    char camera[128];
    vg_episode_book *book;
    char *path, *params_json, *zones_json;
    int unsafe, jit;
    int watch_fd;        /* inotify on the rule's files' directories, -1 without --watch */
    char *files[VG_MAX_RULE_FILES]; /* the rule's file and every module it required, as "dir/name" */
    int nfiles;
    struct { int wd; char *dir; } watched[VG_MAX_RULE_FILES];
    int nwatched;
    int64_t change_seen_ms; /* one of the rule's files changed at this time and no reload tried since */
    double budget_ms;
    double running_budget_ms;  /* the budget of what runs now: budget_ms, or VG_LOAD_BUDGET_MS at load */
    struct timespec started;   /* when it began (VG_BUDGET_CLOCK) */
    struct timespec deadline;
    int over_budget;
    vg_frame *frame;       /* the frame of the running on_frame, NULL outside it */
    vg_jpeg *jpeg;         /* preview encoder, made at the first preview */
    vg_preview_picture_fn preview_picture; /* the camera's better picture for crops, or NULL */
    void *preview_ctx;
    int64_t frame_generation;
    int64_t last_ts;
    vg_script_stats stats;
    long reloads, reload_failures;
    int64_t last_error_log_ms;
    long errors_unlogged;
};

/* ---------- where lua/ lives ---------- */

static int has_vigil_module(const char *dir) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/vigil.lua", dir);
    return access(path, R_OK) == 0;
}

/* The directory of the running executable ("" when /proc says nothing). */
static void exe_dir(char *dir, size_t len) {
    ssize_t n = readlink("/proc/self/exe", dir, len - 1);
    dir[n > 0 ? n : 0] = 0;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
}

/* VIGIL_LUA_DIR when set; a binary in this build tree uses the source tree's lua/; an installed one the
 * prefix it sits in (bin/../share/vigil/lua, so a moved install works), then the configured prefix. An
 * installed vigil never reads a source checkout, which may be gone or newer. */
const char *vg_script_lua_dir(void) {
    static char found[PATH_MAX];
    if (found[0]) return found;
    char exe[PATH_MAX];
    exe_dir(exe, sizeof exe);
    int in_build_tree = strncmp(exe, VIGIL_BUILD_DIR, strlen(VIGIL_BUILD_DIR)) == 0;
    char relocated[PATH_MAX + 32];
    snprintf(relocated, sizeof relocated, "%s/../share/vigil/lua", exe);
    const char *candidates[] = {getenv("VIGIL_LUA_DIR"), in_build_tree ? VIGIL_SOURCE_LUA_DIR : NULL, relocated,
                                VIGIL_INSTALL_LUA_DIR};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
        if (candidates[i] && *candidates[i] && has_vigil_module(candidates[i])) {
            snprintf(found, sizeof found, "%s", candidates[i]);
            return found;
        }
    }
    snprintf(found, sizeof found, "%s", VIGIL_INSTALL_LUA_DIR);
    return found;
}

/* ---------- JSON <-> Lua ---------- */

static void push_json(lua_State *L, const cJSON *item);

static void push_json_children(lua_State *L, const cJSON *item, int as_array) {
    lua_newtable(L);
    int i = 1;
    for (const cJSON *c = item->child; c; c = c->next) {
        push_json(L, c);
        if (as_array) lua_rawseti(L, -2, i++);
        else lua_setfield(L, -2, c->string);
    }
}

static void push_json(lua_State *L, const cJSON *item) {
    if (cJSON_IsObject(item)) push_json_children(L, item, 0);
    else if (cJSON_IsArray(item)) push_json_children(L, item, 1);
    else if (cJSON_IsString(item)) lua_pushstring(L, item->valuestring);
    else if (cJSON_IsNumber(item)) lua_pushnumber(L, item->valuedouble);
    else if (cJSON_IsBool(item)) lua_pushboolean(L, cJSON_IsTrue(item));
    else lua_pushnil(L);
}

/* A table is an array when its keys are exactly 1..n with n > 0. */
static int table_is_array(lua_State *L, int idx) {
    size_t n = lua_objlen(L, idx);
    if (n == 0) return 0;
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
    }
    return count == n;
}

/* Turning a rule's value into JSON: where the error goes, and how many more values may come. A table reached
 * twice is written twice, so without a count a small table of shared subtables (t = {t0, t0}, 30 deep) would
 * unfold into billions of values inside one C call. */
typedef struct json_walk {
    char err[160];
    long values_left;
} json_walk;

#define VG_JSON_MAX_VALUES 100000 /* values in one payload or detection list */

static cJSON *to_json(lua_State *L, int idx, int depth, json_walk *w);

/* The byte at which text stops being UTF-8 that JSON can carry (a NUL, a bad or overlong sequence, a
 * surrogate, past U+10FFFF), or -1 when all of it can. Lua strings are bytes: written raw they would make
 * invalid JSON that a strict Central refuses, and a NUL would cut them short. */
static long bad_text_at(const unsigned char *p, size_t len) {
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        if (!c || !n || i + n > len) return (long)i;
        unsigned cp = n == 1 ? c : c & (0x7F >> n);
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return (long)i;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        static const unsigned least[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (long)i;
        i += n;
    }
    return -1;
}

/* A string of the rule's that is to go into an episode; else the Lua error names where it went wrong. */
static const char *check_text(lua_State *L, int idx, const char *what, char *err, size_t errlen) {
    size_t len;
    const char *text = lua_tolstring(L, idx, &len);
    long at = bad_text_at((const unsigned char *)text, len);
    if (at < 0) return text;
    snprintf(err, errlen, "%s: %s at byte %ld of a string (episodes are JSON: UTF-8, no NUL)", what,
             text[at] ? "not UTF-8" : "a NUL", at);
    return NULL;
}

static cJSON *table_to_json(lua_State *L, int idx, int depth, json_walk *w) {
    int array = table_is_array(L, idx);
    cJSON *out = array ? cJSON_CreateArray() : cJSON_CreateObject();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (!array && lua_type(L, -2) != LUA_TSTRING) {
            snprintf(w->err, sizeof w->err, "table keys must be strings (or the table a list)");
            lua_pop(L, 2);
            cJSON_Delete(out);
            return NULL;
        }
        cJSON *value = to_json(L, lua_gettop(L), depth + 1, w);
        if (!value) {
            lua_pop(L, 2);
            cJSON_Delete(out);
            return NULL;
        }
        const char *key = array ? NULL : check_text(L, -2, "a key", w->err, sizeof w->err);
        if (!array && !key) {
            cJSON_Delete(value);
            lua_pop(L, 2);
            cJSON_Delete(out);
            return NULL;
        }
        if (array) cJSON_AddItemToArray(out, value); /* lua_next walks 1..n in order for arrays */
        else cJSON_AddItemToObject(out, key, value);
        lua_pop(L, 1);
    }
    return out;
}

static cJSON *to_json(lua_State *L, int idx, int depth, json_walk *w) {
    if (depth > VG_JSON_MAX_DEPTH) {
        snprintf(w->err, sizeof w->err, "table nested deeper than %d (a cycle?)", VG_JSON_MAX_DEPTH);
        return NULL;
    }
    if (--w->values_left < 0) {
        snprintf(w->err, sizeof w->err, "more than %d values (a table shared many times?)", VG_JSON_MAX_VALUES);
        return NULL;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return cJSON_CreateNull();
    case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TSTRING: {
        const char *text = check_text(L, idx, "a value", w->err, sizeof w->err);
        return text ? cJSON_CreateString(text) : NULL;
    }
    case LUA_TTABLE: return table_to_json(L, idx, depth, w);
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (d != d || d > 1.7e308 || d < -1.7e308) {
            snprintf(w->err, sizeof w->err, "number %g cannot be JSON", d);
            return NULL;
        }
        return cJSON_CreateNumber(d);
    }
    default:
        snprintf(w->err, sizeof w->err, "a %s cannot be JSON", luaL_typename(L, idx));
        return NULL;
    }
}

/* The value at idx as JSON, or a Lua error naming what. */
static cJSON *check_json(lua_State *L, int idx, const char *what) {
    json_walk w = {.values_left = VG_JSON_MAX_VALUES};
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    cJSON *json = to_json(L, idx, 0, &w);
    if (!json) luaL_error(L, "%s: %s", what, w.err);
    return json;
}

/* ---------- the script object from inside Lua ---------- */

static vg_script *script_of(lua_State *L) {
    return (vg_script *)lua_touserdata(L, lua_upvalueindex(1));
}

/* A time argument: a number of unix ms, or a frame table (its ts). */
static int64_t check_ts(lua_State *L, int idx) {
    if (lua_istable(L, idx)) {
        lua_getfield(L, idx, "ts");
        if (!lua_isnumber(L, -1)) luaL_error(L, "bad argument #%d: frame without ts", idx);
        int64_t ts = (int64_t)lua_tonumber(L, -1);
        lua_pop(L, 1);
        return ts;
    }
    if (lua_isnumber(L, idx)) return (int64_t)lua_tonumber(L, idx);
    if (lua_isnoneornil(L, idx)) return script_of(L)->last_ts;
    return luaL_error(L, "bad argument #%d: frame or time in ms expected, got %s", idx, luaL_typename(L, idx));
}

/* ---------- episode handles ---------- */

static void push_episode(lua_State *L, vg_script *s, vg_episode *ep) {
    lua_getfield(L, LUA_REGISTRYINDEX, REG_HANDLES);
    lua_pushlightuserdata(L, ep);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1)) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    vg_episode **handle = lua_newuserdata(L, sizeof *handle);
    *handle = ep;
    vg_episode_retain(ep);
    luaL_getmetatable(L, EPISODE_MT);
    lua_setmetatable(L, -2);
    lua_pushlightuserdata(L, ep);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_remove(L, -2);
}

static vg_episode *check_episode(lua_State *L, int idx) {
    vg_episode **handle = luaL_checkudata(L, idx, EPISODE_MT);
    return *handle;
}

static int raise_if_failed(lua_State *L, int rc, const char *err) {
    if (rc < 0) return luaL_error(L, "%s", err);
    return 0;
}

static int core_open(lua_State *L) {
    vg_script *s = script_of(L);
    int64_t ts = check_ts(L, 1);
    char err[256];
    const char *type = luaL_optstring(L, 2, NULL);
    if (type && !check_text(L, 2, "episode_type", err, sizeof err)) return luaL_error(L, "%s", err);
    cJSON *payload = lua_isnoneornil(L, 3) ? NULL : check_json(L, 3, "payload");
    vg_episode *ep = vg_episode_open(s->book, ts, type, payload, err, sizeof err);
    if (!ep) return luaL_error(L, "%s", err);
    push_episode(L, s, ep);
    return 1;
}

static int episode_extend(lua_State *L) {
    vg_episode *ep = check_episode(L, 1);
    char err[256];
    raise_if_failed(L, vg_episode_extend(ep, check_ts(L, 2), err, sizeof err), err);
    lua_settop(L, 1);
    return 1;
}

/* ep:close(time [, reason]) and ep:time_out(time [, reason]) (closed for inactivity: Central's "timeout"). */
static int close_episode(lua_State *L, int timed_out) {
    vg_episode *ep = check_episode(L, 1);
    char err[256];
    int64_t ts = check_ts(L, 2);
    const char *reason = luaL_optstring(L, 3, NULL);
    if (reason && !check_text(L, 3, "close reason", err, sizeof err)) return luaL_error(L, "%s", err);
    int rc = timed_out ? vg_episode_time_out(ep, ts, reason, err, sizeof err)
                       : vg_episode_close(ep, ts, reason, err, sizeof err);
    raise_if_failed(L, rc, err);
    lua_settop(L, 1);
    return 1;
}

static int episode_close(lua_State *L) { return close_episode(L, 0); }
static int episode_time_out(lua_State *L) { return close_episode(L, 1); }

static int episode_set_payload(lua_State *L) {
    vg_episode *ep = check_episode(L, 1);
    cJSON *payload = lua_isnoneornil(L, 2) ? NULL : check_json(L, 2, "payload");
    char err[256];
    raise_if_failed(L, vg_episode_set_payload(ep, payload, err, sizeof err), err);
    lua_settop(L, 1);
    return 1;
}

static int episode_set_type(lua_State *L) {
    vg_episode *ep = check_episode(L, 1);
    char err[256];
    if (!lua_isnoneornil(L, 2) && lua_type(L, 2) == LUA_TSTRING && !check_text(L, 2, "episode_type", err, sizeof err))
        return luaL_error(L, "%s", err);
    raise_if_failed(L, vg_episode_set_type(ep, luaL_optstring(L, 2, NULL), err, sizeof err), err);
    lua_settop(L, 1);
    return 1;
}

static int episode_set_detections(lua_State *L) {
    vg_episode *ep = check_episode(L, 1);
    cJSON *detections = lua_isnoneornil(L, 2) ? NULL : check_json(L, 2, "detections");
    if (detections && cJSON_IsObject(detections) && !detections->child) { /* {} is the empty list here */
        cJSON_Delete(detections);
        detections = cJSON_CreateArray();
    }
    char err[256];
    raise_if_failed(L, vg_episode_set_detections(ep, detections, err, sizeof err), err);
    lua_settop(L, 1);
    return 1;
}

/* ---------- previews ---------- */

/* The frame argument must be the frame of the on_frame call in progress: previews are cut at once. */
static const vg_frame *check_current_frame(lua_State *L, vg_script *s, int idx) {
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "_generation");
    int current = s->frame && lua_tonumber(L, -1) == (lua_Number)s->frame_generation;
    lua_pop(L, 1);
    if (!current) luaL_error(L, "not the current frame: previews are taken inside the on_frame call that got it");
    if (!s->frame->full) luaL_error(L, "this frame has no picture to cut a preview from");
    return s->frame;
}

/* A box's field: the named one (box.x), else the positional one (box[1]), as lua/ reads boxes. */
static double box_field(lua_State *L, int idx, int pos, const char *name) {
    lua_getfield(L, idx, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_rawgeti(L, idx, pos);
    }
    if (!lua_isnumber(L, -1)) luaL_error(L, "preview: box.%s is %s, a number 0..1 expected", name, luaL_typename(L, -1));
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int opt_int_field(lua_State *L, int idx, const char *name, int fallback) {
    if (!lua_istable(L, idx)) return fallback;
    lua_getfield(L, idx, name);
    int v = lua_isnil(L, -1) ? fallback : (int)luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static double opt_number_field(lua_State *L, int idx, const char *name, double fallback) {
    if (!lua_istable(L, idx)) return fallback;
    lua_getfield(L, idx, name);
    double v = lua_isnil(L, -1) ? fallback : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static vg_jpeg *script_jpeg(lua_State *L, vg_script *s) {
    if (!s->jpeg) s->jpeg = vg_jpeg_new();
    if (!s->jpeg) luaL_error(L, "preview: cannot create the JPEG encoder");
    return s->jpeg;
}

/* The picture a crop of f is cut from: the camera's at f's time when it gives one (*owned, freed by the caller;
 * *shown its time), else f's own (*shown = f->ts). */
static const AVFrame *crop_source(vg_script *s, const vg_frame *f, AVFrame **owned, int64_t *shown) {
    *owned = NULL;
    *shown = f->ts;
    AVFrame *picture = s->preview_picture ? av_frame_alloc() : NULL;
    if (picture && s->preview_picture(s->preview_ctx, f, picture, shown) == 0) return *owned = picture;
    av_frame_free(&picture);
    *shown = f->ts;
    return f->full;
}

/* Encodes (crop or whole frame), then base64; a Lua error naming the bad value on failure. A crop's *shown: the
 * time of the picture cut (it may come from the camera's preview stream, vg_preview_picture_fn); the whole frame
 * is always the analysed one (shown unused, may be NULL). */
static char *encode_preview(lua_State *L, vg_script *s, const vg_frame *f, const vg_box *box, int whole_lines,
                            int max_size, int quality, int64_t *shown) {
    uint8_t *jpeg = NULL;
    size_t len = 0;
    char err[200];
    vg_jpeg *encoder = script_jpeg(L, s);
    AVFrame *owned = NULL;
    const AVFrame *src = whole_lines ? f->full : crop_source(s, f, &owned, shown);
    int rc = whole_lines ? vg_jpeg_frame(encoder, src, whole_lines, quality, &jpeg, &len, NULL, NULL, err, sizeof err)
                         : vg_jpeg_crop(encoder, src, box, max_size, quality, &jpeg, &len, NULL, NULL, err, sizeof err);
    av_frame_free(&owned);
    if (rc < 0) luaL_error(L, "preview: %s", err);
    char *b64 = vg_base64(jpeg, len);
    free(jpeg);
    if (!b64) luaL_error(L, "preview: out of memory");
    return b64;
}

/* ep:preview(frame [, box [, opts]]): a JPEG of box (frame fractions; whole frame when nil) cut from the
 * full-resolution picture. opts: max_size (longest side, default 320), quality (default 80), score. */
static int episode_preview(lua_State *L) {
    vg_script *s = script_of(L);
    vg_episode *ep = check_episode(L, 1);
    const vg_frame *f = check_current_frame(L, s, 2);
    vg_box box = {0, 0, 1, 1};
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        box = (vg_box){box_field(L, 3, 1, "x"), box_field(L, 3, 2, "y"), box_field(L, 3, 3, "w"), box_field(L, 3, 4, "h")};
    }
    int max_size = opt_int_field(L, 4, "max_size", VG_JPEG_DEFAULT_MAX_SIZE);
    int quality = opt_int_field(L, 4, "quality", VG_JPEG_DEFAULT_QUALITY);
    double score = opt_number_field(L, 4, "score", 0);
    char err[256];
    raise_if_failed(L, vg_episode_check_mutable(ep, err, sizeof err), err); /* before spending an encode */
    int64_t shown;
    char *b64 = encode_preview(L, s, f, &box, 0, max_size, quality, &shown);
    raise_if_failed(L, vg_episode_set_preview(ep, b64, f->ts, shown - f->ts, score, err, sizeof err), err);
    lua_settop(L, 1);
    return 1;
}

/* ep:frame_preview(frame [, opts]): the whole frame at about opts.lines (default 240) lines. */
static int episode_frame_preview(lua_State *L) {
    vg_script *s = script_of(L);
    vg_episode *ep = check_episode(L, 1);
    const vg_frame *f = check_current_frame(L, s, 2);
    int lines = opt_int_field(L, 3, "lines", VG_JPEG_DEFAULT_LINES);
    int quality = opt_int_field(L, 3, "quality", VG_JPEG_DEFAULT_QUALITY);
    char err[256];
    raise_if_failed(L, vg_episode_check_mutable(ep, err, sizeof err), err);
    char *b64 = encode_preview(L, s, f, NULL, lines, 0, quality, NULL);
    raise_if_failed(L, vg_episode_set_frame_preview(ep, b64, f->ts, err, sizeof err), err);
    lua_settop(L, 1);
    return 1;
}

static void push_time_or_nil(lua_State *L, int64_t ms) {
    if (ms) lua_pushnumber(L, (lua_Number)ms);
    else lua_pushnil(L);
}

/* core.payload(ep): a copy of the episode's payload as a Lua table (nil when it has none). */
static int episode_payload_copy(lua_State *L) {
    const cJSON *payload = vg_episode_payload(check_episode(L, 1));
    if (payload) push_json(L, payload);
    else lua_pushnil(L);
    return 1;
}

static int episode_index(lua_State *L) {
    vg_episode *ep = check_episode(L, 1);
    const char *key = luaL_checkstring(L, 2);
    char idtext[VG_ID_STRLEN];
    if (strcmp(key, "id") == 0) lua_pushstring(L, vg_id_format(vg_episode_id(ep), idtext));
    else if (strcmp(key, "opened_at") == 0) push_time_or_nil(L, vg_episode_opened_at(ep));
    else if (strcmp(key, "updated_at") == 0) push_time_or_nil(L, vg_episode_updated_at(ep));
    else if (strcmp(key, "closed_at") == 0) push_time_or_nil(L, vg_episode_closed_at(ep));
    else if (strcmp(key, "episode_type") == 0) lua_pushstring(L, vg_episode_type(ep));
    else if (strcmp(key, "has_preview") == 0) lua_pushboolean(L, vg_episode_has_preview(ep));
    else if (strcmp(key, "preview_score") == 0) lua_pushnumber(L, vg_episode_preview_score(ep));
    else if (strcmp(key, "is_open") == 0) lua_pushboolean(L, vg_episode_is_live(ep) && !vg_episode_closed_at(ep));
    else if (strcmp(key, "payload") == 0) {
        lua_getfield(L, LUA_REGISTRYINDEX, REG_PAYLOAD_VIEW); /* lua/vigil.lua's live view, when it set one */
        if (!lua_isfunction(L, -1)) {
            lua_pop(L, 1);
            return episode_payload_copy(L);
        }
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
    } else {
        luaL_getmetatable(L, EPISODE_MT);
        lua_getfield(L, -1, "methods");
        lua_getfield(L, -1, key);
    }
    return 1;
}

/* ep.payload = t and ep.episode_type = t are ep:set_payload(t) and ep:set_episode_type(t) (methods, so lua/'s
 * wrappers apply); every other field is read-only. */
static int episode_newindex(lua_State *L) {
    check_episode(L, 1);
    const char *key = luaL_checkstring(L, 2);
    const char *setter = strcmp(key, "payload") == 0        ? "set_payload"
                         : strcmp(key, "episode_type") == 0 ? "set_episode_type"
                                                            : NULL;
    if (!setter)
        return luaL_error(L, "ep.%s is read-only (an episode's writable fields are payload and episode_type)", key);
    luaL_getmetatable(L, EPISODE_MT);
    lua_getfield(L, -1, "methods");
    lua_getfield(L, -1, setter);
    if (!lua_isfunction(L, -1)) return luaL_error(L, "ep.%s cannot be set", key);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 3);
    lua_call(L, 2, 0);
    return 0;
}

static int episode_tostring(lua_State *L) {
    vg_episode *ep = check_episode(L, 1);
    char idtext[VG_ID_STRLEN];
    lua_pushfstring(L, "episode %s", vg_id_format(vg_episode_id(ep), idtext));
    return 1;
}

static int episode_gc(lua_State *L) {
    vg_episode **handle = luaL_checkudata(L, 1, EPISODE_MT);
    if (*handle) vg_episode_release(*handle);
    *handle = NULL;
    return 0;
}

static int core_episodes(lua_State *L) {
    vg_script *s = script_of(L);
    int n = vg_book_open_count(s->book);
    lua_createtable(L, n, 0);
    int out = 1;
    for (int i = 0; i < n; i++) {
        vg_episode *ep = vg_book_open_at(s->book, i);
        if (vg_episode_closed_at(ep)) continue; /* closing in this callback */
        push_episode(L, s, ep);
        lua_rawseti(L, -2, out++);
    }
    return 1;
}

static void register_episode_type(lua_State *L, vg_script *s) {
    static const luaL_Reg methods[] = {
        {"extend", episode_extend}, {"close", episode_close}, {"time_out", episode_time_out},
        {"set_payload", episode_set_payload},
        {"set_type", episode_set_type}, {"set_detections", episode_set_detections},
        {"preview", episode_preview}, {"frame_preview", episode_frame_preview}, {NULL, NULL}};
    luaL_newmetatable(L, EPISODE_MT);
    lua_newtable(L);
    for (const luaL_Reg *m = methods; m->name; m++) {
        lua_pushlightuserdata(L, s);
        lua_pushcclosure(L, m->func, 1);
        lua_setfield(L, -2, m->name);
    }
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, episode_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, episode_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, episode_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, episode_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

/* ---------- other core functions ---------- */

static int core_log(lua_State *L) {
    vg_script *s = script_of(L);
    const char *level = luaL_checkstring(L, 1);
    const char *message = luaL_checkstring(L, 2);
    vg_log_level lvl;
    if (vg_log_parse_level(level, &lvl) < 0)
        return luaL_error(L, "unknown log level '%s' (error, warn, info, debug)", level);
    vg_log(lvl, s->camera, "%s", message);
    return 0;
}

static int core_frame_metatable(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_FRAME_MT);
    return 0;
}

/* The generation of the frame being processed: frame tables from earlier callbacks are stale. */
static int core_frame_generation(lua_State *L) {
    lua_pushnumber(L, (lua_Number)script_of(L)->frame_generation);
    return 1;
}

/* The frame of the running on_frame as a pointer for lua/ (FFI), or nil outside on_frame; its luma is made
 * unless the caller says it reads no pixel. Frame tables hold no pointer themselves, so a table kept past
 * its callback can never reach freed memory. */
static int core_current_frame(lua_State *L) {
    vg_script *s = script_of(L);
    if (!s->frame) {
        lua_pushnil(L);
        return 1;
    }
    int pixels_needed = !lua_toboolean(L, 1); /* current_frame(true): the frame's fields only, no scaling */
    if (pixels_needed && !vg_frame_luma(s->frame)) return luaL_error(L, "the frame's luma plane could not be made");
    lua_pushlightuserdata(L, s->frame);
    return 1;
}

/* core.payload_view(fn): ep.payload calls fn(ep) from now on (lua/vigil.lua's live view). */
static int core_payload_view(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_PAYLOAD_VIEW);
    return 0;
}

/* The method table of episode handles, so lua/ can add methods written in Lua. */
static int core_episode_methods(lua_State *L) {
    luaL_getmetatable(L, EPISODE_MT);
    lua_getfield(L, -1, "methods");
    return 1;
}

static int core_camera(lua_State *L) {
    lua_pushstring(L, script_of(L)->camera);
    return 1;
}

/* vigil.zones: name -> list of {x = .., y = ..} points (the config's [x, y] pairs, already validated). */
static void push_zones(lua_State *L, const cJSON *zones) {
    lua_newtable(L);
    for (const cJSON *zone = zones ? zones->child : NULL; zone; zone = zone->next) {
        lua_newtable(L);
        int i = 1;
        for (const cJSON *point = zone->child; point; point = point->next) {
            const cJSON *x = cJSON_GetArrayItem(point, 0), *y = cJSON_GetArrayItem(point, 1);
            lua_Number px = cJSON_IsNumber(x) ? x->valuedouble : 0, py = cJSON_IsNumber(y) ? y->valuedouble : 0;
            lua_createtable(L, 2, 2); /* {x =, y =} and [1], [2]: every point vigil hands out reads both ways */
            lua_pushnumber(L, px);
            lua_setfield(L, -2, "x");
            lua_pushnumber(L, py);
            lua_setfield(L, -2, "y");
            lua_pushnumber(L, px);
            lua_rawseti(L, -2, 1);
            lua_pushnumber(L, py);
            lua_rawseti(L, -2, 2);
            lua_rawseti(L, -2, i++);
        }
        lua_setfield(L, -2, zone->string);
    }
}

static int core_budget_check(lua_State *L);

#define VG_RULE_FILE_MAX ((size_t)4 << 20) /* a rule or a module it requires */

/* core.read_file(path): the text of a rule's file, or nil and why. Only a regular file is read (a FIFO
 * would block the camera in a C call no budget can cut), never more than VG_RULE_FILE_MAX. */
static int core_read_file(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    char *text = NULL, err[200];
    size_t len = 0;
    if (vg_file_read(path, VG_RULE_FILE_MAX, &text, &len, err, sizeof err) != VG_FILE_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, err);
        return 2;
    }
    lua_pushlstring(L, text, len);
    free(text);
    return 1;
}

static void register_core(lua_State *L, vg_script *s, const cJSON *params, const cJSON *zones) {
    static const luaL_Reg functions[] = {
        {"open", core_open}, {"episodes", core_episodes}, {"log", core_log},
        {"frame_metatable", core_frame_metatable}, {"frame_generation", core_frame_generation},
        {"current_frame", core_current_frame}, {"episode_methods", core_episode_methods},
        {"camera", core_camera}, {"budget_check", core_budget_check},
        {"read_file", core_read_file}, {"payload", episode_payload_copy},
        {"payload_view", core_payload_view}, {NULL, NULL}};
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_newtable(L);
    for (const luaL_Reg *f = functions; f->name; f++) {
        lua_pushlightuserdata(L, s);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -2, f->name);
    }
    if (params) push_json(L, params);
    else lua_newtable(L);
    lua_setfield(L, -2, "params");
    push_zones(L, zones);
    lua_setfield(L, -2, "zones");
    lua_setfield(L, -2, "vigil.core");
    lua_pop(L, 2);
}

/* ---------- calling into the script ---------- */

/* A rule's budget is its own CPU time (this thread's): a busy machine that preempts the camera's thread
 * does not cut a rule, and a rule cannot spend more than its budget of computation. */
#define VG_BUDGET_CLOCK CLOCK_THREAD_CPUTIME_ID

/* Budget left before the deadline, in whole ms as the hooks judge it (a sliver under 1 ms still counts 0). */
static int64_t budget_ms_left(const struct timespec *deadline) {
    return vg_deadline_left_ns(VG_BUDGET_CLOCK, deadline) / 1000000;
}

static __thread vg_script *running_script; /* the script whose callback runs on this thread */

static lua_memory *memory_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

/* The rule's allocator: refuses what would take its state over the cap while the cap is enforced; the budget
 * hook's next firing then ends the callback, even if the rule caught the allocation error. */
static void *rule_alloc(void *ud, void *ptr, size_t old_size, size_t new_size) {
    lua_memory *m = ud;
    size_t held = ptr ? old_size : 0;
    if (new_size == 0) {
        free(ptr);
        m->used -= held;
        return NULL;
    }
    if (m->enforced && new_size > held && m->used - held + new_size > m->cap) {
        m->refused = 1; /* the hook's next firing ends the callback */
        return NULL;
    }
    void *grown = realloc(ptr, new_size);
    if (grown) m->used = m->used - held + new_size;
    return grown;
}

/* lua_close, and the allocator's account with it. */
static void close_state(lua_State *L) {
    lua_memory *m = memory_of(L);
    lua_close(L);
    free(m);
}

static int over_limit(const vg_script *s, lua_State *L) { return s->over_budget || memory_of(L)->refused; }

/* Raises the error that ends a callback over its budget or its memory cap, naming the rule's line. */
static void raise_over_limit(vg_script *s, lua_State *L) {
    char what[96];
    if (memory_of(L)->refused) snprintf(what, sizeof what, "over its memory cap of %d MB", VG_RULE_MEMORY_MB);
    else snprintf(what, sizeof what, "over the time budget of %.0f ms", s->running_budget_ms);
    lua_Debug where; /* the rule's line that was running (the hook itself is no Lua function) */
    if (lua_getstack(L, 0, &where) && lua_getinfo(L, "Sl", &where) && where.currentline > 0)
        luaL_error(L, "%s:%d: %s", where.short_src, where.currentline, what);
    luaL_error(L, "%s", what);
}

/* Over the budget (or the memory cap), the hook fires on every instruction and raises every time: a rule that
 * catches the error (pcall, xpcall, a coroutine) runs into it again at its next instruction, so the callback
 * always ends. */
static void budget_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    vg_script *s = running_script;
    if (!s) return;
    if (!over_limit(s, L)) {
        if (budget_ms_left(&s->deadline) >= 0) return;
        s->over_budget = 1;
    }
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    raise_over_limit(s, L);
}

/* core.budget_check(): the host's guards of long C calls (string patterns, rep, sort) call it after each one,
 * since no hook fires inside a C function. */
static int core_budget_check(lua_State *L) {
    vg_script *s = running_script;
    if (!s) return 0;
    if (!over_limit(s, L) && budget_ms_left(&s->deadline) >= 0) return 0;
    s->over_budget = s->over_budget || !memory_of(L)->refused;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    raise_over_limit(s, L);
    return 0;
}

/* Runs the budget hook over what follows until end_budget, with budget_ms of this thread's CPU time, and
 * holds the state to its memory cap. */
static void start_budget(vg_script *s, lua_State *L, double budget_ms) {
    s->started = vg_now(VG_BUDGET_CLOCK);
    s->deadline = vg_deadline_in_ns(VG_BUDGET_CLOCK, (int64_t)(budget_ms * 1e6));
    s->running_budget_ms = budget_ms;
    s->over_budget = 0;
    lua_memory *m = memory_of(L);
    m->refused = 0;
    m->enforced = 1;
    running_script = s;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, VG_HOOK_INSTRUCTIONS);
}

static void end_budget(lua_State *L) {
    lua_sethook(L, NULL, 0, 0);
    memory_of(L)->enforced = 0;
    running_script = NULL;
}

static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* One line per failure; repeated failures at most once per interval, with the count in between. */
static void log_failure(vg_script *s, const char *callback, const char *message) {
    int64_t now = vg_monotonic_ms();
    if (s->last_error_log_ms && now - s->last_error_log_ms < VG_ERROR_LOG_INTERVAL_MS) {
        s->errors_unlogged++;
        return;
    }
    char line[1536];
    size_t n = 0;
    for (const char *p = message; *p && n < sizeof line - 1; p++) {
        if (*p == '\n') {
            if (n + 3 >= sizeof line) break;
            memcpy(line + n, " | ", 3);
            n += 3;
        } else if (*p != '\t') {
            line[n++] = *p;
        }
    }
    line[n] = 0;
    if (s->errors_unlogged)
        vg_error(s->camera, "%s: %s (%ld similar failures not logged)", callback, line, s->errors_unlogged);
    else
        vg_error(s->camera, "%s: %s", callback, line);
    s->errors_unlogged = 0;
    s->last_error_log_ms = now;
}

/* In ns, then ms as a double: a callback far under 1 ms still adds its time (never rounded to 0). */
static double cpu_ms_since(const struct timespec *start) { return (double)vg_elapsed_ns(VG_BUDGET_CLOCK, start) / 1e6; }

/* After a callback ran into the memory cap: a full collection tells garbage from what the rule holds. Holding
 * over half the cap, the rule is retired: its episodes are closed, its state freed, and the camera goes on
 * without a rule until the file changes (a reload brings the new version). */
static void retire_if_holding(vg_script *s) {
    lua_memory *m = memory_of(s->L);
    lua_gc(s->L, LUA_GCCOLLECT, 0);
    if (m->used < m->cap / 2) return;
    snprintf(s->stats.retired, sizeof s->stats.retired, "over its memory cap of %d MB (holds %zu MB after a full collection)",
             VG_RULE_MEMORY_MB, m->used >> 20);
    vg_error(s->camera, "rule %s retired: %s; the camera runs on without a rule until the file changes", s->path,
             s->stats.retired);
    vg_book_close_all(s->book, s->last_ts ? s->last_ts : vg_realtime_ms(), "retired");
    close_state(s->L);
    s->L = NULL;
}

/* Calls env[name] with nargs arguments already pushed; commits or rolls back the episode transaction. */
static int call_callback_in(vg_script *s, lua_State *L, const char *name, int nargs) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_getfield(L, LUA_REGISTRYINDEX, REG_ENV);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    if (!lua_isfunction(L, -1)) {
        lua_settop(L, base);
        return 0;
    }
    lua_insert(L, base + 1);     /* function below the args */
    lua_insert(L, base + 1);     /* traceback below the function */
    start_budget(s, L, s->budget_ms);
    int rc = lua_pcall(L, nargs, 0, base + 1);
    end_budget(L);
    s->stats.calls++;
    s->stats.total_ms += cpu_ms_since(&s->started);
    int over_memory = memory_of(L)->refused;
    if (rc == 0) {
        vg_book_commit(s->book);
    } else {
        vg_book_rollback(s->book);
        s->stats.errors++;
        if (s->over_budget) s->stats.budget_cuts++;
        if (over_memory) s->stats.memory_cuts++;
        log_failure(s, name, lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    }
    lua_settop(L, base);
    if (over_memory && L == s->L) retire_if_holding(s);
    return rc == 0 ? 0 : -1;
}

/* A retired rule has no state: its callbacks are not called. */
static int call_callback(vg_script *s, const char *name, int nargs) {
    if (!s->L) return 0;
    return call_callback_in(s, s->L, name, nargs);
}

static void push_frame(vg_script *s, const vg_frame *f) {
    lua_State *L = s->L;
    lua_createtable(L, 0, 12);
    lua_pushnumber(L, (lua_Number)f->ts);
    lua_setfield(L, -2, "ts");
    lua_pushnumber(L, (lua_Number)f->index);
    lua_setfield(L, -2, "index");
    lua_pushinteger(L, f->width);
    lua_setfield(L, -2, "width");
    lua_pushinteger(L, f->height);
    lua_setfield(L, -2, "height");
    lua_pushinteger(L, f->full_width);
    lua_setfield(L, -2, "full_width");
    lua_pushinteger(L, f->full_height);
    lua_setfield(L, -2, "full_height");
    lua_pushstring(L, vg_clock_source_name((vg_clock_source)f->clock));
    lua_setfield(L, -2, "clock");
    lua_pushboolean(L, f->keyframe);
    lua_setfield(L, -2, "keyframe");
    lua_pushnumber(L, (lua_Number)s->frame_generation);
    lua_setfield(L, -2, "_generation");
    lua_getfield(L, LUA_REGISTRYINDEX, REG_FRAME_MT);
    if (lua_istable(L, -1)) lua_setmetatable(L, -2);
    else lua_pop(L, 1);
}

static void close_orphans(vg_script *s, int64_t now);

int vg_script_on_frame(vg_script *s, vg_frame *frame) {
    if (!s->L) return 0;
    s->frame = frame;
    s->frame_generation++;
    s->last_ts = frame->ts;
    push_frame(s, frame);
    int rc = call_callback(s, "on_frame", 1);
    s->frame = NULL;
    close_orphans(s, frame->ts);
    return rc;
}

int vg_script_on_stream(vg_script *s, const char *event) {
    if (!s->L) return 0;
    lua_pushstring(s->L, event);
    return call_callback(s, "on_stream", 1);
}

/* What on_stop closes without a reason is held until the camera closes the rest and says why it stopped. */
int vg_script_on_stop(vg_script *s) {
    vg_book_begin_stop(s->book);
    return call_callback(s, "on_stop", 0);
}

void vg_script_get_stats(const vg_script *s, vg_script_stats *out) {
    *out = s->stats;
    out->reloads = s->reloads;
    out->reload_failures = s->reload_failures;
}

/* ---------- loading ---------- */

static int load_failed(lua_State *L, const char *what, char *err, size_t errlen) {
    const char *msg = lua_tostring(L, -1);
    snprintf(err, errlen, "%s%s", what, msg ? msg : "unknown error");
    char *nl = strchr(err, '\n'); /* one line: drop the traceback */
    if (nl) *nl = 0;
    return -1;
}

/* Carrying vigil.keep across a reload: the copies made so far (a table in the new state, source table ->
 * its copy, so a table reached twice is copied once and cycles stay cycles), and how much was copied. */
typedef struct keep_copy {
    int seen;
    long values;
    int cut;
} keep_copy;

#define VG_KEEP_MAX_VALUES 1000000
#define VG_KEEP_MAX_DEPTH 200

static void copy_value(lua_State *from, int idx, lua_State *to, keep_copy *c, int depth);

static void copy_table(lua_State *from, int idx, lua_State *to, keep_copy *c, int depth) {
    const void *source = lua_topointer(from, idx);
    lua_pushlightuserdata(to, (void *)source);
    lua_rawget(to, c->seen);
    if (!lua_isnil(to, -1)) return; /* reached before: the same copy */
    lua_pop(to, 1);
    lua_newtable(to);
    lua_pushlightuserdata(to, (void *)source);
    lua_pushvalue(to, -2);
    lua_rawset(to, c->seen);
    idx = idx < 0 ? lua_gettop(from) + idx + 1 : idx;
    lua_pushnil(from);
    while (lua_next(from, idx)) {
        copy_value(from, -2, to, c, depth + 1);
        copy_value(from, -1, to, c, depth + 1);
        if (lua_isnil(to, -2) || lua_isnil(to, -1)) lua_pop(to, 2);
        else lua_rawset(to, -3);
        lua_pop(from, 1);
    }
}

/* Copies a plain value (nil, boolean, number, string, table of those) from one state to another; other
 * values (functions, userdata) become nil. Past VG_KEEP_MAX_VALUES values or VG_KEEP_MAX_DEPTH levels, the
 * rest is left out (c->cut says so). */
static void copy_value(lua_State *from, int idx, lua_State *to, keep_copy *c, int depth) {
    if (++c->values > VG_KEEP_MAX_VALUES || depth > VG_KEEP_MAX_DEPTH || !lua_checkstack(to, 4) ||
        !lua_checkstack(from, 3)) {
        c->cut = 1;
        lua_pushnil(to);
        return;
    }
    switch (lua_type(from, idx)) {
    case LUA_TBOOLEAN: lua_pushboolean(to, lua_toboolean(from, idx)); return;
    case LUA_TNUMBER: lua_pushnumber(to, lua_tonumber(from, idx)); return;
    case LUA_TSTRING: {
        size_t len;
        const char *str = lua_tolstring(from, idx, &len);
        lua_pushlstring(to, str, len);
        return;
    }
    case LUA_TTABLE: copy_table(from, idx, to, c, depth); return;
    default: lua_pushnil(to); return;
    }
}

/* Pushes the options table for vigil.host.load; keep_from, when set, is the state whose vigil.keep the
 * new state starts with. */
static void push_load_options(lua_State *L, const vg_script *s, lua_State *keep_from) {
    lua_newtable(L);
    lua_pushboolean(L, s->unsafe);
    lua_setfield(L, -2, "unsafe");
    lua_pushboolean(L, s->jit);
    lua_setfield(L, -2, "jit");
    if (!keep_from) return;
    lua_getglobal(keep_from, "package");
    lua_getfield(keep_from, -1, "loaded");
    lua_getfield(keep_from, -1, "vigil");
    lua_getfield(keep_from, -1, "keep");
    lua_newtable(L);
    keep_copy c = {.seen = lua_gettop(L)};
    copy_value(keep_from, -1, L, &c, 0);
    lua_remove(L, c.seen);
    lua_setfield(L, -2, "keep");
    lua_pop(keep_from, 4);
    if (c.cut)
        vg_warn(s->camera, "vigil.keep: over %d values or %d levels deep; the rest is not carried over to the reload",
                VG_KEEP_MAX_VALUES, VG_KEEP_MAX_DEPTH);
}

/* Runs lua/vigil/host.lua's load(path, options); leaves the rule's env in the registry. */
static int run_main_chunk(vg_script *s, lua_State *L, lua_State *keep_from, char *err, size_t errlen) {
    char path[2 * PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/?.lua;%s/?/init.lua", vg_script_lua_dir(), vg_script_lua_dir());
    lua_getglobal(L, "package");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    lua_pushcfunction(L, traceback);
    lua_getglobal(L, "require");
    lua_pushstring(L, "vigil.host");
    if (lua_pcall(L, 1, 1, -3) != 0) return load_failed(L, "cannot load lua/vigil/host.lua: ", err, errlen);
    lua_getfield(L, -1, "load");
    lua_pushstring(L, s->path);
    push_load_options(L, s, keep_from);
    start_budget(s, L, VG_LOAD_BUDGET_MS); /* the rule's top level: a loop there must not hang a start or reload */
    int rc = lua_pcall(L, 2, 1, -5);
    end_budget(L);
    if (rc != 0) return load_failed(L, "", err, errlen);
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s: vigil.host.load returned no environment", s->path);
        return -1;
    }
    lua_getfield(L, -1, "on_frame");
    int has_on_frame = lua_isfunction(L, -1);
    lua_pop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_ENV);
    lua_settop(L, 0);
    if (!has_on_frame) snprintf(err, errlen, "%s: defines no on_frame(frame) function", s->path);
    return has_on_frame ? 0 : -1;
}

/* A JSON object given as text (NULL or "" = none); -1 with err when it is not one. */
static int parse_object(const char *text, const char *what, cJSON **out, char *err, size_t errlen) {
    *out = NULL;
    if (!text || !*text) return 0;
    *out = cJSON_Parse(text);
    if (cJSON_IsObject(*out)) return 0;
    snprintf(err, errlen, "%s: not a JSON object", what);
    cJSON_Delete(*out);
    *out = NULL;
    return -1;
}

static void note_rule_files(vg_script *s, lua_State *L);

/* A new Lua state with the host's functions and the rule loaded, or NULL with err. */
static lua_State *new_state(vg_script *s, lua_State *keep_from, char *err, size_t errlen) {
    cJSON *params = NULL, *zones = NULL;
    if (parse_object(s->params_json, "params", &params, err, errlen) < 0 ||
        parse_object(s->zones_json, "zones", &zones, err, errlen) < 0) {
        cJSON_Delete(params);
        return NULL;
    }
    lua_memory *memory = calloc(1, sizeof *memory);
    memory->cap = (size_t)VG_RULE_MEMORY_MB << 20;
    lua_State *L = lua_newstate(rule_alloc, memory);
    if (!L) {
        free(memory);
        snprintf(err, errlen, "cannot create a Lua state");
        cJSON_Delete(params);
        cJSON_Delete(zones);
        return NULL;
    }
    luaL_openlibs(L);
    lua_newtable(L); /* weak-valued: episode pointer -> handle */
    lua_newtable(L);
    lua_pushstring(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, REG_HANDLES);
    register_episode_type(L, s);
    register_core(L, s, params, zones);
    cJSON_Delete(params);
    cJSON_Delete(zones);
    int loaded = run_main_chunk(s, L, keep_from, err, errlen);
    note_rule_files(s, L); /* also when it failed: fixing the module at fault reloads it */
    if (loaded < 0) {
        vg_book_rollback(s->book);
        close_state(L);
        return NULL;
    }
    return L;
}

/* ---------- the rule's files ---------- */

/* dir/name -> dir ("." for a bare name), as lua/vigil/host.lua names the files a rule requires. */
static void dir_of(const char *path, char *dir, size_t len) {
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(dir, len, "%.*s", (int)(slash - path), path);
    else snprintf(dir, len, ".");
}

static void watch_dir_of(vg_script *s, const char *file) {
    char dir[PATH_MAX];
    dir_of(file, dir, sizeof dir);
    for (int i = 0; i < s->nwatched; i++)
        if (strcmp(s->watched[i].dir, dir) == 0) return;
    if (s->nwatched == VG_MAX_RULE_FILES) return;
    int wd = inotify_add_watch(s->watch_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE);
    if (wd < 0) {
        vg_warn(s->camera, "cannot watch %s for changes: %s", dir, strerror(errno));
        return;
    }
    s->watched[s->nwatched].wd = wd;
    s->watched[s->nwatched++].dir = strdup(dir);
}

/* Adds a file whose change reloads the rule (once), and watches its directory when watching. */
static void add_rule_file(vg_script *s, const char *file) {
    for (int i = 0; i < s->nfiles; i++)
        if (strcmp(s->files[i], file) == 0) return;
    if (s->nfiles == VG_MAX_RULE_FILES) return;
    s->files[s->nfiles++] = strdup(file);
    if (s->watch_fd >= 0) watch_dir_of(s, file);
}

/* The modules a state's rule required (lua/vigil/host.lua notes each in host.files, loaded or not), kept
 * after the state is gone: a module that broke a reload is watched like the others. */
static void note_rule_files(vg_script *s, lua_State *L) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_getfield(L, -1, "vigil.host");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "files");
        if (lua_istable(L, -1)) {
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                lua_pop(L, 1);
                if (lua_type(L, -1) == LUA_TSTRING) add_rule_file(s, lua_tostring(L, -1));
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 3);
}

static int watch_rule_files(vg_script *s) {
    s->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (s->watch_fd < 0) return -1;
    for (int i = 0; i < s->nfiles; i++) watch_dir_of(s, s->files[i]);
    return s->nwatched ? 0 : -1;
}

/* Whether the file an inotify event names is one of the rule's. */
static int is_rule_file(const vg_script *s, int wd, const char *name) {
    for (int i = 0; i < s->nwatched; i++) {
        if (s->watched[i].wd != wd) continue;
        char path[2 * PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", s->watched[i].dir, name);
        for (int k = 0; k < s->nfiles; k++)
            if (strcmp(s->files[k], path) == 0) return 1;
    }
    return 0;
}

vg_script *vg_script_load(const vg_script_config *c, vg_episode_book *book, char *err, size_t errlen) {
    vg_script *s = calloc(1, sizeof *s);
    snprintf(s->camera, sizeof s->camera, "%s", c->camera ? c->camera : "script");
    s->book = book;
    s->path = strdup(c->path);
    s->params_json = c->params_json ? strdup(c->params_json) : NULL;
    s->zones_json = c->zones_json ? strdup(c->zones_json) : NULL;
    s->unsafe = c->unsafe;
    s->jit = c->jit;
    s->watch_fd = -1;
    s->budget_ms = c->budget_ms > 0 ? c->budget_ms : VG_BUDGET_MS_DEFAULT;
    s->preview_picture = c->preview_picture;
    s->preview_ctx = c->preview_ctx;
    char rule_dir[PATH_MAX], rule_file[2 * PATH_MAX];
    dir_of(c->path, rule_dir, sizeof rule_dir);
    const char *base = strrchr(c->path, '/');
    snprintf(rule_file, sizeof rule_file, "%s/%s", rule_dir, base ? base + 1 : c->path);
    add_rule_file(s, rule_file);
    err[0] = 0;
    s->L = new_state(s, NULL, err, errlen);
    if (!s->L || call_callback(s, "on_start", 0) < 0) {
        if (!*err) snprintf(err, errlen, "%s: on_start failed", c->path);
        vg_script_free(s);
        return NULL;
    }
    if (c->watch && watch_rule_files(s) < 0)
        vg_warn(s->camera, "cannot watch %s for changes: %s", s->path, strerror(errno));
    if (s->unsafe) vg_warn(s->camera, "%s runs unsafe: no sandbox (ffi, io, os)", s->path);
    if (s->jit) vg_warn(s->camera, "%s runs compiled: its %.0f ms budget cannot cut loops", s->path, s->budget_ms);
    return s;
}

/* ---------- hot reload ---------- */

/* Drains inotify; notes when the rule's file or a module it required changed (other files beside it, such as
 * another camera's rule, do not reload it). */
static void read_changes(vg_script *s) {
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    while ((n = read(s->watch_fd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->len && is_rule_file(s, ev->wd, ev->name)) s->change_seen_ms = vg_monotonic_ms();
            p += sizeof *ev + ev->len;
        }
    }
}

/* The episodes open as a reload begins (what the new version's on_reload touches is taken over already). */
static void note_orphans(vg_script *s) {
    s->norphans = 0;
    for (int i = 0; i < vg_book_open_count(s->book) && s->norphans < VG_MAX_ORPHANS; i++) {
        vg_episode *ep = vg_book_open_at(s->book, i);
        s->orphans[s->norphans++] = (orphan){vg_episode_id(ep), vg_episode_updated_at(ep)};
    }
    s->takeover_until = s->last_ts + VG_RELOAD_TAKEOVER_MS;
}

/* After the takeover time, the host closes what the new version left alone, at its last updated_at, with
 * payload.close_reason "reload": no episode is ever left open by a reload. */
static void close_orphans(vg_script *s, int64_t now) {
    if (!s->norphans || now < s->takeover_until) return;
    int closed = 0;
    for (int k = 0; k < s->norphans; k++) {
        for (int i = 0; i < vg_book_open_count(s->book); i++) {
            vg_episode *ep = vg_book_open_at(s->book, i);
            if (vg_episode_id(ep) != s->orphans[k].id || vg_episode_updated_at(ep) != s->orphans[k].updated_at) continue;
            vg_episode_close(ep, s->orphans[k].updated_at, "reload", NULL, 0);
            closed++;
            break;
        }
    }
    s->norphans = 0;
    if (!closed) return;
    vg_book_commit(s->book);
    vg_warn(s->camera, "%d episode(s) the reloaded rule did not take over within %.0f s closed (close_reason reload)",
            closed, VG_RELOAD_TAKEOVER_MS / 1000.0);
}

/* Builds the new version beside the running one and swaps them; the book (open episodes) stays. */
static int reload(vg_script *s) {
    char err[512] = "";
    lua_State *fresh = new_state(s, s->L, err, sizeof err);
    if (fresh) {
        lua_getfield(fresh, LUA_REGISTRYINDEX, REG_ENV);
        lua_getfield(fresh, -1, "on_reload");
        int has_on_reload = lua_isfunction(fresh, -1);
        lua_pop(fresh, 2);
        int rc;
        note_orphans(s);
        if (has_on_reload) {
            lua_getglobal(fresh, "package");
            lua_getfield(fresh, -1, "loaded");
            lua_getfield(fresh, -1, "vigil");
            lua_getfield(fresh, -1, "keep");
            lua_replace(fresh, -4);
            lua_pop(fresh, 2);
            rc = call_callback_in(s, fresh, "on_reload", 1);
        } else {
            rc = call_callback_in(s, fresh, "on_start", 0);
        }
        if (rc == 0) {
            if (s->L) close_state(s->L); /* releases the old handles; the episodes stay in the book */
            s->L = fresh;
            s->stats.retired[0] = 0;
            s->reloads++;
            vg_info(s->camera, "reloaded %s", s->path);
            return 1;
        }
        close_state(fresh);
        s->norphans = 0; /* the running version stays, with its episodes */
        snprintf(err, sizeof err, "%s: %s failed (see above)", s->path, has_on_reload ? "on_reload" : "on_start");
    }
    s->reload_failures++;
    vg_error(s->camera, "reload failed, the running version stays: %s", err);
    return -1;
}

int vg_script_poll_reload(vg_script *s) {
    if (s->watch_fd < 0) return 0;
    read_changes(s);
    if (!s->change_seen_ms || vg_monotonic_ms() - s->change_seen_ms < VG_RELOAD_SETTLE_MS) return 0;
    s->change_seen_ms = 0;
    return reload(s);
}

void vg_script_free(vg_script *s) {
    if (!s) return;
    vg_book_rollback(s->book);
    if (s->L) close_state(s->L); /* releases every episode handle */
    if (s->watch_fd >= 0) close(s->watch_fd);
    for (int i = 0; i < s->nfiles; i++) free(s->files[i]);
    for (int i = 0; i < s->nwatched; i++) free(s->watched[i].dir);
    vg_jpeg_free(s->jpeg);
    free(s->path);
    free(s->params_json);
    free(s->zones_json);
    free(s);
}
