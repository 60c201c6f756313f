"""test_examples.py — every examples/*/config.json really runs, and examples/offline-rule does what its README says.

Each config is run as written except for what points outside this machine: camera URLs go to the real RTSP
server (tests/servers/rtsp_server.py), `central` to the Central stub with a key file in central.conf format,
`node.config_external` to a stream list served here, paths (spool, output, store) and listen addresses to
temporary ones. Checked: the config is accepted, every camera comes up and analyses frames, nothing is logged
at error level, the run exits 0, and with Central configured the stub holds every episode, closed, (a box
crosses the picture, so the perimeter's intrusion rule has something to send). The offline
example: the clip command from its README is run as written and the rule's episode matches the box's
known passage through the zone.

A run lasts until its cameras have seen what is checked (an event, read from the metrics endpoint every run
gets), not for a fixed time: each camera has analysed more than 25 frames and has received the frames up to a
second after the box left the picture. The box is timed on the media's clock (--box-clock media: from the
first camera connecting), so a slow start never makes a camera miss it."""
import glob
import json
import os
import re
import shlex
import subprocess
import urllib.request

from vigiltest import Suite, SRC, CentralStub, write, run, read_versions
from livetest import ConfigExternal, Run, Server, free_port

EXAMPLES = os.path.join(SRC, "examples")
KEY = "example-key-1"
FPS = 25           # the server's
BOX = (4.0, 7.0)   # seconds of the media's running time: after the second key frame (2 s), which a camera
                   # joining the shared media after the first one waits for at most


def localize(t, name, example_dir, doc, camera_url, services):
    """The example's config with everything that leaves this machine pointed at local stand-ins."""
    node = doc.setdefault("node", {})
    for key in ("spool_dir", "store_dir"):
        if key in node:
            node[key] = t.path(name + "-" + key)
    for key in ("metrics", "listen"):
        if key in node:
            node[key] = "127.0.0.1:%d" % free_port()
    node.setdefault("metrics", "127.0.0.1:%d" % free_port())  # the test reads the run's progress there
    if "config_external" in node:
        node["config_external"] = services["streams"].url
    for entry in node.get("stream_scripts", []):
        if "script" in entry:
            entry["script"] = os.path.join(example_dir, entry["script"])
    if "output" in doc and "file" in doc["output"]:
        doc["output"]["file"] = t.path(name + "-episodes.jsonl")
    if "previews_dir" in doc.get("output", {}):
        doc["output"]["previews_dir"] = t.path(name + "-previews")
    if "central" in doc:
        stub = CentralStub(t, name, KEY)
        services.setdefault("stubs", []).append(stub)
        doc["central"]["url"] = stub.url
        doc["central"].pop("api_key", None)
        doc["central"]["api_key_file"] = write(t.path(name + "-central.conf"), "API_KEY=%s\n" % KEY)
    for cam in doc.get("cameras", []):
        cam["url"] = camera_url
        if "preview_url" in cam:  # the same mount: one scene, one clock, as a camera's two streams are
            cam["preview_url"] = camera_url
        cam["script"] = os.path.join(example_dir, cam["script"])
    return doc


def check_config_example(t, path, server, services):
    example_dir = os.path.dirname(path)
    name = os.path.basename(example_dir)
    with open(path) as f:
        doc = json.load(f)
    services.pop("stubs", None)
    local = localize(t, name, example_dir, doc, server.url(), services)
    cfg = write(t.path(name + ".json"), json.dumps(local, indent=1))
    medias = [c["media"] for c in doc.get("cameras", [])]
    medias += ["handed-out"] if "config_external" in doc.get("node", {}) else []
    t.check(medias, "%s: the example has cameras" % name)
    v = Run(cfg)
    try:
        seen = v.until(lambda: seen_the_box(local["node"]["metrics"], medias), step=0.5)
        t.check(seen, "%s: every camera analyses frames and receives the box's passage: %s"
                % (name, progress(local["node"]["metrics"])))
    finally:
        rc, err = v.stop()
        for stub in services.get("stubs", []):
            stub.stop()
    lines = err.splitlines()
    t.check(rc == 0, "%s: runs and exits 0 (rc %s): %s" % (name, rc, err[-1500:]))
    t.check(not [l for l in lines if " error:" in l], "%s: nothing logged at error level: %s"
            % (name, [l for l in lines if " error:" in l][:3]))
    for media in medias:
        up = [l for l in lines if l.startswith(media + " info: stream up")]
        counted = [int(m.group(1)) for l in lines for m in [re.match(re.escape(media) + r" info: (\d+) frames", l)] if m]
        t.check(up and counted and counted[-1] > 25, "%s: camera %s came up and analysed frames (%s)"
                % (name, media, counted))
    for cam in (c for c in doc.get("cameras", []) if "preview_url" in c):
        t.check(any(l.startswith(cam["media"] + " info: previews come from the preview stream") for l in lines),
                "%s: camera %s's previews come from its preview_url" % (name, cam["media"]))
    previews_dir = local.get("output", {}).get("previews_dir")
    if previews_dir:
        jpegs = glob.glob(os.path.join(previews_dir, "*.jpg"))
        t.check(jpegs and all(open(p, "rb").read(2) == b"\xff\xd8" for p in jpegs),
                "%s: previews written as JPEG files to output.previews_dir (%d)" % (name, len(jpegs)))
    opened = sum(int(m.group(1)) for l in lines for m in [re.search(r" info: \d+ frames, .*; (\d+) episodes, ", l)] if m)
    for stub in services.get("stubs", []):
        newest = stub.last_accepted()
        closed = [r for r in newest.values() if "closed_at" in r]
        print("INFO: %s: %d episodes opened; Central has %d, %d of them closed" % (name, opened, len(newest), len(closed)))
        t.check(len(newest) == opened and len(closed) == opened,
                "%s: every episode reached Central (key from the key file), closed, before exit: %d of %d"
                % (name, len(closed), opened))
        said = {kind: {m.group(1) for l in lines for m in [re.search(r" info: episode (\d+) %s: " % kind, l)] if m}
                for kind in ("opened", "closed")}
        ids = {str(r["episode_id"]) for r in newest.values()}
        t.check(said["opened"] == ids and said["closed"] == ids,
                "%s: the log says each episode opened and closed, with its exact id, while Central is the sink: %s"
                % (name, {k: len(v) for k, v in said.items()}))
    return opened if services.get("stubs") else 0


