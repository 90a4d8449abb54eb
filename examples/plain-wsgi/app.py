"""A WSGI application with the standard library only (PEP 3333, no framework).

Run it locally without IIS:  python app.py   (then open http://127.0.0.1:8000/)
"""

import json


def application(environ, start_response):
    path = environ.get("PATH_INFO", "") or "/"
    if path == "/":
        body = b"Hello from plain WSGI on IIS!\n"
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/environ":
        keys = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
                "SERVER_PROTOCOL", "wsgi.url_scheme")
        body = json.dumps({k: str(environ.get(k, "")) for k in keys}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    body = b"not found\n"
    start_response("404 Not Found", [("Content-Type", "text/plain"),
                                     ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    with make_server("127.0.0.1", 8000, application) as server:
        print("serving on http://127.0.0.1:8000/")
        server.serve_forever()
