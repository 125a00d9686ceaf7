//! Command-line flags of `kruise-agent` (every flag can also come from an environment variable).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser};

use crate::gates::FeatureGates;

/// Controllers the agent can run, by `--controllers` name.
pub const CONTROLLERS: &[&str] = &[
    "cloneset",
    "statefulset",
    "nodeimage",
    "imagepulljob",
    "imagelistpulljob",
    "containerrecreaterequest",
    "podreadiness",
];

/// kruise-agent: OpenKruise controllers and admission webhooks for one cluster.
///
/// Connects with `--kubeconfig` (or `KUBECONFIG`, or the in-cluster service account), elects a
/// leader through a coordination.k8s.io Lease (only the leader reconciles and registers the
/// webhook configurations), serves AdmissionReview v1 webhooks over HTTPS with its own CA, and
/// exposes /healthz, /readyz and Prometheus /metrics.
#[derive(Parser, Debug, Clone)]
#[command(name = "kruise-agent", version, about, long_about)]
pub struct Args {
    /// How to reach the cluster.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Which controllers run and how.
    #[command(flatten)]
    pub controllers: ControllerArgs,
    /// Leader election.
    #[command(flatten)]
    pub leader: LeaderArgs,
    /// Admission webhooks.
    #[command(flatten)]
    pub webhook: WebhookArgs,
    /// Metrics, health and logs.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// Cluster connection.
#[derive(ClapArgs, Debug, Clone)]
pub struct ClientArgs {
    /// Path to a kubeconfig; without it, KUBECONFIG, ~/.kube/config or the in-cluster config.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Join file from `kruise-hub cluster add`: when set, the leader also syncs this cluster's
    /// Works from the hub (applies them, reports status and capacity).
    #[arg(long, env = "KRUISE_AGENT_HUB_JOIN_FILE")]
    pub hub_join_file: Option<PathBuf>,
}

/// Controller selection and tuning.
#[derive(ClapArgs, Debug, Clone)]
pub struct ControllerArgs {
    /// Comma-separated controllers to run (`*` = all). Known: cloneset, statefulset, nodeimage,
    /// imagepulljob, imagelistpulljob, containerrecreaterequest.
    #[arg(
        long,
        env = "KRUISE_AGENT_CONTROLLERS",
        default_value = "*",
        value_delimiter = ','
    )]
    pub controllers: Vec<String>,
    /// Feature gates with upstream names, e.g. `CloneSetShortHash=true,TemplateNoDefaults=false`.
    #[arg(long, env = "KRUISE_AGENT_FEATURE_GATES", default_value = "")]
    pub feature_gates: FeatureGates,
    /// Reconciles running at once per controller.
    #[arg(long, env = "KRUISE_AGENT_WORKERS", default_value_t = 3)]
    pub workers: u16,
    /// Timeout of each write to the API server, in milliseconds.
    #[arg(long, env = "KRUISE_AGENT_WRITE_TIMEOUT_MS", default_value_t = 10_000)]
    pub write_timeout_ms: u64,
    /// How long a controller waits for its own writes to show up in its cache, in seconds.
    #[arg(
        long,
        env = "KRUISE_AGENT_EXPECTATION_TIMEOUT_SECONDS",
        default_value_t = 30
    )]
    pub expectation_timeout_seconds: u64,
    /// Seconds a ContainerRecreateRequest may stay without a phase before it fails with
    /// "daemon has not responded for a long time" (upstream: 60).
    #[arg(
        long,
        env = "KRUISE_AGENT_CRR_DAEMON_TIMEOUT_SECONDS",
        default_value_t = 60
    )]
    pub crr_daemon_timeout_seconds: u64,
}

