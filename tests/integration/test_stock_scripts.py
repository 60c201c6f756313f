"""test_stock_scripts.py — the stock rules in scripts/ on generated clips whose truth is known to the frame:
zone_intrusion, line_crossing, loitering and tamper. Objects are solid boxes overlaid on grey with ffmpeg, moving
along piecewise-linear paths in whole even pixels per frame, so where each one is at every frame is known
exactly; tamper covers, blurs and shifts a still textured picture over known frames. Each rule's episodes are
checked against that truth (times within MAX_ERR frames, counts, directions, reasons), with complete versions,
strictly rising updated_at and previews that decode; each rule also refuses bad params in one line."""
import base64
import json
import os
import subprocess

from vigiltest import Suite, run, read_versions, by_episode, SRC

W, H, FPS = 640, 360, 25
FRAME_MS = 1000 // FPS
MAX_ERR = 3  # frames: the most an episode time may be off its truth
SCRIPTS = os.path.join(SRC, "scripts")
ERRORS = {}  # rule -> [(what, error in frames)], printed at the end


# ---------- scenes: boxes moving on known paths ----------

class Obj:
    """A solid box moving through keyframes [(frame, x, y), ...] (pixels of the 640x360 clip, top-left corner),
    linearly in between, visible from the first keyframe's frame to the last one's."""

    def __init__(self, name, w, h, keys, color="white"):
        self.name, self.w, self.h, self.keys, self.color = name, w, h, keys, color
        for (n0, x0, y0), (n1, x1, y1) in zip(keys, keys[1:]):
            assert n1 > n0 and (x1 - x0) % (n1 - n0) == 0 and (y1 - y0) % (n1 - n0) == 0, "whole pixels per frame"
            assert x0 % 2 == 0 and y0 % 2 == 0 and ((x1 - x0) // (n1 - n0)) % 2 == 0 and ((y1 - y0) // (n1 - n0)) % 2 == 0, \
                "even positions (chroma subsampling moves overlays in steps of 2)"
        self.first, self.last = keys[0][0], keys[-1][0]

    def pos(self, n):
        if n < self.first or n > self.last:
            return None
        for (n0, x0, y0), (n1, x1, y1) in zip(self.keys, self.keys[1:]):
            if n0 <= n <= n1:
                return x0 + (x1 - x0) // (n1 - n0) * (n - n0), y0 + (y1 - y0) // (n1 - n0) * (n - n0)
        return self.keys[-1][1], self.keys[-1][2]

    def box(self, n):
        """The visible part at frame n, (x0, y0, x1, y1) in pixels, or None."""
        p = self.pos(n)
        if p is None:
            return None
        x0, y0, x1, y1 = max(0, p[0]), max(0, p[1]), min(W, p[0] + self.w), min(H, p[1] + self.h)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    def expr(self, axis):
        i = 1 if axis == "x" else 2
        out = str(self.keys[-1][i])
        for (n0, *a), (n1, *b) in reversed(list(zip(self.keys, self.keys[1:]))):
            out = "if(lt(N,%d),%d+%d*(N-%d),%s)" % (n1, a[i - 1], (b[i - 1] - a[i - 1]) // (n1 - n0), n0, out)
        return out.replace("N", "round(t*%d)" % FPS)


def make_scene(path, frames, objects):
    graph, last = ["color=c=0x808080:s=%dx%d:r=%d[v0]" % (W, H, FPS)], "v0"
    for i, o in enumerate(objects):
        graph.append("color=c=%s:s=%dx%d:r=%d[o%d]" % (o.color, o.w, o.h, FPS, i))
        graph.append("[%s][o%d]overlay=x='%s':y='%s':enable='between(round(t*%d),%d,%d)'[v%d]"
                     % (last, i, o.expr("x"), o.expr("y"), FPS, o.first, o.last, i + 1))
        last = "v%d" % (i + 1)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-filter_complex", ";".join(graph), "-map", "[%s]" % last,
                    "-frames:v", str(frames), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(2 * FPS), path],
                   check=True)
    return path


