/* vg_preview_source.c — the preview stream (interface and promises in vg_preview_source.h). Owns two threads and
 * what they share under one mutex: the reader (connection, reconnect backoff, the stream's vg_clock, the packets
 * kept since the previous key frame) and the decode thread (the decoder, positioned in a GOP between requests,
 * and the two last pictures it gave, so a request between them needs no decoding). The camera thread posts
 * one request at a time and sleeps on the condition variable until it is answered or its deadline passes. */
#include "vg_preview_source.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavcodec/avcodec.h>

#include "vg_clock.h"
#include "vg_decode.h"
#include "vg_ingest.h"
#include "vg_log.h"
#include "vg_time.h"

#define LIVE_READ_US 5000 /* a read that waits this long came from the network: what FFmpeg read while probing the
                             stream (seconds old, handed out in a burst) is behind; until then the session is not
                             live and the stream is not judged lagging on it */

/* A packet kept, in decode order. seq numbers every packet of the source's life, so a position survives the
 * queue's front being dropped. */
typedef struct kept {
    AVPacket *pkt;
    uint64_t seq;
    int key;
} kept;

/* The camera's request; answered by the decode thread. */
typedef struct request {
    uint64_t id;
    int pending;              /* posted, not yet answered or given up */
    int done;                 /* answered: result, shown set; picture referenced */
    int64_t ts, deadline_ms;
    AVFrame *picture;         /* the caller's */
    vg_preview_result result;
    int64_t shown;
} request;

/* The decode thread's own state (no lock). */
typedef struct decoding {
    vg_decoder *dec;
    uint64_t session;         /* the session dec was made for */
    uint64_t start_seq;       /* the key frame decoding last (re)started at */
    uint64_t next_seq;        /* the next packet to feed */
    AVFrame *prev, *last;     /* the last two good pictures out, display order */
    int64_t prev_ms, last_ms; /* their capture times (INT64_MIN: none) */
    long pictures;            /* good pictures out since the restart: with 2 or fewer, none came before prev */
    int said_no_decoder;
    AVFrame *scratch;
} decoding;

struct vg_preview_source {
    char *url, *transport;
    char who[160], url_masked[1024];
    int stall_timeout_ms, rtcp_wait_ms;
    pthread_t reader, decoder;
    int reader_started, decoder_started;
    atomic_int stop;
    uint64_t rng; /* backoff jitter */
    pthread_mutex_t lock;
    pthread_cond_t changed;   /* a packet, a session up or down, a request, an answer, the stop */
    /* under lock */
    vg_clock clock;
    int connected;
    int live;                 /* this session's reads wait for the network: past the probe's burst */
    uint64_t session;         /* numbers sessions from 1 */
    int64_t opened_ms;        /* monotonic: when connecting began for this session */
    AVCodecParameters *par;   /* this session's, for the decode thread */
    AVRational time_base;
    kept *q;
    int nq, cap;
    uint64_t next_seq;
    int waiting_for_key;      /* nothing is kept until a key frame */
    int64_t newest_pts;       /* largest pts of the session (AV_NOPTS_VALUE: none) */
    int said_timed, said_no_report, said_long_gop;
    int refusing;             /* vg_preview_source_refuse: the camera stops, nothing waits any more */
    request req;
    vg_preview_source_stats stats;
    decoding d;               /* the decode thread's */
};

static int stopping(vg_preview_source *ps) { return atomic_load(&ps->stop); }

/* ---------- waiting ---------- */

/* Under lock: sleeps until something changes or deadline_ms; 0 when the deadline passed. */
static int wait_until(vg_preview_source *ps, int64_t deadline_ms) {
    struct timespec until = vg_deadline_at_monotonic_ms(deadline_ms);
    return pthread_cond_timedwait(&ps->changed, &ps->lock, &until) != ETIMEDOUT;
}

static void wake(vg_preview_source *ps) { pthread_cond_broadcast(&ps->changed); }

/* ---------- the packets kept ---------- */

static void drop_front(vg_preview_source *ps, int n) {
    if (n <= 0) return;
    for (int i = 0; i < n; i++) {
        ps->stats.kept_bytes -= ps->q[i].pkt->size;
        av_packet_free(&ps->q[i].pkt);
    }
    memmove(ps->q, ps->q + n, sizeof *ps->q * (size_t)(ps->nq - n));
    ps->nq -= n;
    ps->stats.kept_packets = ps->nq;
}

