"""test_valgrind.py — the replay path under valgrind: no leak, no invalid read or write, while the motion rule
makes episodes and previews. valgrind cannot run every program on every CPU (3.19 dies with SIGILL where
libhwy, loaded by libavcodec through libjxl, runs RDTSCP and the CPU's CPUID hides it), so the test first runs
`valgrind vigil version`; when that fails it is a ctest skip (exit 77) with the reason. test_replay runs the
same replay under ASan+UBSan with leak detection on every machine."""
import os
import shutil
import subprocess
import sys

from vigiltest import Suite, SRC, VIGIL, make_clip, read_versions

SKIP = 77  # SKIP_RETURN_CODE in tests/CMakeLists.txt


def valgrind_cannot_run():
    """None when valgrind runs vigil here, else why not (one line)."""
    if not shutil.which("valgrind"):
        return "valgrind is not installed"
    r = subprocess.run(["valgrind", "-q", "--error-exitcode=9", VIGIL, "version"], capture_output=True, text=True,
                       timeout=120)
    if r.returncode == 0 and "vigil" in r.stdout:
        return None
    why = [l for l in r.stderr.splitlines() if "Illegal" in l or "signal" in l or "unhandled" in l]
    return "valgrind cannot run vigil on this machine (rc %d): %s" % (r.returncode, "; ".join(why[:2]) or r.stderr[-300:])


def main():
    reason = valgrind_cannot_run()
    if reason:
        print("SKIP: %s" % reason, flush=True)
        sys.exit(SKIP)
    t = Suite("valgrind")
    small = make_clip(t.path("small.mp4"), seconds=2, size="320x180", boxes=[(100, 40, 60, 60, "white", 0.5, 1.5)])
    motion = os.path.join(SRC, "scripts", "motion.lua")
    vg = subprocess.run(["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                         "--error-exitcode=9", VIGIL, "replay", small, "--script", motion, "--out", t.path("vg.jsonl")],
                        capture_output=True, text=True, timeout=600)
    t.check(vg.returncode == 0, "valgrind: clean replay (rc %d): %s" % (vg.returncode, vg.stderr[-1500:]))
    versions = read_versions(t.path("vg.jsonl"))
    t.check(any("preview" in v for v, _ in versions), "valgrind: the replay made episodes with previews")
    t.done()


main()
