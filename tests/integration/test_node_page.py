"""test_node_page.py — the live page of an analytics node (GET / on node.listen), in headless Chromium against a
running `vigil run` on the test RTSP server.

The RTSP server has two mounts, each with a white box crossing black from 1 s to 6 s of its media time (its
media starts with its first client). The node (a key file) runs the stock motion rule on camera "door" with an
episode_type full of markup; the test waits (on the API) for door's episode to close, then drives Chromium over
--remote-debugging-pipe (the DevTools protocol as NUL-separated JSON on fds 3 and 4: no websocket module):
- the page asks for the key (nothing else shown); a wrong key is refused and said so; the right one, typed in,
  shows the camera up with its fps (frames per second of stream time: the camera's fps limit), clock source
  (rtcp), last frame time and open episodes, and door's episode with the exact 64-bit id, the type and media as
  text (no markup made of them, document.title untouched), state, and its preview (the record's base64, as a
  data: URL) loaded in the browser (naturalWidth > 0, recorded by the page's script);
- a reload asks for no key (sessionStorage), and the key is in no log line;
- live: a camera added by SIGHUP (media name with markup) shows up, up, and its episode (opened after the page
  loaded) appears with its preview, with no reload of the page (a marker set in the window survives);
- a screenshot at 1280 px wide is taken (docs/img/node-page.png comes from it; VIGIL_PAGE_SHOT=PATH keeps it);
- a node without a key: the page loads from 127.0.0.1 with no key asked; from this machine's non-loopback address
  (when it has one) the page is refused with 403 and the API still answers (Central's access is unchanged). Its
  rule stores 120 episodes at once: the page shows exactly the 48 newest, newest first, and read the store from
  where they begin (found with limit=1 queries), not from 0. This run is the sanitized binary when it is built.
Exits 77 (skipped) without Chromium."""
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from vigiltest import HANG_S, SRC, Suite, VIGIL_ASAN, png_size, wait_for, write
from livetest import RTCP_WAIT_MS, SECRET, Run, Server, free_port

CHROMIUM = "/usr/bin/chromium"
KEY = "pAge-Key-19"
API = "/vision/api/v3"
FPS = 5                         # the cameras' fps limit: the page's fps is frames analysed per second of ts
FPS_SPAN_MS = 4000              # the checks wait for an fps measured over this much stream time (one frame: 0.25)
WIDTH, HEIGHT = 1280, 860       # the screenshot
HOSTILE_TYPE = "motion <img src=x onerror=\"document.title='pwned'\"> & <b>bold</b>"
YARD = "yard<i>&amp;</i>"       # a media name may hold markup (no spaces)


# ---------------------------------------------------------------- Chromium over the DevTools pipe

class Browser:
    """Headless Chromium with --remote-debugging-pipe: it reads commands on fd 3 and writes answers and events on
    fd 4, each a JSON message ended by a NUL byte. One page, attached in flat mode (sessionId in each message)."""

    def __init__(self, t):
        cmd_r, self.cmd_w = os.pipe()
        self.out_r, out_w = os.pipe()
        args = [CHROMIUM, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--hide-scrollbars", "--mute-audio",
                "--user-data-dir=" + t.path("chromium-profile"), "--window-size=%d,%d" % (WIDTH, HEIGHT)]
        # the pipes come in as stdin and stdout and the shell moves them to 3 and 4 (sh takes one-digit fds only)
        shell = 'exec "$@" 3<&0 4>&1 0</dev/null 1>&2'
        self.err = open(t.path("chromium.err"), "w")
        self.proc = subprocess.Popen(["/bin/sh", "-c", shell, "sh"] + args, stdin=cmd_r, stdout=out_w,
                                     stderr=self.err, start_new_session=True)
        os.close(cmd_r)
        os.close(out_w)
        self.next_id, self.answers, self.cond = 0, {}, threading.Condition()
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()
        self.session = None

    def read(self):
        pending = b""
        while True:
            chunk = os.read(self.out_r, 1 << 16)
            if not chunk:
                break
            pending += chunk
            *messages, pending = pending.split(b"\0")
            with self.cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self.answers[msg["id"]] = msg
                self.cond.notify_all()
        with self.cond:
            self.answers[None] = "closed"
            self.cond.notify_all()

    def send(self, method, params=None, session=True):
        with self.cond:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        with self.cond:
            self.cond.wait_for(lambda: mid in self.answers or None in self.answers, HANG_S)
            answer = self.answers.pop(mid, None)
        if not answer or "error" in answer:
            raise RuntimeError("chromium: %s: %s" % (method, answer and answer.get("error")))
        return answer["result"]

    def open(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def type_and_enter(self, text):
        self.send("Input.insertText", {"text": text})
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": "Enter", "code": "Enter",
                                                 "windowsVirtualKeyCode": 13, "text": "\r"})

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # chromium and its helpers
        except ProcessLookupError:
            pass
        self.proc.wait()
        os.close(self.cmd_w)
        self.reader.join(HANG_S)
        os.close(self.out_r)
        self.err.close()


