//! `kruise-local demo` end to end with real processes: the hub (embedded store, then three
//! replicas on etcd), three member clusters, agents and node daemons. Checks the hub through the
//! kubeconfig the demo writes (clusters Ready, the UnitedDeployment stored), then sends SIGINT and
//! checks that every process the demo started has exited.
//!
//! Needs `kruise-hub`, `kruise-agent` and `kruise-daemon` next to `kruise-local` (build them, or
//! point `KRUISE_BIN_DIR` at a directory holding all four).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use k8s_openapi::api::core::v1::Node;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use rustix::process::{kill_process, Pid, Signal};
use serde_json::Value;

const NODES: usize = 2;

fn kruise_local() -> PathBuf {
    match std::env::var_os("KRUISE_BIN_DIR") {
        Some(dir) => Path::new(&dir).join("kruise-local"),
        None => PathBuf::from(env!("CARGO_BIN_EXE_kruise-local")),
    }
}

/// A running `kruise-local demo`; interrupted (then killed) on drop so a failed test leaves
/// nothing behind.
struct Demo {
    child: Child,
    stdout: Arc<Mutex<String>>,
}

impl Demo {
    /// Starts the demo with `--timeout` (seconds to wait for placement) and `extra` flags.
    fn start(state_dir: &Path, timeout: u64, extra: &[&str]) -> anyhow::Result<Demo> {
        let bin = kruise_local();
        for sibling in ["kruise-hub", "kruise-agent", "kruise-daemon"] {
            let path = bin.with_file_name(sibling);
            assert!(
                path.is_file(),
                "{} is missing: build it (cargo build -p kruise-hub -p kruise-agent -p kruise-daemon) \
                 or set KRUISE_BIN_DIR",
                path.display()
            );
        }
        let mut child = Command::new(&bin)
            .arg("demo")
            .arg("--state-dir")
            .arg(state_dir)
            .args([
                "--nodes",
                &NODES.to_string(),
                "--timeout",
                &timeout.to_string(),
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting kruise-local demo")?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let pipe = child.stdout.take().context("no stdout pipe")?;
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("demo| {line}");
                if let Ok(mut out) = sink.lock() {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        });
        Ok(Demo { child, stdout })
    }

    fn output(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until stdout contains `text`; fails if the demo exits first.
    async fn wait_for_output(&mut self, text: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.output().contains(text) {
            if let Some(status) = self.child.try_wait()? {
                bail!("the demo exited ({status}) before printing {text:?}");
            }
            if Instant::now() > deadline {
                bail!("the demo did not print {text:?} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    fn interrupt(&self) {
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process(pid, Signal::INT);
        }
    }

    /// SIGINT, then the exit status within `timeout`.
    async fn stop(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        self.interrupt();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("the demo did not exit within {timeout:?} of SIGINT");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.interrupt();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Live children of `parent` by executable name (`/proc/PID/comm`).
fn children(parent: u32) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the parenthesised command: state, ppid, ...
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next().and_then(|p| p.parse().ok()));
        if ppid == Some(parent) && state != Some("Z") {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            out.insert(pid, comm.trim().to_string());
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(") ")?;
            rest.split_whitespace().next().map(|s| s != "Z")
        })
        .unwrap_or(false)
}

async fn client(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(Client::try_from(config)?)
}

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1alpha1", kind), plural)
}

/// Runs one demo and checks the hub, the clusters, the output and the shutdown.
async fn run_demo(extra: &[&str], hub_replicas: usize, etcd: bool) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let state = tmp.path().join("demo");
    let mut demo = Demo::start(&state, 10, extra)?;
    demo.wait_for_output("running until Ctrl-C", Duration::from_secs(240))
        .await?;
    let out = demo.output();
    assert!(
        out.contains("Placement of UnitedDeployment default/shop")
            || out.contains("placement not finished"),
        "the demo reports how placement went:\n{out}"
    );
    assert!(
        out.contains("applied UnitedDeployment default/shop"),
        "{out}"
    );
    let hub_kc = state.join("hub.kubeconfig");
    assert!(
        out.contains(&format!("kubectl --kubeconfig {} get ud", hub_kc.display())),
        "the kubectl commands name the hub kubeconfig:\n{out}"
    );

    // The hub, through the kubeconfig the demo wrote: three Ready clusters and the UD.
    let hub = client(&hub_kc).await?;
    let clusters: Api<DynamicObject> = Api::all_with(
        hub.clone(),
        &resource("federation.kruise.io", "ManagedCluster", "managedclusters"),
    );
    let mut ready: Vec<(String, String)> = Vec::new();
    for c in clusters.list(&ListParams::default()).await?.items {
        let value = serde_json::to_value(&c)?;
        let status = value
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .and_then(|c| c["status"].as_str())
            .unwrap_or("none")
            .to_string();
        let region = value
            .pointer("/metadata/labels/topology.kubernetes.io~1region")
            .and_then(Value::as_str)
            .unwrap_or_default();
        ready.push((
            format!("{}@{region}", c.metadata.name.unwrap_or_default()),
            status,
        ));
    }
    ready.sort();
    assert_eq!(
        ready,
        [
            ("member-r1@r1".to_string(), "True".to_string()),
            ("member-r2@r2".to_string(), "True".to_string()),
            ("member-r3@r3".to_string(), "True".to_string())
        ]
    );
    // Every other replica serves the same objects (they share the etcd).
    for i in 2..=hub_replicas {
        let kc = state.join(format!("hub-{i}.kubeconfig"));
        assert!(out.contains(&kc.display().to_string()), "{out}");
        let replica = client(&kc).await?;
        let seen: Api<DynamicObject> = Api::all_with(
            replica,
            &resource("federation.kruise.io", "ManagedCluster", "managedclusters"),
        );
        assert_eq!(seen.list(&ListParams::default()).await?.items.len(), 3);
    }
    let uds: Api<DynamicObject> = Api::namespaced_with(
        hub.clone(),
        "default",
        &resource("apps.kruise.io", "UnitedDeployment", "uniteddeployments"),
    );
    let shop = serde_json::to_value(uds.get("shop").await?)?;
    assert_eq!(shop.pointer("/spec/replicas"), Some(&Value::from(10)));

    // Each member's kubeconfig reaches a cluster whose nodes are in its region.
    for region in ["r1", "r2", "r3"] {
        let member = client(&state.join(format!("member-{region}.kubeconfig"))).await?;
        let nodes = Api::<Node>::all(member)
            .list(&ListParams::default())
            .await?;
        assert_eq!(nodes.items.len(), NODES);
        for n in &nodes.items {
            let labels = n.metadata.labels.clone().unwrap_or_default();
            assert_eq!(
                labels
                    .get("topology.kubernetes.io/region")
                    .map(String::as_str),
                Some(region)
            );
        }
    }
    let join = std::fs::read_to_string(state.join("member-r1/hub-join.yaml"))?;
    assert_eq!(
        join.matches("https://127.0.0.1:").count(),
        hub_replicas,
        "the join file lists every hub replica:\n{join}"
    );

    // Every process the demo started, then SIGINT: all of them exit with the demo.
    let pid = demo.child.id();
    let kids = children(pid);
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for name in kids.values() {
        *by_name.entry(name.as_str()).or_default() += 1;
    }
    let mut expected = BTreeMap::from([
        ("kruise-local", 3),
        ("kruise-hub", hub_replicas),
        ("kruise-agent", 3),
        ("kruise-daemon", 3 * NODES),
    ]);
    if etcd {
        expected.insert("etcd", 1);
    }
    assert_eq!(by_name, expected, "children of the demo: {kids:?}");
    let status = demo.stop(Duration::from_secs(60)).await?;
    assert!(
        status.success(),
        "the demo exits cleanly on SIGINT: {status}"
    );
    let left: Vec<(&u32, &String)> = kids.iter().filter(|(pid, _)| alive(**pid)).collect();
    assert!(
        left.is_empty(),
        "processes left after the demo exited: {left:?}"
    );
    let out = demo.output();
    let total: usize = expected.values().sum();
    assert!(
        out.contains(&format!("stopped {total} processes\n")),
        "every child stopped within the grace period:\n{out}"
    );
    Ok(())
}

/// A UnitedDeployment whose subsets name no joined cluster (so no hub controller places it),
/// plus the Works a hub would write for it, by hand: 2 + 1 + 1 pods over the three members.
fn hand_placed_manifest() -> String {
    let mut docs = vec![r#"apiVersion: apps.kruise.io/v1alpha1
kind: UnitedDeployment
metadata: {name: by-hand, namespace: default}
spec:
  replicas: 4
  selector: {matchLabels: {app: by-hand}}
  template:
    cloneSetTemplate:
      metadata: {labels: {app: by-hand}}
      spec:
        selector: {matchLabels: {app: by-hand}}
        template:
          metadata: {labels: {app: by-hand}}
          spec: {containers: [{name: main, image: registry.example.com/by-hand:1}]}
  topology:
    subsets: [{name: elsewhere, clusters: [not-joined]}]
"#
    .to_string()];
    for (region, replicas) in [("r1", 2), ("r2", 1), ("r3", 1)] {
        docs.push(format!(
            r#"apiVersion: federation.kruise.io/v1alpha1
kind: Work
metadata: {{name: by-hand-{region}, namespace: default}}
spec:
  cluster: member-{region}
  workload:
    apiVersion: apps.kruise.io/v1alpha1
    kind: CloneSet
    metadata:
      name: by-hand-{region}
      namespace: default
      labels: {{app: by-hand, apps.kruise.io/subset-name: subset-{region}}}
    spec:
      replicas: {replicas}
      selector: {{matchLabels: {{app: by-hand, apps.kruise.io/subset-name: subset-{region}}}}}
      template:
        metadata: {{labels: {{app: by-hand, apps.kruise.io/subset-name: subset-{region}}}}}
        spec: {{containers: [{{name: main, image: registry.example.com/by-hand:1}}]}}
"#
        ));
    }
    docs.join("---\n")
}

/// `--manifest` with Works placed by hand: progress follows them to a placement table, and
/// `--exit-when-ready` ends the demo (and its children) once every pod is Ready.
async fn run_hand_placed() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let manifest = tmp.path().join("by-hand.yaml");
    std::fs::write(&manifest, hand_placed_manifest())?;
    let manifest = manifest.display().to_string();
    let mut demo = Demo::start(
        &tmp.path().join("demo"),
        120,
        &["--manifest", &manifest, "--exit-when-ready"],
    )?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = demo.child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            bail!("the demo did not exit within 300 s:\n{}", demo.output());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let out = demo.output();
    assert!(
        status.success(),
        "placement finished, exit 0 ({status}):\n{out}"
    );
    for line in [
        "applied UnitedDeployment default/by-hand",
        "applied Work default/by-hand-r1",
        "member-r1  works 1  desired 2  pods 2  ready 2  updated 2",
        "member-r3  works 1  desired 1  pods 1  ready 1  updated 1",
        "Placement of UnitedDeployment default/by-hand (4 pods Ready):",
        "CLUSTER    REGION  ZONE  SUBSET     PODS  READY",
        "TOTAL                               4     4",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("member-r")).collect();
    let pods: usize = rows
        .iter()
        .filter_map(|l| l.split_whitespace().nth(4)?.parse::<usize>().ok())
        .sum();
    assert_eq!(pods, 4, "placement rows: {rows:?}");
    assert!(
        rows.iter().any(|l| l.starts_with("member-r2  r2      r2-")),
        "member-r2's pod is in a zone of r2: {rows:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_the_federation_and_stops_every_process() -> anyhow::Result<()> {
    run_demo(&[], 1, false).await?;
    run_hand_placed().await?;
    if kruise_apiserver::store::etcd_process::etcd_binary().is_none() {
        eprintln!("skipping the --etcd run: etcd is not installed (apt-get install etcd-server)");
        return Ok(());
    }
    run_demo(&["--etcd"], 3, true).await
}
