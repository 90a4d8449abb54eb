//! `iiswsgi doctor [APP_DIR]`: finds what keeps an installed app from working under IIS and
//! says how to fix each thing.
//!
//! The checks follow the complaints users actually have (iis-runtime.md §10) and the ways the
//! configuration can drift from what `install` wrote: a Python DLL the app pool cannot load
//! (0xC0000135, shown by IIS only as "the FastCGI process exited unexpectedly"), a venv made
//! by another Python, a per-user Python the pool cannot see, a `scriptProcessor` that is not
//! the registered `fullPath|arguments` (0x80070585), a missing registration, buffering that
//! breaks streaming, frequent recycling, ACLs, the log folder, `stderrMode`; and the app
//! itself: `[wsgi] app` must import in its venv (the probe of `check --import`, run by the
//! venv's python in a child process) and each `[[iis.static]]` folder must exist and be handed
//! to IIS by web.config.
//!
//! Each [`Check`] has a stable id, a status, what was found and the fix. Checks that need IIS
//! (appcmd, icacls, the app pool's DLL search) run only where appcmd can be asked; elsewhere
//! they are listed as skipped, and the checks that read the folder (manifest, venv, web.config
//! consistency, the values `install` would register) still run. Doctor changes nothing,
//! except that it proves the log folder writable by creating and deleting a file in it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::acl::{self, Grant, Purpose, Rights};
use super::appcmd::RegisteredApplication;
use super::discover::STAMP_FILE;
use super::python::{self, PyVenvCfg};
use super::register::{self, Iis, RegisterError};
use super::runner::Runner;
use super::webconfig::{self, WebConfigError, WebConfigFacts};
use crate::manifest::{Manifest, StderrMode, fastcgi_defaults};

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Fine.
    Ok,
    /// Not applicable or not possible here.
    Skipped,
    /// Works, but not as it should.
    Warn,
    /// Broken.
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Skipped => "skip",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Stable id (`script-processor`).
    pub id: &'static str,
    /// How it ended.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it (for warnings and failures).
    pub fix: Option<String>,
}

impl Check {
    fn ok(id: &'static str, detail: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn skip(id: &'static str, detail: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Skipped,
            detail: detail.into(),
            fix: None,
        }
    }

    fn bad(
        id: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            id,
            status,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The checks that need IIS itself.
pub const WINDOWS_CHECKS: &[&str] = &["python-dll", "fastcgi-registered", "permissions"];

/// Every check of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorReport {
    /// The app folder.
    pub app_dir: PathBuf,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// Whether the IIS checks ran.
    pub iis_checked: bool,
}

impl DoctorReport {
    /// Number of failures.
    pub fn failures(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Warn)
            .count()
    }

    /// The check with `id`.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "iiswsgi doctor: {}", self.app_dir.display())?;
        let width = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        for c in &self.checks {
            writeln!(
                f,
                "  {:4}  {:width$}  {}",
                c.status.to_string(),
                c.id,
                c.detail
            )?;
            if let Some(fix) = &c.fix {
                writeln!(f, "        {:width$}  fix: {fix}", "")?;
            }
        }
        if !self.iis_checked {
            writeln!(
                f,
                "skipped on this machine (they need Windows with IIS: appcmd, icacls, the app \
                 pool's DLL search): {}; the FastCGI values above are the ones iiswsgi.toml \
                 makes `install` register, not read from IIS",
                WINDOWS_CHECKS.join(", ")
            )?;
        }
        writeln!(
            f,
            "{} failure{}, {} warning{}",
            self.failures(),
            if self.failures() == 1 { "" } else { "s" },
            self.warnings(),
            if self.warnings() == 1 { "" } else { "s" }
        )
    }
}

/// What to examine, paths resolved ([`super::request::DoctorRequest`]).
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// The app folder (absolute).
    pub app_dir: PathBuf,
    /// The folder as IIS knows it, when checking a copy.
    pub physical_path: Option<String>,
    /// The executable IIS should start (`fullPath`).
    pub iiswsgi_exe: String,
    /// `--app-pool`: whose permissions to check (default: the app's pool from appcmd).
    pub app_pool: Option<String>,
}

/// Why doctor could not even start.
#[derive(Debug, thiserror::Error)]
#[error("{} is not a folder", .0.display())]
pub struct DoctorError(pub PathBuf);

