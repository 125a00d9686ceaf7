//! What can stop the demo from coming up, each with the context a user needs to act on it.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use kruise_apiserver::store::etcd_process::EtcdProcessError;

/// A failed step of the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The state directory could not be created, cleared or written.
    #[error("preparing the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The state directory holds files the demo did not write; it is never cleared then.
    #[error(
        "{path} is not empty and was not created by `kruise-local demo`; \
         remove it or pass another --state-dir"
    )]
    ForeignStateDir { path: PathBuf },
    /// A binary the demo runs is not next to `kruise-local`.
    #[error(
        "{name} not found in {dir}; build it first: `cargo build -p kruise-hub -p kruise-agent -p kruise-daemon` \
         (or `cargo build --workspace`)"
    )]
    MissingBinary { name: &'static str, dir: PathBuf },
    /// A child process could not be started.
    #[error("starting {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A child process exited while the demo needed it.
    #[error("{what} exited ({status}); see {log}")]
    Exited {
        what: String,
        status: ExitStatus,
        log: PathBuf,
    },
    /// Something did not happen in time.
    #[error("{what} did not happen within {waited:?}; {hint}")]
    Timeout {
        what: String,
        waited: Duration,
        hint: String,
    },
    /// A kubeconfig could not be read or used.
    #[error("loading kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    /// A call to a cluster's or the hub's API failed.
    #[error("{operation}: {source}")]
    Api {
        operation: String,
        #[source]
        source: kube::Error,
    },
    /// `kruise-hub cluster add` failed.
    #[error("`kruise-hub cluster add {cluster}` failed: {stderr}")]
    RegisterCluster { cluster: String, stderr: String },
    /// The manifest could not be read or parsed.
    #[error("manifest {source_name}: {message}")]
    Manifest {
        source_name: String,
        message: String,
    },
    /// etcd did not start.
    #[error("starting etcd for the hub: {0}")]
    Etcd(#[from] EtcdProcessError),
    /// The signal handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

impl DemoError {
    /// A failed API call, with the operation in words.
    pub fn api(operation: impl Into<String>) -> impl FnOnce(kube::Error) -> DemoError {
        let operation = operation.into();
        move |source| DemoError::Api { operation, source }
    }
}
