/* fuzz_config.c — libFuzzer harness of `vigil run`'s config parser (vg_config_parse_text): the input is the
 * file's bytes, given by length. Relative paths resolve against examples/single-camera, so the examples'
 * "../../scripts/..." exist and a valid config gets past its script checks. Promises checked: a config comes
 * back exactly when no problem was found, every problem is one non-empty line, the params handed to a rule
 * pass the params check (vg_config_check_params) and the zones are a JSON object, and a config equals itself
 * (no fixed setting "changed", every camera the same as its copy). */
#include "fuzz.h"

#include <cjson/cJSON.h>

#include "vg_config.h"

#define FUZZ_CONFIG_DIR VG_SOURCE_DIR "/examples/single-camera"

static void check_params_text(const char *text, const char *what, int index) {
    char err[256];
    FUZZ_CHECK(vg_config_check_params(text, strlen(text), err, sizeof err) == 0, "%s of entry %d: %s: %s", what,
               index, err, text);
}

static void check_zones_text(const char *text, int index) {
    cJSON *json = cJSON_Parse(text);
    FUZZ_CHECK(cJSON_IsObject(json), "zones of camera %d are not a JSON object: %s", index, text);
    cJSON_Delete(json);
}

static void check_config(const vg_config *c) {
    for (int i = 0; i < c->ncameras; i++) {
        check_params_text(c->cameras[i].params_json, "cameras[].params", i);
        check_zones_text(c->cameras[i].zones_json, i);
    }
    for (int i = 0; i < c->nstream_scripts; i++)
        check_params_text(c->stream_scripts[i].params_json, "node.stream_scripts[].params", i);
    vg_config_errors changed = {0};
    FUZZ_CHECK(vg_config_fixed_changes(c, c, &changed) == 0, "a config differs from itself: %s",
               changed.count ? changed.lines[0] : "");
    vg_config_errors_free(&changed);
    for (int i = 0; i < c->ncameras; i++) {
        vg_config_camera copy;
        vg_config_camera_copy(&copy, &c->cameras[i]);
        FUZZ_CHECK(vg_config_camera_same(&copy, &c->cameras[i]), "cameras[%d] differs from its copy", i);
        vg_config_camera_clear(&copy);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vg_config_errors errors = {0}; /* data holds exactly the file's bytes: a read past them is caught */
    vg_config *c = vg_config_parse_text((const char *)data, size, FUZZ_CONFIG_DIR, &errors);
    FUZZ_CHECK(!c == (errors.count > 0), "config %s with %d problems", c ? "given" : "refused", errors.count);
    for (int i = 0; i < errors.count; i++) FUZZ_CHECK(errors.lines[i] && errors.lines[i][0], "empty problem line");
    if (c) check_config(c);
    vg_config_free(c);
    vg_config_errors_free(&errors);
    return 0;
}
