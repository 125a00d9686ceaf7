//! Image pre-download: watches this node's NodeImage, pulls every listed tag through the CRI
//! ImageService with bounded concurrency, retries with backoff within the per-attempt timeout and
//! the active deadline, and reports per-tag status as upstream kruise-daemon does.

pub mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::nodeimage::{NodeImage, NodeImageSpec};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use kube::Client;
use tokio::sync::mpsc;

use crate::auth;
use crate::cri::CriClients;
use crate::metrics::Metrics;
use plan::{Desired, Phase, TagKey, Task};

/// The result of one pull task.
struct Finished {
    key: TagKey,
    version: i64,
    result: Result<String, String>,
}

/// Pulls the images of one node's NodeImage.
pub struct ImagePuller {
    pub client: Client,
    pub cri: CriClients,
    pub node: String,
    pub max_workers: usize,
    pub metrics: Arc<Metrics>,
}

impl ImagePuller {
    /// Runs until the watch ends (it does not, under normal operation).
    pub async fn run(self) {
        let api: Api<NodeImage> = Api::all(self.client.clone());
        let cfg = watcher::Config::default().fields(&format!("metadata.name={}", self.node));
        let mut events = Box::pin(watcher::watcher(api.clone(), cfg));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Finished>();
        let mut spec: Option<NodeImageSpec> = None;
        let mut tasks: BTreeMap<TagKey, Task> = BTreeMap::new();
        let mut running = 0usize;
        let mut reported = None;
        loop {
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(watcher::Event::Apply(ni) | watcher::Event::InitApply(ni))) => spec = Some(ni.spec.clone()),
                    Some(Ok(watcher::Event::Delete(_))) => { spec = None; tasks.clear(); reported = None; }
                    Some(Ok(_)) => {}
                    Some(Err(err)) => { tracing::warn!(%err, "NodeImage watch failed; retrying"); tokio::time::sleep(Duration::from_secs(1)).await; }
                    None => return,
                },
                Some(done) = done_rx.recv() => {
                    running = running.saturating_sub(1);
                    if let Some(t) = tasks.get_mut(&done.key).filter(|t| t.version == done.version) {
                        let now = Timestamp::now();
                        t.completion_time = Some(now);
                        match done.result {
                            Ok(image_id) => {
                                self.metrics.pulls_succeeded.inc();
                                *t = Task { phase: Phase::Succeeded, progress: 100, image_id: Some(image_id), message: Some("image pull completed".into()), ..t.clone() };
                            }
                            Err(message) => {
                                self.metrics.pulls_failed.inc();
                                *t = Task { phase: Phase::Failed, message: Some(message), ..t.clone() };
                            }
                        }
                    }
                }
            }
            let Some(current) = spec.as_ref() else {
                continue;
            };
            let desired = plan::desired(current);
            let start = plan::sync_tasks(
                &desired,
                &mut tasks,
                self.max_workers.saturating_sub(running),
            );
            for d in start {
                running += 1;
                self.metrics.pulls_started.inc();
                if let Some(t) = tasks.get_mut(&d.key) {
                    t.phase = Phase::Pulling;
                    t.start_time = Some(Timestamp::now());
                }
                let (cri, client, tx, metrics) = (
                    self.cri.clone(),
                    self.client.clone(),
                    done_tx.clone(),
                    self.metrics.clone(),
                );
                tokio::spawn(async move {
                    let result = pull(&cri, &client, &d, &metrics).await;
                    let _ = tx.send(Finished {
                        key: d.key.clone(),
                        version: d.version,
                        result,
                    });
                });
            }
            let status = plan::status(&desired, &tasks, Timestamp::now());
            let comparable = (
                status.desired,
                status.succeeded,
                status.failed,
                status.pulling,
                status.waiting,
                status.image_statuses.clone(),
            );
            if reported.as_ref() != Some(&comparable) {
                let patch = serde_json::json!([{"op": "add", "path": "/status", "value": status}]);
                let patch: json_patch::Patch = match serde_json::from_value(patch) {
                    Ok(p) => p,
                    Err(err) => {
                        tracing::error!(%err, "building status patch");
                        continue;
                    }
                };
                match api
                    .patch_status(
                        &self.node,
                        &PatchParams::default(),
                        &Patch::<()>::Json(patch),
                    )
                    .await
                {
                    Ok(_) => reported = Some(comparable),
                    Err(err) => {
                        tracing::warn!(%err, node = %self.node, "writing NodeImage status failed")
                    }
                }
            }
        }
    }
}

/// Pull secrets resolved to CRI auth for `image`.
async fn auth_for(client: &Client, d: &Desired) -> Option<cri::AuthConfig> {
    for r in &d.pull_secrets {
        let (Some(ns), Some(name)) = (r.namespace.as_deref(), r.name.as_deref()) else {
            continue;
        };
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        match secrets.get_opt(name).await {
            Ok(Some(s)) => {
                if let Some(a) =
                    auth::docker_config_of(&s).and_then(|cfg| auth::auth_for(&d.key.image, &cfg))
                {
                    return Some(a);
                }
            }
            Ok(None) => tracing::warn!(secret = %format!("{ns}/{name}"), "pull secret not found"),
            Err(err) => tracing::warn!(%err, "reading pull secret failed"),
        }
    }
    None
}

/// One task: retries up to the backoff limit, each attempt within the timeout, all within the
/// active deadline. Returns the image id or the last error.
async fn pull(
    cri: &CriClients,
    client: &Client,
    d: &Desired,
    metrics: &Metrics,
) -> Result<String, String> {
    let reference = d.key.reference();
    let spec = Some(cri::ImageSpec {
        image: reference.clone(),
        ..Default::default()
    });
    let mut images = cri.images.clone();
    if !d.always {
        if let Ok(st) = images
            .image_status(cri::ImageStatusRequest {
                image: spec.clone(),
                verbose: false,
            })
            .await
        {
            if let Some(img) = st.into_inner().image {
                return Ok(img.id);
            }
        }
    }
    let auth = auth_for(client, d).await;
    let attempts = async {
        let mut last = String::new();
        for attempt in 0..=d.backoff_limit {
            if attempt > 0 {
                tokio::time::sleep(plan::backoff(attempt)).await;
            }
            let req = cri::PullImageRequest {
                image: spec.clone(),
                auth: auth.clone(),
                sandbox_config: None,
            };
            match tokio::time::timeout(d.timeout, images.pull_image(req)).await {
                Ok(Ok(resp)) => {
                    let image_ref = resp.into_inner().image_ref;
                    if let Ok(st) = images
                        .image_status(cri::ImageStatusRequest {
                            image: spec.clone(),
                            verbose: false,
                        })
                        .await
                    {
                        if let Some(img) = st.into_inner().image {
                            metrics.pulled_bytes.inc_by(img.size);
                        }
                    }
                    return Ok(image_ref);
                }
                Ok(Err(status)) => {
                    last = format!("failed to pull image {reference}: {}", status.message())
                }
                Err(_) => {
                    last = format!(
                        "pulling image {reference} timed out after {}s",
                        d.timeout.as_secs()
                    )
                }
            }
            tracing::info!(image = %reference, attempt, error = %last, "image pull attempt failed");
        }
        Err(format!(
            "{last} (back-off limit {} reached)",
            d.backoff_limit
        ))
    };
    match d.active_deadline {
        Some(deadline) => tokio::time::timeout(deadline, attempts)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "pulling image {reference} exceeded the active deadline of {}s",
                    deadline.as_secs()
                ))
            }),
        None => attempts.await,
    }
}
