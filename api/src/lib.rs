//! OpenKruise (`apps.kruise.io`, `policy.kruise.io`) and federation (`federation.kruise.io`) API types,
//! with defaulting, validation and CRD generation.

pub mod apps;
pub mod crd;
pub mod federation;
pub mod field;
pub mod intstr;
pub mod policy;
pub mod schema;

pub use crd::{hub_crds, member_crds};
