//! Content negotiation (JSON, Table, PartialObjectMetadata), query parameters and body decoding.

use std::collections::HashMap;

use axum::http::{HeaderMap, Uri};
use serde_json::Value;

use crate::errors::ApiError;

/// What a response should look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    /// `as=Table`; rows carry the object as PartialObjectMetadata, the full object or nothing.
    Table(IncludeObject),
    /// `as=PartialObjectMetadata` (single object, watch events) or `PartialObjectMetadataList`.
    PartialMetadata,
}

/// The `includeObject` parameter of Table requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

/// Picks the response form from the Accept header (first satisfiable media range wins).
pub fn output(headers: &HeaderMap, query: &Query) -> Result<Output, ApiError> {
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    if accept.is_empty() {
        return Ok(Output::Json);
    }
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: HashMap<String, String> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        match media.as_str() {
            "application/json" | "application/*" | "*/*" => {
                match params.get("as").map(String::as_str) {
                    None => return Ok(Output::Json),
                    Some("Table") if params.get("g").map(String::as_str) == Some("meta.k8s.io") => {
                        let include = match query.get("includeObject") {
                            Some("None") => IncludeObject::None,
                            Some("Object") => IncludeObject::Object,
                            _ => IncludeObject::Metadata,
                        };
                        return Ok(Output::Table(include));
                    }
                    Some("PartialObjectMetadata" | "PartialObjectMetadataList")
                        if params.get("g").map(String::as_str) == Some("meta.k8s.io") =>
                    {
                        return Ok(Output::PartialMetadata)
                    }
                    Some(_) => continue,
                }
            }
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable())
}

/// Query parameters (last value wins; empty segments ignored).
#[derive(Clone, Debug, Default)]
pub struct Query {
    values: HashMap<String, String>,
}

impl Query {
    /// Parses the query string of a URI.
    pub fn from_uri(uri: &Uri) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = match uri.query() {
            None => Vec::new(),
            Some(q) => axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
                .map(|axum::extract::Query(v)| v)
                .map_err(|e| ApiError::bad_request(format!("invalid query string {q:?}: {e}")))?,
        };
        Ok(Query {
            values: pairs.into_iter().filter(|(k, _)| !k.is_empty()).collect(),
        })
    }

    /// A parameter's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// A parameter's value, treating an empty string as absent.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// `true`/`1` flags.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }

    /// An integer parameter; malformed values are a 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid {key} {v:?}"))),
        }
    }

    /// Adds or replaces a parameter (used when merging DeleteOptions).
    pub fn set(&mut self, key: &str, value: &str) {
        self.values.insert(key.to_string(), value.to_string());
    }
}

/// Decodes a JSON (or YAML) request body into a value.
pub fn decode_body(bytes: &[u8], content_type: Option<&str>) -> Result<Value, ApiError> {
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media.contains("protobuf") || media.contains("cbor") {
        return Err(ApiError::unsupported_media_type(&[
            "application/json",
            "application/yaml",
        ]));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; an object is required",
        ));
    }
    let yaml = media.contains("yaml");
    let value: Value = if yaml {
        serde_yaml::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("accept", accept.parse().expect("header"));
        h
    }

    #[test]
    fn kubectl_table_accept() {
        let q = Query::default();
        let h = headers("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json");
        assert_eq!(
            output(&h, &q).expect("ok"),
            Output::Table(IncludeObject::Metadata)
        );
        assert_eq!(output(&HeaderMap::new(), &q).expect("ok"), Output::Json);
        assert_eq!(
            output(
                &headers("application/vnd.kubernetes.protobuf,application/json"),
                &q
            )
            .expect("ok"),
            Output::Json
        );
        assert_eq!(output(&headers("text/html"), &q).unwrap_err().code, 406);
    }

    #[test]
    fn query_ignores_empty_segments() {
        let uri: Uri = "/api/v1/configmaps?&limit=500&watch=1"
            .parse()
            .expect("uri");
        let q = Query::from_uri(&uri).expect("query");
        assert_eq!(q.int("limit").expect("int"), Some(500));
        assert!(q.flag("watch"));
    }

    #[test]
    fn bodies() {
        assert_eq!(decode_body(b"{\"a\":1}", None).expect("json")["a"], 1);
        assert_eq!(
            decode_body(b"a: 1\n", Some("application/apply-patch+yaml")).expect("yaml")["a"],
            1
        );
        assert_eq!(
            decode_body(b"{bad", Some("application/json"))
                .unwrap_err()
                .code,
            400
        );
    }
}
