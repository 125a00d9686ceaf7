//! Field selectors (`k8s.io/apimachinery/pkg/fields`): `field=value`, `field==value`,
//! `field!=value`, comma-separated, with `\,`, `\=` and `\\` escapes in values.

use std::fmt;

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// The field label, e.g. `metadata.name`.
    pub field: String,
    /// `true` for `!=`, `false` for `=` and `==`.
    pub negated: bool,
    /// The unescaped value.
    pub value: String,
}

/// A parsed field selector; every term must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parses a field selector string; the empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        // like apimachinery, terms are kept in sorted order of their text
        let mut parts = split_terms(s);
        parts.sort_unstable();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, op, raw)) = split_term(part) else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            terms.push(FieldTerm {
                field: field.to_string(),
                negated: op == "!=",
                value: unescape_value(raw)?,
            });
        }
        Ok(Self { terms })
    }

    /// Whether the object whose field values `get` returns satisfies every term; a field `get`
    /// does not know reads as the empty string, as in Kubernetes' `fields.Set`.
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|t| {
            let have = get(&t.field).unwrap_or_default();
            (have == t.value) != t.negated
        })
    }

    /// The field labels the selector uses, to check them against the resource's supported set.
    pub fn fields(&self) -> Vec<&str> {
        self.terms.iter().map(|t| t.field.as_str()).collect()
    }

    /// The terms, sorted by their text as apimachinery keeps them.
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// Whether the selector has no terms (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value required by an `=`/`==` term on `field`, used to narrow a list by name or
    /// namespace before filtering.
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && !t.negated)
            .map(|t| t.value.as_str())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.negated { "!=" } else { "=" };
            write!(f, "{}{op}{}", t.field, escape_value(&t.value))?;
        }
        Ok(())
    }
}

/// Splits on commas that are not escaped with a backslash.
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at its first operator, trying `!=`, `==` and `=` at each position.
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], op, value));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{e}"
                    ))
                }
                None => return Err("invalid field selector: invalid escape sequence: \\".into()),
            },
            // Go prints the rune with %v, i.e. as its code point
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    u32::from(c)
                ))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn escape_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_fields(field: &str) -> Option<String> {
        match field {
            "metadata.name" => Some("web-0".into()),
            "metadata.namespace" => Some("default".into()),
            "spec.nodeName" => Some("node,1".into()),
            "status.phase" => Some("Running".into()),
            _ => None,
        }
    }

    #[test]
    fn parse_and_print() {
        let cases: &[(&str, &str, Vec<&str>)] = &[
            ("", "", vec![]),
            ("metadata.name=web-0", "metadata.name=web-0", vec!["metadata.name"]),
            ("metadata.name==web-0", "metadata.name=web-0", vec!["metadata.name"]),
            ("status.phase!=Failed", "status.phase!=Failed", vec!["status.phase"]),
            (
                "involvedObject.name=web,involvedObject.namespace=default,involvedObject.kind=Deployment",
                "involvedObject.kind=Deployment,involvedObject.name=web,involvedObject.namespace=default",
                vec!["involvedObject.kind", "involvedObject.name", "involvedObject.namespace"],
            ),
            ("b=1,a!=2", "a!=2,b=1", vec!["a", "b"]),
            (r"spec.nodeName=node\,1", r"spec.nodeName=node\,1", vec!["spec.nodeName"]),
            (r"a=x\=y\\z", r"a=x\=y\\z", vec!["a"]),
            ("a=b,,c=d,", "a=b,c=d", vec!["a", "c"]),
            ("a=", "a=", vec!["a"]),
        ];
        for (input, want, fields) in cases {
            let sel = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(sel.to_string(), *want, "{input:?}");
            assert_eq!(sel.fields(), *fields, "{input:?}");
            assert_eq!(sel.is_empty(), fields.is_empty());
        }
    }

    #[test]
    fn parse_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "metadata.name",
                "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
            ),
            ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
            (r"a=b\x", "invalid escape sequence: \\x"),
            (r"a=b\", "invalid escape sequence: \\"),
            (
                "a=b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
        ];
        for (input, want) in cases {
            let err = FieldSelector::parse(input).expect_err(input);
            assert!(err.contains(want), "{input:?}: {err}");
        }
    }

    #[test]
    fn matching() {
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("metadata.name=web-0", true),
            ("metadata.name=web-1", false),
            ("metadata.name!=web-1", true),
            ("metadata.name=web-0,metadata.namespace=default", true),
            ("metadata.name=web-0,metadata.namespace=kube-system", false),
            (r"spec.nodeName=node\,1", true),
            ("unknown.field=", true),
            ("unknown.field!=x", true),
            ("unknown.field=x", false),
        ];
        for (input, want) in cases {
            let sel = FieldSelector::parse(input).expect(input);
            assert_eq!(sel.matches(&pod_fields), *want, "{input:?}");
        }
    }

    #[test]
    fn required_value() {
        let sel = FieldSelector::parse("metadata.name!=a,metadata.name=b").expect("parse");
        assert_eq!(sel.required_value("metadata.name"), Some("b"));
        assert_eq!(sel.required_value("metadata.namespace"), None);
        assert!(sel.terms()[0].negated);
        let parsed: FieldSelector = "a=b".parse().expect("from_str");
        assert_eq!(parsed.required_value("a"), Some("b"));
    }
}
