//! The CloneSet controller: observe → [`plan::plan`] → [`apply::apply`] → status.

pub mod apply;
pub mod defaults;
pub mod diffs;
pub mod plan;
pub mod settings;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::cloneset::CloneSet;
use kruise_api::apps::v1alpha1::imagepulljob::ImagePullJob;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{info_span, warn, Instrument};

use crate::controllerref;
use crate::predownload;
use crate::expectations::Expectations;
use crate::gates::{self, FeatureGates};
use crate::metrics::{ControllerName, Metrics, WriteKind};
use crate::revision::{self, RevisionDecision};
use plan::{Observed, INSTANCE_ID_LABEL};
use settings::Settings;

/// Errors of one CloneSet reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A write to the API server failed.
    #[error("{kind:?} {obj}: {source}")]
    Write {
        /// What was written.
        kind: WriteKind,
        /// Object name.
        obj: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A write did not finish in time.
    #[error("{kind:?} {obj}: timed out")]
    Timeout {
        /// What was written.
        kind: WriteKind,
        /// Object name.
        obj: String,
    },
    /// A pod must be created on a revision whose template is unknown.
    #[error("revision {revision} has no template")]
    MissingRevision {
        /// Revision name.
        revision: String,
    },
    /// A revision name is taken by different data; collisionCount was raised.
    #[error("revision {name} collides with an existing revision")]
    Collision {
        /// Revision name.
        name: String,
    },
    /// The spec asks for something that cannot be done (InPlaceOnly with a non-image change).
    #[error("{message}")]
    Refused {
        /// Upstream's message.
        message: String,
    },
}

impl Error {
    /// Whether retrying can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Write { .. } => true,
            Error::Timeout { .. } => true,
            Error::MissingRevision { .. } => true,
            Error::Collision { .. } => true,
            Error::Refused { .. } => false,
        }
    }

    /// Short reason for metrics and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Write { .. } => "WriteFailed",
            Error::Timeout { .. } => "WriteTimeout",
            Error::MissingRevision { .. } => "MissingRevision",
            Error::Collision { .. } => "RevisionCollision",
            Error::Refused { .. } => "UpdateRefused",
        }
    }
}

/// Shared state of the CloneSet controller.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Pods carrying the instance-id label.
    pub pods: Store<Pod>,
    /// PVCs carrying the instance-id label.
    pub pvcs: Store<PersistentVolumeClaim>,
    /// All ControllerRevisions.
    pub revisions: Store<ControllerRevision>,
    /// Writes not yet seen in the caches.
    pub expectations: Expectations,
    /// Feature gates.
    pub gates: FeatureGates,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Timeout of each write.
    pub write_timeout: Duration,
    /// Events about CloneSets (`cloneset-controller`).
    pub recorder: crate::events::Recorder,
    /// ImagePullJobs, watched when `PreDownloadImageForInPlaceUpdate` is on.
    pub jobs: Option<Store<ImagePullJob>>,
}

/// Whether `refs` name `uid` as controller.
pub fn owned_by(refs: Option<&[OwnerReference]>, uid: &str) -> bool {
    refs.into_iter()
        .flatten()
        .any(|r| r.uid == uid && r.controller == Some(true))
}

fn now() -> Timestamp {
    Timestamp::now()
}

/// Reconciles one CloneSet.
pub async fn reconcile(cs: Arc<CloneSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let span = info_span!("reconcile", cloneset = %format!("{}/{}", cs.namespace().unwrap_or_default(), cs.name_any()));
    let res = reconcile_inner(&cs, &ctx).instrument(span).await;
    ctx.metrics
        .observe_reconcile(ControllerName::CloneSet, res.is_ok(), started.elapsed());
    res
}

