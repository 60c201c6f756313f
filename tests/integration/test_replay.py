"""test_replay.py — `vigil replay` end to end on generated clips whose truth is known: a white box appears
at 2.00 s and leaves at 4.00 s; the rule's episode must open and close within one frame of those times, every
version must be complete with strictly rising updated_at, ids exact, and bad input must fail in one line."""
import base64
import os
import re
import subprocess

from vigiltest import Suite, make_clip, write, run, read_versions, by_episode, VIGIL, VIGIL_ASAN, SRC

START = 1700000000000
FRAME_MS = 40

RULE = """
local vigil = require "vigil"
local ep
function on_frame(frame)
  local bright = frame:mean({0.35, 0.35, 0.1, 0.1}) > vigil.params.level
  if bright and not ep then
    ep = vigil.episode(frame, {episode_type = "box", payload = {level = vigil.params.level}})
  elseif bright then
    ep:extend(frame)
  elseif ep then
    ep:close(frame)
    ep = nil
  end
end
"""


def check_episode_truth(t, out, label):
    versions = read_versions(out)
    episodes = by_episode(versions)
    t.check(len(episodes) == 1, "%s: one episode, got %d" % (label, len(episodes)))
    if not episodes:
        return
    (eid, records), = episodes.items()
    first, last = records[0], records[-1]
    t.check(abs(first["opened_at"] - (START + 2000)) <= FRAME_MS, "%s: opened_at %d near %d" % (label, first["opened_at"], START + 2000))
    t.check(abs(last.get("closed_at", 0) - (START + 4000)) <= FRAME_MS, "%s: closed_at %s near %d" % (label, last.get("closed_at"), START + 4000))
    ups = [r["updated_at"] for r in records]
    t.check(all(b > a for a, b in zip(ups, ups[1:])), "%s: updated_at strictly rises" % label)
    t.check(all(r["opened_at"] == first["opened_at"] for r in records), "%s: opened_at never changes" % label)
    t.check(all("closed_at" not in r for r in records[:-1]), "%s: only the last version is closed" % label)
    t.check(all(r["media"] == "gate" and r["episode_type"] == "box" and r["payload"]["level"] == 200 for r in records),
            "%s: every version is the complete record" % label)
    t.check(isinstance(eid, int) and eid > 2 ** 53, "%s: id is an exact integer above 2^53" % label)
    raw = versions[0][1]
    t.check(re.search(r'"episode_id":%d[,}]' % eid, raw) is not None, "%s: id digits exact in the body" % label)
    machine = (eid >> 12) & 0x3FF
    t.check(machine == 5, "%s: machine id 5 in the id, got %d" % (label, machine))


def overlay_pixels(path, at_s):
    """The overlay picture at at_s seconds as (width, height, rgb bytes)."""
    r = subprocess.run(["ffmpeg", "-v", "error", "-ss", str(at_s), "-i", path, "-frames:v", "1", "-f", "rawvideo",
                        "-pix_fmt", "rgb24", "-"], capture_output=True)
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", path], capture_output=True, text=True).stdout.split(",")
    return int(probe[0]), int(probe[1]), r.stdout


def reddish(w, h, rgb, box):
    """Fraction of the pixels in box (fractions) that the motion ink tints red."""
    x0, y0, x1, y1 = int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)
    n = red = 0
    for y in range(y0, y1):
        for x in range(x0, x1):
            r, g, b = rgb[3 * (y * w + x):3 * (y * w + x) + 3]
            n += 1
            red += r > g + 60 and r > b + 60
    return red / max(n, 1)


