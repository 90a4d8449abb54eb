//! A second deploy over an installed app loses nothing (issue 14 item 1), replayed on Linux:
//! version 1 of a Flask project is synced into a folder the way `msdeploy -verb:sync` would
//! ([`crate::support::msdeploy_sync`]) and installed with the real `iiswsgi install` (a venv,
//! Flask from PyPI); the app then owns an upload, a log line and the venv; version 2 (a module
//! removed, one added, code changed) is synced with the skip rules its deploy.cmd passes, and
//! installed again. The same sync without the rules shows what they prevent.
//!
//! Also `install` noticing a damaged venv (item 8).

use std::path::{Path, PathBuf};

use crate::iis_install::{install, outcome};
use crate::package_support::{example_copy, package, text};
use crate::support::msdeploy_sync::{Skip, skips_of_deploy_cmd, sync};

/// flask-hello with a venv, a writable `uploads` folder and a module version 2 drops.
fn project() -> (tempfile::TempDir, PathBuf) {
    let (tmp, project) = example_copy("flask-hello");
    let manifest = project.join("iiswsgi.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    assert!(text.contains("\nvenv = \".venv\"\n"), "the example changed");
    let text = text + "\n[[iis.set-acl]]\npath = \"uploads\"\naccess = [\"Modify\"]\n";
    std::fs::write(&manifest, text).expect("write");
    std::fs::create_dir_all(project.join("uploads")).expect("mkdir");
    std::fs::write(project.join("uploads/from-my-laptop.jpg"), "dev upload").expect("write");
    std::fs::write(project.join("old_module.py"), "OLD = 1\n").expect("write");
    (tmp, project)
}

/// Version 2: a new version number, `old_module.py` gone, `new_module.py` added.
fn bump(project: &Path) {
    crate::support::replace_in_file(
        &project.join("iiswsgi.toml"),
        "version = \"0.1.0\"",
        "version = \"0.2.0\"",
    );
    std::fs::remove_file(project.join("old_module.py")).expect("rm");
    std::fs::write(project.join("new_module.py"), "NEW = 2\n").expect("write");
}

fn skips(deploy_cmd: &Path) -> Vec<Skip> {
    let args = skips_of_deploy_cmd(deploy_cmd);
    assert!(!args.is_empty(), "deploy.cmd passes no skip rules");
    args.iter()
        .map(|a| Skip::parse(a).unwrap_or_else(|e| panic!("{a}: {e}")))
        .collect()
}

fn install_ok(app: &Path) -> String {
    let out = install(&["install".into(), app.display().to_string()], None);
    let report = text(&out);
    assert!(out.status.success(), "install failed:\n{report}");
    report
}

fn copy_tree(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
}

