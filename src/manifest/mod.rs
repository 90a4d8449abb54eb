//! The `iiswsgi.toml` manifest: what one Python web app needs to be packaged for and served by
//! IIS, validated, with every default applied.
//!
//! Three layers, as cargo and ripgrep split raw from resolved input:
//! - [`raw`] mirrors the file key for key (serde, spans, the JSON schema);
//! - `load` turns text into raw types and reports syntax errors, type errors and unknown keys;
//! - `validate` turns raw types into the [`Manifest`] below, collecting *every* problem with
//!   its `file:line:col` and a hint, and applying defaults.
//!
//! Everything downstream (`render`, `msdeploy`, `webpi`, `check`, `iis`, `run`) reads
//! [`Manifest`] and never the raw layer, so a value that reaches them is already valid.
//! [`Manifest::parse`] is pure; [`Manifest::load`] reads the file and also checks that the
//! files the manifest names exist.
//!
//! What a user sees for a bad manifest (from `iiswsgi check`):
//!
//! ```text
//! error: iiswsgi.toml:2:8: `app.name` must contain only ASCII letters, digits and `_`, found ` ` in "My App"
//!   |
//! 2 | name = "My App"
//!   |        ^^^^^^^^
//!   = help: the name is the IIS folder, the zip's top folder and the WebPI productId ([A-Za-z0-9_] only); try `name = "MyApp"`
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use globset::GlobSet;
use regex::Regex;

pub mod diagnostic;
pub mod dotnet_regex;
pub mod exe_path;
pub mod factory_call;
mod load;
pub mod raw;
pub mod schema;
mod validate;

pub use diagnostic::{Diagnostic, Severity, SourceFile};
pub use exe_path::{DEFAULT_IISWSGI_EXE, ExePathError, ExePathWarning, check_exe_path};
pub use raw::{
    AclResourceType, ApplicationParameter, EntryKind, HandlerResourceType, LogLevel, Protocol,
    RequireAccess, StderrMode, ValidationKind,
};

/// The conventional manifest file name.
pub const FILE_NAME: &str = "iiswsgi.toml";

/// wfastcgi's default `WSGI_RESTART_FILE_REGEX`, used when `reload-regex` is absent.
pub const DEFAULT_RELOAD_REGEX: &str = r".*((\.py)|(\.config))$";

/// Files never packaged unless `default-excludes = false`. A pattern matches a path when it
/// matches the path itself or any folder above it (see [`Package::is_packaged`]).
///
/// Besides tool folders and build output, they keep what a server or a developer's machine
/// writes out of the package: logs (tracebacks, local paths), SQLite databases (password
/// hashes), Flask's `instance/` folder and `.env` files (secrets), editor and OS clutter.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "dist",
    ".tox",
    ".nox",
    "**/__pycache__",
    "**/*.pyc",
    "**/*.pyo",
    "**/node_modules",
    "**/.mypy_cache",
    "**/.pytest_cache",
    "**/.ruff_cache",
    "**/*.egg-info",
    ".coverage",
    "htmlcov",
    // What the app writes at run time: `[run]`'s default log folder, logs, databases.
    "logs",
    "**/*.log",
    "**/*.sqlite",
    "**/*.sqlite3",
    "**/*.db",
    "**/*.sqlite3-journal",
    "**/*.db-journal",
    // Secrets: Flask's instance folder, dotenv files.
    "instance",
    "**/.env",
    // Editor and OS clutter.
    ".idea",
    ".vscode",
    "**/*.swp",
    "**/*.swo",
    "**/*~",
    "**/.#*",
    "**/.DS_Store",
    "**/Thumbs.db",
    "**/desktop.ini",
    "iiswsgi.toml.bak",
];

/// WebPI products every iiswsgi feed entry already depends on (msdeploy-webpi.md §6.4).
pub const BUILTIN_DEPENDENCIES: &[&str] =
    &["WDeployNoSMO", "WDeploy", "IISManagementConsole", "CGI"];

