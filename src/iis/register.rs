//! `iiswsgi iis enable|disable`: the `<fastCgi><application>` and the handler mapping of one
//! app, registered idempotently; also the registration half of `iiswsgi install`.
//!
//! Two phases, as everywhere: `plan_*` functions are pure and decide which appcmd commands are
//! needed from what is registered now (`None` when that cannot be known, in a dry run off
//! Windows: then every command is printed, a removal marked "only if already registered");
//! [`apply`] runs them and [`verify`] reads the registration back and checks that it equals
//! the handler's `scriptProcessor` character for character (iis-runtime.md §8.2, §8.3).
//!
//! Keys are compared case-insensitively when looking for an existing registration (iiswsgi
//! 0.3's bug #13), but an entry whose spelling differs from ours is re-registered, because the
//! handler's `scriptProcessor` must match the registration exactly.

use std::path::{Path, PathBuf};

use super::appcmd::{
    self, AppCmd, AppCmdError, CommandLine, FastCgiApplication, HandlerMapping, ListParseError,
    RegisteredApplication, VirtualDirectory,
};
use super::python::{self, PyVenvCfg};
use super::report::{DryRun, Outcome, Planned, Report, Step};
use super::runner::{self, Output, Runner};
use super::webconfig::{self, WebConfigFacts};
use crate::deploy::FastCgiKey;
use crate::manifest::{self, Manifest, ManifestError, Venv};

/// Which IIS the commands address and whether they run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iis {
    /// appcmd (IIS or IIS Express).
    pub appcmd: AppCmd,
    /// icacls.
    pub icacls: String,
    /// The Windows folder (`C:\Windows`), for the FastCGI process's PATH.
    pub windir: String,
    /// Set when commands are printed, not run.
    pub dry_run: Option<DryRun>,
}

impl Iis {
    /// The IIS of this machine: on Windows the real paths (from `%windir%`, `%ProgramFiles%`,
    /// `%USERPROFILE%`); elsewhere the `%VAR%` spellings cmd.exe expands, and always a dry run.
    /// `express` selects IIS Express, with its applicationhost.config (default: the user's).
    pub fn detect(express: Option<Option<String>>, dry_run_requested: bool) -> Self {
        let dry_run = DryRun::for_host(dry_run_requested);
        let resolve = |s: &str| {
            if cfg!(windows) {
                runner::expand_env(s, runner::process_env)
            } else {
                s.to_string()
            }
        };
        let appcmd = match express {
            None => AppCmd::iis(resolve(appcmd::IIS_APPCMD)),
            Some(config) => AppCmd::express(
                resolve(appcmd::EXPRESS_APPCMD),
                Some(config.unwrap_or_else(|| resolve(appcmd::EXPRESS_APPHOST_CONFIG))),
            ),
        };
        let windir = if cfg!(windows) {
            runner::process_env("windir")
                .or_else(|| runner::process_env("SystemRoot"))
                .unwrap_or_else(|| r"C:\Windows".into())
        } else {
            r"C:\Windows".into()
        };
        Self {
            appcmd,
            icacls: resolve(super::acl::ICACLS),
            windir,
            dry_run,
        }
    }

    /// Whether appcmd can be asked what is registered (on Windows, even in a dry run).
    pub fn can_read(&self) -> bool {
        self.dry_run != Some(DryRun::NotWindows)
    }
}

/// Why registering failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A value appcmd cannot carry.
    #[error(transparent)]
    Value(#[from] AppCmdError),
    /// A command could not be started.
    #[error("cannot run {command}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A command failed.
    #[error("{command}\n  failed with exit code {code}: {message}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit code.
        code: String,
        /// The end of its output.
        message: String,
    },
    /// appcmd's XML could not be read.
    #[error("cannot read the output of {command}")]
    List {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: ListParseError,
    },
    /// After registering, the entry read back is not the one wanted.
    #[error(
        "after registering, IIS does not list a FastCGI application equal to `{script_processor}`{}",
        found_list(.found)
    )]
    NotRegistered {
        /// The wanted `fullPath|arguments`.
        script_processor: String,
        /// What is registered for this app instead (and why it differs).
        found: Vec<String>,
    },
    /// More than one IIS application serves the folder.
    #[error(
        "{} is served by several IIS applications ({}); pass --site to choose one",
        .dir,
        .apps.join(", ")
    )]
    AmbiguousSite {
        /// The folder.
        dir: String,
        /// The applications.
        apps: Vec<String>,
    },
    /// No IIS application serves the folder.
    #[error(
        "no IIS application serves {dir}; create one first (IIS Manager, or \
         `appcmd add app /site.name:\"Default Web Site\" /path:/{name} /physicalPath:\"{dir}\"`), \
         or pass --site"
    )]
    NoSite {
        /// The folder.
        dir: String,
        /// The app name (for the example).
        name: String,
    },
}

