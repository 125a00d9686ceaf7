//! Invalid-input tables for the kinds not covered by `invalid.rs`.

mod support;

use kruise_api::apps::v1alpha1 as apps;
use kruise_api::federation::v1alpha1 as federation;
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
fn daemonset_invalid_inputs() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("surge with in-place and a non-zero maxUnavailable", |v| set(v, "/spec/updateStrategy/rollingUpdate/maxSurge", json!(1)), &[
            "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero",
            "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: must be 0 when rollingUpdateType is InPlaceIfPossible",
        ]),
        ("both zero", |v| set(v, "/spec/updateStrategy/rollingUpdate/maxUnavailable", json!(0)), &[
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: cannot be 0 when maxSurge is 0",
        ]),
        ("unknown rolling type and inPlaceUpdate hook", |v| {
            set(v, "/spec/updateStrategy/rollingUpdate/rollingUpdateType", json!("Blue"));
            set(v, "/spec/lifecycle", json!({"inPlaceUpdate": {"labelsHandler": {"a": "b"}}}));
        }, &[
            "spec.lifecycle.inPlaceUpdate: Invalid value: {\"labelsHandler\":{\"a\":\"b\"}}: inPlaceUpdate hook has not supported yet",
            "spec.updateStrategy.rollingUpdate.rollingUpdateType: Unsupported value: \"Blue\": supported values: \"Standard\", \"InPlaceIfPossible\", \"Surging\"",
        ]),
        ("restartPolicy OnFailure and negative minReadySeconds", |v| {
            set(v, "/spec/template/spec/restartPolicy", json!("OnFailure"));
            set(v, "/spec/minReadySeconds", json!(-1));
        }, &[
            "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
            "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0",
        ]),
    ];
    run_table::<apps::DaemonSet>("advanced-daemonset.yaml", cases);
}

#[test]
fn broadcastjob_invalid_inputs() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("restartPolicy Always", |v| set(v, "/spec/template/spec/restartPolicy", json!("Always")), &[
            "spec.template.spec.restartPolicy: Invalid value: \"Always\": pod restartPolicy can only be Never or OnFailure",
        ]),
        ("Never completion with a deadline", |v| set(v, "/spec/completionPolicy/type", json!("Never")), &[
            "spec.completionPolicy.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds is only allowed with completionPolicy type Always",
            "spec.completionPolicy.ttlSecondsAfterFinished: Forbidden: ttlSecondsAfterFinished is only allowed with completionPolicy type Always",
        ]),
        ("reserved label, bad name, bad failure type", |v| {
            set(v, "/metadata/name", json!("warm.cache"));
            set(v, "/spec/template/metadata", json!({"labels": {"broadcastjob-name": "x"}}));
            set(v, "/spec/failurePolicy/type", json!("Retry"));
        }, &[
            "metadata.name: Invalid value: \"warm.cache\": must match ^[a-zA-Z0-9\\-]+$",
            "spec.template.metadata.labels[broadcastjob-name]: Forbidden: label broadcastjob-name is set by the BroadcastJob controller",
            "spec.failurePolicy.type: Unsupported value: \"Retry\": supported values: \"Continue\", \"FailFast\", \"Pause\"",
        ]),
    ];
    run_table::<apps::BroadcastJob>("broadcastjob.yaml", cases);
}

#[test]
fn advancedcronjob_invalid_inputs() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("six-field schedule", |v| set(v, "/spec/schedule", json!("0 0 3 * * *")), &[
            "spec.schedule: Invalid value: \"0 0 3 * * *\": expected exactly 5 fields, found 6",
        ]),
        ("two templates", |v| set(v, "/spec/template/jobTemplate", json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "busybox"}]}}}})), &[
            "spec.template: Invalid value: \"\": spec can have only one template, either JobTemplate or BroadcastJobTemplate",
        ]),
        ("no template, Local time zone, bad policy", |v| {
            set(v, "/spec/template", json!({}));
            set(v, "/spec/timeZone", json!("Local"));
            set(v, "/spec/concurrencyPolicy", json!("Queue"));
        }, &[
            "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            "spec.concurrencyPolicy: Unsupported value: \"Queue\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
            "spec.template: Required value: spec must have one template, either JobTemplate or BroadcastJobTemplate",
        ]),
    ];
    run_table::<apps::AdvancedCronJob>("advancedcronjob.yaml", cases);
}

