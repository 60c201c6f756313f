/* vg_snowflake.c — the id generator. One generator per process, shared by all cameras, so ids made on
 * one host are unique; uniqueness across hosts comes from a distinct machine id per host. */
#include "vg_snowflake.h"

#include <inttypes.h>
#include <stdio.h>

static int64_t system_clock(void *ctx) {
    (void)ctx;
    return vg_realtime_ms();
}

int vg_snowflake_init(vg_snowflake *gen, unsigned machine_id, vg_clock_fn clock, void *clock_ctx) {
    if (machine_id > VG_SNOWFLAKE_MAX_MACHINE) return -1;
    pthread_mutex_init(&gen->lock, NULL);
    gen->machine_id = machine_id;
    gen->last_ms = 0;
    gen->sequence = 0;
    gen->now_ms = clock ? clock : system_clock;
    gen->clock_ctx = clock_ctx;
    return 0;
}

void vg_snowflake_destroy(vg_snowflake *gen) { pthread_mutex_destroy(&gen->lock); }

/* The sequence ran out in last_ms: wait for the clock to move on. If the clock is behind last_ms
 * (it stepped back) waiting could take long, so borrow the next millisecond instead. */
static int64_t next_millisecond(vg_snowflake *gen) {
    for (;;) {
        int64_t now = gen->now_ms(gen->clock_ctx);
        if (now > gen->last_ms) return now;
        if (now < gen->last_ms) return gen->last_ms + 1;
        struct timespec pause = {0, 100000};
        nanosleep(&pause, NULL);
    }
}

uint64_t vg_snowflake_next(vg_snowflake *gen) {
    pthread_mutex_lock(&gen->lock);
    int64_t now = gen->now_ms(gen->clock_ctx);
    if (now > gen->last_ms) {
        gen->last_ms = now;
        gen->sequence = 0;
    } else if (gen->sequence < VG_SNOWFLAKE_MAX_SEQUENCE) {
        gen->sequence++; /* same ms, or the clock stepped back: keep counting in last_ms */
    } else {
        gen->last_ms = next_millisecond(gen);
        gen->sequence = 0;
    }
    uint64_t id = vg_snowflake_make(gen->last_ms, gen->machine_id, gen->sequence);
    pthread_mutex_unlock(&gen->lock);
    return id;
}

uint64_t vg_snowflake_make(int64_t unix_ms, unsigned machine_id, unsigned sequence) {
    uint64_t since_epoch = (uint64_t)(unix_ms - VG_SNOWFLAKE_EPOCH_MS) & ((1ULL << 42) - 1);
    return since_epoch << 22 | (uint64_t)(machine_id & 0x3FF) << 12 | (sequence & 0xFFF);
}

void vg_snowflake_split(uint64_t id, int64_t *unix_ms, unsigned *machine_id, unsigned *sequence) {
    if (unix_ms) *unix_ms = (int64_t)(id >> 22) + VG_SNOWFLAKE_EPOCH_MS;
    if (machine_id) *machine_id = (unsigned)(id >> 12) & 0x3FF;
    if (sequence) *sequence = (unsigned)id & 0xFFF;
}

char *vg_id_format(uint64_t id, char buf[VG_ID_STRLEN]) {
    snprintf(buf, VG_ID_STRLEN, "%" PRIu64, id);
    return buf;
}

int vg_id_parse(const char *text, uint64_t *out) {
    uint64_t value = 0;
    int digits = 0;
    for (const char *p = text; *p; p++, digits++) {
        if (*p < '0' || *p > '9' || digits >= 20) return -1;
        unsigned d = (unsigned)(*p - '0');
        if (value > (UINT64_MAX - d) / 10) return -1;
        value = value * 10 + d;
    }
    if (digits == 0) return -1;
    *out = value;
    return 0;
}
