"""test_overlay_live.py — a camera's `overlay` in `vigil run`: against the real RTSP server (a box that crosses
the picture), every analysed frame is one JPEG in the camera's overlay directory, named by the frame's time (the
sender's clock, so within the run on this host), and the count is said at stop."""
import json
import os
import re
import time

from vigiltest import Suite, SRC, write
from livetest import Run, Server


def main():
    t = Suite("overlay-live")
    server = Server(t, "box", ["/cam"], stamp=False, extra=["--box", "0.5,3.5"])
    folder = t.path("why")
    doc = {"node": {"machine_id": 3, "log_level": "info"}, "output": {"file": t.path("out.jsonl")},
           "cameras": [{"media": "yard", "url": server.url(), "script": os.path.join(SRC, "scripts", "motion.lua"),
                        "overlay": "why"}]}
    cfg = write(t.path("run.json"), json.dumps(doc))
    started = time.time()
    run = Run(cfg)
    try:
        run.until(lambda: os.path.isdir(folder) and len(os.listdir(folder)) >= 50)
        rc, err = run.stop()
    finally:
        server.stop()
    ended = time.time()
    t.check(rc == 0, "vigil run exits 0 (rc %s): %s" % (rc, err[-1500:]))
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    said = re.search(r"yard info: overlay: (\d+) frames written to (\S+)", err)
    t.check(said is not None and said.group(2) == folder, "the overlay is said at stop: %s" % err[-600:])
    t.check(said is not None and int(said.group(1)) == len(names) and len(names) >= 50,
            "one JPEG per analysed frame (%d files, said %s)" % (len(names), said.group(1) if said else None))
    stamps = [int(n[:-4]) / 1000.0 for n in names if re.fullmatch(r"\d{13}\.jpg", n)]
    t.check(len(stamps) == len(names) and all(started - 1 <= s <= ended for s in stamps),
            "files are named by the frame's unix ms, within the run")
    t.check(all(os.path.getsize(os.path.join(folder, n)) > 1000 for n in names), "every file is a picture")
    t.done()


main()
