use super::*;
use kruise_api::apps::v1alpha1::imagepulljob::ImagePullJobSpec;
use kruise_api::apps::v1alpha1::nodeimage::{ImageStatus, ImageTagStatus, NodeImageStatus};
use serde_json::json;

fn job(extra: serde_json::Value) -> ImagePullJob {
    let mut spec = json!({"image": "example.com/big:1.0"});
    if let (Some(m), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    let spec: ImagePullJobSpec = serde_json::from_value(spec).unwrap();
    let mut j = ImagePullJob::new("warm", spec);
    j.metadata.namespace = Some("default".into());
    j.metadata.uid = Some("job-uid".into());
    j
}

fn node(name: &str, labels: &[(&str, &str)]) -> Node {
    let mut n = Node::default();
    n.metadata.name = Some(name.into());
    n.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    n
}

fn pod(name: &str, node: &str, app: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}}, "spec": {"nodeName": node, "containers": []}})).unwrap()
}

fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

#[test]
fn split_image_normalizes_like_upstream() {
    let cases = [
        ("example.com/big:1.0", Some(("example.com/big", "1.0"))),
        ("nginx", Some(("docker.io/library/nginx", "latest"))),
        (
            "library/nginx:1.25",
            Some(("docker.io/library/nginx", "1.25")),
        ),
        ("localhost:5000/app", Some(("localhost:5000/app", "latest"))),
        ("localhost:5000/app:v2", Some(("localhost:5000/app", "v2"))),
        (
            "example.com/app@sha256:abcd",
            Some(("example.com/app", "sha256:abcd")),
        ),
        ("", None),
        ("bad image", None),
        ("Example.com/App:1", None),
    ];
    for (input, want) in cases {
        let got = split_image(input).map(|r| (r.name, r.tag));
        let want = want.map(|(n, t)| (n.to_string(), t.to_string()));
        assert_eq!(got, want, "{input}");
    }
}

#[test]
fn targets_by_label_names_and_pods() {
    let nodes = [
        node("n1", &[("pull", "yes")]),
        node("n2", &[]),
        node("n3", &[("pull", "yes")]),
    ];
    let nrefs: Vec<&Node> = nodes.iter().collect();
    let pods = [pod("p1", "n2", "web"), pod("p2", "n3", "db")];
    let prefs: Vec<&Pod> = pods.iter().collect();
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let cases = [
        (json!({}), set(&["n1", "n2", "n3"])),
        (
            json!({"selector": {"matchLabels": {"pull": "yes"}}}),
            set(&["n1", "n3"]),
        ),
        (json!({"selector": {"names": ["n2", "gone"]}}), set(&["n2"])),
        (
            json!({"podSelector": {"matchLabels": {"app": "web"}}}),
            set(&["n2"]),
        ),
    ];
    for (extra, want) in cases {
        let j = job(extra.clone());
        assert_eq!(
            target_nodes(&j.spec.template, &nrefs, &prefs),
            want,
            "{extra}"
        );
    }
}

