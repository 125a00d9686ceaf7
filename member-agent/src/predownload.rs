//! Image pre-download for in-place updates (gate `PreDownloadImageForInPlaceUpdate`, spec 2.9).
//!
//! When a workload that updates pods in place moves to a new revision, one ImagePullJob per
//! changed container image pulls the new image on the nodes of the pods still on an older
//! revision, so that each in-place step finds the image cached instead of pulling it with the
//! container stopped. [`decide`] is the pure decision; [`sync`] carries it out.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kruise_api::apps::v1alpha1::broadcastjob::CompletionPolicy;
use kruise_api::apps::v1alpha1::imagepulljob::{
    ImagePullJob, ImagePullJobPodSelector, ImagePullJobSpec, ImagePullJobTemplate, PullPolicy,
    SandboxConfig,
};
use kruise_api::apps::wellknown::{
    CONTROLLER_REVISION_HASH, IMAGE_PREDOWNLOAD_CREATED, IMAGE_PREDOWNLOAD_IGNORED,
    IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS, IMAGE_PREDOWNLOAD_PARALLELISM,
    IMAGE_PREDOWNLOAD_TIMEOUT_SECONDS,
};
use kruise_api::intstr;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};

use crate::events::Recorder;
use serde_json::json;

/// A workload with fewer replicas than this never pre-downloads (upstream's constant is 3).
pub const MINIMUM_REPLICAS: i32 = 3;
/// Default timeout of each pull, in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 600;
/// Seconds a finished pre-download job is kept.
pub const TTL_SECONDS_AFTER_FINISHED: i32 = 600;

/// What the decision needs to know about the workload.
#[derive(Debug, Clone)]
pub struct Workload<'a> {
    /// The workload's metadata (namespace, name, uid, annotations).
    pub meta: &'a ObjectMeta,
    /// `apiVersion` of the workload (for the owner reference).
    pub api_version: &'a str,
    /// Kind of the workload.
    pub kind: &'a str,
    /// Desired replicas.
    pub replicas: i32,
    /// Pods kept on the old revision, resolved.
    pub partition: i32,
    /// maxUnavailable, resolved.
    pub max_unavailable: i32,
    /// The workload recreates every pod (update type ReCreate).
    pub recreate: bool,
    /// The workload's pod selector.
    pub selector: &'a LabelSelector,
    /// Pods updated and ready on the update revision (0 when the status names another revision).
    pub updated_ready: i32,
}

/// Why no pre-download is made for a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The workload recreates pods.
    ReCreate,
    /// Too few replicas to be worth it.
    FewReplicas,
    /// Every pod updates in one batch.
    OneBatch,
    /// The revisions differ in more than in-place fields.
    NotInPlace,
}

/// The pre-download decision for one revision change.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The revision is already labelled created or ignored.
    Done,
    /// Fewer pods are updated and ready than the min-updated-ready-pods annotation asks.
    Wait {
        /// Pods required.
        need: i32,
    },
    /// Label the revision ignored.
    Ignore(Skip),
    /// Create these jobs, then label the revision created.
    Create(Vec<ImagePullJob>),
}

