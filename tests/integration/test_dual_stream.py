"""test_dual_stream.py — previews cut from the camera's main stream (preview_url) while the rule analyses its
sub-stream (url), matched by RTCP capture time (docs/config.md, preview_url; docs/architecture.md, "Previews
from the main stream").

One RTSP server (tests/servers/rtsp_server.py --stamp) serves the same generated scene at two sizes from one
clock: /sub 320x180 and /main 640x360, every frame showing its capture time as bits. A rule previews a box
around the bits on every third frame. Each preview JPEG is decoded (ffmpeg, gray) and its bits read: a preview
from the main stream is 640x360's share of the box (480x90; the sub-stream's is 240x46), and the time it shows
must be the analysed frame's ts to the ms (the crop is in the right place too: misplaced, the bits would not
read). A 30 fps main mount checks the nearest picture and payload.preview_offset_ms. Faults, each its own
camera: the main stream missing (no server at the URL), started late then killed and restarted (a second
server), lagging by seconds (a mount with delay=LAG_S, live again on SIGUSR1). Each falls back to the analysed
frame within the bound, says so once per change, and comes back to main-stream previews when the main stream
is back. Every wait is for the event, bounded by HANG_S; the one time limit is preview_wait_ms + SLACK_S
(tests/README.md, "Timing in tests")."""
import base64
import json
import signal
import struct
import subprocess
import threading
import time
import urllib.request

from vigiltest import HANG_S, SLACK_S, Suite, write
from livetest import RTCP_WAIT_MS, SECRET, Output, Run, Server, free_port

MAIN, SUB = (640, 360), (320, 180)
BOX = [0.25, 0.0, 0.75, 0.25]   # bits 8..31 of the stamp (the band is 1/18 of the height at both sizes)
EVERY = 3                        # a preview every third frame: 120 ms apart, so a 30 fps main has offsets
# preview_wait_ms of the cameras that must never fall back once up: what the main stream may trail the sub-stream
# by (both come from one server and one clock: a frame's time apart at most) plus SLACK_S (tests/README.md: a
# give-up setting a test needs not to fire). The lagging camera keeps the default.
WAIT_MS = int(1000 + SLACK_S * 1000)
DEFAULT_WAIT_MS = 1000           # docs/config.md, preview_wait_ms
# The lagging mount's delay: more than the lagging camera's wait (the default) plus what a loaded machine may make
# the analysed stream itself late by (SLACK_S), so its main stream is behind the analysed frames whatever the load.
LAG_S = int(DEFAULT_WAIT_MS / 1000 + SLACK_S + 1)
# Its first packet comes LAG_S after connecting: the lagging camera's stall_timeout_ms (docs/config.md: no packet
# for this long is a failed stream) must not fire before it, plus SLACK_S.
LAG_STALL_MS = int((LAG_S + SLACK_S) * 1000)
POLL_S = 0.2                     # how often the output is read: a version's read time is this much late at most

RULE = """
local vigil = require "vigil"
function on_frame(frame)
  if frame.index % vigil.params.every ~= 0 then return end
  local ep = vigil.episode(frame, {episode_type = "shot", payload = {ts = frame.ts}})
  ep:preview(frame, vigil.params.box, {max_size = 4096})
  ep:close(frame)
end
"""

FALLBACK = "previews come from the analysed stream: "
FROM_MAIN = "previews come from the preview stream "


# ---------------------------------------------------------------- reading previews

