//! Rules C01–C06 (web.config), msdeploy-webpi.md §5 and §7.4: the FastCGI handler mapping must
//! name the registered `fullPath|arguments` exactly, stream (`responseBufferLimit="0"`), and
//! carry nothing appcmd cannot quote; `<fastCgi>` has no effect at app level. C05 and C06 are
//! iiswsgi's own, for `[[iis.static]]`: each static folder has a `<location>` whose handlers
//! are cleared down to IIS's StaticFileModule (C05, checked where the manifest is known), and
//! no `<location>` clears its handlers without mapping one again (C06).

use super::Findings;
use crate::xml::Element;

/// Runs the C rules on a parsed web.config. `expected_script_processor` is the registered
/// `fullPath|arguments` when known (C01 is skipped otherwise).
pub fn lint(root: &Element, label: &str, expected_script_processor: Option<&str>) -> Findings {
    let mut f = Findings::default();
    let at = |line: usize| format!("{label}:{line}");
    let mut fastcgi_handlers = 0;
    for e in root.descendants() {
        if e.local.eq_ignore_ascii_case("fastCgi") {
            f.warn(
                "C02",
                at(e.line),
                "`<fastCgi>` in web.config has no effect (it is AppHostOnly); the install step registers it with appcmd".into(),
            );
            for app in e.descendants() {
                if let Some(m) = app.attr("monitorChangesTo")
                    && m.contains('%')
                {
                    f.error(
                        "C04",
                        at(app.line),
                        format!(
                            "monitorChangesTo `{m}` contains `%`; IIS needs a literal path there"
                        ),
                    );
                }
                for attr in ["fullPath", "arguments"] {
                    if let Some(v) = app.attr(attr)
                        && v.contains('\'')
                    {
                        f.error(
                            "C04",
                            at(app.line),
                            format!("FastCGI `{attr}` contains `'`, which appcmd cannot quote"),
                        );
                    }
                }
            }
        }
        let is_fastcgi_handler = e.local == "add"
            && e.attr("modules").is_some_and(|m| {
                m.split(',')
                    .any(|m| m.trim().eq_ignore_ascii_case("FastCgiModule"))
            });
        if !is_fastcgi_handler {
            continue;
        }
        fastcgi_handlers += 1;
        let sp = e.attr("scriptProcessor").unwrap_or("");
        if let Some(expected) = expected_script_processor
            && sp != expected
        {
            f.error(
                "C01",
                at(e.line),
                format!("scriptProcessor `{sp}` differs from the registered `{expected}`; IIS answers 500.0 (0x80070585)"),
            );
        }
        if sp.contains('\'') {
            f.error(
                "C04",
                at(e.line),
                "scriptProcessor contains `'`, which appcmd cannot quote".into(),
            );
        }
        if e.attr("responseBufferLimit") != Some("0") {
            f.warn(
                "C03",
                at(e.line),
                "the FastCGI handler lacks responseBufferLimit=\"0\"; IIS buffers 4 MB of every response, so streaming stalls".into(),
            );
        }
    }
    for loc in root.children_named("location") {
        let Some(handlers) = location_handlers(loc) else {
            continue;
        };
        if handlers.child("clear").is_some() && handlers.child("add").is_none() {
            f.error(
                "C06",
                at(handlers.line),
                format!(
                    "<location path=\"{}\"> clears its handlers and maps none: no request under it can be served",
                    loc.attr("path").unwrap_or("")
                ),
            );
        }
    }
    if expected_script_processor.is_some() && fastcgi_handlers == 0 {
        f.error(
            "C01",
            label.to_string(),
            "no FastCGI handler (`<handlers><add modules=\"FastCgiModule\">`) in web.config".into(),
        );
    }
    f
}

/// [`lint`] for a web.config `iiswsgi install` renders: C01 against the registered
/// `script_processor`, and C05: every `[[iis.static]]` folder in `static_paths` is served by
/// IIS's StaticFileModule.
pub fn lint_installed(
    root: &Element,
    label: &str,
    script_processor: &str,
    static_paths: &[String],
) -> Findings {
    let mut f = lint(root, label, Some(script_processor));
    for path in static_paths {
        let wanted = path.trim_matches('/');
        let loc = root.children_named("location").find(|l| {
            l.attr("path")
                .is_some_and(|p| p.trim_matches('/').eq_ignore_ascii_case(wanted))
        });
        let problem = match loc.map(|l| (l, location_handlers(l))) {
            None => Some((
                label.to_string(),
                format!(
                    "no <location path=\"{wanted}\">: the FastCGI handler serves /{wanted}/ through Python"
                ),
            )),
            Some((l, None)) => Some((
                format!("{label}:{}", l.line),
                format!(
                    "<location path=\"{wanted}\"> has no <handlers>: the FastCGI handler still serves it"
                ),
            )),
            Some((_, Some(h))) => {
                let adds: Vec<&Element> = h.children_named("add").collect();
                let modules = |e: &Element, m: &str| {
                    e.attr("modules")
                        .is_some_and(|v| v.split(',').any(|x| x.trim().eq_ignore_ascii_case(m)))
                };
                if h.child("clear").is_none() {
                    Some((
                        format!("{label}:{}", h.line),
                        format!(
                            "<location path=\"{wanted}\"> does not <clear/> the inherited handlers: the FastCGI handler (path=\"*\") still serves it"
                        ),
                    ))
                } else if adds.iter().any(|&e| modules(e, "FastCgiModule")) {
                    Some((
                        format!("{label}:{}", h.line),
                        format!("<location path=\"{wanted}\"> maps a FastCGI handler again"),
                    ))
                } else if !adds.iter().any(|&e| modules(e, "StaticFileModule")) {
                    Some((
                        format!("{label}:{}", h.line),
                        format!(
                            "<location path=\"{wanted}\"> maps no StaticFileModule handler: IIS cannot serve its files"
                        ),
                    ))
                } else {
                    None
                }
            }
        };
        if let Some((at, message)) = problem {
            f.error("C05", at, format!("[[iis.static]] `{wanted}`: {message}"));
        }
    }
    f
}

