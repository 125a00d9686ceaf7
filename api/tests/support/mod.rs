//! Helpers shared by the integration tests.

#![allow(dead_code)]

use kruise_api::{Defaulted, FieldError, Validated};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;

/// Path of a file under the repository's `examples/`.
pub fn example_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join(name)
}

/// Reads an example as JSON.
pub fn example_value(name: &str) -> Value {
    let text = std::fs::read_to_string(example_path(name))
        .unwrap_or_else(|e| panic!("reading {name}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}"))
}

/// Lists every place where `input` has something that `output` lacks or holds differently.
pub fn missing_fields(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => missing_fields(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k} dropped")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                missing_fields(v, w, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: {a} became {b}")),
    }
}

/// Parses, defaults, validates and re-serializes an example, asserting that it is valid, that
/// every input field survives, and that defaulting is idempotent. Returns the defaulted object.
pub fn check_example<T>(name: &str) -> T
where
    T: DeserializeOwned + Serialize + Defaulted + Validated + Clone + PartialEq + std::fmt::Debug,
{
    let input = example_value(name);
    let mut obj: T = serde_json::from_value(input.clone())
        .unwrap_or_else(|e| panic!("{name} does not deserialize: {e}"));
    obj.apply_defaults();
    let errors: Vec<String> = obj.validate().iter().map(FieldError::to_string).collect();
    assert!(
        errors.is_empty(),
        "{name} should validate clean, got {errors:#?}"
    );
    let output = serde_json::to_value(&obj).expect("serializes");
    let mut lost = Vec::new();
    missing_fields(&input, &output, "", &mut lost);
    assert!(
        lost.is_empty(),
        "{name} lost fields in the round trip: {lost:#?}"
    );
    let mut again: T = serde_json::from_value(output.clone()).expect("re-parses");
    again.apply_defaults();
    assert_eq!(again, obj, "{name}: defaulting is not idempotent");
    obj
}

/// Validates an object given as YAML and returns the messages.
pub fn errors_of<T>(yaml: &str) -> Vec<String>
where
    T: DeserializeOwned + Validated,
{
    let obj: T =
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("case does not parse: {e}\n{yaml}"));
    obj.validate().iter().map(ToString::to_string).collect()
}

/// Applies `edit` to a base example (as JSON), then validates the result with defaults applied.
pub fn errors_after_edit<T>(base: &str, edit: impl FnOnce(&mut Value)) -> Vec<String>
where
    T: DeserializeOwned + Validated + Defaulted,
{
    let mut value = example_value(base);
    edit(&mut value);
    let mut obj: T = serde_json::from_value(value)
        .unwrap_or_else(|e| panic!("edited {base} does not parse: {e}"));
    obj.apply_defaults();
    obj.validate().iter().map(ToString::to_string).collect()
}

/// Sets a JSON pointer path, creating objects on the way.
pub fn set(value: &mut Value, pointer: &str, new: Value) {
    let mut cur = value;
    let parts: Vec<String> = pointer
        .trim_start_matches('/')
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        cur = match cur {
            Value::Array(items) => {
                let idx: usize = part.parse().expect("array index");
                if idx == items.len() {
                    // Writing one past the end appends, like a JSON-patch `add`.
                    items.push(Value::Null);
                }
                &mut items[idx]
            }
            other => {
                if !other.is_object() {
                    *other = Value::Object(Default::default());
                }
                let map = other.as_object_mut().expect("object");
                if last {
                    map.insert(part.clone(), new);
                    return;
                }
                map.entry(part.clone())
                    .or_insert_with(|| Value::Object(Default::default()))
            }
        };
        if last {
            *cur = new;
            return;
        }
    }
}

/// Removes a JSON pointer path.
pub fn remove(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    if let Some(Value::Object(map)) = value.pointer_mut(parent) {
        map.remove(key);
    }
}
