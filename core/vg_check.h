/* vg_check.h — `vigil check`: compile a rule and run it against synthetic frames, no camera needed. */
#ifndef VG_CHECK_H
#define VG_CHECK_H

typedef struct vg_check_result {
    int frames;
    long errors, budget_cuts, episodes, versions;
    double mean_ms, max_ms;
} vg_check_result;

/* Loads the rule (syntax and on_start errors go to err) and feeds it `frames` synthetic 640x360 frames at
 * 25 fps in which a white square crosses a grey picture, analysed at analysis_width, each callback with
 * budget_ms of CPU time. Returns 0 when it loaded and no callback failed. */
int vg_check_rule(const char *path, const char *params_json, int frames, int analysis_width, double budget_ms,
                  vg_check_result *out, char *err, size_t errlen);

#endif
