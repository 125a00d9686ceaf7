//! The HTTPS call to a webhook: `POST` of an AdmissionReview as JSON over TLS verified against
//! the configuration's `caBundle`, bounded by the webhook's timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Resolves a `clientConfig.service` reference (namespace, name, port) to an address, standing in
/// for cluster DNS.
pub type ServiceResolver = Arc<dyn Fn(&str, &str, u16) -> Option<SocketAddr> + Send + Sync>;

/// Largest webhook response read.
const MAX_RESPONSE_BYTES: usize = 3 * 1024 * 1024;

/// Why a webhook call failed (rendered after `failed to call webhook: `).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("invalid clientConfig: {0}")]
    Config(String),
    #[error("Post {url:?}: {reason}")]
    Transport { url: String, reason: String },
    #[error("Post {url:?}: context deadline exceeded")]
    Timeout { url: String },
    #[error("the server responded with status {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the response body is not JSON: {0}")]
    Body(String),
}

/// Where a webhook is reached.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Full URL including `?timeout=Ns`, as shown in errors.
    pub url: String,
    /// TLS server name and `Host` header.
    pub host: String,
    pub port: u16,
    /// Path and query sent on the request line.
    pub path_and_query: String,
    /// Address to connect to when known (service references resolved by the resolver).
    pub address: Option<SocketAddr>,
}

impl Endpoint {
    /// The endpoint of a `clientConfig`, with the timeout query appended.
    pub fn from_client_config(
        config: &Value,
        timeout_secs: u64,
        resolver: Option<&ServiceResolver>,
    ) -> Result<Self, CallError> {
        let timeout = format!("timeout={timeout_secs}s");
        let join = |path: &str| {
            if path.contains('?') {
                format!("{path}&{timeout}")
            } else {
                format!("{path}?{timeout}")
            }
        };
        if let Some(url) = config.get("url").and_then(Value::as_str) {
            let uri: http::Uri = url
                .parse()
                .map_err(|e| CallError::Config(format!("url {url:?}: {e}")))?;
            if uri.scheme_str() != Some("https") {
                return Err(CallError::Config(format!("url {url:?} must be https")));
            }
            let host = uri
                .host()
                .ok_or_else(|| CallError::Config(format!("url {url:?} has no host")))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(443);
            let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let path = if path.is_empty() { "/" } else { path };
            return Ok(Endpoint {
                url: join(url),
                host,
                port,
                path_and_query: join(path),
                address: None,
            });
        }
        let service = config
            .get("service")
            .ok_or_else(|| CallError::Config("neither url nor service is set".into()))?;
        let namespace = service
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = service.get("name").and_then(Value::as_str).unwrap_or("");
        if namespace.is_empty() || name.is_empty() {
            return Err(CallError::Config(
                "service needs a namespace and a name".into(),
            ));
        }
        let port = service
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(443);
        let path = service.get("path").and_then(Value::as_str).unwrap_or("/");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let host = format!("{name}.{namespace}.svc");
        let path_and_query = join(&path);
        Ok(Endpoint {
            url: format!("https://{host}:{port}{path_and_query}"),
            host,
            port,
            address: resolver.and_then(|r| r(namespace, name, port)),
            path_and_query,
        })
    }
}

fn tls_config(ca_bundle: Option<&str>) -> Result<rustls::ClientConfig, CallError> {
    let pem = match ca_bundle.filter(|b| !b.is_empty()) {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| CallError::Config(format!("caBundle is not base64: {e}")))?,
        None => {
            return Err(CallError::Config(
                "an empty caBundle (system roots) is not supported".into(),
            ))
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| CallError::Config(format!("caBundle: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| CallError::Config(format!("caBundle: {e}")))?;
    }
    if roots.is_empty() {
        return Err(CallError::Config("caBundle holds no certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CallError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

async fn exchange(
    endpoint: &Endpoint,
    tls: rustls::ClientConfig,
    body: Vec<u8>,
) -> Result<Value, CallError> {
    let transport = |reason: String| CallError::Transport {
        url: endpoint.url.clone(),
        reason,
    };
    let address = match endpoint.address {
        Some(address) => address,
        None => tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|e| transport(format!("dial tcp: lookup {}: {e}", endpoint.host)))?
            .next()
            .ok_or_else(|| {
                transport(format!("dial tcp: lookup {}: no such host", endpoint.host))
            })?,
    };
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| transport(format!("dial tcp {address}: connect: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let server_name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
        .map_err(|e| CallError::Config(format!("host {:?}: {e}", endpoint.host)))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(server_name, tcp)
        .await
        .map_err(|e| transport(format!("tls: {e}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| transport(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let host_header = if endpoint.port == 443 {
        endpoint.host.clone()
    } else {
        format!("{}:{}", endpoint.host, endpoint.port)
    };
    let request = http::Request::post(endpoint.path_and_query.as_str())
        .header(http::header::HOST, host_header)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| CallError::Config(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| transport(e.to_string()))?;
    let status = response.status().as_u16();
    let collected = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| transport(e.to_string()))?
        .to_bytes();
    driver.abort();
    if !(200..300).contains(&status) {
        return Err(CallError::Status {
            status,
            body: String::from_utf8_lossy(&collected)
                .chars()
                .take(512)
                .collect(),
        });
    }
    serde_json::from_slice(&collected).map_err(|e| CallError::Body(e.to_string()))
}

/// POSTs `review` to the webhook and returns the decoded response body.
pub async fn call(
    endpoint: &Endpoint,
    ca_bundle: Option<&str>,
    review: &Value,
    timeout: Duration,
) -> Result<Value, CallError> {
    let tls = tls_config(ca_bundle)?;
    let body = serde_json::to_vec(review).map_err(|e| CallError::Body(e.to_string()))?;
    match tokio::time::timeout(timeout, exchange(endpoint, tls, body)).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Timeout {
            url: endpoint.url.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_and_service_endpoints_carry_the_timeout() {
        let e = Endpoint::from_client_config(
            &json!({"url": "https://127.0.0.1:9443/mutate"}),
            10,
            None,
        )
        .expect("url endpoint");
        assert_eq!(e.url, "https://127.0.0.1:9443/mutate?timeout=10s");
        assert_eq!(e.path_and_query, "/mutate?timeout=10s");
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 9443));
        let resolver: ServiceResolver = Arc::new(|ns, name, port| {
            (ns == "kruise-system" && name == "hooks")
                .then(|| SocketAddr::from(([127, 0, 0, 1], port)))
        });
        let e = Endpoint::from_client_config(
            &json!({"service": {"namespace": "kruise-system", "name": "hooks", "path": "/validate"}}),
            5,
            Some(&resolver),
        )
        .expect("service endpoint");
        assert_eq!(
            e.url,
            "https://hooks.kruise-system.svc:443/validate?timeout=5s"
        );
        assert_eq!(e.address, Some(SocketAddr::from(([127, 0, 0, 1], 443))));
        assert!(Endpoint::from_client_config(&json!({"url": "http://x/"}), 1, None).is_err());
    }
}
