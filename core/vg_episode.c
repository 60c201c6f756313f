/* vg_episode.c — episodes, their staged changes, and the rendering of a version as Central's JSON record. */
#include "vg_episode.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vg_log.h"
#include "vg_time.h"

typedef struct vg_record {
    int64_t opened_at, updated_at, closed_at;
    char *episode_type;
    cJSON *payload;
    cJSON *detections;
    char *preview;
    int64_t preview_at;
    double preview_score;  /* the score the rule gave the current preview (not sent) */
    int64_t preview_offset_ms; /* its picture's time - preview_at (another stream's nearest picture), sent as
                                  payload.preview_offset_ms when not 0 */
    char *frame_preview;
    int64_t frame_preview_at;
    char *close_reason;    /* the finer reason, sent as payload.close_reason */
    int timed_out;         /* closed for inactivity: Central's close_reason "timeout" */
    int64_t produced_at;   /* wall-clock ms the version was made: episode_appearance_timestamps.inference_timestamp */
} vg_record;

/* Which heap fields of a draft are its own (the others are shared with the committed record). */
enum { OWN_TYPE = 1, OWN_PAYLOAD = 2, OWN_DETECTIONS = 4, OWN_PREVIEW = 8, OWN_FRAME_PREVIEW = 16,
       OWN_CLOSE_REASON = 32 };

struct vg_episode {
    vg_episode_book *book; /* NULL once closed or discarded and out of the book */
    uint64_t id;
    vg_record rec;         /* committed: what the last version said */
    vg_record draft;       /* staged view, valid while staged */
    unsigned owned;
    int staged;
    int versions;          /* how many versions were committed */
    int emitted;           /* one of them reached the emit function (the next one that does is not the first) */
    int discarded;         /* opened by a callback that failed */
    int refs;
};

struct vg_episode_book {
    char *media;
    vg_snowflake *ids;
    vg_emit_fn emit;
    void *emit_ctx;
    vg_episode **open;
    int count, cap;
    int stopping;          /* vg_book_begin_stop: closes without a reason wait for vg_book_close_all's */
    long unrendered;       /* versions committed but not rendered (out of memory): logged, never emitted */
};

/* ---------- records ---------- */

static void record_free_fields(vg_record *r, unsigned which) {
    if (which & OWN_TYPE) free(r->episode_type);
    if (which & OWN_PAYLOAD) cJSON_Delete(r->payload);
    if (which & OWN_DETECTIONS) cJSON_Delete(r->detections);
    if (which & OWN_PREVIEW) free(r->preview);
    if (which & OWN_FRAME_PREVIEW) free(r->frame_preview);
    if (which & OWN_CLOSE_REASON) free(r->close_reason);
}

static const unsigned OWN_ALL = OWN_TYPE | OWN_PAYLOAD | OWN_DETECTIONS | OWN_PREVIEW | OWN_FRAME_PREVIEW |
                                OWN_CLOSE_REASON;

static void episode_free(vg_episode *ep) {
    if (ep->staged) record_free_fields(&ep->draft, ep->owned);
    record_free_fields(&ep->rec, OWN_ALL);
    free(ep);
}

static const vg_record *view(const vg_episode *ep) { return ep->staged ? &ep->draft : &ep->rec; }

