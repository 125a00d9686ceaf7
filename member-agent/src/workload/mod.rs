//! Controller wiring shared by the pod-owning workload controllers (CloneSet and Advanced
//! StatefulSet): the error type, the shared context with its caches, revision bookkeeping, status
//! writes and the controller loop. Each controller keeps only its own observe → plan → apply
//! → status reconcile; [`apply`] holds the pod and claim writes both execute plans with.

pub mod apply;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::NamespaceResourceScope;
use kruise_api::apps::v1alpha1::imagepulljob::ImagePullJob;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::warn;

use crate::expectations::Expectations;
use crate::gates::FeatureGates;
use crate::metrics::{ControllerLabels, ControllerName, Metrics, WriteKind};
use crate::revision::{self, RevisionDecision};

/// Errors of one workload reconcile.
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

    /// Whether this is an API error with HTTP status `code`.
    pub fn is_status(&self, code: u16) -> bool {
        matches!(self, Error::Write { source: kube::Error::Api(s), .. } if s.code == code)
    }
}

/// Shared state of one workload controller.
pub struct Context {
    /// Which controller this is (metrics and logs).
    pub controller: ControllerName,
    /// API client.
    pub client: Client,
    /// Pods carrying the controller's pod label.
    pub pods: Store<Pod>,
    /// PersistentVolumeClaims the controller watches.
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
    /// Events about the workloads.
    pub recorder: crate::events::Recorder,
    /// ImagePullJobs, watched when `PreDownloadImageForInPlaceUpdate` is on.
    pub jobs: Option<Store<ImagePullJob>>,
}

impl Context {
    /// Records the outcome of one write in the metrics.
    pub fn observe_write(&self, kind: WriteKind, ok: bool) {
        self.metrics.observe_write(self.controller, kind, ok);
    }

    /// Waits (up to 10 s each) for the caches to be filled; false when one is not ready yet.
    pub async fn caches_ready(&self) -> bool {
        let wait = Duration::from_secs(10);
        let results = [
            tokio::time::timeout(wait, self.pods.wait_until_ready()).await,
            tokio::time::timeout(wait, self.pvcs.wait_until_ready()).await,
            tokio::time::timeout(wait, self.revisions.wait_until_ready()).await,
        ];
        results.iter().all(|r| matches!(r, Ok(Ok(()))))
    }
}

/// Whether `refs` name `uid` as controller.
pub fn owned_by(refs: Option<&[OwnerReference]>, uid: &str) -> bool {
    refs.into_iter()
        .flatten()
        .any(|r| r.uid == uid && r.controller == Some(true))
}

/// Resource versions of the pods that are not terminating, by name, for
/// [`Expectations::satisfied`].
pub fn resource_versions(owned: &[Arc<Pod>]) -> BTreeMap<String, u64> {
    owned
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let rv = p
                .metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            (p.name_any(), rv)
        })
        .collect()
}

/// The ControllerRevisions of namespace `ns` controlled by `uid`.
pub fn history(ctx: &Context, ns: &str, uid: &str) -> Vec<ControllerRevision> {
    ctx.revisions
        .state()
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(ns))
        .filter(|r| owned_by(r.metadata.owner_references.as_deref(), uid))
        .map(|r| (**r).clone())
        .collect()
}

/// Merge-patches the status subresource of `name` with `status`; a missing object is no error.
pub async fn write_status<K>(
    ctx: &Context,
    ns: &str,
    name: &str,
    status: serde_json::Value,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let patch = json!({ "status": status });
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
    ctx.observe_write(WriteKind::Status, out.is_ok());
    out
}

/// Makes sure a ControllerRevision of `owner` holds `template`; returns its name. A name taken
/// by different data raises `status.collisionCount` of `owner` and fails with
/// [`Error::Collision`], so the next reconcile hashes to a new name.
pub async fn ensure_revision<K>(
    ctx: &Context,
    owner: &K,
    template: &PodTemplateSpec,
    history: &[ControllerRevision],
    collision_count: i32,
) -> Result<String, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let ns = owner.namespace().unwrap_or_default();
    let owner_name = owner.name_any();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    let data = revision::template_patch(template);
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
            ctx.observe_write(WriteKind::Revision, res.is_ok());
            res.map_err(|e| write_err(&name, e))?;
            Ok(name)
        }
        RevisionDecision::Create { number } => {
            let Some(owner_ref) = owner.controller_owner_ref(&()) else {
                return Err(Error::MissingRevision {
                    revision: "<owner>".into(),
                });
            };
            let labels = template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            let cr = revision::new_revision(
                owner_ref,
                &ns,
                &owner_name,
                labels,
                data.clone(),
                number,
                Some(collision_count),
            );
            let name = cr.name_any();
            let res = api.create(&PostParams::default(), &cr).await;
            ctx.observe_write(WriteKind::Revision, res.is_ok());
            match res {
                Ok(_) => Ok(name),
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    let existing = api.get(&name).await.map_err(|e| write_err(&name, e))?;
                    let ours = owned_by(
                        existing.metadata.owner_references.as_deref(),
                        &owner.uid().unwrap_or_default(),
                    );
                    if ours && revision::same_data(&existing, &data) {
                        return Ok(name);
                    }
                    let owners: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
                    let bump = json!({"status": {"collisionCount": collision_count + 1}});
                    owners
                        .patch_status(&owner_name, &PatchParams::default(), &Patch::Merge(&bump))
                        .await
                        .map_err(|e| write_err(&name, e))?;
                    Err(Error::Collision { name })
                }
                Err(e) => Err(write_err(&name, e)),
            }
        }
    }
}

