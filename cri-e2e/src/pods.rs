//! Pod and container specs and the calls the tests repeat: run a pod, create and start a
//! container, wait for its exit, read its status; every CRI error is a panic here (test code,
//! like the node).

use std::time::Duration;

use crate::api::*;
use crate::client::Status;
use crate::image;
use crate::node::{wait_until, Node};

/// Bound on a container reaching a state.
pub const STATE_BOUND: Duration = Duration::from_secs(60);

pub const NS_POD: i32 = NamespaceMode::Pod as i32;
pub const NS_NODE: i32 = NamespaceMode::Node as i32;

/// A pod named `name`: its logs under the node, its cgroups under the node's parent; the host's
/// (the node's) network when `host_network`, else the CNI bridge.
pub fn pod_config(node: &Node, name: &str, host_network: bool) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "e2e".into(),
            attempt: 0,
        }),
        // The kubelet names no hostname for host-network pods (no UTS namespace of their own).
        hostname: if host_network {
            String::new()
        } else {
            name.into()
        },
        log_directory: node.log_dir(name).to_string_lossy().into_owned(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: node.cgroup_parent(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: if host_network { NS_NODE } else { NS_POD },
                    pid: NamespaceMode::Container as i32,
                    ipc: NS_POD,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// RunPodSandbox through the node's handler; returns the pod's id.
/// `pod_config` run at once: the config (its containers need it) and the pod's id.
pub fn new_pod(node: &Node, name: &str, host_network: bool) -> (PodSandboxConfig, String) {
    let cfg = pod_config(node, name, host_network);
    let pod = run_pod(node, &cfg);
    (cfg, pod)
}

pub fn run_pod(node: &Node, config: &PodSandboxConfig) -> String {
    try_run_pod(node, config).unwrap_or_else(|e| panic!("RunPodSandbox: {e}"))
}

pub fn try_run_pod(node: &Node, config: &PodSandboxConfig) -> Result<String, Status> {
    try_run_pod_with(node, config, &node.setup.shim.handler)
}

/// RunPodSandbox through the runtime handler `handler`.
pub fn try_run_pod_with(
    node: &Node,
    config: &PodSandboxConfig,
    handler: &str,
) -> Result<String, Status> {
    let req = RunPodSandboxRequest {
        config: Some(config.clone()),
        runtime_handler: handler.into(),
    };
    node.cri
        .call(node.cri.runtime().run_pod_sandbox(req))
        .map(|r| r.pod_sandbox_id)
}

/// A busybox container `name` running `argv`, logging to `<name>.log` in the pod's directory.
pub fn container(name: &str, argv: &[&str]) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image::BUSYBOX.into(),
            ..Default::default()
        }),
        command: argv.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig::default()),
        ..Default::default()
    }
}

/// `sh -c <script>` as a container's command.
pub fn sh(name: &str, script: &str) -> ContainerConfig {
    container(name, &["/bin/sh", "-c", script])
}

pub fn try_create(
    node: &Node,
    pod: &str,
    pod_config: &PodSandboxConfig,
    config: &ContainerConfig,
) -> Result<String, Status> {
    let req = CreateContainerRequest {
        pod_sandbox_id: pod.into(),
        config: Some(config.clone()),
        sandbox_config: Some(pod_config.clone()),
    };
    node.cri
        .call(node.cri.runtime().create_container(req))
        .map(|r| r.container_id)
}

pub fn try_start(node: &Node, id: &str) -> Result<(), Status> {
    let req = StartContainerRequest {
        container_id: id.into(),
    };
    node.cri
        .call(node.cri.runtime().start_container(req))
        .map(|_| ())
}

/// CreateContainer then StartContainer; returns the container's id.
pub fn start(
    node: &Node,
    pod: &str,
    pod_config: &PodSandboxConfig,
    config: &ContainerConfig,
) -> String {
    let id = try_create(node, pod, pod_config, config)
        .unwrap_or_else(|e| panic!("CreateContainer: {e}"));
    try_start(node, &id).unwrap_or_else(|e| panic!("StartContainer {id}: {e}"));
    id
}

pub fn status(node: &Node, id: &str) -> ContainerStatus {
    let req = ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    };
    node.cri
        .call(node.cri.runtime().container_status(req))
        .unwrap_or_else(|e| panic!("ContainerStatus {id}: {e}"))
        .status
        .unwrap_or_else(|| panic!("ContainerStatus {id}: no status"))
}

/// Waits (bounded) until the container has exited; returns its status then.
pub fn wait_exited(node: &Node, id: &str) -> ContainerStatus {
    wait_until(STATE_BOUND, || {
        let s = status(node, id);
        (s.state == ContainerState::ContainerExited as i32).then_some(s)
    })
    .unwrap_or_else(|| panic!("{id} did not exit: {:?}", status(node, id)))
}

pub fn pod_status(node: &Node, pod: &str) -> PodSandboxStatus {
    let req = PodSandboxStatusRequest {
        pod_sandbox_id: pod.into(),
        verbose: false,
    };
    node.cri
        .call(node.cri.runtime().pod_sandbox_status(req))
        .unwrap_or_else(|e| panic!("PodSandboxStatus {pod}: {e}"))
        .status
        .unwrap_or_else(|| panic!("PodSandboxStatus {pod}: no status"))
}

pub fn exec_sync(
    node: &Node,
    id: &str,
    cmd: &[&str],
    timeout: i64,
) -> Result<ExecSyncResponse, Status> {
    let req = ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout,
    };
    node.cri.call(node.cri.runtime().exec_sync(req))
}

pub fn stop_container(node: &Node, id: &str, timeout: i64) {
    let req = StopContainerRequest {
        container_id: id.into(),
        timeout,
    };
    node.cri
        .call(node.cri.runtime().stop_container(req))
        .unwrap_or_else(|e| panic!("StopContainer {id}: {e}"));
}

pub fn stop_pod(node: &Node, pod: &str) {
    let req = StopPodSandboxRequest {
        pod_sandbox_id: pod.into(),
    };
    node.cri
        .call(node.cri.runtime().stop_pod_sandbox(req))
        .unwrap_or_else(|e| panic!("StopPodSandbox {pod}: {e}"));
}

pub fn remove_pod(node: &Node, pod: &str) {
    let req = RemovePodSandboxRequest {
        pod_sandbox_id: pod.into(),
    };
    node.cri
        .call(node.cri.runtime().remove_pod_sandbox(req))
        .unwrap_or_else(|e| panic!("RemovePodSandbox {pod}: {e}"));
}

pub fn list_containers(node: &Node, pod: &str) -> Vec<Container> {
    let req = ListContainersRequest {
        filter: Some(ContainerFilter {
            pod_sandbox_id: pod.into(),
            ..Default::default()
        }),
    };
    node.cri
        .call(node.cri.runtime().list_containers(req))
        .unwrap_or_else(|e| panic!("ListContainers: {e}"))
        .containers
}

/// Waits (bounded) until the log of container `name` of pod `pod` has a line ending in `text`.
pub fn wait_log(node: &Node, pod: &str, name: &str, text: &str) {
    let path = node.log_dir(pod).join(format!("{name}.log"));
    let found = wait_until(STATE_BOUND, || {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        log.lines().any(|l| l.ends_with(text)).then_some(())
    });
    assert!(found.is_some(), "{} never said {text:?}", path.display());
}
