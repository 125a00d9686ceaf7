//! `kruise-local demo`: the federation on one machine. It starts a `kruise-hub` (one replica on
//! its embedded store, or three on a real etcd with `--etcd`), three member clusters in regions
//! r1, r2 and r3 (`kruise-local run`, named member-r1..3 as the example's subsets expect) with a
//! `kruise-agent` joined to the hub and a `kruise-daemon` per node, applies the federated
//! UnitedDeployment example to the hub, prints progress and the placement table, and keeps
//! running for kubectl until Ctrl-C, when it stops every process it started.

mod error;
mod hub;
mod layout;
mod manifest;
mod members;
mod placement;
mod procs;
mod progress;

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use kube::Client;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{debug, warn};

pub use error::DemoError;
use layout::Layout;
use manifest::Target;
use members::Member;
use procs::{sibling_binary, Procs};
use progress::{Changes, Snapshot};

/// The member clusters and their regions; the example's subsets name these clusters.
const CLUSTERS: [(&str, &str); 3] = [
    ("member-r1", "r1"),
    ("member-r2", "r2"),
    ("member-r3", "r3"),
];
/// Hub replicas with `--etcd`.
const ETCD_HUB_REPLICAS: usize = 3;
/// How long the agents get to join and heartbeat.
const CLUSTERS_READY_TIMEOUT: Duration = Duration::from_secs(90);
/// An image update of the built-in example's UnitedDeployment, as kubectl arguments. A JSON
/// patch of the one field: a merge patch would replace the whole container list (custom resources
/// have no strategic merge), drop the ports and force a recreate instead of an in-place update.
const EXAMPLE_IMAGE_UPDATE: &str = "patch ud shop --type json -p \
    '[{\"op\":\"replace\",\"path\":\"/spec/template/cloneSetTemplate/spec/template/spec/containers/0/image\",\
    \"value\":\"registry.example.com/shop:1.5.0\"}]'";
/// How often progress is read.
const POLL: Duration = Duration::from_secs(1);

/// Flags of `kruise-local demo`.
#[derive(ClapArgs, Debug)]
pub struct DemoArgs {
    /// Where the hub and clusters keep state, kubeconfigs and logs. Cleared when the demo starts
    /// (only if an earlier demo created it).
    #[arg(long, env = "KRUISE_DEMO_STATE_DIR", default_value = "./kruise-demo")]
    pub state_dir: PathBuf,
    /// Simulated nodes per member cluster, spread over the zones <region>-a, -b and -c.
    #[arg(long, env = "KRUISE_DEMO_NODES", default_value_t = 3)]
    pub nodes: usize,
    /// Run the hub as three replicas sharing a real etcd (Debian `etcd-server`) instead of one
    /// replica on its embedded store.
    #[arg(long, env = "KRUISE_DEMO_ETCD")]
    pub etcd: bool,
    /// YAML to apply to the hub instead of the built-in examples/federated-uniteddeployment.yaml;
    /// its first UnitedDeployment is the one whose placement is shown.
    #[arg(long, env = "KRUISE_DEMO_MANIFEST", value_name = "PATH")]
    pub manifest: Option<PathBuf>,
    /// Seconds to wait for every pod of the UnitedDeployment to be Ready before printing what
    /// is missing (the demo keeps running either way).
    #[arg(
        long,
        env = "KRUISE_DEMO_TIMEOUT_SECONDS",
        default_value_t = 300,
        value_name = "SECONDS"
    )]
    pub timeout: u64,
    /// Exit after the placement table instead of running until Ctrl-C; the exit status is
    /// non-zero when placement did not finish in time.
    #[arg(long, env = "KRUISE_DEMO_EXIT_WHEN_READY")]
    pub exit_when_ready: bool,
}

/// A deadline for a wait that says what did not happen.
pub(crate) struct Deadline {
    started: Instant,
    at: Instant,
}

impl Deadline {
    fn after(limit: Duration) -> Deadline {
        let started = Instant::now();
        Deadline {
            started,
            at: started + limit,
        }
    }

    fn expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// A [`DemoError::Timeout`] once expired.
    fn check(
        &self,
        what: impl FnOnce() -> String,
        hint: impl FnOnce() -> String,
    ) -> Result<(), DemoError> {
        if self.expired() {
            return Err(DemoError::Timeout {
                what: what(),
                waited: self.started.elapsed(),
                hint: hint(),
            });
        }
        Ok(())
    }
}

