//! Server-managed object metadata: names, uid, timestamps, generation and the rules for
//! what a create or an update may change.

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::errors::{ApiError, Cause};
use crate::registry::ResourceDescriptor;

/// The characters upstream uses for generated name suffixes.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// RFC 3339 with second precision and `Z`, as Kubernetes writes timestamps.
pub fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `prefix` (truncated to 58 characters) followed by 5 random characters.
pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let base: String = prefix.chars().take(58).collect();
    let suffix: String = (0..5)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    format!("{base}{suffix}")
}

/// A DNS-1123 label: lower-case alphanumerics and '-', at most 63, alphanumeric at both ends.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && s.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric)
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

fn label_kinds(kind: &str) -> bool {
    matches!(kind, "Namespace" | "Service")
}

/// Checks a name against the rule its kind uses.
pub fn name_error(kind: &str, name: &str) -> Option<String> {
    if label_kinds(kind) {
        (!is_dns1123_label(name)).then(|| {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string()
        })
    } else {
        (!is_dns1123_subdomain(name)).then(|| {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string()
        })
    }
}

/// The object's `metadata` map, created if missing.
pub fn meta_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let map = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the object is not a JSON object"))?;
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Checks `apiVersion`/`kind` of a request body against the resource, filling them when absent.
pub fn check_type(obj: &mut Value, desc: &ResourceDescriptor) -> Result<(), ApiError> {
    let map = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the object is not a JSON object"))?;
    let api_version = desc.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(api_version));
        }
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(desc.kind));
        }
        Some(k) if k == desc.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                desc.kind
            )))
        }
    }
    Ok(())
}

/// Reconciles the body's namespace with the URL's.
fn check_namespace(
    meta: &mut Map<String, Value>,
    desc: &ResourceDescriptor,
    url_ns: Option<&str>,
) -> Result<(), ApiError> {
    if !desc.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    let url_ns = url_ns.unwrap_or("default");
    match meta.get("namespace").and_then(Value::as_str) {
        None | Some("") => {
            meta.insert("namespace".into(), json!(url_ns));
            Ok(())
        }
        Some(ns) if ns == url_ns => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}

fn remove_empty(meta: &mut Map<String, Value>) {
    meta.retain(|_, v| match v {
        Value::Null => false,
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    });
}

/// Prepares an object for creation: type and namespace checks, name (or generated name), uid,
/// creation timestamp and generation. Returns the final name.
pub fn prepare_create(
    obj: &mut Value,
    desc: &ResourceDescriptor,
    url_ns: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, ApiError> {
    check_type(obj, desc)?;
    let kind = desc.kind.clone();
    let meta = meta_mut(obj)?;
    check_namespace(meta, desc, url_ns)?;
    if meta
        .get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let mut name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let group = desc.group.clone();
    if name.is_empty() {
        match meta
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            Some(prefix) => name = generate_name(prefix),
            None => {
                return Err(ApiError::invalid(
                    &kind,
                    &group,
                    "",
                    vec![Cause::new(
                        "FieldValueRequired",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    )],
                ))
            }
        }
        meta.insert("name".into(), json!(name));
    }
    if let Some(why) = name_error(&kind, &name) {
        return Err(ApiError::invalid(
            &kind,
            &group,
            &name,
            vec![Cause::invalid("metadata.name", &json!(name), &why)],
        ));
    }
    if let Some(ns) = meta.get("namespace").and_then(Value::as_str) {
        if !is_dns1123_label(ns) {
            let why = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'";
            return Err(ApiError::invalid(
                &kind,
                &group,
                &name,
                vec![Cause::invalid("metadata.namespace", &json!(ns), why)],
            ));
        }
    }
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(timestamp(now)));
    for field in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "resourceVersion",
        "managedFields",
    ] {
        meta.remove(field);
    }
    if desc.tracks_generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    remove_empty(meta);
    Ok(name)
}

/// The part of an object that counts as its "spec" for generation tracking: everything but
/// metadata and status (and type meta).
fn spec_part(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(map) = copy.as_object_mut() {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(key);
        }
    }
    copy
}

/// Which part of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteScope {
    /// The main resource: status is kept when the resource has a status subresource.
    Main,
    /// `/status`: only status changes.
    Status,
}