static void clear_kept(vg_preview_source *ps) {
    drop_front(ps, ps->nq);
    ps->waiting_for_key = 1;
    ps->newest_pts = AV_NOPTS_VALUE;
}

static int next_key_after(const vg_preview_source *ps, int from) {
    for (int i = from + 1; i < ps->nq; i++)
        if (ps->q[i].key) return i;
    return -1;
}

/* A new key frame: only the GOP before it stays. */
static void keep_one_gop(vg_preview_source *ps) {
    int last_key = -1;
    for (int i = ps->nq - 1; i >= 0 && last_key < 0; i--)
        if (ps->q[i].key) last_key = i;
    if (last_key > 0) drop_front(ps, last_key);
}

/* The stream time kept: from the oldest GOP's key frame (q[0], always one; a session's first may have no pts, then
 * the packet after it) to the newest packet (newest_pts, the largest pts since the queue was last emptied). */
static int64_t kept_span_ms(const vg_preview_source *ps) {
    if (ps->newest_pts == AV_NOPTS_VALUE) return 0;
    int64_t lo = AV_NOPTS_VALUE;
    for (int i = 0; i < ps->nq && lo == AV_NOPTS_VALUE; i++) lo = ps->q[i].pkt->pts;
    return lo == AV_NOPTS_VALUE ? 0 : av_rescale_q(ps->newest_pts - lo, ps->time_base, (AVRational){1, 1000});
}

/* Over a bound the oldest GOP goes; a GOP alone over it goes whole and nothing is kept until the next key. */
static void enforce_bounds(vg_preview_source *ps) {
    while (ps->nq && (ps->stats.kept_bytes > VG_PREVIEW_KEEP_BYTES || kept_span_ms(ps) > VG_PREVIEW_KEEP_MS)) {
        int next = next_key_after(ps, 0);
        ps->stats.dropped_packets += next > 0 ? next : ps->nq;
        if (next > 0) {
            drop_front(ps, next);
            continue;
        }
        if (!ps->said_long_gop)
            vg_warn(ps->who, "a GOP is longer than what is kept (%lld MiB, %d s): dropped until the next key frame; "
                    "previews of it come from the analysed stream", VG_PREVIEW_KEEP_BYTES >> 20,
                    VG_PREVIEW_KEEP_MS / 1000);
        ps->said_long_gop = 1;
        clear_kept(ps);
    }
}

static void append(vg_preview_source *ps, AVPacket *pkt, int key) {
    if (ps->nq == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 256;
        ps->q = realloc(ps->q, sizeof *ps->q * (size_t)ps->cap);
    }
    kept *k = &ps->q[ps->nq++];
    k->pkt = av_packet_alloc();
    av_packet_move_ref(k->pkt, pkt);
    k->seq = ps->next_seq++;
    k->key = key;
    ps->stats.kept_bytes += k->pkt->size;
    ps->stats.kept_packets = ps->nq;
}

static const kept *find_seq(const vg_preview_source *ps, uint64_t seq) {
    if (!ps->nq || seq < ps->q[0].seq || seq >= ps->q[0].seq + (uint64_t)ps->nq) return NULL;
    return &ps->q[seq - ps->q[0].seq];
}

static int has_sender_time(const vg_preview_source *ps) {
    return ps->clock.source == VG_CLOCK_RTCP && vg_clock_known(&ps->clock);
}

/* ---------- the reader thread ---------- */

static void note_clock(vg_preview_source *ps, int known_before) {
    if (!known_before && has_sender_time(ps) && !ps->said_timed) {
        vg_info(ps->who, "frame time from RTCP sender reports, %.2f s after connecting",
                (double)(vg_monotonic_ms() - ps->opened_ms) / 1000.0);
        ps->said_timed = 1;
    }
    if (!has_sender_time(ps) && !ps->said_no_report && vg_monotonic_ms() - ps->opened_ms >= ps->rtcp_wait_ms) {
        vg_warn(ps->who, "no RTCP sender report within rtcp_wait_ms (%.1f s): its pictures cannot be matched to "
                "frames, previews come from the analysed stream until one comes", ps->rtcp_wait_ms / 1000.0);
        ps->said_no_report = 1;
    }
}