static vg_record *stage(vg_episode *ep) {
    if (!ep->staged) {
        ep->draft = ep->rec;
        ep->owned = 0;
        ep->staged = 1;
    }
    return &ep->draft;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* ---------- the book ---------- */

vg_episode_book *vg_book_new(const char *media, vg_snowflake *ids, vg_emit_fn emit, void *emit_ctx) {
    vg_episode_book *book = calloc(1, sizeof *book);
    if (!book) return NULL;
    book->media = strdup(media);
    book->ids = ids;
    book->emit = emit;
    book->emit_ctx = emit_ctx;
    return book;
}

void vg_book_free(vg_episode_book *book) {
    if (!book) return;
    for (int i = 0; i < book->count; i++) {
        vg_episode *ep = book->open[i];
        ep->book = NULL;
        if (ep->refs == 0) episode_free(ep);
    }
    free(book->open);
    free(book->media);
    free(book);
}

const char *vg_book_media(const vg_episode_book *book) { return book->media; }

static int book_add(vg_episode_book *book, vg_episode *ep) {
    if (book->count == book->cap) {
        int cap = book->cap ? book->cap * 2 : 8;
        vg_episode **grown = realloc(book->open, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        book->open = grown;
        book->cap = cap;
    }
    book->open[book->count++] = ep;
    return 0;
}

/* Takes ep out of the book (keeping order); frees it unless a script still holds it. */
static void book_remove_at(vg_episode_book *book, int index) {
    vg_episode *ep = book->open[index];
    memmove(book->open + index, book->open + index + 1, (size_t)(book->count - index - 1) * sizeof *book->open);
    book->count--;
    ep->book = NULL;
    if (ep->refs == 0) episode_free(ep);
}

long vg_book_unrendered(const vg_episode_book *book) { return book->unrendered; }

int vg_book_open_count(const vg_episode_book *book) { return book->count; }

vg_episode *vg_book_open_at(vg_episode_book *book, int index) {
    return index >= 0 && index < book->count ? book->open[index] : NULL;
}

/* ---------- checks ---------- */

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int check_time(int64_t ts, char *err, size_t errlen) {
    if (ts < 0) return fail(err, errlen, "time %" PRId64 " is negative", ts);
    return 0;
}

static int check_mutable(const vg_episode *ep, char *err, size_t errlen) {
    if (ep->discarded)
        return fail(err, errlen, "episode %" PRIu64 " was discarded: the callback that opened it failed", ep->id);
    if (view(ep)->closed_at)
        return fail(err, errlen, "episode %" PRIu64 " is closed: no change is accepted after close", ep->id);
    return 0;
}

int vg_episode_check_mutable(const vg_episode *ep, char *err, size_t errlen) {
    return check_mutable(ep, err, errlen);
}

/* ---------- staged operations ---------- */

vg_episode *vg_episode_open(vg_episode_book *book, int64_t ts, const char *episode_type, cJSON *payload,
                            char *err, size_t errlen) {
    if (check_time(ts, err, errlen) < 0 || (payload && !cJSON_IsObject(payload))) {
        if (payload && !cJSON_IsObject(payload)) fail(err, errlen, "payload must be an object");
        cJSON_Delete(payload);
        return NULL;
    }
    vg_episode *ep = calloc(1, sizeof *ep);
    if (!ep || book_add(book, ep) < 0) {
        free(ep);
        cJSON_Delete(payload);
        fail(err, errlen, "out of memory");
        return NULL;
    }
    ep->book = book;
    ep->id = vg_snowflake_next(book->ids);
    vg_record *d = stage(ep);
    d->opened_at = d->updated_at = ts;
    d->episode_type = dup_or_null(episode_type);
    d->payload = payload;
    ep->owned = OWN_TYPE | OWN_PAYLOAD;
    return ep;
}

int vg_episode_extend(vg_episode *ep, int64_t ts, char *err, size_t errlen) {
    if (check_mutable(ep, err, errlen) < 0 || check_time(ts, err, errlen) < 0) return -1;
    vg_record *d = stage(ep);
    if (ts > d->updated_at) d->updated_at = ts;
    return 0;
}

#define REPLACE_FIELD(ep, field, bit, value) do {            \
        vg_record *d_ = stage(ep);                            \
        if ((ep)->owned & (bit)) record_free_fields(d_, bit); \
        d_->field = (value);                                  \
        (ep)->owned |= (bit);                                 \
    } while (0)

static const char *const TIMEOUT = "timeout"; /* Central's one close_reason */

static int close_episode(vg_episode *ep, int64_t ts, const char *close_reason, int timed_out, char *err,
                         size_t errlen) {
    if (check_mutable(ep, err, errlen) < 0 || check_time(ts, err, errlen) < 0) return -1;
    vg_record *d = stage(ep);
    if (ts > d->updated_at) d->updated_at = ts;
    d->closed_at = d->updated_at; /* finalised at commit, where updated_at may be bumped */
    d->timed_out = timed_out || (close_reason && strcmp(close_reason, TIMEOUT) == 0);
    if (close_reason) REPLACE_FIELD(ep, close_reason, OWN_CLOSE_REASON, strdup(close_reason));
    return 0;
}

int vg_episode_close(vg_episode *ep, int64_t ts, const char *close_reason, char *err, size_t errlen) {
    return close_episode(ep, ts, close_reason, 0, err, errlen);
}

int vg_episode_time_out(vg_episode *ep, int64_t ts, const char *close_reason, char *err, size_t errlen) {
    return close_episode(ep, ts, close_reason, 1, err, errlen);
}

int vg_episode_set_type(vg_episode *ep, const char *episode_type, char *err, size_t errlen) {
    if (check_mutable(ep, err, errlen) < 0) return -1;
    REPLACE_FIELD(ep, episode_type, OWN_TYPE, dup_or_null(episode_type));
    return 0;
}

int vg_episode_set_payload(vg_episode *ep, cJSON *payload, char *err, size_t errlen) {
    if (check_mutable(ep, err, errlen) < 0 || (payload && !cJSON_IsObject(payload))) {
        if (payload && !cJSON_IsObject(payload)) fail(err, errlen, "payload must be an object");
        cJSON_Delete(payload);
        return -1;
    }
    REPLACE_FIELD(ep, payload, OWN_PAYLOAD, payload);
    return 0;
}

int vg_episode_set_detections(vg_episode *ep, cJSON *detections, char *err, size_t errlen) {
    if (check_mutable(ep, err, errlen) < 0 || (detections && !cJSON_IsArray(detections))) {
        if (detections && !cJSON_IsArray(detections)) fail(err, errlen, "detections must be an array");
        cJSON_Delete(detections);
        return -1;
    }
    REPLACE_FIELD(ep, detections, OWN_DETECTIONS, detections);
    return 0;
}

int vg_episode_set_preview(vg_episode *ep, char *preview_b64, int64_t shown_at, int64_t offset_ms, double score,
                           char *err, size_t errlen) {
    if (check_mutable(ep, err, errlen) < 0) {
        free(preview_b64);
        return -1;
    }
    REPLACE_FIELD(ep, preview, OWN_PREVIEW, preview_b64);
    ep->draft.preview_at = shown_at;
    ep->draft.preview_offset_ms = offset_ms;
    ep->draft.preview_score = score;
    return 0;
}

int vg_episode_set_frame_preview(vg_episode *ep, char *preview_b64, int64_t shown_at, char *err,
                                 size_t errlen) {
    if (check_mutable(ep, err, errlen) < 0) {
        free(preview_b64);
        return -1;
    }
    REPLACE_FIELD(ep, frame_preview, OWN_FRAME_PREVIEW, preview_b64);
    ep->draft.frame_preview_at = shown_at;
    return 0;
}

/* ---------- views and references ---------- */

uint64_t vg_episode_id(const vg_episode *ep) { return ep->id; }
int64_t vg_episode_opened_at(const vg_episode *ep) { return view(ep)->opened_at; }
int64_t vg_episode_updated_at(const vg_episode *ep) { return view(ep)->updated_at; }
int64_t vg_episode_closed_at(const vg_episode *ep) { return view(ep)->closed_at; }
const char *vg_episode_type(const vg_episode *ep) { return view(ep)->episode_type; }
const cJSON *vg_episode_payload(const vg_episode *ep) { return view(ep)->payload; }
int vg_episode_has_preview(const vg_episode *ep) { return view(ep)->preview != NULL; }
double vg_episode_preview_score(const vg_episode *ep) { return view(ep)->preview_score; }
int vg_episode_is_live(const vg_episode *ep) { return ep->book != NULL && !ep->discarded && !ep->rec.closed_at; }

void vg_episode_retain(vg_episode *ep) { ep->refs++; }

void vg_episode_release(vg_episode *ep) {
    if (--ep->refs == 0 && ep->book == NULL) episode_free(ep);
}

/* ---------- rendering ---------- */

static void add_int64(cJSON *obj, const char *name, int64_t value) {
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, value);
    cJSON_AddItemToObject(obj, name, cJSON_CreateRaw(text));
}