#[test]
fn second_deploy_keeps_uploads_logs_venv_and_the_rendered_web_config() {
    let (tmp, project) = project();
    let v1 = package(&project, &tmp.path().join("dist1"));
    let app = tmp.path().join("wwwroot").join("FlaskHello");

    // Version 1: first deploy, install.
    let first = sync(&v1, "FlaskHello", &app, &[]);
    assert!(app.join("iiswsgi-install.stamp").is_file(), "{first:?}");
    assert!(
        app.join("uploads").is_dir(),
        "the writable folder ships, empty"
    );
    assert!(
        !app.join("uploads/from-my-laptop.jpg").exists(),
        "a writable folder's contents are not shipped"
    );
    install_ok(&app);
    let rendered = std::fs::read_to_string(app.join("web.config")).expect("web.config");
    assert!(!rendered.contains("not installed yet"), "{rendered}");

    // The app at work: an upload, a log line; and something only the venv knows.
    std::fs::write(app.join("uploads/photo.jpg"), "user data").expect("upload");
    std::fs::create_dir_all(app.join("uploads/2024")).expect("mkdir");
    std::fs::write(app.join("uploads/2024/b.png"), "more user data").expect("upload");
    std::fs::write(app.join("logs/iiswsgi.log"), "a log line\n").expect("log");
    std::fs::write(app.join(".venv/marker"), "venv").expect("marker");

    // Version 2, packaged; its deploy.cmd's skip rules.
    bump(&project);
    let v2 = package(&project, &tmp.path().join("dist2"));
    let rules = skips(&tmp.path().join("dist2/FlaskHello-0.2.0.deploy.cmd"));

    // Without the rules msdeploy's mirror would delete the server's data and bring the
    // placeholder back (what the README's command did before this change).
    let control = tmp.path().join("control");
    std::fs::create_dir_all(&control).expect("mkdir");
    copy_tree(&app, &control);
    let bare = control.join("FlaskHello");
    let lost = sync(&v2, "FlaskHello", &bare, &[]);
    for gone in ["uploads/photo.jpg", ".venv", "logs"] {
        assert!(
            !bare.join(gone).exists(),
            "{gone} survived a bare sync: {lost:?}"
        );
    }
    assert!(
        std::fs::read_to_string(bare.join("web.config"))
            .expect("web.config")
            .contains("not installed yet")
    );

    // With them: code mirrored, the server's things kept.
    let report = sync(&v2, "FlaskHello", &app, &rules);
    assert!(!app.join("old_module.py").exists(), "{report:?}");
    assert!(app.join("new_module.py").is_file());
    assert!(
        app.join("iiswsgi-install.stamp").is_file(),
        "the stamp comes back"
    );
    assert_eq!(
        std::fs::read_to_string(app.join("uploads/photo.jpg")).expect("upload"),
        "user data"
    );
    assert!(app.join("uploads/2024/b.png").is_file());
    assert_eq!(
        std::fs::read_to_string(app.join("logs/iiswsgi.log")).expect("log"),
        "a log line\n"
    );
    assert!(app.join(".venv/marker").is_file());
    assert_eq!(
        std::fs::read_to_string(app.join("web.config")).expect("web.config"),
        rendered,
        "the rendered web.config is not replaced by the placeholder"
    );
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.contains(r"\uploads\photo.jpg")),
        "{report:?}"
    );

    // Install version 2: the venv is reused, web.config rendered, the data still there.
    let again = install_ok(&app);
    assert_eq!(outcome(&again, "venv"), "unchanged", "{again}");
    assert_eq!(outcome(&again, "stamp"), "removed", "{again}");
    let facts = iiswsgi::iis::webconfig::parse(
        &std::fs::read_to_string(app.join("web.config")).expect("r"),
    )
    .expect("parses");
    assert!(
        !facts.denies_all_verbs,
        "the rendered web.config, not the placeholder"
    );
    assert!(facts.fastcgi_handlers().next().is_some());
    for kept in [
        "uploads/photo.jpg",
        "uploads/2024/b.png",
        "logs/iiswsgi.log",
        ".venv/marker",
    ] {
        assert!(app.join(kept).is_file(), "{kept} lost");
    }
}

/// Item 8: a requirement uninstalled from the venv after install is noticed by the next
/// `install` (pip's own check) and reinstalled, where it used to say "same as last install".
#[test]
fn install_repairs_a_venv_a_requirement_was_uninstalled_from() {
    let (tmp, project) = project();
    let zip = package(&project, &tmp.path().join("dist"));
    let app = tmp.path().join("wwwroot").join("FlaskHello");
    sync(&zip, "FlaskHello", &app, &[]);
    install_ok(&app);
    let python = app.join(".venv/bin/python");
    let uninstall = std::process::Command::new(&python)
        .args(["-m", "pip", "uninstall", "-y", "-q", "werkzeug"])
        .output()
        .expect("pip uninstall");
    assert!(uninstall.status.success(), "{}", text(&uninstall));

    let report = install_ok(&app);
    assert_eq!(outcome(&report, "requirements"), "repaired", "{report}");
    assert!(
        report.contains("werkzeug"),
        "says what was missing:\n{report}"
    );
    let import = std::process::Command::new(&python)
        .args(["-c", "import werkzeug, flask"])
        .output()
        .expect("python");
    assert!(import.status.success(), "{}", text(&import));

    let quiet = install_ok(&app);
    assert_eq!(outcome(&quiet, "requirements"), "unchanged", "{quiet}");
    assert!(quiet.contains("pip finds it complete"), "{quiet}");
}

