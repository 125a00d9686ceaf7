use super::*;
use serde_json::json;

fn object() -> Value {
    json!({
        "metadata": {
            "name": "web",
            "labels": {"app.kubernetes.io/name": "web", "tier": "fe"},
            "annotations": {"a.b": "dotted"}
        },
        "spec": {
            "replicas": 3,
            "containers": [
                {"name": "app", "image": "app:1", "ports": [{"containerPort": 80}]},
                {"name": "side", "image": "side:2", "ports": [{"containerPort": 9090}, {"containerPort": 9091}]}
            ]
        },
        "status": {
            "replicas": 2,
            "selector": "app=web",
            "conditions": [
                {"type": "Available", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"},
                {"type": "Ready", "status": "False", "observedGeneration": 4}
            ]
        }
    })
}

#[test]
fn evaluates_printer_column_paths() {
    let cases: Vec<(&str, Value)> = vec![
        (".spec.replicas", json!([3])),
        ("{.spec.replicas}", json!([3])),
        ("{ .status.replicas }", json!([2])),
        ("$.metadata.name", json!(["web"])),
        ("{$.metadata.name}", json!(["web"])),
        ("spec.replicas", json!([3])),
        (
            ".status.conditions[?(@.type==\"Ready\")].status",
            json!(["False"]),
        ),
        (
            ".status.conditions[?(@.type=='Available')].status",
            json!(["True"]),
        ),
        (
            ".status.conditions[?(@.type != 'Ready')].type",
            json!(["Available"]),
        ),
        (
            ".status.conditions[?(@.observedGeneration)].type",
            json!(["Ready"]),
        ),
        (
            ".status.conditions[?(@.observedGeneration >= 4)].type",
            json!(["Ready"]),
        ),
        (
            ".status.conditions[?(@.observedGeneration < 4)].type",
            json!([]),
        ),
        (".spec.containers[*].image", json!(["app:1", "side:2"])),
        (
            ".spec.containers[*].ports[*].containerPort",
            json!([80, 9090, 9091]),
        ),
        (".spec.containers[0].name", json!(["app"])),
        (".spec.containers[-1].name", json!(["side"])),
        (".spec.containers[5].name", json!([])),
        (".spec.containers[0:1].name", json!(["app"])),
        (".spec.containers[1:].name", json!(["side"])),
        (".spec.containers[::2].name", json!(["app"])),
        (".spec.containers[0,1].name", json!(["app", "side"])),
        (
            ".metadata.labels.app\\.kubernetes\\.io/name",
            json!(["web"]),
        ),
        (".metadata.labels['app.kubernetes.io/name']", json!(["web"])),
        (".metadata.annotations['a.b']", json!(["dotted"])),
        (".metadata.labels[\"tier\"]", json!(["fe"])),
        (".metadata.labels['tier','missing']", json!(["fe"])),
        (".metadata.labels.*", json!(["web", "fe"])),
        (".metadata.labels[*]", json!(["web", "fe"])),
        ("..containerPort", json!([80, 9090, 9091])),
        (".spec.missing.deeper", json!([])),
        (".spec.replicas.deeper", json!([])),
        (".metadata.name[0]", json!([])),
    ];
    let obj = object();
    for (expr, want) in cases {
        let path = JsonPath::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let got: Vec<Value> = path.evaluate(&obj).into_iter().cloned().collect();
        assert_eq!(Value::Array(got), want, "{expr}");
    }
}

#[test]
fn root_path_selects_the_document() {
    let obj = object();
    for expr in [".", "{.}", "$", "{$}"] {
        let path = JsonPath::parse(expr).expect(expr);
        assert_eq!(path.evaluate(&obj), vec![&obj], "{expr}");
    }
}

#[test]
fn parse_errors() {
    let cases: &[&str] = &[
        "{.spec.replicas",
        ".spec.",
        ".spec[",
        ".spec[abc]",
        ".spec[1:2:3:4]",
        ".spec[?(@.a == )]",
        ".spec[?(@.a == {)]",
        ".spec name",
        ".a\\",
        ".spec..",
    ];
    for expr in cases {
        let err = JsonPath::parse(expr).expect_err(expr);
        assert!(err.contains("JSONPath"), "{expr}: {err}");
    }
}

#[test]
fn field_names() {
    let cases: Vec<(&str, Option<Vec<&str>>)> = vec![
        (".spec.replicas", Some(vec!["spec", "replicas"])),
        ("{.status.selector}", Some(vec!["status", "selector"])),
        (
            ".metadata.labels['a.b']",
            Some(vec!["metadata", "labels", "a.b"]),
        ),
        (".spec.items[0]", None),
        (".spec.items[*]", None),
    ];
    for (expr, want) in cases {
        let path = JsonPath::parse(expr).expect(expr);
        assert_eq!(path.field_names(), want, "{expr}");
        assert_eq!(path.as_str(), expr);
    }
}

#[test]
fn set_path_writes_fields() {
    let cases: Vec<(Value, &str, Value, Value)> = vec![
        (
            json!({"spec": {"replicas": 1}}),
            ".spec.replicas",
            json!(5),
            json!({"spec": {"replicas": 5}}),
        ),
        (
            json!({}),
            ".spec.replicas",
            json!(2),
            json!({"spec": {"replicas": 2}}),
        ),
        (
            json!({"spec": null}),
            "{.spec.scale.replicas}",
            json!(3),
            json!({"spec": {"scale": {"replicas": 3}}}),
        ),
        (
            json!({"status": {"a": 1}}),
            ".status.selector",
            json!("app=web"),
            json!({"status": {"a": 1, "selector": "app=web"}}),
        ),
        (Value::Null, "spec", json!(1), json!({"spec": 1})),
    ];
    for (mut doc, path, new, want) in cases {
        set_path(&mut doc, path, new).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(doc, want, "{path}");
    }
}

#[test]
fn set_path_rejects_non_field_paths() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"spec": "text"}), ".spec.replicas"),
        (json!({"spec": [1]}), ".spec.replicas"),
        (json!({}), ".spec.items[0]"),
        (json!({}), "."),
        (json!({}), ".spec["),
    ];
    for (mut doc, path) in cases {
        let before = doc.clone();
        assert!(set_path(&mut doc, path, json!(1)).is_err(), "{path}");
        assert_eq!(doc, before, "{path} must not modify the document");
    }
}

