//! The CloneSet controller: observe → [`plan::plan`] → [`apply::apply`] → status.

pub mod apply;
pub mod defaults;
pub mod diffs;
pub mod plan;
pub mod settings;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::cloneset::CloneSet;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{info_span, warn, Instrument};

use crate::controllerref;
use crate::gates::{self, FeatureGates};
use crate::metrics::{ControllerName, Metrics, WriteKind};
use crate::predownload;
use crate::revision;
use crate::workload::{self, Watches};
use plan::{Observed, INSTANCE_ID_LABEL};
use settings::Settings;

pub use crate::workload::{owned_by, Context, Error, RunConfig};

fn now() -> Timestamp {
    Timestamp::now()
}

/// Reconciles one CloneSet.
pub async fn reconcile(cs: Arc<CloneSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let span = info_span!("reconcile", cloneset = %format!("{}/{}", cs.namespace().unwrap_or_default(), cs.name_any()));
    let res = reconcile_inner(&cs, &ctx).instrument(span).await;
    ctx.metrics
        .observe_reconcile(ControllerName::CloneSet, res.is_ok(), started.elapsed());
    res
}

async fn reconcile_inner(cs: &CloneSet, ctx: &Arc<Context>) -> Result<Action, Error> {
    if cs.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if !ctx.caches_ready().await {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let ns = cs.namespace().unwrap_or_default();
    let name = cs.name_any();
    let key = format!("{ns}/{name}");
    let uid = cs.uid().unwrap_or_default();

    let all_pods = ctx.pods.state();
    let owned: Vec<Arc<Pod>> = all_pods
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| owned_by(p.metadata.owner_references.as_deref(), &uid))
        .cloned()
        .collect();
    let owned = claim_pods(ctx, cs, &all_pods, owned).await?;
    if !ctx
        .expectations
        .satisfied(&key, &workload::resource_versions(&owned))
    {
        tracing::debug!("writes not yet observed; waiting");
        return Ok(Action::requeue(Duration::from_secs(2)));
    }

    let defaulted = defaults::defaulted(cs, !ctx.gates.enabled(gates::TEMPLATE_NO_DEFAULTS));
    let s = Settings::from_cloneset(&defaulted);

    let history = workload::history(ctx, &ns, &uid);
    let collision_count = cs
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let update_revision = workload::ensure_revision(
        ctx,
        &defaulted,
        &defaulted.spec.template,
        &history,
        collision_count,
    )
    .await?;
    let mut templates: BTreeMap<String, PodTemplateSpec> = history
        .iter()
        .filter_map(|r| Some((r.name_any(), revision::template_of(r)?)))
        .collect();
    templates.insert(update_revision.clone(), defaulted.spec.template.clone());
    let current_revision = cs
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .filter(|c| templates.contains_key(c))
        .unwrap_or_else(|| update_revision.clone());

    if let Some(jobs) = &ctx.jobs {
        let updated_ready = cs
            .status
            .as_ref()
            .filter(|st| st.update_revision.as_deref() == Some(update_revision.as_str()))
            .map_or(0, |st| st.updated_ready_replicas);
        let w = predownload::Workload {
            meta: &cs.metadata,
            api_version: "apps.kruise.io/v1alpha1",
            kind: "CloneSet",
            replicas: s.replicas,
            partition: s.partition,
            max_unavailable: s.max_unavailable,
            recreate: s.update_type == settings::UpdateType::ReCreate,
            selector: &cs.spec.selector,
            updated_ready,
        };
        let revs = predownload::Revisions {
            history: &history,
            templates: &templates,
            current: &current_revision,
            update: &update_revision,
        };
        predownload::reconcile(&ctx.client, jobs, &ctx.recorder, cs, w, revs).await;
    }

    let active: Vec<&Pod> = owned
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| crate::pods::is_active(p))
        .collect();
    let pvcs = ctx.pvcs.state();
    let pvc_ids: BTreeSet<String> = pvcs
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| owned_by(p.metadata.owner_references.as_deref(), &uid))
        .filter_map(|p| plan::instance_id(p.metadata.labels.as_ref()).map(str::to_string))
        .collect();
    let mut taken: BTreeSet<String> = owned
        .iter()
        .filter_map(|p| plan::instance_id(p.metadata.labels.as_ref()).map(str::to_string))
        .collect();
    taken.extend(pvc_ids.iter().cloned());

    let t = now();
    let observed = Observed {
        settings: &s,
        pods: active.clone(),
        pvc_instance_ids: pvc_ids,
        current_revision: &current_revision,
        update_revision: &update_revision,
        templates: &templates,
        allow_rollback: ctx.gates.enabled(gates::CLONESET_PARTITION_ROLLBACK),
    };
    let the_plan = plan::plan(&observed, t);
    tracing::debug!(diffs = ?the_plan.diffs, refresh = the_plan.refresh.len(), creates = the_plan.create.len(), deletes = the_plan.delete.len(), updates = the_plan.update.len(), "planned");
    let factory = apply::PodFactory {
        cs: &defaulted,
        templates: &templates,
        short_hash: ctx.gates.enabled(gates::CLONESET_SHORT_HASH),
    };
    let applied = apply::apply(ctx, &defaulted, &factory, &the_plan, &taken, t).await;

    let inputs = status::StatusInputs {
        generation: cs.metadata.generation,
        previous: cs.status.as_ref(),
        update_revision: &update_revision,
        current_revision: &current_revision,
        collision_count,
        label_selector: crate::selector::to_string(&cs.spec.selector),
        scale_error: applied.scale_error.as_ref().map(ToString::to_string),
        update_error: applied.update_error.as_ref().map(ToString::to_string),
    };
    let new_status = status::status(&s, &active, &inputs, t);
    if cs.status.as_ref() != Some(&new_status) {
        write_status(ctx, &ns, &name, &new_status).await?;
    }

    let in_use: BTreeSet<String> = owned
        .iter()
        .map(|p| revision::pod_revision(p).to_string())
        .chain([update_revision.clone(), current_revision.clone()])
        .collect();
    let limit = defaulted.spec.revision_history_limit.unwrap_or(10);
    workload::prune_revisions(ctx, &ns, &history, &in_use, limit).await;

    if let Some(e) = applied.scale_error.or(applied.update_error) {
        if e.is_retryable() {
            return Err(e);
        }
        warn!(error = %e, "cloneset update refused");
    }
    let mut requeue = the_plan.requeue.unwrap_or(Duration::from_secs(300));
    if !the_plan.is_noop() {
        requeue = requeue.min(Duration::from_secs(5));
    }
    if let Some(deadline) = status::progress_requeue(&s, &new_status, t) {
        requeue = requeue.min(deadline);
    }
    Ok(Action::requeue(requeue))
}

