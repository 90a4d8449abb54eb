//! `[[parameters]]`: names, tags, validations, entries (regex or XPath), and the `{Name}`
//! references between defaults, which must resolve and must not form a cycle.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use regex::Regex;

use super::values::closest;
use super::{Sp, Validator};
use crate::manifest::{
    ApplicationParameter, Entry, EntryKind, MAX_PARAMETER_ENTRIES, MAX_PARAMETERS, PARAMETER_TAGS,
    Parameter, Validation, ValidationKind, describe_char, raw,
};

impl Validator<'_> {
    /// `app_parameter` is the name `[iis] application-parameter` gives the IisApp parameter:
    /// the one `{Name}` a default may reference besides the declared parameters.
    pub(super) fn parameters(
        &mut self,
        list: &[raw::RawParameter],
        app_parameter: ApplicationParameter,
    ) -> Vec<Parameter> {
        let mut out: Vec<(Parameter, Range<usize>)> = Vec::new();
        let mut by_name: HashMap<String, Range<usize>> = HashMap::new();
        if let Some(extra) = list.get(MAX_PARAMETERS) {
            let span = extra
                .name
                .as_ref()
                .map(Sp::span)
                .or_else(|| param_anchor(extra))
                .unwrap_or_else(|| self.header_span("[parameters]"));
            self.at_most("`[[parameters]]`", list.len(), MAX_PARAMETERS, span);
        }
        for (i, p) in list.iter().take(MAX_PARAMETERS).enumerate() {
            let Some(name_sp) = &p.name else {
                if self
                    .removed
                    .contains(&format!("parameters[{}].name", i + 1))
                {
                    continue;
                }
                let span = param_anchor(p).unwrap_or_else(|| self.header_span("[parameters]"));
                self.error(
                    span,
                    "a `[[parameters]]` entry has no `name`",
                    "add `name = \"Site Title\"` (the name is also how other defaults reference it: `{Site Title}`)",
                );
                continue;
            };
            if self.is_todo(name_sp) {
                continue;
            }
            let name = name_sp.get().clone();
            let mut ok = true;
            if name.trim().is_empty() || name.trim() != name {
                self.error(
                    name_sp.span(),
                    "parameter `name` must be non-empty without leading or trailing spaces",
                    "e.g. `name = \"Site Title\"`",
                );
                ok = false;
            } else if let Some(c) = name
                .chars()
                .find(|c| matches!(c, '{' | '}' | ',' | '\'' | '"') || c.is_control())
            {
                self.error(
                    name_sp.span(),
                    format!("parameter name {name:?} must not contain {}", describe_char(c)),
                    "braces mark `{Name}` references and commas separate tags; use letters, digits and spaces",
                );
                ok = false;
            } else if [
                ApplicationParameter::ApplicationPath,
                ApplicationParameter::IisWebApplicationName,
            ]
            .iter()
            .any(|p| name.eq_ignore_ascii_case(p.as_str()))
            {
                self.error(
                    name_sp.span(),
                    format!("parameter name {name:?} is reserved"),
                    "iiswsgi generates the IisApp parameter (`Application Path`, or `IIS Web Application Name` with `[iis] application-parameter`) from `[iis] application-path`; rename this one",
                );
                ok = false;
            }
            let key = name.to_lowercase();
            if let Some(first) = by_name.get(&key) {
                let (line, _) = self.src.line_col(first.start);
                self.error(
                    name_sp.span(),
                    format!("duplicate parameter name {name:?}"),
                    format!("parameter names are compared case-insensitively by MSDeploy; the first is on line {line}; rename one of them"),
                );
                ok = false;
            } else {
                by_name.insert(key, name_sp.span());
            }
            let description = self.text(p.description.as_ref(), "parameters.description");
            let tags = self.tags(p.tags.as_deref().unwrap_or(&[]));
            let default = p.default.as_ref().map(|d| d.get().clone());
            let validation = p.validation.as_ref().and_then(|v| self.validation(v));
            let validation_failed = p.validation.is_some() && validation.is_none();
            let mut entries = Vec::new();
            let raw_entries = p.entries.as_deref().unwrap_or(&[]);
            let mut entries_ok = match raw_entries.get(MAX_PARAMETER_ENTRIES) {
                Some(extra) => {
                    let span = extra.scope.as_ref().map_or(name_sp.span(), Sp::span);
                    let what = format!("`entries` in parameter {name:?}");
                    self.at_most(&what, raw_entries.len(), MAX_PARAMETER_ENTRIES, span)
                }
                None => true,
            };
            for e in raw_entries.iter().take(MAX_PARAMETER_ENTRIES) {
                match self.entry(e) {
                    Some(e) => entries.push(e),
                    None => entries_ok = false,
                }
            }
            let tags_ok = tags.is_some();
            let tags = tags.unwrap_or_default();
            if tags.contains(&"Hidden") && default.is_none() {
                self.error(
                    name_sp.span(),
                    format!("hidden parameter {name:?} has no `default`"),
                    "nobody is asked for a Hidden parameter's value, so MSDeploy needs a `default`",
                );
                ok = false;
            }
            if let (Some(v), Some(d), Some(dsp)) = (&validation, &default, &p.default)
                && !tags.contains(&"Hidden")
                && !d.contains('{')
                && let Err(why) = check_default(v, d)
            {
                self.error(
                    dsp.span(),
                    format!("the default {d:?} of parameter {name:?} fails its own validation: {why}"),
                    "change the default or the validation; the installer would reject the suggested value",
                );
                ok = false;
            }
            if ok && tags_ok && !validation_failed && entries_ok {
                out.push((
                    Parameter {
                        name,
                        description,
                        default,
                        tags,
                        validation,
                        entries,
                    },
                    name_sp.span(),
                ));
            }
        }
        self.references(list, &out, app_parameter);
        for (p, span) in &out {
            let referenced = out.iter().any(|(o, _)| {
                o.default
                    .as_deref()
                    .is_some_and(|d| references(d).any(|r| r.eq_ignore_ascii_case(&p.name)))
            });
            if p.entries.is_empty() && !referenced {
                self.warn(
                    span.clone(),
                    format!("parameter {:?} has no `entries`, so its value is not used", p.name),
                    "add `entries = [{ kind = \"TextFile\", scope = '\\\\settings\\.py$', match = 'SECRET = \"[^\"]*\"' }]` or reference it from another default as `{Name}`",
                );
            }
        }
        out.into_iter().map(|(p, _)| p).collect()
    }

    fn tags(&mut self, list: &[Sp<String>]) -> Option<Vec<&'static str>> {
        let mut out: Vec<&'static str> = Vec::new();
        let mut ok = true;
        for t in list {
            let s = t.get();
            if s.eq_ignore_ascii_case("IisApp") {
                self.error(
                    t.span(),
                    "the `IisApp` tag is reserved",
                    "iiswsgi writes the IisApp-tagged `Application Path` parameter itself; set its default with `[iis] application-path`",
                );
                ok = false;
                continue;
            }
            match PARAMETER_TAGS.iter().find(|k| k.eq_ignore_ascii_case(s)) {
                Some(k) if out.contains(k) => {
                    self.warn(
                        t.span(),
                        format!("tag `{k}` is listed twice"),
                        "remove the duplicate",
                    );
                }
                Some(k) => out.push(k),
                None => {
                    let help = if s.contains(',') || s.contains(' ') {
                        "give each tag as its own list item: tags = [\"Password\", \"New\"]"
                            .to_string()
                    } else {
                        match closest(s, PARAMETER_TAGS) {
                            Some(k) => format!("did you mean `{k}`?"),
                            None => format!("known tags: {}", PARAMETER_TAGS.join(", ")),
                        }
                    };
                    self.error(t.span(), format!("unknown parameter tag {s:?}"), help);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn validation(&mut self, v: &raw::RawValidation) -> Option<Validation> {
        let Some(kind) = &v.kind else {
            let span = v.value.as_ref().map_or(0..0, Sp::span);
            self.error(
                span,
                "parameter `validation` has no `kind`",
                "add `kind = \"RegularExpression\"`, \"Enumeration\", \"Boolean\" or \"None\"",
            );
            return None;
        };
        let k = *kind.get();
        let needs_value = matches!(
            k,
            ValidationKind::RegularExpression | ValidationKind::Enumeration
        );
        match (&v.value, needs_value) {
            (None, true) => {
                self.error(
                    kind.span(),
                    format!("validation kind `{k:?}` needs a `value`"),
                    if k == ValidationKind::Enumeration {
                        "add `value = \"small,medium,large\"` (the accepted choices, comma-separated)"
                    } else {
                        "add `value = '^[a-z0-9_]+$'` (the pattern the value must match)"
                    },
                );
                return None;
            }
            (Some(val), false) => {
                self.error(
                    val.span(),
                    format!("validation kind `{k:?}` takes no `value`"),
                    "remove `value`, or use kind \"RegularExpression\" / \"Enumeration\"",
                );
                return None;
            }
            _ => {}
        }
        if let Some(val) = &v.value {
            match k {
                ValidationKind::RegularExpression
                    if !self.check_regex(val, "parameters.validation.value", true) =>
                {
                    return None;
                }
                ValidationKind::Enumeration => {
                    let items: Vec<&str> = val.get().split(',').collect();
                    if items.iter().any(|i| i.is_empty()) {
                        self.error(
                            val.span(),
                            "enumeration `value` has an empty choice",
                            "list choices separated by single commas: \"a,b,c\"",
                        );
                        return None;
                    }
                    if items.iter().any(|i| i.trim() != *i) {
                        self.warn(
                            val.span(),
                            "enumeration `value` has spaces around commas",
                            "MSDeploy keeps the spaces as part of the choices; write \"a,b,c\"",
                        );
                    }
                }
                _ => {}
            }
        }
        Some(Validation {
            kind: k,
            value: v.value.as_ref().map(|s| s.get().clone()),
            allow_empty: v.allow_empty.unwrap_or(false),
        })
    }

    fn entry(&mut self, e: &raw::RawEntry) -> Option<Entry> {
        let anchor = e
            .kind
            .as_ref()
            .map(Sp::span)
            .or_else(|| e.scope.as_ref().map(Sp::span))
            .unwrap_or(0..0);
        let mut missing = Vec::new();
        if e.kind.is_none() {
            missing.push("kind");
        }
        if e.scope.is_none() {
            missing.push("scope");
        }
        if e.match_.is_none() {
            missing.push("match");
        }
        if !missing.is_empty() {
            self.error(
                anchor,
                format!("parameter entry is missing {}", missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")),
                "an entry needs all three: { kind = \"TextFile\", scope = '\\\\settings\\.py$', match = 'DEBUG = \\w+' }",
            );
            return None;
        }
        let (kind, scope, m) = (e.kind.as_ref()?, e.scope.as_ref()?, e.match_.as_ref()?);
        let mut ok = true;
        for (s, key) in [(scope, "scope"), (m, "match")] {
            if s.get().is_empty() {
                self.error(
                    s.span(),
                    format!("parameter entry `{key}` is empty"),
                    "MSDeploy requires a non-empty scope and match",
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        ok &= self.check_regex(scope, "parameters.entries.scope", true);
        match kind.get() {
            EntryKind::TextFile | EntryKind::ProviderPath => {
                ok &= self.check_regex(m, "parameters.entries.match", true);
            }
            EntryKind::XmlFile => {
                ok &= self.check_xpath(m, "parameters.entries.match");
            }
        }
        if matches!(kind.get(), EntryKind::TextFile | EntryKind::XmlFile) && ok {
            if scope.get().contains('/') {
                self.warn(
                    scope.span(),
                    "file scopes are matched against Windows paths, which use `\\`",
                    "write '\\\\web\\.config$' instead of '/web.config$'",
                );
            } else if !scope.get().ends_with('$') {
                self.warn(
                    scope.span(),
                    "file scope does not end with `$`",
                    "without `$` the scope also matches longer names (`settings.py.bak`)",
                );
            }
        }
        ok.then(|| Entry {
            kind: *kind.get(),
            scope: scope.get().clone(),
            match_: m.get().clone(),
        })
    }

    /// Every `{Name}` in a default resolves, and references have no cycle.
    fn references(
        &mut self,
        raw_list: &[raw::RawParameter],
        params: &[(Parameter, Range<usize>)],
        app_parameter: ApplicationParameter,
    ) {
        let mut known: Vec<String> = params.iter().map(|(p, _)| p.name.clone()).collect();
        known.push(app_parameter.as_str().to_string());
        // Names of raw entries that failed validation still count as declared, to avoid
        // cascading "unknown reference" errors.
        for p in raw_list {
            if let Some(n) = &p.name
                && !known.iter().any(|k| k.eq_ignore_ascii_case(n.get()))
            {
                known.push(n.get().clone());
            }
        }
        for p in raw_list {
            let Some(d) = &p.default else { continue };
            for r in references(d.get()) {
                if !known.iter().any(|k| k.eq_ignore_ascii_case(r)) {
                    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
                    let help = match closest(r, &refs) {
                        Some(k) => format!("did you mean `{{{k}}}`?"),
                        None => format!(
                            "reference a declared parameter by its name, e.g. `{{{}}}`",
                            app_parameter.as_str()
                        ),
                    };
                    self.error(
                        d.span(),
                        format!("the default refers to `{{{r}}}`, which is not a parameter"),
                        format!("{help} (MSDeploy would insert the text literally)"),
                    );
                }
            }
        }
        // Cycles, among validated parameters.
        let index: HashMap<String, usize> = params
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (p.name.to_lowercase(), i))
            .collect();
        let edges: Vec<Vec<usize>> = params
            .iter()
            .map(|(p, _)| {
                p.default
                    .as_deref()
                    .map(|d| {
                        references(d)
                            .filter_map(|r| index.get(&r.to_lowercase()).copied())
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let mut state = vec![0u8; params.len()]; // 0 new, 1 on stack, 2 done
        let mut reported = BTreeSet::new();
        for start in 0..params.len() {
            let mut stack = vec![(start, 0usize)];
            let mut path = vec![start];
            if state[start] != 0 {
                continue;
            }
            state[start] = 1;
            while let Some((node, next)) = stack.last_mut() {
                let node = *node;
                if *next < edges[node].len() {
                    let to = edges[node][*next];
                    *next += 1;
                    match state[to] {
                        0 => {
                            state[to] = 1;
                            stack.push((to, 0));
                            path.push(to);
                        }
                        1 => {
                            let from = path.iter().position(|&n| n == to).unwrap_or(0);
                            let cycle: Vec<&str> = path[from..]
                                .iter()
                                .map(|&i| params[i].0.name.as_str())
                                .collect();
                            if reported.insert(to) {
                                let span = params[to].1.clone();
                                self.error(
                                    span,
                                    format!("parameter defaults reference each other in a cycle: {} -> {}", cycle.join(" -> "), params[to].0.name),
                                    "break the cycle: one of these defaults must be a plain value",
                                );
                            }
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    stack.pop();
                    path.pop();
                }
            }
        }
    }

    /// A light XPath 1.0 sanity check: balanced brackets, parentheses and quotes.
    fn check_xpath(&mut self, s: &Sp<String>, key: &str) -> bool {
        match xpath_problem(s.get()) {
            None => true,
            Some(why) => {
                self.error(
                    s.span(),
                    format!("`{key}` is not a valid XPath: {why}"),
                    "XmlFile entries select nodes with XPath 1.0, e.g. \"/configuration/appSettings/add[@key='Mode']/@value\"",
                );
                false
            }
        }
    }
}

/// Why `xpath` cannot be an XPath expression (unbalanced `[]`, `()` or quotes), if it cannot.
fn xpath_problem(xpath: &str) -> Option<String> {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    for c in xpath.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' | '(' => stack.push(c),
            ']' | ')' => {
                let open = if c == ']' { '[' } else { '(' };
                if stack.pop() != Some(open) {
                    return Some(format!("unbalanced `{c}`"));
                }
            }
            _ => {}
        }
    }
    if let Some(q) = quote {
        return Some(format!("unclosed {q}"));
    }
    stack.pop().map(|c| format!("unclosed `{c}`"))
}

/// Some span inside a parameter that has no name.
fn param_anchor(p: &raw::RawParameter) -> Option<Range<usize>> {
    p.description
        .as_ref()
        .or(p.default.as_ref())
        .map(Sp::span)
        .or_else(|| p.tags.as_ref().and_then(|t| t.first()).map(Sp::span))
}

/// `{Name}` references in a default value.
fn references(s: &str) -> impl Iterator<Item = &str> {
    s.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
        .filter(|n| !n.is_empty())
}

/// Why a parameter's default fails its own validation; the text follows "fails its own
/// validation: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum DefaultError {
    #[error("it is empty and `allow-empty` is not set")]
    Empty,
    #[error("Boolean parameters take `True` or `False`")]
    NotBoolean,
    #[error("it is not one of {choices:?}")]
    NotAChoice { choices: String },
    #[error("it does not match '{pattern}'")]
    NoMatch { pattern: String },
}

fn check_default(v: &Validation, d: &str) -> Result<(), DefaultError> {
    if d.is_empty() {
        return if v.allow_empty {
            Ok(())
        } else {
            Err(DefaultError::Empty)
        };
    }
    match v.kind {
        ValidationKind::None => Ok(()),
        ValidationKind::Boolean => {
            if d.eq_ignore_ascii_case("true") || d.eq_ignore_ascii_case("false") {
                Ok(())
            } else {
                Err(DefaultError::NotBoolean)
            }
        }
        ValidationKind::Enumeration => {
            let choices = v.value.as_deref().unwrap_or("");
            if choices.split(',').any(|c| c == d) {
                Ok(())
            } else {
                Err(DefaultError::NotAChoice {
                    choices: choices.to_string(),
                })
            }
        }
        ValidationKind::RegularExpression => {
            let pattern = v.value.as_deref().unwrap_or("");
            match Regex::new(pattern) {
                Ok(r) if r.is_match(d) => Ok(()),
                Ok(_) => Err(DefaultError::NoMatch {
                    pattern: pattern.to_string(),
                }),
                Err(_) => Ok(()), // reported where the regex is
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xpath_problem_finds_unbalanced_brackets_and_quotes() {
        assert_eq!(
            xpath_problem("/configuration/appSettings/add[@key='a]b']/@value"),
            None
        );
        assert_eq!(xpath_problem("/a[@k='x'").as_deref(), Some("unclosed `[`"));
        assert_eq!(xpath_problem("/a[@k='x]").as_deref(), Some("unclosed '"));
        assert_eq!(xpath_problem("/a)").as_deref(), Some("unbalanced `)`"));
    }

    #[test]
    fn references_finds_each_braced_name() {
        let r: Vec<&str> = references("Server={DB Server};Database={DB Name};{}").collect();
        assert_eq!(r, vec!["DB Server", "DB Name"]);
    }

    #[test]
    fn default_check_honours_allow_empty_and_kinds() {
        let v = |kind, value: Option<&str>, allow_empty| Validation {
            kind,
            value: value.map(String::from),
            allow_empty,
        };
        assert!(check_default(&v(ValidationKind::Boolean, None, false), "True").is_ok());
        assert!(check_default(&v(ValidationKind::Boolean, None, false), "yes").is_err());
        assert!(check_default(&v(ValidationKind::Enumeration, Some("a,b"), false), "b").is_ok());
        assert!(check_default(&v(ValidationKind::Enumeration, Some("a,b"), false), "c").is_err());
        assert!(
            check_default(
                &v(ValidationKind::RegularExpression, Some("^[a-z]+$"), false),
                "abc"
            )
            .is_ok()
        );
        assert!(
            check_default(
                &v(ValidationKind::RegularExpression, Some("^[a-z]+$"), false),
                ""
            )
            .is_err()
        );
        assert!(
            check_default(
                &v(ValidationKind::RegularExpression, Some("^[a-z]+$"), true),
                ""
            )
            .is_ok()
        );
    }

    #[test]
    fn default_check_errors_read_as_before() {
        let v = |kind, value: Option<&str>| Validation {
            kind,
            value: value.map(String::from),
            allow_empty: false,
        };
        let why = |v: &Validation, d: &str| match check_default(v, d) {
            Ok(()) => panic!("{d:?} was accepted"),
            Err(e) => e.to_string(),
        };
        assert_eq!(
            why(&v(ValidationKind::None, None), ""),
            "it is empty and `allow-empty` is not set"
        );
        assert_eq!(
            why(&v(ValidationKind::Boolean, None), "yes"),
            "Boolean parameters take `True` or `False`"
        );
        assert_eq!(
            why(&v(ValidationKind::Enumeration, Some("a,b")), "c"),
            r#"it is not one of "a,b""#
        );
        assert_eq!(
            why(&v(ValidationKind::RegularExpression, Some("^[a-z]+$")), "A"),
            "it does not match '^[a-z]+$'"
        );
    }
}