#[test]
fn image_pull_invalid_inputs() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("percentage parallelism, selector with podSelector", |v| {
            set(v, "/spec/parallelism", json!("50%"));
            set(v, "/spec/selector", json!({"names": ["node-1"]}));
        }, &[
            "spec.podSelector: Forbidden: can not set both selector and podSelector",
            "spec.parallelism: Invalid value: \"50%\": parallelism must be an integer",
        ]),
        ("deadline not above the pull timeout, empty image", |v| {
            set(v, "/spec/completionPolicy/activeDeadlineSeconds", json!(300));
            set(v, "/spec/image", json!(""));
        }, &[
            "spec.image: Required value: image can not be empty",
            "spec.completionPolicy.activeDeadlineSeconds: Invalid value: 300: activeDeadlineSeconds must be greater than pullPolicy.timeoutSeconds",
        ]),
    ];
    run_table::<apps::ImagePullJob>("imagepulljob.yaml", cases);
    let list_cases: &[(&str, Edit, &[&str])] = &[
        ("duplicate and malformed images", |v| set(v, "/spec/images", json!(["nginx:1", "nginx:1", "Bad Image"])), &[
            "spec.images[2]: Invalid value: \"Bad Image\": invalid image reference format",
            "spec.images[1]: Duplicate value: \"nginx:1\"",
        ]),
        ("names with a label selector", |v| set(v, "/spec/selector/names", json!(["n1"])), &[
            "spec.selector: Forbidden: can not set both names and labelSelector in this spec.selector",
        ]),
    ];
    run_table::<apps::ImageListPullJob>("imagelistpulljob.yaml", list_cases);
}

#[test]
fn containerrecreaterequest_and_nodeimage_invalid_inputs() {
    let cases: &[(&str, Edit, &[&str])] = &[
        ("duplicate container, read-only fields, short deadline", |v| {
            set(v, "/spec/containers/1", json!({"name": "nginx", "statusContext": {"containerID": "c", "restartCount": 0}}));
            set(v, "/spec/activeDeadlineSeconds", json!(2));
        }, &[
            "spec.containers[1].name: Invalid value: \"nginx\": can not recreate nginx multi times",
            "spec.containers[1]: Forbidden: preStop, ports, statusContext in container are ready-only fields",
            "spec.activeDeadlineSeconds: Invalid value: 2: activeDeadlineSeconds can not be less than 3s",
        ]),
        ("no pod, no containers", |v| {
            set(v, "/spec/podName", json!(""));
            set(v, "/spec/containers", json!([]));
        }, &[
            "spec.podName: Required value: podName can not be empty",
            "spec.containers: Required value: containers list can not be null",
        ]),
    ];
    run_table::<apps::ContainerRecreateRequest>("containerrecreaterequest.yaml", cases);
    let node_cases: &[(&str, Edit, &[&str])] = &[(
        "duplicate tags",
        |v| {
            set(
                v,
                "/spec/images/nginx/tags",
                json!([{"tag": "1.25.4"}, {"tag": "1.25.4"}]),
            )
        },
        &["spec.images[nginx].tags[1]: Duplicate value: \"1.25.4\""],
    )];
    run_table::<apps::NodeImage>("nodeimage.yaml", node_cases);
}

#[test]
fn federation_invalid_inputs() {
    let work_cases: &[(&str, Edit, &[&str])] = &[
        ("no cluster, workload without kind or name", |v| {
            set(v, "/spec/cluster", json!(""));
            remove(v, "/spec/workload/kind");
            remove(v, "/spec/workload/metadata/name");
        }, &[
            "spec.cluster: Required value",
            "spec.workload.kind: Required value",
            "spec.workload.metadata.name: Required value",
        ]),
        ("unknown propagation policy", |v| set(v, "/spec/deleteOption/propagationPolicy", json!("Later")), &[
            "spec.deleteOption.propagationPolicy: Unsupported value: \"Later\": supported values: \"Foreground\", \"Background\", \"Orphan\"",
        ]),
    ];
    run_table::<federation::Work>("work.yaml", work_cases);
    let cluster_cases: &[(&str, Edit, &[&str])] = &[
        ("bad taint and name", |v| {
            set(v, "/metadata/name", json!("Member_R1"));
            set(v, "/spec/taints/0/effect", json!("Evict"));
        }, &[
            "metadata.name: Invalid value: \"Member_R1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            "spec.taints[0].effect: Unsupported value: \"Evict\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
        ]),
    ];
    run_table::<federation::ManagedCluster>("managedcluster.yaml", cluster_cases);
}

#[test]
fn round_trip_check_reports_dropped_and_changed_fields() {
    let input = json!({"spec": {"replicas": 3, "unknownField": true, "list": [1, 2]}});
    let output = json!({"spec": {"replicas": 4, "list": [1, 2], "extra": 1}});
    let mut lost = Vec::new();
    support::missing_fields(&input, &output, "", &mut lost);
    assert_eq!(
        lost,
        [".spec.replicas: 3 became 4", ".spec.unknownField dropped"]
    );
}
