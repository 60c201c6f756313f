/* test_background.c — the background model (core/vg_background.c) on synthetic planes whose truth is known:
 * a textured scene with sensor noise, objects that appear, stand still, leave; light changes; ghosts. */
#include "check.h"
#include "vg_background.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { W = 64, H = 48, S = 72 }; /* padded stride: the padding must be ignored */
#define FRAME_MS 100

static unsigned rng = 12345;
static double uniform(void) {
    rng = rng * 1103515245u + 12345u;
    return ((rng >> 8) & 0xFFFFFF) / (double)0x1000000;
}
static double gauss(void) { /* Box-Muller */
    double u = uniform() + 1e-12, v = uniform();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static uint8_t texture[W * H];

static void make_texture(void) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) texture[y * W + x] = (uint8_t)(70 + 40 * sin(x * 0.4) * cos(y * 0.3) + 20 * uniform());
}

static uint8_t clip8(double v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v)); }

/* The scene times gain, plus noise of sigma, into frame (stride S). */
static void scene(uint8_t *frame, double gain, double sigma) {
    memset(frame, 255, (size_t)S * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) frame[y * S + x] = clip8(texture[y * W + x] * gain + sigma * gauss());
}

static void object(uint8_t *frame, int x0, int y0, int w, int h, double gain) {
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++) frame[y * S + x] = clip8((200 + 10 * ((x + y) % 3)) * gain);
}

static int count(const vg_background *bg) {
    const uint8_t *m = vg_background_motion(bg);
    int c = 0;
    for (int i = 0; i < W * H; i++) c += m[i];
    return c;
}

static int count_in(const vg_background *bg, int x0, int y0, int w, int h) {
    const uint8_t *m = vg_background_motion(bg);
    int c = 0;
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++) c += m[y * W + x];
    return c;
}

/* Still scene for a second: the model's first frames (its noise is learnt). Returns the next frame's time. */
static int64_t warm_up(vg_background *bg, uint8_t *frame, int frames) {
    int64_t t = 0;
    for (int k = 0; k < frames; k++, t += FRAME_MS) {
        scene(frame, 1, 2);
        vg_background_update(bg, frame, W, H, S, t);
    }
    return t;
}

static vg_background *model(void) {
    vg_background_options o = vg_background_defaults();
    o.absorb_ms = 3000;
    o.ghost_ms = 500;
    return vg_background_new(W, H, &o);
}

/* Still noisy scene: nothing moves (after the first second the noise is learnt); an object is found whole. */
static void test_noise_and_object(void) {
    uint8_t frame[S * H];
    vg_background *bg = model();
    int64_t t = 0, worst = 0;
    for (int k = 0; k < 50; k++, t += FRAME_MS) {
        scene(frame, 1, 4);
        CHECK_INT(vg_background_update(bg, frame, W, H, S, t), 0);
        if (k >= 10 && count(bg) > worst) worst = count(bg);
    }
    CHECK(worst <= 2); /* sigma 4 noise, despeckled: at most a stray pixel */
    scene(frame, 1, 4);
    object(frame, 20, 10, 12, 16, 1);
    vg_background_update(bg, frame, W, H, S, t);
    CHECK(count_in(bg, 20, 10, 12, 16) >= 12 * 16 - 4); /* the corners may go to the majority filter */
    CHECK(count(bg) - count_in(bg, 20, 10, 12, 16) <= 2);
    vg_background_stats st;
    vg_background_get_stats(bg, &st);
    CHECK(st.noise > 1.5 && st.noise < 6); /* the mean |residual| of sigma 4 is 3.2 */
    vg_background_free(bg);
}

