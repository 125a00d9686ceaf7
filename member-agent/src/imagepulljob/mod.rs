//! The ImagePullJob controller (spec section 10.1): resolve the target nodes → [`plan`] which
//! nodes get the image's tag entry in their NodeImage (at most `parallelism` pulling at once) →
//! [`apply`] the NodeImage writes → [`status::status`] from the NodeImage statuses the daemons
//! write. The ImageListPullJob controller lives in [`list`].

pub mod apply;
pub mod list;
pub mod plan;
pub mod status;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::imagepulljob::ImagePullJob;
use kruise_api::apps::v1alpha1::nodeimage::NodeImage;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use tracing::{info, info_span, warn, Instrument};

use crate::expectations::Expectations;
use plan::NodeProgress;

/// Finalizer held while the job runs, so a deleted job releases its NodeImage entries first.
pub const PROTECTION_FINALIZER: &str = "apps.kruise.io/deletion-protection";

/// Feature gate of the image pre-download controllers.
pub const IMAGE_PULL_JOB_GATE: &str = "ImagePullJobGate";

/// NodeImage writes in flight at once within one reconcile.
const WRITE_CONCURRENCY: usize = 16;

/// How often a running job re-reads node and pod changes that do not wake it.
const RUNNING_RESYNC: Duration = Duration::from_secs(2);

/// Errors of one ImagePullJob reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A write to the API server failed.
    #[error("{what} {obj}: {source}")]
    Write {
        /// What was written.
        what: &'static str,
        /// Object name.
        obj: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A write did not finish in time.
    #[error("{what} {obj}: timed out")]
    Timeout {
        /// What was written.
        what: &'static str,
        /// Object name.
        obj: String,
    },
}

impl Error {
    /// Whether retrying can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Write { .. } => true,
            Error::Timeout { .. } => true,
        }
    }

    /// Short reason for logs and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Write { .. } => "WriteFailed",
            Error::Timeout { .. } => "WriteTimeout",
        }
    }
}

/// Shared state of the ImagePullJob controller.
pub struct Context {
    /// API client.
    pub client: Client,
    /// All nodes.
    pub nodes: Store<Node>,
    /// All pods (for `podSelector`).
    pub pods: Store<Pod>,
    /// All NodeImages.
    pub node_images: Store<NodeImage>,
    /// NodeImage writes not yet seen in the cache, per job.
    pub expectations: Expectations,
    /// Timeout of each write.
    pub write_timeout: Duration,
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

/// Reconciles one ImagePullJob.
pub async fn reconcile(job: Arc<ImagePullJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = info_span!("reconcile", imagepulljob = %format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any()));
    reconcile_inner(&job, &ctx).instrument(span).await
}