/// Applies the update rules to `new` given the stored `old`: immutable identity, copied
/// server fields, status/spec split by subresource, generation bump on spec change.
pub fn prepare_update(
    new: &mut Value,
    old: &Value,
    desc: &ResourceDescriptor,
    scope: WriteScope,
) -> Result<(), ApiError> {
    check_type(new, desc)?;
    let name = meta_str(old, "name").unwrap_or("").to_string();
    if scope == WriteScope::Status {
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        if let Some(map) = merged.as_object_mut() {
            match status {
                Some(s) => {
                    map.insert("status".into(), s);
                }
                None => {
                    map.remove("status");
                }
            }
            // Metadata precondition and labels/annotations changes on /status are dropped, except
            // built-ins where upstream lets some metadata through: keep it simple and uniform.
            if let Some(rv) = meta_str(new, "resourceVersion") {
                if let Some(m) = map.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.insert("resourceVersion".into(), json!(rv));
                }
            }
        }
        *new = merged;
        return Ok(());
    }
    if desc.subresources.status {
        if let Some(map) = new.as_object_mut() {
            match old.get("status") {
                Some(s) => {
                    map.insert("status".into(), s.clone());
                }
                None => {
                    map.remove("status");
                }
            }
        }
    }
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let spec_changed = spec_part(new) != spec_part(old);
    let kind = desc.kind.clone();
    let group = desc.group.clone();
    let url_ns = old_meta
        .get("namespace")
        .and_then(Value::as_str)
        .map(String::from);
    let meta = meta_mut(new)?;
    let mut causes = Vec::new();
    match meta.get("name").and_then(Value::as_str) {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )))
        }
        _ => {
            meta.insert("name".into(), json!(name));
        }
    }
    if desc.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if Some(ns) != url_ns.as_deref() && !ns.is_empty() => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            _ => {
                if let Some(ns) = &url_ns {
                    meta.insert("namespace".into(), json!(ns));
                }
            }
        }
    }
    match meta.get("uid").and_then(Value::as_str) {
        Some(uid)
            if !uid.is_empty() && Some(uid) != old_meta.get("uid").and_then(Value::as_str) =>
        {
            causes.push(Cause::invalid(
                "metadata.uid",
                &json!(uid),
                "field is immutable",
            ));
        }
        _ => {}
    }
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(field) {
            Some(v) => {
                meta.insert(field.into(), v.clone());
            }
            None => {
                meta.remove(field);
            }
        }
    }
    if old_meta.get("deletionTimestamp").is_some() {
        let old_finalizers: Vec<Value> = old_meta
            .get("finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(new_finalizers) = meta.get("finalizers").and_then(Value::as_array) {
            if let Some(added) = new_finalizers.iter().find(|f| !old_finalizers.contains(f)) {
                causes.push(Cause::new(
                    "FieldValueForbidden",
                    "metadata.finalizers",
                    format!("Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [{}]", added.as_str().unwrap_or("")),
                ));
            }
        }
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(&kind, &group, &name, causes));
    }
    if desc.tracks_generation && spec_changed {
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta.insert("generation".into(), json!(generation + 1));
    }
    meta.remove("managedFields");
    meta.remove("selfLink");
    remove_empty(meta);
    Ok(())
}

/// Whether a deleting object with no finalizers left should now be removed.
pub fn ready_to_remove(obj: &Value) -> bool {
    let meta = match obj.get("metadata") {
        Some(m) => m,
        None => return false,
    };
    let namespace_held = obj.get("kind").and_then(Value::as_str) == Some("Namespace")
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
    !namespace_held
        && meta.get("deletionTimestamp").is_some()
        && meta
            .get("finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty())
        && meta
            .get("deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtin::descriptors;

    fn desc(plural: &str) -> ResourceDescriptor {
        descriptors()
            .into_iter()
            .find(|d| d.plural == plural)
            .expect("descriptor")
    }

    #[test]
    fn generated_names_use_upstream_alphabet() {
        let name = generate_name("web-");
        assert_eq!(name.len(), 9);
        assert!(name[4..].bytes().all(|b| NAME_ALPHABET.contains(&b)));
    }

    #[test]
    fn create_fills_server_fields() {
        let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generateName": "web-", "labels": {}}, "spec": {}});
        let name = prepare_create(&mut obj, &desc("deployments"), Some("ns1"), Utc::now())
            .expect("create ok");
        assert!(name.starts_with("web-"));
        assert_eq!(obj["metadata"]["namespace"], "ns1");
        assert_eq!(obj["metadata"]["generation"], 1);
        assert!(
            obj["metadata"].get("labels").is_none(),
            "empty maps are omitted"
        );
        assert!(obj["metadata"]["creationTimestamp"]
            .as_str()
            .expect("ts")
            .ends_with('Z'));
    }

    #[test]
    fn create_rejects_bad_names_and_kinds() {
        let mut obj = json!({"kind": "ConfigMap", "metadata": {"name": "Bad_Name"}});
        let err =
            prepare_create(&mut obj, &desc("configmaps"), Some("default"), Utc::now()).unwrap_err();
        assert_eq!(err.code, 422);
        let mut obj = json!({"kind": "Secret", "metadata": {"name": "x"}});
        assert_eq!(
            prepare_create(&mut obj, &desc("configmaps"), Some("default"), Utc::now())
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn update_bumps_generation_on_spec_change_only() {
        let d = desc("deployments");
        let mut old = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}, "spec": {"replicas": 1}});
        prepare_create(&mut old, &d, Some("default"), Utc::now()).expect("create");
        let mut same = old.clone();
        same["metadata"]["labels"] = json!({"a": "b"});
        prepare_update(&mut same, &old, &d, WriteScope::Main).expect("update");
        assert_eq!(same["metadata"]["generation"], 1);
        let mut changed = old.clone();
        changed["spec"]["replicas"] = json!(3);
        changed["status"] = json!({"replicas": 9});
        prepare_update(&mut changed, &old, &d, WriteScope::Main).expect("update");
        assert_eq!(changed["metadata"]["generation"], 2);
        assert!(
            changed.get("status").is_none(),
            "main endpoint keeps the old status"
        );
    }
}
