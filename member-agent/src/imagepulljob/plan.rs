//! Pure planning of one ImagePullJob: which nodes it targets, how far each node got (from the
//! NodeImage spec and status), which nodes receive the tag next, and how a NodeImage spec changes
//! when the tag is added or released (spec section 10.1).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::imagepulljob::{ImagePullJob, ImagePullJobTemplate};
use kruise_api::apps::v1alpha1::nodeimage::{
    ImageSpec, ImageTagPullPolicy, ImageTagSpec, NodeImage, NodeImageSpec, ReferenceObject,
};
use kube::ResourceExt;

/// Upstream's per-attempt pull timeout default.
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 600;
/// Upstream's retry default.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 3;
/// Nodes pulling at once when `parallelism` is unset.
pub const DEFAULT_PARALLELISM: i32 = 1;
/// `completionPolicy.type` that never completes.
pub const NEVER: &str = "Never";
/// Seconds a finished tag entry stays on a node beyond the job's own TTL (upstream's
/// `--default-ttlseconds-for-always-nodeimage`).
pub const DEFAULT_TTL_SECONDS_FOR_ALWAYS: i64 = 300;

/// An image reference split into the NodeImage key (repository) and the tag entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Repository with registry, e.g. `docker.io/library/nginx`.
    pub name: String,
    /// Tag, or `sha256:...` for a digest reference.
    pub tag: String,
}

/// Splits `image` like upstream's `NormalizeImageRefToNameTag`: Docker Hub short names gain
/// `docker.io/` (and `library/`), a missing tag becomes `latest`. `None` for an empty or
/// malformed reference.
pub fn split_image(image: &str) -> Option<ImageRef> {
    let image = image.trim();
    if image.is_empty() || image.contains(char::is_whitespace) {
        return None;
    }
    let (repo, tag) = if let Some((repo, digest)) = image.split_once('@') {
        (repo, digest.to_string())
    } else {
        let last_slash = image.rfind('/').map_or(0, |i| i + 1);
        match image[last_slash..].rfind(':') {
            Some(i) => (
                &image[..last_slash + i],
                image[last_slash + i + 1..].to_string(),
            ),
            None => (image, "latest".to_string()),
        }
    };
    if repo.is_empty() || tag.is_empty() || repo.ends_with('/') || repo.starts_with('/') {
        return None;
    }
    let first = repo.split('/').next().unwrap_or_default();
    let has_registry =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let name = if has_registry {
        repo.to_string()
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    Some(ImageRef { name, tag })
}

/// The nodes a job targets: `selector.names`, a node label selector, or the nodes of the pods
/// matching `podSelector`; no selector means every node. Nodes being deleted are skipped.
pub fn target_nodes(
    template: &ImagePullJobTemplate,
    nodes: &[&Node],
    pods: &[&Pod],
) -> BTreeSet<String> {
    let alive = nodes
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none());
    if let Some(ps) = &template.pod_selector {
        let sel = LabelSelector {
            match_labels: ps.match_labels.clone(),
            match_expressions: ps.match_expressions.clone(),
        };
        let pod_nodes: BTreeSet<String> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| crate::selector::matches(&sel, p.metadata.labels.as_ref()))
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect();
        return alive
            .map(|n| n.name_any())
            .filter(|n| pod_nodes.contains(n))
            .collect();
    }
    match &template.selector {
        Some(s) if s.names.as_ref().is_some_and(|n| !n.is_empty()) => {
            let names: BTreeSet<&String> = s.names.iter().flatten().collect();
            alive
                .map(|n| n.name_any())
                .filter(|n| names.contains(n))
                .collect()
        }
        Some(s) => {
            let sel = LabelSelector {
                match_labels: s.match_labels.clone(),
                match_expressions: s.match_expressions.clone(),
            };
            alive
                .filter(|n| crate::selector::matches(&sel, n.metadata.labels.as_ref()))
                .map(|n| n.name_any())
                .collect()
        }
        None => alive.map(|n| n.name_any()).collect(),
    }
}

/// Where one node stands for this job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeProgress {
    /// The NodeImage does not carry the job's tag entry (or lacks its secrets) yet.
    NotSynced,
    /// The entry is there; the daemon has not finished it.
    Pulling,
    /// Pulled.
    Succeeded,
    /// Failed after the retries.
    Failed,
}

