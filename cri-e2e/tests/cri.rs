//! Kubernetes' CRI end to end through containerd 2.1.9, for Go's `containerd-shim-runc-v2` of
//! the same `.deb` and ours (`E2E_CRI_SHIMS`, default `go,ours`): each test on a private node
//! (cri-e2e's `Node`: mount, pid and network namespaces of its own), driven by our CRI v1 gRPC
//! client as a kubelet would. Outcomes go to `$E2E_RESULTS` as `cri/<test>` per shim. The target
//! is named `e2e_containerd_cri` so that the e2e sweep treats its leftovers as live while it runs.

#[path = "cri/harness.rs"]
mod harness;

use cri_e2e::api::*;
use cri_e2e::pods::*;
use e2e_kit::report::Ran;
use harness::both;

#[test]
fn pod_with_host_network_runs_ready_and_is_served_by_one_shim() {
    both("pod_host_network", |node| {
        let (_, pod) = new_pod(node, "hostnet", true);
        let s = pod_status(node, &pod);
        assert_eq!(s.state, PodSandboxState::SandboxReady as i32, "{s:?}");
        let shims = node.shim_pids();
        assert_eq!(shims.len(), 1, "shims: {shims:?}");
    });
}

#[test]
fn pod_on_the_bridge_network_gets_an_ip_of_the_pod_subnet() {
    both("pod_bridge_ip", |node| {
        let (_, pod) = new_pod(node, "bridged", false);
        let s = pod_status(node, &pod);
        assert_eq!(s.state, PodSandboxState::SandboxReady as i32, "{s:?}");
        let ip = s.network.map(|n| n.ip).unwrap_or_default();
        assert!(
            ip.starts_with("10.88."),
            "pod IP {ip:?} not in {}",
            cri_e2e::node::POD_SUBNET
        );
    });
}

#[test]
fn two_containers_of_one_pod_are_listed_and_exit_with_code_and_reason() {
    both("two_containers_exit_reason", |node| {
        let (cfg, pod) = new_pod(node, "two", false);
        let ok = start(node, &pod, &cfg, &sh("ok", "echo ok"));
        let bad = start(node, &pod, &cfg, &sh("bad", "exit 3"));
        let listed: Vec<String> = list_containers(node, &pod)
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert!(
            listed.contains(&ok) && listed.contains(&bad) && listed.len() == 2,
            "{listed:?}"
        );
        let s = wait_exited(node, &ok);
        assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"), "{s:?}");
        let s = wait_exited(node, &bad);
        assert_eq!((s.exit_code, s.reason.as_str()), (3, "Error"), "{s:?}");
    });
}

