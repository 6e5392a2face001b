"""httpbin with one changed answer: GET /json answers another slideshow title. Everything else
is httpbin as installed from PyPI. Serve it as gunicorn serves httpbin:

    gunicorn -w 3 --pythonpath examples/httpbin changed_app:app
"""

import json

from httpbin import app as httpbin


def app(environ, start_response):
    if environ.get("PATH_INFO") != "/json":
        return httpbin(environ, start_response)
    captured = {}

    def keep(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda _data: None

    body = b"".join(httpbin(environ, keep))
    doc = json.loads(body)
    doc["slideshow"]["title"] = "Sample Slide Show (revised)"
    body = json.dumps(doc, indent=2).encode() + b"\n"
    headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
    start_response(captured["status"], headers + [("Content-Length", str(len(body)))])
    return [body]