fn found_list(found: &[String]) -> String {
    if found.is_empty() {
        String::new()
    } else {
        format!("; found: {}", found.join("; "))
    }
}

/// Runs one command, turning a non-zero exit into [`RegisterError::Failed`].
pub fn run_checked(runner: &mut dyn Runner, cmd: &CommandLine) -> Result<Output, RegisterError> {
    let out = runner.run(cmd).map_err(|source| RegisterError::Spawn {
        command: cmd.display(),
        source,
    })?;
    if out.success() {
        Ok(out)
    } else {
        Err(RegisterError::Failed {
            command: cmd.display(),
            code: out
                .code
                .map_or_else(|| "none (killed)".into(), |c| c.to_string()),
            message: out.message(),
        })
    }
}

/// `list config -section:system.webServer/fastCgi /xml`, parsed.
pub fn read_registered(
    runner: &mut dyn Runner,
    appcmd: &AppCmd,
) -> Result<Vec<RegisteredApplication>, RegisterError> {
    read_list(runner, appcmd.list_fastcgi()?, appcmd::parse_fastcgi_list)
}

/// `list vdir /xml`, parsed.
pub fn read_vdirs(
    runner: &mut dyn Runner,
    appcmd: &AppCmd,
) -> Result<Vec<VirtualDirectory>, RegisterError> {
    read_list(runner, appcmd.list_vdirs()?, appcmd::parse_vdirs)
}

/// `list app /xml`, parsed.
pub fn read_apps(
    runner: &mut dyn Runner,
    appcmd: &AppCmd,
) -> Result<Vec<appcmd::IisApp>, RegisterError> {
    read_list(runner, appcmd.list_apps()?, appcmd::parse_apps)
}

/// Runs an appcmd `list ... /xml` command and parses its output with `parse`.
fn read_list<T>(
    runner: &mut dyn Runner,
    cmd: CommandLine,
    parse: fn(&str) -> Result<T, ListParseError>,
) -> Result<T, RegisterError> {
    let out = run_checked(runner, &cmd)?;
    parse(&out.stdout).map_err(|source| RegisterError::List {
        command: cmd.display(),
        source,
    })
}

/// Whether two Windows paths name the same folder: case-insensitive, either separator,
/// trailing separators ignored ([`crate::fsutil::same_windows_path`], the per-request check's
/// comparison).
pub fn same_dir(a: &str, b: &str) -> bool {
    crate::fsutil::same_windows_path(a.as_bytes(), b.as_bytes())
}

/// The IIS applications whose own folder (vdir `/`) is `dir`; `%VAR%` in physical paths are
/// expanded with `lookup`.
pub fn apps_serving(
    vdirs: &[VirtualDirectory],
    dir: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    vdirs
        .iter()
        .filter(|v| v.path == "/")
        .filter(|v| same_dir(&runner::expand_env(&v.physical_path, &lookup), dir))
        .map(|v| appcmd::location_of(&v.app).to_string())
        .collect()
}

/// What is registered for the wanted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FastCgiState {
    /// Unknown (dry run off Windows).
    Unknown,
    /// Not registered.
    Absent,
    /// Registered exactly as wanted.
    Equal,
    /// Registered, but differently; the reasons.
    Changed(Vec<String>),
}

/// The commands that make the registration equal `want`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastCgiPlan {
    /// What was found.
    pub state: FastCgiState,
    /// What to run, in order.
    pub commands: Vec<Planned>,
}

