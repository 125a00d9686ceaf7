//! A CRI endpoint (runtime.v1 subset) per simulated node on a unix socket: images against the
//! node's cache (pulls take the simulated time), and sandboxes and containers reflecting the pods
//! the kubelet simulator runs. Stopping a container makes the kubelet restart it, as on a real
//! node. `kruise-daemon` talks to this exactly as it talks to containerd.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_server::{ImageService, ImageServiceServer};
use k8s_cri::v1::runtime_service_server::{RuntimeService, RuntimeServiceServer};
use k8s_openapi::jiff::Timestamp;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use crate::latency::{self, LatencyModel};
use crate::runtime::{
    image_id, CachedImage, ContainerPhase, ContainerRuntime, NodeRuntime, PodRef, PodRuntime,
    PullRecord,
};

/// The CRI services of one node.
#[derive(Clone)]
pub struct CriService {
    node: Arc<NodeRuntime>,
    model: LatencyModel,
}

impl CriService {
    pub fn new(node: Arc<NodeRuntime>, model: LatencyModel) -> Self {
        CriService { node, model }
    }

    /// Serves both CRI services on a unix socket at `path` until the future is dropped.
    pub async fn serve(self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        tonic::transport::Server::builder()
            .add_service(RuntimeServiceServer::new(self.clone()))
            .add_service(ImageServiceServer::new(self))
            .serve_with_incoming(UnixListenerStream::new(listener))
            .await?;
        Ok(())
    }
}

fn nanos(t: Timestamp) -> i64 {
    t.as_nanosecond() as i64
}

fn unsupported(what: &str) -> Status {
    Status::unimplemented(format!(
        "{what} is not supported by the kruise-local CRI simulator"
    ))
}

fn sandbox_labels(p: &PodRuntime) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = p.labels.clone().into_iter().collect();
    labels.insert("io.kubernetes.pod.name".into(), p.name.clone());
    labels.insert("io.kubernetes.pod.namespace".into(), p.namespace.clone());
    labels.insert("io.kubernetes.pod.uid".into(), p.uid.clone());
    labels
}

fn container_labels(p: &PodRuntime, c: &ContainerRuntime) -> HashMap<String, String> {
    HashMap::from([
        ("io.kubernetes.pod.name".to_string(), p.name.clone()),
        (
            "io.kubernetes.pod.namespace".to_string(),
            p.namespace.clone(),
        ),
        ("io.kubernetes.pod.uid".to_string(), p.uid.clone()),
        ("io.kubernetes.container.name".to_string(), c.name.clone()),
    ])
}

fn container_state(c: &ContainerRuntime) -> cri::ContainerState {
    match c.phase {
        ContainerPhase::Pulling { .. }
        | ContainerPhase::PullFailed { .. }
        | ContainerPhase::Creating { .. } => cri::ContainerState::ContainerCreated,
        ContainerPhase::Running { .. } | ContainerPhase::Stopping { .. } => {
            cri::ContainerState::ContainerRunning
        }
        ContainerPhase::Exited { .. } => cri::ContainerState::ContainerExited,
    }
}

fn image_spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    })
}

fn to_container(p: &PodRuntime, c: &ContainerRuntime) -> cri::Container {
    cri::Container {
        id: c.id.clone(),
        pod_sandbox_id: p.sandbox_id.clone(),
        metadata: Some(cri::ContainerMetadata {
            name: c.name.clone(),
            attempt: c.restart_count as u32,
        }),
        image: image_spec(&c.image),
        image_ref: image_id(&c.image),
        image_id: image_id(&c.image),
        state: container_state(c) as i32,
        created_at: nanos(c.created_at),
        labels: container_labels(p, c),
        annotations: HashMap::new(),
    }
}

