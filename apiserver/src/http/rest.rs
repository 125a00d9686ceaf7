//! REST verbs on resources: get, list, create, update (PUT), patch, and dispatch to watch,
//! delete and subresource handlers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::admission::{self, FieldValidation};
use super::negotiate::{self, Output, Query};
use super::{
    delete, filter::ListFilter, objects, paging, subresources, table, watch, ApiState, Target,
};
use crate::errors::ApiError;
use crate::metadata::{self, WriteScope};
use crate::registry::ResourceDescriptor;
use crate::store::StoreError;
use crate::webhook::Operation;

/// Everything a handler needs about one request.
#[derive(Clone)]
pub struct Ctx {
    pub state: Arc<ApiState>,
    pub desc: Arc<ResourceDescriptor>,
    pub target: Target,
    pub query: Query,
    pub headers: HeaderMap,
    pub output: Output,
}

impl Ctx {
    /// The object name from the URL ("" for collections).
    pub fn name(&self) -> &str {
        self.target.name.as_deref().unwrap_or("")
    }

    /// The URL namespace (only for namespaced resources).
    pub fn namespace(&self) -> Option<&str> {
        if self.desc.namespaced {
            self.target.namespace.as_deref()
        } else {
            None
        }
    }

    /// Whether `dryRun=All` was asked for.
    pub fn dry_run(&self) -> bool {
        self.query.get("dryRun") == Some("All")
    }

    /// `fieldValidation` (default Warn).
    pub fn field_validation(&self) -> Result<FieldValidation, ApiError> {
        match self.query.non_empty("fieldValidation") {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other:?}; supported values: Ignore, Warn, Strict"
            ))),
        }
    }

    /// A NotFound error for this request's object.
    pub fn not_found(&self) -> ApiError {
        ApiError::not_found(&self.desc.plural, &self.desc.group, self.name())
    }

    /// Maps a store error for this request's object.
    pub fn store_error(&self, err: StoreError) -> ApiError {
        ApiError::from_store(err, &self.desc.plural, &self.desc.group, self.name())
    }
}

/// Handles a request on a resource URL.
pub async fn handle(
    state: Arc<ApiState>,
    method: Method,
    target: Target,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let desc = state
        .registry
        .get(&target.group, &target.version, &target.resource)
        .ok_or_else(ApiError::path_not_found)?;
    if target.namespace.is_some() && !desc.namespaced {
        return Err(ApiError::path_not_found());
    }
    let query = Query::from_uri(&uri)?;
    let output = negotiate::output(&headers, &query)?;
    let ctx = Ctx {
        state,
        desc,
        target,
        query,
        headers,
        output,
    };
    let sub = ctx.target.subresource.clone();
    let has_name = ctx.target.name.is_some();
    let subs = ctx.desc.subresources.clone();
    match (method, has_name, sub.as_deref()) {
        (Method::GET, false, None) => {
            if ctx.query.flag("watch") {
                watch::serve(ctx).await
            } else {
                list(&ctx).await
            }
        }
        (Method::GET, true, None) => get(&ctx).await,
        (Method::GET, true, Some("status")) if subs.status => get(&ctx).await,
        (Method::GET, true, Some("scale")) if subs.scale.is_some() => {
            subresources::get_scale(&ctx).await
        }
        (Method::POST, false, None) if super::reviews::is_review(&ctx.desc) => {
            super::reviews::create(&ctx, body).await
        }
        (Method::POST, false, None) => create(&ctx, body).await,
        (method, _, _) if super::reviews::is_review(&ctx.desc) => {
            Err(ApiError::method_not_allowed(
                super::verb_of(&method),
                &ctx.desc.plural,
                &ctx.desc.group,
            ))
        }
        (Method::POST, true, Some("eviction")) if subs.eviction => {
            subresources::evict(&ctx, body).await
        }
        (Method::POST, true, Some("binding")) if subs.binding => {
            subresources::bind(&ctx, body).await
        }
        (Method::PUT, true, None) => update(&ctx, body, WriteScope::Main).await,
        (Method::PUT, true, Some("status")) if subs.status => {
            update(&ctx, body, WriteScope::Status).await
        }
        (Method::PUT, true, Some("scale")) if subs.scale.is_some() => {
            subresources::put_scale(&ctx, body).await
        }
        (Method::PUT, true, Some("finalize")) if subs.finalize => {
            subresources::finalize(&ctx, body).await
        }
        (Method::PATCH, true, None) => patch(&ctx, body, WriteScope::Main).await,
        (Method::PATCH, true, Some("status")) if subs.status => {
            patch(&ctx, body, WriteScope::Status).await
        }
        (Method::PATCH, true, Some("scale")) if subs.scale.is_some() => {
            subresources::patch_scale(&ctx, body).await
        }
        (Method::DELETE, true, None) => delete::delete(&ctx, body).await,
        (Method::DELETE, false, None) => delete::delete_collection(&ctx, body).await,
        (_, _, Some(_)) => Err(ApiError::path_not_found()),
        (method, _, None) => Err(ApiError::method_not_allowed(
            super::verb_of(&method),
            &ctx.desc.plural,
            &ctx.desc.group,
        )),
    }
}