async fn reconcile_inner(job: &ImagePullJob, ctx: &Context) -> Result<Action, Error> {
    for ready in [
        tokio::time::timeout(Duration::from_secs(10), ctx.nodes.wait_until_ready()).await,
        tokio::time::timeout(Duration::from_secs(10), ctx.pods.wait_until_ready()).await,
        tokio::time::timeout(Duration::from_secs(10), ctx.node_images.wait_until_ready()).await,
    ] {
        if !matches!(ready, Ok(Ok(()))) {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
    }
    let key = format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any());
    let uid = job.uid().unwrap_or_default();
    let now = Timestamp::now();
    if job.metadata.deletion_timestamp.is_some() {
        apply::release(ctx, &uid).await?;
        apply::set_finalizer(ctx, job, false).await?;
        ctx.expectations.forget(&key);
        return Ok(Action::await_change());
    }
    if job
        .status
        .as_ref()
        .and_then(|s| s.completion_time.as_ref())
        .is_some()
    {
        apply::set_finalizer(ctx, job, false).await?;
        return match status::ttl_left(job, now) {
            Some(left) if left.is_zero() => {
                info!("deleting the finished job (ttlSecondsAfterFinished)");
                apply::delete_job(ctx, job).await?;
                Ok(Action::await_change())
            }
            Some(left) => Ok(Action::requeue(left)),
            None => Ok(Action::await_change()),
        };
    }
    let Some(image) = plan::split_image(&job.spec.image) else {
        let mut st = job.status.clone().unwrap_or_default();
        let msg = format!("invalid image {}", job.spec.image);
        if st.message.as_deref() != Some(msg.as_str()) {
            st.message = Some(msg);
            apply::write_status(ctx, job, &st).await?;
        }
        return Ok(Action::await_change());
    };
    apply::set_finalizer(ctx, job, true).await?;

    let node_images: BTreeMap<String, Arc<NodeImage>> = ctx
        .node_images
        .state()
        .into_iter()
        .map(|ni| (ni.name_any(), ni))
        .collect();
    let cache: BTreeMap<String, u64> = node_images
        .iter()
        .map(|(n, ni)| {
            let rv = ni
                .metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse().ok());
            (n.clone(), rv.unwrap_or(0))
        })
        .collect();
    if !ctx.expectations.satisfied(&key, &cache) {
        return Ok(Action::requeue(Duration::from_millis(300)));
    }
    let nodes = ctx.nodes.state();
    let pods = ctx.pods.state();
    let node_refs: Vec<&Node> = nodes.iter().map(|n| n.as_ref()).collect();
    let pod_refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
    let targets = plan::target_nodes(&job.spec.template, &node_refs, &pod_refs);
    // The NodeImage controller creates one per node; wait for it rather than under-count.
    if targets.iter().any(|n| !node_images.contains_key(n)) {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let secrets = plan::secret_refs(job);
    let progress = plan::Progress::collect(targets.iter().map(|n| {
        let p = node_images.get(n).map_or(NodeProgress::NotSynced, |ni| {
            plan::progress(ni, &image, &uid, &secrets)
        });
        (n.clone(), p)
    }));
    let new_status = status::status(job, &progress, now);
    if new_status.completion_time.is_none() {
        let next = plan::next_nodes(plan::parallelism(&job.spec.template), &progress);
        let mut writes = Vec::new();
        for node in &next {
            if let Some(ni) = node_images.get(node).cloned() {
                writes.push(add_tag_owned(ctx, key.clone(), job, ni, image.clone(), now));
            }
        }
        let results: Vec<Result<(), Error>> = futures::stream::iter(writes)
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, Error>>()?;
    }
    if status::differs(job.status.as_ref(), &new_status) {
        apply::write_status(ctx, job, &new_status).await?;
    }
    if new_status.completion_time.is_some() {
        return Ok(Action::requeue(Duration::from_millis(100)));
    }
    let mut requeue = RUNNING_RESYNC;
    if let (Some(deadline), Some(start)) = (
        job.spec.template.completion_policy.active_deadline_seconds,
        new_status.start_time.as_ref(),
    ) {
        let left = deadline as f64 - now.duration_since(start.0).as_secs_f64();
        requeue = requeue.min(Duration::from_secs_f64(left.max(0.1)));
    }
    Ok(Action::requeue(requeue))
}

async fn add_tag_owned(
    ctx: &Context,
    key: String,
    job: &ImagePullJob,
    ni: Arc<NodeImage>,
    image: plan::ImageRef,
    now: Timestamp,
) -> Result<(), Error> {
    apply::add_tag(ctx, &key, job, &ni, &image, now).await
}

/// Requeue policy on errors.
pub fn error_policy(_job: Arc<ImagePullJob>, err: &Error, _ctx: Arc<Context>) -> Action {
    warn!(error = %err, reason = err.reason(), "imagepulljob reconcile failed");
    if err.is_retryable() {
        Action::requeue(Duration::from_secs(1))
    } else {
        Action::requeue(Duration::from_secs(60))
    }
}