/// The note on a removal whose need is unknown.
pub const ONLY_IF_REGISTERED: &str =
    "only if already registered (appcmd reports an error when there is nothing to remove)";

/// Plans the registration of `want` given what is `registered` (`None`: unknown).
pub fn plan_fastcgi(
    appcmd: &AppCmd,
    want: &FastCgiApplication,
    registered: Option<&[RegisteredApplication]>,
) -> Result<FastCgiPlan, AppCmdError> {
    let mut add = vec![Planned::always(appcmd.add_fastcgi(want)?)];
    for (name, value) in &want.environment {
        add.push(Planned::always(appcmd.add_fastcgi_environment(
            &want.full_path,
            &want.arguments,
            name,
            value,
        )?));
    }
    let Some(registered) = registered else {
        let mut commands = vec![Planned::when(
            appcmd.remove_fastcgi(&want.full_path, &want.arguments)?,
            ONLY_IF_REGISTERED,
        )];
        commands.extend(add);
        return Ok(FastCgiPlan {
            state: FastCgiState::Unknown,
            commands,
        });
    };
    let same: Vec<&RegisteredApplication> =
        registered.iter().filter(|r| want.same_key(r)).collect();
    if same.is_empty() {
        return Ok(FastCgiPlan {
            state: FastCgiState::Absent,
            commands: add,
        });
    }
    let mut reasons = Vec::new();
    if same.len() > 1 {
        reasons.push(format!(
            "registered {} times under spellings that differ only in case",
            same.len()
        ));
    }
    for r in &same {
        if r.full_path != want.full_path || r.arguments != want.arguments {
            reasons.push(format!(
                "registered as `{}`, which differs in case from the handler's scriptProcessor",
                r.script_processor()
            ));
        }
        reasons.extend(want.differences(r).iter().map(ToString::to_string));
    }
    if reasons.is_empty() {
        return Ok(FastCgiPlan {
            state: FastCgiState::Equal,
            commands: Vec::new(),
        });
    }
    let mut commands = Vec::new();
    for r in &same {
        commands.push(Planned::always(
            appcmd.remove_fastcgi(&r.full_path, &r.arguments)?,
        ));
    }
    commands.extend(add);
    Ok(FastCgiPlan {
        state: FastCgiState::Changed(reasons),
        commands,
    })
}

/// Plans removing every registration with `full_path`/`arguments` (any case).
pub fn plan_fastcgi_removal(
    appcmd: &AppCmd,
    full_path: &str,
    arguments: &str,
    registered: Option<&[RegisteredApplication]>,
) -> Result<FastCgiPlan, AppCmdError> {
    let Some(registered) = registered else {
        return Ok(FastCgiPlan {
            state: FastCgiState::Unknown,
            commands: vec![Planned::when(
                appcmd.remove_fastcgi(full_path, arguments)?,
                ONLY_IF_REGISTERED,
            )],
        });
    };
    let mut commands = Vec::new();
    for r in registered.iter().filter(|r| {
        r.full_path.eq_ignore_ascii_case(full_path) && r.arguments.eq_ignore_ascii_case(arguments)
    }) {
        commands.push(Planned::always(
            appcmd.remove_fastcgi(&r.full_path, &r.arguments)?,
        ));
    }
    let state = if commands.is_empty() {
        FastCgiState::Absent
    } else {
        FastCgiState::Changed(vec![])
    };
    Ok(FastCgiPlan { state, commands })
}

