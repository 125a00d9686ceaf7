//! The `kruise-agent` binary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use kruise_agent::cli::{Args, ClientArgs, ControllerArgs, LeaderArgs, TelemetryArgs, WebhookArgs};
use kruise_agent::leader::{self, LeaseConfig};
use kruise_agent::metrics::Metrics;
use kruise_agent::telemetry::{self, Telemetry};
use kruise_agent::webhook;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::{Api, Client, Config};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tracing::{error, info, warn};

async fn client(args: &ClientArgs) -> anyhow::Result<Client> {
    let config = match &args.kubeconfig {
        Some(path) if !path.as_os_str().is_empty() => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .context("loading kubeconfig")?
        }
        _ => Config::infer()
            .await
            .context("inferring the cluster config")?,
    };
    Client::try_from(config).context("building the client")
}

fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        let _ = tx.send(true);
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        let _ = tx.send(true);
    });
    rx
}

async fn wait_shutdown(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

struct WebhookHandle {
    base_url: String,
    ca_pem: String,
}

async fn start_webhook(
    args: &WebhookArgs,
    client: &Client,
    gates: kruise_agent::gates::FeatureGates,
    metrics: Arc<Metrics>,
) -> anyhow::Result<WebhookHandle> {
    let cert = webhook::cert::generate(&args.webhook_host)?;
    let tls = webhook::cert::server_config(&cert)?;
    let (listener, local) = webhook::bind(args.webhook_addr).await?;
    let (pods, writer) = reflector::store::<Pod>();
    let stream = reflector::reflector(
        writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    tokio::spawn(async move {
        use futures::StreamExt;
        stream.for_each(|_| futures::future::ready(())).await;
    });
    let state = webhook::State {
        gates,
        pods: Some(pods),
        metrics: Some(metrics),
    };
    tokio::spawn(webhook::serve_tls(listener, tls, webhook::app(state)));
    let host = if args.webhook_host.contains(':') {
        format!("[{}]", args.webhook_host)
    } else {
        args.webhook_host.clone()
    };
    let base_url = format!("https://{host}:{}", local.port());
    info!(addr = %local, url = %base_url, "webhook server listening");
    Ok(WebhookHandle {
        base_url,
        ca_pem: cert.ca_pem,
    })
}

async fn run_controllers(
    client: Client,
    args: &ControllerArgs,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) {
    let mut tasks = Vec::new();
    if args.enabled("cloneset") {
        let config = kruise_agent::cloneset::RunConfig {
            workers: args.workers.max(1),
            write_timeout: Duration::from_millis(args.write_timeout_ms.max(1)),
            expectation_timeout: Duration::from_secs(args.expectation_timeout_seconds),
        };
        info!("starting the cloneset controller");
        tasks.push(tokio::spawn(kruise_agent::cloneset::run(
            client.clone(),
            args.feature_gates.clone(),
            metrics.clone(),
            config,
            wait_shutdown(shutdown.clone()),
        )));
    }
    kruise_agent::imagepulljob::spawn_enabled(&client, args, &shutdown, &mut tasks);
    if args.enabled("podreadiness") {
        info!("starting the podreadiness controller");
        let skip: &'static [&'static str] = if args.enabled("cloneset") {
            &["CloneSet"]
        } else {
            &[]
        };
        tasks.push(tokio::spawn(kruise_agent::podreadiness::run(
            client.clone(),
            Duration::from_millis(args.write_timeout_ms.max(1)),
            skip,
            wait_shutdown(shutdown.clone()),
        )));
    }
    if args.enabled("statefulset") {
        let config = kruise_agent::statefulset::RunConfig {
            workers: args.workers.max(1),
            write_timeout: Duration::from_millis(args.write_timeout_ms.max(1)),
            expectation_timeout: Duration::from_secs(args.expectation_timeout_seconds),
        };
        info!("starting the statefulset controller");
        tasks.push(tokio::spawn(kruise_agent::statefulset::run(
            client.clone(),
            args.feature_gates.clone(),
            metrics.clone(),
            config,
            wait_shutdown(shutdown.clone()),
        )));
    }
    for t in tasks {
        if let Err(e) = t.await {
            error!(error = %e, "controller task failed");
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let Args {
        client: client_args,
        controllers,
        leader: leader_args,
        webhook: webhook_args,
        telemetry: TelemetryArgs { metrics_addr, log },
    } = args;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&log).unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(false)
        .init();
    controllers.check()?;
    let client = client(&client_args).await?;

    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    let ready = Arc::new(AtomicBool::new(false));
    let tele = Telemetry {
        registry: Arc::new(registry),
        ready: ready.clone(),
    };
    let listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .with_context(|| format!("binding {metrics_addr}"))?;
    info!(addr = %listener.local_addr()?, "metrics and health listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, telemetry::app(tele)).await {
            error!(error = %e, "metrics server");
        }
    });

    let hook = if webhook_args.disable_webhook_server {
        None
    } else {
        Some(
            start_webhook(
                &webhook_args,
                &client,
                controllers.feature_gates.clone(),
                metrics.clone(),
            )
            .await?,
        )
    };
    ready.store(true, Ordering::SeqCst);
    let shutdown = shutdown_signal();

    let LeaderArgs {
        leader_elect,
        leader_election_namespace,
        leader_election_id,
        identity,
        lease_duration_seconds,
        renew_deadline_seconds,
        retry_period_ms,
    } = leader_args;
    let lease = LeaseConfig {
        namespace: leader_election_namespace,
        name: leader_election_id,
        identity: identity.unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "kruise-agent".into());
            format!("{host}_{}", std::process::id())
        }),
        lease_duration: Duration::from_secs(lease_duration_seconds.max(1)),
        renew_deadline: Duration::from_secs(renew_deadline_seconds.max(1)),
        retry_period: Duration::from_millis(retry_period_ms.max(100)),
    };
    if leader_elect {
        tokio::select! {
            _ = leader::acquire(&client, &lease) => {}
            _ = wait_shutdown(shutdown.clone()) => return Ok(()),
        }
        metrics.leader.set(1);
    }
    if let (Some(h), false) = (&hook, webhook_args.disable_webhook_registration) {
        match webhook::register::register(&client, &h.base_url, h.ca_pem.as_bytes()).await {
            Ok(()) => info!(url = %h.base_url, "registered webhook configurations"),
            Err(e) => warn!(error = %e, "registering webhook configurations"),
        }
    }
    let hub_link = client_args.hub_join_file.clone().map(|join_file| {
        let config = kruise_agent::hublink::HubLinkConfig::new(join_file);
        let (link_client, stop) = (client.clone(), wait_shutdown(shutdown.clone()));
        tokio::spawn(async move {
            if let Err(e) = kruise_agent::hublink::run(link_client, config, stop).await {
                error!(error = %e, "hub link stopped");
            }
        })
    });
    let controllers_done = run_controllers(
        client.clone(),
        &controllers,
        metrics.clone(),
        shutdown.clone(),
    );
    if leader_elect {
        tokio::select! {
            _ = controllers_done => {}
            lost = leader::hold(&client, &lease) => {
                metrics.leader.set(0);
                return Err(lost.into());
            }
        }
        leader::release(&client, &lease).await;
    } else {
        controllers_done.await;
    }
    if let Some(link) = hub_link {
        let _ = tokio::time::timeout(Duration::from_secs(5), link).await;
    }
    info!("kruise-agent stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run(Args::parse()).await
}
