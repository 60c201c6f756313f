/* test_settings.c — the camera settings table (vg_settings.h) drives everything a setting needs: every row,
 * whatever it is, parses in "defaults" and in a camera with its range checked, is copied, is compared, and is
 * in docs/config.md's table, which must be the one the table generates. The same holds for the node, central
 * and output tables of docs/config.md, generated from VG_CONFIG_HOST_SETTINGS (vg_config.h). A new row is
 * covered with no edit here. `test_settings --update-docs` rewrites those tables in docs/config.md. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "vg_config.h"
#include "vg_settings.h"

#define DOCS_PATH VG_SOURCE_DIR "/docs/config.md"
#define TABLE_BEGIN "<!-- settings table: generated from core/vg_settings.h (build/tests/test_settings --update-docs) -->\n"
#define TABLE_END "<!-- end of settings table -->\n"
#define HOST_TABLE_BEGIN                                                                                          \
    "<!-- %s table: generated from core/vg_config.h (build/tests/test_settings --update-docs) -->\n"
#define HOST_TABLE_END "<!-- end of %s table -->\n"
#define REGENERATE "  build/tests/test_settings --update-docs\n"

/* The generated tables of docs/config.md: "settings" from vg_settings.h, the others (docs tables of
 * VG_CONFIG_HOST_SETTINGS) from vg_config.h. */
static const char *const DOCS_TABLES[] = {"node", "central", "output", "settings", "analytics-node", NULL};

static char dir[64], script[128];

static char *generated_table(const char *name) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (strcmp(name, "settings") == 0) vg_settings_print_table(f);
    else vg_config_print_table(f, name);
    fclose(f);
    return text;
}

static char *read_docs(void) {
    FILE *f = fopen(DOCS_PATH, "r");
    if (!f) return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strdup(buf);
}

/* The span between the markers of table name in docs, or NULL. */
static char *table_in_docs(const char *docs, const char *name, const char **begin, const char **end) {
    char open[200], close[100];
    int settings = strcmp(name, "settings") == 0;
    snprintf(open, sizeof open, settings ? TABLE_BEGIN : HOST_TABLE_BEGIN, name);
    snprintf(close, sizeof close, settings ? TABLE_END : HOST_TABLE_END, name);
    *begin = docs ? strstr(docs, open) : NULL;
    *end = *begin ? strstr(*begin, close) : NULL;
    if (!*end) return NULL;
    *begin += strlen(open);
    return strndup(*begin, (size_t)(*end - *begin));
}

/* docs with table name's span replaced by what the table gives; NULL without its markers. */
static char *with_table_updated(char *docs, const char *name) {
    const char *begin, *end;
    char *old = table_in_docs(docs, name, &begin, &end), *table = generated_table(name), *out = NULL;
    if (old) {
        size_t len = (size_t)(begin - docs) + strlen(table) + strlen(end) + 1;
        out = malloc(len);
        snprintf(out, len, "%.*s%s%s", (int)(begin - docs), docs, table, end);
    }
    if (!old) fprintf(stderr, "%s: no %s table markers\n", DOCS_PATH, name);
    else printf("%s: %s table %s\n", DOCS_PATH, name, strcmp(old, table) ? "rewritten" : "already current");
    free(docs), free(old), free(table);
    return out;
}

static int update_docs(void) {
    char *docs = read_docs();
    for (int i = 0; docs && DOCS_TABLES[i]; i++) docs = with_table_updated(docs, DOCS_TABLES[i]);
    if (!docs) return 1;
    FILE *f = fopen(DOCS_PATH, "w");
    fputs(docs, f);
    fclose(f);
    free(docs);
    return 0;
}