async fn write_status(
    ctx: &Context,
    ns: &str,
    name: &str,
    st: &kruise_api::apps::v1alpha1::cloneset::CloneSetStatus,
) -> Result<(), Error> {
    let mut value = serde_json::to_value(st).unwrap_or_else(|_| json!({}));
    // A merge patch keeps what it does not mention: a condition list that went away is nulled.
    if st.conditions.is_none() {
        value["conditions"] = serde_json::Value::Null;
    }
    workload::write_status::<CloneSet>(ctx, ns, name, value).await
}

/// Adopts orphans matching the selector and releases owned pods that no longer match (upstream
/// `ClaimPods`); returns the owned pods after both.
async fn claim_pods(
    ctx: &Context,
    cs: &CloneSet,
    all_pods: &[Arc<Pod>],
    owned: Vec<Arc<Pod>>,
) -> Result<Vec<Arc<Pod>>, Error> {
    let ns = cs.namespace().unwrap_or_default();
    let uid = cs.uid().unwrap_or_default();
    let Some(owner) = cs.controller_owner_ref(&()) else {
        return Ok(owned);
    };
    let candidates: Vec<Arc<Pod>> = all_pods
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| {
            crate::pods::is_active(p) || owned_by(p.metadata.owner_references.as_deref(), &uid)
        })
        .cloned()
        .collect();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let cs_api: Api<CloneSet> = Api::namespaced(ctx.client.clone(), &ns);
    let recheck = async {
        match cs_api.get_opt(&cs.name_any()).await {
            Ok(Some(fresh)) => {
                fresh.uid() == cs.uid() && fresh.metadata.deletion_timestamp.is_none()
            }
            _ => false,
        }
    };
    let claimed = controllerref::claim_all(
        &api,
        &candidates,
        &owner,
        &cs.spec.selector,
        cs.metadata.deletion_timestamp.is_some(),
        recheck,
    )
    .await;
    let written = claimed.adopted.len() + claimed.released.len();
    if written > 0 {
        tracing::info!(
            adopted = claimed.adopted.len(),
            released = claimed.released.len(),
            "claimed pods"
        );
    }
    if let Some(source) = claimed.error {
        ctx.observe_write(WriteKind::UpdatePod, false);
        return Err(Error::Write {
            kind: WriteKind::UpdatePod,
            obj: cs.name_any(),
            source,
        });
    }
    let mut out: Vec<Arc<Pod>> = owned
        .into_iter()
        .filter(|p| !claimed.released.contains(&p.name_any()))
        .collect();
    out.extend(claimed.adopted.into_iter().map(Arc::new));
    Ok(out)
}

/// The CloneSets a pod event concerns: its controller if that is a CloneSet, otherwise (an
/// orphan) every CloneSet in its namespace whose selector matches it, which may adopt it.
fn pod_to_clonesets(pod: &Pod, clonesets: &Store<CloneSet>) -> Vec<ObjectRef<CloneSet>> {
    let ns = pod.namespace().unwrap_or_default();
    if let Some(r) = controllerref::controller_of(&pod.metadata) {
        let is_cloneset = r.kind == "CloneSet" && r.api_version.starts_with("apps.kruise.io/");
        return if is_cloneset {
            vec![ObjectRef::new(&r.name).within(&ns)]
        } else {
            Vec::new()
        };
    }
    clonesets
        .state()
        .iter()
        .filter(|cs| cs.namespace().as_deref() == Some(ns.as_str()))
        .filter(|cs| {
            !crate::selector::is_empty(&cs.spec.selector)
                && crate::selector::matches(&cs.spec.selector, pod.metadata.labels.as_ref())
        })
        .map(|cs| ObjectRef::from_obj(cs.as_ref()))
        .collect()
}

/// Runs the CloneSet controller until `shutdown` resolves. All pods are watched, not only those
/// with an instance id: orphans matching a CloneSet's selector are adopted.
pub async fn run(
    client: Client,
    gates: FeatureGates,
    metrics: Arc<Metrics>,
    config: RunConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let watches = Watches {
        controller: ControllerName::CloneSet,
        pod_label: None,
        pvc_label: Some(INSTANCE_ID_LABEL),
        component: "cloneset-controller",
        pod_owners: Some(pod_to_clonesets),
    };
    workload::run::<CloneSet, _, _>(client, gates, metrics, config, watches, reconcile, shutdown)
        .await;
}
