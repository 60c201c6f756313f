/* test_jpeg.c — tests vg_jpeg: synthetic frames in, JPEGs decoded back with
 * djpeg (an independent decoder) and checked for size and colour.
 * `test_jpeg --bench` also times the hot paths instead of testing. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "vg_jpeg.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/base64.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>

#define RED_Y 81
#define RED_U 90
#define RED_V 240
#define GREY  128

/* ------------------------------------------------------------ frames */

/* Set every pixel of the rectangle to (Y,U,V); chroma samples that cover
 * it get U,V too. Works for any 8-bit planar/semi-planar/packed YUV. */
static void paint(AVFrame *f, int x0, int y0, int w, int h, int Y, int U, int V) {
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    const int val[3] = { Y, U, V };
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++)
            for (int c = 0; c < d->nb_components && c < 3; c++) {
                const AVComponentDescriptor *cd = &d->comp[c];
                int cx = c ? x >> d->log2_chroma_w : x, cy = c ? y >> d->log2_chroma_h : y;
                f->data[cd->plane][cy * f->linesize[cd->plane] + cx * cd->step + cd->offset] =
                    (uint8_t)val[c];
            }
}

static AVFrame *grey_frame(enum AVPixelFormat fmt, int w, int h) {
    AVFrame *f = av_frame_alloc();
    f->format = fmt; f->width = w; f->height = h;
    if (av_frame_get_buffer(f, 0) < 0) { av_frame_free(&f); return NULL; }
    /* Row padding is black, not garbage: swscale's filter taps may read it
     * (with zero weight) on tiny frames, and visible leaks would show. */
    for (int i = 0; i < AV_NUM_DATA_POINTERS && f->buf[i]; i++)
        memset(f->buf[i]->data, 0, f->buf[i]->size);
    paint(f, 0, 0, w, h, GREY, GREY, GREY);
    return f;
}

static AVFrame *red_frame(enum AVPixelFormat fmt, int w, int h, int rx, int ry, int rw, int rh) {
    AVFrame *f = grey_frame(fmt, w, h);
    if (f) paint(f, rx, ry, rw, rh, RED_Y, RED_U, RED_V);
    return f;
}

static vg_box pixel_box(const AVFrame *f, int x, int y, int w, int h) {
    return (vg_box){ (double)x / f->width, (double)y / f->height,
                     (double)w / f->width, (double)h / f->height };
}

/* ------------------------------------------------ independent decoding */

typedef struct { int w, h, ch; uint8_t *px; } image;

/* Decode a JPEG with `djpeg -pnm` into packed RGB (ch=3) or grey (ch=1). */
static int djpeg(const uint8_t *jpg, size_t len, image *m) {
    char path[] = "/tmp/vg_jpeg_test_XXXXXX", cmd[128];
    int fd = mkstemp(path), kind = 0, maxv = 0, ok = 0;
    memset(m, 0, sizeof(*m));
    if (fd < 0) return -1;
    ok = write(fd, jpg, len) == (ssize_t)len;
    close(fd);
    snprintf(cmd, sizeof(cmd), "djpeg -pnm %s", path);
    FILE *p = ok ? popen(cmd, "r") : NULL;
    ok = p && fscanf(p, "P%d %d %d %d", &kind, &m->w, &m->h, &maxv) == 4 &&
         (kind == 5 || kind == 6) && maxv == 255 && m->w > 0 && m->h > 0 && fgetc(p) != EOF;
    if (ok) {
        m->ch = kind == 6 ? 3 : 1;
        size_t n = (size_t)m->w * m->h * m->ch;
        m->px = malloc(n);
        ok = fread(m->px, 1, n, p) == n;
    }
    if (p) pclose(p);
    unlink(path);
    if (!ok) { free(m->px); memset(m, 0, sizeof(*m)); return -1; }
    return 0;
}

static void rgb_at(const image *m, int x, int y, int rgb[3]) {
    const uint8_t *p = m->px + ((size_t)y * m->w + x) * m->ch;
    for (int i = 0; i < 3; i++) rgb[i] = p[m->ch == 3 ? i : 0];
}