/// Renders one object in the negotiated form.
pub fn render_object(ctx: &Ctx, obj: Value, status: StatusCode, warnings: &[String]) -> Response {
    let body = match ctx.output {
        Output::Json => obj,
        Output::PartialMetadata => table::partial_metadata(&obj),
        Output::Table(include) => {
            table::table(&ctx.desc, &[obj], include, None, chrono::Utc::now())
        }
    };
    let mut response = (status, axum::Json(body)).into_response();
    for warning in warnings {
        let text = format!("299 - {:?}", warning);
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append("Warning", value);
        }
    }
    response
}

async fn get(ctx: &Ctx) -> Result<Response, ApiError> {
    let (obj, _) = objects::get(&ctx.state, &ctx.desc, ctx.namespace(), ctx.name()).await?;
    Ok(render_object(ctx, obj, StatusCode::OK, &[]))
}

fn check_list_options(query: &Query) -> Result<(), ApiError> {
    let invalid = |field: &str, msg: &str| {
        ApiError::invalid(
            "ListOptions",
            "meta.k8s.io",
            "",
            vec![crate::errors::Cause::new("FieldValueForbidden", field, msg)],
        )
    };
    if query.non_empty("resourceVersionMatch").is_some()
        && query.non_empty("resourceVersion").is_none()
    {
        return Err(invalid(
            "resourceVersionMatch",
            "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    if query.non_empty("resourceVersionMatch").is_some() && query.non_empty("continue").is_some() {
        return Err(invalid(
            "resourceVersionMatch",
            "Forbidden: resourceVersionMatch is forbidden when continue is provided",
        ));
    }
    if query.flag("sendInitialEvents") {
        return Err(invalid(
            "sendInitialEvents",
            "Forbidden: sendInitialEvents is forbidden for list",
        ));
    }
    Ok(())
}

/// Why a list failed.
enum ListError {
    Api(ApiError),
    /// The continue token's revision is no longer kept; the list may continue after `start` at
    /// the current revision.
    ContinueExpired {
        start: String,
    },
}

impl From<ApiError> for ListError {
    fn from(e: ApiError) -> Self {
        ListError::Api(e)
    }
}

/// Lists matching objects: `(items, list revision, continue token)`. A continue token's pages
/// read at the revision of the list's first page; a compacted one is 410 `Expired`.
pub async fn list_items(
    ctx: &Ctx,
    filter: &ListFilter,
) -> Result<(Vec<Value>, i64, Option<String>), ApiError> {
    list_pages(ctx, filter).await.map_err(|e| match e {
        ListError::Api(e) => e,
        ListError::ContinueExpired { .. } => paging::expired_error(),
    })
}

async fn list_pages(
    ctx: &Ctx,
    filter: &ListFilter,
) -> Result<(Vec<Value>, i64, Option<String>), ListError> {
    let prefix = ctx.desc.collection_prefix(ctx.namespace());
    let limit = ctx
        .query
        .int("limit")?
        .filter(|l| *l > 0)
        .map(|l| l as usize);
    let (mut start, mut first_revision) = match ctx.query.non_empty("continue") {
        Some(token) => {
            let token = paging::decode(token)?;
            let revision = (token.revision != paging::LATEST).then_some(token.revision);
            (Some(token.start), revision)
        }
        None => (None, None),
    };
    let continued = start.clone();
    let mut items = Vec::new();
    let mut continue_token = None;
    loop {
        let page_limit = limit.map(|l| l.saturating_sub(items.len()).max(1));
        let store = &ctx.state.store;
        let page = match first_revision {
            // Every page after the first reads the first page's snapshot.
            Some(revision) => {
                store
                    .list_at(&prefix, start.as_deref(), page_limit, revision)
                    .await
            }
            None => store.list(&prefix, start.as_deref(), page_limit).await,
        };
        let page = match (page, &continued) {
            (Ok(page), _) => page,
            (Err(StoreError::Compacted { requested, oldest }), Some(continued)) => {
                tracing::debug!(
                    prefix,
                    requested,
                    oldest,
                    "continue token revision compacted: 410 Expired"
                );
                return Err(ListError::ContinueExpired {
                    start: continued.clone(),
                });
            }
            (Err(e), _) => return Err(ctx.store_error(e).into()),
        };
        let revision = *first_revision.get_or_insert(page.revision);
        let mut last_key = None;
        for kv in &page.items {
            last_key = Some(kv.key.clone());
            let obj = objects::decode(kv, &ctx.desc)?;
            if filter.matches(&obj) {
                items.push(obj);
            }
        }
        match (limit, page.more, last_key) {
            (Some(l), true, Some(key)) if items.len() >= l => {
                continue_token = Some(paging::encode(&key, revision));
                break;
            }
            (_, true, Some(key)) => start = Some(key),
            _ => break,
        }
    }
    Ok((items, first_revision.unwrap_or(0), continue_token))
}

async fn list(ctx: &Ctx) -> Result<Response, ApiError> {
    check_list_options(&ctx.query)?;
    let filter = ListFilter::from_query(&ctx.query, &ctx.desc)?;
    let (items, revision, continue_token) = match list_pages(ctx, &filter).await {
        Ok(listed) => listed,
        Err(ListError::Api(e)) => return Err(e),
        Err(ListError::ContinueExpired { start }) => return Ok(paging::expired_response(&start)),
    };
    let mut list_meta = json!({"resourceVersion": revision.to_string()});
    if let Some(token) = &continue_token {
        list_meta["continue"] = json!(token);
    }
    let body = match ctx.output {
        Output::Json => json!({
            "kind": ctx.desc.list_kind,
            "apiVersion": ctx.desc.api_version(),
            "metadata": list_meta,
            "items": items,
        }),
        Output::PartialMetadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_meta,
            "items": items.iter().map(table::partial_metadata).collect::<Vec<_>>(),
        }),
        Output::Table(include) => {
            let mut t = table::table(
                &ctx.desc,
                &items,
                include,
                Some(revision),
                chrono::Utc::now(),
            );
            if let Some(token) = continue_token {
                t["metadata"]["continue"] = json!(token);
            }
            t
        }
    };
    Ok(axum::Json(body).into_response())
}

