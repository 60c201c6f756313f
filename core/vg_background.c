/* vg_background.c — the background model (see vg_background.h for what it promises): per-pixel mean and
 * noise, a global gain for light changes, conservative update with absorption of what stands still, the
 * covered background each absorbed pixel remembers, the ghost test on still regions, the light switch and
 * the despeckled motion mask. */
#include "vg_background.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FG 1u           /* over its threshold at the last update */
#define COVERED 2u      /* covered[] holds the background this pixel had before it absorbed something */
#define NOISE_RATE 0.05f /* how fast a pixel's noise estimate follows (faster over the first frames: the
                            mean of what it has seen) */
#define NOISE_MAX 24.0f  /* a pixel never gets blinder than threshold + noise_factor x this */
#define GAIN_DEADBAND 0.02 /* a gain this close to 1 is no light change */
#define GHOST_RATIO 0.5  /* a still region is a ghost when the frame shows less than this of the model's
                            outline along its border */
#define GHOST_MIN_EDGE 6.0 /* ... and the model shows an outline there at all (mean gradient, luma) */
#define GHOST_MIN_AREA 6
#define SPECK_AREA 24       /* a still region smaller than this (pixels at analysis size) is absorbed after ghost_ms */
#define FLICKER_STEP 32     /* a pixel's flicker grows by this each time it starts to change ... */
#define FLICKER_DECAY 5     /* ... and loses 1/32 of itself every update */
#define FLICKER_MASKED 128  /* from this on it flickers (a wobbling edge, leaves, water): it counts as no change */
#define GHOST_MIN_OUTLINE 0.8 /* ... and most of the region's border lies against background */

struct vg_background {
    int w, h, ready;
    vg_background_options o;
    float *mean;         /* w*h: the background */
    float *noise;        /* w*h: mean absolute residual of the pixel while background */
    uint8_t *covered;    /* w*h: see COVERED */
    uint8_t *flags;      /* w*h */
    uint32_t *fg_since;  /* w*h: stream ms (mod 2^32) when the pixel became foreground */
    uint8_t *raw;        /* w*h: over threshold */
    uint8_t *motion;     /* w*h: raw, despeckled */
    uint8_t *held;       /* w*h: not absorbed */
    uint8_t *flicker;    /* w*h: how often the pixel started to change lately (FLICKER_*) */
    uint8_t *visited;    /* w*h: ghost regions */
    uint8_t *column;     /* w: the despeckle's column sums */
    uint8_t *zeros;      /* w: the rows outside the frame */
    int *row_loud;       /* h: pixels over their threshold per row at the last update (rows of none are skipped) */
    int *stack;          /* w*h */
    int held_any, static_pixels;
    long frames;         /* updates since the model was seeded */
    vg_background_stats stats;
};

vg_background_options vg_background_defaults(void) {
    return (vg_background_options){.learning_rate = 0.02, .threshold = 12, .noise_factor = 4, .absorb_ms = 8000,
                                   .ghost_ms = 1000, .lightswitch = 0.6, .compensate_light = 1, .despeckle = 1};
}

static int dims_ok(int w, int h) { return w > 0 && h > 0 && w <= VG_MAX_DIM && h <= VG_MAX_DIM; }

vg_background *vg_background_new(int w, int h, const vg_background_options *o) {
    if (!dims_ok(w, h)) return NULL;
    vg_background *bg = calloc(1, sizeof *bg);
    if (!bg) return NULL;
    size_t n = (size_t)w * h;
    bg->w = w;
    bg->h = h;
    bg->o = o ? *o : vg_background_defaults();
    bg->mean = calloc(n, sizeof *bg->mean);
    bg->noise = calloc(n, sizeof *bg->noise);
    bg->fg_since = calloc(n, sizeof *bg->fg_since);
    bg->stack = calloc(n, sizeof *bg->stack);
    bg->covered = calloc(n, 1);
    bg->flags = calloc(n, 1);
    bg->raw = calloc(n, 1);
    bg->motion = calloc(n, 1);
    bg->held = calloc(n, 1);
    bg->flicker = calloc(n, 1);
    bg->visited = calloc(n, 1);
    bg->column = calloc((size_t)w, 1);
    bg->zeros = calloc((size_t)w, 1);
    bg->row_loud = calloc((size_t)h, sizeof *bg->row_loud);
    if (!bg->column || !bg->zeros || !bg->row_loud || !bg->mean || !bg->noise || !bg->fg_since || !bg->stack || !bg->covered || !bg->flags || !bg->raw ||
        !bg->motion || !bg->held || !bg->flicker || !bg->visited) {
        vg_background_free(bg);
        return NULL;
    }
    bg->stats.gain = 1;
    return bg;
}

