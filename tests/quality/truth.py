"""truth.py — what really happens in an input, in one shape for generated scenes and annotated clips: events (start
and end in ms from the clip's start), the objects' boxes over time, line crossings, zone occupancy, tamper spans and
the empty stretches; and the loader of the hand-made truth files in truth/ for the real clips."""
import json
import os
from dataclasses import dataclass, field


@dataclass
class Event:
    start: int                  # ms from the clip's start
    end: int                    # ms, inclusive (the last frame)
    cls: str                    # vehicle, hand, person, object, camera
    objects: list               # names of the tracks taking part
    direction: str = None       # crossings: "up" or "down" in the picture
    at: int = None              # crossings: ms of the first frame past the line
    reason: str = None          # tamper: covered, defocused, moved
    note: str = ""              # what was seen, one line


@dataclass
class Track:
    """One object's boxes (x, y, w, h in frame fractions) over time: every frame (exact_ms = the frame period) or
    keyframes annotated by eye, interpolated in between."""
    name: str
    cls: str
    boxes: list                 # [(ms, (x, y, w, h))], sorted
    exact_ms: int = 0           # generated: boxes at every frame, this far apart
    max_gap_ms: int = 700       # keyframes: interpolate only between keys this close
    margin_ms: int = 300        # keyframes: hold the first/last key this long outside the keyed span

    def box_at(self, t):
        """The box at t ms, or None when unknown (absent, or too far from an annotated moment)."""
        if not self.boxes:
            return None
        if self.exact_ms:
            lo, hi = 0, len(self.boxes)
            while lo < hi:
                mid = (lo + hi) // 2
                if self.boxes[mid][0] < t:
                    lo = mid + 1
                else:
                    hi = mid
            best = [self.boxes[i] for i in (lo - 1, lo) if 0 <= i < len(self.boxes)]
            best = min(best, key=lambda kb: abs(kb[0] - t))
            return best[1] if abs(best[0] - t) <= self.exact_ms // 2 else None
        first, last = self.boxes[0], self.boxes[-1]
        if t <= first[0]:
            return first[1] if first[0] - t <= self.margin_ms else None
        if t >= last[0]:
            return last[1] if t - last[0] <= self.margin_ms else None
        for (t0, b0), (t1, b1) in zip(self.boxes, self.boxes[1:]):
            if t0 <= t <= t1:
                if t1 - t0 > self.max_gap_ms:
                    return b0 if t - t0 <= self.margin_ms else b1 if t1 - t <= self.margin_ms else None
                a = (t - t0) / (t1 - t0)
                return tuple(p + a * (q - p) for p, q in zip(b0, b1))
        return None


@dataclass
class Truth:
    name: str
    clip: str
    generated: bool
    frame_ms: float
    tol_ms: int                 # matching tolerance: 1 frame (generated), 500 ms (real)
    duration_ms: int
    size: tuple
    tracks: dict                # name -> Track
    visits: list                # [Event]: each object's time in view
    crossings: list             # [Event]: start..end = the box is on the line; at = the centre passed it
    empty: list                 # [(a, b)]: nothing in view between a and b ms
    zone: list = None           # the polygon the zone rules get (frame fractions)
    zone_runs: list = field(default_factory=list)  # [Event]: one object's stay in the zone
    tamper: list = field(default_factory=list)     # [Event] with reason
    tags: set = field(default_factory=set)
    what: str = ""
    notes: list = field(default_factory=list)

    def activity(self):
        """Visits merged where they overlap: a rule that reports "something is happening" sees one event."""
        return merge_events(self.visits, self.frame_ms)

    def zone_events(self):
        return merge_events(self.zone_runs, self.frame_ms)

    def zone_empty(self):
        return complement([(e.start, e.end) for e in self.zone_events()], 0, self.duration_ms)

    def dwell_events(self, seconds):
        return [e for e in self.zone_runs if e.end - e.start >= seconds * 1000]

    def tamper_empty(self):
        return complement([(e.start, e.end) for e in self.tamper], 0, self.duration_ms)

    def boxes_at(self, t, names=None):
        """Boxes of the objects (all, or those named) known at t ms."""
        out = []
        for name, track in self.tracks.items():
            if names is None or name in names:
                b = track.box_at(t)
                if b:
                    out.append(b)
        return out


def merge_intervals(intervals, gap=0):
    """[(a, b)] -> sorted, merged where they overlap or are at most gap apart."""
    out = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [tuple(x) for x in out]


def merge_events(events, gap=0):
    out = []
    for e in sorted(events, key=lambda e: e.start):
        if out and e.start <= out[-1].end + gap:
            m = out[-1]
            m.end = max(m.end, e.end)
            m.objects = m.objects + [o for o in e.objects if o not in m.objects]
            m.note = m.note + "; " + e.note
        else:
            out.append(Event(e.start, e.end, e.cls, list(e.objects), note=e.note))
    return out


def complement(intervals, start, end):
    """The gaps between the merged intervals within [start, end]."""
    out, t = [], start
    for a, b in merge_intervals(intervals):
        if a > t:
            out.append((t, a))
        t = max(t, b)
    if end > t:
        out.append((t, end))
    return out


# ---------- the real clips' truth files ----------

def _ms(seconds):
    return int(round(seconds * 1000))


def load_real(path, clip):
    """A truth file from truth/ (see truth/README.md for its fields) as a Truth for the clip at path clip."""
    with open(path) as f:
        d = json.load(f)
    tracks, visits, crossings = {}, [], []
    for e in d["events"]:
        keys = [(_ms(b[0]), tuple(b[1:5])) for b in e.get("boxes", [])]
        tracks[e["id"]] = Track(e["id"], e["class"], sorted(keys))
        visits.append(Event(_ms(e["start"]), _ms(e["end"]), e["class"], [e["id"]], note=e["seen"]))
        c = e.get("crossing")
        if c:
            a, b = c["on_line"]
            crossings.append(Event(_ms(a), _ms(b), e["class"], [e["id"]], direction=c["direction"], at=_ms(c["at"]),
                                   note="%s crosses the line going %s at about %.1f s"
                                   % (e["id"], c["direction"], c["at"])))
    duration = _ms(d["duration"])
    empty = [(_ms(a), _ms(b)) for a, b in d["empty"]]
    for a, b in empty:
        for v in visits:
            if v.start < b and v.end > a:
                raise ValueError("%s: empty span %.2f-%.2f s overlaps event %s"
                                 % (path, a / 1000, b / 1000, v.objects[0]))
    covered = merge_intervals([(v.start, v.end) for v in visits] + empty)
    if covered != [(0, duration)]:
        raise ValueError("%s: events and empty spans do not tile the clip: %s" % (path, covered))
    # the zone rules run with the whole frame as their zone and the box centre as the point: an object is in
    # the zone exactly while it is in view
    zone_runs = [Event(v.start, v.end, v.cls, list(v.objects), note=v.note) for v in visits]
    return Truth(name=os.path.splitext(os.path.basename(clip))[0], clip=clip, generated=False,
                 frame_ms=1000.0 / d["fps"], tol_ms=500, duration_ms=duration, size=tuple(d["size"]),
                 tracks=tracks, visits=visits, crossings=crossings, empty=empty,
                 zone=[[0, 0], [1, 0], [1, 1], [0, 1]], zone_runs=zone_runs, tamper=[],
                 tags={"objects", "zone"} | ({"line"} if crossings else set()), what=d["what"],
                 notes=d.get("notes", []))
