/* vg_settings.h — the camera settings, each declared once in VG_CAMERA_SETTINGS: its JSON key (also the
 * member of vg_camera_settings), kind, range, default, unit and one-line doc. From the table follow the
 * config's key list and checks ("defaults" and each camera), the built-in defaults, copying and comparing a
 * camera's settings, what the camera runs with (vg_camera_config.settings), replay's flags that set the same
 * values, and the table of docs/config.md (checked by tests/unit/test_settings.c, rewritten by
 * `build/tests/test_settings --update-docs`).
 * Adding a setting is one row here, plus the code that uses its value. */
#ifndef VG_SETTINGS_H
#define VG_SETTINGS_H
#include <stddef.h>
#include <stdio.h>

#include "vg_decode.h"

/* The defaults other modules fall back on when given 0 (a vg_camera_settings from vg_camera_settings_default
 * never holds 0 for them); each is the table's default below, stated here once. */
#define VG_ANALYSIS_WIDTH_DEFAULT 320    /* px */
#define VG_BUDGET_MS_DEFAULT 50          /* ms of CPU time per callback */
/* Ranges a help text states too. */
#define VG_ANALYSIS_WIDTH_MIN 16
#define VG_ANALYSIS_WIDTH_MAX 7680
#define VG_BUDGET_MS_MIN 1
#define VG_BUDGET_MS_MAX 60000
#define VG_STALL_TIMEOUT_MS_DEFAULT 10000
#define VG_PREVIEW_WAIT_MS_DEFAULT 1000  /* a frame's previews wait this long at most for preview_url */

/* A default in a help text: "(default " VG_STR(VG_BUDGET_MS_DEFAULT) ")". */
#define VG_STR_(x) #x
#define VG_STR(x) VG_STR_(x)

/* Kinds: INT (a whole number min..max), NUMBER (min..max), BOOL, WORD (one of choices, held as the table's
 * own string: copied by assignment), MODE (one of choices, held as an enum whose values are the choices'
 * positions). */
typedef enum { VG_SETTING_INT, VG_SETTING_NUMBER, VG_SETTING_BOOL, VG_SETTING_WORD, VG_SETTING_MODE } vg_setting_kind;

#define VG_SETTING_CTYPE_INT int
#define VG_SETTING_CTYPE_NUMBER double
#define VG_SETTING_CTYPE_BOOL int
#define VG_SETTING_CTYPE_WORD const char *
#define VG_SETTING_CTYPE_MODE vg_decode_mode /* the only MODE so far; a second one would name its own type */

