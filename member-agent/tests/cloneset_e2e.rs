//! End-to-end: kruise-local + kruise-agent processes, driven with kube-rs.
//!
//! Needs `kruise-local` built into the same target directory:
//! `cargo build -p kruise-local -p kruise-agent && cargo test -p kruise-agent --test cloneset_e2e`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use common::{cloneset, eventually, identities, Env, SERIAL};
use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kruise_agent::pods;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::json;

fn merge(v: serde_json::Value) -> Patch<serde_json::Value> {
    Patch::Merge(v)
}

async fn patch_cs(env: &Env, name: &str, v: serde_json::Value) -> anyhow::Result<()> {
    env.clonesets()
        .patch(name, &PatchParams::default(), &merge(v))
        .await?;
    Ok(())
}

/// Watches pods of `app` and calls `f` with the current view after every event.
fn watch_pods(
    client: Client,
    app: &str,
    mut f: impl FnMut(&BTreeMap<String, Pod>) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let api: Api<Pod> = Api::namespaced(client, "default");
    let cfg = watcher::Config::default().labels(&format!("app={app}"));
    tokio::spawn(async move {
        let mut view: BTreeMap<String, Pod> = BTreeMap::new();
        let mut stream = watcher(api, cfg).default_backoff().boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => {
                    view.insert(p.name_any(), p);
                }
                Ok(watcher::Event::Delete(p)) => {
                    view.remove(&p.name_any());
                }
                _ => {}
            }
            f(&view);
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_up_down_and_specified_delete() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(3).await?;
    env.clonesets()
        .create(
            &PostParams::default(),
            &cloneset("scale", 3, "example.com/app:v1", json!({})),
        )
        .await?;
    let pods = env.wait_ready("scale", 3, 60).await?;
    let cs = env.cloneset("scale").await?;
    for p in &pods {
        let name = p.name_any();
        let id = name.strip_prefix("scale-").context("pod name prefix")?;
        assert!(
            id.len() == 5
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{name}"
        );
        assert_eq!(
            pods::label(p, "apps.kruise.io/cloneset-instance-id"),
            Some(id)
        );
        let owner = &p.owner_references()[0];
        assert_eq!(owner.uid, cs.uid().unwrap_or_default());
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        assert!(kruise_agent::inplace::has_readiness_gate(p));
        assert!(pods::label(p, "controller-revision-hash").is_some_and(|r| r.starts_with("scale-")));
    }

    patch_cs(&env, "scale", json!({"spec": {"replicas": 5}})).await?;
    env.wait_ready("scale", 5, 60).await?;
    patch_cs(&env, "scale", json!({"spec": {"replicas": 2}})).await?;
    let pods = env.wait_ready("scale", 2, 60).await?;

    // specified delete by label: the pod goes and a replacement comes
    let victim = pods[0].name_any();
    let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    api.patch(
        &victim,
        &PatchParams::default(),
        &merge(json!({"metadata": {"labels": {"apps.kruise.io/specified-delete": "true"}}})),
    )
    .await?;
    eventually(60, "labelled pod replaced", || async {
        let pods = env.active_pods("scale").await;
        (pods.len() == 2
            && pods.iter().all(pods::is_running_and_ready)
            && pods.iter().all(|p| p.name_any() != victim))
        .then_some(())
    })
    .await
    .with_context(|| env.logs())?;

    // specified delete by scaleStrategy.podsToDelete
    let victim = env.active_pods("scale").await[0].name_any();
    patch_cs(
        &env,
        "scale",
        json!({"spec": {"scaleStrategy": {"podsToDelete": [victim]}}}),
    )
    .await?;
    eventually(60, "listed pod replaced", || async {
        let pods = env.active_pods("scale").await;
        (pods.len() == 2
            && pods.iter().all(pods::is_running_and_ready)
            && pods.iter().all(|p| p.name_any() != victim))
        .then_some(())
    })
    .await
    .with_context(|| env.logs())?;

    let st = eventually(30, "status settles", || async {
        let cs = env.cloneset("scale").await.ok()?;
        let st = cs.status.clone()?;
        (st.replicas == 2
            && st.ready_replicas == 2
            && st.available_replicas == 2
            && st.updated_replicas == 2
            && st.observed_generation == cs.metadata.generation)
            .then_some(st)
    })
    .await?;
    assert_eq!(st.label_selector.as_deref(), Some("app=scale"));
    assert_eq!(st.update_revision, st.current_revision);
    assert_eq!(st.expected_updated_replicas, Some(2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_place_update_keeps_pods_within_max_unavailable_and_grace() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(3).await?;
    let spec = json!({"updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": "20%",
                       "inPlaceUpdateStrategy": {"gracePeriodSeconds": 2}}});
    env.clonesets()
        .create(
            &PostParams::default(),
            &cloneset("inplace", 5, "example.com/app:v1", spec),
        )
        .await?;
    let before = identities(&env.wait_ready("inplace", 5, 60).await?);

    let worst = Arc::new(Mutex::new(0usize));
    let seen = Arc::new(Mutex::new(0usize));
    let (w, s) = (worst.clone(), seen.clone());
    let watch = watch_pods(env.client.clone(), "inplace", move |view| {
        let unready = view.values().filter(|p| !pods::is_ready(p)).count();
        let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
        *w = (*w).max(unready);
        *s.lock().unwrap_or_else(|e| e.into_inner()) = view.len();
    });
    eventually(10, "the watch lists the pods", || async {
        (*seen.lock().unwrap_or_else(|e| e.into_inner()) == 5).then_some(())
    })
    .await?;
    patch_cs(
        &env,
        "inplace",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "example.com/app:v2"}]}}}}),
    )
    .await?;
    let pods = eventually(120, "all pods updated in place", || async {
        let cs = env.cloneset("inplace").await.ok()?;
        let st = cs.status?;
        let pods = env.active_pods("inplace").await;
        (st.updated_ready_replicas == 5
            && pods.len() == 5
            && pods.iter().all(pods::is_running_and_ready)
            && pods.iter().all(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .is_some_and(|c| c[0].image == "example.com/app:v2" && c[0].ready)
            }))
        .then_some(pods)
    })
    .await
    .with_context(|| env.logs())?;
    watch.abort();
    assert_eq!(identities(&pods), before, "names and UIDs are kept");
    for p in &pods {
        let cs = &p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default()[0];
        assert_eq!(cs.restart_count, 1, "{}", p.name_any());
        let state = kruise_agent::inplace::state(p).context("in-place state annotation")?;
        let started: k8s_openapi::jiff::Timestamp = state.update_timestamp.parse()?;
        let patched: k8s_openapi::jiff::Timestamp =
            state.container_batches_record[0].timestamp.parse()?;
        let waited = patched.duration_since(started).as_secs_f64();
        assert!(
            waited >= 1.9,
            "{}: images patched {waited}s after the start, grace is 2s",
            p.name_any()
        );
    }
    let worst = *worst.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        worst <= 1,
        "{worst} pods unready at once with maxUnavailable 20% of 5"
    );
    let rev = env
        .cloneset("inplace")
        .await?
        .status
        .and_then(|s| s.update_revision)
        .context("updateRevision")?;
    let want: BTreeSet<String> = pods
        .iter()
        .map(|p| {
            format!(
                "successfully update pod {} in-place(revision {rev})",
                p.name_any()
            )
        })
        .collect();
    eventually(30, "SuccessfulUpdatePodInPlace for every pod", || async {
        let seen: BTreeSet<String> = cloneset_events(&env, "inplace")
            .await
            .into_iter()
            .filter(|(r, _)| r == "SuccessfulUpdatePodInPlace")
            .map(|(_, m)| m)
            .collect();
        (seen == want).then_some(())
    })
    .await?;
    Ok(())
}

