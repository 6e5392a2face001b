"""Ordinary client traffic for httpbin, the way a Python client talks to an HTTP API: three
python-requests sessions (keep-alive), their calls interleaved, including requests with Basic
credentials the client holds before any answer.

    python3 traffic.py --url http://127.0.0.1:8000 [--rounds 5]
    python3 traffic.py --credentials     # the Basic credentials it sends, as JSON

Prints the statuses as JSON; exit code 1 when one is not the expected one.
"""

import argparse
import json
import sys

import requests

BASIC = ("alice", "wonder-l4nd")


def calls(base, n):
    """The n-th kind of call (of 12): (method, url, kwargs, expected status)."""
    kind = n % 12
    user, password = BASIC
    return [
        ("GET", f"{base}/get?page={n}&q=retap", {}, 200),
        ("POST", f"{base}/post", {"json": {"n": n, "items": [1, 2, 3], "note": "hello"}}, 200),
        ("GET", f"{base}/headers", {"headers": {"X-Trace": f"t-{n}"}}, 200),
        ("GET", f"{base}/basic-auth/{user}/{password}", {"auth": BASIC}, 200),
        ("PUT", f"{base}/put", {"data": {"field": f"v{n}", "other": "x"}}, 200),
        ("GET", f"{base}/json", {}, 200),
        ("PATCH", f"{base}/patch", {"data": f"patch-{n}", "headers": {"Content-Type": "text/plain"}}, 200),
        ("GET", f"{base}/status/201", {}, 201),
        ("DELETE", f"{base}/delete?id={n}", {}, 200),
        ("GET", f"{base}/anything/orders/{1000 + n}", {"params": {"expand": "lines"}}, 200),
        ("GET", f"{base}/response-headers?X-Tier=gold&n={n}", {}, 200),
        ("GET", f"{base}/redirect-to?url=/get%3Ffrom%3Dredirect", {"allow_redirects": False}, 302),
    ][kind]


def main():
    ap = argparse.ArgumentParser(description="client traffic for httpbin")
    ap.add_argument("--url")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of 12 calls over 3 sessions (60 calls by default)")
    ap.add_argument("--credentials", action="store_true", help="print the Basic credentials as JSON and exit")
    args = ap.parse_args()
    if args.credentials:
        print(json.dumps({"user": BASIC[0], "password": BASIC[1]}))
        return 0
    if not args.url:
        ap.error("--url is required")
    sessions = [requests.Session() for _ in range(3)]
    statuses, unexpected = [], []
    for step in range(args.rounds * 4):
        for s, sess in enumerate(sessions):
            # each session walks through every kind of call, from its own starting point
            method, url, kw, want = calls(args.url, step + 4 * s)
            res = sess.request(method, url, timeout=10, **kw)
            statuses.append(res.status_code)
            if res.status_code != want:
                unexpected.append(f"{method} {url}: {res.status_code} (expected {want})")
    print(json.dumps({"requests": len(statuses), "unexpected": unexpected}))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
