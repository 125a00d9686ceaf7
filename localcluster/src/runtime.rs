//! The simulated container runtime of each node: its image cache, pull log, pod sandboxes and
//! containers. The kubelet simulator drives it; the node's CRI endpoint reads and stops it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc;

use crate::latency::LatencyModel;

/// An image in a node's cache.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedImage {
    /// `sha256:<hex>`, stable for a given image reference.
    pub id: String,
    pub size_bytes: u64,
    pub pulled_at: Timestamp,
}

/// One pull, as the CRI simulator's pull log records it.
#[derive(Clone, Debug, PartialEq)]
pub struct PullRecord {
    pub image: String,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub succeeded: bool,
    /// Who pulled: `kubelet` or `cri` (an explicit PullImage call, e.g. from kruise-daemon).
    pub by: &'static str,
}

/// Lifecycle of a simulated container.
#[derive(Clone, Debug, PartialEq)]
pub enum ContainerPhase {
    /// Waiting for its image until the given time.
    Pulling {
        until: Timestamp,
    },
    /// The image cannot be pulled; retried at the given time.
    PullFailed {
        message: String,
        retry_at: Timestamp,
    },
    /// Created, starting until the given time.
    Creating {
        until: Timestamp,
    },
    Running {
        started_at: Timestamp,
    },
    /// Being stopped (kill requested), exits at the given time.
    Stopping {
        until: Timestamp,
        exit_code: i32,
        reason: String,
    },
    Exited {
        exit_code: i32,
        reason: String,
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
    },
}

/// The last termination of a container, reported as `lastState.terminated`.
#[derive(Clone, Debug, PartialEq)]
pub struct Termination {
    pub exit_code: i32,
    pub reason: String,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
    pub container_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContainerRuntime {
    pub name: String,
    /// Runtime container id (64 hex characters); changes on every restart.
    pub id: String,
    pub image: String,
    pub image_id: String,
    pub phase: ContainerPhase,
    pub restart_count: i32,
    pub last_termination: Option<Termination>,
    pub created_at: Timestamp,
    /// Set when something outside the pod spec (a CRI StopContainer) stopped the container.
    pub stopped_externally: bool,
    pub init: bool,
}

impl ContainerRuntime {
    pub fn is_running(&self) -> bool {
        matches!(self.phase, ContainerPhase::Running { .. })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PodRuntime {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub sandbox_id: String,
    pub pod_ip: String,
    pub created_at: Timestamp,
    pub containers: BTreeMap<String, ContainerRuntime>,
    /// Container names in spec order (init containers first).
    pub order: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// The mutable state of one node's runtime.
#[derive(Debug, Default)]
pub struct NodeState {
    pub images: BTreeMap<String, CachedImage>,
    pub pulls: Vec<PullRecord>,
    /// Pods by uid.
    pub pods: BTreeMap<String, PodRuntime>,
    /// Pulls under way: image → when it is fetched. A second pull of the same image joins the
    /// first, as containerd shares one fetch between concurrent pulls of one reference.
    pub in_flight: BTreeMap<String, Timestamp>,
}

impl NodeState {
    /// When a pull of `image` asked for at `now` finishes: joins a pull under way, or starts one.
    pub fn pull_until(&mut self, image: &str, now: Timestamp, model: &LatencyModel) -> Timestamp {
        match self.in_flight.get(image) {
            Some(until) if *until > now => *until,
            _ => {
                let took = SignedDuration::try_from(model.pull_time(image)).unwrap_or_default();
                let until = now + took;
                self.in_flight.insert(image.to_string(), until);
                until
            }
        }
    }

    /// Images whose pull finished by `now` enter the cache, whichever pod or client asked.
    pub fn settle_pulls(&mut self, now: Timestamp, model: &LatencyModel) {
        let done: Vec<(String, Timestamp)> = self
            .in_flight
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(i, u)| (i.clone(), *u))
            .collect();
        for (image, until) in done {
            self.in_flight.remove(&image);
            if crate::latency::is_unpullable(&image) {
                continue;
            }
            self.images.entry(image.clone()).or_insert(CachedImage {
                id: image_id(&image),
                size_bytes: model.image_mb(&image) * 1024 * 1024,
                pulled_at: until,
            });
        }
    }
}

/// A pod whose runtime changed outside the kubelet (e.g. a CRI StopContainer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
}

/// One node's runtime, shared by the kubelet simulator and the CRI endpoint.
#[derive(Debug)]
pub struct NodeRuntime {
    pub node: String,
    pub node_ip: String,
    state: Mutex<NodeState>,
    changes: mpsc::UnboundedSender<PodRef>,
    ready: AtomicBool,
}

impl NodeRuntime {
    pub fn lock(&self) -> MutexGuard<'_, NodeState> {
        // A poisoned lock means a panic mid-update elsewhere; the state is still the best we have.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the kubelet simulator that a pod's runtime changed outside it.
    pub fn notify(&self, pod: PodRef) {
        let _ = self.changes.send(pod);
    }

