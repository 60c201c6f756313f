"""scenes.py — the generated scenes and their exact truth. Each scene is a textured still background with sensor
noise, textured objects moving along known straight paths, and the camera's own effects (gain steps and ramps,
rain speckle, cover, defocus, a turned view). Frames are made with numpy and piped into ffmpeg (H.264); what is
where at every frame is known, so the truth (visits, line crossings, zone occupancy, dwells, tamper spans) is
computed from the same numbers that drew the picture. Clips are cached under a work directory by a hash of this
file and the scene, never committed."""
import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass, field

import numpy as np

from truth import Event, Track, Truth, complement

W, H, FPS = 640, 360, 20
FRAME_MS = 1000 // FPS
NOISE_SIGMA = 3.0
BG_RANGE = (50, 150)            # background luma; objects stay >= 30 away from it (at any gain >= 0.6)
ZONE = [[0.3, 0.4], [0.7, 0.4], [0.7, 0.95], [0.3, 0.95]]  # the zone of the zone and loitering rules
LINE_Y = 0.5                    # the line_crossing rule's line, {{0, 0.5}, {1, 0.5}}
DWELL_SECONDS = 5               # loitering's `seconds` on the generated scenes
GRAIN = 0.08                    # surface texture: edge content (sharpness) about that of the real clips


@dataclass
class Obj:
    """A textured box of w x h (frame fractions) whose centre moves through keys [(t, cx, cy), ...] (seconds, frame
    fractions), linearly in between; present from the first key's time to the last one's."""
    name: str
    w: float
    h: float
    keys: list
    tone: str = "bright"        # "bright": luma 200..240, >= 30 above the background even at gain 0.6; "dark": 5..19
    cls: str = "object"

    def box_px(self, n):
        """(x0, y0, x1, y1) in whole pixels, unclipped, at frame n; None when absent."""
        t = n / FPS
        k = self.keys
        if t < k[0][0] - 1e-9 or t > k[-1][0] + 1e-9:
            return None
        for (t0, x0, y0), (t1, x1, y1) in zip(k, k[1:]):
            if t0 <= t <= t1:
                a = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
                cx, cy = x0 + a * (x1 - x0), y0 + a * (y1 - y0)
                break
        else:
            cx, cy = k[-1][1], k[-1][2]
        pw, ph = int(round(self.w * W)), int(round(self.h * H))
        x0, y0 = int(round(cx * W - pw / 2)), int(round(cy * H - ph / 2))
        return x0, y0, x0 + pw, y0 + ph

    def visible(self, n):
        """The part inside the picture at frame n, (x0, y0, x1, y1) pixels, or None."""
        b = self.box_px(n)
        if b is None:
            return None
        x0, y0, x1, y1 = max(0, b[0]), max(0, b[1]), min(W, b[2]), min(H, b[3])
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


@dataclass
class Scene:
    name: str
    seconds: float
    what: str                                   # one line for the scorecard
    tags: tuple = ()                            # "objects", "nuisance", "tamper" ("zone", "line" are added)
    objects: list = field(default_factory=list)
    gain: list = field(default_factory=list)    # [(t, gain)]: piecewise linear; a step is two keys at one time
    rain: bool = False
    cover: list = field(default_factory=list)   # [(t0, t1)]: near-black flat picture
    blur: list = field(default_factory=list)    # [(t0, t1)]: strong defocus
    turn: tuple = None                          # (t0, t1, dx): the view pans dx (fraction of W) from t0 to t1, stays
    zone: list = None
    seed: int = 1

    @property
    def frames(self):
        return int(round(self.seconds * FPS))

    def key(self):
        spec = json.dumps({k: v for k, v in self.__dict__.items() if k != "objects"}, sort_keys=True, default=str)
        spec += json.dumps([o.__dict__ for o in self.objects], sort_keys=True)
        with open(__file__, "rb") as f:
            code = f.read()
        return hashlib.sha1(code + spec.encode()).hexdigest()[:12]


