"""tests/bench/live.py — the live sections of tests/bench/run: N RTSP cameras in one `vigil run`, and the peer
comparison (Motion, `ffmpeg -f null`, vigil in each decode mode) on one RTSP stream.

Owns: the stream (a generated H.264 clip relayed without re-encoding by relay_server.py), process
measurement from /proc, the counting rule and the live and peer measurements. Every measurement is a steady-
state window: CPU (utime+stime of all threads, /proc/PID/stat) is sampled once the process has run WARM
seconds and again just before it is stopped, so start-up (connecting, the first sender report, Lua and
Motion initialisation) is not charged. The relay server's CPU is sampled over the same window and reported
on its own, never added to vigil's.

Frames: the camera's rule is scripts/motion.lua with a few lines appended (COUNTER) that count the frames the
rule saw, the first and last frame time and the largest step between frames, written as one "bench" episode
at on_stop. Frame times come from the server's RTCP sender reports (= capture time), so the stream frames in
that span are known exactly; delivered = frames seen / frames the decode mode keeps in the span, and lag =
the time vigil stopped minus the last frame's capture time."""
import json
import os
import select
import signal
import subprocess
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RELAY = os.path.join(SRC, "tests", "bench", "relay_server.py")
PY = "/usr/bin/python3"  # Debian's python has gi
CLK_TCK = os.sysconf("SC_CLK_TCK")
MODES = ["all", "nonref", "keyframes"]

# Appended to scripts/motion.lua (the same chunk, so motion.lua's locals and functions are in scope).
COUNTER = """
-- appended by tests/bench/live.py: what this camera's rule saw, as one "bench" episode when it stops
local bench_on_frame, bench_on_stop = on_frame, on_stop
local bench_n, bench_same, bench_first, bench_last, bench_gap = 0, 0, nil, nil, 0
function on_frame(frame)
  if bench_last and frame.ts <= bench_last then bench_same = bench_same + 1 else bench_n = bench_n + 1 end
  if bench_last and frame.ts - bench_last > bench_gap then bench_gap = frame.ts - bench_last end
  bench_first = bench_first or frame.ts
  if not bench_last or frame.ts > bench_last then bench_last = frame.ts end
  return bench_on_frame(frame)
end
function on_stop()
  if bench_on_stop then bench_on_stop() end
  if bench_n > 0 then
    vigil.episode(bench_last, {episode_type = "bench", payload = {n = bench_n, same_ts = bench_same,
      first = bench_first, last = bench_last, gap = bench_gap}}):close(bench_last)
  end
end
"""


# ---------------------------------------------------------------- /proc

