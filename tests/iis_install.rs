//! `iiswsgi install` end to end on an unpacked package of `examples/flask-hello`, run exactly as
//! the package's runCommand says (the folder found through `APPL_PHYSICAL_PATH`, as msdeploy
//! would set it if it could): a real venv made by the CPython PyO3 builds against, Flask
//! installed from PyPI, web.config rendered from the shipped template and validated against
//! `schemas/web.config.xsd`, the stamp removed, and a second run that touches nothing. IIS and
//! icacls cannot run here: their steps come out as a dry run, asserted as text.
//!
//! Also `iis enable`/`disable` dry runs and the install errors people meet first.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use crate::package_support::{assert_valid, entries, example_copy, package, text};

/// The CPython the crate builds against (its `bin` goes first on PATH, so `python3.11` is it).
pub(crate) fn build_python() -> PathBuf {
    match std::env::var("PYO3_PYTHON") {
        Ok(p) => PathBuf::from(p),
        Err(_) => PathBuf::from(
            crate::package_support::python("import sys; print(sys.executable)", &[]).trim(),
        ),
    }
}

pub(crate) fn path_with_build_python() -> String {
    let bin = build_python()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", bin.display())
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_iiswsgi")
}

/// Packages flask-hello (with `venv = ".venv"`) and unpacks its app folder into
/// `<tmp>/wwwroot/Flask Hello` (a space, as under real sites). Returns the temp dir, the app
/// folder and the runCommand line of Manifest.xml.
fn unpacked_flask_hello() -> (tempfile::TempDir, PathBuf, String) {
    let (tmp, project) = example_copy("flask-hello");
    let manifest = project.join("iiswsgi.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    assert!(text.contains("\nvenv = \".venv\"\n"), "the example changed");
    let zip = package(&project, &tmp.path().join("dist"));
    let app = tmp.path().join("wwwroot").join("Flask Hello");
    let mut run_command = None;
    for (name, bytes) in entries(&zip) {
        if name == "Manifest.xml" {
            let xml = String::from_utf8(bytes).expect("utf8");
            let root = iiswsgi::xml::parse(&xml).expect("Manifest.xml parses");
            run_command = root
                .descendants()
                .into_iter()
                .find(|e| e.local == "runCommand")
                .and_then(|e| e.attr("path").map(str::to_string));
            continue;
        }
        let Some(rel) = name.strip_prefix("FlaskHello/") else {
            continue;
        };
        let dest = app.join(rel);
        if name.ends_with('/') {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            std::fs::write(&dest, bytes).expect("write");
        }
    }
    assert!(
        app.join("iiswsgi-install.stamp").is_file(),
        "the package ships the stamp"
    );
    (
        tmp,
        app,
        run_command.expect("Manifest.xml has a runCommand"),
    )
}

/// `"C:\…\iiswsgi.exe" install --app-name X` → the arguments after the executable.
fn run_command_args(line: &str) -> Vec<String> {
    let rest = line.strip_prefix('"').expect("the exe is quoted");
    let end = rest.find('"').expect("closing quote");
    rest[end + 1..]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub(crate) fn install(args: &[String], app_env: Option<&Path>) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("PATH", path_with_build_python())
        .env_remove("APPL_PHYSICAL_PATH")
        .env_remove("PYTHONHOME")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    if let Some(dir) = app_env {
        cmd.env("APPL_PHYSICAL_PATH", dir);
    }
    cmd.output().expect("run iiswsgi install")
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The outcome column of a step line (`  web.config  written`).
pub(crate) fn outcome<'a>(report: &'a str, step: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| {
            let l = l.trim_start();
            l.strip_prefix(step)
                .filter(|rest| rest.starts_with("  "))
                .map(str::trim)
        })
        .unwrap_or_else(|| panic!("no step {step:?} in:\n{report}"))
}

#[test]
fn run_command_line_is_accepted_by_install() {
    let (_tmp, _app, line) = unpacked_flask_hello();
    assert_eq!(
        line,
        r#""C:\iiswsgi\Scripts\iiswsgi.exe" install --app-name FlaskHello"#
    );
    // Without a folder, APPL_PHYSICAL_PATH or IIS's site list the flags still parse (exit 1,
    // not clap's 2) and the error says what to do.
    let out = install(&run_command_args(&line), None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("pass the folder: iiswsgi install <APP_DIR>"),
        "{}",
        text(&out)
    );
}

