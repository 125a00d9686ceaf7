//! Defaulting assigns the concrete values of spec section 19.

mod support;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kruise_api::apps::{v1alpha1 as apps, v1beta1};
use kruise_api::defaults::{default_crr_grace_period, default_nodeimage_created_at};
use kruise_api::Defaulted;
use serde::de::DeserializeOwned;

fn defaulted<T: DeserializeOwned + Defaulted>(yaml: &str) -> T {
    let mut obj: T = serde_yaml::from_str(yaml).expect("parses");
    obj.apply_defaults();
    obj
}

const POD: &str = r#"
    metadata:
      labels: {app: x}
    spec:
      containers:
      - name: app
        image: example.com/app:1.0
        ports: [{containerPort: 80}]
        readinessProbe: {httpGet: {port: 80}}
"#;

fn with_pod(head: &str, tail: &str) -> String {
    format!("{head}\n  template:{POD}{tail}")
}

#[test]
fn cloneset_defaults_match_section_19() {
    let cs: apps::CloneSet = defaulted(&with_pod(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: CloneSet\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {app: x}}",
        "",
    ));
    assert_eq!(cs.spec.replicas, Some(1));
    assert_eq!(cs.spec.revision_history_limit, Some(10));
    let s = cs.spec.update_strategy.expect("updateStrategy");
    assert_eq!(s.type_.as_deref(), Some("ReCreate"));
    assert_eq!(s.partition, Some(IntOrString::Int(0)));
    assert_eq!(s.max_unavailable, Some(IntOrString::String("20%".into())));
    assert_eq!(s.max_surge, Some(IntOrString::Int(0)));
    assert_eq!(
        s.in_place_update_strategy, None,
        "only in-place types get inPlaceUpdateStrategy"
    );
    let pod = cs.spec.template.spec.expect("pod spec");
    assert_eq!(pod.restart_policy.as_deref(), Some("Always"));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(pod.scheduler_name.as_deref(), Some("default-scheduler"));
    assert_eq!(pod.termination_grace_period_seconds, Some(30));
    let c = &pod.containers[0];
    assert_eq!(
        c.image_pull_policy.as_deref(),
        Some("Always"),
        "Kruise pulls always, unlike upstream IfNotPresent"
    );
    assert_eq!(
        c.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    assert_eq!(
        c.ports
            .as_ref()
            .and_then(|p| p[0].protocol.clone())
            .as_deref(),
        Some("TCP")
    );
    let probe = c.readiness_probe.as_ref().expect("probe");
    assert_eq!(
        (
            probe.timeout_seconds,
            probe.period_seconds,
            probe.failure_threshold
        ),
        (Some(1), Some(10), Some(3))
    );
}

#[test]
fn cloneset_in_place_types_get_an_empty_in_place_strategy_and_keep_explicit_values() {
    let cs: apps::CloneSet = defaulted(&with_pod(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: CloneSet\nmetadata: {name: a}\nspec:\n  replicas: 0\n  selector: {matchLabels: {app: x}}\n  updateStrategy: {type: InPlaceOnly, maxUnavailable: 3}",
        "",
    ));
    assert_eq!(cs.spec.replicas, Some(0));
    let s = cs.spec.update_strategy.expect("updateStrategy");
    assert_eq!(s.in_place_update_strategy, Some(Default::default()));
    assert_eq!(s.max_unavailable, Some(IntOrString::Int(3)));
}