async fn reconcile_inner(cs: &CloneSet, ctx: &Arc<Context>) -> Result<Action, Error> {
    if cs.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    for ready in [
        tokio::time::timeout(Duration::from_secs(10), ctx.pods.wait_until_ready()).await,
        tokio::time::timeout(Duration::from_secs(10), ctx.pvcs.wait_until_ready()).await,
        tokio::time::timeout(Duration::from_secs(10), ctx.revisions.wait_until_ready()).await,
    ] {
        if !matches!(ready, Ok(Ok(()))) {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
    }
    let ns = cs.namespace().unwrap_or_default();
    let name = cs.name_any();
    let key = format!("{ns}/{name}");
    let uid = cs.uid().unwrap_or_default();

    let all_pods = ctx.pods.state();
    let owned: Vec<Arc<Pod>> = all_pods
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| owned_by(p.metadata.owner_references.as_deref(), &uid))
        .cloned()
        .collect();
    let owned = claim_pods(ctx, cs, &all_pods, owned).await?;
    let cache: BTreeMap<String, u64> = owned
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            (
                p.name_any(),
                p.metadata
                    .resource_version
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )
        })
        .collect();
    if !ctx.expectations.satisfied(&key, &cache) {
        tracing::debug!("writes not yet observed; waiting");
        return Ok(Action::requeue(Duration::from_secs(2)));
    }

    let defaulted = defaults::defaulted(cs, !ctx.gates.enabled(gates::TEMPLATE_NO_DEFAULTS));
    let s = Settings::from_cloneset(&defaulted);

    let history: Vec<ControllerRevision> = ctx
        .revisions
        .state()
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(ns.as_str()))
        .filter(|r| owned_by(r.metadata.owner_references.as_deref(), &uid))
        .map(|r| (**r).clone())
        .collect();
    let collision_count = cs
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let update_revision = ensure_revision(ctx, &defaulted, &history, collision_count).await?;
    let mut templates: BTreeMap<String, PodTemplateSpec> = history
        .iter()
        .filter_map(|r| Some((r.name_any(), revision::template_of(r)?)))
        .collect();
    templates.insert(update_revision.clone(), defaulted.spec.template.clone());
    let current_revision = cs
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .filter(|c| templates.contains_key(c))
        .unwrap_or_else(|| update_revision.clone());

    if ctx.jobs.is_some() {
        pre_download(
            ctx,
            &defaulted,
            &s,
            &history,
            &templates,
            &current_revision,
            &update_revision,
        )
        .await;
    }

    let active: Vec<&Pod> = owned
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| crate::pods::is_active(p))
        .collect();
    let pvcs = ctx.pvcs.state();
    let pvc_ids: BTreeSet<String> = pvcs
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| owned_by(p.metadata.owner_references.as_deref(), &uid))
        .filter_map(|p| plan::instance_id(p.metadata.labels.as_ref()).map(str::to_string))
        .collect();
    let mut taken: BTreeSet<String> = owned
        .iter()
        .filter_map(|p| plan::instance_id(p.metadata.labels.as_ref()).map(str::to_string))
        .collect();
    taken.extend(pvc_ids.iter().cloned());

    let t = now();
    let observed = Observed {
        settings: &s,
        pods: active.clone(),
        pvc_instance_ids: pvc_ids,
        current_revision: &current_revision,
        update_revision: &update_revision,
        templates: &templates,
        allow_rollback: ctx.gates.enabled(gates::CLONESET_PARTITION_ROLLBACK),
    };
    let the_plan = plan::plan(&observed, t);
    tracing::debug!(diffs = ?the_plan.diffs, refresh = the_plan.refresh.len(), creates = the_plan.create.len(), deletes = the_plan.delete.len(), updates = the_plan.update.len(), "planned");
    let factory = apply::PodFactory {
        cs: &defaulted,
        templates: &templates,
        short_hash: ctx.gates.enabled(gates::CLONESET_SHORT_HASH),
    };
    let applied = apply::apply(ctx, &defaulted, &factory, &the_plan, &taken, t).await;

    let inputs = status::StatusInputs {
        generation: cs.metadata.generation,
        previous: cs.status.as_ref(),
        update_revision: &update_revision,
        current_revision: &current_revision,
        collision_count,
        label_selector: crate::selector::to_string(&cs.spec.selector),
        scale_error: applied.scale_error.as_ref().map(ToString::to_string),
        update_error: applied.update_error.as_ref().map(ToString::to_string),
    };
    let new_status = status::status(&s, &active, &inputs, t);
    if cs.status.as_ref() != Some(&new_status) {
        write_status(ctx, &ns, &name, &new_status).await?;
    }

    let in_use: BTreeSet<String> = owned
        .iter()
        .map(|p| revision::pod_revision(p).to_string())
        .chain([update_revision.clone(), current_revision.clone()])
        .collect();
    let limit = defaulted.spec.revision_history_limit.unwrap_or(10);
    for old in revision::to_prune(&history, &in_use, limit) {
        let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
        let res = api.delete(&old, &Default::default()).await;
        ctx.metrics
            .observe_write(ControllerName::CloneSet, WriteKind::Revision, res.is_ok());
    }

    if let Some(e) = applied.scale_error.or(applied.update_error) {
        if e.is_retryable() {
            return Err(e);
        }
        warn!(error = %e, "cloneset update refused");
    }
    let mut requeue = the_plan.requeue.unwrap_or(Duration::from_secs(300));
    if !the_plan.is_noop() {
        requeue = requeue.min(Duration::from_secs(5));
    }
    if let Some(deadline) = status::progress_requeue(&s, &new_status, t) {
        requeue = requeue.min(deadline);
    }
    Ok(Action::requeue(requeue))
}

