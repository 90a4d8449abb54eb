"""The smallest useful Flask app, served on IIS by iiswsgi.

Run it locally without IIS:  python -m flask --app hello run
"""

from flask import Flask, Response, request

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask on IIS!\n"


@app.post("/echo")
def echo():
    """Returns the request body unchanged (exercises wsgi.input)."""
    return Response(request.get_data(), mimetype=request.mimetype or "application/octet-stream")


@app.get("/stream")
def stream():
    """Streams ten lines one by one (exercises responseBufferLimit="0")."""

    def lines():
        for i in range(10):
            yield f"line {i}\n"

    return Response(lines(), mimetype="text/plain")


@app.get("/whoami")
def whoami():
    """The mount point and path as the WSGI server reported them."""
    return {
        "script_name": request.environ.get("SCRIPT_NAME", ""),
        "path_info": request.environ.get("PATH_INFO", ""),
        "scheme": request.environ.get("wsgi.url_scheme", ""),
    }
