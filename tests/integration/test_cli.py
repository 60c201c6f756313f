"""test_cli.py — the command line explains itself (issue 19): `vigil COMMAND --help` and `-h` print that command's
help and exit 0 for replay, run, check and flush; every option the parsers in core/main.c take (read from the
source) is explained in some command's help, and every option a help names is taken by its command (never
"unknown option"); `vigil` alone prints the summary and exits 2; `vigil run` of a missing file says so once."""
import os
import pty
import re
import subprocess

from vigiltest import HANG_S, SRC, VIGIL, Suite, make_clip, run

COMMANDS = ("replay", "run", "check", "flush")


def check_progress(t):
    """On a terminal a replay shows its progress (position of the clip's length, speed, episodes, time left),
    redrawn in place, and wiped when it ends."""
    clip = make_clip(t.path("three.mp4"), seconds=3, size="160x90")
    master, slave = pty.openpty()
    p = subprocess.Popen([VIGIL, "replay", clip, "--script", os.path.join(SRC, "scripts", "motion.lua"), "--out",
                          t.path("p.jsonl"), "--realtime"], stderr=slave, stdout=subprocess.DEVNULL)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other end closed: the replay ended
            break
        if not chunk:
            break
        shown += chunk
    p.wait(timeout=HANG_S)
    os.close(master)
    text = shown.decode(errors="replace")
    ticks = re.findall(r"\r\x1b\[Kclip (\d+\.\d) of 3\.0 s, [\d.]+x, \d+ episodes, 0 min \d\d s left", text)
    t.check(p.returncode == 0 and len(ticks) >= 2 and float(ticks[-1]) > float(ticks[0]),
            "a terminal sees the replay's progress grow: %s" % ticks)
    t.check("replay info: 75 frames" in text, "and the summary after it: %r" % text[-200:])


def main():
    t = Suite("cli")
    helps = {}
    for cmd in COMMANDS:
        for flag in ("--help", "-h"):
            r = run([cmd, flag])
            t.check(r.returncode == 0 and r.stdout.startswith("usage: vigil " + cmd),
                    "vigil %s %s prints its help (rc %d): %r" % (cmd, flag, r.returncode, (r.stdout + r.stderr)[:200]))
            helps[cmd] = r.stdout
    source = open(os.path.join(SRC, "core", "main.c")).read()
    taken = set(re.findall(r'strcmp\((?:opt|argv\[i\]), "(--[a-z-]+)"\)', source)) - {"--help", "--version"}
    t.check(len(taken) > 15, "the parsers' options were read from main.c (%d)" % len(taken))
    explained = set(re.findall(r"^\s+(--[a-z-]+)", "".join(helps.values()), re.M))
    t.check(not taken - explained, "every option is explained: missing %s" % sorted(taken - explained))
    for cmd, text in helps.items():
        for opt in sorted(set(re.findall(r"^\s+(--[a-z-]+)", text, re.M))):
            r = run([cmd, opt, "x"])
            t.check("unknown option" not in r.stderr and "unexpected argument '%s'" % opt not in r.stderr,
                    "vigil %s takes %s, which its help names: %s" % (cmd, opt, r.stderr[-200:]))
    clip = make_clip(t.path("clip.mp4"), seconds=1, size="160x90")
    replay = ["replay", clip, "--script", os.path.join(SRC, "scripts", "motion.lua"), "--out", t.path("o.jsonl")]
    r = run(replay, env={"VIGIL_LOG_TIMESTAMPS": "1"})
    stamped = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z replay info: 25 frames")
    t.check(any(stamped.match(l) for l in r.stderr.splitlines()), "VIGIL_LOG_TIMESTAMPS=1: lines start with their UTC "
            "time: %r" % r.stderr[-200:])
    r = run(replay)
    t.check(r.stderr.startswith("replay info: 25 frames"), "not on a terminal: no time, no progress: %r"
            % r.stderr[-200:])
    check_progress(t)
    r = run([])
    t.check(r.returncode == 2 and "vigil COMMAND --help" in r.stderr, "vigil alone: the summary, exit 2")
    r = run(["run", "/nonexistent/vigil.json"])
    t.check(r.returncode == 2 and r.stderr.count("/nonexistent/vigil.json") == 1,
            "a missing config is said once: %r" % r.stderr)
    t.done()


main()
