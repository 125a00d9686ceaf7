//! Kubernetes pod-template defaults as Kruise's mutating webhooks apply them.
//!
//! The one deliberate difference from upstream Kubernetes: Kruise workloads default an empty
//! `imagePullPolicy` of app containers to `Always`, so in-place image updates always pull.

use super::set_if_empty;
use k8s_openapi::api::core::v1::{Container, PodSecurityContext, PodSpec, PodTemplateSpec, Probe};

/// Which `imagePullPolicy` an empty app-container field becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicyDefault {
    /// Always `Always` (Kruise workloads).
    Always,
    /// Kubernetes' rule: `Always` for `:latest` or untagged images, else `IfNotPresent`.
    Kubernetes,
}

/// Applies pod-spec defaults to a template (no-op when `spec` is absent).
pub fn default_pod_template(template: &mut PodTemplateSpec, pull: PullPolicyDefault) {
    if let Some(spec) = template.spec.as_mut() {
        default_pod_spec(spec, pull);
    }
}

/// Applies pod-spec defaults.
pub fn default_pod_spec(spec: &mut PodSpec, pull: PullPolicyDefault) {
    set_if_empty(&mut spec.restart_policy, "Always");
    set_if_empty(&mut spec.dns_policy, "ClusterFirst");
    set_if_empty(&mut spec.scheduler_name, "default-scheduler");
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.security_context
        .get_or_insert_with(PodSecurityContext::default);
    for c in spec.containers.iter_mut() {
        default_container(c, pull);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        default_container(c, PullPolicyDefault::Kubernetes);
    }
    for v in spec.volumes.iter_mut().flatten() {
        if let Some(cm) = v.config_map.as_mut() {
            cm.default_mode.get_or_insert(0o644);
        }
        if let Some(secret) = v.secret.as_mut() {
            secret.default_mode.get_or_insert(0o644);
        }
    }
}

/// Applies container defaults.
pub fn default_container(c: &mut Container, pull: PullPolicyDefault) {
    if c.image_pull_policy
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        let policy = match pull {
            PullPolicyDefault::Always => "Always",
            PullPolicyDefault::Kubernetes => {
                kubernetes_pull_policy(c.image.as_deref().unwrap_or_default())
            }
        };
        c.image_pull_policy = Some(policy.into());
    }
    set_if_empty(&mut c.termination_message_path, "/dev/termination-log");
    set_if_empty(&mut c.termination_message_policy, "File");
    for port in c.ports.iter_mut().flatten() {
        set_if_empty(&mut port.protocol, "TCP");
    }
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        default_probe(probe);
    }
    for env in c.env.iter_mut().flatten() {
        if let Some(field_ref) = env.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            set_if_empty(&mut field_ref.api_version, "v1");
        }
    }
}

fn default_probe(p: &mut Probe) {
    p.timeout_seconds.get_or_insert(1);
    p.period_seconds.get_or_insert(10);
    p.success_threshold.get_or_insert(1);
    p.failure_threshold.get_or_insert(3);
    if let Some(http) = p.http_get.as_mut() {
        set_if_empty(&mut http.path, "/");
        set_if_empty(&mut http.scheme, "HTTP");
    }
}

/// Kubernetes' default pull policy for an image reference.
pub fn kubernetes_pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last_segment.split_once(':') {
        _ if image.contains('@') => "IfNotPresent",
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_pull_policy_follows_tag() {
        assert_eq!(kubernetes_pull_policy("nginx"), "Always");
        assert_eq!(kubernetes_pull_policy("nginx:latest"), "Always");
        assert_eq!(kubernetes_pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(kubernetes_pull_policy("registry:5000/app"), "Always");
        assert_eq!(
            kubernetes_pull_policy("registry:5000/app:v1"),
            "IfNotPresent"
        );
        assert_eq!(kubernetes_pull_policy("app@sha256:abc"), "IfNotPresent");
    }
}
