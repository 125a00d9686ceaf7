//! The ImageListPullJob controller (spec section 10.2): one owned ImagePullJob per listed image
//! (`generateName: <list>-`, labelled with the template hash), recreated when the template
//! changes, deleted when its image leaves the list; status aggregated from the children.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::imagelistpulljob::{
    FailedImageStatus, ImageListPullJob, ImageListPullJobStatus,
};
use kruise_api::apps::v1alpha1::imagepulljob::{
    ImagePullJob, ImagePullJobSpec, ImagePullJobTemplate,
};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{info_span, warn, Instrument};

use super::{Error, RunConfig};
use crate::expectations::Expectations;

/// Label carrying the hash of the template a child job was made from.
pub const TEMPLATE_HASH_LABEL: &str = "controller-revision-hash";

/// A stable hash of the pull template (FNV-1a over its JSON), as a short hex string.
pub fn template_hash(t: &ImagePullJobTemplate) -> String {
    let text = serde_json::to_string(t).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:x}", h & 0xffff_ffff)
}

/// What to do with the children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPlan {
    /// Images that need a new child job.
    pub create: Vec<String>,
    /// Child jobs to delete (image left the list, template changed, or duplicate).
    pub delete: Vec<String>,
}

/// Pure: children are `(name, image, template hash)`.
pub fn plan(images: &[String], hash: &str, children: &[(String, String, String)]) -> ListPlan {
    let wanted: BTreeSet<&String> = images.iter().collect();
    let mut kept: BTreeSet<&String> = BTreeSet::new();
    let mut out = ListPlan::default();
    for (name, image, h) in children {
        if wanted.contains(image) && h == hash && kept.insert(image) {
            continue;
        }
        out.delete.push(name.clone());
    }
    out.create = images
        .iter()
        .filter(|i| !kept.contains(i))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .cloned()
        .collect();
    out
}

/// Pure: the list job's status from its current children.
pub fn status(
    list: &ImageListPullJob,
    children: &[&ImagePullJob],
    now: Timestamp,
) -> ImageListPullJobStatus {
    let prev = list.status.clone().unwrap_or_default();
    let desired = i32::try_from(list.spec.images.len()).unwrap_or(i32::MAX);
    let (mut active, mut completed, mut succeeded) = (0, 0, 0);
    let mut failed = Vec::new();
    for c in children {
        let st = c.status.clone().unwrap_or_default();
        if st.completion_time.is_none() {
            active += 1;
            continue;
        }
        completed += 1;
        if st.succeeded.unwrap_or(0) == st.desired {
            succeeded += 1;
        } else {
            failed.push(FailedImageStatus {
                image_pull_job: Some(c.name_any()),
                name: Some(c.spec.image.clone()),
                message: st.message.clone(),
            });
        }
    }
    let always = list.spec.template.completion_policy.type_.as_deref() != Some(super::plan::NEVER);
    let done = always && completed == desired;
    ImageListPullJobStatus {
        start_time: Some(prev.start_time.unwrap_or(Time(now))),
        completion_time: if done {
            prev.completion_time.or(Some(Time(now)))
        } else {
            None
        },
        desired,
        active: Some(active),
        completed: Some(completed),
        succeeded: Some(succeeded),
        failed_image_statuses: (!failed.is_empty()).then_some(failed),
    }
}

/// Shared state of the ImageListPullJob controller.
pub struct ListContext {
    /// API client.
    pub client: Client,
    /// All ImagePullJobs.
    pub jobs: Store<ImagePullJob>,
    /// Child creations not yet seen in the cache.
    pub expectations: Expectations,
    /// Timeout of each write.
    pub write_timeout: Duration,
}

