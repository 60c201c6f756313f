#!/usr/bin/env bash
# Self-test of the test servers: tests/servers/rtsp_server.py and central_stub.py.
# Owns: tests/servers/selftest.sh -- nothing else.
#
# Usage: tests/servers/selftest.sh            (about 75 s; loopback only)
# Needs: /usr/bin/python3 with gi + GstRtspServer, ffmpeg, curl, faketime;
#        gcc + libavformat headers for the PRFT checks (skipped otherwise).
# Prints PASS/FAIL lines, measurements as INFO lines, and "N passed, M failed";
# exits non-zero on any failure. All servers run in their own process group and
# are killed by the EXIT trap.
#
# Timing (tests/README.md): a limit is what the server promises (README.md) plus
# SLACK seconds for a loaded machine, or none: the script waits for the event,
# and HANG (in tenths of a second) only ends a wait for something that never comes.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3               # system python: has gi (pyenv's has not)
TMP=$(mktemp -d /tmp/servers-selftest.XXXXXX)
PGIDS=()
PASSED=0
FAILED=0
SLACK=5                           # s: what a loaded 2-core machine may add (as tests/integration/vigiltest.py)
HANG=600                          # tenths of a second: bounds a hang only

cleanup() {
    local g
    for g in "${PGIDS[@]}"; do kill -TERM -- "-$g" 2>/dev/null; done
    sleep 0.3
    for g in "${PGIDS[@]}"; do kill -KILL -- "-$g" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
info() { echo "INFO: $*"; }
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }

# start NAME CMD... : runs CMD in its own session (so faketime's child dies too),
# stdout to $TMP/NAME.out; waits for a READY line (HANG bounds it). Sets LAST_PGID.
start() {
    local name=$1; shift
    setsid "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    LAST_PGID=$!
    PGIDS+=("$LAST_PGID")
    for _ in $(seq $HANG); do
        grep -q '^READY ' "$TMP/$name.out" 2>/dev/null && return 0
        kill -0 "$LAST_PGID" 2>/dev/null || break
        sleep 0.1
    done
    echo "---- $name stderr:"; cat "$TMP/$name.err"
    return 1
}
ready_url() { grep -m1 '^READY ' "$TMP/$1.out" | cut -d' ' -f2; }
# stop PGID: SIGTERM the server (the leader's children if the leader is a wrapper
# such as faketime, which forks and passes the child's exit status on), wait for
# it (HANG bounds it), and return the leader's exit status (1 if it had to be SIGKILLed).
stop() {
    local g=$1 kids
    kids=$(pgrep -g "$g" | grep -vx "$g")
    if [ -n "$kids" ]; then kill -TERM $kids 2>/dev/null; else kill -TERM "$g" 2>/dev/null; fi
    for _ in $(seq $HANG); do kill -0 "$g" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$g" 2>/dev/null; then kill -KILL -- "-$g"; wait "$g"; return 1; fi
    wait "$g"
}

# ---------------------------------------------------------------- helpers (files)
# srprobe.py URL SECONDS: minimal RTSP client (TCP interleaved) that reports each
# RTCP sender report's NTP time against the local clock, as one JSON object.
cat >"$TMP/srprobe.py" <<'EOF'
import json, re, socket, struct, sys, time
url, dur = sys.argv[1], float(sys.argv[2])
m = re.match(r"rtsp://([^:/]+):(\d+)(/.*)", url)
sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=10)
buf = b""
def more():
    global buf
    d = sock.recv(65536)
    if not d:
        raise SystemExit("connection closed")
    buf += d
def frame():                      # one '$'-framed interleaved packet
    global buf
    while len(buf) < 4: more()
    n = struct.unpack(">H", buf[2:4])[0]
    while len(buf) < 4 + n: more()
    ch, pkt, buf = buf[1], buf[4:4 + n], buf[4 + n:]
    return ch, pkt
