/* vg_overlay.c — the overlay canvas (a yuv420p picture, ink in YUV), a 5x7 font, and its two outputs: a
 * video through libavformat/libavcodec (libx264 when present, else mpeg4) or JPEG files (vg_jpeg). */
#include "vg_overlay.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>

#include "vg_jpeg.h"

#define CANVAS_WIDTH 640 /* the canvas is the analysis picture scaled up by a whole factor to about this */

struct vg_overlay {
    char *path;
    int video;                 /* else a directory of JPEGs */
    int scale, w, h;           /* canvas = analysis size x scale */
    AVFrame *canvas;
    int drawing;               /* between begin and end */
    long frames;
    /* video */
    AVFormatContext *fmt;
    AVCodecContext *enc;
    AVStream *stream;
    AVPacket *pkt;
    int64_t first_ts, last_pts, step; /* step: the last interval between pictures (ms), every packet's duration */
    /* JPEG files */
    vg_jpeg *jpeg;
};

static const uint8_t INK[VG_INK_COUNT][3] = {
    [VG_INK_MOTION] = {0, 96, 208},   [VG_INK_BLOB] = {210, 16, 146},  [VG_INK_TRACK] = {170, 166, 16},
    [VG_INK_ZONE] = {145, 54, 34},    [VG_INK_LINE] = {107, 202, 222}, [VG_INK_EPISODE] = {82, 90, 240},
    [VG_INK_TEXT] = {235, 128, 128},
};

static int has_video_suffix(const char *path) {
    static const char *suffixes[] = {".mp4", ".mkv", ".mov", ".avi"};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcasecmp(path + n - k, suffixes[i]) == 0) return 1;
    }
    return 0;
}

vg_overlay *vg_overlay_open(const char *path, char *err, size_t errlen) {
    vg_overlay *o = calloc(1, sizeof *o);
    o->path = strdup(path);
    o->video = has_video_suffix(path);
    if (!o->video) {
        struct stat st;
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "overlay %s: %s", path, strerror(errno));
            vg_overlay_close(o, NULL, 0);
            return NULL;
        }
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "overlay %s: not a directory (a video path ends in .mp4, .mkv, .mov or .avi)", path);
            vg_overlay_close(o, NULL, 0);
            return NULL;
        }
        o->jpeg = vg_jpeg_new();
    }
    return o;
}

long vg_overlay_frames(const vg_overlay *o) { return o->frames; }

/* ---------- the video ---------- */

static const AVCodec *video_encoder(void) {
    const AVCodec *c = avcodec_find_encoder_by_name("libx264");
    return c ? c : avcodec_find_encoder(AV_CODEC_ID_MPEG4);
}