/// Plans the handler mapping in the web.config of `location`, given the app folder's
/// web.config as it is (`None`: no web.config).
pub fn plan_handler(
    appcmd: &AppCmd,
    location: &str,
    want: &HandlerMapping,
    current: Option<&WebConfigFacts>,
) -> Result<(Outcome, Vec<Planned>), AppCmdError> {
    let add = Planned::always(appcmd.add_handler(location, want)?);
    let Some(existing) = current.and_then(|f| f.handler(&want.name)) else {
        return Ok((Outcome::Changed("added".into()), vec![add]));
    };
    let equal = existing.is_fastcgi()
        && existing.script_processor() == want.script_processor
        && existing.attr("path") == Some(want.path.as_str())
        && existing
            .attr("verb")
            .is_some_and(|v| v.eq_ignore_ascii_case(&want.verb))
        && existing.response_buffer_limit() == Some(u64::from(want.response_buffer_limit))
        && existing
            .attr("resourceType")
            .unwrap_or("Unspecified")
            .eq_ignore_ascii_case(&want.resource_type)
        && existing
            .attr("requireAccess")
            .unwrap_or("Script")
            .eq_ignore_ascii_case(&want.require_access);
    if equal {
        return Ok((Outcome::Unchanged, Vec::new()));
    }
    Ok((
        Outcome::Changed("replaced".into()),
        vec![
            Planned::always(appcmd.remove_handler(location, existing.name())?),
            add,
        ],
    ))
}

/// Runs planned commands in order, stopping at the first failure.
pub fn apply(runner: &mut dyn Runner, commands: &[Planned]) -> Result<(), RegisterError> {
    for p in commands {
        run_checked(runner, &p.command)?;
    }
    Ok(())
}

/// Reads the registration back: exactly one entry whose `fullPath|arguments` equals `want`'s
/// character for character, with every wanted value.
pub fn verify(
    runner: &mut dyn Runner,
    appcmd: &AppCmd,
    want: &FastCgiApplication,
) -> Result<(), RegisterError> {
    let registered = read_registered(runner, appcmd)?;
    let exact = registered
        .iter()
        .find(|r| r.full_path == want.full_path && r.arguments == want.arguments);
    match exact {
        Some(r) if want.differences(r).is_empty() => Ok(()),
        _ => Err(RegisterError::NotRegistered {
            script_processor: want.script_processor(),
            found: registered
                .iter()
                .filter(|r| want.same_key(r))
                .map(|r| {
                    let diffs: Vec<String> = want
                        .differences(r)
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    format!("`{}` ({})", r.script_processor(), diffs.join(", "))
                })
                .collect(),
        }),
    }
}

/// The physical path as registered: trailing separators dropped (a quoted path ending in `\`
/// would escape its closing quote), except for a drive root.
pub fn physical_path_string(path: &str) -> String {
    let trimmed = path.trim_end_matches(['\\', '/']);
    if trimmed.is_empty() || trimmed.ends_with(':') {
        path.to_string()
    } else {
        trimmed.to_string()
    }
}

/// The FastCGI key of an app: this binary and the app folder.
pub fn key_for(iiswsgi_exe: &str, physical_path: &str) -> Result<FastCgiKey, AppCmdError> {
    appcmd::check_value("the iiswsgi executable path", iiswsgi_exe)?;
    appcmd::check_value("the app folder", physical_path)?;
    if iiswsgi_exe.contains('"') {
        return Err(AppCmdError::Control {
            what: "the iiswsgi executable path (a `\"`)".into(),
            value: iiswsgi_exe.into(),
        });
    }
    Ok(FastCgiKey::for_app(
        iiswsgi_exe,
        &physical_path_string(physical_path),
    ))
}

/// The `PATH` the FastCGI process gets, so Windows finds `python3XY.dll` in the Python
/// installation (wsgi-embedding.md §1.7, option 1): that folder, then the system folders.
/// `%PATH%` is not referenced: IIS does not expand it in `<environmentVariables>` (unverified),
/// and cmd.exe would expand it when the printed command is pasted.
pub fn fastcgi_path_variable(python_home: &str, windir: &str) -> String {
    format!(r"{python_home};{windir}\System32;{windir};{windir}\System32\Wbem")
}

/// The desired `<fastCgi><application>` for `manifest` at `physical_path` with `key`.
pub fn fastcgi_application(
    manifest: &Manifest,
    key: &FastCgiKey,
    physical_path: &Path,
    python_home: Option<&str>,
    windir: &str,
) -> FastCgiApplication {
    let monitor = manifest
        .iis
        .fastcgi
        .monitor_changes_to
        .as_ref()
        .map(|rel| rel.under(physical_path).display().to_string());
    let environment = python_home
        .map(|home| vec![("PATH".to_string(), fastcgi_path_variable(home, windir))])
        .unwrap_or_default();
    FastCgiApplication::new(
        &key.full_path,
        &key.arguments,
        &manifest.iis.fastcgi,
        monitor,
        environment,
    )
}