void vg_background_free(vg_background *bg) {
    if (!bg) return;
    free(bg->mean);
    free(bg->noise);
    free(bg->fg_since);
    free(bg->stack);
    free(bg->covered);
    free(bg->flags);
    free(bg->raw);
    free(bg->motion);
    free(bg->held);
    free(bg->flicker);
    free(bg->visited);
    free(bg->column);
    free(bg->zeros);
    free(bg->row_loud);
    free(bg);
}

void vg_background_reset(vg_background *bg) {
    bg->ready = 0;
    memset(bg->motion, 0, (size_t)bg->w * bg->h);
    memset(bg->raw, 0, (size_t)bg->w * bg->h);
}

const uint8_t *vg_background_motion(const vg_background *bg) { return bg->motion; }
const float *vg_background_model(const vg_background *bg) { return bg->mean; }
void vg_background_get_stats(const vg_background *bg, vg_background_stats *out) { *out = bg->stats; }

void vg_background_hold(vg_background *bg, const vg_pixel_rect *boxes, int n) {
    memset(bg->held, 0, (size_t)bg->w * bg->h);
    bg->held_any = 0;
    for (int k = 0; k < n && boxes; k++) {
        int x0 = boxes[k].x < 0 ? 0 : boxes[k].x, y0 = boxes[k].y < 0 ? 0 : boxes[k].y;
        int x1 = boxes[k].x + boxes[k].w, y1 = boxes[k].y + boxes[k].h;
        if (x1 > bg->w) x1 = bg->w;
        if (y1 > bg->h) y1 = bg->h;
        for (int y = y0; y < y1; y++) memset(bg->held + (size_t)y * bg->w + x0, 1, x1 > x0 ? (size_t)(x1 - x0) : 0);
        if (x1 > x0 && y1 > y0) bg->held_any = 1;
    }
}

static void seed(vg_background *bg, const uint8_t *luma, int stride) {
    for (int y = 0; y < bg->h; y++) {
        const uint8_t *src = luma + (size_t)y * stride;
        float *mean = bg->mean + (size_t)y * bg->w;
        for (int x = 0; x < bg->w; x++) mean[x] = src[x];
    }
    size_t n = (size_t)bg->w * bg->h;
    memset(bg->flags, 0, n);
    memset(bg->raw, 0, n);
    memset(bg->motion, 0, n);
    memset(bg->row_loud, 0, (size_t)bg->h * sizeof *bg->row_loud);
    bg->ready = 1;
    bg->frames = 0;
}

/* The light change. Cameras apply exposure through a tone curve, so the dark floor and the white wall do
 * not change by one factor: the change is measured per band of model luma (LIGHT_BANDS of them), as the
 * median ratio of frame to model over a grid of pixels that were background at the last update. A band
 * with too few samples takes the median of all of them; with too few of those (the frame is mostly
 * foreground: nothing to measure against) there is no light change. */
#define LIGHT_BANDS 16
#define RATIO_BINS 128            /* ratio x 64, 0..2 */
#define BAND_MIN_SAMPLES 24
#define LIGHT_DEADBAND_LUMA 3.0 /* luma */

typedef struct light {
    float band[LIGHT_BANDS];  /* frame / model for model luma in [16 k, 16 k + 16) */
    double overall;           /* the median over all bands (the gain reported in the stats) */
    double noise;             /* the mean noise of the sampled background pixels (for the stats) */
} light;

static double median_ratio(const uint32_t *hist, long n) {
    long half = n / 2, seen = 0;
    int b = 0;
    while (b < RATIO_BINS - 1 && seen + (long)hist[b] <= half) seen += hist[b++];
    double ratio = (b + (double)(half - seen) / (hist[b] ? hist[b] : 1)) / 64.0;
    return fabs(ratio - 1.0) < GAIN_DEADBAND ? 1.0 : ratio;
}