#[test]
fn exec_sync_returns_stdout_stderr_exit_code_and_a_mebibyte() {
    both("exec_sync_output", |node| {
        let (cfg, pod) = new_pod(node, "execs", true);
        let id = start(node, &pod, &cfg, &container("sleeper", &["sleep", "3600"]));
        let r = exec_sync(
            node,
            &id,
            &["sh", "-c", "echo out; echo err >&2; exit 7"],
            30,
        )
        .unwrap_or_else(|e| panic!("ExecSync: {e}"));
        assert_eq!(
            (r.stdout.as_slice(), r.stderr.as_slice(), r.exit_code),
            (&b"out\n"[..], &b"err\n"[..], 7)
        );
        let script = "head -c 1048576 /dev/zero | tr '\\0' a";
        let r = exec_sync(node, &id, &["sh", "-c", script], 60)
            .unwrap_or_else(|e| panic!("ExecSync of 1 MiB: {e}"));
        assert_eq!(
            r.exit_code,
            0,
            "stderr: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert_eq!(r.stdout.len(), 1 << 20, "bytes of stdout");
        assert!(r.stdout.iter().all(|b| *b == b'a'), "stdout is not all 'a'");
    });
}

#[test]
fn exec_sync_past_its_timeout_fails_and_its_process_is_killed() {
    both("exec_sync_timeout", |node| {
        let (cfg, pod) = new_pod(node, "exectimeout", true);
        let id = start(node, &pod, &cfg, &container("sleeper", &["sleep", "3600"]));
        let r = exec_sync(node, &id, &["sleep", "7777"], 2);
        let Err(e) = r else {
            panic!("ExecSync of sleep 7777 with timeout 2 s returned {r:?}");
        };
        assert!(e.message().contains("timeout"), "{e}");
        let left = cri_e2e::node::wait_until(STATE_BOUND, || {
            let procs = node.workload_processes();
            (!procs.iter().any(|(_, c)| c.contains("7777"))).then_some(())
        });
        assert!(
            left.is_some(),
            "the timed-out exec still runs: {:?}",
            node.workload_processes()
        );
        let r =
            exec_sync(node, &id, &["true"], 30).unwrap_or_else(|e| panic!("ExecSync after: {e}"));
        assert_eq!(r.exit_code, 0);
    });
}

#[test]
fn container_logs_are_written_in_cri_format_line_by_line() {
    both("logs_cri_format", |node| {
        let (cfg, pod) = new_pod(node, "logs", true);
        let id = start(
            node,
            &pod,
            &cfg,
            &sh(
                "talker",
                "echo line1; echo err1 >&2; echo line2; printf partial",
            ),
        );
        wait_exited(node, &id);
        let path = node.log_dir("logs").join("talker.log");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        // `<RFC 3339 time> <stream> <F|P> <content>` per line.
        let lines: Vec<(String, String, String)> = text
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(4, ' ').collect();
                assert!(
                    f.len() == 4 && f[0].contains('T'),
                    "not a CRI log line: {l:?}"
                );
                (f[1].to_string(), f[2].to_string(), f[3].to_string())
            })
            .collect();
        let of = |stream: &str| -> Vec<(String, String)> {
            lines
                .iter()
                .filter(|(s, _, _)| s == stream)
                .map(|(_, t, c)| (t.clone(), c.clone()))
                .collect()
        };
        let f = |c: &str| ("F".to_string(), c.to_string());
        assert_eq!(
            of("stdout"),
            [f("line1"), f("line2"), ("P".into(), "partial".into())],
            "{text}"
        );
        assert_eq!(of("stderr"), [f("err1")], "{text}");
    });
}

#[test]
fn one_shim_serves_each_pod_of_three_containers() {
    both("one_shim_per_pod", |node| {
        let mut pods = Vec::new();
        for name in ["first", "second"] {
            let (cfg, pod) = new_pod(node, name, true);
            for c in ["a", "b", "c"] {
                start(node, &pod, &cfg, &container(c, &["sleep", "3600"]));
            }
            pods.push(pod);
            let shims = node.shim_pids();
            assert_eq!(shims.len(), pods.len(), "pods {pods:?}, shims {shims:?}");
        }
    });
}

#[test]
fn stop_container_honours_sigterm_and_sigkills_after_the_grace_period() {
    both("stop_grace", |node| {
        let (cfg, pod) = new_pod(node, "stops", true);
        let polite = start(
            node,
            &pod,
            &cfg,
            &sh(
                "polite",
                "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 1 & wait $!; done",
            ),
        );
        let stubborn = start(
            node,
            &pod,
            &cfg,
            &sh(
                "stubborn",
                "trap '' TERM; echo ready; while :; do sleep 1; done",
            ),
        );
        for name in ["polite", "stubborn"] {
            wait_log(node, "stops", name, "ready");
        }
        stop_container(node, &polite, 60);
        let s = status(node, &polite);
        assert_eq!(s.state, ContainerState::ContainerExited as i32, "{s:?}");
        assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"), "{s:?}");
        wait_log(node, "stops", "polite", "bye");
        stop_container(node, &stubborn, 1);
        let s = status(node, &stubborn);
        assert_eq!(s.state, ContainerState::ContainerExited as i32, "{s:?}");
        assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"), "{s:?}");
    });
}

