//! The cluster registry on the hub side: cluster tokens, heartbeats into `ManagedCluster`
//! status, and the sharded health check that marks silent clusters NotReady.
//!
//! A cluster's token is `{cluster}:{secret}`; the hub keeps it in the Secret
//! `kruise-hub-system/cluster-token-{cluster}` (key `token`). Deleting the Secret revokes it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use kruise_apiserver::errors::ApiError;
use kruise_apiserver::local::{Gvr, LocalClient};
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::metrics::HubMetrics;
use crate::shard::{shard_of, FencedWriter, Ownership, ShardError};

/// Namespace of the hub's own objects (cluster tokens, published endpoints).
pub const HUB_NAMESPACE: &str = "kruise-hub-system";
/// ConfigMap where each replica publishes its gRPC endpoint (key = replica id).
pub const ENDPOINTS_CONFIGMAP: &str = "kruise-hub-endpoints";
/// The ManagedCluster resource.
pub const MANAGED_CLUSTERS: Gvr<'static> =
    Gvr::new("federation.kruise.io", "v1alpha1", "managedclusters");
/// The Work resource.
pub const WORKS: Gvr<'static> = Gvr::new("federation.kruise.io", "v1alpha1", "works");
/// Secrets.
pub const SECRETS: Gvr<'static> = Gvr::core("secrets");

/// Name of the Secret holding `cluster`'s token.
pub fn token_secret_name(cluster: &str) -> String {
    format!("cluster-token-{cluster}")
}

/// A fresh token for `cluster`.
pub fn new_token(cluster: &str) -> String {
    let bytes: [u8; 24] = rand::rng().random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{cluster}:{secret}")
}

/// The cluster a token claims to belong to.
pub fn token_cluster(token: &str) -> Option<&str> {
    let (cluster, secret) = token.rsplit_once(':')?;
    (!cluster.is_empty() && !secret.is_empty()).then_some(cluster)
}

/// Compares without an early exit, so timing does not reveal how much of a token matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// No or malformed token.
    #[error("missing or malformed cluster token (want metadata `authorization: Bearer <cluster>:<secret>`)")]
    Malformed,
    /// The cluster has no token (never added, or revoked).
    #[error("cluster {0} has no valid token (not registered or revoked)")]
    Unknown(String),
    /// The token does not match.
    #[error("invalid token for cluster {0}")]
    Mismatch(String),
    /// The store failed.
    #[error("checking the token of cluster {cluster}: {message}")]
    Store { cluster: String, message: String },
}

/// Checks `Bearer` tokens against the cluster token Secrets.
#[derive(Clone)]
pub struct Registry {
    client: LocalClient,
    metrics: Arc<HubMetrics>,
}

fn secret_token(secret: &Value) -> Option<String> {
    use base64::Engine as _;
    if let Some(s) = secret.pointer("/stringData/token").and_then(Value::as_str) {
        return Some(s.to_string());
    }
    let encoded = secret.pointer("/data/token").and_then(Value::as_str)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(raw).ok()
}

