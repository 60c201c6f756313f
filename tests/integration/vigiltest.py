"""vigiltest.py — what the integration tests share: a pass/fail counter that prints the closing
"N passed, M failed" line, clip generation with ffmpeg's lavfi sources (objects whose motion is known),
running the vigil binary, and reading the JSON-lines versions it writes (ids parsed as exact ints)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("VIGIL_SRC", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("VIGIL_BUILD", os.path.join(SRC, "build"))
VIGIL = os.environ.get("VIGIL", os.path.join(BUILD, "vigil"))
VIGIL_ASAN = os.environ.get("VIGIL_ASAN") or None


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
    cmd = [binary or VIGIL] + list(args)
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)


def read_versions(path):
    """Every line of a JSON-lines file as (record, raw text)."""
    out = []
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
