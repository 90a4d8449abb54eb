//! Stage one of reading a manifest: TOML text to [`RawManifest`], reporting every syntax error,
//! every type error (one per section or `[[parameters]]` entry) and every unknown key.
//!
//! Why not `toml::from_str` with `deny_unknown_fields`: it stops at the first problem, and a
//! newcomer fixing a manifest one error per run gives up. Instead the document is parsed once
//! into toml's spanned tree ([`DeTable`]), each top-level section is deserialized on its own
//! (so a type error in `[iis]` does not hide one in `[app]`), and `serde_ignored` reports
//! every key the raw types do not know. The key's span comes from the spanned tree; the
//! "did you mean" candidates come from the JSON schema of the raw types, so they can never
//! drift from what the deserializer accepts. No I/O here.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use toml::Spanned as TomlSpanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diagnostic::{Diagnostic, SourceFile};
use super::raw::RawManifest;

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// What stage one produced: the raw manifest (sections that failed to deserialize are left
/// out) and the diagnostics found so far.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub raw: RawManifest,
    /// Top-level sections that had a type error; the validator does not complain that they are
    /// missing.
    pub failed: BTreeSet<String>,
    /// True when the TOML itself did not parse; nothing else was checked.
    pub syntax_failed: bool,
    /// Keys (`app.name`, `parameters[2].name`) dropped because their value had the wrong
    /// type; already reported, so not "missing" either.
    pub removed: BTreeSet<String>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses `source` into raw types, collecting every problem this stage can see.
pub(crate) fn parse(source: &SourceFile) -> Parsed {
    let mut out = Parsed::default();
    let (root, errors) = DeTable::parse_recoverable(source.text());
    if !errors.is_empty() {
        out.syntax_failed = true;
        for e in errors {
            out.diagnostics.push(syntax_diagnostic(source, &e));
        }
        return out;
    }
    let root_span = root.span();
    let root = root.into_inner();
    let mut schema: Option<Json> = None;
    for (key, value) in root.iter() {
        let name = key.get_ref().as_ref();
        let path = vec![Seg::Key(name.to_string())];
        let mut ignored: Vec<Vec<Seg>> = Vec::new();
        let ok = match name {
            "app" => section(source, value, &path, &mut ignored, &mut out, |r, v| {
                r.app = Some(v)
            }),
            "wsgi" => section(source, value, &path, &mut ignored, &mut out, |r, v| {
                r.wsgi = Some(v)
            }),
            "iis" => section(source, value, &path, &mut ignored, &mut out, |r, v| {
                r.iis = Some(v)
            }),
            "package" => section(source, value, &path, &mut ignored, &mut out, |r, v| {
                r.package = Some(v)
            }),
            "feed" => section(source, value, &path, &mut ignored, &mut out, |r, v| {
                r.feed = Some(v)
            }),
            "run" => section(source, value, &path, &mut ignored, &mut out, |r, v| {
                r.run = Some(v)
            }),
            "parameters" => parameters(source, value, &mut ignored, &mut out),
            _ => {
                let schema = schema.get_or_insert_with(super::schema::json_schema_value);
                out.diagnostics
                    .push(unknown_key(source, &[], name, key.span(), value, schema));
                true
            }
        };
        if !ok {
            out.failed.insert(name.to_string());
        }
        if !ignored.is_empty() {
            let schema = schema.get_or_insert_with(super::schema::json_schema_value);
            let top = DeValue::Table(root.clone());
            let top = TomlSpanned::new(root_span.clone(), top);
            for path in ignored {
                if let Some((key_span, value)) = find(&top, &path) {
                    let (parent, last) = path.split_at(path.len() - 1);
                    let Some(Seg::Key(last)) = last.first() else {
                        continue;
                    };
                    out.diagnostics
                        .push(unknown_key(source, parent, last, key_span, value, schema));
                }
            }
        }
    }
    out
}

