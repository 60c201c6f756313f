"""test_node.py — analytics-node mode: Central hands out streams and pulls episodes (`vigil run`, real RTSP
server, real HTTP both ways).

A fake config_external (http.server on loopback, in this test, Bearer key checked) serves a stream list the test
changes while vigil runs; the cameras are on the real RTSP server (tests/servers/rtsp_server.py). Checked:
- the list's streams start, each with the rule node.stream_scripts gives it (a glob entry, then the default);
  a config-file camera runs beside them, and a Central stream with the same name is refused (the file wins,
  said once); removing a stream stops its camera (its open episode closes with payload.close_reason "removed"), a
  changed URL restarts that camera only ("restart"), a new name starts one; a failing config_external keeps
  the set and is logged once when it starts failing and once when it recovers; a SIGHUP whose file takes a
  name of Central's and drops its own camera hands each name over (the file still wins);
- the node API over real HTTP: long polls wait when nothing is newer (empty after poll_timeout), answer as soon
  as a new version is stored (the latency from the version being written to the answer arriving is printed), never
  return a version at or below updated_at_gt, oldest first, estimated_count consistent; 401 with no key and
  with a wrong key; 400 naming a bad parameter; /streams and /monitoring/liveness have the documented shape;
- after a restart on the same spool the episodes of the first run are still served, complete (each equal to
  its newest version in the output file); that second run is the sanitized binary when it is built, and a
  stream Central adds and removes there starts and stops;
- no key (node, config_external) and no RTSP password in any log line."""
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

from vigiltest import HANG_S, SLACK_S, Suite, VIGIL, VIGIL_ASAN, read_versions, wait_for, write
from livetest import RTCP_WAIT_MS, SECRET, ConfigExternal, Output, Server, free_port

# Long polls (architecture.md): one with nothing newer waits poll_timeout, then answers an empty list; one that
# waits is woken by the producer's put, so it answers "as soon as" a camera stores a newer version: promise 0,
# plus SLACK_S. A woken poll waits POLL_WOKEN_S at most, far over a version's interval plus the slack, so a poll
# answered by its timeout can never pass for a woken one.
POLL_EMPTY_S = 1.5
POLL_WOKEN_S = 30

NODE_KEY = "n0de-Key-42"
CENTRAL_KEY = "c3ntral-Key-7"
API = "/vision/api/v3"

RULE = """
local vigil = require "vigil"
-- one "session" episode open from the first frame until the camera stops, and a closed "tick" episode
-- every params.every_ms of stream time: versions come in bursts with quiet time between them
local session, last_tick
function on_frame(frame)
  if not session then
    session = vigil.episode(frame, {episode_type = "session", payload = {tag = vigil.params.tag}})
  end
  if not last_tick or frame.ts - last_tick >= vigil.params.every_ms then
    last_tick = frame.ts
    vigil.episode(frame, {episode_type = "tick", payload = {tag = vigil.params.tag}}):close(frame)
  end
end
"""


# ---------------------------------------------------------------- the fake config_external

# ---------------------------------------------------------------- the node API

class Node:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d%s" % (port, API)

    def get(self, path, key=NODE_KEY, timeout=30):
        """(status, headers, parsed body or None, seconds taken)."""
        req = urllib.request.Request(self.base + path)
        if key is not None:
            req.add_header("Authorization", "Bearer " + key)
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, headers, raw = r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, dict(e.headers), e.read()
        except (urllib.error.URLError, OSError):  # not listening (yet, or any more)
            status, headers, raw = None, {}, b""
        took = time.monotonic() - t0
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        return status, headers, body, took

    def episodes(self, after=None, poll=None, limit=None, timeout=30):
        q = []
        if after is not None:
            q.append("updated_at_gt=%d" % after)
        if poll is not None:
            q.append("poll_timeout=%s" % poll)
        if limit is not None:
            q.append("limit=%d" % limit)
        return self.get("/episodes" + ("?" + "&".join(q) if q else ""), timeout=timeout)

    def streams(self):
        status, _, body, _ = self.get("/streams")
        return {s["name"]: s for s in body["streams"]} if status == 200 and body else {}


