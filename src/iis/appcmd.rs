//! appcmd.exe command lines, built and read back without running anything.
//!
//! IIS keeps `<fastCgi>` in applicationHost.config only (`AppHostOnly`), so registering an app
//! means running appcmd as administrator (iis-runtime.md §8.1, §8.3; msdeploy-webpi.md §5.2).
//! This module is the single place that spells those command lines. It is pure: it returns a
//! [`CommandLine`] (the exact argv, and the same command as one Windows command line for
//! people to read or paste into cmd.exe) and parses the XML appcmd prints, but it never starts
//! a process. Running them is the caller's business ([`crate::iis::runner`]).
//!
//! Quoting: appcmd takes collection values between single quotes (`[fullPath='…']`) and has
//! no documented escape for a `'` inside one, so [`AppCmd`] refuses any value containing `'`
//! ([`AppCmdError::SingleQuote`]) rather than guess. Double quotes inside a value (a quoted
//! app root in `arguments`) are fine in the argv; the display form escapes them the way the
//! Microsoft C runtime reads them back (`\"`).
//!
//! Main types: [`AppCmd`] (which appcmd, IIS or IIS Express), [`CommandLine`],
//! [`FastCgiApplication`] (what we want registered), [`RegisteredApplication`] (what
//! `list config /xml` says is registered), [`HandlerMapping`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::manifest::FastCgi;

/// appcmd of full IIS, as cmd.exe would expand it.
pub const IIS_APPCMD: &str = r"%windir%\system32\inetsrv\appcmd.exe";

/// appcmd of IIS Express, as cmd.exe would expand it.
pub const EXPRESS_APPCMD: &str = r"%ProgramFiles%\IIS Express\appcmd.exe";

/// The default applicationhost.config of IIS Express for the current user.
pub const EXPRESS_APPHOST_CONFIG: &str =
    r"%USERPROFILE%\Documents\IISExpress\config\applicationhost.config";

/// The section holding FastCGI applications.
pub const FASTCGI_SECTION: &str = "system.webServer/fastCgi";

/// The section holding handler mappings.
pub const HANDLERS_SECTION: &str = "system.webServer/handlers";

/// IIS's default for every `<fastCgi><application>` attribute iiswsgi writes (iis-docs,
/// iis-runtime.md §8.1). An attribute missing from `list config` output has this value.
pub const IIS_FASTCGI_DEFAULTS: &[(&str, &str)] = &[
    ("maxInstances", "0"),
    ("instanceMaxRequests", "200"),
    ("activityTimeout", "70"),
    ("requestTimeout", "90"),
    ("idleTimeout", "300"),
    ("signalBeforeTerminateSeconds", "0"),
    ("protocol", "NamedPipe"),
    ("queueLength", "1000"),
    ("rapidFailsPerMinute", "10"),
    ("stderrMode", "ReturnStdErrIn500"),
    ("flushNamedPipe", "false"),
    ("monitorChangesTo", ""),
];

/// IIS's default for a FastCGI attribute (`None` for attributes iiswsgi does not know).
pub fn iis_default(attribute: &str) -> Option<&'static str> {
    IIS_FASTCGI_DEFAULTS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .map(|(_, v)| *v)
}

/// A value appcmd cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppCmdError {
    /// The value holds a `'`: appcmd values are single-quoted, with no known escape.
    #[error(
        "{what} `{value}` contains `'`, which appcmd cannot quote (its values are written \
         between single quotes); move it to a path without `'`"
    )]
    SingleQuote {
        /// What the value is (`fullPath`, `the app folder`).
        what: String,
        /// The value.
        value: String,
    },
    /// The value holds a control character (a line break would end the command).
    #[error("{what} {value:?} contains a control character, which a command line cannot carry")]
    Control {
        /// What the value is.
        what: String,
        /// The value.
        value: String,
    },
}

