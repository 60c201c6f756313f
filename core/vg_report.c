/* vg_report.c — the --report sink: keeps each episode's last version, its previews and its count of
 * versions, and writes the static page DIR/index.html with the previews beside it when it closes
 * (vg_report.h). */
#include "vg_report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libavutil/bprint.h>

#include "vg_file.h"
#include "vg_jpeg.h"
#include "vg_log.h"
#include "vg_page.h"

#define WHO "report"
#define LANE_PX 26 /* height of one row of bars in the timeline */

typedef struct report_episode {
    uint64_t id;
    long versions;
    cJSON *record;           /* the last version, its previews taken out */
    cJSON *preview;          /* string items: the last preview seen (the rule's best so far), or NULL */
    cJSON *frame_preview;
    cJSON *frame_detections; /* the detections made at the frame preview's time (from the last version with
                                any), drawn over it; NULL when none was */
    double frame_detections_at;
} report_episode;

typedef struct report_sink {
    vg_sink base;
    char *dir, *clip, *media;
    int *failed;
    pthread_mutex_t lock;
    report_episode *episodes; /* in the order their first version came */
    size_t count, cap;
    long versions;
    int finished;
    int64_t first_ts, last_ts;
} report_sink;

/* ---------- collecting versions ---------- */

static report_episode *find_or_add(report_sink *r, uint64_t id) {
    for (size_t i = r->count; i-- > 0;) /* from the newest: the open episodes are the recent ones */
        if (r->episodes[i].id == id) return &r->episodes[i];
    if (r->count == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        report_episode *grown = realloc(r->episodes, cap * sizeof *grown);
        if (!grown) return NULL;
        r->episodes = grown;
        r->cap = cap;
    }
    report_episode *e = &r->episodes[r->count++];
    *e = (report_episode){.id = id};
    return e;
}

/* Takes the string item name out of rec; the new one replaces *kept (an absent one keeps it). */
static void take_string(cJSON *rec, const char *name, cJSON **kept) {
    cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(rec, name);
    if (!cJSON_IsString(item)) {
        cJSON_Delete(item);
        return;
    }
    cJSON_Delete(*kept);
    *kept = item;
}

static int number_of(const cJSON *obj, const char *name, double *out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(item)) return 0;
    *out = item->valuedouble;
    return 1;
}

/* Keeps the record's detections made at its frame preview's time: the boxes that belong over that picture. */
static void keep_frame_detections(report_episode *e) {
    double at, when;
    const cJSON *dets = cJSON_GetObjectItemCaseSensitive(e->record, "detections"), *d;
    if (!number_of(e->record, "frame_preview_timestamp", &at) || !cJSON_IsArray(dets)) return;
    cJSON *matching = cJSON_CreateArray();
    cJSON_ArrayForEach(d, dets)
        if (number_of(d, "detected_at", &when) && when == at) cJSON_AddItemToArray(matching, cJSON_Duplicate(d, 1));
    if (cJSON_GetArraySize(matching) == 0) {
        cJSON_Delete(matching);
        return;
    }
    cJSON_Delete(e->frame_detections);
    e->frame_detections = matching;
    e->frame_detections_at = at;
}

static int report_put(vg_sink *sink, const vg_version *v) {
    report_sink *r = (report_sink *)sink;
    cJSON *rec = cJSON_ParseWithLength(v->body, v->body_len);
    if (!cJSON_IsObject(rec)) {
        cJSON_Delete(rec);
        vg_error(WHO, "episode %" PRIu64 ": a version that is not a JSON object", v->episode_id);
        return -1;
    }
    pthread_mutex_lock(&r->lock);
    report_episode *e = find_or_add(r, v->episode_id);
    if (e) {
        take_string(rec, "preview", &e->preview);
        take_string(rec, "frame_preview", &e->frame_preview);
        cJSON_Delete(e->record);
        e->record = rec;
        e->versions++;
        r->versions++;
        keep_frame_detections(e);
    }
    pthread_mutex_unlock(&r->lock);
    if (!e) {
        cJSON_Delete(rec);
        vg_error(WHO, "episode %" PRIu64 ": out of memory", v->episode_id);
        return -1;
    }
    return 0;
}

