/* fuzz_params.c — libFuzzer harness of a rule's params (`--params JSON`, a camera's "params"): the input is
 * the JSON text, given by length to the params check (vg_config_check_params); what it accepts is loaded as
 * vigil.params of tests/fuzz/params_rule.lua by the real script host (vg_script_load: JSON to Lua tables, the
 * sandbox, vigil.check_params). Promises checked: a refusal says why; params accepted always load. */
#include "fuzz.h"

#include "vg_config.h"
#include "vg_episode.h"
#include "vg_log.h"
#include "vg_script.h"
#include "vg_snowflake.h"

#define FUZZ_PARAMS_RULE VG_FUZZ_DIR "/params_rule.lua"

static void no_emit(void *ctx, const vg_version *v) { (void)ctx, (void)v; }

/* The rule loads with these params, as a camera would start it. */
static void check_loads(const char *params) {
    static vg_snowflake ids;
    static int ready;
    if (!ready) {
        vg_log_set_level(VG_LOG_ERROR); /* the rule's warnings about unknown keys, once per input */
        vg_snowflake_init(&ids, 0, NULL, NULL);
        ready = 1;
    }
    vg_episode_book *book = vg_book_new("fuzz", &ids, no_emit, NULL);
    vg_script_config config = {.camera = "fuzz", .path = FUZZ_PARAMS_RULE, .params_json = params};
    char err[1024] = "";
    vg_script *script = vg_script_load(&config, book, err, sizeof err);
    FUZZ_CHECK(script != NULL, "params the check accepted were refused by the rule host: %s", err);
    vg_script_free(script);
    vg_book_free(book);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512] = ""; /* data holds exactly the text's bytes: a read past them is caught */
    if (vg_config_check_params((const char *)data, size, err, sizeof err) < 0) {
        FUZZ_CHECK(*err, "params refused without a reason");
        return 0;
    }
    char *params = fuzz_text(data, size);
    FUZZ_CHECK(strlen(params) == size, "params with a NUL byte were accepted");
    check_loads(params);
    free(params);
    return 0;
}
