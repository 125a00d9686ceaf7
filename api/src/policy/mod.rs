//! `policy.kruise.io` kinds.

pub mod v1alpha1;
