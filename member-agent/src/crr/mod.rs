//! The ContainerRecreateRequest controller (manager side of spec section 11.4): observe the
//! request and its pod → [`plan::decide`] → one write → requeue. The node side (stopping
//! containers through CRI) is kruise-daemon's; the admission webhook is [`webhook`].

pub mod plan;
pub mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::containerrecreaterequest::{
    ContainerRecreateRequest, ACTIVE_LABEL,
};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tracing::{info, info_span, warn, Instrument};

use plan::Decision;

/// Errors of one ContainerRecreateRequest reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A read or write failed.
    #[error("{what} {obj}: {source}")]
    Api {
        /// What was read or written.
        what: &'static str,
        /// Object name.
        obj: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A call did not finish in time.
    #[error("{what} {obj}: timed out")]
    Timeout {
        /// What was read or written.
        what: &'static str,
        /// Object name.
        obj: String,
    },
}

impl Error {
    /// Whether retrying can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { .. } => true,
            Error::Timeout { .. } => true,
        }
    }
}

/// Shared state of the controller.
pub struct Context {
    /// API client.
    pub client: Client,
    /// How long a request may stay without a phase before it fails (upstream: one minute).
    pub daemon_timeout: Duration,
    /// Timeout of each call.
    pub write_timeout: Duration,
}

/// Settings of the controller loop.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Reconciles running at once.
    pub workers: u16,
    /// Timeout of each call.
    pub write_timeout: Duration,
    /// See [`Context::daemon_timeout`].
    pub daemon_timeout: Duration,
}

