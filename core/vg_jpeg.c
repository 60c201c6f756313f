/* vg_jpeg.c — owns preview encoding: validating crop boxes, mapping them to
 * chroma-aligned pixel rectangles, viewing/scaling frame planes and handing
 * YUV planes to TurboJPEG; plus base64 of the result. */
#include "vg_jpeg.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/base64.h>
#include <libavutil/common.h>
#include <libavutil/imgutils.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <turbojpeg.h>

#include "vg_file.h"

#define BOX_EPS   1e-9  /* slack for x+w / y+h rounding above 1 */
#define PIXEL_EPS 1e-6  /* fraction*size within this of an integer is it */
#define ROW_ALIGN 64    /* scratch row alignment, for swscale's SIMD */

struct vg_jpeg {
    tjhandle tj;
    struct SwsContext *sws;
    uint8_t *scratch;        /* planes of a scaled or edge-padded crop */
    size_t scratch_cap;
    unsigned char *jbuf;     /* worst-case JPEG buffer, TJFLAG_NOREALLOC */
    unsigned long jbuf_cap;
};

typedef struct { int x, y, w, h; } vg_rect;

/* Planes of an image somewhere in memory: a frame's crop or our scratch. */
typedef struct {
    const uint8_t *data[4];
    int linesize[4];
    int w, h;
    enum AVPixelFormat fmt;
} vg_view;

/* ---------------------------------------------------------------- errors */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ------------------------------------------------------------- lifecycle */

vg_jpeg *vg_jpeg_new(void) {
    vg_jpeg *j = calloc(1, sizeof(*j));
    if (!j) return NULL;
    j->tj = tjInitCompress();
    if (!j->tj) { free(j); return NULL; }
    return j;
}

void vg_jpeg_free(vg_jpeg *j) {
    if (!j) return;
    tjDestroy(j->tj);
    sws_freeContext(j->sws);
    av_free(j->scratch);
    free(j->jbuf);
    free(j);
}

/* ---------------------------------------------------------------- formats */

/* Formats TurboJPEG takes as they are: the plain layout and TJ subsampling. */
static int native_layout(enum AVPixelFormat f, enum AVPixelFormat *plain, int *samp) {
    switch (f) {
    case AV_PIX_FMT_YUV420P: case AV_PIX_FMT_YUVJ420P:
        *plain = AV_PIX_FMT_YUV420P; *samp = TJSAMP_420; return 1;
    case AV_PIX_FMT_YUV422P: case AV_PIX_FMT_YUVJ422P:
        *plain = AV_PIX_FMT_YUV422P; *samp = TJSAMP_422; return 1;
    case AV_PIX_FMT_YUV444P: case AV_PIX_FMT_YUVJ444P:
        *plain = AV_PIX_FMT_YUV444P; *samp = TJSAMP_444; return 1;
    case AV_PIX_FMT_GRAY8:
        *plain = AV_PIX_FMT_GRAY8; *samp = TJSAMP_GRAY; return 1;
    default:
        *plain = AV_PIX_FMT_YUV420P; *samp = TJSAMP_420; return 0;
    }
}

/* Byte step of one pixel in plane p and whether that plane is subsampled. */
static void plane_geometry(const AVPixFmtDescriptor *d, int p, int *step, int *sub) {
    int luma = 0, chroma = 0;
    *step = 0;
    for (int c = 0; c < d->nb_components; c++) {
        if (d->comp[c].plane != p) continue;
        if (!*step || c == 0) *step = d->comp[c].step;
        if (c == 1 || c == 2) chroma = 1; else luma = 1;
    }
    *sub = chroma && !luma;
}

/* In-memory formats we can crop by pointer offsets: native or swscale's. */
static int supported_format(enum AVPixelFormat f) {
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f);
    enum AVPixelFormat plain;
    int samp;
    if (!d || (d->flags & (AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM |
                           AV_PIX_FMT_FLAG_PAL)))
        return 0;
    return native_layout(f, &plain, &samp) || sws_isSupportedInput(f) > 0;
}

