/* vg_decode.h — compressed packets in, decoded pictures out (libavcodec), with the camera's decode mode. */
#ifndef VG_DECODE_H
#define VG_DECODE_H
#include <stddef.h>

#include <libavcodec/avcodec.h>

typedef enum {
    VG_DECODE_ALL,       /* every frame */
    VG_DECODE_NONREF,    /* skip frames no other frame refers to */
    VG_DECODE_KEYFRAMES, /* key frames only */
} vg_decode_mode;

typedef struct vg_decoder_options {
    vg_decode_mode mode;
    int threads;          /* 0 = 1 thread: cameras scale by running side by side */
    int skip_loop_filter; /* allowed when analysis is downscaled */
} vg_decoder_options;

typedef struct vg_decoder vg_decoder;

int vg_decode_mode_parse(const char *name, vg_decode_mode *out);
const char *vg_decode_mode_name(vg_decode_mode mode);

vg_decoder *vg_decoder_new(const AVCodecParameters *par, AVRational time_base, const vg_decoder_options *o,
                           char *err, size_t errlen);
void vg_decoder_free(vg_decoder *dec);
/* pkt NULL drains. Returns 0 or an AVERROR. Packets the mode skips are dropped before decoding. */
int vg_decoder_send(vg_decoder *dec, const AVPacket *pkt);
/* 0 with a frame, AVERROR(EAGAIN) when it needs input, AVERROR_EOF when drained. */
int vg_decoder_receive(vg_decoder *dec, AVFrame *frame);
/* Forget buffered state (after a reconnect). */
void vg_decoder_flush(vg_decoder *dec);

#endif
