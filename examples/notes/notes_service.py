"""notes: the service under test of retap's second example system (Python, standard library only).

A small notes API on HTTP/1.1 (http.server, one thread per connection):

  POST   /login                    {user, password} -> {session, user}        (directory)
  GET    /me                       -> the user's profile                     (directory)
  POST   /notes                    {title, body, tags} -> 201 {id, ...}      (directory x2, audit)
  GET    /notes?tag=T              -> {notes: [{id, title}], count}
  GET    /notes/{id}               -> the note
  PUT    /notes/{id}               {title?, body?, tags?} -> {id, version}   (directory, audit)
  POST   /notes/{id}/attachments   -> 202, answered before the upload is read (the body stays unread)
  DELETE /notes/{id}               -> 204                                    (audit)
  GET    /stats                    -> {notes, words, tags}
  POST   /logout                   -> 204
  GET    /notes/{id}/export        -> {url, pages}: the directory renders it (a fresh ticket each time)
  POST   /notes/{id}/share         -> {link}: needs X-Proof = HMAC-SHA256(session, "POST <path>")

Every request but /login sends `Authorization: Session <32 hex>` as /login handed it out. The
directory is plain HTTP (DIRECTORY_URL), the audit log HTTPS (AUDIT_URL; its CA from SSL_CERT_FILE).

  python3 notes_service.py --port 8080 [--variant changed-field,slow|all] [--list-variants]
"""

import argparse
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import re
import secrets
import ssl
import sys
import threading
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, quote, urlsplit

from variants import BROKEN, REGRESSIONS, parse

USERS = {
    "ana": {"password": "pw-ana-7c1f2e", "display": "Ana Lima", "plan": "team"},
    "ben": {"password": "pw-ben-90ab44", "display": "Ben Okafor", "plan": "free"},
    "chloe": {"password": "pw-chloe-5d3e81", "display": "Chloé Martin", "plan": "team"},
    "dev": {"password": "pw-dev-c0ffee", "display": "Dev Patel", "plan": "pro"},
}
NOTE_PATH = re.compile(r"^/notes/([0-9a-f]{16})(/attachments|/export|/share)?$")
MAX_NOTES = 10_000