/// Image pre-download for in-place updates (spec 2.9): while the revisions differ, pull the new
/// images on the nodes of the pods still on older revisions; once they agree, remove the jobs.
/// Failures are reported as events and retried on the next reconcile; they never hold the update.
async fn pre_download(
    ctx: &Context,
    cs: &CloneSet,
    s: &Settings,
    history: &[ControllerRevision],
    templates: &BTreeMap<String, PodTemplateSpec>,
    current_revision: &str,
    update_revision: &str,
) {
    let Some(jobs) = &ctx.jobs else { return };
    let uid = cs.uid().unwrap_or_default();
    if current_revision == update_revision {
        let owned = jobs.state();
        if !owned
            .iter()
            .any(|j| owned_by(j.metadata.owner_references.as_deref(), &uid))
        {
            return;
        }
        match predownload::delete_jobs(&ctx.client, &uid, &owned).await {
            Ok(deleted) if !deleted.is_empty() => {
                tracing::debug!(?deleted, "revisions agree; pre-download jobs deleted")
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "deleting pre-download jobs"),
        }
        return;
    }
    // A revision just created is decided once the cache holds it.
    let Some(update_rev) = history.iter().find(|r| r.name_any() == update_revision) else {
        return;
    };
    let (Some(current), Some(update)) = (
        templates.get(current_revision),
        templates.get(update_revision),
    ) else {
        return;
    };
    let status = cs.status.as_ref();
    let updated_ready = status
        .filter(|st| st.update_revision.as_deref() == Some(update_revision))
        .map_or(0, |st| st.updated_ready_replicas);
    let w = predownload::Workload {
        meta: &cs.metadata,
        api_version: "apps.kruise.io/v1alpha1",
        kind: "CloneSet",
        replicas: s.replicas,
        partition: s.partition,
        max_unavailable: s.max_unavailable,
        recreate: s.update_type == settings::UpdateType::ReCreate,
        selector: &cs.spec.selector,
        updated_ready,
    };
    let in_place = crate::inplace::calculate_spec(current, update, update_revision, 0).is_some();
    let decision = predownload::decide(&w, current, update_rev, update, in_place);
    match predownload::sync(&ctx.client, update_rev, decision).await {
        Ok(out) => {
            for (job, image) in out.created {
                ctx.recorder.publish(
                    cs,
                    crate::events::NORMAL,
                    "CreatedImagePullJob",
                    format!("created ImagePullJob {job} for image: {image}"),
                );
            }
            for (job, err) in out.failed {
                ctx.recorder.publish(
                    cs,
                    crate::events::NORMAL,
                    "FailedCreateImagePullJob",
                    format!("failed to create ImagePullJob {job}: {err}"),
                );
            }
            if let Some(why) = out.ignored {
                tracing::debug!(?why, revision = update_revision, "no image pre-download");
            }
        }
        Err(e) => warn!(error = %e, revision = update_revision, "labelling revision for pre-download"),
    }
}

async fn write_status(
    ctx: &Context,
    ns: &str,
    name: &str,
    st: &kruise_api::apps::v1alpha1::cloneset::CloneSetStatus,
) -> Result<(), Error> {
    let api: Api<CloneSet> = Api::namespaced(ctx.client.clone(), ns);
    let mut value = serde_json::to_value(st).unwrap_or_else(|_| json!({}));
    if st.conditions.is_none() {
        value["conditions"] = serde_json::Value::Null;
    }
    let patch = json!({ "status": value });
    let res = tokio::time::timeout(
        ctx.write_timeout,
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)),
    )
    .await;
    let out = match res {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => Ok(()),
        Ok(Err(source)) => Err(Error::Write {
            kind: WriteKind::Status,
            obj: name.to_string(),
            source,
        }),
        Err(_) => Err(Error::Timeout {
            kind: WriteKind::Status,
            obj: name.to_string(),
        }),
    };
    ctx.metrics
        .observe_write(ControllerName::CloneSet, WriteKind::Status, out.is_ok());
    out
}

