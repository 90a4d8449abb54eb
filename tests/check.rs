//! `iiswsgi check` against bad packages, XML files and feeds built in the tests: each defect
//! the issue names (dangling `{ref}`, a setAcl without a parameter, a wrong sha1, a missing
//! IisApp parameter, a Zip64 archive, a backslash in a zip path) and more, each reported with
//! its rule id and exit status 1. Good zips are written through the library's own gate; the
//! Zip64 and backslash zips by Python's `zipfile`, which allows them.

use std::path::{Path, PathBuf};

use iiswsgi::package::msdeploy::timestamp::TimePolicy;
use iiswsgi::package::msdeploy::writer::zip::{ZipBackend, ZipOptions};
use iiswsgi::package::msdeploy::writer::{Gate, PackageWriter};
use iiswsgi::package::msdeploy::zip_path::ZipPath;

use crate::package_support::*;

/// Runs `iiswsgi check` on `files`; returns (exit code, output).
fn check(files: &[&Path]) -> (Option<i32>, String) {
    let args: Vec<&str> = std::iter::once("check")
        .chain(files.iter().map(|p| p.to_str().expect("utf8")))
        .collect();
    let o = iiswsgi(&args, None);
    (o.status.code(), text(&o))
}

fn assert_rule(files: &[&Path], rule: &str) -> String {
    let (code, out) = check(files);
    assert_eq!(code, Some(1), "expected exit 1 for {rule}:\n{out}");
    assert!(
        out.contains(&format!("error[{rule}]")),
        "expected error[{rule}]:\n{out}"
    );
    out
}

/// The entries of a freshly built example package, to tamper with.
fn example_entries(name: &str) -> (tempfile::TempDir, Vec<(String, Vec<u8>)>) {
    let out = tempfile::tempdir().expect("tmp");
    let zip = package(&example(name), out.path());
    let entries = entries(&zip);
    (out, entries)
}

/// Writes `entries` as a zip through the library's gate (clean zip metadata).
fn write_zip(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut gate = Gate::new(TimePolicy::new(1_700_000_000, None));
    for (name, data) in entries {
        match name.strip_suffix('/') {
            Some(dir) => gate.add_dir(&ZipPath::new(dir).expect("valid"), None),
            None => gate.add_bytes(&ZipPath::new(name.as_str()).expect("valid"), data.clone()),
        }
        .expect("add");
    }
    gate.finish(ZipBackend::new(path, ZipOptions::default()))
        .expect("write zip");
}

fn replace(entries: &mut [(String, Vec<u8>)], name: &str, from: &str, to: &str) {
    let (_, data) = entries.iter_mut().find(|(n, _)| n == name).expect("entry");
    let text = String::from_utf8(data.clone()).expect("utf8");
    assert!(text.contains(from), "{from:?} not in {name}");
    *data = text.replace(from, to).into_bytes();
}

fn tampered(
    name: &str,
    edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>),
) -> (tempfile::TempDir, PathBuf) {
    let (dir, mut entries) = example_entries(name);
    edit(&mut entries);
    let path = dir.path().join("tampered.zip");
    write_zip(&path, &entries);
    (dir, path)
}

mod issue_defects {
    use super::*;

    #[test]
    fn dangling_parameter_reference_is_p10() {
        let (_d, zip) = tampered("django-site", |e| {
            replace(e, "Parameters.xml", "{Secret Key}", "{Secret Kee}");
        });
        let out = assert_rule(&[&zip], "P10");
        assert!(out.contains("{Secret Kee}"), "{out}");
    }

    #[test]
    fn setacl_path_without_parameter_is_p07() {
        let (_d, zip) = tampered("django-site", |e| {
            replace(
                e,
                "Manifest.xml",
                r#"<setAcl path="DjangoSite/media" setAclAccess="Modify" />"#,
                r#"<setAcl path="DjangoSite/media" setAclAccess="Modify" /><setAcl path="DjangoSite/mysite" />"#,
            );
        });
        let out = assert_rule(&[&zip], "P07");
        assert!(out.contains("DjangoSite/mysite"), "{out}");
    }