/// Errors reading or validating a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {}", path.display())]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The manifest has errors; each diagnostic carries its own `file:line:col`.
    #[error("{} has {} error{}", path.display(), count_errors(diagnostics), plural(count_errors(diagnostics)))]
    Invalid {
        /// The manifest path.
        path: PathBuf,
        /// Errors (and warnings found alongside them), in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

impl ManifestError {
    /// The diagnostics of an [`ManifestError::Invalid`] error (empty for others).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ManifestError::Invalid { diagnostics, .. } => diagnostics,
            ManifestError::Read { .. } => &[],
        }
    }

    /// Every diagnostic rendered with source lines and hints, as `iiswsgi check` prints them;
    /// other subcommands print this before their error chain.
    pub fn render(&self) -> String {
        diagnostic::render(self.diagnostics())
    }
}

fn count_errors(d: &[Diagnostic]) -> usize {
    d.iter().filter(|d| d.is_error()).count()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What `iiswsgi check` reports for one manifest.
#[derive(Debug)]
pub struct CheckReport {
    /// The manifest that was checked.
    pub path: PathBuf,
    /// Errors and warnings in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// The validated manifest when there were no errors.
    pub manifest: Option<Manifest>,
}

impl CheckReport {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        count_errors(&self.diagnostics)
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    /// The diagnostics rendered, then a one-line summary.
    pub fn render(&self) -> String {
        let mut out = diagnostic::render(&self.diagnostics);
        let (e, w) = (self.errors(), self.warnings());
        let name = self.path.display().to_string();
        let name = crate::printable(&name, &[]);
        if e > 0 {
            out.push_str(&format!(
                "error: {name}: {e} error{}, {w} warning{}\n",
                plural(e),
                plural(w)
            ));
        } else if let Some(m) = &self.manifest {
            out.push_str(&format!(
                "ok: {name}: {} {} ({w} warning{})\n",
                m.app.name,
                m.app.version,
                plural(w)
            ));
        }
        out
    }
}

/// Checks one manifest file: everything [`Manifest::load`] checks, with warnings kept even
/// when there are errors. A folder means the `iiswsgi.toml` inside it. Used by `iiswsgi check`.
pub fn check_file(path: &Path) -> Result<CheckReport, ManifestError> {
    let joined;
    let path = if path.is_dir() {
        joined = path.join(FILE_NAME);
        joined.as_path()
    } else {
        path
    };
    match Manifest::load(path) {
        Ok(m) => Ok(CheckReport {
            path: path.to_path_buf(),
            diagnostics: m.warnings.clone(),
            manifest: Some(m),
        }),
        Err(ManifestError::Invalid { path, diagnostics }) => Ok(CheckReport {
            path,
            diagnostics,
            manifest: None,
        }),
        Err(e) => Err(e),
    }
}

/// A validated `iiswsgi.toml`, with defaults applied.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file as given to [`Manifest::load`] / [`Manifest::parse`].
    pub path: PathBuf,
    /// `[app]`.
    pub app: App,
    /// `[wsgi]`.
    pub wsgi: Wsgi,
    /// `[iis]`.
    pub iis: Iis,
    /// `[package]`.
    pub package: Package,
    /// `[[parameters]]`, in file order.
    pub parameters: Vec<Parameter>,
    /// `[feed]`.
    pub feed: Feed,
    /// `[run]`.
    pub run: Run,
    /// Problems that do not stop the manifest from being used.
    pub warnings: Vec<Diagnostic>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`, and checks that the files it names
    /// (requirements, local icon and screenshot) exist.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        use std::io::Read;
        let read_error = |source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        };
        // One byte past the cap is enough for the validator to report the size.
        let mut text = String::new();
        fs_err::File::open(path)
            .and_then(|f| {
                f.take(MAX_MANIFEST_BYTES as u64 + 1)
                    .read_to_string(&mut text)
            })
            .map_err(read_error)?;
        let source = SourceFile::new(path.display().to_string(), text);
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        validate::validate(&source, path, Some(&base))
    }

    /// Validates manifest text; `path` is only used in messages and to resolve relative
    /// paths later. Pure: touches no files.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let source = SourceFile::new(path.display().to_string(), text);
        validate::validate(&source, path, None)
    }

    /// The folder holding the manifest; relative paths in it are relative to this.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// The host folder whose contents become the app folder (`[package] root`).
    pub fn package_root(&self) -> PathBuf {
        self.base_dir().join(&self.package.root)
    }
}

/// The one name of the app: IIS folder, zip top folder, dist name and WebPI productId.
///
/// ASCII letters, digits and `_`, starting with a letter, at most 64 characters, and not a
/// Windows device name. That is the intersection of what a Windows folder and a WebPI
/// productId (`[A-Za-z0-9_]`, msdeploy-webpi.md §6.2) allow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppName(String);

/// Longest accepted [`AppName`].
pub const APP_NAME_MAX: usize = 64;

/// Largest manifest read, in bytes: a configuration file, not a data set.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;
/// Most `[[iis.set-acl]]` entries. With [`MAX_PARAMETERS`] and [`MAX_PARAMETER_ENTRIES`] this
/// bounds the Manifest.xml and Parameters.xml a package generates, which the build and
/// `check` must read back within [`crate::xml::MAX_NODES`]: a manifest `check` accepts is
/// one `package` builds.
pub const MAX_SET_ACLS: usize = 256;
/// Most `[[parameters]]`.
pub const MAX_PARAMETERS: usize = 256;
/// Most `entries` of one parameter.
pub const MAX_PARAMETER_ENTRIES: usize = 64;

/// Why a string is not an [`AppName`]: one phrase that reads after "`app.name` ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppNameError {
    /// The name is empty.
    #[error("must not be empty")]
    Empty,
    /// A character outside `[A-Za-z0-9_]`.
    #[error("must contain only ASCII letters, digits and `_`, found {} in {name:?}", describe_char(*.found))]
    Character {
        /// The first such character.
        found: char,
        /// The name as given.
        name: String,
    },
    /// The name starts with a digit or `_`.
    #[error("must start with a letter, found {name:?}")]
    FirstNotALetter {
        /// The name as given.
        name: String,
    },
    /// Longer than [`APP_NAME_MAX`].
    #[error("must be at most {APP_NAME_MAX} characters, found {len}")]
    TooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// `CON`, `NUL`, `COM1` and the like.
    #[error("{name:?} is a reserved Windows device name")]
    DeviceName {
        /// The name as given.
        name: String,
    },
}

impl AppName {
    /// Validates `name`; the error says what is wrong in one phrase.
    pub fn new(name: &str) -> Result<AppName, AppNameError> {
        let Some(first) = name.chars().next() else {
            return Err(AppNameError::Empty);
        };
        if let Some(found) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
        {
            return Err(AppNameError::Character {
                found,
                name: name.to_string(),
            });
        }
        if !first.is_ascii_alphabetic() {
            return Err(AppNameError::FirstNotALetter {
                name: name.to_string(),
            });
        }
        if name.len() > APP_NAME_MAX {
            return Err(AppNameError::TooLong { len: name.len() });
        }
        if is_windows_device_name(name) {
            return Err(AppNameError::DeviceName {
                name: name.to_string(),
            });
        }
        Ok(AppName(name.to_string()))
    }

    /// Turns a project name such as `flask-hello` or `my_site.web` into a valid name
    /// (`FlaskHello`, `MySiteWeb`): words are capitalised and joined, other characters
    /// dropped. `None` when nothing usable is left.
    pub fn sanitize(project: &str) -> Option<AppName> {
        let mut out = String::new();
        for word in project.split(|c: char| !c.is_ascii_alphanumeric()) {
            let mut chars = word.chars();
            if let Some(f) = chars.next() {
                out.push(f.to_ascii_uppercase());
                out.extend(chars);
            }
        }
        let trimmed = out.trim_start_matches(|c: char| c.is_ascii_digit());
        let mut chars = trimmed.chars();
        let mut name: String = chars
            .next()
            .map(|f| f.to_ascii_uppercase())
            .into_iter()
            .chain(chars)
            .take(APP_NAME_MAX)
            .collect();
        if is_windows_device_name(&name) {
            name.push_str("App");
        }
        AppName::new(&name).ok()
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn describe_char(c: char) -> String {
    match c {
        ' ' => "` ` (a space)".into(),
        '\t' => "a tab".into(),
        c if c.is_control() => format!("control character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    }
}

/// CON, PRN, AUX, NUL, COM1-9, LPT1-9 (any case, with or without an extension).
pub(crate) fn is_windows_device_name(segment: &str) -> bool {
    let stem = segment.split('.').next().unwrap_or("").to_ascii_uppercase();
    let stem = stem.trim_end();
    matches!(stem, "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit()
            && stem.as_bytes()[3] != b'0')
}

/// A release version, PEP 440 or SemVer; safe in file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(String);

impl Version {
    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An absolute `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(String);

impl HttpUrl {
    /// The URL as written (a base URL gets a trailing `/`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A path relative to the app folder (or the manifest's folder), normalised: `/` separators,
/// no `.` or empty segments, never `..`, every segment valid on Windows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(String);

impl RelPath {
    /// The path with `/` separators (empty for the folder itself).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path with `\` separators, as Windows and MSDeploy write it.
    pub fn to_windows(&self) -> String {
        self.0.replace('/', "\\")
    }

    /// `base` joined with this path, for the host file system.
    pub fn under(&self, base: &Path) -> PathBuf {
        let mut p = base.to_path_buf();
        for seg in self.0.split('/').filter(|s| !s.is_empty()) {
            p.push(seg);
        }
        p
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image for the feed: a URL, or a file next to the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asset {
    /// Already published.
    Url(HttpUrl),
    /// Relative to the manifest's folder.
    File(RelPath),
}

/// `[app]`.
#[derive(Debug, Clone)]
pub struct App {
    /// The one name (folder, zip, productId).
    pub name: AppName,
    /// Display name (default: the name).
    pub title: String,
    /// Release version.
    pub version: Version,
    /// Summary.
    pub description: Option<String>,
    /// Author or publisher.
    pub author: Option<String>,
    /// License name.
    pub license: Option<String>,
    /// License text URL.
    pub license_url: Option<HttpUrl>,
    /// Home page URL.
    pub homepage_url: Option<HttpUrl>,
    /// Help URL.
    pub help_url: Option<HttpUrl>,
    /// WebPI icon.
    pub icon: Option<Asset>,
    /// WebPI screenshot.
    pub screenshot: Option<Asset>,
}

/// `module:attribute` (optionally called once as a factory, with literal arguments as
/// gunicorn allows: [`factory_call`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsgiTarget {
    /// Dotted module path, e.g. `mysite.wsgi`.
    pub module: String,
    /// Dotted attribute path inside the module, e.g. `application` or `app.wsgi_app`.
    pub attribute: String,
    /// Call the attribute at start-up and serve what it returns.
    pub call: bool,
    /// The call's argument text, Python literals (`debug=False`); empty for `()`.
    pub arguments: String,
}

impl fmt::Display for WsgiTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.module, self.attribute)?;
        if self.call {
            write!(f, "({})", self.arguments)?;
        }
        Ok(())
    }
}

