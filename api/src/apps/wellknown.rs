//! Well-known labels, annotations, finalizers and condition types (spec section 1.1).

/// Label: revision of a pod (CloneSet writes `<name>-<hash>`, ASTS/ADS the upstream form).
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";
/// Label: short template hash on CloneSet pods.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Label: random 5-character id of a CloneSet pod and its PVCs.
pub const CLONESET_INSTANCE_ID: &str = "apps.kruise.io/cloneset-instance-id";
/// Label: pod name on Advanced StatefulSet pods.
pub const STATEFULSET_POD_NAME: &str = "statefulset.kubernetes.io/pod-name";
/// Label: ordinal on Advanced StatefulSet pods.
pub const POD_INDEX: &str = "apps.kubernetes.io/pod-index";
/// Label: template generation on Advanced DaemonSet pods.
pub const POD_TEMPLATE_GENERATION: &str = "pod-template-generation";
/// Label: its presence asks the owning workload to delete the pod.
pub const SPECIFIED_DELETE: &str = "apps.kruise.io/specified-delete";
/// Label: lifecycle state of a pod.
pub const LIFECYCLE_STATE: &str = "lifecycle.apps.kruise.io/state";
/// Annotation: RFC 3339 time of the last lifecycle state change.
pub const LIFECYCLE_TIMESTAMP: &str = "lifecycle.apps.kruise.io/timestamp";
/// Annotation: JSON in-place update state of a pod.
pub const INPLACE_UPDATE_STATE: &str = "apps.kruise.io/inplace-update-state";
/// Annotation: pending in-place update spec during the grace period.
pub const INPLACE_UPDATE_GRACE: &str = "apps.kruise.io/inplace-update-grace";
/// Annotation: container hashes written by kruise-daemon.
pub const RUNTIME_CONTAINERS_META: &str = "apps.kruise.io/runtime-containers-meta";
/// Pod condition and readiness gate: False while an in-place update runs.
pub const IN_PLACE_UPDATE_READY: &str = "InPlaceUpdateReady";
/// Pod condition and readiness gate: multi-writer "not ready" switch.
pub const KRUISE_POD_READY: &str = "KruisePodReady";
/// Label prefix marking a pod unavailable even when Ready.
pub const UNAVAILABLE_POD_LABEL_PREFIX: &str = "unavailable-pod.kruise.io/";
/// Annotation: pod deletion cost honoured by CloneSet scale-in.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// Annotation: `Ordered` starts containers in list order.
pub const CONTAINER_LAUNCH_PRIORITY: &str = "apps.kruise.io/container-launch-priority";
/// Label (v1alpha1 CloneSet): pods in PreparingDelete do not count towards replicas.
pub const CLONESET_SCALING_EXCLUDE_PREPARING_DELETE: &str =
    "apps.kruise.io/cloneset-scaling-exclude-preparing-delete";
/// Label: subset name on UnitedDeployment subset workloads and their pods.
pub const SUBSET_NAME: &str = "apps.kruise.io/subset-name";
/// Label: UnitedDeployment revision on subset workloads.
pub const UD_CONTROLLER_REVISION_HASH: &str = "apps.kruise.io/controller-revision-hash";
/// Annotation: raw JSON of the subset patch on a subset workload.
pub const SUBSET_PATCH: &str = "apps.kruise.io/subset-patch";
/// Label: a UnitedDeployment pod held in reserved state.
pub const UD_RESERVED_POD: &str = "apps.kruise.io/united-deployment-reserved-pod";
/// Annotation: `{"name":..,"subset":..,"uid":..}` of the WorkloadSpread that placed a pod.
pub const MATCHED_WORKLOADSPREAD: &str = "apps.kruise.io/matched-workloadspread";
/// Finalizer: ImagePullJob secret clean-up.
pub const DELETION_PROTECTION_FINALIZER: &str = "apps.kruise.io/deletion-protection";
/// Label: deletion protection (`Always` / `Cascading`).
pub const DELETE_PROTECTION: &str = "policy.kruise.io/delete-protection";
/// Annotation: pod is exempt from PodUnavailableBudgets.
pub const PUB_NO_PROTECT: &str = "pub.kruise.io/no-protect";
/// Annotation: PUB name cached on a pod by the webhook.
pub const RELATED_PUB: &str = "kruise.io/related-pub";

/// Annotation on CloneSet / Advanced StatefulSet: nodes pre-downloading a new image at once (default 1).
pub const IMAGE_PREDOWNLOAD_PARALLELISM: &str = "apps.kruise.io/image-predownload-parallelism";
/// Annotation: timeout of each pre-download pull in seconds (default 600).
pub const IMAGE_PREDOWNLOAD_TIMEOUT_SECONDS: &str =
    "apps.kruise.io/image-predownload-timeout-seconds";
/// Annotation: start pre-downloading once this many (or this percent of) pods are updated and ready.
pub const IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS: &str =
    "apps.kruise.io/image-predownload-min-updated-ready-pods";
/// ControllerRevision label: the pre-download jobs of this revision were created (upstream's spelling).
pub const IMAGE_PREDOWNLOAD_CREATED: &str = "apps.kruise.io/pre-predownload-created";
/// ControllerRevision label: this revision needs no pre-download.
pub const IMAGE_PREDOWNLOAD_IGNORED: &str = "apps.kruise.io/image-predownload-ignored";

/// Lifecycle states of a pod (`lifecycle.apps.kruise.io/state`).
pub mod lifecycle_state {
    /// Created, waiting for the preNormal hook or scheduling.
    pub const PREPARING_NORMAL: &str = "PreparingNormal";
    /// Serving.
    pub const NORMAL: &str = "Normal";
    /// Held by the inPlaceUpdate hook before an update.
    pub const PREPARING_UPDATE: &str = "PreparingUpdate";
    /// Being updated in place.
    pub const UPDATING: &str = "Updating";
    /// Updated, waiting for the hook to be re-satisfied.
    pub const UPDATED: &str = "Updated";
    /// Held by the preDelete hook before deletion.
    pub const PREPARING_DELETE: &str = "PreparingDelete";
}
