//! The harness the workload benchmarks share: kruise-local with simulated latencies plus one
//! kruise-agent, phases that print progress and stop at a deadline reporting what they reached,
//! and the rollout case (create, wait ready, change the image, wait rolled out, clean up).

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use k8s_openapi::api::core::v1::{Node, Pod};
use kruise_api::apps::v1beta1::StatefulSet;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Config, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

/// Cluster and timing flags every benchmark takes.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Simulated nodes.
    #[arg(long, env = "BENCH_NODES", default_value_t = 20)]
    pub nodes: u32,
    /// Simulated image size in MB (images are named `...-size-<N>mb`).
    #[arg(long, env = "BENCH_IMAGE_MB", default_value_t = 200)]
    pub image_mb: u32,
    /// kruise-local latency: image pull time per MB.
    #[arg(long, env = "BENCH_IMAGE_PULL_MS_PER_MB", default_value_t = 10)]
    pub image_pull_ms_per_mb: u64,
    /// kruise-local latency: container start.
    #[arg(long, env = "BENCH_CONTAINER_START_MS", default_value_t = 100)]
    pub container_start_ms: u64,
    /// kruise-local latency: readiness delay.
    #[arg(long, env = "BENCH_READINESS_DELAY_MS", default_value_t = 200)]
    pub readiness_delay_ms: u64,
    /// kruise-local latency: scheduling delay.
    #[arg(long, env = "BENCH_SCHEDULE_DELAY_MS", default_value_t = 0)]
    pub schedule_delay_ms: u64,
    /// Deadline of each phase in seconds; a phase that runs out reports how far it got.
    #[arg(long, env = "BENCH_TIMEOUT_SECONDS", default_value_t = 600)]
    pub timeout_seconds: u64,
    /// Seconds between progress lines (on stderr).
    #[arg(long, env = "BENCH_PROGRESS_SECONDS", default_value_t = 10)]
    pub progress_seconds: u64,
    /// Log filter of the agent (`KRUISE_AGENT_LOG`), e.g. `kruise_agent=debug`.
    #[arg(long, env = "BENCH_AGENT_LOG", default_value = "warn")]
    pub agent_log: String,
    /// Keep the working directory (kruise-local and agent logs) instead of removing it at the
    /// end; its path is printed.
    #[arg(long, env = "BENCH_KEEP_DIR")]
    pub keep_dir: bool,
    /// Nodes pre-downloading a new image at once for in-place rollouts
    /// (`apps.kruise.io/image-predownload-parallelism`; default: every node).
    #[arg(long, env = "BENCH_PRE_DOWNLOAD_PARALLELISM")]
    pub pre_download_parallelism: Option<u32>,
    /// Run without image pre-download: no `PreDownloadImageForInPlaceUpdate` gate and no
    /// kruise-daemon on the nodes.
    #[arg(long, env = "BENCH_NO_PRE_DOWNLOAD")]
    pub no_pre_download: bool,
}

impl ClusterArgs {
    /// One line describing the simulated cluster.
    pub fn describe(&self) -> String {
        let pre = match self.pre_download() {
            Some(p) => format!("in-place pre-download on {p} nodes at once"),
            None => "no pre-download".to_string(),
        };
        format!(
            "{} nodes, image {} MB at {} ms/MB, container start {} ms, readiness {} ms, schedule {} ms, {pre}",
            self.nodes,
            self.image_mb,
            self.image_pull_ms_per_mb,
            self.container_start_ms,
            self.readiness_delay_ms,
            self.schedule_delay_ms
        )
    }

    /// Pre-download parallelism, `None` when pre-download is off.
    pub fn pre_download(&self) -> Option<u32> {
        (!self.no_pre_download).then(|| self.pre_download_parallelism.unwrap_or(self.nodes))
    }

    /// Annotations an in-place workload carries in this run.
    pub fn in_place_annotations(&self) -> serde_json::Value {
        match self.pre_download() {
            Some(p) => json!({"apps.kruise.io/image-predownload-parallelism": p.to_string()}),
            None => json!({}),
        }
    }

    /// An image of `tag` with the simulated size.
    pub fn image(&self, repo: &str, tag: &str) -> String {
        format!("example.com/bench/{repo}:{tag}-size-{}mb", self.image_mb)
    }
}