async fn create(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let bytes = super::read_body(body).await?;
    let content_type = super::header(&ctx.headers, "content-type");
    let obj = negotiate::decode_body(&bytes, content_type)?;
    let (created, warnings) = create_object(ctx, obj).await?;
    Ok(render_object(ctx, created, StatusCode::CREATED, &warnings))
}

/// Creates an object from a decoded body: metadata, admission, namespace check, store.
pub async fn create_object(ctx: &Ctx, mut obj: Value) -> Result<(Value, Vec<String>), ApiError> {
    let validation = ctx.field_validation()?;
    let mut warnings = admission::unknown_field_check(ctx, &obj, validation)?;
    let url_ns = ctx.target.namespace.clone();
    let name =
        metadata::prepare_create(&mut obj, &ctx.desc, url_ns.as_deref(), chrono::Utc::now())?;
    let namespace = metadata::meta_str(&obj, "namespace").map(String::from);
    if let Some(ns) = namespace.as_deref() {
        objects::check_namespace_for_create(
            &ctx.state,
            ns,
            &ctx.desc.plural,
            &ctx.desc.group,
            &name,
        )
        .await?;
    }
    warnings.extend(
        crate::webhook::admit_write(ctx, Operation::Create, &mut obj, None, |obj| {
            admission::admit(ctx, obj, None)
        })
        .await?,
    );
    if ctx.dry_run() {
        return Ok((obj, warnings));
    }
    let key = ctx.desc.object_key(namespace.as_deref(), &name);
    let kv = ctx
        .state
        .store
        .create(&key, objects::encode(&obj, &ctx.desc)?)
        .await
        .map_err(|e| ApiError::from_store(e, &ctx.desc.plural, &ctx.desc.group, &name))?;
    objects::set_resource_version(&mut obj, kv.mod_revision);
    admission::after_write(ctx, &obj).await;
    Ok((obj, warnings))
}