fn ni_with(tag: Option<(i64, &str)>, status: Option<(i64, &str)>) -> NodeImage {
    let mut ni = NodeImage::new("n1", NodeImageSpec::default());
    let image = split_image("example.com/big:1.0").unwrap();
    if let Some((version, owner)) = tag {
        ni.spec.images = Some(
            [(
                image.name.clone(),
                ImageSpec {
                    tags: vec![ImageTagSpec {
                        tag: "1.0".into(),
                        version: Some(version),
                        owner_references: Some(vec![ObjectReference {
                            uid: Some(owner.into()),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )]
            .into(),
        );
    }
    if let Some((version, phase)) = status {
        ni.status = Some(NodeImageStatus {
            image_statuses: Some(
                [(
                    image.name,
                    ImageStatus {
                        tags: vec![ImageTagStatus {
                            tag: "1.0".into(),
                            phase: phase.into(),
                            version: Some(version),
                            ..Default::default()
                        }],
                    },
                )]
                .into(),
            ),
            ..Default::default()
        });
    }
    ni
}

#[test]
fn progress_reads_the_owned_entry_and_same_version_status() {
    let image = split_image("example.com/big:1.0").unwrap();
    let cases = [
        (None, None, NodeProgress::NotSynced),
        (Some((0, "other")), None, NodeProgress::NotSynced),
        (Some((0, "job-uid")), None, NodeProgress::Pulling),
        (
            Some((1, "job-uid")),
            Some((0, "Succeeded")),
            NodeProgress::Pulling,
        ),
        (
            Some((1, "job-uid")),
            Some((1, "Pulling")),
            NodeProgress::Pulling,
        ),
        (
            Some((1, "job-uid")),
            Some((1, "Succeeded")),
            NodeProgress::Succeeded,
        ),
        (
            Some((1, "job-uid")),
            Some((1, "Failed")),
            NodeProgress::Failed,
        ),
    ];
    for (tag, status, want) in cases {
        assert_eq!(
            progress(&ni_with(tag, status), &image, "job-uid", &[]),
            want,
            "{tag:?} {status:?}"
        );
    }
    let secret = ReferenceObject {
        namespace: Some("default".into()),
        name: Some("reg".into()),
    };
    assert_eq!(
        progress(
            &ni_with(Some((0, "job-uid")), None),
            &image,
            "job-uid",
            &[secret]
        ),
        NodeProgress::NotSynced,
        "an entry without the job's secrets is re-synced"
    );
}

#[test]
fn parallelism_steps_through_five_nodes() {
    // parallelism 2 over 5 nodes: each round fills the free slots in name order
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let steps = [
        (
            names(&["a", "b", "c", "d", "e"]),
            names(&[]),
            names(&["a", "b"]),
        ),
        (names(&["c", "d", "e"]), names(&["a", "b"]), names(&[])),
        (names(&["c", "d", "e"]), names(&["b"]), names(&["c"])),
        (names(&["e"]), names(&[]), names(&["e"])),
    ];
    for (not_synced, pulling, want) in steps {
        let p = Progress {
            not_synced,
            pulling,
            ..Default::default()
        };
        assert_eq!(next_nodes(2, &p), want);
    }
    assert!(
        next_nodes(
            0,
            &Progress {
                not_synced: names(&["a"]),
                ..Default::default()
            }
        )
        .is_empty(),
        "0 pauses the job"
    );
    assert_eq!(parallelism(&job(json!({})).spec.template), 1);
    assert_eq!(
        parallelism(&job(json!({"parallelism": 10})).spec.template),
        10
    );
}

#[test]
fn tag_policy_and_ttl() {
    let p = tag_pull_policy(&job(json!({})));
    assert_eq!(
        (
            p.timeout_seconds,
            p.backoff_limit,
            p.ttl_seconds_after_finished,
            p.active_deadline_seconds
        ),
        (Some(600), Some(3), Some(2100), None)
    );
    let p = tag_pull_policy(&job(
        json!({"pullPolicy": {"timeoutSeconds": 30, "backoffLimit": 1}, "completionPolicy": {"type": "Always", "ttlSecondsAfterFinished": 60, "activeDeadlineSeconds": 100}}),
    ));
    assert_eq!(
        (
            p.timeout_seconds,
            p.backoff_limit,
            p.ttl_seconds_after_finished,
            p.active_deadline_seconds
        ),
        (Some(30), Some(1), Some(360), Some(100))
    );
    let p = tag_pull_policy(&job(json!({"completionPolicy": {"type": "Never"}})));
    assert_eq!(
        (p.ttl_seconds_after_finished, p.active_deadline_seconds),
        (Some(86400), Some(1800))
    );
}

#[test]
fn with_tag_adds_then_is_idempotent_and_without_owner_removes() {
    let image = split_image("example.com/big:1.0").unwrap();
    let j = job(json!({"pullSecrets": ["reg"], "imagePullPolicy": "Always"}));
    let spec = with_tag(&NodeImageSpec::default(), Some(4), &j, &image, now()).unwrap();
    let img = &spec.images.as_ref().unwrap()["example.com/big"];
    let t = &img.tags[0];
    assert_eq!(
        (t.tag.as_str(), t.version, t.image_pull_policy.as_deref()),
        ("1.0", Some(5), Some("Always"))
    );
    assert_eq!(
        t.owner_references.as_ref().unwrap()[0].uid.as_deref(),
        Some("job-uid")
    );
    assert_eq!(t.created_at, Some(Time(now())));
    assert_eq!(
        img.pull_secrets.as_ref().unwrap()[0].name.as_deref(),
        Some("reg")
    );
    assert_eq!(with_tag(&spec, Some(5), &j, &image, now()), None);

    // a second job on the same tag joins the entry and bumps the version
    let mut other = j.clone();
    other.metadata.uid = Some("other-uid".into());
    let both = with_tag(&spec, Some(5), &other, &image, now()).unwrap();
    let t = &both.images.as_ref().unwrap()["example.com/big"].tags[0];
    assert_eq!(
        (t.version, t.owner_references.as_ref().unwrap().len()),
        (Some(6), 2)
    );

    let left = without_owner(&both, "job-uid").unwrap();
    assert_eq!(
        left.images.as_ref().unwrap()["example.com/big"].tags.len(),
        1
    );
    let empty = without_owner(&left, "other-uid").unwrap();
    assert!(empty.images.unwrap().is_empty());
    assert_eq!(without_owner(&spec, "nobody"), None);
}
