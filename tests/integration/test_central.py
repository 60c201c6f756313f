"""test_central.py — `vigil replay --central` and `vigil flush` against the Central stand-in
(tests/servers/central_stub.py) over real HTTP on loopback. Clips have white boxes in four regions whose
appearance times are known, so the episodes vigil must deliver are known; the JSON-lines --out file is the
record of every version vigil emitted, to compare with what Central accepted.

(a) happy path: every episode arrives, first and closing versions as emitted, no violations, ids exact,
    updates rate-limited on stream time; also under ASan.
(b) Central answers 503 until vigil has retried (no more attempts than the backoff allows): everything
    arrives once it is back.
(c) kill -9 of a real-time replay while Central is down: the spool holds the versions; `vigil flush`
    delivers them after the restart.
(e) a wrong key (from a central.conf): one error line naming the URL, never the key; nothing lost.
(d) 400 answers for one media: those versions are dropped and logged, the other media's episodes arrive.
Throughout: the key never appears in vigil's stderr."""
import glob
import json
import os
import signal
import subprocess
import threading
import time

from vigiltest import (Suite, VIGIL, VIGIL_ASAN, CentralStub, make_clip, write, run, read_versions, by_episode,
                       wait_for)

# core/main.c: a replay gives Central up to 10 s at exit to take what is queued. It never needs them when
# Central took everything, or when no attempt can come before they are over: a replay that took as long as
# the same replay without Central plus these 10 s waited for nothing (a loaded machine cannot add 10 s).
REPLAY_DRAIN_S = 10
BACKOFF_FIRST_S = 0.5  # architecture.md: "backoff 0.5 s doubling to 30 s with jitter" (vg_time.c, vg_backoff_ms: base - 20 %..base, so at least base/2)
KEY = "s3cret-Key-4f9a1c"
WRONG_KEY = "wrong-Key-77e2b0"
START = 1700000000000

RULE = """
local vigil = require "vigil"
local open = {}
function on_frame(frame)
  for i, r in ipairs(vigil.params.regions) do
    local bright = frame:mean(r) > 200
    if bright and not open[i] then
      open[i] = vigil.episode(frame, {episode_type = "box", payload = {region = i}})
    elseif bright then
      open[i]:extend(frame)
    elseif open[i] then
      open[i]:close(frame)
      open[i] = nil
    end
  end
end
"""
W, H = 320, 180
REGIONS = [[0.05 + 0.25 * i, 0.3, 0.1, 0.1] for i in range(4)]
PARAMS = json.dumps({"regions": REGIONS})


def box(region, t0, t1):
    x, y, w, h = REGIONS[region]
    return (int(x * W) - 8, int(y * H) - 8, int(w * W) + 16, int(h * H) + 16, "white", t0, t1)


def spool_files(spool):
    return sorted(glob.glob(os.path.join(spool, "*.ver")))


def spooled_versions(spool):
    """(header fields, body) of each spool file: its own format, see core/vg_spool.c."""
    out = []
    for path in spool_files(spool):
        try:
            with open(path, "rb") as f:
                header, media, body = f.read().split(b"\n", 2)
        except FileNotFoundError:  # superseded while we looked
            continue
        fields = header.decode().split()
        out.append({"episode_id": int(fields[1]), "updated_at": int(fields[3]), "first": fields[4] == "1",
                    "closing": fields[5] == "1", "media": media.decode(), "body": json.loads(body)})
    return out


class Checks:
    """Every stderr seen, for the check that the key never shows."""

    def __init__(self, t):
        self.t = t
        self.stderr = []

    def replay(self, clip, media, stub, spool, *extra, binary=None, key_args=None):
        args = ["replay", clip, "--script", self.rule, "--media", media, "--start", str(START),
                "--params", PARAMS, "--central", stub.url, "--spool", spool]
        args += key_args if key_args is not None else ["--api-key", KEY]
        r = run(args + list(extra), binary=binary, timeout=120,
                env={"ASAN_OPTIONS": "detect_leaks=1"} if binary else None)
        self.stderr.append(r.stderr)
        return r

    def alone(self, clip, media, binary=None):
        """The same replay with no Central: what the drain is measured against."""
        return run(["replay", clip, "--script", self.rule, "--media", media, "--start", str(START), "--params", PARAMS,
                    "--out", self.t.path("alone-%s.jsonl" % media)], binary=binary, timeout=120,
                   env={"ASAN_OPTIONS": "detect_leaks=1"} if binary else None)