static void measure_light(const vg_background *bg, const uint8_t *luma, int stride, light *out) {
    static const int STEP = 4;
    uint32_t hist[LIGHT_BANDS][RATIO_BINS], all[RATIO_BINS];
    long count[LIGHT_BANDS] = {0}, n = 0, grid = 0;
    double noise = 0;
    memset(hist, 0, sizeof hist);
    memset(all, 0, sizeof all);
    for (int y = 1; y < bg->h; y += STEP) {
        for (int x = 1; x < bg->w; x += STEP) {
            size_t i = (size_t)y * bg->w + x;
            grid++;
            float m = bg->mean[i];
            if ((bg->flags[i] & FG) || m < 8) continue;
            int bin = (int)(luma[(size_t)y * stride + x] * 64.0f / m), band = (int)m >> 4;
            bin = bin < RATIO_BINS ? bin : RATIO_BINS - 1;
            hist[band > LIGHT_BANDS - 1 ? LIGHT_BANDS - 1 : band][bin]++;
            count[band > LIGHT_BANDS - 1 ? LIGHT_BANDS - 1 : band]++;
            all[bin]++;
            noise += bg->noise[i];
            n++;
        }
    }
    out->noise = n ? noise / (double)n : 0;
    out->overall = n >= grid / 4 ? median_ratio(all, n) : 1.0;
    for (int b = 0; b < LIGHT_BANDS; b++) {
        double ratio = n >= grid / 4 && count[b] >= BAND_MIN_SAMPLES ? median_ratio(hist[b], count[b]) : out->overall;
        /* a change the band's pixels would not show (under LIGHT_DEADBAND_LUMA) is none */
        out->band[b] = fabs(ratio - 1.0) * (16 * b + 8) < LIGHT_DEADBAND_LUMA ? 1.0f : (float)ratio;
    }
}

typedef struct pass {
    light light;              /* measured before the pixels are compared (and then the model relit) */
    float rate, noise_rate, threshold, noise_factor;
    uint32_t now, absorb_ms, ghost_ms;
    int absorb, ghosts;
} pass;

enum { PIXEL_BACKGROUND, PIXEL_MOVING, PIXEL_STILL, PIXEL_ABSORBED, PIXEL_RESTORED };

/* A pixel over its threshold: what stood on it left (the background it covered is back), it just began to
 * change, it has stood still long enough to be absorbed, or long enough for the ghost test. */
static inline int classify_changed(vg_background *bg, const pass *p, size_t i, float x, float thr) {
    uint8_t flags = bg->flags[i];
    if ((flags & COVERED) && fabsf(x - bg->covered[i]) <= thr) {
        bg->mean[i] = x;
        bg->flags[i] = 0;
        return PIXEL_RESTORED;
    }
    if (!(flags & FG)) {
        bg->flags[i] = flags | FG;
        bg->fg_since[i] = p->now;
        bg->flicker[i] = (uint8_t)(bg->flicker[i] > 255 - FLICKER_STEP ? 255 : bg->flicker[i] + FLICKER_STEP);
        return PIXEL_MOVING;
    }
    uint32_t still = p->now - bg->fg_since[i];
    if (p->absorb && still >= p->absorb_ms && !bg->held[i]) {
        float m = bg->mean[i];
        if (!(flags & COVERED)) bg->covered[i] = (uint8_t)lrintf(m < 0 ? 0 : m > 255 ? 255 : m);
        bg->mean[i] = x;
        bg->flags[i] = COVERED;
        return PIXEL_ABSORBED;
    }
    return p->ghosts && still >= p->ghost_ms ? PIXEL_STILL : PIXEL_MOVING;
}

static inline float threshold_of(const vg_background *bg, const pass *p, size_t i) {
    float limit = bg->noise[i] * p->noise_factor;
    return limit > p->threshold ? limit : p->threshold;
}

/* The light changed: the model (and the backgrounds pixels remember) take the change of their band, so the
 * frame is compared with what the scene looks like under the new light, and the light is learnt at once. */
