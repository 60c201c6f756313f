#!/usr/bin/python3
"""Live H.264 RTSP test camera for vigil tests (GStreamer rtsp-server via gi).

Owns: tests/servers/rtsp_server.py -- nothing else.

Run with Debian's system python (/usr/bin/python3); the pyenv python on PATH
has no `gi`.  Example:

    /usr/bin/python3 tests/servers/rtsp_server.py --port 8554 \
        --mount /cam1 --mount /cam2 --box 5,15

prints one line per mount once the server listens:

    READY rtsp://127.0.0.1:8554/cam1
    READY rtsp://127.0.0.1:8554/cam2

A mount may give its own picture size, frame rate and, with --stamp, an output
delay: --mount /main:1280x720 --mount /sub:320x180 --mount /late:1280x720:delay=3
(PATH[:WxH][:fps=N][:delay=S]; defaults: --width x --height, --fps, no delay).

What it guarantees (tests rely on these):
  * every mount serves a LIVE H.264 stream (x264enc tune=zerolatency, no
    B-frames unless --bframes N (then main profile, N B-frames between P-frames),
    IDR every 2 s; openh264enc if x264enc is missing), RTP payload
    type 96, SPS/PPS in-band with every IDR (see README: config-interval=-1 confuses FFmpeg);
  * media are shared: all clients of one mount get the same frames/SSRC;
  * the pipeline clock is the REALTIME system clock, and the RTCP sender
    reports carry NTP = CLOCK_REALTIME of this process.  Under libfaketime
    (FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '-1h' ...) SRs are therefore
    one hour behind the real clock;
  * RTCP sender reports are sent every --rtcp-interval seconds (default 1 s,
    RFC 3550 randomisation gives 0.5x..1.5x; first one ~0.5 s after PLAY);
  * --box A,L draws a white rectangle (1/8 of frame width and height) that is
    visible only while A <= t < L, t = capture wall-clock time minus this
    process' start time (printed as "EPOCH <unix seconds>" on the line after
    the READY lines; both faked by libfaketime alike), moving left->right at constant
    speed across the frame, vertically centred.  With --box-clock media, t is the
    media's running time instead: seconds since the mount's media started, i.e.
    since its first client connected, so a client connected by then sees the
    whole passage however long the server or the machine took to get there.
    The background is black unless --pattern says otherwise, so the box is
    the only motion (beware: "smpte" has an animated noise patch;
    smpte75/smpte100/bar/gradient/colors are static).  Without --box the default pattern is the moving "ball";
  * --file clip serves a media file in an endless loop (decoded once by a
    producer pipeline, re-encoded live per mount, so it behaves like a camera).
  * --stamp draws on every frame its capture wall-clock time: unix ms
    (rounded) mod 2^32 as 32 white(1)/black(0) blocks, most significant bit
    first, across the top band (blocks width/32 wide, band max(8, width/32)
    tall), and the complement of those bits in the band below it (a reader
    can tell a clean decode).  Black elsewhere.  Every frame is made and
    sent, late if the machine is busy, never skipped (see StampSource);
    --gap-after-first N skips N frames after the first on purpose.  The capture time is the
    buffer's pts + base_time on the realtime clock, i.e. exactly what the RTCP
    sender reports map the frame's RTP timestamp to, so a client that stamps
    frames from the SRs can check itself frame by frame (one frame late =
    +1000/fps ms).  Stamped frames fall on one grid of the realtime clock
    (capture times are whole multiples of 1/fps since the Unix epoch), so
    every mount of every --stamp server shows the same capture times, each
    at its own size: a picture of one mount and the picture of another with
    the same capture time show the same instant;
  * delay=S on a --stamp mount pushes each frame S seconds after its capture
    time (its RTP time and the SRs still say the capture time): a stream that
    lags by S seconds.  SIGUSR1 drops every mount's delay to 0: the frames
    held back go out at once and the stream is live again;
  * SRs map RTP time to capture time (rtpsession rtcp-sync-send-time=false):
    with the default (send time) the mapping moved by half a frame as soon
    as a UDP client joined a shared media that also had a TCP client.

Exits 0 on SIGTERM/SIGINT.
"""

import argparse
import os
import re
import signal
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)

# One REALTIME clock for every pipeline in this process: buffer timestamps,
# running time and the NTP in RTCP SRs all derive from CLOCK_REALTIME.
CLOCK = Gst.SystemClock.obtain()
CLOCK.set_property("clock-type", Gst.ClockType.REALTIME)

