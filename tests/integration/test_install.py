"""test_install.py — an installed vigil runs from its prefix, not from the source checkout (issue 19): `cmake
--install` into a scratch prefix puts the binary, the Lua module and the stock rules under it; the installed
binary, run from elsewhere, loads PREFIX/share/vigil/lua (a marker added to the installed copy is seen by a
rule) and runs an installed stock rule; the prefix moved elsewhere still works (bin/../share/vigil/lua);
VIGIL_LUA_DIR overrides both."""
import os
import shutil
import subprocess

from vigiltest import BUILD, HANG_S, Suite, make_clip, write

MARKER_RULE = """
local vigil = require "vigil"
vigil.log("module from " .. tostring(vigil.installed_copy))
function on_frame(frame) end
"""


def installed(t, prefix):
    r = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], capture_output=True, text=True,
                       timeout=HANG_S)
    t.check(r.returncode == 0, "cmake --install into %s: %s" % (prefix, r.stderr[-300:]))
    module = os.path.join(prefix, "share/vigil/lua/vigil.lua")
    with open(module) as f:
        text = f.read()
    at = text.rindex("return vigil")
    with open(module, "w") as f:
        f.write(text[:at] + "vigil.installed_copy = 'prefix'\n" + text[at:])
    return os.path.join(prefix, "bin", "vigil")


def check_run(t, vigil, label, env=None):
    rule = write(t.path("marker.lua"), MARKER_RULE)
    r = subprocess.run([vigil, "check", rule, "--frames", "2"], capture_output=True, text=True, cwd="/",
                       timeout=HANG_S, env=env)
    return r.returncode, r.stderr


def main():
    t = Suite("install")
    prefix = t.path("prefix")
    vigil = installed(t, prefix)
    rc, err = check_run(t, vigil, "installed")
    t.check(rc == 0 and "module from prefix" in err, "the installed binary loads the installed module: %s" % err[-300:])
    clip = make_clip(t.path("clip.mp4"), seconds=2, size="160x90")
    motion = os.path.join(prefix, "share/vigil/scripts/motion.lua")
    r = subprocess.run([vigil, "replay", clip, "--script", motion, "--out", t.path("out.jsonl")], capture_output=True,
                       text=True, cwd="/", timeout=HANG_S)
    t.check(r.returncode == 0 and "50 frames" in r.stderr, "an installed stock rule runs: %s" % r.stderr[-300:])
    moved = t.path("moved")
    shutil.move(prefix, moved)
    rc, err = check_run(t, os.path.join(moved, "bin", "vigil"), "moved")
    t.check(rc == 0 and "module from prefix" in err, "a moved prefix finds its own module: %s" % err[-300:])
    env = dict(os.environ, VIGIL_LUA_DIR=os.path.join(os.environ.get("VIGIL_SRC", ""), "lua"))
    rc, err = check_run(t, os.path.join(moved, "bin", "vigil"), "env", env)
    t.check(rc == 0 and "module from nil" in err, "VIGIL_LUA_DIR overrides the prefix: %s" % err[-300:])
    t.done()


main()
