//! End-to-end: kruise-local + kruise-agent + one kruise-daemon per simulated node (on the node's
//! CRI socket), driven with kube-rs and observed through the CRI simulator.
//!
//! Needs the binaries in the same target directory:
//! `cargo build -p kruise-local -p kruise-agent -p kruise-daemon && cargo test -p kruise-agent --test daemon_e2e`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use common::{bin_dir, eventually, Env, SERIAL};
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Node, Pod};
use kruise_api::apps::v1alpha1::containerrecreaterequest::ContainerRecreateRequest;
use kruise_api::apps::v1alpha1::imagepulljob::ImagePullJob;
use kruise_api::apps::v1alpha1::nodeimage::NodeImage;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

/// A kruise-daemon process, killed when dropped.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn socket(env: &Env, node: &str) -> PathBuf {
    env.dir
        .path()
        .join("state/nodes")
        .join(node)
        .join("cri.sock")
}

fn start_daemon(env: &Env, node: &str) -> anyhow::Result<Daemon> {
    let bin = bin_dir().join("kruise-daemon");
    if !bin.exists() {
        bail!(
            "{} is missing: build it first (cargo build -p kruise-daemon)",
            bin.display()
        );
    }
    let log = env.dir.path().join(format!("daemon-{node}.log"));
    let out = std::fs::File::create(&log)?;
    let child = Command::new(bin)
        .env("KUBECONFIG", &env.kubeconfig)
        .args(["--node-name", node, "--runtime-endpoint"])
        .arg(format!("unix://{}", socket(env, node).display()))
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out))
        .spawn()
        .context("starting kruise-daemon")?;
    Ok(Daemon { child, log })
}

