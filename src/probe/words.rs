//! What the probe's verdict means to the user: one [`Problem`] per failure, with the rule id
//! `iiswsgi check` prints (I01–I07), a one-sentence message, how to fix it, and the end of the
//! traceback when Python gave one. Pure: it takes the parsed JSON of `probe.py`.

use std::fmt;

use super::{Imported, InterpreterError, Outcome, ProbeError, ProbeRequest, RawResult};

/// Which way the import failed; each has the rule id `check` reports it under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The app's own module is not on `sys.path`.
    ModuleNotFound,
    /// A module the app imports is not installed in the venv.
    DependencyMissing,
    /// Importing the module raised something else.
    ImportRaised,
    /// The module has no such attribute.
    NoAttribute,
    /// The target is an ASGI application.
    Asgi,
    /// The factory's arguments do not fit its signature, or calling it raised.
    Factory,
    /// The target is not a WSGI callable (not callable, or the wrong signature).
    NotWsgi,
    /// No interpreter to import with, or it gave no answer.
    Interpreter,
}

impl Kind {
    /// The rule id of `iiswsgi check --import`.
    pub fn rule(self) -> &'static str {
        match self {
            Kind::ModuleNotFound | Kind::DependencyMissing => "I01",
            Kind::ImportRaised => "I02",
            Kind::NoAttribute => "I03",
            Kind::Asgi => "I04",
            Kind::Factory => "I05",
            Kind::NotWsgi => "I06",
            Kind::Interpreter => "I07",
        }
    }
}

/// Why the app does not import, worded for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Which way it failed.
    pub kind: Kind,
    /// What is wrong, in one sentence.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// The end of the traceback, when there is one.
    pub detail: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.hint)
    }
}

impl Problem {
    fn new(kind: Kind, message: String, hint: impl Into<String>) -> Self {
        Self {
            kind,
            message,
            hint: hint.into(),
            detail: None,
        }
    }

    fn with_traceback(mut self, traceback: &str) -> Self {
        let t = traceback.trim();
        if !t.is_empty() {
            self.detail = Some(super::last_lines(t, 8));
        }
        self
    }

    /// No interpreter could be chosen.
    pub fn interpreter(e: &InterpreterError) -> Self {
        let hint = match e {
            InterpreterError::NoVenv(_) | InterpreterError::NoVenvPython(_) => {
                "create it and install the requirements into it (`python -m venv .venv` then \
                 `.venv/bin/pip install -r requirements.txt`; on the server `iiswsgi install` \
                 does both), or import with another venv: `iiswsgi check --import --venv DIR`"
            }
            InterpreterError::NoPython => {
                "set [wsgi] venv to the app's virtual environment, or put python3 on PATH"
            }
        };
        Self::new(Kind::Interpreter, e.to_string(), hint)
    }

    /// The child gave no answer.
    pub fn probe(e: &ProbeError) -> Self {
        let message = crate::error_chain(e, ": ");
        Self::new(
            Kind::Interpreter,
            message,
            "run the same import by hand in the venv to see what happens: \
             `python -c \"import <module>\"` in the app folder",
        )
    }
}

