"""test_rtsp.py — `vigil run` against the real RTSP server (tests/servers/rtsp_server.py, loopback only).

The server runs with --stamp: every frame shows its own capture time (unix ms, as bits), and the RTCP sender
reports map RTP time to that same capture time. So a frame's ts must equal the time drawn on it: one frame
late would be +40 ms at 25 fps. Checked here: frames are stamped "rtcp" and exact (also the ones held before
the first sender report), 40 ms apart; two cameras on one URL (TCP and UDP too) give a frame the same ts; a
server under faketime -1h gives stamps an hour behind this host's clock (so they come from the SRs) and a
skew warning; a stall, a killed and restarted server: logged, the announced delays are the backoff, reconnected
at the attempt the backoff announced, the script's counter keeps counting; unreachable host, wrong path, a
non-RTSP server: a clear line per attempt, retries, no crash; the URL password never appears in a log line;
open episodes close with "shutdown" at the end. Each run lasts until what it checks has happened (frames, log
lines), never a fixed time (tests/README.md, "Timing in tests")."""
import json
import signal
import subprocess
import time

from vigiltest import HANG_S, SLACK_S, Suite, VIGIL, VIGIL_ASAN, write
from livetest import (FRAME_MS, SECRET, STAMP_RULE, NotRtsp, Output, Run, Server, announced_delay, check_exact,
                      config, frames_by_media, frames_of, free_port, marker_error, per_media)

BACKOFF_FIRST_S = 0.5  # config.md, stall_timeout_ms: "vigil reconnects (backoff 0.5 s doubling to 30 s)"
BACKOFF_JITTER = 0.2   # core/vg_time.c, vg_backoff_ms: up to 20 % shorter, so cameras behind one failed server do not retry in step


def check_masked(t, label, stderr):
    t.check(SECRET not in stderr, "%s: the URL password never reaches a log line" % label)


# ---------------------------------------------------------------- scenarios

def test_clock(t):
    """Exact stamps from the SRs; same frame same ts on two cameras, TCP and UDP; B-frames (decode order is not
    display order, and the first packet has no pts); faketime -1h; no SR at all."""
    live = Server(t, "live", ["/cam1"])
    reordered = Server(t, "bframes", ["/cam"], extra=["--bframes", "2"])
    fake = Server(t, "fake", ["/cam"], faketime="-1h")
    silent = Server(t, "silent", ["/cam"], extra=["--rtcp-interval", "60"])  # first SR after > 10 s
    gap = Server(t, "gap", ["/cam"], extra=["--gap-after-first", "3"])  # the sender drops 3 frames after the first
    try:
        cfg, out = config(t, "clock", [
            {"media": "a", "url": live.url()},
            {"media": "b", "url": live.url()},
            {"media": "u", "url": live.url(), "transport": "udp"},
            {"media": "f", "url": fake.url()},
            {"media": "v", "url": reordered.url()},
            {"media": "l", "url": silent.url(), "rtcp_wait_ms": 2000},
            {"media": "g", "url": gap.url()},
        ])
        # runs until every camera has delivered its frames (an event), not for a fixed time
        least = {"a": 100, "b": 100, "u": 50, "f": 100, "v": 100, "g": 100, "l": 100}
        t0 = time.time()
        v = Run(cfg)
        output = Output(out)
        enough = v.until(lambda: all(per_media(output.read(), "frame").get(m, 0) >= n for m, n in least.items()),
                         step=0.5)
        rc, err = v.stop()
        t1 = time.time()
    finally:
        live.stop()
        reordered.stop()
        fake.stop()
        silent.stop()
        gap.stop()
    t.check(enough, "every camera delivers its frames (%s)" % per_media(output.read(), "frame"))
    t.check(rc == 0, "clock run exits 0 (rc %s): %s" % (rc, err[-2000:]))
    check_masked(t, "clock run", err)
    frames, streams, sessions = frames_by_media(out)
    for media in "abufv":
        check_exact(t, "camera %s" % media, frames.get(media, []), least[media])
    check_first_frame_never_guessed(t, frames.get("g", []), err)
    ts = {m: {p["marker"]: p["ts"] for p in frames.get(m, [])} for m in "abu"}
    for other in "bu":
        common = set(ts["a"]) & set(ts[other])
        t.check(len(common) >= 40 and all(ts["a"][k] == ts[other][k] for k in common),
                "a and %s: the same frame has the same ts (%d frames in common)" % (other, len(common)))
    behind = [p["ts"] / 1000.0 for p in frames.get("f", [])]
    t.check(behind and all(t0 - 3600 - 2 <= x <= t1 - 3600 + 1 for x in behind),
            "faketime -1h: stamps are an hour behind this host's clock (%s)"
            % ("%.1f s" % (behind[0] - t0) if behind else "no frames"))
    skew = [l for l in err.splitlines() if "clock is" in l and "off this host's clock" in l]
    t.check(len(skew) == 1 and skew[0].startswith("f warn:") and "-3600." in skew[0],
            "one skew warning, for camera f, with the offset: %s" % skew)
    first_sr = [l for l in err.splitlines() if "frame time from RTCP sender reports" in l]
    t.check(len(first_sr) == 6, "each camera logs when the sender time became known: %s" % first_sr)
    for line in first_sr:
        print("INFO: " + line)
    check_local(t, frames.get("l", []), err, t0, t1)
    t.check(all(streams.get(m) == ["up"] for m in "abufvlg"), "on_stream('up') once per camera: %s" % streams)
    last = {m: max(p["ts"] for p in frames[m]) for m in frames}
    t.check(all(m in sessions and sessions[m]["payload"].get("close_reason") == "shutdown"
                and sessions[m]["closed_at"] == last[m] for m in "abufv"),
            "at shutdown open episodes close at the last frame with close_reason shutdown")