/* Each generated table of docs/config.md is the one its source gives. */
static void test_docs_tables_are_generated(void) {
    char *docs = read_docs();
    for (int i = 0; DOCS_TABLES[i]; i++) {
        const char *begin, *end;
        char *in_docs = table_in_docs(docs, DOCS_TABLES[i], &begin, &end), *table = generated_table(DOCS_TABLES[i]);
        CHECK(in_docs != NULL);
        if (in_docs && strcmp(in_docs, table) != 0) {
            fprintf(stderr, "docs/config.md's %s table is not the one %s gives; regenerate it:\n" REGENERATE
                    "expected:\n%s", DOCS_TABLES[i],
                    strcmp(DOCS_TABLES[i], "settings") == 0 ? "core/vg_settings.h" : "core/vg_config.h", table);
            CHECK(!"docs/config.md table current");
        }
        free(in_docs), free(table);
    }
    free(docs);
}

/* Every setting has its row in its table. */
static void check_row_in_docs(const char *table, const char *key) {
    const char *begin, *end;
    char *docs = read_docs(), *in_docs = table_in_docs(docs, table, &begin, &end), cell[128];
    snprintf(cell, sizeof cell, "| `%s` |", key);
    CHECK(in_docs && strstr(in_docs, cell));
    free(docs), free(in_docs);
}

#define CHECK_HOST_ROW_IN_DOCS(section, key, kind, member, min, max, def, apply, table, ...) \
    check_row_in_docs(table, key);

static void test_every_row_in_docs(void) {
    for (int i = 0; i < vg_settings_count; i++) check_row_in_docs("settings", vg_settings[i].key);
    VG_CONFIG_HOST_SETTINGS(CHECK_HOST_ROW_IN_DOCS)
}

/* Two values of the row besides its default d: a != d, b != a (b may be d when there are only two). */
static void pick_values(const vg_setting *row, double d, double *a, double *b) {
    double candidates[] = {row->min, row->max, floor((row->min + row->max) / 2)};
    *a = *b = NAN;
    for (int i = 0; i < 3; i++) {
        if (isnan(*a) && candidates[i] != d) *a = candidates[i];
        else if (!isnan(*a) && isnan(*b) && candidates[i] != *a) *b = candidates[i];
    }
}

static void json_value(const vg_setting *row, double v, char *out, size_t len) {
    if (row->choices) snprintf(out, len, "\"%s\"", row->choices[(int)v]);
    else if (row->kind == VG_SETTING_BOOL) snprintf(out, len, "%s", v ? "true" : "false");
    else snprintf(out, len, "%.17g", v);
}

static vg_config *parse_with(const vg_setting *row, const char *in_defaults, const char *in_camera,
                             vg_config_errors *e) {
    char text[2048];
    snprintf(text, sizeof text,
             "{\"node\": {\"machine_id\": 1}, \"defaults\": {\"%s\": %s},\n"
             " \"cameras\": [{\"media\": \"a\", \"url\": \"rtsp://h/a\", \"script\": \"%s\", \"%s\": %s},\n"
             "             {\"media\": \"b\", \"url\": \"rtsp://h/b\", \"script\": \"%s\"}]}",
             row->key, in_defaults, script, row->key, in_camera, script);
    return vg_config_parse(text, dir, e);
}

/* defaults gives a, camera 0 overrides it with b, camera 1 inherits a; a copy keeps b; same() sees a change. */
static void check_row_parses_copies_compares(const vg_setting *row) {
    vg_camera_settings def = vg_camera_settings_default();
    double a, b;
    pick_values(row, vg_setting_get(&def, row), &a, &b);
    char ja[64], jb[64];
    json_value(row, a, ja, sizeof ja), json_value(row, b, jb, sizeof jb);
    vg_config_errors e = {0};
    vg_config *c = parse_with(row, ja, jb, &e);
    for (int i = 0; i < e.count; i++) fprintf(stderr, "%s: %s\n", row->key, e.lines[i]);
    CHECK(c != NULL);
    if (!c) return vg_config_errors_free(&e);
    CHECK(vg_setting_get(&c->defaults.settings, row) == a);
    CHECK(vg_setting_get(&c->cameras[0].settings, row) == b);
    CHECK(vg_setting_get(&c->cameras[1].settings, row) == a);
    vg_config_camera copy;
    vg_config_camera_copy(&copy, &c->cameras[0]);
    CHECK(vg_setting_get(&copy.settings, row) == b);
    CHECK(vg_config_camera_same(&copy, &c->cameras[0]));
    vg_setting_put(&copy.settings, row, a);
    CHECK(!vg_config_camera_same(&copy, &c->cameras[0]));
    vg_config_camera_clear(&copy);
    vg_config_free(c);
}

