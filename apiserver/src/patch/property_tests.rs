//! Property checks over seeded pseudo-random documents.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

use super::{
    apply_patch, json_patch, merge_patch, strategic_merge_patch, BuiltinPatchSchema, NoMergeKeys,
};

const KEYS: [&str; 5] = ["a", "b", "c", "name", "spec"];
const ROUNDS: usize = 300;

fn scalar(rng: &mut StdRng) -> Value {
    match rng.random_range(0..3) {
        0 => Value::from(["x", "y", "z"][rng.random_range(0..3)]),
        1 => Value::from(rng.random_range(0..4)),
        _ => Value::from(rng.random_bool(0.5)),
    }
}

/// A random document; `nulls` allows `null` as an object member (a deletion in a patch).
fn value(rng: &mut StdRng, depth: usize, nulls: bool) -> Value {
    if depth == 0 || rng.random_bool(0.3) {
        return scalar(rng);
    }
    if rng.random_bool(0.7) {
        object(rng, depth, nulls)
    } else {
        let len = rng.random_range(0..3);
        Value::Array((0..len).map(|_| value(rng, depth - 1, false)).collect())
    }
}

fn object(rng: &mut StdRng, depth: usize, nulls: bool) -> Value {
    let mut m = Map::new();
    for _ in 0..rng.random_range(0..4) {
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let v = if nulls && rng.random_bool(0.2) {
            Value::Null
        } else {
            value(rng, depth.saturating_sub(1), nulls)
        };
        m.insert(key.to_string(), v);
    }
    Value::Object(m)
}

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialise")
}

#[test]
fn merge_patch_with_itself_is_identity() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..ROUNDS {
        let doc = object(&mut rng, 4, false);
        assert_eq!(merge_patch(&doc, &body(&doc)).expect("merge"), doc, "{doc}");
    }
}

#[test]
fn json_patch_applies_a_computed_diff() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..ROUNDS {
        let from = object(&mut rng, 4, false);
        let to = object(&mut rng, 4, false);
        let diff = json_patch::diff(&from, &to);
        let patch = serde_json::to_value(&diff).expect("diff as JSON");
        let got = json_patch(&from, &body(&patch)).expect("apply diff");
        assert_eq!(got, to, "from {from} by {patch}");
    }
}

#[test]
fn strategic_merge_without_merge_keys_is_a_json_merge_patch() {
    let mut rng = StdRng::seed_from_u64(13);
    for _ in 0..ROUNDS {
        let doc = object(&mut rng, 4, false);
        let patch = object(&mut rng, 4, true);
        let smp = strategic_merge_patch(&doc, &body(&patch), &NoMergeKeys).expect("smp");
        let merge = merge_patch(&doc, &body(&patch)).expect("merge");
        assert_eq!(smp, merge, "doc {doc} patch {patch}");
    }
}

#[test]
fn strategic_merge_and_apply_of_a_document_onto_itself_are_identity() {
    let mut rng = StdRng::seed_from_u64(17);
    let schema = BuiltinPatchSchema::new("Deployment", "apps");
    for _ in 0..ROUNDS {
        let mut doc = object(&mut rng, 4, false);
        if let Value::Object(m) = &mut doc {
            m.insert("apiVersion".into(), Value::from("apps/v1"));
            m.insert("kind".into(), Value::from("Deployment"));
        }
        assert_eq!(
            strategic_merge_patch(&doc, &body(&doc), &schema).expect("smp"),
            doc
        );
        assert_eq!(
            apply_patch(Some(&doc), &body(&doc), &schema).expect("apply"),
            doc
        );
    }
}
