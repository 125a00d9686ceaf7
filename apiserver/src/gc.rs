//! The garbage collector and namespace finalizer that kube-controller-manager runs for a real
//! cluster: dependents of deleted owners go (background), `foregroundDeletion` owners wait for
//! their dependents, `orphan` owners release them, and terminating namespaces are emptied and
//! finalized. Level-triggered: each pass looks at all objects; passes run after store changes
//! and periodically.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tracing::{debug, warn};

use crate::errors::ApiError;
use crate::http::delete::DeleteOptions;
use crate::local::{Gvr, LocalClient};

/// One stored object and the resource it belongs to.
#[derive(Clone, Debug)]
struct Entry {
    group: String,
    version: String,
    plural: String,
    namespaced: bool,
    obj: Value,
}

impl Entry {
    fn gvr(&self) -> Gvr<'_> {
        Gvr::new(&self.group, &self.version, &self.plural)
    }
    fn name(&self) -> &str {
        self.obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    fn namespace(&self) -> Option<&str> {
        self.obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
    fn uid(&self) -> &str {
        self.obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    fn deleting(&self) -> bool {
        self.obj.pointer("/metadata/deletionTimestamp").is_some()
    }
    fn has_finalizer(&self, name: &str) -> bool {
        finalizers(&self.obj).iter().any(|f| f == name)
    }
    fn owner_uids(&self) -> Vec<String> {
        owner_refs(&self.obj)
            .iter()
            .filter_map(|r| r.get("uid").and_then(Value::as_str).map(String::from))
            .collect()
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn owner_refs(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// What one pass decided to do (pure function of the observed objects).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// (index) objects to delete in the background.
    pub delete: Vec<usize>,
    /// (index, owner uid) ownerReferences to strip from dependents of orphaning owners.
    pub orphan: Vec<(usize, String)>,
    /// (index, finalizer) finalizers to remove.
    pub remove_finalizer: Vec<(usize, String)>,
    /// Namespaces (index) to finalize (spec.finalizers emptied).
    pub finalize_namespace: Vec<usize>,
    /// Active namespaces (by name) that lack their `default` ServiceAccount.
    pub default_service_account: Vec<String>,
}

fn plan(entries: &[Entry]) -> Plan {
    let mut plan = Plan::default();
    let by_uid: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.uid(), i))
        .collect();
    let mut dependents: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        for owner in owner_refs(&e.obj) {
            if let Some(uid) = owner.get("uid").and_then(Value::as_str) {
                if let Some(&owner_index) = by_uid.get(uid) {
                    dependents
                        .entry(entries[owner_index].uid())
                        .or_default()
                        .push(i);
                }
            }
        }
    }
    let terminating_namespaces: HashSet<&str> = entries
        .iter()
        .filter(|e| e.group.is_empty() && e.plural == "namespaces" && e.deleting())
        .map(|e| e.name())
        .collect();
    let mut deleted: HashSet<usize> = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let owners = e.owner_uids();
        if !owners.is_empty() && !e.deleting() {
            let live: Vec<&Entry> = owners
                .iter()
                .filter_map(|u| by_uid.get(u.as_str()).map(|&j| &entries[j]))
                .collect();
            let all_gone = live.is_empty();
            let foreground_owner = live
                .iter()
                .any(|o| o.deleting() && o.has_finalizer("foregroundDeletion"));
            if all_gone || foreground_owner {
                deleted.insert(i);
            }
        }
        if e.namespaced
            && !e.deleting()
            && e.namespace()
                .is_some_and(|ns| terminating_namespaces.contains(ns))
        {
            deleted.insert(i);
        }
    }
    for (i, e) in entries.iter().enumerate() {
        if !e.deleting() {
            continue;
        }
        let deps = dependents.get(e.uid()).cloned().unwrap_or_default();
        if e.has_finalizer("orphan") {
            for d in &deps {
                plan.orphan.push((*d, e.uid().to_string()));
            }
            plan.remove_finalizer.push((i, "orphan".into()));
        } else if e.has_finalizer("foregroundDeletion") {
            let blocking = deps.iter().any(|d| {
                owner_refs(&entries[*d].obj).iter().any(|r| {
                    r.get("uid").and_then(Value::as_str) == Some(e.uid())
                        && r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true)
                })
            });
            if !blocking {
                plan.remove_finalizer.push((i, "foregroundDeletion".into()));
            }
        }
        if e.group.is_empty() && e.plural == "namespaces" {
            let remaining = entries
                .iter()
                .any(|o| o.namespaced && o.namespace() == Some(e.name()));
            let pending = e
                .obj
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            if !remaining && pending {
                plan.finalize_namespace.push(i);
            }
        }
    }
    let with_default_sa: HashSet<&str> = entries
        .iter()
        .filter(|e| e.group.is_empty() && e.plural == "serviceaccounts" && e.name() == "default")
        .filter_map(|e| e.namespace())
        .collect();
    plan.default_service_account = entries
        .iter()
        .filter(|e| {
            e.group.is_empty()
                && e.plural == "namespaces"
                && !e.deleting()
                && !with_default_sa.contains(e.name())
        })
        .map(|e| e.name().to_string())
        .collect();
    plan.delete = deleted.into_iter().collect();
    plan.delete.sort_unstable();
    plan
}