/// The venv folder of a manifest whose app lives in `app_dir`.
pub fn venv_dir(manifest: &Manifest, app_dir: &Path) -> Option<PathBuf> {
    manifest.wsgi.venv.as_ref().map(|v| match v {
        Venv::InApp(rel) => rel.under(app_dir),
        Venv::Absolute(p) => PathBuf::from(p),
    })
}

/// The `home` of the app's venv, from its `pyvenv.cfg`, if there is one.
pub fn venv_home(manifest: &Manifest, app_dir: &Path) -> Option<(PathBuf, PyVenvCfg)> {
    let dir = venv_dir(manifest, app_dir)?;
    let text = fs_err::read_to_string(dir.join("pyvenv.cfg")).ok()?;
    Some((dir, PyVenvCfg::parse(&text)))
}

/// The venv `iiswsgi_exe` itself sits in (pip-installed into `<venv>\Scripts\`), with its
/// `pyvenv.cfg`: `run` serves that venv when the manifest names none, so its Python must load.
pub fn exe_venv_home(iiswsgi_exe: &str) -> Option<(PathBuf, PyVenvCfg)> {
    let dir = crate::venv::venv_of_executable(Path::new(iiswsgi_exe))?;
    let text = fs_err::read_to_string(dir.join("pyvenv.cfg")).ok()?;
    Some((dir, PyVenvCfg::parse(&text)))
}

/// What `iiswsgi iis enable|disable` was asked, paths resolved ([`super::request::IisRequest`]).
#[derive(Debug, Clone)]
pub struct IisOptions {
    /// The app folder (absolute), holding iiswsgi.toml.
    pub app_dir: PathBuf,
    /// The folder as IIS knows it, when it differs from `app_dir` (checking a copy).
    pub physical_path: Option<String>,
    /// The executable IIS starts (`fullPath`).
    pub iiswsgi_exe: String,
    /// `Site/app` for the handler mapping.
    pub site: Option<String>,
    /// An interpreter to ask for the Python installation (when the app has no venv).
    pub python: Option<PathBuf>,
}