/* ---------- small formatters ---------- */

static const char *string_of(const cJSON *obj, const char *name) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* A time in unix ms (within +-1e15: a wild number is clamped, never converted out of range). */
static int64_t ms_of(const cJSON *obj, const char *name, int64_t otherwise) {
    double v;
    if (!number_of(obj, name, &v)) return otherwise;
    return v < -1e15 ? (int64_t)-1e15 : v > 1e15 ? (int64_t)1e15 : (int64_t)v;
}

/* Text (from the rule, the clip, anyone) as HTML: safe between tags and inside quoted attributes. */
static void esc(AVBPrint *b, const char *text) {
    av_bprint_escape(b, text ? text : "", NULL, AV_ESCAPE_MODE_XML,
                     AV_ESCAPE_FLAG_XML_SINGLE_QUOTES | AV_ESCAPE_FLAG_XML_DOUBLE_QUOTES);
}

static void clip_time(AVBPrint *b, int64_t origin, int64_t ts) {
    av_bprintf(b, "%+.2f s", (double)(ts - origin) / 1000.0);
}

static void utc_time(AVBPrint *b, int64_t ts) {
    char text[64];
    av_bprintf(b, "%s", vg_log_utc_text(ts, text, sizeof text));
}

/* "+2.00 s · 2026-01-01 12:00:02.000 UTC" */
static void both_times(AVBPrint *b, int64_t origin, int64_t ts) {
    clip_time(b, origin, ts);
    av_bprintf(b, " <span class=\"utc\">");
    utc_time(b, ts);
    av_bprintf(b, "</span>");
}

/* A steady colour per episode type. */
static int hue_of(const char *type) {
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)(type ? type : ""); *p; p++) h = (h ^ *p) * 16777619u;
    return (int)(h % 360);
}

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* ---------- the page ---------- */

typedef struct page {
    AVBPrint b;
    const report_sink *r;
    report_episode **order; /* by opened_at */
    int64_t origin, end;    /* the timeline: first frame .. last frame (or the last episode time beyond it) */
    int clip_known;
} page;

static int64_t opened_of(const report_episode *e) { return ms_of(e->record, "opened_at", 0); }
static int64_t ended_of(const report_episode *e) {
    return ms_of(e->record, "closed_at", ms_of(e->record, "updated_at", opened_of(e)));
}

static int by_opened(const void *a, const void *b) {
    const report_episode *x = *(report_episode *const *)a, *y = *(report_episode *const *)b;
    int64_t ox = opened_of(x), oy = opened_of(y);
    return ox < oy ? -1 : ox > oy ? 1 : x->id < y->id ? -1 : x->id > y->id;
}

static void page_span(page *p) {
    const report_sink *r = p->r;
    p->clip_known = r->first_ts != 0 || r->last_ts != 0;
    p->origin = p->clip_known ? r->first_ts : r->count ? opened_of(p->order[0]) : 0;
    p->end = p->clip_known ? r->last_ts : p->origin;
    for (size_t i = 0; i < r->count; i++) {
        if (opened_of(p->order[i]) < p->origin) p->origin = opened_of(p->order[i]);
        if (ended_of(p->order[i]) > p->end) p->end = ended_of(p->order[i]);
    }
}