FILE_CHANNEL = "vigil-file"  # intervideosink/src channel for --file


def die_with_parent(force=False):
    """SIGTERM us when our parent dies, if the parent is faketime (or if forced).

    faketime forks the program and does not forward signals: SIGTERM to the
    faketime PID would leave this server running as an orphan.
    """
    ppid = os.getppid()
    try:
        with open("/proc/%d/comm" % ppid) as f:
            parent = f.read().strip()
    except OSError:
        parent = ""
    if not (force or parent == "faketime"):
        return
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != ppid:  # parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def log(msg):
    print("rtsp_server: " + msg, file=sys.stderr, flush=True)


def encoder_desc(fps, which="auto", bframes=0):
    """H.264 encoder: IDR every 2 s, low latency; with bframes, that many B-frames between P-frames
    (decode order differs from display order, as from many cameras; x264 only)."""
    gop = max(1, int(fps * 2))
    if bframes and not Gst.ElementFactory.find("x264enc"):
        raise SystemExit("rtsp_server: --bframes needs x264enc")
    if bframes:
        return ("x264enc speed-preset=ultrafast bframes=%d b-adapt=false b-pyramid=false rc-lookahead=0 "
                "key-int-max=%d bitrate=1500" % (bframes, gop))
    if which in ("auto", "x264") and Gst.ElementFactory.find("x264enc"):
        return ("x264enc tune=zerolatency speed-preset=ultrafast bframes=0 "
                "key-int-max=%d bitrate=1500" % gop)
    if which in ("auto", "openh264") and Gst.ElementFactory.find("openh264enc"):
        return "openh264enc gop-size=%d complexity=low bitrate=1500000" % gop
    raise SystemExit("rtsp_server: H.264 encoder %s not available" % which)


