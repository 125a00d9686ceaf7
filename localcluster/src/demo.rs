//! `kruise-local demo`: local member clusters in three regions on the embedded default, with the
//! kruise CRDs installed and an agent per cluster, a workload rolled out, live progress and a
//! placement table; then it keeps running so kubectl can be tried against it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;

use crate::sim::client_from_kubeconfig;

/// The seed CloneSet of the walk-through, applied to the first cluster.
const SEED_CLONESET: &str = include_str!("../../examples/seed-cloneset.yaml");

/// Flags of `kruise-local demo`.
#[derive(ClapArgs, Debug)]
pub struct DemoArgs {
    /// Where the clusters keep their state and kubeconfigs.
    #[arg(long, env = "KRUISE_DEMO_STATE_DIR", default_value = "./kruise-demo")]
    pub state_dir: PathBuf,
    /// Nodes per cluster.
    #[arg(long, env = "KRUISE_DEMO_NODES", default_value_t = 3)]
    pub nodes: usize,
    /// Print the summary and exit instead of running until Ctrl-C.
    #[arg(long)]
    pub exit_when_ready: bool,
}

const CLUSTERS: [(&str, &str); 3] = [("east", "r1"), ("west", "r2"), ("south", "r3")];

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sibling_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.join(name);
    p.exists().then_some(p)
}

