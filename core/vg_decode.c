/* vg_decode.c — a libavcodec decoder configured for analysis: thread count, frame skipping by mode, and an
 * optional loop-filter skip. Frames the script will not get are skipped before decoding, not after. */
#include "vg_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vg_decoder {
    AVCodecContext *ctx;
    vg_decode_mode mode;
    int draining_keyframe; /* keyframes mode: the decoder is being drained to give up its key frame */
};

static const char *mode_names[] = {"all", "nonref", "keyframes"};

int vg_decode_mode_parse(const char *name, vg_decode_mode *out) {
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, mode_names[i]) == 0) {
            *out = (vg_decode_mode)i;
            return 0;
        }
    }
    return -1;
}

const char *vg_decode_mode_name(vg_decode_mode mode) { return mode_names[mode]; }

vg_decoder *vg_decoder_new(const AVCodecParameters *par, AVRational time_base, const vg_decoder_options *o,
                           char *err, size_t errlen) {
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec) {
        snprintf(err, errlen, "no decoder for codec %s", avcodec_get_name(par->codec_id));
        return NULL;
    }
    vg_decoder *dec = calloc(1, sizeof *dec);
    dec->ctx = avcodec_alloc_context3(codec);
    if (!dec->ctx || avcodec_parameters_to_context(dec->ctx, par) < 0) {
        snprintf(err, errlen, "cannot configure decoder %s", codec->name);
        vg_decoder_free(dec);
        return NULL;
    }
    dec->ctx->pkt_timebase = time_base;
    dec->ctx->thread_count = o && o->threads > 0 ? o->threads : 1;
    dec->mode = o ? o->mode : VG_DECODE_ALL;
    if (dec->mode == VG_DECODE_NONREF) dec->ctx->skip_frame = AVDISCARD_NONREF;
    if (o && o->skip_loop_filter) dec->ctx->skip_loop_filter = AVDISCARD_ALL;
    int rc = avcodec_open2(dec->ctx, codec, NULL);
    if (rc < 0) {
        char text[AV_ERROR_MAX_STRING_SIZE];
        av_strerror(rc, text, sizeof text);
        snprintf(err, errlen, "cannot open decoder %s: %s", codec->name, text);
        vg_decoder_free(dec);
        return NULL;
    }
    return dec;
}

void vg_decoder_free(vg_decoder *dec) {
    if (!dec) return;
    avcodec_free_context(&dec->ctx);
    free(dec);
}

/* In keyframes mode each key frame is followed by a drain: H.264 decoders with a reorder delay would
 * otherwise hold the picture until the next packets, i.e. a whole GOP later (or forever, since the
 * packets between key frames never come). The drain is undone in vg_decoder_receive. */
int vg_decoder_send(vg_decoder *dec, const AVPacket *pkt) {
    int keyframes_only = dec->mode == VG_DECODE_KEYFRAMES;
    if (pkt && keyframes_only && !(pkt->flags & AV_PKT_FLAG_KEY)) return 0;
    dec->draining_keyframe = 0;
    int rc = avcodec_send_packet(dec->ctx, pkt);
    if (rc == 0 && pkt && keyframes_only && avcodec_send_packet(dec->ctx, NULL) == 0) dec->draining_keyframe = 1;
    return rc == AVERROR_EOF && pkt ? 0 : rc;
}

int vg_decoder_receive(vg_decoder *dec, AVFrame *frame) {
    int rc = avcodec_receive_frame(dec->ctx, frame);
    if (rc == AVERROR_EOF && dec->draining_keyframe) { /* the key frame is out: ready for the next one */
        avcodec_flush_buffers(dec->ctx);
        dec->draining_keyframe = 0;
        return AVERROR(EAGAIN);
    }
    return rc;
}

void vg_decoder_flush(vg_decoder *dec) { avcodec_flush_buffers(dec->ctx); }