/// Makes sure a ControllerRevision holds the current template; returns its name.
async fn ensure_revision(
    ctx: &Context,
    cs: &CloneSet,
    history: &[ControllerRevision],
    collision_count: i32,
) -> Result<String, Error> {
    let ns = cs.namespace().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    let data = revision::template_patch(&cs.spec.template);
    let write_err = |obj: &str, source| Error::Write {
        kind: WriteKind::Revision,
        obj: obj.to_string(),
        source,
    };
    match revision::decide(history, &data) {
        RevisionDecision::UseExisting(name) => Ok(name),
        RevisionDecision::Bump { name, number } => {
            let res = api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"revision": number})),
                )
                .await;
            ctx.metrics
                .observe_write(ControllerName::CloneSet, WriteKind::Revision, res.is_ok());
            res.map_err(|e| write_err(&name, e))?;
            Ok(name)
        }
        RevisionDecision::Create { number } => {
            let Some(owner) = cs.controller_owner_ref(&()) else {
                return Err(Error::MissingRevision {
                    revision: "<owner>".into(),
                });
            };
            let labels = cs
                .spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            let cr = revision::new_revision(
                owner,
                &ns,
                &cs.name_any(),
                labels,
                data.clone(),
                number,
                Some(collision_count),
            );
            let name = cr.name_any();
            let res = api.create(&PostParams::default(), &cr).await;
            ctx.metrics
                .observe_write(ControllerName::CloneSet, WriteKind::Revision, res.is_ok());
            match res {
                Ok(_) => Ok(name),
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    let existing = api.get(&name).await.map_err(|e| write_err(&name, e))?;
                    let ours = existing
                        .metadata
                        .owner_references
                        .as_deref()
                        .is_some_and(|r| owned_by(Some(r), &cs.uid().unwrap_or_default()));
                    if ours && revision::same_data(&existing, &data) {
                        return Ok(name);
                    }
                    let cs_api: Api<CloneSet> = Api::namespaced(ctx.client.clone(), &ns);
                    let bump = json!({"status": {"collisionCount": collision_count + 1}});
                    cs_api
                        .patch_status(
                            &cs.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(&bump),
                        )
                        .await
                        .map_err(|e| write_err(&name, e))?;
                    Err(Error::Collision { name })
                }
                Err(e) => Err(write_err(&name, e)),
            }
        }
    }
}

/// Adopts orphans matching the selector and releases owned pods that no longer match (upstream
/// `ClaimPods`); returns the owned pods after both.
async fn claim_pods(
    ctx: &Context,
    cs: &CloneSet,
    all_pods: &[Arc<Pod>],
    owned: Vec<Arc<Pod>>,
) -> Result<Vec<Arc<Pod>>, Error> {
    let ns = cs.namespace().unwrap_or_default();
    let uid = cs.uid().unwrap_or_default();
    let Some(owner) = cs.controller_owner_ref(&()) else {
        return Ok(owned);
    };
    let candidates: Vec<Arc<Pod>> = all_pods
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| {
            crate::pods::is_active(p) || owned_by(p.metadata.owner_references.as_deref(), &uid)
        })
        .cloned()
        .collect();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let cs_api: Api<CloneSet> = Api::namespaced(ctx.client.clone(), &ns);
    let recheck = async {
        match cs_api.get_opt(&cs.name_any()).await {
            Ok(Some(fresh)) => {
                fresh.uid() == cs.uid() && fresh.metadata.deletion_timestamp.is_none()
            }
            _ => false,
        }
    };
    let claimed = controllerref::claim_all(
        &api,
        &candidates,
        &owner,
        &cs.spec.selector,
        cs.metadata.deletion_timestamp.is_some(),
        recheck,
    )
    .await;
    let written = claimed.adopted.len() + claimed.released.len();
    if written > 0 {
        tracing::info!(
            adopted = claimed.adopted.len(),
            released = claimed.released.len(),
            "claimed pods"
        );
    }
    if let Some(source) = claimed.error {
        ctx.metrics
            .observe_write(ControllerName::CloneSet, WriteKind::UpdatePod, false);
        return Err(Error::Write {
            kind: WriteKind::UpdatePod,
            obj: cs.name_any(),
            source,
        });
    }
    let mut out: Vec<Arc<Pod>> = owned
        .into_iter()
        .filter(|p| !claimed.released.contains(&p.name_any()))
        .collect();
    out.extend(claimed.adopted.into_iter().map(Arc::new));
    Ok(out)
}