#[test]
fn install_on_unpacked_flask_hello_builds_venv_web_config_and_is_idempotent() {
    let (_tmp, app, line) = unpacked_flask_hello();
    let args = run_command_args(&line);

    let first = install(&args, Some(&app));
    let report = text(&first);
    assert!(first.status.success(), "install failed:\n{report}");

    // The venv, made by the build's Python, holds Flask.
    let venv = app.join(".venv");
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).expect("pyvenv.cfg");
    assert!(cfg.contains("version = 3.11"), "{cfg}");
    let flask = Command::new(venv.join("bin").join("python"))
        .args(["-c", "import flask; print(flask.__name__)"])
        .output()
        .expect("venv python");
    assert!(
        flask.status.success(),
        "Flask not importable: {}",
        text(&flask)
    );
    assert_eq!(outcome(&report, "venv"), "created");
    assert_eq!(outcome(&report, "requirements"), "installed");

    // web.config: rendered from the shipped template, this binary as fullPath, the folder
    // (with its space) quoted in the arguments, valid against the project's schema.
    let web_config = std::fs::read_to_string(app.join("web.config")).expect("web.config");
    assert_valid(&web_config, "web.config.xsd", "installed web.config");
    let facts = iiswsgi::iis::webconfig::parse(&web_config).expect("parses");
    let handler = facts.fastcgi_handlers().next().expect("a FastCGI handler");
    let expected = format!(
        "{}|run --manifest \"{}/iiswsgi.toml\"",
        bin(),
        app.display()
    );
    assert_eq!(handler.script_processor(), expected);
    assert_eq!(handler.response_buffer_limit(), Some(0));
    assert!(!facts.denies_all_verbs, "the placeholder was replaced");
    assert_eq!(outcome(&report, "web.config"), "written");

    // Stamp gone, log folder made.
    assert!(!app.join("iiswsgi-install.stamp").exists());
    assert_eq!(outcome(&report, "stamp"), "removed");
    assert!(app.join("logs").is_dir());

    // The Windows-only steps, as text: appcmd with PATH for the DLL, and icacls.
    assert!(report.contains("dry run (this is not Windows"), "{report}");
    assert!(
        report.contains(&format!(
            r#"%windir%\system32\inetsrv\appcmd.exe set config -section:system.webServer/fastCgi /+"[fullPath='{}',arguments='run --manifest \"{}/iiswsgi.toml\"',maxInstances='0',instanceMaxRequests='10000',"#,
            bin(),
            app.display()
        )),
        "{report}"
    );
    let home = cfg
        .lines()
        .find_map(|l| l.strip_prefix("home = "))
        .expect("pyvenv.cfg home")
        .trim();
    assert!(
        report.contains(&format!(
            r".environmentVariables.[name='PATH',value='{home};C:\Windows\System32;C:\Windows;C:\Windows\System32\Wbem']"
        )),
        "PATH names the venv's Python home:\n{report}"
    );
    for (path, rights) in [(app.clone(), "RX"), (app.join("logs"), "M")] {
        assert!(
            report.contains(&format!(
                r#"%windir%\system32\icacls.exe "{}" /grant "IIS AppPool\DefaultAppPool:(OI)(CI){rights}""#,
                path.display()
            )),
            "{report}"
        );
    }

    // Second run: nothing rewritten, pip only asked to check, every local step unchanged.
    let watched = [
        app.join("web.config"),
        venv.join("pyvenv.cfg"),
        venv.join(iiswsgi::iis::install::REQUIREMENTS_MARKER),
        app.join("logs"),
    ];
    let before: Vec<SystemTime> = watched.iter().map(|p| mtime(p)).collect();
    let started = std::time::Instant::now();
    let second = install(&args, Some(&app));
    let again = text(&second);
    assert!(second.status.success(), "second install failed:\n{again}");
    let after: Vec<SystemTime> = watched.iter().map(|p| mtime(p)).collect();
    assert_eq!(before, after, "the second run rewrote something:\n{again}");
    for step in ["venv", "requirements", "log folder", "web.config", "stamp"] {
        assert_eq!(outcome(&again, step), "unchanged", "{step} in:\n{again}");
    }
    assert!(
        again.contains("same as last install; pip finds it complete"),
        "{again}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "a no-op install should be quick, took {:?}",
        started.elapsed()
    );

    // What IIS would start, from what was registered: fullPath and arguments of web.config's
    // scriptProcessor (equal to the printed appcmd registration), serving the app from the
    // venv install made, driven by the IIS-emulating client.
    #[cfg(all(unix, feature = "python"))]
    serves_through_the_registered_command(&app, handler.script_processor());
}

