"""test_preview.py — previews end to end: a rule previews a solid red box on grey in a generated clip; every
JPEG in the output is decoded by an independent decoder (djpeg) and checked for size and colour. Odd frame
sizes, boxes touching every edge, the whole-frame preview, offer_preview keeping the best, and bad boxes
raising a Lua error that names the value."""
import base64
import subprocess

from vigiltest import Suite, make_clip, write, run, read_versions, by_episode

RULE = """
local vigil = require "vigil"
local box = vigil.params.box
function on_frame(frame)
  if frame.index ~= 5 then return end
  local ep = vigil.episode(frame, { episode_type = "red" })
  ep:preview(frame, box, { max_size = vigil.params.max_size })
  ep:frame_preview(frame)
  local errors = {}
  for _, bad in ipairs({ {-0.1, 0, 0.5, 0.5}, {0, 0, 0, 0.5}, {0.8, 0, 0.5, 0.5}, {0/0, 0, 0.1, 0.1} }) do
    local ok, err = pcall(function() ep:preview(frame, bad) end)
    errors[#errors + 1] = ok and "accepted" or err
  end
  ep:set_payload({ errors = errors })
  for i, edge in ipairs({ {0, 0, 0.2, 0.2}, {0.8, 0, 0.2, 0.2}, {0, 0.8, 0.2, 0.2}, {0.8, 0.8, 0.2, 0.2}, {0, 0, 1, 1} }) do
    local e = vigil.episode(frame, { episode_type = "edge", payload = { i = i } })
    e:preview(frame, edge)
  end
end
"""

BEST = """
local vigil = require "vigil"
local ep
function on_frame(frame)
  ep = ep or vigil.episode(frame)
  -- scores rise to frame 10, then fall: the preview must stay the one of frame 10
  local score = 10 - math.abs(frame.index - 10)
  ep:offer_preview(frame, { 0.1, 0.1, 0.5, 0.5 }, { score = score })
end
"""


def decode(t, b64, label):
    jpeg = base64.b64decode(b64)
    p = subprocess.run(["djpeg", "-pnm"], input=jpeg, capture_output=True)
    if not t.check(p.returncode == 0, "%s: djpeg decodes it (%s)" % (label, p.stderr[:200])):
        return None
    data = p.stdout
    parts = data.split(b"\n", 3)  # P6 / "w h" / 255 / pixels
    w, h = map(int, parts[1].split())
    return w, h, parts[3]


def rgb_at(img, fx, fy):
    w, h, px = img
    x, y = int(fx * (w - 1)), int(fy * (h - 1))
    i = (y * w + x) * 3
    return px[i], px[i + 1], px[i + 2]


def is_red(c):
    return c[0] > 180 and c[1] < 80 and c[2] < 80


def is_grey(c):
    return all(100 < v < 160 for v in c) and max(c) - min(c) < 25


def check_clip(t, size, codec, label):
    w, h = map(int, size.split("x"))
    # red box at x 40%..60%, y 30%..70% of the frame
    bx, by, bw, bh = int(w * 0.4), int(h * 0.3), int(w * 0.2), int(h * 0.4)
    clip = make_clip(t.path("red-%s.mkv" % label), seconds=1, size=size, codec=codec,
                     boxes=[(bx, by, bw, bh, "red", 0, 1)])
    rule = write(t.path("red.lua"), RULE)
    out = t.path("red-%s.jsonl" % label)
    box = [0.35, 0.25, 0.3, 0.5]  # the red box with a grey margin around it
    params = '{"box": [%s], "max_size": 320}' % ",".join(map(str, box))
    r = run(["replay", clip, "--script", rule, "--params", params, "--start", "0", "--out", out])
    t.check(r.returncode == 0, "%s: replay ok (%s)" % (label, r.stderr.strip()))
    eps = by_episode(read_versions(out))
    red = [v for vs in eps.values() for v in vs if v.get("episode_type") == "red"]
    if not t.check(red, "%s: the red episode was written" % label):
        return
    last = red[-1]
    img = decode(t, last["preview"], label + " box preview")
    if img:
        pw, ph, _ = img
        t.check(max(pw, ph) <= 320 and pw >= 2 and ph >= 2, "%s: preview size %dx%d fits 320" % (label, pw, ph))
        expect_ratio = (box[2] * w) / (box[3] * h)
        t.check(abs(pw / ph - expect_ratio) < 0.1, "%s: preview aspect %.2f ~ %.2f" % (label, pw / ph, expect_ratio))
        t.check(is_red(rgb_at(img, 0.5, 0.5)), "%s: the middle is red %s" % (label, rgb_at(img, 0.5, 0.5)))
        t.check(is_grey(rgb_at(img, 0.02, 0.02)) and is_grey(rgb_at(img, 0.98, 0.98)),
                "%s: the corners are grey %s %s" % (label, rgb_at(img, 0.02, 0.02), rgb_at(img, 0.98, 0.98)))
    t.check(last["preview_timestamp"] == 200, "%s: preview_timestamp is frame 5's time: %s" % (label, last.get("preview_timestamp")))
    whole = decode(t, last["frame_preview"], label + " frame preview")
    if whole:
        fw, fh, _ = whole
        t.check(abs(fh - min(h, 240)) <= 2, "%s: whole-frame preview ~240 lines, got %dx%d" % (label, fw, fh))
        t.check(is_red(rgb_at(whole, 0.5, 0.5)) and is_grey(rgb_at(whole, 0.1, 0.1)), "%s: whole frame red middle, grey corner" % label)
    errors = last["payload"]["errors"]
    for needle, err in zip(["box.x=-0.1", "box.w=0", "x+w", "box.x=nan"], errors):
        t.check(needle in err and "red.lua" in err, "%s: bad box error names %s: %r" % (label, needle, err))
    edges = [vs[-1] for vs in eps.values() if vs[0].get("episode_type") == "edge"]
    t.check(len(edges) == 5, "%s: five edge previews" % label)
    for e in edges:
        img = decode(t, e["preview"], "%s edge %d" % (label, e["payload"]["i"]))
        t.check(img is not None and is_grey(rgb_at(img, 0.5, 0.5)) if e["payload"]["i"] < 5 else is_red(rgb_at(img, 0.5, 0.5)),
                "%s: edge preview %d decodes with the right colour" % (label, e["payload"]["i"]))


def main():
    t = Suite("preview")
    check_clip(t, "640x360", "libx264", "h264")
    check_clip(t, "321x179", "ffv1", "odd")
    check_clip(t, "1920x1080", "libx264", "1080p")

    clip = make_clip(t.path("best.mp4"), seconds=1, boxes=[(100, 50, 200, 150, "red", 0, 1)])
    out = t.path("best.jsonl")
    r = run(["replay", clip, "--script", write(t.path("best.lua"), BEST), "--start", "0", "--out", out])
    versions = [v for v, _ in read_versions(out)]
    t.check(r.returncode == 0 and versions, "offer_preview replay ok")
    if versions:
        t.check(versions[-1]["preview_timestamp"] == 400, "the best preview (frame 10) is kept: %s" % versions[-1].get("preview_timestamp"))
        shown = sorted({v["preview_timestamp"] for v in versions if "preview" in v})
        t.check(shown == [i * 40 for i in range(11)], "a new preview only while the score rose: %s" % shown)
        t.check(all("preview" in v for v in versions), "every version after the first preview carries it")
    t.done()


main()