/// A child process killed when dropped.
pub struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.parent().context("exe dir")?.join(name);
    if !path.exists() {
        bail!(
            "{} not found: build it into the same target dir",
            path.display()
        );
    }
    Ok(path)
}

/// How far a phase got: finished, and a short summary (`120/300 ready`).
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// The phase is finished.
    pub done: bool,
    /// What was reached, for progress lines and timeouts.
    pub summary: String,
}

/// The outcome of a timed phase.
#[derive(Debug, Clone)]
pub enum Phase {
    /// Finished after this long.
    Done(Duration),
    /// Ran out of time; `reached` is the last progress seen.
    TimedOut {
        /// How long it ran.
        after: Duration,
        /// Last progress summary.
        reached: String,
    },
}

impl Phase {
    /// The time taken, when finished.
    pub fn seconds(&self) -> Option<f64> {
        match self {
            Phase::Done(d) => Some(d.as_secs_f64()),
            Phase::TimedOut { .. } => None,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Done(d) => write!(f, "{:8.2} s", d.as_secs_f64()),
            Phase::TimedOut { after, reached } => write!(
                f,
                "timed out after {:.0} s, reached {reached}",
                after.as_secs_f64()
            ),
        }
    }
}

/// `a / b` as a figure, or why there is none.
pub fn ratio(a: &Phase, b: &Phase) -> String {
    match (a.seconds(), b.seconds()) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:8.2}x", a / b),
        _ => "n/a (a phase did not finish)".to_string(),
    }
}

/// kruise-local and one kruise-agent, stopped when dropped.
pub struct Harness {
    /// Admin client.
    pub client: Client,
    /// Flags.
    pub args: ClusterArgs,
    /// Name used in progress lines.
    pub name: &'static str,
    dir: PathBuf,
    _agent: Killed,
    _daemons: Vec<Killed>,
    _local: Killed,
}