def response():
    global buf
    while True:
        if buf.startswith(b"$"):
            frame(); continue
        i = buf.find(b"\r\n\r\n")
        if i >= 0: break
        more()
    head, buf = buf[:i].decode(), buf[i + 4:]
    hdr = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in head.split("\r\n")[1:])}
    n = int(hdr.get("content-length", 0))
    while len(buf) < n: more()
    body, buf = buf[:n].decode(), buf[n:]
    if head.split(" ")[1] != "200":
        raise SystemExit("RTSP error: " + head)
    return hdr, body
cseq = 0
def req(method, u, extra=""):
    global cseq
    cseq += 1
    sock.sendall(("%s %s RTSP/1.0\r\nCSeq: %d\r\nUser-Agent: srprobe\r\n%s\r\n"
                  % (method, u, cseq, extra)).encode())
    return response()
hdr, sdp = req("DESCRIBE", url, "Accept: application/sdp\r\n")
base = hdr.get("content-base", url + "/")
ctrl = [l[10:] for l in sdp.splitlines() if l.startswith("a=control:") and l[10:] != "*"][0]
track = ctrl if ctrl.startswith("rtsp://") else base.rstrip("/") + "/" + ctrl
hdr, _ = req("SETUP", track, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
session = hdr["session"].split(";")[0]
req("PLAY", url, "Session: %s\r\nRange: npt=0-\r\n" % session)
t_play = time.time(); srs = []; rtp = 0; ssrc = None; prev = None; jumps = 0
while time.time() - t_play < dur:
    if not buf.startswith(b"$") and len(buf) >= 4:   # stray RTSP message: skip it
        i = buf.find(b"$"); buf = buf[i:] if i >= 0 else b""; continue
    ch, pkt = frame()
    now = time.time()
    if ch == 0:
        rtp += 1
        seq, ts, ssrc = struct.unpack(">HII", pkt[2:12])
        # a real camera never jumps: seq +1, RTP time forward by < 1 s
        if prev and (seq != (prev[0] + 1) % 65536 or (ts - prev[1]) % 2**32 > 90000):
            jumps += 1
        prev = (seq, ts)
        continue
    off = 0
    while off + 4 <= len(pkt):                        # walk the compound RTCP packet
        pt, ln = pkt[off + 1], (struct.unpack(">H", pkt[off + 2:off + 4])[0] + 1) * 4
        if pt == 200:
            sec, frac, ts = struct.unpack(">III", pkt[off + 8:off + 20])
            ntp = sec - 2208988800 + frac / 2**32
            srs.append({"t": now - t_play, "off": ntp - now, "ntp": ntp, "rtp": ts})
        off += ln
iv = [round(b["t"] - a["t"], 3) for a, b in zip(srs, srs[1:])]
# the sender's own times (NTP in each SR), not when they arrived: a loaded machine cannot move them
ntp_iv = [round(b["ntp"] - a["ntp"], 3) for a, b in zip(srs, srs[1:])]
# RTP seconds per NTP second between the first and the last SR: the media clock's rate at the sender
rate = ((srs[-1]["rtp"] - srs[0]["rtp"]) % 2**32 / 90000.0 / (srs[-1]["ntp"] - srs[0]["ntp"])
        if len(srs) > 1 and srs[-1]["ntp"] > srs[0]["ntp"] else None)
print(json.dumps({"rtp_packets": rtp, "ssrc": ssrc, "rtp_jumps": jumps, "sr_count": len(srs),
                  "first_sr_s": round(srs[0]["t"], 3) if srs else None,
                  "intervals_s": iv, "ntp_intervals_s": ntp_iv, "media_rate": rate and round(rate, 4),
                  "ntp_minus_local_s": [round(s["off"], 4) for s in srs]}))
EOF

# prft.c: prints, per packet, local time and the AV_PKT_DATA_PRFT wall clock that
# libavformat derives from RTCP SRs; then a JSON summary.
cat >"$TMP/prft.c" <<'EOF'
#include <libavformat/avformat.h>
#include <libavutil/time.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    AVFormatContext *ic = NULL;
    AVDictionary *o = NULL;
    av_dict_set(&o, "rtsp_transport", argc > 3 ? argv[3] : "tcp", 0);
    av_log_set_level(AV_LOG_ERROR);
    int64_t t0 = av_gettime();
    if (argc < 3 || avformat_open_input(&ic, argv[1], NULL, &o) < 0) return 1;
    double secs = atof(argv[2]);
    AVPacket *pkt = av_packet_alloc();
    int n = 0, with = 0;
    int64_t first_us = -1, first_pts = -1, last_us = 0, last_pts = 0;
    double first_prft_s = -1, min_off = 1e18, max_off = -1e18;
    AVRational tb = ic->streams[0]->time_base;
    while (av_read_frame(ic, pkt) >= 0) {
        int64_t now = av_gettime();
        size_t sz = 0;
        AVProducerReferenceTime *p =
            (AVProducerReferenceTime *)av_packet_get_side_data(pkt, AV_PKT_DATA_PRFT, &sz);
        n++;
        if (pkt->pts != AV_NOPTS_VALUE) {
            if (first_pts < 0) { first_pts = pkt->pts; first_us = now; }
            last_pts = pkt->pts; last_us = now;
        }
        if (p) {
            double off = (p->wallclock - now) / 1e6;
            if (first_prft_s < 0) first_prft_s = (now - t0) / 1e6;
            if (off < min_off) min_off = off;
            if (off > max_off) max_off = off;
            with++;
        }
        av_packet_unref(pkt);
        if ((now - t0) / 1e6 > secs) break;
    }
    double media_s = (last_pts - first_pts) * av_q2d(tb), wall_s = (last_us - first_us) / 1e6;
    printf("{\"packets\": %d, \"with_prft\": %d, \"first_prft_after_open_s\": %.3f, "
           "\"prft_minus_local_min_s\": %.4f, \"prft_minus_local_max_s\": %.4f, "
           "\"media_s\": %.3f, \"wall_s\": %.3f}\n",
           n, with, first_prft_s, with ? min_off : 0, with ? max_off : 0, media_s, wall_s);
    avformat_close_input(&ic);
    return 0;
}
EOF
HAVE_PRFT=0
# shellcheck disable=SC2046  # pkg-config output must be word-split
if command -v gcc >/dev/null && pkg-config --exists libavformat libavcodec libavutil 2>/dev/null &&
    gcc -O1 -o "$TMP/prft" "$TMP/prft.c" $(pkg-config --cflags --libs libavformat libavcodec libavutil) 2>"$TMP/gcc.err"; then
    HAVE_PRFT=1
