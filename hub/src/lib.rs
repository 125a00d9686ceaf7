//! kruise-hub: the federation control plane.
//!
//! A hub replica serves the Kubernetes-style hub API (the `kruise-apiserver` library over etcd or
//! an embedded store), the gRPC link member agents connect to, and takes part in a consistent-hash
//! ring of replicas whose shard locks fence every write a replica makes for the objects it owns.

pub mod cli;
pub mod clusterctl;
pub mod health;
pub mod link;
pub mod metrics;
pub mod registry;
pub mod ring;
pub mod serve;
pub mod shard;
pub mod ud;
