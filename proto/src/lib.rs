//! gRPC definitions of the hub <-> agent federation link.

/// `kruise.federation.v1alpha1`: Join and the resumable Sync stream.
pub mod federation {
    tonic::include_proto!("kruise.federation.v1alpha1");
}
