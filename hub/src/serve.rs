//! `kruise-hub serve`: wires the hub API, ring membership, the agent link, the cluster health
//! check, the UnitedDeployment controller and the health server together, and stops them on
//! SIGINT/SIGTERM.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kruise_apiserver::errors::ApiError;
use kruise_apiserver::local::{Gvr, LocalClient};
use kruise_apiserver::pki::Pki;
use kruise_apiserver::store::{EtcdStore, MemoryStore, Store};
use kruise_apiserver::ServerConfig;
use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cli::{ApiArgs, GrpcArgs, ServeArgs, ShardArgs, StoreArgs, TelemetryArgs};
use crate::health::HealthState;
use crate::link::LinkService;
use crate::metrics::HubMetrics;
use crate::registry::{HealthChecker, Registry, ENDPOINTS_CONFIGMAP, HUB_NAMESPACE};
use crate::shard::{FencedWriter, Membership, MembershipConfig, Ownership};
use crate::ud::UdController;

fn default_replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hub".into());
    format!("{host}-{}", std::process::id())
}

fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
        let _ = tx.send(true);
    });
    rx
}

/// Creates `kruise-hub-system` and publishes this replica's gRPC endpoint in the endpoints
/// ConfigMap, where `kruise-hub cluster add` finds it.
async fn publish_endpoint(
    client: &LocalClient,
    replica: &str,
    endpoint: &str,
) -> Result<(), ApiError> {
    let namespaces = Gvr::core("namespaces");
    match client
        .create(
            namespaces,
            json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": HUB_NAMESPACE}}),
        )
        .await
    {
        Ok(_) | Err(ApiError { code: 409, .. }) => {}
        Err(e) => return Err(e),
    }
    let configmaps = Gvr::core("configmaps");
    let created = client
        .create(
            configmaps,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ENDPOINTS_CONFIGMAP, "namespace": HUB_NAMESPACE},
                "data": {replica: endpoint}}),
        )
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(ApiError { code: 409, .. }) => client
            .update(
                configmaps,
                Some(HUB_NAMESPACE),
                ENDPOINTS_CONFIGMAP,
                false,
                |cm| {
                    let mut next = cm.clone();
                    if !next.get("data").is_some_and(Value::is_object) {
                        next["data"] = json!({});
                    }
                    next["data"][replica] = json!(endpoint);
                    Ok(next)
                },
            )
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    }
}

