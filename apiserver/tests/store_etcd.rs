//! etcd-specific behaviour of `EtcdStore`: connection failures surface as `Unavailable`.

#[path = "support/etcd.rs"]
mod etcd_support;

use std::time::Duration;

use bytes::Bytes;
use kruise_apiserver::store::{EtcdStore, Store, StoreError};

#[tokio::test]
async fn connect_without_a_server_is_unavailable() {
    // Reserve a port, then free it, so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    match EtcdStore::connect(&[endpoint.as_str()], "").await {
        Err(e @ StoreError::Unavailable { .. }) => assert!(e.is_retryable()),
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("connected to a port nobody listens on"),
    }
}

#[tokio::test]
async fn requests_after_the_server_stops_are_unavailable() {
    let Some(etcd) = etcd_support::start_or_skip("etcd store tests", "").await else {
        return;
    };
    let store = etcd
        .store
        .clone()
        .with_request_timeout(Duration::from_secs(3));
    store
        .create("/registry/x", Bytes::from_static(b"1"))
        .await
        .unwrap();
    drop(etcd);
    for result in [
        store.get("/registry/x").await.map(|_| ()),
        store
            .create("/registry/y", Bytes::from_static(b"2"))
            .await
            .map(|_| ()),
        store.list("/registry/", None, None).await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(StoreError::Unavailable { .. })),
            "expected Unavailable, got {result:?}"
        );
    }
}
