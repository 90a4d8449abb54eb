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

/// Issue 16: a checker that cannot be fooled or stalled by a hostile package.
mod issue_16 {
    use super::*;

    /// The example's entries as forged members, in package order, each listed once.
    fn members(name: &str) -> (tempfile::TempDir, Vec<Member>) {
        let (dir, entries) = example_entries(name);
        let members = entries
            .iter()
            .map(|(n, data)| Member::new(n.as_bytes(), data))
            .collect();
        (dir, members)
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write zip");
        path
    }

    /// Item 4: 200,000 attributes on one element took 92 s and then passed.
    #[test]
    fn attribute_bomb_in_manifest_xml_is_refused() {
        let (_d, zip) = tampered("plain-wsgi", |e| {
            let attrs: String = (0..200_000).map(|i| format!(" a{i}=\"\"")).collect();
            let (_, data) = e
                .iter_mut()
                .find(|(n, _)| n == "Manifest.xml")
                .expect("Manifest.xml");
            *data =
                format!("<MSDeploy.iisApp{attrs}><iisApp path=\"PlainWsgi\"/></MSDeploy.iisApp>")
                    .into_bytes();
        });
        let out = assert_rule(&[&zip], "M01");
        assert!(out.contains("attributes"), "{out}");
    }

    /// Item 5: the local header says `../../../app.py`, the central directory
    /// `PlainWsgi/app.py` (Python's zipfile refuses such a zip).
    #[test]
    fn local_header_name_that_disagrees_with_the_directory_is_z05() {
        let (dir, mut members) = members("plain-wsgi");
        let i = members
            .iter()
            .position(|m| m.name == b"PlainWsgi/app.py")
            .expect("app.py");
        members[i].name = b"../../../app.py".to_vec();
        let directory: Vec<(usize, Option<&[u8]>)> = (0..members.len())
            .map(|j| (j, (j == i).then_some(&b"PlainWsgi/app.py"[..])))
            .collect();
        let zip = write(&dir, "lying.zip", &forge_zip(&members, &directory));
        let out = assert_rule(&[&zip], "Z05");
        assert!(
            out.contains("PlainWsgi/app.py") && out.contains("../../../app.py"),
            "{out}"
        );
    }

    /// 1 GiB of zeros as a raw deflate stream of about 1 MB: one sync-flushed MiB repeated.
    fn gigabyte_of_zeros() -> Member {
        let mut z = flate2::Compress::new(flate2::Compression::best(), false);
        let mut block = Vec::with_capacity(8 << 10);
        let zeros = vec![0u8; 1 << 20];
        z.compress_vec(&zeros, &mut block, flate2::FlushCompress::Sync)
            .expect("deflate");
        assert_eq!(z.total_in(), 1 << 20);
        let mut data = block.repeat(1024);
        data.extend([0x03, 0x00]); // a final, empty fixed-Huffman block
        let mut crc = crc32fast::Hasher::new();
        for _ in 0..1024 {
            crc.update(&zeros);
        }
        Member {
            name: b"PlainWsgi/bomb0000.bin".to_vec(),
            method: 8,
            crc: crc.finalize(),
            size: 1 << 30,
            data,
        }
    }

    /// Item 5: 1,000 central entries all pointing at one member that inflates to 1 GiB.
    #[test]
    fn central_entries_sharing_one_deflate_member_are_z05() {
        let (dir, mut members) = members("plain-wsgi");
        members.push(gigabyte_of_zeros());
        let bomb = members.len() - 1;
        let names: Vec<Vec<u8>> = (0..1000)
            .map(|k| format!("PlainWsgi/bomb{k:04}.bin").into_bytes())
            .collect();
        let mut directory: Vec<(usize, Option<&[u8]>)> = (0..bomb).map(|j| (j, None)).collect();
        directory.extend(names.iter().map(|n| (bomb, Some(n.as_slice()))));
        let zip = write(&dir, "bomb.zip", &forge_zip(&members, &directory));
        assert!(std::fs::metadata(&zip).expect("zip").len() < 4 << 20);
        let out = assert_rule(&[&zip], "Z05");
        assert!(out.contains("overlap"), "{out}");
    }

    /// Item 5: zips from other writers still pass: our package re-zipped by Info-ZIP (to a
    /// file, and to a pipe, which uses data descriptors) and by Python's zipfile.
    #[test]
    fn packages_rezipped_by_info_zip_and_python_still_pass() {
        let out = tempfile::tempdir().expect("tmp");
        let zip = package(&example("django-site"), out.path());
        let tree = out.path().join("tree");
        let status = std::process::Command::new("unzip")
            .args(["-q", zip.to_str().expect("utf8"), "-d"])
            .arg(&tree)
            .status()
            .expect("run unzip (apt install unzip)");
        assert!(status.success());
        let info_zip = out.path().join("info-zip.zip");
        let status = std::process::Command::new("zip")
            .args(["-q", "-r", info_zip.to_str().expect("utf8"), "."])
            .current_dir(&tree)
            .status()
            .expect("run zip (apt install zip)");
        assert!(status.success());
        let streamed = out.path().join("streamed.zip");
        let piped = std::process::Command::new("sh")
            .arg("-c")
            .arg("zip -q -r - . | cat > \"$1\"")
            .arg("sh")
            .arg(&streamed)
            .current_dir(&tree)
            .status()
            .expect("run sh");
        assert!(piped.success());
        let python = out.path().join("python.zip");
        crate::package_support::python(
            "import os, sys, zipfile\n\
             os.chdir(sys.argv[1])\n\
             with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z:\n\
             \x20   for root, dirs, files in os.walk('.'):\n\
             \x20       for f in dirs + files:\n\
             \x20           z.write(os.path.join(root, f)[2:])\n",
            &[tree.to_str().expect("utf8"), python.to_str().expect("utf8")],
        );
        for zip in [&info_zip, &streamed, &python] {
            let (code, text) = check(&[zip.as_path()]);
            assert_eq!(code, Some(0), "{}:\n{text}", zip.display());
        }
        let (_, text) = check(&[streamed.as_path()]);
        assert!(text.contains("data descriptors"), "{text}");
    }

