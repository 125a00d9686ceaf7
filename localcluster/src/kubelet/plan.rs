//! The kubelet simulator's pure core: advance a pod's simulated runtime to `now`, and compute the
//! pod status kubelet would report. No I/O; time and the latency model are parameters.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::latency::{self, LatencyModel};
use crate::runtime::{
    image_digest_ref, image_id, new_id, CachedImage, ContainerPhase, ContainerRuntime, NodeState,
    PodRuntime, PullRecord, Termination,
};

/// An Event the kubelet records about a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeletEvent {
    pub reason: &'static str,
    pub message: String,
    pub warning: bool,
}

impl KubeletEvent {
    fn normal(reason: &'static str, message: String) -> Self {
        KubeletEvent {
            reason,
            message,
            warning: false,
        }
    }
    fn warning(reason: &'static str, message: String) -> Self {
        KubeletEvent {
            reason,
            message,
            warning: true,
        }
    }
}

/// What one step decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    pub events: Vec<KubeletEvent>,
    /// When the runtime next changes by itself (a pull or start finishing, readiness, exit).
    pub next_wakeup: Option<Timestamp>,
    /// The pod finished terminating: delete it from the API with grace period 0.
    pub delete_pod: bool,
}

impl Step {
    fn wake_at(&mut self, at: Timestamp) {
        self.next_wakeup = Some(self.next_wakeup.map_or(at, |w| w.min(at)));
    }
}

fn dur(d: std::time::Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// Seconds main containers run before exiting, for job-like pods.
fn run_seconds(pod: &Pod) -> Option<f64> {
    annotation(pod, latency::RUN_SECONDS_ANNOTATION).and_then(|v| v.trim().parse().ok())
}

fn exit_code(pod: &Pod) -> i32 {
    annotation(pod, latency::EXIT_CODE_ANNOTATION)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Grace period of a terminating pod.
fn grace(pod: &Pod) -> std::time::Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30)
        .max(0);
    std::time::Duration::from_secs(secs as u64)
}

fn needs_pull(c: &Container, images: &BTreeMap<String, CachedImage>) -> bool {
    let image = c.image.as_deref().unwrap_or_default();
    match c.image_pull_policy.as_deref() {
        Some("Never") => false,
        Some("Always") => true,
        _ => !images.contains_key(image),
    }
}

/// Starts (or restarts) container `c`: pulls its image first if the policy requires.
fn start_container(
    c: &Container,
    state: &mut NodeState,
    prior: Option<&ContainerRuntime>,
    init: bool,
    now: Timestamp,
    model: &LatencyModel,
    step: &mut Step,
) -> ContainerRuntime {
    let image = c.image.clone().unwrap_or_default();
    let phase = if needs_pull(c, &state.images) {
        step.events.push(KubeletEvent::normal(
            "Pulling",
            format!("Pulling image \"{image}\""),
        ));
        let cached = state.images.contains_key(&image);
        let until = if cached {
            now
        } else {
            state.pull_until(&image, now, model)
        };
        step.wake_at(until);
        ContainerPhase::Pulling { until }
    } else if c.image_pull_policy.as_deref() == Some("Never") && !state.images.contains_key(&image)
    {
        // kubelet with Never and no cached image: ErrImageNeverPull, retried when the image appears.
        let retry_at = now + SignedDuration::from_secs(5);
        step.wake_at(retry_at);
        let message =
            format!("Container image \"{image}\" is not present with pull policy of Never");
        step.events
            .push(KubeletEvent::warning("ErrImageNeverPull", message.clone()));
        ContainerPhase::PullFailed { message, retry_at }
    } else {
        step.events.push(KubeletEvent::normal(
            "Pulled",
            format!("Container image \"{image}\" already present on machine"),
        ));
        created(c, now, model, step)
    };
    ContainerRuntime {
        name: c.name.clone(),
        id: new_id(),
        image_id: image_digest_ref(&image),
        image,
        phase,
        restart_count: prior.map_or(0, |p| p.restart_count + 1),
        last_termination: prior.and_then(|p| match &p.phase {
            ContainerPhase::Exited {
                exit_code,
                reason,
                started_at,
                finished_at,
            } => Some(Termination {
                exit_code: *exit_code,
                reason: reason.clone(),
                started_at: *started_at,
                finished_at: *finished_at,
                container_id: p.id.clone(),
            }),
            _ => p.last_termination.clone(),
        }),
        created_at: now,
        stopped_externally: false,
        init,
    }
}