impl Harness {
    /// Starts kruise-local with the simulated latencies, then an agent running `controllers`
    /// (`None`: all) without leader election, and waits until `kind_plural` of
    /// `apps.kruise.io` is served.
    pub async fn start(
        name: &'static str,
        args: &ClusterArgs,
        controllers: Option<&str>,
    ) -> anyhow::Result<Harness> {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let kubeconfig = dir.join("kubeconfig");
        let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/kruise-agent/crds");
        let log = std::fs::File::create(dir.join("kruise-local.log"))?;
        let local = Killed(
            Command::new(bin("kruise-local")?)
                .args(["run", "--name", "bench", "--listen", "127.0.0.1:0"])
                .arg("--nodes")
                .arg(args.nodes.to_string())
                .arg("--kubeconfig-out")
                .arg(&kubeconfig)
                .arg("--state-dir")
                .arg(dir.join("state"))
                .arg("--crds-dir")
                .arg(&crds)
                .arg(format!(
                    "--image-pull-ms-per-mb={}",
                    args.image_pull_ms_per_mb
                ))
                .arg(format!("--container-start-ms={}", args.container_start_ms))
                .arg(format!("--readiness-delay-ms={}", args.readiness_delay_ms))
                .arg(format!("--schedule-delay-ms={}", args.schedule_delay_ms))
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()?,
        );
        let setup = Instant::now() + Duration::from_secs(120);
        poll(setup, "kubeconfig", || async {
            std::fs::metadata(&kubeconfig)
                .ok()
                .filter(|m| m.len() > 0)
                .map(|_| ())
        })
        .await?;
        let config = Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig)?,
            &Default::default(),
        )
        .await?;
        let client = Client::try_from(config)?;
        let nodes: Api<Node> = Api::all(client.clone());
        poll(setup, "nodes", || async {
            let n = nodes.list(&ListParams::default()).await.ok()?.items.len() as u32;
            (n >= args.nodes).then_some(())
        })
        .await?;
        // A kruise-daemon on every node pulls what ImagePullJobs ask for, over the node's CRI.
        let mut daemons = Vec::new();
        if args.pre_download().is_some() {
            let daemon = bin("kruise-daemon")?;
            let names: Vec<String> = nodes
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter_map(|n| n.metadata.name.clone())
                .collect();
            for node in names {
                let socket = dir.join("state/nodes").join(&node).join("cri.sock");
                poll(setup, "node CRI socket", || async {
                    socket.exists().then_some(())
                })
                .await?;
                let log = std::fs::File::create(dir.join(format!("daemon-{node}.log")))?;
                daemons.push(Killed(
                    Command::new(&daemon)
                        .env("KUBECONFIG", &kubeconfig)
                        .env("RUST_LOG", "warn")
                        .args(["--node-name", &node, "--health-addr", "127.0.0.1:0"])
                        .arg("--runtime-endpoint")
                        .arg(format!("unix://{}", socket.display()))
                        .stdout(Stdio::from(log.try_clone()?))
                        .stderr(Stdio::from(log))
                        .spawn()?,
                ));
            }
        }
        let agent_log = std::fs::File::create(dir.join("agent.log"))?;
        let mut agent = Command::new(bin("kruise-agent")?);
        agent
            .env("KUBECONFIG", &kubeconfig)
            .env("KRUISE_AGENT_LOG", &args.agent_log)
            .args(["--metrics-addr", "127.0.0.1:0"])
            // One agent: no election, so a slow lease renewal on a busy machine cannot stop it.
            .args(["--leader-elect", "false"]);
        if args.pre_download().is_some() {
            agent.args(["--feature-gates", "PreDownloadImageForInPlaceUpdate=true"]);
        }
        if let Some(c) = controllers {
            agent.args(["--controllers", c]);
        }
        let agent = Killed(
            agent
                .stdout(Stdio::from(agent_log.try_clone()?))
                .stderr(Stdio::from(agent_log))
                .spawn()?,
        );
        let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
        poll(setup, "apps.kruise.io served", || async {
            sts.list(&ListParams::default()).await.ok().map(|_| ())
        })
        .await?;
        Ok(Harness {
            client,
            args: args.clone(),
            name,
            dir,
            _agent: agent,
            _daemons: daemons,
            _local: local,
        })
    }

    /// The pods API of the default namespace.
    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Runs a phase: polls `check` until it reports done or the per-phase deadline passes,
    /// printing a progress line every `--progress-seconds`.
    pub async fn phase<F, Fut>(&self, what: &str, mut check: F) -> Phase
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Progress>,
    {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(self.args.timeout_seconds);
        let every = Duration::from_secs(self.args.progress_seconds.max(1));
        let mut next_line = start + every;
        let mut last = Progress::default();
        loop {
            last = match tokio::time::timeout(Duration::from_secs(30), check()).await {
                Ok(p) => p,
                Err(_) => Progress {
                    done: false,
                    summary: format!("{} (API slow)", last.summary),
                },
            };
            if last.done {
                return Phase::Done(start.elapsed());
            }
            let now = Instant::now();
            if now >= deadline {
                eprintln!(
                    "[{}] {what}: timed out after {:.0} s at {}",
                    self.name,
                    start.elapsed().as_secs_f64(),
                    last.summary
                );
                return Phase::TimedOut {
                    after: start.elapsed(),
                    reached: last.summary,
                };
            }
            if now >= next_line {
                eprintln!(
                    "[{}] {what}: {:.0} s, {}",
                    self.name,
                    start.elapsed().as_secs_f64(),
                    last.summary
                );
                next_line = now + every;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Pods of `selector` that are not terminating, and how many of them are ready.
    pub async fn ready_pods(&self, selector: &str) -> (usize, usize) {
        let list = self
            .pods()
            .list(&ListParams::default().labels(selector))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let active: Vec<&Pod> = list
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let ready = active
            .iter()
            .filter(|p| kruise_agent::pods::is_running_and_ready(p))
            .count();
        (active.len(), ready)
    }

    /// Waits until `n` pods of `selector` exist and are ready.
    pub async fn wait_ready(&self, what: &str, selector: &str, n: usize) -> Phase {
        self.phase(what, || async {
            let (active, ready) = self.ready_pods(selector).await;
            Progress {
                done: active == n && ready == n,
                summary: format!("{ready}/{n} ready ({active} pods)"),
            }
        })
        .await
    }

    /// Deletes the pods of `selector` and waits until they are gone.
    pub async fn delete_pods(&self, selector: &str) -> anyhow::Result<Phase> {
        self.pods()
            .delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels(selector),
            )
            .await?;
        Ok(self
            .phase(&format!("{selector} gone"), || async {
                let left = self
                    .pods()
                    .list(&ListParams::default().labels(selector))
                    .await
                    .map(|l| l.items.len());
                Progress {
                    done: left.as_ref().is_ok_and(|n| *n == 0),
                    summary: match left {
                        Ok(n) => format!("{n} pods left"),
                        Err(e) => format!("list failed: {e}"),
                    },
                }
            })
            .await)
    }

    /// Rolls a workload out: creates `object` (app label `name`, `replicas` pods, containers
    /// named `main`), waits until its pods are ready, changes the image to `new_image`, and
    /// times until `rolled` reports the rollout done; then deletes it and its pods.
    pub async fn rollout<K>(
        &self,
        object: &K,
        replicas: i32,
        new_image: &str,
        rolled: impl Fn(&K) -> Progress,
    ) -> anyhow::Result<Phase>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + fmt::Debug,
    {
        let name = object.meta().name.clone().unwrap_or_default();
        let api: Api<K> = Api::namespaced(self.client.clone(), "default");
        let selector = format!("app={name}");
        let n = usize::try_from(replicas).unwrap_or(0);
        api.create(&PostParams::default(), object).await?;
        let base = self
            .wait_ready(&format!("{name} base ready"), &selector, n)
            .await;
        let took = match base {
            Phase::TimedOut { after, reached } => Phase::TimedOut {
                after,
                reached: format!("base pods only: {reached}"),
            },
            Phase::Done(_) => {
                let patch = json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "main", "image": new_image}]}}}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                self.phase(&format!("{name} rollout"), || async {
                    match api.get(&name).await {
                        Ok(obj) => rolled(&obj),
                        Err(e) => Progress {
                            done: false,
                            summary: format!("get failed: {e}"),
                        },
                    }
                })
                .await
            }
        };
        api.delete(&name, &DeleteParams::default()).await?;
        if let Phase::TimedOut { reached, .. } = self.delete_pods(&selector).await? {
            eprintln!("[{}] cleanup of {name} incomplete: {reached}", self.name);
        }
        Ok(took)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.args.keep_dir {
            eprintln!("[{}] logs kept in {}", self.name, self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

async fn poll<T, F, Fut>(deadline: Instant, what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Advanced StatefulSet of the rollout case: `Parallel`, `maxUnavailable: 20%`, the given
/// `podUpdatePolicy`, with the `InPlaceUpdateReady` readiness gate.
pub fn statefulset(
    name: &str,
    replicas: i32,
    image: &str,
    policy: &str,
) -> anyhow::Result<StatefulSet> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": image}],
                                  "readinessGates": [{"conditionType": "InPlaceUpdateReady"}]}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
                "podUpdatePolicy": policy, "maxUnavailable": "20%"}}
        }
    }))?)
}

