"""PEP 3333 conformance scenarios for iiswsgi (wsgi-embedding.md section 7).

``application`` routes by PATH_INFO: ``/<scenario>/<args...>`` runs the scenario wrapped in
``wsgiref.validate.validator`` (a fresh wrapper per request, WSGIWarning turned into an error),
so any validator complaint becomes a 500 plus a traceback in the log and the test fails;
``/raw/<scenario>/<args...>`` runs it unwrapped, for items the validator would reject before
the gateway sees them (bad statuses and headers) or hides (``len()``, ``FileWrapper``), and for
bare ``read()``, which the validator's input wrapper refuses.

Scenarios that report environ facts answer JSON. ``STATE`` counts close() calls, generator
clean-ups and closed files across the requests of one process; ``/state`` reports it.
"""

import hashlib
import io
import json
import os
import sys
import time
import warnings
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)

SCENARIOS = {}
STATE = {"closed": 0, "finally": 0}
TEXT = [("Content-Type", "text/plain")]


def scenario(fn):
    SCENARIOS[fn.__name__.replace("_", "-")] = fn
    return fn


def route(environ):
    parts = environ.get("PATH_INFO", "").split("/")[1:]
    unwrapped = parts[:1] == ["raw"]
    if unwrapped:
        parts = parts[1:]
    environ["conformance.args"] = parts[1:]
    return SCENARIOS.get(parts[0] if parts else "", not_found), unwrapped


def application(environ, start_response):
    app, unwrapped = route(environ)
    if unwrapped:
        return app(environ, start_response)
    return validator(app)(environ, start_response)


def arg(environ, n=0):
    args = environ["conformance.args"]
    return args[n] if len(args) > n else ""


def not_found(environ, start_response):
    body = json.dumps({"SCRIPT_NAME": environ["SCRIPT_NAME"], "PATH_INFO": environ["PATH_INFO"]})
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [body.encode()]


