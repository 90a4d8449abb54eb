//! `iiswsgi init` on fixture projects (tests/fixtures/init/*), copied into a temp folder so
//! nothing is written into the repository: what it detects, that the manifest it writes is
//! valid (or flags exactly its TODOs), and how the binary behaves for a user.

use std::path::{Path, PathBuf};
use std::process::Command;

use iiswsgi::manifest::Manifest;
use iiswsgi::package::init::{self, InitOptions};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/init")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A temp copy of fixture `name`, in a folder of the same name (the name can become the
/// app name).
fn project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_dir(&fixture(name), &dir);
    (tmp, dir)
}

fn run_init(dir: &Path) -> init::InitReport {
    init::init(&InitOptions {
        dir: dir.to_path_buf(),
        force: false,
    })
    .unwrap_or_else(|e| panic!("init failed: {e}"))
}

fn detected(report: &init::InitReport, what: &str) -> Option<String> {
    report
        .plan
        .detected
        .iter()
        .find(|d| d.what == what)
        .map(|d| d.value.clone())
}

fn load(dir: &Path) -> Manifest {
    let path = dir.join("iiswsgi.toml");
    Manifest::load(&path).unwrap_or_else(|e| panic!("written manifest is invalid:\n{}", e.render()))
}

mod library {
    use super::*;

    #[test]
    fn init_reads_pyproject_project_table() {
        let (_tmp, dir) = project("pyproject-only");
        let report = run_init(&dir);
        assert_eq!(detected(&report, "name").as_deref(), Some("AcmeShop"));
        let m = load(&dir);
        assert_eq!(m.app.name.as_str(), "AcmeShop");
        assert_eq!(m.app.title, "Acme Shop");
        assert_eq!(m.app.version.as_str(), "2.3.1");
        assert_eq!(m.app.description.as_deref(), Some("The ACME online shop."));
        assert_eq!(
            m.app.author.as_deref(),
            Some("Ann Example <ann@example.com>")
        );
        assert_eq!(m.app.license.as_deref(), Some("MIT"));
        assert_eq!(
            m.app.homepage_url.as_ref().map(|u| u.as_str()),
            Some("https://shop.example.com/")
        );
        assert_eq!(m.wsgi.app.to_string(), "shop:application");
        assert!(m.package.requirements.is_none());
        // Nothing to install: no venv is set (the base interpreter serves).
        assert!(m.wsgi.venv.is_none());
    }

    #[test]
    fn init_reads_poetry_and_finds_a_flask_factory_in_a_src_layout() {
        let (_tmp, dir) = project("poetry");
        let report = run_init(&dir);
        let m = load(&dir);
        assert_eq!(m.app.name.as_str(), "TinyBlog");
        assert_eq!(m.app.version.as_str(), "0.4.0");
        assert_eq!(m.app.author.as_deref(), Some("Bo Writer <bo@example.com>"));
        assert_eq!(m.wsgi.app.to_string(), "blog:create_app()");
        assert!(m.wsgi.app.call);
        let paths: Vec<&str> = m.wsgi.python_paths.iter().map(|p| p.as_str()).collect();
        assert_eq!(paths, ["src"]);
        assert!(
            report.plan.todo.iter().any(|t| t.contains("factory")),
            "{:?}",
            report.plan.todo
        );
    }

    #[test]
    fn init_reads_setup_cfg_metadata() {
        let (_tmp, dir) = project("setup-cfg-only");
        run_init(&dir);
        let m = load(&dir);
        assert_eq!(m.app.name.as_str(), "BottleNotes");
        assert_eq!(m.app.version.as_str(), "1.0.0rc1");
        assert_eq!(
            m.app.description.as_deref(),
            Some("Notes, served by Bottle.")
        );
        assert_eq!(m.app.author.as_deref(), Some("Cy <cy@example.com>"));
        assert_eq!(m.wsgi.app.to_string(), "main:app");
    }