#[test]
fn evaluating_a_field_path_reads_what_set_path_wrote() {
    let paths = [".spec.replicas", ".status.scale.count", ".a"];
    for (i, path) in paths.iter().enumerate() {
        let mut doc = json!({"spec": {}});
        set_path(&mut doc, path, json!(i)).expect("set");
        let parsed = JsonPath::parse(path).expect("parse");
        assert_eq!(parsed.evaluate(&doc), vec![&json!(i)], "{path}");
    }
}

#[test]
fn printing_results_as_text() {
    let obj = object();
    let cases: Vec<(&str, Option<&str>)> = vec![
        (".metadata.name", Some("web")),
        (".spec.replicas", Some("3")),
        (".spec.containers[*].name", Some("app side")),
        (
            ".spec.containers[0].ports",
            Some(r#"[{"containerPort":80}]"#),
        ),
        (
            ".status.conditions[?(@.type==\"Ready\")].status",
            Some("False"),
        ),
        (".status.missing", None),
        (".status.conditions[?(@.type==\"Gone\")].status", None),
    ];
    for (expr, want) in cases {
        let path = JsonPath::parse(expr).expect(expr);
        assert_eq!(path.print(&obj).as_deref(), want, "{expr}");
    }
    let with_null = json!({"a": null});
    assert_eq!(
        JsonPath::parse(".a")
            .expect("parse")
            .print(&with_null)
            .as_deref(),
        Some("<nil>")
    );
}
