//! OpenAPI v3: the index and one document per group-version, with PATCH operations that tell
//! kubectl the server validates fields, and component schemas for `kubectl explain`.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::ApiState;
use crate::errors::ApiError;
use crate::registry::{ResourceDescriptor, SchemaSource};
use crate::schema::Components;

/// Component name of ObjectMeta.
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Component schemas of every built-in kind, generated once from k8s-openapi.
pub struct BuiltinSchemas {
    pub components: Components,
    /// `group/Kind` → component name.
    kinds: HashMap<String, String>,
}

impl BuiltinSchemas {
    /// A `$ref` to the schema of a built-in kind.
    pub fn kind_schema(&self, group: &str, kind: &str) -> Option<Value> {
        self.kinds
            .get(&format!("{group}/{kind}"))
            .map(|name| json!({"$ref": format!("#/components/schemas/{name}")}))
    }
}

fn ref_name(schema: &Value) -> Option<String> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .map(String::from)
}

/// The built-in schemas (generated on first use).
pub fn builtin_schemas() -> &'static BuiltinSchemas {
    static SCHEMAS: OnceLock<BuiltinSchemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
        let mut kinds = HashMap::new();
        let mut gvks: Vec<(String, Value)> = Vec::new();
        for desc in crate::registry::builtin::descriptors() {
            if let SchemaSource::Builtin(f) = desc.schema {
                let schema = f(&mut generator).to_value();
                if let Some(name) = ref_name(&schema) {
                    kinds.insert(format!("{}/{}", desc.group, desc.kind), name.clone());
                    gvks.push((
                        name,
                        json!({"group": desc.group, "version": desc.version, "kind": desc.kind}),
                    ));
                }
            }
        }
        generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>();
        let mut components = generator.take_definitions(true);
        for (name, gvk) in gvks {
            if let Some(obj) = components.get_mut(&name).and_then(Value::as_object_mut) {
                obj.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
            }
        }
        BuiltinSchemas { components, kinds }
    })
}

/// Cached documents per group-version, invalidated by registry changes.
#[derive(Default)]
pub struct OpenApiCache {
    docs: Mutex<HashMap<String, (u64, Arc<Value>)>>,
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn doc_hash(path: &str, generation: u64) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut hasher);
    generation.hash(&mut hasher);
    format!("{:016X}", hasher.finish())
}

/// `GET /openapi/v3`.
pub fn index(state: &ApiState) -> Response {
    let generation = state.registry.generation();
    let mut paths = Map::new();
    let mut gvs: BTreeSet<(String, String)> = BTreeSet::new();
    for desc in state.registry.all() {
        gvs.insert((desc.group.clone(), desc.version.clone()));
    }
    for (group, version) in gvs {
        let path = gv_path(&group, &version);
        let url = format!("/openapi/v3/{path}?hash={}", doc_hash(&path, generation));
        paths.insert(path, json!({"serverRelativeURL": url}));
    }
    axum::Json(json!({"paths": paths})).into_response()
}

/// `GET /openapi/v3/<api/v1 | apis/G/V>`.
pub fn document(state: &ApiState, path: &str) -> Result<Response, ApiError> {
    let segments: Vec<&str> = path.split('/').collect();
    let (group, version) = match segments.as_slice() {
        ["api", version] => (String::new(), version.to_string()),
        ["apis", group, version] => (group.to_string(), version.to_string()),
        _ => return Err(ApiError::path_not_found()),
    };
    if !state.registry.has_group_version(&group, &version) {
        return Err(ApiError::path_not_found());
    }
    let generation = state.registry.generation();
    let key = gv_path(&group, &version);
    if let Some((gen, doc)) = state
        .openapi
        .docs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
    {
        if *gen == generation {
            return Ok(axum::Json(doc.as_ref().clone()).into_response());
        }
    }
    let doc = Arc::new(build_document(state, &group, &version));
    state
        .openapi
        .docs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, (generation, doc.clone()));
    Ok(axum::Json(doc.as_ref().clone()).into_response())
}

/// Component name of a custom kind: reversed group, version, kind (as upstream names them).
pub fn custom_component_name(desc: &ResourceDescriptor) -> String {
    let reversed: Vec<&str> = desc.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), desc.version, desc.kind)
}

