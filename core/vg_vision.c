/* vg_vision.c — analysis-size vision primitives: zone masks rasterized from
 * polygons, per-zone statistics, 8-connected blobs, Laplacian
 * sharpness and luma histograms.
 *
 * Allocation happens only in the constructors (vg_mask_from_polygon,
 * vg_mask_full, *_new). Every per-frame function works in buffers owned by
 * its object or passed in by the caller. */
#include "vg_vision.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dims_ok(int w, int h) {
    return w > 0 && h > 0 && w <= VG_MAX_DIM && h <= VG_MAX_DIM;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---------- bounding boxes ---------- */

/* Inclusive min/max accumulator, turned into a vg_pixel_rect at the end. */
typedef struct box_acc { int x0, y0, x1, y1; } box_acc;

static void box_start(box_acc *b) { b->x0 = b->y0 = VG_MAX_DIM; b->x1 = b->y1 = -1; }

static void box_add(box_acc *b, int x, int y) {
    if (x < b->x0) b->x0 = x;
    if (x > b->x1) b->x1 = x;
    if (y < b->y0) b->y0 = y;
    if (y > b->y1) b->y1 = y;
}

static vg_pixel_rect box_rect(const box_acc *b) {
    vg_pixel_rect r = {0, 0, 0, 0};
    if (b->x1 < 0) return r;
    r.x = b->x0; r.y = b->y0;
    r.w = b->x1 - b->x0 + 1; r.h = b->y1 - b->y0 + 1;
    return r;
}

/* ---------- zone masks ---------- */

/* Recompute count and bbox from px. */
static void mask_summarize(vg_mask *m) {
    box_acc b;
    box_start(&b);
    m->count = 0;
    for (int y = 0; y < m->h; y++) {
        const uint8_t *row = m->px + (size_t)y * m->w;
        for (int x = 0; x < m->w; x++)
            if (row[x]) { m->count++; box_add(&b, x, y); }
    }
    m->bbox = box_rect(&b);
}

static int mask_alloc(vg_mask *m, int w, int h) {
    memset(m, 0, sizeof(*m));
    if (!dims_ok(w, h)) return -1;
    m->px = calloc((size_t)w * h, 1);
    if (!m->px) return -1;
    m->w = w; m->h = h;
    return 0;
}

static int polygon_check(const double *xy, int npoints, char *err, size_t errlen) {
    if (!xy || npoints < 3) {
        set_err(err, errlen, "polygon needs at least 3 points, got %d", xy ? npoints : 0);
        return -1;
    }
    for (int i = 0; i < npoints; i++) {
        for (int k = 0; k < 2; k++) {
            double v = xy[2 * i + k];
            const char *axis = k ? "y" : "x";
            if (!isfinite(v)) {
                set_err(err, errlen, "point %d: %s=%g is not a finite number", i, axis, v);
                return -1;
            }
            if (v < 0.0 || v > 1.0) {
                set_err(err, errlen, "point %d: %s=%g outside 0..1", i, axis, v);
                return -1;
            }
        }
    }
    return 0;
}

static void sort_doubles(double *v, int n) {
    for (int i = 1; i < n; i++) {
        double key = v[i];
        int j = i - 1;
        while (j >= 0 && v[j] > key) { v[j + 1] = v[j]; j--; }
        v[j + 1] = key;
    }
}

/* Fill one row: pixel x is inside a span [xa, xb) when its centre x+0.5 is. */
static void fill_row(uint8_t *row, int w, const double *xs, int nx) {
    for (int k = 0; k + 1 < nx; k += 2) {
        int x0 = (int)ceil(xs[k] - 0.5), x1 = (int)ceil(xs[k + 1] - 0.5);
        if (x0 < 0) x0 = 0;
        if (x1 > w) x1 = w;
        for (int x = x0; x < x1; x++) row[x] = 1;
    }
}

