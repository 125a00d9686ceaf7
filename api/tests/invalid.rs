//! Tables of invalid objects per kind: each case edits a valid example and lists every expected
//! field error, as the full `field.Error` string.

mod support;

use kruise_api::apps::{v1alpha1 as apps, v1beta1};
use kruise_api::policy::v1alpha1 as policy;
use kruise_api::{Defaulted, Validated};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use support::{errors_after_edit, remove, set};

type Edit = fn(&mut Value);

fn run_table<T: DeserializeOwned + Validated + Defaulted>(
    base: &str,
    cases: &[(&str, Edit, &[&str])],
) {
    for (name, edit, expected) in cases {
        let got = errors_after_edit::<T>(base, edit);
        assert_eq!(got, *expected, "case {name:?} on {base}");
    }
}

#[test]
fn cloneset_invalid_inputs() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("negative partition", |v| set(v, "/spec/updateStrategy/partition", json!(-1)), &[
            "spec.updateStrategy.partition: Invalid value: -1: must be greater than or equal to 0",
        ]),
        ("unknown strategy type", |v| set(v, "/spec/updateStrategy/type", json!("Sideways")), &[
            "spec.updateStrategy.type: Unsupported value: \"Sideways\": supported values: \"ReCreate\", \"InPlaceIfPossible\", \"InPlaceOnly\"",
        ]),
        ("selector missing its labels", |v| set(v, "/spec/selector", json!({})), &[
            "spec.selector: Invalid value: {}: empty selector is not valid for a cloneset.",
        ]),
        ("selector does not match template", |v| set(v, "/spec/selector/matchLabels/app", json!("other")), &[
            "spec.template.metadata.labels: Invalid value: {\"app\":\"guestbook\"}: `selector` does not match template `labels`",
        ]),
        ("negative replicas and no containers", |v| {
            set(v, "/spec/replicas", json!(-2));
            set(v, "/spec/template/spec/containers", json!([]));
        }, &[
            "spec.replicas: Invalid value: -2: must be greater than or equal to 0",
            "spec.template.spec.containers: Required value",
        ]),
        ("maxSurge with InPlaceOnly and numeric-string maxUnavailable", |v| {
            set(v, "/spec/updateStrategy/type", json!("InPlaceOnly"));
            set(v, "/spec/updateStrategy/maxSurge", json!(1));
            set(v, "/spec/updateStrategy/maxUnavailable", json!("5"));
        }, &[
            "spec.updateStrategy.maxUnavailable: Invalid value: \"5\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            "spec.updateStrategy.maxSurge: Invalid value: 1: can not use maxSurge with strategy type InPlaceOnly",
        ]),
        ("both budgets below one", |v| set(v, "/spec/updateStrategy/maxUnavailable", json!(0)), &[
            "spec.updateStrategy.maxUnavailable: Invalid value: 0: maxUnavailable and maxSurge should not both be less than 1",
        ]),
        ("partition over 100%", |v| set(v, "/spec/updateStrategy/partition", json!("120%")), &[
            "spec.updateStrategy.partition: Invalid value: \"120%\": must not be greater than 100%",
        ]),
        ("duplicate podsToDelete, bad container name, restartPolicy", |v| {
            set(v, "/spec/scaleStrategy/podsToDelete", json!(["demo-clone-a", "demo-clone-a"]));
            set(v, "/spec/template/spec/containers/0/name", json!("Guest_Book"));
            set(v, "/spec/template/spec/restartPolicy", json!("Never"));
        }, &[
            "spec.template.spec.containers[0].name: Invalid value: \"Guest_Book\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            "spec.scaleStrategy.podsToDelete[1]: Duplicate value: \"demo-clone-a\"",
        ]),
        ("activeDeadlineSeconds and a progress deadline under minReadySeconds", |v| {
            set(v, "/spec/template/spec/activeDeadlineSeconds", json!(10));
            set(v, "/spec/minReadySeconds", json!(30));
            set(v, "/spec/progressDeadlineSeconds", json!(20));
        }, &[
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in cloneset is not Supported",
            "spec.progressDeadlineSeconds: Invalid value: 20: must be greater than minReadySeconds",
        ]),
    ];
    run_table::<apps::CloneSet>("seed-cloneset.yaml", cases);
}

