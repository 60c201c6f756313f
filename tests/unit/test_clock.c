/* test_clock.c — frame time: files (start + pts), live streams from PRFT side data with the parser's
 * one-packet lag, packets held before the first sender report, the local fallback, sender clock steps,
 * the skew warning, time that never goes backwards across reconnects, the unclamped wall time of a pts, and
 * FFmpeg's PRFT across an RTP timestamp wrap. */
#include <libavcodec/defs.h>

#include "check.h"
#include "vg_clock.h"
#include "vg_log.h"

#define TB ((AVRational){1, 90000})
#define FRAME 3600               /* 40 ms at 90 kHz */
#define WALL 1700000000000000LL  /* unix µs of pts 0 in these tests */

/* A packet with pts (AV_NOPTS_VALUE for none) and, when prft_us > 0, PRFT side data. */
static AVPacket *packet(int64_t pts, int64_t prft_us) {
    AVPacket *pkt = av_packet_alloc();
    pkt->pts = pts;
    if (prft_us > 0) {
        AVProducerReferenceTime *p =
            (AVProducerReferenceTime *)av_packet_new_side_data(pkt, AV_PKT_DATA_PRFT, sizeof *p);
        p->wallclock = prft_us;
        p->flags = 24;
    }
    return pkt;
}

static int observe(vg_clock *clock, int64_t pts, int64_t prft_us, int64_t now_us) {
    AVPacket *pkt = packet(pts, prft_us);
    int known = vg_clock_observe(clock, pkt, now_us);
    av_packet_free(&pkt);
    return known;
}

static void test_file(void) {
    vg_clock c;
    vg_clock_init_file(&c, 1000, (AVRational){1, 1000}, 500);
    CHECK_INT(c.source, VG_CLOCK_FILE);
    CHECK(!vg_clock_can_stamp(&c, AV_NOPTS_VALUE)); /* no time in the file: never a guess */
    CHECK(vg_clock_can_stamp(&c, 500));
    CHECK_INT(vg_clock_stamp(&c, 500), 1000);
    CHECK_INT(vg_clock_stamp(&c, 540), 1040);
    CHECK_INT(vg_clock_stamp(&c, 520), 1040); /* never backwards */
}

/* Parsed stream: packet k carries the PRFT of pts(k+1). Packets before the first report are held and
 * then stamped exactly, not one frame late. */
static void test_prft_lags_one_packet(void) {
    vg_clock c;
    vg_clock_init_live(&c, "cam");
    vg_clock_new_session(&c, TB, 1);
    int64_t now = WALL + 50000;
    CHECK_INT(observe(&c, AV_NOPTS_VALUE, 0, now), 0); /* the very first packet has no pts */
    CHECK_INT(observe(&c, FRAME, 0, now + 40000), 0);
    CHECK_INT(observe(&c, 2 * FRAME, WALL + 120000, now + 80000), 0); /* first report: time of 3 * FRAME */
    CHECK(!vg_clock_known(&c));
    CHECK_INT(observe(&c, 3 * FRAME, WALL + 160000, now + 120000), 1);
    CHECK_INT(c.source, VG_CLOCK_RTCP);
    /* the held packets, stamped now */
    CHECK_INT(vg_clock_stamp(&c, 0), WALL / 1000);
    CHECK_INT(vg_clock_stamp(&c, FRAME), WALL / 1000 + 40);
    CHECK_INT(vg_clock_stamp(&c, 2 * FRAME), WALL / 1000 + 80);
    CHECK_INT(vg_clock_stamp(&c, 3 * FRAME), WALL / 1000 + 120);
    /* a packet without PRFT breaks the pairing: the next one keeps the offset learnt */
    observe(&c, 4 * FRAME, 0, now + 160000);
    observe(&c, 5 * FRAME, WALL + 240000, now + 200000);
    CHECK_INT(vg_clock_stamp(&c, 5 * FRAME), WALL / 1000 + 200);
}

/* Without a parser a packet's PRFT is its own time. */
static void test_prft_own_packet(void) {
    vg_clock c;
    vg_clock_init_live(&c, "cam");
    vg_clock_new_session(&c, TB, 0);
    CHECK_INT(observe(&c, FRAME, 0, WALL), 0);
    CHECK_INT(observe(&c, 2 * FRAME, WALL + 80000, WALL), 1);
    CHECK_INT(vg_clock_stamp(&c, FRAME), WALL / 1000 + 40);
}

