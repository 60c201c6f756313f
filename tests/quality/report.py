"""report.py — the scorecard: a markdown page with what was run against what, a table per rule (one row per input,
every metric of score.Score), the threshold checks on the generated scenes and, per rule and input, what went wrong;
plus one-line summaries for the console."""
import json
import subprocess

COLUMNS = ["input", "truth", "detected", "matched", "missed", "spurious", "merged", "split", "wrong", "open err",
           "close err", "1st report", "empty in ep.", "previews ok"]

LEGEND = """\
**Tolerance.** An episode *matches* a truth event when their intervals overlap, each widened by the tolerance:
**1 frame (50 ms)** on the generated scenes, whose truth is exact, and **0.5 s** on the real clips, annotated by eye
to about that. A line crossing is an instant: its episode matches a truth crossing when its time falls within the
span the object's box is on the line, widened by the same tolerance (the same direction is taken first).

| column | meaning |
|---|---|
| truth | events in the truth for this rule: visits for motion (overlapping visits count as one), crossings for line_crossing (down and up in the picture), stays in the zone for zone_intrusion, stays of at least `seconds` for loitering, tamper spans for tamper |
| detected | episodes the rule sent (each episode's final version) |
| matched | truth events matched by at least one episode |
| missed | truth events no episode matched |
| spurious | episodes that match no truth event (false alarms) |
| merged | episodes that cover two or more truth events ("–": does not apply to crossings) |
| split | truth events covered by more than one episode (a crossing counted more than once) |
| wrong | matched episodes with the wrong `payload.direction` (line_crossing: a_to_b/b_to_a mapped to down/up for the line) or the wrong `payload.reason` (tamper) |
| open err, close err | mean over matched events of \\|first opened_at − truth start\\| and \\|last closed_at − truth end\\|, ms; for crossings \\|opened_at − the frame the object's centre passed the line\\| |
| 1st report | mean time from the truth start (crossing: the centre passing) to the `updated_at` of the matching episode's first version: how long until the rule said so, ms; negative when the episode was already open (it covers an earlier event too, or began early) |
| empty in ep. | the longest stretch of empty scene (nothing in view; for the zone rules nothing in the zone; for tamper no tamper) inside one episode, seconds (the tolerance trimmed off both ends) |
| previews ok | matched episodes whose preview shows the object / those judged. The crop is found by template matching the preview JPEG in the frame at `preview_timestamp`; it shows the object when it holds ≥ 50 % of the object's box and the object fills ≥ 10 % of the crop. Bad also counts episodes without a preview and previews not found in their frame; *unjudged*: no truth box near that time (real clips are boxed about twice a second) |
"""

ABOUT = """\
This page is written by `tests/quality/run.py --write PATH` (`make quality` rewrites `docs/quality.md`); do not edit
it by hand.
The harness replays each stock rule over generated scenes, whose truth is exact (made by the same numbers that
drew them), and over two real clips annotated by eye (`tests/quality/truth/*.json`, one line per event saying what
was seen). `tests/quality/run.py --generated-only --check` (ctest `quality.generated`) checks the targets in the
`THRESHOLDS` table of `run.py` on the generated scenes only; the real clips (`../shared/media`, or `VIGIL_MEDIA`)
are scored when present and never needed by `make test`. `one-by-one-person-detection.mp4` is not used here: it is
kept as an independent acceptance check.

**Limits.** Previews are located by template matching (normalized cross-correlation over candidate scales) in the
decoded frame; a preview found with a match score under 0.6 counts as *not found*. On the real clips the object
boxes are keyframes about 0.5 s apart, interpolated, so a preview is judged only near an annotated moment, and a
fast hand may be off its interpolated box. Real-clip event boundaries are good to about ±0.2 s (motion blur leaves
fading ghosts). On the real clips the zone rules get the whole frame as their zone with `point = "center"`, so their
truth is the visits."""


def _ms(x):
    return "–" if x is None else "%d ms" % round(x)


def _truth_cell(s):
    if s.counts:
        c = s.counts["truth"]
        return "%d (%d down, %d up)" % (s.truth, c["down"], c["up"])
    return str(s.truth)


def _detected_cell(s):
    if s.counts:
        c = s.counts["detected"]
        return "%d (%d down, %d up)" % (s.detected, c["down"], c["up"])
    return str(s.detected)


def _previews_cell(s):
    p = s.previews
    if p is None:
        return "n/a"
    judged = p["ok"] + p["bad"] + p["missing"] + p["unlocated"]
    cell = "%d/%d" % (p["ok"], judged) if judged else "–"
    extra = []
    if p["missing"]:
        extra.append("%d missing" % p["missing"])
    if p["unlocated"]:
        extra.append("%d not found" % p["unlocated"])
    if p["unjudged"]:
        extra.append("%d unjudged" % p["unjudged"])
    return cell + (" (%s)" % ", ".join(extra) if extra else "")


