/* primitives.c — the cost per frame of the vision primitives a tracking rule runs every frame: the background
 * model (vg_background_update), its blobs (vg_blobs_find) and the tracker (vg_tracker_update), on raw 8-bit
 * luma frames (WIDTHxHEIGHT, from ffmpeg -pix_fmt gray) at 10 fps of stream time. Built and run by
 * tests/bench/run (section "primitives"); prints one line per primitive: "NAME µs". */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vg_background.h"
#include "vg_tracker.h"
#include "vg_vision.h"

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: primitives FRAMES.gray WIDTH HEIGHT\n");
        return 2;
    }
    int w = atoi(argv[2]), h = atoi(argv[3]);
    size_t n = (size_t)w * h, cap = 4000;
    FILE *f = fopen(argv[1], "rb");
    uint8_t *frames = malloc(n * cap);
    size_t count = f && frames ? fread(frames, n, cap, f) : 0;
    if (!count) {
        fprintf(stderr, "primitives: no frames in %s\n", argv[1]);
        return 1;
    }
    vg_background *bg = vg_background_new(w, h, NULL);
    vg_blobber *blobber = vg_blobber_new(w, h, 64);
    vg_tracker *tracker = vg_tracker_new(32);
    vg_tracker_options o = {.max_distance = 0.1 * w, .max_missed = 12};
    vg_blob blobs[32];
    double background = 0, blob = 0, track = 0;
    for (size_t i = 0; i < count; i++) {
        double t0 = now_us();
        vg_background_update(bg, frames + i * n, w, h, w, (int64_t)i * 100);
        double t1 = now_us();
        int found = vg_blobs_find(blobber, vg_background_motion(bg), NULL, (int)(0.002 * n), blobs, 32);
        double t2 = now_us();
        vg_tracker_update(tracker, blobs, found, &o);
        double t3 = now_us();
        background += t1 - t0, blob += t2 - t1, track += t3 - t2;
    }
    printf("frames %zu\nbackground %.1f\nblobs %.1f\ntracker %.2f\n", count, background / count, blob / count,
           track / count);
    vg_background_free(bg);
    vg_blobber_free(blobber);
    vg_tracker_free(tracker);
    free(frames);
    fclose(f);
    return 0;
}