/// A kube client from a kubeconfig file.
pub(crate) async fn load_client(path: &Path) -> Result<Client, DemoError> {
    let error = |message: String| DemoError::Kubeconfig {
        path: path.to_path_buf(),
        message,
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| error(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| error(e.to_string()))?;
    Client::try_from(config).map_err(|e| error(e.to_string()))
}

/// Progress lines on stdout, stamped with the time since the demo started.
struct Console {
    started: Instant,
}

impl Console {
    fn say(&self, subject: &str, message: impl Display) {
        let secs = self.started.elapsed().as_secs_f64();
        println!("[{secs:>6.1}s] {subject:<9}  {message}");
    }
}

/// SIGINT (Ctrl-C), SIGTERM and SIGHUP all stop the demo and its children.
struct Signals(Vec<(Signal, &'static str)>);

impl Signals {
    fn install() -> Result<Signals, DemoError> {
        let kinds = [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
        ];
        let mut out = Vec::new();
        for (kind, name) in kinds {
            out.push((signal(kind).map_err(DemoError::Signals)?, name));
        }
        Ok(Signals(out))
    }

    async fn recv(&mut self) -> &'static str {
        let waits = self.0.iter_mut().map(|(s, name)| {
            Box::pin(async move {
                s.recv().await;
                *name
            })
        });
        futures::future::select_all(waits).await.0
    }
}

/// The binaries the demo runs, next to `kruise-local`.
struct Binaries {
    local: PathBuf,
    hub: PathBuf,
    agent: PathBuf,
    daemon: PathBuf,
}

/// How the demo session ended (other than by an error).
enum Outcome {
    /// `--exit-when-ready`: whether every pod became Ready in time.
    Finished { complete: bool },
    /// A signal arrived.
    Interrupted(&'static str),
}

/// What one session needs, fixed before it starts.
struct Session<'a> {
    console: &'a Console,
    layout: &'a Layout,
    bins: &'a Binaries,
    docs: Vec<serde_json::Value>,
    nodes: usize,
    etcd: bool,
    timeout: Duration,
    exit_when_ready: bool,
    /// Whether the manifest is the built-in example (the demo then suggests an image update).
    builtin_example: bool,
}

impl DemoArgs {
    /// Runs the demo until Ctrl-C (or, with `--exit-when-ready`, until placement finishes).
    pub async fn run(self) -> anyhow::Result<()> {
        let DemoArgs {
            state_dir,
            nodes,
            etcd,
            manifest,
            timeout,
            exit_when_ready,
        } = self;
        let docs = match &manifest {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| DemoError::Manifest {
                    source_name: path.display().to_string(),
                    message: e.to_string(),
                })?;
                manifest::parse(&path.display().to_string(), &text)?
            }
            None => manifest::parse(
                "examples/federated-uniteddeployment.yaml",
                manifest::FEDERATED_UNITED_DEPLOYMENT,
            )?,
        };
        let bins = Binaries {
            local: std::env::current_exe().map_err(|source| DemoError::Spawn {
                what: "locating the kruise-local executable".into(),
                source,
            })?,
            hub: sibling_binary("kruise-hub")?,
            agent: sibling_binary("kruise-agent")?,
            daemon: sibling_binary("kruise-daemon")?,
        };
        let layout = Layout::prepare(&state_dir)?;
        let mut signals = Signals::install()?;
        let console = Console {
            started: Instant::now(),
        };
        let session = Session {
            console: &console,
            layout: &layout,
            bins: &bins,
            docs,
            nodes,
            etcd,
            timeout: Duration::from_secs(timeout),
            exit_when_ready,
            builtin_example: manifest.is_none(),
        };
        let mut procs = Procs::default();
        let outcome = tokio::select! {
            outcome = session.run(&mut procs) => outcome,
            name = signals.recv() => Ok(Outcome::Interrupted(name)),
        };
        match &outcome {
            Ok(Outcome::Interrupted(name)) => console.say("demo", format!("{name}: stopping")),
            Ok(Outcome::Finished { .. }) => console.say("demo", "stopping"),
            Err(_) => console.say("demo", "failed (the error follows); stopping"),
        }
        let running = procs.running();
        let killed = procs.stop().await;
        if killed.is_empty() {
            console.say("demo", format!("stopped {running} processes"));
        } else {
            console.say(
                "demo",
                format!(
                    "stopped {running} processes; killed after {:?}: {}",
                    procs::STOP_GRACE,
                    killed.join(", ")
                ),
            );
        }
        match outcome? {
            Outcome::Finished { complete: false } => {
                anyhow::bail!("the UnitedDeployment's pods were not all Ready within {timeout} s")
            }
            Outcome::Finished { complete: true } | Outcome::Interrupted(_) => Ok(()),
        }
    }
}

