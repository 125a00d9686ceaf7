//! The agent's Prometheus metrics: one struct, labels from closed sets.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Controllers the agent runs.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum ControllerName {
    /// The CloneSet controller.
    CloneSet,
}

/// How a reconcile ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Outcome {
    /// Finished without error.
    Success,
    /// Returned an error.
    Error,
}

/// Kinds of writes the controllers make.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum WriteKind {
    /// Pod create.
    CreatePod,
    /// Pod delete.
    DeletePod,
    /// Pod metadata/spec update.
    UpdatePod,
    /// Pod status update.
    UpdatePodStatus,
    /// PVC create or delete.
    Pvc,
    /// ControllerRevision create, update or delete.
    Revision,
    /// Workload status update.
    Status,
}

/// Labels of reconcile metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// Controller.
    pub controller: ControllerName,
    /// Outcome.
    pub outcome: Outcome,
}

/// Labels of per-controller metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// Controller.
    pub controller: ControllerName,
}

/// Labels of write metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// Controller.
    pub controller: ControllerName,
    /// What was written.
    pub kind: WriteKind,
    /// Outcome.
    pub outcome: Outcome,
}

/// All metrics of the agent.
#[derive(Debug)]
pub struct Metrics {
    /// Reconciles by controller and outcome.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile durations in seconds.
    pub reconcile_duration: Family<ControllerLabels, Histogram>,
    /// Reconciles running or waiting to run (objects triggered but not yet finished).
    pub queue_depth: Family<ControllerLabels, Gauge<i64, std::sync::atomic::AtomicI64>>,
    /// Writes to the API by kind and outcome.
    pub writes: Family<WriteLabels, Counter<u64, AtomicU64>>,
    /// 1 while this agent holds the leader lease.
    pub leader: Gauge,
    /// Admission reviews served.
    pub admissions: Counter,
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            reconciles: Family::default(),
            reconcile_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            queue_depth: Family::default(),
            writes: Family::default(),
            leader: Gauge::default(),
            admissions: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("kruise_agent");
        r.register(
            "reconcile",
            "Reconciles by controller and outcome",
            m.reconciles.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            m.reconcile_duration.clone(),
        );
        r.register(
            "queue_depth",
            "Reconciles in flight per controller",
            m.queue_depth.clone(),
        );
        r.register("api_writes", "Writes to the API server", m.writes.clone());
        r.register(
            "leader",
            "1 while this agent is the leader",
            m.leader.clone(),
        );
        r.register(
            "admission_reviews",
            "Admission reviews served",
            m.admissions.clone(),
        );
        m
    }

    /// Records one reconcile.
    pub fn observe_reconcile(&self, controller: ControllerName, ok: bool, took: Duration) {
        let outcome = if ok { Outcome::Success } else { Outcome::Error };
        self.reconciles
            .get_or_create(&ReconcileLabels {
                controller,
                outcome,
            })
            .inc();
        self.reconcile_duration
            .get_or_create(&ControllerLabels { controller })
            .observe(took.as_secs_f64());
    }

    /// Records one write.
    pub fn observe_write(&self, controller: ControllerName, kind: WriteKind, ok: bool) {
        let outcome = if ok { Outcome::Success } else { Outcome::Error };
        self.writes
            .get_or_create(&WriteLabels {
                controller,
                kind,
                outcome,
            })
            .inc();
    }
}

/// Renders a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_reconcile_metrics() {
        let mut reg = Registry::default();
        let m = Metrics::new(&mut reg);
        m.observe_reconcile(ControllerName::CloneSet, true, Duration::from_millis(3));
        m.observe_write(ControllerName::CloneSet, WriteKind::CreatePod, false);
        let text = render(&reg);
        assert!(text.contains(
            "kruise_agent_reconcile_total{controller=\"CloneSet\",outcome=\"Success\"} 1"
        ));
        assert!(text
            .contains("kruise_agent_reconcile_duration_seconds_count{controller=\"CloneSet\"} 1"));
        assert!(text.contains("kind=\"CreatePod\""));
    }
}