/* Exposure: the whole scene darkens to 60 % within a frame, with and without an object: only the object. */
static void test_light_change(void) {
    uint8_t frame[S * H];
    vg_background *bg = model();
    int64_t t = warm_up(bg, frame, 20);
    scene(frame, 0.6, 2);
    vg_background_update(bg, frame, W, H, S, t += FRAME_MS);
    CHECK(count(bg) <= 2);
    vg_background_stats st;
    vg_background_get_stats(bg, &st);
    CHECK_NEAR(st.gain, 0.6, 0.03);
    CHECK_INT(st.lightswitches, 0);
    scene(frame, 0.6, 2);
    object(frame, 5, 5, 10, 10, 0.6);
    vg_background_update(bg, frame, W, H, S, t += FRAME_MS);
    CHECK(count_in(bg, 5, 5, 10, 10) >= 96);
    CHECK(count(bg) - count_in(bg, 5, 5, 10, 10) <= 2);
    /* the model follows the new light: a while later the gain is 1 again */
    for (int k = 0; k < 300; k++, t += FRAME_MS) {
        scene(frame, 0.6, 2);
        vg_background_update(bg, frame, W, H, S, t);
    }
    vg_background_get_stats(bg, &st);
    CHECK_NEAR(st.gain, 1.0, 0.03);
    CHECK(count(bg) <= 2);
    /* a change no gain explains over most of the frame: the light switch re-learns at once */
    for (int i = 0; i < W * H; i++) texture[i] = (uint8_t)(255 - texture[i]);
    scene(frame, 1, 2);
    vg_background_update(bg, frame, W, H, S, t += FRAME_MS);
    vg_background_get_stats(bg, &st);
    CHECK_INT(st.lightswitches, 1);
    CHECK_INT(count(bg), 0);
    scene(frame, 1, 2);
    vg_background_update(bg, frame, W, H, S, t += FRAME_MS);
    CHECK(count(bg) <= 2);
    for (int i = 0; i < W * H; i++) texture[i] = (uint8_t)(255 - texture[i]);
    vg_background_free(bg);
}

/* An object that stands still is absorbed after absorb_ms; when it leaves, the background it covered is
 * back at once (no ghost). A held object is never absorbed. */
static void test_absorb_and_leave(void) {
    uint8_t frame[S * H];
    vg_background *bg = model();
    int64_t t = warm_up(bg, frame, 10);
    int64_t stood = t;
    int absorbed_at = -1;
    for (int k = 0; k < 50; k++, t += FRAME_MS) {
        scene(frame, 1, 2);
        object(frame, 30, 20, 8, 20, 1);
        vg_background_update(bg, frame, W, H, S, t);
        if (absorbed_at < 0 && count(bg) == 0) absorbed_at = (int)(t - stood);
    }
    CHECK(absorbed_at >= 3000 && absorbed_at <= 3100);
    scene(frame, 1, 2);
    vg_background_update(bg, frame, W, H, S, t += FRAME_MS);
    CHECK(count(bg) <= 2); /* left: no ghost */
    vg_background_stats st;
    vg_background_get_stats(bg, &st);
    CHECK(st.restored >= 8 * 20 - 8);

    vg_pixel_rect held = {28, 18, 12, 24};
    vg_background_hold(bg, &held, 1);
    for (int k = 0; k < 60; k++, t += FRAME_MS) {
        scene(frame, 1, 2);
        object(frame, 30, 20, 8, 20, 1);
        vg_background_update(bg, frame, W, H, S, t);
    }
    CHECK(count_in(bg, 30, 20, 8, 20) >= 8 * 20 - 4); /* 6 s, still there */
    vg_background_hold(bg, NULL, 0);
    scene(frame, 1, 2);
    vg_background_update(bg, frame, W, H, S, t += FRAME_MS);
    CHECK(count(bg) <= 2); /* it was never learnt: leaving leaves nothing */
    vg_background_free(bg);
}