/* Even-odd scanline fill sampled at pixel centres. xs: scratch of npoints. */
static void rasterize(vg_mask *m, const double *xy, int npoints, double *xs) {
    for (int y = 0; y < m->h; y++) {
        double py = (y + 0.5) / m->h;
        int nx = 0;
        for (int i = 0; i < npoints; i++) {
            int j = (i + 1) % npoints;
            double xa = xy[2 * i], ya = xy[2 * i + 1];
            double xb = xy[2 * j], yb = xy[2 * j + 1];
            if ((ya <= py) == (yb <= py)) continue;  /* half-open: each vertex once */
            xs[nx++] = (xa + (py - ya) * (xb - xa) / (yb - ya)) * m->w;
        }
        sort_doubles(xs, nx);
        fill_row(m->px + (size_t)y * m->w, m->w, xs, nx);
    }
}

int vg_mask_from_polygon(vg_mask *m, int w, int h, const double *xy, int npoints,
                         char *err, size_t errlen) {
    memset(m, 0, sizeof(*m));
    if (!dims_ok(w, h)) {
        set_err(err, errlen, "mask size %dx%d invalid", w, h);
        return -1;
    }
    if (polygon_check(xy, npoints, err, errlen) < 0) return -1;
    double *xs = malloc(sizeof(double) * (size_t)npoints);
    if (!xs || mask_alloc(m, w, h) < 0) {
        free(xs);
        set_err(err, errlen, "out of memory");
        return -1;
    }
    rasterize(m, xy, npoints, xs);
    free(xs);
    mask_summarize(m);
    if (m->count == 0) {
        vg_mask_free(m);
        set_err(err, errlen, "polygon covers no pixel centre at %dx%d", w, h);
        return -1;
    }
    return 0;
}

int vg_mask_full(vg_mask *m, int w, int h) {
    if (mask_alloc(m, w, h) < 0) return -1;
    memset(m->px, 1, (size_t)w * h);
    mask_summarize(m);
    return 0;
}

void vg_mask_free(vg_mask *m) {
    if (!m) return;
    free(m->px);
    memset(m, 0, sizeof(*m));
}

/* ---------- binary morphology ---------- */

/* want == 1: dilate (any neighbour set); want == 0: erode (any neighbour clear). */
static void morph3x3(const uint8_t *src, uint8_t *dst, int w, int h, uint8_t want) {
    for (int y = 0; y < h; y++) {
        int ya = y > 0 ? y - 1 : y, yb = y < h - 1 ? y + 1 : y;
        for (int x = 0; x < w; x++) {
            int xa = x > 0 ? x - 1 : x, xb = x < w - 1 ? x + 1 : x;
            uint8_t out = !want;
            for (int j = ya; j <= yb && out != want; j++)
                for (int i = xa; i <= xb; i++)
                    if ((src[(size_t)j * w + i] != 0) == want) { out = want; break; }
            dst[(size_t)y * w + x] = out;
        }
    }
}

void vg_binary_erode(const uint8_t *src, uint8_t *dst, int w, int h) {
    morph3x3(src, dst, w, h, 0);
}

void vg_binary_dilate(const uint8_t *src, uint8_t *dst, int w, int h) {
    morph3x3(src, dst, w, h, 1);
}

/* ---------- per-zone statistics ---------- */

/* Counts the moving zone pixels of one row; only a row with motion is scanned again for the box. */
static void measure_row_motion(const uint8_t *in, const uint8_t *moving, int x0, int x1, int y,
                               vg_zone_stats *out, box_acc *box) {
    int count = 0;
    for (int x = x0; x < x1; x++) count += in[x] & moving[x];
    if (!count) return;
    out->motion_pixels += count;
    int first = x0, last = x1 - 1;
    while (!(in[first] & moving[first])) first++;
    while (!(in[last] & moving[last])) last--;
    box_add(box, first, y);
    box_add(box, last, y);
}

