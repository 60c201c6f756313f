#!/usr/bin/env python3
"""Stand-in for Flussonic Central's episode API, over real HTTP/1.1 (stdlib only).

Owns: tests/servers/central_stub.py -- nothing else.

    python3 tests/servers/central_stub.py --port 0 --key SECRET --log /tmp/ep.jsonl
    -> prints "READY http://127.0.0.1:PORT" (flushed) once listening.

Episode API (what vigil talks to):
  PUT /central/api/v3/episodes/{episode_id}
      Authorization: Bearer {key}, Content-Type: application/json, body = the
      complete episode record.  Answers 200 with the body echoed back.
      401 wrong/missing key, 400 bad JSON or schema violation, 415 wrong
      content type, 503 while failing (see below).

Every version is validated; problems are recorded as "violations" (never a
crash).  Schema problems (answered 400, not stored):
  episode_id not a JSON integer, != URL id, or its raw decimal text differs;
  media missing/empty/not a string; opened_at/updated_at missing or not
  integers; closed_at present but not an integer.
Semantic problems (answered 200, stored, recorded):
  opened_at > updated_at; closed_at < opened_at; opened_at or media changed
  versus the first version; any newer version after a closing version.
Ordering: a version whose updated_at <= the last accepted one is answered 200
and counted as "ignored" (Central does that).  It is a violation only if its
content differs from the version accepted with that updated_at (an exact
retry is fine; an unknown stale version is a violation).

Fault injection:
  --fail-first-seconds S   503 for the first S seconds after start.
  POST /_control {"mode": "ok"|"503"|"400"|"timeout", "for_media": "cam1",
                  "count": N, "hold_s": 30}
      Without for_media: sets the default mode and clears per-media modes.
      With for_media: overrides the mode for that media only.
      count (optional): the mode applies to the next N matching requests,
      then reverts to "ok".  "timeout" holds the request hold_s seconds
      (default 30) and then closes the connection without any answer.
      "400" answers {"errors":[{"title":"bad episode"}]}.

Test endpoints (not counted in "requests"):
  GET  /_episodes  -> {"episodes": {"<id>": {"versions": N, "ignored": K,
                       "closed": bool, "last": {...}}}, "violations": [...],
                       "ignored": K_total, "requests": N,
                       "statuses": {"200": N, "503": N, "timeout": N, ...},
                       "mode": {...}}
      "versions" counts accepted versions; "requests" counts every episode
      PUT, whatever its answer.
  POST /_reset     -> forget episodes, violations and counters.
--log FILE gets one JSON line per ACCEPTED version:
  {"received_ms": ..., "episode_id": <int>, "version": n, "body": {...}}
--status-file PATH is rewritten (atomically) with the /_episodes JSON after
every episode request, for tests that prefer reading a file.
Timestamps (received_ms) come from time.time(): faked too if you run the
stub under libfaketime.  Exits 0 on SIGTERM/SIGINT.
"""

import argparse
import http.server
import json
import os
import re
import signal
import sys
import threading
import time

EPISODE_PATH = re.compile(r"^/central/api/v3/episodes/([^/?]+)/?(?:\?.*)?$")
RAW_ID = re.compile(rb'"episode_id"\s*:\s*(-?[0-9][0-9.eE+-]*)')
MODES = ("ok", "503", "400", "timeout")


def now_ms():
    return int(time.time() * 1000)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def canon(body):
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


