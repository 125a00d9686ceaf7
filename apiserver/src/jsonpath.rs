//! The subset of Kubernetes JSONPath (client-go `util/jsonpath`) that CRD
//! `additionalPrinterColumns` and scale subresource paths use: fields (with `\.` escapes or
//! `['quoted']`), `[n]`, `[-n]`, `[start:end:step]`, `[*]`, unions, `..` and filters such as
//! `[?(@.type=="Ready")]`. Missing keys evaluate to nothing rather than an error.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Field(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Union(Vec<Segment>),
    Descendants,
    Filter(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// A path relative to the current element (`@.a.b`).
    Current(Vec<Segment>),
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Operand,
    /// `None` tests that the left operand exists.
    compare: Option<(Comparison, Operand)>,
}

/// A parsed JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    expr: String,
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Parses `.spec.replicas`, `{.spec.replicas}`, `$.a[0]`,
    /// `.status.conditions[?(@.type=="Ready")].status`, `.spec.containers[*].image`,
    /// `.metadata.labels.app\.kubernetes\.io/name`, `.a['b.c']` and similar.
    pub fn parse(expr: &str) -> Result<Self, String> {
        let mut s = expr.trim();
        if let Some(inner) = s.strip_prefix('{') {
            s = inner
                .strip_suffix('}')
                .ok_or_else(|| format!("unclosed action in JSONPath {expr:?}"))?
                .trim();
        }
        s = s.strip_prefix('$').unwrap_or(s);
        let segments = Lexer::new(s, expr).segments()?;
        Ok(Self {
            expr: expr.to_string(),
            segments,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// The field names of a path made only of fields (`.spec.replicas` → `["spec", "replicas"]`).
    pub fn field_names(&self) -> Option<Vec<&str>> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Field(f) => Some(f.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Every value the path selects in `v`, in document order; missing keys select nothing.
    pub fn evaluate<'a>(&self, v: &'a Value) -> Vec<&'a Value> {
        select(&self.segments, v)
    }

    /// The selected values as text the way client-go's `PrintResults` writes them (strings
    /// bare, objects and lists as JSON, separated by spaces); `None` when nothing matches,
    /// which a printer column shows as an empty cell.
    pub fn print(&self, v: &Value) -> Option<String> {
        let results = self.evaluate(v);
        if results.is_empty() {
            return None;
        }
        let texts: Vec<String> = results
            .into_iter()
            .map(|r| match r {
                Value::String(s) => s.clone(),
                Value::Null => "<nil>".to_string(),
                other => other.to_string(),
            })
            .collect();
        Some(texts.join(" "))
    }
}

fn select<'a>(segments: &[Segment], v: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![v];
    for segment in segments {
        let mut next = Vec::new();
        for value in current {
            step(segment, value, &mut next);
        }
        current = next;
    }
    current
}

fn step<'a>(segment: &Segment, v: &'a Value, out: &mut Vec<&'a Value>) {
    match segment {
        Segment::Field(name) => out.extend(v.get(name.as_str())),
        Segment::Wildcard => match v {
            Value::Object(m) => out.extend(m.values()),
            Value::Array(items) => out.extend(items.iter()),
            _ => {}
        },
        Segment::Index(i) => {
            if let Value::Array(items) = v {
                let len = items.len() as i64;
                let idx = if *i < 0 { len + i } else { *i };
                if (0..len).contains(&idx) {
                    out.push(&items[idx as usize]);
                }
            }
        }
        Segment::Slice(start, end, stride) => {
            if let Value::Array(items) = v {
                slice(items, *start, *end, *stride, out);
            }
        }
        Segment::Union(parts) => {
            for part in parts {
                step(part, v, out);
            }
        }
        Segment::Descendants => descendants(v, out),
        Segment::Filter(filter) => {
            if let Value::Array(items) = v {
                out.extend(items.iter().filter(|item| filter.holds(item)));
            }
        }
    }
}

fn slice<'a>(
    items: &'a [Value],
    start: Option<i64>,
    end: Option<i64>,
    stride: Option<i64>,
    out: &mut Vec<&'a Value>,
) {
    let len = items.len() as i64;
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let step = stride.unwrap_or(1);
    if step <= 0 {
        return;
    }
    let (from, to) = (clamp(start.unwrap_or(0)), clamp(end.unwrap_or(len)));
    let mut i = from;
    while i < to {
        out.push(&items[i as usize]);
        i += step;
    }
}