async fn timed<T>(
    ctx: &ListContext,
    what: &'static str,
    obj: &str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<Option<T>, Error> {
    match tokio::time::timeout(ctx.write_timeout, fut).await {
        Ok(Ok(v)) => Ok(Some(v)),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => Ok(None),
        Ok(Err(source)) => Err(Error::Write {
            what,
            obj: obj.to_string(),
            source,
        }),
        Err(_) => Err(Error::Timeout {
            what,
            obj: obj.to_string(),
        }),
    }
}

/// Reconciles one ImageListPullJob.
pub async fn reconcile(
    list: Arc<ImageListPullJob>,
    ctx: Arc<ListContext>,
) -> Result<Action, Error> {
    let span = info_span!("reconcile", imagelistpulljob = %list.name_any());
    reconcile_inner(&list, &ctx).instrument(span).await
}

async fn reconcile_inner(list: &ImageListPullJob, ctx: &ListContext) -> Result<Action, Error> {
    if list.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if !matches!(
        tokio::time::timeout(Duration::from_secs(10), ctx.jobs.wait_until_ready()).await,
        Ok(Ok(()))
    ) {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let ns = list.namespace().unwrap_or_default();
    let name = list.name_any();
    let key = format!("{ns}/{name}");
    let uid = list.uid().unwrap_or_default();
    let now = Timestamp::now();
    let api: Api<ImageListPullJob> = Api::namespaced(ctx.client.clone(), &ns);
    if let Some(done) = list
        .status
        .as_ref()
        .and_then(|s| s.completion_time.as_ref())
    {
        let Some(ttl) = list
            .spec
            .template
            .completion_policy
            .ttl_seconds_after_finished
        else {
            return Ok(Action::await_change());
        };
        let left = f64::from(ttl.max(0)) - now.duration_since(done.0).as_secs_f64();
        if left > 0.0 {
            return Ok(Action::requeue(Duration::from_secs_f64(left)));
        }
        timed(
            ctx,
            "ImageListPullJob delete",
            &name,
            api.delete(&name, &DeleteParams::background()),
        )
        .await?;
        return Ok(Action::await_change());
    }
    let all = ctx.jobs.state();
    let children: Vec<&ImagePullJob> = all
        .iter()
        .map(|j| j.as_ref())
        .filter(|j| j.namespace().as_deref() == Some(ns.as_str()))
        .filter(|j| {
            j.owner_references()
                .iter()
                .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .collect();
    let cache: BTreeMap<String, u64> = children.iter().map(|j| (j.name_any(), 1)).collect();
    if !ctx.expectations.satisfied(&key, &cache) {
        return Ok(Action::requeue(Duration::from_millis(300)));
    }
    let hash = template_hash(&list.spec.template);
    let rows: Vec<(String, String, String)> = children
        .iter()
        .map(|j| {
            (
                j.name_any(),
                j.spec.image.clone(),
                j.labels()
                    .get(TEMPLATE_HASH_LABEL)
                    .cloned()
                    .unwrap_or_default(),
            )
        })
        .collect();
    let the_plan = plan(&list.spec.images, &hash, &rows);
    let jobs: Api<ImagePullJob> = Api::namespaced(ctx.client.clone(), &ns);
    for victim in &the_plan.delete {
        timed(
            ctx,
            "ImagePullJob delete",
            victim,
            jobs.delete(victim, &DeleteParams::background()),
        )
        .await?;
        ctx.expectations.expect_delete(&key, victim);
    }
    let owner = list.controller_owner_ref(&());
    for image in &the_plan.create {
        let child = ImagePullJob {
            metadata: ObjectMeta {
                generate_name: Some(format!("{name}-")),
                namespace: Some(ns.clone()),
                labels: Some([(TEMPLATE_HASH_LABEL.to_string(), hash.clone())].into()),
                owner_references: owner.clone().map(|o| vec![o]),
                ..Default::default()
            },
            spec: ImagePullJobSpec {
                image: image.clone(),
                template: list.spec.template.clone(),
            },
            status: None,
        };
        if let Some(created) = timed(
            ctx,
            "ImagePullJob create",
            image,
            jobs.create(&PostParams::default(), &child),
        )
        .await?
        {
            ctx.expectations.expect_create(&key, &created.name_any());
        }
    }
    let kept: Vec<&ImagePullJob> = children
        .into_iter()
        .filter(|j| !the_plan.delete.contains(&j.name_any()))
        .collect();
    let mut st = status(list, &kept, now);
    if !the_plan.create.is_empty() {
        st.completion_time = None;
    }
    if list.status.as_ref() != Some(&st) {
        timed(
            ctx,
            "ImageListPullJob status",
            &name,
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": st})),
            ),
        )
        .await?;
    }
    Ok(Action::requeue(Duration::from_secs(
        if st.completion_time.is_some() { 1 } else { 5 },
    )))
}

fn error_policy(_l: Arc<ImageListPullJob>, err: &Error, _ctx: Arc<ListContext>) -> Action {
    warn!(error = %err, reason = err.reason(), "imagelistpulljob reconcile failed");
    Action::requeue(Duration::from_secs(1))
}

/// Runs the ImageListPullJob controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: RunConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (jobs, writer) = reflector::store();
    let job_stream = reflector::reflector(
        writer,
        watcher(
            Api::<ImagePullJob>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let ctx = Arc::new(ListContext {
        client: client.clone(),
        jobs,
        expectations: Expectations::new(config.expectation_timeout),
        write_timeout: config.write_timeout,
    });
    Controller::new(
        Api::<ImageListPullJob>::all(client),
        watcher::Config::default(),
    )
    .owns_stream(job_stream)
    .with_config(ControllerConfig::default().concurrency(config.workers))
    .graceful_shutdown_on(shutdown)
    .run(reconcile, error_policy, ctx)
    .for_each(|_| futures::future::ready(()))
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: &str, i: &str, h: &str) -> (String, String, String) {
        (n.into(), i.into(), h.into())
    }

    #[test]
    fn plan_creates_missing_and_deletes_stale_children() {
        let images = vec!["a:1".to_string(), "b:1".to_string(), "c:1".to_string()];
        let p = plan(
            &images,
            "h1",
            &[
                row("l-x", "a:1", "h1"),
                row("l-y", "b:1", "h0"),
                row("l-z", "d:1", "h1"),
                row("l-w", "a:1", "h1"),
            ],
        );
        assert_eq!(p.create, vec!["b:1".to_string(), "c:1".to_string()]);
        assert_eq!(
            p.delete,
            vec!["l-y".to_string(), "l-z".to_string(), "l-w".to_string()]
        );
        assert_eq!(
            plan(&images[..1], "h1", &[row("l-x", "a:1", "h1")]),
            ListPlan::default()
        );
    }

    #[test]
    fn template_hash_changes_with_the_template() {
        let a = ImagePullJobTemplate::default();
        let mut b = a.clone();
        b.image_pull_policy = Some("Always".into());
        assert_eq!(template_hash(&a), template_hash(&a.clone()));
        assert_ne!(template_hash(&a), template_hash(&b));
    }

    #[test]
    fn status_counts_children() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let spec = serde_json::from_value(json!({"images": ["a:1", "b:1"]})).unwrap();
        let list = ImageListPullJob::new("l", spec);
        let mut ok = ImagePullJob::new(
            "l-1",
            ImagePullJobSpec {
                image: "a:1".into(),
                ..Default::default()
            },
        );
        ok.status = Some(
            serde_json::from_value(
                json!({"desired": 2, "succeeded": 2, "completionTime": "2026-01-01T00:00:00Z"}),
            )
            .unwrap(),
        );
        let mut bad = ImagePullJob::new(
            "l-2",
            ImagePullJobSpec {
                image: "b:1".into(),
                ..Default::default()
            },
        );
        bad.status = Some(
            serde_json::from_value(
                json!({"desired": 2, "succeeded": 1, "failed": 1, "message": "job has completed"}),
            )
            .unwrap(),
        );
        let st = status(&list, &[&ok, &bad], now);
        assert_eq!(
            (st.desired, st.active, st.completed, st.succeeded),
            (2, Some(1), Some(1), Some(1))
        );
        assert!(st.completion_time.is_none());
        bad.status.as_mut().unwrap().completion_time = Some(Time(now));
        let st = status(&list, &[&ok, &bad], now);
        assert_eq!((st.completed, st.succeeded), (Some(2), Some(1)));
        assert_eq!(st.completion_time, Some(Time(now)));
        let f = st.failed_image_statuses.unwrap();
        assert_eq!(f[0].image_pull_job.as_deref(), Some("l-2"));
        assert_eq!(f[0].name.as_deref(), Some("b:1"));
    }
}
