//! Registers the webhook configurations (`clientConfig.url` + caBundle) built from the table.

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::ByteString;
use kube::api::PostParams;
use kube::{Api, Client};

use super::{HookType, HANDLERS};

/// Name of the MutatingWebhookConfiguration.
pub const MUTATING_NAME: &str = "kruise-mutating-webhook-configuration";
/// Name of the ValidatingWebhookConfiguration.
pub const VALIDATING_NAME: &str = "kruise-validating-webhook-configuration";

fn client_config(base_url: &str, path: &str, ca: &[u8]) -> WebhookClientConfig {
    WebhookClientConfig {
        url: Some(format!("{base_url}{path}")),
        ca_bundle: Some(ByteString(ca.to_vec())),
        service: None,
    }
}

fn rules(h: &super::Handler) -> Vec<RuleWithOperations> {
    vec![RuleWithOperations {
        api_groups: Some(vec![h.group.to_string()]),
        api_versions: Some(h.versions.iter().map(|v| v.to_string()).collect()),
        resources: Some(vec![h.resource.to_string()]),
        operations: Some(h.operations.iter().map(|o| o.to_string()).collect()),
        scope: None,
    }]
}

fn object_selector(h: &super::Handler) -> Option<LabelSelector> {
    h.object_label.map(|key| LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: key.to_string(),
            operator: "Exists".into(),
            values: None,
        }]),
        match_labels: None,
    })
}

fn namespace_selector(h: &super::Handler) -> Option<LabelSelector> {
    (h.resource == "pods").then(|| LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "control-plane".into(),
            operator: "DoesNotExist".into(),
            values: None,
        }]),
        match_labels: None,
    })
}

/// The two configurations for a server reachable at `base_url` (`https://host:port`).
pub fn configurations(
    base_url: &str,
    ca_pem: &[u8],
) -> (MutatingWebhookConfiguration, ValidatingWebhookConfiguration) {
    let mutating = HANDLERS
        .iter()
        .filter(|h| h.hook_type == HookType::Mutating)
        .map(|h| MutatingWebhook {
            name: h.name.to_string(),
            client_config: client_config(base_url, h.path, ca_pem),
            rules: Some(rules(h)),
            failure_policy: Some(h.failure_policy.to_string()),
            side_effects: "None".into(),
            admission_review_versions: vec!["v1".into()],
            object_selector: object_selector(h),
            namespace_selector: namespace_selector(h),
            timeout_seconds: Some(10),
            ..Default::default()
        })
        .collect();
    let validating = HANDLERS
        .iter()
        .filter(|h| h.hook_type == HookType::Validating)
        .map(|h| ValidatingWebhook {
            name: h.name.to_string(),
            client_config: client_config(base_url, h.path, ca_pem),
            rules: Some(rules(h)),
            failure_policy: Some(h.failure_policy.to_string()),
            side_effects: "None".into(),
            admission_review_versions: vec!["v1".into()],
            object_selector: object_selector(h),
            namespace_selector: namespace_selector(h),
            timeout_seconds: Some(10),
            ..Default::default()
        })
        .collect();
    (
        MutatingWebhookConfiguration {
            metadata: ObjectMeta {
                name: Some(MUTATING_NAME.into()),
                ..Default::default()
            },
            webhooks: Some(mutating),
        },
        ValidatingWebhookConfiguration {
            metadata: ObjectMeta {
                name: Some(VALIDATING_NAME.into()),
                ..Default::default()
            },
            webhooks: Some(validating),
        },
    )
}

async fn upsert<K>(api: &Api<K>, name: &str, mut obj: K) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await? {
        Some(existing) => {
            obj.meta_mut().resource_version = existing.meta().resource_version.clone();
            api.replace(name, &PostParams::default(), &obj).await?;
        }
        None => {
            api.create(&PostParams::default(), &obj).await?;
        }
    }
    Ok(())
}

/// Creates or replaces both configurations.
pub async fn register(client: &Client, base_url: &str, ca_pem: &[u8]) -> Result<(), kube::Error> {
    let (m, v) = configurations(base_url, ca_pem);
    upsert(
        &Api::<MutatingWebhookConfiguration>::all(client.clone()),
        MUTATING_NAME,
        m,
    )
    .await?;
    upsert(
        &Api::<ValidatingWebhookConfiguration>::all(client.clone()),
        VALIDATING_NAME,
        v,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_come_from_the_table() {
        let (m, v) = configurations("https://127.0.0.1:9443", b"CA");
        let m = m.webhooks.unwrap();
        let v = v.webhooks.unwrap();
        assert_eq!(m.len() + v.len(), HANDLERS.len());
        let pod = m.iter().find(|w| w.name == "mpod.kb.io").unwrap();
        assert_eq!(
            pod.client_config.url.as_deref(),
            Some("https://127.0.0.1:9443/mutate-pod")
        );
        assert_eq!(pod.failure_policy.as_deref(), Some("Ignore"));
        assert!(pod.object_selector.is_none());
        let skip = &pod
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_expressions
            .as_ref()
            .unwrap()[0];
        assert_eq!(
            (skip.key.as_str(), skip.operator.as_str()),
            ("control-plane", "DoesNotExist")
        );
        let vc = v.iter().find(|w| w.name == "vcloneset.kb.io").unwrap();
        assert_eq!(vc.client_config.ca_bundle.as_ref().unwrap().0, b"CA");
        assert_eq!(
            vc.rules.as_ref().unwrap()[0].operations.as_ref().unwrap(),
            &["CREATE", "UPDATE", "DELETE"]
        );
    }
}
