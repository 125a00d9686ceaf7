//! Feature gates with upstream OpenKruise names (`--feature-gates A=true,B=false`).

use std::collections::BTreeMap;
use std::str::FromStr;

/// Gates known to the agent, with upstream defaults. Names not in this table are rejected.
const KNOWN: &[(&str, bool)] = &[
    ("PodWebhook", true),
    ("KruiseDaemon", true),
    ("DaemonWatchingPod", true),
    ("CloneSetShortHash", false),
    ("KruisePodReadinessGate", false),
    ("PreDownloadImageForInPlaceUpdate", false),
    ("CloneSetPartitionRollback", false),
    ("ResourcesDeletionProtection", false),
    ("PodUnavailableBudgetDeleteGate", true),
    ("PodUnavailableBudgetUpdateGate", false),
    ("WorkloadSpread", true),
    ("TemplateNoDefaults", false),
    ("InPlaceUpdateEnvFromMetadata", true),
    ("StatefulSetAutoDeletePVC", true),
    ("SidecarSetPatchPodMetadataDefaultsAllowed", false),
    ("SidecarTerminator", false),
    ("PodProbeMarkerGate", true),
    ("PreDownloadImageForDaemonSetUpdate", false),
    ("CloneSetEventHandlerOptimization", false),
    ("PreparingUpdateAsUpdate", false),
    // On by default here (upstream: off) so image pre-download works without flags.
    ("ImagePullJobGate", true),
    ("ResourceDistributionGate", false),
    ("DeletionProtectionForCRDCascadingGate", false),
    ("EnhancedLivenessProbe", false),
    ("RecreatePodWhenChangeVCTInCloneSetGate", false),
    ("StatefulSetStartOrdinal", false),
    ("PodIndexLabel", true),
    ("EnableExternalCerts", false),
    ("StatefulSetAutoResizePVCGate", false),
    ("ForceDeleteTimeoutExpectationGate", false),
    ("InPlaceWorkloadVerticalScaling", false),
    ("EnablePodProbeMarkerOnServerless", false),
    ("EnableSortSidecarContainerByName", false),
    ("InPlacePodVerticalScaling", false),
    ("DefaultHostNetworkHostPortsInPodTemplates", false),
    ("DaemonSetPruneIneligibleNodes", false),
];

/// `CloneSetShortHash`: pods carry the short hash in `controller-revision-hash`.
pub const CLONESET_SHORT_HASH: &str = "CloneSetShortHash";
/// `PreDownloadImageForInPlaceUpdate`: pull new images ahead of in-place updates.
pub const PRE_DOWNLOAD_IMAGE_FOR_IN_PLACE_UPDATE: &str = "PreDownloadImageForInPlaceUpdate";
/// `CloneSetPartitionRollback`: raising partition rolls pods back to currentRevision.
pub const CLONESET_PARTITION_ROLLBACK: &str = "CloneSetPartitionRollback";
/// `TemplateNoDefaults`: do not default pod templates in workload webhooks.
pub const TEMPLATE_NO_DEFAULTS: &str = "TemplateNoDefaults";
/// `PodWebhook`: serve the pod mutating webhook.
pub const POD_WEBHOOK: &str = "PodWebhook";
/// `KruisePodReadinessGate`: inject `KruisePodReady` into all pods.
pub const KRUISE_POD_READINESS_GATE: &str = "KruisePodReadinessGate";
/// `PreparingUpdateAsUpdate`: count PreparingUpdate pods as update-revision pods when scaling.
pub const PREPARING_UPDATE_AS_UPDATE: &str = "PreparingUpdateAsUpdate";

/// Parse failures of `--feature-gates`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GateError {
    /// An entry without `=`.
    #[error("feature gate entry {entry:?} is not NAME=true|false")]
    Malformed {
        /// The offending entry.
        entry: String,
    },
    /// A gate name the agent does not know.
    #[error("unrecognized feature gate: {name}")]
    Unknown {
        /// The name given.
        name: String,
    },
    /// A value that is neither true nor false.
    #[error("invalid value of {name}: {value:?}, must be true or false")]
    BadValue {
        /// Gate name.
        name: String,
        /// The value given.
        value: String,
    },
}