void vg_zone_measure(const vg_mask *zone, const uint8_t *motion, const uint8_t *luma,
                     int stride, vg_zone_stats *out) {
    memset(out, 0, sizeof(*out));
    if (!zone || !zone->px || zone->count == 0) return;
    const vg_pixel_rect *r = &zone->bbox;
    uint64_t sum = 0, sumsq = 0;
    box_acc motion_box;
    box_start(&motion_box);
    for (int y = r->y; y < r->y + r->h; y++) {
        const uint8_t *in = zone->px + (size_t)y * zone->w;
        const uint8_t *src = luma + (size_t)y * stride;
        uint32_t row_sum = 0, row_sumsq = 0; /* branch-free over the row: the compiler vectorizes it */
        for (int x = r->x; x < r->x + r->w; x++) {
            uint32_t v = src[x] * (uint32_t)in[x];
            row_sum += v;
            row_sumsq += v * v;
        }
        sum += row_sum;
        sumsq += row_sumsq;
        if (motion) measure_row_motion(in, motion + (size_t)y * zone->w, r->x, r->x + r->w, y, out, &motion_box);
    }
    double n = zone->count;
    out->pixels = zone->count;
    out->changed = out->motion_pixels / n;
    out->mean = (double)sum / n;
    out->variance = (double)sumsq / n - out->mean * out->mean;
    if (out->variance < 0) out->variance = 0;   /* rounding */
    out->motion_bbox = box_rect(&motion_box);
}

/* ---------- connected components ---------- */

struct vg_blobber {
    int w, h, max_blobs;
    int total;           /* components >= min_area in the last find */
    uint8_t *visited;    /* w*h */
    int *stack;          /* w*h pixel indices; each pixel pushed at most once */
};

vg_blobber *vg_blobber_new(int w, int h, int max_blobs) {
    if (!dims_ok(w, h) || max_blobs < 1) return NULL;
    vg_blobber *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->w = w; b->h = h; b->max_blobs = max_blobs;
    b->visited = malloc((size_t)w * h);
    b->stack = malloc(sizeof(int) * (size_t)w * h);
    if (!b->visited || !b->stack) { vg_blobber_free(b); return NULL; }
    return b;
}

/* Flood-fill the component containing seed; visited marks on push. */
static vg_blob flood(vg_blobber *b, const uint8_t *motion, const uint8_t *zone, int seed) {
    int w = b->w, h = b->h, top = 0;
    int64_t sumx = 0, sumy = 0;
    box_acc box;
    box_start(&box);
    vg_blob blob = {{0, 0, 0, 0}, 0, 0, 0};
    b->visited[seed] = 1;
    b->stack[top++] = seed;
    while (top > 0) {
        int p = b->stack[--top], x = p % w, y = p / w;
        blob.area++; sumx += x; sumy += y;
        box_add(&box, x, y);
        for (int ny = y - 1; ny <= y + 1; ny++) {
            if (ny < 0 || ny >= h) continue;
            for (int nx = x - 1; nx <= x + 1; nx++) {
                if (nx < 0 || nx >= w) continue;
                int q = ny * w + nx;
                if (b->visited[q] || !motion[q] || (zone && !zone[q])) continue;
                b->visited[q] = 1;
                b->stack[top++] = q;
            }
        }
    }
    blob.box = box_rect(&box);
    blob.cx = (double)sumx / blob.area;
    blob.cy = (double)sumy / blob.area;
    return blob;
}

/* Insert into out[0..*n) kept sorted by area descending, capacity cap.
 * Equal areas keep arrival order. */
static void insert_by_area(vg_blob *out, int *n, int cap, const vg_blob *blob) {
    int pos = *n;
    while (pos > 0 && out[pos - 1].area < blob->area) pos--;
    if (pos >= cap) return;
    int last = *n < cap ? *n : cap - 1;
    memmove(out + pos + 1, out + pos, sizeof(*out) * (size_t)(last - pos));
    out[pos] = *blob;
    if (*n < cap) (*n)++;
}

