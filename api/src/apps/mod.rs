//! `apps.kruise.io` kinds.

pub mod common;
pub mod v1alpha1;
pub mod v1beta1;
pub mod wellknown;
