//! kruise-daemon: runs on each node; pulls the images its NodeImage lists and recreates the
//! containers ContainerRecreateRequests name, both through the node's CRI runtime.

pub mod auth;
pub mod cri;
pub mod crr;
pub mod imagepull;
pub mod metrics;
