//! The resource registry: one descriptor per served resource (built-in or from a CRD), looked up
//! by the REST layer, discovery, OpenAPI and Table printing.

pub mod builtin;
pub mod crd;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

/// Where a CRD's scale subresource reads and writes replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    /// e.g. `.spec.replicas`
    pub spec_replicas: String,
    /// e.g. `.status.replicas`
    pub status_replicas: String,
    /// e.g. `.status.selector` (a string selector), or the built-in `spec.selector` label selector.
    pub label_selector: Option<String>,
}

/// Subresources a resource serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subresources {
    pub status: bool,
    pub scale: Option<ScalePaths>,
    pub eviction: bool,
    pub binding: bool,
    pub finalize: bool,
}

/// One `additionalPrinterColumns` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    pub column_type: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// How the Table view of a resource is computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Printer {
    /// A built-in printer, keyed by kind (see `table::builtin`).
    Builtin,
    /// CRD printer columns (empty → Name + Age).
    Columns(Vec<PrinterColumn>),
}

/// How objects of a resource get their OpenAPI schema.
#[derive(Clone, Debug)]
pub enum SchemaSource {
    /// A k8s-openapi type's schema, generated into the given component name.
    Builtin(fn(&mut schemars::SchemaGenerator) -> schemars::Schema),
    /// A CRD version's `openAPIV3Schema`.
    Structural(Value),
    /// No schema (everything accepted).
    None,
}

/// Everything the server knows about one served resource in one version.
#[derive(Clone, Debug)]
pub struct ResourceDescriptor {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    pub subresources: Subresources,
    pub printer: Printer,
    pub schema: SchemaSource,
    /// Built-in kinds accept strategic merge patches and unconditional updates.
    pub builtin: bool,
    /// Whether `metadata.generation` is tracked.
    pub tracks_generation: bool,
    /// The version objects are stored in (all versions of one resource share the storage key).
    pub storage_version: String,
    /// Field selector labels beyond `metadata.name` / `metadata.namespace`.
    pub selectable_fields: Vec<String>,
}

impl ResourceDescriptor {
    /// `apiVersion` of this descriptor's objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `group/version` as discovery lists it.
    pub fn group_version(&self) -> String {
        self.api_version()
    }

    /// Storage key prefix for all objects of the resource (ends with `/`).
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group.as_str()
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// Storage key prefix for one namespace (or the whole resource when `namespace` is `None`).
    pub fn collection_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/", self.key_prefix()),
            _ => self.key_prefix(),
        }
    }

    /// Storage key of one object.
    pub fn object_key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }

    /// Whether the verb is served.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

/// One API group as discovery presents it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupVersions {
    pub name: String,
    /// Versions in preference order.
    pub versions: Vec<String>,
}

/// The set of served resources; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<RegistryState>>,
}

#[derive(Default)]
struct RegistryState {
    /// Keyed by (group, version, plural).
    resources: BTreeMap<(String, String, String), Arc<ResourceDescriptor>>,
    /// Group → versions in preference order; insertion order of groups kept separately.
    group_order: Vec<String>,
    versions: BTreeMap<String, Vec<String>>,
    /// Bumped on every change so OpenAPI hashes and discovery caches move.
    generation: u64,
}

impl Registry {
    /// A registry serving the built-in resources.
    pub fn with_builtins() -> Self {
        let registry = Registry::default();
        for desc in builtin::descriptors() {
            registry.insert(desc);
        }
        registry
    }

    /// Adds or replaces a descriptor.
    pub fn insert(&self, desc: ResourceDescriptor) {
        let mut state = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if !state.group_order.contains(&desc.group) {
            state.group_order.push(desc.group.clone());
        }
        let versions = state.versions.entry(desc.group.clone()).or_default();
        if !versions.contains(&desc.version) {
            versions.push(desc.version.clone());
            versions.sort_by(|a, b| crd::compare_versions(b, a));
        }
        state.resources.insert(
            (
                desc.group.clone(),
                desc.version.clone(),
                desc.plural.clone(),
            ),
            Arc::new(desc),
        );
        state.generation += 1;
    }

    /// Removes every version of `plural.group` (a deleted CRD).
    pub fn remove_resource(&self, group: &str, plural: &str) {
        let mut state = self.inner.write().unwrap_or_else(|e| e.into_inner());
        state
            .resources
            .retain(|(g, _, p), _| !(g == group && p == plural));
        let remaining: Vec<String> = state
            .resources
            .keys()
            .filter(|(g, _, _)| g == group)
            .map(|(_, v, _)| v.clone())
            .collect();
        if let Some(versions) = state.versions.get_mut(group) {
            versions.retain(|v| remaining.contains(v));
            if versions.is_empty() {
                state.versions.remove(group);
                state.group_order.retain(|g| g != group);
            }
        }
        state.generation += 1;
    }

    /// The descriptor for `group/version` `plural`.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDescriptor>> {
        let state = self.inner.read().unwrap_or_else(|e| e.into_inner());
        state
            .resources
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// The preferred-version descriptor of `plural.group`.
    pub fn preferred(&self, group: &str, plural: &str) -> Option<Arc<ResourceDescriptor>> {
        let versions = self.versions_of(group);
        versions.iter().find_map(|v| self.get(group, v, plural))
    }

    /// Finds a descriptor by group and kind (any version, preferred first).
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceDescriptor>> {
        for version in self.versions_of(group) {
            if let Some(desc) = self
                .resources_in(group, &version)
                .into_iter()
                .find(|d| d.kind == kind)
            {
                return Some(desc);
            }
        }
        None
    }

    /// Whether the group/version is served at all.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.versions_of(group).iter().any(|v| v == version)
    }

    /// Served versions of a group, preferred first.
    pub fn versions_of(&self, group: &str) -> Vec<String> {
        let state = self.inner.read().unwrap_or_else(|e| e.into_inner());
        state.versions.get(group).cloned().unwrap_or_default()
    }

    /// All groups except the core group, in registration order.
    pub fn groups(&self) -> Vec<GroupVersions> {
        let state = self.inner.read().unwrap_or_else(|e| e.into_inner());
        state
            .group_order
            .iter()
            .filter(|g| !g.is_empty())
            .map(|g| GroupVersions {
                name: g.clone(),
                versions: state.versions.get(g).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Resources of one group/version.
    pub fn resources_in(&self, group: &str, version: &str) -> Vec<Arc<ResourceDescriptor>> {
        let state = self.inner.read().unwrap_or_else(|e| e.into_inner());
        state
            .resources
            .iter()
            .filter(|((g, v, _), _)| g == group && v == version)
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// Every descriptor.
    pub fn all(&self) -> Vec<Arc<ResourceDescriptor>> {
        let state = self.inner.read().unwrap_or_else(|e| e.into_inner());
        state.resources.values().cloned().collect()
    }

    /// A counter that changes whenever the served set changes.
    pub fn generation(&self) -> u64 {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .generation
    }
}