/* Red for colour images; the red box's luma (~81) for grey ones. */
static int is_red(const image *m, int x, int y) {
    int c[3];
    rgb_at(m, x, y, c);
    if (m->ch == 1) return abs(c[0] - RED_Y) < 12;
    return c[0] > 200 && c[1] < 60 && c[2] < 60;
}

static int is_grey(const image *m, int x, int y) {
    int c[3];
    rgb_at(m, x, y, c);
    return abs(c[0] - GREY) < 12 && abs(c[1] - GREY) < 12 && abs(c[2] - GREY) < 12;
}

static int corners_grey(const image *m) {
    int a = 2, bx = m->w - 3, by = m->h - 3;
    return is_grey(m, a, a) && is_grey(m, bx, a) && is_grey(m, a, by) && is_grey(m, bx, by);
}

/* ------------------------------------------------------------ helpers */

typedef struct { int rc, w, h; image img; char err[128]; } result;

/* Crop, decode with djpeg, and cross-check the reported size. */
static result crop(vg_jpeg *j, const AVFrame *f, const vg_box *b, int max_size) {
    result r = { 0 };
    uint8_t *jpg = NULL;
    size_t len = 0;
    r.rc = vg_jpeg_crop(j, f, b, max_size, VG_JPEG_DEFAULT_QUALITY, &jpg, &len, &r.w, &r.h,
                        r.err, sizeof(r.err));
    if (r.rc == 0) {
        CHECK(len > 0);
        CHECK_INT(djpeg(jpg, len, &r.img), 0);
        CHECK_INT(r.img.w, r.w);
        CHECK_INT(r.img.h, r.h);
    } else {
        CHECK(jpg == NULL);
    }
    free(jpg);
    return r;
}

static result frame_preview(vg_jpeg *j, const AVFrame *f, int lines) {
    result r = { 0 };
    uint8_t *jpg = NULL;
    size_t len = 0;
    r.rc = vg_jpeg_frame(j, f, lines, VG_JPEG_DEFAULT_QUALITY, &jpg, &len, &r.w, &r.h,
                         r.err, sizeof(r.err));
    if (r.rc == 0) {
        CHECK_INT(djpeg(jpg, len, &r.img), 0);
        CHECK_INT(r.img.w, r.w);
        CHECK_INT(r.img.h, r.h);
    }
    free(jpg);
    return r;
}

static void done(result *r) { free(r->img.px); r->img.px = NULL; }

#define CHECK_SIZE(r, W, H) do { CHECK_INT((r).rc, 0); CHECK_INT((r).w, W); CHECK_INT((r).h, H); } while (0)
#define CENTRE_RED(r) CHECK((r).img.px && is_red(&(r).img, (r).w / 2, (r).h / 2))
#define CORNERS_GREY(r) CHECK((r).img.px && corners_grey(&(r).img))

/* -------------------------------------------------------------- tests */

static void test_basic_crop(vg_jpeg *j) {
    AVFrame *f = red_frame(AV_PIX_FMT_YUV420P, 640, 480, 200, 150, 100, 80);
    vg_box exact = pixel_box(f, 200, 150, 100, 80), wide = pixel_box(f, 160, 110, 180, 160);
    result r = crop(j, f, &exact, VG_JPEG_DEFAULT_MAX_SIZE);
    CHECK_SIZE(r, 100, 80);
    CENTRE_RED(r);
    CHECK(r.img.px && is_red(&r.img, 8, 8) && is_red(&r.img, 91, 71));
    done(&r);
    r = crop(j, f, &wide, VG_JPEG_DEFAULT_MAX_SIZE);
    CHECK_SIZE(r, 180, 160);
    CENTRE_RED(r);
    CORNERS_GREY(r);
    CHECK(r.img.px && is_grey(&r.img, 35, 80) && is_red(&r.img, 45, 80)); /* edge at x=40 */
    done(&r);
    av_frame_free(&f);
}

/* Odd box edges grow outward to even pixels. */
static void test_grid_alignment(vg_jpeg *j) {
    AVFrame *f = red_frame(AV_PIX_FMT_YUV420P, 640, 480, 201, 151, 99, 79);
    vg_box b = pixel_box(f, 201, 151, 99, 79);
    result r = crop(j, f, &b, 1000);
    CHECK_SIZE(r, 100, 80); /* 200..300 x 150..230 */
    CENTRE_RED(r);
    done(&r);
    av_frame_free(&f);
}

