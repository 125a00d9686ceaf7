//! Harness for end-to-end tests: a real `kruise-local` and a real `kruise-agent` process per test,
//! each with its own state directory and free ports, talked to with kube-rs.

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use k8s_openapi::api::core::v1::{Node, Pod};
use kruise_api::apps::v1alpha1::cloneset::CloneSet;
use kube::api::ListParams;
use kube::{Api, Client, Config};

/// Serialises the tests in this binary: each starts a cluster, and the machine is small.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Directory holding the workspace binaries: `$KRUISE_BIN_DIR` when set (a private copy, safe
/// from other builds sharing the target directory), else next to this test's `kruise-agent`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KRUISE_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_BIN_EXE_kruise-agent"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A process killed when dropped.
pub struct Proc {
    child: Child,
    /// Log file of the process.
    pub log: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, log: PathBuf) -> anyhow::Result<Self> {
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        Ok(Self { child, log })
    }

    /// Kills the process now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of the log.
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it returns `Some`, or fails after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {secs}s waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A local cluster with an agent.
pub struct Env {
    /// Temp dir (state, logs).
    pub dir: tempfile::TempDir,
    /// kruise-local.
    pub cluster: Proc,
    /// kruise-agent(s).
    pub agents: Vec<Proc>,
    /// Admin client.
    pub client: Client,
    /// Path of the kubeconfig.
    pub kubeconfig: PathBuf,
}

impl Env {
    /// Starts kruise-local with `nodes` nodes and the member CRDs (plus `extra` flags).
    pub async fn cluster(nodes: u32, extra: &[&str]) -> anyhow::Result<Env> {
        let local = bin_dir().join("kruise-local");
        if !local.exists() {
            bail!(
                "{} is missing: build it first (cargo build -p kruise-local) with the same target dir",
                local.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        let mut cmd = Command::new(local);
        cmd.args(["run", "--name", "e2e", "--listen", "127.0.0.1:0"])
            .arg("--nodes")
            .arg(nodes.to_string())
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--crds-dir")
            .arg(workspace_root().join("charts/kruise-agent/crds"))
            .args(extra);
        let cluster = Proc::spawn(cmd, dir.path().join("kruise-local.log"))?;
        let kc = kubeconfig.clone();
        eventually(30, "kubeconfig written", || {
            let kc = kc.clone();
            async move { (std::fs::metadata(&kc).map(|m| m.len() > 0).unwrap_or(false)).then_some(()) }
        })
        .await
        .with_context(|| cluster.tail())?;
        let kcfg = kube::config::Kubeconfig::read_from(&kubeconfig)?;
        let config = Config::from_custom_kubeconfig(kcfg, &Default::default()).await?;
        let client = Client::try_from(config)?;
        let nodes_api: Api<Node> = Api::all(client.clone());
        eventually(30, "Ready nodes", || {
            let nodes_api = nodes_api.clone();
            async move {
                let list = nodes_api.list(&ListParams::default()).await.ok()?;
                let ready = list.items.iter().filter(|n| {
                    n.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                });
                (ready.count() as u32 >= nodes).then_some(())
            }
        })
        .await
        .with_context(|| cluster.tail())?;
        let cs_api: Api<CloneSet> = Api::namespaced(client.clone(), "default");
        eventually(30, "CloneSet served", || {
            let cs_api = cs_api.clone();
            async move { cs_api.list(&ListParams::default()).await.ok().map(|_| ()) }
        })
        .await?;
        Ok(Env {
            dir,
            cluster,
            agents: Vec::new(),
            client,
            kubeconfig,
        })
    }

    /// Starts an agent with extra flags; returns its index.
    pub fn start_agent(&mut self, extra: &[&str]) -> anyhow::Result<usize> {
        let n = self.agents.len();
        let mut cmd = Command::new(bin_dir().join("kruise-agent"));
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .args(["--metrics-addr", "127.0.0.1:0", "--retry-period-ms", "300"])
            .args([
                "--lease-duration-seconds",
                "3",
                "--renew-deadline-seconds",
                "2",
            ])
            .args(extra);
        let p = Proc::spawn(cmd, self.dir.path().join(format!("agent-{n}.log")))?;
        self.agents.push(p);
        Ok(n)
    }

    /// Starts kruise-local and one agent.
    pub async fn start(nodes: u32) -> anyhow::Result<Env> {
        let mut env = Env::cluster(nodes, &[]).await?;
        env.start_agent(&[])?;
        Ok(env)
    }

    /// Logs of everything, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = format!("--- kruise-local\n{}\n", self.cluster.tail());
        for (i, a) in self.agents.iter().enumerate() {
            out.push_str(&format!("--- agent {i}\n{}\n", a.tail()));
        }
        out
    }

    /// Pods of a CloneSet (by the `app` label), sorted by name.
    pub async fn pods(&self, app: &str) -> Vec<Pod> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), "default");
        let mut items = api
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        items
    }

    /// Active pods (not terminating).
    pub async fn active_pods(&self, app: &str) -> Vec<Pod> {
        self.pods(app)
            .await
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect()
    }

    /// Waits until `n` active pods are Running and Ready.
    pub async fn wait_ready(&self, app: &str, n: usize, secs: u64) -> anyhow::Result<Vec<Pod>> {
        eventually(secs, &format!("{n} ready pods of {app}"), || async {
            let pods = self.active_pods(app).await;
            (pods.len() == n && pods.iter().all(kruise_agent::pods::is_running_and_ready))
                .then_some(pods)
        })
        .await
        .with_context(|| self.logs())
    }

    /// Waits until the agent has registered its mutating webhooks (pods created earlier miss
    /// the pod webhook).
    pub async fn wait_webhooks(&self) -> anyhow::Result<()> {
        let api: Api<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration> =
            Api::all(self.client.clone());
        eventually(30, "mutating webhooks registered", || async {
            api.get_opt("kruise-mutating-webhook-configuration")
                .await
                .ok()
                .flatten()
                .map(|_| ())
        })
        .await
        .with_context(|| self.logs())
    }

    /// The CloneSet.
    pub async fn cloneset(&self, name: &str) -> anyhow::Result<CloneSet> {
        let api: Api<CloneSet> = Api::namespaced(self.client.clone(), "default");
        Ok(api.get(name).await?)
    }

    /// CloneSet API.
    pub fn clonesets(&self) -> Api<CloneSet> {
        Api::namespaced(self.client.clone(), "default")
    }
}