else
    info "no gcc/libavformat headers: PRFT checks skipped"
fi

# jcheck JSON_FILE PY_EXPR: evaluates PY_EXPR with d = the parsed JSON.
jcheck() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"; }

# ============================================================== RTSP server
echo "== rtsp_server.py"
if start rtsp "$PY" "$HERE/rtsp_server.py" --port 0 --mount /cam1 --mount /cam2; then
    pass "rtsp_server prints READY ($(ready_url rtsp))"
    URL=$(ready_url rtsp)
    URL2=$(grep '^READY ' "$TMP/rtsp.out" | sed -n 2p | cut -d' ' -f2)
    check "second mount announced" test "$URL2" = "${URL%/cam1}/cam2"
    check "EPOCH line printed" grep -q '^EPOCH [0-9.]*$' "$TMP/rtsp.out"

    ffmpeg -nostdin -hide_banner -rtsp_transport tcp -i "$URL" -t 3 -f null - >"$TMP/ff_tcp.log" 2>&1
    frames=$(grep -o 'frame= *[0-9]*' "$TMP/ff_tcp.log" | tail -1 | tr -dc 0-9)
    check "ffmpeg TCP decodes 3 s (${frames:-0} frames)" test "${frames:-0}" -ge 70
    check "ffmpeg TCP: no decode errors" \
        bash -c "! grep -Eiq 'corrupt|concealing|error|non monoton' '$TMP/ff_tcp.log'"

    ffmpeg -nostdin -hide_banner -rtsp_transport udp -i "$URL2" -t 2 -f null - >"$TMP/ff_udp.log" 2>&1
    frames=$(grep -o 'frame= *[0-9]*' "$TMP/ff_udp.log" | tail -1 | tr -dc 0-9)
    check "ffmpeg UDP decodes 2 s on the 2nd mount (${frames:-0} frames)" test "${frames:-0}" -ge 45

    # Two clients on one mount: shared media -> same SSRC; also SR timing.
    "$PY" "$TMP/srprobe.py" "$URL" 6 >"$TMP/sr1.json" &
    p1=$!
    sleep 1
    "$PY" "$TMP/srprobe.py" "$URL" 4 >"$TMP/sr2.json"
    wait $p1
    info "SR probe (6 s, TCP): $(cat "$TMP/sr1.json")"
    check "shared media: two clients get the same SSRC" \
        "$PY" -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); sys.exit(a["ssrc"]!=b["ssrc"] or not a["ssrc"])' "$TMP/sr1.json" "$TMP/sr2.json"
    check "a 2nd client's PLAY does not disturb the 1st (no seq/timestamp jump)" \
        jcheck "$TMP/sr1.json" 'd["rtp_jumps"] == 0 and d["rtp_packets"] > 100'
    # README: first SR 0.26-0.6 s after PLAY (+ SLACK), then every 0.41-1.23 s (RFC 3550: 0.5-1.5 x 1 s over
    # 1.218), judged on the SRs' own NTP times; + 1.5 s margin, still under GStreamer's default (3-5.5 s)
    check "first RTCP SR soon after PLAY (0.6 s + ${SLACK} s)" \
        jcheck "$TMP/sr1.json" "d['first_sr_s'] is not None and d['first_sr_s'] < 0.6 + $SLACK"
    check "RTCP SRs every 1.23 s at most (+ 1.5 s), sender time" \
        jcheck "$TMP/sr1.json" 'd["sr_count"] >= 3 and max(d["ntp_intervals_s"]) < 1.23 + 1.5'
    check "SR NTP = local wall clock (+-${SLACK} s)" \
        jcheck "$TMP/sr1.json" "all(abs(x) < $SLACK for x in d['ntp_minus_local_s'])"

    if [ $HAVE_PRFT = 1 ]; then
        "$TMP/prft" "$URL" 4 >"$TMP/prft.json"
        info "FFmpeg PRFT (4 s, TCP): $(cat "$TMP/prft.json")"
        check "PRFT side data present and = local wall clock (+-${SLACK} s)" jcheck "$TMP/prft.json" \
            "d['with_prft'] > 50 and max(abs(d['prft_minus_local_min_s']), abs(d['prft_minus_local_max_s'])) < $SLACK"
        "$TMP/prft" "$URL2" 3 udp >"$TMP/prft_udp.json"
        info "FFmpeg PRFT (3 s, UDP): $(cat "$TMP/prft_udp.json")"
        check "PRFT over UDP = local wall clock (+-${SLACK} s)" jcheck "$TMP/prft_udp.json" \
            "d['with_prft'] > 30 and max(abs(d['prft_minus_local_min_s']), abs(d['prft_minus_local_max_s'])) < $SLACK"
    fi

    stop "$LAST_PGID"
    check "rtsp_server exits 0 on SIGTERM" test $? -eq 0
