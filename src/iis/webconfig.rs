//! What an app's web.config says about FastCGI, read with quick-xml.
//!
//! `install`, `iis enable` and `doctor` need the same few facts from the app folder's
//! web.config: the FastCGI handler mappings (name, `scriptProcessor`, `responseBufferLimit`),
//! whether it is still the placeholder a package ships (every verb denied, msdeploy-webpi.md
//! §5.3), whether someone put a `<fastCgi>` section there (no effect: AppHostOnly), and which
//! `<location>` folders IIS serves itself (`[[iis.static]]`). Handlers inside a `<location>`
//! are that folder's, never the app's: they are kept apart. Pure:
//! it takes text. Bounded like every parser of outside input: size and depth capped, DTDs
//! refused.

use quick_xml::Reader;
use quick_xml::events::Event;

/// Largest web.config read.
pub const MAX_BYTES: usize = 4 << 20;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// A `<handlers><add>` element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandlerAdd {
    /// 1-based line of the element.
    pub line: usize,
    /// Attributes as written, values unescaped.
    pub attrs: Vec<(String, String)>,
}

impl HandlerAdd {
    /// An attribute (name compared case-insensitively, as IIS does).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `name`.
    pub fn name(&self) -> &str {
        self.attr("name").unwrap_or("")
    }

    /// Whether `modules` lists `FastCgiModule`.
    pub fn is_fastcgi(&self) -> bool {
        self.attr("modules").is_some_and(|m| {
            m.split(',')
                .any(|m| m.trim().eq_ignore_ascii_case("FastCgiModule"))
        })
    }

    /// `scriptProcessor` (empty when absent).
    pub fn script_processor(&self) -> &str {
        self.attr("scriptProcessor").unwrap_or("")
    }

    /// `responseBufferLimit`; IIS's default 4194304 when absent, `None` when unreadable.
    pub fn response_buffer_limit(&self) -> Option<u64> {
        match self.attr("responseBufferLimit") {
            None => Some(4_194_304),
            Some(v) => v.trim().parse().ok(),
        }
    }
}

/// The facts iiswsgi needs from a web.config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebConfigFacts {
    /// `<system.webServer><handlers><add>` elements, in order.
    pub handlers: Vec<HandlerAdd>,
    /// `<handlers><clear/>` is present.
    pub handlers_cleared: bool,
    /// `<requestFiltering><verbs allowUnlisted="false">` with no verb allowed: the shipped
    /// placeholder, which serves nothing.
    pub denies_all_verbs: bool,
    /// Line of a `<fastCgi>` element (no effect in web.config), if any.
    pub fastcgi_section_line: Option<usize>,
    /// `<location path>` elements and their handlers.
    pub locations: Vec<LocationFacts>,
}

/// A `<location>` of web.config and its `<handlers>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationFacts {
    /// `path`, as written.
    pub path: String,
    /// Its `<handlers><clear/>` is present.
    pub handlers_cleared: bool,
    /// Its `<handlers><add>` elements.
    pub handlers: Vec<HandlerAdd>,
}

impl LocationFacts {
    /// IIS serves this folder itself: the handlers are cleared, a StaticFileModule handler is
    /// mapped and no FastCGI one.
    pub fn serves_static(&self) -> bool {
        let maps = |m: &str| {
            self.handlers.iter().any(|h| {
                h.attr("modules")
                    .is_some_and(|v| v.split(',').any(|x| x.trim().eq_ignore_ascii_case(m)))
            })
        };
        self.handlers_cleared && maps("StaticFileModule") && !maps("FastCgiModule")
    }
}

impl WebConfigFacts {
    /// The FastCGI handler mappings.
    pub fn fastcgi_handlers(&self) -> impl Iterator<Item = &HandlerAdd> {
        self.handlers.iter().filter(|h| h.is_fastcgi())
    }

    /// The handler named `name` (case-insensitive).
    pub fn handler(&self, name: &str) -> Option<&HandlerAdd> {
        self.handlers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
    }

    /// The `<location>` paths IIS serves itself ([`LocationFacts::serves_static`]), without
    /// surrounding `/`.
    pub fn static_locations(&self) -> Vec<String> {
        self.locations
            .iter()
            .filter(|l| l.serves_static())
            .map(|l| l.path.trim_matches('/').to_string())
            .collect()
    }
}

/// A web.config that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// Not well-formed XML.
    #[error("web.config is not well-formed XML (line {line}): {source}")]
    Xml {
        /// 1-based line.
        line: usize,
        /// The error.
        #[source]
        source: quick_xml::Error,
    },
    /// Too big or too deep to be a web.config.
    #[error("web.config is {0}; refusing to read it")]
    Limit(&'static str),
    /// A DTD (entity expansion is never done).
    #[error("web.config has a DTD (<!DOCTYPE>), which IIS does not accept either")]
    Dtd,
}