class State:
    """Everything the stub remembers; all access under self.lock."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        self.started = time.monotonic()
        self.reset()
        self.default_mode = {"mode": "ok", "count": None, "hold_s": 30.0}
        self.media_modes = {}

    def reset(self):
        self.episodes = {}   # id(int) -> dict
        self.violations = []
        self.requests = 0
        self.statuses = {}

    def count(self, status):
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1

    def violation(self, episode_id, kind, detail):
        self.violations.append({"episode_id": str(episode_id), "kind": kind,
                                "detail": detail, "received_ms": now_ms()})

    def take_mode(self, media):
        """The fault mode for this request, consuming one use of a counted mode."""
        rule = self.media_modes.get(media) if media is not None else None
        if rule is None:
            rule = self.default_mode
        if rule["mode"] != "ok" and rule["count"] is not None:
            rule["count"] -= 1
            if rule["count"] <= 0:
                rule_copy = dict(rule)
                rule.update(mode="ok", count=None)
                return rule_copy
        return dict(rule)

    def snapshot(self):
        eps = {}
        for eid, e in self.episodes.items():
            eps[str(eid)] = {"versions": e["versions"], "ignored": e["ignored"],
                             "closed": e["closed"], "last": e["last"]}
        return {"episodes": eps, "violations": list(self.violations),
                "ignored": sum(e["ignored"] for e in self.episodes.values()),
                "requests": self.requests, "statuses": dict(self.statuses),
                "mode": {"default": self.default_mode, "per_media": self.media_modes}}


def validate_schema(url_id, raw, body):
    """Returns a list of (kind, detail) schema problems."""
    bad = []
    if not isinstance(body, dict):
        return [("schema", "body is not a JSON object")]
    eid = body.get("episode_id")
    if not is_int(eid):
        bad.append(("episode_id_type", "episode_id is %s, not an integer: %r"
                    % (type(eid).__name__, eid)))
    elif eid != url_id:
        bad.append(("episode_id_mismatch", "body %d != url %d" % (eid, url_id)))
    m = RAW_ID.search(raw)
    if not m or m.group(1).decode() != str(url_id):
        bad.append(("episode_id_text", "raw body episode_id is %r, url id %d"
                    % (m.group(1).decode() if m else None, url_id)))
    media = body.get("media")
    if not isinstance(media, str) or not media:
        bad.append(("media", "media must be a non-empty string, got %r" % (media,)))
    for f in ("opened_at", "updated_at"):
        if not is_int(body.get(f)):
            bad.append((f, "%s must be an integer, got %r" % (f, body.get(f))))
    if "closed_at" in body and not is_int(body["closed_at"]):
        bad.append(("closed_at", "closed_at must be an integer, got %r" % (body["closed_at"],)))
    return bad


def check_semantics(st, url_id, body, received):
    """Under st.lock: applies one well-formed version. Returns 'accepted' or 'ignored'."""
    opened, updated, closed = body["opened_at"], body["updated_at"], body.get("closed_at")
    if opened > updated:
        st.violation(url_id, "opened_after_updated", "opened_at %d > updated_at %d" % (opened, updated))
    if closed is not None and closed < opened:
        st.violation(url_id, "closed_before_opened", "closed_at %d < opened_at %d" % (closed, opened))
    e = st.episodes.get(url_id)
    if e is None:
        e = st.episodes[url_id] = {"versions": 0, "ignored": 0, "closed": False, "last": None,
                                   "first": body, "by_updated": {}}
    elif updated <= e["last"]["updated_at"]:
        e["ignored"] += 1
        seen = e["by_updated"].get(updated)
        if seen != canon(body):
            st.violation(url_id, "stale_version_differs",
                         "updated_at %d <= last %d and content %s" % (
                             updated, e["last"]["updated_at"],
                             "differs from the version accepted with that updated_at"
                             if seen else "was never accepted"))
        return "ignored"
    else:
        first = e["first"]
        if opened != first["opened_at"]:
            st.violation(url_id, "opened_at_changed", "%d -> %d" % (first["opened_at"], opened))
        if body["media"] != first["media"]:
            st.violation(url_id, "media_changed", "%r -> %r" % (first["media"], body["media"]))
        if e["closed"]:
            st.violation(url_id, "changed_after_close",
                         "closed at %r, new version updated_at %d" % (e["last"].get("closed_at"), updated))
    e["versions"] += 1
    e["last"] = body
    e["by_updated"][updated] = canon(body)
    if closed is not None:
        e["closed"] = True
    if st.args.log:
        line = json.dumps({"received_ms": received, "episode_id": url_id,
                           "version": e["versions"], "body": body}, separators=(",", ":"))
        with open(st.args.log, "a") as f:
            f.write(line + "\n")
    return "accepted"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive; every answer has Content-Length
    disable_nagle_algorithm = True  # headers and body go in separate writes: without this a kept-alive
                                    # client waits ~40 ms (delayed ACK) on every request after the first
    server_version = "central-stub/1"
    st = None                        # State, set in main()

    def log_message(self, fmt, *args):
        if self.st.args.verbose:
            sys.stderr.write("central_stub: %s\n" % (fmt % args))

    # ---- plumbing -------------------------------------------------------
    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status, obj=None, raw=None):
        data = raw if raw is not None else json.dumps(obj if obj is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, title):
        self.reply(status, {"errors": [{"status": str(status), "title": title}]})

    def write_status_file(self):
        path = self.st.args.status_file
        if not path:
            return
        with self.st.lock:
            data = json.dumps(self.st.snapshot(), indent=1)
        tmp = "%s.%d.tmp" % (path, threading.get_ident())
        with open(tmp, "w") as f:
            f.write(data)
        os.replace(tmp, path)

    # ---- routes ---------------------------------------------------------
    def do_GET(self):
        if self.path.split("?")[0] == "/_episodes":
            with self.st.lock:
                return self.reply(200, self.st.snapshot())
        self.error(404, "not found")

    def do_POST(self):
        raw = self.read_body()
        route = self.path.split("?")[0]
        if route == "/_reset":
            with self.st.lock:
                self.st.reset()
            self.write_status_file()
            return self.reply(200, {"ok": True})
        if route != "/_control":
            return self.error(404, "not found")
        try:
            req = json.loads(raw or b"{}")
            mode = str(req["mode"])
            assert mode in MODES
        except (ValueError, KeyError, AssertionError, TypeError):
            return self.error(400, "expected {\"mode\": one of %s}" % "|".join(MODES))
        rule = {"mode": mode, "count": req.get("count"), "hold_s": float(req.get("hold_s", 30))}
        with self.st.lock:
            if req.get("for_media") is not None:
                self.st.media_modes[str(req["for_media"])] = rule
            else:
                self.st.default_mode = rule
                self.st.media_modes = {}
            snap = self.st.snapshot()["mode"]
        self.reply(200, {"ok": True, "mode": snap})

    def do_PUT(self):
        m = EPISODE_PATH.match(self.path)
        raw = self.read_body()   # always consume the body: keeps keep-alive in sync
        if not m:
            return self.error(404, "not found")
        status = self.handle_episode(m.group(1), raw)
        with self.st.lock:
            self.st.requests += 1
            self.st.count(status)
        self.write_status_file()

    def do_DELETE(self):
        self.read_body()
        self.error(405, "method not allowed")

    def handle_episode(self, id_text, raw):
        """Answers one episode PUT; returns the status to count ("timeout" if none)."""
        st, received = self.st, now_ms()
        if time.monotonic() - st.started < st.args.fail_first_seconds:
            self.error(503, "service unavailable (warming up)")
            return 503
        if self.headers.get("Authorization", "") != "Bearer " + st.args.key:
            self.error(401, "unauthorized")
            return 401
        if not id_text.isdigit():
            with st.lock:
                st.violation(id_text, "url_id", "episode id in URL is not decimal digits")
            self.error(400, "bad episode id")
            return 400
        url_id = int(id_text)
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            with st.lock:
                st.violation(url_id, "content_type", "Content-Type is %r" % ctype)
            self.error(415, "content type must be application/json")
            return 415
        try:
            body = json.loads(raw)
        except ValueError as e:  # includes UnicodeDecodeError
            with st.lock:
                st.violation(url_id, "bad_json", str(e))
            self.error(400, "bad json")
            return 400
        media = body.get("media") if isinstance(body, dict) else None
        with st.lock:
            rule = st.take_mode(media if isinstance(media, str) else None)
        if rule["mode"] == "503":
            self.error(503, "service unavailable")
            return 503
        if rule["mode"] == "400":
            self.reply(400, {"errors": [{"title": "bad episode"}]})
            return 400
        if rule["mode"] == "timeout":
            time.sleep(rule["hold_s"])
            self.close_connection = True   # no answer at all
            return "timeout"
        problems = validate_schema(url_id, raw, body)
        with st.lock:
            for kind, detail in problems:
                st.violation(url_id, kind, detail)
            if not problems:
                check_semantics(st, url_id, body, received)
        if problems:
            self.reply(400, {"errors": [{"title": d} for _, d in problems]})
            return 400
        self.reply(200, raw=raw)
        return 200


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--key", required=True, help="expected Bearer token")
    ap.add_argument("--log", help="JSONL file, one line per accepted version")
    ap.add_argument("--fail-first-seconds", type=float, default=0.0)
    ap.add_argument("--status-file", help="rewritten with the /_episodes JSON after each request")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args()

    Handler.st = State(args)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True  # held "timeout" requests must not block exit

    def stop(*_):
        threading.Thread(target=httpd.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    print("READY http://127.0.0.1:%d" % httpd.server_address[1], flush=True)
    httpd.serve_forever(poll_interval=0.2)
    httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
