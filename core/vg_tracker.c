/* vg_tracker.c — the multi-object tracker (see vg_tracker.h): prediction, gated greedy matching on
 * distance and size, fragments joined to the track they lie on, tracks opened and dropped. */
#include "vg_tracker.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define VG_TRACKER_MAX_BLOBS 256
#define VELOCITY_SMOOTHING 0.5 /* weight of the newest step in the velocity */
#define GATE_GROWTH 0.5        /* the gate widens by this much of max_distance per frame unseen */
#define SIZE_COST 0.25         /* a size change by a factor e costs this much of the gate */
#define FRAGMENT_PAD 0.25      /* a piece within this much of a track's box size of it belongs to it ... */
#define FRAGMENT_GROWTH 1.3    /* ... unless joining it grows the box beyond this many times its largest */
#define MERGED_GROWTH 1.7      /* a blob this many times a seen track's largest box is objects that met */
#define COASTING (-2)          /* match[]: the track moves along its path inside a merged blob */
#define INSIDE_FRACTION 0.5    /* a blob this much inside a track's box opens no track of its own */

struct vg_tracker {
    int max_tracks, count;
    uint32_t next_id;
    uint64_t frame;
    vg_track *tracks;  /* [0..count), ordered by id */
    int *match;        /* per track: its blob this frame, or -1 */
    vg_blob *obs;      /* per track: its observation this frame (its blob and the pieces that joined it) */
    int owner[VG_TRACKER_MAX_BLOBS]; /* per blob: the track that took it, or -1 */
};

vg_tracker *vg_tracker_new(int max_tracks) {
    if (max_tracks < 1) return NULL;
    vg_tracker *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->max_tracks = max_tracks;
    t->next_id = 1;
    t->tracks = calloc((size_t)max_tracks, sizeof *t->tracks);
    t->match = calloc((size_t)max_tracks, sizeof *t->match);
    t->obs = calloc((size_t)max_tracks, sizeof *t->obs);
    if (!t->tracks || !t->match || !t->obs) {
        vg_tracker_free(t);
        return NULL;
    }
    return t;
}

void vg_tracker_free(vg_tracker *t) {
    if (!t) return;
    free(t->tracks);
    free(t->match);
    free(t->obs);
    free(t);
}

int vg_tracker_count(const vg_tracker *t) { return t->count; }
const vg_track *vg_tracker_get(const vg_tracker *t, int i) { return i >= 0 && i < t->count ? &t->tracks[i] : NULL; }
uint64_t vg_tracker_frame(const vg_tracker *t) { return t->frame; }
void vg_tracker_reset(vg_tracker *t) { t->count = 0; t->frame = 0; }

/* ---------- geometry ---------- */

static double box_area(vg_pixel_rect r) { return (double)r.w * r.h; }

static double overlap(vg_pixel_rect a, vg_pixel_rect b) {
    int x0 = a.x > b.x ? a.x : b.x, y0 = a.y > b.y ? a.y : b.y;
    int x1 = a.x + a.w < b.x + b.w ? a.x + a.w : b.x + b.w, y1 = a.y + a.h < b.y + b.h ? a.y + a.h : b.y + b.h;
    return x1 > x0 && y1 > y0 ? (double)(x1 - x0) * (y1 - y0) : 0;
}

static vg_pixel_rect union_box(vg_pixel_rect a, vg_pixel_rect b) {
    int x0 = a.x < b.x ? a.x : b.x, y0 = a.y < b.y ? a.y : b.y;
    int x1 = a.x + a.w > b.x + b.w ? a.x + a.w : b.x + b.w, y1 = a.y + a.h > b.y + b.h ? a.y + a.h : b.y + b.h;
    return (vg_pixel_rect){x0, y0, x1 - x0, y1 - y0};
}

static vg_pixel_rect padded(vg_pixel_rect r, double pad) {
    int px = (int)ceil(r.w * pad), py = (int)ceil(r.h * pad);
    return (vg_pixel_rect){r.x - px, r.y - py, r.w + 2 * px, r.h + 2 * py};
}

static vg_blob join(const vg_blob *a, const vg_blob *b) {
    vg_blob out = {union_box(a->box, b->box), a->area + b->area, 0, 0};
    double total = out.area > 0 ? out.area : 1;
    out.cx = (a->cx * a->area + b->cx * b->area) / total;
    out.cy = (a->cy * a->area + b->cy * b->area) / total;
    return out;
}

/* ---------- matching ---------- */

static double gate(const vg_track *tr, const vg_tracker_options *o) {
    return o->max_distance * (1 + GATE_GROWTH * tr->missed);
}