/// `status.conditions` with `condition` replacing the one of the same type; the transition time
/// changes only when the status does.
pub fn set_condition(status: &mut Value, condition: Value) {
    let ty = condition["type"].clone();
    let conditions = status
        .as_object_mut()
        .map(|m| m.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(list)) = conditions else {
        return;
    };
    match list.iter_mut().find(|c| c["type"] == ty) {
        Some(existing) => {
            let mut next = condition;
            if existing["status"] == next["status"] {
                next["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            *existing = next;
        }
        None => list.push(condition),
    }
}

impl Registry {
    /// A registry over the hub API's objects.
    pub fn new(client: LocalClient, metrics: Arc<HubMetrics>) -> Self {
        Registry { client, metrics }
    }

    /// The in-process API client.
    pub fn client(&self) -> &LocalClient {
        &self.client
    }

    /// The cluster `authorization` (`Bearer <token>`) authenticates.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<String, TokenError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(TokenError::Malformed)?;
        let cluster = token_cluster(token).ok_or(TokenError::Malformed)?;
        let secret = match self
            .client
            .get(SECRETS, Some(HUB_NAMESPACE), &token_secret_name(cluster))
            .await
        {
            Ok(secret) => secret,
            Err(ApiError { code: 404, .. }) => return Err(TokenError::Unknown(cluster.into())),
            Err(e) => {
                return Err(TokenError::Store {
                    cluster: cluster.into(),
                    message: e.to_string(),
                })
            }
        };
        let expected = secret_token(&secret).ok_or_else(|| TokenError::Unknown(cluster.into()))?;
        if constant_time_eq(expected.as_bytes(), token.as_bytes()) {
            Ok(cluster.to_string())
        } else {
            Err(TokenError::Mismatch(cluster.into()))
        }
    }

    /// Records a heartbeat: capacity, `lastHeartbeatTime`, `Ready=True` and `Joined=True`.
    pub async fn heartbeat(
        &self,
        cluster: &str,
        capacity: &kruise_proto::federation::Capacity,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        self.report_health(cluster, Some(capacity), None, now).await
    }

    /// Records a heartbeat whose agent cannot reach its member cluster: the cluster turns
    /// `Ready=False` with reason `ClusterUnreachable` right away (its last capacity is kept).
    pub async fn unreachable(
        &self,
        cluster: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        self.report_health(cluster, None, Some(message), now).await
    }

    async fn report_health(
        &self,
        cluster: &str,
        capacity: Option<&kruise_proto::federation::Capacity>,
        unreachable: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        self.client
            .update(MANAGED_CLUSTERS, None, cluster, true, |current| {
                let mut next = current.clone();
                let mut status = next.get("status").cloned().unwrap_or_else(|| json!({}));
                apply_heartbeat(&mut status, capacity, unreachable, now);
                next["status"] = status;
                Ok(next)
            })
            .await?;
        self.metrics.heartbeats.inc();
        Ok(())
    }
}

/// Writes one heartbeat into a cluster's `status`: its capacity (kept when `None`), the heartbeat
/// time, `Joined=True`, and `Ready=True`, or `Ready=False` with reason `ClusterUnreachable` when
/// the agent reports its cluster `unreachable` (with why).
pub fn apply_heartbeat(
    status: &mut Value,
    capacity: Option<&kruise_proto::federation::Capacity>,
    unreachable: Option<&str>,
    now: DateTime<Utc>,
) {
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if let Some(capacity) = capacity {
        status["capacity"] = json!({
            "allocatable": {
                "cpu": format!("{}m", capacity.allocatable_milli_cpu),
                "memory": capacity.allocatable_memory_bytes.to_string(),
                "pods": capacity.allocatable_pods.to_string(),
            },
            "nodes": capacity.node_count,
            "kubernetesVersion": capacity.kubernetes_version,
            "agentVersion": capacity.agent_version,
        });
    }
    status["lastHeartbeatTime"] = json!(stamp);
    let ready = match unreachable {
        None => json!({"type": "Ready", "status": "True", "reason": "HeartbeatReceived",
                       "message": "The agent is heartbeating.", "lastTransitionTime": stamp}),
        Some(why) => json!({"type": "Ready", "status": "False", "reason": "ClusterUnreachable",
                            "message": format!("The agent cannot reach the cluster: {why}"),
                            "lastTransitionTime": stamp}),
    };
    set_condition(status, ready);
    set_condition(
        status,
        json!({"type": "Joined", "status": "True", "reason": "AgentJoined",
               "message": "The agent joined the hub.", "lastTransitionTime": stamp}),
    );
}

/// Whether a cluster object is Ready but silent for longer than `timeout` at `now`.
pub fn heartbeat_expired(cluster: &Value, now: DateTime<Utc>, timeout: Duration) -> bool {
    let ready = cluster
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"] == "True")
        .unwrap_or(false);
    if !ready {
        return false;
    }
    let last = cluster
        .pointer("/status/lastHeartbeatTime")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    match last {
        Some(last) => {
            let age = now.signed_duration_since(last.with_timezone(&Utc));
            age.to_std().map(|a| a > timeout).unwrap_or(false)
        }
        None => true,
    }
}

/// The sharded health check: the owner of a cluster's shard marks it `Ready=False` once its
/// heartbeats stop, with a write fenced by the shard lock.
pub struct HealthChecker {
    /// In-process API client.
    pub client: LocalClient,
    /// Fenced write path.
    pub writer: FencedWriter,
    /// Owned shards.
    pub ownership: Ownership,
    /// Heartbeat timeout.
    pub timeout: Duration,
    /// Metrics.
    pub metrics: Arc<HubMetrics>,
}

impl HealthChecker {
    /// Checks owned clusters every second until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let period = (self.timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = shutdown.changed() => if *shutdown.borrow() { return },
                _ = tokio::time::sleep(period) => {}
            }
            if let Err(e) = self.check_once(Utc::now()).await {
                debug!(error = %e, "cluster health check failed");
            }
        }
    }

    /// One pass over the owned clusters.
    pub async fn check_once(&self, now: DateTime<Utc>) -> Result<usize, ApiError> {
        let clusters = self.client.list(MANAGED_CLUSTERS, None).await?;
        let mut marked = 0;
        for cluster in clusters {
            let Some(name) = cluster.pointer("/metadata/name").and_then(Value::as_str) else {
                continue;
            };
            let shard = shard_of("", name);
            if !heartbeat_expired(&cluster, now, self.timeout) {
                continue;
            }
            let Some(guard) = self.ownership.begin(shard) else {
                continue;
            };
            match self
                .mark_not_ready(shard, guard.token(), name, &cluster, now)
                .await
            {
                Ok(()) => {
                    marked += 1;
                    self.metrics.clusters_not_ready.inc();
                    info!(
                        cluster = name,
                        "no heartbeat within the timeout: marked NotReady"
                    );
                }
                Err(ShardError::Fenced { shard }) => {
                    self.metrics.fenced_writes.inc();
                    warn!(
                        cluster = name,
                        shard, "lost the shard while marking NotReady"
                    );
                }
                Err(e) => debug!(cluster = name, error = %e, "marking NotReady failed"),
            }
        }
        Ok(marked)
    }

    async fn mark_not_ready(
        &self,
        shard: u32,
        token: i64,
        name: &str,
        cluster: &Value,
        now: DateTime<Utc>,
    ) -> Result<(), ShardError> {
        let expected: i64 = cluster
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut next = cluster.clone();
        if let Some(meta) = next.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        set_condition(
            &mut next["status"],
            json!({"type": "Ready", "status": "False", "reason": "HeartbeatTimeout",
                   "message": format!("No heartbeat for more than {}s.", self.timeout.as_secs()),
                   "lastTransitionTime": stamp}),
        );
        let key = format!("/registry/federation.kruise.io/managedclusters/{name}");
        let value = Bytes::from(serde_json::to_vec(&next).unwrap_or_default());
        self.writer
            .update(shard, token, &key, value, expected)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_cluster() {
        let token = new_token("eu-1");
        assert_eq!(token_cluster(&token), Some("eu-1"));
        assert_ne!(token, new_token("eu-1"));
        assert_eq!(token_cluster("nocolon"), None);
        assert_eq!(token_cluster("c1:"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }

    #[test]
    fn expiry_needs_ready_and_an_old_heartbeat() {
        let now: DateTime<Utc> = "2026-01-01T00:01:00Z".parse().expect("time");
        let cluster = |status: &str, at: &str| {
            json!({"status": {"lastHeartbeatTime": at,
                "conditions": [{"type": "Ready", "status": status}]}})
        };
        let timeout = Duration::from_secs(40);
        assert!(heartbeat_expired(
            &cluster("True", "2026-01-01T00:00:10Z"),
            now,
            timeout
        ));
        assert!(!heartbeat_expired(
            &cluster("True", "2026-01-01T00:00:30Z"),
            now,
            timeout
        ));
        assert!(!heartbeat_expired(
            &cluster("False", "2026-01-01T00:00:10Z"),
            now,
            timeout
        ));
        assert!(!heartbeat_expired(&json!({}), now, timeout));
    }

    #[test]
    fn set_condition_keeps_transition_time_when_unchanged() {
        let mut status = json!({"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "t0"}]});
        set_condition(
            &mut status,
            json!({"type": "Ready", "status": "True", "lastTransitionTime": "t1"}),
        );
        assert_eq!(status["conditions"][0]["lastTransitionTime"], "t0");
        set_condition(
            &mut status,
            json!({"type": "Ready", "status": "False", "lastTransitionTime": "t2"}),
        );
        assert_eq!(status["conditions"][0]["lastTransitionTime"], "t2");
        set_condition(&mut status, json!({"type": "Joined", "status": "True"}));
        assert_eq!(status["conditions"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn unreachable_heartbeat_marks_not_ready_at_once_and_a_healthy_one_recovers() {
        let now = Utc::now();
        let capacity = kruise_proto::federation::Capacity {
            allocatable_pods: 110,
            ..Default::default()
        };
        let mut status = json!({});
        apply_heartbeat(&mut status, Some(&capacity), None, now);
        assert_eq!(status["conditions"][0]["status"], "True");
        apply_heartbeat(&mut status, None, Some("connection refused"), now);
        let ready = &status["conditions"][0];
        assert_eq!(
            (ready["type"].as_str(), ready["status"].as_str()),
            (Some("Ready"), Some("False"))
        );
        assert_eq!(ready["reason"], "ClusterUnreachable");
        assert_eq!(status["capacity"]["allocatable"]["pods"], "110");
        let cluster = json!({"status": status.clone()});
        assert!(!heartbeat_expired(
            &cluster,
            now + chrono::Duration::hours(1),
            Duration::from_secs(5)
        ));
        apply_heartbeat(&mut status, Some(&capacity), None, now);
        assert_eq!(status["conditions"][0]["reason"], "HeartbeatReceived");
        assert_eq!(status["conditions"][0]["status"], "True");
    }
}
