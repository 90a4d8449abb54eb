//! Static files on IIS (issue 13, item 6): `[[iis.static]]` becomes a `<location>` in the
//! installed web.config whose handlers are cleared down to IIS's StaticFile handler. The
//! Django example uses it for STATIC_ROOT: its package's template renders the location, the
//! result validates against schemas/web.config.xsd and passes `check` (C05), and `install` on
//! the unpacked package writes it after `collectstatic` (post-install) filled the folder, with
//! Django from PyPI.

use crate::package_support::{
    assert_valid, entries, entry_text, example_copy, iiswsgi, package, text,
};

/// The `<location path>` values of a web.config whose handlers are cleared down to
/// StaticFileModule, read with the crate's own facts reader.
fn static_locations(xml: &str) -> Vec<String> {
    iiswsgi::iis::webconfig::parse(xml)
        .expect("web.config parses")
        .static_locations()
}

#[test]
fn django_site_package_renders_a_static_location_that_passes_check_and_the_xsd() {
    let (tmp, dir) = example_copy("django-site");
    let zip = package(&dir, &tmp.path().join("dist"));
    let template = entry_text(&zip, "DjangoSite/web.config.hbs");
    let manifest = entry_text(&zip, "DjangoSite/iiswsgi.toml");
    assert!(
        manifest.contains("[[iis.static]]\npath = \"static\""),
        "{manifest}"
    );
    let sample = iiswsgi::deploy::installed_web_config_sample(&manifest, &template)
        .expect("the shipped template renders");
    assert_eq!(sample.static_paths, ["static"]);
    assert_valid(
        &sample.xml,
        "web.config.xsd",
        "installed web.config with [[iis.static]]",
    );
    assert_eq!(static_locations(&sample.xml), ["static"]);
    // The placeholder shipped in the zip serves nothing, static folder included.
    let pending = entry_text(&zip, "DjangoSite/web.config");
    assert!(!pending.contains("<location"), "{pending}");

    // `check` on the package (C05 renders the template for the shipped manifest) and on the
    // rendered file alone (C06).
    let o = iiswsgi(&["check", zip.to_str().expect("utf8")], None);
    assert!(o.status.success(), "{}", text(&o));
    let rendered = tmp.path().join("web.config");
    std::fs::write(&rendered, &sample.xml).expect("write");
    let o = iiswsgi(&["check", rendered.to_str().expect("utf8")], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("0 errors, 0 warnings"), "{}", text(&o));
}

#[test]
fn a_package_whose_template_lost_the_static_location_fails_check_with_c05() {
    let (tmp, dir) = example_copy("django-site");
    let zip = package(&dir, &tmp.path().join("dist"));
    // Rewrite the zip with a template that has no {{#each static_locations}} block, as a
    // hand-edited or older template would be.
    let out = tmp.path().join("edited.zip");
    let mut files: Vec<(String, Vec<u8>)> = entries(&zip);
    for (name, data) in &mut files {
        if name == "DjangoSite/web.config.hbs" {
            let t = String::from_utf8(data.clone()).expect("utf8");
            let start = t.find("{{#each static_locations}}").expect("block");
            let end = t.find("{{/each}}").expect("end") + "{{/each}}".len();
            *data = format!("{}{}", &t[..start], &t[end..]).into_bytes();
        }
    }
    crate::package_support::python_zip(
        &out,
        &files
            .iter()
            .filter(|(n, _)| !n.ends_with('/'))
            .map(|(n, d)| (n.as_str(), std::str::from_utf8(d).expect("text entries")))
            .collect::<Vec<_>>(),
        false,
    );
    let o = iiswsgi(&["check", out.to_str().expect("utf8")], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("error[C05]")
            && text(&o).contains("[[iis.static]] `static`: no <location path=\"static\">"),
        "{}",
        text(&o)
    );
}