static const char STYLE[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}"
    "main{max-width:1180px;margin:0 auto;padding:16px 20px 40px}"
    "h1{font-size:20px;margin:8px 0 2px}h2{font-size:16px;margin:0 0 8px}"
    ".sub{color:#5a6272;margin:0 0 14px}.utc{color:#6b7385;font-size:12px}"
    "section.timeline,article.episode{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:12px 14px;"
    "margin:0 0 14px}"
    ".track{position:relative;margin:6px 0 0;border-left:1px solid #c5cad4;border-right:1px solid #c5cad4}"
    ".bar{position:absolute;height:20px;border-radius:4px;color:#fff;font-size:12px;line-height:20px;padding:0 5px;"
    "box-sizing:border-box;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;text-decoration:none;min-width:4px}"
    ".bar:hover{outline:2px solid #1d2330}"
    ".axis{position:relative;height:18px;border-top:1px solid #c5cad4;font-size:11px;color:#5a6272}"
    ".tick{position:absolute;top:0;border-left:1px solid #c5cad4;padding-left:3px;height:14px}"
    "article h2 .n{color:#6b7385}article h2 .id{font:12px ui-monospace,monospace;color:#6b7385;margin-left:8px}"
    ".swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}"
    "dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0 0 10px}"
    "dl.facts dt{color:#5a6272}dl.facts dd{margin:0}"
    ".pictures{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}"
    "figure{margin:0}figcaption{font-size:12px;color:#5a6272;margin-top:3px}"
    "img.preview{display:block;height:180px;width:auto;max-width:360px;object-fit:contain;background:#e9ecf1;"
    "border:1px solid #dde1e8}"
    ".frame{position:relative;display:inline-block;line-height:0}"
    ".frame img{display:block;width:480px;max-width:100%;border:1px solid #dde1e8}"
    ".box{position:absolute;border:2px solid #ff3b30;box-sizing:border-box}"
    ".box span{position:absolute;left:-2px;bottom:100%;background:#ff3b30;color:#fff;font-size:11px;line-height:15px;"
    "padding:0 4px;white-space:nowrap}"
    "img.broken{outline:2px dashed #ff3b30}"
    "pre{background:#f7f8fa;border:1px solid #e4e7ed;border-radius:6px;padding:8px 10px;overflow:auto;max-height:320px;"
    "font:12px/1.4 ui-monospace,monospace;margin:4px 0 0}"
    "table.dets{border-collapse:collapse;font-size:12px}table.dets td,table.dets th{border-bottom:1px solid #e4e7ed;"
    "padding:2px 10px 2px 0;text-align:left}"
    "details{margin-top:8px}summary{cursor:pointer;color:#5a6272}.none{color:#8a91a0}";

/* Marks every image once the page has loaded: data-loaded 1/0 and its natural width, for a reader (and a test)
 * to see which ones a browser could show. */
static const char SCRIPT[] =
    "addEventListener('load',function(){var im=document.images,ok=0;"
    "for(var i=0;i<im.length;i++){var loaded=im[i].complete&&im[i].naturalWidth>0;"
    "im[i].setAttribute('data-loaded',loaded?'1':'0');im[i].setAttribute('data-natural-width',String(im[i].naturalWidth));"
    "if(loaded)ok++;else im[i].classList.add('broken');}"
    "document.body.setAttribute('data-images-loaded',ok+'/'+im.length);});";

/* The page's policy: nothing from the network, images from its directory, and no script but its own (by hash):
 * markup that escaped escaping still could not run. */
static void content_policy(AVBPrint *b) {
    char hash[VG_PAGE_CSP_HASH_SIZE];
    if (vg_page_csp_hash(SCRIPT, strlen(SCRIPT), hash, sizeof hash) < 0) {
        av_bprintf(b, "default-src 'none'"); /* no script runs: the page still reads */
        return;
    }
    av_bprintf(b, "default-src 'none'; img-src 'self' file:; style-src 'unsafe-inline'; script-src %s", hash);
}

static void page_head(page *p) {
    const report_sink *r = p->r;
    AVBPrint *b = &p->b;
    av_bprintf(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta http-equiv=\"Content-Security-Policy\" content=\"");
    content_policy(b);
    av_bprintf(b, "\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>vigil report: ");
    esc(b, r->clip);
    av_bprintf(b, "</title><style>%s</style></head>\n<body data-episodes=\"%zu\"><main>\n<h1>vigil report: ", STYLE,
               r->count);
    esc(b, r->clip);
    av_bprintf(b, "</h1><p class=\"sub\">media <b>");
    esc(b, r->media);
    av_bprintf(b, "</b> · <span class=\"count\">%zu episode%s</span>, %ld version%s · ", r->count,
               r->count == 1 ? "" : "s", r->versions, r->versions == 1 ? "" : "s");
    if (p->clip_known) {
        av_bprintf(b, "first frame ");
        utc_time(b, r->first_ts);
        av_bprintf(b, ", last +%.2f s; times are shown from the first frame (+s) and in UTC",
                   (double)(r->last_ts - r->first_ts) / 1000.0);
    } else {
        av_bprintf(b, "no frame was analysed: times are shown from the first episode");
    }
    av_bprintf(b, "</p>\n");
}