def check_first_frame_never_guessed(t, frames, err):
    """The sender drops 3 frames right after the session's first, which FFmpeg's parser leaves without pts: a
    guess from the packets after it ("next pts minus a frame") would stamp it 120 ms late. It is either exact
    or not given to the rule; here it is not (said once per camera: a first picture that is also damaged, as
    on a shared media joined mid-GOP, is counted as damaged instead), and every frame given is exact."""
    check_exact(t, "camera g (a gap after the first frame)", frames, 100)
    untimed = [l for l in err.splitlines() if "without a timestamp from the stream" in l]
    t.check(len([l for l in untimed if l.startswith("g info:")]) == 1,
            "camera g: the untimed first picture is said once: %s" % untimed)
    who = [l.split()[0] for l in untimed]
    t.check(len(who) == len(set(who)), "an untimed picture is said once per camera at most: %s" % who)


def check_local(t, frames, err, t0, t1):
    """No sender report within rtcp_wait_ms: the local clock, said once, frames still 40 ms apart."""
    t.check(len(frames) >= 100 and all(p["clock"] == "local" for p in frames),
            "no SR: %d frames, all with clock local" % len(frames))
    if not frames:
        return
    t.check(all(t0 <= p["ts"] / 1000.0 <= t1 for p in frames), "no SR: stamps are this host's time")
    late = sorted(set(marker_error(p) for p in frames))
    print("INFO: local clock: ts - capture time %d..%d ms" % (late[0], late[-1]))
    # The local clock anchors pts at the packet read least late among those held for rtcp_wait_ms (2 s, 50
    # frames; core/vg_clock.h): one offset for every frame (+-1 ms of rounding), never before capture, and the
    # best of 50 reads is far under a frame even on a loaded machine. Stamping a packet when the next one
    # completes it would make every frame a frame (40 ms) late.
    t.check(0 <= late[0] and late[-1] - late[0] <= 1 and late[-1] < FRAME_MS,
            "no SR: stamps follow capture by the least read latency, one offset for all, not a frame: %s" % late[:5])
    steps = sorted(set(b["ts"] - a["ts"] for a, b in zip(frames, frames[1:])))
    t.check(min(steps) >= FRAME_MS - 1 and max(steps) <= FRAME_MS + 1, "no SR: steps of %d ms: %s" % (FRAME_MS, steps))
    warned = [l for l in err.splitlines() if "no RTCP sender report" in l]
    t.check(len(warned) == 1 and warned[0].startswith("l warn: no RTCP sender report within rtcp_wait_ms (2.0 s)"),
            "no SR: said once: %s" % warned)