static void relight(vg_background *bg, const light *l) {
    size_t n = (size_t)bg->w * bg->h;
    for (size_t i = 0; i < n; i++) {
        float m = bg->mean[i];
        bg->mean[i] = m * l->band[m < 255 ? (int)m >> 4 : LIGHT_BANDS - 1];
        if (bg->flags[i] & COVERED) {
            float c = bg->covered[i] * l->band[bg->covered[i] >> 4];
            bg->covered[i] = (uint8_t)(c > 255 ? 255 : c + 0.5f);
        }
    }
}

/* One branch-free pass over a row learns every quiet pixel and marks the others in raw (it vectorizes); only
 * those few go through classify_changed. */
static int learn_quiet_row(vg_background *bg, const pass *p, const uint8_t *src, size_t row) {
    float *restrict mean = bg->mean + row, *restrict noise = bg->noise + row;
    uint8_t *restrict flags = bg->flags + row, *restrict raw = bg->raw + row;
    const float rate = p->rate, noise_rate = p->noise_rate, factor = p->noise_factor, floor = p->threshold;
    const int w = bg->w;
    for (int x = 0; x < w; x++) {
        /* arithmetic on comparisons, no branch and no float select: the loop vectorizes */
        float m = mean[x], d = (float)src[x] - m, ad = fabsf(d), limit = noise[x] * factor;
        float thr = floor + (limit - floor) * (float)(limit > floor);
        int loud = ad > thr;
        float quiet = (float)(1 - loud), capped = NOISE_MAX + (ad - NOISE_MAX) * (float)(ad < NOISE_MAX);
        mean[x] = m + quiet * rate * d;
        noise[x] += quiet * noise_rate * (capped - noise[x]);
        raw[x] = (uint8_t)loud;
    }
    unsigned loud = 0;
    uint8_t *restrict flicker = bg->flicker + row;
    for (int x = 0; x < w; x++) flags[x] &= (uint8_t)(~FG | raw[x]); /* quiet pixels are no longer FG */
    for (int x = 0; x < w; x++) flicker[x] = (uint8_t)(flicker[x] - (flicker[x] >> FLICKER_DECAY));
    for (int x = 0; x < w; x++) loud += raw[x];
    return (int)loud;
}

static int light_changed(const light *l) {
    for (int b = 0; b < LIGHT_BANDS; b++)
        if (l->band[b] != 1.0f) return 1;
    return 0;
}

typedef struct tally { long changed, still, absorbed, restored; } tally;

static void classify_all(vg_background *bg, const pass *p, const uint8_t *luma, int stride, tally *t) {
    long counts[5] = {0};
    for (int y = 0; y < bg->h; y++) {
        const uint8_t *src = luma + (size_t)y * stride;
        size_t row = (size_t)y * bg->w;
        uint8_t *raw = bg->raw + row;
        int loud = learn_quiet_row(bg, p, src, row);
        for (int x = 0; x < bg->w && loud; x++) {
            if (!raw[x]) continue; /* learnt already */
            int code = classify_changed(bg, p, row + x, src[x], threshold_of(bg, p, row + x));
            counts[code]++;
            raw[x] = (uint8_t)((code == PIXEL_MOVING || code == PIXEL_STILL) && bg->flicker[row + x] < FLICKER_MASKED);
            loud -= !raw[x];
        }
        bg->row_loud[y] = loud;
    }
    t->changed = counts[PIXEL_MOVING] + counts[PIXEL_STILL];
    t->still = counts[PIXEL_STILL];
    t->absorbed = counts[PIXEL_ABSORBED];
    t->restored = counts[PIXEL_RESTORED];
    bg->static_pixels = (int)t->still;
}

/* 3x3 majority: a pixel moves when at least 5 of its 9 neighbours (itself included, the frame's outside
 * counting as still) do. Removes speckle and fills pinholes. Column sums first, so both loops vectorize. */