class Tail:
    """Follows vigil's output file: when each (episode_id, updated_at) was first seen, on time.monotonic()."""

    def __init__(self, path):
        self.path, self.seen, self.stopping = path, {}, False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not os.path.exists(self.path) and not self.stopping:
            time.sleep(0.01)
        with open(self.path) as f:
            partial = ""
            while not self.stopping:
                chunk = f.read()
                now = time.monotonic()
                if not chunk:
                    time.sleep(0.002)
                    continue
                partial += chunk
                *lines, partial = partial.split("\n")
                for line in lines:
                    if line.strip():
                        rec = json.loads(line)
                        self.seen.setdefault((rec["episode_id"], rec["updated_at"]), now)

    def stop(self):
        self.stopping = True
        self.thread.join()


# ---------------------------------------------------------------- setup

def node_config(t, url, external, node_port, file_camera="filecam"):
    """The node's config; its one camera of its own is file_camera (on url(0))."""
    out = t.path("episodes.jsonl")
    doc = {
        "node": {
            "machine_id": 5, "log_level": "info", "spool_dir": "spool",
            "listen": "127.0.0.1:%d" % node_port, "api_key": NODE_KEY, "keep_episodes_for": "2h",
            "config_external": "http://%s@127.0.0.1:%d/api" % (CENTRAL_KEY, external.port),
            "config_external_interval_ms": 500,
            "stream_scripts": [
                {"match": "lobby-*", "script": "rule.lua", "params": {"tag": "lobby", "every_ms": 3000}},
                {"script": "rule.lua", "params": {"tag": "default", "every_ms": 3000}},
            ],
        },
        "output": {"file": out},
        "defaults": {"stall_timeout_ms": 3000, "rtcp_wait_ms": RTCP_WAIT_MS},
        "cameras": [{"media": file_camera, "url": url(0), "script": "rule.lua",
                     "params": {"tag": "file", "every_ms": 3000}}],
    }
    return write(t.path("node.json"), json.dumps(doc, indent=1)), out


def start(cfg, log, binary=None):
    """vigil run CONFIG, its stderr to the file log (read while it runs)."""
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
    with open(log, "w") as f:
        return subprocess.Popen([binary or VIGIL, "run", cfg], stdout=subprocess.DEVNULL, stderr=f, env=env)


def stop(proc, log):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=HANG_S)
    with open(log) as f:
        return proc.returncode, f.read()


def running(node, expect):
    """The /streams answer once every stream of expect ({name: url}) is up with that URL and analysing, and no
    other stream is listed."""
    def ready():
        got = node.streams()
        if set(got) != set(expect):
            return None
        ok = all(got[n]["state"] == "up" and got[n]["url"] == expect[n] and got[n]["frames"] > 0 for n in expect)
        return got if ok else None
    return wait_for(ready)


def masked(url):
    return url.replace(SECRET, "***")


# ---------------------------------------------------------------- scenarios

def check_api_shapes(t, node, launched):
    """launched: time.time() just before vigil was started."""
    asked = time.time()
    status, headers, body, _ = node.get("/monitoring/liveness")
    answered = time.time()
    body = body or {}
    # ordering, not speed: vigil's clock read between our asking and the answer; its start after its launch
    t.check(status == 200 and isinstance(body.get("server_version"), str)
            and int(asked * 1000) <= body.get("now", 0) <= answered * 1000
            and int(launched) <= body.get("started_at", 0) <= answered,
            "liveness: server_version, now (ms) while we asked, started_at (s) after the launch: %s" % body)
    for key, label in ((None, "no key"), ("wrong", "a wrong key"), (NODE_KEY + "x", "the key plus a letter")):
        status, headers, body, _ = node.get("/episodes", key=key)
        t.check(status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer")
                and body and body["errors"][0]["status"] == "401",
                "%s: 401 with WWW-Authenticate: Bearer and a JSON error (got %s %s)" % (label, status, body))
    status, _, body, _ = node.get("/episodes?poll_timeout=later")
    t.check(status == 400 and body and body["errors"][0]["source"] == {"parameter": "poll_timeout"},
            "a bad poll_timeout: 400 naming it: %s" % body)
    status, _, body, _ = node.get("/cameras")
    t.check(status == 404, "an unknown path: 404 (%s)" % status)