def crossing_path(t0, t1, y0=-0.15, y1=1.15, x0=0.2, x1=0.8):
    return [(t0, x0, y0), (t1, x1, y1)]


def _scenes():
    walker = dict(w=0.08, h=0.30, tone="dark", cls="person")
    car = dict(w=0.10, h=0.20, tone="bright", cls="vehicle")
    step = [(0, 1.0), (8, 1.0), (8, 0.6), (16, 0.6), (16, 1.0)]
    step_obj = [(0, 1.0), (10, 1.0), (10, 0.6), (18, 0.6), (18, 1.0)]
    ramp = [(0, 1.0), (5, 1.0), (15, 0.6), (25, 1.0)]
    return [
        Scene("empty", 20, "textured background and sensor noise, nothing else", ("nuisance",), zone=ZONE, seed=11),
        Scene("cross_one", 20, "one object crosses the view from the top edge to the bottom edge, drifting right, "
              "in 6 s",
              ("objects",), [Obj("A", **dict(car, keys=crossing_path(5, 11)))], zone=ZONE, seed=12),
        Scene("person_dwell", 36, "a person-sized object walks in from the left, stands still 20 s in the zone, "
              "walks out to the right", ("objects",),
              [Obj("P", **dict(walker, keys=[(3, -0.06, 0.62), (8, 0.5, 0.62), (28, 0.5, 0.62), (33, 1.06, 0.62)]))],
              zone=ZONE, seed=13),
        Scene("two_cross", 24, "two objects meet head-on in the centre at 10 s, one going down, one up, on one path; "
              "the dark one passes over the bright one",
              ("objects",), [Obj("A", **dict(car, keys=crossing_path(6, 14))),
                             Obj("B", **dict(car, tone="dark", keys=crossing_path(6, 14, 1.15, -0.15)))],
              zone=ZONE, seed=14),
        Scene("bright_step", 24, "empty; the gain steps to x0.6 at 8 s and back at 16 s (auto exposure)", ("nuisance",),
              gain=step, zone=ZONE, seed=15),
        Scene("bright_step_object", 24, "an object crosses 6-14 s; the gain steps to x0.6 at 10 s, mid-crossing, and "
              "back at 18 s", ("objects", "nuisance"), [Obj("A", **dict(car, keys=crossing_path(6, 14)))],
              gain=step_obj, zone=ZONE, seed=16),
        Scene("ramp", 30, "empty; the light dims to x0.6 over 5-15 s and comes back over 15-25 s", ("nuisance",),
              gain=ramp, zone=ZONE, seed=17),
        Scene("ramp_object", 30, "the same ramp; an object crosses 10-16 s", ("objects", "nuisance"),
              [Obj("A", **dict(car, keys=crossing_path(10, 16)))], gain=ramp, zone=ZONE, seed=18),
        Scene("rain", 20, "empty; rain-like speckle, many tiny bright dots every frame", ("nuisance",), rain=True,
              zone=ZONE, seed=19),
        Scene("rain_object", 20, "speckle; an object crosses 6-12 s", ("objects", "nuisance"),
              [Obj("A", **dict(car, keys=crossing_path(6, 12)))], rain=True, zone=ZONE, seed=20),
        Scene("zone_pass", 30, "a person walks straight through the zone (4-10 s); another walks along the top, "
              "outside it (16-22 s)", ("objects",),
              [Obj("P", **dict(walker, keys=[(4, -0.06, 0.7), (10, 1.06, 0.7)])),
               Obj("Q", **dict(walker, tone="bright", keys=[(16, 1.06, 0.17), (22, -0.06, 0.17)]))],
              zone=ZONE, seed=21),
        Scene("cover", 24, "the camera is covered (near-black, flat) 10-16 s", ("tamper",), cover=[(10, 16)], seed=22),
        Scene("defocus", 24, "the view is strongly blurred 10-18 s", ("tamper",), blur=[(10, 18)], seed=23),
        Scene("turned", 24, "the camera is turned at 10 s: the view pans 35 % of its width in 0.5 s and stays",
              ("tamper",), turn=(10, 10.5, 0.35), seed=24),
    ]