fn to_status(p: &PodRuntime, c: &ContainerRuntime) -> cri::ContainerStatus {
    let (started_at, finished_at, exit_code, reason) = match &c.phase {
        ContainerPhase::Running { started_at } => (nanos(*started_at), 0, 0, String::new()),
        ContainerPhase::Stopping { .. } => (nanos(c.created_at), 0, 0, String::new()),
        ContainerPhase::Exited {
            exit_code,
            reason,
            started_at,
            finished_at,
        } => (
            started_at.map(nanos).unwrap_or(0),
            nanos(*finished_at),
            *exit_code,
            reason.clone(),
        ),
        _ => (0, 0, 0, String::new()),
    };
    cri::ContainerStatus {
        id: c.id.clone(),
        metadata: Some(cri::ContainerMetadata {
            name: c.name.clone(),
            attempt: c.restart_count as u32,
        }),
        state: container_state(c) as i32,
        created_at: nanos(c.created_at),
        started_at,
        finished_at,
        exit_code,
        image: image_spec(&c.image),
        image_ref: image_id(&c.image),
        image_id: image_id(&c.image),
        reason,
        labels: container_labels(p, c),
        ..Default::default()
    }
}

fn to_image(name: &str, img: &CachedImage) -> cri::Image {
    cri::Image {
        id: img.id.clone(),
        repo_tags: vec![name.to_string()],
        repo_digests: vec![crate::runtime::image_digest_ref(name)],
        size: img.size_bytes,
        spec: image_spec(name),
        ..Default::default()
    }
}

