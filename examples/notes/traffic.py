"""Client traffic for the notes service, the way its real client talks: every request on a new
connection with `Connection: close`, a session from /login presented as `Authorization: Session`,
ids from POST answers used in later paths, uploads the service answers before reading.

    python3 traffic.py --url http://127.0.0.1:8080 [--sessions 10] [--seed 7] [--phase main,unmockable,unsigned]
    python3 traffic.py --credentials      # the passwords the client logs in with, as JSON

Phases run one after the other, each with its own sessions:
  main        the ordinary traffic (login, profile, create/read/list/update/upload/delete, stats)
  unmockable  sessions that export a note (the directory renders it with a fresh ticket)
  unsigned    sessions that share a note (X-Proof: an HMAC the client derives from the session)
Prints one JSON line: requests sent, answers that were not the expected status, and the wall-clock
span of each phase in epoch milliseconds (to cut one capture into snapshots per phase).
Exit code 1 when an answer had an unexpected status.
"""

import argparse
import hashlib
import hmac
import http.client
import json
import random
import sys
import time
from urllib.parse import urlsplit

USERS = {
    "ana": "pw-ana-7c1f2e",
    "ben": "pw-ben-90ab44",
    "chloe": "pw-chloe-5d3e81",
    "dev": "pw-dev-c0ffee",
}
WORDS = "retap replays real traffic against the next build and compares every answer with the recording".split()
TAGS = ["work", "home", "ideas", "travel", "reading", "todo"]


class Client:
    def __init__(self, base):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port or 80
        self.sent = 0
        self.unexpected = []

    def call(self, method, path, expect, payload=None, raw=None, session=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        h = {"Connection": "close", "Accept": "application/json", "User-Agent": "notes-client/3.1"}
        if session:
            h["Authorization"] = f"Session {session}"
        body = raw
        if payload is not None:
            body = json.dumps(payload).encode()
            h["Content-Type"] = "application/json"
        elif raw is not None:
            h["Content-Type"] = "application/octet-stream"
        h.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=h)
            res = conn.getresponse()
            data = res.read()
            status = res.status
        except (OSError, http.client.HTTPException) as e:
            status, data = None, str(e).encode()
        finally:
            conn.close()
        self.sent += 1
        if status != expect:
            self.unexpected.append(f"{method} {path}: {status} (expected {expect}) {data[:120]!r}")
        try:
            return json.loads(data) if data else None
        except ValueError:
            return None


def text(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def login(c, user):
    answer = c.call("POST", "/login", 200, {"user": user, "password": USERS[user]})
    return (answer or {}).get("session")


def main_session(c, rng, user):
    s = login(c, user)
    if not s:
        return
    c.call("GET", "/me", 200, session=s)
    ids = []
    limit = 2 if user == "ben" else 3
    for i in range(rng.randint(2, limit)):
        tags = rng.sample(TAGS, rng.randint(0, 2)) + (["work"] if i == 0 else [])
        note = c.call("POST", "/notes", 201, {"title": f"{user} {text(rng, 3)}", "body": text(rng, rng.randint(4, 40)), "tags": sorted(set(tags))}, session=s)
        if note and note.get("id"):
            ids.append(note["id"])
    for note_id in ids:
        c.call("GET", f"/notes/{note_id}", 200, session=s)
    c.call("GET", "/notes?tag=work", 200, session=s)
    if ids:
        # the free plan may not tag: its update is refused (403), as in production
        c.call("PUT", f"/notes/{ids[0]}", 403 if user == "ben" else 200, {"title": text(rng, 4), "tags": ["todo"]}, session=s)
        upload = bytes(rng.getrandbits(8) for _ in range(rng.randint(512, 4096)))
        c.call("POST", f"/notes/{ids[-1]}/attachments", 202, raw=upload, session=s)
        c.call("GET", f"/notes/{ids[-1]}", 200, session=s)
    c.call("GET", "/stats", 200, session=s)
    if len(ids) > 1:
        c.call("DELETE", f"/notes/{ids[-1]}", 204, session=s)
    c.call("GET", "/notes", 200, session=s)
    c.call("POST", "/logout", 204, session=s)


def unmockable_session(c, rng, user):
    s = login(c, user)
    note = c.call("POST", "/notes", 201, {"title": f"{user} export", "body": text(rng, 12), "tags": []}, session=s) or {}
    if note.get("id"):
        c.call("GET", f"/notes/{note['id']}/export", 200, session=s)
        c.call("GET", f"/notes/{note['id']}", 200, session=s)
    c.call("POST", "/logout", 204, session=s)


def unsigned_session(c, rng, user):
    s = login(c, user)
    note = c.call("POST", "/notes", 201, {"title": f"{user} share", "body": text(rng, 12), "tags": []}, session=s) or {}
    if note.get("id") and s:
        path = f"/notes/{note['id']}/share"
        proof = hmac.new(s.encode(), f"POST {path}".encode(), hashlib.sha256).hexdigest()
        c.call("POST", path, 200, {"with": "team"}, session=s, headers={"X-Proof": proof})
        c.call("GET", f"/notes/{note['id']}", 200, session=s)
    c.call("POST", "/logout", 204, session=s)


PHASES = {"main": main_session, "unmockable": unmockable_session, "unsigned": unsigned_session}


def main():
    ap = argparse.ArgumentParser(description="client traffic for the notes service")
    ap.add_argument("--url")
    ap.add_argument("--sessions", type=int, default=10, help="sessions of the main phase")
    ap.add_argument("--side-sessions", type=int, default=4, help="sessions of each other phase")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--phase", default="main", help="comma list of main, unmockable, unsigned")
    ap.add_argument("--credentials", action="store_true", help="print the users' passwords as JSON and exit "
                    "(what a replay must be given for the redacted logins, see README)")
    args = ap.parse_args()
    if args.credentials:
        print(json.dumps(USERS))
        return 0
    if not args.url:
        ap.error("--url is required")
    phases = [p.strip() for p in args.phase.split(",") if p.strip()]
    for p in phases:
        if p not in PHASES:
            print(f"traffic: unknown phase {p}; valid: {', '.join(PHASES)}", file=sys.stderr)
            return 64
    rng = random.Random(args.seed)
    c = Client(args.url)
    spans = {}
    users = list(USERS)
    for p in phases:
        start = time.time_ns() // 1_000_000
        for i in range(args.sessions if p == "main" else args.side_sessions):
            PHASES[p](c, rng, users[i % len(users)])
        spans[p] = [start, time.time_ns() // 1_000_000]
        time.sleep(0.2)  # a clean gap between phases
    print(json.dumps({"requests": c.sent, "unexpected": c.unexpected, "phases": spans}), flush=True)
    return 1 if c.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
