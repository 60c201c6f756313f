"""test_script_host.py — the Lua host: a runaway loop is cut at the budget and the next frame runs; a cut or
failing callback leaves no half-made episode; errors are logged once with file:line and rate-limited; the
sandbox holds; rules require helpers from their own directory; hot reload keeps the old version on a broken
edit and hands open episodes and vigil.keep to a good one."""
import os

from vigiltest import (SLACK_S, SRC, Suite, make_clip, write, run, read_versions, by_episode, replace_atomically,
                       wait_for, VIGIL, WatchedReplay, RELOAD_V1 as V1, RELOAD_BROKEN as BROKEN, RELOAD_V2 as V2)

ERROR_LOG_INTERVAL_S = 10  # operations.md: "a rule's errors at most once per 10 s per camera"

RUNAWAY = """
local vigil = require "vigil"
function on_frame(frame)
  if frame.index == 3 then
    vigil.episode(frame, { episode_type = "half-made" })   -- must never leave the host
    while true do end
  elseif frame.index == 4 then
    local ep = vigil.episode(frame, { episode_type = "after" })
    while true do frame:mean() end                                 -- a loop through the vigil module too
  elseif frame.index == 6 then
    vigil.episode(frame, { episode_type = "next" })
  end
end
"""

FAILING = """
function on_frame(frame)
  local t = nil
  return t.field   -- line 4
end
"""

SANDBOX = """
local vigil = require "vigil"
local helper = require "helpers.geometry"
local results = {}
local function try(name, fn) local ok, err = pcall(fn); results[name] = ok and "allowed" or "refused" end
function on_frame(frame)
  if frame.index > 0 then return end
  results.os_execute = os.execute == nil and "absent" or "present"
  results.io = io == nil and "absent" or "present"
  results.debug = debug == nil and "absent" or "present"
  results.dump = string.dump == nil and "absent" or "present"
  results.string_mt = getmetatable("") == false and "hidden" or "visible"
  try("require_ffi", function() return require("ffi") end)
  try("load_bytecode", function() assert(load("\\27LJ\\2\\0", "x", "b")) end)
  try("load_bytecode_text", function() assert(load("\\27LJ\\2\\0")) end)
  try("load_text", function() assert(load("return 1 + 1")()) end)
  try("dofile", function() dofile("/etc/hostname") end)
  results.helper = helper.area({ w = 0.5, h = 0.5 })
  vigil.episode(frame, { episode_type = "sandbox", payload = results })
end
"""

NOTHING = """
function on_frame(frame) end
"""

# Interpreted, spin(1e7) takes about 0.4 s here (20 times the 20 ms budget of test_jit), and a loaded machine
# only makes it longer: it is always cut. Compiled, the count hook never fires inside the trace (it runs to its
# end even with a 1 ms budget), so no load can cut it either.
SPIN = """
local vigil = require "vigil"
local function spin(n) local x = 0 for i = 1, n do x = (x + i) % 1000003 end return x end
function on_frame(frame)
  if frame.index ~= 0 then return end
  vigil.episode(frame, { episode_type = "spun", payload = { x = spin(1e7) } }):close(frame)
end
"""

HELPER = """
local M = {}
function M.area(box) return box.w * box.h end
return M
"""

def test_budget(t, clip):
    """Two callbacks that never end are cut at the budget: the replay goes on, and it costs the two budgets over
    the same replay with a rule that does nothing (plus SLACK_S: the two runs on a loaded machine differ)."""
    out = t.path("runaway.jsonl")
    idle = run(["replay", clip, "--script", write(t.path("nothing.lua"), NOTHING), "--out", t.path("nothing.jsonl")])
    r = run(["replay", clip, "--script", write(t.path("runaway.lua"), RUNAWAY), "--budget-ms", "100",
             "--start", "0", "--out", out])
    t.check(r.returncode == 0, "runaway: replay goes on to the end (%s)" % r.stderr[-500:])
    t.check(r.seconds - idle.seconds < 2 * 0.100 + SLACK_S,
            "runaway: two cuts at 100 ms cost their budgets, they do not hold the replay (%.1f s, %.1f s without them)"
            % (r.seconds, idle.seconds))
    types = [v["episode_type"] for v, _ in read_versions(out)]
    t.check("half-made" not in types and "after" not in types, "runaway: cut callbacks leave no episode: %s" % types)
    t.check("next" in types, "runaway: the frame after a cut is processed")
    cuts = [l for l in r.stderr.splitlines() if "over the time budget of 100 ms" in l]
    t.check(len(cuts) == 2 or len(cuts) == 1, "runaway: the cut is logged: %r" % r.stderr[-600:])
    t.check(all("runaway.lua:" in l for l in cuts), "runaway: the log line names file:line")


