"""test_hostile_files.py — files and text vigil is pointed at cannot hang it, make it read what it should not,
send what it should not, or flood its log (issue 17, items 10-15, 17 and 18), each replayed against the real
binary. Every run that must end on its own is bounded by HANG_S; one that hangs is sent SIGTERM (which must end
it) before SIGKILL, and fails either way. Runs that keep serving are stopped with SIGTERM, which must end them
within central.flush_timeout_ms plus a second (the issue's promise) plus SLACK_S.

10. `vigil run /dev/zero` read without bound until it crashed; a config over the cap was read whole.
11. /dev/zero or a FIFO as a key file (central's, the node's) or as the config looped or waited forever with
    SIGTERM blocked.
12. A FIFO named *.ver in the spool or *.json in the episode store hung the start.
13. A symlink *.ver in the spool was followed (a valid version elsewhere was sent; /etc/shadow was read).
14. A spool file whose header is right but whose body is not JSON, or names another episode, was sent as is.
15. keep_episodes_for 1e300 and a store entry's updated_at 1e300 were cast to integers (undefined behaviour:
    the sanitized build stops on it).
17. A spool that flips between failing and not wrote a line per flip.
18. JSON nested over 1000 levels, a lone surrogate, a duplicate key in --params and a \\u0000 in a name each get
    a line saying what is wrong."""
import json
import os
import resource
import signal
import stat
import subprocess
import time

from livetest import Run, free_port
from vigiltest import HANG_S, SLACK_S, VIGIL, VIGIL_ASAN, CentralStub, Suite, make_clip, write

FLUSH_TIMEOUT_MS = 1000        # central.flush_timeout_ms of the runs here
SPOOL_SAY_EVERY_S = 10         # core/vg_transport.c SPOOL_SAY_EVERY_MS: the spool's state at most this often
KEY = "k-hostile-files-5e1d"
ID = 1000000000000000003
RULE = "function on_frame(frame) end\n"


def run_to_end(t, what, args, binary=None, preexec=None):
    """vigil ARGS, which must end by itself; (exit status, stderr). A hang is ended by SIGTERM, then SIGKILL."""
    p = subprocess.Popen([binary or VIGIL] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=preexec, restore_signals=preexec is None)
    try:
        _, err = p.communicate(timeout=HANG_S)
        return p.returncode, err
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        try:
            _, err = p.communicate(timeout=SLACK_S)
            ended = "SIGTERM ended it"
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            ended = "SIGTERM did not end it either"
        t.check(False, "%s: vigil hung (%s)" % (what, ended))
        return None, err


def one_line(t, what, rc, err, want_rc, needle):
    lines = [l for l in err.splitlines() if l.strip()]
    t.check(rc == want_rc and any(needle in l for l in lines),
            "%s: exit %s and a line with %r, got exit %s: %s" % (what, want_rc, needle, rc, lines[-3:]))
    t.check("runtime error" not in err and "AddressSanitizer" not in err, "%s: no undefined behaviour" % what)


def config(t, name, node=None, central=None, cameras=True):
    doc = {"node": dict({"machine_id": 3}, **(node or {}))}
    if central:
        doc["central"] = dict({"flush_timeout_ms": FLUSH_TIMEOUT_MS}, **central)
    if cameras:  # nothing listens on its port: the camera retries, the run goes on
        doc["cameras"] = [{"media": "cam", "url": "rtsp://127.0.0.1:%d/none" % free_port(), "script": "rule.lua"}]
    return write(t.path(name + ".json"), json.dumps(doc))


def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def spool_file(path, eid, updated_at, body, media="cam"):
    """A version file whose header is right (core/vg_spool.c's format), whatever its body says."""
    m, b = media.encode(), body.encode()
    head = "VGSPOOL1 %d 1000 %d 1 0 %d %d %016x\n" % (eid, updated_at, len(m), len(b), fnv1a(m + b))
    with open(path, "wb") as f:
        f.write(head.encode() + m + b"\n" + b + b"\n")
    return path


def record(eid, updated_at):
    return '{"episode_id":%d,"media":"cam","opened_at":1000,"updated_at":%d}' % (eid, updated_at)


def stop_in_time(t, what, run):
    """SIGTERM ends a run within flush_timeout_ms plus a second (issue 17) plus SLACK_S."""
    started = time.monotonic()
    rc, log = run.stop()
    took = time.monotonic() - started
    t.check(took <= FLUSH_TIMEOUT_MS / 1000 + 1 + SLACK_S, "%s: SIGTERM ended the run in %.1f s" % (what, took))
    return rc, log


