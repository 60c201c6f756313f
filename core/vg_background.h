/* vg_background.h — the background model behind motion: what the scene looks like when nothing moves, and
 * which pixels of a frame differ from it. Built to hold on real cameras:
 *
 *  - noise: each pixel's threshold is max(threshold, noise_factor x its measured noise), so a grainy area
 *    does not flicker and a clean one stays sensitive;
 *  - light: a global exposure or light change (the camera darkens when a white car enters; lights are
 *    switched on) is a gain, measured each frame as the median ratio of frame to model, and compared
 *    away; what changes at once beyond that over most of the frame re-learns the model (a light switch);
 *  - conservative update: moving pixels do not learn, so a passing object leaves no trail, and whatever
 *    stays still (not held, see below) is absorbed after absorb_ms;
 *  - ghosts: when something absorbed leaves, each pixel finds the background it covered (kept at
 *    absorption) and is background again at once; a still region whose outline shows in the model but
 *    not in the frame (an object present at start, then taken away) is a ghost and is absorbed;
 *  - speckle: a 3x3 majority filter cleans the mask before it is counted or blobbed, and a still speck (a
 *    remnant smaller than an object at analysis size) is absorbed after ghost_ms;
 *  - flicker: a pixel that keeps starting to change (a wobbling edge, leaves, water) counts as no change until
 *    it calms down (Motion's "smart mask");
 *  - hold: the caller may name boxes (tracked objects that stopped) whose pixels are not absorbed.
 *
 * Luma planes at analysis size; memory is allocated by vg_background_new only. Times are the frames'
 * own (stream ms), so a replay scores the same as the live camera. */
#ifndef VG_BACKGROUND_H
#define VG_BACKGROUND_H

#include <stdint.h>

#include "vg_vision.h"

typedef struct vg_background_options {
    double learning_rate;  /* how fast background pixels follow slow change, per frame, 0..1 */
    double threshold;      /* least luma difference that counts as change, 1..255 */
    double noise_factor;   /* a pixel's threshold is at least this many times its noise (0 = off) */
    double absorb_ms;      /* still foreground becomes background after this long (0 = never) */
    double ghost_ms;       /* still foreground regions are checked for ghosts after this long (0 = never) */
    double lightswitch;    /* this fraction of the frame changing at once re-learns the model (0 = never) */
    int compensate_light;  /* measure and compare away a global gain (exposure, lights) */
    int despeckle;         /* 3x3 majority filter on the motion mask */
} vg_background_options;

/* What the last update saw (for rules, the overlay and tests). */
typedef struct vg_background_stats {
    double gain;           /* frame / model, the light change compared away (1 = none) */
    double raw_changed;    /* fraction of pixels over their threshold before despeckle */
    double noise;          /* mean noise (luma) of background pixels */
    long lightswitches;    /* times the model was re-learnt at once */
    long ghosts;           /* ghost regions absorbed */
    long restored;         /* pixels that found the background they had covered */
    long absorbed;         /* pixels absorbed after standing still */
} vg_background_stats;

typedef struct vg_background vg_background;

/* The defaults every rule starts from (one place for them). */
vg_background_options vg_background_defaults(void);
vg_background *vg_background_new(int w, int h, const vg_background_options *o);
/* Feeds a frame taken at ts_ms. The first frame (and the first after reset) seeds the model and gives an
 * empty mask. Returns -1, with an empty mask and the model untouched, if the size differs from the
 * model's or stride < width. */
int vg_background_update(vg_background *bg, const uint8_t *luma, int width, int height, int stride,
                         int64_t ts_ms);
/* Boxes (pixels) whose foreground is not absorbed at the next updates, until set again (n = 0 clears). */
void vg_background_hold(vg_background *bg, const vg_pixel_rect *boxes, int n);
const uint8_t *vg_background_motion(const vg_background *bg);   /* w*h, 0/1 */
const float *vg_background_model(const vg_background *bg);      /* w*h */
void vg_background_get_stats(const vg_background *bg, vg_background_stats *out);
void vg_background_reset(vg_background *bg);
void vg_background_free(vg_background *bg);

#endif