def inside(poly, x, y):
    """Even-odd rule, as vigil's zone:contains."""
    res, j = False, len(poly) - 1
    for i in range(len(poly)):
        (xi, yi), (xj, yj) = poly[i], poly[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            res = not res
        j = i
    return res


def distance_to_edges(poly, x, y):
    best = 1e9
    for (ax, ay), (bx, by) in zip(poly, poly[1:] + poly[:1]):
        dx, dy = bx - ax, by - ay
        u = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
        best = min(best, ((ax + u * dx - x) ** 2 + (ay + u * dy - y) ** 2) ** 0.5)
    return best


def ref_point(box, point):
    x0, y0, x1, y1 = box
    return ((x0 + x1) / 2, y1 if point == "bottom" else (y0 + y1) / 2)


def inside_frames(t, obj, zone, point, frames, label):
    """The frames where obj's reference point is inside zone (frame fractions); checks the scene leaves no
    doubt: the point is never within 2.5 pixels (more than one analysis pixel) of the zone's edge."""
    poly = [(x * W, y * H) for x, y in zone]
    out = set()
    for n in range(frames):
        b = obj.box(n)
        if b is None:
            continue
        x, y = ref_point(b, point)
        if distance_to_edges(poly, x, y) < 2.5:
            t.check(False, "%s: scene: %s's point (%g, %g) at frame %d is within 2.5 px of the zone's edge" % (label, obj.name, x, y, n))
        if inside(poly, x, y):
            out.add(n)
    return out


# ---------- shared checks ----------

def run_rule(t, name, clip, params, label):
    out = t.path("%s.jsonl" % label.replace("/", "-"))
    r = run(["replay", clip, "--script", os.path.join(SCRIPTS, name + ".lua"), "--params", json.dumps(params),
             "--start", "0", "--media", "cam", "--out", out])
    t.check(r.returncode == 0, "%s: replay exits 0 (%s)" % (label, r.stderr.strip()[-500:]))
    t.check(not any(" error" in l or "warn" in l for l in r.stderr.splitlines()),
            "%s: no error or warning logged: %s" % (label, r.stderr.strip()[-800:]))
    if not os.path.exists(out):
        return []
    eps = list(by_episode(read_versions(out)).values())
    eps.sort(key=lambda vs: vs[0]["opened_at"])
    for vs in eps:
        check_versions(t, vs, label)
    return eps


def check_versions(t, vs, label):
    eid = vs[0]["episode_id"]
    ups = [v["updated_at"] for v in vs]
    t.check(all(b > a for a, b in zip(ups, ups[1:])), "%s %s: updated_at strictly rises" % (label, eid))
    t.check(all(v["opened_at"] == vs[0]["opened_at"] for v in vs), "%s %s: opened_at never changes" % (label, eid))
    t.check(all("closed_at" not in v for v in vs[:-1]) and "closed_at" in vs[-1],
            "%s %s: closed, and only the last version" % (label, eid))
    t.check(all(v["updated_at"] >= v["opened_at"] for v in vs), "%s %s: updated_at >= opened_at" % (label, eid))


def decode(t, b64, label):
    """(width, height, rgb bytes) of a base64 JPEG decoded by djpeg, or None."""
    if not t.check(isinstance(b64, str) and b64, "%s: has a preview" % label):
        return None
    p = subprocess.run(["djpeg", "-pnm"], input=base64.b64decode(b64), capture_output=True)
    if not t.check(p.returncode == 0 and p.stdout.startswith(b"P6"), "%s: djpeg decodes it (%s)" % (label, p.stderr[:200])):
        return None
    parts = p.stdout.split(b"\n", 3)
    w, h = map(int, parts[1].split())
    return w, h, parts[3]


def white_fraction(img):
    w, h, px = img
    n = w * h
    return sum(1 for i in range(0, 3 * n, 3) if px[i] > 200 and px[i + 1] > 200 and px[i + 2] > 200) / n


def check_time(t, rule, what, got, truth_frame, label):
    """got (unix ms) against the truth frame; records the error in frames."""
    if got is None:
        t.check(False, "%s: %s missing" % (label, what))
        return
    err = (got - truth_frame * FRAME_MS) / FRAME_MS
    ERRORS.setdefault(rule, []).append((what, err))
    t.check(abs(err) <= MAX_ERR, "%s: %s = %d, truth frame %d (%d ms): off by %.2f frames"
            % (label, what, got, truth_frame, truth_frame * FRAME_MS, err))


def reasons(version):
    """(Central's close_reason, the finer payload.close_reason) of a version (docs/lua-api.md, "Why an episode closed")."""
    return version.get("close_reason"), version.get("payload", {}).get("close_reason")


def central_detection(d, version):
    """One item of Central's detections: a known class, seen at a frame of the episode, a box in fractions."""
    box = d.get("appearance", {}).get("box", {})
    return (d.get("object_class") in ("human", "vehicle", "face", "license_plate")
            and isinstance(d.get("detected_at"), int) and version["opened_at"] <= d["detected_at"] <= version["updated_at"]
            and set(box) == {"top", "left", "bottom", "right"}
            and 0 <= box["left"] < box["right"] <= 1 and 0 <= box["top"] < box["bottom"] <= 1
            and ("confidence" not in d or 0 <= d["confidence"] <= 1))


def check_bad_params(t, rule, clip, params, needle):
    script = os.path.join(SCRIPTS, rule + ".lua")
    r = run(["replay", clip, "--script", script, "--params", json.dumps(params), "--out", t.path("bad.jsonl")])
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    t.check(r.returncode != 0, "%s bad params %s: non-zero exit" % (rule, params))
    t.check(len(lines) == 1 and rule + ".lua" in lines[0] and needle in lines[0],
            "%s bad params: one line naming %s.lua and %r, got %r" % (rule, rule, needle, r.stderr))


# ---------- zone_intrusion ----------

ZONE = [[0.5, 0.3], [0.8, 0.3], [0.85, 0.9], [0.45, 0.9]]


def zone_truth(t, objects, frames, point, min_frames, quiet, label):
    """Episodes [(open frame, last inside frame, max objects, object names)], simulating the rule on the true
    positions: an object counts from the first of min_frames frames in a row inside."""
    ins = {o.name: inside_frames(t, o, ZONE, point, frames, label) for o in objects}
    counted = {}  # name -> frames it counts as inside
    for name, fr in ins.items():
        c = set()
        for n in sorted(fr):
            run_start = n
            while run_start - 1 in fr:
                run_start -= 1
            if n - run_start + 1 >= min_frames:
                c.add(n)
        counted[name] = c
    episodes, cur = [], None
    for n in range(frames):
        now = [name for name in counted if n in counted[name]]
        if now:
            if cur is None:
                first = min(min(k for k in range(n - min_frames + 1, n + 1) if k in ins[nm] and all(j in ins[nm] for j in range(k, n + 1))) for nm in now)
                cur = [first, n, len(now), set(now)]
            cur[1] = n
            cur[2] = max(cur[2], len(now))
            cur[3] |= set(now)
        elif cur is not None and n - cur[1] >= quiet:
            episodes.append(cur)
            cur = None
    if cur is not None:
        episodes.append(cur)
    return episodes


def test_zone_intrusion(t):
    frames = 340
    objects = [
        Obj("A", 40, 80, [(20, -44, 102), (120, 756, 102)]),                 # walks right across the zone
        Obj("B", 40, 80, [(50, 644, 210), (150, -156, 210)]),                # walks left across it below A
        Obj("C", 40, 80, [(180, 400, -80), (200, 400, 80), (210, 400, 80)]), # comes into the zone, vanishes there
        Obj("D", 40, 120, [(250, 96, 210), (330, 736, 210)]),                # tall: its centre crosses the zone, not its feet
    ]
    clip = make_scene(t.path("zone.mp4"), frames, objects)
    for point in ("bottom", "center"):
        label = "zone_intrusion/" + point
        params = {"zone": ZONE, "name": "yard", "point": point, "min_frames": 3, "quiet_ms": 1000}
        if point == "bottom":
            params["object_class"] = "human"  # detections in Central's schema; "center": no class, boxes in payload
        eps = run_rule(t, "zone_intrusion", clip, params, label)
        truth = zone_truth(t, objects, frames, point, 3, 1000 // FRAME_MS, label)
        t.check(len(truth) == (2 if point == "bottom" else 3), "%s: scene: %d episodes in truth" % (label, len(truth)))
        t.check(len(eps) == len(truth), "%s: %d episodes, truth %d: %s" % (label, len(eps), len(truth),
                [(e[0]["opened_at"], e[-1].get("closed_at")) for e in eps]))
        for vs, (first, last, most, names) in zip(eps, truth):
            l = "%s episode %s" % (label, sorted(names))
            check_time(t, "zone_intrusion", "opened_at", vs[0]["opened_at"], first, l)
            check_time(t, "zone_intrusion", "closed_at", vs[-1].get("closed_at"), last, l)
            p = vs[-1]["payload"]
            t.check(vs[-1]["episode_type"] == "zone_intrusion" and p.get("zone") == "yard", "%s: type and zone name" % l)
            t.check(p.get("max_objects") == most, "%s: max_objects %s, truth %d" % (l, p.get("max_objects"), most))
            t.check(len(p.get("tracks", [])) == len(names) and p.get("track_count") == len(names),
                    "%s: track ids %s for %d objects" % (l, p.get("tracks"), len(names)))
            t.check(reasons(vs[-1]) in (("timeout", "clear"), (None, "end_of_stream")), "%s: close reasons %s" % (l, reasons(vs[-1])))
            img = decode(t, vs[-1].get("preview"), l)
            if img:
                t.check(0.05 < white_fraction(img) < 0.9, "%s: the preview shows the object (%.2f white)" % (l, white_fraction(img)))
        # versions while objects are inside carry their boxes: Central's detections with a class, else payload.boxes
        versions = [v for vs in eps for v in vs]
        dets = [d for v in versions for d in v.get("detections", [])]
        if point == "bottom":
            t.check(dets and all(central_detection(d, v) for v in versions for d in v.get("detections", [])),
                    "%s: detections in Central's schema (object_class, detected_at, appearance.box)" % label)
        else:
            boxes = [b for v in versions for b in v["payload"].get("boxes", [])]
            t.check(not dets and boxes and all(0 <= b["x"] <= 1 and 0 <= b["y"] <= 1 for b in boxes),
                    "%s: no class: no detections, the boxes in payload.boxes" % label)

    check_bad_params(t, "zone_intrusion", clip, {"zone": [[0.1, 0.1], [0.9, 0.9]]}, "params.zone = {{0.1, 0.1}, {0.9, 0.9}}")
    check_bad_params(t, "zone_intrusion", clip, {}, "params.zone = nil")
    check_bad_params(t, "zone_intrusion", clip, {"zone": ZONE, "point": "feet"}, 'params.point = "feet"')
    check_bad_params(t, "zone_intrusion", clip, {"zone": ZONE, "quiet_ms": -1}, "params.quiet_ms = -1")


# ---------- line_crossing ----------

LINE = [[0.5, 0.75], [0.5, 0.15]]  # drawn bottom to top: side A is the left half, so left to right is a_to_b


def crossings_truth(t, objects, frames, only, cooldown):
    """[(frame, direction, object)] of the true crossings: the first frame an object's centre is over the line,
    having come from the other side through the segment; a crossing within the cooldown of the object's last one
    (counted or not) is not counted, and an object is counted once."""
    (ax, ay), (bx, by) = [(x * W, y * H) for x, y in LINE]
    length = ((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5
    events = []
    for o in objects:
        side, prev, crossed, counted = None, None, None, False
        for n in range(frames):
            b = o.box(n)
            if b is None:
                continue
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            d = ((bx - ax) * (cy - ay) - (by - ay) * (cx - ax)) / length
            if abs(d) < 2.5:
                t.check(False, "line scene: %s's centre %.1f px from the line at frame %d" % (o.name, d, n))
            s = "a" if d < 0 else "b"
            if side and s != side:
                # where the move meets the line, along a->b
                rx, ry, sx, sy = cx - prev[0], cy - prev[1], bx - ax, by - ay
                u = ((ax - prev[0]) * ry - (ay - prev[1]) * rx) / (rx * sy - ry * sx)
                direction = "a_to_b" if side == "a" else "b_to_a"
                if 0 <= u <= 1 and (crossed is None or n - crossed >= cooldown) and not counted:
                    crossed = n
                    if only in ("both", direction):
                        events.append((n, direction, o.name))
                        counted = True
            side, prev = s, (cx, cy)
    return sorted(events)


def test_line_crossing(t):
    frames = 300
    objects = [
        Obj("P1", 40, 80, [(10, 104, 100), (60, 504, 100)]),                # left to right: a_to_b
        Obj("P2", 40, 80, [(80, 520, 180), (140, 40, 180)]),                # right to left: b_to_a
        Obj("P3", 40, 40, [(150, 104, 300), (200, 504, 300)]),              # below the segment's end: none
        Obj("P4", 40, 80, [(210, 104, 100), (240, 344, 100), (250, 264, 100), (260, 264, 100), (290, 504, 100)]),
        # P4 crosses, turns back over the line within the cooldown, waits, crosses again: counted once
    ]
    clip = make_scene(t.path("line.mp4"), frames, objects)
    for only in ("both", "b_to_a"):
        label = "line_crossing/" + only
        params = {"line": LINE, "name": "door", "cooldown_ms": 1000}
        if only != "both":
            params["direction"] = only
        eps = run_rule(t, "line_crossing", clip, params, label)
        truth = crossings_truth(t, objects, frames, only, 1000 // FRAME_MS)
        t.check(len(truth) == (3 if only == "both" else 1), "%s: scene: %d crossings in truth" % (label, len(truth)))
        t.check(len(eps) == len(truth), "%s: %d crossings, truth %d: %s" % (label, len(eps), len(truth),
                [(e[-1]["opened_at"], e[-1]["payload"].get("direction")) for e in eps]))
        counts = {"a_to_b": 0, "b_to_a": 0}
        tracks = {}
        for vs, (n, direction, name) in zip(eps, truth):
            l = "%s %s at frame %d" % (label, name, n)
            v = vs[-1]
            counts[direction] += 1
            check_time(t, "line_crossing", "opened_at", v["opened_at"], n, l)
            check_time(t, "line_crossing", "closed_at", v.get("closed_at"), n, l)
            p = v["payload"]
            t.check(p.get("direction") == direction, "%s: direction %s, truth %s" % (l, p.get("direction"), direction))
            t.check(p.get("counts") == counts, "%s: counts %s, truth %s" % (l, p.get("counts"), counts))
            t.check(p.get("line") == "door" and v["episode_type"] == "line_crossing", "%s: line name and type" % l)
            t.check(reasons(v) == (None, "crossed"), "%s: close reasons %s: no inactivity" % (l, reasons(v)))
            tracks.setdefault(name, set()).add(p.get("track"))
            img = decode(t, v.get("preview"), l)
            if img:
                t.check(0.05 < white_fraction(img) < 0.9, "%s: the preview shows the object (%.2f white)" % (l, white_fraction(img)))
        t.check(all(len(ids) == 1 for ids in tracks.values()) and len({i for ids in tracks.values() for i in ids}) == len(tracks),
                "%s: one track id per object: %s" % (label, tracks))

    check_bad_params(t, "line_crossing", clip, {"line": [[0.5, 0.1], [0.5, 0.9], [0.2, 0.2]]}, "params.line = {{0.5, 0.1}, {0.5, 0.9}, {0.2, 0.2}}")
    check_bad_params(t, "line_crossing", clip, {"line": LINE, "direction": "up"}, 'params.direction = "up"')
    check_bad_params(t, "line_crossing", clip, {"line": [[0.5, 0.1], [0.5, 1.5]]}, "point 2 is {0.5, 1.5}")


# ---------- loitering ----------

LOITER_ZONE = [[0.3, 0.3], [0.7, 0.3], [0.7, 0.95], [0.3, 0.95]]


def test_loitering(t):
    frames, seconds = 240, 2
    limit = seconds * FPS
    objects = [
        Obj("L1", 40, 80, [(10, 104, 150), (70, 584, 150)]),  # passes through in 1.28 s: no episode
        Obj("L2", 40, 80, [(80, 104, 150), (100, 264, 150), (150, 364, 150), (175, 314, 150), (200, 614, 150)]),
        # L2 walks in, wanders slowly for 3.8 s, walks out
        Obj("L3", 40, 80, [(120, 104, 250), (140, 264, 250), (200, 384, 250)]),
        # L3 walks in while L2 is there, wanders, and vanishes inside: its track is lost
    ]
    clip = make_scene(t.path("loiter.mp4"), frames, objects)
    label = "loitering"
    eps = run_rule(t, "loitering", clip, {"zone": LOITER_ZONE, "seconds": seconds, "name": "bench"}, label)
    truth = []  # (object, entered, last inside, reason)
    for o in objects:
        fr = sorted(inside_frames(t, o, LOITER_ZONE, "bottom", frames, label))
        t.check(fr == list(range(fr[0], fr[-1] + 1)), "loitering scene: %s is inside once, without a gap" % o.name)
        if fr[-1] - fr[0] >= limit:
            truth.append((o.name, fr[0], fr[-1], "left" if fr[-1] < o.last else "lost"))
    t.check([x[0] for x in truth] == ["L2", "L3"], "loitering scene: L2 and L3 loiter, L1 passes: %s" % truth)
    t.check(len(eps) == len(truth), "loitering: %d episodes, truth %d (none for the pass-through): %s"
            % (len(eps), len(truth), [(e[0]["opened_at"], e[-1].get("closed_at")) for e in eps]))
    tracks = set()
    for vs, (name, first, last, reason) in zip(eps, truth):
        l = "loitering %s" % name
        check_time(t, "loitering", "opened_at", vs[0]["opened_at"], first, l)
        check_time(t, "loitering", "first version (dwell reached)", vs[0]["updated_at"], first + limit, l)
        check_time(t, "loitering", "closed_at", vs[-1].get("closed_at"), last, l)
        p = vs[-1]["payload"]
        t.check(reasons(vs[-1]) == ("timeout", reason), "%s: close reasons %s, truth timeout, %s" % (l, reasons(vs[-1]), reason))
        t.check(p.get("zone") == "bench" and vs[-1]["episode_type"] == "loitering", "%s: zone name and type" % l)
        t.check(abs(p.get("dwell_ms", 0) - (last - first) * FRAME_MS) <= MAX_ERR * FRAME_MS,
                "%s: dwell_ms %s, truth %d" % (l, p.get("dwell_ms"), (last - first) * FRAME_MS))
        dwell = [v["payload"]["dwell_ms"] for v in vs]
        t.check(dwell[0] >= seconds * 1000 and dwell == sorted(dwell), "%s: dwell_ms from the limit up: %s..%s" % (l, dwell[0], dwell[-1]))
        t.check(len({v["payload"]["track"] for v in vs}) == 1, "%s: one track" % l)
        tracks.add(p.get("track"))
        img = decode(t, vs[-1].get("preview"), l)
        if img:
            t.check(0.05 < white_fraction(img) < 0.9, "%s: the preview shows the object (%.2f white)" % (l, white_fraction(img)))
    t.check(len(tracks) == len(eps), "loitering: a track id per episode: %s" % tracks)

    check_bad_params(t, "loitering", clip, {"zone": LOITER_ZONE, "seconds": "ten"}, 'params.seconds = "ten"')
    check_bad_params(t, "loitering", clip, {"zone": [[0.1, 0.1], [0.9, 0.9]]}, "params.zone = {{0.1, 0.1}, {0.9, 0.9}}")


# ---------- tamper ----------

def make_tamper_clip(t, frames, covered, blurred, moved):
    """A still testsrc picture, looped: black over the covered frame ranges, blurred over the blurred ones,
    shifted 60 px (of 580, scaled back to 640) over the moved ones."""
    still = t.path("still.png")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=s=%dx%d:r=%d" % (W, H, FPS),
                    "-frames:v", "1", still], check=True)
    def when(ranges):
        return "+".join("between(n,%d,%d)" % r for r in ranges)
    vf = ("crop=%d:%d:x='if(%s,60,0)':y=0,scale=%d:%d,boxblur=luma_radius=8:luma_power=2:enable='%s',"
          "drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='%s'" % (W - 60, H, when(moved), W, H, when(blurred), when(covered)))
    path = t.path("tamper.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-framerate", str(FPS), "-loop", "1", "-i", still, "-vf", vf,
                    "-frames:v", str(frames), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(2 * FPS), path], check=True)
    return path


def mean_rgb(img):
    w, h, px = img
    return sum(px) / len(px)


def test_tamper(t):
    frames, min_frames = 500, 1000 // FRAME_MS
    covered, blurred, moved, brief = (100, 149), (200, 274), (325, 399), (450, 461)  # frames, inclusive
    clip = make_tamper_clip(t, frames, [covered, brief], [blurred], [moved])
    label = "tamper"
    eps = run_rule(t, "tamper", clip, {"learn_seconds": 3, "min_ms": 1000, "moved_ms": 1500}, label)
    truth = [("covered", covered), ("defocused", blurred), ("moved", moved)]  # the brief cover makes none
    t.check(len(eps) == len(truth), "tamper: %d episodes, truth %d (none for the %d ms cover): %s"
            % (len(eps), len(truth), (brief[1] - brief[0] + 1) * FRAME_MS,
               [(e[0]["opened_at"], e[-1].get("closed_at"), e[-1]["payload"].get("reason")) for e in eps]))
    for vs, (reason, (first, last)) in zip(eps, truth):
        l = "tamper %s" % reason
        p = vs[-1]["payload"]
        t.check(p.get("reason") == reason and vs[-1]["episode_type"] == "tamper", "%s: reason %s" % (l, p.get("reason")))
        check_time(t, "tamper", "opened_at", vs[0]["opened_at"], first, l)
        held = 1500 // FRAME_MS if reason == "moved" else min_frames  # moved must hold moved_ms
        check_time(t, "tamper", "first version (held min_ms, moved_ms)", vs[0]["updated_at"], first + held, l)
        check_time(t, "tamper", "closed_at", vs[-1].get("closed_at"), last, l)
        t.check(reasons(vs[-1]) == ("timeout", "ended"), "%s: close reasons %s" % (l, reasons(vs[-1])))
        img = decode(t, vs[-1].get("frame_preview"), l + " frame preview")
        if img:
            t.check(img[0] >= 320 and abs(img[0] / img[1] - W / H) < 0.05, "%s: whole-frame preview %dx%d" % (l, img[0], img[1]))
            dark = mean_rgb(img) < 30
            t.check(dark == (reason == "covered"), "%s: the preview is %s (mean %.0f)" % (l, "dark" if dark else "the scene", mean_rgb(img)))

    check_bad_params(t, "tamper", clip, {"sharpness_ratio": 2}, "params.sharpness_ratio = 2")
    check_bad_params(t, "tamper", clip, {"dark": 200, "bright": 100}, "params.bright = 100")


def main():
    t = Suite("stock_scripts")
    test_zone_intrusion(t)
    test_line_crossing(t)
    test_loitering(t)
    test_tamper(t)
    for rule, errs in sorted(ERRORS.items()):
        print("%s: %s" % (rule, ", ".join("%s %+.2f" % e for e in errs)))
    t.done()


main()