/// Refuses a value appcmd cannot carry between single quotes.
pub fn check_value(what: &str, value: &str) -> Result<(), AppCmdError> {
    if value.contains('\'') {
        return Err(AppCmdError::SingleQuote {
            what: what.to_string(),
            value: value.to_string(),
        });
    }
    if value.chars().any(char::is_control) {
        return Err(AppCmdError::Control {
            what: what.to_string(),
            value: value.to_string(),
        });
    }
    Ok(())
}

/// One command: the program and its arguments exactly as the process receives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The executable (may hold `%VAR%` in a dry run, where nothing is resolved).
    pub program: String,
    /// The arguments, unquoted.
    pub args: Vec<String>,
}

impl CommandLine {
    /// A command.
    pub fn new(program: impl Into<String>, args: Vec<String>) -> Self {
        Self {
            program: program.into(),
            args,
        }
    }

    /// The program followed by the arguments.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// The command as one Windows command line: every argument quoted so that the Microsoft C
    /// runtime (`CommandLineToArgvW`) gives back exactly [`CommandLine::argv`], in the shape
    /// IIS documentation uses (`/+"[fullPath='…']"`). Meant for cmd.exe: `%VAR%` is left as
    /// written, and cmd.exe expands it.
    pub fn display(&self) -> String {
        self.argv()
            .iter()
            .map(|a| quote_windows_arg(a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// Characters that make an argument need quotes: separators for the C runtime, and the
/// characters cmd.exe would otherwise interpret.
fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.chars().any(|c| {
            matches!(
                c,
                ' ' | '\t' | '"' | '&' | '|' | '<' | '>' | '^' | '(' | ')'
            )
        })
}

/// Quotes one argument for a Windows command line (see [`CommandLine::display`]). A leading
/// switch (`/+`, `/-`, `/name:`) stays outside the quotes, as in appcmd's documentation.
/// Arguments that need no quotes are returned as they are.
pub fn quote_windows_arg(arg: &str) -> Cow<'_, str> {
    // A collection element (`/+[…]`, `/-[…]`) is always quoted, as appcmd's documentation
    // writes it, so every add and remove reads alike.
    let element = arg.starts_with("/+[") || arg.starts_with("/-[");
    if !element && !needs_quotes(arg) {
        return Cow::Borrowed(arg);
    }
    let split = if arg.starts_with("/+") || arg.starts_with("/-") {
        2
    } else if arg.starts_with('/') || arg.starts_with('-') {
        arg.find(':').map_or(0, |i| i + 1)
    } else {
        0
    };
    let (prefix, rest) = arg.split_at(split);
    if needs_quotes(prefix) {
        return Cow::Owned(quote_whole(arg));
    }
    Cow::Owned(format!("{prefix}{}", quote_whole(rest)))
}

/// `"…"` with the C runtime's escapes: a `"` becomes `\"`, and backslashes are doubled where
/// they precede a `"` (including the closing one).
fn quote_whole(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut backslashes = 0;
    for c in s.chars() {
        if c == '\\' {
            backslashes += 1;
        } else {
            if c == '"' {
                out.extend(std::iter::repeat_n('\\', backslashes + 1));
            }
            backslashes = 0;
        }
        out.push(c);
    }
    out.extend(std::iter::repeat_n('\\', backslashes));
    out.push('"');
    out
}

/// `[name='value',…]` for a collection element; every value checked with [`check_value`].
fn element(pairs: &[(&str, &str)]) -> Result<String, AppCmdError> {
    let mut out = String::from("[");
    for (i, (name, value)) in pairs.iter().enumerate() {
        check_value(name, value)?;
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{name}='{value}'"));
    }
    out.push(']');
    Ok(out)
}

/// A `<fastCgi><application>` as iiswsgi wants it registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastCgiApplication {
    /// `fullPath`: the iiswsgi executable, unquoted.
    pub full_path: String,
    /// `arguments`: `run --manifest …\iiswsgi.toml`.
    pub arguments: String,
    /// Every other attribute, IIS names, in the order they are written.
    pub attributes: Vec<(String, String)>,
    /// `<environmentVariables>`, in order.
    pub environment: Vec<(String, String)>,
}

impl FastCgiApplication {
    /// The registration for `full_path`/`arguments` with the manifest's `[iis.fastcgi]`
    /// values; `monitor_changes_to` is the absolute path of the watched file, if any.
    pub fn new(
        full_path: &str,
        arguments: &str,
        fastcgi: &FastCgi,
        monitor_changes_to: Option<String>,
        environment: Vec<(String, String)>,
    ) -> Self {
        let mut attributes: Vec<(String, String)> = fastcgi
            .attributes()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        if let Some(m) = monitor_changes_to {
            attributes.push(("monitorChangesTo".into(), m));
        }
        Self {
            full_path: full_path.to_string(),
            arguments: arguments.to_string(),
            attributes,
            environment,
        }
    }

