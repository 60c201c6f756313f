#!/bin/sh
# demo.sh — the main job with no camera and no Central: generate a clip in which a white square crosses
# the frame between 2 s and 5 s, replay it through scripts/motion.lua, and show the episode it produced (also
# as a page, demo-out/report/index.html).
set -eu
BUILD=${1:-build}
OUT=demo-out
mkdir -p "$OUT"
CLIP="$OUT/crossing.mp4"
if [ ! -s "$CLIP" ]; then
    ffmpeg -v error -y -filter_complex \
        "color=c=0x808080:s=1280x720:r=25:d=8[bg];color=c=white:s=160x160:r=25[box];[bg][box]overlay=x='80+(t-2)*300':y=240:enable='gte(t,2)*lt(t,5)':shortest=1" \
        -c:v libx264 -preset veryfast -pix_fmt yuv420p -metadata creation_time=2026-01-01T12:00:00Z "$CLIP"
fi
echo "demo: replaying $CLIP (1280x720, 8 s; a square crosses the frame from 2.0 s to 5.0 s) through scripts/motion.lua"
"$BUILD/vigil" replay "$CLIP" --script scripts/motion.lua --media demo --out "$OUT/episodes.jsonl" \
    --overlay "$OUT/overlay.mp4" --report "$OUT/report"
python3 - "$OUT/episodes.jsonl" <<'PY'
import json, sys
versions = [json.loads(line) for line in open(sys.argv[1])]
episodes = {}
for v in versions:
    episodes.setdefault(v["episode_id"], []).append(v)
print("demo: %d versions of %d episode(s) in %s (one JSON body per line, as PUT to Central)"
      % (len(versions), len(episodes), sys.argv[1]))
for eid, vs in episodes.items():
    first, last = vs[0], vs[-1]
    t0 = first["opened_at"]
    print("  episode %d  %s  opened +%.2f s  closed +%.2f s  (%d versions, preview %s)"
          % (eid, first.get("episode_type"), (t0 % 60000) / 1000.0 - 0, (last.get("closed_at", t0) % 60000) / 1000.0,
             len(vs), "yes" if "preview" in last else "no"))
PY
echo "demo: what the rule saw, frame by frame (motion in red, the open episode's border): $OUT/overlay.mp4"
echo "demo: the episodes on a page (timeline, previews, payloads; opens from disk): $OUT/report/index.html"