def test_failures_rate_limited(t, clip):
    r = run(["replay", clip, "--script", write(t.path("failing.lua"), FAILING), "--out", t.path("f.jsonl")])
    lines = [l for l in r.stderr.splitlines() if "error" in l and "on_frame" in l]
    t.check(r.returncode == 0, "failing rule: the replay still completes")
    most = 1 + int(r.seconds // ERROR_LOG_INTERVAL_S)  # the first failure, then one line per interval at most
    t.check(1 <= len(lines) <= most, "failing rule: 150 failures give one log line per 10 s: %d lines in %.1f s"
            % (len(lines), r.seconds))
    t.check(lines and "failing.lua:4:" in lines[0] and "attempt to index" in lines[0],
            "failing rule: the line names file:line and the error: %r" % lines[:1])
    t.check(lines and "stack traceback" in lines[0] and "\n" not in lines[0], "failing rule: traceback on the same line")


def test_sandbox(t, clip):
    os.makedirs(t.path("helpers"), exist_ok=True)
    write(t.path("helpers/geometry.lua"), HELPER)
    out = t.path("sandbox.jsonl")
    r = run(["replay", clip, "--script", write(t.path("sandbox.lua"), SANDBOX), "--out", out])
    recs = [v for v, _ in read_versions(out)]
    t.check(r.returncode == 0 and recs, "sandbox: rule ran (%s)" % r.stderr[-300:])
    if not recs:
        return
    p = recs[0]["payload"]
    expect = {"os_execute": "absent", "io": "absent", "debug": "absent", "dump": "absent", "string_mt": "hidden",
              "require_ffi": "refused", "load_bytecode": "refused", "load_bytecode_text": "refused",
              "load_text": "allowed", "dofile": "refused", "helper": 0.25}
    for k, v in expect.items():
        t.check(p.get(k) == v, "sandbox: %s is %s (got %s)" % (k, v, p.get(k)))


def test_unsafe(t, clip):
    """--unsafe lifts the sandbox for one rule, and says so."""
    out = t.path("unsafe.jsonl")
    r = run(["replay", clip, "--script", t.path("sandbox.lua"), "--out", out, "--unsafe"])
    recs = [v for v, _ in read_versions(out)]
    t.check(r.returncode == 0 and recs, "unsafe: rule ran (%s)" % r.stderr[-300:])
    p = recs[0]["payload"] if recs else {}
    t.check(p.get("require_ffi") == "allowed" and p.get("io") == "present" and p.get("debug") == "present",
            "unsafe: ffi, io and debug are there: %s" % p)
    t.check("sandbox.lua runs unsafe" in r.stderr, "unsafe: a warning says the rule has no sandbox")


def test_jit(t, clip):
    """A long Lua loop: interpreted it is cut at the budget; compiled (--jit) the hook never fires inside the
    trace, so it runs to its end: the documented trade."""
    rule = write(t.path("spin.lua"), SPIN)
    slow = run(["replay", clip, "--script", rule, "--budget-ms", "20", "--out", t.path("spin.jsonl")])
    t.check(slow.returncode == 0 and not read_versions(t.path("spin.jsonl")) and
            "over the time budget of 20 ms" in slow.stderr, "jit off: the loop is cut at the budget: %r" % slow.stderr[-300:])
    fast = run(["replay", clip, "--script", rule, "--budget-ms", "20", "--jit", "--out", t.path("spin-jit.jsonl")])
    recs = [v for v, _ in read_versions(t.path("spin-jit.jsonl"))]
    t.check(fast.returncode == 0 and len(recs) == 1 and "over the time budget" not in fast.stderr,
            "jit on: the loop runs to its end (%d episodes): %r" % (len(recs), fast.stderr[-300:]))
    t.check("spin.lua runs compiled: its 20 ms budget cannot cut loops" in fast.stderr, "jit on: a warning says so")


ABANDONER_V1 = """
local vigil = require "vigil"
local ep
function on_frame(frame)
  if not ep then ep = vigil.episode(frame, {episode_type = "v1"}) end
  ep:extend(frame)
end
"""

ABANDONER_V2 = """
local vigil = require "vigil"
local ep
function on_frame(frame) -- no on_reload: the episode version 1 left open is never touched
  if not ep then ep = vigil.episode(frame, {episode_type = "v2"}) end
  ep:extend(frame)
end
"""


def test_reload_leaves_nothing_open(t):
    """The host owns "no episode left open": a new version that does not take over an episode (no on_reload, it
    never touches it) has it closed by the host once VG_RELOAD_TAKEOVER_MS (5 s of stream time) have passed,
    at its last updated_at, close_reason "reload"; the new version's own episode starts after it (no overlap)."""
    seconds, fps = 12, 25
    clip = make_clip(t.path("abandon.mp4"), seconds=seconds, fps=fps)
    rule = write(t.path("abandon.lua"), ABANDONER_V1)
    out = t.path("abandon.jsonl")
    replay = WatchedReplay(clip, rule, out)
    t.check(replay.wrote(), "abandon: version 1 runs")
    replace_atomically(rule, ABANDONER_V2)
    rc, err = replay.finish()
    eps = {vs[0]["episode_type"]: vs for vs in by_episode(read_versions(out)).values()}
    t.check(rc == 0 and set(eps) == {"v1", "v2"}, "abandon: one episode per version (%s): %s"
            % (sorted(eps), err[-300:]))
    if set(eps) != {"v1", "v2"}:
        return
    old, new = eps["v1"], eps["v2"]
    last_touch = max(v["updated_at"] for v in old if "closed_at" not in v)
    closed = old[-1]
    # at its last update; the closing version is a change, and updated_at must grow: 1 ms later
    t.check(closed.get("closed_at") == last_touch + 1 and closed["payload"].get("close_reason") == "reload",
            "abandon: the host closed version 1's episode at its last update + 1 ms (%s, last %s), reason reload (%s)"
            % (closed.get("closed_at"), last_touch, closed.get("payload")))
    order = [v for v, _ in read_versions(out)]
    at = next(i for i, v in enumerate(order) if v["episode_type"] == "v1" and "closed_at" in v)
    seen = max((v["updated_at"] for v in order[:at] if v["episode_type"] == "v2"), default=0)
    t.check(seen - new[0]["opened_at"] >= 5000 - 1000 // fps,
            "abandon: closed once the new version had had 5 s of stream to take it over (%d ms)"
            % (seen - new[0]["opened_at"]))
    t.check(new[0]["opened_at"] > closed["closed_at"], "abandon: the new version's episode does not overlap it")
    t.check(sum("did not take over" in l for l in err.splitlines()) == 1, "abandon: said once in the log")


def test_motion_takes_over(t):
    """scripts/motion.lua saved while its episode is open: the new version takes the episode over (on_reload),
    so there is still one episode, closed by the rule itself, and the host has nothing to close."""
    blinks = [(100, 40, 60, 60, "white", k * 0.5, k * 0.5 + 0.25) for k in range(2, 17)]  # 1 s .. 8.5 s
    clip = make_clip(t.path("blink.mp4"), seconds=11, size="320x180", boxes=blinks)
    rule = t.path("motion.lua")
    with open(os.path.join(SRC, "scripts", "motion.lua")) as f:
        source = f.read()
    write(rule, source)
    out = t.path("blink.jsonl")
    replay = WatchedReplay(clip, rule, out)
    t.check(replay.wrote(), "motion reload: the episode is open")
    replace_atomically(rule, source + "\n-- saved again\n")
    rc, err = replay.finish()
    eps = by_episode(read_versions(out))
    t.check(rc == 0 and sum("reloaded" in l for l in err.splitlines()) == 1,
            "motion reload: reloaded once (%s)" % err[-300:])
    t.check(len(eps) == 1, "motion reload: still one episode (%d)" % len(eps))
    last = list(eps.values())[0][-1] if eps else {}
    t.check(last.get("payload", {}).get("close_reason") != "reload" and "did not take over" not in err,
            "motion reload: the new version took it over; the host closed nothing: %s" % last.get("payload"))


def test_hot_reload(t):
    """A real-time replay: each edit waits for the event the one before caused (a frame, a log line); the clip
    only has to outlast three such steps."""
    seconds, fps = 10, 25
    clip = make_clip(t.path("long.mp4"), seconds=seconds, fps=fps)
    rule = write(t.path("reload.lua"), V1)
    out = t.path("reload.jsonl")
    replay = WatchedReplay(clip, rule, out)
    t.check(replay.wrote(), "reload: version 1 runs")
    replace_atomically(rule, BROKEN)
    t.check(replay.running_after(lambda: any("reload failed" in l for l in replay.lines)),
            "reload: the broken edit is noticed while the replay runs")
    replace_atomically(rule, V2)
    rc, err = replay.finish()
    t.check(rc == 0, "reload: replay ok (%s)" % err[-400:])
    failed = [l for l in err.splitlines() if "reload failed" in l]
    t.check(len(failed) == 1 and "reload.lua:2:" in failed[0], "reload: the broken version is refused with file:line: %r" % failed)
    t.check(sum("reloaded" in l for l in err.splitlines()) == 1, "reload: the good version is swapped in once")
    t.check(any("v2 took over" in l for l in err.splitlines()), "reload: on_reload ran in the new version")
    versions = [v for v, _ in read_versions(out)]
    eps = by_episode(read_versions(out))
    t.check(len(eps) == 1, "reload: the open episode stays one episode across reloads (%d)" % len(eps))
    seq = [v["payload"]["version"] for v in versions if "payload" in v]
    t.check(seq and seq[0] == 1 and seq[-1] == 2 and seq == sorted(seq), "reload: versions 1 then 2")
    ns = [v["payload"]["n"] for v in versions if "payload" in v and "closed_at" not in v]
    t.check(ns == list(range(1, len(ns) + 1)), "reload: vigil.keep carried the counter (%s..%s, %d values)" % (ns[:1], ns[-1:], len(ns)))
    t.check(len(ns) == seconds * fps, "reload: no frame was lost in the swap (%d)" % len(ns))


def test_check(t):
    ok = run(["check", write(t.path("ok.lua"), V1), "--frames", "30"])
    t.check(ok.returncode == 0 and "30 frames, 1 episodes" in ok.stdout, "check: a good rule passes: %r" % ok.stdout)
    bad = run(["check", write(t.path("syntax.lua"), BROKEN)])
    t.check(bad.returncode != 0 and bad.stderr.count("\n") == 1 and "syntax.lua:2:" in bad.stderr,
            "check: a syntax error is one line with file:line: %r" % bad.stderr)
    failing = run(["check", t.path("failing.lua"), "--frames", "20"])
    t.check(failing.returncode != 0 and "20 failed callbacks" in failing.stdout, "check: failing callbacks fail the check")


def main():
    t = Suite("script_host")
    clip = make_clip(t.path("clip.mp4"), seconds=6)
    test_budget(t, clip)
    test_failures_rate_limited(t, clip)
    test_sandbox(t, clip)
    test_unsafe(t, clip)
    test_jit(t, clip)
    test_check(t)
    test_hot_reload(t)
    test_reload_leaves_nothing_open(t)
    test_motion_takes_over(t)
    t.done()


main()
