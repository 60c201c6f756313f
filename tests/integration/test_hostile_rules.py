"""test_hostile_rules.py — a rule cannot escape its time budget (issue 17, items 4 and 5). Each attack once ran
forever: catching the budget's error with pcall, xpcall or a coroutine and looping on; a loop at the rule's top
level (which had no budget: it hung `vigil check`, a camera's start and a hot reload). Now the callback is cut
every time, the replay goes on to its end, and a looping top level fails the load in one line. A hang is what
these would fail by: every run is bounded by HANG_S."""
from vigiltest import HANG_S, Suite, make_clip, run, write

CATCHERS = {
    "pcall": "while true do pcall(function() while true do end end) end",
    "xpcall": "while true do xpcall(function() while true do end end, function(e) while true do end end) end",
    "coroutine": "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
    "nested": "for i = 1, 1e9 do pcall(pcall, pcall, function() while true do end end) end",
}


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
    t.done()


main()