/// The effective set of feature gates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureGates {
    values: BTreeMap<&'static str, bool>,
}

impl Default for FeatureGates {
    fn default() -> Self {
        Self {
            values: KNOWN.iter().copied().collect(),
        }
    }
}

impl FeatureGates {
    /// Whether a gate is on. Unknown names are off.
    pub fn enabled(&self, name: &str) -> bool {
        self.values.get(name).copied().unwrap_or(false)
    }

    /// Sets one gate (used by tests and by dependent-gate rules).
    pub fn set(&mut self, name: &str, on: bool) -> Result<(), GateError> {
        let key = KNOWN
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(k, _)| *k)
            .ok_or_else(|| GateError::Unknown {
                name: name.to_string(),
            })?;
        self.values.insert(key, on);
        Ok(())
    }

    /// Applies upstream's "gate X off forces gate Y off" rules.
    fn apply_dependencies(&mut self) {
        if !self.enabled("PodWebhook") {
            for g in [
                "KruisePodReadinessGate",
                "PodUnavailableBudgetDeleteGate",
                "PodUnavailableBudgetUpdateGate",
                "WorkloadSpread",
                "SidecarSetPatchPodMetadataDefaultsAllowed",
                "EnhancedLivenessProbe",
                "EnablePodProbeMarkerOnServerless",
            ] {
                self.values.insert(static_name(g), false);
            }
        }
        if !self.enabled("KruiseDaemon") {
            for g in [
                "PreDownloadImageForInPlaceUpdate",
                "DaemonWatchingPod",
                "InPlaceUpdateEnvFromMetadata",
                "PreDownloadImageForDaemonSetUpdate",
                "PodProbeMarkerGate",
                "SidecarTerminator",
                "ImagePullJobGate",
                "EnhancedLivenessProbe",
            ] {
                self.values.insert(static_name(g), false);
            }
        }
        if self.enabled("PreDownloadImageForInPlaceUpdate") {
            self.values.insert(static_name("ImagePullJobGate"), true);
        }
        if !self.enabled("ResourcesDeletionProtection") {
            self.values
                .insert(static_name("DeletionProtectionForCRDCascadingGate"), false);
        }
    }
}

fn static_name(name: &str) -> &'static str {
    KNOWN
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(k, _)| *k)
        .unwrap_or("PodWebhook")
}

impl FromStr for FeatureGates {
    type Err = GateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut gates = FeatureGates::default();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, value) = entry.split_once('=').ok_or_else(|| GateError::Malformed {
                entry: entry.to_string(),
            })?;
            let on = match value.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(GateError::BadValue {
                        name: name.to_string(),
                        value: value.to_string(),
                    })
                }
            };
            gates.set(name.trim(), on)?;
        }
        gates.apply_dependencies();
        Ok(gates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_upstream() {
        let g = FeatureGates::default();
        assert!(g.enabled("PodWebhook"));
        assert!(!g.enabled(CLONESET_SHORT_HASH));
        assert!(!g.enabled("NoSuchGate"));
    }

    #[test]
    fn parses_lists_and_applies_dependencies() {
        let g: FeatureGates = "CloneSetShortHash=true, PodWebhook=false".parse().unwrap();
        assert!(g.enabled(CLONESET_SHORT_HASH));
        assert!(!g.enabled("WorkloadSpread"));
        let g: FeatureGates = "PreDownloadImageForInPlaceUpdate=true".parse().unwrap();
        assert!(g.enabled("ImagePullJobGate"));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            "Nope=true".parse::<FeatureGates>(),
            Err(GateError::Unknown {
                name: "Nope".into()
            })
        );
        assert!(matches!(
            "PodWebhook".parse::<FeatureGates>(),
            Err(GateError::Malformed { .. })
        ));
        assert!(matches!(
            "PodWebhook=yes".parse::<FeatureGates>(),
            Err(GateError::BadValue { .. })
        ));
    }
}
