//! Defaulting, as Kruise's mutating webhooks do it (spec section 19).
//!
//! Every kind implements [`Defaulted`]; applying defaults twice changes nothing.

mod others;
pub mod pod;
mod workloads;

pub use others::{default_crr_grace_period, default_nodeimage_created_at};
pub use pod::{default_pod_template, PullPolicyDefault};

/// A kind that has webhook defaults.
pub trait Defaulted {
    /// Fills unset fields with their defaults.
    fn apply_defaults(&mut self);
}

/// Convenience: returns a defaulted copy.
pub fn defaulted<T: Defaulted + Clone>(obj: &T) -> T {
    let mut copy = obj.clone();
    copy.apply_defaults();
    copy
}

/// Fills a string field that is unset or empty (Go's zero value), returning the value.
pub(crate) fn set_if_empty<'a>(field: &'a mut Option<String>, value: &str) -> &'a mut String {
    if field.as_deref().is_none_or(str::is_empty) {
        *field = Some(value.to_string());
    }
    field.get_or_insert_with(String::new)
}