def answer(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json")])
    return [body]


def body_length(environ):
    return int(environ.get("CONTENT_LENGTH") or 0)


class Closing:
    """An iterable with close(), counting calls."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def close(self):
        STATE["closed"] += 1


def generate(items, fail_at=None, delay=0.0):
    try:
        for i, item in enumerate(items):
            if fail_at is not None and i == fail_at:
                raise ValueError("generator failed on purpose")
            if delay:
                time.sleep(delay)
            yield item
    finally:
        STATE["finally"] += 1


# --- environ (items 1-13) ---------------------------------------------------------------


@scenario
def hello(environ, start_response):
    start_response("200 OK", TEXT)
    return [b"Hello, World!"]


@scenario
def state(environ, start_response):
    return answer(start_response, STATE)


@scenario
def env(environ, start_response):
    keys = [
        "REQUEST_METHOD", "SERVER_NAME", "SERVER_PORT", "QUERY_STRING", "SCRIPT_NAME",
        "PATH_INFO", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_CONTENT_TYPE",
        "HTTP_CONTENT_LENGTH", "HTTP_X_T", "HTTP_X_CUSTOM_HEADER", "HTTP_X_A", "HTTP_COOKIE",
        "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
        "wsgi.input_terminated",
    ]
    facts = {k: environ[k] for k in keys if k in environ}
    facts["present"] = {k: k in environ for k in keys}
    facts["wsgi.version"] = list(environ["wsgi.version"])
    facts["is_dict"] = type(environ) is dict
    facts["non_str"] = sorted(k for k, v in environ.items() if "." not in k and type(v) is not str)
    facts["bool_types"] = all(
        type(environ[k]) is bool for k in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once")
    )
    return answer(start_response, facts)


# --- wsgi.input (items 14-25) ------------------------------------------------------------


@scenario
def shape(environ, start_response):
    i, e = environ["wsgi.input"], environ["wsgi.errors"]
    return answer(start_response, {
        "input": [hasattr(i, m) for m in ("read", "readline", "readlines", "__iter__")],
        "errors": [hasattr(e, m) for m in ("write", "writelines", "flush")],
    })


@scenario
def echo(environ, start_response):
    data = environ["wsgi.input"].read(body_length(environ))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [data]


def script(environ, steps):
    """Runs read steps on wsgi.input unwrapped; returns their results as hex/str."""
    i = environ["wsgi.input"]
    out = []
    for step in steps:
        try:
            result = step(i)
        except Exception as exc:
            out.append("%s: %s" % (type(exc).__name__, exc))
            continue
        if isinstance(result, list):
            out.append([r.decode("latin-1") for r in result])
        else:
            out.append(result.decode("latin-1"))
    return out


READS = {
    "all": [lambda i: i.read()],
    "split": [lambda i: i.read(10), lambda i: i.read()],
    "zero": [lambda i: i.read(0), lambda i: i.read(-1)],
    "none": [lambda i: i.read(None)],
    "eof": [lambda i: i.read(), lambda i: i.read(), lambda i: i.read(5), lambda i: i.readline(),
            lambda i: i.readline()],
    "lines": [lambda i: i.readline(), lambda i: i.readline(), lambda i: i.readline(),
              lambda i: i.readline()],
    "line5": [lambda i: i.readline(5), lambda i: i.readline(5), lambda i: i.readline(5),
              lambda i: i.readline(5)],
    "readlines": [lambda i: i.readlines()],
    "readlines1": [lambda i: i.readlines(1), lambda i: i.read()],
    "iterate": [lambda i: list(i)],
}


@scenario
def reads(environ, start_response):
    which = arg(environ)
    return answer(start_response, script(environ, READS[which]))


@scenario
def read7(environ, start_response):
    i = environ["wsgi.input"]
    chunks = []
    while True:
        c = i.read(7)
        if not c:
            break
        chunks.append(c)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [b"".join(chunks)]


@scenario
def sha(environ, start_response):
    i = environ["wsgi.input"]
    h = hashlib.sha256()
    n = 0
    while True:
        c = i.read(65536)
        if not c:
            break
        h.update(c)
        n += len(c)
    return answer(start_response, {"length": n, "sha256": h.hexdigest()})


@scenario
def chunked(environ, start_response):
    data = environ["wsgi.input"].read()
    return answer(start_response, {
        "content_length_present": "CONTENT_LENGTH" in environ,
        "terminated": environ["wsgi.input_terminated"] is True,
        "length": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    })


@scenario
def short(environ, start_response):
    # Tells a test that the app runs (so its client may die now).
    print("short: reading the body", flush=True)
    try:
        environ["wsgi.input"].read()
        outcome = "no error"
    except ConnectionError as exc:
        outcome = "ConnectionError"
        print("short body:", exc, file=sys.stderr)
    return answer(start_response, {"read": outcome})


@scenario
def too_large(environ, start_response):
    start_response("413 Payload Too Large", TEXT)
    return [b"too large\n"]


# --- start_response and write() (items 26-40) ------------------------------------------


@scenario
def teapot(environ, start_response):
    start_response("418 I'm a teapot", TEXT)
    return [b"short and stout"]


BAD_STATUS = {
    "ok": "OK", "two-digits": "20 OK", "four-digits": "2000 OK", "int": 200,
    "bytes": b"200 OK", "crlf": "200 OK\r\nX-Injected: 1",
}


@scenario
def bad_status(environ, start_response):
    start_response(BAD_STATUS[arg(environ)], TEXT)
    return [b"should not be sent"]


BAD_HEADERS = {
    "tuple": (("Content-Type", "text/plain"),),
    "lists": [["Content-Type", "text/plain"]],
    "bytes-name": [(b"Content-Type", "text/plain")],
    "status": [("Status", "200 OK")],
    "space": [("X Bad", "v")],
    "colon": [("X:Bad", "v")],
    "crlf": [("X-Bad", "v\r\nX-Injected: 1")],
    "lf": [("X-Bad", "v\nX-Injected: 1")],
    "nul": [("X-Bad", "v\x00")],
    "euro": [("X-Bad", "\u20ac")],
    "connection": [("Connection", "close")],
    "keep-alive": [("Keep-Alive", "timeout=5")],
    "transfer-encoding": [("Transfer-Encoding", "chunked")],
    "upgrade": [("Upgrade", "websocket")],
    "te": [("TE", "trailers")],
    "trailer": [("Trailer", "X")],
}


@scenario
def bad_header(environ, start_response):
    start_response("200 OK", BAD_HEADERS[arg(environ)])
    return [b"should not be sent"]


@scenario
def latin1(environ, start_response):
    start_response("200 OK", TEXT + [("X-Latin", "caf\u00e9")])
    return [b"ok"]


@scenario
def many_headers(environ, start_response):
    headers = TEXT + [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    headers += [("X-Custom-%d" % i, str(i)) for i in range(25)]
    start_response("200 OK", headers)
    return [b"ok"]


@scenario
def twice(environ, start_response):
    start_response("200 OK", TEXT)
    start_response("201 Created", TEXT)
    return [b"second call accepted?"]


@scenario
def twice_after_write(environ, start_response):
    write = start_response("200 OK", TEXT)
    write(b"pre-")
    try:
        start_response("500 Oops", TEXT)
    except RuntimeError:
        write(b"err")
    return [b"!"]


@scenario
def replace(environ, start_response):
    start_response("200 OK", TEXT + [("X-Before", "1")])
    try:
        raise ValueError("changed my mind")
    except ValueError:
        start_response("418 I'm a teapot", TEXT + [("X-After", "1")], sys.exc_info())
    return [b"replaced"]


@scenario
def reraise(environ, start_response):
    write = start_response("200 OK", TEXT)
    write(b"sent")
    err = ValueError("original")
    try:
        raise err
    except ValueError:
        try:
            start_response("500 Oops", TEXT, sys.exc_info())
        except ValueError as again:
            write(b"-same" if again is err else b"-different")
    return [b""]


@scenario
def bad_exc_info(environ, start_response):
    try:
        start_response("200 OK", TEXT, "x")
    except (TypeError, AssertionError):
        start_response("200 OK", TEXT)
        return [b"caught"]
    return [b"accepted"]


@scenario
def lazy(environ, start_response):
    def body():
        start_response("201 Created", TEXT)
        yield b"made lazily"
    return body()


@scenario
def write_then_iter(environ, start_response):
    write = start_response("200 OK", TEXT)
    write(b"via-write-")
    return [b"via-iter"]


@scenario
def interleave(environ, start_response):
    write = start_response("200 OK", TEXT)

    def body():
        write(b"1")
        yield b"2"
        write(b"3")
        yield b"4"
    return body()


@scenario
def write_str(environ, start_response):
    write = start_response("200 OK", TEXT)
    write("str")
    return [b""]


@scenario
def no_start(environ, start_response):
    return [b"orphan"]


# --- iterables and close() (items 41-50) -------------------------------------------------


@scenario
def items(environ, start_response):
    kind = arg(environ)
    start_response("200 OK", TEXT)
    if kind == "list":
        return [b"a", b"b", b"c"]
    if kind == "tuple":
        return (b"a", b"b", b"c")
    if kind == "gen100":
        return generate([b"%d," % i for i in range(100)])
    if kind == "empty-list":
        return []
    if kind == "empty-gen":
        return generate([])
    if kind == "one":
        return [b"single"]
    if kind == "two":
        return [b"first,", b"second"]
    if kind == "closing":
        return Closing([b"one", b"two"])
    raise KeyError(kind)


@scenario
def raise_before(environ, start_response):
    try:
        raise KeyError("inner cause")
    except KeyError as exc:
        raise RuntimeError("outer failure") from exc


@scenario
def raise_after(environ, start_response):
    start_response("200 OK", TEXT)
    return generate([b"before-", b"after"], fail_at=1)


@scenario
def str_item(environ, start_response):
    start_response("200 OK", TEXT)
    if arg(environ) == "later":
        return generate([b"first", "second"])
    return ["text"]


@scenario
def returns(environ, start_response):
    start_response("200 OK", TEXT)
    return b"x" if arg(environ) == "bytes" else "x"


@scenario
def slow(environ, start_response):
    start_response("200 OK", TEXT)
    return generate([b"x" * 1024 for _ in range(200)], delay=0.02)


@scenario
def system_exit(environ, start_response):
    raise SystemExit(3)


# --- Content-Length and HEAD (items 51-56) -----------------------------------------------


@scenario
def length(environ, start_response):
    kind = arg(environ)
    if kind == "exact":
        start_response("200 OK", TEXT + [("Content-Length", "6")])
        return [b"ab", b"cdef"]
    if kind == "short":
        start_response("200 OK", TEXT + [("Content-Length", "5")])
        return generate([b"0123456789", b"0123456789"])
    if kind == "short-write":
        write = start_response("200 OK", TEXT + [("Content-Length", "5")])
        write(b"0123456789")
        return []
    if kind == "long":
        start_response("200 OK", TEXT + [("Content-Length", "100")])
        return generate([b"only this"])
    if kind == "abc":
        start_response("200 OK", TEXT + [("Content-Length", "abc")])
        return [b"x"]
    if kind == "two":
        start_response("200 OK", TEXT + [("Content-Length", "1"), ("Content-Length", "2")])
        return [b"x"]
    raise KeyError(kind)


@scenario
def head(environ, start_response):
    start_response("200 OK", TEXT)
    return Closing([b"body that HEAD must not send"])


@scenario
def no_content(environ, start_response):
    code = arg(environ)
    if code == "204":
        start_response("204 No Content", [])
    else:
        start_response("304 Not Modified", [("ETag", '"v1"')])
    return [b"must not be sent"]


# --- wsgi.file_wrapper (items 57-61) -----------------------------------------------------


def fixture_path():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixture-2700.bin")


class TrackedFile(io.FileIO):
    def close(self):
        STATE["files_closed"] = STATE.get("files_closed", 0) + 1
        super().close()


class RawReader(io.RawIOBase):
    def __init__(self, data):
        self.data, self.pos = data, 0
        STATE["raw_sizes"] = []

    def readable(self):
        return True

    def read(self, n=-1):
        STATE["raw_sizes"].append(n)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


@scenario
def file(environ, start_response):
    kind = arg(environ)
    wrap = environ["wsgi.file_wrapper"]
    size = os.path.getsize(fixture_path())
    if kind == "whole":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return wrap(TrackedFile(fixture_path(), "r"))
    if kind == "after-readline":
        f = open(fixture_path(), "rb")
        f.readline()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return wrap(f)
    if kind == "short-cl":
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "10")])
        return wrap(open(fixture_path(), "rb"))
    if kind == "long-cl":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size + 5))])
        return wrap(open(fixture_path(), "rb"))
    if kind == "bytesio":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return wrap(io.BytesIO(open(fixture_path(), "rb").read()), 1000)
    if kind == "raw":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return wrap(RawReader(open(fixture_path(), "rb").read()), 333)
    raise KeyError(kind)


# --- large responses, wsgi.errors, stdio (items 62-65) -----------------------------------


@scenario
def big(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [bytes(range(256)) * 4096]


@scenario
def stream(environ, start_response):
    mib = int(arg(environ))
    chunk = b"s" * 65536
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (chunk for _ in range(mib * 16))


@scenario
def errors(environ, start_response):
    environ["wsgi.errors"].write("msg from wsgi.errors\n")
    environ["wsgi.errors"].flush()
    try:
        environ["wsgi.errors"].write(b"x")
        refused = False
    except TypeError:
        refused = True
    print("printed to stdout")
    print("printed to stderr", file=sys.stderr)
    return answer(start_response, {"bytes_refused": refused, "stdin": sys.stdin.read()})
