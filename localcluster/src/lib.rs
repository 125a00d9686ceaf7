//! kruise-local: a simulated member cluster — scheduler, kubelet and CRI simulators that drive
//! pods through the API server the way a small real cluster does.

pub mod cri;
pub mod demo;
pub mod events;
pub mod kubelet;
pub mod latency;
pub mod quantity;
pub mod runtime;
pub mod scheduler;
pub mod sim;
