//! Label key and value syntax (`k8s.io/apimachinery/pkg/util/validation`), with its messages.

const QUALIFIED_NAME_FMT: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_FMT: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const DNS1123_SUBDOMAIN_FMT: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, the shape of names and label values.
fn is_name_like(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            match (b.first(), b.last()) {
                (Some(f), Some(l)) => {
                    (f.is_ascii_lowercase() || f.is_ascii_digit())
                        && (l.is_ascii_lowercase() || l.is_ascii_digit())
                        && b.iter()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                }
                _ => false,
            }
        })
}

/// Problems with a label key (a qualified name: optional DNS subdomain prefix and `/`, then a
/// name of at most 63 characters); empty when valid.
pub(crate) fn label_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else if !is_dns1123_subdomain(prefix) {
                errs.push(format!("prefix part {DNS1123_SUBDOMAIN_FMT}"));
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {QUALIFIED_NAME_FMT} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !name.is_empty() && !is_name_like(name) {
        errs.push(format!("name part {QUALIFIED_NAME_FMT}"));
    }
    errs
}

/// Problems with a label value (empty, or a name-like string of at most 63 characters).
pub(crate) fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !value.is_empty() && !is_name_like(value) {
        errs.push(LABEL_VALUE_FMT.to_string());
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys() {
        let long = "a".repeat(64);
        let cases: Vec<(&str, Option<&str>)> = vec![
            ("app", None),
            ("app.kubernetes.io/name", None),
            ("a-b_c.d", None),
            ("A1", None),
            ("example.com/", Some("name part must be non-empty")),
            ("/name", Some("prefix part must be non-empty")),
            ("Example.com/name", Some("prefix part a lowercase RFC 1123")),
            ("a/b/c", Some("a qualified name must consist")),
            ("-a", Some("name part must consist")),
            ("a b", Some("name part must consist")),
            (&long, Some("no more than 63 characters")),
        ];
        for (key, want) in cases {
            let errs = label_key_errors(key);
            match want {
                None => assert!(errs.is_empty(), "{key}: {errs:?}"),
                Some(w) => assert!(errs.iter().any(|e| e.contains(w)), "{key}: {errs:?}"),
            }
        }
    }

    #[test]
    fn label_values() {
        let long = "v".repeat(64);
        let cases: Vec<(&str, bool)> = vec![
            ("", true),
            ("web", true),
            ("1.2.3", true),
            ("a_b-c", true),
            ("-web", false),
            ("web.", false),
            ("a/b", false),
            (&long, false),
        ];
        for (value, valid) in cases {
            assert_eq!(label_value_errors(value).is_empty(), valid, "{value:?}");
        }
    }
}
