//! Knowing before deploying that the app imports (issue 13, item 4): `iiswsgi check --import`
//! and `iiswsgi doctor` import `[wsgi] app` with the venv's own python, with real Flask and
//! Django from PyPI (`support::venv::frameworks`) and a real empty venv. Each way it goes
//! wrong is its own rule with the facts a user needs; the three examples pass.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::package_support::{copy_dir, example, example_copy, iiswsgi, repo, text};
use crate::support::venv;

fn frameworks() -> String {
    venv::frameworks().display().to_string()
}

/// `iiswsgi check --import [--venv V] manifest`: (exit code, output).
fn check_import(manifest: &Path, venv: Option<&str>) -> (Option<i32>, String) {
    let mut args = vec!["check", "--import"];
    if let Some(v) = venv {
        args.extend(["--venv", v]);
    }
    let path = manifest.to_str().expect("utf8");
    args.push(path);
    let o = iiswsgi(&args, None);
    (o.status.code(), text(&o))
}

fn set_app(dir: &Path, from: &str, to: &str) {
    let path = dir.join("iiswsgi.toml");
    let t = std::fs::read_to_string(&path).expect("manifest");
    assert!(t.contains(from), "{from} not in the manifest");
    std::fs::write(&path, t.replacen(from, to, 1)).expect("write");
}

#[test]
fn the_three_examples_import_as_shipped() {
    let fw = frameworks();
    for (name, venv, object) in [
        ("flask-hello", Some(fw.as_str()), "flask.app.Flask"),
        (
            "django-site",
            Some(fw.as_str()),
            "django.core.handlers.wsgi.WSGIHandler",
        ),
        ("plain-wsgi", None, "function app.application"),
    ] {
        let (code, out) = check_import(&example(name), venv);
        assert_eq!(code, Some(0), "{name}:\n{out}");
        assert!(out.contains("imports with Python 3."), "{name}:\n{out}");
        assert!(out.contains(object), "{name}:\n{out}");
    }
}

#[test]
fn a_wrong_callable_is_i03_with_the_modules_callables() {
    let (_t, dir) = example_copy("flask-hello");
    set_app(&dir, "app = \"hello:app\"", "app = \"hello:nope()\"");
    let (code, out) = check_import(&dir.join("iiswsgi.toml"), Some(&frameworks()));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "[wsgi] app: `hello` has no attribute `nope`; its callables: app, echo, index, stream, whoami"
        ),
        "{out}"
    );
    assert!(out.contains("error[I03]"), "{out}");
}

#[test]
fn a_venv_without_flask_is_i01_naming_the_missing_package() {
    let (_t, dir) = example_copy("flask-hello");
    venv::empty(&dir.join(".venv"));
    let (code, out) = check_import(&dir.join("iiswsgi.toml"), None);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("error[I01]"), "{out}");
    assert!(
        out.contains("importing `hello` needs the module `flask`, which is not installed in"),
        "{out}"
    );
    assert!(out.contains(".venv"), "{out}");
    assert!(
        out.contains("ModuleNotFoundError: No module named 'flask'"),
        "{out}"
    );
}

/// `django-admin startproject mysite` in `dir`, with the frameworks venv's Django.
fn startproject(dir: &Path) {
    let admin = venv::frameworks().join("bin/django-admin");
    let o = Command::new(admin)
        .args(["startproject", "mysite"])
        .arg(dir)
        .output()
        .expect("django-admin");
    assert!(o.status.success(), "{}", text(&o));
}

fn manifest(dir: &Path, app: &str) -> PathBuf {
    let path = dir.join("iiswsgi.toml");
    std::fs::write(
        &path,
        format!("[app]\nname = \"Site\"\nversion = \"1.0\"\n[wsgi]\napp = \"{app}\"\n"),
    )
    .expect("manifest");
    path
}

#[test]
fn django_asgi_application_is_i04_and_its_wsgi_one_imports() {
    let tmp = tempfile::tempdir().expect("tmp");
    startproject(tmp.path());
    let (code, out) = check_import(
        &manifest(tmp.path(), "mysite.asgi:application"),
        Some(&frameworks()),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("error[I04]"), "{out}");
    assert!(
        out.contains("`mysite.asgi:application` is an ASGI application (django.core.handlers.asgi.ASGIHandler"),
        "{out}"
    );
    assert!(out.contains("`<project>.wsgi:application`"), "{out}");
    let (code, out) = check_import(
        &manifest(tmp.path(), "mysite.wsgi:application"),
        Some(&frameworks()),
    );
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn a_factory_that_needs_arguments_is_i05_with_its_signature() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(
        tmp.path().join("shop.py"),
        "from flask import Flask\n\ndef create_app(config_name):\n    return Flask(__name__)\n",
    )
    .expect("shop.py");
    let (code, out) = check_import(
        &manifest(tmp.path(), "shop:create_app()"),
        Some(&frameworks()),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("error[I05]"), "{out}");
    assert!(
        out.contains("cannot call `create_app(config_name)` that way: missing a required argument: 'config_name'"),
        "{out}"
    );
}

/// `tests/fixtures/doctor/healthy` with a real venv at `env` and `shop.py` importing Flask.
fn doctor_app(venv_dir: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("Shop");
    copy_dir(&repo().join("tests/fixtures/doctor/healthy"), &dir);
    std::fs::remove_dir_all(dir.join("env")).expect("rm env");
    match venv_dir {
        None => venv::empty(&dir.join("env")),
        Some(v) => set_app(&dir, "venv = \"env\"", &format!("venv = \"{v}\"")),
    }
    std::fs::write(
        dir.join("shop.py"),
        "from flask import Flask\napp = Flask(__name__)\n",
    )
    .expect("shop.py");
    (tmp, dir)
}

fn doctor(dir: &Path) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_iiswsgi"))
        .arg("doctor")
        .arg(dir)
        .args(["--iiswsgi-exe", r"C:\Program Files\iiswsgi\iiswsgi.exe"])
        .args(["--physical-path", r"C:\inetpub\wwwroot\Shop"])
        .output()
        .expect("doctor");
    (o.status.code(), text(&o))
}

fn line<'a>(out: &'a str, id: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(id))
        .unwrap_or_else(|| panic!("no {id} in:\n{out}"))
}

#[test]
fn doctor_fails_an_app_whose_venv_lacks_flask_and_passes_it_with_flask() {
    let (_t, dir) = doctor_app(None);
    let (code, out) = doctor(&dir);
    assert_eq!(code, Some(1), "{out}");
    let l = line(&out, "app-import");
    assert!(l.trim_start().starts_with("FAIL"), "{out}");
    assert!(l.contains("needs the module `flask`"), "{out}");
    assert!(out.contains("1 failure"), "{out}");

    let fw = frameworks();
    let (_t, dir) = doctor_app(Some(&fw));
    let (code, out) = doctor(&dir);
    let l = line(&out, "app-import");
    assert!(l.trim_start().starts_with("ok"), "{out}");
    assert!(l.contains("`shop:app` imports with Python 3."), "{out}");
    assert_eq!(code, Some(0), "{out}");
}
