//! The etcd backend: reads are single etcd requests; writes are transactions, grouped by
//! [`batch`] so that writes queued while earlier transactions are in flight share one.
//!
//! Keys are stored under a configurable prefix (empty by default, so `/registry/...` keys are
//! stored as given); revisions are etcd's, so `resourceVersion` = the key's mod revision and a
//! list's revision = the response header revision. Writes committed in one batch share their
//! transaction's revision. Watches are etcd watches from `after + 1` with `prev_kv`; a compacted
//! start revision yields [`StoreError::Compacted`] as the first item.

mod batch;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, ConnectOptions, EventType, GetOptions, KvClient, Txn, TxnResponse, WatchOptions,
};
use futures::StreamExt;
use tonic::Code;

use self::batch::{Batcher, WriteOp};
pub use self::batch::{WriteBatchStats, WriteBatching, DEFAULT_MAX_BATCH_BYTES, ETCD_MAX_TXN_OPS};

use super::{
    EventKind, KeyValue, ListResult, Revision, Store, StoreError, WatchEvent, WatchStream,
};

/// Keys per range request when listing; larger lists are read in pages at one revision.
const LIST_PAGE: usize = 500;

/// Largest response accepted from etcd (etcd-client's default of 4 MiB is too small for a page of
/// large objects or a watch response replaying many revisions).
const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// Bound on every unary etcd request (watches are long-lived and have none).
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`Store`] over an etcd v3 cluster.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    prefix: String,
    request_timeout: Duration,
    /// The write queue, shared by clones.
    batcher: Arc<Batcher>,
}

/// Maps an etcd client error: transport trouble is `Unavailable` (retryable), the rest internal.
fn map_err(e: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    match e {
        E::TransportError(_) | E::IoError(_) | E::EndpointError(_) => StoreError::Unavailable {
            message: e.to_string(),
        },
        E::GRpcStatus(ref status) => match status.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Aborted
            | Code::ResourceExhausted
            // A paged list whose revision was compacted meanwhile: a retry reads a fresh one.
            | Code::OutOfRange
            | Code::Unknown => StoreError::Unavailable {
                message: e.to_string(),
            },
            _ => StoreError::Internal {
                message: e.to_string(),
            },
        },
        other => StoreError::Internal {
            message: other.to_string(),
        },
    }
}

/// Maps the error of a range read at `revision`: a compacted revision is
/// [`StoreError::Compacted`] (etcd does not say up to where it compacted, so `oldest` is the
/// lower bound `revision + 1`), a revision etcd has not reached yet is internal.
fn map_range_err(e: etcd_client::Error, revision: Revision) -> StoreError {
    if let etcd_client::Error::GRpcStatus(status) = &e {
        if status.code() == Code::OutOfRange {
            if status.message().contains("compacted") {
                return StoreError::Compacted {
                    requested: revision,
                    oldest: revision + 1,
                };
            }
            if status.message().contains("future revision") {
                return StoreError::Internal {
                    message: format!("listing at revision {revision}: {}", status.message()),
                };
            }
        }
    }
    map_err(e)
}

/// The first key after every key starting with `prefix` (etcd's range end for a prefix).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff (or the prefix is empty): the range runs to the end of the keyspace.
    vec![0]
}

/// etcd rejects an empty key; `"\0"` is the lowest key (the start of "all keys").
fn non_empty(key: Vec<u8>) -> Vec<u8> {
    if key.is_empty() {
        vec![0]
    } else {
        key
    }
}