#[test]
fn advanced_statefulset_invalid_inputs() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("in-place policy without the readiness gate", |v| remove(v, "/spec/template/spec/readinessGates"), &[
            "spec.template.spec.readinessGates: Required value: must contains InPlaceUpdateReady when podUpdatePolicy is InPlaceIfPossible",
        ]),
        ("maxUnavailable other than 1 needs Parallel", |v| set(v, "/spec/podManagementPolicy", json!("OrderedReady")), &[
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: \"20%\": can only work with Parallel PodManagementPolicyType",
        ]),
        ("unknown pod update policy and management policy", |v| {
            set(v, "/spec/updateStrategy/rollingUpdate/podUpdatePolicy", json!("Teleport"));
            set(v, "/spec/podManagementPolicy", json!("Random"));
        }, &[
            "spec.podManagementPolicy: Unsupported value: \"Random\": supported values: \"OrderedReady\", \"Parallel\"",
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: \"20%\": can only work with Parallel PodManagementPolicyType",
            "spec.updateStrategy.rollingUpdate.podUpdatePolicy: Unsupported value: \"Teleport\": supported values: \"ReCreate\", \"InPlaceIfPossible\", \"InPlaceOnly\"",
        ]),
        ("OnDelete with rollingUpdate", |v| {
            set(v, "/spec/updateStrategy", json!({"type": "OnDelete", "rollingUpdate": {"partition": 1, "maxUnavailable": 1}}));
        }, &[
            "spec.updateStrategy.rollingUpdate: Invalid value: {\"partition\":1,\"maxUnavailable\":1}: only allowed for updateStrategy 'RollingUpdate'",
        ]),
        ("minReadySeconds over 300 and negative partition", |v| {
            set(v, "/spec/updateStrategy/rollingUpdate/minReadySeconds", json!(301));
            set(v, "/spec/updateStrategy/rollingUpdate/partition", json!(-1));
        }, &[
            "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0",
            "spec.updateStrategy.rollingUpdate.minReadySeconds: Invalid value: 301: must be no more than 300 seconds",
        ]),
        ("volume mount without a volume", |v| set(v, "/spec/template/spec/containers/0/volumeMounts/0/name", json!("missing")), &[
            "spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"missing\"",
        ]),
        ("zero maxUnavailable", |v| set(v, "/spec/updateStrategy/rollingUpdate/maxUnavailable", json!("0%")), &[
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": must be greater than 0",
        ]),
    ];
    run_table::<apps::StatefulSet>("seed-statefulset.yaml", cases);
}

#[test]
fn advanced_statefulset_v1beta1_reserve_ordinals_and_retention() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("bad ordinals", |v| set(v, "/spec/reserveOrdinals", json!([-1, "5-3", "x", "2-4"])), &[
            "spec.reserveOrdinals[0]: Invalid value: -1: must be greater than or equal to 0",
            "spec.reserveOrdinals[1]: Invalid value: \"5-3\": range start must not be greater than range end",
            "spec.reserveOrdinals[2]: Invalid value: \"x\": must be a non-negative integer or a range \"a-b\" (^\\d+-\\d+$)",
        ]),
        ("bad retention", |v| set(v, "/spec/persistentVolumeClaimRetentionPolicy/whenDeleted", json!("Keep")), &[
            "spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: \"Keep\": supported values: \"Retain\", \"Delete\"",
        ]),
        ("unordered update needs Parallel", |v| {
            set(v, "/spec/podManagementPolicy", json!("OrderedReady"));
            set(v, "/spec/updateStrategy/rollingUpdate/maxUnavailable", json!(1));
            set(v, "/spec/updateStrategy/rollingUpdate/unorderedUpdate", json!({"priorityStrategy": {"orderPriority": [{"orderedKey": "rank"}]}}));
        }, &[
            "spec.updateStrategy.rollingUpdate.unorderedUpdate: Invalid value: {\"priorityStrategy\":{\"orderPriority\":[{\"orderedKey\":\"rank\"}]}}: unorderedUpdate can only work with Parallel PodManagementPolicyType",
        ]),
    ];
    run_table::<v1beta1::StatefulSet>("advanced-statefulset.yaml", cases);
}

