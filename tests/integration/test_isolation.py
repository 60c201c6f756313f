"""test_isolation.py — one camera's broken rule never touches another camera (`vigil run`, real RTSP server).

Three cameras pull the same stamped stream (tests/servers/rtsp_server.py --stamp): "good" runs the stamped-frame
rule; "failing" raises an error on every odd frame; "runaway" spins in `while true do end` on every 10th frame
until the budget cuts it. Checked: the good camera gets every frame (its counter has no gap), exactly stamped and
40 ms apart, at the stream's full rate; the failing and runaway cameras keep being called on the frames
after each failure or cut (their counters keep rising); a failed or cut callback leaves no episode behind; the
failures are logged with the camera's name and file:line, rate-limited; the process exits 0.

The run lasts until each camera has done what is checked (an event), not a fixed time: the good camera LEAST
frames, the failing one SURVIVED frames done after an error, the runaway one CUTS cuts and the frame after them."""
import time

from vigiltest import Suite, write, read_versions
from livetest import STAMP_RULE, Output, Run, Server, check_exact, config, frames_by_media, frames_of

LEAST = 125               # frames of the good camera: 5 s of stream
SURVIVED = 50             # even frames of the failing camera, each after an odd one that failed
CUTS = 5                  # callbacks of the runaway camera cut at its budget
ERROR_LOG_INTERVAL_S = 10  # operations.md: "a rule's errors at most once per 10 s per camera"

FAILING = """
local vigil = require "vigil"
local n = 0
function on_frame(frame)
  n = n + 1
  if n % 2 == 1 then
    vigil.episode(frame, {episode_type = "half-made"})
    error("odd frame " .. n)
  end
  vigil.episode(frame, {episode_type = "frame", payload = {n = n, ts = frame.ts}}):close(frame)
end
"""

RUNAWAY = """
local vigil = require "vigil"
local n = 0
function on_frame(frame)
  n = n + 1
  if n % 10 == 0 then
    vigil.episode(frame, {episode_type = "half-made"})
    while true do end
  end
  vigil.episode(frame, {episode_type = "frame", payload = {n = n, ts = frame.ts}}):close(frame)
end
"""


def broken_frames(t, out, media):
    """The n of every frame episode the camera wrote, and whether any half-made episode slipped out."""
    ns, half = [], 0
    for rec, _ in read_versions(out):
        if rec["media"] != media:
            continue
        if rec.get("episode_type") == "half-made":
            half += 1
        elif rec.get("episode_type") == "frame" and "closed_at" in rec:
            ns.append(rec["payload"]["n"])
    return ns, half


def main():
    t = Suite("isolation")
    write(t.path("rule.lua"), STAMP_RULE)
    write(t.path("failing.lua"), FAILING)
    write(t.path("runaway.lua"), RUNAWAY)
    server = Server(t, "live", ["/cam"])
    try:
        cfg, out = config(t, "isolation", [
            {"media": "good", "url": server.url()},
            {"media": "failing", "url": server.url(), "script": "failing.lua"},
            {"media": "runaway", "url": server.url(), "script": "runaway.lua", "budget_ms": 20},
        ])
        v = Run(cfg)
        output = Output(out)

        def done():
            recs = output.read()
            done = frames_of(recs)
            runaway = [r["n"] for r in done.get("runaway", [])]
            return (len(done.get("good", [])) >= LEAST and len(done.get("failing", [])) >= SURVIVED
                    and max(runaway or [0]) > 10 * CUTS)

        v.until(done)
        rc, err = v.stop()
        took = time.time() - v.started
        print("INFO: run took %.1f s" % took)
    finally:
        server.stop()
    t.check(rc == 0, "the run exits 0 with two broken rules beside a good one (rc %s): %s" % (rc, err[-1500:]))

    frames, _, _ = frames_by_media(out)
    good = frames.get("good", [])
    check_exact(t, "good camera beside broken ones", good, LEAST)
    t.check([p["n"] for p in good] == list(range(1, len(good) + 1)), "good camera: no frame skipped (n = 1..%d)" % len(good))

    ns, half = broken_frames(t, out, "failing")
    t.check(len(ns) >= SURVIVED and all(n % 2 == 0 for n in ns) and ns == sorted(ns),
            "failing camera: called again after every error, even frames done (%d)" % len(ns))
    t.check(half == 0, "failing camera: an erroring callback leaves no episode (%d half-made)" % half)
    ns, half = broken_frames(t, out, "runaway")
    cuts = [n for n in range(10, max(ns or [0]) + 1, 10)]
    t.check(len(cuts) >= CUTS and all(n % 10 != 0 for n in ns) and all(c + 1 in ns for c in cuts[:-1]),
            "runaway camera: the frame after each cut runs (%d frames, %d cuts)" % (len(ns), len(cuts)))
    t.check(half == 0, "runaway camera: a cut callback leaves no episode (%d half-made)" % half)

    lines = err.splitlines()
    failing = [l for l in lines if l.startswith("failing ") and "failing.lua:" in l and "odd frame" in l]
    runaway = [l for l in lines if l.startswith("runaway ") and "over the time budget of 20 ms" in l]
    most = 1 + int(took // ERROR_LOG_INTERVAL_S)  # the first failure, then one line per interval at most
    t.check(1 <= len(failing) <= most, "failing camera: errors logged with camera and file:line, rate-limited: %d "
            "lines in %.1f s" % (len(failing), took))
    t.check(1 <= len(runaway) <= most and all("runaway.lua:" in l for l in runaway),
            "runaway camera: cuts logged with camera and file:line, rate-limited: %d lines in %.1f s"
            % (len(runaway), took))
    t.check(not any(l.startswith("good ") and ("error" in l or "budget" in l) for l in lines),
            "nothing about the neighbours' failures is logged under the good camera")
    t.done()


main()