/* Ticks 1, 2 or 5 times a power of ten seconds apart: at most about ten over the span. */
static void page_axis(page *p, double span_ms) {
    double span_s = span_ms / 1000.0, step = 0.1;
    static const double NICE[] = {1, 2, 5};
    for (double scale = 0.1; span_s / step > 10; scale *= 10)
        for (size_t i = 0; i < 3 && span_s / step > 10; i++) step = NICE[i] * scale;
    av_bprintf(&p->b, "<div class=\"axis\">");
    for (int k = 0; k * step <= span_s + 1e-9; k++)
        av_bprintf(&p->b, "<div class=\"tick\" style=\"left:%.3f%%\">%+g s</div>", 100.0 * k * step / span_s, k * step);
    av_bprintf(&p->b, "</div>");
}

/* Whichever close reasons the record has: Central's close_reason and the finer payload.close_reason; labelled,
 * each in its own span, when labels is set. */
static void close_reasons(AVBPrint *b, const cJSON *rec, int labels) {
    const cJSON *payload = cJSON_GetObjectItemCaseSensitive(rec, "payload");
    const char *top = string_of(rec, "close_reason"), *fine = string_of(payload, "close_reason");
    if (top) {
        av_bprintf(b, "%s", labels ? "<span class=\"close-reason-top\">" : "");
        esc(b, top);
        av_bprintf(b, "%s", labels ? "</span> <span class=\"utc\">(close_reason)</span>" : "");
    }
    if (top && fine) av_bprintf(b, " · ");
    if (fine) {
        av_bprintf(b, "%s", labels ? "<span class=\"close-reason-payload\">" : "");
        esc(b, fine);
        av_bprintf(b, "%s", labels ? "</span> <span class=\"utc\">(payload.close_reason)</span>" : "");
    }
    if (!top && !fine) av_bprintf(b, "%s", cJSON_GetObjectItemCaseSensitive(rec, "closed_at") ? "none given" : "not closed");
}

/* "#n type<sep>from<to>to[ (utc of from)]<before_reasons>close reasons": a bar's text and (with its separators and
 * the UTC time) its tooltip. */
static void bar_label(AVBPrint *b, const page *p, size_t n, const char *sep, const char *to_sep, int utc,
                      const char *before_reasons) {
    const report_episode *e = p->order[n];
    int64_t from = opened_of(e), to = ended_of(e);
    av_bprintf(b, "#%zu ", n + 1);
    esc(b, string_of(e->record, "episode_type"));
    av_bprintf(b, "%s", sep);
    clip_time(b, p->origin, from);
    av_bprintf(b, "%s", to_sep);
    clip_time(b, p->origin, to);
    if (utc) {
        av_bprintf(b, " (");
        utc_time(b, from);
        av_bprintf(b, ")");
    }
    av_bprintf(b, "%s", before_reasons);
    close_reasons(b, e->record, 0);
}

/* One episode's bar: where it lies on the clip, its type, times and close reasons (in full in its tooltip). */
static void timeline_bar(AVBPrint *b, const page *p, size_t n, size_t lane, double span) {
    const report_episode *e = p->order[n];
    int64_t from = opened_of(e), to = ended_of(e);
    av_bprintf(b, "<a class=\"bar\" href=\"#ep-%" PRIu64 "\" style=\"left:%.3f%%;width:%.3f%%;top:%zupx;"
                  "background:hsl(%d,55%%,42%%)\" title=\"", e->id, 100.0 * (double)(from - p->origin) / span,
               100.0 * (double)(to - from) / span, lane * LANE_PX + 3, hue_of(string_of(e->record, "episode_type")));
    bar_label(b, p, n, ", ", " to ", 1, ", closed: ");
    av_bprintf(b, "\">");
    bar_label(b, p, n, " · ", " → ", 0, " · ");
    av_bprintf(b, "</a>");
}

