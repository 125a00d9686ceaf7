//! Watch streams: newline-delimited JSON events over a chunked response, with initial events,
//! resume from a resourceVersion, selector enter/leave, bookmarks, timeouts and the
//! `ERROR`-event form of "too old resource version".

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::filter::ListFilter;
use super::negotiate::Output;
use super::rest::Ctx;
use super::{objects, table};
use crate::errors::ApiError;
use crate::store::{EventKind, KeyValue, StoreError, WatchStream};

/// One encoded event line.
fn line(event_type: &str, object: Value) -> Bytes {
    let mut text = json!({"type": event_type, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn expired_event(message: &str) -> Bytes {
    line(
        "ERROR",
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": "Expired", "code": 410}),
    )
}

/// Stored objects parsed once for all watchers: every watch of a resource sees the same event, and
/// most of them (a node agent watching its own node's pods, say) only test it against a selector.
/// Keyed by key and revision, which name one stored value; the oldest entries go first.
struct ParsedCache {
    entries: HashMap<(String, i64), Arc<Value>>,
    order: VecDeque<(String, i64)>,
}

/// Parsed objects kept for the watchers behind the newest event.
const PARSED_CACHE_ENTRIES: usize = 4096;

static PARSED: LazyLock<Mutex<ParsedCache>> = LazyLock::new(|| {
    Mutex::new(ParsedCache {
        entries: HashMap::new(),
        order: VecDeque::new(),
    })
});

/// The stored JSON of `kv`, parsed (without the fields [`objects::decode`] adds).
fn parsed(kv: &KeyValue) -> Option<Arc<Value>> {
    let id = (kv.key.clone(), kv.mod_revision);
    if let Some(hit) = PARSED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entries
        .get(&id)
    {
        return Some(hit.clone());
    }
    let value: Arc<Value> = Arc::new(serde_json::from_slice(&kv.value).ok()?);
    let mut cache = PARSED.lock().unwrap_or_else(|e| e.into_inner());
    if cache.entries.insert(id.clone(), value.clone()).is_none() {
        cache.order.push_back(id);
        while cache.order.len() > PARSED_CACHE_ENTRIES {
            if let Some(old) = cache.order.pop_front() {
                cache.entries.remove(&old);
            }
        }
    }
    Some(value)
}

struct Encoder {
    ctx: Ctx,
    first_table: bool,
}

impl Encoder {
    fn object(&mut self, obj: Value) -> Value {
        match self.ctx.output {
            Output::Json => obj,
            Output::PartialMetadata => table::partial_metadata(&obj),
            Output::Table(include) => {
                let mut t = table::table(&self.ctx.desc, &[obj], include, None, chrono::Utc::now());
                if !self.first_table {
                    t["columnDefinitions"] = json!([]);
                }
                self.first_table = false;
                t
            }
        }
    }

    fn bookmark(&self, revision: i64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            json!({"kind": self.ctx.desc.kind, "apiVersion": self.ctx.desc.api_version(), "metadata": metadata}),
        )
    }
}

fn validate(ctx: &Ctx) -> Result<(), ApiError> {
    let invalid = |field: &str, msg: &str| {
        ApiError::invalid(
            "ListOptions",
            "meta.k8s.io",
            "",
            vec![crate::errors::Cause::new("FieldValueForbidden", field, msg)],
        )
    };
    let send_initial = ctx.query.non_empty("sendInitialEvents").is_some();
    match ctx.query.non_empty("resourceVersionMatch") {
        None if send_initial => {
            return Err(invalid("sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan"))
        }
        Some("NotOlderThan") if !send_initial => {
            return Err(invalid("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
        }
        Some("NotOlderThan") | None => {}
        Some(other) => {
            return Err(invalid("resourceVersionMatch", &format!("Unsupported value: {other:?}: supported values: \"NotOlderThan\"")))
        }
    }
    Ok(())
}

/// Serves `GET …?watch=true`.
pub async fn serve(ctx: Ctx) -> Result<Response, ApiError> {
    validate(&ctx)?;
    let filter = ListFilter::from_query(&ctx.query, &ctx.desc)?;
    let timeout = match ctx.query.int("timeoutSeconds")? {
        Some(secs) if secs > 0 => Duration::from_secs(secs as u64),
        _ => Duration::from_secs(1800 + rand::rng().random_range(0..1800)),
    };
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let rv_param = ctx.query.non_empty("resourceVersion").map(String::from);
    let explicit_initial = ctx.query.get("sendInitialEvents").map(|v| v == "true");
    let send_initial = explicit_initial.unwrap_or(matches!(rv_param.as_deref(), None | Some("0")));
    let mut initial = Vec::new();
    let start = if send_initial {
        let mut list_ctx = ctx.clone();
        list_ctx.query.set("limit", "");
        list_ctx.query.set("continue", "");
        let (items, revision, _) = super::rest::list_items(&list_ctx, &filter).await?;
        initial = items;
        revision
    } else {
        match rv_param.as_deref() {
            Some(rv) => rv
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?,
            None => 0,
        }
    };
    let prefix = ctx.desc.collection_prefix(ctx.namespace());
    let stream = ctx.state.store.watch(&prefix, start).await;
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let mut encoder = Encoder {
        ctx: ctx.clone(),
        first_table: true,
    };
    let interval = ctx.state.bookmark_interval;
    let metrics = ctx.state.metrics.clone();
    tokio::spawn(async move {
        metrics.watchers.inc();
        let stream = match stream {
            Ok(s) => s,
            Err(StoreError::Compacted { requested, oldest }) => {
                let _ = tx
                    .send(Ok(expired_event(&format!(
                        "too old resource version: {requested} ({oldest})"
                    ))))
                    .await;
                metrics.watchers.dec();
                return;
            }
            Err(e) => {
                let status =
                    ApiError::from_store(e, &encoder.ctx.desc.plural, &encoder.ctx.desc.group, "")
                        .status();
                let _ = tx.send(Ok(line("ERROR", status))).await;
                metrics.watchers.dec();
                return;
            }
        };
        for obj in initial {
            let object = encoder.object(obj);
            if tx.send(Ok(line("ADDED", object))).await.is_err() {
                metrics.watchers.dec();
                return;
            }
        }
        if bookmarks
            && explicit_initial == Some(true)
            && tx.send(Ok(encoder.bookmark(start, true))).await.is_err()
        {
            metrics.watchers.dec();
            return;
        }
        pump(
            stream,
            &tx,
            &mut encoder,
            &filter,
            start,
            bookmarks,
            interval,
            timeout,
        )
        .await;
        metrics.watchers.dec();
    });
    let body = Body::from_stream(ReceiverStream::new(rx));
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

#[allow(clippy::too_many_arguments)]
async fn pump(
    mut stream: WatchStream,
    tx: &mpsc::Sender<Result<Bytes, Infallible>>,
    encoder: &mut Encoder,
    filter: &ListFilter,
    start: i64,
    bookmarks: bool,
    interval: Duration,
    timeout: Duration,
) {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let mut last_revision = start;
    loop {
        // Biased, events before the ticker and the deadline: several objects can share one
        // revision (one etcd transaction), and the store stream only pauses once a revision is
        // complete, so bookmarks and the timeout never split a revision a client resumes from.
        tokio::select! {
            biased;
            _ = tx.closed() => return,
            event = stream.next() => {
                let event = match event {
                    None => return,
                    Some(Err(StoreError::Compacted { requested, oldest })) => {
                        let _ = tx.send(Ok(expired_event(&format!("too old resource version: {requested} ({oldest})")))).await;
                        return;
                    }
                    Some(Err(e)) => {
                        let status = ApiError::from_store(e, &encoder.ctx.desc.plural, &encoder.ctx.desc.group, "").status();
                        let _ = tx.send(Ok(line("ERROR", status))).await;
                        return;
                    }
                    Some(Ok(event)) => event,
                };
                last_revision = last_revision.max(event.kv.mod_revision);
                let Some(obj) = parsed(&event.kv) else { continue };
                let now_matches = filter.matches(&obj);
                let event_type = match event.kind {
                    EventKind::Delete => now_matches.then_some("DELETED"),
                    EventKind::Put => {
                        let before = event.prev.as_ref().map(|p| {
                            filter.is_empty() || parsed(p).is_some_and(|p| filter.matches(&p))
                        });
                        match (before, now_matches) {
                            (None, true) | (Some(false), true) => Some("ADDED"),
                            (Some(true), true) => Some("MODIFIED"),
                            (Some(true), false) => Some("DELETED"),
                            _ => None,
                        }
                    }
                };
                if let Some(event_type) = event_type {
                    let object = encoder.object(objects::decorate((*obj).clone(), &event.kv, &encoder.ctx.desc));
                    if tx.send(Ok(line(event_type, object))).await.is_err() {
                        return;
                    }
                }
            }
            _ = &mut deadline => return,
            _ = ticker.tick(), if bookmarks => {
                if tx.send(Ok(encoder.bookmark(last_revision, false))).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, revision: i64, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Bytes::from(value.to_string()),
            create_revision: 1,
            mod_revision: revision,
        }
    }

    #[test]
    fn watchers_share_one_parse_per_stored_value() {
        let a = kv("/registry/pods/ns/a", 7, json!({"metadata": {"name": "a"}}));
        let first = parsed(&a).expect("json");
        let second = parsed(&a).expect("json");
        assert!(Arc::ptr_eq(&first, &second));
        let newer = kv(
            "/registry/pods/ns/a",
            8,
            json!({"metadata": {"name": "a", "x": 1}}),
        );
        let third = parsed(&newer).expect("json");
        assert!(!Arc::ptr_eq(&first, &third));
        assert_eq!(third["metadata"]["x"], 1);
        let broken = KeyValue {
            value: Bytes::from_static(b"not json"),
            ..kv("/registry/pods/ns/b", 9, json!({}))
        };
        assert!(parsed(&broken).is_none());
    }

    #[test]
    fn the_cache_keeps_only_the_newest_entries() {
        for rev in 0..(PARSED_CACHE_ENTRIES as i64 + 10) {
            parsed(&kv(
                "/registry/bounded/x",
                1_000_000 + rev,
                json!({"r": rev}),
            ));
        }
        let len = PARSED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .len();
        assert!(len <= PARSED_CACHE_ENTRIES, "{len}");
    }
}
