//! Stage two of reading a manifest: raw values to the validated [`Manifest`], defaults applied.
//!
//! Every check runs even after an earlier one failed, so one run reports every problem; each
//! diagnostic points at the offending value and says how to fix it. A value placed by
//! `iiswsgi init` as a `TODO` gets one "fill this in" error and no other. The only I/O is the
//! optional existence check of files the manifest names, when a base folder is given.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use globset::{GlobSet, GlobSetBuilder};
use regex::Regex;

use super::diagnostic::{Diagnostic, SourceFile};
use super::load::{self, Parsed};
use super::raw::{self, Spanned};
use super::*;

/// Reads `source` into a [`Manifest`]; `base` enables file-existence checks.
pub(super) fn validate(
    source: &SourceFile,
    path: &Path,
    base: Option<&Path>,
) -> Result<Manifest, ManifestError> {
    let mut parsed = load::parse(source);
    let mut v = Validator {
        src: source,
        diags: std::mem::take(&mut parsed.diagnostics),
        todo: BTreeSet::new(),
        removed: std::mem::take(&mut parsed.removed),
        base: base.map(Path::to_path_buf),
    };
    let manifest = if parsed.syntax_failed {
        None
    } else {
        v.todo = load::todo_spans(source);
        for &at in &v.todo {
            let end = source.text()[at..]
                .find('\n')
                .map_or(source.text().len(), |i| at + i);
            v.diags.push(
                Diagnostic::error(source, at..end, "this value is a placeholder left by `iiswsgi init`")
                    .with_help("replace the TODO with the real value (the comment above it explains what goes here)"),
            );
        }
        v.manifest(path, &parsed)
    };
    let mut diags = v.diags;
    diags.sort_by_key(|d| (d.span.as_ref().map_or(0, |s| s.start), d.severity));
    match manifest {
        Some(mut m) if !diags.iter().any(Diagnostic::is_error) => {
            m.warnings = diags;
            Ok(m)
        }
        _ => Err(ManifestError::Invalid {
            path: path.to_path_buf(),
            diagnostics: diags,
        }),
    }
}

struct Validator<'s> {
    src: &'s SourceFile,
    diags: Vec<Diagnostic>,
    /// Starts of string values that are `TODO` placeholders (already reported).
    todo: BTreeSet<usize>,
    /// Keys dropped for a type error (already reported).
    removed: BTreeSet<String>,
    base: Option<PathBuf>,
}

