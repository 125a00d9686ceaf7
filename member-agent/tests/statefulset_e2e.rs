//! End-to-end for the Advanced StatefulSet controller: kruise-local + kruise-agent processes,
//! driven with kube-rs, with pod watches checking ordering and unavailability as they happen.
//!
//! Needs `kruise-local` built into the same target directory:
//! `cargo build -p kruise-local -p kruise-agent && cargo test -p kruise-agent --test statefulset_e2e`.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use common::{
    call_validating_webhook_named, eventually, identities, statefulset, statefulsets, Env, SERIAL,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kruise_agent::pods;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

/// A watch of the pods of `app`, calling `f(view, event_pod, deleted)` after every event.
fn watch_pods(
    client: Client,
    app: &str,
    mut f: impl FnMut(&BTreeMap<String, Pod>, &Pod, bool) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let api: Api<Pod> = Api::namespaced(client, "default");
    let cfg = watcher::Config::default().labels(&format!("app={app}"));
    tokio::spawn(async move {
        let mut view: BTreeMap<String, Pod> = BTreeMap::new();
        let mut stream = watcher(api, cfg).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => {
                    view.insert(p.name_any(), p.clone());
                    f(&view, &p, false);
                }
                Ok(watcher::Event::Delete(p)) => {
                    view.remove(&p.name_any());
                    f(&view, &p, true);
                }
                _ => {}
            }
        }
    })
}

async fn patch_sts(env: &Env, name: &str, v: serde_json::Value) -> anyhow::Result<()> {
    statefulsets(env)
        .patch(name, &PatchParams::default(), &Patch::Merge(v))
        .await?;
    Ok(())
}

fn ordinal(name: &str) -> i32 {
    name.rsplit('-')
        .next()
        .and_then(|o| o.parse().ok())
        .unwrap_or(-1)
}

fn image(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

async fn claims(env: &Env) -> BTreeMap<String, String> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .map(|c| (c.name_any(), c.uid().unwrap_or_default()))
        .collect()
}