#[test]
fn uniteddeployment_invalid_inputs() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("duplicate and malformed subset names", |v| {
            set(v, "/spec/topology/subsets/1/name", json!("zone-a"));
            set(v, "/spec/topology/subsets/2/name", json!("Zone_C"));
        }, &[
            "spec.topology.subsets[1].name: Duplicate value: \"zone-a\"",
            "spec.topology.subsets[2].name: Invalid value: \"Zone_C\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ]),
        ("subset replicas sum over spec.replicas", |v| set(v, "/spec/topology/subsets/0/replicas", json!(8)), &[
            "spec.topology.subsets: Invalid value: 13: sum of indicated subset replicas 13 should not be greater than UnitedDeployment replicas 10",
        ]),
        ("percentages over 100%", |v| {
            set(v, "/spec/topology/subsets/0/replicas", json!("60%"));
            set(v, "/spec/topology/subsets/2/replicas", json!("50%"));
        }, &[
            "spec.topology.subsets: Invalid value: \"160%\": sum of subset replicas percentages should not be greater than 100%",
            "spec.topology.subsets: Invalid value: 16: sum of indicated subset replicas 16 should not be greater than UnitedDeployment replicas 10",
        ]),
        ("all subsets fixed but short of replicas", |v| set(v, "/spec/topology/subsets/2/replicas", json!(1)), &[
            "spec.topology.subsets: Invalid value: 8: if replicas of all subsets are provided, the sum of indicated subset replicas 8 should equal UnitedDeployment replicas 10",
        ]),
        ("replicas mixed with min/max", |v| set(v, "/spec/topology/subsets/2/maxReplicas", json!(4)), &[
            "spec.topology.subsets: Invalid value: \"\": subset.Replicas and subset.MinReplicas/subset.MaxReplicas are mutually exclusive in a UnitedDeployment",
        ]),
        ("no template and unknown update type", |v| {
            set(v, "/spec/template", json!({}));
            set(v, "/spec/updateStrategy/type", json!("Auto"));
        }, &[
            "spec.template: Required value: must provide one of statefulSetTemplate, advancedStatefulSetTemplate, cloneSetTemplate or deploymentTemplate",
            "spec.updateStrategy.type: Unsupported value: \"Auto\": supported values: \"Manual\"",
        ]),
        ("clusters with clusterSelector, and a subset without either", |v| {
            set(v, "/spec/topology/subsets/0/clusters", json!(["member-a", "member-a"]));
            set(v, "/spec/topology/subsets/0/clusterSelector", json!({"matchLabels": {"env": "prod"}}));
        }, &[
            "spec.topology.subsets[0].clusterSelector: Forbidden: may not be set together with clusters",
            "spec.topology.subsets[0].clusters[1]: Duplicate value: \"member-a\"",
            "spec.topology.subsets[1]: Required value: every subset must set clusters or clusterSelector when any subset does",
            "spec.topology.subsets[2]: Required value: every subset must set clusters or clusterSelector when any subset does",
        ]),
        ("template labels do not match the selector", |v| set(v, "/spec/template/cloneSetTemplate/metadata/labels/app", json!("other")), &[
            "spec.template.cloneSetTemplate.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`",
        ]),
    ];
    run_table::<apps::UnitedDeployment>("uniteddeployment.yaml", cases);
}

#[test]
fn federated_uniteddeployment_wave_rules() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("waves with partitions, bad deadline, unknown order entry", |v| {
            set(v, "/spec/updateStrategy/manualUpdate", json!({"partitions": {"subset-r1": 2}}));
            set(v, "/spec/updateStrategy/waves/progressDeadlineSeconds", json!(0));
            set(v, "/spec/updateStrategy/waves/order/0", json!("subset-r9"));
        }, &[
            "spec.updateStrategy.waves: Forbidden: waves and manualUpdate.partitions are mutually exclusive",
            "spec.updateStrategy.waves.order[0]: Not found: \"subset-r9\"",
            "spec.updateStrategy.waves.progressDeadlineSeconds: Invalid value: 0: must be greater than 0",
        ]),
        ("unknown wave unit and a bad cluster name", |v| {
            set(v, "/spec/updateStrategy/waves/unit", json!("Region"));
            set(v, "/spec/topology/subsets/1/clusters/0", json!("Member_R2"));
        }, &[
            "spec.topology.subsets[1].clusters[0]: Invalid value: \"Member_R2\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            "spec.updateStrategy.waves.unit: Unsupported value: \"Region\": supported values: \"Subset\", \"Cluster\"",
        ]),
    ];
    run_table::<apps::UnitedDeployment>("federated-uniteddeployment.yaml", cases);
}

