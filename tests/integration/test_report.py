"""test_report.py — `vigil replay --report DIR`: the static page of a replay's episodes, opened in headless
Chromium from disk. A generated clip has two white boxes moving across grey one after the other; a rule of the
test's own follows the moving blob with detections (object_class "human"), a preview and a frame preview, gives
its episodes hostile text (HTML in episode_type and payload strings), and ends the first with a time-out
(close_reason "timeout", payload.close_reason "clear") while the end of the clip closes the second
(payload.close_reason "end_of_stream" only). The page is checked as written (nothing fetched from anywhere, the
previews beside it byte for byte) and as Chromium shows it after its script ran (--dump-dom): one episode per
episode of the --out JSONL with its exact 64-bit id, type, close reasons, times (clip and UTC), number of
versions and payload (read back as JSON: the escaping lost nothing and let nothing through), a bar per episode,
the detection boxes where the detections were, and every image loaded. A screenshot is kept with a failed run.
Exits 77 (skipped) without Chromium."""
import base64
import datetime
import html.parser
import json
import os
import re
import shutil
import signal
import subprocess
import sys

from vigiltest import Suite, run, read_versions, by_episode, png_size, HANG_S

CHROMIUM = "/usr/bin/chromium"
W, H, FPS, SECONDS = 640, 360, 25, 6

TYPE_1 = 'walk <i>here</i> & "there"'
TYPE_2 = "</span><script>document.title='pwned'</script>"
NOTE = "</pre><img src=x onerror=\"document.title='pwned'\"> & <b>bold</b> 'quoted'"

RULE = """
local vigil = require "vigil"
local bg = vigil.background{}
local ep, last_seen, count = nil, nil, 0

function on_frame(frame)
  bg:update(frame)
  local blob = bg:blobs{ min_area = 0.005, max = 1 }[1]
  if blob then
    if not ep then
      count = count + 1
      ep = vigil.episode(frame, { episode_type = count == 1 and %s or %s,
                                       payload = { note = %s, n = count } })
    end
    ep:extend(frame)
    ep:offer_preview(frame, vigil.pad(blob, 0.2), { score = blob.area })
    ep:set_detections({ { object_class = "human", box = { blob.x, blob.y, blob.w, blob.h }, confidence = 0.9 } })
    ep:frame_preview(frame)
    last_seen = frame
  elseif ep and frame.ts - last_seen.ts >= 400 then
    ep:time_out(last_seen, "clear")
    ep = nil
  end
end
""" % (json.dumps(TYPE_1), json.dumps(TYPE_2), json.dumps(NOTE))


def make_clip(path):
    """Box A (60x100) moves right from 0.5 s to 2.0 s; box B moves left from 3.0 s to the end."""
    graph = ("color=c=0x808080:s=%dx%d:r=%d:d=%d[bg];color=c=white:s=60x100:r=%d[a];color=c=white:s=60x100:r=%d[b];"
             "[bg][a]overlay=x='40+(t-0.5)*200':y=60:enable='between(t,0.5,2)':shortest=1[v1];"
             "[v1][b]overlay=x='560-(t-3)*150':y=220:enable='gte(t,3)':shortest=1" % (W, H, FPS, SECONDS, FPS, FPS))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-filter_complex", graph, "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-g", str(2 * FPS), path], check=True, timeout=HANG_S)
    return path