static void test_never_backwards_and_steps(void) {
    vg_clock c;
    vg_clock_init_live(&c, "cam");
    vg_clock_new_session(&c, TB, 1);
    observe(&c, 0, WALL + 40000, WALL);
    observe(&c, FRAME, WALL + 80000, WALL);
    CHECK_INT(vg_clock_stamp(&c, 2 * FRAME), WALL / 1000 + 80);
    CHECK_INT(vg_clock_stamp(&c, FRAME), WALL / 1000 + 80); /* reordered or late: held */
    /* the sender's clock steps back 5 s: frames hold at the last time */
    observe(&c, 2 * FRAME, WALL - 5000000 + 3 * 40000, WALL);
    observe(&c, 3 * FRAME, WALL - 5000000 + 4 * 40000, WALL);
    CHECK_INT(vg_clock_stamp(&c, 3 * FRAME), WALL / 1000 + 80);
    /* and forward 10 s: the jump is taken */
    observe(&c, 4 * FRAME, WALL + 10000000 + 5 * 40000, WALL);
    observe(&c, 5 * FRAME, WALL + 10000000 + 6 * 40000, WALL);
    CHECK_INT(vg_clock_stamp(&c, 5 * FRAME), WALL / 1000 + 10000 + 200);
}

/* B-frames come after a later frame in decode order: vg_clock_wall_ms gives each its own time, with no clamp and
 * no change to what vg_clock_stamp hands out next. */
static void test_wall_ms_unclamped(void) {
    vg_clock c;
    vg_clock_init_live(&c, "cam");
    vg_clock_new_session(&c, TB, 1);
    observe(&c, 0, WALL + 40000, WALL);
    observe(&c, FRAME, WALL + 80000, WALL);
    CHECK_INT(vg_clock_stamp(&c, 3 * FRAME), WALL / 1000 + 120);
    CHECK_INT(vg_clock_wall_ms(&c, FRAME), WALL / 1000 + 40);      /* earlier than the last stamp: its own time */
    CHECK_INT(vg_clock_wall_ms(&c, 2 * FRAME), WALL / 1000 + 80);
    CHECK_INT(vg_clock_stamp(&c, 4 * FRAME), WALL / 1000 + 160);   /* stamping goes on as before */
    CHECK_INT(vg_clock_stamp(&c, 2 * FRAME), WALL / 1000 + 160);   /* and still never backwards */
}

/* Debian's FFmpeg 5.1 puts a PRFT 2^32 ticks off (13.3 h at 90 kHz) on the packets between an RTP timestamp wrap
 * and the next sender report (seen in test_dual_stream: "sender clock stepped by -47721.859 s", then back): no
 * step of the sender's clock; the offset that matches this host's clock stays, also when the wrong one came first. */
static void test_rtp_wrap_is_no_step(void) {
    int64_t wrap_us = (1LL << 32) * 1000000 / 90000;
    vg_clock c;
    vg_clock_init_live(&c, "cam");
    vg_clock_new_session(&c, TB, 1);
    observe(&c, 0, WALL + 40000, WALL + 50000);
    observe(&c, FRAME, WALL + 80000, WALL + 90000);
    CHECK_INT(vg_clock_stamp(&c, 2 * FRAME), WALL / 1000 + 80);
    observe(&c, 2 * FRAME, WALL + 120000 - wrap_us, WALL + 130000); /* the wrapped difference: 13.3 h early */
    observe(&c, 3 * FRAME, WALL + 160000 - wrap_us, WALL + 170000);
    CHECK_INT(vg_clock_stamp(&c, 3 * FRAME), WALL / 1000 + 120);
    observe(&c, 4 * FRAME, WALL + 200000 + wrap_us, WALL + 210000); /* and the other way */
    observe(&c, 5 * FRAME, WALL + 240000 + wrap_us, WALL + 250000);
    CHECK_INT(vg_clock_stamp(&c, 5 * FRAME), WALL / 1000 + 200);
    CHECK_INT(vg_clock_wall_ms(&c, 6 * FRAME), WALL / 1000 + 240);
    /* a session whose first report is read in such a window: the next one puts it right */
    vg_clock_new_session(&c, TB, 1);
    observe(&c, 0, WALL + 1000000 - wrap_us, WALL + 1010000);
    observe(&c, FRAME, WALL + 1040000 - wrap_us, WALL + 1050000);
    observe(&c, 2 * FRAME, WALL + 1080000, WALL + 1090000);
    observe(&c, 3 * FRAME, WALL + 1120000, WALL + 1130000);
    CHECK_INT(vg_clock_wall_ms(&c, 3 * FRAME), WALL / 1000 + 1080); /* a packet's PRFT times the next pts */
}

