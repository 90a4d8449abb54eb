//! Templates to text: one handlebars template per output file, one context struct per template.
//!
//! Every XML or config file a user may read is a file under `templates/`, compiled into the
//! binary by [`Templates`], which also turns on strict mode (a misspelt field is an error, not
//! an empty string) and installs the XML escaper. Each template has exactly one
//! `#[derive(Serialize)]` context struct named after it, whose doc names the template:
//!
//! | Template | Context | Output |
//! | --- | --- | --- |
//! | `templates/msdeploy/manifest.xml.hbs` | [`ManifestXml`] | `Manifest.xml` |
//! | `templates/msdeploy/parameters.xml.hbs` | [`ParametersXml`] | `Parameters.xml` |
//! | `templates/web.config.hbs` | [`WebConfig`] | `<Name>/web.config` after install |
//! | `templates/web.config.pending.hbs` | [`PendingWebConfig`] | `<Name>/web.config` as shipped |
//! | `templates/webpi/feed.xml.hbs` (+ partial `webpi/entry.xml.hbs`) | [`FeedXml`] ([`FeedEntry`]) | `*.webpi.xml` |
//! | `templates/msdeploy/setparameters.xml.hbs` | [`SetParametersXml`] | `*.SetParameters.xml` |
//! | `templates/msdeploy/deploy.cmd.hbs` | [`DeployCmd`] | `*.deploy.cmd` |
//! | `templates/msdeploy/deploy-readme.txt.hbs` | [`DeployReadme`] | `*.deploy-readme.txt` |
//!
//! Templates hold layout; Rust computes every value (msdeploy, webpi and iis build the
//! contexts). Output is UTF-8 without BOM with CRLF line endings (msdeploy-webpi.md §2.1).
//!
//! Escaping: every `{{value}}` goes through [`escape_xml`] (`& < > " '`, and tab/CR/LF as
//! character references so attribute values keep them). XML 1.0 cannot carry most C0 control
//! characters at all, so rendering refuses a context holding one, naming the field.

use handlebars::Handlebars;
use serde::Serialize;

mod contexts;
mod deploy_files;

pub use contexts::*;
pub use deploy_files::*;

/// A template compiled into the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    /// `templates/msdeploy/manifest.xml.hbs`.
    ManifestXml,
    /// `templates/msdeploy/parameters.xml.hbs`.
    ParametersXml,
    /// `templates/web.config.hbs`.
    WebConfig,
    /// `templates/web.config.pending.hbs`.
    PendingWebConfig,
    /// `templates/webpi/feed.xml.hbs`.
    FeedXml,
    /// `templates/webpi/entry.xml.hbs` (a partial of [`Template::FeedXml`]).
    FeedEntry,
    /// `templates/msdeploy/setparameters.xml.hbs`.
    SetParametersXml,
    /// `templates/msdeploy/deploy.cmd.hbs` (batch; values pre-escaped, triple braces).
    DeployCmd,
    /// `templates/msdeploy/deploy-readme.txt.hbs` (plain text, triple braces).
    DeployReadme,
}

impl Template {
    /// Every template.
    pub const ALL: [Template; 9] = [
        Template::ManifestXml,
        Template::ParametersXml,
        Template::WebConfig,
        Template::PendingWebConfig,
        Template::FeedXml,
        Template::FeedEntry,
        Template::SetParametersXml,
        Template::DeployCmd,
        Template::DeployReadme,
    ];

    /// The registry name: the path under `templates/` without `.hbs`.
    pub fn name(self) -> &'static str {
        match self {
            Template::ManifestXml => "msdeploy/manifest.xml",
            Template::ParametersXml => "msdeploy/parameters.xml",
            Template::WebConfig => "web.config",
            Template::PendingWebConfig => "web.config.pending",
            Template::FeedXml => "webpi/feed.xml",
            Template::FeedEntry => "webpi/entry",
            Template::SetParametersXml => "msdeploy/setparameters.xml",
            Template::DeployCmd => "msdeploy/deploy.cmd",
            Template::DeployReadme => "msdeploy/deploy-readme.txt",
        }
    }

    /// The path of the template file in the repository.
    pub fn path(self) -> &'static str {
        match self {
            Template::ManifestXml => "templates/msdeploy/manifest.xml.hbs",
            Template::ParametersXml => "templates/msdeploy/parameters.xml.hbs",
            Template::WebConfig => "templates/web.config.hbs",
            Template::PendingWebConfig => "templates/web.config.pending.hbs",
            Template::FeedXml => "templates/webpi/feed.xml.hbs",
            Template::FeedEntry => "templates/webpi/entry.xml.hbs",
            Template::SetParametersXml => "templates/msdeploy/setparameters.xml.hbs",
            Template::DeployCmd => "templates/msdeploy/deploy.cmd.hbs",
            Template::DeployReadme => "templates/msdeploy/deploy-readme.txt.hbs",
        }
    }

    /// The template text as compiled in.
    pub fn source(self) -> &'static str {
        match self {
            Template::ManifestXml => include_str!("../../../templates/msdeploy/manifest.xml.hbs"),
            Template::ParametersXml => {
                include_str!("../../../templates/msdeploy/parameters.xml.hbs")
            }
            Template::WebConfig => include_str!("../../../templates/web.config.hbs"),
            Template::PendingWebConfig => include_str!("../../../templates/web.config.pending.hbs"),
            Template::FeedXml => include_str!("../../../templates/webpi/feed.xml.hbs"),
            Template::FeedEntry => include_str!("../../../templates/webpi/entry.xml.hbs"),
            Template::SetParametersXml => {
                include_str!("../../../templates/msdeploy/setparameters.xml.hbs")
            }
            Template::DeployCmd => include_str!("../../../templates/msdeploy/deploy.cmd.hbs"),
            Template::DeployReadme => {
                include_str!("../../../templates/msdeploy/deploy-readme.txt.hbs")
            }
        }
    }
}

