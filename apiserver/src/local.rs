//! An in-process client over a server's state: the same admission, validation and watch
//! events as HTTP requests, without a network round trip. Simulators and controllers that
//! run inside the server's process (nodes, garbage collection) use it.

use std::sync::Arc;

use axum::http::HeaderMap;
use serde_json::Value;

use crate::errors::ApiError;
use crate::http::delete::{delete_one, DeleteOptions, Deleted};
use crate::http::filter::ListFilter;
use crate::http::negotiate::{Output, Query};
use crate::http::rest::{create_object, list_items, write_update, Ctx};
use crate::http::{ApiState, Target};
use crate::metadata::WriteScope;

/// Group, version and plural of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gvr<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub plural: &'a str,
}

impl<'a> Gvr<'a> {
    /// A resource of the core group.
    pub const fn core(plural: &'a str) -> Self {
        Gvr {
            group: "",
            version: "v1",
            plural,
        }
    }

    /// A resource of a named group.
    pub const fn new(group: &'a str, version: &'a str, plural: &'a str) -> Self {
        Gvr {
            group,
            version,
            plural,
        }
    }
}

/// In-process access to a server's objects.
#[derive(Clone)]
pub struct LocalClient {
    state: Arc<ApiState>,
}

impl LocalClient {
    /// A client over shared server state.
    pub fn new(state: Arc<ApiState>) -> Self {
        LocalClient { state }
    }

    fn ctx(
        &self,
        gvr: Gvr<'_>,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<Ctx, ApiError> {
        let desc = self
            .state
            .registry
            .get(gvr.group, gvr.version, gvr.plural)
            .ok_or_else(ApiError::path_not_found)?;
        Ok(Ctx {
            state: self.state.clone(),
            desc,
            target: Target {
                group: gvr.group.to_string(),
                version: gvr.version.to_string(),
                namespace: namespace.map(String::from),
                resource: gvr.plural.to_string(),
                name: name.map(String::from),
                subresource: None,
            },
            query: Query::default(),
            headers: HeaderMap::new(),
            output: Output::Json,
        })
    }

    /// Creates an object (namespace taken from its metadata).
    pub async fn create(&self, gvr: Gvr<'_>, obj: Value) -> Result<Value, ApiError> {
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(String::from);
        let ctx = self.ctx(gvr, namespace.as_deref(), None)?;
        create_object(&ctx, obj).await.map(|(created, _)| created)
    }

    /// Reads one object.
    pub async fn get(
        &self,
        gvr: Gvr<'_>,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let ctx = self.ctx(gvr, namespace, Some(name))?;
        crate::http::objects::get(&self.state, &ctx.desc, ctx.namespace(), name)
            .await
            .map(|(obj, _)| obj)
    }

    /// Lists objects (all namespaces when `namespace` is `None`).
    pub async fn list(
        &self,
        gvr: Gvr<'_>,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let ctx = self.ctx(gvr, namespace, None)?;
        list_items(&ctx, &ListFilter::default())
            .await
            .map(|(items, _, _)| items)
    }

    /// Read-modify-write of one object (of its status when `status` is true), retried on conflicts.
    pub async fn update<F>(
        &self,
        gvr: Gvr<'_>,
        namespace: Option<&str>,
        name: &str,
        status: bool,
        mutate: F,
    ) -> Result<Value, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let ctx = self.ctx(gvr, namespace, Some(name))?;
        let scope = if status {
            WriteScope::Status
        } else {
            WriteScope::Main
        };
        write_update(&ctx, scope, None, mutate)
            .await
            .map(|(saved, _)| saved)
    }

    /// Deletes one object with the given options; returns the object if it is only marked for
    /// deletion, `None` once it is gone.
    pub async fn delete(
        &self,
        gvr: Gvr<'_>,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Option<Value>, ApiError> {
        let ctx = self.ctx(gvr, namespace, Some(name))?;
        match delete_one(&ctx, options).await? {
            Deleted::Pending(obj) => Ok(Some(obj)),
            Deleted::Removed(_) => Ok(None),
        }
    }

    /// The shared server state.
    pub fn state(&self) -> &Arc<ApiState> {
        &self.state
    }
}
