/* test_snowflake.c — ids: the reference vector, exact decimal text, monotonicity under a clock that steps
 * back, and more than 4096 ids in one millisecond. */
#include "check.h"
#include "vg_snowflake.h"

typedef struct fake_clock {
    int64_t now;
    int64_t *script; /* values returned in turn, then now */
    int steps, at;
} fake_clock;

static int64_t fake_now(void *ctx) {
    fake_clock *c = ctx;
    if (c->at < c->steps) c->now = c->script[c->at++];
    return c->now;
}

static void test_reference_vector(void) {
    uint64_t id = vg_snowflake_make(1699458327387LL, 1, 0);
    CHECK_U64(id, 1722279170848854016ULL);
    int64_t ms;
    unsigned machine, seq;
    vg_snowflake_split(1722279170848854016ULL, &ms, &machine, &seq);
    CHECK_INT(ms, 1699458327387LL);
    CHECK_INT(machine, 1);
    CHECK_INT(seq, 0);

    fake_clock clock = {.now = 1699458327387LL};
    vg_snowflake gen;
    CHECK_INT(vg_snowflake_init(&gen, 1, fake_now, &clock), 0);
    CHECK_U64(vg_snowflake_next(&gen), 1722279170848854016ULL);
    CHECK_U64(vg_snowflake_next(&gen), 1722279170848854017ULL);
    vg_snowflake_destroy(&gen);
    CHECK_INT(vg_snowflake_init(&gen, 1024, NULL, NULL), -1);
}

static void test_exact_text(void) {
    char buf[VG_ID_STRLEN];
    CHECK_STR(vg_id_format(1722279170848854017ULL, buf), "1722279170848854017");
    CHECK_STR(vg_id_format(UINT64_MAX, buf), "18446744073709551615");
    uint64_t parsed = 0;
    CHECK_INT(vg_id_parse("1722279170848854017", &parsed), 0);
    CHECK_U64(parsed, 1722279170848854017ULL);
    CHECK_INT(vg_id_parse("18446744073709551616", &parsed), -1);
    CHECK_INT(vg_id_parse("12a", &parsed), -1);
    CHECK_INT(vg_id_parse("", &parsed), -1);
    /* a double cannot hold it: the point of never going through one */
    CHECK((uint64_t)(double)1722279170848854017ULL != 1722279170848854017ULL);
}

static void test_backwards_clock(void) {
    int64_t steps[] = {2000000000000LL, 2000000000005LL, 1999999999000LL, 1999999999001LL, 2000000000005LL,
                       2000000000006LL};
    fake_clock clock = {.script = steps, .steps = 6};
    vg_snowflake gen;
    vg_snowflake_init(&gen, 7, fake_now, &clock);
    uint64_t prev = 0;
    int rising = 1;
    for (int i = 0; i < 6; i++) {
        uint64_t id = vg_snowflake_next(&gen);
        if (id <= prev) rising = 0;
        prev = id;
    }
    CHECK(rising);
    unsigned machine;
    vg_snowflake_split(prev, NULL, &machine, NULL);
    CHECK_INT(machine, 7);
    vg_snowflake_destroy(&gen);
}

static void test_many_in_one_ms(void) {
    /* 5000 ids while the clock stays at t, then moves to t+1 */
    int64_t steps[5001];
    for (int i = 0; i < 5000; i++) steps[i] = 1700000000000LL;
    steps[5000] = 1700000000001LL;
    fake_clock clock = {.script = steps, .steps = 5001, .now = 1700000000001LL};
    vg_snowflake gen;
    vg_snowflake_init(&gen, 3, fake_now, &clock);
    uint64_t prev = 0;
    int rising = 1;
    int64_t ms_at_4095 = 0, ms_at_4096 = 0;
    for (int i = 0; i < 5000; i++) {
        uint64_t id = vg_snowflake_next(&gen);
        if (id <= prev) rising = 0;
        prev = id;
        if (i == 4095) vg_snowflake_split(id, &ms_at_4095, NULL, NULL);
        if (i == 4096) vg_snowflake_split(id, &ms_at_4096, NULL, NULL);
    }
    CHECK(rising);
    CHECK_INT(ms_at_4095, 1700000000000LL);
    CHECK_INT(ms_at_4096, 1700000000001LL); /* waited for the next millisecond */
    vg_snowflake_destroy(&gen);

    /* with the real clock: 20000 ids, strictly rising */
    vg_snowflake_init(&gen, 0, NULL, NULL);
    prev = 0;
    rising = 1;
    for (int i = 0; i < 20000; i++) {
        uint64_t id = vg_snowflake_next(&gen);
        if (id <= prev) rising = 0;
        prev = id;
    }
    CHECK(rising);
    vg_snowflake_destroy(&gen);
}

int main(void) {
    test_reference_vector();
    test_exact_text();
    test_backwards_clock();
    test_many_in_one_ms();
    return CHECK_DONE();
}