static int check_frame(const AVFrame *f, char *err, size_t errlen) {
    if (!f) return fail(err, errlen, "src: null frame");
    if (f->width <= 0 || f->height <= 0)
        return fail(err, errlen, "src size %dx%d: empty frame", f->width, f->height);
    if (!supported_format(f->format)) {
        const char *name = av_get_pix_fmt_name(f->format);
        return fail(err, errlen, "src.format=%s: unsupported pixel format", name ? name : "?");
    }
    int planes = av_pix_fmt_count_planes(f->format);
    for (int p = 0; p < planes; p++) {
        if (!f->data[p]) return fail(err, errlen, "src.data[%d]: null", p);
        int row = av_image_get_linesize(f->format, f->width, p);
        if (f->linesize[p] > -row && f->linesize[p] < row)
            return fail(err, errlen, "src.linesize[%d]=%d: shorter than a row of %d bytes",
                        p, f->linesize[p], row);
    }
    return 0;
}

/* ------------------------------------------------------------------ boxes */

static int check_box(const vg_box *b, char *err, size_t errlen) {
    static const char *names = "xywh";
    const double v[4] = { b->x, b->y, b->w, b->h };
    for (int i = 0; i < 4; i++) {
        if (isnan(v[i])) return fail(err, errlen, "box.%c=nan: not a number", names[i]);
        if (v[i] < 0 || v[i] > 1)
            return fail(err, errlen, "box.%c=%g: outside 0..1", names[i], v[i]);
        if (i >= 2 && v[i] == 0) return fail(err, errlen, "box.%c=0: zero size", names[i]);
    }
    if (b->x + b->w > 1 + BOX_EPS)
        return fail(err, errlen, "box x+w=%g: outside the frame", b->x + b->w);
    if (b->y + b->h > 1 + BOX_EPS)
        return fail(err, errlen, "box y+h=%g: outside the frame", b->y + b->h);
    return 0;
}

/* One axis of a box in pixels: [lo, hi) grown outward to multiples of grid
 * (a power of two), clamped to [0, size), never empty. */
static void span_to_pixels(double from, double len, int size, int grid, int *pos, int *n) {
    int lo = (int)floor(from * size + PIXEL_EPS);
    int hi = (int)ceil((from + len) * size - PIXEL_EPS);
    lo = FFMIN(FFMAX(lo, 0), size - 1) & ~(grid - 1);
    hi = FFMIN(FFALIGN(FFMAX(hi, lo + 1), grid), size);
    *pos = lo;
    *n = hi - lo;
}

static vg_rect box_to_rect(const vg_box *b, const AVFrame *f) {
    vg_rect r = { 0, 0, f->width, f->height };
    if (!b) return r;
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    span_to_pixels(b->x, b->w, f->width, 1 << d->log2_chroma_w, &r.x, &r.w);
    span_to_pixels(b->y, b->h, f->height, 1 << d->log2_chroma_h, &r.y, &r.h);
    return r;
}

/* Output size with the longest side at most max, aspect kept, never upscaled. */
static void fit_longest(int w, int h, int max, int *ow, int *oh) {
    *ow = w; *oh = h;
    if (w <= max && h <= max) return;
    if (w >= h) {
        *ow = max;
        *oh = av_clip((int)lround((double)h * max / w), 1, max);
    } else {
        *oh = max;
        *ow = av_clip((int)lround((double)w * max / h), 1, max);
    }
}

/* ------------------------------------------------------------------ views */

/* The rectangle r of frame f as plane pointers into f: no copy. r is on the
 * chroma grid, so every plane's offset is a whole sample. */
static vg_view crop_view(const AVFrame *f, vg_rect r) {
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    vg_view v = { .w = r.w, .h = r.h, .fmt = f->format };
    int planes = av_pix_fmt_count_planes(f->format);
    for (int p = 0; p < planes; p++) {
        int step, sub;
        plane_geometry(d, p, &step, &sub);
        int x = sub ? r.x >> d->log2_chroma_w : r.x;
        int y = sub ? r.y >> d->log2_chroma_h : r.y;
        v.data[p] = f->data[p] + (ptrdiff_t)y * f->linesize[p] + (ptrdiff_t)x * step;
        v.linesize[p] = f->linesize[p];
    }
    return v;
}