async fn update(ctx: &Ctx, body: Body, scope: WriteScope) -> Result<Response, ApiError> {
    let bytes = super::read_body(body).await?;
    let content_type = super::header(&ctx.headers, "content-type");
    let obj = negotiate::decode_body(&bytes, content_type)?;
    let validation = ctx.field_validation()?;
    let mut warnings = admission::unknown_field_check(ctx, &obj, validation)?;
    let requested_rv = objects::parse_resource_version(&obj)?;
    if requested_rv.is_none() && !ctx.desc.builtin && scope == WriteScope::Main {
        return Err(ApiError::invalid(
            &ctx.desc.kind,
            &ctx.desc.group,
            ctx.name(),
            vec![crate::errors::Cause::invalid(
                "metadata.resourceVersion",
                &json!("0x0"),
                "must be specified for an update",
            )],
        ));
    }
    if let Some(name) = metadata::meta_str(&obj, "name") {
        if name != ctx.name() {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({})",
                ctx.name()
            )));
        }
    }
    let (saved, more) = write_update(ctx, scope, requested_rv, |_current| Ok(obj.clone())).await?;
    warnings.extend(more);
    Ok(render_object(ctx, saved, StatusCode::OK, &warnings))
}

/// Read-modify-write of one object with retries on store conflicts (when no precondition was
/// given): `mutate` gets the current object and returns the desired one.
pub async fn write_update<F>(
    ctx: &Ctx,
    scope: WriteScope,
    precondition: Option<i64>,
    mut mutate: F,
) -> Result<(Value, Vec<String>), ApiError>
where
    F: FnMut(&Value) -> Result<Value, ApiError>,
{
    let key = ctx.desc.object_key(ctx.namespace(), ctx.name());
    for _ in 0..8 {
        let (current, kv) =
            objects::get(&ctx.state, &ctx.desc, ctx.namespace(), ctx.name()).await?;
        if let Some(rv) = precondition {
            if rv != kv.mod_revision {
                return Err(ApiError::conflict(
                    &ctx.desc.plural,
                    &ctx.desc.group,
                    ctx.name(),
                ));
            }
        }
        let mut desired = mutate(&current)?;
        if let Some(rv) = objects::parse_resource_version(&desired)? {
            if rv != kv.mod_revision {
                return Err(ApiError::conflict(
                    &ctx.desc.plural,
                    &ctx.desc.group,
                    ctx.name(),
                ));
            }
        }
        metadata::prepare_update(&mut desired, &current, &ctx.desc, scope)?;
        let warnings = crate::webhook::admit_write(
            ctx,
            Operation::Update,
            &mut desired,
            Some(&current),
            |obj| admission::admit(ctx, obj, Some(&current)),
        )
        .await?;
        if ctx.dry_run() {
            objects::set_resource_version(&mut desired, kv.mod_revision);
            return Ok((desired, warnings));
        }
        if metadata::ready_to_remove(&desired) {
            return match ctx.state.store.delete(&key, Some(kv.mod_revision)).await {
                Ok(deleted) => {
                    objects::set_resource_version(&mut desired, deleted.mod_revision);
                    admission::after_delete(ctx, &desired).await;
                    Ok((desired, warnings))
                }
                Err(StoreError::Conflict { .. }) if precondition.is_none() => continue,
                Err(e) => Err(ctx.store_error(e)),
            };
        }
        if strip_rv(&desired) == strip_rv(&current) {
            return Ok((current, warnings));
        }
        match ctx
            .state
            .store
            .update(&key, objects::encode(&desired, &ctx.desc)?, kv.mod_revision)
            .await
        {
            Ok(kv) => {
                objects::set_resource_version(&mut desired, kv.mod_revision);
                admission::after_write(ctx, &desired).await;
                return Ok((desired, warnings));
            }
            Err(StoreError::Conflict { .. }) if precondition.is_none() => continue,
            Err(e) => return Err(ctx.store_error(e)),
        }
    }
    Err(ApiError::conflict(
        &ctx.desc.plural,
        &ctx.desc.group,
        ctx.name(),
    ))
}

