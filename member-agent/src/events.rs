//! Kubernetes Events about workloads, posted as core/v1 Events (what `kubectl describe` reads),
//! the way controller-runtime's recorder writes them for upstream's controllers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::Semaphore;

/// Event type `Normal`.
pub const NORMAL: &str = "Normal";
/// Event type `Warning`.
pub const WARNING: &str = "Warning";

/// Events posted at once; more wait, so a burst of pod writes cannot flood the API server.
const IN_FLIGHT: usize = 16;

/// Posts Events for one controller (`source.component`, e.g. `cloneset-controller`).
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    seq: Arc<AtomicU64>,
    in_flight: Arc<Semaphore>,
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
        }
    }

    /// Records an Event about `obj` in the background. Events are best effort: a failure is
    /// logged at debug level and never reaches the caller.
    pub fn publish<K>(&self, obj: &K, type_: &str, reason: &str, message: String)
    where
        K: Resource<DynamicType = ()> + ResourceExt,
    {
        let event = self.event(reference(obj), type_, reason, message, Timestamp::now());
        let recorder = self.clone();
        tokio::spawn(async move { recorder.post(event).await });
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
            a.source.and_then(|s| s.component).as_deref(),
            Some("cloneset-controller")
        );
    }
}
