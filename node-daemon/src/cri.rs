//! Connecting to a CRI runtime (containerd, CRI-O, or kruise-local's simulated nodes) over a
//! unix socket.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Clients for both CRI services over one channel.
#[derive(Clone)]
pub struct CriClients {
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unsupported runtime endpoint {0:?}: only unix:///path sockets are supported")]
    UnsupportedEndpoint(String),
    #[error("connecting to CRI runtime at {path}: {source}")]
    Connect {
        path: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// The socket path of `unix:///run/containerd/containerd.sock` (or a bare path).
pub fn socket_path(endpoint: &str) -> Result<String, ConnectError> {
    if let Some(p) = endpoint.strip_prefix("unix://") {
        return Ok(p.to_string());
    }
    if endpoint.starts_with('/') {
        return Ok(endpoint.to_string());
    }
    Err(ConnectError::UnsupportedEndpoint(endpoint.to_string()))
}

/// Connects to the runtime at `endpoint` (lazily reconnecting afterwards, as tonic channels do).
pub async fn connect(endpoint: &str) -> Result<CriClients, ConnectError> {
    let path = socket_path(endpoint)?;
    let p = path.clone();
    let channel = Endpoint::try_from("http://[::]:50051")
        .map_err(|source| ConnectError::Connect {
            path: path.clone(),
            source,
        })?
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = p.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(p).await?)) }
        }))
        .await
        .map_err(|source| ConnectError::Connect { path, source })?;
    Ok(CriClients {
        runtime: RuntimeServiceClient::new(channel.clone()),
        images: ImageServiceClient::new(channel),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_unix_sockets() {
        assert_eq!(
            socket_path("unix:///run/containerd/containerd.sock").unwrap(),
            "/run/containerd/containerd.sock"
        );
        assert_eq!(socket_path("/tmp/cri.sock").unwrap(), "/tmp/cri.sock");
        assert!(matches!(
            socket_path("tcp://1.2.3.4:5"),
            Err(ConnectError::UnsupportedEndpoint(_))
        ));
    }
}
