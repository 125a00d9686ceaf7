//! Replica membership over an etcd lease, and the loop that keeps this replica's shard locks in
//! line with the ring.
//!
//! Each replica puts `{prefix}/members/{id}` under its own lease and watches `{prefix}/`. On every
//! change (a member joined or left, a lock was released) it rebuilds the ring from the member
//! set, stops acting on and releases the shards the ring gave to others, and tries to take the
//! shards the ring gives it. A shard still locked by a previous owner is taken as soon as that
//! owner releases it or its lease expires (the lock key is deleted with the lease). A lost lease
//! (keep-alive failing for a whole TTL, or etcd answering TTL 0) drops every shard at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions, PutOptions, WatchOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::{Ownership, ShardError, ShardLocks, SHARD_COUNT};
use crate::metrics::HubMetrics;
use crate::ring::Ring;

/// How a replica takes part in the ring.
#[derive(Clone, Debug)]
pub struct MembershipConfig {
    /// This replica's unique id.
    pub id: String,
    /// etcd key prefix of the hub's coordination keys, e.g. `/kruise-hub`.
    pub prefix: String,
    /// TTL of the replica's lease.
    pub lease_ttl: Duration,
    /// Virtual nodes per replica on the ring.
    pub vnodes: u32,
    /// The replica's gRPC endpoint, published with its member key.
    pub grpc_endpoint: String,
}

/// What a replica publishes about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberInfo {
    /// Replica id.
    pub id: String,
    /// gRPC endpoint agents can use.
    pub grpc_endpoint: String,
}

/// A replica's membership and shard ownership.
pub struct Membership {
    client: Client,
    config: MembershipConfig,
    locks: ShardLocks,
    ownership: Ownership,
    metrics: Arc<HubMetrics>,
    members: watch::Sender<Vec<MemberInfo>>,
}

/// Why a session ended.
enum SessionEnd {
    Shutdown,
    LeaseLost,
}

impl Membership {
    /// A membership that has not joined yet (see [`Membership::run`]).
    pub fn new(client: Client, config: MembershipConfig, metrics: Arc<HubMetrics>) -> Self {
        let locks = ShardLocks::new(client.clone(), config.prefix.clone());
        let (members, _) = watch::channel(Vec::new());
        Membership {
            client,
            config,
            locks,
            ownership: Ownership::new(),
            metrics,
            members,
        }
    }

    /// The shards this replica owns now.
    pub fn ownership(&self) -> Ownership {
        self.ownership.clone()
    }

    /// The lock handle used for fenced writes.
    pub fn locks(&self) -> ShardLocks {
        self.locks.clone()
    }

    /// The live members, updated on every change.
    pub fn members(&self) -> watch::Receiver<Vec<MemberInfo>> {
        self.members.subscribe()
    }

    fn members_prefix(&self) -> String {
        format!("{}/members/", self.config.prefix)
    }

