/* vg_vision.h — analysis-size vision primitives for vigil.
 *
 * Everything here works on an 8-bit luma plane (width, height, stride) at
 * analysis resolution (typically 320x180). Memory is allocated only by the
 * *_new / vg_mask_from_polygon / vg_mask_full functions; every per-frame
 * function (update, measure, find, sharpness, histogram, erode/dilate) does
 * zero allocation.
 *
 * Binary buffers (masks, motion) are w*h bytes, row stride == w, each 0 or 1.
 * Pixel coordinates are integer column/row indices; a pixel's centre sits at
 * ((x+0.5)/w, (y+0.5)/h) in frame fractions.
 *
 * Functions returning int use 0 for success and -1 for failure. */
#ifndef VG_VISION_H
#define VG_VISION_H

#include <stddef.h>
#include <stdint.h>

#define VG_MAX_DIM 16384 /* largest accepted width or height */

typedef struct vg_pixel_rect {
    int x, y, w, h;      /* pixels; w == 0 && h == 0 means empty */
} vg_pixel_rect;

/* ---------- zone masks ---------- */

typedef struct vg_mask {
    int w, h;
    uint8_t *px;         /* w*h bytes, 1 inside, 0 outside; owned by the mask */
    int count;           /* number of pixels set */
    vg_pixel_rect bbox;  /* bounding box of set pixels */
} vg_mask;

/* Rasterize a polygon given as npoints (x, y) pairs in frame fractions 0..1
 * (even-odd rule, a pixel is inside when its centre is). 'm' is treated as
 * uninitialised output: free a previously built mask first. On failure m is
 * left empty (px == NULL) and a message naming the bad value (0-based point
 * index) is written to err. A polygon covering no pixel centre is an error. */
int vg_mask_from_polygon(vg_mask *m, int w, int h, const double *xy, int npoints,
                         char *err, size_t errlen);
int vg_mask_full(vg_mask *m, int w, int h);
void vg_mask_free(vg_mask *m);   /* safe on an empty or zeroed mask */

/* 3x3 (8-neighbour) binary morphology on w*h 0/1 buffers; src != dst.
 * Only in-frame neighbours are considered, so the frame edge neither erodes
 * nor grows anything. */
void vg_binary_erode(const uint8_t *src, uint8_t *dst, int w, int h);
void vg_binary_dilate(const uint8_t *src, uint8_t *dst, int w, int h);

/* ---------- per-zone statistics ---------- */

typedef struct vg_zone_stats {
    int pixels;          /* zone pixel count */
    int motion_pixels;   /* motion pixels inside the zone */
    double changed;      /* motion_pixels / pixels, 0 if the zone is empty */
    double mean;         /* mean luma inside the zone */
    double variance;     /* population variance of luma inside the zone */
    vg_pixel_rect motion_bbox; /* motion inside the zone; empty if motion_pixels == 0 */
} vg_zone_stats;

/* motion (zone->w * zone->h, 0/1) may be NULL: motion fields are then 0.
 * luma must be at least zone->w x zone->h with the given stride. */
void vg_zone_measure(const vg_mask *zone, const uint8_t *motion, const uint8_t *luma,
                     int stride, vg_zone_stats *out);

/* ---------- connected components ---------- */

typedef struct vg_blob {
    vg_pixel_rect box;   /* bounding box in pixels */
    int area;            /* pixel count */
    double cx, cy;       /* centroid: mean of member pixel indices */
} vg_blob;

typedef struct vg_blobber vg_blobber;

vg_blobber *vg_blobber_new(int w, int h, int max_blobs);
/* 8-connected components of motion (w*h, 0/1), counting only pixels inside
 * zone when zone is not NULL. Components smaller than min_area are dropped.
 * Writes the largest min(max_out, max_blobs) to out, by area descending
 * (ties: raster order of the component's first pixel); returns how many,
 * or -1 if motion is NULL or zone dimensions differ from the blobber's. */
int vg_blobs_find(vg_blobber *b, const uint8_t *motion, const vg_mask *zone,
                  int min_area, vg_blob *out, int max_out);
int vg_blobber_total(const vg_blobber *b);  /* components >= min_area in last find */
void vg_blobber_free(vg_blobber *b);

/* ---------- sharpness and histograms ---------- */

/* Variance of the 4-neighbour Laplacian over interior pixels (and inside
 * mask, judged at the centre pixel, when mask is not NULL). 0 when no pixel
 * qualifies; -1 on bad arguments (mask size differs from w x h). */
double vg_sharpness(const uint8_t *luma, int w, int h, int stride, const vg_mask *mask);

/* 256-bin luma histogram (inside mask when not NULL). Returns the pixel
 * total, or -1 on bad arguments. */
long vg_histogram(const uint8_t *luma, int w, int h, int stride, const vg_mask *mask,
                  uint32_t hist[256]);
/* Pearson correlation of the bin counts, -1..1 (1 = same shape). Two flat
 * histograms correlate 1 if equal, else 0. */
double vg_histogram_correlation(const uint32_t a[256], const uint32_t b[256]);
/* Symmetric chi-square distance of the normalised histograms:
 * 0.5 * sum (p-q)^2 / (p+q), 0 (same) .. 1 (disjoint). Both empty: 0;
 * one empty: 1. */
double vg_histogram_chi2(const uint32_t a[256], const uint32_t b[256]);

#endif
