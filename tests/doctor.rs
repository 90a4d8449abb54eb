//! `iiswsgi doctor` on app folders with one misconfiguration each (tests/fixtures/doctor): the
//! right check fails or warns, names the problem and prints the fix, and nothing else
//! complains. Off Windows the IIS checks must be listed as skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::package_support::{copy_dir, repo, text};

const EXE: &str = r"C:\Program Files\iiswsgi\iiswsgi.exe";
const PHYSICAL: &str = r"C:\inetpub\wwwroot\Shop";

fn fixtures() -> PathBuf {
    repo().join("tests").join("fixtures").join("doctor")
}

/// `healthy/` with `case/` laid over it and its `REMOVE` paths deleted, in a temp folder.
fn app(case: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("Shop");
    copy_dir(&fixtures().join("healthy"), &dir);
    if case != "healthy" {
        copy_dir(&fixtures().join(case), &dir);
    }
    if let Ok(list) = std::fs::read_to_string(dir.join("REMOVE")) {
        for rel in list.lines().filter(|l| !l.trim().is_empty()) {
            let p = dir.join(rel.trim());
            if p.is_dir() {
                std::fs::remove_dir_all(&p).expect("remove dir");
            } else {
                std::fs::remove_file(&p).expect("remove file");
            }
        }
        std::fs::remove_file(dir.join("REMOVE")).expect("remove REMOVE");
    }
    let cfg = dir.join("env").join("pyvenv.cfg");
    if let Ok(t) = std::fs::read_to_string(&cfg) {
        let build = iiswsgi::PYTHON_VERSION.unwrap_or("3.11");
        std::fs::write(&cfg, t.replace("@BUILD_PYTHON@", build)).expect("write cfg");
    }
    (tmp, dir)
}

struct Run {
    code: Option<i32>,
    out: String,
}

fn doctor(dir: &Path) -> Run {
    let o = Command::new(env!("CARGO_BIN_EXE_iiswsgi"))
        .args(["doctor", dir.to_str().expect("utf8"), "--iiswsgi-exe", EXE])
        .args(["--physical-path", PHYSICAL])
        .output()
        .expect("run doctor");
    Run {
        code: o.status.code(),
        out: text(&o),
    }
}

/// The lines of check `id`: the status line and its `fix:` line.
fn check<'a>(out: &'a str, id: &str) -> (&'a str, Option<&'a str>) {
    let lines: Vec<&str> = out.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.split_whitespace().nth(1) == Some(id))
        .unwrap_or_else(|| panic!("no check {id} in:\n{out}"));
    let fix = lines
        .get(i + 1)
        .filter(|l| l.trim_start().starts_with("fix: "))
        .copied();
    (lines[i], fix)
}

/// The ids of checks that warned or failed.
fn complaints(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("  warn ") || l.starts_with("  FAIL "))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

#[test]
fn healthy_app_passes_and_lists_the_windows_checks_it_skipped() {
    let (_t, dir) = app("healthy");
    let r = doctor(&dir);
    assert_eq!(r.code, Some(0), "{}", r.out);
    assert!(complaints(&r.out).is_empty(), "{}", r.out);
    for id in ["python-dll", "fastcgi-registered", "permissions"] {
        assert!(
            check(&r.out, id).0.trim_start().starts_with("skip"),
            "{}",
            r.out
        );
    }
    assert!(
        r.out
            .contains("skipped on this machine (they need Windows with IIS"),
        "{}",
        r.out
    );
    assert!(r.out.contains("0 failures, 0 warnings"), "{}", r.out);
}

/// (fixture, check id, status, words in the finding, words in the fix).
const CASES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "install-unfinished",
        "install-finished",
        "FAIL",
        "has not completed",
        "iiswsgi install",
    ),
    (
        "venv-python-too-old",
        "venv-version",
        "FAIL",
        "made by Python 3.8, but iiswsgi embeds CPython 3.9 or later",
        "delete",
    ),
    (
        "per-user-python",
        "per-user-python",
        "FAIL",
        "installed for one user, under AppData\\Local\\Programs",
        "for all users",
    ),
    (
        "script-processor-mismatch",
        "script-processor",
        "FAIL",
        "0x80070585",
        "character for character",
    ),
    (
        "buffered-responses",
        "response-buffer-limit",
        "warn",
        "responseBufferLimit is 4194304",
        "response-buffer-limit = 0",
    ),
    (
        "low-instance-max-requests",
        "instance-max-requests",
        "warn",
        "every 200 requests",
        "instance-max-requests = 10000",
    ),
    (
        "stderr-in-500",
        "stderr-mode",
        "warn",
        "shown to the client in a 500 page",
        "ReturnGeneric500",
    ),
    (
        "placeholder-web-config",
        "web-config",
        "FAIL",
        "still the package's placeholder",
        "iiswsgi install",
    ),
    (
        "fastcgi-in-web-config",
        "web-config",
        "warn",
        "<fastCgi> section, which IIS ignores",
        "iiswsgi iis enable",
    ),
    (
        "no-log-folder",
        "log-writable",
        "FAIL",
        "does not exist",
        "iiswsgi install",
    ),
    (
        "missing-venv",
        "venv",
        "FAIL",
        "has no pyvenv.cfg",
        "iiswsgi install",
    ),
    (
        "broken-manifest",
        "manifest",
        "FAIL",
        "reload_regex",
        "iiswsgi check",
    ),
];

#[test]
fn each_misconfiguration_is_named_with_its_fix_and_nothing_else_complains() {
    let mut failures = Vec::new();
    for (case, id, status, finding, fix) in CASES {
        if *id == "venv-version" && iiswsgi::PYTHON_VERSION.is_none() {
            continue; // a build without Python skips this check
        }
        let (_t, dir) = app(case);
        let r = doctor(&dir);
        let (line, fix_line) = check(&r.out, id);
        let ok = line.trim_start().starts_with(status)
            && line.contains(finding)
            && fix_line.is_some_and(|f| f.contains(fix))
            && complaints(&r.out) == [id.to_string()]
            && r.code == Some(if *status == "FAIL" { 1 } else { 0 });
        if !ok {
            failures.push(format!(
                "--- {case}: want {status} {id} ({finding} / {fix}), exit {:?}:\n{}",
                r.code, r.out
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn doctor_on_a_missing_folder_is_an_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let r = doctor(&tmp.path().join("nope"));
    assert_eq!(r.code, Some(1));
    assert!(r.out.contains("is not a folder"), "{}", r.out);
}