/// Where the virtual environment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Venv {
    /// Inside the app folder.
    InApp(RelPath),
    /// An absolute path on the server, as written.
    Absolute(String),
}

/// The compiled reload pattern.
#[derive(Debug, Clone)]
pub struct ReloadRegex {
    /// As written in the manifest.
    pub source: String,
    /// Compiled as `^(?:source)` (wfastcgi used `re.match`, which anchors at the start).
    pub regex: Regex,
}

/// `[wsgi]`.
#[derive(Debug, Clone)]
pub struct Wsgi {
    /// The callable.
    pub app: WsgiTarget,
    /// Extra `sys.path` entries, relative to the app folder.
    pub python_paths: Vec<RelPath>,
    /// The virtual environment, if any.
    pub venv: Option<Venv>,
    /// Required CPython `(major, minor)`.
    pub python_version: Option<(u8, u8)>,
    /// File-change restart pattern; `None` when disabled with `reload-regex = ""`.
    pub reload: Option<ReloadRegex>,
    /// Environment variables set before Python starts.
    pub environment: BTreeMap<String, String>,
}

/// `[iis]`.
#[derive(Debug, Clone)]
pub struct Iis {
    /// Default `Site/app` for the Application Path parameter.
    pub application_path: String,
    /// Whether an empty Application Path (the site root) is accepted.
    pub allow_site_root: bool,
    /// The name of the IisApp parameter.
    pub application_parameter: ApplicationParameter,
    /// Where `iiswsgi.exe` is on the servers (checked by [`check_exe_path`]).
    pub iiswsgi_exe: String,
    /// The handler mapping.
    pub handler: Handler,
    /// The FastCGI registration.
    pub fastcgi: FastCgi,
    /// setAcl entries.
    pub set_acl: Vec<SetAcl>,
    /// Request filtering.
    pub request_filtering: RequestFiltering,
    /// `[[iis.static]]`: folders IIS serves itself.
    pub static_files: Vec<StaticFolder>,
}