    #[test]
    fn init_reads_literal_setup_py_arguments_without_running_it() {
        let (_tmp, dir) = project("setup-py-only");
        // setup.py reads a VERSION file that does not exist: running it would fail.
        let report = run_init(&dir);
        let m = load(&dir);
        assert_eq!(m.app.name.as_str(), "LegacyPortal");
        assert_eq!(m.app.description.as_deref(), Some("The old portal."));
        assert_eq!(m.app.author.as_deref(), Some("Dee"));
        // version= is computed, so it is not taken; 0.1.0 is written and flagged.
        assert_eq!(m.app.version.as_str(), "0.1.0");
        assert!(
            report
                .plan
                .todo
                .iter()
                .any(|t| t.contains("no version found"))
        );
        assert_eq!(m.wsgi.app.to_string(), "portal:application");
    }

    #[test]
    fn init_finds_flask_app_and_names_the_app_after_the_folder() {
        let (_tmp, dir) = project("flask");
        let report = run_init(&dir);
        let m = load(&dir);
        assert_eq!(m.app.name.as_str(), "Flask");
        assert_eq!(m.wsgi.app.to_string(), "hello:app");
        assert_eq!(
            m.package.requirements.as_ref().map(|r| r.as_str()),
            Some("requirements.txt")
        );
        // Requirements need a venv for `iiswsgi install` to put them in: init sets one.
        assert!(
            matches!(&m.wsgi.venv, Some(iiswsgi::manifest::Venv::InApp(p)) if p.as_str() == ".venv"),
            "{:?}",
            m.wsgi.venv
        );
        let app = report
            .plan
            .detected
            .iter()
            .find(|d| d.what == "wsgi app")
            .unwrap();
        assert_eq!(app.source, "hello.py:3: `app = Flask(__name__)`");
        assert!(
            report
                .plan
                .text
                .contains("# Found by `iiswsgi init`: Flask in hello.py line 3.")
        );
    }

    #[test]
    fn init_finds_django_wsgi_and_skips_venvs_vcs_and_node_modules() {
        let (_tmp, dir) = project("django");
        // Decoys that must never be picked, created here because git cannot hold `.git`.
        for decoy in [
            ".venv/lib/python3.11/site-packages/flaskapp.py",
            "venv/bad.py",
            "env/lib/x.py",
            ".git/hooks/x.py",
            "node_modules/pkg/x.py",
        ] {
            let p = dir.join(decoy);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "from flask import Flask\napp = Flask(__name__)\n").unwrap();
        }
        std::fs::write(dir.join("env/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        let report = run_init(&dir);
        let m = load(&dir);
        assert_eq!(m.wsgi.app.to_string(), "mysite.wsgi:application");
        assert_eq!(m.app.name.as_str(), "Django");
        assert!(m.wsgi.python_paths.is_empty());
        assert!(
            report.plan.notes.iter().all(|n| !n.contains("Flask")),
            "a decoy was considered: {:?}",
            report.plan.notes
        );
        // Django's management commands are suggested, commented out.
        assert!(
            report
                .plan
                .text
                .contains("#     \"python manage.py migrate --noinput\",")
        );
        assert!(m.package.post_install.is_empty());
    }

    #[test]
    fn init_explains_that_a_pyramid_main_is_a_paste_factory_and_leaves_a_todo() {
        let (_tmp, dir) = project("pyramid");
        let report = run_init(&dir);
        assert!(
            report.plan.todo.iter().any(|t| t.contains("paste factory")),
            "{:?}",
            report.plan.todo
        );
        assert!(report.plan.text.contains("pyramid.paster import get_app"));
        let e = Manifest::load(&dir.join("iiswsgi.toml")).unwrap_err();
        let errs: Vec<_> = e.diagnostics().iter().filter(|d| d.is_error()).collect();
        assert_eq!(errs.len(), 1, "{}", e.render());
        assert_eq!(
            errs[0].message,
            "this value is a placeholder left by `iiswsgi init`"
        );
        let line = report.plan.text.lines().nth(errs[0].line - 1).unwrap();
        assert_eq!(line, "app = \"TODO:module:callable\"");
    }

    #[test]
    fn init_with_nothing_found_says_so_and_writes_a_manifest_check_rejects() {
        let (_tmp, dir) = project("nothing");
        let report = run_init(&dir);
        assert!(report.plan.nothing_found);
        let shown = report.to_string();
        assert!(shown.contains("Found no project metadata (pyproject.toml, setup.cfg, setup.py) and no WSGI callable"), "{shown}");
        assert!(
            shown.contains("[wsgi] app: no WSGI callable found in 0 Python files"),
            "{shown}"
        );
        let e = Manifest::load(&dir.join("iiswsgi.toml")).unwrap_err();
        let errs: Vec<_> = e.diagnostics().iter().filter(|d| d.is_error()).collect();
        assert_eq!(errs.len(), 1, "{}", e.render());
        assert!(errs[0].message.contains("placeholder"));
        // Everything except the TODO is already valid.
        let fixed = report
            .plan
            .text
            .replace("TODO:module:callable", "app:application");
        Manifest::parse(&fixed, Path::new("iiswsgi.toml")).unwrap();
    }

    #[test]
    fn init_refuses_to_overwrite_and_force_keeps_a_backup() {
        let (_tmp, dir) = project("flask");
        std::fs::write(dir.join("iiswsgi.toml"), "# mine\n").unwrap();
        let err = init::init(&InitOptions {
            dir: dir.clone(),
            force: false,
        })
        .unwrap_err();
        assert!(matches!(err, init::InitError::Exists { .. }));
        assert_eq!(
            std::fs::read_to_string(dir.join("iiswsgi.toml")).unwrap(),
            "# mine\n"
        );
        let report = init::init(&InitOptions {
            dir: dir.clone(),
            force: true,
        })
        .unwrap();
        assert_eq!(
            report.backup.as_deref(),
            Some(dir.join("iiswsgi.toml.bak").as_path())
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("iiswsgi.toml.bak")).unwrap(),
            "# mine\n"
        );
        load(&dir);
    }

