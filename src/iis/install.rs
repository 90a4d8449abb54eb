//! `iiswsgi install [APP_DIR]`: the post-install step msdeploy's runCommand runs on the server
//! after copying the app (msdeploy-webpi.md §2.3, §5.2, §5.3, §8.1).
//!
//! In order, each step skipped when already done, so a second run changes nothing:
//! 1. find the app folder ([`super::discover`]) and load its `iiswsgi.toml`;
//! 2. pick the Python (`--python`, the manifest's `python-version`, else the newest all-users
//!    CPython) and ask it for its version: 3.9 or later (the stable ABI the binary links) and
//!    the manifest's `python-version` when set;
//! 3. create the venv inside the app folder (`python -m venv`), or keep it when its
//!    `pyvenv.cfg` says the same `major.minor`;
//! 4. `pip install -r requirements` (or the project), skipped when the requirements file is
//!    byte-for-byte what was installed last time (a hash kept in the venv) *and* the venv still
//!    satisfies it: pip's own offline check (`pip install --no-index -r …`, which succeeds only
//!    when nothing is missing, and `pip check`) finds a package uninstalled or broken since,
//!    and install repairs it; `--repair` reinstalls everything (`--force-reinstall`);
//! 5. run `[package] post-install` commands (every time: they must be idempotent);
//! 6. create the log folder;
//! 7. register the `<fastCgi><application>` (appcmd; printed off Windows), with `PATH`
//!    naming the Python installation so its `python3.dll` (and the `python3XY.dll` it
//!    forwards to) loads, and read it back;
//! 8. render `web.config` from the `web.config.hbs` the package ships, with this binary as
//!    `fullPath` and the handler's `scriptProcessor` equal to the registration, check it, and
//!    replace the placeholder (only when the text differs);
//! 9. grant the app-pool identity read on the app and Python and write on the writable folders
//!    and the log folder (icacls; printed off Windows, skipped for IIS Express);
//! 10. remove the stamp file ([`super::discover::STAMP_FILE`]).
//!
//! The FastCGI application is registered before web.config names it, so no request ever
//! meets a handler whose `scriptProcessor` is not registered yet (0x80070585); until then the
//! shipped placeholder serves nothing. Any failure stops the run with an error naming the step,
//! the command and its output, and a non-zero exit, which msdeploy (`successReturnCodes=0x0`)
//! and WebPI report; the stamp stays, so the next run knows the folder is not done.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha1::{Digest, Sha1};

use super::acl::{self, Grant, Purpose, Rights};
use super::appcmd::{AppCmdError, CommandLine};
use super::discover::{self, DiscoverError, Request, STAMP_FILE};
use super::python::{self, ProbeError, PyVenvCfg, PythonInfo};
use super::register::{self, Iis, RegisterError};
use super::report::{DryRun, Outcome, Planned, Report, Step};
use super::runner::{self, Runner};
use crate::manifest::{Manifest, ManifestError};

/// The file in the venv recording what `pip install` last installed.
pub const REQUIREMENTS_MARKER: &str = "iiswsgi-requirements.sha1";

/// The shipped template's name in the app folder.
pub const WEB_CONFIG_TEMPLATE: &str = "web.config.hbs";

/// Where a replaced hand-written web.config is kept (a redeploy keeps it, see
/// [`crate::deploy::WEB_CONFIG_BACKUP`]).
pub use crate::deploy::WEB_CONFIG_BACKUP;

/// What `iiswsgi install` was asked, paths resolved and the environment read
/// ([`super::request::InstallRequest`]).
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// The app folder from the command line (absolute).
    pub app_dir: Option<PathBuf>,
    /// `APPL_PHYSICAL_PATH`, if set.
    pub appl_physical_path: Option<PathBuf>,
    /// `--app-name`: the manifest's `[app] name`, for discovery and as a check.
    pub app_name: Option<String>,
    /// `--python`: the interpreter to make the venv with.
    pub python: Option<PathBuf>,
    /// The executable IIS starts (`fullPath`): this binary, absolute.
    pub iiswsgi_exe: String,
    /// `--site`: `Site/app`, for the app pool lookup.
    pub site: Option<String>,
    /// `--app-pool`: the pool whose identity gets the ACLs.
    pub app_pool: Option<String>,
    /// `--dry-run`: change nothing, print everything.
    pub dry_run: bool,
    /// `--repair`: reinstall the requirements even when pip's check finds nothing wrong.
    pub repair: bool,
}