/* The bars, each in the first row that is free at its start, over an axis of clip seconds. */
static void page_timeline(page *p) {
    const report_sink *r = p->r;
    AVBPrint *b = &p->b, bars;
    av_bprintf(b, "<section class=\"timeline\"><h2>Timeline</h2>");
    double span = p->end > p->origin ? (double)(p->end - p->origin) : 1000.0;
    int64_t *lane_end = calloc(r->count ? r->count : 1, sizeof *lane_end);
    size_t lanes = 0;
    av_bprint_init(&bars, 0, AV_BPRINT_SIZE_UNLIMITED);
    for (size_t i = 0; i < r->count && lane_end; i++) {
        size_t lane = 0;
        while (lane < lanes && lane_end[lane] >= opened_of(p->order[i])) lane++;
        if (lane == lanes) lanes++;
        lane_end[lane] = ended_of(p->order[i]);
        timeline_bar(&bars, p, i, lane, span);
    }
    free(lane_end);
    if (r->count) {
        av_bprintf(b, "<div class=\"track\" style=\"height:%zupx\">", lanes * LANE_PX + 6);
        av_bprint_append_data(b, bars.str, bars.len);
        av_bprintf(b, "</div>");
        page_axis(p, span);
    } else {
        av_bprintf(b, "<p class=\"none\">No episodes.</p>");
    }
    av_bprint_finalize(&bars, NULL);
    av_bprintf(b, "</section>\n");
}

static void fact(AVBPrint *b, const char *name, const char *cls) {
    av_bprintf(b, "<dt>%s</dt><dd class=\"%s\">", name, cls);
}

static void episode_facts(page *p, const report_episode *e) {
    AVBPrint *b = &p->b;
    const cJSON *rec = e->record;
    int64_t opened = opened_of(e), updated = ms_of(rec, "updated_at", opened);
    av_bprintf(b, "<dl class=\"facts\">");
    fact(b, "opened", "opened");
    both_times(b, p->origin, opened);
    if (cJSON_GetObjectItemCaseSensitive(rec, "closed_at")) {
        int64_t closed = ms_of(rec, "closed_at", updated);
        av_bprintf(b, "</dd>");
        fact(b, "closed", "closed");
        both_times(b, p->origin, closed);
        av_bprintf(b, " (%.2f s long)", (double)(closed - opened) / 1000.0);
    } else {
        av_bprintf(b, "</dd>");
        fact(b, "last version", "updated");
        both_times(b, p->origin, updated);
        av_bprintf(b, " (not closed)");
    }
    av_bprintf(b, "</dd>");
    fact(b, "close reason", "close-reason");
    close_reasons(b, rec, 1);
    av_bprintf(b, "</dd>");
    fact(b, "versions", "versions");
    av_bprintf(b, "%ld</dd></dl>", e->versions);
}

/* Writes DIR/<id>-<suffix>.jpg from a base64 JPEG; 0, or -1 with the reason (bad data: the picture is left out,
 * the page says why; a failed write fails the page). */
static int write_jpeg(const report_sink *r, uint64_t id, const char *suffix, const char *b64, char *name,
                      size_t namelen, char *why, size_t whylen, int *io_error) {
    char reason[256]; /* "name: strerror" */
    snprintf(name, namelen, "%" PRIu64 "-%s.jpg", id, suffix);
    int dirfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = dirfd < 0 ? -2 : vg_jpeg_save_base64(dirfd, name, b64, reason, sizeof reason);
    if (dirfd < 0) snprintf(why, whylen, "%s: %s", r->dir, strerror(errno));
    else close(dirfd);
    if (rc == -1) snprintf(why, whylen, "%s", reason);
    else if (rc == -2 && dirfd >= 0) snprintf(why, whylen, "%s/%s", r->dir, reason); /* reason names the file */
    if (rc == -2) {
        vg_error(WHO, "%s", why);
        *io_error = 1;
    }
    return rc < 0 ? -1 : 0;
}

