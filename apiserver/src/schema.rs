//! Walking objects against OpenAPI v3 schemas: unknown-field detection for
//! `fieldValidation=Strict`, and the structural-schema pruning, defaulting and validation
//! that custom resources get on every write.

use serde_json::{Map, Value};

use crate::errors::{render_value, Cause};

/// Named component schemas (`#/components/schemas/<name>`).
pub type Components = Map<String, Value>;

const REF_PREFIX: &str = "#/components/schemas/";

/// Follows `$ref` and single-element `allOf` wrappers to the schema they name.
pub fn resolve<'a>(schema: &'a Value, components: &'a Components) -> &'a Value {
    let mut current = schema;
    for _ in 0..16 {
        if let Some(reference) = current.get("$ref").and_then(Value::as_str) {
            match reference
                .strip_prefix(REF_PREFIX)
                .and_then(|name| components.get(name))
            {
                Some(target) => current = target,
                None => return current,
            }
        } else if let Some([single]) = current
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            current = single;
        } else {
            return current;
        }
    }
    current
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn schema_object<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    schema.get(key).filter(|v| v.is_object())
}

/// Paths of fields in `value` that `schema` does not declare (strict decoding).
pub fn unknown_fields(value: &Value, schema: &Value, components: &Components) -> Vec<String> {
    let mut out = Vec::new();
    walk_unknown(value, schema, components, "", &mut out);
    out
}

