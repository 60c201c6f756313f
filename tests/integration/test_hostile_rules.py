"""test_hostile_rules.py — a rule cannot escape its time budget or its memory cap (issue 17, items 4 to 8). Each
attack once ran forever or took the machine's memory: catching the budget's error with pcall, xpcall or a
coroutine and looping on; a loop at the rule's top level (it hung `vigil check`, a camera's start and a hot
reload); a backtracking string pattern or many big string.rep calls inside C, where no hook fires (60 s and more
uncut); a table grown to 7.9 GB; vigil.keep of shared subtables unfolding on a reload (the camera froze). Now the
callback is cut every time, the replay goes on to its end, a rule holding more than its cap is retired while the
camera runs on, and a looping top level fails the load in one line. A hang is what these would fail by: every
run is bounded by HANG_S."""
import os
import re

from vigiltest import HANG_S, Suite, WatchedReplay, make_clip, replace_atomically, run, wait_for, write

CATCHERS = {
    "pcall": "while true do pcall(function() while true do end end) end",
    "xpcall": "while true do xpcall(function() while true do end end, function(e) while true do end end) end",
    "coroutine": "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
    "nested": "for i = 1, 1e9 do pcall(pcall, pcall, function() while true do end end) end",
    # C calls: no hook fires inside them; many of them are checked as each returns
    "many_reps": "for i = 1, 1e4 do local s = ('x'):rep(1e6 + i) end",
    "many_sorts": "for i = 1, 1e4 do local t = {} for k = 1, 3000 do t[k] = -k end table.sort(t) end",
    # a caught allocation failure: the cap holds and the callback ends at the next hook
    "catch_memory": "while true do pcall(function() local t = {} for i = 1, 1e9 do t[i] = {} end end) end",
}
CAP_MB = 256  # docs/lua-api.md: a rule's state may hold 256 MB

# One C call that would run for minutes: refused before it starts, with the reason.
PATTERNS = {
    "find": "('a'):rep(4000):find('.-.-.-.-b')",
    "gmatch": "for w in ('a'):rep(4000):gmatch('a*a*a*b') do end",
    "gsub": "string.gsub(('a'):rep(1e5), '(a+)(a+)b', '')",
}

GROWER = """
local hoard = {}
function on_frame(frame)
  for i = 1, 64 do hoard[#hoard + 1] = ("x"):rep(1024 * 1024 - 64) .. #hoard end
end
"""

SHARED_PAYLOAD = """
local vigil = require "vigil"
function on_frame(frame)
  local t = {1}
  for i = 1, 30 do t = {t, t} end
  local ep = vigil.episode(frame, {episode_type = "x"})
  ep:set_payload({t = t})
end
"""

KEEP_V1 = """
local vigil = require "vigil"
function on_start()
  local t = {"leaf"}
  for i = 1, 40 do t = {t, t} end
  vigil.keep.t = t
  vigil.keep.loop = {}
  vigil.keep.loop.self = vigil.keep.loop
end
function on_frame(frame)
  if frame.index == 5 then vigil.log("v1 running") end
end
"""

KEEP_V2 = """
local vigil = require "vigil"
function on_reload(keep)
  local t, depth = keep.t, 0
  while type(t[1]) == "table" do
    assert(t[1] == t[2], "shared subtables stay shared")
    t, depth = t[1], depth + 1
  end
  vigil.log("kept depth " .. depth .. " " .. tostring(t[1]) .. " loop " .. tostring(keep.loop.self == keep.loop))
end
function on_frame(frame) end
"""


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def check_c_calls(t, clip):
    for name, call in PATTERNS.items():
        rule = write(t.path("pattern_%s.lua" % name), "function on_frame(frame)\n  %s\nend\n" % call)
        r = run(["replay", clip, "--script", rule, "--out", t.path(name + ".jsonl")], timeout=HANG_S)
        t.check("25 frames" in r.stderr and "may backtrack" in r.stderr,
                "%s: the pattern is refused before it runs, saying why: %s" % (name, r.stderr[-400:]))