fn line_at(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Reads the facts from web.config text (a leading BOM is fine).
pub fn parse(text: &str) -> Result<WebConfigFacts, WebConfigError> {
    if text.len() > MAX_BYTES {
        return Err(WebConfigError::Limit("larger than 4 MiB"));
    }
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = Reader::from_str(text);
    let mut facts = WebConfigFacts::default();
    let mut stack: Vec<String> = Vec::new();
    let mut verbs_deny = false;
    let mut verb_allowed = false;
    loop {
        let pos = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|source| WebConfigError::Xml {
            line: line_at(text, reader.error_position() as usize),
            source,
        })?;
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                stack.pop();
                continue;
            }
            Event::DocType(_) => return Err(WebConfigError::Dtd),
            Event::Eof => break,
            _ => continue,
        };
        let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        let mut attrs = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|err| WebConfigError::Xml {
                line: line_at(text, pos),
                source: err.into(),
            })?;
            let value = a.unescape_value().map_err(|source| WebConfigError::Xml {
                line: line_at(text, pos),
                source,
            })?;
            attrs.push((
                String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                value.into_owned(),
            ));
        }
        let parent = stack.last().map(String::as_str);
        let in_web_server = stack.iter().any(|s| s == "system.webServer");
        let in_location = stack.iter().any(|s| s == "location");
        match (parent, name.as_str()) {
            (_, "location") if !in_location => facts.locations.push(LocationFacts {
                path: attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
                ..LocationFacts::default()
            }),
            (Some("handlers"), "add") if in_web_server && in_location => {
                if let Some(l) = facts.locations.last_mut() {
                    l.handlers.push(HandlerAdd {
                        line: line_at(text, pos),
                        attrs,
                    });
                }
            }
            (Some("handlers"), "clear") if in_web_server && in_location => {
                if let Some(l) = facts.locations.last_mut() {
                    l.handlers_cleared = true;
                }
            }
            (Some("handlers"), "add") if in_web_server => facts.handlers.push(HandlerAdd {
                line: line_at(text, pos),
                attrs,
            }),
            (Some("handlers"), "clear") if in_web_server => facts.handlers_cleared = true,
            (Some("requestFiltering"), "verbs") => {
                verbs_deny = attrs.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("allowUnlisted") && v.eq_ignore_ascii_case("false")
                });
            }
            (Some("verbs"), "add") => {
                verb_allowed |= attrs.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("allowed") && v.eq_ignore_ascii_case("true")
                });
            }
            (_, "fastCgi") => {
                facts.fastcgi_section_line.get_or_insert(line_at(text, pos));
            }
            _ => {}
        }
        if !empty {
            stack.push(name);
            if stack.len() > MAX_DEPTH {
                return Err(WebConfigError::Limit("nested deeper than 64 elements"));
            }
        }
    }
    facts.denies_all_verbs = verbs_deny && !verb_allowed;
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLED: &str = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<configuration>\r\n  <system.webServer>\r\n    <handlers>\r\n      <add name=\"iiswsgi-Shop\" path=\"*\" verb=\"*\" modules=\"FastCgiModule\"\r\n           scriptProcessor=\"C:\\Program Files\\iiswsgi\\iiswsgi.exe|run --manifest &quot;C:\\inetpub\\wwwroot\\My Shop\\iiswsgi.toml&quot;\" responseBufferLimit=\"0\" />\r\n    </handlers>\r\n  </system.webServer>\r\n</configuration>\r\n";

    #[test]
    fn installed_handler_is_read_with_entities_unescaped() {
        let f = parse(INSTALLED).expect("parse");
        let h = f.fastcgi_handlers().next().expect("handler");
        assert_eq!(h.name(), "iiswsgi-Shop");
        assert_eq!(
            h.script_processor(),
            r#"C:\Program Files\iiswsgi\iiswsgi.exe|run --manifest "C:\inetpub\wwwroot\My Shop\iiswsgi.toml""#
        );
        assert_eq!(h.response_buffer_limit(), Some(0));
        assert_eq!(h.line, 5);
        assert!(!f.denies_all_verbs);
        assert_eq!(f.fastcgi_section_line, None);
    }

    #[test]
    fn placeholder_denying_every_verb_is_recognised() {
        let f = parse(
            "<configuration><system.webServer><security><requestFiltering><verbs allowUnlisted=\"false\" /></requestFiltering></security></system.webServer></configuration>",
        )
        .expect("parse");
        assert!(f.denies_all_verbs);
        assert!(f.handlers.is_empty());
    }

    #[test]
    fn missing_response_buffer_limit_means_iis_default() {
        let f = parse(
            "<configuration><system.webServer><handlers><add name=\"x\" modules=\"FastCgiModule\"/></handlers><fastCgi/></system.webServer></configuration>",
        )
        .expect("parse");
        assert_eq!(f.handlers[0].response_buffer_limit(), Some(4_194_304));
        assert_eq!(f.fastcgi_section_line, Some(1));
    }

    #[test]
    fn location_handlers_are_the_folders_not_the_apps() {
        let f = parse(
            "<configuration><system.webServer><handlers><add name=\"iiswsgi-Shop\" modules=\"FastCgiModule\" scriptProcessor=\"C:\\i.exe|run\"/></handlers></system.webServer>\
             <location path=\"static\"><system.webServer><handlers><clear/><add name=\"StaticFile\" path=\"*\" modules=\"StaticFileModule,DefaultDocumentModule\"/></handlers></system.webServer></location>\
             <location path=\"media\"><system.webServer><handlers><remove name=\"iiswsgi-Shop\"/></handlers></system.webServer></location></configuration>",
        )
        .expect("parse");
        assert_eq!(f.handlers.len(), 1);
        assert!(!f.handlers_cleared);
        assert_eq!(f.locations.len(), 2);
        assert_eq!(f.static_locations(), ["static"]);
    }

    #[test]
    fn broken_xml_and_dtds_are_errors_not_panics() {
        assert!(matches!(
            parse("<configuration><a></b></configuration>"),
            Err(WebConfigError::Xml { .. })
        ));
        assert!(matches!(
            parse("<!DOCTYPE x [<!ENTITY a \"b\">]><configuration/>"),
            Err(WebConfigError::Dtd)
        ));
        let deep = "<a>".repeat(100);
        assert!(matches!(parse(&deep), Err(WebConfigError::Limit(_))));
    }
}
