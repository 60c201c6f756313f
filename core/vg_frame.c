/* vg_frame.c — the analysis plane: the decoded picture's luma scaled to the analysis width with
 * libswscale (area filter), or used in place when it already has that size. */
#include "vg_frame.h"

#include <stdlib.h>

#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "vg_settings.h"

struct vg_frame_scaler {
    int analysis_width;
    struct SwsContext *sws;
    int src_w, src_h, src_fmt;
    int dst_w, dst_h;
    uint8_t *plane;
    int stride;
};

vg_frame_scaler *vg_frame_scaler_new(int analysis_width) {
    vg_frame_scaler *s = calloc(1, sizeof *s);
    if (s) s->analysis_width = analysis_width > 0 ? analysis_width : VG_ANALYSIS_WIDTH_DEFAULT;
    return s;
}

void vg_frame_scaler_free(vg_frame_scaler *s) {
    if (!s) return;
    sws_freeContext(s->sws);
    av_free(s->plane);
    free(s);
}

/* Planar YUV and gray formats carry luma as their first plane: scale it alone as GRAY8. */
static int luma_is_first_plane(enum AVPixelFormat fmt) {
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
    return d && !(d->flags & AV_PIX_FMT_FLAG_RGB) && d->comp[0].plane == 0 && d->comp[0].depth == 8 &&
           d->comp[0].step == 1;
}

static void analysis_size(const vg_frame_scaler *s, int w, int h, int *dw, int *dh) {
    *dw = w <= s->analysis_width ? w : s->analysis_width;
    *dh = (int)((int64_t)h * *dw / w);
    *dh += *dh & 1;
    if (*dh < 2) *dh = 2;
}

static int prepare(vg_frame_scaler *s, const AVFrame *src) {
    if (s->sws && src->width == s->src_w && src->height == s->src_h && src->format == s->src_fmt) return 0;
    sws_freeContext(s->sws);
    av_freep(&s->plane);
    s->src_w = src->width;
    s->src_h = src->height;
    s->src_fmt = src->format;
    analysis_size(s, src->width, src->height, &s->dst_w, &s->dst_h);
    enum AVPixelFormat in = luma_is_first_plane(src->format) ? AV_PIX_FMT_GRAY8 : (enum AVPixelFormat)src->format;
    s->sws = sws_getContext(src->width, src->height, in, s->dst_w, s->dst_h, AV_PIX_FMT_GRAY8, SWS_AREA,
                            NULL, NULL, NULL);
    s->stride = FFALIGN(s->dst_w, 32);
    s->plane = av_malloc((size_t)s->stride * s->dst_h);
    return s->sws && s->plane ? 0 : -1;
}

int vg_frame_scaler_describe(vg_frame_scaler *s, const AVFrame *src, vg_frame *frame) {
    if (prepare(s, src) < 0) return -1;
    frame->width = s->dst_w;
    frame->height = s->dst_h;
    frame->full_width = src->width;
    frame->full_height = src->height;
    frame->full = src;
    frame->luma = NULL;
    frame->stride = 0;
    frame->scaler = s;
    return 0;
}

const uint8_t *vg_frame_luma(vg_frame *frame) {
    if (frame->luma || !frame->scaler || !frame->full) return frame->luma;
    vg_frame_scaler *s = frame->scaler;
    const AVFrame *src = frame->full;
    int gray = luma_is_first_plane(src->format);
    if (gray && s->dst_w == src->width && s->dst_h == src->height) {
        frame->luma = src->data[0]; /* already analysis size: read in place */
        frame->stride = src->linesize[0];
    } else {
        uint8_t *dst[4] = {s->plane};
        int dst_stride[4] = {s->stride};
        const uint8_t *const *in = (const uint8_t *const *)src->data;
        if (sws_scale(s->sws, in, src->linesize, 0, src->height, dst, dst_stride) <= 0) return NULL;
        frame->luma = s->plane;
        frame->stride = s->stride;
    }
    return frame->luma;
}