    #[test]
    fn init_output_for_each_example_is_valid_and_matches_its_committed_wsgi_app() {
        let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
        for name in ["flask-hello", "django-site", "plain-wsgi"] {
            let plan = init::plan(&examples.join(name)).unwrap();
            let fresh = Manifest::parse(&plan.text, Path::new("iiswsgi.toml"))
                .unwrap_or_else(|e| panic!("{name}: {}", e.render()));
            let committed = Manifest::load(&examples.join(name).join("iiswsgi.toml")).unwrap();
            assert_eq!(fresh.wsgi.app, committed.wsgi.app, "{name}");
            assert_eq!(fresh.app.name, committed.app.name, "{name}");
        }
    }
}

/// The built binary, as a user runs it.
mod cli {
    use super::*;

    fn iiswsgi() -> Command {
        Command::new(env!("CARGO_BIN_EXE_iiswsgi"))
    }

    #[test]
    fn init_prints_what_it_detected_and_what_is_left_to_do() {
        let (_tmp, dir) = project("pyproject-only");
        let out = iiswsgi().arg("init").arg(&dir).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(
            stdout.starts_with(&format!("wrote {}", dir.join("iiswsgi.toml").display())),
            "{stdout}"
        );
        assert!(stdout.contains("detected:\n  name"), "{stdout}");
        assert!(
            stdout.contains("AcmeShop")
                && stdout.contains("pyproject.toml [project] name \"acme-shop\""),
            "{stdout}"
        );
        assert!(
            stdout.contains("shop:application") && stdout.contains("shop.py:1"),
            "{stdout}"
        );
        assert!(stdout.contains("still to do:"), "{stdout}");
        assert!(stdout.contains("next: iiswsgi check"), "{stdout}");
    }