fn spawn_cluster(state: &Path, name: &str, region: &str, nodes: usize) -> anyhow::Result<Child> {
    let dir = state.join(name);
    std::fs::create_dir_all(&dir)?;
    let log = std::fs::File::create(dir.join("kruise-local.log"))?;
    let zones = format!("{region}-a,{region}-b,{region}-c");
    Command::new(std::env::current_exe()?)
        .args([
            "run",
            "--name",
            name,
            "--region",
            region,
            "--zones",
            &zones,
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--nodes", &nodes.to_string()])
        .arg("--kubeconfig-out")
        .arg(state.join(format!("{name}.kubeconfig")))
        .arg("--state-dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting cluster {name}"))
}

async fn wait_for_api(kubeconfig: &Path) -> anyhow::Result<Client> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if kubeconfig.exists() {
            if let Ok(client) = client_from_kubeconfig(kubeconfig).await {
                if client.apiserver_version().await.is_ok() {
                    return Ok(client);
                }
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the API server behind {} did not answer within 60 s",
                kubeconfig.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn install_crds(client: &Client) -> anyhow::Result<usize> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crds = kruise_api::member_crds();
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let pp = PatchParams::apply("kruise-local-demo").force();
        api.patch(&name, &pp, &Patch::Apply(crd))
            .await
            .with_context(|| format!("installing CRD {name}"))?;
    }
    Ok(crds.len())
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

impl DemoArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let DemoArgs {
            state_dir,
            nodes,
            exit_when_ready,
        } = self;
        std::fs::create_dir_all(&state_dir)?;
        let state_dir = state_dir.canonicalize()?;
        println!(
            "kruise-rs demo: {} member clusters, {nodes} nodes each, state in {}",
            CLUSTERS.len(),
            state_dir.display()
        );
        let mut children = Children(Vec::new());
        for (name, region) in CLUSTERS {
            children
                .0
                .push(spawn_cluster(&state_dir, name, region, nodes)?);
        }
        let mut clients = Vec::new();
        for (name, region) in CLUSTERS {
            let kc = state_dir.join(format!("{name}.kubeconfig"));
            let client = wait_for_api(&kc).await?;
            let n = install_crds(&client).await?;
            println!("  cluster {name:<6} region {region}: API up, {n} kruise CRDs installed, kubeconfig {}", kc.display());
            clients.push((name, kc, client));
        }
        match sibling_binary("kruise-agent") {
            Some(agent) => {
                for (name, kc, _) in &clients {
                    let log = std::fs::File::create(state_dir.join(name).join("kruise-agent.log"))?;
                    children.0.push(
                        Command::new(&agent).env("KUBECONFIG", kc).stdout(Stdio::null()).stderr(log).spawn().context("starting kruise-agent")?,
                    );
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                let exited = children.0.iter_mut().rev().take(clients.len()).filter_map(|c| c.try_wait().ok().flatten()).count();
                if exited > 0 {
                    println!("  kruise-agent: {exited} of {} exited at start; see {}/*/kruise-agent.log", clients.len(), state_dir.display());
                } else {
                    println!("  kruise-agent: one per cluster");
                }
            }
            None => println!("  kruise-agent: not built yet (cargo build -p kruise-agent); workloads will not get pods"),
        }
        match sibling_binary("kruise-daemon") {
            Some(_) => println!("  kruise-daemon: available (one per node is started by the agent's chart; not needed for this demo)"),
            None => println!("  kruise-daemon: not built yet"),
        }
        println!(
            "  kruise-hub: not built yet (federated placement across the clusters comes with it)"
        );

        // The walk-through's CloneSet in the first cluster.
        let (first, _, client) = &clients[0];
        let gvk = GroupVersionKind::gvk("apps.kruise.io", "v1alpha1", "CloneSet");
        let ar = ApiResource::from_gvk_with_plural(&gvk, "clonesets");
        let clonesets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
        let seed: DynamicObject =
            serde_yaml::from_str(SEED_CLONESET).context("parsing the seed CloneSet")?;
        if clonesets.get_opt("demo-clone").await?.is_none() {
            clonesets
                .create(&PostParams::default(), &seed)
                .await
                .context("creating demo-clone")?;
        }
        println!("applied CloneSet demo-clone (5 replicas, in-place updates) to cluster {first}");

        let started = Instant::now();
        let mut last = String::new();
        loop {
            let mut lines = Vec::new();
            let mut total_ready = 0;
            for (name, _, client) in &clients {
                let node_list = Api::<Node>::all(client.clone())
                    .list(&ListParams::default())
                    .await?;
                let pods = Api::<Pod>::all(client.clone())
                    .list(&ListParams::default())
                    .await?;
                let r = pods.items.iter().filter(|p| ready(p)).count();
                total_ready += if *name == *first { r } else { 0 };
                lines.push(format!(
                    "  {name:<6} nodes {:>2}  pods {:>3}  ready {:>3}",
                    node_list.items.len(),
                    pods.items.len(),
                    r
                ));
            }
            let table = lines.join("\n");
            if table != last {
                println!("[{:>5.1}s]\n{table}", started.elapsed().as_secs_f64());
                last = table;
            }
            if total_ready >= 5 || started.elapsed() > Duration::from_secs(60) {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        println!("\nplacement:");
        println!(
            "  {:<8} {:<8} {:<24} {:<16} {}",
            "CLUSTER", "REGION", "POD", "NODE", "ZONE"
        );
        for ((name, _, client), (_, region)) in clients.iter().zip(CLUSTERS) {
            let nodes = Api::<Node>::all(client.clone())
                .list(&ListParams::default())
                .await?;
            let zone_of = |n: &str| {
                nodes
                    .items
                    .iter()
                    .find(|x| x.metadata.name.as_deref() == Some(n))
                    .and_then(|x| {
                        x.metadata
                            .labels
                            .as_ref()?
                            .get("topology.kubernetes.io/zone")
                            .cloned()
                    })
                    .unwrap_or_default()
            };
            for p in Api::<Pod>::all(client.clone())
                .list(&ListParams::default())
                .await?
                .items
            {
                let node = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default();
                println!(
                    "  {name:<8} {region:<8} {:<24} {node:<16} {}",
                    p.metadata.name.clone().unwrap_or_default(),
                    zone_of(&node)
                );
            }
        }
        println!(
            "\ntry: kubectl --kubeconfig {} get clone,pods",
            clients[0].1.display()
        );
        if exit_when_ready {
            return Ok(());
        }
        println!("running until Ctrl-C");
        tokio::signal::ctrl_c().await?;
        println!("stopping");
        drop(children);
        Ok(())
    }
}