/* Distance from the track's prediction plus a size term; INFINITY beyond the gate. */
static double cost(const vg_track *tr, const vg_blob *b, const vg_tracker_options *o) {
    double ahead = tr->missed + 1;
    double d = hypot(b->cx - (tr->blob.cx + tr->vx * ahead), b->cy - (tr->blob.cy + tr->vy * ahead));
    double g = gate(tr, o);
    if (!(d <= g)) return INFINITY;
    double ratio = (b->area > 0 ? b->area : 1) / (double)(tr->blob.area > 0 ? tr->blob.area : 1);
    return d + SIZE_COST * g * fabs(log(ratio));
}

static void match_greedy(vg_tracker *t, const vg_blob *blobs, int n, const vg_tracker_options *o) {
    for (;;) {
        double best = INFINITY;
        int bi = -1, bj = -1;
        for (int i = 0; i < t->count; i++) {
            if (t->match[i] >= 0) continue;
            for (int j = 0; j < n; j++) {
                if (t->owner[j] >= 0) continue;
                double c = cost(&t->tracks[i], &blobs[j], o);
                if (c < best) best = c, bi = i, bj = j;
            }
        }
        if (bi < 0) return;
        t->match[bi] = bj;
        t->owner[bj] = bi;
        t->obs[bi] = blobs[bj];
    }
}

/* A track no blob came near enough to may have come apart: the pieces that lie mostly on its box, moved
 * along its path, are its observation together (within its largest size). */
static void gather_pieces(vg_tracker *t, const vg_blob *blobs, int n) {
    for (int i = 0; i < t->count; i++) {
        const vg_track *tr = &t->tracks[i];
        if (t->match[i] >= 0 || tr->seen < 3) continue;
        vg_pixel_rect ahead = tr->blob.box;
        ahead.x += (int)lround(tr->vx * (tr->missed + 1));
        ahead.y += (int)lround(tr->vy * (tr->missed + 1));
        for (int j = 0; j < n; j++) {
            if (t->owner[j] >= 0 || overlap(ahead, blobs[j].box) <= INSIDE_FRACTION * box_area(blobs[j].box)) continue;
            if (t->match[i] < 0) {
                t->obs[i] = blobs[j];
                t->match[i] = j;
            } else if (box_area(union_box(t->obs[i].box, blobs[j].box)) <= FRAGMENT_GROWTH * tr->peak_box) {
                t->obs[i] = join(&t->obs[i], &blobs[j]);
            } else {
                continue;
            }
            t->owner[j] = i;
        }
    }
}

/* A piece next to a matched track's observation that would not make its box much bigger than the track's
 * last box is part of the same object. */
static void join_fragments(vg_tracker *t, const vg_blob *blobs, int n) {
    for (int j = 0; j < n; j++) {
        if (t->owner[j] >= 0) continue;
        int best = -1;
        double best_area = INFINITY;
        for (int i = 0; i < t->count; i++) {
            if (t->match[i] < 0 || !overlap(padded(t->obs[i].box, FRAGMENT_PAD), blobs[j].box)) continue;
            double grown = box_area(union_box(t->obs[i].box, blobs[j].box));
            if (grown > FRAGMENT_GROWTH * t->tracks[i].peak_box || grown >= best_area) continue;
            best = i, best_area = grown;
        }
        if (best < 0) continue;
        t->obs[best] = join(&t->obs[best], &blobs[j]);
        t->owner[j] = best;
    }
}

static int merged(const vg_track *tr, const vg_blob *b) {
    return tr->seen >= 3 && box_area(b->box) > MERGED_GROWTH * tr->peak_box;
}

static void predicted(const vg_track *tr, double *x, double *y) {
    *x = tr->blob.cx + tr->vx * (tr->missed + 1);
    *y = tr->blob.cy + tr->vy * (tr->missed + 1);
}

static int inside(const vg_pixel_rect *r, double x, double y) {
    return x >= r->x && x < r->x + r->w && y >= r->y && y < r->y + r->h;
}

/* Tracks left without a blob whose path runs into a blob much bigger than themselves, or into another track's
 * blob (two objects passing through each other head-on make one blob no bigger than one of them), are inside
 * it: they coast. So does the track that took that blob: it is a merge, not its own observation. */
static void coast_into_merges(vg_tracker *t, const vg_blob *blobs, int n) {
    for (int i = 0; i < t->count; i++) {
        if (t->match[i] >= 0 || t->tracks[i].seen < 3) continue;
        double x, y;
        predicted(&t->tracks[i], &x, &y);
        for (int j = 0; j < n; j++) {
            if (!inside(&blobs[j].box, x, y) || !(merged(&t->tracks[i], &blobs[j]) || t->owner[j] >= 0)) continue;
            t->match[i] = COASTING;
            int owner = t->owner[j];
            if (owner >= 0 && owner != i && t->match[owner] == j) t->match[owner] = COASTING;
            break;
        }
    }
}

