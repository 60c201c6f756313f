/* test_vision.c — unit tests for core/vg_vision.c on tiny synthetic planes.
 * Every expected value is computed by hand in the comment beside it. */
#include "check.h"
#include "vg_vision.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void fill(uint8_t *p, int w, int h, int stride, uint8_t v) {
    for (int y = 0; y < h; y++) memset(p + (size_t)y * stride, v, (size_t)w);
}

static void rect(uint8_t *p, int stride, int x, int y, int w, int h, uint8_t v) {
    for (int j = y; j < y + h; j++) memset(p + (size_t)j * stride + x, v, (size_t)w);
}

#define CHECK_RECT(r, X, Y, W, H) do { \
    CHECK_INT((r).x, X); CHECK_INT((r).y, Y); CHECK_INT((r).w, W); CHECK_INT((r).h, H); \
} while (0)

/* ---------- masks ---------- */

static void test_mask_polygons(void) {
    vg_mask m;
    char err[128];

    /* Pixel centres (x+.5)/8 in [.25,.75) -> x = 2..5, same for y: 4x4. */
    const double square[] = {0.25, 0.25, 0.75, 0.25, 0.75, 0.75, 0.25, 0.75};
    CHECK_INT(vg_mask_from_polygon(&m, 8, 8, square, 4, err, sizeof err), 0);
    CHECK_INT(m.count, 16);
    CHECK_RECT(m.bbox, 2, 2, 4, 4);
    CHECK_INT(m.px[2 * 8 + 2], 1);
    CHECK_INT(m.px[6 * 8 + 6], 0);
    vg_mask_free(&m);
    CHECK(m.px == NULL);

    /* Triangle x+y<1 on 4x4: centre test x+y+1 < 4 -> x+y <= 2: 3+2+1 = 6. */
    const double tri[] = {0, 0, 1, 0, 0, 1};
    CHECK_INT(vg_mask_from_polygon(&m, 4, 4, tri, 3, err, sizeof err), 0);
    CHECK_INT(m.count, 6);
    CHECK_RECT(m.bbox, 0, 0, 3, 3);
    CHECK_INT(m.px[0 * 4 + 2], 1);
    CHECK_INT(m.px[0 * 4 + 3], 0);
    CHECK_INT(m.px[2 * 4 + 0], 1);
    CHECK_INT(m.px[2 * 4 + 1], 0);
    vg_mask_free(&m);

    /* Concave L on 4x4: top half full (8) + bottom-left quarter (4). */
    const double ell[] = {0, 0, 1, 0, 1, 0.5, 0.5, 0.5, 0.5, 1, 0, 1};
    CHECK_INT(vg_mask_from_polygon(&m, 4, 4, ell, 6, err, sizeof err), 0);
    CHECK_INT(m.count, 12);
    CHECK_INT(m.px[3 * 4 + 1], 1);
    CHECK_INT(m.px[3 * 4 + 2], 0);
    vg_mask_free(&m);

    /* Whole frame as a polygon, clockwise order. */
    const double whole[] = {0, 0, 0, 1, 1, 1, 1, 0};
    CHECK_INT(vg_mask_from_polygon(&m, 5, 3, whole, 4, err, sizeof err), 0);
    CHECK_INT(m.count, 15);
    CHECK_RECT(m.bbox, 0, 0, 5, 3);
    vg_mask_free(&m);

    CHECK_INT(vg_mask_full(&m, 5, 3), 0);
    CHECK_INT(m.count, 15);
    CHECK_RECT(m.bbox, 0, 0, 5, 3);
    vg_mask_free(&m);
    vg_mask_free(&m);  /* double free of a freed mask is harmless */
}

