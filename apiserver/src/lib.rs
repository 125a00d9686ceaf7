//! A Kubernetes-compatible API server library: storage (memory or etcd), REST, watch, patch,
//! discovery, OpenAPI and TLS, faithful enough that kubectl and kube-rs cannot tell it apart from
//! kube-apiserver for what they do with it.

pub mod auth;
pub mod crds;
pub mod defaults;
pub mod errors;
pub mod gc;
pub mod http;
pub mod jsonpath;
pub mod kubeconfig;
pub mod local;
pub mod metadata;
pub mod metrics;
pub mod patch;
pub mod pki;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod server;
pub mod store;
pub mod webhook;

pub use auth::TokenAuth;
pub use server::{start, RunningServer, ServerConfig};