/// Sends an AdmissionReview straight to the registered validating webhook (URL and caBundle
/// from the ValidatingWebhookConfiguration the agent registered).
async fn call_validating_webhook(
    env: &Env,
    review: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    use base64::Engine;
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
        .find(|w| w.name == "vcloneset.kb.io")
        .context("vcloneset.kb.io")?;
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

fn review(
    op: &str,
    object: serde_json::Value,
    old: Option<serde_json::Value>,
) -> serde_json::Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "e2e", "operation": op, "name": object["metadata"]["name"].clone(), "namespace": "default",
            "kind": {"group": "apps.kruise.io", "version": "v1alpha1", "kind": "CloneSet"},
            "resource": {"group": "apps.kruise.io", "version": "v1alpha1", "resource": "clonesets"},
            "userInfo": {"username": "e2e"}, "object": object, "oldObject": old, "dryRun": false
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn non_image_change_recreates_or_is_refused_under_in_place_only() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(2).await?;
    let spec = json!({"updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": 1}});
    env.clonesets()
        .create(
            &PostParams::default(),
            &cloneset("fallback", 2, "example.com/app:v1", spec),
        )
        .await?;
    let before: BTreeSet<String> = env
        .wait_ready("fallback", 2, 60)
        .await?
        .iter()
        .map(|p| p.name_any())
        .collect();
    patch_cs(
        &env,
        "fallback",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "example.com/app:v1",
               "ports": [{"containerPort": 8080}]}]}}}}),
    )
    .await?;
    eventually(120, "pods recreated with the port", || async {
        let pods = env.active_pods("fallback").await;
        (pods.len() == 2
            && pods.iter().all(pods::is_running_and_ready)
            && pods.iter().all(|p| !before.contains(&p.name_any()))
            && pods.iter().all(|p| {
                p.spec.as_ref().is_some_and(|s| {
                    s.containers[0]
                        .ports
                        .as_ref()
                        .is_some_and(|v| v[0].container_port == 8080)
                })
            }))
        .then_some(())
    })
    .await
    .with_context(|| env.logs())?;

    // InPlaceOnly: the same change is refused with upstream's message.
    let spec = json!({"updateStrategy": {"type": "InPlaceOnly", "maxUnavailable": 1}});
    let strict = env
        .clonesets()
        .create(
            &PostParams::default(),
            &cloneset("strict", 1, "example.com/app:v1", spec),
        )
        .await?;
    env.wait_ready("strict", 1, 60).await?;
    let want =
        "only allowed to update images in spec for InPlaceOnly, but found add /containers/0/ports";
    let mut changed = env.cloneset("strict").await?;
    changed
        .spec
        .template
        .spec
        .as_mut()
        .context("spec")?
        .containers[0]
        .ports = Some(vec![k8s_openapi::api::core::v1::ContainerPort {
        container_port: 8080,
        ..Default::default()
    }]);
    let ports_patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "main",
        "image": "example.com/app:v1", "ports": [{"containerPort": 8080}]}]}}}});
    match env
        .clonesets()
        .patch("strict", &PatchParams::default(), &merge(ports_patch))
        .await
    {
        Err(kube::Error::Api(s)) => assert!(s.message.contains(want), "{}", s.message),
        Ok(_) => {
            // The API server does not call admission webhooks (yet): ask the agent's webhook
            // directly, and check that the controller refuses to recreate.
            let resp = call_validating_webhook(
                &env,
                review(
                    "UPDATE",
                    serde_json::to_value(&changed)?,
                    Some(serde_json::to_value(&strict)?),
                ),
            )
            .await?;
            assert_eq!(resp["response"]["allowed"], false, "{resp}");
            let msg = resp["response"]["status"]["message"]
                .as_str()
                .unwrap_or_default();
            assert_eq!(msg, format!("spec: Forbidden: {want}"));
            let cond = eventually(60, "FailedUpdate condition", || async {
                let cs = env.cloneset("strict").await.ok()?;
                cs.status?
                    .conditions?
                    .into_iter()
                    .find(|c| c.type_ == "FailedUpdate")
            })
            .await?;
            assert!(cond
                .message
                .unwrap_or_default()
                .contains("update strategy is InPlaceOnly but can not update in-place"));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_specs_are_refused_with_field_paths() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(1).await?;
    let bad = cloneset(
        "bad",
        -1,
        "example.com/app:v1",
        json!({"updateStrategy": {"type": "Sideways", "maxUnavailable": "5"}}),
    );
    let mut bad = bad;
    bad.spec.selector.match_labels = Some([("app".to_string(), "other".to_string())].into());
    // The API server may refuse first (CRD schema, or our webhook once it calls webhooks);
    // the agent's validating webhook must refuse with every field path either way.
    if let Err(kube::Error::Api(s)) = env.clonesets().create(&PostParams::default(), &bad).await {
        assert_eq!(s.code, 422, "{}", s.message);
        assert!(s.message.contains("spec."), "{}", s.message);
    }
    let resp =
        call_validating_webhook(&env, review("CREATE", serde_json::to_value(&bad)?, None)).await?;
    assert_eq!(resp["response"]["allowed"], false);
    assert_eq!(resp["response"]["status"]["code"], 422);
    assert_eq!(resp["response"]["status"]["reason"], "Invalid");
    let fields: Vec<String> = resp["response"]["status"]["details"]["causes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| c["field"].as_str().unwrap_or_default().to_string())
        .collect();
    for f in [
        "spec.replicas",
        "spec.updateStrategy.type",
        "spec.updateStrategy.maxUnavailable",
        "spec.template.metadata.labels",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing in {fields:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_and_max_surge() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(3).await?;
    let spec = json!({"updateStrategy": {"type": "InPlaceIfPossible", "partition": 3, "maxUnavailable": 1}});
    env.clonesets()
        .create(
            &PostParams::default(),
            &cloneset("part", 5, "example.com/app:v1", spec),
        )
        .await?;
    env.wait_ready("part", 5, 60).await?;
    patch_cs(
        &env,
        "part",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "example.com/app:v2"}]}}}}),
    )
    .await?;
    let st = eventually(90, "2 of 5 updated", || async {
        let cs = env.cloneset("part").await.ok()?;
        let st = cs.status.clone()?;
        (st.observed_generation == cs.metadata.generation
            && st.updated_replicas == 2
            && st.updated_ready_replicas == 2
            && st.ready_replicas == 5)
            .then_some(st)
    })
    .await
    .with_context(|| env.logs())?;
    assert_eq!(st.expected_updated_replicas, Some(2));
    assert_ne!(st.current_revision, st.update_revision);
    // it stays at 2 (partition 3 keeps three pods on the old revision)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        let on_new = env
            .active_pods("part")
            .await
            .iter()
            .filter(|p| pods::label(p, "controller-revision-hash") == st.update_revision.as_deref())
            .count();
        assert_eq!(on_new, 2);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }

    // maxSurge: a ReCreate rollout runs one pod above replicas
    let spec = json!({"updateStrategy": {"type": "ReCreate", "maxSurge": 1, "maxUnavailable": 0}});
    env.clonesets()
        .create(
            &PostParams::default(),
            &cloneset("surge", 3, "example.com/app:v1", spec),
        )
        .await?;
    env.wait_ready("surge", 3, 60).await?;
    let most = Arc::new(Mutex::new(0usize));
    let m = most.clone();
    let watch = watch_pods(env.client.clone(), "surge", move |view| {
        let active = view
            .values()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .count();
        let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
        *m = (*m).max(active);
    });
    patch_cs(
        &env,
        "surge",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "example.com/app:v2"}]}}}}),
    )
    .await?;
    eventually(120, "surge rollout done", || async {
        let cs = env.cloneset("surge").await.ok()?;
        let st = cs.status?;
        let pods = env.active_pods("surge").await;
        (st.observed_generation == cs.metadata.generation
            && st.current_revision == st.update_revision
            && st.updated_ready_replicas == 3
            && st.replicas == 3
            && pods.len() == 3)
            .then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    watch.abort();
    let most = *most.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(most, 4, "maxSurge 1 over 3 replicas");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn priority_decides_update_order() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(2).await?;
    let spec = json!({"updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": 1,
        "priorityStrategy": {"weightPriority": [{"weight": 50, "matchSelector": {"matchLabels": {"pri": "high"}}}]}}});
    env.clonesets()
        .create(
            &PostParams::default(),
            &cloneset("prio", 3, "example.com/app:v1", spec),
        )
        .await?;
    let pods = env.wait_ready("prio", 3, 60).await?;
    let chosen = pods[1].name_any();
    let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    api.patch(
        &chosen,
        &PatchParams::default(),
        &merge(json!({"metadata": {"labels": {"pri": "high"}}})),
    )
    .await?;
    let old_rev = pods::label(&pods[0], "controller-revision-hash")
        .unwrap_or_default()
        .to_string();
    let order = Arc::new(Mutex::new(Vec::<String>::new()));
    let o = order.clone();
    let watch = watch_pods(env.client.clone(), "prio", move |view| {
        let mut o = o.lock().unwrap_or_else(|e| e.into_inner());
        for (name, p) in view {
            if pods::label(p, "controller-revision-hash") != Some(old_rev.as_str())
                && !o.contains(name)
            {
                o.push(name.clone());
            }
        }
    });
    patch_cs(
        &env,
        "prio",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "example.com/app:v2"}]}}}}),
    )
    .await?;
    eventually(90, "rollout done", || async {
        let cs = env.cloneset("prio").await.ok()?;
        let st = cs.status?;
        (st.observed_generation == cs.metadata.generation
            && st.updated_ready_replicas == 3
            && st.current_revision == st.update_revision)
            .then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    watch.abort();
    let order = order.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(order.first(), Some(&chosen), "update order {order:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pre_delete_hook_holds_deletion_until_the_label_is_removed() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(2).await?;
    let mut cs = cloneset(
        "hook",
        2,
        "example.com/app:v1",
        json!({"lifecycle": {"preDelete": {"labelsHandler": {"hold": "true"}}}}),
    );
    cs.spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert("hold".into(), "true".into());
    env.clonesets().create(&PostParams::default(), &cs).await?;
    env.wait_ready("hook", 2, 60).await?;
    patch_cs(&env, "hook", json!({"spec": {"replicas": 1}})).await?;
    let held = eventually(60, "a pod in PreparingDelete", || async {
        env.active_pods("hook")
            .await
            .into_iter()
            .find(|p| pods::label(p, "lifecycle.apps.kruise.io/state") == Some("PreparingDelete"))
    })
    .await
    .with_context(|| env.logs())?;
    let held_name = held.name_any();
    // held while the hook label is there
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        let pods = env.active_pods("hook").await;
        assert!(
            pods.iter().any(|p| p.name_any() == held_name),
            "deleted while hooked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    api.patch(
        &held_name,
        &PatchParams::default(),
        &merge(json!({"metadata": {"labels": {"hold": null}}})),
    )
    .await?;
    eventually(60, "held pod deleted after release", || async {
        let pods = env.active_pods("hook").await;
        (pods.len() == 1 && pods.iter().all(|p| p.name_any() != held_name)).then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pvcs_are_created_per_instance_and_reused() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(2).await?;
    let vct = json!({"volumeClaimTemplates": [{"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]});
    env.clonesets()
        .create(
            &PostParams::default(),
            &cloneset("pvc", 2, "example.com/app:v1", vct),
        )
        .await?;
    let pods = env.wait_ready("pvc", 2, 60).await?;
    let pvc_api: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), "default");
    let claims = |api: Api<PersistentVolumeClaim>| async move {
        let mut names: Vec<String> = api
            .list(&ListParams::default().labels("app=pvc"))
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|p| p.name_any())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let mut want: Vec<String> = pods
        .iter()
        .map(|p| format!("data-{}", p.name_any()))
        .collect();
    want.sort();
    assert_eq!(claims(pvc_api.clone()).await, want);
    for p in &pods {
        let vol = p
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .and_then(|v| v.iter().find(|v| v.name == "data"))
            .and_then(|v| v.persistent_volume_claim.as_ref())
            .context("data volume")?;
        assert_eq!(vol.claim_name, format!("data-{}", p.name_any()));
    }
    // a pod that disappears by itself comes back with the same instance id, reusing its claim
    let gone = pods[0].clone();
    let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    api.delete(&gone.name_any(), &DeleteParams::default())
        .await?;
    eventually(60, "pod recreated with the same instance id", || async {
        let pods = env.active_pods("pvc").await;
        let back = pods.iter().find(|p| p.name_any() == gone.name_any())?;
        (pods.len() == 2 && pods.iter().all(pods::is_running_and_ready) && back.uid() != gone.uid())
            .then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    assert_eq!(claims(pvc_api.clone()).await, want);
    // scale-in deletes the claims of the removed pod
    patch_cs(&env, "pvc", json!({"spec": {"replicas": 1}})).await?;
    let left = env.wait_ready("pvc", 1, 60).await?;
    eventually(30, "claim of the scaled-in pod deleted", || async {
        (claims(pvc_api.clone()).await == vec![format!("data-{}", left[0].name_any())])
            .then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_agent_takes_over_when_the_leader_dies() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let mut env = Env::cluster(1, &[]).await?;
    env.start_agent(&["--identity", "agent-a"])?;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "kruise-system");
    eventually(30, "agent-a leads", || async {
        let l = leases.get_opt("kruise-manager").await.ok().flatten()?;
        (l.spec?.holder_identity.as_deref() == Some("agent-a")).then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    env.start_agent(&["--identity", "agent-b"])?;
    env.clonesets()
        .create(
            &PostParams::default(),
            &cloneset("first", 1, "example.com/app:v1", json!({})),
        )
        .await?;
    env.wait_ready("first", 1, 60).await?;
    env.agents[0].kill();
    eventually(30, "agent-b leads", || async {
        let l = leases.get_opt("kruise-manager").await.ok().flatten()?;
        (l.spec?.holder_identity.as_deref() == Some("agent-b")).then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    // The webhook configuration still names agent-a's endpoint until agent-b, now leading,
    // registers its own; writes are refused (failurePolicy Fail) only in that window.
    let clonesets = env.clonesets();
    eventually(30, "agent-b serves the webhooks", || async {
        clonesets
            .create(
                &PostParams::default(),
                &cloneset("second", 2, "example.com/app:v1", json!({})),
            )
            .await
            .ok()
            .map(|_| ())
    })
    .await
    .with_context(|| env.logs())?;
    env.wait_ready("second", 2, 60).await?;
    assert!(env.agents[1].running());
    Ok(())
}

/// Events the API server holds about the CloneSet `name`, as `(reason, message)`.
async fn cloneset_events(env: &Env, name: &str) -> Vec<(String, String)> {
    let api: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(env.client.clone(), "default");
    let lp = ListParams::default().fields(&format!(
        "involvedObject.kind=CloneSet,involvedObject.name={name}"
    ));
    api.list(&lp)
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

fn progressing(
    cs: &kruise_api::apps::v1alpha1::cloneset::CloneSet,
) -> Option<(String, String, String)> {
    let c = cs
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Progressing")?
        .clone();
    Some((
        c.status,
        c.reason.unwrap_or_default(),
        c.message.unwrap_or_default(),
    ))
}

fn has_gate(p: &Pod, gate: &str) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|g| g.iter().any(|g| g.condition_type == gate))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gated_pods_become_ready_with_events_and_progress() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(2).await?;
    env.clonesets()
        .create(
            &PostParams::default(),
            &cloneset(
                "ev",
                2,
                "example.com/app:v1",
                json!({"progressDeadlineSeconds": 600}),
            ),
        )
        .await?;
    let pods = env.wait_ready("ev", 2, 60).await?;
    for p in &pods {
        assert!(has_gate(p, "InPlaceUpdateReady"), "{}", p.name_any());
        assert!(has_gate(p, "KruisePodReady"), "{}", p.name_any());
        let c = pods::condition(p, "KruisePodReady").context("KruisePodReady condition")?;
        assert_eq!(c.status, "True");
    }
    let cond = eventually(30, "Progressing CloneSetAvailable", || async {
        let cs = env.cloneset("ev").await.ok()?;
        progressing(&cs).filter(|c| c.1 == "CloneSetAvailable")
    })
    .await
    .with_context(|| env.logs())?;
    assert_eq!(
        (cond.0.as_str(), cond.2.as_str()),
        ("True", "CloneSet is available")
    );

    let created: BTreeSet<String> = pods
        .iter()
        .map(|p| format!("succeed to create pod {}", p.name_any()))
        .collect();
    eventually(30, "SuccessfulCreate events", || async {
        let seen: BTreeSet<String> = cloneset_events(&env, "ev")
            .await
            .into_iter()
            .filter(|(r, _)| r == "SuccessfulCreate")
            .map(|(_, m)| m)
            .collect();
        (seen == created).then_some(())
    })
    .await?;

    // paused with a pending update
    patch_cs(
        &env,
        "ev",
        json!({"spec": {"updateStrategy": {"paused": true},
                        "template": {"spec": {"containers": [{"name": "main", "image": "example.com/app:v2"}]}}}}),
    )
    .await?;
    let cond = eventually(30, "Progressing CloneSetPaused", || async {
        let cs = env.cloneset("ev").await.ok()?;
        progressing(&cs).filter(|c| c.1 == "CloneSetPaused")
    })
    .await
    .with_context(|| env.logs())?;
    assert_eq!(cond.2, "CloneSet is paused");

    // resumed: recreate update of both pods, with events, back to available
    patch_cs(
        &env,
        "ev",
        json!({"spec": {"updateStrategy": {"paused": false}}}),
    )
    .await?;
    eventually(90, "updated and available again", || async {
        let cs = env.cloneset("ev").await.ok()?;
        let st = cs.status.clone()?;
        (st.updated_ready_replicas == 2
            && progressing(&cs).is_some_and(|c| c.1 == "CloneSetAvailable"))
        .then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    let events = cloneset_events(&env, "ev").await;
    let count = |reason: &str| events.iter().filter(|(r, _)| r == reason).count();
    assert!(count("SuccessfulUpdatePodReCreate") >= 2, "{events:?}");
    assert!(count("SuccessfulDelete") >= 2, "{events:?}");
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "SuccessfulUpdatePodReCreate"
                && m.starts_with("successfully patch pod ev-")
                && m.contains("specified-delete for update(revision ev-")),
        "{events:?}"
    );

    // a rollout that cannot progress (unschedulable) times out
    env.clonesets()
        .create(
            &PostParams::default(),
            &cloneset(
                "stuck",
                3,
                "example.com/app:v1",
                json!({"progressDeadlineSeconds": 3,
                       "scaleStrategy": {"maxUnavailable": 1},
                       "template": {"metadata": {"labels": {"app": "stuck"}},
                                    "spec": {"nodeSelector": {"no-such-node": "x"},
                                             "containers": [{"name": "main", "image": "example.com/app:v1"}]}}}),
            ),
        )
        .await?;
    let cond = eventually(30, "ProgressDeadlineExceeded", || async {
        let cs = env.cloneset("stuck").await.ok()?;
        progressing(&cs).filter(|c| c.1 == "ProgressDeadlineExceeded")
    })
    .await
    .with_context(|| env.logs())?;
    assert_eq!(cond.0, "False");
    assert!(
        cond.2.starts_with("CloneSet revision stuck-")
            && cond.2.ends_with(" has timed out progressing"),
        "{cond:?}"
    );
    // scaleStrategy.maxUnavailable holds creation at the one unschedulable pod
    eventually(30, "ScaleUpLimited event", || async {
        cloneset_events(&env, "stuck")
            .await
            .into_iter()
            .find(|(r, m)| {
                r == "ScaleUpLimited"
                    && m == "scaleUp is limited because of scaleStrategy.maxUnavailable, limit: 0"
            })
    })
    .await?;
    assert_eq!(env.pods("stuck").await.len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mark_pod_not_ready_holds_pre_delete_pods_not_ready() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(2).await?;
    let mut cs = cloneset(
        "mark",
        2,
        "example.com/app:v1",
        json!({"lifecycle": {"preDelete": {"labelsHandler": {"hold": "true"}, "markPodNotReady": true}}}),
    );
    cs.spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert("hold".into(), "true".into());
    env.clonesets().create(&PostParams::default(), &cs).await?;
    env.wait_ready("mark", 2, 60).await?;
    patch_cs(&env, "mark", json!({"spec": {"replicas": 1}})).await?;
    let held = eventually(60, "a PreparingDelete pod marked not ready", || async {
        env.active_pods("mark").await.into_iter().find(|p| {
            pods::label(p, "lifecycle.apps.kruise.io/state") == Some("PreparingDelete")
                && pods::condition(p, "KruisePodReady").is_some_and(|c| {
                    c.status == "False"
                        && c.message
                            .as_deref()
                            .is_some_and(|m| m.contains("preDeleteHook"))
                })
                && !pods::is_running_and_ready(p)
        })
    })
    .await
    .with_context(|| env.logs())?;
    let held_name = held.name_any();

    // raising replicas again does not bring the marked pod back to Normal
    patch_cs(&env, "mark", json!({"spec": {"replicas": 2}})).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(4);
    while std::time::Instant::now() < deadline {
        let pods = env.active_pods("mark").await;
        let held = pods
            .iter()
            .find(|p| p.name_any() == held_name)
            .context("held pod gone while hooked")?;
        assert_eq!(
            pods::label(held, "lifecycle.apps.kruise.io/state"),
            Some("PreparingDelete")
        );
        assert!(!pods::is_running_and_ready(held), "held pod became ready");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }

    let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    api.patch(
        &held_name,
        &PatchParams::default(),
        &merge(json!({"metadata": {"labels": {"hold": null}}})),
    )
    .await?;
    eventually(
        60,
        "held pod deleted after release and replaced",
        || async {
            let pods = env.active_pods("mark").await;
            (pods.len() == 2
                && pods.iter().all(|p| p.name_any() != held_name)
                && pods.iter().all(pods::is_running_and_ready))
            .then_some(())
        },
    )
    .await
    .with_context(|| env.logs())?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orphans_are_adopted_and_mismatching_pods_released() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(2).await?;
    let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let bare: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bare", "labels": {"app": "adopt"}},
        "spec": {"containers": [{"name": "main", "image": "example.com/app:v1"}]}
    }))?;
    api.create(&PostParams::default(), &bare).await?;
    env.wait_ready("adopt", 1, 60).await?;
    env.clonesets()
        .create(
            &PostParams::default(),
            &cloneset(
                "adopt",
                3,
                "example.com/app:v1",
                json!({"updateStrategy": {"paused": true}}),
            ),
        )
        .await?;
    let uid = env.cloneset("adopt").await?.uid().unwrap_or_default();
    let owned_by_cs = |p: &Pod| {
        p.owner_references().iter().any(|o| {
            o.uid == uid && o.controller == Some(true) && o.block_owner_deletion == Some(true)
        })
    };
    let pods = env.wait_ready("adopt", 3, 60).await?;
    let bare_now = pods
        .iter()
        .find(|p| p.name_any() == "bare")
        .context("the bare pod is counted as one of the 3 replicas")?;
    assert!(
        owned_by_cs(bare_now),
        "bare pod adopted: {:?}",
        bare_now.owner_references()
    );
    assert!(pods.iter().all(&owned_by_cs));
    let st = eventually(30, "status counts the adopted pod", || async {
        let st = env.cloneset("adopt").await.ok()?.status?;
        (st.replicas == 3 && st.ready_replicas == 3).then_some(st)
    })
    .await?;
    assert_eq!(st.replicas, 3);

    // relabel a created pod: released (ownerReference removed) and replaced
    let victim = pods
        .iter()
        .find(|p| p.name_any() != "bare")
        .context("a created pod")?
        .name_any();
    api.patch(
        &victim,
        &PatchParams::default(),
        &merge(json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await?;
    eventually(
        60,
        "released pod keeps running without an owner",
        || async {
            let p = api.get(&victim).await.ok()?;
            (!owned_by_cs(&p) && p.metadata.deletion_timestamp.is_none()).then_some(())
        },
    )
    .await
    .with_context(|| env.logs())?;
    let pods = env.wait_ready("adopt", 3, 60).await?;
    assert!(pods
        .iter()
        .all(|p| owned_by_cs(p) && p.name_any() != victim));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mark_pod_not_ready_holds_in_place_updates_until_updated() -> anyhow::Result<()> {
    let _g = SERIAL.lock().await;
    let env = Env::start(2).await?;
    let mut cs = cloneset(
        "iu",
        1,
        "example.com/app:v1",
        json!({"updateStrategy": {"type": "InPlaceIfPossible"},
               "lifecycle": {"inPlaceUpdate": {"labelsHandler": {"hold": "true"}, "markPodNotReady": true}}}),
    );
    cs.spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert("hold".into(), "true".into());
    env.clonesets().create(&PostParams::default(), &cs).await?;
    let name = env.wait_ready("iu", 1, 60).await?[0].name_any();
    patch_cs(
        &env,
        "iu",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "example.com/app:v2"}]}}}}),
    )
    .await?;
    let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let state = |p: &Pod| pods::label(p, "lifecycle.apps.kruise.io/state").map(str::to_string);
    let kruise_ready = |p: &Pod| pods::condition(p, "KruisePodReady").map(|c| c.status.clone());
    eventually(60, "PreparingUpdate and not ready", || async {
        let p = api.get(&name).await.ok()?;
        (state(&p).as_deref() == Some("PreparingUpdate")
            && kruise_ready(&p).as_deref() == Some("False")
            && !pods::is_running_and_ready(&p))
        .then_some(())
    })
    .await
    .with_context(|| env.logs())?;

    // the hook lets go: updated in place, then Updated (hook not re-added) and ready again
    api.patch(
        &name,
        &PatchParams::default(),
        &merge(json!({"metadata": {"labels": {"hold": null}}})),
    )
    .await?;
    eventually(90, "Updated, KruisePodReady True, Ready on v2", || async {
        let p = api.get(&name).await.ok()?;
        let image = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|c| c[0].image.clone());
        (state(&p).as_deref() == Some("Updated")
            && kruise_ready(&p).as_deref() == Some("True")
            && pods::is_running_and_ready(&p)
            && image.as_deref() == Some("example.com/app:v2"))
        .then_some(())
    })
    .await
    .with_context(|| env.logs())?;

    // re-adding the hook label completes the cycle
    api.patch(
        &name,
        &PatchParams::default(),
        &merge(json!({"metadata": {"labels": {"hold": "true"}}})),
    )
    .await?;
    eventually(60, "Normal again", || async {
        let p = api.get(&name).await.ok()?;
        (state(&p).as_deref() == Some("Normal") && pods::is_running_and_ready(&p)).then_some(())
    })
    .await
    .with_context(|| env.logs())?;
    Ok(())
}