SCENES = _scenes()


# ---------- rendering ----------

def _smooth_noise(rng, h, w, cells_y, cells_x):
    """Noise in -1..1 varying smoothly over about cells_y x cells_x blobs."""
    g = rng.uniform(-1, 1, (cells_y + 2, cells_x + 2))
    ys = np.linspace(0, cells_y, h)
    xs = np.linspace(0, cells_x, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a, b = g[y0][:, x0], g[y0][:, x0 + 1]
    c, d = g[y0 + 1][:, x0], g[y0 + 1][:, x0 + 1]
    top, bottom = a + (b - a) * fx, c + (d - c) * fx
    return top + (bottom - top) * fy


def background(rng, w):
    """A still picture (w wide) with the structure of a real view: light falling off across it, large areas of
    different brightness (walls, floor, furniture), small sharp-edged things and thin markings, fine grain; kept
    within BG_RANGE. Its cell-to-cell contrast and edge content are about those of the real clips."""
    x = np.linspace(0, 1, w)[None, :]
    y = np.linspace(0, 1, H)[:, None]
    img = 0.5 + 0.1 * (x - 0.5) + 0.1 * (y - 0.5) + 0.5 * _smooth_noise(rng, H, w, 3, max(2, w // 160))
    for n, (lo, hi), amp in ((w // 40, (40, 200), 0.5), (w // 3, (4, 40), 0.4)):
        for _ in range(n):
            rw, rh = rng.integers(lo, hi), rng.integers(lo, int(hi * 0.75))
            rx, ry = rng.integers(-rw // 2, w), rng.integers(-rh // 2, H)
            img[max(0, ry):ry + rh, max(0, rx):rx + rw] += rng.uniform(-amp, amp)
    for _ in range(w // 5):                 # markings: thin straight lines
        length, thick = rng.integers(20, 120), rng.integers(1, 3)
        rx, ry = rng.integers(0, w), rng.integers(0, H)
        if rng.random() < 0.5:
            img[ry:ry + thick, rx:rx + length] += rng.uniform(-0.4, 0.4)
        else:
            img[ry:ry + length, rx:rx + thick] += rng.uniform(-0.4, 0.4)
    img = img + 0.06 * rng.uniform(-1, 1, (H, w))
    coarse = rng.uniform(-1, 1, ((H + 1) // 2, (w + 1) // 2))      # surface texture (asphalt, carpet): 2 px grain
    img = img + GRAIN * np.repeat(np.repeat(coarse, 2, 0), 2, 1)[:H, :w]
    lo, hi = BG_RANGE
    img = np.clip(img, np.percentile(img, 0.5), np.percentile(img, 99.5))
    img = (img - img.min()) / (img.max() - img.min())
    return (lo + img * (hi - lo)).astype(np.float32)


def texture(rng, h, w, tone):
    """An object's look: shaded top to bottom, textured, within its tone's range."""
    shade = np.linspace(-1, 1, h)[:, None] * np.ones((1, w))
    tex = 0.6 * _smooth_noise(rng, h, w, 3, 2) + 0.4 * rng.uniform(-1, 1, (h, w))
    base, spread = (220.0, 20.0) if tone == "bright" else (12.0, 7.0)
    return (base + spread * (0.5 * shade + 0.5 * tex)).astype(np.float32)


def _gain_at(keys, t):
    if not keys:
        return 1.0
    if t <= keys[0][0]:
        return keys[0][1]
    for (t0, g0), (t1, g1) in zip(keys, keys[1:]):
        if t0 <= t < t1:
            return g0 + (g1 - g0) * (t - t0) / (t1 - t0)
    return keys[-1][1]


def _blur(img, r, passes=3):
    """Box blur of radius r, repeated (close to a gaussian), edges clamped."""
    out = img
    for _ in range(passes):
        for axis in (0, 1):
            pad = [(0, 0), (0, 0)]
            pad[axis] = (r + 1, r)
            p = np.pad(out, pad, mode="edge")
            c = np.cumsum(p, axis=axis, dtype=np.float64)
            if axis == 0:
                out = ((c[2 * r + 1:] - c[:-2 * r - 1]) / (2 * r + 1)).astype(np.float32)
            else:
                out = ((c[:, 2 * r + 1:] - c[:, :-2 * r - 1]) / (2 * r + 1)).astype(np.float32)
    return out


def _inside(t, spans):
    return any(a <= t < b for a, b in spans)


def frame(scene, n, bg, looks, noise, rng):
    """Frame n of the scene: grey levels 0..255 (uint8)."""
    t = n / FPS
    dx = 0
    if scene.turn:
        t0, t1, frac = scene.turn
        a = 0.0 if t < t0 else 1.0 if t >= t1 else (t - t0) / (t1 - t0)
        dx = int(round(a * frac * W))
    f = bg[:, dx:dx + W].copy()
    for o in scene.objects:
        b, v = o.box_px(n), o.visible(n)
        if v is None:
            continue
        x0, y0, x1, y1 = v
        f[y0:y1, x0:x1] = looks[o.name][y0 - b[1]:y1 - b[1], x0 - b[0]:x1 - b[0]]
    if _inside(t, scene.blur):
        f = _blur(f, 6)
    if _inside(t, scene.cover):
        f = np.full((H, W), 12.0, np.float32)
    f = f * _gain_at(scene.gain, t)
    if scene.rain:
        k = int(W * H * 0.003)
        ys, xs = rng.integers(0, H - 1, k), rng.integers(0, W - 1, k)
        f[ys, xs] = 235.0
        big = k // 3                     # a third of the drops are 2 x 2: they survive the analysis downscale
        f[ys[:big] + 1, xs[:big]] = f[ys[:big], xs[:big] + 1] = f[ys[:big] + 1, xs[:big] + 1] = 235.0
    f = f + noise[rng.integers(0, len(noise))] * (0.6 if _inside(t, scene.cover) else 1.0)
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def render(scene, path):
    """Writes the scene to path (H.264 in MP4, yuv420p)."""
    rng = np.random.default_rng(scene.seed)
    pano_w = int(W * (1 + (scene.turn[2] if scene.turn else 0))) + 2
    bg = background(rng, pano_w)
    looks = {o.name: texture(rng, int(round(o.h * H)), int(round(o.w * W)), o.tone) for o in scene.objects}
    noise = rng.normal(0, NOISE_SIGMA, (32, H, W)).astype(np.float32)  # a bank, picked at random per frame
    tmp = "%s.%d.part" % (path, os.getpid())
    enc = subprocess.Popen(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gray", "-s", "%dx%d" % (W, H),
                            "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23",
                            "-pix_fmt", "yuv420p", "-g", str(2 * FPS), "-f", "mp4", tmp], stdin=subprocess.PIPE)
    try:
        for n in range(scene.frames):
            enc.stdin.write(frame(scene, n, bg, looks, noise, rng).tobytes())
        enc.stdin.close()
        if enc.wait() != 0:
            raise RuntimeError("ffmpeg failed to encode scene %s" % scene.name)
        os.replace(tmp, path)
    finally:
        if enc.poll() is None:
            enc.kill()
            enc.wait()
        if os.path.exists(tmp):
            os.remove(tmp)


def clip_path(scene, work):
    """The scene's clip, rendered into work unless a clip of this very scene and generator is already there."""
    os.makedirs(work, exist_ok=True)
    name = "%s-%s.mp4" % (scene.name, scene.key())
    for old in os.listdir(work):            # clips of an older version of this scene
        if re.fullmatch(r"%s-[0-9a-f]{12}\.mp4(\.\d+\.part)?" % re.escape(scene.name), old) and old != name:
            os.remove(os.path.join(work, old))
    path = os.path.join(work, name)
    if not os.path.exists(path):
        render(scene, path)
    return path


# ---------- truth ----------

def _inside_polygon(poly, x, y):
    """Even-odd rule, as vigil's zone:contains."""
    res, j = False, len(poly) - 1
    for i in range(len(poly)):
        (xi, yi), (xj, yj) = poly[i], poly[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            res = not res
        j = i
    return res


def _runs(frames):
    """Sorted frame numbers -> [(first, last)] of consecutive runs."""
    out = []
    for n in frames:
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return [tuple(r) for r in out]


def truth(scene, clip):
    """The exact truth of a scene (see truth.Truth)."""
    ms = lambda n: n * FRAME_MS
    tracks, visits, crossings, zone_runs = {}, [], [], []
    for o in scene.objects:
        boxes = {}
        for n in range(scene.frames):
            v = o.visible(n)
            if v:
                boxes[ms(n)] = (v[0] / W, v[1] / H, (v[2] - v[0]) / W, (v[3] - v[1]) / H)
        tracks[o.name] = Track(o.name, o.cls, sorted(boxes.items()), exact_ms=FRAME_MS)
        seen = sorted(t // FRAME_MS for t in boxes)
        for a, b in _runs(seen):
            visits.append(Event(ms(a), ms(b), o.cls, [o.name], note="%s %s in view" % (o.cls, o.name)))
        # the line: the first frame the visible box's centre is past it; the frames the box straddles it around then
        on_runs = _runs([n for n in seen if boxes[ms(n)][1] < LINE_Y < boxes[ms(n)][1] + boxes[ms(n)][3]])
        for p, n in zip(seen, seen[1:]):
            if n != p + 1:
                continue
            before = boxes[ms(p)][1] + boxes[ms(p)][3] / 2 < LINE_Y
            after = boxes[ms(n)][1] + boxes[ms(n)][3] / 2 < LINE_Y
            if before == after:
                continue
            direction = "down" if before else "up"
            a, b = next(((a, b) for a, b in on_runs if a <= n <= b or a <= p <= b), (n, n))
            crossings.append(Event(ms(a), ms(b), o.cls, [o.name], direction=direction, at=ms(n),
                                   note="%s crosses the line going %s at %.2f s" % (o.name, direction, n / FPS)))
        if scene.zone:
            inside = [n for n in seen if _inside_polygon(scene.zone, boxes[ms(n)][0] + boxes[ms(n)][2] / 2,
                                                         boxes[ms(n)][1] + boxes[ms(n)][3])]
            for a, b in _runs(inside):
                zone_runs.append(Event(ms(a), ms(b), o.cls, [o.name],
                                       note="%s %s in the zone %.2f-%.2f s" % (o.cls, o.name, a / FPS, b / FPS)))
    duration = ms(scene.frames - 1)
    tamper = []
    for t0, t1 in scene.cover:
        tamper.append(Event(int(t0 * 1000), int(t1 * 1000) - FRAME_MS, "camera", [], reason="covered",
                            note="covered %g-%g s" % (t0, t1)))
    for t0, t1 in scene.blur:
        tamper.append(Event(int(t0 * 1000), int(t1 * 1000) - FRAME_MS, "camera", [], reason="defocused",
                            note="defocused %g-%g s" % (t0, t1)))
    if scene.turn:
        tamper.append(Event(int(scene.turn[0] * 1000), duration, "camera", [], reason="moved",
                            note="turned at %g s, stays" % scene.turn[0]))
    return Truth(name=scene.name, clip=clip, generated=True, frame_ms=FRAME_MS, tol_ms=FRAME_MS,
                 duration_ms=duration, size=(W, H), tracks=tracks, visits=visits, crossings=crossings,
                 empty=complement([(e.start, e.end) for e in visits], 0, duration), zone=scene.zone,
                 zone_runs=zone_runs, tamper=tamper,
                 tags=set(scene.tags) | ({"zone"} if scene.zone else set()) | ({"line"} if not tamper else set()),
                 what=scene.what)
