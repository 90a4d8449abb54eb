//! Rules S01–S06: a SetParameters.xml (msdeploy-webpi.md §4.11, §7.3), on its own and against
//! the Parameters.xml of its package.
//!
//! | ID | Sev | Rule |
//! | --- | --- | --- |
//! | S01 | E | Only `<setParameter>` children, each with `name` and `value` (exact case). |
//! | S02 | E | Every name is declared in Parameters.xml (case-insensitively): msdeploy fails on an undeclared one. |
//! | S03 | E | A Hidden parameter without a default is set. |
//! | S04 | W | A visible parameter without a default is set to something: msdeploy refuses the sync otherwise (fill it in, or pass `-setParam`). |
//! | S05 | E | A non-empty value passes the parameter's validation (RegularExpression, Enumeration, Boolean). |
//! | S06 | W | A name is set twice: msdeploy takes the first. |
//!
//! S02–S05 need the Parameters.xml: [`lint`] takes it when the caller found one (the zip of the
//! same name next to the file, or the package being built).

use std::collections::HashMap;

use super::Findings;
use super::parameters::compile;
use crate::xml::Element;

/// A declared parameter, as far as the S rules care.
struct Declared<'a> {
    name: &'a str,
    default: Option<&'a str>,
    hidden: bool,
    validation: Option<(&'a str, &'a str)>,
}

/// Runs S01 and S06, and S02–S05 when `parameters` (the root of a Parameters.xml) is given.
pub fn lint(root: &Element, label: &str, parameters: Option<&Element>) -> Findings {
    let mut f = Findings::default();
    let at = |line: usize| format!("{label}:{line}");
    if root.name != "parameters" {
        f.error(
            "S01",
            at(root.line),
            format!(
                "the root element must be `<parameters>` (exact case), found `<{}>`",
                root.name
            ),
        );
    }
    let mut set: HashMap<String, (&str, usize)> = HashMap::new();
    for e in &root.children {
        if e.name != "setParameter" {
            f.error(
                "S01",
                at(e.line),
                format!("`<{}>` is not `<setParameter>`", e.name),
            );
            continue;
        }
        for attr in ["name", "value"] {
            if e.attr(attr).is_none() {
                f.error(
                    "S01",
                    at(e.line),
                    format!("`<setParameter>` lacks `{attr}`"),
                );
            }
        }
        let (Some(name), Some(value)) = (e.attr("name"), e.attr("value")) else {
            continue;
        };
        let key = name.to_lowercase();
        if let Some((_, line)) = set.get(&key) {
            f.warn(
                "S06",
                at(e.line),
                format!("`{name}` is set twice; msdeploy takes the first, on line {line}"),
            );
        } else {
            set.insert(key, (value, e.line));
        }
    }
    if let Some(params) = parameters {
        against_parameters(root, params, &set, &at, &mut f);
    }
    f
}

fn declared(params: &Element) -> Vec<Declared<'_>> {
    params
        .children_named("parameter")
        .filter_map(|p| {
            let name = p.attr("name")?;
            let hidden = p
                .attr("tags")
                .unwrap_or("")
                .split([',', ' '])
                .any(|t| t.trim().eq_ignore_ascii_case("Hidden"));
            let validation = p.child("parameterValidation").map(|v| {
                (
                    v.attr("type").or_else(|| v.attr("kind")).unwrap_or(""),
                    v.attr("validationString").unwrap_or(""),
                )
            });
            Some(Declared {
                name,
                default: p.attr("defaultValue"),
                hidden,
                validation,
            })
        })
        .collect()
}