def test_config_files(t):
    """Items 10 and 11 (the config): refused at once, whatever it is."""
    limit_memory = lambda: resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # the crash came under one
    rc, err = run_to_end(t, "run /dev/zero", ["run", "/dev/zero"], preexec=limit_memory)
    one_line(t, "run /dev/zero", rc, err, 2, "/dev/zero: is a character device, not a regular file")
    fifo = t.path("fifo.json")
    os.mkfifo(fifo)
    rc, err = run_to_end(t, "run FIFO", ["run", fifo])
    one_line(t, "a FIFO as the config", rc, err, 2, "fifo.json: is a FIFO, not a regular file")
    big = t.path("big.json")
    with open(big, "wb") as f:
        f.truncate((4 << 20) + 1)  # sparse: nothing to write, everything to read
    rc, err = run_to_end(t, "run big", ["run", big])
    one_line(t, "a config over the cap", rc, err, 2, "big.json: is larger than 4 MiB")
    test_rule_and_output_fifos(t)


def test_rule_and_output_fifos(t):
    """A FIFO as the rule, as a module it requires, or as the output file: each blocked an open in C (the rule's
    loadfile, the sink's fopen) with signals already blocked; now each is refused at once, naming the file."""
    clip = make_clip(t.path("fifo-clip.mp4"), seconds=1, size="160x90")
    rule_fifo = t.path("rule-fifo.lua")
    os.mkfifo(rule_fifo)
    rc, err = run_to_end(t, "rule FIFO", ["replay", clip, "--script", rule_fifo, "--out", t.path("r.jsonl")])
    t.check(rc != 0 and "rule-fifo.lua: is a FIFO, not a regular file" in err, "a FIFO as the rule is refused: %s"
            % err[-300:])
    os.mkfifo(t.path("helper_fifo.lua"))
    requiring = write(t.path("requiring.lua"), 'local h = require "helper_fifo"\nfunction on_frame(f) end\n')
    rc, err = run_to_end(t, "module FIFO", ["replay", clip, "--script", requiring, "--out", t.path("m.jsonl")])
    t.check(rc != 0 and "helper_fifo.lua: is a FIFO, not a regular file" in err,
            "a FIFO as a required module is refused: %s" % err[-300:])
    out_fifo = t.path("out.fifo")
    os.mkfifo(out_fifo)
    rc, err = run_to_end(t, "output FIFO", ["replay", clip, "--script", t.path("rule.lua"), "--out", out_fifo])
    t.check(rc != 0 and "out.fifo: is a FIFO, not a regular file" in err, "a FIFO as the output is refused: %s"
            % err[-300:])


def test_key_files(t):
    """Item 11 (key files): /dev/zero and a FIFO as central.api_key_file and node.api_key_file."""
    fifo = t.path("key.fifo")
    os.mkfifo(fifo)
    spool = t.path("keys-spool")
    cases = [("central /dev/zero", {"spool_dir": spool}, {"url": "http://127.0.0.1:1", "api_key_file": "/dev/zero"},
              "central.api_key_file: /dev/zero: is a character device, not a regular file"),
             ("central FIFO", {"spool_dir": spool}, {"url": "http://127.0.0.1:1", "api_key_file": fifo},
              "key.fifo: is a FIFO, not a regular file"),
             ("node /dev/zero", {"spool_dir": spool, "listen": "127.0.0.1:0", "api_key_file": "/dev/zero"}, None,
              "node.api_key_file: /dev/zero: is a character device, not a regular file"),
             ("node FIFO", {"spool_dir": spool, "listen": "127.0.0.1:0", "api_key_file": fifo}, None,
              "key.fifo: is a FIFO, not a regular file")]
    for what, node, central, needle in cases:
        cfg = config(t, what.replace(" ", "-").replace("/", ""), node, central)
        rc, err = run_to_end(t, what, ["run", cfg])
        one_line(t, what + " as the key file", rc, err, 1, needle)


