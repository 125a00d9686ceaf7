//! Pure bookkeeping of image pull tasks: what the NodeImage asks for, which tasks to start, and
//! the status to report.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::nodeimage::{
    ImageStatus, ImageTagStatus, NodeImageSpec, NodeImageStatus, ReferenceObject, SyncStatus,
};

/// Upstream's per-attempt pull timeout default.
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 600;
/// Upstream's retry default.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 3;

/// One image tag the node must pull.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagKey {
    pub image: String,
    pub tag: String,
}

impl TagKey {
    /// The reference to pull: `image:tag`, or `image@sha256:...` for digests.
    pub fn reference(&self) -> String {
        if self.tag.contains(':') {
            format!("{}@{}", self.image, self.tag)
        } else {
            format!("{}:{}", self.image, self.tag)
        }
    }
}

/// What the spec asks for one tag.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub key: TagKey,
    pub version: i64,
    pub timeout: Duration,
    pub backoff_limit: u32,
    pub active_deadline: Option<Duration>,
    /// `Always` pulls even when the image is present.
    pub always: bool,
    pub pull_secrets: Vec<ReferenceObject>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Pulling,
    Succeeded,
    Failed,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "Waiting",
            Phase::Pulling => "Pulling",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }
}

/// The daemon's record of one tag's pull.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub version: i64,
    pub phase: Phase,
    pub progress: i32,
    pub start_time: Option<Timestamp>,
    pub completion_time: Option<Timestamp>,
    pub image_id: Option<String>,
    pub message: Option<String>,
}

impl Task {
    pub fn waiting(version: i64) -> Task {
        Task {
            version,
            phase: Phase::Waiting,
            progress: 0,
            start_time: None,
            completion_time: None,
            image_id: None,
            message: None,
        }
    }
}

/// Every tag in the NodeImage spec, in name order.
pub fn desired(spec: &NodeImageSpec) -> Vec<Desired> {
    let mut out = Vec::new();
    for (image, ispec) in spec.images.iter().flatten() {
        for t in &ispec.tags {
            let policy = t.pull_policy.clone().unwrap_or_default();
            out.push(Desired {
                key: TagKey {
                    image: image.clone(),
                    tag: t.tag.clone(),
                },
                version: t.version.unwrap_or(0),
                timeout: Duration::from_secs(
                    policy
                        .timeout_seconds
                        .unwrap_or(DEFAULT_TIMEOUT_SECONDS)
                        .max(1) as u64,
                ),
                backoff_limit: policy.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT).max(0) as u32,
                active_deadline: policy
                    .active_deadline_seconds
                    .filter(|s| *s > 0)
                    .map(|s| Duration::from_secs(s as u64)),
                always: t.image_pull_policy.as_deref() == Some("Always"),
                pull_secrets: ispec.pull_secrets.clone().unwrap_or_default(),
            });
        }
    }
    out
}

/// Brings `tasks` in line with `desired`: new tags (or new versions) wait, removed tags go.
/// Returns the tags to start now, at most `free_workers`, oldest waiting first (spec order).
pub fn sync_tasks(
    desired: &[Desired],
    tasks: &mut BTreeMap<TagKey, Task>,
    free_workers: usize,
) -> Vec<Desired> {
    tasks.retain(|k, _| desired.iter().any(|d| &d.key == k));
    for d in desired {
        let stale = tasks.get(&d.key).is_none_or(|t| t.version != d.version);
        if stale && tasks.get(&d.key).is_none_or(|t| t.phase != Phase::Pulling) {
            tasks.insert(d.key.clone(), Task::waiting(d.version));
        }
    }
    desired
        .iter()
        .filter(|d| tasks.get(&d.key).is_some_and(|t| t.phase == Phase::Waiting))
        .take(free_workers)
        .cloned()
        .collect()
}

