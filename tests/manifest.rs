//! The `iiswsgi.toml` manifest through the library's public API and the built binary: the
//! examples are valid (and really serve), the committed JSON schema is current, and every
//! kind of mistake is reported with its message and `line:col`.

use std::path::{Path, PathBuf};
use std::process::Command;

use iiswsgi::manifest::{self, Manifest, ManifestError};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A manifest that passes, to which each invalid case adds one mistake.
const VALID: &str = r#"[app]
name = "Shop"
version = "1.0.0"

[wsgi]
app = "shop:app"
"#;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, Path::new("iiswsgi.toml"))
}

/// `(line, col, message)` of every error, in file order.
fn errors(text: &str) -> Vec<(usize, usize, String)> {
    match parse(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e
            .diagnostics()
            .iter()
            .filter(|d| d.is_error())
            .map(|d| (d.line, d.column, d.message.clone()))
            .collect(),
    }
}

/// The single error of `text`: its `(line, col)`, message and help.
fn only_error(text: &str) -> (usize, usize, String, String) {
    let e = parse(text).expect_err("expected an error");
    let errs: Vec<_> = e.diagnostics().iter().filter(|d| d.is_error()).collect();
    assert_eq!(
        errs.len(),
        1,
        "expected exactly one error, got:\n{}",
        e.render()
    );
    let d = errs[0];
    (
        d.line,
        d.column,
        d.message.clone(),
        d.help.clone().unwrap_or_default(),
    )
}

mod examples {
    use super::*;

    fn load(name: &str) -> Manifest {
        let path = repo().join("examples").join(name).join(manifest::FILE_NAME);
        match Manifest::load(&path) {
            Ok(m) => m,
            Err(e) => panic!("{} is invalid:\n{}", path.display(), e.render()),
        }
    }

    #[test]
    fn flask_hello_manifest_is_valid_with_defaults_applied() {
        let m = load("flask-hello");
        assert_eq!(m.app.name.as_str(), "FlaskHello");
        assert_eq!(m.app.version.as_str(), "0.1.0");
        assert_eq!(m.wsgi.app.to_string(), "hello:app");
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        // Defaults from iis-runtime.md §8.4 / msdeploy-webpi.md §5.2.
        assert_eq!(m.iis.application_path, "Default Web Site/FlaskHello");
        assert_eq!(m.iis.handler.name, "iiswsgi-FlaskHello");
        assert_eq!(m.iis.handler.response_buffer_limit, 0);
        assert_eq!(m.iis.fastcgi.instance_max_requests, 10_000);
        assert_eq!(m.iis.fastcgi.signal_before_terminate_seconds, 30);
        assert_eq!(
            (
                m.iis.fastcgi.activity_timeout,
                m.iis.fastcgi.request_timeout,
                m.iis.fastcgi.idle_timeout
            ),
            (600, 600, 1800)
        );
        assert_eq!(
            m.iis.fastcgi.stderr_mode,
            manifest::StderrMode::ReturnGeneric500
        );
        let reload = m.wsgi.reload.as_ref().expect("reload on by default");
        assert_eq!(reload.source, manifest::DEFAULT_RELOAD_REGEX);
        assert!(reload.regex.is_match("app/views.py") && !reload.regex.is_match("static/x.css"));
        assert_eq!(
            m.package.requirements.as_ref().map(|r| r.as_str()),
            Some("requirements.txt")
        );
        assert_eq!(
            m.feed.download_base_url.as_ref().map(|u| u.as_str()),
            Some("https://downloads.example.com/FlaskHello/")
        );
    }

