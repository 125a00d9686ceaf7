//! Group commit for the etcd store's writes.
//!
//! Every create, update and delete is queued. While fewer than
//! [`WriteBatching::max_in_flight`] transactions (default 1) are outstanding, a write starts a
//! committer task at once, so a lone write never waits for anything. Writes that arrive while the
//! committers are busy accumulate in the queue, and each committer, once its transaction returns,
//! takes everything queued (up to [`WriteBatching::max_ops`] operations and
//! [`WriteBatching::max_bytes`]) into its next transaction. There is no linger timer.
//!
//! One batch is one etcd transaction: `compare` holds every operation's precondition
//! (`create_revision == 0` for a create, `mod_revision == expected` for a conditional update or
//! delete), `success` holds the puts and deletes (with `prev_kv`), and `failure` reads each
//! conditioned key (keys only). When the transaction succeeds, every operation of the batch is
//! committed at the transaction's revision: objects written together share one
//! `resourceVersion`, and their watch events share one mod revision (etcd delivers the events of
//! one revision together, so a watch resumed "after R" sees all of them or none). When a
//! precondition fails, the `failure` reads show exactly which ones: those callers get their
//! `AlreadyExists`, `Conflict` or `NotFound` (the reads are at the same revision as the failed
//! compare, as a lone transaction would have seen it), and the remaining operations are retried
//! as one transaction. Each retry removes at least one failed operation, so a batch ends after at
//! most as many transactions as it has operations.
//!
//! A batch never holds two operations on the same key (etcd rejects duplicate keys in one
//! transaction); a later operation on a key stays queued, in order, for the next batch. Once a
//! batch is done, such a waiting operation that was queued before the batch was sent and whose
//! precondition is already decided by the key's state the batch saw (a create of a key that
//! exists, an update expecting a revision the key no longer has) is answered at once, as a lone
//! transaction racing with the batch would have been; so many writers contending for one key
//! cost one transaction, not one each. Writes whose caller has given up (timed out or dropped)
//! before their batch is formed are skipped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use etcd_client::{Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp};
use etcd_client::{TxnOpResponse, TxnResponse};
use tokio::sync::oneshot;

use super::{header_revision, EtcdStore};
use crate::store::{KeyValue, Revision, StoreError};

/// etcd's default `--max-txn-ops`: the most operations one transaction branch may hold.
pub const ETCD_MAX_TXN_OPS: usize = 128;

/// Request bytes a batch may carry. etcd's default `--max-request-bytes` is 1.5 MiB; the rest is
/// left for the transaction's framing.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 1 << 20;

/// Encoding overhead counted per operation on top of its keys and value.
const OP_OVERHEAD_BYTES: usize = 32;

/// How the etcd store groups concurrent writes into transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteBatching {
    /// Most operations per transaction (at most the server's `--max-txn-ops`, 128 by default).
    pub max_ops: usize,
    /// Most request bytes (keys and values) per transaction; a single larger write is sent alone.
    pub max_bytes: usize,
    /// Transactions outstanding at once; writes beyond that queue for the next batch.
    pub max_in_flight: usize,
}

impl Default for WriteBatching {
    fn default() -> Self {
        Self {
            max_ops: ETCD_MAX_TXN_OPS,
            max_bytes: DEFAULT_MAX_BATCH_BYTES,
            // One transaction at a time gives the largest batches; on etcd 3.4 a transaction's
            // fixed cost dominates, so that also gives the most writes per second.
            max_in_flight: 1,
        }
    }
}

impl WriteBatching {
    /// One transaction per write, with no bound on concurrent transactions.
    pub fn disabled() -> Self {
        Self {
            max_ops: 1,
            max_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_in_flight: usize::MAX,
        }
    }

    fn normalized(self) -> Self {
        Self {
            max_ops: self.max_ops.max(1),
            max_bytes: self.max_bytes.max(1),
            max_in_flight: self.max_in_flight.max(1),
        }
    }
}

/// Counters of the group commit, cumulative since the store was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteBatchStats {
    /// Write transactions sent (including retries after a failed precondition).
    pub txns: u64,
    /// Operations committed.
    pub committed: u64,
    /// Operations answered with a failed precondition (`AlreadyExists`, `Conflict`, `NotFound`).
    pub rejected: u64,
    /// Transactions re-sent after some of their preconditions failed.
    pub retries: u64,
}

