"""test_episode_schema.py — what reaches Central is what Watcher reads (issue 18). Owns the schema check of
every record and detection the Central stand-in (tests/servers/central_stub.py) accepted from a stock rule.

(a) schema: each stock rule replays a generated scene (boxes moving on straight or piecewise-linear paths, a
    still picture covered twice) to the stand-in. Every accepted record: required fields and their types; the
    id an exact integer above 2^53; opened_at <= updated_at; updated_at strictly growing per episode; closed_at
    set once (last version only) and never changed; close_reason only "timeout", and only on a close for
    inactivity; the finer reason in payload.close_reason as docs/lua-api.md's "Why an episode closed" says for
    the path (inactivity, end of stream); episode_appearance_timestamps.inference_timestamp the wall-clock ms
    the version was made (within the run, not after Central got it); preview a base64 JPEG (SOI, a frame of
    at most 320 px) shown at a time of the episode; frame_preview about 240 lines high. Every detection:
    object_class in Watcher's four, detected_at within [opened_at, updated_at], confidence in [0, 1],
    appearance.box fractions with top < bottom and left < right.
(b) reload: each stock rule, copied beside its own clip, is saved while its episode is open (a real-time
    replay with --watch, as test_script_host.py does): no episode is left open, none overlaps its successor,
    the rule took its episode over (the host closed nothing), and every record passes (a).
(c) SIGTERM: `vigil run` of motion and zone_intrusion on a live camera, stopped while their episodes are open:
    each is closed with payload.close_reason "shutdown" and no close_reason (not inactivity)."""
import base64
import json
import os
import subprocess
import threading
import time

from vigiltest import (HANG_S, SLACK_S, SRC, VIGIL, Suite, CentralStub, run, read_versions, by_episode, write,
                       replace_atomically, wait_for)
from livetest import RTCP_WAIT_MS, Output, Run, Server

W, H, FPS = 640, 360, 25
START = 1700000000000
KEY = "schema-Key-8c31f0"
SCRIPTS = os.path.join(SRC, "scripts")
CLASSES = {"human", "vehicle", "face", "license_plate"}  # Watcher's object classes
FRAME_PREVIEW_LINES = 240  # lua-api.md: ep:frame_preview, "about opts.lines (default 240) lines"
PREVIEW_MAX_SIZE = 320     # lua-api.md: ep:preview, "opts.max_size (longest side, default 320)"
# lua-api.md, "Hot reload": a change is reloaded once the directory has been quiet for 150 ms. An episode open
# when the rule is saved must stay open that long plus SLACK_S for the save to land mid-episode: the reload
# scenes keep it open at least 7 s of stream time after it opened (wall time under --realtime: no less).
RELOAD_SETTLE_S = 0.15
FIRST_OPEN_S = 7
assert FIRST_OPEN_S >= RELOAD_SETTLE_S + SLACK_S


# ---------- scenes ----------

def path_expr(keys, axis):
    """ffmpeg expression of t for a piecewise-linear path [(t, x, y), ...]: x (axis 1) or y (axis 2)."""
    out = str(keys[-1][axis])
    for (t0, *a), (t1, *b) in reversed(list(zip(keys, keys[1:]))):
        v0, v1 = a[axis - 1], b[axis - 1]
        out = "if(lt(t,%g),%g+%g*(t-%g),%s)" % (t1, v0, (v1 - v0) / (t1 - t0), t0, out)
    return out


def scene(t, name, seconds, objects):
    """A grey clip of white boxes; each object is (w, h, [(t, x, y), ...]) in pixels (top-left corner) and
    seconds, moving linearly between its keys, visible from the first key's time to the last one's."""
    graph, last = ["color=c=0x808080:s=%dx%d:r=%d:d=%g[v0]" % (W, H, FPS, seconds)], "v0"
    for i, (w, h, keys) in enumerate(objects):
        graph.append("color=c=white:s=%dx%d:r=%d:d=%g[o%d]" % (w, h, FPS, seconds, i))
        graph.append("[%s][o%d]overlay=x='%s':y='%s':enable='gte(t,%g)*lt(t,%g)'[v%d]"
                     % (last, i, path_expr(keys, 1), path_expr(keys, 2), keys[0][0], keys[-1][0], i + 1))
        last = "v%d" % (i + 1)
    path = t.path(name + ".mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-filter_complex", ";".join(graph), "-map", "[%s]" % last,
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(2 * FPS), path], check=True)
    return path


