//! Every example (and both seed manifests) parses, defaults, validates clean and keeps every field.

mod support;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kruise_api::apps::{v1alpha1 as apps, v1beta1};
use kruise_api::federation::v1alpha1 as federation;
use kruise_api::policy::v1alpha1 as policy;
use support::check_example;

#[test]
fn seed_cloneset_parses_with_seed_values_and_defaults() {
    let cs: apps::CloneSet = check_example("seed-cloneset.yaml");
    assert_eq!(cs.metadata.name.as_deref(), Some("demo-clone"));
    assert_eq!(cs.spec.replicas, Some(5));
    let strategy = cs.spec.update_strategy.as_ref().expect("updateStrategy");
    assert_eq!(strategy.type_.as_deref(), Some("InPlaceIfPossible"));
    assert_eq!(
        strategy.max_unavailable,
        Some(IntOrString::String("20%".into()))
    );
    assert_eq!(strategy.partition, Some(IntOrString::Int(0)));
    assert_eq!(strategy.max_surge, Some(IntOrString::Int(0)));
    assert_eq!(
        strategy
            .in_place_update_strategy
            .as_ref()
            .and_then(|s| s.grace_period_seconds),
        Some(3)
    );
    let container = &cs.spec.template.spec.as_ref().expect("pod spec").containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.cn-hangzhou.aliyuncs.com/kruise-test/guestbook:v1")
    );
    assert_eq!(container.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(
        container.env.as_ref().map(|e| e[0].value.clone()),
        Some(Some("foo".into()))
    );
}

#[test]
fn seed_statefulset_parses_as_v1alpha1_and_converts_to_v1beta1() {
    let sts: apps::StatefulSet = check_example("seed-statefulset.yaml");
    assert_eq!(sts.metadata.name.as_deref(), Some("demo-asts"));
    assert_eq!(sts.spec.replicas, Some(3));
    assert_eq!(sts.spec.pod_management_policy.as_deref(), Some("Parallel"));
    let ru = sts
        .spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .expect("rollingUpdate");
    assert_eq!(ru.pod_update_policy.as_deref(), Some("InPlaceIfPossible"));
    assert_eq!(ru.max_unavailable, Some(IntOrString::String("20%".into())));
    assert_eq!(ru.partition, Some(0));
    let beta = sts.clone().into_v1beta1();
    assert_eq!(beta.spec.template, sts.spec.template);
    assert_eq!(beta.spec.update_strategy, sts.spec.update_strategy);
}

#[test]
fn cloneset_example_round_trips() {
    let cs: apps::CloneSet = check_example("cloneset.yaml");
    assert_eq!(
        cs.spec.update_strategy.and_then(|s| s.partition),
        Some(IntOrString::Int(2))
    );
    assert_eq!(cs.spec.volume_claim_templates.map(|v| v.len()), Some(1));
}

#[test]
fn advanced_statefulset_example_round_trips() {
    let sts: v1beta1::StatefulSet = check_example("advanced-statefulset.yaml");
    assert_eq!(sts.spec.reserve_ordinals, Some(vec![IntOrString::Int(1)]));
    let retention = sts
        .spec
        .persistent_volume_claim_retention_policy
        .expect("retention");
    assert_eq!(retention.when_scaled.as_deref(), Some("Delete"));
}

#[test]
fn advanced_daemonset_example_round_trips() {
    let ds: apps::DaemonSet = check_example("advanced-daemonset.yaml");
    assert_eq!(ds.spec.burst_replicas, Some(IntOrString::Int(250)));
    assert_eq!(ds.spec.revision_history_limit, Some(10));
}

#[test]
fn broadcastjob_example_round_trips() {
    let job: apps::BroadcastJob = check_example("broadcastjob.yaml");
    assert_eq!(
        job.spec.failure_policy.and_then(|f| f.type_).as_deref(),
        Some("Continue")
    );
    assert_eq!(
        job.spec.completion_policy.active_deadline_seconds,
        Some(1800)
    );
}

#[test]
fn advancedcronjob_example_round_trips() {
    let acj: apps::AdvancedCronJob = check_example("advancedcronjob.yaml");
    assert_eq!(acj.spec.failed_jobs_history_limit, Some(1));
    assert_eq!(acj.spec.successful_jobs_history_limit, Some(2));
    let bj = acj
        .spec
        .template
        .broadcast_job_template
        .and_then(|t| t.spec)
        .expect("bcj template");
    assert_eq!(
        bj.failure_policy.and_then(|f| f.type_).as_deref(),
        Some("FailFast")
    );
}