/// Everything doctor learned about the folder, shared by the checks.
struct Facts {
    manifest: Option<Manifest>,
    venv: Option<(PathBuf, Option<PyVenvCfg>)>,
    web_config: Option<Result<WebConfigFacts, WebConfigError>>,
    expected_script_processor: Option<String>,
    registered: Option<Result<Vec<RegisteredApplication>, RegisterError>>,
}

/// `iiswsgi doctor`: runs every check (see the module docs).
pub fn doctor(
    options: &DoctorOptions,
    iis: &Iis,
    runner: &mut dyn Runner,
) -> Result<DoctorReport, DoctorError> {
    if !options.app_dir.is_dir() {
        return Err(DoctorError(options.app_dir.clone()));
    }
    let dir = &options.app_dir;
    let physical = register::physical_path_string(
        &options
            .physical_path
            .clone()
            .unwrap_or_else(|| dir.display().to_string()),
    );
    let mut checks = Vec::new();

    let manifest = match register::load_manifest(dir) {
        Ok(m) => {
            checks.push(Check::ok(
                "manifest",
                format!("{} {} ({})", m.app.name, m.app.version, m.path.display()),
            ));
            Some(m)
        }
        Err(e) => {
            let first = e
                .diagnostics()
                .iter()
                .find(|d| d.is_error())
                .map(|d| format!(": {}", d.message))
                .unwrap_or_default();
            checks.push(Check::bad(
                "manifest",
                Status::Fail,
                format!("{e}{first}"),
                format!(
                    "run `iiswsgi check {}` and correct what it reports",
                    dir.join(crate::manifest::FILE_NAME).display()
                ),
            ));
            None
        }
    };
    let key = register::key_for(&options.iiswsgi_exe, &physical);
    let facts = Facts {
        venv: manifest.as_ref().and_then(|m| {
            register::venv_dir(m, dir).map(|v| {
                let cfg = fs_err::read_to_string(v.join("pyvenv.cfg"))
                    .ok()
                    .map(|t| PyVenvCfg::parse(&t));
                (v, cfg)
            })
        }),
        web_config: match fs_err::read_to_string(dir.join("web.config")) {
            Ok(t) => Some(webconfig::parse(&t)),
            Err(_) => None,
        },
        expected_script_processor: key.as_ref().ok().map(|k| k.script_processor()),
        registered: iis
            .can_read()
            .then(|| register::read_registered(runner, &iis.appcmd)),
        manifest,
    };
    if let Err(e) = &key {
        checks.push(Check::bad(
            "paths",
            Status::Fail,
            e.to_string(),
            "IIS registrations cannot be written for this path; move the app or iiswsgi",
        ));
    }

    checks.push(stamp_check(dir));
    checks.extend(venv_checks(&facts));
    checks.extend(web_config_checks(&facts));
    checks.extend(fastcgi_value_checks(&facts));
    checks.push(log_check(&facts, dir));
    checks.push(app::import_check(&facts, dir, &options.iiswsgi_exe));
    checks.extend(app::static_check(&facts, dir));
    if iis.can_read() {
        checks.push(registered_check(&facts));
        checks.push(dll_check(&facts, options, iis));
        checks.extend(permission_checks(
            &facts, options, iis, runner, dir, &physical,
        ));
    } else {
        for id in WINDOWS_CHECKS {
            checks.push(Check::skip(id, "needs Windows with IIS"));
        }
    }
    Ok(DoctorReport {
        app_dir: dir.clone(),
        checks,
        iis_checked: iis.can_read(),
    })
}

fn stamp_check(dir: &Path) -> Check {
    if dir.join(STAMP_FILE).exists() {
        Check::bad(
            "install-finished",
            Status::Fail,
            format!("{STAMP_FILE} is still there: the post-install step has not completed"),
            format!(
                "run `iiswsgi install {}` as administrator and read its error",
                dir.display()
            ),
        )
    } else {
        Check::ok("install-finished", format!("no {STAMP_FILE}"))
    }
}

