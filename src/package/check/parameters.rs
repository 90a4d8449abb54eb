//! Rules P01–P17 (Parameters.xml), msdeploy-webpi.md §4 and §7.3 (the S rules of
//! SetParameters.xml are in [`super::set_parameters`]).
//!
//! Element and attribute names are compared exactly (msdeploy is case-sensitive about them);
//! values, tags, kinds and the scope/match regexes are compared case-insensitively, as msdeploy
//! applies them. Regexes are .NET regexes: they are compiled with the `regex` crate, which
//! agrees on the common syntax; a pattern using what it lacks (look-around, back-references)
//! cannot be verified and is skipped rather than reported. XPath is only checked for balanced
//! brackets, parentheses and quotes.
//!
//! The cross-checks with the manifest (P05–P07) and with the packaged files (P14) run when a
//! [`PackageContext`] is given, i.e. when checking a package or building one.

use std::collections::{HashMap, HashSet};

use super::Findings;
use super::manifest_xml::ManifestInfo;
use crate::manifest::PARAMETER_TAGS;
use crate::xml::Element;

/// What the cross-checks need from the package around a Parameters.xml.
#[derive(Debug, Clone, Copy)]
pub struct PackageContext<'a> {
    /// The manifest's providers.
    pub manifest: &'a ManifestInfo,
    /// The zip's entry names, when known (P14).
    pub files: Option<&'a [String]>,
}

/// Parameter entry kinds msdeploy knows (values compared case-insensitively).
const ENTRY_KINDS: &[&str] = &[
    "ProviderPath",
    "TextFile",
    "XmlFile",
    "TextFilePosition",
    "DeploymentObjectAttribute",
    "DestinationBinding",
    "DestinationVirtualDirectory",
];

/// The five validation kinds.
const VALIDATION_KINDS: &[&str] = &[
    "None",
    "AllowEmpty",
    "RegularExpression",
    "Enumeration",
    "Boolean",
];

/// The six database roles every flavour needs (§4.8).
const DB_ROLES: &[&str] = &[
    "DBServer",
    "DBName",
    "DBUserName",
    "DBUserPassword",
    "DBAdminUserName",
    "DBAdminPassword",
];

/// Tags that mark a connection-string parameter (`Validate` is only allowed with one).
const CONNECTION_STRING_TAGS: &[&str] = &[
    "SqlConnectionString",
    "MySqlConnectionString",
    "DBConnectionString",
    "DBUserConnectionString",
    "DBAdminConnectionString",
];

/// A parameter as read from the XML.
struct Param<'a> {
    e: &'a Element,
    name: &'a str,
    default: Option<&'a str>,
    tags: Vec<&'a str>,
    validations: Vec<&'a Element>,
    entries: Vec<Entry<'a>>,
}

impl Param<'_> {
    fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }
}

struct Entry<'a> {
    e: &'a Element,
    kind: Option<&'a str>,
    scope: Option<&'a str>,
    match_: Option<&'a str>,
}

impl Entry<'_> {
    fn is_kind(&self, kind: &str) -> bool {
        self.kind.is_some_and(|k| k.eq_ignore_ascii_case(kind))
    }
}

/// Lints a Parameters.xml on its own (no manifest cross-checks).
pub fn lint_standalone(root: &Element, label: &str) -> Findings {
    lint(root, label, None)
}

