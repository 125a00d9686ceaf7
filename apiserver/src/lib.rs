//! A Kubernetes-compatible API server library: storage (memory or etcd), REST, watch, patch,
//! discovery, OpenAPI and TLS, faithful enough that kubectl and kube-rs cannot tell it apart from
//! kube-apiserver for what they do with it.

pub mod jsonpath;
pub mod patch;
pub mod selector;
pub mod store;
