/* vg_snowflake.h — 64-bit episode ids: 42-bit ms since the Twitter epoch | 10-bit machine | 12-bit sequence. */
#ifndef VG_SNOWFLAKE_H
#define VG_SNOWFLAKE_H
#include <pthread.h>
#include <stdint.h>

#include "vg_time.h" /* vg_clock_fn */

#define VG_SNOWFLAKE_EPOCH_MS 1288834974657LL
#define VG_SNOWFLAKE_MAX_MACHINE 1023
#define VG_SNOWFLAKE_MAX_SEQUENCE 4095
#define VG_ID_STRLEN 21 /* 20 decimal digits + NUL */

typedef struct vg_snowflake {
    pthread_mutex_t lock;
    unsigned machine_id;
    int64_t last_ms;
    unsigned sequence;
    vg_clock_fn now_ms;
    void *clock_ctx;
} vg_snowflake;

/* clock NULL = the system's realtime clock. Returns -1 when machine_id is over 1023. */
int vg_snowflake_init(vg_snowflake *gen, unsigned machine_id, vg_clock_fn clock, void *clock_ctx);
void vg_snowflake_destroy(vg_snowflake *gen);
/* Thread-safe; never returns an id smaller than or equal to a previous one, even if the clock steps back. */
uint64_t vg_snowflake_next(vg_snowflake *gen);

uint64_t vg_snowflake_make(int64_t unix_ms, unsigned machine_id, unsigned sequence);
void vg_snowflake_split(uint64_t id, int64_t *unix_ms, unsigned *machine_id, unsigned *sequence);
/* Exact decimal text of an id (never through a double). Returns buf. */
char *vg_id_format(uint64_t id, char buf[VG_ID_STRLEN]);
/* Parses an exact decimal id; -1 on anything but 1..20 digits that fit in 64 bits. */
int vg_id_parse(const char *text, uint64_t *out);

#endif
