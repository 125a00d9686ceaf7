//! The writes of the ImagePullJob controller: NodeImage tag entries, the job's finalizer and
//! status, and TTL deletion. Every write has a timeout.

use std::future::Future;

use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::imagepulljob::{ImagePullJob, ImagePullJobStatus};
use kruise_api::apps::v1alpha1::nodeimage::{NodeImage, NodeImageSpec};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::plan::{self, ImageRef};
use super::{Context, Error, PROTECTION_FINALIZER};

async fn timed<T>(
    ctx: &Context,
    what: &'static str,
    obj: &str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<Option<T>, Error> {
    match tokio::time::timeout(ctx.write_timeout, fut).await {
        Ok(Ok(v)) => Ok(Some(v)),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => Ok(None),
        Ok(Err(source)) => Err(Error::Write {
            what,
            obj: obj.to_string(),
            source,
        }),
        Err(_) => Err(Error::Timeout {
            what,
            obj: obj.to_string(),
        }),
    }
}

/// Replaces a NodeImage's spec, guarded by the cached resource version (a conflict retries the
/// whole reconcile on fresh data). Returns the new resource version.
async fn replace_spec(
    ctx: &Context,
    ni: &NodeImage,
    spec: NodeImageSpec,
) -> Result<Option<String>, Error> {
    let api: Api<NodeImage> = Api::all(ctx.client.clone());
    let mut obj = ni.clone();
    obj.spec = spec;
    obj.status = None;
    let name = ni.name_any();
    let out = timed(
        ctx,
        "NodeImage",
        &name,
        api.replace(&name, &PostParams::default(), &obj),
    )
    .await?;
    Ok(out.and_then(|o| o.metadata.resource_version))
}

/// Adds the job's tag entry to one NodeImage and records the expectation.
pub async fn add_tag(
    ctx: &Context,
    key: &str,
    job: &ImagePullJob,
    ni: &NodeImage,
    image: &ImageRef,
    now: Timestamp,
) -> Result<(), Error> {
    let version = plan::status_version(ni, image);
    let Some(spec) = plan::with_tag(&ni.spec, version, job, image, now) else {
        return Ok(());
    };
    let rv = replace_spec(ctx, ni, spec).await?;
    ctx.expectations
        .expect_update(key, &ni.name_any(), rv.as_deref());
    Ok(())
}

/// Removes the job (by uid) from every NodeImage's tag entries.
pub async fn release(ctx: &Context, uid: &str) -> Result<(), Error> {
    for ni in ctx.node_images.state() {
        if let Some(spec) = plan::without_owner(&ni.spec, uid) {
            replace_spec(ctx, &ni, spec).await?;
        }
    }
    Ok(())
}

/// Adds or removes [`PROTECTION_FINALIZER`].
pub async fn set_finalizer(ctx: &Context, job: &ImagePullJob, present: bool) -> Result<(), Error> {
    let mut finalizers = job.finalizers().to_vec();
    let has = finalizers.iter().any(|f| f == PROTECTION_FINALIZER);
    if has == present {
        return Ok(());
    }
    if present {
        finalizers.push(PROTECTION_FINALIZER.to_string());
    } else {
        finalizers.retain(|f| f != PROTECTION_FINALIZER);
    }
    let api: Api<ImagePullJob> =
        Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": job.resource_version()}});
    timed(
        ctx,
        "ImagePullJob finalizer",
        &job.name_any(),
        api.patch(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        ),
    )
    .await?;
    Ok(())
}

/// Writes the job's status.
pub async fn write_status(
    ctx: &Context,
    job: &ImagePullJob,
    st: &ImagePullJobStatus,
) -> Result<(), Error> {
    let api: Api<ImagePullJob> =
        Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let patch = json!({"status": st});
    timed(
        ctx,
        "ImagePullJob status",
        &job.name_any(),
        api.patch_status(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        ),
    )
    .await?;
    Ok(())
}

/// Deletes a finished job.
pub async fn delete_job(ctx: &Context, job: &ImagePullJob) -> Result<(), Error> {
    let api: Api<ImagePullJob> =
        Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    timed(
        ctx,
        "ImagePullJob delete",
        &job.name_any(),
        api.delete(&job.name_any(), &DeleteParams::background()),
    )
    .await?;
    Ok(())
}