/// Rollout progress of an Advanced StatefulSet from its status.
pub fn statefulset_rolled(set: &StatefulSet, n: i32) -> Progress {
    let Some(st) = set.status.as_ref() else {
        return Progress {
            done: false,
            summary: "no status yet".into(),
        };
    };
    let updated_ready = st.updated_ready_replicas.unwrap_or(0);
    Progress {
        done: st.observed_generation == set.metadata.generation
            && updated_ready == n
            && st.ready_replicas == n
            && st.replicas == n,
        summary: format!(
            "{updated_ready}/{n} updated and ready, {} ready, {} pods",
            st.ready_replicas, st.replicas
        ),
    }
}

/// The Advanced StatefulSet rollout case: `replicas` pods rolled to a new image in place
/// (`InPlaceIfPossible`) and by `ReCreate`, in the same cluster one after the other.
pub async fn statefulset_rollouts(h: &Harness, replicas: i32) -> anyhow::Result<(Phase, Phase)> {
    let mut out = Vec::new();
    for (name, policy) in [
        ("asts-inplace", "InPlaceIfPossible"),
        ("asts-recreate", "ReCreate"),
    ] {
        let mut set = statefulset(
            name,
            replicas,
            &h.args.image("db", &format!("{name}-v1")),
            policy,
        )?;
        if policy != "ReCreate" {
            set.metadata.annotations = serde_json::from_value(h.args.in_place_annotations())?;
        }
        let phase = h
            .rollout(
                &set,
                replicas,
                &h.args.image("db", &format!("{name}-v2")),
                |s| statefulset_rolled(s, replicas),
            )
            .await?;
        eprintln!("[{}] {name}: {phase}", h.name);
        out.push(phase);
    }
    let recreate = out.pop().context("recreate phase")?;
    let in_place = out.pop().context("in-place phase")?;
    Ok((in_place, recreate))
}