def covered_scene(t, name, seconds, covers):
    """A still test picture, black over the (from, to) seconds in covers."""
    still = t.path("still.png")
    if not os.path.exists(still):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=s=%dx%d:r=%d" % (W, H, FPS),
                        "-frames:v", "1", still], check=True)
    when = "+".join("gte(t,%g)*lt(t,%g)" % c for c in covers)
    path = t.path(name + ".mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-framerate", str(FPS), "-loop", "1", "-i", still, "-vf",
                    "drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='%s'" % when, "-t", str(seconds),
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(2 * FPS), path], check=True)
    return path


ZONE = [[0.3, 0.2], [0.7, 0.2], [0.7, 0.95], [0.3, 0.95]]  # bottom-centre x inside 192..448 px
LINE = [[0.5, 0.9], [0.5, 0.1]]                          # drawn bottom to top: left to right is a_to_b
WANDER = [(1.5, 250, 150), (3.5, 380, 150), (5.5, 250, 150), (7.5, 380, 150), (9, 300, 150), (10, 680, 150)]

# rule -> (params, scene seconds, objects or covers) for the schema runs, and the (close_reason,
# payload.close_reason) of each episode in order of opening: lua-api.md's "Why an episode closed"
SCHEMA = {
    "motion": ({}, 10, [(60, 60, [(1, 100, 100), (3, 500, 100)]), (60, 60, [(6, 100, 250), (10, 400, 250)])],
               [("timeout", "quiet"), (None, "end_of_stream")]),
    "zone_intrusion": ({"zone": ZONE, "object_class": "human"}, 10,
                       [(40, 80, [(0.5, -40, 150), (3.5, 680, 150)]), (40, 80, [(6, 100, 200), (10, 300, 200)])],
                       [("timeout", "clear"), (None, "end_of_stream")]),
    "line_crossing": ({"line": LINE, "object_class": "vehicle"}, 8,
                      [(40, 80, [(1, 100, 140), (3, 500, 140)]), (40, 80, [(4, 500, 140), (6, 100, 140)])],
                      [(None, "crossed"), (None, "crossed")]),
    "loitering": ({"zone": ZONE, "seconds": 1.5, "object_class": "human"}, 10,
                  [(40, 80, [(0.5, 20, 150), (1.5, 250, 150), (3.5, 350, 150), (4.5, 640, 150)]),
                   (40, 80, [(6, 20, 200), (7, 250, 200), (10, 350, 200)])],
                  [("timeout", "left"), (None, "end_of_stream")]),
    "tamper": ({"learn_seconds": 3, "min_ms": 1000, "clear_ms": 500}, 12, [(4, 6.5), (9, 12)],
               [("timeout", "ended"), (None, "end_of_stream")]),
}

# rule -> (params, seconds, objects or covers) for the reload runs: the first episode stays open from about
# 1-5 s to 9-10 s, a successor opens after it closed and is open at the end
RELOAD = {
    "motion": ({}, 14, [(60, 60, [(1, 60, 100), (9, 560, 100)]), (60, 60, [(11.5, 100, 250), (14, 400, 250)])]),
    "zone_intrusion": ({"zone": ZONE, "object_class": "human"}, 14,
                       [(40, 80, [(0.5, 20, 150)] + WANDER), (40, 80, [(11.5, 100, 200), (14, 300, 200)])]),
    "loitering": ({"zone": ZONE, "seconds": 1, "object_class": "human"}, 14,
                  # walks on through the zone: one that paces back over where it stood when the new version
                  # started may be seen twice, itself and its ghost, long after the reload (see the report)
                  [(40, 80, [(0.5, 20, 150), (1.5, 160, 150), (9, 440, 150), (10, 680, 150)]),
                   (40, 80, [(11.5, 20, 200), (12.5, 250, 200), (14, 300, 200)])]),
    "tamper": ({"learn_seconds": 3, "min_ms": 1000, "clear_ms": 500}, 14, [(4, 10), (11.5, 14)]),
    # crossings at about 2 s and 8 s: the save after the first lands before the second
    "line_crossing": ({"line": LINE, "object_class": "vehicle"}, 10,
                      [(40, 80, [(1, 100, 140), (3, 500, 140)]), (40, 80, [(6.5, 500, 140), (9.5, 100, 140)])]),
}