/* X(key, KIND, min, max, default, unit, (choices...), "doc") — choices only for WORD and MODE, (0) else. */
#define VG_CAMERA_SETTINGS(X)                                                                                     \
    X(transport, WORD, 0, 0, "tcp", "", ("tcp", "udp"), "RTP over the RTSP connection, or over UDP")             \
    X(analysis_width, INT, VG_ANALYSIS_WIDTH_MIN, VG_ANALYSIS_WIDTH_MAX, VG_ANALYSIS_WIDTH_DEFAULT, "px", (0),     \
      "width of the luma plane rules read (height keeps the aspect); a narrower stream is used as it is. "         \
      "Previews always come from the full picture")                                                               \
    X(fps, NUMBER, 0, 1000, 0, "", (0),                                                                            \
      "the rule gets at most this many frames per second **of stream time** (0: every frame); the frames it "      \
      "does not get are neither converted nor copied")                                                            \
    X(decode, MODE, 0, 0, VG_DECODE_ALL, "", ("all", "nonref", "keyframes"),                                       \
      "what the decoder decodes: every frame; every frame but those no other frame refers to; key frames only "    \
      "(one per GOP)")                                                                                            \
    X(decoder_threads, INT, 1, 64, 1, "", (0),                                                                     \
      "threads of the camera's decoder. 1 is best with many cameras: they already run side by side, one "         \
      "thread each")                                                                                              \
    X(skip_loop_filter, BOOL, 0, 1, 0, "", (0),                                                                    \
      "skip H.264/HEVC's deblocking filter: less decode time, a slightly blockier picture. Applied only when "     \
      "the stream is wider than `analysis_width`, where downscaling hides it (else one info line says it was "    \
      "not applied)")                                                                                             \
    X(budget_ms, NUMBER, VG_BUDGET_MS_MIN, VG_BUDGET_MS_MAX, VG_BUDGET_MS_DEFAULT, "ms", (0),                      \
      "CPU time a rule callback may take; one that runs over is cut and its changes rolled back")                \
    X(stall_timeout_ms, INT, 1000, 600000, VG_STALL_TIMEOUT_MS_DEFAULT, "ms", (0),                                 \
      "no packet for this long is a failed stream: vigil reconnects (backoff 0.5 s doubling to 30 s, each "        \
      "pause up to 20 % shorter at random)")                                                                      \
    X(rtcp_wait_ms, INT, 0, 60000, 5000, "ms", (0),                                                                \
      "after connecting, frames wait this long at most for the first RTCP sender report, so even the first "      \
      "frames get the camera's time; then the local clock is used (one warning)")                                 \
    X(preview_wait_ms, INT, 1, 60000, VG_PREVIEW_WAIT_MS_DEFAULT, "ms", (0),                                       \
      "with `preview_url`: how long a frame's previews may wait, in all, for the preview stream to reach the "    \
      "frame's time ([previews from the main stream](#previews-from-the-main-stream))")                           \
    X(watch, BOOL, 0, 1, 1, "", (0),                                                                               \
      "hot-reload the rule when a `.lua` file in its directory changes, without touching the stream ([hot "      \
      "reload](lua-api.md#hot-reload)). One inotify instance per camera: past `fs.inotify.max_user_instances` "    \
      "(128 on Debian) a camera runs without it and says so")

#define VG_SETTING_MEMBER(key, kind, min, max, def, unit, choices, doc) VG_SETTING_CTYPE_##kind key;

/* What a camera runs with: one member per row, named by its key. Plain values (WORD strings are the table's
 * own), so `=` copies it. */
typedef struct vg_camera_settings {
    VG_CAMERA_SETTINGS(VG_SETTING_MEMBER)
} vg_camera_settings;

/* One row of the table as data, for loops over every setting. */
typedef struct vg_setting {
    const char *key;
    vg_setting_kind kind;
    size_t offset;             /* of the member in vg_camera_settings */
    double min, max;           /* WORD and MODE: 0 .. the number of choices - 1 */
    const char *unit;          /* "ms", "px" or "" */
    const char *const *choices; /* WORD and MODE: NULL-terminated; else NULL */
    const char *doc;
} vg_setting;

extern const vg_setting vg_settings[];
extern const int vg_settings_count;

/* Every setting at its default. */
vg_camera_settings vg_camera_settings_default(void);
/* The row of key, or NULL. */
const vg_setting *vg_setting_find(const char *key);

/* A setting's value as a number (WORD and MODE: the choice's position), and setting it (v must be in range). */
double vg_setting_get(const vg_camera_settings *s, const vg_setting *row);
void vg_setting_put(vg_camera_settings *s, const vg_setting *row, double v);
/* 1 when the two have the same value of every setting. */
int vg_camera_settings_same(const vg_camera_settings *a, const vg_camera_settings *b);

/* "tcp or udp", "all, nonref or keyframes": the choices as the error lines say them. */
const char *vg_setting_choices_text(const vg_setting *row, char *out, size_t outlen);
/* The position of text among the row's choices, or -1. */
int vg_setting_choice_index(const vg_setting *row, const char *text);

/* A command-line value (replay's flags): sets the row's member, or -1 with "'VAL' is not 16..7680" (the
 * config's range and choices) in err. */
int vg_setting_parse_text(vg_camera_settings *s, const vg_setting *row, const char *text, char *err, size_t errlen);

/* The markdown table of docs/config.md's "defaults and per-camera settings", one row per setting. */
void vg_settings_print_table(FILE *out);

#endif
