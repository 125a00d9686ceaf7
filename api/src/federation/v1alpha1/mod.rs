//! `federation.kruise.io/v1alpha1`.

pub mod managedcluster;
pub mod work;

pub use managedcluster::{ManagedCluster, ManagedClusterSpec, ManagedClusterStatus};
pub use work::{Work, WorkSpec, WorkStatus};