/// How far `ni` got with `job`'s image, by the tag entry the job owns and the status of the same
/// version.
pub fn progress(
    ni: &NodeImage,
    image: &ImageRef,
    job_uid: &str,
    secrets: &[ReferenceObject],
) -> NodeProgress {
    let Some(spec) = ni.spec.images.as_ref().and_then(|m| m.get(&image.name)) else {
        return NodeProgress::NotSynced;
    };
    let have = spec.pull_secrets.as_deref().unwrap_or_default();
    if secrets.iter().any(|s| !have.contains(s)) {
        return NodeProgress::NotSynced;
    }
    let version = spec
        .tags
        .iter()
        .find(|t| t.tag == image.tag && owned(t, job_uid))
        .map(|t| t.version.unwrap_or(0));
    let Some(version) = version else {
        return NodeProgress::NotSynced;
    };
    let status = ni
        .status
        .as_ref()
        .and_then(|s| s.image_statuses.as_ref())
        .and_then(|m| m.get(&image.name))
        .and_then(|s| s.tags.iter().find(|t| t.tag == image.tag));
    match status {
        Some(t) if t.version.unwrap_or(0) == version => match t.phase.as_str() {
            "Succeeded" => NodeProgress::Succeeded,
            "Failed" => NodeProgress::Failed,
            _ => NodeProgress::Pulling,
        },
        _ => NodeProgress::Pulling,
    }
}

fn owned(tag: &ImageTagSpec, uid: &str) -> bool {
    tag.owner_references
        .iter()
        .flatten()
        .any(|r| r.uid.as_deref() == Some(uid))
}

/// Nodes grouped by [`NodeProgress`], each list sorted by node name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Without the tag entry yet.
    pub not_synced: Vec<String>,
    /// Pulling.
    pub pulling: Vec<String>,
    /// Done.
    pub succeeded: Vec<String>,
    /// Failed.
    pub failed: Vec<String>,
}

impl Progress {
    /// Groups `(node, progress)` pairs.
    pub fn collect(items: impl IntoIterator<Item = (String, NodeProgress)>) -> Progress {
        let mut p = Progress::default();
        for (node, np) in items {
            match np {
                NodeProgress::NotSynced => p.not_synced.push(node),
                NodeProgress::Pulling => p.pulling.push(node),
                NodeProgress::Succeeded => p.succeeded.push(node),
                NodeProgress::Failed => p.failed.push(node),
            }
        }
        for v in [
            &mut p.not_synced,
            &mut p.pulling,
            &mut p.succeeded,
            &mut p.failed,
        ] {
            v.sort();
        }
        p
    }
}

/// The job's `parallelism` as a count (an unset value is 1; a string that is not a number is 0,
/// which the webhook rejects anyway).
pub fn parallelism(template: &ImagePullJobTemplate) -> usize {
    match &template.parallelism {
        None => DEFAULT_PARALLELISM as usize,
        Some(IntOrString::Int(i)) => (*i).max(0) as usize,
        Some(IntOrString::String(s)) => s.parse::<i32>().map_or(0, |i| i.max(0) as usize),
    }
}

/// The nodes to receive the tag entry this round: at most `parallelism - pulling`, in name order.
pub fn next_nodes(parallelism: usize, progress: &Progress) -> Vec<String> {
    let room = parallelism.saturating_sub(progress.pulling.len());
    progress.not_synced.iter().take(room).cloned().collect()
}

/// The tag pull policy written for the job (per-attempt timeout, retries, and the lifetime of the
/// finished entry on the node).
pub fn tag_pull_policy(job: &ImagePullJob) -> ImageTagPullPolicy {
    let t = &job.spec.template;
    let timeout = t
        .pull_policy
        .as_ref()
        .and_then(|p| p.timeout_seconds)
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let backoff = t
        .pull_policy
        .as_ref()
        .and_then(|p| p.backoff_limit)
        .unwrap_or(DEFAULT_BACKOFF_LIMIT);
    let cp = &t.completion_policy;
    let never = cp.type_.as_deref() == Some(NEVER);
    let (ttl, deadline) = if never {
        (24 * 3600, i64::from(timeout).max(1800))
    } else {
        let ttl = cp
            .ttl_seconds_after_finished
            .map(i64::from)
            .or(cp.active_deadline_seconds)
            .unwrap_or(i64::from(timeout) * i64::from(backoff.max(1)));
        (
            ttl + DEFAULT_TTL_SECONDS_FOR_ALWAYS,
            cp.active_deadline_seconds.unwrap_or(0),
        )
    };
    ImageTagPullPolicy {
        timeout_seconds: Some(timeout),
        backoff_limit: Some(backoff),
        ttl_seconds_after_finished: Some(i32::try_from(ttl).unwrap_or(i32::MAX)),
        active_deadline_seconds: (deadline > 0).then_some(deadline),
    }
}