/// `[[iis.static]]`: a folder IIS's StaticFileModule serves, at the same URL path under the
/// app, instead of the Python handler (a `<location>` in web.config clears the handlers there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticFolder {
    /// Relative to the app folder; also the URL path under the app.
    pub path: RelPath,
}

/// `[iis.handler]`.
#[derive(Debug, Clone)]
pub struct Handler {
    /// Handler name (default `iiswsgi-<name>`).
    pub name: String,
    /// Path pattern (default `*`).
    pub path: String,
    /// Verbs (default `["*"]`); join with `,` for the `verb` attribute.
    pub verbs: Vec<String>,
    /// `responseBufferLimit` (default 0).
    pub response_buffer_limit: u32,
    /// `requireAccess` (default Script).
    pub require_access: RequireAccess,
    /// `resourceType` (default Unspecified).
    pub resource_type: HandlerResourceType,
}

/// Default FastCGI values iiswsgi writes (iis-runtime.md §8.4, msdeploy-webpi.md §5.2).
pub mod fastcgi_defaults {
    /// 0: IIS decides.
    pub const MAX_INSTANCES: u32 = 0;
    /// IIS's 200 means a cold start every 200 requests.
    pub const INSTANCE_MAX_REQUESTS: u32 = 10_000;
    /// Seconds.
    pub const ACTIVITY_TIMEOUT: u32 = 600;
    /// Seconds.
    pub const REQUEST_TIMEOUT: u32 = 600;
    /// Seconds.
    pub const IDLE_TIMEOUT: u32 = 1800;
    /// Seconds; enables `_FCGI_SHUTDOWN_EVENT_`.
    pub const SIGNAL_BEFORE_TERMINATE_SECONDS: u32 = 30;
    /// IIS's default.
    pub const QUEUE_LENGTH: u32 = 1000;
    /// IIS's default.
    pub const RAPID_FAILS_PER_MINUTE: u32 = 10;
}

