"""Runs Microsoft's wfastcgi 3.0.0 (from PyPI) on Linux for bench/wsgi_peers.rs.

wfastcgi binds kernel32 functions through ctypes.windll at import time (only its file watcher
and exit path use them). Inert stand-ins make the import succeed; the watcher is disabled by
the Web.config the bench writes (WSGI_RESTART_FILE_REGEX=""). Its request loop is unchanged: it
reads FastCGI records from stdin and writes replies to the same descriptor, as under IIS.
"""

import ctypes
import sys
import types


class _Inert:
    """A kernel32 function: accepts argtypes/restype, returns 0 when called."""

    argtypes = None
    restype = None

    def __call__(self, *args):
        return 0


class _Kernel32:
    def __getattr__(self, name):
        fn = _Inert()
        setattr(self, name, fn)
        return fn


ctypes.windll = types.SimpleNamespace(kernel32=_Kernel32())

import wfastcgi  # noqa: E402

sys.exit(wfastcgi.main())
