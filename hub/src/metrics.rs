//! The hub's Prometheus metrics, in one struct.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label of a shard handover: `acquired`, `released` (drained for a ring change) or `lost`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    /// Closed set: acquired | released | lost.
    pub direction: &'static str,
}

/// Label of a closed reason set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// A closed reason string (`ShardError::reason`, `upsert`, `delete`, ...).
    pub reason: &'static str,
}

/// Every metric the hub exports.
#[derive(Default)]
pub struct HubMetrics {
    /// Shards this replica owns.
    pub owned_shards: Gauge,
    /// Live replicas on the ring.
    pub members: Gauge,
    /// Shard ownership changes.
    pub handovers: Family<DirectionLabel, Counter>,
    /// Writes refused because the replica no longer held the shard lock.
    pub fenced_writes: Counter,
    /// Open agent Sync streams.
    pub sync_streams: Gauge,
    /// Work events sent to agents, by `upsert` / `delete` / `snapshot`.
    pub work_events: Family<ReasonLabel, Counter>,
    /// Work status reports written.
    pub status_reports: Counter,
    /// Heartbeats received.
    pub heartbeats: Counter,
    /// Refused agent calls, by `unauthenticated` / `permission_denied`.
    pub refused_calls: Family<ReasonLabel, Counter>,
    /// Clusters marked NotReady after missing heartbeats.
    pub clusters_not_ready: Counter,
    /// UnitedDeployment reconciles, by `ok` / `conflict` / `fenced` / `error`.
    pub ud_reconciles: Family<ReasonLabel, Counter>,
    /// Work writes of the UnitedDeployment controller, by `create` / `update` / `delete`.
    pub ud_work_writes: Family<ReasonLabel, Counter>,
}

impl HubMetrics {
    /// Records `n` handovers in `direction`.
    pub fn handover(&self, direction: &'static str, n: u64) {
        self.handovers
            .get_or_create(&DirectionLabel { direction })
            .inc_by(n);
    }

    /// Counts an event of a closed kind.
    pub fn work_event(&self, reason: &'static str) {
        self.work_events
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts a refused call.
    pub fn refused(&self, reason: &'static str) {
        self.refused_calls
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts a UnitedDeployment reconcile by outcome.
    pub fn ud_reconcile(&self, reason: &'static str) {
        self.ud_reconciles
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Counts a Work write of the UnitedDeployment controller.
    pub fn ud_work_write(&self, reason: &'static str) {
        self.ud_work_writes
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Prometheus text of all metrics.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("kruise_hub");
        registry.register(
            "owned_shards",
            "Shards this replica owns",
            self.owned_shards.clone(),
        );
        registry.register("members", "Live hub replicas", self.members.clone());
        registry.register(
            "shard_handovers",
            "Shard ownership changes",
            self.handovers.clone(),
        );
        registry.register(
            "fenced_writes",
            "Writes refused because the shard lock was lost",
            self.fenced_writes.clone(),
        );
        registry.register(
            "sync_streams",
            "Open agent Sync streams",
            self.sync_streams.clone(),
        );
        registry.register(
            "work_events",
            "Work events sent to agents",
            self.work_events.clone(),
        );
        registry.register(
            "status_reports",
            "Work status reports written",
            self.status_reports.clone(),
        );
        registry.register("heartbeats", "Heartbeats received", self.heartbeats.clone());
        registry.register(
            "refused_calls",
            "Refused agent calls",
            self.refused_calls.clone(),
        );
        registry.register(
            "clusters_not_ready",
            "Clusters marked NotReady after missing heartbeats",
            self.clusters_not_ready.clone(),
        );
        registry.register(
            "ud_reconciles",
            "UnitedDeployment reconciles by outcome",
            self.ud_reconciles.clone(),
        );
        registry.register(
            "ud_work_writes",
            "Work writes of the UnitedDeployment controller",
            self.ud_work_writes.clone(),
        );
        let mut out = String::new();
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