#[test]
fn stopped_and_removed_pods_leave_no_process_mount_cgroup_or_shim() {
    both("remove_leaves_nothing", |node| {
        let (cfg, pod) = new_pod(node, "gone", false);
        let ids: Vec<String> = ["a", "b"]
            .iter()
            .map(|c| start(node, &pod, &cfg, &container(c, &["sleep", "3600"])))
            .collect();
        assert_eq!(node.shim_pids().len(), 1);
        stop_pod(node, &pod);
        let s = pod_status(node, &pod);
        assert_eq!(s.state, PodSandboxState::SandboxNotready as i32, "{s:?}");
        for id in &ids {
            let s = status(node, id);
            assert_eq!(s.state, ContainerState::ContainerExited as i32, "{s:?}");
        }
        remove_pod(node, &pod);
        let pods = node
            .cri
            .call(
                node.cri
                    .runtime()
                    .list_pod_sandbox(ListPodSandboxRequest::default()),
            )
            .unwrap_or_else(|e| panic!("ListPodSandbox: {e}"))
            .items;
        assert!(pods.is_empty(), "{pods:?}");
        let gone = cri_e2e::node::wait_until(STATE_BOUND, || {
            (node.shim_pids().is_empty() && node.workload_processes().is_empty()).then_some(())
        });
        assert!(
            gone.is_some(),
            "left: shims {:?}, processes {:?}",
            node.shim_pids(),
            node.workload_processes()
        );
        let mounts: Vec<String> = ["state", "root"]
            .iter()
            .flat_map(|d| node.mounts_under(&node.dir.join(d)))
            .filter(|m| !m.ends_with("/io.containerd.snapshotter.v1.overlayfs"))
            .collect();
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        for id in ids.iter().chain([&pod]) {
            for c in ["memory", "pids", "cpu"] {
                let cg = node.cgroup(c, id);
                assert!(!cg.exists(), "cgroup left: {}", cg.display());
            }
        }
    });
}

#[test]
fn a_busy_container_and_its_pod_show_non_zero_cpu_and_memory_stats() {
    both("stats_non_zero", |node| {
        let (cfg, pod) = new_pod(node, "busy", true);
        // Holds 8 MiB in a shell variable, and spins.
        let script = "x=$(head -c 8388608 /dev/zero | tr '\\0' a); while :; do :; done";
        let id = start(node, &pod, &cfg, &sh("spinner", script));
        let stats = cri_e2e::node::wait_until(STATE_BOUND, || {
            let req = ContainerStatsRequest {
                container_id: id.clone(),
            };
            let s = node
                .cri
                .call(node.cri.runtime().container_stats(req))
                .unwrap_or_else(|e| panic!("ContainerStats: {e}"))
                .stats?;
            let cpu = s.cpu.as_ref()?.usage_core_nano_seconds.as_ref()?.value;
            let mem = s.memory.as_ref()?.working_set_bytes.as_ref()?.value;
            (cpu > 0 && mem > 0).then_some((cpu, mem))
        });
        assert!(stats.is_some(), "no non-zero ContainerStats");
        let pod_stats = cri_e2e::node::wait_until(STATE_BOUND, || {
            let req = PodSandboxStatsRequest {
                pod_sandbox_id: pod.clone(),
            };
            let s = node
                .cri
                .call(node.cri.runtime().pod_sandbox_stats(req))
                .unwrap_or_else(|e| panic!("PodSandboxStats: {e}"))
                .stats?;
            let linux = s.linux?;
            let cpu = linux.cpu?.usage_core_nano_seconds?.value;
            let mem = linux.memory?.working_set_bytes?.value;
            let of_spinner = linux.containers.iter().any(|c| {
                c.attributes.as_ref().is_some_and(|a| a.id == id)
                    && c.cpu
                        .as_ref()
                        .and_then(|c| c.usage_core_nano_seconds.as_ref())
                        .is_some_and(|v| v.value > 0)
            });
            (cpu > 0 && mem > 0 && of_spinner).then_some(())
        });
        assert!(
            pod_stats.is_some(),
            "no non-zero PodSandboxStats with the container's"
        );
    });
}

