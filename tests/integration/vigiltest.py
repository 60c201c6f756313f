"""vigiltest.py — what the integration tests share: a pass/fail counter that prints the closing
"N passed, M failed" line, clip generation with ffmpeg's lavfi sources (objects whose motion is known),
running the vigil binary, reading the JSON-lines versions it writes (ids parsed as exact ints), the
Central stand-in, and the two numbers every timing limit is made of (tests/README.md, "Timing")."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SRC = os.environ.get("VIGIL_SRC", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("VIGIL_BUILD", os.path.join(SRC, "build"))
VIGIL = os.environ.get("VIGIL", os.path.join(BUILD, "vigil"))
VIGIL_ASAN = os.environ.get("VIGIL_ASAN") or None

# Timing (tests/README.md): a limit is a promise vigil documents plus SLACK_S, or it is no limit at all: the
# test waits for the event itself, and HANG_S only ends a wait for something that never comes.
SLACK_S = 5.0   # what a loaded 2-core machine (ctest -j 2, another process spinning on one core) may add to
                # one thing vigil promises to do at once: a thread scheduled late, a server starting slowly
HANG_S = 60.0   # a deadline that only bounds a hang: no correct run comes near it


def wait_for(cond, timeout=HANG_S, step=0.2):
    """Polls cond every step seconds until it returns something true, and returns that; after timeout seconds,
    cond's last value. The timeout bounds a hang; it is never what a check is about."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    return cond()


class Suite:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.tmp = tempfile.mkdtemp(prefix="vigil-%s-" % name)

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s" % what, flush=True)
        return cond

    def path(self, name):
        return os.path.join(self.tmp, name)

    def done(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        if self.failed == 0:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print("kept %s for inspection" % self.tmp)
        sys.exit(1 if self.failed else 0)


def make_clip(path, seconds=6, size="640x360", fps=25, boxes=(), codec="libx264", extra=()):
    """A grey clip; each box is (x, y, w, h, color, t_from, t_to) drawn while t_from <= t < t_to."""
    filters = ["color=c=0x808080:s=%s:r=%d:d=%s" % (size, fps, seconds)]
    for (x, y, w, h, color, t0, t1) in boxes:
        # lavfi's between() is inclusive at both ends; frames are at k/fps, so end just before t1
        filters.append("drawbox=x=%s:y=%s:w=%s:h=%s:color=%s:t=fill:enable='gte(t,%s)*lt(t,%s)'"
                       % (x, y, w, h, color, t0, t1))
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", ",".join(filters),
           "-c:v", codec, "-pix_fmt", "yuv420p", "-g", str(fps * 2)] + list(extra) + [path]
    subprocess.run(cmd, check=True)
    return path


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def run(args, binary=None, timeout=300, env=None):
    """vigil ARGS to its end (timeout only bounds a hang); the result also has .seconds, the wall time it took."""
    cmd = [binary or VIGIL] + list(args)
    full_env = dict(os.environ)
    full_env.update(env or {})
    started = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
    r.seconds = time.monotonic() - started
    return r


def read_versions(path):
    """Every line of a JSON-lines file as (record, raw text); none when the file is missing (a failed run wrote
    nothing: the checks on what it should have written fail, and the checks after them still run)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append((json.loads(line), line))
    return out


def by_episode(versions):
    episodes = {}
    for record, raw in versions:
        episodes.setdefault(record["episode_id"], []).append(record)
    return episodes


def replace_atomically(path, text):
    """How editors save: write a temporary file, then rename it over the original."""
    tmp = path + ".swp~"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


class CentralStub:
    """tests/servers/central_stub.py in its own process (session), taking KEY, with its accepted-versions log
    NAME.stub.jsonl; extra are more of its options (e.g. "--fail-first-seconds", "2.5")."""

    def __init__(self, t, name, key, *extra, port=0):
        self.log = t.path(name + ".stub.jsonl")
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(SRC, "tests", "servers", "central_stub.py"),
                                      "--key", key, "--log", self.log, "--port", str(port)] + list(extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        assert line.startswith("READY "), "central_stub did not start: %r" % line
        self.url = line.split()[1]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=HANG_S) as r:
            return json.loads(r.read())

    def state(self):
        """The stub's view: {"statuses": {"200": n, ...}, "episodes": ...}."""
        return self.call("GET", "/_episodes")

    def control(self, **mode):
        return self.call("POST", "/_control", mode)

    def accepted(self):
        """Accepted versions per episode id (exact ints), in arrival order."""
        out = {}
        for rec, _ in read_versions(self.log) if os.path.exists(self.log) else []:
            out.setdefault(rec["episode_id"], []).append(rec["body"])
        return out

    def last_accepted(self):
        """The newest accepted body per episode id."""
        return {eid: bodies[-1] for eid, bodies in self.accepted().items()}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


# A rule in two versions and a broken edit between them, for the hot-reload tests: version 1 opens one
# episode and counts frames in vigil.keep; version 2 picks the episode up in on_reload and goes on counting.
RELOAD_V1 = """
local vigil = require "vigil"
vigil.keep.n = vigil.keep.n or 0
local ep
function on_frame(frame)
  vigil.keep.n = vigil.keep.n + 1
  ep = ep or vigil.episode(frame, { episode_type = "reload" })
  ep:set_payload({ version = 1, n = vigil.keep.n })
  ep:extend(frame)
end
"""

RELOAD_BROKEN = "function on_frame(frame)\n  local = 1\nend\n"

RELOAD_V2 = """
local vigil = require "vigil"
local ep
function on_reload(keep)
  ep = vigil.episodes()[1]
  vigil.log("v2 took over", ep and ep.id or "nothing", "at n =", keep.n)
end
function on_frame(frame)
  vigil.keep.n = vigil.keep.n + 1
  ep:set_payload({ version = 2, n = vigil.keep.n })
  ep:extend(frame)
end
"""


class WatchedReplay:
    """`vigil replay CLIP --realtime --watch` of a rule, its log read as it comes (lines), until finish()."""

    def __init__(self, clip, rule, out):
        self.out = out
        self.proc = subprocess.Popen([VIGIL, "replay", clip, "--script", rule, "--realtime", "--watch", "--start", "0",
                                      "--out", out], stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self.reader.start()

    def running_after(self, cond):
        """cond() came true while the replay still runs (waits for it; the wait only bounds a hang)."""
        return wait_for(lambda: cond() or self.proc.poll() is not None, step=0.05) and self.proc.poll() is None

    def wrote(self):
        return self.running_after(lambda: os.path.exists(self.out) and os.path.getsize(self.out))

    def finish(self):
        """(exit status, whole log) once the replay ends."""
        self.proc.wait(timeout=60)
        self.reader.join()
        return self.proc.returncode, "".join(self.lines)


def png_size(path):
    """(width, height) of a PNG file (a browser test's screenshot), or None when it is no PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
