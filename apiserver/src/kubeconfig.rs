//! Writing kubeconfig files that kubectl and kube-rs can use on their own.

use base64::Engine;
use serde_json::json;

/// Renders a kubeconfig (YAML) for one cluster, user (bearer token) and context, all named
/// `cluster_name`.
pub fn render(cluster_name: &str, server_url: &str, ca_pem: &str, token: Option<&str>) -> String {
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let user = match token {
        Some(token) => json!({"token": token}),
        None => json!({}),
    };
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server_url, "certificate-authority-data": ca_data}}],
        "users": [{"name": format!("{cluster_name}-admin"), "user": user}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": format!("{cluster_name}-admin"), "namespace": "default"}}],
        "current-context": cluster_name,
        "preferences": {},
    });
    serde_yaml::to_string(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_has_context_and_token() {
        let text = render("c1", "https://127.0.0.1:6443", "PEM", Some("tok"));
        let parsed: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
        assert_eq!(parsed["current-context"], serde_yaml::Value::from("c1"));
        assert_eq!(
            parsed["users"][0]["user"]["token"],
            serde_yaml::Value::from("tok")
        );
        assert_eq!(
            parsed["clusters"][0]["cluster"]["server"],
            serde_yaml::Value::from("https://127.0.0.1:6443")
        );
    }
}