/// Runs the P rules; `ctx` enables the cross-checks with the manifest and the zip.
pub fn lint(root: &Element, label: &str, ctx: Option<PackageContext<'_>>) -> Findings {
    let mut f = Findings::default();
    let at = |line: usize| format!("{label}:{line}");
    if root.name != "parameters" {
        f.error(
            "P01",
            at(root.line),
            format!(
                "the root element must be `<parameters>` (exact case), found `<{}>`",
                root.name
            ),
        );
    }
    let mut params = Vec::new();
    for e in &root.children {
        if e.name != "parameter" {
            f.error(
                "P01",
                at(e.line),
                format!(
                    "`<{}>` inside `<parameters>`; only `<parameter>` is allowed (exact case)",
                    e.name
                ),
            );
            continue;
        }
        params.push(read_param(e, &at, &mut f));
    }
    // P02: unique names.
    let mut seen: HashMap<String, &str> = HashMap::new();
    for p in &params {
        if let Some(first) = seen.insert(p.name.to_lowercase(), p.name) {
            f.error(
                "P02",
                at(p.e.line),
                format!("parameter `{}` is declared twice (names are case-insensitive; first as `{first}`)", p.name),
            );
        }
    }
    for p in &params {
        entries(p, &at, &mut f);
        validation(p, &at, &mut f);
        tags(p, &at, &mut f);
        // P09: hidden parameters need a default.
        if p.has_tag("Hidden") && p.default.is_none() {
            f.error(
                "P09",
                at(p.e.line),
                format!(
                    "hidden parameter `{}` has no defaultValue, so nobody can ever set it",
                    p.name
                ),
            );
        }
        // P17: regex escapes in a TextFile default.
        if p.entries.iter().any(|e| e.is_kind("TextFile"))
            && let Some(d) = p.default
            && has_regex_escape(d)
        {
            f.warn(
                "P17",
                at(p.e.line),
                format!("the default of `{}` contains regex escapes (`\\(` …), probably copied from `match`; TextFile values are inserted literally", p.name),
            );
        }
    }
    references(&params, &at, &mut f);
    iis_app(&params, label, root.line, &mut f);
    database(&params, ctx, &at, &mut f);
    if let Some(ctx) = ctx {
        cross_check(&params, ctx, &at, &mut f);
    }
    f
}