#[test]
fn update_container_resources_shows_in_the_containers_cgroup() {
    both("update_resources", |node| {
        let (cfg, pod) = new_pod(node, "updates", true);
        let id = start(node, &pod, &cfg, &container("sleeper", &["sleep", "3600"]));
        let linux = LinuxContainerResources {
            memory_limit_in_bytes: 96 << 20,
            cpu_period: 100_000,
            cpu_quota: 50_000,
            cpu_shares: 512,
            ..Default::default()
        };
        let req = UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(linux),
            ..Default::default()
        };
        node.cri
            .call(node.cri.runtime().update_container_resources(req))
            .unwrap_or_else(|e| panic!("UpdateContainerResources: {e}"));
        let read = |controller: &str, file: &str| {
            let p = node.cgroup(controller, &id).join(file);
            std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
                .trim()
                .to_string()
        };
        assert_eq!(
            read("memory", "memory.limit_in_bytes"),
            (96u64 << 20).to_string()
        );
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu", "cpu.shares"), "512");
    });
}

#[test]
fn a_container_over_its_32_mib_limit_ends_oom_killed() {
    both("oom_killed", |node| {
        let (cfg, pod) = new_pod(node, "ooms", true);
        let mut c = container(
            "hog",
            &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        );
        c.linux = Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                memory_limit_in_bytes: 32 << 20,
                memory_swap_limit_in_bytes: 32 << 20,
                ..Default::default()
            }),
            ..Default::default()
        });
        let id = start(node, &pod, &cfg, &c);
        let s = wait_exited(node, &id);
        assert_eq!(
            (s.exit_code, s.reason.as_str()),
            (137, "OOMKilled"),
            "{s:?}"
        );
    });
}

#[test]
fn containerd_restarted_while_pods_run_reports_exits_of_meanwhile_and_execs_again() {
    both("containerd_restart", |node| {
        let (cfg, pod) = new_pod(node, "survivor", false);
        let stays = start(node, &pod, &cfg, &container("stays", &["sleep", "3600"]));
        let script = "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 5 # leaver";
        let leaves = start(node, &pod, &cfg, &sh("leaves", script));
        let shims = node.shim_pids();
        assert_eq!(shims.len(), 1, "{shims:?}");
        // `runc start` returns once the container's init was told to exec the shell, not once
        // it has: until then its command line is runc's. No event says when; re-check, bounded.
        let leaver = cri_e2e::node::wait_until(STATE_BOUND, || {
            node.workload_processes()
                .into_iter()
                .find(|(_, c)| c.contains("# leaver"))
                .map(|(p, _)| p)
        })
        .expect("the leaver's shell");
        node.stop_daemon();
        std::fs::write(format!("/proc/{leaver}/root/tmp/go"), "").expect("tell the leaver to go");
        assert!(
            e2e_kit::sys::wait_pid_gone(leaver, STATE_BOUND),
            "the leaver did not exit"
        );
        node.start_daemon();
        // containerd 2.1.9, reloading its shims, deletes the task of one whose processes are
        // all gone as leaked ("cleaning leaked shim process"), status and all: CRI then says
        // exited, 255, Unknown. Whichever of the two, the exit is reported.
        let s = wait_exited(node, &leaves);
        let seen = (s.exit_code, s.reason.as_str());
        assert!(seen == (5, "Error") || seen == (255, "Unknown"), "{s:?}");
        let s = status(node, &stays);
        assert_eq!(s.state, ContainerState::ContainerRunning as i32, "{s:?}");
        let s = pod_status(node, &pod);
        assert_eq!(s.state, PodSandboxState::SandboxReady as i32, "{s:?}");
        let r = exec_sync(node, &stays, &["echo", "again"], 30)
            .unwrap_or_else(|e| panic!("ExecSync after the restart: {e}"));
        assert_eq!((r.stdout.as_slice(), r.exit_code), (&b"again\n"[..], 0));
        assert_eq!(node.shim_pids(), shims, "the pod's shim changed");
        if seen == (5, "Error") {
            Ran::Passed
        } else {
            Ran::PassedWith(
                "the exit of meanwhile came as 255/Unknown: containerd 2.1.9 deleted its task \
                 as a leaked shim's on reload"
                    .into(),
            )
        }
    });
}