static void test_odd_frame(vg_jpeg *j) {
    /* red block touching the bottom-right corner of a 321x179 frame */
    AVFrame *f = red_frame(AV_PIX_FMT_YUV420P, 321, 179, 300, 160, 21, 19);
    const vg_box whole = { 0, 0, 1, 1 };
    const vg_box corner = pixel_box(f, 300, 160, 21, 19);
    const vg_box left = { 0, 0.3, 0.1, 0.2 }, right = { 0.9, 0.3, 0.1, 0.2 };
    const vg_box top = { 0.3, 0, 0.2, 0.1 }, bottom = { 0.3, 0.9, 0.2, 0.1 };
    const vg_box dot = pixel_box(f, 100, 50, 1, 1), last = pixel_box(f, 320, 178, 1, 1);

    result r = crop(j, f, NULL, 1000);
    CHECK_SIZE(r, 321, 179);
    CHECK(r.img.px && is_red(&r.img, 315, 172) && is_grey(&r.img, 5, 5) && is_grey(&r.img, 290, 170));
    done(&r);
    r = crop(j, f, &whole, 1000);
    CHECK_SIZE(r, 321, 179);
    CHECK(r.img.px && is_red(&r.img, 320, 178) && is_grey(&r.img, 0, 0));
    done(&r);
    r = crop(j, f, NULL, VG_JPEG_DEFAULT_MAX_SIZE); /* 321 > 320: scaled */
    CHECK_SIZE(r, 320, 178);
    CHECK(r.img.px && is_red(&r.img, 314, 171) && is_grey(&r.img, 5, 5));
    done(&r);
    r = crop(j, f, &corner, 1000);
    CHECK_SIZE(r, 21, 19);
    CENTRE_RED(r);
    CHECK(r.img.px && is_red(&r.img, 20, 18));
    done(&r);
    r = crop(j, f, &left, 1000);     /* x 0..33->34, y 53.7..89.5 -> 52..90 */
    CHECK_SIZE(r, 34, 38);
    CORNERS_GREY(r);
    done(&r);
    r = crop(j, f, &right, 1000);    /* x 288.9..321 -> 288..321 */
    CHECK_SIZE(r, 33, 38);
    CORNERS_GREY(r);
    done(&r);
    r = crop(j, f, &top, 1000);      /* x 96.3..160.5 -> 96..162, y 0..17.9 -> 0..18 */
    CHECK_SIZE(r, 66, 18);
    CORNERS_GREY(r);
    done(&r);
    r = crop(j, f, &bottom, 1000);   /* y 161.1..179 -> 160..179 */
    CHECK_SIZE(r, 66, 19);
    CORNERS_GREY(r);
    done(&r);
    r = crop(j, f, &dot, 1000);
    CHECK_SIZE(r, 2, 2);
    done(&r);
    r = crop(j, f, &last, 1000);     /* the single bottom-right pixel */
    CHECK_SIZE(r, 1, 1);
    CHECK(r.img.px && is_red(&r.img, 0, 0));
    done(&r);
    av_frame_free(&f);
}

/* Planes malloc'd to the exact byte, linesize = width: ASan sees any read
 * past the frame, e.g. TurboJPEG rounding an odd crop up to the 2x2 grid. */
static AVFrame *tight_frame(int w, int h) {
    AVFrame *f = av_frame_alloc();
    int cw = (w + 1) / 2, ch = (h + 1) / 2;
    f->format = AV_PIX_FMT_YUV420P; f->width = w; f->height = h;
    f->linesize[0] = w; f->linesize[1] = f->linesize[2] = cw;
    f->data[0] = malloc((size_t)w * h);
    f->data[1] = malloc((size_t)cw * ch);
    f->data[2] = malloc((size_t)cw * ch);
    paint(f, 0, 0, w, h, GREY, GREY, GREY);
    paint(f, w - 5, h - 5, 5, 5, RED_Y, RED_U, RED_V);
    return f;
}

static void free_tight(AVFrame *f) {
    for (int p = 0; p < 3; p++) free(f->data[p]);
    av_frame_free(&f);
}