/* Lay out scratch planes for a w x h image of planar 8-bit fmt. Luma gets
 * room for one extra column/row to round odd sizes up to the chroma grid,
 * which TurboJPEG reads. Grows the buffer only when needed. */
static int scratch_view(vg_jpeg *j, enum AVPixelFormat fmt, int w, int h, vg_view *v) {
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
    int planes = av_pix_fmt_count_planes(fmt), rows[4];
    size_t need = ROW_ALIGN;
    memset(v, 0, sizeof(*v));
    for (int p = 0; p < planes; p++) {
        int pw = p ? AV_CEIL_RSHIFT(w, d->log2_chroma_w) : FFALIGN(w, 1 << d->log2_chroma_w);
        rows[p] = p ? AV_CEIL_RSHIFT(h, d->log2_chroma_h) : FFALIGN(h, 1 << d->log2_chroma_h);
        v->linesize[p] = FFALIGN(pw, ROW_ALIGN);
        need += (size_t)v->linesize[p] * rows[p];
    }
    if (need > j->scratch_cap) {
        av_freep(&j->scratch);
        j->scratch_cap = 0;
        if (!(j->scratch = av_malloc(need))) return -1;
        j->scratch_cap = need;
    }
    uint8_t *at = j->scratch;
    for (int p = 0; p < planes; p++) {
        v->data[p] = at;
        at += (size_t)v->linesize[p] * rows[p];
    }
    v->w = w; v->h = h; v->fmt = fmt;
    return 0;
}

/* Fill the luma column/row past an odd edge with copies of the last one, so
 * the samples TurboJPEG reads there are defined and blend in. */
static void pad_luma(vg_view *v) {
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(v->fmt);
    uint8_t *y = (uint8_t *)v->data[0];
    int ls = v->linesize[0];
    if (d->log2_chroma_w && (v->w & 1))
        for (int r = 0; r < v->h; r++) y[(ptrdiff_t)r * ls + v->w] = y[(ptrdiff_t)r * ls + v->w - 1];
    if (d->log2_chroma_h && (v->h & 1))
        memcpy(y + (ptrdiff_t)v->h * ls, y + (ptrdiff_t)(v->h - 1) * ls,
               FFALIGN(v->w, 1 << d->log2_chroma_w));
}

static int odd_on_grid(const vg_view *v) {
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(v->fmt);
    return (d->log2_chroma_w && (v->w & 1)) || (d->log2_chroma_h && (v->h & 1));
}

/* Copy v into scratch (same size, plain fmt) and pad its odd edge. */
static int copy_padded(vg_jpeg *j, vg_view *v, char *err, size_t errlen) {
    vg_view dst;
    if (scratch_view(j, v->fmt, v->w, v->h, &dst) < 0) return fail(err, errlen, "out of memory");
    int planes = av_pix_fmt_count_planes(v->fmt);
    for (int p = 0; p < planes; p++) {
        int bytes = av_image_get_linesize(v->fmt, v->w, p);
        int rows = p ? AV_CEIL_RSHIFT(v->h, av_pix_fmt_desc_get(v->fmt)->log2_chroma_h) : v->h;
        av_image_copy_plane((uint8_t *)dst.data[p], dst.linesize[p], v->data[p], v->linesize[p],
                            bytes, rows);
    }
    pad_luma(&dst);
    *v = dst;
    return 0;
}

/* Video is mostly limited range (luma 16..235); JPEG is full range. Such frames go through swscale,
 * which expands the range, so previews are not washed out. yuvj formats and gray pass as they are. */
static int limited_range(const AVFrame *f) {
    switch (f->format) {
    case AV_PIX_FMT_YUVJ420P: case AV_PIX_FMT_YUVJ422P: case AV_PIX_FMT_YUVJ444P: case AV_PIX_FMT_GRAY8:
        return 0;
    default:
        return f->color_range != AVCOL_RANGE_JPEG;
    }
}

/* The full-range twin of a planar YUV layout: asking swscale for it makes swscale expand the range
 * (also when nothing is scaled, where it would otherwise just copy the planes). */