/// Splits IIS's `arguments` as the Windows C runtime would (double quotes group words).
#[cfg(all(unix, feature = "python"))]
fn split_arguments(arguments: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in arguments.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' | '\t' if !quoted => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

#[cfg(all(unix, feature = "python"))]
fn serves_through_the_registered_command(app: &Path, script_processor: &str) {
    use crate::support::iis_client::{IisApp, IisProcess, IisRequest};
    let (full_path, arguments) = script_processor
        .split_once('|')
        .expect("fullPath|arguments");
    let mut cmd = Command::new(full_path);
    cmd.args(split_arguments(arguments));
    let logs = vec![app.join("logs").join("iiswsgi.log")];
    let iis_app = IisApp {
        virtual_path: "/FlaskHello".into(),
        physical_path: app.display().to_string(),
        ..IisApp::root()
    };
    let mut process = IisProcess::spawn(cmd, iis_app, app, logs);
    let response = process.send(&IisRequest::get("/FlaskHello/"));
    assert_eq!(response.browser_status(), 200, "{}", response.cgi.text());
    assert_eq!(response.cgi.text(), "Hello from Flask on IIS!\n");
    assert!(
        app.join("logs").join("iiswsgi.log").is_file(),
        "run logs into the folder install created"
    );
}

#[test]
fn dry_run_changes_nothing_and_prints_every_step() {
    let (_tmp, app, _) = unpacked_flask_hello();
    let placeholder = std::fs::read(app.join("web.config")).expect("placeholder");
    let out = install(
        &[
            "install".into(),
            app.display().to_string(),
            "--dry-run".into(),
            "--app-pool".into(),
            "Shop Pool".into(),
            "--python".into(),
            build_python().display().to_string(),
        ],
        None,
    );
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("dry run (--dry-run)"), "{report}");
    assert!(!app.join(".venv").exists(), "no venv in a dry run");
    assert!(app.join("iiswsgi-install.stamp").exists(), "stamp kept");
    assert_eq!(
        std::fs::read(app.join("web.config")).expect("read"),
        placeholder
    );
    for step in [
        "venv",
        "requirements",
        "web.config",
        "stamp",
        "FastCGI application",
        "ACLs",
    ] {
        assert_eq!(outcome(&report, step), "dry run", "{step} in:\n{report}");
    }
    assert!(report.contains("-m venv"), "{report}");
    assert!(
        report.contains("-m pip install --disable-pip-version-check --no-input -r"),
        "{report}"
    );
    assert!(
        report.contains(r#"IIS AppPool\Shop Pool:(OI)(CI)RX"#),
        "{report}"
    );
}

#[test]
fn failing_pip_stops_install_keeps_the_stamp_and_names_the_step() {
    let (_tmp, app, _) = unpacked_flask_hello();
    std::fs::write(
        app.join("requirements.txt"),
        "iiswsgi-no-such-package-xyz==1.0\n",
    )
    .expect("write");
    let mut cmd = Command::new(bin());
    cmd.args(["install", &app.display().to_string()])
        .env("PATH", path_with_build_python())
        .env("PIP_NO_INDEX", "1")
        .env_remove("APPL_PHYSICAL_PATH");
    let out = cmd.output().expect("run");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("error: requirements:"), "{t}");
    assert!(t.contains("iiswsgi-no-such-package-xyz"), "{t}");
    assert!(t.contains("the stamp file stays"), "{t}");
    assert!(app.join("iiswsgi-install.stamp").exists());
    assert!(
        std::fs::read_to_string(app.join("web.config"))
            .expect("read")
            .contains("not installed yet"),
        "the placeholder still serves nothing"
    );
}

#[test]
fn post_install_commands_run_in_the_app_folder_with_the_venv_activated() {
    let (_tmp, project) = example_copy("plain-wsgi");
    let manifest = project.join("iiswsgi.toml");
    let text_before = std::fs::read_to_string(&manifest).expect("manifest");
    let patched = text_before
        .replacen("[wsgi]\n", "[wsgi]\nvenv = \"venv-dir\"\n", 1)
        .replacen(
            "[package]\n",
            "[package]\npost-install = [\"python -c \\\"import sys; open('post-install.txt', 'w').write(sys.prefix)\\\"\"]\n",
            1,
        );
    assert_ne!(patched, text_before, "the example changed");
    std::fs::write(&manifest, patched).expect("write");
    let out = install(&["install".into(), project.display().to_string()], None);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(outcome(&t, "post-install"), "ran 1 command(s)");
    assert_eq!(outcome(&t, "requirements"), "skipped (nothing to install)");
    let prefix = std::fs::read_to_string(project.join("post-install.txt")).expect("written");
    assert_eq!(
        std::fs::canonicalize(prefix.trim()).expect("prefix"),
        std::fs::canonicalize(project.join("venv-dir")).expect("venv"),
        "`python` in a post-install command is the venv's"
    );
}