static void picture_missing(AVBPrint *b, const char *what, const char *why) {
    av_bprintf(b, "<figure><p class=\"none\">%s: ", what);
    esc(b, why); /* a path, strerror */
    av_bprintf(b, "</p></figure>");
}

static void preview_figure(page *p, const report_episode *e, int *io_error) {
    char name[64], why[PATH_MAX + 64];
    if (!e->preview) return;
    if (write_jpeg(p->r, e->id, "preview", e->preview->valuestring, name, sizeof name, why, sizeof why, io_error) < 0)
        return picture_missing(&p->b, "preview", why);
    av_bprintf(&p->b, "<figure><img class=\"preview\" src=\"%s\" alt=\"preview\"><figcaption>preview", name);
    double at;
    if (number_of(e->record, "preview_timestamp", &at)) {
        av_bprintf(&p->b, " at ");
        clip_time(&p->b, p->origin, ms_of(e->record, "preview_timestamp", 0));
    }
    av_bprintf(&p->b, "</figcaption></figure>");
}

static void detection_label(AVBPrint *b, const cJSON *d) {
    double confidence;
    esc(b, string_of(d, "object_class"));
    if (number_of(d, "confidence", &confidence)) av_bprintf(b, " %.2f", confidence);
}

/* A detection's appearance.box {top, left, bottom, right} in frame fractions, clamped; 0 when it has none. */
static int box_of(const cJSON *d, double *top, double *left, double *bottom, double *right) {
    const cJSON *box = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "appearance"), "box");
    if (!number_of(box, "top", top) || !number_of(box, "left", left) || !number_of(box, "bottom", bottom) ||
        !number_of(box, "right", right))
        return 0;
    *top = clamp01(*top), *left = clamp01(*left), *bottom = clamp01(*bottom), *right = clamp01(*right);
    return *bottom > *top && *right > *left;
}

static void frame_figure(page *p, const report_episode *e, int *io_error) {
    char name[64], why[PATH_MAX + 64];
    if (!e->frame_preview) return;
    if (write_jpeg(p->r, e->id, "frame-preview", e->frame_preview->valuestring, name, sizeof name, why, sizeof why,
                   io_error) < 0)
        return picture_missing(&p->b, "frame preview", why);
    AVBPrint *b = &p->b;
    double at = 0, top, left, bottom, right;
    int timed = number_of(e->record, "frame_preview_timestamp", &at);
    /* the boxes seen at the picture's time; else the last version's, said to be from another time */
    int same_time = e->frame_detections && timed && e->frame_detections_at == at;
    const cJSON *dets = same_time ? e->frame_detections : cJSON_GetObjectItemCaseSensitive(e->record, "detections"), *d;
    if (!cJSON_IsArray(dets)) dets = NULL;
    int drawn = 0;
    av_bprintf(b, "<figure><div class=\"frame\"><img class=\"frame-preview\" src=\"%s\" alt=\"frame preview\">", name);
    cJSON_ArrayForEach(d, dets) {
        if (!box_of(d, &top, &left, &bottom, &right)) continue;
        av_bprintf(b, "<div class=\"box\" style=\"left:%.3f%%;top:%.3f%%;width:%.3f%%;height:%.3f%%\"><span>", 100 * left,
                   100 * top, 100 * (right - left), 100 * (bottom - top));
        detection_label(b, d);
        av_bprintf(b, "</span></div>");
        drawn++;
    }
    av_bprintf(b, "</div><figcaption>frame");
    if (timed) {
        av_bprintf(b, " at ");
        clip_time(b, p->origin, ms_of(e->record, "frame_preview_timestamp", 0));
    }
    av_bprintf(b, ", <span class=\"boxes\">%d</span> box%s", drawn, drawn == 1 ? "" : "es");
    if (drawn && !same_time) av_bprintf(b, " (the last version's detections, not of this frame)");
    av_bprintf(b, "</figcaption></figure>");
}

