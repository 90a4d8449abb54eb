//! Unit tests of the validated model: defaults, helpers the renderers use, and file
//! selection. Mistakes and their messages are tested in `tests/manifest.rs`.

use super::*;

const MINIMAL: &str = "[app]\nname = \"Shop\"\nversion = \"1.0\"\n[wsgi]\napp = \"shop:app\"\n";

fn parse(text: &str) -> Manifest {
    match Manifest::parse(text, Path::new("proj/iiswsgi.toml")) {
        Ok(m) => m,
        Err(e) => panic!("{}", e.render()),
    }
}

#[test]
fn minimal_manifest_gets_every_default() {
    let m = parse(MINIMAL);
    assert_eq!(m.app.title, "Shop");
    assert_eq!(m.iis.application_path, "Default Web Site/Shop");
    assert!(!m.iis.allow_site_root);
    assert_eq!(m.iis.handler.name, "iiswsgi-Shop");
    assert_eq!(m.iis.handler.path, "*");
    assert_eq!(m.iis.handler.verbs, ["*"]);
    assert_eq!(m.iis.handler.require_access, RequireAccess::Script);
    assert_eq!(
        m.iis.handler.resource_type,
        HandlerResourceType::Unspecified
    );
    assert!(m.iis.request_filtering.allow_double_escaping);
    assert_eq!(
        m.iis.request_filtering.max_allowed_content_length,
        30_000_000
    );
    assert_eq!(m.iis.fastcgi.protocol, Protocol::NamedPipe);
    assert_eq!(m.iis.fastcgi.queue_length, 1000);
    assert_eq!(m.iis.fastcgi.rapid_fails_per_minute, 10);
    assert!(m.iis.set_acl.is_empty());
    assert_eq!(m.iis.iiswsgi_exe, crate::manifest::DEFAULT_IISWSGI_EXE);
    assert_eq!(
        m.iis.application_parameter.as_str(),
        crate::manifest::APPLICATION_PATH_PARAMETER
    );
    assert!(!m.feed.declared, "no [feed] section: no feed");
    assert_eq!(m.package.root, PathBuf::from("."));
    assert_eq!(m.package.include, ["**"]);
    assert_eq!(m.package.exclude.len(), DEFAULT_EXCLUDES.len());
    assert_eq!(
        (
            m.package.install_wait_attempts,
            m.package.install_wait_interval_ms
        ),
        (180, 5000)
    );
    assert_eq!(m.feed.language, "en");
    assert_eq!(m.feed.start_page, "");
    assert_eq!(m.run.threads, 8);
    assert_eq!(m.run.log_level, LogLevel::Info);
    assert_eq!(m.run.limits, Limits::default());
    assert_eq!(m.base_dir(), Path::new("proj"));
    assert_eq!(m.package_root(), PathBuf::from("proj/."));
}

#[test]
fn fastcgi_attributes_use_iis_names_in_a_fixed_order() {
    let m = parse(MINIMAL);
    let names: Vec<&str> = m.iis.fastcgi.attributes().iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "maxInstances",
            "instanceMaxRequests",
            "activityTimeout",
            "requestTimeout",
            "idleTimeout",
            "signalBeforeTerminateSeconds",
            "protocol",
            "queueLength",
            "rapidFailsPerMinute",
            "stderrMode",
            "flushNamedPipe",
        ]
    );
    let attrs = m.iis.fastcgi.attributes();
    assert_eq!(attrs[1].1, "10000");
    assert_eq!(attrs[9].1, "ReturnGeneric500");
    assert_eq!(attrs[10].1, "false");
}

#[test]
fn set_acl_rights_are_canonicalised_and_joined() {
    let m = parse(&format!(
        "{MINIMAL}[[iis.set-acl]]\npath = \"./App_Data/\"\naccess = [\"readandexecute\", \"WRITE\"]\nresource-type = \"File\"\nuser = \"IUSR\"\n"
    ));
    let acl = &m.iis.set_acl[0];
    assert_eq!(acl.path.as_str(), "App_Data");
    assert_eq!(acl.path.to_windows(), "App_Data");
    assert_eq!(acl.access_attr(), "ReadAndExecute,Write");
    assert_eq!(acl.resource_type, AclResourceType::File);
    assert_eq!(acl.user.as_deref(), Some("IUSR"));
}

#[test]
fn package_default_excludes_apply_to_folders_and_their_contents() {
    let m = parse(MINIMAL);
    let p = &m.package;
    for kept in [
        "hello.py",
        "static/app.js",
        "src/venvironment.py",
        "templates/dist.html",
        "sub/venv/x.py",
    ] {
        assert!(p.is_packaged(kept), "{kept} should be packaged");
    }
    for dropped in [
        ".git/config",
        ".venv/lib/site.py",
        "venv/Scripts/python.exe",
        "dist/Shop-1.0.zip",
        "pkg/__pycache__/mod.cpython-311.pyc",
        "deep/er/mod.pyc",
        "web/node_modules/x/index.js",
        "shop.egg-info/PKG-INFO",
    ] {
        assert!(!p.is_packaged(dropped), "{dropped} should be excluded");
    }
    assert!(p.is_excluded(".git"));
}