/// `[iis.fastcgi]`: one `<fastCgi><application>` (without `fullPath`/`arguments`, which the
/// install step computes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastCgi {
    /// `maxInstances`.
    pub max_instances: u32,
    /// `instanceMaxRequests`.
    pub instance_max_requests: u32,
    /// `activityTimeout`.
    pub activity_timeout: u32,
    /// `requestTimeout`.
    pub request_timeout: u32,
    /// `idleTimeout`.
    pub idle_timeout: u32,
    /// `signalBeforeTerminateSeconds`.
    pub signal_before_terminate_seconds: u32,
    /// `protocol`.
    pub protocol: Protocol,
    /// `queueLength`.
    pub queue_length: u32,
    /// `rapidFailsPerMinute`.
    pub rapid_fails_per_minute: u32,
    /// `stderrMode`.
    pub stderr_mode: StderrMode,
    /// `flushNamedPipe`.
    pub flush_named_pipe: bool,
    /// `monitorChangesTo`, relative to the app folder (made absolute at install).
    pub monitor_changes_to: Option<RelPath>,
}

impl FastCgi {
    /// The attributes to register, with IIS's names and values as appcmd takes them, in a
    /// fixed order. `fullPath`, `arguments` and `monitorChangesTo` are left to the installer.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        vec![
            ("maxInstances", self.max_instances.to_string()),
            (
                "instanceMaxRequests",
                self.instance_max_requests.to_string(),
            ),
            ("activityTimeout", self.activity_timeout.to_string()),
            ("requestTimeout", self.request_timeout.to_string()),
            ("idleTimeout", self.idle_timeout.to_string()),
            (
                "signalBeforeTerminateSeconds",
                self.signal_before_terminate_seconds.to_string(),
            ),
            ("protocol", self.protocol.as_str().to_string()),
            ("queueLength", self.queue_length.to_string()),
            (
                "rapidFailsPerMinute",
                self.rapid_fails_per_minute.to_string(),
            ),
            ("stderrMode", self.stderr_mode.as_str().to_string()),
            ("flushNamedPipe", self.flush_named_pipe.to_string()),
        ]
    }
}

