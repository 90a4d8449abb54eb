//! The probe against a real CPython (the base interpreter on PATH, no venv needed): each way
//! an import goes wrong is reported as its own [`Kind`] with the facts the user needs.
//! End-to-end runs with Flask and Django venvs are in `tests/check.rs` and `tests/doctor.rs`.

use super::*;

fn python() -> PathBuf {
    base_python().expect("a python3 on PATH (the tests need CPython)")
}

/// A folder holding `files` (name, text), probed for `target`.
fn probe_in(
    files: &[(&str, &str)],
    target: &str,
    timeout: Duration,
) -> Result<Outcome, ProbeError> {
    let dir = tempfile::tempdir().expect("tmp");
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    probe(&ProbeRequest {
        python: python(),
        app_dir: dir.path().to_path_buf(),
        target: target.to_string(),
        python_paths: Vec::new(),
        environment: BTreeMap::from([("IISWSGI_PROBE_TEST".to_string(), "yes".to_string())]),
        timeout,
    })
}

fn failed(files: &[(&str, &str)], target: &str) -> Problem {
    match probe_in(files, target, DEFAULT_TIMEOUT).expect("probe ran") {
        Outcome::Failed(p) => p,
        Outcome::Imported(i) => panic!("{target} imported: {i:?}"),
    }
}

const WSGI: &str = "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n\ndef helper():\n    pass\n";

#[test]
fn a_wsgi_function_imports_and_the_apps_prints_do_not_spoil_the_result() {
    let noisy = format!(
        "import os, sys\nprint('hello from the app')\nos.write(1, b'raw fd write\\n')\n\
         assert os.environ['IISWSGI_PROBE_TEST'] == 'yes'\n{WSGI}"
    );
    match probe_in(&[("app.py", &noisy)], "app:application", DEFAULT_TIMEOUT).expect("ran") {
        Outcome::Imported(i) => {
            assert_eq!(i.object, "function app.application");
            assert_eq!(i.signature, "(environ, start_response)");
            assert!(i.python.starts_with("3."), "{i:?}");
        }
        Outcome::Failed(p) => panic!("{p:?}"),
    }
}

#[test]
fn a_wrong_callable_lists_the_modules_callables_and_the_closest_one() {
    let p = failed(&[("app.py", WSGI)], "app:aplication");
    assert_eq!(p.kind, Kind::NoAttribute);
    assert_eq!(p.kind.rule(), "I03");
    assert_eq!(
        p.message,
        "`app` has no attribute `aplication`; its callables: application, helper"
    );
    assert_eq!(p.hint, "did you mean `app:application`?");
    // Imported names are not the module's own callables.
    let p = failed(
        &[(
            "m.py",
            "from os.path import join\nimport json\nclass Site:\n    pass\n",
        )],
        "m:nope()",
    );
    assert_eq!(
        p.message,
        "`m` has no attribute `nope`; its callables: Site"
    );
}

#[test]
fn a_missing_dependency_is_told_apart_from_a_missing_app_module() {
    let p = failed(
        &[("app.py", "import iiswsgi_no_such_dependency.sub\n")],
        "app:application",
    );
    assert_eq!(p.kind, Kind::DependencyMissing);
    assert_eq!(p.kind.rule(), "I01");
    assert!(
        p.message.starts_with(
            "importing `app` needs the module `iiswsgi_no_such_dependency`, which is not installed in "
        ),
        "{}",
        p.message
    );
    assert!(p.hint.contains("iiswsgi_no_such_dependency"), "{}", p.hint);
    assert!(
        p.detail
            .as_deref()
            .is_some_and(|d| d.contains("ModuleNotFoundError"))
    );

    let p = failed(&[], "shop.wsgi:application");
    assert_eq!(p.kind, Kind::ModuleNotFound);
    assert!(
        p.message
            .starts_with("`shop.wsgi` cannot be imported: there is no module `shop` on sys.path ("),
        "{}",
        p.message
    );
}

#[test]
fn an_asgi_app_is_refused_whether_a_function_or_an_object() {
    let p = failed(
        &[("a.py", "async def app(scope, receive, send):\n    pass\n")],
        "a:app",
    );
    assert_eq!(p.kind, Kind::Asgi);
    assert_eq!(p.kind.rule(), "I04");
    assert!(
        p.message.contains("is an ASGI application"),
        "{}",
        p.message
    );
    assert!(
        p.message.contains("(scope, receive, send)"),
        "{}",
        p.message
    );
    // Django's ASGIHandler shape: an instance with `async def __call__`.
    let p = failed(
        &[(
            "b.py",
            "class Handler:\n    async def __call__(self, scope, receive, send):\n        pass\napplication = Handler()\n",
        )],
        "b:application",
    );
    assert_eq!(p.kind, Kind::Asgi, "{p:?}");
    assert!(p.message.contains("b.Handler"), "{}", p.message);
}