static int fail_av(int rc, const char *what, const vg_overlay *o, char *err, size_t errlen) {
    char text[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(rc, text, sizeof text);
    snprintf(err, errlen, "overlay %s: %s: %s", o->path, what, text);
    return -1;
}

static int start_video(vg_overlay *o, char *err, size_t errlen) {
    const AVCodec *codec = video_encoder();
    if (!codec) return snprintf(err, errlen, "overlay %s: no H.264 or MPEG-4 encoder", o->path), -1;
    int rc = avformat_alloc_output_context2(&o->fmt, NULL, NULL, o->path);
    if (rc < 0) return fail_av(rc, "cannot make the container", o, err, errlen);
    o->stream = avformat_new_stream(o->fmt, NULL);
    o->enc = avcodec_alloc_context3(codec);
    o->pkt = av_packet_alloc();
    o->enc->width = o->w;
    o->enc->height = o->h;
    o->enc->pix_fmt = AV_PIX_FMT_YUV420P;
    o->enc->time_base = (AVRational){1, 1000};
    o->enc->gop_size = 50;
    o->enc->max_b_frames = 0; /* decode order = display order: every picture comes back out of any player */
    if (strcmp(codec->name, "libx264") == 0) {
        av_opt_set(o->enc->priv_data, "preset", "veryfast", 0);
        av_opt_set(o->enc->priv_data, "crf", "23", 0);
    } else {
        o->enc->bit_rate = 2000000;
    }
    if (o->fmt->oformat->flags & AVFMT_GLOBALHEADER) o->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((rc = avcodec_open2(o->enc, codec, NULL)) < 0) return fail_av(rc, "cannot open the encoder", o, err, errlen);
    avcodec_parameters_from_context(o->stream->codecpar, o->enc);
    o->stream->time_base = o->enc->time_base;
    if ((rc = avio_open(&o->fmt->pb, o->path, AVIO_FLAG_WRITE)) < 0) return fail_av(rc, "cannot write", o, err, errlen);
    if ((rc = avformat_write_header(o->fmt, NULL)) < 0) return fail_av(rc, "cannot write the header", o, err, errlen);
    return 0;
}

/* Sends a picture (NULL drains) and writes every packet the encoder gives back. */
static int encode(vg_overlay *o, const AVFrame *picture, char *err, size_t errlen) {
    int rc = avcodec_send_frame(o->enc, picture);
    if (rc < 0) return fail_av(rc, "cannot encode", o, err, errlen);
    while ((rc = avcodec_receive_packet(o->enc, o->pkt)) >= 0) {
        if (o->pkt->duration <= 0) o->pkt->duration = o->step > 0 ? o->step : 40; /* else the last picture is lost */
        av_packet_rescale_ts(o->pkt, o->enc->time_base, o->stream->time_base);
        o->pkt->stream_index = o->stream->index;
        rc = av_interleaved_write_frame(o->fmt, o->pkt);
        if (rc < 0) return fail_av(rc, "cannot write", o, err, errlen);
    }
    return rc == AVERROR(EAGAIN) || rc == AVERROR_EOF ? 0 : fail_av(rc, "cannot encode", o, err, errlen);
}

static int write_video(vg_overlay *o, int64_t ts, char *err, size_t errlen) {
    if (!o->fmt && start_video(o, err, errlen) < 0) return -1;
    if (!o->frames) o->first_ts = ts, o->last_pts = -1;
    int64_t pts = ts - o->first_ts;
    if (pts <= o->last_pts) pts = o->last_pts + 1; /* the container wants rising times */
    if (o->last_pts >= 0) o->step = pts - o->last_pts;
    o->last_pts = pts;
    o->canvas->pts = pts;
    return encode(o, o->canvas, err, errlen);
}

static int write_jpeg(vg_overlay *o, int64_t ts, char *err, size_t errlen) {
    uint8_t *jpeg = NULL;
    size_t len = 0;
    if (vg_jpeg_frame(o->jpeg, o->canvas, o->h, 85, &jpeg, &len, NULL, NULL, err, errlen) < 0) return -1;
    char name[4096];
    snprintf(name, sizeof name, "%s/%013lld.jpg", o->path, (long long)ts);
    FILE *f = fopen(name, "wb");
    int ok = f && fwrite(jpeg, 1, len, f) == len;
    if (f && fclose(f) != 0) ok = 0;
    free(jpeg);
    if (!ok) snprintf(err, errlen, "overlay %s: %s", name, strerror(errno));
    return ok ? 0 : -1;
}

/* ---------- the canvas ---------- */

static int make_canvas(vg_overlay *o, int width, int height) {
    o->scale = width >= CANVAS_WIDTH ? 1 : CANVAS_WIDTH / width;
    o->w = (width * o->scale) & ~1;
    o->h = (height * o->scale) & ~1;
    o->canvas = av_frame_alloc();
    o->canvas->format = AV_PIX_FMT_YUV420P;
    o->canvas->width = o->w;
    o->canvas->height = o->h;
    o->canvas->color_range = AVCOL_RANGE_MPEG;
    if (av_frame_get_buffer(o->canvas, 0) == 0) return 0;
    av_frame_free(&o->canvas); /* no picture this time; the next frame tries again */
    return -1;
}

void vg_overlay_begin(vg_overlay *o, const uint8_t *luma, int width, int height, int stride) {
    o->drawing = 0;
    if (!luma || width < 2 || height < 2) return;
    if (!o->canvas && make_canvas(o, width, height) < 0) return;
    if (o->w != ((width * o->scale) & ~1) || o->h != ((height * o->scale) & ~1)) return; /* size changed */
    if (av_frame_make_writable(o->canvas) < 0) return;
    AVFrame *c = o->canvas;
    for (int y = 0; y < o->h; y++) {
        const uint8_t *src = luma + (size_t)(y / o->scale) * stride;
        uint8_t *dst = c->data[0] + (size_t)y * c->linesize[0];
        for (int x = 0; x < o->w; x++) dst[x] = (uint8_t)(24 + src[x / o->scale] * 5 / 8); /* dimmed */
    }
    for (int y = 0; y < o->h / 2; y++) {
        memset(c->data[1] + (size_t)y * c->linesize[1], 128, (size_t)o->w / 2);
        memset(c->data[2] + (size_t)y * c->linesize[2], 128, (size_t)o->w / 2);
    }
    o->drawing = 1;
}

static void plot(vg_overlay *o, int x, int y, int ink) {
    if (x < 0 || y < 0 || x >= o->w || y >= o->h) return;
    AVFrame *c = o->canvas;
    c->data[0][(size_t)y * c->linesize[0] + x] = INK[ink][0];
    c->data[1][(size_t)(y / 2) * c->linesize[1] + x / 2] = INK[ink][1];
    c->data[2][(size_t)(y / 2) * c->linesize[2] + x / 2] = INK[ink][2];
}

void vg_overlay_mask(vg_overlay *o, const uint8_t *mask, int width, int height) {
    if (!o->drawing || !mask || (width * o->scale & ~1) != o->w || (height * o->scale & ~1) != o->h) return;
    AVFrame *c = o->canvas;
    for (int y = 0; y < o->h / 2; y++) {
        for (int x = 0; x < o->w / 2; x++) {
            if (!mask[(size_t)(2 * y / o->scale) * width + 2 * x / o->scale]) continue;
            c->data[1][(size_t)y * c->linesize[1] + x] = INK[VG_INK_MOTION][1];
            c->data[2][(size_t)y * c->linesize[2] + x] = INK[VG_INK_MOTION][2];
        }
    }
}

static int to_x(const vg_overlay *o, double x) { return (int)lround(x * o->w); }
static int to_y(const vg_overlay *o, double y) { return (int)lround(y * o->h); }

static int ink_ok(int ink) { return ink >= 0 && ink < VG_INK_COUNT; }

static void segment(vg_overlay *o, int x0, int y0, int x1, int y1, int ink) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (int steps = 0; steps < 4 * (o->w + o->h); steps++) { /* Bresenham, bounded */
        plot(o, x0, y0, ink);
        if (x0 == x1 && y0 == y1) return;
        int e2 = 2 * e;
        if (e2 >= dy) e += dy, x0 += sx;
        if (e2 <= dx) e += dx, y0 += sy;
    }
}