static void test_mask_errors(void) {
    vg_mask m;
    char err[128];

    CHECK_INT(vg_mask_from_polygon(&m, 8, 8, (const double[]){0, 0, 1, 1}, 2, err, sizeof err), -1);
    CHECK_STR(err, "polygon needs at least 3 points, got 2");
    CHECK(m.px == NULL);

    const double bad_x[] = {0, 0, 1, 0, 1.5, 1};
    CHECK_INT(vg_mask_from_polygon(&m, 8, 8, bad_x, 3, err, sizeof err), -1);
    CHECK_STR(err, "point 2: x=1.5 outside 0..1");

    const double bad_y[] = {0, 0, 1, -0.25, 1, 1};
    CHECK_INT(vg_mask_from_polygon(&m, 8, 8, bad_y, 3, err, sizeof err), -1);
    CHECK_STR(err, "point 1: y=-0.25 outside 0..1");

    const double nan_x[] = {NAN, 0, 1, 0, 1, 1};
    CHECK_INT(vg_mask_from_polygon(&m, 8, 8, nan_x, 3, err, sizeof err), -1);
    CHECK(strstr(err, "point 0: x=") == err);
    CHECK(strstr(err, "not a finite number") != NULL);

    const double inf_y[] = {0, 0, 1, 0, 1, INFINITY};
    CHECK_INT(vg_mask_from_polygon(&m, 8, 8, inf_y, 3, err, sizeof err), -1);
    CHECK_STR(err, "point 2: y=inf is not a finite number");

    const double line[] = {0, 0, 0.5, 0.5, 1, 1};
    CHECK_INT(vg_mask_from_polygon(&m, 8, 8, line, 3, err, sizeof err), -1);
    CHECK_STR(err, "polygon covers no pixel centre at 8x8");
    CHECK(m.px == NULL);

    CHECK_INT(vg_mask_from_polygon(&m, 0, 8, line, 3, err, sizeof err), -1);
    CHECK_STR(err, "mask size 0x8 invalid");

    /* A NULL error buffer is allowed. */
    CHECK_INT(vg_mask_from_polygon(&m, 8, 8, bad_x, 3, NULL, 0), -1);
}

/* ---------- morphology ---------- */

static void test_morphology(void) {
    uint8_t src[25] = {0}, dst[25];
    rect(src, 5, 1, 1, 3, 3, 1);
    vg_binary_erode(src, dst, 5, 5);
    int n = 0;
    for (int i = 0; i < 25; i++) n += dst[i];
    CHECK_INT(n, 1);
    CHECK_INT(dst[2 * 5 + 2], 1);

    memset(src, 0, sizeof src);
    src[0] = 1;                       /* corner pixel grows to 2x2 */
    vg_binary_dilate(src, dst, 5, 5);
    n = 0;
    for (int i = 0; i < 25; i++) n += dst[i];
    CHECK_INT(n, 4);
    CHECK_INT(dst[1 * 5 + 1], 1);

    memset(src, 1, sizeof src);       /* frame edge does not erode */
    vg_binary_erode(src, dst, 5, 5);
    n = 0;
    for (int i = 0; i < 25; i++) n += dst[i];
    CHECK_INT(n, 25);
}