    #[test]
    fn wrong_sha1_in_feed_is_f04() {
        let out = tempfile::tempdir().expect("tmp");
        let zip = package(&example("flask-hello"), out.path());
        let feed = zip.with_file_name("FlaskHello-0.1.0.webpi.xml");
        let text = std::fs::read_to_string(&feed).expect("feed");
        let start = text.find("<sha1>").expect("sha1") + 6;
        let mut bad = text.clone();
        bad.replace_range(start..start + 40, &"0".repeat(40));
        std::fs::write(&feed, bad).expect("write");
        let report = assert_rule(&[&feed], "F04");
        assert!(report.contains("does not match"), "{report}");
    }

    #[test]
    fn missing_iisapp_parameter_is_p08() {
        let (_d, zip) = tampered("flask-hello", |e| {
            replace(e, "Parameters.xml", r#" tags="IisApp""#, "");
        });
        assert_rule(&[&zip], "P08");
    }

    #[test]
    fn zip64_archive_is_z05() {
        let dir = tempfile::tempdir().expect("tmp");
        let zip = dir.path().join("zip64.zip");
        let manifest = r#"<MSDeploy.iisApp><iisApp path="A"/></MSDeploy.iisApp>"#;
        python_zip(&zip, &[("Manifest.xml", manifest), ("A/x.txt", "x")], true);
        let out = assert_rule(&[&zip], "Z05");
        assert!(out.contains("Zip64"), "{out}");
    }

    #[test]
    fn backslash_in_zip_path_is_z02() {
        let dir = tempfile::tempdir().expect("tmp");
        let zip = dir.path().join("backslash.zip");
        let manifest = r#"<MSDeploy.iisApp><iisApp path="A"/></MSDeploy.iisApp>"#;
        python_zip(
            &zip,
            &[("Manifest.xml", manifest), ("A\\x.txt", "x")],
            false,
        );
        let out = assert_rule(&[&zip], "Z02");
        assert!(out.contains(r"A\x.txt"), "{out}");
    }
}

mod more_defects {
    use super::*;

    #[test]
    fn runcommand_settings_as_plain_attributes_are_o01() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("Manifest.xml");
        std::fs::write(
            &path,
            r#"<MSDeploy.iisApp><iisApp path="A"/><runCommand path="x.exe" successReturnCodes="0x0"/></MSDeploy.iisApp>"#,
        )
        .expect("write");
        assert_rule(&[&path], "O01");
    }

    #[test]
    fn shipped_web_config_template_with_another_script_processor_is_c01() {
        let (_d, zip) = tampered("flask-hello", |e| {
            replace(
                e,
                "FlaskHello/web.config.hbs",
                "{{handler.script_processor}}",
                "C:\\python.exe|wfastcgi.py",
            );
        });
        let out = assert_rule(&[&zip], "C01");
        assert!(out.contains("wfastcgi.py"), "{out}");
    }

    #[test]
    fn second_top_level_folder_is_z08() {
        let (_d, zip) = tampered("plain-wsgi", |e| {
            e.push(("Other/".into(), vec![]));
            e.push(("Other/x.txt".into(), b"x".to_vec()));
        });
        assert_rule(&[&zip], "Z08");
    }

    #[test]
    fn archive_package_is_reported_not_checked() {
        let dir = tempfile::tempdir().expect("tmp");
        let zip = dir.path().join("archive.zip");
        python_zip(
            &zip,
            &[("archive.xml", "<sitemanifest/>"), ("Content/x", "x")],
            false,
        );
        let (code, out) = check(&[&zip]);
        assert!(
            out.contains("warning[Z01]") && out.contains("archive package"),
            "{out}"
        );
        assert!(
            out.contains("warning[Z06]"),
            "Python zips are Unix-hosted: {out}"
        );
        assert_eq!(code, Some(0), "{out}");
    }

