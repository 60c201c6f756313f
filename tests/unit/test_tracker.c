/* test_tracker.c — the tracker (core/vg_tracker.c) on blobs whose paths are known: ids and counters,
 * brief occlusion, two objects crossing, an object in pieces, a stopped object. */
#include "check.h"
#include "vg_tracker.h"

static const vg_tracker_options OPT = {.max_distance = 6, .max_missed = 3};

static vg_blob blob_at(double cx, double cy, int w, int h) {
    vg_blob b = {{(int)(cx - w / 2.0), (int)(cy - h / 2.0), w, h}, w * h, cx, cy};
    return b;
}

static void test_lifecycle(void) {
    vg_tracker *t = vg_tracker_new(4);
    vg_blob blobs[2];
    for (int f = 1; f <= 5; f++) {
        blobs[0] = blob_at(10 + 3 * (f - 1), 20, 3, 3);
        CHECK_INT(vg_tracker_update(t, blobs, 1, &OPT), 1);
    }
    const vg_track *tr = vg_tracker_get(t, 0);
    CHECK_U64(tr->id, 1);
    CHECK_NEAR(tr->blob.cx, 22, 1e-12);
    CHECK_NEAR(tr->prev_cx, 19, 1e-12);
    CHECK_NEAR(tr->vx, 3, 0.5);  /* learnt from the steps */
    CHECK_NEAR(tr->travelled, 12, 1e-9);
    CHECK_U64(tr->first_seen, 1);
    CHECK_INT(tr->age, 5);
    CHECK_INT(tr->seen, 5);
    CHECK_U64(vg_tracker_frame(t), 5);
    /* a far blob opens id 2 */
    blobs[0] = blob_at(100, 100, 3, 3);
    blobs[1] = blob_at(25, 20, 3, 3);
    CHECK_INT(vg_tracker_update(t, blobs, 2, &OPT), 2);
    CHECK_U64(vg_tracker_get(t, 0)->id, 1);
    CHECK_U64(vg_tracker_get(t, 1)->id, 2);
    /* id 1 unseen: kept for max_missed frames, then dropped */
    for (int k = 0; k < 3; k++) CHECK_INT(vg_tracker_update(t, blobs, 1, &OPT), 2);
    CHECK_INT(vg_tracker_get(t, 0)->missed, 3);
    CHECK_INT(vg_tracker_update(t, blobs, 1, &OPT), 1);
    CHECK_U64(vg_tracker_get(t, 0)->id, 2);
    /* reset never reuses ids */
    vg_tracker_reset(t);
    CHECK_INT(vg_tracker_count(t), 0);
    CHECK_INT(vg_tracker_update(t, blobs, 1, &OPT), 1);
    CHECK_U64(vg_tracker_get(t, 0)->id, 3);
    vg_tracker_free(t);
    vg_tracker_free(NULL);
    CHECK(vg_tracker_new(0) == NULL);
}

/* Hidden for 3 frames while moving at 4 px/frame: found again where its path leads, same id. */
static void test_occlusion(void) {
    vg_tracker *t = vg_tracker_new(4);
    vg_blob b;
    for (int f = 0; f < 8; f++) {
        b = blob_at(10 + 4 * f, 30, 6, 10);
        vg_tracker_update(t, &b, 1, &OPT);
    }
    for (int f = 8; f < 11; f++) vg_tracker_update(t, NULL, 0, &OPT);
    b = blob_at(10 + 4 * 11, 30, 6, 10); /* 16 px from where it was last seen: beyond max_distance */
    CHECK_INT(vg_tracker_update(t, &b, 1, &OPT), 1);
    CHECK_U64(vg_tracker_get(t, 0)->id, 1);
    CHECK_INT(vg_tracker_get(t, 0)->missed, 0);
    vg_tracker_free(t);
}

/* Two objects cross: they merge into one blob for 4 frames, then part; each keeps its id. */
static void test_crossing(void) {
    vg_tracker *t = vg_tracker_new(4);
    vg_blob blobs[2];
    for (int f = 0; f <= 24; f++) {
        double a = 10 + 4 * f, c = 106 - 4 * f; /* they meet at f = 12 (x = 58) */
        int n;
        if (fabs(a - c) < 12) {
            blobs[0] = blob_at((a + c) / 2, 30, (int)fabs(a - c) + 6, 10);
            n = 1;
        } else {
            blobs[0] = blob_at(a, 30, 6, 10);
            blobs[1] = blob_at(c, 30, 6, 10);
            n = 2;
        }
        vg_tracker_update(t, blobs, n, &OPT);
    }
    CHECK_INT(vg_tracker_count(t), 2);
    const vg_track *one = vg_tracker_get(t, 0), *two = vg_tracker_get(t, 1);
    CHECK_U64(one->id, 1);
    CHECK_U64(two->id, 2);
    CHECK(one->blob.cx > 100 && two->blob.cx < 20); /* id 1 went on rightwards, id 2 leftwards */
    vg_tracker_free(t);
}

/* Head-on through each other on one path: one blob no bigger than one of them while they overlap; each keeps
 * its id and its direction. */
static void test_head_on(void) {
    vg_tracker *t = vg_tracker_new(4);
    vg_blob blobs[2];
    for (int f = 0; f <= 30; f++) {
        double a = 10 + 3 * f, c = 100 - 3 * f; /* they meet at f = 15 (y = 55) */
        int n;
        if (fabs(a - c) < 10) {
            blobs[0] = blob_at(40, (a + c) / 2, 8, (int)fabs(a - c) + 10);
            n = 1;
        } else {
            blobs[0] = blob_at(40, a, 8, 10);
            blobs[1] = blob_at(40, c, 8, 10);
            n = 2;
        }
        vg_tracker_update(t, blobs, n, &OPT);
    }
    CHECK_INT(vg_tracker_count(t), 2);
    const vg_track *one = vg_tracker_get(t, 0), *two = vg_tracker_get(t, 1);
    CHECK_U64(one->id, 1);
    CHECK_U64(two->id, 2);
    CHECK(one->blob.cy > 90 && one->vy > 0 && two->blob.cy < 20 && two->vy < 0);
    vg_tracker_free(t);
}

/* A person walks in whole, then the background cuts them in two (legs and torso, 1 px apart): one track;
 * they stop and stay tracked. */
static void test_pieces_and_stop(void) {
    vg_tracker *t = vg_tracker_new(4);
    vg_blob blobs[2];
    for (int f = 0; f < 30; f++) {
        double x = f < 15 ? 20 + 2 * f : 48;
        if (f < 3) {
            blobs[0] = blob_at(x, 27, 8, 26);
        } else {
            blobs[0] = blob_at(x, 20, 8, 12);
            blobs[1] = blob_at(x, 34, 8, 12);
        }
        vg_tracker_update(t, blobs, f < 3 ? 1 : 2, &OPT);
    }
    CHECK_INT(vg_tracker_count(t), 1);
    const vg_track *tr = vg_tracker_get(t, 0);
    CHECK_U64(tr->id, 1);
    CHECK_INT(tr->blob.box.h, 26); /* both pieces */
    CHECK_INT(tr->seen, 30);
    CHECK_NEAR(tr->vx, 0, 0.01); /* stopped */
    vg_tracker_free(t);
}

int main(void) {
    test_lifecycle();
    test_occlusion();
    test_crossing();
    test_head_on();
    test_pieces_and_stop();
    return check_done();
}
