"""An app whose import fails until a file named `dependency-installed` appears next to it:
iiswsgi must answer 503 meanwhile, stay alive, and pick the app up on a later retry."""

import os

if not os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "dependency-installed")):
    raise ImportError("the dependency is not installed yet")


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"loaded at last"]
