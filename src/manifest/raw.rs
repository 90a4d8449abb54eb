//! The `iiswsgi.toml` file exactly as written: serde types that match it key for key.
//!
//! This is the low-level schema (as cargo's `cargo-util-schemas` and ripgrep's low args are):
//! serde and JSON-schema derives, kebab-case keys, no semantics, no defaults and no I/O. Every
//! value a later check may reject is wrapped in [`Spanned`] so the error can point at it.
//! `schemas/iiswsgi.schema.json` is generated from these types alone, so a key that exists here
//! exists in the schema and vice versa.
//!
//! Unknown keys are not rejected by serde here (`deny_unknown_fields` would stop at the first):
//! the loader (`manifest/load.rs`) collects every ignored key with `serde_ignored` and reports
//! them all. The schema still says `additionalProperties: false` through
//! `#[schemars(deny_unknown_fields)]`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// A value together with the byte range it came from in the manifest.
///
/// A thin wrapper over [`toml::Spanned`] whose JSON schema is the schema of `T`, so the
/// generated schema describes the value and not the wrapper.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Spanned<T>(toml::Spanned<T>);

impl<T> Spanned<T> {
    /// Wraps `value` with the byte range `span` (used by tests and by code that synthesises
    /// values).
    pub fn new(span: Range<usize>, value: T) -> Self {
        Spanned(toml::Spanned::new(span, value))
    }

    /// The value.
    pub fn get(&self) -> &T {
        self.0.get_ref()
    }

    /// The byte range of the value in the manifest.
    pub fn span(&self) -> Range<usize> {
        self.0.span()
    }

    /// The value, dropping the span.
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// The whole `iiswsgi.toml`.
///
/// Only `[app]` and `[wsgi]` are required; every other section has defaults.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields, title = "iiswsgi.toml")]
pub struct RawManifest {
    /// What the app is called and how it presents itself (IIS folder, package name, WebPI entry).
    #[schemars(required)]
    pub app: Option<RawApp>,
    /// Which Python callable serves requests, and the Python environment it runs in.
    #[schemars(required)]
    pub wsgi: Option<RawWsgi>,
    /// How IIS hosts the app: application path, handler mapping, FastCGI settings, ACLs.
    pub iis: Option<RawIis>,
    /// What goes into the MSDeploy package and what runs after it is installed.
    pub package: Option<RawPackage>,
    /// Values the person installing the app is asked for (MSDeploy `Parameters.xml`).
    pub parameters: Option<Vec<RawParameter>>,
    /// The WebPI feed entry written next to the package.
    pub feed: Option<RawFeed>,
    /// Settings of `iiswsgi run` itself: threads outside IIS, logging, request limits.
    pub run: Option<RawRun>,
}

/// `[app]`: identity and presentation.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawApp {
    /// The one name used everywhere: the IIS application folder, the package's top folder, the
    /// `<Name>-<version>.zip` file name and the WebPI productId. Letters, digits and `_` only,
    /// starting with a letter, at most 64 characters (e.g. `FlaskHelloIISApp`).
    #[schemars(
        required,
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z][A-Za-z0-9_]*$")
    )]
    pub name: Option<Spanned<String>>,
    /// The display name shown by WebPI and IIS Manager. Default: `name`.
    pub title: Option<Spanned<String>>,
    /// The release version, PEP 440 (`1.2.0`, `1.2.0rc1`, `2024.1.post1`) or SemVer
    /// (`1.2.0-beta.1`).
    #[schemars(required)]
    pub version: Option<Spanned<String>>,
    /// One-paragraph summary (the WebPI `summary`).
    pub description: Option<Spanned<String>>,
    /// The author or publisher, e.g. `Jane Doe <jane@example.com>`.
    pub author: Option<Spanned<String>>,
    /// A license name or SPDX expression, e.g. `MIT`.
    pub license: Option<Spanned<String>>,
    /// Absolute http(s) URL of the license text (the WebPI `eulaURL`).
    pub license_url: Option<Spanned<String>>,
    /// Absolute http(s) URL of the project's home page.
    pub homepage_url: Option<Spanned<String>>,
    /// Absolute http(s) URL of help or support (the WebPI `helpLink`).
    pub help_url: Option<Spanned<String>>,
    /// Icon for WebPI: an absolute http(s) URL, or a path relative to this file (published
    /// next to the feed).
    pub icon: Option<Spanned<String>>,
    /// Screenshot for WebPI: an absolute http(s) URL, or a path relative to this file.
    pub screenshot: Option<Spanned<String>>,
}

