//! `apps.kruise.io/v1beta1` (the storage version of Advanced StatefulSet).

pub mod statefulset;

pub use statefulset::{StatefulSet, StatefulSetSpec, StatefulSetStatus};