impl Protocol {
    /// IIS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::NamedPipe => "NamedPipe",
            Protocol::Tcp => "Tcp",
        }
    }
}

impl StderrMode {
    /// IIS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StderrMode::ReturnStdErrIn500 => "ReturnStdErrIn500",
            StderrMode::ReturnGeneric500 => "ReturnGeneric500",
            StderrMode::IgnoreAndReturn200 => "IgnoreAndReturn200",
            StderrMode::TerminateProcess => "TerminateProcess",
        }
    }
}

impl RequireAccess {
    /// IIS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RequireAccess::None => "None",
            RequireAccess::Read => "Read",
            RequireAccess::Write => "Write",
            RequireAccess::Script => "Script",
            RequireAccess::Execute => "Execute",
        }
    }
}

impl HandlerResourceType {
    /// IIS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HandlerResourceType::File => "File",
            HandlerResourceType::Directory => "Directory",
            HandlerResourceType::Either => "Either",
            HandlerResourceType::Unspecified => "Unspecified",
        }
    }
}

impl ApplicationParameter {
    /// The parameter's name in Parameters.xml and SetParameters.xml.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationParameter::ApplicationPath => APPLICATION_PATH_PARAMETER,
            ApplicationParameter::IisWebApplicationName => "IIS Web Application Name",
        }
    }
}

impl AclResourceType {
    /// MSDeploy's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AclResourceType::Directory => "Directory",
            AclResourceType::File => "File",
        }
    }
}

impl LogLevel {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// .NET `FileSystemRights` names accepted in `setAclAccess` (msdeploy-webpi.md §2.2).
pub const FILE_SYSTEM_RIGHTS: &[&str] = &[
    "ListDirectory",
    "ReadData",
    "WriteData",
    "CreateFiles",
    "CreateDirectories",
    "AppendData",
    "ReadExtendedAttributes",
    "WriteExtendedAttributes",
    "Traverse",
    "ExecuteFile",
    "DeleteSubdirectoriesAndFiles",
    "ReadAttributes",
    "WriteAttributes",
    "Write",
    "Delete",
    "ReadPermissions",
    "Read",
    "ReadAndExecute",
    "Modify",
    "ChangePermissions",
    "TakeOwnership",
    "Synchronize",
    "FullControl",
];

/// `[[iis.set-acl]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAcl {
    /// Relative to the app folder.
    pub path: RelPath,
    /// Canonical FileSystemRights names (entries of [`FILE_SYSTEM_RIGHTS`]).
    pub access: Vec<&'static str>,
    /// The account; `None` means the app-pool identity (omit `setAclUser`).
    pub user: Option<String>,
    /// Directory or File.
    pub resource_type: AclResourceType,
    /// Ship the folder's (or file's) contents with the package.
    pub ship_contents: bool,
}