static enum AVPixelFormat full_range_twin(enum AVPixelFormat f) {
    switch (f) {
    case AV_PIX_FMT_YUV420P: return AV_PIX_FMT_YUVJ420P;
    case AV_PIX_FMT_YUV422P: return AV_PIX_FMT_YUVJ422P;
    case AV_PIX_FMT_YUV444P: return AV_PIX_FMT_YUVJ444P;
    default: return f;
    }
}

/* Scale/convert v into scratch as a w x h image of planar fmt. */
static int scale_into(vg_jpeg *j, vg_view *v, int w, int h, enum AVPixelFormat fmt,
                      char *err, size_t errlen) {
    vg_view dst;
    if (scratch_view(j, fmt, w, h, &dst) < 0) return fail(err, errlen, "out of memory");
    j->sws = sws_getCachedContext(j->sws, v->w, v->h, v->fmt, w, h, fmt, SWS_AREA,
                                  NULL, NULL, NULL);
    if (!j->sws)
        return fail(err, errlen, "swscale %dx%d %s -> %dx%d: cannot convert", v->w, v->h,
                    av_get_pix_fmt_name(v->fmt), w, h);
    if (sws_scale(j->sws, v->data, v->linesize, 0, v->h, (uint8_t *const *)dst.data,
                  dst.linesize) != h)
        return fail(err, errlen, "swscale %dx%d -> %dx%d: failed", v->w, v->h, w, h);
    pad_luma(&dst);
    *v = dst;
    return 0;
}

/* --------------------------------------------------------------- encoding */

static int compress(vg_jpeg *j, const vg_view *v, int samp, int quality,
                    uint8_t **out, size_t *out_len, char *err, size_t errlen) {
    unsigned long need = tjBufSize(v->w, v->h, samp);
    if (need == (unsigned long)-1) return fail(err, errlen, "turbojpeg: %s", tjGetErrorStr2(NULL));
    if (need > j->jbuf_cap) {
        free(j->jbuf);
        j->jbuf_cap = 0;
        if (!(j->jbuf = malloc(need))) return fail(err, errlen, "out of memory");
        j->jbuf_cap = need;
    }
    const unsigned char *planes[3] = { v->data[0], v->data[1], v->data[2] };
    int strides[3] = { v->linesize[0], v->linesize[1], v->linesize[2] };
    unsigned char *buf = j->jbuf;
    unsigned long len = j->jbuf_cap;
    if (tjCompressFromYUVPlanes(j->tj, planes, v->w, strides, v->h, samp, &buf, &len,
                                quality, TJFLAG_NOREALLOC) < 0)
        return fail(err, errlen, "turbojpeg: %s", tjGetErrorStr2(j->tj));
    if (!(*out = malloc(len))) return fail(err, errlen, "out of memory");
    memcpy(*out, buf, len);
    *out_len = len;
    return 0;
}

/* Rectangle r of src, scaled to ow x oh, to a JPEG. */
static int encode(vg_jpeg *j, const AVFrame *src, vg_rect r, int ow, int oh, int quality,
                  uint8_t **out, size_t *out_len, char *err, size_t errlen) {
    if (ow > VG_JPEG_MAX_DIM || oh > VG_JPEG_MAX_DIM)
        return fail(err, errlen, "output %dx%d: larger than JPEG's %d", ow, oh, VG_JPEG_MAX_DIM);
    enum AVPixelFormat plain;
    int samp, native = native_layout(src->format, &plain, &samp);
    vg_view v = crop_view(src, r);
    if (native) v.fmt = plain; /* yuvj = yuv here: values pass through */
    int rc = 0, expand = limited_range(src);
    if (!native || expand || ow != r.w || oh != r.h)
        rc = scale_into(j, &v, ow, oh, expand ? full_range_twin(plain) : plain, err, errlen);
    else if (odd_on_grid(&v)) rc = copy_padded(j, &v, err, errlen);
    if (rc < 0) return -1;
    return compress(j, &v, samp, quality, out, out_len, err, errlen);
}

