//! `federation.kruise.io` kinds: the hub's cluster registry and per-cluster workload placements.

pub mod v1alpha1;
