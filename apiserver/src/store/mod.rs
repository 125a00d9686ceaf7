//! Storage for API objects: a revisioned key-value store with watch, behind one trait.
//!
//! Keys look like `/registry/{group}/{resource}/{namespace}/{name}` (`core` for the empty group,
//! no namespace segment for cluster-scoped resources). Values are the objects' JSON. Every write
//! gets a global revision newer than all before it, which the API layer exposes as
//! `metadata.resourceVersion` (the memory store gives each write its own; the etcd store's
//! concurrent writes committed in one transaction share one).

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub mod etcd;
pub mod etcd_process;
pub mod memory;

pub use etcd::{EtcdStore, WriteBatchStats, WriteBatching};
pub use memory::{MemoryStore, MemoryStoreConfig, PersistError};

/// A global, monotonically increasing store revision (etcd's `mod_revision`). Several writes may
/// share one revision (the etcd store commits concurrent writes in one transaction); their watch
/// events are then delivered together, and a watch "after" that revision skips all of them.
pub type Revision = i64;

/// One stored value with its revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision at which the key was (last) created.
    pub create_revision: Revision,
    /// Revision of the last write to the key; for a deletion event, the revision of the delete.
    pub mod_revision: Revision,
}

/// Result of a (possibly paged) list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    /// Items in key order.
    pub items: Vec<KeyValue>,
    /// The store revision the list was read at.
    pub revision: Revision,
    /// True when more keys follow the last returned item.
    pub more: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change seen by a watch, in revision order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    /// The new value (Put), or the last value before deletion with `mod_revision` set to the
    /// revision of the delete (Delete).
    pub kv: KeyValue,
    /// The value before this event, if the key existed.
    pub prev: Option<KeyValue>,
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("key {key} not found")]
    NotFound { key: String },
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    /// The key's mod revision is not the expected one (optimistic concurrency).
    #[error("key {key} was modified: expected revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    /// The requested revision is no longer available (compacted or outside the kept history).
    #[error("too old resource version: {requested} ({oldest})")]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },
    #[error("store unavailable: {message}")]
    Unavailable { message: String },
    #[error("store internal error: {message}")]
    Internal { message: String },
}

impl StoreError {
    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unavailable { .. } => true,
            StoreError::NotFound { .. }
            | StoreError::AlreadyExists { .. }
            | StoreError::Conflict { .. }
            | StoreError::Compacted { .. }
            | StoreError::Internal { .. } => false,
        }
    }

    /// A short, closed label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "not_found",
            StoreError::AlreadyExists { .. } => "already_exists",
            StoreError::Conflict { .. } => "conflict",
            StoreError::Compacted { .. } => "compacted",
            StoreError::Unavailable { .. } => "unavailable",
            StoreError::Internal { .. } => "internal",
        }
    }
}

/// The storage contract shared by the memory and etcd backends.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The latest value of `key`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Keys under `prefix` in key order, starting strictly after `start_after`, at most `limit`
    /// items (`None` = all). The result carries the revision it was read at.
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListResult, StoreError>;

    /// [`Store::list`] as of the earlier `revision` (the continuation of a paged list read at
    /// that revision): keys, values and `more` as they were then; the result's revision is
    /// `revision`. `Compacted` once that revision is no longer kept (etcd: compacted; memory
    /// store: older than its history window); a revision the store has not reached is `Internal`.
    async fn list_at(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Revision,
    ) -> Result<ListResult, StoreError>;

    /// Creates `key`; fails with `AlreadyExists` if it is present.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError>;

    /// Replaces `key` if its mod revision is `expected`; `Conflict` otherwise, `NotFound` if absent.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, StoreError>;

    /// Deletes `key` (only if its mod revision is `expected`, when given). Returns the last value
    /// with `mod_revision` set to the revision of the delete.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError>;

    /// Every change under `prefix` with a revision greater than `after`, in revision order, then
    /// live changes. A revision older than the kept history yields `Compacted` as the first item.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision, StoreError>;
}