/// The NodeImage status for the current tasks.
pub fn status(
    desired: &[Desired],
    tasks: &BTreeMap<TagKey, Task>,
    now: Timestamp,
) -> NodeImageStatus {
    let mut st = NodeImageStatus {
        desired: desired.len() as i32,
        ..Default::default()
    };
    let (mut succeeded, mut failed, mut pulling, mut waiting) = (0, 0, 0, 0);
    let mut statuses: BTreeMap<String, ImageStatus> = BTreeMap::new();
    for d in desired {
        let Some(t) = tasks.get(&d.key) else { continue };
        match t.phase {
            Phase::Succeeded => succeeded += 1,
            Phase::Failed => failed += 1,
            Phase::Pulling => pulling += 1,
            Phase::Waiting => waiting += 1,
        }
        statuses
            .entry(d.key.image.clone())
            .or_default()
            .tags
            .push(ImageTagStatus {
                tag: d.key.tag.clone(),
                phase: t.phase.as_str().to_string(),
                progress: Some(t.progress),
                start_time: t.start_time.map(Time),
                completion_time: t.completion_time.map(Time),
                version: Some(t.version),
                image_id: t.image_id.clone(),
                message: t.message.clone(),
            });
    }
    st.succeeded = Some(succeeded);
    st.failed = Some(failed);
    st.pulling = Some(pulling);
    st.waiting = Some(waiting);
    st.image_statuses = Some(statuses);
    st.first_sync_status = Some(SyncStatus {
        sync_at: Some(Time(now)),
        status: Some("Succeeded".into()),
        message: None,
    });
    st
}

/// Backoff before retry `attempt` (1-based): 1 s, 2 s, 4 s ... capped at 30 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(5)).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> NodeImageSpec {
        serde_json::from_value(v).expect("valid NodeImage spec")
    }

    #[test]
    fn desired_tags_carry_upstream_defaults() {
        let d = desired(&spec(
            json!({"images": {"example.com/big": {"tags": [{"tag": "1.0", "version": 2}, {"tag": "sha256:abc"}]}}}),
        ));
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].key.reference(), "example.com/big:1.0");
        assert_eq!(d[1].key.reference(), "example.com/big@sha256:abc");
        assert_eq!(
            (d[0].version, d[0].timeout, d[0].backoff_limit, d[0].always),
            (2, Duration::from_secs(600), 3, false)
        );
    }

    #[test]
    fn tasks_start_up_to_the_free_workers_and_follow_spec_changes() {
        let d = desired(&spec(
            json!({"images": {"a": {"tags": [{"tag": "1"}, {"tag": "2"}]}, "b": {"tags": [{"tag": "1"}]}}}),
        ));
        let mut tasks = BTreeMap::new();
        let start = sync_tasks(&d, &mut tasks, 2);
        assert_eq!(
            start.iter().map(|d| d.key.reference()).collect::<Vec<_>>(),
            ["a:1", "a:2"]
        );
        for s in &start {
            tasks.get_mut(&s.key).expect("task").phase = Phase::Pulling;
        }
        assert!(sync_tasks(&d, &mut tasks, 0).is_empty());
        // Removing a tag drops its task; a new version re-queues a finished tag.
        let d2 = desired(&spec(
            json!({"images": {"a": {"tags": [{"tag": "1"}]}, "b": {"tags": [{"tag": "1", "version": 1}]}}}),
        ));
        tasks
            .get_mut(&TagKey {
                image: "b".into(),
                tag: "1".into(),
            })
            .expect("b")
            .phase = Phase::Succeeded;
        let start = sync_tasks(&d2, &mut tasks, 5);
        assert_eq!(tasks.len(), 2);
        assert_eq!(
            start.iter().map(|d| d.key.reference()).collect::<Vec<_>>(),
            ["b:1"]
        );
    }

    #[test]
    fn status_counts_phases_per_tag() {
        let d = desired(&spec(
            json!({"images": {"a": {"tags": [{"tag": "1"}, {"tag": "2"}]}, "b": {"tags": [{"tag": "1"}]}}}),
        ));
        let mut tasks = BTreeMap::new();
        sync_tasks(&d, &mut tasks, 0);
        tasks.get_mut(&d[0].key).expect("a:1").phase = Phase::Succeeded;
        tasks.get_mut(&d[1].key).expect("a:2").phase = Phase::Failed;
        let st = status(&d, &tasks, Timestamp::UNIX_EPOCH);
        assert_eq!(
            (st.desired, st.succeeded, st.failed, st.pulling, st.waiting),
            (3, Some(1), Some(1), Some(0), Some(1))
        );
        let a = &st.image_statuses.as_ref().expect("statuses")["a"];
        assert_eq!(
            a.tags
                .iter()
                .map(|t| (t.tag.as_str(), t.phase.as_str()))
                .collect::<Vec<_>>(),
            [("1", "Succeeded"), ("2", "Failed")]
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(
            [1, 2, 3, 4, 10].map(|a| backoff(a).as_secs()),
            [1, 2, 4, 8, 30]
        );
    }
}
