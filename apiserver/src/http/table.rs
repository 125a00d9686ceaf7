//! Server-side printing (`as=Table`): built-in printers with kubectl's columns, CRD printer
//! columns, the default Name/Created At table, and PartialObjectMetadata.

mod builtin;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::negotiate::IncludeObject;
use crate::registry::{Printer, PrinterColumn, ResourceDescriptor};

/// One column definition.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: &'static str,
    pub column_type: &'static str,
    pub format: &'static str,
    pub priority: i64,
    pub description: &'static str,
}

/// A column shown by default.
pub const fn col(name: &'static str, column_type: &'static str) -> Column {
    Column {
        name,
        column_type,
        format: "",
        priority: 0,
        description: "",
    }
}

/// A column shown only with `-o wide`.
pub const fn wide(name: &'static str, column_type: &'static str) -> Column {
    Column {
        name,
        column_type,
        format: "",
        priority: 1,
        description: "",
    }
}

/// The name column.
pub const NAME: Column = Column {
    name: "Name",
    column_type: "string",
    format: "name",
    priority: 0,
    description: "Name must be unique within a namespace.",
};

/// `{"kind":"PartialObjectMetadata",...}` for an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// kubectl's human duration (`HumanDuration`): `45s`, `5m`, `3h20m`, `2d`, `1y20d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of an RFC 3339 timestamp, as printed in AGE columns (`<unknown>` if absent).
pub fn age(timestamp: Option<&str>, now: DateTime<Utc>) -> String {
    match timestamp.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => human_duration((now - t.with_timezone(&Utc)).num_seconds()),
        None => "<unknown>".to_string(),
    }
}

fn column_json(c: &Column) -> Value {
    json!({"name": c.name, "type": c.column_type, "format": c.format, "description": c.description, "priority": c.priority})
}

fn row_object(obj: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Metadata => Some(partial_metadata(obj)),
        IncludeObject::Object => Some(obj.clone()),
    }
}

fn custom_cell(column: &PrinterColumn, obj: &Value, now: DateTime<Utc>) -> Value {
    let value = super::patching::evaluate_json_path(&column.json_path, obj);
    let Some(value) = value else {
        return Value::Null;
    };
    match column.column_type.as_str() {
        "date" => match value.as_str() {
            Some(ts) => json!(age(Some(ts), now)),
            None => Value::Null,
        },
        "integer" => value.as_i64().map(|i| json!(i)).unwrap_or(value),
        "number" => value.as_f64().map(|f| json!(f)).unwrap_or(value),
        "boolean" => value,
        _ => match value {
            Value::String(s) => json!(s),
            other => json!(other.to_string()),
        },
    }
}

/// Builds the Table for objects of one resource.
pub fn table(
    desc: &ResourceDescriptor,
    items: &[Value],
    include: IncludeObject,
    list_revision: Option<i64>,
    now: DateTime<Utc>,
) -> Value {
    let (columns, rows): (Vec<Value>, Vec<Vec<Value>>) = match &desc.printer {
        Printer::Columns(custom) if !custom.is_empty() => {
            let mut defs = vec![column_json(&NAME)];
            defs.extend(custom.iter().map(|c| {
                json!({"name": c.name, "type": c.column_type, "format": c.format, "description": c.description, "priority": c.priority})
            }));
            let rows = items
                .iter()
                .map(|obj| {
                    let mut cells = vec![json!(obj
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or(""))];
                    cells.extend(custom.iter().map(|c| custom_cell(c, obj, now)));
                    cells
                })
                .collect();
            (defs, rows)
        }
        Printer::Columns(_) => {
            let defs = vec![column_json(&NAME), column_json(&col("Age", "date"))];
            let rows = items
                .iter()
                .map(|obj| vec![json!(name_of(obj)), json!(age(created(obj), now))])
                .collect();
            (defs, rows)
        }
        Printer::Builtin => {
            let (columns, printer) = builtin::printer(&desc.kind, &desc.group);
            let defs = columns.iter().map(column_json).collect();
            let rows = items.iter().map(|obj| printer(obj, now)).collect();
            (defs, rows)
        }
    };
    let rows: Vec<Value> = items
        .iter()
        .zip(rows)
        .map(|(obj, cells)| {
            let mut row = json!({"cells": cells});
            if let Some(object) = row_object(obj, include) {
                row["object"] = object;
            }
            row
        })
        .collect();
    let mut metadata = json!({});
    if let Some(rv) = list_revision {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": columns, "rows": rows})
}

/// `metadata.name`.
pub fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.creationTimestamp`.
pub fn created(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
}

/// A `LabelSelector` object printed as a selector string (`app=web,tier in (a,b)`).
pub fn builtin_selector_string(selector: &Value) -> String {
    builtin::selector_string(Some(selector))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(300), "5m");
        assert_eq!(human_duration(3 * 3600 + 20 * 60), "3h20m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(2 * 86400), "2d");
        assert_eq!(human_duration(3 * 86400 + 5 * 3600), "3d5h");
        assert_eq!(human_duration(400 * 86400), "400d");
    }
}