static void test_zone_measure(void) {
    enum { W = 4, H = 4, S = 6 };
    uint8_t luma[S * H], motion[W * H] = {0};
    for (int y = 0; y < H; y++)
        for (int x = 0; x < S; x++) luma[y * S + x] = x < W ? (uint8_t)(y * 4 + x) : 99;
    motion[1 * W + 1] = motion[3 * W + 3] = motion[2 * W + 0] = 1;

    vg_mask full;
    vg_zone_stats st;
    vg_mask_full(&full, W, H);
    vg_zone_measure(&full, motion, luma, S, &st);
    CHECK_INT(st.pixels, 16);
    CHECK_INT(st.motion_pixels, 3);
    CHECK_NEAR(st.changed, 3.0 / 16, 1e-12);
    CHECK_NEAR(st.mean, 7.5, 1e-12);            /* 0..15 */
    CHECK_NEAR(st.variance, 255.0 / 12, 1e-9);  /* (n^2-1)/12 */
    CHECK_RECT(st.motion_bbox, 0, 1, 4, 3);

    /* left half: values 0,1,4,5,8,9,12,13 -> mean 6.5, variance 162/8 = 20.25 */
    vg_mask left;
    const double half[] = {0, 0, 0.5, 0, 0.5, 1, 0, 1};
    CHECK_INT(vg_mask_from_polygon(&left, W, H, half, 4, NULL, 0), 0);
    vg_zone_measure(&left, motion, luma, S, &st);
    CHECK_INT(st.pixels, 8);
    CHECK_INT(st.motion_pixels, 2);
    CHECK_NEAR(st.changed, 0.25, 1e-12);
    CHECK_NEAR(st.mean, 6.5, 1e-12);
    CHECK_NEAR(st.variance, 20.25, 1e-9);
    CHECK_RECT(st.motion_bbox, 0, 1, 2, 2);

    vg_zone_measure(&left, NULL, luma, S, &st);
    CHECK_INT(st.motion_pixels, 0);
    CHECK_NEAR(st.changed, 0, 0);
    CHECK_RECT(st.motion_bbox, 0, 0, 0, 0);
    CHECK_NEAR(st.mean, 6.5, 1e-12);

    vg_mask empty = {0};
    vg_zone_measure(&empty, motion, luma, S, &st);
    CHECK_INT(st.pixels, 0);
    CHECK_NEAR(st.changed, 0, 0);
    vg_mask_free(&full);
    vg_mask_free(&left);
}

/* ---------- blobs ---------- */

enum { BW = 16, BH = 12 };

static void blob_scene(uint8_t *m) {
    memset(m, 0, BW * BH);
    rect(m, BW, 1, 1, 4, 4, 1);   /* A: area 16, centroid (2.5, 2.5) */
    rect(m, BW, 10, 1, 3, 3, 1);  /* B: area 9, centroid (11, 2) */
    rect(m, BW, 2, 7, 2, 2, 1);   /* C: two 2x2 squares touching at a corner, */
    rect(m, BW, 4, 9, 2, 2, 1);   /*    area 8, centroid (28/8, 68/8) */
    m[10 * BW + 14] = 1;          /* D: single pixel */
}

