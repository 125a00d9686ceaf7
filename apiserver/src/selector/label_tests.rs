use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parse_and_print() {
    // input, canonical form (sorted by key, values sorted)
    let cases: &[(&str, &str)] = &[
        ("", ""),
        ("   ", ""),
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("a", "a"),
        ("!a", "!a"),
        ("a in (y,x)", "a in (x,y)"),
        ("a notin (x)", "a notin (x)"),
        ("a in (x,x)", "a in (x)"),
        ("a=", "a="),
        ("a>1", "a>1"),
        ("a<10", "a<10"),
        ("  b = c ,  a   in ( x , y )  ", "a in (x,y),b=c"),
        (
            "app.kubernetes.io/name=web,tier!=db",
            "app.kubernetes.io/name=web,tier!=db",
        ),
        ("x,!y,z=1", "x,!y,z=1"),
        ("a in (in,notin)", "a in (in,notin)"),
        ("a in (x,)", "a in (,x)"),
        ("a=in", "a=in"),
        ("a notin (x),a", "a notin (x),a"),
        ("in=a,notin", "in=a,notin"),
        ("a in ()", "a in ()"),
        ("a in (,,b)", "a in (,b)"),
    ];
    for (input, want) in cases {
        let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.to_string(), *want, "{input:?}");
        let reparsed = LabelSelector::parse(&sel.to_string()).expect("canonical form parses");
        assert_eq!(reparsed.to_string(), *want, "round trip of {input:?}");
    }
}