fn descendants<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(v);
    match v {
        Value::Object(m) => m.values().for_each(|c| descendants(c, out)),
        Value::Array(items) => items.iter().for_each(|c| descendants(c, out)),
        _ => {}
    }
}

impl Filter {
    fn holds(&self, item: &Value) -> bool {
        let left = self.left.resolve(item);
        let Some((cmp, right)) = &self.compare else {
            return !left.is_empty();
        };
        let right = right.resolve(item);
        // unordered values (a string against a number) are only ever unequal
        let accepts = |l: &Value, r: &Value| match compare(l, r) {
            Some(o) => cmp.accepts(o),
            None => *cmp == Comparison::Ne,
        };
        left.iter().any(|l| right.iter().any(|r| accepts(l, r)))
    }
}

impl Operand {
    fn resolve<'a>(&'a self, item: &'a Value) -> Vec<&'a Value> {
        match self {
            Operand::Current(path) => select(path, item),
            Operand::Literal(v) => vec![v],
        }
    }
}

impl Comparison {
    fn accepts(self, o: Ordering) -> bool {
        match self {
            Comparison::Eq => o == Ordering::Equal,
            Comparison::Ne => o != Ordering::Equal,
            Comparison::Lt => o == Ordering::Less,
            Comparison::Le => o != Ordering::Greater,
            Comparison::Gt => o == Ordering::Greater,
            Comparison::Ge => o != Ordering::Less,
        }
    }
}

/// Orders numbers numerically and strings lexically; values of other or mixed kinds are only
/// equal or unordered.
fn compare(l: &Value, r: &Value) -> Option<Ordering> {
    match (l, r) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ if l == r => Some(Ordering::Equal),
        _ => None,
    }
}

struct Lexer<'s> {
    chars: Vec<char>,
    pos: usize,
    expr: &'s str,
}

