//! Pull secrets (`kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg`) resolved into
//! CRI auth for one image's registry.

use base64::Engine;
use k8s_cri::v1::AuthConfig;
use serde_json::Value;

/// The registry host of an image reference, as Docker resolves it.
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

fn host_of(key: &str) -> &str {
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    key.split('/').next().unwrap_or(key)
}

fn matches_registry(key: &str, registry: &str) -> bool {
    let host = host_of(key);
    host == registry
        || (registry == "docker.io"
            && (host == "index.docker.io" || host == "registry-1.docker.io"))
}

/// Finds credentials for `image` in a decoded docker config (`{"auths": {...}}` or the legacy
/// bare map).
pub fn auth_for(image: &str, docker_config: &Value) -> Option<AuthConfig> {
    let registry = registry_of(image);
    let auths = docker_config
        .get("auths")
        .unwrap_or(docker_config)
        .as_object()?;
    let (key, entry) = auths.iter().find(|(k, _)| matches_registry(k, registry))?;
    let mut cfg = AuthConfig {
        server_address: host_of(key).to_string(),
        ..Default::default()
    };
    cfg.username = entry
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    cfg.password = entry
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    cfg.identity_token = entry
        .get("identitytoken")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
        cfg.auth = auth.to_string();
        if cfg.username.is_empty() {
            if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(auth) {
                if let Some((u, p)) = String::from_utf8_lossy(&decoded).split_once(':') {
                    cfg.username = u.to_string();
                    cfg.password = p.to_string();
                }
            }
        }
    }
    Some(cfg)
}

/// The docker config held by a Secret's data (already base64-decoded by the client).
pub fn docker_config_of(secret: &k8s_openapi::api::core::v1::Secret) -> Option<Value> {
    let data = secret.data.as_ref()?;
    let raw = data
        .get(".dockerconfigjson")
        .or_else(|| data.get(".dockercfg"))?;
    serde_json::from_slice(&raw.0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registries_follow_docker_rules() {
        assert_eq!(registry_of("nginx:1.25"), "docker.io");
        assert_eq!(registry_of("library/nginx"), "docker.io");
        assert_eq!(registry_of("example.com/app:v1"), "example.com");
        assert_eq!(registry_of("localhost:5000/app"), "localhost:5000");
    }

    #[test]
    fn credentials_are_found_by_registry() {
        let cfg = json!({"auths": {
            "https://example.com": {"auth": base64::engine::general_purpose::STANDARD.encode("bob:secret")},
            "https://index.docker.io/v1/": {"username": "alice", "password": "pw"}
        }});
        let a = auth_for("example.com/team/app:v1", &cfg).expect("example.com credentials");
        assert_eq!(
            (
                a.username.as_str(),
                a.password.as_str(),
                a.server_address.as_str()
            ),
            ("bob", "secret", "example.com")
        );
        let d = auth_for("nginx:1", &cfg).expect("docker hub credentials");
        assert_eq!((d.username.as_str(), d.password.as_str()), ("alice", "pw"));
        assert!(auth_for("quay.io/x/y", &cfg).is_none());
    }

    #[test]
    fn legacy_dockercfg_maps_work_too() {
        let cfg = json!({"example.com": {"username": "u", "password": "p"}});
        assert_eq!(
            auth_for("example.com/a", &cfg).map(|a| a.username),
            Some("u".to_string())
        );
    }
}