/// The collector over one server.
pub struct GarbageCollector {
    client: LocalClient,
    resync: Duration,
}

impl GarbageCollector {
    /// A collector acting through `client`.
    pub fn new(client: LocalClient) -> Self {
        GarbageCollector {
            client,
            resync: Duration::from_secs(5),
        }
    }

    async fn observe(&self) -> Result<Vec<Entry>, ApiError> {
        let registry = &self.client.state().registry;
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        for desc in registry.all() {
            if !seen.insert((desc.group.clone(), desc.plural.clone())) {
                continue;
            }
            let Some(preferred) = registry.preferred(&desc.group, &desc.plural) else {
                continue;
            };
            let gvr = Gvr::new(&preferred.group, &preferred.version, &preferred.plural);
            for obj in self.client.list(gvr, None).await? {
                entries.push(Entry {
                    group: preferred.group.clone(),
                    version: preferred.version.clone(),
                    plural: preferred.plural.clone(),
                    namespaced: preferred.namespaced,
                    obj,
                });
            }
        }
        Ok(entries)
    }

    /// Runs one pass; returns whether it changed anything.
    pub async fn pass(&self) -> Result<bool, ApiError> {
        let entries = self.observe().await?;
        let plan = plan(&entries);
        let changed = !(plan.delete.is_empty()
            && plan.default_service_account.is_empty()
            && plan.orphan.is_empty()
            && plan.remove_finalizer.is_empty()
            && plan.finalize_namespace.is_empty());
        for i in &plan.delete {
            let e = &entries[*i];
            debug!(resource = e.plural, name = e.name(), "garbage collecting");
            match self
                .client
                .delete(e.gvr(), e.namespace(), e.name(), &DeleteOptions::default())
                .await
            {
                Ok(_) | Err(ApiError { code: 404, .. }) => {}
                Err(err) => {
                    warn!(resource = e.plural, name = e.name(), error = %err, "garbage collection delete failed")
                }
            }
        }
        for (i, owner_uid) in &plan.orphan {
            let e = &entries[*i];
            let result = self
                .client
                .update(e.gvr(), e.namespace(), e.name(), false, |current| {
                    let mut next = current.clone();
                    let refs: Vec<Value> = owner_refs(current)
                        .into_iter()
                        .filter(|r| {
                            r.get("uid").and_then(Value::as_str) != Some(owner_uid.as_str())
                        })
                        .collect();
                    next["metadata"]["ownerReferences"] = json!(refs);
                    Ok(next)
                })
                .await;
            if let Err(err) = result {
                warn!(resource = e.plural, name = e.name(), error = %err, "orphaning dependent failed");
            }
        }
        for (i, finalizer) in &plan.remove_finalizer {
            let e = &entries[*i];
            let result = self
                .client
                .update(e.gvr(), e.namespace(), e.name(), false, |current| {
                    let mut next = current.clone();
                    let kept: Vec<String> = finalizers(current)
                        .into_iter()
                        .filter(|f| f != finalizer)
                        .collect();
                    next["metadata"]["finalizers"] = json!(kept);
                    Ok(next)
                })
                .await;
            match result {
                Ok(_) | Err(ApiError { code: 404, .. }) => {}
                Err(err) => {
                    warn!(resource = e.plural, name = e.name(), error = %err, "removing finalizer failed")
                }
            }
        }
        for namespace in &plan.default_service_account {
            let account = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}});
            match self
                .client
                .create(Gvr::core("serviceaccounts"), account)
                .await
            {
                Ok(_)
                | Err(ApiError {
                    code: 409 | 403 | 404,
                    ..
                }) => {}
                Err(err) => {
                    warn!(namespace, error = %err, "creating the default service account failed")
                }
            }
        }
        for i in &plan.finalize_namespace {
            let e = &entries[*i];
            let result = self
                .client
                .update(e.gvr(), None, e.name(), false, |current| {
                    let mut next = current.clone();
                    if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.remove("finalizers");
                    }
                    Ok(next)
                })
                .await;
            match result {
                Ok(_) | Err(ApiError { code: 404, .. }) => {}
                Err(err) => {
                    warn!(namespace = e.name(), error = %err, "finalizing namespace failed")
                }
            }
        }
        Ok(changed)
    }

    /// Runs passes after store changes (debounced) and every resync interval, forever.
    pub async fn run(self: Arc<Self>) {
        let store = self.client.state().store.clone();
        loop {
            let start = store.current_revision().await.unwrap_or(0);
            let mut events = match store.watch("/registry/", start).await {
                Ok(stream) => stream,
                Err(err) => {
                    warn!(error = %err, "garbage collector cannot watch; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // Passes that acted are followed by another at once (cascades), but a bounded
            // number of times so an action that keeps failing cannot spin.
            let mut immediate = 0;
            loop {
                match self.pass().await {
                    Ok(true) if immediate < 10 => {
                        immediate += 1;
                        continue;
                    }
                    Ok(_) => {}
                    Err(err) => warn!(error = %err, "garbage collection pass failed"),
                }
                immediate = 0;
                let next = tokio::time::timeout(self.resync, events.next()).await;
                match next {
                    Ok(Some(Ok(_))) | Err(_) => {
                        // Let a burst of writes settle before looking again.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        while let Ok(Some(Ok(_))) =
                            tokio::time::timeout(Duration::from_millis(1), events.next()).await
                        {
                        }
                    }
                    Ok(Some(Err(_))) | Ok(None) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(plural: &str, namespaced: bool, obj: Value) -> Entry {
        Entry {
            group: String::new(),
            version: "v1".into(),
            plural: plural.into(),
            namespaced,
            obj,
        }
    }

    #[test]
    fn dependents_of_missing_owners_are_deleted() {
        let entries = vec![
            entry(
                "configmaps",
                true,
                json!({"metadata": {"name": "dep", "namespace": "d", "uid": "2", "ownerReferences": [{"uid": "1", "name": "owner"}]}}),
            ),
            entry(
                "configmaps",
                true,
                json!({"metadata": {"name": "other", "namespace": "d", "uid": "3", "ownerReferences": [{"uid": "4"}]}}),
            ),
            entry(
                "configmaps",
                true,
                json!({"metadata": {"name": "owner2", "namespace": "d", "uid": "4"}}),
            ),
        ];
        assert_eq!(plan(&entries).delete, vec![0]);
    }

    #[test]
    fn foreground_and_orphan_finalizers() {
        let owner = json!({"metadata": {"name": "o", "namespace": "d", "uid": "1", "deletionTimestamp": "t", "finalizers": ["foregroundDeletion"]}});
        let dep = json!({"metadata": {"name": "c", "namespace": "d", "uid": "2", "ownerReferences": [{"uid": "1", "blockOwnerDeletion": true}]}});
        let p = plan(&[
            entry("configmaps", true, owner.clone()),
            entry("configmaps", true, dep),
        ]);
        assert_eq!(p.delete, vec![1]);
        assert!(
            p.remove_finalizer.is_empty(),
            "blocked while the dependent exists"
        );
        let p = plan(&[entry("configmaps", true, owner)]);
        assert_eq!(
            p.remove_finalizer,
            vec![(0, "foregroundDeletion".to_string())]
        );
        let orphaning = json!({"metadata": {"name": "o", "namespace": "d", "uid": "1", "deletionTimestamp": "t", "finalizers": ["orphan"]}});
        let dep = json!({"metadata": {"name": "c", "namespace": "d", "uid": "2", "ownerReferences": [{"uid": "1"}]}});
        let p = plan(&[
            entry("configmaps", true, orphaning),
            entry("configmaps", true, dep),
        ]);
        assert!(p.delete.is_empty());
        assert_eq!(p.orphan, vec![(1, "1".to_string())]);
        assert_eq!(p.remove_finalizer, vec![(0, "orphan".to_string())]);
    }

    #[test]
    fn terminating_namespace_is_emptied_then_finalized() {
        let ns = json!({"metadata": {"name": "gone", "uid": "n", "deletionTimestamp": "t"}, "spec": {"finalizers": ["kubernetes"]}});
        let inside = json!({"metadata": {"name": "x", "namespace": "gone", "uid": "c"}});
        let p = plan(&[
            entry("namespaces", false, ns.clone()),
            entry("configmaps", true, inside),
        ]);
        assert_eq!(p.delete, vec![1]);
        assert!(p.finalize_namespace.is_empty());
        let p = plan(&[entry("namespaces", false, ns)]);
        assert_eq!(p.finalize_namespace, vec![0]);
        assert!(
            p.default_service_account.is_empty(),
            "no service account for a terminating namespace"
        );
    }

    #[test]
    fn namespaces_get_a_default_service_account() {
        let ns = json!({"metadata": {"name": "apps", "uid": "n"}});
        let p = plan(&[entry("namespaces", false, ns.clone())]);
        assert_eq!(p.default_service_account, vec!["apps".to_string()]);
        let sa = json!({"metadata": {"name": "default", "namespace": "apps", "uid": "s"}});
        let p = plan(&[
            entry("namespaces", false, ns),
            entry("serviceaccounts", true, sa),
        ]);
        assert!(p.default_service_account.is_empty());
    }
}