static void test_blobs(void) {
    uint8_t motion[BW * BH];
    vg_blob out[8];
    blob_scene(motion);
    vg_blobber *b = vg_blobber_new(BW, BH, 8);
    CHECK(b != NULL);

    CHECK_INT(vg_blobs_find(b, motion, NULL, 1, out, 8), 4);
    CHECK_INT(vg_blobber_total(b), 4);
    CHECK_INT(out[0].area, 16);
    CHECK_RECT(out[0].box, 1, 1, 4, 4);
    CHECK_NEAR(out[0].cx, 2.5, 1e-12);
    CHECK_NEAR(out[0].cy, 2.5, 1e-12);
    CHECK_INT(out[1].area, 9);
    CHECK_RECT(out[1].box, 10, 1, 3, 3);
    CHECK_NEAR(out[1].cx, 11, 1e-12);
    CHECK_NEAR(out[1].cy, 2, 1e-12);
    CHECK_INT(out[2].area, 8);        /* 8-connectivity merged the diagonal pair */
    CHECK_RECT(out[2].box, 2, 7, 4, 4);
    CHECK_NEAR(out[2].cx, 3.5, 1e-12);
    CHECK_NEAR(out[2].cy, 8.5, 1e-12);
    CHECK_INT(out[3].area, 1);
    CHECK_RECT(out[3].box, 14, 10, 1, 1);

    /* min_area drops the single pixel; max_out truncates but total counts all */
    CHECK_INT(vg_blobs_find(b, motion, NULL, 2, out, 8), 3);
    CHECK_INT(vg_blobs_find(b, motion, NULL, 9, out, 8), 2);
    CHECK_INT(vg_blobs_find(b, motion, NULL, 2, out, 2), 2);
    CHECK_INT(vg_blobber_total(b), 3);
    CHECK_INT(out[0].area, 16);
    CHECK_INT(out[1].area, 9);
    CHECK_INT(vg_blobs_find(b, motion, NULL, 1, out, 0), 0);

    /* zone: right half keeps B and D */
    vg_mask zone;
    const double right[] = {0.5, 0, 1, 0, 1, 1, 0.5, 1};
    CHECK_INT(vg_mask_from_polygon(&zone, BW, BH, right, 4, NULL, 0), 0);
    CHECK_INT(vg_blobs_find(b, motion, &zone, 1, out, 8), 2);
    CHECK_INT(out[0].area, 9);
    CHECK_INT(out[1].area, 1);
    vg_mask_free(&zone);

    /* zone x <= 2 (centres < 3/16): cuts A to 2 columns, C to one */
    const double strip[] = {0, 0, 0.1875, 0, 0.1875, 1, 0, 1};
    CHECK_INT(vg_mask_from_polygon(&zone, BW, BH, strip, 4, NULL, 0), 0);
    CHECK_INT(zone.count, 3 * BH);
    CHECK_INT(vg_blobs_find(b, motion, &zone, 1, out, 8), 2);
    CHECK_INT(out[0].area, 8);
    CHECK_RECT(out[0].box, 1, 1, 2, 4);
    CHECK_NEAR(out[0].cx, 1.5, 1e-12);
    CHECK_INT(out[1].area, 2);
    CHECK_RECT(out[1].box, 2, 7, 1, 2);
    vg_mask_free(&zone);

    /* mismatched zone size is refused */
    CHECK_INT(vg_mask_full(&zone, BW + 1, BH), 0);
    CHECK_INT(vg_blobs_find(b, motion, &zone, 1, out, 8), -1);
    vg_mask_free(&zone);
    vg_blobber_free(b);

    /* blobber capacity caps the output; ties keep raster order */
    b = vg_blobber_new(BW, BH, 1);
    CHECK_INT(vg_blobs_find(b, motion, NULL, 1, out, 8), 1);
    CHECK_INT(out[0].area, 16);
    vg_blobber_free(b);

    b = vg_blobber_new(BW, BH, 4);
    memset(motion, 0, sizeof motion);
    rect(motion, BW, 8, 2, 2, 2, 1);
    rect(motion, BW, 1, 6, 2, 2, 1);
    rect(motion, BW, 12, 9, 3, 3, 1);
    CHECK_INT(vg_blobs_find(b, motion, NULL, 1, out, 8), 3);
    CHECK_INT(out[0].area, 9);
    CHECK_INT(out[1].box.x, 8);
    CHECK_INT(out[2].box.x, 1);

    memset(motion, 1, sizeof motion); /* whole frame is one blob */
    CHECK_INT(vg_blobs_find(b, motion, NULL, 1, out, 8), 1);
    CHECK_INT(out[0].area, BW * BH);
    CHECK_NEAR(out[0].cx, 7.5, 1e-12);
    CHECK_NEAR(out[0].cy, 5.5, 1e-12);
    vg_blobber_free(b);
    vg_blobber_free(NULL);
}

/* ---------- sharpness ---------- */

static void checkerboard(uint8_t *p, int w, int h, uint8_t lo, uint8_t hi) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) p[y * w + x] = ((x + y) & 1) ? hi : lo;
}

