//! ImagePullJob status from the nodes' progress (upstream's `calculateStatus`). Pure.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::imagepulljob::{ImagePullJob, ImagePullJobStatus};

use super::plan::{Progress, NEVER};

/// Message of a finished job.
pub const COMPLETED_MESSAGE: &str = "job has completed";
/// Message of a job stopped by `activeDeadlineSeconds`.
pub const DEADLINE_MESSAGE: &str = "job exceeds activeDeadlineSeconds";

/// Upstream's running message: "job is running, progress X.X%" (or "no progress" with no nodes).
pub fn running_message(desired: i32, succeeded: i32, failed: i32) -> String {
    if desired == 0 {
        return "job is running, no progress".to_string();
    }
    let pct = 100.0 * f64::from(succeeded + failed) / f64::from(desired);
    format!("job is running, progress {pct:.1}%")
}

fn count(v: &[String]) -> i32 {
    i32::try_from(v.len()).unwrap_or(i32::MAX)
}

/// The new status. `completion_time` is set when every node finished (`Always` only) or when
/// the active deadline passed, in which case unfinished nodes count as failed.
pub fn status(job: &ImagePullJob, progress: &Progress, now: Timestamp) -> ImagePullJobStatus {
    let prev = job.status.clone().unwrap_or_default();
    let start = prev.start_time.clone().unwrap_or(Time(now));
    let desired = count(&progress.not_synced)
        + count(&progress.pulling)
        + count(&progress.succeeded)
        + count(&progress.failed);
    let cp = &job.spec.template.completion_policy;
    let always = cp.type_.as_deref() != Some(NEVER);
    let finished = count(&progress.succeeded) + count(&progress.failed);
    if let (true, Some(deadline)) = (always, cp.active_deadline_seconds) {
        let elapsed = now.duration_since(start.0).as_secs_f64();
        if finished != desired && elapsed >= deadline as f64 {
            let mut failed = progress.failed.clone();
            failed.extend(progress.pulling.iter().cloned());
            failed.extend(progress.not_synced.iter().cloned());
            return ImagePullJobStatus {
                start_time: Some(start),
                completion_time: Some(Time(now)),
                desired,
                active: Some(0),
                succeeded: Some(count(&progress.succeeded)),
                failed: Some(count(&failed)),
                message: Some(DEADLINE_MESSAGE.into()),
                failed_nodes: Some(failed),
            };
        }
    }
    let done = always && finished == desired;
    ImagePullJobStatus {
        start_time: Some(start),
        completion_time: done.then_some(Time(now)),
        desired,
        active: Some(count(&progress.pulling)),
        succeeded: Some(count(&progress.succeeded)),
        failed: Some(count(&progress.failed)),
        message: Some(if done {
            COMPLETED_MESSAGE.to_string()
        } else {
            running_message(desired, count(&progress.succeeded), count(&progress.failed))
        }),
        failed_nodes: Some(progress.failed.clone()),
    }
}

/// Time left before a finished job is deleted (`ttlSecondsAfterFinished`); `None` without TTL.
pub fn ttl_left(job: &ImagePullJob, now: Timestamp) -> Option<Duration> {
    let ttl = job
        .spec
        .template
        .completion_policy
        .ttl_seconds_after_finished?;
    let done = job.status.as_ref()?.completion_time.as_ref()?.0;
    let elapsed = now.duration_since(done).as_secs_f64().max(0.0);
    Some(Duration::from_secs_f64(
        (f64::from(ttl.max(0)) - elapsed).max(0.0),
    ))
}

