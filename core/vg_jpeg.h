/* vg_jpeg.h — preview JPEGs: crop a decoded AVFrame, shrink it if needed and
 * compress it straight from its YUV planes with TurboJPEG; plus base64. */
#ifndef VG_JPEG_H
#define VG_JPEG_H

#include <stddef.h>
#include <stdint.h>
#include <libavutil/frame.h>

#define VG_JPEG_DEFAULT_MAX_SIZE 320 /* longest side of a crop preview, px */
#define VG_JPEG_DEFAULT_QUALITY  80
#define VG_JPEG_DEFAULT_LINES    240 /* height of a whole-frame preview */
#define VG_JPEG_MAX_DIM          65500 /* JPEG's own limit per side */

/* Per-camera encoder: TurboJPEG handle, cached SwsContext and scratch
 * buffers that only grow. Not thread-safe: one per thread/camera. */
typedef struct vg_jpeg vg_jpeg;

/* A crop box in fractions (0..1) of the frame: top-left x,y and size w,h. */
typedef struct { double x, y, w, h; } vg_box;

vg_jpeg *vg_jpeg_new(void);
void vg_jpeg_free(vg_jpeg *j); /* NULL is fine */

/* Encode the part of src inside box (NULL = whole frame) as a JPEG.
 * The pixel rectangle is grown outward to the chroma grid and clamped to the
 * frame; if its longest side exceeds max_size it is scaled down (aspect kept,
 * never up). quality is 1..100. Native formats (yuv420p/422p/444p, their
 * yuvj twins, gray) are compressed from the frame planes in place; anything
 * else goes through one swscale pass to yuv420p. YUV values are passed
 * through unchanged (limited-range sources stay limited-range).
 * On success returns 0, *out is a malloc'd JPEG of *out_len bytes (free()
 * it) and *out_w, *out_h (either may be NULL) its size. On bad input returns
 * -1, *out = NULL, and err gets one line naming the bad value, e.g.
 * "box.x=nan: not a number" or "box x+w=1.3: outside the frame". */
int vg_jpeg_crop(vg_jpeg *j, const AVFrame *src, const vg_box *box,
                 int max_size, int quality, uint8_t **out, size_t *out_len,
                 int *out_w, int *out_h, char *err, size_t errlen);

/* Encode the whole frame scaled to about `lines` rows (even width/height,
 * aspect kept); a frame no taller than `lines` is encoded at its own size.
 * Same outputs and errors as vg_jpeg_crop. */
int vg_jpeg_frame(vg_jpeg *j, const AVFrame *src, int lines, int quality,
                  uint8_t **out, size_t *out_len, int *out_w, int *out_h,
                  char *err, size_t errlen);

/* Base64 of data (libavutil alphabet, '=' padded) as a malloc'd
 * NUL-terminated string; NULL if out of memory, len too large or data NULL
 * with len > 0. */
char *vg_base64(const uint8_t *data, size_t len);

/* A base64 JPEG (a preview) decoded and written to name in the directory dirfd (vg_file_replace_at, mode
 * 0644, not durable). 0; -1 for bad data, nothing written, why "not valid base64", "not a JPEG" or "too
 * large"; -2 for a failed write, why "name: strerror" (the caller names the directory). */
int vg_jpeg_save_base64(int dirfd, const char *name, const char *b64, char *why, size_t whylen);

#endif