def check_memory(t, clip):
    rule = write(t.path("grower.lua"), GROWER)
    r = run(["replay", clip, "--script", rule, "--out", t.path("grower.jsonl")], timeout=HANG_S)
    t.check("25 frames" in r.stderr, "the replay went on to its end after the rule was retired: %s" % r.stderr[-300:])
    t.check(re.search(r"rule .*grower.lua retired: over its memory cap of %d MB" % CAP_MB, r.stderr),
            "the log says the rule was retired and why: %s" % r.stderr[-600:])
    one = write(t.path("one_big.lua"), "function on_frame(frame)\n  local ok, e = pcall(string.rep, 'x', 2^31)\n"
                "  assert(not ok and e:match('memory'), tostring(e))\nend\n")
    r = run(["replay", clip, "--script", one, "--out", t.path("one.jsonl")], timeout=HANG_S)
    t.check("25 frames" in r.stderr and "retired" not in r.stderr,
            "one allocation over the cap fails in the rule; nothing held, the rule is not retired: %s" % r.stderr[-400:])
    rule = write(t.path("shared.lua"), SHARED_PAYLOAD)
    r = run(["replay", clip, "--script", rule, "--out", t.path("shared.jsonl")], timeout=HANG_S)
    t.check("more than 100000 values" in r.stderr, "a payload of shared subtables is refused, not unfolded: %s"
            % r.stderr[-400:])


def check_keep_reload(t):
    clip = make_clip(t.path("long.mp4"), seconds=12, size="160x90")
    rule = write(t.path("keep.lua"), KEEP_V1)
    replay = WatchedReplay(clip, rule, t.path("keep.jsonl"))
    t.check(replay.running_after(lambda: any("v1 running" in l for l in replay.lines)), "version 1 runs")
    replace_atomically(rule, KEEP_V2)
    reloaded = replay.running_after(lambda: any("kept depth" in l for l in replay.lines))
    peak = rss_mb(replay.proc.pid) if replay.proc.poll() is None else 0
    rc, log = replay.finish()
    t.check(reloaded, "the reload of vigil.keep with 2^40 paths through shared tables finished: %s" % log[-600:])
    t.check("kept depth 40 leaf loop true" in log, "sharing and cycles carried over as they were: %s" % log[-400:])
    t.check(peak < 500, "memory after the reload %.0f MB (the unfolding took 863 MB and froze the camera)" % peak)
    t.check(rc == 0, "the replay ended well (rc %d)" % rc)


def main():
    t = Suite("hostile-rules")
    clip = make_clip(t.path("clip.mp4"), seconds=1, size="160x90")
    for name, body in CATCHERS.items():
        rule = write(t.path(name + ".lua"), "function on_frame(frame)\n  %s\nend\n" % body)
        r = run(["replay", clip, "--script", rule, "--budget-ms", "20", "--out", t.path(name + ".jsonl")],
                timeout=HANG_S)
        t.check("25 frames" in r.stderr, "%s: the replay went through every frame: %s" % (name, r.stderr[-300:]))
        t.check("over the time budget of 20 ms" in r.stderr, "%s: the callback was cut at its budget" % name)
    top = write(t.path("top.lua"), "while true do end\nfunction on_frame(frame) end\n")
    r = run(["check", top, "--frames", "3"], timeout=HANG_S)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    t.check(r.returncode != 0 and any("over the time budget of 1000 ms" in l and "top.lua" in l for l in lines),
            "a loop at the top level fails the load in one line (rc %d): %s" % (r.returncode, lines[-3:]))
    r = run(["replay", clip, "--script", top, "--out", t.path("top.jsonl")], timeout=HANG_S)
    t.check(r.returncode != 0 and "over the time budget" in r.stderr, "replay refuses it too: %s" % r.stderr[-300:])
    stop = write(t.path("gc.lua"), "function on_frame(frame)\n  collectgarbage('stop')\nend\n")
    r = run(["replay", clip, "--script", stop, "--out", t.path("gc.jsonl")], timeout=HANG_S)
    t.check("'stop' is not for rules" in r.stderr, "a rule cannot stop the collector: %s" % r.stderr[-300:])
    check_c_calls(t, clip)
    check_memory(t, clip)
    check_keep_reload(t)
    t.done()


main()