static void test_sharpness(void) {
    uint8_t img[8 * 8], blur[8 * 8];
    fill(img, 8, 8, 8, 77);
    CHECK_NEAR(vg_sharpness(img, 8, 8, 8, NULL), 0, 0);

    /* 4x4 0/255 checkerboard: interior L = +-1020, mean 0 -> variance 1020^2 */
    checkerboard(img, 4, 4, 0, 255);
    CHECK_NEAR(vg_sharpness(img, 4, 4, 4, NULL), 1040400.0, 1e-6);

    /* 5x5 zeros with centre 100: L = -400 once, +100 four times, 0 four times
     * over 9 interior pixels -> mean 0, variance (160000 + 40000) / 9 */
    memset(img, 0, sizeof img);
    img[2 * 5 + 2] = 100;
    CHECK_NEAR(vg_sharpness(img, 5, 5, 5, NULL), 200000.0 / 9, 1e-6);

    /* mask of (1,2) and (2,2): L = 100, -400 -> mean -150, variance 62500 */
    vg_mask m;
    vg_mask_full(&m, 5, 5);
    memset(m.px, 0, 25);
    m.px[2 * 5 + 1] = m.px[2 * 5 + 2] = 1;
    CHECK_NEAR(vg_sharpness(img, 5, 5, 5, &m), 62500.0, 1e-6);
    CHECK_NEAR(vg_sharpness(img, 5, 6, 5, &m), -1, 0);   /* size mismatch */
    vg_mask_free(&m);

    /* 8x8 checkerboard is sharper than its 3x3 box blur */
    checkerboard(img, 8, 8, 0, 255);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            int s = 0, n = 0;
            for (int j = y - 1; j <= y + 1; j++)
                for (int i = x - 1; i <= x + 1; i++)
                    if (i >= 0 && i < 8 && j >= 0 && j < 8) { s += img[j * 8 + i]; n++; }
            blur[y * 8 + x] = (uint8_t)(s / n);
        }
    double sharp = vg_sharpness(img, 8, 8, 8, NULL), soft = vg_sharpness(blur, 8, 8, 8, NULL);
    CHECK(sharp > soft);
    CHECK(soft > 0);

    /* too small for an interior */
    CHECK_NEAR(vg_sharpness(img, 2, 8, 8, NULL), 0, 0);
}

/* ---------- histograms ---------- */

static void test_histogram(void) {
    enum { W = 4, H = 4 };
    uint8_t img[W * H];
    uint32_t a[256], b[256];
    fill(img, W, H, W, 7);
    rect(img, W, 2, 1, 2, 3, 200);     /* 6 pixels of 200, 10 of 7 */
    CHECK_INT(vg_histogram(img, W, H, W, NULL, a), 16);
    CHECK_INT(a[7], 10);
    CHECK_INT(a[200], 6);
    CHECK_INT(a[0], 0);

    vg_mask left;
    const double half[] = {0, 0, 0.5, 0, 0.5, 1, 0, 1};
    vg_mask_from_polygon(&left, W, H, half, 4, NULL, 0);
    CHECK_INT(vg_histogram(img, W, H, W, &left, b), 8);
    CHECK_INT(b[7], 8);
    CHECK_INT(b[200], 0);
    vg_mask_free(&left);

    CHECK_NEAR(vg_histogram_correlation(a, a), 1.0, 1e-12);
    CHECK_NEAR(vg_histogram_chi2(a, a), 0.0, 1e-12);

    /* disjoint single bins: corr = -m / (16 - 4m) with m = 4/256 -> -1/255 */
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    a[0] = 4;
    b[1] = 4;
    CHECK_NEAR(vg_histogram_correlation(a, b), -1.0 / 255, 1e-12);
    CHECK_NEAR(vg_histogram_chi2(a, b), 1.0, 1e-12);

    /* p = (.5, .5), q = (1, 0): 0.5 * (.25/1.5 + .25/.5) = 1/3; scale-free */
    a[0] = 2; a[1] = 2;
    b[0] = 40; b[1] = 0;
    CHECK_NEAR(vg_histogram_chi2(a, b), 1.0 / 3, 1e-12);

    /* empty and flat cases */
    memset(a, 0, sizeof a);
    CHECK_NEAR(vg_histogram_chi2(a, a), 0.0, 0);
    CHECK_NEAR(vg_histogram_chi2(a, b), 1.0, 0);
    CHECK_NEAR(vg_histogram_correlation(a, a), 1.0, 0);
    CHECK_NEAR(vg_histogram_correlation(a, b), 0.0, 0);
}

int main(void) {
    test_mask_polygons();
    test_mask_errors();
    test_morphology();
    test_zone_measure();
    test_blobs();
    test_sharpness();
    test_histogram();
    return CHECK_DONE();
}