type Sp<T> = Spanned<T>;

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>, help: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(self.src, span, message).with_help(help));
    }

    fn warn(&mut self, span: Range<usize>, message: impl Into<String>, help: impl Into<String>) {
        self.diags
            .push(Diagnostic::warning(self.src, span, message).with_help(help));
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn is_todo(&self, s: &Sp<String>) -> bool {
        self.todo.contains(&s.span().start)
    }

    /// Where "missing key" errors point: the section header, else the start of the file.
    fn header_span(&self, section: &str) -> Range<usize> {
        let text = self.src.text();
        let needle = format!("[{section}]");
        text.find(&needle)
            .map(|i| i..i + needle.len())
            .unwrap_or(0..0)
    }

    fn missing(&mut self, section: &str, key: &str, example: &str) {
        if self.removed.contains(&format!("{section}.{key}")) {
            return;
        }
        let span = self.header_span(section);
        let msg = format!("missing required key `{section}.{key}`");
        self.error(
            span,
            msg,
            format!("add `{key} = {example}` under `[{section}]`"),
        );
    }

    fn manifest(&mut self, path: &Path, parsed: &Parsed) -> Option<Manifest> {
        let r = &parsed.raw;
        let app = match &r.app {
            Some(a) => self.app(a),
            None => {
                if !parsed.failed.contains("app") {
                    self.error(
                        0..0,
                        "missing the `[app]` section",
                        "start the file with:\n[app]\nname = \"MyApp\"\nversion = \"1.0.0\"",
                    );
                }
                None
            }
        };
        let wsgi = match &r.wsgi {
            Some(w) => self.wsgi(w),
            None => {
                if !parsed.failed.contains("wsgi") {
                    self.error(
                        0..0,
                        "missing the `[wsgi]` section",
                        "add:\n[wsgi]\napp = \"module:callable\"   # e.g. \"hello:app\" for app = Flask(...) in hello.py",
                    );
                }
                None
            }
        };
        let name = app.as_ref().map(|a| a.name.clone());
        let iis = self.iis(r.iis.as_ref(), name.as_ref());
        let package = self.package(r.package.as_ref());
        let parameters = self.parameters(r.parameters.as_deref().unwrap_or(&[]));
        let feed = self.feed(r.feed.as_ref());
        let run = self.run(r.run.as_ref());
        if let (Some(app), Some(base)) = (&app, self.base.clone()) {
            self.files_exist(r, app, package.as_ref(), &base);
        }
        Some(Manifest {
            path: path.to_path_buf(),
            app: app?,
            wsgi: wsgi?,
            iis: iis?,
            package: package?,
            parameters,
            feed,
            run,
            warnings: Vec::new(),
        })
    }

    // ---------------------------------------------------------------- [app]

    fn app(&mut self, a: &raw::RawApp) -> Option<App> {
        let name = match &a.name {
            None => {
                self.missing("app", "name", "\"MyApp\"");
                None
            }
            Some(n) if self.is_todo(n) => None,
            Some(n) => self.app_name(n),
        };
        let version = match &a.version {
            None => {
                self.missing("app", "version", "\"1.0.0\"");
                None
            }
            Some(v) if self.is_todo(v) => None,
            Some(v) => self.version(v),
        };
        let title = self.text(a.title.as_ref(), "app.title");
        let description = self.text(a.description.as_ref(), "app.description");
        let author = self.text(a.author.as_ref(), "app.author");
        let license = self.text(a.license.as_ref(), "app.license");
        let license_url = a
            .license_url
            .as_ref()
            .and_then(|u| self.url(u, "app.license-url"));
        let homepage_url = a
            .homepage_url
            .as_ref()
            .and_then(|u| self.url(u, "app.homepage-url"));
        let help_url = a
            .help_url
            .as_ref()
            .and_then(|u| self.url(u, "app.help-url"));
        let icon = a.icon.as_ref().and_then(|s| self.asset(s, "app.icon"));
        let screenshot = a
            .screenshot
            .as_ref()
            .and_then(|s| self.asset(s, "app.screenshot"));
        let name = name?;
        Some(App {
            title: title.unwrap_or_else(|| name.as_str().to_string()),
            name,
            version: version?,
            description,
            author,
            license,
            license_url,
            homepage_url,
            help_url,
            icon,
            screenshot,
        })
    }

    fn app_name(&mut self, n: &Sp<String>) -> Option<AppName> {
        match AppName::new(n.get()) {
            Ok(name) => {
                if let Some(id) = MICROSOFT_PRODUCT_IDS
                    .iter()
                    .find(|id| id.eq_ignore_ascii_case(name.as_str()))
                {
                    self.warn(
                        n.span(),
                        format!("`app.name` {name:?} is also a Microsoft WebPI productId (`{id}`)"),
                        "WebPI productIds are global across feeds; a collision breaks installs. Add a suffix such as `IISApp`",
                    );
                }
                Some(name)
            }
            Err(why) => {
                let suggestion = AppName::sanitize(n.get())
                    .map(|s| format!("; try `name = \"{s}\"`"))
                    .unwrap_or_default();
                self.error(
                    n.span(),
                    format!("`app.name` {why}"),
                    format!(
                        "the name is the IIS folder, the zip's top folder and the WebPI productId ([A-Za-z0-9_] only, starting with a letter){suggestion}"
                    ),
                );
                None
            }
        }
    }

    fn version(&mut self, v: &Sp<String>) -> Option<Version> {
        static PEP440: OnceLock<Regex> = OnceLock::new();
        static SEMVER: OnceLock<Regex> = OnceLock::new();
        let pep440 = PEP440.get_or_init(|| {
            regex(r"^(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?(?:\+[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*)?$")
        });
        let semver = SEMVER.get_or_init(|| {
            regex(r"^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$")
        });
        let s = v.get();
        if pep440.is_match(s) || semver.is_match(s) {
            return Some(Version(s.clone()));
        }
        let hint = if let Some(rest) = s.strip_prefix(['v', 'V']).filter(|r| pep440.is_match(r)) {
            format!("drop the leading `v`: `version = \"{rest}\"`")
        } else {
            "write a PEP 440 version (`1.2.0`, `1.2.0rc1`, `1.2.0.post1`, `1.2.0.dev3`) or a SemVer one (`1.2.0-beta.1`); it becomes part of the zip's file name".to_string()
        };
        self.error(
            v.span(),
            format!("`app.version` is not a PEP 440 or SemVer version: {s:?}"),
            hint,
        );
        None
    }

    /// Optional free text: trimmed; an empty string counts as absent (with a warning).
    fn text(&mut self, s: Option<&Sp<String>>, key: &str) -> Option<String> {
        let s = s?;
        if self.is_todo(s) {
            return None;
        }
        if s.get().trim().is_empty() {
            self.warn(
                s.span(),
                format!("`{key}` is empty"),
                "remove the line or fill it in",
            );
            return None;
        }
        if let Some(c) = s
            .get()
            .chars()
            .find(|c| c.is_control() && *c != '\n' && *c != '\t')
        {
            self.error(
                s.span(),
                format!("`{key}` contains {}", describe_char(c)),
                "remove control characters; they are not allowed in XML",
            );
            return None;
        }
        Some(s.get().trim().to_string())
    }

    fn url(&mut self, u: &Sp<String>, key: &str) -> Option<HttpUrl> {
        if self.is_todo(u) {
            return None;
        }
        match check_http_url(u.get()) {
            Ok(()) => Some(HttpUrl(u.get().clone())),
            Err(why) => {
                self.error(
                    u.span(),
                    format!("`{key}` is not an absolute http(s) URL: {why}"),
                    "write the full address, e.g. \"https://example.com/my-app\"",
                );
                None
            }
        }
    }

    fn asset(&mut self, s: &Sp<String>, key: &str) -> Option<Asset> {
        if self.is_todo(s) {
            return None;
        }
        if s.get().contains("://") {
            self.url(s, key).map(Asset::Url)
        } else {
            self.rel_path(s, key, "the manifest's folder")
                .map(Asset::File)
        }
    }

    /// A path inside the app (or the manifest's folder): relative, `/`, no `..`, Windows-valid.
    fn rel_path(&mut self, s: &Sp<String>, key: &str, inside: &str) -> Option<RelPath> {
        if self.is_todo(s) {
            return None;
        }
        match check_rel_path(s.get()) {
            Ok(p) => Some(p),
            Err((why, help)) => {
                let help = help.unwrap_or_else(|| {
                    format!(
                        "paths are relative to {inside}, use `/` between folders and stay inside it"
                    )
                });
                self.error(s.span(), format!("`{key}` {why}"), help);
                None
            }
        }
    }

    fn int(
        &mut self,
        v: Option<&Sp<i64>>,
        key: &str,
        range: (i64, i64),
        default: i64,
        why: &str,
    ) -> Option<i64> {
        let Some(v) = v else {
            return Some(default);
        };
        let n = *v.get();
        if n < range.0 || n > range.1 {
            self.error(
                v.span(),
                format!(
                    "`{key}` must be between {} and {}, found {n}",
                    range.0, range.1
                ),
                format!("{why}; the default is {default}"),
            );
            return None;
        }
        Some(n)
    }

    /// A non-empty string without characters that break appcmd or XML quoting.
    fn attr_text(&mut self, s: &Sp<String>, key: &str) -> Option<String> {
        if self.is_todo(s) {
            return None;
        }
        let t = s.get();
        if t.trim().is_empty() {
            self.error(
                s.span(),
                format!("`{key}` must not be empty"),
                "remove the line to use the default",
            );
            return None;
        }
        if let Some(c) = t
            .chars()
            .find(|c| *c == '\'' || *c == '"' || c.is_control())
        {
            self.error(
                s.span(),
                format!("`{key}` must not contain {}", describe_char(c)),
                "appcmd takes values in single quotes and cannot escape quotes; choose a value without them",
            );
            return None;
        }
        Some(t.clone())
    }

    /// Compiles a regex; reports it when it does not compile. `dotnet` regexes are applied by
    /// MSDeploy with .NET's engine: constructs .NET has and Rust's `regex` lacks (look-around,
    /// backreferences) get a warning that they were not checked, not an error.
    fn compile_regex(&mut self, s: &Sp<String>, key: &str, dotnet: bool) -> Option<Regex> {
        self.check_regex(s, key, dotnet)
            .then(|| Regex::new(s.get()).ok())
            .flatten()
    }

    /// Like [`Self::compile_regex`], returning whether the pattern is acceptable.
    fn check_regex(&mut self, s: &Sp<String>, key: &str, dotnet: bool) -> bool {
        let e = match Regex::new(s.get()) {
            Ok(_) => return true,
            Err(e) => e.to_string(),
        };
        if dotnet && (e.contains("look-around") || e.contains("backreferences")) {
            self.push(
                Diagnostic::warning(
                    self.src,
                    s.span(),
                    format!("`{key}` uses a .NET feature iiswsgi cannot check"),
                )
                .with_note(e)
                .with_help("MSDeploy will apply it with .NET's engine; test the install to be sure it matches"),
            );
            return true;
        }
        let help = if dotnet {
            "MSDeploy applies .NET regular expressions; iiswsgi checks them with Rust's `regex` syntax, the common subset. In TOML, single quotes keep backslashes literal: '\\\\settings\\.py$'"
        } else {
            "escape literal dots as `\\.`; in TOML, single quotes keep backslashes literal: '.*\\.py$'"
        };
        self.push(
            Diagnostic::error(
                self.src,
                s.span(),
                format!("`{key}` is not a valid regular expression"),
            )
            .with_note(e)
            .with_help(help),
        );
        false
    }

    /// A light XPath 1.0 sanity check: balanced brackets, parentheses and quotes.
    fn check_xpath(&mut self, s: &Sp<String>, key: &str) -> bool {
        match xpath_problem(s.get()) {
            None => true,
            Some(why) => {
                self.error(
                    s.span(),
                    format!("`{key}` is not a valid XPath: {why}"),
                    "XmlFile entries select nodes with XPath 1.0, e.g. \"/configuration/appSettings/add[@key='Mode']/@value\"",
                );
                false
            }
        }
    }

    // ---------------------------------------------------------------- [wsgi]

    fn wsgi(&mut self, w: &raw::RawWsgi) -> Option<Wsgi> {
        let app = match &w.app {
            None => {
                self.missing("wsgi", "app", "\"module:callable\"");
                None
            }
            Some(a) if self.is_todo(a) => None,
            Some(a) => self.wsgi_target(a),
        };
        let mut python_paths = Vec::new();
        for p in w.python_paths.iter().flatten() {
            if let Some(p) = self.rel_path(p, "wsgi.python-paths", "the app folder") {
                python_paths.push(p);
            }
        }
        let venv = w.venv.as_ref().and_then(|v| {
            if self.is_todo(v) {
                return None;
            }
            let s = v.get();
            if is_absolute_any(s) {
                Some(Venv::Absolute(s.clone()))
            } else {
                self.rel_path(v, "wsgi.venv", "the app folder")
                    .map(Venv::InApp)
            }
        });
        let python_version = w.python_version.as_ref().and_then(|v| {
            let parsed = v
                .get()
                .split_once('.')
                .and_then(|(a, b)| Some((a.parse::<u8>().ok()?, b.parse::<u8>().ok()?)))
                .filter(|(a, _)| *a == 3);
            if parsed.is_none() {
                self.error(
                    v.span(),
                    format!(
                        "`wsgi.python-version` must look like \"3.12\", found {:?}",
                        v.get()
                    ),
                    "give CPython's major.minor only, e.g. `python-version = \"3.12\"`",
                );
            }
            parsed
        });
        let reload = match &w.reload_regex {
            None => Some(Some(ReloadRegex {
                source: DEFAULT_RELOAD_REGEX.to_string(),
                regex: regex(&format!("^(?:{DEFAULT_RELOAD_REGEX})")),
            })),
            Some(s) if s.get().is_empty() => Some(None),
            Some(s) => self
                .compile_regex(s, "wsgi.reload-regex", false)
                .and_then(|_| Regex::new(&format!("^(?:{})", s.get())).ok())
                .map(|regex| {
                    Some(ReloadRegex {
                        source: s.get().clone(),
                        regex,
                    })
                }),
        };
        let mut environment = BTreeMap::new();
        for (k, v) in w.environment.iter().flatten() {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                self.error(
                    v.span(),
                    format!("environment variable name {k:?} is not valid"),
                    "names must be non-empty and contain no `=`",
                );
                continue;
            }
            if v.get().contains('\0') {
                self.error(
                    v.span(),
                    format!("environment variable `{k}` contains a NUL character"),
                    "remove it",
                );
                continue;
            }
            environment.insert(k.clone(), v.get().clone());
        }
        Some(Wsgi {
            app: app?,
            python_paths,
            venv,
            python_version,
            reload: reload?,
            environment,
        })
    }

    fn wsgi_target(&mut self, a: &Sp<String>) -> Option<WsgiTarget> {
        match parse_wsgi_target(a.get()) {
            Ok(t) => Some(t),
            Err(why) => {
                self.error(
                    a.span(),
                    format!("`wsgi.app` {why}"),
                    "write `module:callable` as gunicorn does: `hello:app` for `app = Flask(__name__)` in hello.py, `mysite.wsgi:application` for Django",
                );
                None
            }
        }
    }

    // ---------------------------------------------------------------- [iis]

    fn iis(&mut self, i: Option<&raw::RawIis>, name: Option<&AppName>) -> Option<Iis> {
        let default_i = raw::RawIis::default();
        let i = i.unwrap_or(&default_i);
        let placeholder = name.map_or("App", |n| n.as_str());
        let application_path = match &i.application_path {
            None => Some(format!("Default Web Site/{placeholder}")),
            Some(p) => self.application_path(p),
        };
        let handler = self.handler(i.handler.as_ref(), placeholder);
        let fastcgi = self.fastcgi(i.fastcgi.as_ref());
        let mut set_acl = Vec::new();
        let mut seen: HashMap<String, Range<usize>> = HashMap::new();
        for (n, acl) in i.set_acl.iter().flatten().enumerate() {
            if acl.path.is_none()
                && self
                    .removed
                    .contains(&format!("iis.set-acl[{}].path", n + 1))
            {
                continue;
            }
            if let Some(a) = self.set_acl(acl) {
                let key = a.path.as_str().to_ascii_lowercase();
                let span = acl.path.as_ref().map_or(0..0, Sp::span);
                if let Some(first) = seen.get(&key) {
                    let (line, _) = self.src.line_col(first.start);
                    self.error(
                        span,
                        format!("`iis.set-acl` path `{}` is listed twice", a.path),
                        format!("merge it with the entry on line {line} (paths compare case-insensitively on Windows)"),
                    );
                    continue;
                }
                seen.insert(key, span);
                set_acl.push(a);
            }
        }
        let rf = i.request_filtering.clone().unwrap_or_default();
        let max_len = self.int(
            rf.max_allowed_content_length.as_ref(),
            "iis.request-filtering.max-allowed-content-length",
            (0, u32::MAX as i64),
            30_000_000,
            "IIS stores it as a 32-bit unsigned number of bytes",
        );
        Some(Iis {
            application_path: application_path?,
            allow_site_root: i.allow_site_root.unwrap_or(false),
            handler: handler?,
            fastcgi: fastcgi?,
            set_acl,
            request_filtering: RequestFiltering {
                allow_double_escaping: rf.allow_double_escaping.unwrap_or(true),
                max_allowed_content_length: max_len? as u32,
            },
        })
    }

    fn application_path(&mut self, p: &Sp<String>) -> Option<String> {
        if self.is_todo(p) {
            return None;
        }
        let s = p.get();
        let problem = if s.trim().is_empty() {
            Some("must name a site, e.g. \"Default Web Site/MyApp\"".to_string())
        } else if s.contains('\\') {
            Some("uses `\\`; IIS application paths use `/`".to_string())
        } else if s.starts_with('/') || s.ends_with('/') {
            Some("must not start or end with `/`".to_string())
        } else if s.split('/').any(|seg| seg.trim().is_empty()) {
            Some("has an empty segment".to_string())
        } else {
            s.chars()
                .find(|c| *c == '\'' || *c == '"' || c.is_control())
                .map(|c| format!("must not contain {}", describe_char(c)))
        };
        match problem {
            None => Some(s.clone()),
            Some(why) => {
                self.error(
                    p.span(),
                    format!("`iis.application-path` {why}"),
                    "write `Site Name/app/path` as IIS Manager shows it, e.g. \"Default Web Site/MyApp\"",
                );
                None
            }
        }
    }

    fn handler(&mut self, h: Option<&raw::RawHandler>, name: &str) -> Option<Handler> {
        let default_h = raw::RawHandler::default();
        let h = h.unwrap_or(&default_h);
        let hname = match &h.name {
            None => Some(format!("iiswsgi-{name}")),
            Some(n) => self.attr_text(n, "iis.handler.name"),
        };
        let path = match &h.path {
            None => Some("*".to_string()),
            Some(p) => self.attr_text(p, "iis.handler.path"),
        };
        let mut verbs = Vec::new();
        let mut verbs_ok = true;
        for v in h.verbs.iter().flatten() {
            let s = v.get();
            let ok = s == "*"
                || (!s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c == '-'));
            if !ok {
                self.error(
                    v.span(),
                    format!("`iis.handler.verbs` entry {s:?} is not an HTTP verb"),
                    "use upper-case methods such as \"GET\", \"POST\", or \"*\" for all",
                );
                verbs_ok = false;
            } else {
                verbs.push(s.clone());
            }
        }
        if let Some(list) = &h.verbs {
            if list.is_empty() {
                let span = self.header_span("iis.handler");
                self.error(
                    span,
                    "`iis.handler.verbs` is empty",
                    "list at least one verb, or remove the key to accept all (`*`)",
                );
                verbs_ok = false;
            } else if verbs.len() > 1
                && verbs.iter().any(|v| v == "*")
                && let Some(v) = list.iter().find(|v| v.get() == "*")
            {
                self.error(
                    v.span(),
                    "`*` already means every verb",
                    "use either \"*\" alone or a list of verbs",
                );
                verbs_ok = false;
            }
        } else {
            verbs.push("*".to_string());
        }
        let rbl = self.int(
            h.response_buffer_limit.as_ref(),
            "iis.handler.response-buffer-limit",
            (0, u32::MAX as i64),
            0,
            "IIS stores it as a 32-bit unsigned number of bytes; 0 streams responses",
        );
        Some(Handler {
            name: hname?,
            path: path?,
            verbs: if verbs_ok { verbs } else { return None },
            response_buffer_limit: rbl? as u32,
            require_access: h.require_access.unwrap_or(RequireAccess::Script),
            resource_type: h.resource_type.unwrap_or(HandlerResourceType::Unspecified),
        })
    }

    fn fastcgi(&mut self, f: Option<&raw::RawFastCgi>) -> Option<FastCgi> {
        use fastcgi_defaults as d;
        let default_f = raw::RawFastCgi::default();
        let f = f.unwrap_or(&default_f);
        const TIMEOUT: (i64, i64) = (10, 2_592_000);
        let max_instances = self.int(
            f.max_instances.as_ref(),
            "iis.fastcgi.max-instances",
            (0, 10_000),
            d::MAX_INSTANCES as i64,
            "IIS accepts 0-10000 (0 lets IIS decide)",
        );
        let imr = self.int(
            f.instance_max_requests.as_ref(),
            "iis.fastcgi.instance-max-requests",
            (1, 10_000_000),
            d::INSTANCE_MAX_REQUESTS as i64,
            "IIS accepts 1-10000000 requests per process",
        );
        let activity = self.int(
            f.activity_timeout.as_ref(),
            "iis.fastcgi.activity-timeout",
            TIMEOUT,
            d::ACTIVITY_TIMEOUT as i64,
            "IIS accepts 10-2592000 seconds (30 days)",
        );
        let request = self.int(
            f.request_timeout.as_ref(),
            "iis.fastcgi.request-timeout",
            TIMEOUT,
            d::REQUEST_TIMEOUT as i64,
            "IIS accepts 10-2592000 seconds (30 days)",
        );
        let idle = self.int(
            f.idle_timeout.as_ref(),
            "iis.fastcgi.idle-timeout",
            TIMEOUT,
            d::IDLE_TIMEOUT as i64,
            "IIS accepts 10-2592000 seconds (30 days)",
        );
        let signal = self.int(
            f.signal_before_terminate_seconds.as_ref(),
            "iis.fastcgi.signal-before-terminate-seconds",
            (0, 60),
            d::SIGNAL_BEFORE_TERMINATE_SECONDS as i64,
            "IIS accepts 0-60 seconds; non-zero lets iiswsgi finish the current request on shutdown",
        );
        let queue = self.int(
            f.queue_length.as_ref(),
            "iis.fastcgi.queue-length",
            (1, 100_000_000),
            d::QUEUE_LENGTH as i64,
            "IIS accepts 1-100000000 queued requests",
        );
        let rapid = self.int(
            f.rapid_fails_per_minute.as_ref(),
            "iis.fastcgi.rapid-fails-per-minute",
            (0, 1000),
            d::RAPID_FAILS_PER_MINUTE as i64,
            "IIS accepts 0-1000",
        );
        if let (Some(a), Some(r), Some(span)) =
            (activity, request, f.activity_timeout.as_ref().map(Sp::span))
            && a > r
        {
            self.warn(
                span,
                format!("`iis.fastcgi.activity-timeout` ({a}) is longer than `request-timeout` ({r})"),
                "the request timeout kills the process first, so the activity timeout never fires; make request-timeout at least as long",
            );
        }
        let monitor = f.monitor_changes_to.as_ref().and_then(|m| {
            if m.get().contains('%') {
                self.error(
                    m.span(),
                    "`iis.fastcgi.monitor-changes-to` must not contain `%`",
                    "IIS needs a literal path here; environment variables give an opaque 500",
                );
                return None;
            }
            self.rel_path(m, "iis.fastcgi.monitor-changes-to", "the app folder")
        });
        if f.monitor_changes_to.is_some() && monitor.is_none() {
            return None;
        }
        Some(FastCgi {
            max_instances: max_instances? as u32,
            instance_max_requests: imr? as u32,
            activity_timeout: activity? as u32,
            request_timeout: request? as u32,
            idle_timeout: idle? as u32,
            signal_before_terminate_seconds: signal? as u32,
            protocol: f.protocol.unwrap_or(Protocol::NamedPipe),
            queue_length: queue? as u32,
            rapid_fails_per_minute: rapid? as u32,
            stderr_mode: f.stderr_mode.unwrap_or(StderrMode::ReturnGeneric500),
            flush_named_pipe: f.flush_named_pipe.unwrap_or(false),
            monitor_changes_to: monitor,
        })
    }

    fn set_acl(&mut self, a: &raw::RawSetAcl) -> Option<SetAcl> {
        let path = match &a.path {
            None => {
                let span = a
                    .user
                    .as_ref()
                    .map(Sp::span)
                    .or_else(|| a.access.as_ref().and_then(|l| l.first()).map(Sp::span))
                    .unwrap_or_else(|| self.header_span("[iis.set-acl]"));
                self.error(
                    span,
                    "missing required key `path` in `[[iis.set-acl]]`",
                    "add `path = \"App_Data\"` (a folder relative to the app folder)",
                );
                None
            }
            Some(p) => self.rel_path(p, "iis.set-acl.path", "the app folder"),
        };
        let path = match path {
            Some(p) if p.as_str().is_empty() => {
                if let Some(span) = a.path.as_ref().map(Sp::span) {
                    self.error(
                        span,
                        "`iis.set-acl.path` names the app folder itself",
                        "name a sub-folder such as \"App_Data\"; granting write access to the whole app lets a compromised app rewrite its own code",
                    );
                }
                None
            }
            p => p,
        };
        let mut access = Vec::new();
        let mut ok = true;
        match &a.access {
            None => access.push("Modify"),
            Some(list) if list.is_empty() => {
                let span = a.path.as_ref().map_or(0..0, Sp::span);
                self.error(
                    span,
                    "`iis.set-acl.access` is empty",
                    "list rights such as [\"Modify\"], or remove the key for the default",
                );
                ok = false;
            }
            Some(list) => {
                for r in list {
                    match FILE_SYSTEM_RIGHTS
                        .iter()
                        .find(|k| k.eq_ignore_ascii_case(r.get()))
                    {
                        Some(k) => access.push(*k),
                        None => {
                            let help = match closest(r.get(), FILE_SYSTEM_RIGHTS) {
                                Some(s) => format!("did you mean `{s}`?"),
                                None => format!(
                                    "use .NET FileSystemRights names: {}",
                                    FILE_SYSTEM_RIGHTS.join(", ")
                                ),
                            };
                            self.error(
                                r.span(),
                                format!("`iis.set-acl.access` has an unknown right {:?}", r.get()),
                                help,
                            );
                            ok = false;
                        }
                    }
                }
            }
        }
        let user = match &a.user {
            None => Some(None),
            Some(u) => self.attr_text(u, "iis.set-acl.user").map(Some),
        };
        if !ok {
            return None;
        }
        Some(SetAcl {
            path: path?,
            access,
            user: user?,
            resource_type: a.resource_type.unwrap_or(AclResourceType::Directory),
        })
    }

    // ---------------------------------------------------------------- [package]

    fn package(&mut self, p: Option<&raw::RawPackage>) -> Option<Package> {
        let default_p = raw::RawPackage::default();
        let p = p.unwrap_or(&default_p);
        let root = match &p.root {
            None => Some(PathBuf::from(".")),
            Some(r) if self.is_todo(r) => None,
            Some(r) => {
                let s = r.get();
                if s.trim().is_empty() || is_absolute_any(s) {
                    self.error(
                        r.span(),
                        "`package.root` must be a relative folder",
                        "give the folder to package relative to this file, e.g. \".\" or \"src\"",
                    );
                    None
                } else {
                    Some(PathBuf::from(s.replace('\\', "/")))
                }
            }
        };
        let include_src: Vec<Sp<String>> = match &p.include {
            Some(list) => list.clone(),
            None => vec![Sp::new(0..0, "**".to_string())],
        };
        let include = self.globs(&include_src, "package.include");
        let mut exclude_src: Vec<Sp<String>> = Vec::new();
        if p.default_excludes.unwrap_or(true) {
            exclude_src.extend(
                DEFAULT_EXCLUDES
                    .iter()
                    .map(|s| Sp::new(0..0, s.to_string())),
            );
        }
        exclude_src.extend(p.exclude.iter().flatten().cloned());
        let exclude = self.globs(&exclude_src, "package.exclude");
        let requirements = p
            .requirements
            .as_ref()
            .and_then(|r| self.rel_path(r, "package.requirements", "`package.root`"));
        let mut post_install = Vec::new();
        for c in p.post_install.iter().flatten() {
            if self.is_todo(c) {
                continue;
            }
            if c.get().trim().is_empty() {
                self.error(
                    c.span(),
                    "`package.post-install` has an empty command",
                    "remove the empty string",
                );
            } else if c.get().contains('\0') || c.get().contains('\n') {
                self.error(
                    c.span(),
                    "`package.post-install` commands must be one line",
                    "split it into several list entries",
                );
            } else {
                post_install.push(c.get().clone());
            }
        }
        let attempts = self.int(
            p.install_wait_attempts.as_ref(),
            "package.install-wait-attempts",
            (1, 1000),
            60,
            "MSDeploy polls the post-install step this many times",
        );
        let interval = self.int(
            p.install_wait_interval_ms.as_ref(),
            "package.install-wait-interval-ms",
            (100, 600_000),
            5000,
            "milliseconds between MSDeploy's polls",
        );
        let (include, include_set) = include?;
        let (exclude, exclude_set) = exclude?;
        Some(Package {
            root: root?,
            include,
            exclude,
            requirements,
            post_install,
            install_wait_attempts: attempts? as u32,
            install_wait_interval_ms: interval? as u32,
            include_set,
            exclude_set,
        })
    }

    fn globs(&mut self, list: &[Sp<String>], key: &str) -> Option<(Vec<String>, GlobSet)> {
        let mut builder = GlobSetBuilder::new();
        let mut out = Vec::new();
        let mut ok = true;
        for g in list {
            if g.get().contains('\\') {
                self.error(
                    g.span(),
                    format!("`{key}` glob {:?} uses `\\`", g.get()),
                    format!(
                        "globs use `/` on every platform: {:?}",
                        g.get().replace('\\', "/")
                    ),
                );
                ok = false;
                continue;
            }
            let pattern = g.get().trim_end_matches('/');
            match globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
            {
                Ok(glob) => {
                    builder.add(glob);
                    out.push(g.get().clone());
                }
                Err(e) => {
                    self.push(
                        Diagnostic::error(
                            self.src,
                            g.span(),
                            format!("`{key}` has an invalid glob {:?}", g.get()),
                        )
                        .with_note(e.kind().to_string())
                        .with_help(
                            "globs use `*` (within a folder), `**` (any depth), `?` and `[abc]`",
                        ),
                    );
                    ok = false;
                }
            }
        }
        match builder.build() {
            Ok(set) if ok => Some((out, set)),
            _ => None,
        }
    }

    // ---------------------------------------------------------------- [[parameters]]

    fn parameters(&mut self, list: &[raw::RawParameter]) -> Vec<Parameter> {
        let mut out: Vec<(Parameter, Range<usize>)> = Vec::new();
        let mut by_name: HashMap<String, Range<usize>> = HashMap::new();
        for (i, p) in list.iter().enumerate() {
            let Some(name_sp) = &p.name else {
                if self
                    .removed
                    .contains(&format!("parameters[{}].name", i + 1))
                {
                    continue;
                }
                let span = param_anchor(p).unwrap_or_else(|| self.header_span("[parameters]"));
                self.error(
                    span,
                    "a `[[parameters]]` entry has no `name`",
                    "add `name = \"Site Title\"` (the name is also how other defaults reference it: `{Site Title}`)",
                );
                continue;
            };
            if self.is_todo(name_sp) {
                continue;
            }
            let name = name_sp.get().clone();
            let mut ok = true;
            if name.trim().is_empty() || name.trim() != name {
                self.error(
                    name_sp.span(),
                    "parameter `name` must be non-empty without leading or trailing spaces",
                    "e.g. `name = \"Site Title\"`",
                );
                ok = false;
            } else if let Some(c) = name
                .chars()
                .find(|c| matches!(c, '{' | '}' | ',' | '\'' | '"') || c.is_control())
            {
                self.error(
                    name_sp.span(),
                    format!("parameter name {name:?} must not contain {}", describe_char(c)),
                    "braces mark `{Name}` references and commas separate tags; use letters, digits and spaces",
                );
                ok = false;
            } else if name.eq_ignore_ascii_case(APPLICATION_PATH_PARAMETER) {
                self.error(
                    name_sp.span(),
                    format!("parameter name {name:?} is reserved"),
                    "iiswsgi generates the `Application Path` parameter from `[iis] application-path`; rename this one",
                );
                ok = false;
            }
            let key = name.to_lowercase();
            if let Some(first) = by_name.get(&key) {
                let (line, _) = self.src.line_col(first.start);
                self.error(
                    name_sp.span(),
                    format!("duplicate parameter name {name:?}"),
                    format!("parameter names are compared case-insensitively by MSDeploy; the first is on line {line}; rename one of them"),
                );
                ok = false;
            } else {
                by_name.insert(key, name_sp.span());
            }
            let description = self.text(p.description.as_ref(), "parameters.description");
            let tags = self.tags(p.tags.as_deref().unwrap_or(&[]));
            let default = p.default.as_ref().map(|d| d.get().clone());
            let validation = p.validation.as_ref().and_then(|v| self.validation(v));
            let validation_failed = p.validation.is_some() && validation.is_none();
            let mut entries = Vec::new();
            let mut entries_ok = true;
            for e in p.entries.iter().flatten() {
                match self.entry(e) {
                    Some(e) => entries.push(e),
                    None => entries_ok = false,
                }
            }
            let tags_ok = tags.is_some();
            let tags = tags.unwrap_or_default();
            if tags.contains(&"Hidden") && default.is_none() {
                self.error(
                    name_sp.span(),
                    format!("hidden parameter {name:?} has no `default`"),
                    "nobody is asked for a Hidden parameter's value, so MSDeploy needs a `default`",
                );
                ok = false;
            }
            if let (Some(v), Some(d), Some(dsp)) = (&validation, &default, &p.default)
                && !tags.contains(&"Hidden")
                && !d.contains('{')
                && let Err(why) = check_default(v, d)
            {
                self.error(
                    dsp.span(),
                    format!("the default {d:?} of parameter {name:?} fails its own validation: {why}"),
                    "change the default or the validation; the installer would reject the suggested value",
                );
                ok = false;
            }
            if ok && tags_ok && !validation_failed && entries_ok {
                out.push((
                    Parameter {
                        name,
                        description,
                        default,
                        tags,
                        validation,
                        entries,
                    },
                    name_sp.span(),
                ));
            }
        }
        self.references(list, &out);
        for (p, span) in &out {
            let referenced = out.iter().any(|(o, _)| {
                o.default
                    .as_deref()
                    .is_some_and(|d| references(d).any(|r| r.eq_ignore_ascii_case(&p.name)))
            });
            if p.entries.is_empty() && !referenced {
                self.warn(
                    span.clone(),
                    format!("parameter {:?} has no `entries`, so its value is not used", p.name),
                    "add `entries = [{ kind = \"TextFile\", scope = '\\\\settings\\.py$', match = 'SECRET = \"[^\"]*\"' }]` or reference it from another default as `{Name}`",
                );
            }
        }
        out.into_iter().map(|(p, _)| p).collect()
    }

    fn tags(&mut self, list: &[Sp<String>]) -> Option<Vec<&'static str>> {
        let mut out: Vec<&'static str> = Vec::new();
        let mut ok = true;
        for t in list {
            let s = t.get();
            if s.eq_ignore_ascii_case("IisApp") {
                self.error(
                    t.span(),
                    "the `IisApp` tag is reserved",
                    "iiswsgi writes the IisApp-tagged `Application Path` parameter itself; set its default with `[iis] application-path`",
                );
                ok = false;
                continue;
            }
            match PARAMETER_TAGS.iter().find(|k| k.eq_ignore_ascii_case(s)) {
                Some(k) if out.contains(k) => {
                    self.warn(
                        t.span(),
                        format!("tag `{k}` is listed twice"),
                        "remove the duplicate",
                    );
                }
                Some(k) => out.push(k),
                None => {
                    let help = if s.contains(',') || s.contains(' ') {
                        "give each tag as its own list item: tags = [\"Password\", \"New\"]"
                            .to_string()
                    } else {
                        match closest(s, PARAMETER_TAGS) {
                            Some(k) => format!("did you mean `{k}`?"),
                            None => format!("known tags: {}", PARAMETER_TAGS.join(", ")),
                        }
                    };
                    self.error(t.span(), format!("unknown parameter tag {s:?}"), help);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn validation(&mut self, v: &raw::RawValidation) -> Option<Validation> {
        let Some(kind) = &v.kind else {
            let span = v.value.as_ref().map_or(0..0, Sp::span);
            self.error(
                span,
                "parameter `validation` has no `kind`",
                "add `kind = \"RegularExpression\"`, \"Enumeration\", \"Boolean\" or \"None\"",
            );
            return None;
        };
        let k = *kind.get();
        let needs_value = matches!(
            k,
            ValidationKind::RegularExpression | ValidationKind::Enumeration
        );
        match (&v.value, needs_value) {
            (None, true) => {
                self.error(
                    kind.span(),
                    format!("validation kind `{k:?}` needs a `value`"),
                    if k == ValidationKind::Enumeration {
                        "add `value = \"small,medium,large\"` (the accepted choices, comma-separated)"
                    } else {
                        "add `value = '^[a-z0-9_]+$'` (the pattern the value must match)"
                    },
                );
                return None;
            }
            (Some(val), false) => {
                self.error(
                    val.span(),
                    format!("validation kind `{k:?}` takes no `value`"),
                    "remove `value`, or use kind \"RegularExpression\" / \"Enumeration\"",
                );
                return None;
            }
            _ => {}
        }
        if let Some(val) = &v.value {
            match k {
                ValidationKind::RegularExpression
                    if !self.check_regex(val, "parameters.validation.value", true) =>
                {
                    return None;
                }
                ValidationKind::Enumeration => {
                    let items: Vec<&str> = val.get().split(',').collect();
                    if items.iter().any(|i| i.is_empty()) {
                        self.error(
                            val.span(),
                            "enumeration `value` has an empty choice",
                            "list choices separated by single commas: \"a,b,c\"",
                        );
                        return None;
                    }
                    if items.iter().any(|i| i.trim() != *i) {
                        self.warn(
                            val.span(),
                            "enumeration `value` has spaces around commas",
                            "MSDeploy keeps the spaces as part of the choices; write \"a,b,c\"",
                        );
                    }
                }
                _ => {}
            }
        }
        Some(Validation {
            kind: k,
            value: v.value.as_ref().map(|s| s.get().clone()),
            allow_empty: v.allow_empty.unwrap_or(false),
        })
    }

    fn entry(&mut self, e: &raw::RawEntry) -> Option<Entry> {
        let anchor = e
            .kind
            .as_ref()
            .map(Sp::span)
            .or_else(|| e.scope.as_ref().map(Sp::span))
            .unwrap_or(0..0);
        let mut missing = Vec::new();
        if e.kind.is_none() {
            missing.push("kind");
        }
        if e.scope.is_none() {
            missing.push("scope");
        }
        if e.match_.is_none() {
            missing.push("match");
        }
        if !missing.is_empty() {
            self.error(
                anchor,
                format!("parameter entry is missing {}", missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")),
                "an entry needs all three: { kind = \"TextFile\", scope = '\\\\settings\\.py$', match = 'DEBUG = \\w+' }",
            );
            return None;
        }
        let (kind, scope, m) = (e.kind.as_ref()?, e.scope.as_ref()?, e.match_.as_ref()?);
        let mut ok = true;
        for (s, key) in [(scope, "scope"), (m, "match")] {
            if s.get().is_empty() {
                self.error(
                    s.span(),
                    format!("parameter entry `{key}` is empty"),
                    "MSDeploy requires a non-empty scope and match",
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        ok &= self.check_regex(scope, "parameters.entries.scope", true);
        match kind.get() {
            EntryKind::TextFile | EntryKind::ProviderPath => {
                ok &= self.check_regex(m, "parameters.entries.match", true);
            }
            EntryKind::XmlFile => {
                ok &= self.check_xpath(m, "parameters.entries.match");
            }
        }
        if matches!(kind.get(), EntryKind::TextFile | EntryKind::XmlFile) && ok {
            if scope.get().contains('/') {
                self.warn(
                    scope.span(),
                    "file scopes are matched against Windows paths, which use `\\`",
                    "write '\\\\web\\.config$' instead of '/web.config$'",
                );
            } else if !scope.get().ends_with('$') {
                self.warn(
                    scope.span(),
                    "file scope does not end with `$`",
                    "without `$` the scope also matches longer names (`settings.py.bak`)",
                );
            }
        }
        ok.then(|| Entry {
            kind: *kind.get(),
            scope: scope.get().clone(),
            match_: m.get().clone(),
        })
    }

    /// Every `{Name}` in a default resolves, and references have no cycle.
    fn references(&mut self, raw_list: &[raw::RawParameter], params: &[(Parameter, Range<usize>)]) {
        let mut known: Vec<String> = params.iter().map(|(p, _)| p.name.clone()).collect();
        known.push(APPLICATION_PATH_PARAMETER.to_string());
        // Names of raw entries that failed validation still count as declared, to avoid
        // cascading "unknown reference" errors.
        for p in raw_list {
            if let Some(n) = &p.name
                && !known.iter().any(|k| k.eq_ignore_ascii_case(n.get()))
            {
                known.push(n.get().clone());
            }
        }
        for p in raw_list {
            let Some(d) = &p.default else { continue };
            for r in references(d.get()) {
                if !known.iter().any(|k| k.eq_ignore_ascii_case(r)) {
                    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
                    let help = match closest(r, &refs) {
                        Some(k) => format!("did you mean `{{{k}}}`?"),
                        None => {
                            "reference a declared parameter by its name, e.g. `{Application Path}`"
                                .to_string()
                        }
                    };
                    self.error(
                        d.span(),
                        format!("the default refers to `{{{r}}}`, which is not a parameter"),
                        format!("{help} (MSDeploy would insert the text literally)"),
                    );
                }
            }
        }
        // Cycles, among validated parameters.
        let index: HashMap<String, usize> = params
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (p.name.to_lowercase(), i))
            .collect();
        let edges: Vec<Vec<usize>> = params
            .iter()
            .map(|(p, _)| {
                p.default
                    .as_deref()
                    .map(|d| {
                        references(d)
                            .filter_map(|r| index.get(&r.to_lowercase()).copied())
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let mut state = vec![0u8; params.len()]; // 0 new, 1 on stack, 2 done
        let mut reported = BTreeSet::new();
        for start in 0..params.len() {
            let mut stack = vec![(start, 0usize)];
            let mut path = vec![start];
            if state[start] != 0 {
                continue;
            }
            state[start] = 1;
            while let Some((node, next)) = stack.last_mut() {
                let node = *node;
                if *next < edges[node].len() {
                    let to = edges[node][*next];
                    *next += 1;
                    match state[to] {
                        0 => {
                            state[to] = 1;
                            stack.push((to, 0));
                            path.push(to);
                        }
                        1 => {
                            let from = path.iter().position(|&n| n == to).unwrap_or(0);
                            let cycle: Vec<&str> = path[from..]
                                .iter()
                                .map(|&i| params[i].0.name.as_str())
                                .collect();
                            if reported.insert(to) {
                                let span = params[to].1.clone();
                                self.error(
                                    span,
                                    format!("parameter defaults reference each other in a cycle: {} -> {}", cycle.join(" -> "), params[to].0.name),
                                    "break the cycle: one of these defaults must be a plain value",
                                );
                            }
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    stack.pop();
                    path.pop();
                }
            }
        }
    }

    // ---------------------------------------------------------------- [feed]

    fn feed(&mut self, f: Option<&raw::RawFeed>) -> Feed {
        let default_f = raw::RawFeed::default();
        let f = f.unwrap_or(&default_f);
        let download_base_url = f.download_base_url.as_ref().and_then(|u| {
            let mut url = self.url(u, "feed.download-base-url")?;
            if !url.0.ends_with('/') {
                url.0.push('/');
            }
            Some(url)
        });
        let feed_url = f
            .feed_url
            .as_ref()
            .and_then(|u| self.url(u, "feed.feed-url"));
        let mut dependencies: Vec<String> = Vec::new();
        for d in f.dependencies.iter().flatten() {
            let s = d.get();
            if s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            {
                self.error(
                    d.span(),
                    format!("`feed.dependencies` entry {s:?} is not a WebPI productId"),
                    "productIds are letters, digits, `_`, `.` and `-`, e.g. \"UrlRewrite2\"",
                );
            } else if BUILTIN_DEPENDENCIES
                .iter()
                .any(|b| b.eq_ignore_ascii_case(s))
            {
                self.warn(
                    d.span(),
                    format!("`{s}` is already a dependency of every iiswsgi feed entry"),
                    "remove it",
                );
            } else if dependencies.iter().any(|x| x.eq_ignore_ascii_case(s)) {
                self.warn(
                    d.span(),
                    format!("`{s}` is listed twice"),
                    "remove the duplicate",
                );
            } else {
                dependencies.push(s.clone());
            }
        }
        let mut keywords = Vec::new();
        for k in f.keywords.iter().flatten() {
            if k.get().trim().is_empty() {
                self.error(
                    k.span(),
                    "`feed.keywords` has an empty keyword",
                    "remove it",
                );
            } else {
                keywords.push(k.get().trim().to_string());
            }
        }
        let long_summary = self.text(f.long_summary.as_ref(), "feed.long-summary");
        let start_page = match &f.start_page {
            None => String::new(),
            Some(s) => {
                let t = s.get().trim_start_matches('/');
                if t.contains("://") || t.chars().any(|c| c.is_whitespace() || c == '\\') {
                    self.error(
                        s.span(),
                        "`feed.start-page` must be a path relative to the app",
                        "e.g. \"admin/\"; leave it out to open the app's root",
                    );
                }
                t.to_string()
            }
        };
        let language = match &f.language {
            None => "en".to_string(),
            Some(l) => {
                let ok = {
                    let mut parts = l.get().split('-');
                    let first_ok = parts.next().is_some_and(|p| {
                        (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_lowercase())
                    });
                    first_ok
                        && parts.all(|p| {
                            (2..=8).contains(&p.len())
                                && p.chars().all(|c| c.is_ascii_alphanumeric())
                        })
                };
                if !ok {
                    self.error(
                        l.span(),
                        format!("`feed.language` {:?} is not a language id", l.get()),
                        "use a lower-case language id such as \"en\" or \"de\"",
                    );
                }
                l.get().clone()
            }
        };
        Feed {
            download_base_url,
            feed_url,
            dependencies,
            keywords,
            long_summary,
            start_page,
            language,
        }
    }

    // ---------------------------------------------------------------- [run]

    fn run(&mut self, r: Option<&raw::RawRun>) -> Run {
        let default_r = raw::RawRun::default();
        let r = r.unwrap_or(&default_r);
        let threads = self
            .int(
                r.threads.as_ref(),
                "run.threads",
                (1, 1024),
                8,
                "threads serve requests concurrently outside IIS",
            )
            .unwrap_or(8) as u16;
        let mount_point = r.mount_point.as_ref().and_then(|m| {
            let s = m.get();
            if s.is_empty() || s == "/" {
                return None;
            }
            if !s.starts_with('/') || s.ends_with('/') || s.chars().any(char::is_whitespace) {
                self.error(
                    m.span(),
                    format!("`run.mount-point` {s:?} must start with `/` and not end with one"),
                    "e.g. \"/shop\"",
                );
                return None;
            }
            Some(s.clone())
        });
        let log_file = r.log_file.as_ref().and_then(|l| {
            if l.get().trim().is_empty() {
                self.error(
                    l.span(),
                    "`run.log-file` is empty",
                    "remove it to use the default location",
                );
                return None;
            }
            Some(l.get().clone())
        });
        let log_max_bytes = self
            .int(
                r.log_max_bytes.as_ref(),
                "run.log-max-bytes",
                (4096, 1 << 40),
                10 * 1024 * 1024,
                "the log rotates at this size",
            )
            .unwrap_or(10 * 1024 * 1024) as u64;
        let log_keep = self
            .int(
                r.log_keep.as_ref(),
                "run.log-keep",
                (0, 100),
                5,
                "rotated logs kept",
            )
            .unwrap_or(5) as u32;
        let l = r.limits.clone().unwrap_or_default();
        let d = Limits::default();
        let mut lim = |v: Option<&Sp<i64>>, key: &str, range: (i64, i64), def: usize| {
            self.int(
                v,
                key,
                range,
                def as i64,
                "a request over the cap gets 431 and the connection stays usable",
            )
            .unwrap_or(def as i64) as usize
        };
        let limits = Limits {
            max_param_name_bytes: lim(
                l.max_param_name_bytes.as_ref(),
                "run.limits.max-param-name-bytes",
                (16, 65536),
                d.max_param_name_bytes,
            ),
            max_param_value_bytes: lim(
                l.max_param_value_bytes.as_ref(),
                "run.limits.max-param-value-bytes",
                (1024, 16 << 20),
                d.max_param_value_bytes,
            ),
            max_params_bytes: lim(
                l.max_params_bytes.as_ref(),
                "run.limits.max-params-bytes",
                (4096, 64 << 20),
                d.max_params_bytes,
            ),
            max_param_pairs: lim(
                l.max_param_pairs.as_ref(),
                "run.limits.max-param-pairs",
                (16, 1_000_000),
                d.max_param_pairs,
            ),
        };
        Run {
            threads,
            mount_point,
            log_file,
            log_level: r.log_level.unwrap_or(LogLevel::Info),
            log_max_bytes,
            log_keep,
            limits,
        }
    }

    // ---------------------------------------------------------------- files

    fn files_exist(
        &mut self,
        r: &raw::RawManifest,
        app: &App,
        package: Option<&Package>,
        base: &Path,
    ) {
        let Some(a) = &r.app else { return };
        for (asset, raw) in [(&app.icon, &a.icon), (&app.screenshot, &a.screenshot)] {
            if let (Some(Asset::File(p)), Some(raw)) = (asset, raw)
                && !p.under(base).is_file()
            {
                self.error(
                    raw.span(),
                    format!("file `{p}` does not exist"),
                    format!("paths are relative to {}", display_dir(base)),
                );
            }
        }
        if let (Some(pkg), Some(rp)) = (package, r.package.as_ref()) {
            let root = base.join(&pkg.root);
            if let Some(root_sp) = &rp.root
                && !root.is_dir()
            {
                self.error(
                    root_sp.span(),
                    format!("folder `{}` does not exist", pkg.root.display()),
                    format!("`package.root` is relative to {}", display_dir(base)),
                );
            }
            if let (Some(req), Some(req_sp)) = (&pkg.requirements, &rp.requirements)
                && root.is_dir()
                && !req.under(&root).is_file()
            {
                self.error(
                    req_sp.span(),
                    format!("requirements file `{req}` does not exist"),
                    format!("it is relative to `package.root` ({})", display_dir(&root)),
                );
            }
        }
    }
}

/// Why `xpath` cannot be an XPath expression (unbalanced `[]`, `()` or quotes), if it cannot.
fn xpath_problem(xpath: &str) -> Option<String> {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    for c in xpath.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' | '(' => stack.push(c),
            ']' | ')' => {
                let open = if c == ']' { '[' } else { '(' };
                if stack.pop() != Some(open) {
                    return Some(format!("unbalanced `{c}`"));
                }
            }
            _ => {}
        }
    }
    if let Some(q) = quote {
        return Some(format!("unclosed {q}"));
    }
    stack.pop().map(|c| format!("unclosed `{c}`"))
}

/// Some span inside a parameter that has no name.
fn param_anchor(p: &raw::RawParameter) -> Option<Range<usize>> {
    p.description
        .as_ref()
        .or(p.default.as_ref())
        .map(Sp::span)
        .or_else(|| p.tags.as_ref().and_then(|t| t.first()).map(Sp::span))
}

fn display_dir(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        "the current folder".to_string()
    } else {
        format!("`{}`", p.display())
    }
}

/// Microsoft productIds an app name must not collide with (a warning).
const MICROSOFT_PRODUCT_IDS: &[&str] = &[
    "WDeploy",
    "WDeployNoSMO",
    "IISManagementConsole",
    "CGI",
    "PHP",
    "UrlRewrite2",
    "ARRv3_0",
    "WebMatrix",
    "IISExpress",
    "MySQL",
    "SQLExpress",
    "NETFramework4",
    "Python27",
    "iiswsgi",
];

/// Compiles a regex that is a literal in this file.
fn regex(s: &str) -> Regex {
    match Regex::new(s) {
        Ok(r) => r,
        Err(e) => panic!("built-in regex {s:?} does not compile: {e}"),
    }
}

/// `{Name}` references in a default value.
fn references(s: &str) -> impl Iterator<Item = &str> {
    s.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
        .filter(|n| !n.is_empty())
}

fn closest<'a>(s: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = s.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_lowercase()), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn check_default(v: &Validation, d: &str) -> Result<(), String> {
    if d.is_empty() {
        return if v.allow_empty {
            Ok(())
        } else {
            Err("it is empty and `allow-empty` is not set".into())
        };
    }
    match v.kind {
        ValidationKind::None => Ok(()),
        ValidationKind::Boolean => {
            if d.eq_ignore_ascii_case("true") || d.eq_ignore_ascii_case("false") {
                Ok(())
            } else {
                Err("Boolean parameters take `True` or `False`".into())
            }
        }
        ValidationKind::Enumeration => {
            let choices = v.value.as_deref().unwrap_or("");
            if choices.split(',').any(|c| c == d) {
                Ok(())
            } else {
                Err(format!("it is not one of {choices:?}"))
            }
        }
        ValidationKind::RegularExpression => {
            let pattern = v.value.as_deref().unwrap_or("");
            match Regex::new(pattern) {
                Ok(r) if r.is_match(d) => Ok(()),
                Ok(_) => Err(format!("it does not match '{pattern}'")),
                Err(_) => Ok(()), // reported where the regex is
            }
        }
    }
}

/// `C:\x`, `\\server\share`, `/opt/x`.
fn is_absolute_any(s: &str) -> bool {
    let b = s.as_bytes();
    s.starts_with('/')
        || s.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

/// Checks a relative path; returns the normalised form or (reason, optional help).
pub(crate) fn check_rel_path(s: &str) -> Result<RelPath, (String, Option<String>)> {
    if s.trim().is_empty() {
        return Err(("must not be empty".into(), None));
    }
    if is_absolute_any(s) {
        return Err((format!("must be a relative path, found {s:?}"), None));
    }
    if s.contains('\\') {
        return Err((
            format!("uses `\\` in {s:?}"),
            Some(format!(
                "use `/` between folders: {:?}",
                s.replace('\\', "/")
            )),
        ));
    }
    let mut segs = Vec::new();
    for seg in s.split('/') {
        match seg {
            "" | "." => continue,
            ".." => {
                return Err((
                    format!("must stay inside the app folder, but {s:?} uses `..`"),
                    Some("name a folder inside the app, e.g. \"App_Data\"; MSDeploy cannot set ACLs or package files outside it".into()),
                ));
            }
            _ => {}
        }
        if let Some(c) = seg
            .chars()
            .find(|c| matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') || c.is_control())
        {
            return Err((
                format!(
                    "contains {} in {s:?}, which Windows does not allow in file names",
                    describe_char(c)
                ),
                None,
            ));
        }
        if seg.ends_with('.') || seg.ends_with(' ') {
            return Err((
                format!("has a segment ending in a dot or space ({seg:?}), which Windows drops"),
                None,
            ));
        }
        if is_windows_device_name(seg) {
            return Err((
                format!("uses the reserved Windows device name {seg:?}"),
                None,
            ));
        }
        segs.push(seg);
    }
    Ok(RelPath(segs.join("/")))
}

/// Checks an absolute http(s) URL: scheme, a host of letters, digits, `.`, `-` (or an IPv6
/// literal), an optional port, and no whitespace or characters that need escaping in XML
/// attributes and URLs.
pub(crate) fn check_http_url(s: &str) -> Result<(), String> {
    let rest = if let Some(r) = s.strip_prefix("https://") {
        r
    } else if let Some(r) = s.strip_prefix("http://") {
        r
    } else if s.contains("://") {
        return Err(format!("only http and https are allowed, found {s:?}"));
    } else {
        return Err(format!("{s:?} has no `https://`"));
    };
    if let Some(c) = s.chars().find(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}')
    }) {
        return Err(format!("it contains {}", describe_char(c)));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if host_port.starts_with('[') {
        match host_port.split_once(']') {
            Some((h, p)) => (&h[1..], p.strip_prefix(':')),
            None => return Err("unclosed `[` in the host".into()),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("it has no host name".into());
    }
    if !host_port.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(format!("the host {host:?} is not a valid host name"));
    }
    if let Some(p) = port
        && (p.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(format!("the port {p:?} is not a number from 0 to 65535"));
    }
    Ok(())
}

/// Parses `module:attribute` with an optional trailing `()`.
pub(crate) fn parse_wsgi_target(s: &str) -> Result<WsgiTarget, String> {
    let Some((module, attr)) = s.split_once(':') else {
        return Err(format!("must be `module:callable`, found {s:?} (no `:`)"));
    };
    let (attr, call) = match attr.strip_suffix("()") {
        Some(a) => (a, true),
        None => (attr, false),
    };
    if attr.contains('(') {
        return Err(format!(
            "can only call a factory without arguments (`{module}:name()`), found {s:?}"
        ));
    }
    if module.contains(['/', '\\']) {
        return Err(format!(
            "has a file path {module:?} as its module; use dots between packages: `{}`",
            module.trim_end_matches(".py").replace(['/', '\\'], ".")
        ));
    }
    if let Some(stem) = module.strip_suffix(".py") {
        return Err(format!(
            "names the file {module:?}; write the module without `.py`: `{stem}:{attr}`"
        ));
    }
    check_dotted(module).map_err(|why| format!("has an invalid module {module:?}: {why}"))?;
    check_dotted(attr).map_err(|why| format!("has an invalid callable {attr:?}: {why}"))?;
    Ok(WsgiTarget {
        module: module.to_string(),
        attribute: attr.to_string(),
        call,
    })
}

fn check_dotted(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    for part in s.split('.') {
        if part.is_empty() {
            return Err("it has an empty part between dots".into());
        }
        let first = part.chars().next().unwrap_or('0');
        if !(first.is_ascii_alphabetic() || first == '_')
            || !part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!("`{part}` is not a Python identifier"));
        }
        if PYTHON_KEYWORDS.contains(&part) {
            return Err(format!("`{part}` is a Python keyword"));
        }
    }
    Ok(())
}

const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wsgi_target_accepts_dotted_paths_and_factories() {
        let t = parse_wsgi_target("mysite.wsgi:application").unwrap();
        assert_eq!(
            (t.module.as_str(), t.attribute.as_str(), t.call),
            ("mysite.wsgi", "application", false)
        );
        let t = parse_wsgi_target("hello:create_app()").unwrap();
        assert!(t.call);
        assert_eq!(t.to_string(), "hello:create_app()");
        assert!(
            parse_wsgi_target("hello.py:app")
                .unwrap_err()
                .contains("`hello:app`")
        );
        assert!(
            parse_wsgi_target("src/hello.py:app")
                .unwrap_err()
                .contains("`src.hello`")
        );
    }

    #[test]
    fn wsgi_target_rejects_missing_colon_keywords_and_arguments() {
        assert!(parse_wsgi_target("hello").unwrap_err().contains("no `:`"));
        assert!(
            parse_wsgi_target("class:app")
                .unwrap_err()
                .contains("keyword")
        );
        assert!(
            parse_wsgi_target("a:make(1)")
                .unwrap_err()
                .contains("without arguments")
        );
        assert!(
            parse_wsgi_target("my-app:app")
                .unwrap_err()
                .contains("not a Python identifier")
        );
        assert!(
            parse_wsgi_target("a..b:app")
                .unwrap_err()
                .contains("empty part")
        );
    }

    #[test]
    fn rel_path_normalises_and_rejects_escapes() {
        assert_eq!(
            check_rel_path("./App_Data//logs/").unwrap().as_str(),
            "App_Data/logs"
        );
        assert!(check_rel_path("../x").unwrap_err().0.contains("`..`"));
        assert!(check_rel_path("a\\b").unwrap_err().0.contains("`\\`"));
        assert!(check_rel_path("C:/x").unwrap_err().0.contains("relative"));
        assert!(
            check_rel_path("a/con.txt")
                .unwrap_err()
                .0
                .contains("device")
        );
        assert!(check_rel_path("a/b?").unwrap_err().0.contains("`?`"));
    }

    #[test]
    fn http_url_accepts_hosts_ports_and_ipv6() {
        assert!(check_http_url("https://example.com").is_ok());
        assert!(check_http_url("http://localhost:8080/a?b=c#d").is_ok());
        assert!(check_http_url("https://[::1]:443/x").is_ok());
        assert!(check_http_url("ftp://x").unwrap_err().contains("only http"));
        assert!(
            check_http_url("example.com")
                .unwrap_err()
                .contains("https://")
        );
        assert!(
            check_http_url("https://exa mple.com")
                .unwrap_err()
                .contains("space")
        );
        assert!(check_http_url("https://").unwrap_err().contains("no host"));
        assert!(
            check_http_url("https://x:99999")
                .unwrap_err()
                .contains("port")
        );
    }

    #[test]
    fn xpath_problem_finds_unbalanced_brackets_and_quotes() {
        assert_eq!(
            xpath_problem("/configuration/appSettings/add[@key='a]b']/@value"),
            None
        );
        assert_eq!(xpath_problem("/a[@k='x'").as_deref(), Some("unclosed `[`"));
        assert_eq!(xpath_problem("/a[@k='x]").as_deref(), Some("unclosed '"));
        assert_eq!(xpath_problem("/a)").as_deref(), Some("unbalanced `)`"));
    }

    #[test]
    fn references_finds_each_braced_name() {
        let r: Vec<&str> = references("Server={DB Server};Database={DB Name};{}").collect();
        assert_eq!(r, vec!["DB Server", "DB Name"]);
    }

    #[test]
    fn default_check_honours_allow_empty_and_kinds() {
        let v = |kind, value: Option<&str>, allow_empty| Validation {
            kind,
            value: value.map(String::from),
            allow_empty,
        };
        assert!(check_default(&v(ValidationKind::Boolean, None, false), "True").is_ok());
        assert!(check_default(&v(ValidationKind::Boolean, None, false), "yes").is_err());
        assert!(check_default(&v(ValidationKind::Enumeration, Some("a,b"), false), "b").is_ok());
        assert!(check_default(&v(ValidationKind::Enumeration, Some("a,b"), false), "c").is_err());
        assert!(
            check_default(
                &v(ValidationKind::RegularExpression, Some("^[a-z]+$"), false),
                "abc"
            )
            .is_ok()
        );
        assert!(
            check_default(
                &v(ValidationKind::RegularExpression, Some("^[a-z]+$"), false),
                ""
            )
            .is_err()
        );
        assert!(
            check_default(
                &v(ValidationKind::RegularExpression, Some("^[a-z]+$"), true),
                ""
            )
            .is_ok()
        );
    }
}
