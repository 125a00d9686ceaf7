//! `apps.kruise.io/v1alpha1`.

pub mod advancedcronjob;
pub mod broadcastjob;
pub mod cloneset;
pub mod containerrecreaterequest;
pub mod daemonset;
pub mod imagelistpulljob;
pub mod imagepulljob;
pub mod nodeimage;
pub mod sidecarset;
pub mod statefulset;
pub mod uniteddeployment;
pub mod workloadspread;

pub use advancedcronjob::{AdvancedCronJob, AdvancedCronJobSpec, AdvancedCronJobStatus};
pub use broadcastjob::{BroadcastJob, BroadcastJobSpec, BroadcastJobStatus};
pub use cloneset::{CloneSet, CloneSetSpec, CloneSetStatus};
pub use containerrecreaterequest::{
    ContainerRecreateRequest, ContainerRecreateRequestSpec, ContainerRecreateRequestStatus,
};
pub use daemonset::{DaemonSet, DaemonSetSpec, DaemonSetStatus};
pub use imagelistpulljob::{ImageListPullJob, ImageListPullJobSpec, ImageListPullJobStatus};
pub use imagepulljob::{ImagePullJob, ImagePullJobSpec, ImagePullJobStatus};
pub use nodeimage::{NodeImage, NodeImageSpec, NodeImageStatus};
pub use sidecarset::{SidecarSet, SidecarSetSpec, SidecarSetStatus};
pub use statefulset::{StatefulSet, StatefulSetSpec, StatefulSetStatus};
pub use uniteddeployment::{UnitedDeployment, UnitedDeploymentSpec, UnitedDeploymentStatus};
pub use workloadspread::{WorkloadSpread, WorkloadSpreadSpec, WorkloadSpreadStatus};