#[test]
fn package_user_globs_add_to_defaults_or_replace_them() {
    let m = parse(&format!(
        "{MINIMAL}[package]\ninclude = [\"**/*.py\", \"static/**\"]\nexclude = [\"tests\", \"**/*.log\"]\n"
    ));
    let p = &m.package;
    assert!(p.is_packaged("app/views.py") && p.is_packaged("static/site.css"));
    assert!(!p.is_packaged("README.md"), "not included");
    assert!(!p.is_packaged("tests/test_app.py") && !p.is_packaged("a/b/c.log"));
    assert!(!p.is_packaged(".venv/x.py"), "defaults still apply");
    let m = parse(&format!(
        "{MINIMAL}[package]\ndefault-excludes = false\nexclude = [\"secret\"]\n"
    ));
    assert!(m.package.is_packaged(".git/config"));
    assert!(!m.package.is_packaged("secret/key.pem"));
    assert_eq!(m.package.exclude, ["secret"]);
}

#[test]
fn app_name_sanitize_turns_project_names_into_valid_names() {
    let s = |n: &str| AppName::sanitize(n).map(|a| a.to_string());
    assert_eq!(s("flask-hello").as_deref(), Some("FlaskHello"));
    assert_eq!(s("my_site.web").as_deref(), Some("MySiteWeb"));
    assert_eq!(s("2fast web").as_deref(), Some("FastWeb"));
    assert_eq!(s("con").as_deref(), Some("ConApp"));
    assert_eq!(s("---"), None);
    assert_eq!(s(&"a".repeat(100)).map(|n| n.len()), Some(APP_NAME_MAX));
}

#[test]
fn app_name_errors_read_after_the_key() {
    let why = |n: &str| match AppName::new(n) {
        Ok(a) => panic!("{a} was accepted"),
        Err(e) => e.to_string(),
    };
    assert_eq!(why(""), "must not be empty");
    assert_eq!(
        why("My Shop"),
        "must contain only ASCII letters, digits and `_`, found ` ` (a space) in \"My Shop\""
    );
    assert_eq!(why("2shop"), "must start with a letter, found \"2shop\"");
    assert_eq!(
        why(&"a".repeat(65)),
        "must be at most 64 characters, found 65"
    );
    assert_eq!(why("con"), "\"con\" is a reserved Windows device name");
}

#[test]
fn validation_type_attr_adds_allow_empty() {
    let m = parse(&format!(
        "{MINIMAL}[[parameters]]\nname = \"Mode\"\ndefault = \"\"\nvalidation = {{ kind = \"Enumeration\", value = \"a,b\", allow-empty = true }}\nentries = [{{ kind = \"XmlFile\", scope = '\\\\web\\.config$', match = \"/configuration/appSettings/add[@key='Mode']/@value\" }}]\n"
    ));
    let p = &m.parameters[0];
    assert_eq!(
        p.validation.as_ref().unwrap().type_attr(),
        "AllowEmpty,Enumeration"
    );
    assert_eq!(p.entries[0].kind.as_str(), "XmlFile");
    assert!(p.tags_attr().is_none());
}

#[test]
fn warnings_do_not_stop_a_manifest_from_loading() {
    let m = parse(&format!(
        "{MINIMAL}[iis.fastcgi]\nactivity-timeout = 900\nrequest-timeout = 300\n[feed]\ndependencies = [\"CGI\"]\n"
    ));
    let msgs: Vec<&str> = m.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[0].contains("longer than `request-timeout`"));
    assert!(msgs[1].contains("already a dependency"));
    assert!(m.feed.dependencies.is_empty());
}

#[test]
fn microsoft_product_id_as_app_name_is_a_warning() {
    let m = parse(&MINIMAL.replace("\"Shop\"", "\"php\""));
    assert_eq!(m.warnings.len(), 1);
    assert!(m.warnings[0].message.contains("Microsoft WebPI productId"));
}

#[test]
fn factory_target_and_venv_forms_parse() {
    let m = parse(&format!(
        "{MINIMAL}python-paths = [\"src\", \"lib/\"]\nvenv = 'C:\\venvs\\shop'\npython-version = \"3.12\"\n[wsgi.environment]\nPYTHONUTF8 = \"1\"\n"
    )
    .replace("\"shop:app\"", "\"shop.web:create_app()\""));
    assert_eq!(m.wsgi.app.module, "shop.web");
    assert!(m.wsgi.app.call);
    assert_eq!(
        m.wsgi.venv,
        Some(Venv::Absolute("C:\\venvs\\shop".to_string()))
    );
    assert_eq!(m.wsgi.python_version, Some((3, 12)));
    let paths: Vec<&str> = m.wsgi.python_paths.iter().map(|p| p.as_str()).collect();
    assert_eq!(paths, ["src", "lib"]);
    assert_eq!(
        m.wsgi.environment.get("PYTHONUTF8").map(String::as_str),
        Some("1")
    );
    let m = parse(&format!("{MINIMAL}venv = \".venv\"\n"));
    assert_eq!(
        m.wsgi
            .venv
            .map(|v| matches!(v, Venv::InApp(p) if p.as_str() == ".venv")),
        Some(true)
    );
}

