//! Rules C01–C04 (web.config), msdeploy-webpi.md §5 and §7.4: the FastCGI handler mapping must
//! name the registered `fullPath|arguments` exactly, stream (`responseBufferLimit="0"`), and
//! carry nothing appcmd cannot quote; `<fastCgi>` has no effect at app level.

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
    if expected_script_processor.is_some() && fastcgi_handlers == 0 {
        f.error(
            "C01",
            label.to_string(),
            "no FastCGI handler (`<handlers><add modules=\"FastCgiModule\">`) in web.config".into(),
        );
    }
    f
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