/// One requested write.
#[derive(Debug)]
pub(super) enum WriteOp {
    Create(Bytes),
    Update(Bytes, Revision),
    Delete(Option<Revision>),
}

/// A key's state as a transaction saw it: `(create_revision, mod_revision)`, `None` if absent.
type KeyState = Option<(Revision, Revision)>;

/// A queued write and where its result goes.
struct Queued {
    /// Queue order; a batch formed when the next number was `n` was sent after every write below
    /// `n` was queued.
    seq: u64,
    key: String,
    full: Vec<u8>,
    op: WriteOp,
    reply: oneshot::Sender<Result<KeyValue, StoreError>>,
}

impl Queued {
    fn request_bytes(&self) -> usize {
        let value = match &self.op {
            WriteOp::Create(v) | WriteOp::Update(v, _) => v.len(),
            WriteOp::Delete(_) => 0,
        };
        // The key appears in the compare, the success op and the failure read.
        3 * self.full.len() + value + OP_OVERHEAD_BYTES
    }

    /// The revision the precondition expects, if the write has one.
    fn compare(&self) -> Option<Compare> {
        let key = self.full.clone();
        match self.op {
            WriteOp::Create(_) => Some(Compare::create_revision(key, CompareOp::Equal, 0)),
            WriteOp::Update(_, expected) | WriteOp::Delete(Some(expected)) => {
                Some(Compare::mod_revision(key, CompareOp::Equal, expected))
            }
            WriteOp::Delete(None) => None,
        }
    }

    fn success_op(&self) -> TxnOp {
        let key = self.full.clone();
        match &self.op {
            WriteOp::Create(value) => TxnOp::put(key, value.to_vec(), None),
            WriteOp::Update(value, _) => {
                TxnOp::put(key, value.to_vec(), Some(PutOptions::new().with_prev_key()))
            }
            WriteOp::Delete(_) => TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key())),
        }
    }

    /// Why this write's precondition does not hold, given the key's current
    /// `(create_revision, mod_revision)` read in the same transaction; `None` if it holds.
    fn rejection(&self, current: KeyState) -> Option<StoreError> {
        let key = self.key.clone();
        match (&self.op, current) {
            (WriteOp::Create(_), Some(_)) => Some(StoreError::AlreadyExists { key }),
            (WriteOp::Create(_), None) | (WriteOp::Delete(None), _) => None,
            (WriteOp::Update(..) | WriteOp::Delete(Some(_)), None) => {
                Some(StoreError::NotFound { key })
            }
            (WriteOp::Update(_, expected) | WriteOp::Delete(Some(expected)), Some((_, actual))) => {
                (actual != *expected).then_some(StoreError::Conflict {
                    key,
                    expected: *expected,
                    actual,
                })
            }
        }
    }

    fn answer(self, result: Result<KeyValue, StoreError>) {
        // A caller that gave up has dropped its receiver; nobody is left to tell.
        let _ = self.reply.send(result);
    }
}

/// The queue shared by a store and its clones.
pub(super) struct Batcher {
    config: WriteBatching,
    state: Mutex<QueueState>,
    txns: AtomicU64,
    committed: AtomicU64,
    rejected: AtomicU64,
    retries: AtomicU64,
}

struct QueueState {
    pending: VecDeque<Queued>,
    in_flight: usize,
    next_seq: u64,
}

