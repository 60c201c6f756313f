#!/usr/bin/python3
"""tests/bench/relay_server.py — an RTSP camera for benchmarks that relays a pre-encoded H.264 file in an
endless loop without decoding or re-encoding it, so that many clients cost the server little CPU.

Owns: this file only. Wraps tests/servers/rtsp_server.py (imported, not changed) for everything a vigil
camera relies on: TestMedia (RTCP sender report every second, NTP = capture time on the REALTIME clock),
make_unseekable (a PLAY with Range never seeks the shared media), the shared REALTIME clock.

The file's access units are read once (filesrc ! qtdemux ! h264parse, byte-stream/au, SPS/PPS before every
IDR) into memory. Each mount's media has an appsrc whose need-data waits on the clock until its slot is due
and pushes the unit of that slot: slot k is due at realtime clock time k/fps (slots counted from the Unix
epoch, like a camera's sensor) and carries unit k mod (units per loop), dts = k/fps - base_time, pts = dts +
the unit's composition offset in the file, so B-frames keep their order. A mount starts at the first slot
whose unit is a key frame. So every mount shows the same unit at the same capture time: two mounts of two
encodings of one scene (the same frames and GOPs at two sizes: --mount /main=big.mp4 --mount /sub=small.mp4)
are a camera's main and sub-stream from one clock. The file must start with an IDR and its length should be
a whole number of GOPs: then the loop is seamless (the last unit is followed by the first IDR again). Media
are shared: every client of a mount gets the same packets; the payloader runs once per mount, each client
costs only its sends.

Usage (Debian's /usr/bin/python3, it needs gi):
    /usr/bin/python3 tests/bench/relay_server.py --file clip.mp4 [--port 0] [--mount /cam[=other.mp4] ...]
prints one "READY rtsp://127.0.0.1:PORT/MOUNT" line per mount, then "UNITS n FPS f" (access units per loop,
frame rate from --file's caps). Exits 0 on SIGTERM/SIGINT."""
import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "servers"))
import rtsp_server  # noqa: E402  (Gst.init, the REALTIME clock, TestMedia)
from rtsp_server import CLOCK, TestMedia, make_unseekable  # noqa: E402
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

LAUNCH = ("( appsrc name=relaysrc is-live=true format=time do-timestamp=false "
          "caps=video/x-h264,stream-format=byte-stream,alignment=au ! "
          "rtph264pay name=pay0 pt=96 config-interval=0 )")


def log(msg):
    print("relay_server: " + msg, file=sys.stderr, flush=True)


def read_units(path):
    """[(bytes, composition offset ns)] in decode order, and the frame rate (num, den)."""
    pipe = Gst.parse_launch("filesrc name=src ! qtdemux ! h264parse config-interval=-1 ! "
                            "video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false")
    pipe.get_by_name("src").set_property("location", path)
    sink = pipe.get_by_name("sink")
    pipe.set_state(Gst.State.PLAYING)
    units, rate = [], None
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        if rate is None:
            ok, num, den = sample.get_caps().get_structure(0).get_fraction("framerate")
            rate = (num, den) if ok and num > 0 else None
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        data = bytes(info.data)
        buf.unmap(info)
        offset = buf.pts - buf.dts if buf.pts != Gst.CLOCK_TIME_NONE and buf.dts != Gst.CLOCK_TIME_NONE else 0
        units.append((data, max(0, offset), not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)))
    bus_error = pipe.get_bus().pop_filtered(Gst.MessageType.ERROR)
    pipe.set_state(Gst.State.NULL)
    if bus_error or not units:
        raise SystemExit("relay_server: cannot read H.264 access units from %s%s" %
                         (path, ": " + bus_error.parse_error()[0].message if bus_error else ""))
    if not units[0][2]:
        raise SystemExit("relay_server: %s does not start with a key frame" % path)
    return units, rate or (25, 1)


class Relay:
    """One media's appsrc: the file's units, one per frame slot, on the realtime clock."""

    def __init__(self, media, units, rate):
        self.units, self.dur = units, Gst.SECOND * rate[1] // rate[0]
        self.last_slot = -1
        media.get_element().get_by_name("relaysrc").connect("need-data", self.on_need_data)

    def on_need_data(self, src, _length):
        base = src.get_base_time()
        # The first slot is the next one of the clock's grid whose unit is a key frame; later slots follow one
        # another, so a late server sends late rather than skipping units the decoder needs.
        if self.last_slot < 0:
            slot = -(-CLOCK.get_time() // self.dur)
            while not self.units[slot % len(self.units)][2]:
                slot += 1
        else:
            slot = self.last_slot + 1
        self.last_slot = slot
        Gst.Clock.id_wait(CLOCK.new_single_shot_id(slot * self.dur))
        data, offset, _key = self.units[slot % len(self.units)]
        buf = Gst.Buffer.new_wrapped(data)
        buf.dts, buf.pts, buf.duration = slot * self.dur - base, slot * self.dur - base + offset, self.dur
        src.emit("push-buffer", buf)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", required=True, help="MP4 (or other qtdemux input) with one H.264 stream")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--mount", action="append", help="/PATH or /PATH=FILE (its own file), repeatable; default /cam")
    ap.add_argument("--rtcp-interval", type=float, default=1.0, help="RTCP min interval in seconds")
    a = ap.parse_args()
    units, rate = read_units(os.path.abspath(a.file))
    TestMedia.rtcp_interval_ns = int(a.rtcp_interval * Gst.SECOND)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    mounts = []
    for spec in a.mount or ["/cam"]:
        path, _, other = spec.partition("=")
        mine = read_units(os.path.abspath(other)) if other else (units, rate)
        if mine[1] != rate:
            raise SystemExit("relay_server: %s has %d/%d fps, --file %d/%d: one clock needs one rate" % (
                other, mine[1][0], mine[1][1], rate[0], rate[1]))
        mounts.append("/" + path.lstrip("/"))
        f = GstRtspServer.RTSPMediaFactory()
        f.set_launch(LAUNCH)
        f.set_shared(True)
        f.set_media_gtype(TestMedia.__gtype__)
        f.set_clock(CLOCK)
        f.connect("media-configure", lambda _f, media, mine=mine: (make_unseekable(media), Relay(media, *mine)))
        server.get_mount_points().add_factory(mounts[-1], f)
    if server.attach(None) == 0:
        raise SystemExit("relay_server: cannot listen on 127.0.0.1:%d" % a.port)
    GLib.timeout_add_seconds(2, lambda: server.get_session_pool().cleanup() >= 0)
    for m in mounts:
        print("READY rtsp://127.0.0.1:%d%s" % (server.get_bound_port(), m))
    print("UNITS %d FPS %g" % (len(units), rate[0] / rate[1]), flush=True)
    log("%d access units, %d/%d fps, %d bytes per loop" % (len(units), rate[0], rate[1], sum(len(u[0]) for u in units)))
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, lambda *_: loop.quit() or GLib.SOURCE_REMOVE)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, lambda *_: loop.quit() or GLib.SOURCE_REMOVE)
    rtsp_server.die_with_parent(True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