impl Session<'_> {
    async fn run(&self, procs: &mut Procs) -> Result<Outcome, DemoError> {
        let Session {
            console, layout, ..
        } = *self;
        console.say(
            "demo",
            format!(
                "kruise-rs federation demo; state, kubeconfigs and logs in {}",
                layout.show(layout.root())
            ),
        );
        let etcd_endpoint = if self.etcd {
            let endpoint = hub::start_etcd(procs, layout).await?;
            console.say("etcd", format!("serving at {endpoint}"));
            Some(endpoint)
        } else {
            None
        };
        for (name, region) in CLUSTERS {
            members::spawn(procs, layout, &self.bins.local, name, region, self.nodes)?;
        }
        let storage = match &etcd_endpoint {
            Some(endpoint) => hub::Storage::Etcd {
                endpoint,
                replicas: ETCD_HUB_REPLICAS,
            },
            None => hub::Storage::Embedded,
        };
        let hub = hub::start(procs, layout, &self.bins.hub, storage).await?;
        let replicas = match hub.urls.len() {
            1 => "1 replica, embedded store".to_string(),
            n => format!("{n} replicas on etcd"),
        };
        console.say(
            "hub",
            format!("kruise-hub serving ({replicas}) at {}", hub.urls.join(", ")),
        );
        let mut members = Vec::new();
        for (name, region) in CLUSTERS {
            members.push(self.join(procs, &hub, name, region).await?);
        }
        self.wait_clusters_ready(procs, &hub).await?;
        let applied = manifest::apply(&hub.client, &self.docs).await?;
        for object in applied {
            console.say("hub", format!("applied {object}"));
        }
        let target = manifest::target(&self.docs);
        let mut changes = Changes::default();
        let complete = match &target {
            Some(target) => {
                self.follow(procs, &hub, &members, target, &mut changes)
                    .await?
            }
            None => {
                console.say("demo", "the manifest has no UnitedDeployment to follow");
                true
            }
        };
        self.print_try(&hub, &members, target.as_ref());
        if self.exit_when_ready {
            return Ok(Outcome::Finished { complete });
        }
        console.say("demo", "running until Ctrl-C; changes keep showing here");
        loop {
            self.report_exits(procs);
            if let Some(target) = &target {
                match progress::observe(&hub.client, &members, target).await {
                    Ok(snapshot) => {
                        for (subject, line) in changes.of(target, &snapshot) {
                            console.say(&subject, line);
                        }
                    }
                    Err(e) => debug!(error = %e, "reading progress failed; retrying"),
                }
            }
            tokio::time::sleep(POLL * 2).await;
        }
    }

    /// Connects to a member cluster, registers it on the hub, starts its agent and node daemons.
    async fn join(
        &self,
        procs: &mut Procs,
        hub: &hub::Hub,
        name: &'static str,
        region: &'static str,
    ) -> Result<Member, DemoError> {
        let layout = self.layout;
        let (member, crds) = members::connect(procs, layout, name).await?;
        let join_file = layout.join_file(name);
        hub::register_cluster(&self.bins.hub, &hub.kubeconfig, name, region, &join_file).await?;
        members::start_agent(procs, layout, &self.bins.agent, &member, &join_file)?;
        let daemons = members::start_daemons(procs, layout, &self.bins.daemon, &member).await?;
        self.console.say(
            name,
            format!(
                "region {region}, {} nodes in zones {}, {crds} kruise CRDs; registered on the hub; \
                 kruise-agent and {daemons} kruise-daemons started",
                member.nodes.len(),
                member.zones.join(",")
            ),
        );
        Ok(member)
    }

    async fn wait_clusters_ready(
        &self,
        procs: &mut Procs,
        hub: &hub::Hub,
    ) -> Result<(), DemoError> {
        let names: Vec<&str> = CLUSTERS.iter().map(|(n, _)| *n).collect();
        let deadline = Deadline::after(CLUSTERS_READY_TIMEOUT);
        loop {
            procs.check_alive()?;
            let missing = hub::not_ready(&hub.client, &names).await?;
            if missing.is_empty() {
                self.console.say(
                    "hub",
                    format!(
                        "clusters Ready: {} (agents heartbeat over gRPC)",
                        names.join(", ")
                    ),
                );
                return Ok(());
            }
            deadline.check(
                || format!("clusters {} reporting Ready on the hub", missing.join(", ")),
                || {
                    format!(
                        "see {}",
                        self.layout
                            .show(&self.layout.root().join("*/kruise-agent.log"))
                    )
                },
            )?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Prints progress until every pod of `target` is Ready or the timeout passes; then the
    /// placement table or what is missing. Returns whether placement finished.
    async fn follow(
        &self,
        procs: &mut Procs,
        hub: &hub::Hub,
        members: &[Member],
        target: &Target,
        changes: &mut Changes,
    ) -> Result<bool, DemoError> {
        let console = self.console;
        let deadline = Deadline::after(self.timeout);
        let mut last: Option<Snapshot> = None;
        loop {
            self.report_exits(procs);
            match progress::observe(&hub.client, members, target).await {
                Ok(snapshot) => {
                    for (subject, line) in changes.of(target, &snapshot) {
                        console.say(&subject, line);
                    }
                    if snapshot.complete(target) {
                        print!(
                            "\nPlacement of UnitedDeployment {}/{} ({} pods Ready):\n{}",
                            target.namespace,
                            target.name,
                            target.replicas,
                            placement::render(&snapshot.placement)
                        );
                        return Ok(true);
                    }
                    last = Some(snapshot);
                }
                Err(e) => debug!(error = %e, "reading progress failed; retrying"),
            }
            if deadline.expired() {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let waited = self.timeout.as_secs();
        let message = match &last {
            Some(s) if s.works() == 0 => format!(
                "after {waited} s the hub has no Work for UnitedDeployment {}/{}, so nothing was \
                 placed on the member clusters (no hub controller turned it into Works)",
                target.namespace, target.name
            ),
            Some(s) => format!(
                "after {waited} s {} of {} pods are Ready",
                s.ready(),
                target.replicas
            ),
            None => format!("after {waited} s progress could not be read from the clusters"),
        };
        console.say("demo", format!("placement not finished: {message}"));
        if let Some(s) = last.filter(|s| !s.placement.is_empty()) {
            print!("\nPlacement so far:\n{}", placement::render(&s.placement));
        }
        Ok(false)
    }

    /// Reports children that exited on their own (the demo keeps going without them).
    fn report_exits(&self, procs: &mut Procs) {
        for exit in procs.newly_exited() {
            warn!(what = exit.what, status = %exit.status, "child exited");
            self.console.say(
                "demo",
                format!(
                    "{} exited ({}); see {}",
                    exit.what,
                    exit.status,
                    self.layout.show(&exit.log)
                ),
            );
        }
    }

    fn print_try(&self, hub: &hub::Hub, members: &[Member], target: Option<&Target>) {
        let show = |p: &Path| self.layout.show(p);
        let hub_kc = show(&hub.kubeconfig);
        println!("\nKubeconfigs:");
        println!("  {:<9}  {hub_kc}", "hub");
        for (id, kc) in &hub.other_kubeconfigs {
            println!("  {id:<9}  {}", show(kc));
        }
        for m in members {
            println!("  {:<9}  {}", m.name, show(&m.kubeconfig));
        }
        println!("Try:");
        for what in ["get managedclusters", "get ud", "get works"] {
            println!("  kubectl --kubeconfig {hub_kc} {what}");
        }
        if let Some(t) = target {
            let ns = match t.namespace.as_str() {
                "default" => String::new(),
                other => format!(" -n {other}"),
            };
            println!(
                "  kubectl --kubeconfig {hub_kc}{ns} scale ud {} --replicas {}",
                t.name,
                t.replicas.saturating_mul(2)
            );
        }
        if self.builtin_example {
            println!("  kubectl --kubeconfig {hub_kc} {EXAMPLE_IMAGE_UPDATE}");
            println!("      (a new image, rolled out one subset at a time: r3, then r2, then r1)");
        }
        if let Some(first) = members.first() {
            let kc = show(&first.kubeconfig);
            for what in ["get clone", "get pods -o wide"] {
                println!("  kubectl --kubeconfig {kc} {what}");
            }
        }
        println!(
            "(member-r2 and member-r3 likewise; every process logs to a *.log file under {})\n",
            show(self.layout.root())
        );
    }
}
