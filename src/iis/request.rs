//! The wing's door for the binary: what the command line asks, before it means anything on
//! this machine.
//!
//! Each `*Request` holds the flags as given: an APP_DIR that may be relative, no executable
//! yet, IIS or IIS Express. Its `resolve()` makes the plain options the entry points take
//! (absolute paths, this executable, `APPL_PHYSICAL_PATH`, which [`Iis`] and whether commands
//! run), and [`iis()`] (enable or disable), [`install()`] and [`doctor()`] resolve and run in
//! one call, so `src/cli/` only declares flags. Tests call the entry points ([`super::install::install`],
//! …) with options they build themselves.
//!
//! Resolving is the one place the wing reads the working directory, the environment's
//! `APPL_PHYSICAL_PATH` and this process's own path.

use std::path::{Path, PathBuf};

use super::doctor::{self, DoctorError, DoctorOptions, DoctorReport};
use super::install::{self, InstallFailure, InstallOptions};
use super::register::{self, Iis, IisError, IisOptions};
use super::report::Report;
use super::runner::Runner;

/// Why a request could not be resolved. The message is whole: the I/O error is part of it.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A path given on the command line has no absolute form.
    #[error("{}: {error}", .path.display())]
    Absolute {
        /// The path as given.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// This executable's path is unknown (and `--iiswsgi-exe` was not given).
    #[error("cannot find this executable's path: {0}")]
    ThisExe(std::io::Error),
}

/// Why a command stopped: its request did not resolve, or the command itself failed (`E`, the
/// entry point's error, shown as it is).
#[derive(Debug, thiserror::Error)]
pub enum RequestError<E> {
    /// The request did not resolve; nothing was done.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The command failed.
    #[error(transparent)]
    Failed(E),
}

/// Which IIS a command addresses.
#[derive(Debug, Clone, Default)]
pub struct WhichIis {
    /// `--express`: IIS Express instead of IIS.
    pub express: bool,
    /// `--apphostconfig`: IIS Express's applicationhost.config (default: the user's).
    pub apphostconfig: Option<String>,
}

impl WhichIis {
    /// The [`Iis`] of this machine (see [`Iis::detect`]).
    fn detect(self, dry_run: bool) -> Iis {
        Iis::detect(self.express.then_some(self.apphostconfig), dry_run)
    }
}

/// `iiswsgi iis enable` or `disable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Register the FastCGI application and the handler mapping.
    Enable,
    /// Remove them.
    Disable,
}

/// `iiswsgi iis enable|disable`, as given.
#[derive(Debug, Clone)]
pub struct IisRequest {
    /// The app folder (may be relative).
    pub app_dir: PathBuf,
    /// `--physical-path`: the folder as IIS sees it.
    pub physical_path: Option<String>,
    /// `--iiswsgi-exe` (default: this executable).
    pub iiswsgi_exe: Option<String>,
    /// `--site`: `Site/app`.
    pub site: Option<String>,
    /// `--python`: an interpreter whose installation goes on PATH.
    pub python: Option<PathBuf>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--express`, `--apphostconfig`.
    pub iis: WhichIis,
}

impl IisRequest {
    /// The options [`register::enable`] and [`register::disable`] take, and the IIS to address.
    pub fn resolve(self) -> Result<(IisOptions, Iis), ResolveError> {
        let options = IisOptions {
            app_dir: absolute(&self.app_dir)?,
            physical_path: self.physical_path,
            iiswsgi_exe: this_exe(self.iiswsgi_exe)?,
            site: self.site,
            python: self.python,
        };
        Ok((options, self.iis.detect(self.dry_run)))
    }
}

/// `iiswsgi iis enable|disable`: resolves `request` and runs `action`.
pub fn iis(
    action: Action,
    request: IisRequest,
    runner: &mut dyn Runner,
) -> Result<Report, RequestError<IisError>> {
    let (options, iis) = request.resolve()?;
    match action {
        Action::Enable => register::enable(&options, &iis, runner),
        Action::Disable => register::disable(&options, &iis, runner),
    }
    .map_err(RequestError::Failed)
}

/// `iiswsgi install`, as given.
#[derive(Debug, Clone, Default)]
pub struct InstallRequest {
    /// The app folder (may be relative), when given.
    pub app_dir: Option<PathBuf>,
    /// `--app-name`.
    pub app_name: Option<String>,
    /// `--python`: the interpreter to make the venv with.
    pub python: Option<PathBuf>,
    /// `--iiswsgi-exe` (default: this executable).
    pub iiswsgi_exe: Option<String>,
    /// `--site`: `Site/app`.
    pub site: Option<String>,
    /// `--app-pool`.
    pub app_pool: Option<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--repair`.
    pub repair: bool,
    /// `--express`, `--apphostconfig`.
    pub iis: WhichIis,
}