fn created(c: &Container, now: Timestamp, model: &LatencyModel, step: &mut Step) -> ContainerPhase {
    step.events.push(KubeletEvent::normal(
        "Created",
        format!("Created container {}", c.name),
    ));
    let until = now + dur(model.container_start());
    step.wake_at(until);
    ContainerPhase::Creating { until }
}

/// Moves a container through its timed phases up to `now`.
fn progress(
    c: &Container,
    rt: &mut ContainerRuntime,
    state_images: &mut BTreeMap<String, CachedImage>,
    pulls: &mut Vec<PullRecord>,
    job_run: Option<f64>,
    exit: i32,
    now: Timestamp,
    model: &LatencyModel,
    step: &mut Step,
) {
    loop {
        match rt.phase.clone() {
            ContainerPhase::Pulling { until } if until <= now => {
                let started = rt.created_at;
                if latency::is_unpullable(&rt.image) {
                    let message = format!("Failed to pull image \"{}\": not found", rt.image);
                    pulls.push(PullRecord {
                        image: rt.image.clone(),
                        started,
                        finished: until,
                        succeeded: false,
                        by: "kubelet",
                    });
                    step.events
                        .push(KubeletEvent::warning("Failed", message.clone()));
                    step.events.push(KubeletEvent::warning(
                        "Failed",
                        "Error: ErrImagePull".into(),
                    ));
                    let retry_at = now + SignedDuration::from_secs(10);
                    step.wake_at(retry_at);
                    rt.phase = ContainerPhase::PullFailed { message, retry_at };
                    return;
                }
                pulls.push(PullRecord {
                    image: rt.image.clone(),
                    started,
                    finished: until,
                    succeeded: true,
                    by: "kubelet",
                });
                let size = model.image_mb(&rt.image) * 1024 * 1024;
                state_images.entry(rt.image.clone()).or_insert(CachedImage {
                    id: image_id(&rt.image),
                    size_bytes: size,
                    pulled_at: until,
                });
                let took = until.duration_since(started);
                step.events.push(KubeletEvent::normal(
                    "Pulled",
                    format!(
                        "Successfully pulled image \"{}\" in {:.3}s ({:.3}s including waiting). Image size: {} bytes.",
                        rt.image,
                        took.as_secs_f64(),
                        took.as_secs_f64(),
                        size
                    ),
                ));
                rt.phase = created(c, until.max(now.min(until)), model, step);
            }
            ContainerPhase::PullFailed { retry_at, .. } if retry_at <= now => {
                if c.image_pull_policy.as_deref() == Some("Never")
                    && !state_images.contains_key(&rt.image)
                {
                    let retry_at = now + SignedDuration::from_secs(5);
                    step.wake_at(retry_at);
                    rt.phase = ContainerPhase::PullFailed {
                        message: format!(
                            "Container image \"{}\" is not present with pull policy of Never",
                            rt.image
                        ),
                        retry_at,
                    };
                    return;
                }
                step.events.push(KubeletEvent::normal(
                    "Pulling",
                    format!("Pulling image \"{}\"", rt.image),
                ));
                rt.created_at = now;
                let until = now + dur(model.pull_time(&rt.image));
                step.wake_at(until);
                rt.phase = ContainerPhase::Pulling { until };
            }
            ContainerPhase::Creating { until } if until <= now => {
                step.events.push(KubeletEvent::normal(
                    "Started",
                    format!("Started container {}", rt.name),
                ));
                rt.phase = ContainerPhase::Running { started_at: until };
            }
            ContainerPhase::Running { started_at } => {
                let run_for = if rt.init { Some(0.0) } else { job_run };
                if let Some(secs) = run_for {
                    let ends = started_at + SignedDuration::from_millis((secs * 1000.0) as i64);
                    if ends <= now {
                        let code = if rt.init { 0 } else { exit };
                        rt.phase = ContainerPhase::Exited {
                            exit_code: code,
                            reason: if code == 0 {
                                "Completed".into()
                            } else {
                                "Error".into()
                            },
                            started_at: Some(started_at),
                            finished_at: ends,
                        };
                        continue;
                    }
                    step.wake_at(ends);
                }
                let ready_at = started_at + dur(model.readiness_delay());
                if ready_at > now {
                    step.wake_at(ready_at);
                }
                return;
            }
            ContainerPhase::Stopping {
                until,
                exit_code,
                reason,
            } if until <= now => {
                let started_at = match rt.phase {
                    ContainerPhase::Running { started_at } => Some(started_at),
                    _ => None,
                };
                rt.phase = ContainerPhase::Exited {
                    exit_code,
                    reason,
                    started_at,
                    finished_at: until,
                };
            }
            ContainerPhase::Pulling { until }
            | ContainerPhase::Creating { until }
            | ContainerPhase::Stopping { until, .. } => {
                step.wake_at(until);
                return;
            }
            ContainerPhase::PullFailed { retry_at, .. } => {
                step.wake_at(retry_at);
                return;
            }
            ContainerPhase::Exited { .. } => return,
        }
    }
}