/* A value out of range (or not a choice, or of the wrong type) is one line naming the setting's path. */
static void check_row_refuses(const vg_setting *row) {
    char bad[64], line[160], choices[128];
    if (row->choices) {
        snprintf(bad, sizeof bad, "\"no-such-choice\"");
        snprintf(line, sizeof line, "cameras[0].%s: \"no-such-choice\" is not %s", row->key,
                 vg_setting_choices_text(row, choices, sizeof choices));
    } else if (row->kind == VG_SETTING_BOOL) {
        snprintf(bad, sizeof bad, "1");
        snprintf(line, sizeof line, "cameras[0].%s: must be true or false, not a number", row->key);
    } else {
        snprintf(bad, sizeof bad, "%.17g", row->max + 1);
        snprintf(line, sizeof line, "cameras[0].%s: %g is not %g..%g", row->key, row->max + 1, row->min, row->max);
    }
    char ok[64];
    vg_camera_settings def = vg_camera_settings_default();
    json_value(row, vg_setting_get(&def, row), ok, sizeof ok);
    vg_config_errors e = {0};
    CHECK(parse_with(row, ok, bad, &e) == NULL);
    CHECK(e.count == 1);
    if (e.count) CHECK_STR(e.lines[0], line);
    vg_config_errors_free(&e);
}

static void test_every_setting(void) {
    for (int i = 0; i < vg_settings_count; i++) {
        check_row_parses_copies_compares(&vg_settings[i]);
        check_row_refuses(&vg_settings[i]);
    }
}

/* decode is held as vg_decode_mode: its choices are that enum's names, in its order. */
static void test_decode_choices_are_the_modes(void) {
    const vg_setting *row = vg_setting_find("decode");
    CHECK(row && row->kind == VG_SETTING_MODE);
    for (int i = 0; row && row->choices[i]; i++) CHECK_STR(vg_decode_mode_name((vg_decode_mode)i), row->choices[i]);
}

/* replay's flags take the config's ranges and choices. */
static void test_command_line_values(void) {
    vg_camera_settings s = vg_camera_settings_default();
    char err[200];
    CHECK(vg_setting_parse_text(&s, vg_setting_find("analysis_width"), "8", err, sizeof err) < 0);
    CHECK_STR(err, "'8' is not 16..7680");
    CHECK(vg_setting_parse_text(&s, vg_setting_find("budget_ms"), "x", err, sizeof err) < 0);
    CHECK_STR(err, "'x' is not 1..60000");
    CHECK(vg_setting_parse_text(&s, vg_setting_find("decode"), "some", err, sizeof err) < 0);
    CHECK_STR(err, "'some' is not all, nonref or keyframes");
    CHECK(vg_setting_parse_text(&s, vg_setting_find("decode"), "keyframes", err, sizeof err) == 0);
    CHECK_INT(s.decode, VG_DECODE_KEYFRAMES);
    CHECK(vg_setting_parse_text(&s, vg_setting_find("budget_ms"), "12.5", err, sizeof err) == 0);
    CHECK_NEAR(s.budget_ms, 12.5, 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--update-docs") == 0) return update_docs();
    snprintf(dir, sizeof dir, "/tmp/vigil-test-settings-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    snprintf(script, sizeof script, "%s/rule.lua", dir);
    FILE *f = fopen(script, "w");
    fputs("function on_frame() end\n", f);
    fclose(f);
    test_docs_tables_are_generated();
    test_every_row_in_docs();
    test_every_setting();
    test_decode_choices_are_the_modes();
    test_command_line_values();
    unlink(script);
    rmdir(dir);
    return CHECK_DONE();
}