static void test_local_fallback_then_reports(void) {
    vg_clock c;
    vg_clock_init_live(&c, "cam");
    vg_clock_new_session(&c, TB, 1);
    /* Parsed: a packet is read when the next frame begins to arrive, so its read time is the time of the
     * next packet's pts, like its PRFT. */
    int64_t arrival = WALL + 7000; /* when frame 11 began to arrive */
    observe(&c, AV_NOPTS_VALUE, 0, arrival - 40000);
    observe(&c, 8 * FRAME, 0, arrival); /* buffered while probing: read late */
    observe(&c, 9 * FRAME, 0, arrival);
    observe(&c, 10 * FRAME, 0, arrival);
    observe(&c, 11 * FRAME, 0, arrival + 40000);
    observe(&c, 12 * FRAME, 0, arrival + 82000); /* network jitter */
    CHECK(!vg_clock_known(&c));
    vg_clock_use_local(&c, 5000);
    CHECK(vg_clock_known(&c));
    CHECK_INT(c.source, VG_CLOCK_LOCAL);
    CHECK_INT(vg_clock_stamp(&c, 10 * FRAME), (arrival + 500) / 1000 - 40);
    CHECK_INT(vg_clock_stamp(&c, 11 * FRAME), (arrival + 500) / 1000);
    /* pts that run away from the local clock are re-anchored */
    observe(&c, 13 * FRAME + 90000 * 5, 0, arrival + 120000);
    CHECK_INT(vg_clock_stamp(&c, 13 * FRAME + 90000 * 5), (arrival + 82000 + 500) / 1000);
    /* a late sender report wins */
    observe(&c, 13 * FRAME, WALL + 9000000, arrival + 120000);
    observe(&c, 14 * FRAME, WALL + 9040000, arrival + 160000);
    CHECK_INT(c.source, VG_CLOCK_RTCP);
    CHECK_INT(vg_clock_stamp(&c, 14 * FRAME), WALL / 1000 + 9000);
}

/* A skew of a few seconds from packets read late is not the camera's clock. */
static void test_no_skew_from_late_reads(void) {
    vg_clock c;
    vg_clock_init_live(&c, "cam");
    vg_clock_new_session(&c, TB, 1);
    observe(&c, 0, WALL + 40000, WALL + 2800000);
    observe(&c, FRAME, WALL + 2800000, WALL + 2800500);
    observe(&c, 2 * FRAME, WALL + 5000000, WALL + 5000500);
    CHECK(c.skew_checked);
    CHECK(!c.warned_skew);
}

static void test_skew_and_sessions(void) {
    vg_clock c;
    vg_clock_init_live(&c, "cam");
    vg_clock_new_session(&c, TB, 1);
    int64_t local = WALL + 3600000000LL; /* the camera is an hour behind */
    observe(&c, 0, WALL + 40000 - 3000000, local); /* read late: looks 3 s older */
    observe(&c, FRAME, WALL + 80000, local + 40000);
    CHECK(!c.warned_skew); /* measured over 2 s */
    observe(&c, 2 * FRAME, WALL + 120000, local + 2100000);
    CHECK(c.warned_skew);
    CHECK_NEAR(c.skew_max_us / 1e6, -3600.0, 0.1);
    CHECK_INT(vg_clock_stamp(&c, FRAME), WALL / 1000 + 40);
    /* reconnect: pts restart at 0, time goes on, the last stamp is kept */
    vg_clock_new_session(&c, TB, 1);
    CHECK(!vg_clock_known(&c));
    CHECK(!vg_clock_can_stamp(&c, 0)); /* the new session's sender time is not known yet */
    observe(&c, 0, WALL + 2000000 + 40000, local);
    observe(&c, FRAME, WALL + 2000000 + 80000, local);
    CHECK_INT(vg_clock_stamp(&c, FRAME), WALL / 1000 + 2040);
    CHECK(c.warned_skew);
}

/* A session's first packet has no pts (FFmpeg's parser): it cannot be stamped, whatever the clock knows;
 * the packets after it can. */
static void test_missing_pts(void) {
    vg_clock c;
    vg_clock_init_live(&c, "cam");
    vg_clock_new_session(&c, TB, 1);
    observe(&c, AV_NOPTS_VALUE, WALL + 40000, WALL + 40000); /* parsed: the PRFT of the next packet's pts */
    CHECK(!vg_clock_can_stamp(&c, AV_NOPTS_VALUE));
    observe(&c, FRAME, WALL + 80000, WALL + 80000);
    CHECK(vg_clock_known(&c));
    CHECK(!vg_clock_can_stamp(&c, AV_NOPTS_VALUE));
    CHECK(vg_clock_can_stamp(&c, FRAME));
    CHECK_INT(vg_clock_stamp(&c, FRAME), WALL / 1000 + 40);
}

int main(void) {
    vg_log_set_level(VG_LOG_ERROR);
    test_missing_pts();
    test_file();
    test_prft_lags_one_packet();
    test_prft_own_packet();
    test_never_backwards_and_steps();
    test_wall_ms_unclamped();
    test_rtp_wrap_is_no_step();
    test_local_fallback_then_reports();
    test_no_skew_from_late_reads();
    test_skew_and_sessions();
    return CHECK_DONE();
}
