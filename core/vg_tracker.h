/* vg_tracker.h — follows moving blobs from frame to frame and gives each object one id:
 *
 *  - each track predicts where it will be (constant velocity, smoothed) and a blob is matched to the
 *    closest prediction within a gate that widens while the track is unseen, so an object keeps its id
 *    through a brief occlusion, and two objects that cross keep theirs;
 *  - an object that the background cuts into pieces (a person whose shirt matches the wall) is one
 *    track: pieces next to a track's box that keep it within its largest size join its observation
 *    instead of opening tracks of their own;
 *  - two objects that meet are one blob for a while: each track whose prediction lies on a blob much
 *    bigger than itself coasts along its path through it, and takes up its own blob when they part;
 *  - a track that stops moving keeps its id as long as its blob is there (vg_background_hold keeps a
 *    stopped object from being absorbed);
 *  - ids are 1, 2, 3, ... never reused, even across a reset.
 * Pixel units at analysis size; no allocation after vg_tracker_new. */
#ifndef VG_TRACKER_H
#define VG_TRACKER_H

#include <stdint.h>

#include "vg_vision.h"

typedef struct vg_tracker_options {
    double max_distance;  /* pixels a centroid may move between two frames beyond its prediction */
    int max_missed;       /* frames a track survives unseen */
} vg_tracker_options;

typedef struct vg_track {
    uint32_t id;
    vg_blob blob;             /* the last observation: box, area, centroid */
    double prev_cx, prev_cy;  /* the centroid before the last observation (== current at birth) */
    double vx, vy;            /* velocity, pixels per frame, smoothed */
    double origin_cx, origin_cy; /* where it was first seen */
    double travelled;         /* the farthest it has been from its origin, pixels */
    double peak_box;          /* the largest box it had, pixels (what its whole object looks like) */
    uint64_t first_seen;      /* tracker frame number (1-based) when opened */
    int age;                  /* frames since opened, including the opening frame */
    int missed;               /* consecutive frames without an observation */
    int seen;                 /* frames observed, including the opening frame */
} vg_track;

typedef struct vg_tracker vg_tracker;

vg_tracker *vg_tracker_new(int max_tracks);
/* One call per frame with that frame's blobs. Returns the number of live tracks, kept ordered by id. */
int vg_tracker_update(vg_tracker *t, const vg_blob *blobs, int n, const vg_tracker_options *o);
int vg_tracker_count(const vg_tracker *t);
const vg_track *vg_tracker_get(const vg_tracker *t, int i);  /* NULL if out of range */
uint64_t vg_tracker_frame(const vg_tracker *t);
void vg_tracker_reset(vg_tracker *t);
void vg_tracker_free(vg_tracker *t);

#endif