/// A context struct that renders through one template.
pub trait Context: Serialize {
    /// The template this context fills.
    const TEMPLATE: Template;
}

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A value holds a character XML 1.0 cannot represent.
    #[error(
        "{template}: `{field}` contains {what}, which XML cannot carry; remove it from the value"
    )]
    ForbiddenCharacter {
        /// The template being rendered.
        template: &'static str,
        /// Where in the context (`parameters[1].default_value`).
        field: String,
        /// The character, described (`control character U+0007`).
        what: String,
    },
    /// A template failed to compile (a bug in `templates/`, caught by the tests).
    #[error("{template}: template does not compile")]
    Compile {
        /// The template.
        template: String,
        /// The handlebars error.
        #[source]
        source: Box<handlebars::TemplateError>,
    },
    /// Rendering failed (strict mode: a field the template names is missing).
    #[error("{template}: cannot render")]
    Render {
        /// The template.
        template: &'static str,
        /// The handlebars error.
        #[source]
        source: Box<handlebars::RenderError>,
    },
    /// The context could not be serialised.
    #[error("{template}: cannot serialise the context")]
    Serialize {
        /// The template.
        template: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

/// The registry of compiled-in templates: strict mode, XML escaping, partials registered.
pub struct Templates {
    registry: Handlebars<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Templates {
    /// Compiles every template.
    pub fn new() -> Result<Self, RenderError> {
        let mut registry = Handlebars::new();
        configure(&mut registry);
        for t in Template::ALL {
            registry
                .register_template_string(t.name(), t.source())
                .map_err(|e| RenderError::Compile {
                    template: t.path().to_string(),
                    source: Box::new(e),
                })?;
        }
        Ok(Self { registry })
    }

    /// The templates compiled once per process (they are constants of the binary), for
    /// callers that render many times (`package`'s plan under the fuzzer).
    pub fn shared() -> Result<&'static Templates, RenderError> {
        static SHARED: std::sync::OnceLock<Templates> = std::sync::OnceLock::new();
        if let Some(t) = SHARED.get() {
            return Ok(t);
        }
        let t = Templates::new()?;
        Ok(SHARED.get_or_init(|| t))
    }

    /// Renders `context` through its template: checked for forbidden characters, escaped,
    /// CRLF line endings.
    pub fn render<C: Context>(&self, context: &C) -> Result<String, RenderError> {
        render_with(&self.registry, C::TEMPLATE, C::TEMPLATE.name(), context)
    }

    /// Renders `context` through `source`, a copy of its template read from elsewhere (the
    /// `web.config.hbs` a package ships, rendered by `iiswsgi install` on the target).
    pub fn render_source<C: Context>(source: &str, context: &C) -> Result<String, RenderError> {
        if source == C::TEMPLATE.source() {
            // The usual case, an unmodified copy: no need to compile it again.
            return Templates::shared()?.render(context);
        }
        let mut registry = Handlebars::new();
        configure(&mut registry);
        registry
            .register_template_string("custom", source)
            .map_err(|e| RenderError::Compile {
                template: format!("{} (shipped copy)", C::TEMPLATE.path()),
                source: Box::new(e),
            })?;
        render_with(&registry, C::TEMPLATE, "custom", context)
    }
}

fn configure(registry: &mut Handlebars<'static>) {
    registry.set_strict_mode(true);
    registry.register_escape_fn(escape_xml);
}

fn render_with<C: Serialize>(
    registry: &Handlebars<'static>,
    template: Template,
    name: &str,
    context: &C,
) -> Result<String, RenderError> {
    let value = serde_json::to_value(context).map_err(|source| RenderError::Serialize {
        template: template.path(),
        source,
    })?;
    check_characters(&value, &mut String::new(), template.path())?;
    let text = registry
        .render(name, &value)
        .map_err(|e| RenderError::Render {
            template: template.path(),
            source: Box::new(e),
        })?;
    Ok(crlf(&text))
}

/// Normalises line endings to CRLF (templates are stored with LF; values never contain a raw
/// CR, since the escaper turns it into `&#13;`).
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Escapes a value for XML text and attribute values: `& < > " '`, and tab, LF and CR as
/// character references (attribute-value normalisation would otherwise turn them into spaces).
pub fn escape_xml(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + value.len() / 8);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether XML 1.0 can carry `c` (production `Char`): tab, LF, CR, and U+0020 upwards except
/// the surrogates (impossible in a Rust `char`) and U+FFFE/U+FFFF.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Refuses any string in `value` holding a character XML cannot carry, naming its field.
fn check_characters(
    value: &serde_json::Value,
    path: &mut String,
    template: &'static str,
) -> Result<(), RenderError> {
    match value {
        serde_json::Value::String(s) => {
            if let Some(c) = s.chars().find(|c| !is_xml_char(*c)) {
                return Err(RenderError::ForbiddenCharacter {
                    template,
                    field: path.clone(),
                    what: format!("the control character U+{:04X}", c as u32),
                });
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_characters(item, path, template)?;
                path.truncate(len);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                check_characters(item, path, template)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