static void majority(const uint8_t *src, uint8_t *dst, uint8_t *column, const uint8_t *zeros, const int *row_loud,
                     int w, int h) {
    for (int y = 0; y < h; y++) {
        if (!row_loud[y] && (y == 0 || !row_loud[y - 1]) && (y + 1 == h || !row_loud[y + 1])) {
            memset(dst + (size_t)y * w, 0, (size_t)w); /* nothing changed near this row */
            continue;
        }
        const uint8_t *row = src + (size_t)y * w;
        const uint8_t *up = y > 0 ? row - w : zeros, *down = y + 1 < h ? row + w : zeros;
        for (int x = 0; x < w; x++) column[x] = (uint8_t)(row[x] + up[x] + down[x]);
        uint8_t *out = dst + (size_t)y * w;
        out[0] = (uint8_t)(column[0] + (w > 1 ? column[1] : 0) >= 5);
        for (int x = 1; x + 1 < w; x++) out[x] = (uint8_t)(column[x - 1] + column[x] + column[x + 1] >= 5);
        if (w > 1) out[w - 1] = (uint8_t)(column[w - 2] + column[w - 1] >= 5);
    }
}

static int is_static(const vg_background *bg, const pass *p, size_t i) {
    return (bg->flags[i] & FG) && bg->raw[i] && p->now - bg->fg_since[i] >= p->ghost_ms;
}

static float model_gradient(const float *mean, size_t i, int w) {
    return fabsf(mean[i + 1] - mean[i - 1]) + fabsf(mean[i + w] - mean[i - w]);
}

static float frame_gradient(const uint8_t *luma, int x, int y, int stride) {
    const uint8_t *at = luma + (size_t)y * stride + x;
    return (float)(abs(at[1] - at[-1]) + abs(at[stride] - at[-stride]));
}

/* A border pixel of a still region is one with a 4-neighbour outside it; it shows the region's outline
 * only where that neighbour is background (against other foreground, a moving arm say, it is no outline). */
typedef struct outline {
    double frame_edge, model_edge; /* gradients summed along the outline, in the frame and in the model */
    int outline, border;           /* outline pixels; border pixels (outline or not) */
    int covered;                   /* pixels that remember a background: absorption, not a ghost, is theirs */
} outline;

static void add_border(const vg_background *bg, const uint8_t *luma, int stride, int q, int against_background,
                       outline *o) {
    int w = bg->w, x = q % w, y = q / w;
    o->border++;
    if (!against_background || x == 0 || y == 0 || x + 1 == w || y + 1 == bg->h) return;
    o->frame_edge += frame_gradient(luma, x, y, stride);
    o->model_edge += model_gradient(bg->mean, (size_t)q, w);
    o->outline++;
}

/* Floods one still region from seed, measuring its outline. Returns its size; the region's pixels are left
 * on the stack [0, size). */
static int flood_static(vg_background *bg, const pass *p, const uint8_t *luma, int stride, int seed, outline *o) {
    int w = bg->w, h = bg->h, top = 0, size = 0;
    bg->visited[seed] = 1;
    bg->stack[top++] = seed;
    while (size < top) {
        int q = bg->stack[size++], x = q % w, y = q / w, border = 0, against_background = 0;
        if (bg->flags[q] & COVERED) o->covered++;
        static const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
        for (int k = 0; k < 4; k++) {
            int nx = x + dx[k], ny = y + dy[k];
            if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
            size_t n = (size_t)ny * w + nx;
            if (!is_static(bg, p, n)) {
                border = 1;
                if (!bg->raw[n]) against_background = 1;
                continue;
            }
            if (bg->visited[n]) continue;
            bg->visited[n] = 1;
            bg->stack[top++] = (int)n;
        }
        if (border) add_border(bg, luma, stride, q, against_background, o);
    }
    return size;
}

/* The region becomes background. Each pixel remembers what the model had (unless it remembers an older
 * background already): if the test was wrong, the background comes back when the object leaves. */
static void absorb_region(vg_background *bg, const uint8_t *luma, int stride, int size) {
    for (int k = 0; k < size; k++) {
        int q = bg->stack[k];
        float m = bg->mean[q];
        if (!(bg->flags[q] & COVERED)) bg->covered[q] = (uint8_t)lrintf(m < 0 ? 0 : m > 255 ? 255 : m);
        bg->mean[q] = luma[(size_t)(q / bg->w) * stride + q % bg->w];
        bg->flags[q] = COVERED;
        bg->raw[q] = 0;
    }
}