/* An object in the first frame, taken away: the spot it leaves is a ghost, gone after ghost_ms. */
static void test_ghost(void) {
    uint8_t frame[S * H];
    vg_background *bg = model();
    int64_t t = 0;
    for (int k = 0; k < 5; k++, t += FRAME_MS) {
        scene(frame, 1, 2);
        object(frame, 10, 10, 10, 14, 1);
        vg_background_update(bg, frame, W, H, S, t);
    }
    int64_t left = t;
    int gone_at = -1;
    for (int k = 0; k < 20; k++, t += FRAME_MS) {
        scene(frame, 1, 2);
        vg_background_update(bg, frame, W, H, S, t);
        if (k == 0) CHECK(count_in(bg, 10, 10, 10, 14) >= 100); /* the ghost shows at first */
        if (gone_at < 0 && count(bg) == 0) gone_at = (int)(t - left);
    }
    CHECK(gone_at >= 500 && gone_at <= 700);
    vg_background_stats st;
    vg_background_get_stats(bg, &st);
    CHECK_INT(st.ghosts, 1);
    /* a real object standing as long is no ghost: it is still there until absorbed */
    for (int k = 0; k < 15; k++, t += FRAME_MS) {
        scene(frame, 1, 2);
        object(frame, 40, 10, 10, 14, 1);
        vg_background_update(bg, frame, W, H, S, t);
    }
    CHECK(count_in(bg, 40, 10, 10, 14) >= 136);
    vg_background_get_stats(bg, &st);
    CHECK_INT(st.ghosts, 1);
    vg_background_free(bg);
}

/* A wobbling edge (a 2-px column that keeps flipping) is masked once it has flickered a while; a real object
 * elsewhere still counts. A still speck (a 3x3 change that stays) is gone after ghost_ms. */
static void test_flicker_and_specks(void) {
    uint8_t frame[S * H];
    vg_background *bg = model();
    int64_t t = warm_up(bg, frame, 10);
    int column_late = -1;
    for (int k = 0; k < 40; k++, t += FRAME_MS) {
        scene(frame, 1, 2);
        if (k % 2) object(frame, 2, 0, 2, H, 1); /* flips every frame */
        object(frame, 40, 30, 3, 3, 1);           /* the speck, from k = 0 on */
        vg_background_update(bg, frame, W, H, S, t);
        if (k == 1) CHECK(count_in(bg, 2, 0, 2, H) >= H); /* at first the column moves */
        if (k == 1) CHECK(count_in(bg, 40, 30, 3, 3) >= 1);
        if (k >= 30) column_late = count_in(bg, 2, 0, 2, H) > column_late ? count_in(bg, 2, 0, 2, H) : column_late;
    }
    CHECK_INT(column_late, 0);                 /* masked: flickering is no motion */
    CHECK_INT(count_in(bg, 38, 28, 7, 7), 0);  /* the still speck was absorbed */
    scene(frame, 1, 2);
    object(frame, 20, 10, 12, 16, 1);
    object(frame, 40, 30, 3, 3, 1);
    vg_background_update(bg, frame, W, H, S, t);
    CHECK(count_in(bg, 20, 10, 12, 16) >= 12 * 16 - 4); /* a real object still counts */
    vg_background_free(bg);
}

static void test_bad_input(void) {
    uint8_t frame[S * H];
    vg_background *bg = model();
    scene(frame, 1, 0);
    CHECK_INT(vg_background_update(bg, frame, W, H, S, 0), 0);
    CHECK_INT(count(bg), 0); /* the seeding frame */
    CHECK_INT(vg_background_update(bg, frame, W - 1, H, S, 100), -1);
    CHECK_INT(vg_background_update(bg, frame, W, H + 1, S, 100), -1);
    CHECK_INT(vg_background_update(bg, frame, W, H, W - 1, 100), -1);
    CHECK_INT(vg_background_update(bg, NULL, W, H, S, 100), -1);
    CHECK_INT(count(bg), 0);
    vg_background_reset(bg);
    object(frame, 0, 0, 10, 10, 1);
    CHECK_INT(vg_background_update(bg, frame, W, H, S, 200), 0); /* seeds again */
    CHECK_INT(count(bg), 0);
    vg_background_free(bg);
    vg_background_free(NULL);
    CHECK(vg_background_new(0, 10, NULL) == NULL);
    CHECK(vg_background_new(10, VG_MAX_DIM + 1, NULL) == NULL);
}

int main(void) {
    make_texture();
    test_noise_and_object();
    test_light_change();
    test_absorb_and_leave();
    test_ghost();
    test_flicker_and_specks();
    test_bad_input();
    return check_done();
}