# What the test reads from the page: everything as the browser shows it.
STATE_JS = r"""(() => {
  const text = (root, sel) => { const e = root.querySelector(sel); return e ? e.textContent : null; };
  const cams = [...document.querySelectorAll('#cameras tr')].map(r => ({
    name: r.dataset.camera, nameText: r.cells[0].textContent, state: r.dataset.state, badge: r.cells[1].textContent,
    fps: r.dataset.fps, fpsSpan: Number(r.dataset.fpsSpan), fpsText: r.cells[2].textContent,
    clock: r.cells[3].textContent,
    last: r.dataset.lastFrameAt, lastText: r.cells[4].textContent, open: r.cells[5].textContent}));
  const eps = [...document.querySelectorAll('#episodes article')].map(a => {
    const img = a.querySelector('img');
    return {id: a.dataset.episodeId, media: a.dataset.media, state: a.dataset.state, type: text(a, '.type'),
            mediaText: text(a, '.media'), src: img.getAttribute('src'), loaded: img.dataset.loaded,
            width: img.dataset.naturalWidth, complete: img.complete, natural: img.naturalWidth};
  });
  return {status: document.body.dataset.status, title: document.title, marker: window.pageMarker || null,
          keyform: !document.getElementById('keyform').hidden, keyerror: text(document, '#keyerror'),
          keyerrorShown: !document.getElementById('keyerror').hidden, live: !document.getElementById('live').hidden,
          cams, eps, images: document.images.length, markup: document.querySelectorAll('main b, main i').length};
})()"""


def state(browser):
    try:
        return browser.evaluate(STATE_JS) or {}
    except RuntimeError:
        return {}


def wait_page(browser, cond):
    """The page's state once cond(state) holds (HANG_S only ends a hang); else its last state."""
    return wait_for(lambda: (lambda s: s if s and cond(s) else None)(state(browser)), HANG_S, 0.25) or state(browser)


# ---------------------------------------------------------------- the node

def api(port, path, key=KEY, host="127.0.0.1"):
    """(status, parsed JSON body or raw text, headers)."""
    req = urllib.request.Request("http://%s:%d%s" % (host, port, path))
    if key:
        req.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req, timeout=HANG_S) as r:
            status, raw, headers = r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        status, raw, headers = e.code, e.read(), dict(e.headers)
    except (urllib.error.URLError, OSError):
        return None, None, {}
    text = raw.decode()
    try:
        # ids as exact ints: Python's json keeps big integers whole
        return status, json.loads(text), headers
    except ValueError:
        return status, text, headers


def stored(port, key=KEY):
    status, body, _ = api(port, API + "/episodes?updated_at_gt=0", key)
    return body["episodes"] if status == 200 else []


def camera(media, url):
    return {"media": media, "url": url, "script": os.path.join(SRC, "scripts", "motion.lua"),
            "params": {"episode_type": HOSTILE_TYPE, "quiet_ms": 1000}}


def node_config(t, name, listen, cameras, key_file=None):
    node = {"machine_id": 19, "log_level": "info", "spool_dir": t.path(name + "-spool"), "listen": listen}
    if key_file:
        node["api_key_file"] = key_file
    doc = {"node": node, "defaults": {"fps": FPS, "stall_timeout_ms": 3000, "rtcp_wait_ms": RTCP_WAIT_MS},
           "cameras": cameras}
    return write(t.path(name + ".json"), json.dumps(doc, indent=1))


def closed_with_preview(port, media):
    eps = [e for e in stored(port) if e["media"] == media and e.get("closed_at") and e.get("preview")]
    return eps or None