/// Runs one replica until SIGINT/SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let ServeArgs {
        store:
            StoreArgs {
                etcd_endpoints,
                etcd_prefix,
                state_dir,
            },
        api:
            ApiArgs {
                listen,
                pki_dir,
                extra_hosts,
                admin_token,
                kubeconfig_out,
            },
        grpc:
            GrpcArgs {
                grpc_listen,
                grpc_advertise,
                heartbeat_interval_seconds,
                heartbeat_timeout_seconds,
                stream_buffer,
            },
        shard:
            ShardArgs {
                replica_id,
                lease_ttl_seconds,
                vnodes,
            },
        telemetry: TelemetryArgs {
            health_listen,
            log: _,
        },
    } = args;
    let shutdown = shutdown_signal();
    let metrics = Arc::new(HubMetrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let health_listener = tokio::net::TcpListener::bind(health_listen)
        .await
        .with_context(|| format!("binding the health endpoint {health_listen}"))?;
    info!(addr = %health_listener.local_addr()?, "health endpoint listening");
    let health = crate::health::app(HealthState {
        metrics: metrics.clone(),
        ready: ready.clone(),
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(health_listener, health).await {
            warn!(error = %e, "health server stopped");
        }
    });

    let etcd = if etcd_endpoints.is_empty() {
        None
    } else {
        Some(
            EtcdStore::connect(&etcd_endpoints, "")
                .await
                .with_context(|| format!("connecting to etcd {etcd_endpoints:?}"))?,
        )
    };
    let store: Arc<dyn Store> = match &etcd {
        Some(etcd) => Arc::new(etcd.clone()),
        None => Arc::new(
            MemoryStore::open(state_dir.join("store"))
                .with_context(|| format!("opening the store under {}", state_dir.display()))?,
        ),
    };
    let pki_dir = pki_dir.unwrap_or_else(|| state_dir.join("pki"));
    let mut config = ServerConfig::new(listen, store.clone(), &pki_dir);
    config.cluster_name = "kruise-hub".into();
    config.extra_hosts = extra_hosts.clone();
    config.admin_token = admin_token;
    config.crds = kruise_api::crd::hub_crds()
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .context("serialising the hub CRDs")?;
    let api = kruise_apiserver::start(config)
        .await
        .context("starting the hub API")?;
    if let Some(path) = &kubeconfig_out {
        api.write_kubeconfig(path, "kruise-hub")?;
        info!(path = %path.display(), "wrote the hub kubeconfig");
    }
    let pki = Pki::load_or_create(&pki_dir, "kruise-hub", &extra_hosts)
        .context("loading the PKI for the agent link")?;

    let replica = replica_id.unwrap_or_else(default_replica_id);
    let grpc_listener = tokio::net::TcpListener::bind(grpc_listen)
        .await
        .with_context(|| format!("binding the agent link {grpc_listen}"))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let advertise = grpc_advertise.unwrap_or_else(|| format!("https://{grpc_addr}"));

    let client = api.client();
    let (ownership, writer, membership_task): (Ownership, FencedWriter, _) = match &etcd {
        Some(etcd) => {
            let membership = Arc::new(Membership::new(
                etcd.client().clone(),
                MembershipConfig {
                    id: replica.clone(),
                    prefix: etcd_prefix,
                    lease_ttl: Duration::from_secs(lease_ttl_seconds),
                    vnodes,
                    grpc_endpoint: advertise.clone(),
                },
                metrics.clone(),
            ));
            let task = tokio::spawn(membership.clone().run(shutdown.clone()));
            (
                membership.ownership(),
                FencedWriter::Etcd(membership.locks()),
                Some(task),
            )
        }
        None => {
            let all = Ownership::all();
            metrics.owned_shards.set(all.len() as i64);
            (all, FencedWriter::Solo(store.clone()), None)
        }
    };

    let registry = Registry::new(client.clone(), metrics.clone());
    let service = LinkService::new(
        registry,
        store.clone(),
        metrics.clone(),
        heartbeat_interval_seconds,
        stream_buffer,
    );
    let link = tokio::spawn({
        let (cert, key, shutdown) = (
            pki.serving_cert_pem.clone(),
            pki.serving_key_pem.clone(),
            shutdown.clone(),
        );
        async move { crate::link::serve(service, grpc_listener, &cert, &key, shutdown).await }
    });
    let ud_controller = Arc::new(UdController::new(
        store.clone(),
        writer.clone(),
        ownership.clone(),
        metrics.clone(),
    ));
    tokio::spawn(ud_controller.run(shutdown.clone()));
    tokio::spawn(
        HealthChecker {
            client: client.clone(),
            writer,
            ownership,
            timeout: Duration::from_secs(heartbeat_timeout_seconds),
            metrics: metrics.clone(),
        }
        .run(shutdown.clone()),
    );
    if let Err(e) = publish_endpoint(&client, &replica, &advertise).await {
        warn!(error = %e, "publishing the gRPC endpoint failed");
    }
    ready.store(true, Ordering::Relaxed);
    info!(replica, api = %api.url(), grpc = %advertise, "hub replica serving");

    let mut wait = shutdown.clone();
    while !*wait.borrow() {
        if wait.changed().await.is_err() {
            break;
        }
    }
    ready.store(false, Ordering::Relaxed);
    if let Some(task) = membership_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), link).await;
    api.shutdown().await;
    info!("hub replica stopped");
    Ok(())
}