fn daemon_logs(daemons: &[Daemon]) -> String {
    daemons
        .iter()
        .map(|d| {
            let text = std::fs::read_to_string(&d.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            format!(
                "--- {}\n{}",
                d.log.display(),
                lines[lines.len().saturating_sub(10)..].join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn node_names(env: &Env) -> anyhow::Result<Vec<String>> {
    let nodes: Api<Node> = Api::all(env.client.clone());
    let mut names: Vec<String> = nodes
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    names.sort();
    Ok(names)
}

/// Starts a cluster of `nodes` nodes, an agent with `agent_args`, and daemons on `daemon_nodes`
/// (all nodes when `None`).
async fn setup(
    nodes: u32,
    agent_args: &[&str],
    daemon_nodes: Option<usize>,
) -> anyhow::Result<(Env, Vec<String>, Vec<Daemon>)> {
    let mut env = Env::cluster(nodes, &[]).await?;
    env.start_agent(agent_args)?;
    let names = node_names(&env).await?;
    let with_daemon = daemon_nodes.unwrap_or(names.len());
    let mut daemons = Vec::new();
    for n in &names[..with_daemon] {
        eventually(20, "node CRI socket", || async {
            socket(&env, n).exists().then_some(())
        })
        .await?;
        daemons.push(start_daemon(&env, n)?);
    }
    let nis: Api<NodeImage> = Api::all(env.client.clone());
    eventually(30, "one NodeImage per node", || async {
        let list = nis.list(&ListParams::default()).await.ok()?;
        (list.items.len() == names.len()).then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    Ok((env, names, daemons))
}

async fn has_image(sock: &std::path::Path, image: &str) -> bool {
    let Ok(mut c) = kruise_daemon::cri::connect(&format!("unix://{}", sock.display())).await else {
        return false;
    };
    let req = cri::ImageStatusRequest {
        image: Some(cri::ImageSpec {
            image: image.to_string(),
            ..Default::default()
        }),
        verbose: false,
    };
    c.images
        .image_status(req)
        .await
        .is_ok_and(|r| r.into_inner().image.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn image_pull_job_pulls_on_labelled_nodes_one_at_a_time() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let (env, names, daemons) = setup(5, &[], None).await?;
    let nodes: Api<Node> = Api::all(env.client.clone());
    let labelled: BTreeSet<String> = names[..3].iter().cloned().collect();
    for n in &labelled {
        nodes
            .patch(
                n,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"pull": "yes"}}})),
            )
            .await?;
    }
    // NodeImages follow the node labels.
    let nis: Api<NodeImage> = Api::all(env.client.clone());
    eventually(20, "NodeImage labels copied", || async {
        let list = nis
            .list(&ListParams::default().labels("pull=yes"))
            .await
            .ok()?;
        (list.items.len() == 3).then_some(())
    })
    .await?;

    // 500 MB at 2 ms/MB: each pull takes about a second of simulated time.
    let image = "example.com/big:1.0-size-500mb";
    let first_seen: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let sampler = {
        let first_seen = first_seen.clone();
        let socks: Vec<(String, PathBuf)> =
            names.iter().map(|n| (n.clone(), socket(&env, n))).collect();
        tokio::spawn(async move {
            loop {
                for (n, s) in &socks {
                    if has_image(s, image).await {
                        first_seen
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(n.clone())
                            .or_insert_with(Instant::now);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let jobs: Api<ImagePullJob> = Api::namespaced(env.client.clone(), "default");
    let job: ImagePullJob = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ImagePullJob",
        "metadata": {"name": "warm", "namespace": "default"},
        "spec": {"image": image, "parallelism": 1, "selector": {"matchLabels": {"pull": "yes"}},
                 "completionPolicy": {"type": "Always"}}
    }))?;
    jobs.create(&PostParams::default(), &job).await?;

    // While it runs, never more than one node holds an unfinished entry of the job.
    let worst = Arc::new(AtomicUsize::new(0));
    let st = eventually(90, "job SUCCEED 3", || {
        let (jobs, nis, worst) = (jobs.clone(), nis.clone(), worst.clone());
        async move {
            let list = nis.list(&ListParams::default()).await.ok()?;
            let active = list
                .items
                .iter()
                .filter(|ni| {
                    let spec = ni
                        .spec
                        .images
                        .as_ref()
                        .and_then(|m| m.get("example.com/big"));
                    let done = ni
                        .status
                        .as_ref()
                        .and_then(|s| s.image_statuses.as_ref())
                        .and_then(|m| m.get("example.com/big"))
                        .is_some_and(|s| s.tags.iter().any(|t| t.phase == "Succeeded"));
                    spec.is_some() && !done
                })
                .count();
            worst.fetch_max(active, Ordering::SeqCst);
            let st = jobs.get("warm").await.ok()?.status?;
            (st.succeeded == Some(3) && st.completion_time.is_some()).then_some(st)
        }
    })
    .await
    .with_context(|| format!("{}\n{}", env.logs(), daemon_logs(&daemons)))?;
    // The last pull can finish between two samples: let the sampler see it before stopping it.
    let sampled = first_seen.clone();
    let want = labelled.len();
    eventually(5, "sampler saw every pulled image", || {
        let sampled = sampled.clone();
        async move { (sampled.lock().unwrap_or_else(|e| e.into_inner()).len() >= want).then_some(()) }
    })
    .await?;
    sampler.abort();
    assert_eq!((st.desired, st.active, st.failed), (3, Some(0), Some(0)));
    assert_eq!(st.message.as_deref(), Some("job has completed"));
    let worst = worst.load(Ordering::SeqCst);
    assert!(
        worst <= 1,
        "{worst} nodes pulled at once with parallelism 1"
    );

    // Exactly the labelled nodes have the image, as the runtimes report it.
    for n in &names {
        assert_eq!(
            has_image(&socket(&env, n), image).await,
            labelled.contains(n),
            "node {n}"
        );
    }
    let seen = first_seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), labelled);
    let mut times: Vec<Instant> = seen.values().copied().collect();
    times.sort();
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(700),
            "pulls overlapped: images appeared {gap:?} apart"
        );
    }
    // Each labelled NodeImage reports the pull, the others carry nothing.
    for ni in nis.list(&ListParams::default()).await?.items {
        let ok = ni.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
        assert_eq!(
            ok == 1,
            labelled.contains(&ni.name_any()),
            "{}",
            ni.name_any()
        );
    }

    // Deleting the job releases its entries.
    jobs.delete("warm", &DeleteParams::default()).await?;
    eventually(30, "entries released", || async {
        let list = nis.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .all(|ni| ni.spec.images.as_ref().is_none_or(|m| m.is_empty()))
            .then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unpullable_image_fails_after_the_backoff_limit() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let (env, names, daemons) = setup(2, &[], None).await?;
    let jobs: Api<ImagePullJob> = Api::namespaced(env.client.clone(), "default");
    let job: ImagePullJob = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ImagePullJob",
        "metadata": {"name": "broken", "namespace": "default"},
        "spec": {"image": "example.com/unpullable:1", "selector": {"names": [names[0]]},
                 "pullPolicy": {"backoffLimit": 1, "timeoutSeconds": 10},
                 "completionPolicy": {"type": "Always"}}
    }))?;
    jobs.create(&PostParams::default(), &job).await?;
    let st = eventually(90, "job FAILED 1", || async {
        let st = jobs.get("broken").await.ok()?.status?;
        st.completion_time.is_some().then_some(st)
    })
    .await
    .with_context(|| format!("{}\n{}", env.logs(), daemon_logs(&daemons)))?;
    assert_eq!((st.desired, st.succeeded, st.failed), (1, Some(0), Some(1)));
    assert_eq!(st.failed_nodes, Some(vec![names[0].clone()]));
    assert_eq!(st.message.as_deref(), Some("job has completed"));
    let nis: Api<NodeImage> = Api::all(env.client.clone());
    let ni = nis.get(&names[0]).await?;
    let tag = ni
        .status
        .as_ref()
        .and_then(|s| s.image_statuses.as_ref())
        .and_then(|m| m.get("example.com/unpullable"))
        .and_then(|s| s.tags.first().cloned())
        .context("tag status")?;
    assert_eq!(tag.phase, "Failed");
    let msg = tag.message.unwrap_or_default();
    assert!(
        msg.contains("not found"),
        "the runtime's reason is reported: {msg}"
    );
    assert!(!has_image(&socket(&env, &names[1]), "example.com/unpullable:1").await);
    Ok(())
}

fn restart_counts(p: &Pod) -> BTreeMap<String, i32> {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| (c.name.clone(), c.restart_count))
                .collect()
        })
        .unwrap_or_default()
}