#[test]
fn advanced_statefulset_defaults_match_section_19() {
    let sts: v1beta1::StatefulSet = defaulted(&with_pod(
        "apiVersion: apps.kruise.io/v1beta1\nkind: StatefulSet\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {app: x}}",
        "",
    ));
    assert_eq!(sts.spec.replicas, Some(1));
    assert_eq!(sts.spec.revision_history_limit, Some(10));
    assert_eq!(
        sts.spec.pod_management_policy.as_deref(),
        Some("OrderedReady")
    );
    let s = sts.spec.update_strategy.expect("updateStrategy");
    assert_eq!(s.type_.as_deref(), Some("RollingUpdate"));
    let ru = s.rolling_update.expect("rollingUpdate");
    assert_eq!(ru.partition, Some(0));
    assert_eq!(ru.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(ru.pod_update_policy.as_deref(), Some("ReCreate"));
    assert_eq!(ru.min_ready_seconds, Some(0));
    let retention = sts
        .spec
        .persistent_volume_claim_retention_policy
        .expect("retention");
    assert_eq!(
        (
            retention.when_deleted.as_deref(),
            retention.when_scaled.as_deref()
        ),
        (Some("Retain"), Some("Retain"))
    );

    let on_delete: v1beta1::StatefulSet = defaulted(&with_pod(
        "apiVersion: apps.kruise.io/v1beta1\nkind: StatefulSet\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {app: x}}\n  updateStrategy: {type: OnDelete}",
        "",
    ));
    assert_eq!(
        on_delete
            .spec
            .update_strategy
            .and_then(|s| s.rolling_update),
        None
    );
}

#[test]
fn daemonset_defaults_and_surging_rewrite() {
    let ds: apps::DaemonSet = defaulted(&with_pod(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: DaemonSet\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {app: x}}",
        "",
    ));
    assert_eq!(ds.spec.burst_replicas, Some(IntOrString::Int(250)));
    assert_eq!(ds.spec.revision_history_limit, Some(10));
    let s = ds.spec.update_strategy.expect("updateStrategy");
    assert_eq!(s.type_.as_deref(), Some("RollingUpdate"));
    let ru = s.rolling_update.expect("rollingUpdate");
    assert_eq!(ru.type_.as_deref(), Some("Standard"));
    assert_eq!(
        (ru.max_unavailable, ru.max_surge),
        (Some(IntOrString::Int(1)), Some(IntOrString::Int(0)))
    );
    let pod = ds.spec.template.spec.expect("pod spec");
    assert_eq!(
        pod.containers[0].image_pull_policy, None,
        "the DaemonSet template is stored as written"
    );

    let surging: apps::DaemonSet = defaulted(&with_pod(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: DaemonSet\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {app: x}}\n  updateStrategy: {rollingUpdate: {rollingUpdateType: Surging}}",
        "",
    ));
    let ru = surging
        .spec
        .update_strategy
        .and_then(|s| s.rolling_update)
        .expect("rollingUpdate");
    assert_eq!(ru.type_.as_deref(), Some("Standard"));
    assert_eq!(
        (ru.max_unavailable, ru.max_surge),
        (Some(IntOrString::Int(0)), Some(IntOrString::Int(1)))
    );
}

#[test]
fn job_defaults_match_section_19() {
    let bcj: apps::BroadcastJob = defaulted(&format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: BroadcastJob\nmetadata: {{name: a}}\nspec:\n  template:{POD}"
    ));
    assert_eq!(bcj.spec.parallelism, Some(IntOrString::Int(i32::MAX)));
    assert_eq!(bcj.spec.completion_policy.type_.as_deref(), Some("Always"));
    assert_eq!(
        bcj.spec.failure_policy.and_then(|f| f.type_).as_deref(),
        Some("FailFast")
    );

    let acj: apps::AdvancedCronJob = defaulted(&format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: AdvancedCronJob\nmetadata: {{name: a}}\nspec:\n  schedule: '*/5 * * * *'\n  template:\n    broadcastJobTemplate:\n      spec:\n        template:{}",
        POD.replace("\n    ", "\n            ")
    ));
    assert_eq!(acj.spec.concurrency_policy.as_deref(), Some("Allow"));
    assert_eq!(acj.spec.paused, Some(false));
    assert_eq!(acj.spec.successful_jobs_history_limit, Some(3));
    assert_eq!(acj.spec.failed_jobs_history_limit, Some(1));
    let inner = acj
        .spec
        .template
        .broadcast_job_template
        .and_then(|t| t.spec)
        .expect("bcj");
    assert_eq!(inner.completion_policy.type_.as_deref(), Some("Always"));
}

