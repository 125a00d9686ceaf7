//! Update rules: which changes to a stored object the webhook refuses.

mod support;

use kruise_api::apps::{v1alpha1 as apps, v1beta1};
use kruise_api::federation::v1alpha1 as federation;
use kruise_api::policy::v1alpha1 as policy;
use kruise_api::{Defaulted, ValidatedUpdate};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use support::{example_value, set};

/// Messages for updating the defaulted example `base` with `edit` applied.
fn update_errors<T>(base: &str, edit: impl FnOnce(&mut Value)) -> Vec<String>
where
    T: DeserializeOwned + Defaulted + ValidatedUpdate,
{
    let old_value = example_value(base);
    let mut new_value = old_value.clone();
    edit(&mut new_value);
    let mut old: T = serde_json::from_value(old_value).expect("old parses");
    let mut new: T = serde_json::from_value(new_value).expect("new parses");
    old.apply_defaults();
    new.apply_defaults();
    new.validate_update(&old)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn cloneset_spec_fields_outside_the_mutable_list_are_forbidden() {
    assert_eq!(
        update_errors::<apps::CloneSet>("cloneset.yaml", |v| {
            set(v, "/spec/selector/matchLabels/tier", json!("front"));
            set(v, "/spec/template/metadata/labels/tier", json!("front"));
        }),
        ["spec: Forbidden: updates to cloneset spec for fields other than 'replicas', 'template', 'scaleStrategy', 'updateStrategy', 'minReadySeconds', 'lifecycle', 'revisionHistoryLimit', 'volumeClaimTemplates' and 'progressDeadlineSeconds' are forbidden"]
    );
    let ok = update_errors::<apps::CloneSet>("cloneset.yaml", |v| {
        set(v, "/spec/replicas", json!(9));
        set(
            v,
            "/spec/template/spec/containers/0/image",
            json!("nginx:1.26.0"),
        );
        set(
            v,
            "/spec/template/spec/containers/0/env",
            json!([{"name": "A", "value": "b"}]),
        );
    });
    assert!(ok.is_empty(), "{ok:?}");
}

#[test]
fn in_place_only_allows_image_changes_only() {
    let edit_type = |v: &mut Value| set(v, "/spec/updateStrategy/type", json!("InPlaceOnly"));
    let image_only = update_errors::<apps::CloneSet>("seed-cloneset.yaml", |v| {
        edit_type(v);
        set(
            v,
            "/spec/template/spec/containers/0/image",
            json!("registry.cn-hangzhou.aliyuncs.com/kruise-test/guestbook:v2"),
        );
        set(v, "/spec/template/metadata/labels/version", json!("v2"));
    });
    assert!(image_only.is_empty(), "{image_only:?}");
    let env_change = update_errors::<apps::CloneSet>("seed-cloneset.yaml", |v| {
        edit_type(v);
        set(
            v,
            "/spec/template/spec/containers/0/env/0/value",
            json!("bar"),
        );
    });
    assert_eq!(
        env_change,
        ["spec.template: Forbidden: only allowed to update images in spec for InPlaceOnly"]
    );
}

#[test]
fn statefulset_immutable_fields_and_in_place_only() {
    assert_eq!(
        update_errors::<v1beta1::StatefulSet>("advanced-statefulset.yaml", |v| set(v, "/spec/serviceName", json!("kv-2"))),
        ["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'reserveOrdinals', 'lifecycle', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy', 'volumeClaimTemplates', 'volumeClaimUpdateStrategy', 'updateStrategy' and 'scaleStrategy' are forbidden"]
    );
    assert_eq!(
        update_errors::<apps::StatefulSet>("seed-statefulset.yaml", |v| {
            set(v, "/spec/updateStrategy/rollingUpdate/podUpdatePolicy", json!("InPlaceOnly"));
            set(v, "/spec/template/spec/containers/0/volumeMounts/0/mountPath", json!("/logs"));
        }),
        ["spec.template: Forbidden: invalid template modified with InPlaceOnly strategy: only container images may change"]
    );
}

#[test]
fn sidecarset_cannot_gain_containers_or_change_upgrade_type() {
    assert_eq!(
        update_errors::<apps::SidecarSet>("sidecarset.yaml", |v| {
            set(v, "/spec/containers/0/upgradeStrategy", json!({"upgradeType": "HotUpgrade", "hotUpgradeEmptyImage": "busybox:1.36"}));
            set(v, "/spec/containers/1", json!({"name": "metrics", "image": "prom/statsd-exporter:v0.26.0"}));
        }),
        [
            "spec.containers[0].upgradeStrategy.upgradeType: Forbidden: container shipper upgradeType is immutable",
            "spec.containers[1]: Forbidden: container metrics is not found",
        ]
    );
}

#[test]
fn uniteddeployment_subset_placement_is_immutable_but_clusters_may_move() {
    assert_eq!(
        update_errors::<apps::UnitedDeployment>("uniteddeployment.yaml", |v| {
            set(v, "/spec/topology/subsets/0/nodeSelectorTerm/matchExpressions/0/values", json!(["zone-x"]));
        }),
        ["spec.topology.subsets[0].nodeSelectorTerm: Invalid value: {\"matchExpressions\":[{\"key\":\"topology.kubernetes.io/zone\",\"operator\":\"In\",\"values\":[\"zone-x\"]}]}: field is immutable"]
    );
    let moved = update_errors::<apps::UnitedDeployment>("federated-uniteddeployment.yaml", |v| {
        set(
            v,
            "/spec/topology/subsets/0/clusters",
            json!(["member-r1b"]),
        );
    });
    assert!(moved.is_empty(), "{moved:?}");
}

#[test]
fn references_and_specs_that_cannot_change() {
    assert_eq!(
        update_errors::<policy::PodUnavailableBudget>("podunavailablebudget.yaml", |v| set(
            v,
            "/spec/targetRef/name",
            json!("api")
        )),
        ["spec: Forbidden: selector and targetRef cannot be modified"]
    );
    assert_eq!(
        update_errors::<apps::WorkloadSpread>("workloadspread.yaml", |v| set(
            v,
            "/spec/targetRef/name",
            json!("api")
        )),
        ["spec.targetRef: Forbidden: change TargetReference is not permitted for WorkloadSpread"]
    );
    assert_eq!(
        update_errors::<apps::ContainerRecreateRequest>("containerrecreaterequest.yaml", |v| set(
            v,
            "/spec/ttlSecondsAfterFinished",
            json!(60)
        )),
        ["spec: Forbidden: spec of ContainerRecreateRequest is immutable"]
    );
    assert_eq!(
        update_errors::<federation::Work>("work.yaml", |v| set(
            v,
            "/spec/cluster",
            json!("member-r2")
        )),
        ["spec.cluster: Invalid value: \"member-r2\": field is immutable"]
    );
    let ws_version_bump = update_errors::<apps::WorkloadSpread>("workloadspread.yaml", |v| {
        set(
            v,
            "/spec/targetRef/apiVersion",
            json!("apps.kruise.io/v1beta1"),
        );
    });
    assert!(
        ws_version_bump.is_empty(),
        "a version change of the same group is allowed: {ws_version_bump:?}"
    );
}