impl<'s> Lexer<'s> {
    fn new(s: &str, expr: &'s str) -> Self {
        Self {
            chars: s.chars().collect(),
            pos: 0,
            expr,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn error(&self, msg: &str) -> String {
        format!("invalid JSONPath {:?}: {msg}", self.expr)
    }

    fn segments(&mut self) -> Result<Vec<Segment>, String> {
        let mut segments = Vec::new();
        // a bare leading field (`spec.replicas`) is accepted like `.spec.replicas`
        if self.peek().is_some_and(|c| c != '.' && c != '[') {
            segments.push(self.field()?);
        }
        while let Some(c) = self.peek() {
            match c {
                '.' => {
                    self.pos += 1;
                    if self.peek() == Some('.') {
                        self.pos += 1;
                        segments.push(Segment::Descendants);
                    }
                    match self.peek() {
                        Some('[') => {}
                        Some(_) => segments.push(self.field()?),
                        None if segments.is_empty() => {} // `.` alone is the root
                        None => return Err(self.error("path ends with '.'")),
                    }
                }
                '[' => segments.push(self.bracket()?),
                c => return Err(self.error(&format!("unexpected character {c:?}"))),
            }
        }
        Ok(segments)
    }

    fn field(&mut self) -> Result<Segment, String> {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\\' => {
                    self.pos += 1;
                    let escaped = self.peek().ok_or_else(|| self.error("dangling '\\'"))?;
                    name.push(escaped);
                }
                '.' | '[' => break,
                c if c.is_whitespace() => {
                    return Err(self.error("unexpected whitespace in a field name"))
                }
                c => name.push(c),
            }
            self.pos += 1;
        }
        match name.as_str() {
            "" => Err(self.error("empty field name")),
            "*" => Ok(Segment::Wildcard),
            _ => Ok(Segment::Field(name)),
        }
    }

    /// Reads `[...]` up to the matching `]`, outside quotes and parentheses.
    fn bracket(&mut self) -> Result<Segment, String> {
        self.pos += 1;
        let start = self.pos;
        let (mut depth, mut quote) = (0usize, None::<char>);
        loop {
            let c = self.peek().ok_or_else(|| self.error("unclosed '['"))?;
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), '\\') => self.pos += 1,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '(') => depth += 1,
                (None, ')') => depth = depth.saturating_sub(1),
                (None, ']') if depth == 0 => break,
                _ => {}
            }
            self.pos += 1;
        }
        let inner: String = self.chars[start..self.pos].iter().collect();
        self.pos += 1;
        self.bracket_content(inner.trim())
    }

    fn bracket_content(&self, inner: &str) -> Result<Segment, String> {
        if inner == "*" {
            return Ok(Segment::Wildcard);
        }
        if let Some(filter) = inner.strip_prefix("?(") {
            let body = filter
                .strip_suffix(')')
                .ok_or_else(|| self.error("unclosed filter"))?;
            return Ok(Segment::Filter(Box::new(self.filter(body.trim())?)));
        }
        let parts = split_outside_quotes(inner, ',');
        let mut segments = parts
            .iter()
            .map(|p| self.bracket_part(p.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if segments.len() == 1 {
            Ok(segments.remove(0))
        } else {
            Ok(Segment::Union(segments))
        }
    }

    fn bracket_part(&self, part: &str) -> Result<Segment, String> {
        if let Some(name) = unquote(part) {
            return Ok(Segment::Field(name));
        }
        if part.contains(':') {
            let bounds: Vec<&str> = part.split(':').collect();
            if bounds.len() > 3 {
                return Err(self.error(&format!("invalid slice {part:?}")));
            }
            let num = |i: usize| -> Result<Option<i64>, String> {
                match bounds.get(i).map(|b| b.trim()) {
                    None | Some("") => Ok(None),
                    Some(b) => b
                        .parse()
                        .map(Some)
                        .map_err(|_| self.error(&format!("invalid slice bound {b:?}"))),
                }
            };
            return Ok(Segment::Slice(num(0)?, num(1)?, num(2)?));
        }
        part.parse()
            .map(Segment::Index)
            .map_err(|_| self.error(&format!("invalid array index {part:?}")))
    }

    fn filter(&self, body: &str) -> Result<Filter, String> {
        const OPERATORS: [(&str, Comparison); 6] = [
            ("==", Comparison::Eq),
            ("!=", Comparison::Ne),
            ("<=", Comparison::Le),
            (">=", Comparison::Ge),
            ("<", Comparison::Lt),
            (">", Comparison::Gt),
        ];
        let found = find_outside_quotes(body, |rest| {
            OPERATORS
                .iter()
                .find(|(op, _)| rest.starts_with(op))
                .map(|(op, cmp)| (op.len(), *cmp))
        });
        match found {
            None => Ok(Filter {
                left: self.operand(body)?,
                compare: None,
            }),
            Some((at, len, cmp)) => Ok(Filter {
                left: self.operand(body[..at].trim())?,
                compare: Some((cmp, self.operand(body[at + len..].trim())?)),
            }),
        }
    }

    fn operand(&self, text: &str) -> Result<Operand, String> {
        if let Some(path) = text.strip_prefix('@') {
            let segments = Lexer::new(path, self.expr).segments()?;
            return Ok(Operand::Current(segments));
        }
        if let Some(s) = unquote(text) {
            return Ok(Operand::Literal(Value::String(s)));
        }
        serde_json::from_str::<Value>(text)
            .ok()
            .filter(|v| !v.is_object() && !v.is_array())
            .map(Operand::Literal)
            .ok_or_else(|| self.error(&format!("invalid filter operand {text:?}")))
    }
}

/// The content of a `'…'` or `"…"` literal, with `\` escapes removed.
fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = s.strip_prefix(q)?.strip_suffix(q)?;
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if c == sep => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The first position outside quotes where `matcher` recognises an operator.
fn find_outside_quotes<T>(
    s: &str,
    matcher: impl Fn(&str) -> Option<(usize, T)>,
) -> Option<(usize, usize, T)> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, _) => {
                if let Some((len, t)) = matcher(&s[i..]) {
                    return Some((i, len, t));
                }
            }
        }
    }
    None
}

/// Sets the value at a path of plain fields (`.spec.replicas`), creating objects on the way;
/// fails if the path is not made of fields or crosses a non-object value.
pub fn set_path(v: &mut Value, path: &str, new: Value) -> Result<(), String> {
    let parsed = JsonPath::parse(path)?;
    let names = parsed
        .field_names()
        .ok_or_else(|| format!("{path:?} is not a path of fields"))?;
    let Some((last, parents)) = names.split_last() else {
        return Err(format!("{path:?} names no field"));
    };
    let mut current = v;
    for name in parents {
        current = object_mut(current, path)?
            .entry(name.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    object_mut(current, path)?.insert(last.to_string(), new);
    Ok(())
}

fn object_mut<'a>(v: &'a mut Value, path: &str) -> Result<&'a mut Map<String, Value>, String> {
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => Ok(m),
        other => Err(format!("cannot set {path:?}: {other} is not an object")),
    }
}

#[cfg(test)]
#[path = "jsonpath_tests.rs"]
mod tests;
