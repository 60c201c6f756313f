"""test_live_reload.py — a rule edited while `vigil run` pulls a real RTSP stream is hot-reloaded without
touching the stream.

Two cameras run the same rule file: "watched" (watch on, the default) and "pinned" ("watch": false). While
they run, the file is replaced the way editors save it (write a temporary file, rename it over): first with a
syntax error, then with version 2. Checked: the broken version is refused with file:line and version 1 keeps
running; version 2 takes over between two frames with the open episode and vigil.keep handed to it (one
episode, its frame counter without a gap); the camera kept its one RTSP session (1 connection, 0 lost); the
pinned camera never reloads and stays on version 1.

Reload scope: a third camera, "other", runs other.lua from the same directory, which requires helper.lua. Saving
rule.lua reloads neither it nor the pinned one; saving helper.lua reloads "other" once and not "watched"."""
from vigiltest import (Suite, write, read_versions, by_episode, replace_atomically, RELOAD_V1 as V1,
                       RELOAD_BROKEN as BROKEN, RELOAD_V2 as V2)
from livetest import Output, Run, Server, config

OTHER = """
local vigil = require "vigil"
local helper = require "helper"
function on_frame(frame) end
function on_reload(keep) vigil.log("other took over with helper " .. helper.version) end
"""

# Each step waits for the event the step before caused (frames, a log line), never for a fixed time.
PINNED_LEAST = 100  # frames of the pinned camera
AFTER_V2 = 25       # frames version 2 handles before the run stops


def payloads(out, media):
    versions = [(rec, raw) for rec, raw in read_versions(out) if rec["media"] == media]
    return by_episode(versions), [rec["payload"] for rec, _ in versions if "payload" in rec and "closed_at" not in rec]


def main():
    t = Suite("live_reload")
    rule = write(t.path("rule.lua"), V1)
    write(t.path("other.lua"), OTHER)
    helper = write(t.path("helper.lua"), "return {version = 1}\n")
    server = Server(t, "live", ["/cam"], stamp=False)
    try:
        cfg, out = config(t, "reload", [
            {"media": "watched", "url": server.url(), "script": "rule.lua"},
            {"media": "pinned", "url": server.url(), "script": "rule.lua", "watch": False},
            {"media": "other", "url": server.url(), "script": "other.lua"},
        ])
        v = Run(cfg)
        output = Output(out)

        def frames(media, version=None):
            return [r for r in output.read() if r["media"] == media and "closed_at" not in r
                    and (version is None or r["payload"].get("version") == version)]

        t.check(v.until(lambda: len(frames("watched")) >= 25), "version 1 runs on the live stream")
        replace_atomically(rule, BROKEN)
        t.check(v.wait_line(lambda l: "reload failed" in l), "the broken edit is noticed")
        replace_atomically(rule, V2)
        t.check(v.wait_line(lambda l: "v2 took over" in l), "version 2 is loaded")
        v.until(lambda: len(frames("watched", 2)) >= AFTER_V2 and len(frames("pinned")) >= PINNED_LEAST)
        replace_atomically(helper, "return {version = 2}\n")
        t.check(v.wait_line(lambda l: "other took over with helper 2" in l), "saving helper.lua reloads other.lua")
        rc, err = v.stop()
    finally:
        server.stop()
    t.check(rc == 0, "the run exits 0 (rc %s): %s" % (rc, err[-1000:]))
    lines = err.splitlines()

    failed = [l for l in lines if "reload failed" in l]
    t.check(len(failed) == 1 and failed[0].startswith("watched ") and "rule.lua:2:" in failed[0],
            "the broken version is refused once, with camera and file:line: %r" % failed)
    t.check(sum(l.startswith("watched ") and "reloaded" in l for l in lines) == 1, "version 2 is swapped in once")
    t.check(any(l.startswith("watched ") and "v2 took over" in l for l in lines), "on_reload ran in version 2")

    episodes, seen = payloads(out, "watched")
    t.check(len(episodes) == 1, "the open episode stays one episode across the reloads (%d)" % len(episodes))
    versions = [p["version"] for p in seen]
    t.check(versions and versions[0] == 1 and versions[-1] == 2 and versions == sorted(versions),
            "watched: version 1, then version 2 (%d and %d frames)" % (versions.count(1), versions.count(2)))
    ns = [p["n"] for p in seen]
    t.check(ns == list(range(1, len(ns) + 1)), "watched: vigil.keep carried the counter, no frame lost in the swaps "
            "(%s..%s, %d values)" % (ns[:1], ns[-1:], len(ns)))
    report = [l for l in lines if l.startswith("watched ") and " connections, " in l]
    t.check(len(report) == 1 and " 1 connections, 0 lost" in report[0],
            "watched: the RTSP session was never dropped: %r" % report)

    _, pinned = payloads(out, "pinned")
    t.check(len(pinned) >= PINNED_LEAST and all(p["version"] == 1 for p in pinned),
            "pinned: stays on version 1 (%d frames)"
            % len(pinned))
    t.check(not any(l.startswith("pinned ") and ("reloaded" in l or "reload failed" in l) for l in lines),
            "pinned: never reloads")
    other = [l for l in lines if l.startswith("other ") and ("reload" in l or "took over" in l)]
    t.check(len(other) == 2 and "helper 2" in other[0] and "reloaded" in other[1],
            "other: reloaded once, by its own module, never by rule.lua beside it: %r" % other)
    t.done()


main()
