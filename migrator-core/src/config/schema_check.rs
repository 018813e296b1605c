//! Finds every unknown key and every value of the wrong type in the merged configuration before
//! serde sees it, so that all of them are reported together (serde stops at the first).
//!
//! The reference is the JSON schema that `schemars` derives from [`Settings`], so the check can
//! never disagree with the types: there is no second list of keys to keep in step.

use serde_json::{Map, Value};

use super::{Problem, Settings};

/// Problems in `raw` (the merged layers, before typing): unknown keys with the nearest valid
/// key, strings that are not one of an enum's values, numbers out of range or not numbers. Each
/// comes with the dotted path of the offending key.
pub fn check(raw: &Value) -> Vec<(String, Problem)> {
    let schema = schemars::schema_for!(Settings);
    let root = schema.as_value();
    let mut problems = Vec::new();
    walk(root, root, raw, "", &mut problems);
    problems.into_iter().map(|p| (p.key.clone(), p)).collect()
}

/// Removes the key at dotted `path` from `raw` (map keys never contain dots: mapping names
/// cannot).
pub fn remove(raw: &mut Value, path: &str) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut node = raw;
    for part in parts {
        match node.get_mut(part) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Some(map) = node.as_object_mut() {
        map.remove(last);
    }
}

fn walk(root: &Value, schema: &Value, value: &Value, path: &str, out: &mut Vec<Problem>) {
    let branches = branches(root, schema);
    match value {
        Value::Object(map) => walk_object(root, &branches, map, path, out),
        Value::Null => {}
        scalar => check_scalar(&branches, scalar, path, out),
    }
}

/// The alternatives a schema allows (following `$ref`, `anyOf`, `oneOf`), `null` left out.
fn branches<'a>(root: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    let schema = resolve(root, schema);
    let alternatives = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array);
    match alternatives {
        Some(list) => list
            .iter()
            .flat_map(|s| branches(root, s))
            .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
            .collect(),
        None => vec![schema],
    }
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            root.pointer(pointer).unwrap_or(schema)
        }
        None => schema,
    }
}

fn walk_object(
    root: &Value,
    branches: &[&Value],
    map: &Map<String, Value>,
    path: &str,
    out: &mut Vec<Problem>,
) {
    let Some(schema) = branches
        .iter()
        .find(|b| b.get("properties").is_some() || b.get("additionalProperties").is_some())
    else {
        out.push(Problem::new(
            display_path(path),
            "expected a single value here, not a table",
        ));
        return;
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, child) in map {
        let child_path = join(path, key);
        match (properties.and_then(|p| p.get(key)), additional) {
            (Some(child_schema), _) | (None, Some(child_schema)) => {
                walk(root, child_schema, child, &child_path, out)
            }
            (None, None) => {
                let known: Vec<&str> = properties
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                out.push(Problem::new(child_path, unknown_key_message(key, &known)));
            }
        }
    }
}

fn unknown_key_message(key: &str, known: &[&str]) -> String {
    let nearest = known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match nearest {
        Some((_, k)) => format!("unknown key; did you mean `{k}`?"),
        None => format!("unknown key; valid keys here: {}", known.join(", ")),
    }
}

fn check_scalar(branches: &[&Value], value: &Value, path: &str, out: &mut Vec<Problem>) {
    let allowed: Vec<&str> = branches
        .iter()
        .flat_map(|b| {
            let listed = b
                .get("enum")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            listed.chain(b.get("const")).filter_map(Value::as_str)
        })
        .collect();
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let shown = super::redact::shown(&text);
    if !allowed.is_empty() {
        if !allowed.contains(&text.as_str()) {
            out.push(Problem::new(
                display_path(path),
                format!("{shown} is not allowed; use one of: {}", allowed.join(", ")),
            ));
        }
        return;
    }
    let Some(schema) = branches.first() else {
        return;
    };
    match types(schema).as_slice() {
        ["integer"] => match text.parse::<i128>() {
            Ok(n) => {
                let min = schema.get("minimum").and_then(Value::as_f64);
                let max = schema.get("maximum").and_then(Value::as_f64);
                let n = n as f64;
                if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                    out.push(Problem::new(
                        display_path(path),
                        format!(
                            "{text} is out of range ({} to {})",
                            min.unwrap_or(f64::MIN),
                            max.unwrap_or(f64::MAX)
                        ),
                    ));
                }
            }
            Err(_) => out.push(Problem::new(
                display_path(path),
                format!("{shown} is not a whole number"),
            )),
        },
        ["boolean"] if text.parse::<bool>().is_err() => out.push(Problem::new(
            display_path(path),
            format!("{shown} is not true or false"),
        )),
        ["array"] | ["object"] if !matches!(value, Value::String(_)) => out.push(Problem::new(
            display_path(path),
            "expected a list or a table here",
        )),
        _ => {}
    }
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => Vec::new(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "configuration".to_owned()
    } else {
        path.to_owned()
    }
}