/// `[wsgi]`: the Python side.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawWsgi {
    /// The WSGI callable as `module:attribute` (gunicorn's convention), e.g. `hello:app` or
    /// `mysite.wsgi:application`. Append a call to use a factory, called once at start-up,
    /// with literal arguments as gunicorn allows (`hello:create_app()`,
    /// `flaskr:create_app(test_config={'DEBUG': False})`).
    #[schemars(required)]
    pub app: Option<Spanned<String>>,
    /// Extra directories put at the front of `sys.path`, relative to the app folder. The app
    /// folder itself is always on `sys.path`.
    pub python_paths: Option<Vec<Spanned<String>>>,
    /// A virtual environment to run in: a folder relative to the app folder, or an absolute
    /// path on the server. Default: none (the interpreter's own site-packages).
    pub venv: Option<Spanned<String>>,
    /// The `major.minor` CPython version the app needs, e.g. `3.12`; `iiswsgi run` refuses to
    /// start with another.
    pub python_version: Option<Spanned<String>>,
    /// Restart the app when a changed file's path (relative to the app folder) matches this
    /// regular expression, matched from the start like wfastcgi's `WSGI_RESTART_FILE_REGEX`.
    /// Default: `.*((\.py)|(\.config))$`. An empty string disables watching.
    pub reload_regex: Option<Spanned<String>>,
    /// Environment variables set before Python starts (e.g. `DJANGO_SETTINGS_MODULE`).
    pub environment: Option<BTreeMap<String, Spanned<String>>>,
}

/// `[iis]`: hosting on IIS.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawIis {
    /// The default `Site/app` the installer proposes (the `Application Path` parameter).
    /// Default: `Default Web Site/<name>`.
    pub application_path: Option<Spanned<String>>,
    /// Let the installer accept an empty Application Path, meaning the site root.
    /// Default: false.
    pub allow_site_root: Option<bool>,
    /// The name of the IisApp parameter: `Application Path` (App Gallery, WebPI) or
    /// `IIS Web Application Name` (what Visual Studio, MSBuild and Azure DevOps pass with
    /// `-setParam`). Default: `Application Path`.
    pub application_parameter: Option<ApplicationParameter>,
    /// Where `iiswsgi.exe` is on the IIS servers: the package's post-install step runs it. An
    /// absolute Windows path (or one starting with `%VAR%\`) without `"`, `&`, `|`, `<`, `>`,
    /// `^`, `'` or other `%`. Default: `C:\iiswsgi\Scripts\iiswsgi.exe`, where the README's
    /// server set-up puts it. `iiswsgi package --iiswsgi-exe` overrides it.
    pub iiswsgi_exe: Option<Spanned<String>>,
    /// The handler mapping written to web.config.
    pub handler: Option<RawHandler>,
    /// The `<fastCgi><application>` registration, written by the install step with appcmd.
    pub fastcgi: Option<RawFastCgi>,
    /// Folders (or files) the app may write to: one MSDeploy `setAcl` each.
    pub set_acl: Option<Vec<RawSetAcl>>,
    /// `system.webServer/security/requestFiltering` in web.config.
    pub request_filtering: Option<RawRequestFiltering>,
    /// Folders IIS serves itself (its StaticFileModule), not Python: one `<location>` each in
    /// web.config.
    #[serde(rename = "static")]
    pub static_files: Option<Vec<RawStatic>>,
}

/// The name of the `IisApp`-tagged parameter (msdeploy-webpi.md §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ApplicationParameter {
    /// The App Gallery name, which WebPI and IIS Manager show.
    #[serde(rename = "Application Path")]
    ApplicationPath,
    /// The name Visual Studio, MSBuild, Azure DevOps and Octopus pass with `-setParam`.
    #[serde(rename = "IIS Web Application Name")]
    IisWebApplicationName,
}

/// `[iis.handler]`: the `system.webServer/handlers` entry that routes requests to iiswsgi.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawHandler {
    /// The handler's name. Default: `iiswsgi-<name>`.
    pub name: Option<Spanned<String>>,
    /// The request path pattern. Default: `*` (every request, static files too).
    pub path: Option<Spanned<String>>,
    /// HTTP verbs to accept, e.g. `["GET", "POST"]`. Default: `["*"]` (all).
    pub verbs: Option<Vec<Spanned<String>>>,
    /// Bytes IIS buffers before sending a response, 0–4294967295. Default: 0, so streamed
    /// responses reach the client as they are written (IIS's own default is 4194304).
    #[schemars(range(min = 0, max = 4294967295u32))]
    pub response_buffer_limit: Option<Spanned<i64>>,
    /// The access the handler requires. Default: `Script`.
    pub require_access: Option<RequireAccess>,
    /// What must exist on disk for the handler to run. Default: `Unspecified` (needed for
    /// `path = "*"`).
    pub resource_type: Option<HandlerResourceType>,
}