async fn call<T>(
    ctx: &Context,
    what: &'static str,
    obj: &str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<Option<T>, Error> {
    match tokio::time::timeout(ctx.write_timeout, fut).await {
        Ok(Ok(v)) => Ok(Some(v)),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => Ok(None),
        Ok(Err(source)) => Err(Error::Api {
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

/// Reconciles one request.
pub async fn reconcile(
    crr: Arc<ContainerRecreateRequest>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let span = info_span!("reconcile", crr = %format!("{}/{}", crr.namespace().unwrap_or_default(), crr.name_any()));
    reconcile_inner(&crr, &ctx).instrument(span).await
}

async fn reconcile_inner(crr: &ContainerRecreateRequest, ctx: &Context) -> Result<Action, Error> {
    let ns = crr.namespace().unwrap_or_default();
    let name = crr.name_any();
    let api: Api<ContainerRecreateRequest> = Api::namespaced(ctx.client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    if crr.metadata.deletion_timestamp.is_some() {
        if crr.finalizers().iter().any(|f| f == plan::UNREADY_ACQUIRED) {
            set_pod_ready(ctx, &pods, &crr.spec.pod_name, true).await?;
            remove_finalizer(ctx, &api, crr).await?;
        }
        return Ok(Action::await_change());
    }
    let pod = call(
        ctx,
        "get Pod",
        &crr.spec.pod_name,
        pods.get_opt(&crr.spec.pod_name),
    )
    .await?
    .flatten();
    let now = Timestamp::now();
    match plan::decide(crr, pod.as_ref(), now, ctx.daemon_timeout) {
        Decision::Label(labels) => {
            let patch = json!({"metadata": {"labels": labels}});
            call(
                ctx,
                "label",
                &name,
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .await?;
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Decision::Complete(message) => {
            info!(%message, "completing the request");
            let patch = json!({"status": {"phase": plan::COMPLETED, "message": message, "completionTime": Time(now)}});
            call(
                ctx,
                "complete",
                &name,
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .await?;
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Decision::AcquireUnready => {
            if let Some(p) = &pod {
                if plan::has_kruise_readiness_gate(p) {
                    set_pod_ready(ctx, &pods, &crr.spec.pod_name, false).await?;
                }
            }
            let mut finalizers = crr.finalizers().to_vec();
            finalizers.push(plan::UNREADY_ACQUIRED.to_string());
            let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": crr.resource_version(),
                "annotations": {plan::UNREADY_ACQUIRED: Time(now)}}});
            call(
                ctx,
                "acquire unready",
                &name,
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .await?;
            Ok(Action::requeue(Duration::from_millis(200)))
        }
        Decision::Finish {
            drop_active,
            release_unready,
            ttl_left,
        } => {
            if release_unready {
                set_pod_ready(ctx, &pods, &crr.spec.pod_name, true).await?;
                remove_finalizer(ctx, &api, crr).await?;
            }
            if drop_active {
                let patch = json!({"metadata": {"labels": {ACTIVE_LABEL: null}}});
                call(
                    ctx,
                    "drop active label",
                    &name,
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
                )
                .await?;
            }
            match ttl_left {
                Some(left) if left.is_zero() => {
                    info!("deleting the finished request (ttlSecondsAfterFinished)");
                    call(
                        ctx,
                        "delete",
                        &name,
                        api.delete(&name, &DeleteParams::background()),
                    )
                    .await?;
                    Ok(Action::await_change())
                }
                Some(left) => Ok(Action::requeue(left)),
                None => Ok(Action::await_change()),
            }
        }
        Decision::Wait(after) => {
            if let (Some(p), true) = (
                &pod,
                crr.status
                    .as_ref()
                    .is_some_and(|s| s.phase == plan::RECREATING),
            ) {
                let value = plan::container_statuses(crr, p);
                if crr.annotations().get(plan::SYNC_CONTAINER_STATUSES) != Some(&value) {
                    let patch = json!({"metadata": {"annotations": {plan::SYNC_CONTAINER_STATUSES: value}}});
                    call(
                        ctx,
                        "sync statuses",
                        &name,
                        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
                    )
                    .await?;
                }
            }
            Ok(Action::requeue(after))
        }
    }
}

async fn remove_finalizer(
    ctx: &Context,
    api: &Api<ContainerRecreateRequest>,
    crr: &ContainerRecreateRequest,
) -> Result<(), Error> {
    let finalizers: Vec<String> = crr
        .finalizers()
        .iter()
        .filter(|f| *f != plan::UNREADY_ACQUIRED)
        .cloned()
        .collect();
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": crr.resource_version()}});
    call(
        ctx,
        "release unready",
        &crr.name_any(),
        api.patch(
            &crr.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        ),
    )
    .await?;
    Ok(())
}

/// Sets the pod's `KruisePodReady` condition (strategic merge on `status.conditions` by type).
async fn set_pod_ready(
    ctx: &Context,
    pods: &Api<Pod>,
    name: &str,
    ready: bool,
) -> Result<(), Error> {
    let cond = json!({"type": plan::KRUISE_POD_READY, "status": if ready { "True" } else { "False" },
        "lastTransitionTime": Time(Timestamp::now()),
        "message": if ready { "" } else { "ContainerRecreateRequest: not ready during recreation" }});
    let patch = json!({"status": {"conditions": [cond]}});
    call(
        ctx,
        "pod readiness",
        name,
        pods.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch)),
    )
    .await?;
    Ok(())
}

/// Requeue policy on errors.
pub fn error_policy(
    _crr: Arc<ContainerRecreateRequest>,
    err: &Error,
    _ctx: Arc<Context>,
) -> Action {
    warn!(error = %err, retryable = err.is_retryable(), "containerrecreaterequest reconcile failed");
    Action::requeue(Duration::from_secs(1))
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: RunConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let ctx = Arc::new(Context {
        client: client.clone(),
        daemon_timeout: config.daemon_timeout,
        write_timeout: config.write_timeout,
    });
    Controller::new(
        Api::<ContainerRecreateRequest>::all(client),
        watcher::Config::default(),
    )
    .with_config(ControllerConfig::default().concurrency(config.workers))
    .graceful_shutdown_on(shutdown)
    .run(reconcile, error_policy, ctx)
    .for_each(|_| futures::future::ready(()))
    .await;
}