def check_order(t, label, episodes, after):
    ups = [e["updated_at"] for e in episodes]
    t.check(ups == sorted(ups), "%s: oldest first" % label)
    t.check(all(u > after for u in ups), "%s: nothing at or below updated_at_gt=%d: %s"
            % (label, after, [u for u in ups if u <= after][:3]))
    t.check(all(isinstance(e.get("episode_id"), int) and e.get("media") and "opened_at" in e for e in episodes),
            "%s: complete records" % label)


def check_long_polls(t, node, tail):
    """Queries, a long poll with nothing newer, and long polls woken by new versions (latency measured)."""
    status, _, body, _ = node.episodes(after=0)
    eps = body["episodes"] if body else []
    if not t.check(status == 200 and len(eps) >= 3 and body["estimated_count"] == len(eps),
                   "everything: %d episodes, estimated_count %s" % (len(eps), body and body["estimated_count"])):
        return
    check_order(t, "everything", eps, 0)
    if len(eps) >= 2:
        middle = eps[len(eps) // 2]["updated_at"]
        _, _, part, _ = node.episodes(after=middle)
        check_order(t, "after the middle one", part["episodes"], middle)
        expect = [e["episode_id"] for e in eps if e["updated_at"] > middle]
        got = [e["episode_id"] for e in part["episodes"]]
        t.check(got[:len(expect)] == expect and part["estimated_count"] >= len(got),
                "after the middle one: the same episodes as the full list's tail, estimated_count %d >= %d"
                % (part["estimated_count"], len(got)))
        _, _, one, _ = node.episodes(after=0, limit=1)
        t.check(len(one["episodes"]) >= 1 and one["estimated_count"] >= len(eps),
                "limit=1: %d episode(s), estimated_count %d counts the rest"
                % (len(one["episodes"]), one["estimated_count"]))

    future = int(time.time() * 1000) + 3600 * 1000
    status, _, body, took = node.episodes(after=future, poll=POLL_EMPTY_S)
    print("INFO: long poll with nothing newer answered after %.2f s" % took)
    # never before poll_timeout (0.1 s: vigil's clock is not ours); after it, by SLACK_S at most
    t.check(status == 200 and body == {"episodes": [], "estimated_count": 0}
            and POLL_EMPTY_S - 0.1 <= took < POLL_EMPTY_S + SLACK_S,
            "nothing newer: waits poll_timeout (%.1f s, took %.2f) and answers an empty list" % (POLL_EMPTY_S, took))

    latencies, captured = [], []
    for _ in range(12):
        _, _, now_body, _ = node.episodes(after=0)
        newest = max(e["updated_at"] for e in now_body["episodes"]) if now_body else 0
        began = time.monotonic()
        status, _, body, took = node.episodes(after=newest, poll=POLL_WOKEN_S, timeout=POLL_WOKEN_S + HANG_S)
        answered, wall = time.monotonic(), time.time()
        got = body["episodes"] if body else []
        t.check(status == 200 and got, "a long poll is answered with the new version(s)")
        check_order(t, "long poll", got, newest)
        if not got:
            continue
        first = got[0]
        written = wait_for(lambda: tail.seen.get((first["episode_id"], first["updated_at"])), step=0.005)
        if written and written > began:  # the version came while the poll waited
            latencies.append((answered - written) * 1000)
            captured.append((wall - first["updated_at"] / 1000.0) * 1000)
        if len(latencies) >= 6:
            break
    latencies.sort()
    print("INFO: long-poll wake latency, from the version's line appearing in the output file (written just before"
          " the store) to the answer received, ms: %s (the file is polled every 2 ms: values near 0 are within"
          " that resolution)" % ", ".join("%.1f" % x for x in latencies))
    print("INFO: frame capture -> answer received, ms: %s" % ", ".join("%.1f" % x for x in sorted(captured)))
    t.check(len(latencies) >= 3, "at least 3 long polls were woken by a new version (%d)" % len(latencies))
    t.check(latencies and max(latencies) < SLACK_S * 1000,
            "a waiting long poll answers as soon as a new version is stored (slowest %.0f ms; limit: %.0f s of a "
            "loaded machine, far below the %d s poll_timeout)" % (max(latencies or [-1]), SLACK_S, POLL_WOKEN_S))


def check_streams(t, got, url):
    t.check(got is not None, "the handed-out streams and the file's camera come up: %s" % got)
    if not got:
        return
    t.check(got["filecam"]["source"] == "config" and got["filecam"]["url"] == masked(url(0)),
            "filecam runs from the config file, with its URL (the file wins the name clash)")
    t.check(all(got[n]["source"] == "central" for n in got if n != "filecam"), "the others come from Central")
    s = got["cam2"]
    t.check(s["clock"] == "rtcp" and s["frames"] > 0 and s["episodes_open"] == 1 and s["connects"] == 1
            and s["script"].endswith("rule.lua") and SECRET not in json.dumps(got),
            "a stream's state: clock, frames, connects, episodes_open, script; passwords masked: %s" % s)


def sessions(versions):
    """media -> list of closed session records, in order of opening."""
    out = {}
    for rec, _ in versions:
        if rec.get("episode_type") == "session" and "closed_at" in rec:
            out.setdefault(rec["media"], []).append(rec)
    for media in out:
        out[media].sort(key=lambda r: r["opened_at"])
    return out


def session_tags(s, media):
    return [r["payload"].get("tag") for r in s.get(media, [])]


def check_lifecycle(t, versions):
    s = sessions(versions)
    reasons = {m: [r["payload"].get("close_reason") for r in s[m]] for m in s}
    tags = {}
    for rec, _ in versions:
        tags.setdefault(rec["media"], set()).add(rec["payload"].get("tag"))
    t.check(reasons.get("cam2") == ["removed"], "cam2, removed from the list: its session closed as removed: %s"
            % reasons.get("cam2"))
    t.check(reasons.get("lobby-1") == ["restart", "shutdown"],
            "lobby-1, URL changed: closed with restart, ran again until shutdown: %s" % reasons.get("lobby-1"))
    t.check(reasons.get("cam3") == ["removed", "shutdown"] and session_tags(s, "cam3") == ["default", "file"],
            "cam3, added by Central, then taken by the file at SIGHUP: %s, %s" % (reasons.get("cam3"),
                                                                                 session_tags(s, "cam3")))
    t.check(reasons.get("filecam") == ["removed", "shutdown"] and session_tags(s, "filecam") == ["file", "default"],
            "filecam, the file's until SIGHUP dropped it, then Central's: %s, %s" % (reasons.get("filecam"),
                                                                                    session_tags(s, "filecam")))
    t.check(tags == {"filecam": {"file", "default"}, "cam2": {"default"}, "cam3": {"default", "file"},
                     "lobby-1": {"lobby"}},
            "each stream ran the rule node.stream_scripts gave it (lobby-* glob, else the default): %s" % tags)


def check_logs(t, err):
    lines = err.splitlines()
    for secret, what in ((NODE_KEY, "node key"), (CENTRAL_KEY, "config_external key"), (SECRET, "RTSP password")):
        t.check(secret not in err, "the %s never reaches a log line" % what)
    for name in ("filecam", "cam3"):
        clash = [l for l in lines if l.startswith("config_external warn: %s: also a camera of the config file" % name)]
        t.check(len(clash) == 1, "the name clash over %s is logged once: %s" % (name, clash))
    failing = [l for l in lines if "HTTP 500" in l]
    t.check(len(failing) == 1 and "keeping the 3 streams" in failing[0] and failing[0].startswith("config_external warn:"),
            "a failing config_external: one line, the set kept: %s" % failing)
    recovered = [l for l in lines if "recovered" in l]
    t.check(len(recovered) == 1, "its recovery: one line: %s" % recovered)
    refused = [l for l in lines if l.startswith("node warn:") and "refused" in l]
    t.check(len(refused) == 1, "refused requests: one warn line, not one per request: %s" % refused)


def first_run(t, url, external, cfg, out, node_port):
    external.streams = [
        {"name": "cam2", "inputs": [{"url": url(1)}]},
        {"name": "filecam", "url": url(2)},  # clashes with the file's camera: the file wins
        {"name": "lobby-1", "inputs": [{"url": url(0)}]},
    ]
    log = t.path("run-1.log")
    launched = time.time()
    proc = start(cfg, log)
    node = Node(node_port)
    tail = Tail(out)
    output = Output(out)

    def every_one_ticked(medias):
        """Waits until each of medias has written a tick after now (a restarted camera ticks at its first frame)."""
        since = len(output.read())
        return wait_for(lambda: set(medias) <= {r["media"] for r in output.read()[since:]
                                                if r.get("episode_type") == "tick"})

    try:
        got = running(node, {"filecam": masked(url(0)), "cam2": masked(url(1)),
                             "lobby-1": masked(url(0))})
        check_streams(t, got, url)
        check_api_shapes(t, node, launched)
        check_long_polls(t, node, tail)

        external.streams = [
            {"name": "filecam", "url": url(2)},
            {"name": "lobby-1", "inputs": [{"url": url(1)}]},
            {"name": "cam3", "url": url(2)},
        ]
        got = running(node, {"filecam": masked(url(0)), "lobby-1": masked(url(1)),
                             "cam3": masked(url(2))})
        t.check(got is not None, "after the change: cam2 gone, lobby-1 on its new URL, cam3 up: %s" % node.streams())
        t.check(every_one_ticked(["filecam", "lobby-1", "cam3"]),
                "after the change every camera writes a tick, the restarted one on its new URL")

        # SIGHUP with a file that names Central's cam3 and no longer filecam: cam3 becomes the file's,
        # filecam (which Central lists too) becomes Central's
        node_config(t, url, external, node_port, file_camera="cam3")
        proc.send_signal(signal.SIGHUP)
        got = running(node, {"filecam": masked(url(2)), "lobby-1": masked(url(1)), "cam3": masked(url(0))})
        t.check(got and got["cam3"]["source"] == "config" and got["filecam"]["source"] == "central",
                "after SIGHUP: cam3 runs from the file, filecam from Central: %s" % got)
        t.check(every_one_ticked(["filecam", "lobby-1", "cam3"]), "after SIGHUP every camera writes a tick")

        external.failing = True
        t.check(wait_for(lambda: "HTTP 500" in open(log).read()), "a failing config_external is noticed")
        before = external.requests
        t.check(wait_for(lambda: external.requests >= before + 3), "vigil goes on asking while it fails")
        t.check(set(node.streams()) == {"filecam", "lobby-1", "cam3"}, "while config_external fails the set stays")
        external.failing = False
        t.check(wait_for(lambda: "recovered" in open(log).read()), "its recovery is noticed")
    finally:
        rc, err = stop(proc, log)
        tail.stop()
    t.check(rc == 0, "first run exits 0 (rc %s): %s" % (rc, err[-2000:]))
    t.check(external.refused == 0, "vigil sent config_external the key from the URL's user part as Bearer")
    check_logs(t, err)
    versions = read_versions(out)
    check_lifecycle(t, versions)
    return versions


def second_run(t, url, external, cfg, out, node_port, versions):
    """Restart on the same spool (the sanitized binary when built): the first run's episodes are served; a
    stream Central adds and then removes starts and stops beside the file's camera (cam3 since the SIGHUP)."""
    newest = {}
    for rec, raw in versions:
        if rec["episode_id"] not in newest or rec["updated_at"] >= newest[rec["episode_id"]]["updated_at"]:
            newest[rec["episode_id"]] = rec
    external.streams = [{"name": "cam2", "url": url(1)}]
    log = t.path("run-2.log")
    proc = start(cfg, log, binary=VIGIL_ASAN)
    node = Node(node_port)
    try:
        up = wait_for(lambda: proc.poll() is not None or node.get("/monitoring/liveness", timeout=2)[0] == 200)
        status, _, body, _ = node.episodes(after=0, limit=10000)
        both = running(node, {"cam3": masked(url(0)), "cam2": masked(url(1))})
        external.streams = []
        gone = wait_for(lambda: set(node.streams()) == {"cam3"})
    finally:
        rc, err = stop(proc, log)
    t.check(up and status == 200 and body, "the restarted node answers (%s)" % status)
    served = {e["episode_id"]: e for e in (body or {}).get("episodes", [])}
    missing = [i for i in newest if i not in served]
    t.check(not missing, "every episode of the first run is served after the restart (%d of %d missing)"
            % (len(missing), len(newest)))
    differ = [i for i in newest if i in served and served[i] != newest[i]]
    t.check(not differ, "each is the complete newest version (%d differ)" % len(differ))
    t.check(both and gone, "second run: Central's cam2 came up beside the file's cam3, then stopped when removed")
    later = sessions([(r, raw) for r, raw in read_versions(out) if r["episode_id"] not in newest])
    t.check([r["payload"].get("close_reason") for r in later.get("cam2", [])] == ["removed"],
            "second run: cam2's session closed as removed: %s" % later.get("cam2"))
    t.check(rc == 0 and "Sanitizer" not in err and "runtime error" not in err,
            "second run%s: clean exit (rc %s): %s" % (" (ASan+UBSan)" if VIGIL_ASAN else "", rc, err[-3000:]))


def test_config_refused(t):
    bad = write(t.path("bad.json"), json.dumps({
        "node": {"machine_id": 1, "listen": "127.0.0.1:80800", "keep_episodes_for": "2 weeks",
                 "config_external": "http://urlSecret@h/api", "config_external_key": "inlineSecret",
                 "stream_scripts": [{"match": "*", "script": "rule.lua"}, {"match": "x*", "script": "rule.lua"}]},
    }))
    r = subprocess.run([VIGIL, "run", bad], capture_output=True, text=True, timeout=HANG_S)
    lines = r.stderr.splitlines()
    t.check(r.returncode == 2, "a bad node config is refused (exit 2, got %d)" % r.returncode)
    for needle in ("node.listen: ", "node.keep_episodes_for: ", "node.config_external_key: ",
                   "node.stream_scripts[1]: ", "node.spool_dir: missing"):
        t.check(any(needle in l for l in lines), "config error reported: %s... (%s)" % (needle, lines))
    t.check(not any(l.endswith("cameras: missing") for l in lines),
            "with config_external, the file may have no cameras")
    t.check("urlSecret" not in r.stderr and "inlineSecret" not in r.stderr, "no key is echoed: %s" % lines)


def main():
    t = Suite("node")
    write(t.path("rule.lua"), RULE)
    started = time.time()
    test_config_refused(t)
    # one server per camera: livetest.Server reads only the first READY line of a multi-mount server
    servers = [Server(t, "rtsp-" + m, ["/" + m]) for m in "abc"]
    url = lambda i: servers[i].url()  # noqa: E731
    external = ConfigExternal(CENTRAL_KEY)
    try:
        node_port = free_port()
        cfg, out = node_config(t, url, external, node_port)
        versions = first_run(t, url, external, cfg, out, node_port)
        second_run(t, url, external, cfg, out, node_port, versions)
    finally:
        external.stop()
        for server in servers:
            server.stop()
    print("INFO: %.0f s" % (time.time() - started))
    t.done()


main()
