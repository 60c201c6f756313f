/* vg_frame.h — a decoded frame as scripts see it: absolute time, the analysis-size luma plane (read in
 * place through the FFI), and the full-resolution picture previews are cut from. */
#ifndef VG_FRAME_H
#define VG_FRAME_H
#include <stdint.h>

#include <libavutil/frame.h>

/* The layout lua/vigil.lua declares with ffi.cdef: keep the two in step. */
typedef struct vg_frame {
    int64_t ts;              /* unix ms */
    int64_t index;           /* frames delivered to the script so far, from 0 */
    int32_t width, height;   /* analysis size */
    int32_t stride;
    const uint8_t *luma;     /* analysis-size luma plane, width x height, row pitch stride */
    int32_t full_width, full_height;
    int32_t clock;           /* vg_clock_source (vg_clock.h) */
    int32_t keyframe;
    const AVFrame *full;     /* full-resolution decoded picture */
    struct vg_frame_scaler *scaler; /* makes luma on first use (vg_frame_luma) */
    struct vg_overlay *overlay;     /* what lua/ draws on while the camera writes an overlay, else NULL */
} vg_frame;

/* Scales the luma of decoded frames to the analysis size (aspect kept, even height), reusing buffers. */
typedef struct vg_frame_scaler vg_frame_scaler;

vg_frame_scaler *vg_frame_scaler_new(int analysis_width);
void vg_frame_scaler_free(vg_frame_scaler *scaler);
/* Describes src in frame (analysis width/height, full size and picture) without touching a pixel: the
 * luma plane is made on first use by vg_frame_luma, so frames a rule never reads cost no scaling.
 * -1 when the pixel format cannot be converted. */
int vg_frame_scaler_describe(vg_frame_scaler *scaler, const AVFrame *src, vg_frame *frame);
/* The analysis-size luma plane (scaled now if not yet); NULL when scaling failed. */
const uint8_t *vg_frame_luma(vg_frame *frame);

#endif