/// Whether an exited container is restarted under the pod's restart policy.
fn restarts(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Always" => true,
        "OnFailure" => exit_code != 0,
        _ => false,
    }
}

/// Advances pod `pod` (already bound to this node) on the node's runtime to `now`.
pub fn advance(
    pod: &Pod,
    state: &mut NodeState,
    pod_ip: impl FnOnce() -> String,
    now: Timestamp,
    model: &LatencyModel,
) -> Step {
    let mut step = Step::default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let Some(spec) = pod.spec.as_ref() else {
        return step;
    };

    state.settle_pulls(now, model);
    if pod.metadata.deletion_timestamp.is_some() {
        return terminate(pod, state, &uid, now, model, step);
    }

    if !state.pods.contains_key(&uid) {
        let order = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .map(|c| c.name.clone())
            .collect();
        state.pods.insert(
            uid.clone(),
            PodRuntime {
                uid: uid.clone(),
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                sandbox_id: new_id(),
                pod_ip: pod_ip(),
                created_at: now,
                containers: BTreeMap::new(),
                order,
                labels: pod.metadata.labels.clone().unwrap_or_default(),
            },
        );
    }
    let policy = restart_policy(pod).to_string();
    let job_run = run_seconds(pod);
    let exit = exit_code(pod);

    // Init containers run one at a time, each to completion, before the main containers.
    for c in spec.init_containers.iter().flatten() {
        let done = {
            let NodeState {
                images,
                pulls,
                pods,
                ..
            } = &mut *state;
            let prt = pods.get_mut(&uid).expect("pod runtime inserted above");
            match prt.containers.get_mut(&c.name) {
                Some(rt) => {
                    progress(c, rt, images, pulls, None, 0, now, model, &mut step);
                    matches!(rt.phase, ContainerPhase::Exited { exit_code: 0, .. })
                }
                None => false,
            }
        };
        if done {
            continue;
        }
        let exists = state.pods[&uid].containers.contains_key(&c.name);
        if !exists {
            let rt = start_container(c, state, None, true, now, model, &mut step);
            state
                .pods
                .get_mut(&uid)
                .expect("pod runtime")
                .containers
                .insert(c.name.clone(), rt);
            let NodeState {
                images,
                pulls,
                pods,
                ..
            } = &mut *state;
            let rt = pods
                .get_mut(&uid)
                .and_then(|p| p.containers.get_mut(&c.name))
                .expect("just inserted");
            progress(c, rt, images, pulls, None, 0, now, model, &mut step);
            if matches!(rt.phase, ContainerPhase::Exited { exit_code: 0, .. }) {
                continue;
            }
        }
        return step;
    }

    for c in &spec.containers {
        let current = state.pods[&uid].containers.get(&c.name).cloned();
        let spec_image = c.image.clone().unwrap_or_default();
        let next = match current {
            None => Some(start_container(
                c, state, None, false, now, model, &mut step,
            )),
            Some(rt) => match &rt.phase {
                // In-place update: the spec's image differs from the running one; kill and restart.
                ContainerPhase::Running { .. } | ContainerPhase::Creating { .. }
                    if rt.image != spec_image =>
                {
                    step.events.push(KubeletEvent::normal(
                        "Killing",
                        format!("Container {} definition changed, will be restarted", c.name),
                    ));
                    let until = now + dur(model.container_stop(grace(pod)));
                    step.wake_at(until);
                    let mut rt = rt.clone();
                    rt.phase = ContainerPhase::Stopping {
                        until,
                        exit_code: 0,
                        reason: "Completed".into(),
                    };
                    Some(rt)
                }
                ContainerPhase::Pulling { .. } | ContainerPhase::PullFailed { .. }
                    if rt.image != spec_image =>
                {
                    Some(start_container(
                        c,
                        state,
                        Some(&rt),
                        false,
                        now,
                        model,
                        &mut step,
                    ))
                }
                ContainerPhase::Exited { exit_code, .. }
                    if restarts(&policy, *exit_code) || rt.image != spec_image =>
                {
                    Some(start_container(
                        c,
                        state,
                        Some(&rt),
                        false,
                        now,
                        model,
                        &mut step,
                    ))
                }
                _ => None,
            },
        };
        let NodeState {
            images,
            pulls,
            pods,
            ..
        } = &mut *state;
        let prt = pods.get_mut(&uid).expect("pod runtime");
        if let Some(rt) = next {
            prt.containers.insert(c.name.clone(), rt);
        }
        let rt = prt.containers.get_mut(&c.name).expect("container runtime");
        progress(c, rt, images, pulls, job_run, exit, now, model, &mut step);
        // A container that just finished stopping (image change, CRI stop) restarts right away.
        let restart = match rt.phase {
            ContainerPhase::Exited { exit_code, .. } => {
                rt.image != spec_image || restarts(&policy, exit_code)
            }
            _ => false,
        };
        if restart {
            let prior = rt.clone();
            let mut fresh = start_container(c, state, Some(&prior), false, now, model, &mut step);
            let NodeState {
                images,
                pulls,
                pods,
                ..
            } = &mut *state;
            progress(
                c, &mut fresh, images, pulls, job_run, exit, now, model, &mut step,
            );
            pods.get_mut(&uid)
                .expect("pod runtime")
                .containers
                .insert(c.name.clone(), fresh);
        }
    }
    step
}

