"""score.py — a rule's episodes against the truth. Interval events (motion, zone, loitering, tamper) match when they
overlap within the tolerance; line crossings match when the episode's time falls within the tolerance of the span
the object is on the line. From the matching: matched, missed, spurious, merged, split, wrong direction or reason,
boundary errors, how late the first version came, how much empty scene an episode covers, and whether each
preview shows the object (via preview.locate)."""
from dataclasses import dataclass, field

import preview as pv


@dataclass
class Score:
    truth: int = 0
    detected: int = 0
    matched: int = 0
    missed: int = 0
    spurious: int = 0
    merged: int = None          # None: does not apply
    split: int = 0
    max_per_event: int = 0
    wrong: int = 0              # wrong direction (line_crossing) or reason (tamper)
    open_err: float = None      # mean |opened_at - truth start| over matched events, ms
    close_err: float = None
    delay: float = None         # mean (first version's updated_at - truth start), ms
    delay_max: int = None
    empty_span: float = None    # longest stretch of empty scene inside one episode, s
    counts: dict = None         # line_crossing: {"truth": {...}, "detected": {...}}
    count_error: int = None
    previews: dict = field(default_factory=lambda: {"ok": 0, "bad": 0, "missing": 0, "unlocated": 0, "unjudged": 0})
    problems: list = field(default_factory=list)
    error: str = ""             # the replay failed
    logged: str = ""            # an error the replay logged (a failed callback)
    seconds: float = 0.0

    @property
    def previews_bad(self):
        p = self.previews
        return p["bad"] + p["missing"] + p["unlocated"]


def _s(ms):
    return "%.2f s" % (ms / 1000.0)


def label(ev):
    """A short name for a truth event: who (or the tamper reason) and when."""
    who = "+".join(ev.objects) or ev.reason or ev.cls
    if ev.at is not None:
        return "%s going %s at %s" % (who, ev.direction, _s(ev.at))
    return "%s %.2f-%.2f s" % (who, ev.start / 1000.0, ev.end / 1000.0)


def _mean(xs):
    return sum(xs) / len(xs) if xs else None


def score_intervals(events, episodes, tol, empty, kind_of=None):
    """events: truth [Event]; episodes: [replay.Episode]; empty: [(a, b)] ms of empty scene; kind_of(episode) ->
    its reason, compared with event.reason when given. Returns (Score, {episode id: [event index]})."""
    s = Score(truth=len(events), detected=len(episodes), merged=0)
    hits = {}
    per_event = [[] for _ in events]
    for ep in episodes:
        idx = [i for i, ev in enumerate(events) if ep.opened_at <= ev.end + tol and ep.closed_at >= ev.start - tol]
        hits[ep.id] = idx
        for i in idx:
            per_event[i].append(ep)
        if not idx:
            s.spurious += 1
            s.problems.append("spurious episode %s-%s" % (_s(ep.opened_at), _s(ep.closed_at)))
        if len(idx) > 1:
            s.merged += 1
            s.problems.append("one episode %s-%s covers %d events: %s" % (
                _s(ep.opened_at), _s(ep.closed_at), len(idx), ", ".join(label(events[i]) for i in idx)))
        if kind_of and idx:
            kinds = {events[i].reason for i in idx}
            if kind_of(ep) not in kinds:
                s.wrong += 1
                s.problems.append("episode %s-%s says %r, truth %s" % (_s(ep.opened_at), _s(ep.closed_at), kind_of(ep),
                                                                      "/".join(sorted(kinds))))
    opens, closes, delays = [], [], []
    for ev, eps in zip(events, per_event):
        if not eps:
            s.missed += 1
            s.problems.append("missed: %s" % label(ev))
            continue
        s.matched += 1
        s.max_per_event = max(s.max_per_event, len(eps))
        if len(eps) > 1:
            s.split += 1
            s.problems.append("split in %d episodes: %s: %s" % (
                len(eps), label(ev), ", ".join("%s-%s" % (_s(e.opened_at), _s(e.closed_at)) for e in eps)))
        opens.append(abs(min(e.opened_at for e in eps) - ev.start))
        closes.append(abs(max(e.closed_at for e in eps) - ev.end))
        delays.append(min(e.first_reported for e in eps) - ev.start)
    s.open_err, s.close_err, s.delay = _mean(opens), _mean(closes), _mean(delays)
    s.delay_max = max(delays) if delays else None
    longest = 0
    for ep in episodes:
        for a, b in empty:
            inside = min(b - tol, ep.closed_at) - max(a + tol, ep.opened_at)
            longest = max(longest, inside)
            if inside >= 2000 and hits[ep.id]:   # (a spurious episode is already said to be one)
                s.problems.append("episode %s-%s covers %.1f s of empty scene (%s-%s)" % (
                    _s(ep.opened_at), _s(ep.closed_at), inside / 1000.0, _s(a), _s(b)))
    s.empty_span = longest / 1000.0
    return s, hits


def direction_names(line):
    """{"a_to_b": "up"/"down", "b_to_a": ...} for a line drawn across the picture (see line_crossing.lua: side A is
    on the left of a->b on the picture, x right and y down)."""
    (ax, ay), (bx, by) = line
    d_above = (bx - ax) * (0.0 - ay) - (by - ay) * (0.5 * (ax + bx) - ax)   # a point straight above the middle
    a_is_above = d_above < 0
    return {"a_to_b": "down" if a_is_above else "up", "b_to_a": "up" if a_is_above else "down"}


