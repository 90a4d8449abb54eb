"""A Flask app exercising what a real site needs behind iiswsgi: routing under a sub-application
path, a form, a file upload, redirects, static files, 404 and 500 pages."""

import hashlib

from flask import Flask, abort, redirect, request, url_for

app = Flask(__name__, static_folder="static")


@app.get("/")
def index():
    return "flask index\n"


@app.route("/form", methods=["GET", "POST"])
def form():
    if request.method == "GET":
        return '<form method="post"><input name="name"><input name="n"></form>'
    return "Hello %s, n=%s\n" % (request.form["name"], request.form.get("n", "?"))


@app.post("/upload")
def upload():
    f = request.files["file"]
    data = f.read()
    return {
        "filename": f.filename,
        "length": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "comment": request.form.get("comment", ""),
    }


@app.get("/go")
def go():
    return redirect(url_for("target"))


@app.get("/target")
def target():
    return {"script_root": request.script_root, "path": request.path, "url": request.url}


@app.get("/boom")
def boom():
    raise RuntimeError("flask view failed on purpose")


@app.get("/gone")
def gone():
    abort(410)