impl EtcdStore {
    /// Connects to `endpoints` and checks that etcd answers (`Client::connect` alone is lazy).
    /// Keys are stored as `prefix + key`.
    pub async fn connect<E: AsRef<str>>(
        endpoints: &[E],
        prefix: impl Into<String>,
    ) -> Result<Self, StoreError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let endpoints: Vec<&str> = endpoints.iter().map(AsRef::as_ref).collect();
        let client = Client::connect(&endpoints, Some(options))
            .await
            .map_err(map_err)?;
        let store = Self::from_client(client, prefix);
        let mut probe = store.client.clone();
        store.bounded(probe.status()).await?;
        Ok(store)
    }

    /// Wraps an existing client (no probe).
    pub fn from_client(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            batcher: Arc::new(Batcher::new(WriteBatching::default())),
        }
    }

    /// Replaces the group-commit settings (default: [`WriteBatching::default`]). The store gets a
    /// new, empty write queue; call this before sharing the store.
    pub fn with_write_batching(mut self, batching: WriteBatching) -> Self {
        self.batcher = Arc::new(Batcher::new(batching));
        self
    }

    /// The group-commit settings in effect.
    pub fn write_batching(&self) -> WriteBatching {
        self.batcher.config()
    }

    /// Group-commit counters (transactions sent, operations committed and rejected).
    pub fn write_batch_stats(&self) -> WriteBatchStats {
        self.batcher.stats()
    }

    /// Overrides the bound on each unary request (default 10 s).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The underlying client (for operations outside the store contract, e.g. compaction).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn full_key(&self, key: &str) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.prefix.len() + key.len());
        full.extend_from_slice(self.prefix.as_bytes());
        full.extend_from_slice(key.as_bytes());
        full
    }

    fn to_kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        let key = kv
            .key()
            .strip_prefix(self.prefix.as_bytes())
            .unwrap_or(kv.key());
        let key = std::str::from_utf8(key).map_err(|_| StoreError::Internal {
            message: format!(
                "etcd key {:?} is not UTF-8",
                String::from_utf8_lossy(kv.key())
            ),
        })?;
        Ok(KeyValue {
            key: key.to_owned(),
            value: Bytes::copy_from_slice(kv.value()),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StoreError> {
        self.bounded_with(call, map_err).await
    }

    /// [`Self::bounded`] with a custom mapping of etcd's errors.
    async fn bounded_with<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
        map: impl FnOnce(etcd_client::Error) -> StoreError,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.request_timeout, call).await {
            Ok(result) => result.map_err(map),
            Err(_) => Err(StoreError::Unavailable {
                message: format!("etcd request timed out after {:?}", self.request_timeout),
            }),
        }
    }

    fn kv(&self) -> KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let mut kv = self.kv();
        self.bounded(kv.txn(txn)).await
    }
}

fn response_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Internal {
            message: "etcd response without header".to_owned(),
        })
}

fn header_revision(response: &TxnResponse) -> Result<Revision, StoreError> {
    response
        .header()
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Internal {
            message: "etcd response without header".to_owned(),
        })
}

impl EtcdStore {
    /// Keys under `prefix` after `start_after`, at most `limit`, read at `at` (or at the current
    /// revision) in pages of [`LIST_PAGE`] keys that all read the first page's revision.
    async fn read_range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        at: Option<Revision>,
    ) -> Result<ListResult, StoreError> {
        let full_prefix = self.full_key(prefix);
        let range_end = prefix_end(&full_prefix);
        let mut start = match start_after {
            Some(after) if after >= prefix => {
                let mut start = self.full_key(after);
                start.push(0);
                start
            }
            _ => non_empty(full_prefix),
        };
        let mut kv = self.kv();
        if limit == Some(0) {
            // etcd reads a limit of 0 as "no limit": count instead, to tell whether keys follow.
            let mut options = GetOptions::new().with_range(range_end).with_count_only();
            if let Some(at) = at {
                options = options.with_revision(at);
            }
            let response = match at {
                Some(at) => {
                    self.bounded_with(kv.get(start, Some(options)), |e| map_range_err(e, at))
                        .await?
                }
                None => self.bounded(kv.get(start, Some(options))).await?,
            };
            return Ok(ListResult {
                items: Vec::new(),
                revision: match at {
                    Some(at) => at,
                    None => response_revision(response.header())?,
                },
                more: response.count() > 0,
            });
        }
        // Read in pages of at most LIST_PAGE keys, all at the first page's revision, so that a
        // large list is one consistent snapshot without one huge response.
        let wanted = limit.unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut revision = at;
        loop {
            let page = (wanted - items.len()).min(LIST_PAGE);
            let mut options = GetOptions::new()
                .with_range(range_end.clone())
                .with_limit(page as i64);
            if let Some(revision) = revision {
                options = options.with_revision(revision);
            }
            let call = kv.get(start.clone(), Some(options));
            let response = match at {
                // The caller's revision: compaction is the caller's to handle (410 Expired).
                Some(at) => self.bounded_with(call, |e| map_range_err(e, at)).await?,
                // Later pages of a list read at the first page's revision, which etcd may compact
                // meanwhile; `map_err` makes that retryable (a retry reads a fresh revision).
                None => self.bounded(call).await?,
            };
            let read_at = match revision {
                Some(read_at) => read_at,
                None => *revision.insert(response_revision(response.header())?),
            };
            for kv in response.kvs() {
                items.push(self.to_kv(kv)?);
            }
            let more = response.more();
            match items.last() {
                Some(last) if more && items.len() < wanted => {
                    start = self.full_key(&last.key);
                    start.push(0);
                }
                _ => {
                    return Ok(ListResult {
                        items,
                        revision: read_at,
                        more,
                    })
                }
            }
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let mut kv = self.kv();
        let response = self.bounded(kv.get(self.full_key(key), None)).await?;
        response.kvs().first().map(|kv| self.to_kv(kv)).transpose()
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListResult, StoreError> {
        self.read_range(prefix, start_after, limit, None).await
    }

    async fn list_at(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Revision,
    ) -> Result<ListResult, StoreError> {
        self.read_range(prefix, start_after, limit, Some(revision))
            .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
        self.queue_write(key, WriteOp::Create(value)).await
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        self.queue_write(key, WriteOp::Update(value, expected))
            .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        self.queue_write(key, WriteOp::Delete(expected)).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let full_prefix = self.full_key(prefix);
        let options = WatchOptions::new()
            .with_range(prefix_end(&full_prefix))
            .with_start_revision(after.max(0) + 1)
            .with_prev_key();
        let mut client = self
            .client
            .watch_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        let stream = self
            .bounded(client.watch(non_empty(full_prefix), Some(options)))
            .await?;
        let state = WatchState {
            store: self.clone(),
            stream,
            pending: VecDeque::new(),
            after,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(
            state,
            |mut state| async move {
                let item = state.next().await?;
                Some((item, state))
            },
        )))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let mut kv = self.kv();
        let options = GetOptions::new().with_count_only();
        // Any key will do: only the header revision is used (and etcd rejects an empty key).
        let response = self
            .bounded(kv.get(self.full_key("/"), Some(options)))
            .await?;
        response
            .header()
            .map(|h| h.revision())
            .ok_or_else(|| StoreError::Internal {
                message: "etcd range without header".to_owned(),
            })
    }
}