async fn ready_pod(
    env: &Env,
    name: &str,
    node: Option<&str>,
    containers: &[&str],
) -> anyhow::Result<Pod> {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let cs: Vec<serde_json::Value> = containers
        .iter()
        .map(|c| json!({"name": c, "image": format!("example.com/{c}:1")}))
        .collect();
    let mut spec = json!({"containers": cs});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}),
    )?;
    pods.create(&PostParams::default(), &pod).await?;
    eventually(30, "pod ready", || async {
        let p = pods.get(name).await.ok()?;
        kruise_agent::pods::is_running_and_ready(&p).then_some(p)
    })
    .await
}

fn crr(
    name: &str,
    pod: &str,
    containers: &[&str],
    strategy: serde_json::Value,
) -> anyhow::Result<ContainerRecreateRequest> {
    let cs: Vec<serde_json::Value> = containers.iter().map(|c| json!({"name": c})).collect();
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ContainerRecreateRequest",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"podName": pod, "containers": cs, "strategy": strategy}
    }))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recreate_request_restarts_two_of_three_containers_in_order() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let (env, _names, daemons) = setup(2, &[], None).await?;
    let before = ready_pod(&env, "target", None, &["a", "b", "c"]).await?;
    let uid = before.uid();
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");

    // Record when each container's restart count first moves.
    let moved: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let sampler = {
        let (moved, pods) = (moved.clone(), pods.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(p) = pods.get("target").await {
                    for (c, n) in restart_counts(&p) {
                        if n > 0 {
                            moved
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .entry(c)
                                .or_insert_with(Instant::now);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    let api: Api<ContainerRecreateRequest> = Api::namespaced(env.client.clone(), "default");
    api.create(
        &PostParams::default(),
        &crr(
            "restart-ab",
            "target",
            &["a", "b"],
            json!({"orderedRecreate": true}),
        )?,
    )
    .await?;
    let done = eventually(60, "request Completed", || async {
        let c = api.get("restart-ab").await.ok()?;
        (c.status.as_ref()?.phase == "Completed").then_some(c)
    })
    .await
    .with_context(|| format!("{}\n{}", env.logs(), daemon_logs(&daemons)))?;
    sampler.abort();
    let st = done.status.clone().context("status")?;
    let states: Vec<(String, String)> = st
        .container_recreate_states
        .iter()
        .flatten()
        .map(|s| (s.name.clone(), s.phase.clone()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("a".into(), "Succeeded".into()),
            ("b".into(), "Succeeded".into())
        ]
    );
    assert!(st.completion_time.is_some());
    let labels = done.labels();
    assert_eq!(labels.get("crr.apps.kruise.io/pod-uid"), uid.as_ref());
    assert_eq!(
        labels.get("crr.apps.kruise.io/node-name"),
        before.spec.as_ref().and_then(|s| s.node_name.as_ref())
    );
    eventually(10, "active label removed", || async {
        let c = api.get("restart-ab").await.ok()?;
        (!c.labels().contains_key("crr.apps.kruise.io/active")).then_some(())
    })
    .await?;

    let after = pods.get("target").await?;
    assert_eq!(after.uid(), uid, "the pod was not recreated");
    let counts = restart_counts(&after);
    assert_eq!((counts["a"], counts["b"], counts["c"]), (1, 1, 0));
    let moved = moved.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(!moved.contains_key("c"));
    assert!(
        moved["a"] < moved["b"],
        "a restarted before b (orderedRecreate)"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_fail_without_a_daemon_or_a_pod() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    // Two nodes, a daemon only on the first; a short daemon timeout instead of upstream's minute.
    let (env, names, daemons) = setup(2, &["--crr-daemon-timeout-seconds", "3"], Some(1)).await?;
    let lonely = names[1].clone();
    ready_pod(&env, "orphan", Some(&lonely), &["a"]).await?;
    let api: Api<ContainerRecreateRequest> = Api::namespaced(env.client.clone(), "default");
    let started = Instant::now();
    api.create(
        &PostParams::default(),
        &crr("no-daemon", "orphan", &["a"], json!({}))?,
    )
    .await?;
    let c = eventually(30, "request completed by the controller", || async {
        let c = api.get("no-daemon").await.ok()?;
        (c.status.as_ref()?.phase == "Completed").then_some(c)
    })
    .await
    .with_context(|| format!("{}\n{}", env.logs(), daemon_logs(&daemons)))?;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before the timeout"
    );
    let st = c.status.context("status")?;
    assert_eq!(
        st.message.as_deref(),
        Some("daemon has not responded for a long time")
    );
    assert_eq!(
        c.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("crr.apps.kruise.io/node-name")),
        Some(&lonely)
    );
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let p = pods.get("orphan").await?;
    assert_eq!(
        restart_counts(&p)["a"],
        0,
        "nothing restarted the container"
    );

    // A request whose pod goes away completes with "pod has gone".
    ready_pod(&env, "short-lived", Some(&lonely), &["a"]).await?;
    api.create(
        &PostParams::default(),
        &crr("gone", "short-lived", &["a"], json!({}))?,
    )
    .await?;
    pods.delete(
        "short-lived",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await?;
    let c = eventually(30, "request completed: pod gone", || async {
        let c = api.get("gone").await.ok()?;
        (c.status.as_ref()?.phase == "Completed").then_some(c)
    })
    .await
    .with_context(|| env.logs())?;
    assert_eq!(
        c.status.and_then(|s| s.message).as_deref(),
        Some("pod has gone")
    );
    Ok(())
}

/// Asks a workload to pre-download on `n` nodes at once.
fn pre_download_parallelism(
    meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    n: u32,
) {
    meta.annotations = Some(
        [(
            "apps.kruise.io/image-predownload-parallelism".to_string(),
            n.to_string(),
        )]
        .into(),
    );
}

/// Waits until `image` is in the runtime of every node that runs one of `pods`.
async fn wait_image_on_pod_nodes(
    env: &Env,
    pods: &[Pod],
    image: &str,
    daemons: &[Daemon],
) -> anyhow::Result<()> {
    let nodes: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    for n in nodes {
        let sock = socket(env, &n);
        eventually(60, "new image on the node of a pod", || async {
            has_image(&sock, image).await.then_some(())
        })
        .await
        .with_context(|| daemon_logs(daemons))?;
    }
    Ok(())
}

/// The pre-download job of `update_revision`'s container `main`, once the controller made it.
async fn pre_download_job(env: &Env, update_revision: &str) -> anyhow::Result<ImagePullJob> {
    let jobs: Api<ImagePullJob> = Api::namespaced(env.client.clone(), "default");
    eventually(30, "pre-download job", || async {
        jobs.get(&format!("{update_revision}-main")).await.ok()
    })
    .await
    .with_context(|| env.logs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_place_update_pre_downloads_the_new_image_on_the_pods_nodes() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let (env, _names, daemons) = setup(
        4,
        &["--feature-gates", "PreDownloadImageForInPlaceUpdate=true"],
        None,
    )
    .await?;
    let mut cs = common::cloneset(
        "web",
        8,
        "example.com/web:v1",
        json!({"updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": 1}}),
    );
    pre_download_parallelism(&mut cs.metadata, 4);
    env.clonesets().create(&PostParams::default(), &cs).await?;
    let before = env
        .wait_ready("web", 8, 60)
        .await
        .with_context(|| env.logs())?;

    // Paused: the new revision exists but no pod moves, so only the pre-download can pull.
    let image = "example.com/web:v2-size-200mb";
    env.clonesets()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "updateStrategy": {"paused": true},
                "template": {"spec": {"containers": [{"name": "main", "image": image}]}}
            }})),
        )
        .await?;
    let update_revision = eventually(30, "update revision", || async {
        let c = env.cloneset("web").await.ok()?;
        let st = c.status?;
        (st.observed_generation == c.metadata.generation).then_some(st.update_revision?)
    })
    .await?;
    let jobs: Api<ImagePullJob> = Api::namespaced(env.client.clone(), "default");
    let job = pre_download_job(&env, &update_revision).await?;
    assert_eq!(job.spec.image, image);
    assert_eq!(job.owner_references()[0].kind, "CloneSet");
    let revisions: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        Api::namespaced(env.client.clone(), "default");
    let rev = revisions.get(&update_revision).await?;
    assert_eq!(
        rev.labels()
            .get("apps.kruise.io/pre-predownload-created")
            .map(String::as_str),
        Some("true")
    );
    wait_image_on_pod_nodes(&env, &before, image, &daemons).await?;
    // Nothing was updated while paused: the pulls were the daemon's, not the kubelet's.
    let pods = env.active_pods("web").await;
    assert!(pods
        .iter()
        .all(|p| restart_counts(p).get("main") == Some(&0)));
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(env.client.clone(), "default");
    eventually(20, "CreatedImagePullJob event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("CreatedImagePullJob"))
            .then_some(())
    })
    .await?;

    // Resume: every pod updates in place, and once the revisions agree the job is removed.
    env.clonesets()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"updateStrategy": {"paused": false}}})),
        )
        .await?;
    eventually(90, "rollout finished", || async {
        let c = env.cloneset("web").await.ok()?;
        let st = c.status?;
        (st.updated_ready_replicas == 8 && st.current_revision == st.update_revision).then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    let after = env.active_pods("web").await;
    assert_eq!(common::identities(&after), common::identities(&before));
    eventually(30, "pre-download job deleted", || async {
        jobs.get_opt(&format!("{update_revision}-main"))
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn advanced_statefulset_pre_downloads_too() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let (env, _names, daemons) = setup(
        3,
        &["--feature-gates", "PreDownloadImageForInPlaceUpdate=true"],
        None,
    )
    .await?;
    let sets = common::statefulsets(&env);
    let mut set = common::statefulset(
        "db",
        5,
        "example.com/db:v1",
        json!({"podManagementPolicy": "Parallel",
               "updateStrategy": {"rollingUpdate": {"podUpdatePolicy": "InPlaceIfPossible",
                                                    "maxUnavailable": 2}}}),
    );
    pre_download_parallelism(&mut set.metadata, 3);
    sets.create(&PostParams::default(), &set).await?;
    let before = env
        .wait_ready("db", 5, 60)
        .await
        .with_context(|| env.logs())?;
    let image = "example.com/db:v2-size-100mb";
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {
            "updateStrategy": {"rollingUpdate": {"paused": true}},
            "template": {"spec": {"containers": [{"name": "main", "image": image}]}}
        }})),
    )
    .await?;
    let update_revision = eventually(30, "update revision", || async {
        let s = sets.get("db").await.ok()?;
        let st = s.status?;
        (st.observed_generation == s.metadata.generation).then_some(st.update_revision?)
    })
    .await?;
    let jobs: Api<ImagePullJob> = Api::namespaced(env.client.clone(), "default");
    let job = pre_download_job(&env, &update_revision).await?;
    assert_eq!(job.spec.image, image);
    assert_eq!(job.owner_references()[0].kind, "StatefulSet");
    wait_image_on_pod_nodes(&env, &before, image, &daemons).await?;
    sets.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"updateStrategy": {"rollingUpdate": {"paused": false}}}})),
    )
    .await?;
    eventually(90, "rollout finished and job deleted", || async {
        let st = sets.get("db").await.ok()?.status?;
        let done =
            st.updated_ready_replicas == Some(5) && st.current_revision == st.update_revision;
        let gone = jobs
            .get_opt(&format!("{update_revision}-main"))
            .await
            .ok()?
            .is_none();
        (done && gone).then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    let after = env.active_pods("db").await;
    assert_eq!(common::identities(&after), common::identities(&before));
    Ok(())
}