/* Moves the track along its path, its own size kept (its blob is shared with others). */
static void coast(vg_track *tr) {
    double x, y;
    predicted(tr, &x, &y);
    tr->prev_cx = tr->blob.cx;
    tr->prev_cy = tr->blob.cy;
    tr->blob.box.x += (int)lround(x - tr->blob.cx);
    tr->blob.box.y += (int)lround(y - tr->blob.cy);
    tr->blob.cx = x;
    tr->blob.cy = y;
    tr->missed = 0;
    tr->seen++;
}

static void observe(vg_track *tr, const vg_blob *ob) {
    double steps = tr->missed + 1;
    tr->vx += VELOCITY_SMOOTHING * ((ob->cx - tr->blob.cx) / steps - tr->vx);
    tr->vy += VELOCITY_SMOOTHING * ((ob->cy - tr->blob.cy) / steps - tr->vy);
    tr->prev_cx = tr->blob.cx;
    tr->prev_cy = tr->blob.cy;
    tr->blob = *ob;
    tr->missed = 0;
    tr->seen++;
    if (box_area(ob->box) > tr->peak_box) tr->peak_box = box_area(ob->box);
}

static void advance(vg_tracker *t) {
    for (int i = 0; i < t->count; i++) {
        vg_track *tr = &t->tracks[i];
        if (t->match[i] == COASTING || (t->match[i] >= 0 && merged(tr, &t->obs[i]))) coast(tr);
        else if (t->match[i] >= 0) observe(tr, &t->obs[i]);
        else tr->missed++;
        double away = hypot(tr->blob.cx - tr->origin_cx, tr->blob.cy - tr->origin_cy);
        if (away > tr->travelled) tr->travelled = away;
        tr->age = (int)(t->frame - tr->first_seen + 1);
    }
}

static void drop_lost(vg_tracker *t, int max_missed) {
    int kept = 0;
    for (int i = 0; i < t->count; i++) {
        if (t->tracks[i].missed > max_missed) continue;
        t->tracks[kept] = t->tracks[i];
        t->match[kept] = t->match[i];
        t->obs[kept] = t->obs[i];
        kept++;
    }
    t->count = kept;
}

/* Mostly inside a track that was seen this frame: a piece of it, not a new object. */
static int inside_a_track(const vg_tracker *t, const vg_blob *b) {
    for (int i = 0; i < t->count; i++)
        if (t->tracks[i].missed == 0 && overlap(t->tracks[i].blob.box, b->box) > INSIDE_FRACTION * box_area(b->box))
            return 1;
    return 0;
}

static void open_tracks(vg_tracker *t, const vg_blob *blobs, int n) {
    for (int j = 0; j < n && t->count < t->max_tracks; j++) {
        if (t->owner[j] >= 0 || inside_a_track(t, &blobs[j])) continue;
        vg_track *tr = &t->tracks[t->count];
        memset(tr, 0, sizeof *tr);
        tr->id = t->next_id++;
        tr->blob = blobs[j];
        tr->prev_cx = tr->origin_cx = blobs[j].cx;
        tr->prev_cy = tr->origin_cy = blobs[j].cy;
        tr->peak_box = box_area(blobs[j].box);
        tr->first_seen = t->frame;
        tr->age = 1;
        tr->seen = 1;
        t->match[t->count] = j;
        t->owner[j] = t->count++;
    }
}

int vg_tracker_update(vg_tracker *t, const vg_blob *blobs, int n, const vg_tracker_options *o) {
    vg_tracker_options d = {.max_distance = 0, .max_missed = 0};
    if (!o) o = &d;
    if (!blobs || n < 0) n = 0;
    if (n > VG_TRACKER_MAX_BLOBS) n = VG_TRACKER_MAX_BLOBS;
    int max_missed = o->max_missed > 0 ? o->max_missed : 0;
    t->frame++;
    for (int i = 0; i < t->count; i++) t->match[i] = -1;
    for (int j = 0; j < n; j++) t->owner[j] = -1;
    if (o->max_distance >= 0) match_greedy(t, blobs, n, o);
    gather_pieces(t, blobs, n);
    join_fragments(t, blobs, n);
    coast_into_merges(t, blobs, n);
    advance(t);
    drop_lost(t, max_missed);
    open_tracks(t, blobs, n);
    return t->count;
}