/// Turns etcd watch responses into a flat stream of store events.
struct WatchState {
    store: EtcdStore,
    stream: etcd_client::WatchStream,
    pending: VecDeque<WatchEvent>,
    /// Start revision asked for (for the `Compacted` error).
    after: Revision,
    done: bool,
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let response = match self.stream.next().await {
                Some(Ok(response)) => response,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(map_err(e)));
                }
                None => {
                    self.done = true;
                    return Some(Err(StoreError::Unavailable {
                        message: "etcd closed the watch stream".to_owned(),
                    }));
                }
            };
            if response.compact_revision() != 0 {
                self.done = true;
                // etcd keeps the compaction revision itself, so the oldest start is one before.
                return Some(Err(StoreError::Compacted {
                    requested: self.after,
                    oldest: response.compact_revision() - 1,
                }));
            }
            if response.canceled() {
                self.done = true;
                return Some(Err(StoreError::Unavailable {
                    message: format!("etcd canceled the watch: {}", response.cancel_reason()),
                }));
            }
            for event in response.events() {
                match self.convert(event) {
                    Ok(event) => {
                        self.after = event.kv.mod_revision;
                        self.pending.push_back(event);
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
        }
    }

    fn convert(&self, event: &etcd_client::Event) -> Result<WatchEvent, StoreError> {
        let kv = event.kv().ok_or_else(|| StoreError::Internal {
            message: "etcd watch event without kv".to_owned(),
        })?;
        let kv = self.store.to_kv(kv)?;
        let prev = event.prev_kv().map(|p| self.store.to_kv(p)).transpose()?;
        Ok(match event.event_type() {
            EventType::Put => WatchEvent {
                kind: EventKind::Put,
                kv,
                prev,
            },
            EventType::Delete => {
                // etcd's delete event has only the key and the deletion revision; the last value
                // comes from prev_kv.
                let last = match &prev {
                    Some(p) => KeyValue {
                        mod_revision: kv.mod_revision,
                        ..p.clone()
                    },
                    None => kv,
                };
                WatchEvent {
                    kind: EventKind::Delete,
                    kv: last,
                    prev,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"/registry/"), b"/registry0".to_vec());
        assert_eq!(prefix_end(b"a\xff\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b""), vec![0]);
    }
}