static void test_tight_frame(vg_jpeg *j) {
    AVFrame *f = tight_frame(321, 179);
    vg_box corner = pixel_box(f, 281, 149, 40, 30), last = pixel_box(f, 320, 178, 1, 1);
    result r = crop(j, f, NULL, 1000);
    CHECK_SIZE(r, 321, 179);
    CHECK(r.img.px && is_red(&r.img, 319, 177) && is_grey(&r.img, 310, 170));
    done(&r);
    r = crop(j, f, &corner, 1000);
    CHECK_SIZE(r, 41, 31); /* 280..321 x 148..179 */
    CHECK(r.img.px && is_red(&r.img, 39, 29) && is_grey(&r.img, 1, 1));
    done(&r);
    r = crop(j, f, &last, 1000);
    CHECK_SIZE(r, 1, 1);
    CHECK(r.img.px && is_red(&r.img, 0, 0));
    done(&r);
    free_tight(f);
}

static void test_tiny_frame(vg_jpeg *j) {
    AVFrame *f = red_frame(AV_PIX_FMT_YUV420P, 3, 3, 2, 2, 1, 1);
    static const int expect[3] = { 2, 2, 1 }; /* 0..1->2, 1..2->0..2, 2..3 */
    result r = crop(j, f, NULL, VG_JPEG_DEFAULT_MAX_SIZE);
    CHECK_SIZE(r, 3, 3);
    done(&r);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++) {
            vg_box b = { x / 3.0, y / 3.0, 1 / 3.0, 1 / 3.0 };
            r = crop(j, f, &b, VG_JPEG_DEFAULT_MAX_SIZE);
            CHECK_SIZE(r, expect[x], expect[y]);
            if (x == 2 && y == 2) CHECK(r.img.px && is_red(&r.img, 0, 0));
            if (x == 0 && y == 0) CHECK(r.img.px && is_grey(&r.img, 0, 0));
            done(&r);
        }
    r = frame_preview(j, f, 240);
    CHECK_SIZE(r, 3, 3);
    done(&r);
    r = frame_preview(j, f, 2);
    CHECK_SIZE(r, 2, 2);
    done(&r);
    av_frame_free(&f);
}

static void test_scaling(vg_jpeg *j) {
    AVFrame *f = red_frame(AV_PIX_FMT_YUV420P, 1920, 1080, 800, 400, 320, 280);
    const vg_box half = { 0.25, 0.25, 0.5, 0.5 }, column = { 0.4, 0, 0.1, 1 };
    result r = crop(j, f, NULL, VG_JPEG_DEFAULT_MAX_SIZE);
    CHECK_SIZE(r, 320, 180);
    CENTRE_RED(r);
    CHECK(r.img.px && is_grey(&r.img, 10, 10) && is_grey(&r.img, 300, 170));
    done(&r);
    r = crop(j, f, &half, VG_JPEG_DEFAULT_MAX_SIZE); /* 960x540 -> 320x180 */
    CHECK_SIZE(r, 320, 180);
    CENTRE_RED(r);
    CORNERS_GREY(r);
    done(&r);
    r = crop(j, f, &column, VG_JPEG_DEFAULT_MAX_SIZE); /* 192x1080 -> 57x320 */
    CHECK_SIZE(r, 57, 320);
    done(&r);
    r = frame_preview(j, f, VG_JPEG_DEFAULT_LINES);
    CHECK_SIZE(r, 426, 240);
    CENTRE_RED(r);
    CORNERS_GREY(r);
    done(&r);
    r = frame_preview(j, f, 241); /* rounds down to even */
    CHECK_SIZE(r, 426, 240);
    done(&r);
    av_frame_free(&f);
}

static void test_no_upscale(vg_jpeg *j) {
    AVFrame *f = red_frame(AV_PIX_FMT_YUV420P, 1920, 1080, 800, 400, 320, 280);
    vg_box b = pixel_box(f, 960, 540, 10, 10);
    result r = crop(j, f, &b, VG_JPEG_DEFAULT_MAX_SIZE);
    CHECK_SIZE(r, 10, 10);
    CENTRE_RED(r);
    done(&r);
    r = crop(j, f, NULL, 4000);
    CHECK_SIZE(r, 1920, 1080);
    done(&r);
    av_frame_free(&f);
    f = red_frame(AV_PIX_FMT_YUV420P, 320, 180, 100, 60, 100, 60);
    r = frame_preview(j, f, 240); /* already shorter than 240 lines */
    CHECK_SIZE(r, 320, 180);
    CENTRE_RED(r);
    done(&r);
    av_frame_free(&f);
}

