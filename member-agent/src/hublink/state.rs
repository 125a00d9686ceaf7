//! The link's durable state in the member cluster: the last Work revision applied and the
//! object each Work created, in one ConfigMap, so a restarted agent resumes where it stopped.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};

use super::apply::{ObjectRef, FIELD_MANAGER};

/// What survives an agent restart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkState {
    /// Last Work revision applied (0 = none: ask for a snapshot).
    pub revision: i64,
    /// `namespace/name` of each Work -> the object it created.
    pub works: BTreeMap<String, ObjectRef>,
}

/// Loads and saves [`LinkState`] in `namespace/name`.
pub struct StateStore {
    api: Api<ConfigMap>,
    name: String,
}

impl StateStore {
    /// The ConfigMap `name` in `namespace`.
    pub fn new(client: Client, namespace: &str, name: &str) -> Self {
        StateStore {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
        }
    }

    /// The saved state (default when absent or unreadable).
    pub async fn load(&self) -> Result<LinkState, kube::Error> {
        let Some(cm) = self.api.get_opt(&self.name).await? else {
            return Ok(LinkState::default());
        };
        let data = cm.data.unwrap_or_default();
        Ok(LinkState {
            revision: data
                .get("revision")
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            works: data
                .get("works")
                .and_then(|w| serde_json::from_str(w).ok())
                .unwrap_or_default(),
        })
    }

    /// Saves the state.
    pub async fn save(&self, state: &LinkState) -> Result<(), kube::Error> {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                ("revision".to_string(), state.revision.to_string()),
                (
                    "works".to_string(),
                    serde_json::to_string(&state.works).unwrap_or_default(),
                ),
            ])),
            ..Default::default()
        };
        let mut value = serde_json::to_value(&cm).unwrap_or_default();
        value["apiVersion"] = "v1".into();
        value["kind"] = "ConfigMap".into();
        self.api
            .patch(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&value),
            )
            .await
            .map(|_| ())
    }
}
