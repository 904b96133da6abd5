//! Golden bytes captured from the Go shim decode with our types and re-encode byte for byte.

mod support;

use std::path::PathBuf;

use prost::Message;
use shim_proto::events::{Event, TaskExit};
use shim_proto::protobuf::{Any, Timestamp};
use shim_proto::shim::StateResponse;
use shim_proto::time::GO_ZERO_TIME;
use shim_proto::types::Status;
use shim_proto::{type_url, unpack};

fn golden(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    support::read_hex(&path)
}

fn assert_plausible_exit_time(ts: &Timestamp) {
    // 2020-01-01 .. 2100-01-01: a real wall-clock time, not the zero time.
    assert!(
        (1_577_836_800..4_102_444_800).contains(&ts.seconds),
        "{ts:?}"
    );
    assert!((0..1_000_000_000).contains(&ts.nanos), "{ts:?}");
}

#[test]
fn go_task_exit_any_decodes_and_reencodes_identically() {
    let bytes = golden("task_exit_any.hex");
    let any = Any::decode(bytes.as_slice()).unwrap();
    assert_eq!(any.type_url, "containerd.events.TaskExit");
    assert_eq!(any.type_url, TaskExit::TYPE_URL);
    let exit: TaskExit = unpack(&any, type_url::TASK_EXIT).unwrap();
    assert_eq!(exit.container_id, "golden");
    assert_eq!(exit.id, "golden");
    assert!(exit.pid > 0);
    assert_eq!(exit.exit_status, 137);
    assert_plausible_exit_time(exit.exited_at.as_ref().unwrap());

    assert_eq!(exit.to_any().encode_to_vec(), bytes);
    assert_eq!(any.encode_to_vec(), bytes);
}

#[test]
fn go_state_response_of_running_process_reencodes_identically() {
    let bytes = golden("state_response_running.hex");
    let state = StateResponse::decode(bytes.as_slice()).unwrap();
    assert_eq!(state.id, "golden");
    assert!(state.bundle.ends_with("/bundle"), "{}", state.bundle);
    assert!(state.pid > 0);
    assert_eq!(state.status(), Status::Running);
    assert_eq!((state.stdin.as_str(), state.stdout.as_str()), ("", ""));
    assert!(!state.terminal);
    assert_eq!(state.exit_status, 0);
    // Go always encodes exited_at; not exited = Go's zero time.
    assert_eq!(state.exited_at, Some(GO_ZERO_TIME));

    assert_eq!(state.encode_to_vec(), bytes);
}

#[test]
fn go_state_response_of_stopped_process_reencodes_identically() {
    let bytes = golden("state_response_stopped.hex");
    let state = StateResponse::decode(bytes.as_slice()).unwrap();
    assert_eq!(state.id, "golden");
    assert_eq!(state.status(), Status::Stopped);
    assert_eq!(state.exit_status, 137);
    assert_plausible_exit_time(state.exited_at.as_ref().unwrap());

    assert_eq!(state.encode_to_vec(), bytes);
}

#[test]
fn go_task_exit_and_stopped_state_agree() {
    let any = Any::decode(golden("task_exit_any.hex").as_slice()).unwrap();
    let exit: TaskExit = unpack(&any, type_url::TASK_EXIT).unwrap();
    let state = StateResponse::decode(golden("state_response_stopped.hex").as_slice()).unwrap();
    assert_eq!(exit.pid, state.pid);
    assert_eq!(exit.exited_at, state.exited_at);
}
