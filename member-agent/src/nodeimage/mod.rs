//! The NodeImage controller: keeps one NodeImage per Node (same name, the Node's labels), deletes
//! it with the Node, and drops tag entries that expired or lost their jobs. It works on the whole
//! set at once ([`plan::plan`]), woken by any Node, NodeImage or ImagePullJob change and every few
//! seconds.

pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::imagepulljob::ImagePullJob;
use kruise_api::apps::v1alpha1::nodeimage::{NodeImage, NodeImageSpec};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;
use tracing::{info, warn};

/// How often the controller re-plans without being woken (TTL expiry needs the clock).
const RESYNC: Duration = Duration::from_secs(5);

/// Errors of one NodeImage round.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A write to the API server failed.
    #[error("{what} NodeImage {name}: {source}")]
    Write {
        /// What was written.
        what: &'static str,
        /// NodeImage name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A write did not finish in time.
    #[error("{what} NodeImage {name}: timed out")]
    Timeout {
        /// What was written.
        what: &'static str,
        /// NodeImage name.
        name: String,
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
}

struct Stores {
    nodes: Store<Node>,
    images: Store<NodeImage>,
    jobs: Store<ImagePullJob>,
}

fn spawn_watch<S, T>(stream: S, wake: std::sync::Arc<Notify>)
where
    S: Stream<Item = Result<T, watcher::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while stream.next().await.is_some() {
            wake.notify_one();
        }
    });
}

async fn write<T>(
    what: &'static str,
    name: &str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<(), Error> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 || s.code == 409 => Ok(()),
        Ok(Err(source)) => Err(Error::Write {
            what,
            name: name.to_string(),
            source,
        }),
        Err(_) => Err(Error::Timeout {
            what,
            name: name.to_string(),
        }),
    }
}

async fn apply(
    client: &Client,
    stores: &Stores,
    p: &plan::Plan,
    timeout: Duration,
) -> Result<(), Error> {
    let api: Api<NodeImage> = Api::all(client.clone());
    for (name, labels) in &p.create {
        let mut ni = NodeImage::new(name, NodeImageSpec::default());
        ni.metadata.labels = Some(labels.clone());
        info!(nodeimage = %name, "creating NodeImage");
        write(
            "create",
            name,
            timeout,
            api.create(&PostParams::default(), &ni),
        )
        .await?;
    }
    for (name, labels) in &p.relabel {
        let mut patch: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        if let Some(ni) = stores.images.get(&reflector::ObjectRef::new(name)) {
            for k in ni.labels().keys() {
                patch.insert(k.clone(), serde_json::Value::Null);
            }
        }
        for (k, v) in labels {
            patch.insert(k.clone(), json!(v));
        }
        let body = json!({"metadata": {"labels": patch}});
        write(
            "relabel",
            name,
            timeout,
            api.patch(name, &PatchParams::default(), &Patch::Merge(&body)),
        )
        .await?;
    }
    for name in &p.delete {
        info!(nodeimage = %name, "deleting NodeImage of a removed node");
        write(
            "delete",
            name,
            timeout,
            api.delete(name, &DeleteParams::default()),
        )
        .await?;
    }
    for (name, spec) in &p.prune {
        let Some(current) = stores.images.get(&reflector::ObjectRef::new(name)) else {
            continue;
        };
        let mut obj = (*current).clone();
        obj.spec = spec.clone();
        obj.status = None;
        write(
            "prune",
            name,
            timeout,
            api.replace(name, &PostParams::default(), &obj),
        )
        .await?;
    }
    Ok(())
}

/// Runs the NodeImage controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    write_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let wake = std::sync::Arc::new(Notify::new());
    let (nodes, w) = reflector::store();
    spawn_watch(
        reflector::reflector(
            w,
            watcher(Api::<Node>::all(client.clone()), watcher::Config::default()),
        )
        .default_backoff(),
        wake.clone(),
    );
    let (images, w) = reflector::store();
    spawn_watch(
        reflector::reflector(
            w,
            watcher(
                Api::<NodeImage>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff(),
        wake.clone(),
    );
    let (jobs, w) = reflector::store();
    spawn_watch(
        reflector::reflector(
            w,
            watcher(
                Api::<ImagePullJob>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff(),
        wake.clone(),
    );
    let stores = Stores {
        nodes,
        images,
        jobs,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let ready = async {
            stores.nodes.wait_until_ready().await?;
            stores.images.wait_until_ready().await?;
            stores.jobs.wait_until_ready().await
        };
        tokio::select! {
            _ = &mut shutdown => return,
            r = ready => if r.is_err() { return },
        }
        let nodes = stores.nodes.state();
        let images = stores.images.state();
        let live: BTreeSet<String> = stores.jobs.state().iter().filter_map(|j| j.uid()).collect();
        let p = plan::plan(
            &nodes.iter().map(|n| n.as_ref()).collect::<Vec<_>>(),
            &images.iter().map(|n| n.as_ref()).collect::<Vec<_>>(),
            &live,
            Timestamp::now(),
        );
        let mut pause = RESYNC;
        if !p.is_noop() {
            if let Err(e) = apply(&client, &stores, &p, write_timeout).await {
                warn!(error = %e, retryable = e.is_retryable(), "NodeImage sync failed");
            }
            // Let the caches catch up with our writes before planning again.
            pause = Duration::from_millis(300);
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = wake.notified() => tokio::time::sleep(Duration::from_millis(50)).await,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