def progress(metrics):
    """media -> (frames received, frames analysed), from the run's metrics endpoint."""
    try:
        with urllib.request.urlopen("http://%s/metrics" % metrics, timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return {}
    got = {}
    for kind, i in (("received", 0), ("analysed", 1)):
        for media, value in re.findall(r'^vigil_camera_frames_%s_total\{media="([^"]*)"\} (\S+)$' % kind, text, re.M):
            got.setdefault(media, [0, 0])[i] = float(value)
    return got


def seen_the_box(metrics, medias):
    """Every camera has analysed more than 25 frames and received those up to a second after the box left: it
    joined the media by its second key frame (BOX[0]), so it received every frame of the passage."""
    got = progress(metrics)
    return all(m in got and got[m][1] > 25 and got[m][0] >= (BOX[1] + 1) * FPS for m in medias)


def readme_command(readme, starts):
    """The shell command in readme that starts with starts (continuation lines joined)."""
    text = open(readme).read().replace("\\\n", " ")
    for line in text.splitlines():
        if line.strip().startswith(starts):
            return line.strip()
    return None


def check_offline_rule(t):
    here = os.path.join(EXAMPLES, "offline-rule")
    cmd = readme_command(os.path.join(here, "README.md"), "ffmpeg -f lavfi")
    if not t.check(cmd, "offline-rule: the README shows how to make the clip"):
        return
    args = shlex.split(cmd)
    args[args.index("box.mp4")] = t.path("box.mp4")
    r = subprocess.run(["ffmpeg", "-v", "error", "-y"] + args[1:], capture_output=True, text=True)
    t.check(r.returncode == 0, "offline-rule: the README's ffmpeg command works (%s)" % r.stderr[-300:])
    rule = os.path.join(here, "my_rule.lua")
    r = run(["check", rule, "--params", '{"level": 60}'])
    t.check(r.returncode == 0, "offline-rule: vigil check passes: %s" % r.stderr[-300:])
    out = t.path("box.jsonl")
    r = run(["replay", t.path("box.mp4"), "--script", rule, "--start", "1700000000000", "--out", out])
    closed = [v for v, _ in read_versions(out) if "closed_at" in v]
    # The 60-px box moves 180 px/s from x = 0 at t = 2 s; the zone spans x 192..448 of 640.
    enter, leave = 1700000000000 + (2 + (192 - 60) / 180.0) * 1000, 1700000000000 + (2 + 448 / 180.0) * 1000
    t.check(r.returncode == 0 and len(closed) == 1, "offline-rule: one episode (%s)" % r.stderr[-300:])
    if closed:
        ep = closed[0]
        print("INFO: offline-rule: episode %d..%d, truth %.0f..%.0f" % (ep["opened_at"], ep["closed_at"], enter, leave))
        t.check(abs(ep["opened_at"] - enter) <= 3 * 40 and abs(ep["closed_at"] - leave) <= 3 * 40,
                "offline-rule: the episode spans the box's passage through the zone, within 3 frames")
        t.check(ep.get("preview"), "offline-rule: the episode has a preview")
    cmd = readme_command(os.path.join(here, "README.md"), "python3 -c")
    if t.check(cmd, "offline-rule: the README shows how to list the episodes"):
        with open(out) as f:
            r = subprocess.run(shlex.split(cmd.rsplit("<", 1)[0]), stdin=f, capture_output=True, text=True)
        ids = {str(v["episode_id"]) for v, _ in read_versions(out)}
        listed = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
        t.check(r.returncode == 0 and listed and listed == ids,
                "offline-rule: the README's listing prints the ids exactly: %s vs %s %s" % (listed, ids, r.stderr[-200:]))


def main():
    t = Suite("examples")
    configs = sorted(glob.glob(os.path.join(EXAMPLES, "*", "config.json")))
    t.check(len(configs) >= 3, "examples: at least three camera setups (%d)" % len(configs))
    for path in configs:
        readme = os.path.join(os.path.dirname(path), "README.md")
        t.check(os.path.exists(readme), "%s has a README.md" % os.path.dirname(path))
    emitted = 0
    for path in configs:
        # A fresh server per example: a white box crosses the middle of the picture BOX seconds after the first
        # camera connected.
        server = Server(t, os.path.basename(os.path.dirname(path)), ["/cam"], stamp=False,
                        extra=["--box", "%g,%g" % BOX, "--box-clock", "media"])
        streams = ConfigExternal(streams=[{"name": "handed-out", "inputs": [{"url": server.url()}]}])
        try:
            emitted += check_config_example(t, path, server, {"streams": streams})
        finally:
            streams.stop()
            server.stop()
    t.check(emitted > 0, "the examples with Central sent episodes to it (%d episodes)" % emitted)
    check_offline_rule(t)
    t.done()


main()