fn read_param<'a>(e: &'a Element, at: &dyn Fn(usize) -> String, f: &mut Findings) -> Param<'a> {
    known_attrs(
        e,
        &[
            "name",
            "description",
            "defaultValue",
            "tags",
            "friendlyName",
        ],
        at,
        f,
    );
    if e.attr("friendlyName").is_some() {
        f.warn(
            "P16",
            at(e.line),
            "`friendlyName` is not in the App Gallery schema; use `description`".into(),
        );
    }
    let name = e.attr("name").unwrap_or("");
    if name.is_empty() {
        f.error("P01", at(e.line), "a `<parameter>` has no `name`".into());
    }
    let mut param = Param {
        e,
        name,
        default: e.attr("defaultValue"),
        tags: e
            .attr("tags")
            .map(|t| {
                t.split([',', ' '])
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        validations: Vec::new(),
        entries: Vec::new(),
    };
    // Child order: description*, parameterValidation?, parameterEntry*.
    let mut stage = 0;
    for c in &e.children {
        let rank = match c.name.as_str() {
            "description" | "friendlyName" => 0,
            "parameterValidation" => {
                known_attrs(c, &["type", "kind", "validationString"], at, f);
                param.validations.push(c);
                1
            }
            "parameterEntry" => {
                known_attrs(c, &["type", "kind", "scope", "match"], at, f);
                param.entries.push(Entry {
                    e: c,
                    kind: c.attr("type").or_else(|| c.attr("kind")),
                    scope: c.attr("scope"),
                    match_: c.attr("match"),
                });
                2
            }
            other => {
                f.error(
                    "P01",
                    at(c.line),
                    format!("`<{other}>` is not a child msdeploy knows (exact case: description, parameterValidation, parameterEntry)"),
                );
                continue;
            }
        };
        if rank < stage {
            f.warn(
                "P16",
                at(c.line),
                format!("`<{}>` comes after a later kind of child; the Gallery schemas want description, parameterValidation, parameterEntry", c.name),
            );
        }
        stage = stage.max(rank);
    }
    param
}

/// Unknown attributes are W; a known one in the wrong case is E (msdeploy would ignore it).
fn known_attrs(e: &Element, known: &[&str], at: &dyn Fn(usize) -> String, f: &mut Findings) {
    for (k, _) in &e.attrs {
        if known.contains(&k.as_str()) || k.starts_with("xmlns") {
            continue;
        }
        match known.iter().find(|n| n.eq_ignore_ascii_case(k)) {
            Some(right) => f.error(
                "P01",
                at(e.line),
                format!("attribute `{k}` on `<{}>` must be spelled `{right}`; msdeploy is case-sensitive about names", e.name),
            ),
            None => f.warn(
                "P01",
                at(e.line),
                format!("unknown attribute `{k}` on `<{}>` is ignored by msdeploy", e.name),
            ),
        }
    }
}

/// P03, P04, P14 (literal match), P15, P16 (`kind=`).
fn entries(p: &Param<'_>, at: &dyn Fn(usize) -> String, f: &mut Findings) {
    for entry in &p.entries {
        let e = entry.e;
        let loc = at(e.line);
        match (e.attr("type"), e.attr("kind")) {
            (Some(_), Some(_)) => f.error(
                "P03",
                loc.clone(),
                "a parameterEntry has both `type` and `kind`; use one (`type`)".into(),
            ),
            (None, None) => f.error(
                "P03",
                loc.clone(),
                "a parameterEntry has neither `type` nor `kind`".into(),
            ),
            (None, Some(_)) => f.warn(
                "P16",
                loc.clone(),
                "`kind=` on parameterEntry: the Gallery schema only accepts `type=`".into(),
            ),
            _ => {}
        }
        let Some(kind) = entry.kind else { continue };
        let Some(canonical) = ENTRY_KINDS.iter().find(|k| k.eq_ignore_ascii_case(kind)) else {
            f.error(
                "P03",
                loc.clone(),
                format!("`{kind}` is not a parameterEntry type (ProviderPath, TextFile, XmlFile)"),
            );
            continue;
        };
        if *canonical == "TextFilePosition" {
            f.warn(
                "P03",
                loc.clone(),
                "TextFilePosition is deprecated and fails Gallery validation".into(),
            );
        }
        let (scope, m) = (entry.scope.unwrap_or(""), entry.match_.unwrap_or(""));
        for (attr, value) in [("scope", scope), ("match", m)] {
            if value.trim().is_empty() {
                f.error(
                    "P03",
                    loc.clone(),
                    format!("parameterEntry `{attr}` is empty or missing"),
                );
            }
        }
        if scope.is_empty() || m.is_empty() {
            continue;
        }
        if let Err(err) = compile(scope) {
            f.error(
                "P04",
                loc.clone(),
                format!("scope `{scope}` is not a valid regex: {err}"),
            );
        }
        match *canonical {
            "ProviderPath" | "TextFile" => {
                if let Err(err) = compile(m) {
                    f.error(
                        "P04",
                        loc.clone(),
                        format!("match `{m}` is not a valid regex: {err}"),
                    );
                }
            }
            "XmlFile" => {
                if let Some(problem) = xpath_problem(m) {
                    f.error(
                        "P04",
                        loc.clone(),
                        format!("match `{m}` is not XPath 1.0: {problem}"),
                    );
                }
            }
            "TextFilePosition" => {
                let ok = m.split(';').count() == 3
                    && m.split(';')
                        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if !ok {
                    f.error(
                        "P04",
                        loc.clone(),
                        format!("TextFilePosition match `{m}` must be line;column;length"),
                    );
                }
            }
            _ => {}
        }
        if matches!(*canonical, "TextFile" | "XmlFile") {
            if scope.contains('/') || !scope.ends_with('$') {
                f.warn(
                    "P15",
                    loc.clone(),
                    format!("file scope `{scope}` should use `\\\\` separators and end with `$`"),
                );
            }
            if *canonical == "TextFile"
                && !m.contains(['\\', '[', '(', '.', '*', '+', '?', '^', '$', '|', '{'])
            {
                f.warn(
                    "P14",
                    loc.clone(),
                    format!("TextFile match `{m}` is a literal placeholder; a re-publish cannot find it again (match the current value instead)"),
                );
            }
        }
    }
}

/// P12.
fn validation(p: &Param<'_>, at: &dyn Fn(usize) -> String, f: &mut Findings) {
    if p.validations.len() > 1 {
        f.error(
            "P12",
            at(p.validations[1].line),
            format!(
                "parameter `{}` has more than one parameterValidation",
                p.name
            ),
        );
    }
    let Some(v) = p.validations.first() else {
        return;
    };
    let loc = at(v.line);
    let kinds_attr = v.attr("type").or_else(|| v.attr("kind")).unwrap_or("");
    let kinds: Vec<&str> = kinds_attr
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    if kinds.is_empty() {
        f.error(
            "P12",
            loc.clone(),
            "parameterValidation has no `type`".into(),
        );
    }
    for k in &kinds {
        if !VALIDATION_KINDS.iter().any(|v| v.eq_ignore_ascii_case(k)) {
            f.error(
                "P12",
                loc.clone(),
                format!("`{k}` is not a validation type (None, AllowEmpty, RegularExpression, Enumeration, Boolean)"),
            );
        }
    }
    let has = |k: &str| kinds.iter().any(|x| x.eq_ignore_ascii_case(k));
    let s = v.attr("validationString").unwrap_or("");
    let mut regex = None;
    if has("RegularExpression") {
        match compile(s) {
            Ok(r) if !s.is_empty() => regex = r,
            Ok(_) => f.error(
                "P12",
                loc.clone(),
                "RegularExpression validation needs a validationString".into(),
            ),
            Err(err) => f.error(
                "P12",
                loc.clone(),
                format!("validationString `{s}` is not a valid regex: {err}"),
            ),
        }
    }
    if has("Enumeration") {
        if s.trim().is_empty() {
            f.error(
                "P12",
                loc.clone(),
                "Enumeration validation needs a non-empty validationString".into(),
            );
        } else if s.split(',').any(|c| c != c.trim()) {
            f.warn(
                "P12",
                loc.clone(),
                format!("spaces around commas in `{s}` become part of the choices"),
            );
        }
    }
    // The default must satisfy the validation, unless computed, hidden or allowed empty.
    let Some(default) = p.default else { return };
    if p.has_tag("Hidden") || default.contains('{') || (default.is_empty() && has("AllowEmpty")) {
        return;
    }
    let fails = if let Some(r) = &regex {
        !r.is_match(default)
    } else if has("Enumeration") && !s.trim().is_empty() {
        !s.split(',').any(|c| c == default)
    } else if has("Boolean") {
        !(default.eq_ignore_ascii_case("true") || default.eq_ignore_ascii_case("false"))
    } else {
        false
    };
    if fails {
        f.error(
            "P12",
            loc,
            format!(
                "the default `{default}` of `{}` does not pass its own validation",
                p.name
            ),
        );
    }
}

/// P13 (unknown tags) and the `Validate` half of P11.
fn tags(p: &Param<'_>, at: &dyn Fn(usize) -> String, f: &mut Findings) {
    for t in &p.tags {
        let known = t.eq_ignore_ascii_case("IisApp")
            || PARAMETER_TAGS.iter().any(|k| k.eq_ignore_ascii_case(t))
            || [
                "AppHostConfig",
                "AppPoolConfig",
                "ComObject32",
                "ComObject64",
                "MetaKey",
                "RegKey",
            ]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(t));
        if !known {
            f.warn(
                "P13",
                at(p.e.line),
                format!("unknown tag `{t}` on `{}`", p.name),
            );
        }
    }
    if p.has_tag("Validate") && !CONNECTION_STRING_TAGS.iter().any(|c| p.has_tag(c)) {
        f.error(
            "P11",
            at(p.e.line),
            format!(
                "`{}` is tagged Validate without a connection-string tag",
                p.name
            ),
        );
    }
}