fn custom_schema(desc: &ResourceDescriptor, root: &Value) -> Value {
    let mut schema = root.clone();
    if !schema.is_object() {
        schema = json!({"type": "object"});
    }
    if let Some(map) = schema.as_object_mut() {
        map.entry("type").or_insert(json!("object"));
        let props = map.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            props.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
            props.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
            props.insert(
                "metadata".into(),
                json!({"allOf": [{"$ref": format!("#/components/schemas/{OBJECT_META}")}], "description": "Standard object's metadata."}),
            );
        }
        map.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": desc.group, "version": desc.version, "kind": desc.kind}]),
        );
    }
    schema
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = ref_name(value) {
                out.push(name);
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn operation(desc: &ResourceDescriptor, action: &str, schema_ref: &Value) -> Value {
    let gvk = json!({"group": desc.group, "version": desc.version, "kind": desc.kind});
    let query = |name: &str, description: &str| json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}});
    let mut op = json!({
        "operationId": format!("{action}{}", desc.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref}}}},
    });
    match action {
        "patch" => {
            op["parameters"] = json!([
                query("dryRun", "When present, indicates that modifications should not be persisted."),
                query("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
                query("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (default), Strict."),
                {"name": "force", "in": "query", "description": "Force is going to \"force\" Apply requests.", "schema": {"type": "boolean", "uniqueItems": true}},
            ]);
            let body = json!({"schema": {"type": "object"}});
            op["requestBody"] = json!({"content": {
                "application/apply-patch+yaml": body,
                "application/json-patch+json": body,
                "application/merge-patch+json": body,
            }, "required": true});
        }
        "put" | "post" => {
            op["parameters"] = json!([
                query("dryRun", "When present, indicates that modifications should not be persisted."),
                query("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
                query("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields."),
            ]);
            op["requestBody"] =
                json!({"content": {"application/json": {"schema": schema_ref}}, "required": true});
        }
        _ => {}
    }
    op
}

fn build_document(state: &ApiState, group: &str, version: &str) -> Value {
    let builtins = builtin_schemas();
    let mut components = Map::new();
    let mut pending: Vec<String> = vec![OBJECT_META.to_string()];
    let mut paths = Map::new();
    let base = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    for desc in state.registry.resources_in(group, version) {
        let schema_ref = match &desc.schema {
            SchemaSource::Builtin(_) => match builtins.kind_schema(&desc.group, &desc.kind) {
                Some(r) => {
                    pending.extend(ref_name(&r));
                    r
                }
                None => json!({"type": "object"}),
            },
            SchemaSource::Structural(root) => {
                let name = custom_component_name(&desc);
                let schema = custom_schema(&desc, root);
                collect_refs(&schema, &mut pending);
                components.insert(name.clone(), schema);
                json!({"$ref": format!("#/components/schemas/{name}")})
            }
            SchemaSource::None => {
                let name = custom_component_name(&desc);
                let schema = custom_schema(
                    &desc,
                    &json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                );
                components.insert(name.clone(), schema);
                json!({"$ref": format!("#/components/schemas/{name}")})
            }
        };
        let collection = if desc.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", desc.plural)
        } else {
            format!("{base}/{}", desc.plural)
        };
        let item = format!("{collection}/{{name}}");
        paths.insert(
            collection.clone(),
            json!({"get": operation(&desc, "list", &schema_ref), "post": operation(&desc, "post", &schema_ref)}),
        );
        paths.insert(
            item.clone(),
            json!({
                "get": operation(&desc, "get", &schema_ref),
                "put": operation(&desc, "put", &schema_ref),
                "patch": operation(&desc, "patch", &schema_ref),
                "delete": operation(&desc, "delete", &schema_ref),
            }),
        );
        if desc.subresources.status {
            paths.insert(
                format!("{item}/status"),
                json!({"get": operation(&desc, "get", &schema_ref), "put": operation(&desc, "put", &schema_ref), "patch": operation(&desc, "patch", &schema_ref)}),
            );
        }
    }
    while let Some(name) = pending.pop() {
        if components.contains_key(&name) {
            continue;
        }
        if let Some(schema) = builtins.components.get(&name) {
            collect_refs(schema, &mut pending);
            components.insert(name, schema.clone());
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.31.9"},
        "paths": paths,
        "components": {"schemas": components},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_schemas_have_gvk_and_container_image() {
        let schemas = builtin_schemas();
        let pod = schemas
            .components
            .get("io.k8s.api.core.v1.Pod")
            .expect("pod schema");
        assert_eq!(pod["x-kubernetes-group-version-kind"][0]["kind"], "Pod");
        let container = schemas
            .components
            .get("io.k8s.api.core.v1.Container")
            .expect("container schema");
        assert!(container["properties"].get("image").is_some());
        assert!(schemas.components.contains_key(OBJECT_META));
    }
}