    #[test]
    fn init_refuses_to_overwrite_without_force_and_exits_one() {
        let (_tmp, dir) = project("flask");
        assert!(iiswsgi().arg("init").arg(&dir).status().unwrap().success());
        let first = std::fs::read_to_string(dir.join("iiswsgi.toml")).unwrap();
        let out = iiswsgi().arg("init").arg(&dir).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("iiswsgi.toml already exists; not overwriting it."),
            "{stderr}"
        );
        assert!(stderr.contains("Pass --force to replace it"), "{stderr}");
        assert_eq!(
            std::fs::read_to_string(dir.join("iiswsgi.toml")).unwrap(),
            first
        );
        let forced = iiswsgi()
            .arg("init")
            .arg("--force")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(forced.status.success());
        assert!(String::from_utf8_lossy(&forced.stdout).contains("iiswsgi.toml.bak"));
    }

    #[test]
    fn init_then_check_fails_on_the_todo_until_it_is_filled_in() {
        let (_tmp, dir) = project("nothing");
        assert!(iiswsgi().arg("init").arg(&dir).status().unwrap().success());
        let manifest = dir.join("iiswsgi.toml");
        let out = iiswsgi().arg("check").arg(&manifest).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("this value is a placeholder left by `iiswsgi init`"),
            "{stdout}"
        );
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(
            &manifest,
            text.replace("TODO:module:callable", "app:application"),
        )
        .unwrap();
        let out = iiswsgi().arg("check").arg(&manifest).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    #[test]
    fn init_on_a_missing_folder_is_a_clear_error() {
        let out = iiswsgi()
            .args(["init", "/nonexistent/project"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("/nonexistent/project is not a folder")
        );
    }

    #[test]
    fn init_help_names_the_sources_it_reads_and_the_force_flag() {
        let out = iiswsgi().args(["init", "--help"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        for needle in [
            "pyproject.toml",
            "setup.cfg",
            "setup.py",
            "never run",
            "--force",
            "TODO",
        ] {
            assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
        }
    }

    #[test]
    fn top_level_help_lists_init_and_check() {
        let out = iiswsgi().arg("--help").output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("  init ") && stdout.contains("  check "),
            "{stdout}"
        );
    }
}

/// Real layouts (issue 13, item 5): mod_wsgi scripts, pyproject-only dependencies, Django's
/// asgi.py beside wsgi.py, a project's own `.venv`, a deep tree, comments as written.
mod real_layouts {
    use super::*;
    use iiswsgi::probe::{self, Outcome, ProbeRequest};

    #[test]
    fn a_mod_wsgi_script_is_served_through_a_shim_that_imports() {
        let (_tmp, dir) = project("wsgi-script");
        let report = run_init(&dir);
        let m = load(&dir);
        assert_eq!(m.wsgi.app.to_string(), "notes_wsgi:application");
        assert_eq!(m.app.name.as_str(), "NotesWiki");
        let app = report
            .plan
            .detected
            .iter()
            .find(|d| d.what == "wsgi app")
            .expect("detected");
        assert_eq!(
            app.source,
            "cgi-bin/notes.wsgi:11: `application = make_app(title=\"Notes\")`"
        );
        let shim = std::fs::read_to_string(dir.join("notes_wsgi.py")).expect("shim written");
        assert!(shim.contains("\"cgi-bin\", \"notes.wsgi\""), "{shim}");
        assert!(
            report
                .to_string()
                .contains("notes_wsgi.py: serves the mod_wsgi script cgi-bin/notes.wsgi")
        );
        // The shim really serves the script's application (run by the base python, as
        // `check --import` would without a venv): not run as __main__, so no dev server.
        let python = probe::interpreter(&m, &dir, None, None)
            .expect("a python3")
            .python;
        let outcome = probe::probe(&ProbeRequest::for_manifest(&m, &dir, python)).expect("probe");
        match outcome {
            Outcome::Imported(i) => {
                assert_eq!(i.object, "function notes.web.make_app.<locals>.app")
            }
            Outcome::Failed(p) => panic!("{p:?}"),
        }
        // A second init (with --force) rewrites its own shim, never a file of the user's.
        init::init(&InitOptions {
            dir: dir.clone(),
            force: true,
        })
        .expect("second init");
        std::fs::write(dir.join("notes_wsgi.py"), "# mine\n").expect("write");
        let plan = init::plan(&dir).expect("plan");
        assert_eq!(
            plan.extra_files[0].path,
            dir.join("notes_wsgi2.py"),
            "a foreign notes_wsgi.py is left alone"
        );
    }

    #[test]
    fn pyproject_dependencies_become_the_requirements_file_when_there_is_none() {
        let (_tmp, dir) = project("pyproject-deps");
        let report = run_init(&dir);
        let m = load(&dir);
        assert_eq!(
            m.package.requirements.as_ref().map(|r| r.as_str()),
            Some("requirements.txt")
        );
        assert!(
            matches!(&m.wsgi.venv, Some(iiswsgi::manifest::Venv::InApp(p)) if p.as_str() == ".venv"),
            "{:?}",
            m.wsgi.venv
        );
        let req = std::fs::read_to_string(dir.join("requirements.txt")).expect("written");
        let lines: Vec<&str> = req.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            ["flask>=3.0", "requests>=2.31; python_version >= \"3.8\""]
        );
        assert!(req.starts_with("# Written by `iiswsgi init` from pyproject.toml"));
        assert!(
            !report
                .plan
                .notes
                .iter()
                .any(|n| n.contains("no requirements.txt")),
            "{:?}",
            report.plan.notes
        );
    }

    #[test]
    fn django_asgi_py_is_never_proposed() {
        let (_tmp, dir) = project("django-asgi");
        let report = run_init(&dir);
        let m = load(&dir);
        assert_eq!(m.wsgi.app.to_string(), "mysite.wsgi:application");
        assert!(
            !report.plan.notes.iter().any(|n| n.contains("also found")),
            "{:?}",
            report.plan.notes
        );
        assert!(
            report
                .plan
                .notes
                .iter()
                .any(|n| n.starts_with("mysite/asgi.py: an ASGI application")),
            "{:?}",
            report.plan.notes
        );
        // With asgi.py alone there is nothing to serve: a TODO, not the ASGI app.
        std::fs::remove_file(dir.join("mysite/wsgi.py")).expect("rm");
        let plan = init::plan(&dir).expect("plan");
        assert!(
            plan.text.contains("app = \"TODO:module:callable\""),
            "{}",
            plan.text
        );
    }

    #[test]
    fn a_projects_own_venv_is_set_and_never_searched() {
        let (_tmp, dir) = project("pyproject-only");
        std::fs::create_dir_all(dir.join(".venv/lib")).expect("mkdir");
        std::fs::write(dir.join(".venv/pyvenv.cfg"), "home = /usr/bin\n").expect("cfg");
        std::fs::write(
            dir.join(".venv/lib/decoy.py"),
            "from flask import Flask\napp = Flask(__name__)\n",
        )
        .expect("decoy");
        run_init(&dir);
        let m = load(&dir);
        assert!(
            matches!(&m.wsgi.venv, Some(iiswsgi::manifest::Venv::InApp(p)) if p.as_str() == ".venv"),
            "{:?}",
            m.wsgi.venv
        );
        assert_eq!(m.wsgi.app.to_string(), "shop:application");
    }

    #[test]
    fn a_shallow_wsgi_py_is_found_in_a_tree_larger_than_the_file_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("bigsite");
        // 5,100 vendored modules that sort before the app and exceed the read limit: a
        // depth-first walk reads them all and stops before webapp/wsgi.py.
        for p in 0..51 {
            let pkg = dir.join(format!("aaa_vendor/pkg{p:02}"));
            std::fs::create_dir_all(&pkg).unwrap();
            for m in 0..100 {
                std::fs::write(pkg.join(format!("m{m:03}.py")), "X = 1\n").unwrap();
            }
        }
        std::fs::create_dir_all(dir.join("webapp")).unwrap();
        std::fs::write(dir.join("webapp/__init__.py"), "").unwrap();
        std::fs::write(
            dir.join("webapp/wsgi.py"),
            "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
        )
        .unwrap();
        let report = run_init(&dir);
        let m = load(&dir);
        assert_eq!(m.wsgi.app.to_string(), "webapp.wsgi:application");
        assert!(
            report
                .plan
                .notes
                .iter()
                .any(|n| n.contains("stopped searching after 5000")),
            "the limit still applies: {:?}",
            report.plan.notes
        );
    }

    #[test]
    fn comments_keep_their_quotes_unescaped() {
        for fixture in ["nothing", "pyramid", "flask"] {
            let (_tmp, dir) = project(fixture);
            let report = run_init(&dir);
            let escaped: Vec<&str> = report
                .plan
                .text
                .lines()
                .filter(|l| l.starts_with('#') && l.contains("\\\""))
                .collect();
            assert!(escaped.is_empty(), "{fixture}: {escaped:?}");
        }
        let (_tmp, dir) = project("nothing");
        let text = run_init(&dir).plan.text;
        assert!(
            text.contains("# No WSGI callable was found. Name yours, e.g. \"hello:app\""),
            "{text}"
        );
    }
}