def check_overlay(t, clip, rule):
    """--overlay: a video with one picture per analysed frame, the moving box tinted where it is, nothing tinted
    before it appears; a directory gets one JPEG per frame named by its time."""
    video = t.path("overlay.mp4")
    motion = os.path.join(SRC, "scripts", "motion.lua")
    r = run(["replay", clip, "--script", motion, "--start", str(START), "--overlay", video, "--out", t.path("ov.jsonl")])
    t.check(r.returncode == 0 and "overlay: 150 frames written to " + video in r.stderr,
            "overlay: 150 frames written (%s)" % r.stderr.strip()[-300:])
    frames = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v", "-show_entries",
                             "stream=nb_read_frames", "-of", "csv=p=0", video], capture_output=True, text=True).stdout.strip()
    t.check(frames == "150", "overlay: the video has 150 pictures (%s)" % frames)
    if frames != "150":
        return
    w, h, before = overlay_pixels(video, 1.0)
    _, _, during = overlay_pixels(video, 3.0)
    box = (200 / 640, 100 / 360, 240 / 640 * 0.98 + 200 / 640, 160 / 360 * 0.98 + 100 / 360)  # the clip's box
    t.check(w == 640 and h == 360, "overlay: canvas 640x360 (%dx%d)" % (w, h))
    t.check(reddish(w, h, before, (0, 0, 1, 1)) < 0.001, "overlay: nothing tinted before the box appears")
    t.check(reddish(w, h, during, box) > 0.5, "overlay: the moving box is tinted (%.2f)" % reddish(w, h, during, box))
    t.check(reddish(w, h, during, (0.02, 0.8, 0.98, 0.9)) < 0.01, "overlay: nothing tinted away from the box")
    t.check(reddish(w, h, during, (0, 0.99, 1, 1)) > 0.5, "overlay: an open episode draws a red border")
    folder = t.path("overlay-jpegs")
    r = run(["replay", clip, "--script", rule, "--params", '{"level": 200}', "--start", str(START),
             "--overlay", folder, "--out", t.path("ov2.jsonl")])
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    t.check(r.returncode == 0 and len(names) == 150 and names[0] == "%013d.jpg" % START
            and names[-1] == "%013d.jpg" % (START + 149 * FRAME_MS),
            "overlay: a directory gets 150 JPEGs named by frame time (%d, %s)" % (len(names), names[:1]))
    r = run(["replay", clip, "--script", rule, "--overlay", "/proc/nope/x"])
    t.check(r.returncode != 0 and "overlay /proc/nope/x" in r.stderr, "overlay: an unwritable path is one clear line: %s"
            % r.stderr.strip())


def check_shaped_output(t, clip, full):
    """--versions final keeps each episode's closing version only, the same record as the full run's last;
    --previews DIR writes each preview once as a JPEG and the line names it instead of carrying base64."""
    motion = os.path.join(SRC, "scripts", "motion.lua")
    args = ["replay", clip, "--script", motion, "--start", str(START), "--machine-id", "5"]
    run(args + ["--out", full])
    final, previews = t.path("final.jsonl"), t.path("previews")
    os.mkdir(previews)
    r = run(args + ["--out", final, "--versions", "final", "--previews", previews])
    everything = read_versions(full)
    last = {v["opened_at"]: v for v, _ in everything}  # ids differ between runs (made from the wall clock)
    kept = read_versions(final)
    t.check(r.returncode == 0 and kept and len(kept) == len(last) and all("closed_at" in v for v, _ in kept),
            "--versions final: one closing line per episode (%d lines, %d episodes)" % (len(kept), len(last)))
    for v, _ in kept:
        want = dict(last.get(v["opened_at"], {}))
        path = v.get("preview_file", "")
        t.check("preview" not in v and os.path.dirname(path) == previews and os.path.exists(path),
                "--previews: the line names a JPEG in DIR instead of base64: %r" % path)
        if os.path.exists(path):
            with open(path, "rb") as f:
                t.check(base64.b64encode(f.read()).decode() == want.pop("preview", None),
                        "--previews: the file holds exactly the preview the full run carried")
        stamps = ("episode_id", "episode_appearance_timestamps")  # made from the wall clock: differ by run
        same = {k: x for k, x in v.items() if k not in stamps + ("preview_file",)}
        t.check(same == {k: x for k, x in want.items() if k not in stamps},
                "--versions final: the same record as the full run's last version, previews aside")
    t.check(os.path.getsize(final) * 10 < os.path.getsize(full),
            "much smaller: %d bytes against %d" % (os.path.getsize(final), os.path.getsize(full)))
    r = run(args + ["--versions", "final", "--report", t.path("rep")])
    t.check(r.returncode == 2 and "give --out too" in r.stderr, "--versions without --out is refused: %s"
            % r.stderr[-200:])