impl InstallRequest {
    /// The options [`install::install`] takes (with `APPL_PHYSICAL_PATH` read from the
    /// environment), and the IIS to address.
    pub fn resolve(self) -> Result<(InstallOptions, Iis), ResolveError> {
        let options = InstallOptions {
            app_dir: self.app_dir.as_deref().map(absolute).transpose()?,
            appl_physical_path: std::env::var_os("APPL_PHYSICAL_PATH")
                .filter(|v| !v.is_empty())
                .map(|v| absolute(Path::new(&v)))
                .transpose()?,
            app_name: self.app_name,
            python: self.python,
            iiswsgi_exe: this_exe(self.iiswsgi_exe)?,
            site: self.site,
            app_pool: self.app_pool,
            dry_run: self.dry_run,
            repair: self.repair,
        };
        Ok((options, self.iis.detect(self.dry_run)))
    }
}

/// `iiswsgi install`: resolves `request` and installs.
pub fn install(
    request: InstallRequest,
    runner: &mut dyn Runner,
) -> Result<Report, RequestError<Box<InstallFailure>>> {
    let (options, iis) = request.resolve()?;
    install::install(&options, &iis, runner).map_err(RequestError::Failed)
}

/// `iiswsgi doctor`, as given.
#[derive(Debug, Clone)]
pub struct DoctorRequest {
    /// The app folder (may be relative).
    pub app_dir: PathBuf,
    /// `--iiswsgi-exe` (default: this executable).
    pub iiswsgi_exe: Option<String>,
    /// `--physical-path`: the folder as IIS sees it.
    pub physical_path: Option<String>,
    /// `--app-pool`.
    pub app_pool: Option<String>,
    /// `--express`, `--apphostconfig`.
    pub iis: WhichIis,
}

impl DoctorRequest {
    /// The options [`doctor::doctor`] takes, and the IIS to ask (never told to change
    /// anything: doctor only reads).
    pub fn resolve(self) -> Result<(DoctorOptions, Iis), ResolveError> {
        let options = DoctorOptions {
            app_dir: absolute(&self.app_dir)?,
            physical_path: self.physical_path,
            iiswsgi_exe: this_exe(self.iiswsgi_exe)?,
            app_pool: self.app_pool,
        };
        Ok((options, self.iis.detect(false)))
    }
}

/// `iiswsgi doctor`: resolves `request` and runs every check.
pub fn doctor(
    request: DoctorRequest,
    runner: &mut dyn Runner,
) -> Result<DoctorReport, RequestError<DoctorError>> {
    let (options, iis) = request.resolve()?;
    doctor::doctor(&options, &iis, runner).map_err(RequestError::Failed)
}

/// The absolute form of a path given on the command line.
fn absolute(path: &Path) -> Result<PathBuf, ResolveError> {
    std::path::absolute(path).map_err(|error| ResolveError::Absolute {
        path: path.to_path_buf(),
        error,
    })
}

/// The executable IIS should start: `given`, else this one.
fn this_exe(given: Option<String>) -> Result<String, ResolveError> {
    match given {
        Some(g) => Ok(g),
        None => std::env::current_exe()
            .map(|p| p.display().to_string())
            .map_err(ResolveError::ThisExe),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_app_dir_becomes_absolute_and_a_given_exe_is_kept() {
        let (options, iis) = IisRequest {
            app_dir: PathBuf::from("shop"),
            physical_path: None,
            iiswsgi_exe: Some(r"C:\iiswsgi\iiswsgi.exe".into()),
            site: None,
            python: None,
            dry_run: true,
            iis: WhichIis::default(),
        }
        .resolve()
        .expect("resolves");
        assert!(options.app_dir.is_absolute());
        assert!(options.app_dir.ends_with("shop"));
        assert_eq!(options.iiswsgi_exe, r"C:\iiswsgi\iiswsgi.exe");
        assert!(iis.dry_run.is_some());
    }

    #[test]
    fn missing_exe_is_this_executable() {
        let (options, _) = DoctorRequest {
            app_dir: PathBuf::from("."),
            iiswsgi_exe: None,
            physical_path: None,
            app_pool: None,
            iis: WhichIis::default(),
        }
        .resolve()
        .expect("resolves");
        let me = std::env::current_exe().expect("exe");
        assert_eq!(options.iiswsgi_exe, me.display().to_string());
    }

    #[test]
    fn install_keeps_dry_run_in_options_and_iis() {
        let (options, iis) = InstallRequest {
            dry_run: true,
            iiswsgi_exe: Some("iiswsgi".into()),
            ..InstallRequest::default()
        }
        .resolve()
        .expect("resolves");
        assert!(options.dry_run);
        assert!(options.app_dir.is_none());
        assert!(iis.dry_run.is_some());
    }

    #[test]
    fn resolve_errors_say_what_they_say_today() {
        let e = ResolveError::ThisExe(std::io::Error::other("gone"));
        assert_eq!(e.to_string(), "cannot find this executable's path: gone");
        assert!(std::error::Error::source(&e).is_none());
        let e = ResolveError::Absolute {
            path: PathBuf::from(""),
            error: std::io::Error::other("empty"),
        };
        assert_eq!(e.to_string(), ": empty");
    }
}
