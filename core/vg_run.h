/* vg_run.h — `vigil run CONFIG.json`: every camera of a config on its own thread, episodes to Central
 * and/or a JSON-lines file, until SIGTERM/SIGINT (or a duration, for tests). */
#ifndef VG_RUN_H
#define VG_RUN_H

typedef struct vg_run_options {
    const char *config_path;
    double duration_s;   /* stop after this long; 0 = until a signal */
    int log_level_given; /* the command line set the log level: node.log_level does not override it */
} vg_run_options;

/* Returns the process exit status: 0 after a clean stop, 1 when it could not start, 2 on a bad config
 * (every problem printed, one line each). */
int vg_run(const vg_run_options *o);

#endif
