//! Kubernetes resource quantities (`100m`, `0.5`, `128Mi`, `1G`, `1e3`) as integers.

/// Parses a quantity into thousandths of its unit (millicores for cpu, milli-bytes for memory),
/// rounding up as Kubernetes does for fractional milli values.
pub fn parse_milli(q: &str) -> Result<i128, String> {
    let q = q.trim();
    if q.is_empty() {
        return Err("empty quantity".into());
    }
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let (mantissa_exp, suffix) = match suffix.strip_prefix(['e', 'E']) {
        Some(exp)
            if !exp.is_empty()
                && exp
                    .trim_start_matches(['+', '-'])
                    .chars()
                    .all(|c| c.is_ascii_digit()) =>
        {
            let e: i32 = exp
                .parse()
                .map_err(|_| format!("invalid exponent in quantity {q:?}"))?;
            (e, "")
        }
        _ => (0, suffix),
    };
    let (multiplier_num, multiplier_exp10): (i128, i32) = match suffix {
        "" => (1, 0),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        other => return Err(format!("unknown suffix {other:?} in quantity {q:?}")),
    };
    let negative = num.starts_with('-');
    let digits = num.trim_start_matches(['+', '-']);
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(format!("invalid quantity {q:?}"));
    }
    if !int_part.chars().all(|c| c.is_ascii_digit())
        || !frac_part.chars().all(|c| c.is_ascii_digit())
    {
        return Err(format!("invalid quantity {q:?}"));
    }
    // value = 0.int_frac digits * 10^(exp) ; work in an integer of all digits.
    let all: String = format!("{int_part}{frac_part}");
    let all = all.trim_start_matches('0');
    let mut value: i128 = if all.is_empty() {
        0
    } else {
        all.parse()
            .map_err(|_| format!("quantity {q:?} too large"))?
    };
    // value currently = number * 10^frac_len; we want number * multiplier * 10^(exp10 + 3)
    let exp = mantissa_exp + multiplier_exp10 + 3 - frac_part.len() as i32;
    value = value
        .checked_mul(multiplier_num)
        .ok_or_else(|| format!("quantity {q:?} too large"))?;
    if exp >= 0 {
        value = value
            .checked_mul(
                10i128
                    .checked_pow(exp as u32)
                    .ok_or_else(|| format!("quantity {q:?} too large"))?,
            )
            .ok_or_else(|| format!("quantity {q:?} too large"))?;
    } else {
        let div = 10i128.checked_pow((-exp) as u32).unwrap_or(i128::MAX);
        value = (value + div - 1) / div;
    }
    Ok(if negative { -value } else { value })
}

/// Millicores of a cpu quantity.
pub fn cpu_millis(q: &str) -> Result<i64, String> {
    parse_milli(q).map(|m| m as i64)
}

/// Bytes of a memory quantity (rounded up).
pub fn memory_bytes(q: &str) -> Result<i64, String> {
    parse_milli(q).map(|m| ((m + 999) / 1000) as i64)
}

/// A plain count (`pods: "110"`).
pub fn count(q: &str) -> Result<i64, String> {
    parse_milli(q).map(|m| ((m + 999) / 1000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities() {
        for (q, want) in [
            ("100m", 100),
            ("1", 1000),
            ("0.5", 500),
            ("5000", 5_000_000),
            ("2.25", 2250),
            ("1e3", 1_000_000),
            ("1k", 1_000_000),
        ] {
            assert_eq!(cpu_millis(q).unwrap(), want, "{q}");
        }
    }

    #[test]
    fn memory_quantities() {
        for (q, want) in [
            ("128Mi", 128 << 20),
            ("1Gi", 1 << 30),
            ("1G", 1_000_000_000),
            ("32Gi", 32i64 << 30),
            ("1500", 1500),
            ("0.5Ki", 512),
        ] {
            assert_eq!(memory_bytes(q).unwrap(), want, "{q}");
        }
    }

    #[test]
    fn invalid_quantities_are_errors() {
        for q in ["", "abc", "1Xi", "..", "1.2.3"] {
            assert!(parse_milli(q).is_err(), "{q} should not parse");
        }
    }
}