    /// `fullPath|arguments`, what the handler's `scriptProcessor` must say.
    pub fn script_processor(&self) -> String {
        format!("{}|{}", self.full_path, self.arguments)
    }

    /// Whether `registered` has this key. IIS's own comparison is (unverified); iiswsgi
    /// compares case-insensitively, so `C:\x` and `c:\X` count as one registration.
    pub fn same_key(&self, registered: &RegisteredApplication) -> bool {
        self.full_path.eq_ignore_ascii_case(&registered.full_path)
            && self.arguments.eq_ignore_ascii_case(&registered.arguments)
    }

    /// What differs between this and `registered` (same key assumed): attribute values
    /// (a missing attribute has IIS's default) and environment variables.
    pub fn differences(&self, registered: &RegisteredApplication) -> Vec<Difference> {
        let mut out = Vec::new();
        for (name, want) in &self.attributes {
            let have = registered
                .attribute(name)
                .map(str::to_string)
                .or_else(|| iis_default(name).map(str::to_string))
                .unwrap_or_default();
            if !want.eq_ignore_ascii_case(&have) {
                out.push(Difference {
                    what: name.clone(),
                    want: want.clone(),
                    have: Some(have),
                });
            }
        }
        for (name, want) in &self.environment {
            let have = registered
                .environment
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone());
            if have.as_deref() != Some(want.as_str()) {
                out.push(Difference {
                    what: format!("environment variable {name}"),
                    want: want.clone(),
                    have,
                });
            }
        }
        for (name, value) in &registered.environment {
            if !self
                .environment
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                out.push(Difference {
                    what: format!("environment variable {name}"),
                    want: String::new(),
                    have: Some(value.clone()),
                });
            }
        }
        out
    }
}

/// One attribute or variable whose registered value is not the wanted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The attribute name, or `environment variable NAME`.
    pub what: String,
    /// The wanted value (empty: should not be there).
    pub want: String,
    /// The registered value (`None`: absent).
    pub have: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.have {
            Some(have) => write!(f, "{} is `{have}`, want `{}`", self.what, self.want),
            None => write!(f, "{} is missing, want `{}`", self.what, self.want),
        }
    }
}

/// A handler mapping (`system.webServer/handlers/add`): the very element the web.config template
/// renders, so the registration and the file cannot disagree (their `scriptProcessor` must match
/// character for character, or IIS answers 0x80070585).
pub use crate::deploy::HandlerMapping;

/// Which appcmd, and which applicationHost.config it edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCmd {
    program: String,
    apphost_config: Option<String>,
    express: bool,
}