/// Errors of `iiswsgi install`.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The app folder could not be found.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// The manifest cannot be used.
    #[error("cannot use the manifest")]
    Manifest(#[from] ManifestError),
    /// The interpreter could not be asked.
    #[error("cannot ask Python for its version")]
    Probe(#[from] ProbeError),
    /// The interpreter is older than 3.9 or another version than the manifest wants.
    #[error(
        "{python} is Python {found}, but {wanted_by} needs {wanted}; install Python {wanted} \
         for all users (or pass --python)"
    )]
    PythonVersion {
        /// The interpreter.
        python: String,
        /// Its `major.minor`.
        found: String,
        /// The wanted `major.minor`.
        wanted: String,
        /// Who wants it.
        wanted_by: &'static str,
    },
    /// There is something to pip install but no venv to put it in.
    #[error(
        "{what} must be installed, but iiswsgi.toml names no venv; add `venv = \".venv\"` \
         to [wsgi] so install creates one in the app folder (installing into the server's \
         Python would affect every app)"
    )]
    NoVenv {
        /// `requirements.txt`, `the project`.
        what: String,
    },
    /// A command failed.
    #[error("{step}: {command}\n  exited with {status}:\n{output}")]
    Command {
        /// The step.
        step: &'static str,
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// The end of its output.
        output: String,
    },
    /// A command could not be started.
    #[error("{step}: cannot run {command}")]
    Spawn {
        /// The step.
        step: &'static str,
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A value appcmd cannot carry.
    #[error(transparent)]
    Value(#[from] AppCmdError),
    /// The web.config template could not be rendered.
    #[error("cannot render {}", .path.display())]
    Render {
        /// The template.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::deploy::RenderError,
    },
    /// The rendered web.config breaks a check rule.
    #[error("the web.config rendered from {} is not usable:\n{findings}", .path.display())]
    WebConfig {
        /// The template.
        path: PathBuf,
        /// The errors.
        findings: String,
    },
    /// Registering with IIS failed.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// A file could not be read or written.
    #[error("cannot write {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A failed install: the error and the steps done before it (printed first).
#[derive(Debug, thiserror::Error)]
#[error("iiswsgi install failed; the stamp file stays, so the folder is recognised as unfinished")]
pub struct InstallFailure {
    /// The steps completed before the failure.
    pub report: Report,
    /// What failed.
    #[source]
    pub error: InstallError,
}

/// `iiswsgi install`: see the module docs. `iis` says which IIS and whether IIS commands run;
/// `runner` runs appcmd and icacls.
pub fn install(
    options: &InstallOptions,
    iis: &Iis,
    runner: &mut dyn Runner,
) -> Result<Report, Box<InstallFailure>> {
    let mut report = Report {
        title: "iiswsgi install".into(),
        dry_run: if options.dry_run {
            Some(DryRun::Requested)
        } else {
            iis.dry_run
        },
        ..Report::default()
    };
    match Installer::run(options, iis, runner, &mut report) {
        Ok(()) => Ok(report),
        Err(error) => Err(Box::new(InstallFailure { report, error })),
    }
}

struct Installer<'a> {
    options: &'a InstallOptions,
    iis: &'a Iis,
    manifest: Manifest,
    app_dir: PathBuf,
    physical: String,
    site: Option<String>,
    windows: bool,
}

impl<'a> Installer<'a> {
    fn run(
        options: &'a InstallOptions,
        iis: &'a Iis,
        runner: &mut dyn Runner,
        report: &mut Report,
    ) -> Result<(), InstallError> {
        let vdirs = if options.app_dir.is_none()
            && options.appl_physical_path.is_none()
            && iis.can_read()
        {
            Some(register::read_vdirs(runner, &iis.appcmd)?)
        } else {
            None
        };
        let found = discover::discover(
            &Request {
                argument: options.app_dir.clone(),
                environment: options.appl_physical_path.clone(),
                app_name: options.app_name.clone(),
                vdirs,
            },
            runner::process_env,
        )?;
        for c in &found.candidates {
            report.notes.push(format!("looked at {c}"));
        }
        let app_dir = found.dir.clone();
        let manifest = register::load_manifest(&app_dir)?;
        let physical = register::physical_path_string(&app_dir.display().to_string());
        report.title = format!("iiswsgi install: {} in {physical}", manifest.app.name);
        let installer = Installer {
            options,
            iis,
            manifest,
            app_dir,
            physical,
            site: options.site.clone().or(found.site),
            windows: cfg!(windows),
        };
        installer.steps(runner, report)
    }

    fn dry(&self) -> bool {
        self.options.dry_run
    }

    fn steps(&self, runner: &mut dyn Runner, report: &mut Report) -> Result<(), InstallError> {
        let key = register::key_for(&self.options.iiswsgi_exe, &self.physical)?;
        let python = self.python()?;
        report.notes.push(format!(
            "Python {} at {}",
            python.version_string(),
            python.executable
        ));
        if let Some(kind) = python::per_user_install(&python.base_prefix) {
            report.notes.push(format!(
                "warning: {} is a per-user Python ({kind}); the app-pool identity cannot \
                 normally see it. Install Python for all users (C:\\Program Files\\Python3XY) \
                 and run install again",
                python.base_prefix
            ));
        }
        let venv = self.venv(&python, report)?;
        self.requirements(venv.as_deref(), &python, report)?;
        self.post_install(venv.as_deref(), report)?;
        let log_dir = self.log_dir(report)?;

        let home = venv
            .as_deref()
            .and_then(|v| fs_err::read_to_string(v.join("pyvenv.cfg")).ok())
            .and_then(|t| PyVenvCfg::parse(&t).home)
            .unwrap_or_else(|| python.base_prefix.clone());
        let want = register::fastcgi_application(
            &self.manifest,
            &key,
            Path::new(&self.physical),
            Some(&home),
            &self.iis.windir,
        );
        let iis = if self.dry() {
            Iis {
                dry_run: self.iis.dry_run.or(Some(DryRun::Requested)),
                ..self.iis.clone()
            }
        } else {
            self.iis.clone()
        };
        let registered = register::registered_now(&iis, runner)?;
        let plan = register::plan_fastcgi(&self.iis.appcmd, &want, registered.as_deref())?;
        report.steps.push(register::fastcgi_step(
            &iis,
            runner,
            &want,
            plan,
            format!("PATH starts with {home}, where python3.dll lives"),
        )?);

        self.web_config(&key, report)?;
        self.acls(&iis, runner, &python, venv.as_deref(), &log_dir, report)?;
        self.stamp(report)?;
        Ok(())
    }

    /// The interpreter: `--python`; else, with `[wsgi] python-version = "X.Y"`, `py -X.Y` on
    /// Windows and `pythonX.Y` elsewhere; else the newest CPython ≥ 3.9 installed for all
    /// users (`py -0p` on Windows) or `python3`. It must be 3.9 or later (the stable ABI the
    /// binary links) and the manifest's version when it names one.
    fn python(&self) -> Result<PythonInfo, InstallError> {
        let wanted = self
            .manifest
            .wsgi
            .python_version
            .map(|(a, b)| (u32::from(a), u32::from(b)));
        let info = match &self.options.python {
            Some(p) => python::probe(p, &[])?,
            None if self.windows => match wanted {
                Some((a, b)) => python::probe(Path::new("py"), &[format!("-{a}.{b}")])?,
                None => {
                    let listed = Command::new("py")
                        .arg("-0p")
                        .output()
                        .map(|o| python::parse_py_list(&String::from_utf8_lossy(&o.stdout)))
                        .unwrap_or_default();
                    match python::newest_all_users(&listed) {
                        Some(newest) => python::probe(&newest.executable, &[])?,
                        None => python::probe(Path::new("py"), &["-3".to_string()])?,
                    }
                }
            },
            None => {
                let named = wanted.map(|(a, b)| PathBuf::from(format!("python{a}.{b}")));
                match named.as_deref().map(|n| python::probe(n, &[])) {
                    Some(Ok(info)) => info,
                    _ => python::probe(Path::new("python3"), &[])?,
                }
            }
        };
        let found = info.major_minor();
        let show = |(a, b): (u32, u32)| format!("{a}.{b}");
        if python::built_for().is_some() && found < crate::venv::MINIMUM_PYTHON {
            return Err(InstallError::PythonVersion {
                python: info.executable.clone(),
                found: show(found),
                wanted: format!("{} or later", show(crate::venv::MINIMUM_PYTHON)),
                wanted_by: "iiswsgi",
            });
        }
        if let Some(wanted) = wanted
            && wanted != found
        {
            return Err(InstallError::PythonVersion {
                python: info.executable.clone(),
                found: show(found),
                wanted: show(wanted),
                wanted_by: "iiswsgi.toml ([wsgi] python-version)",
            });
        }
        Ok(info)
    }

    /// What pip installs: the requirements file, else the project itself.
    fn pip_target(&self) -> Option<(String, Vec<String>, Vec<PathBuf>)> {
        if let Some(req) = &self.manifest.package.requirements {
            let path = req.under(&self.app_dir);
            return Some((
                req.as_str().to_string(),
                vec!["-r".into(), path.display().to_string()],
                vec![path],
            ));
        }
        let files: Vec<PathBuf> = ["pyproject.toml", "setup.py", "setup.cfg"]
            .iter()
            .map(|f| self.app_dir.join(f))
            .filter(|p| p.is_file())
            .collect();
        (!files.is_empty()).then(|| {
            (
                "the project".to_string(),
                vec![self.app_dir.display().to_string()],
                files,
            )
        })
    }

    fn venv(
        &self,
        python: &PythonInfo,
        report: &mut Report,
    ) -> Result<Option<PathBuf>, InstallError> {
        let Some(dir) = register::venv_dir(&self.manifest, &self.app_dir) else {
            if let Some((what, _, _)) = self.pip_target() {
                return Err(InstallError::NoVenv { what });
            }
            report.steps.push(Step::new(
                "venv",
                Outcome::Skipped("none configured".into()),
            ));
            return Ok(None);
        };
        let cfg = fs_err::read_to_string(dir.join("pyvenv.cfg"))
            .ok()
            .map(|t| PyVenvCfg::parse(&t));
        let interpreter = python::venv_python(&dir, self.windows);
        let mut args = vec!["-m".to_string(), "venv".to_string()];
        let outcome = match cfg.as_ref().and_then(PyVenvCfg::major_minor) {
            Some(v) if v == python.major_minor() && interpreter.exists() => {
                report
                    .steps
                    .push(Step::new("venv", Outcome::Unchanged).note(format!(
                        "{} (Python {}.{})",
                        dir.display(),
                        v.0,
                        v.1
                    )));
                return Ok(Some(dir));
            }
            Some((a, b)) => {
                args.push("--clear".into());
                format!("recreated (it was made by Python {a}.{b})")
            }
            None if dir.exists() => {
                args.push("--clear".into());
                "recreated (it had no usable pyvenv.cfg or interpreter)".to_string()
            }
            None => "created".to_string(),
        };
        args.push(dir.display().to_string());
        let cmd = CommandLine::new(python.executable.clone(), args);
        let step = Step::new("venv", Outcome::Unchanged).note(dir.display().to_string());
        if self.dry() {
            report.steps.push(Step {
                outcome: Outcome::Planned,
                ..step.with_commands(vec![Planned::always(cmd)])
            });
            return Ok(Some(dir));
        }
        run_step("venv", &cmd, None, &[])?;
        report.steps.push(Step {
            outcome: Outcome::Changed(outcome),
            ..step
        });
        Ok(Some(dir))
    }

    fn requirements(
        &self,
        venv: Option<&Path>,
        python: &PythonInfo,
        report: &mut Report,
    ) -> Result<(), InstallError> {
        let (Some(venv), Some((what, pip_args, inputs))) = (venv, self.pip_target()) else {
            report.steps.push(Step::new(
                "requirements",
                Outcome::Skipped("nothing to install".into()),
            ));
            return Ok(());
        };
        let mut hash = Sha1::new();
        hash.update(python.version_string().as_bytes());
        for input in &inputs {
            let bytes = fs_err::read(input).map_err(|source| InstallError::Io {
                path: input.clone(),
                source,
            })?;
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(&bytes);
        }
        let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let marker_path = venv.join(REQUIREMENTS_MARKER);
        let marker = format!("{digest}  {what}\n");
        let mut step = Step::new("requirements", Outcome::Unchanged).note(what.clone());
        let mut outcome = "installed";
        let same = fs_err::read_to_string(&marker_path).ok().as_deref() == Some(marker.as_str());
        if same && !self.options.repair {
            let problem = (!self.dry())
                .then(|| pip_check::venv_problem(venv, self.windows, &self.app_dir, &pip_args))
                .flatten();
            let Some(problem) = problem else {
                let note = match self.dry() {
                    true => "same as last install (pip's check does not run in a dry run)",
                    false => "same as last install; pip finds it complete",
                };
                report.steps.push(step.note(note));
                return Ok(());
            };
            step = step.note(format!("the venv no longer satisfies it: {problem}"));
            outcome = "repaired";
        }
        let mut args: Vec<String> = ["-m", "pip", "install", "--disable-pip-version-check"]
            .map(String::from)
            .into();
        args.push("--no-input".into());
        if self.options.repair {
            args.push("--force-reinstall".into());
            outcome = "reinstalled (--repair)";
        }
        args.extend(pip_args);
        let cmd = CommandLine::new(
            python::venv_python(venv, self.windows)
                .display()
                .to_string(),
            args,
        );
        if self.dry() {
            report.steps.push(Step {
                outcome: Outcome::Planned,
                ..step.with_commands(vec![Planned::always(cmd)])
            });
            return Ok(());
        }
        run_step(
            "requirements",
            &cmd,
            Some(&self.app_dir),
            &self.venv_env(Some(venv)),
        )?;
        write_file(&marker_path, marker.as_bytes())?;
        report.steps.push(Step {
            outcome: Outcome::Changed(outcome.into()),
            ..step
        });
        Ok(())
    }

    /// `PATH` with the venv's executables first, and `VIRTUAL_ENV`, as an activated venv.
    fn venv_env(&self, venv: Option<&Path>) -> Vec<(String, String)> {
        venv.map(|v| pip_check::activated_env(v, self.windows))
            .unwrap_or_default()
    }

    fn post_install(&self, venv: Option<&Path>, report: &mut Report) -> Result<(), InstallError> {
        let commands = &self.manifest.package.post_install;
        if commands.is_empty() {
            report.steps.push(Step::new(
                "post-install",
                Outcome::Skipped("no commands".into()),
            ));
            return Ok(());
        }
        let shell = |c: &str| {
            if self.windows {
                CommandLine::new(
                    "cmd.exe",
                    vec!["/d".into(), "/s".into(), "/c".into(), c.to_string()],
                )
            } else {
                CommandLine::new("sh", vec!["-c".into(), c.to_string()])
            }
        };
        let planned: Vec<Planned> = commands.iter().map(|c| Planned::always(shell(c))).collect();
        if self.dry() {
            report
                .steps
                .push(Step::new("post-install", Outcome::Planned).with_commands(planned));
            return Ok(());
        }
        let env = self.venv_env(venv);
        for p in &planned {
            run_step("post-install", &p.command, Some(&self.app_dir), &env)?;
        }
        report.steps.push(
            Step::new(
                "post-install",
                Outcome::Changed(format!("ran {} command(s)", planned.len())),
            )
            .note("post-install commands run on every install; keep them idempotent"),
        );
        Ok(())
    }

    /// The folder `iiswsgi run` logs into: `[run] log-file`'s folder, else `<app>/logs`.
    fn log_dir(&self, report: &mut Report) -> Result<PathBuf, InstallError> {
        let dir = match &self.manifest.run.log_file {
            Some(f) => {
                let p = Path::new(f);
                let p = if p.is_absolute() || f.contains(':') {
                    p.to_path_buf()
                } else {
                    self.app_dir.join(p)
                };
                p.parent()
                    .map_or_else(|| self.app_dir.clone(), Path::to_path_buf)
            }
            None => self.app_dir.join("logs"),
        };
        let step = Step::new("log folder", Outcome::Unchanged).note(dir.display().to_string());
        if dir.is_dir() {
            report.steps.push(step);
        } else if self.dry() {
            report.steps.push(Step {
                outcome: Outcome::Planned,
                ..step.note("would be created")
            });
        } else {
            fs_err::create_dir_all(&dir).map_err(|source| InstallError::Io {
                path: dir.clone(),
                source,
            })?;
            report.steps.push(Step {
                outcome: Outcome::Changed("created".into()),
                ..step
            });
        }
        Ok(dir)
    }

    /// The app pool whose identity gets the ACLs.
    fn app_pool(&self, runner: &mut dyn Runner) -> Result<(String, Option<String>), InstallError> {
        if let Some(pool) = &self.options.app_pool {
            return Ok((pool.clone(), None));
        }
        if !self.iis.can_read() {
            return Ok((
                "DefaultAppPool".into(),
                Some("app pool assumed to be DefaultAppPool; pass --app-pool to choose".into()),
            ));
        }
        let site = match &self.site {
            Some(s) => s.clone(),
            None => {
                let vdirs = register::read_vdirs(runner, &self.iis.appcmd)?;
                match register::apps_serving(&vdirs, &self.physical, runner::process_env).as_slice()
                {
                    [one] => one.clone(),
                    [] => {
                        return Err(RegisterError::NoSite {
                            dir: self.physical.clone(),
                            name: self.manifest.app.name.to_string(),
                        }
                        .into());
                    }
                    many => {
                        return Err(RegisterError::AmbiguousSite {
                            dir: self.physical.clone(),
                            apps: many.to_vec(),
                        }
                        .into());
                    }
                }
            }
        };
        let apps = register::read_apps(runner, &self.iis.appcmd)?;
        let pool = apps
            .iter()
            .find(|a| register::same_dir(super::appcmd::location_of(&a.name), &site))
            .map(|a| a.app_pool.clone());
        match pool {
            Some(p) => Ok((p, Some(format!("app pool of {site}")))),
            None => Err(RegisterError::NoSite {
                dir: self.physical.clone(),
                name: self.manifest.app.name.to_string(),
            }
            .into()),
        }
    }

    fn grants(
        &self,
        account: &str,
        python: &PythonInfo,
        venv: Option<&Path>,
        log_dir: &Path,
    ) -> Vec<Grant> {
        let mut grants = vec![Grant {
            path: self.physical.clone(),
            account: account.to_string(),
            rights: Rights::read_execute(),
            inherit: true,
            purpose: Purpose::App,
        }];
        for entry in &self.manifest.iis.set_acl {
            if let Some(g) = acl::set_acl_grant(
                entry,
                entry.path.under(&self.app_dir).display().to_string(),
                account,
            ) {
                grants.push(g);
            }
        }
        grants.push(Grant {
            path: log_dir.display().to_string(),
            account: account.to_string(),
            rights: Rights::modify(),
            inherit: true,
            purpose: Purpose::Log,
        });
        if let Some(venv) = venv
            && !venv.starts_with(&self.app_dir)
        {
            grants.push(Grant {
                path: venv.display().to_string(),
                account: account.to_string(),
                rights: Rights::read_execute(),
                inherit: true,
                purpose: Purpose::Python,
            });
        }
        let inside_app = Path::new(&python.base_prefix).starts_with(&self.app_dir);
        if !inside_app {
            grants.push(Grant {
                path: python.base_prefix.clone(),
                account: account.to_string(),
                rights: Rights::read_execute(),
                inherit: true,
                purpose: Purpose::Python,
            });
        }
        grants
    }

    fn acls(
        &self,
        iis: &Iis,
        runner: &mut dyn Runner,
        python: &PythonInfo,
        venv: Option<&Path>,
        log_dir: &Path,
        report: &mut Report,
    ) -> Result<(), InstallError> {
        if iis.appcmd.is_express() {
            report.steps.push(Step::new(
                "ACLs",
                Outcome::Skipped("IIS Express runs as the current user".into()),
            ));
            return Ok(());
        }
        let (pool, pool_note) = self.app_pool(runner)?;
        let account = acl::app_pool_identity(&pool);
        let mut step = Step::new("ACLs", Outcome::Unchanged).note(format!("for {account}"));
        if let Some(n) = pool_note {
            step = step.note(n);
        }
        let mut commands = Vec::new();
        for g in self.grants(&account, python, venv, log_dir) {
            let cmd = g.command(&iis.icacls);
            if iis.dry_run.is_some() {
                commands.push(Planned::when(cmd, g.purpose.to_string()));
                continue;
            }
            let shown = register::run_checked(runner, &g.show_command(&iis.icacls))?;
            if acl::has_grant(&shown.stdout, &g) {
                continue;
            }
            register::run_checked(runner, &cmd)?;
            commands.push(Planned::when(cmd, g.purpose.to_string()));
        }
        step.outcome = match (iis.dry_run, commands.is_empty()) {
            (Some(_), _) => Outcome::Planned,
            (None, true) => Outcome::Unchanged,
            (None, false) => Outcome::Changed("granted".into()),
        };
        report.steps.push(step.with_commands(commands));
        Ok(())
    }

    fn stamp(&self, report: &mut Report) -> Result<(), InstallError> {
        let path = self.app_dir.join(STAMP_FILE);
        if !path.exists() {
            report
                .steps
                .push(Step::new("stamp", Outcome::Unchanged).note("no stamp file"));
        } else if self.dry() {
            report.steps.push(
                Step::new("stamp", Outcome::Planned)
                    .note(format!("would remove {}", path.display())),
            );
        } else {
            fs_err::remove_file(&path).map_err(|source| InstallError::Io {
                path: path.clone(),
                source,
            })?;
            report.steps.push(
                Step::new("stamp", Outcome::Changed("removed".into()))
                    .note(path.display().to_string()),
            );
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically ([`crate::fsutil::write_atomically`]), so IIS never
/// reads half a web.config.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), InstallError> {
    crate::fsutil::write_atomically(path, bytes).map_err(|source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs a local command (python, pip, post-install) to completion, with its output kept for
/// the error message.
fn run_step(
    step: &'static str,
    cmd: &CommandLine,
    cwd: Option<&Path>,
    env: &[(String, String)],
) -> Result<(), InstallError> {
    let mut c = Command::new(&cmd.program);
    c.env_remove("PYTHONHOME");
    match cmd.args.as_slice() {
        // cmd.exe does not parse its command line like the C runtime: hand it the command
        // verbatim between the quotes `/s` strips, so quotes inside it survive.
        #[cfg(windows)]
        [d, s, slash_c, command]
            if cmd.program.eq_ignore_ascii_case("cmd.exe") && slash_c.as_str() == "/c" =>
        {
            use std::os::windows::process::CommandExt;
            c.args([d, s, slash_c]).raw_arg(format!("\"{command}\""));
        }
        args => {
            c.args(args);
        }
    }
    if let Some(dir) = cwd {
        c.current_dir(dir);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().map_err(|source| InstallError::Spawn {
        step,
        command: cmd.display(),
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Err(InstallError::Command {
        step,
        command: cmd.display(),
        status: out.status.to_string(),
        output: python::tail(&text, 20),
    })
}

mod pip_check;
#[cfg(test)]
mod tests;
mod web_config;
