//! The hub's UnitedDeployment controller: places subsets on member clusters, writes one Work per
//! (subset, cluster) through the fenced write path, rolls new revisions out in waves, fails over
//! with the Adaptive schedule strategy and aggregates Work status into the UnitedDeployment.
//!
//! - [`placement`]: replicas per subset (OpenKruise's allocators) and per cluster;
//! - [`workload`]: the subset workload manifest a Work carries;
//! - [`waves`]: the wave state machine;
//! - [`failover`]: the adaptive failover decision;
//! - [`status`]: status aggregation;
//! - [`controller`]: watches, ownership, fenced writes.

pub mod controller;
pub mod failover;
pub mod placement;
pub mod plan;
pub mod status;
pub mod waves;
pub mod workload;

pub use controller::{UdController, UdError};

/// Label on Works naming the UnitedDeployment that owns them.
pub const OWNER_LABEL: &str = "federation.kruise.io/united-deployment";
/// Label on Works naming their target cluster.
pub const CLUSTER_LABEL: &str = "federation.kruise.io/cluster";
/// Annotation on Works: the Work's resourceVersion its current spec replaced. A status whose
/// `observedRevision` is greater reports on the current spec.
pub const SPEC_BASE_ANNOTATION: &str = "federation.kruise.io/spec-base-revision";

/// Name of the Work of `subset` in `cluster`.
pub fn work_name(ud: &str, subset: &str, cluster: &str) -> String {
    format!("{ud}-{subset}-{cluster}")
}

/// A chrono time as a Kubernetes `Time`.
pub fn to_time(
    t: chrono::DateTime<chrono::Utc>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    let ts = k8s_openapi::jiff::Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts)
}

/// A Kubernetes `Time` as a chrono time.
pub fn from_time(
    t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}