fn against_parameters(
    root: &Element,
    params: &Element,
    set: &HashMap<String, (&str, usize)>,
    at: &dyn Fn(usize) -> String,
    f: &mut Findings,
) {
    let declared = declared(params);
    for e in root.children_named("setParameter") {
        let Some(name) = e.attr("name") else { continue };
        if !declared.iter().any(|d| d.name.eq_ignore_ascii_case(name)) {
            f.error(
                "S02",
                at(e.line),
                format!("`{name}` is not a parameter of the package; msdeploy fails on it"),
            );
        }
    }
    for d in &declared {
        let value = set.get(&d.name.to_lowercase()).copied();
        match (d.default, value) {
            (None, None) if d.hidden => f.error(
                "S03",
                at(root.line),
                format!(
                    "hidden parameter `{}` has no default and is not set here",
                    d.name
                ),
            ),
            (None, None) | (None, Some(("", _))) => f.warn(
                "S04",
                value.map_or_else(|| at(root.line), |(_, line)| at(line)),
                format!(
                    "`{}` has no default and no value: msdeploy refuses the sync; fill it in, or pass -setParam:name='{}',value='...'",
                    d.name, d.name
                ),
            ),
            _ => {}
        }
        if let (Some((value, line)), Some((kinds, pattern))) = (value, d.validation)
            && !value.is_empty()
            && let Some(why) = fails_validation(value, kinds, pattern)
        {
            f.error("S05", at(line), format!("the value of `{}` {why}", d.name));
        }
    }
}

/// Why `value` fails a validation of `kinds` (`AllowEmpty,RegularExpression`…) with
/// `pattern`, or `None` when it passes (or the regex cannot be checked here).
fn fails_validation(value: &str, kinds: &str, pattern: &str) -> Option<String> {
    let has = |k: &str| kinds.split(',').any(|x| x.trim().eq_ignore_ascii_case(k));
    if has("RegularExpression")
        && let Ok(Some(re)) = compile(pattern)
        && !re.is_match(value)
    {
        return Some(format!("does not match its regular expression `{pattern}`"));
    }
    if has("Enumeration") && !pattern.split(',').any(|c| c == value) {
        return Some(format!("is not one of `{pattern}`"));
    }
    if has("Boolean")
        && !(value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"))
    {
        return Some("is not True or False".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    const PARAMS: &str = r#"<parameters>
  <parameter name="Application Path" defaultValue="Default Web Site/App" tags="IisApp">
    <parameterEntry type="ProviderPath" scope="iisApp" match="^App$" />
  </parameter>
  <parameter name="Secret Key" tags="Password,NoStore">
    <parameterValidation type="RegularExpression" validationString="^[^&quot;\\]{32,}$" />
    <parameterEntry type="TextFile" scope="\\settings\.py$" match="x" />
  </parameter>
  <parameter name="Mode" defaultValue="dev">
    <parameterValidation type="Enumeration" validationString="dev,prod" />
  </parameter>
  <parameter name="Token" tags="Hidden">
    <parameterEntry type="TextFile" scope="\\a\.py$" match="y" />
  </parameter>
</parameters>"#;

    fn run(set: &str) -> Findings {
        let params = parse(PARAMS).expect("params");
        lint(&parse(set).expect("set"), "S.xml", Some(&params))
    }

    fn rules(f: &Findings) -> Vec<&'static str> {
        f.0.iter().map(|x| x.rule).collect()
    }

    #[test]
    fn a_complete_file_is_clean() {
        let f = run(r#"<parameters>
  <setParameter name="Application Path" value="Default Web Site/App" />
  <setParameter name="Secret Key" value="0123456789abcdef0123456789abcdef" />
  <setParameter name="Token" value="t" />
</parameters>"#);
        assert!(f.0.is_empty(), "{f:?}");
    }

    #[test]
    fn missing_attributes_and_strange_children_are_s01() {
        let set = parse(r#"<parameters><setParameter name="Mode"/><setparameter name="x" value="y"/></parameters>"#)
            .expect("xml");
        assert_eq!(rules(&lint(&set, "S.xml", None)), ["S01", "S01"]);
    }

    #[test]
    fn undeclared_unset_hidden_empty_required_invalid_and_twice() {
        let f = run(r#"<parameters>
  <setParameter name="Nope" value="1" />
  <setParameter name="Secret Key" value="" />
  <setParameter name="Mode" value="staging" />
  <setParameter name="mode" value="dev" />
</parameters>"#);
        assert_eq!(rules(&f), ["S06", "S02", "S04", "S05", "S03"], "{f:?}");
        assert!(f.0[2].message.contains("Secret Key"), "{f:?}");
    }

    #[test]
    fn a_short_secret_fails_its_regex() {
        let f = run(r#"<parameters>
  <setParameter name="Secret Key" value="short" />
  <setParameter name="Token" value="t" />
</parameters>"#);
        assert_eq!(rules(&f), ["S05"], "{f:?}");
    }
}
