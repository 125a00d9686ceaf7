//! CloneSet defaulting as the controller applies it in memory, so that it never depends on the
//! mutating webhook having run. The rules themselves live in `kruise_api::defaults`.

use kruise_api::apps::v1alpha1::cloneset::CloneSet;
use kruise_api::defaults::Defaulted;

/// A defaulted copy. With `template_defaults` false (`TemplateNoDefaults`), the pod template is
/// left as written and only the spec fields are defaulted.
pub fn defaulted(cs: &CloneSet, template_defaults: bool) -> CloneSet {
    let mut out = cs.clone();
    out.apply_defaults();
    if !template_defaults {
        out.spec.template = cs.spec.template.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_match_upstream_and_are_idempotent() {
        let cs: CloneSet = serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
            "metadata": {"name": "a"},
            "spec": {"selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": {"app": "a"}},
                                  "spec": {"containers": [{"name": "c", "image": "i:v1"}]}},
                     "updateStrategy": {"type": "InPlaceIfPossible"}}
        }))
        .unwrap();
        let d = defaulted(&cs, true);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["spec"]["replicas"], 1);
        assert_eq!(v["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(v["spec"]["updateStrategy"]["maxUnavailable"], "20%");
        assert_eq!(
            v["spec"]["updateStrategy"]["inPlaceUpdateStrategy"],
            json!({})
        );
        let c = &v["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(defaulted(&d, true), d);
        let plain = defaulted(&cs, false);
        assert_eq!(plain.spec.template, cs.spec.template);
        assert_eq!(plain.spec.replicas, Some(1));
    }
}