def score_crossings(events, episodes, tol, names):
    """events: truth crossings; an episode (time = opened_at) matches a crossing whose on-the-line span it falls in,
    within tol; the same direction is taken first, a crossing still unclaimed next (a wrong direction)."""
    s = Score(truth=len(events), detected=len(episodes))
    claimed = {}
    hits = {}
    for ep in sorted(episodes, key=lambda e: e.opened_at):
        d = names.get(ep.payload.get("direction"), "?")
        cands = [i for i, ev in enumerate(events) if ev.start - tol <= ep.opened_at <= ev.end + tol]
        order = ([i for i in cands if events[i].direction == d and i not in claimed] +
                 [i for i in cands if i not in claimed] + [i for i in cands if events[i].direction == d] + cands)
        if not order:
            s.spurious += 1
            hits[ep.id] = []
            near = min(events, key=lambda ev: (ev.direction != d, abs(ev.at - ep.opened_at)), default=None)
            s.problems.append("spurious crossing %s at %s%s" % (d, _s(ep.opened_at), "" if near is None else
                                                                 " (nearest truth: %s, on the line %s-%s)"
                                                                 % (label(near), _s(near.start), _s(near.end))))
            continue
        i = order[0]
        hits[ep.id] = [i]
        claimed.setdefault(i, []).append(ep)
        if events[i].direction != d:
            s.wrong += 1
            s.problems.append("wrong direction: %s, reported %s at %s" % (label(events[i]), d, _s(ep.opened_at)))
    errs, delays = [], []
    for i, ev in enumerate(events):
        eps = claimed.get(i, [])
        if not eps:
            s.missed += 1
            s.problems.append("missed: %s" % label(ev))
            continue
        s.matched += 1
        s.max_per_event = max(s.max_per_event, len(eps))
        if len(eps) > 1:
            s.split += 1
            s.problems.append("counted %d times: %s (at %s)" % (len(eps), label(ev),
                                                                ", ".join(_s(e.opened_at) for e in eps)))
        errs.append(abs(eps[0].opened_at - ev.at))
        delays.append(eps[0].first_reported - ev.at)
    s.open_err = _mean(errs)
    s.close_err = None
    s.delay, s.delay_max = _mean(delays), (max(delays) if delays else None)
    truth_counts = {"down": sum(e.direction == "down" for e in events), "up": sum(e.direction == "up" for e in events)}
    got = {"down": 0, "up": 0}
    for ep in episodes:
        d = names.get(ep.payload.get("direction"))
        if d in got:
            got[d] += 1
    s.counts = {"truth": truth_counts, "detected": got}
    s.count_error = sum(abs(truth_counts[k] - got[k]) for k in got)
    return s, hits


def judge_previews(s, truth, episodes, hits, events, frames):
    """Fills s.previews: for each episode that matched truth, whether its preview shows one of the objects of the
    events it matched at preview_timestamp. frames: {ms: grey frame} from preview.frames_at."""
    for ep in episodes:
        idx = hits.get(ep.id) or []
        if not idx:
            continue
        if not ep.preview:
            s.previews["missing"] += 1
            s.problems.append("no preview: episode %s-%s" % (_s(ep.opened_at), _s(ep.closed_at)))
            continue
        names = {n for i in idx for n in events[i].objects}
        boxes = truth.boxes_at(ep.preview_ts, names)
        if not boxes and (truth.generated or any(a + truth.tol_ms <= ep.preview_ts <= b - truth.tol_ms
                                                 for a, b in truth.empty)):
            s.previews["bad"] += 1          # exact truth, or an annotated empty span: nothing to show then
            s.problems.append("preview of episode %s-%s is of %s, when %s not in view" % (
                _s(ep.opened_at), _s(ep.closed_at), _s(ep.preview_ts), "+".join(sorted(names)) or "nothing is"))
            continue
        frame = frames.get(ep.preview_ts)
        if not boxes or frame is None:
            s.previews["unjudged"] += 1
            continue
        img = pv.decode_jpeg(ep.preview)
        box, score = pv.locate(img, frame) if img is not None else (None, 0.0)
        if box is None:
            s.previews["unlocated"] += 1
            s.problems.append("preview of episode %s-%s (frame %s) not found in that frame (best match %.2f)" % (
                _s(ep.opened_at), _s(ep.closed_at), _s(ep.preview_ts), score))
            continue
        results = [pv.overlap_ok(box, b) for b in boxes]
        if any(r[0] for r in results):
            s.previews["ok"] += 1
        else:
            held, filled = max((r[1], r[2]) for r in results)
            s.previews["bad"] += 1
            s.problems.append("preview of episode %s-%s (frame %s) crop %s holds %.0f%% of the object, which fills "
                              "%.0f%% of it" % (_s(ep.opened_at), _s(ep.closed_at), _s(ep.preview_ts),
                                               "(%.2f, %.2f, %.2f, %.2f)" % box, 100 * held, 100 * filled))