fn venv_checks(facts: &Facts) -> Vec<Check> {
    let Some(manifest) = &facts.manifest else {
        return vec![Check::skip("venv", "no usable manifest")];
    };
    let Some((venv, cfg)) = &facts.venv else {
        return vec![Check::ok(
            "venv",
            "no venv configured: the app runs on the base Python's site-packages",
        )];
    };
    let Some(cfg) = cfg else {
        return vec![Check::bad(
            "venv",
            Status::Fail,
            format!(
                "{} has no pyvenv.cfg: the venv does not exist or is broken",
                venv.display()
            ),
            "run `iiswsgi install` to create it",
        )];
    };
    let mut out = vec![Check::ok("venv", venv.display().to_string())];
    let found = cfg.major_minor();
    let show = |(a, b): (u32, u32)| format!("{a}.{b}");
    let minimum = crate::venv::MINIMUM_PYTHON;
    out.push(match (found, python::built_for()) {
        (None, _) => Check::bad(
            "venv-version",
            Status::Fail,
            "pyvenv.cfg has no version line, so its Python cannot be checked",
            format!(
                "delete {} and run `iiswsgi install` to recreate it",
                venv.display()
            ),
        ),
        (Some(_), None) => Check::skip(
            "venv-version",
            "this iiswsgi build embeds no Python (built without the `python` feature)",
        ),
        (Some(v), Some(_)) if v < minimum => Check::bad(
            "venv-version",
            Status::Fail,
            format!(
                "the venv was made by Python {}, but iiswsgi embeds CPython {} or later",
                show(v),
                show(minimum)
            ),
            format!(
                "install a newer Python for all users, delete {} and run `iiswsgi install`",
                venv.display()
            ),
        ),
        (Some(v), Some(_)) => match manifest.wsgi.python_version {
            Some((a, b)) if (u32::from(a), u32::from(b)) != v => Check::bad(
                "venv-version",
                Status::Fail,
                format!(
                    "the venv is Python {} but iiswsgi.toml wants {a}.{b}",
                    show(v)
                ),
                "make [wsgi] python-version match the Python the server runs, or recreate the venv",
            ),
            _ => Check::ok("venv-version", format!("Python {}", show(v))),
        },
    });
    out.push(match cfg.home.as_deref() {
        None => Check::bad(
            "per-user-python",
            Status::Warn,
            "pyvenv.cfg has no home line, so the Python installation is unknown",
            "recreate the venv with `iiswsgi install`",
        ),
        Some(home) => match python::per_user_install(home) {
            Some(kind) => Check::bad(
                "per-user-python",
                Status::Fail,
                format!(
                    "the venv's Python ({home}) is a per-user install ({kind}): the app-pool \
                     identity can neither find nor read it, so the process dies before \
                     iiswsgi can log anything"
                ),
                format!(
                    "install Python for all users (\"Install for all users\" in the installer, \
                     under C:\\Program Files), delete {} and run `iiswsgi install --python \
                     \"C:\\Program Files\\Python3XY\\python.exe\"`",
                    venv.display()
                ),
            ),
            None => Check::ok("per-user-python", format!("Python installation {home}")),
        },
    });
    out
}

/// The FastCGI handler for this app in web.config: the manifest's handler name, else the
/// first FastCGI handler.
fn handler_of<'a>(
    facts: &'a WebConfigFacts,
    manifest: Option<&Manifest>,
) -> Option<&'a webconfig::HandlerAdd> {
    manifest
        .and_then(|m| facts.handler(&m.iis.handler.name))
        .or_else(|| facts.fastcgi_handlers().next())
}

