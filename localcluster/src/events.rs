//! Recording core/v1 Events the way kube-scheduler and kubelet do, so `kubectl describe pod`
//! reads like a real cluster.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Client;

/// Records Events for one component (`default-scheduler`, `kubelet`) and host.
#[derive(Clone)]
pub struct EventRecorder {
    client: Client,
    component: String,
    host: Option<String>,
}

impl EventRecorder {
    pub fn new(client: Client, component: impl Into<String>, host: Option<String>) -> Self {
        EventRecorder {
            client,
            component: component.into(),
            host,
        }
    }

    /// Same recorder for another host (kubelet events name their node).
    pub fn on_host(&self, host: &str) -> Self {
        EventRecorder {
            host: Some(host.to_string()),
            ..self.clone()
        }
    }

    /// Records an Event about `pod` in the background: the Event is stamped now and posted
    /// without holding up the caller. Failures are logged, never fatal: events are best effort.
    pub fn emit(&self, pod: &Pod, warning: bool, reason: &str, message: &str) {
        let (recorder, event) = (self.clone(), self.event(pod, warning, reason, message));
        tokio::spawn(async move { recorder.post(event).await });
    }

    /// Records an Event about `pod` and waits for the API server to store it.
    pub async fn pod_event(&self, pod: &Pod, warning: bool, reason: &str, message: &str) {
        self.post(self.event(pod, warning, reason, message)).await
    }

    async fn post(&self, event: Event) {
        let ns = event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        if let Err(err) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(reason = ?event.reason, %err, "recording event failed");
        }
    }

    fn event(&self, pod: &Pod, warning: bool, reason: &str, message: &str) -> Event {
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let now = Timestamp::now();
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                uid: pod.metadata.uid.clone(),
                resource_version: pod.metadata.resource_version.clone(),
                ..Default::default()
            },
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(if warning { "Warning" } else { "Normal" }.to_string()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: self.host.clone(),
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            count: Some(1),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_else(|| self.component.clone())),
            action: Some(reason.to_string()),
            ..Default::default()
        }
    }
}
