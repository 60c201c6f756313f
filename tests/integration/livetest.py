"""livetest.py — what the live integration tests share: the real RTSP server (tests/servers/rtsp_server.py with
--stamp, in its own process group), a TCP server that is not RTSP, `vigil run` started and stopped (Run: its
log read as it comes, so a test waits for events instead of sleeping), its output file read as it grows, and
the stamped-frame rule: it reads the capture time the server drew on each frame, so a test can check each
frame's ts against the truth, and writes one episode per frame (episode_type "frame"), one per on_stream event
("stream") and a "session" episode open from the first frame until shutdown."""
import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vigiltest import HANG_S, SLACK_S, SRC, VIGIL, read_versions, wait_for, write

SERVER = os.path.join(SRC, "tests", "servers", "rtsp_server.py")
PY = "/usr/bin/python3"          # Debian's python has gi
FRAME_MS = 40                    # the server's default 25 fps
# rtcp_wait_ms of the live tests: frames wait at most this long for the server's first sender report, and a
# test that wants every frame stamped "rtcp" needs it to come in time. It comes about 1.2 s after vigil starts
# connecting, 3.3 s for a client joining a shared media over UDP (measured: "frame time from RTCP sender
# reports, N s after connecting"); plus SLACK_S for a loaded machine.
FIRST_SR_S = 3.3
RTCP_WAIT_MS = int((FIRST_SR_S + SLACK_S) * 1000)
SECRET = "s3cretPW"              # the password in every test URL: it must never reach a log line

# Reads the capture time the server drew (32 bits over 32 blocks, their complement in the band below);
# one episode per frame with what the rule saw. A session episode stays open until shutdown.
STAMP_RULE = """
local vigil = require "vigil"
local n, session, last = 0, nil, nil
local band = vigil.params.band -- band height as a fraction of the frame height

local function marker(frame)
  local ms = 0
  for i = 0, 31 do
    local x = (i + 0.25) / 32
    local top = frame:mean({x, 0.25 * band, 0.5 / 32, 0.5 * band})
    local bottom = frame:mean({x, 1.25 * band, 0.5 / 32, 0.5 * band})
    if (top > 128) == (bottom > 128) then return -1 end
    ms = ms * 2 + (top > 128 and 1 or 0)
  end
  return ms
end

function on_stream(event)
  local t = last or os.time() * 1000
  vigil.episode(t, {episode_type = "stream", payload = {event = event, n = n}}):close(t)
end

function on_frame(frame)
  n = n + 1
  last = frame.ts
  if not session then session = vigil.episode(frame, {episode_type = "session"}) end
  local ep = vigil.episode(frame, {episode_type = "frame",
    payload = {ts = frame.ts, clock = frame.clock, n = n, marker = marker(frame)}})
  ep:close(frame)
end
"""

# ---------------------------------------------------------------- servers

class Server:
    """rtsp_server.py in its own process group (with --stamp unless stamp=False); READY urls read from its stdout."""

    def __init__(self, t, name, mounts, port=0, faketime=None, extra=(), stamp=True):
        self.t, self.name, self.mounts, self.port, self.faketime = t, name, mounts, port, faketime
        self.extra = (["--stamp"] if stamp else []) + list(extra)
        self.start()

    def start(self):
        cmd = [PY, SERVER, "--port", str(self.port)] + self.extra
        for m in self.mounts:
            cmd += ["--mount", m]
        env = dict(os.environ)
        if self.faketime:
            cmd = ["faketime", "-f", self.faketime] + cmd
            env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
        self.err = open(self.t.path(self.name + ".err"), "a")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, env=env,
                                     start_new_session=True)
        self.urls = self.read_ready(time.time() + HANG_S)
        if len(self.urls) != len(self.mounts):
            raise SystemExit("%s did not start: see %s" % (self.name, self.t.path(self.name + ".err")))
        self.port = int(re.match(r"rtsp://[^:]+:(\d+)/", self.urls[0]).group(1))

    def read_ready(self, deadline):
        """The READY urls, one per mount. Raw reads: the server may print them all in one write, and a
        buffered readline would keep the later lines where select() cannot see them."""
        fd, text, urls = self.proc.stdout.fileno(), b"", []
        while len(urls) < len(self.mounts) and time.time() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            chunk = os.read(fd, 4096) if ready else b""
            if ready and not chunk:
                break
            text += chunk
            lines = text.decode().split("\n")[:-1]  # whole lines only
            urls = [l.split()[1] for l in lines if l.startswith("READY ")]
        return urls

    def url(self, i=0, password=True):
        return self.urls[i].replace("rtsp://", "rtsp://viewer:%s@" % SECRET) if password else self.urls[i]

    def signal(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self):
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()
        self.proc.stdout.close()
        self.err.close()