def clip_for(t, name, rule, seconds, things):
    if rule == "tamper":
        return covered_scene(t, name, seconds, things)
    return scene(t, name, seconds, things)


# ---------- the schema ----------

def jpeg_size(data):
    """(width, height) from a JPEG's SOF marker, or None when data is not a JPEG (no SOI, no SOF)."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + length
    return None


def picture(b64):
    """(width, height) of a base64 JPEG, or None."""
    try:
        return jpeg_size(base64.b64decode(b64, validate=True)) if isinstance(b64, str) and b64 else None
    except ValueError:
        return None


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_fraction(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1


def record_problems(v, received_ms, started_ms):
    """What is wrong with one accepted record on its own (an empty list when nothing is)."""
    bad = []
    eid = v.get("episode_id")
    if not (is_int(eid) and eid > 2 ** 53):
        bad.append("episode_id %r: an exact integer above 2^53 expected" % (eid,))
    if not (isinstance(v.get("media"), str) and v["media"]):
        bad.append("media %r" % (v.get("media"),))
    for f in ("opened_at", "updated_at"):
        if not is_int(v.get(f)):
            bad.append("%s %r: required integer" % (f, v.get(f)))
    for f in ("closed_at", "preview_timestamp", "frame_preview_timestamp"):
        if f in v and not is_int(v[f]):
            bad.append("%s %r: an integer expected" % (f, v[f]))
    for f, kind in (("episode_type", str), ("payload", dict), ("detections", list)):
        if f in v and not isinstance(v[f], kind):
            bad.append("%s: a %s expected, got %r" % (f, kind.__name__, v[f]))
    if bad:
        return bad
    if not v["opened_at"] <= v["updated_at"]:
        bad.append("opened_at %d > updated_at %d" % (v["opened_at"], v["updated_at"]))
    if "closed_at" in v and not v["opened_at"] <= v["closed_at"] <= v["updated_at"]:
        bad.append("closed_at %d outside [opened_at, updated_at]" % v["closed_at"])
    if "close_reason" in v and (v["close_reason"] != "timeout" or "closed_at" not in v):
        bad.append("close_reason %r: only \"timeout\", only once closed" % v["close_reason"])
    stamp = v.get("episode_appearance_timestamps", {}).get("inference_timestamp")
    if not (is_int(stamp) and started_ms <= stamp <= received_ms):
        bad.append("inference_timestamp %r: the wall-clock ms it was made, within [%d, %d] (run start, received)"
                   % (stamp, started_ms, received_ms))
    size = picture(v.get("preview"))
    if not (size and max(size) <= PREVIEW_MAX_SIZE):
        bad.append("preview: a base64 JPEG of at most %d px expected (%s)" % (PREVIEW_MAX_SIZE, size))
    if not (is_int(v.get("preview_timestamp")) and v["opened_at"] <= v["preview_timestamp"] <= v["updated_at"]):
        bad.append("preview_timestamp %r outside the episode" % (v.get("preview_timestamp"),))
    if "frame_preview" in v:
        size = picture(v["frame_preview"])
        if not (size and abs(size[1] - FRAME_PREVIEW_LINES) <= 8):
            bad.append("frame_preview: a base64 JPEG about %d lines high expected (%s)" % (FRAME_PREVIEW_LINES, size))
    for i, d in enumerate(v.get("detections", [])):
        bad += ["detections[%d]: %s" % (i, p) for p in detection_problems(d, v)]
    return bad


def detection_problems(d, v):
    if not isinstance(d, dict):
        return ["not an object: %r" % (d,)]
    bad = []
    if d.get("object_class") not in CLASSES:
        bad.append("object_class %r not one of %s" % (d.get("object_class"), sorted(CLASSES)))
    if not (is_int(d.get("detected_at")) and v["opened_at"] <= d["detected_at"] <= v["updated_at"]):
        bad.append("detected_at %r outside [opened_at %d, updated_at %d]" % (d.get("detected_at"), v["opened_at"], v["updated_at"]))
    if "confidence" in d and not is_fraction(d["confidence"]):
        bad.append("confidence %r not in [0, 1]" % (d["confidence"],))
    box = d.get("appearance", {}).get("box") if isinstance(d.get("appearance"), dict) else None
    if not (isinstance(box, dict) and all(is_fraction(box.get(k)) for k in ("top", "left", "bottom", "right"))
            and box["top"] < box["bottom"] and box["left"] < box["right"]):
        bad.append("appearance.box %r: fractions with top < bottom, left < right expected" % (box,))
    return bad


def episode_problems(vs):
    """What is wrong with one episode's accepted versions, in arrival order."""
    bad = []
    ups = [v["updated_at"] for v in vs]
    if any(b <= a for a, b in zip(ups, ups[1:])):
        bad.append("updated_at not strictly growing: %s" % ups)
    if len({v["opened_at"] for v in vs}) != 1 or len({v["media"] for v in vs}) != 1:
        bad.append("opened_at or media changed")
    if any("closed_at" in v for v in vs[:-1]):
        bad.append("a version after the closing one (closed_at set twice, or changed after close)")
    if "closed_at" not in vs[-1]:
        bad.append("left open: the last version has no closed_at")
    return bad