else
    fail "rtsp_server prints READY"
fi

echo "== rtsp_server.py under faketime -1h"
if start rtspfake env FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '-1h' "$PY" "$HERE/rtsp_server.py" --port 0; then
    URL=$(ready_url rtspfake)
    "$PY" "$TMP/srprobe.py" "$URL" 4 >"$TMP/srf.json"
    info "SR probe under faketime: $(cat "$TMP/srf.json")"
    check "faketime: SR NTP is 3600 s behind (+-${SLACK} s)" jcheck "$TMP/srf.json" \
        "d['sr_count'] >= 2 and all(abs(x + 3600) < $SLACK for x in d['ntp_minus_local_s'])"
    # media time per (faked) wall second at the sender, from its SRs: exact whatever the load
    check "faketime: live rate kept (RTP clock = NTP clock +-1 %)" jcheck "$TMP/srf.json" \
        'd["rtp_packets"] > 0 and d["media_rate"] is not None and abs(d["media_rate"] - 1) < 0.01'
    if [ $HAVE_PRFT = 1 ]; then
        "$TMP/prft" "$URL" 4 >"$TMP/prftf.json"
        info "FFmpeg PRFT under faketime: $(cat "$TMP/prftf.json")"
        check "faketime: PRFT is 3600 s behind (+-${SLACK} s)" jcheck "$TMP/prftf.json" \
            "d['with_prft'] > 50 and max(abs(d['prft_minus_local_min_s'] + 3600),
                                        abs(d['prft_minus_local_max_s'] + 3600)) < $SLACK"
        # media time against arrival time: late arrivals on a loaded machine shift it by SLACK at most
        check "faketime: media time advances at wall rate (+-${SLACK} s)" jcheck "$TMP/prftf.json" \
            "d['wall_s'] > 2 and abs(d['media_s'] - d['wall_s']) < $SLACK"
    fi
    stop "$LAST_PGID"
    check "faketime'd rtsp_server exits 0 on SIGTERM" test $? -eq 0
