//! The init process's life through the shim: create, start, state, wait, kill, pause, update, delete.

mod common;

use std::sync::Arc;
use std::thread;

use common::*;
use e2e_kit::cgroup::{self, Limit};
use shim_proto::protobuf::Empty;
use shim_proto::runc::ProcessDetails;
use shim_proto::shim::{
    CreateTaskRequest, DeleteProcessRequest, ExecProcessRequest, KillRequest, ListPidsRequest,
    ResizePtyRequest, StartRequest, StateRequest, UpdateTaskRequest, WaitRequest,
};
use shim_proto::time::{is_go_zero, GO_ZERO_TIME};
use shim_proto::types::Status;

const SIGKILL: u32 = 9;

fn init_runs_to_exit_and_wait_reports_the_code_before_and_after() {
    let shim = ShimUnderTest::start(&["sh", "-c", "exit 3"], false);
    let client = Arc::new(shim.client());
    let pid = shim.create_plain(&client);
    assert!(pid > 0);

    let st = state_now(&client, &shim.id);
    assert_eq!(st.status(), Status::Created);
    assert_eq!(st.pid, pid);
    assert_eq!(st.bundle, shim.bundle.display().to_string());
    assert_eq!(
        st.exited_at,
        Some(GO_ZERO_TIME),
        "not exited: Go's zero time"
    );

    // A Wait sent before the process even started.
    let early = {
        let client = client.clone();
        let id = shim.id.clone();
        thread::spawn(move || client.wait(ctx(), &WaitRequest { id }).unwrap())
    };
    assert_eq!(shim.start_task(&client), pid);
    let first = early.join().unwrap();
    assert_eq!(first.exit_status, 3);
    assert!(!is_go_zero(first.exited_at.as_ref().unwrap()));

    // And one after the exit: the same answer.
    let again = wait_response(&client, &shim.id);
    assert_eq!(again, first);

    let st = state_now(&client, &shim.id);
    assert_eq!(st.status(), Status::Stopped);
    assert_eq!(st.exit_status, 3);
    assert_eq!(st.exited_at, first.exited_at);

    let del = client.delete(ctx(), &Empty {}).unwrap();
    assert_eq!(
        (del.pid, del.exit_status, del.exited_at),
        (pid, 3, first.exited_at)
    );
    assert!(
        shim.runc_list().is_empty(),
        "runc still knows the container"
    );

    let (code, msg) = status_of(client.state(
        ctx(),
        &StateRequest {
            id: shim.id.clone(),
        },
    ));
    assert_eq!(code, 5, "{msg}");
    let (code, msg) = status_of(client.delete(ctx(), &Empty {}));
    assert_eq!((code, msg.as_str()), (9, "container must be created"));
}

fn deleting_a_never_started_init_reports_status_zero_and_zero_time() {
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    let client = shim.client();
    let pid = shim.create_plain(&client);
    let del = client.delete(ctx(), &Empty {}).unwrap();
    assert_eq!(del.pid, pid);
    assert_eq!(del.exit_status, 0);
    assert_eq!(del.exited_at, Some(GO_ZERO_TIME));
    assert!(shim.runc_list().is_empty());
}

fn killing_the_init_gives_137_and_killing_it_again_is_not_found() {
    let (shim, client, _pid) = running(&["sleep", "1000"]);
    kill_process(&client, &shim.id, SIGKILL).unwrap();
    assert_eq!(shim.wait_for(&client, &shim.id), 137);
    let (code, msg) = status_of(kill_process(&client, &shim.id, SIGKILL));
    assert_eq!(code, 5, "{msg}");
}

fn state_and_kill_are_answered_while_a_wait_blocks_on_the_same_connection() {
    let (shim, client, pid) = running(&["sleep", "1000"]);
    let client = Arc::new(client);
    let waiter = {
        let client = client.clone();
        let id = shim.id.clone();
        thread::spawn(move || client.wait(ctx(), &WaitRequest { id }).unwrap())
    };
    let st = state_now(&client, &shim.id);
    assert_eq!((st.status(), st.pid), (Status::Running, pid));
    let info = client.shim_info(ctx(), &Empty {}).unwrap();
    assert_eq!(info.shim_pid, shim.pid());
    kill_process(&client, &shim.id, SIGKILL).unwrap();
    assert_eq!(waiter.join().unwrap().exit_status, 137);
}