def test_spool_and_store(t):
    """Items 12, 13 and 14: vigil run with a FIFO *.ver in the spool and a FIFO *.json in the store starts, says
    each once and stops on SIGTERM; `vigil flush` sends the good version only: never a symlinked one, never a
    body that is not JSON or names another episode."""
    spool = t.path("spool")
    os.makedirs(os.path.join(spool, "episodes"))
    os.mkfifo(os.path.join(spool, "7-1.ver"))
    os.mkfifo(os.path.join(spool, "episodes", "7.json"))
    stub = CentralStub(t, "run", KEY)
    cfg = config(t, "fifos", {"spool_dir": spool, "listen": "127.0.0.1:0"}, {"url": stub.url, "api_key": KEY})
    run = Run(cfg)
    started = run.wait_line(lambda l: "running 1 camera" in l)
    t.check(started, "FIFOs in the spool and the store: the run started: %s" % run.log()[-400:])
    rc, log = stop_in_time(t, "FIFOs", run)
    t.check(log.count("7-1.ver: is a FIFO, not a regular file; skipped") == 1,
            "the spool's FIFO is said once: %s" % log[-600:])
    t.check(log.count("7.json: is a FIFO, not a regular file; skipped") == 1, "the store's FIFO is said once")
    t.check(stat.S_ISFIFO(os.stat(os.path.join(spool, "7-1.ver")).st_mode), "the FIFO is left where it was")
    stub.stop()

    spool = t.path("flush-spool")
    os.makedirs(spool)
    outside = spool_file(t.path("outside.ver"), ID + 1, 5000, record(ID + 1, 5000))  # valid, but not in the spool
    os.symlink(outside, os.path.join(spool, "%d-5000.ver" % (ID + 1)))
    shadow = "/etc/shadow" if os.path.exists("/etc/shadow") else "/etc/passwd"
    os.symlink(shadow, os.path.join(spool, "%d-6000.ver" % (ID + 2)))
    os.mkfifo(os.path.join(spool, "%d-7000.ver" % (ID + 3)))
    spool_file(os.path.join(spool, "%d-2000.ver" % ID), ID, 2000, '{"episode_id":999,"updated_at":2000}')
    spool_file(os.path.join(spool, "%d-3000.ver" % ID), ID, 3000, "this is not JSON")
    spool_file(os.path.join(spool, "%d-4000.ver" % ID), ID, 4000, record(ID, 4001))
    spool_file(os.path.join(spool, "%d-9000.ver" % ID), ID, 9000, record(ID, 9000))  # the good one
    stub = CentralStub(t, "flush", KEY)
    rc, err = run_to_end(t, "flush", ["flush", "--central", stub.url, "--spool", spool, "--api-key", KEY,
                                      "--timeout-ms", str(int(HANG_S * 1000 / 2))])
    state = stub.state()
    stub.stop()
    t.check(rc == 0 and state["requests"] == 1 and list(state["episodes"]) == [str(ID)],
            "flush sent the one good version and nothing else (exit %s, %d requests, episodes %s): %s"
            % (rc, state["requests"], list(state["episodes"]), err[-600:]))
    for needle in ["%d-5000.ver: is a symlink (not followed); skipped" % (ID + 1),
                   "%d-6000.ver: is a symlink (not followed); skipped" % (ID + 2),
                   "%d-7000.ver: is a FIFO, not a regular file; skipped" % (ID + 3),
                   "(the body names episode 999, not %d)" % ID, "(the body is not valid JSON",
                   "(the body's updated_at 4001 is not the header's 4000)"]:
        t.check(err.count(needle) == 1, "flush says once: %s" % needle)
    t.check(os.path.islink(os.path.join(spool, "%d-5000.ver" % (ID + 1))) and os.path.exists(outside),
            "the symlink and what it names are left alone")
    t.check(all(os.path.exists(os.path.join(spool, "corrupt", "%d-%d.ver" % (ID, u))) for u in (2000, 3000, 4000)),
            "the three bad bodies are moved aside, not dropped: %s" % os.listdir(spool))


def test_numbers(t):
    """Item 15 under the sanitized build when there is one (UBSan stops at a bad cast)."""
    binary = VIGIL_ASAN or VIGIL
    if not VIGIL_ASAN:
        print("INFO: no vigil-asan: item 15 runs on the plain build (the message is checked, not UBSan)")
    spool = t.path("numbers-spool")
    cfg = config(t, "keep", {"spool_dir": spool, "listen": "127.0.0.1:0", "keep_episodes_for": 1e300})
    rc, err = run_to_end(t, "keep 1e300", ["run", cfg], binary=binary)
    one_line(t, "keep_episodes_for 1e300", rc, err, 2, "node.keep_episodes_for: out of range (max 366 days)")
    os.makedirs(os.path.join(spool, "episodes"))
    write(os.path.join(spool, "episodes", "%d.json" % ID), '{"episode_id":%d,"updated_at":1e300}' % ID)
    write(os.path.join(spool, "episodes", "%d.json" % (ID + 1)), record(ID + 1, 1700000000000))
    run = Run(config(t, "store", {"spool_dir": spool, "listen": "127.0.0.1:0"}), binary=binary)
    kept = run.wait_line(lambda l: "episode store" in l and "episodes kept" in l)
    rc, log = stop_in_time(t, "store entries", run)
    t.check(kept and "1 episodes kept" in kept[0][1], "the store keeps the good entry only: %s" % log[-500:])
    t.check("the body's updated_at 1e+300 is out of range" in log and "runtime error" not in log,
            "a store entry's updated_at 1e300 is refused in one line, no undefined behaviour")