class Settings:
    """Parsed CLI, shared by all mounts."""

    def __init__(self, a):
        self.width, self.height, self.fps = a.width, a.height, a.fps
        self.box = None
        if a.box:
            appear, leave = (float(x) for x in a.box.split(","))
            if leave <= appear:
                raise SystemExit("rtsp_server: --box needs appear_s < leave_s")
            self.box = (appear, leave)
        self.box_clock = a.box_clock
        self.pattern = a.pattern or ("black" if self.box else "ball")
        self.file = a.file
        self.stamp = a.stamp
        self.gap_after_first = a.gap_after_first
        if self.gap_after_first and not self.stamp:
            raise SystemExit("rtsp_server: --gap-after-first needs --stamp")
        if self.stamp and (self.file or self.box or a.pattern):
            raise SystemExit("rtsp_server: --stamp makes its own frames: no --file, --box or --pattern")
        self.encoder = a.encoder
        self.bframes = a.bframes
        self.rtcp_interval_ns = int(a.rtcp_interval * Gst.SECOND)
        self.epoch = time.time()  # faked under libfaketime, like CLOCK

    def launch(self, mount):
        w, h, fps = mount.width, mount.height, mount.fps
        caps = "video/x-raw,width=%d,height=%d,framerate=%d/1" % (w, h, fps)
        if self.file:
            src = "intervideosrc channel=%s timeout=%d" % (FILE_CHANNEL, 5 * Gst.SECOND)
        else:
            src = "videotestsrc is-live=true pattern=%s" % self.pattern
        tail = ("videoconvert ! video/x-raw,format=I420 ! %s ! "
                "video/x-h264,stream-format=byte-stream%s ! "
                "rtph264pay name=pay0 pt=96 config-interval=1"
                # main profile: left to negotiate, rtph264pay settles on constrained-baseline (no B-frames)
                % (encoder_desc(fps, self.encoder, self.bframes), ",profile=main" if self.bframes else ""))
        if self.stamp:
            return ("( appsrc name=stampsrc is-live=true format=time do-timestamp=false "
                    "caps=video/x-raw,format=I420,%s ! %s )" % (caps[len("video/x-raw,"):], tail))
        if not self.box:
            return "( %s ! videoconvert ! videoscale ! videorate ! %s ! %s )" % (src, caps, tail)
        bw, bh = max(8, w // 8), max(8, h // 8)
        return ("( compositor name=mix background=black ! %s ! %s "
                "%s ! videoconvert ! videoscale ! videorate ! %s ! mix.sink_0 "
                "videotestsrc is-live=true pattern=solid-color foreground-color=0xffffffff ! "
                "video/x-raw,format=AYUV,width=%d,height=%d,framerate=%d/1 ! mix.sink_1 )"
                % (caps, tail, src, caps, bw, bh, fps))


class Mount:
    """One --mount: PATH[:WxH][:fps=N][:delay=S]. delay (seconds, --stamp only) is read at every frame, so
    SIGUSR1 can drop it while the mount plays."""

    def __init__(self, spec, settings):
        parts = spec.split(":")
        self.path = parts[0] if parts[0].startswith("/") else "/" + parts[0]
        self.width, self.height, self.fps, self.delay = settings.width, settings.height, settings.fps, 0.0
        for part in parts[1:]:
            size = re.fullmatch(r"(\d+)x(\d+)", part)
            if size:
                self.width, self.height = int(size.group(1)), int(size.group(2))
                if self.width < 32 or self.height < 32 or self.width % 2 or self.height % 2:
                    raise SystemExit("rtsp_server: --mount %s: the size must be even and at least 32x32" % spec)
            elif re.fullmatch(r"fps=\d+", part) and int(part[4:]) > 0:
                self.fps = int(part[4:])
            elif part.startswith("delay="):
                try:
                    self.delay = float(part[len("delay="):])
                except ValueError:
                    raise SystemExit("rtsp_server: --mount %s: %r is not a number of seconds" % (spec, part))
            else:
                raise SystemExit("rtsp_server: --mount %s: %r is not WxH, fps=N or delay=S" % (spec, part))
        if self.delay and not settings.stamp:
            raise SystemExit("rtsp_server: --mount %s: delay needs --stamp" % spec)
        if self.delay < 0:
            raise SystemExit("rtsp_server: --mount %s: delay must not be negative" % spec)


class TestMedia(GstRtspServer.RTSPMedia):
    """RTSPMedia subclass only to reach rtpbin before its sessions exist."""

    rtcp_interval_ns = 1 * Gst.SECOND

    def do_setup_rtpbin(self, rtpbin):
        # rtpsession elements are added when streams join; set the RTCP
        # interval right then, before the first RTCP deadline is computed.
        def on_added(_bin, element):
            if element.get_factory() and element.get_factory().get_name() == "rtpsession":
                element.set_property("rtcp-min-interval", self.rtcp_interval_ns)
                # SR = capture time, whoever the clients are (send time shifts by
                # half a frame with mixed TCP and UDP clients of a shared media).
                element.set_property("rtcp-sync-send-time", False)
        rtpbin.connect("element-added", on_added)
        return True


def make_unseekable(media):
    """Make the media a camera: never seekable, so a PLAY with Range never seeks.

    GstRTSPMedia decides seekability from a SEEKING query on the pipeline, and
    videotestsrc answers "seekable" even when is-live.  Then every PLAY with
    "Range: npt=0-" (FFmpeg always sends one) does a flushing seek to 0 of the
    SHARED pipeline: all other clients see RTP timestamps jump back and the
    running time restart.  Answer the query with "not seekable" and drop any
    seek event at the payloader, so RTSP-level seeks are refused instead.
    """
    pad = media.get_element().get_by_name("pay0").get_static_pad("src")

    def on_query(_pad, info):
        q = info.get_query()
        if q is not None and q.type == Gst.QueryType.SEEKING:
            # A fresh SEEKING query already says seekable=FALSE; answering it
            # unchanged is enough (PyGObject holds a ref, so it is not writable).
            return Gst.PadProbeReturn.HANDLED
        return Gst.PadProbeReturn.OK

    def on_event(_pad, info):
        ev = info.get_event()
        if ev is not None and ev.type == Gst.EventType.SEEK:
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    pad.add_probe(Gst.PadProbeType.QUERY_UPSTREAM, on_query)
    pad.add_probe(Gst.PadProbeType.EVENT_UPSTREAM, on_event)


def attach_box(media, settings, mount):
    """Drive the compositor's box pad (position/alpha) from buffer times."""
    mix = media.get_element().get_by_name("mix")
    pad = mix.get_static_pad("sink_1")
    pad.set_property("zorder", 1)
    pad.set_property("alpha", 0.0)
    appear, leave = settings.box
    span_x = mount.width - max(8, mount.width // 8)
    pad.set_property("ypos", (mount.height - max(8, mount.height // 8)) // 2)

    def probe(p, info):
        buf = info.get_buffer()
        base = mix.get_base_time()
        if buf is None or buf.pts == Gst.CLOCK_TIME_NONE or base == Gst.CLOCK_TIME_NONE:
            return Gst.PadProbeReturn.OK
        # pts is running time (the src is live, no offset); + base_time =
        # REALTIME clock time at capture.
        if settings.box_clock == "media":
            t = buf.pts / Gst.SECOND
        else:
            t = (base + buf.pts) / Gst.SECOND - settings.epoch
        if appear <= t < leave:
            p.set_property("alpha", 1.0)
            p.set_property("xpos", int(span_x * (t - appear) / (leave - appear)))
        else:
            p.set_property("alpha", 0.0)
        return Gst.PadProbeReturn.OK

    pad.add_probe(Gst.PadProbeType.BUFFER, probe)


class StampSource:
    """--stamp: feeds the media's appsrc with frames made here, each showing its capture time.

    Frame k is due at realtime clock time k/fps (slots counted from the Unix
    epoch, so every mount and every server on this clock shares them);
    need-data waits for that moment (like a camera's sensor), plus the
    mount's delay, then pushes a frame with pts = k/fps - base_time whose bits
    say round(k/fps / 1 ms).  The first frame is the one due next when the
    media starts; after it every frame is made, in order: a frame asked for
    late (GStreamer is busy, the machine is loaded) is pushed at once with its
    own capture time, never skipped.  --gap-after-first N skips N frames after
    the first on purpose (an encoder that drops frames), the only gap this
    source ever makes.  The connected handler keeps this object alive as long
    as the appsrc.
    """

    def __init__(self, media, settings, mount):
        self.mount = mount
        self.width, self.height = mount.width, mount.height
        self.dur = Gst.SECOND // mount.fps
        self.gap_after_first = settings.gap_after_first
        self.block = self.width // 32
        self.band = max(8, self.width // 32)
        self.last_n = None
        self.rest = bytes([16]) * (self.width * (self.height - 2 * self.band))
        self.chroma = bytes([128]) * (2 * (self.width // 2) * (self.height // 2))
        media.get_element().get_by_name("stampsrc").connect("need-data", self.on_need_data)

    def row(self, bits):
        row = b"".join((b"\xeb" if bit else b"\x10") * self.block for bit in bits)
        return row + b"\x10" * (self.width - len(row))

    def frame(self, ms):
        bits = [(ms >> (31 - i)) & 1 for i in range(32)]
        return (self.row(bits) * self.band + self.row([1 - b for b in bits]) * self.band
                + self.rest + self.chroma)

    def next_frame(self):
        if self.last_n is None:
            return -(-CLOCK.get_time() // self.dur)  # the next slot of the clock's grid
        if self.last_n == self.first_n:
            return self.last_n + 1 + self.gap_after_first
        return self.last_n + 1

    def on_need_data(self, src, _length):
        base = src.get_base_time()
        n = self.next_frame()
        if self.last_n is None:
            self.first_n = n
        self.last_n = n
        capture = n * self.dur
        # A clock wait, not time.sleep: libfaketime breaks Python's sleep (EINVAL). A time already past
        # returns at once (EARLY): the frame goes out late, stamped with when it was due.
        Gst.Clock.id_wait(CLOCK.new_single_shot_id(capture + int(self.mount.delay * Gst.SECOND)))
        buf = Gst.Buffer.new_wrapped(self.frame(((capture + 500000) // 1000000) & 0xFFFFFFFF))
        buf.pts, buf.duration = capture - base, self.dur
        src.emit("push-buffer", buf)


def configure(media, settings, mount):
    """media-configure handler: runs once per (shared) media pipeline."""
    make_unseekable(media)
    if settings.box:
        attach_box(media, settings, mount)
    if settings.stamp:
        StampSource(media, settings, mount)


class FileLoop:
    """Producer pipeline: decode --file in a gapless loop into intervideosink."""

    def __init__(self, path, settings):
        self.pipe = Gst.Pipeline.new("file-loop")
        self.pipe.use_clock(CLOCK)
        dec = Gst.ElementFactory.make("uridecodebin")
        dec.set_property("uri", Gst.filename_to_uri(os.path.abspath(path)))
        chain = Gst.parse_bin_from_description(
            "queue ! videoconvert ! videoscale ! videorate ! "
            "video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1 ! "
            "intervideosink channel=%s sync=true"
            % (settings.width, settings.height, settings.fps, FILE_CHANNEL), True)
        self.pipe.add(dec)
        self.pipe.add(chain)
        self.sink = chain.get_static_pad("sink")
        dec.connect("pad-added", self.on_pad)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_message)
        self.pipe.set_state(Gst.State.PAUSED)
        ret, _, _ = self.pipe.get_state(10 * Gst.SECOND)
        if ret == Gst.StateChangeReturn.FAILURE:
            raise SystemExit("rtsp_server: cannot play --file %s" % path)
        # Segment seek: we get SEGMENT_DONE instead of EOS and can loop
        # without a flush, so running time keeps increasing monotonically.
        self.pipe.seek_simple(Gst.Format.TIME,
                              Gst.SeekFlags.FLUSH | Gst.SeekFlags.SEGMENT, 0)
        self.pipe.set_state(Gst.State.PLAYING)

    def on_pad(self, _dec, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        if caps.get_structure(0).get_name().startswith("video/") and not self.sink.is_linked():
            pad.link(self.sink)

    def on_message(self, _bus, msg):
        if msg.type == Gst.MessageType.SEGMENT_DONE:
            self.pipe.seek_simple(Gst.Format.TIME, Gst.SeekFlags.SEGMENT, 0)
        elif msg.type == Gst.MessageType.EOS:  # demuxer without segment seeks
            self.pipe.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH, 0)
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            log("file loop error: %s (%s)" % (err.message, dbg))

    def stop(self):
        self.pipe.set_state(Gst.State.NULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8554, help="0 = pick a free port")
    ap.add_argument("--mount", action="append",
                    help="PATH[:WxH][:fps=N][:delay=S], repeatable; default /cam at --width x --height, --fps")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--pattern", help="videotestsrc pattern (default ball, black with --box)")
    ap.add_argument("--file", help="serve this media file in a loop instead of a test pattern")
    ap.add_argument("--box", help="appear_s,leave_s: moving white box, wall seconds since start")
    ap.add_argument("--box-clock", choices=("epoch", "media"), default="epoch",
                    help="--box times count from EPOCH (the process start) or from the media's start "
                         "(its first client)")
    ap.add_argument("--stamp", action="store_true",
                    help="draw each frame's capture time (unix ms) as bits on top of a black frame")
    ap.add_argument("--gap-after-first", type=int, default=0, metavar="N",
                    help="--stamp: skip N frames after the first one, on purpose (as an encoder dropping frames)")
    ap.add_argument("--encoder", choices=("auto", "x264", "openh264"), default="auto")
    ap.add_argument("--bframes", type=int, default=0, help="B-frames between P-frames (x264)")
    ap.add_argument("--rtcp-interval", type=float, default=1.0,
                    help="RTCP min interval in seconds (GStreamer default is 5)")
    ap.add_argument("--die-with-parent", action="store_true",
                    help="exit when the parent process dies (automatic under faketime)")
    a = ap.parse_args()
    settings = Settings(a)
    mounts = [Mount(spec, settings) for spec in (a.mount or ["/cam"])]

    loop = GLib.MainLoop()
    file_loop = FileLoop(a.file, settings) if a.file else None
    TestMedia.rtcp_interval_ns = settings.rtcp_interval_ns

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    # A thread per client (the default is one for all): a mount whose first frame comes late (delay=S) holds its
    # own clients' DESCRIBE until it prerolls, not every other client's request as well.
    server.get_thread_pool().set_max_threads(-1)
    for m in mounts:
        launch = settings.launch(m)
        log("pipeline %s: %s" % (m.path, launch))
        f = GstRtspServer.RTSPMediaFactory()
        f.set_launch(launch)
        f.set_shared(True)
        f.set_media_gtype(TestMedia.__gtype__)
        f.set_clock(CLOCK)
        f.connect("media-configure", lambda _f, media, m=m: configure(media, settings, m))
        server.get_mount_points().add_factory(m.path, f)

    if server.attach(None) == 0:
        raise SystemExit("rtsp_server: cannot listen on 127.0.0.1:%d" % a.port)
    # Drop sessions of vanished clients promptly (default cleanup is lazy).
    GLib.timeout_add_seconds(2, lambda: server.get_session_pool().cleanup() >= 0)

    port = server.get_bound_port()
    for m in mounts:
        print("READY rtsp://127.0.0.1:%d%s" % (port, m.path))
    print("EPOCH %.6f" % settings.epoch)
    sys.stdout.flush()

    def quit_(*_):
        loop.quit()
        return GLib.SOURCE_REMOVE
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, quit_)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, quit_)

    def catch_up(*_):
        for m in mounts:
            m.delay = 0.0
        log("SIGUSR1: every mount is live now (delay 0)")
        return GLib.SOURCE_CONTINUE
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR1, catch_up)
    die_with_parent(a.die_with_parent)  # after the handlers: a SIGTERM quits cleanly
    loop.run()
    if file_loop:
        file_loop.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
