//! The kubelet simulator: drives every pod bound to a simulated node through its runtime
//! (pulls, starts, readiness, in-place restarts, job exits, graceful termination) and reports
//! pod status and Events as kubelet does.

pub mod plan;
pub mod status;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::Client;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::events::EventRecorder;
use crate::latency::LatencyModel;
use crate::runtime::{PodRef, Runtimes};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("updating status of pod {ns}/{name}: {source}")]
    UpdateStatus {
        ns: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting terminated pod {ns}/{name}: {source}")]
    DeletePod {
        ns: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::UpdateStatus { .. } => true,
            Error::DeletePod { .. } => true,
        }
    }
}

struct Context {
    client: Client,
    runtimes: Runtimes,
    model: LatencyModel,
    recorder: EventRecorder,
    next_ip: AtomicU32,
}

impl Context {
    fn allocate_ip(&self) -> String {
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
        format!(
            "10.{}.{}.{}",
            244 + (n >> 16) % 12,
            (n >> 8) & 0xff,
            (n & 0xff).max(1)
        )
    }
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Context>) -> Result<Action, Error> {
    tracing::trace!(pod = ?pod.metadata.name, rv = ?pod.metadata.resource_version, "kubelet step");
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
        return Ok(Action::await_change());
    };
    let Some(rt) = ctx.runtimes.get(node) else {
        return Ok(Action::await_change());
    };
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let now = Timestamp::now();

    let (step, status) = {
        let mut state = rt.lock();
        let step = plan::advance(&pod, &mut state, || ctx.allocate_ip(), now, &ctx.model);
        let status = status::pod_status(
            &pod,
            state.pods.get(&uid),
            &rt.node_ip,
            rt.is_ready(),
            now,
            &ctx.model,
        );
        (step, status)
    };
    let recorder = ctx.recorder.on_host(node);
    for e in &step.events {
        recorder.emit(&pod, e.warning, e.reason, &e.message);
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    if step.delete_pod {
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(source) => return Err(Error::DeletePod { ns, name, source }),
        }
        return Ok(Action::await_change());
    }
    if pod.status.as_ref() != Some(&status) {
        // As kubelet's status manager does: a strategic merge patch of the status, so conditions
        // merge by type and those owned by others (readiness gates) are left to their owners,
        // with no resourceVersion to conflict on while the watch catches up.
        let patch = Patch::Strategic(status::status_patch(&uid, &status));
        match api
            .patch_status(&name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {
                return Ok(Action::await_change())
            }
            Err(source) => return Err(Error::UpdateStatus { ns, name, source }),
        }
    }
    Ok(match step.next_wakeup {
        Some(at) => Action::requeue(
            Duration::try_from(at.duration_since(Timestamp::now()))
                .unwrap_or_default()
                .max(Duration::from_millis(5)),
        ),
        None => Action::requeue(Duration::from_secs(30)),
    })
}

fn error_policy(_pod: Arc<Pod>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%err, "kubelet simulator step failed");
    Action::requeue(if err.is_retryable() {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(5)
    })
}

/// Runs the kubelet simulator for every node in `runtimes` until the task is dropped.
/// `changes` carries pods whose runtime changed outside the kubelet (CRI StopContainer).
pub async fn run(
    client: Client,
    runtimes: Runtimes,
    model: LatencyModel,
    changes: mpsc::UnboundedReceiver<PodRef>,
) {
    let ctx = Arc::new(Context {
        recorder: EventRecorder::new(client.clone(), "kubelet", None),
        client: client.clone(),
        runtimes: runtimes.clone(),
        model,
        next_ip: AtomicU32::new(2),
    });
    let triggers = UnboundedReceiverStream::new(changes)
        .map(|p| ObjectRef::<Pod>::new(&p.name).within(&p.namespace));
    let controller =
        Controller::new(Api::<Pod>::all(client), watcher::Config::default()).reconcile_on(triggers);
    let store = controller.store();
    // Pods deleted from the API without passing through graceful termination leave runtime state
    // behind; sweep it like kubelet's pod GC.
    let sweeper = {
        let runtimes = runtimes.clone();
        tokio::spawn(async move {
            if store.wait_until_ready().await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let live: std::collections::HashSet<String> = store
                    .state()
                    .iter()
                    .filter_map(|p| p.metadata.uid.clone())
                    .collect();
                for rt in runtimes.iter() {
                    rt.lock().pods.retain(|uid, _| live.contains(uid));
                }
            }
        })
    };
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(err) = res {
                tracing::debug!(%err, "kubelet simulator reconcile error");
            }
        })
        .await;
    sweeper.abort();
}