/* The payload, with what the host adds to it (over the rule's keys of the same names): the finer close reason
 * (payload.close_reason) once closed with one, and payload.preview_offset_ms when the preview's picture is not
 * of the preview's own time. The rule's payload itself is never changed. */
static void add_payload(cJSON *obj, const vg_record *r) {
    const char *reason = r->close_reason ? r->close_reason : r->timed_out ? TIMEOUT : NULL;
    int64_t offset = r->preview ? r->preview_offset_ms : 0;
    if (!reason && !offset) {
        if (r->payload) cJSON_AddItemReferenceToObject(obj, "payload", r->payload);
        return;
    }
    cJSON *payload = r->payload ? cJSON_Duplicate(r->payload, 1) : cJSON_CreateObject();
    if (offset) {
        cJSON_DeleteItemFromObjectCaseSensitive(payload, "preview_offset_ms");
        add_int64(payload, "preview_offset_ms", offset);
    }
    if (reason) {
        cJSON_DeleteItemFromObjectCaseSensitive(payload, "close_reason");
        cJSON_AddStringToObject(payload, "close_reason", reason);
    }
    cJSON_AddItemToObject(obj, "payload", payload);
}

static char *render_record(uint64_t id, const char *media, const vg_record *r) {
    cJSON *obj = cJSON_CreateObject();
    char idtext[VG_ID_STRLEN];
    cJSON_AddItemToObject(obj, "episode_id", cJSON_CreateRaw(vg_id_format(id, idtext)));
    cJSON_AddStringToObject(obj, "media", media);
    add_int64(obj, "opened_at", r->opened_at);
    add_int64(obj, "updated_at", r->updated_at);
    if (r->closed_at) add_int64(obj, "closed_at", r->closed_at);
    if (r->closed_at && r->timed_out) cJSON_AddStringToObject(obj, "close_reason", TIMEOUT);
    if (r->episode_type) cJSON_AddStringToObject(obj, "episode_type", r->episode_type);
    add_payload(obj, r);
    if (r->detections) cJSON_AddItemReferenceToObject(obj, "detections", r->detections);
    if (r->preview) {
        cJSON_AddStringToObject(obj, "preview", r->preview);
        add_int64(obj, "preview_timestamp", r->preview_at);
    }
    if (r->frame_preview) {
        cJSON_AddStringToObject(obj, "frame_preview", r->frame_preview);
        add_int64(obj, "frame_preview_timestamp", r->frame_preview_at);
    }
    if (r->produced_at) {
        cJSON *stamps = cJSON_AddObjectToObject(obj, "episode_appearance_timestamps");
        add_int64(stamps, "inference_timestamp", r->produced_at);
    }
    char *text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return text;
}