/// `requireAccess` of an IIS handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[allow(missing_docs)]
pub enum RequireAccess {
    None,
    Read,
    Write,
    Script,
    Execute,
}

/// `resourceType` of an IIS handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[allow(missing_docs)]
pub enum HandlerResourceType {
    File,
    Directory,
    Either,
    Unspecified,
}

/// `[iis.fastcgi]`: IIS's `<fastCgi><application>` attributes, kebab-cased
/// (`instanceMaxRequests` is `instance-max-requests`). Ranges are IIS's own.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawFastCgi {
    /// Most worker processes per app pool, 0–10000; 0 lets IIS decide. Default: 0.
    #[schemars(range(min = 0, max = 10000))]
    pub max_instances: Option<Spanned<i64>>,
    /// Requests a process serves before IIS recycles it, 1–10000000. Default: 10000 (IIS's
    /// 200 means a cold start every 200 requests).
    #[schemars(range(min = 1, max = 10000000))]
    pub instance_max_requests: Option<Spanned<i64>>,
    /// Seconds without any I/O before IIS kills the process, 10–2592000. Default: 600.
    #[schemars(range(min = 10, max = 2592000))]
    pub activity_timeout: Option<Spanned<i64>>,
    /// Seconds one request may take in total, 10–2592000. Default: 600.
    #[schemars(range(min = 10, max = 2592000))]
    pub request_timeout: Option<Spanned<i64>>,
    /// Seconds an idle process lives, 10–2592000. Default: 1800.
    #[schemars(range(min = 10, max = 2592000))]
    pub idle_timeout: Option<Spanned<i64>>,
    /// Seconds IIS waits after signalling shutdown before it kills the process, 0–60; non-zero
    /// enables graceful shutdown. Default: 30.
    #[schemars(range(min = 0, max = 60))]
    pub signal_before_terminate_seconds: Option<Spanned<i64>>,
    /// How IIS talks to the process. Default: `NamedPipe`.
    pub protocol: Option<Protocol>,
    /// Requests queued per app before IIS answers 503, 1–100000000. Default: 1000.
    #[schemars(range(min = 1, max = 100000000))]
    pub queue_length: Option<Spanned<i64>>,
    /// Crashes per minute after which IIS stops restarting the process, 0–1000. Default: 10.
    #[schemars(range(min = 0, max = 1000))]
    pub rapid_fails_per_minute: Option<Spanned<i64>>,
    /// What IIS does with output on FastCGI stderr. Default: `ReturnGeneric500` (iiswsgi never
    /// writes there, this is defence in depth).
    pub stderr_mode: Option<StderrMode>,
    /// Flush the named pipe after each request. Default: false.
    pub flush_named_pipe: Option<bool>,
    /// A file, relative to the app folder, whose change makes IIS recycle the processes.
    /// Default: none.
    pub monitor_changes_to: Option<Spanned<String>>,
}

/// FastCGI transport between IIS and the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Protocol {
    /// An anonymous named pipe handed over as stdin (IIS's default).
    NamedPipe,
    /// A loopback TCP socket handed over as stdin.
    Tcp,
}

/// IIS `stderrMode`: what happens when the process writes to FCGI_STDERR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum StderrMode {
    /// A 500 whose body is the stderr text (IIS's default; leaks internals).
    ReturnStdErrIn500,
    /// A generic 500.
    ReturnGeneric500,
    /// Ignore stderr and send the response.
    IgnoreAndReturn200,
    /// Kill the process and answer a generic 500.
    TerminateProcess,
}

/// `[[iis.set-acl]]`: grant the app-pool identity (or `user`) rights on a path in the app.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawSetAcl {
    /// The folder or file, relative to the app folder, with `/` separators (e.g. `App_Data`).
    pub path: Option<Spanned<String>>,
    /// .NET FileSystemRights names, e.g. `["Modify"]` or `["ReadAndExecute", "Write"]`.
    /// Default: `["Modify"]`.
    pub access: Option<Vec<Spanned<String>>>,
    /// The account to grant. Default: the app-pool identity the FastCGI process runs as.
    pub user: Option<Spanned<String>>,
    /// `Directory` or `File`. Default: `Directory`. A File ACL on a missing file creates it
    /// empty.
    pub resource_type: Option<AclResourceType>,
    /// Ship what is in this writable folder (or this file) with the package, e.g. seed data.
    /// Default: false: on the server its contents belong to the app, so the package carries
    /// the empty folder and a redeploy neither overwrites nor deletes what is there.
    pub ship_contents: Option<bool>,
}

