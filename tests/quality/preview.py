"""preview.py — where an episode's preview was cut from. vigil sends the preview as a JPEG of a crop of the
full-resolution frame at preview_timestamp, shrunk (aspect kept) only when its longest side exceeds max_size (320);
it does not say which crop. This module decodes that frame again and finds the crop in it by template matching:
normalized cross-correlation (FFT) over candidate scales, coarse then fine. The result is the crop's box in frame
fractions and the match score (1 = identical up to brightness and contrast)."""
import base64
import subprocess

import numpy as np

MAX_SIZE = 320          # vigil's default preview max_size (longest side)
MIN_SCORE = 0.6         # below this the preview is "not found" rather than placed somewhere


def decode_jpeg(b64):
    """A base64 JPEG as a grey (luma) array, or None if djpeg cannot decode it."""
    p = subprocess.run(["djpeg", "-grayscale", "-pnm"], input=base64.b64decode(b64), capture_output=True)
    if p.returncode != 0 or not p.stdout.startswith(b"P5"):
        return None
    head, pos = [], 2
    while len(head) < 3:                    # width, height, maxval, separated by whitespace
        while p.stdout[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not p.stdout[end:end + 1].isspace():
            end += 1
        head.append(int(p.stdout[pos:end]))
        pos = end
    w, h, _ = head
    data = p.stdout[pos + 1:pos + 1 + w * h]
    return np.frombuffer(data, np.uint8).reshape(h, w).astype(np.float64)


def probe_size(clip):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                          "-of", "csv=p=0", clip], capture_output=True, text=True, check=True).stdout
    w, h = out.strip().split(",")[:2]
    return int(w), int(h)