/// P10: every `{Name}` resolves, no cycles.
fn references(params: &[Param<'_>], at: &dyn Fn(usize) -> String, f: &mut Findings) {
    let by_name: HashMap<String, usize> = params
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.to_lowercase(), i))
        .collect();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); params.len()];
    for (i, p) in params.iter().enumerate() {
        for r in refs(p.default.unwrap_or("")) {
            match by_name.get(&r.to_lowercase()) {
                Some(&j) => edges[i].push(j),
                None => f.error(
                    "P10",
                    at(p.e.line),
                    format!("`{{{r}}}` in the default of `{}` names no parameter; msdeploy would write it literally", p.name),
                ),
            }
        }
    }
    // Cycle detection: iterative DFS with colours.
    let mut colour = vec![0u8; params.len()];
    let mut reported = HashSet::new();
    for start in 0..params.len() {
        if colour[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        colour[start] = 1;
        while let Some((node, next)) = stack.pop() {
            if let Some(&to) = edges[node].get(next) {
                stack.push((node, next + 1));
                match colour[to] {
                    0 => {
                        colour[to] = 1;
                        stack.push((to, 0));
                    }
                    1 if reported.insert(to) => f.error(
                        "P10",
                        at(params[to].e.line),
                        format!(
                            "the default of `{}` refers back to itself through `{{…}}` references",
                            params[to].name
                        ),
                    ),
                    _ => {}
                }
            } else {
                colour[node] = 2;
            }
        }
    }
}