/* A packet read: wait_us is how long its read waited (monotonic), read_at_us when it came (unix µs). */
static void on_packet(vg_preview_source *ps, AVPacket *pkt, int64_t wait_us, int64_t read_at_us) {
    pthread_mutex_lock(&ps->lock);
    ps->stats.packets++;
    if (wait_us >= LIVE_READ_US) ps->live = 1;
    int known_before = has_sender_time(ps);
    vg_clock_observe(&ps->clock, pkt, read_at_us);
    note_clock(ps, known_before);
    int key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
    if (ps->waiting_for_key && !key) {
        ps->stats.dropped_packets++;
    } else {
        ps->waiting_for_key = 0;
        if (key) keep_one_gop(ps);
        if (pkt->pts != AV_NOPTS_VALUE && (ps->newest_pts == AV_NOPTS_VALUE || pkt->pts > ps->newest_pts))
            ps->newest_pts = pkt->pts;
        append(ps, pkt, key);
        enforce_bounds(ps);
    }
    if (ps->req.pending) wake(ps); /* only a request waits for packets: an idle decode thread sleeps on */
    pthread_mutex_unlock(&ps->lock);
}

static void begin_session(vg_preview_source *ps, const vg_ingest *in, int64_t opened_ms) {
    pthread_mutex_lock(&ps->lock);
    if (!ps->par) ps->par = avcodec_parameters_alloc();
    avcodec_parameters_copy(ps->par, vg_ingest_codecpar(in));
    ps->time_base = vg_ingest_time_base(in);
    ps->session++;
    ps->opened_ms = opened_ms;
    ps->said_timed = 0;
    clear_kept(ps);
    vg_clock_new_session(&ps->clock, ps->time_base, vg_ingest_is_parsed(in));
    ps->connected = ps->stats.connected = 1;
    ps->live = 0;
    ps->stats.connects++;
    wake(ps);
    pthread_mutex_unlock(&ps->lock);
    char up[1200];
    vg_ingest_describe_stream(in, ps->url_masked, ps->transport, up, sizeof up);
    vg_info(ps->who, "stream up: %s", up);
}

static void end_session(vg_preview_source *ps) {
    pthread_mutex_lock(&ps->lock);
    ps->connected = ps->stats.connected = 0;
    ps->stats.disconnects++;
    clear_kept(ps);
    wake(ps);
    pthread_mutex_unlock(&ps->lock);
}

typedef enum { NOT_CONNECTED, NO_PACKETS, DELIVERED } session_result;

static session_result run_session(vg_preview_source *ps, char *reason, size_t len) {
    vg_ingest_options o = {.transport = ps->transport, .stall_timeout_ms = ps->stall_timeout_ms, .stop = &ps->stop};
    int64_t opened_ms = vg_monotonic_ms();
    vg_ingest *in = vg_ingest_open(ps->url, &o, reason, len);
    if (!in) return NOT_CONNECTED;
    begin_session(ps, in, opened_ms);
    AVPacket *pkt = av_packet_alloc();
    long packets = 0;
    int rc;
    struct timespec read_from = vg_now(CLOCK_MONOTONIC);
    while ((rc = vg_ingest_read(in, pkt)) >= 0) {
        int64_t wait_us = vg_elapsed_ns(CLOCK_MONOTONIC, &read_from) / 1000;
        packets++;
        on_packet(ps, pkt, wait_us, vg_clock_realtime_us()); /* its arrival, not when the lock is had */
        av_packet_unref(pkt);
        read_from = vg_now(CLOCK_MONOTONIC);
    }
    av_packet_free(&pkt);
    vg_ingest_describe_loss(in, rc, reason, len);
    end_session(ps);
    vg_ingest_close(in);
    return packets ? DELIVERED : NO_PACKETS;
}

static void *reader_main(void *arg) {
    vg_preview_source *ps = arg;
    int failures = 0; /* sessions in a row that delivered no packet */
    char reason[512], masked[600];
    while (!stopping(ps)) {
        session_result r = run_session(ps, reason, sizeof reason);
        if (stopping(ps)) break;
        failures = r == DELIVERED ? 0 : failures + 1;
        int64_t delay = vg_backoff_next(&ps->rng, failures); /* the camera's own schedule */
        vg_ingest_say_retry(ps->who, ps->url_masked, r != NOT_CONNECTED, vg_mask_urls_in(reason, masked, sizeof masked),
                            delay);
        pthread_mutex_lock(&ps->lock);
        int64_t until = vg_monotonic_ms() + delay;
        while (!stopping(ps) && vg_monotonic_ms() < until) wait_until(ps, until);
        pthread_mutex_unlock(&ps->lock);
    }
    return NULL;
}

/* ---------- the decode thread ---------- */

