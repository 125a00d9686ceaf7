//! Validation as Kruise's validating webhooks do it, as pure functions that report every
//! violation with its field path (see [`crate::field::FieldError`]).

mod cloneset;
mod daemonset;
mod federation;
mod hub;
mod images;
mod jobs;
mod podunavailablebudget;
mod sidecarset;
mod statefulset;
mod uniteddeployment;
mod update;
mod workloadspread;

pub mod common;

pub use cloneset::validate_cloneset_spec;
pub use daemonset::validate_daemonset_spec;
pub use statefulset::validate_statefulset_spec;
pub use update::ValidatedUpdate;

use crate::field::FieldError;

/// A kind whose objects can be validated on their own (create-time rules).
pub trait Validated {
    /// Every violation, in field order; empty when the object is valid.
    fn validate(&self) -> Vec<FieldError>;
}
