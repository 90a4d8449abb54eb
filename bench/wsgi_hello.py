"""The app every peer serves in bench/wsgi_peers.rs: hello world, an upload echo and a 16 MiB
stream. Routes match on the end of PATH_INFO because peers split SCRIPT_NAME differently
(wfastcgi puts the whole URL in PATH_INFO)."""

HELLO = b"Hello, World!"
CHUNK = b"s" * 65536


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.endswith("/echo"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(length)
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(data)))])
        return [data]
    if path.endswith("/stream"):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (CHUNK for _ in range(256))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [HELLO]
