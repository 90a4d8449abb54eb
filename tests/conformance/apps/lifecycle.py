"""Start-up and shutdown behaviour of iiswsgi: environment facts, slow requests, SystemExit.

At import it registers an atexit handler (writing the file named by IISWSGI_TEST_ATEXIT) and
installs a Python SIGTERM handler that ignores the signal: the gateway must restore its own
handler after the import, so SIGTERM still stops the process gracefully. `/crash` dies of a
segmentation fault, as a broken C extension would.
"""

import atexit
import ctypes
import json
import os
import signal
import sys
import threading
import time

MARKER = os.environ.get("IISWSGI_TEST_ATEXIT")
if MARKER:
    def _at_exit():
        with open(MARKER, "w") as f:
            f.write("atexit ran")
    atexit.register(_at_exit)

signal.signal(signal.SIGTERM, lambda signum, frame: None)
IMPORT_THREAD = threading.current_thread().name


def crash_like_a_broken_c_extension():
    # A real NULL read. (`faulthandler._sigsegv()` only raise()s the signal: once Rust's
    # stack-overflow handler, next in the chain, has reset it to the default, execution simply
    # continues.)
    ctypes.string_at(0)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/crash":
        crash_like_a_broken_c_extension()
    if path == "/facts":
        try:
            import iiswsgi_marker
            marker = iiswsgi_marker.VALUE
        except ImportError:
            marker = None
        body = json.dumps({
            "prefix": os.path.realpath(sys.prefix),
            "executable": sys.executable,
            "version": "%d.%d" % sys.version_info[:2],
            "marker": marker,
            "argv": sys.argv,
            "import_thread": IMPORT_THREAD,
            "request_on_main_thread": threading.current_thread() is threading.main_thread(),
            "cwd": os.getcwd(),
            "path0": sys.path[0],
            "from_manifest": os.environ.get("IISWSGI_FROM_MANIFEST"),
            "full_version": sys.version.split()[0],
            "optimize": sys.flags.optimize,
            "no_user_site": sys.flags.no_user_site,
            "fs_encoding": sys.getfilesystemencoding(),
            "env": {k: os.environ.get(k) for k in (
                "PYTHONHOME", "PYTHONOPTIMIZE", "PYTHONNOUSERSITE", "LD_LIBRARY_PATH",
                "IISWSGI_LIBPYTHON", "IISWSGI_LIBPYTHON_TMP", "IISWSGI_ORIG_LD_LIBRARY_PATH")},
        })
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body.encode()]
    if path == "/slow":
        # Logged (stdout goes to the gateway log) so a test can tell the request is running.
        print("slow: sleeping", flush=True)
        time.sleep(float(environ["QUERY_STRING"] or "1"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slow done"]
    if path == "/exit":
        raise SystemExit(0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
