//! Legacy (non-aggregated) discovery: `/api`, `/apis`, `/apis/G` and the resource lists.

use std::hash::{Hash, Hasher};

use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::ApiState;
use crate::errors::ApiError;
use crate::registry::ResourceDescriptor;

fn server_address(state: &ApiState) -> String {
    state
        .advertise_address
        .lock()
        .map(|a| a.clone())
        .unwrap_or_default()
}

/// `GET /api`.
pub fn api_versions(state: &ApiState) -> Response {
    axum::Json(json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address(state)}],
    }))
    .into_response()
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": name, "versions": versions, "preferredVersion": preferred})
}

/// `GET /apis`.
pub fn api_group_list(state: &ApiState) -> Response {
    let groups: Vec<Value> = state
        .registry
        .groups()
        .iter()
        .map(|g| group_json(&g.name, &g.versions))
        .collect();
    axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        .into_response()
}

/// `GET /apis/G`.
pub fn api_group(state: &ApiState, group: &str) -> Result<Response, ApiError> {
    let versions = state.registry.versions_of(group);
    if versions.is_empty() {
        return Err(ApiError::path_not_found());
    }
    let mut body = group_json(group, &versions);
    body["kind"] = json!("APIGroup");
    body["apiVersion"] = json!("v1");
    Ok(axum::Json(body).into_response())
}

fn storage_hash(desc: &ResourceDescriptor) -> String {
    use base64::Engine;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&desc.group, &desc.storage_version, &desc.kind).hash(&mut hasher);
    base64::engine::general_purpose::STANDARD.encode(&hasher.finish().to_be_bytes()[..8])
}

/// The rows of one resource: the resource itself and its subresources.
pub fn resource_rows(desc: &ResourceDescriptor) -> Vec<Value> {
    let mut main = json!({
        "name": desc.plural,
        "singularName": desc.singular,
        "namespaced": desc.namespaced,
        "kind": desc.kind,
        "verbs": desc.verbs,
        "storageVersionHash": storage_hash(desc),
    });
    if !desc.short_names.is_empty() {
        main["shortNames"] = json!(desc.short_names);
    }
    if !desc.categories.is_empty() {
        main["categories"] = json!(desc.categories);
    }
    let mut rows = vec![main];
    let sub = |name: &str, kind: &str, verbs: &[&str], gv: Option<(&str, &str)>| {
        let mut row = json!({
            "name": format!("{}/{name}", desc.plural),
            "singularName": "",
            "namespaced": desc.namespaced,
            "kind": kind,
            "verbs": verbs,
        });
        if let Some((group, version)) = gv {
            row["group"] = json!(group);
            row["version"] = json!(version);
        }
        row
    };
    if desc.subresources.status {
        rows.push(sub("status", &desc.kind, &["get", "patch", "update"], None));
    }
    if desc.subresources.scale.is_some() {
        rows.push(sub(
            "scale",
            "Scale",
            &["get", "patch", "update"],
            Some(("autoscaling", "v1")),
        ));
    }
    if desc.subresources.eviction {
        rows.push(sub(
            "eviction",
            "Eviction",
            &["create"],
            Some(("policy", "v1")),
        ));
    }
    if desc.subresources.binding {
        rows.push(sub("binding", "Binding", &["create"], None));
    }
    if desc.subresources.finalize {
        rows.push(sub("finalize", &desc.kind, &["update"], None));
    }
    rows
}

/// `GET /api/v1` and `GET /apis/G/V`.
pub fn resource_list(state: &ApiState, group: &str, version: &str) -> Result<Response, ApiError> {
    if !state.registry.has_group_version(group, version) {
        return Err(ApiError::path_not_found());
    }
    let resources: Vec<Value> = state
        .registry
        .resources_in(group, version)
        .iter()
        .flat_map(|d| resource_rows(d))
        .collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(axum::Json(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtin::descriptors;

    #[test]
    fn scale_row_names_autoscaling() {
        let deploy = descriptors()
            .into_iter()
            .find(|d| d.plural == "deployments")
            .expect("deployments");
        let rows = resource_rows(&deploy);
        let scale = rows
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .expect("scale row");
        assert_eq!(scale["group"], "autoscaling");
        assert_eq!(scale["version"], "v1");
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(rows[0]["categories"], json!(["all"]));
    }
}