def outside_address():
    """This machine's address on its default route when it is not loopback (no packet is sent), else None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


# ---------------------------------------------------------------- checks

def check_key_asked(t, b):
    s = wait_page(b, lambda s: s.get("status") == "key")
    t.check(s.get("keyform") and not s.get("live") and not s.get("cams") and not s.get("keyerrorShown"),
            "without a key the page asks for one and shows nothing else: %s" % s)
    b.type_and_enter("wrong-" + KEY)
    s = wait_page(b, lambda s: s.get("keyerrorShown"))
    t.check(s.get("keyform") and s.get("keyerror") == "The node refused this key." and not s.get("live"),
            "a wrong key: refused, said on the form: %r" % s.get("keyerror"))
    b.type_and_enter(KEY)
    s = wait_page(b, lambda s: s.get("status") == "live" and s.get("live"))
    t.check(s.get("status") == "live" and not s.get("keyform"),
            "the right key: the page goes live: %s" % s.get("status"))


def measured(s, media):
    """The camera is listed with an fps measured over FPS_SPAN_MS of stream time."""
    return any(c["name"] == media and c["fps"] and c["fpsSpan"] >= FPS_SPAN_MS for c in s.get("cams", []))


def check_camera(t, s, media, label):
    cams = {c["name"]: c for c in s.get("cams", [])}
    c = cams.get(media)
    if not t.check(c is not None, "%s: camera %r listed: %s" % (label, media, list(cams))):
        return
    t.check(c["nameText"] == media and c["state"] == "up" and c["badge"] == "up",
            "%s: %r shown as text, state up: %s" % (label, media, c))
    # frames analysed per second of stream time: the fps limit, exact but for one frame over the span measured
    fps, span = float(c["fps"] or 0), c["fpsSpan"] or 1
    t.check(span >= FPS_SPAN_MS and abs(fps - FPS) <= 1000.0 / span + 1e-9 and c["fpsText"] == "%.1f" % fps,
            "%s: fps %s over %d ms of stream time, the camera's limit %d" % (label, c["fps"], span, FPS))
    t.check(c["clock"] == "rtcp", "%s: clock source rtcp: %s" % (label, c["clock"]))
    t.check(c["last"] and int(c["last"]) > 0 and re.match(r"\d\d:\d\d:\d\d \([0-9.]+ (s|min) ago\)$", c["lastText"]),
            "%s: last frame time shown: %r" % (label, c["lastText"]))
    t.check(c["open"] in ("0", "1"), "%s: episodes open shown: %r" % (label, c["open"]))


def check_episode(t, s, rec, label):
    eps = {e["id"]: e for e in s.get("eps", [])}
    e = eps.get(str(rec["episode_id"]))
    if not t.check(e is not None, "%s: episode %d on the page (exact id): %s" % (label, rec["episode_id"], list(eps))):
        return
    t.check(e["type"] == rec["episode_type"] and e["mediaText"] == rec["media"] and e["media"] == rec["media"],
            "%s: type and media shown as text: %r, %r" % (label, e["type"], e["mediaText"]))
    t.check(e["state"] == ("closed" if rec.get("closed_at") else "open"), "%s: state %s" % (label, e["state"]))
    t.check(e["src"] and e["src"].startswith("data:image/jpeg;base64,")
            and base64.b64decode(e["src"].split(",", 1)[1])[:2] == b"\xff\xd8",
            "%s: the preview is a JPEG in a data: URL" % label)
    t.check(e["loaded"] == "1" and int(e["width"] or 0) > 0 and e["natural"] == int(e["width"] or 0),
            "%s: the preview loaded in the browser (naturalWidth %s)" % (label, e["width"]))


def check_no_markup(t, s, label):
    t.check(s.get("title") == "vigil node", "%s: document.title untouched (no injected script ran): %r"
            % (label, s.get("title")))
    t.check(s.get("markup") == 0 and s.get("images") == len(s.get("eps", [])),
            "%s: no element made of episode or camera text (%s <b>/<i>, %s images for %d episodes)"
            % (label, s.get("markup"), s.get("images"), len(s.get("eps", []))))


def check_keyed(t, server):
    key_file = write(t.path("node.key"), KEY + "\n")
    port = free_port()
    door = camera("door", server.url(0))
    cfg = node_config(t, "keyed", "127.0.0.1:%d" % port, [door], key_file)
    run = Run(cfg)
    b = None
    try:
        if not t.check(run.until(lambda: api(port, API + "/monitoring/liveness")[0] == 200), "the node answers"):
            print(run.log()[-2000:])
            return
        status, body, headers = api(port, "/", key=None)
        t.check(status == 200 and headers.get("Content-Type", "").startswith("text/html")
                and "script-src 'sha256-" in headers.get("Content-Security-Policy", ""),
                "GET / without a key: the page (it holds no data), with its CSP: %s %s" % (status, headers))
        status, _, _ = api(port, API + "/streams", key=None)
        t.check(status == 401, "the API without the key: 401 as before (%s)" % status)
        first = run.until(lambda: closed_with_preview(port, "door"))
        if not t.check(first, "door: a motion episode closed, with a preview (API)"):
            return
        b = Browser(t)
        b.open("http://127.0.0.1:%d/" % port)
        check_key_asked(t, b)

        s = wait_page(b, lambda s: measured(s, "door") and any(e["loaded"] == "1" for e in s.get("eps", [])))
        check_camera(t, s, "door", "keyed")
        for rec in first:
            check_episode(t, s, rec, "door")
        check_no_markup(t, s, "door")

        b.evaluate("window.pageMarker = 'before the reload'")
        b.send("Page.reload")
        s = wait_page(b, lambda s: not s.get("marker") and s.get("status") in ("live", "key") and s.get("eps"))
        t.check(s.get("status") == "live" and not s.get("keyform"),
                "after a reload the key is not asked again (sessionStorage): %s" % s.get("status"))

        # live: a camera added by SIGHUP and its episode, with the page left as it is
        b.evaluate("window.pageMarker = 'still here'")
        shown = {e["id"] for e in state(b).get("eps", [])}
        loaded_at = api(port, API + "/monitoring/liveness")[1]["now"]
        node_config(t, "keyed", "127.0.0.1:%d" % port, [door, camera(YARD, server.url(1))], key_file)
        run.signal(signal.SIGHUP)
        yard = run.until(lambda: closed_with_preview(port, YARD))
        if t.check(yard, "yard: a motion episode closed, with a preview (API)"):
            s = wait_page(b, lambda s: measured(s, YARD) and measured(s, "door")
                          and any(e["id"] == str(yard[0]["episode_id"]) and e["state"] == "closed"
                                  and e["loaded"] == "1" for e in s.get("eps", [])))
            t.check(s.get("marker") == "still here", "the page updated in place, no reload: %s" % s.get("marker"))
            t.check(str(yard[0]["episode_id"]) not in shown and yard[0]["opened_at"] > loaded_at,
                    "yard's episode opened after the page had loaded (%d > %d)" % (yard[0]["opened_at"], loaded_at))
            check_camera(t, s, "door", "live")
            check_camera(t, s, YARD, "live")
            check_episode(t, s, yard[0], "yard (live)")
            check_no_markup(t, s, "live")
            t.check([e["media"] for e in s.get("eps", [])][:1] == [YARD], "the newest episode comes first")
            shot = os.environ.get("VIGIL_PAGE_SHOT") or t.path("node-page.png")
            b.screenshot(shot)
            size = png_size(shot)
            t.check(size == (WIDTH, HEIGHT), "a %dx%d screenshot: %s" % (WIDTH, HEIGHT, size))
            print("INFO: screenshot %s (%d bytes)" % (shot, os.path.getsize(shot)))
    finally:
        if b:
            b.close()
        code, log = run.stop()
    t.check(code == 0, "the keyed node exits 0 on SIGTERM (%s)" % code)
    t.check(KEY not in log and SECRET not in log, "neither the node key nor the camera password in the log")


# More episodes than the page shows (SHOWN in web/node.html): BURST_FRAMES frames with three episodes each.
SHOWN = 48
BURST_FRAMES = 40
BURST_RULE = """
local vigil = require "vigil"
local n = 0
function on_frame(frame)
  n = n + 1
  if n > %d then return end
  for i = 1, 3 do
    vigil.episode(frame, {episode_type = "burst", payload = {frame = n, i = i}}):close(frame)
  end