static void detections_table(page *p, const report_episode *e) {
    const cJSON *dets = cJSON_GetObjectItemCaseSensitive(e->record, "detections"), *d;
    int n = cJSON_IsArray(dets) ? cJSON_GetArraySize(dets) : 0;
    if (!n) return;
    AVBPrint *b = &p->b;
    double top, left, bottom, right, at;
    av_bprintf(b, "<details><summary>%d detection%s (last version)</summary><table class=\"dets\"><tr><th>object_class"
                  "</th><th>detected at</th><th>box (top, left, bottom, right)</th></tr>", n, n == 1 ? "" : "s");
    cJSON_ArrayForEach(d, dets) {
        av_bprintf(b, "<tr><td>");
        detection_label(b, d);
        av_bprintf(b, "</td><td>");
        if (number_of(d, "detected_at", &at)) clip_time(b, p->origin, ms_of(d, "detected_at", 0));
        av_bprintf(b, "</td><td>");
        if (box_of(d, &top, &left, &bottom, &right)) av_bprintf(b, "%.3f, %.3f, %.3f, %.3f", top, left, bottom, right);
        else av_bprintf(b, "none");
        av_bprintf(b, "</td></tr>");
    }
    av_bprintf(b, "</table></details>");
}

/* cJSON's pretty form with two spaces a level and one after a colon (its tabs are layout only: a tab in a
 * string is printed as \t); malloc'd. */
static char *untabbed(const char *text) {
    char *out = malloc(2 * strlen(text) + 1), *o = out;
    for (const char *c = text; out && *c; c++) {
        if (*c != '\t') *o++ = *c;
        else if (c > text && c[-1] == ':') *o++ = ' ';
        else *o++ = ' ', *o++ = ' ';
    }
    if (out) *o = 0;
    return out;
}

static void payload_block(page *p, const report_episode *e) {
    const cJSON *payload = cJSON_GetObjectItemCaseSensitive(e->record, "payload");
    char *text = payload ? cJSON_Print(payload) : NULL, *shown = text ? untabbed(text) : NULL;
    av_bprintf(&p->b, "<details open><summary>payload</summary><pre class=\"payload\">");
    esc(&p->b, shown ? shown : text ? text : "none");
    av_bprintf(&p->b, "</pre></details>");
    free(shown);
    free(text);
}

static void page_episode(page *p, size_t n, int *io_error) {
    const report_episode *e = p->order[n];
    const char *type = string_of(e->record, "episode_type");
    AVBPrint *b = &p->b;
    av_bprintf(b, "<article class=\"episode\" id=\"ep-%" PRIu64 "\" data-episode-id=\"%" PRIu64 "\"><h2>"
                  "<span class=\"swatch\" style=\"background:hsl(%d,55%%,42%%)\"></span><span class=\"n\">#%zu</span> "
                  "<span class=\"type\">", e->id, e->id, hue_of(type), n + 1);
    esc(b, type ? type : "(no type)");
    av_bprintf(b, "</span><span class=\"id\">%" PRIu64 "</span></h2>", e->id);
    episode_facts(p, e);
    if (e->preview || e->frame_preview) {
        av_bprintf(b, "<div class=\"pictures\">");
        preview_figure(p, e, io_error);
        frame_figure(p, e, io_error);
        av_bprintf(b, "</div>");
    }
    detections_table(p, e);
    payload_block(p, e);
    av_bprintf(b, "</article>\n");
}

/* DIR/name replaced atomically (vg_file_replace_at): a browser never reads half a page. */
static int write_file(const char *dir, const char *name, const void *data, size_t len, char *err, size_t errlen) {
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = dirfd < 0 ? -1 : vg_file_replace_at(dirfd, name, data, len, 0644, 0);
    if (rc < 0) snprintf(err, errlen, "%s/%s: %s", dir, name, strerror(errno));
    if (dirfd >= 0) close(dirfd);
    return rc;
}

/* The id of a picture this sink writes ("<id>-preview.jpg", "<id>-frame-preview.jpg"), or 0 for any other name. */
static uint64_t picture_id(const char *name) {
    char *end;
    if (name[0] < '1' || name[0] > '9') return 0;
    errno = 0;
    uint64_t id = strtoull(name, &end, 10);
    if (errno || (strcmp(end, "-preview.jpg") != 0 && strcmp(end, "-frame-preview.jpg") != 0)) return 0;
    return id;
}