/// Stops every container of a terminating pod, then asks for the pod's final deletion.
fn terminate(
    pod: &Pod,
    state: &mut NodeState,
    uid: &str,
    now: Timestamp,
    model: &LatencyModel,
    mut step: Step,
) -> Step {
    let Some(prt) = state.pods.get_mut(uid) else {
        step.delete_pod = true;
        return step;
    };
    let stop_at = now + dur(model.container_stop(grace(pod)));
    let mut all_exited = true;
    for rt in prt.containers.values_mut() {
        match rt.phase.clone() {
            ContainerPhase::Exited { .. } => {}
            ContainerPhase::Stopping {
                until,
                exit_code,
                reason,
            } => {
                if until <= now {
                    rt.phase = ContainerPhase::Exited {
                        exit_code,
                        reason,
                        started_at: None,
                        finished_at: until,
                    };
                } else {
                    all_exited = false;
                    step.wake_at(until);
                }
            }
            ContainerPhase::Running { .. } => {
                step.events.push(KubeletEvent::normal(
                    "Killing",
                    format!("Stopping container {}", rt.name),
                ));
                if stop_at <= now {
                    rt.phase = ContainerPhase::Exited {
                        exit_code: 0,
                        reason: "Completed".into(),
                        started_at: None,
                        finished_at: now,
                    };
                } else {
                    all_exited = false;
                    step.wake_at(stop_at);
                    rt.phase = ContainerPhase::Stopping {
                        until: stop_at,
                        exit_code: 0,
                        reason: "Completed".into(),
                    };
                }
            }
            _ => {
                rt.phase = ContainerPhase::Exited {
                    exit_code: 0,
                    reason: "Completed".into(),
                    started_at: None,
                    finished_at: now,
                };
            }
        }
    }
    if all_exited {
        state.pods.remove(uid);
        step.delete_pod = true;
    }
    step
}