def frames_at(clip, times_ms, frame_ms):
    """{t: grey frame} for the frames whose time (ms from the clip's start, as vigil replay --start 0 stamps them)
    is within half a frame of each t; one decoding pass."""
    want = sorted(set(times_ms))
    if not want:
        return {}
    w, h = probe_size(clip)
    half = 0.45 * frame_ms / 1000.0
    expr = "+".join("lt(abs(t-%.4f),%.4f)" % (t / 1000.0, half) for t in want)
    p = subprocess.run(["ffmpeg", "-v", "info", "-nostats", "-i", clip, "-an", "-vf", "select='%s',showinfo" % expr,
                        "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True)
    n = len(p.stdout) // (w * h)
    frames = np.frombuffer(p.stdout[:n * w * h], np.uint8).reshape(n, h, w)
    pts = [float(l.split("pts_time:")[1].split()[0]) * 1000 for l in p.stderr.decode(errors="replace").splitlines()
           if "pts_time:" in l][:n]
    out = {}
    for t in want:
        if pts:
            i = int(np.argmin([abs(x - t) for x in pts]))
            if abs(pts[i] - t) <= 0.5 * frame_ms:
                out[t] = frames[i].astype(np.float64)
    return out


def integral(img):
    ii = np.zeros((img.shape[0] + 1, img.shape[1] + 1))
    ii[1:, 1:] = img.cumsum(0).cumsum(1)
    return ii


def resize(img, nh, nw, ii=None, y0=0, y1=None, x0=0, x1=None):
    """Area-average resize (exact box sums from an integral image) of img[y0:y1, x0:x1] to nh x nw; fine for
    shrinking, crude for enlarging. ii: img's integral image, when already made."""
    ii = integral(img) if ii is None else ii
    y1 = img.shape[0] if y1 is None else y1
    x1 = img.shape[1] if x1 is None else x1
    nh, nw = max(1, int(round(nh))), max(1, int(round(nw)))
    ys = np.linspace(y0, y1, nh + 1)
    xs = np.linspace(x0, x1, nw + 1)
    a = np.floor(ys[:-1]).astype(int)
    b = np.minimum(np.maximum(np.ceil(ys[1:]).astype(int), a + 1), y1)
    c = np.floor(xs[:-1]).astype(int)
    d = np.minimum(np.maximum(np.ceil(xs[1:]).astype(int), c + 1), x1)
    s = ii[b][:, d] - ii[a][:, d] - ii[b][:, c] + ii[a][:, c]
    return s / ((b - a)[:, None] * (d - c)[None, :])


def ncc(frame, tmpl):
    """Normalized cross-correlation of tmpl at every position where it fits inside frame: array (H-h+1, W-w+1)."""
    H, W = frame.shape
    h, w = tmpl.shape
    if h > H or w > W:
        return None
    t0 = tmpl - tmpl.mean()
    tn = np.sqrt((t0 ** 2).sum())
    if tn < 1e-6:
        return None
    corr = np.fft.irfft2(np.fft.rfft2(frame) * np.conj(np.fft.rfft2(t0, s=(H, W))), s=(H, W))[:H - h + 1, :W - w + 1]
    ii = np.zeros((H + 1, W + 1))
    ii[1:, 1:] = frame.cumsum(0).cumsum(1)
    i2 = np.zeros((H + 1, W + 1))
    i2[1:, 1:] = (frame ** 2).cumsum(0).cumsum(1)
    s1 = ii[h:, w:] - ii[:-h, w:] - ii[h:, :-w] + ii[:-h, :-w]
    s2 = i2[h:, w:] - i2[:-h, w:] - i2[h:, :-w] + i2[:-h, :-w]
    var = np.maximum(s2 - s1 ** 2 / (h * w), 1e-9)
    return corr / (np.sqrt(var) * tn)


def _best(frame, ii, tmpl, scale):
    """Best NCC of tmpl in frame shrunk by scale: (score, x, y) in shrunk pixels."""
    f = resize(frame, frame.shape[0] * scale, frame.shape[1] * scale, ii) if scale != 1 else frame
    m = ncc(f, tmpl)
    if m is None:
        return -2.0, 0, 0
    i = int(np.argmax(m))
    y, x = divmod(i, m.shape[1])
    return float(m[y, x]), x, y


def locate(preview, frame, max_size=MAX_SIZE):
    """(box (x, y, w, h) in frame fractions, score) of the crop preview was made from; box None if not found."""
    ph, pw = preview.shape
    H, W = frame.shape
    long_side = max(ph, pw)
    if long_side < max_size - 2:
        widths = [float(pw)]                # not shrunk: the crop is the preview's size
    else:
        top = min(W, H * pw / ph) + 2       # the crop may be as large as the frame
        widths, cw = [], float(pw)
        while cw <= top:
            widths.append(cw)
            cw *= 1.02
        widths.append(min(top, W))
    # coarse: the preview shrunk to about 40 px; the frame shrunk so the crop would be that size
    c = min(1.0, 40.0 / long_side)
    small = resize(preview, ph * c, pw * c)
    ii = integral(frame)
    coarse = sorted((_best(frame, ii, small, c * pw / cw) + (cw,) for cw in widths), reverse=True)[:2]
    # fine: the preview at up to 160 px, around the 2 best coarse candidates, within 3 % of their scale
    f = min(1.0, 160.0 / long_side)
    fine_t = resize(preview, ph * f, pw * f)
    best = (-2.0, None)
    for score, x, y, cw in coarse:
        cands = [cw] if len(widths) == 1 else [cw * (1 + k / 100.0) for k in range(-3, 4)]
        for cw2 in cands:
            s = f * pw / cw2                 # frame -> fine pixels
            fx, fy = x / (c * pw / cw) * s, y / (c * pw / cw) * s
            pad = 3 + 2.0 / (c * pw / cw) * s
            x0, y0 = max(0, int(fx - pad)), max(0, int(fy - pad))
            # the frame region that can hold the template near there, shrunk to fine pixels
            rx0, ry0 = x0 / s, y0 / s
            rx1 = min(W, (fx + pad + fine_t.shape[1] + 1) / s)
            ry1 = min(H, (fy + pad + fine_t.shape[0] + 1) / s)
            ya, yb, xa, xb = int(ry0), int(np.ceil(ry1)), int(rx0), int(np.ceil(rx1))
            if yb <= ya or xb <= xa:
                continue
            reg = resize(frame, (yb - ya) * s, (xb - xa) * s, ii, ya, yb, xa, xb)
            m = ncc(reg, fine_t)
            if m is None:
                continue
            i = int(np.argmax(m))
            yy, xx = divmod(i, m.shape[1])
            if m[yy, xx] > best[0]:
                bx, by = int(rx0) + xx / s, int(ry0) + yy / s
                best = (float(m[yy, xx]), (bx / W, by / H, cw2 / W, cw2 * ph / pw / H))
    score, box = best
    return (box if score >= MIN_SCORE else None), score


def overlap_ok(crop, obj, contains=0.5, fills=0.1):
    """Whether the crop (x, y, w, h) shows the object: holds >= contains of its area, and the object covers >= fills
    of the crop. Returns (ok, held fraction, filled fraction)."""
    ix = max(0.0, min(crop[0] + crop[2], obj[0] + obj[2]) - max(crop[0], obj[0]))
    iy = max(0.0, min(crop[1] + crop[3], obj[1] + obj[3]) - max(crop[1], obj[1]))
    inter = ix * iy
    held = inter / max(1e-12, obj[2] * obj[3])
    filled = inter / max(1e-12, crop[2] * crop[3])
    return held >= contains and filled >= fills, held, filled