char *vg_episode_render(const vg_episode *ep) {
    return render_record(ep->id, ep->book ? ep->book->media : "", &ep->rec);
}

/* ---------- commit and rollback ---------- */

/* Moves the draft into the committed record, enforcing the strictly rising updated_at. */
static void apply_draft(vg_episode *ep) {
    vg_record *d = &ep->draft, *r = &ep->rec;
    record_free_fields(r, ep->owned);
    int closing = d->closed_at != 0;
    if (ep->versions > 0 && d->updated_at <= r->updated_at) d->updated_at = r->updated_at + 1;
    if (closing) d->closed_at = d->updated_at;
    *r = *d;
    ep->staged = 0;
    ep->owned = 0;
}

static int64_t wall_ms(const vg_episode_book *book) {
    return book->ids && book->ids->now_ms ? book->ids->now_ms(book->ids->clock_ctx) : vg_realtime_ms();
}

/* The committed version could not become JSON (cJSON ran out of memory): one line, counted. Nothing is lost
 * for good: the record stays, and the episode's next version carries all of it. */
static void say_unrendered(vg_episode_book *book, const vg_episode *ep) {
    char idtext[VG_ID_STRLEN];
    book->unrendered++;
    vg_error(book->media, "episode %s: version %d (updated_at %" PRId64 ") could not be rendered (out of memory) "
             "and is not delivered; %ld such version(s) so far", vg_id_format(ep->id, idtext), ep->versions,
             ep->rec.updated_at, book->unrendered);
}

