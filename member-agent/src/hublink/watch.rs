//! Change notifications for the workloads the link applied, so their status reaches the hub
//! within moments of a change instead of at the next periodic sweep.
//!
//! One watch per applied workload kind (every object the link created carries the Work
//! annotation, which names the Work to report) and one watch of Pods (a pod change marks every
//! Work of its namespace, since pods change the unschedulable count and the ready counts before
//! the workload's controller writes its status). Changes only mark Works; the link coalesces
//! them and reports at most once per debounce window.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::debug;

use super::apply::WORK_ANNOTATION;

/// What changed in the member cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Changed {
    /// The workload created for this Work (`namespace/name`) changed.
    Work(String),
    /// A pod of this namespace changed.
    Namespace(String),
}

/// Marks collected since the link last drained them, and the wake-up for the link.
#[derive(Default)]
pub struct Marks {
    pending: Mutex<HashSet<Changed>>,
    notify: Notify,
}

impl Marks {
    /// Records a change and wakes the link.
    pub fn mark(&self, change: Changed) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(change);
        }
        self.notify.notify_one();
    }

    /// Waits until something was marked (a mark made while nobody waited is not lost).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    /// Takes every mark so far.
    pub fn drain(&self) -> HashSet<Changed> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }
}

/// The Works to re-read for a set of changes: the named ones and every Work whose workload is in
/// a namespace where pods changed. `works` maps Work keys to their workload's namespace.
pub fn affected<'a>(
    changes: &HashSet<Changed>,
    works: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Vec<String> {
    let namespaces: HashSet<&str> = changes
        .iter()
        .filter_map(|c| match c {
            Changed::Namespace(ns) => Some(ns.as_str()),
            Changed::Work(_) => None,
        })
        .collect();
    let named: HashSet<&str> = changes
        .iter()
        .filter_map(|c| match c {
            Changed::Work(w) => Some(w.as_str()),
            Changed::Namespace(_) => None,
        })
        .collect();
    let mut out: Vec<String> = works
        .into_iter()
        .filter(|(key, ns)| named.contains(key.as_str()) || namespaces.contains(ns.as_str()))
        .map(|(key, _)| key.clone())
        .collect();
    out.sort();
    out
}

/// The running watches; they stop when this is dropped.
pub struct Watches {
    client: Client,
    marks: Arc<Marks>,
    kinds: HashMap<(String, String), JoinHandle<()>>,
    pods: JoinHandle<()>,
}

impl Watches {
    /// Starts the Pod watch; workload kinds are added with [`Watches::ensure`].
    pub fn new(client: Client) -> Self {
        let marks = Arc::new(Marks::default());
        let pods = tokio::spawn({
            let (api, marks) = (Api::<Pod>::all(client.clone()), marks.clone());
            async move {
                let mut events = watcher(api, watcher::Config::default())
                    .default_backoff()
                    .touched_objects()
                    .boxed();
                while let Some(event) = events.next().await {
                    match event {
                        Ok(pod) => {
                            if let Some(ns) = pod.meta().namespace.clone() {
                                marks.mark(Changed::Namespace(ns));
                            }
                        }
                        Err(e) => debug!(error = %e, "pod watch interrupted"),
                    }
                }
            }
        });
        Watches {
            client,
            marks,
            kinds: HashMap::new(),
            pods,
        }
    }

    /// Where changes are marked.
    pub fn marks(&self) -> Arc<Marks> {
        self.marks.clone()
    }

    /// Watches the workload kind `resource` (once per kind).
    pub fn ensure(&mut self, resource: &ApiResource) {
        let key = (resource.api_version.clone(), resource.kind.clone());
        if self.kinds.get(&key).is_some_and(|h| !h.is_finished()) {
            return;
        }
        let api = Api::<DynamicObject>::all_with(self.client.clone(), resource);
        let marks = self.marks.clone();
        let kind = resource.kind.clone();
        let handle = tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default())
                .default_backoff()
                .touched_objects()
                .boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(obj) => {
                        if let Some(work) = obj.annotations().get(WORK_ANNOTATION) {
                            marks.mark(Changed::Work(work.clone()));
                        }
                    }
                    Err(e) => debug!(kind, error = %e, "workload watch interrupted"),
                }
            }
        });
        self.kinds.insert(key, handle);
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        self.pods.abort();
        for handle in self.kinds.values() {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_select_named_works_and_works_of_namespaces_with_pod_changes() {
        let works: HashMap<String, String> = [
            ("hub/a-c1", "apps"),
            ("hub/b-c1", "web"),
            ("hub/c-c1", "web"),
            ("hub/d-c1", "batch"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let changes: HashSet<Changed> = [
            Changed::Work("hub/a-c1".into()),
            Changed::Namespace("web".into()),
            Changed::Work("hub/gone".into()),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            affected(&changes, &works),
            vec!["hub/a-c1", "hub/b-c1", "hub/c-c1"]
        );
        assert!(affected(&HashSet::new(), &works).is_empty());
    }

    #[tokio::test]
    async fn marks_coalesce_and_wake_a_later_waiter() {
        let marks = Marks::default();
        marks.mark(Changed::Work("ns/w".into()));
        marks.mark(Changed::Work("ns/w".into()));
        marks.mark(Changed::Namespace("ns".into()));
        tokio::time::timeout(std::time::Duration::from_secs(1), marks.changed())
            .await
            .expect("a mark made before waiting wakes the waiter");
        assert_eq!(marks.drain().len(), 2);
        assert!(marks.drain().is_empty());
    }
}