#[test]
fn requirements_without_a_venv_are_refused_with_the_fix() {
    let (_tmp, project) = example_copy("flask-hello");
    crate::support::replace_in_file(
        &project.join("iiswsgi.toml"),
        "\nvenv = \".venv\"\n",
        "\n# venv = \".venv\"\n",
    );
    let out = install(&["install".into(), project.display().to_string()], None);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("add `venv = \".venv\"` to [wsgi]"), "{t}");
}

#[test]
fn app_name_that_does_not_match_the_folder_is_refused() {
    let (_tmp, project) = example_copy("flask-hello");
    let out = install(
        &[
            "install".into(),
            project.display().to_string(),
            "--app-name".into(),
            "DjangoSite".into(),
        ],
        None,
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("is for FlaskHello, not DjangoSite"), "{t}");
}

mod iis_commands {
    use super::*;

    fn iis(args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .output()
            .expect("run iiswsgi iis")
    }

    #[test]
    fn enable_off_windows_is_a_dry_run_that_says_so() {
        let (_tmp, project) = example_copy("plain-wsgi");
        let out = iis(&[
            "iis",
            "enable",
            project.to_str().expect("utf8"),
            "--iiswsgi-exe",
            r"C:\Program Files\iiswsgi\iiswsgi.exe",
            "--physical-path",
            r"C:\inetpub\wwwroot\Plain Site",
            "--site",
            "Default Web Site/Plain Site",
        ]);
        let t = text(&out);
        assert!(out.status.success(), "{t}");
        assert!(t.contains("dry run (this is not Windows"), "{t}");
        assert!(
            t.contains(r#"%windir%\system32\inetsrv\appcmd.exe set config -section:system.webServer/fastCgi /-"[fullPath='C:\Program Files\iiswsgi\iiswsgi.exe',arguments='run --manifest \"C:\inetpub\wwwroot\Plain Site\iiswsgi.toml\"']" /commit:apphost"#),
            "{t}"
        );
        assert!(t.contains(":: only if already registered"), "{t}");
        assert!(
            t.contains(r#"set config "Default Web Site/Plain Site" -section:system.webServer/handlers /+"[name='iiswsgi-PlainWsgi',path='*',verb='*',modules='FastCgiModule',scriptProcessor='C:\Program Files\iiswsgi\iiswsgi.exe|run --manifest \"C:\inetpub\wwwroot\Plain Site\iiswsgi.toml\"',resourceType='Unspecified',requireAccess='Script',responseBufferLimit='0']""#),
            "{t}"
        );
    }

    #[test]
    fn express_uses_its_appcmd_and_config() {
        let (_tmp, project) = example_copy("plain-wsgi");
        let out = iis(&[
            "iis",
            "disable",
            project.to_str().expect("utf8"),
            "--express",
            "--apphostconfig",
            r"C:\Users\dev\Documents\IISExpress\config\applicationhost.config",
            "--iiswsgi-exe",
            r"C:\tools\iiswsgi.exe",
            "--physical-path",
            r"C:\src\plain",
        ]);
        let t = text(&out);
        assert!(out.status.success(), "{t}");
        assert!(
            t.contains(r#""%ProgramFiles%\IIS Express\appcmd.exe" set config -section:system.webServer/fastCgi /-"[fullPath='C:\tools\iiswsgi.exe',arguments='run --manifest C:\src\plain\iiswsgi.toml']" /commit:apphost /apphostconfig:C:\Users\dev\Documents\IISExpress\config\applicationhost.config"#),
            "{t}"
        );
    }

    #[test]
    fn quote_in_the_app_path_is_refused() {
        let (_tmp, project) = example_copy("plain-wsgi");
        let out = iis(&[
            "iis",
            "enable",
            project.to_str().expect("utf8"),
            "--physical-path",
            r"C:\inetpub\wwwroot\Bob's Shop",
        ]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{t}");
        assert!(t.contains("contains `'`, which appcmd cannot quote"), "{t}");
    }
}