fn web_config_checks(facts: &Facts) -> Vec<Check> {
    let reinstall = "run `iiswsgi install` (it renders web.config from the shipped template)";
    let wc = match &facts.web_config {
        None => {
            return vec![Check::bad(
                "web-config",
                Status::Fail,
                "no web.config in the app folder: IIS serves the folder as static files",
                reinstall,
            )];
        }
        Some(Err(e)) => {
            return vec![Check::bad(
                "web-config",
                Status::Fail,
                e.to_string(),
                reinstall,
            )];
        }
        Some(Ok(wc)) => wc,
    };
    let mut out = Vec::new();
    if wc.denies_all_verbs && wc.fastcgi_handlers().next().is_none() {
        out.push(Check::bad(
            "web-config",
            Status::Fail,
            "web.config is still the package's placeholder, which denies every request",
            reinstall,
        ));
        return out;
    }
    match wc.fastcgi_section_line {
        Some(line) => out.push(Check::bad(
            "web-config",
            Status::Warn,
            format!(
                "web.config line {line} has a <fastCgi> section, which IIS ignores there \
                 (it is AppHostOnly)"
            ),
            "remove it; FastCGI settings belong in iiswsgi.toml [iis.fastcgi], registered by \
             `iiswsgi iis enable`",
        )),
        None => out.push(Check::ok("web-config", "parsed")),
    }
    let Some(handler) = handler_of(wc, facts.manifest.as_ref()) else {
        out.push(Check::bad(
            "script-processor",
            Status::Fail,
            "web.config has no FastCGI handler (<handlers><add modules=\"FastCgiModule\">)",
            reinstall,
        ));
        return out;
    };
    if let Some(expected) = &facts.expected_script_processor {
        let found = handler.script_processor();
        if found == expected {
            out.push(Check::ok("script-processor", format!("`{found}`")));
        } else {
            out.push(Check::bad(
                "script-processor",
                Status::Fail,
                format!(
                    "web.config line {}: scriptProcessor `{found}` is not `{expected}` \
                     (fullPath|arguments of this iiswsgi and folder); IIS answers every request \
                     with 500.0 \"scriptProcessor could not be found in <fastCGI> application \
                     configuration\" (0x80070585)",
                    handler.line
                ),
                "run `iiswsgi install` (or `iiswsgi iis enable` and fix web.config), so web.config \
                 and the registration name the same fullPath|arguments character for character",
            ));
        }
    }
    match handler.response_buffer_limit() {
        Some(0) => out.push(Check::ok("response-buffer-limit", "0 (responses stream)")),
        other => out.push(Check::bad(
            "response-buffer-limit",
            Status::Warn,
            format!(
                "responseBufferLimit is {} on web.config line {}: IIS holds that many bytes of \
                 every response, so streamed responses and server-sent events stall",
                other.map_or_else(|| "unreadable".to_string(), |v| v.to_string()),
                handler.line
            ),
            "set `response-buffer-limit = 0` in [iis.handler] and run `iiswsgi install`",
        )),
    }
    out
}

/// The registered entry for this app (exact key), if IIS could be asked.
fn registered_entry(facts: &Facts) -> Option<&RegisteredApplication> {
    let expected = facts.expected_script_processor.as_deref()?;
    facts
        .registered
        .as_ref()?
        .as_ref()
        .ok()?
        .iter()
        .find(|r| r.script_processor() == expected)
}

fn fastcgi_value_checks(facts: &Facts) -> Vec<Check> {
    let Some(manifest) = &facts.manifest else {
        return Vec::new();
    };
    let entry = registered_entry(facts);
    let source = if entry.is_some() {
        "registered in IIS"
    } else {
        "in iiswsgi.toml"
    };
    let imr = entry
        .and_then(|e| e.effective("instanceMaxRequests"))
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(manifest.iis.fastcgi.instance_max_requests);
    let mut out = vec![if imr < fastcgi_defaults::INSTANCE_MAX_REQUESTS {
        Check::bad(
            "instance-max-requests",
            Status::Warn,
            format!(
                "instanceMaxRequests is {imr} ({source}): IIS restarts the process, and the app \
                 re-imports, every {imr} requests"
            ),
            format!(
                "set `instance-max-requests = {}` (or more) in [iis.fastcgi] and run `iiswsgi iis enable`",
                fastcgi_defaults::INSTANCE_MAX_REQUESTS
            ),
        )
    } else {
        Check::ok("instance-max-requests", format!("{imr} ({source})"))
    }];
    let mode = entry
        .and_then(|e| e.effective("stderrMode"))
        .map(str::to_string)
        .unwrap_or_else(|| manifest.iis.fastcgi.stderr_mode.as_str().to_string());
    out.push(if mode.eq_ignore_ascii_case(StderrMode::ReturnGeneric500.as_str()) {
        Check::ok("stderr-mode", format!("{mode} ({source})"))
    } else {
        Check::bad(
            "stderr-mode",
            Status::Warn,
            format!(
                "stderrMode is {mode} ({source}); iiswsgi never writes FastCGI stderr, but if \
                 anything did, {} ",
                match mode.to_ascii_lowercase().as_str() {
                    "returnstderrin500" => "its text would be shown to the client in a 500 page",
                    "terminateprocess" => "IIS would kill the process mid-request",
                    _ => "the error would be hidden behind a 200",
                }
            ),
            "set `stderr-mode = \"ReturnGeneric500\"` in [iis.fastcgi] and run `iiswsgi iis enable`",
        )
    });
    out
}

/// The folder `iiswsgi run` logs into.
fn log_dir(manifest: &Manifest, dir: &Path) -> PathBuf {
    match &manifest.run.log_file {
        Some(f) => {
            let p = Path::new(f);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            };
            p.parent()
                .map_or_else(|| dir.to_path_buf(), Path::to_path_buf)
        }
        None => dir.join("logs"),
    }
}

