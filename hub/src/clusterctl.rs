//! `kruise-hub cluster add | rotate-token | revoke`: the cluster registry from the command line,
//! through the hub API (any kubeconfig with access to it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::ByteString;
use kruise_api::federation::v1alpha1::managedcluster::{REGION_LABEL, ZONE_LABEL};
use kruise_api::federation::v1alpha1::ManagedCluster;
use kruise_proto::JoinFile;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::Kubeconfig;
use kube::{Api, Client, Config};

use crate::cli::{ClusterAction, ClusterCommand};
use crate::registry::{new_token, token_secret_name, ENDPOINTS_CONFIGMAP, HUB_NAMESPACE};

fn kubeconfig_path(explicit: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.clone());
    }
    let home = std::env::var_os("HOME").context("no --kubeconfig, KUBECONFIG or HOME")?;
    Ok(Path::new(&home).join(".kube/config"))
}

/// Parses `--labels`: `key=value` pairs; `region` and `zone` stand for the topology labels.
pub fn parse_labels(labels: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for label in labels.iter().filter(|l| !l.is_empty()) {
        let Some((key, value)) = label.split_once('=') else {
            bail!("label {label:?} is not key=value");
        };
        let key = match key.trim() {
            "region" => REGION_LABEL.to_string(),
            "zone" => ZONE_LABEL.to_string(),
            "" => bail!("label {label:?} has an empty key"),
            other => other.to_string(),
        };
        out.insert(key, value.trim().to_string());
    }
    Ok(out)
}

struct Hub {
    client: Client,
    ca_pem: String,
}

async fn connect(path: &Path) -> anyhow::Result<Hub> {
    use base64::Engine as _;
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let ca_pem = kubeconfig
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .context("the kubeconfig's cluster has no certificate-authority-data")?;
    let ca_pem = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(ca_pem.trim())
            .context("decoding certificate-authority-data")?,
    )
    .context("certificate-authority-data is not PEM")?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("loading the kubeconfig")?;
    let client = Client::try_from(config).context("building the hub client")?;
    Ok(Hub { client, ca_pem })
}

impl Hub {
    async fn ensure_namespace(&self) -> anyhow::Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(HUB_NAMESPACE.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(e).context("creating the hub namespace"),
        }
    }

    async fn endpoints(&self, explicit: &[String]) -> anyhow::Result<Vec<String>> {
        if !explicit.is_empty() {
            return Ok(explicit.to_vec());
        }
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), HUB_NAMESPACE);
        let cm = api
            .get(ENDPOINTS_CONFIGMAP)
            .await
            .context("reading the published hub gRPC endpoints (or pass --grpc-endpoint)")?;
        let mut endpoints: Vec<String> = cm.data.unwrap_or_default().into_values().collect();
        endpoints.sort();
        endpoints.dedup();
        if endpoints.is_empty() {
            bail!("no hub replica published a gRPC endpoint; pass --grpc-endpoint");
        }
        Ok(endpoints)
    }

    /// Creates or replaces the cluster's token Secret.
    async fn store_token(&self, cluster: &str, token: &str) -> anyhow::Result<()> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), HUB_NAMESPACE);
        let name = token_secret_name(cluster);
        let mut secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(HUB_NAMESPACE.into()),
                labels: Some(BTreeMap::from([(
                    "federation.kruise.io/cluster".to_string(),
                    cluster.to_string(),
                )])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                "token".to_string(),
                ByteString(token.as_bytes().to_vec()),
            )])),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let current = api.get(&name).await.context("reading the token Secret")?;
                secret.metadata.resource_version = current.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &secret)
                    .await
                    .context("replacing the token Secret")
                    .map(|_| ())
            }
            Err(e) => Err(e).context("creating the token Secret"),
        }
    }

    async fn write_join_file(
        &self,
        cluster: &str,
        token: String,
        endpoints: &[String],
        path: &Path,
    ) -> anyhow::Result<()> {
        let file = JoinFile {
            cluster: cluster.to_string(),
            endpoints: self.endpoints(endpoints).await?,
            ca_pem: self.ca_pem.clone(),
            token,
            server_name: None,
        };
        file.write(path)?;
        Ok(())
    }
}

/// Runs a cluster subcommand.
pub async fn run(command: ClusterCommand) -> anyhow::Result<()> {
    let hub = connect(&kubeconfig_path(&command.client.kubeconfig)?).await?;
    match command.action {
        ClusterAction::Add {
            name,
            labels,
            join_file,
            grpc_endpoint,
        } => {
            let labels = parse_labels(&labels)?;
            hub.ensure_namespace().await?;
            let clusters: Api<ManagedCluster> = Api::all(hub.client.clone());
            let mut cluster = ManagedCluster::new(&name, Default::default());
            cluster.metadata.labels = Some(labels);
            match clusters.create(&PostParams::default(), &cluster).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    bail!("cluster {name} already exists (use rotate-token for a new join file)")
                }
                Err(e) => return Err(e).context("creating the ManagedCluster"),
            }
            let token = new_token(&name);
            hub.store_token(&name, &token).await?;
            hub.write_join_file(&name, token, &grpc_endpoint, &join_file)
                .await?;
            println!("cluster {name} added; join file {}", join_file.display());
        }
        ClusterAction::RotateToken {
            name,
            join_file,
            grpc_endpoint,
        } => {
            let clusters: Api<ManagedCluster> = Api::all(hub.client.clone());
            clusters
                .get(&name)
                .await
                .with_context(|| format!("cluster {name}"))?;
            let token = new_token(&name);
            hub.store_token(&name, &token).await?;
            hub.write_join_file(&name, token, &grpc_endpoint, &join_file)
                .await?;
            println!(
                "cluster {name}: token rotated; join file {}",
                join_file.display()
            );
        }
        ClusterAction::Revoke { name } => {
            let api: Api<Secret> = Api::namespaced(hub.client.clone(), HUB_NAMESPACE);
            match api
                .delete(&token_secret_name(&name), &DeleteParams::default())
                .await
            {
                Ok(_) => println!("cluster {name}: token revoked"),
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    bail!("cluster {name} has no token to revoke")
                }
                Err(e) => return Err(e).context("deleting the token Secret"),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_expand_topology_shorthands() {
        let labels = parse_labels(&["region=r1".into(), "tier=web".into()]).expect("valid");
        assert_eq!(labels.get(REGION_LABEL).map(String::as_str), Some("r1"));
        assert_eq!(labels.get("tier").map(String::as_str), Some("web"));
        assert!(parse_labels(&["novalue".into()]).is_err());
        assert!(parse_labels(&["=x".into()]).is_err());
    }
}
