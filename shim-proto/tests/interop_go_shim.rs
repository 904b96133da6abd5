//! Interop: our generated ttrpc client drives the real Go `containerd-shim` (runtime v1).

mod support;

use shim_proto::protobuf::Empty;
use shim_proto::shim::{CreateTaskRequest, KillRequest, StartRequest, StateRequest, WaitRequest};
use shim_proto::time::{is_go_zero, GO_ZERO_TIME};
use shim_proto::types::Status;
use support::{ctx, GoShim, TempDir, GO_SHIM};

fn spawn_go_shim(tag: &str) -> (TempDir, GoShim) {
    let shim = std::path::Path::new(GO_SHIM);
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
    (dir, shim)
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

fn shim_info_reports_the_pid_containerd_spawned() {
    let (_dir, shim) = spawn_go_shim("shiminfo");
    let info = shim.client().shim_info(ctx(), &Empty {}).unwrap();
    assert_eq!(info.shim_pid, shim.pid());
}

fn state_of_unknown_id_is_not_found_with_gos_exact_message() {
    let (_dir, shim) = spawn_go_shim("state404");
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

fn pause_before_create_is_failed_precondition() {
    let (_dir, shim) = spawn_go_shim("pause412");
    let result = shim.client().pause(ctx(), &Empty {});
    assert_status(
        result,
        ttrpc::Code::FAILED_PRECONDITION,
        "container must be created",
    );
}

fn container_lifecycle_through_go_shim_decodes_with_our_types() {
    const NS: &str = "shim-proto-test";
    const ID: &str = "lifecycle";
    let (dir, shim) = spawn_go_shim("lifecycle");
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

fn main() {
    let no_go_shim = support::go_shim_missing();
    let mut trials = trials::trials!(
        no_go_shim.clone();
        shim_info_reports_the_pid_containerd_spawned,
        state_of_unknown_id_is_not_found_with_gos_exact_message,
        pause_before_create_is_failed_precondition,
    );
    trials.push(trials::trial(
        "container_lifecycle_through_go_shim_decodes_with_our_types",
        support::containers_missing().or(no_go_shim).as_deref(),
        container_lifecycle_through_go_shim_decodes_with_our_types,
    ));
    trials::run(trials);
}