/* Checks shared by both entry points; also resets the outputs. */
static int check_call(vg_jpeg *j, const AVFrame *src, int quality, uint8_t **out,
                      size_t *out_len, int *out_w, int *out_h, char *err, size_t errlen) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (out_w) *out_w = 0;
    if (out_h) *out_h = 0;
    if (!j) return fail(err, errlen, "vg_jpeg: null encoder");
    if (!out || !out_len) return fail(err, errlen, "out: null pointer");
    if (quality < 1 || quality > 100)
        return fail(err, errlen, "quality=%d: outside 1..100", quality);
    return check_frame(src, err, errlen);
}

static int finish(int rc, int ow, int oh, int *out_w, int *out_h) {
    if (rc == 0 && out_w) *out_w = ow;
    if (rc == 0 && out_h) *out_h = oh;
    return rc;
}

int vg_jpeg_crop(vg_jpeg *j, const AVFrame *src, const vg_box *box, int max_size, int quality,
                 uint8_t **out, size_t *out_len, int *out_w, int *out_h, char *err,
                 size_t errlen) {
    if (check_call(j, src, quality, out, out_len, out_w, out_h, err, errlen) < 0) return -1;
    if (max_size < 1) return fail(err, errlen, "max_size=%d: must be >= 1", max_size);
    if (box && check_box(box, err, errlen) < 0) return -1;
    vg_rect r = box_to_rect(box, src);
    int ow, oh;
    fit_longest(r.w, r.h, max_size, &ow, &oh);
    int rc = encode(j, src, r, ow, oh, quality, out, out_len, err, errlen);
    return finish(rc, ow, oh, out_w, out_h);
}

int vg_jpeg_frame(vg_jpeg *j, const AVFrame *src, int lines, int quality, uint8_t **out,
                  size_t *out_len, int *out_w, int *out_h, char *err, size_t errlen) {
    if (check_call(j, src, quality, out, out_len, out_w, out_h, err, errlen) < 0) return -1;
    if (lines < 1) return fail(err, errlen, "lines=%d: must be >= 1", lines);
    vg_rect r = { 0, 0, src->width, src->height };
    int ow = r.w, oh = r.h;
    if (r.h > lines) {
        oh = FFMAX(lines & ~1, 2);
        ow = (int)lround((double)r.w * oh / r.h / 2) * 2;
        ow = av_clip(ow, 1, r.w);
    }
    int rc = encode(j, src, r, ow, oh, quality, out, out_len, err, errlen);
    return finish(rc, ow, oh, out_w, out_h);
}

/* ----------------------------------------------------------------- base64 */

char *vg_base64(const uint8_t *data, size_t len) {
    if ((!data && len) || len > (size_t)(INT_MAX / 4 * 3 - 4)) return NULL;
    int size = AV_BASE64_SIZE((int)len);
    char *s = malloc(size);
    if (!s) return NULL;
    if (!av_base64_encode(s, size, data ? data : (const uint8_t *)"", (int)len)) {
        free(s);
        return NULL;
    }
    return s;
}

int vg_jpeg_save_base64(int dirfd, const char *name, const char *b64, char *why, size_t whylen) {
    size_t len = strlen(b64);
    if (len > INT_MAX / 2) {
        snprintf(why, whylen, "too large");
        return -1;
    }
    int cap = (int)AV_BASE64_DECODE_SIZE(len) + 1;
    uint8_t *jpeg = malloc((size_t)cap);
    if (!jpeg) {
        snprintf(why, whylen, "%s: %s", name, strerror(ENOMEM));
        return -2;
    }
    int n = av_base64_decode(jpeg, b64, cap);
    if (n < 3 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 || jpeg[2] != 0xFF) {
        snprintf(why, whylen, n < 0 ? "not valid base64" : "not a JPEG");
        free(jpeg);
        return -1;
    }
    int rc = vg_file_replace_at(dirfd, name, jpeg, (size_t)n, 0644, 0);
    if (rc < 0) snprintf(why, whylen, "%s: %s", name, strerror(errno));
    free(jpeg);
    return rc < 0 ? -2 : 0;
}
