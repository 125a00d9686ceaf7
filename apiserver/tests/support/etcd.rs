//! Test harness: a throwaway etcd plus an `EtcdStore` connected to it.

// Included by several test binaries, each using a different part.
#![allow(dead_code)]

use kruise_apiserver::store::etcd_process::{EtcdProcess, EtcdProcessError};
use kruise_apiserver::store::EtcdStore;

/// A running etcd and a store over it; the etcd stops when this is dropped.
pub struct EtcdHarness {
    pub store: EtcdStore,
    /// The server; declared after `store` so that it is dropped last.
    pub process: EtcdProcess,
}

/// Starts etcd for `suite`, or prints why the suite is skipped and returns `None` when the
/// `etcd` binary is not installed. Any other startup failure fails the test.
pub async fn start_or_skip(suite: &str, key_prefix: &str) -> Option<EtcdHarness> {
    match EtcdProcess::start().await {
        Ok(process) => {
            let store = EtcdStore::connect(&[process.endpoint()], key_prefix)
                .await
                .unwrap_or_else(|e| panic!("connecting to etcd at {}: {e}", process.endpoint()));
            Some(EtcdHarness { store, process })
        }
        Err(EtcdProcessError::NotInstalled) => {
            eprintln!("skipping {suite}: etcd not installed (apt-get install etcd-server)");
            None
        }
        Err(e) => panic!("starting etcd for {suite}: {e}"),
    }
}