fn strip_rv(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    copy
}

async fn patch(ctx: &Ctx, body: Body, scope: WriteScope) -> Result<Response, ApiError> {
    let bytes = super::read_body(body).await?;
    let content_type = super::header(&ctx.headers, "content-type")
        .unwrap_or("")
        .to_string();
    let patch_type = super::patching::patch_type(&content_type, &ctx.desc)?;
    if ctx.query.non_empty("force").is_some() && !patch_type.is_apply() {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            vec![crate::errors::Cause::new(
                "FieldValueForbidden",
                "force",
                "Forbidden: may not be specified for non-apply patch",
            )],
        ));
    }
    if patch_type.is_apply() {
        if ctx.query.non_empty("fieldManager").is_none() {
            return Err(ApiError::invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                vec![crate::errors::Cause::new(
                    "FieldValueRequired",
                    "fieldManager",
                    "Required value: is required for apply patch",
                )],
            ));
        }
        let applied = negotiate::decode_body(&bytes, Some("application/yaml"))?;
        let existing = objects::get(&ctx.state, &ctx.desc, ctx.namespace(), ctx.name()).await;
        if let Err(ApiError { code: 404, .. }) = existing {
            if scope == WriteScope::Main {
                if let Some(name) = metadata::meta_str(&applied, "name") {
                    if name != ctx.name() {
                        return Err(ApiError::bad_request(format!(
                            "the name of the object ({name}) does not match the name on the URL ({})",
                            ctx.name()
                        )));
                    }
                }
                let mut obj = applied;
                metadata::meta_mut(&mut obj)?.insert("name".into(), json!(ctx.name()));
                let (created, warnings) = create_object(ctx, obj).await?;
                return Ok(render_object(ctx, created, StatusCode::CREATED, &warnings));
            }
        }
    }
    let validation = ctx.field_validation()?;
    let desc = ctx.desc.clone();
    let mut field_warnings = Vec::new();
    let (saved, mut warnings) = write_update(ctx, scope, None, |current| {
        let patched = super::patching::apply(&patch_type, current, &bytes, &desc)?;
        field_warnings = admission::unknown_field_check(ctx, &patched, validation)?;
        Ok(patched)
    })
    .await?;
    warnings.extend(field_warnings);
    Ok(render_object(ctx, saved, StatusCode::OK, &warnings))
}