static void answer(vg_preview_source *ps, vg_preview_result result, const AVFrame *picture, int64_t shown) {
    if (result == VG_PREVIEW_OK && av_frame_ref(ps->req.picture, picture) < 0) result = VG_PREVIEW_NOT_KEPT;
    ps->req.result = result;
    ps->req.shown = shown;
    ps->req.pending = 0;
    ps->req.done = 1;
    wake(ps);
}

/* Under lock: why the stream cannot give ts's picture within left_ms, known without decoding; 0 (OK) when it
 * may. Lagging: its newest packet trails ts by more than left_ms (*behind_ms: by how much); no time left at all:
 * the frame is late. */
static vg_preview_result unavailable(const vg_preview_source *ps, int64_t ts, int64_t left_ms, int64_t *behind_ms) {
    if (!ps->connected || !ps->live) return VG_PREVIEW_DOWN;
    if (!has_sender_time(ps) || ps->newest_pts == AV_NOPTS_VALUE) return VG_PREVIEW_NO_SENDER_TIME;
    if (left_ms <= 0) return VG_PREVIEW_FRAME_LATE;
    int64_t behind = ts - vg_clock_wall_ms(&ps->clock, ps->newest_pts);
    if (behind_ms) *behind_ms = behind;
    return behind > left_ms ? VG_PREVIEW_LAGGING : VG_PREVIEW_OK;
}

/* The key frame of ts's GOP: the last one kept whose time is at most ts (one without pts, a session's first,
 * counts as earliest). NULL when every key frame kept is after ts. */
static const kept *gop_of(const vg_preview_source *ps, int64_t ts) {
    const kept *found = NULL;
    for (int i = 0; i < ps->nq; i++) {
        const kept *k = &ps->q[i];
        if (!k->key) continue;
        if (k->pkt->pts != AV_NOPTS_VALUE && vg_clock_wall_ms(&ps->clock, k->pkt->pts) > ts + VG_PREVIEW_MATCH_MS)
            break;
        found = k;
    }
    return found;
}

static int64_t distance(int64_t a, int64_t b) { return a > b ? a - b : b - a; }

static void forget_pictures(decoding *d) {
    av_frame_unref(d->prev);
    av_frame_unref(d->last);
    d->prev_ms = d->last_ms = INT64_MIN;
    d->pictures = 0;
}

static void restart_at(decoding *d, const kept *key) {
    vg_decoder_flush(d->dec);
    d->start_seq = d->next_seq = key->seq;
    forget_pictures(d);
}

/* Under lock: a decoder for this session, placed so that feeding on from next_seq reaches ts: it restarts at
 * ts's key frame (one of those kept) unless it is already inside that GOP (having decoded on into it) and has
 * not passed ts. Inside it, its next packet is one kept or one yet to come (the GOP from key on is kept). */
static int position(vg_preview_source *ps, const kept *key, int64_t ts) {
    decoding *d = &ps->d;
    if (d->dec && d->session != ps->session) {
        vg_decoder_free(d->dec);
        d->dec = NULL;
    }
    if (!d->dec) {
        char err[256];
        vg_decoder_options o = {.mode = VG_DECODE_ALL, .threads = 1};
        if (!(d->dec = vg_decoder_new(ps->par, ps->time_base, &o, err, sizeof err))) {
            if (!d->said_no_decoder) vg_warn(ps->who, "%s: previews come from the analysed stream", err);
            d->said_no_decoder = 1;
            return -1;
        }
        d->session = ps->session;
        restart_at(d, key);
        return 0;
    }
    int before_gop = d->start_seq > key->seq || d->next_seq <= key->seq;
    int past_ts = d->pictures > 2 && d->prev_ms > ts + VG_PREVIEW_MATCH_MS; /* an earlier picture is forgotten */
    if (before_gop || past_ts) restart_at(d, key);
    return 0;
}

/* Among the two last pictures, the one for ts once the decoder has reached it: the one within the match, else the
 * nearer of the two around ts. 1 with *found and *shown; 0 while decoding must go on; -1 when there is no picture
 * of ts to be had: the first picture kept is already after it (with nothing before ts, the nearest is no picture
 * of that instant), or the two around it are further from it than VG_PREVIEW_NEAREST_MAX_MS. */