/// Deletes the revisions beyond `limit` that no pod uses (upstream's `truncateHistory`).
pub async fn prune_revisions(
    ctx: &Context,
    ns: &str,
    history: &[ControllerRevision],
    in_use: &BTreeSet<String>,
    limit: i32,
) {
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    for old in revision::to_prune(history, in_use, limit) {
        let res = api.delete(&old, &Default::default()).await;
        ctx.observe_write(WriteKind::Revision, res.is_ok());
    }
}

/// Requeue policy on errors: soon when retrying can help, after a minute otherwise.
pub fn error_policy<K>(_obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(controller = ?ctx.controller, error = %err, reason = err.reason(), "reconcile failed");
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

/// What one controller watches besides its own kind.
#[derive(Clone, Copy)]
pub struct Watches<K: Resource<DynamicType = ()> + 'static> {
    /// Which controller runs.
    pub controller: ControllerName,
    /// Only pods carrying this label are cached (`None`: all pods).
    pub pod_label: Option<&'static str>,
    /// Only claims carrying this label are cached (`None`: all claims).
    pub pvc_label: Option<&'static str>,
    /// `source.component` of the controller's events (e.g. `statefulset-controller`).
    pub component: &'static str,
    /// Which objects a changed pod concerns besides its controller owner (orphans matching a
    /// selector, for adoption); `None`: only the owner.
    pub pod_owners: Option<PodOwners<K>>,
}

/// Maps a changed pod to the objects it concerns, given the cache of those objects.
pub type PodOwners<K> = fn(&Pod, &Store<K>) -> Vec<ObjectRef<K>>;

/// Runs a workload controller for kind `K` until `shutdown` resolves: caches pods, claims and
/// ControllerRevisions, reconciles `K` objects (and the owners of changed children) with
/// `reconcile`, and tracks the queue depth.
pub async fn run<K, R, Fut>(
    client: Client,
    gates: FeatureGates,
    metrics: Arc<Metrics>,
    config: RunConfig,
    watches: Watches<K>,
    reconcile: R,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    R: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let pod_config = match watches.pod_label {
        Some(label) => watcher::Config::default().labels(label),
        None => watcher::Config::default(),
    };
    let (pods, pod_writer) = reflector::store();
    let pod_stream = reflector::reflector(
        pod_writer,
        watcher(Api::<Pod>::all(client.clone()), pod_config),
    )
    .default_backoff()
    .touched_objects();
    let pvc_config = match watches.pvc_label {
        Some(label) => watcher::Config::default().labels(label),
        None => watcher::Config::default(),
    };
    let (pvcs, pvc_writer) = reflector::store();
    let pvc_stream = reflector::reflector(
        pvc_writer,
        watcher(
            Api::<PersistentVolumeClaim>::all(client.clone()),
            pvc_config,
        ),
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
    let (jobs, job_stream) = crate::predownload::job_cache(
        &client,
        gates.enabled(crate::gates::PRE_DOWNLOAD_IMAGE_FOR_IN_PLACE_UPDATE),
    );
    let ctx = Arc::new(Context {
        recorder: crate::events::Recorder::new(client.clone(), watches.component),
        jobs,
        controller: watches.controller,
        client: client.clone(),
        pods,
        pvcs,
        revisions,
        expectations: Expectations::new(config.expectation_timeout),
        gates,
        metrics: metrics.clone(),
        write_timeout: config.write_timeout,
    });
    let depth = metrics
        .queue_depth
        .get_or_create(&ControllerLabels {
            controller: watches.controller,
        })
        .clone();
    let controller = Controller::new(Api::<K>::all(client), watcher::Config::default());
    let controller = match watches.pod_owners {
        Some(owners) => {
            let objects = controller.store();
            controller.watches_stream(pod_stream, move |pod| owners(&pod, &objects))
        }
        None => controller.owns_stream(pod_stream),
    };
    controller
        .owns_stream(pvc_stream)
        .owns_stream(rev_stream)
        .owns_stream(job_stream)
        .with_config(ControllerConfig::default().concurrency(config.workers))
        .graceful_shutdown_on(shutdown)
        .run(
            move |obj, ctx| {
                let depth = depth.clone();
                let reconcile = reconcile.clone();
                depth.inc();
                async move {
                    let r = reconcile(obj, ctx).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn ownership_needs_the_controller_flag() {
        let mut r = OwnerReference {
            uid: "u1".into(),
            controller: Some(true),
            ..Default::default()
        };
        assert!(owned_by(Some(&[r.clone()]), "u1"));
        assert!(!owned_by(Some(&[r.clone()]), "u2"));
        r.controller = None;
        assert!(!owned_by(Some(&[r]), "u1"));
        assert!(!owned_by(None, "u1"));
    }

    #[test]
    fn resource_versions_skip_terminating_pods() {
        let mut a = pod("a", "r", true);
        a.metadata.resource_version = Some("42".into());
        let mut b = pod("b", "r", true);
        b.metadata.resource_version = Some("7".into());
        b.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        let mut c = pod("c", "r", true);
        c.metadata.resource_version = Some("not-a-number".into());
        let rv = resource_versions(&[Arc::new(a), Arc::new(b), Arc::new(c)]);
        assert_eq!(rv, BTreeMap::from([("a".into(), 42), ("c".into(), 0)]));
    }

    #[test]
    fn only_writes_and_revisions_are_retried() {
        let refused = Error::Refused {
            message: "no".into(),
        };
        assert!(!refused.is_retryable());
        assert_eq!(refused.reason(), "UpdateRefused");
        let missing = Error::MissingRevision {
            revision: "r".into(),
        };
        assert!(missing.is_retryable());
        assert!(!missing.is_status(404));
    }
}
