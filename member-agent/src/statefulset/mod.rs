//! The Advanced StatefulSet controller (`apps.kruise.io/v1beta1` `StatefulSet`; v1alpha1 objects
//! are the same stored objects): observe → [`plan::plan`] → [`apply::apply`] → status.

pub mod apply;
pub mod plan;
pub mod settings;
pub mod status;
pub mod webhook;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1beta1::StatefulSet;
use kruise_api::defaults::Defaulted;
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::{info_span, warn, Instrument};

use crate::gates::{self, FeatureGates};
use crate::metrics::{ControllerName, Metrics};
use crate::predownload;
use crate::revision;
use crate::workload::{self, owned_by, resource_versions, Watches};
use apply::POD_NAME_LABEL;
use settings::Settings;

/// Gate `StatefulSetStartOrdinal`.
pub const GATE_START_ORDINAL: &str = "StatefulSetStartOrdinal";
/// Gate `PodIndexLabel`.
pub const GATE_POD_INDEX_LABEL: &str = "PodIndexLabel";
/// Gate `StatefulSetAutoResizePVCGate`.
pub const GATE_AUTO_RESIZE_PVC: &str = "StatefulSetAutoResizePVCGate";

pub use crate::workload::{Context, Error, RunConfig};

/// A defaulted copy, as the mutating webhook would store it. With `template_defaults` false
/// (`TemplateNoDefaults`), the pod template is left as written.
pub fn defaulted(set: &StatefulSet, template_defaults: bool) -> StatefulSet {
    let mut out = set.clone();
    out.apply_defaults();
    if !template_defaults {
        out.spec.template = set.spec.template.clone();
    }
    out
}

/// Reconciles one Advanced StatefulSet.
pub async fn reconcile(set: Arc<StatefulSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let span = info_span!("reconcile", statefulset = %format!("{}/{}", set.namespace().unwrap_or_default(), set.name_any()));
    let res = reconcile_inner(&set, &ctx).instrument(span).await;
    ctx.metrics
        .observe_reconcile(ControllerName::StatefulSet, res.is_ok(), started.elapsed());
    res
}

async fn reconcile_inner(set: &StatefulSet, ctx: &Arc<Context>) -> Result<Action, Error> {
    let ns = set.namespace().unwrap_or_default();
    let name = set.name_any();
    let key = format!("{ns}/{name}");
    if set.metadata.deletion_timestamp.is_some() {
        ctx.expectations.forget(&key);
        return Ok(Action::await_change());
    }
    if !ctx.caches_ready().await {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let uid = set.uid().unwrap_or_default();
    let owned: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| owned_by(p.metadata.owner_references.as_deref(), &uid))
        .collect();
    if !ctx.expectations.satisfied(&key, &resource_versions(&owned)) {
        return Ok(Action::requeue(Duration::from_secs(2)));
    }

    let defaulted = defaulted(set, !ctx.gates.enabled(gates::TEMPLATE_NO_DEFAULTS));
    let resize_gate = ctx.gates.enabled(GATE_AUTO_RESIZE_PVC);
    let s = Settings::from_statefulset(
        &defaulted,
        ctx.gates.enabled(GATE_START_ORDINAL),
        resize_gate,
    );

    let history = workload::history(ctx, &ns, &uid);
    let collision_count = set
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
    let current_revision = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .filter(|c| templates.contains_key(c))
        .unwrap_or_else(|| update_revision.clone());

    if let Some(jobs) = &ctx.jobs {
        let updated_ready = set
            .status
            .as_ref()
            .filter(|st| st.update_revision.as_deref() == Some(update_revision.as_str()))
            .map_or(0, |st| st.updated_ready_replicas.unwrap_or(0));
        let w = predownload::Workload {
            meta: &set.metadata,
            api_version: "apps.kruise.io/v1beta1",
            kind: "StatefulSet",
            replicas: s.replicas,
            partition: s.partition,
            max_unavailable: s.max_unavailable,
            recreate: s.on_delete || s.pod_update_policy == settings::PodUpdatePolicy::ReCreate,
            selector: &set.spec.selector,
            updated_ready,
        };
        let revs = predownload::Revisions {
            history: &history,
            templates: &templates,
            current: &current_revision,
            update: &update_revision,
        };
        predownload::reconcile(&ctx.client, jobs, &ctx.recorder, set, w, revs).await;
    }

    let pvcs = ctx.pvcs.state();
    let own_claims: Vec<&PersistentVolumeClaim> = pvcs
        .iter()
        .map(|c| c.as_ref())
        .filter(|c| c.namespace().as_deref() == Some(ns.as_str()))
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .filter(|c| s.claim_ordinal(&c.name_any()).is_some())
        .collect();
    let claims: BTreeSet<String> = own_claims.iter().map(|c| c.name_any()).collect();
    let claim_storage: BTreeMap<String, String> = own_claims
        .iter()
        .filter_map(|c| Some((c.name_any(), settings::claim_request(c)?)))
        .collect();
    let owned_refs: Vec<&Pod> = owned.iter().map(|p| p.as_ref()).collect();
    let t = Timestamp::now();
    let observed = plan::Observed {
        settings: &s,
        pods: owned_refs.clone(),
        claims,
        claim_storage: claim_storage.clone(),
        current_revision: &current_revision,
        update_revision: &update_revision,
        templates: &templates,
    };
    let the_plan = plan::plan(&observed, t);
    tracing::debug!(
        creates = the_plan.create.len(),
        deletes = the_plan.delete.len(),
        updates = the_plan.update.len(),
        resizes = the_plan.resize_claims.len(),
        waiting_on = ?the_plan.waiting_on,
        "planned"
    );
    let factory = apply::PodFactory {
        set: &defaulted,
        settings: &s,
        templates: &templates,
        pod_index_label: ctx.gates.enabled(GATE_POD_INDEX_LABEL),
    };
    let applied = apply::apply(ctx, &defaulted, &factory, &the_plan, t).await;

    let inputs = status::StatusInputs {
        generation: set.metadata.generation,
        previous: set.status.as_ref(),
        update_revision: &update_revision,
        current_revision: &current_revision,
        collision_count,
        label_selector: crate::selector::to_string(&set.spec.selector),
        scale_error: applied.scale_error.as_ref().map(ToString::to_string),
        update_error: applied.update_error.as_ref().map(ToString::to_string),
        claim_storage: resize_gate.then_some(&claim_storage),
    };
    let new_status = status::status(&s, &owned_refs, &inputs, t);
    if set.status.as_ref() != Some(&new_status) {
        let value = serde_json::to_value(&new_status).unwrap_or_else(|_| json!({}));
        workload::write_status::<StatefulSet>(ctx, &ns, &name, value).await?;
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
        warn!(error = %e, "statefulset update refused");
    }
    let mut requeue = the_plan.requeue.unwrap_or(Duration::from_secs(300));
    if !the_plan.is_noop() || the_plan.waiting_on.is_some() {
        requeue = requeue.min(Duration::from_secs(5));
    }
    Ok(Action::requeue(requeue))
}

/// Runs the Advanced StatefulSet controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    gates: FeatureGates,
    metrics: Arc<Metrics>,
    config: RunConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let watches = Watches {
        controller: ControllerName::StatefulSet,
        pod_label: Some(POD_NAME_LABEL),
        pvc_label: None,
        component: "statefulset-controller",
        pod_owners: None,
    };
    workload::run::<StatefulSet, _, _>(
        client, gates, metrics, config, watches, reconcile, shutdown,
    )
    .await;
}
