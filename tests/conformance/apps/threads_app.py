"""`iiswsgi run --threads N`: which thread serves a request, per-thread state, slow requests.

Every response is JSON describing the serving thread:
- `/slow?S` prints `sleeping: /slow S`, then sleeps S seconds (the GIL is released while
  sleeping) before answering;
- `/local` counts requests in a `threading.local` (per worker thread) next to a global count;
- `/fail?S` prints and sleeps as `/slow` does, then raises (the gateway answers 500);
- `/exit` raises SystemExit (the gateway answers 500, then the process exits);
- anything else answers at once.
"""

import json
import threading
import time

LOCAL = threading.local()
LOCK = threading.Lock()
TOTAL = [0]


def application(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path in ("/slow", "/fail"):
        # Logged (stdout goes to the gateway log) so a test can tell the request is running.
        print("sleeping:", path, query, flush=True)
        time.sleep(float(query or "0.3"))
    if path == "/exit":
        raise SystemExit(0)
    if path == "/fail":
        raise RuntimeError("this request fails on purpose")
    LOCAL.count = getattr(LOCAL, "count", 0) + 1
    with LOCK:
        TOTAL[0] += 1
        total = TOTAL[0]
    body = json.dumps({
        "ident": threading.get_ident(),
        "thread": threading.current_thread().name,
        "main": threading.current_thread() is threading.main_thread(),
        "multithread": environ["wsgi.multithread"],
        "multiprocess": environ["wsgi.multiprocess"],
        "local_count": LOCAL.count,
        "total": total,
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