#[test]
fn workloadspread_invalid_inputs() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("no subsets", |v| set(v, "/spec/subsets", json!([])), &[
            "spec.subsets: Required value: subsets number must >= 1 in WorkloadSpread",
        ]),
        ("duplicate subset names", |v| set(v, "/spec/subsets/1/name", json!("on-demand")), &[
            "spec.subsets[1].name: Duplicate value: \"on-demand\"",
        ]),
        ("mixed maxReplicas types and adaptive last subset limit", |v| set(v, "/spec/subsets/1/maxReplicas", json!("50%")), &[
            "spec.subsets[1].maxReplicas: Invalid value: \"50%\": the maxReplicas type of all subsets must be the same",
            "spec.subsets[1].maxReplicas: Invalid value: \"50%\": the last subset must not set maxReplicas with Adaptive scheduling",
        ]),
        ("unsupported target kind and missing name", |v| {
            set(v, "/spec/targetRef", json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "name": ""}));
        }, &[
            "spec.targetRef.name: Required value",
            "spec.targetRef: Invalid value: {\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"name\":\"\"}: TargetReference is not allowed",
        ]),
        ("percentages over 100% with fixed scheduling", |v| {
            set(v, "/spec/scheduleStrategy", json!({"type": "Fixed"}));
            set(v, "/spec/subsets/0/maxReplicas", json!("70%"));
            set(v, "/spec/subsets/1/maxReplicas", json!("40%"));
        }, &[
            "spec.subsets: Invalid value: \"110%\": maxReplicas sum of all subsets exceeds 100%",
        ]),
        ("reschedule window too long and unknown type", |v| {
            set(v, "/spec/scheduleStrategy/adaptive/rescheduleCriticalSeconds", json!(400));
            set(v, "/spec/scheduleStrategy/type", json!("Random"));
        }, &[
            "spec.scheduleStrategy.type: Unsupported value: \"Random\": supported values: \"Adaptive\", \"Fixed\"",
            "spec.scheduleStrategy.adaptive: Forbidden: adaptive is only allowed when type is Adaptive",
            "spec.scheduleStrategy.adaptive.rescheduleCriticalSeconds: Invalid value: 400: rescheduleCriticalSeconds must be in the range 0-295",
        ]),
        ("clusterSelector on one subset only", |v| set(v, "/spec/subsets/0/clusterSelector", json!({"matchLabels": {"topology.kubernetes.io/region": "r1"}})), &[
            "spec.subsets[1]: Required value: every subset must set clusters or clusterSelector when any subset does",
        ]),
    ];
    run_table::<apps::WorkloadSpread>("workloadspread.yaml", cases);
}