/// The images of containers that are new or whose image changed from `old` to `new`.
pub fn changed_images(old: &PodTemplateSpec, new: &PodTemplateSpec) -> BTreeMap<String, String> {
    let old_images: BTreeMap<&str, Option<&str>> = old
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| (c.name.as_str(), c.image.as_deref()))
        .collect();
    new.spec
        .iter()
        .flat_map(|s| &s.containers)
        .filter(|c| old_images.get(c.name.as_str()) != Some(&c.image.as_deref()))
        .filter_map(|c| Some((c.name.clone(), c.image.clone()?)))
        .collect()
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Pods that must be updated and ready before pre-downloading starts (int or percent of replicas,
/// rounded up); an unparsable value counts as 0, as upstream logs and goes on.
pub fn min_updated_ready(meta: &ObjectMeta, replicas: i32) -> i32 {
    annotation(meta, IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS)
        .map(|raw| {
            let v = match raw.trim().parse::<i32>() {
                Ok(n) => IntOrString::Int(n),
                Err(_) => IntOrString::String(raw.trim().to_string()),
            };
            intstr::scaled_value(&v, replicas, true).unwrap_or(0)
        })
        .unwrap_or(0)
}

fn revision_hash(rev: &ControllerRevision) -> String {
    rev.labels()
        .get(CONTROLLER_REVISION_HASH)
        .cloned()
        .unwrap_or_default()
}

/// Decides what to do for the change `current` → `update`. `templates` are the two revisions'
/// pod templates; `in_place` says whether the change can be made in place.
pub fn decide(
    w: &Workload<'_>,
    current: &PodTemplateSpec,
    update_rev: &ControllerRevision,
    update: &PodTemplateSpec,
    in_place: bool,
) -> Decision {
    let labels = update_rev.labels();
    if labels.contains_key(IMAGE_PREDOWNLOAD_CREATED)
        || labels.contains_key(IMAGE_PREDOWNLOAD_IGNORED)
    {
        return Decision::Done;
    }
    let need = min_updated_ready(w.meta, w.replicas);
    if w.updated_ready < need {
        return Decision::Wait { need };
    }
    if w.recreate {
        return Decision::Ignore(Skip::ReCreate);
    }
    if w.replicas <= MINIMUM_REPLICAS {
        return Decision::Ignore(Skip::FewReplicas);
    }
    if w.partition == 0 && w.max_unavailable >= w.replicas {
        return Decision::Ignore(Skip::OneBatch);
    }
    if !in_place {
        return Decision::Ignore(Skip::NotInPlace);
    }
    Decision::Create(jobs(w, current, update_rev, update))
}

fn jobs(
    w: &Workload<'_>,
    current: &PodTemplateSpec,
    update_rev: &ControllerRevision,
    update: &PodTemplateSpec,
) -> Vec<ImagePullJob> {
    let rev_name = update_rev.name_any();
    let hash = revision_hash(update_rev);
    // Nodes of the pods not yet on the update revision.
    let mut selector = w.selector.clone();
    selector
        .match_expressions
        .get_or_insert_with(Vec::new)
        .push(LabelSelectorRequirement {
            key: CONTROLLER_REVISION_HASH.into(),
            operator: "NotIn".into(),
            values: Some(vec![rev_name.clone(), hash.clone()]),
        });
    // Everything a workload owns matches its selector, so the jobs carry the template labels.
    let mut labels = update
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(CONTROLLER_REVISION_HASH.into(), hash);
    let annotations = update
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.clone())
        .filter(|a| !a.is_empty());
    let parallelism = annotation(w.meta, IMAGE_PREDOWNLOAD_PARALLELISM)
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(1);
    let timeout = annotation(w.meta, IMAGE_PREDOWNLOAD_TIMEOUT_SECONDS)
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let pull_secrets: Vec<String> = update
        .spec
        .iter()
        .flat_map(|s| s.image_pull_secrets.iter().flatten())
        .map(|s| s.name.clone())
        .collect();
    let owner = OwnerReference {
        api_version: w.api_version.to_string(),
        kind: w.kind.to_string(),
        name: w.meta.name.clone().unwrap_or_default(),
        uid: w.meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    changed_images(current, update)
        .into_iter()
        .map(|(container, image)| ImagePullJob {
            metadata: ObjectMeta {
                name: Some(format!("{rev_name}-{container}")),
                namespace: w.meta.namespace.clone(),
                labels: Some(labels.clone()),
                owner_references: Some(vec![owner.clone()]),
                ..ObjectMeta::default()
            },
            spec: ImagePullJobSpec {
                image,
                template: ImagePullJobTemplate {
                    pull_secrets: (!pull_secrets.is_empty()).then(|| pull_secrets.clone()),
                    pod_selector: Some(ImagePullJobPodSelector {
                        match_labels: selector.match_labels.clone(),
                        match_expressions: selector.match_expressions.clone(),
                    }),
                    parallelism: Some(IntOrString::Int(parallelism.max(0))),
                    pull_policy: Some(PullPolicy {
                        timeout_seconds: Some(timeout),
                        backoff_limit: Some(1),
                    }),
                    completion_policy: CompletionPolicy {
                        type_: Some("Always".into()),
                        active_deadline_seconds: None,
                        ttl_seconds_after_finished: Some(TTL_SECONDS_AFTER_FINISHED),
                    },
                    sandbox_config: Some(SandboxConfig {
                        labels: Some(labels.clone()),
                        annotations: annotations.clone(),
                    }),
                    ..ImagePullJobTemplate::default()
                },
            },
            status: None,
        })
        .collect()
}

/// What [`sync`] did, for events and logs.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Jobs created: (name, image).
    pub created: Vec<(String, String)>,
    /// Jobs that could not be created: (name, error).
    pub failed: Vec<(String, String)>,
    /// The revision was labelled ignored for this reason.
    pub ignored: Option<Skip>,
}

