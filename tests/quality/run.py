#!/usr/bin/python3
"""run.py — the quality harness: which rule runs on which input with which params (RULES), the targets the rules
must meet on the generated scenes (THRESHOLDS), and the run itself: render the generated scenes (scenes.py), load
the real clips' truth (truth/), replay every (rule, input) pair through vigil, score it (score.py), print the
results, write the scorecard (report.py) and check the thresholds.

    run.py [--generated-only] [--check] [--write docs/quality.md] [--src DIR] [--work DIR] [--jobs N] [--only RE]

VIGIL: the vigil binary (default SRC/build/vigil); --src: where scripts/ are (default: this repository);
VIGIL_MEDIA: the real clips (default ../shared/media beside this repository); VIGIL_QUALITY_WORK or --work: where
generated clips are cached and replays write (default: VIGIL_BUILD/quality or the system temp dir)."""
import argparse
import concurrent.futures
import operator
import os
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import preview  # noqa: E402
import replay  # noqa: E402
import report  # noqa: E402
import scenes  # noqa: E402
import score  # noqa: E402
import truth  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
LINE = [[0, 0.5], [1, 0.5]]
FULL_FRAME = [[0, 0], [1, 0], [1, 1], [0, 1]]
REAL_CLIPS = ["car-detection", "bottle-detection"]   # one-by-one-person-detection.mp4 is kept out on purpose

# Which rule runs on which inputs (by tag), scored against which truth, with which params on the generated scenes
# and on the real clips. On the real clips the zone is the whole frame and the point the box centre, so an object
# is "in the zone" exactly while it is in view.
RULES = [
    # rule             inputs  truth        params on the generated scenes / on the real clips
    ("motion",         "all",  "activity",  {},
                                            {}),
    ("line_crossing",  "line", "crossings", {"line": LINE},
                                            {"line": LINE}),
    ("zone_intrusion", "zone", "zone",      {"zone": scenes.ZONE},
                                            {"zone": FULL_FRAME, "point": "center"}),
    ("loitering",      "zone", "dwell",     {"zone": scenes.ZONE, "seconds": scenes.DWELL_SECONDS},
                                            {"zone": FULL_FRAME, "point": "center", "seconds": 10}),
    ("tamper",         "all",  "tamper",    {},
                                            {}),
]

# The targets on the generated scenes, checked by --check. scenes: a tag the scene has ("all" for every one), or
# "-tag" for the scenes without it. Tags: objects (something passes), nuisance (light steps, ramps, speckle, an empty
# scene), tamper (covered, defocused, turned), zone, line. A metric that does not apply (None) fails its check.
THRESHOLDS = [
    # rule             scenes      metric           op    limit  what it means
    ("motion",         "objects",  "missed",        "==", 0,     "every visit is seen"),
    ("motion",         "objects",  "merged",        "==", 0,     "one episode per visit: none covers two visits"),
    ("motion",         "objects",  "max_per_event", "<=", 2,     "a visit is split in at most 2 episodes"),
    ("motion",         "-tamper",  "empty_span",    "<",  4.0,   "no episode spans 4 s or more of empty scene"),
    ("motion",         "nuisance", "spurious",      "==", 0,     "no spurious episode on light steps, ramps, speckle"),
    ("motion",         "objects",  "previews_bad",  "==", 0,     "every preview shows the object"),
    ("line_crossing",  "line",     "count_error",   "==", 0,     "exact count per direction"),
    ("line_crossing",  "line",     "split",         "==", 0,     "no object counted twice"),
    ("line_crossing",  "line",     "previews_bad",  "==", 0,     "every preview shows the object"),
    ("zone_intrusion", "zone",     "missed",        "==", 0,     "every visit to the zone is seen"),
    ("zone_intrusion", "zone",     "merged",        "==", 0,     "one episode per visit: none covers two visits"),
    ("zone_intrusion", "zone",     "split",         "==", 0,     "one episode per visit: none split"),
    ("zone_intrusion", "zone",     "spurious",      "==", 0,     "no episode from a ghost (or from nothing)"),
    ("zone_intrusion", "zone",     "empty_span",    "<",  2.0,   "no episode lasts 2 s past the object leaving"),
    ("zone_intrusion", "zone",     "previews_bad",  "==", 0,     "every preview shows the object"),
    ("loitering",      "zone",     "missed",        "==", 0,     "every dwell is seen"),
    ("loitering",      "zone",     "merged",        "==", 0,     "one episode per dwell: none covers two"),
    ("loitering",      "zone",     "split",         "==", 0,     "one episode per dwell: none split"),
    ("loitering",      "zone",     "spurious",      "==", 0,     "no episode from a ghost (or from a pass)"),
    ("loitering",      "zone",     "empty_span",    "<",  2.0,   "no episode lasts 2 s past the object leaving"),
    ("loitering",      "zone",     "previews_bad",  "==", 0,     "every preview shows the object"),
    ("tamper",         "-tamper",  "detected",      "==", 0,     "no false alarm"),
    ("tamper",         "tamper",   "missed",        "==", 0,     "every cover, defocus and turn is caught"),
    ("tamper",         "tamper",   "delay_max",     "<=", 2000,  "caught within 2 s of its start (ms)"),
    ("tamper",         "tamper",   "wrong",         "==", 0,     "with the right reason"),
]

