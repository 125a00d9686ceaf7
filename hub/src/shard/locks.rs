//! Shard lock keys in etcd and writes fenced by them.
//!
//! The lock of shard `s` is `{prefix}/shards/{s}`, holding the owner's replica id and bound to the
//! owner's lease. Its create revision is the fencing token: a write for the shard is a transaction
//! that compares the lock's create revision with the token the writer got when it acquired the
//! lock. After a lease loss the key is deleted (or re-created by another replica with a higher
//! create revision), so the stale owner's writes fail with [`ShardError::Fenced`].

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};
use kruise_apiserver::store::{KeyValue, Revision};

use super::ShardError;

/// Bound on each etcd request made for locks and fenced writes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Acquire, release and write under shard locks.
#[derive(Clone)]
pub struct ShardLocks {
    client: Client,
    prefix: String,
}

async fn bounded<T>(
    operation: &'static str,
    fut: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, ShardError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(ShardError::Etcd { operation, source }),
        Err(_) => Err(ShardError::Timeout { operation }),
    }
}

impl ShardLocks {
    /// Locks under `prefix` (e.g. `/kruise-hub`).
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        ShardLocks {
            client,
            prefix: prefix.into(),
        }
    }

    /// The lock key of `shard`.
    pub fn lock_key(&self, shard: u32) -> String {
        format!("{}/shards/{shard:04}", self.prefix)
    }

    /// The prefix of all lock keys.
    pub fn locks_prefix(&self) -> String {
        format!("{}/shards/", self.prefix)
    }

    /// Takes the lock of `shard` for `holder` under `lease` if it is free; returns the fencing
    /// token, or `None` when another replica holds it.
    pub async fn try_acquire(
        &self,
        shard: u32,
        holder: &str,
        lease: i64,
    ) -> Result<Option<i64>, ShardError> {
        let key = self.lock_key(shard);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                holder,
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let mut client = self.client.clone();
        let resp = bounded("acquire shard lock", client.txn(txn)).await?;
        if !resp.succeeded() {
            return Ok(None);
        }
        // The put is the only write of the transaction: its revision is the key's create revision.
        Ok(resp.header().map(|h| h.revision()))
    }

    /// Releases the lock of `shard` if `token` still is its fencing token.
    pub async fn release(&self, shard: u32, token: i64) -> Result<bool, ShardError> {
        let key = self.lock_key(shard);
        let txn = Txn::new()
            .when([Compare::create_revision(
                key.clone(),
                CompareOp::Equal,
                token,
            )])
            .and_then([TxnOp::delete(key, None)]);
        let mut client = self.client.clone();
        Ok(bounded("release shard lock", client.txn(txn))
            .await?
            .succeeded())
    }

    /// Writes `value` at `key` if the key's mod revision is `expected` (0 = must not exist) and
    /// `token` still fences `shard`.
    pub async fn fenced_put(
        &self,
        shard: u32,
        token: i64,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, ShardError> {
        self.fenced(
            shard,
            token,
            key,
            expected,
            TxnOp::put(key, value.to_vec(), None),
        )
        .await
        .map(|revision| KeyValue {
            key: key.to_string(),
            value,
            create_revision: if expected == 0 { revision } else { 0 },
            mod_revision: revision,
        })
    }

    /// Deletes `key` if its mod revision is `expected` and `token` still fences `shard`; returns
    /// the revision of the delete.
    pub async fn fenced_delete(
        &self,
        shard: u32,
        token: i64,
        key: &str,
        expected: Revision,
    ) -> Result<Revision, ShardError> {
        self.fenced(shard, token, key, expected, TxnOp::delete(key, None))
            .await
    }

    async fn fenced(
        &self,
        shard: u32,
        token: i64,
        key: &str,
        expected: Revision,
        op: TxnOp,
    ) -> Result<Revision, ShardError> {
        let lock = self.lock_key(shard);
        let txn = Txn::new()
            .when([
                Compare::create_revision(lock.clone(), CompareOp::Equal, token),
                Compare::mod_revision(key, CompareOp::Equal, expected),
            ])
            .and_then([op])
            .or_else([TxnOp::get(lock, None), TxnOp::get(key, None)]);
        let mut client = self.client.clone();
        let resp = bounded("fenced write", client.txn(txn)).await?;
        if resp.succeeded() {
            return Ok(resp.header().map(|h| h.revision()).unwrap_or_default());
        }
        let mut lock_rev = 0;
        let mut actual = 0;
        for (i, op) in resp.op_responses().into_iter().enumerate() {
            if let TxnOpResponse::Get(get) = op {
                let rev = get
                    .kvs()
                    .first()
                    .map(|kv| (kv.create_revision(), kv.mod_revision()));
                match (i, rev) {
                    (0, Some((create, _))) => lock_rev = create,
                    (1, Some((_, modified))) => actual = modified,
                    _ => {}
                }
            }
        }
        if lock_rev != token {
            return Err(ShardError::Fenced { shard });
        }
        Err(ShardError::Conflict {
            key: key.to_string(),
            expected,
            actual,
        })
    }
}