    /// Joins, keeps the lease alive and follows the ring until `shutdown` turns true; then
    /// releases every shard and revokes the lease so others take over at once.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.session(&mut shutdown).await {
                Ok(SessionEnd::Shutdown) => return,
                Ok(SessionEnd::LeaseLost) => {
                    warn!(id = %self.config.id, "lease lost; dropped every shard, rejoining")
                }
                Err(e) => warn!(id = %self.config.id, error = %e, "membership session failed"),
            }
            self.drop_all("lost");
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    fn drop_all(&self, direction: &'static str) {
        let dropped = self.ownership.clear();
        if !dropped.is_empty() {
            self.metrics.handover(direction, dropped.len() as u64);
        }
        self.metrics.owned_shards.set(0);
    }

    async fn session(
        &self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<SessionEnd, ShardError> {
        let ttl = self.config.lease_ttl.max(Duration::from_secs(2));
        let etcd = |operation| move |source| ShardError::Etcd { operation, source };
        let mut client = self.client.clone();
        let lease = client
            .lease_grant(ttl.as_secs() as i64, None)
            .await
            .map_err(etcd("grant lease"))?
            .id();
        let info = MemberInfo {
            id: self.config.id.clone(),
            grpc_endpoint: self.config.grpc_endpoint.clone(),
        };
        let value = serde_json::to_vec(&info).unwrap_or_default();
        client
            .put(
                format!("{}{}", self.members_prefix(), self.config.id),
                value,
                Some(PutOptions::new().with_lease(lease)),
            )
            .await
            .map_err(etcd("register member"))?;
        let (mut keeper, mut responses) = client
            .lease_keep_alive(lease)
            .await
            .map_err(etcd("keep lease alive"))?;
        let mut watch = client
            .watch(
                format!("{}/", self.config.prefix),
                Some(WatchOptions::new().with_prefix()),
            )
            .await
            .map_err(etcd("watch members"))?;
        info!(id = %self.config.id, lease, ?ttl, "joined the hub ring");
        let mut renewed = Instant::now();
        let mut tick = tokio::time::interval(ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.reconcile(lease).await?;
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        self.leave(lease).await;
                        return Ok(SessionEnd::Shutdown);
                    }
                }
                _ = tick.tick() => {
                    let renewal = async {
                        keeper.keep_alive().await?;
                        responses.message().await
                    };
                    match tokio::time::timeout(ttl / 3, renewal).await {
                        Ok(Ok(Some(resp))) if resp.ttl() > 0 => renewed = Instant::now(),
                        Ok(Ok(Some(_))) => return Ok(SessionEnd::LeaseLost),
                        other => debug!(?other, "lease renewal failed"),
                    }
                    if renewed.elapsed() >= ttl {
                        return Ok(SessionEnd::LeaseLost);
                    }
                    self.reconcile(lease).await?;
                }
                event = watch.message() => {
                    match event {
                        Ok(Some(_)) => self.reconcile(lease).await?,
                        Ok(None) => return Err(ShardError::Timeout { operation: "watch members ended" }),
                        Err(source) => return Err(ShardError::Etcd { operation: "watch members", source }),
                    }
                }
            }
        }
    }

    /// Releases every shard and revokes the lease (graceful shutdown).
    async fn leave(&self, lease: i64) {
        for shard in self.ownership.shards() {
            if let Some(token) = self.ownership.remove(shard) {
                let _ = self.locks.release(shard, token).await;
                self.metrics.handover("released", 1);
            }
        }
        self.metrics.owned_shards.set(0);
        let mut client = self.client.clone();
        let _ = client.lease_revoke(lease).await;
        info!(id = %self.config.id, "left the hub ring");
    }

    /// Brings held shard locks in line with the ring over the current member set.
    async fn reconcile(&self, lease: i64) -> Result<(), ShardError> {
        let mut client = self.client.clone();
        let prefix_opts = || Some(GetOptions::new().with_prefix());
        let members_resp = client
            .get(self.members_prefix(), prefix_opts())
            .await
            .map_err(|source| ShardError::Etcd {
                operation: "list members",
                source,
            })?;
        let members: Vec<MemberInfo> = members_resp
            .kvs()
            .iter()
            .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
            .collect();
        let locks_resp = client
            .get(self.locks.locks_prefix(), prefix_opts())
            .await
            .map_err(|source| ShardError::Etcd {
                operation: "list shard locks",
                source,
            })?;
        let prefix = self.locks.locks_prefix();
        let held: BTreeMap<u32, i64> = locks_resp
            .kvs()
            .iter()
            .filter_map(|kv| {
                let key = std::str::from_utf8(kv.key()).ok()?;
                let shard = key.strip_prefix(&prefix)?.parse().ok()?;
                Some((shard, kv.create_revision()))
            })
            .collect();
        let ring = Ring::new(members.iter().map(|m| m.id.clone()), self.config.vnodes);
        let wanted: BTreeSet<u32> = (0..SHARD_COUNT)
            .filter(|s| ring.shard_owner(*s) == Some(self.config.id.as_str()))
            .collect();
        self.metrics.members.set(members.len() as i64);
        self.members.send_if_modified(|current| {
            let changed = *current != members;
            *current = members;
            changed
        });
        let mut leaving = Vec::new();
        for shard in self.ownership.shards() {
            let Some(token) = self.ownership.token(shard) else {
                continue;
            };
            if held.get(&shard) != Some(&token) {
                // The lock is gone or someone else's: stop acting on the shard immediately.
                self.ownership.remove(shard);
                self.metrics.handover("lost", 1);
                continue;
            }
            if !wanted.contains(&shard) {
                // Stop starting new work on the shard; it is drained below.
                self.ownership.remove(shard);
                leaving.push((shard, token));
            }
        }
        if !leaving.is_empty() {
            // Drain, then release, so the new owner starts after the old one finished. The
            // deadline keeps lease renewal on time; work still running after it fails as fenced.
            let shards: Vec<u32> = leaving.iter().map(|(s, _)| *s).collect();
            let deadline = tokio::time::Instant::now() + self.config.lease_ttl / 3;
            let busy = self.ownership.drain(&shards, deadline).await;
            if !busy.is_empty() {
                self.metrics.handover("drain_timeout", busy.len() as u64);
                warn!(
                    ?busy,
                    "shards still busy at the drain deadline; releasing anyway"
                );
            }
            for (shard, token) in leaving {
                self.locks.release(shard, token).await?;
                self.metrics.handover("released", 1);
                debug!(shard, "drained and released shard");
            }
        }
        for shard in wanted {
            if self.ownership.token(shard).is_some() || held.contains_key(&shard) {
                continue;
            }
            if let Some(token) = self
                .locks
                .try_acquire(shard, &self.config.id, lease)
                .await?
            {
                self.ownership.insert(shard, token);
                self.metrics.handover("acquired", 1);
                debug!(shard, token, "acquired shard");
            }
        }
        self.metrics.owned_shards.set(self.ownership.len() as i64);
        Ok(())
    }
}