def test_reconnect(t):
    """A stall (server SIGSTOPped), then a killed and restarted server: logged, reconnected, state kept. Each step
    waits for the event the step before promised (a log line, frames), never for a fixed time."""
    server = Server(t, "flaky", ["/cam"])
    cfg, out = config(t, "reconnect", [{"media": "r", "url": server.url(), "stall_timeout_ms": 1500}])
    v = Run(cfg)
    output = Output(out)

    def since(at):
        return [p for p in frames_of(output.read()).get("r", []) if p["ts"] / 1000.0 > at]

    marks = {}
    try:
        t.check(v.until(lambda: len(since(0)) >= 50), "reconnect: the camera delivers frames")
        server.signal(signal.SIGSTOP)
        stalled = v.wait_line(lambda l: l.startswith("r warn: stream lost") and "stalled" in l)
        # frozen past the reconnect the line announced: that attempt meets a server that does not answer
        time.sleep(announced_delay(stalled[0][1]) + 1.0 if stalled else 0)
        server.signal(signal.SIGCONT)
        marks["continued"] = time.time()
        t.check(v.until(lambda: len(since(marks["continued"])) >= 50), "reconnect: frames again after the stall")
        marks["killed"] = time.time()  # before the stop returns, vigil may already have logged the loss
        server.stop()
        retrying = lambda l: l.startswith("r warn: rtsp://") and "retrying in" in l  # noqa: E731
        t.check(len(v.wait_line(retrying, count=2, since=marks["killed"])) == 2,
                "reconnect: attempts fail while the server is down")
        server.start()
        marks["restarted"] = time.time()
        t.check(v.until(lambda: len(since(marks["restarted"])) >= 100), "reconnect: frames again after the restart")
    finally:
        rc, err = v.stop()
        server.stop()
    t.check(rc == 0, "reconnect run exits 0 (rc %s): %s" % (rc, err[-2000:]))
    check_masked(t, "reconnect run", err)
    lines = err.splitlines()
    stall = [l for l in lines if l.startswith("r warn: stream lost") and "stalled: no packet for 1.5 s" in l]
    t.check(len(stall) >= 1 and "reconnecting in" in stall[0], "the stall is logged: %s" % stall)
    lost = [l for l in lines if l.startswith("r warn: stream lost") and "stalled" not in l]
    t.check(len(lost) >= 1, "the killed server is logged as a lost stream: %s" % lost)
    retries = [l for l in lines if l.startswith("r warn: rtsp://viewer:***@127.0.0.1:%d/cam: " % server.port)]
    t.check(len(retries) >= 1 and all("retrying in" in l for l in retries),
            "connection attempts while the server is down are logged, masked: %s" % retries[:3])
    check_backoff(t, v.timed(lambda l: l.startswith("r warn: "), since=marks.get("killed", 0)))
    fr = frames_of(output.read()).get("r", [])
    check_exact(t, "reconnect", fr, 200, outages=2)
    t.check([p["n"] for p in fr] == list(range(1, len(fr) + 1)),
            "the script's counter survived every reconnect (n = 1..%d without reset)" % len(fr))
    t.check(all(b["ts"] > a["ts"] for a, b in zip(fr, fr[1:])), "frame time never goes backwards")
    check_reconnect_time(t, v, marks, since(marks.get("restarted", time.time())))
    frames, streams, sessions = frames_by_media(out)
    t.check(streams.get("r", [])[:1] == ["up"] and streams["r"].count("down") >= 2 and streams["r"].count("up") >= 3,
            "on_stream saw up, down, ..., up: %s" % streams.get("r"))
    t.check("r" in sessions and sessions["r"]["payload"].get("close_reason") == "shutdown",
            "the episode open since the first frame survived the reconnects and closed at shutdown")


def check_backoff(t, warned):
    """The delays vigil announced after losing the stream are its documented backoff: 0.5 s for the lost
    stream and the first failed attempt, then doubling, each up to 20 % shorter (checked as +-20 %; logged to 0.1 s)."""
    delays = [announced_delay(l) for _, l in warned if announced_delay(l) is not None]
    bases = [BACKOFF_FIRST_S * 2 ** max(0, i - 1) for i in range(len(delays))]
    t.check(len(delays) >= 3 and all((1 - BACKOFF_JITTER) * b - 0.05 <= d <= (1 + BACKOFF_JITTER) * b + 0.05
                                     for d, b in zip(delays, bases)),
            "reconnect: the announced delays follow the backoff (0.5 s doubling, +-20 %%): %s for %s" % (delays, bases))


def check_reconnect_time(t, v, marks, after):
    """Back within the backoff: the attempt the last failed one announced ("retrying in X s", read at T) is the
    one that succeeds, so the first frame after the restart is captured by T + X (or the restart, if later)
    plus the time a loaded machine takes to connect and start the server's media (SLACK_S). At most one attempt
    fails after the server is up: the one under way when it came up."""
    if not after or "restarted" not in marks:
        return
    failed = v.timed(lambda l: l.startswith("r warn: rtsp://") and "retrying in" in l, since=marks["killed"])
    late = [l for at, l in failed if at > marks["restarted"]]
    t.check(len(late) <= 1, "reconnect: no attempt fails once the server is up: %s" % late)
    if not failed:
        return
    at, line = failed[-1]
    due = max(at + announced_delay(line), marks["restarted"])
    first = after[0]["ts"] / 1000.0
    print("INFO: first frame %.2f s after the restarted server was ready, %.2f s after the attempt the last failed "
          "one announced (%s)" % (first - marks["restarted"], first - (at + announced_delay(line)),
                                  line.split("; ")[-1]))
    t.check(first <= due + SLACK_S, "reconnected within the backoff: first frame %.2f s after the announced attempt "
            "(limit %.1f s: a connect and the server's media starting on a loaded machine)" % (first - due, SLACK_S))