def test_json_text(t):
    """Item 18."""
    rule = write(t.path("check.lua"), RULE)
    cases = [('{"a":"\\udfff"}', "--params: \\udfff is the second half of a UTF-16 surrogate pair"),
             ('{"a":1,"b":{"c":2,"c":3}}', "--params: b.c: given twice"),
             ('{"a":' + "[" * 1000 + "]" * 1000 + "}", "--params: nested deeper than 1000 levels"),
             ('{"a":"x\\u0000"}', "--params: \\u0000 in a string (a string cannot hold a NUL)")]
    for params, needle in cases:
        rc, err = run_to_end(t, "check --params", ["check", rule, "--params", params, "--frames", "1"])
        one_line(t, "check --params %.30s" % params, rc, err, 2, needle)
    rc, err = run_to_end(t, "check good params", ["check", rule, "--params", '{"a":"\\ud83d\\ude00"}', "--frames", "1"])
    t.check(rc == 0, "a surrogate pair is fine: %s" % err[-300:])
    doc = '{"node":{"machine_id":1},"cameras":[{"media":"cam\\u0000evil","url":"rtsp://h/","script":"rule.lua"}]}'
    rc, err = run_to_end(t, "media NUL", ["run", write(t.path("nul.json"), doc)])
    one_line(t, "media with \\u0000", rc, err, 2, "\\u0000 in a string (a string cannot hold a NUL) near line 1")
    doc = '{"node":{"machine_id":1},"x":' + "[" * 1001 + "]" * 1001 + "}"
    rc, err = run_to_end(t, "deep config", ["run", write(t.path("deep.json"), doc)])
    one_line(t, "a config nested 1001 deep", rc, err, 2, "nested deeper than 1000 levels near line 1")


FLIP_RULE = """
local vigil = require "vigil"
local n = 0
function on_frame(frame)
  n = n + 1 -- every other version is too large for the file size limit: the spool fails, then works again
  local ep = vigil.episode(frame, {episode_type = "flip", payload = {pad = string.rep("x", n % 2 == 1 and 6000 or 1)}})
  ep:close(frame)
end
"""


def test_spool_flapping(t):
    """Item 17: a spool whose writes fail every other time (RLIMIT_FSIZE: no root, no small disk needed) says its
    state at most once per SPOOL_SAY_EVERY_S (plus the first line and the final one)."""
    clip = make_clip(t.path("flip.mp4"), seconds=8, size="160x90")
    rule = write(t.path("flip.lua"), FLIP_RULE)
    stub = CentralStub(t, "flip", KEY)

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))

    started = time.monotonic()
    rc, err = run_to_end(t, "flapping spool", ["replay", clip, "--script", rule, "--central", stub.url, "--api-key",
                                               KEY, "--spool", t.path("flip-spool"), "--min-update-interval-ms", "0"],
                         preexec=limit_file_size)
    elapsed = time.monotonic() - started
    stub.stop()
    spool_lines = [l for l in err.splitlines() if l.startswith("central ") and "spool" in l and
                   ("in memory only" in l or "stores versions again" in l)]
    allowed = 2 + int(elapsed // SPOOL_SAY_EVERY_S) + 1
    t.check(any("File too large" in l for l in spool_lines), "the failing spool is said: %s" % err[-500:])
    t.check(len(spool_lines) <= allowed, "the spool's state in %d lines over %.1f s, at most %d: %s"
            % (len(spool_lines), elapsed, allowed, spool_lines[:4]))
    changes = sum(int(l.split(" changes of state")[0].rsplit("(", 1)[1]) for l in spool_lines if "changes of state" in l)
    t.check(changes > 10, "the lines count the changes they stand for (%d)" % changes)
    camera = [l for l in err.splitlines() if "could not be written" in l]
    t.check(len(camera) <= 1 + int(elapsed // SINK_SAY_EVERY_S) + 1,
            "the camera's could-not-be-written line at most once per %d s: %d lines" % (SINK_SAY_EVERY_S, len(camera)))
    print("INFO: spool state: %d lines for %d changes in %.1f s; the camera's per-version line: %d"
          % (len(spool_lines), changes, elapsed, len(camera)))


SINK_SAY_EVERY_S = 10  # vg_camera.c VG_SINK_ERROR_LOG_MS


def main():
    t = Suite("hostile-files")
    write(t.path("rule.lua"), RULE)
    test_config_files(t)
    test_key_files(t)
    test_spool_and_store(t)
    test_numbers(t)
    test_json_text(t)
    test_spool_flapping(t)
    t.done()


main()
