//! The apply path of `install` (what runs on Windows) against the appcmd/icacls emulator: the
//! registration is made, read back and equal to web.config's scriptProcessor; the grants are
//! made once; a second run registers and grants nothing.

use super::*;
use crate::iis::appcmd::{AppCmd, IIS_APPCMD};
use crate::iis::register::tests::FakeAppCmd;

fn python() -> PathBuf {
    std::env::var_os("PYO3_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn app() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tmp");
    std::fs::write(
        t.path().join("iiswsgi.toml"),
        "[app]\nname = \"Shop\"\nversion = \"1.0\"\n[wsgi]\napp = \"shop:app\"\n\
         [[iis.set-acl]]\npath = \"App_Data\"\naccess = [\"Modify\"]\n",
    )
    .expect("manifest");
    std::fs::write(t.path().join(STAMP_FILE), discover::STAMP_TEXT).expect("stamp");
    t
}

fn iis() -> Iis {
    Iis {
        appcmd: AppCmd::iis(IIS_APPCMD),
        icacls: "icacls".into(),
        windir: r"C:\Windows".into(),
        dry_run: None,
    }
}

fn options(dir: &Path) -> InstallOptions {
    InstallOptions {
        app_dir: Some(dir.to_path_buf()),
        python: Some(python()),
        iiswsgi_exe: r"C:\Program Files\iiswsgi\iiswsgi.exe".into(),
        app_pool: Some("Shop".into()),
        ..InstallOptions::default()
    }
}

#[test]
fn install_registers_verifies_grants_and_a_second_run_changes_nothing() {
    let t = app();
    let mut fake = FakeAppCmd::default();
    let report = install(&options(t.path()), &iis(), &mut fake).expect("install");
    assert_eq!(report.dry_run, None);
    assert_eq!(
        report.step("FastCGI application").map(|s| &s.outcome),
        Some(&Outcome::Changed("registered".into())),
        "{report}"
    );
    assert_eq!(fake.apps.len(), 1);
    let web_config = fs_err::read_to_string(t.path().join("web.config")).expect("web.config");
    let facts = super::super::webconfig::parse(&web_config).expect("parse");
    let handler = facts.fastcgi_handlers().next().expect("handler");
    assert_eq!(handler.script_processor(), fake.apps[0].script_processor());
    let path_var = &fake.apps[0].environment[0];
    assert_eq!(path_var.0, "PATH");
    let grants = report.step("ACLs").expect("acls");
    assert_eq!(
        grants.outcome,
        Outcome::Changed("granted".into()),
        "{report}"
    );
    let granted: Vec<String> = grants
        .commands
        .iter()
        .map(|p| p.command.display())
        .collect();
    assert!(
        granted.iter().any(
            |c| c.contains("App_Data") && c.ends_with(r#"/grant "IIS AppPool\Shop:(OI)(CI)M""#)
        ),
        "{granted:?}"
    );
    assert!(!t.path().join(STAMP_FILE).exists());

    // What a second run sees: the registration, and the grants (as icacls would list them).
    fake.acls = grants
        .commands
        .iter()
        .map(|p| {
            let path = p.command.args[0].clone();
            let ace = p.command.args[2].replace("IIS AppPool", "IIS APPPOOL");
            let (who, rights) = ace.split_once(':').expect("ace");
            let rights = rights.replace("(OI)(CI)", "");
            (path.clone(), format!("{path} {who}:(OI)(CI)({rights})\n"))
        })
        .collect();
    let writes_before = fake
        .log
        .iter()
        .filter(|c| c.contains(" set config ") || c.contains("/grant"))
        .count();
    let again = install(&options(t.path()), &iis(), &mut fake).expect("install again");
    let writes_after = fake
        .log
        .iter()
        .filter(|c| c.contains(" set config ") || c.contains("/grant"))
        .count();
    assert_eq!(
        writes_before, writes_after,
        "second run wrote: {:?}",
        fake.log
    );
    assert_eq!(again.changed().count(), 0, "{again}");
}

#[test]
fn failed_registration_keeps_the_stamp_and_the_placeholder() {
    let t = app();
    std::fs::write(t.path().join("web.config"), "<configuration><system.webServer><security><requestFiltering><verbs allowUnlisted=\"false\"/></requestFiltering></security></system.webServer></configuration>").expect("placeholder");
    let mut fake = FakeAppCmd {
        deny_writes: true,
        ..FakeAppCmd::default()
    };
    let failure = install(&options(t.path()), &iis(), &mut fake).expect_err("denied");
    assert!(
        failure
            .error
            .to_string()
            .contains("insufficient permissions"),
        "{}",
        failure.error
    );
    assert!(t.path().join(STAMP_FILE).exists());
    assert!(
        fs_err::read_to_string(t.path().join("web.config"))
            .expect("read")
            .contains("allowUnlisted"),
        "web.config is written only after the registration succeeded"
    );
    assert!(failure.report.step("web.config").is_none());
}

#[test]
fn express_install_skips_acls() {
    let t = app();
    let mut fake = FakeAppCmd::default();
    let i = Iis {
        appcmd: AppCmd::express("appcmd", Some("a.config".into())),
        ..iis()
    };
    let report = install(&options(t.path()), &i, &mut fake).expect("install");
    assert_eq!(
        report.step("ACLs").map(|s| &s.outcome),
        Some(&Outcome::Skipped(
            "IIS Express runs as the current user".into()
        ))
    );
    assert!(
        fake.log
            .iter()
            .all(|c| c.contains("/apphostconfig:a.config")),
        "{:?}",
        fake.log
    );
}