def central_episodes(t, label, stub, state, out, started_ms):
    """Checks everything the stand-in accepted (its log, and its state at the end) and that it is what vigil
    emitted; returns the episodes it has, each its versions in arrival order, sorted by opened_at."""
    t.check(state["violations"] == [] and state["ignored"] == 0 and set(state["statuses"]) <= {"200"},
            "%s: the stand-in saw no violation, nothing stale, only 200s: %s %s"
            % (label, state["violations"][:3], state["statuses"]))
    accepted = {}
    problems = []
    for rec, _ in read_versions(stub.log):
        accepted.setdefault(rec["episode_id"], []).append(rec["body"])
        problems += ["episode %s: %s" % (rec["episode_id"], p)
                     for p in record_problems(rec["body"], rec["received_ms"], started_ms)]
    for eid, vs in accepted.items():
        problems += ["episode %s: %s" % (eid, p) for p in episode_problems(vs)]
    t.check(accepted and not problems, "%s: %d records of %d episodes, each in Central's schema: %s"
            % (label, sum(map(len, accepted.values())), len(accepted), problems[:5]))
    emitted = by_episode(read_versions(out))
    t.check(set(emitted) == set(accepted) and all(accepted[e][-1] == emitted[e][-1] for e in emitted),
            "%s: Central has every episode vigil emitted, up to its closing version" % label)
    return sorted(accepted.values(), key=lambda vs: vs[0]["opened_at"])


def reasons(v):
    return v.get("close_reason"), v.get("payload", {}).get("close_reason")


# ---------- (a) the schema, rule by rule ----------