/// The same round trip on any project (`IISWSGI_TRY_PROJECT=<folder with iiswsgi.toml>`,
/// e.g. `django-admin startproject` output or Flask's tutorial): run with
/// `cargo test --test main redeploy::any_project -- --ignored`. Every server-owned path the
/// manifest declares gets a file the app "wrote"; after a sync of the next version with the
/// deploy.cmd's rules and a second install, all of them and every file already in them (a
/// database the post-install step made) are still there, byte for byte.
#[test]
#[ignore = "needs IISWSGI_TRY_PROJECT"]
fn any_project() {
    let Some(source) = std::env::var_os("IISWSGI_TRY_PROJECT").map(PathBuf::from) else {
        panic!("set IISWSGI_TRY_PROJECT to a project folder with an iiswsgi.toml");
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let project = tmp.path().join("project");
    crate::package_support::copy_dir(&source, &project);
    let manifest = iiswsgi::manifest::Manifest::load(&project.join("iiswsgi.toml"))
        .unwrap_or_else(|e| panic!("{}", e.render()));
    let name = manifest.app.name.to_string();
    let v1 = package(&project, &tmp.path().join("dist1"));
    let app = tmp.path().join("wwwroot").join(&name);
    sync(&v1, &name, &app, &[]);
    eprintln!("{}", install_ok(&app));

    let owned = iiswsgi::package::msdeploy::redeploy::server_paths(&manifest);
    let mut kept: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for p in &owned {
        use iiswsgi::package::msdeploy::redeploy::Owned;
        let path = app.join(&p.path);
        match p.kind {
            Owned::Folder => {
                std::fs::create_dir_all(&path).expect("mkdir");
                std::fs::write(path.join("written-by-the-app"), "data").expect("write");
            }
            Owned::File | Owned::FileAndSiblings => std::fs::write(&path, "data").expect("write"),
            Owned::WebConfig => {}
        }
        for file in walk(&path) {
            let bytes = std::fs::read(&file).expect("read");
            kept.push((file, bytes));
        }
    }
    eprintln!(
        "kept across the redeploy: {} files under {owned:?}",
        kept.len()
    );

    let toml = project.join("iiswsgi.toml");
    let text = std::fs::read_to_string(&toml).expect("read");
    let version = format!("version = \"{}\"", manifest.app.version);
    assert!(text.contains(&version), "{version} not in the manifest");
    std::fs::write(&toml, text.replace(&version, "version = \"99.0.0\"")).expect("write");
    let v2 = package(&project, &tmp.path().join("dist2"));
    let rules = skips(&tmp.path().join(format!("dist2/{name}-99.0.0.deploy.cmd")));
    let report = sync(&v2, &name, &app, &rules);
    eprintln!(
        "sync v2: {} added, {} updated, {} deleted, {} skipped",
        report.added.len(),
        report.updated.len(),
        report.deleted.len(),
        report.skipped.len()
    );
    for (file, bytes) in &kept {
        assert_eq!(
            std::fs::read(file).ok().as_ref(),
            Some(bytes),
            "{} lost or changed by the sync",
            file.display()
        );
    }
    eprintln!("{}", install_ok(&app));
    assert!(
        !std::fs::read_to_string(app.join("web.config"))
            .expect("web.config")
            .contains("not installed yet")
    );
}

fn walk(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
        out.extend(walk(&e.path()));
    }
    out
}