def jpeg_size(data):
    """(width, height) from the JPEG's frame header."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        if data[i + 1] in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return 0, 0


def is_main(size):
    return abs(size[0] - BOX[2] * MAIN[0]) <= 2 and abs(size[1] - BOX[3] * MAIN[1]) <= 2


def is_sub(size):
    return abs(size[0] - BOX[2] * SUB[0]) <= 2 and abs(size[1] - BOX[3] * SUB[1]) <= 2


def gray(jpegs, size):
    """The JPEGs (all of one size) decoded by ffmpeg into 8-bit gray pictures."""
    p = subprocess.run(["ffmpeg", "-v", "error", "-f", "jpeg_pipe", "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt",
                        "gray", "pipe:1"], input=b"".join(jpegs), capture_output=True)
    n = size[0] * size[1]
    return [p.stdout[i * n:(i + 1) * n] for i in range(len(p.stdout) // n)]


def shown_bits(px, size):
    """The 24 low bits of the capture time drawn in the crop (bits 8..31 of the stamp), or -1 when a bit and its
    complement below it do not differ (not a clean stamp: a wrong crop, a broken picture)."""
    w, h = size
    band = h / BOX[3] / 18.0        # the stamp band's height in crop pixels
    value = 0
    for i in range(8, 32):
        x = int(((i + 0.5) / 32 - BOX[0]) / BOX[2] * w)
        top, bottom = px[int(0.5 * band) * w + x], px[int(1.5 * band) * w + x]
        if (top > 128) == (bottom > 128):
            return -1
        value = value * 2 + (top > 128)
    return value


class Previews:
    """The versions vigil writes, read every POLL_S on a thread of their own, each with the time it was read, its
    media, ts, preview size and offset."""

    def __init__(self, path):
        self.out, self.items, self.lock, self.stopped = Output(path), [], threading.Lock(), threading.Event()
        self.thread = threading.Thread(target=self.follow, daemon=True)
        self.thread.start()

    def follow(self):
        while not self.stopped.wait(POLL_S):
            self.poll()

    def stop(self):
        self.stopped.set()
        self.thread.join()
        self.poll()

    def poll(self):
        with self.lock:
            recs = self.out.read()
            now = time.time()
            for r in recs[len(self.items):]:
                jpeg = base64.b64decode(r["preview"]) if "preview" in r else b""
                self.items.append({"media": r["media"], "ts": r["payload"]["ts"], "read": now, "jpeg": jpeg,
                                   "size": jpeg_size(jpeg) if jpeg else (0, 0),
                                   "offset": r["payload"].get("preview_offset_ms", 0)})
            return list(self.items)

    def of(self, media, since=None, main=None, before=None):
        """media's previews (of frames captured at or after since, read before before, unix s), only main (or sub)
        ones if asked."""
        with self.lock:
            return [p for p in self.items if p["media"] == media and (since is None or p["ts"] >= since * 1000) and
                    (main is None or is_main(p["size"]) == main) and (before is None or p["read"] < before)]


def wait_previews(t, run, previews, media, count, main, since=None, what=""):
    ok = run.until(lambda: len(previews.of(media, since, main)) >= count, step=POLL_S)
    t.check(ok, "%s: %d previews from the %s stream%s (got %d)" % (media, count, "main" if main else "analysed",
                                                                   what, len(previews.of(media, since, main))))


def check_stamps(t, label, items, exact=True):
    """Each preview shows the capture time of its frame (+ preview_offset_ms when the main stream had no picture
    at that time), read from its pixels."""
    by_size = {}
    for p in items:
        by_size.setdefault(p["size"], []).append(p)
    wrong = []
    for size, group in by_size.items():
        for p, px in zip(group, gray([p["jpeg"] for p in group], size)):
            want = (p["ts"] + p["offset"]) & 0xFFFFFF
            got = shown_bits(px, size)
            if got < 0 or min(abs(got - want), 0x1000000 - abs(got - want)) > (0 if exact else 1):
                wrong.append((p["ts"], p["offset"], got, want))
    t.check(items and not wrong, "%s: %d previews show their frame's capture time in the right place; wrong: %s"
            % (label, len(items), wrong[:5]))


def cause_lines(run, media):
    return [l.split(": ", 1)[1] for _, l in run.timed(lambda l: l.startswith(media + " ") and
                                                       (FALLBACK in l or FROM_MAIN in l))]


def check_changes_said_once(t, media, lines):
    repeats = [a for a, b in zip(lines, lines[1:]) if a.split(" (")[0] == b.split(" (")[0]]
    t.check(lines and not repeats, "%s: each change of where previews come from is said once: %s" % (media, lines))


def check_never_held(t, run, previews, media, wait_ms):
    """No version waits for its preview longer than preview_wait_ms: read at most wait + SLACK_S (+ the poll step)
    after its frame's capture time; frames held for the first sender report do not count (vigil says when)."""
    sr = run.timed(lambda l: l.startswith(media + " info: frame time from RTCP sender reports"))
    if not t.check(sr, "%s: the analysed stream got its sender time" % media):
        return
    late = [(p["ts"], round(p["read"] - p["ts"] / 1000.0, 2)) for p in previews.of(media, since=sr[0][0])
            if p["read"] - p["ts"] / 1000.0 > wait_ms / 1000.0 + SLACK_S + POLL_S]
    t.check(not late, "%s: no version held back more than preview_wait_ms (%d ms) + %.0f s: %s"
            % (media, wait_ms, SLACK_S, late[:5]))


