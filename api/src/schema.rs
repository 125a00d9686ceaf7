//! Hand-written schema fragments for fields whose CRD schema differs from the Rust type.
//!
//! Pod templates, PVC templates, patches and embedded manifests are declared schemaless as upstream
//! Kruise does; the admission webhook validates them instead. String enums keep a `String` Rust type
//! (so validation can name the bad value) while the CRD carries the `enum` constraint.

use schemars::{json_schema, Schema, SchemaGenerator};

/// `type: object` with `x-kubernetes-preserve-unknown-fields: true`.
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A list of schemaless objects (e.g. `volumeClaimTemplates`).
pub fn preserve_unknown_object_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        },
    })
}

/// A map from string to `date-time` strings (e.g. PUB `disruptedPods`).
pub fn string_to_time_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "type": "string", "format": "date-time" },
    })
}

/// Defines a schema function for a string field restricted to the given values.
macro_rules! string_enum_schema {
    ($name:ident, [$($value:literal),+ $(,)?]) => {
        pub(crate) fn $name(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
            ::schemars::json_schema!({
                "type": "string",
                "enum": [$($value),+],
            })
        }
    };
}
pub(crate) use string_enum_schema;