def chromium(t, *args):
    """Chromium headless on its own profile, in its own session, killed whole when done; (status, stdout)."""
    cmd = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--hide-scrollbars",
           "--user-data-dir=" + t.path("chromium-profile")] + list(args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        out = ""
        print("FAIL: chromium %s did not finish within %d s" % (" ".join(args), HANG_S), flush=True)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its zygote and helpers, if any stayed
        except ProcessLookupError:
            pass
        proc.wait()
    return proc.returncode, out


class Dom(html.parser.HTMLParser):
    """Elements as (tag, attrs, text) with the text inside them, and for each article the elements in it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements, self.stack, self.title = [], [], None

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": "", "parents": [e for e in self.stack]}
        self.elements.append(el)
        if tag not in ("img", "meta", "br", "input", "link"):
            self.stack.append(el)

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for el in self.stack:
            el["text"] += data

    def find(self, tag=None, cls=None, inside=None):
        return [e for e in self.elements if (tag is None or e["tag"] == tag)
                and (cls is None or cls in e["attrs"].get("class", "").split())
                and (inside is None or inside in e["parents"])]


def parse(text):
    d = Dom()
    d.feed(text)
    return d


def clip_text(ms):
    return "%+.2f s" % (ms / 1000.0)


def utc_text(ms):
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return "%s.%03d UTC" % (t.strftime("%Y-%m-%d %H:%M:%S"), ms % 1000)


def style_pct(el, name):
    m = re.search(r"(?:^|;)%s:([0-9.]+)%%" % name, el["attrs"].get("style", ""))
    return float(m.group(1)) if m else None


def check_files(t, report, episodes):
    """The page as written: no URL to anywhere, only inline script and style; the previews beside it, byte for byte."""
    page = open(os.path.join(report, "index.html")).read()
    d = parse(page)
    refs = [e["attrs"].get(a) for e in d.elements for a in ("src", "href") if e["attrs"].get(a)]
    t.check(refs and all(re.fullmatch(r"#ep-[0-9]+|[0-9]+-(preview|frame-preview)\.jpg", r) for r in refs),
            "the page refers only to its own anchors and the JPEGs beside it: %s" % refs)
    t.check(not re.search(r"https?:|//[a-z]|@import|url\(", page), "the page names no URL (no CDN, no font, no fetch)")
    t.check(not d.find("link") and all("src" not in s["attrs"] for s in d.find("script")) and len(d.find("script")) == 1,
            "one inline script, no <link>")
    for eid, vs in episodes.items():
        for field, suffix in (("preview", "preview"), ("frame_preview", "frame-preview")):
            path = os.path.join(report, "%d-%s.jpg" % (eid, suffix))
            want = base64.b64decode(vs[-1][field]) if field in vs[-1] else None
            t.check(want is not None, "episode %d: its last version has a %s" % (eid, field))
            t.check(os.path.exists(path) and want is not None and open(path, "rb").read() == want,
                    "episode %d: %s is its last %s, decoded" % (eid, path, field))


def check_episode(t, d, art, eid, vs, first_ts):
    """One episode as Chromium shows it."""
    last = vs[-1]
    label = "episode %d" % eid
    one = lambda cls, tag=None: (d.find(tag, cls, art) or [{"text": None, "attrs": {}}])[0]
    t.check(art["attrs"].get("data-episode-id") == str(eid) and one("id")["text"] == str(eid),
            "%s: the exact 64-bit id, got %s" % (label, art["attrs"].get("data-episode-id")))
    t.check(one("type")["text"] == last["episode_type"], "%s: type %r shown as %r (escaped, not markup)"
            % (label, last["episode_type"], one("type")["text"]))
    top, fine = last.get("close_reason"), last.get("payload", {}).get("close_reason")
    got_top, got_fine = one("close-reason-top")["text"], one("close-reason-payload")["text"]
    t.check((got_top, got_fine) == (top, fine), "%s: close reasons (%s, %s) shown, got (%s, %s)"
            % (label, top, fine, got_top, got_fine))
    t.check(one("versions")["text"] == str(len(vs)), "%s: %d versions shown, got %s" % (label, len(vs), one("versions")["text"]))
    for cls, ms in (("opened", last["opened_at"]), ("closed", last.get("closed_at"))):
        text = one(cls, "dd")["text"] or ""
        t.check(ms is not None and text.startswith(clip_text(ms - first_ts)) and utc_text(ms) in text,
                "%s: %s at %s (%s), got %r" % (label, cls, clip_text((ms or 0) - first_ts), utc_text(ms or 0), text))
    pre = one("payload", "pre")["text"]
    try:
        shown = json.loads(pre or "")
    except ValueError:
        shown = None
    t.check(shown == last["payload"], "%s: the payload reads back as the record's: %r" % (label, pre))
    imgs = d.find("img", None, art)
    t.check(sorted(i["attrs"].get("class") for i in imgs) == ["frame-preview", "preview"],
            "%s: two pictures, preview and frame preview: %s" % (label, [i["attrs"] for i in imgs]))
    for img in imgs:
        t.check(img["attrs"].get("data-loaded") == "1" and int(img["attrs"].get("data-natural-width", "0")) > 0,
                "%s: %s loaded in the browser: %s" % (label, img["attrs"].get("src"), img["attrs"]))
    check_boxes(t, d, art, last, label)


def check_boxes(t, d, art, last, label):
    """The boxes over the frame preview are the detections made at its time, where they were, labelled."""
    boxes = d.find("div", "box", art)
    dets = [x for x in last.get("detections", []) if x["detected_at"] == last.get("frame_preview_timestamp")]
    t.check(dets and len(boxes) == len(dets), "%s: %d boxes drawn for %d detections at the frame preview's time"
            % (label, len(boxes), len(dets)))
    for el, det in zip(boxes, dets):
        b = det["appearance"]["box"]
        want = {"left": b["left"], "top": b["top"], "width": b["right"] - b["left"], "height": b["bottom"] - b["top"]}
        got = {k: style_pct(el, k) for k in want}
        t.check(all(got[k] is not None and abs(got[k] - 100 * v) < 0.01 for k, v in want.items()),
                "%s: box at %s%%, detection %s" % (label, got, b))
        t.check(el["text"] == "human 0.90", "%s: box labelled with its class: %r" % (label, el["text"]))


def check_timeline(t, d, episodes, first_ts, last_ts):
    bars = d.find("a", "bar")
    order = sorted(episodes, key=lambda eid: episodes[eid][0]["opened_at"])
    t.check([b["attrs"].get("href") for b in bars] == ["#ep-%d" % eid for eid in order],
            "a bar per episode, in order, linking to it: %s" % [b["attrs"].get("href") for b in bars])
    for bar, eid in zip(bars, order):
        last = episodes[eid][-1]
        span = last_ts - first_ts
        left, width = style_pct(bar, "left"), style_pct(bar, "width")
        t.check(left is not None and abs(left - 100.0 * (last["opened_at"] - first_ts) / span) < 0.01
                and abs(width - 100.0 * (last["closed_at"] - last["opened_at"]) / span) < 0.01,
                "bar of %d spans its episode on the clip: left %s%%, width %s%%" % (eid, left, width))
        reasons = [r for r in (last.get("close_reason"), last["payload"].get("close_reason")) if r]
        t.check(last["episode_type"] in bar["text"] and all(r in bar["text"] for r in reasons)
                and clip_text(last["opened_at"] - first_ts) in bar["text"],
                "bar of %d says its type, time and close reasons %s: %r" % (eid, reasons, bar["text"]))


def check_refusals(t, clip, rule):
    not_dir = t.path("a-file")
    open(not_dir, "w").close()
    r = run(["replay", clip, "--script", rule, "--report", not_dir], timeout=HANG_S)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    t.check(r.returncode != 0 and lines and lines[0] == "vigil: --report %s: not a directory" % not_dir,
            "--report on a file: refused in one line naming it: %r" % r.stderr[:300])
    t.check(not os.path.exists(not_dir + "/index.html"), "--report on a file writes nothing")


def main():
    if not os.access(CHROMIUM, os.X_OK):
        print("SKIP: %s is not installed (Debian's chromium package: tools/install-deps.sh)" % CHROMIUM, flush=True)
        sys.exit(77)
    t = Suite("report")
    clip = make_clip(t.path("two-boxes.mp4"))
    rule = t.path("follow.lua")
    with open(rule, "w") as f:
        f.write(RULE)
    report, out = t.path("report"), t.path("episodes.jsonl")

    # --report alone writes no JSON lines to stdout
    r = run(["replay", clip, "--script", rule, "--start", "0", "--media", "yard", "--report", t.path("alone")], timeout=HANG_S)
    t.check(r.returncode == 0 and r.stdout == "", "--report alone: exit 0, nothing on stdout (%s)" % r.stderr[-300:])
    t.check(os.path.exists(t.path("alone/index.html")), "--report alone writes the page")

    r = run(["replay", clip, "--script", rule, "--start", "0", "--media", "yard", "--out", out, "--report", report], timeout=HANG_S)
    t.check(r.returncode == 0, "replay --out --report exits 0: %s" % r.stderr[-500:])
    index = os.path.join(report, "index.html")
    t.check("%s: 2 episodes" % index in r.stderr, "the log names the page: %r" % r.stderr[-300:])
    episodes = by_episode(read_versions(out))
    t.check(len(episodes) == 2 and all(eid > 2 ** 53 for eid in episodes), "two episodes, ids beyond 2^53: %s" % list(episodes))
    closes = [(vs[-1].get("close_reason"), vs[-1]["payload"].get("close_reason"))
              for vs in sorted(episodes.values(), key=lambda vs: vs[0]["opened_at"])]
    t.check(closes == [("timeout", "clear"), (None, "end_of_stream")], "scene: a time-out, then the end of the clip: %s" % closes)
    if not os.path.exists(index):
        t.done()
    check_files(t, report, episodes)

    status, dom = chromium(t, "--dump-dom", "file://" + index)
    t.check(status == 0 and "<body" in dom, "chromium --dump-dom ran (status %s)" % status)
    d = parse(dom)
    body = (d.find("body") or [{"attrs": {}}])[0]
    n_imgs = len(d.find("img"))
    t.check(body["attrs"].get("data-images-loaded") == "%d/%d" % (n_imgs, n_imgs) and n_imgs == 4,
            "the page's script ran after load and every image loaded: %s of 4" % body["attrs"].get("data-images-loaded"))
    title = (d.find("title") or [{"text": None}])[0]["text"]
    t.check(title == "vigil report: " + clip, "the title is the clip's (no injected script ran): %r" % title)
    t.check(len(d.find("script")) == 1 and not d.find("i") and not d.find("b", None, d.find("pre")[0] if d.find("pre") else None),
            "the rule's markup stayed text: no <i>, no <b> in the payload, one script")
    arts = d.find("article", "episode")
    t.check(len(arts) == len(episodes), "%d episodes on the page, %d in --out" % (len(arts), len(episodes)))
    t.check(d.find(None, "count") and d.find(None, "count")[0]["text"] == "%d episodes" % len(episodes),
            "the header counts them")
    first_ts = 0  # --start 0: the first frame is at 0
    last_ts = max(v["updated_at"] for vs in episodes.values() for v in vs)  # the clip's last frame closes the 2nd
    for art in arts:
        eid = int(art["attrs"].get("data-episode-id", "0"))
        if t.check(eid in episodes, "the page's episode %d is one of --out's" % eid):
            check_episode(t, d, art, eid, episodes[eid], first_ts)
    check_timeline(t, d, episodes, first_ts, last_ts)

    shot = os.path.join(report, "report.png")
    status, _ = chromium(t, "--screenshot=" + shot, "--window-size=1280,1600", "file://" + index)
    size = png_size(shot) if os.path.exists(shot) else None
    t.check(status == 0 and size == (1280, 1600), "chromium saved a 1280x1600 screenshot: %s" % (size,))
    print("INFO: screenshot %s (%d bytes)" % (shot, os.path.getsize(shot) if size else 0))

    check_refusals(t, clip, rule)
    shutil.rmtree(t.path("chromium-profile"), ignore_errors=True)
    t.done()


main()