/* Floods the still region at seed and absorbs it when it is a ghost: judged only when most of its border is
 * outline (a still part of something moving is not one) and when it covers no background it remembers (then
 * it is something that stood, not a ghost). */
static int region_held(const vg_background *bg, int size) {
    for (int k = 0; k < size; k++)
        if (bg->held[bg->stack[k]]) return 1;
    return 0;
}

static void judge_region(vg_background *bg, const pass *p, const uint8_t *luma, int stride, size_t seed) {
    outline o = {0, 0, 0, 0, 0};
    int size = flood_static(bg, p, luma, stride, (int)seed, &o);
    if (size < SPECK_AREA && !region_held(bg, size)) { /* a still speck is a remnant, not an object */
        absorb_region(bg, luma, stride, size);
        return;
    }
    if (size < GHOST_MIN_AREA || o.covered || o.outline < GHOST_MIN_OUTLINE * o.border) return;
    if (o.model_edge / o.outline >= GHOST_MIN_EDGE && o.frame_edge < GHOST_RATIO * o.model_edge) {
        absorb_region(bg, luma, stride, size);
        bg->stats.ghosts++;
    }
}

/* A still region whose outline is in the model but not in the frame is what was there before, not what
 * is there now: a ghost. It becomes background at once. */
static void clear_ghosts(vg_background *bg, const pass *p, const uint8_t *luma, int stride) {
    if (!bg->static_pixels) return;
    memset(bg->visited, 0, (size_t)bg->w * bg->h);
    for (int y = 0; y < bg->h; y++) {
        if (!bg->row_loud[y]) continue; /* nothing over its threshold in this row */
        for (size_t i = (size_t)y * bg->w; i < (size_t)(y + 1) * bg->w; i++)
            if (bg->raw[i] && !bg->visited[i] && is_static(bg, p, i)) judge_region(bg, p, luma, stride, i);
    }
}

static int check_frame(const vg_background *bg, const uint8_t *luma, int width, int height, int stride) {
    return luma && width == bg->w && height == bg->h && stride >= width;
}

int vg_background_update(vg_background *bg, const uint8_t *luma, int width, int height, int stride,
                         int64_t ts_ms) {
    size_t n = (size_t)bg->w * bg->h;
    if (!check_frame(bg, luma, width, height, stride)) {
        memset(bg->motion, 0, n);
        return -1;
    }
    if (!bg->ready) {
        seed(bg, luma, stride);
        return 0;
    }
    const vg_background_options *o = &bg->o;
    bg->frames++;
    pass p = {.noise_rate = 1.0f / (float)bg->frames > NOISE_RATE ? 1.0f / (float)bg->frames : NOISE_RATE,
              .rate = (float)(o->learning_rate > 0 ? (o->learning_rate < 1 ? o->learning_rate : 1) : 0),
              .threshold = (float)o->threshold, .noise_factor = (float)o->noise_factor,
              .now = (uint32_t)ts_ms, .absorb = o->absorb_ms > 0, .absorb_ms = (uint32_t)o->absorb_ms,
              .ghosts = o->ghost_ms > 0, .ghost_ms = (uint32_t)o->ghost_ms};
    measure_light(bg, luma, stride, &p.light);
    if (!o->compensate_light) p.light.overall = 1.0;
    else if (light_changed(&p.light)) relight(bg, &p.light);
    tally t;
    classify_all(bg, &p, luma, stride, &t);
    bg->stats.gain = p.light.overall;
    bg->stats.noise = p.light.noise;
    bg->stats.raw_changed = (double)t.changed / (double)n;
    bg->stats.absorbed += t.absorbed;
    bg->stats.restored += t.restored;
    if (o->lightswitch > 0 && bg->stats.raw_changed >= o->lightswitch) {
        seed(bg, luma, stride); /* the whole view changed at once: learn it anew (noise is kept) */
        bg->stats.lightswitches++;
        return 0;
    }
    clear_ghosts(bg, &p, luma, stride);
    if (o->despeckle) majority(bg->raw, bg->motion, bg->column, bg->zeros, bg->row_loud, bg->w, bg->h);
    else memcpy(bg->motion, bg->raw, n);
    return 0;
}
