# The import probe of `iiswsgi check --import` and `iiswsgi doctor` (src/probe/mod.rs).
#
# Run by the app's own interpreter (the venv's python) in a child process, with the app folder
# as the working directory:  python -c <this file> <target> <app dir> [<python path>...]
# It imports `module:expression` as `iiswsgi run` would and writes ONE JSON object on the
# stdout it was given; everything the app prints while importing goes to stderr instead.
# The Rust side words the messages; this side only reports facts. Keep it runnable on every
# CPython 3 a venv may hold (3.8 and later): no match statements, no ast.unparse.

import ast
import importlib
import inspect
import json
import os
import sys
import traceback

MAX_NAMES = 40
MAX_TRACEBACK = 6000


def _result_stream():
    # Keep the real stdout for the result; point fd 1 (and sys.stdout) at stderr, so prints
    # and C-level writes of the app cannot corrupt the JSON.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def _tail(text):
    return text if len(text) <= MAX_TRACEBACK else "..." + text[-MAX_TRACEBACK:]


def _exception(exc):
    # The app's frames only: not importlib's (its __init__ and <frozen ...>) nor this script's
    # (<string>).
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<") and f.filename != importlib.__file__
    ]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    return {
        "exception": type(exc).__module__ + "." + type(exc).__qualname__
        if type(exc).__module__ not in ("builtins", "__main__")
        else type(exc).__qualname__,
        "message": str(exc),
        "traceback": _tail("".join(lines)),
    }


def _type_name(obj):
    t = type(obj)
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "function " + getattr(obj, "__module__", "?") + "." + getattr(obj, "__qualname__", "?")
    if inspect.isclass(obj):
        return "class " + obj.__module__ + "." + obj.__qualname__
    return t.__module__ + "." + t.__qualname__


def _signature(obj):
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


class TargetError(Exception):
    pass


def _dotted(node):
    # Name or Attribute chain -> ["a", "b"]
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise TargetError("expected a name such as `app` or `app.wsgi_app`")
    parts.append(node.id)
    return list(reversed(parts))


def parse_target(target):
    """`module:attr.path` or `module:factory(literal, key=literal)` -> (module, attrs, call)."""
    module, sep, expr = target.partition(":")
    if not sep or not module or not expr:
        raise TargetError("expected `module:callable`")
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as e:
        raise TargetError("`%s` is not a Python expression: %s" % (expr, e.msg))
    if isinstance(tree, ast.Call):
        attrs = _dotted(tree.func)
        try:
            args = [ast.literal_eval(a) for a in tree.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in tree.keywords}
        except ValueError:
            raise TargetError("the factory's arguments must be literals (strings, numbers, ...)")
        if any(k is None for k in kwargs):
            raise TargetError("`**` arguments are not allowed")
        return module, attrs, (args, kwargs)
    return module, _dotted(tree), None


def _imported_names(mod):
    # Names the module's own source binds by `import` / `from ... import` at the top level.
    try:
        with open(mod.__file__, "rb") as f:
            tree = ast.parse(f.read())
    except Exception:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
    return names


def _callables(mod):
    names = []
    imported = _imported_names(mod)
    for name, value in sorted(vars(mod).items()):
        if name.startswith("__") or inspect.ismodule(value) or not callable(value):
            continue
        if name in imported:
            continue
        # Skip what the module merely imported (classes and functions defined elsewhere),
        # but keep instances (app = Flask(...) is a flask.app.Flask defined elsewhere).
        if (inspect.isclass(value) or inspect.isfunction(value)) and getattr(
            value, "__module__", None
        ) != mod.__name__:
            continue
        names.append(name)
    return names[:MAX_NAMES]


def _is_async(obj):
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(type(obj), "__call__", None)
    return not inspect.isfunction(obj) and not inspect.isclass(obj) and inspect.iscoroutinefunction(call)


def probe(target):
    try:
        module, attrs, call = parse_target(target)
    except TargetError as e:
        return {"ok": False, "code": "target", "message": str(e)}
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        own = module == missing or module.startswith(missing + ".")
        return dict(
            {"ok": False, "code": "module-not-found", "module": module, "missing": missing,
             "own": own, "sys_path": [p for p in sys.path if p][:12]},
            **_exception(e)
        )
    except BaseException as e:  # SystemExit and friends are import failures too
        return dict({"ok": False, "code": "import-raised", "module": module}, **_exception(e))
    obj = mod
    for i, part in enumerate(attrs):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            where = ".".join([module] + attrs[:i])
            names = _callables(obj) if inspect.ismodule(obj) else sorted(
                n for n in dir(obj) if not n.startswith("_"))[:MAX_NAMES]
            return {"ok": False, "code": "no-attribute", "module": module, "owner": where,
                    "attribute": part, "callables": names}
    name = ".".join(attrs)
    if call is not None:
        args, kwargs = call
        if not callable(obj):
            return {"ok": False, "code": "not-callable", "name": name, "object": _type_name(obj)}
        sig = _signature(obj)
        if sig is not None:
            try:
                sig.bind(*args, **kwargs)
            except TypeError as e:
                return {"ok": False, "code": "factory-arguments", "name": name,
                        "signature": str(sig), "message": str(e)}
        try:
            obj = obj(*args, **kwargs)
        except BaseException as e:
            return dict({"ok": False, "code": "factory-raised", "name": name}, **_exception(e))
    described = _type_name(obj)
    if not callable(obj):
        return {"ok": False, "code": "not-callable", "name": name, "object": described}
    sig = _signature(obj)
    if _is_async(obj):
        return {"ok": False, "code": "asgi", "name": name, "object": described,
                "signature": str(sig) if sig is not None else ""}
    if sig is not None:
        try:
            sig.bind({}, lambda *a: None)
        except TypeError:
            factory = False
            if call is None and (inspect.isfunction(obj) or inspect.ismethod(obj)):
                try:
                    sig.bind()
                    factory = True
                except TypeError:
                    pass
            params = list(sig.parameters)
            asgi = params[:3] == ["scope", "receive", "send"]
            return {"ok": False, "code": "asgi" if asgi else "not-wsgi", "name": name,
                    "object": described, "signature": str(sig), "factory": factory}
    return {"ok": True, "object": described,
            "signature": str(sig) if sig is not None else ""}


def main():
    out = _result_stream()
    target, app_dir, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    # As `iiswsgi run`: the app folder first on sys.path, then [wsgi] python-paths.
    sys.path[:] = [app_dir] + extra + [p for p in sys.path if p not in ("", app_dir)]
    result = probe(target)
    result["python"] = "%d.%d.%d" % sys.version_info[:3]
    result["executable"] = sys.executable
    result["prefix"] = sys.prefix
    out.write(json.dumps(result))
    out.flush()
    os._exit(0)  # skip atexit and thread joins of the app: the probe is done


main()
