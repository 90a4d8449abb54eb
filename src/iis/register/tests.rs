//! The decide/apply/verify logic against an emulated appcmd: a [`Runner`] that keeps the
//! `<fastCgi>` collection in memory, parses the commands iiswsgi sends exactly as appcmd's
//! syntax reads them (`/+[k='v',…]`, `/-[…]`, `…].environmentVariables.[…]`) and answers
//! `list config /xml`. IIS itself cannot run here; this checks that our commands round-trip
//! through appcmd's syntax and that re-running changes nothing.

use super::*;
use crate::iis::appcmd::{IIS_APPCMD, IisApp};

/// Emulated appcmd state.
#[derive(Debug, Default)]
pub(crate) struct FakeAppCmd {
    pub apps: Vec<RegisteredApplication>,
    pub vdirs: Vec<VirtualDirectory>,
    pub pools: Vec<IisApp>,
    /// Every command run, as displayed.
    pub log: Vec<String>,
    /// Fail every `set` command (not elevated).
    pub deny_writes: bool,
    /// What `icacls PATH` prints, per path.
    pub acls: Vec<(String, String)>,
}

fn parse_element(s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut rest = s.strip_prefix('[')?;
    let mut pairs = Vec::new();
    loop {
        let eq = rest.find("='")?;
        let name = rest[..eq].to_string();
        let after = &rest[eq + 2..];
        let end = after.find('\'')?;
        pairs.push((name, after[..end].to_string()));
        rest = &after[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else {
            return Some((pairs, rest.strip_prefix(']')?));
        }
    }
}

fn fail(msg: &str) -> Output {
    Output {
        code: Some(4312),
        stdout: format!("ERROR ( message:{msg} )\n"),
        stderr: String::new(),
    }
}

fn ok(stdout: String) -> Output {
    Output {
        code: Some(0),
        stdout,
        stderr: String::new(),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl FakeAppCmd {
    fn list_xml(&self) -> String {
        let mut out = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<appcmd>\n<CONFIG CONFIG.SECTION=\"system.webServer/fastCgi\">\n<system.webServer-fastCgi>\n",
        );
        for a in &self.apps {
            out.push_str(&format!(
                "<application fullPath=\"{}\" arguments=\"{}\"",
                xml_escape(&a.full_path),
                xml_escape(&a.arguments)
            ));
            for (k, v) in &a.attributes {
                out.push_str(&format!(" {k}=\"{}\"", xml_escape(v)));
            }
            out.push_str(">\n<environmentVariables>\n");
            for (k, v) in &a.environment {
                out.push_str(&format!(
                    "<environmentVariable name=\"{}\" value=\"{}\" />\n",
                    xml_escape(k),
                    xml_escape(v)
                ));
            }
            out.push_str("</environmentVariables>\n</application>\n");
        }
        out.push_str("</system.webServer-fastCgi>\n</CONFIG>\n</appcmd>\n");
        out
    }

    fn find(&self, key: &[(String, String)]) -> Option<usize> {
        let get = |n: &str| {
            key.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        // Emulated as exact: iiswsgi always removes with the registered spelling.
        self.apps
            .iter()
            .position(|a| a.full_path == get("fullPath") && a.arguments == get("arguments"))
    }

    fn set_fastcgi(&mut self, op: &str) -> Output {
        if let Some(rest) = op.strip_prefix("/+") {
            let Some((pairs, tail)) = parse_element(rest) else {
                return fail("bad syntax");
            };
            if let Some(var) = tail.strip_prefix(".environmentVariables.") {
                let Some((v, "")) = parse_element(var) else {
                    return fail("bad syntax");
                };
                let Some(i) = self.find(&pairs) else {
                    return fail("Cannot find requested collection element.");
                };
                let name = v[0].1.clone();
                let value = v.get(1).map(|p| p.1.clone()).unwrap_or_default();
                self.apps[i].environment.push((name, value));
                return ok(String::new());
            }
            if !tail.is_empty() {
                return fail("bad syntax");
            }
            let mut app = RegisteredApplication::default();
            for (k, v) in pairs {
                match k.as_str() {
                    "fullPath" => app.full_path = v,
                    "arguments" => app.arguments = v,
                    _ => app.attributes.push((k, v)),
                }
            }
            if self.apps.iter().any(|a| {
                a.full_path.eq_ignore_ascii_case(&app.full_path)
                    && a.arguments.eq_ignore_ascii_case(&app.arguments)
            }) {
                return fail("Cannot add duplicate collection entry");
            }
            self.apps.push(app);
            ok(String::new())
        } else if let Some(rest) = op.strip_prefix("/-") {
            let Some((pairs, "")) = parse_element(rest) else {
                return fail("bad syntax");
            };
            match self.find(&pairs) {
                Some(i) => {
                    self.apps.remove(i);
                    ok(String::new())
                }
                None => fail("Cannot find requested collection element."),
            }
        } else {
            fail("unknown operation")
        }
    }
}

impl Runner for FakeAppCmd {
    fn run(&mut self, cmd: &CommandLine) -> std::io::Result<Output> {
        self.log.push(cmd.display());
        if cmd.program.to_ascii_lowercase().ends_with("icacls.exe") || cmd.program == "icacls" {
            return Ok(match cmd.args.as_slice() {
                [path] => match self.acls.iter().find(|(p, _)| p == path) {
                    Some((_, listing)) => ok(listing.clone()),
                    None => ok(format!("{path} BUILTIN\\Administrators:(OI)(CI)(F)\n")),
                },
                _ => ok("processed file\n".into()),
            });
        }
        let args: Vec<&str> = cmd
            .args
            .iter()
            .map(String::as_str)
            .filter(|a| !a.starts_with("/apphostconfig:"))
            .collect();
        Ok(match args.as_slice() {
            [
                "list",
                "config",
                "-section:system.webServer/fastCgi",
                "/xml",
            ] => ok(self.list_xml()),
            ["list", "vdir", "/xml"] => {
                let mut s = String::from("<appcmd>");
                for v in &self.vdirs {
                    s.push_str(&format!(
                        "<VDIR APP.NAME=\"{}\" path=\"{}\" physicalPath=\"{}\"/>",
                        xml_escape(&v.app),
                        xml_escape(&v.path),
                        xml_escape(&v.physical_path)
                    ));
                }
                ok(s + "</appcmd>")
            }
            ["list", "app", "/xml"] => {
                let mut s = String::from("<appcmd>");
                for a in &self.pools {
                    s.push_str(&format!(
                        "<APP APP.NAME=\"{}\" APPPOOL.NAME=\"{}\"/>",
                        xml_escape(&a.name),
                        xml_escape(&a.app_pool)
                    ));
                }
                ok(s + "</appcmd>")
            }
            ["set", "config", ..] if self.deny_writes => {
                fail("Cannot write configuration file due to insufficient permissions")
            }
            [
                "set",
                "config",
                "-section:system.webServer/fastCgi",
                op,
                "/commit:apphost",
            ] => {
                let op = op.to_string();
                self.set_fastcgi(&op)
            }
            [
                "set",
                "config",
                _location,
                "-section:system.webServer/handlers",
                _op,
            ] => ok(String::new()),
            _ => fail("unknown command"),
        })
    }
}

const EXE: &str = r"C:\Program Files\iiswsgi\iiswsgi.exe";

fn manifest() -> Manifest {
    Manifest::parse(
        "[app]\nname = \"Shop\"\nversion = \"1.0\"\n[wsgi]\napp = \"shop:app\"\n[iis.fastcgi]\nmonitor-changes-to = \"restart.txt\"\n",
        Path::new("iiswsgi.toml"),
    )
    .expect("manifest")
}

fn want(root: &str) -> FastCgiApplication {
    let key = key_for(EXE, root).expect("key");
    fastcgi_application(
        &manifest(),
        &key,
        Path::new(root),
        Some(r"C:\Program Files\Python311"),
        r"C:\Windows",
    )
}

fn appcmd() -> AppCmd {
    AppCmd::iis(IIS_APPCMD)
}

fn iis(dry_run: Option<DryRun>) -> Iis {
    Iis {
        appcmd: appcmd(),
        icacls: "icacls".into(),
        windir: r"C:\Windows".into(),
        dry_run,
    }
}

mod plan {
    use super::*;

    #[test]
    fn unknown_state_prints_a_conditional_removal_then_the_add() {
        let p = plan_fastcgi(&appcmd(), &want(r"C:\sites\shop"), None).expect("plan");
        assert_eq!(p.state, FastCgiState::Unknown);
        assert_eq!(p.commands.len(), 3, "remove, add, PATH");
        assert_eq!(p.commands[0].note.as_deref(), Some(ONLY_IF_REGISTERED));
        assert!(p.commands[0].command.args[3].starts_with("/-[fullPath="));
        assert!(p.commands[1].command.args[3].starts_with("/+[fullPath="));
        assert!(
            p.commands[2].command.args[3].ends_with(
                r".environmentVariables.[name='PATH',value='C:\Program Files\Python311;C:\Windows\System32;C:\Windows;C:\Windows\System32\Wbem']"
            ),
            "{}",
            p.commands[2].command.args[3]
        );
    }

    #[test]
    fn monitor_changes_to_is_made_absolute() {
        let w = want(r"C:\sites\shop");
        let m = w
            .attributes
            .iter()
            .find(|(k, _)| k == "monitorChangesTo")
            .expect("attr");
        assert!(
            m.1.starts_with(r"C:\sites\shop") && m.1.ends_with("restart.txt"),
            "{}",
            m.1
        );
    }

    #[test]
    fn equal_registration_needs_no_command() {
        let mut fake = FakeAppCmd::default();
        let w = want(r"C:\sites\shop");
        let plan = plan_fastcgi(&appcmd(), &w, Some(&[])).expect("plan");
        apply(&mut fake, &plan.commands).expect("apply");
        verify(&mut fake, &appcmd(), &w).expect("verify");
        let again = plan_fastcgi(&appcmd(), &w, Some(&fake.apps)).expect("plan");
        assert_eq!(again.state, FastCgiState::Equal);
        assert!(again.commands.is_empty());
    }

    #[test]
    fn re_registration_removes_the_registered_spelling_first() {
        let mut fake = FakeAppCmd::default();
        let w = want(r"C:\sites\shop");
        let mut old = w.clone();
        old.full_path = old.full_path.to_lowercase();
        old.attributes.retain(|(k, _)| k != "instanceMaxRequests");
        apply(
            &mut fake,
            &plan_fastcgi(&appcmd(), &old, Some(&[]))
                .expect("plan")
                .commands,
        )
        .expect("old registration");
        let plan = plan_fastcgi(&appcmd(), &w, Some(&fake.apps)).expect("plan");
        let FastCgiState::Changed(reasons) = &plan.state else {
            panic!("{:?}", plan.state)
        };
        assert!(
            reasons.iter().any(|r| r.contains("differs in case")),
            "{reasons:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|r| r == "instanceMaxRequests is `200`, want `10000`"),
            "{reasons:?}"
        );
        assert!(
            plan.commands[0].command.args[3]
                .contains(r"fullPath='c:\program files\iiswsgi\iiswsgi.exe'"),
            "removal uses the registered spelling: {}",
            plan.commands[0].command.args[3]
        );
        apply(&mut fake, &plan.commands).expect("apply");
        verify(&mut fake, &appcmd(), &w).expect("verify");
        assert_eq!(fake.apps.len(), 1);
    }

    #[test]
    fn other_apps_registrations_are_left_alone() {
        let mut fake = FakeAppCmd::default();
        let other = want(r"C:\sites\blog");
        apply(
            &mut fake,
            &plan_fastcgi(&appcmd(), &other, Some(&[]))
                .expect("plan")
                .commands,
        )
        .expect("apply");
        let plan =
            plan_fastcgi(&appcmd(), &want(r"C:\sites\shop"), Some(&fake.apps)).expect("plan");
        assert_eq!(plan.state, FastCgiState::Absent);
        apply(&mut fake, &plan.commands).expect("apply");
        assert_eq!(fake.apps.len(), 2);
        let removal = plan_fastcgi_removal(
            &appcmd(),
            EXE,
            &key_for(EXE, r"C:\sites\shop").expect("key").arguments,
            Some(&fake.apps),
        )
        .expect("plan");
        apply(&mut fake, &removal.commands).expect("apply");
        assert_eq!(fake.apps.len(), 1);
        assert_eq!(
            fake.apps[0].arguments,
            r"run --manifest C:\sites\blog\iiswsgi.toml"
        );
    }

    #[test]
    fn verify_reports_what_is_registered_instead() {
        let mut fake = FakeAppCmd::default();
        let w = want(r"C:\sites\shop");
        let mut changed = w.clone();
        changed.attributes[1].1 = "300".into();
        apply(
            &mut fake,
            &plan_fastcgi(&appcmd(), &changed, Some(&[]))
                .expect("plan")
                .commands,
        )
        .expect("apply");
        let e = verify(&mut fake, &appcmd(), &w).expect_err("mismatch");
        let text = e.to_string();
        assert!(
            text.contains("instanceMaxRequests is `300`, want `10000`"),
            "{text}"
        );
    }

    #[test]
    fn failed_appcmd_is_an_error_with_its_message() {
        let mut fake = FakeAppCmd {
            deny_writes: true,
            ..FakeAppCmd::default()
        };
        let plan = plan_fastcgi(&appcmd(), &want(r"C:\sites\shop"), Some(&[])).expect("plan");
        let e = apply(&mut fake, &plan.commands).expect_err("denied");
        assert!(e.to_string().contains("insufficient permissions"), "{e}");
        assert!(e.to_string().contains("exit code 4312"), "{e}");
    }
}

mod handler {
    use super::*;

    fn mapping(sp: &str) -> HandlerMapping {
        HandlerMapping::new(&manifest().iis.handler, sp.into())
    }

    fn web_config(sp: &str, limit: &str) -> WebConfigFacts {
        webconfig::parse(&format!(
            "<configuration><system.webServer><handlers><add name=\"iiswsgi-Shop\" path=\"*\" verb=\"*\" modules=\"FastCgiModule\" scriptProcessor=\"{sp}\" resourceType=\"Unspecified\" requireAccess=\"Script\" responseBufferLimit=\"{limit}\"/></handlers></system.webServer></configuration>"
        ))
        .expect("parse")
    }

    #[test]
    fn handler_already_in_web_config_is_unchanged() {
        let (o, c) = plan_handler(
            &appcmd(),
            "Default Web Site/Shop",
            &mapping(r"C:\i.exe|run"),
            Some(&web_config(r"C:\i.exe|run", "0")),
        )
        .expect("plan");
        assert_eq!(o, Outcome::Unchanged);
        assert!(c.is_empty());
    }

    #[test]
    fn handler_with_another_script_processor_is_replaced() {
        let (o, c) = plan_handler(
            &appcmd(),
            "Default Web Site/Shop",
            &mapping(r"C:\i.exe|run"),
            Some(&web_config(r"C:\old.exe|run", "0")),
        )
        .expect("plan");
        assert_eq!(o, Outcome::Changed("replaced".into()));
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].command.args[4], "/-[name='iiswsgi-Shop']");
    }

    #[test]
    fn missing_handler_is_added() {
        let (o, c) = plan_handler(&appcmd(), "S/Shop", &mapping("x|y"), None).expect("plan");
        assert_eq!(o, Outcome::Changed("added".into()));
        assert_eq!(c.len(), 1);
    }
}

mod enable_disable {
    use super::*;

    fn app_dir() -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tmp");
        std::fs::write(
            t.path().join("iiswsgi.toml"),
            "[app]\nname = \"Shop\"\nversion = \"1.0\"\n[wsgi]\napp = \"shop:app\"\nvenv = \".venv\"\n",
        )
        .expect("write");
        std::fs::create_dir(t.path().join(".venv")).expect("venv");
        std::fs::write(
            t.path().join(".venv").join("pyvenv.cfg"),
            "home = C:\\Program Files\\Python311\nversion = 3.11.7\n",
        )
        .expect("cfg");
        t
    }

    fn options(dir: &Path) -> IisOptions {
        IisOptions {
            app_dir: dir.to_path_buf(),
            physical_path: Some(r"C:\inetpub\wwwroot\My Shop".into()),
            iiswsgi_exe: EXE.into(),
            site: None,
            python: None,
        }
    }

    fn fake() -> FakeAppCmd {
        FakeAppCmd {
            vdirs: vec![VirtualDirectory {
                app: "Default Web Site/My Shop".into(),
                path: "/".into(),
                physical_path: r"%SystemDrive%\inetpub\wwwroot\my shop\".into(),
            }],
            ..FakeAppCmd::default()
        }
    }

    #[test]
    fn enable_twice_registers_once_and_then_reports_unchanged() {
        let dir = app_dir();
        let mut fake = fake();
        let mut opts = options(dir.path());
        // %SystemDrive% is not set in this process: name the site explicitly.
        opts.site = Some("Default Web Site/My Shop".into());
        let first = enable(&opts, &iis(None), &mut fake).expect("enable");
        assert_eq!(
            first.step("FastCGI application").map(|s| &s.outcome),
            Some(&Outcome::Changed("registered".into()))
        );
        assert_eq!(fake.apps.len(), 1);
        assert_eq!(
            fake.apps[0].environment[0].1,
            r"C:\Program Files\Python311;C:\Windows\System32;C:\Windows;C:\Windows\System32\Wbem"
        );
        let runs = fake.log.len();
        let second = enable(&opts, &iis(None), &mut fake).expect("enable");
        assert_eq!(
            second.step("FastCGI application").map(|s| &s.outcome),
            Some(&Outcome::Unchanged)
        );
        let writes = fake.log[runs..]
            .iter()
            .filter(|c| c.contains(" set config ") && c.contains("fastCgi"))
            .count();
        assert_eq!(writes, 0, "second run wrote: {:?}", &fake.log[runs..]);
    }

    #[test]
    fn enable_finds_the_site_from_the_vdir_list() {
        let dir = app_dir();
        let mut fake = fake();
        let opts = options(dir.path());
        let iis = iis(None);
        let lookup = |n: &str| {
            n.eq_ignore_ascii_case("SystemDrive")
                .then(|| "C:".to_string())
        };
        let apps = apps_serving(&fake.vdirs, r"C:\inetpub\wwwroot\My Shop", lookup);
        assert_eq!(apps, ["Default Web Site/My Shop"]);
        // Without the variable the folder is not recognised, and enable says how to proceed.
        let e = enable(&opts, &iis, &mut fake).expect_err("no site");
        assert!(e.to_string().contains("pass --site"), "{e}");
    }

    #[test]
    fn dry_run_off_windows_prints_everything_and_runs_nothing() {
        let dir = app_dir();
        let mut fake = fake();
        let report = enable(
            &options(dir.path()),
            &iis(Some(DryRun::NotWindows)),
            &mut fake,
        )
        .expect("enable");
        assert!(fake.log.is_empty(), "ran {:?}", fake.log);
        let text = report.to_string();
        assert!(text.contains("dry run (this is not Windows"), "{text}");
        assert!(text.contains(":: only if already registered"), "{text}");
        assert!(
            text.contains(r#"set config Default Web Site/Shop"#)
                || text.contains(r#""Default Web Site/Shop""#),
            "{text}"
        );
    }

    #[test]
    fn disable_removes_what_enable_added() {
        let dir = app_dir();
        let mut fake = fake();
        let mut opts = options(dir.path());
        opts.site = Some("Default Web Site/My Shop".into());
        enable(&opts, &iis(None), &mut fake).expect("enable");
        assert_eq!(fake.apps.len(), 1);
        let report = disable(&opts, &iis(None), &mut fake).expect("disable");
        assert!(fake.apps.is_empty());
        assert_eq!(
            report.step("FastCGI application").map(|s| &s.outcome),
            Some(&Outcome::Changed("removed".into()))
        );
        let again = disable(&opts, &iis(None), &mut fake).expect("disable");
        assert!(again.is_noop(), "{again}");
    }
}

#[test]
fn paths_compare_like_windows() {
    assert!(same_dir(r"C:\A\b\", "c:/a/B"));
    assert!(!same_dir(r"C:\A\b", r"C:\A\bc"));
    assert_eq!(physical_path_string(r"C:\x\"), r"C:\x");
    assert_eq!(physical_path_string(r"D:\"), r"D:\");
    assert_eq!(physical_path_string("/srv/app/"), "/srv/app");
}