    /// Item 7: ESC, NUL and LF in entry names (and in the zip's own name) are printed escaped.
    #[test]
    fn control_characters_from_the_package_are_printed_escaped() {
        let (dir, mut members) = members("plain-wsgi");
        for name in [
            &b"PlainWsgi/\x1b[2J\x1b]0;owned\x07.txt"[..],
            b"PlainWsgi/nul\0.txt",
            b"PlainWsgi/line\nerror[Z00]: forged.txt",
        ] {
            members.push(Member::new(name, b"x"));
        }
        let directory: Vec<(usize, Option<&[u8]>)> =
            (0..members.len()).map(|j| (j, None)).collect();
        let zip = write(&dir, "evil\x1b[31m.zip", &forge_zip(&members, &directory));
        let o = iiswsgi(&["check", zip.to_str().expect("utf8")], None);
        let out = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
        let text = String::from_utf8_lossy(&out);
        assert_eq!(o.status.code(), Some(1), "{text}");
        for c in [0x1b, 0x00, 0x07] {
            assert!(!out.contains(&c), "raw {c:#04x} in the output:\n{text}");
        }
        assert!(
            !text.lines().any(|l| l.starts_with("error[Z00]")),
            "a name forged a line:\n{text}"
        );
        for shown in [
            r"\x1b[2J\x1b]0;owned\x07.txt",
            r"nul\x00.txt",
            r"line\nerror[Z00]",
            r"evil\x1b[31m.zip",
        ] {
            assert!(text.contains(shown), "{shown} not shown:\n{text}");
        }
    }

    /// Item 8: a 210,000-character setAcl path passed `check` and failed `package`.
    #[test]
    fn set_acl_path_too_long_for_its_parameter_fails_check_as_package() {
        let (_tmp, dir) = example_copy("plain-wsgi");
        let path = dir.join("iiswsgi.toml");
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str(&format!(
            "\n[[iis.set-acl]]\npath = \"{}\"\naccess = [\"Read\"]\n",
            "a".repeat(210_000)
        ));
        std::fs::write(&path, text).expect("write");
        let (code, out) = check(&[&path]);
        assert_eq!(code, Some(1), "check accepted it:\n{out}");
        assert!(out.contains("iis.set-acl.path"), "{out}");
        let dist = tempfile::tempdir().expect("tmp");
        let o = iiswsgi(
            &[
                "package",
                dir.to_str().expect("utf8"),
                "--out",
                dist.path().to_str().expect("utf8"),
            ],
            Some(EPOCH),
        );
        assert!(!o.status.success(), "package accepted it");
        assert!(text_of(&o).contains("iis.set-acl.path"), "{}", text_of(&o));
    }

    /// Item 8, at the limits: the largest manifest `check` accepts (256 setAcl paths, 256
    /// parameters of 64 entries) packages, and its package checks clean; one more setAcl path
    /// and `check` refuses the manifest as `package` does.
    #[test]
    fn manifest_at_every_cap_packages_and_one_past_is_refused_by_both() {
        let (_tmp, dir) = example_copy("plain-wsgi");
        let path = dir.join("iiswsgi.toml");
        let base = std::fs::read_to_string(&path).expect("read");
        let mut text = base.clone();
        for i in 0..256 {
            text.push_str(&format!(
                "\n[[parameters]]\nname = \"P{i}\"\ndefault = \"v\"\nentries = [\n"
            ));
            for j in 0..64 {
                text.push_str(&format!(
                    "{{kind=\"TextFile\",scope='app',match='K{i}_{j}'}},\n"
                ));
            }
            text.push_str("]\n");
        }
        let acls = |n: usize| -> String {
            (0..n)
                .map(|i| format!("\n[[iis.set-acl]]\npath = \"data/d{i}\"\n"))
                .collect()
        };
        for i in 0..256 {
            let d = dir.join(format!("data/d{i}"));
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("keep.txt"), "x").expect("write");
        }
        std::fs::write(&path, format!("{text}{}", acls(256))).expect("write");
        let dist = tempfile::tempdir().expect("tmp");
        let zip = package(&dir, dist.path());
        let (code, out) = check(&[&zip]);
        assert_eq!(code, Some(0), "{out}");

        std::fs::write(&path, format!("{base}{}", acls(257))).expect("write");
        let (code, out) = check(&[&path]);
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains("more than 256 `[[iis.set-acl]]` entries"),
            "{out}"
        );
    }

    fn text_of(o: &std::process::Output) -> String {
        crate::package_support::text(o)
    }
}