/// Starts of every string value that is a `TODO` placeholder written by `iiswsgi init`.
pub(crate) fn todo_spans(source: &SourceFile) -> BTreeSet<usize> {
    fn walk(v: &TomlSpanned<DeValue<'_>>, out: &mut BTreeSet<usize>) {
        match v.get_ref() {
            DeValue::String(s) if s.trim_start().starts_with("TODO") => {
                out.insert(v.span().start);
            }
            DeValue::Array(a) => a.iter().for_each(|i| walk(i, out)),
            DeValue::Table(t) => t.iter().for_each(|(_, i)| walk(i, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    if let Ok(root) = DeTable::parse(source.text()) {
        let span = root.span();
        walk(
            &TomlSpanned::new(span, DeValue::Table(root.into_inner())),
            &mut out,
        );
    }
    out
}

/// Deserializes one top-level table; returns false on a type error (already reported).
fn section<T: DeserializeOwned>(
    source: &SourceFile,
    value: &TomlSpanned<DeValue<'_>>,
    path: &[Seg],
    ignored: &mut Vec<Vec<Seg>>,
    out: &mut Parsed,
    store: impl FnOnce(&mut RawManifest, T),
) -> bool {
    if !value.get_ref().is_table() {
        let name = key_name(path);
        out.diagnostics.push(
            Diagnostic::error(
                source,
                value.span(),
                format!(
                    "`{name}` must be a table, found {}",
                    value.get_ref().type_str()
                ),
            )
            .with_help(format!(
                "write it as a section header `[{name}]` followed by `key = value` lines"
            )),
        );
        return false;
    }
    match deserialize_recovering::<T>(source, value, path, ignored, out) {
        Some(v) => {
            store(&mut out.raw, v);
            true
        }
        None => false,
    }
}

/// `[[parameters]]`: each entry on its own, so one bad entry does not hide the others.
fn parameters(
    source: &SourceFile,
    value: &TomlSpanned<DeValue<'_>>,
    ignored: &mut Vec<Vec<Seg>>,
    out: &mut Parsed,
) -> bool {
    let Some(items) = value.get_ref().as_array() else {
        out.diagnostics.push(
            Diagnostic::error(
                source,
                value.span(),
                format!(
                    "`parameters` must be an array of tables, found {}",
                    value.get_ref().type_str()
                ),
            )
            .with_help(
                "declare each parameter under its own `[[parameters]]` header (two brackets)",
            ),
        );
        return false;
    };
    let mut all_ok = true;
    let mut list = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = vec![Seg::Key("parameters".into()), Seg::Index(i)];
        if !item.get_ref().is_table() {
            out.diagnostics.push(
                Diagnostic::error(
                    source,
                    item.span(),
                    format!(
                        "a parameter must be a table, found {}",
                        item.get_ref().type_str()
                    ),
                )
                .with_help("write `[[parameters]]` and then `name = \"...\"` on the next lines"),
            );
            all_ok = false;
            continue;
        }
        match deserialize_recovering(source, item, &path, ignored, out) {
            Some(p) => list.push(p),
            None => all_ok = false,
        }
    }
    out.raw.parameters = Some(list);
    all_ok
}

/// Most values dropped from one table while recovering from type errors.
const MAX_RECOVERIES: usize = 64;

/// Deserializes `value`, recovering from type errors: each error is reported, the offending
/// value is removed from a copy of the tree, and deserialization is retried, so every wrongly
/// typed value is reported and the rest of the table is still validated. Removed keys are
/// recorded in `out.removed` so the validator does not also call them missing.
fn deserialize_recovering<T: DeserializeOwned>(
    source: &SourceFile,
    value: &TomlSpanned<DeValue<'_>>,
    prefix: &[Seg],
    ignored: &mut Vec<Vec<Seg>>,
    out: &mut Parsed,
) -> Option<T> {
    let mut value = value.clone();
    value.get_mut().make_owned();
    for _ in 0..MAX_RECOVERIES {
        let mut seen = Vec::new();
        let result = serde_ignored::deserialize(ValueDeserializer::from(value.clone()), |path| {
            let mut full = prefix.to_vec();
            push_path(&mut full, &path);
            seen.push(full);
        });
        match result {
            Ok(v) => {
                ignored.extend(seen);
                return Some(v);
            }
            Err(e) => {
                out.diagnostics
                    .push(type_diagnostic(source, &e, value.span()));
                let mut removed = prefix.to_vec();
                let recovered = e
                    .span()
                    .is_some_and(|span| remove_at(&mut value, &span, &mut removed));
                if !recovered {
                    ignored.extend(seen);
                    return None;
                }
                out.removed.insert(key_name(&removed));
            }
        }
    }
    None
}

/// Whether `span` lies inside `v` or anything under it. A table opened by a `[header]` has
/// the header as its span, not its body, so children are searched too.
fn holds(v: &TomlSpanned<DeValue<'_>>, span: &Range<usize>) -> bool {
    let outer = v.span();
    if outer.start <= span.start && span.end <= outer.end {
        return true;
    }
    match v.get_ref() {
        DeValue::Table(t) => t.iter().any(|(k, val)| {
            let ks = k.span();
            (ks.start <= span.start && span.end <= ks.end) || holds(val, span)
        }),
        DeValue::Array(a) => a.iter().any(|item| holds(item, span)),
        _ => false,
    }
}

/// Removes the innermost table entry or array element whose value contains `span`; pushes
/// its path onto `path`. False when `span` is not inside any child of `v`.
fn remove_at(v: &mut TomlSpanned<DeValue<'_>>, span: &Range<usize>, path: &mut Vec<Seg>) -> bool {
    let inside = |outer: Range<usize>| outer.start <= span.start && span.end <= outer.end;
    match v.get_mut() {
        DeValue::Table(t) => {
            let Some(key) = t
                .iter()
                .find(|(k, val)| inside(k.span()) || holds(val, span))
                .map(|(k, _)| k.get_ref().to_string())
            else {
                return false;
            };
            path.push(Seg::Key(key.clone()));
            if let Some(child) = t.get_mut(key.as_str())
                && remove_at(child, span, path)
            {
                return true;
            }
            t.remove(key.as_str());
            true
        }
        DeValue::Array(a) => {
            let Some(i) = a.iter().position(|item| holds(item, span)) else {
                return false;
            };
            path.push(Seg::Index(i));
            if remove_at(&mut a.as_mut()[i], span, path) {
                return true;
            }
            let old = std::mem::replace(a, toml::de::DeArray::new());
            for (j, item) in old.into_iter().enumerate() {
                if j != i {
                    a.push(item);
                }
            }
            true
        }
        _ => false,
    }
}

fn push_path(out: &mut Vec<Seg>, path: &serde_ignored::Path<'_>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            push_path(out, parent);
            out.push(Seg::Index(*index));
        }
        Path::Map { parent, key } => {
            push_path(out, parent);
            out.push(Seg::Key(key.clone()));
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => push_path(out, parent),
    }
}

/// Walks the spanned tree to the key at `path`; returns the key's span and its value.
fn find<'a, 'i>(
    root: &'a TomlSpanned<DeValue<'i>>,
    path: &[Seg],
) -> Option<(Range<usize>, &'a TomlSpanned<DeValue<'i>>)> {
    let mut here = root;
    let mut key_span = root.span();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                let table = here.get_ref().as_table()?;
                // A map lookup, not a scan: one diagnostic per key of a 60,000-key table
                // must not cost 60,000 comparisons each.
                let (key, value) = table.get_key_value(k.as_str())?;
                key_span = key.span();
                here = value;
            }
            Seg::Index(i) => {
                here = here.get_ref().as_array()?.get(*i)?;
            }
        }
    }
    Some((key_span, here))
}