/// Carries out `decision` for the revision `update_rev`: creates the jobs (an existing job of the
/// same name counts as created) and labels the revision, so each revision is decided once.
pub async fn sync(
    client: &Client,
    update_rev: &ControllerRevision,
    decision: Decision,
) -> Result<Outcome, kube::Error> {
    let ns = update_rev.namespace().unwrap_or_default();
    let mut out = Outcome::default();
    let label = match decision {
        Decision::Done | Decision::Wait { .. } => return Ok(out),
        Decision::Ignore(why) => {
            out.ignored = Some(why);
            IMAGE_PREDOWNLOAD_IGNORED
        }
        Decision::Create(jobs) => {
            let api: Api<ImagePullJob> = Api::namespaced(client.clone(), &ns);
            for job in jobs {
                let name = job.name_any();
                match api.create(&PostParams::default(), &job).await {
                    Ok(_) => out.created.push((name, job.spec.image.clone())),
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => out.failed.push((name, e.to_string())),
                }
            }
            IMAGE_PREDOWNLOAD_CREATED
        }
    };
    let revs: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
    let patch = json!({"metadata": {"labels": {label: "true"}}});
    revs.patch(
        &update_rev.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(out)
}

/// The revisions of a workload as its controller sees them in one reconcile.
pub struct Revisions<'a> {
    /// The workload's ControllerRevisions from the cache.
    pub history: &'a [ControllerRevision],
    /// Pod template per revision name.
    pub templates: &'a BTreeMap<String, PodTemplateSpec>,
    /// `status.currentRevision` (resolved).
    pub current: &'a str,
    /// The revision of the current template.
    pub update: &'a str,
}

/// One reconcile's pre-download step for `obj`: while the revisions differ, decide and create the
/// jobs for the update revision; once they agree, delete the workload's jobs. Failures become
/// events or logs and are retried on the next reconcile; they never hold the update back.
pub async fn reconcile<K>(
    client: &Client,
    jobs: &Store<ImagePullJob>,
    recorder: &Recorder,
    obj: &K,
    w: Workload<'_>,
    revs: Revisions<'_>,
) where
    K: Resource<DynamicType = ()>,
{
    let uid = w.meta.uid.clone().unwrap_or_default();
    if revs.current == revs.update {
        match delete_jobs(client, &uid, &jobs.state()).await {
            Ok(deleted) if !deleted.is_empty() => {
                tracing::debug!(?deleted, "revisions agree; pre-download jobs deleted")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "deleting pre-download jobs"),
        }
        return;
    }
    // A revision just created is decided once the cache holds it.
    let Some(update_rev) = revs.history.iter().find(|r| r.name_any() == revs.update) else {
        return;
    };
    let (Some(current), Some(update)) = (
        revs.templates.get(revs.current),
        revs.templates.get(revs.update),
    ) else {
        return;
    };
    let in_place = crate::inplace::calculate_spec(current, update, revs.update, 0).is_some();
    let decision = decide(&w, current, update_rev, update, in_place);
    match sync(client, update_rev, decision).await {
        Ok(out) => {
            for (job, image) in out.created {
                recorder.publish(
                    obj,
                    crate::events::NORMAL,
                    "CreatedImagePullJob",
                    format!("created ImagePullJob {job} for image: {image}"),
                );
            }
            for (job, err) in out.failed {
                recorder.publish(
                    obj,
                    crate::events::NORMAL,
                    "FailedCreateImagePullJob",
                    format!("failed to create ImagePullJob {job}: {err}"),
                );
            }
            if let Some(why) = out.ignored {
                tracing::debug!(?why, revision = revs.update, "no image pre-download");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, revision = revs.update, "labelling revision for pre-download")
        }
    }
}

