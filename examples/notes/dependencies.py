"""The two dependencies of the notes service, in one process (Python, standard library only):

  directory (plain HTTP)   GET /users/{name}, GET /tags?names=a,b, POST /render
  audit     (HTTPS)        POST /events

    python3 dependencies.py --cert-dir DIR

makes a throwaway certificate for localhost in DIR (with the openssl command), listens on free
ports of 127.0.0.1 and prints one JSON line with the environment the service needs:
  {"DIRECTORY_URL": "http://localhost:P", "AUDIT_URL": "https://localhost:Q", "SSL_CERT_FILE": "DIR/cert.pem"}
It stops on SIGTERM or Ctrl-C; with --watch-stdin also when its standard input closes (so a
test's dependencies never outlive the test).
"""

import argparse
import http.server
import itertools
import json
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import threading
from urllib.parse import parse_qs, unquote, urlsplit

PEOPLE = {
    "ana": {"display": "Ana Lima", "plan": "team", "quota": 50},
    "ben": {"display": "Ben Okafor", "plan": "free", "quota": 5},
    "chloe": {"display": "Chloé Martin", "plan": "team", "quota": 50},
    "dev": {"display": "Dev Patel", "plan": "pro", "quota": 500},
}
TAGS = {"work", "home", "ideas", "travel", "reading", "todo"}


class JsonHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_json(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else {}


class Directory(JsonHandler):
    server_version = "directory/2.3"

    def do_GET(self):
        url = urlsplit(self.path)
        m = re.fullmatch(r"/users/([^/]+)", url.path)
        if m:
            person = PEOPLE.get(unquote(m.group(1)))
            if not person:
                return self.send_json(404, {"error": "no such user"})
            return self.send_json(200, {"name": unquote(m.group(1)), **person})
        if url.path == "/tags":
            names = [n for n in (parse_qs(url.query).get("names", [""])[0]).split(",") if n]
            return self.send_json(200, {"valid": [n for n in names if n in TAGS], "unknown": [n for n in names if n not in TAGS]})
        self.send_json(404, {"error": "no route"})

    def do_POST(self):
        if urlsplit(self.path).path == "/render":
            req = self.body()
            return self.send_json(200, {"url": f"/exports/{req.get('note_id')}-{req.get('ticket')}.pdf", "pages": 1 + int(req.get("ticket", 0)) % 3})
        self.send_json(404, {"error": "no route"})


class Audit(JsonHandler):
    server_version = "audit/1.0"
    seq = itertools.count(1)

    def do_POST(self):
        if urlsplit(self.path).path == "/events":
            event = self.body()
            return self.send_json(201, {"accepted": True, "seq": next(Audit.seq), "kind": event.get("kind")})
        self.send_json(404, {"error": "no route"})


def make_cert(folder):
    os.makedirs(folder, exist_ok=True)
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return cert, key


def main():
    ap = argparse.ArgumentParser(description="the notes service's dependencies")
    ap.add_argument("--cert-dir", required=True, help="folder for the throwaway certificate")
    ap.add_argument("--watch-stdin", action="store_true", help="stop when standard input closes")
    args = ap.parse_args()
    cert, key = make_cert(args.cert_dir)
    directory = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Directory)
    audit = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Audit)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    audit.socket = ctx.wrap_socket(audit.socket, server_side=True)
    for s in (directory, audit):
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    env = {
        "DIRECTORY_URL": f"http://localhost:{directory.server_address[1]}",
        "AUDIT_URL": f"https://localhost:{audit.server_address[1]}",
        "SSL_CERT_FILE": cert,
    }
    print(json.dumps(env), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.watch_stdin:
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