static int picture_for(const decoding *d, int64_t ts, const AVFrame **found, int64_t *shown) {
    if (d->last_ms == INT64_MIN) return 0;
    int have_prev = d->prev_ms != INT64_MIN;
    const AVFrame *pick = NULL;
    if (distance(d->last_ms, ts) <= VG_PREVIEW_MATCH_MS) pick = d->last;
    else if (have_prev && distance(d->prev_ms, ts) <= VG_PREVIEW_MATCH_MS) pick = d->prev;
    else if (d->last_ms < ts) return 0;
    else if (!have_prev || d->prev_ms > ts) return -1;
    else pick = distance(d->prev_ms, ts) < distance(d->last_ms, ts) ? d->prev : d->last;
    *found = pick;
    *shown = pick == d->prev ? d->prev_ms : d->last_ms;
    return distance(*shown, ts) <= VG_PREVIEW_NEAREST_MAX_MS ? 1 : -1;
}

/* Without the lock: feeds one packet and keeps each clean, timed picture it gives as the last one. Returns the
 * pictures decoded. */
static long feed(decoding *d, AVPacket *pkt, const vg_clock *clock, double *seconds) {
    struct timespec t0 = vg_now(CLOCK_MONOTONIC);
    long decoded = 0;
    int rc = vg_decoder_send(d->dec, pkt);
    while (rc >= 0 || rc == AVERROR_INVALIDDATA) {
        rc = vg_decoder_receive(d->dec, d->scratch);
        if (rc < 0) break;
        decoded++;
        int broken = d->scratch->decode_error_flags || (d->scratch->flags & AV_FRAME_FLAG_CORRUPT);
        if (broken || d->scratch->pts == AV_NOPTS_VALUE) {
            av_frame_unref(d->scratch);
            continue;
        }
        av_frame_unref(d->prev);
        av_frame_move_ref(d->prev, d->last);
        d->prev_ms = d->last_ms;
        av_frame_move_ref(d->last, d->scratch);
        d->last_ms = vg_clock_wall_ms(clock, d->last->pts);
        d->pictures++;
    }
    *seconds += (double)vg_elapsed_ns(CLOCK_MONOTONIC, &t0) / 1e9;
    return decoded;
}

/* Under lock: answers the posted request, decoding as far as it must; gives up at its deadline, when it is
 * cancelled, or when the stream cannot give the picture. */
static void serve(vg_preview_source *ps) {
    uint64_t id = ps->req.id;
    int64_t ts = ps->req.ts, deadline = ps->req.deadline_ms;
    decoding *d = &ps->d;
    while (ps->req.pending && ps->req.id == id && !stopping(ps)) {
        vg_preview_result why = unavailable(ps, ts, INT64_MAX, NULL); /* lag was judged when it was asked */
        const kept *key = why ? NULL : gop_of(ps, ts);
        if (!why && (!key || position(ps, key, ts) < 0)) why = VG_PREVIEW_NOT_KEPT;
        int64_t shown = 0;
        const AVFrame *found = NULL;
        int have = why ? 0 : picture_for(d, ts, &found, &shown);
        if (have < 0) why = VG_PREVIEW_NOT_KEPT;
        if (!why && !found && vg_monotonic_ms() >= deadline) why = VG_PREVIEW_TIMED_OUT;
        if (why || found) {
            answer(ps, why, why ? NULL : found, shown);
            return;
        }
        const kept *next = find_seq(ps, d->next_seq);
        if (!next) {
            wait_until(ps, deadline); /* for the next packet */
            continue;
        }
        AVPacket *pkt = av_packet_clone(next->pkt);
        if (!pkt) {
            answer(ps, VG_PREVIEW_NOT_KEPT, NULL, 0); /* out of memory: a NULL packet would drain the decoder */
            return;
        }
        vg_clock clock = ps->clock;
        d->next_seq++;
        double seconds = 0;
        pthread_mutex_unlock(&ps->lock);
        long decoded = feed(d, pkt, &clock, &seconds);
        av_packet_free(&pkt);
        pthread_mutex_lock(&ps->lock);
        ps->stats.decoded += decoded;
        ps->stats.decode_seconds += seconds;
    }
}

static void *decoder_main(void *arg) {
    vg_preview_source *ps = arg;
    pthread_mutex_lock(&ps->lock);
    while (!stopping(ps)) {
        if (ps->req.pending) serve(ps);
        else pthread_cond_wait(&ps->changed, &ps->lock);
    }
    pthread_mutex_unlock(&ps->lock);
    return NULL;
}

/* ---------- the camera's side ---------- */

