//! The JSON schema of `iiswsgi.toml`, generated from the raw serde types alone.
//!
//! `schemas/iiswsgi.schema.json` is this output, committed so editors (Taplo / Even Better
//! TOML, via the `#:schema` line `iiswsgi init` writes) can complete and check keys offline.
//! A test fails when the committed file is stale; regenerate it with
//! `IISWSGI_BLESS=1 cargo test --no-default-features manifest_schema`. Draft-07 is used because
//! it is what TOML editors support best.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::raw::RawManifest;

/// Where the committed schema lives, relative to the repository root.
pub const SCHEMA_PATH: &str = "schemas/iiswsgi.schema.json";

/// The schema as a JSON value.
pub fn json_schema_value() -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<RawManifest>();
    let mut value = schema.to_value();
    drop_null(&mut value);
    value
}

/// TOML has no null: a key is left out by omitting it, so `Option<T>` must read as `T`.
/// Removes `"null"` from `type` arrays and null branches from `anyOf`.
fn drop_null(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(branches)) = map.get_mut("anyOf") {
                branches.retain(|b| b.get("type").and_then(Value::as_str) != Some("null"));
                if branches.len() == 1 {
                    let only = branches.remove(0);
                    map.remove("anyOf");
                    if let Value::Object(inner) = only {
                        for (k, val) in inner {
                            map.entry(k).or_insert(val);
                        }
                    }
                }
            }
            map.values_mut().for_each(drop_null);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}

/// The schema as the pretty-printed text committed in [`SCHEMA_PATH`] (trailing newline
/// included).
pub fn json_schema() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema_value())
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}