/* Same input twice gives identical bytes, also after the cached scaler and
 * scratch were used for other sizes in between. */
/* Bottom-up frames (negative linesize) are legal AVFrames. */
static void test_flipped(vg_jpeg *j) {
    AVFrame *f = red_frame(AV_PIX_FMT_YUV420P, 64, 48, 0, 0, 64, 16); /* top rows in memory */
    AVFrame *up = av_frame_clone(f);
    int rows[3] = { 48, 24, 24 };
    for (int p = 0; p < 3; p++) {
        up->data[p] += (rows[p] - 1) * up->linesize[p];
        up->linesize[p] = -up->linesize[p];
    }
    const vg_box lower = { 0, 0.5, 1, 0.5 };
    result r = crop(j, up, NULL, 320);
    CHECK_SIZE(r, 64, 48);
    CHECK(r.img.px && is_red(&r.img, 32, 44) && is_grey(&r.img, 32, 4));
    done(&r);
    r = crop(j, up, NULL, 32);
    CHECK_SIZE(r, 32, 24);
    CHECK(r.img.px && is_red(&r.img, 16, 22) && is_grey(&r.img, 16, 2));
    done(&r);
    r = crop(j, up, &lower, 320);
    CHECK_SIZE(r, 64, 24);
    CHECK(r.img.px && is_red(&r.img, 32, 20) && is_grey(&r.img, 32, 2));
    done(&r);
    av_frame_free(&up);
    av_frame_free(&f);
}

static void test_cache_reuse(vg_jpeg *j) {
    AVFrame *f = red_frame(AV_PIX_FMT_YUV420P, 1920, 1080, 800, 400, 320, 280);
    const vg_box a = { 0.25, 0.25, 0.5, 0.5 }, b = { 0.1, 0.1, 0.8, 0.3 };
    uint8_t *first = NULL, *again = NULL, *other = NULL;
    size_t n1 = 0, n2 = 0, n3 = 0;
    char err[128];
    CHECK_INT(vg_jpeg_crop(j, f, &a, 320, 80, &first, &n1, NULL, NULL, err, sizeof(err)), 0);
    CHECK_INT(vg_jpeg_crop(j, f, &b, 200, 80, &other, &n3, NULL, NULL, err, sizeof(err)), 0);
    CHECK_INT(vg_jpeg_crop(j, f, &a, 320, 80, &again, &n2, NULL, NULL, err, sizeof(err)), 0);
    CHECK_U64(n1, n2);
    CHECK(first && again && n1 == n2 && memcmp(first, again, n1) == 0);
    free(first); free(again); free(other);
    av_frame_free(&f);
}

static void test_formats(vg_jpeg *j) {
    static const enum AVPixelFormat fmts[] = {
        AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUV422P, AV_PIX_FMT_YUVJ422P,
        AV_PIX_FMT_YUV444P, AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_GRAY8, AV_PIX_FMT_NV12,
        AV_PIX_FMT_NV21, AV_PIX_FMT_YUYV422,
    };
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        AVFrame *f = red_frame(fmts[i], 333, 201, 102, 62, 60, 40);
        vg_box around = pixel_box(f, 82, 42, 100, 80);
        vg_box corner = { 0.5, 0.5, 0.5, 0.5 };
        result r = crop(j, f, &around, VG_JPEG_DEFAULT_MAX_SIZE);
        CHECK_SIZE(r, 100, 80);
        CENTRE_RED(r);
        CORNERS_GREY(r);
        if (r.rc) fprintf(stderr, "  format %s: %s\n", av_get_pix_fmt_name(fmts[i]), r.err);
        done(&r);
        r = crop(j, f, &around, 50);
        CHECK_SIZE(r, 50, 40);
        CENTRE_RED(r);
        CORNERS_GREY(r);
        done(&r);
        r = crop(j, f, &corner, 1000); /* odd right/bottom edges */
        CHECK_SIZE(r, 167, 101); /* 166.5..333 -> 166..333, 100.5..201 -> 100..201 */
        CHECK(r.img.px && is_grey(&r.img, r.w - 1, r.h - 1));
        done(&r);
        r = frame_preview(j, f, 100);
        CHECK_SIZE(r, 166, 100);
        CHECK(r.img.px && is_red(&r.img, 132 * 100 / 201, 82 * 100 / 201));
        done(&r);
        av_frame_free(&f);
    }
}