/// A start that must fail: its error (whose text must contain `needle`), and the container's
/// status after it.
fn failed_start(
    node: &cri_e2e::node::Node,
    pod: &str,
    cfg: &PodSandboxConfig,
    c: &ContainerConfig,
    needle: &str,
) -> String {
    let created = try_create(node, pod, cfg, c);
    let err = match created {
        Err(e) => e,
        Ok(id) => match try_start(node, &id) {
            Err(e) => e,
            Ok(()) => panic!("{:?} started", c.metadata),
        },
    };
    assert!(err.message().contains(needle), "{needle:?} not in: {err}");
    eprintln!(
        "[{}] {:?} refused: {}",
        node.setup.shim.label,
        c.metadata,
        err.message()
    );
    err.message().to_string()
}

#[test]
fn bad_input_gives_a_clear_error_and_leaks_nothing() {
    both("bad_input", |node| {
        let (cfg, pod) = new_pod(node, "bad", true);
        failed_start(
            node,
            &pod,
            &cfg,
            &container("noentry", &["/no/such/binary"]),
            "/no/such/binary",
        );
        // A working dir that does not exist is no error: runc makes it (Go's shim and ours).
        let mut c = container("newcwd", &["pwd"]);
        c.working_dir = "/no/such/dir".into();
        let id = start(node, &pod, &cfg, &c);
        let s = wait_exited(node, &id);
        assert_eq!(s.exit_code, 0, "{s:?}");
        wait_log(node, "bad", "newcwd", " /no/such/dir");
        let mut c = container("filecwd", &["true"]);
        c.working_dir = "/etc/passwd".into();
        failed_start(node, &pod, &cfg, &c, "not a directory");
        let mut c = container("tiny", &["true"]);
        c.linux = Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                memory_limit_in_bytes: 4096,
                ..Default::default()
            }),
            ..Default::default()
        });
        failed_start(node, &pod, &cfg, &c, "memory");
        let done = start(node, &pod, &cfg, &container("done", &["true"]));
        wait_exited(node, &done);
        let r = exec_sync(node, &done, &["true"], 10);
        let Err(e) = r else {
            panic!("ExecSync into a stopped container returned {r:?}");
        };
        assert!(e.message().contains("CONTAINER_EXITED"), "{e}");
        // The pod still works, and goes without a trace.
        let id = start(node, &pod, &cfg, &container("fine", &["sleep", "3600"]));
        let r = exec_sync(node, &id, &["true"], 30).unwrap_or_else(|e| panic!("ExecSync: {e}"));
        assert_eq!(r.exit_code, 0);
        stop_pod(node, &pod);
        remove_pod(node, &pod);
        let gone = cri_e2e::node::wait_until(STATE_BOUND, || {
            (node.shim_pids().is_empty() && node.workload_processes().is_empty()).then_some(())
        });
        assert!(
            gone.is_some(),
            "left: shims {:?}, processes {:?}",
            node.shim_pids(),
            node.workload_processes()
        );
    });
}

#[test]
fn runc_options_of_the_runc_v2_runtime_type_reach_the_shim() {
    both("runc_options", |node| {
        let cfg = pod_config(node, "opts", true);
        let handler = format!("{}-opts", node.setup.shim.handler);
        let pod = try_run_pod_with(node, &cfg, &handler)
            .unwrap_or_else(|e| panic!("RunPodSandbox with {handler}: {e}"));
        let id = start(node, &pod, &cfg, &sh("said", "echo through BinaryName"));
        let s = wait_exited(node, &id);
        assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"), "{s:?}");
        wait_log(node, "opts", "said", "through BinaryName");
        let calls = node.runc_opts_calls();
        for what in [&pod, &id] {
            assert!(
                calls
                    .lines()
                    .any(|l| l.contains(" create ") && l.ends_with(what.as_str())),
                "no `runc create {what}` through BinaryName:\n{calls}"
            );
        }
        assert_eq!(node.shim_pids().len(), 1);
    });
}