fn labels_match(selector: &HashMap<String, String>, labels: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[tonic::async_trait]
impl RuntimeService for CriService {
    async fn version(
        &self,
        _: Request<cri::VersionRequest>,
    ) -> Result<Response<cri::VersionResponse>, Status> {
        Ok(Response::new(cri::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "kruise-local".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        _: Request<cri::RunPodSandboxRequest>,
    ) -> Result<Response<cri::RunPodSandboxResponse>, Status> {
        Err(unsupported(
            "RunPodSandbox (sandboxes follow the pods bound to this node)",
        ))
    }
    async fn stop_pod_sandbox(
        &self,
        _: Request<cri::StopPodSandboxRequest>,
    ) -> Result<Response<cri::StopPodSandboxResponse>, Status> {
        Err(unsupported("StopPodSandbox"))
    }
    async fn remove_pod_sandbox(
        &self,
        _: Request<cri::RemovePodSandboxRequest>,
    ) -> Result<Response<cri::RemovePodSandboxResponse>, Status> {
        Err(unsupported("RemovePodSandbox"))
    }

    async fn pod_sandbox_status(
        &self,
        req: Request<cri::PodSandboxStatusRequest>,
    ) -> Result<Response<cri::PodSandboxStatusResponse>, Status> {
        let id = req.into_inner().pod_sandbox_id;
        let state = self.node.lock();
        let p = state
            .pods
            .values()
            .find(|p| p.sandbox_id == id)
            .ok_or_else(|| Status::not_found(format!("sandbox {id} not found")))?;
        Ok(Response::new(cri::PodSandboxStatusResponse {
            status: Some(cri::PodSandboxStatus {
                id: p.sandbox_id.clone(),
                metadata: Some(cri::PodSandboxMetadata {
                    name: p.name.clone(),
                    uid: p.uid.clone(),
                    namespace: p.namespace.clone(),
                    attempt: 0,
                }),
                state: cri::PodSandboxState::SandboxReady as i32,
                created_at: nanos(p.created_at),
                network: Some(cri::PodSandboxNetworkStatus {
                    ip: p.pod_ip.clone(),
                    ..Default::default()
                }),
                labels: sandbox_labels(p),
                ..Default::default()
            }),
            containers_statuses: p.containers.values().map(|c| to_status(p, c)).collect(),
            ..Default::default()
        }))
    }

    async fn list_pod_sandbox(
        &self,
        req: Request<cri::ListPodSandboxRequest>,
    ) -> Result<Response<cri::ListPodSandboxResponse>, Status> {
        let filter = req.into_inner().filter.unwrap_or_default();
        let state = self.node.lock();
        let items = state
            .pods
            .values()
            .filter(|p| filter.id.is_empty() || p.sandbox_id == filter.id)
            .filter(|p| labels_match(&filter.label_selector, &sandbox_labels(p)))
            .filter(|_| {
                filter
                    .state
                    .as_ref()
                    .is_none_or(|s| s.state == cri::PodSandboxState::SandboxReady as i32)
            })
            .map(|p| cri::PodSandbox {
                id: p.sandbox_id.clone(),
                metadata: Some(cri::PodSandboxMetadata {
                    name: p.name.clone(),
                    uid: p.uid.clone(),
                    namespace: p.namespace.clone(),
                    attempt: 0,
                }),
                state: cri::PodSandboxState::SandboxReady as i32,
                created_at: nanos(p.created_at),
                labels: sandbox_labels(p),
                ..Default::default()
            })
            .collect();
        Ok(Response::new(cri::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        _: Request<cri::CreateContainerRequest>,
    ) -> Result<Response<cri::CreateContainerResponse>, Status> {
        Err(unsupported(
            "CreateContainer (containers follow the pod specs)",
        ))
    }
    async fn start_container(
        &self,
        _: Request<cri::StartContainerRequest>,
    ) -> Result<Response<cri::StartContainerResponse>, Status> {
        Err(unsupported(
            "StartContainer (the kubelet simulator restarts stopped containers)",
        ))
    }

    async fn stop_container(
        &self,
        req: Request<cri::StopContainerRequest>,
    ) -> Result<Response<cri::StopContainerResponse>, Status> {
        let req = req.into_inner();
        let now = Timestamp::now();
        let grace = Duration::from_secs(req.timeout.max(0) as u64);
        let stop = self.model.container_stop(grace);
        let until = now + stop;
        let exit_code = if req.timeout <= 0 { 137 } else { 143 };
        let pod = {
            let mut state = self.node.lock();
            let (p, c) = state
                .pods
                .values_mut()
                .find_map(|p| {
                    let (ns, name) = (p.namespace.clone(), p.name.clone());
                    p.containers
                        .values_mut()
                        .find(|c| c.id == req.container_id)
                        .map(|c| {
                            (
                                PodRef {
                                    namespace: ns,
                                    name,
                                },
                                c,
                            )
                        })
                })
                .ok_or_else(|| {
                    Status::not_found(format!("container {} not found", req.container_id))
                })?;
            match c.phase {
                ContainerPhase::Running { .. } => {
                    c.phase = ContainerPhase::Stopping {
                        until,
                        exit_code,
                        reason: "Error".into(),
                    };
                    c.stopped_externally = true;
                }
                // Stopping an exited or stopping container is a no-op, as in containerd.
                _ => return Ok(Response::new(cri::StopContainerResponse {})),
            }
            p
        };
        tokio::time::sleep(stop).await;
        {
            let mut state = self.node.lock();
            if let Some(c) = state
                .pods
                .values_mut()
                .flat_map(|p| p.containers.values_mut())
                .find(|c| c.id == req.container_id)
            {
                if let ContainerPhase::Stopping {
                    exit_code, reason, ..
                } = c.phase.clone()
                {
                    c.phase = ContainerPhase::Exited {
                        exit_code,
                        reason,
                        started_at: None,
                        finished_at: Timestamp::now(),
                    };
                }
            }
        }
        self.node.notify(pod);
        Ok(Response::new(cri::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        _: Request<cri::RemoveContainerRequest>,
    ) -> Result<Response<cri::RemoveContainerResponse>, Status> {
        Err(unsupported("RemoveContainer"))
    }

    async fn list_containers(
        &self,
        req: Request<cri::ListContainersRequest>,
    ) -> Result<Response<cri::ListContainersResponse>, Status> {
        let filter = req.into_inner().filter.unwrap_or_default();
        let state = self.node.lock();
        let containers = state
            .pods
            .values()
            .filter(|p| filter.pod_sandbox_id.is_empty() || p.sandbox_id == filter.pod_sandbox_id)
            .flat_map(|p| p.containers.values().map(move |c| (p, c)))
            .filter(|(_, c)| filter.id.is_empty() || c.id == filter.id)
            .filter(|(_, c)| {
                filter
                    .state
                    .as_ref()
                    .is_none_or(|s| s.state == container_state(c) as i32)
            })
            .filter(|(p, c)| labels_match(&filter.label_selector, &container_labels(p, c)))
            .map(|(p, c)| to_container(p, c))
            .collect();
        Ok(Response::new(cri::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        req: Request<cri::ContainerStatusRequest>,
    ) -> Result<Response<cri::ContainerStatusResponse>, Status> {
        let id = req.into_inner().container_id;
        let state = self.node.lock();
        let status = state
            .pods
            .values()
            .find_map(|p| {
                p.containers
                    .values()
                    .find(|c| c.id == id)
                    .map(|c| to_status(p, c))
            })
            .ok_or_else(|| Status::not_found(format!("container {id} not found")))?;
        Ok(Response::new(cri::ContainerStatusResponse {
            status: Some(status),
            ..Default::default()
        }))
    }

    async fn update_container_resources(
        &self,
        _: Request<cri::UpdateContainerResourcesRequest>,
    ) -> Result<Response<cri::UpdateContainerResourcesResponse>, Status> {
        Err(unsupported("UpdateContainerResources"))
    }
    async fn reopen_container_log(
        &self,
        _: Request<cri::ReopenContainerLogRequest>,
    ) -> Result<Response<cri::ReopenContainerLogResponse>, Status> {
        Err(unsupported("ReopenContainerLog"))
    }
    async fn exec_sync(
        &self,
        _: Request<cri::ExecSyncRequest>,
    ) -> Result<Response<cri::ExecSyncResponse>, Status> {
        Err(unsupported("ExecSync"))
    }
    async fn exec(
        &self,
        _: Request<cri::ExecRequest>,
    ) -> Result<Response<cri::ExecResponse>, Status> {
        Err(unsupported("Exec"))
    }
    async fn attach(
        &self,
        _: Request<cri::AttachRequest>,
    ) -> Result<Response<cri::AttachResponse>, Status> {
        Err(unsupported("Attach"))
    }
    async fn port_forward(
        &self,
        _: Request<cri::PortForwardRequest>,
    ) -> Result<Response<cri::PortForwardResponse>, Status> {
        Err(unsupported("PortForward"))
    }
    async fn container_stats(
        &self,
        _: Request<cri::ContainerStatsRequest>,
    ) -> Result<Response<cri::ContainerStatsResponse>, Status> {
        Err(unsupported("ContainerStats"))
    }
    async fn list_container_stats(
        &self,
        _: Request<cri::ListContainerStatsRequest>,
    ) -> Result<Response<cri::ListContainerStatsResponse>, Status> {
        Err(unsupported("ListContainerStats"))
    }
    async fn pod_sandbox_stats(
        &self,
        _: Request<cri::PodSandboxStatsRequest>,
    ) -> Result<Response<cri::PodSandboxStatsResponse>, Status> {
        Err(unsupported("PodSandboxStats"))
    }
    async fn list_pod_sandbox_stats(
        &self,
        _: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Result<Response<cri::ListPodSandboxStatsResponse>, Status> {
        Err(unsupported("ListPodSandboxStats"))
    }
    async fn update_runtime_config(
        &self,
        _: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<cri::UpdateRuntimeConfigResponse>, Status> {
        Ok(Response::new(cri::UpdateRuntimeConfigResponse {}))
    }

    async fn status(
        &self,
        _: Request<cri::StatusRequest>,
    ) -> Result<Response<cri::StatusResponse>, Status> {
        let cond = |t: &str| cri::RuntimeCondition {
            r#type: t.into(),
            status: true,
            ..Default::default()
        };
        Ok(Response::new(cri::StatusResponse {
            status: Some(cri::RuntimeStatus {
                conditions: vec![cond("RuntimeReady"), cond("NetworkReady")],
            }),
            ..Default::default()
        }))
    }

    async fn checkpoint_container(
        &self,
        _: Request<cri::CheckpointContainerRequest>,
    ) -> Result<Response<cri::CheckpointContainerResponse>, Status> {
        Err(unsupported("CheckpointContainer"))
    }

    type GetContainerEventsStream =
        tokio_stream::Empty<Result<cri::ContainerEventResponse, Status>>;
    async fn get_container_events(
        &self,
        _: Request<cri::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        Err(unsupported("GetContainerEvents"))
    }
    async fn list_metric_descriptors(
        &self,
        _: Request<cri::ListMetricDescriptorsRequest>,
    ) -> Result<Response<cri::ListMetricDescriptorsResponse>, Status> {
        Ok(Response::new(cri::ListMetricDescriptorsResponse::default()))
    }
    async fn list_pod_sandbox_metrics(
        &self,
        _: Request<cri::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<cri::ListPodSandboxMetricsResponse>, Status> {
        Ok(Response::new(cri::ListPodSandboxMetricsResponse::default()))
    }
    async fn runtime_config(
        &self,
        _: Request<cri::RuntimeConfigRequest>,
    ) -> Result<Response<cri::RuntimeConfigResponse>, Status> {
        Ok(Response::new(cri::RuntimeConfigResponse::default()))
    }
}

#[tonic::async_trait]
impl ImageService for CriService {
    async fn list_images(
        &self,
        req: Request<cri::ListImagesRequest>,
    ) -> Result<Response<cri::ListImagesResponse>, Status> {
        let want = req
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|s| s.image)
            .filter(|s| !s.is_empty());
        let state = self.node.lock();
        let images = state
            .images
            .iter()
            .filter(|(name, img)| want.as_ref().is_none_or(|w| *name == w || &img.id == w))
            .map(|(name, img)| to_image(name, img))
            .collect();
        Ok(Response::new(cri::ListImagesResponse { images }))
    }

    async fn image_status(
        &self,
        req: Request<cri::ImageStatusRequest>,
    ) -> Result<Response<cri::ImageStatusResponse>, Status> {
        let want = req.into_inner().image.map(|s| s.image).unwrap_or_default();
        let state = self.node.lock();
        // CRI answers an unknown image with an empty image, not an error.
        let image = state
            .images
            .iter()
            .find(|(name, img)| **name == want || img.id == want)
            .map(|(n, i)| to_image(n, i));
        Ok(Response::new(cri::ImageStatusResponse {
            image,
            ..Default::default()
        }))
    }

    async fn pull_image(
        &self,
        req: Request<cri::PullImageRequest>,
    ) -> Result<Response<cri::PullImageResponse>, Status> {
        let image = req.into_inner().image.map(|s| s.image).unwrap_or_default();
        if image.is_empty() {
            return Err(Status::invalid_argument(
                "PullImage: image reference is empty",
            ));
        }
        let started = Timestamp::now();
        let until = {
            let mut state = self.node.lock();
            state.settle_pulls(started, &self.model);
            if let Some(id) = state.images.get(&image).map(|i| i.id.clone()) {
                return Ok(Response::new(cri::PullImageResponse { image_ref: id }));
            }
            state.pull_until(&image, started, &self.model)
        };
        let took = std::time::Duration::try_from(until.duration_since(started)).unwrap_or_default();
        tokio::time::sleep(took).await;
        let finished = Timestamp::now();
        let mut state = self.node.lock();
        if latency::is_unpullable(&image) {
            state.pulls.push(PullRecord {
                image: image.clone(),
                started,
                finished,
                succeeded: false,
                by: "cri",
            });
            return Err(Status::not_found(format!(
                "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": not found"
            )));
        }
        state.pulls.push(PullRecord {
            image: image.clone(),
            started,
            finished,
            succeeded: true,
            by: "cri",
        });
        // The fetch this call joined (or started) is done: it enters the cache as any pull does.
        state.settle_pulls(finished, &self.model);
        let id = state
            .images
            .get(&image)
            .map_or_else(|| image_id(&image), |i| i.id.clone());
        Ok(Response::new(cri::PullImageResponse { image_ref: id }))
    }

    async fn remove_image(
        &self,
        req: Request<cri::RemoveImageRequest>,
    ) -> Result<Response<cri::RemoveImageResponse>, Status> {
        let want = req.into_inner().image.map(|s| s.image).unwrap_or_default();
        let mut state = self.node.lock();
        // Removing an absent image succeeds, as in containerd.
        state
            .images
            .retain(|name, img| *name != want && img.id != want);
        Ok(Response::new(cri::RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _: Request<cri::ImageFsInfoRequest>,
    ) -> Result<Response<cri::ImageFsInfoResponse>, Status> {
        Ok(Response::new(cri::ImageFsInfoResponse::default()))
    }
}