fn log_check(facts: &Facts, dir: &Path) -> Check {
    let Some(manifest) = &facts.manifest else {
        return Check::skip("log-writable", "no usable manifest");
    };
    let logs = log_dir(manifest, dir);
    if !logs.is_dir() {
        return Check::bad(
            "log-writable",
            Status::Fail,
            format!(
                "the log folder {} does not exist: iiswsgi run falls back to %TEMP% and the \
                 Event Log, where nobody looks",
                logs.display()
            ),
            "run `iiswsgi install` (it creates the folder and lets the app pool write to it)",
        );
    }
    let probe = logs.join(".iiswsgi-doctor-probe");
    match fs_err::write(&probe, b"") {
        Ok(()) => {
            let _ = fs_err::remove_file(&probe);
            Check::ok(
                "log-writable",
                format!("{} (writable by this user)", logs.display()),
            )
        }
        Err(e) => Check::bad(
            "log-writable",
            Status::Fail,
            format!("cannot write in {}: {e}", logs.display()),
            "let the app-pool identity modify the folder: run `iiswsgi install` as administrator",
        ),
    }
}

fn registered_check(facts: &Facts) -> Check {
    let Some(expected) = &facts.expected_script_processor else {
        return Check::skip("fastcgi-registered", "no usable key");
    };
    match &facts.registered {
        None => Check::skip("fastcgi-registered", "IIS not asked"),
        Some(Err(e)) => Check::bad(
            "fastcgi-registered",
            Status::Fail,
            format!("cannot list FastCGI applications: {e}"),
            "run doctor as administrator (appcmd reads applicationHost.config)",
        ),
        Some(Ok(list)) => {
            if list.iter().any(|r| &r.script_processor() == expected) {
                return Check::ok("fastcgi-registered", expected.clone());
            }
            let near: Vec<String> = list
                .iter()
                .filter(|r| r.script_processor().eq_ignore_ascii_case(expected))
                .map(|r| format!("`{}`", r.script_processor()))
                .collect();
            let detail = if near.is_empty() {
                format!(
                    "no <fastCgi><application> is registered as `{expected}`; every request fails with 500.0 (0x80070585)"
                )
            } else {
                format!(
                    "registered as {} but web.config needs `{expected}` exactly (0x80070585)",
                    near.join(", ")
                )
            };
            Check::bad(
                "fastcgi-registered",
                Status::Fail,
                detail,
                "run `iiswsgi iis enable` in the app folder as administrator",
            )
        }
    }
}

/// Which `python3.dll` the FastCGI process would load (the first on its DLL search path), and
/// whether it is the venv's Python with its `python3XY.dll` beside it.
fn dll_check(facts: &Facts, options: &DoctorOptions, iis: &Iis) -> Check {
    if python::built_for().is_none() {
        return Check::skip("python-dll", "this build embeds no Python");
    }
    let dll = python::STABLE_DLL;
    let exe_dir = Path::new(&options.iiswsgi_exe)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let path_var = registered_entry(facts).and_then(|e| {
        e.environment
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("PATH"))
            .map(|(_, v)| v.clone())
    });
    let dirs = python::dll_search(&exe_dir, &iis.windir, path_var.as_deref());
    let cfg = facts.venv.as_ref().and_then(|(_, cfg)| cfg.as_ref());
    let home = cfg.and_then(|c| c.home.as_deref());
    let versioned = cfg.and_then(PyVenvCfg::major_minor).map(python::dll_name);
    let Some(found) = dirs.iter().find(|d| Path::new(d).join(dll).is_file()) else {
        return Check::bad(
            "python-dll",
            Status::Fail,
            format!(
                "{dll} is in none of the folders the FastCGI process searches ({});                  iiswsgi.exe imports it, so the process dies at start (0xC0000135) and IIS                  says only \"the FastCGI process exited unexpectedly\"",
                dirs.join("; ")
            ),
            format!(
                "run `iiswsgi iis enable` (it puts {} on the registration's PATH); every                  python.org CPython 3.9+ ships {dll} in its folder",
                home.unwrap_or("the venv's Python folder")
            ),
        );
    };
    let same = |a: &str, b: &str| {
        a.trim_end_matches(['\\', '/'])
            .eq_ignore_ascii_case(b.trim_end_matches(['\\', '/']))
    };
    if let Some(home) = home
        && !same(found, home)
    {
        return Check::bad(
            "python-dll",
            Status::Fail,
            format!(
                "the first {dll} the FastCGI process finds is in {found}, but the venv was made                  by the Python in {home}: the process would run that other Python and refuse                  the venv"
            ),
            format!("run `iiswsgi iis enable` (the registration's PATH must start with {home})"),
        );
    }
    match versioned {
        Some(v) if !Path::new(found).join(&v).is_file() => Check::bad(
            "python-dll",
            Status::Fail,
            format!(
                "{found} has {dll} but not {v}, which it forwards to: the process dies at start"
            ),
            "repair the Python installation (python.org installer, Modify/Repair)",
        ),
        Some(v) => Check::ok("python-dll", format!("{dll} and {v} found in {found}")),
        None => Check::ok("python-dll", format!("{dll} found in {found}")),
    }
}