def proc_cpu(pid):
    """utime+stime of the whole process (all threads), seconds; None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / float(CLK_TCK)


def proc_mem(pid):
    """(VmRSS, VmHWM) in MiB."""
    values = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) / 1024.0
    except OSError:
        pass
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def machine_jiffies():
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


class Window:
    """CPU of some processes and of the machine between two instants."""

    def __init__(self, pids):
        self.pids = pids
        self.t0 = time.monotonic()
        self.cpu0 = [proc_cpu(p) for p in pids]
        self.m0 = machine_jiffies()

    def close(self):
        wall = time.monotonic() - self.t0
        cpu = [None if a is None or b is None else b - a
               for a, b in zip(self.cpu0, [proc_cpu(p) for p in self.pids])]
        m1 = machine_jiffies()
        busy = (m1[0] - self.m0[0]) / float(max(1, m1[1] - self.m0[1]))
        return wall, cpu, busy


def sleep_until(t, proc=None):
    """Sleeps until monotonic time t, or until proc has exited. False when it has."""
    while True:
        if proc is not None and proc.poll() is not None:
            return False
        left = t - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, 0.2))


def die_with_parent():
    """preexec_fn: SIGTERM this child when the harness dies (Motion would otherwise run on for ever)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def stop(proc, grace=15):
    """SIGTERM to the process (its own group), SIGKILL after grace seconds."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---------------------------------------------------------------- the stream

def encode_clip(path, width, height, seconds, kbps):
    """A camera-like scene: static bars, sensor noise, a box crossing during the first 40 % of every loop.
    x264 veryfast, fixed GOP of 2 s (IDR every 50 frames, no scene cuts), 2 non-reference B-frames
    (b-pyramid off, b-adapt off) so that the nonref mode has frames to skip, CBR-like rate."""
    box_w, box_h = width // 8, height // 8
    graph = ("smptehdbars=s={w}x{h}:r=25:d={d}[bg];color=white:s={bw}x{bh}:r=25:d={d}[box];"
             "[bg][box]overlay=x='mod(t,{d})*{speed}':y={y}:enable='lt(mod(t,{d}),{on})',noise=alls=4:allf=t"
             ).format(w=width, h=height, d=seconds, bw=box_w, bh=box_h, y=(height - box_h) // 2,
                      speed=width / (0.4 * seconds), on=0.4 * seconds)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", graph, "-c:v", "libx264", "-preset", "veryfast",
                    "-bf", "2", "-x264-params", "b-pyramid=0:b-adapt=0:scenecut=0:keyint=50:min-keyint=50",
                    "-b:v", "%dk" % kbps, "-maxrate", "%dk" % kbps, "-bufsize", "%dk" % (2 * kbps),
                    "-pix_fmt", "yuv420p", path], check=True)
    return path


def clip_pattern(path):
    """Per decode mode: (which frames of the loop it keeps, in display order; the largest step between kept
    frames), from the frame types (B-frames are the non-reference ones: b-pyramid is off)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pict_type",
                          "-of", "csv=p=0", path], capture_output=True, text=True, check=True).stdout
    types = [line.strip().strip(",") for line in out.splitlines() if line.strip()]
    keep = {"all": lambda t: True, "nonref": lambda t: t != "B", "keyframes": lambda t: t == "I"}
    pattern = {}
    for mode, kept in keep.items():
        idx = [i for i, t in enumerate(types) if kept(t)]
        steps = [b - a for a, b in zip(idx, idx[1:])] + [len(types) - idx[-1] + idx[0]]
        pattern[mode] = ([kept(t) for t in types], max(steps))
    return pattern, len(types)


def describe_clip(path, kbps):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height,avg_frame_rate,nb_frames", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=True).stdout.strip().split(",")
    num, den = out[2].split("/")
    return ("%sx%s %g fps H.264 (x264 veryfast, %d kbit/s, IDR every 2 s, 2 non-reference B-frames), %d-frame "
            "loop" % (out[0], out[1], float(num) / float(den), kbps, int(out[3])))


class RelayServer:
    """relay_server.py in its own process group: one mount of clip, or the mounts given ("/main", "/sub=other.mp4":
    relay_server.py's --mount); .urls in their order, .url the first."""

    def __init__(self, clip, log_path, mounts=()):
        self.err = open(log_path, "w")
        cmd = [PY, RELAY, "--file", clip, "--port", "0"] + [arg for m in mounts for arg in ("--mount", m)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, text=True, start_new_session=True)
        self.urls = []
        # The READY lines and UNITS come in one write (UNITS flushes them): once there is something to read,
        # whole lines follow, so reading on to UNITS never blocks on a line that is not coming.
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        for line in iter(self.proc.stdout.readline, "") if ready else ():
            if line.startswith("READY "):
                self.urls.append(line.split()[1])
            if line.startswith("UNITS "):
                break
        self.url = self.urls[0] if self.urls else None
        if not self.url:
            self.stop()
            raise RuntimeError("relay_server.py did not start: see %s" % log_path)

    def stop(self):
        stop(self.proc)
        self.proc.stdout.close()
        self.err.close()


# ---------------------------------------------------------------- vigil with N cameras

def write_rule(tmp):
    with open(os.path.join(SRC, "scripts", "motion.lua")) as f:
        text = f.read()
    path = os.path.join(tmp, "motion-counted.lua")
    with open(path, "w") as f:
        f.write(text + COUNTER)
    return path