/// Waits until the set's status reports the generation and `updated/ready` counts.
async fn wait_status(
    env: &Env,
    name: &str,
    updated: i32,
    ready: i32,
    secs: u64,
) -> anyhow::Result<()> {
    eventually(
        secs,
        &format!("{name} status {updated} updated / {ready} ready"),
        || async {
            let s = statefulsets(env).get(name).await.ok()?;
            let st = s.status.as_ref()?;
            (st.observed_generation == s.metadata.generation
                && st.updated_replicas == updated
                && st.ready_replicas == ready
                && st.replicas == ready)
                .then_some(())
        },
    )
    .await
    .with_context(|| env.logs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ordered_ready_creates_in_order_and_deletes_in_reverse() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let mut env = Env::cluster(2, &["--readiness-delay-ms", "300"]).await?;
    env.start_agent(&[])?;
    env.wait_webhooks().await?;
    // (event, ordinal) in the order seen; violations of "lower ordinals Running+Ready first".
    let log: Arc<Mutex<Vec<(&'static str, i32)>>> = Arc::default();
    let bad: Arc<Mutex<Vec<String>>> = Arc::default();
    let (log2, bad2) = (log.clone(), bad.clone());
    let watch = watch_pods(env.client.clone(), "ord", move |view, p, deleted| {
        let o = ordinal(&p.name_any());
        let mut log = log2.lock().unwrap_or_else(|e| e.into_inner());
        let seen = |log: &Vec<(&str, i32)>, ev: &str| log.iter().any(|(e, x)| *e == ev && *x == o);
        if !deleted && p.metadata.deletion_timestamp.is_none() && !seen(&log, "create") {
            log.push(("create", o));
            for lower in 0..o {
                let ok = view
                    .get(&format!("ord-{lower}"))
                    .is_some_and(pods::is_running_and_ready);
                if !ok {
                    bad2.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(format!("ord-{o} created before ord-{lower} was ready"));
                }
            }
        }
        if (deleted || p.metadata.deletion_timestamp.is_some()) && !seen(&log, "delete") {
            log.push(("delete", o));
            if let Some(higher) = view.keys().map(|n| ordinal(n)).find(|x| *x > o) {
                bad2.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("ord-{o} deleted while ord-{higher} still existed"));
            }
        }
    });
    statefulsets(&env)
        .create(
            &PostParams::default(),
            &statefulset("ord", 3, "example.com/db:v1", json!({})),
        )
        .await?;
    let pods = env.wait_ready("ord", 3, 60).await?;
    let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
    assert_eq!(names, ["ord-0", "ord-1", "ord-2"]);
    for p in &pods {
        let name = p.name_any();
        assert_eq!(
            pods::label(p, "statefulset.kubernetes.io/pod-name"),
            Some(name.as_str())
        );
        assert_eq!(
            pods::label(p, "apps.kubernetes.io/pod-index"),
            Some(ordinal(&name).to_string().as_str())
        );
        assert!(pods::label(p, "controller-revision-hash").is_some_and(|r| r.starts_with("ord-")));
        // The pod webhook gates every pod of an apps.kruise.io controller with KruisePodReady,
        // and the podreadiness controller initialises it, so the pods could become Ready.
        assert!(kruise_agent::podreadiness::has_gate(p), "{name}");
        assert_eq!(
            pods::condition(p, "KruisePodReady").map(|c| c.status.as_str()),
            Some("True"),
            "{name}"
        );
    }
    patch_sts(&env, "ord", json!({"spec": {"replicas": 1}})).await?;
    env.wait_ready("ord", 1, 60).await?;
    eventually(30, "ord-1 and ord-2 gone", || async {
        (env.pods("ord").await.len() == 1).then_some(())
    })
    .await?;
    watch.abort();
    let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let creates: Vec<i32> = log
        .iter()
        .filter(|(e, _)| *e == "create")
        .map(|(_, o)| *o)
        .collect();
    let deletes: Vec<i32> = log
        .iter()
        .filter(|(e, _)| *e == "delete")
        .map(|(_, o)| *o)
        .collect();
    assert_eq!(creates, [0, 1, 2], "{log:?}");
    assert_eq!(deletes, [2, 1], "{log:?}");
    let bad = bad.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(bad.is_empty(), "{bad:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_reserved_ordinals_and_claim_retention() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let mut env = Env::cluster(2, &["--readiness-delay-ms", "1000"]).await?;
    env.start_agent(&[])?;
    // Parallel: every pod exists before the first one is ready.
    let created_before_ready: Arc<Mutex<Option<usize>>> = Arc::default();
    let c2 = created_before_ready.clone();
    let watch = watch_pods(env.client.clone(), "par", move |view, _, _| {
        let mut first = c2.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() && view.values().any(pods::is_running_and_ready) {
            *first = Some(view.len());
        }
    });
    let vct = json!([{"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]);
    let spec = |when_scaled: &str| {
        json!({"podManagementPolicy": "Parallel", "reserveOrdinals": [1, "4-5"],
               "volumeClaimTemplates": vct.clone(),
               "persistentVolumeClaimRetentionPolicy": {"whenScaled": when_scaled, "whenDeleted": "Retain"}})
    };
    statefulsets(&env)
        .create(
            &PostParams::default(),
            &statefulset("par", 4, "example.com/db:v1", spec("Delete")),
        )
        .await?;
    statefulsets(&env)
        .create(
            &PostParams::default(),
            &statefulset("keep", 2, "example.com/db:v1", spec("Retain")),
        )
        .await?;
    let pods = env.wait_ready("par", 4, 60).await?;
    let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
    assert_eq!(
        names,
        ["par-0", "par-2", "par-3", "par-6"],
        "reserved 1, 4 and 5 are skipped"
    );
    watch.abort();
    assert_eq!(
        *created_before_ready
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
        Some(4)
    );
    for p in &pods {
        let claim = format!("data-{}", p.name_any());
        let vol = p
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .and_then(|v| {
                v.iter()
                    .find(|v| v.name == "data")
                    .and_then(|v| v.persistent_volume_claim.clone())
            });
        assert_eq!(vol.map(|v| v.claim_name), Some(claim));
    }
    env.wait_ready("keep", 2, 60).await?;
    let before = claims(&env).await;
    for c in [
        "data-par-0",
        "data-par-2",
        "data-par-3",
        "data-par-6",
        "data-keep-0",
        "data-keep-2",
    ] {
        assert!(before.contains_key(c), "{c} missing in {before:?}");
    }

    patch_sts(&env, "par", json!({"spec": {"replicas": 1}})).await?;
    patch_sts(&env, "keep", json!({"spec": {"replicas": 1}})).await?;
    env.wait_ready("par", 1, 60).await?;
    env.wait_ready("keep", 1, 60).await?;
    let after = eventually(60, "claims of scaled-away par pods deleted", || async {
        let c = claims(&env).await;
        (!c.contains_key("data-par-2")
            && !c.contains_key("data-par-3")
            && !c.contains_key("data-par-6"))
        .then_some(c)
    })
    .await
    .with_context(|| env.logs())?;
    assert_eq!(
        after.get("data-par-0"),
        before.get("data-par-0"),
        "kept ordinal keeps its claim"
    );
    assert_eq!(
        after.get("data-keep-2"),
        before.get("data-keep-2"),
        "Retain keeps the claim"
    );

    // Scaling up again reuses the retained claim of keep-2.
    patch_sts(&env, "keep", json!({"spec": {"replicas": 2}})).await?;
    env.wait_ready("keep", 2, 60).await?;
    assert_eq!(
        claims(&env).await.get("data-keep-2"),
        before.get("data-keep-2")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_place_update_with_max_unavailable_and_partition() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let mut env = Env::cluster(3, &["--readiness-delay-ms", "500"]).await?;
    env.start_agent(&[])?;
    let spec = json!({
        "podManagementPolicy": "Parallel",
        "volumeClaimTemplates": [{"metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
            "podUpdatePolicy": "InPlaceIfPossible", "maxUnavailable": 2, "partition": 3}}
    });
    statefulsets(&env)
        .create(
            &PostParams::default(),
            &statefulset("inp", 5, "example.com/db:v1", spec),
        )
        .await?;
    let before = identities(&env.wait_ready("inp", 5, 60).await?);
    wait_status(&env, "inp", 5, 5, 30).await?;
    let claims_before = claims(&env).await;

    let worst: Arc<Mutex<usize>> = Arc::default();
    let w2 = worst.clone();
    // Ready → not ready transitions per pod: an in-place update makes each pod unready once;
    // more would be readiness flapping (a stale condition written back).
    let drops: Arc<Mutex<BTreeMap<String, (bool, u32)>>> = Arc::default();
    let d2 = drops.clone();
    let watch = watch_pods(env.client.clone(), "inp", move |view, pod, deleted| {
        let unready = view.values().filter(|p| !pods::is_ready(p)).count();
        let mut w = w2.lock().unwrap_or_else(|e| e.into_inner());
        *w = (*w).max(unready);
        if !deleted {
            let mut d = d2.lock().unwrap_or_else(|e| e.into_inner());
            let ready = pods::is_ready(pod);
            let entry = d.entry(pod.name_any()).or_insert((ready, 0));
            if entry.0 && !ready {
                entry.1 += 1;
            }
            entry.0 = ready;
        }
    });
    // step 1: partition 3 keeps the three lowest ordinals on v1
    patch_sts(
        &env,
        "inp",
        json!({"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "example.com/db:v2"}]}}}}),
    )
    .await?;
    wait_status(&env, "inp", 2, 5, 60).await?;
    let pods = env.wait_ready("inp", 5, 30).await?;
    let images: Vec<String> = pods.iter().map(image).collect();
    assert_eq!(
        images,
        [
            "example.com/db:v1",
            "example.com/db:v1",
            "example.com/db:v1",
            "example.com/db:v2",
            "example.com/db:v2"
        ]
    );
    // step 2: partition 0 updates the rest, at most two at a time
    patch_sts(
        &env,
        "inp",
        json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}),
    )
    .await?;
    wait_status(&env, "inp", 5, 5, 90).await?;
    let pods = env.wait_ready("inp", 5, 30).await?;
    watch.abort();
    assert!(pods.iter().all(|p| image(p) == "example.com/db:v2"));
    assert_eq!(
        identities(&pods),
        before,
        "names and UIDs kept: the update was in place"
    );
    assert_eq!(claims(&env).await, claims_before, "claims kept");
    assert!(
        pods.iter().all(|p| pods::restart_count(p) >= 1),
        "containers restarted in place"
    );
    let worst = *worst.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        (1..=2).contains(&worst),
        "{worst} pods unready at once with maxUnavailable 2"
    );
    let drops = drops.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(drops.len(), 5, "every pod seen: {drops:?}");
    assert!(
        drops.values().all(|(ready, n)| *ready && *n == 1),
        "each pod went unready exactly once and ended ready: {drops:?}"
    );

    let set = statefulsets(&env).get("inp").await?;
    let st = set.status.clone().context("status")?;
    assert_eq!(st.current_revision, st.update_revision);
    assert_eq!(st.updated_ready_replicas, Some(5));
    let ready = st
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready");
    assert_eq!(ready.map(|c| c.status), Some("True".to_string()));
    assert_eq!(st.observed_generation, set.metadata.generation);
    Ok(())
}

/// Storage requested by each claim, by claim name.
async fn claim_storage(env: &Env) -> BTreeMap<String, String> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| {
            let q = c
                .spec
                .as_ref()?
                .resources
                .as_ref()?
                .requests
                .as_ref()?
                .get("storage")?
                .0
                .clone();
            Some((c.name_any(), q))
        })
        .collect()
}

fn data_template(storage: &str) -> serde_json::Value {
    json!([{"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_grow_with_the_rolling_update_and_never_shrink() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let mut env = Env::cluster(2, &["--readiness-delay-ms", "300"]).await?;
    env.start_agent(&["--feature-gates", "StatefulSetAutoResizePVCGate=true"])?;
    let spec = |vct: serde_json::Value| {
        json!({
            "podManagementPolicy": "Parallel",
            "volumeClaimTemplates": vct,
            "volumeClaimUpdateStrategy": {"type": "OnPodRollingUpdate"},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
                "podUpdatePolicy": "InPlaceIfPossible", "maxUnavailable": 1}}
        })
    };
    statefulsets(&env)
        .create(
            &PostParams::default(),
            &statefulset("grow", 2, "example.com/db:v1", spec(data_template("1Gi"))),
        )
        .await?;
    let before = identities(&env.wait_ready("grow", 2, 60).await?);
    wait_status(&env, "grow", 2, 2, 30).await?;
    let want = |q: &str| {
        BTreeMap::from([
            ("data-grow-0".to_string(), q.to_string()),
            ("data-grow-1".to_string(), q.to_string()),
        ])
    };
    assert_eq!(claim_storage(&env).await, want("1Gi"));

    // A larger template: each claim grows once its pod is on the new revision.
    patch_sts(
        &env,
        "grow",
        json!({"spec": {"volumeClaimTemplates": data_template("2Gi"),
            "template": {"spec": {"containers": [{"name": "main", "image": "example.com/db:v2"}]}}}}),
    )
    .await?;
    wait_status(&env, "grow", 2, 2, 60).await?;
    eventually(30, "claims resized to 2Gi", || async {
        (claim_storage(&env).await == want("2Gi")).then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    let pods = env.wait_ready("grow", 2, 30).await?;
    assert_eq!(identities(&pods), before, "the pods were updated in place");
    let vc = eventually(30, "status.volumeClaims all compatible", || async {
        let st = statefulsets(&env).get("grow").await.ok()?.status?;
        let vc = st.volume_claims?;
        (vc.len() == 1 && vc[0].compatible_ready_replicas == 2).then_some(vc)
    })
    .await
    .with_context(|| env.logs())?;
    assert_eq!(
        (vc[0].volume_claim_name.as_str(), vc[0].compatible_replicas),
        ("data", 2)
    );

    // A smaller template is accepted but the claims keep their size.
    patch_sts(
        &env,
        "grow",
        json!({"spec": {"volumeClaimTemplates": data_template("1Gi"),
            "template": {"spec": {"containers": [{"name": "main", "image": "example.com/db:v3"}]}}}}),
    )
    .await?;
    wait_status(&env, "grow", 2, 2, 60).await?;
    let pods = env.wait_ready("grow", 2, 30).await?;
    assert!(pods.iter().all(|p| image(p) == "example.com/db:v3"));
    assert_eq!(claim_storage(&env).await, want("2Gi"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_keep_their_size_without_the_gate() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(2).await?;
    let spec = json!({
        "podManagementPolicy": "Parallel",
        "volumeClaimTemplates": data_template("1Gi"),
        "volumeClaimUpdateStrategy": {"type": "OnPodRollingUpdate"},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
            "podUpdatePolicy": "InPlaceIfPossible", "maxUnavailable": 1}}
    });
    statefulsets(&env)
        .create(
            &PostParams::default(),
            &statefulset("fixed", 2, "example.com/db:v1", spec),
        )
        .await?;
    env.wait_ready("fixed", 2, 60).await?;
    patch_sts(
        &env,
        "fixed",
        json!({"spec": {"volumeClaimTemplates": data_template("2Gi"),
            "template": {"spec": {"containers": [{"name": "main", "image": "example.com/db:v2"}]}}}}),
    )
    .await?;
    wait_status(&env, "fixed", 2, 2, 60).await?;
    let storage = claim_storage(&env).await;
    assert_eq!(storage.get("data-fixed-0").map(String::as_str), Some("1Gi"));
    assert_eq!(storage.get("data-fixed-1").map(String::as_str), Some("1Gi"));
    let st = statefulsets(&env)
        .get("fixed")
        .await?
        .status
        .context("status")?;
    assert_eq!(
        st.volume_claims, None,
        "volumeClaims is reported only with the gate"
    );
    Ok(())
}

fn review(op: &str, version: &str, object: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "e2e", "operation": op, "name": object["metadata"]["name"].clone(), "namespace": "default",
            "kind": {"group": "apps.kruise.io", "version": version, "kind": "StatefulSet"},
            "resource": {"group": "apps.kruise.io", "version": version, "resource": "statefulsets"},
            "userInfo": {"username": "e2e"}, "object": object, "oldObject": null, "dryRun": false
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_specs_are_refused_with_field_paths() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(1).await?;
    let mut bad = serde_json::to_value(statefulset(
        "bad",
        -1,
        "example.com/db:v1",
        json!({"reserveOrdinals": ["7-2"],
               "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
                   "podUpdatePolicy": "InPlaceIfPossible", "maxUnavailable": 3}}}),
    ))?;
    bad["spec"]["template"]["spec"]["readinessGates"] = json!([]);
    bad["spec"]["selector"]["matchLabels"]["app"] = json!("other");
    if let Ok(typed) = serde_json::from_value::<kruise_api::apps::v1beta1::StatefulSet>(bad.clone())
    {
        // The API server may refuse first (CRD schema, or the webhook once it calls webhooks).
        if let Err(kube::Error::Api(s)) = statefulsets(&env)
            .create(&PostParams::default(), &typed)
            .await
        {
            assert_eq!(s.code, 422, "{}", s.message);
        }
    }
    for version in ["v1beta1", "v1alpha1"] {
        let mut obj = bad.clone();
        obj["apiVersion"] = json!(format!("apps.kruise.io/{version}"));
        if version == "v1alpha1" {
            obj["spec"]
                .as_object_mut()
                .map(|m| m.remove("reserveOrdinals"));
        }
        let resp = call_validating_webhook_named(
            &env,
            "vstatefulset.kb.io",
            review("CREATE", version, obj),
        )
        .await?;
        assert_eq!(resp["response"]["allowed"], false, "{resp}");
        assert_eq!(resp["response"]["status"]["code"], 422);
        assert_eq!(resp["response"]["status"]["reason"], "Invalid");
        let fields: Vec<String> = resp["response"]["status"]["details"]["causes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| c["field"].as_str().unwrap_or_default().to_string())
            .collect();
        let mut want = vec![
            "spec.replicas",
            "spec.updateStrategy.rollingUpdate.maxUnavailable",
            "spec.template.spec.readinessGates",
            "spec.template.metadata.labels",
        ];
        if version == "v1beta1" {
            want.push("spec.reserveOrdinals[0]");
        }
        for f in want {
            assert!(
                fields.iter().any(|x| x == f),
                "{version}: {f} missing in {fields:?}"
            );
        }
    }
    // The seed manifest (v1alpha1) is accepted.
    let good = statefulset(
        "good",
        3,
        "example.com/db:v1",
        json!({"podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
            "podUpdatePolicy": "InPlaceIfPossible", "maxUnavailable": "20%"}}}),
    );
    let mut good = serde_json::to_value(good)?;
    good["apiVersion"] = json!("apps.kruise.io/v1alpha1");
    let resp = call_validating_webhook_named(
        &env,
        "vstatefulset.kb.io",
        review("CREATE", "v1alpha1", good),
    )
    .await?;
    assert_eq!(resp["response"]["allowed"], true, "{resp}");
    Ok(())
}
