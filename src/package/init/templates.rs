//! The `iiswsgi.toml` template and the data it is rendered from.
//!
//! Kept inside `init` (rather than `render`, which owns the package outputs) because this is
//! the only template `init` needs. The template is compiled into the binary, handlebars runs
//! in strict mode so a misspelt field fails loudly, and every value goes through a TOML
//! basic-string escaper, so a description with quotes or backslashes still yields valid TOML.
//! Comment text goes through the `comment` helper instead: a comment is not a string, so it
//! keeps its quotes as written (no `\"`) and only loses line breaks and control characters.
//!
//! Also the two small files `init` may write besides the manifest: the shim module that serves
//! a mod_wsgi script ([`wsgi_script_shim`]) and a requirements file made from pyproject.toml
//! ([`requirements_from_pyproject`]).

use serde::Serialize;

/// `templates/iiswsgi.toml.hbs`.
pub const MANIFEST_TEMPLATE: &str = include_str!("../../../templates/iiswsgi.toml.hbs");

/// The data of `templates/iiswsgi.toml.hbs`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InitManifest {
    /// iiswsgi's version, for the header comment.
    pub iiswsgi_version: String,
    /// Files the values came from (`pyproject.toml, hello.py`), or empty.
    pub detected_from: String,
    /// `[app] name`.
    pub name: String,
    /// `[app] title`.
    pub title: String,
    /// `[app] version`.
    pub version: String,
    /// `[app] description`.
    pub description: Option<String>,
    /// `[app] author`.
    pub author: Option<String>,
    /// `[app] license`.
    pub license: Option<String>,
    /// `[app] homepage-url` (only when it is an http(s) URL).
    pub homepage_url: Option<String>,
    /// `[wsgi] app`, or a `TODO` placeholder.
    pub wsgi_app: String,
    /// Comment lines above `[wsgi] app` (how it was found, or what to do).
    pub wsgi_notes: Vec<String>,
    /// `[wsgi] python-paths`.
    pub python_paths: Vec<String>,
    /// `[wsgi.environment]`.
    pub environment: std::collections::BTreeMap<String, String>,
    /// `[package] requirements`.
    pub requirements: Option<String>,
    /// `[wsgi] venv`: the project's own venv, or `.venv` when there are requirements.
    pub venv: Option<String>,
    /// Suggested `[package] post-install` commands (written commented out).
    pub post_install: Vec<String>,
}

/// Errors rendering the template (a bug in iiswsgi, never in the user's project).
#[derive(Debug, thiserror::Error)]
#[error("rendering templates/iiswsgi.toml.hbs failed")]
pub struct TemplateError(#[source] Box<handlebars::RenderError>);

/// The registry holding `init`'s template.
pub struct Templates {
    hb: handlebars::Handlebars<'static>,
}

impl Templates {
    /// Compiles the built-in template.
    pub fn new() -> Result<Templates, TemplateError> {
        let mut hb = handlebars::Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(toml_escape);
        hb.register_helper("comment", Box::new(comment_helper));
        hb.register_template_string("iiswsgi.toml", MANIFEST_TEMPLATE)
            .map_err(|e| TemplateError(Box::new(e.into())))?;
        Ok(Templates { hb })
    }

    /// Renders `iiswsgi.toml`.
    pub fn manifest(&self, data: &InitManifest) -> Result<String, TemplateError> {
        self.hb
            .render("iiswsgi.toml", data)
            .map_err(|e| TemplateError(Box::new(e)))
    }
}

/// `{{comment value}}`: the text as it is, for the inside of a `#` comment line.
fn comment_helper(
    h: &handlebars::Helper<'_>,
    _: &handlebars::Handlebars<'_>,
    _: &handlebars::Context,
    _: &mut handlebars::RenderContext<'_, '_>,
    out: &mut dyn handlebars::Output,
) -> handlebars::HelperResult {
    let text = h
        .param(0)
        .and_then(|p| p.value().as_str())
        .ok_or_else(|| handlebars::RenderErrorReason::ParamNotFoundForIndex("comment", 0))?;
    out.write(&comment_text(text))?;
    Ok(())
}

/// Text safe inside one `#` comment line: line breaks and other control characters become
/// spaces; everything else, quotes and backslashes included, stays as written.
pub fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The marker line of every file `init` writes besides the manifest; a later `init` may
/// replace a file that carries it, and no other.
pub const WRITTEN_BY_INIT: &str = "Written by `iiswsgi init`";

/// A Python string literal for `s` (JSON's escapes are Python's for `"`, `\\` and `\uXXXX`).
fn py_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The module serving the mod_wsgi script `rel` (relative to the project, `/` separators):
/// it runs the script as mod_wsgi does (a fresh namespace, `__file__` set, not `__main__`)
/// and serves its `application`.
pub fn wsgi_script_shim(rel: &str) -> String {
    let parts: Vec<String> = rel.split('/').map(py_str).collect();
    format!(
        "\"\"\"WSGI entry of iiswsgi for the mod_wsgi script {rel}.\n\n\
         {marker} {rel}\n\
         (Python cannot import a .wsgi file by name). Edit the script, not this file;\n\
         `iiswsgi init --force` rewrites it.\n\
         \"\"\"\n\n\
         import os\n\
         import runpy\n\n\
         _SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), {parts})\n\n\
         # As mod_wsgi: a namespace of its own, __file__ set, never run as __main__.\n\
         application = runpy.run_path(_SCRIPT, run_name=\"_iiswsgi_wsgi_script\")[\"application\"]\n",
        marker = crate::package::init::detect::SHIM_MARKER,
        parts = parts.join(", "),
    )
}

/// `requirements.txt` from `[project] dependencies` (PEP 508 strings are requirement lines).
pub fn requirements_from_pyproject(dependencies: &[String]) -> String {
    let mut out = format!(
        "# {WRITTEN_BY_INIT} from pyproject.toml [project] dependencies.\n\
         # `iiswsgi install` pip-installs this file into the app's venv on the server; pin the\n\
         # versions here (pip freeze, uv export) for repeatable deployments.\n"
    );
    for d in dependencies {
        out.push_str(d);
        out.push('\n');
    }
    out
}

/// Escapes text for the inside of a TOML basic string (`"..."`).
pub fn toml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_escape_makes_quotes_backslashes_and_controls_safe() {
        let s = "a \"b\" \\c\n\u{1}";
        let escaped = toml_escape(s);
        let doc: toml::Table = toml::from_str(&format!("k = \"{escaped}\"")).unwrap();
        assert_eq!(doc["k"].as_str(), Some(s));
    }

    #[test]
    fn template_renders_in_strict_mode_from_its_struct() {
        let t = Templates::new().unwrap();
        let out = t
            .manifest(&InitManifest {
                name: "Shop".into(),
                title: "Shop".into(),
                version: "1.0".into(),
                wsgi_app: "shop:app".into(),
                ..InitManifest::default()
            })
            .unwrap();
        assert!(out.contains("name = \"Shop\""));
        assert!(out.contains("app = \"shop:app\""));
    }
}