/// `[[iis.static]]`: a folder of the app that IIS serves itself, at the same URL path.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawStatic {
    /// The folder, relative to the app folder with `/` separators, which is also the URL path
    /// under the app (`static` serves `/<app>/static/...` from `<app folder>/static`). For
    /// Django, the `STATIC_ROOT` that `collectstatic` fills, with `STATIC_URL` the same name.
    #[schemars(required)]
    pub path: Option<Spanned<String>>,
}

/// `setAclResourceType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[allow(missing_docs)]
pub enum AclResourceType {
    Directory,
    File,
}

/// `[iis.request-filtering]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawRequestFiltering {
    /// Accept URLs containing `%25`-style double escapes and `+` (Zope/Pyramid `++namespace++`
    /// URLs need it). Default: true, as the original iiswsgi did.
    pub allow_double_escaping: Option<bool>,
    /// Largest request body in bytes, 0–4294967295; larger uploads get 404.13. Default:
    /// 30000000 (IIS's default).
    #[schemars(range(min = 0, max = 4294967295u32))]
    pub max_allowed_content_length: Option<Spanned<i64>>,
}

/// `[package]`: what the MSDeploy package contains.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawPackage {
    /// The folder that becomes the app folder, relative to this file. Default: `.`.
    pub root: Option<Spanned<String>>,
    /// Globs (relative to `root`, `/` separators) of files to package. Default: `["**"]`.
    pub include: Option<Vec<Spanned<String>>>,
    /// Globs of files to leave out, added to the defaults (`.git`, `__pycache__`, `*.pyc`,
    /// `.venv`, `venv`, `dist`, `node_modules`, `logs`, `instance`, `.env`, `*.sqlite3`,
    /// `*.db`, `*.log`, editor and OS clutter, ...).
    pub exclude: Option<Vec<Spanned<String>>>,
    /// Set to false to drop the default excludes and use `exclude` alone. Default: true.
    pub default_excludes: Option<bool>,
    /// A pip requirements file, relative to `root`, installed after deployment.
    pub requirements: Option<Spanned<String>>,
    /// Commands run in the app folder after installation, in order (e.g.
    /// `python manage.py migrate`). A failing command fails the install.
    pub post_install: Option<Vec<Spanned<String>>>,
    /// How many times MSDeploy polls the post-install step before giving up, 1–1000.
    /// Default: 180.
    #[schemars(range(min = 1, max = 1000))]
    pub install_wait_attempts: Option<Spanned<i64>>,
    /// Milliseconds between those polls, 100–600000. Default: 5000 (180 × 5 s = 15 minutes,
    /// room for a pip install on a cold cache).
    #[schemars(range(min = 100, max = 600000))]
    pub install_wait_interval_ms: Option<Spanned<i64>>,
}

/// `[[parameters]]`: one MSDeploy parameter asked at install time.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawParameter {
    /// Unique (case-insensitively) name; also the `{Name}` other defaults can reference.
    pub name: Option<Spanned<String>>,
    /// Help text shown next to the field.
    pub description: Option<Spanned<String>>,
    /// The suggested value; may reference other parameters as `{Other Name}`. Required for
    /// `Hidden` parameters.
    pub default: Option<Spanned<String>>,
    /// MSDeploy tags, e.g. `["Password", "New"]`, `["Hidden"]`, `["DBServer", "Sql"]`.
    pub tags: Option<Vec<Spanned<String>>>,
    /// What values are accepted.
    pub validation: Option<RawValidation>,
    /// Where the value goes.
    pub entries: Option<Vec<RawEntry>>,
}

/// `validation = { kind = "...", value = "..." }`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawValidation {
    /// `RegularExpression`, `Enumeration`, `Boolean` or `None`.
    pub kind: Option<Spanned<ValidationKind>>,
    /// The regex (RegularExpression) or the comma list of choices (Enumeration).
    pub value: Option<Spanned<String>>,
    /// Also accept an empty value. Default: false.
    pub allow_empty: Option<bool>,
}

/// The kind of a parameter validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ValidationKind {
    /// Any value.
    None,
    /// The value must match a (.NET) regular expression.
    RegularExpression,
    /// The value must be one of a comma-separated list.
    Enumeration,
    /// `True` or `False`.
    Boolean,
}

