//! The `iiswsgi.toml` template and the data it is rendered from.
//!
//! Kept inside `init` (rather than `render`, which owns the package outputs) because this is
//! the only template `init` needs. The template is compiled into the binary, handlebars runs
//! in strict mode so a misspelt field fails loudly, and every value goes through a TOML
//! basic-string escaper, so a description with quotes or backslashes still yields valid TOML.

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
