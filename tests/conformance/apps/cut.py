"""Responses that fail after their headers went out (issue 16): the web server in front must
not pass them on to the client as complete.

/ok          a complete 200
/stream      no Content-Length (chunked to the client): 128 KiB, then an exception
/length      Content-Length 256 KiB: 128 KiB, then an exception
"""

import time

CHUNK = b"x" * 65536


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/ok":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "8")])
        return [b"complete"]
    headers = [("Content-Type", "application/octet-stream")]
    if path == "/length":
        headers.append(("Content-Length", str(4 * len(CHUNK))))
    start_response("200 OK", headers)
    return fail_midway()


def fail_midway():
    yield CHUNK
    yield CHUNK
    # As a real failure comes: after what was sent has left, not in the same breath. Without
    # the pause lighttpd (stream-response-body = 2) sometimes read the body and the end
    # together and finished the response as if whole (1 run in about 11).
    time.sleep(0.05)
    raise RuntimeError("the database went away mid-response")
