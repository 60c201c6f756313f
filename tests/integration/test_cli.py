"""test_cli.py — the command line explains itself (issue 19): `vigil COMMAND --help` and `-h` print that command's
help and exit 0 for replay, run, check and flush; every option the parsers in core/main.c take (read from the
source) is explained in some command's help, and every option a help names is taken by its command (never
"unknown option"); `vigil` alone prints the summary and exits 2; `vigil run` of a missing file says so once."""
import os
import re

from vigiltest import SRC, Suite, make_clip, run

COMMANDS = ("replay", "run", "check", "flush")


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
    t.check(r.stderr.startswith("replay info: 25 frames"), "not on a terminal: no time: %r" % r.stderr[-200:])
    r = run([])
    t.check(r.returncode == 2 and "vigil COMMAND --help" in r.stderr, "vigil alone: the summary, exit 2")
    r = run(["run", "/nonexistent/vigil.json"])
    t.check(r.returncode == 2 and r.stderr.count("/nonexistent/vigil.json") == 1,
            "a missing config is said once: %r" % r.stderr)
    t.done()


main()