    #[test]
    fn case_collision_is_z03() {
        let dir = tempfile::tempdir().expect("tmp");
        let zip = dir.path().join("case.zip");
        let manifest = r#"<MSDeploy.iisApp><iisApp path="A"/></MSDeploy.iisApp>"#;
        python_zip(
            &zip,
            &[
                ("Manifest.xml", manifest),
                ("A/Readme", "x"),
                ("A/README", "y"),
            ],
            false,
        );
        assert_rule(&[&zip], "Z03");
    }

    #[test]
    fn web_config_with_buffering_and_fastcgi_section_warns() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("web.config");
        std::fs::write(
            &path,
            r#"<configuration><system.webServer><fastCgi/><handlers><add name="h" path="*" verb="*" modules="FastCgiModule" scriptProcessor="C:\p.exe|x"/></handlers></system.webServer></configuration>"#,
        )
        .expect("write");
        let (code, out) = check(&[&path]);
        assert_eq!(code, Some(0), "{out}");
        assert!(
            out.contains("warning[C02]") && out.contains("warning[C03]"),
            "{out}"
        );
    }

    #[test]
    fn feed_with_unqualified_entry_is_f01() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("feed.xml");
        std::fs::write(
            &path,
            r#"<a:feed xmlns:a="http://www.w3.org/2005/Atom"><a:title>t</a:title><entry><productId>X</productId></entry></a:feed>"#,
        )
        .expect("write");
        assert_rule(&[&path], "F01");
    }

    #[test]
    fn manifest_errors_come_from_the_manifest_checker() {
        let (_tmp, dir) = example_copy("plain-wsgi");
        let path = dir.join("iiswsgi.toml");
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, text.replace("[app]", "[app]\ncolour = \"red\"")).expect("write");
        let (code, out) = check(&[&path]);
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains("colour"), "{out}");
    }

    #[test]
    fn missing_file_is_reported_and_others_still_checked() {
        let out = tempfile::tempdir().expect("tmp");
        let zip = package(&example("plain-wsgi"), out.path());
        let missing = out.path().join("nope.zip");
        let (code, text) = check(&[&missing, &zip]);
        assert_eq!(code, Some(1), "{text}");
        assert!(
            text.contains("nope.zip") && text.contains("PlainWsgi-1.0.0.zip"),
            "{text}"
        );
        assert!(text.contains("ok: "), "{text}");
    }

    #[test]
    fn reused_installer_url_with_new_sha1_is_f09() {
        let out = tempfile::tempdir().expect("tmp");
        let zip = package(&example("flask-hello"), out.path());
        let feed = zip.with_file_name("FlaskHello-0.1.0.webpi.xml");
        let previous = out.path().join("previous.xml");
        let text = std::fs::read_to_string(&feed).expect("feed");
        let start = text.find("<sha1>").expect("sha1") + 6;
        let mut old = text.clone();
        old.replace_range(start..start + 40, &"1".repeat(40));
        std::fs::write(&previous, old).expect("write");
        let o = iiswsgi(
            &[
                "check",
                "--previous-feed",
                previous.to_str().expect("utf8"),
                feed.to_str().expect("utf8"),
            ],
            None,
        );
        assert_eq!(o.status.code(), Some(1));
        assert!(crate::package_support::text(&o).contains("error[F09]"));
    }
}

/// Issue 16 item 6: an installer path that lets cmd.exe run more than iiswsgi is refused by
/// `package` and by `check` (O06), where `check` used to report 0 errors.
mod installer_path {
    use super::*;
    use iiswsgi::package::msdeploy::provider_options::ProviderOptions;

    const INJECTED: &str = r#"C:\x\iiswsgi.exe" & calc & ""#;

    #[test]
    fn package_refuses_an_injected_iiswsgi_exe() {
        let out = tempfile::tempdir().expect("tmp");
        let o = iiswsgi(
            &[
                "package",
                example("flask-hello").to_str().expect("utf8"),
                "--out",
                out.path().to_str().expect("utf8"),
                "--iiswsgi-exe",
                INJECTED,
            ],
            None,
        );
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(
            t.contains("cannot go into the post-install command line"),
            "{t}"
        );
        assert!(t.contains("which cmd.exe interprets"), "{t}");
        assert!(
            std::fs::read_dir(out.path()).expect("ls").next().is_none(),
            "nothing written"
        );
    }

