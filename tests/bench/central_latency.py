#!/usr/bin/python3
"""tests/bench/central_latency.py — detection-to-Central latency on loopback (not run by ctest).

Method: a 30 s clip with boxes appearing in four regions (about 20 episodes) is replayed with --realtime,
so frames and episode versions come at the pace of a live camera, through a rule that opens, extends (every
frame) and closes an episode per region. vigil runs at --log-level debug; the Central sink logs, for every
version, the wall-clock ms at which put() was called ("central debug: put episode ID updated_at U (kind)
at MS"). tests/servers/central_stub.py logs received_ms (its wall clock, the same host clock) for every
version it accepts. Latency = received_ms - put ms, per delivered version; it includes the spool write
(two fsyncs), the queue, the HTTP round trip and the stub's own parsing.

Runs (each printed as count, p50, p90, p99, max in ms):
  first+closing  the versions that are never rate-limited (default interval 1000 ms): "detection -> Central"
  all, no limit  every version with --min-update-interval-ms 0 (25 per second per open episode)
Each against the stub as shipped (TCP_NODELAY) and, with --nagle, also against the stub with Nagle's algorithm
on (the stub writes its headers and body in two send()s; with Nagle on, the second waits for the client's
delayed ACK, ~40 ms on Linux loopback: what a Central behind such a server would add).

Usage: tests/bench/central_latency.py [--seconds 30] [--nagle] [--json]"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("VIGIL_BUILD", os.path.join(SRC, "build"))
VIGIL = os.environ.get("VIGIL", os.path.join(BUILD, "vigil"))
SERVERS = os.path.join(SRC, "tests", "servers")
KEY = "bench-key"
PUT = re.compile(r"^central debug: put episode (\d+) updated_at (\d+) \((\S+)\) at (\d+)$")

RULE = """
local vigil = require "vigil"
local open = {}
function on_frame(frame)
  for i, r in ipairs(vigil.params.regions) do
    local bright = frame:mean(r) > 200
    if bright and not open[i] then open[i] = vigil.episode(frame, {episode_type = "box"})
    elseif bright then open[i]:extend(frame)
    elseif open[i] then open[i]:close(frame); open[i] = nil end
  end
end
"""
W, H = 320, 180
REGIONS = [[0.05 + 0.25 * i, 0.3, 0.1, 0.1] for i in range(4)]


def make_clip(path, seconds):
    """Region i shows a box for 1.5 + 0.5*i s, then rests 1 s, over and over, phase-shifted per region."""
    filters = ["color=c=0x808080:s=%dx%d:r=25:d=%d" % (W, H, seconds)]
    for i, (x, y, w, h) in enumerate(REGIONS):
        on, period = 1.5 + 0.5 * i, 2.5 + 0.5 * i
        filters.append("drawbox=x=%d:y=%d:w=%d:h=%d:color=white:t=fill:enable='lt(mod(t+%.2f,%.2f),%.2f)'"
                       % (x * W - 8, y * H - 8, w * W + 16, h * H + 16, 0.7 * i, period, on))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", ",".join(filters), "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-g", "50", path], check=True)


def start_stub(log, nodelay):
    code = ("import sys; sys.path.insert(0, %r); import central_stub as s; s.Handler.disable_nagle_algorithm = %r; "
            "sys.argv = ['central_stub', '--key', %r, '--log', %r]; sys.exit(s.main())" % (SERVERS, nodelay, KEY, log))
    proc = subprocess.Popen(["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        sys.exit("central_stub did not start: %r" % line)
    return proc, line.split()[1]


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def run_once(tmp, clip, rule, nodelay, interval):
    name = "%s-%s" % ("nodelay" if nodelay else "nagle", interval)
    log = os.path.join(tmp, name + ".stub.jsonl")
    stub, url = start_stub(log, nodelay)
    try:
        r = subprocess.run([VIGIL, "replay", clip, "--script", rule, "--params", json.dumps({"regions": REGIONS}),
                            "--realtime", "--start", str(int(time.time() * 1000)), "--central", url, "--api-key", KEY,
                            "--spool", os.path.join(tmp, name + ".spool"), "--min-update-interval-ms", str(interval),
                            "--log-level", "debug"], capture_output=True, text=True)
    finally:
        stub.terminate()
        stub.wait()
    if r.returncode != 0:
        sys.exit("vigil failed: %s" % r.stderr[-2000:])
    put = {}
    for line in r.stderr.splitlines():
        m = PUT.match(line)
        if m:
            put[(int(m.group(1)), int(m.group(2)))] = (m.group(3), int(m.group(4)))
    lat = {"first+closing": [], "update": []}
    with open(log) as f:
        for line in f:
            rec = json.loads(line)
            kind, at = put[(rec["episode_id"], rec["body"]["updated_at"])]
            lat["update" if kind == "update" else "first+closing"].append(rec["received_ms"] - at)
    return {k: sorted(v) for k, v in lat.items()}, len(put)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--nagle", action="store_true", help="also measure against the stub with Nagle on")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vigil-central-latency-")
    clip = os.path.join(tmp, "regions.mp4")
    make_clip(clip, args.seconds)
    rule = os.path.join(tmp, "regions.lua")
    with open(rule, "w") as f:
        f.write(RULE)
    rows = []
    for nodelay in ((True, False) if args.nagle else (True,)):
        stub = "stub as shipped (TCP_NODELAY)" if nodelay else "stub with Nagle on"
        lat, _ = run_once(tmp, clip, rule, nodelay, 1000)
        rows.append((stub, "first+closing (interval 1000)", lat["first+closing"]))
        lat, emitted = run_once(tmp, clip, rule, nodelay, 0)
        rows.append((stub, "all versions (no rate limit)", lat["first+closing"] + lat["update"]))
    result = [{"stub": s, "versions": what, "count": len(v), "p50_ms": percentile(sorted(v), 50),
               "p90_ms": percentile(sorted(v), 90), "p99_ms": percentile(sorted(v), 99),
               "max_ms": max(v) if v else None} for s, what, v in rows]
    if args.json:
        print(json.dumps(result))
        return
    print("Central latency on loopback: put() called -> stub received (ms), %d s clip at real time" % args.seconds)
    print("%-30s %-31s %6s %6s %6s %6s %6s" % ("stub", "versions", "count", "p50", "p90", "p99", "max"))
    for r in result:
        print("%-30s %-31s %6d %6d %6d %6d %6d" % (r["stub"], r["versions"], r["count"], r["p50_ms"], r["p90_ms"],
                                                  r["p99_ms"], r["max_ms"]))


main()