#[test]
fn parse_errors() {
    let cases: &[(&str, &str)] = &[
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        ("a in (x", "found '', expected: ',' or ')'"),
        ("a in (x,", "found '', expected: ',', or identifier"),
        ("a in (=", "found '=', expected: ',', ')' or identifier"),
        ("a in (x,=)", "found '=', expected: ',', or identifier"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=b,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a (b)", "found '(', expected: in, notin, =, ==, !=, gt, lt"),
        ("a=(b)", "found '(', expected: identifier"),
        ("a b", "found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        (
            "a>b",
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("!", "found '', expected: identifier"),
        ("a/b/c=d", "unable to parse requirement: <nil>: Invalid value: \"a/b/c\""),
        ("-a in x", "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of"),
        ("a=-b", "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ];
    for (input, want) in cases {
        let err = LabelSelector::parse(input).expect_err(input);
        assert!(err.contains(want), "{input:?}: got {err:?}, want {want:?}");
    }
}

#[test]
fn requirement_errors_aggregate_like_kubernetes() {
    let cases: Vec<(&str, Operator, Vec<&str>, &str)> = vec![
        ("a", Operator::In, vec![], "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"),
        ("a", Operator::Equals, vec!["x", "y"], "values: Invalid value: []string{\"x\", \"y\"}: exact-match compatibility requires one single value"),
        ("a", Operator::Exists, vec!["x"], "values set must be empty for exists and does not exist"),
        ("a", Operator::LessThan, vec!["1", "2"], "exactly one value is required"),
        ("-k", Operator::In, vec![], "[key: Invalid value: \"-k\": "),
    ];
    for (key, op, values, want) in cases {
        let values = values.into_iter().map(str::to_string).collect();
        let err = Requirement::new(key, op, values).expect_err(key);
        assert!(err.contains(want), "{key} {op:?}: {err}");
    }
}

#[test]
fn matching() {
    let set = labels(&[("app", "web"), ("tier", "fe"), ("version", "3")]);
    let cases: &[(&str, bool)] = &[
        ("", true),
        ("app=web", true),
        ("app==web", true),
        ("app=db", false),
        ("app!=db", true),
        ("app!=web", false),
        ("missing!=x", true),
        ("app in (db,web)", true),
        ("app in (db)", false),
        ("missing in (x)", false),
        ("app notin (db)", true),
        ("app notin (web)", false),
        ("missing notin (x)", true),
        ("app", true),
        ("missing", false),
        ("!missing", true),
        ("!app", false),
        ("version>2", true),
        ("version>3", false),
        ("version<4", true),
        ("app>1", false),
        ("missing<1", false),
        ("app=web,tier=fe", true),
        ("app=web,tier=be", false),
        ("missing=", false),
    ];
    for (input, want) in cases {
        let sel = LabelSelector::parse(input).expect(input);
        assert_eq!(sel.matches(&set), *want, "{input:?}");
    }
    assert!(LabelSelector::parse("x=")
        .expect("parse")
        .matches(&labels(&[("x", "")])));
}

#[test]
fn everything_nothing_and_empty() {
    let set = labels(&[("a", "b")]);
    assert!(LabelSelector::everything().matches(&set));
    assert!(LabelSelector::everything().matches(&BTreeMap::new()));
    assert!(LabelSelector::everything().is_empty());
    assert!(!LabelSelector::nothing().matches(&set));
    assert!(!LabelSelector::nothing().is_empty());
    assert!(!LabelSelector::parse("a").expect("parse").is_empty());
    assert!(LabelSelector::parse("").expect("parse").is_empty());
}

#[test]
fn from_metav1_label_selector() {
    let set = labels(&[("app", "web"), ("tier", "fe")]);
    let cases: Vec<(Value, bool)> = vec![
        (serde_json::json!({"matchLabels": {"app": "web"}}), true),
        (serde_json::json!({"matchLabels": {"app": "db"}}), false),
        (
            serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}),
            true,
        ),
        (
            serde_json::json!({"matchLabels": {"app": "web"},
                               "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["fe"]}]}),
            false,
        ),
        (
            serde_json::json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
            true,
        ),
        (
            serde_json::json!({"matchExpressions": [{"key": "gone", "operator": "DoesNotExist", "values": null}]}),
            true,
        ),
        (serde_json::json!({}), true),
        (Value::Null, false),
    ];
    for (v, want) in cases {
        let sel = LabelSelector::from_label_selector_value(&v).expect("valid selector");
        assert_eq!(sel.matches(&set), want, "{v}");
    }
}

#[test]
fn requirement_accessors() {
    let sel = LabelSelector::parse("b in (2,1),a").expect("parse");
    let reqs = sel.requirements();
    assert_eq!(reqs.len(), 2);
    assert_eq!((reqs[0].key(), reqs[0].operator()), ("a", Operator::Exists));
    assert_eq!(reqs[1].key(), "b");
    assert_eq!(reqs[1].operator(), Operator::In);
    assert_eq!(reqs[1].values(), ["1".to_string(), "2".to_string()]);
    let parsed: LabelSelector = "b in (2,1),a".parse().expect("from_str");
    assert_eq!(parsed, sel);
}

#[test]
fn printed_selectors_reparse_to_the_same_matcher() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    const KEYS: [&str; 3] = ["a", "b", "app.kubernetes.io/name"];
    const VALUES: [&str; 4] = ["x", "y", "", "1"];
    const OPS: [Operator; 9] = [
        Operator::Equals,
        Operator::DoubleEquals,
        Operator::NotEquals,
        Operator::In,
        Operator::NotIn,
        Operator::Exists,
        Operator::DoesNotExist,
        Operator::GreaterThan,
        Operator::LessThan,
    ];
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..300 {
        let mut requirements = Vec::new();
        for _ in 0..rng.random_range(0..4) {
            let key = KEYS[rng.random_range(0..KEYS.len())];
            let op = OPS[rng.random_range(0..OPS.len())];
            let values: Vec<String> = match op {
                Operator::Exists | Operator::DoesNotExist => vec![],
                Operator::GreaterThan | Operator::LessThan => {
                    vec![rng.random_range(0..3).to_string()]
                }
                Operator::In | Operator::NotIn => (0..rng.random_range(1..3))
                    .map(|_| VALUES[rng.random_range(0..VALUES.len())].to_string())
                    .collect(),
                _ => vec![VALUES[rng.random_range(0..VALUES.len())].to_string()],
            };
            requirements.push(Requirement::new(key, op, values).expect("valid requirement"));
        }
        let text = requirements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let parsed = LabelSelector::parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        for _ in 0..10 {
            let mut set = BTreeMap::new();
            for key in KEYS {
                if rng.random_bool(0.6) {
                    let v = VALUES[rng.random_range(0..VALUES.len())];
                    set.insert(key.to_string(), v.to_string());
                }
            }
            let direct = requirements.iter().all(|r| r.matches(&set));
            assert_eq!(parsed.matches(&set), direct, "{text:?} on {set:?}");
        }
    }
}