/// The CloneSets a pod event concerns: its controller if that is a CloneSet, otherwise (an
/// orphan) every CloneSet in its namespace whose selector matches it, which may adopt it.
fn pod_to_clonesets(pod: &Pod, clonesets: &Store<CloneSet>) -> Vec<ObjectRef<CloneSet>> {
    let ns = pod.namespace().unwrap_or_default();
    if let Some(r) = controllerref::controller_of(&pod.metadata) {
        let is_cloneset = r.kind == "CloneSet" && r.api_version.starts_with("apps.kruise.io/");
        return if is_cloneset {
            vec![ObjectRef::new(&r.name).within(&ns)]
        } else {
            Vec::new()
        };
    }
    clonesets
        .state()
        .iter()
        .filter(|cs| cs.namespace().as_deref() == Some(ns.as_str()))
        .filter(|cs| {
            !crate::selector::is_empty(&cs.spec.selector)
                && crate::selector::matches(&cs.spec.selector, pod.metadata.labels.as_ref())
        })
        .map(|cs| ObjectRef::from_obj(cs.as_ref()))
        .collect()
}

/// Requeue policy on errors.
pub fn error_policy(_cs: Arc<CloneSet>, err: &Error, _ctx: Arc<Context>) -> Action {
    warn!(error = %err, reason = err.reason(), "cloneset reconcile failed");
    if err.is_retryable() {
        Action::requeue(Duration::from_secs(2))
    } else {
        Action::requeue(Duration::from_secs(60))
    }
}

/// Settings of the controller loop.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Reconciles running at once.
    pub workers: u16,
    /// Timeout of each write.
    pub write_timeout: Duration,
    /// Expectation timeout.
    pub expectation_timeout: Duration,
}

/// Runs the CloneSet controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    gates: FeatureGates,
    metrics: Arc<Metrics>,
    config: RunConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    // All pods, not only those with an instance id: orphans matching a selector get adopted.
    let selector = watcher::Config::default().labels(INSTANCE_ID_LABEL);
    let (pods, pod_writer) = reflector::store();
    let pod_stream = reflector::reflector(
        pod_writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let (pvcs, pvc_writer) = reflector::store();
    let pvc_stream = reflector::reflector(
        pvc_writer,
        watcher(Api::<PersistentVolumeClaim>::all(client.clone()), selector),
    )
    .default_backoff()
    .touched_objects();
    let (revisions, rev_writer) = reflector::store();
    let rev_stream = reflector::reflector(
        rev_writer,
        watcher(
            Api::<ControllerRevision>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let pre_download = gates.enabled(gates::PRE_DOWNLOAD_IMAGE_FOR_IN_PLACE_UPDATE);
    let (jobs, job_writer) = reflector::store();
    let job_stream = reflector::reflector(
        job_writer,
        watcher(
            Api::<ImagePullJob>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let ctx = Arc::new(Context {
        jobs: pre_download.then_some(jobs),
        client: client.clone(),
        pods,
        pvcs,
        revisions,
        expectations: Expectations::new(config.expectation_timeout),
        gates,
        metrics: metrics.clone(),
        write_timeout: config.write_timeout,
        recorder: crate::events::Recorder::new(client.clone(), "cloneset-controller"),
    });
    let depth = metrics
        .queue_depth
        .get_or_create(&crate::metrics::ControllerLabels {
            controller: ControllerName::CloneSet,
        })
        .clone();
    let controller = Controller::new(Api::<CloneSet>::all(client), watcher::Config::default());
    let clonesets = controller.store();
    controller
        .watches_stream(pod_stream, move |pod| pod_to_clonesets(&pod, &clonesets))
        .owns_stream(pvc_stream)
        .owns_stream(rev_stream)
        .owns_stream(if pre_download {
            job_stream.boxed()
        } else {
            futures::stream::empty().boxed()
        })
        .with_config(ControllerConfig::default().concurrency(config.workers))
        .graceful_shutdown_on(shutdown)
        .run(
            move |cs, ctx| {
                let depth = depth.clone();
                depth.inc();
                async move {
                    let r = reconcile(cs, ctx).await;
                    depth.dec();
                    r
                }
            },
            error_policy,
            ctx,
        )
        .for_each(|_| futures::future::ready(()))
        .await;
}