end
""" % BURST_FRAMES


def check_open(t, server):
    """A node without a key: loopback only for the page; the API as before. Its rule makes more episodes than
    the page shows: the page shows the newest, and does not read the whole store to find them."""
    rule = write(t.path("burst.lua"), BURST_RULE)
    # port 0: the kernel picks one and vigil says which (a port picked here could be taken before vigil binds it)
    cfg = node_config(t, "open", "0.0.0.0:0", [{"media": "door", "url": server.url(0), "script": rule}])
    run = Run(cfg, binary=VIGIL_ASAN)
    b = None
    try:
        said = run.wait_line(lambda l: "node API on 0.0.0.0:0 (port " in l)
        port = int(re.search(r"\(port (\d+)\)", said[0][1]).group(1)) if said else 0
        if not t.check(port and run.until(lambda: api(port, API + "/monitoring/liveness", key=None)[0] == 200),
                       "the open node answers"):
            print(run.log()[-2000:])
            return
        status, body, headers = api(port, "/", key=None)
        t.check(status == 200 and "<title>vigil node</title>" in body, "no key: the page from 127.0.0.1 (%s)" % status)
        outside = outside_address()
        if outside:
            status, body, _ = api(port, "/", key=None, host=outside)
            t.check(status == 403 and "loopback" in body,
                    "no key: the page from %s refused: %s %r" % (outside, status, body))
            status, _, _ = api(port, API + "/monitoring/liveness", key=None, host=outside)
            t.check(status == 200, "no key: the API from %s answers as before (%s)" % (outside, status))
            t.check(run.until(lambda: run.timed(lambda l: "GET / from %s refused" % outside in l)),
                    "the refusal is logged, naming the address")
        else:
            print("INFO: no non-loopback address: the refusal is checked by unit.test_page only")
        everything = run.until(lambda: (lambda e: e if len(e) == 3 * BURST_FRAMES else None)(stored(port, None)))
        if not t.check(everything, "the burst rule stored %d episodes" % (3 * BURST_FRAMES)):
            return
        newest = sorted(everything, key=lambda e: (e["opened_at"], e["episode_id"]), reverse=True)[:SHOWN]
        b = Browser(t)
        b.open("http://127.0.0.1:%d/" % port)
        s = wait_page(b, lambda s: any(c["name"] == "door" and c["state"] == "up" for c in s.get("cams", []))
                      and len(s.get("eps", [])) >= SHOWN)
        t.check(s.get("status") == "live" and not s.get("keyform"), "no key: the page goes live without asking")
        t.check(any(c["name"] == "door" and c["state"] == "up" for c in s.get("cams", [])), "no key: door listed, up")
        t.check([e["id"] for e in s.get("eps", [])] == [str(e["episode_id"]) for e in newest],
                "of %d stored episodes the page shows the %d newest, newest first" % (len(everything), SHOWN))
        reads = b.evaluate("performance.getEntriesByType('resource').map(e => e.name)"
                           ".filter(n => n.includes('/episodes?') && !/limit=1$/.test(n))")
        first = re.search(r"updated_at_gt=(\d+)", reads[0]) if reads else None
        counts = b.evaluate("performance.getEntriesByType('resource').filter(e => /limit=1$/.test(e.name)).length")
        print("INFO: the page made %s limit=1 queries, then read from updated_at_gt=%s (the oldest of %d stored is "
              "at %d)" % (counts, first and first.group(1), len(everything), min(e["updated_at"] for e in everything)))
        t.check(first and int(first.group(1)) > 0,
                "the page found where the newest begin with limit=1 queries, and read from there: %s" % reads[:1])
    finally:
        if b:
            b.close()
        code, log = run.stop()
    t.check(code == 0, "the open node (%s) exits 0 on SIGTERM (%s): %s"
            % ("sanitized" if VIGIL_ASAN else "plain", code, log[-800:] if code else ""))


def main():
    if not os.access(CHROMIUM, os.X_OK):
        print("SKIP: %s is not installed (Debian's chromium package: tools/install-deps.sh)" % CHROMIUM, flush=True)
        sys.exit(77)
    t = Suite("node-page")
    server = Server(t, "rtsp", ["/door", "/yard"], stamp=False, extra=["--box", "1,6", "--box-clock", "media"])
    try:
        check_keyed(t, server)
        check_open(t, server)
    finally:
        server.stop()
    shutil.rmtree(t.path("chromium-profile"), ignore_errors=True)
    t.done()


main()