/// `<location>/<system.webServer>/<handlers>`.
fn location_handlers(loc: &Element) -> Option<&Element> {
    loc.child("system.webServer")?.child("handlers")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    const GOOD: &str = r#"<configuration><system.webServer><handlers>
      <add name="iiswsgi-A" path="*" verb="*" modules="FastCgiModule" scriptProcessor="C:\i.exe|run" responseBufferLimit="0"/>
    </handlers></system.webServer></configuration>"#;

    #[test]
    fn matching_handler_is_clean() {
        let f = lint(
            &parse(GOOD).expect("xml"),
            "web.config",
            Some(r"C:\i.exe|run"),
        );
        assert!(f.0.is_empty(), "{f:?}");
    }

    #[test]
    fn script_processor_mismatch_is_c01() {
        let f = lint(
            &parse(GOOD).expect("xml"),
            "web.config",
            Some(r#""C:\i.exe"|run"#),
        );
        assert!(f.has("C01"));
    }

    fn with_location(location: &str) -> String {
        GOOD.replace("</configuration>", &format!("{location}</configuration>"))
    }

    const STATIC: &str = r#"<location path="static"><system.webServer><handlers><clear/>
      <add name="StaticFile" path="*" verb="*" modules="StaticFileModule,DefaultDocumentModule" resourceType="File" requireAccess="Read"/>
    </handlers></system.webServer></location>"#;

    #[test]
    fn a_static_location_clearing_down_to_static_files_is_clean() {
        let doc = with_location(STATIC);
        let f = lint_installed(
            &parse(&doc).expect("xml"),
            "web.config",
            r"C:\i.exe|run",
            &["static".to_string()],
        );
        assert!(f.0.is_empty(), "{f:?}");
    }

    #[test]
    fn a_static_folder_python_still_serves_is_c05() {
        let sp = r"C:\i.exe|run";
        let statics = ["static".to_string()];
        let c05 = |doc: &str| {
            let f = lint_installed(&parse(doc).expect("xml"), "web.config", sp, &statics);
            assert!(f.has("C05"), "{f:?}");
            f.0.iter()
                .find(|x| x.rule == "C05")
                .map(|x| x.message.clone())
                .unwrap_or_default()
        };
        assert!(c05(GOOD).contains("no <location path=\"static\">"));
        assert!(c05(&with_location(&STATIC.replace("<clear/>", ""))).contains("does not <clear/>"));
        assert!(
            c05(&with_location(&STATIC.replace("StaticFileModule,", "")))
                .contains("no StaticFileModule")
        );
        // A location for another folder does not count.
        assert!(
            c05(&with_location(&STATIC.replace("\"static\"", "\"assets\"")))
                .contains("no <location")
        );
    }

    #[test]
    fn a_location_that_clears_every_handler_is_c06() {
        let doc = with_location(
            r#"<location path="x"><system.webServer><handlers><clear/></handlers></system.webServer></location>"#,
        );
        let f = lint(&parse(&doc).expect("xml"), "web.config", None);
        assert!(f.has("C06"), "{f:?}");
    }

    #[test]
    fn fastcgi_section_and_buffering_are_warnings_quotes_and_percent_errors() {
        let doc = r#"<configuration><system.webServer>
          <fastCgi><application fullPath="C:\it's.exe" monitorChangesTo="%TEMP%\x"/></fastCgi>
          <handlers><add modules="FastCgiModule" scriptProcessor="C:\i.exe|a'b"/></handlers>
        </system.webServer></configuration>"#;
        let f = lint(&parse(doc).expect("xml"), "web.config", None);
        assert!(f.has("C02") && f.has("C03"), "{f:?}");
        assert_eq!(f.0.iter().filter(|x| x.rule == "C04").count(), 3, "{f:?}");
    }
}