def now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Problem(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Downstream:
    """One dependency base URL; every call is its own connection, closed after the answer."""

    def __init__(self, url):
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.context = ssl.create_default_context() if self.tls else None

    def call(self, method, path, payload=None):
        body = None if payload is None else json.dumps(payload).encode()
        if self.tls:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=5, context=self.context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
        try:
            headers = {"Accept": "application/json", "Connection": "close"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=body, headers=headers)
            res = conn.getresponse()
            data = res.read()
            if res.status >= 300:
                raise Problem(502, f"{method} {path} answered {res.status}")
            return json.loads(data) if data else None
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise Problem(502, f"{method} {path} failed: {e}") from e
        finally:
            conn.close()


class State:
    def __init__(self, variants, directory, audit):
        self.variants = variants
        self.directory = directory
        self.audit = audit
        self.sessions = {}
        self.notes = {}
        self.lock = threading.Lock()
        self.rng = random.Random()  # the error burst is random in every run, on purpose

    def has(self, name):
        return name in self.variants


def make_handler(state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "notes/1.0"

        def log_message(self, fmt, *args):
            if os.environ.get("NOTES_LOG"):
                sys.stderr.write("notes: " + fmt % args + "\n")

        # --- plumbing --------------------------------------------------------------------
        def send_json(self, status, value, headers=None):
            body = b"" if value is None else json.dumps(value).encode()
            self.send_response(status)
            if value is not None:
                self.send_header("Content-Type", "application/json")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def read_json(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            try:
                return json.loads(raw) if raw else {}
            except ValueError as e:
                raise Problem(400, f"body is not JSON: {e}") from e

        def user(self):
            auth = self.headers.get("Authorization") or ""
            m = re.fullmatch(r"Session ([0-9a-f]{32})", auth)
            with state.lock:
                user = state.sessions.get(m.group(1)) if m else None
            if not user:
                raise Problem(401, "no such session")
            return user, m.group(1)

        def note_of(self, user, note_id):
            with state.lock:
                note = state.notes.get(note_id)
            if not note or note["owner"] != user:
                raise Problem(404, "no such note")
            return note

        def audit(self, kind, user, note_id):
            if kind == "note.created" and state.has("missing-call"):
                return
            if kind == "note.created" and state.has("changed-param"):
                kind = "created"
            try:
                state.audit.call("POST", "/events", {"kind": kind, "note_id": note_id, "user": user, "at": now_iso()})
            except Problem as e:
                # the audit log is best effort: a failed event does not fail the request
                self.log_message("audit: %s", e)

        def dispatch(self, method):
            url = urlsplit(self.path)
            try:
                self.route(method, url.path, parse_qs(url.query))
            except Problem as e:
                self.send_json(e.status, {"error": str(e)})
            except Exception as e:  # noqa: BLE001 - a bug answers 500, the server keeps running
                self.send_json(500, {"error": f"internal: {e.__class__.__name__}"})

        do_GET = lambda self: self.dispatch("GET")  # noqa: E731
        do_POST = lambda self: self.dispatch("POST")  # noqa: E731
        do_PUT = lambda self: self.dispatch("PUT")  # noqa: E731
        do_DELETE = lambda self: self.dispatch("DELETE")  # noqa: E731

        # --- routes ----------------------------------------------------------------------
        def route(self, method, path, query):
            if (method, path) == ("POST", "/login"):
                return self.login()
            if (method, path) == ("GET", "/health"):
                return self.send_json(200, {"ok": True})
            if (method, path) == ("POST", "/logout"):
                user, session = self.user()
                with state.lock:
                    state.sessions.pop(session, None)
                return self.send_json(204, None)
            if (method, path) == ("GET", "/me"):
                return self.me()
            if (method, path) == ("GET", "/stats"):
                return self.stats()
            if path == "/notes":
                if method == "POST":
                    return self.create()
                if method == "GET":
                    return self.list(query.get("tag", [None])[0])
            m = NOTE_PATH.match(path)
            if m:
                note_id, sub = m.group(1), m.group(2)
                if sub == "/attachments" and method == "POST":
                    return self.attach(note_id)
                if sub == "/export" and method == "GET":
                    return self.export(note_id)
                if sub == "/share" and method == "POST":
                    return self.share(note_id, path)
                if sub is None and method == "GET":
                    return self.read(note_id)
                if sub is None and method == "PUT":
                    return self.update(note_id)
                if sub is None and method == "DELETE":
                    return self.delete(note_id)
            raise Problem(404, f"no route {method} {path}")

        def login(self):
            body = self.read_json()
            name = body.get("user")
            account = USERS.get(name)
            if not account or not hmac.compare_digest(str(body.get("password", "")), account["password"]):
                raise Problem(401, "wrong user or password")
            profile = state.directory.call("GET", f"/users/{quote(name)}")
            session = secrets.token_hex(16)
            with state.lock:
                state.sessions[session] = name
            self.send_json(200, {"session": session, "user": {"name": name, "display": profile["display"]}})

        def me(self):
            user, _ = self.user()
            profile = state.directory.call("GET", f"/users/{quote(user)}")
            out = {"name": user, "display": profile["display"], "plan": profile["plan"], "quota": profile["quota"]}
            if state.has("missing-field"):
                del out["quota"]
            self.send_json(200, out)

        def create(self):
            user, _ = self.user()
            body = self.read_json()
            title = str(body.get("title", "")).strip()
            if not title:
                raise Problem(400, "a note needs a title")
            tags = [str(t) for t in body.get("tags", [])]
            profile = state.directory.call("GET", f"/users/{quote(user)}")
            with state.lock:
                mine = sum(1 for n in state.notes.values() if n["owner"] == user)
            if mine >= profile["quota"]:
                raise Problem(409, "quota reached")
            if tags:
                check = state.directory.call("GET", f"/tags?names={quote(','.join(tags))}")
                if check["unknown"]:
                    raise Problem(400, f"unknown tags: {', '.join(check['unknown'])}")
            note = {
                "id": secrets.token_hex(8),
                "owner": user,
                "title": title,
                "body": str(body.get("body", "")),
                "tags": tags,
                "version": 1,
                "created": now_iso(),
            }
            with state.lock:
                if len(state.notes) >= MAX_NOTES:
                    state.notes.pop(next(iter(state.notes)))
                state.notes[note["id"]] = note
            self.audit("note.created", user, note["id"])
            out = {k: note[k] for k in ("id", "title", "tags", "version", "created")}
            self.send_json(200 if state.has("changed-status") else 201, out)

        def list(self, tag):
            user, _ = self.user()
            with state.lock:
                mine = [n for n in state.notes.values() if n["owner"] == user and (tag is None or tag in n["tags"])]
            if state.has("dropped-item") and mine:
                mine = mine[1:]
            if state.has("slow"):
                time.sleep(0.15)
            self.send_json(200, {"notes": [{"id": n["id"], "title": n["title"]} for n in mine], "count": len(mine)})

        def read(self, note_id):
            user, _ = self.user()
            note = self.note_of(user, note_id)
            if state.has("error-burst") and state.rng.random() < 0.2:
                raise Problem(500, "storage hiccup")
            owner = USERS[user]["display"] if state.has("changed-field") else user
            out = {
                "id": note["id"],
                "title": note["title"],
                "body": note["body"],
                "tags": note["tags"],
                "owner": owner,
                "version": note["version"],
                "words": len(note["body"].split()),
            }
            cache = "public, max-age=60" if state.has("changed-header") else "private, no-store"
            self.send_json(200, out, {"Cache-Control": cache})

        def update(self, note_id):
            user, _ = self.user()
            body = self.read_json()
            note = self.note_of(user, note_id)
            profile = state.directory.call("GET", f"/users/{quote(user)}")
            if state.has("extra-call"):
                profile = state.directory.call("GET", f"/users/{quote(user)}")
            if profile["plan"] == "free" and "tags" in body:
                raise Problem(403, "tags need a paid plan")
            with state.lock:
                for k in ("title", "body", "tags"):
                    if k in body:
                        note[k] = body[k]
                note["version"] += 1
            self.audit("note.updated", user, note_id)
            self.send_json(200, {"id": note_id, "version": note["version"]})

        def attach(self, note_id):
            # Answers at once and leaves the upload unread: fine when the client closes the
            # connection after each request (as the recorded one does); on a reused connection
            # the unread bytes are read as the next request.
            # (The answer does not echo the upload's size: bytes the service never reads are not
            # captured either, so a recording may hold only part of the body or none of it.)
            user, _ = self.user()
            self.note_of(user, note_id)
            self.send_json(202, {"note": note_id, "queued": True})

        def delete(self, note_id):
            user, _ = self.user()
            self.note_of(user, note_id)
            with state.lock:
                state.notes.pop(note_id, None)
            self.audit("note.deleted", user, note_id)
            self.send_json(204, None)

        def stats(self):
            user, _ = self.user()
            with state.lock:
                mine = [n for n in state.notes.values() if n["owner"] == user]
            words = sum(len(n["body"].split()) for n in mine)
            tags = len({t for n in mine for t in n["tags"]})
            self.send_json(200, {"notes": len(mine), "words": str(words) if state.has("type-change") else words, "tags": tags})

        def export(self, note_id):
            user, _ = self.user()
            self.note_of(user, note_id)
            ticket = secrets.randbelow(900_000) + 100_000
            rendered = state.directory.call("POST", "/render", {"note_id": note_id, "ticket": ticket})
            self.send_json(200, {"url": rendered["url"], "pages": rendered["pages"]})

        def share(self, note_id, path):
            user, session = self.user()
            self.note_of(user, note_id)
            want = hmac.new(session.encode(), f"POST {path}".encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(self.headers.get("X-Proof") or "", want):
                raise Problem(401, "bad proof")
            self.send_json(200, {"link": f"/s/{hashlib.sha256(note_id.encode()).hexdigest()[:12]}"})

    return Handler


def main():
    ap = argparse.ArgumentParser(description="notes: retap's second example service")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--variant", default="", help="seeded regressions: a comma list or 'all'")
    ap.add_argument("--list-variants", action="store_true", help="print the variants as JSON and exit")
    args = ap.parse_args()
    if args.list_variants:
        print(json.dumps({"regressions": REGRESSIONS, "broken": BROKEN}, indent=2))
        return 0
    try:
        variants = parse(args.variant)
    except ValueError as e:
        print(f"notes: {e}", file=sys.stderr)
        return 64
    missing = [k for k in ("DIRECTORY_URL", "AUDIT_URL") if not os.environ.get(k)]
    if missing:
        print(f"notes: set {' and '.join(missing)} (see examples/notes/README.md)", file=sys.stderr)
        return 64
    state = State(variants, Downstream(os.environ["DIRECTORY_URL"]), Downstream(os.environ["AUDIT_URL"]))
    server = http.server.ThreadingHTTPServer((args.host, args.port), make_handler(state))
    server.daemon_threads = True
    print(f"notes listening {server.server_address[1]}" + (f" variants {','.join(sorted(variants))}" if variants else ""), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