def test_bad_urls(t):
    """Unreachable port, wrong path, a server that is not RTSP: clear lines, retries, no crash."""
    live = Server(t, "paths", ["/cam"])
    not_rtsp = NotRtsp()
    closed = free_port()
    cams = [
        {"media": "closed", "url": "rtsp://viewer:%s@127.0.0.1:%d/cam" % (SECRET, closed)},
        {"media": "nopath", "url": live.url().replace("/cam", "/nope")},
        {"media": "http", "url": "rtsp://viewer:%s@127.0.0.1:%d/cam" % (SECRET, not_rtsp.port)},
    ]
    cfg, out = config(t, "bad", cams, log_level="debug")
    v = Run(cfg)
    try:  # until every camera has tried three times (an event), not for a fixed time
        v.until(lambda: all(len(v.timed(lambda l, m=m: l.startswith(m + " warn: rtsp://"))) >= 3 for m in
                            ("closed", "nopath", "http")))
    finally:
        rc, err = v.stop()
        live.stop()
        not_rtsp.sock.close()
    t.check(rc == 0, "bad URLs: no crash, exit 0 (rc %s): %s" % (rc, err[-2000:]))
    check_masked(t, "bad URLs (debug level, FFmpeg lines included)", err)
    expect = {"closed": "Connection refused", "nopath": "404", "http": ""}
    for media, reason in expect.items():
        lines = [l for l in err.splitlines() if l.startswith(media + " warn: rtsp://viewer:***@127.0.0.1:")]
        t.check(len(lines) >= 3, "%s: one line per attempt, retried (%d lines)" % (media, len(lines)))
        t.check(lines and reason in lines[0] and "retrying in" in lines[0], "%s: a clear line: %s" % (media, lines[:1]))
        if lines:
            print("INFO: " + lines[0])
    t.check("stream up" not in err, "no bad URL came up")
    t.check(any("ffmpeg debug:" in l for l in err.splitlines()), "FFmpeg's own lines are logged at debug level")


def test_config_refused(t):
    bad = write(t.path("bad-config.json"), json.dumps({
        "node": {"machine_id": 1200},
        "cameras": [{"media": "x", "url": "http://viewer:%s@127.0.0.1/cam" % SECRET, "script": "missing.lua"},
                    {"media": "y", "script": "rule.lua", "colour": "red"}]}))
    r = subprocess.run([VIGIL, "run", bad, "--duration", "1"], capture_output=True, text=True, timeout=HANG_S)
    lines = r.stderr.splitlines()
    t.check(r.returncode == 2, "an invalid config is refused (exit 2, got %d)" % r.returncode)
    for needle in ("node.machine_id: 1200 is not 0..1023", "cameras[0].url: not an rtsp:// or rtsps:// URL",
                   "cameras[0].script: %s: No such file or directory" % t.path("missing.lua"),
                   "cameras[1].url: missing", "cameras[1].colour: unknown key"):
        t.check(any(l.endswith(needle) and l.startswith("vigil: " + bad) for l in lines),
                "config error reported: %s" % needle)
    t.check(len(lines) == 5, "exactly one line per problem: %s" % lines)
    check_masked(t, "config errors", r.stderr)


def test_asan(t):
    """The live path under ASan+UBSan: a good camera and an unreachable one."""
    if not VIGIL_ASAN:
        return
    live = Server(t, "asan", ["/cam"])
    cfg, out = config(t, "asan", [{"media": "a", "url": live.url()},
                                  {"media": "z", "url": "rtsp://127.0.0.1:%d/x" % free_port()}])
    v = Run(cfg, binary=VIGIL_ASAN, env={"ASAN_OPTIONS": "detect_leaks=1"})
    output = Output(out)
    try:  # until the good camera has its frames (an event), not for a fixed time
        v.until(lambda: per_media(output.read(), "frame").get("a", 0) >= 40)
    finally:
        rc, err = v.stop()
        live.stop()
    t.check(rc == 0 and "Sanitizer" not in err and "runtime error" not in err,
            "asan: clean run (rc %s): %s" % (rc, err[-3000:]))
    frames, _, _ = frames_by_media(out)
    check_exact(t, "asan camera", frames.get("a", []), 40)


def main():
    t = Suite("rtsp")
    write(t.path("rule.lua"), STAMP_RULE)
    started = time.time()
    test_config_refused(t)
    test_clock(t)
    test_reconnect(t)
    test_bad_urls(t)
    test_asan(t)
    print("INFO: %.0f s" % (time.time() - started))
    t.done()


main()