#[test]
fn sidecarset_defaults_match_section_19() {
    let ss: apps::SidecarSet = defaulted(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: SidecarSet\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {app: x}}\n  containers: [{name: s, image: 'busybox:1.36'}]\n  initContainers: [{name: i, image: busybox}]\n  patchPodMetadata: [{annotations: {a: b}}]\n  injectionStrategy: {revision: {revisionName: r1}}",
    );
    let s = ss.spec.update_strategy.expect("updateStrategy");
    assert_eq!(s.type_.as_deref(), Some("RollingUpdate"));
    assert_eq!(
        (s.max_unavailable, s.partition),
        (Some(IntOrString::Int(1)), Some(IntOrString::Int(0)))
    );
    assert_eq!(ss.spec.revision_history_limit, Some(10));
    let c = &ss.spec.containers.expect("containers")[0];
    assert_eq!(
        c.sidecar.pod_inject_policy.as_deref(),
        Some("BeforeAppContainer")
    );
    assert_eq!(
        c.sidecar
            .upgrade_strategy
            .as_ref()
            .and_then(|u| u.upgrade_type.as_deref()),
        Some("ColdUpgrade")
    );
    assert_eq!(
        c.sidecar
            .share_volume_policy
            .as_ref()
            .and_then(|p| p.type_.as_deref()),
        Some("disabled")
    );
    assert_eq!(
        c.container.image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );
    let i = &ss.spec.init_containers.expect("init")[0];
    assert_eq!(
        i.sidecar.pod_inject_policy.as_deref(),
        Some("AfterAppContainer")
    );
    assert_eq!(
        i.container.image_pull_policy.as_deref(),
        Some("Always"),
        "untagged image"
    );
    assert_eq!(
        ss.spec.patch_pod_metadata.expect("patch")[0]
            .patch_policy
            .as_deref(),
        Some("Retain")
    );
    let rev = ss
        .spec
        .injection_strategy
        .and_then(|i| i.revision)
        .expect("revision");
    assert_eq!(rev.policy.as_deref(), Some("Always"));
}

#[test]
fn uniteddeployment_defaults_match_section_19() {
    let base = "apiVersion: apps.kruise.io/v1alpha1\nkind: UnitedDeployment\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {app: x}}";
    let ud: apps::UnitedDeployment = defaulted(&format!("{base}\n  topology:\n    subsets: [{{name: a, minReplicas: 1}}, {{name: b, maxReplicas: 3}}]"));
    assert_eq!(ud.spec.replicas, Some(1));
    assert_eq!(ud.spec.revision_history_limit, Some(10));
    let s = ud.spec.update_strategy.expect("updateStrategy");
    assert_eq!(s.type_.as_deref(), Some("Manual"));
    assert_eq!(s.manual_update, Some(Default::default()));
    let schedule = ud
        .spec
        .topology
        .schedule_strategy
        .expect("scheduleStrategy");
    assert_eq!(schedule.type_.as_deref(), Some("Fixed"));
    assert_eq!(schedule.adaptive, None);
    let subsets = ud.spec.topology.subsets.expect("subsets");
    assert_eq!(subsets[0].min_replicas, Some(IntOrString::Int(1)));
    assert_eq!(subsets[1].min_replicas, Some(IntOrString::Int(0)));

    let adaptive: apps::UnitedDeployment = defaulted(&format!(
        "{base}\n  topology:\n    scheduleStrategy: {{type: Adaptive}}\n  updateStrategy:\n    waves: {{}}"
    ));
    let a = adaptive
        .spec
        .topology
        .schedule_strategy
        .and_then(|s| s.adaptive)
        .expect("adaptive");
    assert_eq!(
        (
            a.reschedule_critical_seconds,
            a.unschedulable_last_seconds,
            a.unschedulable_duration
        ),
        (Some(30), Some(300), None)
    );
    let waves = adaptive
        .spec
        .update_strategy
        .and_then(|s| s.waves)
        .expect("waves");
    assert_eq!(
        (waves.unit.as_deref(), waves.progress_deadline_seconds),
        (Some("Subset"), Some(600))
    );
}

