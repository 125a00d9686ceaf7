//! Where lists merge instead of being replaced: the `patchStrategy`/`patchMergeKey` tags of
//! `k8s.io/api`, which k8s-openapi does not carry, as a path-pattern table.

/// How a list field combines with the same field in a patch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListStrategy {
    /// The patch's list replaces the live list whole (the default, e.g. `tolerations`, `args`).
    Replace,
    /// A list of objects merged element by element, matched on this key (e.g. `name`).
    MergeByKey(String),
    /// A list of scalars merged as a set, e.g. `metadata.finalizers`.
    MergePrimitives,
}

/// Patch metadata for one kind of object.
pub trait PatchSchema {
    /// The list strategy at a JSON path made of object keys only; list items are transparent,
    /// e.g. `["spec", "template", "spec", "containers", "env"]`.
    fn list_strategy(&self, path: &[&str]) -> ListStrategy;

    /// Whether the field at `path` carries the `retainKeys` strategy (informational: applying a
    /// patch honours a `$retainKeys` directive wherever it appears).
    fn retain_keys(&self, _path: &[&str]) -> bool {
        false
    }
}

/// The schema of custom resources: every list is replaced.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMergeKeys;

impl PatchSchema for NoMergeKeys {
    fn list_strategy(&self, _path: &[&str]) -> ListStrategy {
        ListStrategy::Replace
    }
}

/// Merge keys of the built-in kinds, located by path pattern so that a PodSpec is recognised
/// wherever a workload embeds one (`spec` of a Pod, any `…template.spec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinPatchSchema {
    kind: String,
    group: String,
}

impl BuiltinPatchSchema {
    /// The schema of `kind` in API group `group` (`""` for the core group).
    pub fn new(kind: impl Into<String>, group: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            group: group.into(),
        }
    }

    /// The kind this schema describes.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The API group this schema describes.
    pub fn group(&self) -> &str {
        &self.group
    }

    fn is_core(&self, kind: &str) -> bool {
        self.group.is_empty() && self.kind == kind
    }

    /// The path relative to the innermost PodSpec containing `path`, if any.
    fn pod_spec_relative<'p>(&self, path: &'p [&'p str]) -> Option<&'p [&'p str]> {
        // innermost `template.spec` wins, so nested templates resolve correctly
        let templated = (0..path.len().saturating_sub(1))
            .rev()
            .find(|&i| path[i] == "template" && path[i + 1] == "spec")
            .map(|i| &path[i + 2..]);
        if templated.is_some() {
            return templated;
        }
        if self.is_core("Pod") && path.first() == Some(&"spec") {
            return Some(&path[1..]);
        }
        None
    }
}