/* 1 when the version went to the emit function, 0 when it could not be rendered. */
static int emit_version(vg_episode_book *book, vg_episode *ep) {
    int first = !ep->emitted; /* a first version that could not be rendered: the next one opens the episode */
    ep->draft.produced_at = wall_ms(book);
    apply_draft(ep);
    ep->versions++;
    char *body = render_record(ep->id, book->media, &ep->rec);
    if (!body) {
        say_unrendered(book, ep);
        return 0;
    }
    vg_version v = {
        .episode_id = ep->id, .media = book->media, .opened_at = ep->rec.opened_at,
        .updated_at = ep->rec.updated_at, .is_first = first, .is_closing = ep->rec.closed_at != 0,
        .body = body, .body_len = strlen(body),
    };
    if (book->emit) book->emit(book->emit_ctx, &v);
    ep->emitted = 1;
    cJSON_free(body);
    return 1;
}

/* Closed in on_stop without a reason: waits for vg_book_close_all's. */
static int held_for_stop(const vg_episode_book *book, const vg_episode *ep) {
    return book->stopping && ep->staged && ep->draft.closed_at && !ep->draft.close_reason && !ep->draft.timed_out;
}

int vg_book_commit(vg_episode_book *book) {
    int emitted = 0;
    for (int i = 0; i < book->count; i++) {
        vg_episode *ep = book->open[i];
        if (!ep->staged || held_for_stop(book, ep)) continue;
        emitted += emit_version(book, ep);
        if (ep->rec.closed_at) book_remove_at(book, i--);
    }
    return emitted;
}

void vg_book_rollback(vg_episode_book *book) {
    for (int i = 0; i < book->count; i++) {
        vg_episode *ep = book->open[i];
        if (!ep->staged) continue;
        record_free_fields(&ep->draft, ep->owned);
        ep->staged = 0;
        ep->owned = 0;
        if (ep->versions == 0) {
            ep->discarded = 1;
            book_remove_at(book, i--);
        }
    }
}

void vg_book_begin_stop(vg_episode_book *book) { book->stopping = 1; }

int vg_book_close_all(vg_episode_book *book, int64_t ts, const char *close_reason) {
    for (int i = 0; i < book->count; i++) {
        vg_episode *ep = book->open[i];
        if (!held_for_stop(book, ep)) {
            vg_episode_close(ep, ts, close_reason, NULL, 0);
        } else if (close_reason) { /* closed by the rule at its own time: the reason is the stop's */
            REPLACE_FIELD(ep, close_reason, OWN_CLOSE_REASON, strdup(close_reason));
            ep->draft.timed_out = strcmp(close_reason, TIMEOUT) == 0;
        }
    }
    book->stopping = 0;
    return vg_book_commit(book);
}