/// The reference a tag entry holds to its job.
pub fn owner_reference(job: &ImagePullJob) -> ObjectReference {
    ObjectReference {
        api_version: Some("apps.kruise.io/v1alpha1".into()),
        kind: Some("ImagePullJob".into()),
        namespace: job.namespace(),
        name: Some(job.name_any()),
        uid: job.uid(),
        ..Default::default()
    }
}

/// The job's pull secrets as NodeImage references (in the job's namespace, where the daemon reads them).
pub fn secret_refs(job: &ImagePullJob) -> Vec<ReferenceObject> {
    job.spec
        .template
        .pull_secrets
        .iter()
        .flatten()
        .map(|s| ReferenceObject {
            namespace: job.namespace(),
            name: Some(s.clone()),
        })
        .collect()
}

/// `spec` with the job's tag entry added (or the job added as an owner of an existing entry of
/// the same tag, with the version raised to start a new pull). `None` when nothing changes.
pub fn with_tag(
    spec: &NodeImageSpec,
    ni_status_version: Option<i64>,
    job: &ImagePullJob,
    image: &ImageRef,
    now: Timestamp,
) -> Option<NodeImageSpec> {
    let uid = job.uid().unwrap_or_default();
    let mut out = spec.clone();
    let images = out.images.get_or_insert_with(BTreeMap::new);
    let entry: &mut ImageSpec = images.entry(image.name.clone()).or_default();
    let before = entry.clone();
    if job.spec.template.sandbox_config.is_some() {
        entry.sandbox_config = job.spec.template.sandbox_config.clone();
    }
    for s in secret_refs(job) {
        let list = entry.pull_secrets.get_or_insert_with(Vec::new);
        if !list.contains(&s) {
            list.push(s);
        }
    }
    let policy = tag_pull_policy(job);
    let pull_policy = job.spec.template.image_pull_policy.clone();
    match entry.tags.iter_mut().find(|t| t.tag == image.tag) {
        Some(t) if owned(t, &uid) => {}
        Some(t) => {
            t.version = Some(t.version.unwrap_or(0) + 1);
            t.owner_references
                .get_or_insert_with(Vec::new)
                .push(owner_reference(job));
            t.created_at = Some(Time(now));
            t.image_pull_policy = pull_policy;
            t.pull_policy = Some(policy);
        }
        None => entry.tags.push(ImageTagSpec {
            tag: image.tag.clone(),
            created_at: Some(Time(now)),
            pull_policy: Some(policy),
            owner_references: Some(vec![owner_reference(job)]),
            version: Some(ni_status_version.map_or(0, |v| v + 1)),
            image_pull_policy: pull_policy,
        }),
    }
    entry.tags.sort_by(|a, b| a.tag.cmp(&b.tag));
    (*entry != before).then_some(out)
}

/// The version the daemon last reported for `image`'s tag on this node, if any.
pub fn status_version(ni: &NodeImage, image: &ImageRef) -> Option<i64> {
    ni.status
        .as_ref()?
        .image_statuses
        .as_ref()?
        .get(&image.name)?
        .tags
        .iter()
        .find(|t| t.tag == image.tag)
        .map(|t| t.version.unwrap_or(0))
}

/// `spec` without any reference to the owner `uid`: tag entries left without owners are
/// dropped, and images left without tags too. `None` when nothing changes.
pub fn without_owner(spec: &NodeImageSpec, uid: &str) -> Option<NodeImageSpec> {
    let mut out = spec.clone();
    let mut changed = false;
    if let Some(images) = out.images.as_mut() {
        for img in images.values_mut() {
            img.tags.retain_mut(|t| {
                let Some(refs) = t.owner_references.as_mut() else {
                    return true;
                };
                let n = refs.len();
                refs.retain(|r| r.uid.as_deref() != Some(uid));
                if refs.len() == n {
                    return true;
                }
                changed = true;
                !refs.is_empty()
            });
        }
        images.retain(|_, img| !img.tags.is_empty());
    }
    changed.then_some(out)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