fn pause_blocks_exec_and_resume_allows_it_again() {
    let (shim, client, _pid) = running(&["sleep", "1000"]);
    client.pause(ctx(), &Empty {}).unwrap();
    let st = state_now(&client, &shim.id);
    assert_eq!(st.status(), Status::Paused);

    let req = ExecProcessRequest {
        id: "e1".into(),
        spec: Some(process_spec(&["true"], false)),
        ..Default::default()
    };
    let (code, msg) = status_of(client.exec(ctx(), &req));
    assert_eq!(msg, "cannot exec in a paused state");
    assert_eq!(
        code, 2,
        "state-machine refusals are Unknown, as Go sends them"
    );
    let (_, msg) = status_of(client.pause(ctx(), &Empty {}));
    assert_eq!(msg, "cannot pause a paused container");

    client.resume(ctx(), &Empty {}).unwrap();
    let st = state_now(&client, &shim.id);
    assert_eq!(st.status(), Status::Running);
    exec_started(&shim, &client, "e1", &["true"], Stdio3::default());
    assert_eq!(shim.wait_for(&client, "e1"), 0);
}

fn list_pids_names_the_init_and_each_exec() {
    let (shim, client, pid) = running(&["sleep", "1000"]);
    let exec_pid = exec_started(&shim, &client, "e1", &["sleep", "1000"], Stdio3::default());
    let resp = client
        .list_pids(
            ctx(),
            &ListPidsRequest {
                id: shim.id.clone(),
            },
        )
        .unwrap();
    let exec_id_of = |want: u32| {
        resp.processes.iter().find(|p| p.pid == want).map(|p| {
            let any = p.info.as_ref().expect("known pid without ProcessDetails");
            shim_proto::any::unpack::<ProcessDetails>(any, shim_proto::type_url::PROCESS_DETAILS)
                .unwrap()
                .exec_id
        })
    };
    assert_eq!(
        exec_id_of(pid).as_deref(),
        Some(shim.id.as_str()),
        "{resp:?}"
    );
    assert_eq!(exec_id_of(exec_pid).as_deref(), Some("e1"), "{resp:?}");
}

fn update_changes_the_memory_cgroup_limit() {
    let (shim, client, _pid) = running(&["sleep", "1000"]);
    // memory.limit_in_bytes on cgroup v1, memory.max on v2.
    let limit_file = cgroup::file(&shim.cgroups_path, Limit::Memory);
    let limit: u64 = 48 << 20;
    let resources = serde_json::json!({ "memory": { "limit": limit } });
    let any = shim_proto::any::pack_json(shim_proto::type_url::OCI_LINUX_RESOURCES, &resources);
    client
        .update(
            ctx(),
            &UpdateTaskRequest {
                resources: Some(any),
            },
        )
        .unwrap();
    assert_eq!(
        cgroup::read(&limit_file),
        Limit::Memory.expected(cgroup::Version::of_host(), limit)
    );
}