/// Rights that let the app change what is in a folder: a setAcl with one of them makes a
/// writable folder, whose contents belong to the server.
pub const WRITE_RIGHTS: &[&str] = &[
    "WriteData",
    "CreateFiles",
    "CreateDirectories",
    "AppendData",
    "DeleteSubdirectoriesAndFiles",
    "Write",
    "Delete",
    "Modify",
    "FullControl",
];

impl SetAcl {
    /// The `setAclAccess` attribute value (`Modify` or `Read,Write`).
    pub fn access_attr(&self) -> String {
        self.access.join(",")
    }

    /// Whether the grant lets the app write there ([`WRITE_RIGHTS`]).
    pub fn is_writable(&self) -> bool {
        self.access.iter().any(|a| WRITE_RIGHTS.contains(a))
    }

    /// The path inside the package of the app named `app`: `App/App_Data`.
    pub fn package_path(&self, app: &str) -> String {
        match self.path.as_str() {
            "" => app.to_string(),
            sub => format!("{app}/{sub}"),
        }
    }
}

/// `[iis.request-filtering]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFiltering {
    /// `allowDoubleEscaping`.
    pub allow_double_escaping: bool,
    /// `requestLimits/@maxAllowedContentLength`.
    pub max_allowed_content_length: u32,
}

/// `[package]`.
#[derive(Debug, Clone)]
pub struct Package {
    /// Host folder (relative to the manifest's folder) that becomes the app folder.
    pub root: PathBuf,
    /// Include globs as written (default `["**"]`).
    pub include: Vec<String>,
    /// Effective exclude globs: the defaults (unless disabled) then the manifest's.
    pub exclude: Vec<String>,
    /// Requirements file relative to `root`.
    pub requirements: Option<RelPath>,
    /// Commands run after install, in order.
    pub post_install: Vec<String>,
    /// runCommand `waitAttempts`.
    pub install_wait_attempts: u32,
    /// runCommand `waitInterval` in milliseconds.
    pub install_wait_interval_ms: u32,
    include_set: GlobSet,
    exclude_set: GlobSet,
}

impl Package {
    /// Whether the file at `rel` (relative to `root`, `/` separators) goes into the package:
    /// it matches an include glob, and neither it nor any folder above it matches an exclude
    /// glob. Globs use `/`, `*` does not cross `/`, `**` does.
    pub fn is_packaged(&self, rel: &str) -> bool {
        self.include_set.is_match(rel) && !self.is_excluded(rel)
    }

    /// Whether `rel` or a folder above it is excluded (a walker can skip excluded folders
    /// without descending).
    pub fn is_excluded(&self, rel: &str) -> bool {
        self.excluded_by(rel).is_some()
    }

    /// The exclude glob that leaves `rel` out (matching it or a folder above it), if any.
    pub fn excluded_by(&self, rel: &str) -> Option<&str> {
        rel.match_indices('/')
            .filter(|(i, _)| *i > 0)
            .map(|(i, _)| &rel[..i])
            .chain(std::iter::once(rel))
            .find_map(|p| self.exclude_set.matches(p).first().copied())
            .and_then(|i| self.exclude.get(i))
            .map(String::as_str)
    }
}

/// A known MSDeploy parameter tag, spelled canonically.
pub const PARAMETER_TAGS: &[&str] = &[
    "Hidden",
    "SetAcl",
    "Password",
    "New",
    "NoStore",
    "AppURL",
    "Sql",
    "MySql",
    "SqLite",
    "SqlCE",
    "VistaDB",
    "FlatFile",
    "DBServer",
    "DBName",
    "DBUserName",
    "DBUserPassword",
    "DBAdminUserName",
    "DBAdminPassword",
    "SqlConnectionString",
    "MySqlConnectionString",
    "DBConnectionString",
    "DBUserConnectionString",
    "DBAdminConnectionString",
    "Validate",
    "Boolean",
    "PhysicalPath",
];

/// The name iiswsgi gives the generated IisApp parameter (msdeploy-webpi.md §4.6).
pub const APPLICATION_PATH_PARAMETER: &str = "Application Path";

