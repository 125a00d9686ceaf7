//! Strategic merge patch, following `k8s.io/apimachinery/pkg/util/strategicpatch` as the server
//! applies it: lists merge by key where the schema says so, `$`-directives steer the merge and are
//! never stored, and `null` deletes.

use serde_json::{Map, Value};

use super::{parse_object_body, ListStrategy, PatchError, PatchSchema};

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch body to `doc` using the list strategies of `schema`.
pub fn strategic_merge_patch(
    doc: &Value,
    body: &[u8],
    schema: &dyn PatchSchema,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = parse_object_body(body, "strategic merge patch")? else {
        return Err(PatchError::Malformed(
            "strategic merge patch must be an object".into(),
        ));
    };
    let original = match doc {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let mut merger = Merger {
        schema,
        path: Vec::new(),
    };
    merger.merge_map(original, patch).map(Value::Object)
}

/// The merge state: the schema and the object-key path of the value being merged.
struct Merger<'s> {
    schema: &'s dyn PatchSchema,
    path: Vec<String>,
}

/// What identifies a list element: the merge key's value for objects, the value for scalars.
#[derive(Clone, Copy)]
enum Identity<'k> {
    Scalar,
    Key(&'k str),
}

impl Identity<'_> {
    fn of(self, v: &Value) -> Option<&Value> {
        match self {
            Identity::Scalar => Some(v),
            Identity::Key(k) => v.get(k),
        }
    }

    fn position(self, list: &[Value], v: &Value) -> Option<usize> {
        let id = self.of(v)?;
        list.iter().position(|x| self.of(x) == Some(id))
    }
}