def write_config(tmp, name, url, n, mode, rule, extra=None):
    """A `vigil run` config: n cameras on url, the rule, decode mode (the key only when not "all", so that a
    vigil without it still runs the default), extra keys for every camera."""
    out = os.path.join(tmp, name + ".jsonl")
    cameras = [dict({"media": "cam%02d" % i, "url": url, "script": rule}, **(extra or {})) for i in range(n)]
    if mode != "all":
        for c in cameras:
            c["decode"] = mode
    doc = {"node": {"machine_id": 1}, "output": {"file": out}, "cameras": cameras}
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return path, out


def read_counts(out):
    counts = {}
    if not os.path.exists(out):
        return counts
    with open(out) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("episode_type") == "bench":
                counts[rec["media"]] = rec["payload"]
    return counts


def first_config_error(err_path):
    with open(err_path) as f:
        for line in f:
            if line.startswith("vigil: ") and ".json: " in line:
                return line.strip().split(".json: ", 1)[1]
    return None


def run_vigil(vigil, cfg, seconds, warm, err_path, others=()):
    """Runs `vigil run cfg --duration seconds`; the steady-state window [warm, seconds - 0.5]. Returns
    (rc, stop wall time (unix s), window, vigil CPU s, others' CPU s, VmRSS, VmHWM)."""
    with open(err_path, "w") as err:
        proc = subprocess.Popen([vigil, "run", cfg, "--duration", str(seconds)], stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True, preexec_fn=die_with_parent)
    start_wall, start = time.time(), time.monotonic()
    if not sleep_until(start + warm, proc):  # refused its config, or crashed
        return {"rc": proc.returncode, "stop_wall": time.time(), "wall": 0.0, "cpu": None, "others": [],
                "busy": 0.0, "rss": 0.0, "hwm": 0.0}
    window = Window([proc.pid] + list(others))
    sleep_until(start + seconds - 0.5)
    rss, hwm = proc_mem(proc.pid)
    wall, cpu, busy = window.close()
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        stop(proc)
        rc = "timeout"
    return {"rc": rc, "stop_wall": start_wall + seconds, "wall": wall, "cpu": cpu[0], "others": cpu[1:],
            "busy": busy, "rss": rss, "hwm": hwm}


def judge(counts, n, pattern, mode, stop_wall, frame_ms=40.0):
    """The worst camera's delivered fraction, how far it is behind (ms, beyond one step of the mode: in
    keyframes mode the last key frame may be 2 s old), and its largest gap in steps of the mode. The first
    frame a camera decodes is a key frame and every GOP of the loop has the same structure, so the frames the
    mode keeps in the span first..last are counted exactly from the loop's pattern."""
    kept, max_step = pattern[mode]
    worst = {"delivered": 1.0 if counts else 0.0, "behind_ms": 0.0, "gap": 0.0, "same_ts": 0,
             "missing": n - len(counts)}
    for c in counts.values():
        span_frames = int(round((c["last"] - c["first"]) / frame_ms))
        expected = sum(kept[i % len(kept)] for i in range(span_frames + 1))
        worst["delivered"] = min(worst["delivered"], (c["n"] + c.get("same_ts", 0)) / float(max(1, expected)))
        lag = stop_wall * 1000 - c["last"] - max_step * frame_ms
        worst["behind_ms"] = max(worst["behind_ms"], lag)
        worst["gap"] = max(worst["gap"], c["gap"] / (frame_ms * max_step))
        worst["same_ts"] += c.get("same_ts", 0)
    return worst


def live_step(vigil, tmp, url, relay_pid, n, mode, rule, pattern, seconds, warm):
    name = "live-%s-%d" % (mode, n)
    cfg, out = write_config(tmp, name, url, n, mode, rule)
    err_path = os.path.join(tmp, name + ".err")
    m = run_vigil(vigil, cfg, seconds, warm, err_path, others=[relay_pid])
    if m["rc"] != 0:
        refused = first_config_error(err_path)
        if refused:
            return {"n": n, "refused": refused}
        return {"n": n, "failed": "vigil exited %s (see %s)" % (m["rc"], err_path)}
    m.update(judge(read_counts(out), n, pattern, mode, m["stop_wall"]))
    m["n"] = n
    return m