def check_complete(t, label, emitted_path, stub, expect_episodes):
    """Every emitted episode reached Central with its first and closing version, nothing else odd."""
    emitted = by_episode(read_versions(emitted_path))
    accepted = stub.accepted()
    state = stub.state()
    t.check(len(emitted) == expect_episodes, "%s: %d episodes emitted, expected %d" % (label, len(emitted), expect_episodes))
    t.check(set(accepted) == set(emitted), "%s: Central has exactly the emitted episodes (%s vs %s)"
            % (label, sorted(accepted), sorted(emitted)))
    t.check(state["violations"] == [], "%s: no violations: %s" % (label, state["violations"][:3]))
    for eid, versions in emitted.items():
        got = accepted.get(eid, [])
        t.check(got and got[0] == versions[0], "%s: episode %d: Central's first version is the opening one" % (label, eid))
        t.check(got and got[-1] == versions[-1] and "closed_at" in got[-1],
                "%s: episode %d: Central's last version is the closing one" % (label, eid))
        t.check(isinstance(eid, int) and eid > 2 ** 53 and str(eid) in state["episodes"],
                "%s: episode id %d exact (above 2^53, same digits at Central)" % (label, eid))
    return emitted, accepted


def check_rate_limit(t, label, emitted, accepted, interval=1000):
    fewer, spaced = True, True
    for eid, got in accepted.items():
        ups = [v["updated_at"] for v in got]
        spaced &= all(b - a >= interval for a, b in zip(ups[:-1], ups[1:-1]))  # updates; the close goes at once
        fewer &= len(got) <= 2 + (ups[-1] - ups[0]) // interval
    t.check(spaced, "%s: updates at least %d ms apart in stream time" % (label, interval))
    t.check(fewer, "%s: no more versions than one per interval plus open and close" % label)
    t.check(sum(map(len, accepted.values())) < sum(map(len, emitted.values())),
            "%s: intermediate versions were coalesced" % label)


def test_happy_path(t, c, clip):
    for label, binary in [("happy", None), ("asan", VIGIL_ASAN)]:
        if label == "asan" and not binary:
            continue
        stub = CentralStub(t, label, KEY)
        spool, out = t.path("%s.spool" % label), t.path("%s.jsonl" % label)
        r = c.replay(clip, "gate", stub, spool, "--out", out, binary=binary)
        t.check(r.returncode == 0, "%s: replay exits 0 (stderr: %s)" % (label, r.stderr.strip()[-1500:]))
        t.check("written to %s and Central" % out in r.stderr, "%s: summary names both sinks" % label)
        emitted, accepted = check_complete(t, label, out, stub, 5)
        check_rate_limit(t, label, emitted, accepted)
        t.check(stub.state()["statuses"] == {"200": sum(map(len, accepted.values()))}, "%s: every request answered 200" % label)
        t.check(spool_files(spool) == [], "%s: spool empty after delivery" % label)
        alone = c.alone(clip, "gate", binary=binary)
        t.check(r.seconds < alone.seconds + REPLAY_DRAIN_S,
                "%s: the exit does not wait once Central has everything (%.1f s, %.1f s without Central)"
                % (label, r.seconds, alone.seconds))
        stub.stop()


def most_attempts(window_s):
    """The most attempts vigil's backoff allows in window_s: the n-th failure pauses at least
    BACKOFF_FIRST_S * 2^(n-1) / 2, so n attempts need 0.25 s * (2^(n-1) - 1)."""
    n = 1
    while BACKOFF_FIRST_S / 2 * (2 ** n - 1) <= window_s:
        n += 1
    return n


def test_central_down_at_start(t, c, clip):
    """Central answers 503 until vigil has retried (an event: the stub counts the 503s), then takes everything."""
    stub = CentralStub(t, "fail", KEY)
    stub.control(mode="503")
    down = time.monotonic()
    spool, out = t.path("fail.spool"), t.path("fail.jsonl")
    result = {}
    replay = threading.Thread(target=lambda: result.update(r=c.replay(clip, "gate", stub, spool, "--out", out)))
    replay.start()
    retried = wait_for(lambda: stub.state()["statuses"].get("503", 0) >= 3 or not replay.is_alive(), step=0.05)
    stub.control(mode="ok")
    window = time.monotonic() - down
    replay.join()
    r = result["r"]
    t.check(retried and stub.state()["statuses"].get("503", 0) >= 3, "503: vigil retried while Central answered 503")
    t.check(r.returncode == 0, "503: replay exits 0 (stderr: %s)" % r.stderr.strip()[-1500:])
    check_complete(t, "503", out, stub, 5)
    statuses = stub.state()["statuses"]
    t.check(statuses.get("503", 0) <= most_attempts(window),
            "503: retries back off (%s 503s in %.1f s, at most %d)"
            % (statuses.get("503"), window, most_attempts(window)))
    warn = [l for l in r.stderr.splitlines() if "stay queued" in l]
    t.check(len(warn) == 1 and stub.url in warn[0], "503: one line says Central is failing: %r" % warn)
    t.check(any("accepts episodes again" in l for l in r.stderr.splitlines()), "503: one line says it is back")
    t.check(spool_files(spool) == [], "503: spool empty after delivery")
    stub.stop()