int vg_blobs_find(vg_blobber *b, const uint8_t *motion, const vg_mask *zone,
                  int min_area, vg_blob *out, int max_out) {
    if (!motion) return -1;
    if (zone && (zone->w != b->w || zone->h != b->h || !zone->px)) return -1;
    const uint8_t *zpx = zone ? zone->px : NULL;
    int cap = max_out < b->max_blobs ? max_out : b->max_blobs, n = 0;
    b->total = 0;
    memset(b->visited, 0, (size_t)b->w * b->h);
    for (int p = 0; p < b->w * b->h; p++) {
        if (!motion[p] || b->visited[p] || (zpx && !zpx[p])) continue; /* motion is sparse: tested first */
        vg_blob blob = flood(b, motion, zpx, p);
        if (blob.area < min_area) continue;
        b->total++;
        if (cap > 0) insert_by_area(out, &n, cap, &blob);
    }
    return n;
}

int vg_blobber_total(const vg_blobber *b) { return b->total; }

void vg_blobber_free(vg_blobber *b) {
    if (!b) return;
    free(b->visited);
    free(b->stack);
    free(b);
}

/* ---------- sharpness and histograms ---------- */

static int mask_fits(const vg_mask *m, int w, int h) {
    return !m || (m->px && m->w == w && m->h == h);
}

double vg_sharpness(const uint8_t *luma, int w, int h, int stride, const vg_mask *mask) {
    if (!luma || !dims_ok(w, h) || stride < w || !mask_fits(mask, w, h)) return -1;
    int64_t sum = 0, sumsq = 0, n = 0;
    for (int y = 1; y < h - 1; y++) {
        const uint8_t *row = luma + (size_t)y * stride;
        for (int x = 1; x < w - 1; x++) {
            if (mask && !mask->px[(size_t)y * w + x]) continue;
            int lap = row[x - 1] + row[x + 1] + row[x - stride] + row[x + stride] - 4 * row[x];
            sum += lap;
            sumsq += (int64_t)lap * lap;
            n++;
        }
    }
    if (n == 0) return 0;
    double mean = (double)sum / (double)n, var = (double)sumsq / (double)n - mean * mean;
    return var > 0 ? var : 0;
}

long vg_histogram(const uint8_t *luma, int w, int h, int stride, const vg_mask *mask,
                  uint32_t hist[256]) {
    if (!luma || !dims_ok(w, h) || stride < w || !mask_fits(mask, w, h)) return -1;
    memset(hist, 0, 256 * sizeof(uint32_t));
    long total = 0;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = luma + (size_t)y * stride;
        const uint8_t *in = mask ? mask->px + (size_t)y * w : NULL;
        for (int x = 0; x < w; x++) {
            if (in && !in[x]) continue;
            hist[row[x]]++;
            total++;
        }
    }
    return total;
}

double vg_histogram_correlation(const uint32_t a[256], const uint32_t b[256]) {
    double ma = 0, mb = 0;
    for (int i = 0; i < 256; i++) { ma += a[i]; mb += b[i]; }
    ma /= 256; mb /= 256;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < 256; i++) {
        double da = a[i] - ma, db = b[i] - mb;
        sab += da * db; saa += da * da; sbb += db * db;
    }
    if (saa == 0 || sbb == 0)   /* a flat histogram has no shape to compare */
        return memcmp(a, b, 256 * sizeof(uint32_t)) == 0 ? 1.0 : 0.0;
    return sab / sqrt(saa * sbb);
}

double vg_histogram_chi2(const uint32_t a[256], const uint32_t b[256]) {
    double ta = 0, tb = 0;
    for (int i = 0; i < 256; i++) { ta += a[i]; tb += b[i]; }
    if (ta == 0 || tb == 0) return ta == tb ? 0.0 : 1.0;
    double d = 0;
    for (int i = 0; i < 256; i++) {
        double p = a[i] / ta, q = b[i] / tb;
        if (p + q > 0) d += (p - q) * (p - q) / (p + q);
    }
    return 0.5 * d;
}
