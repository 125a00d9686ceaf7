//! The per-node CRI endpoint over a real unix socket, with the k8s-cri client as kruise-daemon
//! uses it: timed pulls, image listing, and a stopped container restarted by the kubelet.

use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kruise_local::cri::CriService;
use kruise_local::kubelet::plan::advance;
use kruise_local::latency::LatencyModel;
use kruise_local::runtime::{ContainerPhase, Runtimes};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

async fn connect(path: std::path::PathBuf) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = path.clone();
        let attempt = Endpoint::try_from("http://[::]:50051")
            .expect("endpoint")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let p = p.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(p).await?)) }
            }))
            .await;
        match attempt {
            Ok(ch) => return ch,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("CRI socket never came up: {e}"),
        }
    }
}

fn model() -> LatencyModel {
    LatencyModel {
        image_pull_ms_per_mb: 5,
        default_image_mb: 10,
        container_start_ms: 0,
        readiness_delay_ms: 0,
        schedule_delay_ms: 0,
        container_stop_ms: 20,
    }
}

fn spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

#[tokio::test]
async fn pulls_take_model_time_and_cached_images_are_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtimes, _changes) = Runtimes::new(&[("n1".into(), "192.168.0.1".into())]);
    let sock = dir.path().join("nodes/n1/cri.sock");
    let svc = CriService::new(runtimes.get("n1").expect("node").clone(), model());
    let path = sock.clone();
    tokio::spawn(async move { svc.serve(&path).await });
    let ch = connect(sock).await;
    let mut images = ImageServiceClient::new(ch.clone());
    let mut runtime = RuntimeServiceClient::new(ch);

    let version = runtime
        .version(cri::VersionRequest::default())
        .await
        .expect("version")
        .into_inner();
    assert_eq!(
        (
            version.runtime_name.as_str(),
            version.runtime_api_version.as_str()
        ),
        ("kruise-local", "v1")
    );

    // 200 MB at 5 ms/MB = 1 s.
    let big = "example.com/big:1.0-size-200mb";
    let started = Instant::now();
    let pulled = images
        .pull_image(cri::PullImageRequest {
            image: spec(big),
            ..Default::default()
        })
        .await
        .expect("pull")
        .into_inner();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1000),
        "pull took {took:?}, the model says 1 s"
    );
    assert!(pulled.image_ref.starts_with("sha256:"));

    // A cached image costs nothing.
    let again = Instant::now();
    images
        .pull_image(cri::PullImageRequest {
            image: spec(big),
            ..Default::default()
        })
        .await
        .expect("pull");
    assert!(again.elapsed() < Duration::from_millis(500));

    let listed = images
        .list_images(cri::ListImagesRequest::default())
        .await
        .expect("list")
        .into_inner()
        .images;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].repo_tags, [big]);
    assert_eq!(listed[0].size, 200 * 1024 * 1024);

    let absent = images
        .image_status(cri::ImageStatusRequest {
            image: spec("example.com/absent:1"),
            ..Default::default()
        })
        .await
        .expect("status");
    assert!(absent.into_inner().image.is_none());

    let err = images
        .pull_image(cri::PullImageRequest {
            image: spec("example.com/unpullable:1"),
            ..Default::default()
        })
        .await
        .expect_err("unpullable image");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("not found"));
    let log = runtimes.get("n1").expect("node").lock().pulls.clone();
    let summary: Vec<(&str, bool)> = log
        .iter()
        .map(|p| (p.image.as_str(), p.succeeded))
        .collect();
    assert_eq!(summary, [(big, true), ("example.com/unpullable:1", false)]);
}

#[tokio::test]
async fn a_stopped_container_exits_and_the_kubelet_restarts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtimes, mut changes) = Runtimes::new(&[("n1".into(), "192.168.0.1".into())]);
    let node = runtimes.get("n1").expect("node").clone();
    let m = model();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": {"nodeName": "n1", "containers": [
            {"name": "a", "image": "example.com/a:1"},
            {"name": "b", "image": "example.com/b:1"}
        ]}
    }))
    .expect("pod");
    // Bring the pod up in the runtime.
    let mut now = Timestamp::now();
    for _ in 0..10 {
        let step = advance(&pod, &mut node.lock(), || "10.244.0.9".into(), now, &m);
        match step.next_wakeup {
            Some(at) => now = at.max(now),
            None => break,
        }
    }
    assert!(node.lock().pods["u1"]
        .containers
        .values()
        .all(|c| c.is_running()));

    let sock = dir.path().join("cri.sock");
    let svc = CriService::new(node.clone(), m.clone());
    let path = sock.clone();
    tokio::spawn(async move { svc.serve(&path).await });
    let mut runtime = RuntimeServiceClient::new(connect(sock).await);

    let filter = cri::ContainerFilter {
        label_selector: [
            ("io.kubernetes.pod.uid".to_string(), "u1".to_string()),
            ("io.kubernetes.container.name".to_string(), "a".to_string()),
        ]
        .into(),
        ..Default::default()
    };
    let listed = runtime
        .list_containers(cri::ListContainersRequest {
            filter: Some(filter),
        })
        .await
        .expect("list")
        .into_inner()
        .containers;
    assert_eq!(listed.len(), 1);
    let a_id = listed[0].id.clone();
    assert_eq!(
        listed[0].state,
        cri::ContainerState::ContainerRunning as i32
    );

    runtime
        .stop_container(cri::StopContainerRequest {
            container_id: a_id.clone(),
            timeout: 5,
        })
        .await
        .expect("stop");
    let exited = runtime
        .container_status(cri::ContainerStatusRequest {
            container_id: a_id.clone(),
            verbose: false,
        })
        .await
        .expect("status")
        .into_inner()
        .status
        .expect("status");
    assert_eq!(exited.state, cri::ContainerState::ContainerExited as i32);
    assert_eq!(exited.exit_code, 143);
    let changed = changes.recv().await.expect("the kubelet is told");
    assert_eq!(
        (changed.namespace.as_str(), changed.name.as_str()),
        ("default", "web")
    );

    // The kubelet's next step restarts it with a new id and restart count 1; b is untouched.
    advance(
        &pod,
        &mut node.lock(),
        || unreachable!(),
        Timestamp::now(),
        &m,
    );
    let state = node.lock();
    let a = &state.pods["u1"].containers["a"];
    assert_ne!(a.id, a_id);
    assert_eq!(a.restart_count, 1);
    assert!(matches!(
        a.phase,
        ContainerPhase::Creating { .. } | ContainerPhase::Running { .. }
    ));
    assert_eq!(state.pods["u1"].containers["b"].restart_count, 0);
}