/// The ImagePullJob cache a workload controller keeps when pre-download is `enabled`, and the
/// stream of job changes to pass to its `owns_stream` (empty when disabled).
pub fn job_cache(
    client: &Client,
    enabled: bool,
) -> (
    Option<Store<ImagePullJob>>,
    BoxStream<'static, Result<ImagePullJob, watcher::Error>>,
) {
    if !enabled {
        return (None, futures::stream::empty().boxed());
    }
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(
            Api::<ImagePullJob>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects()
    .boxed();
    (Some(store), stream)
}

/// Deletes the pre-download jobs controlled by `owner_uid` among `jobs`; returns the names deleted.
pub async fn delete_jobs(
    client: &Client,
    owner_uid: &str,
    jobs: &[Arc<ImagePullJob>],
) -> Result<Vec<String>, kube::Error> {
    let mut deleted = Vec::new();
    for job in jobs.iter().filter(|j| {
        j.metadata.deletion_timestamp.is_none()
            && crate::workload::owned_by(j.metadata.owner_references.as_deref(), owner_uid)
    }) {
        let api: Api<ImagePullJob> =
            Api::namespaced(client.clone(), &job.namespace().unwrap_or_default());
        match api.delete(&job.name_any(), &DeleteParams::default()).await {
            Ok(_) => deleted.push(job.name_any()),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(images: &[(&str, &str)]) -> PodTemplateSpec {
        let containers: Vec<_> = images
            .iter()
            .map(|(n, i)| json!({"name": n, "image": i}))
            .collect();
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": containers, "imagePullSecrets": [{"name": "regcred"}]}
        }))
        .unwrap()
    }

    fn revision(labels: &[(&str, &str)]) -> ControllerRevision {
        let mut l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.insert(CONTROLLER_REVISION_HASH.into(), "web-7f9c".into());
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some("web-7f9c".into()),
                namespace: Some("default".into()),
                labels: Some(l),
                ..ObjectMeta::default()
            },
            revision: 2,
            data: None,
        }
    }

    fn meta(annotations: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("uid-1".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        }
    }

    fn workload<'a>(meta: &'a ObjectMeta, selector: &'a LabelSelector) -> Workload<'a> {
        Workload {
            meta,
            api_version: "apps.kruise.io/v1alpha1",
            kind: "CloneSet",
            replicas: 10,
            partition: 0,
            max_unavailable: 2,
            recreate: false,
            selector,
            updated_ready: 0,
        }
    }

    fn selector() -> LabelSelector {
        LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: None,
        }
    }

    #[test]
    fn only_new_or_changed_images_are_pre_downloaded() {
        let old = template(&[("main", "app:v1"), ("log", "log:v1")]);
        let new = template(&[("main", "app:v2"), ("log", "log:v1"), ("extra", "x:v1")]);
        let got = changed_images(&old, &new);
        assert_eq!(
            got,
            [
                ("extra".to_string(), "x:v1".to_string()),
                ("main".to_string(), "app:v2".to_string())
            ]
            .into()
        );
    }

    #[test]
    fn one_job_per_changed_container_targets_pods_off_the_new_revision() {
        let m = meta(&[
            (IMAGE_PREDOWNLOAD_PARALLELISM, "5"),
            (IMAGE_PREDOWNLOAD_TIMEOUT_SECONDS, "120"),
        ]);
        let sel = selector();
        let w = workload(&m, &sel);
        let d = decide(
            &w,
            &template(&[("main", "app:v1"), ("log", "log:v1")]),
            &revision(&[]),
            &template(&[("main", "app:v2"), ("log", "log:v1")]),
            true,
        );
        let Decision::Create(jobs) = d else {
            panic!("expected jobs, got {d:?}")
        };
        assert_eq!(jobs.len(), 1);
        let job = &jobs[0];
        assert_eq!(job.name_any(), "web-7f9c-main");
        assert_eq!(job.spec.image, "app:v2");
        let t = &job.spec.template;
        assert_eq!(t.parallelism, Some(IntOrString::Int(5)));
        assert_eq!(t.pull_policy.as_ref().unwrap().timeout_seconds, Some(120));
        assert_eq!(t.pull_policy.as_ref().unwrap().backoff_limit, Some(1));
        assert_eq!(t.pull_secrets, Some(vec!["regcred".to_string()]));
        assert_eq!(t.completion_policy.type_.as_deref(), Some("Always"));
        let ps = t.pod_selector.as_ref().unwrap();
        assert_eq!(ps.match_labels, sel.match_labels);
        let expr = &ps.match_expressions.as_ref().unwrap()[0];
        assert_eq!(
            (expr.key.as_str(), expr.operator.as_str()),
            (CONTROLLER_REVISION_HASH, "NotIn")
        );
        assert_eq!(
            expr.values,
            Some(vec!["web-7f9c".to_string(), "web-7f9c".to_string()])
        );
        let owner = &job.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("CloneSet", "uid-1")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(
            job.labels()
                .get(CONTROLLER_REVISION_HASH)
                .map(String::as_str),
            Some("web-7f9c")
        );
        assert_eq!(job.labels().get("app").map(String::as_str), Some("web"));
    }

    #[test]
    fn defaults_are_one_node_at_a_time_and_ten_minutes() {
        let m = meta(&[]);
        let sel = selector();
        let d = decide(
            &workload(&m, &sel),
            &template(&[("main", "app:v1")]),
            &revision(&[]),
            &template(&[("main", "app:v2")]),
            true,
        );
        let Decision::Create(jobs) = d else {
            panic!("expected jobs, got {d:?}")
        };
        let t = &jobs[0].spec.template;
        assert_eq!(t.parallelism, Some(IntOrString::Int(1)));
        assert_eq!(t.pull_policy.as_ref().unwrap().timeout_seconds, Some(600));
    }

    #[test]
    fn skips_follow_upstream_order() {
        let m = meta(&[]);
        let sel = selector();
        let old = template(&[("main", "app:v1")]);
        let new = template(&[("main", "app:v2")]);
        let rev = revision(&[]);
        type Change = fn(&mut Workload<'_>);
        let cases: Vec<(&str, Change, bool, Decision)> = vec![
            (
                "ReCreate",
                |w| w.recreate = true,
                true,
                Decision::Ignore(Skip::ReCreate),
            ),
            (
                "3 replicas",
                |w| w.replicas = 3,
                true,
                Decision::Ignore(Skip::FewReplicas),
            ),
            (
                "maxUnavailable covers all",
                |w| w.max_unavailable = 10,
                true,
                Decision::Ignore(Skip::OneBatch),
            ),
            (
                "a partition keeps batches",
                |w| {
                    w.max_unavailable = 10;
                    w.partition = 2
                },
                true,
                Decision::Create(Vec::new()),
            ),
            (
                "not in place",
                |_| {},
                false,
                Decision::Ignore(Skip::NotInPlace),
            ),
        ];
        for (what, change, in_place, want) in cases {
            let mut w = workload(&m, &sel);
            change(&mut w);
            let got = decide(&w, &old, &rev, &new, in_place);
            match (&got, &want) {
                (Decision::Create(jobs), Decision::Create(_)) => {
                    assert_eq!(jobs.len(), 1, "{what}")
                }
                _ => assert_eq!(got, want, "{what}"),
            }
        }
    }

    #[test]
    fn a_labelled_revision_is_decided_once() {
        let m = meta(&[]);
        let sel = selector();
        let old = template(&[("main", "app:v1")]);
        let new = template(&[("main", "app:v2")]);
        for label in [IMAGE_PREDOWNLOAD_CREATED, IMAGE_PREDOWNLOAD_IGNORED] {
            let d = decide(
                &workload(&m, &sel),
                &old,
                &revision(&[(label, "true")]),
                &new,
                true,
            );
            assert_eq!(d, Decision::Done, "{label}");
        }
    }

    #[test]
    fn min_updated_ready_pods_holds_the_jobs_back() {
        let sel = selector();
        let old = template(&[("main", "app:v1")]);
        let new = template(&[("main", "app:v2")]);
        let m = meta(&[(IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS, "25%")]);
        let mut w = workload(&m, &sel);
        w.updated_ready = 2;
        assert_eq!(
            decide(&w, &old, &revision(&[]), &new, true),
            Decision::Wait { need: 3 },
            "25% of 10 rounds up to 3"
        );
        w.updated_ready = 3;
        assert!(matches!(
            decide(&w, &old, &revision(&[]), &new, true),
            Decision::Create(_)
        ));
        let m = meta(&[(IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS, "4")]);
        assert_eq!(min_updated_ready(&m, 10), 4);
        let m = meta(&[(IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS, "many")]);
        assert_eq!(min_updated_ready(&m, 10), 0);
    }
}