fn permission_checks(
    facts: &Facts,
    options: &DoctorOptions,
    iis: &Iis,
    runner: &mut dyn Runner,
    dir: &Path,
    physical: &str,
) -> Vec<Check> {
    if iis.appcmd.is_express() {
        return vec![Check::ok(
            "permissions",
            "IIS Express runs as the current user",
        )];
    }
    let pool = match &options.app_pool {
        Some(p) => p.clone(),
        None => {
            let apps = register::read_vdirs(runner, &iis.appcmd)
                .map(|v| register::apps_serving(&v, physical, super::runner::process_env));
            let pools = register::read_apps(runner, &iis.appcmd);
            match (apps, pools) {
                (Ok(apps), Ok(pools)) => match pools.iter().find(|p| {
                    apps.iter()
                        .any(|a| register::same_dir(super::appcmd::location_of(&p.name), a))
                }) {
                    Some(p) => p.app_pool.clone(),
                    None => {
                        return vec![Check::bad(
                            "permissions",
                            Status::Warn,
                            format!(
                                "no IIS application serves {physical}, so its app pool is unknown"
                            ),
                            "pass --app-pool NAME",
                        )];
                    }
                },
                _ => {
                    return vec![Check::bad(
                        "permissions",
                        Status::Warn,
                        "cannot ask appcmd for the app pool",
                        "run doctor as administrator, or pass --app-pool NAME",
                    )];
                }
            }
        }
    };
    let account = acl::app_pool_identity(&pool);
    let mut wanted = vec![Grant {
        path: physical.to_string(),
        account: account.clone(),
        rights: Rights::read_execute(),
        inherit: true,
        purpose: Purpose::App,
    }];
    if let Some(m) = &facts.manifest {
        wanted.push(Grant {
            path: log_dir(m, dir).display().to_string(),
            account: account.clone(),
            rights: Rights::modify(),
            inherit: true,
            purpose: Purpose::Log,
        });
    }
    if let Some((_, Some(cfg))) = &facts.venv
        && let Some(home) = &cfg.home
    {
        wanted.push(Grant {
            path: home.clone(),
            account: account.clone(),
            rights: Rights::read_execute(),
            inherit: true,
            purpose: Purpose::Python,
        });
    }
    // Groups the pool identity belongs to also count.
    let groups = [
        account.clone(),
        "BUILTIN\\IIS_IUSRS".to_string(),
        "BUILTIN\\Users".to_string(),
        "NT AUTHORITY\\Authenticated Users".to_string(),
        "Everyone".to_string(),
    ];
    let mut missing = Vec::new();
    for g in &wanted {
        let listing = match runner.run(&g.show_command(&iis.icacls)) {
            Ok(out) if out.success() => out.stdout,
            _ => String::new(),
        };
        let granted = groups.iter().any(|who| {
            acl::has_grant(
                &listing,
                &Grant {
                    account: who.clone(),
                    ..g.clone()
                },
            )
        });
        if !granted {
            missing.push(g.command(&iis.icacls).display());
        }
    }
    if missing.is_empty() {
        vec![Check::ok(
            "permissions",
            format!("{account} can read the app and Python and write the log"),
        )]
    } else {
        vec![Check::bad(
            "permissions",
            Status::Fail,
            format!(
                "{account} lacks {} grant(s) (read on the app and Python, modify on the log folder)",
                missing.len()
            ),
            format!(
                "run `iiswsgi install` as administrator, or: {}",
                missing.join(" && ")
            ),
        )]
    }
}

mod app;
#[cfg(test)]
mod tests;