    #[test]
    fn django_site_manifest_is_valid_with_parameters_and_acl() {
        let m = load("django-site");
        assert_eq!(m.app.name.as_str(), "DjangoSite");
        assert_eq!(m.wsgi.app.to_string(), "mysite.wsgi:application");
        assert_eq!(m.iis.set_acl.len(), 1);
        assert_eq!(m.iis.set_acl[0].path.as_str(), "media");
        assert_eq!(m.iis.set_acl[0].access_attr(), "Modify");
        let names: Vec<&str> = m.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Secret Key",
                "Secret Key Setting",
                "Allowed Hosts",
                "Allowed Hosts Setting"
            ]
        );
        assert!(m.parameters[1].is_hidden());
        assert_eq!(
            m.parameters[0].tags_attr().as_deref(),
            Some("Password,NoStore")
        );
        assert_eq!(
            m.package.post_install,
            ["python manage.py collectstatic --noinput"]
        );
    }

    #[test]
    fn django_site_parameter_entries_match_the_settings_lines_they_replace() {
        let m = load("django-site");
        let settings =
            std::fs::read_to_string(repo().join("examples/django-site/mysite/settings.py"))
                .unwrap();
        for p in m.parameters.iter().filter(|p| !p.entries.is_empty()) {
            for e in &p.entries {
                let scope = regex::Regex::new(&e.scope).unwrap();
                assert!(scope.is_match(r"C:\inetpub\wwwroot\DjangoSite\mysite\settings.py"));
                let re = regex::Regex::new(&e.match_).unwrap();
                assert_eq!(
                    re.find_iter(&settings).count(),
                    1,
                    "{} in settings.py",
                    e.match_
                );
            }
        }
    }

    #[test]
    fn plain_wsgi_manifest_is_valid_and_narrows_the_reload_regex() {
        let m = load("plain-wsgi");
        assert_eq!(m.wsgi.app.to_string(), "app:application");
        let reload = m.wsgi.reload.as_ref().unwrap();
        assert!(reload.regex.is_match("app.py") && !reload.regex.is_match("web.config"));
    }

    /// Imports each example's `[wsgi] app` the way the manifest names it and calls it once.
    #[test]
    fn example_wsgi_targets_import_and_answer_200_under_cpython() {
        for name in ["flask-hello", "django-site", "plain-wsgi"] {
            let m = load(name);
            let script = format!(
                r#"
import importlib, io, sys
from wsgiref.util import setup_testing_defaults
app = getattr(importlib.import_module({module:?}), {attr:?})
env = {{}}
setup_testing_defaults(env)
status = []
body = b"".join(app(env, lambda s, h, e=None: status.append(s)))
print(status[0], body.decode())
"#,
                module = m.wsgi.app.module,
                attr = m.wsgi.app.attribute,
            );
            let out = Command::new("python3")
                .arg("-B")
                .arg("-c")
                .arg(&script)
                .current_dir(repo().join("examples").join(name))
                .output()
                .expect("python3 runs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success()
                    && stdout.starts_with("200 OK")
                    && stdout.contains("Hello from"),
                "{name}: {stdout}\n{}\n(install the example's requirements.txt: .ci/setup does)",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

mod schema {
    use super::*;

    /// Regenerate with `IISWSGI_BLESS=1 cargo test --no-default-features manifest_schema`.
    #[test]
    fn manifest_schema_committed_file_is_current() {
        let path = repo().join(manifest::schema::SCHEMA_PATH);
        let generated = manifest::schema::json_schema();
        if std::env::var_os("IISWSGI_BLESS").is_some() {
            std::fs::write(&path, &generated).expect("write schema");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is stale: the raw manifest types changed.\nRegenerate it with:\n    IISWSGI_BLESS=1 cargo test --no-default-features manifest_schema\nand commit the result.",
            path.display()
        );
    }

    #[test]
    fn manifest_schema_forbids_unknown_keys_and_carries_iis_ranges() {
        let s = manifest::schema::json_schema_value();
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], serde_json::json!(["app", "wsgi"]));
        let f = &s["definitions"]["RawFastCgi"];
        assert_eq!(f["additionalProperties"], false);
        let imr = &f["properties"]["instance-max-requests"];
        assert_eq!(
            (imr["minimum"].as_i64(), imr["maximum"].as_i64()),
            (Some(1), Some(10_000_000))
        );
        let sig = &f["properties"]["signal-before-terminate-seconds"];
        assert_eq!(sig["maximum"].as_i64(), Some(60));
        assert!(!manifest::schema::json_schema().contains("\"null\""));
    }

    #[test]
    fn manifest_schema_describes_every_key_the_examples_use() {
        // Every key of every example is a property of the schema at its place.
        fn walk(v: &toml::Value, schema: &serde_json::Value, root: &serde_json::Value, at: &str) {
            let resolve = |s: &serde_json::Value| -> serde_json::Value {
                match s.get("$ref").and_then(|r| r.as_str()) {
                    Some(r) => root["definitions"][r.trim_start_matches("#/definitions/")].clone(),
                    None => s.clone(),
                }
            };
            let schema = resolve(schema);
            match v {
                toml::Value::Table(t) => {
                    for (k, v) in t {
                        let sub = schema["properties"]
                            .get(k)
                            .cloned()
                            .or_else(|| {
                                schema
                                    .get("additionalProperties")
                                    .filter(|a| a.is_object())
                                    .cloned()
                            })
                            .unwrap_or_else(|| panic!("schema lacks `{at}.{k}`"));
                        walk(v, &sub, root, &format!("{at}.{k}"));
                    }
                }
                toml::Value::Array(items) => {
                    for i in items {
                        walk(i, &schema["items"], root, at);
                    }
                }
                _ => {}
            }
        }
        let root = manifest::schema::json_schema_value();
        for name in ["flask-hello", "django-site", "plain-wsgi"] {
            let text =
                std::fs::read_to_string(repo().join("examples").join(name).join("iiswsgi.toml"))
                    .unwrap();
            let doc: toml::Value = toml::from_str(&text).unwrap();
            walk(&doc, &root, &root, name);
        }
    }
}

/// One test per kind of mistake: each asserts the message and where it points.
mod invalid {
    use super::*;

    #[test]
    fn manifest_unknown_key_reports_line_column_and_suggestion() {
        let text = format!("{VALID}\n[iis.fastcgi]\ninstance-max-request = 5000\n");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (9, 1));
        assert_eq!(msg, "unknown key `instance-max-request` in `[iis.fastcgi]`");
        assert_eq!(help, "did you mean `instance-max-requests`?");
    }

    #[test]
    fn manifest_iis_camel_case_attribute_suggests_kebab_case() {
        let text = format!("{VALID}\n[iis.fastcgi]\nsignalBeforeTerminateSeconds = 10\n");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (9, 1));
        assert_eq!(
            msg,
            "unknown key `signalBeforeTerminateSeconds` in `[iis.fastcgi]`"
        );
        assert!(
            help.contains("kebab-case") && help.contains("`signal-before-terminate-seconds`"),
            "{help}"
        );
    }

    #[test]
    fn manifest_unknown_section_reports_its_header() {
        let text = format!("{VALID}\n[packages]\ninclude = [\"**\"]\n");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (8, 2));
        assert_eq!(msg, "unknown section `[packages]`");
        assert_eq!(help, "did you mean `package`?");
    }

    #[test]
    fn manifest_key_in_the_wrong_section_names_its_section() {
        let text = format!("{VALID}requirements = \"requirements.txt\"\n");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (7, 1));
        assert_eq!(msg, "unknown key `requirements` in `[wsgi]`");
        assert_eq!(
            help,
            "`requirements` belongs in `[package]`; move it under that header"
        );
        let text = format!("name = \"Shop\"\n{VALID}");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (1, 1));
        assert_eq!(msg, "unknown top-level key `name`");
        assert!(help.starts_with("`name` belongs in `[app]`"), "{help}");
    }

    #[test]
    fn manifest_every_unknown_key_is_reported_not_just_the_first() {
        let text = "[app]\nname = \"Shop\"\nversoin = \"1\"\nversion = \"1.0\"\ncolour = \"red\"\n\n[wsgi]\napp = \"shop:app\"\nvenv_dir = \"v\"\n";
        let got = errors(text);
        assert_eq!(
            got,
            vec![
                (3, 1, "unknown key `versoin` in `[app]`".to_string()),
                (5, 1, "unknown key `colour` in `[app]`".to_string()),
                (9, 1, "unknown key `venv_dir` in `[wsgi]`".to_string()),
            ]
        );
    }

    #[test]
    fn manifest_app_name_with_spaces_is_rejected_with_a_fixed_suggestion() {
        let text = VALID.replace("name = \"Shop\"", "name = \"My Shop\"");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (2, 8));
        assert_eq!(
            msg,
            "`app.name` must contain only ASCII letters, digits and `_`, found ` ` (a space) in \"My Shop\""
        );
        assert!(
            help.contains("WebPI productId") && help.ends_with("try `name = \"MyShop\"`"),
            "{help}"
        );
    }

    #[test]
    fn manifest_app_name_with_dash_or_reserved_device_name_is_rejected() {
        let (_, _, msg, _) = only_error(&VALID.replace("\"Shop\"", "\"my-shop\""));
        assert!(msg.contains("found `-`"), "{msg}");
        let (line, col, msg, _) = only_error(&VALID.replace("\"Shop\"", "\"con\""));
        assert_eq!((line, col), (2, 8));
        assert_eq!(msg, "`app.name` \"con\" is a reserved Windows device name");
        let (_, _, msg, _) = only_error(&VALID.replace("\"Shop\"", "\"2shop\""));
        assert_eq!(msg, "`app.name` must start with a letter, found \"2shop\"");
    }

    #[test]
    fn manifest_unparseable_version_is_rejected() {
        let text = VALID.replace("\"1.0.0\"", "\"one.two\"");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (3, 11));
        assert_eq!(
            msg,
            "`app.version` is not a PEP 440 or SemVer version: \"one.two\""
        );
        assert!(help.contains("PEP 440"), "{help}");
        for good in [
            "1",
            "1.2.0rc1",
            "2024.1.post1",
            "1.0.dev3",
            "1.2.0-beta.1",
            "1!2.0",
            "1.0+local.7",
        ] {
            assert!(
                parse(&VALID.replace("\"1.0.0\"", &format!("\"{good}\""))).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn manifest_reload_regex_that_does_not_compile_shows_the_regex_error() {
        let text = format!("{VALID}reload-regex = '(\\.py'\n");
        let e = parse(&text).unwrap_err();
        let d = &e.diagnostics()[0];
        assert_eq!((d.line, d.column), (7, 16));
        assert_eq!(
            d.message,
            "`wsgi.reload-regex` is not a valid regular expression"
        );
        assert!(
            d.note.as_deref().unwrap_or("").contains("unclosed group"),
            "{:?}",
            d.note
        );
    }

    #[test]
    fn manifest_empty_reload_regex_disables_reloading() {
        let m = parse(&format!("{VALID}reload-regex = \"\"\n")).unwrap();
        assert!(m.wsgi.reload.is_none());
    }

    #[test]
    fn manifest_fastcgi_values_outside_iis_ranges_are_each_reported() {
        let text = format!(
            "{VALID}\n[iis.fastcgi]\ninstance-max-requests = 0\nsignal-before-terminate-seconds = 61\nidle-timeout = 5\nmax-instances = 10001\n"
        );
        assert_eq!(
            errors(&text),
            vec![
                (9, 25, "`iis.fastcgi.instance-max-requests` must be between 1 and 10000000, found 0".to_string()),
                (10, 35, "`iis.fastcgi.signal-before-terminate-seconds` must be between 0 and 60, found 61".to_string()),
                (11, 16, "`iis.fastcgi.idle-timeout` must be between 10 and 2592000, found 5".to_string()),
                (12, 17, "`iis.fastcgi.max-instances` must be between 0 and 10000, found 10001".to_string()),
            ]
        );
    }

    #[test]
    fn manifest_wsgi_app_without_colon_is_rejected() {
        let text = VALID.replace("\"shop:app\"", "\"shop\"");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (6, 7));
        assert_eq!(
            msg,
            "`wsgi.app` must be `module:callable`, found \"shop\" (no `:`)"
        );
        assert!(help.contains("gunicorn"), "{help}");
    }

    #[test]
    fn manifest_wsgi_app_naming_a_file_suggests_the_module() {
        let text = VALID.replace("\"shop:app\"", "\"shop.py:app\"");
        let (_, _, msg, _) = only_error(&text);
        assert_eq!(
            msg,
            "`wsgi.app` names the file \"shop.py\"; write the module without `.py`: `shop:app`"
        );
    }

    #[test]
    fn manifest_non_http_url_is_rejected() {
        let text = VALID.replace(
            "version = \"1.0.0\"\n",
            "version = \"1.0.0\"\nhomepage-url = \"ftp://example.com/\"\n",
        );
        let (line, col, msg, _) = only_error(&text);
        assert_eq!((line, col), (4, 16));
        assert_eq!(
            msg,
            "`app.homepage-url` is not an absolute http(s) URL: only http and https are allowed, found \"ftp://example.com/\""
        );
    }

    #[test]
    fn manifest_set_acl_path_escaping_the_app_is_rejected() {
        let text = format!("{VALID}\n[[iis.set-acl]]\npath = \"../logs\"\n");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (9, 8));
        assert_eq!(
            msg,
            "`iis.set-acl.path` must stay inside the app folder, but \"../logs\" uses `..`"
        );
        assert!(help.contains("App_Data"), "{help}");
    }

    #[test]
    fn manifest_set_acl_unknown_right_suggests_the_filesystemrights_name() {
        let text = format!("{VALID}\n[[iis.set-acl]]\npath = \"App_Data\"\naccess = [\"Modfy\"]\n");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (10, 11));
        assert_eq!(msg, "`iis.set-acl.access` has an unknown right \"Modfy\"");
        assert_eq!(help, "did you mean `Modify`?");
    }

    #[test]
    fn manifest_duplicate_parameter_names_compare_case_insensitively() {
        let text = format!(
            "{VALID}\n[[parameters]]\nname = \"Site Title\"\ndefault = \"x\"\n\n[[parameters]]\nname = \"site title\"\ndefault = \"y\"\n"
        );
        // Both have no entries and are unused: those are warnings, not errors.
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (13, 8));
        assert_eq!(msg, "duplicate parameter name \"site title\"");
        assert!(help.contains("line 9"), "{help}");
    }

    #[test]
    fn manifest_parameter_default_failing_its_own_regex_is_rejected() {
        let text = format!(
            "{VALID}\n[[parameters]]\nname = \"Port\"\ndefault = \"eighty\"\nvalidation = {{ kind = \"RegularExpression\", value = '^[0-9]+$' }}\n"
        );
        let (line, col, msg, _) = only_error(&text);
        assert_eq!((line, col), (10, 11));
        assert_eq!(
            msg,
            "the default \"eighty\" of parameter \"Port\" fails its own validation: it does not match '^[0-9]+$'"
        );
    }

    #[test]
    fn manifest_unknown_parameter_tag_suggests_the_known_one() {
        let text = format!("{VALID}\n[[parameters]]\nname = \"Pw\"\ntags = [\"Pasword\"]\n");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (10, 9));
        assert_eq!(msg, "unknown parameter tag \"Pasword\"");
        assert_eq!(help, "did you mean `Password`?");
    }

    #[test]
    fn manifest_reserved_iisapp_tag_and_application_path_name_are_rejected() {
        let text =
            format!("{VALID}\n[[parameters]]\nname = \"Application Path\"\ntags = [\"IisApp\"]\n");
        assert_eq!(
            errors(&text),
            vec![
                (
                    9,
                    8,
                    "parameter name \"Application Path\" is reserved".to_string()
                ),
                (10, 9, "the `IisApp` tag is reserved".to_string()),
            ]
        );
    }

    #[test]
    fn manifest_hidden_parameter_without_default_is_rejected() {
        let text = format!(
            "{VALID}\n[[parameters]]\nname = \"Conn\"\ntags = [\"Hidden\"]\nentries = [{{ kind = \"ProviderPath\", scope = \"dbFullSql\", match = '^install\\.sql$' }}]\n"
        );
        let (line, col, msg, _) = only_error(&text);
        assert_eq!((line, col), (9, 8));
        assert_eq!(msg, "hidden parameter \"Conn\" has no `default`");
    }

    #[test]
    fn manifest_dangling_parameter_reference_suggests_the_declared_name() {
        let text = format!(
            "{VALID}\n[[parameters]]\nname = \"Database Name\"\ndefault = \"shop\"\n\n[[parameters]]\nname = \"Conn\"\ntags = [\"Hidden\"]\ndefault = \"Database={{DatabaseName}}\"\n"
        );
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (15, 11));
        assert_eq!(
            msg,
            "the default refers to `{DatabaseName}`, which is not a parameter"
        );
        assert!(
            help.starts_with("did you mean `{Database Name}`?"),
            "{help}"
        );
    }

    #[test]
    fn manifest_parameter_reference_cycle_is_rejected() {
        let text = format!(
            "{VALID}\n[[parameters]]\nname = \"A\"\ndefault = \"{{B}}\"\n\n[[parameters]]\nname = \"B\"\ndefault = \"x{{A}}\"\n"
        );
        let (line, col, msg, _) = only_error(&text);
        assert_eq!((line, col), (9, 8));
        assert_eq!(
            msg,
            "parameter defaults reference each other in a cycle: A -> B -> A"
        );
    }

    #[test]
    fn manifest_unknown_key_in_inline_parameter_entry_is_found() {
        let text = format!(
            "{VALID}\n[[parameters]]\nname = \"T\"\nentries = [{{ kind = \"TextFile\", scope = '\\\\a\\.py$', match = 'T = 1', scopes = 'x' }}]\n"
        );
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (10, 70));
        assert_eq!(msg, "unknown key `scopes` in `[parameters[1].entries[1]]`");
        assert_eq!(help, "did you mean `scope`?");
    }

    #[test]
    fn manifest_xmlfile_match_with_unbalanced_bracket_is_rejected() {
        let text = format!(
            "{VALID}\n[[parameters]]\nname = \"Mode\"\nentries = [{{ kind = \"XmlFile\", scope = '\\\\web\\.config$', match = \"/configuration/add[@key='m'/@value\" }}]\n"
        );
        let (line, col, msg, _) = only_error(&text);
        assert_eq!((line, col), (10, 66));
        assert_eq!(
            msg,
            "`parameters.entries.match` is not a valid XPath: unclosed `[`"
        );
    }

    #[test]
    fn manifest_dotnet_look_around_in_an_entry_is_a_warning_not_an_error() {
        let text = format!(
            "{VALID}\n[[parameters]]\nname = \"Key\"\ndefault = \"k\"\nentries = [{{ kind = \"TextFile\", scope = '\\\\settings\\.py$', match = '(?<=KEY = \")[^\"]*' }}]\n"
        );
        let m = parse(&text).expect("look-around is valid .NET");
        assert_eq!(m.warnings.len(), 1);
        let w = &m.warnings[0];
        assert_eq!((w.line, w.column), (11, 68));
        assert_eq!(
            w.message,
            "`parameters.entries.match` uses a .NET feature iiswsgi cannot check"
        );
        assert!(w.note.as_deref().unwrap_or("").contains("look-around"));
    }

    #[test]
    fn manifest_toml_syntax_error_points_at_the_broken_spot() {
        let text = "[app]\nname = \"Shop\nversion = \"1.0\"\n";
        let (line, col, msg, help) = only_error(text);
        assert_eq!((line, col), (2, 13));
        assert_eq!(msg, "invalid TOML: invalid basic string, expected `\"`");
        assert!(help.contains("double quotes"), "{help}");
    }

    #[test]
    fn manifest_wrong_type_is_reported_with_a_hint() {
        let text = format!("{VALID}\n[iis.fastcgi]\nrequest-timeout = \"600\"\n");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (9, 19));
        assert_eq!(msg, "invalid type: string \"600\", expected an integer");
        assert!(help.contains("without quotes"), "{help}");
    }

    #[test]
    fn manifest_wrongly_typed_required_key_is_not_also_called_missing() {
        let text = VALID.replace("name = \"Shop\"", "name = 5");
        let (line, col, msg, _) = only_error(&text);
        assert_eq!((line, col), (2, 8));
        assert_eq!(msg, "invalid type: integer `5`, expected a string");
        let text =
            format!("{VALID}\n[[parameters]]\nname = [\"a\"]\n\n[[iis.set-acl]]\npath = 1\n");
        let got = errors(&text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!((got[0].0, got[0].1), (9, 8));
        assert_eq!((got[1].0, got[1].1), (12, 8));
    }

    #[test]
    fn manifest_enum_value_in_wrong_case_names_the_right_spelling() {
        let text = format!("{VALID}\n[iis.fastcgi]\nstderr-mode = \"returngeneric500\"\n");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (9, 15));
        assert!(
            msg.starts_with("unknown variant `returngeneric500`"),
            "{msg}"
        );
        assert_eq!(
            help,
            "these values are case-sensitive: write `ReturnGeneric500`"
        );
    }

    #[test]
    fn manifest_missing_required_key_points_at_its_section() {
        let text = VALID.replace("version = \"1.0.0\"\n", "");
        let (line, col, msg, help) = only_error(&text);
        assert_eq!((line, col), (1, 1));
        assert_eq!(msg, "missing required key `app.version`");
        assert_eq!(help, "add `version = \"1.0.0\"` under `[app]`");
    }

    #[test]
    fn manifest_missing_wsgi_section_is_reported_at_the_top() {
        let text = "[app]\nname = \"Shop\"\nversion = \"1.0\"\n";
        let (line, col, msg, _) = only_error(text);
        assert_eq!((line, col), (1, 1));
        assert_eq!(msg, "missing the `[wsgi]` section");
    }

    #[test]
    fn manifest_init_todo_placeholder_is_an_error() {
        let text = VALID.replace("\"shop:app\"", "\"TODO:module:callable\"");
        let (line, col, msg, _) = only_error(&text);
        assert_eq!((line, col), (6, 7));
        assert_eq!(msg, "this value is a placeholder left by `iiswsgi init`");
    }

    #[test]
    fn manifest_multiple_errors_in_one_file_are_all_reported_in_file_order() {
        let text = r#"[app]
name = "My Shop"
version = "x"
homepage = "https://example.com"

[wsgi]
app = "shop"
reload-regex = "["

[iis.fastcgi]
request-timeout = 1
protocol = "Pipe"

[[iis.set-acl]]
path = "C:/data"
"#;
        let got = errors(text);
        let where_: Vec<(usize, usize)> = got.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(
            where_,
            vec![
                (2, 8),
                (3, 11),
                (4, 1),
                (7, 7),
                (8, 16),
                (11, 19),
                (12, 12),
                (15, 8)
            ],
            "{got:#?}"
        );
        assert!(got[2].2.contains("unknown key `homepage`"));
        // The wrongly typed `protocol` is reported and dropped, and the rest of `[iis]` is
        // still checked: the timeout range and the set-acl path in the same section.
        assert!(
            got[5]
                .2
                .contains("request-timeout` must be between 10 and 2592000")
        );
        assert!(got[6].2.starts_with("unknown variant `Pipe`"));
        assert!(got[7].2.contains("must be a relative path"));
    }

    #[test]
    fn manifest_error_renders_like_rustc_with_source_line_caret_and_help() {
        let text = format!("{VALID}\n[iis.fastcgi]\ninstance-max-requests = 0\n");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.to_string(), "iiswsgi.toml has 1 error");
        assert_eq!(
            e.render(),
            "error: iiswsgi.toml:9:25: `iis.fastcgi.instance-max-requests` must be between 1 and 10000000, found 0
  |
9 | instance-max-requests = 0
  |                         ^
  = help: IIS accepts 1-10000000 requests per process; the default is 10000

"
        );
    }

    #[test]
    fn manifest_missing_requirements_file_is_reported_by_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iiswsgi.toml");
        std::fs::write(
            &path,
            format!("{VALID}\n[package]\nrequirements = \"reqs.txt\"\n"),
        )
        .unwrap();
        let e = Manifest::load(&path).unwrap_err();
        let d = &e.diagnostics()[0];
        assert_eq!((d.line, d.column), (9, 16));
        assert_eq!(d.message, "requirements file `reqs.txt` does not exist");
        // `parse` does no I/O, so the same text is valid there.
        assert!(parse(&std::fs::read_to_string(&path).unwrap()).is_ok());
    }
}