def verdict(step, ncpu):
    """None when the step kept up: every camera reported, >= 98 % delivered, < 1 s behind, no gap over 1.5
    steps of the mode, CPU not saturated. Else why not."""
    used = step["cpu"] + sum(x or 0 for x in step["others"])
    if step["missing"]:
        return "%d cameras saw no frame" % step["missing"]
    if step["delivered"] < 0.98:
        return "frames dropped (%.1f %% delivered)" % (100 * step["delivered"])
    if step["behind_ms"] >= 1000:
        return "fell behind (%.1f s)" % (step["behind_ms"] / 1000.0)
    if step["gap"] > 1.5:
        return "gap of %.1f steps" % step["gap"]
    if step["busy"] >= 0.97 or used >= 0.95 * ncpu * step["wall"]:
        return "CPU saturated (machine %.0f %% busy)" % (100 * step["busy"])
    return None


def live_scan(vigil, tmp, url, relay_pid, mode, rule, pattern, steps, seconds, warm, log=print):
    """N = steps[0], steps[1], ... until the first N that does not keep up (it is reported too)."""
    results = []
    for n in steps:
        step = live_step(vigil, tmp, url, relay_pid, n, mode, rule, pattern, seconds, warm)
        results.append(step)
        if "refused" in step or "failed" in step:
            log("live %s N=%d: %s" % (mode, n, step.get("refused") or step.get("failed")))
            break
        step["why"] = verdict(step, os.cpu_count())
        step["ok"] = step["why"] is None
        log("live %s N=%d: delivered %.1f%%, %.0f ms behind, vigil %.2f CPU-s per camera-minute, RSS %.0f MiB%s"
            % (mode, n, 100 * step["delivered"], step["behind_ms"], 60 * step["cpu"] / step["wall"] / n, step["rss"],
               "" if step["ok"] else "; stops here: " + step["why"]))
        if not step["ok"]:
            break
    return results


# ---------------------------------------------------------------- peer: one stream, several programs

MOTION_CONF = """# written by tests/bench/live.py: motion detection on every frame, every output off
daemon off
setup_mode off
log_file {dir}/motion.log
log_level 6
target_dir {dir}
pid_file {dir}/motion.pid
netcam_url {url}
netcam_params rtsp_transport=tcp
width {w}
height {h}
framerate 25
emulate_motion off
threshold 1500
picture_output off
movie_output off
snapshot_interval 0
timelapse_interval 0
webcontrol_port 0
stream_port 0
"""


# With a high-resolution stream Motion detects on netcam_url and saves its pictures from netcam_high_url: the
# event's best picture, as a rule's preview is.
MOTION_HIGH = """netcam_high_url {high}
netcam_high_params rtsp_transport=tcp
picture_output best
"""


def motion_command(tmp, url, width, height, high_url=None, name="motion"):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "motion.conf")
    text = MOTION_CONF.format(dir=d, url=url, w=width, h=height)
    if high_url:
        text = text.replace("picture_output off\n", "") + MOTION_HIGH.format(high=high_url)
    with open(conf, "w") as f:
        f.write(text)
    return ["motion", "-n", "-c", conf], os.path.join(d, "motion.log")


def run_for(cmd, seconds, warm, err_path, others=()):
    """Starts cmd, measures [warm, seconds], stops it. (window dict, rc)."""
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=die_with_parent)
    start = time.monotonic()
    sleep_until(start + warm)
    window = Window([proc.pid] + list(others))
    sleep_until(start + seconds)
    rss, hwm = proc_mem(proc.pid)
    wall, cpu, busy = window.close()
    alive = proc.poll() is None
    stop(proc)
    return {"wall": wall, "cpu": cpu[0], "others": cpu[1:], "busy": busy, "rss": rss, "hwm": hwm,
            "alive": alive, "rc": proc.returncode}