static int has_episode(const report_sink *r, uint64_t id) {
    for (size_t i = 0; i < r->count; i++)
        if (r->episodes[i].id == id) return 1;
    return 0;
}

/* Pictures an earlier report left in DIR, of episodes this one does not have: removed, so the directory holds
 * this report's page and its pictures only. Other files are left alone. */
static void remove_stale_pictures(const report_sink *r) {
    DIR *d = opendir(r->dir);
    if (!d) return;
    int removed = 0;
    for (struct dirent *de; (de = readdir(d));) {
        uint64_t id = picture_id(de->d_name);
        if (id && !has_episode(r, id) && unlinkat(dirfd(d), de->d_name, 0) == 0) removed++;
    }
    closedir(d);
    if (removed) vg_info(WHO, "%s: %d picture%s of an earlier report removed", r->dir, removed, removed == 1 ? "" : "s");
}

static int write_page(report_sink *r) {
    page p = {.r = r, .order = calloc(r->count ? r->count : 1, sizeof *p.order)};
    if (!p.order) {
        vg_error(WHO, "%s/index.html: out of memory", r->dir);
        return -1;
    }
    for (size_t i = 0; i < r->count; i++) p.order[i] = &r->episodes[i];
    qsort(p.order, r->count, sizeof *p.order, by_opened);
    page_span(&p);
    av_bprint_init(&p.b, 0, AV_BPRINT_SIZE_UNLIMITED);
    int io_error = 0;
    page_head(&p);
    page_timeline(&p);
    for (size_t i = 0; i < r->count; i++) page_episode(&p, i, &io_error);
    av_bprintf(&p.b, "</main><script>%s</script></body></html>\n", SCRIPT);
    char err[PATH_MAX + 128];
    int rc = -1;
    if (!av_bprint_is_complete(&p.b)) vg_error(WHO, "%s/index.html: out of memory", r->dir);
    else if (write_file(r->dir, "index.html", p.b.str, p.b.len, err, sizeof err) < 0) vg_error(WHO, "%s", err);
    else rc = io_error ? -1 : 0;
    if (rc == 0) vg_info(WHO, "%s/index.html: %zu episode%s", r->dir, r->count, r->count == 1 ? "" : "s");
    if (rc == 0) remove_stale_pictures(r);
    av_bprint_finalize(&p.b, NULL);
    free(p.order);
    return rc;
}

/* ---------- the sink ---------- */

static void report_close(vg_sink *sink) {
    report_sink *r = (report_sink *)sink;
    if (r->finished && write_page(r) < 0 && r->failed) *r->failed = 1;
    for (size_t i = 0; i < r->count; i++) {
        report_episode *e = &r->episodes[i];
        cJSON_Delete(e->record);
        cJSON_Delete(e->preview);
        cJSON_Delete(e->frame_preview);
        cJSON_Delete(e->frame_detections);
    }
    free(r->episodes);
    free(r->dir);
    free(r->clip);
    free(r->media);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void vg_report_finish(vg_sink *sink, int64_t first_ts, int64_t last_ts) {
    if (!sink || sink->close != report_close) return;
    report_sink *r = (report_sink *)sink;
    pthread_mutex_lock(&r->lock);
    r->finished = 1;
    r->first_ts = first_ts;
    r->last_ts = last_ts;
    pthread_mutex_unlock(&r->lock);
}

vg_sink *vg_report_open(const vg_report_options *o, char *err, size_t errlen) {
    if (vg_file_make_dirs(o->dir, 0777, err, errlen) < 0) return NULL;
    report_sink *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "%s: out of memory", o->dir);
        return NULL;
    }
    r->base = (vg_sink){.name = "report", .put = report_put, .close = report_close};
    r->dir = strdup(o->dir);
    r->clip = strdup(o->clip ? o->clip : "");
    r->media = strdup(o->media ? o->media : "");
    r->failed = o->failed;
    pthread_mutex_init(&r->lock, NULL);
    return &r->base;
}
