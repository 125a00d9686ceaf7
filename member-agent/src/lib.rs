//! kruise-agent: OpenKruise's workload controllers and admission webhooks for one member cluster.
//!
//! Shared controller plumbing lives at the top level (expectations, revisions, the in-place
//! update engine, lifecycle hooks, orderings, pod readiness); each kind has its own module.

pub mod cli;
pub mod cloneset;
pub mod controllerref;
pub mod crr;
pub mod events;
pub mod expectations;
pub mod gates;
pub mod hublink;
pub mod imagepulljob;
pub mod inplace;
pub mod leader;
pub mod lifecycle;
pub mod metrics;
pub mod nodeimage;
pub mod ordering;
pub mod podpatch;
pub mod podreadiness;
pub mod pods;
pub mod predownload;
pub mod revision;
pub mod selector;
pub mod statefulset;
pub mod telemetry;
pub mod webhook;
pub mod workload;