def metric(text, name, media):
    for line in text.splitlines():
        if line.startswith('%s{media="%s"}' % (name, media)):
            return float(line.split()[-1])
    return None


# ---------------------------------------------------------------- the run

def main():
    t = Suite("dual_stream")
    write(t.path("rule.lua"), RULE)
    a = Server(t, "a", ["/sub:%dx%d" % SUB, "/main:%dx%d" % MAIN, "/main30:%dx%d:fps=30" % MAIN,
                        "/lagging:%dx%d:delay=%d" % (MAIN + (LAG_S,))])
    b_port, nothing_port = free_port(), free_port()
    sub = a.url(0)
    cams = [("dual", a.url(1), WAIT_MS), ("nearest", a.url(2), WAIT_MS),
            ("nomain", "rtsp://viewer:%s@127.0.0.1:%d/main" % (SECRET, nothing_port), WAIT_MS),
            ("late", "rtsp://viewer:%s@127.0.0.1:%d/main" % (SECRET, b_port), WAIT_MS),
            ("lag", a.url(3), None)]
    own = {"lag": {"stall_timeout_ms": LAG_STALL_MS}}
    out = t.path("out.jsonl")
    cfg = {"node": {"machine_id": 9, "log_level": "info", "metrics": "127.0.0.1:0"},
           "output": {"file": out}, "defaults": {"stall_timeout_ms": 3000, "rtcp_wait_ms": RTCP_WAIT_MS},
           "cameras": [dict({"media": m, "url": sub, "preview_url": p, "script": "rule.lua",
                             "params": {"box": BOX, "every": EVERY}}, **({"preview_wait_ms": w} if w else {}),
                            **own.get(m, {}))
                       for m, p, w in cams]}
    run = Run(write(t.path("run.json"), json.dumps(cfg, indent=1)))
    previews, b = Previews(out), None
    try:
        # up: the main streams that are there give the previews; the missing, late and lagging ones do not
        for media in ("dual", "nearest"):
            wait_previews(t, run, previews, media, 30, True)
        wait_previews(t, run, previews, "nomain", 30, False)
        wait_previews(t, run, previews, "late", 10, False, what=" before its server starts")
        lagging = run.wait_line(lambda l: l.startswith("lag warn: " + FALLBACK + "the preview stream lags"))
        t.check(lagging, "lag: the lagging main stream is said")
        wait_previews(t, run, previews, "lag", 10, False, since=lagging[0][0] if lagging else None,
                      what=" while its main stream lags")

        # started late, killed, restarted
        started = time.time()
        b = Server(t, "b", ["/main:%dx%d" % MAIN], port=b_port)
        wait_previews(t, run, previews, "late", 10, True, since=started, what=" once its server started")
        killed = time.time()
        b.signal(signal.SIGKILL)
        b.proc.wait()
        lost = run.wait_line(lambda l: l.startswith("late/preview warn: stream lost"), since=killed)
        t.check(lost, "late: the killed main stream is said lost")
        wait_previews(t, run, previews, "late", 10, False, since=killed, what=" after its server was killed")
        b.proc.stdout.close()
        b.err.close()
        restarted = time.time()
        b.start()
        wait_previews(t, run, previews, "late", 10, True, since=restarted, what=" after its server restarted")

        # the lagging mount goes live
        caught_up = time.time()
        a.signal(signal.SIGUSR1)
        wait_previews(t, run, previews, "lag", 10, True, since=caught_up, what=" once its main stream is live")

        metrics_before = len(previews.poll())
        said = run.wait_line(lambda l: l.startswith("vigil info: metrics on http://"))
        url = said[0][1].split("metrics on ")[1].split()[0] if said else "http://127.0.0.1:1/metrics"
        with urllib.request.urlopen(url, timeout=HANG_S) as r:
            metrics = r.read().decode()
    finally:
        stopping = time.time()  # a preview waiting then is cut short: from the analysed frame (not said)
        rc, log = run.stop()
        write(t.path("vigil.log"), log)
        previews.stop()
        if b:
            b.stop()
        a.stop()
    t.check(rc == 0, "vigil exited 0 (%s)" % rc)
    t.check(SECRET not in log, "the preview URL's password never reaches a log line")

    # dual: once the main stream gives previews, every one is from it, at the frame's own time exactly
    dual = previews.of("dual", before=stopping)
    first = next((i for i, p in enumerate(dual) if is_main(p["size"])), len(dual))
    t.check(first < len(dual) and all(is_main(p["size"]) for p in dual[first:]),
            "dual: after the first, every preview is the main stream's %dx%d box: %s"
            % (BOX[2] * MAIN[0], BOX[3] * MAIN[1], sorted(set(p["size"] for p in dual[first:]))))
    t.check(all(p["offset"] == 0 for p in dual[first:]), "dual: one clock: no preview_offset_ms")
    check_stamps(t, "dual", dual[first:])
    t.check(all(is_sub(p["size"]) for p in dual[:first]), "dual: before it, the analysed frame's box")
    lines = cause_lines(run, "dual")
    coming_up = ("not connected", "no RTCP sender time", "older than they are", "analysed stream is behind")
    t.check(lines and lines[-1].startswith(FROM_MAIN) and all(any(c in l for c in coming_up) for l in lines[:-1]),
            "dual: fallbacks only while the main stream was coming up: %s" % lines)

    # nearest: 30 fps main, 25 fps sub: the nearest picture, its offset in the payload (half a 30 fps frame at most)
    nearest = previews.of("nearest", before=stopping)
    first = next((i for i, p in enumerate(nearest) if is_main(p["size"])), len(nearest))
    up = nearest[first:]
    t.check(up and all(is_main(p["size"]) for p in up), "nearest: every preview from the main stream once up")
    offsets = sorted(set(p["offset"] for p in up))
    t.check(offsets and max(abs(o) for o in offsets) <= 17 and 0 in offsets and len(offsets) > 1,
            "nearest: preview_offset_ms is 0 on shared instants, else within half a 30 fps frame: %s" % offsets)
    check_stamps(t, "nearest", up, exact=False)

    # missing: every preview from the analysed frame, said once
    nomain = previews.of("nomain")
    t.check(nomain and all(is_sub(p["size"]) for p in nomain), "nomain: every preview is the analysed frame's box")
    check_stamps(t, "nomain", nomain)
    lines = cause_lines(run, "nomain")
    t.check(lines == [FALLBACK + "the preview stream is not connected"], "nomain: said once: %s" % lines)

    # late, killed, restarted
    lines = cause_lines(run, "late")
    check_changes_said_once(t, "late", lines)
    t.check(sum("not connected" in l for l in lines) == 2 and sum(FROM_MAIN in l for l in lines) == 2,
            "late: down twice (not started, killed), back twice: %s" % lines)
    late = previews.of("late")
    check_stamps(t, "late", late)
    t.check(all(not is_main(p["size"]) for p in late if p["read"] < started),
            "late: no main-stream preview before its server started")

    # lagging
    lines = cause_lines(run, "lag")
    check_changes_said_once(t, "lag", lines)
    t.check(any("lags" in l for l in lines) and lines[-1].startswith(FROM_MAIN),
            "lag: the lag said, then main-stream previews: %s" % lines)
    lag = previews.of("lag")
    t.check(all(not is_main(p["size"]) for p in lag if lagging and lagging[0][0] <= p["ts"] / 1000.0 and
                p["read"] < caught_up), "lag: no main-stream preview while it lagged")
    check_stamps(t, "lag", lag)

    for media, _, wait in cams:
        check_never_held(t, run, previews, media, wait or DEFAULT_WAIT_MS)
        print("INFO: %s: %d previews, %d from the main stream; said: %s" % (
            media, len(previews.of(media)), len(previews.of(media, main=True)), cause_lines(run, media)))

    # metrics: counted as they came
    main_count = metric(metrics, "vigil_camera_previews_main_total", "dual")
    t.check(main_count is not None and len(previews.of("dual", main=True)) >= main_count >=
            len([p for p in previews.items[:metrics_before] if p["media"] == "dual" and is_main(p["size"])]),
            "metrics: vigil_camera_previews_main_total counts dual's main-stream previews (%s)" % main_count)
    fallback = metric(metrics, "vigil_camera_previews_fallback_total", "nomain")
    t.check(fallback is not None and fallback >= 30, "metrics: nomain's fallbacks counted (%s)" % fallback)
    for name in ("vigil_camera_preview_kept_packets", "vigil_camera_preview_kept_bytes",
                 "vigil_camera_preview_decoded_total"):
        value = metric(metrics, name, "dual")
        t.check((value or 0) > 0, "metrics: %s of dual > 0 (%s)" % (name, value))
    t.check(metric(metrics, "vigil_camera_preview_stream_connected", "nomain") == 0 and
            metric(metrics, "vigil_camera_preview_stream_connected", "dual") == 1,
            "metrics: preview_stream_connected is 1 for dual, 0 for nomain")
    t.done()


main()