    /// Whether the node is Ready; pods on a NotReady node report not ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Sets the node's readiness and wakes the kubelet for every pod on it when it changes.
    pub fn set_ready(&self, ready: bool) {
        if self.ready.swap(ready, Ordering::SeqCst) != ready {
            let pods: Vec<PodRef> = self
                .lock()
                .pods
                .values()
                .map(|p| PodRef {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                })
                .collect();
            for p in pods {
                self.notify(p);
            }
        }
    }
}

/// The runtimes of every simulated node, by node name.
#[derive(Debug, Clone)]
pub struct Runtimes {
    nodes: Arc<HashMap<String, Arc<NodeRuntime>>>,
}

impl Runtimes {
    /// Creates runtimes for `nodes` (name, internal IP); returns them and the stream of pods whose
    /// runtime changed outside the kubelet.
    pub fn new(nodes: &[(String, String)]) -> (Runtimes, mpsc::UnboundedReceiver<PodRef>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let nodes = nodes
            .iter()
            .map(|(name, ip)| {
                let rt = NodeRuntime {
                    node: name.clone(),
                    node_ip: ip.clone(),
                    state: Mutex::new(NodeState::default()),
                    changes: tx.clone(),
                    ready: AtomicBool::new(true),
                };
                (name.clone(), Arc::new(rt))
            })
            .collect();
        (
            Runtimes {
                nodes: Arc::new(nodes),
            },
            rx,
        )
    }

    pub fn get(&self, node: &str) -> Option<&Arc<NodeRuntime>> {
        self.nodes.get(node)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<NodeRuntime>> {
        self.nodes.values()
    }
}

/// A stable `sha256:` id for an image reference.
pub fn image_id(image: &str) -> String {
    format!("sha256:{}", hex64(image.as_bytes()))
}

/// The `imageID` kubelet reports: repository digest form.
pub fn image_digest_ref(image: &str) -> String {
    let repo = match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    };
    let repo = repo.split('@').next().unwrap_or(repo);
    format!("{repo}@{}", image_id(image))
}

/// 64 hex characters derived from `seed` (FNV-1a based; only needs to be stable and spread).
pub fn hex64(seed: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0u64..4 {
        for b in seed.iter().copied().chain(round.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// A fresh random container or sandbox id.
pub fn new_id() -> String {
    hex64(uuid::Uuid::new_v4().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_are_stable_and_distinct() {
        assert_eq!(image_id("nginx:1"), image_id("nginx:1"));
        assert_ne!(image_id("nginx:1"), image_id("nginx:2"));
        assert_eq!(image_id("nginx:1").len(), "sha256:".len() + 64);
    }

    #[test]
    fn digest_refs_drop_the_tag_but_keep_registry_ports() {
        assert!(image_digest_ref("example.com/app:v1").starts_with("example.com/app@sha256:"));
        assert!(image_digest_ref("localhost:5000/app").starts_with("localhost:5000/app@sha256:"));
    }
}
