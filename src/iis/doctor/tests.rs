//! The IIS-side checks (registration, DLL search, permissions) against the appcmd/icacls
//! emulator; the folder-only checks are exercised end to end by `tests/doctor.rs`.

use super::*;
use crate::iis::appcmd::{AppCmd, IIS_APPCMD, IisApp, VirtualDirectory};
use crate::iis::register::tests::FakeAppCmd;
use crate::iis::register::{self, apply, plan_fastcgi};

struct App {
    dir: tempfile::TempDir,
    exe: String,
}

fn app() -> App {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    std::fs::write(
        d.join("iiswsgi.toml"),
        "[app]\nname = \"Shop\"\nversion = \"1.0\"\n[wsgi]\napp = \"shop:app\"\nvenv = \".venv\"\n",
    )
    .expect("manifest");
    std::fs::create_dir_all(d.join(".venv")).expect("venv");
    std::fs::create_dir_all(d.join("logs")).expect("logs");
    std::fs::create_dir_all(d.join("python")).expect("python");
    let version = crate::PYTHON_VERSION.unwrap_or("3.11");
    std::fs::write(
        d.join(".venv/pyvenv.cfg"),
        format!(
            "home = {}\nversion = {version}.1\n",
            d.join("python").display()
        ),
    )
    .expect("cfg");
    let exe = d.join("bin").join("iiswsgi.exe").display().to_string();
    let key = register::key_for(&exe, &d.display().to_string()).expect("key");
    std::fs::write(
        d.join("web.config"),
        format!(
            "<configuration><system.webServer><handlers><add name=\"iiswsgi-Shop\" path=\"*\" verb=\"*\" modules=\"FastCgiModule\" scriptProcessor=\"{}\" responseBufferLimit=\"0\"/></handlers></system.webServer></configuration>",
            key.script_processor().replace('"', "&quot;")
        ),
    )
    .expect("web.config");
    App { dir, exe }
}

fn iis() -> Iis {
    Iis {
        appcmd: AppCmd::iis(IIS_APPCMD),
        icacls: "icacls".into(),
        windir: "/nonexistent-windows".into(),
        dry_run: None,
    }
}

fn options(a: &App) -> DoctorOptions {
    DoctorOptions {
        app_dir: a.dir.path().to_path_buf(),
        physical_path: None,
        iiswsgi_exe: a.exe.clone(),
        app_pool: Some("Shop".into()),
    }
}

/// Registers the app as `enable` would, with `PATH` = the fixture's Python folder.
fn register(
    a: &App,
    fake: &mut FakeAppCmd,
    tweak: impl Fn(&mut crate::iis::appcmd::FastCgiApplication),
) {
    let m = register::load_manifest(a.dir.path()).expect("manifest");
    let key = register::key_for(&a.exe, &a.dir.path().display().to_string()).expect("key");
    let home = a.dir.path().join("python").display().to_string();
    let mut want =
        register::fastcgi_application(&m, &key, a.dir.path(), Some(&home), "C:\\Windows");
    tweak(&mut want);
    let plan = plan_fastcgi(&AppCmd::iis(IIS_APPCMD), &want, Some(&[])).expect("plan");
    apply(fake, &plan.commands).expect("apply");
}

fn status(r: &DoctorReport, id: &str) -> Status {
    r.check(id)
        .map(|c| c.status)
        .unwrap_or_else(|| panic!("no check {id}: {r}"))
}

#[test]
fn unregistered_app_fails_fastcgi_registered_with_the_enable_fix() {
    let a = app();
    let mut fake = FakeAppCmd::default();
    let r = doctor(&options(&a), &iis(), &mut fake).expect("doctor");
    let c = r.check("fastcgi-registered").expect("check");
    assert_eq!(c.status, Status::Fail, "{r}");
    assert!(c.detail.contains("0x80070585"), "{}", c.detail);
    assert!(
        c.fix
            .as_deref()
            .is_some_and(|f| f.contains("iiswsgi iis enable"))
    );
}

#[test]
fn registration_differing_in_case_is_named() {
    let a = app();
    let mut fake = FakeAppCmd::default();
    register(&a, &mut fake, |w| w.full_path = w.full_path.to_uppercase());
    let r = doctor(&options(&a), &iis(), &mut fake).expect("doctor");
    let c = r.check("fastcgi-registered").expect("check");
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("registered as"), "{}", c.detail);
}

#[test]
fn registered_values_are_read_from_iis() {
    let a = app();
    let mut fake = FakeAppCmd::default();
    register(&a, &mut fake, |w| {
        w.attributes
            .retain(|(k, _)| k != "instanceMaxRequests" && k != "stderrMode")
    });
    let r = doctor(&options(&a), &iis(), &mut fake).expect("doctor");
    assert_eq!(status(&r, "fastcgi-registered"), Status::Ok, "{r}");
    let imr = r.check("instance-max-requests").expect("check");
    assert_eq!(imr.status, Status::Warn);
    assert!(
        imr.detail.contains("200 (registered in IIS)"),
        "{}",
        imr.detail
    );
    let sm = r.check("stderr-mode").expect("check");
    assert_eq!(sm.status, Status::Warn);
    assert!(
        sm.detail.contains("ReturnStdErrIn500 (registered in IIS)"),
        "{}",
        sm.detail
    );
}