/// Errors of `iiswsgi iis enable|disable`.
#[derive(Debug, thiserror::Error)]
pub enum IisError {
    /// The manifest cannot be used.
    #[error("cannot use the manifest")]
    Manifest(#[from] ManifestError),
    /// Registering failed.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// The interpreter could not be asked.
    #[error(transparent)]
    Probe(#[from] python::ProbeError),
    /// The app folder's web.config is unreadable.
    #[error("{}", .path.display())]
    WebConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: webconfig::WebConfigError,
    },
}

/// The app folder's manifest.
pub fn load_manifest(app_dir: &Path) -> Result<Manifest, ManifestError> {
    Manifest::load(&app_dir.join(manifest::FILE_NAME))
}

/// The app folder's web.config facts (`Ok(None)` when there is none).
pub fn read_web_config(app_dir: &Path) -> Result<Option<WebConfigFacts>, IisError> {
    let path = app_dir.join("web.config");
    match fs_err::read_to_string(&path) {
        Ok(text) => webconfig::parse(&text)
            .map(Some)
            .map_err(|source| IisError::WebConfig { path, source }),
        Err(_) if !path.exists() => Ok(None),
        Err(e) => Err(IisError::WebConfig {
            path,
            source: webconfig::WebConfigError::Xml {
                line: 0,
                source: quick_xml::Error::Io(std::sync::Arc::new(e)),
            },
        }),
    }
}

/// The `Site/app` location for the handler: `--site`, else the IIS application serving the
/// folder (Windows), else the manifest's `application-path` (a dry run off Windows, noted).
fn resolve_location(
    iis: &Iis,
    runner: &mut dyn Runner,
    options: &IisOptions,
    manifest: &Manifest,
    physical: &str,
) -> Result<(String, Option<String>), RegisterError> {
    if let Some(site) = &options.site {
        return Ok((site.clone(), None));
    }
    if !iis.can_read() {
        return Ok((
            manifest.iis.application_path.clone(),
            Some("location assumed from [iis] application-path; pass --site to choose".into()),
        ));
    }
    let vdirs = read_vdirs(runner, &iis.appcmd)?;
    let apps = apps_serving(&vdirs, physical, runner::process_env);
    match apps.as_slice() {
        [one] => Ok((one.clone(), None)),
        [] => Err(RegisterError::NoSite {
            dir: physical.to_string(),
            name: manifest.app.name.to_string(),
        }),
        _ => Err(RegisterError::AmbiguousSite {
            dir: physical.to_string(),
            apps,
        }),
    }
}

/// Reads what is registered when possible; in a requested dry run a failure (not elevated)
/// only means "unknown".
pub fn registered_now(
    iis: &Iis,
    runner: &mut dyn Runner,
) -> Result<Option<Vec<RegisteredApplication>>, RegisterError> {
    if !iis.can_read() {
        return Ok(None);
    }
    match read_registered(runner, &iis.appcmd) {
        Ok(r) => Ok(Some(r)),
        Err(_) if iis.dry_run.is_some() => Ok(None),
        Err(e) => Err(e),
    }
}

/// What `iis enable` and `iis disable` act on: the app's manifest, its physical path as IIS
/// will see it, the FastCGI key that names it, and the report they fill in.
struct Target {
    manifest: Manifest,
    /// `--physical-path`, else the app folder, trailing separators trimmed.
    physical: String,
    key: FastCgiKey,
    report: Report,
}

/// Resolves the [`Target`] of `iis <verb>` from the options.
fn target(options: &IisOptions, iis: &Iis, verb: &str) -> Result<Target, IisError> {
    let manifest = load_manifest(&options.app_dir)?;
    let given = options
        .physical_path
        .clone()
        .unwrap_or_else(|| options.app_dir.display().to_string());
    let key = key_for(&options.iiswsgi_exe, &given).map_err(RegisterError::from)?;
    let physical = physical_path_string(&given);
    let report = Report {
        title: format!("iiswsgi iis {verb}: {} in {physical}", manifest.app.name),
        dry_run: iis.dry_run,
        ..Report::default()
    };
    Ok(Target {
        manifest,
        physical,
        key,
        report,
    })
}

/// `iiswsgi iis enable`: registers the app's FastCGI application (with PATH for the Python
/// DLL) and its handler mapping; re-running changes nothing.
pub fn enable(
    options: &IisOptions,
    iis: &Iis,
    runner: &mut dyn Runner,
) -> Result<Report, IisError> {
    let Target {
        manifest,
        physical,
        key,
        mut report,
    } = target(options, iis, "enable")?;

    let venv =
        venv_home(&manifest, &options.app_dir).or_else(|| exe_venv_home(&options.iiswsgi_exe));
    let (home, home_note) = match venv {
        Some((dir, cfg)) if cfg.home.is_some() => (
            cfg.home.clone(),
            format!(
                "Python DLL folder from {}",
                dir.join("pyvenv.cfg").display()
            ),
        ),
        _ => match &options.python {
            Some(py) => {
                let info = python::probe(py, &[])?;
                (
                    Some(info.base_prefix.clone()),
                    format!("Python DLL folder from {}", py.display()),
                )
            }
            None => (
                None,
                "no venv and no --python: PATH is not set, so python3XY.dll must sit next to \
                 iiswsgi.exe or on the system PATH"
                    .into(),
            ),
        },
    };
    let want = fastcgi_application(
        &manifest,
        &key,
        Path::new(&physical),
        home.as_deref(),
        &iis.windir,
    );
    let registered = registered_now(iis, runner)?;
    let plan =
        plan_fastcgi(&iis.appcmd, &want, registered.as_deref()).map_err(RegisterError::from)?;
    report
        .steps
        .push(fastcgi_step(iis, runner, &want, plan, home_note)?);

    let (location, location_note) = resolve_location(iis, runner, options, &manifest, &physical)?;
    let handler = HandlerMapping::new(&manifest.iis.handler, key.script_processor());
    let facts = read_web_config(&options.app_dir)?;
    let (outcome, commands) = plan_handler(&iis.appcmd, &location, &handler, facts.as_ref())
        .map_err(RegisterError::from)?;
    let mut step =
        Step::new("handler mapping", outcome.clone()).note(format!("web.config of {location}"));
    if let Some(n) = location_note {
        step = step.note(n);
    }
    if facts.as_ref().is_some_and(|f| f.denies_all_verbs) {
        step = step.note(
            "web.config is still the package's placeholder, which denies every verb: run `iiswsgi install`",
        );
    }
    if iis.dry_run.is_some() && !commands.is_empty() {
        step.outcome = Outcome::Planned;
    } else {
        apply(runner, &commands)?;
    }
    report.steps.push(step.with_commands(commands));
    Ok(report)
}

/// Turns a FastCGI plan into a step: runs it (and verifies) unless this is a dry run.
pub fn fastcgi_step(
    iis: &Iis,
    runner: &mut dyn Runner,
    want: &FastCgiApplication,
    plan: FastCgiPlan,
    note: String,
) -> Result<Step, RegisterError> {
    let mut step = Step::new("FastCGI application", Outcome::Unchanged)
        .note(format!("scriptProcessor {}", want.script_processor()))
        .note(note);
    match &plan.state {
        FastCgiState::Changed(reasons) => {
            for r in reasons {
                step = step.note(format!("re-registering: {r}"));
            }
        }
        FastCgiState::Unknown => {
            step = step.note("current registration unknown (appcmd not available here)");
        }
        _ => {}
    }
    step.outcome = match (&plan.state, iis.dry_run) {
        (FastCgiState::Equal, _) => Outcome::Unchanged,
        (_, Some(_)) => Outcome::Planned,
        (FastCgiState::Absent, None) => Outcome::Changed("registered".into()),
        (_, None) => Outcome::Changed("re-registered".into()),
    };
    if iis.dry_run.is_none() {
        apply(runner, &plan.commands)?;
        verify(runner, &iis.appcmd, want)?;
    }
    Ok(step.with_commands(plan.commands))
}

/// `iiswsgi iis disable`: removes the app's FastCGI application and handler mapping.
pub fn disable(
    options: &IisOptions,
    iis: &Iis,
    runner: &mut dyn Runner,
) -> Result<Report, IisError> {
    let Target {
        manifest,
        physical,
        key,
        mut report,
    } = target(options, iis, "disable")?;
    let registered = registered_now(iis, runner)?;
    let plan = plan_fastcgi_removal(
        &iis.appcmd,
        &key.full_path,
        &key.arguments,
        registered.as_deref(),
    )
    .map_err(RegisterError::from)?;
    let outcome = match (&plan.state, iis.dry_run) {
        (FastCgiState::Absent, _) => Outcome::Unchanged,
        (_, Some(_)) => Outcome::Planned,
        (_, None) => Outcome::Changed("removed".into()),
    };
    if iis.dry_run.is_none() {
        apply(runner, &plan.commands)?;
    }
    report.steps.push(
        Step::new("FastCGI application", outcome)
            .note(format!("scriptProcessor {}", key.script_processor()))
            .with_commands(plan.commands),
    );

    let (location, location_note) = resolve_location(iis, runner, options, &manifest, &physical)?;
    let name = &manifest.iis.handler.name;
    let facts = read_web_config(&options.app_dir)?;
    let present = facts.as_ref().is_some_and(|f| f.handler(name).is_some());
    let mut step =
        Step::new("handler mapping", Outcome::Unchanged).note(format!("web.config of {location}"));
    if let Some(n) = location_note {
        step = step.note(n);
    }
    if present {
        let planned = Planned::always(
            iis.appcmd
                .remove_handler(&location, name)
                .map_err(RegisterError::from)?,
        );
        if iis.dry_run.is_some() {
            step.outcome = Outcome::Planned;
        } else {
            apply(runner, std::slice::from_ref(&planned))?;
            step.outcome = Outcome::Changed("removed".into());
        }
        step.commands.push(planned);
    } else {
        step = step.note(format!("the app's web.config has no handler named {name}"));
    }
    report.steps.push(step);
    Ok(report)
}

#[cfg(test)]
pub(crate) mod tests;