def row(name, s):
    if s.logged:
        name += " (errors logged)"
    if s.error:
        return [name, _truth_cell(s), "replay failed: " + s.error.replace("|", "/")[:120]] + [""] * (len(COLUMNS) - 3)
    return [name, _truth_cell(s), _detected_cell(s), str(s.matched), str(s.missed), str(s.spurious),
            "–" if s.merged is None else str(s.merged), str(s.split), str(s.wrong), _ms(s.open_err), _ms(s.close_err),
            _ms(s.delay), "–" if s.empty_span is None else "%.1f s" % s.empty_span, _previews_cell(s)]


def one_line(s):
    if s.error:
        return "replay failed: %s" % s.error
    return ("truth %s, detected %s, matched %d, missed %d, spurious %d, merged %s, split %d, wrong %d, open %s, "
            "close %s, empty %s, previews %s  (%.1f s)" % (
                _truth_cell(s), _detected_cell(s), s.matched, s.missed, s.spurious,
                "–" if s.merged is None else s.merged, s.split, s.wrong, _ms(s.open_err), _ms(s.close_err),
                "–" if s.empty_span is None else "%.1f s" % s.empty_span, _previews_cell(s), s.seconds))


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _describe(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except OSError:
        return ""


def write(path, results, inputs, skipped, checks, src, vigil, rules, thresholds, seconds, generated_only):
    rev = _describe(["git", "-C", src, "describe", "--always", "--dirty", "--abbrev=12"]) or "unknown"
    version = (_describe([vigil, "version"]) or "vigil").splitlines()[0]
    lines = ["# Detection quality", "", ABOUT, "",
             "Scored: the rules in `scripts/` at git `%s`, run by %s. %d inputs, %d replays, %.0f s." % (
                 rev, version, len(inputs), len(results), seconds), ""]
    if generated_only:
        lines += ["Real clips: not run (`--generated-only`).", ""]
    for name in skipped:
        lines += ["Real clip `%s`: skipped, not found (set `VIGIL_MEDIA`)." % name, ""]
    lines += ["## How to read it", "", LEGEND, "## Inputs", ""]
    rows = []
    for t in inputs:
        crossings = "%d down, %d up" % (sum(c.direction == "down" for c in t.crossings),
                                          sum(c.direction == "up" for c in t.crossings)) if "line" in t.tags else "–"
        rows.append(["`%s`" % t.name, "generated" if t.generated else "real", t.what, str(len(t.activity())),
                     crossings, str(len(t.zone_events())) if "zone" in t.tags else "–",
                     ", ".join("%s %.1f-%.1f s" % (e.reason, e.start / 1000, e.end / 1000) for e in t.tamper) or "–"])
    lines += [_table(["input", "kind", "what happens", "visits", "crossings", "zone stays", "tamper"], rows), ""]
    for t in inputs:
        if not t.generated and t.notes:
            lines += ["`%s`: %s" % (t.name, " ".join(t.notes)), ""]
    for rule, tag, kind, gen_params, real_params in rules:
        rs = [(t, s) for (r, _), (t, s) in results.items() if r == rule]
        if not rs:
            continue
        rs.sort(key=lambda ts: (not ts[0].generated, [i.name for i in inputs].index(ts[0].name)))
        lines += ["## %s" % rule, "", "Params: generated scenes `%s`; real clips `%s`." % (
            _json(gen_params), _json(real_params)), ""]
        lines += [_table(COLUMNS, [row("`%s`" % t.name, s) for t, s in rs]), ""]
    failed = [line for ok, line in checks if not ok]
    lines += ["## Threshold checks (generated scenes)", "",
              "The targets in `THRESHOLDS` (`tests/quality/run.py`), checked on every generated scene they apply to, "
              "plus one check per replay that it ran cleanly: **%d passed, %d failed**." % (
                  len(checks) - len(failed), len(failed)), ""]
    lines += _table(["rule", "scenes", "metric", "target", "what it means"],
                    [[r, tag, m, "%s %s" % (op, lim), what] for r, tag, m, op, lim, what in thresholds]).split("\n")
    lines += [""]
    if failed:
        lines += ["Failed:", ""] + ["- %s" % f for f in failed] + [""]
    lines += ["## What went wrong, by rule and input", ""]
    any_problem = False
    for rule, *_ in rules:
        for (r, name), (t, s) in sorted(results.items(), key=lambda kv: [i.name for i in inputs].index(kv[0][1])):
            if r != rule or not s.problems:
                continue
            any_problem = True
            shown = s.problems[:8]
            lines += ["- **%s / %s**: %s%s" % (rule, name, "; ".join(shown),
                                               " (and %d more)" % (len(s.problems) - 8) if len(s.problems) > 8 else "")]
    if not any_problem:
        lines += ["Nothing."]
    lines += [""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def _json(d):
    return json.dumps(d, separators=(", ", ": "))