fn merge_key(key: &str) -> ListStrategy {
    ListStrategy::MergeByKey(key.to_string())
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

fn pod_spec_strategy(rel: &[&str]) -> Option<ListStrategy> {
    match rel {
        [list] if CONTAINER_LISTS.contains(list) => Some(merge_key("name")),
        ["volumes"] | ["imagePullSecrets"] | ["schedulingGates"] | ["resourceClaims"] => {
            Some(merge_key("name"))
        }
        ["hostAliases"] => Some(merge_key("ip")),
        ["topologySpreadConstraints"] => Some(merge_key("topologyKey")),
        [list, field] if CONTAINER_LISTS.contains(list) => match *field {
            "env" => Some(merge_key("name")),
            "ports" => Some(merge_key("containerPort")),
            "volumeMounts" => Some(merge_key("mountPath")),
            "volumeDevices" => Some(merge_key("devicePath")),
            "envFrom" => Some(ListStrategy::Replace),
            _ => None,
        },
        _ => None,
    }
}

impl PatchSchema for BuiltinPatchSchema {
    fn list_strategy(&self, path: &[&str]) -> ListStrategy {
        if let Some(rel) = self.pod_spec_relative(path) {
            if let Some(strategy) = pod_spec_strategy(rel) {
                return strategy;
            }
        }
        match path {
            [.., "metadata", "ownerReferences"] => return merge_key("uid"),
            [.., "metadata", "finalizers"] => return ListStrategy::MergePrimitives,
            ["status", "conditions"] => return merge_key("type"),
            _ => {}
        }
        match (self.group.as_str(), self.kind.as_str(), path) {
            ("", "Service", ["spec", "ports"]) => merge_key("port"),
            ("", "ServiceAccount", ["secrets"]) => merge_key("name"),
            ("", "Node", ["status", "addresses"]) => merge_key("type"),
            ("", "Node", ["spec", "podCIDRs"]) => ListStrategy::MergePrimitives,
            ("", "Pod", ["status", "podIPs"]) | ("", "Pod", ["status", "hostIPs"]) => {
                merge_key("ip")
            }
            _ => ListStrategy::Replace,
        }
    }

    fn retain_keys(&self, path: &[&str]) -> bool {
        if let Some(rel) = self.pod_spec_relative(path) {
            if rel == ["volumes"] {
                return true;
            }
        }
        self.group == "apps" && self.kind == "Deployment" && path == ["spec", "strategy"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_list_strategies() {
        let by = |k: &str| ListStrategy::MergeByKey(k.to_string());
        let cases: Vec<(&str, &str, &[&str], ListStrategy)> = vec![
            ("Pod", "", &["spec", "containers"], by("name")),
            ("Pod", "", &["spec", "containers", "env"], by("name")),
            (
                "Pod",
                "",
                &["spec", "initContainers", "ports"],
                by("containerPort"),
            ),
            (
                "Pod",
                "",
                &["spec", "ephemeralContainers", "volumeMounts"],
                by("mountPath"),
            ),
            (
                "Pod",
                "",
                &["spec", "containers", "volumeDevices"],
                by("devicePath"),
            ),
            (
                "Pod",
                "",
                &["spec", "containers", "envFrom"],
                ListStrategy::Replace,
            ),
            (
                "Pod",
                "",
                &["spec", "containers", "args"],
                ListStrategy::Replace,
            ),
            ("Pod", "", &["spec", "tolerations"], ListStrategy::Replace),
            ("Pod", "", &["spec", "volumes"], by("name")),
            ("Pod", "", &["spec", "hostAliases"], by("ip")),
            (
                "Pod",
                "",
                &["spec", "topologySpreadConstraints"],
                by("topologyKey"),
            ),
            ("Pod", "", &["spec", "schedulingGates"], by("name")),
            ("Pod", "", &["spec", "imagePullSecrets"], by("name")),
            ("Pod", "", &["status", "conditions"], by("type")),
            ("Pod", "", &["status", "podIPs"], by("ip")),
            (
                "Pod",
                "",
                &["metadata", "finalizers"],
                ListStrategy::MergePrimitives,
            ),
            ("Pod", "", &["metadata", "ownerReferences"], by("uid")),
            (
                "Deployment",
                "apps",
                &["spec", "template", "spec", "containers"],
                by("name"),
            ),
            (
                "Deployment",
                "apps",
                &["spec", "template", "spec", "containers", "env"],
                by("name"),
            ),
            (
                "Deployment",
                "apps",
                &["spec", "template", "metadata", "finalizers"],
                ListStrategy::MergePrimitives,
            ),
            (
                "Deployment",
                "apps",
                &["spec", "containers"],
                ListStrategy::Replace,
            ),
            ("Deployment", "apps", &["status", "conditions"], by("type")),
            (
                "StatefulSet",
                "apps",
                &["spec", "template", "spec", "volumes"],
                by("name"),
            ),
            (
                "StatefulSet",
                "apps",
                &["spec", "volumeClaimTemplates"],
                ListStrategy::Replace,
            ),
            (
                "CronJob",
                "batch",
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers",
                ],
                by("name"),
            ),
            (
                "CronJob",
                "batch",
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "initContainers",
                    "env",
                ],
                by("name"),
            ),
            (
                "CloneSet",
                "apps.kruise.io",
                &["spec", "template", "spec", "containers"],
                by("name"),
            ),
            (
                "PodTemplate",
                "",
                &["template", "spec", "containers"],
                by("name"),
            ),
            ("Service", "", &["spec", "ports"], by("port")),
            (
                "Service",
                "",
                &["spec", "externalIPs"],
                ListStrategy::Replace,
            ),
            ("ServiceAccount", "", &["secrets"], by("name")),
            ("Node", "", &["status", "addresses"], by("type")),
            ("Node", "", &["status", "conditions"], by("type")),
            (
                "ConfigMap",
                "",
                &["spec", "containers"],
                ListStrategy::Replace,
            ),
        ];
        for (kind, group, path, want) in cases {
            let schema = BuiltinPatchSchema::new(kind, group);
            assert_eq!(schema.list_strategy(path), want, "{group}/{kind} {path:?}");
        }
    }

    #[test]
    fn builtin_retain_keys() {
        let cases: &[(&str, &str, &[&str], bool)] = &[
            ("Deployment", "apps", &["spec", "strategy"], true),
            (
                "Deployment",
                "apps",
                &["spec", "template", "spec", "volumes"],
                true,
            ),
            ("Pod", "", &["spec", "volumes"], true),
            ("StatefulSet", "apps", &["spec", "strategy"], false),
            ("Pod", "", &["spec", "containers"], false),
        ];
        for (kind, group, path, want) in cases {
            let schema = BuiltinPatchSchema::new(*kind, *group);
            assert_eq!(schema.retain_keys(path), *want, "{kind} {path:?}");
        }
    }

    #[test]
    fn custom_resources_replace_every_list() {
        for path in [
            &["spec", "template", "spec", "containers"][..],
            &["metadata", "finalizers"],
        ] {
            assert_eq!(NoMergeKeys.list_strategy(path), ListStrategy::Replace);
            assert!(!NoMergeKeys.retain_keys(path));
        }
    }
}