/// `install` end to end, which needs the embedded Python's venv helpers.
#[cfg(all(unix, feature = "python"))]
mod install {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::static_locations;
    use crate::package_support::{assert_valid, entries, example_copy, iiswsgi, package, text};

    /// The CPython the crate builds against, first on PATH (as tests/iis_install.rs does).
    fn path_with_build_python() -> String {
        let bin = Path::new(env!("IISWSGI_PY_EXECUTABLE"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Unpacks the app folder of `zip` (top folder `app`) into `dest`.
    fn unpack(zip: &Path, app: &str, dest: &Path) {
        for (name, bytes) in entries(zip) {
            let Some(rel) = name.strip_prefix(&format!("{app}/")) else {
                continue;
            };
            let path = dest.join(rel);
            if name.ends_with('/') {
                std::fs::create_dir_all(&path).expect("mkdir");
            } else {
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(&path, bytes).expect("write");
            }
        }
    }

    #[test]
    fn install_on_unpacked_django_site_serves_collectstatic_output_through_iis() {
        let (tmp, dir) = example_copy("django-site");
        // Django from the tests' shared venv (an absolute [wsgi] venv), so pip has nothing to
        // download; collectstatic (post-install) runs in it.
        let venv: PathBuf = crate::support::venv::frameworks().to_path_buf();
        crate::support::replace_in_file(
            &dir.join("iiswsgi.toml"),
            "\nvenv = \".venv\"\n",
            &format!("\nvenv = \"{}\"\n", venv.display()),
        );
        // An app with static files of its own, as the admin has, so collectstatic copies some.
        std::fs::create_dir_all(dir.join("mysite/static/site")).expect("mkdir");
        std::fs::write(
            dir.join("mysite/static/site/base.css"),
            "body { margin: 0 }\n",
        )
        .expect("css");
        let settings = dir.join("mysite/settings.py");
        let s = std::fs::read_to_string(&settings).expect("settings");
        std::fs::write(
            &settings,
            s.replacen(
                "INSTALLED_APPS = [\"django.contrib.staticfiles\"]",
                "INSTALLED_APPS = [\"django.contrib.staticfiles\", \"mysite\"]",
                1,
            ),
        )
        .expect("settings");
        let zip = package(&dir, &tmp.path().join("dist"));
        let app = tmp.path().join("wwwroot").join("DjangoSite");
        unpack(&zip, "DjangoSite", &app);

        let o = Command::new(env!("CARGO_BIN_EXE_iiswsgi"))
            .args(["install", "--app-name", "DjangoSite"])
            .env("APPL_PHYSICAL_PATH", &app)
            .env("PATH", path_with_build_python())
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env_remove("PYTHONHOME")
            .output()
            .expect("install");
        assert!(o.status.success(), "install failed:\n{}", text(&o));

        // collectstatic filled STATIC_ROOT, and web.config hands that folder to IIS.
        assert!(app.join("static/site/base.css").is_file(), "{}", text(&o));
        let web_config = std::fs::read_to_string(app.join("web.config")).expect("web.config");
        assert_valid(&web_config, "web.config.xsd", "installed web.config");
        assert_eq!(static_locations(&web_config), ["static"]);
        let o = iiswsgi(
            &["check", app.join("web.config").to_str().expect("utf8")],
            None,
        );
        assert!(o.status.success(), "{}", text(&o));

        // doctor agrees: the folder exists and web.config serves it (and the app imports).
        let o = Command::new(env!("CARGO_BIN_EXE_iiswsgi"))
            .arg("doctor")
            .arg(&app)
            .output()
            .expect("doctor");
        let out = text(&o);
        let line = |id: &str| {
            out.lines()
                .find(|l| l.split_whitespace().nth(1) == Some(id))
                .unwrap_or_else(|| panic!("no {id}:\n{out}"))
                .to_string()
        };
        assert!(
            line("static-files").contains("ok") && line("static-files").contains("static/"),
            "{out}"
        );
        assert!(line("app-import").trim_start().starts_with("ok"), "{out}");
    }
}
