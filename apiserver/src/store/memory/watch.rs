//! Watch streams of the memory store.
//!
//! A watch first yields the events replayed from the kept history (copied under the state lock at
//! registration), then live events pushed by writers through a bounded channel. Writers never
//! wait for a watcher: when a watcher's channel is full, the writer drops the watcher and records
//! the revision of the first event it could not take; the stream then yields what it already has
//! buffered followed by `StoreError::Compacted`, so the client relists instead of missing events.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use super::Shared;
use crate::store::{Revision, StoreError, WatchEvent};

/// Writer-side record of a registered watch.
pub(super) struct Watcher {
    pub(super) prefix: String,
    /// Events at or below this revision were already replayed (or are not wanted).
    pub(super) after: Revision,
    pub(super) tx: mpsc::Sender<WatchEvent>,
    pub(super) overflow: Arc<Mutex<Option<Revision>>>,
}

/// What a writer should do with a watcher after offering it an event.
pub(super) enum Offer {
    Keep,
    /// The receiver is gone; forget the watcher.
    Remove,
    /// The channel is full; the watcher was told and must be forgotten.
    Overflowed,
}

impl Watcher {
    /// Offers `event` without blocking.
    pub(super) fn offer(&self, event: &WatchEvent) -> Offer {
        if !event.kv.key.starts_with(&self.prefix) || event.kv.mod_revision <= self.after {
            return Offer::Keep;
        }
        match self.tx.try_send(event.clone()) {
            Ok(()) => Offer::Keep,
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Remove,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if let Ok(mut overflow) = self.overflow.lock() {
                    *overflow = Some(event.kv.mod_revision);
                }
                Offer::Overflowed
            }
        }
    }
}

/// The stream handed to a watch caller.
pub(super) struct MemoryWatch {
    pub(super) id: u64,
    pub(super) store: Weak<Shared>,
    pub(super) replay: VecDeque<WatchEvent>,
    pub(super) rx: mpsc::Receiver<WatchEvent>,
    pub(super) overflow: Arc<Mutex<Option<Revision>>>,
    /// Revision of the last event yielded (or the requested start).
    pub(super) last: Revision,
    pub(super) done: bool,
}

impl Stream for MemoryWatch {
    type Item = Result<WatchEvent, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(event) = self.replay.pop_front() {
            self.last = event.kv.mod_revision;
            return Poll::Ready(Some(Ok(event)));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(event)) => {
                self.last = event.kv.mod_revision;
                Poll::Ready(Some(Ok(event)))
            }
            Poll::Ready(None) => {
                self.done = true;
                let dropped_at = self.overflow.lock().ok().and_then(|o| *o);
                match dropped_at {
                    Some(oldest) => Poll::Ready(Some(Err(StoreError::Compacted {
                        requested: self.last,
                        oldest,
                    }))),
                    // The store itself was dropped.
                    None => Poll::Ready(None),
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for MemoryWatch {
    fn drop(&mut self) {
        if let Some(shared) = self.store.upgrade() {
            shared.remove_watcher(self.id);
        }
    }
}