impl AppCmd {
    /// Full IIS: `%windir%\system32\inetsrv\appcmd.exe` (pass the resolved path when running).
    pub fn iis(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            apphost_config: None,
            express: false,
        }
    }

    /// IIS Express: its own appcmd, and `/apphostconfig:<file>` on every command when a
    /// config file is named (IIS Express keeps one per user, or one per Visual Studio solution).
    pub fn express(program: impl Into<String>, apphost_config: Option<String>) -> Self {
        Self {
            program: program.into(),
            apphost_config,
            express: true,
        }
    }

    /// Whether this is IIS Express.
    pub fn is_express(&self) -> bool {
        self.express
    }

    /// The appcmd executable.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The applicationhost.config IIS Express is pointed at, if any.
    pub fn apphost_config(&self) -> Option<&str> {
        self.apphost_config.as_deref()
    }

    fn command(&self, mut args: Vec<String>) -> Result<CommandLine, AppCmdError> {
        if let Some(config) = &self.apphost_config {
            check_value("the applicationhost.config path", config)?;
            args.push(format!("/apphostconfig:{config}"));
        }
        Ok(CommandLine::new(self.program.clone(), args))
    }

    fn key(full_path: &str, arguments: &str) -> Result<String, AppCmdError> {
        element(&[("fullPath", full_path), ("arguments", arguments)])
    }

    /// `set config -section:system.webServer/fastCgi /+"[fullPath='F',arguments='A',…]" /commit:apphost`.
    pub fn add_fastcgi(&self, app: &FastCgiApplication) -> Result<CommandLine, AppCmdError> {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("fullPath", app.full_path.as_str()),
            ("arguments", app.arguments.as_str()),
        ];
        pairs.extend(app.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.command(vec![
            "set".into(),
            "config".into(),
            format!("-section:{FASTCGI_SECTION}"),
            format!("/+{}", element(&pairs)?),
            "/commit:apphost".into(),
        ])
    }

    /// `set config -section:system.webServer/fastCgi /+"[fullPath='F',arguments='A'].environmentVariables.[name='N',value='V']" /commit:apphost`.
    pub fn add_fastcgi_environment(
        &self,
        full_path: &str,
        arguments: &str,
        name: &str,
        value: &str,
    ) -> Result<CommandLine, AppCmdError> {
        self.command(vec![
            "set".into(),
            "config".into(),
            format!("-section:{FASTCGI_SECTION}"),
            format!(
                "/+{}.environmentVariables.{}",
                Self::key(full_path, arguments)?,
                element(&[("name", name), ("value", value)])?
            ),
            "/commit:apphost".into(),
        ])
    }

    /// `set config -section:system.webServer/fastCgi /-"[fullPath='F',arguments='A']" /commit:apphost`.
    /// Pass the key exactly as registered (read from [`AppCmd::list_fastcgi`]).
    pub fn remove_fastcgi(
        &self,
        full_path: &str,
        arguments: &str,
    ) -> Result<CommandLine, AppCmdError> {
        self.command(vec![
            "set".into(),
            "config".into(),
            format!("-section:{FASTCGI_SECTION}"),
            format!("/-{}", Self::key(full_path, arguments)?),
            "/commit:apphost".into(),
        ])
    }

    /// `list config -section:system.webServer/fastCgi /xml`; parse with [`parse_fastcgi_list`].
    pub fn list_fastcgi(&self) -> Result<CommandLine, AppCmdError> {
        self.command(vec![
            "list".into(),
            "config".into(),
            format!("-section:{FASTCGI_SECTION}"),
            "/xml".into(),
        ])
    }

    /// `set config "Site/app" -section:system.webServer/handlers /+"[name='…',…]"`: appcmd
    /// writes it into the web.config of that location.
    pub fn add_handler(
        &self,
        location: &str,
        handler: &HandlerMapping,
    ) -> Result<CommandLine, AppCmdError> {
        check_value("the IIS location", location)?;
        let limit = handler.response_buffer_limit.to_string();
        let pairs = [
            ("name", handler.name.as_str()),
            ("path", handler.path.as_str()),
            ("verb", handler.verb.as_str()),
            ("modules", "FastCgiModule"),
            ("scriptProcessor", handler.script_processor.as_str()),
            ("resourceType", handler.resource_type.as_str()),
            ("requireAccess", handler.require_access.as_str()),
            ("responseBufferLimit", limit.as_str()),
        ];
        self.command(vec![
            "set".into(),
            "config".into(),
            location.to_string(),
            format!("-section:{HANDLERS_SECTION}"),
            format!("/+{}", element(&pairs)?),
        ])
    }

    /// `set config "Site/app" -section:system.webServer/handlers /-"[name='…']"`.
    pub fn remove_handler(&self, location: &str, name: &str) -> Result<CommandLine, AppCmdError> {
        check_value("the IIS location", location)?;
        self.command(vec![
            "set".into(),
            "config".into(),
            location.to_string(),
            format!("-section:{HANDLERS_SECTION}"),
            format!("/-{}", element(&[("name", name)])?),
        ])
    }

    /// `list vdir /xml`: every virtual directory with its physical path ([`parse_vdirs`]).
    pub fn list_vdirs(&self) -> Result<CommandLine, AppCmdError> {
        self.command(vec!["list".into(), "vdir".into(), "/xml".into()])
    }

    /// `list app /xml`: every application with its app pool ([`parse_apps`]).
    pub fn list_apps(&self) -> Result<CommandLine, AppCmdError> {
        self.command(vec!["list".into(), "app".into(), "/xml".into()])
    }
}