/// Whether two statuses differ in more than the timestamps set "now" by this round.
pub fn differs(old: Option<&ImagePullJobStatus>, new: &ImagePullJobStatus) -> bool {
    let Some(old) = old else { return true };
    let strip = |s: &ImagePullJobStatus| ImagePullJobStatus {
        completion_time: s
            .completion_time
            .as_ref()
            .map(|_| Time(Timestamp::UNIX_EPOCH)),
        ..s.clone()
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kruise_api::apps::v1alpha1::imagepulljob::ImagePullJobSpec;

    fn job(policy: serde_json::Value) -> ImagePullJob {
        let spec: ImagePullJobSpec = serde_json::from_value(serde_json::json!({
            "image": "example.com/big:1.0", "completionPolicy": policy
        }))
        .unwrap();
        ImagePullJob::new("warm", spec)
    }

    fn prog(ns: usize, pulling: usize, ok: usize, bad: usize) -> Progress {
        let names = |p: &str, n: usize| (0..n).map(|i| format!("{p}{i}")).collect();
        Progress {
            not_synced: names("n", ns),
            pulling: names("p", pulling),
            succeeded: names("s", ok),
            failed: names("f", bad),
        }
    }

    #[test]
    fn messages_follow_upstream() {
        assert_eq!(running_message(0, 0, 0), "job is running, no progress");
        assert_eq!(running_message(3, 1, 0), "job is running, progress 33.3%");
        assert_eq!(running_message(3, 1, 1), "job is running, progress 66.7%");
    }

    #[test]
    fn steps_of_a_three_node_job() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut j = job(serde_json::json!({"type": "Always"}));
        // step 1: nothing synced
        let st = status(&j, &prog(3, 0, 0, 0), now);
        assert_eq!((st.desired, st.active, st.succeeded), (3, Some(0), Some(0)));
        assert_eq!(st.message.as_deref(), Some("job is running, progress 0.0%"));
        assert!(st.completion_time.is_none());
        assert_eq!(st.start_time, Some(Time(now)));
        j.status = Some(st);
        // step 2: one pulled, one pulling, one waiting for room
        let later = "2026-01-01T00:00:05Z".parse().unwrap();
        let st = status(&j, &prog(1, 1, 1, 0), later);
        assert_eq!(
            (st.active, st.succeeded, st.failed),
            (Some(1), Some(1), Some(0))
        );
        assert_eq!(st.start_time, Some(Time(now)), "start time is kept");
        // step 3: all done, one failed
        let st = status(&j, &prog(0, 0, 2, 1), later);
        assert_eq!(st.message.as_deref(), Some(COMPLETED_MESSAGE));
        assert_eq!(st.completion_time, Some(Time(later)));
        assert_eq!(st.failed_nodes, Some(vec!["f0".to_string()]));
    }

    #[test]
    fn never_jobs_do_not_complete() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let j = job(serde_json::json!({"type": "Never"}));
        let st = status(&j, &prog(0, 0, 3, 0), now);
        assert!(st.completion_time.is_none());
        assert_eq!(
            st.message.as_deref(),
            Some("job is running, progress 100.0%")
        );
    }

    #[test]
    fn deadline_fails_unfinished_nodes() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut j = job(serde_json::json!({"type": "Always", "activeDeadlineSeconds": 60}));
        j.status = Some(ImagePullJobStatus {
            start_time: Some(Time(start)),
            ..Default::default()
        });
        let early = "2026-01-01T00:00:30Z".parse().unwrap();
        assert!(status(&j, &prog(1, 1, 1, 0), early)
            .completion_time
            .is_none());
        let late = "2026-01-01T00:01:00Z".parse().unwrap();
        let st = status(&j, &prog(1, 1, 1, 0), late);
        assert_eq!(st.message.as_deref(), Some(DEADLINE_MESSAGE));
        assert_eq!((st.succeeded, st.failed), (Some(1), Some(2)));
        assert_eq!(
            st.failed_nodes,
            Some(vec!["p0".to_string(), "n0".to_string()])
        );
    }

    #[test]
    fn ttl_counts_from_completion() {
        let done: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut j = job(serde_json::json!({"type": "Always", "ttlSecondsAfterFinished": 10}));
        assert_eq!(ttl_left(&j, done), None, "not finished");
        j.status = Some(ImagePullJobStatus {
            completion_time: Some(Time(done)),
            ..Default::default()
        });
        let now = "2026-01-01T00:00:04Z".parse().unwrap();
        assert_eq!(ttl_left(&j, now), Some(Duration::from_secs(6)));
        let now = "2026-01-01T00:00:40Z".parse().unwrap();
        assert_eq!(ttl_left(&j, now), Some(Duration::ZERO));
    }
}
