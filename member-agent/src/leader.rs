//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it:
//! acquire when the lease is free or expired, renew every retry period, give up (and let the
//! process exit) when renewal has failed for the renew deadline.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tracing::{info, warn};

/// Errors of leader election.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Renewal kept failing for longer than the renew deadline.
    #[error("lost the lease {namespace}/{name}")]
    Lost {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
    },
}

impl Error {
    /// Whether retrying can help (it cannot: the process must restart as a follower).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Lost { .. } => false,
        }
    }

    /// Short reason for metrics and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Lost { .. } => "LeaseLost",
        }
    }
}

/// Lease parameters.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Lease namespace.
    pub namespace: String,
    /// Lease name.
    pub name: String,
    /// This candidate's identity.
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before giving up.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

/// What a candidate should do with a lease it has read (pure).
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseDecision {
    /// Someone else holds a valid lease.
    Wait,
    /// Take (or renew) the lease; `transitions` is the new `leaseTransitions`.
    Take {
        /// New transition count.
        transitions: i32,
    },
}

/// Decides whether `identity` may take or renew `spec` at `now`.
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> LeaseDecision {
    let Some(spec) = spec else {
        return LeaseDecision::Take { transitions: 0 };
    };
    let transitions = spec.lease_transitions.unwrap_or(0);
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == identity {
        return LeaseDecision::Take { transitions };
    }
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let expired = match renewed {
        Some(t) => now.as_second() - t.as_second() >= duration,
        None => true,
    };
    if holder.is_empty() || expired {
        LeaseDecision::Take {
            transitions: transitions + 1,
        }
    } else {
        LeaseDecision::Wait
    }
}

async fn try_acquire(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let current = api.get_opt(&cfg.name).await?;
    let decision = decide(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &cfg.identity,
        now,
    );
    let LeaseDecision::Take { transitions } = decision else {
        return Ok(false);
    };
    let held_before = current
        .as_ref()
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.holder_identity.as_deref())
        == Some(cfg.identity.as_str());
    let acquire_time = if held_before {
        current
            .as_ref()
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.acquire_time.clone())
    } else {
        Some(MicroTime(now))
    };
    let spec = LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(cfg.lease_duration.as_secs().max(1) as i32),
        acquire_time,
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    match current {
        Some(mut lease) => {
            lease.spec = Some(spec);
            match api.replace(&cfg.name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    namespace: Some(cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

async fn ensure_namespace(client: &Client, ns: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    if let Ok(None) = api.get_opt(ns).await {
        let obj = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        if let Err(e) = api.create(&PostParams::default(), &obj).await {
            warn!(error = %e, namespace = ns, "creating the leader election namespace");
        }
    }
}

/// Blocks until this candidate holds the lease.
pub async fn acquire(client: &Client, cfg: &LeaseConfig) {
    ensure_namespace(client, &cfg.namespace).await;
    let api: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    loop {
        match try_acquire(&api, cfg).await {
            Ok(true) => {
                info!(lease = %cfg.name, identity = %cfg.identity, "acquired leadership");
                return;
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "leader election: reading or writing the lease"),
        }
        tokio::time::sleep(cfg.retry_period).await;
    }
}

/// Renews the lease until renewal fails for longer than the renew deadline; then returns the error.
pub async fn hold(client: &Client, cfg: &LeaseConfig) -> Error {
    let api: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    let mut last_ok = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(cfg.retry_period).await;
        match tokio::time::timeout(
            cfg.retry_period.max(Duration::from_secs(1)),
            try_acquire(&api, cfg),
        )
        .await
        {
            Ok(Ok(true)) => last_ok = tokio::time::Instant::now(),
            Ok(Ok(false)) => {
                return Error::Lost {
                    namespace: cfg.namespace.clone(),
                    name: cfg.name.clone(),
                }
            }
            Ok(Err(e)) => warn!(error = %e, "renewing the lease"),
            Err(_) => warn!("renewing the lease timed out"),
        }
        if last_ok.elapsed() > cfg.renew_deadline {
            return Error::Lost {
                namespace: cfg.namespace.clone(),
                name: cfg.name.clone(),
            };
        }
    }
}

/// Gives the lease up (on graceful shutdown) so another candidate takes over at once.
pub async fn release(client: &Client, cfg: &LeaseConfig) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    let Ok(Some(mut lease)) = api.get_opt(&cfg.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(cfg.identity.as_str()) {
        return;
    }
    spec.holder_identity = Some(String::new());
    if let Err(e) = api.replace(&cfg.name, &PostParams::default(), &lease).await {
        warn!(error = %e, "releasing the lease");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renewed.parse().unwrap())),
            lease_transitions: Some(2),
            ..Default::default()
        }
    }

    #[test]
    fn lease_decisions() {
        let now: Timestamp = "2026-01-01T00:00:20Z".parse().unwrap();
        assert_eq!(
            decide(None, "me", now),
            LeaseDecision::Take { transitions: 0 }
        );
        let fresh = spec("other", "2026-01-01T00:00:10Z");
        assert_eq!(decide(Some(&fresh), "me", now), LeaseDecision::Wait);
        assert_eq!(
            decide(Some(&fresh), "other", now),
            LeaseDecision::Take { transitions: 2 }
        );
        let stale = spec("other", "2026-01-01T00:00:04Z");
        assert_eq!(
            decide(Some(&stale), "me", now),
            LeaseDecision::Take { transitions: 3 }
        );
        let released = spec("", "2026-01-01T00:00:19Z");
        assert_eq!(
            decide(Some(&released), "me", now),
            LeaseDecision::Take { transitions: 3 }
        );
    }
}