#[test]
fn sidecarset_example_round_trips() {
    let ss: apps::SidecarSet = check_example("sidecarset.yaml");
    let c = &ss.spec.containers.as_ref().expect("containers")[0];
    assert_eq!(
        c.sidecar.pod_inject_policy.as_deref(),
        Some("AfterAppContainer")
    );
    assert_eq!(
        c.container.image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );
    assert_eq!(
        c.container
            .volume_mounts
            .as_ref()
            .map(|m| m[0].mount_path.clone())
            .as_deref(),
        Some("/fluent-bit/etc")
    );
}

#[test]
fn uniteddeployment_example_round_trips() {
    let ud: apps::UnitedDeployment = check_example("uniteddeployment.yaml");
    let subsets = ud.spec.topology.subsets.expect("subsets");
    assert_eq!(subsets[1].replicas, Some(IntOrString::String("50%".into())));
    assert_eq!(
        subsets[1]
            .patch
            .as_ref()
            .and_then(|p| p.pointer("/metadata/labels/zone"))
            .and_then(|v| v.as_str()),
        Some("b")
    );
}

#[test]
fn workloadspread_example_round_trips() {
    let ws: apps::WorkloadSpread = check_example("workloadspread.yaml");
    assert_eq!(ws.spec.target_ref.kind, "CloneSet");
    assert_eq!(ws.spec.subsets[0].max_replicas, Some(IntOrString::Int(3)));
}

#[test]
fn imagepulljob_example_round_trips() {
    let job: apps::ImagePullJob = check_example("imagepulljob.yaml");
    assert_eq!(job.spec.image, "nginx:1.25.4");
    assert_eq!(
        job.spec
            .template
            .pull_policy
            .and_then(|p| p.timeout_seconds),
        Some(300)
    );
}

#[test]
fn imagelistpulljob_example_round_trips() {
    let job: apps::ImageListPullJob = check_example("imagelistpulljob.yaml");
    assert_eq!(job.spec.images.len(), 2);
    assert_eq!(
        job.spec.template.pull_policy.and_then(|p| p.backoff_limit),
        Some(3)
    );
}

#[test]
fn nodeimage_example_round_trips() {
    let ni: apps::NodeImage = check_example("nodeimage.yaml");
    let tags = &ni.spec.images.as_ref().expect("images")["nginx"].tags;
    assert_eq!(tags[0].tag, "1.25.4");
    assert_eq!(tags[0].version, Some(1));
}

#[test]
fn containerrecreaterequest_example_round_trips() {
    let crr: apps::ContainerRecreateRequest = check_example("containerrecreaterequest.yaml");
    assert_eq!(crr.spec.containers.len(), 2);
    assert_eq!(
        crr.spec.strategy.and_then(|s| s.ordered_recreate),
        Some(true)
    );
}

#[test]
fn podunavailablebudget_example_round_trips() {
    let pub_: policy::PodUnavailableBudget = check_example("podunavailablebudget.yaml");
    assert_eq!(
        pub_.spec.min_available,
        Some(IntOrString::String("75%".into()))
    );
    assert_eq!(
        pub_.spec.target_ref.and_then(|t| t.name).as_deref(),
        Some("web")
    );
}

#[test]
fn managedcluster_example_round_trips() {
    let mc: federation::ManagedCluster = check_example("managedcluster.yaml");
    let labels = mc.metadata.labels.expect("labels");
    assert_eq!(
        labels
            .get("topology.kubernetes.io/region")
            .map(String::as_str),
        Some("r1")
    );
    assert_eq!(
        mc.spec.taints.expect("taints")[0].effect,
        "PreferNoSchedule"
    );
}

#[test]
fn work_example_keeps_the_workload_manifest_verbatim() {
    let work: federation::Work = check_example("work.yaml");
    assert_eq!(work.spec.cluster, "member-r1");
    let original = support::example_value("work.yaml");
    assert_eq!(
        Some(&work.spec.workload),
        original.pointer("/spec/workload")
    );
}

#[test]
fn federated_uniteddeployment_example_has_cluster_subsets_and_waves() {
    let ud: apps::UnitedDeployment = check_example("federated-uniteddeployment.yaml");
    assert_eq!(ud.spec.replicas, Some(10));
    let subsets = ud.spec.topology.subsets.expect("subsets");
    let clusters: Vec<_> = subsets
        .iter()
        .map(|s| s.clusters.clone().unwrap_or_default().join(","))
        .collect();
    assert_eq!(clusters, ["member-r1", "member-r2", "member-r3"]);
    assert_eq!(subsets[2].replicas, None);
    let waves = ud
        .spec
        .update_strategy
        .and_then(|s| s.waves)
        .expect("waves");
    assert_eq!(waves.progress_deadline_seconds, Some(600));
    assert_eq!(waves.unit.as_deref(), Some("Subset"));
}