#[test]
fn a_factory_that_needs_arguments_is_named_with_its_signature() {
    let src = "def create_app(config):\n    def app(environ, start_response):\n        return []\n    return app\n";
    let p = failed(&[("f.py", src)], "f:create_app()");
    assert_eq!(p.kind, Kind::Factory);
    assert_eq!(p.kind.rule(), "I05");
    assert_eq!(
        p.message,
        "`f:create_app()` cannot call `create_app(config)` that way: missing a required argument: 'config'"
    );
    // Literal arguments, as gunicorn accepts them, make it work.
    let ok = probe_in(
        &[("f.py", src)],
        "f:create_app('production')",
        DEFAULT_TIMEOUT,
    )
    .expect("ran");
    assert!(matches!(ok, Outcome::Imported(_)), "{ok:?}");
    let ok = probe_in(
        &[("f.py", src)],
        "f:create_app(config={'debug': False})",
        DEFAULT_TIMEOUT,
    )
    .expect("ran");
    assert!(matches!(ok, Outcome::Imported(_)), "{ok:?}");
    // Without the call, a factory is not a WSGI app: the hint says to add `()`.
    let p = failed(
        &[("g.py", "def create_app(test_config=None):\n    pass\n")],
        "g:create_app",
    );
    assert_eq!(p.kind, Kind::NotWsgi);
    assert_eq!(
        p.hint,
        "it looks like an app factory: write `g:create_app()` to call it once at start-up"
    );
}

#[test]
fn an_import_that_raises_carries_the_traceback() {
    let p = failed(
        &[(
            "boom.py",
            "SETTINGS = {}\nSECRET = SETTINGS['SECRET_KEY']\n",
        )],
        "boom:app",
    );
    assert_eq!(p.kind, Kind::ImportRaised);
    assert_eq!(p.message, "importing `boom` raised KeyError: 'SECRET_KEY'");
    let detail = p.detail.expect("traceback");
    assert!(detail.contains("boom.py\", line 2"), "{detail}");
}

#[test]
fn a_hanging_import_is_killed_at_the_timeout() {
    let started = Instant::now();
    let e = probe_in(
        &[("slow.py", "import time\ntime.sleep(120)\n")],
        "slow:app",
        Duration::from_millis(500),
    )
    .expect_err("timed out");
    assert!(matches!(e, ProbeError::Timeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn an_interpreter_that_dies_without_a_verdict_is_reported_with_its_stderr() {
    let e = probe_in(
        &[("die.py", "import os, sys\nsys.stderr.write('fatal: no config\\n')\nsys.stderr.flush()\nos._exit(3)\n")],
        "die:app",
        DEFAULT_TIMEOUT,
    )
    .expect_err("no result");
    let text = e.to_string();
    assert!(matches!(e, ProbeError::NoResult { .. }), "{text}");
    assert!(
        text.contains("exit status: 3") && text.contains("fatal: no config"),
        "{text}"
    );
}

#[test]
fn a_venv_without_pyvenv_cfg_or_python_is_an_interpreter_problem() {
    let dir = tempfile::tempdir().expect("tmp");
    let m = Manifest::parse(
        "[app]\nname = \"A\"\nversion = \"1\"\n[wsgi]\napp = \"a:app\"\nvenv = \".venv\"\n",
        Path::new("iiswsgi.toml"),
    )
    .expect("manifest");
    let e = interpreter(&m, dir.path(), None, None).expect_err("no venv");
    assert_eq!(e, InterpreterError::NoVenv(dir.path().join(".venv")));
    std::fs::create_dir_all(dir.path().join(".venv")).expect("mkdir");
    std::fs::write(dir.path().join(".venv/pyvenv.cfg"), "home = /usr\n").expect("cfg");
    let e = interpreter(&m, dir.path(), None, None).expect_err("no python");
    assert_eq!(e, InterpreterError::NoVenvPython(dir.path().join(".venv")));
    assert_eq!(Problem::interpreter(&e).kind.rule(), "I07");
}