#[test]
fn sidecarset_invalid_inputs() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("no selector", |v| remove(v, "/spec/selector"), &[
            "spec.selector: Required value: no selector defined for SidecarSet",
        ]),
        ("no containers at all", |v| remove(v, "/spec/containers"), &[
            "spec.containers: Required value: no initContainer or container defined for SidecarSet",
        ]),
        ("hot upgrade without empty image, bad share policy", |v| {
            set(v, "/spec/containers/0/upgradeStrategy/upgradeType", json!("HotUpgrade"));
            set(v, "/spec/containers/0/shareVolumePolicy/type", json!("Enabled"));
        }, &[
            "spec.containers[0].upgradeStrategy.hotUpgradeEmptyImage: Required value: hotUpgradeEmptyImage must be set when upgradeType is HotUpgrade",
            "spec.containers[0].shareVolumePolicy.type: Unsupported value: \"Enabled\": supported values: \"enabled\", \"disabled\"",
        ]),
        ("partition with selector, zero maxUnavailable", |v| {
            set(v, "/spec/updateStrategy/partition", json!(2));
            set(v, "/spec/updateStrategy/selector", json!({"matchLabels": {"canary": "true"}}));
            set(v, "/spec/updateStrategy/maxUnavailable", json!(0));
        }, &[
            "spec.updateStrategy.selector: Invalid value: {\"matchLabels\":{\"canary\":\"true\"}}: Partition and Selector cannot be used together",
            "spec.updateStrategy.maxUnavailable: Invalid value: 0: must be greater than 0",
        ]),
        ("native sidecar with rolling update and duplicate name", |v| {
            set(v, "/spec/initContainers", json!([{"name": "shipper", "image": "busybox:1.36", "restartPolicy": "Always"}]));
        }, &[
            "spec.initContainers[0].restartPolicy: Invalid value: \"Always\": The initContainer in-place upgrade is not currently supported.",
            "spec.containers[0].name: Duplicate value: \"shipper\"",
        ]),
        ("name with a dot and unknown update type", |v| {
            set(v, "/metadata/name", json!("log.shipper"));
            set(v, "/spec/updateStrategy/type", json!("Always"));
        }, &[
            "metadata.name: Invalid value: \"log.shipper\": must match ^[a-zA-Z0-9\\-]+$",
            "spec.updateStrategy.type: Unsupported value: \"Always\": supported values: \"RollingUpdate\", \"NotUpdate\"",
        ]),
        ("empty patch annotations and unknown patch policy", |v| set(v, "/spec/patchPodMetadata", json!([{"patchPolicy": "Replace"}])), &[
            "spec.patchPodMetadata[0].annotations: Required value: annotations can not be empty",
            "spec.patchPodMetadata[0].patchPolicy: Unsupported value: \"Replace\": supported values: \"Retain\", \"Overwrite\", \"MergePatchJson\"",
        ]),
        ("resourcesPolicy together with resources, without expressions, bad mode", |v| {
            set(v, "/spec/containers/0/resources", json!({"limits": {"cpu": "100m"}}));
            set(v, "/spec/containers/0/resourcesPolicy", json!({"targetContainersMode": "avg", "resourcesExpr": {}}));
        }, &[
            "spec.containers[0].resourcesPolicy: Forbidden: resourcesPolicy cannot be used together with resources",
            "spec.containers[0].resourcesPolicy.targetContainersMode: Unsupported value: \"avg\": supported values: \"sum\", \"max\"",
            "spec.containers[0].resourcesPolicy.resourcesExpr: Required value: at least one of limits and requests is required",
        ]),
    ];
    run_table::<apps::SidecarSet>("sidecarset.yaml", cases);
}

#[test]
fn podunavailablebudget_invalid_inputs() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("neither selector nor targetRef", |v| remove(v, "/spec/targetRef"), &[
            "spec.selector: Invalid value: null: no selector or targetRef defined in PodUnavailableBudget",
        ]),
        ("both selector and targetRef", |v| set(v, "/spec/selector", json!({"matchLabels": {"app": "web"}})), &[
            "spec.targetRef: Invalid value: {\"apiVersion\":\"apps.kruise.io/v1alpha1\",\"kind\":\"CloneSet\",\"name\":\"web\"}: selector and targetRef are mutually exclusive",
        ]),
        ("both budgets", |v| set(v, "/spec/maxUnavailable", json!(1)), &[
            "spec.minAvailable: Invalid value: \"75%\": maxUnavailable and minAvailable are mutually exclusive",
        ]),
        ("no budget", |v| remove(v, "/spec/minAvailable"), &[
            "spec.maxUnavailable: Invalid value: null: no maxUnavailable or minAvailable defined in PodUnavailableBudget",
        ]),
        ("empty selector", |v| {
            remove(v, "/spec/targetRef");
            set(v, "/spec/selector", json!({}));
        }, &[
            "spec.selector: Invalid value: {}: empty selector is not valid for PodUnavailableBudget.",
        ]),
        ("bad percentage and unknown protected operation", |v| {
            set(v, "/spec/minAvailable", json!("150%"));
            set(v, "/metadata/annotations/kruise.io~1pub-protect-operations", json!("DELETE,PATCH"));
        }, &[
            "spec.minAvailable: Invalid value: \"150%\": must not be greater than 100%",
            "metadata.annotations[kruise.io/pub-protect-operations]: Unsupported value: \"PATCH\": supported values: \"DELETE\", \"UPDATE\", \"EVICT\", \"RESIZE\"",
        ]),
        ("targetRef without name", |v| set(v, "/spec/targetRef/name", json!("")), &[
            "spec.targetRef.name: Required value",
        ]),
    ];
    run_table::<policy::PodUnavailableBudget>("podunavailablebudget.yaml", cases);
}