def test_schema(t, rule):
    params, seconds, things, expected = SCHEMA[rule]
    clip = clip_for(t, "schema-" + rule, rule, seconds, things)
    stub = CentralStub(t, "schema-" + rule, KEY)
    out = t.path("schema-%s.jsonl" % rule)
    started = int(time.time() * 1000)
    r = run(["replay", clip, "--script", os.path.join(SCRIPTS, rule + ".lua"), "--params", json.dumps(params),
             "--start", str(START), "--media", rule, "--central", stub.url, "--api-key", KEY,
             "--spool", t.path("schema-%s.spool" % rule), "--out", out])
    state = stub.state()
    stub.stop()
    label = "schema " + rule
    t.check(r.returncode == 0 and not any(" error" in l or "warn" in l for l in r.stderr.splitlines()),
            "%s: replay exits 0, nothing logged as wrong: %s" % (label, r.stderr.strip()[-600:]))
    eps = central_episodes(t, label, stub, state, out, started)
    got = [reasons(vs[-1]) for vs in eps]
    t.check(got == expected, "%s: close reasons per episode %s, lua-api.md says %s" % (label, got, expected))
    if "object_class" in params:
        dets = [d for vs in eps for v in vs for d in v.get("detections", [])]
        t.check(dets and all(d["object_class"] == params["object_class"] for d in dets),
                "%s: %d detections, all of the configured class %s" % (label, len(dets), params["object_class"]))
    print("INFO: %s: %d episodes, %d records at Central (%d requests)"
          % (label, len(eps), sum(map(len, eps)), state["requests"]))


# ---------- (b) saved mid-episode ----------

class SavedMidEpisode:
    """A real-time replay of a copy of a stock rule (--watch) to the stand-in; once its first episode has opened
    (its first version is in --out) the rule is saved again, unchanged but for a comment. Runs in a thread of
    its own: the five rules' replays overlap; the checks come after, in the main thread."""

    def __init__(self, t, rule):
        self.t, self.rule = t, rule
        params, seconds, things = RELOAD[rule]
        self.clip = clip_for(t, "reload-" + rule, rule, seconds, things)
        folder = t.path("reload-" + rule)
        os.makedirs(folder)
        with open(os.path.join(SCRIPTS, rule + ".lua")) as f:
            self.source = f.read()
        self.script = write(os.path.join(folder, rule + ".lua"), self.source)
        self.stub = CentralStub(t, "reload-" + rule, KEY)
        self.out = t.path("reload-%s.jsonl" % rule)
        self.cmd = [VIGIL, "replay", self.clip, "--script", self.script, "--params", json.dumps(params), "--realtime",
                    "--watch", "--start", str(START), "--media", rule, "--central", self.stub.url, "--api-key", KEY,
                    "--spool", t.path("reload-%s.spool" % rule), "--out", self.out]
        self.lines, self.at_reload, self.rc, self.started, self.state = [], None, None, None, None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def running_after(self, cond):
        return wait_for(lambda: cond() or self.proc.poll() is not None, step=0.05) and self.proc.poll() is None

    def run(self):
        self.started = int(time.time() * 1000)
        self.proc = subprocess.Popen(self.cmd, stderr=subprocess.PIPE, text=True)
        reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        reader.start()
        output = Output(self.out)
        if self.running_after(lambda: output.read()):
            replace_atomically(self.script, self.source + "\n-- saved again\n")
            if self.running_after(lambda: any("reloaded" in l for l in self.lines)):
                self.at_reload = list(output.read())  # what had been emitted when the reload was said
        self.proc.wait(timeout=RELOAD[self.rule][1] + HANG_S)
        reader.join()
        self.rc = self.proc.returncode
        self.state = self.stub.state()
        self.stub.stop()

    def check(self):
        t, label = self.t, "reload " + self.rule
        self.thread.join()
        log = "".join(self.lines)
        t.check(self.rc == 0 and sum("reloaded" in l for l in self.lines) == 1,
                "%s: replay exits 0, reloaded once: %s" % (label, log[-600:]))
        seen = self.at_reload or []
        first = seen[0]["episode_id"] if seen else None
        if self.rule == "line_crossing":
            t.check(len(by_episode([(v, "") for v in seen])) == 1,
                    "%s: the save came between the two crossings (%d then)" % (label, len(by_episode([(v, "") for v in seen]))))
        else:
            t.check(seen and not any(v["episode_id"] == first and "closed_at" in v for v in seen),
                    "%s: the save landed while the first episode was open" % label)
        eps = central_episodes(t, label, self.stub, self.state, self.out, self.started)
        t.check(len(eps) >= 2, "%s: the episode saved across and a successor (%d episodes)" % (label, len(eps)))
        left_open = [vs[0]["episode_id"] for vs in eps if "closed_at" not in vs[-1]]
        t.check(not left_open, "%s: no episode left open: %s" % (label, left_open))
        overlaps = [(a[-1].get("closed_at"), b[0]["opened_at"]) for a, b in zip(eps, eps[1:])
                    if not a[-1].get("closed_at", b[0]["opened_at"]) < b[0]["opened_at"]]
        t.check(not overlaps, "%s: no episode overlaps its successor (closed_at, next opened_at): %s" % (label, overlaps))
        t.check("did not take over" not in log and all(reasons(vs[-1])[1] != "reload" for vs in eps),
                "%s: the new version took its episode over: the host closed nothing (%s)"
                % (label, [reasons(vs[-1]) for vs in eps]))
        if self.rule == "line_crossing" and len(eps) >= 2:
            t.check(eps[1][-1]["payload"].get("counts") == {"a_to_b": 1, "b_to_a": 1},
                    "%s: the counts went on across the reload: %s" % (label, eps[1][-1]["payload"].get("counts")))