else
    fail "rtsp_server under faketime prints READY"
fi
# faketime forks and does not forward signals; the server must not outlive it.
if start rtspfake2 env FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '-1h' "$PY" "$HERE/rtsp_server.py" --port 0; then
    kill -TERM "$LAST_PGID"
    for _ in $(seq $HANG); do pgrep -g "$LAST_PGID" >/dev/null || break; sleep 0.1; done
    check "SIGTERM to the faketime PID also ends the server (no orphan)" bash -c "! pgrep -g $LAST_PGID >/dev/null"
fi

echo "== rtsp_server.py --box"
# on the media's clock: the passage starts 1.5 s after ffmpeg connects, however slow the start was
if start rtspbox "$PY" "$HERE/rtsp_server.py" --port 0 --mount /box --box 1.5,3.5 --box-clock media; then
    ffmpeg -nostdin -v error -rtsp_transport tcp -i "$(ready_url rtspbox)" -t 5 \
        -vf scale=64:36 -pix_fmt gray -f rawvideo "$TMP/box.gray" 2>"$TMP/ff_box.log"
    read -r nframes nbox < <("$PY" -c '
import sys
d = open(sys.argv[1], "rb").read(); n = 64 * 36
fr = [d[i:i + n] for i in range(0, len(d), n)]
print(len(fr), sum(1 for f in fr if max(f) > 128))' "$TMP/box.gray")
    info "box: $nbox of $nframes frames show the box (expect 2 s = 50)"
    check "box visible for 2 s (48..52 frames)" test "$nbox" -ge 48 -a "$nbox" -le 52
    stop "$LAST_PGID"
else
    fail "rtsp_server --box prints READY"
fi

echo "== rtsp_server.py --file (2 s clip with audio, looped)"
ffmpeg -nostdin -v error -f lavfi -i testsrc=size=320x240:rate=30 -f lavfi -i sine -t 2 \
    -c:v libx264 -pix_fmt yuv420p -c:a aac "$TMP/clip.mp4"
if start rtspfile "$PY" "$HERE/rtsp_server.py" --port 0 --mount /file --file "$TMP/clip.mp4"; then
    ffmpeg -nostdin -hide_banner -rtsp_transport tcp -i "$(ready_url rtspfile)" -t 5 -f null - >"$TMP/ff_file.log" 2>&1
    frames=$(grep -o 'frame= *[0-9]*' "$TMP/ff_file.log" | tail -1 | tr -dc 0-9)
    check "--file: 5 s decoded across loop points (${frames:-0} frames)" test "${frames:-0}" -ge 120
    check "--file: no decode errors" bash -c "! grep -Eiq 'corrupt|concealing|error|non monoton' '$TMP/ff_file.log'"
    stop "$LAST_PGID"
else
    fail "rtsp_server --file prints READY"
fi

# ============================================================== Central stub
echo "== central_stub.py"
KEY=s3cret
ID=1722279170848854016        # > 2**53: must survive as exact decimal digits
# Central fails for its first FAIL_S seconds: long enough that the first PUT below surely falls in them
FAIL_S=$((SLACK + 2))
if start central "$PY" "$HERE/central_stub.py" --port 0 --key "$KEY" --log "$TMP/episodes.jsonl" \
    --fail-first-seconds $FAIL_S --status-file "$TMP/status.json"; then
    C=$(ready_url central)
    pass "central_stub prints READY ($C)"
    # put KEY ID BODY [extra curl args] -> prints the HTTP status, body in $TMP/resp
    put() {
        curl -s -o "$TMP/resp" -w '%{http_code}' -X PUT -H "Authorization: Bearer $1" \
            -H 'Content-Type: application/json' --data-binary "$3" "${@:4}" \
            "$C/central/api/v3/episodes/$2"
    }
    ctl() { curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "$1" "$C/_control"; }
    episodes() { curl -s "$C/_episodes" >"$TMP/ep.json"; }
    ep() { printf '{"episode_id":%s,"media":"%s","opened_at":%s,"updated_at":%s%s}' "$@"; }

    V1=$(ep $ID cam1 1000 1000 '')
    check "503 during --fail-first-seconds" test "$(put $KEY $ID "$V1")" = 503
    sleep "$FAIL_S.1"   # the window began before READY: it is over now
    check "valid episode PUT -> 200" test "$(put $KEY $ID "$V1")" = 200
    check "200 echoes the exact id digits" grep -q "\"episode_id\":$ID" "$TMP/resp"
    check "second version -> 200" test "$(put $KEY $ID "$(ep $ID cam1 1000 2000 ',"type":"x"')")" = 200
    check "exact retry of v1 (out of order) -> 200" test "$(put $KEY $ID "$V1")" = 200
    check "stale different version (out of order) -> 200" test "$(put $KEY $ID "$(ep $ID cam1 1000 1500 '')")" = 200
    check "wrong key -> 401" test "$(put wrong $ID "$V1")" = 401
    check "401 has a JSON error body" "$PY" -c 'import json,sys; sys.exit(not json.load(open(sys.argv[1]))["errors"])' "$TMP/resp"
    check "missing key -> 401" test "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
        --data-binary "$V1" "$C/central/api/v3/episodes/$ID")" = 401
    check "bad JSON -> 400" test "$(put $KEY $ID '{"episode_id":')" = 400
    check "float episode_id -> 400" test "$(put $KEY 5 "$(ep 5.0 cam1 1 1 '')")" = 400
    check "string episode_id -> 400" test "$(put $KEY 6 "$(ep '"6"' cam1 1 1 '')")" = 400
    check "id rounded by a double -> 400" test "$(put $KEY $ID "$(ep 1722279170848854000 cam1 1000 3000 '')")" = 400

    # Closing, then a change after close.
    check "closing version -> 200" test "$(put $KEY 7 "$(ep 7 cam2 100 200 ',"closed_at":200')")" = 200
    check "version after close -> 200 (recorded)" test "$(put $KEY 7 "$(ep 7 cam2 100 300 ',"closed_at":200')")" = 200
    check "opened_at change -> 200 (recorded)" test "$(put $KEY 8 "$(ep 8 cam2 100 100 '')")$(put $KEY 8 "$(ep 8 cam2 150 200 '')")" = 200200

    # Fault injection at runtime.
    check "control: 503 for cam9, once" test "$(ctl '{"mode":"503","for_media":"cam9","count":1}')" = 200
    check "cam9 -> 503" test "$(put $KEY 9 "$(ep 9 cam9 1 1 '')")" = 503
    check "cam1 unaffected -> 200" test "$(put $KEY 10 "$(ep 10 cam1 1 1 '')")" = 200
    check "cam9 after count -> 200" test "$(put $KEY 9 "$(ep 9 cam9 1 1 '')")" = 200
    ctl '{"mode":"400"}' >/dev/null
    check "mode 400 -> 400" test "$(put $KEY 11 "$(ep 11 cam1 1 1 '')")" = 400
    check "mode 400 body" grep -q '"title": "bad episode"' "$TMP/resp"
    ctl '{"mode":"timeout","hold_s":2}' >/dev/null
    t0=$(date +%s.%N)
    put $KEY 12 "$(ep 12 cam1 1 1 '')" --max-time $((HANG / 10)) >/dev/null
    rc=$?
    held=$("$PY" -c "import sys; print(round($(date +%s.%N) - $t0, 1))")
    check "mode timeout: held ${held}s then closed without answer (curl rc $rc)" \
        "$PY" -c "import sys; sys.exit(not ($rc == 52 and 2 - 0.2 < $held < 2 + $SLACK))"   # hold_s 2
    ctl '{"mode":"ok"}' >/dev/null
    check "mode ok again -> 200" test "$(put $KEY 12 "$(ep 12 cam1 1 1 '')")" = 200

    # Keep-alive: two requests in one curl run reuse the connection.
    curl -sv -o /dev/null -o /dev/null -X PUT -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        --data-binary "$(ep 13 cam1 1 1 '')" "$C/central/api/v3/episodes/13" "$C/central/api/v3/episodes/13" 2>"$TMP/ka.log"
    check "HTTP/1.1 keep-alive (connection re-used)" grep -qi 're-using existing connection' "$TMP/ka.log"

    episodes
    info "/_episodes: $("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({k: d[k] for k in ("requests","statuses","ignored")}), [v["kind"] for v in d["violations"]])' "$TMP/ep.json")"
    check "episode $ID: 2 versions, 2 ignored, last has exact id" jcheck "$TMP/ep.json" \
        "d['episodes']['$ID']['versions'] == 2 and d['episodes']['$ID']['ignored'] == 2 and d['episodes']['$ID']['last']['episode_id'] == $ID"
    check "episode 7 closed" jcheck "$TMP/ep.json" 'd["episodes"]["7"]["closed"]'
    check "requests counted (23)" jcheck "$TMP/ep.json" 'd["requests"] == 23'
    check "statuses counted" jcheck "$TMP/ep.json" \
        'd["statuses"] == {"200": 13, "503": 2, "401": 2, "400": 5, "timeout": 1}'
    check "violations are exactly the expected kinds" jcheck "$TMP/ep.json" \
        'sorted(v["kind"] for v in d["violations"]) == sorted(["stale_version_differs", "bad_json", "episode_id_type", "episode_id_text", "episode_id_type", "episode_id_text", "episode_id_mismatch", "episode_id_text", "changed_after_close", "opened_at_changed"])'
    check "JSONL log: one line per accepted version, received_ms, exact id" "$PY" -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
mine = [l for l in lines if l["episode_id"] == int(sys.argv[2])]
raw = open(sys.argv[1]).read()
sys.exit(not (len(lines) == 10 and len(mine) == 2 and all(l["received_ms"] > 1e12 for l in lines)
              and ("\"episode_id\":%s," % sys.argv[2]) in raw))' "$TMP/episodes.jsonl" "$ID"
    check "--status-file mirrors /_episodes" jcheck "$TMP/status.json" 'd["requests"] == 23'
    check "/_reset clears state" bash -c "curl -s -X POST '$C/_reset' >/dev/null && curl -s '$C/_episodes' | grep -q '\"requests\": 0'"
    stop "$LAST_PGID"
    check "central_stub exits 0 on SIGTERM" test $? -eq 0
else
    fail "central_stub prints READY"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
