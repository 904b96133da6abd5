//! Interop: our generated ttrpc client drives the real Go `containerd-shim` (runtime v1).

mod support;

use shim_proto::protobuf::Empty;
use shim_proto::shim::{CreateTaskRequest, KillRequest, StartRequest, StateRequest, WaitRequest};
use shim_proto::time::{is_go_zero, GO_ZERO_TIME};
use shim_proto::types::Status;
use support::{ctx, go_shim_or_skip, GoShim, TempDir};

fn spawn_go_shim(tag: &str) -> Option<(TempDir, GoShim)> {
    let shim = go_shim_or_skip(tag)?;
    let dir = TempDir::new(tag);
    let workdir = dir.path().join("work");
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&workdir).unwrap();
    std::fs::create_dir_all(&bundle).unwrap();
    let shim = GoShim::spawn(
        shim,
        "shim-proto-test",
        &workdir,
        &bundle,
        std::path::Path::new("/bin/false"),
        &[
            "-runtime-root",
            &dir.path().join("runc").display().to_string(),
        ],
    );
    Some((dir, shim))
}

/// Asserts `result` is an RPC status with `code` and a message containing `text`.
fn assert_status<T: std::fmt::Debug>(result: ttrpc::Result<T>, code: ttrpc::Code, text: &str) {
    match result {
        Err(ttrpc::Error::RpcStatus(status)) => {
            assert_eq!(status.code(), code, "status {status:?}");
            assert!(
                status.message.contains(text),
                "message {:?} lacks {text:?}",
                status.message
            );
        }
        other => panic!("expected RPC status {code:?} ({text}), got {other:?}"),
    }
}

#[test]
fn shim_info_reports_the_pid_containerd_spawned() {
    let Some((_dir, shim)) = spawn_go_shim("shiminfo") else {
        return;
    };
    let info = shim.client().shim_info(ctx(), &Empty {}).unwrap();
    assert_eq!(info.shim_pid, shim.pid());
}

#[test]
fn state_of_unknown_id_is_not_found_with_gos_exact_message() {
    let Some((_dir, shim)) = spawn_go_shim("state404") else {
        return;
    };
    let req = StateRequest {
        id: "nope".to_string(),
    };
    match shim.client().state(ctx(), &req) {
        Err(ttrpc::Error::RpcStatus(status)) => {
            assert_eq!(
                (status.code(), status.message.as_str()),
                (
                    ttrpc::Code::NOT_FOUND,
                    "process nope does not exist: not found"
                ),
                "status {status:?}"
            );
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn pause_before_create_is_failed_precondition() {
    let Some((_dir, shim)) = spawn_go_shim("pause412") else {
        return;
    };
    let result = shim.client().pause(ctx(), &Empty {});
    assert_status(
        result,
        ttrpc::Code::FAILED_PRECONDITION,
        "container must be created",
    );
}

#[test]
fn container_lifecycle_through_go_shim_decodes_with_our_types() {
    const NS: &str = "shim-proto-test";
    const ID: &str = "lifecycle";
    if !support::can_run_containers("container_lifecycle_through_go_shim") {
        return;
    }
    let Some((dir, shim)) = spawn_go_shim("lifecycle") else {
        return;
    };
    let bundle = dir.path().join("bundle");
    support::make_busybox_bundle(&bundle, &format!("/{NS}-{ID}"));
    let _container = support::ContainerGuard::new(dir.path().join("runc").join(NS), ID);
    let client = shim.client();
    let id = ID.to_string();

    let created = client
        .create(
            ctx(),
            &CreateTaskRequest {
                id: id.clone(),
                bundle: bundle.display().to_string(),
                runtime: support::RUNC.to_string(),
                ..Default::default()
            },
        )
        .unwrap();
    let state = client
        .state(ctx(), &StateRequest { id: id.clone() })
        .unwrap();
    assert_eq!(state.status(), Status::Created);
    assert_eq!(state.pid, created.pid);

    let started = client
        .start(ctx(), &StartRequest { id: id.clone() })
        .unwrap();
    assert_eq!((started.id.as_str(), started.pid), (ID, created.pid));
    let state = client
        .state(ctx(), &StateRequest { id: id.clone() })
        .unwrap();
    assert_eq!(state.status(), Status::Running);
    assert_eq!(state.exited_at, Some(GO_ZERO_TIME));

    let kill = KillRequest {
        id: id.clone(),
        signal: 9,
        all: false,
    };
    client.kill(ctx(), &kill).unwrap();
    let waited = client.wait(ctx(), &WaitRequest { id: id.clone() }).unwrap();
    assert_eq!(waited.exit_status, 137);
    let exited_at = waited.exited_at.unwrap();
    assert!(!is_go_zero(&exited_at));
    let state = client
        .state(ctx(), &StateRequest { id: id.clone() })
        .unwrap();
    assert_eq!(state.status(), Status::Stopped);
    assert_eq!(state.exited_at, Some(exited_at));

    let deleted = client.delete(ctx(), &Empty {}).unwrap();
    assert_eq!((deleted.pid, deleted.exit_status), (created.pid, 137));
    assert_eq!(deleted.exited_at, Some(exited_at));
}