/// The `{Name}` references in a default value.
pub fn refs(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find(['{', '}']) {
            Some(close) if after.as_bytes()[close] == b'}' => {
                if close > 0 {
                    out.push(&after[..close]);
                }
                rest = &after[close + 1..];
            }
            Some(close) => rest = &after[close..],
            None => break,
        }
    }
    out
}

/// P08: an IisApp-tagged parameter with an entry scoped to iisApp.
fn iis_app(params: &[Param<'_>], label: &str, line: usize, f: &mut Findings) {
    let ok = params.iter().any(|p| {
        p.has_tag("IisApp")
            && p.entries.iter().any(|e| {
                e.scope
                    .and_then(|s| compile(s).ok().flatten())
                    .is_some_and(|r| r.is_match("iisApp"))
            })
    });
    if !ok {
        f.error(
            "P08",
            format!("{label}:{line}"),
            "no parameter is tagged IisApp with a ProviderPath entry scoped to iisApp; WebPI cannot ask where to install".into(),
        );
    }
}

/// P11: the six DB roles per flavour, at most one admin user/password.
fn database(
    params: &[Param<'_>],
    ctx: Option<PackageContext<'_>>,
    at: &dyn Fn(usize) -> String,
    f: &mut Findings,
) {
    let Some(ctx) = ctx else { return };
    for (provider, flavour) in [("dbFullSql", "Sql"), ("dbMySql", "MySql")] {
        if !ctx.manifest.providers.iter().any(|p| p.is(provider)) {
            continue;
        }
        let tagged: Vec<&Param<'_>> = params.iter().filter(|p| p.has_tag(flavour)).collect();
        for role in DB_ROLES {
            let n = tagged.iter().filter(|p| p.has_tag(role)).count();
            if n == 0 {
                f.error(
                    "P11",
                    at(1),
                    format!("`{provider}` needs a parameter tagged {flavour},{role}"),
                );
            }
            if n > 1 && (*role == "DBAdminUserName" || *role == "DBAdminPassword") {
                f.error(
                    "P11",
                    at(1),
                    format!("more than one parameter tagged {flavour},{role}"),
                );
            }
        }
    }
}

/// P05, P06, P07, P14 (scopes that match no file).
fn cross_check(
    params: &[Param<'_>],
    ctx: PackageContext<'_>,
    at: &dyn Fn(usize) -> String,
    f: &mut Findings,
) {
    let providers = &ctx.manifest.providers;
    let mut covered = vec![false; providers.len()];
    for p in params {
        for e in &p.entries {
            let (Some(scope), Some(m)) = (e.scope, e.match_) else {
                continue;
            };
            let (Ok(Some(scope_re)), Ok(Some(match_re))) = (compile(scope), compile(m)) else {
                continue;
            };
            if e.is_kind("ProviderPath") {
                let hits: Vec<usize> = providers
                    .iter()
                    .enumerate()
                    .filter(|(_, pr)| {
                        scope_re.is_match(&pr.name)
                            && pr
                                .path
                                .as_deref()
                                .is_some_and(|path| match_re.is_match(path))
                    })
                    .map(|(i, _)| i)
                    .collect();
                if hits.is_empty() {
                    f.error(
                        "P05",
                        at(e.e.line),
                        format!("ProviderPath entry scope=`{scope}` match=`{m}` of `{}` matches no provider in Manifest.xml: it does nothing", p.name),
                    );
                }
                let acl_hits = hits.iter().filter(|&&i| providers[i].is("setAcl")).count();
                if acl_hits > 1 {
                    f.warn(
                        "P06",
                        at(e.e.line),
                        format!("ProviderPath match `{m}` of `{}` hits {acl_hits} setAcl paths; anchor it with ^…$", p.name),
                    );
                }
                for i in hits {
                    covered[i] = true;
                }
            } else if (e.is_kind("TextFile") || e.is_kind("XmlFile"))
                && let Some(files) = ctx.files
            {
                let any = files
                    .iter()
                    .filter(|n| !n.ends_with('/'))
                    .any(|n| scope_re.is_match(&format!("\\{}", n.replace('/', "\\"))));
                if !any {
                    f.warn(
                        "P14",
                        at(e.e.line),
                        format!(
                            "file scope `{scope}` of `{}` matches no file in the package",
                            p.name
                        ),
                    );
                }
            }
        }
    }
    for (i, pr) in providers.iter().enumerate() {
        let needs = ["iisApp", "setAcl", "dbFullSql", "dbMySql"]
            .iter()
            .any(|n| pr.is(n));
        if needs && !covered[i] {
            f.error(
                "P07",
                format!("Manifest.xml:{}", pr.line),
                format!(
                    "`<{} path=\"{}\">` has no ProviderPath parameter; it would receive the literal package path",
                    pr.name,
                    pr.path.as_deref().unwrap_or("")
                ),
            );
        }
    }
}

// P04 and P12 judge regexes exactly as the manifest validator does.
pub use crate::manifest::dotnet_regex::{RegexError, compile};

/// A light XPath 1.0 sanity check: non-empty, balanced `[]`/`()`, closed quotes.
fn xpath_problem(x: &str) -> Option<&'static str> {
    if x.trim().is_empty() {
        return Some("empty");
    }
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    for c in x.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(') => stack.push(c),
            (None, ']') if stack.pop() != Some('[') => return Some("unbalanced `]`"),
            (None, ')') if stack.pop() != Some('(') => return Some("unbalanced `)`"),
            _ => {}
        }
    }
    if quote.is_some() {
        Some("unclosed quote")
    } else if !stack.is_empty() {
        Some("unclosed bracket or parenthesis")
    } else {
        None
    }
}

/// A backslash followed by a regex metacharacter, as in `define\('DB_HOST'`.
fn has_regex_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'\\' && b"()[]{}.$^*+?|".contains(&w[1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::check::manifest_xml;
    use crate::xml::parse;

    const MANIFEST: &str = r#"<MSDeploy.iisApp><iisApp path="App"/><setAcl path="App/App_Data"/><setAcl path="App/logs"/></MSDeploy.iisApp>"#;

    const GOOD: &str = r#"<parameters>
  <parameter name="Application Path" defaultValue="Default Web Site/App" tags="IisApp">
    <parameterEntry type="ProviderPath" scope="iisApp" match="^App$" />
  </parameter>
  <parameter name="SetAcl App_Data" defaultValue="{Application Path}/App_Data" tags="Hidden">
    <parameterEntry type="ProviderPath" scope="setAcl" match="^App/App_Data$" />
  </parameter>
  <parameter name="SetAcl logs" defaultValue="{Application Path}/logs" tags="Hidden">
    <parameterEntry type="ProviderPath" scope="setAcl" match="^App/logs$" />
  </parameter>
</parameters>"#;

    fn run(params: &str) -> Findings {
        let info = manifest_xml::lint(&parse(MANIFEST).expect("xml"), "Manifest.xml");
        let files = vec!["App/".to_string(), "App/settings.py".to_string()];
        let ctx = PackageContext {
            manifest: &info,
            files: Some(&files),
        };
        lint(&parse(params).expect("xml"), "Parameters.xml", Some(ctx))
    }

    fn rules(f: &Findings) -> Vec<&'static str> {
        f.0.iter().map(|x| x.rule).collect()
    }

    #[test]
    fn iiswsgi_shaped_parameters_are_clean() {
        let f = run(GOOD);
        assert!(f.0.is_empty(), "{f:?}");
    }

    #[test]
    fn dangling_reference_is_p10() {
        let f = run(&GOOD.replace("{Application Path}/logs", "{DbName}/logs"));
        assert_eq!(rules(&f), ["P10"]);
        assert!(f.0[0].message.contains("{DbName}"), "{}", f.0[0].message);
    }

    #[test]
    fn references_are_case_insensitive() {
        let f = run(&GOOD.replace("{Application Path}/logs", "{application PATH}/logs"));
        assert!(f.0.is_empty(), "{f:?}");
    }

    #[test]
    fn reference_cycle_is_p10() {
        let doc = GOOD.replace(
            "</parameters>",
            r#"<parameter name="A" defaultValue="{B}"/><parameter name="B" defaultValue="x{A}"/></parameters>"#,
        );
        assert!(run(&doc).has("P10"));
    }

    #[test]
    fn setacl_without_parameter_is_p07() {
        let doc = GOOD.replace(r#"match="^App/logs$""#, r#"match="^App/other$""#);
        let f = run(&doc);
        assert!(f.has("P07"), "{f:?}");
        assert!(f.has("P05"), "{f:?}");
        let p07 = f.0.iter().find(|x| x.rule == "P07").expect("P07");
        assert!(p07.message.contains("App/logs"), "{}", p07.message);
    }

    #[test]
    fn missing_iisapp_parameter_is_p08() {
        let doc = GOOD.replace(r#" tags="IisApp""#, "");
        assert!(run(&doc).has("P08"));
    }

    #[test]
    fn unanchored_match_hitting_two_acls_is_p06() {
        let doc = GOOD.replace(r#"match="^App/App_Data$""#, r#"match="App/""#);
        assert!(run(&doc).has("P06"));
    }

    #[test]
    fn hidden_without_default_is_p09() {
        let doc = GOOD.replace(r#"defaultValue="{Application Path}/logs" "#, "");
        assert!(run(&doc).has("P09"));
    }

    #[test]
    fn duplicate_names_ignore_case_p02() {
        let doc = GOOD.replace(r#"name="SetAcl logs""#, r#"name="setacl APP_DATA""#);
        assert!(run(&doc).has("P02"));
    }

    #[test]
    fn wrong_case_names_and_kind_attribute_are_flagged() {
        let doc = GOOD
            .replace("defaultValue=\"Default", "defaultvalue=\"Default")
            .replace(r#"<parameterEntry type="ProviderPath" scope="setAcl" match="^App/logs$" />"#,
                r#"<parameterEntry kind="ProviderPath" scope="setAcl" match="^App/logs$" tags="x"/><parameterentry/>"#);
        let f = run(&doc);
        let r = rules(&f);
        assert!(r.contains(&"P01") && r.contains(&"P16"), "{f:?}");
        assert!(
            f.0.iter()
                .any(|x| x.rule == "P01" && x.message.contains("defaultValue"))
        );
        assert!(
            f.0.iter()
                .any(|x| x.rule == "P01" && x.message.contains("parameterentry"))
        );
    }

    #[test]
    fn bad_entries_are_p03_and_p04() {
        let doc = GOOD.replace(
            "</parameters>",
            r#"<parameter name="X" defaultValue="1"><parameterEntry type="Bogus" scope="a" match="b"/><parameterEntry type="TextFile" scope="" match="x"/><parameterEntry type="TextFile" scope="\\a\.py$" match="(unclosed"/><parameterEntry type="XmlFile" scope="\\web\.config$" match="/a[@b='c'"/></parameter></parameters>"#,
        );
        let f = run(&doc);
        assert_eq!(f.0.iter().filter(|x| x.rule == "P03").count(), 2, "{f:?}");
        assert_eq!(f.0.iter().filter(|x| x.rule == "P04").count(), 2, "{f:?}");
    }

    #[test]
    fn validation_rules_are_p12() {
        let doc = GOOD.replace(
            "</parameters>",
            r#"<parameter name="Mode" defaultValue="staging"><parameterValidation type="Enumeration" validationString="dev, prod"/></parameter>
               <parameter name="Port" defaultValue="abc"><parameterValidation type="RegularExpression" validationString="^\d+$"/></parameter>
               <parameter name="Flag" defaultValue="yes"><parameterValidation type="Boolean"/></parameter>
               <parameter name="Empty" defaultValue=""><parameterValidation type="AllowEmpty,RegularExpression" validationString="^\d+$"/></parameter>
               <parameter name="Bad"><parameterValidation type="Fancy"/><parameterValidation type="None"/></parameter></parameters>"#,
        );
        let f = run(&doc);
        let p12: Vec<&Finding> = f.0.iter().filter(|x| x.rule == "P12").collect();
        // space warning, three defaults failing, unknown kind, two validations
        assert_eq!(p12.len(), 6, "{p12:#?}");
    }

    use crate::package::check::Finding;

    #[test]
    fn unknown_tag_is_p13_and_validate_without_connection_string_is_p11() {
        let doc = GOOD.replace(r#"tags="IisApp""#, r#"tags="IisApp,Shiny,Validate""#);
        let f = run(&doc);
        assert!(f.has("P13") && f.has("P11"), "{f:?}");
    }

    #[test]
    fn textfile_checks_p14_p15_p17() {
        let doc = GOOD.replace(
            "</parameters>",
            r#"<parameter name="Db" defaultValue="define\('X'\)"><parameterEntry type="TextFile" scope="/nomatch.py" match="PLACEHOLDER"/></parameter></parameters>"#,
        );
        let f = run(&doc);
        assert_eq!(f.0.iter().filter(|x| x.rule == "P14").count(), 2, "{f:?}");
        assert!(f.has("P15") && f.has("P17"), "{f:?}");
    }

    #[test]
    fn db_provider_needs_the_six_roles_p11() {
        let info = manifest_xml::lint(
            &parse(r#"<m><iisApp path="App"/><dbMySql path="install.sql"/></m>"#).expect("xml"),
            "Manifest.xml",
        );
        let ctx = PackageContext {
            manifest: &info,
            files: None,
        };
        let f = lint(&parse(GOOD).expect("xml"), "Parameters.xml", Some(ctx));
        assert_eq!(f.0.iter().filter(|x| x.rule == "P11").count(), 6, "{f:?}");
    }

    #[test]
    fn wordpress_sample_dangling_refs_are_caught() {
        // iis-docs WordPress Parameters.xml (spec §7.6), trimmed.
        let doc = r#"<parameters>
          <parameter name="AppPath" defaultValue="Default Web Site/wordpress" tags="iisapp"><parameterEntry type="ProviderPath" scope="iisapp" match="wordpress"/></parameter>
          <parameter name="DatabaseName" defaultValue="wordpress"/>
          <parameter name="Automatic DatabaseServer" defaultValue="define\('DB_HOST', '{DatabaseServer}'\);" tags="Hidden"><parameterEntry type="TextFile" scope="\\wp-config.php$" match="define\('DB_HOST', '[^']*'\);"/></parameter>
          <parameter name="ConnectionString" defaultValue="Server={DatabaseServer};Database={DbName};uid={DbUsername};Pwd={DbPassword};" tags="Hidden,MySQLConnectionString"/>
        </parameters>"#;
        let f = lint_standalone(&parse(doc).expect("xml"), "Parameters.xml");
        let dangling = f.0.iter().filter(|x| x.rule == "P10").count();
        assert_eq!(dangling, 5, "{f:?}"); // DatabaseServer twice, DbName, DbUsername, DbPassword
        assert!(f.has("P17"));
    }

    #[test]
    fn reference_extraction() {
        assert_eq!(refs("a{B}c{D E}{}{{x}"), ["B", "D E", "x"]);
        assert!(refs("no refs").is_empty());
    }
}
