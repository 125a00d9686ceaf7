//! Kubernetes Events about workloads, posted as core/v1 Events (what `kubectl describe` reads),
//! the way controller-runtime's recorder writes them for upstream's controllers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::Semaphore;

/// Event type `Normal`.
pub const NORMAL: &str = "Normal";
/// Event type `Warning`.
pub const WARNING: &str = "Warning";

/// Events posted at once; more wait, so a burst of pod writes cannot flood the API server.
const IN_FLIGHT: usize = 16;
/// A repeat of the same event within this window bumps `count` on the first one, as client-go's
/// event correlator does, instead of creating another.
const AGGREGATE_WINDOW: Duration = Duration::from_secs(600);
/// Remembered events; the memory is dropped when it grows past this.
const REMEMBERED: usize = 4096;

/// Identity of a repeatable event: involved object uid, type, reason, message.
type EventKey = (String, String, String, String);

/// The event first posted for a key, and how often it happened since.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    namespace: String,
    count: i32,
    since: Instant,
}

/// Posts Events for one controller (`source.component`, e.g. `cloneset-controller`).
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    seq: Arc<AtomicU64>,
    in_flight: Arc<Semaphore>,
    seen: Arc<Mutex<HashMap<EventKey, Seen>>>,
}

/// The reference an Event names as its `involvedObject`.
pub fn reference<K>(obj: &K) -> ObjectReference
where
    K: Resource<DynamicType = ()>,
{
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: obj.meta().name.clone(),
        namespace: obj.meta().namespace.clone(),
        uid: obj.meta().uid.clone(),
        resource_version: obj.meta().resource_version.clone(),
        field_path: None,
    }
}

impl Recorder {
    /// A recorder posting as `component`.
    pub fn new(client: Client, component: impl Into<String>) -> Self {
        Recorder {
            client,
            component: component.into(),
            seq: Arc::new(AtomicU64::new(0)),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Records an Event about `obj` in the background. A repeat within ten minutes increments the
    /// first event's `count` and `lastTimestamp` instead. Events are best effort: a failure is
    /// logged at debug level and never reaches the caller.
    pub fn publish<K>(&self, obj: &K, type_: &str, reason: &str, message: String)
    where
        K: Resource<DynamicType = ()> + ResourceExt,
    {
        let now = Timestamp::now();
        let event = self.event(reference(obj), type_, reason, message, now);
        let repeat = self.remember(&event);
        let recorder = self.clone();
        tokio::spawn(async move {
            match repeat {
                Some(seen) => recorder.bump(seen, now).await,
                None => recorder.post(event).await,
            }
        });
    }

    /// Notes `event`; returns the earlier event to bump when it repeats one.
    fn remember(&self, event: &Event) -> Option<Seen> {
        let key: EventKey = (
            event.involved_object.uid.clone().unwrap_or_default(),
            event.type_.clone().unwrap_or_default(),
            event.reason.clone().unwrap_or_default(),
            event.message.clone().unwrap_or_default(),
        );
        let Ok(mut seen) = self.seen.lock() else {
            return None;
        };
        if let Some(s) = seen.get_mut(&key) {
            if s.since.elapsed() < AGGREGATE_WINDOW {
                s.count += 1;
                return Some(s.clone());
            }
        }
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(
            key,
            Seen {
                name: event.metadata.name.clone().unwrap_or_default(),
                namespace: event.metadata.namespace.clone().unwrap_or_default(),
                count: 1,
                since: Instant::now(),
            },
        );
        None
    }

    async fn bump(&self, seen: Seen, now: Timestamp) {
        let Ok(_permit) = self.in_flight.acquire().await else {
            return;
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &seen.namespace);
        let patch = serde_json::json!({"count": seen.count, "lastTimestamp": Time(now)});
        let res = api
            .patch(&seen.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        if let Err(err) = res {
            tracing::debug!(event = %seen.name, %err, "updating event count failed");
        }
    }

    async fn post(&self, event: Event) {
        let Ok(_permit) = self.in_flight.acquire().await else {
            return;
        };
        let ns = event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        if let Err(err) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(reason = ?event.reason, %err, "recording event failed");
        }
    }

    /// The Event object for `involved`, named `<object>.<unique hex>` as client-go names them.
    pub fn event(
        &self,
        involved: ObjectReference,
        type_: &str,
        reason: &str,
        message: String,
        now: Timestamp,
    ) -> Event {
        let ns = involved
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = involved.name.clone().unwrap_or_default();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let unique = (now.as_nanosecond() as u128).wrapping_add(u128::from(seq));
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{unique:x}")),
                namespace: Some(ns),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason.to_string()),
            message: Some(message),
            type_: Some(type_.to_string()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            count: Some(1),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.component.clone()),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kruise_api::apps::v1alpha1::cloneset::CloneSet;

    #[tokio::test]
    async fn events_name_the_cloneset_and_are_unique() {
        let cs: CloneSet = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
            "metadata": {"name": "demo", "namespace": "ns1", "uid": "u-1"},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap();
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let r = Recorder::new(client, "cloneset-controller");
        let now = Timestamp::UNIX_EPOCH;
        let a = r.event(reference(&cs), NORMAL, "SuccessfulCreate", "m".into(), now);
        let b = r.event(reference(&cs), NORMAL, "SuccessfulCreate", "m".into(), now);
        assert_ne!(a.metadata.name, b.metadata.name);
        assert!(a.metadata.name.as_deref().unwrap().starts_with("demo."));
        assert_eq!(a.metadata.namespace.as_deref(), Some("ns1"));
        let io = &a.involved_object;
        assert_eq!(
            (
                io.api_version.as_deref(),
                io.kind.as_deref(),
                io.uid.as_deref()
            ),
            (
                Some("apps.kruise.io/v1alpha1"),
                Some("CloneSet"),
                Some("u-1")
            )
        );
        assert_eq!(
            a.source.as_ref().and_then(|s| s.component.as_deref()),
            Some("cloneset-controller")
        );
        // repeats are aggregated onto the first event
        assert!(r.remember(&a).is_none());
        let again = r.remember(&b).expect("a repeat");
        assert_eq!(
            (again.name.as_str(), again.count),
            (a.metadata.name.as_deref().unwrap(), 2)
        );
        assert_eq!(r.remember(&b).map(|s| s.count), Some(3));
        let other = r.event(reference(&cs), WARNING, "FailedDelete", "m".into(), now);
        assert!(r.remember(&other).is_none());
    }
}
