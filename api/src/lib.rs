//! OpenKruise (`apps.kruise.io`, `policy.kruise.io`) and federation (`federation.kruise.io`) API types,
//! with defaulting ([`Defaulted`]), validation ([`Validated`], reporting [`field::FieldError`]s) and
//! CRD generation ([`member_crds`], [`hub_crds`]).

// kube's `#[kube(printcolumn(..), shortname = .., derive = ..)]` repeats keys by design.
#![allow(clippy::duplicated_attributes)]

pub mod apps;
pub mod crd;
pub mod defaults;
pub mod federation;
pub mod field;
pub mod intstr;
pub mod policy;
pub mod schema;
pub mod selector;
pub mod validation;

pub use crd::{hub_crds, member_crds};
pub use defaults::Defaulted;
pub use field::FieldError;
pub use validation::{Validated, ValidatedUpdate};