/// The jobs a NodeImage's tag entries point to.
fn owners_of(ni: &NodeImage) -> Vec<ObjectRef<ImagePullJob>> {
    ni.spec
        .images
        .iter()
        .flatten()
        .flat_map(|(_, img)| img.tags.iter())
        .flat_map(|t| t.owner_references.iter().flatten())
        .filter(|r| r.kind.as_deref() == Some("ImagePullJob"))
        .filter_map(|r| {
            Some(
                ObjectRef::new(r.name.as_deref()?)
                    .within(r.namespace.as_deref().unwrap_or_default()),
            )
        })
        .collect()
}

/// Runs the ImagePullJob controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: RunConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (nodes, node_writer) = reflector::store();
    let node_stream = reflector::reflector(
        node_writer,
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects()
    .for_each(|_| futures::future::ready(()));
    tokio::spawn(node_stream);
    let (pods, pod_writer) = reflector::store();
    let pod_stream = reflector::reflector(
        pod_writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects()
    .for_each(|_| futures::future::ready(()));
    tokio::spawn(pod_stream);
    let (node_images, ni_writer) = reflector::store();
    let ni_stream = reflector::reflector(
        ni_writer,
        watcher(
            Api::<NodeImage>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let ctx = Arc::new(Context {
        client: client.clone(),
        nodes,
        pods,
        node_images,
        expectations: Expectations::new(config.expectation_timeout),
        write_timeout: config.write_timeout,
    });
    Controller::new(Api::<ImagePullJob>::all(client), watcher::Config::default())
        .watches_stream(ni_stream, |ni| owners_of(&ni))
        .with_config(ControllerConfig::default().concurrency(config.workers))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

async fn until_shutdown(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Starts the controllers that work with kruise-daemon — `nodeimage`, `imagepulljob`,
/// `imagelistpulljob` (gates `KruiseDaemon` and `ImagePullJobGate`) and
/// `containerrecreaterequest` (gate `KruiseDaemon`) — when enabled in `args`.
pub fn spawn_enabled(
    client: &Client,
    args: &crate::cli::ControllerArgs,
    shutdown: &tokio::sync::watch::Receiver<bool>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) {
    let gates = &args.feature_gates;
    let daemon = gates.enabled(crate::crr::webhook::KRUISE_DAEMON_GATE);
    let pull = daemon && gates.enabled(IMAGE_PULL_JOB_GATE);
    let config = RunConfig {
        workers: args.workers.max(1),
        write_timeout: Duration::from_millis(args.write_timeout_ms.max(1)),
        expectation_timeout: Duration::from_secs(args.expectation_timeout_seconds),
    };
    if pull && args.enabled("nodeimage") {
        info!("starting the nodeimage controller");
        let stop = until_shutdown(shutdown.clone());
        tasks.push(tokio::spawn(crate::nodeimage::run(
            client.clone(),
            config.write_timeout,
            stop,
        )));
    }
    if pull && args.enabled("imagepulljob") {
        info!("starting the imagepulljob controller");
        let stop = until_shutdown(shutdown.clone());
        tasks.push(tokio::spawn(run(client.clone(), config.clone(), stop)));
    }
    if pull && args.enabled("imagelistpulljob") {
        info!("starting the imagelistpulljob controller");
        let stop = until_shutdown(shutdown.clone());
        tasks.push(tokio::spawn(list::run(
            client.clone(),
            config.clone(),
            stop,
        )));
    }
    if daemon && args.enabled("containerrecreaterequest") {
        info!("starting the containerrecreaterequest controller");
        let crr = crate::crr::RunConfig {
            workers: config.workers,
            write_timeout: config.write_timeout,
            daemon_timeout: Duration::from_secs(args.crr_daemon_timeout_seconds.max(1)),
        };
        let stop = until_shutdown(shutdown.clone());
        tasks.push(tokio::spawn(crate::crr::run(client.clone(), crr, stop)));
    }
}