/// Words the verdict of `probe.py`.
pub(super) fn outcome(raw: RawResult, request: &ProbeRequest) -> Outcome {
    if raw.ok {
        return Outcome::Imported(Imported {
            object: raw.object,
            signature: raw.signature,
            python: raw.python,
            prefix: raw.prefix,
        });
    }
    let target = &request.target;
    let name = if raw.name.is_empty() {
        target.clone()
    } else {
        format!("{}:{}", module_of(target), raw.name)
    };
    let exception = format!("{}: {}", raw.exception, raw.message);
    let problem = match raw.code.as_str() {
        "module-not-found" if raw.own => Problem::new(
            Kind::ModuleNotFound,
            format!(
                "`{}` cannot be imported: there is no module `{}` on sys.path ({})",
                raw.module,
                raw.missing,
                raw.sys_path
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "[wsgi] app names a module by its import path from the app folder (dots between \
             packages: `mysite.wsgi`); for a src/ layout add `python-paths = [\"src\"]` under [wsgi]",
        ),
        "module-not-found" => Problem::new(
            Kind::DependencyMissing,
            format!(
                "importing `{}` needs the module `{}`, which is not installed in {} ({exception})",
                raw.module, raw.missing, raw.prefix
            ),
            format!(
                "install the distribution that provides `{}` into that environment (`{} -m pip \
                 install -r requirements.txt`) and list it in the requirements the server installs",
                top_level(&raw.missing),
                request.python.display()
            ),
        )
        .with_traceback(&raw.traceback),
        "import-raised" => Problem::new(
            Kind::ImportRaised,
            format!("importing `{}` raised {exception}", raw.module),
            "the module fails the same way when the server imports it; fix the error shown in \
             the traceback",
        )
        .with_traceback(&raw.traceback),
        "no-attribute" => no_attribute(&raw, target),
        "asgi" => Problem::new(
            Kind::Asgi,
            format!(
                "`{name}` is an ASGI application ({}{}): iiswsgi serves WSGI, and calling it as \
                 app(environ, start_response) fails with a TypeError on every request",
                raw.object,
                if raw.signature.is_empty() {
                    String::new()
                } else {
                    format!(", called as {}", raw.signature)
                }
            ),
            "point [wsgi] app at the project's WSGI entry instead (Django: \
             `<project>.wsgi:application`, not `.asgi`); an ASGI-only framework needs an \
             ASGI-to-WSGI adapter such as a2wsgi",
        ),
        "factory-arguments" => Problem::new(
            Kind::Factory,
            format!(
                "`{target}` cannot call `{}{}` that way: {}",
                raw.name, raw.signature, raw.message
            ),
            format!(
                "give the factory literal arguments as gunicorn does, e.g. `{}:{}(\"production\")`, \
                 or defaults to its parameters",
                module_of(target),
                raw.name
            ),
        ),
        "factory-raised" => Problem::new(
            Kind::Factory,
            format!("calling the factory of `{target}` raised {exception}"),
            "the server calls it the same way at start-up; fix the error shown in the traceback",
        )
        .with_traceback(&raw.traceback),
        "not-callable" => Problem::new(
            Kind::NotWsgi,
            format!("`{name}` is a {}, not a callable", raw.object),
            "point [wsgi] app at the WSGI callable (`app = Flask(__name__)` is `module:app`)",
        ),
        "not-wsgi" => Problem::new(
            Kind::NotWsgi,
            format!(
                "`{name}` ({}) takes {} and cannot be called as app(environ, start_response)",
                raw.object, raw.signature
            ),
            if raw.factory {
                format!(
                    "it looks like an app factory: write `{name}()` to call it once at start-up"
                )
            } else {
                "point [wsgi] app at the WSGI callable itself".to_string()
            },
        ),
        _ => Problem::new(
            Kind::NotWsgi,
            format!("`{target}` is not a usable target: {}", raw.message),
            "write `module:callable`, `module:factory()` or `module:factory(\"literal\")`",
        ),
    };
    Outcome::Failed(problem)
}

fn no_attribute(raw: &RawResult, target: &str) -> Problem {
    let close = raw
        .callables
        .iter()
        .filter(|c| strsim::jaro_winkler(c, &raw.attribute) > 0.8)
        .max_by(|a, b| {
            strsim::jaro_winkler(a, &raw.attribute)
                .total_cmp(&strsim::jaro_winkler(b, &raw.attribute))
        });
    let list = if raw.callables.is_empty() {
        "it defines no callables".to_string()
    } else {
        format!("its callables: {}", raw.callables.join(", "))
    };
    let hint = match close {
        Some(c) => format!("did you mean `{}:{c}`?", module_of(target)),
        None => "set [wsgi] app to one of them (append `()` to call an app factory)".to_string(),
    };
    Problem::new(
        Kind::NoAttribute,
        format!(
            "`{}` has no attribute `{}`; {list}",
            raw.owner, raw.attribute
        ),
        hint,
    )
}

fn module_of(target: &str) -> &str {
    target.split_once(':').map_or(target, |(m, _)| m)
}

fn top_level(module: &str) -> &str {
    module.split('.').next().unwrap_or(module)
}