impl Batcher {
    pub(super) fn new(config: WriteBatching) -> Self {
        Self {
            config: config.normalized(),
            state: Mutex::new(QueueState {
                pending: VecDeque::new(),
                in_flight: 0,
                next_seq: 0,
            }),
            txns: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    pub(super) fn config(&self) -> WriteBatching {
        self.config
    }

    pub(super) fn stats(&self) -> WriteBatchStats {
        WriteBatchStats {
            txns: self.txns.load(Ordering::Relaxed),
            committed: self.committed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // The critical sections only move queue entries; a panic cannot leave them half done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next batch off the queue (with the queue number it was formed at), or gives up
    /// the committer slot when the queue is empty.
    fn next_batch(&self) -> (Vec<Queued>, u64) {
        let mut state = self.lock();
        let batch = take_batch(&mut state.pending, &self.config);
        if batch.is_empty() {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
        (batch, state.next_seq)
    }

    /// Answers the writes queued before a batch formed at `formed` whose preconditions the key
    /// states the batch saw (`seen`) already decide; stops at a key's first undecided write.
    fn answer_decided(&self, formed: u64, seen: &HashMap<Vec<u8>, KeyState>) {
        if seen.is_empty() {
            return;
        }
        let mut state = self.lock();
        let mut undecided = HashSet::new();
        let mut kept = Vec::new();
        while state.pending.front().is_some_and(|q| q.seq < formed) {
            let Some(queued) = state.pending.pop_front() else {
                break;
            };
            let rejection = match seen.get(&queued.full) {
                Some(current) if !undecided.contains(&queued.full) => queued.rejection(*current),
                _ => None,
            };
            match rejection {
                Some(e) => {
                    tracing::trace!(key = %queued.key, error = %e, "answered from the batch's view of the key");
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    queued.answer(Err(e));
                }
                None => {
                    undecided.insert(queued.full.clone());
                    kept.push(queued);
                }
            }
        }
        for queued in kept.into_iter().rev() {
            state.pending.push_front(queued);
        }
    }
}

/// The longest prefix of `pending` (skipping, not reordering, later writes to keys already in
/// the batch) that fits the limits. Writes whose caller is gone are dropped.
fn take_batch(pending: &mut VecDeque<Queued>, config: &WriteBatching) -> Vec<Queued> {
    let mut batch: Vec<Queued> = Vec::new();
    let mut keys: HashSet<Vec<u8>> = HashSet::new();
    let mut deferred = Vec::new();
    let mut bytes = 0;
    while batch.len() < config.max_ops {
        let Some(queued) = pending.pop_front() else {
            break;
        };
        if queued.reply.is_closed() {
            tracing::debug!(key = %queued.key, "skipping a write whose caller gave up");
            continue;
        }
        let size = queued.request_bytes();
        if !batch.is_empty() && bytes + size > config.max_bytes {
            pending.push_front(queued);
            break;
        }
        if keys.contains(&queued.full) {
            deferred.push(queued);
            continue;
        }
        keys.insert(queued.full.clone());
        bytes += size;
        batch.push(queued);
    }
    for queued in deferred.into_iter().rev() {
        pending.push_front(queued);
    }
    batch
}

/// Gives the committer slot back if a committer task ends without emptying the queue normally
/// (it panicked), so that the next write starts a new one.
struct SlotGuard(Option<Arc<Batcher>>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(batcher) = self.0.take() {
            let mut state = batcher.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }
}

impl EtcdStore {
    /// Queues a write and waits for its result, bounded by the request timeout.
    pub(super) async fn queue_write(&self, key: &str, op: WriteOp) -> Result<KeyValue, StoreError> {
        let (reply, result) = oneshot::channel();
        let mut queued = Queued {
            seq: 0,
            key: key.to_owned(),
            full: self.full_key(key),
            op,
            reply,
        };
        let start_committer = {
            let mut state = self.batcher.lock();
            queued.seq = state.next_seq;
            state.next_seq += 1;
            state.pending.push_back(queued);
            if state.in_flight < self.batcher.config.max_in_flight {
                state.in_flight += 1;
                true
            } else {
                false
            }
        };
        if start_committer {
            let store = self.clone();
            tokio::spawn(async move { store.commit_queued().await });
        }
        match tokio::time::timeout(self.request_timeout, result).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::Internal {
                message: format!("etcd write of {key} ended without a result"),
            }),
            Err(_) => Err(StoreError::Unavailable {
                message: format!(
                    "etcd request timed out after {:?} (write of {key})",
                    self.request_timeout
                ),
            }),
        }
    }

    /// A committer: sends batches until the queue is empty.
    async fn commit_queued(self) {
        let mut guard = SlotGuard(Some(self.batcher.clone()));
        loop {
            let (batch, formed) = self.batcher.next_batch();
            if batch.is_empty() {
                // `next_batch` released the slot under the queue lock.
                guard.0 = None;
                return;
            }
            let seen = self.commit_batch(batch).await;
            self.batcher.answer_decided(formed, &seen);
        }
    }

    /// Commits `batch` as one transaction, answering every write in it. Returns the states of
    /// the batch's keys that the transactions saw or made.
    async fn commit_batch(&self, mut batch: Vec<Queued>) -> HashMap<Vec<u8>, KeyState> {
        let mut seen = HashMap::new();
        loop {
            let ops = batch.len();
            let mut compares = Vec::with_capacity(ops);
            let mut reads = Vec::with_capacity(ops);
            let mut success = Vec::with_capacity(ops);
            for queued in &batch {
                if let Some(compare) = queued.compare() {
                    compares.push(compare);
                    reads.push(TxnOp::get(
                        queued.full.clone(),
                        Some(GetOptions::new().with_keys_only()),
                    ));
                }
                success.push(queued.success_op());
            }
            let txn = Txn::new().when(compares).and_then(success).or_else(reads);
            self.batcher.txns.fetch_add(1, Ordering::Relaxed);
            let response = match self.txn(txn).await {
                Ok(response) => response,
                Err(e) => {
                    tracing::debug!(ops, error = %e, "etcd write transaction failed");
                    for queued in batch {
                        queued.answer(Err(e.clone()));
                    }
                    return seen;
                }
            };
            if response.succeeded() {
                self.answer_committed(batch, &response, &mut seen);
                return seen;
            }
            match self.reject_failed(batch, &response, &mut seen) {
                Ok(remaining) if remaining.is_empty() => return seen,
                Ok(remaining) => {
                    self.batcher.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::trace!(
                        ops,
                        retry = remaining.len(),
                        "retrying the writes of a batch whose preconditions held"
                    );
                    batch = remaining;
                }
                Err((e, batch)) => {
                    for queued in batch {
                        queued.answer(Err(e.clone()));
                    }
                    return seen;
                }
            }
        }
    }

    /// Answers every write of a committed transaction.
    fn answer_committed(
        &self,
        batch: Vec<Queued>,
        response: &TxnResponse,
        seen: &mut HashMap<Vec<u8>, KeyState>,
    ) {
        let revision = match header_revision(response) {
            Ok(revision) => revision,
            Err(e) => {
                for queued in batch {
                    queued.answer(Err(e.clone()));
                }
                return;
            }
        };
        let results = response.op_responses();
        if results.len() != batch.len() {
            let e = StoreError::Internal {
                message: format!(
                    "etcd write transaction at revision {revision} answered {} of {} operations",
                    results.len(),
                    batch.len()
                ),
            };
            for queued in batch {
                queued.answer(Err(e.clone()));
            }
            return;
        }
        tracing::debug!(ops = batch.len(), revision, "committed etcd write batch");
        self.batcher
            .committed
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for (queued, result) in batch.into_iter().zip(results) {
            let outcome = self.committed_value(&queued, revision, result);
            match (&queued.op, &outcome) {
                (WriteOp::Delete(_), _) => {
                    seen.insert(queued.full.clone(), None);
                }
                (_, Ok(kv)) => {
                    seen.insert(queued.full.clone(), Some((kv.create_revision, revision)));
                }
                (_, Err(_)) => {}
            }
            queued.answer(outcome);
        }
    }

    fn committed_value(
        &self,
        queued: &Queued,
        revision: Revision,
        result: TxnOpResponse,
    ) -> Result<KeyValue, StoreError> {
        let key = queued.key.clone();
        match (&queued.op, result) {
            (WriteOp::Create(value), TxnOpResponse::Put(_)) => Ok(KeyValue {
                key,
                value: value.clone(),
                create_revision: revision,
                mod_revision: revision,
            }),
            (WriteOp::Update(value, _), TxnOpResponse::Put(put)) => {
                let create_revision =
                    put.prev_key()
                        .map(|kv| kv.create_revision())
                        .ok_or_else(|| StoreError::Internal {
                            message: format!("etcd update of {key} returned no previous value"),
                        })?;
                Ok(KeyValue {
                    key,
                    value: value.clone(),
                    create_revision,
                    mod_revision: revision,
                })
            }
            (WriteOp::Delete(_), TxnOpResponse::Delete(delete)) => {
                match delete.prev_kvs().first() {
                    Some(last) => Ok(KeyValue {
                        mod_revision: revision,
                        ..self.to_kv(last)?
                    }),
                    None => Err(StoreError::NotFound { key }),
                }
            }
            (op, _) => Err(StoreError::Internal {
                message: format!(
                    "etcd write transaction answered {key} ({op:?}) with another operation's result"
                ),
            }),
        }
    }

    /// Answers the writes whose preconditions failed (per the transaction's `failure` reads) and
    /// returns the others for a retry. Errs (with the batch) if the reads do not show any failed
    /// precondition, which would otherwise retry forever.
    fn reject_failed(
        &self,
        batch: Vec<Queued>,
        response: &TxnResponse,
        seen: &mut HashMap<Vec<u8>, KeyState>,
    ) -> Result<Vec<Queued>, (StoreError, Vec<Queued>)> {
        let mut reads = response.op_responses().into_iter();
        let mut current = Vec::with_capacity(batch.len());
        for queued in &batch {
            if queued.compare().is_none() {
                current.push(None);
                continue;
            }
            match reads.next() {
                Some(TxnOpResponse::Get(get)) => current.push(Some(
                    get.kvs()
                        .first()
                        .map(|kv| (kv.create_revision(), kv.mod_revision())),
                )),
                _ => {
                    let e = StoreError::Internal {
                        message: format!(
                            "etcd write transaction did not read {} after a failed compare",
                            queued.key
                        ),
                    };
                    return Err((e, batch));
                }
            }
        }
        let rejections: Vec<Option<StoreError>> = batch
            .iter()
            .zip(current.iter().copied())
            .map(|(queued, current)| current.and_then(|c| queued.rejection(c)))
            .collect();
        if rejections.iter().all(Option::is_none) {
            let e = StoreError::Internal {
                message: format!(
                    "etcd write transaction of {} operations failed its compare, but every key read matches",
                    batch.len()
                ),
            };
            return Err((e, batch));
        }
        let mut remaining = Vec::new();
        for ((queued, rejection), current) in batch.into_iter().zip(rejections).zip(current) {
            match rejection {
                Some(e) => {
                    if let Some(current) = current {
                        seen.insert(queued.full.clone(), current);
                    }
                    self.batcher.rejected.fetch_add(1, Ordering::Relaxed);
                    queued.answer(Err(e));
                }
                None => remaining.push(queued),
            }
        }
        Ok(remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(key: &str, value: &str) -> (Queued, oneshot::Receiver<Result<KeyValue, StoreError>>) {
        let (reply, rx) = oneshot::channel();
        let queued = Queued {
            seq: 0,
            key: key.to_owned(),
            full: key.as_bytes().to_vec(),
            op: WriteOp::Create(Bytes::copy_from_slice(value.as_bytes())),
            reply,
        };
        (queued, rx)
    }

    fn keys(batch: &[Queued]) -> Vec<&str> {
        batch.iter().map(|q| q.key.as_str()).collect()
    }

    #[test]
    fn a_batch_holds_each_key_once_and_keeps_later_writes_in_order() {
        let mut pending = VecDeque::new();
        let mut receivers = Vec::new();
        for (key, value) in [("a", "1"), ("b", "1"), ("a", "2"), ("c", "1"), ("a", "3")] {
            let (q, rx) = queued(key, value);
            pending.push_back(q);
            receivers.push(rx);
        }
        let batch = take_batch(&mut pending, &WriteBatching::default());
        assert_eq!(keys(&batch), ["a", "b", "c"]);
        let rest: Vec<_> = pending.iter().map(|q| (q.key.as_str(), &q.op)).collect();
        assert_eq!(rest.len(), 2);
        assert!(matches!(rest[0], ("a", WriteOp::Create(v)) if v == "2"));
        assert!(matches!(rest[1], ("a", WriteOp::Create(v)) if v == "3"));
        let next = take_batch(&mut pending, &WriteBatching::default());
        assert_eq!(keys(&next), ["a"]);
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn batches_respect_the_operation_and_byte_limits() {
        let mut pending = VecDeque::new();
        let mut receivers = Vec::new();
        for i in 0..10 {
            let (q, rx) = queued(&format!("k{i}"), &"x".repeat(100));
            pending.push_back(q);
            receivers.push(rx);
        }
        let config = WriteBatching {
            max_ops: 4,
            ..WriteBatching::default()
        };
        assert_eq!(take_batch(&mut pending, &config).len(), 4);
        let one_op = pending[0].request_bytes();
        let config = WriteBatching {
            max_bytes: 2 * one_op + 1,
            ..WriteBatching::default()
        };
        assert_eq!(keys(&take_batch(&mut pending, &config)), ["k4", "k5"]);
        // A single write above the byte budget still goes, alone.
        let config = WriteBatching {
            max_bytes: 1,
            ..WriteBatching::default()
        };
        assert_eq!(keys(&take_batch(&mut pending, &config)), ["k6"]);
        assert_eq!(pending.len(), 3);
    }

    #[test]
    fn writes_whose_caller_gave_up_are_skipped() {
        let mut pending = VecDeque::new();
        let (a, rx_a) = queued("a", "1");
        let (b, rx_b) = queued("b", "1");
        pending.extend([a, b]);
        drop(rx_a);
        let batch = take_batch(&mut pending, &WriteBatching::default());
        assert_eq!(keys(&batch), ["b"]);
        assert!(pending.is_empty());
        drop(rx_b);
    }

    #[test]
    fn waiting_writes_decided_by_the_batch_are_answered_in_queue_order() {
        let batcher = Batcher::new(WriteBatching::default());
        let mut receivers = Vec::new();
        {
            let mut state = batcher.lock();
            let ops = [
                ("a", WriteOp::Create(Bytes::from_static(b"dup"))),
                ("b", WriteOp::Update(Bytes::new(), 3)),
                ("b", WriteOp::Update(Bytes::new(), 9)),
                ("b", WriteOp::Create(Bytes::new())),
                ("c", WriteOp::Delete(None)),
                ("a", WriteOp::Create(Bytes::from_static(b"late"))),
            ];
            for (seq, (key, op)) in ops.into_iter().enumerate() {
                let (reply, rx) = oneshot::channel();
                state.pending.push_back(Queued {
                    seq: seq as u64,
                    key: key.into(),
                    full: key.as_bytes().to_vec(),
                    op,
                    reply,
                });
                receivers.push(rx);
            }
        }
        let seen = HashMap::from([
            (b"a".to_vec(), Some((5, 5))),
            (b"b".to_vec(), Some((2, 9))),
            (b"c".to_vec(), Some((4, 4))),
        ]);
        // The batch was formed before the last write was queued.
        batcher.answer_decided(5, &seen);
        let answered: Vec<_> = receivers.iter_mut().map(|rx| rx.try_recv().ok()).collect();
        assert_eq!(
            answered[0],
            Some(Err(StoreError::AlreadyExists { key: "a".into() }))
        );
        assert_eq!(
            answered[1],
            Some(Err(StoreError::Conflict {
                key: "b".into(),
                expected: 3,
                actual: 9
            }))
        );
        // An update whose precondition holds must run; the create behind it waits its turn.
        assert_eq!(answered[2..], [None, None, None, None]);
        let left: Vec<_> = batcher.lock().pending.iter().map(|q| q.seq).collect();
        assert_eq!(left, [2, 3, 4, 5]);
    }

    #[test]
    fn rejections_name_the_failed_precondition() {
        let (reply, _rx) = oneshot::channel();
        let update = Queued {
            seq: 0,
            key: "k".into(),
            full: b"k".to_vec(),
            op: WriteOp::Update(Bytes::new(), 5),
            reply,
        };
        assert_eq!(update.rejection(Some((2, 5))), None);
        assert_eq!(
            update.rejection(Some((2, 7))),
            Some(StoreError::Conflict {
                key: "k".into(),
                expected: 5,
                actual: 7
            })
        );
        assert_eq!(
            update.rejection(None),
            Some(StoreError::NotFound { key: "k".into() })
        );
        let (create, _rx) = queued("k", "v");
        assert_eq!(
            create.rejection(Some((3, 3))),
            Some(StoreError::AlreadyExists { key: "k".into() })
        );
        assert_eq!(create.rejection(None), None);
    }
}