static int finite4(double a, double b, double c, double d) {
    return isfinite(a) && isfinite(b) && isfinite(c) && isfinite(d) && fabs(a) < 4 && fabs(b) < 4 && fabs(c) < 4 &&
           fabs(d) < 4;
}

void vg_overlay_line(vg_overlay *o, double x0, double y0, double x1, double y1, int ink) {
    if (!o->drawing || !ink_ok(ink) || !finite4(x0, y0, x1, y1)) return;
    segment(o, to_x(o, x0), to_y(o, y0), to_x(o, x1), to_y(o, y1), ink);
    segment(o, to_x(o, x0) + 1, to_y(o, y0), to_x(o, x1) + 1, to_y(o, y1), ink); /* 2 px: it shows */
}

void vg_overlay_box(vg_overlay *o, double x, double y, double w, double h, int ink) {
    if (!o->drawing || !ink_ok(ink) || !finite4(x, y, w, h)) return;
    int x0 = to_x(o, x), y0 = to_y(o, y), x1 = to_x(o, x + w) - 1, y1 = to_y(o, y + h) - 1;
    for (int k = 0; k < 2; k++) { /* 2 px wide, inward */
        segment(o, x0 + k, y0 + k, x1 - k, y0 + k, ink);
        segment(o, x0 + k, y1 - k, x1 - k, y1 - k, ink);
        segment(o, x0 + k, y0 + k, x0 + k, y1 - k, ink);
        segment(o, x1 - k, y0 + k, x1 - k, y1 - k, ink);
    }
}

