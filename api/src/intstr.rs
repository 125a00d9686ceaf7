//! Helpers for `IntOrString` values (`maxUnavailable`, `partition`, `replicas`, ...).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::field::FieldError;

/// Message Kubernetes prints for a malformed percentage.
pub const PERCENT_MSG: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

/// Message Kubernetes prints for a negative number.
pub const NON_NEGATIVE_MSG: &str = "must be greater than or equal to 0";

/// An `IntOrString` that has been checked to be an int or a percentage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IntOrPercent {
    /// An absolute number.
    Int(i32),
    /// A percentage (the number before `%`).
    Percent(f64),
}

/// Errors from resolving an `IntOrString`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntOrStringError {
    /// A string value that does not end with `%`.
    #[error("invalid type: string is not a percentage")]
    NotAPercentage,
    /// A string ending in `%` whose number does not parse.
    #[error("invalid value for IntOrString: invalid value {0:?}")]
    BadPercent(String),
}

/// The value as JSON, for error messages.
pub fn to_value(v: &IntOrString) -> Value {
    match v {
        IntOrString::Int(i) => Value::from(*i),
        IntOrString::String(s) => Value::from(s.clone()),
    }
}

/// Parses an int or a `"N%"` string (`N` may be fractional, as Kruise's helper allows).
pub fn parse(v: &IntOrString) -> Result<IntOrPercent, IntOrStringError> {
    match v {
        IntOrString::Int(i) => Ok(IntOrPercent::Int(*i)),
        IntOrString::String(s) => {
            let Some(number) = s.strip_suffix('%') else {
                return Err(IntOrStringError::NotAPercentage);
            };
            number
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(IntOrPercent::Percent)
                .ok_or_else(|| IntOrStringError::BadPercent(s.clone()))
        }
    }
}

/// Resolves the value against `total`: ints as they are, percentages rounded up or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, IntOrStringError> {
    Ok(match parse(v)? {
        IntOrPercent::Int(i) => i,
        IntOrPercent::Percent(p) => {
            let exact = p * f64::from(total) / 100.0;
            let rounded = if round_up {
                exact.ceil()
            } else {
                exact.floor()
            };
            rounded as i32
        }
    })
}

/// Whether a string is `[0-9]+%`, the strict form Kubernetes validation accepts.
pub fn is_strict_percent(s: &str) -> bool {
    s.strip_suffix('%')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Go's `ValidatePositiveIntOrPercent`: a non-negative int or a `[0-9]+%` string.
pub fn validate_non_negative(v: &IntOrString, field: &str) -> Vec<FieldError> {
    match v {
        IntOrString::Int(i) if *i < 0 => vec![FieldError::invalid(field, *i, NON_NEGATIVE_MSG)],
        IntOrString::Int(_) => vec![],
        IntOrString::String(s) if !is_strict_percent(s) => {
            vec![FieldError::invalid(field, s.clone(), PERCENT_MSG)]
        }
        IntOrString::String(_) => vec![],
    }
}

/// Go's `IsNotMoreThan100Percent`.
pub fn validate_at_most_100_percent(v: &IntOrString, field: &str) -> Vec<FieldError> {
    match v {
        IntOrString::String(s) if is_strict_percent(s) => {
            let n: u64 = s.trim_end_matches('%').parse().unwrap_or(u64::MAX);
            if n > 100 {
                vec![FieldError::invalid(
                    field,
                    s.clone(),
                    "must not be greater than 100%",
                )]
            } else {
                vec![]
            }
        }
        _ => vec![],
    }
}

/// Non-negative, strict percent, at most 100%: the usual rule for `maxUnavailable`-like fields.
pub fn validate_int_or_percent_0_to_100(v: &IntOrString, field: &str) -> Vec<FieldError> {
    let mut errs = validate_non_negative(v, field);
    errs.extend(validate_at_most_100_percent(v, field));
    errs
}

/// Whether the value is zero (int 0 or `"0%"`).
pub fn is_zero(v: &IntOrString) -> bool {
    matches!(parse(v), Ok(IntOrPercent::Int(0)))
        || matches!(parse(v), Ok(IntOrPercent::Percent(p)) if p == 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_values_round_as_requested() {
        let v = IntOrString::String("20%".into());
        assert_eq!(scaled_value(&v, 7, true), Ok(2));
        assert_eq!(scaled_value(&v, 7, false), Ok(1));
        assert_eq!(scaled_value(&IntOrString::Int(3), 7, true), Ok(3));
        assert_eq!(
            scaled_value(&IntOrString::String("5".into()), 7, true),
            Err(IntOrStringError::NotAPercentage)
        );
        assert_eq!(
            scaled_value(&IntOrString::String("x%".into()), 7, true),
            Err(IntOrStringError::BadPercent("x%".into()))
        );
    }

    #[test]
    fn strict_percent_rejects_numbers_and_fractions() {
        assert!(is_strict_percent("30%"));
        assert!(!is_strict_percent("30"));
        assert!(!is_strict_percent("%"));
        assert!(!is_strict_percent("1.5%"));
        let errs = validate_int_or_percent_0_to_100(&IntOrString::String("150%".into()), "spec.x");
        assert_eq!(
            errs[0].to_string(),
            "spec.x: Invalid value: \"150%\": must not be greater than 100%"
        );
    }
}