def main():
    t = Suite("replay")
    clip = make_clip(t.path("gate.mp4"), seconds=6, boxes=[(200, 100, 240, 160, "white", 2, 4)])
    rule = write(t.path("box.lua"), RULE)
    out = t.path("out.jsonl")
    args = ["replay", clip, "--script", rule, "--media", "gate", "--start", str(START),
            "--params", '{"level": 200}', "--machine-id", "5", "--out", out]
    r = run(args)
    t.check(r.returncode == 0, "replay exits 0 (stderr: %s)" % r.stderr.strip())
    t.check("150 frames" in r.stderr, "replay reports 150 frames: %s" % r.stderr.strip())
    check_episode_truth(t, out, "replay")

    # the same under ASan+UBSan
    if VIGIL_ASAN:
        out_asan = t.path("out-asan.jsonl")
        r = run(args[:-1] + [out_asan], binary=VIGIL_ASAN, env={"ASAN_OPTIONS": "detect_leaks=1"})
        t.check(r.returncode == 0, "asan replay exits 0 (stderr: %s)" % r.stderr.strip()[-2000:])
        check_episode_truth(t, out_asan, "asan")

    # the motion rule on a small clip under ASan+UBSan with leak detection: episodes and previews being made
    # (tests/integration/test_valgrind.py runs the same replay under valgrind where valgrind can run)
    if VIGIL_ASAN:
        small = make_clip(t.path("small.mp4"), seconds=2, size="320x180", boxes=[(100, 40, 60, 60, "white", 0.5, 1.5)])
        motion = os.path.join(SRC, "scripts", "motion.lua")
        r = run(["replay", small, "--script", motion, "--out", t.path("asan-motion.jsonl"),
                 "--overlay", t.path("asan-overlay.mp4")], binary=VIGIL_ASAN,
                env={"ASAN_OPTIONS": "detect_leaks=1"})
        t.check(r.returncode == 0 and "Sanitizer" not in r.stderr and "runtime error" not in r.stderr,
                "asan: motion replay clean, no leak (rc %d): %s" % (r.returncode, r.stderr[-1500:]))
        versions = read_versions(t.path("asan-motion.jsonl"))
        t.check(any("preview" in v for v, _ in versions), "asan: the motion replay made episodes with previews")

    check_overlay(t, clip, rule)
    check_shaped_output(t, clip, t.path("motion-all.jsonl"))

    # decode modes: every key frame yields a picture in keyframes mode (B-frames delay output otherwise)
    gop = t.path("gop.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=10", "-c:v", "libx264",
                    "-g", "25", "-bf", "3", "-pix_fmt", "yuv420p", gop], check=True)
    keys = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=flags", "-of",
                           "csv=p=0", gop], capture_output=True, text=True).stdout.count("K")
    counts = {}
    for mode in ["all", "nonref", "keyframes"]:
        r = run(["replay", gop, "--script", rule, "--params", '{"level": 300}', "--decode", mode, "--out", t.path("m.jsonl")])
        m = re.search(r"(\d+) frames in", r.stderr)
        counts[mode] = int(m.group(1)) if m else -1
    t.check(counts["all"] == 250, "decode all: 250 frames (%d)" % counts["all"])
    t.check(0 < counts["nonref"] < 250, "decode nonref: fewer frames (%d)" % counts["nonref"])
    t.check(keys == 10 and counts["keyframes"] == keys, "decode keyframes: one picture per key frame (%d of %d)" % (counts["keyframes"], keys))

    # --start omitted: the container's creation_time
    stamped = make_clip(t.path("stamped.mp4"), seconds=1, extra=["-metadata", "creation_time=2024-01-02T03:04:05.000000Z"])
    r = run(["replay", stamped, "--script", write(t.path("open.lua"), """
local vigil = require "vigil"
function on_frame(f) if f.index == 0 then vigil.episode(f) end end"""), "--out", t.path("stamped.jsonl")])
    recs = [v for v, _ in read_versions(t.path("stamped.jsonl"))]
    t.check(r.returncode == 0 and recs and recs[0]["opened_at"] == 1704164645000,
            "creation_time is the start: %s" % (recs[0]["opened_at"] if recs else r.stderr))
    t.check(recs and recs[-1]["payload"]["close_reason"] == "end_of_stream" and recs[-1]["closed_at"] == 1704164645960,
            "an episode still open at the end is closed at the last frame")

    # bad input: one clear line on stderr and a non-zero exit
    syntax = write(t.path("syntax.lua"), "function on_frame(frame)\n  local x = = 1\nend\n")
    cases = [
        (["replay", t.path("missing.mp4"), "--script", rule], "missing.mp4"),
        (["replay", write(t.path("junk.mp4"), "not a video at all\n" * 50), "--script", rule], "junk.mp4"),
        (["replay", clip, "--script", syntax], "syntax.lua:2:"),
        (["replay", clip, "--script", rule, "--params", "{level: 2"], "--params"),
        (["replay", clip, "--script", t.path("nope.lua")], "nope.lua"),
        (["replay", clip, "--script", write(t.path("noframe.lua"), "x = 1\n")], "on_frame"),
    ]
    for args, needle in cases:
        r = run(args + ["--out", t.path("bad.jsonl")])
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        t.check(r.returncode != 0, "%s: non-zero exit" % needle)
        t.check(len(lines) == 1 and needle in lines[0], "%s: one line naming it, got %r" % (needle, r.stderr))
    t.done()


main()