impl Merger<'_> {
    fn strategy(&self) -> ListStrategy {
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        self.schema.list_strategy(&path)
    }

    fn field_path(&self) -> String {
        self.path.join(".")
    }

    fn merge_map(
        &mut self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.shift_remove(PATCH_DIRECTIVE) {
            match directive.as_str() {
                Some("replace") => return self.merge_map(Map::new(), patch),
                Some("delete") => return Ok(Map::new()),
                Some("merge") => {}
                _ => {
                    return Err(PatchError::Malformed(format!(
                        "unknown patch type {directive} in map at {:?}",
                        self.field_path()
                    )))
                }
            }
        }
        retain_keys(&mut original, &mut patch)?;
        self.set_element_orders(&mut original, &mut patch)?;

        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                let Value::Array(remove) = value else {
                    return Err(PatchError::Malformed(format!(
                        "invalid patch: {key} must be a list of primitives"
                    )));
                };
                if let Some(Value::Array(items)) = original.get_mut(field) {
                    items.retain(|item| !remove.contains(item));
                }
                continue;
            }
            if value.is_null() {
                original.shift_remove(&key);
                continue;
            }
            self.path.push(key.clone());
            let merged = match original.get_mut(&key) {
                Some(slot) => {
                    let old = slot.take();
                    self.merge_value(Some(old), value)
                }
                None => self.merge_value(None, value),
            };
            self.path.pop();
            let merged = merged?;
            original.insert(key, merged);
        }
        Ok(original)
    }

    /// Merges a patch value into the live value at the current path; a missing or differently
    /// typed live value is merged as if empty, which also strips directives from new values.
    fn merge_value(&mut self, original: Option<Value>, patch: Value) -> Result<Value, PatchError> {
        match patch {
            Value::Object(p) => {
                let base = match original {
                    Some(Value::Object(o)) => o,
                    _ => Map::new(),
                };
                self.merge_map(base, p).map(Value::Object)
            }
            Value::Array(p) => {
                let base = match original {
                    Some(Value::Array(o)) => o,
                    _ => Vec::new(),
                };
                self.merge_list(base, p).map(Value::Array)
            }
            scalar => Ok(scalar),
        }
    }

    fn merge_list(
        &mut self,
        original: Vec<Value>,
        patch: Vec<Value>,
    ) -> Result<Vec<Value>, PatchError> {
        let strategy = self.strategy();
        if strategy == ListStrategy::Replace {
            return patch.into_iter().map(|item| self.clean(item)).collect();
        }
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        match self.element_kind(&original, &patch)? {
            ElementKind::Scalar => Ok(merge_scalars(original, patch)),
            ElementKind::Object => {
                let ListStrategy::MergeByKey(key) = strategy else {
                    return Err(PatchError::Failed(format!(
                        "cannot merge lists of objects without a merge key at {:?}",
                        self.field_path()
                    )));
                };
                self.merge_by_key(original, patch, &key)
            }
        }
    }

    /// A patch value stored without a live counterpart, with directives and nulls removed.
    fn clean(&mut self, item: Value) -> Result<Value, PatchError> {
        match item {
            Value::Object(m) => self.merge_map(Map::new(), m).map(Value::Object),
            other => Ok(other),
        }
    }

    fn element_kind(&self, original: &[Value], patch: &[Value]) -> Result<ElementKind, PatchError> {
        let mut kind = None;
        for item in original.iter().chain(patch) {
            let this = match item {
                Value::Array(_) => {
                    return Err(PatchError::Failed(format!(
                        "lists of lists are not supported at {:?}",
                        self.field_path()
                    )))
                }
                Value::Object(_) => ElementKind::Object,
                _ => ElementKind::Scalar,
            };
            if kind.is_some_and(|k| k != this) {
                return Err(PatchError::Failed(format!(
                    "list element types are not identical at {:?}",
                    self.field_path()
                )));
            }
            kind = Some(this);
        }
        Ok(kind.unwrap_or(ElementKind::Scalar))
    }

    fn merge_by_key(
        &mut self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
    ) -> Result<Vec<Value>, PatchError> {
        let mut regular = Vec::with_capacity(patch.len());
        let mut replace = false;
        for item in patch {
            let Some(directive) = item.get(PATCH_DIRECTIVE).cloned() else {
                regular.push(item);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    let id = item.get(key).ok_or_else(|| no_merge_key(&item, key))?;
                    original.retain(|o| o.get(key) != Some(id));
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    if item.get(key).is_some() {
                        regular.push(item);
                    }
                }
                _ => {
                    return Err(PatchError::Malformed(format!(
                        "unknown patch type {directive} in list element {item}"
                    )))
                }
            }
        }
        if replace {
            return regular.into_iter().map(|item| self.clean(item)).collect();
        }

        let server_order: Vec<Value> = original.iter().map(|o| key_only(o, key)).collect();
        let mut merged = original;
        for item in &regular {
            let id = item.get(key).ok_or_else(|| no_merge_key(item, key))?;
            let Value::Object(p) = item.clone() else {
                return Err(no_merge_key(item, key));
            };
            match merged.iter_mut().find(|o| o.get(key) == Some(id)) {
                Some(slot) => {
                    let Value::Object(o) = slot.take() else {
                        return Err(no_merge_key(slot, key));
                    };
                    *slot = Value::Object(self.merge_map(o, p)?);
                }
                None => merged.push(Value::Object(self.merge_map(Map::new(), p)?)),
            }
        }
        Ok(order(merged, &regular, &server_order, Identity::Key(key)))
    }

    /// Applies every `$setElementOrder/<field>` of `patch`, merging the field's list and
    /// removing both the directive and the field from `patch`.
    fn set_element_orders(
        &mut self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for directive in keys {
            let Some(Value::Array(order_list)) = patch.shift_remove(&directive) else {
                return Err(PatchError::Malformed(format!(
                    "invalid patch: {directive} must be a list"
                )));
            };
            let field = &directive[SET_ELEMENT_ORDER.len()..];
            if field.is_empty() {
                return Err(PatchError::Malformed(format!(
                    "invalid patch: {directive} names no field"
                )));
            }
            let patch_list = match patch.get(field) {
                None => None,
                Some(Value::Array(_)) => match patch.shift_remove(field) {
                    Some(Value::Array(items)) => Some(items),
                    _ => None,
                },
                // a null or non-list value for the field is merged by the regular rules
                Some(_) => continue,
            };
            let original_list = match original.get(field) {
                None => None,
                Some(Value::Array(items)) => Some(items.clone()),
                Some(other) => {
                    return Err(PatchError::Failed(format!(
                        "cannot apply {directive}: {field} is {other}, not a list"
                    )))
                }
            };
            self.path.push(field.to_string());
            let result = self.ordered_merge(original_list, patch_list, &order_list, &directive);
            self.path.pop();
            if let Some(list) = result? {
                original.insert(field.to_string(), Value::Array(list));
            }
        }
        Ok(())
    }

    fn ordered_merge(
        &mut self,
        original: Option<Vec<Value>>,
        patch: Option<Vec<Value>>,
        order_list: &[Value],
        directive: &str,
    ) -> Result<Option<Vec<Value>>, PatchError> {
        let identity = match self.strategy() {
            ListStrategy::MergeByKey(key) => Some(key),
            ListStrategy::MergePrimitives => None,
            // ordering directives only accompany merging lists; a replaced list is taken as is
            ListStrategy::Replace => {
                return match patch {
                    Some(p) => self.merge_list(Vec::new(), p).map(Some),
                    None => Ok(None),
                }
            }
        };
        let identity_ref = match &identity {
            Some(k) => Identity::Key(k),
            None => Identity::Scalar,
        };
        if let Some(p) = &patch {
            validate_order(p, order_list, identity_ref, directive)?;
        }
        let server_order = original.clone().unwrap_or_default();
        let merged = match (original, patch) {
            (Some(o), None) => o,
            (None, Some(p)) => self.merge_list(Vec::new(), p)?,
            (Some(o), Some(p)) => self.merge_list(o, p)?,
            (None, None) => return Ok(None),
        };
        Ok(Some(order(merged, order_list, &server_order, identity_ref)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Scalar,
    Object,
}

fn no_merge_key(item: &Value, key: &str) -> PatchError {
    PatchError::Failed(format!(
        "map: {item} does not contain declared merge key: {key}"
    ))
}

fn key_only(item: &Value, key: &str) -> Value {
    let mut m = Map::new();
    if let Some(v) = item.get(key) {
        m.insert(key.to_string(), v.clone());
    }
    Value::Object(m)
}

/// Set-union of two scalar lists (first occurrence kept), ordered like the Go implementation.
fn merge_scalars(original: Vec<Value>, patch: Vec<Value>) -> Vec<Value> {
    let server_order = original.clone();
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for item in original.into_iter().chain(patch.iter().cloned()) {
        if !merged.contains(&item) {
            merged.push(item);
        }
    }
    order(merged, &patch, &server_order, Identity::Scalar)
}

/// Orders a merged list: items named by `patch_order` in that order, the live-only items in
/// their live order, interleaved where both appear in the live list (`normalizeElementOrder`).
fn order(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    id: Identity<'_>,
) -> Vec<Value> {
    let (mut from_patch, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|item| id.position(patch_order, item).is_some());
    from_patch.sort_by_key(|item| id.position(patch_order, item).unwrap_or(usize::MAX));
    server_only.sort_by_key(|item| id.position(server_order, item).unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (id.position(server_order, l), id.position(server_order, r)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// The patch list's items must appear in `$setElementOrder` in the same relative order.
fn validate_order(
    patch: &[Value],
    order_list: &[Value],
    id: Identity<'_>,
    directive: &str,
) -> Result<(), PatchError> {
    let items: Vec<&Value> = patch
        .iter()
        .filter(|item| item.get(PATCH_DIRECTIVE).is_none())
        .collect();
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order_list.len() {
        if id.of(items[pi]).is_some() && id.of(items[pi]) == id.of(&order_list[oi]) {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() {
        return Err(PatchError::Failed(format!(
            "the order in the patch list {} doesn't match the {directive} list {}",
            Value::Array(patch.to_vec()),
            Value::Array(order_list.to_vec())
        )));
    }
    Ok(())
}

/// `$retainKeys`: drop live keys not listed; every key the patch sets must be listed.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(keys) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(keys) = keys else {
        return Err(PatchError::Malformed(
            "invalid patch: $retainKeys must be a list".into(),
        ));
    };
    let listed = |k: &str| keys.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(PatchError::Malformed(format!(
                "invalid patch: field {k:?} is set but not listed in $retainKeys"
            )));
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

#[cfg(test)]
#[path = "strategic_tests.rs"]
mod tests;