#[test]
fn crlf_and_bom_manifests_parse_and_point_at_the_right_column() {
    let text = format!("\u{feff}{}", MINIMAL.replace('\n', "\r\n"));
    let m = parse(&text);
    assert_eq!(m.app.name.as_str(), "Shop");
    let bad = text.replace("\"1.0\"", "\"x\"");
    let e = Manifest::parse(&bad, Path::new("iiswsgi.toml")).unwrap_err();
    let d = &e.diagnostics()[0];
    assert_eq!((d.line, d.column), (3, 11));
    assert!(d.to_string().contains("3 | version = \"x\"\n"), "{d}");
}

/// Issue 16 item 6: `[iis] iiswsgi-exe` that would let cmd.exe run more than iiswsgi is an
/// error at its line and column; a relative one is a warning.
#[test]
fn iiswsgi_exe_with_cmd_metacharacters_is_refused_and_a_relative_one_warned() {
    let text = format!("{MINIMAL}[iis]\niiswsgi-exe = 'C:\\x\\iiswsgi.exe\" & calc & \"'\n");
    let err = Manifest::parse(&text, Path::new("iiswsgi.toml")).expect_err("injection");
    let rendered = err.render();
    assert!(
        rendered.contains("iiswsgi.toml:7:15: `iis.iiswsgi-exe` contains `\"`, which cmd.exe"),
        "{rendered}"
    );
    let m = parse(&format!("{MINIMAL}[iis]\niiswsgi-exe = \"iiswsgi.exe\"\n"));
    assert_eq!(m.iis.iiswsgi_exe, "iiswsgi.exe");
    assert!(
        m.warnings[0].message.contains("is not absolute"),
        "{:?}",
        m.warnings
    );
}

/// Issue 14 item 6: with the MSBuild name, defaults reference `{IIS Web Application Name}`.
#[test]
fn application_parameter_name_decides_what_defaults_may_reference() {
    let params = "[[parameters]]\nname = \"Url\"\ndefault = \"http://x/{REF}\"\n";
    let msbuild =
        format!("{MINIMAL}[iis]\napplication-parameter = \"IIS Web Application Name\"\n{params}");
    let m = parse(&msbuild.replace("REF", "IIS Web Application Name"));
    assert_eq!(
        m.iis.application_parameter,
        ApplicationParameter::IisWebApplicationName
    );
    let err = Manifest::parse(
        &msbuild.replace("REF", "Application Path"),
        Path::new("iiswsgi.toml"),
    )
    .expect_err("the other name is not declared");
    assert!(
        err.render().contains("e.g. `{IIS Web Application Name}`"),
        "{}",
        err.render()
    );
    let reserved = Manifest::parse(
        &format!("{MINIMAL}[[parameters]]\nname = \"IIS Web Application Name\"\ndefault = \"x\"\n"),
        Path::new("iiswsgi.toml"),
    )
    .expect_err("reserved");
    assert!(
        reserved.render().contains("is reserved"),
        "{}",
        reserved.render()
    );
}

#[test]
fn excluded_by_names_the_glob_that_left_a_path_out() {
    let m = parse(&format!("{MINIMAL}[package]\nexclude = [\"docs/**\"]\n"));
    assert_eq!(m.package.excluded_by("logs/iiswsgi.log"), Some("logs"));
    assert_eq!(
        m.package.excluded_by("app/data.sqlite3"),
        Some("**/*.sqlite3")
    );
    assert_eq!(
        m.package.excluded_by("instance/config.py"),
        Some("instance")
    );
    assert_eq!(m.package.excluded_by("docs/index.md"), Some("docs/**"));
    assert_eq!(m.package.excluded_by("app/views.py"), None);
}

#[test]
fn run_socket_mode_is_octal_and_unset_by_default() {
    assert_eq!(parse(MINIMAL).run.socket_mode, None);
    let m = parse(&format!("{MINIMAL}[run]\nsocket-mode = \"0660\"\n"));
    assert_eq!(m.run.socket_mode, Some(0o660));
    let e = Manifest::parse(
        &format!("{MINIMAL}[run]\nsocket-mode = \"0668\"\n"),
        Path::new("iiswsgi.toml"),
    )
    .expect_err("not octal");
    let d = &e.diagnostics()[0];
    assert_eq!((d.line, d.column), (7, 15));
    assert_eq!(d.message, "`run.socket-mode` \"0668\" is not an octal mode");
}

#[test]
fn socket_modes_are_octal_digits_up_to_777() {
    for (text, mode) in [
        ("660", 0o660),
        ("0660", 0o660),
        ("0o600", 0o600),
        ("777", 0o777),
    ] {
        assert_eq!(parse_socket_mode(text), Some(mode), "{text}");
    }
    for bad in [
        "", "0o", "1777", "0x1b6", "66a", "-660", " 660", "99", "01000",
    ] {
        assert_eq!(parse_socket_mode(bad), None, "{bad:?}");
    }
}