static void expect_error(vg_jpeg *j, const AVFrame *f, const vg_box *b, int max_size,
                         int quality, const char *msg) {
    uint8_t *jpg = (uint8_t *)"sentinel";
    size_t len = 7;
    int w = 7, h = 7;
    char err[128] = "";
    CHECK_INT(vg_jpeg_crop(j, f, b, max_size, quality, &jpg, &len, &w, &h, err, sizeof(err)), -1);
    CHECK_STR(err, msg);
    CHECK(jpg == NULL && len == 0 && w == 0 && h == 0);
}

static void test_bad_input(vg_jpeg *j) {
    AVFrame *f = grey_frame(AV_PIX_FMT_YUV420P, 64, 48);
    static const struct { vg_box b; const char *msg; } cases[] = {
        { { -0.1, 0, 0.5, 0.5 }, "box.x=-0.1: outside 0..1" },
        { { 0, 1.5, 0.5, 0.5 }, "box.y=1.5: outside 0..1" },
        { { 0, 0, 0, 0.5 }, "box.w=0: zero size" },
        { { 0, 0, 0.5, 0 }, "box.h=0: zero size" },
        { { 0, 0, -0.5, 0.5 }, "box.w=-0.5: outside 0..1" },
        { { 0, 0, 1e300, 0.5 }, "box.w=1e+300: outside 0..1" },
        { { INFINITY, 0, 0.5, 0.5 }, "box.x=inf: outside 0..1" },
        { { 0.5, 0, 0.8, 0.5 }, "box x+w=1.3: outside the frame" },
        { { 0, 0.6, 0.5, 0.5 }, "box y+h=1.1: outside the frame" },
        { { 1, 1, 1e-12, 1e-12 }, NULL }, /* a sliver at the far corner: 62..64 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].msg) { expect_error(j, f, &cases[i].b, 320, 80, cases[i].msg); continue; }
        result r = crop(j, f, &cases[i].b, 320);
        CHECK_SIZE(r, 2, 2);
        done(&r);
    }
    const char *names = "xywh";
    for (int i = 0; i < 4; i++) {
        double v[4] = { 0.25, 0.25, 0.5, 0.5 };
        char msg[64];
        v[i] = NAN;
        vg_box b = { v[0], v[1], v[2], v[3] };
        snprintf(msg, sizeof(msg), "box.%c=nan: not a number", names[i]);
        expect_error(j, f, &b, 320, 80, msg);
    }
    expect_error(j, NULL, NULL, 320, 80, "src: null frame");
    expect_error(j, f, NULL, 0, 80, "max_size=0: must be >= 1");
    expect_error(j, f, NULL, -5, 80, "max_size=-5: must be >= 1");
    expect_error(j, f, NULL, 320, 0, "quality=0: outside 1..100");
    expect_error(j, f, NULL, 320, 101, "quality=101: outside 1..100");
    expect_error(NULL, f, NULL, 320, 80, "vg_jpeg: null encoder");

    AVFrame *empty = av_frame_alloc(); /* size and format, no buffers */
    empty->format = AV_PIX_FMT_YUV420P; empty->width = 64; empty->height = 48;
    expect_error(j, empty, NULL, 320, 80, "src.data[0]: null");
    empty->width = 0;
    expect_error(j, empty, NULL, 320, 80, "src size 0x48: empty frame");
    empty->width = 64; empty->format = AV_PIX_FMT_VAAPI;
    expect_error(j, empty, NULL, 320, 80, "src.format=vaapi: unsupported pixel format");
    empty->format = AV_PIX_FMT_NONE;
    expect_error(j, empty, NULL, 320, 80, "src.format=?: unsupported pixel format");
    av_frame_free(&empty);

    AVFrame *missing = av_frame_clone(f); /* chroma plane gone, short rows */
    missing->data[2] = NULL;
    expect_error(j, missing, NULL, 320, 80, "src.data[2]: null");
    missing->data[2] = f->data[2];
    missing->linesize[0] = 10;
    expect_error(j, missing, NULL, 320, 80, "src.linesize[0]=10: shorter than a row of 64 bytes");
    av_frame_free(&missing);

    AVFrame *wide = grey_frame(AV_PIX_FMT_GRAY8, VG_JPEG_MAX_DIM + 2, 2);
    expect_error(j, wide, NULL, 1000000, 80, "output 65502x2: larger than JPEG's 65500");
    result r = crop(j, wide, NULL, 320);
    CHECK_SIZE(r, 320, 1);
    done(&r);
    av_frame_free(&wide);

    uint8_t *jpg = NULL;
    size_t len = 0;
    char tiny[6];
    CHECK_INT(vg_jpeg_crop(j, f, NULL, 320, 80, NULL, &len, NULL, NULL, NULL, 0), -1);
    CHECK_INT(vg_jpeg_frame(j, f, 0, 80, &jpg, &len, NULL, NULL, tiny, sizeof(tiny)), -1);
    CHECK_STR(tiny, "lines");  /* truncated, still terminated */
    CHECK_INT(vg_jpeg_frame(j, NULL, 240, 80, &jpg, &len, NULL, NULL, NULL, 0), -1);
    CHECK(jpg == NULL);
    av_frame_free(&f);
}

static void test_base64(vg_jpeg *j) {
    char *s = vg_base64((const uint8_t *)"hello", 5);
    CHECK_STR(s, "aGVsbG8=");
    free(s);
    s = vg_base64(NULL, 0);
    CHECK_STR(s, "");
    free(s);
    CHECK(vg_base64(NULL, 3) == NULL);
    uint8_t data[256], back[256];
    for (int i = 0; i < 256; i++) data[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= 256; n += 1 + n / 4) {
        s = vg_base64(data, n);
        CHECK(s != NULL);
        CHECK_INT(s ? strlen(s) : 0, AV_BASE64_SIZE(n) - 1);
        CHECK_INT(s ? av_base64_decode(back, s, sizeof(back)) : -1, n);
        CHECK(memcmp(back, data, n) == 0);
        free(s);
    }
    AVFrame *f = red_frame(AV_PIX_FMT_YUV420P, 160, 120, 40, 40, 40, 40);
    uint8_t *jpg = NULL;
    size_t len = 0;
    CHECK_INT(vg_jpeg_frame(j, f, 240, 80, &jpg, &len, NULL, NULL, NULL, 0), 0);
    s = vg_base64(jpg, len);
    uint8_t *dec = malloc(len + 4);
    CHECK_INT(s && dec ? av_base64_decode(dec, s, (int)len + 4) : -1, len);
    CHECK(s && dec && memcmp(dec, jpg, len) == 0);
    free(s); free(dec); free(jpg);
    av_frame_free(&f);
}

/* -------------------------------------------------------------- bench */

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void bench_one(vg_jpeg *j, const AVFrame *f, const char *what, const vg_box *b,
                      int max_size, int lines) {
    int iters = 200, w = 0, h = 0;
    size_t bytes = 0;
    double t0 = now_ms();
    for (int i = 0; i < iters; i++) {
        uint8_t *jpg = NULL;
        if (lines) vg_jpeg_frame(j, f, lines, 80, &jpg, &bytes, &w, &h, NULL, 0);
        else vg_jpeg_crop(j, f, b, max_size, 80, &jpg, &bytes, &w, &h, NULL, 0);
        free(jpg);
    }
    printf("%-40s %4dx%-4d %7zu B %7.3f ms\n", what, w, h, bytes, (now_ms() - t0) / iters);
}

static int bench(void) {
    vg_jpeg *j = vg_jpeg_new();
    AVFrame *f = red_frame(AV_PIX_FMT_YUV420P, 1920, 1080, 800, 400, 320, 280);
    /* some texture so the encoder has real work */
    for (int y = 0; y < 1080; y++)
        for (int x = 0; x < 1920; x++)
            f->data[0][y * f->linesize[0] + x] ^= (uint8_t)((x * 7 + y * 13) & 31);
    AVFrame *nv = grey_frame(AV_PIX_FMT_NV12, 1920, 1080);
    const vg_box half = { 0.25, 0.25, 0.5, 0.5 }, small = { 0.4, 0.4, 1.0 / 6, 1.0 / 6 };
    bench_one(j, f, "crop 960x540 -> 320 (scaled)", &half, 320, 0);
    bench_one(j, f, "crop 320x180 (no scaling, in place)", &small, 320, 0);
    bench_one(j, f, "whole 1080p -> 320 (scaled)", NULL, 320, 0);
    bench_one(j, f, "whole 1080p at full size", NULL, 4000, 0);
    bench_one(j, f, "frame 1080p -> 240 lines", NULL, 0, 240);
    bench_one(j, nv, "nv12 crop 960x540 -> 320", &half, 320, 0);
    int iters = 200;
    double t0 = now_ms();
    for (int i = 0; i < iters; i++) { /* a new crop size every call: no cache hits */
        vg_box b = { 0.1, 0.1, 0.3 + 0.002 * i, 0.4 + 0.001 * i };
        uint8_t *jpg = NULL;
        size_t n = 0;
        vg_jpeg_crop(j, f, &b, 320, 80, &jpg, &n, NULL, NULL, NULL, 0);
        free(jpg);
    }
    printf("%-40s %-9s %9s %7.3f ms\n", "crop, size changes every call", "~320", "", (now_ms() - t0) / iters);
    av_frame_free(&f);
    av_frame_free(&nv);
    vg_jpeg_free(j);
    return 0;
}

/* vg_jpeg_save_base64: written whole; bad data (-1) and a failed write (-2) told apart, nothing left behind. */
static void test_save_base64(void) {
    char root[] = "/tmp/vigil-test-jpeg-XXXXXX", why[256], b64[64], path[256];
    CHECK(mkdtemp(root) != NULL);
    int dirfd = open(root, O_RDONLY | O_DIRECTORY);
    const uint8_t jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9};
    av_base64_encode(b64, sizeof b64, jpeg, sizeof jpeg);
    CHECK_INT(vg_jpeg_save_base64(dirfd, "a.jpg", b64, why, sizeof why), 0);
    snprintf(path, sizeof path, "%s/a.jpg", root);
    FILE *f = fopen(path, "rb");
    uint8_t got[32];
    size_t n = f ? fread(got, 1, sizeof got, f) : 0;
    if (f) fclose(f);
    CHECK(n == sizeof jpeg && memcmp(got, jpeg, n) == 0);
    CHECK_INT(vg_jpeg_save_base64(dirfd, "b.jpg", "!!!", why, sizeof why), -1);
    CHECK_STR(why, "not valid base64");
    CHECK_INT(vg_jpeg_save_base64(dirfd, "b.jpg", "aGVsbG8=", why, sizeof why), -1); /* "hello" */
    CHECK_STR(why, "not a JPEG");
    CHECK_INT(vg_jpeg_save_base64(dirfd, "no/such/b.jpg", b64, why, sizeof why), -2);
    CHECK(strncmp(why, "no/such/b.jpg: ", 15) == 0);
    CHECK(faccessat(dirfd, "b.jpg", F_OK, 0) != 0);
    unlink(path);
    close(dirfd);
    rmdir(root);
}

int main(int argc, char **argv) {
    av_log_set_level(AV_LOG_ERROR);
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) return bench();
    vg_jpeg *j = vg_jpeg_new();
    CHECK(j != NULL);
    test_basic_crop(j);
    test_grid_alignment(j);
    test_odd_frame(j);
    test_tiny_frame(j);
    test_tight_frame(j);
    test_scaling(j);
    test_no_upscale(j);
    test_flipped(j);
    test_cache_reuse(j);
    test_formats(j);
    test_bad_input(j);
    test_base64(j);
    test_save_base64();
    vg_jpeg_free(j);
    vg_jpeg_free(NULL);
    return CHECK_DONE();
}
