//! Which webhooks of a configuration apply to a request: rules (operations, groups, versions,
//! resources with subresources, scope), `matchPolicy`, and the namespace and object selectors.

use serde_json::Value;

use crate::http::filter::labels_of;
use crate::selector::LabelSelector;

/// An admission operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    /// The wire name (`CREATE`, `UPDATE`, `DELETE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }

    /// The `options` kind sent with this operation.
    pub fn options_kind(self) -> &'static str {
        match self {
            Operation::Create => "CreateOptions",
            Operation::Update => "UpdateOptions",
            Operation::Delete => "DeleteOptions",
        }
    }
}

/// A group/version/resource with its subresource, as a rule sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleTarget<'a> {
    pub operation: Operation,
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespaced: bool,
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn contains_or_star(list: &[&str], wanted: &str) -> bool {
    list.iter().any(|item| *item == "*" || *item == wanted)
}

/// Whether a resource pattern (`pods`, `pods/status`, `*`, `*/*`, `pods/*`, `*/scale`) covers
/// a resource and subresource.
pub fn resource_matches(pattern: &str, resource: &str, subresource: &str) -> bool {
    if pattern == "*/*" {
        return true;
    }
    let (res, sub) = match pattern.split_once('/') {
        Some((res, sub)) => (res, Some(sub)),
        None => (pattern, None),
    };
    match sub {
        None => subresource.is_empty() && (res == "*" || res == resource),
        Some(sub) => {
            !subresource.is_empty()
                && (res == "*" || res == resource)
                && (sub == "*" || sub == subresource)
        }
    }
}

/// Whether one `rules[]` entry covers the target.
pub fn rule_matches(rule: &Value, target: &RuleTarget<'_>) -> bool {
    let operations = strings(rule.get("operations"));
    if !contains_or_star(&operations, target.operation.as_str()) {
        return false;
    }
    if !contains_or_star(&strings(rule.get("apiGroups")), target.group) {
        return false;
    }
    if !contains_or_star(&strings(rule.get("apiVersions")), target.version) {
        return false;
    }
    if !strings(rule.get("resources"))
        .iter()
        .any(|p| resource_matches(p, target.resource, target.subresource))
    {
        return false;
    }
    match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => !target.namespaced,
        "Namespaced" => target.namespaced,
        _ => true,
    }
}

/// Whether any of a webhook's rules covers the target.
pub fn any_rule_matches(webhook: &Value, target: &RuleTarget<'_>) -> bool {
    webhook
        .get("rules")
        .and_then(Value::as_array)
        .is_some_and(|rules| rules.iter().any(|r| rule_matches(r, target)))
}

/// A webhook's selector (`namespaceSelector` or `objectSelector`); absent or `{}` selects
/// everything, an unparsable one nothing.
pub fn selector_of(webhook: &Value, field: &str) -> Option<LabelSelector> {
    match webhook.get(field) {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            LabelSelector::from_label_selector_value(value)
                .unwrap_or_else(|_| LabelSelector::nothing()),
        ),
    }
}

/// The object selector: matches when the new or the old object carries matching labels.
pub fn object_selector_matches(webhook: &Value, obj: Option<&Value>, old: Option<&Value>) -> bool {
    let Some(selector) = selector_of(webhook, "objectSelector") else {
        return true;
    };
    if selector.is_empty() {
        return true;
    }
    [obj, old]
        .into_iter()
        .flatten()
        .any(|o| selector.matches(&labels_of(o)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target<'a>(resource: &'a str, subresource: &'a str) -> RuleTarget<'a> {
        RuleTarget {
            operation: Operation::Create,
            group: "",
            version: "v1",
            resource,
            subresource,
            namespaced: true,
        }
    }

    #[test]
    fn resource_patterns_and_subresources() {
        assert!(resource_matches("pods", "pods", ""));
        assert!(!resource_matches("pods", "pods", "status"));
        assert!(resource_matches("*", "pods", ""));
        assert!(!resource_matches("*", "pods", "status"));
        assert!(resource_matches("*/*", "pods", "status"));
        assert!(resource_matches("pods/*", "pods", "eviction"));
        assert!(!resource_matches("pods/*", "pods", ""));
        assert!(resource_matches("*/scale", "deployments", "scale"));
        assert!(!resource_matches("pods/status", "pods", "eviction"));
    }

    #[test]
    fn rules_check_operations_groups_versions_and_scope() {
        let rule = json!({"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"});
        assert!(rule_matches(&rule, &target("pods", "")));
        let mut update = target("pods", "");
        update.operation = Operation::Update;
        assert!(!rule_matches(&rule, &update));
        let mut cluster = target("pods", "");
        cluster.namespaced = false;
        assert!(!rule_matches(&rule, &cluster));
        let star = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]});
        assert!(rule_matches(&star, &update));
        assert!(!rule_matches(&star, &target("pods", "status")));
    }

    #[test]
    fn object_selector_uses_old_or_new_labels() {
        let hook = json!({"objectSelector": {"matchLabels": {"hook": "yes"}}});
        let tagged = json!({"metadata": {"labels": {"hook": "yes"}}});
        let plain = json!({"metadata": {}});
        assert!(object_selector_matches(&hook, Some(&plain), Some(&tagged)));
        assert!(object_selector_matches(&hook, Some(&tagged), None));
        assert!(!object_selector_matches(&hook, Some(&plain), None));
        assert!(object_selector_matches(
            &json!({"objectSelector": {}}),
            Some(&plain),
            None
        ));
    }
}