/// `iiswsgi check` as a user runs it.
mod cli {
    use super::*;

    fn iiswsgi() -> Command {
        Command::new(env!("CARGO_BIN_EXE_iiswsgi"))
    }

    #[test]
    fn check_valid_examples_exits_zero_and_says_ok() {
        let out = iiswsgi()
            .arg("check")
            .arg(repo().join("examples/flask-hello/iiswsgi.toml"))
            .arg(repo().join("examples/django-site/iiswsgi.toml"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(
            stdout.contains("FlaskHello 0.1.0 (0 warnings)") && stdout.contains("DjangoSite 0.1.0"),
            "{stdout}"
        );
    }

    #[test]
    fn check_invalid_manifest_exits_one_and_prints_every_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iiswsgi.toml");
        std::fs::write(&path, "[app]\nname = \"My App\"\nversion = \"1.0\"\nverison = \"2\"\n\n[wsgi]\napp = \"a:b\"\n").unwrap();
        let out = iiswsgi().arg("check").arg(&path).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        let shown = path.display().to_string();
        assert!(
            stdout.contains(&format!(
                "error: {shown}:2:8: `app.name` must contain only ASCII letters"
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains("2 | name = \"My App\"\n  |        ^^^^^^^^\n"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "error: {shown}:4:1: unknown key `verison` in `[app]`"
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains("= help: did you mean `version`?"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("error: {shown}: 2 errors, 0 warnings")),
            "{stdout}"
        );
    }

    #[test]
    fn check_missing_file_exits_one_with_the_path() {
        let out = iiswsgi()
            .args(["check", "/nonexistent/iiswsgi.toml"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("cannot read manifest /nonexistent/iiswsgi.toml"),
            "{stderr}"
        );
    }

    #[test]
    fn check_deny_warnings_turns_warnings_into_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iiswsgi.toml");
        std::fs::write(
            &path,
            format!("{VALID}\n[iis.fastcgi]\nactivity-timeout = 900\nrequest-timeout = 300\n"),
        )
        .unwrap();
        let ok = iiswsgi().arg("check").arg(&path).output().unwrap();
        assert_eq!(ok.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&ok.stdout).contains("warning:"));
        let strict = iiswsgi()
            .arg("check")
            .arg("--deny-warnings")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(strict.status.code(), Some(1));
    }

    #[test]
    fn check_help_explains_what_is_checked_and_the_exit_status() {
        let out = iiswsgi().args(["check", "--help"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        assert!(
            stdout.contains("file:line:col") && stdout.contains("Exit status"),
            "{stdout}"
        );
        assert!(stdout.contains("--deny-warnings"), "{stdout}");
    }
}