fn standalone_socket_mode_serves_with_a_private_socket() {
    let shim = ShimUnderTest::start_with(&["true"], false, Mode::Standalone);
    let info = shim.client().shim_info(ctx(), &Empty {}).unwrap();
    assert_eq!(info.shim_pid, shim.pid());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&shim.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

fn an_exit_is_published_through_the_containerd_binary() {
    // The fake containerd writes its argv and then its stdin (the event) into a fifo we read.
    let dir = TempDir::new();
    let fifo = dir.path().join("published");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let reader = FifoReader::start(&fifo);
    let script = format!("{{ echo \"$@\"; cat; }} > {}", fifo.display());
    let shim = ShimUnderTest::start_full(&["sh", "-c", "exit 5"], false, Mode::Fd3, Some(&script));
    let client = shim.client();
    let pid = shim.create_plain(&client);
    shim.start_task(&client);
    let waited = wait_response(&client, &shim.id);
    assert_eq!(waited.exit_status, 5);

    let got = reader.finish().head;
    let newline = got.iter().position(|b| *b == b'\n').unwrap();
    let argv = String::from_utf8_lossy(&got[..newline]);
    assert_eq!(
        argv,
        format!(
            "--address /nonexistent publish --topic /tasks/exit --namespace {}",
            shim.namespace
        )
    );
    use prost::Message;
    let any = shim_proto::protobuf::Any::decode(&got[newline + 1..]).unwrap();
    let exit: shim_proto::events::TaskExit =
        shim_proto::any::unpack(&any, shim_proto::type_url::TASK_EXIT).unwrap();
    assert_eq!(
        (exit.container_id.as_str(), exit.id.as_str()),
        (shim.id.as_str(), shim.id.as_str())
    );
    assert_eq!((exit.pid, exit.exit_status), (pid, 5));
    assert_eq!(
        exit.exited_at, waited.exited_at,
        "the event carries the recorded exit time"
    );
}

fn a_publish_that_fails_is_retried_in_order_until_containerd_takes_it() {
    // containerd is "down" for the first two attempts, then takes the event.
    let dir = TempDir::new();
    let fifo = dir.path().join("published");
    let attempts = dir.path().join("attempts");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let reader = FifoReader::start(&fifo);
    let script = format!(
        "n=$(cat {a} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {a}\n\
         if [ $n -lt 3 ]; then cat >/dev/null; echo 'failed to dial: connection refused' >&2; exit 1; fi\n\
         cat > {f}",
        a = attempts.display(),
        f = fifo.display()
    );
    let shim = ShimUnderTest::start_full(&["sh", "-c", "exit 7"], false, Mode::Fd3, Some(&script));
    let client = shim.client();
    shim.create_plain(&client);
    shim.start_task(&client);
    assert_eq!(shim.wait_for(&client, &shim.id), 7);

    use prost::Message;
    let got = reader.finish().head;
    let any = shim_proto::protobuf::Any::decode(&got[..]).unwrap();
    let exit: shim_proto::events::TaskExit =
        shim_proto::any::unpack(&any, shim_proto::type_url::TASK_EXIT).unwrap();
    assert_eq!(exit.exit_status, 7);
    assert_eq!(std::fs::read_to_string(&attempts).unwrap().trim(), "3");
    assert!(
        shim.log_text().contains("connection refused"),
        "the failures are logged"
    );
}

fn the_container_inherits_no_fd_of_the_shim_not_even_the_listener_on_fd_3() {
    // containerd's listening socket arrives on fd 3: runc and the container must never get it.
    let shim = ShimUnderTest::start(&["sh", "-c", "ls /proc/self/fd"], false);
    let client = shim.client();
    let out = shim.fifo("stdout");
    let reader = FifoReader::start(&out);
    let io = Stdio3 {
        stdout: out.display().to_string(),
        ..Default::default()
    };
    shim.create(&client, io);
    shim.start_task(&client);
    assert_eq!(shim.wait_for(&client, &shim.id), 0);
    let fds: Vec<String> = reader
        .finish()
        .text()
        .split_whitespace()
        .map(String::from)
        .collect();
    // 0, 1, 2 and the directory fd ls itself opened.
    assert_eq!(fds, ["0", "1", "2", "3"], "the container saw extra fds");
}

fn state_and_kill_answer_while_runc_pause_is_stuck_and_state_says_pausing() {
    // The runtime is real runc behind a wrapper that, for `pause`, says it entered and then
    // blocks until the test opens the gate: a slow runc call, with no timing in the test.
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    let dir = shim.dir().join("slow-runc");
    std::fs::create_dir_all(&dir).unwrap();
    let (entered, gate) = (dir.join("entered"), dir.join("gate"));
    for f in [&entered, &gate] {
        nix::unistd::mkfifo(f, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    let wrapper = dir.join("runc");
    let runc = which("runc").unwrap();
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do if [ \"$a\" = pause ]; then echo in > {e}; read _ < {g}; fi; done\nexec {r} \"$@\"\n",
            e = entered.display(),
            g = gate.display(),
            r = runc.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let client = shim.client();
    let req = shim_proto::shim::CreateTaskRequest {
        id: shim.id.clone(),
        bundle: shim.bundle.display().to_string(),
        runtime: wrapper.display().to_string(),
        ..Default::default()
    };
    client.create(ctx(), &req).unwrap();
    shim.start_task(&client);

    let pausing = {
        let client = shim.client();
        thread::spawn(move || client.pause(ctx(), &Empty {}))
    };
    std::fs::read(&entered).unwrap(); // runc pause is now running and stuck
    let state = |client: &shim_proto::shim::ShimClient| state_now(client, &shim.id).status();
    assert_eq!(state(&client), Status::Pausing);
    let kill = KillRequest {
        id: shim.id.clone(),
        signal: 0,
        all: false,
    };
    client.kill(ctx(), &kill).unwrap();
    assert!(
        !pausing.is_finished(),
        "pause finished before the gate opened"
    );

    std::fs::write(&gate, "go\n").unwrap();
    pausing.join().unwrap().unwrap();
    assert_eq!(state(&client), Status::Paused);
    client.resume(ctx(), &Empty {}).unwrap();
    let kill = KillRequest {
        id: shim.id.clone(),
        signal: SIGKILL,
        all: false,
    };
    client.kill(ctx(), &kill).unwrap();
    assert_eq!(shim.wait_for(&client, &shim.id), 137);
}

fn resize_pty_needs_an_id_of_a_live_process() {
    let shim = ShimUnderTest::start(&["sh", "-c", "exit 0"], false);
    let client = shim.client();
    let resize = |id: &str| {
        client.resize_pty(
            ctx(),
            &ResizePtyRequest {
                id: id.into(),
                width: 80,
                height: 24,
            },
        )
    };
    let (code, msg) = status_of(resize(""));
    assert_eq!((code, msg.as_str()), (3, "id not provided"));
    // Go answers Unknown here; NotFound is the fix contract 9 allows.
    let (code, msg) = status_of(resize("nope"));
    assert_eq!((code, msg.as_str()), (5, "process nope does not exist"));

    shim.create_plain(&client);
    resize(&shim.id).unwrap();
    shim.start_task(&client);
    assert_eq!(shim.wait_for(&client, &shim.id), 0);
    let (code, msg) = status_of(resize(&shim.id));
    assert_eq!(
        (code, msg.as_str()),
        (2, "cannot resize a stopped container")
    );
}

fn delete_process_before_create_is_not_found() {
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    let client = shim.client();
    let (code, msg) =
        status_of(client.delete_process(ctx(), &DeleteProcessRequest { id: "e1".into() }));
    assert_eq!((code, msg.as_str()), (5, "process e1 does not exist"));
}

fn update_with_resources_that_are_not_a_json_object_is_invalid_argument() {
    let (_shim, client, _pid) = running(&["sleep", "1000"]);
    for bad in [&b"not json"[..], b"[1, 2]"] {
        let any = shim_proto::protobuf::Any {
            type_url: shim_proto::type_url::OCI_LINUX_RESOURCES.into(),
            value: bad.to_vec(),
        };
        let (code, msg) = status_of(client.update(
            ctx(),
            &UpdateTaskRequest {
                resources: Some(any),
            },
        ));
        assert_eq!(code, 3, "{msg}");
        assert!(
            msg.starts_with("update resources are not an OCI LinuxResources: "),
            "{msg}"
        );
    }
    // A valid object still reaches runc.
    let any = shim_proto::any::pack_json(
        shim_proto::type_url::OCI_LINUX_RESOURCES,
        &serde_json::json!({}),
    );
    client
        .update(
            ctx(),
            &UpdateTaskRequest {
                resources: Some(any),
            },
        )
        .unwrap();
}

fn a_restore_from_an_empty_checkpoint_is_created_until_start_reports_runcs_failure() {
    // criu cannot restore on this kernel; an empty image fails anywhere, through the same path.
    let shim = ShimUnderTest::start(&["sleep", "1000"], false);
    let client = shim.client();
    let image = shim.dir().join("empty-checkpoint");
    std::fs::create_dir_all(&image).unwrap();
    let req = CreateTaskRequest {
        id: shim.id.clone(),
        bundle: shim.bundle.display().to_string(),
        checkpoint: image.display().to_string(),
        ..Default::default()
    };
    let created = client.create(ctx(), &req).unwrap();
    assert_eq!(created.pid, 0, "nothing runs before the restore");
    let state = |client: &shim_proto::shim::ShimClient| state_now(client, &shim.id);
    let st = state(&client);
    assert_eq!((st.status(), st.pid), (Status::Created, 0));

    let exec = ExecProcessRequest {
        id: "e1".into(),
        spec: Some(process_spec(&["true"], false)),
        ..Default::default()
    };
    let (code, msg) = status_of(client.exec(ctx(), &exec));
    assert_eq!((code, msg.as_str()), (2, "cannot exec in a created state"));

    let (code, msg) = status_of(client.start(
        ctx(),
        &StartRequest {
            id: shim.id.clone(),
        },
    ));
    assert_eq!(code, 2, "{msg}");
    assert!(msg.starts_with("OCI runtime restore failed: "), "{msg}");
    assert_eq!(state(&client).status(), Status::Created);
    client.delete(ctx(), &Empty {}).unwrap();
}

fn main() {
    trials::run(trials::trials!(
        missing();
        init_runs_to_exit_and_wait_reports_the_code_before_and_after,
        deleting_a_never_started_init_reports_status_zero_and_zero_time,
        killing_the_init_gives_137_and_killing_it_again_is_not_found,
        state_and_kill_are_answered_while_a_wait_blocks_on_the_same_connection,
        pause_blocks_exec_and_resume_allows_it_again,
        list_pids_names_the_init_and_each_exec,
        update_changes_the_memory_cgroup_limit,
        standalone_socket_mode_serves_with_a_private_socket,
        an_exit_is_published_through_the_containerd_binary,
        a_publish_that_fails_is_retried_in_order_until_containerd_takes_it,
        the_container_inherits_no_fd_of_the_shim_not_even_the_listener_on_fd_3,
        state_and_kill_answer_while_runc_pause_is_stuck_and_state_says_pausing,
        resize_pty_needs_an_id_of_a_live_process,
        delete_process_before_create_is_not_found,
        update_with_resources_that_are_not_a_json_object_is_invalid_argument,
        a_restore_from_an_empty_checkpoint_is_created_until_start_reports_runcs_failure,
    ));
}