/// `entries = [{ kind = "...", scope = "...", match = "..." }]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawEntry {
    /// `TextFile`, `XmlFile` or `ProviderPath`.
    pub kind: Option<Spanned<EntryKind>>,
    /// Which files (a regex over the path with `\` separators, e.g. `\\settings\.py$`) or,
    /// for ProviderPath, which provider (`setAcl`, `dbFullSql`, ...).
    pub scope: Option<Spanned<String>>,
    /// What to replace: a regex (TextFile), an XPath (XmlFile), or a regex over the
    /// provider's path (ProviderPath).
    #[serde(rename = "match")]
    pub match_: Option<Spanned<String>>,
}

/// Where a parameter's value is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum EntryKind {
    /// Replace every regex match in the scoped text files.
    TextFile,
    /// Set every node an XPath selects in the scoped XML files.
    XmlFile,
    /// Replace a manifest provider's path (or a database connection string).
    ProviderPath,
}

/// `[feed]`: the WebPI feed entry. WebPI is retired; `iiswsgi package` writes the feed only
/// when this section is present (or with `--feed`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawFeed {
    /// Absolute http(s) URL where the zips are published; the installer URL is this plus the
    /// zip's file name. Can be overridden on the command line.
    pub download_base_url: Option<Spanned<String>>,
    /// The feed's own URL, used as its Atom `id` (WebPI caches feeds by it).
    pub feed_url: Option<Spanned<String>>,
    /// WebPI productIds the app needs besides Web Deploy, IISManagementConsole and CGI, e.g.
    /// `["UrlRewrite2"]`.
    pub dependencies: Option<Vec<Spanned<String>>>,
    /// Search keywords.
    pub keywords: Option<Vec<Spanned<String>>>,
    /// A longer description (the WebPI `longSummary`).
    pub long_summary: Option<Spanned<String>>,
    /// The page opened after install, relative to the app (e.g. `admin/`). Default: the app
    /// root.
    pub start_page: Option<Spanned<String>>,
    /// The installer's language id. Default: `en`.
    pub language: Option<Spanned<String>>,
}

/// `[run]`: `iiswsgi run` settings that do not belong to IIS.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawRun {
    /// Request threads when serving a socket (nginx, Apache...), 1–1024. Under IIS there is
    /// always one per process. Default: 8.
    #[schemars(range(min = 1, max = 1024))]
    pub threads: Option<Spanned<i64>>,
    /// URL prefix the app is mounted at behind a generic server, e.g. `/shop`. Under IIS it
    /// comes from the application path.
    pub mount_point: Option<Spanned<String>>,
    /// Log file. Relative paths are relative to the app folder. Default: `iiswsgi.log` next to
    /// this file, else the temp folder.
    pub log_file: Option<Spanned<String>>,
    /// `error`, `warn`, `info`, `debug` or `trace`. Default: `info`.
    pub log_level: Option<LogLevel>,
    /// Rotate the log when it reaches this many bytes, 4096–1099511627776. Default: 10485760.
    #[schemars(range(min = 4096, max = 1099511627776u64))]
    pub log_max_bytes: Option<Spanned<i64>>,
    /// Rotated logs to keep, 0–100. Default: 5.
    #[schemars(range(min = 0, max = 100))]
    pub log_keep: Option<Spanned<i64>>,
    /// Caps on what one FastCGI request may send before it is refused (431).
    pub limits: Option<RawLimits>,
    /// Permissions of the unix socket `iiswsgi run --listen unix:PATH` creates, in octal
    /// (`"0660"`): who may connect (connecting needs write permission). With `"0660"` only
    /// the owner and the socket's group may; put the socket in a folder whose group is the
    /// web server's (`www-data`) and has the setgid bit, so the socket gets that group.
    /// `--socket-mode` beats it. Default: `"0666"` (any local user).
    pub socket_mode: Option<Spanned<String>>,
}

/// Log verbosity.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// `[run.limits]`: FastCGI params caps.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawLimits {
    /// Longest param name in bytes, 16–65536. Default: 1024.
    #[schemars(range(min = 16, max = 65536))]
    pub max_param_name_bytes: Option<Spanned<i64>>,
    /// Longest param value in bytes, 1024–16777216. Default: 65536.
    #[schemars(range(min = 1024, max = 16777216))]
    pub max_param_value_bytes: Option<Spanned<i64>>,
    /// All params of one request in bytes, 4096–67108864. Default: 1048576.
    #[schemars(range(min = 4096, max = 67108864))]
    pub max_params_bytes: Option<Spanned<i64>>,
    /// Param pairs per request, 16–1000000. Default: 10000.
    #[schemars(range(min = 16, max = 1000000))]
    pub max_param_pairs: Option<Spanned<i64>>,
}