/// Lease-based leader election.
#[derive(ClapArgs, Debug, Clone)]
pub struct LeaderArgs {
    /// Elect a leader; only the leader reconciles.
    #[arg(long, env = "KRUISE_AGENT_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Namespace of the Lease (created if missing).
    #[arg(
        long,
        env = "KRUISE_AGENT_LEADER_ELECTION_NAMESPACE",
        default_value = "kruise-system"
    )]
    pub leader_election_namespace: String,
    /// Name of the Lease.
    #[arg(
        long,
        env = "KRUISE_AGENT_LEADER_ELECTION_ID",
        default_value = "kruise-manager"
    )]
    pub leader_election_id: String,
    /// This agent's identity in the Lease (default: hostname and process id).
    #[arg(long, env = "KRUISE_AGENT_IDENTITY")]
    pub identity: Option<String>,
    /// Seconds a Lease stays valid without renewal.
    #[arg(
        long,
        env = "KRUISE_AGENT_LEASE_DURATION_SECONDS",
        default_value_t = 15
    )]
    pub lease_duration_seconds: u64,
    /// Seconds the leader keeps trying to renew before it gives up and exits.
    #[arg(
        long,
        env = "KRUISE_AGENT_RENEW_DEADLINE_SECONDS",
        default_value_t = 10
    )]
    pub renew_deadline_seconds: u64,
    /// Milliseconds between acquire/renew attempts.
    #[arg(long, env = "KRUISE_AGENT_RETRY_PERIOD_MS", default_value_t = 2000)]
    pub retry_period_ms: u64,
}

/// Webhook server and registration.
#[derive(ClapArgs, Debug, Clone)]
pub struct WebhookArgs {
    /// Host name or IP the API server uses to reach the webhook (`clientConfig.url` and the
    /// certificate's subject alternative name).
    #[arg(long, env = "KRUISE_AGENT_WEBHOOK_HOST", default_value = "127.0.0.1")]
    pub webhook_host: String,
    /// Address the webhook server listens on; port 0 picks a free port.
    #[arg(long, env = "KRUISE_AGENT_WEBHOOK_ADDR", default_value = "127.0.0.1:0")]
    pub webhook_addr: SocketAddr,
    /// Do not serve webhooks at all.
    #[arg(long, env = "KRUISE_AGENT_DISABLE_WEBHOOK_SERVER")]
    pub disable_webhook_server: bool,
    /// Serve webhooks but do not register Mutating/ValidatingWebhookConfigurations.
    #[arg(long, env = "KRUISE_AGENT_DISABLE_WEBHOOK_REGISTRATION")]
    pub disable_webhook_registration: bool,
}

/// Telemetry.
#[derive(ClapArgs, Debug, Clone)]
pub struct TelemetryArgs {
    /// Address serving /metrics, /healthz and /readyz; port 0 picks a free port (logged).
    #[arg(long, env = "KRUISE_AGENT_METRICS_ADDR", default_value = "127.0.0.1:0")]
    pub metrics_addr: SocketAddr,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "KRUISE_AGENT_LOG", default_value = "info")]
    pub log: String,
}

/// Errors in the flags that clap cannot catch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    /// A `--controllers` entry that is not a known controller.
    #[error("unknown controller {name:?}; known: {known}")]
    UnknownController {
        /// The name given.
        name: String,
        /// The known names.
        known: String,
    },
}

impl ControllerArgs {
    /// Whether a controller is enabled.
    pub fn enabled(&self, name: &str) -> bool {
        self.controllers.iter().any(|c| c == "*" || c == name)
    }

    /// Checks the controller names.
    pub fn check(&self) -> Result<(), ArgsError> {
        for c in &self.controllers {
            let c = c.trim();
            if c != "*" && !c.is_empty() && !CONTROLLERS.contains(&c) {
                return Err(ArgsError::UnknownController {
                    name: c.to_string(),
                    known: CONTROLLERS.join(","),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_gates_and_controllers() {
        let a = Args::try_parse_from([
            "kruise-agent",
            "--controllers",
            "cloneset",
            "--feature-gates",
            "CloneSetShortHash=true",
            "--leader-elect",
            "false",
        ])
        .unwrap();
        assert!(a.controllers.enabled("cloneset"));
        assert!(a.controllers.feature_gates.enabled("CloneSetShortHash"));
        assert!(!a.leader.leader_elect);
        assert!(a.controllers.check().is_ok());
        let bad = Args::try_parse_from(["kruise-agent", "--controllers", "nope"]).unwrap();
        assert!(bad.controllers.check().is_err());
        assert!(Args::try_parse_from(["kruise-agent", "--feature-gates", "Nope=true"]).is_err());
    }
}