    #[test]
    fn check_refuses_a_package_whose_runcommand_was_injected_o06() {
        let command = format!("\"{INJECTED}\" install --app-name FlaskHello");
        let (_d, zip) = tampered("flask-hello", |entries| {
            let (_, data) = entries
                .iter_mut()
                .find(|(n, _)| n == "Manifest.xml")
                .expect("Manifest.xml");
            let text = String::from_utf8(data.clone()).expect("utf8");
            let root = iiswsgi::xml::parse(&text).expect("xml");
            let run = root.child("runCommand").expect("runCommand");
            let old_path = run.attr("path").expect("path").to_string();
            let old_blob = run
                .attr("MSDeploy.MSDeployProviderOptions")
                .expect("blob")
                .to_string();
            let decoded = ProviderOptions::decode(&old_blob).expect("decodes").options;
            let blob =
                ProviderOptions::new("runCommand", command.clone(), decoded.settings).encode();
            let escape = iiswsgi::package::render::escape_xml;
            *data = text
                .replace(&escape(&old_path), &escape(&command))
                .replace(&old_blob, &blob)
                .into_bytes();
        });
        let out = assert_rule(&[&zip], "O06");
        assert!(out.contains("& calc &"), "{out}");
    }

    #[test]
    fn check_warns_about_a_relative_installer_path_o07() {
        let out = tempfile::tempdir().expect("tmp");
        let zip = package_with(
            &example("flask-hello"),
            out.path(),
            &["--iiswsgi-exe", "iiswsgi.exe"],
        );
        let (code, t) = check(&[&zip]);
        assert_eq!(code, Some(0), "{t}");
        assert!(t.contains("warning[O07]"), "{t}");
    }
}

/// SetParameters.xml against the zip of the same name (S02–S05), as pipelines edit it.
mod set_parameters {
    use super::*;

    fn edited(from: &str, to: &str) -> (tempfile::TempDir, PathBuf) {
        let out = tempfile::tempdir().expect("tmp");
        let zip = package(&example("django-site"), out.path());
        let set = zip.with_file_name("DjangoSite-0.1.0.SetParameters.xml");
        let text = std::fs::read_to_string(&set).expect("read");
        assert!(text.contains(from), "{text}");
        std::fs::write(&set, text.replace(from, to)).expect("write");
        (out, set)
    }

    #[test]
    fn the_generated_file_passes_with_the_empty_secret_as_a_warning() {
        let (_d, set) = edited("<parameters>", "<parameters>");
        let (code, t) = check(&[&set]);
        assert_eq!(code, Some(0), "{t}");
        assert!(
            t.contains("warning[S04]") && t.contains("Secret Key"),
            "{t}"
        );
    }

    #[test]
    fn an_undeclared_name_is_s02() {
        let (_d, set) = edited(r#"name="Allowed Hosts""#, r#"name="Allowed Host""#);
        assert_rule(&[&set], "S02");
    }

    #[test]
    fn a_secret_that_fails_its_validation_is_s05() {
        let (_d, set) = edited(
            r#"<setParameter name="Secret Key" value="" />"#,
            r#"<setParameter name="Secret Key" value="too short" />"#,
        );
        assert_rule(&[&set], "S05");
    }

    #[test]
    fn without_its_package_the_s_rules_that_need_it_say_they_did_not_run() {
        let (d, set) = edited(r#"name="Allowed Hosts""#, r#"name="Nope""#);
        let alone = d.path().join("elsewhere.SetParameters.xml");
        std::fs::copy(&set, &alone).expect("copy");
        let (code, t) = check(&[&alone]);
        assert_eq!(code, Some(0), "{t}");
        assert!(t.contains("were not checked"), "{t}");
    }
}
