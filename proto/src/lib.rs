//! gRPC definitions of the hub <-> agent federation link, and the join file that carries an
//! agent's credentials.

pub mod join;

/// `kruise.federation.v1alpha1`: Join and the resumable Sync stream.
pub mod federation {
    tonic::include_proto!("kruise.federation.v1alpha1");
}

pub use join::{JoinFile, JoinFileError};

/// gRPC metadata key carrying the cluster token (`Bearer <token>`).
pub const AUTHORIZATION: &str = "authorization";
