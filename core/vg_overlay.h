/* vg_overlay.h — seeing why a rule fired: every analysed frame drawn with what the rule's primitives saw
 * (the motion mask, blobs, tracks with their paths, zones, lines) and the open episodes, written as a video
 * (a path ending in .mp4, .mkv, .mov or .avi) or as one JPEG per frame, named by its time, into a
 * directory. The canvas is the analysis picture (dimmed, so the ink shows), scaled up to about 640 px wide.
 * The drawing calls come from the vigil Lua module's vision bindings (through vg_frame.overlay) and from the
 * camera (episodes); coordinates are frame fractions. One overlay per camera thread. */
#ifndef VG_OVERLAY_H
#define VG_OVERLAY_H

#include <stddef.h>
#include <stdint.h>

typedef enum { VG_INK_MOTION, VG_INK_BLOB, VG_INK_TRACK, VG_INK_ZONE, VG_INK_LINE, VG_INK_EPISODE, VG_INK_TEXT,
               VG_INK_COUNT } vg_ink;

typedef struct vg_overlay vg_overlay;

/* NULL with a one-line reason when path can be neither (a directory that cannot be made, no encoder). */
vg_overlay *vg_overlay_open(const char *path, char *err, size_t errlen);
/* Starts a picture from the analysis luma; drawing calls until vg_overlay_end go onto it. */
void vg_overlay_begin(vg_overlay *o, const uint8_t *luma, int width, int height, int stride);
/* Tints the pixels set in mask (width x height, 0/1: the analysis size). */
void vg_overlay_mask(vg_overlay *o, const uint8_t *mask, int width, int height);
void vg_overlay_box(vg_overlay *o, double x, double y, double w, double h, int ink);
void vg_overlay_line(vg_overlay *o, double x0, double y0, double x1, double y1, int ink);
/* Text in capitals, digits and - : . # / (others draw as a box), top-left at (x, y). */
void vg_overlay_text(vg_overlay *o, double x, double y, const char *text, int ink);
/* Writes the picture, shown at ts (unix ms). -1 with a reason (said once by the caller). */
int vg_overlay_end(vg_overlay *o, int64_t ts, char *err, size_t errlen);
/* Finishes the file and frees; 0, or -1 with a reason. NULL is fine. */
int vg_overlay_close(vg_overlay *o, char *err, size_t errlen);
long vg_overlay_frames(const vg_overlay *o);

#endif