class NotRtsp:
    """A TCP server that answers anything with an HTTP error and hangs up."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(2)
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            conn.close()


class ConfigExternal:
    """A config_external stand-in: GET {url}/streams answers with .streams, or 500 while .failing; given a
    key, a request without `Authorization: Bearer KEY` gets 401 (counted in .refused)."""

    def __init__(self, key=None, streams=None):
        self.streams, self.failing, self.requests, self.refused = streams or [], False, 0, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                if key and self.headers.get("Authorization") != "Bearer " + key:
                    outer.refused += 1
                    return self.answer(401, {"errors": [{"title": "bad key"}]})
                if self.path != "/api/streams":
                    return self.answer(404, {})
                if outer.failing:
                    return self.answer(500, {"errors": [{"title": "down for the test"}]})
                self.answer(200, {"streams": outer.streams})

            def answer(self, status, doc):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/api" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- vigil

SAFETY_NET_S = 300  # Run's --duration: a run the test forgot to stop still ends (ctest's own limit is 600 s)


class Run:
    """`vigil run CONFIG` until stop() (SIGTERM); --duration only as a safety net. Its stderr is read as it comes,
    each line with the time.time() it was read (at or after vigil wrote it): a test waits for a log line instead
    of sleeping, and knows when the line came."""

    def __init__(self, cfg, binary=None, env=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.started = time.time()
        self.proc = subprocess.Popen([binary or VIGIL, "run", cfg, "--duration", str(SAFETY_NET_S)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=full_env)
        self.lines, self.lock = [], threading.Lock()
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self):
        for line in self.proc.stderr:
            with self.lock:
                self.lines.append((time.time(), line.rstrip("\n")))

    def timed(self, pred=None, since=None):
        """(time read, line) of the lines so far that pred accepts, read at or after since."""
        with self.lock:
            return [(at, l) for at, l in self.lines if (since is None or at >= since) and (pred is None or pred(l))]

    def log(self):
        return "\n".join(l for _, l in self.timed())

    def until(self, cond, timeout=HANG_S, step=0.25):
        """cond() once it is true; false when vigil exited first or after timeout (which only bounds a hang)."""
        wait_for(lambda: cond() or self.proc.poll() is not None, timeout, step)
        return cond()

    def wait_line(self, pred, count=1, since=None, timeout=HANG_S):
        """The first count matching lines (time read, line), once there are that many; else the ones there are."""
        self.until(lambda: len(self.timed(pred, since)) >= count, timeout, step=0.05)
        return self.timed(pred, since)[:count]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=HANG_S):
        """SIGTERM, then its exit status and whole log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join()
        self.proc.stderr.close()
        return self.proc.returncode, self.log()


class Output:
    """The JSON-lines file a run writes, read incrementally (polling it must not load the machine: the RTSP
    server makes frames late when it does not get the CPU in time). A line being written waits for the next
    read."""

    def __init__(self, path):
        self.path, self.offset, self.recs = path, 0, []

    def read(self):
        if os.path.exists(self.path):
            with open(self.path) as f:
                f.seek(self.offset)
                for line in f:
                    if not line.endswith("\n"):
                        break
                    self.offset += len(line.encode())
                    if line.strip():
                        self.recs.append(json.loads(line))
        return self.recs


def per_media(recs, kind=None, since=None):
    """Versions per media (of one episode type); since: media -> index in recs where its counting starts."""
    counts = {}
    for i, r in enumerate(recs):
        if (kind is None or r.get("episode_type") == kind) and i >= (since or {}).get(r["media"], 0):
            counts[r["media"]] = counts.get(r["media"], 0) + 1
    return counts


def frames_of(recs):
    """media -> payloads of its "frame" episodes (the stamped-frame rule), in order."""
    frames = {}
    for r in recs:
        if r.get("episode_type") == "frame":
            frames.setdefault(r["media"], []).append(r["payload"])
    return frames


def announced_delay(line):
    """The seconds a "retrying in X s" / "reconnecting in X s" line announced, or None."""
    m = re.search(r"(?:retrying|reconnecting) in ([0-9.]+) s", line)
    return float(m.group(1)) if m else None


def frames_by_media(out):
    frames, streams, sessions = {}, {}, {}
    for rec, _ in read_versions(out):
        kind = rec.get("episode_type")
        if kind == "frame":
            frames.setdefault(rec["media"], []).append(rec["payload"])
        elif kind == "stream":
            streams.setdefault(rec["media"], []).append(rec["payload"]["event"])
        elif kind == "session" and "closed_at" in rec:
            sessions[rec["media"]] = rec
    return frames, streams, sessions


def marker_error(p):
    """ts minus the capture time drawn on the frame, in ms (both mod 2^32)."""
    d = ((p["ts"] & 0xFFFFFFFF) - p["marker"]) & 0xFFFFFFFF
    return d - (1 << 32) if d >= 1 << 31 else d


def config(t, name, cameras, log_level="info"):
    """A run config: every camera on rule.lua (the stamped-frame rule, written by the test) unless it says
    otherwise, versions to NAME.jsonl. Returns (config path, output path)."""
    out = t.path(name + ".jsonl")
    doc = {"node": {"machine_id": 9, "log_level": log_level}, "output": {"file": out},
           "defaults": {"stall_timeout_ms": 3000, "rtcp_wait_ms": RTCP_WAIT_MS},
           "cameras": [dict({"script": "rule.lua", "params": {"band": 20 / 360}}, **c) for c in cameras]}
    return write(t.path(name + ".json"), json.dumps(doc, indent=1)), out



def check_exact(t, label, frames, min_frames, outages=0):
    t.check(len(frames) >= min_frames, "%s: at least %d frames, got %d" % (label, min_frames, len(frames)))
    if not frames:
        return
    t.check(all(p["clock"] == "rtcp" for p in frames), "%s: every frame has clock rtcp" % label)
    t.check(all(p["marker"] >= 0 for p in frames), "%s: the drawn time is readable on every frame" % label)
    errors = sorted(set(marker_error(p) for p in frames if p["marker"] >= 0))
    t.check(errors and max(abs(e) for e in errors) <= 1,
            "%s: ts = capture time drawn on the frame (+-1 ms), not a frame late; ts - drawn: %s" % (label, errors))
    steps = [b["ts"] - a["ts"] for a, b in zip(frames, frames[1:])]
    gaps = [s for s in steps if s > 1000]
    steps = sorted(set(s for s in steps if s <= 1000))
    t.check(steps and min(steps) >= FRAME_MS - 1 and max(steps) <= FRAME_MS + 1 and len(gaps) <= outages,
            "%s: frame-to-frame step is %d ms (+-1), got %s, and %d outages: %s" % (label, FRAME_MS, steps, outages, gaps))
