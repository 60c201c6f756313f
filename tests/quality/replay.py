"""replay.py — running a rule over an input with `vigil replay --start 0` (episode times are then ms from the clip's
start) and reading back what it sent: the JSON-lines episode versions, one episode per id (ids parsed as exact
Python ints), with its first and its final version."""
import json
import os
import subprocess
import time
from dataclasses import dataclass


BUDGET_MS = 2000


@dataclass
class Episode:
    id: int
    opened_at: int
    closed_at: int              # the final version's closed_at, or its updated_at if it never closed
    closed: bool
    first_reported: int         # updated_at of the first version: when the rule first said so
    versions: int
    episode_type: str
    payload: dict
    preview: str                # base64 JPEG or None
    preview_ts: int


@dataclass
class Run:
    episodes: list
    error: str                  # the replay failed (exit status, timeout): its episodes are not the rule's
    logged: str                 # the first error line it logged (a failed callback), episodes still scored
    seconds: float


def replay(vigil, clip, script, params, out, timeout=600):
    """Runs the rule; returns a Run (episodes sorted by opened_at)."""
    if os.path.exists(out):
        os.remove(out)
    # the time budget is wall time: a loaded machine (two replays at once, a build beside them) pushes a rule's
    # occasional slow frame over the default 50 ms, and the cut callback changes its episodes; quality is scored
    # with a budget that only a real hang reaches
    cmd = [vigil, "replay", clip, "--script", script, "--params", json.dumps(params), "--start", "0",
           "--media", "quality", "--out", out, "--log-level", "warn", "--budget-ms", str(BUDGET_MS)]
    started = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Run([], "timed out after %d s" % timeout, "", time.monotonic() - started)
    seconds = time.monotonic() - started
    error = "exit %d: %s" % (r.returncode, r.stderr.strip()[-400:]) if r.returncode != 0 else ""
    bad = [line for line in r.stderr.splitlines() if " error" in line or "failed" in line]
    return Run(read_episodes(out), error, bad[0][:300] if bad else "", seconds)


def read_episodes(path):
    first, last, count = {}, {}, {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                v = json.loads(line)
                eid = v["episode_id"]
                if not isinstance(eid, int):
                    eid = int(eid)
                first.setdefault(eid, v)
                last[eid] = v
                count[eid] = count.get(eid, 0) + 1
    out = []
    for eid, v in last.items():
        out.append(Episode(id=eid, opened_at=v["opened_at"], closed_at=v.get("closed_at", v["updated_at"]),
                           closed="closed_at" in v, first_reported=first[eid]["updated_at"], versions=count[eid],
                           episode_type=v.get("episode_type", ""), payload=v.get("payload") or {},
                           preview=v.get("preview"), preview_ts=v.get("preview_timestamp")))
    out.sort(key=lambda e: (e.opened_at, e.id))
    return out