/* 5x7 glyphs, a row per byte, bit 4 leftmost: 0-9, A-Z, then - : . # / _ */
static const uint8_t GLYPHS[42][7] = {
    {14, 17, 19, 21, 25, 17, 14}, {4, 12, 4, 4, 4, 4, 14},     {14, 17, 1, 2, 4, 8, 31},
    {31, 2, 4, 2, 1, 17, 14},     {2, 6, 10, 18, 31, 2, 2},     {31, 16, 30, 1, 1, 17, 14},
    {6, 8, 16, 30, 17, 17, 14},   {31, 1, 2, 4, 8, 8, 8},       {14, 17, 17, 14, 17, 17, 14},
    {14, 17, 17, 15, 1, 2, 12},   {14, 17, 17, 17, 31, 17, 17}, {30, 17, 17, 30, 17, 17, 30},
    {14, 17, 16, 16, 16, 17, 14}, {28, 18, 17, 17, 17, 18, 28}, {31, 16, 16, 30, 16, 16, 31},
    {31, 16, 16, 30, 16, 16, 16}, {14, 17, 16, 23, 17, 17, 15}, {17, 17, 17, 31, 17, 17, 17},
    {14, 4, 4, 4, 4, 4, 14},      {7, 2, 2, 2, 2, 18, 12},      {17, 18, 20, 24, 20, 18, 17},
    {16, 16, 16, 16, 16, 16, 31}, {17, 27, 21, 21, 17, 17, 17}, {17, 17, 25, 21, 19, 17, 17},
    {14, 17, 17, 17, 17, 17, 14}, {30, 17, 17, 30, 16, 16, 16}, {14, 17, 17, 17, 21, 18, 13},
    {30, 17, 17, 30, 20, 18, 17}, {15, 16, 16, 14, 1, 1, 30},   {31, 4, 4, 4, 4, 4, 4},
    {17, 17, 17, 17, 17, 17, 14}, {17, 17, 17, 17, 17, 10, 4},  {17, 17, 17, 21, 21, 21, 10},
    {17, 17, 10, 4, 10, 17, 17},  {17, 17, 17, 10, 4, 4, 4},    {31, 1, 2, 4, 8, 16, 31},
    {0, 0, 0, 31, 0, 0, 0},       {0, 12, 12, 0, 12, 12, 0},    {0, 0, 0, 0, 0, 12, 12},
    {10, 10, 31, 10, 31, 10, 10}, {1, 1, 2, 4, 8, 16, 16},      {0, 0, 0, 0, 0, 0, 31},
};

static const uint8_t *glyph(char ch) {
    static const char *symbols = "-:.#/_";
    static const uint8_t blank[7] = {0}, unknown[7] = {31, 17, 17, 17, 17, 17, 31};
    int c = toupper((unsigned char)ch);
    if (c >= '0' && c <= '9') return GLYPHS[c - '0'];
    if (c >= 'A' && c <= 'Z') return GLYPHS[10 + c - 'A'];
    if (c == ' ') return blank;
    const char *at = c ? strchr(symbols, c) : NULL;
    return at ? GLYPHS[36 + (at - symbols)] : unknown;
}

void vg_overlay_text(vg_overlay *o, double x, double y, const char *text, int ink) {
    if (!o->drawing || !text || !ink_ok(ink) || !finite4(x, y, 0, 0)) return;
    int px = o->scale > 1 ? o->scale : 1, left = to_x(o, x), top = to_y(o, y);
    for (int i = 0; text[i] && i < 64; i++) {
        const uint8_t *g = glyph(text[i]);
        for (int row = 0; row < 7; row++)
            for (int col = 0; col < 5; col++)
                if (g[row] & (16 >> col))
                    for (int k = 0; k < px * px; k++)
                        plot(o, left + (6 * i + col) * px + k % px, top + row * px + k / px, ink);
    }
}

int vg_overlay_end(vg_overlay *o, int64_t ts, char *err, size_t errlen) {
    if (!o->drawing) return 0;
    o->drawing = 0;
    int rc = o->video ? write_video(o, ts, err, errlen) : write_jpeg(o, ts, err, errlen);
    if (rc == 0) o->frames++;
    return rc;
}

int vg_overlay_close(vg_overlay *o, char *err, size_t errlen) {
    if (!o) return 0;
    int rc = 0;
    if (o->fmt && o->enc && o->fmt->pb) {
        char ignored[256];
        rc = encode(o, NULL, err ? err : ignored, err ? errlen : sizeof ignored);
        if (av_write_trailer(o->fmt) < 0 && rc == 0) {
            if (err) snprintf(err, errlen, "overlay %s: cannot finish the file", o->path);
            rc = -1;
        }
        avio_closep(&o->fmt->pb);
    }
    avcodec_free_context(&o->enc);
    avformat_free_context(o->fmt);
    av_packet_free(&o->pkt);
    av_frame_free(&o->canvas);
    vg_jpeg_free(o->jpeg);
    free(o->path);
    free(o);
    return rc;
}
