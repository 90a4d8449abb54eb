//! `[wsgi]`: the `module:callable` to serve, `sys.path` additions, the virtual environment,
//! the Python version, the reload pattern and the environment variables.

use std::collections::BTreeMap;

use regex::Regex;

use super::values::{is_absolute_any, regex};
use super::{Sp, Validator};
use crate::manifest::factory_call::{self, FactoryCallError};
use crate::manifest::{DEFAULT_RELOAD_REGEX, ReloadRegex, Venv, Wsgi, WsgiTarget, raw};

impl Validator<'_> {
    pub(super) fn wsgi(&mut self, w: &raw::RawWsgi) -> Option<Wsgi> {
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
                regex: default_reload_regex(),
            })),
            Some(s) if s.get().is_empty() => Some(None),
            Some(s) => self
                .check_regex(s, "wsgi.reload-regex", false)
                .then(|| Regex::new(&format!("^(?:{})", s.get())).ok())
                .flatten()
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
}

/// Why `wsgi.app` is not a `module:callable`; the text follows "`wsgi.app` ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum WsgiTargetError {
    #[error("must be `module:callable`, found {target:?} (no `:`)")]
    NoColon { target: String },
    /// `why` is part of the message, not a cause to print again.
    #[error("has factory arguments that are not literals in {target:?}: {why}")]
    FactoryArguments {
        target: String,
        why: FactoryCallError,
    },
    #[error(
        "has a file path {module:?} as its module; use dots between packages: `{}`",
        as_dotted(.module)
    )]
    FilePath { module: String },
    #[error(
        "names the file {module:?}; write the module without `.py`: `{}:{attr}`",
        without_py(.module)
    )]
    PyFile { module: String, attr: String },
    /// `why` is part of the message, not a cause to print again.
    #[error("has an invalid module {module:?}: {why}")]
    Module { module: String, why: DottedError },
    /// `why` is part of the message, not a cause to print again.
    #[error("has an invalid callable {attr:?}: {why}")]
    Callable { attr: String, why: DottedError },
}

/// Why a dotted Python name (`mysite.wsgi`, `app.wsgi_app`) is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum DottedError {
    #[error("it is empty")]
    Empty,
    #[error("it has an empty part between dots")]
    EmptyPart,
    #[error("`{0}` is not a Python identifier")]
    NotIdentifier(String),
    #[error("`{0}` is a Python keyword")]
    Keyword(String),
}

/// `src/hello.py` as the module path it meant: `src.hello`.
fn as_dotted(file: &str) -> String {
    file.trim_end_matches(".py").replace(['/', '\\'], ".")
}

/// `hello.py` without its one `.py`.
fn without_py(file: &str) -> &str {
    file.strip_suffix(".py").unwrap_or(file)
}

/// Parses `module:attribute` with an optional trailing `()`.
fn parse_wsgi_target(s: &str) -> Result<WsgiTarget, WsgiTargetError> {
    let Some((module, attr)) = s.split_once(':') else {
        return Err(WsgiTargetError::NoColon {
            target: s.to_string(),
        });
    };
    let (attr, arguments) =
        factory_call::split(attr).map_err(|why| WsgiTargetError::FactoryArguments {
            target: s.to_string(),
            why,
        })?;
    if module.contains(['/', '\\']) {
        return Err(WsgiTargetError::FilePath {
            module: module.to_string(),
        });
    }
    if module.ends_with(".py") {
        return Err(WsgiTargetError::PyFile {
            module: module.to_string(),
            attr: attr.to_string(),
        });
    }
    check_dotted(module).map_err(|why| WsgiTargetError::Module {
        module: module.to_string(),
        why,
    })?;
    check_dotted(attr).map_err(|why| WsgiTargetError::Callable {
        attr: attr.to_string(),
        why,
    })?;
    Ok(WsgiTarget {
        module: module.to_string(),
        attribute: attr.to_string(),
        call: arguments.is_some(),
        arguments: arguments.unwrap_or_default().to_string(),
    })
}

fn check_dotted(s: &str) -> Result<(), DottedError> {
    if s.is_empty() {
        return Err(DottedError::Empty);
    }
    for part in s.split('.') {
        if part.is_empty() {
            return Err(DottedError::EmptyPart);
        }
        let first = part.chars().next().unwrap_or('0');
        if !(first.is_ascii_alphabetic() || first == '_')
            || !part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(DottedError::NotIdentifier(part.to_string()));
        }
        if PYTHON_KEYWORDS.contains(&part) {
            return Err(DottedError::Keyword(part.to_string()));
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

/// The default reload regex, anchored, compiled once per process.
fn default_reload_regex() -> Regex {
    static DEFAULT: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| regex(&format!("^(?:{DEFAULT_RELOAD_REGEX})")))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(target: &str) -> String {
        match parse_wsgi_target(target) {
            Ok(t) => panic!("{target:?} was accepted as {t}"),
            Err(e) => e.to_string(),
        }
    }

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
        let t = parse_wsgi_target("flaskr:create_app(test_config={'TESTING': True})").unwrap();
        assert_eq!(
            (t.attribute.as_str(), t.arguments.as_str()),
            ("create_app", "test_config={'TESTING': True}")
        );
        assert_eq!(
            t.to_string(),
            "flaskr:create_app(test_config={'TESTING': True})"
        );
        assert_eq!(
            why("hello.py:app"),
            r#"names the file "hello.py"; write the module without `.py`: `hello:app`"#
        );
        assert_eq!(
            why("src/hello.py:app"),
            r#"has a file path "src/hello.py" as its module; use dots between packages: `src.hello`"#
        );
    }

    #[test]
    fn wsgi_target_rejects_missing_colon_keywords_and_arguments() {
        assert_eq!(
            why("hello"),
            r#"must be `module:callable`, found "hello" (no `:`)"#
        );
        assert_eq!(
            why("class:app"),
            r#"has an invalid module "class": `class` is a Python keyword"#
        );
        assert_eq!(
            why("a:make(os.environ)"),
            "has factory arguments that are not literals in \"a:make(os.environ)\": `os` is not \
             a literal: factory arguments may only be strings, numbers, True, False, None and \
             lists, tuples, dicts or sets of them (gunicorn's rule)"
        );
        assert_eq!(
            why("my-app:app"),
            r#"has an invalid module "my-app": `my-app` is not a Python identifier"#
        );
        assert_eq!(
            why("a..b:app"),
            r#"has an invalid module "a..b": it has an empty part between dots"#
        );
        assert_eq!(why("a:"), r#"has an invalid callable "": it is empty"#);
    }
}