/// `iis.fastcgi`, `parameters[2].validation`; empty for the top level.
fn key_name(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{}]", i + 1)),
        }
    }
    out
}

fn unknown_key(
    source: &SourceFile,
    parent: &[Seg],
    key: &str,
    span: Range<usize>,
    value: &TomlSpanned<DeValue<'_>>,
    schema: &Json,
) -> Diagnostic {
    let known = known_keys(schema, parent);
    let (message, what) = if parent.is_empty() {
        if value.get_ref().is_table() || value.get_ref().is_array() {
            (format!("unknown section `[{key}]`"), "sections")
        } else {
            (format!("unknown top-level key `{key}`"), "sections")
        }
    } else {
        (
            format!("unknown key `{key}` in `[{}]`", key_name(parent)),
            "keys here",
        )
    };
    let mut d = Diagnostic::error(source, span, message);
    let help = match suggest(key, &known) {
        Some(Suggestion::Spelling(s)) => format!("did you mean `{s}`?"),
        Some(Suggestion::Case(s)) => format!(
            "iiswsgi.toml keys are lower-case with dashes (kebab-case): did you mean `{s}`?"
        ),
        None if !elsewhere(schema, &to_kebab(key), parent).is_empty() => {
            let homes = elsewhere(schema, &to_kebab(key), parent);
            let homes: Vec<String> = homes.iter().map(|h| format!("`[{h}]`")).collect();
            format!(
                "`{}` belongs in {}; move it under that header",
                to_kebab(key),
                homes.join(" or ")
            )
        }
        None if known.is_empty() => "remove this key".to_string(),
        None => format!(
            "valid {what}: {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    d = d.with_help(help);
    d
}

enum Suggestion {
    Spelling(String),
    Case(String),
}

/// The closest known key: first an exact match after turning `snake_case` or `camelCase` (as
/// IIS spells its attributes) into kebab-case, then the best Jaro-Winkler match above 0.8.
fn suggest(key: &str, known: &[String]) -> Option<Suggestion> {
    let kebab = to_kebab(key);
    if kebab != key
        && let Some(k) = known.iter().find(|k| **k == kebab)
    {
        return Some(Suggestion::Case(k.clone()));
    }
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&kebab, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| Suggestion::Spelling(k.clone()))
}

/// `instanceMaxRequests` / `instance_max_requests` → `instance-max-requests`.
pub(crate) fn to_kebab(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev_lower = false;
    for c in key.chars() {
        if c == '_' || c == ' ' {
            out.push('-');
            prev_lower = false;
        } else if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// The tables (other than `here`) that have a key named `key`, as `iis.fastcgi`.
fn elsewhere(schema: &Json, key: &str, here: &[Seg]) -> Vec<String> {
    fn walk(
        schema: &Json,
        defs: Option<&Json>,
        at: &str,
        depth: usize,
        key: &str,
        out: &mut Vec<String>,
    ) {
        if depth > 4 {
            return;
        }
        let here = resolve(schema, defs);
        let here = match here.get("items") {
            Some(items) => resolve(items, defs),
            None => here,
        };
        let Some(props) = here.get("properties").and_then(Json::as_object) else {
            return;
        };
        if !at.is_empty() && props.contains_key(key) {
            out.push(at.to_string());
        }
        for (name, sub) in props {
            let path = if at.is_empty() {
                name.clone()
            } else {
                format!("{at}.{name}")
            };
            walk(sub, defs, &path, depth + 1, key, out);
        }
    }
    let mut out = Vec::new();
    walk(schema, schema.get("definitions"), "", 0, key, &mut out);
    let here: Vec<&str> = here
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    let here = here.join(".");
    out.retain(|t| *t != here);
    out
}

/// The keys the schema allows in the table at `path`.
fn known_keys(schema: &Json, path: &[Seg]) -> Vec<String> {
    let defs = schema.get("definitions");
    let mut here = resolve(schema, defs);
    for seg in path {
        let next = match seg {
            Seg::Key(k) => here
                .get("properties")
                .and_then(|p| p.get(k))
                .or_else(|| here.get("additionalProperties").filter(|a| a.is_object())),
            Seg::Index(_) => here.get("items"),
        };
        let Some(next) = next else {
            return Vec::new();
        };
        here = resolve(next, defs);
    }
    here.get("properties")
        .and_then(Json::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Follows `$ref` and picks the non-null branch of `anyOf`/`oneOf` (how schemars writes
/// `Option<T>`).
fn resolve<'a>(mut schema: &'a Json, defs: Option<&'a Json>) -> &'a Json {
    for _ in 0..16 {
        if let Some(r) = schema.get("$ref").and_then(Json::as_str) {
            let name = r.trim_start_matches("#/definitions/");
            match defs.and_then(|d| d.get(name)) {
                Some(s) => schema = s,
                None => return schema,
            }
            continue;
        }
        let branches = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Json::as_array);
        if let Some(b) = branches
            && let Some(s) = b
                .iter()
                .find(|s| s.get("type").and_then(Json::as_str) != Some("null"))
        {
            schema = s;
            continue;
        }
        return schema;
    }
    schema
}

fn syntax_diagnostic(source: &SourceFile, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let message = format!("invalid TOML: {}", e.message().trim_end());
    let help = if e.message().contains("string") || e.message().contains("key") {
        "text values need double quotes (`title = \"My App\"`); keys are bare words with letters, digits, `-` and `_`"
    } else if e.message().contains("duplicate") {
        "each key may appear once per table, and each `[section]` header once"
    } else {
        "see https://toml.io for the syntax; `iiswsgi init` writes a commented example"
    };
    Diagnostic::error(source, span, message).with_help(help)
}

fn type_diagnostic(source: &SourceFile, e: &toml::de::Error, fallback: Range<usize>) -> Diagnostic {
    let span = e.span().unwrap_or(fallback);
    let msg = e.message().trim_end();
    let help = if msg.contains("expected a string") {
        "put text in double quotes, e.g. `key = \"value\"`".to_string()
    } else if msg.contains("expected i64") || msg.contains("expected an integer") {
        "write a whole number without quotes, e.g. `key = 600`".to_string()
    } else if msg.contains("expected a boolean") {
        "write `true` or `false` without quotes".to_string()
    } else if msg.contains("expected a sequence") {
        "write a list in square brackets, e.g. `key = [\"a\", \"b\"]`".to_string()
    } else if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let given = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> = rest
            .split_once("expected")
            .map(|(_, e)| e.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        match expected.iter().find(|e| e.eq_ignore_ascii_case(given)) {
            Some(e) => format!("these values are case-sensitive: write `{e}`"),
            None => format!(
                "use one of: {}",
                expected
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    } else {
        "check the value's type against the comments `iiswsgi init` writes".to_string()
    };
    let msg = msg
        .replace("expected i64", "expected an integer")
        .replace("expected a sequence", "expected an array");
    Diagnostic::error(source, span, msg).with_help(help)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_kebab_converts_iis_camel_case_and_snake_case() {
        assert_eq!(to_kebab("instanceMaxRequests"), "instance-max-requests");
        assert_eq!(to_kebab("instance_max_requests"), "instance-max-requests");
        assert_eq!(
            to_kebab("signalBeforeTerminateSeconds"),
            "signal-before-terminate-seconds"
        );
        assert_eq!(to_kebab("name"), "name");
    }

    #[test]
    fn known_keys_follow_schema_refs_into_nested_tables_and_arrays() {
        let schema = super::super::schema::json_schema_value();
        let fastcgi = known_keys(
            &schema,
            &[Seg::Key("iis".into()), Seg::Key("fastcgi".into())],
        );
        assert!(fastcgi.contains(&"instance-max-requests".to_string()));
        let entry = known_keys(
            &schema,
            &[
                Seg::Key("parameters".into()),
                Seg::Index(0),
                Seg::Key("entries".into()),
                Seg::Index(3),
            ],
        );
        assert_eq!(entry, vec!["kind", "match", "scope"]);
        let top = known_keys(&schema, &[]);
        assert_eq!(
            top,
            vec!["app", "feed", "iis", "package", "parameters", "run", "wsgi"]
        );
    }

    #[test]
    fn suggest_prefers_kebab_spelling_then_close_matches() {
        let known: Vec<String> = ["instance-max-requests", "max-instances"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(matches!(
            suggest("instanceMaxRequests", &known),
            Some(Suggestion::Case(k)) if k == "instance-max-requests"
        ));
        assert!(matches!(
            suggest("max-instance", &known),
            Some(Suggestion::Spelling(k)) if k == "max-instances"
        ));
        assert!(suggest("zzz", &known).is_none());
    }
}