/// A `<fastCgi><application>` read from `list config /xml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisteredApplication {
    /// `fullPath` as registered.
    pub full_path: String,
    /// `arguments` as registered (empty when absent).
    pub arguments: String,
    /// Every other attribute, as written.
    pub attributes: Vec<(String, String)>,
    /// `<environmentVariables>`.
    pub environment: Vec<(String, String)>,
}

impl RegisteredApplication {
    /// An attribute's value (name compared case-insensitively).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// An attribute's value, or IIS's default when absent.
    pub fn effective(&self, name: &str) -> Option<&str> {
        self.attribute(name).or_else(|| iis_default(name))
    }

    /// `fullPath|arguments`.
    pub fn script_processor(&self) -> String {
        format!("{}|{}", self.full_path, self.arguments)
    }
}

/// appcmd printed something that is not the XML it should have.
#[derive(Debug, thiserror::Error)]
#[error("cannot read appcmd's XML output at byte {position}")]
pub struct ListParseError {
    /// Byte offset of the problem.
    pub position: u64,
    /// The XML error.
    #[source]
    pub source: quick_xml::Error,
}

/// Largest appcmd output read (applicationHost.config sections are small).
pub const MAX_LIST_BYTES: usize = 16 << 20;

fn attrs_of(e: &BytesStart<'_>) -> Result<Vec<(String, String)>, quick_xml::Error> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(quick_xml::Error::from)?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a.unescape_value()?.into_owned();
        out.push((key, value));
    }
    Ok(out)
}

/// Walks `xml` and calls `visit(local name, attributes, depth)` for every start or empty tag.
fn walk(
    xml: &str,
    mut visit: impl FnMut(&str, Vec<(String, String)>, usize),
) -> Result<(), ListParseError> {
    let mut end = xml.len().min(MAX_LIST_BYTES);
    while !xml.is_char_boundary(end) {
        end -= 1;
    }
    let xml = &xml[..end];
    let xml = xml.trim_start_matches('\u{feff}');
    let mut reader = Reader::from_str(xml);
    let mut depth = 0usize;
    loop {
        let event = reader.read_event().map_err(|source| ListParseError {
            position: reader.error_position(),
            source,
        })?;
        let wrap = |source: quick_xml::Error| ListParseError {
            position: 0,
            source,
        };
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                visit(&name, attrs_of(&e).map_err(wrap)?, depth);
                depth += 1;
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                visit(&name, attrs_of(&e).map_err(wrap)?, depth);
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// Parses `appcmd list config -section:system.webServer/fastCgi /xml`: every `<application>`
/// with its attributes and `<environmentVariable>` children, whatever wraps them.
pub fn parse_fastcgi_list(xml: &str) -> Result<Vec<RegisteredApplication>, ListParseError> {
    let mut apps: Vec<RegisteredApplication> = Vec::new();
    let mut app_depth: Option<usize> = None;
    walk(xml, |name, attrs, depth| {
        if app_depth.is_some_and(|d| depth <= d) {
            app_depth = None;
        }
        if name.eq_ignore_ascii_case("application")
            && attrs
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("fullPath"))
        {
            let mut app = RegisteredApplication::default();
            for (k, v) in attrs {
                if k.eq_ignore_ascii_case("fullPath") {
                    app.full_path = v;
                } else if k.eq_ignore_ascii_case("arguments") {
                    app.arguments = v;
                } else {
                    app.attributes.push((k, v));
                }
            }
            apps.push(app);
            app_depth = Some(depth);
        } else if name.eq_ignore_ascii_case("environmentVariable")
            && app_depth.is_some()
            && let Some(app) = apps.last_mut()
        {
            let get = |key: &str| {
                attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v.clone())
            };
            if let Some(n) = get("name") {
                app.environment.push((n, get("value").unwrap_or_default()));
            }
        }
    })?;
    Ok(apps)
}