#[test]
fn image_and_crr_defaults_match_section_19() {
    let ipj: apps::ImagePullJob = defaulted("apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata: {name: a}\nspec: {image: 'nginx:1'}");
    assert_eq!(
        ipj.spec.template.completion_policy.type_.as_deref(),
        Some("Always")
    );
    let pull = ipj.spec.template.pull_policy.expect("pullPolicy");
    assert_eq!(
        (pull.timeout_seconds, pull.backoff_limit),
        (Some(600), Some(3))
    );
    assert_eq!(
        ipj.spec.template.image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );

    let ilpj: apps::ImageListPullJob = defaulted("apiVersion: apps.kruise.io/v1alpha1\nkind: ImageListPullJob\nmetadata: {name: a}\nspec: {images: ['nginx:1']}");
    assert_eq!(
        ilpj.spec.template.image_pull_policy, None,
        "v1alpha1 list jobs leave imagePullPolicy empty"
    );
    assert_eq!(
        ilpj.spec
            .template
            .pull_policy
            .and_then(|p| p.timeout_seconds),
        Some(600)
    );

    let mut ni: apps::NodeImage = defaulted("apiVersion: apps.kruise.io/v1alpha1\nkind: NodeImage\nmetadata: {name: n}\nspec: {images: {nginx: {tags: [{tag: '1'}]}}}");
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).expect("time"));
    default_nodeimage_created_at(&mut ni, &now);
    let tag = &ni.spec.images.expect("images")["nginx"].tags[0];
    assert_eq!(
        tag.pull_policy.as_ref().and_then(|p| p.backoff_limit),
        Some(3)
    );
    assert_eq!(tag.created_at.as_ref(), Some(&now));

    let mut crr: apps::ContainerRecreateRequest = defaulted("apiVersion: apps.kruise.io/v1alpha1\nkind: ContainerRecreateRequest\nmetadata: {name: c}\nspec: {podName: p, containers: [{name: app}]}");
    default_crr_grace_period(&mut crr, Some(45));
    let strategy = crr.spec.strategy.expect("strategy");
    assert_eq!(strategy.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(strategy.termination_grace_period_seconds, Some(45));

    let ws: apps::WorkloadSpread = defaulted("apiVersion: apps.kruise.io/v1alpha1\nkind: WorkloadSpread\nmetadata: {name: w}\nspec: {targetRef: {apiVersion: apps/v1, kind: Deployment, name: d}, subsets: [{name: a}]}");
    assert_eq!(
        ws.spec.schedule_strategy.and_then(|s| s.type_).as_deref(),
        Some("Fixed")
    );
}

#[test]
fn empty_strings_count_as_unset_like_go_zero_values() {
    let cs: apps::CloneSet = defaulted(&with_pod(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: CloneSet\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {app: x}}\n  updateStrategy: {type: ''}",
        "",
    ));
    assert_eq!(
        cs.spec.update_strategy.and_then(|s| s.type_).as_deref(),
        Some("ReCreate")
    );
    let ws: apps::WorkloadSpread = defaulted("apiVersion: apps.kruise.io/v1alpha1\nkind: WorkloadSpread\nmetadata: {name: w}\nspec: {targetRef: {apiVersion: apps/v1, kind: Deployment, name: d}, subsets: [{name: a}], scheduleStrategy: {type: ''}}");
    assert_eq!(
        ws.spec.schedule_strategy.and_then(|s| s.type_).as_deref(),
        Some("Fixed")
    );
}
