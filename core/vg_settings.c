/* vg_settings.c — the camera settings table of vg_settings.h as data: defaults, choices, getting, setting
 * and comparing a setting by its row, parsing a command-line value, and printing the docs table. */
#include "vg_settings.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define VG_UNPAREN(...) __VA_ARGS__

_Static_assert(sizeof(vg_decode_mode) == sizeof(int), "a MODE setting is held as an int");

#define VG_SETTING_CHOICES(key, kind, min, max, def, unit, choices, doc) \
    static const char *const choices_##key[] = {VG_UNPAREN choices, NULL};
VG_CAMERA_SETTINGS(VG_SETTING_CHOICES)

#define VG_SETTING_HAS_CHOICES_INT 0
#define VG_SETTING_HAS_CHOICES_NUMBER 0
#define VG_SETTING_HAS_CHOICES_BOOL 0
#define VG_SETTING_HAS_CHOICES_WORD 1
#define VG_SETTING_HAS_CHOICES_MODE 1
#define VG_SETTING_NCHOICES(key) (sizeof choices_##key / sizeof *choices_##key - 2)

#define VG_SETTING_ROW(key, kind, min, max, def, unit, choices, doc)                                              \
    {#key, VG_SETTING_##kind, offsetof(vg_camera_settings, key), min,                                            \
     VG_SETTING_HAS_CHOICES_##kind ? (double)VG_SETTING_NCHOICES(key) : (max), unit,                              \
     VG_SETTING_HAS_CHOICES_##kind ? choices_##key : NULL, doc},
const vg_setting vg_settings[] = {VG_CAMERA_SETTINGS(VG_SETTING_ROW)};
const int vg_settings_count = (int)(sizeof vg_settings / sizeof *vg_settings);

#define VG_SETTING_DEFAULT(key, kind, min, max, def, unit, choices, doc) .key = def,
vg_camera_settings vg_camera_settings_default(void) {
    return (vg_camera_settings){VG_CAMERA_SETTINGS(VG_SETTING_DEFAULT)};
}

const vg_setting *vg_setting_find(const char *key) {
    for (int i = 0; i < vg_settings_count; i++)
        if (strcmp(vg_settings[i].key, key) == 0) return &vg_settings[i];
    return NULL;
}

int vg_setting_choice_index(const vg_setting *row, const char *text) {
    for (int i = 0; row->choices && row->choices[i]; i++)
        if (strcmp(row->choices[i], text) == 0) return i;
    return -1;
}

static void *member(vg_camera_settings *s, const vg_setting *row) { return (char *)s + row->offset; }

double vg_setting_get(const vg_camera_settings *s, const vg_setting *row) {
    const void *m = (const char *)s + row->offset;
    switch (row->kind) {
    case VG_SETTING_NUMBER: return *(const double *)m;
    case VG_SETTING_WORD: return vg_setting_choice_index(row, *(const char *const *)m);
    default: return *(const int *)m; /* INT, BOOL, MODE */
    }
}

void vg_setting_put(vg_camera_settings *s, const vg_setting *row, double v) {
    void *m = member(s, row);
    switch (row->kind) {
    case VG_SETTING_NUMBER: *(double *)m = v; break;
    case VG_SETTING_WORD: *(const char **)m = row->choices[(int)v]; break;
    default: *(int *)m = (int)v; break;
    }
}

int vg_camera_settings_same(const vg_camera_settings *a, const vg_camera_settings *b) {
    for (int i = 0; i < vg_settings_count; i++)
        if (vg_setting_get(a, &vg_settings[i]) != vg_setting_get(b, &vg_settings[i])) return 0;
    return 1;
}

const char *vg_setting_choices_text(const vg_setting *row, char *out, size_t outlen) {
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; row->choices && row->choices[i] && n < outlen; i++) {
        const char *sep = i == 0 ? "" : row->choices[i + 1] ? ", " : " or ";
        n += (size_t)snprintf(out + n, outlen - n, "%s%s", sep, row->choices[i]);
    }
    return out;
}

static int parse_number(const vg_setting *row, const char *text, double *out) {
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !(v >= row->min && v <= row->max)) return -1;
    if (row->kind == VG_SETTING_INT && v != floor(v)) return -1;
    *out = v;
    return 0;
}

int vg_setting_parse_text(vg_camera_settings *s, const vg_setting *row, const char *text, char *err, size_t errlen) {
    double v;
    char choices[128];
    if (row->choices) {
        int i = vg_setting_choice_index(row, text);
        if (i < 0) {
            snprintf(err, errlen, "'%s' is not %s", text, vg_setting_choices_text(row, choices, sizeof choices));
            return -1;
        }
        v = i;
    } else if (row->kind == VG_SETTING_BOOL) {
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0) {
            snprintf(err, errlen, "'%s' is not true or false", text);
            return -1;
        }
        v = strcmp(text, "true") == 0;
    } else if (parse_number(row, text, &v) < 0) {
        snprintf(err, errlen, "'%s' is not %g..%g", text, row->min, row->max);
        return -1;
    }
    vg_setting_put(s, row, v);
    return 0;
}

/* ---------- the docs table ---------- */

static void print_type(FILE *out, const vg_setting *row) {
    switch (row->kind) {
    case VG_SETTING_INT: fprintf(out, "integer %g..%g", row->min, row->max); break;
    case VG_SETTING_NUMBER: fprintf(out, "number %g..%g", row->min, row->max); break;
    case VG_SETTING_BOOL: fprintf(out, "boolean"); break;
    default:
        for (int i = 0; row->choices[i]; i++)
            fprintf(out, "%s`\"%s\"`", i == 0 ? "" : row->choices[i + 1] ? ", " : " or ", row->choices[i]);
        break;
    }
}

static void print_default(FILE *out, const vg_setting *row, const vg_camera_settings *d) {
    double v = vg_setting_get(d, row);
    if (row->choices) fprintf(out, "`\"%s\"`", row->choices[(int)v]);
    else if (row->kind == VG_SETTING_BOOL) fprintf(out, "%s", v ? "true" : "false");
    else fprintf(out, "%g%s%s", v, *row->unit ? " " : "", row->unit);
}

void vg_settings_print_table(FILE *out) {
    vg_camera_settings d = vg_camera_settings_default();
    fprintf(out, "| key | type | default | |\n|---|---|---|---|\n");
    for (int i = 0; i < vg_settings_count; i++) {
        fprintf(out, "| `%s` | ", vg_settings[i].key);
        print_type(out, &vg_settings[i]);
        fprintf(out, " | ");
        print_default(out, &vg_settings[i], &d);
        fprintf(out, " | %s |\n", vg_settings[i].doc);
    }
}