vg_preview_result vg_preview_source_picture(vg_preview_source *ps, int64_t ts, int64_t deadline_ms, AVFrame *picture,
                                            int64_t *shown_ts, int64_t *behind_ms) {
    pthread_mutex_lock(&ps->lock);
    *behind_ms = 0;
    vg_preview_result why = ps->refusing ? VG_PREVIEW_STOPPING
                                         : unavailable(ps, ts, deadline_ms - vg_monotonic_ms(), behind_ms);
    if (why) {
        pthread_mutex_unlock(&ps->lock);
        return why;
    }
    ps->req = (request){.id = ps->req.id + 1, .pending = 1, .ts = ts, .deadline_ms = deadline_ms, .picture = picture};
    wake(ps);
    while (!ps->req.done && !ps->refusing && vg_monotonic_ms() < deadline_ms) wait_until(ps, deadline_ms);
    vg_preview_result result = ps->req.done    ? ps->req.result
                               : ps->refusing ? VG_PREVIEW_STOPPING
                                              : VG_PREVIEW_TIMED_OUT;
    *shown_ts = ps->req.shown;
    ps->req.pending = ps->req.done = 0; /* a request given up is not answered later */
    ps->req.picture = NULL;
    pthread_mutex_unlock(&ps->lock);
    return result;
}

void vg_preview_source_refuse(vg_preview_source *ps) {
    if (!ps) return;
    pthread_mutex_lock(&ps->lock);
    ps->refusing = 1;
    wake(ps);
    pthread_mutex_unlock(&ps->lock);
}

void vg_preview_source_get_stats(vg_preview_source *ps, vg_preview_source_stats *out) {
    pthread_mutex_lock(&ps->lock);
    *out = ps->stats;
    pthread_mutex_unlock(&ps->lock);
}

/* ---------- life ---------- */

static void init_sync(vg_preview_source *ps) {
    vg_cond_init_monotonic(&ps->changed);
    pthread_mutex_init(&ps->lock, NULL);
    atomic_init(&ps->stop, 0);
}

vg_preview_source *vg_preview_source_start(const vg_preview_source_config *c, char *err, size_t errlen) {
    vg_preview_source *ps = calloc(1, sizeof *ps);
    ps->url = strdup(c->url);
    ps->transport = c->transport ? strdup(c->transport) : NULL;
    snprintf(ps->who, sizeof ps->who, "%s/preview", c->media);
    vg_mask_url(c->url, ps->url_masked, sizeof ps->url_masked);
    ps->stall_timeout_ms = c->stall_timeout_ms;
    ps->rtcp_wait_ms = c->rtcp_wait_ms;
    ps->rng = vg_random_seed((uint64_t)vg_monotonic_ms() ^ (uint64_t)(uintptr_t)ps);
    ps->waiting_for_key = 1;
    ps->newest_pts = AV_NOPTS_VALUE;
    ps->d = (decoding){.prev = av_frame_alloc(), .last = av_frame_alloc(), .scratch = av_frame_alloc(),
                       .prev_ms = INT64_MIN, .last_ms = INT64_MIN};
    vg_clock_init_live(&ps->clock, ps->who);
    ps->clock.warned_skew = 1; /* the camera's own stream judges its clock; here a delay would pass for skew */
    init_sync(ps);
    int rc = pthread_create(&ps->reader, NULL, reader_main, ps);
    ps->reader_started = rc == 0;
    if (!rc) rc = pthread_create(&ps->decoder, NULL, decoder_main, ps);
    ps->decoder_started = ps->reader_started && rc == 0;
    if (rc) {
        snprintf(err, errlen, "%s: cannot start a thread: %s", ps->who, strerror(rc));
        vg_preview_source_stop(ps);
        return NULL;
    }
    return ps;
}

void vg_preview_source_stop(vg_preview_source *ps) {
    if (!ps) return;
    pthread_mutex_lock(&ps->lock);
    atomic_store(&ps->stop, 1);
    wake(ps);
    pthread_mutex_unlock(&ps->lock);
    if (ps->reader_started) pthread_join(ps->reader, NULL);
    if (ps->decoder_started) pthread_join(ps->decoder, NULL);
    drop_front(ps, ps->nq);
    free(ps->q);
    vg_decoder_free(ps->d.dec);
    av_frame_free(&ps->d.prev);
    av_frame_free(&ps->d.last);
    av_frame_free(&ps->d.scratch);
    avcodec_parameters_free(&ps->par);
    pthread_cond_destroy(&ps->changed);
    pthread_mutex_destroy(&ps->lock);
    free(ps->url);
    free(ps->transport);
    free(ps);
}