/// Parses the records of `appcmd list vdir /xml` or `list app /xml` (`<VDIR …/>`, `<APP …/>`):
/// one map per record, attribute names lower-cased.
pub fn parse_records(
    xml: &str,
    record: &str,
) -> Result<Vec<BTreeMap<String, String>>, ListParseError> {
    let mut out = Vec::new();
    walk(xml, |name, attrs, _| {
        if name.eq_ignore_ascii_case(record) {
            out.push(
                attrs
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect(),
            );
        }
    })?;
    Ok(out)
}

/// A virtual directory: which IIS application serves which folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualDirectory {
    /// `APP.NAME`: `Site/app` (the root app is `Site/`).
    pub app: String,
    /// `path` of the vdir inside its app (`/` for the app's own folder).
    pub path: String,
    /// `physicalPath` as configured (may hold `%SystemDrive%`).
    pub physical_path: String,
}

/// Parses `appcmd list vdir /xml` (attribute names as IIS 7.5–10 print them; unverified on
/// other versions, so lookups are case-insensitive and tolerate missing ones).
pub fn parse_vdirs(xml: &str) -> Result<Vec<VirtualDirectory>, ListParseError> {
    Ok(parse_records(xml, "VDIR")?
        .into_iter()
        .filter_map(|r| {
            Some(VirtualDirectory {
                app: r.get("app.name")?.clone(),
                path: r.get("path").cloned().unwrap_or_else(|| "/".into()),
                physical_path: r.get("physicalpath")?.clone(),
            })
        })
        .collect())
}

/// An IIS application and its app pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IisApp {
    /// `APP.NAME`: `Site/app`.
    pub name: String,
    /// The app pool (`APPPOOL.NAME`).
    pub app_pool: String,
}

/// Parses `appcmd list app /xml` (the pool is `APPPOOL.NAME`, or `applicationPool` on some
/// versions; unverified).
pub fn parse_apps(xml: &str) -> Result<Vec<IisApp>, ListParseError> {
    Ok(parse_records(xml, "APP")?
        .into_iter()
        .filter_map(|r| {
            Some(IisApp {
                name: r.get("app.name")?.clone(),
                app_pool: r
                    .get("apppool.name")
                    .or_else(|| r.get("applicationpool"))?
                    .clone(),
            })
        })
        .collect())
}

/// `Site/app` from an `APP.NAME`: IIS lists the root app as `Site/`; appcmd takes `Site/` or
/// `Site` for it, and `Site/app` (no trailing `/`) otherwise.
pub fn location_of(app_name: &str) -> &str {
    match app_name.strip_suffix('/') {
        Some(site) if !site.contains('/') => app_name,
        Some(trimmed) => trimmed,
        None => app_name,
    }
}

#[cfg(test)]
mod tests;