def test_kill_and_flush(t, c):
    # 14 s at real time, Central answering 503; killed once the spool holds 4 episodes, 2 of them closed
    # (about 5 s in: regions 0 and 2 closed, 1 and 3 open)
    clip = make_clip(t.path("long.mp4"), seconds=14, size="%dx%d" % (W, H),
                     boxes=[box(0, 1, 3), box(1, 2, 10), box(2, 3.5, 5), box(3, 4.5, 12)])
    stub = CentralStub(t, "kill", KEY)
    stub.control(mode="503")
    spool = t.path("kill.spool")
    args = [VIGIL, "replay", clip, "--script", c.rule, "--media", "yard", "--start", str(START), "--params", PARAMS,
            "--central", stub.url, "--api-key", KEY, "--spool", spool, "--realtime", "--out", t.path("kill.jsonl")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    def four_begun_two_closed():
        now = spooled_versions(spool) if os.path.isdir(spool) else []
        return len({v["episode_id"] for v in now}) >= 4 and sum(v["closing"] for v in now) >= 2

    # the next change (region 1 closing) is 5 s of real time later: the kill comes long before it
    wait_for(lambda: four_begun_two_closed() or proc.poll() is not None, step=0.05)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    c.stderr.append(err)
    t.check(proc.returncode == -signal.SIGKILL, "kill: vigil was killed mid-run (rc %s)" % proc.returncode)
    held = spooled_versions(spool)
    ids = {v["episode_id"] for v in held}
    t.check(len(ids) == 4, "kill: the spool holds the 4 episodes begun before the kill, got %d" % len(ids))
    t.check(stub.accepted() == {}, "kill: Central accepted nothing while down")
    emitted = by_episode(read_versions(t.path("kill.jsonl")))
    for eid in ids:
        firsts = [v for v in held if v["episode_id"] == eid and v["first"]]
        t.check(len(firsts) == 1 and firsts[0]["body"] == emitted[eid][0],
                "kill: episode %d's first version is in the spool" % eid)
    closed = [v["episode_id"] for v in held if v["closing"]]
    t.check(len(closed) == 2, "kill: two episodes were closed before the kill, got %d" % len(closed))

    stub.control(mode="ok")
    r = run(["flush", "--central", stub.url, "--spool", spool, "--api-key-file",
             write(t.path("central.conf"), "# Central\nAPI_KEY=%s\n" % KEY)])
    c.stderr.append(r.stderr)
    t.check(r.returncode == 0, "flush: exits 0 (stderr: %s)" % r.stderr.strip()[-1500:])
    t.check("versions from the spool" in r.stderr and "0 left in the spool" in r.stderr,
            "flush: says what it loaded and that nothing is left: %s" % r.stderr.strip()[-600:])
    accepted, state = stub.accepted(), stub.state()
    t.check(set(accepted) == ids, "flush: every spooled episode arrived")
    t.check(state["violations"] == [], "flush: no violations: %s" % state["violations"][:3])
    newest = {}
    for v in held:
        if v["updated_at"] > newest.get(v["episode_id"], {"updated_at": -1})["updated_at"]:
            newest[v["episode_id"]] = v
    for eid in ids:
        got = accepted.get(eid, [])
        first = [v["body"] for v in held if v["episode_id"] == eid and v["first"]]
        t.check(got and first and got[0] == first[0], "flush: episode %d opened with its first version" % eid)
        t.check(got and got[-1] == newest[eid]["body"], "flush: episode %d's newest spooled version arrived" % eid)
    for eid in closed:
        t.check(accepted.get(eid) and "closed_at" in accepted[eid][-1], "flush: closed episode %d closed at Central" % eid)
    t.check(spool_files(spool) == [], "flush: spool empty afterwards")
    stub.stop()


def test_wrong_key_then_400(t, c, clip):
    stub = CentralStub(t, "auth", KEY)
    spool = t.path("auth.spool")
    conf = write(t.path("wrong.conf"), "CENTRAL_URL=%s\n  API_KEY = \"%s\"   # wrong on purpose\n" % (stub.url, WRONG_KEY))
    r = c.replay(clip, "bad", stub, spool, "--out", t.path("bad.jsonl"), key_args=["--api-key-file", conf])
    emitted = by_episode(read_versions(t.path("bad.jsonl")))
    t.check(r.returncode == 0, "auth: replay itself succeeds (stderr: %s)" % r.stderr.strip()[-1500:])
    refused = [l for l in r.stderr.splitlines() if "refused the API key" in l]
    t.check(len(refused) == 1, "auth: exactly one error line about the key: %r" % refused)
    t.check(refused and stub.url in refused[0] and " error: " in refused[0], "auth: it names the URL: %r" % refused)
    t.check(WRONG_KEY not in r.stderr and KEY not in r.stderr, "auth: the key is not in stderr")
    alone = c.alone(clip, "bad")
    t.check(r.seconds < alone.seconds + REPLAY_DRAIN_S, "auth: the exit does not wait for a retry that cannot come "
            "in time (%.1f s, %.1f s without Central)" % (r.seconds, alone.seconds))
    t.check(any("stay in the spool" in l for l in r.stderr.splitlines()), "auth: says versions stay in the spool")
    held = spooled_versions(spool)
    t.check({v["episode_id"] for v in held} == set(emitted) and len(emitted) == 5,
            "auth: every episode is kept in the spool (%d of %d)" % (len({v["episode_id"] for v in held}), len(emitted)))
    t.check(all(any(v["first"] and v["episode_id"] == e for v in held) and any(v["closing"] and v["episode_id"] == e for v in held)
                for e in emitted), "auth: first and closing versions of each are in the spool")
    t.check(stub.state()["statuses"] == {"401": 1}, "auth: one request, then a slow retry: %s" % stub.state()["statuses"])

    # (d) the same spool, now with the right key; Central rejects media "bad" with 400 while "good" replays
    stub.control(mode="400", for_media="bad")
    out = t.path("good.jsonl")
    r = c.replay(clip, "good", stub, spool, "--out", out, key_args=["--api-key-file", write(t.path("right.conf"), "API_KEY=%s\n" % KEY)])
    t.check(r.returncode == 0, "400: replay exits 0 (stderr: %s)" % r.stderr.strip()[-1500:])
    rejected = [l for l in r.stderr.splitlines() if "rejected" in l]
    t.check(len(rejected) == len(held) and all("bad episode" in l and "media bad" in l for l in rejected),
            "400: one line per rejected version with Central's error: %r" % rejected[:2])
    good = by_episode(read_versions(out))
    accepted = stub.accepted()
    t.check(set(accepted) == set(good), "400: the good media's episodes all arrived, no bad one")
    check_complete(t, "400", out, stub, 5)
    t.check(spool_files(spool) == [], "400: spool empty (rejected versions dropped)")
    stub.stop()


def test_bad_key_files(t, c, clip):
    stub = CentralStub(t, "keyfile", KEY)
    for text, needle in [(None, "missing.conf"), ("CENTRAL=1\n# API_KEY=x\n", "no API_KEY= line")]:
        path = t.path("missing.conf") if text is None else write(t.path("nokey.conf"), text)
        r = c.replay(clip, "gate", stub, t.path("kf.spool"), key_args=["--api-key-file", path])
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        t.check(r.returncode != 0 and len(lines) == 1 and needle in lines[0] and os.path.basename(path) in lines[0],
                "key file %s: one line naming it: %r" % (needle, r.stderr))
    stub.stop()


def main():
    t = Suite("central")
    c = Checks(t)
    c.rule = write(t.path("regions.lua"), RULE)
    # five episodes: region 0 twice, regions 1-3 once; each 1.5-3 s long
    clip = make_clip(t.path("gate.mp4"), seconds=9, size="%dx%d" % (W, H),
                     boxes=[box(0, 1, 3), box(1, 2, 5), box(2, 4, 6), box(3, 3, 4.5), box(0, 6, 8)])
    test_happy_path(t, c, clip)
    test_central_down_at_start(t, c, clip)
    test_kill_and_flush(t, c)
    test_wrong_key_then_400(t, c, clip)
    test_bad_key_files(t, c, clip)
    everything = "\n".join(c.stderr)
    t.check(KEY not in everything and WRONG_KEY not in everything, "no key in any stderr of vigil")
    t.done()


main()