# ---------- (c) SIGTERM ----------

def test_sigterm(t):
    """Two stock rules on one live camera (a box crossing black from 3 s to 20 s of media time), stopped once each
    has an episode open: they close at SIGTERM with payload.close_reason "shutdown" and no close_reason. (A
    tracking rule whose camera connects after the box appeared may see two objects for a while, the box and
    where it stood in the first frame: each episode is checked, not their count; a loitering phantom could end
    on its own, so loitering's stop path is the one its end-of-stream run in (a) takes.)"""
    server = Server(t, "box", ["/cam"], stamp=False, extra=["--box", "3,20", "--box-clock", "media"])
    stub = CentralStub(t, "sigterm", KEY)
    whole = [[0.02, 0.02], [0.98, 0.02], [0.98, 0.98], [0.02, 0.98]]
    rules = {"m": ("motion", {}), "z": ("zone_intrusion", {"zone": whole, "object_class": "human"})}
    out = t.path("sigterm.jsonl")
    doc = {"node": {"machine_id": 5, "log_level": "info", "spool_dir": t.path("sigterm.spool")},
           "central": {"url": stub.url, "api_key": KEY}, "output": {"file": out},
           "defaults": {"stall_timeout_ms": 3000, "rtcp_wait_ms": RTCP_WAIT_MS},
           "cameras": [{"media": m, "url": server.url(), "script": os.path.join(SCRIPTS, rule + ".lua"), "params": p}
                       for m, (rule, p) in rules.items()]}
    cfg = write(t.path("sigterm.json"), json.dumps(doc))
    started = int(time.time() * 1000)
    vigil = Run(cfg)
    output = Output(out)
    try:
        opened = vigil.until(lambda: {v["media"] for v in output.read()} >= set(rules))
        rc, err = vigil.stop()
    finally:
        server.stop()
    state = stub.state()
    stub.stop()
    t.check(opened and rc == 0, "sigterm: each camera had an episode open, then exit 0 (rc %s): %s" % (rc, err[-800:]))
    eps = central_episodes(t, "sigterm", stub, state, out, started)
    got = sorted((vs[0]["media"], reasons(vs[-1])) for vs in eps)
    t.check({m for m, _ in got} == set(rules) and all(r == (None, "shutdown") for _, r in got),
            "sigterm: every rule's episodes closed with payload.close_reason shutdown, no close_reason: %s" % got)


def main():
    t = Suite("episode_schema")
    saved = [SavedMidEpisode(t, rule) for rule in RELOAD]  # real time: they run while the rest is checked
    for rule in SCHEMA:
        test_schema(t, rule)
    for s in saved:
        s.check()
    test_sigterm(t)
    t.done()


main()