#[test]
fn python_dll_is_found_through_the_registered_path() {
    let Some(built) = python::built_for() else {
        return; // built without Python: the check reports itself skipped
    };
    let a = app();
    let mut fake = FakeAppCmd::default();
    register(&a, &mut fake, |_| {});
    let r = doctor(&options(&a), &iis(), &mut fake).expect("doctor");
    let c = r.check("python-dll").expect("check");
    assert_eq!(c.status, Status::Fail, "no DLL yet: {r}");
    assert!(
        c.detail.contains("python3.dll is in none of the folders"),
        "{}",
        c.detail
    );
    assert!(c.detail.contains("0xC0000135"), "{}", c.detail);
    let python = a.dir.path().join("python");
    std::fs::write(python.join(python::STABLE_DLL), b"").expect("dll");
    let r = doctor(&options(&a), &iis(), &mut fake).expect("doctor");
    let c = r.check("python-dll").expect("check");
    assert_eq!(c.status, Status::Fail, "the forwarder alone: {r}");
    let versioned = python::dll_name(built);
    assert!(
        c.detail.contains(&format!("not {versioned}")),
        "{}",
        c.detail
    );
    std::fs::write(python.join(&versioned), b"").expect("dll");
    let r = doctor(&options(&a), &iis(), &mut fake).expect("doctor");
    assert_eq!(status(&r, "python-dll"), Status::Ok, "{r}");
}

#[test]
fn a_python3_dll_of_another_python_first_on_the_path_is_named() {
    if python::built_for().is_none() {
        return;
    }
    let a = app();
    let other = a.dir.path().join("other-python");
    std::fs::create_dir_all(&other).expect("dir");
    std::fs::write(other.join(python::STABLE_DLL), b"").expect("dll");
    let mut fake = FakeAppCmd::default();
    let other_dir = other.display().to_string();
    register(&a, &mut fake, |app| {
        for (name, value) in app.environment.iter_mut() {
            if name.eq_ignore_ascii_case("PATH") {
                *value = format!("{other_dir};{value}");
            }
        }
    });
    let r = doctor(&options(&a), &iis(), &mut fake).expect("doctor");
    let c = r.check("python-dll").expect("check");
    assert_eq!(c.status, Status::Fail, "{r}");
    assert!(
        c.detail.contains(&format!(
            "first python3.dll the FastCGI process finds is in {other_dir}"
        )),
        "{}",
        c.detail
    );
    assert!(
        c.fix
            .as_deref()
            .is_some_and(|f| f.contains("iiswsgi iis enable")),
        "{:?}",
        c.fix
    );
}

#[test]
fn missing_grants_fail_with_the_icacls_commands_and_present_ones_pass() {
    let a = app();
    let mut fake = FakeAppCmd::default();
    register(&a, &mut fake, |_| {});
    let r = doctor(&options(&a), &iis(), &mut fake).expect("doctor");
    let c = r.check("permissions").expect("check");
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("lacks 3 grant(s)"), "{}", c.detail);
    assert!(
        c.fix
            .as_deref()
            .is_some_and(|f| f.contains(r"/grant IIS AppPool\Shop:(OI)(CI)RX")
                || f.contains(r#"/grant "IIS AppPool\Shop:(OI)(CI)RX""#)),
        "{:?}",
        c.fix
    );
    let d = a.dir.path();
    fake.acls = vec![
        (
            d.display().to_string(),
            "x IIS APPPOOL\\Shop:(OI)(CI)(RX)\n".into(),
        ),
        (
            d.join("logs").display().to_string(),
            "x IIS APPPOOL\\Shop:(I)(OI)(CI)(M)\n".into(),
        ),
        (
            d.join("python").display().to_string(),
            "x BUILTIN\\Users:(OI)(CI)(RX)\n".into(),
        ),
    ];
    let r = doctor(&options(&a), &iis(), &mut fake).expect("doctor");
    assert_eq!(status(&r, "permissions"), Status::Ok, "{r}");
}

#[test]
fn app_pool_comes_from_the_iis_application_serving_the_folder() {
    let a = app();
    let mut fake = FakeAppCmd {
        vdirs: vec![VirtualDirectory {
            app: "Default Web Site/Shop".into(),
            path: "/".into(),
            physical_path: a.dir.path().display().to_string(),
        }],
        pools: vec![IisApp {
            name: "Default Web Site/Shop".into(),
            app_pool: "ShopPool".into(),
        }],
        ..FakeAppCmd::default()
    };
    let mut o = options(&a);
    o.app_pool = None;
    let r = doctor(&o, &iis(), &mut fake).expect("doctor");
    let c = r.check("permissions").expect("check");
    assert!(c.detail.contains(r"IIS AppPool\ShopPool"), "{}", c.detail);
}

#[test]
fn iis_checks_are_listed_as_skipped_when_appcmd_cannot_run() {
    let a = app();
    let mut fake = FakeAppCmd::default();
    let mut i = iis();
    i.dry_run = Some(crate::iis::report::DryRun::NotWindows);
    let r = doctor(&options(&a), &i, &mut fake).expect("doctor");
    for id in WINDOWS_CHECKS {
        assert_eq!(status(&r, id), Status::Skipped);
    }
    assert!(fake.log.is_empty(), "nothing may run: {:?}", fake.log);
    assert!(r.to_string().contains("skipped on this machine"), "{r}");
}