fn walk_unknown(
    value: &Value,
    schema: &Value,
    components: &Components,
    path: &str,
    out: &mut Vec<String>,
) {
    let schema = resolve(schema, components);
    if preserves_unknown(schema) || schema.get("x-kubernetes-int-or-string").is_some() {
        return;
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema_object(schema, "additionalProperties");
            if properties.is_none() && additional.is_none() {
                return;
            }
            for (key, child) in map {
                let child_path = join(path, key);
                match properties.and_then(|p| p.get(key)) {
                    Some(child_schema) => {
                        walk_unknown(child, child_schema, components, &child_path, out)
                    }
                    None => match additional {
                        Some(add) => walk_unknown(child, add, components, &child_path, out),
                        None => out.push(child_path),
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema_object(schema, "items") {
                for (i, item) in items.iter().enumerate() {
                    walk_unknown(item, item_schema, components, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Removes fields the structural schema does not declare; returns their paths. The root
/// `apiVersion`, `kind` and `metadata` are always kept.
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut pruned = Vec::new();
    if let Some(map) = obj.as_object_mut() {
        let properties = schema.get("properties").and_then(Value::as_object);
        let preserve = preserves_unknown(schema);
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match properties.and_then(|p| p.get(&key)) {
                Some(child_schema) => {
                    if let Some(child) = map.get_mut(&key) {
                        prune_value(child, child_schema, &key, &mut pruned);
                    }
                }
                None if preserve => {}
                None => {
                    map.remove(&key);
                    pruned.push(key);
                }
            }
        }
    }
    pruned
}

fn prune_value(value: &mut Value, schema: &Value, path: &str, pruned: &mut Vec<String>) {
    let preserve = preserves_unknown(schema);
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema_object(schema, "additionalProperties");
            if properties.is_none()
                && additional.is_none()
                && (preserve || schema.get("type").is_none())
            {
                return;
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_path = join(path, &key);
                let child_schema = properties.and_then(|p| p.get(&key)).or(additional);
                match child_schema {
                    Some(cs) => {
                        if let Some(child) = map.get_mut(&key) {
                            prune_value(child, cs, &child_path, pruned);
                        }
                    }
                    None if preserve => {}
                    None => {
                        map.remove(&key);
                        pruned.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema_object(schema, "items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(item, item_schema, &format!("{path}[{i}]"), pruned);
                }
            }
        }
        _ => {}
    }
}

/// Fills `default` values for absent properties, recursively.
pub fn apply_defaults(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (key, child_schema) in properties {
                    if !map.contains_key(key) {
                        if let Some(default) = child_schema.get("default") {
                            map.insert(key.clone(), default.clone());
                        }
                    }
                    if let Some(child) = map.get_mut(key) {
                        apply_defaults(child, child_schema);
                    }
                }
            } else if let Some(additional) = schema_object(schema, "additionalProperties") {
                for child in map.values_mut() {
                    apply_defaults(child, additional);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema_object(schema, "items") {
                items
                    .iter_mut()
                    .for_each(|item| apply_defaults(item, item_schema));
            }
        }
        _ => {}
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(value: &Value, expected: &str) -> bool {
    match (expected, value) {
        ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        (t, v) => type_name(v) == t,
    }
}

/// Validates an object (root excluded from metadata checks) against a structural schema.
pub fn validate(obj: &Value, schema: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let (Some(map), Some(properties)) = (
        obj.as_object(),
        schema.get("properties").and_then(Value::as_object),
    ) {
        for (key, child_schema) in properties {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(child) = map.get(key) {
                validate_value(child, child_schema, key, &mut causes);
            }
        }
        required(map, schema, "", &mut causes);
    }
    causes
}

fn required(map: &Map<String, Value>, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for field in required.iter().filter_map(Value::as_str) {
            let root_metadata = path.is_empty() && field == "metadata";
            if !map.contains_key(field) && !root_metadata {
                causes.push(Cause::required(join(path, field)));
            }
        }
    }
}

fn validate_value(value: &Value, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() {
        // Nullable fields accept null; upstream drops nulls of other fields while decoding, so
        // they count as absent either way.
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    if int_or_string {
        if !matches!(type_name(value), "integer" | "string") {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: {:?}: {path} in body must be of type integer,string: {:?}",
                    type_name(value),
                    type_name(value)
                ),
            ));
        }
        return;
    }
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        if !type_matches(value, expected) {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: {:?}: {path} in body must be of type {expected}: {:?}",
                    type_name(value),
                    type_name(value)
                ),
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().map(render_value).collect();
            causes.push(Cause::new(
                "FieldValueNotSupported",
                path,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    render_value(value),
                    list.join(", ")
                ),
            ));
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if n < min {
                causes.push(Cause::invalid(
                    path,
                    value,
                    &format!("{path} in body should be greater than or equal to {min}"),
                ));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                causes.push(Cause::invalid(
                    path,
                    value,
                    &format!("{path} in body should be less than or equal to {max}"),
                ));
            }
        }
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema_object(schema, "additionalProperties");
            for (key, child) in map {
                if let Some(cs) = properties.and_then(|p| p.get(key)).or(additional) {
                    validate_value(child, cs, &join(path, key), causes);
                }
            }
            required(map, schema, path, causes);
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema_object(schema, "items") {
                for (i, item) in items.iter().enumerate() {
                    validate_value(item, item_schema, &format!("{path}[{i}]"), causes);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn clone_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["selector"], "properties": {
                "replicas": {"type": "integer", "default": 1, "minimum": 0},
                "selector": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "maxUnavailable": {"x-kubernetes-int-or-string": true},
                "updateStrategy": {"type": "object", "properties": {
                    "type": {"type": "string", "enum": ["ReCreate", "InPlaceIfPossible", "InPlaceOnly"]}}}}},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})
    }

    #[test]
    fn enum_violation_names_field() {
        let obj = json!({"spec": {"selector": {}, "updateStrategy": {"type": "Sideways"}}});
        let causes = validate(&obj, &clone_schema());
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.updateStrategy.type");
        assert!(causes[0]
            .message
            .starts_with("Unsupported value: \"Sideways\": supported values: \"ReCreate\""));
    }

    #[test]
    fn type_required_and_int_or_string() {
        let obj = json!({"spec": {"replicas": "three", "maxUnavailable": "20%"}});
        let causes = validate(&obj, &clone_schema());
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.replicas", "spec.selector"]);
    }

    #[test]
    fn prune_and_default() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "junk": 1,
            "spec": {"foo": 1, "selector": {"anything": true}}, "status": {"free": 1}});
        let pruned = prune(&mut obj, &clone_schema());
        assert_eq!(pruned, vec!["junk", "spec.foo"]);
        apply_defaults(&mut obj, &clone_schema());
        assert_eq!(obj["spec"]["replicas"], 1);
        assert_eq!(obj["status"]["free"], 1);
        assert_eq!(obj["metadata"]["name"], "a");
    }

    #[test]
    fn unknown_fields_through_refs() {
        let mut components = Components::new();
        components.insert("Meta".into(), json!({"type": "object", "properties": {"name": {"type": "string"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}));
        let schema = json!({"type": "object", "properties": {"metadata": {"allOf": [{"$ref": "#/components/schemas/Meta"}]}, "data": {"type": "object", "additionalProperties": {"type": "string"}}}});
        let obj = json!({"metadata": {"name": "x", "labels": {"a": "b"}, "bogus": 1}, "data": {"k": "v"}, "spec": {}});
        assert_eq!(
            unknown_fields(&obj, &schema, &components),
            vec!["metadata.bogus", "spec"]
        );
    }
}