OPS = {"==": operator.eq, "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
OBJECT_PREVIEWS = {"motion", "line_crossing", "zone_intrusion", "loitering"}   # tamper's is the whole frame


def applies(tag, t):
    if tag == "all":
        return True
    if tag.startswith("-"):
        return tag[1:] not in t.tags
    return tag in t.tags


def truth_for(kind, t, params):
    """(events, empty spans, kind_of) the rule is scored against."""
    if kind == "activity":
        return t.activity(), t.empty, None
    if kind == "crossings":
        return t.crossings, [], None
    if kind == "zone":
        return t.zone_events(), t.zone_empty(), None
    if kind == "dwell":
        return t.dwell_events(params["seconds"]), t.zone_empty(), None
    if kind == "tamper":
        return t.tamper, t.tamper_empty(), lambda ep: ep.payload.get("reason")
    raise ValueError(kind)


def run_one(vigil, src, work, rule, kind, params, t):
    """Replays rule over input t and scores it: a Score."""
    out = os.path.join(work, "out", "%s.%s.jsonl" % (t.name, rule))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    r = replay.replay(vigil, t.clip, os.path.join(src, "scripts", rule + ".lua"), params, out)
    events, empty, kind_of = truth_for(kind, t, params)
    if kind == "crossings":
        s, hits = score.score_crossings(events, r.episodes, t.tol_ms, score.direction_names(params["line"]))
    else:
        s, hits = score.score_intervals(events, r.episodes, t.tol_ms, empty, kind_of)
    if rule in OBJECT_PREVIEWS:
        wanted = [ep.preview_ts for ep in r.episodes if hits.get(ep.id) and ep.preview and ep.preview_ts is not None]
        frames = preview.frames_at(t.clip, wanted, t.frame_ms) if wanted else {}
        score.judge_previews(s, t, r.episodes, hits, events, frames)
    else:
        s.previews = None
    s.error, s.logged, s.seconds = r.error, r.logged, r.seconds
    if r.logged:
        s.problems.insert(0, "the replay logged: %s" % r.logged)
    return s


def check(results):
    """[(ok, line)] for every threshold on every generated input it applies to, and for every replay."""
    out = []
    for (rule, name), (t, s) in sorted(results.items()):
        if not t.generated:
            continue
        trouble = s.error or s.logged
        out.append((not trouble, "%s / %s: the replay runs cleanly%s" % (rule, name,
                                                                          (": " + trouble) if trouble else "")))
        for r, tag, metric, op, limit, what in THRESHOLDS:
            if r != rule or not applies(tag, t):
                continue
            value = s.previews_bad if metric == "previews_bad" and s.previews is not None else getattr(s, metric, None)
            ok = value is not None and not s.error and OPS[op](value, limit)
            out.append((ok, "%s / %s: %s (%s = %s, want %s %s)" % (rule, name, what, metric,
                                                                     "n/a" if value is None else value, op, limit)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generated-only", action="store_true", help="only the generated scenes")
    ap.add_argument("--check", action="store_true",
                    help="check THRESHOLDS on the generated scenes; exit 1 if one fails")
    ap.add_argument("--write", metavar="PATH", help="write the scorecard (markdown) there")
    ap.add_argument("--src", default=REPO, help="the tree whose scripts/ are scored (default: this repository)")
    ap.add_argument("--work", help="cache of generated clips and replay outputs")
    ap.add_argument("--jobs", type=int, default=2, help="replays at once (default 2)")
    ap.add_argument("--only", help="only inputs whose name matches this regular expression")
    args = ap.parse_args()
    started = time.monotonic()

    src = os.path.abspath(args.src)
    vigil = os.environ.get("VIGIL") or os.path.join(src, "build", "vigil")
    if not os.access(vigil, os.X_OK):
        sys.exit("run.py: no vigil binary at %s (build it, or set VIGIL)" % vigil)
    work = args.work or os.environ.get("VIGIL_QUALITY_WORK") or (
        os.path.join(os.environ["VIGIL_BUILD"], "quality") if os.environ.get("VIGIL_BUILD")
        else os.path.join(tempfile.gettempdir(), "vigil-quality-%d" % os.getuid()))
    os.makedirs(work, exist_ok=True)
    only = re.compile(args.only) if args.only else None

    # inputs
    chosen = [s for s in scenes.SCENES if not only or only.search(s.name)]
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        clips = list(pool.map(lambda s: scenes.clip_path(s, os.path.join(work, "scenes")), chosen))
    inputs = [scenes.truth(s, c) for s, c in zip(chosen, clips)]
    print("quality: %d generated scenes ready in %.0f s (%s)" % (len(inputs), time.monotonic() - started, work),
          flush=True)
    skipped = []
    if not args.generated_only:
        media = os.environ.get("VIGIL_MEDIA") or os.path.join(REPO, "..", "shared", "media")
        for name in REAL_CLIPS:
            if only and not only.search(name):
                continue
            clip = os.path.join(media, name + ".mp4")
            if os.path.exists(clip):
                inputs.append(truth.load_real(os.path.join(HERE, "truth", name + ".json"), clip))
            else:
                skipped.append(name)
                print("quality: SKIP real clip %s: %s not found (set VIGIL_MEDIA to the folder holding it)"
                      % (name, clip), flush=True)

    # replays
    jobs = []
    for rule, tag, kind, gen_params, real_params in RULES:
        for t in inputs:
            if applies(tag, t):
                jobs.append((rule, kind, dict(gen_params if t.generated else real_params), t))
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {pool.submit(run_one, vigil, src, work, rule, kind, params, t): (rule, t, params)
                   for rule, kind, params, t in jobs}
        for f in concurrent.futures.as_completed(futures):
            rule, t, params = futures[f]
            s = f.result()
            results[(rule, t.name)] = (t, s)
            print("  %-15s %-20s %s" % (rule, t.name, report.one_line(s)), flush=True)

    checks = check(results)
    failed = [line for ok, line in checks if not ok]
    elapsed = time.monotonic() - started
    if args.write:
        report.write(args.write, results, inputs, skipped, checks, src=src, vigil=vigil, rules=RULES,
                     thresholds=THRESHOLDS, seconds=elapsed, generated_only=args.generated_only)
        print("quality: wrote %s" % args.write)
    print("quality: %d replays in %.0f s" % (len(jobs), elapsed))
    if args.check:
        for line in failed:
            print("FAIL: %s" % line)
        print("%d passed, %d failed" % (len(checks) - len(failed), len(failed)))
        sys.exit(1 if failed else 0)
    print("quality: thresholds on the generated scenes: %d passed, %d failed (--check lists them)"
          % (len(checks) - len(failed), len(failed)))


if __name__ == "__main__":
    main()