/// `[[parameters]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// Unique name (case-insensitively).
    pub name: String,
    /// Help text.
    pub description: Option<String>,
    /// Default value, possibly with `{Name}` references.
    pub default: Option<String>,
    /// Canonical tags (entries of [`PARAMETER_TAGS`]).
    pub tags: Vec<&'static str>,
    /// Validation.
    pub validation: Option<Validation>,
    /// Where the value goes.
    pub entries: Vec<Entry>,
}

impl Parameter {
    /// The `tags` attribute value, or `None` without tags.
    pub fn tags_attr(&self) -> Option<String> {
        (!self.tags.is_empty()).then(|| self.tags.join(","))
    }

    /// Whether the parameter is tagged `Hidden`.
    pub fn is_hidden(&self) -> bool {
        self.tags.contains(&"Hidden")
    }
}

/// A parameter's validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The kind.
    pub kind: ValidationKind,
    /// The regex or the comma list.
    pub value: Option<String>,
    /// Whether an empty value is accepted.
    pub allow_empty: bool,
}

impl Validation {
    /// The `type` attribute of `<parameterValidation>` (`AllowEmpty,RegularExpression`).
    pub fn type_attr(&self) -> String {
        let kind = match self.kind {
            ValidationKind::None => "None",
            ValidationKind::RegularExpression => "RegularExpression",
            ValidationKind::Enumeration => "Enumeration",
            ValidationKind::Boolean => "Boolean",
        };
        if self.allow_empty {
            format!("AllowEmpty,{kind}")
        } else {
            kind.to_string()
        }
    }
}

/// A parameter entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The kind.
    pub kind: EntryKind,
    /// The scope regex.
    pub scope: String,
    /// The match (regex or XPath).
    pub match_: String,
}

impl EntryKind {
    /// MSDeploy's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::TextFile => "TextFile",
            EntryKind::XmlFile => "XmlFile",
            EntryKind::ProviderPath => "ProviderPath",
        }
    }
}

/// `[feed]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// Whether the manifest has a `[feed]` section: only then does `package` write a feed
    /// (WebPI is retired; `--feed` asks for one too).
    pub declared: bool,
    /// Where zips are published (ends with `/`).
    pub download_base_url: Option<HttpUrl>,
    /// The feed's own URL.
    pub feed_url: Option<HttpUrl>,
    /// Extra productIds, beyond [`BUILTIN_DEPENDENCIES`].
    pub dependencies: Vec<String>,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Long summary.
    pub long_summary: Option<String>,
    /// Start page relative to the app (empty: the app root).
    pub start_page: String,
    /// Language id (default `en`).
    pub language: String,
}

/// `[run]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Request threads in socket mode.
    pub threads: u16,
    /// Mount point behind a generic server (`/shop`), if any.
    pub mount_point: Option<String>,
    /// Log file as written, if set.
    pub log_file: Option<String>,
    /// Log level.
    pub log_level: LogLevel,
    /// Rotate at this size.
    pub log_max_bytes: u64,
    /// Rotated files kept.
    pub log_keep: u32,
    /// FastCGI params caps.
    pub limits: Limits,
    /// `socket-mode`, parsed ([`parse_socket_mode`]); `None`: not set.
    pub socket_mode: Option<u32>,
}

/// Parses a unix socket mode as written in `[run] socket-mode` and `--socket-mode`: octal
/// digits (`660`, `0660`, `0o660`), at most `777`.
pub fn parse_socket_mode(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o777)
}

/// `[run.limits]` (fastcgi-protocol.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest param name.
    pub max_param_name_bytes: usize,
    /// Longest param value.
    pub max_param_value_bytes: usize,
    /// All params of a request.
    pub max_params_bytes: usize,
    /// Pairs per request.
    pub max_param_pairs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_param_name_bytes: 1024,
            max_param_value_bytes: 64 * 1024,
            max_params_bytes: 1024 * 1024,
            max_param_pairs: 10_000,
        }
    }
}

#[cfg(test)]
mod tests;