/// A CloneSet manifest: `app` label, `replicas`, image, and extra spec fields merged in.
pub fn cloneset(name: &str, replicas: i32, image: &str, extra: serde_json::Value) -> CloneSet {
    let mut v = serde_json::json!({
        "apiVersion": "apps.kruise.io/v1alpha1",
        "kind": "CloneSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]}
            }
        }
    });
    if let Some(obj) = extra.as_object() {
        for (k, val) in obj {
            v["spec"][k] = val.clone();
        }
    }
    serde_json::from_value(v).expect("valid CloneSet")
}

/// Names and UIDs of pods.
pub fn identities(pods: &[Pod]) -> Vec<(String, String)> {
    pods.iter()
        .map(|p| {
            (
                p.metadata.name.clone().unwrap_or_default(),
                p.metadata.uid.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// Advanced StatefulSet API (v1beta1) in `default`.
pub fn statefulsets(env: &Env) -> Api<kruise_api::apps::v1beta1::StatefulSet> {
    Api::namespaced(env.client.clone(), "default")
}

/// An Advanced StatefulSet manifest (v1beta1): `app` label, `replicas`, image, and extra spec
/// fields merged in.
pub fn statefulset(
    name: &str,
    replicas: i32,
    image: &str,
    extra: serde_json::Value,
) -> kruise_api::apps::v1beta1::StatefulSet {
    let mut v = serde_json::json!({
        "apiVersion": "apps.kruise.io/v1beta1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}],
                         "readinessGates": [{"conditionType": "InPlaceUpdateReady"}]}
            }
        }
    });
    if let Some(obj) = extra.as_object() {
        for (k, val) in obj {
            v["spec"][k] = val.clone();
        }
    }
    serde_json::from_value(v).expect("valid StatefulSet")
}

/// Sends an AdmissionReview straight to the validating webhook `hook_name` the agent registered
/// (URL and caBundle from its ValidatingWebhookConfiguration).
pub async fn call_validating_webhook_named(
    env: &Env,
    hook_name: &str,
    review: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    use base64::Engine;
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    let api: Api<ValidatingWebhookConfiguration> = Api::all(env.client.clone());
    let vwc = eventually(30, "webhook configuration registered", || async {
        api.get_opt("kruise-validating-webhook-configuration")
            .await
            .ok()
            .flatten()
    })
    .await?;
    let hook = vwc
        .webhooks
        .unwrap_or_default()
        .into_iter()
        .find(|w| w.name == hook_name)
        .with_context(|| hook_name.to_string())?;
    let url = hook.client_config.url.context("url")?;
    let pem = String::from_utf8(hook.client_config.ca_bundle.context("caBundle")?.0)?;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64)?;
    let parsed: http::Uri = url.parse()?;
    let base: http::Uri =
        format!("https://{}", parsed.authority().context("authority")?).parse()?;
    let mut cfg = Config::new(base);
    cfg.root_cert = Some(vec![der]);
    let client = Client::try_from(cfg)?;
    let req = http::Request::post(parsed.path())
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&review)?)?;
    Ok(client.request::<serde_json::Value>(req).await?)
}
